"""Training of the point model (`elfkit.models.point`): pools of probe points per grid, batches
across grids, validation on uniform points.

The point model's inputs at a point (`neighbour_basis` and the SAD's density channels) do not
depend on its weights, so each training grid gets a fixed pool of probe points whose inputs
are computed once (`points.pool_points` per grid, see `PointSampling`) and kept in the run
folder (pools.pt), so a resumed run does not compute them again. The model is exactly
invariant under rotations and translations, so no augmentation is needed. With the GRAD loss
the pools hold pairs of nearby points (`paired_pool_indices`), whose ELF differences the loss
compares (seed 004's GRAD for scattered points; a point config without `losses.grad: false`
gets it, as the default of `LossWeights`). With `points.critical` the pools also hold each DFT
maximum and the saddle it pairs with (`maximum_saddle_pairs`), whose ELF difference (the
maximum's persistence) the PERS loss compares, and the two face neighbours of each DFT maximum
and saddle along each axis (`critical_slope_pairs`), whose difference the SLOPE loss compares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from elfkit.models.point import NearPairs
from elfkit.train.losses import CRITICAL_PERSISTENCE, pair_grad_loss
from elfkit.train.loop import Batch, Trainer, validation_record

POOLS_FILE = "pools.pt"
POOLS_FORMAT = 3
"""Layout of pools.pt; a file of another layout is made again."""


@dataclass
class PointPool:
    """Probe points of one grid: the model's inputs there and the DFT ELF (dimensionless). The
    basis is kept only for the atom-weight columns that are not zero for this grid's atoms
    (`columns`, `elfkit.models.point.present_weights`: with one-hot species, those of its own
    elements), as (P, radial len(columns), (l_max + 1)²), which the network reads as it is
    (`PointELF.forward` with `columns`). `near`: the points' `NearPairs` for a model with a
    learned atom environment, else None. `pairs`: (K, 2) rows of the pool's DFT maxima and the
    saddles they pair with (`maximum_saddle_pairs`), in pools with critical points, else None.
    `slopes`: (K, 2) rows of the two neighbours of a DFT critical point along a grid axis
    (`critical_slope_pairs`), in pools with critical points, else None."""

    basis: torch.Tensor
    columns: torch.Tensor
    density: torch.Tensor
    elf: torch.Tensor
    stratum: str
    near: NearPairs | None = None
    pairs: torch.Tensor | None = None
    slopes: torch.Tensor | None = None


def pool_indices(elf: np.ndarray, count: int, weighted_fraction: float, rng: np.random.Generator,
                 required: np.ndarray | None = None) -> np.ndarray:
    """Flat grid indices of a pool: `count` points, the `required` ones first, then
    `weighted_fraction` of the count drawn with probability proportional to ELF², the rest
    uniformly (all distinct)."""
    flat = np.asarray(elf, dtype=float).ravel()
    count = min(count, flat.size)
    required = np.unique(required)[:count] if required is not None else np.empty(0, int)
    weighted = min(int(round(weighted_fraction * count)), count - len(required))
    weights = flat**2
    weights[required] = 0.0
    chosen = rng.choice(flat.size, weighted, replace=False, p=weights / weights.sum()) if weighted else np.empty(0, int)
    chosen = np.concatenate([required, chosen]).astype(int)
    rest = np.setdiff1d(np.arange(flat.size), chosen)
    return np.concatenate([chosen, rng.choice(rest, count - len(chosen), replace=False)])


def nucleus_indices(atoms, shape: tuple[int, int, int]) -> np.ndarray:
    """Flat indices of the grid points (i, j, k at fractional i/N1, j/N2, k/N3) nearest each
    atom: where the engines' ELF has its narrowest features (a pseudo-density's spike at the
    nucleus, semicore shells), which uniform or ELF²-weighted draws seldom hit."""
    from elfkit.grid import nearest_grid_points

    return np.unique(np.ravel_multi_index(tuple(nearest_grid_points(atoms, shape)[0].T), tuple(shape)))


def critical_indices(elf: np.ndarray, limit: int, rng: np.random.Generator, pairs=None) -> np.ndarray:
    """Flat indices of the grid points (i, j, k at fractional i/N1, j/N2, k/N3) of the ELF's
    maxima and saddles of persistence at least `CRITICAL_PERSISTENCE`
    (`elfkit.analysis.critical.persistence_pairs`; `pairs` reuses its result) and of their six
    face neighbours (periodic): the values whose differences make a maximum's persistence, which
    uniform or ELF²-weighted draws seldom hit. At most `limit`: the maxima first, then the
    saddles, each in random order."""
    from elfkit.analysis.critical import persistence_pairs

    pairs = pairs if pairs is not None else persistence_pairs(elf)
    shape = np.array(elf.shape)
    kept = pairs.persistence >= CRITICAL_PERSISTENCE
    vertices = [rng.permutation(pairs.vertices[kept & (pairs.index == index)]) for index in (3, 2)]
    steps = np.vstack([np.zeros(3, int), np.eye(3, dtype=int), -np.eye(3, dtype=int)])
    stars = (np.concatenate(vertices)[:, None, :] + steps[None]) % shape
    flat = np.ravel_multi_index(tuple(stars.reshape(-1, 3).T), tuple(shape))
    _, first = np.unique(flat, return_index=True)
    return flat[np.sort(first)][:limit]


def maximum_saddle_pairs(pairs, shape: tuple[int, int, int]) -> np.ndarray:
    """(K, 2) flat grid indices (as `critical_indices`) of each maximum of persistence at least
    `CRITICAL_PERSISTENCE` in `pairs` (`elfkit.analysis.critical.persistence_pairs` of a grid of
    `shape`) and of the saddle it pairs with: their ELF difference is the maximum's persistence."""
    maxima = np.flatnonzero((pairs.index == 3) & (pairs.persistence >= CRITICAL_PERSISTENCE) & (pairs.partner >= 0))
    ends = [pairs.vertices[rows] for rows in (maxima, pairs.partner[maxima])]
    return np.stack([np.ravel_multi_index(tuple(end.T), tuple(shape)) for end in ends], axis=1).reshape(-1, 2)


def critical_slope_pairs(pairs, shape: tuple[int, int, int]) -> np.ndarray:
    """(3K, 2) flat grid indices (as `critical_indices`) of the two face neighbours, one step
    either way along each grid axis (periodic), of each of the K maxima and saddles of
    persistence at least `CRITICAL_PERSISTENCE` in `pairs` (`persistence_pairs` of a grid of
    `shape`): their ELF difference is the central difference at the critical point, zero where
    the ELF is smooth there."""
    kept = (pairs.persistence >= CRITICAL_PERSISTENCE) & np.isin(pairs.index, (2, 3))
    vertices = pairs.vertices[kept]
    steps = np.eye(3, dtype=int)
    ends = [(vertices[:, None, :] + sign * steps[None]) % np.array(shape) for sign in (1, -1)]
    return np.stack([np.ravel_multi_index(tuple(end.reshape(-1, 3).T), tuple(shape)) for end in ends], axis=1)


def rows_of_pairs(index: np.ndarray, flat_pairs: np.ndarray) -> torch.Tensor:
    """(K, 2) rows of a pool of flat grid `index` that hold both ends of each of `flat_pairs`
    (K', 2 flat grid indices); pairs with an end outside the pool are left out."""
    order = np.argsort(index)
    position = order[np.minimum(np.searchsorted(index, flat_pairs, sorter=order), len(index) - 1)]
    inside = (index[position] == flat_pairs).all(axis=1)
    return torch.from_numpy(position[inside].reshape(-1, 2).astype(np.int64))


def _report(pool: PointPool, done: int, total: int, on_progress) -> PointPool:
    if on_progress:
        on_progress(done, total)
    return pool


def paired_pool_indices(elf: np.ndarray, count: int, weighted_fraction: float, rng: np.random.Generator,
                        max_step: int = 3) -> np.ndarray:
    """Flat grid indices of a pool of `count` // 2 pairs: the first half drawn as `pool_indices`,
    the second half, row for row, a grid neighbour of the first (each axis moved by a random
    step in [-max_step, max_step], not all zero, wrapping periodically), so that a loss can compare
    differences of the ELF between nearby points (its local contrast)."""
    shape = np.asarray(elf).shape
    first = pool_indices(elf, count // 2, weighted_fraction, rng)
    step = rng.integers(-max_step, max_step + 1, size=(len(first), 3))
    step[~step.any(axis=1), rng.integers(0, 3)] = 1
    second = np.ravel_multi_index(tuple((np.stack(np.unravel_index(first, shape), axis=1) + step).T), shape, mode="wrap")
    return np.concatenate([first, second])


def build_pool(descriptor: dict, sample, count: int, weighted_fraction: float, seed: list[int], paired: bool = False,
               nuclei: bool = False, critical: float = 0.0) -> PointPool:
    """The pool of `count` probe points of a dataset sample, drawn by a generator of `seed`
    (`paired`: as pairs of nearby points, `paired_pool_indices`; `nuclei`: the grid point
    nearest each atom always among them, `nucleus_indices`; `critical`: up to that fraction of
    the count from the DFT ELF's maxima and saddles, `critical_indices`, and the pool's `pairs`
    of maxima and saddles), for a point model of `descriptor` (`PointELF.descriptor`, and its
    `features`; engine-valence channels of the engine that labelled the sample); picklable, so
    worker processes build pools in parallel."""
    rng = np.random.default_rng(seed)
    if paired:
        return pool_at(descriptor, sample, paired_pool_indices(sample.elf, count, weighted_fraction, rng))
    required = [nucleus_indices(sample.atoms, sample.elf.shape)] if nuclei else []
    pairs = None
    if critical:
        from elfkit.analysis.critical import persistence_pairs

        pairs = persistence_pairs(np.asarray(sample.elf, dtype=float))
        required.append(critical_indices(sample.elf, int(critical * count), rng, pairs))
    index = pool_indices(sample.elf, count, weighted_fraction, rng, np.concatenate(required) if required else None)
    pool = pool_at(descriptor, sample, index)
    if pairs is not None:
        pool.pairs = rows_of_pairs(index, maximum_saddle_pairs(pairs, sample.elf.shape))
        pool.slopes = rows_of_pairs(index, critical_slope_pairs(pairs, sample.elf.shape))
    return pool


def pool_at(descriptor: dict, sample, index: np.ndarray) -> PointPool:
    """The pool of a dataset sample's grid points of flat `index`, for a point model of
    `descriptor` (as `build_pool`)."""
    from elfkit.features import point_inputs, point_inputs_radius
    from elfkit.geometry import point_neighbours
    from elfkit.grid import Grid
    from elfkit.models.point import neighbour_basis, present_weights
    from elfkit.train.loader import stratum_of

    features, engine = descriptor["features"], sample.metadata.get("engine")
    points = Grid(sample.atoms.cell.array, sample.elf.shape).cart_coords().reshape(-1, 3)[index]
    pairs = point_neighbours(sample.atoms, points, max(descriptor["cutoff"], point_inputs_radius(sample.atoms, features, engine)))
    weights, columns = present_weights(sample.atoms, descriptor["environment"], descriptor["species"])
    near = descriptor.get("near")
    return PointPool(
        basis=neighbour_basis(sample.atoms, points, descriptor["cutoff"], descriptor["radial"], descriptor["l_max"], pairs,
                              atom_weights=weights, near_radial=descriptor.get("near_radial", 0)),
        columns=torch.from_numpy(columns),
        density=torch.from_numpy(point_inputs(sample.atoms, points, features, engine, pairs).T.copy()),
        elf=torch.from_numpy(np.asarray(sample.elf, dtype=np.float32).ravel()[index]),
        stratum=stratum_of(sample),
        near=NearPairs.of(sample.atoms, pairs, len(points), near["near_cutoff"], near["atom_cutoff"]) if near else None,
    )


AUTO_SPECIES = "auto"
"""`species: auto` in a point model's config: the elements of its datasets."""


POOL_INDEPENDENT_SETTINGS = ("name", "dataset_weights", "steps", "learning_rate", "warmup_steps", "weight_decay",
                             "species_residual_decay", "ema_decay", "bf16", "threads", "validate_every", "checkpoint_minutes")
"""Config fields that steer only the run's name and optimisation, not which points a pool holds or their inputs."""


def pool_settings(config: dict) -> dict:
    """The part of a config (as dumped to JSON) that its point pools depend on: a run reuses the
    pools.pt in its folder (made by it, or copied from a run whose config differs only in
    `POOL_INDEPENDENT_SETTINGS`) when these parts and the data agree."""
    return {key: value for key, value in config.items() if key not in POOL_INDEPENDENT_SETTINGS}


def with_training_species(config):
    """`config` with `species: auto` in its model replaced by the elements of its datasets (every
    split, so that evaluation can run on all of them; an element seen only in val or test keeps
    untrained radial functions and lies outside the model's domain, which warns), ordered by
    atomic number (the same list for the same data, so a resumed run has the same config)."""
    if config.model.get("species") != AUTO_SPECIES:
        return config
    import elfkit.data
    from ase.data import atomic_numbers
    from ase.formula import Formula

    symbols = {s for name in config.datasets for row in elfkit.data.open(name).rows() for s in Formula(row["formula"]).count()}
    return config.model_copy(update={"model": {**config.model, "species": sorted(symbols, key=atomic_numbers.get)}})


class PointTrainer(Trainer):
    """The training loop of `Trainer` (resume, EMA, uncertainty weights, logs) on point pools."""

    def __init__(self, config, out_dir, on_progress=None):
        super().__init__(with_training_species(config), out_dir, on_progress)
        self.train_pools: list[PointPool] = []
        self.val_pools: list[PointPool] = []

    @property
    def sample_count(self) -> int:
        """Training grids an epoch runs through."""
        return len(self.train_pools)

    def load_data(self, on_progress: Callable[[int, int], None] | None = None) -> None:
        """Pools of the train split and uniform points of the fixed validation subset, from
        pools.pt when a run of this config made them already."""
        path = self.out_dir / POOLS_FILE
        if path.is_file():
            saved = torch.load(path, weights_only=False)
            same_pools = pool_settings(saved["config"]) == pool_settings(self.config.model_dump(mode="json"))
            same_run = same_pools and saved.get("data") == self.data_fingerprint
            if saved.get("format") == POOLS_FORMAT and same_run:
                self.train_pools, self.val_pools = saved["train"], saved["val"]
                return
        points = self.config.points
        self.train_pools = self._pools("train", points.pool_points, points.weighted_fraction, on_progress, self.paired, points.nuclei,
                                       points.critical)
        self.val_pools = self._pools("val", points.validation_points, 0.0, on_progress)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        from elfkit.io._files import atomic_output

        with atomic_output(path) as tmp:
            torch.save({"format": POOLS_FORMAT, "config": self.config.model_dump(mode="json"), "data": self.data_fingerprint,
                        "train": self.train_pools, "val": self.val_pools}, tmp)

    @property
    def paired(self) -> bool:
        """Whether training pools are pairs of nearby points (`paired_pool_indices`): for GRAD."""
        return self.config.losses.grad

    def _pools(self, split: str, count: int, weighted_fraction: float, on_progress, paired: bool = False,
               nuclei: bool = False, critical: float = 0.0) -> list[PointPool]:
        import elfkit.data

        from elfkit.train.loader import spread_subset, stratum_of

        samples = [s for name in self.config.datasets for s in elfkit.data.open(name, split=split)]
        if split == "val":
            samples = spread_subset(samples, self.config.validation_samples, stratum_of)
        jobs = [(sample, count, weighted_fraction, [self.config.seed, 7, number, len(samples)], paired, nuclei, critical)
                for number, sample in enumerate(samples)]
        if self.config.threads == 1:
            return [_report(build_pool(self.descriptor, *job), done, len(jobs), on_progress) for done, job in enumerate(jobs, 1)]
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self.config.threads, mp_context=context, initializer=torch.set_num_threads, initargs=(1,)) as workers:
            pending = workers.map(build_pool, [self.descriptor] * len(jobs), *zip(*jobs))
            return [_report(pool, done, len(jobs), on_progress) for done, pool in enumerate(pending, 1)]

    @property
    def descriptor(self) -> dict:
        """What a pool's inputs depend on: the network's basis (`PointELF.descriptor`) and its
        density channels (`features`)."""
        return {**self.net.descriptor, "features": self.net.features.value}

    def training_batch(self, index: int, rng: np.random.Generator) -> Batch:
        """`batch_points` probe points from `batch_samples` pools (pool `index` first, then
        others drawn as the step's pool is, `sample_probabilities`), their predicted and DFT ELF;
        with `paired` pools as (2, P): row 1 the partners of row 0. With the PERS loss, also every
        (maximum, saddle) pair of those pools; with the SLOPE loss, every pair of neighbours
        across a critical point of those pools."""
        points = self.config.points
        chosen = [index, *rng.choice(self.sample_count, points.batch_samples - 1, p=self.sample_probabilities)]
        per_pool = max(1, points.batch_points // len(chosen))
        extras = [name for name in ("pers", "slope") if name in self.weights.names]
        logits, elf = [], []
        extra_logits, extra_elf = {name: [] for name in extras}, {name: [] for name in extras}
        for index in chosen:
            pool = self.train_pools[int(index)]
            rows = self._batch_rows(len(pool.elf), per_pool, rng)
            ends = {name: (pool.pairs if name == "pers" else pool.slopes).T for name in extras}
            values = self._pool_logits(self.net, pool, torch.cat([rows.flatten(), *(e.flatten() for e in ends.values())]))
            logits.append(values[: rows.numel()].view(rows.shape))
            start = rows.numel()
            for name, end in ends.items():
                extra_logits[name].append(values[start : start + end.numel()].view(end.shape))
                extra_elf[name].append(pool.elf[end])
                start += end.numel()
            elf.append(pool.elf[rows])
        batch = Batch(torch.sigmoid(torch.cat(logits, dim=-1)), torch.cat(elf, dim=-1).to(self.device), False)
        for name in extras:
            pred, ref = torch.sigmoid(torch.cat(extra_logits[name], dim=-1)), torch.cat(extra_elf[name], dim=-1).to(self.device)
            if name == "pers":
                batch.pair_pred, batch.pair_ref = pred, ref
            else:
                batch.slope_pred, batch.slope_ref = pred, ref
        return batch

    def _batch_rows(self, size: int, count: int, rng: np.random.Generator) -> torch.Tensor:
        """Rows of a pool of `size` points for a batch: `count` random ones, or with `paired`
        pools (2, count // 2) of pairs (a row of the first half and its partner)."""
        if not self.paired:
            return torch.from_numpy(rng.choice(size, min(count, size), replace=False))
        half = size // 2
        first = rng.choice(half, max(1, min(count // 2, half)), replace=False)
        return torch.from_numpy(np.stack([first, first + half]))

    def grad_term(self, pred: torch.Tensor, y: torch.Tensor, periodic: bool) -> torch.Tensor:
        """GRAD on the batch's pairs of nearby points (`pair_grad_loss`)."""
        return pair_grad_loss(pred, y)

    def _pool_logits(self, net, pool: PointPool, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of `net` at a pool's points (`rows`, default all), from the pool's own columns."""
        basis, density = (pool.basis, pool.density) if rows is None else (pool.basis[rows], pool.density[rows])
        near = pool.near if pool.near is None or rows is None else pool.near.rows(rows)
        near = near.to(self.device) if near is not None else None
        return net(basis.to(self.device), density.to(self.device), pool.columns.to(self.device), near)

    @torch.no_grad()
    def validate(self) -> dict:
        """R² and MAE over the uniform points of each validation grid (mean and worst)."""
        from elfkit.analysis.metrics import pointwise

        net = self.inference_net.eval()
        scores = [pointwise(torch.sigmoid(self._pool_logits(net, p)).cpu().numpy(), p.elf.numpy()) for p in self.val_pools]
        self.net.train()
        return validation_record(self.step, scores)

    def architecture_metadata(self) -> dict:
        """What the model file records about the network's reach."""
        return {"cutoff_angstrom": self.net.cutoff}
