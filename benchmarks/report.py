"""Shared output of the benchmark scripts: print the result as JSON and optionally save it."""

from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict, out: Path | None) -> None:
    """Print `result` as indented JSON and write it to `out` when given."""
    text = json.dumps(result, indent=2)
    print(text, flush=True)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
