"""Where and why the shipped `metals` model misses (issue 16): per element, its mean R² on the
train and the test cells of a metal dataset (a generalisation gap says too few structures per
element; equal, low numbers say the model cannot represent them), and how its squared error
splits over shells of distance to the nearest atom (core, bonding region, interstitial).

    python benchmarks/metals_generalisation.py [--dataset metals-gpaw] [--model metals] [--out FILE]

One thread; a cell counts for every element it holds. Writes
benchmarks/results/metals_generalisation.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results" / "metals_generalisation.json"
SHELLS_ANGSTROM = [0.0, 0.5, 1.0, 1.5, 2.0, 99.0]
"""Edges of the distance-to-nearest-atom shells the squared error is split over (Å)."""


def nearest_elements(atoms, shape) -> tuple[np.ndarray, np.ndarray]:
    """Distance (Å) from each grid point (flattened) to its nearest nucleus, and that nucleus'
    element, periodic images included."""
    from elfkit.analysis.metrics import distance_to_nearest_nucleus

    symbols = np.array(atoms.get_chemical_symbols())
    elements = np.unique(symbols)
    per_element = np.stack([distance_to_nearest_nucleus(atoms[symbols == e], shape).ravel() for e in elements])
    return per_element.min(axis=0), elements[per_element.argmin(axis=0)]


def split_scores(dataset: str, split: str, model) -> dict:
    """Per element of `dataset`'s `split`: cells, mean R², squared-error share and RMSE per shell."""
    import elfkit.data
    from elfkit.predict import predict

    shells = len(SHELLS_ANGSTROM) - 1
    found: dict[str, dict] = {}
    for sample in elfkit.data.open(dataset, split):
        reference = np.asarray(sample.elf, dtype=float)
        predicted = np.asarray(predict(sample.atoms, reference.shape, model).values, dtype=float)
        distance, nearest = nearest_elements(sample.atoms, reference.shape)
        squared = (predicted.ravel() - reference.ravel()) ** 2
        r2 = 1 - squared.sum() / (reference.var() * reference.size)
        shell = np.digitize(distance, SHELLS_ANGSTROM) - 1
        for element in sorted(set(sample.atoms.get_chemical_symbols())):
            mine = nearest == element
            entry = found.setdefault(element, {"r2": [], "sse": np.zeros(shells), "points": np.zeros(shells)})
            entry["r2"].append(r2)
            entry["sse"] += np.bincount(shell[mine], squared[mine], shells)
            entry["points"] += np.bincount(shell[mine], minlength=shells)
    return {
        element: {"cells": len(e["r2"]), "mean_r2": float(np.mean(e["r2"])),
                  "squared_error_share": (e["sse"] / e["sse"].sum()).round(3).tolist(),
                  "rmse": np.sqrt(e["sse"] / np.maximum(e["points"], 1)).round(4).tolist()}
        for element, e in found.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="metals-gpaw")
    parser.add_argument("--model", default="metals")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from elfkit.predict import get_model

    model = get_model(args.model)
    splits = {split: split_scores(args.dataset, split, model) for split in ("train", "test")}
    args.out.write_text(json.dumps({"dataset": args.dataset, "model": args.model, "model_sha256": model.sha256,
                                    "shells_angstrom": SHELLS_ANGSTROM[:-1], "splits": splits}, indent=1) + "\n")
    print("| element | train cells | train R² | test cells | test R² | test squared error by shell " + str(SHELLS_ANGSTROM[:-1]) + " Å |")
    print("|---|---|---|---|---|---|")
    for element, test in sorted(splits["test"].items(), key=lambda kv: kv[1]["mean_r2"]):
        train = splits["train"].get(element, {"cells": 0, "mean_r2": float("nan")})
        print(f"| {element} | {train['cells']} | {train['mean_r2']:.3f} | {test['cells']} | {test['mean_r2']:.3f} | "
              + " / ".join(f"{share:.2f}" for share in test["squared_error_share"]) + " |")


if __name__ == "__main__":
    main()
