"""The dataset pipeline for real: QE MD + labels on tiny hydrogen cells, a local Dask cluster,
resuming, kill -9, failures, streaming."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from ase import Atoms

import elfkit.data
from elfkit.data.runner import generate
from elfkit.data.spec import load_spec, work_items
from elfkit.data.store import DatasetError, decode_elf, encode_elf, read_index

from conftest import REPO

TINY = {
    "name": "tiny",
    "kind": "hydrogen-md",
    "labels": {"engine": "qe", "cutoff_ev": 300.0, "smearing_ev": 0.1},
    "grid_spacing_angstrom": 0.12,
    "md": {"cutoff_ev": 250.0, "timestep_fs": 0.48, "thermostat_collision_steps": 5},
    "trajectories": [
        {"natoms": 8, "rs_bohr": [1.5], "temperature_k": [1500], "start": ["molecular", "atomic"],
         "equilibration_fs": 1.0, "snapshots": 2, "interval_fs": 1.0}
    ],
}


def write_spec(path, **changes):
    spec = json.loads(json.dumps(TINY))
    for key, value in changes.items():
        spec["trajectories"][0][key] = value
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    spec = write_spec(root / "tiny.yaml")
    first = generate(spec, workers=2, root=root)
    second = generate(spec, workers=2, root=root)
    return root, first, second


def test_local_dask_run_makes_every_item_and_a_rerun_skips_them(generated):
    root, first, second = generated
    failures = root / "tiny" / "failures.jsonl"
    assert (first.total, first.done, first.failed) == (2, 2, 0), failures.read_text() if failures.exists() else ""
    assert (second.done, second.skipped) == (0, 2)
    manifest = json.loads((root / "tiny" / "manifest.json").read_text())
    assert manifest["count"] == 4
    assert not list((root / "tiny" / "items").iterdir())


def test_splits_follow_trajectories_never_snapshots(generated):
    root, _, _ = generated
    rows = json.loads((root / "tiny" / "manifest.json").read_text())["samples"]
    by_group = {}
    for row in rows:
        by_group.setdefault(row["group"], set()).add(row["split"])
    assert len(by_group) == 2 and all(len(splits) == 1 for splits in by_group.values())


def test_open_streams_labelled_samples(generated):
    root, _, _ = generated
    dataset = elfkit.data.open("tiny", root=root)
    samples = list(dataset)
    assert len(samples) == len(dataset) == 4
    for sample in samples:
        assert np.all(np.linalg.norm(sample.atoms.cell.array, axis=1) / sample.elf.shape <= 0.12 + 1e-9)
        assert 0.0 <= sample.elf.min() and sample.elf.max() <= 1.0 and sample.elf.std() > 0.05
        assert sample.temperature_k == 1500.0 and sample.pressure_gpa > 0
        assert sample.metadata["engine"] == "qe"
    summary = elfkit.data.list_datasets(root)[0]
    assert summary["count"] == 4 and sum(summary["splits"].values()) == 4
    assert summary["pressure_gpa"][0] <= summary["pressure_gpa"][1]


def test_a_failed_item_is_logged_and_the_run_goes_on(tmp_path):
    spec = write_spec(tmp_path / "odd.yaml", natoms=7, snapshots=1)
    report = generate(spec, workers=1, root=tmp_path)
    assert (report.done, report.failed) == (1, 1)
    failure = json.loads((tmp_path / "tiny" / "failures.jsonl").read_text().splitlines()[0])
    assert "even number of atoms" in failure["reason"]


def test_kill_minus_9_loses_only_items_in_flight(tmp_path):
    spec = write_spec(tmp_path / "four.yaml", seeds=[1, 2], snapshots=1)
    env = {**os.environ, "ELFKIT_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "elfkit", "data", "generate", str(spec), "--workers", "1"]
    process = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = tmp_path / "tiny" / "manifest.json"
    deadline = time.time() + 900  # only against a hung run; the test never asserts on time
    while time.time() < deadline and not manifest.exists() and process.poll() is None:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert manifest.exists(), "no item finished before the kill"
    for archive in (tmp_path / "tiny").rglob("*.npz"):
        read_index(archive)
    done_before = json.loads(manifest.read_text())["count"]
    assert done_before >= 1
    finished = subprocess.run(command, env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert re.search(r"4/4 items done, 0 failed, ETA", finished.stderr)
    rows = json.loads(manifest.read_text())["samples"]
    assert len(rows) == 4 and len({r["key"] for r in rows}) == 4


def test_a_trajectory_resumes_from_its_md_and_label_checkpoints(tmp_path, monkeypatch):
    import elfkit.data.hydrogen as hydrogen
    import elfkit.dft

    monkeypatch.setattr(hydrogen, "MD_SEGMENT_STEPS", 3)
    spec = load_spec(write_spec(tmp_path / "one.yaml", start=["atomic"]))
    item = work_items(spec)[0]
    steps = hydrogen.snapshot_steps(item, spec.md.timestep_fs)
    start = hydrogen.random_atomic_hydrogen(8, 1.5, 1)
    md = hydrogen.MDSettings(**spec.md.model_dump())
    early = hydrogen.sample_trajectory(start, 1500, steps[:1], md, tmp_path / "scratch")
    later = hydrogen.sample_trajectory(start, 1500, steps, md, tmp_path / "scratch")
    checkpoint = json.loads((tmp_path / "scratch" / "md-checkpoint.json").read_text())
    assert checkpoint["step"] == steps[-1] == 6 and sorted(later) == steps
    assert np.array_equal(early[steps[0]][0].positions, later[steps[0]][0].positions)
    assert not np.allclose(later[steps[0]][0].positions, later[steps[1]][0].positions)
    first = hydrogen.label_trajectory(item, spec, tmp_path / "scratch")

    def recomputed(*args, **kwargs):
        raise AssertionError("a checkpointed step was recomputed")

    monkeypatch.setattr(hydrogen, "run_md", recomputed)
    monkeypatch.setattr(elfkit.dft, "compute", recomputed)
    again = hydrogen.label_trajectory(item, spec, tmp_path / "scratch")
    assert [s.metadata["md_step"] for s in again] == steps
    for one, other in zip(first, again):
        assert np.array_equal(one.atoms.positions, other.atoms.positions)
        assert np.abs(one.elf - other.elf).max() < 1e-3 and one.energy_ev == other.energy_ev


def test_a_stalled_md_segment_is_rerun_with_careful_mixing(tmp_path, monkeypatch):
    import elfkit.data.hydrogen as hydrogen
    from elfkit.dft.base import DFTError

    real_run_md = hydrogen.run_md
    calls, inputs = [], []

    def stall_once(*args, careful=False, **kwargs):
        calls.append(careful)
        if not careful:
            raise DFTError("SCF did not converge (see md.out)")
        frames = real_run_md(*args, careful=careful, **kwargs)
        inputs.append((args[4] / "md.in").read_text())
        return frames

    monkeypatch.setattr(hydrogen, "run_md", stall_once)
    md = hydrogen.MDSettings(cutoff_ev=250.0, thermostat_collision_steps=5)
    snapshots = hydrogen.sample_trajectory(hydrogen.random_atomic_hydrogen(8, 1.5, 1), 1500, [2], md, tmp_path)
    assert calls == [False, True] and list(snapshots) == [2]
    assert json.loads((tmp_path / "md-checkpoint.json").read_text())["careful_segments"] == [0]
    assert re.search(r"mixing_beta\s*=\s*0\.1\b", inputs[0]) and re.search(r"electron_maxstep\s*=\s*600", inputs[0])


def test_an_md_segment_that_stalls_again_ends_at_its_last_converged_step(tmp_path, monkeypatch):
    import elfkit.data.hydrogen as hydrogen
    from elfkit.dft.base import DFTError

    real_run_md = hydrogen.run_md
    segments = []

    def stall_at_third_scf(atoms, temperature_k, nsteps, md, folder, careful=False):
        segments.append(folder.name)
        if folder.name != "md-000000":
            return real_run_md(atoms, temperature_k, nsteps, md, folder, careful=careful)
        if not careful:
            raise DFTError("SCF did not converge (see md.out)")
        real_run_md(atoms, temperature_k, nsteps, md, folder, careful=careful)
        output = (folder / "md.out").read_text()
        third = [m.start() for m in re.finditer(r"^!", output, flags=re.M)][2]
        (folder / "md.out").write_text(output[:third] + "\n     convergence NOT achieved after 600 iterations: stopping\n")
        raise DFTError("SCF did not converge (see md.out)")

    monkeypatch.setattr(hydrogen, "run_md", stall_at_third_scf)
    md = hydrogen.MDSettings(cutoff_ev=250.0, thermostat_collision_steps=5)
    snapshots = hydrogen.sample_trajectory(hydrogen.random_atomic_hydrogen(8, 1.5, 1), 1500, [1, 4], md, tmp_path)
    checkpoint = json.loads((tmp_path / "md-checkpoint.json").read_text())
    assert checkpoint["shortened_segments"] == [0] and checkpoint["step"] == 4 and sorted(snapshots) == [1, 4]
    assert segments == ["md-000000", "md-000000", "md-000002"], "the two converged steps are kept, the rest rerun"


def test_elf_codec_keeps_values_to_twelve_bits():
    elf = np.random.default_rng(0).random((9, 10, 11))
    assert np.abs(decode_elf(encode_elf(elf), elf.shape) - elf).max() <= 0.5 / 4095 + 1e-7


def test_bad_specs_are_one_line_errors(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: x\nkind: hydrogen-md\ntrajectories: [{natoms: 8}]\n")
    with pytest.raises(DatasetError, match="invalid spec at hydrogen-md.trajectories.0.rs_bohr: Field required"):
        load_spec(tmp_path / "bad.yaml")
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(DatasetError, match="not valid YAML"):
        load_spec(tmp_path / "broken.yaml")


def test_work_item_keys_are_stable_and_depend_on_settings(tmp_path):
    a = work_items(load_spec(write_spec(tmp_path / "a.yaml")))
    b = work_items(load_spec(write_spec(tmp_path / "b.yaml")))
    assert [i["key"] for i in a] == [i["key"] for i in b]
    changed = json.loads(json.dumps(TINY))
    changed["labels"]["cutoff_ev"] = 400.0
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(changed))
    assert not {i["key"] for i in a} & {i["key"] for i in work_items(load_spec(tmp_path / "c.yaml"))}


def test_data_list_json_has_the_documented_keys(generated):
    root, _, _ = generated
    env = {**os.environ, "ELFKIT_DATA_DIR": str(root)}
    result = subprocess.run([sys.executable, "-m", "elfkit", "data", "list", "--json"], env=env, capture_output=True, text=True)
    rows = json.loads(result.stdout)
    assert {"name", "count", "splits", "pressure_gpa"} <= set(rows[0])
    assert set(rows[0]["splits"]) == {"train", "val", "test"}


def test_validate_checks_the_dataset_and_recomputes_with_gpaw(generated):
    from elfkit.data.validate import validate

    root, _, _ = generated
    report = validate(elfkit.data.open("tiny", root=root), recompute=1)
    assert report["duplicates"]["ok"] and report["elf_range"]["ok"] and report["not_converged"]["ok"]
    assert report["electrons"]["ok"]
    (row,) = report["cross_engine"]["samples"]
    assert row["engine"] == "gpaw" and row["elf_mae"] < 0.05
    assert 0.05 <= row["fraction_outside_cores"] <= 1 and row["elf_mae_judged"] == row["elf_mae_outside_cores"]
    assert (root / "tiny" / "validation.json").is_file()
    again = validate(elfkit.data.open("tiny", root=root), recompute=0)
    assert again["cross_engine"] == report["cross_engine"], "a cheap rerun keeps the cross-engine check"


def test_recomputed_samples_cover_every_element_then_fill_at_random():
    from elfkit.data.validate import choose_samples

    cells = [("Li", 1)] * 40 + [("LiNa", 2)] * 40 + [("Na3Al", 4)] * 40 + [("Mg2", 2)] * 40 + [("Ba4", 4), ("Ba", 1)]
    rows = [{"key": f"k{i}", "formula": f, "natoms": n} for i, (f, n) in enumerate(cells)]
    formula_of = {row["key"]: row["formula"] for row in rows}
    chosen = choose_samples(rows, 6, seed=3)
    elements = {e for key in chosen for e in ("Li", "Na", "Al", "Mg", "Ba") if e in formula_of[key]}
    assert len(set(chosen)) == 6 and elements == {"Li", "Na", "Al", "Mg", "Ba"}
    assert "Ba" in [formula_of[key] for key in chosen]
    assert chosen == choose_samples(rows, 6, seed=3) and chosen != choose_samples(rows, 6, seed=4)
    assert len(choose_samples(rows, 2, seed=0)) == 2


@pytest.mark.parametrize(
    "prototype, elements, number",
    [("fcc", ["Ca"], 225), ("bcc", ["Na"], 229), ("hcp", ["Y"], 194), ("sc", ["La"], 221), ("B2", ["Mg", "Ca"], 221),
     ("L1_0", ["Zr", "Nb"], 123), ("L1_2", ["La", "Mg"], 221), ("AlB2", ["Sr", "Mg"], 191), ("C15", ["Ca", "Mg"], 227),
     ("A15", ["Nb", "Sc"], 223), ("D0_3", ["Li", "Mg"], 225), ("D0_19", ["Na", "Al"], 194),
     ("CaCu5", ["La", "Mg"], 191), ("C11b", ["Nb", "Be"], 139), ("C14", ["Mg", "Li"], 194)],
)
def test_metal_prototypes_have_their_space_group_and_scaled_volume(prototype, elements, number):
    from elfkit.data.metals import ambient_volume, build
    from elfkit.io import validate_structure
    from elfkit.symmetry import space_group

    atoms = build(prototype, elements, 0.6)
    validate_structure(atoms)
    assert space_group(atoms)[1] == number
    expected = 0.6 * np.mean([ambient_volume(s) for s in atoms.get_chemical_symbols()])
    assert atoms.get_volume() / len(atoms) == pytest.approx(expected)


@pytest.mark.parametrize(
    "prototype, natoms, fraction_a",
    [("B2", 2, 1 / 2), ("L1_0", 2, 1 / 2), ("L1_2", 4, 3 / 4), ("AlB2", 3, 1 / 3), ("C15", 6, 1 / 3), ("A15", 8, 3 / 4),
     ("D0_3", 4, 3 / 4), ("D0_19", 8, 3 / 4), ("CaCu5", 6, 1 / 6), ("C11b", 3, 1 / 3), ("C14", 12, 1 / 3)],
)
def test_binary_prototypes_have_their_stoichiometry_and_no_close_contacts(prototype, natoms, fraction_a):
    from elfkit.data.metals import build

    atoms = build(prototype, ["Li", "Mg"], 1.0)
    distances = atoms.get_all_distances(mic=True)[np.triu_indices(len(atoms), 1)]
    assert len(atoms) == natoms
    assert atoms.get_chemical_symbols().count("Li") / natoms == pytest.approx(fraction_a)
    assert distances.min() > 0.8 * (atoms.get_volume() / natoms) ** (1 / 3)


def test_prototype_spec_expands_both_orientations_labels_with_gpaw_and_validates_with_qe(tmp_path):
    spec = tmp_path / "metals.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "metals", "kind": "prototypes",
        "labels": {"engine": "gpaw", "cutoff_ev": 250.0, "kspacing": 0.7, "smearing_ev": 0.2},
        "volume_fractions": [0.7], "elements": ["Li"], "unary": ["bcc"],
        "pairs": [["Li", "Mg"]], "binary": ["B2", "L1_2"],
    }))
    items = work_items(load_spec(spec))
    assert sorted((i["prototype"], tuple(i["elements"])) for i in items) == [
        ("B2", ("Li", "Mg")), ("L1_2", ("Li", "Mg")), ("L1_2", ("Mg", "Li")), ("bcc", ("Li",))]
    only_lithium = tmp_path / "li.yaml"
    only_lithium.write_text(spec.read_text().replace("pairs:\n- - Li\n  - Mg\n", "pairs: []\n"))
    report = generate(only_lithium, workers=1, root=tmp_path)
    assert (report.done, report.failed) == (1, 0)
    (sample,) = list(elfkit.data.open("metals", root=tmp_path))
    assert sample.metadata["prototype"] == "bcc" and sample.metadata["engine"] == "gpaw"
    assert sample.group == "bcc-Li" and sample.temperature_k is None
    assert 0.0 <= sample.elf.min() and sample.elf.max() <= 1.0
    from elfkit.data.validate import validate

    report = validate(elfkit.data.open("metals", root=tmp_path), recompute=1)
    (row,) = report["cross_engine"]["samples"]
    assert row["engine"] == "qe" and "skipped" not in row and row["elf_mae_judged"] < 0.01
    assert report["electrons"]["ok"] and report["ok"]


def test_qe_recomputes_gpaw_labels_only_like_for_like():
    from elfkit.data.validate import qe_unavailable

    labels = {"engine": "gpaw", "cutoff_ev": 450.0}
    assert qe_unavailable(["Li", "Mg"], labels) == "QE and GPAW valence electrons differ: Mg (2 vs 10)"
    assert qe_unavailable(["Nb", "Li"], labels) == "no QE pseudopotential for Nb"
    assert qe_unavailable(["La"], labels) == "QE pseudopotentials not validated at 450 eV: La (from 900 eV)"
    assert qe_unavailable(["Li", "Al", "K"], labels) is None


def test_relaxed_crystal_lands_at_its_target_pressure_in_the_fixed_split(tmp_path):
    from conftest import REPO

    spec = tmp_path / "crystals.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "crystals", "kind": "relaxed-crystals", "split": "test",
        "labels": {"engine": "qe", "cutoff_ev": 350.0, "kspacing": 1.6, "smearing_ev": 0.3},
        "relax": {"cutoff_ev": 350.0, "kspacing": 1.6, "smearing_ev": 0.3, "pressure_tolerance_gpa": 0.5},
        "structures": [{"name": "I4_1/amd", "file": str(REPO / "structures" / "hydrogen" / "I41amd.cif"),
                        "pressures_gpa": [400.0]}],
    }))
    report = generate(spec, workers=1, root=tmp_path)
    assert (report.done, report.failed) == (1, 0), (tmp_path / "crystals" / "failures.jsonl").read_text()
    (sample,) = list(elfkit.data.open("crystals", root=tmp_path))
    assert sample.pressure_gpa == pytest.approx(400.0, rel=0.02)  # fresh-basis SCF: Pulay stress at 350 eV
    assert sample.metadata["relax_steps"] >= 1
    rows = elfkit.data.open("crystals", root=tmp_path).rows()
    assert [r["split"] for r in rows] == ["test"]


def test_an_existing_dask_cluster_is_used_through_its_scheduler_address(tmp_path):
    from dask.distributed import LocalCluster

    spec = write_spec(tmp_path / "one.yaml", start=["atomic"], snapshots=1)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        report = generate(spec, scheduler=cluster.scheduler_address, root=tmp_path)
    assert (report.done, report.failed) == (1, 0)
    assert len(elfkit.data.open("tiny", root=tmp_path)) == 1


HYDROGEN_PHASES = {"P6_3/m": (176, 16), "C2/c-24": (15, 12), "Cmca-12": (64, 12), "Cmca-4": (64, 4), "I4_1/amd": (141, 4)}


def test_hydrogen_crystal_starts_have_their_space_group_atom_count_and_bonds():
    from elfkit.io import read_structure
    from elfkit.symmetry import space_group

    spec = load_spec(REPO / "specs" / "hydrogen-crystals.yaml")
    assert sorted(entry.name for entry in spec.structures) == sorted(HYDROGEN_PHASES)
    for entry in spec.structures:
        atoms = read_structure(entry.file)
        number, natoms = HYDROGEN_PHASES[entry.name]
        assert space_group(atoms, symprec=1e-3)[1] == number and len(atoms) == natoms, entry.name
        distances = (atoms * (2, 2, 2)).get_all_distances(mic=True)
        nearest = np.sort(distances + np.eye(len(distances)) * 99, axis=1)
        if entry.name != "I4_1/amd":
            assert np.all(nearest[:, 0] < 0.9) and np.all(nearest[:, 1] > 1.0), entry.name


def test_the_full_metal_spec_grows_the_committed_one():
    committed, full = (load_spec(REPO / "specs" / name) for name in ("metals.yaml", "metals-full.yaml"))
    assert {item["key"] for item in work_items(committed)} < {item["key"] for item in work_items(full)}
    assert set(committed.elements) < set(full.elements) and len(full.elements) == 21


def _tiny_samples(count):
    from ase.build import bulk

    from elfkit.data.store import Sample

    rng = np.random.default_rng(0)
    return [
        Sample(bulk("Li", "bcc", a=3.0 + 0.01 * n), rng.random((4, 4, 4)).astype(np.float32), -1.0 * n, 1.0, f"g{n % 3}")
        for n in range(count)
    ]


def test_validate_lists_a_sample_qe_cannot_recompute_with_the_reason(tmp_path):
    from ase.build import bulk

    from elfkit.data.store import DatasetStore, Sample
    from elfkit.data.validate import validate

    elf = np.random.default_rng(0).random((4, 4, 4)).astype(np.float32)
    store = DatasetStore(tmp_path / "niobium")
    store.write_item("item", [Sample(bulk("Nb", "bcc", a=3.3), elf, -1.0, 1.0, "bcc-Nb", None, None,
                                     {"electrons": 13.0, "scf_iterations": 8})])
    store.compact()
    store.write_manifest({"name": "niobium", "labels": {"engine": "gpaw", "cutoff_ev": 400.0}})
    report = validate(elfkit.data.open("niobium", root=tmp_path), recompute=1)
    (row,) = report["cross_engine"]["samples"]
    assert "no QE pseudopotential for Nb" in row["skipped"] and report["cross_engine"]["recomputed"] == 0
    assert report["electrons"]["ok"]  # 13, as GPAW's default Nb setup
    assert elfkit.data.list_datasets(tmp_path)[0]["cross_engine_elf_mae"] is None


def test_compaction_fills_shards_and_repack_merges_and_deduplicates(tmp_path):
    import shutil

    from elfkit.data.store import DatasetStore, iter_samples, load_samples

    samples = _tiny_samples(7)
    store = DatasetStore(tmp_path, shard_size=3)
    for number, sample in enumerate(samples):
        store.write_item(f"item{number}", [sample])
        store.compact()
    shards = sorted((tmp_path / "shards").glob("*.npz"))
    assert [len(load_samples(path)) for path in shards] == [3, 3, 1]
    shutil.copy(shards[0], tmp_path / "shards" / "shard-0009.npz")
    assert store.write_manifest({})["count"] == 7
    before = {s.key: s.elf for s in iter_samples(tmp_path)}
    DatasetStore(tmp_path, shard_size=4).repack()
    assert [len(load_samples(path)) for path in sorted((tmp_path / "shards").glob("*.npz"))] == [4, 3]
    assert store.write_manifest({})["count"] == 7
    after = {s.key: s.elf for s in iter_samples(tmp_path)}
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)


def test_cli_repack_merges_the_shards_of_a_generated_dataset(generated, tmp_path):
    import shutil

    root, _, _ = generated
    shutil.copytree(root / "tiny", tmp_path / "tiny")
    env = {**os.environ, "ELFKIT_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "elfkit", "data", "repack", "tiny"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "tiny" / "shards").glob("*.npz"))) == 1
    manifest = json.loads((tmp_path / "tiny" / "manifest.json").read_text())
    before = json.loads((root / "tiny" / "manifest.json").read_text())
    assert sorted((r["key"], r["split"]) for r in manifest["samples"]) == sorted((r["key"], r["split"]) for r in before["samples"])


def test_run_order_resumes_cut_off_items_first_then_small_cells_then_the_least_sampled_density(tmp_path):
    from types import SimpleNamespace

    from elfkit.data.runner import item_scratch, run_order

    spec = SimpleNamespace(kind="hydrogen-md", name="fluid")
    rs = {"a1": 1.5, "b2": 1.5, "c3": 1.75, "d4": 1.25, "e5": 1.5, "f6": 1.75, "g7": 1.25, "h8": 1.25}
    natoms = {"g7": 128, "h8": 128}
    items = [{"key": key, "rs_bohr": value, "natoms": natoms.get(key, 64)} for key, value in rs.items()]
    (item_scratch(str(tmp_path), "fluid", "h8") / "md-checkpoint.json").write_text("{}")
    item_scratch(str(tmp_path), "fluid", "b2")
    order = [item["key"] for item in run_order(items, {"a1", "f6"}, spec, str(tmp_path))]
    assert order == ["h8", "d4", "b2", "c3", "e5", "g7"]


def test_run_order_gives_every_prototype_about_the_same_cpu_time(tmp_path):
    from types import SimpleNamespace

    from elfkit.data.runner import item_scratch, run_order

    spec = SimpleNamespace(kind="prototypes", name="metals", first=None)
    prototype = {"a": "fcc", "c": "fcc", "e": "fcc", "g": "fcc", "i": "fcc", "b": "L1_2", "d": "L1_2", "f": "L1_2", "h": "B2"}
    natoms = {"fcc": 1, "L1_2": 4, "B2": 2}
    items = [{"key": key, "prototype": p, "natoms": natoms[p], "volume_fraction": 1.0} for key, p in prototype.items()]
    (item_scratch(str(tmp_path), "metals", "f") / "pw.out").write_text("cut off")
    order = [item["key"] for item in run_order(items, {"b", "i"}, spec, str(tmp_path))]
    assert order == ["f", "a", "h", "c", "e", "g", "d"]


def test_run_order_runs_the_first_block_before_the_rest_and_in_step_within_it(tmp_path):
    from types import SimpleNamespace

    from elfkit.data.runner import item_scratch, run_order
    from elfkit.data.spec import FirstItems

    first = FirstItems(prototypes=["B2", "L1_2"], volume_fractions=[0.5], elements=["Ca", "Y"])
    spec = SimpleNamespace(kind="prototypes", name="metals", first=first)
    rows = {"a": ("fcc", 0.5), "b": ("B2", 0.5), "c": ("L1_2", 0.5), "d": ("B2", 0.5), "e": ("B2", 1.0), "f": ("fcc", 1.0), "g": ("B2", 0.5)}
    natoms = {"fcc": 1, "L1_2": 4, "B2": 2}
    items = [
        {"key": key, "prototype": p, "natoms": natoms[p], "volume_fraction": v, "elements": ["Li", "Ca"] if key == "g" else ["Ca", "Y"]}
        for key, (p, v) in rows.items()
    ]
    (item_scratch(str(tmp_path), "metals", "f") / "pw.out").write_text("cut off")
    order = [item["key"] for item in run_order(items, set(), spec, str(tmp_path))]
    assert order == ["f", "b", "c", "d", "a", "e", "g"]


def test_a_partial_metals_900_run_holds_each_of_its_six_elements_in_80_of_its_first_600():
    from collections import Counter

    from elfkit.data.runner import run_order

    spec = load_spec(REPO / "specs" / "metals-900.yaml").model_copy(update={"first": None})
    first = run_order(work_items(spec), set(), spec, None)[:600]
    counts = Counter(symbol for item in first for symbol in set(item["elements"]))
    assert min(counts[symbol] for symbol in spec.elements) >= 80, counts
    assert {item["prototype"] for item in first} == set(spec.unary) | set(spec.binary)


@pytest.mark.parametrize("name", ["metals.yaml", "metals-900.yaml"])
def test_committed_metal_specs_use_only_pseudopotentials_validated_at_their_cutoff(name):
    from elfkit.dft.qe import PACKAGE_PSEUDO_DIR, check_validated_cutoff, find_pseudopotentials

    spec = load_spec(REPO / "specs" / name)
    symbols = set(spec.elements) | {symbol for pair in spec.pairs for symbol in pair}
    find_pseudopotentials(symbols, PACKAGE_PSEUDO_DIR)
    check_validated_cutoff(symbols, spec.labels.cutoff_ev)
    validation = json.loads((REPO / "benchmarks" / "results" / "pseudo_validation.json").read_text())
    for symbol in symbols:
        assert validation[symbol]["passes"] and validation[symbol]["qe_cutoff_ev"] <= spec.labels.cutoff_ev, symbol


def test_stratified_splits_give_every_stratum_a_test_and_a_train_group():
    from elfkit.data.store import stratified_splits

    strata = {f"trajectory-{rs}-{i}": rs for rs in (1.25, 1.5, 1.75) for i in range(rs == 1.5 and 2 or 5)}
    splits = stratified_splits(strata)
    for rs in (1.25, 1.5, 1.75):
        members = [splits[g] for g, s in strata.items() if s == rs]
        assert members.count("test") == 1 and "train" in members
        assert members.count("val") == (1 if len(members) >= 4 else 0)
    assert stratified_splits(strata) == splits


def test_the_fluid_split_holds_every_density_in_test_and_train():
    rows = elfkit.data.open("hydrogen-fluid").rows()
    densities = {r["metadata"]["rs_bohr"] for r in rows}
    for split in ("train", "test"):
        assert {r["metadata"]["rs_bohr"] for r in rows if r["split"] == split} == densities
    groups = {}
    for r in rows:
        groups.setdefault(r["group"], set()).add(r["split"])
    assert all(len(s) == 1 for s in groups.values())


def test_every_metals_gpaw_element_and_pair_is_in_train_and_test():
    """metals-gpaw is split by element set (split_stratify: elements): each element's four unary
    prototype groups give one to test, one to val and two to train, each pair's two binary
    prototypes one to test and one to train, and a group never straddles splits."""
    rows = elfkit.data.open("metals-gpaw").rows()
    by_elements: dict[tuple, dict[str, set]] = {}
    split_of_group: dict[str, set] = {}
    for r in rows:
        split_of_group.setdefault(r["group"], set()).add(r["split"])
        elements = tuple(sorted(set(Atoms(r["formula"]).get_chemical_symbols())))
        by_elements.setdefault(elements, {}).setdefault(r["split"], set()).add(r["group"])
    assert sum(len(e) == 1 for e in by_elements) == 10
    assert sum(len(e) == 2 for e in by_elements) == 21
    for elements, splits in by_elements.items():
        expected = {"train": 2, "val": 1, "test": 1} if len(elements) == 1 else {"train": 1, "test": 1}
        assert {s: len(g) for s, g in splits.items()} == expected, elements
    assert all(len(splits) == 1 for splits in split_of_group.values())


def test_a_sample_read_back_keeps_the_key_its_manifest_names():
    """Hashing the read-back positions again flips a rounded digit for some metals-900 cells on
    some BLAS builds (CaCu5 Ca5Li at V/V0 0.5 among them); a stored key names one sample everywhere."""
    dataset = elfkit.data.open("metals-900", split="val")
    assert {s.key for s in dataset} == {row["key"] for row in dataset.rows()}
