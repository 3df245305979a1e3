"""File helpers shared by the readers and writers: gzip transparency and atomic writes."""

from __future__ import annotations

import gzip
import os
import re
import tempfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from elfkit.errors import FieldFormatError
from elfkit.field import QUANTITIES
from elfkit.io.outputs import check_input_file

_QUANTITY_TAG = re.compile(r"elfkit quantity=(\w+)")


def base_name(path: str | Path) -> str:
    """File name without a trailing .gz, used to pick the format."""
    name = Path(path).name
    return name[:-3] if name.lower().endswith(".gz") else name


def read_text(path: str | Path) -> str:
    """Whole text of a (possibly gzipped) file; FieldFormatError if missing or empty."""
    path = check_input_file(path, FieldFormatError)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt") as handle:
            text = handle.read()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise FieldFormatError(f"{path}: cannot read the file as text ({reason})") from None
    if not text.strip():
        raise FieldFormatError(f"{path}: the file is empty")
    return text


@contextmanager
def atomic_output(path: str | Path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    A failure (or a kill) never leaves a partial file at `path`.
    """
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise FieldFormatError(f"{path}: the folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def atomic_text_output(path: str | Path):
    """Yield a text handle whose content lands at `path` only when the block succeeds;
    gzip-compressed when the name of `path` ends in .gz."""
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    with atomic_output(path) as tmp, opener(tmp, "wt") as handle:
        yield handle


def write_values(handle, flat: np.ndarray, per_line: int, fmt: str) -> None:
    """Write a 1D array as text, `per_line` values per line, each formatted with `fmt`."""
    full = flat.size // per_line * per_line
    if full:
        np.savetxt(handle, flat[:full].reshape(-1, per_line), fmt=fmt, delimiter=" ")
    if full < flat.size:
        handle.write(" ".join(fmt % v for v in flat[full:]) + "\n")


def tagged_quantity(text: str, default: str) -> str:
    """The quantity an elfkit-written file names in its first lines, else `default`."""
    tag = _QUANTITY_TAG.search(text[:500])
    return tag.group(1) if tag and tag.group(1) in QUANTITIES else default
