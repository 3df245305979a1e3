"""Does a prediction depend on the user's grid or cell? Same structure, other grids and bases.

    python benchmarks/grid_consistency.py [--model hydrogen]

For fluid test snapshots and every hydrogen crystal (data the model never trained on):
- spacing: predictions on grids of spacing 0.08 to 0.13 Å, compared with the one at the
  dataset's grid at their common points (fractional multiples of 1/gcd(N, N_ref));
- basis: the same lattice in a sheared basis a2' = a2 + a1 (a skewed cell indexing the same
  grid points), compared point by point;
- supercell: a 2x2x1 supercell against the tiled unit cell.
Reports the largest and mean absolute difference of each, and the DFT reference's own MAE
of the prediction on the dataset grid for scale. Writes benchmarks/results/grid_consistency.json.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from ase import Atoms

RESULTS = Path(__file__).resolve().parent / "results" / "grid_consistency.json"
SPACINGS = (0.08, 0.10, 0.12, 0.13)


def common_points(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values of two grids of one cell at the points both hold."""
    steps = [(na // math.gcd(na, nb), nb // math.gcd(na, nb)) for na, nb in zip(a.shape, b.shape)]
    return a[tuple(slice(None, None, s[0]) for s in steps)], b[tuple(slice(None, None, s[1]) for s in steps)]


def spacing_rows(atoms: Atoms, reference: np.ndarray, model) -> list[dict]:
    """Largest and mean difference to the dataset-grid prediction at each spacing."""
    from elfkit.grid import Grid
    from elfkit.predict import predict

    rows = []
    for spacing in SPACINGS:
        shape = Grid.for_spacing(atoms.cell.array, spacing).shape
        a, b = common_points(predict(atoms, shape, model).values, reference)
        rows.append({"spacing": spacing, "grid": list(shape), "common_points": int(a.size),
                     "max": float(np.abs(a - b).max()), "mean": float(np.abs(a - b).mean())})
    return rows


def sheared_row(atoms: Atoms, shape, reference: np.ndarray, model) -> dict | None:
    """The same lattice in the basis a2' = a2 + a1 (needs N1 = N2), compared point by point."""
    from elfkit.predict import predict

    if shape[0] != shape[1]:
        return None
    cell = atoms.cell.array.copy()
    cell[1] += cell[0]
    sheared = Atoms(atoms.numbers, positions=atoms.positions, cell=cell, pbc=True)
    values = predict(sheared, shape, model).values
    n = shape[0]
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    same_points = reference[(i + j) % n, j]
    return {"max": float(np.abs(values - same_points).max()), "mean": float(np.abs(values - same_points).mean())}


def supercell_row(atoms: Atoms, shape, reference: np.ndarray, model) -> dict:
    """A 2x2x1 supercell against the tiled unit-cell prediction."""
    from elfkit.predict import predict

    values = predict(atoms.repeat((2, 2, 1)), (2 * shape[0], 2 * shape[1], shape[2]), model).values
    tiled = np.tile(reference, (2, 2, 1))
    return {"max": float(np.abs(values - tiled).max()), "mean": float(np.abs(values - tiled).mean())}


def main() -> None:
    import elfkit.data
    from elfkit.predict import get_model, predict

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="hydrogen")
    parser.add_argument("--fluid-samples", type=int, default=3)
    args = parser.parse_args()
    model = get_model(args.model)
    fluid = list(elfkit.data.open("hydrogen-fluid", split="test"))[:: 118 // args.fluid_samples][: args.fluid_samples]
    crystals = list(elfkit.data.open("hydrogen-crystals"))
    results = []
    for sample in fluid + crystals:
        shape = sample.elf.shape
        reference = predict(sample.atoms, shape, model).values
        row = {
            "structure": f"{sample.group} {sample.pressure_gpa:.0f} GPa",
            "grid": list(shape),
            "dft_mae": float(np.abs(reference - sample.elf).mean()),
            "spacing": spacing_rows(sample.atoms, reference, model),
            "sheared_basis": sheared_row(sample.atoms, shape, reference, model),
            "supercell_2x2x1": supercell_row(sample.atoms, shape, reference, model) if len(sample.atoms) < 20 else None,
        }
        results.append(row)
        print(json.dumps(row))
    RESULTS.write_text(json.dumps({"model": model.name, "model_sha256": model.sha256, "rows": results}, indent=1) + "\n")
    print("| structure | MAE vs DFT | max diff across spacings 0.08-0.13 Å (mean) | sheared basis max (mean) | 2x2x1 supercell max |")
    print("|---|---|---|---|---|")
    for r in results:
        worst = max(r["spacing"], key=lambda s: s["max"])
        mean = np.mean([s["mean"] for s in r["spacing"]])
        sheared = f"{r['sheared_basis']['max']:.4f} ({r['sheared_basis']['mean']:.4f})" if r["sheared_basis"] else "-"
        supercell = f"{r['supercell_2x2x1']['max']:.1e}" if r["supercell_2x2x1"] else "-"
        print(f"| {r['structure']} | {r['dft_mae']:.4f} | {worst['max']:.4f} ({mean:.4f}) | {sheared} | {supercell} |")


if __name__ == "__main__":
    main()
