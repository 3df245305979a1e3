import ase.io
import numpy as np
import pytest
from ase import Atoms

from elfkit.errors import StructureError
from elfkit.io import read_structure

from conftest import DATA


def same_structure(a: Atoms, b: Atoms) -> None:
    assert list(a.numbers) == list(b.numbers)
    np.testing.assert_allclose(a.cell.array, b.cell.array, atol=1e-5)
    np.testing.assert_allclose(a.get_scaled_positions(), b.get_scaled_positions(), atol=1e-5)


@pytest.mark.parametrize(
    "name, fmt",
    [("POSCAR", "vasp"), ("CONTCAR", "vasp"), ("s.cif", "cif"), ("s.extxyz", "extxyz"), ("pw.in", "espresso-in")],
)
def test_every_ase_format_reads_into_the_same_atoms(tmp_path, triclinic_mix, name, fmt):
    path = tmp_path / name
    kwargs = {"pseudopotentials": {"Ca": "Ca.upf", "H": "H.upf"}} if fmt == "espresso-in" else {}
    ase.io.write(path, triclinic_mix, format=fmt, **kwargs)
    same_structure(read_structure(path), triclinic_mix)


def test_quantum_espresso_output_of_a_real_run_is_read():
    atoms = read_structure(DATA / "qe" / "h4_triclinic.pw.out")
    assert atoms.get_chemical_formula() == "H4"
    np.testing.assert_allclose(atoms.cell.array, [[3.2, 0, 0], [0.4, 3.0, 0], [0.3, 0.5, 3.4]], atol=1e-5)
    np.testing.assert_allclose(atoms.get_scaled_positions()[3], [0.60, 0.72, 0.82], atol=1e-5)


def _poscar(symbols_line: str, counts: str, positions: str, cell="4 0 0\n0 4 0\n0 0 4") -> str:
    return f"test\n1.0\n{cell}\n{symbols_line}\n{counts}\nDirect\n{positions}\n"


BAD_INPUTS = {
    "empty file": ("POSCAR", "", "empty"),
    "blank file": ("POSCAR", "  \n\n", "empty"),
    "garbage": ("POSCAR", "this is not\na structure\n", "cannot read"),
    "zero volume": ("POSCAR", _poscar("H", "1", "0 0 0", cell="4 0 0\n0 4 0\n4 4 0"), "volume"),
    "left-handed cell": ("POSCAR", _poscar("H", "1", "0 0 0", cell="4 0 0\n0 0 4\n0 4 0"), "volume"),
    "non-periodic": ("mol.xyz", "2\n\nH 0 0 0\nH 0 0 0.74\n", "not periodic"),
    "overlap": ("POSCAR", _poscar("H", "2", "0 0 0\n0.05 0 0"), "overlap"),
    "overlap across the boundary": ("POSCAR", _poscar("H", "2", "0.01 0 0\n0.97 0 0"), "overlap"),
    "unknown element": ("POSCAR", _poscar("Xx", "1", "0 0 0"), "element"),
    "unsupported element": ("POSCAR", _poscar("Po", "1", "0 0 0"), "unsupported element Po"),
    "no atoms": ("s.extxyz", '0\nLattice="4 0 0 0 4 0 0 0 4" pbc="T T T"\n', "no atoms"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_structures_give_one_line_naming_file_and_problem(tmp_path, case):
    name, text, expected = BAD_INPUTS[case]
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(StructureError) as error:
        read_structure(path)
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message
    assert expected in message


def test_missing_file(tmp_path):
    with pytest.raises(StructureError, match="no such file"):
        read_structure(tmp_path / "nothing.cif")


def test_a_tiny_cell_whose_atom_meets_its_own_image_is_refused(tmp_path):
    path = tmp_path / "POSCAR"
    path.write_text(_poscar("H", "1", "0 0 0", cell="0.4 0 0\n0 4 0\n0 0 4"))
    with pytest.raises(StructureError, match="image of itself"):
        read_structure(path)
