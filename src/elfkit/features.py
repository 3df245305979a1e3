"""What a model sees: channels computed from geometry alone, analytically, on any grid and cell.

Everything starts from the SAD (`elfkit.sad`, electrons/Å³) in reciprocal space, so its
gradient and Laplacian are exact spectral derivatives of the band-limited density. The
channels are dimensionless and of order one (grid convention of `elfkit.grid`):

0. ``log_density``: (ln rho[e/bohr³] + 3) / 3
1. ``ge_elf``: the ELF of the SAD with the second-order gradient expansion of the kinetic
   energy (Kirzhnits; Tsirelson and Stash 2002): tau = tau_TF + tau_W / 9 + lap(rho) / 6,
   the "physics baseline" ELF with no learning at all.
2. ``reduced_gradient``: s / (1 + s), s = |grad rho| / (2 (3 pi²)^(1/3) rho^(4/3))
3. ``reduced_laplacian``: tanh(q), q = lap(rho) / (4 (3 pi²)^(2/3) rho^(5/3))
4-9. ``metric_*``: the grid's metric, constant over the cell: h_a . h_b / h0² - delta_ab for the
   voxel steps h_a = a_a / N_a (Å) and h0 = REFERENCE_SPACING_ANGSTROM, so a convolution can tell
   a skewed or stretched voxel lattice from the cubic one it mostly trained on.

The feature set ``sad+engine-valence`` (`FeatureSet`) appends channels 10-13,
``engine_valence_*``: the four density channels of the SAD of the electrons the labelling DFT
engine treats explicitly (`elfkit.sad` kinds ``qe`` and ``gpaw``), so a model trained on labels
of two engines whose valence shells differ (GPAW's Mg keeps 2s2p, elfkit's QE Mg does not)
sees which shells the label holds. At prediction the engine is `prediction_engine`.

The feature set ``sad+engine-valence+pseudo-atoms`` appends two more (`PSEUDO_ATOM_CHANNELS`):
``pseudo_atoms_elf``, the ELF of the superposed neutral pseudo-atoms of the labelling engine
(their smooth valence wavefunctions' density and kinetic energy density, `elfkit.sad.pseudo_atom`,
summed over atoms: exact for an isolated atom, so it holds the shells a DFT ELF shows around a
nucleus, which the gradient expansion has none of), and ``pseudo_atoms_log_density``, their
density as channel 0. Both are summed in real space, on grids too (no band limit needed).

The feature set ``sad+engine-valence+shell-field`` appends `SHELL_FIELD_CHANNELS` to
``sad+engine-valence`` instead: at a point p near an atom A (within SHELL_FIELD_RADIUS_ANGSTROM),
the crystal field of A's neighbours seen along the direction u from A to p, per angular order l
<= SHELL_FIELD_L_MAX and per relative neighbour distance (`shell_field_channels`). A DFT ELF's
semicore shell around an atom has up to 24 maxima on it, an angular pattern of order 4-8 set by
the neighbours; a point-centred basis of l <= 3 or 4 sees it only faintly.
"""

from __future__ import annotations

from enum import Enum
from functools import lru_cache

import numpy as np
from ase import Atoms
from scipy import fft

from elfkit.errors import ElfkitError
from elfkit.grid import Grid, check_grid_shape
from elfkit.physics import RHO_MIN_AU, elf_from_density
from elfkit.sad import ENGINE_KINDS, engine_valence_electrons, pseudo_atom, sad_reciprocal_and_wave_vectors
from elfkit.units import BOHR_IN_ANGSTROM

METRIC_PAIRS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
CHANNELS: tuple[str, ...] = ("log_density", "ge_elf", "reduced_gradient", "reduced_laplacian") + tuple(
    f"metric_{a}{b}" for a, b in METRIC_PAIRS
)
GE_ELF_CHANNEL = 1
REFERENCE_SPACING_ANGSTROM = 0.11
_KF = (3 * np.pi**2) ** (1 / 3)
_C_TF = 0.3 * _KF**2


def density_derivatives(atoms: Atoms, grid_shape, kind: str = "total") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SAD rho (e/bohr³), its gradient (3, N1, N2, N3; e/bohr⁴) and Laplacian (e/bohr⁵),
    exact spectral derivatives of the band-limited SAD on `grid_shape` of the cell of `atoms`."""
    grid = Grid(atoms.cell.array, check_grid_shape(grid_shape))
    rho_g, g = sad_reciprocal_and_wave_vectors(atoms, grid.shape, kind)
    g *= BOHR_IN_ANGSTROM
    scale = np.prod(grid.shape) / grid.volume * BOHR_IN_ANGSTROM**3

    def to_real(values_g: np.ndarray) -> np.ndarray:
        return fft.irfftn(values_g, s=grid.shape, workers=-1) * scale

    rho = to_real(rho_g)
    gradient = np.stack([to_real(1j * g[..., axis] * rho_g) for axis in range(3)])
    laplacian = to_real(-(g**2).sum(axis=-1) * rho_g)
    return rho, gradient, laplacian


def gradient_expansion_elf(rho: np.ndarray, gradient: np.ndarray, laplacian: np.ndarray) -> np.ndarray:
    """ELF (dimensionless) of a density with tau from the second-order gradient expansion,
    tau = tau_TF + tau_W / 9 + lap(rho) / 6; inputs in atomic units (see density_derivatives)."""
    rho = np.clip(rho, 0.0, None)
    weizsaecker = np.divide((gradient**2).sum(axis=0), 8 * rho, out=np.zeros_like(rho), where=rho > RHO_MIN_AU)
    tau = _C_TF * rho ** (5 / 3) + weizsaecker / 9 + laplacian / 6
    return elf_from_density(rho, gradient, tau)


def physics_channels(atoms: Atoms, grid_shape) -> np.ndarray:
    """The model input: float32 array (len(CHANNELS), N1, N2, N3) on the grid of the cell.
    Filled channel by channel, so the peak memory is about 10 float64 grids."""
    rho, gradient, laplacian = density_derivatives(atoms, grid_shape)
    out = np.empty((len(CHANNELS), *rho.shape), dtype=np.float32)
    _fill_density_channels(out, rho, gradient, laplacian)
    for offset, value in enumerate(grid_metric(atoms.cell.array, out.shape[1:])):
        out[CHANNELS.index("metric_00") + offset] = value
    return out


def _fill_density_channels(out: np.ndarray, rho: np.ndarray, gradient: np.ndarray, laplacian: np.ndarray, first: int = 0) -> None:
    """Channels first..first+3 of `out` (in the order of DENSITY_CHANNELS) from the density, its
    gradient and Laplacian (atomic units); consumes the inputs (they are overwritten or freed to
    keep the peak memory low)."""
    out[first + GE_ELF_CHANNEL] = gradient_expansion_elf(rho, gradient, laplacian)
    safe = np.clip(rho, RHO_MIN_AU, None)
    s = np.sqrt((gradient**2).sum(axis=0)) / (2 * _KF * safe ** (4 / 3))
    out[first + CHANNELS.index("reduced_gradient")] = s / (1.0 + s)
    del s
    out[first + CHANNELS.index("reduced_laplacian")] = np.tanh(laplacian / (4 * _KF**2 * safe ** (5 / 3)))
    out[first + CHANNELS.index("log_density")] = (np.log(safe) + 3.0) / 3.0


DENSITY_CHANNELS = CHANNELS[:4]
"""The channels that depend on the density alone (not on a grid): those a point model sees."""
ENGINE_VALENCE_CHANNELS = tuple(f"engine_valence_{name}" for name in DENSITY_CHANNELS)
PSEUDO_ATOM_CHANNELS = ("pseudo_atoms_elf", "pseudo_atoms_log_density")
SHELL_FIELD_RADIUS_ANGSTROM = 1.5
"""Atoms closer than this to a point give it their shell field (cosine weight, zero at it)."""
SHELL_FIELD_L_MAX = 8
SHELL_FIELD_NEAR_ANGSTROM = 0.25
"""Closer to an atom than about this, a point's direction from it fades out of its l > 0 channels."""
SHELL_FIELD_CENTRES = (1.0, 1.2, 1.45, 1.75)
"""Neighbour distances, in units of the atom's nearest-neighbour distance, of the field's radial
Gaussians (width SHELL_FIELD_WIDTH; bcc's second shell lies at 1.15, fcc's and sc's at 1.41)."""
SHELL_FIELD_WIDTH = 0.12
SHELL_FIELD_REACH = 2.1
"""Neighbours beyond this many nearest-neighbour distances add nothing (cosine cutoff)."""
SHELL_FIELD_SCALE = 3.0
"""Neighbours per unit of the channels (so that they are of order one)."""
SHELL_FIELD_CHANNELS = tuple(f"shell_field_l{l}_n{n}" for l in range(SHELL_FIELD_L_MAX + 1) for n in range(len(SHELL_FIELD_CENTRES)))


class FeatureSet(str, Enum):
    """The channel sets a model can read (stored in its config as `features`)."""

    SAD = "sad"
    SAD_ENGINE_VALENCE = "sad+engine-valence"
    SAD_ENGINE_PSEUDO_ATOMS = "sad+engine-valence+pseudo-atoms"
    SAD_ENGINE_SHELL_FIELD = "sad+engine-valence+shell-field"


def reads_engine(feature_set: FeatureSet | str) -> bool:
    """Whether `feature_set` has channels of the labelling engine (its valence SAD, its pseudo-atoms)."""
    return FeatureSet(feature_set) != FeatureSet.SAD


_REAL_SPACE_CHANNELS = {FeatureSet.SAD_ENGINE_PSEUDO_ATOMS: PSEUDO_ATOM_CHANNELS, FeatureSet.SAD_ENGINE_SHELL_FIELD: SHELL_FIELD_CHANNELS}


def _added_channels(feature_set: FeatureSet | str) -> tuple[str, ...]:
    """The channels `feature_set` adds to the SAD's: the engine's valence SAD, then those summed in real space."""
    return (ENGINE_VALENCE_CHANNELS if reads_engine(feature_set) else ()) + _REAL_SPACE_CHANNELS.get(FeatureSet(feature_set), ())


def feature_channels(feature_set: FeatureSet | str = FeatureSet.SAD) -> tuple[str, ...]:
    """Names of the channels of `feature_set`, in order."""
    return CHANNELS + _added_channels(feature_set)


def prediction_engine(atoms: Atoms) -> str:
    """The DFT engine whose valence a prediction for `atoms` assumes: "qe" when elfkit has a QE
    pseudopotential for every element (as `elfkit dft` would label it), else "gpaw"."""
    for engine in ENGINE_KINDS:
        if all(engine_valence_electrons(int(z), engine) > 0 for z in set(atoms.numbers)):
            return engine
    missing = sorted({s for s, z in zip(atoms.get_chemical_symbols(), atoms.numbers) if engine_valence_electrons(int(z), "gpaw") == 0})
    raise ElfkitError(f"no valence density of any engine for {', '.join(missing)}")


def model_inputs(atoms: Atoms, grid_shape, feature_set: FeatureSet | str = FeatureSet.SAD, engine: str | None = None) -> np.ndarray:
    """The channels of `feature_set` (float32 (C, N1, N2, N3)) on the grid of the cell of `atoms`;
    `engine` ("qe" or "gpaw") names the labelling engine for the engine-valence channels
    (default: `prediction_engine`)."""
    base = physics_channels(atoms, grid_shape)
    if not reads_engine(feature_set):
        return base
    engine = engine or prediction_engine(atoms)
    out = np.empty((len(feature_channels(feature_set)), *base.shape[1:]), dtype=np.float32)
    out[: len(base)] = base
    del base
    rho, gradient, laplacian = density_derivatives(atoms, grid_shape, engine)
    _fill_density_channels(out, rho, gradient, laplacian, first=len(CHANNELS))
    del rho, gradient, laplacian
    real_space = _REAL_SPACE_CHANNELS.get(FeatureSet(feature_set), ())
    if real_space:
        points = Grid(atoms.cell.array, out.shape[1:]).cart_coords().reshape(-1, 3)
        added = out[-len(real_space):].reshape(len(real_space), -1)
        for start in range(0, len(points), _POINT_CHUNK):
            added[:, start : start + _POINT_CHUNK] = _real_space_channels(atoms, points[start : start + _POINT_CHUNK], feature_set, engine)
    return out


def _real_space_channels(atoms: Atoms, points: np.ndarray, feature_set: FeatureSet | str, engine: str, pairs=None) -> np.ndarray:
    """The channels of `_REAL_SPACE_CHANNELS[feature_set]` at Cartesian `points` (P, 3) in Å."""
    if FeatureSet(feature_set) == FeatureSet.SAD_ENGINE_PSEUDO_ATOMS:
        return pseudo_atom_channels(atoms, points, engine, pairs)
    return shell_field_channels(atoms, points, pairs)


_POINT_CHUNK = 32768
"""Grid points whose neighbours are found at once for the real-space channels (memory bound)."""


def features_of(config: dict) -> FeatureSet:
    """The feature set a grid model's config names (`sad` when it names none)."""
    return FeatureSet(config.get("features", FeatureSet.SAD.value))


_SPLINE_INNER_SPACING_ANGSTROM = 0.01
_SAD_TAIL_E_PER_BOHR3 = 1e-7
"""Atomic densities are summed out to the radius where they fall below this (e/bohr³)."""


def point_channels(atoms: Atoms, points: np.ndarray, kind: str = "total", pairs=None) -> np.ndarray:
    """The density channels (DENSITY_CHANNELS, float32 (4, P)) at Cartesian `points` (P, 3) in Å,
    from the SAD summed in real space (every atom and image within its tail radius): the
    same definitions as `physics_channels`, without the grid's band limit. `pairs`: the
    points' `elfkit.geometry.Neighbours` out to at least `sad_radius` (found when omitted)."""
    rho, gradient, laplacian = sad_at_points(atoms, points, kind, pairs)
    out = np.empty((len(DENSITY_CHANNELS), len(rho)), dtype=np.float32)
    _fill_density_channels(out, rho, gradient, laplacian)
    return out


def point_input_channels(feature_set: FeatureSet | str = FeatureSet.SAD) -> tuple[str, ...]:
    """Names of the density channels a point model of `feature_set` reads, in order."""
    return DENSITY_CHANNELS + _added_channels(feature_set)


def point_inputs(atoms: Atoms, points: np.ndarray, feature_set: FeatureSet | str = FeatureSet.SAD, engine: str | None = None,
                 pairs=None) -> np.ndarray:
    """The channels of `point_input_channels(feature_set)` (float32 (C, P)) at Cartesian `points`
    (P, 3) in Å: the SAD's, then (sad+engine-valence) those of the valence SAD of `engine`
    (default: `prediction_engine`). `pairs`: the points' neighbours out to at least
    `point_inputs_radius` (found when omitted)."""
    total = point_channels(atoms, points, pairs=pairs)
    if not reads_engine(feature_set):
        return total
    engine = engine or prediction_engine(atoms)
    if pairs is None:
        from elfkit.geometry import point_neighbours

        pairs = point_neighbours(atoms, points, point_inputs_radius(atoms, feature_set, engine))
    channels = [total, point_channels(atoms, points, engine, pairs)]
    if FeatureSet(feature_set) in _REAL_SPACE_CHANNELS:
        channels.append(_real_space_channels(atoms, points, feature_set, engine, pairs))
    return np.concatenate(channels)


def point_inputs_radius(atoms: Atoms, feature_set: FeatureSet | str = FeatureSet.SAD, engine: str | None = None) -> float:
    """Distance (Å) beyond which no atom adds to `point_inputs` (the largest tail radius of the
    densities it sums)."""
    if not reads_engine(feature_set):
        return sad_radius(atoms)
    engine = engine or prediction_engine(atoms)
    radius = max(sad_radius(atoms), sad_radius(atoms, engine))
    if FeatureSet(feature_set) == FeatureSet.SAD_ENGINE_PSEUDO_ATOMS:
        radius = max(radius, pseudo_atom_radius(atoms, engine))
    if FeatureSet(feature_set) == FeatureSet.SAD_ENGINE_SHELL_FIELD:
        radius = max(radius, SHELL_FIELD_RADIUS_ANGSTROM)
    return radius


def shell_field_channels(atoms: Atoms, points: np.ndarray, pairs=None) -> np.ndarray:
    """SHELL_FIELD_CHANNELS (float32 (len, P)) at Cartesian `points` (P, 3) in Å: channel (l, n) is

        sum_A c(d_A) g_l(d_A) sum_N G_n(R_AN / R1_A) c'(R_AN / R1_A) P_l(u_A . n_AN) / SHELL_FIELD_SCALE

    over the atoms A within SHELL_FIELD_RADIUS_ANGSTROM of the point (d_A away, u_A the unit vector
    from A to the point, c the cosine cutoff at that radius, g_l = 1 - exp(-(d / SHELL_FIELD_NEAR_ANGSTROM)²) for l > 0
    and 1 for l = 0) and A's neighbours N (periodic images included) at R_AN along n_AN, R1_A A's
    nearest-neighbour distance, G_n Gaussians at SHELL_FIELD_CENTRES, c' a cosine cutoff at
    SHELL_FIELD_REACH and P_l the Legendre polynomials: the l-th harmonic of A's neighbour shells
    evaluated along u_A. Invariant under rotations, translations, permutations and periodic images;
    zero at points no atom is near, and in a cell of one atom without neighbours. `pairs`: the
    points' neighbours out to at least SHELL_FIELD_RADIUS_ANGSTROM (found when omitted)."""
    from elfkit.geometry import point_neighbours

    points = np.asarray(points, dtype=float).reshape(-1, 3)
    pairs = point_neighbours(atoms, points, SHELL_FIELD_RADIUS_ANGSTROM) if pairs is None else pairs.within(SHELL_FIELD_RADIUS_ANGSTROM)
    directions, radial = _neighbour_shells(atoms)
    distance = np.linalg.norm(pairs.vector, axis=1)
    toward_point = -pairs.vector / np.maximum(distance, 1e-9)[:, None]
    legendre = _legendre(np.einsum("qmc,qc->qm", directions[pairs.atom], toward_point), SHELL_FIELD_L_MAX)
    field = np.einsum("qml,qmn->qln", legendre, radial[pairs.atom])
    weight = 0.5 * (np.cos(np.pi * distance / SHELL_FIELD_RADIUS_ANGSTROM) + 1)
    near_field = np.ones((len(distance), SHELL_FIELD_L_MAX + 1))
    near_field[:, 1:] = (1 - np.exp(-((distance / SHELL_FIELD_NEAR_ANGSTROM) ** 2)))[:, None]
    terms = (field * (weight[:, None] * near_field)[:, :, None]).reshape(len(distance), len(SHELL_FIELD_CHANNELS)) / SHELL_FIELD_SCALE
    out = np.stack([np.bincount(pairs.point, terms[:, c], len(points)) for c in range(terms.shape[1])])
    return out.astype(np.float32)


def _neighbour_shells(atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """Per atom, the unit vectors (N, M, 3) to its neighbours within SHELL_FIELD_REACH of its
    nearest-neighbour distance and their radial weights (N, M, len(SHELL_FIELD_CENTRES)), zero-padded
    to the largest count M (`shell_field_channels`). Found once per structure (`_shells_of`): a
    prediction asks for the field of the same structure one batch of points at a time."""
    as_bytes = [np.asarray(a, dtype=t).tobytes() for a, t in ((atoms.numbers, np.int64), (atoms.positions, float), (atoms.cell.array, float), (atoms.pbc, bool))]
    return _shells_of(*as_bytes)


@lru_cache(maxsize=8)
def _shells_of(numbers: bytes, positions: bytes, cell: bytes, pbc: bytes) -> tuple[np.ndarray, np.ndarray]:
    """`_neighbour_shells` of the structure these bytes hold (read-only arrays)."""
    from ase.neighborlist import neighbor_list

    atoms = Atoms(np.frombuffer(numbers, dtype=np.int64), positions=np.frombuffer(positions).reshape(-1, 3),
                  cell=np.frombuffer(cell).reshape(3, 3), pbc=np.frombuffer(pbc, dtype=bool))
    nearest = _nearest_neighbour_distances(atoms)
    finite = np.isfinite(nearest)
    search = SHELL_FIELD_REACH * float(nearest[finite].max(initial=0.0))
    first, vector = neighbor_list("iD", atoms, search) if finite.any() else (np.zeros(0, dtype=int), np.zeros((0, 3)))
    length = np.linalg.norm(vector, axis=1)
    relative = length / nearest[first]
    keep = np.isfinite(nearest[first]) & (relative < SHELL_FIELD_REACH)
    order = np.argsort(first[keep], kind="stable")
    first, vector, length, relative = (a[keep][order] for a in (first, vector, length, relative))
    counts = np.bincount(first, minlength=len(atoms))
    slot = np.arange(len(first)) - np.repeat(np.cumsum(counts) - counts, counts)
    width = int(counts.max(initial=1))
    directions = np.zeros((len(atoms), width, 3))
    radial = np.zeros((len(atoms), width, len(SHELL_FIELD_CENTRES)))
    directions[first, slot] = vector / length[:, None]
    cutoff = 0.5 * (np.cos(np.pi * relative / SHELL_FIELD_REACH) + 1)
    radial[first, slot] = np.exp(-(((relative[:, None] - np.asarray(SHELL_FIELD_CENTRES)) / SHELL_FIELD_WIDTH) ** 2)) * cutoff[:, None]
    directions.flags.writeable = radial.flags.writeable = False
    return directions, radial


_NEAREST_SEARCH_ANGSTROM = 8.0
"""How far `_nearest_neighbour_distances` looks; an atom with no neighbour closer has no shell field."""


def _nearest_neighbour_distances(atoms: Atoms) -> np.ndarray:
    """Each atom's distance (N,) in Å to its nearest other atom or periodic image (inf when none
    lies within _NEAREST_SEARCH_ANGSTROM)."""
    from ase.neighborlist import neighbor_list

    first, length = neighbor_list("id", atoms, _NEAREST_SEARCH_ANGSTROM)
    nearest = np.full(len(atoms), np.inf)
    np.minimum.at(nearest, first, length)
    return nearest


def _legendre(x: np.ndarray, l_max: int) -> np.ndarray:
    """Legendre polynomials P_0..P_l_max of `x` (...), stacked on a new last axis."""
    values = [np.ones_like(x), x]
    for l in range(1, l_max):
        values.append(((2 * l + 1) * x * values[l] - l * values[l - 1]) / (l + 1))
    return np.stack(values[: l_max + 1], axis=-1)


def pseudo_atom_channels(atoms: Atoms, points: np.ndarray, engine: str, pairs=None) -> np.ndarray:
    """PSEUDO_ATOM_CHANNELS (float32 (2, P)) at Cartesian `points` (P, 3) in Å: the ELF of the
    superposed pseudo-atoms of `engine` and their log density (as channel 0). `pairs`: the
    points' neighbours out to at least `pseudo_atom_radius` (found when omitted)."""
    rho, gradient, tau = pseudo_atoms_at_points(atoms, points, engine, pairs)
    out = np.empty((len(PSEUDO_ATOM_CHANNELS), len(rho)), dtype=np.float32)
    out[0] = elf_from_density(rho, gradient, tau)
    out[1] = (np.log(np.clip(rho, RHO_MIN_AU, None)) + 3.0) / 3.0
    return out


def pseudo_atoms_at_points(atoms: Atoms, points: np.ndarray, engine: str, pairs=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Density (e/bohr³), its gradient (3, P; e/bohr⁴) and kinetic energy density (hartree/bohr³)
    of the superposed neutral pseudo-atoms of `engine` (`elfkit.sad.pseudo_atom`) at Cartesian
    `points` (P, 3) in Å, summed over atoms and periodic images in real space."""
    from elfkit.geometry import point_neighbours

    points = np.asarray(points, dtype=float).reshape(-1, 3)
    if pairs is None:
        pairs = point_neighbours(atoms, points, pseudo_atom_radius(atoms, engine))
    value, slope, kinetic = _pair_table_values(atoms.numbers, pairs, lambda z: _pseudo_atom_table(z, engine)[:2])
    toward = _toward_atoms(pairs)
    count = len(points)
    rho = np.bincount(pairs.point, value, count)
    gradient = np.stack([np.bincount(pairs.point, -slope * toward[:, a], count) for a in range(3)])
    tau = np.bincount(pairs.point, kinetic, count)
    return rho * BOHR_IN_ANGSTROM**3, gradient * BOHR_IN_ANGSTROM**4, tau * BOHR_IN_ANGSTROM**3


def pseudo_atom_radius(atoms: Atoms, engine: str) -> float:
    """Distance (Å) beyond which no pseudo-atom of `engine` adds to `pseudo_atoms_at_points`."""
    return max(_pseudo_atom_table(int(z), engine)[2] for z in set(atoms.numbers))


@lru_cache(maxsize=128)
def _pseudo_atom_table(z: int, engine: str) -> tuple[np.ndarray, float, float]:
    """rho, rho' and tau (e/Å³, e/Å⁴, hartree/Å³) of the pseudo-atom on a uniform grid of radii
    (T, 3) from 0 to its tail radius, the step and the tail radius (Å), as `_radial_table`."""
    r, rho, tau = pseudo_atom(z, engine)
    tail = _tail_radius(r, rho)
    radii = np.arange(0.0, tail + 2 * _TABLE_STEP_ANGSTROM, _TABLE_STEP_ANGSTROM)
    density, kinetic = _even_spline(r, rho), _even_spline(r, tau)
    return np.stack([density(radii), density(radii, 1), kinetic(radii)], axis=1), _TABLE_STEP_ANGSTROM, tail


def sad_radius(atoms: Atoms, kind: str = "total") -> float:
    """Distance (Å) beyond which no atom of `atoms` adds to the SAD (its density < 1e-7 e/bohr³)."""
    return max(_radial_spline(int(z), kind)[1] for z in set(atoms.numbers))


def sad_at_points(atoms: Atoms, points: np.ndarray, kind: str = "total", pairs=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SAD rho (e/bohr³), gradient (3, P; e/bohr⁴) and Laplacian (e/bohr⁵) at Cartesian
    `points` (P, 3) in Å, summed over atoms and periodic images in real space (`pairs` as in
    `point_channels`)."""
    from elfkit.geometry import point_neighbours

    points = np.asarray(points, dtype=float).reshape(-1, 3)
    numbers = atoms.numbers
    if pairs is None:
        pairs = point_neighbours(atoms, points, sad_radius(atoms, kind))
    distance = pairs.distance
    value, slope, curvature = _pair_table_values(numbers, pairs, lambda z: _radial_table(z, kind))
    near = distance < _ON_NUCLEUS_ANGSTROM
    toward = _toward_atoms(pairs)
    radial_over_r = np.divide(slope, distance, out=curvature.copy(), where=~near)
    count = len(points)
    rho = np.bincount(pairs.point, value, count)
    gradient = np.stack([np.bincount(pairs.point, -slope * toward[:, a], count) for a in range(3)])
    laplacian = np.bincount(pairs.point, curvature + 2 * radial_over_r, count)
    return rho * BOHR_IN_ANGSTROM**3, gradient * BOHR_IN_ANGSTROM**4, laplacian * BOHR_IN_ANGSTROM**5


_TABLE_STEP_ANGSTROM = 5e-4
_ON_NUCLEUS_ANGSTROM = 1e-6
"""A point closer than this to an atom sits on its nucleus (no direction towards it)."""


def _pair_table_values(numbers: np.ndarray, pairs, table_of) -> np.ndarray:
    """The columns (C, pairs) of every (point, atom) pair's radial table, linearly interpolated at
    its distance (zero beyond the table); `table_of(z)` gives the (T, C) table of element z and its
    step (Å), as `_radial_table`."""
    distance = pairs.distance
    values = None
    for z in set(numbers):
        table, step = table_of(int(z))
        values = np.zeros((len(distance), table.shape[1])) if values is None else values
        chosen = np.nonzero((numbers[pairs.atom] == z) & (distance < (len(table) - 1) * step))[0]
        position = distance[chosen] / step
        index = position.astype(np.int64)
        weight = (position - index)[:, None]
        values[chosen] = (1 - weight) * table[index] + weight * table[index + 1]
    return values.T


def _toward_atoms(pairs) -> np.ndarray:
    """Unit vectors (pairs, 3) of the pairs' `vector` (zero for a point on the nucleus)."""
    away = pairs.distance[:, None] >= _ON_NUCLEUS_ANGSTROM
    return np.divide(pairs.vector, pairs.distance[:, None], out=np.zeros_like(pairs.vector), where=away)


@lru_cache(maxsize=128)
def _radial_table(z: int, kind: str) -> tuple[np.ndarray, float]:
    """n(r), n'(r) and n''(r) (e/Å³, e/Å⁴, e/Å⁵) of the free atom on a uniform grid of radii
    (T, 3) from 0 to its tail radius, and the step (Å), for linear interpolation: a relative
    error of about 1e-6 (the spline's own curvature over a 0.0005 Å step)."""
    spline, tail = _radial_spline(z, kind)
    radii = np.arange(0.0, tail + 2 * _TABLE_STEP_ANGSTROM, _TABLE_STEP_ANGSTROM)
    return np.stack([spline(radii, nu) for nu in range(3)], axis=1), _TABLE_STEP_ANGSTROM


@lru_cache(maxsize=128)
def _radial_spline(z: int, kind: str):
    """Cubic spline of the free-atom density n(r) (e/Å³, r in Å) and its tail radius (Å); fitted
    to the even extension n(-r) = n(r), so it is smooth through the nucleus (n'(0) = 0), on the
    table's radii beyond 0.01 Å (closer in, the float32 table's rounding would dominate n'')."""
    from elfkit.sad import atomic_density

    r, n = atomic_density(z, kind)
    return _even_spline(r, n), _tail_radius(r, n)


def _tail_radius(r: np.ndarray, density: np.ndarray) -> float:
    """The first table radius (Å) beyond which a free-atom density (e/Å³) stays below _SAD_TAIL_E_PER_BOHR3."""
    above = np.nonzero(density * BOHR_IN_ANGSTROM**3 > _SAD_TAIL_E_PER_BOHR3)[0]
    return float(r[above[-1] + 1])


def _even_spline(r: np.ndarray, values: np.ndarray):
    """Cubic spline of a radial function on the table's radii (first r = 0) fitted to its even
    extension, so it is smooth through the nucleus; radii below 0.01 Å other than 0 are left
    out (there the float32 table's rounding would dominate the second derivative)."""
    from scipy.interpolate import CubicSpline

    coarse = (r == 0) | (r >= _SPLINE_INNER_SPACING_ANGSTROM)
    r, values = r[coarse], values[coarse]
    return CubicSpline(np.concatenate([-r[:0:-1], r]), np.concatenate([values[:0:-1], values]))


def grid_metric(cell: np.ndarray, grid_shape) -> np.ndarray:
    """The six metric values h_a . h_b / h0² - delta_ab of METRIC_PAIRS (dimensionless) for
    voxel steps h_a = cell[a] / N_a (Å); all zero for a cubic grid of spacing h0."""
    steps = np.asarray(cell, dtype=float) / np.asarray(grid_shape, dtype=float)[:, None]
    gram = steps @ steps.T / REFERENCE_SPACING_ANGSTROM**2 - np.eye(3)
    return np.array([gram[a, b] for a, b in METRIC_PAIRS])
