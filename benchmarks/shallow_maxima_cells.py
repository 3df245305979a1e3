"""Cells whose DFT ELF has many shallow interstitial maxima, and does a model recall them, on
train cells too?

    python benchmarks/shallow_maxima_cells.py metals-900 [--model metals] [--volumes 0.5 0.6]

In compressed Ca, Sr, Y, La and Zr binaries the interstitial ELF can split into rings of maxima
around a site (B2 CaY at V/V0 0.5: twelve maxima 1.86 Å from the nuclei, persistence 0.027,
around a centre 0.03 lower), where a model predicts one maximum at the centre and misses all of
them. This lists, in every split of DATASET at the chosen volume fractions, the cells with at
least `--per-atom` interstitial DFT maxima per atom of persistence below `--shallow` (ELF
units), and scores the model's maxima recall on each (`elfkit.evaluation.prototype_scores`,
matching as `elfkit evaluate`). If the model misses them on its own training cells as well, the
misses are not a generalisation gap. Writes benchmarks/results/shallow_maxima_DATASET.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def shallow_interstitial_maxima(reference: dict, atoms, shallow: float) -> int:
    """How many of a reference topology's maxima are interstitial with persistence below
    `shallow` (ELF units; essential maxima never count)."""
    from elfkit.analysis.templates import interstitial

    maxima = [p for p in reference["points"] if p.type == "maximum"]
    if not maxima:
        return 0
    outside = interstitial(atoms, [p.frac for p in maxima])
    return int(sum(o and p.persistence is not None and p.persistence < shallow for o, p in zip(outside, maxima)))


def cell_row(sample, model: str, shallow: float, per_atom: float, split: str) -> dict | None:
    """The cell's counts and the model's recall, or None when it has too few shallow maxima."""
    from elfkit.evaluation import prototype_scores, reference_topology
    from elfkit.field import Field
    from elfkit.predict import predict

    reference = reference_topology(Field(sample.atoms, sample.elf, "elf"))
    count = shallow_interstitial_maxima(reference, sample.atoms, shallow)
    if count < per_atom * len(sample.atoms):
        return None
    scores = prototype_scores(predict(sample.atoms, sample.elf.shape, model), reference)
    return {
        "split": split, "key": sample.key, "structure": f"{sample.metadata.get('prototype')} {sample.atoms.get_chemical_formula()}",
        "volume_fraction": sample.metadata.get("volume_fraction"), "shallow_interstitial_maxima": count,
        **{k: scores[k] for k in ("recall_maxima", "count_maxima", "recall_interstitial_maxima", "count_interstitial_maxima")},
    }


def main() -> None:
    """Scan the splits, print one line per chosen cell and write the JSON."""
    import elfkit.data
    from elfkit.predict import get_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("--model", default="metals")
    parser.add_argument("--volumes", nargs="+", type=float, default=[0.5, 0.6])
    parser.add_argument("--shallow", type=float, default=0.04)
    parser.add_argument("--per-atom", type=float, default=2.0)
    args = parser.parse_args()
    rows = []
    for split in ("train", "val", "test"):
        for sample in elfkit.data.open(args.dataset, split=split):
            if sample.metadata.get("volume_fraction") not in args.volumes:
                continue
            row = cell_row(sample, args.model, args.shallow, args.per_atom, split)
            if row:
                rows.append(row)
                print(json.dumps(row), flush=True)
    summary = {split: {"cells": len(chosen), "recall_maxima_mean": float(np.mean([r["recall_maxima"] for r in chosen]))}
               for split in ("train", "val", "test") if (chosen := [r for r in rows if r["split"] == split])}
    out = RESULTS / f"shallow_maxima_{args.dataset}.json"
    out.write_text(json.dumps({
        "dataset": args.dataset, "model": args.model, "model_sha256": get_model(args.model).sha256,
        "volume_fractions": args.volumes, "shallow_persistence": args.shallow, "per_atom": args.per_atom,
        "summary": summary, "rows": rows,
    }, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
