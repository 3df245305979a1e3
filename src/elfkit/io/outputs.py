"""Checks of output paths before any work starts, and folders whose files appear only together.

Every command checks all of its outputs with these before it reads big inputs or computes,
so that a wrong -o never costs an SCF, and writes files through `atomic_output` (one file)
or `staged_folder` (several), so that a failure or a kill leaves no partial output.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from elfkit.errors import ElfkitError, OutputError

_STAGING_SUFFIX = ".12345678.part"
"""Length of what atomic writes add to a name (`.<name>.<random>.part`), checked in advance."""


def check_output_file(path: str | Path) -> Path:
    """OutputError unless a file can be written at `path`: its folder exists and is writable,
    `path` is not a folder, and its name (with the temporary suffix of an atomic write) fits
    the file system. Returns `path` as a Path. Creates nothing."""
    path = Path(path)
    if not path.name or path.name in (".", ".."):
        raise OutputError(f"{path}: not a file name")
    folder = path.parent
    _check_name_length(path, folder)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name")
    if not folder.exists():
        raise OutputError(f"{path}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"{path}: {folder} is not a folder")
    _probe(folder, path)
    return path


def check_output_folder(path: str | Path) -> Path:
    """OutputError unless `path` is a writable folder or can be made one (its nearest existing
    parent is a writable folder and no file is in the way). Returns `path`. Creates nothing."""
    path = Path(path)
    _check_name_length(path, path.parent)
    existing = path
    while not _exists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{path}: {existing} is a file, not a folder")
    _probe(existing, path)
    return path


def _probe(folder: Path, path: Path) -> None:
    """Create and remove a hidden file in `folder`: the only test of writability that also holds
    for root, read-only mounts and pseudo file systems."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".elfkit-probe.", dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write in {folder} ({exc.strerror or exc})") from None


def check_input_file(path: str | Path, error: type[ElfkitError] = ElfkitError) -> Path:
    """`error` naming `path` unless it is a readable file (not missing, not a folder, name not
    too long for the file system). Returns `path` as a Path."""
    path = Path(path)
    try:
        is_file, exists = path.is_file(), path.exists()
    except OSError as exc:
        raise error(f"{str(path)[:60]}...: cannot open ({exc.strerror or exc})") from None
    if not is_file:
        raise error(f"{path}: {'not a file' if exists else 'no such file'}")
    if not os.access(path, os.R_OK):
        raise error(f"{path}: no permission to read it")
    return path


def _check_name_length(path: Path, folder: Path) -> None:
    existing = folder
    while not _exists(existing) and existing != existing.parent:
        existing = existing.parent
    name_max = _pathconf(existing, "PC_NAME_MAX", 255)
    path_max = _pathconf(existing, "PC_PATH_MAX", 4096)
    if len(os.fsencode("." + path.name + _STAGING_SUFFIX)) > name_max:
        raise OutputError(f"{str(path)[:60]}...: the file name is too long (at most {name_max - len(_STAGING_SUFFIX) - 1} bytes)")
    if len(os.fsencode(str(path.absolute()))) + len(_STAGING_SUFFIX) + 1 > path_max:
        raise OutputError(f"{str(path)[:60]}...: the path is too long (at most {path_max} bytes)")


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def _pathconf(folder: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(folder, name)
    except (OSError, ValueError):
        return default


@contextmanager
def staged_folder(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; when the block succeeds, move its files
    into the folder `path` (created if needed, files of the same name replaced). When the
    block fails, nothing appears at `path` and the temporary folder is removed."""
    path = Path(check_output_folder(path))
    anchor = path
    while not anchor.exists():
        anchor = anchor.parent
    stage = Path(tempfile.mkdtemp(prefix=f".{path.name or 'output'}.", suffix=".part", dir=anchor))
    try:
        yield stage
        path.mkdir(parents=True, exist_ok=True)
        for made in sorted(stage.iterdir()):
            os.replace(made, path / made.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
