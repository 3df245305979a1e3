"""Summary numbers of a crystal structure, as `elfkit info` prints them."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms
from ase.units import _amu

from elfkit.grid import DEFAULT_SPACING_ANGSTROM, Grid
from elfkit.sad import electron_count
from elfkit.errors import SymmetryError
from elfkit.symmetry import space_group, symmetric_grid_shape
from elfkit.units import BOHR_IN_ANGSTROM


@dataclass(frozen=True)
class StructureInfo:
    """Formula, symmetry, volume (Å³), mass density (g/cm³), electrons, rs (bohr), and the
    grid for the spacing: plain, and the smallest one every symmetry operation maps onto itself."""

    formula: str
    natoms: int
    space_group: str
    space_group_number: int
    volume_angstrom3: float
    density_g_cm3: float
    electrons_total: float
    electrons_valence: float
    rs_bohr: float
    grid_spacing_angstrom: float
    grid_shape: tuple[int, int, int]
    grid_shape_symmetric: tuple[int, int, int] | None

    def as_dict(self) -> dict:
        """Plain-JSON form."""
        return asdict(self)


def wigner_seitz_radius(volume_angstrom3: float, electrons: float) -> float:
    """rs in bohr: radius of the sphere holding one electron, (3 V / (4 pi N))^(1/3)."""
    volume_bohr3 = volume_angstrom3 / BOHR_IN_ANGSTROM**3
    return float((3 * volume_bohr3 / (4 * np.pi * electrons)) ** (1 / 3))


def describe(atoms: Atoms, spacing: float = DEFAULT_SPACING_ANGSTROM) -> StructureInfo:
    """Collect the summary of `atoms`; rs counts valence electrons (noble-gas core excluded)."""
    volume = float(atoms.get_volume())
    symbol, number = space_group(atoms)
    valence = electron_count(atoms, "valence")
    grid = Grid.for_spacing(atoms.cell.array, spacing)
    return StructureInfo(
        formula=atoms.get_chemical_formula(mode="hill"),
        natoms=len(atoms),
        space_group=symbol,
        space_group_number=number,
        volume_angstrom3=volume,
        density_g_cm3=float(atoms.get_masses().sum() * _amu * 1e3 / (volume * 1e-24)),
        electrons_total=electron_count(atoms, "total"),
        electrons_valence=valence,
        rs_bohr=wigner_seitz_radius(volume, valence),
        grid_spacing_angstrom=spacing,
        grid_shape=grid.shape,
        grid_shape_symmetric=_symmetric_shape(atoms, spacing),
    )


def _symmetric_shape(atoms: Atoms, spacing: float) -> tuple[int, int, int] | None:
    try:
        return symmetric_grid_shape(atoms, spacing)
    except SymmetryError:
        return None
