"""Metal-only structures for seed 004: elemental and binary metals in common prototypes,
compressed from their ambient volume down to about half.

Ambient volumes per atom come from ASE's reference states of the elements (Å³); a binary
starts from the composition-weighted mean (Vegard-like). Every structure of one prototype
and composition at all volumes shares one group (the parent structure), the unit of the
train/val/test split.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers, reference_states
from ase.spacegroup import crystal

UNARY = ("fcc", "bcc", "hcp", "sc")
BINARY = ("B2", "L1_0", "L1_2", "AlB2", "C15", "A15", "D0_3", "D0_19", "CaCu5", "C11b", "C14")
"""Binary prototypes, first element A: B2 (CsCl) AB, L1_0 (CuAu) AB, L1_2 (Cu3Au) A3B,
AlB2 AB2, C15 (MgCu2 Laves) AB2, A15 (Cr3Si) A3B, D0_3 (BiF3) A3B, D0_19 (Ni3Sn) A3B,
CaCu5 AB5, C11b (MoSi2) AB2, C14 (MgZn2 Laves) AB2; ideal internal coordinates and axial
ratios of the prototype compounds."""


def ambient_volume(symbol: str) -> float:
    """Volume per atom (Å³) of an element in its ASE reference state."""
    state = reference_states[atomic_numbers[symbol]]
    a = state.get("a")
    kind = state.get("symmetry")
    if kind == "fcc":
        return a**3 / 4
    if kind == "bcc":
        return a**3 / 2
    if kind == "hcp":
        return np.sqrt(3) / 2 * a**2 * a * state["c/a"] / 2
    raise ValueError(f"no ambient volume for {symbol} ({kind})")


def _unary(prototype: str, symbol: str) -> Atoms:
    if prototype == "hcp":
        return bulk(symbol, "hcp", a=1.0, c=np.sqrt(8 / 3))
    return bulk(symbol, prototype, a=1.0)


def _binary(prototype: str, a: str, b: str) -> Atoms:
    if prototype == "B2":
        return Atoms([a, b], scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=np.eye(3), pbc=True)
    if prototype == "L1_0":
        return Atoms([a, b], scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=np.diag([1, 1, np.sqrt(2)]), pbc=True)
    if prototype == "L1_2":
        return crystal([b, a], basis=[(0, 0, 0), (0, 0.5, 0.5)], spacegroup=221, cellpar=[1, 1, 1, 90, 90, 90])
    if prototype == "AlB2":
        return crystal([a, b], basis=[(0, 0, 0), (1 / 3, 2 / 3, 0.5)], spacegroup=191, cellpar=[1, 1, 1.08, 90, 90, 120])
    if prototype == "C15":
        return crystal([a, b], basis=[(0, 0, 0), (5 / 8, 5 / 8, 5 / 8)], spacegroup=227, cellpar=[1, 1, 1, 90, 90, 90],
                       primitive_cell=True)
    if prototype == "A15":
        return crystal([b, a], basis=[(0, 0, 0), (0.25, 0, 0.5)], spacegroup=223, cellpar=[1, 1, 1, 90, 90, 90])
    return _binary_extra(prototype, a, b)


def _binary_extra(prototype: str, a: str, b: str) -> Atoms:
    if prototype == "D0_3":
        return crystal([b, a, a], basis=[(0, 0, 0), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)], spacegroup=225,
                       cellpar=[1, 1, 1, 90, 90, 90], primitive_cell=True)
    if prototype == "D0_19":
        return crystal([a, b], basis=[(5 / 6, 2 / 3, 0.25), (1 / 3, 2 / 3, 0.25)], spacegroup=194,
                       cellpar=[1, 1, 0.80, 90, 90, 120])
    if prototype == "CaCu5":
        return crystal([a, b, b], basis=[(0, 0, 0), (1 / 3, 2 / 3, 0), (0.5, 0, 0.5)], spacegroup=191,
                       cellpar=[1, 1, 0.80, 90, 90, 120])
    if prototype == "C11b":
        return crystal([a, b], basis=[(0, 0, 0), (0, 0, 1 / 3)], spacegroup=139, cellpar=[1, 1, 2.45, 90, 90, 90],
                       primitive_cell=True)
    if prototype == "C14":
        return crystal([a, b, b], basis=[(1 / 3, 2 / 3, 0.063), (0, 0, 0), (5 / 6, 2 / 3, 0.25)], spacegroup=194,
                       cellpar=[1, 1, 1.64, 90, 90, 120])
    raise ValueError(f"unknown prototype {prototype!r}")


def build(prototype: str, elements: list[str], volume_fraction: float) -> Atoms:
    """A prototype structure of `elements` scaled to `volume_fraction` of its ambient volume."""
    atoms = _unary(prototype, elements[0]) if prototype in UNARY else _binary(prototype, *elements)
    target = volume_fraction * np.mean([ambient_volume(s) for s in atoms.get_chemical_symbols()]) * len(atoms)
    atoms.set_cell(atoms.cell.array * (target / atoms.get_volume()) ** (1 / 3), scale_atoms=True)
    atoms.wrap()
    return atoms


def label_structure(item: dict, spec, scratch) -> list:
    """Build one prototype structure and label it with DFT; returns one Sample."""
    from elfkit.data.store import Sample
    from elfkit.dft import DFTSettings, compute
    from elfkit.dft.base import dft_grid_shape

    atoms = build(item["prototype"], item["elements"], item["volume_fraction"])
    labels = DFTSettings(**spec.labels.model_dump())
    shape = dft_grid_shape(atoms.cell.array, spec.grid_spacing_angstrom, labels.cutoff_ev)
    result = compute(atoms, shape, labels, scratch=scratch)
    metadata = {k: result.metadata[k] for k in ("engine", "engine_version", "dft_grid", "scf_iterations", "electrons", "kpoints")}
    metadata |= {"prototype": item["prototype"], "volume_fraction": item["volume_fraction"]}
    group = f"{item['prototype']}-{'-'.join(item['elements'])}"
    return [
        Sample(atoms, result.elf.values.astype(np.float32), result.energy_ev, result.pressure_gpa, group,
               None, result.stress_gpa, metadata)
    ]
