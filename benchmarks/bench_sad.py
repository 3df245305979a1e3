"""SAD speed on this machine: a 64-atom dense-hydrogen cell on 48³ (target < 1 s) and a
1,000-atom hydrogen cell on 200³ (target < 60 s). Cold timings include building the
atomic form-factor tables; warm timings reuse them.

Run:  python benchmarks/bench_sad.py [--out benchmarks/results/sad.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
from ase import Atoms

from report import emit

from elfkit.grid import Grid
from elfkit.sad import _form_factor_spline, electron_count, sad


def random_hydrogen(natoms: int, rs_bohr: float, seed: int) -> Atoms:
    """Hydrogen at random positions with density rs (bohr); structure content is irrelevant to speed."""
    length = (natoms * 4 / 3 * np.pi * (rs_bohr * 0.529177) ** 3) ** (1 / 3)
    rng = np.random.default_rng(seed)
    return Atoms(f"H{natoms}", scaled_positions=rng.random((natoms, 3)), cell=[length] * 3, pbc=True)


def time_case(atoms: Atoms, shape) -> dict:
    _form_factor_spline.cache_clear()
    start = time.perf_counter()
    values = sad(atoms, shape)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    sad(atoms, shape)
    warm = time.perf_counter() - start
    integral = values.sum() * Grid(atoms.cell.array, shape).voxel_volume
    return {
        "natoms": len(atoms),
        "grid": list(shape),
        "cold_seconds": round(cold, 3),
        "warm_seconds": round(warm, 3),
        "electrons_on_grid": round(float(integral), 4),
        "electrons": electron_count(atoms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "cases": [
            time_case(random_hydrogen(64, 1.4, 0), (48, 48, 48)),
            time_case(random_hydrogen(1000, 1.4, 1), (200, 200, 200)),
        ],
    }
    emit(results, args.out)


if __name__ == "__main__":
    main()
