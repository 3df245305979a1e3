"""ELF prediction from geometry: `predict(atoms, grid_shape, model) -> Field`.

The one path every command uses (`elfkit predict`, `evaluate`, `screen --model`):

1. the features (`elfkit.features`) on the model's grid: the user's grid when its spacing along
   every axis lies in the range of the model's training grids, else a grid of that range's
   middle spacing on the same cell, from which the logits are interpolated back (periodic
   cubic B-spline on the logit, so the ELF stays in (0, 1));
   A skewed cell (an angle more than about 6 degrees from 90) runs as the most nearly
   orthogonal supercell of its primitive cell instead (the same for the cell and any of its
   supercells), and the logits are interpolated at the user's grid points, averaged over the
   primitive translations that are not translations of that supercell (so the result has the
   crystal's periodicity): the network trained on cubic voxels;
2. the network on the whole periodic cell when its activations fit the memory budget
   (`INFERENCE_MEMORY_BYTES`), else level by level in overlapping periodic blocks, each
   with a halo of its level's reach (`PeriodicUNet.block_logits`: the same result, every
   convolution sees the same inputs);
3. the average over the crystal's space group operations that map the grid onto itself
   (Seitz operators, `elfkit.symmetry`), so the prediction has the crystal's symmetry by
   construction.
Units: Å for cells and positions, ELF dimensionless.
"""

from __future__ import annotations

import math
import sys
import types
from enum import Enum
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from elfkit.errors import ElfkitError
from elfkit.features import features_of, model_inputs
from elfkit.field import Field
from elfkit.grid import DEFAULT_SPACING_ANGSTROM, Grid, check_grid_shape
from elfkit.models.checkpoint import LoadedModel, load_model

DEFAULT_MODEL = "hydrogen"
METALS_MODEL = "metals"
NONMETALS = frozenset("H He B C N O F Ne Si P S Cl Ar Ge As Se Br Kr Sb Te I Xe Po At Rn".split())
"""Elements that are not metals (metalloids included), as pymatgen's `Element.is_metal` has them."""
MODEL_SPACING_ANGSTROM = (0.104, 0.114)
"""Grid spacings (Å) a model predicts on directly when its metadata does not name its own
(`domain.grid_spacing_angstrom`, the training grids' range, widened by SPACING_TOLERANCE).
A convolution sees voxels, not Å: measured on the fluid, running a model on a grid 15 % finer
or coarser than its training grids changes its prediction by 0.03 on average, while the
spline interpolation from a grid in its range changes it far less."""
SPACING_TOLERANCE = 0.01
INFERENCE_MEMORY_BYTES = 2.5 * 2**30
"""Memory the network's activations may take (at most half of what is available)."""
_ACTIVATION_BYTES = 4 * 8
"""float32 activations, about 8 grids of `width` channels alive at once (skips included)."""
BLOCK_POINTS = 2**21
"""Points per block (halo included) when a large cell runs level by level
(`PeriodicUNet.block_logits`): about 0.5 GB of temporaries for a width of 16 in bfloat16."""


@lru_cache(maxsize=4)
def _cached_model(path: str, modified: float) -> LoadedModel:
    return load_model(path)


def choose_model(atoms: Atoms) -> str:
    """The shipped model for `atoms` when none is named: `metals` for a structure of metals
    only, else `hydrogen` (its domain warnings name any element it never saw)."""
    symbols = set(atoms.get_chemical_symbols())
    if not symbols or symbols & NONMETALS:
        return DEFAULT_MODEL
    return METALS_MODEL


def get_model(model: str | Path | LoadedModel = DEFAULT_MODEL) -> LoadedModel:
    """A loaded model: a shipped name, a model file, names or files joined by "+" (their
    ensemble, `elfkit.models.ensemble`), or an already loaded model (cached)."""
    if isinstance(model, LoadedModel):
        return model
    from elfkit.models.checkpoint import resolve
    from elfkit.models.ensemble import SEPARATOR, ensemble, is_ensemble_name

    if is_ensemble_name(model):
        return ensemble([get_model(member) for member in model.split(SEPARATOR)])

    path = resolve(model)
    return _cached_model(str(path), path.stat().st_mtime)


def model_spacing_range(metadata: dict) -> tuple[float, float]:
    """Grid spacings (Å) a model runs on directly: its training grids' range, widened by 1 %."""
    low, high = metadata.get("domain", {}).get("grid_spacing_angstrom", MODEL_SPACING_ANGSTROM)
    return low * (1 - SPACING_TOLERANCE), high * (1 + SPACING_TOLERANCE)


def model_grid_shape(cell: np.ndarray, grid_shape, spacing_range=MODEL_SPACING_ANGSTROM) -> tuple[int, int, int]:
    """The grid the network runs on for a requested grid: the requested one when its spacing
    along every axis lies in `spacing_range` (Å), else the grid of the range's middle spacing."""
    spacing = Grid(cell, grid_shape).spacing
    low, high = spacing_range
    if np.all((spacing >= low) & (spacing <= high)):
        return tuple(grid_shape)
    return middle_spacing_grid(cell, spacing_range)


def middle_spacing_grid(cell: np.ndarray, spacing_range) -> tuple[int, int, int]:
    """The grid of `cell` whose spacing along each axis is closest to the middle of `spacing_range` (Å)."""
    middle = 0.5 * sum(spacing_range)
    return tuple(max(1, round(length / middle)) for length in np.linalg.norm(cell, axis=1))


def inference_budget_bytes() -> float:
    """Memory (bytes) the network's activations may take: INFERENCE_MEMORY_BYTES, at most half of what is available."""
    from elfkit.memory import available_memory_bytes

    return min(INFERENCE_MEMORY_BYTES, 0.5 * available_memory_bytes())


class InferencePlan(str, Enum):
    """How the network runs on a grid (`inference_plan`)."""

    WHOLE_CELL = "whole cell"
    BLOCKS = "blocks, float32"
    BLOCKS_BF16 = "blocks, bfloat16"


_CHANNEL_BYTES_PER_POINT = 10 * 4
"""The float32 input channels, alive through the whole prediction."""
_FEATURE_TEMPORARY_BYTES_PER_POINT = 10 * 8
"""The float64 grids alive while the channels are computed (before the network runs)."""
_FIXED_BYTES = 600 * 2**20
"""PyTorch, the model and the block temporaries."""
_OUTPUT_BYTES_PER_POINT = 64
"""Per point of the requested grid: its coordinates, the interpolated logits and the ELF."""


def inference_plan(net: torch.nn.Module, points: int, whole_cell_points: int | None = None) -> tuple[InferencePlan, int]:
    """How the network runs on a grid of `points` points and the peak bytes the prediction takes:
    the whole cell when its activations fit the budget (or `points` <= `whole_cell_points` when
    given), else level by level in blocks, in float32 when the stored levels fit the budget,
    else in bfloat16."""
    width, levels, budget = net.config["width"], len(net.dilations) + 1, inference_budget_bytes()
    whole = _ACTIVATION_BYTES * width * points
    stored = levels * width * points * 4
    if points <= (budget / (_ACTIVATION_BYTES * width) if whole_cell_points is None else whole_cell_points):
        plan, network = InferencePlan.WHOLE_CELL, whole
    elif stored <= budget:
        plan, network = InferencePlan.BLOCKS, stored
    else:
        plan, network = InferencePlan.BLOCKS_BF16, stored // 2
    peak = _CHANNEL_BYTES_PER_POINT * points + max(_FEATURE_TEMPORARY_BYTES_PER_POINT * points, network) + _FIXED_BYTES
    return plan, int(peak)


def network_logits(
    net: torch.nn.Module, features: np.ndarray, whole_cell_points: int | None = None, block_points: int = BLOCK_POINTS
) -> np.ndarray:
    """ELF logits (N1, N2, N3) of the network on periodic features (C, N1, N2, N3) by its
    `inference_plan`: the whole cell at once, or level by level in blocks of `block_points`
    points (the same result within 1e-6), or with the activations between levels stored as
    bfloat16 (half the memory; the ELF changes by about 5e-4 on average, at most 0.02, with the
    same accuracy against DFT), convolved in bfloat16 as the network trained where the CPU has
    it natively (2-3x faster), else in float32 (`PeriodicUNet.block_logits`). In blocks the
    features are dropped after the first level, so a caller that passes them without keeping a
    reference (as `predict` does) gets their memory back for the rest (0.65 GB at 10,000 atoms)."""
    plan, _ = inference_plan(net, math.prod(features.shape[1:]), whole_cell_points)
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        del features
        if plan == InferencePlan.WHOLE_CELL:
            return net(x[None], periodic=True)[0].numpy()
        bf16 = plan == InferencePlan.BLOCKS_BF16
        first, ge = net.first_block_level(x, block_points, bf16)
        del x
        return net.block_logits_after_first(first, ge, block_points, bf16).numpy()


ORTHOGONALITY_TOLERANCE = 0.1
"""Largest |cos| of a cell angle (about 6 degrees from 90) the network runs on as it is."""
SUPERCELL_SIZES = (1, 2, 3, 4, 6, 8)
SUPERCELL_MAX_ATOMS = 2000


def _skewness(cell: np.ndarray) -> float:
    """Largest |cos| of the three angles between the cell vectors (0 for an orthogonal cell)."""
    unit = cell / np.linalg.norm(cell, axis=1)[:, None]
    gram = unit @ unit.T
    return float(np.abs(gram[np.triu_indices(3, 1)]).max())


def prediction_cell(atoms: Atoms) -> tuple[Atoms, np.ndarray]:
    """The cell the network runs on and the translations (Å, (s, 3)) of the crystal's lattice
    that are not translations of it, one per coset (just the zero vector when the network runs
    on the structure's own cell). That cell is the structure's own when its axes are within
    about 6 degrees of orthogonal, else the most nearly orthogonal supercell of up to 8 of its
    primitive cells (`ase.build.find_optimal_cell_shape`, `elfkit.symmetry.primitive_atoms`),
    its axes along the input's: a skewed cell and its supercells run as the same cell. Measured
    on the hydrogen crystals (which the fluid-trained model never saw), a skewed cell's voxels
    cost R² 0.90-0.97 that a near-cubic supercell of the same crystal gets back (0.98-0.997)."""
    import warnings

    from ase.build import find_optimal_cell_shape, make_supercell

    from elfkit.symmetry import primitive_atoms

    if _skewness(atoms.cell.array) <= ORTHOGONALITY_TOLERANCE:
        return atoms, np.zeros((1, 3))
    primitive = primitive_atoms(atoms)
    best = primitive
    for size in SUPERCELL_SIZES:
        if _skewness(best.cell.array) <= ORTHOGONALITY_TOLERANCE or size * len(primitive) > SUPERCELL_MAX_ATOMS:
            break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            candidate = make_supercell(primitive, find_optimal_cell_shape(primitive.cell.array, size, "sc"))
        if _skewness(candidate.cell.array) < _skewness(best.cell.array) - 1e-6:
            best = candidate
    return _aligned(best, atoms.cell.array), lattice_cosets(primitive.cell.array, best.cell.array)


def lattice_cosets(lattice: np.ndarray, superlattice: np.ndarray) -> np.ndarray:
    """One Cartesian vector (Å) of `lattice` per coset of its sublattice `superlattice` (the
    fractional coordinates are reduced mod 1 before rounding: 1.333333 % 1 is not 0.333333)."""
    size = round(abs(np.linalg.det(superlattice) / np.linalg.det(lattice)))
    steps = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    frac = np.round(np.mod(steps @ lattice @ np.linalg.inv(superlattice), 1.0), 6) % 1.0
    _, first = np.unique(frac, axis=0, return_index=True)
    return (steps[np.sort(first)] @ lattice).astype(float)


def _aligned(atoms: Atoms, reference_cell: np.ndarray) -> Atoms:
    """`atoms` with its cell vectors permuted and signed (same lattice, right-handed) to point
    as nearly as possible along the axes of `reference_cell`."""
    from itertools import permutations, product

    cell = atoms.cell.array
    unit = cell / np.linalg.norm(cell, axis=1)[:, None]
    reference = reference_cell / np.linalg.norm(reference_cell, axis=1)[:, None]
    choices = []
    for order in permutations(range(3)):
        for signs in product((1, -1), repeat=3):
            basis = np.array(signs)[:, None] * cell[list(order)]
            if np.linalg.det(basis) > 0:
                alignment = sum(np.dot(np.array(signs)[k] * unit[order[k]], reference[k]) for k in range(3))
                choices.append((-round(alignment, 9), order, signs, basis))
    basis = min(choices, key=lambda c: c[:3])[3]
    aligned = Atoms(atoms.numbers, positions=atoms.positions, cell=basis, pbc=True)
    aligned.wrap()
    return aligned


def interpolate_at_points(values: np.ndarray, cell: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Values of a periodic grid field on `cell` (Å) at Cartesian `points` (..., 3) in Å
    (periodic cubic B-spline)."""
    from scipy.ndimage import map_coordinates

    frac = points.reshape(-1, 3) @ np.linalg.inv(cell)
    coords = np.mod(frac * np.array(values.shape), np.array(values.shape)).T
    return map_coordinates(values, coords, order=3, mode="grid-wrap").reshape(points.shape[:-1]).astype(np.float32)


def resample_periodic(values: np.ndarray, shape) -> np.ndarray:
    """A periodic grid field resampled onto another grid `shape` of the same cell: its periodic
    cubic B-spline (the one `interpolate_at_points` evaluates) at the new grid's points, one
    axis at a time (float32). Grid point i of N lies at fraction i/N on both grids."""
    from scipy.ndimage import spline_filter

    coefficients = spline_filter(values.astype(np.float64), order=3, mode="grid-wrap")
    for axis, n_new in enumerate(shape):
        matrix = _cubic_bspline_matrix(coefficients.shape[axis], n_new)
        moved = np.moveaxis(coefficients, axis, 0)
        coefficients = np.moveaxis((matrix @ moved.reshape(moved.shape[0], -1)).reshape(n_new, *moved.shape[1:]), 0, axis)
    return coefficients.astype(np.float32)


def _cubic_bspline_matrix(n_old: int, n_new: int):
    """Sparse (n_new, n_old) matrix of periodic cubic B-spline weights: row i evaluates the
    spline of n_old coefficients at fraction i/n_new."""
    from scipy.sparse import csr_matrix

    x = np.arange(n_new) * n_old / n_new
    base = np.floor(x).astype(int)
    t = x - base
    weights = np.stack([(1 - t) ** 3, 3 * t**3 - 6 * t**2 + 4, -3 * t**3 + 3 * t**2 + 3 * t + 1, t**3]) / 6
    columns = np.mod(base[None, :] + np.arange(-1, 3)[:, None], n_old)
    rows = np.broadcast_to(np.arange(n_new), columns.shape)
    return csr_matrix((weights.ravel(), (rows.ravel(), columns.ravel())), shape=(n_new, n_old))


def symmetry_pool(values: np.ndarray, atoms: Atoms) -> np.ndarray:
    """Average over the crystal's space-group operations that map the grid onto itself
    (`elfkit.symmetry.crystal_grid_maps`: the same set for a cell and its supercells)."""
    from elfkit.symmetry import symmetrize_crystal

    return symmetrize_crystal(values, atoms).astype(np.float32)


def predict(
    atoms: Atoms,
    grid_shape=None,
    model: str | Path | LoadedModel | None = None,
    symmetrize: bool = True,
    whole_cell_points: int | None = None,
    source: str = "structure",
) -> Field:
    """Predicted ELF (dimensionless) of `atoms` (positions and cell in Å) on `grid_shape`
    (default: spacing <= 0.12 Å) by `model` (default: `choose_model`), as a Field with the
    model's name in its metadata. A GridError naming `source` before any work when the
    prediction would not fit in memory."""
    from elfkit.io import validate_structure

    from elfkit.memory import check_memory

    validate_structure(atoms, source)
    loaded = get_model(model or choose_model(atoms))
    cell = atoms.cell.array
    shape = check_grid_shape(grid_shape) if grid_shape is not None else Grid.for_spacing(cell, DEFAULT_SPACING_ANGSTROM).shape
    output_bytes = _OUTPUT_BYTES_PER_POINT * math.prod(shape)
    if is_ensemble(loaded):
        from elfkit.models.ensemble import mean_field

        fields = [predict(atoms, shape, member, symmetrize, whole_cell_points, source) for member in loaded.members]
        return mean_field(fields, {"model": loaded.name, "model_sha256": loaded.sha256})
    if is_point_model(loaded):
        check_memory("prediction", shape, source, needed=output_bytes + _FIXED_BYTES)
        logits = loaded.net.logits_at(atoms, Grid(cell, shape).cart_coords()).reshape(shape)
        metadata = {"model": loaded.name, "model_sha256": loaded.sha256}
        return Field(atoms.copy(), _sigmoid(logits).astype(np.float32), "elf", metadata=metadata)
    spacing_range = model_spacing_range(loaded.metadata)
    network_cell, cosets = prediction_cell(atoms)
    if network_cell is atoms:
        internal = model_grid_shape(cell, shape, spacing_range)
    else:
        internal = middle_spacing_grid(network_cell.cell.array, spacing_range)
    needed = inference_plan(loaded.net, math.prod(internal), whole_cell_points)[1] + output_bytes
    check_memory("prediction", shape, source, needed=needed)
    logits = network_logits(loaded.net, model_inputs(network_cell, internal, features_of(loaded.net.config)), whole_cell_points)
    if network_cell is atoms and internal != shape:
        logits = resample_periodic(logits, shape)
    elif network_cell is not atoms:
        points = Grid(cell, shape).cart_coords()
        logits = np.mean([interpolate_at_points(logits, network_cell.cell.array, points + t) for t in cosets], axis=0)
    elf = _sigmoid(logits)
    if symmetrize:
        elf = symmetry_pool(elf, atoms)
    metadata = {"model": loaded.name, "model_sha256": loaded.sha256, "model_grid": list(internal), "model_cell": network_cell.cell.array.tolist()}
    return Field(atoms.copy(), elf.astype(np.float32), "elf", metadata=metadata)


def predict_points(atoms: Atoms, positions: np.ndarray, model: str | Path | LoadedModel | None = None) -> np.ndarray:
    """Predicted ELF (dimensionless, float64 (P,)) at Cartesian `positions` (P, 3) in Å anywhere
    in space by `model` (default: `choose_model`): evaluated at the points themselves by a
    point model, else interpolated (periodic cubic spline of the logit) from the grid model's
    prediction on its default grid."""
    from elfkit.io import validate_structure

    validate_structure(atoms, "structure")
    loaded = get_model(model or choose_model(atoms))
    positions = np.asarray(positions, dtype=float).reshape(-1, 3)
    if is_ensemble(loaded):
        return np.mean([predict_points(atoms, positions, member) for member in loaded.members], axis=0)
    if is_point_model(loaded):
        return _sigmoid(loaded.net.logits_at(atoms, positions))
    elf = np.clip(predict(atoms, None, loaded).values.astype(np.float64), 1e-7, 1 - 1e-7)
    logits = np.log(elf / (1 - elf)).astype(np.float32)
    return _sigmoid(interpolate_at_points(logits, atoms.cell.array, positions))


def is_ensemble(loaded: LoadedModel) -> bool:
    """Whether the model is the mean of several (`elfkit.models.ensemble`)."""
    from elfkit.models.ensemble import Ensemble

    return isinstance(loaded.net, Ensemble)


def is_point_model(loaded: LoadedModel) -> bool:
    """Whether the model predicts at points from the atoms around them (else on grids)."""
    from elfkit.models.point import PointELF

    return isinstance(loaded.net, PointELF)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def check_elements(atoms: Atoms, model: str | Path | LoadedModel = DEFAULT_MODEL, label: str = "structure") -> None:
    """ElfkitError naming `label` when `model` gives every element its own weights (one-hot
    species) and `atoms` holds an element it has none for: such a model cannot predict it."""
    loaded = get_model(model)
    species = _species(loaded)
    unknown = sorted(set(atoms.get_chemical_symbols()) - set(species))
    if species and unknown:
        hint = "; for a hydride, screen its metal sublattice (elfkit screen --strip H)" if "H" in unknown else ""
        raise ElfkitError(f"{label}: model {loaded.name} has no weights for {', '.join(unknown)} "
                          f"(it knows {', '.join(sorted(species))}){hint}")


def _species(loaded: LoadedModel) -> list[str]:
    """The elements a model has its own weights for (one-hot species); empty when it has none."""
    return list(getattr(loaded.net, "species", None) or [])


def domain_warnings(atoms: Atoms, model: str | Path | LoadedModel = DEFAULT_MODEL) -> list[str]:
    """Plain-language reasons why `atoms` lies outside the model's training domain (may be empty):
    elements it never saw (unless the model refuses them, `check_elements`), a valence density
    rs (bohr) outside the trained range."""
    from elfkit.structure_info import wigner_seitz_radius
    from elfkit.sad import electron_count

    loaded = get_model(model)
    domain = loaded.metadata.get("domain", {})
    warnings = []
    unseen = sorted(set(atoms.get_chemical_symbols()) - set(domain.get("elements", [])))
    if domain.get("elements") and unseen and not _species(loaded):
        warnings.append(f"elements {', '.join(unseen)} are outside the training set ({', '.join(domain['elements'])})")
    if domain.get("rs_bohr"):
        rs = wigner_seitz_radius(atoms.get_volume(), electron_count(atoms, "valence"))
        low, high = domain["rs_bohr"]
        if not low - 0.05 <= rs <= high + 0.05:
            warnings.append(f"density rs = {rs:.2f} bohr is outside the trained range {low:g}-{high:g} bohr")
    return warnings


class _CallableModule(types.ModuleType):
    """This module, callable as `predict`: `elfkit.predict(atoms, ...)` is `elfkit.predict.predict(atoms, ...)`."""

    def __call__(self, *args, **kwargs) -> Field:
        return predict(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
