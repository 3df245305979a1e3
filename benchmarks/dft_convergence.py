"""Cutoff and k-point convergence of the reference ELF (not only the energy).

For one 64-atom dense-hydrogen configuration at rs = 1.25 and 1.75 bohr, computes the ELF
with Quantum ESPRESSO at increasing plane-wave cutoffs on one common grid, and reports the
ELF mean/max absolute difference and the histogram (Wasserstein-1) distance to the highest
cutoff, with energy and pressure differences; then Gamma-only against 2x2x2 and 3x3x3
k-point meshes at the chosen cutoff; and GPAW at the chosen cutoff (cross-engine check).

Run:  python benchmarks/dft_convergence.py [--out benchmarks/results/dft_convergence.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import wasserstein_distance

from elfkit.data.hydrogen import random_atomic_hydrogen
from elfkit.dft import DFTSettings, compute
from elfkit.dft.base import dft_grid_shape

CUTOFFS_EV = (476.0, 544.0, 680.0, 816.0, 1088.0)


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    """ELF differences between two fields on one grid (dimensionless)."""
    return {
        "elf_mae": round(float(np.abs(a - b).mean()), 5),
        "elf_max": round(float(np.abs(a - b).max()), 4),
        "elf_histogram_w1": round(float(wasserstein_distance(a.ravel(), b.ravel())), 5),
    }


def cutoff_series(atoms, chosen_ev: float) -> dict:
    shape = dft_grid_shape(atoms.cell.array, 0.12, max(CUTOFFS_EV))
    runs = {cut: compute(atoms, shape, DFTSettings(engine="qe", cutoff_ev=cut)) for cut in CUTOFFS_EV}
    best = runs[max(CUTOFFS_EV)]
    rows = []
    for cut, run in runs.items():
        rows.append(
            {
                "cutoff_ev": cut,
                **compare(run.elf.values, best.elf.values),
                "energy_mev_per_atom": round(1000 * (run.energy_ev - best.energy_ev) / len(atoms), 2),
                "pressure_gpa": round(run.pressure_gpa, 2),
            }
        )
    gpaw = compute(atoms, shape, DFTSettings(engine="gpaw", cutoff_ev=chosen_ev))
    return {
        "grid": list(shape),
        "qe_cutoff_series": rows,
        "gpaw_vs_qe_at_chosen_cutoff": {
            "cutoff_ev": chosen_ev,
            **compare(gpaw.elf.values, runs[chosen_ev].elf.values),
            "pressure_gpa_gpaw": round(gpaw.pressure_gpa, 2),
        },
    }


def kpoint_series(atoms, cutoff_ev: float) -> dict:
    """Gamma-only labels against 2x2x2 and 3x3x3 Monkhorst-Pack meshes at the chosen cutoff."""
    shape = dft_grid_shape(atoms.cell.array, 0.12, cutoff_ev)
    length = float(atoms.cell.lengths()[0])
    runs = {"gamma": compute(atoms, shape, DFTSettings(engine="qe", cutoff_ev=cutoff_ev))}
    for n in (2, 3):
        spacing = 2 * np.pi / length / n + 1e-6
        runs[f"{n}x{n}x{n}"] = compute(atoms, shape, DFTSettings(engine="qe", cutoff_ev=cutoff_ev, kspacing=spacing))
    best = runs["3x3x3"]
    return {
        name: {**compare(run.elf.values, best.elf.values), "pressure_gpa": round(run.pressure_gpa, 2),
               "energy_mev_per_atom": round(1000 * (run.energy_ev - best.energy_ev) / len(atoms), 2)}
        for name, run in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--chosen-cutoff", type=float, default=680.0)
    parser.add_argument("--series", choices=("cutoff", "kpoints", "both"), default="both")
    args = parser.parse_args()
    report = {}
    for rs in (1.25, 1.75):
        atoms = random_atomic_hydrogen(64, rs, seed=11)
        entry = report.setdefault(f"H64_rs{rs}", {})
        if args.series in ("cutoff", "both"):
            entry.update(cutoff_series(atoms, args.chosen_cutoff))
        if args.series in ("kpoints", "both"):
            entry["kpoint_series_vs_3x3x3"] = kpoint_series(atoms, args.chosen_cutoff)
        print(json.dumps({f"H64_rs{rs}": entry}, indent=1), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
