"""Crystals relaxed at target pressures with Quantum ESPRESSO (vc-relax), then labelled.

Used for the crystalline-hydrogen transfer set: each structure of the spec is relaxed
(cell and positions, BFGS, symmetry kept by QE) at each target pressure (GPa) and the
relaxed crystal is labelled with the spec's label settings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from elfkit.dft.base import DFTError

KBAR_PER_GPA = 10.0


def item_atoms(item: dict) -> Atoms:
    """The starting structure carried inside a work item."""
    return Atoms(numbers=item["numbers"], positions=item["positions"], cell=item["cell"], pbc=True)


def relax(atoms: Atoms, pressure_gpa: float, relax_settings, folder: Path) -> tuple[Atoms, int]:
    """vc-relax `atoms` at `pressure_gpa`; returns the relaxed crystal and the number of BFGS steps."""
    from ase.io import read

    from elfkit.dft import DFTSettings
    from elfkit.dft.qe import PACKAGE_PSEUDO_DIR, check_converged, find_pseudopotentials, run_program, write_pw_input

    settings = DFTSettings(engine="qe", cutoff_ev=relax_settings.cutoff_ev, kspacing=relax_settings.kspacing,
                           smearing_ev=relax_settings.smearing_ev)
    pseudos = find_pseudopotentials(atoms.get_chemical_symbols(), PACKAGE_PSEUDO_DIR)
    extra = {
        "control": {"calculation": "vc-relax", "nstep": 200, "forc_conv_thr": relax_settings.force_tolerance_ev_per_angstrom / 25.71104},
        "ions": {"ion_dynamics": "bfgs"},
        "cell": {"cell_dynamics": "bfgs", "press": pressure_gpa * KBAR_PER_GPA,
                 "press_conv_thr": relax_settings.pressure_tolerance_gpa * KBAR_PER_GPA, "cell_dofree": "all"},
    }
    write_pw_input(folder / "relax.in", atoms, settings, pseudos, PACKAGE_PSEUDO_DIR, folder, (0, 0, 0), extra=extra)
    output = run_program("pw.x", folder / "relax.in", folder / "relax.out", folder)
    check_converged(output, folder / "relax.out")
    if "bfgs converged" not in output:
        raise DFTError(f"vc-relax did not converge (see {folder / 'relax.out'})")
    final = read(folder / "relax.out", index=-1, format="espresso-out")
    relaxed = Atoms(final.numbers, positions=final.positions, cell=final.cell, pbc=True)
    relaxed.wrap()
    return relaxed, output.count("number of bfgs steps")


def label_crystal(item: dict, spec, scratch: Path) -> list:
    """Relax one structure at one pressure and label it; returns one Sample."""
    from elfkit.data.store import Sample
    from elfkit.dft import DFTSettings, compute
    from elfkit.dft.base import dft_grid_shape

    relaxed, steps = relax(item_atoms(item), item["pressure_gpa"], spec.relax, scratch)
    labels = DFTSettings(**spec.labels.model_dump())
    shape = dft_grid_shape(relaxed.cell.array, spec.grid_spacing_angstrom, labels.cutoff_ev)
    result = compute(relaxed, shape, labels, scratch=scratch / "label")
    metadata = {k: result.metadata[k] for k in ("engine", "engine_version", "dft_grid", "scf_iterations", "electrons", "kpoints")}
    metadata |= {"structure": item["name"], "target_pressure_gpa": item["pressure_gpa"], "relax_steps": steps,
                 "reference": item.get("reference", "")}
    return [Sample(relaxed, result.elf.values.astype(np.float32), result.energy_ev, result.pressure_gpa,
                   f"crystal-{item['name']}", None, result.stress_gpa, metadata)]
