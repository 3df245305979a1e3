"""Template screening (seed 004): rank candidate metal sublattices by their interstitial ELF.

A candidate is a structure as given, or its metal sublattice (a hydride with its H removed,
`strip`), optionally compressed isotropically to a volume fraction V/V0 (cell and positions
scaled by (V/V0)^(1/3)). Each candidate's ELF (dimensionless) comes from a model
(`elfkit.predict.predict`) or from a file; its row holds the template score and the
interstitial maxima (`elfkit.analysis.templates.screen_row`) and, when atoms were removed,
how close the interstitial ELF maxima sit to the removed sites (`site_report`: periodic
minimum-image distances in Å between grid-point maxima and sites, so within about half a
grid spacing). `run_screen` predicts many candidates, in this process or over Dask workers
(a local cluster of single-threaded worker processes, `elfkit.parallel`), and ranks them by
template score.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms

from elfkit.analysis.templates import Basin, screen_row, template_basins
from elfkit.errors import ElfkitError
from elfkit.field import Field
from elfkit.grid import DEFAULT_SPACING_ANGSTROM, Grid
from elfkit.parallel import parallel_map

if TYPE_CHECKING:
    from elfkit.models.checkpoint import LoadedModel

SITE_MATCH_ANGSTROM = 0.5
"""A removed site counts as matched when an interstitial ELF maximum lies within this distance (Å)."""
SITE_COLUMNS = ("removed_sites", "site_distance_mean_angstrom", "site_distance_max_angstrom", "sites_matched_fraction")
"""The columns of a screen row about removed sites (`SiteReport.summary`; empty when none were removed)."""
VOLUME_FRACTION_RANGE = (0.0, 1.5)
"""Volume fractions V/V0 accepted: above 0, at most 1.5."""


@dataclass
class Candidate:
    """One structure to screen: `atoms` (Å) as predicted, named `name`, read from `source`, at
    volume fraction V/V0 of the given cell; `removed` holds the atoms taken out (same cell,
    compressed alike), None when none were."""

    name: str
    source: str
    atoms: Atoms
    volume_fraction: float = 1.0
    removed: Atoms | None = None

    @property
    def label(self) -> str:
        """The candidate in messages: its source, and its volume fraction when compressed."""
        return self.source if self.volume_fraction == 1.0 else f"{self.source} at V/V0 = {self.volume_fraction:g}"

    @property
    def elf_name(self) -> str:
        """File name of its ELF (a VASP ELFCAR that VESTA opens): name and volume fraction."""
        return f"{self.name}_V{self.volume_fraction:g}.ELFCAR"


@dataclass
class SiteReport:
    """How close the interstitial ELF maxima of a field sit to given sites (distances in Å,
    periodic minimum image; inf when there is nothing to measure to)."""

    sites: np.ndarray
    """(S, 3) Cartesian positions (Å) of the sites."""
    maxima: list[Basin]
    """The interstitial maxima (`elfkit.analysis.templates.Basin`)."""
    site_distance: np.ndarray
    """(S,) distance from each site to its nearest interstitial maximum."""
    site_nearest: np.ndarray
    """(S,) index into `maxima` of that maximum (-1 when there is none)."""
    maximum_distance: np.ndarray
    """(M,) distance from each interstitial maximum to its nearest site."""

    def summary(self) -> dict:
        """SITE_COLUMNS: the number of sites, the mean and largest site distance (Å; None
        without maxima) and the fraction of sites with a maximum within SITE_MATCH_ANGSTROM."""
        found = bool(len(self.maxima)) and bool(len(self.sites))
        matched = float(np.mean(self.site_distance <= SITE_MATCH_ANGSTROM)) if len(self.sites) else 0.0
        values = (
            len(self.sites),
            round(float(self.site_distance.mean()), 4) if found else None,
            round(float(self.site_distance.max()), 4) if found else None,
            round(matched, 4),
        )
        return dict(zip(SITE_COLUMNS, values))


@dataclass
class ScreenResult:
    """One screened candidate: its CSV row and, when atoms were removed, its SiteReport."""

    candidate: Candidate
    row: dict
    sites: SiteReport | None = None


def strip_elements(atoms: Atoms, elements: Iterable[str], source: str = "structure") -> tuple[Atoms, Atoms]:
    """(kept, removed): `atoms` without the atoms of `elements` and those atoms, on the same cell
    (Å). ElfkitError naming `source` for an unknown element or when nothing would be left."""
    from ase.data import chemical_symbols

    elements = set(elements)
    unknown = sorted(e for e in elements if e not in chemical_symbols[1:])
    if unknown:
        raise ElfkitError(f"strip {', '.join(unknown)}: not a chemical element")
    mask = np.isin(atoms.get_chemical_symbols(), sorted(elements))
    if mask.all():
        raise ElfkitError(f"{source}: removing {', '.join(sorted(elements))} leaves no atoms")
    return atoms[~mask], atoms[mask]


def check_volume_fractions(fractions: Iterable[float]) -> list[float]:
    """The volume fractions V/V0 without repeats, in the given order; ElfkitError unless there is
    one at least and each lies in (0, 1.5] (VOLUME_FRACTION_RANGE)."""
    low, high = VOLUME_FRACTION_RANGE
    checked = []
    for value in fractions:
        if not (math.isfinite(value) and low < value <= high):
            raise ElfkitError(f"volume fraction V/V0 = {value:g} (--pressure-scale): it must lie in ({low:g}, {high:g}]")
        if value not in checked:
            checked.append(value)
    if not checked:
        raise ElfkitError("no volume fraction V/V0 given (--pressure-scale)")
    return checked


def compress(atoms: Atoms, volume_fraction: float) -> Atoms:
    """A copy of `atoms` compressed isotropically to `volume_fraction` V/V0 of its volume: cell
    and positions (Å) scaled by volume_fraction^(1/3)."""
    (volume_fraction,) = check_volume_fractions([volume_fraction])
    scaled = atoms.copy()
    scaled.set_cell(atoms.cell.array * volume_fraction ** (1 / 3), scale_atoms=True)
    return scaled


def make_candidates(
    atoms: Atoms,
    source: str,
    name: str | None = None,
    strip: Sequence[str] = (),
    volume_fractions: Sequence[float] = (1.0,),
) -> list[Candidate]:
    """The candidates of one structure read from `source`: with the atoms of `strip` removed,
    at each volume fraction V/V0; each validated as a crystal (StructureError naming it)."""
    from elfkit.io import validate_structure

    kept, removed = strip_elements(atoms, strip, source) if strip else (atoms, atoms[:0])
    candidates = []
    for fraction in check_volume_fractions(volume_fractions):
        candidate = Candidate(
            name or Path(source).stem,
            source,
            compress(kept, fraction),
            fraction,
            compress(removed, fraction) if len(removed) else None,
        )
        validate_structure(candidate.atoms, candidate.label)
        candidates.append(candidate)
    return candidates


def candidate_names(sources: Sequence[str | Path]) -> list[str]:
    """A distinct name per structure file: its stem, numbered (-2, -3, ...) when stems repeat."""
    names, seen = [], {}
    for source in sources:
        stem = Path(source).stem
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def site_report(elf: Field, sites: np.ndarray, basins: list[Basin] | None = None) -> SiteReport:
    """Distances (Å, periodic minimum image) between the interstitial ELF maxima of `elf`
    (`template_basins`, given or computed) and Cartesian `sites` (S, 3) in Å on its cell."""
    from ase.geometry import get_distances

    sites = np.asarray(sites, dtype=float).reshape(-1, 3)
    maxima = [b for b in (template_basins(elf) if basins is None else basins) if b.interstitial]
    if not maxima or not len(sites):
        return SiteReport(sites, maxima, np.full(len(sites), np.inf), np.full(len(sites), -1), np.full(len(maxima), np.inf))
    _, distance = get_distances(sites, np.array([b.cart for b in maxima]), cell=elf.atoms.cell, pbc=True)
    return SiteReport(sites, maxima, distance.min(axis=1), distance.argmin(axis=1), distance.min(axis=0))


def check_elf_matches(candidate: Candidate, elf: Field, path: str | Path) -> None:
    """ElfkitError naming `path` unless the ELF's atoms and cell are the candidate's."""
    if len(candidate.atoms) != len(elf.atoms) or not np.allclose(candidate.atoms.cell.array, elf.atoms.cell.array, atol=1e-3):
        raise ElfkitError(f"{path}: its cell or atoms do not match {candidate.label}")


def screen_elf(candidate: Candidate, elf: Field, elf_file: str = "") -> ScreenResult:
    """The screen row of a candidate's ELF (template score, interstitial maxima, networking
    value, volume fraction, and the removed-site distances when atoms were removed)."""
    basins = template_basins(elf)
    sites = None if candidate.removed is None else site_report(elf, candidate.removed.positions, basins)
    row = screen_row(elf, candidate.source, basins)
    row["volume_fraction"] = candidate.volume_fraction
    row["removed"] = "" if candidate.removed is None else candidate.removed.get_chemical_formula(mode="hill")
    row.update(sites.summary() if sites else dict.fromkeys(SITE_COLUMNS))
    row["elf_file"] = elf_file
    return ScreenResult(candidate, row, sites)


def screen_candidate(
    candidate: Candidate, model: str | Path | LoadedModel, spacing: float = DEFAULT_SPACING_ANGSTROM, elf_folder: str | Path | None = None
) -> ScreenResult:
    """Predict a candidate's ELF with `model` (a shipped name, a model file or a loaded model)
    on the grid of spacing <= `spacing` (Å) and screen it; its ELF is written into `elf_folder`
    as `candidate.elf_name` when given."""
    from elfkit.predict import predict

    shape = Grid.for_spacing(candidate.atoms.cell.array, spacing).shape
    elf = predict(candidate.atoms, shape, model, source=candidate.label)
    if elf_folder is not None:
        from elfkit.io import save_field

        save_field(Path(elf_folder) / candidate.elf_name, elf)
    return screen_elf(candidate, elf, candidate.elf_name if elf_folder is not None else "")


def rank(results: list[ScreenResult]) -> list[ScreenResult]:
    """Highest template score first; ties by name, then volume fraction."""
    return sorted(results, key=lambda r: (-r.row["template_score"], r.candidate.name, -r.candidate.volume_fraction))


def run_screen(
    candidates: list[Candidate],
    model: str | Path,
    spacing: float = DEFAULT_SPACING_ANGSTROM,
    workers: int | None = None,
    elf_folder: str | Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[ScreenResult]:
    """Screen every candidate with `model` (a shipped name or model file) and rank them (`rank`).

    With more than one candidate and more than one worker (default: one per core, at most one
    per candidate) the predictions run on a local Dask cluster of single-threaded worker
    processes, else in this process. Each candidate's ELF goes into `elf_folder` when given;
    on_progress(done, total) is called after every finished candidate."""
    folder = None if elf_folder is None else str(elf_folder)
    screen = functools.partial(screen_candidate, model=str(model), spacing=spacing, elf_folder=folder)
    return rank(parallel_map(screen, candidates, workers, on_progress))


def maxima_rows(results: list[ScreenResult]) -> list[dict]:
    """Rows of maxima.csv for the candidates with removed atoms: per removed site its position
    (Å), the ELF of its nearest interstitial maximum and the distance to it (Å); per interstitial
    maximum its position, ELF and distance to the nearest removed site."""
    rows = []
    for result in results:
        report = result.sites
        if report is None:
            continue
        base = {"structure": result.candidate.source, "volume_fraction": result.candidate.volume_fraction}
        symbols = result.candidate.removed.get_chemical_symbols()
        for symbol, position, distance, nearest in zip(symbols, report.sites, report.site_distance, report.site_nearest):
            rows.append({**base, "kind": "site", "element": symbol, **_xyz(position),
                         "elf": round(report.maxima[nearest].elf, 4) if nearest >= 0 else None,
                         "nearest_angstrom": _distance(distance)})
        for maximum, distance in zip(report.maxima, report.maximum_distance):
            rows.append({**base, "kind": "maximum", "element": "", **_xyz(maximum.cart),
                         "elf": round(maximum.elf, 4), "nearest_angstrom": _distance(distance)})
    return rows


def write_screen(results: list[ScreenResult], folder: str | Path) -> list[str]:
    """Write screen.csv (the rows in the given order), maxima.csv (`maxima_rows`, when atoms
    were removed) and screen.png into `folder`; returns the names written."""
    import csv

    from elfkit.analysis.plots import screen_plot

    folder = Path(folder)
    rows = [r.row for r in results]
    tables = {"screen.csv": rows}
    if any(r.sites for r in results):
        tables["maxima.csv"] = maxima_rows(results)
    for name, table in tables.items():
        with open(folder / name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
    screen_plot(rows, folder / "screen.png")
    return [*tables, "screen.png"]


def _xyz(position) -> dict:
    return {axis: round(float(value), 4) for axis, value in zip(("x_angstrom", "y_angstrom", "z_angstrom"), position)}


def _distance(value: float) -> float | None:
    return round(float(value), 4) if np.isfinite(value) else None
