"""What running the network in bfloat16 (the large-cell path of `elfkit.predict.network_logits`)
changes: on hydrogen-fluid test snapshots, the ELF from the whole cell in float32 against the
level-by-level blocks in bfloat16, and each against DFT.

    python benchmarks/block_precision.py [--model hydrogen] [--samples 7]

One snapshot per density (the first of each), up to --samples. Writes
benchmarks/results/block_precision.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results" / "block_precision.json"


def main() -> None:
    import elfkit.data
    from elfkit.analysis.metrics import pointwise
    from elfkit.features import physics_channels
    from elfkit.predict import BLOCK_POINTS, get_model
    from elfkit.train.loader import stratum_of

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="hydrogen")
    parser.add_argument("--samples", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    loaded = get_model(args.model)
    rows, seen = [], set()
    for sample in elfkit.data.open("hydrogen-fluid", split="test"):
        stratum = stratum_of(sample)
        if stratum in seen or len(rows) >= args.samples:
            continue
        seen.add(stratum)
        features = torch.from_numpy(physics_channels(sample.atoms, sample.elf.shape))
        with torch.no_grad():
            whole = torch.sigmoid(loaded.net(features[None])[0]).numpy()
        blocks = torch.sigmoid(loaded.net.block_logits(features, BLOCK_POINTS, bf16=True)).numpy()
        difference = np.abs(blocks - whole)
        rows.append({
            "stratum": stratum, "key": sample.key,
            "r2_float32": pointwise(whole, sample.elf)["r2"], "r2_bfloat16_blocks": pointwise(blocks, sample.elf)["r2"],
            "difference_mean": float(difference.mean()), "difference_max": float(difference.max()),
        })
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({"model": loaded.name, "model_sha256": loaded.sha256, "rows": rows}, indent=1) + "\n")
    print("| stratum | R² float32 whole cell | R² bfloat16 blocks | mean |difference| | max |difference| |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['stratum']} | {r['r2_float32']:.4f} | {r['r2_bfloat16_blocks']:.4f} | {r['difference_mean']:.1e} | {r['difference_max']:.3f} |")


if __name__ == "__main__":
    main()
