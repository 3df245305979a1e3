"""Cutoff and k-point convergence of GPAW ELF for metal prototypes, and time per structure.

For La fcc and Li bcc at ambient and half volume: the ELF at increasing cutoffs (k-spacing
0.2 1/Å) and at increasing k-point density (cutoff 500 eV), each compared with the densest
setting on one grid (ELF MAE, max, histogram W1), with energy, pressure and wall time.

Run:  python benchmarks/metal_convergence.py [--out benchmarks/results/metal_convergence.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from elfkit.data.metals import build
from elfkit.dft import DFTSettings, compute
from elfkit.dft.base import dft_grid_shape

import dft_convergence

CUTOFFS_EV = (300.0, 400.0, 500.0)
KSPACINGS = (0.4, 0.3, 0.25, 0.2)


def series(atoms) -> dict:
    shape = dft_grid_shape(atoms.cell.array, 0.12, max(CUTOFFS_EV))
    runs = {}
    for cutoff in CUTOFFS_EV:
        runs[f"cutoff {cutoff:g}"] = compute(atoms, shape, DFTSettings("gpaw", cutoff, 0.2, 0.2))
    for k in KSPACINGS[:-1]:
        runs[f"kspacing {k:g}"] = compute(atoms, shape, DFTSettings("gpaw", max(CUTOFFS_EV), k, 0.2))
    best = runs[f"cutoff {max(CUTOFFS_EV):g}"]
    return {
        "grid": list(shape),
        **{
            name: {
                **dft_convergence.compare(run.elf.values, best.elf.values),
                "energy_mev_per_atom": round(1000 * (run.energy_ev - best.energy_ev) / len(atoms), 2),
                "pressure_gpa": round(run.pressure_gpa, 2),
                "kpoints": run.metadata["kpoints"],
                "seconds": run.metadata["wall_seconds"],
            }
            for name, run in runs.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    report = {}
    for prototype, element in (("fcc", "La"), ("bcc", "Li")):
        for fraction in (1.0, 0.5):
            name = f"{element}-{prototype}-V{fraction:g}"
            report[name] = series(build(prototype, [element], fraction))
            print(json.dumps({name: report[name]}, indent=1), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
