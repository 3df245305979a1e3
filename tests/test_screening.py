"""Template screening (`elfkit.screening`, `elfkit screen`): candidates (stripped sublattices,
compressed cells), the distances between interstitial ELF maxima and removed sites, and the
command with a small untrained network (random weights) as its model file."""

import csv
import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from typer.testing import CliRunner

from elfkit.cli import app
from elfkit.errors import ElfkitError
from elfkit.field import Field
from elfkit.io import read_field
from elfkit.models.checkpoint import save_model
from elfkit.screening import (SITE_MATCH_ANGSTROM, compress, make_candidates, run_screen, site_report,
                              strip_elements)

from conftest import EXAMPLES
from test_models import _random_network

LAH10 = EXAMPLES / "LaH10_Fm-3m_170GPa.cif"
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An untrained U-Net whose training domain is Na only (La is out of its domain)."""
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_model(path, _random_network(), {"name": "tiny", "architecture": "periodic-unet", "domain": {"elements": ["Na"]}})


@pytest.fixture(scope="module")
def screened(tiny_model, tmp_path_factory):
    """`elfkit screen` of LaH10 (H stripped) and bcc Na, each at V/V0 = 1 and 0.7, in this process."""
    folder = tmp_path_factory.mktemp("screen")
    bulk("Na", "bcc", a=4.2, cubic=True).write(folder / "Na_bcc.vasp", format="vasp")
    arguments = ["screen", str(LAH10), str(folder / "Na_bcc.vasp"), "--strip", "H", "--model", str(tiny_model),
                 "--pressure-scale", "1,0.7", "--workers", "1", "-o", str(folder / "out")]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, (result.exception, result.output)
    return result, folder / "out"


def _csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_strip_h_leaves_the_la_sublattice(lah10):
    (candidate,) = make_candidates(lah10, str(LAH10), strip=["H"])
    assert set(candidate.atoms.get_chemical_symbols()) == {"La"}
    assert len(candidate.atoms) == lah10.get_chemical_symbols().count("La") == 4
    assert candidate.removed.get_chemical_symbols() == ["H"] * lah10.get_chemical_symbols().count("H")
    assert np.allclose(candidate.atoms.cell.array, lah10.cell.array)
    assert candidate.volume_fraction == 1.0


def test_strip_refuses_an_empty_result_and_unknown_elements(lah10):
    with pytest.raises(ElfkitError, match="removing H, La leaves no atoms"):
        strip_elements(lah10, ["H", "La"], "LaH10.cif")
    with pytest.raises(ElfkitError, match="Xx: not a chemical element"):
        strip_elements(lah10, ["Xx"])


def test_compression_scales_the_volume_by_exactly_the_fraction(lah10):
    candidates = make_candidates(lah10, str(LAH10), strip=["H"], volume_fractions=[0.5, 0.6, 1.2])
    assert [c.volume_fraction for c in candidates] == [0.5, 0.6, 1.2]
    for candidate in candidates:
        assert candidate.atoms.get_volume() / lah10.get_volume() == pytest.approx(candidate.volume_fraction, rel=1e-12)
        assert np.allclose(candidate.atoms.get_scaled_positions(), lah10[[s == "La" for s in lah10.symbols]].get_scaled_positions())
        assert np.allclose(candidate.removed.get_scaled_positions(), lah10[[s == "H" for s in lah10.symbols]].get_scaled_positions())
        assert candidate.elf_name == f"LaH10_Fm-3m_170GPa_V{candidate.volume_fraction:g}.ELFCAR"
    for bad in (0.0, -0.5, 1.6, float("nan")):
        with pytest.raises(ElfkitError, match="must lie in"):
            compress(lah10, bad)


def test_site_distances_on_a_field_with_maxima_at_known_points():
    """Gaussians centred on grid points: a nucleus at the origin (a nuclear maximum) and two
    interstitial maxima at (2, 2, 2) and (2, 0, 0) Å in a 4 Å cubic cell on a 0.2 Å grid."""
    length, n = 4.0, 20
    atoms = Atoms("Na", positions=[[0, 0, 0]], cell=[length] * 3, pbc=True)
    axis = np.arange(n) * length / n
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    values = np.full((n, n, n), 0.1)
    for centre, height in (([0, 0, 0], 0.6), ([2, 2, 2], 0.8), ([2, 0, 0], 0.7)):
        delta = points - centre
        delta -= length * np.round(delta / length)
        values += height * np.exp(-(delta**2).sum(axis=-1) / (2 * 0.5**2))
    sites = np.array([[2.3, 2.0, 2.0], [2.0, 3.7, 0.0], [3.9, 0.0, 0.1]])
    report = site_report(Field(atoms, values, "elf"), sites)
    assert sorted(tuple(np.round(m.cart, 6)) for m in report.maxima) == [(2, 0, 0), (2, 2, 2)]
    expected = [0.3, 0.3, np.hypot(1.9, 0.1)]  # the second site meets (2, 0, 0) across the periodic boundary
    assert report.site_distance == pytest.approx(expected, abs=1e-9)
    assert [tuple(np.round(report.maxima[i].cart, 6)) for i in report.site_nearest] == [(2, 2, 2), (2, 0, 0), (2, 0, 0)]
    assert report.maximum_distance == pytest.approx([0.3, 0.3], abs=1e-9)
    summary = report.summary()
    assert summary["removed_sites"] == 3
    assert summary["site_distance_mean_angstrom"] == pytest.approx(np.mean(expected), abs=1e-4)
    assert summary["site_distance_max_angstrom"] == pytest.approx(expected[2], abs=1e-4)
    assert SITE_MATCH_ANGSTROM == 0.5 and summary["sites_matched_fraction"] == pytest.approx(2 / 3, abs=1e-4)


def test_the_command_writes_the_ranked_table_the_maxima_and_an_elfcar_per_candidate(screened, lah10):
    result, out = screened
    rows = _csv(out / "screen.csv")
    assert len(rows) == 4 and {r["formula"] for r in rows} == {"La4", "Na2"}
    scores = [float(r["template_score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert (out / "screen.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for row in rows:
        elf = read_field(out / row["elf_file"])
        assert elf.quantity == "elf" and row["elf_file"].endswith(f"_V{float(row['volume_fraction']):g}.ELFCAR")
        assert elf.atoms.get_chemical_formula(mode="hill") == row["formula"]
        if row["formula"] == "La4":
            assert row["removed"] == "H40" and row["removed_sites"] == "40"
            assert elf.atoms.get_volume() == pytest.approx(lah10.get_volume() * float(row["volume_fraction"]), rel=1e-6)
        else:
            assert row["removed"] == "" and row["removed_sites"] == ""
    maxima = _csv(out / "maxima.csv")
    assert {r["structure"] for r in maxima} == {str(LAH10)}
    for fraction in ("1.0", "0.7"):
        sites = [r for r in maxima if r["kind"] == "site" and r["volume_fraction"] == fraction]
        row = next(r for r in rows if r["formula"] == "La4" and r["volume_fraction"] == fraction)
        assert len(sites) == 40 and {r["element"] for r in sites} == {"H"}
        distances = [float(r["nearest_angstrom"]) for r in sites]
        assert float(row["site_distance_mean_angstrom"]) == pytest.approx(np.mean(distances), abs=1e-3)
        assert float(row["site_distance_max_angstrom"]) == pytest.approx(max(distances), abs=1e-4)
        assert len([r for r in maxima if r["kind"] == "maximum" and r["volume_fraction"] == fraction]) == int(row["interstitial_maxima"])


def test_out_of_domain_warnings_come_once_per_candidate(screened):
    result, _ = screened
    warnings = [line for line in result.stderr.splitlines() if line.startswith("elfkit: warning:")]
    assert len(warnings) == 2 and all("elements La are outside the training set (Na)" in w for w in warnings)
    assert any("V/V0 = 0.7" in w for w in warnings)


def test_the_elf_path_gives_the_rows_of_the_predicted_elfs(screened, tmp_path):
    _, out = screened
    rows = [r for r in _csv(out / "screen.csv") if r["volume_fraction"] == "1.0"]
    elfs = sum((["--elf", str(out / r["elf_file"])] for r in rows), [])
    result = runner.invoke(app, ["screen", *(r["structure"] for r in rows), *elfs, "--strip", "H", "-o", str(tmp_path / "again")])
    assert result.exit_code == 0, (result.exception, result.output)
    again = {r["structure"]: r for r in _csv(tmp_path / "again" / "screen.csv")}
    for row in rows:
        for key in ("template_score", "interstitial_maxima", "site_distance_mean_angstrom", "sites_matched_fraction"):
            assert again[row["structure"]][key] == row[key]


def test_the_library_gives_the_scores_of_the_command_on_dask_workers(tiny_model, lah10, tmp_path):
    sodium = bulk("Na", "fcc", a=5.0, cubic=True)
    sodium.write(tmp_path / "Na_fcc.vasp", format="vasp")
    arguments = [str(LAH10), str(tmp_path / "Na_fcc.vasp"), "--strip", "H", "--model", str(tiny_model),
                 "--spacing", "0.2", "--workers", "2", "-o", str(tmp_path / "out")]
    done = subprocess.run([sys.executable, "-m", "elfkit", "screen", *arguments], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    command = {r["structure"]: r for r in _csv(tmp_path / "out" / "screen.csv")}
    candidates = make_candidates(lah10, str(LAH10), "LaH10", ["H"]) + make_candidates(sodium, str(tmp_path / "Na_fcc.vasp"), "Na_fcc")
    results = run_screen(candidates, tiny_model, spacing=0.2, workers=1)
    assert [r.candidate.source for r in results] == list(command)
    for result in results:
        row = command[result.candidate.source]
        assert float(row["template_score"]) == result.row["template_score"]
        assert int(row["interstitial_maxima"]) == result.row["interstitial_maxima"]
    lanthanum = next(r for r in results if r.candidate.source == str(LAH10))
    assert float(command[str(LAH10)]["site_distance_mean_angstrom"]) == lanthanum.row["site_distance_mean_angstrom"]


BAD = [
    (["{missing}", "--model", "{model}"], "missing.cif: no such file"),
    (["{lah10}", "--strip", "H", "--strip", "La", "--model", "{model}"], "removing H, La leaves no atoms"),
    (["{lah10}", "--strip", "Xx", "--model", "{model}"], "Xx: not a chemical element"),
    (["{lah10}", "--elf", "{lah10}", "--model", "{model}"], "give either --elf files or --model, not both"),
    (["{lah10}"], "give --model, or one --elf file per structure"),
    (["{lah10}", "--model", "{model}", "--pressure-scale", "0"], "V/V0 = 0 (--pressure-scale): it must lie in (0, 1.5]"),
    (["{lah10}", "--model", "{model}", "--pressure-scale", "0.5,1.6"], "V/V0 = 1.6 (--pressure-scale)"),
    (["{lah10}", "--model", "{model}", "--pressure-scale", "half"], "--pressure-scale half: give numbers"),
    (["{lah10}", "--elf", "{lah10}", "--pressure-scale", "0.5"], "--pressure-scale needs --model"),
    (["{lah10}", "--model", "{missing}"], "missing.cif: no such model file or shipped model"),
    (["{lah10}", "--model", "{model}", "--workers", "0"], "--workers must be at least 1, got 0"),
    (["{lah10}", "--model", "{model}", "--spacing", "0"], "grid spacing must be positive"),
]


@pytest.mark.parametrize("arguments, expected", BAD)
def test_bad_input_exits_2_with_one_line_and_no_output(arguments, expected, tiny_model, tmp_path):
    places = {"lah10": str(LAH10), "model": str(tiny_model), "missing": str(tmp_path / "missing.cif")}
    result = runner.invoke(app, ["screen", *(a.format(**places) for a in arguments), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, (result.exception, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("elfkit: error: ") and expected in lines[0], result.stderr
    assert not (tmp_path / "out").exists() and list(tmp_path.glob(".out*")) == []
