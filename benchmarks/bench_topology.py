"""Speed of the topology analyses on a typical 50³ ELF: a real QE ELF of 64 hydrogen atoms
(random atomic positions, rs = 1.5 bohr, PBE, 680 eV) on a 50x50x50 grid.

Run:  python benchmarks/bench_topology.py [--out benchmarks/results/topology.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from report import emit

from elfkit.analysis.critical import counts, critical_points, morse_sum
from elfkit.analysis.network import dimensionality_vs_isovalue, molecularity_index, networking_value
from elfkit.data.hydrogen import random_atomic_hydrogen
from elfkit.dft import DFTSettings, compute


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, round(time.perf_counter() - start, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    atoms = random_atomic_hydrogen(64, 1.5, seed=3)
    field = compute(atoms, (50, 50, 50), DFTSettings(engine="qe", cutoff_ev=680.0)).elf
    phi, t_phi = timed(networking_value, field)
    mol, t_mol = timed(molecularity_index, field)
    dims, t_dims = timed(dimensionality_vs_isovalue, field)
    points, t_cp = timed(critical_points, field)
    result = {
        "grid": list(field.values.shape),
        "networking_value": phi,
        "networking_value_seconds": t_phi,
        "molecularity_index": mol,
        "molecularity_seconds": t_mol,
        "dimensionality_19_isovalues_seconds": t_dims,
        "critical_points": counts(points),
        "morse_sum": morse_sum(points),
        "critical_points_seconds": t_cp,
        "networking_value_plus_critical_points_seconds": round(t_phi + t_cp, 3),
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
