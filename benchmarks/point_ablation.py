"""Which neighbourhood the point model needs (issue 17): short trainings of `PointELF` variants on
the same probe points of hydrogen-fluid, scored on uniform points of validation grids.

    python benchmarks/point_ablation.py [--train 80] [--val 16] [--steps 2500] [--threads 2]
        [--variants NAME...] [--hold-out-hot] [--out FILE]

Variants: the density channels at the point alone (no neighbourhood), l_max 0 (radial only) at
4 Å, l_max 3 at cutoffs of 3, 4 and 5 Å, and at 4 Å with 1 to 3 atom-environment weights
(`elfkit.models.point.atom_environment`), 16 mixed channels instead of 8 (with and without 2
environment weights), 24 radial functions instead of 16, and a 256 x 4 MLP instead of 128 x 3
(with and without 2 environment weights), and a learned atom environment (`atom_features`: 8
features per atom from its neighbours within 2 Å, in 1 or 2 rounds of message passing, read by
the atoms within 2 Å of the point; `elfkit.models.point.LearnedEnvironment`). `--hold-out-hot` keeps the train split's hot (3000 K)
trajectories at rs 1.625 and 1.75 bohr, where the shipped model is weakest, out of training and
scores every third of their snapshots as strata of their own ("hot rs ..."): a regime the val
split does not contain, judged without touching test. Every variant sees the same training points
(`--points` per grid, half uniform, half by ELF² as in training), the same batches and the
same optimiser (Adam, cosine learning rate, L1 loss on the ELF); validation is R² over all
uniform points of the validation grids, overall and per density. The numbers are for design,
not for the model table: the shipped model trains far longer with VOX + HIST (`elfkit train`).
Writes benchmarks/results/point_ablation.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results" / "point_ablation.json"
VARIANTS = {
    "density only": {"cutoff": 4.0, "l_max": 0, "channels": 0},
    "l_max 0, 4 Å": {"cutoff": 4.0, "l_max": 0, "channels": 8},
    "l_max 3, 3 Å": {"cutoff": 3.0, "l_max": 3, "channels": 8},
    "l_max 3, 4 Å": {"cutoff": 4.0, "l_max": 3, "channels": 8},
    "l_max 3, 5 Å": {"cutoff": 5.0, "l_max": 3, "channels": 8},
    "environment 1": {"cutoff": 4.0, "l_max": 3, "channels": 8, "environment": 1},
    "environment 2": {"cutoff": 4.0, "l_max": 3, "channels": 8, "environment": 2},
    "environment 3": {"cutoff": 4.0, "l_max": 3, "channels": 8, "environment": 3},
    "channels 16": {"cutoff": 4.0, "l_max": 3, "channels": 16},
    "radial 24": {"cutoff": 4.0, "l_max": 3, "channels": 8, "radial": 24},
    "channels 16, environment 2": {"cutoff": 4.0, "l_max": 3, "channels": 16, "environment": 2},
    "MLP 256 x 4": {"cutoff": 4.0, "l_max": 3, "channels": 8, "hidden": 256, "layers": 4},
    "MLP 256 x 4, environment 2": {"cutoff": 4.0, "l_max": 3, "channels": 8, "hidden": 256, "layers": 4, "environment": 2},
    "learned environment, 1 round": {"cutoff": 4.0, "l_max": 3, "channels": 8, "atom_features": 8, "rounds": 1},
    "learned environment, 2 rounds": {"cutoff": 4.0, "l_max": 3, "channels": 8, "atom_features": 8, "rounds": 2},
}
LEARNED_CUTOFF_ANGSTROM = 2.0
"""Atom-atom and near point-atom cutoff of the learned-environment variants."""
RADIAL = 16
HOT_K = 3000.0
HOT_DENSITIES_BOHR = (1.625, 1.75)


def probe_inputs(sample, count: int, weighted_fraction: float, seed: int, variants: dict, stratum: str | None = None) -> dict:
    """Probe points of one grid: the basis of every (cutoff, environment, radial) of `variants`
    (l_max 3), the density channels, the DFT ELF and (for learned-environment variants) the
    points' `NearPairs`."""
    from elfkit.features import point_channels, sad_radius
    from elfkit.geometry import point_neighbours
    from elfkit.grid import Grid
    from elfkit.models.point import NearPairs, atom_environment, neighbour_basis
    from elfkit.train.loader import stratum_of
    from elfkit.train.points import pool_indices

    index = pool_indices(sample.elf, count, weighted_fraction, np.random.default_rng(seed))
    points = Grid(sample.atoms.cell.array, sample.elf.shape).cart_coords().reshape(-1, 3)[index]
    kinds = sorted({_kind(v) for v in variants.values()})
    pairs = point_neighbours(sample.atoms, points, max(max(c for c, _, _ in kinds), sad_radius(sample.atoms)))
    return {
        "basis": {(c, e, n): neighbour_basis(sample.atoms, points, c, n, 3, pairs, atom_weights=atom_environment(sample.atoms, e)) for c, e, n in kinds},
        "density": torch.from_numpy(point_channels(sample.atoms, points, pairs=pairs).T.copy()),
        "elf": torch.from_numpy(np.asarray(sample.elf, dtype=np.float32).ravel()[index]),
        "stratum": stratum or stratum_of(sample),
        "near": NearPairs.of(sample.atoms, pairs, len(points), LEARNED_CUTOFF_ANGSTROM, LEARNED_CUTOFF_ANGSTROM)
        if any(v.get("atom_features") for v in variants.values()) else None,
    }


def _kind(variant: dict) -> tuple[float, int, int]:
    return variant["cutoff"], variant.get("environment", 0), variant.get("radial", RADIAL)


def inputs_of(pool: dict, variant: dict, rows: torch.Tensor | None = None) -> tuple:
    """The network's inputs at the pool's points (`rows`, default all): the basis of the variant's
    cutoff, environment and radial count cut to its l_max, the density channels, no columns,
    and the `NearPairs` of a learned-environment variant."""
    every = slice(None) if rows is None else rows
    basis = pool["basis"][_kind(variant)][every][:, :, : (variant["l_max"] + 1) ** 2]
    near = None
    if variant.get("atom_features"):
        near = pool["near"] if rows is None else pool["near"].rows(rows)
    return basis, pool["density"][every], None, near


def train_variant(variant: dict, train: list[dict], steps: int, batch: int, seed: int):
    """A PointELF of the variant after `steps` Adam steps on batches drawn from 8 grids."""
    from elfkit.models.point import PointELF

    torch.manual_seed(seed)
    net = PointELF(**{"radial": RADIAL, **variant} | _learned_cutoffs(variant))
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        predicted, elf = [], []
        for g in rng.choice(len(train), 8):
            rows = torch.from_numpy(rng.choice(len(train[g]["elf"]), batch // 8, replace=False))
            predicted.append(torch.sigmoid(net(*inputs_of(train[g], variant, rows))))
            elf.append(train[g]["elf"][rows])
        loss = (torch.cat(predicted) - torch.cat(elf)).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    return net.eval()


def _learned_cutoffs(variant: dict) -> dict:
    return {"atom_cutoff": LEARNED_CUTOFF_ANGSTROM, "near_cutoff": LEARNED_CUTOFF_ANGSTROM} if variant.get("atom_features") else {}


@torch.no_grad()
def score(net, variant: dict, val: list[dict]) -> dict:
    """R² over the uniform validation points, overall and per density stratum."""
    from elfkit.analysis.metrics import pointwise

    pred = {p["stratum"]: [] for p in val}
    ref = {p["stratum"]: [] for p in val}
    for pool in val:
        pred[pool["stratum"]].append(torch.sigmoid(net(*inputs_of(pool, variant))).numpy())
        ref[pool["stratum"]].append(pool["elf"].numpy())
    per = {s: pointwise(np.concatenate(pred[s]), np.concatenate(ref[s]))["r2"] for s in sorted(pred)}
    everything = pointwise(np.concatenate([np.concatenate(v) for v in pred.values()]), np.concatenate([np.concatenate(v) for v in ref.values()]))
    return {"r2": everything["r2"], "mae": everything["mae"], "r2_per_stratum": per}


def _hot_keys(every: int = 3) -> dict[str, str]:
    """Keys of the train split's 3000 K snapshots at HOT_DENSITIES_BOHR, every `every`-th scored
    (the stratum name as value) and all of them held out of training."""
    import elfkit.data

    rows = [r for r in elfkit.data.open("hydrogen-fluid").rows() if r["split"] == "train" and r["temperature_k"] == HOT_K and r["metadata"]["rs_bohr"] in HOT_DENSITIES_BOHR]
    return {r["key"]: f"hot rs {r['metadata']['rs_bohr']}" if n % every == 0 else "" for n, r in enumerate(rows)}


def main() -> None:
    import elfkit.data
    from elfkit.train.loader import spread_subset, stratum_of

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=80, help="training grids (spread over densities)")
    parser.add_argument("--val", type=int, default=16, help="validation grids (spread over densities)")
    parser.add_argument("--points", type=int, default=4000, help="probe points per training grid")
    parser.add_argument("--val-points", type=int, default=8000, help="uniform probe points per validation grid")
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=sorted(VARIANTS), metavar="NAME", help="variants to train (default: all)")
    parser.add_argument("--hold-out-hot", action="store_true", help="score the hot low-density train trajectories, held out of training")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    variants = {name: VARIANTS[name] for name in args.variants}
    hot = _hot_keys() if args.hold_out_hot else {}
    train_split = list(elfkit.data.open("hydrogen-fluid", split="train"))
    pool = [s for s in train_split if s.key not in hot]
    chosen = {"train": spread_subset(pool, args.train, stratum_of), "val": spread_subset(list(elfkit.data.open("hydrogen-fluid", split="val")), args.val, stratum_of)}
    train = [probe_inputs(s, args.points, 0.5, i, variants) for i, s in enumerate(chosen["train"])]
    val = [probe_inputs(s, args.val_points, 0.0, 10_000 + i, variants) for i, s in enumerate(chosen["val"])]
    val += [probe_inputs(s, args.val_points, 0.0, 20_000 + i, variants, hot[s.key]) for i, s in enumerate(train_split) if hot.get(s.key)]
    print(f"inputs of {len(train)} + {len(val)} grids in {time.perf_counter() - started:.0f} s", flush=True)
    rows = {}
    for name, variant in variants.items():
        started = time.perf_counter()
        net = train_variant(variant, train, args.steps, args.batch, seed=0)
        rows[name] = {**variant, **score(net, variant, val), "train_seconds": time.perf_counter() - started}
        print(name, json.dumps(rows[name]), flush=True)
    args.out.parent.mkdir(exist_ok=True)
    settings = {k: getattr(args, k) for k in ("train", "val", "points", "val_points", "steps", "batch", "threads", "hold_out_hot")}
    args.out.write_text(json.dumps({"dataset": "hydrogen-fluid", "settings": {**settings, "train_grids": len(train), "val_grids": len(val)}, "variants": rows}, indent=1) + "\n")
    strata = sorted(next(iter(rows.values()))["r2_per_stratum"])
    print("| variant | val R² | MAE | " + " | ".join(strata) + " | train (s) |")
    print("|---|---|---|" + "---|" * len(strata) + "---|")
    for name, r in rows.items():
        per = " | ".join(f"{r['r2_per_stratum'][s]:.4f}" for s in strata)
        print(f"| {name} | {r['r2']:.4f} | {r['mae']:.4f} | {per} | {r['train_seconds']:.0f} |")


if __name__ == "__main__":
    main()
