"""Periodic geometry of probe points and atoms: which atoms (periodic images included) lie
within a cutoff of each point, and the vectors to them. Lengths in Å."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from ase import Atoms


@dataclass
class Neighbours:
    """Pairs (probe point, atom) closer than a cutoff, periodic images included, sorted by point.

    `point` (K,) and `atom` (K,) are indices into the probe points and the atoms; `vector`
    (K, 3) points from the probe point to the atom's image (Å)."""

    point: np.ndarray
    atom: np.ndarray
    vector: np.ndarray

    @cached_property
    def distance(self) -> np.ndarray:
        """|vector| (Å), computed once."""
        return np.linalg.norm(self.vector, axis=1)

    def within(self, cutoff: float) -> Neighbours:
        """The pairs closer than `cutoff` (Å)."""
        keep = self.distance < cutoff
        return Neighbours(self.point[keep], self.atom[keep], self.vector[keep])


class PeriodicImages:
    """The atoms of a periodic cell and their images near it, indexed once (a k-d tree), to find
    the atoms within `cutoff` (Å) of any number of probe points."""

    def __init__(self, atoms: Atoms, cutoff: float):
        from scipy.spatial import cKDTree

        self.cell, self.cutoff = atoms.cell.array, float(cutoff)
        margin = self.cutoff / plane_spacing(self.cell)
        reach = np.ceil(margin).astype(int)
        offsets = np.stack(np.meshgrid(*[np.arange(-n, n + 1) for n in reach], indexing="ij"), -1).reshape(-1, 3)
        frac = (atoms.get_scaled_positions(wrap=True)[None, :, :] + offsets[:, None, :]).reshape(-1, 3)
        near = np.all((frac > -margin - 1e-9) & (frac < 1 + margin + 1e-9), axis=1)
        self.images = frac[near] @ self.cell
        self.atom = np.nonzero(near)[0] % len(atoms)
        self.tree = cKDTree(self.images)

    def neighbours(self, points: np.ndarray) -> Neighbours:
        """Every (point, atom image) pair closer than the cutoff for Cartesian `points` (P, 3)
        in Å anywhere in space."""
        from scipy.spatial import cKDTree

        points = np.asarray(points, dtype=float).reshape(-1, 3)
        frac = points @ np.linalg.inv(self.cell)
        wrapped = (frac - np.floor(frac)) @ self.cell
        pairs = cKDTree(wrapped).sparse_distance_matrix(self.tree, self.cutoff, output_type="ndarray")
        point, image = pairs["i"].astype(np.int64), pairs["j"].astype(np.int64)
        order = np.argsort(point, kind="stable")
        point, image = point[order], image[order]
        return Neighbours(point=point, atom=self.atom[image], vector=self.images[image] - wrapped[point])


def plane_spacing(cell: np.ndarray) -> np.ndarray:
    """Spacing (Å) of the lattice planes spanned by each pair of cell vectors (3,)."""
    return 1.0 / np.linalg.norm(np.linalg.inv(cell).T, axis=1)


def point_neighbours(atoms: Atoms, points: np.ndarray, cutoff: float) -> Neighbours:
    """Every (point, atom image) pair closer than `cutoff` (Å) for Cartesian `points` (P, 3) in Å;
    the cell of `atoms` is periodic along all three axes."""
    return PeriodicImages(atoms, cutoff).neighbours(points)
