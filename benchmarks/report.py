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


def add_report_options(parser) -> None:
    """--out (save the report, resume from it) and --markdown (print a saved report's table)."""
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None, help="print the table of a saved report and stop")


def saved_report(out: Path | None) -> dict:
    """The report saved at `out` by an earlier (maybe killed) run, or an empty one."""
    return json.loads(out.read_text()) if out and out.exists() else {}
