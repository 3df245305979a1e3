"""How closely do two DFT codes agree on the hydrogen crystals' ELF and its topology?

    python benchmarks/crystal_dft_agreement.py [--structures Cmca-4 Cmca-12] [--work scratch/dft-agreement]
    python benchmarks/crystal_dft_agreement.py --dataset metals --split test --cells 15 [--workers 2]

(about 4 minutes per Cmca-4 and 10 per Cmca-12 structure on one core; the 12-atom C2/c-24 cells
take more than 20 minutes each at the label k-spacing and are left out by default)

GPAW (PAW) at the label settings of hydrogen-crystals (the manifest's cutoff, k-spacing and
smearing, each sample's own grid) against the dataset's QE labels, scored exactly like a model
by `elfkit evaluate` (`elfkit.evaluation.field_scores` and `topology_scores`: R², MAE,
networking value error, recall of maxima and saddles within 0.2 Å). This is the ceiling of a
model's crystal scores: a model trained on QE labels cannot be asked to agree with them better
than a second DFT code does. GPAW results are kept in --work (one .npz per sample) and reused.
Writes benchmarks/results/crystal_dft_agreement.json. With `--dataset` another QE-labelled
dataset (a metal one): `--cells` cells spread over `--split`, scored the same way, with the
number of maxima per cell and both engines' valence electron counts (they differ for some
elements: the maxima near the atoms then differ too), to dft_agreement_DATASET_SPLIT.json.
`--model NAME` scores a model's prediction on the same cells with the same functions (model_*
keys) and the file's `mean` holds the means over the cells of both.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "crystal_dft_agreement.json"


def gpaw_field(sample, labels: dict, work: Path):
    """GPAW's ELF of one dataset sample on its grid and its electron count (cached in `work`)."""
    from elfkit.dft import DFTSettings, compute
    from elfkit.io import read_field, write_field

    path, counts = work / f"{sample.key}.npz", work / f"{sample.key}.json"
    if path.exists():
        return read_field(path), json.loads(counts.read_text())["electrons"] if counts.exists() else None
    settings = DFTSettings(engine="gpaw", cutoff_ev=labels["cutoff_ev"], kspacing=labels["kspacing"], smearing_ev=labels["smearing_ev"])
    result = compute(sample.atoms, sample.elf.shape, settings)
    electrons = result.metadata.get("electrons")
    counts.write_text(json.dumps({"electrons": electrons}))
    write_field(path, result.elf.atoms, result.elf.values, "elf")
    return result.elf, electrons


def _crystal_samples(structures: list[str]):
    import elfkit.data

    dataset = elfkit.data.open("hydrogen-crystals")
    chosen = [s for s in dataset if s.group.removeprefix("crystal-") in structures]
    return dataset, chosen, [f"{s.group.removeprefix('crystal-')} {s.pressure_gpa:.0f} GPa" for s in chosen]


def _spread_samples(name: str, split: str, cells: int):
    import elfkit.data

    dataset = elfkit.data.open(name, split=split)
    samples = list(dataset)
    chosen = samples[:: max(1, len(samples) // cells)][:cells]
    return dataset, chosen, [f"{s.atoms.get_chemical_formula()} {s.group} {s.key}" for s in chosen]


AVERAGED = ("r2", "mae", "recall_maxima", "recall_interstitial_maxima", "recall_saddles")
SCORED = AVERAGED + ("template_score",)


def _scores(field, reference, topology: dict, metal: bool) -> dict:
    from elfkit.evaluation import field_scores, prototype_scores, topology_scores

    scores = {**field_scores(field, reference), **topology_scores(field, topology)}
    if metal:
        scores |= {k: v for k, v in prototype_scores(field, topology).items() if k.startswith(("recall", "template"))}
    return scores


def _score(sample, labels: dict, work: Path, model: str | None) -> dict:
    from elfkit.evaluation import reference_topology
    from elfkit.field import Field

    reference = Field(sample.atoms, sample.elf, "elf")
    other, electrons = gpaw_field(sample, labels, work)
    topology = reference_topology(reference)
    metal = "H" not in sample.atoms.symbols
    row = {"grid": list(sample.elf.shape), "electrons_qe": sample.metadata.get("electrons"), "electrons_gpaw": electrons,
           **_scores(other, reference, topology, metal)}
    if model:
        from elfkit.predict import predict

        predicted = _scores(predict(sample.atoms, sample.elf.shape, model), reference, topology, metal)
        row |= {f"model_{k}": predicted.get(k) for k in SCORED}
    return row


def _template_spearman(rows: list[dict]) -> dict:
    """Spearman rank correlation over the cells between the QE template score and GPAW's (and
    the model's, when scored)."""
    from scipy.stats import spearmanr

    if "template_score_ref" not in rows[0] or len(rows) < 3:
        return {}
    reference = [r["template_score_ref"] for r in rows]
    keys = [k for k in ("template_score", "model_template_score") if k in rows[0]]
    return {f"spearman_{k}": float(spearmanr([r[k] for r in rows], reference).statistic) for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--structures", nargs="+", default=["Cmca-4", "Cmca-12"], help="phase names (all their pressures)")
    parser.add_argument("--dataset", default="hydrogen-crystals")
    parser.add_argument("--split", default="test")
    parser.add_argument("--cells", type=int, default=15)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("scratch/dft-agreement"))
    parser.add_argument("--model", default=None, help="also score this model's prediction on the same cells")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    crystals = args.dataset == "hydrogen-crystals"
    dataset, samples, names = _crystal_samples(args.structures) if crystals else _spread_samples(args.dataset, args.split, args.cells)
    labels = dataset.manifest["labels"]
    from concurrent.futures import ProcessPoolExecutor

    rows = []
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = pool.map(_score, samples, [labels] * len(samples), [args.work] * len(samples), [args.model] * len(samples))
        for name, scores in zip(names, jobs):
            rows.append({"structure": name, **scores})
            print(json.dumps({k: v for k, v in rows[-1].items() if k == "structure" or k.removeprefix("model_") in SCORED}), flush=True)
    out = RESULTS if crystals else RESULTS.with_name(f"dft_agreement_{args.dataset}_{args.split}.json")
    reference = f"{args.dataset} (QE labels)" + ("" if crystals else f", {args.split} split, {len(samples)} cells spread over it")
    summary = {key: float(np.mean([r[key] for r in rows if r.get(key) is not None]))
               for key in rows[0] if key.removeprefix("model_") in AVERAGED}
    out.write_text(json.dumps({"reference": reference, "other": "GPAW, same settings and grids", "model": args.model,
                               "mean": summary | _template_spearman(rows), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
