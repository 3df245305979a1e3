"""The QE-GPAW agreement criterion: ELF differences outside the pseudisation spheres."""

import numpy as np
import pytest
from ase import Atoms

from elfkit.dft.crosscheck import (
    TOLERANCE,
    core_radii,
    elf_agreement,
    outside_cores,
    paw_radius_bohr,
    pseudisation_radius_bohr,
)
from elfkit.dft.qe import PACKAGE_PSEUDO_DIR
from elfkit.grid import Grid


@pytest.fixture
def pair():
    """Li at the origin and Mg at the centre of a 6 Å cube, on a 30^3 grid."""
    return Atoms("LiMg", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=6.0 * np.eye(3), pbc=True), (30, 30, 30)


def _distances(atoms, shape, index):
    """Minimum-image distances (Å) from the grid points to atom `index` (cubic cell)."""
    points = Grid(atoms.cell.array, shape).cart_coords().reshape(-1, 3)
    length = atoms.cell[0, 0]
    vectors = points - atoms.positions[index]
    return np.linalg.norm(vectors - length * np.round(vectors / length), axis=1).reshape(shape)


def test_each_element_excludes_its_own_sphere(pair):
    atoms, shape = pair
    outside = outside_cores(atoms, shape, {"Li": 1.0, "Mg": 2.0})
    assert np.array_equal(outside, (_distances(atoms, shape, 0) > 1.0) & (_distances(atoms, shape, 1) > 2.0))
    assert outside.any() and (~outside).any()


def test_differences_inside_the_spheres_do_not_count(pair):
    atoms, shape = pair
    radii = {"Li": 1.0, "Mg": 2.0}
    elf = np.full(shape, 0.5)
    other = np.where(outside_cores(atoms, shape, radii), 0.5, 0.9)
    agreement = elf_agreement(elf, other, atoms, radii)
    assert agreement["elf_mae_judged"] == 0 and agreement["agrees"]
    assert agreement["elf_mae"] > TOLERANCE and agreement["elf_max"] == pytest.approx(0.4)


def test_the_whole_cell_counts_where_the_spheres_fill_it(pair):
    atoms, shape = pair
    elf, other = np.full(shape, 0.5), np.full(shape, 0.52)
    agreement = elf_agreement(elf, other, atoms, {"Li": 5.0, "Mg": 5.0})
    assert agreement["elf_mae_outside_cores"] is None and agreement["fraction_outside_cores"] < 0.05
    assert agreement["elf_mae_judged"] == pytest.approx(0.02) and not agreement["agrees"]


def test_radii_are_the_larger_of_the_two_engines():
    li_rc = pseudisation_radius_bohr(PACKAGE_PSEUDO_DIR / "Li.pbe-tm.UPF")
    assert li_rc == pytest.approx(2.2)
    radii = core_radii(["Li", "Li", "H"], None, {})
    assert radii["Li"] == pytest.approx(max(li_rc, paw_radius_bohr("Li", "paw")) * 0.529177, rel=1e-5)
    assert set(radii) == {"H", "Li"}
