"""Reference datasets: specs, resumable generation, sharded storage, streaming access.

    import elfkit.data
    for sample in elfkit.data.open("hydrogen-fluid", split="train"):
        sample.atoms, sample.elf, sample.pressure_gpa
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from elfkit.data.store import DatasetError, Sample, data_root, iter_samples, load_manifest

__all__ = ["open", "list_datasets", "Dataset", "Sample", "DatasetError", "data_root"]


class Dataset:
    """A dataset folder; iterating streams Samples one shard at a time."""

    def __init__(self, folder: Path, split: str | None = None):
        self.folder = Path(folder)
        self.split = split
        self.manifest = load_manifest(self.folder)

    @property
    def name(self) -> str:
        """Dataset name (the folder's when the manifest names none)."""
        return self.manifest.get("name", self.folder.name)

    def rows(self) -> list[dict]:
        """Manifest rows of the selected split."""
        return [r for r in self.manifest["samples"] if self.split is None or r["split"] == self.split]

    def __len__(self) -> int:
        return len(self.rows())

    def __iter__(self) -> Iterator[Sample]:
        return iter_samples(self.folder, self.split)


def open(name: str, split: str | None = None, root: Path | None = None) -> Dataset:  # noqa: A001
    """Open a dataset by name (under $ELFKIT_DATA_DIR or the checkout's datasets/)."""
    if split not in (None, "train", "val", "test"):
        raise DatasetError(f"unknown split {split!r}; use train, val or test")
    check_dataset_name(name)
    return Dataset((root or data_root()) / name, split)


def check_dataset_name(name: str) -> None:
    """DatasetError unless `name` is one folder under the data root (see spec.DATASET_NAME)."""
    import re

    from elfkit.data.spec import DATASET_NAME

    if not re.fullmatch(DATASET_NAME, name):
        raise DatasetError(
            f"{name!r}: not a dataset name (letters, digits, '.', '_' and '-', not starting with '.'; no paths)"
        )


def summary(dataset: Dataset) -> dict:
    """Name, count, split counts, pressure (GPa) and temperature (K) ranges of a dataset."""
    rows = dataset.rows()
    pressures = [r["pressure_gpa"] for r in rows if r.get("pressure_gpa") is not None]
    temperatures = [r["temperature_k"] for r in rows if r.get("temperature_k") is not None]
    return {
        "name": dataset.name,
        "kind": dataset.manifest.get("kind"),
        "count": len(rows),
        "groups": len({r["group"] for r in rows}),
        "splits": {s: sum(r["split"] == s for r in rows) for s in ("train", "val", "test")},
        "pressure_gpa": [min(pressures), max(pressures)] if pressures else None,
        "temperature_k": [min(temperatures), max(temperatures)] if temperatures else None,
        "engine": dataset.manifest.get("labels", {}).get("engine"),
        "labels": dataset.manifest.get("labels"),
        "grid_spacing_angstrom": dataset.manifest.get("grid_spacing_angstrom"),
        "cross_engine_elf_mae": _cross_engine_mae(dataset.folder, "elf_mae"),
        "cross_engine_elf_mae_judged": _cross_engine_mae(dataset.folder, "elf_mae_judged"),
    }


def _cross_engine_mae(folder: Path, field: str) -> float | None:
    """Mean ELF difference to the other engine over the samples `data validate` recomputed:
    field 'elf_mae' over the whole cell, 'elf_mae_judged' outside the pseudisation spheres
    (see elfkit.dft.crosscheck). None without a report (or one older than the field)."""
    import json

    path = folder / "validation.json"
    if not path.is_file():
        return None
    rows = [r for r in json.loads(path.read_text())["cross_engine"]["samples"] if "skipped" not in r]
    if not rows or any(field not in r for r in rows):
        return None
    return round(sum(r[field] for r in rows) / len(rows), 4)


def list_datasets(root: Path | None = None) -> list[dict]:
    """Summary of every dataset folder under the data root."""
    root = root or data_root()
    if not root.is_dir():
        return []
    folders = sorted(p for p in root.iterdir() if (p / "manifest.json").is_file())
    return [summary(Dataset(p)) for p in folders]


