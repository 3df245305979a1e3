"""`make bench`: regenerate benchmarks/RESULTS.md and its figures (benchmarks/results/bench/) from
the shipped models and the committed datasets, beside the claims of seeds 000 and 004.

    python benchmarks/bench.py [--only SECTION...] [--resume] [--workers 2]

Sections (in order): fluid (accuracy by pressure), crystals (transfer to crystalline hydrogen),
metals (voxel R² per element, parity of ELF maxima, two binaries), templates (screening of
superhydride-former sublattices, the LaH10 example, a DFT check of the top five), trajectory
(networking value of every frame of benchmarks/data/hydrogen_md.extxyz.gz, made by
scripts/make_md_trajectory.py), speed (prediction time and memory against cell size, QE on
the same cells as far as it goes). A section whose inputs do not exist yet (no
trajectory file) says so in the report instead of numbers.

Each section keeps its raw result in benchmarks/results/bench/SECTION.json; with --resume a
section whose result exists is not recomputed (a killed run goes on where it stopped), and
the report is always rewritten from the results present.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "results" / "bench"
REPORT = HERE / "RESULTS.md"
TRAJECTORY = HERE / "data" / "hydrogen_md.extxyz.gz"
HYDROGEN_MODELS = ["hydrogen", "hydrogen-point", "hydrogen+hydrogen-point"]
METAL_DATASETS = ["metals", "metals-900", "metals-gpaw"]
FORMERS = ["La", "Y", "Ca", "Sr", "Sc", "Zr"]
TEMPLATE_PAIRS = [("Ca", "Y"), ("La", "Y"), ("Ca", "La"), ("Li", "La"), ("Mg", "Y")]
TEMPLATE_VOLUMES = (0.6, 0.5)
SPEED_SIZES = [64, 512, 1000, 4000, 10000]
DFT_MAX_ATOMS = 64
"""The largest cell QE and GPAW are timed on (the next, 512 atoms, would take them half an hour to hours)."""


def log(message: str) -> None:
    """A progress line on stderr with the wall-clock time."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def save(name: str, result: dict) -> dict:
    """Write a section's raw result atomically; returns it."""
    from elfkit.io._files import atomic_text_output

    with atomic_text_output(OUT / f"{name}.json") as handle:
        json.dump(result, handle, indent=1)
    return result


def run_fluid(options) -> dict:
    """Every hydrogen model and the physics baseline on the hydrogen-fluid test split."""
    from elfkit.analysis.plots import evaluation_plot
    from elfkit.evaluation import evaluate

    result = evaluate(HYDROGEN_MODELS, "hydrogen-fluid", "test", workers=options.workers)
    evaluation_plot(result, OUT / "residual_study.png")
    return {key: result[key] for key in ("models", "dataset", "split", "table")}


def run_crystals(options) -> dict:
    """Every hydrogen model on the ten relaxed crystals, and isosurface pictures at the DFT
    networking value for two phases (predicted by `hydrogen` beside DFT)."""
    import elfkit.data
    from elfkit.analysis.plots import isosurface_comparison_png
    from elfkit.analysis.network import networking_value
    from elfkit.evaluation import evaluate
    from elfkit.field import Field
    from elfkit.predict import predict

    result = evaluate(HYDROGEN_MODELS, "hydrogen-crystals", "test", workers=options.workers)
    pictures = []
    for sample in list(elfkit.data.open("hydrogen-crystals"))[:: 5]:
        reference = Field(sample.atoms, np.asarray(sample.elf, dtype=np.float32), "elf")
        phi = networking_value(reference)
        name = f"{sample.group.removeprefix('crystal-')} {sample.pressure_gpa:.0f} GPa"
        path = OUT / f"isosurface_{sample.group.removeprefix('crystal-').replace('/', '')}_{sample.pressure_gpa:.0f}GPa.png"
        fields = {"hydrogen (predicted)": predict(sample.atoms, reference.values.shape, "hydrogen"), "DFT (QE)": reference}
        isosurface_comparison_png(fields, phi, path, f"{name}: ELF = φ(DFT) = {phi:.3f}")
        pictures.append({"name": name, "phi": phi, "png": path.name})
    return {"models": result["models"], "table": result["table"], "crystals": [_crystal_topology(row) for row in result["samples"]],
            "pictures": pictures}


def _crystal_topology(row: dict) -> dict:
    """The critical-point and networking-value scores of one (crystal, model) row of `evaluate`."""
    keys = ("model", "stratum", "networking_value", "networking_value_ref", "count_maxima", "count_saddles",
            "recall_maxima", "recall_saddles", "value_error_maxima", "value_error_saddles")
    return {key: row[key] for key in keys}


def run_metals(options) -> dict:
    """The `metals` model on the test split of every metal dataset: rows per element, the parity
    of ELF maxima (figure per dataset) and the template ranking; two binaries as isosurfaces."""
    from elfkit.analysis.plots import evaluation_plot
    from elfkit.evaluation import evaluate

    out = {}
    for dataset in METAL_DATASETS:
        log(f"metals: {dataset}")
        result = evaluate(["metals"], dataset, "test", workers=options.workers)
        evaluation_plot(result, OUT / f"metals_parity_{dataset}.png")
        out[dataset] = {key: result[key] for key in ("models", "table", "summary")}
    out["binaries"] = _binary_pictures()
    return out


def _binary_pictures() -> list[dict]:
    """Predicted and DFT isosurfaces (ELF 0.55) of the first two binary test cells of `metals`."""
    import elfkit.data
    from elfkit.analysis.plots import isosurface_comparison_png
    from elfkit.field import Field
    from elfkit.predict import predict

    pictures = []
    for sample in elfkit.data.open("metals", split="test"):
        if len(set(sample.atoms.numbers)) < 2 or len(pictures) == 2:
            continue
        reference = Field(sample.atoms, np.asarray(sample.elf, dtype=np.float32), "elf")
        name = f"{sample.group} V/V0 {sample.metadata.get('volume_fraction', 1):g}"
        path = OUT / f"isosurface_{sample.group}.png"
        fields = {"metals (predicted)": predict(sample.atoms, reference.values.shape, "metals"), "DFT (QE)": reference}
        isosurface_comparison_png(fields, 0.55, path, f"{name}: ELF = 0.55")
        pictures.append({"name": name, "png": path.name})
    return pictures


def template_candidates():
    """Unary (fcc, bcc, hcp) and B2/AlB2 binary sublattices of the superhydride formers at two
    compressions (`TEMPLATE_VOLUMES`), as `elfkit.screening.Candidate`s."""
    from elfkit.data.metals import build
    from elfkit.screening import Candidate

    candidates = []
    for volume in TEMPLATE_VOLUMES:
        for element in FORMERS:
            for prototype in ("fcc", "bcc", "hcp"):
                candidates.append(Candidate(f"{prototype}-{element}", f"{prototype} {element}", build(prototype, [element], volume), volume))
        for pair in TEMPLATE_PAIRS:
            for prototype in ("B2", "AlB2"):
                atoms = build(prototype, list(pair), volume)
                candidates.append(Candidate(f"{prototype}-{'-'.join(pair)}", f"{prototype} {''.join(pair)}", atoms, volume))
    return candidates


def run_templates(options) -> dict:
    """Screen `template_candidates` with `metals`, the LaH10 example with its H removed, and the
    top five recomputed with QE (the dataset settings of metals-900) to check the ranking."""
    import ase.io

    from elfkit.screening import make_candidates, run_screen

    candidates = template_candidates()
    results = run_screen(candidates, "metals", workers=options.workers)
    rows = [dict(r.row, name=r.candidate.name) for r in results]
    lah10 = ase.io.read(ROOT / "examples" / "LaH10_Fm-3m_170GPa.cif")
    started = time.perf_counter()
    example = run_screen(make_candidates(lah10, "examples/LaH10_Fm-3m_170GPa.cif", strip=["H"]), "metals", workers=1)[0]
    example_seconds = time.perf_counter() - started
    check = _dft_check([r.candidate for r in results[:5]])
    return {"rows": rows, "lah10": dict(example.row, seconds=example_seconds), "dft_check": check}


def _dft_check(candidates) -> list[dict]:
    """Template score of each candidate from its QE ELF (900 eV, k-spacing 0.25 1/Å, 0.2 eV)."""
    from elfkit.analysis.templates import screen_row
    from elfkit.dft import DFTSettings, compute
    from elfkit.grid import Grid

    settings = DFTSettings(engine="qe", cutoff_ev=900.0, kspacing=0.25, smearing_ev=0.2)
    rows = []
    for candidate in candidates:
        log(f"templates: QE for {candidate.label}")
        shape = Grid.for_spacing(candidate.atoms.cell.array, 0.12).shape
        elf = compute(candidate.atoms, shape, settings).elf
        rows.append({"name": candidate.name, "volume_fraction": candidate.volume_fraction, "template_score_dft": screen_row(elf, candidate.source)["template_score"]})
    return rows


def run_trajectory(options) -> dict:
    """Predicted ELF and networking value of every frame of the MD trajectory (`hydrogen`),
    against time and against the pressure of the dataset's labelled snapshots at the same
    density and temperature."""
    import ase.io

    from elfkit.analysis.batch import topology_rows

    frames = ase.io.read(TRAJECTORY, index=":")
    started = time.perf_counter()
    rows = topology_rows([(f"frame {n}", atoms) for n, atoms in enumerate(frames)], model="hydrogen", workers=options.workers)
    seconds = time.perf_counter() - started
    points = [{"rs_bohr": float(a.info["rs_bohr"]), "temperature_k": float(a.info["temperature_k"]), "time_fs": float(a.info["time_fs"]),
               "phi": row["networking_value"]} for a, row in zip(frames, rows)]
    pressures = _dataset_pressures({(p["rs_bohr"], p["temperature_k"]) for p in points})
    _trajectory_plot(points, pressures, OUT / "trajectory_phi.png")
    return {"frames": len(frames), "seconds": seconds, "workers": options.workers, "points": points,
            "pressure_gpa": {f"{rs:g} {t:g}": p for (rs, t), p in pressures.items()}}


def _dataset_pressures(conditions) -> dict:
    """Mean DFT pressure (GPa) of the hydrogen-fluid snapshots at each (rs, temperature)."""
    import elfkit.data

    rows = elfkit.data.open("hydrogen-fluid").rows()
    out = {}
    for rs, temperature in conditions:
        values = [r["pressure_gpa"] for r in rows if r["metadata"].get("rs_bohr") == rs and r.get("temperature_k") == temperature]
        out[(rs, temperature)] = float(np.mean(values)) if values else None
    return out


def _trajectory_plot(points: list[dict], pressures: dict, path: Path) -> None:
    from elfkit.analysis.plots import _pyplot, _save

    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for rs in sorted({p["rs_bohr"] for p in points}):
        mine = [p for p in points if p["rs_bohr"] == rs and p["phi"] is not None]
        left.plot([p["time_fs"] for p in mine], [p["phi"] for p in mine], lw=0.8, label=f"rs {rs:g} bohr")
        pressure = pressures.get((rs, mine[0]["temperature_k"])) if mine else None
        if pressure is not None:
            phis = [p["phi"] for p in mine]
            right.errorbar(pressure, np.mean(phis), yerr=np.std(phis), fmt="o", capsize=3, label=f"rs {rs:g}")
    left.set(xlabel="time (fs)", ylabel="networking value φ (predicted)", title="φ of every MD frame")
    right.set(xlabel="pressure (GPa, DFT snapshots of hydrogen-fluid)", ylabel="φ mean ± sd", title="φ against pressure")
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    _save(fig, path)


def run_speed(options) -> dict:
    """bench_predict.py (fresh process per size, 2 threads) with QE and GPAW on the 64-atom cell."""
    out = OUT / "predict.json"
    command = [sys.executable, str(HERE / "bench_predict.py"), "--sizes", *map(str, SPEED_SIZES),
               "--qe-max-atoms", str(DFT_MAX_ATOMS), "--gpaw-max-atoms", str(DFT_MAX_ATOMS), "--out", str(out)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    result = json.loads(out.read_text())
    rows = result["rows"]
    slope = float(np.polyfit(np.log([r["natoms"] for r in rows]), np.log([r["seconds_predict"] for r in rows]), 1)[0])
    _speed_plot(rows, slope, OUT / "speed.png")
    return {**result, "slope": slope}


def _speed_plot(rows: list[dict], slope: float, path: Path) -> None:
    from elfkit.analysis.plots import _pyplot, _save

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    natoms = [r["natoms"] for r in rows]
    ax.loglog(natoms, [r["seconds_predict"] for r in rows], "o-", label=f"prediction (slope {slope:.2f})")
    ax.loglog(natoms, [r["peak_memory_gb"] for r in rows], "s--", label="peak memory (GB)")
    for engine, name, marker in (("qe", "QE", "^"), ("gpaw", "GPAW", "v")):
        timed = [(r["natoms"], r[f"{engine}_seconds"]) for r in rows if r.get(f"{engine}_seconds")]
        if timed:
            ax.loglog(*zip(*timed), marker, label=f"{name} SCF + ELF, 1 core (s)")
    ax.set(xlabel="hydrogen atoms", ylabel="seconds / GB", title="elfkit predict, 2 threads")
    ax.legend(fontsize=8)
    _save(fig, path)


SECTIONS = {
    "fluid": run_fluid,
    "crystals": run_crystals,
    "metals": run_metals,
    "templates": run_templates,
    "trajectory": run_trajectory,
    "speed": run_speed,
}


def missing_input(name: str) -> str | None:
    """Why section `name` cannot run here, or None."""
    if name == "trajectory" and not TRAJECTORY.exists():
        return f"no trajectory at {TRAJECTORY.relative_to(ROOT)} yet (make it with scripts/make_md_trajectory.py)"
    return None


def provenance() -> dict:
    """Commit, machine and model versions the report was made with."""
    from elfkit import __version__
    from elfkit.models.checkpoint import shipped_models
    from elfkit.predict import get_model

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    models = {name: get_model(name).sha256[:16] for name in sorted(shipped_models())}
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor())
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit, "elfkit": __version__,
            "machine": f"{os.cpu_count()} cores ({cpu}), {memory_gb:.0f} GB, Python {platform.python_version()}", "models": models}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--resume", action="store_true", help="keep the section results already in benchmarks/results/bench")
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    OUT.mkdir(parents=True, exist_ok=True)
    for name in options.only:
        if missing_input(name) or (options.resume and (OUT / f"{name}.json").exists()):
            continue
        log(f"{name}: running")
        started = time.perf_counter()
        result = SECTIONS[name](options)
        save(name, {**result, "section_seconds": time.perf_counter() - started})
        log(f"{name}: done in {time.perf_counter() - started:.0f} s")
    from bench_report import write_report

    write_report(provenance(), {name: missing_input(name) for name in SECTIONS if missing_input(name)})
    log(f"wrote {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
