"""Validation of elfkit's QE pseudopotentials against GPAW: the ELF of the same structures on
the same grid, for each element in its bcc and fcc forms at ambient and half volume.

A pseudopotential passes when every ELF mean absolute difference is below 0.01.

Run:  python benchmarks/pseudo_validation.py Li Na ... [--pseudo-dir DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from report import emit

from elfkit.data.metals import build
from elfkit.dft import DFTSettings, compute
from elfkit.dft.base import dft_grid_shape

TOLERANCE = 0.01


def validate_element(symbol: str, pseudo_dir: str | None, cutoff_ev: float, kspacing: float) -> dict:
    """ELF MAE between QE (our pseudopotential) and GPAW for four structures of `symbol`."""
    rows = {}
    for prototype in ("bcc", "fcc"):
        for fraction in (1.0, 0.5):
            atoms = build(prototype, [symbol], fraction)
            shape = dft_grid_shape(atoms.cell.array, 0.12, cutoff_ev)
            qe = compute(atoms, shape, DFTSettings("qe", cutoff_ev, kspacing, 0.2, pseudo_dir=pseudo_dir))
            gpaw = compute(atoms, shape, DFTSettings("gpaw", cutoff_ev, kspacing, 0.2))
            rows[f"{prototype} V={fraction:g}"] = {
                "elf_mae": round(float(np.abs(qe.elf.values - gpaw.elf.values).mean()), 5),
                "pressure_gpa": [round(qe.pressure_gpa, 2), round(gpaw.pressure_gpa, 2)],
            }
    return {"passes": all(r["elf_mae"] < TOLERANCE for r in rows.values()), "structures": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("elements", nargs="+")
    parser.add_argument("--pseudo-dir", default=None)
    parser.add_argument("--cutoff", type=float, default=680.0)
    parser.add_argument("--kspacing", type=float, default=0.3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    emit({e: validate_element(e, args.pseudo_dir, args.cutoff, args.kspacing) for e in args.elements}, args.out)


if __name__ == "__main__":
    main()
