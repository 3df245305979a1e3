"""NumPy files: `.npz` holds the field and its structure; `.npy` holds the bare array only."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from elfkit.errors import FieldFormatError
from elfkit.field import QUANTITIES, Field
from elfkit.grid import GRID_CONVENTION
from elfkit.io._files import atomic_output
from elfkit.io.structures import atoms_from_arrays

_REQUIRED = ("values", "cell", "numbers", "positions", "quantity")


_UNREADABLE = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)
"""What NumPy raises for a truncated, corrupt or non-NumPy file."""


def read_npz_field(path: str | Path) -> Field:
    """Read an elfkit `.npz` field (values, structure in Å, quantity)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise FieldFormatError(f"{path}: not an elfkit field archive (a bare array, not an .npz archive)")
            missing = [key for key in _REQUIRED if key not in archive.files]
            if missing:
                raise FieldFormatError(f"{path}: not an elfkit field archive (missing {', '.join(missing)})")
            content = {key: archive[key] for key in archive.files}
    except _UNREADABLE as exc:
        raise FieldFormatError(f"{path}: cannot read the .npz archive ({_reason(exc)})") from None
    quantity = str(content["quantity"])
    if quantity not in QUANTITIES:
        raise FieldFormatError(f"{path}: unknown quantity {quantity!r} (elfkit writes one of {', '.join(QUANTITIES)})")
    atoms = atoms_from_arrays(content["numbers"], content["positions"], content["cell"], str(path))
    if content["values"].ndim != 3:
        raise FieldFormatError(f"{path}: the values are not a 3D grid (shape {content['values'].shape})")
    spin = content.get("spin_values")
    if spin is not None and spin.shape != content["values"].shape:
        raise FieldFormatError(f"{path}: the spin block {spin.shape} and the values {content['values'].shape} differ in shape")
    return Field(atoms, content["values"], quantity, spin_values=spin, metadata={"source_format": "npz"})


def _reason(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


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
    except _UNREADABLE as exc:
        raise FieldFormatError(f"{path}: cannot read the .npy file ({_reason(exc)})") from None
    if not isinstance(values, np.ndarray):
        raise FieldFormatError(f"{path}: an .npz archive, not a bare .npy array")
    if values.ndim != 3:
        raise FieldFormatError(f"{path}: expected a 3D array, found shape {values.shape}")
    return values


def write_npy_field(path: str | Path, field: Field) -> None:
    """Write the bare values of `field` to `.npy` (the structure is not kept)."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, field.values)
