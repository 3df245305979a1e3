"""Chemical templates (seed 004): interstitial ELF maxima of a metal sublattice and their basins.

Basins are the steepest-ascent partition of the grid: every point follows its highest
neighbour among the 26 around it (periodically) until it reaches a local maximum. A
maximum is interstitial (non-nuclear) when it lies farther than NUCLEAR_RADIUS_FRACTION of
the shortest interatomic distance from every nucleus.

Template score (dimensionless, 0..1): S = sum over interstitial basins whose maximum ELF is
at least TEMPLATE_ELF of (maximum ELF x basin volume) / cell volume. It measures how much
of the cell the sublattice organises into localised interstitial electron pockets, the
sites that hydrogen occupies in the template picture of superhydrides.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from elfkit.analysis.metrics import nearest_neighbour_distance, nucleus_distances
from elfkit.field import Field

NUCLEAR_RADIUS_FRACTION = 0.35
TEMPLATE_ELF = 0.5
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


def template_score(basins: list[Basin], cell_volume: float) -> float:
    """S of the module docstring."""
    return float(sum(b.elf * b.volume_angstrom3 for b in basins if b.interstitial and b.elf >= TEMPLATE_ELF) / cell_volume)


def screen_row(elf: Field, label: str, basins: list[Basin] | None = None) -> dict:
    """One row of a template screen: score, interstitial maxima and networking value of one ELF
    (its `template_basins`, computed unless given)."""
    from elfkit.analysis.network import networking_value

    basins = template_basins(elf) if basins is None else basins
    pockets = [b for b in basins if b.interstitial]
    return {
        "structure": label,
        "formula": elf.atoms.get_chemical_formula(mode="hill"),
        "template_score": round(template_score(basins, elf.atoms.get_volume()), 5),
        "interstitial_maxima": len(pockets),
        "max_interstitial_elf": round(max((b.elf for b in pockets), default=0.0), 4),
        "networking_value": networking_value(elf),
    }
