"""Which ELF saddles does a model miss, and by how much?

    python benchmarks/missed_saddles.py --model hydrogen --dataset hydrogen-fluid --split val [--workers 2]
    python benchmarks/missed_saddles.py --model hydrogen --dataset hydrogen-crystals --split test

`elfkit evaluate --critical` counts a DFT saddle as found when the prediction has a saddle within
0.2 Å of it (both sets simplified at persistence 0.02 and stripped of low-density points,
`elfkit.analysis.critical.match_critical_points`). This script scores the same saddles of every
sample, per stratum, and describes the missed ones: their persistence (the ELF depth of the
saddle against its pair, the smaller the more fragile), the smallest |Hessian eigenvalue| (ELF/Å²;
the flatter, the farther a small error moves the saddle) and the distance to the nearest
predicted saddle. It also reports the recall at 0.3 Å and the recall of the saddles with
persistence >= 0.05 alone. Writes the per-stratum summaries to benchmarks/results/missed_saddles_MODEL_DATASET_SPLIT.json and
prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
DEEP = 0.05
WIDE_TOLERANCE = 0.3
LENIENT = 0.01


def saddle_rows(sample, model, crystals: bool) -> list[dict]:
    """One row per reference saddle of `sample` that the evaluation scores: stratum, matched
    (within 0.2 Å; 0.3 Å; with predicted saddles kept from `LENIENT`), whether a predicted
    saddle cancelled by the persistence cut lies within 0.2 Å, persistence, value, smallest
    |eigenvalue| (ELF/Å²) and the distance (Å) to the nearest predicted saddle."""
    import torch

    from elfkit.analysis.critical import DEFAULT_PERSISTENCE, critical_points, match_critical_points
    from elfkit.evaluation import MATCH_TOLERANCE_ANGSTROM, _stratum, reference_topology
    from elfkit.field import Field
    from elfkit.predict import predict

    torch.set_num_threads(1)
    reference = reference_topology(Field(sample.atoms, sample.elf, "elf"))
    predicted = critical_points(predict(sample.atoms, sample.elf.shape, model), persistence=0.0)
    cell = reference["cell"]

    def saddles(points, low=DEFAULT_PERSISTENCE):
        return [p for p in points if p.type == "saddle" and not p.low_density and (p.persistence is None or p.persistence >= low)]

    def missed(predicted_saddles, tol=MATCH_TOLERANCE_ANGSTROM):
        match = match_critical_points(predicted_saddles, ref_saddles, cell, tol=tol, persistence=0.0)
        return {id(p) for p in match["missed"]}

    ref_saddles, pred_saddles = saddles(reference["points"]), saddles(predicted)
    strict, wide, lenient = missed(pred_saddles), missed(pred_saddles, WIDE_TOLERANCE), missed(saddles(predicted, LENIENT))
    cancelled = [p for p in saddles(predicted, 0.0) if p.persistence is not None and p.persistence < DEFAULT_PERSISTENCE]
    to_kept, to_cancelled = _nearest(ref_saddles, pred_saddles, cell), _nearest(ref_saddles, cancelled, cell)
    stratum = _stratum(sample, crystals, prototypes=False)
    return [
        {
            "stratum": stratum,
            "key": sample.key,
            "matched": id(p) not in strict,
            "matched_wide": id(p) not in wide,
            "matched_lenient": id(p) not in lenient,
            "cancelled_nearby": bool(to_cancelled[i] <= MATCH_TOLERANCE_ANGSTROM),
            "persistence": p.persistence,
            "value": p.value,
            "flattest_curvature": min(abs(e) for e in p.eigenvalues),
            "nearest_predicted_angstrom": None if np.isinf(to_kept[i]) else float(to_kept[i]),
        }
        for i, p in enumerate(ref_saddles)
    ]


def _nearest(points, others, cell) -> np.ndarray:
    """Periodic distance (Å) from each of `points` to the nearest of `others` (inf where there are none)."""
    from elfkit.analysis.critical import _periodic_distances

    if not points or not others:
        return np.full(len(points), np.inf)
    return _periodic_distances(np.array([p.frac for p in points]), np.array([p.frac for p in others]), cell).min(axis=1)


def summary(rows: list[dict]) -> dict:
    """Recall at 0.2 and 0.3 Å, recall of the deep saddles, and medians of the missed and the
    matched saddles' persistence, flattest curvature and distance to the nearest predicted one."""
    def median(chosen, key):
        values = [r[key] for r in chosen if r[key] is not None]
        return float(np.median(values)) if values else None

    missed = [r for r in rows if not r["matched"]]
    matched = [r for r in rows if r["matched"]]
    deep = [r for r in rows if r["persistence"] is None or r["persistence"] >= DEEP]
    near = [r for r in missed if r["nearest_predicted_angstrom"] is not None and r["nearest_predicted_angstrom"] <= 0.4]
    return {
        "saddles": len(rows),
        "recall": len(matched) / len(rows) if rows else None,
        "recall_0.3": sum(r["matched_wide"] for r in rows) / len(rows) if rows else None,
        "recall_lenient": sum(r["matched_lenient"] for r in rows) / len(rows) if rows else None,
        "missed_cancelled_nearby": sum(r["cancelled_nearby"] for r in missed) / len(missed) if missed else None,
        "recall_deep": sum(r["matched"] for r in deep) / len(deep) if deep else None,
        "deep_fraction": len(deep) / len(rows) if rows else None,
        "missed_shallow_fraction": (
            sum(r["persistence"] is not None and r["persistence"] < DEEP for r in missed) / len(missed) if missed else None
        ),
        "missed_within_0.4": len(near) / len(missed) if missed else None,
        **{f"{name}_{key}": median(chosen, key) for name, chosen in (("missed", missed), ("matched", matched))
           for key in ("persistence", "flattest_curvature", "nearest_predicted_angstrom")},
    }


def markdown(result: dict) -> str:
    """The per-stratum summaries as a markdown table."""
    lines = [
        "| stratum | saddles | recall 0.2 Å | recall 0.3 Å | recall, predicted from 0.01 | recall, persistence >= 0.05 (share) "
        "| missed: shallow | missed: predicted within 0.4 Å | missed: predicted one cancelled within 0.2 Å "
        "| persistence missed / matched | flattest curvature missed / matched |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for stratum, s in result["strata"].items():
        def f(key, digits=2):
            return "-" if s[key] is None else f"{s[key]:.{digits}f}"

        lines.append(
            f"| {stratum} | {s['saddles']} | {f('recall')} | {f('recall_0.3')} | {f('recall_lenient')} | {f('recall_deep')} ({f('deep_fraction')}) "
            f"| {f('missed_shallow_fraction')} | {f('missed_within_0.4')} | {f('missed_cancelled_nearby')} "
            f"| {f('missed_persistence', 3)} / {f('matched_persistence', 3)} "
            f"| {f('missed_flattest_curvature')} / {f('matched_flattest_curvature')} |"
        )
    return "\n".join(lines)


def main() -> None:
    import elfkit.data
    from elfkit.parallel import parallel_map
    from elfkit.predict import get_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hydrogen")
    parser.add_argument("--dataset", default="hydrogen-fluid")
    parser.add_argument("--split", default="val")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    model = get_model(args.model)
    opened = elfkit.data.open(args.dataset, split=args.split)
    crystals = opened.manifest.get("kind") == "relaxed-crystals"
    score = partial(saddle_rows, model=model, crystals=crystals)
    rows = [row for rows in parallel_map(score, list(opened), args.workers) for row in rows]
    strata = {s: summary([r for r in rows if r["stratum"] == s]) for s in dict.fromkeys(r["stratum"] for r in rows)}
    result = {"model": model.name, "model_sha256": model.sha256, "dataset": args.dataset, "split": args.split,
              "strata": {**dict(sorted(strata.items())), "all": summary(rows)}}
    out = RESULTS / f"missed_saddles_{model.name}_{args.dataset}_{args.split}.json"
    out.write_text(json.dumps(result, indent=1))
    print(markdown(result))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
