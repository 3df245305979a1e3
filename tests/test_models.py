"""Contracts every ELF model must keep, checked with small untrained networks (random weights)
of every architecture (the `model_file` fixture runs each test once per architecture):
invariances (atom order, wrapping, grid translations, space group), supercells, skewed cells,
and the model file format; then what is particular to the U-Net (tiles, grids) and to the
point model (rotations, off-grid points)."""

import math

import numpy as np
import pytest
import torch
from ase import Atoms

from elfkit.models import build
from elfkit.models.checkpoint import CheckpointError, load_model, save_model
from elfkit.predict import network_logits, predict, predict_points
from elfkit.symmetry import commensurate_operators, grid_permutation, seitz_operators

TOLERANCE = 1e-5


def _random_network(dilations=(1, 2), blocks=1, **options):
    torch.manual_seed(3)
    net = build("periodic-unet", width=8, dilations=dilations, blocks=blocks, **options)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_(0.0, 0.3)
    return net


def _random_point_network(**options):
    torch.manual_seed(4)
    net = build("point", cutoff=2.5, radial=6, l_max=2, channels=3, hidden=16, layers=2, **({"environment": 2} | options))
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_(0.0, 0.3)
    return net


METAL_POINT_SPECIES = ["H", "Mg", "Al"]


def _random_species_point_network():
    """The point model as for metals: one-hot species weights and engine-valence channels."""
    return _random_point_network(environment=0, species=METAL_POINT_SPECIES, features="sad+engine-valence", prior_floor=0.45)


def _random_shared_species_point_network():
    """The metal point model with species sharing rank-2 radial functions (`species_rank`),
    two of them near-atom Gaussians (`near_radial`)."""
    return _random_point_network(environment=0, species=METAL_POINT_SPECIES, features="sad+engine-valence", prior_floor=0.45,
                                 species_rank=2, near_radial=2)


def _random_pseudo_atom_point_network():
    """The metal point model that also reads the labelling engine's pseudo-atom ELF."""
    return _random_point_network(environment=0, species=METAL_POINT_SPECIES, features="sad+engine-valence+pseudo-atoms",
                                 prior_floor=0.45, species_rank=2)


def _random_shell_field_point_network():
    """The metal point model that also reads the crystal field along each atom's shell."""
    return _random_point_network(environment=0, species=METAL_POINT_SPECIES, features="sad+engine-valence+shell-field",
                                 prior_floor=0.45, species_rank=2)


def _random_learned_point_network():
    """The point model with a learned atom environment (two rounds of message passing)."""
    return _random_point_network(environment=0, atom_features=4, atom_cutoff=1.8, near_cutoff=1.6, rounds=2)


LEARNED_SPECIES = ["H", "Li", "Be", "Na", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Mg", "Al"]
"""As many elements as a shipped metal model knows about, Mg and Al last: an index into them
that the trainer's moving average rounded down would name another element."""


def _random_learned_species_point_network():
    """The metal point model with a learned atom environment that knows each atom's element."""
    return _random_point_network(environment=0, species=LEARNED_SPECIES, features="sad+engine-valence", prior_floor=0.45,
                                 species_rank=2, atom_features=4, atom_cutoff=3.0, near_cutoff=2.0, rounds=2)


def _random_engine_valence_network():
    """The U-Net on the metals model's feature set (SAD plus the labelling engine's valence SAD)."""
    return _random_network(features="sad+engine-valence", ge_channel=11, prior_floor=0.45)


RANDOM_NETWORKS = {
    "periodic-unet": _random_network,
    "periodic-unet-engine-valence": _random_engine_valence_network,
    "point": _random_point_network,
    "point-species": _random_species_point_network,
    "point-species-rank": _random_shared_species_point_network,
    "point-pseudo-atoms": _random_pseudo_atom_point_network,
    "point-shell-field": _random_shell_field_point_network,
    "point-learned": _random_learned_point_network,
    "point-learned-species": _random_learned_species_point_network,
}
ARCHITECTURE = {"periodic-unet-engine-valence": "periodic-unet", "point-species": "point", "point-species-rank": "point",
                "point-pseudo-atoms": "point", "point-shell-field": "point", "point-learned": "point",
                "point-learned-species": "point"}


@pytest.fixture(scope="module", params=sorted(RANDOM_NETWORKS))
def model_file(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param) / "tiny.safetensors"
    architecture = ARCHITECTURE.get(request.param, request.param)
    metadata = {"name": "tiny", "architecture": architecture, "random_network": request.param}
    return save_model(path, RANDOM_NETWORKS[request.param](), metadata)


@pytest.fixture(scope="module")
def unet_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("unet") / "tiny.safetensors"
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


def _fluid_shape(model_file) -> tuple[int, int, int]:
    """A grid of the 64-atom fluid cell: the U-Net's training spacing, a coarse one for the
    point model (it reads points, not voxels, and costs per point)."""
    return (44, 44, 44) if load_model(model_file).metadata["architecture"] == "periodic-unet" else (20, 20, 20)


def test_prediction_does_not_depend_on_atom_order_or_wrapping(model_file, fluid_h64):
    shape = _fluid_shape(model_file)
    reference = predict(fluid_h64, shape, model_file).values
    order = np.random.default_rng(0).permutation(len(fluid_h64))
    shuffled = fluid_h64[order]
    moved = fluid_h64.copy()
    moved.positions += np.array([1, -2, 3]) @ moved.cell.array
    for other in (shuffled, moved):
        assert np.abs(predict(other, shape, model_file).values - reference).max() < TOLERANCE


def test_translation_by_a_grid_vector_shifts_the_prediction(model_file, fluid_h64):
    shape = _fluid_shape(model_file)
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


def test_a_metal_binary_prediction_has_its_symmetry_and_ignores_atom_order(model_file):
    """The same contract on a metal sublattice (L1_2 Mg3Al, Pm-3m: 48 operations on a cubic
    grid), as the metals model sees them."""
    from ase.build import bulk

    alloy = bulk("Al", "fcc", a=2.6, cubic=True)
    alloy.symbols[1:] = "Mg"
    shape = (24, 24, 24)
    values = predict(alloy, shape, model_file).values
    operators, _ = commensurate_operators(seitz_operators(alloy), shape)
    assert len(operators) == 48
    for operator in operators:
        assert np.abs(values.ravel()[grid_permutation(operator, shape)] - values.ravel()).max() < TOLERANCE
    shuffled = alloy[[3, 1, 0, 2]]
    assert np.abs(predict(shuffled, shape, model_file).values - values).max() < TOLERANCE


def test_supercell_prediction_equals_the_tiled_unit_cell(model_file, h_crystal):
    unit = predict(h_crystal, SHAPE, model_file).values
    double = predict(h_crystal.repeat((2, 1, 1)), (44, 22, 30), model_file).values
    assert np.abs(double - np.tile(unit, (2, 1, 1))).max() < TOLERANCE


def test_a_skewed_basis_runs_as_the_orthogonal_cell_of_the_same_points(model_file, h_crystal):
    """a2' = a2 + a1 indexes the same grid points in a 45-degree cell: the U-Net runs on the
    orthogonal basis instead (the point model sees only points), so the prediction at every
    point is the same."""
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
    """Level by level in periodic blocks (a halo of each level's reach, wrapping around)
    equals the whole cell, for blocks smaller than the cell and for one block holding it all;
    with activations stored in bfloat16 (convolved in it only where the CPU has it natively) it
    stays close."""
    from elfkit.features import physics_channels
    from elfkit.models import native_bf16
    from elfkit.models.unet import _block_dtypes

    net = _random_network(dilations=(1, 2, 4), blocks=2)
    features = physics_channels(fluid_h64, (22, 24, 26))
    whole = torch.sigmoid(torch.from_numpy(network_logits(net, features)))
    for block_points in (40**3, 52**3, 100**3):
        tiled = torch.sigmoid(torch.from_numpy(network_logits(net, features, whole_cell_points=0, block_points=block_points)))
        assert (whole - tiled).abs().max() < TOLERANCE
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.mul_(0.3)
    whole = torch.sigmoid(torch.from_numpy(network_logits(net, features)))
    bf16 = torch.sigmoid(net.block_logits(torch.from_numpy(features), 40**3, bf16=True))
    assert 0 < (whole - bf16).abs().max() < 0.02
    native = native_bf16(torch.device("cpu"))
    assert _block_dtypes(True) == (torch.bfloat16, torch.bfloat16 if native else torch.float32)


def test_blocks_wrap_around_a_grid_smaller_than_their_halo(fluid_h64):
    """A halo longer than the grid (16 points on axes of 5 to 9) wraps around more than once
    and still gives the whole cell's result (relative to the logits' size: on so coarse a grid
    the random network's logits reach 1e9)."""
    from elfkit.features import physics_channels

    net = _random_network(dilations=(1, 2, 4), blocks=2)
    features = physics_channels(fluid_h64, (6, 9, 5))
    whole = network_logits(net, features)
    for block_points in (34**3, 40**3):
        tiled = network_logits(net, features, whole_cell_points=0, block_points=block_points)
        assert np.abs(whole - tiled).max() < TOLERANCE * max(1.0, np.abs(whole).max())


def test_block_sides_tile_the_grid_within_the_budget():
    from elfkit.models.unet import block_sides

    for shape, halo, points in [((253, 253, 253), 16, 2**21), ((300, 40, 20), 4, 2**18), ((7, 7, 7), 2, 10**6)]:
        sides = block_sides(shape, halo, points)
        assert all(1 <= side <= n for side, n in zip(sides, shape))
        assert np.prod([side + 2 * halo for side in sides]) <= 1.3 * max(points, np.prod([1 + 2 * halo] * 3))
    assert block_sides((7, 7, 7), 2, 10**6) == [7, 7, 7]


def test_grids_outside_the_models_range_are_interpolated(unet_file, h_crystal):
    fine = predict(h_crystal, (33, 33, 45), unet_file)
    assert fine.metadata["model_grid"] == [22, 22, 30]
    assert fine.values.shape == (33, 33, 45) and 0 <= fine.values.min() and fine.values.max() <= 1
    at_model_grid = predict(h_crystal, (22, 22, 30), unet_file).values
    assert np.abs(fine.values[::3, ::3, ::3] - at_model_grid[::2, ::2, ::2]).max() < 1e-4


def test_a_model_file_round_trips_its_weights_and_metadata(model_file):
    loaded = load_model(model_file)
    assert loaded.metadata["name"] == "tiny" and loaded.metadata["channels"][1] == "ge_elf"
    for name, tensor in RANDOM_NETWORKS[loaded.metadata["random_network"]]().state_dict().items():
        assert torch.equal(loaded.net.state_dict()[name], tensor)
    channels = loaded.metadata["channels"]
    assert ("engine_valence_table" in loaded.metadata) == any(c.startswith("engine_valence") for c in channels)
    assert ("pseudo_atom_table" in loaded.metadata) == ("pseudo_atoms_elf" in channels)


def test_a_model_for_another_engine_valence_table_or_channel_count_is_refused(tmp_path):
    import json

    from safetensors.torch import load_file, save_file

    path = save_model(tmp_path / "ev.safetensors", _random_engine_valence_network(), {"name": "ev", "architecture": "periodic-unet"})
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        header = json.loads(handle.metadata()["elfkit"])
    header["engine_valence_table"] = "0" * 16
    stale = tmp_path / "stale.safetensors"
    save_file(load_file(str(path)), str(stale), metadata={"elfkit": json.dumps(header)})
    with pytest.raises(CheckpointError, match="stale.safetensors: made with another engine-valence"):
        load_model(stale)
    with pytest.raises(ValueError, match="in_channels 10"):
        build("periodic-unet", in_channels=10, features="sad+engine-valence")


def test_a_model_for_another_pseudo_atom_table_is_refused(tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = save_model(tmp_path / "pa.safetensors", _random_pseudo_atom_point_network(), {"name": "pa", "architecture": "point"})
    with safe_open(str(path), framework="pt") as handle:
        header = json.loads(handle.metadata()["elfkit"])
    assert load_model(path).metadata["pseudo_atom_table"] == header["pseudo_atom_table"]
    header["pseudo_atom_table"] = "0" * 16
    stale = tmp_path / "stale.safetensors"
    save_file(load_file(str(path)), str(stale), metadata={"elfkit": json.dumps(header)})
    with pytest.raises(CheckpointError, match="stale.safetensors: made with another pseudo-atom table"):
        load_model(stale)


def test_corrupt_or_foreign_model_files_are_refused(tmp_path, model_file):
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(model_file.read_bytes()[:500])
    foreign = tmp_path / "foreign.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(foreign))
    for path in (truncated, foreign, tmp_path / "missing.safetensors"):
        with pytest.raises(CheckpointError, match=path.name):
            load_model(path)


def test_an_untrained_network_predicts_the_squashed_physics_baseline(fluid_h64):
    """The head starts at zero, so the prediction is the prior: the gradient-expansion ELF
    squashed into [floor, 1 - floor] (it reaches 1 at the nuclei, where DFT does not)."""
    from elfkit.features import GE_ELF_CHANNEL, physics_channels

    net = build("periodic-unet", in_channels=10, width=8, dilations=(1, 2), prior_floor=0.05)
    features = physics_channels(fluid_h64, (20, 20, 20))
    elf = torch.sigmoid(torch.from_numpy(network_logits(net, features))).numpy()
    ge = features[GE_ELF_CHANNEL]
    assert ge.max() > 0.999
    assert np.abs(elf - (0.05 + 0.9 * ge)).max() < 1e-5
    with pytest.raises(ValueError, match="prior_floor"):
        build("periodic-unet", prior_floor=0.5)


@pytest.fixture(scope="module", params=["point", "point-learned", "point-learned-species"])
def point_model(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param) / "point.safetensors"
    return load_model(save_model(path, RANDOM_NETWORKS[request.param](), {"name": "point", "architecture": "point"}))


def test_the_point_model_is_invariant_under_rotations_and_images(point_model, fluid_h64):
    """Atoms and probe points rotated together give the same ELF; a probe point moved by a
    lattice vector, or read in a supercell, too."""
    from scipy.spatial.transform import Rotation

    points = np.random.default_rng(1).random((300, 3)) @ fluid_h64.cell.array
    values = predict_points(fluid_h64, points, point_model)
    rotation = Rotation.random(random_state=2).as_matrix()
    rotated = fluid_h64.copy()
    rotated.set_cell(fluid_h64.cell.array @ rotation.T, scale_atoms=True)
    assert np.abs(predict_points(rotated, points @ rotation.T, point_model) - values).max() < TOLERANCE
    assert np.abs(predict_points(fluid_h64, points + fluid_h64.cell.array[2], point_model) - values).max() < TOLERANCE
    assert np.abs(predict_points(fluid_h64.repeat((1, 2, 1)), points, point_model) - values).max() < TOLERANCE


def test_the_point_model_gives_the_same_values_on_any_grid_and_off_grid(point_model, h_crystal):
    """Grid spacing 0.08 against 0.12 Å at their common points, and off-grid points read
    directly against a grid that contains them; smooth through a nucleus."""
    coarse = predict(h_crystal, (20, 20, 28), point_model).values
    fine = predict(h_crystal, (30, 30, 42), point_model).values
    assert np.abs(fine[::3, ::3, ::3] - coarse[::2, ::2, ::2]).max() < TOLERANCE
    frac = np.array([[0.1, 0.25, 0.5], [0.55, 0.3, 0.75]])
    direct = predict_points(h_crystal, frac @ h_crystal.cell.array, point_model)
    assert np.abs(direct - coarse[[2, 11], [5, 6], [14, 21]]).max() < TOLERANCE
    nucleus = h_crystal.positions[0]
    assert np.ptp(predict_points(h_crystal, [nucleus, nucleus + 1e-4], point_model)) < 1e-3


def test_atom_environment_counts_a_molecular_partner_and_nothing_for_a_lone_atom():
    """In a 10 Å box: a molecule at its bond length 0.75 Å gives each of its atoms one partner at
    the first centre and none at the second; a lone atom gets only its constant weight."""
    from ase import Atoms

    from elfkit.models.point import atom_environment

    atoms = Atoms("H3", positions=[[1, 1, 1], [1.75, 1, 1], [6, 6, 6]], cell=[10, 10, 10], pbc=True)
    weights = atom_environment(atoms, 2)
    assert np.allclose(weights[:, 0], 1)
    assert np.allclose(weights[:2, 1], 1) and np.allclose(weights[:2, 2], np.exp(-((0.35 / 0.15) ** 2)))
    assert np.allclose(weights[2, 1:], 0)


def test_a_learned_environment_with_species_tells_the_elements_of_a_geometry_apart():
    """The same L1_2 geometry as Mg3Al and as Al4: with species every atom's learned features
    differ (the Al too, through its neighbours in the second round); without, none do."""
    from ase.build import bulk

    from elfkit.models.point import atom_bonds

    alloy = bulk("Al", "fcc", a=3.0, cubic=True)
    alloy.symbols[1:] = "Mg"
    bonds = atom_bonds(alloy, 3.0)
    as_alloy, as_aluminium = torch.from_numpy(alloy.numbers), torch.full((4,), 13)
    with torch.no_grad():
        knows = _random_learned_species_point_network().learned
        assert (knows.atom_features(*bonds, as_alloy) - knows.atom_features(*bonds, as_aluminium)).abs().amax(dim=1).min() > 1e-3
        blind = _random_learned_point_network().learned
        assert torch.equal(blind.atom_features(*bonds, as_alloy), blind.atom_features(*bonds, as_aluminium))


def test_the_trainers_moving_average_of_a_network_with_itself_is_that_network(model_file):
    """Every tensor of a model (buffers too: the trainer averages them) survives the moving
    average of `elfkit.train.loop`, which validation uses: averaging a network with itself 40
    times changes no prediction (L1_2 Mg3Al; an integer buffer of indices up to 13 would be
    rounded down within about 30)."""
    from dataclasses import replace

    from ase.build import bulk

    from elfkit.train.loop import Trainer

    alloy = bulk("Al", "fcc", a=3.0, cubic=True)
    alloy.symbols[1:] = "Mg"
    model = load_model(model_file)
    average = Trainer._averaged(model.net, 0.999)
    for _ in range(40):
        average.update_parameters(model.net)
    expected = predict(alloy, (16, 16, 16), model).values
    assert np.abs(predict(alloy, (16, 16, 16), replace(model, net=average.module)).values - expected).max() < TOLERANCE


def test_a_species_point_model_refuses_an_element_it_does_not_know(tmp_path):
    from ase.build import bulk

    from elfkit.errors import ElfkitError

    path = save_model(tmp_path / "metal.safetensors", _random_species_point_network(), {"name": "metal", "architecture": "point"})
    with pytest.raises(ElfkitError, match="Li not among them"):
        predict(bulk("Li", "bcc", a=3.4), (12, 12, 12), str(path))
    with pytest.raises(ValueError, match="not both"):
        build("point", environment=2, species=["H"])


def test_a_grid_models_point_values_interpolate_its_grid(unet_file, h_crystal):
    values = predict(h_crystal, None, unet_file)
    shape = values.values.shape
    frac = np.array([[3, 4, 5], [10, 0, 7]]) / np.array(shape)
    at_points = predict_points(h_crystal, frac @ h_crystal.cell.array, unet_file)
    assert np.abs(at_points - values.values[[3, 10], [4, 0], [5, 7]]).max() < 1e-5


def test_an_ensemble_is_the_mean_of_its_members(unet_file, point_model, h_crystal):
    from elfkit.predict import get_model

    model = get_model(f"{unet_file}+{point_model.source}")
    assert model.name == "tiny+point" and len(model.sha256) == 16 and model.metadata["architecture"] == "ensemble"
    members = [predict(h_crystal, SHAPE, m).values for m in (unet_file, point_model)]
    assert np.abs(members[0] - members[1]).max() > 0.01
    assert np.abs(predict(h_crystal, SHAPE, model).values - np.mean(members, axis=0)).max() < 1e-6
    points = np.array([[0.3, 0.2, 1.0], [1.1, 0.4, 2.0]])
    both = [predict_points(h_crystal, points, m) for m in (unet_file, point_model)]
    assert np.abs(predict_points(h_crystal, points, model) - np.mean(both, axis=0)).max() < 1e-9


def test_the_package_exposes_predict_and_predict_points(unet_file, h_crystal):
    import elfkit

    field = elfkit.predict(h_crystal, SHAPE, model=unet_file)
    assert field.values.shape == SHAPE
    assert elfkit.predict_points(h_crystal, [[0.1, 0.2, 0.3]], model=unet_file).shape == (1,)


def test_lattice_cosets_are_one_per_coset():
    """A 3x1x1 superlattice of a hexagonal lattice has 3 cosets, whatever the rounding of thirds."""
    from elfkit.predict import lattice_cosets

    a = np.array([[2.0, 0, 0], [-1.0, np.sqrt(3), 0], [0, 0, 3.2]])
    for superlattice in (np.diag([3, 1, 1]) @ a, np.array([[1, 1, 0], [-1, 2, 0], [0, 0, 1]]) @ a):
        cosets = lattice_cosets(a, superlattice)
        assert len(cosets) == 3
        frac = np.mod(cosets @ np.linalg.inv(superlattice) + 1e-9, 1.0)
        assert len({tuple(np.round(f, 6)) for f in frac}) == 3


def test_the_default_model_follows_the_elements(fluid_h64, lah10):
    """Pure hydrogen and hydrides get `hydrogen`; metals only get the shipped `metals`; the
    nonmetals are pymatgen's."""
    from pymatgen.core import Element

    from elfkit.models.checkpoint import shipped_models
    from elfkit.predict import METALS_MODEL, NONMETALS, choose_model

    assert NONMETALS == {Element.from_Z(z).symbol for z in range(1, 87) if not Element.from_Z(z).is_metal}
    assert choose_model(fluid_h64) == choose_model(lah10) == "hydrogen"
    metals = lah10[[s != "H" for s in lah10.get_chemical_symbols()]]
    assert choose_model(metals) == METALS_MODEL and METALS_MODEL in shipped_models()


def test_species_rank_shares_radial_functions_between_species():
    """With species_rank R, every species' radial mixing is a combination of R shared ones: the
    species x (l, channel, radial) matrix has rank R, below the species count."""
    net = _random_shared_species_point_network()
    mixing = net.radial_mixing().view(net.l_max + 1, -1, len(METAL_POINT_SPECIES), net.radial + net.near_radial)
    per_species = mixing.permute(2, 0, 1, 3).reshape(len(METAL_POINT_SPECIES), -1)
    assert torch.linalg.matrix_rank(per_species) == 2 < len(METAL_POINT_SPECIES)
    assert "mixing" not in dict(net.named_parameters())
    with pytest.raises(ValueError, match="needs species"):
        _random_point_network(species_rank=2)


def test_species_residual_starts_at_the_shared_functions():
    """species_residual adds free per-species functions that start at zero, so a fresh network's
    mixing is the shared one; changing them changes only their own species' block."""
    fresh = build("point", cutoff=2.5, radial=6, l_max=2, channels=3, species=METAL_POINT_SPECIES, species_rank=2, species_residual=True)
    assert torch.count_nonzero(fresh.mixing) == 0 and torch.count_nonzero(fresh.radial_mixing()) > 0
    net = _random_point_network(environment=0, species=METAL_POINT_SPECIES, species_rank=2, species_residual=True)
    with torch.no_grad():
        net.mixing.zero_()
        shared = net.radial_mixing().clone()
        net.mixing[:, :, : net.radial] += 1.0
    changed = (net.radial_mixing() - shared).abs().sum(dim=(0, 1)).view(len(METAL_POINT_SPECIES), net.radial).sum(dim=1)
    assert changed[0] > 0 and torch.all(changed[1:] == 0)
    with pytest.raises(ValueError, match="needs species_rank"):
        _random_point_network(environment=0, species=METAL_POINT_SPECIES, species_residual=True)


@pytest.mark.parametrize("degree", range(5))
def test_real_spherical_harmonics_obey_the_addition_theorem(degree):
    """sum_m Y_lm(u) Y_lm(v) = (2l + 1) P_l(u·v) for every l <= 4: the harmonics of each l span
    the right space with the stated normalisation, so the power-spectrum invariants are
    rotation invariants."""
    from scipy.special import eval_legendre

    from elfkit.models.point import real_spherical_harmonics

    rng = np.random.default_rng(degree)
    u, v = (torch.from_numpy(x / np.linalg.norm(x, axis=1, keepdims=True)) for x in rng.normal(size=(2, 50, 3)))
    columns = slice(degree * degree, (degree + 1) ** 2)
    products = (real_spherical_harmonics(u, 4)[:, columns] * real_spherical_harmonics(v, 4)[:, columns]).sum(dim=1)
    expected = (2 * degree + 1) * eval_legendre(degree, (u * v).sum(dim=1).numpy())
    assert np.abs(products.numpy() - expected).max() < 1e-10


def test_near_atom_radial_functions_are_gaussians_of_doubling_width():
    """The `near_radial` functions follow the Bessel ones: exp(-(d / w_k)²) with w_k = 0.08 Å 2^k
    (times the cutoff function), 1 at the atom and 1/e at d = w_k."""
    from elfkit.models.point import _pair_terms

    widths = torch.tensor([0.08, 0.16, 0.32], dtype=torch.float64)
    distance = torch.cat([torch.zeros(1, dtype=torch.float64), widths])
    radial, _ = _pair_terms(distance, torch.ones(4, 3, dtype=torch.float64), 5.0, 6, 2, near_radial=3)
    cutoff = 0.5 * (torch.cos(math.pi * distance / 5.0) + 1)
    assert radial.shape == (4, 9)
    assert torch.allclose(radial[0, 6:], torch.ones(3, dtype=torch.float64))
    assert torch.allclose(torch.diagonal(radial[1:, 6:]), math.exp(-1) * cutoff[1:])
