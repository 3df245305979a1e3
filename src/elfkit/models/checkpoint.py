"""The one model file format: safetensors weights with elfkit's metadata inside, and its loader.

A model file `NAME.safetensors` holds the float32 weights and, in the safetensors header,
one JSON string under the key "elfkit": the format version, architecture and its config,
the input channels, the elfkit version, the SAD table hash, the datasets (manifest hashes
and split counts), the training config, time and steps, and the held-out metrics. Shipped
models live in `elfkit/models/shipped/` and are loaded by name, offline.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

from torch import nn

from elfkit.errors import ElfkitError
from elfkit.features import FeatureSet, features_of
from elfkit.sad import ENGINE_VALENCE_TABLE, PSEUDO_ATOM_TABLE

FORMAT_VERSION = 1
_KEY = "elfkit"


class CheckpointError(ElfkitError):
    """A model file is missing, corrupt or incompatible with this elfkit."""


@dataclass
class LoadedModel:
    """A network ready for inference (eval mode) and its metadata."""

    net: nn.Module
    metadata: dict
    source: str

    @property
    def name(self) -> str:
        """The model's name (from its metadata)."""
        return self.metadata.get("name", Path(self.source).stem)

    @cached_property
    def sha256(self) -> str:
        """SHA-256 (16 hex digits) of the model file: which weights a number came from."""
        return hashlib.sha256(Path(self.source).read_bytes()).hexdigest()[:16]


def sad_table_hash(table: str = "sad_densities.npz") -> str:
    """SHA-256 (16 hex digits) of a packaged free-atom density table the features use."""
    data = resources.files("elfkit.atomdata").joinpath(table).read_bytes()
    return hashlib.sha256(data).hexdigest()[:16]


def _reads_engine_table(config: dict) -> bool:
    return features_of(config) != FeatureSet.SAD


def _reads_pseudo_atoms(config: dict) -> bool:
    return features_of(config) == FeatureSet.SAD_ENGINE_PSEUDO_ATOMS


def save_model(path: str | Path, net: nn.Module, metadata: dict) -> Path:
    """Write weights and metadata to `path` (.safetensors), atomically."""
    from safetensors.torch import save_file

    from elfkit.io._files import atomic_output

    header = {
        "format_version": FORMAT_VERSION,
        "architecture": metadata["architecture"],
        "config": net.config,
        "channels": list(net.input_channels),
        "sad_table": sad_table_hash(),
        **metadata,
    }
    if _reads_engine_table(net.config):
        header["engine_valence_table"] = sad_table_hash(ENGINE_VALENCE_TABLE)
    if _reads_pseudo_atoms(net.config):
        header["pseudo_atom_table"] = sad_table_hash(PSEUDO_ATOM_TABLE)
    tensors = {name: t.detach().cpu().float().contiguous() for name, t in net.state_dict().items()}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata={_KEY: json.dumps(header)})
    return Path(path)


def shipped_models() -> dict[str, Path]:
    """Name -> file of every model shipped inside the package."""
    folder = resources.files("elfkit.models").joinpath("shipped")
    if not folder.is_dir():
        return {}
    return {Path(p.name).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".safetensors")}


def resolve(model: str | Path) -> Path:
    """The file of a shipped model name or a path; CheckpointError if neither exists."""
    shipped = shipped_models()
    if str(model) in shipped:
        return shipped[str(model)]
    path = Path(model)
    if path.is_file():
        return path
    names = ", ".join(sorted(shipped)) or "none"
    raise CheckpointError(f"{model}: no such model file or shipped model (shipped: {names})")


def load_model(model: str | Path) -> LoadedModel:
    """Load a shipped model by name or a model file; CheckpointError naming the file if it is
    corrupt, from another format version, or made for other input channels or SAD table."""
    from safetensors import SafetensorError, safe_open

    from elfkit.models import build

    path = resolve(model)
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = json.loads((handle.metadata() or {})[_KEY])
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not an elfkit model file ({type(exc).__name__})") from None
    _check_compatible(path, header)
    try:
        net = build(header["architecture"], **header["config"])
    except (ElfkitError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: its architecture cannot be built here ({exc})") from None
    if header.get("channels") != list(net.input_channels):
        raise CheckpointError(f"{path}: made for other input channels than this elfkit computes")
    try:
        net.load_state_dict(tensors)
    except RuntimeError:
        raise CheckpointError(f"{path}: its weights do not fit its architecture") from None
    return LoadedModel(net.eval(), header, str(path))


def _check_compatible(path: Path, header: dict) -> None:
    if header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: model format {header.get('format_version')}, this elfkit reads {FORMAT_VERSION}")
    if header.get("sad_table") != sad_table_hash():
        raise CheckpointError(f"{path}: made with another SAD table than this elfkit's")
    if _reads_engine_table(header.get("config", {})) and header.get("engine_valence_table") != sad_table_hash(ENGINE_VALENCE_TABLE):
        raise CheckpointError(f"{path}: made with another engine-valence density table than this elfkit's")
    if _reads_pseudo_atoms(header.get("config", {})) and header.get("pseudo_atom_table") != sad_table_hash(PSEUDO_ATOM_TABLE):
        raise CheckpointError(f"{path}: made with another pseudo-atom table than this elfkit's")
