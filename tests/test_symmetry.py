import numpy as np
import pytest
from ase.build import bulk

from elfkit.errors import SymmetryError
from elfkit.grid import Grid
from elfkit.io import read_field
from elfkit.sad import sad
from elfkit.symmetry import (
    commensurate_operators,
    grid_permutation,
    seitz_operators,
    space_group,
    symmetric_grid_shape,
    symmetrize,
)

from conftest import DATA


@pytest.mark.parametrize(
    "atoms, number",
    [(bulk("Cu", "fcc", a=3.6), 225), (bulk("Fe", "bcc", a=2.87), 229), (bulk("Mg", "hcp", a=3.2, c=5.2), 194)],
)
def test_space_groups_of_known_crystals(atoms, number):
    assert space_group(atoms)[1] == number


def test_example_lah10_is_fm3m_with_192_operations_in_the_conventional_cell(lah10):
    assert space_group(lah10) == ("Fm-3m", 225)
    assert len(seitz_operators(lah10)) == 192


def test_seitz_operators_map_the_crystal_onto_itself(lah10):
    frac = lah10.get_scaled_positions()
    for op in seitz_operators(lah10):
        image = np.mod(op.apply(frac), 1.0)
        delta = image[:, None, :] - frac[None, :, :]
        delta -= np.round(delta)
        assert np.all(np.linalg.norm(delta, axis=-1).min(axis=1) < 1e-6)


def test_symmetric_grid_shape_is_commensurate_with_every_operator(hcp_mg, lah10):
    plain = Grid.for_spacing(hcp_mg.cell.array, 0.2).shape
    assert commensurate_operators(seitz_operators(hcp_mg), plain)[1]
    shape = symmetric_grid_shape(hcp_mg, 0.2)
    assert not commensurate_operators(seitz_operators(hcp_mg), shape)[1]
    assert shape[0] == shape[1] and shape[0] % 3 == 0 and shape[2] % 2 == 0
    assert np.all(np.linalg.norm(hcp_mg.cell.array, axis=1) / shape <= 0.2)
    assert symmetric_grid_shape(lah10, 0.12) == (48, 48, 48)


def test_grid_permutations_are_bijections(hcp_mg):
    shape = symmetric_grid_shape(hcp_mg, 0.2)
    for op in seitz_operators(hcp_mg):
        permutation = grid_permutation(op, shape)
        assert np.array_equal(np.sort(permutation), np.arange(np.prod(shape)))


def test_symmetrize_is_idempotent_and_its_result_is_invariant(hcp_mg):
    shape = (18, 18, 30)
    field = np.random.default_rng(0).random(shape)
    once = symmetrize(field, hcp_mg)
    np.testing.assert_allclose(symmetrize(once, hcp_mg), once, atol=1e-12)
    assert not np.allclose(once, field)
    for op in seitz_operators(hcp_mg):
        np.testing.assert_allclose(once.ravel()[grid_permutation(op, shape)], once.ravel(), atol=1e-12)


@pytest.mark.parametrize("structure", ["lah10", "hcp_mg"])
def test_sad_of_symmetric_crystals_is_symmetric(structure, request):
    atoms = request.getfixturevalue(structure)
    values = sad(atoms, Grid.for_spacing(atoms.cell.array, 0.15).shape)
    np.testing.assert_allclose(symmetrize(values, atoms), values, atol=1e-9 * values.max())


def test_real_dft_elf_of_a_symmetric_crystal_is_symmetric():
    field = read_field(DATA / "qe" / "h2_pa3.elf.cube", quantity="elf")
    assert space_group(field.atoms, symprec=1e-4) == ("Pa-3", 205)
    symmetric = symmetrize(field.values, field.atoms)
    assert np.abs(symmetric - field.values).max() < 1e-3


def test_an_incommensurate_grid_is_named_and_the_subgroup_still_works(hcp_mg):
    shape = (18, 20, 30)
    kept, dropped = commensurate_operators(seitz_operators(hcp_mg), shape)
    assert dropped and kept
    with pytest.raises(SymmetryError, match="not commensurate with the grid"):
        symmetrize(np.zeros(shape), hcp_mg)
    with pytest.raises(SymmetryError):
        grid_permutation(dropped[0], shape)
    field = np.random.default_rng(1).random(shape)
    once = symmetrize(field, hcp_mg, strict=False)
    np.testing.assert_allclose(symmetrize(once, hcp_mg, strict=False), once, atol=1e-12)


def test_distinct_environments_rule_out_symmetry_and_shared_ones_do_not():
    from ase.build import bulk

    from elfkit.symmetry import environments_all_distinct

    crystal = bulk("Cu", "fcc", a=3.6).repeat((3, 3, 3))
    assert not environments_all_distinct(crystal)
    shaken = crystal.copy()
    shaken.positions += np.random.default_rng(0).normal(0, 0.05, shaken.positions.shape)
    assert environments_all_distinct(shaken)
    one_moved = crystal.copy()
    one_moved.positions[0] += [0.1, 0.0, 0.0]
    assert not environments_all_distinct(one_moved)
