"""Periodic neighbours of probe points against brute force, in a skewed cell smaller than the cutoff."""

import numpy as np
from ase import Atoms

from elfkit.geometry import PeriodicImages, point_neighbours


def _brute_force(atoms, points, cutoff):
    offsets = np.stack(np.meshgrid(*[np.arange(-6, 7)] * 3, indexing="ij"), -1).reshape(-1, 3) @ atoms.cell.array
    found = set()
    for p, point in enumerate(points):
        for a, position in enumerate(atoms.positions):
            d = np.linalg.norm(position + offsets - point, axis=1)
            found.update((p, a, round(x, 6)) for x in d[d < cutoff])
    return found


def test_neighbours_match_brute_force_in_a_small_skewed_cell():
    cell = [[1.9, 0.0, 0.0], [0.8, 1.7, 0.0], [0.3, -0.5, 2.1]]
    atoms = Atoms("H3", scaled_positions=[[0.1, 0.2, 0.3], [0.6, 0.9, 0.1], [0.95, 0.5, 0.5]], cell=cell, pbc=True)
    points = np.random.default_rng(0).uniform(-3, 5, (6, 3))
    pairs = point_neighbours(atoms, points, 3.2)
    found = {(p, a, round(d, 6)) for p, a, d in zip(pairs.point, pairs.atom, pairs.distance)}
    assert len(pairs.point) == len(found) and found == _brute_force(atoms, points, 3.2)
    assert np.all(np.diff(pairs.point) >= 0)
    again = PeriodicImages(atoms, 3.2).neighbours(points).within(2.0)
    assert np.all(again.distance < 2.0) and len(again.point) == sum(1 for _, _, d in found if d < 2.0)
