"""Is the template score a property of the ELF or of its grid? DFT against DFT on a finer grid.

    python benchmarks/template_grid_stability.py [--datasets metals metals-900 metals-gpaw] [--split test]
        [--refine 1.5] [--model metals]

Each cell's DFT ELF is resampled onto a grid `--refine` times finer per axis (elfkit's periodic
cubic spline, `elfkit.predict.resample_periodic`) and scored on both grids by two scores:

- `basins`: elfkit's template score until 2026-12-06, the sum over interstitial basins
  (`elfkit.analysis.templates.template_basins`) whose maximum ELF is at least 0.5 of maximum ELF x
  basin volume / cell volume, a basin interstitial when its maximum lies farther than 0.35 of the
  shortest interatomic distance from every nucleus;
- `smooth`: elfkit's template score since (`elfkit.analysis.templates.template_score`), the cell
  mean of ELF x s(ELF; 0.45, 0.55) x s(r / d_min; 0.30, 0.40), s a smoothstep from 0 to 1 between
  its two bounds, r the distance (Å) to the nearest nucleus and d_min the shortest interatomic
  distance (Å): no whole basin changes side when a maximum moves by one voxel.

A score worth ranking by gives DFT and finer-grid DFT the same order: the JSON holds their
Spearman rho over all cells and per volume fraction V/V0, and the largest change of a score. With
`--model` each cell is also predicted on its own grid and the model's ranking against DFT is
given under both scores. Writes benchmarks/results/template_grid_stability.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "template_grid_stability.json"
SCORES = ("basins", "smooth")


def basin_template_score(elf) -> float:
    """The former basin template score (dimensionless) of the module docstring for an ELF Field."""
    from elfkit.analysis.templates import TEMPLATE_ELF, template_basins

    kept = [b for b in template_basins(elf) if b.interstitial and b.elf >= TEMPLATE_ELF]
    return float(sum(b.elf * b.volume_angstrom3 for b in kept) / elf.atoms.get_volume())


def both_scores(atoms, values: np.ndarray) -> dict[str, float]:
    """Both scores of one ELF grid of `atoms`."""
    from elfkit.analysis.templates import template_score
    from elfkit.field import Field

    field = Field(atoms, values.astype(np.float32), "elf")
    return {"basins": basin_template_score(field), "smooth": template_score(field)}


def rankings(rows: list[dict], first: str, second: str) -> dict:
    """Spearman rho of score `first` against `second` for each score, over all rows and per volume fraction."""
    from scipy.stats import spearmanr

    def rho(subset, score):
        return round(float(spearmanr([r[first][score] for r in subset], [r[second][score] for r in subset])[0]), 3)

    fractions = sorted({r["volume_fraction"] for r in rows})
    return {
        score: {
            "all": rho(rows, score),
            "per_volume_fraction": {str(v): rho([r for r in rows if r["volume_fraction"] == v], score) for v in fractions},
            "largest_change": round(max(abs(r[first][score] - r[second][score]) for r in rows), 4),
        }
        for score in SCORES
    }


def dataset_rows(dataset: str, split: str, refine: float, model: str | None) -> list[dict]:
    """Per cell of `dataset`'s `split`: both scores of the DFT ELF on its grid, on the finer grid, and of the model's prediction."""
    import elfkit.data
    from elfkit.predict import predict, resample_periodic

    rows = []
    for sample in elfkit.data.open(dataset, split=split):
        finer = tuple(int(round(n * refine)) for n in sample.elf.shape)
        row = {
            "key": sample.key,
            "volume_fraction": sample.metadata.get("volume_fraction"),
            "dft": both_scores(sample.atoms, sample.elf),
            "dft_finer": both_scores(sample.atoms, resample_periodic(sample.elf, finer)),
        }
        if model:
            row["model"] = both_scores(sample.atoms, predict(sample.atoms, sample.elf.shape, model).values)
        rows.append(row)
    return rows


def main() -> None:
    """Score every cell, print and write the rankings."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["metals", "metals-900", "metals-gpaw"])
    parser.add_argument("--split", default="test")
    parser.add_argument("--refine", type=float, default=1.5)
    parser.add_argument("--model")
    args = parser.parse_args()
    out = {"split": args.split, "refine": args.refine, "model": args.model, "datasets": {}}
    for dataset in args.datasets:
        rows = dataset_rows(dataset, args.split, args.refine, args.model)
        result = {"cells": len(rows), "dft_vs_finer_grid": rankings(rows, "dft", "dft_finer"), "rows": rows}
        if args.model:
            result["model_vs_dft"] = rankings(rows, "model", "dft")
        out["datasets"][dataset] = result
        print(dataset, json.dumps({k: v for k, v in result.items() if k != "rows"}), flush=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
