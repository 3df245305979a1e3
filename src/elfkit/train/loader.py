"""Labelled grids in memory with shuffled random access across shards, and training blocks.

The streaming `elfkit.data.open` reads one shard at a time; training needs any sample at any
step, so `load_split` reads a split once (features from `elfkit.features`, ELF labels) and
keeps it in memory (a 64-atom hydrogen cell on 50³ points: 5 MB of float32 features).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from elfkit.features import FeatureSet, model_inputs


@dataclass
class LabelledGrid:
    """Model input `features` (C, N1, N2, N3), the DFT ELF (N1, N2, N3) and the cell (Å)."""

    features: np.ndarray
    elf: np.ndarray
    cell: np.ndarray
    key: str
    group: str
    stratum: str
    dataset: str


def stratum_of(sample) -> str:
    """The stratum a sample is reported in: its density rs (bohr) when known, else its formula."""
    rs = sample.metadata.get("rs_bohr")
    return f"rs {rs:g}" if rs is not None else sample.atoms.get_chemical_formula(mode="hill")


def load_split(
    datasets: list[str], split: str, on_progress: Callable[[int, int], None] | None = None, features: FeatureSet | str = FeatureSet.SAD
) -> list[LabelledGrid]:
    """Every sample of `split` in the named datasets, with the channels of `features` computed on
    its own grid (engine-valence channels of the engine that labelled the sample)."""
    import elfkit.data

    opened = [elfkit.data.open(name, split=split) for name in datasets]
    total, grids = sum(len(d) for d in opened), []
    for dataset in opened:
        for sample in dataset:
            grids.append(
                LabelledGrid(
                    features=model_inputs(sample.atoms, sample.elf.shape, features, sample.metadata.get("engine")),
                    elf=np.asarray(sample.elf, dtype=np.float32),
                    cell=sample.atoms.cell.array.copy(),
                    key=sample.key,
                    group=sample.group,
                    stratum=stratum_of(sample),
                    dataset=dataset.name,
                )
            )
            if on_progress:
                on_progress(len(grids), total)
    return grids


def spread_subset(grids: list, count: int, stratum: Callable = lambda grid: grid.stratum) -> list:
    """About `count` grids (or samples) spread evenly over every stratum and over each
    stratum's members (a fixed, representative subset for validation during training)."""
    by_stratum: dict[str, list] = {}
    for grid in grids:
        by_stratum.setdefault(stratum(grid), []).append(grid)
    per_stratum = -(-count // max(1, len(by_stratum)))
    chosen = []
    for members in by_stratum.values():
        picks = np.linspace(0, len(members) - 1, min(per_stratum, len(members))).round().astype(int)
        chosen += [members[i] for i in sorted(set(picks))]
    return chosen


def training_block(
    values: np.ndarray, elf: np.ndarray, max_block: int, halo: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, bool]:
    """A periodic patch with its origin jittered: (inputs, labels, periodic).

    A cell that fits in `max_block` points per axis is used whole, rolled to a random origin
    (periodic mode). A larger one gives a block of `max_block` labelled points per axis whose
    inputs carry `halo` more points on each side, cut with wrap-around (valid mode). `elf` is the
    ELF (N1, N2, N3) or a stack of grids (..., N1, N2, N3) cut alike."""
    shape = elf.shape[-3:]
    origin = [int(rng.integers(n)) for n in shape]
    if max(shape) <= max_block:
        rolled = np.roll(values, [-o for o in origin], axis=(1, 2, 3))
        return rolled, np.roll(elf, [-o for o in origin], axis=(-3, -2, -1)), True
    sizes = [min(n, max_block) for n in shape]
    index = [np.arange(o - halo, o + s + halo) % n for o, s, n in zip(origin, sizes, shape)]
    inputs = values[(slice(None), *np.ix_(*index))]
    labels = elf[(Ellipsis, *np.ix_(*[axis[halo : len(axis) - halo] for axis in index]))]
    return inputs, labels, False
