"""Chemical templates (seed 004): interstitial ELF maxima of a metal sublattice, their basins, and
the template score.

Basins are the steepest-ascent partition of the grid: every point follows its highest
neighbour among the 26 around it (periodically) until it reaches a local maximum. A
maximum is interstitial (non-nuclear) when it lies farther than NUCLEAR_RADIUS_FRACTION of
the shortest interatomic distance d_min from every nucleus.

Template score (dimensionless, 0..1): the cell average of the ELF weighted by how clearly each
point is localised and interstitial,

    S = (1 / V) ∫ ELF(r) · s(ELF(r); TEMPLATE_ELF ± BAND_HALF_WIDTH)
                        · s(ρ(r) / d_min; NUCLEAR_RADIUS_FRACTION ± BAND_HALF_WIDTH) dV,

with ρ(r) the distance (Å) from r to the nearest nucleus and s(x; a ± w) the cubic smoothstep
from 0 at a − w to 1 at a + w. It measures how much of the cell the sublattice organises into
localised interstitial electrons, the sites that hydrogen occupies in the template picture of
superhydrides. Being the average of a continuous field, it converges with the grid: a sum over
whole basins (a basin counted when its maximum passes both thresholds) moves a whole basin in or
out when its maximum shifts by one voxel, and ranked the DFT ELF of the metal test cells against
the same ELF on a 1.5x finer grid at Spearman 0.69 (one score moved by 0.41), where this score
ranks them at 0.993 or better (`benchmarks/template_grid_stability.py`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from elfkit.analysis.metrics import distance_to_nearest_nucleus, nearest_neighbour_distance, nucleus_distances
from elfkit.field import Field

NUCLEAR_RADIUS_FRACTION = 0.35
TEMPLATE_ELF = 0.5
BAND_HALF_WIDTH = 0.05
_OFFSETS = np.array([o for o in np.ndindex(3, 3, 3) if o != (1, 1, 1)]) - 1


@dataclass
class Basin:
    """One ELF basin: its maximum (fractional, Å, ELF), volume (Å³), electrons if a density was given."""

    frac: list[float]
    cart: list[float]
    elf: float
    volume_angstrom3: float
    interstitial: bool
    electrons: float | None = None

    def as_dict(self) -> dict:
        """Plain-JSON form."""
        return asdict(self)


def steepest_ascent_basins(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label of every grid point's basin, and the flat index of each basin's maximum."""
    flat = values.ravel()
    shape = values.shape
    best_value = flat.copy()
    best_index = np.arange(flat.size)
    index = np.arange(flat.size).reshape(shape)
    for offset in _OFFSETS:
        neighbour_index = np.roll(index, tuple(-offset), axis=(0, 1, 2)).ravel()
        neighbour_value = flat[neighbour_index]
        better = neighbour_value > best_value
        best_value = np.where(better, neighbour_value, best_value)
        best_index = np.where(better, neighbour_index, best_index)
    target = best_index
    while True:
        nxt = target[target]
        if np.array_equal(nxt, target):
            break
        target = nxt
    maxima, labels = np.unique(target, return_inverse=True)
    return labels.reshape(shape), maxima


def template_basins(elf: Field, density: Field | None = None) -> list[Basin]:
    """All ELF basins of `elf`, flagged interstitial or nuclear; electrons (e) when `density` (e/Å³) is given."""
    labels, maxima = steepest_ascent_basins(elf.values)
    grid = elf.grid
    volumes = np.bincount(labels.ravel(), minlength=len(maxima)) * grid.voxel_volume
    electrons = None
    if density is not None:
        electrons = np.bincount(labels.ravel(), density.values.ravel(), minlength=len(maxima)) * grid.voxel_volume
    frac = np.array(np.unravel_index(maxima, elf.values.shape)).T.reshape(-1, 3) / np.array(elf.values.shape)
    outside = interstitial(elf.atoms, frac)
    return [
        Basin(
            frac[b].tolist(),
            (frac[b] @ grid.cell).tolist(),
            float(elf.values.ravel()[m]),
            float(volumes[b]),
            bool(outside[b]),
            None if electrons is None else float(electrons[b]),
        )
        for b, m in enumerate(maxima)
    ]


def interstitial(atoms, frac) -> np.ndarray:
    """Whether each fractional position (M, 3) lies farther than NUCLEAR_RADIUS_FRACTION of the
    shortest interatomic distance (Å) from every nucleus of `atoms`, periodic images included:
    outside the cores, where the valence ELF of a pseudopotential or PAW calculation depends on
    the engine's valence shells (and core radii) rather than on the chemistry."""
    return nucleus_distances(atoms, frac) > NUCLEAR_RADIUS_FRACTION * nearest_neighbour_distance(atoms, None)


def smoothstep(x: np.ndarray, centre: float, half_width: float) -> np.ndarray:
    """0 below centre - half_width, 1 above centre + half_width, the cubic smoothstep between."""
    t = np.clip((x - centre + half_width) / (2 * half_width), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def template_score(elf: Field) -> float:
    """S of the module docstring (dimensionless, 0..1) for an ELF on its grid."""
    values = elf.values.ravel().astype(np.float64)
    radius = distance_to_nearest_nucleus(elf.atoms, elf.values.shape).ravel() / nearest_neighbour_distance(elf.atoms, None)
    weight = smoothstep(values, TEMPLATE_ELF, BAND_HALF_WIDTH) * smoothstep(radius, NUCLEAR_RADIUS_FRACTION, BAND_HALF_WIDTH)
    return float(np.mean(values * weight))


def screen_row(elf: Field, label: str, basins: list[Basin] | None = None) -> dict:
    """One row of a template screen: template score, interstitial maxima (of its `template_basins`,
    computed unless given) and networking value of one ELF."""
    from elfkit.analysis.network import networking_value

    basins = template_basins(elf) if basins is None else basins
    pockets = [b for b in basins if b.interstitial]
    return {
        "structure": label,
        "formula": elf.atoms.get_chemical_formula(mode="hill"),
        "template_score": round(template_score(elf), 5),
        "interstitial_maxima": len(pockets),
        "max_interstitial_elf": round(max((b.elf for b in pockets), default=0.0), 4),
        "networking_value": networking_value(elf),
    }
