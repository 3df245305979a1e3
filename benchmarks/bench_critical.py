"""Speed and counts of the critical-point analysis (discrete Morse theory + persistence) on
smooth and noisy fields: the first 64-atom ELF of the hydrogen-fluid test split (50³), the
same with white noise (sigma 0.03, clipped to [0, 1]), and that ELF interpolated to 200³.

Run:  python benchmarks/bench_critical.py [--out benchmarks/results/critical.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from report import emit
from scipy import ndimage

import elfkit.data
from elfkit.analysis.critical import DEFAULT_PERSISTENCE, counts, critical_points, morse_sum, persistence_pairs
from elfkit.analysis.topology import topology
from elfkit.field import Field

NOISE_SIGMA = 0.03


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, round(time.perf_counter() - start, 2)


def critical_point_row(field: Field) -> dict:
    """Counts before and after simplification at the default threshold, Morse sums, seconds."""
    start = time.perf_counter()
    pairs = persistence_pairs(field.values)
    points = critical_points(field, pairs=pairs)
    seconds = round(time.perf_counter() - start, 2)
    return {
        "grid": list(field.values.shape),
        "persistence_threshold": DEFAULT_PERSISTENCE,
        "counts_before_simplification": pairs.counts(0.0),
        "counts": counts(points),
        "morse_sum": morse_sum(points),
        "critical_points_seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    sample = next(iter(elfkit.data.open("hydrogen-fluid", split="test")))
    values = sample.elf.astype(float)
    noisy = np.clip(values + np.random.default_rng(0).normal(0.0, NOISE_SIGMA, values.shape), 0.0, 1.0)
    fine = np.clip(ndimage.zoom(values, 4, order=3, mode="grid-wrap", grid_mode=True), 0.0, 1.0)
    result = {"atoms": len(sample.atoms), "noise_sigma": NOISE_SIGMA}
    for name, grid_values in (("fluid_50", values), ("fluid_50_noisy", noisy)):
        field = Field(sample.atoms, grid_values, "elf")
        result[name] = critical_point_row(field)
        report, result[name]["topology_seconds"] = timed(topology, field)
        result[name]["topology_morse_sum"] = report["morse_sum"]
    result["fluid_200"] = critical_point_row(Field(sample.atoms, fine, "elf"))
    emit(result, args.out)


if __name__ == "__main__":
    main()
