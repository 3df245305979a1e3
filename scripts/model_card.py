"""Write a shipped model's card (MODEL_CARD-style Markdown) from its metadata and evaluations.

    elfkit evaluate MODEL hydrogen-fluid -o fluid.json
    elfkit evaluate MODEL hydrogen-crystals -o crystals.json
    python scripts/model_card.py MODEL fluid.json crystals.json -o src/elfkit/models/shipped/NAME.md

(a metals model: one `elfkit evaluate MODEL DATASET -o ...` per metal dataset).

Every number in the card comes from the model file's metadata or from those JSON files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import elfkit.data
from elfkit.evaluation import BASELINE, markdown_table
from elfkit.predict import get_model

ENGINES = {"qe": "Quantum ESPRESSO with elfkit's pseudopotentials", "gpaw": "GPAW with its default PAW setups"}
HYDROGEN_LIMITS = [
    "- Trained on dense fluid hydrogen only; other elements and densities outside the rs range above get a warning "
    "and are not expected to be accurate.",
    "- The crystals are a transfer test: the model never saw a crystal. Their critical points are matched within "
    "0.2 Å at persistence 0.02; a DFT maximum also counts as found anywhere on its plateau, the points its own ELF "
    "cannot tell apart from it (`elfkit.analysis.critical.plateau_aliases`).",
]
METAL_LIMITS = [
    "- Trained on metals only, in common unary and binary prototypes from ambient volume to half; hydrogen, "
    "hydrides and elements outside the list above get a warning and are not expected to be accurate.",
    "- Labels come from two engines whose valence shells differ (see What it predicts); the model reads the SAD of "
    "exactly the labelling engine's valence electrons (features `{features}`) and predicts the ELF of the engine "
    "`elfkit dft` would use: QE where elfkit has a pseudopotential for every element, else GPAW. Near the nuclei the "
    "valence ELF depends on that pseudopotential or setup, so it is that engine's ELF the model reproduces.",
]

SPECIES_LIMIT = (
    "- {how}, so a structure with an element outside the list above (hydrogen included) is refused with one line "
    "naming it; for a hydride, predict its metal sublattice (`elfkit screen --strip H`). Trained in common unary and "
    "binary prototypes from ambient volume to half."
)


def species_design(config: dict) -> str:
    """How the point model's radial functions tell the elements apart, from its config."""
    rank = config.get("species_rank")
    if not rank:
        return "Each element has its own radial functions (one-hot species)"
    free = " plus free per-element ones held small in training (`species_residual`)" if config.get("species_residual") else ""
    return f"Each element mixes {rank} radial functions shared by all elements with its own learned weights{free}"

WEAK_R2 = 0.9
GRID_LIMIT = (
    "- The network sees voxels: grids whose spacing lies outside the training range are predicted on a grid inside "
    "it and interpolated (periodic cubic spline), and skewed cells run as the most nearly orthogonal supercell of "
    "their primitive cell (`benchmarks/grid_consistency.py` measures both)."
)
POINT_SPEED = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "points.json"
GRID_POINTS_64_ATOMS = 45**3
"""Grid points of a 64-atom hydrogen cell at rs 1.5 bohr on the 0.12 Å grid `elfkit predict` picks."""


def point_limit(loaded) -> str:
    """The point model's reach and its measured cost per probe point (from `benchmarks/bench_points.py`'s
    results when they were measured on this very file)."""
    reach = ("- Each point sees only the atoms within the cutoff: anything the ELF owes to atoms farther away is out of "
             "its reach.")
    speed = json.loads(POINT_SPEED.read_text()) if POINT_SPEED.exists() else {}
    if speed.get("model_sha256") != loaded.sha256:
        return f"{reach} Its time per probe point grows with the atoms within the cutoff, not with the cell."
    small = min(speed["rows"], key=lambda row: row["natoms"])
    microseconds = small["seconds_per_million_points"]
    return (f"{reach} It costs about {microseconds:.0f} µs per probe point in dense fluid hydrogen on {speed['threads']} "
            f"threads (`benchmarks/bench_points.py`, {small['natoms']} atoms), so a 64-atom cell's 45³ grid takes about "
            f"{microseconds * GRID_POINTS_64_ATOMS / 1e6:.0f} s where the U-Net `hydrogen` takes about one.")


def card(model: str, evaluations: list[dict]) -> str:
    """The card's Markdown text."""
    loaded = get_model(model)
    meta = loaded.metadata
    config = meta["train_config"]
    domain = meta.get("domain", {})
    datasets = "; ".join(
        f"`{d['name']}` (manifest {d['manifest_sha256']}, train/val/test {d['splits']['train']}/{d['splits']['val']}/{d['splits']['test']}; "
        f"split {d['split_rule']})"
        for d in meta["datasets"]
    )
    parameters = sum(p.numel() for p in loaded.net.parameters())
    reach = (
        f"receptive radius {meta['receptive_radius_voxels']} voxels"
        if "receptive_radius_voxels" in meta
        else f"cutoff {meta['cutoff_angstrom']} Å (any grid and any point)"
    )
    lines = [
        f"# Model card: `{meta['name']}`",
        "",
        f"- **What it predicts**: the valence ELF (dimensionless) of PBE DFT ({label_engines(meta)}) "
        f"on the unit-cell grid, from the atomic positions alone.",
        f"- **File**: `{Path(loaded.source).name}`, SHA-256 {loaded.sha256} (the evaluations below name the same hash).",
        f"- **Architecture**: `{meta['architecture']}` {json.dumps(meta['config'])}, {parameters:,} parameters, {reach}; "
        f"inputs {', '.join(meta['channels'])} (`elfkit.features`).",
        f"- **Training data**: {datasets}.",
        f"- **Domain**: elements {', '.join(domain.get('elements', []))}; rs {domain.get('rs_bohr')} bohr; "
        f"training grids of spacing {domain.get('grid_spacing_angstrom')} Å "
        + ("(other grids are predicted on a grid of that spacing and interpolated)." if "receptive_radius_voxels" in meta else "(it reads points, not voxels: any grid)."),
        f"- **Training**: `elfkit train configs/{meta['name']}.yaml`, {meta['steps']} steps, seed {config['seed']}, "
        f"{meta['training_seconds'] / 60:.0f} min on {config['threads']} CPU threads, elfkit {meta['elfkit_version']}, "
        f"torch {meta['torch_version']}, created {meta['created']}.",
        f"- **Validation during training** (fixed subset of the val split): R² {meta['validation'].get('val_r2', float('nan')):.4f}, "
        f"MAE {meta['validation'].get('val_mae', float('nan')):.4f}.",
        "",
        "## Held-out accuracy",
        "",
        "Means over samples of each stratum; the physics baseline is the gradient-expansion ELF of the SAD with no "
        "learning. Reproduce with `elfkit evaluate " + meta["name"] + " DATASET`.",
    ]
    for result in evaluations:
        mine = {**result, "table": [row for row in result["table"] if row["model"] in (meta["name"], BASELINE)]}
        if "summary" in result:
            mine["summary"] = {m: row for m, row in result["summary"].items() if m in (meta["name"], BASELINE)}
        lines += ["", f"### `{result['dataset']}`, split `{result['split']}`", "", markdown_table(mine)]
    limits = HYDROGEN_LIMITS if domain.get("elements") == ["H"] else [
        line.format(features=config["model"].get("features")) for line in METAL_LIMITS]
    if meta["config"].get("species"):
        limits = [SPECIES_LIMIT.format(how=species_design(meta["config"])), *limits[1:]]
    lines += [
        "",
        "## Limits",
        "",
        limits[0],
        GRID_LIMIT if "receptive_radius_voxels" in meta else point_limit(loaded),
        limits[1],
    ]
    weak = weak_elements(meta["name"], evaluations)
    if weak:
        lines.append(f"- Elements whose test R² (tables above) is below {WEAK_R2}: {weak}. Expect errors there "
                     "well beyond the means, and check such a prediction against `elfkit dft` before relying on it.")
    return "\n".join(lines) + "\n"


def weak_elements(model: str, evaluations: list[dict]) -> str:
    """Each element whose per-element R² in any evaluation is below WEAK_R2, with that R² and dataset."""
    weak = [
        f"{row['stratum'].removeprefix('element ')} {row['r2']:.3f} (`{result['dataset']}`)"
        for result in evaluations
        for row in result["table"]
        if row["model"] == model and row["stratum"].startswith("element ") and row["r2"] < WEAK_R2
    ]
    return ", ".join(weak)


def label_engines(meta: dict) -> str:
    """Which engine labelled which training dataset and its elements, from the manifests."""
    parts = []
    for entry in meta["datasets"]:
        manifest = elfkit.data.open(entry["name"]).manifest
        elements = sorted({symbol for row in manifest["samples"] for symbol in _symbols(row["formula"])})
        parts.append(f"{ENGINES[manifest['labels']['engine']]} for `{entry['name']}` ({', '.join(elements)})")
    return "; ".join(parts)


def _symbols(formula: str) -> list[str]:
    from ase import Atoms

    return Atoms(formula).get_chemical_symbols()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("evaluations", nargs="+", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    evaluations = [json.loads(path.read_text()) for path in args.evaluations]
    args.output.write_text(card(args.model, evaluations))


if __name__ == "__main__":
    main()
