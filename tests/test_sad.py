import itertools

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from scipy.interpolate import CubicSpline

from elfkit.errors import ElfkitError
from elfkit.grid import Grid
from elfkit.sad import atomic_density, electron_count, engine_valence_electrons, form_factor, sad


def real_space_image_sum(atoms: Atoms, shape, kind: str) -> np.ndarray:
    """Reference SAD: every periodic image of every atom within the density's cutoff, summed
    point by point in real space (slow; small cells only)."""
    grid = Grid(atoms.cell.array, shape)
    points = grid.cart_coords().reshape(-1, 3)
    total = np.zeros(len(points))
    for z, position in zip(atoms.numbers, atoms.positions):
        r, n = atomic_density(int(z), kind)
        cutoff = r[np.nonzero(n > 1e-10)[0][-1]]
        spline = CubicSpline(r, n)
        reach = np.ceil(cutoff / np.linalg.norm(atoms.cell.array, axis=1) * np.sqrt(3)).astype(int) + 1
        for image in itertools.product(*(range(-m, m + 1) for m in reach)):
            distance = np.linalg.norm(points - position - np.array(image) @ atoms.cell.array, axis=1)
            near = distance < cutoff
            total[near] += spline(distance[near])
    return total.reshape(shape)


@pytest.mark.parametrize("kind", ["total", "valence"])
def test_sad_integrates_to_the_electron_count(lah10, hcp_mg, fluid_h64, triclinic_mix, kind):
    for atoms in (lah10, hcp_mg, fluid_h64, triclinic_mix, bulk("Bi", "sc", a=3.2)):
        grid = Grid.for_spacing(atoms.cell.array, 0.12)
        integral = sad(atoms, grid.shape, kind).sum() * grid.voxel_volume
        assert integral == pytest.approx(electron_count(atoms, kind), rel=5e-3)


def test_electron_counts_are_atomic_numbers_and_noble_gas_valences(lah10):
    assert electron_count(lah10, "total") == 4 * 57 + 40
    assert electron_count(lah10, "valence") == 4 * 3 + 40
    assert electron_count(bulk("Bi", "sc", a=3.2), "valence") == 29


@pytest.mark.parametrize("engine", ["qe", "gpaw"])
def test_engine_valence_sads_integrate_to_the_engines_valence(lah10, hcp_mg, triclinic_mix, engine):
    for atoms in (lah10, hcp_mg, triclinic_mix):
        grid = Grid.for_spacing(atoms.cell.array, 0.12)
        integral = sad(atoms, grid.shape, engine).sum() * grid.voxel_volume
        assert integral == pytest.approx(electron_count(atoms, engine), rel=5e-3)


def test_engine_valences_are_those_of_the_pseudopotentials_and_setups():
    """elfkit's QE Mg and Na keep no 2s2p, GPAW's default setups do; both keep La's 5s5p (11),
    Ca's 3s3p (10); GPAW's Hf keeps 5s5p but not 4f (12); no QE pseudopotential for Nb."""
    from elfkit.dft.gpaw_engine import setup_valence
    from elfkit.dft.qe import valence_electrons

    assert [engine_valence_electrons(z, "qe") for z in (12, 11, 57, 20, 41)] == [2, 1, 11, 10, 0]
    assert [engine_valence_electrons(z, "gpaw") for z in (12, 11, 57, 20, 72)] == [10, 7, 11, 10, 12]
    qe = valence_electrons(["Li", "K", "Sr", "Zr", "Al"])
    assert all(engine_valence_electrons(z, "qe") == qe[s] for s, z in (("Li", 3), ("K", 19), ("Sr", 38), ("Zr", 40), ("Al", 13)))
    gpaw = setup_valence(["Ti", "Ce", "Fe", "Pb"])
    assert all(engine_valence_electrons(z, "gpaw") == gpaw[s] for s, z in (("Ti", 22), ("Ce", 58), ("Fe", 26), ("Pb", 82)))


def test_a_missing_engine_density_is_refused():
    with pytest.raises(ElfkitError, match="no qe valence density for Nb"):
        atomic_density(41, "qe")


def test_fast_sad_matches_the_real_space_sum_over_periodic_images(triclinic_mix):
    shape = (36, 36, 40)
    fast = sad(triclinic_mix, shape, "valence")
    reference = real_space_image_sum(triclinic_mix, shape, "valence")
    assert np.abs(fast - reference).sum() / reference.sum() < 0.01
    assert np.abs(fast - reference).max() < 0.02 * reference.max()


def test_tabulated_densities_hold_their_electrons():
    for z in (1, 3, 20, 57, 83):
        assert form_factor(z, "total", np.array([0.0]))[0] == pytest.approx(z, rel=1e-5)
        r, n = atomic_density(z)
        assert n.min() >= 0.0 and r[0] == 0.0


def test_hydrogen_density_is_close_to_the_exact_1s_density_outside_the_smoothed_core():
    r, n = atomic_density(1)
    bohr = 0.529177
    exact = np.exp(-2 * r / bohr) / (np.pi * bohr**3)
    window = (r > 0.4) & (r < 2.0)
    assert np.max(np.abs(n[window] / exact[window] - 1)) < 0.35


def test_sad_is_invariant_under_lattice_translation_and_atom_permutation(triclinic_mix):
    shape = (20, 20, 24)
    reference = sad(triclinic_mix, shape)
    shifted = triclinic_mix.copy()
    shifted.positions += np.array([1, -2, 3]) @ shifted.cell.array
    np.testing.assert_allclose(sad(shifted, shape), reference, atol=1e-10)
    permuted = triclinic_mix[[2, 0, 1]]
    np.testing.assert_allclose(sad(permuted, shape), reference, atol=1e-10)


def test_shifting_atoms_by_grid_steps_rolls_the_sad(triclinic_mix):
    shape = (20, 20, 24)
    reference = sad(triclinic_mix, shape)
    moved = triclinic_mix.copy()
    moved.positions += (np.array([3, 0, 5]) / np.array(shape)) @ moved.cell.array
    np.testing.assert_allclose(sad(moved, shape), np.roll(reference, (3, 0, 5), axis=(0, 1, 2)), atol=1e-9)


def test_unknown_kind_and_element_are_refused(triclinic_mix):
    with pytest.raises(ElfkitError, match="kind"):
        sad(triclinic_mix, (8, 8, 8), "core")
    with pytest.raises(ElfkitError, match="Z=84"):
        atomic_density(84)


def test_sad_depends_on_the_grid_points_not_on_the_lattice_basis(fluid_h64):
    """A sheared basis a2' = a2 + a1 of a cubic cell (N1 = N2) indexes the same points: the SAD
    at each point must not change (the band limit and aliasing follow the points, not the basis)."""
    shape = (30, 30, 30)
    reference = sad(fluid_h64, shape)
    cell = fluid_h64.cell.array.copy()
    cell[1] += cell[0]
    sheared = Atoms(fluid_h64.numbers, positions=fluid_h64.positions, cell=cell, pbc=True)
    values = sad(sheared, shape)
    i, j = np.meshgrid(np.arange(30), np.arange(30), indexing="ij")
    same_points = reference[(i + j) % 30, j]
    assert np.abs(values - same_points).max() < 1e-6 * reference.max()
