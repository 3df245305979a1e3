"""Make the hydrogen MD trajectory of the high-throughput benchmark (issue 19, seed 000's use):
every step of QE Born-Oppenheimer MD of 64 hydrogen atoms at several densities, as one
compressed extended-XYZ file that `elfkit predict` and `elfkit topology` read frame by frame.

Same MD as the hydrogen-fluid dataset (its spec's `md` block: Gamma point, 476 eV, 0.48 fs,
Andersen thermostat; `elfkit.data.hydrogen.sample_trajectory`, checkpointed every 100 steps,
so a killed run resumes), from a molecular start at each density, equilibrated, then every
step kept. Each frame's info holds rs_bohr, temperature_k (the thermostat's), the MD
temperature, step and time_fs. No ELF is computed here: the benchmark predicts it.

Run:  python scripts/make_md_trajectory.py --out benchmarks/data/hydrogen_md.extxyz.gz
      (4 densities x 250 frames at 2000 K, the rs and T of hydrogen-fluid snapshots so that `make bench` can
      plot phi against their pressure: about 12 minutes per density on one core; --workers 2 runs two at once)
"""

from __future__ import annotations

import argparse
import gzip
from functools import partial
from pathlib import Path

from elfkit.data.hydrogen import MDSettings, molecular_hydrogen, sample_trajectory
from elfkit.data.spec import load_spec
from elfkit.io._files import atomic_output
from elfkit.parallel import parallel_map

ROOT = Path(__file__).resolve().parents[1]


def run_density(rs_bohr: float, options: argparse.Namespace) -> list:
    """The kept frames (ase.Atoms with info) of the trajectory at density `rs_bohr`."""
    md = MDSettings(**load_spec(ROOT / "specs" / "hydrogen-fluid.yaml").md.model_dump())
    first = max(1, round(options.equilibration_fs / md.timestep_fs))
    steps = list(range(first + 1, first + options.frames + 1))
    start = molecular_hydrogen(options.natoms, rs_bohr, options.seed)
    folder = Path(options.scratch) / f"md-rs{rs_bohr:g}-T{options.temperature:g}-n{options.natoms}-s{options.seed}"
    snapshots = sample_trajectory(start, options.temperature, steps, md, folder)
    frames = []
    for step in steps:
        atoms, temperature = snapshots[step]
        atoms.info.update(rs_bohr=rs_bohr, temperature_k=options.temperature, md_temperature_k=temperature,
                          step=step, time_fs=round(step * md.timestep_fs, 4))
        frames.append(atoms)
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rs", type=float, nargs="+", default=[1.25, 1.5, 1.625, 1.75],
                        help="densities rs (bohr); the defaults are the hydrogen-fluid dataset's, whose snapshots give the pressure")
    parser.add_argument("--temperature", type=float, default=2000.0, help="thermostat temperature (K)")
    parser.add_argument("--frames", type=int, default=250, help="frames kept per density (one per MD step)")
    parser.add_argument("--equilibration-fs", type=float, default=100.0)
    parser.add_argument("--natoms", type=int, default=64)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--scratch", default=str(ROOT / "scratch" / "md"))
    parser.add_argument("--out", type=Path, required=True, help="output .extxyz or .extxyz.gz")
    options = parser.parse_args()
    import ase.io

    per_density = parallel_map(partial(run_density, options=options), options.rs, options.workers)
    frames = [frame for trajectory in per_density for frame in trajectory]
    options.out.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if options.out.suffix == ".gz" else open
    with atomic_output(options.out) as tmp, opener(tmp, "wt") as handle:
        ase.io.write(handle, frames, format="extxyz")
    print(f"wrote {len(frames)} frames to {options.out}")


if __name__ == "__main__":
    main()
