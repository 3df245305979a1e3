"""How closely do two DFT codes agree on the hydrogen crystals' ELF and its topology?

    python benchmarks/crystal_dft_agreement.py [--structures Cmca-4 Cmca-12] [--work scratch/dft-agreement]

(about 4 minutes per Cmca-4 and 10 per Cmca-12 structure on one core; the 12-atom C2/c-24 cells
take more than 20 minutes each at the label k-spacing and are left out by default)

GPAW (PAW) at the label settings of hydrogen-crystals (the manifest's cutoff, k-spacing and
smearing, each sample's own grid) against the dataset's QE labels, scored exactly like a model
by `elfkit evaluate` (`elfkit.evaluation.field_scores` and `topology_scores`: R², MAE,
networking value error, recall of maxima and saddles within 0.2 Å). This is the ceiling of a
model's crystal scores: a model trained on QE labels cannot be asked to agree with them better
than a second DFT code does. GPAW results are kept in --work (one .npz per sample) and reused.
Writes benchmarks/results/crystal_dft_agreement.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "crystal_dft_agreement.json"


def gpaw_field(sample, labels: dict, work: Path):
    """GPAW's ELF of one dataset sample on its grid (cached in `work`)."""
    from elfkit.dft import DFTSettings, compute
    from elfkit.io import read_field, write_field

    path = work / f"{sample.key}.npz"
    if path.exists():
        return read_field(path)
    settings = DFTSettings(engine="gpaw", cutoff_ev=labels["cutoff_ev"], kspacing=labels["kspacing"], smearing_ev=labels["smearing_ev"])
    field = compute(sample.atoms, sample.elf.shape, settings).elf
    write_field(path, field.atoms, field.values, "elf")
    return field


def main() -> None:
    import elfkit.data
    from elfkit.evaluation import field_scores, reference_topology, topology_scores
    from elfkit.field import Field

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--structures", nargs="+", default=["Cmca-4", "Cmca-12"], help="phase names (all their pressures)")
    parser.add_argument("--work", type=Path, default=Path("scratch/dft-agreement"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    dataset = elfkit.data.open("hydrogen-crystals")
    rows = []
    for sample in dataset:
        phase = sample.group.removeprefix("crystal-")
        if phase not in args.structures:
            continue
        reference = Field(sample.atoms, sample.elf, "elf")
        other = gpaw_field(sample, dataset.manifest["labels"], args.work)
        scores = {**field_scores(other, reference), **topology_scores(other, reference_topology(reference))}
        rows.append({"structure": f"{phase} {sample.pressure_gpa:.0f} GPa", "grid": list(sample.elf.shape), **scores})
        print(json.dumps({k: rows[-1][k] for k in ("structure", "r2", "mae", "networking_value_error", "recall_maxima", "recall_saddles")}), flush=True)
    RESULTS.write_text(json.dumps({"reference": "hydrogen-crystals (QE labels)", "other": "GPAW, same settings and grids", "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
