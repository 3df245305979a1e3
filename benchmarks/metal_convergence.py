"""Cutoff and k-point convergence of the metal ELF labels (QE with elfkit's pseudopotentials,
or GPAW with its default PAW setups for the metals labelled with GPAW).

For a few prototypes at ambient and half volume: the ELF at the chosen cutoff and at lower
ones (at the densest k-point spacing), and at several k-point spacings (at the highest
cutoff), each compared with the densest setting on one grid (ELF MAE, max, histogram W1),
with energy, pressure, k-mesh and wall time.

Run:  python benchmarks/metal_convergence.py [--cutoffs 350 450 600] [--kspacings 0.4 0.3 0.25 0.15]
          [--pseudo-dir DIR] [--engine qe|gpaw] [--structures bcc:Nb hcp:Hf B2:Li:Mg ...]
          [--volumes 1 0.5] [--out benchmarks/results/metal_convergence.json]
(the report is saved after every structure; a rerun with the same --out skips those done)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import dft_convergence
from report import emit

from elfkit.data.metals import build
from elfkit.dft import DFTSettings, compute
from elfkit.dft.base import dft_grid_shape
from elfkit.dft.qe import PACKAGE_PSEUDO_DIR

STRUCTURES = (("bcc", ["Li"]), ("fcc", ["Na"]), ("hcp", ["Mg"]), ("C15", ["Li", "Mg"]))
SMEARING_EV = 0.2


def series(atoms, cutoffs: list[float], kspacings: list[float], pseudo_dir: str | None, engine: str = "qe") -> dict:
    """ELF of `atoms` over the cutoff and k-spacing series, against the densest setting."""
    shape = dft_grid_shape(atoms.cell.array, 0.12, max(cutoffs))
    densest_k = min(kspacings)
    runs = {}
    for cutoff in sorted(cutoffs):
        runs[f"cutoff {cutoff:g}"] = compute(atoms, shape, DFTSettings(engine, cutoff, densest_k, SMEARING_EV, pseudo_dir=pseudo_dir))
    for k in sorted(kspacings)[1:]:
        runs[f"kspacing {k:g}"] = compute(atoms, shape, DFTSettings(engine, max(cutoffs), k, SMEARING_EV, pseudo_dir=pseudo_dir))
    best = runs[f"cutoff {max(cutoffs):g}"]
    return {
        "grid": list(shape),
        **{
            name: {
                **dft_convergence.compare(run.elf.values, best.elf.values),
                "energy_mev_per_atom": round(1000 * (run.energy_ev - best.energy_ev) / len(atoms), 2),
                "pressure_gpa": round(run.pressure_gpa, 2),
                "kpoints": run.metadata["kpoints"],
                "seconds": run.metadata["wall_seconds"],
            }
            for name, run in runs.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cutoffs", type=float, nargs="+", default=[350.0, 450.0, 600.0])
    parser.add_argument("--kspacings", type=float, nargs="+", default=[0.4, 0.3, 0.25, 0.15])
    parser.add_argument("--pseudo-dir", default=str(PACKAGE_PSEUDO_DIR))
    parser.add_argument("--engine", choices=("qe", "gpaw"), default="qe")
    parser.add_argument("--structures", nargs="+", default=[":".join([p, *e]) for p, e in STRUCTURES],
                        help="PROTOTYPE:ELEMENT[:ELEMENT], as in elfkit.data.metals.build")
    parser.add_argument("--volumes", type=float, nargs="+", default=[1.0, 0.5], help="fractions of the ambient volume")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    report = json.loads(args.out.read_text()) if args.out and args.out.exists() else {}
    for prototype, *elements in (s.split(":") for s in args.structures):
        for fraction in args.volumes:
            name = f"{''.join(elements)}-{prototype}-V{fraction:g}"
            if name in report:
                continue
            atoms = build(prototype, elements, fraction)
            pseudo_dir = args.pseudo_dir if args.engine == "qe" else None
            report[name] = series(atoms, args.cutoffs, args.kspacings, pseudo_dir, args.engine)
            print(json.dumps({name: report[name]}), flush=True)
            if args.out:
                emit(report, args.out, quiet=True)
    emit(report, args.out)


if __name__ == "__main__":
    main()
