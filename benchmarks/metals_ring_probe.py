"""Can the point model fit the rings of shallow interstitial maxima at all? An overfit probe.

    python benchmarks/metals_ring_probe.py TAG [--config configs/metals.yaml] [--set KEY=VALUE ...]
        [--keys KEY ... | --all-train [--train-fraction F]] [--score-val KEY ... | all] [--pool 8000] [--steps 4000] [--threads 2]

In compressed Ca, Sr, Y, La and Zr binaries of metals-900 the DFT ELF splits into rings of four
shallow maxima around an interstitial site (benchmarks/shallow_maxima_cells.py), which the
shipped `metals` misses on its own training cells too. This trains the point model of
`--config` (overridden by `--set`, e.g. `--set l_max=4 --set losses.slope=true`) on those
training cells alone (`--keys`, default the five ring cells and three ring-free ones of the same
elements), with large pools (`--pool` points per cell, the config's critical fraction), then
predicts their whole grids and scores maxima recall as `elfkit evaluate` does
(`elfkit.evaluation.prototype_scores`). If a design cannot reach the rings on the cells it is
trained on, its architecture is the limit; if it can, the full training's objective or data is.
`--all-train` trains on every train cell of the dataset instead (do the rings survive among the
others?), `--train-fraction` only the train groups (all volumes of one prototype and
composition) whose hash with the seed falls below that fraction (a learning curve: does val
recall grow with the number of training cells?), and `--score-val` scores val cells as well
(`all`: every one; do they generalise?). A finished run folder is scored again without training.
Not a shipped number: the run folder is scratch/ring-probe/TAG (resumable), the result
benchmarks/results/metals_ring_probe/TAG.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "metals_ring_probe"
RING_CELLS = ["ed6465d9ce77f928", "8dc42df6127690d6", "064094777d710e56", "d1dc6a6938508578", "807d6b42fcf6f1cf"]
"""metals-900 train cells with rings the shipped model misses: B2 YZr and CaZr and D0_3 LaSr3 at
V/V0 0.5, L1_2 Mg3Y and C11b YZr2 at 0.6 (benchmarks/results/shallow_maxima_metals-900.json)."""
CONTROL_CELLS = ["93d301bb8c727ec9", "59c1fd3dca3210ee", "c6b9874175534827"]
"""Train cells of the same elements with shallow interstitial maxima it recalls in full: D0_3
La3Sr at 0.6, bcc Ca and L1_0 LaY at 0.5."""


def parse_value(text: str):
    """A --set value as YAML reads it (numbers, booleans, strings)."""
    return yaml.safe_load(text)


def probe_config(path: Path, overrides: list[str], steps: int, threads: int):
    """The training config of `path` with overrides (`KEY=VALUE` of the model, or of the config
    itself when KEY is one of its own fields such as `seed`; `losses.KEY=VALUE` / `points.KEY=VALUE`),
    `steps` and `threads`, validated again."""
    from elfkit.train.config import TrainConfig, load_config

    config = load_config(path).model_dump(mode="json")
    for item in overrides:
        key, _, value = item.partition("=")
        section, _, name = key.rpartition(".")
        target = config[section] if section else config if name in config and name != "model" else config["model"]
        target[name] = parse_value(value)
    config |= {"steps": steps, "threads": threads, "warmup_steps": min(config["warmup_steps"], steps // 10), "validate_every": steps,
               "checkpoint_minutes": 3.0}
    return TrainConfig.model_validate(config)


def make_trainer(config, out_dir: Path, samples: list, pool: int):
    """A `PointTrainer` whose pools are `pool` points of each of `samples` (built by
    `config.threads` processes), validated on up to 10 of the same cells."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import torch

    from elfkit.train.points import PointTrainer, build_pool

    class CellsTrainer(PointTrainer):
        def load_data(self, on_progress=None):
            points = self.config.points
            jobs = [(s, pool, points.weighted_fraction, [self.config.seed, 7, n], False, points.nuclei, points.critical)
                    for n, s in enumerate(samples)]
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(self.config.threads, mp_context=context, initializer=torch.set_num_threads, initargs=(1,)) as workers:
                self.train_pools = list(workers.map(build_pool, [self.descriptor] * len(jobs), *zip(*jobs)))
            self.val_pools = [build_pool(self.descriptor, s, 5000, 0.0, [1, n]) for n, s in enumerate(samples[:10])]

    return CellsTrainer(config, out_dir)


def chosen_cells(dataset: str, split: str, keys: list[str] | None) -> list:
    """The samples of a split with the given keys (all of them when `keys` is None); exits
    naming the dataset when a key is missing."""
    import elfkit.data

    samples = [s for s in elfkit.data.open(dataset, split=split) if keys is None or s.key in keys]
    if keys is not None and len(samples) != len(set(keys)):
        raise SystemExit(f"{dataset} {split} holds {len(samples)} of the {len(set(keys))} keys")
    return samples


def group_fraction(samples: list, fraction: float, seed: int) -> list:
    """The samples whose group hashes (sha256 of seed:group, as a number in [0, 1)) below
    `fraction`: about that fraction of the groups, all volumes of a group together."""
    import hashlib

    def position(group: str) -> float:
        return int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest(), 16) / 16**64

    return [s for s in samples if position(s.group) < fraction]


def score_cells(model_path: Path, samples: list, split: str) -> list[dict]:
    """Maxima recall and voxel R² of the trained model on each cell's whole grid (of `split`)."""
    from elfkit.analysis.metrics import pointwise
    from elfkit.evaluation import prototype_scores, reference_topology
    from elfkit.field import Field
    from elfkit.predict import predict

    rows = []
    for sample in samples:
        pred = predict(sample.atoms, sample.elf.shape, model_path)
        scores = prototype_scores(pred, reference_topology(Field(sample.atoms, sample.elf, "elf")))
        rows.append({
            "split": split, "key": sample.key, "structure": f"{sample.metadata.get('prototype')} {sample.atoms.get_chemical_formula()}",
            "volume_fraction": sample.metadata.get("volume_fraction"), "r2": pointwise(pred.values, sample.elf)["r2"],
            **{k: scores[k] for k in ("recall_maxima", "count_maxima", "recall_interstitial_maxima", "count_interstitial_maxima")},
        })
        print(json.dumps(rows[-1]), flush=True)
    return rows


def trained_on(args, samples: list):
    """What the record says the model was trained on: every train cell, or the keys."""
    return "every train cell" if args.all_train and args.train_fraction == 1.0 else [s.key for s in samples]


def main() -> None:
    """Train on the chosen cells, score them and write the JSON."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tag")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "metals.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--dataset", default="metals-900")
    parser.add_argument("--keys", nargs="+", default=RING_CELLS + CONTROL_CELLS)
    parser.add_argument("--all-train", action="store_true")
    parser.add_argument("--train-fraction", type=float, default=1.0)
    parser.add_argument("--score-val", nargs="*", default=[])
    parser.add_argument("--pool", type=int, default=8000)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    samples = chosen_cells(args.dataset, "train", None if args.all_train else args.keys)
    val_cells = chosen_cells(args.dataset, "val", None if args.score_val == ["all"] else args.score_val)
    config = probe_config(args.config, args.overrides, args.steps, args.threads)
    if args.train_fraction < 1.0:
        samples = group_fraction(samples, args.train_fraction, config.seed)
    out_dir = ROOT / "scratch" / "ring-probe" / args.tag
    trainer = make_trainer(config, out_dir, samples, args.pool)
    model_path = out_dir / f"{config.name}.safetensors"
    if not model_path.is_file():
        trainer.load_data()
        model_path = trainer.run()
    rows = score_cells(model_path, [s for s in samples if s.key in args.keys], "train") + score_cells(model_path, val_cells, "val")
    summary = {"training_seconds": float(torch.load(out_dir / "state.pt", weights_only=False)["seconds"])}
    for name, chosen in (("ring", [r for r in rows if r["key"] in RING_CELLS]), ("train", [r for r in rows if r["split"] == "train"]),
                         ("val", [r for r in rows if r["split"] == "val"])):
        if chosen:
            summary |= {f"{name}_recall_mean": float(np.mean([r["recall_maxima"] for r in chosen])),
                        f"{name}_r2_mean": float(np.mean([r["r2"] for r in chosen])), f"{name}_cells": len(chosen)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {"tag": args.tag, "config": str(args.config.relative_to(ROOT)), "overrides": args.overrides, "dataset": args.dataset,
              "trained_on": trained_on(args, samples), "train_cells": len(samples), "pool": args.pool, "steps": args.steps, "summary": summary, "rows": rows}
    (RESULTS / f"{args.tag}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
