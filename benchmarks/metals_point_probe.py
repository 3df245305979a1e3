"""A quick probe of the point model for metals (elfkit.models.point with one-hot species and
engine-valence channels, pools from elfkit.train.points.build_pool): trained for a fixed wall
time on one thread (L1 loss, 8 x 256 points per step, cosine learning rate), then scored by R²
on uniform points of up to 10 val cells per dataset, beside the shipped `metals` model (first a
U-Net, now a point model) on the same points. It decided the design of configs/metals.yaml, not a shipped number.

    python benchmarks/metals_point_probe.py benchmarks/results/metals_point_probe.json [--minutes 20 | --steps N]
        [--cutoff 5] [--radial 8] [--near-radial 0] [--nuclei] [--l-max 3] [--features sad+engine-valence] [--species onehot|none] [--species-rank R [--residual-decay L]]
        [--datasets metals metals-900 metals-gpaw] [--seed S] [--contrast W] [--save MODEL.safetensors]

`--species none` gives every atom the same radial functions (the element then enters only through
the density channels at the point), against the one-hot species of configs/metals.yaml.
`--species-rank R` shares R radial functions between the species (`PointELF` species_rank);
`--residual-decay L` adds free per-element functions (species_residual) and L times their mean
square to the loss. `--steps` stops after that many steps instead of a wall time (comparable runs on a busy machine);
`--seed` sets the initial weights and the batches (pools and val points are fixed). Besides
R² per dataset it reports R² per element (mean over the val cells holding it).
`--contrast W` draws each pool as pairs of nearby grid points (`paired_pool_indices`) and adds W
times the L1 error of the pairs' ELF differences to the loss (a GRAD term for points: the local
contrast that makes maxima deep). `--save` writes the trained net as a model file, so that
`scripts/missed_maxima.py DATASET --model MODEL.safetensors` measures its maxima recall.
`--near-radial K` adds K narrow Gaussians at the atoms to the radial functions (`PointELF`
near_radial); `--nuclei` puts the grid point nearest each atom in every train pool
(`nucleus_indices`).
"""
import argparse, json, time
import numpy as np, torch

torch.set_num_threads(1)
import elfkit.data
from elfkit.analysis.metrics import pointwise
from elfkit.models.point import PointELF
from elfkit.train.points import build_pool, paired_pool_indices, pool_at

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--minutes", type=float, default=20)
p.add_argument("--pool", type=int, default=400)
p.add_argument("--val-per-dataset", type=int, default=10)
p.add_argument("--val-points", type=int, default=3000)
p.add_argument("--cutoff", type=float, default=5.0)
p.add_argument("--radial", type=int, default=8)
p.add_argument("--l-max", type=int, default=3)
p.add_argument("--near-radial", type=int, default=0)
p.add_argument("--nuclei", action="store_true")
p.add_argument("--features", default="sad+engine-valence")
p.add_argument("--datasets", nargs="+", default=["metals", "metals-900", "metals-gpaw"])
p.add_argument("--steps", type=int, default=None)
p.add_argument("--species", choices=["onehot", "none"], default="onehot")
p.add_argument("--species-rank", type=int, default=0)
p.add_argument("--residual-decay", type=float, default=None)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--contrast", type=float, default=0.0)
p.add_argument("--save", default=None)
args = p.parse_args()
torch.manual_seed(args.seed)

train = [s for d in args.datasets for s in elfkit.data.open(d, split="train")]
val = {}
for d in args.datasets:
    v = list(elfkit.data.open(d, split="val"))
    val[d] = v[:: max(1, len(v) // args.val_per_dataset)][: args.val_per_dataset]
species = sorted({s for x in train for s in x.atoms.get_chemical_symbols()})
net = PointELF(cutoff=args.cutoff, radial=args.radial, near_radial=args.near_radial, l_max=args.l_max, channels=8, hidden=128, layers=3, prior_floor=0.45,
               species=species if args.species == "onehot" else None, features=args.features,
               species_rank=args.species_rank, species_residual=args.residual_decay is not None)
descriptor = {**net.descriptor, "features": net.features.value}
t0 = time.perf_counter()
if args.contrast:
    pools = [pool_at(descriptor, s, paired_pool_indices(s.elf, args.pool, 0.5, np.random.default_rng([0, n]))) for n, s in enumerate(train)]
else:
    pools = [build_pool(descriptor, s, args.pool, 0.5, [0, n], nuclei=args.nuclei) for n, s in enumerate(train)]
vpools = {d: [build_pool(descriptor, s, args.val_points, 0.0, [1, n]) for n, s in enumerate(v)] for d, v in val.items()}
print(f"pools {time.perf_counter() - t0:.0f} s, {len(train)} train grids, species {species}", flush=True)

from elfkit.predict import get_model, predict
from elfkit.train.points import pool_indices

unet = get_model("metals")
unet_r2 = {}
for d, v in val.items():
    scores = []
    for n, s in enumerate(v):
        index = pool_indices(s.elf, args.val_points, 0.0, np.random.default_rng([1, n]))
        scores.append(pointwise(predict(s.atoms, s.elf.shape, unet).values.ravel()[index], np.asarray(s.elf).ravel()[index])["r2"])
    unet_r2[d] = float(np.mean(scores))
print("shipped metals val R2", unet_r2, flush=True)

opt = torch.optim.Adam(net.parameters(), lr=2e-3)
rng = np.random.default_rng(args.seed)
log, step, start = [], 0, time.perf_counter()


def validate():
    net.eval()
    with torch.no_grad():
        scores = {d: [pointwise(torch.sigmoid(net(q.basis, q.density, q.columns)).numpy(), q.elf.numpy())["r2"] for q in qs]
                  for d, qs in vpools.items()}
    net.train()
    out = {d: float(np.mean(r)) for d, r in scores.items()}
    for element in sorted({e for v in val.values() for s in v for e in s.atoms.get_chemical_symbols()}):
        held = [r for d, v in val.items() for s, r in zip(v, scores[d]) if element in s.atoms.get_chemical_symbols()]
        out[f"element {element}"] = float(np.mean(held))
    return out


budget = args.minutes * 60
while (step < args.steps) if args.steps else (time.perf_counter() - start < budget):
    logits, e = [], []
    for c in rng.choice(len(pools), 8):
        q = pools[c]
        if args.contrast:
            half = len(q.elf) // 2
            first = rng.choice(half, 128, replace=False)
            rows = torch.from_numpy(np.concatenate([first, first + half]))
        else:
            rows = torch.from_numpy(rng.choice(len(q.elf), 256, replace=False))
        logits.append(net(q.basis[rows], q.density[rows], q.columns)); e.append(q.elf[rows])
    frac = step / args.steps if args.steps else (time.perf_counter() - start) / budget
    for g in opt.param_groups:
        g["lr"] = 2e-3 * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * frac)))
    predicted, e = torch.sigmoid(torch.cat(logits)), torch.cat(e)
    loss = torch.nn.functional.l1_loss(predicted, e)
    if args.contrast:
        pd, ed = (x.view(8, 2, 128) for x in (predicted, e))
        loss = loss + args.contrast * torch.nn.functional.l1_loss(pd[:, 0] - pd[:, 1], ed[:, 0] - ed[:, 1])
    if args.residual_decay is not None:
        loss = loss + args.residual_decay * net.species_residual_square()
    opt.zero_grad(); loss.backward(); opt.step(); step += 1
    if step % 1000 == 0:
        log.append({"step": step, "seconds": time.perf_counter() - start, "val_r2": validate()})
        print(log[-1], flush=True)
result = {"args": vars(args), "species": species, "steps": step, "val_r2": validate(), "unet_val_r2": unet_r2, "log": log}
print(result["val_r2"], unet_r2)
json.dump(result, open(args.out, "w"), indent=1)
if args.save:
    from pathlib import Path

    from elfkit.models.checkpoint import save_model

    save_model(args.save, net.eval(), {"architecture": "point", "name": Path(args.save).stem, "probe": vars(args)})
