"""Periodic real-space grids on a unit cell.

THE GRID CONVENTION of elfkit, used by every reader, writer and algorithm:
grid point (i, j, k) of a grid of shape (N1, N2, N3) sits at fractional coordinates
(i/N1, j/N2, k/N3) of the cell, i.e. at Cartesian i/N1 * a1 + j/N2 * a2 + k/N3 * a3,
with the lattice vectors a1, a2, a3 as the rows of the cell matrix (Å). Point (0, 0, 0)
is the cell origin and the grid does not repeat the periodic boundary point.
Arrays are indexed [i, j, k] in C order, so k (along a3) runs fastest in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from elfkit.errors import GridError

GRID_CONVENTION = "point (i, j, k) sits at fractional (i/N1, j/N2, k/N3); no repeated boundary"
DEFAULT_SPACING_ANGSTROM = 0.12


def fft_friendly_size(n: int) -> int:
    """Smallest integer >= n whose only prime factors are 2, 3 and 5 (an efficient FFT length)."""
    if n < 1:
        raise GridError(f"grid size must be positive, got {n}")
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def check_grid_shape(shape) -> tuple[int, int, int]:
    """Validate a grid shape: three positive integers. Whether a grid fits in memory depends
    on the work done on it; `elfkit.memory.check_memory` decides that."""
    try:
        shape = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise GridError(f"a grid needs three positive integer sizes, got {shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise GridError(f"a grid needs three positive sizes, got {shape}")
    return shape


def nearest_grid_points(atoms, shape) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) int indices (i, j, k) of the grid point of `shape` nearest each atom (GRID_CONVENTION;
    periodic), and (N,) how far each atom sits from it, the largest of its three fractional
    offsets in grid steps (0 for an atom on a grid point, at most 0.5)."""
    steps = atoms.get_scaled_positions(wrap=True) * np.asarray(shape)
    nearest = np.round(steps)
    return nearest.astype(int) % np.asarray(shape), np.abs(steps - nearest).max(axis=1)


@dataclass(frozen=True, eq=False)
class Grid:
    """A periodic grid of `shape` points on a cell (rows are lattice vectors, Å)."""

    cell: np.ndarray
    shape: tuple[int, int, int]

    def __post_init__(self):
        cell = np.array(self.cell, dtype=float).reshape(3, 3)
        object.__setattr__(self, "cell", cell)
        object.__setattr__(self, "shape", check_grid_shape(self.shape))

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, Grid)
            and self.shape == other.shape
            and np.allclose(self.cell, other.cell, atol=1e-6)
        )

    @property
    def volume(self) -> float:
        """Cell volume in Å³."""
        return float(abs(np.linalg.det(self.cell)))

    @property
    def voxel_volume(self) -> float:
        """Volume per grid point in Å³."""
        return self.volume / math.prod(self.shape)

    @property
    def spacing(self) -> np.ndarray:
        """Distance between neighbouring points along each lattice vector, Å."""
        return np.linalg.norm(self.cell, axis=1) / np.array(self.shape)

    def frac_coords(self) -> np.ndarray:
        """Fractional coordinates of every point, shape (N1, N2, N3, 3)."""
        axes = [np.arange(n) / n for n in self.shape]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)

    def cart_coords(self) -> np.ndarray:
        """Cartesian coordinates of every point in Å, shape (N1, N2, N3, 3)."""
        return self.frac_coords() @ self.cell

    def reciprocal_vectors(self) -> np.ndarray:
        """Wave vectors G (1/Å, including 2π) of the real-FFT layout, shape (N1, N2, N3//2+1, 3)."""
        n1, n2, n3 = self.shape
        m = np.meshgrid(
            np.fft.fftfreq(n1, 1.0 / n1),
            np.fft.fftfreq(n2, 1.0 / n2),
            np.fft.rfftfreq(n3, 1.0 / n3),
            indexing="ij",
        )
        b = 2 * np.pi * np.linalg.inv(self.cell).T
        return np.stack(m, axis=-1) @ b

    @classmethod
    def for_spacing(cls, cell, spacing: float = DEFAULT_SPACING_ANGSTROM) -> Grid:
        """The grid whose spacing along each lattice vector is at most `spacing` (Å),
        each size rounded up to an FFT-friendly number (factors 2, 3, 5 only)."""
        if not spacing > 0:
            raise GridError(f"grid spacing must be positive, got {spacing}")
        lengths = np.linalg.norm(np.asarray(cell, dtype=float), axis=1)
        shape = tuple(fft_friendly_size(max(1, math.ceil(l / spacing - 1e-9))) for l in lengths)
        return cls(cell, shape)
