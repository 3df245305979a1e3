"""Reading and writing structures and volumetric fields; nothing else in elfkit knows formats.

Volumetric formats, chosen from the file name (a trailing .gz is read and written
compressed):

| name                         | format                  | values in the file               |
|------------------------------|-------------------------|----------------------------------|
| *ELFCAR*                     | VASP ELFCAR             | raw ELF                          |
| *CHGCAR*, CHG, *PARCHG*      | VASP CHGCAR             | density x cell volume (e)        |
| *.cube, *.cub                | Gaussian cube (QE pp.x) | ELF raw; density in e/bohr³      |
| *.xsf                        | XCrySDen XSF            | as is (boundary point repeated)  |
| *.npz                        | NumPy archive (elfkit)  | as is, with the structure        |
| *.npy                        | NumPy array             | as is, without any structure     |

In memory every field follows `elfkit.grid.GRID_CONVENTION`, with densities in e/Å³.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from elfkit.errors import FieldFormatError
from elfkit.field import QUANTITIES, Field, validate_field
from elfkit.io._files import base_name
from elfkit.io.arrays import read_npy_values, read_npz_field, write_npy_field, write_npz_field
from elfkit.io.cube import read_cube_field, write_cube_field
from elfkit.io.outputs import check_input_file, check_output_file, check_output_folder, staged_folder
from elfkit.io.structures import read_frames, read_structure, validate_structure
from elfkit.io.vasp import read_vasp_volumetric, vasp_quantity, write_vasp_volumetric
from elfkit.io.xsf import read_xsf_field, write_xsf_field

__all__ = [
    "read_field",
    "read_frames",
    "write_field",
    "save_field",
    "field_format",
    "check_field_output",
    "check_output_file",
    "check_output_folder",
    "staged_folder",
    "read_structure",
    "validate_structure",
]

FORMATS = ("vasp", "cube", "xsf", "npz", "npy")


def field_format(path: str | Path) -> str:
    """The volumetric format implied by a file name: vasp, cube, xsf, npz or npy."""
    name = base_name(path)
    upper, suffix = name.upper(), Path(name).suffix.lower()
    if suffix in (".cube", ".cub"):
        return "cube"
    if suffix in (".xsf", ".npz", ".npy"):
        return suffix[1:]
    if "ELFCAR" in upper or "CHGCAR" in upper or "PARCHG" in upper or upper == "CHG":
        return "vasp"
    raise FieldFormatError(
        f"{path}: cannot tell the volumetric format from the name "
        "(expected ELFCAR, CHGCAR, CHG, PARCHG, .cube, .xsf, .npz or .npy)"
    )


def check_field_output(path: str | Path) -> Path:
    """Check, before any work, that a field can be written at `path`: a known volumetric
    format (`field_format`) and a writable file path (`check_output_file`). Returns the Path."""
    field_format(path)
    return check_output_file(path)


def read_field(path: str | Path, quantity: str | None = None, structure: Atoms | None = None) -> Field:
    """Read a volumetric file into a Field (grid convention of elfkit.grid; densities e/Å³).

    Every field is validated here, where it enters elfkit (`elfkit.field.validate_field`:
    structure, finite values). `quantity` ('elf', 'density' or 'scalar') tells formats that do not record it (foreign
    cube/XSF, .npy) what the numbers are; VASP names and elfkit-written files record it
    themselves. `structure` supplies the atoms for a bare `.npy` array.
    """
    if quantity is not None and quantity not in QUANTITIES:
        raise FieldFormatError(f"unknown quantity {quantity!r}; use one of {', '.join(QUANTITIES)}")
    kind = field_format(path)
    check_input_file(path, FieldFormatError)
    if kind == "vasp":
        field = read_vasp_volumetric(path)
    elif kind == "cube":
        field = read_cube_field(path, quantity or "scalar")
    elif kind == "xsf":
        field = read_xsf_field(path, quantity or "scalar")
    elif kind == "npz":
        field = read_npz_field(path)
    else:
        field = _read_npy(path, quantity or "scalar", structure)
    validate_field(field, str(path))
    return field


def _read_npy(path, quantity: str, structure: Atoms | None) -> Field:
    if structure is None:
        raise FieldFormatError(f"{path}: a .npy file holds no structure; give one (--structure)")
    return Field(structure.copy(), read_npy_values(path), quantity, metadata={"source_format": "npy"})


def write_field(
    path: str | Path,
    atoms: Atoms,
    data: np.ndarray,
    quantity: str | None = None,
    spin_values: np.ndarray | None = None,
) -> None:
    """Write `data` (shape N1, N2, N3 on the cell of `atoms`) to `path` in the format its name implies.

    `quantity` defaults to what the name implies (ELFCAR: 'elf', CHGCAR: 'density'),
    else 'scalar'. Densities are given in e/Å³. The file appears only once complete.
    """
    if quantity is None:
        quantity = vasp_quantity(path) if field_format(path) == "vasp" else "scalar"
    save_field(path, Field(atoms, np.asarray(data), quantity, spin_values=spin_values))


def save_field(path: str | Path, field: Field) -> None:
    """Write a Field to `path` in the format its name implies (see the module table)."""
    kind = field_format(path)
    if kind == "vasp":
        _check_vasp_quantity(path, field.quantity)
        write_vasp_volumetric(path, field)
    elif kind == "cube":
        write_cube_field(path, field)
    elif kind == "xsf":
        write_xsf_field(path, field)
    elif kind == "npz":
        write_npz_field(path, field)
    else:
        write_npy_field(path, field)


def _check_vasp_quantity(path, quantity: str) -> None:
    expected = vasp_quantity(path)
    if quantity not in (expected, "scalar"):
        target = "an ELFCAR holds an ELF" if expected == "elf" else "a CHGCAR holds a density"
        raise FieldFormatError(f"{path}: cannot store a {quantity} field; {target}")
