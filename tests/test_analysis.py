"""Analyses against known answers: synthetic fields whose metrics, critical points and
percolation thresholds are known analytically, and real QE ELF files."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms
from scipy import ndimage

from elfkit.analysis.critical import counts, critical_points, match_critical_points, morse_sum
from elfkit.analysis.metrics import compare
from elfkit.analysis.network import dimensionality_vs_isovalue, domains, molecularity_index, networking_value
from elfkit.analysis.templates import BAND_HALF_WIDTH, NUCLEAR_RADIUS_FRACTION, smoothstep, template_basins, template_score
from elfkit.errors import GridError
from elfkit.field import Field

from conftest import DATA, REPO


def gaussian_lattice(length, n, sigma, centres, images=2):
    """Sum of Gaussians (Å) at `centres` (Cartesian) and their periodic images in a cubic cell."""
    x = np.arange(n) / n * length
    grid = np.stack(np.meshgrid(x, x, x, indexing="ij"), -1)
    total = np.zeros((n, n, n))
    shifts = np.array(list(np.ndindex(*(2 * images + 1,) * 3))) - images
    for centre in centres:
        for s in shifts:
            total += np.exp(-((grid - centre - s * length) ** 2).sum(-1) / (2 * sigma**2))
    return total


@pytest.fixture(scope="module")
def simple_cubic():
    """Gaussians on a simple cubic lattice (a = 2 Å), centre off the grid points."""
    atoms = Atoms("H", positions=[[0.13, 0.07, 0.0]], cell=[2.0] * 3, pbc=True)
    values = gaussian_lattice(2.0, 40, 0.45, atoms.positions)
    return Field(atoms, values / values.max(), "elf")


def test_networking_value_of_a_simple_cubic_lattice_is_its_saddle_value():
    atoms = Atoms("H", positions=[[0, 0, 0]], cell=[2.0] * 3, pbc=True)
    values = gaussian_lattice(2.0, 40, 0.45, atoms.positions)
    values /= values.max()
    saddle = values[20, 0, 0]
    phi = networking_value(Field(atoms, values, "elf"))
    assert saddle - 0.0015 <= phi <= saddle


def test_layers_are_2d_and_chains_1d_never_3d():
    atoms = Atoms("H", positions=[[0, 0, 0]], cell=[2.0] * 3, pbc=True)
    n = 30
    z = np.arange(n) / n
    layers = np.broadcast_to(0.5 + 0.5 * np.cos(2 * np.pi * z), (n, n, n)).copy()
    assert networking_value(Field(atoms, layers, "elf")) is None
    assert {r["dimension"] for r in dimensionality_vs_isovalue(Field(atoms, layers, "elf"))} == {2}
    x = np.arange(n) / n * 2.0
    xx, yy = np.meshgrid(x, x, indexing="ij")
    chains = np.broadcast_to(np.exp(-((xx - 1) ** 2 + (yy - 1) ** 2) / 0.18)[:, :, None], (n, n, n)).copy()
    dims = {r["dimension"] for r in dimensionality_vs_isovalue(Field(atoms, chains, "elf")) if r["isovalue"] >= 0.05}
    assert dims == {1}


def test_domain_winding_counts_a_diagonal_chain_as_one_dimensional():
    n = 12
    values = np.zeros((n, n, n))
    for i in range(n):
        values[i, i, 0] = values[i, (i + 1) % n, 0] = 1.0
    found = domains(values, 0.5)
    assert list(found.dimension.values()) == [1]


def test_molecularity_index_of_a_dimer_is_the_value_between_its_atoms():
    atoms = Atoms("H2", positions=[[2.0, 2.0, 1.6], [2.0, 2.0, 2.4]], cell=[4.0] * 3, pbc=True)
    values = gaussian_lattice(4.0, 40, 0.35, atoms.positions, images=1)
    values /= values.max()
    middle = values[20, 20, 20]
    assert middle - 0.0015 <= molecularity_index(Field(atoms, values, "elf")) <= middle
    assert networking_value(Field(atoms, values, "elf")) is None


def test_critical_points_of_a_gaussian_lattice(simple_cubic):
    points = critical_points(simple_cubic)
    assert counts(points) == {"maxima": 1, "saddles": 3, "rings": 3, "minima": 1}
    assert morse_sum(points) == 0
    (maximum,) = [p for p in points if p.type == "maximum"]
    delta = np.array(maximum.cart) - [0.13, 0.07, 0.0]
    assert np.linalg.norm(delta - 2.0 * np.round(delta / 2.0)) < 0.01
    (minimum,) = [p for p in points if p.type == "minimum"]
    assert np.allclose(np.mod(np.array(minimum.cart) - [1.13, 1.07, 1.0] + 1, 2.0) - 1, 0, atol=0.01)


def test_morse_sum_of_a_smooth_random_periodic_field_is_zero():
    atoms = Atoms("H", positions=[[0, 0, 0]], cell=[3.0, 3.3, 3.6], pbc=True)
    values = ndimage.gaussian_filter(np.random.default_rng(5).random((30, 33, 36)), 2.0, mode="wrap")
    points = critical_points(Field(atoms, values, "elf"), persistence=0.0)
    assert len(points) > 50 and morse_sum(points) == 0
    resolved = critical_points(Field(atoms, values, "elf"), persistence=0.01 * np.ptp(values))
    assert morse_sum(resolved) == 0 and sum(p.refined for p in resolved) >= 0.85 * len(resolved)


def test_matching_finds_a_shifted_copy(simple_cubic):
    shifted = Field(simple_cubic.atoms, np.roll(simple_cubic.values, 1, axis=0), "elf")
    result = match_critical_points(critical_points(shifted), critical_points(simple_cubic), simple_cubic.atoms.cell.array, tol=0.2)
    assert result["recall"] == 1.0 and result["precision"] == 1.0
    assert result["position_error_angstrom"] == pytest.approx(0.05, abs=0.005)


def test_compare_separates_long_and_short_wavelength_residuals():
    atoms = Atoms("H2", positions=[[0, 0, 0], [0.75, 0, 0]], cell=[4.0] * 3, pbc=True)
    n = 32
    u = np.arange(n) / n
    ref_values = 0.5 + 0.3 * np.cos(2 * np.pi * u)[:, None, None] * np.ones((n, n, n))
    ref = Field(atoms, ref_values, "elf")
    long = compare(Field(atoms, ref_values + 0.01 * np.cos(2 * np.pi * u)[None, :, None], "elf"), ref)
    short = compare(Field(atoms, ref_values + 0.01 * np.cos(2 * np.pi * 8 * u)[None, :, None], "elf"), ref)
    assert long["long_wavelength_power_fraction"] == pytest.approx(1.0)
    assert short["long_wavelength_power_fraction"] == pytest.approx(0.0, abs=1e-9)
    assert long["autocorrelation"]["correlation_length_angstrom"] > 4 * short["autocorrelation"]["correlation_length_angstrom"]
    assert long["mae"] == pytest.approx(0.02 / np.pi, rel=0.02)
    same = compare(ref, ref)
    assert same["r2"] == 1.0 and same["histogram_overlap"] == pytest.approx(1.0) and same["wasserstein_1"] == 0.0
    offset = compare(Field(atoms, ref_values + 0.05, "elf"), ref)
    assert offset["wasserstein_1"] == pytest.approx(0.05)


def test_evaluation_residual_spectrum_puts_a_plane_wave_in_its_own_shell():
    from elfkit.evaluation import SPECTRUM_EDGES_PER_ANGSTROM, residual_spectrum

    atoms = Atoms("H", cell=[4.0] * 3, pbc=True)
    u = np.arange(32) / 32
    for waves in (1, 5):
        spectrum = np.array(residual_spectrum(Field(atoms, 0.02 * np.cos(2 * np.pi * waves * u)[:, None, None] * np.ones((32,) * 3), "scalar")))
        shell = np.digitize(2 * np.pi * waves / 4.0, SPECTRUM_EDGES_PER_ANGSTROM) - 1
        assert spectrum[shell] == pytest.approx(0.02**2 / 2)
        assert np.delete(spectrum, shell) == pytest.approx(0.0, abs=1e-12)


def test_compare_refuses_different_grids(simple_cubic):
    with pytest.raises(GridError, match="grids differ"):
        compare(Field(simple_cubic.atoms, simple_cubic.values[:-1], "elf"), simple_cubic)


def test_template_basins_find_interstitial_pockets_and_partition_the_cell():
    cell = 3.0
    atoms = Atoms("Na2", positions=[[0, 0, 0], [1.5, 1.5, 1.5]], cell=[cell] * 3, pbc=True)
    sites = np.array([[1.5, 0.75, 0.0], [0.0, 1.5, 0.75]])
    values = 0.2 + 0.7 * gaussian_lattice(cell, 30, 0.3, sites, images=1)
    density = Field(atoms, np.full(values.shape, 0.01), "density")
    basins = template_basins(Field(atoms, values, "elf"), density)
    pockets = [b for b in basins if b.interstitial and b.elf > 0.8]
    assert len(pockets) == 2
    assert sum(b.volume_angstrom3 for b in basins) == pytest.approx(cell**3)
    assert sum(b.electrons for b in basins) == pytest.approx(0.01 * cell**3)


def test_template_score_of_a_uniform_elf_is_its_value_outside_the_cores():
    """Known answer: a uniform ELF c >= 0.55 around one atom of a cubic cell scores c times the
    cell fraction outside the smoothed core sphere (radius 0.35 of the lattice constant, the
    nearest-neighbour distance); below 0.45 it scores 0."""
    from scipy.integrate import quad

    length = 3.0
    atoms = Atoms("Na", positions=[[0.4, 0.2, 0.1]], cell=[length] * 3, pbc=True)
    outer = (NUCLEAR_RADIUS_FRACTION + BAND_HALF_WIDTH) * length
    core = quad(lambda r: 4 * np.pi * r**2 * (1 - smoothstep(r / length, NUCLEAR_RADIUS_FRACTION, BAND_HALF_WIDTH)), 0, outer)[0]
    for value, expected in ((0.8, 0.8 * (1 - core / length**3)), (0.6, 0.6 * (1 - core / length**3)), (0.44, 0.0)):
        assert template_score(Field(atoms, np.full((48, 48, 48), value), "elf")) == pytest.approx(expected, abs=1e-4)


def test_template_score_lies_in_zero_one_and_ignores_translation_permutation_and_tiling():
    """Bounds, and the score as a property of the crystal: the same for every origin (atoms and
    grid shifted by a whole number of grid steps), every atom order and a 2x1x1 supercell."""
    rng = np.random.default_rng(3)
    cell = 3.0
    atoms = Atoms("NaK", positions=[[0.1, 0.2, 0.3], [1.6, 1.4, 1.5]], cell=[cell] * 3, pbc=True)
    sites = np.array([[1.5, 0.75, 0.1], [0.2, 1.5, 0.75]])
    values = 0.2 + 0.75 * gaussian_lattice(cell, 30, 0.35, sites, images=1) + 0.02 * rng.random((30, 30, 30))
    values = np.clip(values, 0, 1)
    score = template_score(Field(atoms, values, "elf"))
    assert 0.01 < score < 1
    assert 0 <= template_score(Field(atoms, rng.random((30, 30, 30)), "elf")) <= 1
    steps = np.array([3, 5, 7])
    moved = atoms.copy()
    moved.translate(steps / 30 * cell)
    assert template_score(Field(moved, np.roll(values, steps, axis=(0, 1, 2)), "elf")) == pytest.approx(score, abs=1e-9)
    assert template_score(Field(atoms[[1, 0]], values, "elf")) == pytest.approx(score, abs=1e-9)
    assert template_score(Field(atoms.repeat((2, 1, 1)), np.concatenate([values, values]), "elf")) == pytest.approx(score, abs=1e-9)


def test_template_score_of_a_real_metal_elf_converges_with_the_grid():
    """The QE ELF of C11b LiAl2 (metals test split, V/V0 1), whose interstitial maxima sit at the
    core radius, scored on its 45^3 grid and resampled 1.5x finer: the score moves by less than
    0.005 (a sum over whole basins moved by 0.41 here, `benchmarks/template_grid_stability.py`)."""
    import elfkit.data
    from elfkit.predict import resample_periodic

    sample = next(s for s in elfkit.data.open("metals", split="test", root=REPO / "datasets") if s.key == "ad4d8e7f2a93f68d")
    coarse = template_score(Field(sample.atoms, sample.elf, "elf"))
    fine = template_score(Field(sample.atoms, resample_periodic(sample.elf, (68, 68, 68)), "elf"))
    assert coarse > 0.1
    assert abs(fine - coarse) < 0.005


def test_topology_cli_on_real_qe_elf_reports_the_documented_keys():
    result = subprocess.run(
        [sys.executable, "-m", "elfkit", "topology", str(DATA / "qe" / "h4_triclinic.elf.cube"), "--json"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in ("networking_value", "molecularity_index", "dimensionality_vs_isovalue", "critical_points", "counts", "morse_sum"):
        assert key in report
    assert {"type", "frac", "cart", "value"} <= set(report["critical_points"][0])
    assert 0.0 < report["networking_value"] < report["molecularity_index"] <= 1.0


@pytest.mark.parametrize(
    "args, expected",
    [
        (["topology", "missing.cube"], "no such file"),
        (["compare", str(DATA / "qe" / "h4_triclinic.elf.cube"), str(DATA / "qe" / "h2_pa3.elf.cube")], "grids differ"),
    ],
)
def test_analysis_cli_bad_input_exits_2(args, expected):
    result = subprocess.run([sys.executable, "-m", "elfkit", *args], capture_output=True, text=True)
    assert result.returncode == 2 and expected in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_report_writes_pictures_and_a_self_contained_html_page(tmp_path):
    cube = DATA / "qe" / "h4_triclinic.elf.cube"
    result = subprocess.run(
        [sys.executable, "-m", "elfkit", "report", str(cube), "--ref", str(DATA / "qe" / "h4_triclinic.elf.xsf"),
         "-o", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["histograms.png", "isosurface.png", "parity.png", "residual_spectrum.png", "slice_001.png"]
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (tmp_path / "h4_triclinic.html").read_text()
    assert "Plotly.newPlot" in html and "ELF isovalue" in html and "networking value" in html
    assert not re.search(r"<script[^>]+src=", html), "the page must not load scripts from elsewhere"


def test_screen_ranks_structures_by_template_score(tmp_path):
    from elfkit.io import write_field

    cell = 3.0
    atoms = Atoms("Na2", positions=[[0, 0, 0], [1.5, 1.5, 1.5]], cell=[cell] * 3, pbc=True)
    strong = 0.2 + 0.7 * gaussian_lattice(cell, 24, 0.3, np.array([[1.5, 0.75, 0.0]]), images=1)
    weak = 0.2 + 0.35 * gaussian_lattice(cell, 24, 0.3, np.array([[1.5, 0.75, 0.0]]), images=1)
    args = []
    for name, values in (("weak", weak), ("strong", strong)):
        atoms.write(tmp_path / f"{name}.vasp", format="vasp")
        write_field(tmp_path / f"{name}.npz", atoms, values, quantity="elf")
        args += [str(tmp_path / f"{name}.vasp")]
    elf_args = sum((["--elf", str(tmp_path / f"{n}.npz")] for n in ("weak", "strong")), [])
    result = subprocess.run([sys.executable, "-m", "elfkit", "screen", *args, *elf_args, "-o", str(tmp_path / "out")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "out" / "screen.csv").read_text().splitlines()
    assert lines[0].startswith("structure,formula,template_score")
    assert "strong" in lines[1] and "weak" in lines[2]
    assert (tmp_path / "out" / "screen.png").is_file()


def test_topology_is_the_same_from_qe_cube_and_from_a_vasp_elfcar(tmp_path):
    from elfkit.analysis.topology import topology
    from elfkit.io import read_field, save_field

    cube = read_field(DATA / "qe" / "h4_triclinic.elf.cube", quantity="elf")
    save_field(tmp_path / "ELFCAR", cube)
    from_cube, from_elfcar = topology(cube), topology(read_field(tmp_path / "ELFCAR"))
    assert from_elfcar["networking_value"] == pytest.approx(from_cube["networking_value"], abs=1e-6)
    assert from_elfcar["counts"] == from_cube["counts"]
    assert from_elfcar["morse_sum"] == from_cube["morse_sum"] == 0


def test_hydrogen_only_networking_ignores_domains_without_hydrogen():
    """A broad sodium network percolates at a high isovalue without touching the narrow
    hydrogen blobs, which join it only at a lower isovalue."""
    atoms = Atoms("HNa", positions=[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], cell=[2.0] * 3, pbc=True)
    sodium = gaussian_lattice(2.0, 32, 0.6, atoms.positions[1:])
    hydrogen = gaussian_lattice(2.0, 32, 0.2, atoms.positions[:1])
    values = np.maximum(0.9 * sodium / sodium.max(), 0.5 * hydrogen / hydrogen.max())
    field = Field(atoms, values, "elf")
    assert networking_value(field, hydrogen_only=True) < networking_value(field) - 0.05


def test_a_field_outside_zero_one_is_refused_as_elf(tmp_path):
    from elfkit.io import write_field

    atoms = Atoms("H", positions=[[0, 0, 0]], cell=[2.0] * 3, pbc=True)
    write_field(tmp_path / "values.npz", atoms, np.full((8, 8, 8), 3.0), quantity="scalar")
    result = subprocess.run([sys.executable, "-m", "elfkit", "topology", str(tmp_path / "values.npz")], capture_output=True, text=True)
    assert result.returncode == 2 and "an ELF lies in [0, 1]" in result.stderr
