"""Superposition of atomic densities (SAD) on a periodic grid.

The free-atom densities come from GPAW's all-electron atomic solver (PBE, scalar-relativistic,
spherical, spin-paired ground-state configurations), made by `scripts/make_sad_table.py`
and stored in `elfkit/atomdata/sad_densities.npz`. Two kinds exist for every element H..Bi:

- ``total``: all Z electrons. Inside a small per-element radius r_c (stored in the table)
  the sharp nuclear cusp and core shells are replaced by a smooth even polynomial that keeps
  the density, its first three derivatives at r_c, and the charge inside r_c; outside r_c it
  is the all-electron density. This makes the SAD representable on grids of ~0.1 Å spacing.
- ``valence``: the electrons outside the preceding noble-gas core, smoothed the same way.

Two more kinds, per DFT engine, hold exactly the electrons that engine treats explicitly
(``qe``: elfkit's pseudopotentials, ``gpaw``: GPAW's default PAW setups; semicore shells
included where the engine keeps them), from the same atoms, in
`elfkit/atomdata/engine_valence_densities.npz` (`scripts/make_engine_valence_table.py`):
the density behind a reference ELF made by that engine.

The sum over atoms and all their periodic images is done in reciprocal space,
rho(G) = sum_a f_a(|G|) exp(-i G.r_a) / V with the exact structure factor, which by the
Poisson summation formula equals the real-space sum over every periodic image within the
density's cutoff, band-limited to the sphere |G| < pi / (largest grid spacing). The
G = 0 term makes the grid integral equal the electron count; the tiny negative ripples of
the band limit are clipped to zero.
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from importlib import resources

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from scipy import fft
from scipy.interpolate import CubicSpline

from elfkit.errors import ElfkitError, GridError
from elfkit.field import Field
from elfkit.grid import Grid, check_grid_shape
from elfkit.units import BOHR_IN_ANGSTROM

ENGINE_KINDS = ("qe", "gpaw")
DENSITY_KINDS = ("total", "valence") + ENGINE_KINDS
_TABLE = "sad_densities.npz"
ENGINE_VALENCE_TABLE = "engine_valence_densities.npz"
PSEUDO_ATOM_TABLE = "engine_pseudo_atoms.npz"
_FINE_DR_ANGSTROM = 0.004
_DK = 0.01
_NEGLIGIBLE_DENSITY = 1e-10
_H_BLOCK_BYTES = 64 * 2**20


@lru_cache(maxsize=4)
def _table(name: str = _TABLE) -> dict[str, np.ndarray]:
    with resources.files("elfkit.atomdata").joinpath(name).open("rb") as handle:
        with np.load(handle, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}


def engine_valence_electrons(z: int, engine: str) -> float:
    """Electrons that `engine` ("qe" or "gpaw") treats explicitly for element `z` (0: no
    pseudopotential or setup of that engine in elfkit's table)."""
    _check_kind(engine)
    counts = _table(ENGINE_VALENCE_TABLE)[f"{engine}_valence_electrons"]
    return float(counts[z - 1]) if 1 <= z <= len(counts) else 0.0


def _check_kind(kind: str) -> None:
    if kind not in DENSITY_KINDS:
        raise ElfkitError(f"unknown SAD kind {kind!r}; use one of {', '.join(DENSITY_KINDS)}")


def atomic_density(z: int, kind: str = "total") -> tuple[np.ndarray, np.ndarray]:
    """Radial free-atom density of element `z`: radii in Å and density in electrons/Å³."""
    _check_kind(kind)
    table = _table(ENGINE_VALENCE_TABLE if kind in ENGINE_KINDS else _TABLE)
    if not 1 <= z <= len(table["z"]):
        raise ElfkitError(f"no atomic density for Z={z} (elfkit covers H to Bi)")
    if kind in ENGINE_KINDS and engine_valence_electrons(z, kind) == 0:
        raise ElfkitError(f"no {kind} valence density for {chemical_symbols[z]}: elfkit has no {kind} pseudopotential or setup for it")
    r = table["r_bohr"] * BOHR_IN_ANGSTROM
    n = table[f"{kind}_e_per_bohr3"][z - 1].astype(float) / BOHR_IN_ANGSTROM**3
    return r, n


def pseudo_atom(z: int, engine: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The neutral free atom of element `z` as `engine` ("qe" or "gpaw") makes its ELF: the
    spherically averaged density and kinetic energy density tau = 1/2 sum |grad psi|² of its
    smooth (pseudo) valence wavefunctions (`elfkit/atomdata/engine_pseudo_atoms.npz`, made by
    `scripts/make_pseudo_atom_table.py`). Radii in Å, density in e/Å³, tau in hartree/Å³."""
    if engine not in ENGINE_KINDS:
        raise ElfkitError(f"pseudo-atoms exist per DFT engine; use one of {', '.join(ENGINE_KINDS)}, not {engine!r}")
    table = _table(PSEUDO_ATOM_TABLE)
    if not 1 <= z <= len(table["z"]) or not table[f"{engine}_configuration"][z - 1]:
        raise ElfkitError(f"no {engine} pseudo-atom for {chemical_symbols[z] if 0 < z < len(chemical_symbols) else z}")
    r = table["r_bohr"] * BOHR_IN_ANGSTROM
    per_cubic_angstrom = 1.0 / BOHR_IN_ANGSTROM**3
    rho = table[f"{engine}_density_e_per_bohr3"][z - 1].astype(float) * per_cubic_angstrom
    tau = table[f"{engine}_kinetic_hartree_per_bohr3"][z - 1].astype(float) * per_cubic_angstrom
    return r, rho, tau


def electron_count(atoms: Atoms, kind: str = "total") -> float:
    """Number of electrons the SAD of `atoms` holds: Z per atom for 'total', else valence
    (of the noble-gas core or of the engine)."""
    _check_kind(kind)
    if kind in ENGINE_KINDS:
        return float(sum(engine_valence_electrons(z, kind) for z in atoms.numbers))
    table = _table()
    per_element = table["z"] if kind == "total" else table["valence_electrons"]
    return float(sum(per_element[z - 1] for z in atoms.numbers))


@lru_cache(maxsize=256)
def _form_factor_spline(z: int, kind: str, k_max: float) -> CubicSpline:
    r, n = atomic_density(z, kind)
    extent = r[np.nonzero(n > _NEGLIGIBLE_DENSITY)[0][-1]]
    fine_r = np.arange(0.0, extent + _FINE_DR_ANGSTROM, _FINE_DR_ANGSTROM)
    weight = 4 * np.pi * fine_r**2 * np.clip(CubicSpline(r, n)(fine_r), 0.0, None) * _FINE_DR_ANGSTROM
    k = np.arange(0.0, k_max + 4 * _DK, _DK)
    return CubicSpline(k, np.sinc(np.outer(k, fine_r) / np.pi) @ weight)


def form_factor(z: int, kind: str, k: np.ndarray) -> np.ndarray:
    """Fourier transform f(k) = ∫ n(r) exp(-i k.r) d³r of the atomic density (electrons), k in 1/Å."""
    k = np.asarray(k, dtype=float)
    return _form_factor_spline(int(z), kind, float(np.ceil(k.max(initial=0.0))))(k)


def sad_reciprocal(atoms: Atoms, grid_shape, kind: str = "total") -> np.ndarray:
    """Fourier coefficients sum_a f_a(|G|) exp(-i G.r_a) (electrons) of the SAD on the
    real-FFT layout of `grid_shape`, zero outside the sphere |G| < band_limit(grid).
    `scipy.fft.irfftn(rho_g, s=grid_shape) * N / V` is the density in electrons/Å³.

    Each FFT coefficient stands for a wave vector modulo the grid's reciprocal superlattice
    (rows N_a b_a); the shortest representative is used, so the SAD depends on the grid's
    points only, not on the lattice basis that indexes them (a skewed cell and its reduced
    form give the same values at the same points)."""
    return sad_reciprocal_and_wave_vectors(atoms, grid_shape, kind)[0]


def sad_reciprocal_and_wave_vectors(atoms: Atoms, grid_shape, kind: str = "total") -> tuple[np.ndarray, np.ndarray]:
    """`sad_reciprocal` and the wave vector (1/Å) each of its coefficients stands for, shape
    (N1, N2, N3//2+1, 3), zero outside the band-limit sphere (for spectral derivatives)."""
    _check_kind(kind)
    grid = Grid(atoms.cell.array, check_grid_shape(grid_shape))
    rho_g = np.zeros((grid.shape[0], grid.shape[1], grid.shape[2] // 2 + 1), dtype=complex)
    g = grid.reciprocal_vectors()
    wave_vectors = np.zeros_like(g)
    frac = atoms.get_scaled_positions(wrap=True)
    for shift, mask, g_norm in _wave_vector_images(grid, g):
        offset = np.array(grid.shape) * shift
        wave_vectors[mask] = g[mask] + shift @ _superlattice(grid)
        for z in np.unique(atoms.numbers):
            structure = _structure_factor(frac[atoms.numbers == z], grid.shape, offset, mask)
            rho_g[mask] += form_factor(int(z), kind, g_norm) * structure[mask]
    return rho_g, wave_vectors


_SHIFTS = np.array([m for m in itertools.product((-1, 0, 1), repeat=3) if any(m)])


def _superlattice(grid: Grid) -> np.ndarray:
    """Rows N_a b_a (1/Å, 2π included): the wave vectors that alias to G = 0 on the grid."""
    return np.array(grid.shape)[:, None] * 2 * np.pi * np.linalg.inv(grid.cell).T


def band_limit(grid: Grid) -> float:
    """Radius (1/Å) of the largest sphere of wave vectors the grid holds without aliasing:
    half the shortest non-zero vector of its reciprocal superlattice; pi / spacing for an
    orthogonal grid of equal spacings."""
    steps = np.array([m for m in itertools.product(range(-2, 3), repeat=3) if any(m)])
    return 0.5 * float(np.linalg.norm(steps @ _superlattice(grid), axis=1).min())


def _wave_vector_images(grid: Grid, g: np.ndarray):
    """(shift m, mask, |G|) for every superlattice shift that brings the FFT wave vectors `g` of
    the box into the band-limit sphere: G + m N b has |.| < band_limit at the points of `mask`."""
    k_max = band_limit(grid)
    norm = np.sqrt(np.einsum("...i,...i->...", g, g))
    inside = norm < k_max
    images = [(np.zeros(3, dtype=int), inside, norm[inside])]
    outside = ~inside
    g_out = None
    for shift in _SHIFTS:
        step = shift @ _superlattice(grid)
        if not _may_reach_sphere(g, step, k_max):
            continue
        g_out = g[outside] if g_out is None else g_out
        moved = np.linalg.norm(g_out + step, axis=-1)
        hits = moved < k_max
        if hits.any():
            mask = np.zeros(norm.shape, dtype=bool)
            mask[outside] = hits
            images.append((shift, mask, moved[hits]))
    return images


def _may_reach_sphere(g: np.ndarray, step: np.ndarray, k_max: float) -> bool:
    """False when no G outside the sphere |G| < k_max can have |G + step| < k_max, which needs
    G.step < (k_max² - |G|² - |step|²) / 2 <= -|step|² / 2. G is linear in its Miller indices
    (g[i, 0, 0] = h1_i b1 and so on), so the smallest G.step over the box is the sum over the
    three axes of the smallest h_a b_a.step."""
    lowest = sum(float((line @ step).min()) for line in (g[:, 0, 0], g[0, :, 0], g[0, 0, :]))
    return lowest < -0.5 * float(step @ step)


def sad(atoms: Atoms, grid_shape, kind: str = "total") -> np.ndarray:
    """SAD of `atoms` on the periodic grid `grid_shape` of its cell, electrons/Å³.

    Grid point (i, j, k) is at fractional (i/N1, j/N2, k/N3). The grid integral,
    sum * voxel volume, equals `electron_count(atoms, kind)` up to the clipped ripples.
    """
    grid = Grid(atoms.cell.array, check_grid_shape(grid_shape))
    rho_g = sad_reciprocal(atoms, grid.shape, kind)
    values = fft.irfftn(rho_g, s=grid.shape, workers=-1) * (np.prod(grid.shape) / grid.volume)
    return np.clip(values, 0.0, None)


def _structure_factor(frac: np.ndarray, shape, offset, needed: np.ndarray) -> np.ndarray:
    """Exact S(h) = sum_a exp(-2 pi i (h + offset).u_a) on the real-FFT layout of h, via
    separable factors summed per line (h1, h2, :) by matrix products (`offset`: integer Miller
    indices added to every h). Only the lines that hold a `needed` coefficient ((N1, N2,
    N3//2+1) bool, e.g. the band-limit sphere: half of a cubic box) are computed, each up to
    its last needed one; the rest is zero."""
    n1, n2, n3 = shape
    h = [np.fft.fftfreq(n1, 1.0 / n1), np.fft.fftfreq(n2, 1.0 / n2), np.fft.rfftfreq(n3, 1.0 / n3)]
    h = [values + shift for values, shift in zip(h, offset)]
    e1, e2 = (np.exp(-2j * np.pi * np.outer(h[axis], frac[:, axis])) for axis in range(2))
    e3 = np.exp(-2j * np.pi * np.outer(frac[:, 2], h[2]))
    out = np.zeros((n1 * n2, len(h[2])), dtype=complex)
    lengths = _line_lengths(needed.reshape(out.shape))
    lines = np.flatnonzero(lengths)
    lines = lines[np.argsort(lengths[lines], kind="stable")]
    block = max(1, _H_BLOCK_BYTES // (16 * len(frac)))
    for start in range(0, len(lines), block):
        chunk = lines[start : start + block]
        length = int(lengths[chunk].max())
        first, second = np.divmod(chunk, n2)
        out[chunk, :length] = (e1[first] * e2[second]) @ e3[:, :length]
    return out.reshape(n1, n2, len(h[2]))


def _line_lengths(needed: np.ndarray) -> np.ndarray:
    """Per row of `needed` (lines, n) bool: one past the index of its last True (0: none)."""
    last = needed.shape[1] - np.argmax(needed[:, ::-1], axis=1)
    return np.where(needed.any(axis=1), last, 0)


MAX_ELECTRON_ERROR = 0.01
"""Largest relative change of the electron count the clipped ripples of the band limit may
cause; a larger one means the grid is too coarse for the atoms (their cores) to be represented."""


def sad_field(atoms: Atoms, grid_shape, kind: str = "total", source: str = "structure") -> Field:
    """The SAD as a Field (quantity 'density', electrons/Å³) ready to be written.

    GridError naming `source`: before anything is allocated when the grid is too large for
    memory (`elfkit.memory`), and before the field is returned when the grid is too coarse for
    the atoms (the integral misses `electron_count` by more than MAX_ELECTRON_ERROR).
    """
    from elfkit.memory import check_memory

    _check_kind(kind)
    shape = check_grid_shape(grid_shape)
    check_memory("sad", shape, source, len(atoms))
    values = sad(atoms, shape, kind)
    expected = electron_count(atoms, kind)
    grid = Grid(atoms.cell.array, shape)
    integral = float(values.sum() * grid.voxel_volume)
    if abs(integral - expected) > MAX_ELECTRON_ERROR * expected:
        raise GridError(
            f"{source}: the grid {shape[0]}x{shape[1]}x{shape[2]} (spacing up to {grid.spacing.max():.3f} Å) is too "
            f"coarse for the {kind} SAD of {atoms.get_chemical_formula()}: it holds {integral:.4g} of "
            f"{expected:g} electrons (use a finer grid, e.g. --spacing 0.12)"
        )
    return Field(atoms.copy(), values, "density", metadata={"sad_kind": kind})
