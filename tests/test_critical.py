"""Critical points by discrete Morse theory and persistence: the Morse sum is 0 on every field
(smooth, flat, saturated, noisy, real QE files), plateaus count once, persistence removes
noise, and low-density points are reported apart."""

import json
import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms

import elfkit.data
from elfkit.analysis.critical import (
    DEFAULT_PERSISTENCE,
    LOW_DENSITY,
    counts,
    critical_points,
    match_critical_points,
    morse_sum,
    persistence_pairs,
    simplify,
)
from elfkit.analysis.topology import topology
from elfkit.field import Field
from elfkit.io import read_field
from elfkit.sad import sad

from conftest import DATA, REPO
from test_analysis import gaussian_lattice


@pytest.fixture(scope="module")
def fluid_sample():
    """A 64-atom hydrogen-fluid ELF from the committed dataset (PBE, 50³ grid)."""
    return next(iter(elfkit.data.open("hydrogen-fluid", split="test", root=REPO / "datasets")))


def maxima(points):
    """The maxima among `points`."""
    return [p for p in points if p.type == "maximum"]


def noisy(values, sigma, seed=0):
    """`values` plus white noise of standard deviation `sigma`, clipped to [0, 1] like an ELF."""
    return np.clip(values + np.random.default_rng(seed).normal(0.0, sigma, values.shape), 0.0, 1.0)


def test_a_constant_field_has_only_the_torus_essential_points():
    atoms = Atoms("H", positions=[[0, 0, 0]], cell=[2.0] * 3, pbc=True)
    points = critical_points(Field(atoms, np.full((16, 16, 16), 0.5), "elf"), persistence=0.0)
    assert counts(points) == {"maxima": 1, "saddles": 3, "rings": 3, "minima": 1}
    assert morse_sum(points) == 0
    assert all(p.persistence is None and p.value == 0.5 for p in points)


def test_a_saturated_plateau_is_one_maximum_at_its_centre():
    """Two Gaussians clipped at 1 (ELF saturating over whole voxel patches, as in pp.x files)."""
    centres = np.array([[1.03, 0.97, 1.0], [2.98, 3.02, 3.0]])
    atoms = Atoms("H2", positions=centres, cell=[4.0] * 3, pbc=True)
    values = np.minimum(1.0, 1.6 * gaussian_lattice(4.0, 32, 0.5, centres, images=1))
    assert (values == 1.0).sum() > 50
    points = critical_points(Field(atoms, values, "elf"), persistence=0.0)
    assert morse_sum(points) == 0
    found = maxima(points)
    assert len(found) == 2 and all(p.value == 1.0 for p in found)
    for p in found:
        delta = np.array(p.cart) - centres
        delta -= 4.0 * np.round(delta / 4.0)
        assert np.linalg.norm(delta, axis=1).min() < 0.1


def test_every_point_belongs_to_a_pair_of_neighbouring_index_with_its_persistence(simple_cubic_noisy):
    points = critical_points(simple_cubic_noisy, persistence=0.0)
    order = ("minimum", "ring", "saddle", "maximum")
    by_persistence = {}
    for p in points:
        if p.persistence is not None:
            by_persistence.setdefault(p.persistence, []).append(order.index(p.type))
    for indices in by_persistence.values():
        assert sum(np.bincount(indices, minlength=4) * [1, -1, 1, -1]) == 0
    assert sum(p.persistence is None for p in points) == 8
    for threshold in (0.0, 0.001, 0.01, 0.05, 0.2):
        assert morse_sum(simplify(points, threshold)) == 0


@pytest.fixture(scope="module")
def simple_cubic_noisy():
    atoms = Atoms("H", positions=[[0.13, 0.07, 0.0]], cell=[2.0] * 3, pbc=True)
    values = gaussian_lattice(2.0, 24, 0.45, atoms.positions)
    return Field(atoms, noisy(values / values.max(), 0.01), "elf")


def test_persistence_removes_noise_from_a_known_answer_field(simple_cubic_noisy):
    rough = critical_points(simple_cubic_noisy, persistence=0.0)
    assert len(rough) > 100 and morse_sum(rough) == 0
    clean = critical_points(simple_cubic_noisy, persistence=0.1)
    assert counts(clean) == {"maxima": 1, "saddles": 3, "rings": 3, "minima": 1}
    (maximum,) = [p for p in clean if p.type == "maximum"]
    delta = np.array(maximum.cart) - [0.13, 0.07, 0.0]
    assert np.linalg.norm(delta - 2.0 * np.round(delta / 2.0)) < 0.15


def test_noisy_dataset_elf_keeps_morse_zero_and_the_clean_maxima(fluid_sample):
    """White noise (sigma 0.03) on a 64-atom fluid ELF: after simplification at 0.1 as many
    maxima as in the clean field at 0.1, each within 0.5 Å of a clean maximum (noise moves a
    maximum along the flat ELF ~ 1 ridge of a molecule, so not always onto the same atom)."""
    atoms, values = fluid_sample.atoms, fluid_sample.elf.astype(float)
    clean = critical_points(Field(atoms, values, "elf"), persistence=0.0)
    rough = Field(atoms, noisy(values, 0.03), "elf")
    pairs = persistence_pairs(rough.values)
    before = critical_points(rough, persistence=0.0, pairs=pairs)
    after = critical_points(rough, persistence=0.1, pairs=pairs)
    assert morse_sum(before) == 0 and morse_sum(after) == 0
    assert len(before) > 10 * len(after)
    assert abs(len(maxima(after)) - len(maxima(simplify(clean, 0.1)))) <= 0.1 * len(maxima(simplify(clean, 0.1)))
    match = match_critical_points(maxima(after), maxima(clean), atoms.cell.array, tol=0.5, persistence=0.0)
    assert match["precision"] >= 0.95


@pytest.mark.parametrize("name", ["h2_pa3.elf.cube", "h4_triclinic.elf.cube", "h4_triclinic.elf.xsf"])
def test_real_qe_files_give_morse_zero_before_and_after_simplification(name):
    field = read_field(DATA / "qe" / name, quantity="elf")
    pairs = persistence_pairs(field.values)
    before = critical_points(field, persistence=0.0, pairs=pairs)
    after = critical_points(field, pairs=pairs)
    assert morse_sum(before) == 0 and morse_sum(after) == 0
    assert len(after) < len(before) / 4
    assert pairs.counts(0.0) == counts(before)
    paired = np.flatnonzero(pairs.partner >= 0)
    partner = pairs.partner[paired]
    assert np.array_equal(pairs.partner[partner], paired) and np.array_equal(np.abs(pairs.index[partner] - pairs.index[paired]), np.ones(len(paired)))
    value = field.values[tuple(pairs.vertices.T)]
    assert np.allclose(np.abs(value[paired] - value[partner]), pairs.persistence[paired])


def test_molecular_hydrogen_pa3_has_one_maximum_per_molecule_and_per_void():
    """Pa-3 H2 (4 molecules): one saturated maximum on each molecule's ELF = 1 plateau, and
    one at each octahedral void (4b), where this PBE ELF also reaches 1."""
    field = read_field(DATA / "qe" / "h2_pa3.elf.cube", quantity="elf")
    found = maxima(critical_points(field))
    assert len(found) == 8 and all(p.value == pytest.approx(1.0) for p in found)
    frac = field.atoms.get_scaled_positions()
    pairs = [(i, j) for i in range(len(frac)) for j in range(i) if field.atoms.get_distance(i, j, mic=True) < 1.0]
    bonds = np.array([frac[j] + (frac[i] - frac[j] - np.round(frac[i] - frac[j])) / 2 for i, j in pairs])
    voids = np.array([[0.5, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]])
    sites = np.concatenate([bonds, voids])
    delta = np.array([p.frac for p in found])[:, None] - sites[None]
    delta -= np.round(delta)
    distance = np.linalg.norm(delta @ field.atoms.cell.array, axis=-1)
    assert len(bonds) == 4 and sorted(distance.argmin(axis=1)) == list(range(8))
    assert distance.min(axis=1).max() < 0.5


def test_low_density_points_are_reported_apart_and_the_morse_sum_stays_zero():
    """A molecule in a large box: the noisy vacuum's points are flagged by the SAD."""
    centres = np.array([[3.63, 4.0, 4.0], [4.37, 4.0, 4.0]])
    atoms = Atoms("H2", positions=centres, cell=[8.0] * 3, pbc=True)
    values = gaussian_lattice(8.0, 32, 0.6, centres, images=1)
    values /= values.max()
    vacuum = sad(atoms, values.shape) < LOW_DENSITY
    assert 0.3 < vacuum.mean() < 0.99
    field = Field(atoms, np.where(vacuum, noisy(values, 0.05, seed=3), values), "elf")
    result = topology(field, persistence=0.05)
    assert result["morse_sum"] == 0 and result["persistence_threshold"] == 0.05
    apart = result["low_density_critical_points"]
    assert apart and all(p["low_density"] for p in apart)
    assert not any(p["low_density"] for p in result["critical_points"])
    assert result["counts"]["maxima"] == 1
    whole = sum(result["counts"].values()) + sum(result["counts_low_density"].values())
    assert whole == len(critical_points(field, persistence=0.05))


def test_matching_compares_sets_at_the_same_persistence(fluid_sample):
    field = Field(fluid_sample.atoms, fluid_sample.elf.astype(float), "elf")
    pairs = persistence_pairs(field.values)
    everything = critical_points(field, persistence=0.0, pairs=pairs)
    simplified = critical_points(field, pairs=pairs)
    assert len(everything) > len(simplified)
    result = match_critical_points(everything, simplified, field.atoms.cell.array, persistence=DEFAULT_PERSISTENCE)
    assert result["recall"] == 1.0 and result["precision"] == 1.0


def test_topology_cli_reports_threshold_and_counts_before_and_after(tmp_path):
    cube = DATA / "qe" / "h4_triclinic.elf.cube"
    runs = {}
    for threshold in ("0", "0.05"):
        result = subprocess.run([sys.executable, "-m", "elfkit", "topology", str(cube), "--json", "--persistence", threshold],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        runs[threshold] = json.loads(result.stdout)
    for threshold, report in runs.items():
        assert report["persistence_threshold"] == float(threshold) and report["morse_sum"] == 0
        assert report["counts_before_simplification"] == runs["0"]["counts"]
        assert all(p["persistence"] is None or p["persistence"] >= float(threshold) for p in report["critical_points"])
    assert sum(runs["0.05"]["counts"].values()) < sum(runs["0"]["counts"].values())


def _molecule_field(bumps, grid=48, length=6.0):
    """An H2-like ridge along x (ELF near 1 over 1 Å) carrying two small bumps of heights
    `bumps` 0.7 Å apart (the near-nucleus maxima), and a separate maximum of 0.9 3 Å away."""
    atoms = Atoms("H3", positions=[[2.65, 3.0, 3.0], [3.35, 3.0, 3.0], [3.0, 3.0, 0.0]], cell=[length] * 3, pbc=True)
    x, y, z = (np.arange(grid) * length / grid for _ in range(3))
    x, y, z = np.meshgrid(x, y, z, indexing="ij")
    ridge = 0.99 * np.exp(-((x - 3) ** 2) / 8 - ((y - 3) ** 2 + (z - 3) ** 2) / 0.32)
    for centre, height in zip((2.65, 3.35), bumps):
        ridge += height * np.exp(-((x - centre) ** 2 + (y - 3) ** 2 + (z - 3) ** 2) / 0.045)
    separate = 0.9 * np.exp(-((x - 3) ** 2 + (y - 3) ** 2 + np.minimum(z, length - z) ** 2) / 0.18)
    return Field(atoms, ridge + separate, "elf")


def test_maxima_the_field_cannot_tell_apart_match_as_one():
    """Simplification keeps the higher of a molecule's two maxima; a field with the heights
    swapped keeps the other, 0.6 Å away. Matched by point it is lost; with the reference's
    plateau aliases it is found, and the separate maximum is no alias of either."""
    from elfkit.analysis.critical import plateau_aliases

    reference, swapped = _molecule_field([0.03, 0.025]), _molecule_field([0.025, 0.03])
    ref_max, pred_max = maxima(critical_points(reference)), maxima(critical_points(swapped))
    assert len(ref_max) == len(pred_max) == 2
    cell = reference.atoms.cell.array
    assert match_critical_points(pred_max, ref_max, cell, tol=0.2)["recall"] == 0.5
    aliases = plateau_aliases(ref_max, reference)
    spans = sorted(np.linalg.norm(((a - a[0] + 0.5) % 1.0 - 0.5) @ cell, axis=1).max() for a in aliases)
    assert spans[0] < 0.2 and 0.5 < spans[1] < 0.8
    assert match_critical_points(pred_max, ref_max, cell, tol=0.2, reference_aliases=aliases)["recall"] == 1.0


def _plateau_field(centre_x, grid=48, length=6.0):
    """A broad ELF maximum of 0.5 at `centre_x` Å, whose top 0.02 spans about 2 Å along x (a
    flat interstitial plateau), in a cubic cell of one atom (far from it: low density)."""
    atoms = Atoms("Li", positions=[[0.0, 0.0, 0.0]], cell=[length] * 3, pbc=True)
    x, y, z = np.meshgrid(*(np.arange(grid) * length / grid,) * 3, indexing="ij")
    return Field(atoms, 0.5 * np.exp(-((x - centre_x) ** 2) / 36 - ((y - 3) ** 2 + (z - 3) ** 2) / 2), "elf")


def test_a_maximum_anywhere_on_the_reference_plateau_matches_it():
    """A maximum moved 0.6 Å along a plateau over which the reference ELF varies by less than
    the persistence is found through the plateau aliases (not by position alone); moved 2.4 Å,
    where the reference has dropped by more than the persistence, it is not."""
    from elfkit.analysis.critical import plateau_aliases

    reference = _plateau_field(3.0)
    ref_max = maxima(critical_points(reference))
    aliases = plateau_aliases(ref_max, reference)
    cell = reference.atoms.cell.array
    for shift, found in ((0.6, 1.0), (2.4, 0.0)):
        pred_max = maxima(critical_points(_plateau_field(3.0 + shift)))
        assert len(ref_max) == len(pred_max) == 1
        options = {"tol": 0.2, "include_low_density": True}
        assert match_critical_points(pred_max, ref_max, cell, **options)["recall"] == 0.0
        assert match_critical_points(pred_max, ref_max, cell, reference_aliases=aliases, **options)["recall"] == found


def test_matching_finds_the_most_pairs_within_the_tolerance():
    """References A, B and predictions P, Q where the smallest total distance (P-B 0.01 Å,
    Q-A 0.25 Å) pairs only one within 0.2 Å, while P-A and Q-B (0.19 Å each) pair both."""
    from elfkit.analysis.critical import CriticalPoint

    def point(x, y):
        return CriticalPoint("saddle", [x / 10, y / 10, 0.0], [x, y, 0.0], 0.5, [-1.0, 1.0, 1.0], 0.1)

    cell = np.eye(3) * 10.0
    reference = [point(0.0, 0.0), point(0.2, 0.0)]
    predicted = [point(0.19, 0.0), point(0.166, 0.187)]
    result = match_critical_points(predicted, reference, cell, tol=0.2, persistence=0.0)
    assert result["matched"] == 2 and result["recall"] == 1.0
