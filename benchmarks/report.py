"""Shared output of the benchmark scripts: print the result as JSON and optionally save it."""

from __future__ import annotations

import json
from pathlib import Path

from elfkit.io._files import atomic_text_output


def emit(result: dict, out: Path | None, quiet: bool = False) -> None:
    """Print `result` as indented JSON (unless `quiet`) and write it to `out` when given."""
    text = json.dumps(result, indent=2)
    if not quiet:
        print(text, flush=True)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_text_output(out) as handle:
            handle.write(text + "\n")
