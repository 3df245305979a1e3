"""Write the starting structures of four molecular hydrogen phases for specs/hydrogen-crystals.yaml.

Writes structures/hydrogen/{P63m,C2c24,Cmca12,Cmca4}.cif: P6_3/m-16, C2/c-24 and Cmca-12
(Pickard & Needs, Nat. Phys. 3, 473 (2007)) and Cmca-4 (Johnson & Ashcroft, Nature 403, 632
(2000)). The published coordinates are not on this machine, so these are NOT the published
coordinates: they are elfkit-built starting guesses with the published space group and number
of atoms per primitive cell, H2 bonds of 0.74 Å, and a volume near the target pressures. QE's
vc-relax (which keeps the symmetry of the start) settles cell and coordinates.

How each start is built (Wyckoff positions in the standard settings of ase.spacegroup):
- P6_3/m: molecular centres on an ideal hcp lattice (2x2 in-plane supercell, c/a ideal); a
  quarter of the molecules on the 3-fold axes along c (4f), the rest lying in the mirror planes
  (two 6h sites), turned in-plane to maximise the shortest intermolecular H-H distance.
- C2/c-24: molecular centres on an ideal hcp lattice (sqrt3 x sqrt3 layers in the ab plane; the
  c axis spans two layers plus one in-plane neighbour step, which makes the primitive vectors
  nearly equal, at ~60 deg); in each layer one molecule in three lies along b on a 2-fold axis
  (4e + 4e), the other two are tilted out of the layer (8f + 8f), oriented to maximise the
  shortest intermolecular H-H distance.
- Cmca-12: all molecules lie in the mirror planes x = 0, 1/2 (three 8f sites, one molecule
  centred on 4a, one general); arrangement from a one-off search (not repeated here) packing
  rigid 0.74 Å dumbbells at fixed volume under a soft repulsion sum exp(-r / 0.12 Å) within
  that scheme.
- Cmca-4: one 8f site, molecule centred on 4a in the mirror plane; molecular centres form
  triangular in-plane nets (nn 1.57 Å) stacked 1.18 Å apart, molecular angle maximising the
  shortest intermolecular H-H distance.

Each structure is checked (spglib, symprec 1e-3): space-group number, atoms in the primitive
cell, exactly one H neighbour within 0.9 Å per atom and no other H-H distance below 1.0 Å
(periodic images included). The primitive cell is written, and read back with elfkit.

Run:  python scripts/make_hydrogen_crystals.py   (a second or two; ASE, spglib and elfkit, no DFT)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import spglib
from ase import Atoms
from ase.io import write
from ase.neighborlist import neighbor_list
from ase.spacegroup import crystal

OUT = Path(__file__).resolve().parents[1] / "structures" / "hydrogen"
SYMPREC = 1e-3

# cellpar: a, b, c (Å), alpha, beta, gamma (deg); basis: one atom per Wyckoff site.
PHASES = [
    {
        "file": "P63m.cif",
        "title": "P6_3/m-16 (Pickard & Needs, Nat. Phys. 3, 473 (2007)), phase-II candidate",
        "spacegroup": 176,
        "natoms_primitive": 16,
        "volume_note": "2.15 Å^3/atom (~100-150 GPa)",
        "cellpar": [3.6505, 3.6505, 2.9807, 90, 90, 120],
        "wyckoff": ["4f", "6h", "6h"],
        "basis": [(1 / 3, 2 / 3, 0.1259), (0.7613, 0.7105, 0.25), (0.9054, 0.6228, 0.25)],
    },
    {
        "file": "C2c24.cif",
        "title": "C2/c-24 (Pickard & Needs, Nat. Phys. 3, 473 (2007)), phase-III candidate",
        "spacegroup": 15,
        "natoms_primitive": 12,
        "volume_note": "1.50 Å^3/atom (~250-350 GPa)",
        "cellpar": [4.8566, 2.8040, 3.0999, 90, 121.4822, 90],
        "wyckoff": ["4e", "4e", "8f", "8f"],
        "basis": [(0, 0.2153, 0.25), (0, 0.9514, 0.25), (0.4081, 0.1312, 0.3602), (0.2586, 0.0355, 0.1398)],
    },
    {
        "file": "Cmca12.cif",
        "title": "Cmca-12 (Pickard & Needs, Nat. Phys. 3, 473 (2007))",
        "spacegroup": 64,
        "natoms_primitive": 12,
        "volume_note": "1.30 Å^3/atom (~400-450 GPa)",
        "cellpar": [2.1459, 5.7753, 2.5175, 90, 90, 90],
        "wyckoff": ["8f", "8f", "8f"],
        "basis": [(0, 0.0434, 0.1081), (0, 0.6207, 0.9177), (0, 0.7472, 0.8704)],
    },
    {
        "file": "Cmca4.cif",
        "title": "Cmca-4 (Johnson & Ashcroft, Nature 403, 632 (2000); Pickard & Needs 2007)",
        "spacegroup": 64,
        "natoms_primitive": 4,
        "volume_note": "1.25 Å^3/atom (~400-500 GPa)",
        "cellpar": [2.3508, 1.5672, 2.7144, 90, 90, 90],
        "wyckoff": ["8f"],
        "basis": [(0, 0.1698, 0.9053)],
    },
]


def spglib_cell(atoms: Atoms):
    return (atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers)


def primitive(atoms: Atoms) -> Atoms:
    cell, frac, numbers = spglib.standardize_cell(spglib_cell(atoms), to_primitive=True, symprec=SYMPREC)
    return Atoms(numbers=numbers, cell=cell, scaled_positions=np.round(frac, 8) % 1.0, pbc=True)


def check(atoms: Atoms, phase: dict) -> tuple[float, float]:
    """Assert symmetry, primitive size and molecular distances; return (longest bond, shortest non-bond) in Å."""
    name = phase["file"]
    number = spglib.get_symmetry_dataset(spglib_cell(atoms), symprec=SYMPREC).number
    assert number == phase["spacegroup"], f"{name}: space group {number}, expected {phase['spacegroup']}"
    nprim = len(primitive(atoms))
    assert nprim == phase["natoms_primitive"], f"{name}: {nprim} atoms in the primitive cell"
    i, d = neighbor_list("id", atoms, 2.0)
    bonds, others = [], []
    for atom in range(len(atoms)):
        dist = np.sort(d[i == atom])
        close = np.count_nonzero(dist < 0.9)
        assert close == 1, f"{name}: atom {atom} has {close} neighbours within 0.9 Å"
        second = dist[1] if len(dist) > 1 else np.inf
        assert second >= 1.0, f"{name}: atom {atom} has a second neighbour at {second:.3f} Å"
        bonds.append(dist[0])
        others.append(second)
    return max(bonds), min(others)


def header(phase: dict, atoms: Atoms, bond: float, contact: float) -> str:
    a, b, c, alpha, beta, gamma = phase["cellpar"]
    lines = [
        f"Molecular hydrogen, {phase['title']}.",
        "Starting guess built by scripts/make_hydrogen_crystals.py: the published space group and",
        "number of atoms per primitive cell, NOT the published coordinates; to be vc-relaxed by",
        f"specs/hydrogen-crystals.yaml. Volume {phase['volume_note']}.",
        f"Built in the conventional cell a={a} b={b} c={c} Å, alpha={alpha} beta={beta} gamma={gamma},",
        f"space group {phase['spacegroup']} (ase.spacegroup setting), from the sites",
        *(f"  {w} ({', '.join(f'{x:.4f}' for x in xyz)})" for w, xyz in zip(phase["wyckoff"], phase["basis"])),
        f"and written as the primitive cell ({len(atoms)} atoms). H-H bond {bond:.3f} Å, shortest",
        f"intermolecular H-H distance {contact:.3f} Å.",
    ]
    return "".join(f"# {line}\n" for line in lines)


def main() -> None:
    from elfkit.io import read_structure
    from elfkit.symmetry import space_group

    OUT.mkdir(parents=True, exist_ok=True)
    for phase in PHASES:
        conventional = crystal(["H"] * len(phase["basis"]), phase["basis"], spacegroup=phase["spacegroup"],
                               cellpar=phase["cellpar"])
        check(conventional, phase)
        atoms = primitive(conventional)
        bond, contact = check(atoms, phase)
        path = OUT / phase["file"]
        write(path, atoms, format="cif")
        path.write_text(header(phase, atoms, bond, contact) + path.read_text())
        back = read_structure(path)
        symbol, number = space_group(back, symprec=SYMPREC)
        assert number == phase["spacegroup"] and len(back) == len(atoms), \
            f"{path}: read back as {symbol} ({len(back)} atoms)"
        check(back, phase)
        print(f"{path.name}: {symbol} (No. {number}), {len(back)} atoms, "
              f"{back.get_volume() / len(back):.3f} Å^3/atom, bond {bond:.3f} Å, "
              f"shortest intermolecular H-H {contact:.3f} Å")


if __name__ == "__main__":
    main()
