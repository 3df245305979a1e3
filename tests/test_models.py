"""Contracts every ELF model must keep, checked with a small untrained network (random weights):
invariances (atom order, wrapping, grid translations, space group), supercells, tiles, grids,
and the model file format."""

import numpy as np
import pytest
import torch
from ase import Atoms

from elfkit.models import build
from elfkit.models.checkpoint import CheckpointError, load_model, save_model
from elfkit.predict import network_logits, predict
from elfkit.symmetry import commensurate_operators, grid_permutation, seitz_operators

TOLERANCE = 1e-5


def _random_network():
    torch.manual_seed(3)
    net = build("periodic-unet", in_channels=10, width=8, dilations=(1, 2), blocks=1)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_(0.0, 0.3)
    return net


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_model(path, _random_network(), {"name": "tiny", "architecture": "periodic-unet"})


@pytest.fixture
def h_crystal():
    """A body-centred tetragonal hydrogen crystal of H2 units (I4/mmm, 32 operations in this cell)."""
    cell = np.diag([2.4, 2.4, 3.3])
    frac = [[0, 0, 0.12], [0, 0, 0.88], [0.5, 0.5, 0.62], [0.5, 0.5, 0.38]]
    return Atoms("H4", scaled_positions=frac, cell=cell, pbc=True)


SHAPE = (22, 22, 30)


def test_periodic_mode_equals_valid_mode_on_a_wrapped_block():
    net = _random_network()
    x = torch.rand(1, 10, 12, 10, 9)
    radius = net.receptive_radius
    index = [torch.arange(-radius, n + radius) % n for n in x.shape[2:]]
    block = x[:, :, index[0]][:, :, :, index[1]][:, :, :, :, index[2]]
    with torch.no_grad():
        assert torch.allclose(net(x), net(block, periodic=False), atol=TOLERANCE)


def test_prediction_is_an_elf_and_loads_from_file(model_file, h_crystal):
    field = predict(h_crystal, SHAPE, model_file)
    assert field.quantity == "elf" and field.values.shape == SHAPE
    assert 0.0 <= field.values.min() and field.values.max() <= 1.0
    assert field.metadata["model"] == "tiny"


def test_prediction_does_not_depend_on_atom_order_or_wrapping(model_file, fluid_h64):
    shape = (44, 44, 44)
    reference = predict(fluid_h64, shape, model_file).values
    order = np.random.default_rng(0).permutation(len(fluid_h64))
    shuffled = fluid_h64[order]
    moved = fluid_h64.copy()
    moved.positions += np.array([1, -2, 3]) @ moved.cell.array
    for other in (shuffled, moved):
        assert np.abs(predict(other, shape, model_file).values - reference).max() < TOLERANCE


def test_translation_by_a_grid_vector_shifts_the_prediction(model_file, fluid_h64):
    shape = (44, 44, 44)
    reference = predict(fluid_h64, shape, model_file).values
    moved = fluid_h64.copy()
    moved.positions += 2 * moved.cell.array[1] / shape[1]
    assert np.abs(predict(moved, shape, model_file).values - np.roll(reference, 2, axis=1)).max() < TOLERANCE


def test_prediction_has_the_crystal_symmetry(model_file, h_crystal):
    values = predict(h_crystal, SHAPE, model_file).values
    operators, _ = commensurate_operators(seitz_operators(h_crystal), SHAPE)
    assert len(operators) == 32
    flat = values.ravel()
    for operator in operators:
        assert np.abs(flat[grid_permutation(operator, SHAPE)] - flat).max() < TOLERANCE
    for operator in operators:
        image = h_crystal.copy()
        image.set_scaled_positions(operator.apply(h_crystal.get_scaled_positions()))
        assert np.abs(predict(image, SHAPE, model_file).values - values).max() < TOLERANCE


def test_supercell_prediction_equals_the_tiled_unit_cell(model_file, h_crystal):
    unit = predict(h_crystal, SHAPE, model_file).values
    double = predict(h_crystal.repeat((2, 1, 1)), (44, 22, 30), model_file).values
    assert np.abs(double - np.tile(unit, (2, 1, 1))).max() < TOLERANCE


def test_a_skewed_basis_runs_as_the_orthogonal_cell_of_the_same_points(model_file, h_crystal):
    """a2' = a2 + a1 indexes the same grid points in a 45-degree cell: the network runs on the
    orthogonal basis instead, so the prediction at every point is the same."""
    from elfkit.predict import _skewness, prediction_cell

    cell = h_crystal.cell.array.copy()
    cell[1] += cell[0]
    sheared = Atoms(h_crystal.numbers, positions=h_crystal.positions, cell=cell, pbc=True)
    assert _skewness(prediction_cell(sheared)[0].cell.array) < 1e-6
    reference = predict(h_crystal, SHAPE, model_file).values
    values = predict(sheared, SHAPE, model_file).values
    i, j = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    assert np.abs(values - reference[(i + j) % SHAPE[0], j]).max() < 1e-4


def test_a_skewed_cell_and_its_supercell_run_as_the_same_orthogonal_cell(model_file):
    """A hexagonal cell (120 degrees) and its 2x2x1 supercell reduce to the same primitive cell
    and orthogonal supercell of it, so they predict the same ELF at every common point."""
    a, c = 2.2, 3.0
    cell = [[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, c]]
    unit = Atoms("H2", scaled_positions=[[1 / 3, 2 / 3, 0.38], [1 / 3, 2 / 3, 0.62]], cell=cell, pbc=True)
    shape = (20, 20, 28)
    values = predict(unit, shape, model_file).values
    double = predict(unit.repeat((2, 2, 1)), (40, 40, 28), model_file).values
    assert np.abs(double - np.tile(values, (2, 2, 1))).max() < 1e-4


def test_tiles_give_the_whole_cell_result(fluid_h64):
    from elfkit.features import physics_channels

    net = _random_network()
    features = physics_channels(fluid_h64, (24, 24, 24))
    whole = torch.sigmoid(torch.from_numpy(network_logits(net, features)))
    tiled = torch.sigmoid(torch.from_numpy(network_logits(net, features, tile=7, whole_cell_points=0)))
    assert (whole - tiled).abs().max() < TOLERANCE


def test_grids_outside_the_models_range_are_interpolated(model_file, h_crystal):
    fine = predict(h_crystal, (33, 33, 45), model_file)
    assert fine.metadata["model_grid"] == [22, 22, 30]
    assert fine.values.shape == (33, 33, 45) and 0 <= fine.values.min() and fine.values.max() <= 1
    at_model_grid = predict(h_crystal, (22, 22, 30), model_file).values
    assert np.abs(fine.values[::3, ::3, ::3] - at_model_grid[::2, ::2, ::2]).max() < 1e-4


def test_a_model_file_round_trips_its_weights_and_metadata(model_file):
    loaded = load_model(model_file)
    assert loaded.metadata["name"] == "tiny" and loaded.metadata["channels"][1] == "ge_elf"
    for name, tensor in _random_network().state_dict().items():
        assert torch.equal(loaded.net.state_dict()[name], tensor)


def test_corrupt_or_foreign_model_files_are_refused(tmp_path, model_file):
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(model_file.read_bytes()[:500])
    foreign = tmp_path / "foreign.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(foreign))
    for path in (truncated, foreign, tmp_path / "missing.safetensors"):
        with pytest.raises(CheckpointError, match=path.name):
            load_model(path)
