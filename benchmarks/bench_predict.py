"""Prediction time and peak memory against cell size (hydrogen at rs = 1.5 bohr, 0.12 Å grid).

    python benchmarks/bench_predict.py [--sizes 64 512 1000 4000 10000] [--model hydrogen]

Each size runs in a fresh process (so peak memory is that run's own), on the threads torch is
given (--threads, default 2), and includes loading the model. Positions: a simple cubic
lattice with random displacements (0.15 Å), so atoms never overlap. Writes
benchmarks/results/predict.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "predict.json"
RS_BOHR = 1.5

_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
import numpy as np, torch
torch.set_num_threads({threads})
from ase import Atoms
from elfkit.predict import predict
n, rs = {natoms}, {rs}
side = round(n ** (1 / 3))
length = (n * 4 / 3 * np.pi * (rs * 0.529177) ** 3) ** (1 / 3)
grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n]
rng = np.random.default_rng(0)
positions = (grid + 0.5) * length / side + rng.normal(0, 0.15, (n, 3))
atoms = Atoms(f"H{{n}}", positions=positions, cell=[length] * 3, pbc=True)
t1 = time.perf_counter()
field = predict(atoms, model="{model}")
t2 = time.perf_counter()
print(json.dumps({{"natoms": n, "cell_angstrom": length, "grid": list(field.values.shape),
    "seconds_total": t2 - t0, "seconds_predict": t2 - t1,
    "peak_memory_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}}))
"""


def run(natoms: int, model: str, threads: int) -> dict:
    """Time and peak memory of one prediction in a fresh Python process."""
    code = _CHILD.format(natoms=natoms, rs=RS_BOHR, model=model, threads=threads)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 512, 1000, 4000, 10000])
    parser.add_argument("--model", default="hydrogen")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for natoms in args.sizes:
        rows.append(run(natoms, args.model, args.threads))
        print(json.dumps(rows[-1]), file=sys.stderr)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"model": args.model, "threads": args.threads, "rs_bohr": RS_BOHR, "rows": rows}, indent=1) + "\n")
    print("| atoms | grid | total time incl. model loading (s) | prediction (s) | peak memory (GB) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['natoms']} | {'x'.join(map(str, r['grid']))} | {r['seconds_total']:.2f} | {r['seconds_predict']:.2f} | {r['peak_memory_gb']:.2f} |")


if __name__ == "__main__":
    main()
