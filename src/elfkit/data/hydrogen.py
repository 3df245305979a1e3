"""Dense fluid hydrogen: starting structures and Born-Oppenheimer MD with Quantum ESPRESSO.

Densities are given by rs (bohr), the radius of the sphere holding one electron (one atom).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from elfkit.dft.base import DFTSettings
from elfkit.units import BOHR_IN_ANGSTROM

H2_BOND_ANGSTROM = 0.74
RY_TIME_FS = 0.0483776878
"""One Rydberg atomic unit of time (QE's MD unit) in fs."""


def box_length(natoms: int, rs_bohr: float) -> float:
    """Edge (Å) of the cubic cell holding `natoms` hydrogen atoms at density rs (bohr)."""
    return float((natoms * 4 / 3 * np.pi * (rs_bohr * BOHR_IN_ANGSTROM) ** 3) ** (1 / 3))


def _min_image_distances(points: np.ndarray, trial: np.ndarray, length: float) -> np.ndarray:
    delta = points - trial
    delta -= length * np.round(delta / length)
    return np.linalg.norm(delta, axis=-1)


def random_atomic_hydrogen(natoms: int, rs_bohr: float, seed: int) -> Atoms:
    """Atoms placed at random with a minimum separation that shrinks until they all fit."""
    length = box_length(natoms, rs_bohr)
    rng = np.random.default_rng(seed)
    spacing = 0.9 * rs_bohr * BOHR_IN_ANGSTROM * 1.2
    while True:
        points = _random_sequential(rng, natoms, length, spacing, lambda p: p[None, :])
        if points is not None:
            return Atoms(f"H{natoms}", positions=points, cell=[length] * 3, pbc=True)
        spacing *= 0.95


def molecular_hydrogen(natoms: int, rs_bohr: float, seed: int) -> Atoms:
    """natoms/2 H2 molecules (bond 0.74 Å) with random centres and orientations."""
    if natoms % 2:
        raise ValueError("molecular hydrogen needs an even number of atoms")
    length = box_length(natoms, rs_bohr)
    rng = np.random.default_rng(seed)

    def molecule(centre):
        axis = rng.normal(size=3)
        axis *= H2_BOND_ANGSTROM / 2 / np.linalg.norm(axis)
        return np.array([centre - axis, centre + axis])

    spacing = 2.2 * rs_bohr * BOHR_IN_ANGSTROM
    while True:
        points = _random_sequential(rng, natoms // 2, length, spacing, molecule)
        if points is not None:
            return Atoms(f"H{natoms}", positions=points, cell=[length] * 3, pbc=True)
        spacing *= 0.95


def _random_sequential(rng, count, length, spacing, make, attempts=20000):
    points = np.zeros((0, 3))
    for _ in range(attempts):
        candidate = make(rng.random(3) * length)
        if all(len(points) == 0 or _min_image_distances(points, c, length).min() > spacing for c in candidate):
            points = np.vstack([points, candidate])
            if len(points) == count * len(candidate):
                return points
    return None


@dataclass(frozen=True)
class MDSettings:
    """Born-Oppenheimer MD (QE, NVT with an Andersen thermostat): cheaper electronic
    settings than the labels, which are recomputed on every snapshot."""

    cutoff_ev: float = 408.0
    smearing_ev: float = 0.1
    timestep_fs: float = 0.48
    thermostat_collision_steps: int = 20


def run_md(atoms: Atoms, temperature_k: float, nsteps: int, md: MDSettings, folder: Path):
    """Run `nsteps` MD steps; return (frames, temperatures in K) for steps 1..nsteps."""
    from elfkit.dft.qe import PACKAGE_PSEUDO_DIR, check_converged, find_pseudopotentials, run_program, write_pw_input

    settings = DFTSettings(engine="qe", cutoff_ev=md.cutoff_ev, smearing_ev=md.smearing_ev, scf_tolerance_ev=1e-6)
    pseudos = find_pseudopotentials(atoms.get_chemical_symbols(), PACKAGE_PSEUDO_DIR)
    extra = {
        "control": {"calculation": "md", "dt": md.timestep_fs / RY_TIME_FS, "nstep": nsteps, "tstress": False},
        "electrons": {"mixing_mode": "local-TF", "mixing_beta": 0.3},
        "ions": {"ion_temperature": "andersen", "tempw": temperature_k, "nraise": md.thermostat_collision_steps},
    }
    write_pw_input(folder / "md.in", atoms, settings, pseudos, PACKAGE_PSEUDO_DIR, folder, (0, 0, 0), extra=extra)
    output = run_program("pw.x", folder / "md.in", folder / "md.out", folder)
    check_converged(output, folder / "md.out")
    return _md_frames(folder / "md.out", output, nsteps)


def _md_frames(path: Path, output: str, nsteps: int):
    from ase.io import read

    frames = read(path, index=":", format="espresso-out")
    temperatures = [float(t) for t in re.findall(r"temperature\s+=\s+([\d.]+) K", output)]
    frames = frames[-nsteps:]
    if len(frames) != nsteps or len(temperatures) < nsteps:
        raise RuntimeError(f"MD output has {len(frames)} frames and {len(temperatures)} temperatures, expected {nsteps}")
    return frames, temperatures[-nsteps:]


def label_trajectory(item: dict, spec, scratch: Path) -> list:
    """Run one trajectory of a hydrogen-md spec and label its snapshots with DFT.

    Equilibrates for `equilibration_fs`, then takes `snapshots` configurations
    `interval_fs` apart; each is recomputed with the label settings on a grid of spacing
    <= `spec.grid_spacing_angstrom` (Å). Returns elfkit.data.store.Sample objects whose
    group is the trajectory, and whose temperature is the thermostat's target (K).
    """
    from elfkit.data.store import Sample
    from elfkit.dft import DFTSettings, compute
    from elfkit.dft.base import dft_grid_shape

    md = MDSettings(**spec.md.model_dump())
    start = (molecular_hydrogen if item["start"] == "molecular" else random_atomic_hydrogen)(
        item["natoms"], item["rs_bohr"], item["seed"]
    )
    equilibration = max(1, round(item["equilibration_fs"] / md.timestep_fs))
    interval = max(1, round(item["interval_fs"] / md.timestep_fs))
    nsteps = equilibration + item["snapshots"] * interval
    frames, temperatures = run_md(start, item["temperature_k"], nsteps, md, scratch)
    labels = DFTSettings(**spec.labels.model_dump())
    samples = []
    for k in range(1, item["snapshots"] + 1):
        step = equilibration + k * interval - 1
        atoms = Atoms(frames[step].numbers, positions=frames[step].positions, cell=frames[step].cell, pbc=True)
        atoms.wrap()
        shape = dft_grid_shape(atoms.cell.array, spec.grid_spacing_angstrom, labels.cutoff_ev)
        result = compute(atoms, shape, labels, scratch=scratch / f"label-{k:03d}")
        samples.append(
            Sample(
                atoms=atoms,
                elf=result.elf.values.astype(np.float32),
                energy_ev=result.energy_ev,
                pressure_gpa=result.pressure_gpa,
                group=f"trajectory-{item['key']}",
                temperature_k=float(item["temperature_k"]),
                stress_gpa=result.stress_gpa,
                metadata={
                    **{k2: result.metadata[k2] for k2 in ("engine", "engine_version", "dft_grid", "scf_iterations", "electrons")},
                    "md_step": step + 1,
                    "time_fs": round((step + 1) * md.timestep_fs, 3),
                    "instantaneous_temperature_k": temperatures[step],
                    "rs_bohr": item["rs_bohr"],
                    "start": item["start"],
                },
            )
        )
    return samples
