"""Which DFT saddles of the hydrogen crystals does a model's prediction miss, and how strong are they?

    python scripts/missed_saddles.py [--model hydrogen] [--structures "Cmca-12 372" "C2/c-24 251" "Cmca-4 400"]

For each crystal (phase and pressure in GPa, rounded), the DFT saddles that `elfkit evaluate`'s
matching (`match_critical_points`, 0.2 Å, persistence 0.02) leaves unmatched: their ELF value,
the persistence of their pair and the distance to the nearest predicted saddle (Å).
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    import elfkit.data
    from elfkit.analysis.critical import _periodic_distances, critical_points, match_critical_points
    from elfkit.evaluation import MATCH_TOLERANCE_ANGSTROM
    from elfkit.field import Field
    from elfkit.predict import predict

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="hydrogen")
    parser.add_argument("--structures", nargs="+", default=["Cmca-12 372", "C2/c-24 251", "Cmca-4 400"])
    args = parser.parse_args()
    for sample in elfkit.data.open("hydrogen-crystals"):
        name = f"{sample.group.removeprefix('crystal-')} {sample.pressure_gpa:.0f}"
        if name not in args.structures:
            continue
        cell = sample.atoms.cell.array
        saddles = [
            [p for p in critical_points(field) if p.type == "saddle"]
            for field in (predict(sample.atoms, sample.elf.shape, args.model), Field(sample.atoms, sample.elf, "elf"))
        ]
        match = match_critical_points(*saddles, cell, tol=MATCH_TOLERANCE_ANGSTROM)
        print(f"{name} GPa: {match['matched']} of {match['matched'] + len(match['missed'])} DFT saddles matched; missed:")
        predicted = np.array([p.frac for p in saddles[0]])
        for point in match["missed"]:
            nearest = _periodic_distances(predicted, np.array([point.frac]), cell).min()
            persistence = "essential" if point.persistence is None else f"{point.persistence:.3f}"
            print(f"  ELF {point.value:.3f}  persistence {persistence}  nearest predicted saddle {nearest:.2f} Å")


if __name__ == "__main__":
    main()
