"""The `elfkit` command line: parse, call the library, print. No logic of its own."""

from __future__ import annotations

import functools
import json
import sys
import time
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from elfkit.errors import ElfkitError
from elfkit.grid import DEFAULT_SPACING_ANGSTROM

app = typer.Typer(
    name="elfkit",
    help="Predict, compute and analyse the electron localization function (ELF) of crystals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_USER_ERROR = 2


def user_errors(command):
    """Turn an ElfkitError into one line on stderr and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ElfkitError as exc:
            typer.echo(f"elfkit: error: {exc}", err=True)
            raise typer.Exit(EXIT_USER_ERROR) from None

    return wrapper


def _grid_shape(atoms, grid: Optional[tuple[int, int, int]], spacing: float) -> tuple[int, int, int]:
    from elfkit.grid import Grid, check_grid_shape

    if grid is not None and None not in grid:
        return check_grid_shape(grid)
    return Grid.for_spacing(atoms.cell.array, spacing).shape


@app.command()
@user_errors
def info(
    structure: Annotated[Path, typer.Argument(help="Structure file in any format ASE reads.")],
    spacing: Annotated[float, typer.Option(help="Grid spacing in Å for the suggested grid.")] = DEFAULT_SPACING_ANGSTROM,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
):
    """Formula, space group, volume, density, electron count, rs and suggested grid."""
    from elfkit.io import read_structure
    from elfkit.structure_info import describe

    summary = describe(read_structure(structure), spacing)
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=2))
        return
    _print_info(structure, summary)


def _shape(shape) -> str:
    return " x ".join(str(n) for n in shape)


def _print_info(structure: Path, s) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(structure), show_header=False)
    rows = [
        ("formula", f"{s.formula} ({s.natoms} atoms)"),
        ("space group", f"{s.space_group} (No. {s.space_group_number})"),
        ("volume", f"{s.volume_angstrom3:.4f} Å³ ({s.volume_angstrom3 / s.natoms:.4f} Å³/atom)"),
        ("density", f"{s.density_g_cm3:.4f} g/cm³"),
        ("electrons", f"{s.electrons_total:g} total, {s.electrons_valence:g} valence"),
        ("rs (valence)", f"{s.rs_bohr:.4f} bohr"),
        ("grid", f"{_shape(s.grid_shape)} at spacing <= {s.grid_spacing_angstrom} Å"),
        ("symmetric grid", _shape(s.grid_shape_symmetric) if s.grid_shape_symmetric else "none nearby"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    Console().print(table)


@app.command()
@user_errors
def sad(
    structure: Annotated[Path, typer.Argument(help="Structure file in any format ASE reads.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output file; the format follows the name.")],
    grid: Annotated[
        Optional[tuple[int, int, int]], typer.Option(help="Grid sizes N1 N2 N3.", show_default=False)
    ] = None,
    spacing: Annotated[float, typer.Option(help="Grid spacing in Å when --grid is not given.")] = DEFAULT_SPACING_ANGSTROM,
    kind: Annotated[str, typer.Option(help="'total' (all electrons) or 'valence'.")] = "total",
):
    """Superposition of atomic densities (electrons/Å³) on the unit-cell grid."""
    from elfkit.io import check_field_output, read_structure, save_field
    from elfkit.sad import electron_count, sad_field

    check_field_output(output)
    atoms = read_structure(structure)
    shape = _grid_shape(atoms, grid, spacing)
    field = sad_field(atoms, shape, kind, source=str(structure))
    save_field(output, field)
    integral = field.values.sum() * field.grid.voxel_volume
    typer.echo(
        f"wrote {output}: SAD ({kind}) on {shape[0]}x{shape[1]}x{shape[2]}, "
        f"{integral:.4f} of {electron_count(atoms, kind):g} electrons"
    )


@app.command()
@user_errors
def convert(
    source: Annotated[Path, typer.Argument(help="Volumetric file to read.")],
    target: Annotated[Path, typer.Argument(help="File to write; the format follows the name.")],
    quantity: Annotated[
        Optional[str], typer.Option(help="What the values are when the source does not say: elf, density or scalar.")
    ] = None,
    structure: Annotated[Optional[Path], typer.Option(help="Structure for a bare .npy source.")] = None,
):
    """Convert between ELFCAR, CHGCAR, cube, XSF, .npz and .npy."""
    from elfkit.io import check_field_output, read_field, read_structure, save_field

    check_field_output(target)
    atoms = read_structure(structure) if structure else None
    field = read_field(source, quantity=quantity, structure=atoms)
    save_field(target, field)
    shape = field.values.shape
    typer.echo(f"wrote {target}: {field.quantity} on {shape[0]}x{shape[1]}x{shape[2]}")


@app.command()
@user_errors
def dft(
    structure: Annotated[Path, typer.Argument(help="Structure file in any format ASE reads.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="ELF output file; a JSON summary goes beside it.")],
    engine: Annotated[str, typer.Option(help="qe (Quantum ESPRESSO) or gpaw.")] = "qe",
    grid: Annotated[
        Optional[tuple[int, int, int]], typer.Option(help="Grid sizes N1 N2 N3.", show_default=False)
    ] = None,
    spacing: Annotated[float, typer.Option(help="Grid spacing in Å when --grid is not given.")] = DEFAULT_SPACING_ANGSTROM,
    kspacing: Annotated[
        Optional[float], typer.Option(help="k-point spacing in 1/Å (2π included); Gamma only if not given.")
    ] = None,
    cutoff: Annotated[float, typer.Option(help="Plane-wave cutoff of the wave functions, eV.")] = 680.0,
    smearing: Annotated[float, typer.Option(help="Marzari-Vanderbilt smearing, eV (0: fixed occupations).")] = 0.1,
    pseudo_dir: Annotated[Optional[Path], typer.Option(help="QE: folder with one <Symbol>.*.UPF per element.")] = None,
):
    """Reference ELF from a DFT calculation, on exactly the requested grid."""
    from elfkit.dft import DFTSettings, compute
    from elfkit.io import check_field_output, check_output_file, read_structure, save_field
    from elfkit.io._files import atomic_text_output

    summary_path = output.with_name(output.name + ".json")
    check_field_output(output)
    check_output_file(summary_path)
    atoms = read_structure(structure)
    shape = _grid_shape(atoms, grid, spacing)
    settings = DFTSettings(
        engine=engine,
        cutoff_ev=cutoff,
        kspacing=kspacing,
        smearing_ev=smearing,
        pseudo_dir=str(pseudo_dir) if pseudo_dir else None,
    )
    with _status(f"{engine}: SCF and ELF of {atoms.get_chemical_formula()} on {_shape(shape)}"):
        result = compute(atoms, shape, settings)
    save_field(output, result.elf)
    with atomic_text_output(summary_path) as handle:
        handle.write(json.dumps(result.summary(), indent=2) + "\n")
    typer.echo(
        f"wrote {output} and {summary_path.name}: E = {result.energy_ev:.6f} eV, "
        f"P = {result.pressure_gpa:.3f} GPa, {result.metadata['wall_seconds']} s"
    )


def _status(message: str):
    from rich.console import Console

    return Console(stderr=True).status(message)


def _read_elf(path: Path, structure: Optional[Path], work: str = "topology"):
    """Read an ELF file (refusing fields recorded as densities) and check that `work` on it fits in memory."""
    from elfkit.analysis.topology import check_elf
    from elfkit.io import read_field, read_structure
    from elfkit.memory import check_memory

    field = read_field(path, quantity="elf", structure=read_structure(structure) if structure else None)
    check_elf(field, str(path))
    check_memory(work, field.values.shape, str(path))
    return field


@app.command()
@user_errors
def compare(
    predicted: Annotated[Path, typer.Argument(help="Predicted ELF file.")],
    reference: Annotated[Path, typer.Argument(help="Reference ELF file on the same grid.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print every number as JSON.")] = False,
    plots: Annotated[Optional[Path], typer.Option(help="Folder for parity, histogram and spectrum plots.")] = None,
    structure: Annotated[Optional[Path], typer.Option(help="Structure for bare .npy inputs.")] = None,
):
    """Accuracy of a predicted ELF: R², errors by region, distributions, residual spectrum and correlation."""
    from elfkit.analysis.metrics import check_same_grid
    from elfkit.analysis.metrics import compare as compare_fields
    from elfkit.io import check_output_folder, staged_folder

    if plots:
        check_output_folder(plots)
    pred, ref = _read_elf(predicted, structure, "compare"), _read_elf(reference, structure, "compare")
    check_same_grid(pred, ref, f"{predicted} and {reference}")
    result = compare_fields(pred, ref)
    if plots:
        from elfkit.analysis.plots import comparison_plots

        with staged_folder(plots) as stage:
            made = comparison_plots(pred, ref, result, stage)
        result["plots"] = [str(plots / p.name) for p in made]
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    from elfkit.analysis.summary import comparison_lines

    typer.echo("\n".join(comparison_lines(result)))
    if plots:
        typer.echo(f"wrote {', '.join(Path(p).name for p in result['plots'])} in {plots}")


def _topology_inputs(paths: list[Path], model: Optional[str], structure: Optional[Path]) -> list:
    """A `TopologyInput` per frame: every frame of each structure file with --model, else each
    ELF file read and checked (`_read_elf`); the kind of every input is checked from its name
    before any is read."""
    from elfkit.analysis.batch import TopologyInput
    from elfkit.io import check_input_file, field_format, read_frames

    for path in paths:
        check_input_file(path)
        try:
            field_format(path)
            volumetric = True
        except ElfkitError:
            volumetric = False
        if model is not None and volumetric:
            raise ElfkitError(f"{path}: a volumetric (ELF) file; with --model give structure files, whose ELF is predicted")
        if model is None and not volumetric:
            raise ElfkitError(f"{path}: not an ELF file (ELFCAR, cube, XSF, npz, npy); give --model to predict the ELF of a structure")
    if model is None:
        return [TopologyInput(str(path), _read_elf(path, structure)) for path in paths]
    inputs = []
    for path in paths:
        frames = read_frames(path)
        inputs += [TopologyInput(f"{path} (frame {number})" if len(frames) > 1 else str(path), atoms, str(path), number)
                   for number, atoms in enumerate(frames)]
    return inputs


@app.command()
@user_errors
def topology(
    inputs: Annotated[list[Path], typer.Argument(
        help="ELF files (ELFCAR, cube, XSF, npz, npy); with --model, structure files instead "
        "(any format ASE reads; every frame of a trajectory: extxyz, ASE .traj, XDATCAR)."
    )],
    model: Annotated[Optional[str], typer.Option(
        help="Predict the ELF of every frame of the structure INPUTS with this model (a shipped name, a model file, "
        "or several joined by +) and analyse it; the predicted ELF is not written."
    )] = None,
    spacing: Annotated[Optional[float], typer.Option(
        help=f"Grid spacing in Å of the predicted ELFs (with --model; default {DEFAULT_SPACING_ANGSTROM:g})."
    )] = None,
    csv_file: Annotated[Optional[Path], typer.Option(
        "--csv", help="CSV file with one row per frame (default with several frames: topology.csv here)."
    )] = None,
    workers: Annotated[Optional[int], typer.Option(
        help="Dask worker processes for several frames (default: one per core, at most one per frame; 1: in this process)."
    )] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (with several frames or --csv: the rows).")] = False,
    structure: Annotated[Optional[Path], typer.Option(help="Structure for bare .npy inputs.")] = None,
    persistence: Annotated[Optional[float], typer.Option(
        min=0.0, help="Cancel critical-point pairs whose persistence (ELF units) is below this; 0 keeps all "
        "(default: elfkit.analysis.critical.DEFAULT_PERSISTENCE)."
    )] = None,
    low_density: Annotated[Optional[float], typer.Option(
        min=0.0, help="List apart the critical points where the atoms' SAD is below this (electrons/Å³); 0: none "
        "(default: elfkit.analysis.critical.LOW_DENSITY)."
    )] = None,
):
    """Critical points, Morse sum, networking value, molecularity index, dimensionality; for
    several ELF files or frames (or with --csv) one CSV row per frame (see elfkit.analysis.batch)."""
    from elfkit.analysis.batch import check_inputs, frame_elf, mean_networking_value, topology_rows, write_rows
    from elfkit.analysis.topology import topology as analyse
    from elfkit.io import check_output_file
    from elfkit.parallel import check_workers
    from elfkit.predict import get_model

    options = {} if persistence is None else {"persistence": persistence}
    if low_density is not None:
        options["low_density"] = low_density or None
    if model is None and spacing is not None:
        raise ElfkitError("--spacing sets the grid of predicted ELFs; it needs --model")
    if model is not None and structure is not None:
        raise ElfkitError("--structure is for bare .npy ELF files; with --model the inputs are structures")
    spacing = DEFAULT_SPACING_ANGSTROM if spacing is None else spacing
    _check_grid_options(None, spacing)
    check_workers(workers)
    if csv_file is None and len(inputs) > 1:
        csv_file = Path("topology.csv")
    if csv_file is not None:
        check_output_file(csv_file)
    loaded = None if model is None else get_model(model)
    items = _topology_inputs(inputs, model, structure)
    if csv_file is None and len(items) > 1:
        csv_file = check_output_file(Path("topology.csv"))
    check_inputs(items, spacing)
    if loaded is not None:
        _frame_warnings(items, loaded)
    if csv_file is None:
        result = analyse(frame_elf(items[0], model, spacing), **options)
        if as_json:
            typer.echo(json.dumps(result, indent=2))
            return
        from elfkit.analysis.summary import topology_lines

        typer.echo("\n".join(topology_lines(result)))
        return
    with _counting_bar("predicting and analysing" if model else "analysing", len(items)) as on_progress:
        rows = topology_rows(items, model, spacing, workers=workers, **options, on_progress=on_progress)
    write_rows(rows, csv_file)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    mean = mean_networking_value(rows)
    defined = sum(row["networking_value"] is not None for row in rows)
    where = "" if defined == len(rows) else f" (over the {defined} frames where it is defined)"
    typer.echo(f"{len(rows)} frames: mean networking value φ "
               + ("undefined (no frame percolates in 3D)" if mean is None else f"{mean:.3f}{where}") + f"; wrote {csv_file}")


@contextmanager
def _counting_bar(description: str, total: int):
    """A progress bar on stderr for `total` items (shown on a terminal for two or more), as an
    on_progress(done, total) callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_stderr_console(), disable=total < 2 or not sys.stderr.isatty()) as progress:
        task = progress.add_task(description, total=total)
        yield lambda done, _total: progress.update(task, completed=done)


def _frame_warnings(items: list, loaded) -> None:
    """ElfkitError for a frame the model cannot predict (`check_elements`), else the domain
    warnings of the first frame that has any, and how many other frames have some."""
    from elfkit.predict import check_elements, domain_warnings

    for item in items:
        check_elements(item.data, loaded, item.label)
    warned = [(item.label, found) for item in items if (found := domain_warnings(item.data, loaded))]
    if not warned:
        return
    label, found = warned[0]
    for warning in found:
        typer.echo(f"elfkit: warning: {label}: {warning}; the prediction may be unreliable", err=True)
    if len(warned) > 1:
        typer.echo(f"elfkit: warning: {len(warned) - 1} more frames lie outside the model's training domain", err=True)


@app.command()
@user_errors
def report(
    elf_file: Annotated[Path, typer.Argument(help="ELF file to picture.")],
    ref: Annotated[Optional[Path], typer.Option(help="Reference ELF on the same grid: adds the metrics, parity, histograms and residual spectrum.")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the HTML page (named after the ELF file) and its pictures.")] = Path("elfkit-report"),
    plane: Annotated[Optional[list[str]], typer.Option(metavar="HKL", help="Slice plane as Miller indices h k l (001, 1-10 or 1,-1,0); repeat for more slices (default: 001).")] = None,
    through_atom: Annotated[Optional[int], typer.Option(metavar="N", help="Slices pass through this atom (1 = the first atom in the file, as VESTA numbers them), centred on it (default: through the origin).")] = None,
    structure: Annotated[Optional[Path], typer.Option(help="Structure for bare .npy inputs.")] = None,
):
    """One self-contained HTML page (3D view, slices, topology, comparison) and its pictures as PNG files."""
    from elfkit.analysis.metrics import check_same_grid
    from elfkit.analysis.report import make_report
    from elfkit.analysis.slices import check_atom_number, parse_plane
    from elfkit.analysis.summary import comparison_lines, topology_lines
    from elfkit.io import check_output_folder, staged_folder

    check_output_folder(output)
    planes = [parse_plane(p) for p in plane or ["001"]]
    field = _read_elf(elf_file, structure)
    check_atom_number(field.atoms, through_atom, str(elf_file))
    reference = None if ref is None else _read_elf(ref, structure, "compare")
    if reference is not None:
        check_same_grid(field, reference, f"{elf_file} and {ref}")
    with _status(f"analysing {elf_file}"), staged_folder(output) as stage:
        made = make_report(stage, field, elf_file.name, planes, through_atom, reference, None if ref is None else ref.name)
    for line in topology_lines(made.topology) + (comparison_lines(made.comparison) if made.comparison else []):
        typer.echo(line)
    typer.echo(f"wrote {output / made.page.name} ({made.page_bytes / 1e6:.1f} MB; open it in a browser) and "
               + ", ".join(p.name for p in made.pictures) + f" in {output}")


@app.command()
@user_errors
def screen(
    structures: Annotated[list[Path], typer.Argument(help="Structures to rank: metal sublattices, or hydrides with --strip H.")],
    elf: Annotated[Optional[list[Path]], typer.Option(help="ELF file of each structure (of what is left after --strip), in the same order.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Predict each ELF with this model (a shipped name or a model file) instead of --elf.")] = None,
    strip: Annotated[Optional[list[str]], typer.Option(metavar="ELEMENT", help="Remove this element (repeat for more), e.g. H to screen a hydride's metal sublattice and measure its interstitial ELF maxima against the removed H sites.")] = None,
    pressure_scale: Annotated[Optional[list[str]], typer.Option("--pressure-scale", "--volume-fraction", metavar="V/V0", help="Volume fractions V/V0 in (0, 1.5], not pressures: each candidate is also compressed isotropically to these volumes (comma-separated or repeated: 0.5,0.6 or --pressure-scale 0.5 --pressure-scale 0.6). Needs --model.")] = None,
    spacing: Annotated[float, typer.Option(help="Grid spacing in Å of the predicted ELFs.")] = DEFAULT_SPACING_ANGSTROM,
    workers: Annotated[Optional[int], typer.Option(help="Dask worker processes for the predictions (default: one per core, at most one per candidate; 1: in this process).")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for screen.csv, screen.png, maxima.csv (with --strip) and the predicted ELFCARs.")] = Path("elfkit-screen"),
):
    """Rank structures by their template score (interstitial ELF pockets); CSV, plot, predicted ELFs
    and, for stripped hydrides, the distances between interstitial ELF maxima and removed sites."""

    from elfkit.io import check_output_folder, read_structure, staged_folder
    from elfkit.parallel import check_workers
    from elfkit.predict import check_elements, domain_warnings, get_model
    from elfkit.screening import (SITE_MATCH_ANGSTROM, candidate_names, check_elf_matches, check_volume_fractions,
                                  make_candidates, rank, run_screen, screen_elf, write_screen)

    check_output_folder(output)
    if elf and model is not None:
        raise ElfkitError("give either --elf files or --model, not both")
    if model is None and (not elf or len(elf) != len(structures)):
        raise ElfkitError(f"give --model, or one --elf file per structure ({len(structures)} structures, {len(elf or [])} ELF files)")
    if pressure_scale and model is None:
        raise ElfkitError("--pressure-scale needs --model: an ELF file holds one volume")
    _check_grid_options(None, spacing)
    check_workers(workers)
    try:
        fractions = check_volume_fractions(float(v) for text in pressure_scale or ["1"] for v in text.replace(",", " ").split())
    except ValueError:
        raise ElfkitError(f"--pressure-scale {' '.join(pressure_scale)}: give numbers (volume fractions V/V0)") from None
    names = candidate_names(structures)
    candidates = [c for path, name in zip(structures, names)
                  for c in make_candidates(read_structure(path), str(path), name, strip or (), fractions)]
    if model is None:
        results = []
        for candidate, elf_file in zip(candidates, elf):
            field = _read_elf(elf_file, None, "compare")
            check_elf_matches(candidate, field, elf_file)
            results.append(screen_elf(candidate, field, str(elf_file)))
        results = rank(results)
    else:
        loaded = get_model(model)
        for candidate in candidates:
            check_elements(candidate.atoms, loaded, candidate.label)
        for candidate in candidates:
            for warning in domain_warnings(candidate.atoms, loaded):
                typer.echo(f"elfkit: warning: {candidate.label}: {warning}; the prediction may be unreliable", err=True)
    with staged_folder(output) as stage:
        if model is not None:
            with _counting_bar(f"predicting with {loaded.name}", len(candidates)) as on_progress:
                results = run_screen(candidates, model, spacing, workers, stage, on_progress)
        written = write_screen(results, stage)
    for number, result in enumerate(results, 1):
        row = result.row
        typer.echo(f"{number:3d}  {row['template_score']:.4f}  {row['formula']:>12s}  V/V0 {row['volume_fraction']:<5g} {row['structure']}")
        if result.sites is not None:
            typer.echo(f"     {row['interstitial_maxima']} interstitial maxima; {row['removed_sites']} removed sites ({row['removed']}): "
                       + ("no interstitial maximum" if row["site_distance_mean_angstrom"] is None else
                          f"nearest maximum {row['site_distance_mean_angstrom']:.2f} Å on average, at most "
                          f"{row['site_distance_max_angstrom']:.2f} Å; {row['sites_matched_fraction']:.0%} within {SITE_MATCH_ANGSTROM:g} Å"))
    typer.echo(f"wrote {', '.join(written)}" + (f" and {len(results)} ELFCAR files" if model is not None else "") + f" in {output}")


class OutputFormat(str, Enum):
    """Volumetric formats `elfkit predict` writes (each opens in VESTA)."""

    ELFCAR = "elfcar"
    CUBE = "cube"
    XSF = "xsf"
    NPZ = "npz"


class Split(str, Enum):
    """Dataset splits."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"


_PREDICTION_SUFFIX = {"elfcar": ".ELFCAR", "cube": ".elf.cube", "xsf": ".elf.xsf", "npz": ".elf.npz"}


def _prediction_jobs(structures: list[Path], output: Optional[Path], out_dir: Optional[Path], fmt: str) -> list[tuple[str, object, Path]]:
    """(label, atoms, output path) for every frame of every structure; all checked before any work."""
    from elfkit.io import check_field_output, check_output_folder, read_frames

    if output is not None and out_dir is not None:
        raise ElfkitError(f"{output}: give either -o or --out-dir, not both")
    if out_dir is not None:
        check_output_folder(out_dir)
    jobs = []
    for structure in structures:
        frames = read_frames(structure)
        for number, atoms in enumerate(frames):
            name = f"{structure.stem}_{number:04d}" if len(frames) > 1 else structure.stem
            path = (out_dir or structure.parent) / f"{name}{_PREDICTION_SUFFIX[fmt]}"
            label = f"{structure} (frame {number})" if len(frames) > 1 else str(structure)
            jobs.append((label, atoms, path))
    if output is not None:
        if len(jobs) > 1:
            raise ElfkitError(f"{output}: -o names one file but {len(jobs)} structures or frames were given; use --out-dir")
        jobs = [(jobs[0][0], jobs[0][1], output)]
    paths = [path for _, _, path in jobs]
    duplicate = next((p for p in paths if paths.count(p) > 1), None)
    if duplicate is not None:
        raise ElfkitError(f"{duplicate}: two predictions would be written to this file; use --out-dir or rename the inputs")
    if out_dir is None:
        for path in paths:
            check_field_output(path)
    return jobs


@app.command()
@user_errors
def predict(
    structures: Annotated[list[Path], typer.Argument(help="Structure files (any format ASE reads; every frame of a trajectory).")],
    model: Annotated[
        Optional[str],
        typer.Option(
            help="Shipped model name (hydrogen, hydrogen-point, metals), a model file, or several joined by + (their mean ELF, "
            "e.g. hydrogen+hydrogen-point). Default: metals for structures of metals only, else hydrogen."
        ),
    ] = None,
    grid: Annotated[
        Optional[tuple[int, int, int]], typer.Option(help="Grid sizes N1 N2 N3.", show_default=False)
    ] = None,
    spacing: Annotated[float, typer.Option(help="Grid spacing in Å when --grid is not given.")] = DEFAULT_SPACING_ANGSTROM,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Output file for a single structure.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option(help="Folder for the outputs (default: beside each input).")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Format when the output name is chosen by elfkit.")] = OutputFormat.ELFCAR,
    symmetrize: Annotated[bool, typer.Option(help="Average over the crystal's space group.")] = True,
):
    """Predict the ELF of structures from their geometry with a trained model."""
    from elfkit.io import save_field
    from elfkit.predict import check_elements, choose_model, domain_warnings, get_model
    from elfkit.predict import predict as predict_elf

    _check_grid_options(grid, spacing)
    jobs = _prediction_jobs(structures, output, out_dir, fmt.value)
    models = [get_model(model or choose_model(atoms)) for _, atoms, _ in jobs]
    for (label, atoms, _), loaded in zip(jobs, models):
        check_elements(atoms, loaded, label)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    for (label, atoms, path), loaded in _progress(list(zip(jobs, models)), "predicting"):
        for warning in domain_warnings(atoms, loaded):
            typer.echo(f"elfkit: warning: {label}: {warning}; the prediction may be unreliable", err=True)
        started = time.perf_counter()
        field = predict_elf(atoms, _grid_shape(atoms, grid, spacing), loaded, symmetrize=symmetrize, source=label)
        save_field(path, field)
        typer.echo(f"wrote {path}: ELF on {_shape(field.values.shape)} (model {loaded.name}, {time.perf_counter() - started:.2f} s)")


def _check_grid_options(grid: Optional[tuple[int, int, int]], spacing: float) -> None:
    """GridError for a bad --grid or --spacing, before any file is read."""
    from elfkit.errors import GridError
    from elfkit.grid import check_grid_shape

    if grid is not None and None not in grid:
        check_grid_shape(grid)
    elif not spacing > 0:
        raise GridError(f"grid spacing must be positive, got {spacing}")


def _progress(items: list, description: str):
    """Iterate `items` with a progress bar on a terminal (plain iteration otherwise or for one item)."""
    if len(items) < 2 or not sys.stderr.isatty():
        yield from items
        return
    from rich.progress import track

    yield from track(items, description=description, console=_stderr_console())


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


@app.command()
@user_errors
def train(
    config: Annotated[Path, typer.Argument(help="Training config (YAML), e.g. configs/hydrogen.yaml.")],
    out: Annotated[Optional[Path], typer.Option(help="Run folder (default runs/NAME); a rerun resumes from it.")] = None,
):
    """Train a model from a config; resumable after a kill, deterministic for its seed."""
    from elfkit.io import check_output_folder
    from elfkit.train import load_config
    from elfkit.train import train as run_training

    settings = load_config(config)
    out_dir = check_output_folder(out or Path("runs") / settings.name)
    path = run_training(settings, out_dir, *_training_progress(settings.steps))
    typer.echo(f"wrote {path}; log and loss plot in {out_dir}")


def _training_progress(total: int):
    """(on_progress, on_loading) callbacks: a rich bar with ETA on a terminal, else a line every 50 steps."""
    started = time.monotonic()

    def lines(step: int, steps: int, record: dict) -> None:
        if step % 50 == 0 or step == steps:
            typer.echo(f"{time.strftime('%H:%M:%S')} step {step}/{steps} loss {record['total']:.4f}"
                       + (f" val R² {record['val_r2']:.4f}" if "val_r2" in record else ""), err=True)

    def loading(done: int, count: int) -> None:
        if done == count:
            typer.echo(f"loaded {count} grids in {time.monotonic() - started:.0f} s", err=True)
        elif done % max(1, count // 10) == 0:
            typer.echo(f"{time.strftime('%H:%M:%S')} loading {done}/{count} grids", err=True)

    if not sys.stderr.isatty():
        return lines, loading
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=_stderr_console())
    progress.start()
    task = progress.add_task("loading", total=None)

    def bar(step: int, steps: int, record: dict) -> None:
        score = f" val R² {record['val_r2']:.4f}" if "val_r2" in record else ""
        progress.update(task, completed=step, total=steps, description=f"loss {record['total']:.4f}{score}")
        if step == steps:
            progress.stop()

    def bar_loading(done: int, count: int) -> None:
        progress.update(task, completed=done, total=count, description="loading data")

    return bar, bar_loading


@app.command()
@user_errors
def evaluate(
    models: Annotated[list[str], typer.Argument(help="One or more shipped model names or model files, then the dataset.", metavar="MODEL...")],
    dataset: Annotated[str, typer.Argument(help="Dataset name (elfkit data list).")],
    split: Annotated[Split, typer.Option(help="Which split to score.")] = Split.TEST,
    as_json: Annotated[bool, typer.Option("--json", help="Print every number as JSON.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the README's Markdown table.")] = False,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Also write the full JSON (per sample) here.")] = None,
    figure: Annotated[Optional[Path], typer.Option("--figure", help="Also draw the residual study against pressure, or for metals the parity of ELF maxima (PNG).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Dask worker processes for the samples (default: one per core; 1: in this process).")] = None,
    critical: Annotated[Optional[bool], typer.Option("--critical/--no-critical", help="Score the networking value and the recall of critical points (default: on crystal datasets only).")] = None,
):
    """Accuracy of models on a dataset split (the same samples for each), per stratum and overall,
    beside the physics baseline; with --figure the residual study (R², long-wavelength power
    fraction, correlation length and power spectra against pressure). Crystals (or any dataset
    with --critical) also get the networking value error and the recall of maxima and saddles.
    Metal prototypes get rows per element, prototype and volume fraction, the parity of ELF
    maxima and the template-score ranking (Spearman), and --figure draws both parities."""
    import elfkit.data
    from elfkit.analysis.plots import evaluation_plot
    from elfkit.evaluation import evaluate as run_evaluation
    from elfkit.evaluation import markdown_table
    from elfkit.io import check_output_file
    from elfkit.io._files import atomic_text_output
    from elfkit.parallel import check_workers
    from elfkit.predict import get_model

    check_workers(workers)
    for path in (output, figure):
        if path is not None:
            check_output_file(path)
    count = len(elfkit.data.open(dataset, split=split.value))
    if count == 0:
        raise ElfkitError(f"{dataset}: the {split.value} split holds no samples")
    for model in models:
        get_model(model)
    with _counting_bar(f"evaluating {', '.join(models)} on {dataset}/{split.value}", count) as on_progress:
        result = run_evaluation(models, dataset, split.value, critical=critical, on_progress=on_progress, workers=workers)
    if output is not None:
        with atomic_text_output(output) as handle:
            json.dump(result, handle, indent=1)
    if figure is not None:
        evaluation_plot(result, figure)
    if as_json:
        typer.echo(json.dumps(result["table"], indent=2))
    else:
        typer.echo(markdown_table(result))


data_app = typer.Typer(help="Reference datasets: generate, list, validate.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _progress_lines():
    """Progress for logs (no terminal): one line per finished item with done/total and ETA."""
    started, skipped = time.monotonic(), None

    def update(done: int, total: int, failed: int) -> None:
        nonlocal skipped
        skipped = done if skipped is None else skipped
        rate = (done - skipped) / max(time.monotonic() - started, 1e-9)
        eta = f"{(total - done) / rate / 60:.0f} min" if rate > 0 else "unknown"
        typer.echo(f"{time.strftime('%H:%M:%S')} {done}/{total} items done, {failed} failed, ETA {eta}", err=True)

    return update


@data_app.command("generate")
@user_errors
def data_generate(
    spec: Annotated[Path, typer.Argument(help="Dataset spec (YAML).")],
    scheduler: Annotated[
        Optional[str], typer.Option(help="Address of an existing Dask scheduler (e.g. tcp://host:8786).")
    ] = None,
    workers: Annotated[Optional[int], typer.Option(help="Local workers (default: one per core).")] = None,
    scratch: Annotated[Optional[Path], typer.Option(help="Folder for DFT scratch files (default: system temp).")] = None,
):
    """Generate or continue a dataset; finished items are kept, so a rerun resumes."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from elfkit.data.runner import generate

    run = {"scheduler": scheduler, "workers": workers, "scratch": str(scratch) if scratch else None}
    if not sys.stderr.isatty():
        report = generate(spec, on_progress=_progress_lines(), **run)
    else:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns) as progress:
            task = progress.add_task(f"items of {spec.name}", total=None)

            def update(done: int, total: int, failed: int) -> None:
                progress.update(task, completed=done, total=total, description=f"items ({failed} failed)")

            report = generate(spec, on_progress=update, **run)
    typer.echo(
        f"{report.folder}: {report.done} items done now, {report.skipped} already done, "
        f"{report.failed} failed (see failures.jsonl), {report.total} in the spec"
    )


@data_app.command("list")
@user_errors
def data_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the README's Markdown table.")] = False,
):
    """Every dataset with its count, splits and pressure coverage."""
    from elfkit.data import list_datasets

    rows = list_datasets()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if markdown:
        typer.echo(_markdown_table(rows))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "kind", "count", "groups", "train/val/test", "pressure (GPa)", "temperature (K)", "engine")
    for r in rows:
        table.add_row(
            r["name"], str(r["kind"]), str(r["count"]), str(r["groups"]),
            "/".join(str(r["splits"][s]) for s in ("train", "val", "test")),
            _range(r["pressure_gpa"]), _range(r["temperature_k"]), str(r["engine"]),
        )
    Console().print(table)


@data_app.command("validate")
@user_errors
def data_validate(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    recompute: Annotated[int, typer.Option(help="Random samples to recompute with the other DFT engine; they cover every element when there are enough. 0 keeps the last report's cross-engine result.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed for choosing them.")] = 0,
):
    """Check ELF values, electron counts, convergence, duplicates, and cross-engine agreement."""
    import elfkit.data
    from elfkit.data.validate import validate

    dataset = elfkit.data.open(name)
    with _status(f"validating {name} ({len(dataset)} samples, {recompute} recomputed)"):
        report = validate(dataset, recompute=recompute, seed=seed)
    for check, value in report.items():
        if isinstance(value, dict):
            skipped = check == "cross_engine" and value["samples"] and not value.get("recomputed", True)
            typer.echo(f"{'skip' if skipped else 'ok  ' if value['ok'] else 'FAIL'} {check}")
    for row in report["cross_engine"]["samples"]:
        if "skipped" in row:
            typer.echo(f"     {row['key']} ({row['formula']}): not recomputed with {row['engine']}: {row['skipped']}")
            continue
        typer.echo(f"     {row['key']}: {row['engine']} ELF MAE {row['elf_mae_judged']:.4f} outside the cores "
                   f"({row['fraction_outside_cores']:.0%} of the cell), {row['elf_mae']:.4f} whole cell, "
                   f"max {row['elf_max']:.3f}")
    typer.echo(f"report: {dataset.folder / 'validation.json'}")
    if not report["ok"]:
        raise typer.Exit(1)


@data_app.command("repack")
@user_errors
def data_repack(name: Annotated[str, typer.Argument(help="Dataset name.")]):
    """Merge a dataset's shards into full ones and rebuild its manifest (while no run writes it)."""
    import elfkit.data
    from elfkit.data.store import DatasetStore

    dataset = elfkit.data.open(name)
    header = {key: value for key, value in dataset.manifest.items() if key not in ("count", "samples")}
    before = len(list((dataset.folder / "shards").glob("*.npz")))
    store = DatasetStore(dataset.folder)
    store.repack()
    generator = header.get("generator", {})
    manifest = store.write_manifest(header, fixed_split=generator.get("split"), stratify=generator.get("split_stratify"))
    after = len(list((dataset.folder / "shards").glob("*.npz")))
    typer.echo(f"{name}: {manifest['count']} samples, {before} shards -> {after}")


def _markdown_table(rows: list[dict]) -> str:
    lines = [
        "| dataset | samples (groups) | train/val/test | pressure (GPa) | temperature (K) | labels "
        "| QE-GPAW ELF MAE, outside cores / whole cell |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        labels = r["labels"] or {}
        setting = (
            f"{labels.get('engine')} PBE, {labels.get('cutoff_ev'):g} eV, "
            f"k-spacing {labels.get('kspacing') or 'Gamma'}, MV {labels.get('smearing_ev'):g} eV, "
            f"grid <= {r['grid_spacing_angstrom']} Å"
        )
        mae = " / ".join("-" if r[k] is None else f"{r[k]:.4f}" for k in ("cross_engine_elf_mae_judged", "cross_engine_elf_mae"))
        lines.append(
            f"| {r['name']} | {r['count']} ({r['groups']}) | "
            f"{'/'.join(str(r['splits'][s]) for s in ('train', 'val', 'test'))} | {_range(r['pressure_gpa'])} | "
            f"{_range(r['temperature_k'])} | {setting} | {mae} |"
        )
    return "\n".join(lines)


def _range(pair) -> str:
    return "-" if pair is None else f"{pair[0]:.0f} to {pair[1]:.0f}"


def main() -> None:
    """Entry point for `python -m elfkit`."""
    app(prog_name="elfkit")

