"""The model inputs: exact derivatives of the SAD, the gradient-expansion ELF, the channels' contract."""

import numpy as np
import pytest
from ase import Atoms

from elfkit.features import CHANNELS, GE_ELF_CHANNEL, density_derivatives, gradient_expansion_elf, grid_metric, physics_channels
from elfkit.sad import sad
from elfkit.units import BOHR_IN_ANGSTROM


def test_spectral_derivatives_match_finite_differences_of_the_sad(fluid_h64):
    shape = (64, 64, 64)
    rho, gradient, laplacian = density_derivatives(fluid_h64, shape)
    assert np.allclose(rho * BOHR_IN_ANGSTROM**-3, sad(fluid_h64, shape), atol=1e-6)
    step = fluid_h64.cell.lengths()[0] / shape[0] / BOHR_IN_ANGSTROM
    shifted = {k: np.roll(rho, -k, axis=0) for k in (-3, -2, -1, 1, 2, 3)}
    sixth_order = (45 * (shifted[1] - shifted[-1]) - 9 * (shifted[2] - shifted[-2]) + shifted[3] - shifted[-3]) / (60 * step)
    assert np.abs(sixth_order - gradient[0]).max() < 0.02 * np.abs(gradient[0]).max()
    assert abs(laplacian.mean()) < 1e-6 * np.abs(laplacian).max()
    assert np.abs(gradient.mean(axis=(1, 2, 3))).max() < 1e-6 * np.abs(gradient).max()


def test_gradient_expansion_elf_of_a_uniform_gas_is_one_half():
    rho = np.full((4, 4, 4), 0.05)
    elf = gradient_expansion_elf(rho, np.zeros((3, 4, 4, 4)), np.zeros((4, 4, 4)))
    assert np.allclose(elf, 0.5)


def test_channels_are_finite_bounded_and_named(triclinic_mix):
    channels = physics_channels(triclinic_mix, (36, 36, 40))
    assert channels.shape == (len(CHANNELS), 36, 36, 40) and channels.dtype == np.float32
    assert np.isfinite(channels).all()
    assert 0.0 <= channels[GE_ELF_CHANNEL].min() and channels[GE_ELF_CHANNEL].max() <= 1.0
    for name in ("reduced_gradient", "reduced_laplacian"):
        assert np.abs(channels[CHANNELS.index(name)]).max() <= 1.0


def test_grid_metric_is_zero_for_the_reference_cubic_grid_and_sees_skew():
    assert np.allclose(grid_metric(np.eye(3) * 4.4, (40, 40, 40)), 0.0)
    hexagonal = np.array([[2.2, 0, 0], [-1.1, 1.1 * np.sqrt(3), 0], [0, 0, 4.4]])
    metric = grid_metric(hexagonal, (20, 20, 40))
    assert metric[3] == pytest.approx(-0.5)


def test_channels_depend_on_the_points_not_the_lattice_basis(fluid_h64):
    """The sheared basis a3' = a3 - a1 (N1 = N3) indexes the same points: every physical channel
    keeps its value at every point, so augmenting with shears is exact."""
    from elfkit.train.augment import apply_shear

    shape = (30, 30, 30)
    channels = physics_channels(fluid_h64, shape)
    moved, cell = apply_shear(channels, fluid_h64.cell.array, 0, 2, -1)
    sheared = Atoms(fluid_h64.numbers, positions=fluid_h64.positions, cell=cell, pbc=True)
    direct = physics_channels(sheared, shape)
    physical = [CHANNELS.index(n) for n in ("log_density", "ge_elf", "reduced_gradient", "reduced_laplacian")]
    assert np.abs(direct[physical] - moved[physical]).max() < 2e-3
    assert not np.allclose(direct[CHANNELS.index("metric_02")], moved[CHANNELS.index("metric_02")])


def test_engine_valence_channels_follow_the_labelling_engine(hcp_mg):
    """Channels 0-9 are the plain feature set's; 10-13 are the SAD of the engine's valence:
    different for Mg (QE 3s only, GPAW 2s2p3s), and by default that of QE, which has Mg."""
    from elfkit.features import ENGINE_VALENCE_CHANNELS, feature_channels, model_inputs, prediction_engine

    shape = (24, 24, 40)
    names = feature_channels("sad+engine-valence")
    assert names == CHANNELS + ENGINE_VALENCE_CHANNELS and len(names) == 14
    qe = model_inputs(hcp_mg, shape, "sad+engine-valence", "qe")
    gpaw = model_inputs(hcp_mg, shape, "sad+engine-valence", "gpaw")
    assert np.array_equal(qe[:10], physics_channels(hcp_mg, shape)) and np.array_equal(qe[:10], gpaw[:10])
    assert np.abs(qe[10] - gpaw[10]).max() > 0.1
    assert prediction_engine(hcp_mg) == "qe"
    assert np.array_equal(model_inputs(hcp_mg, shape, "sad+engine-valence"), qe)
    assert np.array_equal(model_inputs(hcp_mg, shape), physics_channels(hcp_mg, shape))


def test_the_prediction_engine_is_gpaw_where_qe_lacks_an_element():
    from ase.build import bulk

    from elfkit.features import prediction_engine

    assert prediction_engine(bulk("Nb", "bcc", a=3.3)) == "gpaw"
    assert prediction_engine(bulk("Li", "bcc", a=3.5)) == "qe"


@pytest.mark.parametrize(("symbol", "engine"), [("H", "qe"), ("H", "gpaw"), ("Li", "qe")])
def test_the_pseudo_atom_elf_of_a_one_orbital_atom_is_one(symbol, engine):
    """One occupied orbital has no Pauli kinetic energy (tau equals tau_W), so its ELF is 1."""
    from elfkit.features import pseudo_atom_channels

    atom = Atoms(symbol, cell=np.eye(3) * 14.0, pbc=True, positions=[[7.0, 7.0, 7.0]])
    points = np.array([[7.0, 7.0, 7.05], [7.0, 7.3, 7.0], [7.6, 7.0, 7.4], [8.0, 7.5, 7.0]])
    assert np.abs(pseudo_atom_channels(atom, points, engine)[0] - 1.0).max() < 2e-3


def test_qe_pseudo_atoms_hold_the_pseudopotential_valence():
    """Norm-conserving pseudo-wavefunctions: each neutral QE pseudo-atom integrates to z_valence."""
    from elfkit.sad import engine_valence_electrons, pseudo_atom

    for z in (1, 3, 12, 20, 39, 57):
        r, rho, _ = pseudo_atom(z, "qe")
        assert np.trapezoid(4 * np.pi * r**2 * rho, r) == pytest.approx(engine_valence_electrons(z, "qe"), rel=2e-3)


def test_pseudo_atom_gradient_matches_finite_differences_and_grids_match_points(hcp_mg):
    from elfkit.features import PSEUDO_ATOM_CHANNELS, model_inputs, pseudo_atoms_at_points
    from elfkit.grid import Grid

    point = np.array([[0.4, 0.7, 1.1]])
    step = 1e-4
    rho, gradient, _ = pseudo_atoms_at_points(hcp_mg, point, "gpaw")
    for axis in range(3):
        shift = np.eye(3)[axis] * step
        ahead, behind = (pseudo_atoms_at_points(hcp_mg, point + sign * shift, "gpaw")[0] for sign in (1, -1))
        assert (ahead - behind)[0] / (2 * step / BOHR_IN_ANGSTROM) == pytest.approx(gradient[axis, 0], rel=1e-3, abs=1e-6)
    shape = (12, 12, 20)
    grid = model_inputs(hcp_mg, shape, "sad+engine-valence+pseudo-atoms", "gpaw")[-len(PSEUDO_ATOM_CHANNELS):]
    from elfkit.features import pseudo_atom_channels

    points = Grid(hcp_mg.cell.array, shape).cart_coords().reshape(-1, 3)
    assert np.allclose(grid.reshape(2, -1), pseudo_atom_channels(hcp_mg, points, "gpaw"), atol=1e-6)
    moved = hcp_mg.copy()
    moved.positions += hcp_mg.cell.array[0] / shape[0]
    rolled = np.roll(grid, 1, axis=1)
    assert np.abs(model_inputs(moved, shape, "sad+engine-valence+pseudo-atoms", "gpaw")[-2:] - rolled).max() < 1e-5


@pytest.mark.parametrize(("symbol", "structure", "a"), [("Po", "sc", 3.0), ("Nb", "bcc", 3.3), ("La", "fcc", 5.3)])
def test_a_cubic_crystal_field_starts_at_l4(symbol, structure, a):
    """Around an atom of a cubic lattice the harmonics l = 1, 2, 3 of its neighbour shells vanish
    in every direction; l = 4 is the lowest that modulates its shell, and l = 0 does not vary."""
    from ase.build import bulk

    from elfkit.features import SHELL_FIELD_CENTRES, SHELL_FIELD_L_MAX, shell_field_channels

    crystal = bulk(symbol, structure, a=a, cubic=True)
    directions = np.random.default_rng(0).normal(size=(6, 3))
    points = crystal.positions[0] + 0.6 * directions / np.linalg.norm(directions, axis=1)[:, None]
    field = shell_field_channels(crystal, points).reshape(SHELL_FIELD_L_MAX + 1, len(SHELL_FIELD_CENTRES), -1)
    assert np.abs(field[1:4]).max() < 1e-6
    assert np.ptp(field[4], axis=1).max() > 0.05
    assert np.ptp(field[0], axis=1).max() < 1e-6 < field[0].max()


def test_shell_field_is_invariant_local_and_the_same_on_grids(hcp_mg):
    """Rotating and permuting the structure changes nothing; a point far from every atom reads
    zero; the grid channels of `model_inputs` are the point channels at the grid points."""
    from scipy.spatial.transform import Rotation

    from elfkit.features import SHELL_FIELD_CHANNELS, model_inputs, shell_field_channels
    from elfkit.grid import Grid

    points = np.array([[0.4, 0.7, 1.1], [1.0, 0.2, 2.0], [0.1, 0.1, 0.1]])
    field = shell_field_channels(hcp_mg, points)
    turned = hcp_mg.copy()
    rotation = Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix()
    turned.set_cell(hcp_mg.cell.array @ rotation.T, scale_atoms=True)
    turned = turned[::-1]
    assert np.abs(shell_field_channels(turned, points @ rotation.T) - field).max() < 1e-5
    assert np.abs(field).max() > 0.1
    for edge in (6.0, 20.0):
        lone = Atoms("Mg", cell=np.eye(3) * edge, pbc=True, positions=[[0.0, 0.0, 0.0]])
        assert not shell_field_channels(lone, np.array([[3.0, 3.0, 3.0], [0.0, 0.0, 1.6]])).any()
    assert not shell_field_channels(lone, np.array([[0.0, 0.3, 0.5]])).any()
    beside_a_pair = Atoms("Mg3", cell=np.eye(3) * 30.0, pbc=True, positions=[[0.0, 0.0, 0.0], [2.8, 0.0, 0.0], [15.0, 15.0, 15.0]])
    field = shell_field_channels(beside_a_pair, np.array([[15.0, 15.3, 15.5], [0.0, 0.3, 0.5]]))
    assert not field[:, 0].any() and field[:, 1].any()
    shape = (12, 12, 20)
    grid = model_inputs(hcp_mg, shape, "sad+engine-valence+shell-field", "gpaw")[-len(SHELL_FIELD_CHANNELS):]
    grid_points = Grid(hcp_mg.cell.array, shape).cart_coords().reshape(-1, 3)
    assert np.allclose(grid.reshape(len(SHELL_FIELD_CHANNELS), -1), shell_field_channels(hcp_mg, grid_points), atol=1e-6)
