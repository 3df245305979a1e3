"""Critical points of a periodic grid field, located below the grid spacing.

The field is interpolated with a periodic cubic B-spline through the grid values, whose
exact gradient and Hessian are used throughout; candidates are the cells of a twice
refined grid whose corner gradients change sign in every component; Newton steps from the cell centres converge onto
the critical points of the interpolant, which are deduplicated under periodicity and classified by the signs of
the Hessian eigenvalues: maxima (3,-3), saddles (3,-1), ring points (3,+1), minima (3,+3).
For a periodic field the Morse sum n - b + r - c is 0 (Euler characteristic of the 3-torus);
a non-zero sum means points were missed or are spurious, and is reported as such.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from elfkit.field import Field

KINDS = {-3: "maximum", -1: "saddle", 1: "ring", 3: "minimum"}
_NEWTON_STEPS = 30
_STEP_LIMIT = 0.5
_CONVERGED = 1e-5


@dataclass
class CriticalPoint:
    """One critical point: type, fractional and Cartesian (Å) position, value, Hessian
    eigenvalues (value/Å², ascending)."""

    type: str
    frac: list[float]
    cart: list[float]
    value: float
    eigenvalues: list[float]

    def as_dict(self) -> dict:
        """Plain-JSON form."""
        return asdict(self)


# Weights of coefficients i-1, i, i+1, i+2 for the value and slope at offsets t = 0 and t = 1/2.
_KNOT_WEIGHTS = {
    (0, 0): np.array([1 / 6, 4 / 6, 1 / 6, 0.0]),
    (0, 1): np.array([-0.5, 0.0, 0.5, 0.0]),
    (1, 0): np.array([1 / 48, 23 / 48, 23 / 48, 1 / 48]),
    (1, 1): np.array([-1 / 8, -5 / 8, 5 / 8, 1 / 8]),
}


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

    def gradient_on_half_grid(self) -> list[np.ndarray]:
        """Exact interpolant gradient on the grid refined twice along each axis (points at
        index/2), by separable 1D filters; three arrays of shape 2N."""
        out = []
        for axis in range(3):
            refined = np.empty(tuple(2 * self.shape))
            for half in np.ndindex(2, 2, 2):
                g = self.coeffs
                for a in range(3):
                    kernel = _KNOT_WEIGHTS[(half[a], int(a == axis))]
                    g = ndimage.correlate1d(g, kernel, axis=a, mode="wrap", origin=-1)
                refined[half[0] :: 2, half[1] :: 2, half[2] :: 2] = g
            out.append(refined)
        return out

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


def _candidates(grad: list[np.ndarray]) -> np.ndarray:
    """Index coordinates of the centres of cells where every gradient component changes sign."""
    inside = np.ones(grad[0].shape, dtype=bool)
    for g in grad:
        corners = [np.roll(g, (-i, -j, -k), axis=(0, 1, 2)) for i in (0, 1) for j in (0, 1) for k in (0, 1)]
        inside &= (np.min(corners, axis=0) <= 0) & (np.max(corners, axis=0) >= 0)
    return np.argwhere(inside).astype(float) + 0.5


def _newton(spline: _Spline, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def critical_points(field: Field) -> list[CriticalPoint]:
    """All non-degenerate critical points of `field`, deduplicated under periodicity."""
    spline = _Spline(np.asarray(field.values, dtype=float))
    start = _candidates(spline.gradient_on_half_grid()) / 2
    if not len(start):
        return []
    points, ok = _newton(spline, start)
    points = np.mod(points[ok], spline.shape)
    f, grad, hess = spline(points)
    shape = spline.shape
    cell = field.atoms.cell.array
    jacobian = np.diag(shape) @ np.linalg.inv(cell).T
    cart_hess = np.einsum("ji,njk,kl->nil", jacobian, hess, jacobian)
    eigen = np.linalg.eigvalsh(cart_hess)
    scale = np.abs(eigen).max(axis=1, keepdims=True)
    clear = (np.abs(eigen) > 1e-6 * np.maximum(scale, 1e-300)).all(axis=1)
    found = []
    for p, value, lam in zip(points[clear], f[clear], eigen[clear]):
        signature = int(np.sign(lam).sum())
        frac = np.mod(p / shape, 1.0) % 1.0
        found.append(CriticalPoint(KINDS[signature], frac.tolist(), (frac @ cell).tolist(), float(value), lam.tolist()))
    return _deduplicate(found, cell)


def _periodic_distances(a: np.ndarray, b: np.ndarray, cell: np.ndarray) -> np.ndarray:
    delta = a[:, None, :] - b[None, :, :]
    delta -= np.round(delta)
    return np.linalg.norm(delta @ cell, axis=-1)


def _deduplicate(points: list[CriticalPoint], cell: np.ndarray, tolerance: float = 0.02) -> list[CriticalPoint]:
    kept: list[CriticalPoint] = []
    for kind in KINDS.values():
        group = [p for p in points if p.type == kind]
        chosen: list[CriticalPoint] = []
        for p in group:
            if not chosen or _periodic_distances(np.array([p.frac]), np.array([c.frac for c in chosen]), cell).min() > tolerance:
                chosen.append(p)
        kept.extend(chosen)
    return kept


def counts(points: list[CriticalPoint]) -> dict[str, int]:
    """Number of maxima, saddles, rings and minima."""
    plural = {"maximum": "maxima", "saddle": "saddles", "ring": "rings", "minimum": "minima"}
    return {plural[kind]: sum(p.type == kind for p in points) for kind in KINDS.values()}


def morse_sum(points: list[CriticalPoint]) -> int:
    """n - b + r - c; zero for a complete set of critical points of a periodic field."""
    c = {kind: sum(p.type == kind for p in points) for kind in KINDS.values()}
    return c["maximum"] - c["saddle"] + c["ring"] - c["minimum"]


def match_critical_points(predicted: list[CriticalPoint], reference: list[CriticalPoint], cell, tol: float = 0.3) -> dict:
    """Match points of the same type within `tol` (Å, periodic) by minimum total distance.

    recall = matched / reference points, precision = matched / predicted points; position
    errors in Å and value errors of the matched pairs.
    """
    cell = np.asarray(cell, dtype=float)
    distances, values = [], []
    for kind in KINDS.values():
        p = [x for x in predicted if x.type == kind]
        r = [x for x in reference if x.type == kind]
        if not p or not r:
            continue
        d = _periodic_distances(np.array([x.frac for x in p]), np.array([x.frac for x in r]), cell)
        rows, cols = linear_sum_assignment(d)
        for i, j in zip(rows, cols):
            if d[i, j] <= tol:
                distances.append(d[i, j])
                values.append(abs(p[i].value - r[j].value))
    matched = len(distances)
    return {
        "matched": matched,
        "recall": matched / len(reference) if reference else None,
        "precision": matched / len(predicted) if predicted else None,
        "position_error_angstrom": float(np.mean(distances)) if distances else None,
        "value_error": float(np.mean(values)) if values else None,
    }
