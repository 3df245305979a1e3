"""The training config: a YAML file validated by pydantic; the shipped models' configs live in configs/."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from elfkit.errors import ElfkitError
from elfkit.models import Architecture


class ConfigError(ElfkitError):
    """A training config is missing or invalid."""


class Augmentation(BaseModel):
    """Exact augmentations of a labelled grid: the lattice's own point-group operations that
    map the grid onto itself (48 for a cubic cell), and unimodular shears of the lattice
    basis (same points, skewed voxels) with probability `shear_probability`."""

    model_config = ConfigDict(extra="forbid")
    point_group: bool = True
    shear_probability: float = Field(0.2, ge=0, le=1)


class LossWeights(BaseModel):
    """Which loss terms enter (balanced by learned uncertainty weights, Kendall et al. 2018).
    For the point model, `grad` draws the training pools as pairs of nearby grid points and
    compares the ELF differences across them (`elfkit.train.losses.pair_grad_loss`); `pers`
    compares the differences between each DFT maximum of the pools (`points.critical`) and the
    saddle it pairs with, the maximum's persistence (`elfkit.train.points.maximum_saddle_pairs`),
    and for the U-Net those of every persistence pair of the training grid
    (`elfkit.train.losses.persistence_pair_ends`);
    `slope` compares the central differences across each DFT maximum and saddle of those pools
    (`elfkit.train.points.critical_slope_pairs`), which pin where the critical point lies."""

    model_config = ConfigDict(extra="forbid")
    vox: bool = True
    hist: bool = True
    grad: bool = True
    pers: bool = False
    slope: bool = False
    hist_points: int = Field(32768, gt=0)


class PointSampling(BaseModel):
    """Probe points of the point model: a fixed pool per training grid, half drawn uniformly over
    the grid points (the interstitial) and `weighted_fraction` with probability proportional to
    the DFT ELF squared (the bonds and lone pairs); each step reads `batch_points` from
    `batch_samples` grids. Validation reads `validation_points` uniform points per grid. With
    `nuclei` every train pool also holds the grid point nearest each atom
    (`elfkit.train.points.nucleus_indices`); with `critical` up to that fraction of it holds the
    DFT ELF's maxima and saddles and their face neighbours (`elfkit.train.points.critical_indices`),
    in place of ELF²-weighted draws."""

    model_config = ConfigDict(extra="forbid")
    pool_points: int = Field(6000, gt=0)
    weighted_fraction: float = Field(0.5, ge=0, le=1)
    nuclei: bool = False
    critical: float = Field(0.0, ge=0, le=1)
    batch_points: int = Field(4096, gt=0)
    batch_samples: int = Field(8, gt=0)
    validation_points: int = Field(20000, gt=0)


class TrainConfig(BaseModel):
    """Everything that defines a training run; the same config and seed give the same model."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    datasets: list[str] = ["hydrogen-fluid"]
    dataset_weights: dict[str, float] = {}
    """Relative sampling weight of each dataset's training grids (default 1): a grid of a dataset of
    weight 2 is drawn twice as often as one of weight 1. Empty: every grid once per epoch."""
    architecture: Architecture = Architecture.PERIODIC_UNET
    model: dict = {}
    seed: int = 0
    init_from: str | None = None
    """A model (a shipped name or a .safetensors path) whose weights the network starts from, for a
    fine-tuning run: its architecture and model settings must be this config's; the optimiser, the
    learned loss weights and the moving average start afresh, and the model file records it."""
    steps: int = Field(gt=0)
    learning_rate: float = Field(2e-3, gt=0)
    warmup_steps: int = Field(100, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    species_residual_decay: float = Field(0.0, ge=0)
    """Weight of the mean square of a point model's free per-species radial functions in the loss
    (model `species_residual`), relative to the VOX term: the penalty is added as
    decay * w_vox * mean square, with w_vox the VOX term's current learned weight (not
    differentiated), so 1 weighs it as the plain L1 loss would whatever scale the uncertainty
    weighting has reached. It pulls each element towards the functions it shares."""
    max_block: int = Field(64, ge=8)
    bf16: bool = True
    """Train under bfloat16 autocast where the hardware computes it natively
    (`elfkit.models.native_bf16`), else in float32."""
    ema_decay: float = Field(0.0, ge=0, lt=1)
    """Per-step decay of the weights' exponential moving average that is validated and shipped (0: none)."""
    threads: int = Field(2, ge=1)
    validate_every: int = Field(500, gt=0)
    validation_samples: int = Field(45, gt=0)
    checkpoint_minutes: float = Field(5.0, gt=0)
    augment: Augmentation = Augmentation()
    losses: LossWeights = LossWeights()
    points: PointSampling = PointSampling()

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        unknown = sorted(set(self.dataset_weights) - set(self.datasets))
        if unknown:
            raise ValueError(f"dataset_weights names {', '.join(unknown)}, not in datasets")
        if any(weight <= 0 for weight in self.dataset_weights.values()):
            raise ValueError("dataset_weights must be positive")
        if self.species_residual_decay and not self.model.get("species_residual"):
            raise ValueError("species_residual_decay penalises free per-species functions: set model.species_residual: true")
        if self.species_residual_decay and not self.losses.vox:
            raise ValueError("species_residual_decay is relative to the VOX term: set losses.vox: true")
        if (self.points.nuclei or self.points.critical) and self.losses.grad and self.architecture == Architecture.POINT:
            raise ValueError("points.nuclei and points.critical add single grid points, and losses.grad draws pools as pairs: "
                             "set one of them off")
        if self.losses.pers and self.architecture == Architecture.POINT and not self.points.critical:
            raise ValueError("losses.pers of a point model compares the maxima and saddles of critical-point pools: "
                             "set points.critical above 0")
        if self.losses.slope and not (self.architecture == Architecture.POINT and self.points.critical):
            raise ValueError("losses.slope compares differences across the maxima and saddles of critical-point pools: "
                             "set architecture: point and points.critical above 0")
        return self


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate a training config (YAML); ConfigError naming the file and the first problem."""
    from elfkit.yamlfile import load_yaml

    return load_yaml(path, TrainConfig.model_validate, ConfigError, "config")
