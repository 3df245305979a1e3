"""YAML input files (dataset specs, training configs) validated by pydantic, with one-line errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from elfkit.errors import ElfkitError

T = TypeVar("T")


def load_yaml(path: str | Path, validate: Callable[[object], T], error: type[ElfkitError], what: str) -> T:
    """Read the YAML file at `path` and validate it with `validate` (a pydantic validator);
    `error` with one line naming the file and the first problem if it is missing, not text,
    not YAML or not a valid `what`."""
    import yaml

    from elfkit.io.outputs import check_input_file

    path = check_input_file(path, error)
    try:
        return validate(yaml.safe_load(path.read_text()))
    except UnicodeDecodeError:
        raise error(f"{path}: not a text (YAML) file") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        raise error(f"{path}: invalid {what} at {where}: {first['msg']}") from None
