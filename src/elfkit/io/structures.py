"""Reading and validating crystal structures (every format ASE reads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from elfkit.errors import StructureError

MIN_DISTANCE_ANGSTROM = 0.5
MAX_ATOMIC_NUMBER = 83
"""elfkit covers H (Z=1) to Bi (Z=83)."""


def read_structure(path: str | Path, index: int | str = -1) -> Atoms:
    """Read a periodic structure (positions in Å) from any file ASE can read, and validate it.

    `index` selects the frame of multi-frame files (default: the last one).
    Raises StructureError with one line naming the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise StructureError(f"{path}: no such file")
    if path.stat().st_size == 0 or not path.read_bytes().strip():
        raise StructureError(f"{path}: the file is empty")
    atoms = _ase_read(path, index)
    validate_structure(atoms, source=str(path))
    return atoms


def _ase_read(path: Path, index) -> Atoms:
    import ase.io

    try:
        atoms = ase.io.read(path, index=index)
    except KeyError as exc:
        raise StructureError(f"{path}: unknown element {exc.args[0]!r}") from None
    except Exception as exc:  # ASE raises many types for malformed input
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise StructureError(f"{path}: cannot read a structure ({reason})") from None
    if isinstance(atoms, list):
        atoms = atoms[-1] if atoms else Atoms()
    return atoms


def validate_structure(atoms: Atoms, source: str = "structure") -> None:
    """Check that `atoms` is a usable periodic crystal; raise StructureError if not.

    Checks: at least one atom, elements H..Bi, periodic in 3D, positive cell volume (Å³),
    no two atoms (or periodic images) closer than 0.5 Å.
    """
    if len(atoms) == 0:
        raise StructureError(f"{source}: the structure has no atoms")
    _check_elements(atoms, source)
    if not all(atoms.pbc) or atoms.cell.rank < 3:
        raise StructureError(f"{source}: the structure is not periodic in three directions (no 3D cell)")
    volume = float(np.linalg.det(atoms.cell.array))
    if volume <= 1e-6:
        raise StructureError(
            f"{source}: the cell volume is {volume:.4g} Å³; it must be positive (right-handed cell)"
        )
    _check_distances(atoms, source)


def _check_elements(atoms: Atoms, source: str) -> None:
    numbers = atoms.numbers
    bad = sorted(set(int(z) for z in numbers if z < 1 or z > MAX_ATOMIC_NUMBER))
    if bad:
        names = ", ".join(chemical_symbols[z] if 0 < z < len(chemical_symbols) else f"Z={z}" for z in bad)
        raise StructureError(f"{source}: unsupported element {names} (elfkit covers H to Bi)")


def _check_distances(atoms: Atoms, source: str) -> None:
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, MIN_DISTANCE_ANGSTROM)
    if len(d):
        n = int(np.argmin(d))
        a, b = int(i[n]), int(j[n])
        what = "a periodic image of itself" if a == b else f"atom {b + 1} ({atoms[b].symbol})"
        raise StructureError(
            f"{source}: atom {a + 1} ({atoms[a].symbol}) is {d[n]:.3f} Å from {what}; "
            f"atoms closer than {MIN_DISTANCE_ANGSTROM} Å overlap"
        )
