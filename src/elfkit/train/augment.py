"""Exact augmentations of a labelled periodic grid: the same points in another lattice basis.

An integer basis change a'_i = sum_j M_ij a_j with |det M| = 1 describes the same crystal; when
it also maps the grid onto itself, the arrays are only re-indexed (no interpolation), and every
scalar channel keeps its value at every point. Two kinds are used:

- signed axis permutations that preserve the cell's metric (the lattice's own point-group
  operations on the grid: 48 for a cubic cell with N1 = N2 = N3);
- shears a'_b = a_b + s a_a (s = +-1) between two axes with N_a = N_b: the points stay, the
  voxels become skewed, as in a hexagonal or monoclinic cell.
The grid metric channels (elfkit.features.grid_metric) are recomputed for the new basis.
"""

from __future__ import annotations

import itertools

import numpy as np

from elfkit.features import CHANNELS, grid_metric

_FIRST_METRIC = CHANNELS.index("metric_00")


def lattice_operations(cell: np.ndarray, shape, tolerance: float = 1e-4) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Signed permutations (perm, signs) with a'_i = signs_i a_perm_i that keep the metric
    a_i . a_j (relative tolerance) and the grid shape."""
    metric = cell @ cell.T
    scale = np.abs(metric).max()
    operations = []
    for perm in itertools.permutations(range(3)):
        if any(shape[p] != shape[i] for i, p in enumerate(perm)):
            continue
        for signs in itertools.product((1, -1), repeat=3):
            new = np.array(signs)[:, None] * cell[list(perm)]
            if np.abs(new @ new.T - metric).max() <= tolerance * scale:
                operations.append((perm, signs))
    return operations


def apply_operation(arrays: np.ndarray, cell: np.ndarray, perm, signs) -> tuple[np.ndarray, np.ndarray]:
    """Re-index arrays (..., N1, N2, N3) to the basis a'_i = signs_i a_perm_i; returns (arrays, cell)."""
    lead = arrays.ndim - 3
    out = np.transpose(arrays, list(range(lead)) + [lead + p for p in perm])
    for axis, sign in enumerate(signs):
        if sign < 0:
            out = np.roll(np.flip(out, axis=lead + axis), 1, axis=lead + axis)
    return np.ascontiguousarray(out), np.array(signs)[:, None] * cell[list(perm)]


def shear_pairs(shape) -> list[tuple[int, int]]:
    """Axis pairs (a, b) with N_a = N_b, between which a shear maps the grid onto itself."""
    return [(a, b) for a in range(3) for b in range(3) if a != b and shape[a] == shape[b]]


def apply_shear(arrays: np.ndarray, cell: np.ndarray, a: int, b: int, sign: int) -> tuple[np.ndarray, np.ndarray]:
    """Re-index arrays (..., N1, N2, N3) to the basis a'_b = a_b + sign a_a (N_a = N_b)."""
    lead = arrays.ndim - 3
    n = arrays.shape[lead + a]
    moved = np.moveaxis(arrays, (lead + a, lead + b), (-2, -1))
    index_a = (np.arange(n)[:, None] + sign * np.arange(n)[None, :]) % n
    sheared = np.take_along_axis(moved, np.broadcast_to(index_a, moved.shape), axis=-2)
    new_cell = cell.copy()
    new_cell[b] = cell[b] + sign * cell[a]
    return np.ascontiguousarray(np.moveaxis(sheared, (-2, -1), (lead + a, lead + b))), new_cell


def refresh_metric(features: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Features with their grid-metric channels recomputed for `cell` (in place; returned)."""
    for offset, value in enumerate(grid_metric(cell, features.shape[1:])):
        features[_FIRST_METRIC + offset] = value
    return features


def augment(features: np.ndarray, labels: np.ndarray, cell: np.ndarray, rng: np.random.Generator, point_group: bool,
            shear_probability: float):
    """A random exact re-indexing of (features, labels); returns (features, labels, cell).
    `labels` is the ELF (N1, N2, N3) or a stack of such grids (..., N1, N2, N3), re-indexed alike."""
    shape = labels.shape[-3:]
    stacked = np.concatenate([features, labels.reshape(-1, *shape)])
    if point_group:
        operations = lattice_operations(cell, shape)
        perm, signs = operations[int(rng.integers(len(operations)))]
        stacked, cell = apply_operation(stacked, cell, perm, signs)
    pairs = shear_pairs(shape)
    if pairs and rng.random() < shear_probability:
        a, b = pairs[int(rng.integers(len(pairs)))]
        stacked, cell = apply_shear(stacked, cell, a, b, int(rng.choice([-1, 1])))
    count = len(features)
    features_out = stacked[:count].astype(features.dtype, copy=False)
    return refresh_metric(features_out, cell), stacked[count:].reshape(labels.shape).astype(labels.dtype, copy=False), cell
