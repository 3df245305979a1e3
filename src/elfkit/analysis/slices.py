"""Planar slices of a periodic field through any lattice plane (hkl).

A plane (hkl) holds a 2D lattice of cell translations; its two shortest independent vectors
U and V (integer [uvw] in the cell's basis) span one period of the plane. The slice is the
parallelogram corner + s U + t V, s and t in [0, 1] both ends included, sampled by periodic
trilinear interpolation of the grid (grid point (i, j, k) at fractional (i/N1, j/N2, k/N3)),
so the map reaches every edge and wraps across the cell boundaries. Atoms drawn: every
periodic image whose distance to the plane is at most `slab` Å and whose foot lies in the
parallelogram (edges and corners included). In-plane coordinates are Cartesian (Å): x along
U, y perpendicular to U within the plane.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

import numpy as np

from elfkit.errors import ElfkitError
from elfkit.field import Field

SLAB_ANGSTROM = 0.6
"""Atoms within this distance (Å) of a slice plane are drawn on it."""
_SEARCH = 4
_EDGE = 1e-6


class SliceError(ElfkitError):
    """A slice plane (Miller indices) or the atom it should pass through is invalid."""


@dataclass
class PlaneSlice:
    """Values on one plane and the atoms near it; x, y, atom_xy in Å (see the module docstring)."""

    hkl: tuple[int, int, int]
    u: tuple[int, int, int]
    v: tuple[int, int, int]
    corner_frac: np.ndarray
    x: np.ndarray
    y: np.ndarray
    values: np.ndarray
    outline: np.ndarray
    atom_symbols: list[str]
    atom_xy: np.ndarray
    atom_height: np.ndarray
    slab: float

    @property
    def name(self) -> str:
        """Compact plane name for file names, e.g. '1-10'."""
        return "".join(str(i) for i in self.hkl)


def parse_plane(text: str) -> tuple[int, int, int]:
    """Miller indices from '001', '1-10', '1,-1,0' or '1 -1 0', divided by their common
    divisor; SliceError for anything else or for (000)."""
    cleaned = text.strip()
    packed = re.fullmatch(r"(-?\d)(-?\d)(-?\d)", cleaned)
    parts = list(packed.groups()) if packed else re.split(r"[,\s]+", cleaned)
    if len(parts) != 3 or not all(re.fullmatch(r"-?\d+", p) for p in parts):
        raise SliceError(f"--plane {text!r}: give three Miller indices h k l, e.g. 001, 1-10 or 1,-1,0")
    hkl = tuple(int(p) for p in parts)
    divisor = math.gcd(*hkl)
    if divisor == 0:
        raise SliceError(f"--plane {text!r}: (000) is not a plane")
    return tuple(i // divisor for i in hkl)


def check_atom_number(atoms, number: int | None, source: str) -> None:
    """SliceError unless `number` (1 = the first atom in the file) names an atom of `atoms`."""
    if number is not None and not 1 <= number <= len(atoms):
        raise SliceError(f"--through-atom {number}: {source} has atoms 1 to {len(atoms)}")


def plane_lattice(cell: np.ndarray, hkl: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The two shortest cell translations [uvw] spanning the 2D lattice of plane (hkl), U with
    its first non-zero index positive (ties: [100] before [010] before [001]), and U x V along
    the plane's normal h a* + k b* + l c*, so the slice is seen from that side."""
    reach = _SEARCH + max(abs(i) for i in hkl)
    candidates = np.array([
        c for c in itertools.product(range(-reach, reach + 1), repeat=3)
        if np.dot(c, hkl) == 0 and any(c) and c[np.nonzero(c)[0][0]] > 0
    ])
    lengths = np.linalg.norm(candidates @ cell, axis=1)
    order = sorted(range(len(candidates)), key=lambda i: (round(lengths[i], 9), tuple(-abs(candidates[i]))))
    candidates = candidates[order]
    u = candidates[0]
    areas = np.linalg.norm(np.cross(u @ cell, candidates @ cell), axis=1)
    smallest = areas[areas > 1e-9 * lengths.max() ** 2].min()
    v = candidates[np.nonzero(np.isclose(areas, smallest, rtol=1e-9))[0][0]]
    reciprocal = np.linalg.inv(cell).T
    if np.cross(u @ cell, v @ cell) @ (np.array(hkl) @ reciprocal.T) < 0:
        v = -v
    return u, v


def _plane_frame(cell: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orthonormal x (along U), y (in plane), n (plane normal) in Cartesian space."""
    uc, vc = u @ cell, v @ cell
    ex = uc / np.linalg.norm(uc)
    ey = vc - (vc @ ex) * ex
    ey /= np.linalg.norm(ey)
    return ex, ey, np.cross(ex, ey)


def plane_slice(
    field: Field, hkl: tuple[int, int, int], through_frac=(0.0, 0.0, 0.0), centred: bool = False, slab: float = SLAB_ANGSTROM
) -> PlaneSlice:
    """The slice of `field` on plane (hkl) through the fractional point `through_frac`: that
    point at the parallelogram's corner, or at its centre when `centred`."""
    cell = field.atoms.cell.array
    u, v = plane_lattice(cell, hkl)
    through = np.asarray(through_frac, dtype=float)
    corner = through - 0.5 * (u + v) if centred else through
    ex, ey, normal = _plane_frame(cell, u, v)
    spacing = min(np.linalg.norm(cell, axis=1) / np.array(field.values.shape))
    counts = [min(400, max(2, int(np.ceil(2 * np.linalg.norm(w @ cell) / spacing)) + 1)) for w in (u, v)]
    s, t = np.meshgrid(np.linspace(0, 1, counts[0]), np.linspace(0, 1, counts[1]), indexing="ij")
    frac = corner + s[..., None] * u + t[..., None] * v
    values = _interpolate(field.values, frac)
    offset = (frac - corner) @ cell
    edges = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]) @ np.stack([u @ cell, v @ cell])
    outline = np.stack([edges @ ex, edges @ ey], axis=1)
    symbols, xy, height = _atoms_near(field.atoms, corner, u, v, normal, ex, ey, slab)
    return PlaneSlice(tuple(hkl), tuple(int(i) for i in u), tuple(int(i) for i in v), corner, offset @ ex, offset @ ey,
                      values, outline, symbols, xy, height, slab)


def _interpolate(values: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Periodic trilinear interpolation of grid values at fractional coordinates."""
    from scipy.ndimage import map_coordinates

    index = np.moveaxis(frac * np.array(values.shape), -1, 0)
    return map_coordinates(values, index.reshape(3, -1), order=1, mode="grid-wrap").reshape(frac.shape[:-1])


def _atoms_near(atoms, corner, u, v, normal, ex, ey, slab):
    """Symbols, in-plane (x, y) in Å and signed height (Å) of every atom image drawn on the slice."""
    cell = atoms.cell.array
    frac = atoms.get_scaled_positions(wrap=True)
    reach = 1 + int(np.abs(np.stack([u, v])).sum(axis=0).max())
    shifts = np.array(list(itertools.product(range(-reach, reach + 1), repeat=3)))
    images = (frac[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    symbols = np.tile(atoms.get_chemical_symbols(), len(shifts))
    relative = (images - corner) @ cell
    basis = np.stack([u @ cell, v @ cell, normal])
    s, t, height = np.linalg.solve(basis.T, relative.T)
    keep = (np.abs(height) <= slab) & (s > -_EDGE) & (s < 1 + _EDGE) & (t > -_EDGE) & (t < 1 + _EDGE)
    xy = np.stack([relative[keep] @ ex, relative[keep] @ ey], axis=1)
    return list(symbols[keep]), xy, height[keep]
