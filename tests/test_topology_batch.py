"""`elfkit topology` over many frames (`elfkit.analysis.batch`): one CSV row per frame of a
hydrogen trajectory (ELF predicted by a small untrained network) or per ELF file, equal to the
topology of each frame's ELF; the same rows on Dask workers; a failure leaves no CSV."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import write
from typer.testing import CliRunner

from elfkit.analysis.batch import COLUMNS, TopologyInput, topology_rows
from elfkit.analysis.topology import topology
from elfkit.cli import app
from elfkit.grid import Grid
from elfkit.io import save_field
from elfkit.models import build
from elfkit.models.checkpoint import save_model
from elfkit.predict import predict

runner = CliRunner()
SPACING = 0.2


def _h2_frames(count=3):
    """`count` cubic cells of 3.5-3.7 Å, each holding four H2 molecules (0.74 Å) at random orientations."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.9, 0.9, 0.9], [2.6, 2.6, 0.9], [2.6, 0.9, 2.6], [0.9, 2.6, 2.6]])
    frames = []
    for number in range(count):
        positions = []
        for centre in centres + rng.normal(scale=0.1, size=centres.shape):
            axis = rng.normal(size=3)
            axis *= 0.37 / np.linalg.norm(axis)
            positions += [centre - axis, centre + axis]
        frames.append(Atoms("H8", positions=positions, cell=[3.5 + 0.1 * number] * 3, pbc=True))
    return frames


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny random model file, a three-frame extxyz trajectory, its first frame alone, and
    the predicted ELF of the first two frames as .npz files."""
    folder = tmp_path_factory.mktemp("batch")
    torch.manual_seed(3)
    model = save_model(folder / "tiny.safetensors", build("periodic-unet", in_channels=10, width=4, dilations=(1, 2)),
                       {"name": "tiny", "architecture": "periodic-unet"})
    frames = _h2_frames()
    write(folder / "traj.extxyz", frames)
    frames[0].write(folder / "single.vasp", format="vasp")
    for number, atoms in enumerate(frames[:2]):
        save_field(folder / f"frame{number}.elf.npz", predict(atoms, Grid.for_spacing(atoms.cell.array, SPACING).shape, model))
    return folder, model, frames


def _csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _number(text):
    return None if text == "" else float(text)


def test_a_trajectory_gives_one_row_per_frame_with_the_topology_of_its_predicted_elf(inputs, tmp_path, monkeypatch):
    folder, model, frames = inputs
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["topology", str(folder / "traj.extxyz"), "--model", str(model),
                                 "--spacing", str(SPACING), "--workers", "1"])
    assert result.exit_code == 0, (result.exception, result.output)
    rows = _csv(tmp_path / "topology.csv")
    assert list(rows[0]) == list(COLUMNS)
    assert [(r["source"], r["frame"]) for r in rows] == [(str(folder / "traj.extxyz"), str(n)) for n in range(3)]
    phis = []
    for row, atoms in zip(rows, frames):
        direct = topology(predict(atoms, Grid.for_spacing(atoms.cell.array, SPACING).shape, model))
        assert _number(row["networking_value"]) == direct["networking_value"]
        assert _number(row["molecularity_index"]) == direct["molecularity_index"]
        assert {k: int(row[k]) for k in direct["counts"]} == direct["counts"]
        assert int(row["morse_sum"]) == direct["morse_sum"] == 0
        assert (row["formula"], row["atoms"], row["model"]) == ("H8", "8", "tiny")
        assert float(row["volume_angstrom3"]) == pytest.approx(atoms.get_volume(), abs=1e-4)
        assert float(row["persistence_threshold"]) == direct["persistence_threshold"]
        phis.append(direct["networking_value"])
    assert result.stdout.strip() == f"3 frames: mean networking value φ {np.mean(phis):.3f}; wrote topology.csv"


def test_several_elf_files_give_one_row_each_equal_to_the_single_file_json(inputs, tmp_path):
    folder, _, _ = inputs
    files = [str(folder / f"frame{n}.elf.npz") for n in range(2)]
    result = runner.invoke(app, ["topology", *files, "--csv", str(tmp_path / "elf.csv"), "--json", "--workers", "1"])
    assert result.exit_code == 0, (result.exception, result.output)
    rows = json.loads(result.stdout)
    assert [r["source"] for r in rows] == files and [r["frame"] for r in rows] == [0, 0]
    assert [r["model"] for r in rows] == ["", ""]
    assert [r["networking_value"] for r in rows] == [_number(r["networking_value"]) for r in _csv(tmp_path / "elf.csv")]
    for row, path in zip(rows, files):
        single = runner.invoke(app, ["topology", path, "--json"])
        assert single.exit_code == 0, single.output
        alone = json.loads(single.stdout)
        assert row["networking_value"] == alone["networking_value"]
        assert row["molecularity_index"] == alone["molecularity_index"]
        assert {k: row[k] for k in alone["counts"]} == alone["counts"]
        assert row["morse_sum"] == alone["morse_sum"]


def test_one_structure_of_one_frame_prints_the_topology_of_its_predicted_elf(inputs, tmp_path, monkeypatch):
    folder, model, frames = inputs
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["topology", str(folder / "single.vasp"), "--model", str(model), "--spacing", str(SPACING), "--json"])
    assert result.exit_code == 0, (result.exception, result.output)
    direct = topology(predict(frames[0], Grid.for_spacing(frames[0].cell.array, SPACING).shape, model))
    assert json.loads(result.stdout)["networking_value"] == direct["networking_value"]
    assert list(tmp_path.iterdir()) == []


def test_dask_workers_give_the_rows_of_the_in_process_run(inputs, tmp_path):
    folder, model, frames = inputs
    command = [sys.executable, "-m", "elfkit", "topology", str(folder / "traj.extxyz"), "--model", str(model),
               "--spacing", str(SPACING), "--workers", "2", "--csv", str(tmp_path / "dask.csv")]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    items = [TopologyInput(f"frame {n}", atoms, str(folder / "traj.extxyz"), n) for n, atoms in enumerate(frames)]
    in_process = topology_rows(items, model, SPACING, workers=1)
    assert _csv(tmp_path / "dask.csv") == [{k: "" if v is None else str(v) for k, v in row.items()} for row in in_process]


def test_a_failure_in_the_middle_leaves_no_csv(inputs, tmp_path, monkeypatch):
    import elfkit.analysis.topology

    folder, _, _ = inputs
    calls = []

    def fails_on_the_second(field, *args, **kwargs):
        calls.append(field)
        if len(calls) == 2:
            raise RuntimeError("analysis failed")
        return topology(field, *args, **kwargs)

    monkeypatch.setattr(elfkit.analysis.topology, "topology", fails_on_the_second)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["topology", str(folder / "frame0.elf.npz"), str(folder / "frame1.elf.npz"), "--workers", "1"])
    assert isinstance(result.exception, RuntimeError)
    assert list(tmp_path.iterdir()) == []
