"""The ELF at the nuclei: a dataset's labels against a model's prediction, per element and prototype.

    python scripts/nucleus_elf.py metals-gpaw [--split val] [--model metals] [--element Pb]

Some engines' valence ELF has a spike one grid point wide at the nucleus (GPAW's Pb: 0.6-0.8
there, 0.24 one grid step away); a model whose radial functions are smoother than that misses
it, and it is an ELF maximum that `elfkit evaluate`'s parity counts. For every atom that sits
on a grid point (grid point (i, j, k) at fractional (i/N1, j/N2, k/N3), within 0.05 of a step),
the label and the prediction there; prints per element and prototype the mean of both and the
largest absolute difference (ELF is dimensionless).
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np


def nucleus_values(sample, model: str) -> list[tuple[str, float, float]]:
    """(element, label, prediction) at every atom of `sample` that sits on a grid point."""
    from elfkit.grid import nearest_grid_points
    from elfkit.predict import predict

    predicted = predict(sample.atoms, sample.elf.shape, model).values
    index, offset = nearest_grid_points(sample.atoms, sample.elf.shape)
    return [(symbol, float(sample.elf[tuple(i)]), float(predicted[tuple(i)]))
            for symbol, i, off in zip(sample.atoms.get_chemical_symbols(), index, offset) if off <= 0.05]


def main() -> None:
    import elfkit.data

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("--split", default="val", choices=["train", "val", "test"])
    parser.add_argument("--model", default="metals")
    parser.add_argument("--element", default=None, help="only cells holding this element")
    args = parser.parse_args()
    rows = defaultdict(list)
    for sample in elfkit.data.open(args.dataset, split=args.split):
        if args.element and args.element not in sample.atoms.get_chemical_symbols():
            continue
        for symbol, label, prediction in nucleus_values(sample, args.model):
            rows[(symbol, sample.metadata.get("prototype"))].append((label, prediction))
    print(f"{args.dataset} {args.split}, model {args.model}: ELF at the nuclei")
    for (symbol, prototype), values in sorted(rows.items()):
        v = np.array(values)
        print(f"  {symbol} {prototype}: {len(v)} nuclei, label {v[:, 0].mean():.3f}, predicted {v[:, 1].mean():.3f}, "
              f"largest |difference| {np.abs(v[:, 0] - v[:, 1]).max():.3f}")


if __name__ == "__main__":
    main()
