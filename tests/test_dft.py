"""Tiny real Quantum ESPRESSO and GPAW calculations (no mocks): two H2 molecules in a skewed cell."""

import json
import re
import subprocess
import sys

import numpy as np
import psutil
import pytest
from ase.build import bulk
from ase.io import read

from elfkit.dft import DFTError, DFTSettings, compute, kpoint_mesh
from elfkit.dft.base import refinement_factor
from elfkit.io import read_field

from conftest import DATA, EXAMPLES

SHAPE = (10, 10, 12)
STRUCTURE = DATA / "qe" / "h4_triclinic.pw.out"


@pytest.fixture(scope="module")
def h4():
    return read(STRUCTURE)


@pytest.fixture(scope="module")
def results(h4, tmp_path_factory):
    out = {}
    for engine in ("qe", "gpaw"):
        scratch = tmp_path_factory.mktemp(engine)
        out[engine] = (compute(h4, SHAPE, DFTSettings(engine=engine, cutoff_ev=400, smearing_ev=0), scratch), scratch)
    return out


def _elf_at(field, frac):
    shape = np.array(field.values.shape)
    return field.values[tuple(np.round(np.mod(frac, 1.0) * shape).astype(int) % shape)]


@pytest.mark.parametrize("engine", ["qe", "gpaw"])
def test_elf_is_on_the_requested_grid_high_at_bonds_and_low_between_molecules(results, h4, engine):
    result, _ = results[engine]
    elf = result.elf
    assert elf.values.shape == SHAPE and elf.quantity == "elf"
    assert 0.0 <= elf.values.min() and elf.values.max() <= 1.0
    frac = h4.get_scaled_positions(wrap=False)
    assert _elf_at(elf, (frac[0] + frac[1]) / 2) > 0.9
    assert _elf_at(elf, (frac[2] + frac[3]) / 2) > 0.9
    assert elf.values.min() < 0.2
    assert result.metadata["dft_grid"] == [3 * n for n in SHAPE]


def test_the_two_engines_agree_on_the_elf(results):
    difference = np.abs(results["qe"][0].elf.values - results["gpaw"][0].elf.values)
    assert difference.mean() < 0.03


def test_qe_pressure_from_the_stress_tensor_matches_pw_x(results):
    result, scratch = results["qe"]
    printed_kbar = float(re.search(r"P=\s*(-?[\d.]+)", (scratch / "pw.out").read_text()).group(1))
    assert result.pressure_gpa == pytest.approx(printed_kbar / 10, abs=0.01)
    assert np.allclose(result.stress_gpa, result.stress_gpa.T)


def test_metadata_names_engine_settings_and_hashes(results):
    qe, _ = results["qe"]
    assert re.fullmatch(r"\d+(\.\d+)+\S*", qe.metadata["engine_version"])
    assert len(qe.metadata["pseudopotentials"]["H"]["sha256"]) == 64
    assert qe.metadata["settings"]["cutoff_ev"] == 400
    gpaw, _ = results["gpaw"]
    assert len(gpaw.metadata["setups"]["H"]["sha256"]) == 64


@pytest.mark.parametrize("engine", ["qe", "gpaw"])
def test_an_scf_that_does_not_converge_is_an_error(h4, engine):
    with pytest.raises(DFTError, match="did not converge"):
        compute(h4, SHAPE, DFTSettings(engine=engine, cutoff_ev=300, max_scf_iterations=2, scf_tolerance_ev=1e-10))


def test_missing_pseudopotential_is_named():
    atoms = bulk("Th", "fcc", a=5.08)
    with pytest.raises(DFTError, match="no QE pseudopotential for Th"):
        compute(atoms, (8, 8, 8), DFTSettings(engine="qe"))


def test_kpoint_mesh_and_grid_refinement_rules():
    cell = np.diag([2.0, 4.0, 8.0])
    assert kpoint_mesh(cell, None) == (1, 1, 1)
    assert kpoint_mesh(cell, 0.5) == (7, 4, 2)
    assert refinement_factor(cell, (40, 80, 160), 300.0) == 1
    assert refinement_factor(cell, (10, 20, 40), 300.0) == 2


def test_cli_writes_elf_and_summary(tmp_path):
    out = tmp_path / "ELFCAR"
    result = subprocess.run(
        [sys.executable, "-m", "elfkit", "dft", str(STRUCTURE), "--grid", "10", "10", "12", "--cutoff", "300",
         "--smearing", "0", "-o", str(out)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "ELFCAR.json").read_text())
    assert summary["engine"] == "qe" and summary["grid"] == [10, 10, 12]
    assert read_field(out).values.shape == (10, 10, 12)


def test_cli_bad_engine_exits_2_without_files(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "elfkit", "dft", str(STRUCTURE), "--engine", "vasp", "-o", str(tmp_path / "x.cube")],
        capture_output=True, text=True,
    )
    assert result.returncode == 2 and "unknown DFT engine" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_killed_caller_leaves_no_pw_x_running(tmp_path):
    """kill -9 of the process that runs pw.x (a generate worker) takes pw.x with it, so a
    resumed run never shares its scratch folder with a leftover one."""
    script = (
        "import sys; from pathlib import Path; from ase.build import bulk;"
        "from elfkit.dft import DFTSettings, compute;"
        "atoms = bulk('Al', 'fcc', a=4.05, cubic=True).repeat(2);"
        "compute(atoms, (40, 40, 40), DFTSettings('qe', 600.0, 0.15, 0.2), scratch=Path(sys.argv[1]))"
    )
    caller = psutil.Popen([sys.executable, "-c", script, str(tmp_path)])
    pw_x = _wait_for_child(caller, "pw.x")
    caller.kill()
    caller.wait()
    gone, alive = psutil.wait_procs([pw_x], timeout=120)
    assert pw_x in gone and not alive


def _wait_for_child(parent, name: str):
    """The child process `name` of `parent`, once it has started (fails if `parent` ends first)."""
    while parent.is_running() and parent.status() != psutil.STATUS_ZOMBIE:
        found = [p for p in parent.children(recursive=True) if p.name() == name]
        if found:
            return found[0]
        psutil.wait_procs([parent], timeout=0.1)
    pytest.fail(f"{name} did not start")


def test_gpaw_gets_empty_bands_where_its_setups_have_none_and_the_whole_4f_manifold():
    from ase.build import bulk

    from elfkit.dft.gpaw_engine import band_count

    assert band_count(bulk("Ca", "fcc", a=5.5)) == 9  # 10 electrons, 5 bound states in the setup
    assert band_count(bulk("Na", "bcc", a=4.2), {"Na": "1"}) == 5  # nint(0.5) + 4, as pw.x
    assert band_count(bulk("H", "sc", a=1.0) * (4, 4, 4)) == 38  # nint(38.4), as pw.x for 64 H
    assert band_count(bulk("Ce", "fcc", a=5.16)) == 17  # 11 non-4f electrons: 6 bands, 7 for 4f1, 4 empty
    assert band_count(bulk("Ce", "hcp", a=3.65)) == 29
    assert band_count(bulk("La", "fcc", a=5.3)) == 10  # La's 4f is empty in the atom: the QE count


def test_a_packaged_pseudopotential_is_refused_below_its_validated_cutoff(tmp_path):
    from ase.build import bulk

    with pytest.raises(DFTError, match="Ca pseudopotential agrees with GPAW only from 900 eV up, not at 680 eV"):
        compute(bulk("Ca", "fcc", a=5.5), (12, 12, 12), DFTSettings("qe", 680.0, 0.5, 0.2), scratch=tmp_path)
    assert not any(tmp_path.iterdir())


def test_no_engine_run_writes_into_the_working_directory(h4, tmp_path, monkeypatch):
    """pw.x and pp.x write CRASH and input_tmp.in into their working directory, GPAW its
    logs: every engine runs in a scratch folder, successful or not, never where elfkit started."""
    from elfkit.dft.qe import run_program

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    compute(h4, SHAPE, DFTSettings("qe", cutoff_ev=300, smearing_ev=0))
    for engine in ("qe", "gpaw"):
        with pytest.raises(DFTError, match="did not converge"):
            compute(h4, SHAPE, DFTSettings(engine, cutoff_ev=300, max_scf_iterations=1, scf_tolerance_ev=1e-10))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "broken.in").write_text("no namelists here\n")
    with pytest.raises(DFTError, match="pw.x failed"):
        run_program("pw.x", scratch / "broken.in", scratch / "broken.out", scratch)
    assert (scratch / "CRASH").is_file()
    assert list(cwd.iterdir()) == []
