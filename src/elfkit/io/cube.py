"""Gaussian cube files (Quantum ESPRESSO `pp.x` output_format=6 included).

Lengths in the file are in bohr (positive grid counts), data run with z fastest; a
periodic cube holds N points per axis with voxel vectors a_i/N_i. Densities are stored in
electrons/bohr³, as Gaussian and QE do; elfkit converts them to electrons/Å³. A grid
origin other than zero is absorbed by translating the atoms, so the elfkit grid
convention (point 0 at the cell origin) holds for the returned field.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from elfkit.errors import FieldFormatError
from elfkit.field import Field
from elfkit.io._files import atomic_output, open_text_output, read_text, tagged_quantity
from elfkit.units import DENSITY_AU_TO_ANGSTROM3



def read_cube_field(path: str | Path, quantity: str = "scalar") -> Field:
    """Read a cube file. `quantity` applies unless the file names its own (elfkit writes it)."""
    from ase.io.cube import read_cube

    text = read_text(path)
    try:
        content = read_cube(io.StringIO(text), read_data=True)
        data = np.ascontiguousarray(content["data"], dtype=float)
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise FieldFormatError(f"{path}: malformed cube file ({reason})") from None
    atoms = content["atoms"]
    atoms.pbc = True
    atoms.positions -= content["origin"]
    quantity = tagged_quantity(text, quantity)
    if quantity == "density":
        data = data * DENSITY_AU_TO_ANGSTROM3
    return Field(atoms, data, quantity, metadata={"source_format": "cube"})


def write_cube_field(path: str | Path, field: Field) -> None:
    """Write `field` as a periodic cube file (bohr; densities in electrons/bohr³)."""
    from ase.io.cube import write_cube

    data = field.values / DENSITY_AU_TO_ANGSTROM3 if field.quantity == "density" else field.values
    with atomic_output(path) as tmp, open_text_output(tmp) as handle:
        write_cube(handle, field.atoms, data=data, comment=f"elfkit quantity={field.quantity}")
