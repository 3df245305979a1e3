"""Accuracy of a predicted ELF against a reference, and where its residual lives.

Real space: R², MAE, RMSE, max error, errors by region, the residual's periodic
autocorrelation and its correlation length. Reciprocal space: the residual's radially
averaged power spectrum |FFT|² versus |k| and the fraction of its power at wavelengths
longer than the nearest-neighbour H-H distance. Distributions: Wasserstein-1 distance and
histogram overlap of the two ELF distributions.

Regions: "localised" points have reference ELF > 0.7; "interstitial" points have reference
ELF <= 0.7 and lie farther than half the shortest interatomic distance from every nucleus.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from elfkit.errors import GridError
from elfkit.field import Field

LOCALISED_ELF = 0.7
HISTOGRAM_BINS = 100


def check_same_grid(a: Field, b: Field, source: str = "fields") -> None:
    """GridError naming `source` unless two fields share grid shape and cell (Å)."""
    if a.values.shape != b.values.shape:
        raise GridError(f"{source}: grids differ: {a.values.shape} vs {b.values.shape}; the fields must share one grid")
    if not np.allclose(a.atoms.cell.array, b.atoms.cell.array, atol=1e-4):
        raise GridError(f"{source}: the two fields live on different cells")


def nearest_neighbour_distance(atoms: Atoms, species: str | None = "H") -> float:
    """Shortest distance (Å) between two atoms of `species` (any atoms if None or absent), images included."""
    cutoff = 6.0
    i, j, d = neighbor_list("ijd", atoms, cutoff)
    symbols = np.array(atoms.get_chemical_symbols())
    if species is not None and (symbols == species).sum() >= 1:
        mask = (symbols[i] == species) & (symbols[j] == species)
        if mask.any():
            return float(d[mask].min())
    return float(d.min()) if len(d) else float(min(atoms.cell.lengths()))


def distance_to_nearest_nucleus(atoms: Atoms, shape) -> np.ndarray:
    """Distance (Å) from every grid point to its nearest nucleus, periodic images included."""
    from elfkit.grid import Grid

    return nucleus_distances(atoms, Grid(atoms.cell.array, shape).frac_coords().reshape(-1, 3)).reshape(shape)


def nucleus_distances(atoms: Atoms, frac) -> np.ndarray:
    """Distance (Å) from each fractional position (M, 3) to its nearest nucleus, periodic images included."""
    from scipy.spatial import cKDTree

    nuclei = atoms.get_scaled_positions(wrap=True)
    offsets = np.array(np.meshgrid(*[[-1, 0, 1]] * 3, indexing="ij")).reshape(3, -1).T
    images = ((nuclei[:, None, :] + offsets[None]) @ atoms.cell.array).reshape(-1, 3)
    wrapped = np.mod(np.asarray(frac, dtype=float).reshape(-1, 3), 1.0)
    return cKDTree(images).query(wrapped @ atoms.cell.array)[0]


def regions(reference: Field) -> dict[str, np.ndarray]:
    """Boolean masks of the localised and interstitial regions (see the module docstring)."""
    localised = reference.values > LOCALISED_ELF
    far = distance_to_nearest_nucleus(reference.atoms, reference.values.shape) > 0.5 * nearest_neighbour_distance(
        reference.atoms, None
    )
    return {"localised": localised, "interstitial": (~localised) & far}


def pointwise(pred: np.ndarray, ref: np.ndarray) -> dict:
    """R², MAE, RMSE and max |error| of pred against ref; R² is None (undefined) for a
    reference that is constant up to rounding."""
    residual = pred - ref
    variance = ((ref - ref.mean()) ** 2).sum()
    constant = variance <= (1e-12 * max(1.0, float(np.abs(ref).max(initial=0.0)))) ** 2 * ref.size
    return {
        "r2": None if constant else float(1 - (residual**2).sum() / variance),
        "mae": float(np.abs(residual).mean()),
        "rmse": float(np.sqrt((residual**2).mean())),
        "max_error": float(np.abs(residual).max()),
    }


def distributions(pred: np.ndarray, ref: np.ndarray) -> dict:
    """Wasserstein-1 distance and overlap (0..1) of the two ELF histograms on [0, 1]."""
    from scipy.stats import wasserstein_distance

    edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    hp = np.histogram(pred, edges)[0] / pred.size
    hr = np.histogram(ref, edges)[0] / ref.size
    return {
        "wasserstein_1": float(wasserstein_distance(pred.ravel(), ref.ravel())),
        "histogram_overlap": float(np.minimum(hp, hr).sum()),
    }


def residual_power(residual: Field) -> tuple[np.ndarray, np.ndarray]:
    """|k| (1/Å) and power of every real-FFT mode (counting the mirrored half), normalised so
    that the power sums to the mean square of the field minus its mean."""
    from elfkit.grid import Grid

    values = residual.values - residual.values.mean()
    power = np.abs(np.fft.rfftn(values)) ** 2 / values.size**2
    power[..., 1 : (values.shape[2] + 1) // 2] *= 2
    k = np.linalg.norm(Grid(residual.atoms.cell.array, values.shape).reciprocal_vectors(), axis=-1)
    return k, power


def power_spectrum(residual: Field, bins: int = 40) -> dict:
    """Radially averaged |FFT|² of a field versus |k| (1/Å, 2π included): total and per-mode power per shell."""
    k, power = residual_power(residual)
    edges = np.linspace(0.0, k.max() * (1 + 1e-9), bins + 1)
    which = np.digitize(k.ravel(), edges) - 1
    total = np.bincount(which, power.ravel(), minlength=bins)[:bins]
    count = np.bincount(which, minlength=bins)[:bins]
    return {
        "k_per_angstrom": ((edges[1:] + edges[:-1]) / 2).tolist(),
        "power": total.tolist(),
        "mean_power": np.divide(total, count, out=np.zeros(bins), where=count > 0).tolist(),
    }


def long_wavelength_fraction(residual: Field, length_angstrom: float) -> float:
    """Share of the residual power at wavelengths 2π/|k| longer than `length_angstrom`."""
    k, power = residual_power(residual)
    total = power[k > 0].sum()
    return float(power[(k > 0) & (k < 2 * np.pi / length_angstrom)].sum() / total) if total > 0 else 0.0


def autocorrelation(residual: Field, bins: int = 40) -> dict:
    """Periodic autocorrelation C(r) of a field (C(0) = 1) radially averaged over the
    minimum-image distance r (Å), and the correlation length where C first falls below 1/e."""
    from elfkit.grid import Grid

    values = residual.values - residual.values.mean()
    variance = (values**2).mean()
    grid = Grid(residual.atoms.cell.array, values.shape)
    if variance == 0:
        return {"r_angstrom": [], "c": [], "correlation_length_angstrom": 0.0}
    c = np.fft.irfftn(np.abs(np.fft.rfftn(values)) ** 2, s=values.shape, axes=(0, 1, 2)) / values.size / variance
    frac = grid.frac_coords()
    frac -= np.round(frac)
    r = np.linalg.norm(frac @ grid.cell, axis=-1)
    edges = np.linspace(0.0, r.max() * (1 + 1e-9), bins + 1)
    which = np.digitize(r.ravel(), edges) - 1
    count = np.bincount(which, minlength=bins)[:bins]
    mean_c = np.divide(np.bincount(which, c.ravel(), minlength=bins)[:bins], count, out=np.full(bins, np.nan), where=count > 0)
    centres = (edges[1:] + edges[:-1]) / 2
    centres, mean_c = np.concatenate([[0.0], centres[count > 0]]), np.concatenate([[1.0], mean_c[count > 0]])
    return {"r_angstrom": centres.tolist(), "c": mean_c.tolist(), "correlation_length_angstrom": _first_crossing(centres, mean_c, 1 / np.e)}


def _first_crossing(x: np.ndarray, y: np.ndarray, level: float) -> float | None:
    below = np.nonzero(y < level)[0]
    if not len(below):
        return None
    i = below[0]
    return float(x[i - 1] + (y[i - 1] - level) * (x[i] - x[i - 1]) / (y[i - 1] - y[i]))


def compare(pred: Field, ref: Field) -> dict:
    """Every accuracy and residual measure of `pred` against `ref` (same grid required)."""
    check_same_grid(pred, ref)
    p, r = pred.values, ref.values
    masks = regions(ref)
    residual = Field(ref.atoms, p - r, "scalar")
    d_hh = nearest_neighbour_distance(ref.atoms, "H")
    return {
        **pointwise(p, r),
        **distributions(p, r),
        "regions": {name: {**pointwise(p[m], r[m]), "fraction": float(m.mean())} for name, m in masks.items() if m.any()},
        "nearest_neighbour_hh_angstrom": d_hh,
        "long_wavelength_power_fraction": long_wavelength_fraction(residual, d_hh),
        "power_spectrum": power_spectrum(residual),
        "autocorrelation": autocorrelation(residual),
    }
