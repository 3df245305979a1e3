"""Which DFT maxima of metal cells does a model's prediction miss, and is a shallower maximum there?

    python scripts/missed_maxima.py metals [--split val] [--cells 20] [--model metals]

On `--cells` cells spread over the split, the DFT maxima that `elfkit evaluate`'s matching
(`match_critical_points`, 0.2 Å, persistence 0.02, plateau aliases) leaves unmatched, and for
every DFT maximum the nearest predicted maximum at any persistence: its distance (Å) and
persistence. Prints recall, how many misses have a predicted maximum within 0.2 Å that the
persistence threshold dropped, the recall if predicted maxima counted down to a lower persistence
(DFT maxima still at 0.02), and the persistence quartiles of missed and matched maxima.
"""

from __future__ import annotations

import argparse

import numpy as np


def maxima_rows(sample, model: str) -> list[tuple[bool, bool, float, float, float]]:
    """Per DFT maximum: missed, interstitial, DFT persistence, distance to and persistence of the
    nearest predicted maximum (essential pairs count as persistence 1)."""
    from elfkit.analysis.critical import DEFAULT_PERSISTENCE, _periodic_distances, critical_points, match_critical_points
    from elfkit.analysis.templates import interstitial
    from elfkit.evaluation import MATCH_TOLERANCE_ANGSTROM, reference_topology
    from elfkit.field import Field
    from elfkit.predict import predict

    reference = reference_topology(Field(sample.atoms, sample.elf, "elf"))
    all_maxima = [p for p in reference["points"] if p.type == "maximum"]
    chosen = [(p, a) for p, a in zip(all_maxima, reference["maxima_aliases"]) if not p.low_density]
    if not chosen:
        return []
    maxima, aliases = zip(*chosen)
    predicted = [p for p in critical_points(predict(sample.atoms, sample.elf.shape, model), persistence=0.0) if p.type == "maximum"]
    kept = [p for p in predicted if p.persistence is None or p.persistence >= DEFAULT_PERSISTENCE]
    cell = sample.atoms.cell.array
    match = match_critical_points(kept, list(maxima), cell, tol=MATCH_TOLERANCE_ANGSTROM, reference_aliases=list(aliases))
    missed = {id(p) for p in match["missed"]}
    positions = np.array([p.frac for p in predicted])
    rows = []
    for point, alias, outside in zip(maxima, aliases, interstitial(sample.atoms, [p.frac for p in maxima])):
        distance = _periodic_distances(positions, np.asarray(alias), cell).min(axis=1)
        nearest = predicted[int(np.argmin(distance))]
        rows.append((id(point) in missed, bool(outside), 1.0 if point.persistence is None else point.persistence,
                     float(distance.min()), 1.0 if nearest.persistence is None else nearest.persistence))
    return rows


def main() -> None:
    import elfkit.data

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("--split", default="val", choices=["train", "val", "test"])
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--model", default="metals")
    args = parser.parse_args()
    samples = list(elfkit.data.open(args.dataset, split=args.split))
    samples = samples[:: max(1, len(samples) // args.cells)][: args.cells]
    rows = np.array([row for sample in samples for row in maxima_rows(sample, args.model)], dtype=float)
    missed, outside = rows[:, 0] == 1, rows[:, 1] == 1
    print(f"{args.dataset} {args.split}, {len(samples)} cells, model {args.model}: {len(rows)} DFT maxima, {missed.sum()} missed "
          f"({(missed & outside).sum()} interstitial), recall {1 - missed.mean():.2f}")
    for name, chosen in (("missed", missed), ("matched", ~missed)):
        r = rows[chosen]
        if not len(r):
            continue
        print(f"  {name}: DFT persistence quartiles {np.round(np.percentile(r[:, 2], [25, 50, 75]), 3)}, nearest predicted "
              f"maximum {np.median(r[:, 3]):.2f} Å away (median), its persistence {np.median(r[:, 4]):.3f} (median)")
    shallow = missed & (rows[:, 3] <= 0.2) & (rows[:, 4] < 0.02)
    print(f"  missed with a predicted maximum within 0.2 Å below persistence 0.02: {shallow.sum()} of {missed.sum()}")
    for floor in (0.015, 0.01):
        found = ~missed | ((rows[:, 3] <= 0.2) & (rows[:, 4] >= floor))
        print(f"  recall if predicted maxima count down to persistence {floor}: {found.mean():.2f}")


if __name__ == "__main__":
    main()
