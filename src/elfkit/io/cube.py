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
from elfkit.io._files import atomic_text_output, read_text, tagged_quantity, write_values
from elfkit.units import BOHR_IN_ANGSTROM, DENSITY_AU_TO_ANGSTROM3



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
    """Write `field` as a periodic cube file (bohr; densities in electrons/bohr³; z fastest)."""
    data = field.values / DENSITY_AU_TO_ANGSTROM3 if field.quantity == "density" else field.values
    atoms = field.atoms
    with atomic_text_output(path) as handle:
        handle.write(f"elfkit quantity={field.quantity}\nOUTER LOOP: X, MIDDLE LOOP: Y, INNER LOOP: Z\n")
        handle.write(f"{len(atoms):5d}{0.0:14.8f}{0.0:14.8f}{0.0:14.8f}\n")
        for n, vector in zip(data.shape, atoms.cell.array / BOHR_IN_ANGSTROM):
            handle.write(f"{n:5d}" + "".join(f"{v:14.8f}" for v in vector / n) + "\n")
        for z, position in zip(atoms.numbers, atoms.positions / BOHR_IN_ANGSTROM):
            handle.write(f"{z:5d}{float(z):14.8f}" + "".join(f"{v:14.8f}" for v in position) + "\n")
        write_values(handle, np.asarray(data, dtype=float).ravel(), per_line=6, fmt="%15.8E")
