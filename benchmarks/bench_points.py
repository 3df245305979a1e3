"""Point-model speed: time per million probe points and peak memory against cell size
(hydrogen at rs = 1.5 bohr, the cells of bench_predict.py), random points in the cell.

    python benchmarks/bench_points.py [--sizes 64 512 1000 4000 10000] [--model hydrogen-point | --untrained CONFIG] [--points 200000]

Each size runs in a fresh process (peak memory is that run's own) on --threads threads.
`--untrained CONFIG` times a network of that config's architecture with random weights (the
time does not depend on the weights). Writes benchmarks/results/points.json (with the model
file's SHA-256, which the model card reads its speed from) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "points.json"

_CHILD = """
import json, resource, sys, time
import numpy as np, torch
torch.set_num_threads({threads})
sys.path.insert(0, {folder!r})
from bench_predict import hydrogen_cell
from elfkit.predict import get_model, predict_points
from elfkit.models.checkpoint import LoadedModel
config = {untrained!r}
if config:
    from elfkit.models import build
    from elfkit.train import load_config
    spec = load_config(config)
    model = LoadedModel(build(spec.architecture.value, **spec.model).eval(), {{"name": spec.name + " (untrained)"}}, config)
else:
    model = get_model({model!r})
atoms = hydrogen_cell({natoms})
points = np.random.default_rng(0).random(({points}, 3)) @ atoms.cell.array
started = time.perf_counter()
predict_points(atoms, points, model)
seconds = time.perf_counter() - started
print(json.dumps({{"natoms": len(atoms), "points": {points}, "seconds": seconds, "seconds_per_million_points": seconds / {points} * 1e6,
    "peak_memory_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}}))
"""


def run(natoms: int, model: str, untrained: str | None, points: int, threads: int) -> dict:
    """Time and peak memory of one point-model prediction in a fresh Python process."""
    code = _CHILD.format(natoms=natoms, model=model, untrained=untrained, points=points, threads=threads, folder=str(Path(__file__).resolve().parent))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 512, 1000, 4000, 10000])
    parser.add_argument("--model", default="hydrogen-point")
    parser.add_argument("--untrained", default=None, help="time an untrained network of this training config instead")
    parser.add_argument("--points", type=int, default=200000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    for natoms in args.sizes:
        rows.append(run(natoms, args.model, args.untrained, args.points, args.threads))
        print(json.dumps(rows[-1]), file=sys.stderr)
    args.out.parent.mkdir(exist_ok=True)
    label = f"untrained {args.untrained}" if args.untrained else args.model
    from elfkit.predict import get_model

    sha = None if args.untrained else get_model(args.model).sha256
    args.out.write_text(json.dumps({"model": label, "model_sha256": sha, "threads": args.threads, "rows": rows}, indent=1) + "\n")
    print("| atoms | probe points | time (s) | s per million points | peak memory (GB) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['natoms']} | {r['points']} | {r['seconds']:.2f} | {r['seconds_per_million_points']:.1f} | {r['peak_memory_gb']:.2f} |")


if __name__ == "__main__":
    main()
