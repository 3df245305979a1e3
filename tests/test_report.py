"""`elfkit report`: the page's contents (cell box, one legend entry per element, title,
metrics with --ref, no machine paths, float32 payload), slices through chosen planes, the
people-friendly terminal output, and the page in a real headless browser."""

import base64
import json
import re
import shutil
import subprocess
import sys
from html import unescape

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from typer.testing import CliRunner

from elfkit.analysis.slices import SliceError, parse_plane, plane_lattice, plane_slice
from elfkit.analysis.summary import comparison_lines, topology_lines
from elfkit.cli import app
from elfkit.field import Field
from elfkit.grid import Grid
from elfkit.io import save_field

runner = CliRunner()
CELLS = {
    "cubic": lambda: bulk("NaCl", "rocksalt", a=5.6, cubic=True),
    "hexagonal": lambda: bulk("ZnO", "wurtzite", a=3.25, c=5.2),
    "triclinic": lambda: Atoms("NaBe", scaled_positions=[[0, 0, 0], [0.45, 0.55, 0.5]],
                               cell=[3.2, 3.4, 3.6, 80, 85, 75], pbc=True),
}


def elf_like(atoms, shape=(20, 20, 22), width=0.5):
    """An ELF-shaped field: Gaussian maxima (0.9) at the atoms and their periodic images, 0.02 floor."""
    frac = Grid(atoms.cell.array, shape).frac_coords()
    values = np.zeros(shape)
    for f in atoms.get_scaled_positions():
        d = frac - f
        d -= np.round(d)
        values += np.exp(-np.linalg.norm(d @ atoms.cell.array, axis=-1) ** 2 / width)
    return np.clip(0.9 * values, 0.02, 0.98)


def _write(folder, name, atoms, values):
    path = folder / name
    save_field(path, Field(atoms, values, "elf"))
    return path


def _figure(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="figure">(.*?)</script>', html, re.S).group(1))


def _array(entry):
    """A plotly JSON array: plain list or {dtype, bdata}."""
    if isinstance(entry, dict):
        return np.frombuffer(base64.b64decode(entry["bdata"]), dtype=np.dtype(entry["dtype"]))
    return np.array(entry, dtype=float)


@pytest.fixture(scope="module")
def cubic_report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    atoms = CELLS["cubic"]()
    elf = _write(folder, "nacl.elf.npz", atoms, elf_like(atoms))
    ref = _write(folder, "nacl_ref.elf.npz", atoms, np.clip(elf_like(atoms, width=0.55), 0, 1))
    result = runner.invoke(app, ["report", str(elf), "--ref", str(ref), "--plane", "001", "--plane", "1-10",
                                 "--through-atom", "2", "-o", str(folder / "out")])
    assert result.exit_code == 0, result.output
    return folder, result


def test_page_is_named_without_the_input_extension_and_has_a_title(cubic_report):
    folder, _ = cubic_report
    assert sorted(p.name for p in (folder / "out").iterdir()) == sorted(
        ["nacl.html", "isosurface.png", "slice_001_atom2.png", "slice_1-10_atom2.png", "parity.png", "histograms.png",
         "residual_spectrum.png"])
    html = (folder / "out" / "nacl.html").read_text()
    assert re.search(r"<title>ELF of Cl4Na4 \(nacl\.elf\.npz\)", html)


def test_page_shows_the_cell_box_and_one_legend_entry_per_element(cubic_report):
    folder, _ = cubic_report
    traces = _figure((folder / "out" / "nacl.html").read_text())["data"]
    box = next(t for t in traces if t["name"] == "unit cell")
    x, y, z = (_array(box[a]) for a in "xyz")
    ends = np.stack([x, y, z], 1)[~np.isnan(x)].reshape(12, 2, 3)
    assert np.allclose(np.linalg.norm(ends[:, 1] - ends[:, 0], axis=1), 5.6, atol=1e-4)
    atoms = {t["name"]: t for t in traces if t["name"] in ("Na", "Cl")}
    assert set(atoms) == {"Na", "Cl"} and atoms["Na"]["marker"]["color"] != atoms["Cl"]["marker"]["color"]
    assert all(t.get("showlegend", True) for t in atoms.values())
    # periodic images at faces, edges and corners: 4 Na + 4 Cl in the cell become 14 + 13
    assert len(_array(atoms["Na"]["x"])) + len(_array(atoms["Cl"]["x"])) == 27
    layout = _figure((folder / "out" / "nacl.html").read_text())["layout"]
    assert layout["scene"]["aspectmode"] == "data" and "Å" in layout["scene"]["xaxis"]["title"]["text"]


def test_page_opens_the_slider_at_the_networking_value_and_says_so(cubic_report):
    folder, _ = cubic_report
    html = (folder / "out" / "nacl.html").read_text()
    slider = _figure(html)["layout"]["sliders"][0]
    phi = float(re.search(r"starts at the networking value φ = ([0-9.]+)", html).group(1))
    assert float(slider["steps"][slider["active"]]["label"]) == pytest.approx(phi)


def test_page_with_ref_holds_the_metrics_and_the_comparison_pictures(cubic_report):
    folder, _ = cubic_report
    html = (folder / "out" / "nacl.html").read_text()
    metrics = re.search(r'<table id="metrics">(.*?)</table>', html, re.S).group(1)
    assert "R²" in metrics and "mean absolute error" in metrics
    assert html.count("data:image/png;base64,") == 6
    for heading in ("Parity", "Histograms", "Residual spectrum", "Slice (1 -1 0)"):
        assert f"<strong>{heading}</strong>" in html


def test_page_holds_no_machine_paths_and_loads_nothing_from_elsewhere(cubic_report):
    folder, _ = cubic_report
    html = (folder / "out" / "nacl.html").read_text()
    assert str(folder) not in html and "/tmp/" not in html and "/home/" not in html
    assert not re.search(r"<script[^>]+src=", html) and "http://" not in html.split('id="plotly-gz"')[0]


def test_page_payload_is_float32_and_small_for_the_grid(cubic_report):
    folder, _ = cubic_report
    html = (folder / "out" / "nacl.html").read_text()
    meshes = [t for t in _figure(html)["data"] if t["type"] == "mesh3d"]
    assert meshes and {t["x"]["dtype"] for t in meshes if "x" in t} == {"f4"}
    assert {t["i"]["dtype"] for t in meshes if "i" in t} <= {"u2", "i4"}
    vertices = sum(len(_array(t["x"])) for t in meshes if "x" in t)
    figure_bytes = len(re.search(r'id="figure">(.*?)</script>', html, re.S).group(1))
    # 3 float32 coordinates and about 2 triangles of 3 uint16 per vertex, base64: ~32 bytes per vertex
    assert figure_bytes < 40 * vertices + 200_000
    assert len(html.encode()) < 5e6


def test_report_prints_rounded_numbers_with_units_and_no_none(cubic_report):
    _, result = cubic_report
    out = result.stdout
    assert "None" not in out and "networking value φ: 0." in out and "mean absolute error" in out
    assert "D (" in out  # dimensionality in words, e.g. "3D (percolating network)"
    for number in re.findall(r"\d+\.\d+", out):
        assert len(number.split(".")[1]) <= 4, number


def test_slices_lie_on_the_chosen_plane_and_reach_the_cell_edges():
    atoms = CELLS["cubic"]()
    shape = (20, 20, 20)
    frac = Grid(atoms.cell.array, shape).frac_coords()
    field = Field(atoms, 0.5 + 0.4 * np.cos(2 * np.pi * frac[..., 2]), "elf")
    on_001 = plane_slice(field, (0, 0, 1), (0.1, 0.3, 0.25))
    assert np.allclose(on_001.values, 0.5 + 0.4 * np.cos(2 * np.pi * 0.25), atol=1e-9)
    on_100 = plane_slice(field, (1, 0, 0))
    assert np.allclose(on_100.values[0], on_100.values[-1]) and np.allclose(on_100.values[:, 0], on_100.values[:, -1])
    assert on_100.values.max() == pytest.approx(0.9) and on_100.values.min() == pytest.approx(0.1)
    # (001) through the origin of rock salt: Na at 4 corners and the face centre, Cl at 4 edge midpoints
    symbols = plane_slice(Field(atoms, elf_like(atoms, shape), "elf"), (0, 0, 1)).atom_symbols
    assert symbols.count("Na") == 5 and symbols.count("Cl") == 4


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("hkl", [(0, 0, 1), (1, 1, 0), (1, -1, 1), (2, 1, 0)])
def test_plane_lattice_spans_one_period_of_the_plane(cell, hkl):
    lattice = CELLS[cell]().cell.array
    u, v = plane_lattice(lattice, hkl)
    assert np.dot(u, hkl) == 0 and np.dot(v, hkl) == 0
    normal = np.array(hkl) @ np.linalg.inv(lattice).T
    area = np.cross(u @ lattice, v @ lattice)
    # a primitive 2D cell of plane (hkl) has area V |h a* + k b* + l c*|, facing along that normal
    assert np.linalg.norm(area) == pytest.approx(abs(np.linalg.det(lattice)) * np.linalg.norm(normal))
    assert area @ normal > 0


@pytest.mark.parametrize("text, hkl", [("001", (0, 0, 1)), ("1-10", (1, -1, 0)), ("1,-1,0", (1, -1, 0)),
                                        ("2 2 0", (1, 1, 0)), ("-1 0 0", (-1, 0, 0))])
def test_plane_options_are_read_as_miller_indices(text, hkl):
    assert parse_plane(text) == hkl


@pytest.mark.parametrize("text", ["000", "12", "abc", "1 2", "0 0 1 1", "1.5 0 0"])
def test_bad_plane_options_are_refused(text):
    with pytest.raises(SliceError, match="--plane"):
        parse_plane(text)


def test_terminal_lines_explain_codes_and_round_numbers():
    result = {
        "networking_value": None, "networking_value_hydrogen": None, "molecularity_index": None, "hydrogen_fraction": 0.0,
        "dimensionality_vs_isovalue": [{"isovalue": 0.1, "dimension": 3}, {"isovalue": 0.15, "dimension": 3},
                                       {"isovalue": 0.2, "dimension": 0}, {"isovalue": 0.25, "dimension": None}],
        "persistence_threshold": 0.02, "low_density_limit": 0.001, "morse_sum": 0,
        "counts": {"maxima": 1, "saddles": 3, "rings": 3, "minima": 1}, "counts_before_simplification":
        {"maxima": 2, "saddles": 4, "rings": 3, "minima": 1}, "counts_low_density": {"maxima": 0, "saddles": 1, "rings": 1, "minima": 0},
        "critical_points": [],
    }
    text = "\n".join(topology_lines(result))
    assert "None" not in text and "ELF 0.10-0.15: 3D (percolating network)" in text and "ELF 0.25: no domain" in text
    assert "networking value φ: none (no domain percolates" in text
    assert "1 maximum, 3 saddles, 3 rings, 1 minimum; Morse sum 0" in text
    assert "warning: 2 critical points lie where the atoms' density is below 0.001 electrons/Å³" in text
    comparison = {"r2": 0.98765432, "mae": 0.0123456, "rmse": 0.02, "max_error": 0.2, "wasserstein_1": 0.001,
                  "histogram_overlap": 0.95, "regions": {}, "nearest_neighbour_hh_angstrom": 0.7412345,
                  "long_wavelength_power_fraction": 0.123456,
                  "autocorrelation": {"correlation_length_angstrom": 0.31234567891234567}}
    text = "\n".join(comparison_lines(comparison))
    assert re.search(r"correlation length of the residual +0\.31 Å$", text, re.M) and "0.9877" in text
    tiny = {**comparison, "mae": 1.7e-6, "max_error": 0.0}
    text = "\n".join(comparison_lines(tiny))
    assert re.search(r"mean absolute error +1\.7e-06$", text, re.M) and "identical" in text


def test_identical_inputs_give_a_clean_parity_and_no_spectrum_floor(tmp_path):
    from elfkit.analysis.metrics import compare
    from elfkit.analysis.plots import spectrum_plot

    atoms = CELLS["hexagonal"]()
    field = Field(atoms, elf_like(atoms, (12, 12, 16)), "elf")
    result = compare(field, field)
    assert "identical" in "\n".join(comparison_lines(result))
    assert spectrum_plot(result, tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(BROWSER is None, reason="no headless Chromium here (make test installs Debian's chromium when it can)")
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_page_renders_in_a_headless_browser(cell, tmp_path):
    atoms = CELLS[cell]()
    elf = _write(tmp_path, f"{cell}.npz", atoms, elf_like(atoms))
    ref = _write(tmp_path, f"{cell}_ref.npz", atoms, elf_like(atoms, width=0.55))
    made = subprocess.run([sys.executable, "-m", "elfkit", "report", str(elf), "--ref", str(ref), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    page = tmp_path / "out" / f"{cell}.html"
    shot = tmp_path / "shot.png"
    common = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
              f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1400", "--virtual-time-budget=20000"]
    run = subprocess.run([*common, "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=180)
    dom = run.stdout
    assert 'data-view3d="ready"' in dom, "the 3D view did not load"
    assert "Uncaught" not in run.stderr, [line for line in run.stderr.splitlines() if "Uncaught" in line]
    legend = re.findall(r'class="legendtext"[^>]*>([^<]+)<', dom)
    elements = sorted(set(atoms.get_chemical_symbols()))
    assert "unit cell" in legend and [name for name in legend if name in elements] == elements
    assert '<table id="metrics">' in dom
    subprocess.run([*common, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=180)
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.std() > 10, "the screenshot is blank"


def test_a_rough_field_is_meshed_on_a_coarser_grid_to_keep_the_page_small(monkeypatch):
    from elfkit.analysis import page

    atoms = CELLS["cubic"]()
    field = Field(atoms, np.random.default_rng(0).uniform(0.0, 1.0, (24, 24, 24)), "elf")
    isovalues = [0.3, 0.5, 0.7]
    monkeypatch.setattr(page, "MESH_BYTES", 10**9)
    _, shape = page.slider_meshes(field, isovalues)
    monkeypatch.setattr(page, "MESH_BYTES", 200_000)
    meshes, coarser = page.slider_meshes(field, isovalues)
    assert shape == (24, 24, 24) and max(coarser) < 24
    assert sum(v.nbytes + f.nbytes for v, f in meshes) <= 200_000


def test_isosurface_of_a_resampled_field_stays_on_the_same_surface():
    from elfkit.analysis.plots import isosurface_mesh

    atoms = CELLS["cubic"]()
    frac = Grid(atoms.cell.array, (40, 40, 40)).frac_coords()
    field = Field(atoms, 0.5 + 0.4 * np.cos(2 * np.pi * frac[..., 0]), "elf")
    for shape in (None, (20, 20, 20), (13, 17, 11)):
        verts, faces = isosurface_mesh(field, 0.5, shape)
        # the surface ELF = 0.5 is the two planes x = a/4 and x = 3a/4
        assert len(faces) and np.allclose(np.minimum(abs(verts[:, 0] - 1.4), abs(verts[:, 0] - 4.2)), 0, atol=0.12)


def test_an_isosurface_comparison_draws_one_panel_per_field(tmp_path):
    from PIL import Image

    from elfkit.analysis.plots import isosurface_comparison_png, isosurface_png

    atoms = CELLS["cubic"]()
    frac = Grid(atoms.cell.array, (20, 20, 20)).frac_coords()
    field = Field(atoms, 0.5 + 0.4 * np.cos(2 * np.pi * frac[..., 0]), "elf")
    single = isosurface_png(field, 0.5, tmp_path / "one.png", "one")
    pair = isosurface_comparison_png({"predicted": field, "DFT": field}, 0.5, tmp_path / "two.png", "title")
    width_single, width_pair = Image.open(single).size[0], Image.open(pair).size[0]
    assert 1.6 * width_single < width_pair < 2.4 * width_single


def test_page_shows_the_topology_warnings_and_the_points_listed_apart(tmp_path):
    from elfkit.analysis.page import write_page
    from elfkit.analysis.topology import topology

    atoms = CELLS["hexagonal"]()
    field = Field(atoms, elf_like(atoms, (12, 12, 16)), "elf")
    result = topology(field)
    apart = result["critical_points"][:2]
    result.update(low_density_critical_points=apart, counts_low_density={"maxima": 0, "saddles": 2, "rings": 0, "minima": 0},
                  morse_sum=1)
    html = write_page(tmp_path / "p.html", field, result, "zno.npz", []).read_text()
    warnings = unescape(re.search(r'<div class="warnings" id="warnings">(.*?)</div>', html, re.S).group(1))
    assert "Morse sum" in warnings and "not 0" in warnings and "2 critical points lie where the atoms' density" in warnings
    assert '<table id="low-density-points">' in html


def test_hovering_an_atom_gives_the_number_through_atom_takes(cubic_report):
    folder, _ = cubic_report
    traces = _figure((folder / "out" / "nacl.html").read_text())["data"]
    na = next(t for t in traces if t["name"] == "Na")
    assert "Na, atom 1<br>fractional (0.000, 0.000, 0.000)" in na["text"]
    assert "Na, atom 1 (periodic image)<br>fractional (1.000, 1.000, 1.000)" in na["text"]
