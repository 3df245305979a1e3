"""How well the gradient-expansion ELF of a SAD describes the DFT ELF of the metals: the
all-electron SAD (channel ge_elf) against the SAD of the labelling engine's valence electrons
(channel engine_valence_ge_elf), Pearson correlation and R² per cell, means over the first
--cells val cells of each metal dataset (issue 16; README, metals model design).

    python benchmarks/engine_valence_prior.py [--cells 12] [--out benchmarks/results/engine_valence_prior.json]
"""

from __future__ import annotations

import argparse

import numpy as np
from report import add_report_options, emit

import elfkit.data
from elfkit.features import CHANNELS, GE_ELF_CHANNEL, model_inputs

CHANNEL_INDEX = {"all-electron SAD": GE_ELF_CHANNEL, "engine-valence SAD": len(CHANNELS) + GE_ELF_CHANNEL}


def dataset_scores(name: str, cells: int) -> dict:
    """Mean correlation and R² of each SAD's GE-ELF with the DFT ELF over `cells` val cells."""
    scores = {label: {"correlation": [], "r2": []} for label in CHANNEL_INDEX}
    for number, sample in enumerate(elfkit.data.open(name, split="val")):
        if number >= cells:
            break
        x = model_inputs(sample.atoms, sample.elf.shape, "sad+engine-valence", sample.metadata.get("engine"))
        y = np.asarray(sample.elf, dtype=float).ravel()
        for label, channel in CHANNEL_INDEX.items():
            p = x[channel].ravel().astype(float)
            scores[label]["correlation"].append(np.corrcoef(p, y)[0, 1])
            scores[label]["r2"].append(1 - ((p - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    return {label: {key: float(np.mean(v)) for key, v in values.items()} for label, values in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=12)
    add_report_options(parser)
    options = parser.parse_args()
    result = {"cells_per_dataset": options.cells, "split": "val",
              "datasets": {name: dataset_scores(name, options.cells) for name in ("metals", "metals-900", "metals-gpaw")}}
    emit(result, options.out)


if __name__ == "__main__":
    main()
