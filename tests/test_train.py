"""Training: config validation, exact augmentations, deterministic resume after a kill, and the
train -> predict -> evaluate path of the command line, on a tiny dataset made here."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from ase import Atoms
from typer.testing import CliRunner

from elfkit.cli import app
from elfkit.data.store import DatasetStore, Sample
from elfkit.features import GE_ELF_CHANNEL, physics_channels
from elfkit.train import load_config
from elfkit.train.augment import apply_operation, lattice_operations
from elfkit.train.config import ConfigError, TrainConfig
from elfkit.train.loop import Trainer, plot_log

SHAPE = (16, 16, 16)
REPO = Path(__file__).resolve().parents[1]


def _tiny_sample(rs: float, seed: int) -> Sample:
    """Two H2 molecules in a cubic cell; the 'DFT' label is a fixed smooth function of the
    gradient-expansion ELF, so a network can learn it."""
    rng = np.random.default_rng(seed)
    length = 1.7 + 0.2 * rs + 0.05 * rng.random()
    centres = [[0.25, 0.25, 0.25], [0.75, 0.7, 0.72]]
    frac = [np.add(c, s * 0.3 * np.array([1, 0.1 * seed, 0])) for c in centres for s in (-0.5, 0.5)]
    atoms = Atoms("H4", scaled_positions=np.mod(frac, 1.0), cell=[length] * 3, pbc=True)
    elf = physics_channels(atoms, SHAPE)[GE_ELF_CHANNEL] ** 1.5
    return Sample(atoms, elf.astype(np.float32), -1.0, 10.0, f"trajectory-{rs}-{seed}", metadata={"rs_bohr": rs})


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    store = DatasetStore(root / "tiny")
    for rs in (1.3, 1.6):
        for seed in range(4):
            store.write_item(f"{rs}-{seed}", [_tiny_sample(rs, seed)])
    store.compact()
    store.write_manifest({"name": "tiny", "kind": "hydrogen-md"}, stratify="rs_bohr")
    return root


@pytest.fixture
def config_file(tmp_path):
    config = {
        "name": "tiny", "datasets": ["tiny"], "model": {"in_channels": 10, "width": 4, "dilations": [1, 2]},
        "steps": 6, "warmup_steps": 2, "validate_every": 3, "validation_samples": 2, "checkpoint_minutes": 1e-6,
        "threads": 1, "bf16": False, "ema_decay": 0.5, "augment": {"shear_probability": 0.5}, "losses": {"hist_points": 500},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def point_config_file(tmp_path):
    config = {
        "name": "tinypoint", "datasets": ["tiny"], "architecture": "point",
        "model": {"cutoff": 2.0, "radial": 4, "l_max": 1, "channels": 2, "hidden": 8, "layers": 1},
        "steps": 6, "warmup_steps": 2, "validate_every": 3, "validation_samples": 2, "checkpoint_minutes": 1e-6,
        "threads": 1, "ema_decay": 0.5, "losses": {"grad": False, "hist_points": 500},
        "points": {"pool_points": 300, "batch_points": 64, "batch_samples": 3, "validation_points": 200},
    }
    path = tmp_path / "tinypoint.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_configs_are_validated_with_the_file_named(tmp_path, config_file):
    assert load_config(config_file).steps == 6
    assert load_config("configs/hydrogen.yaml").name == "hydrogen"
    bad = tmp_path / "bad.yaml"
    for text, problem in (("name: x\nsteps: 0\n", "steps"), ("name: x\nsteps: 5\nlearning_rat: 1\n", "learning_rat"),
                          ("[1, 2]", "top level"), ("name: [\n", "YAML"),
                          ("name: x\nsteps: 5\narchitecture: point\npoints: {nuclei: true}\n", "points.nuclei"),
                          ("name: x\nsteps: 5\narchitecture: point\npoints: {critical: 0.2}\n", "points.critical"),
                          ("name: x\nsteps: 5\npoints: {critical: 1.5}\n", "critical"),
                          ("name: x\nsteps: 5\narchitecture: point\nlosses: {grad: false, pers: true}\n", "losses.pers"),
                          ("name: x\nsteps: 5\narchitecture: point\nlosses: {grad: false, slope: true}\n", "losses.slope"),
                          ("name: x\nsteps: 5\ndataset_weights: {metals: 2}\n", "metals, not in datasets"),
                          ("name: x\nsteps: 5\ndataset_weights: {hydrogen-fluid: 0}\n", "positive")):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=f"bad.yaml.*{problem}"):
            load_config(bad)


@pytest.mark.parametrize("path", sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").rglob("*.yaml")))
def test_every_config_in_the_repository_is_valid_and_names_datasets_that_exist(path):
    import elfkit.data
    from elfkit.models.checkpoint import resolve

    config = load_config(REPO / path)
    assert Path(path).stem == config.name
    for name in config.datasets:
        assert len(elfkit.data.open(name, split="train")) > 0
    if config.init_from:
        assert resolve(config.init_from).is_file()


def test_a_cubic_grid_has_48_exact_point_group_augmentations():
    sample = _tiny_sample(1.3, 0)
    operations = lattice_operations(sample.atoms.cell.array, SHAPE)
    assert len(operations) == 48
    channels = physics_channels(sample.atoms, SHAPE)
    for perm, signs in operations[::7]:
        moved, cell = apply_operation(channels[:4], sample.atoms.cell.array, perm, signs)
        frac = np.mod(sample.atoms.get_scaled_positions()[:, list(perm)] * np.array(signs), 1.0)
        image = Atoms("H4", scaled_positions=frac, cell=np.abs(cell), pbc=True)
        assert np.abs(physics_channels(image, SHAPE)[:4] - moved).max() < 1e-4


def test_point_pools_built_by_two_worker_processes_equal_one_process(data_root, point_config_file, tmp_path, monkeypatch):
    from elfkit.train.points import PointTrainer

    monkeypatch.setenv("ELFKIT_DATA_DIR", str(data_root))
    config = load_config(point_config_file)
    pools = {}
    for threads in (1, 2):
        trainer = PointTrainer(config.model_copy(update={"threads": threads}), tmp_path / f"threads{threads}")
        trainer.load_data()
        pools[threads] = trainer.train_pools
    assert len(pools[1]) == len(pools[2]) > 1
    for one, two in zip(pools[1], pools[2]):
        assert torch.equal(one.basis, two.basis) and torch.equal(one.elf, two.elf) and one.stratum == two.stratum


def test_dataset_weights_set_each_datasets_share_of_the_steps():
    from elfkit.train.loop import _sample_for_step, dataset_probabilities

    config = TrainConfig(name="x", steps=5, datasets=["a", "b"], dataset_weights={"b": 3.0})
    probabilities = dataset_probabilities(config, [6, 2])
    assert np.allclose(probabilities, [1 / 12] * 6 + [3 / 12] * 2)
    drawn = np.array([_sample_for_step(config, step, 8, probabilities)[0] for step in range(4000)])
    assert abs(np.mean(drawn >= 6) - 0.5) < 0.03
    assert dataset_probabilities(config.model_copy(update={"dataset_weights": {}}), [6, 2]) is None
    epoch = sorted(_sample_for_step(config, step, 8)[0] for step in range(8))
    assert epoch == list(range(8))


def test_a_point_run_reuses_pools_made_under_other_optimisation_settings(data_root, point_config_file, tmp_path, monkeypatch):
    from elfkit.train.points import PointTrainer

    monkeypatch.setenv("ELFKIT_DATA_DIR", str(data_root))
    config = load_config(point_config_file)
    first = PointTrainer(config, tmp_path)
    first.load_data()
    made = []
    monkeypatch.setattr(PointTrainer, "_pools", lambda self, *args, **kwargs: made.append(args) or first.train_pools)
    again = PointTrainer(config.model_copy(update={"steps": 60, "dataset_weights": {"tiny": 2.0}, "threads": 2}), tmp_path)
    again.load_data()
    assert not made and len(again.train_pools) == len(first.train_pools)
    assert again.sample_probabilities is not None and np.allclose(again.sample_probabilities, 1 / len(first.train_pools))
    PointTrainer(config.model_copy(update={"seed": 1}), tmp_path).load_data()
    assert made


def test_a_fine_tuning_run_starts_from_the_models_weights_and_records_it(data_root, config_file, tmp_path, monkeypatch):
    from elfkit.models.checkpoint import load_model
    from elfkit.train.loop import train

    monkeypatch.setenv("ELFKIT_DATA_DIR", str(data_root))
    config = load_config(config_file)
    base = load_model(train(config, tmp_path / "base"))
    tuning = config.model_copy(update={"init_from": base.source, "steps": 2})
    started = Trainer(tuning, tmp_path / "started")
    started.start_from(base.source)
    for name, value in base.net.state_dict().items():
        assert torch.equal(started.net.state_dict()[name], value)
    assert load_model(train(tuning, tmp_path / "tuned")).metadata["initial_model"] == {"name": base.name, "sha256": base.sha256}
    wider = tuning.model_copy(update={"model": {**config.model, "width": 6}})
    with pytest.raises(ConfigError, match="base.*init_from"):
        train(wider, tmp_path / "wider")
    assert not (tmp_path / "wider").exists()


def test_species_auto_becomes_the_elements_of_the_datasets(data_root, point_config_file, tmp_path, monkeypatch):
    from elfkit.train.points import PointTrainer

    monkeypatch.setenv("ELFKIT_DATA_DIR", str(data_root))
    config = load_config(point_config_file)
    config = config.model_copy(update={"model": {**config.model, "species": "auto", "features": "sad+engine-valence"}})
    trainer = PointTrainer(config, tmp_path / "run")
    assert trainer.net.species == ["H"] and trainer.config.model["species"] == ["H"]
    assert trainer.net.input_channels[4:] == ("engine_valence_log_density", "engine_valence_ge_elf",
                                              "engine_valence_reduced_gradient", "engine_valence_reduced_laplacian")


def test_a_species_model_reads_only_the_columns_of_the_elements_present():
    """A binary of 2 of 4 species: the basis of its two elements' columns alone gives the
    same logits as the whole basis, whose other columns are zero."""
    from ase.build import bulk

    from elfkit.features import point_inputs
    from elfkit.models import build
    from elfkit.models.point import basis_weights, neighbour_basis, present_weights

    alloy = bulk("Al", "fcc", a=3.6, cubic=True)
    alloy.symbols[1:] = "Mg"
    torch.manual_seed(0)
    net = build("point", cutoff=3.0, radial=4, l_max=2, channels=3, hidden=8, layers=1, species=["H", "Mg", "Al", "Ca"])
    points = np.random.default_rng(0).random((50, 3)) @ alloy.cell.array
    weights = basis_weights(alloy, species=net.species)
    present_only, columns = present_weights(alloy, species=net.species)
    density = torch.from_numpy(point_inputs(alloy, points).T.copy())
    whole = net(neighbour_basis(alloy, points, 3.0, 4, 2, atom_weights=weights), density)
    present = net(neighbour_basis(alloy, points, 3.0, 4, 2, atom_weights=present_only), density, torch.from_numpy(columns))
    assert columns.tolist() == [1, 2]
    assert torch.allclose(whole, present, atol=1e-5)


@pytest.fixture
def learned_point_config_file(point_config_file, tmp_path):
    """The tiny point config with a learned atom environment (two rounds)."""
    config = yaml.safe_load(point_config_file.read_text())
    config["model"] |= {"atom_features": 3, "atom_cutoff": 1.5, "near_cutoff": 1.5, "rounds": 2}
    path = tmp_path / "tinylearned.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_pools_learned_environment_gives_the_models_values_at_its_points(data_root, learned_point_config_file, tmp_path, monkeypatch):
    """Logits from a pool's stored inputs (a random subset of its rows, as a training batch reads
    them) equal the model's own logits at those points computed from the structure."""
    import elfkit.data
    from elfkit.grid import Grid
    from elfkit.train.points import PointTrainer, pool_indices

    monkeypatch.setenv("ELFKIT_DATA_DIR", str(data_root))
    trainer = PointTrainer(load_config(learned_point_config_file), tmp_path / "run")
    trainer.load_data()
    pool, sample = trainer.train_pools[0], next(iter(elfkit.data.open("tiny", split="train")))
    with torch.no_grad():
        for parameter in trainer.net.parameters():
            parameter.normal_(0.0, 0.3)
    config = trainer.config
    index = pool_indices(sample.elf, config.points.pool_points, config.points.weighted_fraction, np.random.default_rng([config.seed, 7, 0, len(trainer.train_pools)]))
    points = Grid(sample.atoms.cell.array, sample.elf.shape).cart_coords().reshape(-1, 3)[index]
    rows = torch.from_numpy(np.random.default_rng(1).choice(len(index), 40, replace=False))
    with torch.no_grad():
        from_pool = trainer._pool_logits(trainer.net, pool, rows).numpy()
    assert pool.near is not None and torch.equal(pool.elf[rows], torch.from_numpy(np.asarray(sample.elf, np.float32).ravel()[index][rows.numpy()]))
    assert np.abs(from_pool - trainer.net.logits_at(sample.atoms, points[rows.numpy()])).max() < 1e-4

@pytest.fixture
def paired_point_config_file(point_config_file, tmp_path):
    """The tiny point config with GRAD: pools of pairs of nearby points."""
    config = yaml.safe_load(point_config_file.read_text())
    config["losses"]["grad"] = True
    path = tmp_path / "tinypaired.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_paired_pools_hold_grid_neighbours_and_batches_keep_the_pairs(data_root, paired_point_config_file, tmp_path, monkeypatch):
    """Row i + P/2 of a paired pool is a grid point at most 3 steps from row i along each axis
    (periodically), not the same point; a batch's second row holds the partners of its first."""
    import elfkit.data
    from elfkit.train.points import PointTrainer, paired_pool_indices

    monkeypatch.setenv("ELFKIT_DATA_DIR", str(data_root))
    sample = next(iter(elfkit.data.open("tiny", split="train")))
    index = paired_pool_indices(sample.elf, 301, 0.5, np.random.default_rng(0))
    first, second = (np.stack(np.unravel_index(half, sample.elf.shape), axis=1) for half in np.split(index, 2))
    step = (second - first + 3) % np.array(sample.elf.shape) - 3
    assert len(index) == 300 and np.abs(step).max() <= 3 and np.abs(step).sum(axis=1).min() > 0
    trainer = PointTrainer(load_config(paired_point_config_file), tmp_path / "run")
    trainer.load_data()
    pool = trainer.train_pools[0]
    batch = trainer.training_batch(0, np.random.default_rng(1))
    pred, elf = batch.pred, batch.ref
    assert pred.shape == elf.shape == (2, 30)
    pairs = set(zip(pool.elf[:150].tolist(), pool.elf[150:].tolist()))
    assert all(pair in pairs for pair in zip(elf[0, :10].tolist(), elf[1, :10].tolist()))


def test_pair_grad_loss_is_the_error_of_the_differences():
    from elfkit.train.losses import pair_grad_loss

    ref = torch.tensor([[0.9, 0.2], [0.5, 0.2]])
    assert float(pair_grad_loss(ref + 0.1, ref)) == pytest.approx(0.0, abs=1e-7)
    flat = torch.tensor([[0.7, 0.2], [0.7, 0.2]])
    assert float(pair_grad_loss(flat, ref)) == pytest.approx(0.2)
    none = torch.zeros(2, 0, requires_grad=True)
    loss = pair_grad_loss(none, none.detach())
    loss.backward()
    assert float(loss.detach()) == 0.0 and none.grad is not None


def critical_pool_trainer(point_config_file, tmp_path, loss: str):
    """A point trainer of the tiny config with critical-point pools (0.3) and `loss` on, its data loaded."""
    from elfkit.train.points import PointTrainer

    config = yaml.safe_load(point_config_file.read_text())
    config["points"]["critical"], config["losses"][loss] = 0.3, True
    path = tmp_path / f"tiny{loss}.yaml"
    path.write_text(yaml.safe_dump(config))
    trainer = PointTrainer(load_config(path), tmp_path / "run")
    trainer.load_data()
    return trainer


def test_persistence_pairs_of_critical_pools_join_each_maximum_to_its_saddle(data_root, point_config_file, tmp_path, monkeypatch):
    """On a grid: each pair from `maximum_saddle_pairs` is a maximum and a saddle whose ELF
    difference is the maximum's persistence (at least CRITICAL_PERSISTENCE); in the tiny
    dataset's critical pools the pairs' rows hold those two points, a PERS batch reads every pair
    of its pools, and a step logs the PERS loss."""
    import elfkit.data
    from elfkit.analysis.critical import persistence_pairs
    from elfkit.train.points import CRITICAL_PERSISTENCE, maximum_saddle_pairs

    monkeypatch.setenv("ELFKIT_DATA_DIR", str(data_root))
    sample = next(iter(elfkit.data.open("tiny", split="train")))
    pairs = persistence_pairs(sample.elf.astype(float))
    ends = maximum_saddle_pairs(pairs, sample.elf.shape)
    flat = sample.elf.astype(float).ravel()
    finite = (pairs.index == 3) & (pairs.persistence >= CRITICAL_PERSISTENCE) & np.isfinite(pairs.persistence)
    assert len(ends) == finite.sum() > 0
    assert np.allclose(np.sort(flat[ends[:, 0]] - flat[ends[:, 1]]), np.sort(pairs.persistence[finite]))
    trainer = critical_pool_trainer(point_config_file, tmp_path, "pers")
    pool = trainer.train_pools[0]
    assert pool.pairs.shape[1] == 2 and len(pool.pairs) > 0
    assert (pool.elf[pool.pairs[:, 0]] - pool.elf[pool.pairs[:, 1]] >= CRITICAL_PERSISTENCE - 1e-6).all()
    batch = trainer.training_batch(0, np.random.default_rng(1))
    assert batch.pair_pred.shape == batch.pair_ref.shape and batch.pair_ref.shape[0] == 2
    assert batch.pair_ref.shape[1] >= len(pool.pairs) and set(pool.elf[pool.pairs[:, 0]].tolist()) <= set(batch.pair_ref[0].tolist())
    record = trainer.train_step()
    assert np.isfinite(record["loss_pers"]) and record["loss_pers"] > 0


def test_slope_pairs_straddle_each_critical_point_and_a_slope_step_logs_its_loss(data_root, point_config_file, tmp_path, monkeypatch):
    """`critical_slope_pairs` gives, for each DFT maximum and saddle, its two neighbours along each
    axis (two grid steps apart, the critical point midway; both lower than a maximum); a SLOPE
    batch reads every such pair of its pools and a step logs the SLOPE loss."""
    import elfkit.data
    from elfkit.analysis.critical import persistence_pairs
    from elfkit.train.points import CRITICAL_PERSISTENCE, critical_slope_pairs

    monkeypatch.setenv("ELFKIT_DATA_DIR", str(data_root))
    sample = next(iter(elfkit.data.open("tiny", split="train")))
    elf = sample.elf.astype(float)
    pairs = persistence_pairs(elf)
    ends = critical_slope_pairs(pairs, elf.shape)
    kept = (pairs.persistence >= CRITICAL_PERSISTENCE) & np.isin(pairs.index, (2, 3))
    assert len(ends) == 3 * kept.sum() > 0
    first, second = (np.stack(np.unravel_index(ends[:, n], elf.shape), axis=1) for n in (0, 1))
    step = (first - second) % np.array(elf.shape)
    assert ((step == 2) | (step == 0)).all() and ((step == 2).sum(axis=1) == 1).all()
    maxima = np.repeat(pairs.index[kept] == 3, 3)
    centre = np.repeat(elf[tuple(pairs.vertices[kept].T)], 3)
    assert (elf.ravel()[ends[maxima]] <= centre[maxima, None]).all()
    trainer = critical_pool_trainer(point_config_file, tmp_path, "slope")
    pool = trainer.train_pools[0]
    assert pool.slopes.shape[1] == 2 and len(pool.slopes) > 0
    batch = trainer.training_batch(0, np.random.default_rng(1))
    assert batch.slope_pred.shape == batch.slope_ref.shape and batch.slope_ref.shape[1] >= len(pool.slopes)
    record = trainer.train_step()
    assert np.isfinite(record["loss_slope"]) and record["loss_slope"] > 0


@pytest.fixture
def pers_config_file(config_file, tmp_path):
    """The tiny U-Net config with the PERS loss on every persistence pair of its grids."""
    config = yaml.safe_load(config_file.read_text())
    config["losses"] |= {"pers": True}
    path = tmp_path / "tinypers.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_bf16_autocast_only_where_the_hardware_has_it(config_file, tmp_path):
    """A config's bf16 runs in bfloat16 only where `native_bf16` says the device computes it
    natively (an AVX2 CPU emulates it, 15 times slower), and never when the config says no."""
    from elfkit.models import native_bf16

    config = load_config(config_file)
    assert not Trainer(config, tmp_path / "off").bf16
    config.bf16 = True
    assert Trainer(config, tmp_path / "on").bf16 == native_bf16(torch.device("cpu")) == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def test_persistence_pair_ends_join_the_two_critical_points_of_each_pair(data_root, monkeypatch):
    """Each (higher, lower) pair from `persistence_pair_ends` differs in ELF by its persistence
    (at least CRITICAL_PERSISTENCE), and there is one per finite pair that strong."""
    import elfkit.data
    from elfkit.analysis.critical import persistence_pairs
    from elfkit.train.losses import CRITICAL_PERSISTENCE, persistence_pair_ends

    monkeypatch.setenv("ELFKIT_DATA_DIR", str(data_root))
    elf = next(iter(elfkit.data.open("tiny", split="train"))).elf.astype(float)
    ends = persistence_pair_ends(elf)
    pairs = persistence_pairs(elf)
    strong = np.isfinite(pairs.persistence) & (pairs.persistence >= CRITICAL_PERSISTENCE)
    assert 2 * len(ends) == strong.sum() > 0
    gaps = elf.ravel()[ends[:, 0]] - elf.ravel()[ends[:, 1]]
    assert (gaps >= CRITICAL_PERSISTENCE - 1e-9).all()
    assert np.allclose(np.sort(gaps), np.sort(pairs.persistence[strong])[::2])


def test_a_unet_pers_batch_follows_each_pair_through_the_augmentation(data_root, pers_config_file, tmp_path, monkeypatch):
    """With the PERS loss the U-Net's batch holds the DFT ELF at both ends of every persistence
    pair of its grid, whatever point-group operation, shear and origin the step drew (an
    exact re-indexing keeps every value), and a step logs the PERS loss."""
    monkeypatch.setenv("ELFKIT_DATA_DIR", str(data_root))
    trainer = Trainer(load_config(pers_config_file), tmp_path / "run")
    trainer.load_data()
    assert len(trainer.train_pairs) == len(trainer.train_grids)
    for step in range(6):
        index = step % len(trainer.train_grids)
        batch = trainer.training_batch(index, np.random.default_rng(step))
        expected = trainer.train_grids[index].elf.ravel()[trainer.train_pairs[index]].T
        assert batch.pair_ref.shape == batch.pair_pred.shape == expected.shape
        assert np.array_equal(batch.pair_ref.numpy(), expected)
    record = trainer.train_step()
    assert np.isfinite(record["loss_pers"]) and record["loss_pers"] > 0


@pytest.mark.parametrize("config_name", ["config_file", "pers_config_file", "point_config_file", "learned_point_config_file",
                                         "paired_point_config_file"])
def test_a_killed_run_resumes_to_the_same_model(data_root, config_name, tmp_path, monkeypatch, request):
    from elfkit.models import Architecture
    from elfkit.train.points import PointTrainer

    monkeypatch.setenv("ELFKIT_DATA_DIR", str(data_root))
    config = load_config(request.getfixturevalue(config_name))
    trainer_class = PointTrainer if config.architecture == Architecture.POINT else Trainer

    def finished(folder, on_progress=None):
        trainer = trainer_class(config, folder, on_progress)
        trainer.load_data()
        trainer.run()
        return trainer.inference_net.state_dict()

    straight = finished(tmp_path / "straight")

    def killed_at_step_3(step, total, record):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finished(tmp_path / "resumed", killed_at_step_3)
    resumed = finished(tmp_path / "resumed")
    for name, tensor in straight.items():
        assert torch.allclose(tensor, resumed[name], atol=1e-6), name
    log = [json.loads(line) for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert any("val_r2" in r for r in log) and (tmp_path / "resumed" / "losses.png").is_file()


def test_a_run_does_not_resume_on_data_that_changed_since_it_started(data_root, config_file, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(data_root, tmp_path / "data")
    monkeypatch.setenv("ELFKIT_DATA_DIR", str(tmp_path / "data"))
    config = load_config(config_file)
    (tmp_path / "run").mkdir()
    Trainer(config, tmp_path / "run").save_state()
    assert Trainer(config, tmp_path / "run").resume()
    store = DatasetStore(tmp_path / "data" / "tiny")
    store.write_item("extra", [_tiny_sample(1.45, 9)])
    store.compact()
    store.write_manifest({"name": "tiny", "kind": "hydrogen-md"}, stratify="rs_bohr")
    with pytest.raises(ConfigError, match="other data"):
        Trainer(config, tmp_path / "run").resume()


@pytest.mark.parametrize("config_name", ["config_file", "point_config_file"])
def test_train_predict_evaluate_from_the_command_line(data_root, config_name, tmp_path, monkeypatch, request):
    monkeypatch.setenv("ELFKIT_DATA_DIR", str(data_root))
    config_file = request.getfixturevalue(config_name)
    name = load_config(config_file).name
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(config_file), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    model = tmp_path / "run" / f"{name}.safetensors"
    structure = tmp_path / "POSCAR"
    _tiny_sample(1.3, 9).atoms.write(structure, format="vasp")
    result = runner.invoke(app, ["predict", str(structure), "--model", str(model), "--grid", "16", "16", "16"])
    assert result.exit_code == 0, result.output
    from elfkit.io import read_field

    field = read_field(tmp_path / "POSCAR.ELFCAR")
    assert field.quantity == "elf" and field.values.shape == SHAPE
    frames = tmp_path / "md.extxyz"
    import ase.io

    ase.io.write(frames, [_tiny_sample(1.3, 7).atoms, _tiny_sample(1.6, 8).atoms], format="extxyz")
    result = runner.invoke(app, ["predict", str(frames), "--model", str(model), "--out-dir", str(tmp_path / "elf"), "--format", "cube"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "elf").iterdir()) == ["md_0000.elf.cube", "md_0001.elf.cube"]
    result = runner.invoke(app, ["evaluate", str(model), "tiny", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {row["model"] for row in rows} == {name, "physics baseline"}
    assert {row["stratum"] for row in rows} == {"rs 1.3", "rs 1.6", "all"}
    assert not any("recall_saddles" in row for row in rows)
    result = runner.invoke(app, ["evaluate", str(model), "tiny", "--json", "--critical"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {row["stratum"] for row in rows} == {"rs 1.3", "rs 1.6", "all"}
    assert all(0 <= row["recall_saddles"] <= 1 and 0 <= row["recall_maxima"] <= 1 for row in rows)
    ensemble = f"hydrogen+{model}"
    result = runner.invoke(app, ["evaluate", "hydrogen", str(model), ensemble, "tiny", "-o", str(tmp_path / "both.json"), "--figure", str(tmp_path / "both.png")])
    assert result.exit_code == 0, result.output
    both = json.loads((tmp_path / "both.json").read_text())
    assert [m["name"] for m in both["models"]] == ["hydrogen", name, f"hydrogen+{name}"]
    mae = {row["model"]: row["mae"] for row in both["table"] if row["stratum"] == "all"}
    assert mae[f"hydrogen+{name}"] <= (mae["hydrogen"] + mae[name]) / 2 + 1e-7
    keys = {m: [s["key"] for s in both["samples"] if s["model"] == m] for m in ("hydrogen", name, "physics baseline")}
    assert keys["hydrogen"] == keys[name] == keys["physics baseline"] and len(keys[name]) == 2
    assert all(len(s["residual_power"]) == len(both["spectrum_k_per_angstrom"]) for s in both["samples"])
    first = next(s for s in both["samples"] if s["model"] == "hydrogen")
    assert set(first["residual_correlation"]) == {name, f"hydrogen+{name}", "physics baseline"} and -1 <= first["residual_correlation"][name] <= 1
    assert (tmp_path / "both.png").read_bytes()[:4] == b"\x89PNG"


def test_species_residual_decay_pulls_the_free_functions_and_needs_them(data_root, point_config_file, tmp_path, monkeypatch):
    """With species_residual_decay the loss holds the free per-species functions' mean square
    (logged), weighted relative to the VOX term's learned weight, and a config asking for it
    without model.species_residual or without VOX is refused."""
    from elfkit.train.points import PointTrainer

    monkeypatch.setenv("ELFKIT_DATA_DIR", str(data_root))
    config = load_config(point_config_file)
    model = {**config.model, "environment": 0, "species": "auto", "species_rank": 1, "species_residual": True}
    config = TrainConfig.model_validate({**config.model_dump(), "model": model, "species_residual_decay": 1.0})
    trainer = PointTrainer(config, tmp_path / "run")
    trainer.load_data()
    records = []
    for _ in range(4):
        records.append(trainer.train_step())
        trainer.step += 1
    assert records[0]["loss_species_residual"] == 0 < records[-1]["loss_species_residual"]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert plot_log(log, tmp_path / "losses.png").read_bytes()[:4] == b"\x89PNG"
    with torch.no_grad():
        trainer.weights.log_scales.copy_(torch.tensor([1.5, -0.5]))
    record = trainer.train_step()
    weighted = math.exp(-1.5) * record["loss_vox"] + 1.5 + math.exp(0.5) * record["loss_hist"] - 0.5
    assert record["total"] == pytest.approx(weighted + math.exp(-1.5) * record["loss_species_residual"], rel=1e-5)
    with pytest.raises(ValueError, match="species_residual: true"):
        TrainConfig.model_validate({**config.model_dump(), "model": {**model, "species_residual": False}})
    with pytest.raises(ValueError, match="losses.vox"):
        TrainConfig.model_validate({**config.model_dump(), "losses": {"vox": False, "hist": True, "grad": False}})


def test_nucleus_pools_hold_the_grid_point_at_each_atom():
    """The grid point nearest each atom (grid point (i, j, k) at fractional (i/N1, j/N2, k/N3))
    is in the pool, the pool keeps its size and has no repeats; without atoms the draw is the
    plain one."""
    from elfkit.train.points import nucleus_indices, pool_indices

    atoms = Atoms("Pb2", scaled_positions=[[0, 0, 0], [0.5, 0.26, 0.74]], cell=np.diag([4.0, 5.0, 6.0]), pbc=True)
    shape = (8, 10, 12)
    nuclei = nucleus_indices(atoms, shape)
    assert sorted(nuclei.tolist()) == [0, np.ravel_multi_index((4, 3, 9), shape)]
    elf = np.random.default_rng(0).random(shape)
    pool = pool_indices(elf, 50, 0.5, np.random.default_rng(1), nuclei)
    assert len(pool) == len(set(pool.tolist())) == 50 and set(nuclei.tolist()) <= set(pool.tolist())
    plain = pool_indices(elf, 50, 0.5, np.random.default_rng(1))
    assert np.array_equal(plain, pool_indices(elf, 50, 0.5, np.random.default_rng(1), None))


def test_critical_pools_hold_the_maxima_and_saddles_with_their_neighbours():
    """Two periodic bumps on a 20³ grid: both maxima (grid points (5, 5, 5) and (15, 15, 15))
    and their six face neighbours come first, then saddles; a bump shallower than
    CRITICAL_PERSISTENCE is left out, and the limit holds."""
    from elfkit.train.points import CRITICAL_PERSISTENCE, critical_indices, pool_indices

    shape = (20, 20, 20)
    index = np.indices(shape).reshape(3, -1).T

    def bump(centre, height, width):
        offset = (index - centre + 10) % 20 - 10
        return height * np.exp(-(offset**2).sum(axis=1) / width**2).reshape(shape)

    elf = 0.2 + bump((5, 5, 5), 0.6, 3.0) + bump((15, 15, 15), 0.4, 3.0) + bump((5, 15, 10), CRITICAL_PERSISTENCE / 2, 1.0)
    chosen = critical_indices(elf, 100, np.random.default_rng(0))
    stars = [np.ravel_multi_index(tuple(((np.array(c) + s) % 20)), shape)
             for c in ((5, 5, 5), (15, 15, 15)) for s in [(0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]]
    assert set(chosen[:14].tolist()) == set(stars)
    assert len(chosen) > 14 and len(chosen) == len(set(chosen.tolist()))
    assert np.ravel_multi_index((5, 15, 10), shape) not in chosen.tolist()
    assert len(critical_indices(elf, 10, np.random.default_rng(0))) == 10
    pool = pool_indices(elf, 60, 0.5, np.random.default_rng(1), chosen[:14])
    assert set(stars) <= set(pool.tolist()) and len(set(pool.tolist())) == 60
