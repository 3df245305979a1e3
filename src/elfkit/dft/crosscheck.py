"""Agreement of the valence ELF from QE (elfkit's pseudopotentials) and GPAW (PAW) on the
same structure and grid: the criterion of `benchmarks/pseudo_validation.py` and of
`elfkit data validate`.

Inside the pseudisation spheres (per element, the larger of the pseudopotential's r_c and
the GPAW setup's PAW r_cut) each engine's smooth valence wavefunctions are arbitrary by
construction, so the engines are compared outside them: the ELF mean absolute difference
there, or over the whole cell where the spheres leave less than MIN_OUTSIDE of it
(overlapping spheres at high compression). Both differences are always reported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from elfkit.units import BOHR_IN_ANGSTROM

TOLERANCE = 0.01
"""Largest ELF mean absolute difference at which two engines agree."""
MIN_OUTSIDE = 0.05
"""Below this fraction of the cell outside the spheres, the whole cell is compared."""


def pseudisation_radius_bohr(upf: Path) -> float:
    """Largest pseudisation radius (bohr) in the generation table ld1.x writes into a UPF file."""
    text = Path(upf).read_text()
    table = text.split("Generation configuration:", 1)[-1].split("Pseudization used", 1)[0]
    radii = [float(line.split()[4]) for line in table.strip().splitlines() if len(line.split()) >= 6]
    if not radii:
        raise ValueError(f"{upf}: no generation configuration table")
    return max(radii)


def paw_radius_bohr(symbol: str, setup: str) -> float:
    """Largest PAW cut-off radius (bohr) of GPAW's PBE setup `setup` ('paw', '1', ...) of `symbol`."""
    from gpaw.setup import create_setup

    return float(max(create_setup(symbol, "PBE", type=setup).rcut_j))


def core_radii(symbols, pseudo_dir: Path | None, gpaw_setups: dict[str, str]) -> dict[str, float]:
    """Per element, the larger of its QE pseudisation radius and GPAW PAW radius (Å)."""
    from elfkit.dft.qe import PACKAGE_PSEUDO_DIR, find_pseudopotentials

    folder = Path(pseudo_dir or PACKAGE_PSEUDO_DIR).resolve()
    upfs = find_pseudopotentials(sorted(set(symbols)), folder)
    return {
        symbol: max(pseudisation_radius_bohr(upf), paw_radius_bohr(symbol, gpaw_setups.get(symbol, "paw")))
        * BOHR_IN_ANGSTROM
        for symbol, upf in upfs.items()
    }


def outside_cores(atoms: Atoms, shape, radii: dict[str, float]) -> np.ndarray:
    """Boolean mask of the grid points farther than its element's radius (Å) from every nucleus."""
    from elfkit.analysis.metrics import distance_to_nearest_nucleus

    outside = np.ones(tuple(shape), dtype=bool)
    symbols = np.array(atoms.get_chemical_symbols())
    for symbol, radius in radii.items():
        if (symbols == symbol).any():
            outside &= distance_to_nearest_nucleus(atoms[symbols == symbol], shape) > radius
    return outside


def elf_agreement(elf: np.ndarray, other: np.ndarray, atoms: Atoms, radii: dict[str, float]) -> dict:
    """ELF differences of two engines on one grid: whole cell (mean and max), outside the
    spheres of `radii` (None where less than MIN_OUTSIDE of the cell is outside), the
    fraction outside, the judged MAE (outside, else whole cell) and whether it is below TOLERANCE."""
    difference = np.abs(np.asarray(elf, dtype=float) - np.asarray(other, dtype=float))
    outside = outside_cores(atoms, difference.shape, radii)
    fraction = float(outside.mean())
    mae_outside = float(difference[outside].mean()) if fraction >= MIN_OUTSIDE else None
    judged = float(difference.mean()) if mae_outside is None else mae_outside
    return {
        "elf_mae": round(float(difference.mean()), 5),
        "elf_max": round(float(difference.max()), 4),
        "elf_mae_outside_cores": None if mae_outside is None else round(mae_outside, 5),
        "fraction_outside_cores": round(fraction, 3),
        "elf_mae_judged": round(judged, 5),
        "agrees": judged < TOLERANCE,
    }
