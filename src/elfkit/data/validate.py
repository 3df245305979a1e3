"""Checks of a finished dataset: ELF values, electron counts, SCF convergence, duplicates,
and a re-computation of random samples, covering every element, with the other DFT engine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from elfkit.data import Dataset
from elfkit.io._files import atomic_text_output

OTHER_ENGINE = {"qe": "gpaw", "gpaw": "qe"}


def _qe_valence(settings: dict) -> dict[str, float]:
    from elfkit.dft.qe import PACKAGE_PSEUDO_DIR

    folder = Path(settings.get("pseudo_dir") or PACKAGE_PSEUDO_DIR)
    valence = {}
    for upf in folder.glob("*.UPF"):
        match = re.search(r'z_valence\s*=\s*"\s*([\d.Ee+-]+)', upf.read_text(errors="replace"))
        if match:
            valence[upf.name.split(".")[0]] = float(match.group(1))
    return valence


def _gpaw_valence(dataset: Dataset, labels: dict) -> dict[str, float]:
    from ase.formula import Formula

    from elfkit.dft.gpaw_engine import setup_valence

    symbols = {s for row in dataset.rows() for s in Formula(row["formula"]).count()}
    return {s: float(n) for s, n in setup_valence(symbols, labels.get("gpaw_setups")).items()}


def _sample_checks(dataset: Dataset) -> dict:
    labels = dataset.manifest.get("labels", {})
    valence = _qe_valence(labels) if labels.get("engine", "qe") == "qe" else _gpaw_valence(dataset, labels)
    problems = {"elf_range": [], "elf_flat": [], "electrons": [], "not_converged": []}
    for sample in dataset:
        elf = sample.elf
        if not np.isfinite(elf).all() or elf.min() < 0 or elf.max() > 1:
            problems["elf_range"].append(sample.key)
        if elf.std() < 1e-3:
            problems["elf_flat"].append(sample.key)
        recorded = sample.metadata.get("electrons")
        expected = sum(valence.get(s, np.nan) for s in sample.atoms.get_chemical_symbols())
        if recorded is not None and np.isfinite(expected) and abs(recorded - expected) > 1e-6:
            problems["electrons"].append(sample.key)
        if sample.metadata.get("scf_iterations") is None:
            problems["not_converged"].append(sample.key)
    return {name: {"ok": not keys, "failing": keys[:20], "count": len(keys)} for name, keys in problems.items()}


def qe_unavailable(symbols, labels: dict) -> str | None:
    """Why QE cannot recompute GPAW labels of `symbols` like for like (no pseudopotential, one
    not validated at the labels' cutoff, or one whose valence differs from the GPAW setups');
    None when it can."""
    from elfkit.dft.gpaw_engine import setup_valence
    from elfkit.dft.qe import PACKAGE_PSEUDO_DIR, unvalidated_at, valence_electrons

    symbols = sorted(set(symbols))
    folder = Path(labels["pseudo_dir"]) if labels.get("pseudo_dir") else PACKAGE_PSEUDO_DIR
    missing = [s for s in symbols if not _has_pseudopotential(s, folder)]
    if missing:
        return f"no QE pseudopotential for {', '.join(missing)}"
    cutoff = labels.get("cutoff_ev", 0.0)
    too_low = [f"{s} (from {minimum:g} eV)" for s, minimum in unvalidated_at(symbols, cutoff).items()]
    if too_low and not labels.get("pseudo_dir"):
        return f"QE pseudopotentials not validated at {cutoff:g} eV: {', '.join(too_low)}"
    qe = valence_electrons(symbols, folder)
    gpaw = setup_valence(symbols, labels.get("gpaw_setups"))
    differ = [f"{s} ({qe[s]:g} vs {gpaw[s]})" for s in symbols if round(qe[s]) != gpaw[s]]
    return f"QE and GPAW valence electrons differ: {', '.join(differ)}" if differ else None


def _has_pseudopotential(symbol: str, folder: Path) -> bool:
    from elfkit.dft.base import DFTError
    from elfkit.dft.qe import find_pseudopotentials

    try:
        find_pseudopotentials([symbol], folder)
    except DFTError:
        return False
    return True


def _matching_setups(atoms, labels: dict, other: str) -> dict:
    """For a GPAW recomputation of QE labels: GPAW setups with the pseudopotentials' valence,
    since the valence ELF depends on which shells are valence."""
    if other != "gpaw":
        return {}
    from elfkit.dft.gpaw_engine import setups_with_valence
    from elfkit.dft.qe import valence_electrons

    pseudo_dir = Path(labels["pseudo_dir"]) if labels.get("pseudo_dir") else None
    return {"gpaw_setups": setups_with_valence(valence_electrons(atoms.get_chemical_symbols(), pseudo_dir))}


def choose_samples(rows: list[dict], count: int, seed: int) -> list[str]:
    """Keys of `count` rows to recompute, chosen at random (seeded) but covering every element
    the rows hold when `count` allows: first, in random order among the smallest cells, rows
    bringing an element not yet covered; then random rows."""
    from ase.formula import Formula

    order = np.random.default_rng(seed).permutation(len(rows)).tolist()
    by_size = sorted(order, key=lambda i: rows[i]["natoms"])
    covered, chosen = set(), []
    for i in by_size:
        elements = set(Formula(rows[i]["formula"]).count())
        if len(chosen) < count and not elements <= covered:
            chosen.append(i)
            covered |= elements
    chosen += [i for i in order if i not in chosen][: max(0, count - len(chosen))]
    return [rows[i]["key"] for i in chosen]


def _cross_engine(dataset: Dataset, count: int, seed: int) -> dict:
    """Recompute `count` samples (see choose_samples) with the other engine; judged by
    elfkit.dft.crosscheck (ELF MAE outside the pseudisation spheres, or of the whole cell where
    they fill it). A sample QE cannot recompute like for like is listed with the reason
    (`skipped`); the section is ok when every recomputed sample agrees, and says how many were."""
    from elfkit.dft import DFTSettings, compute
    from elfkit.dft.crosscheck import TOLERANCE, core_radii, elf_agreement

    labels = dict(dataset.manifest.get("labels", {}))
    other = OTHER_ENGINE[labels.get("engine", "qe")]
    keys = set(choose_samples(dataset.rows(), count, seed))
    pseudo_dir = Path(labels["pseudo_dir"]) if labels.get("pseudo_dir") else None
    results = []
    for sample in dataset:
        if sample.key not in keys:
            continue
        row = {"key": sample.key, "formula": sample.atoms.get_chemical_formula(), "engine": other}
        reason = qe_unavailable(sample.atoms.get_chemical_symbols(), labels) if other == "qe" else None
        if reason:
            results.append(row | {"skipped": reason})
            continue
        setups = _matching_setups(sample.atoms, labels, other)
        settings = DFTSettings(**{**labels, "engine": other, **setups})
        result = compute(sample.atoms, sample.elf.shape, settings)
        gpaw_setups = setups["gpaw_setups"] if other == "gpaw" else labels.get("gpaw_setups")
        radii = core_radii(sample.atoms.get_chemical_symbols(), pseudo_dir, gpaw_setups or {})
        agreement = elf_agreement(result.elf.values, sample.elf, sample.atoms, radii)
        results.append(row | agreement | {"pressure_gpa": [sample.pressure_gpa, result.pressure_gpa]})
    recomputed = [r for r in results if "skipped" not in r]
    return {"ok": all(r["agrees"] for r in recomputed), "recomputed": len(recomputed), "tolerance": TOLERANCE,
            "samples": results}


def _previous_cross_engine(path: Path) -> dict:
    """The cross-engine section of an earlier report, kept when nothing is recomputed."""
    if path.exists():
        return json.loads(path.read_text()).get("cross_engine", {"ok": True, "samples": []})
    return {"ok": True, "samples": []}


def validate(dataset: Dataset, recompute: int = 1, seed: int = 0) -> dict:
    """Run every check; writes and returns the report (folder/validation.json). With
    `recompute` 0 the cross-engine section of the previous report is kept."""
    keys = [row["key"] for row in dataset.rows()]
    path = dataset.folder / "validation.json"
    report = {
        "name": dataset.name,
        "count": len(keys),
        "duplicates": {"ok": len(keys) == len(set(keys)), "count": len(keys) - len(set(keys))},
        **_sample_checks(dataset),
        "cross_engine": _cross_engine(dataset, recompute, seed) if recompute else _previous_cross_engine(path),
    }
    report["ok"] = all(v["ok"] for v in report.values() if isinstance(v, dict))
    with atomic_text_output(path) as handle:
        json.dump(report, handle, indent=1)
    return report
