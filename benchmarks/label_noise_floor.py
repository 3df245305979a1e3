"""How many of a label's ELF maxima does its own engine find again after a tighter calculation?

    python benchmarks/label_noise_floor.py --dataset metals --split test --cells 20 [--workers 2]
        [--kspacing-scale 0.75] [--cutoff-scale 1.25] [--model metals]
    python benchmarks/label_noise_floor.py --dataset hydrogen-crystals --groups Cmca-4 I4_1/amd --model hydrogen
    python benchmarks/label_noise_floor.py --dataset metals-900 --keys KEY... --tag rings --model metals

Each chosen cell (spread evenly over the split) is recomputed by the engine that labelled the
dataset, on the label's grid, with denser k-points (k-spacing x `--kspacing-scale`) and a higher
cutoff (x `--cutoff-scale`), the smearing and SCF tolerance unchanged: a change the labels are
converged against (their ELF lies within 0.001-0.002 on average, 0.007 at most, of the tightest
settings tried, `benchmarks/results/metal_convergence.json` and `metal_convergence_gpaw.json`). The tighter ELF is then
scored against the label exactly as `elfkit evaluate` scores a model (`elfkit.evaluation`:
voxel R²; for metals the recall of all DFT maxima and of the interstitial ones within 0.2 Å, the
parity R² of the matched maxima's values, the template score and its Spearman rank correlation;
for hydrogen the recall of maxima and saddles and the networking value error). What the
label's own engine scores here is the floor under a model's scores that no model can be asked
to beat: maxima that a converged change of settings creates or removes are noise of the label,
not structure. With `--model` the model's prediction is scored on the same cells by the same
functions. `--keys` takes chosen cells (the sample keys of `elfkit evaluate`'s JSON) instead of a
spread. Tighter fields are kept in --work (one .npz per cell) and reused. Writes
benchmarks/results/label_noise_floor_DATASET_SPLIT.json (…_SPLIT_TAG.json with `--tag`).
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
TIGHTER = "tighter DFT"


def tighter_field(sample, labels: dict, scales: tuple[float, float], work: Path):
    """The label engine's ELF of `sample` on its grid at k-spacing and cutoff scaled by `scales`
    (cached in `work`)."""
    from elfkit.dft import DFTSettings, compute
    from elfkit.io import read_field, write_field

    path = work / f"{sample.key}.npz"
    if path.exists():
        return read_field(path)
    settings = DFTSettings(engine=labels["engine"], cutoff_ev=labels["cutoff_ev"] * scales[1],
                           kspacing=labels["kspacing"] * scales[0], smearing_ev=labels["smearing_ev"],
                           scf_tolerance_ev=labels["scf_tolerance_ev"])
    elf = compute(sample.atoms, sample.elf.shape, settings).elf
    write_field(path, elf.atoms, elf.values, "elf")
    return elf


def cell_rows(sample, labels: dict, scales: tuple[float, float], work: Path, model: str | None) -> list[dict]:
    """Scores of the tighter ELF (and of `model`'s prediction) against one cell's label."""
    from elfkit.evaluation import field_scores, prototype_scores, reference_topology, topology_scores
    from elfkit.field import Field

    reference = Field(sample.atoms, sample.elf, "elf")
    topology = reference_topology(reference)
    fields = {TIGHTER: tighter_field(sample, labels, scales, work)}
    if model:
        from elfkit.predict import predict

        fields[model] = predict(sample.atoms, sample.elf.shape, model)
    metal = "H" not in sample.atoms.symbols
    scores = prototype_scores if metal else topology_scores
    name = f"{sample.atoms.get_chemical_formula()} {sample.metadata.get('prototype')}" if metal else f"{sample.group} {sample.pressure_gpa:.0f} GPa"
    label = {"structure": name, "key": sample.key, "volume_fraction": sample.metadata.get("volume_fraction")}
    return [{**label, "model": model_name, **field_scores(field, reference), **scores(field, topology)}
            for model_name, field in fields.items()]


MEANS = ("r2", "recall_maxima", "recall_interstitial_maxima", "recall_saddles", "networking_value_error")
"""Scores averaged over the cells in the JSON's summary (those a cell has)."""


def spread(dataset, cells: int, groups: list[str] | None, keys: list[str] | None = None) -> list:
    """`cells` samples spread evenly over `dataset` (all of them when it has fewer), only those of
    a group whose name contains one of `groups`, and only those whose key is in `keys`, when given."""
    samples = [s for s in dataset if (not groups or any(g in s.group for g in groups)) and (not keys or s.key in keys)]
    return samples[:: max(1, len(samples) // cells)][:cells]


def summarise(rows: list[dict]) -> dict:
    """Per model: the means of MEANS over the cells and, for metals, `elfkit evaluate`'s
    prototype summary (pooled parity of maxima, template Spearman)."""
    import numpy as np

    from elfkit.evaluation import prototype_summary

    summary = {}
    for name in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == name]
        means = {f"{k}_mean": float(np.mean([r[k] for r in mine if r.get(k) is not None])) for k in MEANS
                 if any(r.get(k) is not None for r in mine)}
        summary[name] = means | (prototype_summary(mine)[name] if "template_score" in mine[0] else {})
    return summary


def main() -> None:
    """Recompute, score, print one line per cell and write the JSON."""
    import elfkit.data
    from elfkit.predict import get_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="metals")
    parser.add_argument("--split", default="test")
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--groups", nargs="+", help="only groups whose name contains one of these")
    parser.add_argument("--keys", nargs="+", help="only the samples with these keys")
    parser.add_argument("--tag", default="", help="suffix of the JSON's name, for a chosen subset")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--kspacing-scale", type=float, default=0.75)
    parser.add_argument("--cutoff-scale", type=float, default=1.25)
    parser.add_argument("--work", type=Path, default=Path("scratch/label-noise-floor"))
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    dataset = elfkit.data.open(args.dataset, split=args.split)
    labels, scales = dataset.manifest["labels"], (args.kspacing_scale, args.cutoff_scale)
    work = args.work / args.dataset
    work.mkdir(parents=True, exist_ok=True)
    samples = spread(dataset, args.cells, args.groups, args.keys)
    rows = []
    with ProcessPoolExecutor(args.workers) as pool:
        for cell in pool.map(cell_rows, samples, [labels] * len(samples), [scales] * len(samples), [work] * len(samples),
                             [args.model] * len(samples)):
            rows += cell
            print(json.dumps({k: v for k, v in cell[0].items() if k in ("structure", "volume_fraction") + MEANS}), flush=True)
    summary = summarise(rows)
    out = RESULTS / f"label_noise_floor_{args.dataset}_{args.split}{'_' + args.tag if args.tag else ''}.json"
    out.write_text(json.dumps({
        "reference": f"{args.dataset} labels ({labels['engine']}), {args.split} split, {len(samples)} cells {'chosen by key' if args.keys else 'spread over it'}",
        "tighter": f"{labels['engine']} at k-spacing x{args.kspacing_scale:g}, cutoff x{args.cutoff_scale:g}, same smearing and grid",
        "model": args.model, "model_sha256": get_model(args.model).sha256 if args.model else None,
        "summary": summary, "rows": rows,
    }, indent=1, default=float))
    print(json.dumps(summary, indent=1, default=float))


if __name__ == "__main__":
    main()
