"""Datasets on disk: finished work items, compacted shards, and a manifest.

    <root>/<name>/
      spec.yaml          the generation spec (copied on every run)
      items/<key>.npz    one finished work item, written then renamed (never partial)
      shards/shard-NNNN.npz  compacted items, written then renamed
      manifest.json      one row per sample; rebuilt from the shards and items
      failures.jsonl     work items that failed, with their reasons

ELF values are stored as 12-bit fixed point (absolute error <= 1.2e-4, finer than float16
above ELF 0.25), delta-encoded along the fastest axis, byte-shuffled and LZMA-compressed:
about 1.2 bytes per grid point for dense-hydrogen ELF, against 1.75 for zlib'd float16.

A sample holds the structure (Å), the ELF on its grid, energy (eV), pressure
(GPa), temperature (K, or null), its group (trajectory or parent structure: the unit of
the train/val/test split) and the engine metadata.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from elfkit.errors import ElfkitError
from elfkit.io._files import atomic_output, atomic_text_output

SPLITS = ("train", "val", "test")
ELF_LEVELS = 4095


def encode_elf(elf: np.ndarray) -> np.ndarray:
    """ELF (dimensionless, [0, 1]) -> compressed bytes (see the module docstring)."""
    codes = np.round(np.clip(elf, 0.0, 1.0) * ELF_LEVELS).astype(np.int16)
    delta = np.diff(codes, axis=-1, prepend=np.int16(0)).astype("<i2")
    planes = np.frombuffer(delta.tobytes(), np.uint8).reshape(-1, 2).T.tobytes()
    return np.frombuffer(lzma.compress(planes, preset=9), dtype=np.uint8)


def decode_elf(blob: np.ndarray, shape) -> np.ndarray:
    """Inverse of encode_elf: float32 ELF of the given grid shape."""
    planes = np.frombuffer(lzma.decompress(blob.tobytes()), np.uint8).reshape(2, -1)
    delta = np.frombuffer(planes.T.tobytes(), dtype="<i2").reshape(shape)
    return (np.cumsum(delta, axis=-1, dtype=np.int32) / ELF_LEVELS).astype(np.float32)


class DatasetError(ElfkitError):
    """A dataset is missing, corrupt or inconsistent."""


def data_root() -> Path:
    """Folder that holds the datasets: $ELFKIT_DATA_DIR, else `datasets/` of this checkout."""
    env = os.environ.get("ELFKIT_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "datasets"


def structure_hash(atoms: Atoms) -> str:
    """Stable 16-hex-digit hash of numbers, cell (rounded to 1e-5 Å) and wrapped fractional
    positions (rounded to 1e-5)."""
    digest = hashlib.sha256()
    digest.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    digest.update(np.round(atoms.cell.array, 5).tobytes())
    digest.update(np.round(np.mod(atoms.get_scaled_positions(wrap=False), 1.0), 5).tobytes())
    return digest.hexdigest()[:16]


def _group_hash(group: str) -> float:
    return int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) / 2**32


def split_of(group: str, val: float = 0.1, test: float = 0.1) -> str:
    """Deterministic split of a group (never of a single sample): hash -> [0, 1) -> split."""
    u = _group_hash(group)
    return "test" if u < test else "val" if u < test + val else "train"


STRATIFIED_SPLIT_RULE = (
    "by group (trajectory or parent structure), stratified by {key}: within each value of {key} the groups "
    "are ordered by sha256(group); the first goes to test, the second to val when there are at least 4, "
    "the rest to train"
)


def stratified_splits(group_strata: dict[str, object]) -> dict[str, str]:
    """Split of each group so that every stratum (e.g. a density rs) has at least one group in
    test and, with two or more groups, one in train; val gets one group of strata with >= 4.
    `group_strata` maps group -> stratum value. Deterministic (sha256 of the group name)."""
    by_stratum: dict[object, list[str]] = {}
    for group, stratum in group_strata.items():
        by_stratum.setdefault(stratum, []).append(group)
    splits = {}
    for groups in by_stratum.values():
        ordered = sorted(groups, key=_group_hash)
        for rank, group in enumerate(ordered):
            splits[group] = "test" if rank == 0 else "val" if rank == 1 and len(ordered) >= 4 else "train"
    return splits


@dataclass
class Sample:
    """One labelled structure. ELF dimensionless on the elfkit grid of `atoms.cell`."""

    atoms: Atoms
    elf: np.ndarray
    energy_ev: float
    pressure_gpa: float
    group: str
    temperature_k: float | None = None
    stress_gpa: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)
    stored_key: str | None = None
    """The key a dataset stored this sample under (set when read back, `sample_from`)."""

    @property
    def key(self) -> str:
        """The structure hash; for a sample read from a dataset, the key stored with it: hashing
        the read-back positions again can flip a digit rounded at the 1e-5 edge (fractional
        coordinates solved on another BLAS), and a key must name the same sample everywhere."""
        return self.stored_key or structure_hash(self.atoms)

    def row(self) -> dict:
        """Manifest row (without split and shard)."""
        return {
            "key": self.key,
            "formula": self.atoms.get_chemical_formula(mode="hill"),
            "natoms": len(self.atoms),
            "cell": np.round(self.atoms.cell.array, 6).tolist(),
            "grid": list(self.elf.shape),
            "energy_ev": self.energy_ev,
            "pressure_gpa": self.pressure_gpa,
            "temperature_k": self.temperature_k,
            "group": self.group,
            **{k: v for k, v in self.metadata.items() if k in ("engine", "engine_version", "settings_id")},
        }


def _pack(samples: list[Sample]) -> dict[str, np.ndarray]:
    arrays, rows = {}, []
    for sample in samples:
        k = sample.key
        arrays[f"{k}.elf"] = encode_elf(sample.elf)
        arrays[f"{k}.shape"] = np.array(sample.elf.shape)
        arrays[f"{k}.numbers"] = sample.atoms.numbers.astype(np.int16)
        arrays[f"{k}.positions"] = sample.atoms.positions
        arrays[f"{k}.cell"] = sample.atoms.cell.array
        arrays[f"{k}.stress"] = np.zeros((3, 3)) if sample.stress_gpa is None else np.asarray(sample.stress_gpa)
        rows.append({**sample.row(), "metadata": sample.metadata})
    arrays["index"] = np.array(json.dumps(rows))
    return arrays


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def save_samples(path: Path, samples: list[Sample]) -> None:
    """Write samples to one .npz file atomically (the item/shard format)."""
    _write_npz(path, _pack(samples))


def load_samples(path: Path) -> list[Sample]:
    """Read the samples of one .npz file written by `save_samples`; DatasetError if corrupt."""
    rows, arrays = read_archive(path)
    return [sample_from(row, arrays) for row in rows]


def read_archive(path: Path) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Index rows and arrays of an item or shard file; DatasetError if it is corrupt."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        return json.loads(str(arrays.pop("index"))), arrays
    except Exception as exc:
        raise DatasetError(f"{path}: corrupt dataset file ({type(exc).__name__}: {exc})") from None


def read_index(path: Path) -> list[dict]:
    """Only the index rows of an item or shard file (cheap); DatasetError if corrupt."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return json.loads(str(archive["index"]))
    except Exception as exc:
        raise DatasetError(f"{path}: corrupt dataset file ({type(exc).__name__}: {exc})") from None


def sample_from(row: dict, arrays: dict[str, np.ndarray]) -> Sample:
    """Rebuild a Sample from its index row and arrays."""
    k = row["key"]
    atoms = Atoms(numbers=arrays[f"{k}.numbers"], positions=arrays[f"{k}.positions"], cell=arrays[f"{k}.cell"], pbc=True)
    return Sample(
        atoms=atoms,
        elf=decode_elf(arrays[f"{k}.elf"], tuple(arrays[f"{k}.shape"])),
        energy_ev=row["energy_ev"],
        pressure_gpa=row["pressure_gpa"],
        group=row["group"],
        temperature_k=row["temperature_k"],
        stress_gpa=arrays[f"{k}.stress"],
        metadata=row.get("metadata", {}),
        stored_key=k,
    )


TOPUP_BYTES = 2_000_000
"""A shard stops taking new samples once it is this large on disk (bytes)."""


class DatasetStore:
    """Write side of one dataset folder (see the module docstring for the layout)."""

    def __init__(self, folder: Path, shard_size: int = 256):
        self.folder = Path(folder)
        self.shard_size = shard_size
        (self.folder / "items").mkdir(parents=True, exist_ok=True)
        (self.folder / "shards").mkdir(parents=True, exist_ok=True)
        for stale in self.folder.rglob(".*.part"):
            stale.unlink()

    def _item_files(self) -> list[Path]:
        return sorted((self.folder / "items").glob("*.npz"))

    def _shard_files(self) -> list[Path]:
        return sorted((self.folder / "shards").glob("shard-*.npz"))

    def done_items(self) -> set[str]:
        """Keys of the work items already finished (in item files or compacted shards)."""
        done = {p.stem for p in self._item_files()}
        for shard in self._shard_files():
            done.update(row["metadata"].get("item", "") for row in read_index(shard))
        return done

    def write_item(self, item_key: str, samples: list[Sample]) -> None:
        """Store the samples of one finished work item atomically."""
        for sample in samples:
            sample.metadata["item"] = item_key
        save_samples(self.folder / "items" / f"{item_key}.npz", samples)

    def log_failure(self, item_key: str, reason: str) -> None:
        """Append one line naming a failed work item and why."""
        with open(self.folder / "failures.jsonl", "a") as handle:
            handle.write(json.dumps({"item": item_key, "reason": reason}) + "\n")

    def _has_room(self, shard: Path) -> bool:
        """Whether new samples may top up `shard`: below `shard_size` samples and
        TOPUP_BYTES on disk (each top-up rewrites the file, which git keeps forever)."""
        return shard.stat().st_size < TOPUP_BYTES and len(read_index(shard)) < self.shard_size

    def _next_shard(self) -> int:
        numbers = [int(path.stem.split("-")[1]) for path in self._shard_files()]
        return max(numbers, default=-1) + 1

    def compact(self) -> None:
        """Move item files into shards of at most `shard_size` samples, topping up the last
        shard first while it is small (rewritten atomically); safe to interrupt and rerun."""
        shards = self._shard_files()
        in_shards = {row["key"] for shard in shards for row in read_index(shard)}
        items = self._item_files()
        pending = [s for p in items for s in load_samples(p) if s.key not in in_shards]
        if pending and shards and self._has_room(shards[-1]):
            last = load_samples(shards[-1])
            room = self.shard_size - len(last)
            save_samples(shards[-1], last + pending[:room])
            pending = pending[room:]
        self._write_shards(pending)
        for path in items:
            path.unlink()

    def repack(self) -> None:
        """Rewrite every sample into full shards of `shard_size` (dropping duplicate
        structures), then remove the old shards. A run killed midway leaves duplicates,
        which the manifest ignores and the next repack removes."""
        old = self._shard_files()
        samples = {}
        for shard in old:
            for sample in load_samples(shard):
                samples.setdefault(sample.key, sample)
        self._write_shards(list(samples.values()))
        for path in old:
            path.unlink()

    def _write_shards(self, samples: list[Sample]) -> None:
        number = self._next_shard()
        for start in range(0, len(samples), self.shard_size):
            save_samples(self.folder / "shards" / f"shard-{number:04d}.npz", samples[start : start + self.shard_size])
            number += 1

    def write_manifest(self, extra: dict, fixed_split: str | None = None, stratify: str | None = None) -> dict:
        """Rebuild manifest.json from every shard and item file; returns it. `fixed_split`
        puts every sample in one split (a transfer set); `stratify` (a metadata key such as
        'rs_bohr') splits with `stratified_splits`; otherwise split_of(group) decides.
        A structure stored twice (a repack killed midway) is listed once."""
        located, seen = [], set()
        for path in self._shard_files() + self._item_files():
            for row in read_index(path):
                if row["key"] not in seen:
                    seen.add(row["key"])
                    located.append((row, path.relative_to(self.folder).as_posix()))
        if stratify:
            splits = stratified_splits({row["group"]: _stratum(row, stratify) for row, _ in located})
            extra = {**extra, "split_rule": STRATIFIED_SPLIT_RULE.format(key=stratify)}
        else:
            splits = {row["group"]: split_of(row["group"]) for row, _ in located}
        rows = [{**row, "split": fixed_split or splits[row["group"]], "shard": shard} for row, shard in located]
        manifest = {**extra, "count": len(rows), "samples": rows}
        with atomic_text_output(self.folder / "manifest.json") as handle:
            json.dump(manifest, handle, indent=1)
        return manifest


def _stratum(row: dict, key: str):
    """The value a stratified split groups `row` by: its element set ("Ca-Y") for "elements",
    else its metadata value of `key` (e.g. the density rs_bohr)."""
    if key == "elements":
        return "-".join(sorted(set(re.findall(r"[A-Z][a-z]?", row["formula"]))))
    return row["metadata"].get(key)


def iter_samples(folder: Path, split: str | None = None) -> Iterator[Sample]:
    """Stream the samples of a dataset folder shard by shard (one shard in memory at a time)."""
    manifest = load_manifest(folder)
    wanted = {(row["key"], row["shard"]) for row in manifest["samples"] if split is None or row["split"] == split}
    for shard in sorted({shard for _, shard in wanted}):
        rows, arrays = read_archive(folder / shard)
        for row in rows:
            if (row["key"], shard) in wanted:
                yield sample_from(row, arrays)


def load_manifest(folder: Path) -> dict:
    """The manifest of a dataset folder; DatasetError if missing or corrupt."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise DatasetError(f"{folder}: no dataset here (no manifest.json)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: corrupt manifest ({' '.join(str(exc).split())[:120]})") from None
    _check_manifest(manifest, path)
    return manifest


_MANIFEST_ROW_KEYS = ("key", "group", "split", "shard")


def _check_manifest(manifest, path: Path) -> None:
    """DatasetError unless `manifest` is an object with a list of sample rows with their keys."""
    rows = manifest.get("samples") if isinstance(manifest, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DatasetError(f"{path}: corrupt manifest (no list of samples)")
    for number, row in enumerate(rows, 1):
        missing = [key for key in _MANIFEST_ROW_KEYS if key not in row]
        if missing:
            raise DatasetError(f"{path}: corrupt manifest (sample {number} has no {', '.join(missing)})")
