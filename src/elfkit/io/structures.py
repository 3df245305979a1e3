"""Reading and validating crystal structures (every format ASE reads)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from elfkit.errors import StructureError
from elfkit.io.outputs import check_input_file

MIN_DISTANCE_ANGSTROM = 0.5
MAX_ATOMIC_NUMBER = 83
"""elfkit covers H (Z=1) to Bi (Z=83)."""
MIN_PLANE_SPACING_ANGSTROM = 0.25
"""Thinnest cell accepted (Å between lattice planes). Any lattice whose atoms keep
MIN_DISTANCE_ANGSTROM from their images has a reduced cell at least ~0.4 Å thick; a thinner
cell is degenerate or badly conditioned, and its neighbour search would need
(MIN_DISTANCE / thickness)^3 periodic images."""


def read_structure(path: str | Path, index: int | str = -1) -> Atoms:
    """Read a periodic structure (positions in Å) from any file ASE can read, and validate it.

    `index` selects the frame of multi-frame files (default: the last one).
    Raises StructureError with one line naming the file and the problem.
    """
    path = check_input_file(path, StructureError)
    if path.stat().st_size == 0 or not path.read_bytes().strip():
        raise StructureError(f"{path}: the file is empty")
    atoms = _ase_read(path, index)
    validate_structure(atoms, source=str(path))
    return atoms


def read_frames(path: str | Path) -> list[Atoms]:
    """Every frame of a structure file (extxyz, ASE .traj, VASP XDATCAR, ...; one for
    single-structure formats), each validated; StructureError naming the file and frame."""
    path = check_input_file(path, StructureError)
    if path.stat().st_size == 0 or not path.read_bytes().strip():
        raise StructureError(f"{path}: the file is empty")
    frames = _ase_read(path, ":", all_frames=True)
    if not frames:
        raise StructureError(f"{path}: the file holds no structure")
    for number, atoms in enumerate(frames):
        validate_structure(atoms, source=str(path) if len(frames) == 1 else f"{path} (frame {number})")
    return frames


def _ase_read(path: Path, index, all_frames: bool = False):
    import ase.io

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # nan/inf arithmetic; validate_structure names it
            atoms = ase.io.read(path, index=index)
    except KeyError as exc:
        raise StructureError(f"{path}: unknown element {exc.args[0]!r}") from None
    except Exception as exc:  # ASE raises many types for malformed input
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise StructureError(f"{path}: cannot read a structure ({reason})") from None
    if all_frames:
        return atoms if isinstance(atoms, list) else [atoms]
    if isinstance(atoms, list):
        atoms = atoms[-1] if atoms else Atoms()
    return atoms


def atoms_from_arrays(numbers, positions, cell, source: str = "structure") -> Atoms:
    """Periodic Atoms from raw arrays as a file stores them (atomic numbers, positions in Å, cell
    rows in Å); StructureError naming `source` if their shapes or numbers do not make a structure.
    The crystal itself (volume, cell, overlaps) is checked by `validate_structure`."""
    numbers, positions, cell = (np.asarray(a) for a in (numbers, positions, cell))
    if numbers.ndim != 1 or positions.shape != (len(numbers), 3) or cell.shape != (3, 3):
        raise StructureError(
            f"{source}: {numbers.size} atomic numbers, positions of shape {positions.shape} and a cell of "
            f"shape {cell.shape} do not make a structure (expected N, N x 3 and 3 x 3)"
        )
    for name, array in (("atomic numbers", numbers), ("positions", positions), ("cell", cell)):
        if array.dtype.kind not in "iuf":
            raise StructureError(f"{source}: the {name} are not numbers (dtype {array.dtype})")
    if not np.all(np.isfinite(numbers)) or not np.array_equal(numbers, np.round(numbers)):
        raise StructureError(f"{source}: the atomic numbers are not whole numbers")
    _check_finite(positions, cell, source)
    _check_elements(numbers.astype(int), source)
    return Atoms(numbers=numbers.astype(int), positions=positions, cell=cell, pbc=True)


def validate_structure(atoms: Atoms, source: str = "structure") -> None:
    """Check that `atoms` is a usable periodic crystal; raise StructureError if not.

    Checks, cheapest first: at least one atom, finite positions and cell, elements H..Bi,
    fully occupied sites (no partial occupancy), periodic in 3D, positive cell volume (Å³),
    every lattice-plane spacing at least MIN_PLANE_SPACING_ANGSTROM (so a degenerate or
    badly conditioned cell is refused before any neighbour search), and no two atoms (or
    periodic images) closer than MIN_DISTANCE_ANGSTROM.
    """
    if len(atoms) == 0:
        raise StructureError(f"{source}: the structure has no atoms")
    _check_finite(atoms.positions, atoms.cell.array, source)
    _check_elements(atoms.numbers, source)
    _check_occupancy(atoms, source)
    if not all(atoms.pbc) or atoms.cell.rank < 3:
        raise StructureError(f"{source}: the structure is not periodic in three directions (no 3D cell)")
    volume = float(np.linalg.det(atoms.cell.array))
    if volume <= 1e-6:
        raise StructureError(
            f"{source}: the cell volume is {volume:.4g} Å³; it must be positive (right-handed cell)"
        )
    _check_plane_spacings(atoms.cell.array, volume, source)
    _check_distances(atoms, source)


def plane_spacings(cell) -> np.ndarray:
    """Distance (Å) between neighbouring lattice planes spanned by each pair of cell vectors:
    V / |a2 x a3|, V / |a3 x a1|, V / |a1 x a2| (the cell's thickness along each vector)."""
    cell = np.asarray(cell, dtype=float)
    areas = np.linalg.norm(np.cross(np.roll(cell, -1, axis=0), np.roll(cell, -2, axis=0)), axis=1)
    return abs(float(np.linalg.det(cell))) / areas


def _check_finite(positions, cell, source: str) -> None:
    for name, array in (("cell", cell), ("positions", positions)):
        if not np.all(np.isfinite(np.asarray(array, dtype=float))):
            raise StructureError(f"{source}: non-finite numbers (nan or inf) in the {name}")


def _check_occupancy(atoms: Atoms, source: str) -> None:
    """Refuse sites a CIF gives partial or mixed occupancy (ASE keeps only one species)."""
    for site, species in (atoms.info.get("occupancy") or {}).items():
        if len(species) != 1 or abs(sum(species.values()) - 1.0) > 1e-3:
            shares = ", ".join(f"{symbol} {share:g}" for symbol, share in species.items())
            number = int(site) + 1 if str(site).isdigit() else site
            raise StructureError(
                f"{source}: site {number} is partially occupied ({shares}); elfkit needs an ordered "
                "structure with one atom per site (build a supercell that orders them)"
            )


def _check_plane_spacings(cell: np.ndarray, volume: float, source: str) -> None:
    spacings = plane_spacings(cell)
    thinnest = int(np.argmin(spacings))
    if spacings[thinnest] < MIN_PLANE_SPACING_ANGSTROM:
        raise StructureError(
            f"{source}: the cell is degenerate or badly conditioned: it is only {spacings[thinnest]:.3g} Å thick "
            f"across lattice vector a{thinnest + 1} (at least {MIN_PLANE_SPACING_ANGSTROM} Å needed; "
            "give a reduced cell, e.g. a Niggli-reduced one)"
        )


def _check_elements(numbers: np.ndarray, source: str) -> None:
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
