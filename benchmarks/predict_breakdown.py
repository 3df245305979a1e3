"""Where the time of one large prediction goes: input channels, network, spline to the user's
grid, symmetry pooling (hydrogen at rs = 1.5 bohr, bench_predict.py's cells, 0.12 Å grid).

    python benchmarks/predict_breakdown.py [--natoms 10000] [--model hydrogen] [--threads 2]

Prints seconds per stage and the peak memory (GB) after each.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from pathlib import Path


def main() -> None:
    import numpy as np
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_predict import hydrogen_cell

    from elfkit.features import physics_channels
    from elfkit.grid import DEFAULT_SPACING_ANGSTROM, Grid
    from elfkit.predict import get_model, inference_plan, middle_spacing_grid, model_spacing_range, network_logits, resample_periodic, symmetry_pool

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--natoms", type=int, default=10000)
    parser.add_argument("--model", default="hydrogen")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded, atoms = get_model(args.model), hydrogen_cell(args.natoms)
    internal = middle_spacing_grid(atoms.cell.array, model_spacing_range(loaded.metadata))
    user = Grid.for_spacing(atoms.cell.array, DEFAULT_SPACING_ANGSTROM)
    print(f"{len(atoms)} atoms, network grid {internal}, user grid {user.shape}, plan: {inference_plan(loaded.net, math.prod(internal))[0].value}")

    def stage(name: str, started: float) -> None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"{name}: {time.perf_counter() - started:.1f} s, peak memory so far {peak:.2f} GB")

    started = time.perf_counter()
    features = physics_channels(atoms, internal)
    stage("input channels", started)
    started = time.perf_counter()
    logits = network_logits(loaded.net, features)
    stage("network", started)
    del features
    started = time.perf_counter()
    values = resample_periodic(logits, user.shape)
    stage("spline to the user's grid", started)
    started = time.perf_counter()
    symmetry_pool(1.0 / (1.0 + np.exp(-values.astype(np.float64))), atoms)
    stage("symmetry pooling", started)


if __name__ == "__main__":
    main()
