"""Quantum ESPRESSO engine: pw.x for the SCF, pp.x (plot_num=8) for the ELF.

Runs single-core (one job per core beats MPI on small cells). The dense FFT grid is set
to m times the requested grid (nr1, nr2, nr3), so the ELF lands on the requested points.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
from ase import Atoms

from elfkit.dft.base import (
    EV_PER_ANGSTROM3_IN_GPA,
    DFTError,
    DFTResult,
    DFTSettings,
    kpoint_mesh,
    pressure_from_stress,
    refinement_factor,
    scratch_folder,
    sha256_of,
)
from elfkit.units import HARTREE_IN_EV

RY_IN_EV = HARTREE_IN_EV / 2
PACKAGE_PSEUDO_DIR = Path(__file__).resolve().parent / "pseudo"
PREFIX = "elfkit"
MINIMUM_CUTOFF_EV = {"Ca": 900.0, "Sr": 900.0, "Sc": 900.0, "Y": 900.0, "Zr": 900.0, "La": 900.0}
"""Packaged pseudopotentials that agree with GPAW only from this wave-function cutoff (eV) up;
the others pass at 450 eV (pseudo/README.md, benchmarks/results/pseudo_validation.json)."""


def find_pseudopotentials(symbols, pseudo_dir: Path) -> dict[str, Path]:
    """One UPF file per element, named <Symbol>.*.UPF (case-insensitive suffix) in `pseudo_dir`."""
    found = {}
    for symbol in sorted(set(symbols)):
        matches = sorted(p for p in pseudo_dir.glob(f"{symbol}.*") if p.suffix.lower() == ".upf")
        if len(matches) != 1:
            problem = "no" if not matches else "more than one"
            raise DFTError(
                f"{problem} QE pseudopotential for {symbol} in {pseudo_dir} "
                "(use --engine gpaw, or --pseudo-dir with one <Symbol>.*.UPF per element)"
            )
        found[symbol] = matches[0]
    return found


def valence_electrons(symbols, pseudo_dir: Path | None = None) -> dict[str, float]:
    """Valence electrons per element of the pseudopotentials QE would use (z_valence)."""
    found = find_pseudopotentials(symbols, pseudo_dir or PACKAGE_PSEUDO_DIR)
    valence = {}
    for symbol, path in found.items():
        match = re.search(r'z_valence="\s*([0-9.Ee+-]+)"', path.read_text())
        if not match:
            raise DFTError(f"{path}: no z_valence in the UPF header")
        valence[symbol] = float(match.group(1))
    return valence


def unvalidated_at(symbols, cutoff_ev: float) -> dict[str, float]:
    """{symbol: lowest validated cutoff (eV)} for the packaged pseudopotentials of `symbols`
    that were not validated at `cutoff_ev` (eV), in symbol order; see MINIMUM_CUTOFF_EV."""
    return {s: MINIMUM_CUTOFF_EV[s] for s in sorted(set(symbols)) if cutoff_ev < MINIMUM_CUTOFF_EV.get(s, 0.0)}


def check_validated_cutoff(symbols, cutoff_ev: float) -> None:
    """DFTError naming the first packaged pseudopotential of `symbols` that was not validated
    at `cutoff_ev` (eV); see MINIMUM_CUTOFF_EV."""
    too_low = unvalidated_at(symbols, cutoff_ev)
    if too_low:
        symbol, minimum = next(iter(too_low.items()))
        raise DFTError(
            f"elfkit's {symbol} pseudopotential agrees with GPAW only from {minimum:g} eV up, not at "
            f"{cutoff_ev:g} eV (raise --cutoff, or use --engine gpaw)"
        )


def run_qe(atoms: Atoms, shape, settings: DFTSettings, scratch=None) -> DFTResult:
    """SCF + ELF with Quantum ESPRESSO; see `elfkit.dft.compute`."""
    pseudo_dir = Path(settings.pseudo_dir).resolve() if settings.pseudo_dir else PACKAGE_PSEUDO_DIR
    pseudos = find_pseudopotentials(atoms.get_chemical_symbols(), pseudo_dir)
    if pseudo_dir == PACKAGE_PSEUDO_DIR:
        check_validated_cutoff(pseudos, settings.cutoff_ev)
    factor = refinement_factor(atoms.cell.array, shape, settings.cutoff_ev)
    dft_shape = tuple(factor * n for n in shape)
    started = time.perf_counter()
    with scratch_folder(scratch) as folder:
        write_pw_input(folder / "pw.in", atoms, settings, pseudos, pseudo_dir, folder, dft_shape)
        output = run_program("pw.x", folder / "pw.in", folder / "pw.out", folder)
        check_converged(output, folder / "pw.out")
        energy, stress = _energy_and_stress(folder / "pw.out")
        elf = _elf_from_pp(folder, dft_shape)[::factor, ::factor, ::factor]
    from elfkit.field import Field

    metadata = {
        "engine": "qe",
        "engine_version": _version(output),
        "settings": settings.as_dict(),
        "kpoints": list(kpoint_mesh(atoms.cell.array, settings.kspacing)),
        "dft_grid": list(dft_shape),
        "scf_iterations": _scf_iterations(output),
        "electrons": _electrons(output),
        "pseudopotentials": {s: {"file": p.name, "sha256": sha256_of(p)} for s, p in pseudos.items()},
        "wall_seconds": round(time.perf_counter() - started, 2),
    }
    field = Field(atoms.copy(), np.clip(elf, 0.0, 1.0), "elf", metadata={"source_format": "qe"})
    return DFTResult(field, energy, pressure_from_stress(stress), stress, metadata)


def pw_input_data(settings: DFTSettings, pseudo_dir: Path, outdir: Path, dft_shape) -> dict:
    """pw.x namelists (Rydberg units) for an SCF with stress at `settings`."""
    system = {
        "ecutwfc": settings.cutoff_ev / RY_IN_EV,
        "ecutrho": 4 * settings.cutoff_ev / RY_IN_EV,
        "nr1": dft_shape[0],
        "nr2": dft_shape[1],
        "nr3": dft_shape[2],
        "input_dft": "PBE",
    }
    if settings.smearing_ev > 0:
        system.update(occupations="smearing", smearing="mv", degauss=settings.smearing_ev / RY_IN_EV)
    return {
        "control": {
            "calculation": "scf",
            "prefix": PREFIX,
            "outdir": str(outdir),
            "pseudo_dir": str(pseudo_dir),
            "tstress": True,
            "tprnfor": True,
        },
        "system": system,
        "electrons": {
            "conv_thr": settings.scf_tolerance_ev / RY_IN_EV,
            "electron_maxstep": settings.max_scf_iterations,
            "mixing_beta": 0.4,
        },
    }


def write_pw_input(path: Path, atoms, settings, pseudos, pseudo_dir, outdir, dft_shape, extra=None) -> None:
    """Write a pw.x input; `extra` updates namelists (e.g. molecular-dynamics keys)."""
    from ase.io.espresso import write_espresso_in

    data = pw_input_data(settings, pseudo_dir, outdir, dft_shape)
    for section, values in (extra or {}).items():
        data.setdefault(section, {}).update(values)
    mesh = kpoint_mesh(atoms.cell.array, settings.kspacing)
    kpts = None if settings.kspacing is None else mesh
    with open(path, "w") as handle:
        write_espresso_in(
            handle,
            atoms,
            input_data=data,
            pseudopotentials={s: p.name for s, p in pseudos.items()},
            kpts=kpts,
            crystal_coordinates=True,
        )


_DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
"""Linux (util-linux): kill a QE program when the process that started it dies, so that a killed
`elfkit data generate` leaves no pw.x running on in a scratch folder that the next run resumes."""


def run_program(program: str, input_path: Path, output_path: Path, cwd: Path) -> str:
    """Run a single-core QE program and return its output text; DFTError if it fails."""
    if shutil.which(program) is None:
        raise DFTError(f"{program} not found: install Debian's quantum-espresso package")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(output_path, "w") as out:
        completed = subprocess.run([*_DIE_WITH_PARENT, program, "-in", str(input_path)], cwd=cwd, stdout=out,
                                   stderr=subprocess.STDOUT, env=env)
    text = Path(output_path).read_text(errors="replace")
    if "convergence NOT achieved" in text:
        raise DFTError(f"SCF did not converge (see {output_path})")
    if completed.returncode != 0:
        raise DFTError(f"{program} failed (exit {completed.returncode}): {_qe_error(text)}")
    return text


def _qe_error(text: str) -> str:
    match = re.search(r"%{10,}\s*\n(.*?)\n\s*%{10,}", text, re.S)
    return " ".join(match.group(1).split()) if match else "see its output"


def check_converged(output: str, path: Path) -> None:
    """DFTError unless every SCF in a pw.x output converged."""
    if "convergence NOT achieved" in output or "convergence has been achieved" not in output:
        raise DFTError(f"SCF did not converge (see {path})")


def _energy_and_stress(path: Path) -> tuple[float, np.ndarray]:
    from ase.io import read

    try:
        atoms = read(path, format="espresso-out")
        stress = atoms.get_stress(voigt=False) * EV_PER_ANGSTROM3_IN_GPA
        return float(atoms.get_potential_energy()), stress
    except Exception as exc:
        raise DFTError(f"cannot read the energy and stress from {path} ({type(exc).__name__}: {exc})") from None


def _elf_from_pp(folder: Path, dft_shape) -> np.ndarray:
    from elfkit.io.cube import read_cube_field

    (folder / "pp.in").write_text(
        "&inputpp\n"
        f"  prefix = '{PREFIX}', outdir = '{folder}', filplot = 'elf.dat', plot_num = 8\n"
        "/\n&plot\n  iflag = 3, output_format = 6, fileout = 'elf.cube'\n/\n"
    )
    run_program("pp.x", folder / "pp.in", folder / "pp.out", folder)
    values = read_cube_field(folder / "elf.cube", "elf").values
    if values.shape != tuple(dft_shape):
        raise DFTError(
            f"QE changed the FFT grid to {values.shape} (asked {tuple(dft_shape)}); "
            "choose grid sizes with factors 2, 3 and 5 only"
        )
    return values


def _version(output: str) -> str:
    match = re.search(r"Program PWSCF v\.(\S+)", output)
    return match.group(1) if match else "unknown"


def _electrons(output: str) -> float | None:
    match = re.search(r"number of electrons\s+=\s+([\d.]+)", output)
    return float(match.group(1)) if match else None


def _scf_iterations(output: str) -> int | None:
    counts = re.findall(r"convergence has been achieved in\s+(\d+) iterations", output)
    return int(counts[-1]) if counts else None
