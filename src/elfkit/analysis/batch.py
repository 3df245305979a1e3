"""The topology of many frames, one row each: ELF files as given, or the frames of structure
files (an MD trajectory) whose ELF a model predicts first. `elfkit topology` with several
inputs, a multi-frame structure file or --csv.

Each input is a `TopologyInput`: a label for messages, its ELF (a Field) or its structure
(ase Atoms, positions and cell in Å), and the source file and frame index its row names.
`topology_rows` checks every input (an ELF in [0, 1], the memory of its topology) before any
work, then analyses them (`elfkit.analysis.topology.topology`) in this process or over a local
Dask cluster of single-threaded worker processes (`elfkit.parallel`), in input order.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ase import Atoms

from elfkit.analysis.critical import DEFAULT_PERSISTENCE, LOW_DENSITY
from elfkit.field import Field
from elfkit.grid import DEFAULT_SPACING_ANGSTROM, Grid

if TYPE_CHECKING:
    from elfkit.models.checkpoint import LoadedModel

COLUMNS = {
    "source": "file the frame comes from",
    "frame": "frame index in that file (0 for a single structure or an ELF file)",
    "formula": "chemical formula of the frame (Hill order)",
    "atoms": "number of atoms",
    "volume_angstrom3": "cell volume (Å³)",
    "grid": "grid of the ELF analysed, N1xN2xN3",
    "model": "model that predicted the ELF (empty for an ELF file)",
    "networking_value": "networking value φ: highest ELF isovalue with a 3D-percolating domain (empty: none)",
    "networking_value_hydrogen": "φ of domains holding an H nucleus (empty: no H or none)",
    "molecularity_index": "highest ELF isovalue at which one domain holds two H nuclei (empty: none)",
    "dimensionality": "dimensionality of the largest ELF domain versus isovalue, e.g. '0.05-0.45 3D; 0.50-0.95 0D' (none: no domain)",
    "maxima": "ELF maxima (index 3) after cancelling pairs below persistence_threshold",
    "saddles": "index-2 saddles, (3,-1) bond points",
    "rings": "index-1 saddles, (3,+1) ring points",
    "minima": "minima (index 0)",
    "low_density_points": "critical points left out of the counts where the atoms' density is below the low-density limit",
    "morse_sum": "maxima - saddles + rings - minima over all critical points (0 for a complete set)",
    "persistence_threshold": "persistence (ELF units) below which critical-point pairs were cancelled",
}
"""The columns of a topology row and what they hold; ELF values are dimensionless."""


class TopologyInput(NamedTuple):
    """One frame to analyse: `label` names it in messages, `data` is its ELF (a Field) or its
    structure (Atoms, Å) whose ELF is predicted; `source` (default: the label) and `frame`
    fill the row's columns."""

    label: str
    data: Field | Atoms
    source: str = ""
    frame: int = 0


def grid_shape(item: TopologyInput, spacing: float = DEFAULT_SPACING_ANGSTROM) -> tuple[int, int, int]:
    """The grid of the item's ELF: its field's, or for a structure the grid of spacing at most
    `spacing` (Å) on its cell (`elfkit.grid.Grid.for_spacing`)."""
    if isinstance(item.data, Field):
        return tuple(item.data.values.shape)
    return Grid.for_spacing(item.data.cell.array, spacing).shape


def check_inputs(items: Sequence[TopologyInput], spacing: float = DEFAULT_SPACING_ANGSTROM) -> None:
    """Error naming the item's label unless every field is an ELF (`check_elf`) and the topology
    of every item's grid fits in memory (`elfkit.memory.check_memory`)."""
    from elfkit.analysis.topology import check_elf
    from elfkit.memory import check_memory

    for item in items:
        if isinstance(item.data, Field):
            check_elf(item.data, item.label)
        check_memory("topology", grid_shape(item, spacing), item.label)


def frame_elf(item: TopologyInput, model: str | Path | LoadedModel | None = None, spacing: float = DEFAULT_SPACING_ANGSTROM) -> Field:
    """The item's ELF: its field, or its structure's ELF predicted by `model` (a shipped name,
    a model file or a loaded model; default: `elfkit.predict.choose_model`) on the grid of
    spacing at most `spacing` (Å)."""
    if isinstance(item.data, Field):
        return item.data
    from elfkit.predict import predict

    return predict(item.data, grid_shape(item, spacing), model, source=item.label)


def topology_row(item: TopologyInput, elf: Field, result: dict) -> dict:
    """The row (`COLUMNS`) of an item, its ELF and that ELF's `topology` result."""
    from elfkit.analysis.network import dimensionality_runs

    atoms = elf.atoms
    counts = result["counts"]
    runs = dimensionality_runs(result["dimensionality_vs_isovalue"])
    values = (
        item.source or item.label,
        item.frame,
        atoms.get_chemical_formula(mode="hill"),
        len(atoms),
        round(float(atoms.get_volume()), 4),
        "x".join(str(n) for n in elf.values.shape),
        elf.metadata.get("model", "") if isinstance(item.data, Atoms) else "",
        result["networking_value"],
        result["networking_value_hydrogen"],
        result["molecularity_index"],
        "; ".join(f"{low:.2f}{'' if low == high else f'-{high:.2f}'} {'none' if d is None else f'{d}D'}" for low, high, d in runs),
        counts["maxima"],
        counts["saddles"],
        counts["rings"],
        counts["minima"],
        sum(result["counts_low_density"].values()),
        result["morse_sum"],
        result["persistence_threshold"],
    )
    return dict(zip(COLUMNS, values))


def analyse_frame(
    item: TopologyInput,
    model: str | Path | LoadedModel | None = None,
    spacing: float = DEFAULT_SPACING_ANGSTROM,
    persistence: float = DEFAULT_PERSISTENCE,
    low_density: float | None = LOW_DENSITY,
) -> dict:
    """The row of one item: its ELF (`frame_elf`) analysed by `topology` with `persistence`
    (ELF units) and `low_density` (electrons/Å³; None: no check)."""
    from elfkit.analysis.topology import topology

    elf = frame_elf(item, model, spacing)
    return topology_row(item, elf, topology(elf, persistence, low_density))


def topology_rows(
    items: Sequence[TopologyInput | tuple],
    model: str | Path | None = None,
    spacing: float = DEFAULT_SPACING_ANGSTROM,
    persistence: float = DEFAULT_PERSISTENCE,
    low_density: float | None = LOW_DENSITY,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """One row (`COLUMNS`) per item, in the order given: items are `TopologyInput`s or
    (label, Field or Atoms) pairs. Fields are analysed as they are; the ELF of Atoms (Å) is
    predicted by `model` (a shipped name or model file; default: chosen by elements) on the
    grid of spacing at most `spacing` (Å). `persistence` (ELF units) and `low_density`
    (electrons/Å³) are those of `elfkit.analysis.topology.topology`.

    Every item is checked first (`check_inputs`). With more than one item the frames run on
    `workers` single-threaded Dask worker processes (default: one per core; 1: in this process;
    `elfkit.parallel.parallel_map`); on_progress(done, total) is called after each frame."""
    items = [TopologyInput(*item) for item in items]
    check_inputs(items, spacing)
    analyse = functools.partial(analyse_frame, model=None if model is None else str(model), spacing=spacing,
                                persistence=persistence, low_density=low_density)
    from elfkit.parallel import parallel_map

    return parallel_map(analyse, items, workers, on_progress)


def write_rows(rows: list[dict], path: str | Path) -> None:
    """Write the rows as CSV (header `COLUMNS`; an undefined value is an empty cell) to `path`,
    atomically: the file appears only complete (gzip-compressed when its name ends in .gz)."""
    from elfkit.io._files import atomic_text_output

    with atomic_text_output(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)


def mean_networking_value(rows: list[dict]) -> float | None:
    """Mean networking value φ over the rows where it is defined (None when it is nowhere)."""
    values = [row["networking_value"] for row in rows if row["networking_value"] is not None]
    return sum(values) / len(values) if values else None
