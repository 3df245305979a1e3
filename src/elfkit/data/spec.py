"""Dataset generation specs (YAML, validated with pydantic) and their work items.

A spec names the dataset, the label settings (one DFTSettings for every sample), the grid
spacing, and the generator with its parameters; `work_items(spec)` expands it into
independent items, each keyed by a hash of its parameters and the settings, so that a
rerun skips what is done and a grown spec only adds new items.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from elfkit.data.metals import BINARY, UNARY, build
from elfkit.data.store import DatasetError


class Strict(BaseModel):
    """A spec section that refuses unknown keys (a typo is an error, not a silent default)
    and non-finite numbers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Count = Annotated[int, Field(ge=1)]
DATASET_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
"""A dataset name is one folder under the data root: letters, digits, '.', '_' and '-', not
starting with '.' (so never '', '.', '..' or a path)."""
DatasetName = Annotated[str, Field(pattern=DATASET_NAME)]


def _metal(symbol: str) -> str:
    """A symbol with an ambient volume (an element whose ASE reference state is fcc, bcc or hcp)."""
    from elfkit.data.metals import ambient_volume

    try:
        ambient_volume(symbol)
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"{symbol!r} is not an element with a metallic (fcc, bcc or hcp) reference state") from None
    return symbol


Metal = Annotated[str, AfterValidator(_metal)]


class LabelSettings(Strict):
    """DFT settings of the labels; see elfkit.dft.DFTSettings for units."""

    engine: Literal["qe", "gpaw"] = "qe"
    cutoff_ev: Positive = 816.0
    kspacing: Positive | None = None
    smearing_ev: NonNegative = 0.1
    scf_tolerance_ev: Positive = 1e-6


class MDParameters(Strict):
    """QE Born-Oppenheimer MD (Andersen thermostat) used only to sample configurations."""

    cutoff_ev: Positive = 408.0
    smearing_ev: NonNegative = 0.1
    timestep_fs: Positive = 0.48
    thermostat_collision_steps: Count = 20


class TrajectoryBlock(Strict):
    """Every combination of the listed densities, temperatures, starts and seeds is one trajectory."""

    natoms: Count
    rs_bohr: list[Positive] = Field(min_length=1)
    temperature_k: list[Positive] = Field(min_length=1)
    start: list[Literal["molecular", "atomic"]] = Field(min_length=1)
    seeds: list[int] = Field([1], min_length=1)
    equilibration_fs: NonNegative = 150.0
    snapshots: Count = 20
    interval_fs: Positive = 10.0


class HydrogenMDSpec(Strict):
    """Dense fluid hydrogen from BOMD trajectories; snapshots labelled with `labels`."""

    name: DatasetName
    description: str = ""
    kind: Literal["hydrogen-md"]
    labels: LabelSettings = LabelSettings()
    grid_spacing_angstrom: float = Field(0.12, gt=0, le=0.12)
    md: MDParameters = MDParameters()
    trajectories: list[TrajectoryBlock] = Field(min_length=1)
    split_stratify: Literal["rs_bohr"] | None = None
    """Metadata key whose every value gets a test and a train trajectory (elfkit.data.store.stratified_splits)."""


class FirstItems(Strict):
    """The items a partial prototype run computes before all others: those of these
    `prototypes` at these `volume_fractions` (e.g. where the models miss most) and, when
    `elements` is given, made of those elements only."""

    prototypes: list[Literal[UNARY + BINARY]] = Field(min_length=1)
    volume_fractions: list[Annotated[float, Field(gt=0, le=2)]] = Field(min_length=1)
    elements: list[Metal] | None = None

    def holds(self, item: dict) -> bool:
        """Whether the work item `item` is one of these."""
        made_of = self.elements is None or set(item["elements"]) <= set(self.elements)
        return item["prototype"] in self.prototypes and item["volume_fraction"] in self.volume_fractions and made_of


class PrototypeSpec(Strict):
    """Metal-only prototype structures at several volumes; one labelled sample per structure.

    Every element of `elements` in every `unary` prototype, and every pair of `pairs` in
    every `binary` prototype (both ways round for prototypes whose sites differ in number
    when `both_orientations`), each at every fraction of its ambient volume. `first` only
    orders the run (`elfkit.data.runner.run_order`); it adds no items and changes no key.
    """

    name: DatasetName
    description: str = ""
    kind: Literal["prototypes"]
    labels: LabelSettings = LabelSettings(engine="gpaw", cutoff_ev=400.0, kspacing=0.25, smearing_ev=0.2)
    grid_spacing_angstrom: float = Field(0.12, gt=0, le=0.12)
    volume_fractions: list[Annotated[float, Field(gt=0, le=2)]] = [1.0, 0.85, 0.72, 0.6, 0.5]
    elements: list[Metal] = []
    unary: list[Literal[UNARY]] = list(UNARY)
    pairs: list[tuple[Metal, Metal]] = []
    binary: list[Literal[BINARY]] = ["B2", "L1_0", "L1_2", "AlB2", "C15", "A15"]
    both_orientations: bool = True
    first: FirstItems | None = None
    split_stratify: Literal["elements"] | None = None
    """"elements": every element set (one element, or a pair) gets a test group, a val group when
    it has >= 4 and the rest in train (elfkit.data.store.stratified_splits)."""


class RelaxSettings(Strict):
    """QE vc-relax settings: cutoff (eV), k-point spacing (1/Å), smearing (eV), tolerances."""

    cutoff_ev: Positive = 680.0
    kspacing: Positive | None = 0.25
    smearing_ev: NonNegative = 0.1
    force_tolerance_ev_per_angstrom: Positive = 0.01
    pressure_tolerance_gpa: Positive = 0.2


class CrystalEntry(Strict):
    """One starting structure (a file ASE reads, relative to the spec) and its target pressures."""

    name: str
    file: str
    pressures_gpa: list[float] = Field(min_length=1)
    reference: str = ""


class RelaxedCrystalSpec(Strict):
    """Crystals relaxed at target pressures and labelled; `split` fixes one split for all
    samples (e.g. 'test' for a transfer set that is never trained on)."""

    name: DatasetName
    description: str = ""
    kind: Literal["relaxed-crystals"]
    labels: LabelSettings = LabelSettings(kspacing=0.2)
    relax: RelaxSettings = RelaxSettings()
    grid_spacing_angstrom: float = Field(0.12, gt=0, le=0.12)
    split: Literal["train", "val", "test"] | None = None
    structures: list[CrystalEntry] = Field(min_length=1)


DatasetSpec = Annotated[Union[HydrogenMDSpec, PrototypeSpec, RelaxedCrystalSpec], Field(discriminator="kind")]
SPEC_ADAPTER = TypeAdapter(DatasetSpec)


def load_spec(path: str | Path) -> DatasetSpec:
    """Read and validate a YAML spec; DatasetError with the first problem if invalid."""
    from elfkit.yamlfile import load_yaml

    spec = load_yaml(path, SPEC_ADAPTER.validate_python, DatasetError, "spec")
    if spec.kind == "relaxed-crystals":
        _resolve_structure_files(spec, Path(path).parent)
    return spec


def _resolve_structure_files(spec, folder: Path) -> None:
    """Make each crystal's file path absolute (relative ones are relative to the spec) and check it reads."""
    from elfkit.io import read_structure

    for entry in spec.structures:
        entry.file = str((folder / entry.file).resolve())
        read_structure(entry.file)


def _key(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def work_items(spec) -> list[dict]:
    """Independent work items of a spec, each with a stable 'key'."""
    if spec.kind == "prototypes":
        return _prototype_items(spec)
    if spec.kind == "relaxed-crystals":
        return _crystal_items(spec)
    items = []
    for block in spec.trajectories:
        for rs, temperature, start, seed in itertools.product(block.rs_bohr, block.temperature_k, block.start, block.seeds):
            params = {
                "natoms": block.natoms,
                "rs_bohr": rs,
                "temperature_k": temperature,
                "start": start,
                "seed": seed,
                "equilibration_fs": block.equilibration_fs,
                "snapshots": block.snapshots,
                "interval_fs": block.interval_fs,
            }
            settings = {"labels": spec.labels.model_dump(), "md": spec.md.model_dump(), "spacing": spec.grid_spacing_angstrom}
            items.append({**params, "key": _key({**params, **settings})})
    return items


def _prototype_items(spec: PrototypeSpec) -> list[dict]:
    settings = {"labels": spec.labels.model_dump(), "spacing": spec.grid_spacing_angstrom}
    parents = [(p, [e]) for e in spec.elements for p in spec.unary]
    for a, b in spec.pairs:
        for prototype in spec.binary:
            parents.append((prototype, [a, b]))
            if spec.both_orientations and prototype not in ("B2", "L1_0"):
                parents.append((prototype, [b, a]))
    items = []
    for prototype, elements in parents:
        natoms = len(build(prototype, elements, 1.0))
        for fraction in spec.volume_fractions:
            params = {"prototype": prototype, "elements": elements, "volume_fraction": fraction}
            items.append({**params, "natoms": natoms, "key": _key({**params, **settings})})
    return items


def _crystal_items(spec: RelaxedCrystalSpec) -> list[dict]:
    from elfkit.io import read_structure

    settings = {"labels": spec.labels.model_dump(), "relax": spec.relax.model_dump(), "spacing": spec.grid_spacing_angstrom}
    items = []
    for entry in spec.structures:
        atoms = read_structure(entry.file)
        structure = {
            "numbers": atoms.numbers.tolist(),
            "positions": np.round(atoms.positions, 8).tolist(),
            "cell": np.round(atoms.cell.array, 8).tolist(),
        }
        for pressure in entry.pressures_gpa:
            params = {"name": entry.name, "pressure_gpa": pressure, "reference": entry.reference, **structure}
            items.append({**params, "key": _key({**params, **settings})})
    return items
