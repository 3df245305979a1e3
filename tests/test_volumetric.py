import gzip

import numpy as np
import pytest
from ase import Atoms

from elfkit.errors import FieldFormatError
from elfkit.field import Field
from elfkit.io import read_field, read_structure, save_field, write_field
from elfkit.io._files import atomic_output
from elfkit.units import BOHR_IN_ANGSTROM

from conftest import DATA

SHAPE = (6, 7, 8)
QE = DATA / "qe"


@pytest.fixture
def elf_values():
    rng = np.random.default_rng(3)
    return rng.random(SHAPE)


def assert_same_atoms(a: Atoms, b: Atoms, atol=1e-5):
    assert list(a.numbers) == list(b.numbers)
    np.testing.assert_allclose(a.cell.array, b.cell.array, atol=atol)
    np.testing.assert_allclose(a.positions, b.positions, atol=atol)


# name, quantity, relative precision of the format's numbers
ROUND_TRIPS = [
    ("ELFCAR", "elf", 1e-10),
    ("CHGCAR", "density", 1e-10),
    ("elf.cube", "elf", 1e-7),
    ("rho.cube", "density", 1e-7),
    ("elf.xsf", "elf", 1e-8),
    ("elf.npz", "elf", 0.0),
    ("ELFCAR.gz", "elf", 1e-10),
    ("elf.cube.gz", "elf", 1e-7),
]


@pytest.mark.parametrize("name, quantity, precision", ROUND_TRIPS)
def test_round_trip_keeps_values_atoms_and_quantity(tmp_path, triclinic_mix, elf_values, name, quantity, precision):
    write_field(tmp_path / name, triclinic_mix, elf_values, quantity=quantity)
    field = read_field(tmp_path / name)
    assert field.values.shape == SHAPE
    assert field.quantity == quantity
    np.testing.assert_allclose(field.values, elf_values, rtol=precision, atol=precision)
    assert_same_atoms(field.atoms, triclinic_mix)


def test_npy_keeps_the_array_and_needs_a_structure(tmp_path, triclinic_mix, elf_values):
    write_field(tmp_path / "elf.npy", triclinic_mix, elf_values, quantity="elf")
    with pytest.raises(FieldFormatError, match="holds no structure"):
        read_field(tmp_path / "elf.npy")
    field = read_field(tmp_path / "elf.npy", quantity="elf", structure=triclinic_mix)
    np.testing.assert_array_equal(field.values, elf_values)


@pytest.mark.parametrize("name, quantity", [("ELFCAR", "elf"), ("CHGCAR", "density")])
def test_spin_polarised_vasp_files_keep_both_blocks(tmp_path, triclinic_mix, elf_values, name, quantity):
    spin = elf_values[::-1] * 0.5
    write_field(tmp_path / name, triclinic_mix, elf_values, quantity=quantity, spin_values=spin)
    field = read_field(tmp_path / name)
    np.testing.assert_allclose(field.spin_values, spin, rtol=1e-10)
    np.testing.assert_allclose(field.values, elf_values, rtol=1e-10)


def _vasp_layout(atoms: Atoms, blocks, per_line: int, fmt: str, augmentation: bool) -> str:
    """A file laid out the way VASP writes CHGCAR (5 columns, augmentation occupancies,
    a line of per-ion moments before a spin block) or ELFCAR (10 columns of G11.4)."""
    lines = ["unknown system", "   1.00000000000000"]
    lines += ["  " + " ".join(f"{v:11.6f}" for v in row) for row in atoms.cell.array]
    lines += ["   Ca   H", "     1     2", "Direct"]
    lines += [" " + " ".join(f"{v:9.6f}" for v in row) for row in atoms.get_scaled_positions()]
    for index, block in enumerate(blocks):
        if index:
            lines.append(" ".join("0.000" for _ in atoms))
        lines += ["", " ".join(f"{n:4d}" for n in block.shape)]
        flat = block.T.ravel()
        lines += ["".join(fmt.format(v) for v in flat[i : i + per_line]) for i in range(0, flat.size, per_line)]
        if augmentation:
            for atom in range(len(atoms)):
                lines += [f"augmentation occupancies {atom + 1:3d}  4", "  0.1234567E+00 -0.2345678E-01  0.0000000E+00  0.1000000E+01"]
    return "\n".join(lines) + "\n"


def test_reads_a_spin_polarised_chgcar_in_vasp_layout(tmp_path, triclinic_mix, elf_values):
    volume = triclinic_mix.get_volume()
    total, magnetisation = elf_values * volume, (elf_values - 0.5) * volume
    text = _vasp_layout(triclinic_mix, [total, magnetisation], 5, " {:17.11E}", augmentation=True)
    (tmp_path / "CHGCAR").write_text(text)
    field = read_field(tmp_path / "CHGCAR")
    assert field.quantity == "density"
    np.testing.assert_allclose(field.values, elf_values, rtol=1e-10)
    np.testing.assert_allclose(field.spin_values, elf_values - 0.5, rtol=1e-9, atol=1e-12)
    assert_same_atoms(field.atoms, triclinic_mix, atol=1e-5)


def test_reads_an_elfcar_in_vasp_layout_with_ten_columns(tmp_path, triclinic_mix, elf_values):
    up, down = elf_values, elf_values**2
    text = _vasp_layout(triclinic_mix, [up, down], 10, " {:11.4E}", augmentation=False)
    with gzip.open(tmp_path / "ELFCAR.gz", "wt") as handle:
        handle.write(text)
    field = read_field(tmp_path / "ELFCAR.gz")
    assert field.quantity == "elf"
    np.testing.assert_allclose(field.values, up, atol=5e-5)
    np.testing.assert_allclose(field.spin_values, down, atol=5e-5)


def test_elfkit_files_open_in_ase_with_the_same_values(tmp_path, triclinic_mix, elf_values):
    from ase.io.cube import read_cube_data
    from ase.io.xsf import read_xsf

    write_field(tmp_path / "elf.cube", triclinic_mix, elf_values, quantity="elf")
    data, atoms = read_cube_data(str(tmp_path / "elf.cube"))
    np.testing.assert_allclose(data, elf_values, rtol=1e-5)
    assert_same_atoms(atoms, triclinic_mix)

    write_field(tmp_path / "elf.xsf", triclinic_mix, elf_values, quantity="elf")
    with open(tmp_path / "elf.xsf") as handle:
        data, _, _, atoms = read_xsf(handle, read_data=True)
    np.testing.assert_allclose(data[:-1, :-1, :-1], elf_values, rtol=1e-8)
    np.testing.assert_allclose(data[-1], data[0])
    assert_same_atoms(atoms, triclinic_mix)


def test_elfkit_files_open_in_pymatgen_with_the_same_values(tmp_path, triclinic_mix, elf_values):
    from pymatgen.io.common import VolumetricData
    from pymatgen.io.vasp import Chgcar, Elfcar

    spin = elf_values * 0.25
    write_field(tmp_path / "CHGCAR", triclinic_mix, elf_values, quantity="density", spin_values=spin)
    chgcar = Chgcar.from_file(str(tmp_path / "CHGCAR"))
    volume = triclinic_mix.get_volume()
    np.testing.assert_allclose(chgcar.data["total"] / volume, elf_values, rtol=1e-10)
    np.testing.assert_allclose(chgcar.data["diff"] / volume, spin, rtol=1e-10)
    np.testing.assert_allclose(chgcar.structure.lattice.matrix, triclinic_mix.cell.array, atol=1e-6)

    write_field(tmp_path / "ELFCAR", triclinic_mix, elf_values, quantity="elf")
    elfcar = Elfcar.from_file(str(tmp_path / "ELFCAR"))
    np.testing.assert_allclose(elfcar.data["total"], elf_values, rtol=1e-10)

    write_field(tmp_path / "rho.cube", triclinic_mix, elf_values, quantity="density")
    cube = VolumetricData.from_cube(str(tmp_path / "rho.cube"))
    np.testing.assert_allclose(cube.data["total"], elf_values * BOHR_IN_ANGSTROM**3, rtol=1e-5)
    np.testing.assert_allclose(
        cube.structure.cart_coords, triclinic_mix.positions, atol=1e-5
    )


def test_files_written_by_ase_and_pymatgen_read_the_same(tmp_path, triclinic_mix, elf_values):
    from ase.calculators.vasp import VaspChargeDensity
    from ase.io.cube import write_cube
    from ase.io.xsf import write_xsf
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.io.vasp import Chgcar, Poscar

    with open(tmp_path / "ase.cube", "w") as handle:
        write_cube(handle, triclinic_mix, data=elf_values)
    np.testing.assert_allclose(read_field(tmp_path / "ase.cube", quantity="elf").values, elf_values, rtol=1e-5)

    with open(tmp_path / "ase.xsf", "w") as handle:
        write_xsf(handle, [triclinic_mix], data=elf_values)
    field = read_field(tmp_path / "ase.xsf", quantity="elf")
    np.testing.assert_allclose(field.values, elf_values, atol=1e-6)
    assert_same_atoms(field.atoms, triclinic_mix)

    chg = VaspChargeDensity(None)
    chg.atoms, chg.chg = [triclinic_mix], [elf_values]
    chg.write(str(tmp_path / "CHGCAR"), format="chgcar")
    np.testing.assert_allclose(read_field(tmp_path / "CHGCAR").values, elf_values, rtol=1e-8)

    poscar = Poscar(AseAtomsAdaptor.get_structure(triclinic_mix))
    volume = triclinic_mix.get_volume()
    Chgcar(poscar, {"total": elf_values * volume, "diff": elf_values * 0.1 * volume}).write_file(
        str(tmp_path / "pmg_CHGCAR")
    )
    field = read_field(tmp_path / "pmg_CHGCAR")
    np.testing.assert_allclose(field.values, elf_values, rtol=1e-8)
    np.testing.assert_allclose(field.spin_values, elf_values * 0.1, rtol=1e-8)
    assert_same_atoms(field.atoms, triclinic_mix)


def test_real_quantum_espresso_cube_and_xsf_agree_and_match_its_output():
    cube = read_field(QE / "h4_triclinic.elf.cube", quantity="elf")
    xsf = read_field(QE / "h4_triclinic.elf.xsf", quantity="elf")
    structure = read_structure(QE / "h4_triclinic.pw.out")
    assert cube.values.shape == xsf.values.shape == (20, 20, 24)
    np.testing.assert_allclose(cube.values, xsf.values, atol=1e-5)
    assert_same_atoms(cube.atoms, structure, atol=1e-5)
    assert_same_atoms(xsf.atoms, structure, atol=1e-5)
    assert 0.0 <= cube.values.min() and cube.values.max() <= 1.0


def test_real_quantum_espresso_elf_is_high_at_the_h2_bonds_and_low_between_molecules():
    field = read_field(QE / "h4_triclinic.elf.cube", quantity="elf")
    frac = field.atoms.get_scaled_positions(wrap=False)
    shape = np.array(field.values.shape)

    def elf_at(u):
        index = tuple(np.round(np.mod(u, 1.0) * shape).astype(int) % shape)
        return field.values[index]

    assert elf_at((frac[0] + frac[1]) / 2) > 0.95
    assert elf_at((frac[2] + frac[3]) / 2) > 0.95
    assert field.values.min() < 0.2


BAD_FILES = {
    "no such file": ("ELFCAR", None, "no such file"),
    "empty": ("ELFCAR", "", "empty"),
    "truncated": ("ELFCAR", "H\n1.0\n3 0 0\n0 3 0\n0 0 3\nH\n1\nDirect\n0 0 0\n\n 2 2 2\n0.1 0.2 0.3\n", "truncated"),
    "no grid line": ("ELFCAR", "H\n1.0\n3 0 0\n0 3 0\n0 0 3\nH\n1\nDirect\n0 0 0\n", "grid-size"),
    "bad header": ("CHGCAR", "nonsense\nfile\n", "malformed VASP"),
    "bad cube": ("x.cube", "a\nb\nnot numbers\n", "malformed cube"),
    "bad xsf": ("x.xsf", "CRYSTAL\nPRIMVEC\n1 0 0\n", "malformed XSF"),
    "unknown format": ("x.txt", "1 2 3", "cannot tell the volumetric format"),
    "not an archive": ("x.npz", "not a zip", "cannot read"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_volumetric_files_give_one_clear_line(tmp_path, case):
    name, text, expected = BAD_FILES[case]
    if text is not None:
        (tmp_path / name).write_text(text)
    with pytest.raises(FieldFormatError) as error:
        read_field(tmp_path / name)
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_a_format_that_cannot_hold_the_quantity_is_refused_before_writing(tmp_path, triclinic_mix, elf_values):
    with pytest.raises(FieldFormatError, match="CHGCAR holds a density"):
        write_field(tmp_path / "CHGCAR", triclinic_mix, elf_values, quantity="elf")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.cube"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half a file")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_xsf_grid_that_does_not_span_the_cell_is_refused(tmp_path, triclinic_mix, elf_values):
    write_field(tmp_path / "elf.xsf", triclinic_mix, elf_values, quantity="elf")
    text = (tmp_path / "elf.xsf").read_text().replace(" 0.0 0.0 0.0\n", " 0.0 0.0 0.0\n", 1)
    lines = text.splitlines()
    at = lines.index(" 7 8 9")
    lines[at + 2] = "  1.0 0.0 0.0"
    (tmp_path / "bad.xsf").write_text("\n".join(lines) + "\n")
    with pytest.raises(FieldFormatError, match="does not span"):
        read_field(tmp_path / "bad.xsf")


def test_field_refuses_a_spin_block_on_another_grid(triclinic_mix, elf_values):
    from elfkit.errors import GridError

    with pytest.raises(GridError):
        Field(triclinic_mix, elf_values, "elf", spin_values=elf_values[:-1])
    assert save_field is not None
