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

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from elfkit.data.store import DatasetError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelSettings(Strict):
    """DFT settings of the labels; see elfkit.dft.DFTSettings for units."""

    engine: Literal["qe", "gpaw"] = "qe"
    cutoff_ev: float = 816.0
    kspacing: float | None = None
    smearing_ev: float = 0.1
    scf_tolerance_ev: float = 1e-6


class MDParameters(Strict):
    """QE Born-Oppenheimer MD (Andersen thermostat) used only to sample configurations."""

    cutoff_ev: float = 408.0
    smearing_ev: float = 0.1
    timestep_fs: float = 0.48
    thermostat_collision_steps: int = 20


class TrajectoryBlock(Strict):
    """Every combination of the listed densities, temperatures, starts and seeds is one trajectory."""

    natoms: int
    rs_bohr: list[float]
    temperature_k: list[float]
    start: list[Literal["molecular", "atomic"]]
    seeds: list[int] = [1]
    equilibration_fs: float = 150.0
    snapshots: int = 20
    interval_fs: float = 10.0


class HydrogenMDSpec(Strict):
    """Dense fluid hydrogen from BOMD trajectories; snapshots labelled with `labels`."""

    name: str
    description: str = ""
    kind: Literal["hydrogen-md"]
    labels: LabelSettings = LabelSettings()
    grid_spacing_angstrom: float = Field(0.12, gt=0, le=0.12)
    md: MDParameters = MDParameters()
    trajectories: list[TrajectoryBlock]


class PrototypeSpec(Strict):
    """Metal-only prototype structures at several volumes; one labelled sample per structure.

    Every element of `elements` in every `unary` prototype, and every pair of `pairs` in
    every `binary` prototype (both ways round for prototypes whose sites differ in number
    when `both_orientations`), each at every fraction of its ambient volume.
    """

    name: str
    description: str = ""
    kind: Literal["prototypes"]
    labels: LabelSettings = LabelSettings(engine="gpaw", cutoff_ev=400.0, kspacing=0.25, smearing_ev=0.2)
    grid_spacing_angstrom: float = Field(0.12, gt=0, le=0.12)
    volume_fractions: list[float] = [1.0, 0.85, 0.72, 0.6, 0.5]
    elements: list[str] = []
    unary: list[Literal["fcc", "bcc", "hcp", "sc"]] = ["fcc", "bcc", "hcp", "sc"]
    pairs: list[tuple[str, str]] = []
    binary: list[Literal["B2", "L1_0", "L1_2", "AlB2", "C15", "A15"]] = ["B2", "L1_0", "L1_2", "AlB2", "C15", "A15"]
    both_orientations: bool = True


DatasetSpec = Annotated[Union[HydrogenMDSpec, PrototypeSpec], Field(discriminator="kind")]
SPEC_ADAPTER = TypeAdapter(DatasetSpec)


def load_spec(path: str | Path) -> DatasetSpec:
    """Read and validate a YAML spec; DatasetError with the first problem if invalid."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such spec file")
    try:
        raw = yaml.safe_load(path.read_text())
        return SPEC_ADAPTER.validate_python(raw)
    except yaml.YAMLError as exc:
        raise DatasetError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DatasetError(f"{path}: invalid spec at {where or 'top level'}: {first['msg']}") from None


def _key(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def work_items(spec) -> list[dict]:
    """Independent work items of a spec, each with a stable 'key'."""
    if spec.kind == "prototypes":
        return _prototype_items(spec)
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
        for fraction in spec.volume_fractions:
            params = {"prototype": prototype, "elements": elements, "volume_fraction": fraction}
            items.append({**params, "key": _key({**params, **settings})})
    return items
