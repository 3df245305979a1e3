"""A volumetric field: an array on a grid, always paired with the structure it belongs to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from ase import Atoms

from elfkit.errors import FieldFormatError, GridError
from elfkit.grid import Grid

Quantity = Literal["elf", "density", "scalar"]
QUANTITIES: tuple[str, ...] = ("elf", "density", "scalar")
"""elf: dimensionless ELF; density: electrons/Å³; scalar: any other quantity, kept as is."""


@dataclass(eq=False)
class Field:
    """Values on the periodic grid of `atoms.cell` (see `elfkit.grid` for the convention).

    `values` has shape (N1, N2, N3). `spin_values` holds a second spin block when the
    source had one: the magnetisation density (up - down, electrons/Å³) for a density,
    the spin-down ELF for an ELF (then `values` is the spin-up ELF, as in VASP's ELFCAR).
    """

    atoms: Atoms
    values: np.ndarray
    quantity: Quantity = "scalar"
    spin_values: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.quantity not in QUANTITIES:
            raise FieldFormatError(f"unknown quantity {self.quantity!r}; a field is one of {', '.join(QUANTITIES)}")
        self.values = np.asarray(self.values)
        if self.values.ndim != 3:
            raise GridError(f"a field needs a 3D array, got shape {self.values.shape}")
        if self.spin_values is not None:
            self.spin_values = np.asarray(self.spin_values)
            if self.spin_values.shape != self.values.shape:
                raise GridError("the spin block and the main block have different grids")

    @property
    def grid(self) -> Grid:
        """The grid the values live on."""
        return Grid(self.atoms.cell.array, self.values.shape)


def validate_field(field: Field, source: str = "field") -> None:
    """Check a field read from `source`: a valid crystal (elfkit.io.validate_structure) and
    finite real numbers on a grid of at least one point per axis; FieldFormatError (or
    StructureError) naming `source` and the problem if not."""
    from elfkit.io.structures import validate_structure

    validate_structure(field.atoms, source)
    blocks = [("values", field.values)] + ([("spin block", field.spin_values)] if field.spin_values is not None else [])
    for name, block in blocks:
        if block.dtype.kind not in "iuf":
            raise FieldFormatError(f"{source}: the {name} are not real numbers (dtype {block.dtype})")
        if min(block.shape) < 1:
            raise FieldFormatError(f"{source}: the grid {block.shape} has no points")
        if not np.all(np.isfinite(block)):
            bad = int(np.size(block) - np.count_nonzero(np.isfinite(block)))
            raise FieldFormatError(f"{source}: {bad} of the {block.size} {name} are not finite (nan or inf)")
