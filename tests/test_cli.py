import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from elfkit.cli import app
from elfkit.io import read_field

from conftest import EXAMPLES

EXAMPLE = str(EXAMPLES / "LaH10_Fm-3m_170GPa.cif")
runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("info", "sad", "convert"):
        assert command in result.output


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "elfkit", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "sad" in result.stdout


def test_info_reports_the_numbers_of_the_example():
    result = runner.invoke(app, ["info", EXAMPLE, "--json"])
    assert result.exit_code == 0
    info = json.loads(result.output)
    assert info["formula"] == "H40La4"
    assert info["space_group"] == "Fm-3m" and info["space_group_number"] == 225
    assert info["volume_angstrom3"] == pytest.approx(5.10**3)
    assert info["electrons_total"] == 268 and info["electrons_valence"] == 52
    assert info["rs_bohr"] == pytest.approx((3 * 5.10**3 / 0.529177**3 / (4 * np.pi * 52)) ** (1 / 3), rel=1e-4)
    assert info["density_g_cm3"] == pytest.approx((4 * 138.905 + 40 * 1.008) * 1.66054 / 5.10**3, rel=1e-3)
    assert info["grid_shape"] == [45, 45, 45]
    assert info["grid_shape_symmetric"] == [48, 48, 48]


def test_info_table_names_formula_and_space_group():
    result = runner.invoke(app, ["info", EXAMPLE, "--spacing", "0.2"])
    assert result.exit_code == 0
    assert "H40La4" in result.output and "Fm-3m" in result.output and "27 x 27 x 27" in result.output


def test_sad_writes_the_requested_grid_and_format(tmp_path):
    out = tmp_path / "sad.xsf"
    result = runner.invoke(app, ["sad", EXAMPLE, "--grid", "24", "24", "30", "-o", str(out)])
    assert result.exit_code == 0, result.output
    field = read_field(out, quantity="density")
    assert field.values.shape == (24, 24, 30)
    assert field.values.sum() * field.grid.voxel_volume == pytest.approx(268, rel=5e-3)


def test_convert_between_formats_keeps_values(tmp_path):
    made = runner.invoke(app, ["sad", EXAMPLE, "--grid", "16", "16", "16", "--kind", "valence", "-o", str(tmp_path / "CHGCAR")])
    assert made.exit_code == 0, made.output
    assert runner.invoke(app, ["convert", str(tmp_path / "CHGCAR"), str(tmp_path / "rho.cube")]).exit_code == 0
    assert runner.invoke(app, ["convert", str(tmp_path / "rho.cube"), str(tmp_path / "rho.npy")]).exit_code == 0
    result = runner.invoke(
        app, ["convert", str(tmp_path / "rho.npy"), str(tmp_path / "rho.npz"), "--structure", EXAMPLE, "--quantity", "density"]
    )
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(
        read_field(tmp_path / "rho.npz").values, read_field(tmp_path / "CHGCAR").values, rtol=1e-6
    )


@pytest.mark.parametrize(
    "args, expected",
    [
        (["info", "missing.cif"], "no such file"),
        (["sad", EXAMPLE, "-o", "{tmp}/out.txt"], "cannot tell the volumetric format"),
        (["sad", "{tmp}/empty.cif", "-o", "{tmp}/x.cube"], "empty"),
        (["sad", EXAMPLE, "--kind", "core", "-o", "{tmp}/x.cube"], "unknown SAD kind"),
        (["convert", "{tmp}/empty.cif", "{tmp}/x.cube"], "cannot tell the volumetric format"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_leaves_no_files(tmp_path, args, expected):
    (tmp_path / "empty.cif").write_text("")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = subprocess.run([sys.executable, "-m", "elfkit", *args], capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.cif"]
