"""Critical points of a periodic grid field: a complete set by discrete Morse theory,
simplified by topological persistence, located below the grid spacing.

1. Discrete Morse theory (Robins, Wood and Sheppard, IEEE TPAMI 33, 1646 (2011)): the grid
   is the cubical complex of the 3-torus (vertices = grid points, plus the edges, squares and
   cubes between them), filtered by the lower star of the grid values: a cell enters at the
   largest value of its vertices. Ties are broken by index (simulation of simplicity), so a
   plateau of equal values is a single cell of the filtration order. The persistence pairs of
   this filtration (GUDHI's periodic cubical complex) are the critical cells of a discrete
   gradient: each pair is a k-cell that creates a k-dimensional class and the (k+1)-cell that
   kills it; the torus keeps 1 + 3 + 3 + 1 essential classes that never die. A k-cell is a
   critical point of index k: minimum (k = 0, signature (3,+3)), ring (k = 1, (3,+1)), saddle
   (k = 2, (3,-1)), maximum (k = 3, (3,-3)), located at the vertex that gives the cell its value.
   Every pair holds two points of index k and k + 1, and the essential classes sum to
   1 - 3 + 3 - 1, so the Morse sum n - b + r - c (maxima - saddles + rings - minima) is 0 by
   construction (Euler characteristic of the 3-torus), for any field, smooth, noisy or flat.
2. Persistence: each point carries the persistence of its pair, |f(death) - f(birth)| in
   field units (None for the essential classes). Pairs with persistence 0 lie inside one lower
   star or plateau and are not critical; pairs below a threshold are cancelled together, which
   keeps the Morse sum 0.
3. Sub-voxel refinement: the field is interpolated with a periodic cubic B-spline through the
   grid values, and Newton steps on its exact gradient and Hessian start at each critical
   vertex. A point that converges within one voxel to a critical point of the same signature
   takes that position and spline value (clipped to the range of the grid values, which the
   spline overshoots next to saturated plateaus); otherwise it keeps its vertex and grid value,
   and stays in the set. An extremum on a plateau of equal grid values (ELF saturated at 1,
   a constant field) is one point at the plateau's centre, with the plateau's value.

Positions are fractional and Cartesian (Å); Hessian eigenvalues in field units / Å².
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import gudhi
import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from elfkit.field import Field

KINDS = {-3: "maximum", -1: "saddle", 1: "ring", 3: "minimum"}
INDEX_KINDS = ("minimum", "ring", "saddle", "maximum")
"""Kind of a critical cell of dimension k (number of descending directions), k = 0..3."""
DEFAULT_PERSISTENCE = 0.02
"""Default persistence threshold for an ELF (dimensionless, see README: chosen on the QE files
in tests/data/qe and the hydrogen datasets)."""
LOW_DENSITY = 1e-3
"""Default reliability limit, electrons/Å³ of the structure's superposition of atomic densities:
critical points where the SAD is below it are reported apart (an ELF is ill-defined there)."""
_NEWTON_STEPS = 30
_STEP_LIMIT = 0.5
_CONVERGED = 1e-5
_PLATEAU_REACH = 8


def _bspline_weights(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniform cubic B-spline weights of the 4 neighbours i-1..i+2 at offset t in [0, 1),
    and their first and second derivatives; each of shape (n, 4)."""
    t2, t3 = t * t, t * t * t
    w = np.stack([(1 - t) ** 3, 3 * t3 - 6 * t2 + 4, -3 * t3 + 3 * t2 + 3 * t + 1, t3], axis=1) / 6
    dw = np.stack([-((1 - t) ** 2) / 2, 1.5 * t2 - 2 * t, -1.5 * t2 + t + 0.5, t2 / 2], axis=1)
    ddw = np.stack([1 - t, 3 * t - 2, 1 - 3 * t, t], axis=1)
    return w, dw, ddw


class _Spline:
    """Periodic cubic B-spline interpolant of grid values, with exact derivatives (index units)."""

    def __init__(self, values: np.ndarray):
        self.shape = np.array(values.shape)
        self.coeffs = ndimage.spline_filter(values, order=3, mode="grid-wrap")

    def __call__(self, points: np.ndarray):
        base = np.floor(points).astype(int)
        weights = [_bspline_weights(points[:, a] - base[:, a]) for a in range(3)]
        index = [(base[:, a, None] + np.arange(-1, 3)) % self.shape[a] for a in range(3)]
        c = self.coeffs[index[0][:, :, None, None], index[1][:, None, :, None], index[2][:, None, None, :]]

        def contract(orders):
            return np.einsum("nijk,ni,nj,nk->n", c, *(weights[a][orders[a]] for a in range(3)))

        f = contract((0, 0, 0))
        grad = np.stack([contract((1, 0, 0)), contract((0, 1, 0)), contract((0, 0, 1))], axis=1)
        hess = np.empty((len(points), 3, 3))
        for a in range(3):
            for b in range(a, 3):
                orders = [0, 0, 0]
                orders[a] += 1
                orders[b] += 1
                hess[:, a, b] = hess[:, b, a] = contract(tuple(orders))
        return f, grad, hess


@dataclass
class CriticalPoint:
    """One critical point: type, fractional and Cartesian (Å) position, value, Hessian
    eigenvalues (value/Å², ascending), the persistence of its pair (field units; None for the
    torus' essential classes, which are never cancelled), whether Newton refinement converged
    (else the point sits at its grid vertex or plateau centre), and whether it lies where the
    density is below the reliability limit."""

    type: str
    frac: list[float]
    cart: list[float]
    value: float
    eigenvalues: list[float]
    persistence: float | None = None
    refined: bool = True
    low_density: bool = False

    def as_dict(self) -> dict:
        """Plain-JSON form."""
        return asdict(self)


@dataclass
class PersistencePairs:
    """Critical cells of the lower-star discrete gradient of a periodic grid field: the grid
    vertex (i, j, k) that gives each cell its value, its Morse index (0 minimum .. 3 maximum),
    the persistence of its pair (field units; inf for the essential classes) and the row of the
    other cell of its pair (`partner`; -1 for the essential classes)."""

    vertices: np.ndarray
    index: np.ndarray
    persistence: np.ndarray
    partner: np.ndarray

    def kept(self, threshold: float) -> np.ndarray:
        """Mask of the cells that survive cancelling every pair with persistence below `threshold`."""
        return self.persistence >= threshold

    def counts(self, threshold: float = 0.0) -> dict[str, int]:
        """Number of maxima, saddles, rings and minima left at `threshold`."""
        index = self.index[self.kept(threshold)]
        return {plural: int((index == k).sum()) for k, plural in enumerate(("minima", "rings", "saddles", "maxima"))}


def persistence_pairs(values: np.ndarray) -> PersistencePairs:
    """Persistence pairs of the lower-star filtration of a periodic 3D grid (values on the
    grid points), with ties broken by index; pairs of persistence 0 are not critical and are
    left out. Both cells of a pair carry its persistence."""
    values = np.ascontiguousarray(values, dtype=float)
    complex_ = gudhi.PeriodicCubicalComplex(vertices=values, periodic_dimensions=[True, True, True])
    complex_.compute_persistence(homology_coeff_field=2, min_persistence=0.0)
    regular, essential = complex_.vertices_of_persistence_pairs()
    flat = values.ravel(order="F")
    vertices, index, persistence, partner = [], [], [], []
    rows = 0
    for dimension, pairs in enumerate(regular):
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        gap = flat[pairs[:, 1]] - flat[pairs[:, 0]]
        for side in (0, 1):
            vertices.append(pairs[:, side])
            index.append(np.full(len(pairs), dimension + side))
            persistence.append(gap)
            partner.append(rows + (1 - side) * len(pairs) + np.arange(len(pairs)))
        rows += 2 * len(pairs)
    for dimension, cells in enumerate(essential):
        cells = np.asarray(cells, dtype=np.int64).reshape(-1)
        vertices.append(cells)
        index.append(np.full(len(cells), dimension))
        persistence.append(np.full(len(cells), np.inf))
        partner.append(np.full(len(cells), -1))
    flat_vertices = np.concatenate(vertices)
    return PersistencePairs(
        vertices=np.stack(np.unravel_index(flat_vertices, values.shape, order="F"), axis=1),
        index=np.concatenate(index),
        persistence=np.concatenate(persistence),
        partner=np.concatenate(partner).astype(np.int64),
    )


def critical_points(
    field: Field,
    persistence: float = DEFAULT_PERSISTENCE,
    low_density: float | None = LOW_DENSITY,
    pairs: PersistencePairs | None = None,
) -> list[CriticalPoint]:
    """Critical points of `field` left after cancelling the persistence pairs below
    `persistence` (field units; 0 keeps every critical cell of the discrete gradient). The
    Morse sum of the returned set is 0. Points where the structure's superposition of atomic
    densities (`elfkit.sad`) is below `low_density` (electrons/Å³; None: no check) are flagged
    `low_density`. `pairs` reuses the result of `persistence_pairs(field.values)`."""
    values = np.asarray(field.values, dtype=float)
    pairs = pairs if pairs is not None else persistence_pairs(values)
    keep = pairs.kept(persistence)
    vertices, index, gaps = pairs.vertices[keep], pairs.index[keep], pairs.persistence[keep]
    cell = field.atoms.cell.array
    shape = np.array(values.shape)
    jacobian = np.diag(shape) @ np.linalg.inv(cell).T
    position, value, eigen, refined = _refine(_Spline(values), values, vertices, index, jacobian)
    value = np.clip(value, values.min(), values.max())
    frac = np.mod(position / shape, 1.0) % 1.0
    low = _below(field.atoms, values.shape, vertices, low_density)
    return [
        CriticalPoint(
            INDEX_KINDS[k], f.tolist(), (f @ cell).tolist(), float(v), lam.tolist(),
            None if np.isinf(g) else float(g), bool(r), bool(flag),
        )
        for k, f, v, lam, g, r, flag in zip(index, frac, value, eigen, gaps, refined, low)
    ]


def _refine(spline: _Spline, values: np.ndarray, vertices: np.ndarray, index: np.ndarray, jacobian: np.ndarray):
    """Newton-refined positions (index units), values, Cartesian Hessian eigenvalues and a
    refined flag. Extrema on a plateau of equal grid values take the plateau's centre, other
    unconverged points their vertex, both with the grid value."""
    start = vertices.astype(float)
    position = start.copy()
    value = values[tuple(vertices.T)].astype(float)
    eigen = _cartesian_eigenvalues(spline(start)[2], jacobian) if len(start) else np.zeros((0, 3))
    refined = np.zeros(len(start), dtype=bool)
    extremum = (index == 0) | (index == 3)
    plateau = extremum & _on_plateau(values, vertices)
    candidates = np.nonzero(~plateau)[0]
    for chunk in np.array_split(candidates, max(1, len(candidates) // 20000)):
        if not len(chunk):
            continue
        points, converged = _newton(spline, start[chunk])
        f, _, hess = spline(points)
        lam = _cartesian_eigenvalues(hess, jacobian)
        scale = np.abs(lam).max(axis=1, keepdims=True)
        clear = (np.abs(lam) > 1e-6 * np.maximum(scale, 1e-300)).all(axis=1)
        ok = converged & clear & (np.sign(lam).sum(axis=1) == 3 - 2 * index[chunk])
        position[chunk[ok]], value[chunk[ok]], eigen[chunk[ok]], refined[chunk[ok]] = points[ok], f[ok], lam[ok], True
    for i in np.nonzero(plateau)[0]:
        position[i] = _plateau_centre(values, vertices[i])
    return position, value, eigen, refined


def _on_plateau(values: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Whether each vertex has one of its 26 neighbours at exactly its value."""
    offsets = np.array([o for o in np.ndindex(3, 3, 3) if o != (1, 1, 1)]) - 1
    neighbours = np.mod(vertices[:, None, :] + offsets[None], values.shape)
    return (values[tuple(neighbours.transpose(2, 0, 1))] == values[tuple(vertices.T)][:, None]).any(axis=1)


def _cartesian_eigenvalues(hess: np.ndarray, jacobian: np.ndarray) -> np.ndarray:
    """Ascending eigenvalues of index-space Hessians transformed to Cartesian (value/Å²)."""
    return np.linalg.eigvalsh(np.einsum("ji,njk,kl->nil", jacobian, hess, jacobian))


def _plateau_centre(values: np.ndarray, vertex: np.ndarray) -> np.ndarray:
    """Centre (index units) of the set of grid points connected to `vertex` with exactly its
    value, within `_PLATEAU_REACH` points of it; the vertex itself when it has no equal neighbour."""
    reach = np.arange(-_PLATEAU_REACH, _PLATEAU_REACH + 1)
    window = values[np.ix_(*((vertex[a] + reach) % values.shape[a] for a in range(3)))]
    labels, _ = ndimage.label(window == values[tuple(vertex)], structure=np.ones((3, 3, 3)))
    members = np.argwhere(labels == labels[_PLATEAU_REACH, _PLATEAU_REACH, _PLATEAU_REACH])
    return vertex + members.mean(axis=0) - _PLATEAU_REACH


def _below(atoms, shape, vertices: np.ndarray, limit: float | None) -> np.ndarray:
    """Whether the SAD of `atoms` at each vertex is below `limit` electrons/Å³."""
    if limit is None or not len(vertices):
        return np.zeros(len(vertices), dtype=bool)
    from elfkit.sad import sad

    return sad(atoms, shape)[tuple(vertices.T)] < limit


def _newton(spline: _Spline, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Newton steps (at most half a voxel each) on the spline gradient; converged points that
    stayed within one voxel of their start."""
    points = start.copy()
    converged = np.zeros(len(points), dtype=bool)
    for _ in range(_NEWTON_STEPS):
        active = ~converged
        if not active.any():
            break
        _, grad, hess = spline(points[active])
        step = -np.linalg.solve(hess + 1e-12 * np.eye(3), grad[..., None])[..., 0]
        norm = np.linalg.norm(step, axis=1, keepdims=True)
        points[active] += step * np.minimum(1.0, _STEP_LIMIT / np.maximum(norm, 1e-300))
        converged[np.nonzero(active)[0][norm[:, 0] < _CONVERGED]] = True
    return points, converged & (np.abs(points - start).max(axis=1) <= 1.0)


def simplify(points: list[CriticalPoint], persistence: float) -> list[CriticalPoint]:
    """The points whose pair has persistence >= `persistence` (field units) and the essential
    ones; cancels whole pairs, so the Morse sum is kept."""
    return [p for p in points if _persists(p, persistence)]


def _persists(point: CriticalPoint, persistence: float) -> bool:
    return point.persistence is None or point.persistence >= persistence


_UNMATCHED_COST = 1e6
"""Assignment cost of a pair farther apart than the matching tolerance (Å): above any sum of matches."""


def _periodic_distances(a: np.ndarray, b: np.ndarray, cell: np.ndarray) -> np.ndarray:
    delta = a[:, None, :] - b[None, :, :]
    delta -= np.round(delta)
    return np.linalg.norm(delta @ cell, axis=-1)


def counts(points: list[CriticalPoint]) -> dict[str, int]:
    """Number of maxima, saddles, rings and minima."""
    plural = {"maximum": "maxima", "saddle": "saddles", "ring": "rings", "minimum": "minima"}
    return {plural[kind]: sum(p.type == kind for p in points) for kind in KINDS.values()}


def morse_sum(points: list[CriticalPoint]) -> int:
    """n - b + r - c; zero for a complete set of critical points of a periodic field."""
    c = {kind: sum(p.type == kind for p in points) for kind in KINDS.values()}
    return c["maximum"] - c["saddle"] + c["ring"] - c["minimum"]


def plateau_aliases(
    points: list[CriticalPoint], field: Field, persistence: float = DEFAULT_PERSISTENCE, pairs: PersistencePairs | None = None
) -> list[np.ndarray]:
    """For each of `points`, the fractional positions (M, 3) that `field` cannot tell apart from
    it at `persistence` (field units): the point itself, then every grid point and every
    critical point of its type (before simplification) in the same periodic connected
    component of the band of grid values within `persistence` of its value. The two maxima of
    an H2 molecule sit 0.04-0.1 Å from its two nuclei and differ by less than 0.01 in ELF;
    simplification keeps whichever is higher, so two fields with the same topology can keep
    opposite ones, 0.6 Å apart. An interstitial maximum of a metal tops a plateau over which
    the ELF varies by less than `persistence`, so its position is only defined to within that
    plateau. `pairs` reuses `persistence_pairs(field.values)`."""
    from elfkit.analysis.network import domains

    values = np.asarray(field.values, dtype=float)
    shape = np.array(values.shape)
    every = critical_points(field, persistence=0.0, low_density=None, pairs=pairs)
    aliases = []
    for point in points:
        same_type = [p for p in every if p.type == point.type]
        labels = domains(np.where(np.abs(values - point.value) <= persistence, 1.0, 0.0), 0.5).labels
        own, others = labels[_vertex(point.frac, labels.shape)], labels[_vertex([p.frac for p in same_type], labels.shape)]
        plateau = np.argwhere(labels == own) / shape if own != 0 else np.empty((0, 3))
        critical = [p.frac for p, label in zip(same_type, others) if label == own != 0]
        aliases.append(np.array([point.frac, *critical, *plateau], dtype=float))
    return aliases


def _vertex(frac, shape) -> tuple[np.ndarray, ...]:
    """Index (tuple of arrays, or of ints for one point) of the grid vertex nearest to fractional `frac`."""
    index = np.round(np.asarray(frac, dtype=float) * np.array(shape)).astype(int) % np.array(shape)
    return tuple(np.moveaxis(index, -1, 0))


def match_critical_points(
    predicted: list[CriticalPoint],
    reference: list[CriticalPoint],
    cell,
    tol: float = 0.3,
    persistence: float = DEFAULT_PERSISTENCE,
    include_low_density: bool = False,
    reference_aliases: list[np.ndarray] | None = None,
) -> dict:
    """Match points of the same type within `tol` (Å, periodic): the most pairs within `tol`,
    and among those the smallest total distance (a pair farther apart than `tol` costs the
    same whatever its distance, so it never displaces a match).

    Both sets are first simplified at the same `persistence` (field units) and, unless
    `include_low_density`, stripped of low-density points, so that sets computed with
    different settings are compared like for like. `reference_aliases` (one array of
    fractional positions per reference point, `plateau_aliases`) lets a predicted point match a
    reference point at any of the positions the reference field cannot tell apart from it.
    recall = matched / reference points, precision = matched / predicted points; position
    errors in Å and value errors of the matched pairs, and their (predicted, reference) values
    (`value_pairs`, a parity plot's points); `missed`: the reference points left.
    """
    def kept(point: CriticalPoint) -> bool:
        return _persists(point, persistence) and (include_low_density or not point.low_density)

    aliases = reference_aliases or [np.array([p.frac]) for p in reference]
    reference_kept = [(p, a) for p, a in zip(reference, aliases) if kept(p)]
    predicted = [p for p in predicted if kept(p)]
    cell = np.asarray(cell, dtype=float)
    distances, pairs, missed = [], [], []
    for kind in KINDS.values():
        p = [x for x in predicted if x.type == kind]
        r = [(x, a) for x, a in reference_kept if x.type == kind]
        if not p or not r:
            missed += [x for x, _ in r]
            continue
        frac = np.array([x.frac for x in p])
        d = np.stack([_periodic_distances(frac, a, cell).min(axis=1) for _, a in r], axis=1)
        rows, cols = linear_sum_assignment(np.where(d <= tol, d, _UNMATCHED_COST))
        found = {j for i, j in zip(rows, cols) if d[i, j] <= tol}
        distances += [d[i, j] for i, j in zip(rows, cols) if j in found]
        pairs += [(p[i].value, r[j][0].value) for i, j in zip(rows, cols) if j in found]
        missed += [x for j, (x, _) in enumerate(r) if j not in found]
    matched = len(distances)
    return {
        "matched": matched,
        "missed": missed,
        "recall": matched / len(reference_kept) if reference_kept else None,
        "precision": matched / len(predicted) if predicted else None,
        "position_error_angstrom": float(np.mean(distances)) if distances else None,
        "value_error": float(np.mean([abs(a - b) for a, b in pairs])) if pairs else None,
        "value_pairs": [(float(a), float(b)) for a, b in pairs],
    }
