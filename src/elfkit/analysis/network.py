"""ELF domains, their periodic connectivity, and the networking value of Belli et al.,
Nat. Commun. 12, 5381 (2021).

A domain at isovalue t is a set of grid points with ELF >= t connected through shared
faces (6-connectivity), across periodic boundaries too. Connected pieces inside the cell
are labelled with scipy; pieces that touch across a periodic face are joined by a
union-find that carries each piece's lattice offset, so every loop closed through the
boundaries yields an integer winding vector. The rank of a domain's winding vectors is its
dimensionality: 0 (finite), 1 (chains), 2 (layers) or 3 (percolating in all directions).

networking value: the highest isovalue at which some domain percolates in 3D (found by
bisection to 0.001); None when only the trivial isovalue (the field minimum, where the
domain is the whole cell) percolates. molecularity index: the highest isovalue at which
one domain holds two or more distinct hydrogen nuclei.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from elfkit.field import Field
from elfkit.grid import nearest_grid_points

TOLERANCE = 0.001
_FACES = ndimage.generate_binary_structure(3, 1)


@dataclass
class Domains:
    """Domains of one isovalue: labels per grid point (0 outside), dimensionality and size per domain."""

    labels: np.ndarray
    dimension: dict[int, int]
    size: dict[int, int]


def domains(values: np.ndarray, isovalue: float) -> Domains:
    """Periodic domains of `values >= isovalue` (see the module docstring)."""
    labels, count = ndimage.label(values >= isovalue, structure=_FACES)
    parent = list(range(count + 1))
    shift = [np.zeros(3, dtype=int) for _ in range(count + 1)]
    windings: dict[int, list[np.ndarray]] = {}

    def find(x: int) -> tuple[int, np.ndarray]:
        if parent[x] == x:
            return x, np.zeros(3, dtype=int)
        root, to_root = find(parent[x])
        parent[x], shift[x] = root, shift[x] + to_root
        return root, shift[x]

    for axis in range(3):
        step = np.zeros(3, dtype=int)
        step[axis] = 1
        last = np.take(labels, -1, axis=axis).ravel()
        first = np.take(labels, 0, axis=axis).ravel()
        for u, v in np.unique(np.stack([last, first], axis=1)[(last > 0) & (first > 0)], axis=0):
            ru, su = find(int(u))
            rv, sv = find(int(v))
            if ru != rv:
                parent[rv], shift[rv] = ru, su + step - sv
                windings.setdefault(ru, []).extend(windings.pop(rv, []))
            else:
                windings.setdefault(ru, []).append(su + step - sv)
    roots = np.array([0] + [find(x)[0] for x in range(1, count + 1)])
    merged = roots[labels]
    sizes = np.bincount(merged.ravel(), minlength=count + 1)
    dimension = {
        int(r): int(np.linalg.matrix_rank(np.array(windings[r]))) if windings.get(r) else 0
        for r in np.unique(roots[1:])
    }
    return Domains(merged, dimension, {r: int(sizes[r]) for r in dimension})


def nucleus_points(field: Field, species: str | None = "H") -> tuple[np.ndarray, tuple]:
    """Atom indices of `species` and the grid points nearest to their nuclei."""
    symbols = np.array(field.atoms.get_chemical_symbols())
    chosen = np.nonzero(symbols == species)[0] if species else np.arange(len(symbols))
    index = nearest_grid_points(field.atoms, field.values.shape)[0][chosen]
    return chosen, tuple(index.T)


def _percolates(values, t, hydrogen_points=None) -> bool:
    found = domains(values, t)
    three_d = {r for r, d in found.dimension.items() if d == 3}
    if hydrogen_points is None:
        return bool(three_d)
    return bool(three_d & set(found.labels[hydrogen_points].tolist()))


def _holds_two_nuclei(values, t, points) -> bool:
    labels = domains(values, t).labels[points]
    labels = labels[labels > 0]
    return len(labels) != len(np.unique(labels))


def highest_isovalue(values: np.ndarray, predicate, tolerance: float = TOLERANCE) -> float | None:
    """Highest t (to `tolerance`) with predicate(t) true, for a predicate true at low t and
    false at high t; None if it fails just above the field minimum."""
    lo, hi = float(values.min()) + tolerance, float(values.max()) + tolerance
    if not predicate(lo):
        return None
    while hi - lo > tolerance:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if predicate(mid) else (lo, mid)
    return round(lo, 6)


def networking_value(field: Field, hydrogen_only: bool = False) -> float | None:
    """Highest ELF isovalue with a 3D-percolating domain (containing an H nucleus if
    `hydrogen_only`); see the module docstring."""
    points = nucleus_points(field, "H")[1] if hydrogen_only else None
    return highest_isovalue(field.values, lambda t: _percolates(field.values, t, points))


def molecularity_index(field: Field) -> float | None:
    """Highest ELF isovalue at which one domain holds two or more distinct H nuclei."""
    chosen, points = nucleus_points(field, "H")
    if len(chosen) < 2:
        return None
    return highest_isovalue(field.values, lambda t: _holds_two_nuclei(field.values, t, points))


def hydrogen_fraction(field: Field) -> float:
    """Number of H atoms over the number of atoms."""
    symbols = field.atoms.get_chemical_symbols()
    return symbols.count("H") / len(symbols)


def dimensionality_vs_isovalue(field: Field, isovalues=None) -> list[dict]:
    """For each isovalue: dimensionality and size fraction of the largest domain, and the domain count."""
    isovalues = np.round(np.linspace(0.05, 0.95, 19), 4) if isovalues is None else isovalues
    rows = []
    for t in isovalues:
        found = domains(field.values, float(t))
        if not found.size:
            rows.append({"isovalue": float(t), "dimension": None, "largest_fraction": 0.0, "domains": 0})
            continue
        largest = max(found.size, key=found.size.get)
        rows.append(
            {
                "isovalue": float(t),
                "dimension": found.dimension[largest],
                "largest_fraction": found.size[largest] / field.values.size,
                "domains": len(found.size),
            }
        )
    return rows


def dimensionality_runs(rows: list[dict]) -> list[tuple[float, float, int | None]]:
    """(lowest isovalue, highest isovalue, dimension) of each run of consecutive rows of
    `dimensionality_vs_isovalue` whose largest domain keeps one dimensionality (None: no domain)."""
    runs: list[list] = []
    for row in rows:
        if runs and runs[-1][2] == row["dimension"]:
            runs[-1][1] = row["isovalue"]
        else:
            runs.append([row["isovalue"], row["isovalue"], row["dimension"]])
    return [tuple(run) for run in runs]
