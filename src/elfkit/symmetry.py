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
    return _average_over_maps(values, [grid_map(op, values.shape) for op in kept])


def _average_over_maps(values: np.ndarray, maps) -> np.ndarray:
    """mean over the integer grid maps (M, s) of f((M i + s) mod N)."""
    flat = values.ravel()
    total = np.zeros(values.size, dtype=float)
    for mapping in maps:
        total += flat[np.ravel_multi_index(_mapped_indices(mapping, values.shape), values.shape)]
    return (total / len(maps)).reshape(values.shape)


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


CRYSTAL_SEARCH_MAX_ATOMS = 1000
"""Above this many atoms `crystal_grid_maps` uses the cell's own operations only (the search is O(N²))."""


def crystal_grid_maps(atoms: Atoms, shape, symprec: float = DEFAULT_SYMPREC) -> list[tuple[np.ndarray, np.ndarray]]:
    """Integer maps (M, s), point n -> (M n + s) mod N, of every space-group operation of the
    crystal that maps the grid's points onto grid points.

    Unlike `seitz_operators`, the rotations come from the primitive cell, so a supercell whose
    own lattice is less symmetric than its crystal (a 2x1x1 supercell of a cubic crystal) keeps
    all of them; their translations are found from the atoms themselves (tolerance `symprec`, Å).
    A field periodic in the primitive lattice (a prediction) is then averaged consistently in
    any cell of the same crystal.
    """
    if len(atoms) > CRYSTAL_SEARCH_MAX_ATOMS:
        if environments_all_distinct(atoms, symprec):
            return [(np.eye(3, dtype=int), np.zeros(3, dtype=int))]
        kept, _ = commensurate_operators(seitz_operators(atoms, symprec), shape)
        return [grid_map(op, shape) for op in kept]
    n = np.array(shape, dtype=float)
    columns = atoms.cell.array.T
    maps, seen = [], set()
    for rotation in _cartesian_rotations(atoms, symprec):
        w = np.linalg.inv(columns) @ rotation @ columns
        m = n[:, None] * w / n[None, :]
        if np.abs(m - np.round(m)).max() > 1e-6:
            continue
        for translation in _translations(atoms, w, symprec):
            s = translation * n
            if np.abs(s - np.round(s)).max() > _GRID_TOLERANCE:
                continue
            mapping = (np.round(m).astype(int), np.mod(np.round(s), n).astype(int))
            key = mapping[0].tobytes() + mapping[1].tobytes()
            if key not in seen:
                seen.add(key)
                maps.append(mapping)
    return maps


_ENVIRONMENT_NEIGHBOURS = 6
_ENVIRONMENT_CUTOFF_ANGSTROM = 4.0


def environments_all_distinct(atoms: Atoms, symprec: float = DEFAULT_SYMPREC) -> bool:
    """True when no two atoms have the same element and the same distances to their six nearest
    neighbours (within 2 `symprec`, Å): then no operation but the identity maps the crystal
    onto itself (each would have to fix every atom), and spglib's search, which takes 40 s
    for 10,000 atoms, can be skipped. False means only that symmetry is possible."""
    from scipy.spatial import cKDTree

    from elfkit.geometry import point_neighbours

    pairs = point_neighbours(atoms, atoms.positions, _ENVIRONMENT_CUTOFF_ANGSTROM)
    fingerprint = np.full((len(atoms), _ENVIRONMENT_NEIGHBOURS + 1), _ENVIRONMENT_CUTOFF_ANGSTROM)
    order = np.lexsort((pairs.distance, pairs.point))
    point, distance = pairs.point[order], pairs.distance[order]
    rank = np.arange(len(point)) - np.searchsorted(point, point)
    keep = rank < fingerprint.shape[1]
    fingerprint[point[keep], rank[keep]] = distance[keep]
    fingerprint[:, 0] = 1e3 * atoms.numbers
    return not cKDTree(fingerprint).query_pairs(2 * symprec, p=np.inf)


def _cartesian_rotations(atoms: Atoms, symprec: float) -> list[np.ndarray]:
    """Distinct Cartesian rotation matrices of the crystal's point group (from its primitive cell)."""
    spglib = _spglib()
    try:
        lattice, frac, numbers = spglib.standardize_cell(_spglib_cell(atoms), to_primitive=True, no_idealize=True, symprec=symprec)
        rotations = spglib.get_symmetry((lattice, frac, numbers), symprec=symprec)["rotations"]
    except spglib.error.SpglibError:
        return [np.eye(3)]
    columns = np.asarray(lattice).T
    found: list[np.ndarray] = []
    for r in rotations:
        cartesian = columns @ r @ np.linalg.inv(columns)
        if not any(np.allclose(cartesian, other, atol=1e-6) for other in found):
            found.append(cartesian)
    return found


def primitive_atoms(atoms: Atoms, symprec: float = DEFAULT_SYMPREC) -> Atoms:
    """The crystal's primitive cell (spglib, in the input's Cartesian frame) holding one atom of
    each set the lattice translations make equivalent, at the input's own Cartesian positions
    reduced into it; `atoms` itself when no smaller cell exists. A cell and any of its
    supercells give the same primitive atoms."""
    from scipy.spatial import cKDTree

    spglib = _spglib()
    try:
        lattice = np.asarray(spglib.standardize_cell(_spglib_cell(atoms), to_primitive=True, no_idealize=True, symprec=symprec)[0])
    except spglib.error.SpglibError:
        return atoms
    ratio = abs(np.linalg.det(atoms.cell.array) / np.linalg.det(lattice))
    if round(ratio) < 2 or abs(ratio - round(ratio)) > 1e-6:
        return atoms
    frac = np.mod(atoms.positions @ np.linalg.inv(lattice), 1.0) % 1.0
    tree = cKDTree(frac, boxsize=1.0)
    tolerance = 10 * symprec / np.linalg.norm(lattice, axis=1).max()
    first = np.array([min(tree.query_ball_point(f, tolerance)) for f in frac])
    keep = np.flatnonzero(first == np.arange(len(atoms)))
    if len(keep) * round(ratio) != len(atoms):
        return atoms
    return Atoms(atoms.numbers[keep], scaled_positions=frac[keep], cell=lattice, pbc=True)


def _translations(atoms: Atoms, w: np.ndarray, symprec: float) -> list[np.ndarray]:
    """Every fractional translation t (mod 1) with W u + t mapping the atoms onto atoms of the same
    element (within `symprec` Å), tried from the images of one atom of the rarest element."""
    from scipy.spatial import cKDTree

    frac = np.mod(atoms.get_scaled_positions(wrap=True), 1.0)
    numbers = atoms.numbers
    tolerance = 10 * symprec / np.linalg.norm(atoms.cell.array, axis=1).min()
    rarest = min(np.unique(numbers), key=lambda z: (numbers == z).sum())
    anchor = int(np.flatnonzero(numbers == rarest)[0])
    image = frac @ w.T
    trees = {z: cKDTree(frac[numbers == z], boxsize=1.0) for z in np.unique(numbers)}
    probe = np.linspace(0, len(atoms) - 1, min(8, len(atoms))).astype(int)
    found = []
    for target in frac[numbers == rarest]:
        t = target - image[anchor]
        if all(_maps_onto(trees, image[i] + t, numbers[i], tolerance) for i in probe) and all(
            _maps_onto(trees, image[i] + t, numbers[i], tolerance) for i in range(len(atoms))
        ):
            found.append(np.mod(t, 1.0))
    return found


def _maps_onto(trees, position: np.ndarray, z: int, tolerance: float) -> bool:
    return trees[z].query(np.mod(position, 1.0), distance_upper_bound=tolerance)[0] <= tolerance


def symmetrize_crystal(values: np.ndarray, atoms: Atoms, symprec: float = DEFAULT_SYMPREC) -> np.ndarray:
    """Average a grid field over `crystal_grid_maps`: invariant under the crystal's operations
    that keep the grid, the same in a cell and its supercells."""
    values = np.asarray(values)
    return _average_over_maps(values, crystal_grid_maps(atoms, values.shape, symprec))
