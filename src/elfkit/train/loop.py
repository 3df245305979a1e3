"""The training loop: deterministic for a seed, resumable after a kill, logged and plotted.

Runs on a CUDA GPU when one is present, else on the CPU (never required).

Run folder (`out_dir`):
  state.pt        everything needed to resume (weights, optimiser, loss weights, step, time),
                  written atomically every `checkpoint_minutes` and at the end
  log.jsonl       one line per logged step (loss terms, their weights, learning rate) and per
                  validation (R², MAE on a fixed val subset)
  losses.png      the loss terms, their learned weights and the validation R² against step
  NAME.safetensors  the finished model (elfkit.models.checkpoint), written at the last step

The sample and augmentation of step t depend only on (seed, t), so a resumed run takes the
same path as an uninterrupted one.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

import elfkit
from elfkit.features import features_of
from elfkit.models import build, native_bf16
from elfkit.models.checkpoint import save_model
from elfkit.train.augment import augment
from elfkit.train.config import TrainConfig
from elfkit.train.loader import LabelledGrid, load_split, spread_subset, training_block
from elfkit.train.losses import UncertaintyWeights, grad_loss, hist_loss, pair_grad_loss, persistence_pair_ends, vox_loss

LOG_EVERY = 20
WEIGHTS_LR_SCALE = 10.0
"""The uncertainty weights learn this much faster than the network (they start at 1 and settle near 1/loss)."""


def _learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak at the last step."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def _sample_for_step(config: TrainConfig, step: int, count: int, probabilities: np.ndarray | None = None
                     ) -> tuple[int, np.random.Generator]:
    """Index of the training grid for `step` and the step's RNG: a fresh shuffle every epoch, or
    with `probabilities` (one per grid) a draw from them."""
    rng = np.random.default_rng([config.seed, 1_000_003, step])
    if probabilities is not None:
        return int(rng.choice(count, p=probabilities)), rng
    epoch, position = divmod(step, count)
    order = np.random.default_rng([config.seed, epoch]).permutation(count)
    return int(order[position]), rng


def dataset_probabilities(config: TrainConfig, counts: list[int]) -> np.ndarray | None:
    """Each training grid's chance to be drawn under `config.dataset_weights`, for grids stored
    dataset by dataset in `config.datasets` order with `counts` grids each; None without weights."""
    if not config.dataset_weights:
        return None
    weights = np.concatenate([np.full(count, config.dataset_weights.get(name, 1.0)) for name, count in zip(config.datasets, counts)])
    return weights / weights.sum()


def _loss_names(config: TrainConfig) -> list[str]:
    return [name for name in ("vox", "hist", "grad", "pers", "slope") if getattr(config.losses, name)]


@dataclass
class Batch:
    """A training step's predicted and reference ELF (dimensionless), whether they are whole
    periodic grids, for the PERS loss the predicted and reference ELF at (2, K) pairs of a
    DFT maximum (row 0) and the saddle it pairs with (row 1), and for the SLOPE loss at (2, K)
    pairs of the two neighbours of a DFT critical point along a grid axis."""

    pred: torch.Tensor
    ref: torch.Tensor
    periodic: bool
    pair_pred: torch.Tensor | None = None
    pair_ref: torch.Tensor | None = None
    slope_pred: torch.Tensor | None = None
    slope_ref: torch.Tensor | None = None


class Trainer:
    """One training run of `config` in `out_dir`; `run()` resumes from state.pt when present."""

    def __init__(self, config: TrainConfig, out_dir: Path, on_progress: Callable[[int, int, dict], None] | None = None):
        self.config, self.out_dir, self.on_progress = config, Path(out_dir), on_progress
        torch.manual_seed(config.seed)
        torch.set_num_threads(config.threads)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.bf16 = config.bf16 and native_bf16(self.device)
        """Whether steps run under bfloat16 autocast: `config.bf16` where the hardware has it."""
        self.net = build(config.architecture.value, **config.model).to(self.device)
        self.average = self._averaged(self.net, config.ema_decay)
        self.weights = UncertaintyWeights(_loss_names(config)).to(self.device)
        self.optimiser = torch.optim.AdamW(
            [
                {"params": list(self.net.parameters()), "lr_scale": 1.0},
                {"params": list(self.weights.parameters()), "lr_scale": WEIGHTS_LR_SCALE, "weight_decay": 0.0},
            ],
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
        )
        self.step, self.seconds = 0, 0.0
        self.train_grids: list[LabelledGrid] = []
        self.val_grids: list[LabelledGrid] = []
        self.train_pairs: list[np.ndarray] = []
        """For the PERS loss: (K, 2) flat indices of each training grid's DFT persistence pairs."""
        self.initial_model: dict | None = None
        """Name and SHA-256 of the model the weights started from (`start_from`), else None."""

    @staticmethod
    def _averaged(net: torch.nn.Module, decay: float) -> torch.nn.Module:
        """The network whose weights validation and the model file use: an exponential moving
        average of the trained weights when `decay` > 0 (smooths the noise of one-cell steps;
        the decay ramps up as (1 + n) / (10 + n) over the first steps, so the average does not
        keep the untrained weights), else the trained network itself."""
        if decay == 0:
            return net
        from torch.optim.swa_utils import AveragedModel

        def average(averaged: torch.Tensor, current: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
            warm = min(decay, (1.0 + float(count)) / (10.0 + float(count)))
            return warm * averaged + (1.0 - warm) * current

        return AveragedModel(net, avg_fn=average, use_buffers=True)

    @property
    def inference_net(self) -> torch.nn.Module:
        """The network validated and exported (the moving average when one is kept)."""
        return self.average.module if self.average is not self.net else self.net

    @property
    def sample_count(self) -> int:
        """Training samples an epoch runs through."""
        return len(self.train_grids)

    @cached_property
    def sample_probabilities(self) -> np.ndarray | None:
        """Each training sample's chance to be a step's sample (`dataset_probabilities`); None: epochs."""
        import elfkit.data

        if not self.config.dataset_weights:
            return None
        counts = [len(elfkit.data.open(name, split="train")) for name in self.config.datasets]
        if sum(counts) != self.sample_count:
            raise RuntimeError(f"{self.sample_count} training samples loaded, the datasets hold {sum(counts)}")
        return dataset_probabilities(self.config, counts)

    @property
    def state_path(self) -> Path:
        """The resumable state file."""
        return self.out_dir / "state.pt"

    def load_data(self, on_progress: Callable[[int, int], None] | None = None) -> None:
        """Read the train split and the fixed validation subset into memory; with the PERS loss,
        find each training grid's DFT persistence pairs (about a second per 45³ grid, reported
        to `on_progress` as a second pass over the grids)."""
        features = features_of(self.config.model)
        self.train_grids = load_split(self.config.datasets, "train", on_progress, features)
        self.val_grids = spread_subset(load_split(self.config.datasets, "val", features=features), self.config.validation_samples)
        if "pers" in self.weights.names:
            self.train_pairs = []
            for grid in self.train_grids:
                self.train_pairs.append(persistence_pair_ends(grid.elf))
                if on_progress:
                    on_progress(len(self.train_pairs), len(self.train_grids))

    @cached_property
    def data_fingerprint(self) -> dict[str, str]:
        """Manifest SHA-256 (16 hex digits) of each of the config's datasets, read once: a run
        resumes, and reuses what it computed from them, only on the same data."""
        return {record["name"]: record["manifest_sha256"] for record in dataset_records(self.config.datasets)}

    def resume(self) -> bool:
        """Load state.pt if it exists; True when a run was resumed."""
        if not self.state_path.is_file():
            return False
        state = torch.load(self.state_path, weights_only=False, map_location=self.device)
        from elfkit.train.config import ConfigError

        if state["config"] != self.config.model_dump(mode="json"):
            raise ConfigError(f"{self.state_path}: a run with another config is in this folder; use another --out")
        if state.get("data") != self.data_fingerprint:
            raise ConfigError(f"{self.state_path}: the run in this folder started on other data (a dataset changed since); "
                              "use another --out")
        self.net.load_state_dict(state["net"])
        if self.average is not self.net:
            self.average.load_state_dict(state["average"])
        self.weights.load_state_dict(state["weights"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.step, self.seconds = state["step"], state["seconds"]
        torch.set_rng_state(state["torch_rng"].cpu())
        return True

    def start_from(self, model: str) -> None:
        """The network's (and moving average's) weights from `model` (`config.init_from`);
        ConfigError, before any data is read, when its architecture or model settings differ."""
        from elfkit.models.checkpoint import load_model
        from elfkit.train.config import ConfigError

        loaded = load_model(model)
        if loaded.metadata["architecture"] != self.config.architecture.value or loaded.metadata["config"] != self.net.config:
            raise ConfigError(f"{loaded.source}: init_from needs a {self.config.architecture.value} model with this config's "
                              "model settings")
        self.net.load_state_dict(loaded.net.state_dict())
        if self.average is not self.net:
            self.average.module.load_state_dict(loaded.net.state_dict())
        self.initial_model = {"name": loaded.name, "sha256": loaded.sha256}

    def save_state(self) -> None:
        """Write state.pt atomically."""
        from elfkit.io._files import atomic_output

        state = {
            "config": self.config.model_dump(mode="json"),
            "data": self.data_fingerprint,
            "net": self.net.state_dict(),
            "average": self.average.state_dict() if self.average is not self.net else None,
            "weights": self.weights.state_dict(),
            "optimiser": self.optimiser.state_dict(),
            "step": self.step,
            "seconds": self.seconds,
            "torch_rng": torch.get_rng_state(),
        }
        with atomic_output(self.state_path) as tmp:
            torch.save(state, tmp)

    def training_batch(self, index: int, rng: np.random.Generator) -> Batch:
        """The step's predicted and reference ELF and whether they are whole periodic grids:
        training grid `index`, augmented (a patch of it when large); with the PERS loss also the
        ends of the grid's DFT persistence pairs that lie in the patch, followed through the
        augmentation by a grid of the points' original flat indices."""
        config = self.config
        grid = self.train_grids[index]
        labels = grid.elf if not self.train_pairs else np.stack([grid.elf, _flat_indices(grid.elf.shape)])
        features, labels, _ = augment(
            grid.features, labels, grid.cell, rng, config.augment.point_group, config.augment.shear_probability
        )
        inputs, labels, periodic = training_block(features, labels, config.max_block, self.net.receptive_radius, rng)
        elf = labels if not self.train_pairs else labels[0]
        x = torch.from_numpy(np.ascontiguousarray(inputs))[None].to(self.device)
        y = torch.from_numpy(np.ascontiguousarray(elf, dtype=np.float32))[None].to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.net(x, periodic=periodic)
        batch = Batch(torch.sigmoid(logits.float()), y, periodic)
        if self.train_pairs:
            ends = torch.from_numpy(pair_positions(labels[1], self.train_pairs[index], grid.elf.size)).to(self.device)
            batch.pair_pred, batch.pair_ref = batch.pred.reshape(-1)[ends], y.reshape(-1)[ends]
        return batch

    def grad_term(self, pred: torch.Tensor, y: torch.Tensor, periodic: bool) -> torch.Tensor:
        """The GRAD loss of a training batch (`training_batch`'s values)."""
        return grad_loss(pred, y, periodic)

    def train_step(self) -> dict:
        """One optimiser step on the step's training batch; returns the logged numbers."""
        config = self.config
        index, rng = _sample_for_step(config, self.step, max(1, self.sample_count), self.sample_probabilities)
        for group in self.optimiser.param_groups:
            group["lr"] = _learning_rate(config, self.step) * group["lr_scale"]
        batch = self.training_batch(index, rng)
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        terms = {"vox": vox_loss(batch.pred, batch.ref), "hist": hist_loss(batch.pred, batch.ref, config.losses.hist_points, generator)}
        if "grad" in self.weights.names:
            terms["grad"] = self.grad_term(batch.pred, batch.ref, batch.periodic)
        if "pers" in self.weights.names:
            terms["pers"] = pair_grad_loss(batch.pair_pred, batch.pair_ref)
        if "slope" in self.weights.names:
            terms["slope"] = pair_grad_loss(batch.slope_pred, batch.slope_ref)
        terms = {name: terms[name] for name in self.weights.names}
        total = self.weights(terms)
        if config.species_residual_decay:
            terms["species_residual"] = self.net.species_residual_square()
            scale = config.species_residual_decay * self.weights.weights()["vox"]
            total = total + scale * terms["species_residual"]
        self.optimiser.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.optimiser.step()
        if self.average is not self.net:
            self.average.update_parameters(self.net)
        return {
            "step": self.step,
            "lr": self.optimiser.param_groups[0]["lr"],
            "total": float(total.detach()),
            **{f"loss_{k}": float(v.detach()) for k, v in terms.items()},
            **{f"weight_{k}": v for k, v in self.weights.weights().items()},
        }

    @torch.no_grad()
    def validate(self) -> dict:
        """R² and MAE (float32 inference) over the fixed validation subset, pooled and per grid."""
        from elfkit.analysis.metrics import pointwise

        net = self.inference_net.eval()
        scores = []
        for grid in self.val_grids:
            pred = torch.sigmoid(net(torch.from_numpy(grid.features)[None].to(self.device)))[0].cpu().numpy()
            scores.append(pointwise(pred, grid.elf))
        self.net.train()
        return validation_record(self.step, scores)

    def _log(self, record: dict) -> None:
        with open(self.out_dir / "log.jsonl", "a") as handle:
            handle.write(json.dumps({**record, "seconds": round(self.seconds, 1)}) + "\n")

    def run(self) -> Path:
        """Train to `config.steps` (resuming if possible); returns the finished model file."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.resume()
        self.net.train()
        last_save, started = time.monotonic(), time.monotonic() - self.seconds
        latest: dict = {}
        while self.step < self.config.steps:
            record = self.train_step()
            self.step += 1
            self.seconds = time.monotonic() - started
            if self.step % LOG_EVERY == 0:
                self._log(record)
            if self.step % self.config.validate_every == 0 or self.step == self.config.steps:
                latest = self.validate()
                self._log(latest)
                plot_log(self.out_dir / "log.jsonl", self.out_dir / "losses.png")
            if time.monotonic() - last_save > 60 * self.config.checkpoint_minutes or self.step == self.config.steps:
                self.save_state()
                last_save = time.monotonic()
            if self.on_progress:
                self.on_progress(self.step, self.config.steps, {**record, **latest})
        return self.export(latest or self.validate())

    def architecture_metadata(self) -> dict:
        """What the model file records about the network's reach."""
        return {"receptive_radius_voxels": self.net.receptive_radius}

    def export(self, validation: dict) -> Path:
        """Write NAME.safetensors with the metadata of this run."""
        metadata = {
            "name": self.config.name,
            "architecture": self.config.architecture.value,
            "elfkit_version": elfkit.__version__,
            "torch_version": torch.__version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "datasets": dataset_records(self.config.datasets),
            "domain": training_domain(self.config.datasets),
            "train_config": self.config.model_dump(mode="json"),
            "training_seconds": round(self.seconds, 1),
            "training_precision": "bfloat16" if self.bf16 else "float32",
            "initial_model": self.initial_model,
            "steps": self.step,
            "validation": validation,
            **self.architecture_metadata(),
        }
        return save_model(self.out_dir / f"{self.config.name}.safetensors", self.inference_net, metadata)


def _flat_indices(shape: tuple[int, int, int]) -> np.ndarray:
    """Each grid point's flat C-order index, as float32 (exact below 2**24 points) so that it
    travels through `augment` beside the float32 ELF without promoting the features."""
    if math.prod(shape) >= 2**24:
        raise ValueError(f"a {shape} grid has too many points for float32 indices")
    return np.arange(math.prod(shape), dtype=np.float32).reshape(shape)


def pair_positions(origins: np.ndarray, pairs: np.ndarray, size: int) -> np.ndarray:
    """(2, K') flat positions in a training block of the `pairs` ((K, 2) flat indices of the
    whole grid of `size` points) that lie in it, given `origins`, the block's grid of each of its
    points' flat index in the whole grid; pairs with an end outside the block are left out."""
    position = np.full(size, -1, dtype=np.int64)
    position[origins.reshape(-1).astype(np.int64)] = np.arange(origins.size)
    ends = position[pairs]
    return np.ascontiguousarray(ends[(ends >= 0).all(axis=1)].T)


def validation_record(step: int, scores: list[dict]) -> dict:
    """The logged validation numbers from per-grid `pointwise` scores: mean and worst R², mean MAE."""
    return {
        "step": step,
        "val_r2": float(np.mean([s["r2"] for s in scores])),
        "val_r2_min": float(np.min([s["r2"] for s in scores])),
        "val_mae": float(np.mean([s["mae"] for s in scores])),
    }


def dataset_records(names: list[str]) -> list[dict]:
    """Name, manifest SHA-256 (16 hex digits), split rule and split counts of each dataset."""
    import elfkit.data

    records = []
    for name in names:
        dataset = elfkit.data.open(name)
        manifest_bytes = (dataset.folder / "manifest.json").read_bytes()
        rows = dataset.rows()
        records.append({
            "name": name,
            "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest()[:16],
            "split_rule": dataset.manifest.get("split_rule"),
            "splits": {s: sum(r["split"] == s for r in rows) for s in ("train", "val", "test")},
        })
    return records


def training_domain(names: list[str]) -> dict:
    """What the training split covers: elements, valence density rs (bohr) and grid spacing (Å)."""
    from ase import Atoms

    import elfkit.data
    from elfkit.sad import electron_count
    from elfkit.structure_info import wigner_seitz_radius

    elements, rs, spacing = set(), [], []
    for name in names:
        for row in elfkit.data.open(name, split="train").rows():
            atoms = Atoms(row["formula"])
            elements.update(atoms.get_chemical_symbols())
            cell = np.array(row["cell"])
            rs.append(wigner_seitz_radius(abs(np.linalg.det(cell)), electron_count(atoms, "valence")))
            spacing.extend(np.linalg.norm(cell, axis=1) / np.array(row["grid"]))
    return {
        "elements": sorted(elements),
        "rs_bohr": [round(min(rs), 3), round(max(rs), 3)],
        "grid_spacing_angstrom": [round(float(min(spacing)), 4), round(float(max(spacing)), 4)],
    }


def plot_log(log_path: Path, png_path: Path) -> Path:
    """PNG of the loss terms, their learned weights and the validation R² against the step."""
    from elfkit.analysis.plots import _pyplot, _save

    records = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    steps = [r for r in records if "total" in r]
    checks = [r for r in records if "val_r2" in r]
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for key in sorted({k for r in steps for k in r if k.startswith("loss_")}):
        axes[0].semilogy([r["step"] for r in steps], [r[key] for r in steps], label=key[5:].upper())
        if "weight_" + key[5:] in steps[0]:
            axes[1].plot([r["step"] for r in steps], [r["weight_" + key[5:]] for r in steps], label=key[5:].upper())
    axes[0].set(xlabel="step", ylabel="loss term", title="loss terms")
    axes[1].set(xlabel="step", ylabel="exp(-s)", title="learned uncertainty weights")
    axes[2].plot([r["step"] for r in checks], [r["val_r2"] for r in checks], "o-", label="mean")
    axes[2].plot([r["step"] for r in checks], [r["val_r2_min"] for r in checks], "s--", label="worst grid")
    axes[2].set(xlabel="step", ylabel="R²", title="validation R²")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return _save(fig, png_path)


def train(config: TrainConfig, out_dir: Path, on_progress=None, on_loading=None) -> Path:
    """Train (or resume) `config` in `out_dir`; returns the finished model file."""
    from elfkit.models import Architecture
    from elfkit.train.points import PointTrainer

    trainer_class = PointTrainer if config.architecture == Architecture.POINT else Trainer
    trainer = trainer_class(config, out_dir, on_progress)
    if config.init_from:
        trainer.start_from(config.init_from)
    trainer.load_data(on_loading)
    return trainer.run()
