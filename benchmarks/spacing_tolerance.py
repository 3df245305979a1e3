"""How far outside its training grids' spacing may a U-Net run directly? (sets SPACING_TOLERANCE)

    python benchmarks/spacing_tolerance.py [--model hydrogen] [--samples 8]

For hydrogen-fluid test snapshots (never trained on) and cubic grids N^3 whose spacing runs
from 12 % below to 12 % above the model's training range (and inside it), the prediction made
directly on the grid (the network sees the voxels as they are) against the one `predict`
makes outside the range (network on the middle-spacing grid, logits splined back). Both are
compared with the DFT reference splined onto the same grid (periodic cubic spline of the ELF),
and with each other. Writes benchmarks/results/spacing_tolerance.json and prints a table by
relative offset from the range (negative: finer than its finest grid, positive: coarser).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "spacing_tolerance.json"
MAX_OFFSET = 0.12


def offset_from_range(spacing: float, low: float, high: float) -> float:
    """Relative distance (fraction) of `spacing` outside [low, high]: 0 inside, < 0 finer, > 0 coarser."""
    return min(0.0, spacing / low - 1) + max(0.0, spacing / high - 1)


def sample_rows(sample, loaded, low: float, high: float) -> list[dict]:
    """Direct and splined predictions of one snapshot on every cubic grid within MAX_OFFSET of the range."""
    from elfkit.features import features_of, model_inputs
    from elfkit.predict import _sigmoid, middle_spacing_grid, network_logits, resample_periodic

    cell = sample.atoms.cell.array
    length = float(np.linalg.norm(cell[0]))
    features = features_of(loaded.net.config)
    middle = middle_spacing_grid(cell, (low, high))
    middle_logits = network_logits(loaded.net, model_inputs(sample.atoms, middle, features))
    rows = []
    for n in range(int(length / (high * (1 + MAX_OFFSET))) + 1, int(length / (low * (1 - MAX_OFFSET))) + 1):
        shape = (n, n, n)
        direct = _sigmoid(network_logits(loaded.net, model_inputs(sample.atoms, shape, features))).astype(np.float32)
        splined = _sigmoid(resample_periodic(middle_logits, shape))
        dft = np.clip(resample_periodic(np.asarray(sample.elf), shape), 0, 1)
        rows.append({"spacing": length / n, "offset": offset_from_range(length / n, low, high), "direct_mae": float(np.abs(direct - dft).mean()),
                     "splined_mae": float(np.abs(splined - dft).mean()), "direct_vs_splined": float(np.abs(direct - splined).mean())})
    return rows


def main() -> None:
    import torch

    import elfkit.data
    from elfkit.predict import get_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="hydrogen")
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(2)
    loaded = get_model(args.model)
    low, high = loaded.metadata["domain"]["grid_spacing_angstrom"]
    test = list(elfkit.data.open("hydrogen-fluid", split="test"))
    rows = []
    for sample in test[:: max(1, len(test) // args.samples)][: args.samples]:
        rows += [dict(row, rs_bohr=sample.metadata.get("rs_bohr")) for row in sample_rows(sample, loaded, low, high)]
    RESULTS.write_text(json.dumps({"model": loaded.name, "model_sha256": loaded.sha256, "training_spacing_angstrom": [low, high],
                                   "rows": rows}, indent=1) + "\n")
    print(f"{loaded.name}: training grid spacing {low}-{high} Å; MAE against the DFT ELF splined onto each grid")
    print("| offset from the range | grids | MAE direct | MAE splined | mean |direct - splined| |")
    print("|---|---|---|---|---|")
    edges = [-MAX_OFFSET, -0.06, -0.03, -0.01, 0, 1e-9, 0.01, 0.03, 0.06, MAX_OFFSET]
    for lo, hi in zip(edges[:-1], edges[1:]):
        band = [r for r in rows if lo <= r["offset"] < hi]
        label = "inside the range" if lo == 0 else f"{lo:+.1%} to {hi:+.1%}"
        if band:
            means = [np.mean([r[k] for r in band]) for k in ("direct_mae", "splined_mae", "direct_vs_splined")]
            print(f"| {label} | {len(band)} | {means[0]:.4f} | {means[1]:.4f} | {means[2]:.4f} |")


if __name__ == "__main__":
    main()
