"""Prediction time and peak memory against cell size (hydrogen at rs = 1.5 bohr, 0.12 Å grid),
and the time of the DFT labels (Quantum ESPRESSO and GPAW at the hydrogen-fluid label settings:
680 eV, k-spacing 0.75 1/Å, MV 0.1 eV, one core) on the same cells as far as each engine goes here.

    python benchmarks/bench_predict.py [--sizes 64 512 1000 4000 10000] [--model hydrogen] [--qe-max-atoms 64]
        [--gpaw-max-atoms 64] [--out FILE]

Each size runs in a fresh process (so peak memory is that run's own), on the threads torch is
given (--threads, default 2), and includes loading the model. Positions: a simple cubic
lattice with random displacements (0.08 Å), so atoms never overlap. Writes
benchmarks/results/predict.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "predict.json"
RS_BOHR = 1.5

_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
import torch
torch.set_num_threads({threads})
sys.path.insert(0, {folder!r})
from bench_predict import hydrogen_cell
from elfkit.predict import predict
atoms = hydrogen_cell({natoms})
t1 = time.perf_counter()
field = predict(atoms, model="{model}")
t2 = time.perf_counter()
print(json.dumps({{"natoms": len(atoms), "cell_angstrom": atoms.cell.lengths()[0], "grid": list(field.values.shape),
    "seconds_total": t2 - t0, "seconds_predict": t2 - t1,
    "peak_memory_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}}))
"""


def hydrogen_cell(natoms: int):
    """`natoms` hydrogen atoms at rs = 1.5 bohr: the first sites of a cubic lattice, displaced at
    random by 0.08 Å (standard deviation), so no two atoms come closer than 0.5 Å."""
    import numpy as np
    from ase import Atoms

    side = math.ceil(natoms ** (1 / 3) - 1e-9)
    length = (natoms * 4 / 3 * np.pi * (RS_BOHR * 0.529177) ** 3) ** (1 / 3)
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:natoms]
    positions = (grid + 0.5) * length / side + np.random.default_rng(0).normal(0, 0.08, (natoms, 3))
    return Atoms(f"H{natoms}", positions=positions, cell=[length] * 3, pbc=True)


def dft_seconds(natoms: int, engine: str) -> float:
    """Wall time (s) of the SCF + ELF of `hydrogen_cell(natoms)` by `engine` (qe or gpaw) at the
    fluid's label settings, on one core."""
    import time

    from elfkit.dft import DFTSettings, compute
    from elfkit.grid import Grid

    atoms = hydrogen_cell(natoms)
    settings = DFTSettings(engine=engine, cutoff_ev=680.0, kspacing=0.75, smearing_ev=0.1)
    started = time.perf_counter()
    compute(atoms, Grid.for_spacing(atoms.cell.array, 0.12).shape, settings)
    return time.perf_counter() - started


def run(natoms: int, model: str, threads: int) -> dict:
    """Time and peak memory of one prediction in a fresh Python process."""
    code = _CHILD.format(natoms=natoms, model=model, threads=threads, folder=str(Path(__file__).resolve().parent))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 512, 1000, 4000, 10000])
    parser.add_argument("--model", default="hydrogen")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--qe-max-atoms", type=int, default=0, help="also time QE on cells up to this size")
    parser.add_argument("--gpaw-max-atoms", type=int, default=0, help="also time GPAW on cells up to this size")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    for natoms in args.sizes:
        rows.append(run(natoms, args.model, args.threads))
        for engine, most in (("qe", args.qe_max_atoms), ("gpaw", args.gpaw_max_atoms)):
            if natoms <= most:
                rows[-1][f"{engine}_seconds"] = dft_seconds(natoms, engine)
                rows[-1][f"speedup_vs_{engine}"] = rows[-1][f"{engine}_seconds"] / rows[-1]["seconds_total"]
        print(json.dumps(rows[-1]), file=sys.stderr)
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({"model": args.model, "threads": args.threads, "rs_bohr": RS_BOHR, "rows": rows}, indent=1) + "\n")
    print("| atoms | grid | total time incl. model loading (s) | prediction (s) | peak memory (GB) | QE, 1 core (s) | speed-up | GPAW, 1 core (s) | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        dft = " | ".join(f"{r[f'{e}_seconds']:.0f} | {r[f'speedup_vs_{e}']:.0f}x" if f"{e}_seconds" in r else "- | -" for e in ("qe", "gpaw"))
        print(f"| {r['natoms']} | {'x'.join(map(str, r['grid']))} | {r['seconds_total']:.2f} | {r['seconds_predict']:.2f} | {r['peak_memory_gb']:.2f} | {dft} |")


if __name__ == "__main__":
    main()
