"""NumPy files: `.npz` holds the field and its structure; `.npy` holds the bare array only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from elfkit.errors import FieldFormatError
from elfkit.field import Field
from elfkit.grid import GRID_CONVENTION
from elfkit.io._files import atomic_output

_REQUIRED = ("values", "cell", "numbers", "positions", "quantity")


def read_npz_field(path: str | Path) -> Field:
    """Read an elfkit `.npz` field (values, structure in Å, quantity)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in _REQUIRED if key not in archive.files]
            if missing:
                raise FieldFormatError(f"{path}: not an elfkit field archive (missing {', '.join(missing)})")
            content = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError) as exc:
        raise FieldFormatError(f"{path}: cannot read the .npz archive ({exc})") from None
    atoms = Atoms(numbers=content["numbers"], positions=content["positions"], cell=content["cell"], pbc=True)
    return Field(
        atoms,
        content["values"],
        str(content["quantity"]),
        spin_values=content.get("spin_values"),
        metadata={"source_format": "npz"},
    )


def write_npz_field(path: str | Path, field: Field) -> None:
    """Write `field` and its structure to a compressed `.npz` archive."""
    arrays = {
        "values": field.values,
        "cell": field.atoms.cell.array,
        "numbers": field.atoms.numbers,
        "positions": field.atoms.positions,
        "quantity": np.array(field.quantity),
        "grid_convention": np.array(GRID_CONVENTION),
    }
    if field.spin_values is not None:
        arrays["spin_values"] = field.spin_values
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)


def read_npy_values(path: str | Path) -> np.ndarray:
    """Read the bare 3D array of a `.npy` file."""
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise FieldFormatError(f"{path}: cannot read the .npy file ({exc})") from None
    if values.ndim != 3:
        raise FieldFormatError(f"{path}: expected a 3D array, found shape {values.shape}")
    return values


def write_npy_field(path: str | Path, field: Field) -> None:
    """Write the bare values of `field` to `.npy` (the structure is not kept)."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, field.values)
