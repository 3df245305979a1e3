"""Where the point model misses (issue 17): the hot (3000 K) fluid at rs 1.625 and 1.75 bohr.

    python benchmarks/point_hot_fluid.py [--every 4] [--models hydrogen-point hydrogen]

For every `--every`-th snapshot of the 3000 K trajectories at those densities, in the train and
the test split, each model's R² against DFT; and, for the test snapshots, the share of each
model's squared error that lies in each ELF band of the DFT ELF. If the train snapshots score no
better than the test ones, the model underfits that regime (it is not a generalisation gap).
Writes benchmarks/results/point_hot_fluid.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "point_hot_fluid.json"
HOT_K = 3000.0
DENSITIES_BOHR = (1.625, 1.75)
ELF_BANDS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.01)


def main() -> None:
    import torch

    import elfkit.data
    from elfkit.analysis.metrics import pointwise
    from elfkit.predict import get_model, predict

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=int, default=4, help="every n-th snapshot of each trajectory")
    parser.add_argument("--models", nargs="+", default=["hydrogen-point", "hydrogen"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = [get_model(m) for m in args.models]
    dataset = elfkit.data.open("hydrogen-fluid")
    hot = [r for r in dataset.rows() if r["temperature_k"] == HOT_K and r["metadata"]["rs_bohr"] in DENSITIES_BOHR]
    chosen = {r["key"]: r for r in hot[:: args.every]}
    rows = []
    for sample in dataset:
        row = chosen.get(sample.key)
        if row is None or row["split"] not in ("train", "test"):
            continue
        entry = {"key": sample.key, "split": row["split"], "rs_bohr": row["metadata"]["rs_bohr"], "start": row["metadata"]["start"]}
        for model in models:
            pred = predict(sample.atoms, sample.elf.shape, model).values.astype(np.float64)
            entry[f"r2 {model.name}"] = pointwise(pred, sample.elf)["r2"]
            error = (pred - sample.elf) ** 2
            band = np.digitize(sample.elf, ELF_BANDS) - 1
            entry[f"error share {model.name}"] = (np.bincount(band.ravel(), error.ravel(), len(ELF_BANDS) - 1) / error.sum()).tolist()
        rows.append(entry)
        print(entry["split"], entry["rs_bohr"], " ".join(f"{m.name} {entry['r2 ' + m.name]:.4f}" for m in models), flush=True)
    summary = {
        f"{split} {model.name}": float(np.mean([r[f"r2 {model.name}"] for r in rows if r["split"] == split]))
        for split in ("train", "test")
        for model in models
    }
    for model in models:
        shares = np.mean([r[f"error share {model.name}"] for r in rows if r["split"] == "test"], axis=0)
        summary[f"test error share at ELF 0.2-0.8 {model.name}"] = float(shares[1:4].sum())
    args.out.write_text(json.dumps({"models": [{"name": m.name, "sha256": m.sha256} for m in models], "elf_bands": ELF_BANDS, "summary": summary, "samples": rows}, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
