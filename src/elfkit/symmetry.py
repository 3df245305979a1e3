"""Crystal symmetry from spglib, as Seitz operators acting on fractional coordinates and on grids.

An operator {R|t} maps fractional coordinates u to R u + t (R integer 3x3, t fractional).
On a grid of shape N it permutes points when it is commensurate with the grid:
N_a R_ab / N_b is an integer for all a, b and N_a t_a is an integer for all a. The
commensurate operators form a subgroup, over which `symmetrize` can always average.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from elfkit.errors import SymmetryError

DEFAULT_SYMPREC = 1e-3
"""Distance tolerance (Å) for spglib."""
_GRID_TOLERANCE = 0.05
"""How far (in grid steps) a mapped point may sit from a grid point and still count as on it."""


@dataclass(frozen=True)
class SeitzOperator:
    """{R|t}: u -> R u + t in fractional coordinates."""

    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, frac: np.ndarray) -> np.ndarray:
        """Image of fractional coordinates `frac` (shape (..., 3)); not wrapped into the cell."""
        return frac @ self.rotation.T + self.translation


def _spglib_cell(atoms: Atoms):
    return (atoms.cell.array, atoms.get_scaled_positions(wrap=True), atoms.numbers)


def _spglib():
    """spglib with errors raised as exceptions (its documented modern behaviour)."""
    import spglib
    import spglib.error

    spglib.error.OLD_ERROR_HANDLING = False
    return spglib


def space_group(atoms: Atoms, symprec: float = DEFAULT_SYMPREC) -> tuple[str, int]:
    """International symbol and number of the space group of `atoms` (tolerance in Å)."""
    spglib = _spglib()
    try:
        dataset = spglib.get_symmetry_dataset(_spglib_cell(atoms), symprec=symprec)
    except spglib.error.SpglibError:
        return "P1", 1
    return str(dataset.international), int(dataset.number)


def seitz_operators(atoms: Atoms, symprec: float = DEFAULT_SYMPREC) -> list[SeitzOperator]:
    """All space-group operations of `atoms` in the basis of its own cell (translations in [0, 1))."""
    spglib = _spglib()
    try:
        symmetry = spglib.get_symmetry(_spglib_cell(atoms), symprec=symprec)
    except spglib.error.SpglibError:
        return [SeitzOperator(np.eye(3, dtype=int), np.zeros(3))]
    return [
        SeitzOperator(np.array(r, dtype=int), np.mod(np.array(t, dtype=float), 1.0))
        for r, t in zip(symmetry["rotations"], symmetry["translations"])
    ]


def grid_map(operator: SeitzOperator, shape) -> tuple[np.ndarray, np.ndarray] | None:
    """Integer form (M, s) of `operator` on the grid: point i goes to (M i + s) mod N.

    Returns None when the operator is not commensurate with the grid.
    """
    n = np.array(shape, dtype=float)
    m = operator.rotation * n[:, None] / n[None, :]
    s = operator.translation * n
    if np.abs(m - np.round(m)).max() > 1e-9:
        return None
    if np.abs(s - np.round(s)).max() > _GRID_TOLERANCE:
        return None
    return np.round(m).astype(int), np.round(s).astype(int)


def grid_permutation(operator: SeitzOperator, shape) -> np.ndarray:
    """Flat indices p with p[i] the grid point that point i is mapped to by `operator`,
    so `values.ravel()[p]` is f(R u + t) sampled on the grid.

    Raises SymmetryError when the operator is not commensurate with the grid.
    """
    mapping = grid_map(operator, shape)
    if mapping is None:
        raise SymmetryError(f"operator {_describe(operator)} is not commensurate with the grid {tuple(shape)}")
    return np.ravel_multi_index(_mapped_indices(mapping, shape), shape)


def _mapped_indices(mapping, shape) -> tuple[np.ndarray, ...]:
    m, s = mapping
    index = np.indices(shape).reshape(3, -1)
    target = (m @ index + s[:, None]) % np.array(shape)[:, None]
    return tuple(target)


def commensurate_operators(operators, shape) -> tuple[list[SeitzOperator], list[SeitzOperator]]:
    """Split `operators` into those that permute the grid and those that do not."""
    kept = [op for op in operators if grid_map(op, shape) is not None]
    dropped = [op for op in operators if grid_map(op, shape) is None]
    return kept, dropped


def symmetrize(values: np.ndarray, atoms: Atoms, symprec: float = DEFAULT_SYMPREC, strict: bool = True) -> np.ndarray:
    """Average a grid field over the space group of `atoms`: f_sym(u) = mean_g f(R_g u + t_g).

    With strict=True an operator that does not map the grid onto itself is an error
    (SymmetryError naming it); with strict=False the average runs over the commensurate
    subgroup only. The result is idempotent and invariant under every operator used.
    """
    values = np.asarray(values)
    kept, dropped = commensurate_operators(seitz_operators(atoms, symprec), values.shape)
    if dropped and strict:
        raise SymmetryError(
            f"{len(dropped)} of {len(kept) + len(dropped)} symmetry operations are not commensurate "
            f"with the grid {values.shape}, e.g. {_describe(dropped[0])}; choose grid sizes the "
            "symmetry allows (equal sizes along equivalent axes) or pass strict=False"
        )
    total = np.zeros(values.size, dtype=float)
    flat = values.ravel()
    for op in kept:
        total += flat[grid_permutation(op, values.shape)]
    return (total / len(kept)).reshape(values.shape)


def _describe(operator: SeitzOperator) -> str:
    rows = ",".join("".join(f"{v:+d}" for v in row) for row in operator.rotation)
    return f"{{R=[{rows}] | t={np.round(operator.translation, 4).tolist()}}}"


def symmetric_grid_shape(atoms: Atoms, spacing: float, symprec: float = DEFAULT_SYMPREC, growth: float = 1.5):
    """Smallest FFT-friendly grid with spacing <= `spacing` (Å) that every space-group
    operator of `atoms` maps onto itself; SymmetryError if none exists within `growth`
    times the plain grid size along each axis."""
    from itertools import product

    from elfkit.grid import Grid, fft_friendly_size

    operators = seitz_operators(atoms, symprec)
    base = Grid.for_spacing(atoms.cell.array, spacing).shape
    candidates = [_friendly_sizes(n, int(n * growth) + 1, fft_friendly_size) for n in base]
    for shape in sorted(product(*candidates), key=lambda s: (np.prod(s), s)):
        if not commensurate_operators(operators, shape)[1]:
            return tuple(int(n) for n in shape)
    raise SymmetryError(f"no grid up to {growth}x the size {base} is commensurate with every symmetry operation")


def _friendly_sizes(low: int, high: int, fft_friendly_size) -> list[int]:
    sizes, n = [], low
    while n <= high:
        n = fft_friendly_size(n)
        sizes.append(n)
        n += 1
    return sizes
