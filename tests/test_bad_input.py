"""A wide table of bad input through every command: exit status 2, exactly one line on stderr
naming the file and the problem, no traceback, and no new or changed files anywhere.

Commands run in-process (typer's CliRunner) for speed; the crash-type cases (a segfault or
an abort before the fix) also run as real subprocesses, as a user starts them.
"""

import gzip
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk
from typer.testing import CliRunner

from elfkit.cli import app
from elfkit.io import save_field, write_field
from elfkit.field import Field
from elfkit.sad import sad_field

runner = CliRunner()
LONG = "x" * 300

POSCAR = """{title}
1.0
{a1}
{a2}
{a3}
Li
{count}
Direct
{positions}
"""


def _poscar(a1="3.4 0 0", a2="0 3.4 0", a3="0 0 3.4", positions=("0 0 0", "0.5 0.5 0.5")) -> str:
    return POSCAR.format(title="bad", a1=a1, a2=a2, a3=a3, count=len(positions), positions="\n".join(positions))


PARTIAL_CIF = """data_partial
_cell_length_a 4.0
_cell_length_b 4.0
_cell_length_c 4.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Na1 Na 0.0 0.0 0.0 0.5
K1 K 0.0 0.0 0.0 0.5
Cl1 Cl 0.5 0.5 0.5 1.0
"""

SPEC = """name: {name}
kind: hydrogen-md
trajectories:
  - natoms: {natoms}
    rs_bohr: [{rs}]
    temperature_k: [1500]
    start: [atomic]
labels:
  cutoff_ev: {cutoff}
"""

PROTOTYPES = """name: metals-test
kind: prototypes
elements: [{element}]
unary: [fcc]
volume_fractions: [{fraction}]
"""


def _npz(path, **overrides):
    """An elfkit field archive with some arrays replaced."""
    atoms = bulk("Li", "bcc", a=3.4, cubic=True)
    arrays = {
        "values": np.full((6, 6, 6), 0.5),
        "cell": atoms.cell.array,
        "numbers": atoms.numbers,
        "positions": atoms.positions,
        "quantity": np.array("elf"),
    }
    arrays.update(overrides)
    np.savez(path, **arrays)


def _make_model_inputs(folder):
    """A tiny untrained model file and training configs."""
    from elfkit.models import build
    from elfkit.models.checkpoint import save_model

    save_model(folder / "tiny.safetensors", build("periodic-unet", in_channels=10, width=4, dilations=(1,)),
               {"name": "tiny", "architecture": "periodic-unet"})
    config = "name: x\nsteps: 5\ndatasets: [nothing-here]\n"
    (folder / "config.yaml").write_text(config)
    (folder / "typo_config.yaml").write_text(config + "learning_rat: 0.1\n")
    (folder / "zero_steps.yaml").write_text("name: x\nsteps: 0\n")


def _make_inputs(folder):
    """Every bad (and a few good) input files the table refers to."""
    li = bulk("Li", "bcc", a=3.4, cubic=True)
    (folder / "good.vasp").write_text(_poscar())
    (folder / "nan_position.vasp").write_text(_poscar(positions=("nan 0 0", "0.5 0.5 0.5")))
    (folder / "inf_position.vasp").write_text(_poscar(positions=("0 inf 0", "0.5 0.5 0.5")))
    (folder / "nan_cell.vasp").write_text(_poscar(a2="0 nan 0"))
    (folder / "degenerate.vasp").write_text(_poscar(a1="3 0 0", a2="3 0.001 0", a3="0 0 3"))
    (folder / "zero_cell.vasp").write_text(_poscar(a1="0 0 0", a2="0 0 0", a3="0 0 0"))
    (folder / "left_handed.vasp").write_text(_poscar(a3="0 0 -3.4"))
    (folder / "overlap.vasp").write_text(_poscar(positions=("0 0 0", "0.01 0 0")))
    (folder / "partial.cif").write_text(PARTIAL_CIF)
    (folder / "polonium.xyz").write_text('1\nLattice="3 0 0 0 3 0 0 0 3" pbc="T T T"\nPo 0 0 0\n')
    (folder / "no_cell.xyz").write_text("1\n\nLi 0 0 0\n")
    (folder / "empty.cif").write_text("")
    (folder / "binary.cif").write_bytes(bytes(range(256)) * 8)
    (folder / "adir.cube").mkdir()
    (folder / "a_file").write_text("a file where a folder belongs\n")
    _make_model_inputs(folder)

    elf = Field(li, np.clip(sad_field(li, (12, 12, 12), "valence").values / 0.1, 0, 1), "elf")
    save_field(folder / "elf.npz", elf)
    save_field(folder / "elf_coarse.npz", Field(li, elf.values[::2, ::2, ::2], "elf"))
    density = sad_field(li, (12, 12, 12), "valence")
    save_field(folder / "density01.npz", Field(li, density.values / density.values.max(), "density"))
    write_field(folder / "density01_CHGCAR", li, density.values / density.values.max())
    save_field(folder / "values3.npz", Field(li, np.full((6, 6, 6), 3.0), "scalar"))
    _npz(folder / "nan_values.npz", values=np.full((6, 6, 6), np.nan))
    _npz(folder / "unknown_quantity.npz", quantity=np.array("entropy"))
    _npz(folder / "z999.npz", numbers=np.array([999, 3]))
    _npz(folder / "mismatch.npz", numbers=np.array([3, 3, 3]))
    _npz(folder / "zero_cell.npz", cell=np.zeros((3, 3)))
    _npz(folder / "two_d.npz", values=np.zeros((6, 6)))
    _npz(folder / "missing_key.npz", quantity=None)
    whole = (folder / "elf.npz").read_bytes()
    (folder / "truncated.npz").write_bytes(whole[: len(whole) // 2])
    (folder / "corrupt.npz").write_bytes(b"PK\x03\x04" + bytes(200))
    np.save(folder / "two_d.npy", np.zeros((4, 4)))

    save_field(folder / "elf.cube", elf)
    cube = (folder / "elf.cube").read_text()
    with gzip.open(folder / "truncated.cube.gz", "wt") as handle:
        handle.write(cube)
    packed = (folder / "truncated.cube.gz").read_bytes()
    (folder / "truncated.cube.gz").write_bytes(packed[: len(packed) // 2])
    lines = cube.splitlines(keepends=True)
    lines[3] = "   12    0.00000000    0.00000000    0.00000000\n"
    (folder / "zero_vector.cube").write_text("".join(lines))
    last = cube.rstrip("\n").rsplit("\n", 1)
    (folder / "nan.cube").write_text(last[0] + "\n" + " nan nan " + " ".join(last[1].split()[2:]) + "\n")
    (folder / "cut.cube").write_text("".join(cube.splitlines(keepends=True)[:-20]))

    specs = {
        "negative_natoms.yaml": SPEC.format(name="h", natoms=-8, rs=1.5, cutoff=400),
        "zero_rs.yaml": SPEC.format(name="h", natoms=8, rs=0, cutoff=400),
        "negative_cutoff.yaml": SPEC.format(name="h", natoms=8, rs=1.5, cutoff=-400),
        "nan_cutoff.yaml": SPEC.format(name="h", natoms=8, rs=1.5, cutoff=".nan"),
        "escaping_name.yaml": SPEC.format(name="../..", natoms=8, rs=1.5, cutoff=400),
        "empty_name.yaml": SPEC.format(name='""', natoms=8, rs=1.5, cutoff=400),
        "good.yaml": SPEC.format(name="h", natoms=8, rs=1.5, cutoff=400),
        "negative_fraction.yaml": PROTOTYPES.format(element="Li", fraction=-0.5),
        "unknown_element.yaml": PROTOTYPES.format(element="Xx", fraction=0.8),
        "not_yaml.yaml": "name: [unclosed\n",
        "typo.yaml": SPEC.format(name="h", natoms=8, rs=1.5, cutoff=400) + "snapshotz: 3\n",
    }
    for name, text in specs.items():
        (folder / name).write_text(text)
    (folder / "binary.yaml").write_bytes(bytes(range(256)) * 4)


def _make_data_root(root):
    """Datasets with broken manifests (a binary file, JSON that is not a manifest) and a good one."""
    (root / "binary").mkdir(parents=True)
    (root / "binary" / "manifest.json").write_bytes(bytes(range(256)))
    (root / "not-a-manifest").mkdir()
    (root / "not-a-manifest" / "manifest.json").write_text('{"samples": 3}')
    from elfkit.data.store import DatasetStore, Sample

    li = bulk("Li", "bcc", a=3.4, cubic=True)
    store = DatasetStore(root / "tiny")
    store.write_item("li", [Sample(li, np.full((8, 8, 8), 0.5, dtype=np.float32), -1.0, 0.0, "li")])
    store.compact()
    store.write_manifest({"name": "tiny", "kind": "prototypes"}, fixed_split="test")


# (id, arguments, expected text in the one line). {in}: the inputs folder; {out}: the empty
# working folder every command runs in; {root}: the data root.
CASES = [
    # structures: missing, empty, unreadable, not a file, name too long
    ("info-missing", ["info", "{in}/missing.cif"], "missing.cif: no such file"),
    ("info-empty", ["info", "{in}/empty.cif"], "empty.cif: the file is empty"),
    ("info-binary", ["info", "{in}/binary.cif"], "binary.cif: cannot read a structure"),
    ("info-folder", ["info", "{in}"], ": not a file"),
    ("info-long-name", ["info", f"{{in}}/{LONG}.cif"], "cannot open (File name too long)"),
    # structures: non-finite numbers, degenerate cells, occupancy, elements
    ("info-nan-position", ["info", "{in}/nan_position.vasp"], "nan_position.vasp: non-finite numbers (nan or inf) in the positions"),
    ("info-inf-position", ["info", "{in}/inf_position.vasp"], "inf_position.vasp: non-finite numbers (nan or inf) in the positions"),
    ("info-nan-cell", ["info", "{in}/nan_cell.vasp"], "nan_cell.vasp: non-finite numbers (nan or inf) in the cell"),
    ("sad-nan-position", ["sad", "{in}/nan_position.vasp", "-o", "{out}/rho.cube"], "nan_position.vasp: non-finite numbers"),
    ("info-degenerate-cell", ["info", "{in}/degenerate.vasp"], "degenerate.vasp: the cell is degenerate or badly conditioned"),
    ("sad-degenerate-cell", ["sad", "{in}/degenerate.vasp", "-o", "{out}/rho.cube"], "degenerate.vasp: the cell is degenerate"),
    ("info-zero-cell", ["info", "{in}/zero_cell.vasp"], "zero_cell.vasp: the structure is not periodic in three directions"),
    ("info-left-handed", ["info", "{in}/left_handed.vasp"], "left_handed.vasp: the cell volume is"),
    ("info-no-cell", ["info", "{in}/no_cell.xyz"], "no_cell.xyz: the structure is not periodic"),
    ("info-overlap", ["info", "{in}/overlap.vasp"], "overlap.vasp: atom 1 (Li) is 0.034 Å from atom 2"),
    ("info-partial-occupancy", ["info", "{in}/partial.cif"], "partial.cif: site 1 is partially occupied (Na 0.5, K 0.5)"),
    ("sad-partial-occupancy", ["sad", "{in}/partial.cif", "-o", "{out}/rho.cube"], "partial.cif: site 1 is partially occupied"),
    ("info-unsupported-element", ["info", "{in}/polonium.xyz"], "polonium.xyz: unsupported element Po"),
    # sad: grids, kinds, memory, resolution, outputs
    ("sad-unknown-format", ["sad", "{in}/good.vasp", "-o", "{out}/rho.txt"], "rho.txt: cannot tell the volumetric format"),
    ("sad-zero-grid", ["sad", "{in}/good.vasp", "--grid", "0", "0", "0", "-o", "{out}/rho.cube"], "three positive sizes"),
    ("sad-negative-spacing", ["sad", "{in}/good.vasp", "--spacing", "-1", "-o", "{out}/rho.cube"], "spacing must be positive"),
    ("sad-unknown-kind", ["sad", "{in}/good.vasp", "--kind", "core", "-o", "{out}/rho.cube"], "unknown SAD kind 'core'"),
    ("sad-too-coarse", ["sad", "{in}/good.vasp", "--grid", "4", "4", "4", "-o", "{out}/rho.cube"], "good.vasp: the grid 4x4x4"),
    ("sad-memory", ["sad", "{in}/good.vasp", "--grid", "600", "600", "600", "-o", "{out}/rho.cube"],
     "good.vasp: the sad on a 600x600x600 grid is too large for memory"),
    ("sad-output-is-folder", ["sad", "{in}/good.vasp", "-o", "{in}/adir.cube"], "adir.cube: is a folder"),
    ("sad-output-folder-missing", ["sad", "{in}/good.vasp", "-o", "{out}/missing/rho.cube"], "the folder {out}/missing does not exist"),
    ("sad-output-parent-is-file", ["sad", "{in}/good.vasp", "-o", "{in}/a_file/rho.cube"], "a_file is not a folder"),
    ("sad-output-unwritable", ["sad", "{in}/good.vasp", "-o", "/proc/elfkit-test.cube"], "cannot write in /proc"),
    ("sad-output-name-too-long", ["sad", "{in}/good.vasp", "-o", f"{{out}}/{LONG}.cube"], "the file name is too long"),
    # convert: field files that are truncated, corrupt, non-finite, of unknown quantity, or whose structure is bad
    ("convert-missing", ["convert", "{in}/missing.npz", "{out}/x.cube"], "missing.npz: no such file"),
    ("convert-truncated-npz", ["convert", "{in}/truncated.npz", "{out}/x.cube"], "truncated.npz: cannot read the .npz archive"),
    ("convert-corrupt-npz", ["convert", "{in}/corrupt.npz", "{out}/x.cube"], "corrupt.npz: cannot read the .npz archive"),
    ("convert-unknown-quantity", ["convert", "{in}/unknown_quantity.npz", "{out}/x.cube"], "unknown quantity 'entropy'"),
    ("convert-missing-key", ["convert", "{in}/missing_key.npz", "{out}/x.cube"], "missing_key.npz: cannot read the .npz"),
    ("convert-z999", ["convert", "{in}/z999.npz", "{out}/x.cube"], "z999.npz: unsupported element Z=999"),
    ("convert-mismatch", ["convert", "{in}/mismatch.npz", "{out}/x.cube"], "mismatch.npz: 3 atomic numbers, positions of shape (2, 3)"),
    ("convert-zero-cell-npz", ["convert", "{in}/zero_cell.npz", "{out}/x.cube"], "zero_cell.npz: the structure is not periodic"),
    ("convert-nan-values", ["convert", "{in}/nan_values.npz", "{out}/x.cube"], "nan_values.npz: 216 of the 216 values are not finite"),
    ("convert-2d-values", ["convert", "{in}/two_d.npz", "{out}/x.cube"], "two_d.npz: the values are not a 3D grid"),
    ("convert-2d-npy", ["convert", "{in}/two_d.npy", "{out}/x.cube", "--structure", "{in}/good.vasp"], "expected a 3D array"),
    ("convert-npy-without-structure", ["convert", "{in}/two_d.npy", "{out}/x.cube"], "a .npy file holds no structure"),
    ("convert-truncated-gz", ["convert", "{in}/truncated.cube.gz", "{out}/x.npz"], "truncated.cube.gz: cannot read the file as text"),
    ("convert-cube-zero-vector", ["convert", "{in}/zero_vector.cube", "{out}/x.npz"], "zero_vector.cube: the structure is not periodic"),
    ("convert-cube-nan", ["convert", "{in}/nan.cube", "{out}/x.npz"], "nan.cube: 2 of the 1728 values are not finite"),
    ("convert-cube-cut", ["convert", "{in}/cut.cube", "{out}/x.npz"], "cut.cube: malformed cube file"),
    ("convert-unknown-quantity-option", ["convert", "{in}/elf.cube", "{out}/x.npz", "--quantity", "entropy"], "unknown quantity"),
    ("convert-density-into-elfcar", ["convert", "{in}/density01.npz", "{out}/ELFCAR"], "cannot store a density field"),
    ("convert-output-is-folder", ["convert", "{in}/elf.npz", "{in}/adir.cube"], "adir.cube: is a folder"),
    # dft: every check before the SCF
    ("dft-output-folder-missing", ["dft", "{in}/good.vasp", "-o", "{out}/missing/ELFCAR"], "the folder {out}/missing does not exist"),
    ("dft-output-is-folder", ["dft", "{in}/good.vasp", "-o", "{in}/adir.cube"], "adir.cube: is a folder"),
    ("dft-unknown-engine", ["dft", "{in}/good.vasp", "--engine", "vasp", "-o", "{out}/ELFCAR"], "unknown DFT engine 'vasp'"),
    ("dft-negative-cutoff", ["dft", "{in}/good.vasp", "--cutoff", "-5", "-o", "{out}/ELFCAR"], "cutoff and k-point spacing must be positive"),
    ("dft-nan-structure", ["dft", "{in}/nan_cell.vasp", "-o", "{out}/ELFCAR"], "nan_cell.vasp: non-finite numbers (nan or inf) in the cell"),
    # the ELF commands: densities are not ELFs, ranges, grids, constant fields
    ("topology-density-npz", ["topology", "{in}/density01.npz"], "density01.npz: the file records a density (its quantity tag)"),
    ("topology-density-chgcar", ["topology", "{in}/density01_CHGCAR"], "density01_CHGCAR: the file records a density (a CHGCAR-type"),
    ("topology-out-of-range", ["topology", "{in}/values3.npz"], "values3.npz: values span 3 to 3; an ELF lies in [0, 1]"),
    ("topology-nan", ["topology", "{in}/nan_values.npz"], "nan_values.npz: 216 of the 216 values are not finite"),
    ("topology-memory", ["topology", "{in}/elf.npz"], "elf.npz: the topology on a 12x12x12 grid is too large for memory"),
    # topology of many frames: every input, option and the CSV checked before any work; no CSV left
    ("topology-missing-among-many", ["topology", "{in}/elf.npz", "{in}/missing.npz"], "missing.npz: no such file"),
    ("topology-density-among-many", ["topology", "{in}/elf.npz", "{in}/density01.npz"], "density01.npz: the file records a density"),
    ("topology-structure-without-model", ["topology", "{in}/good.vasp"], "good.vasp: not an ELF file"),
    ("topology-elf-with-model", ["topology", "{in}/elf.npz", "--model", "{in}/tiny.safetensors"], "elf.npz: a volumetric (ELF) file"),
    ("topology-unknown-model", ["topology", "{in}/good.vasp", "--model", "nomodel"], "nomodel: no such model file or shipped model"),
    ("topology-bad-frame", ["topology", "{in}/good.vasp", "{in}/nan_position.vasp", "--model", "{in}/tiny.safetensors"], "nan_position.vasp: non-finite"),
    ("topology-spacing-without-model", ["topology", "{in}/elf.npz", "--spacing", "0.2"], "--spacing sets the grid of predicted ELFs"),
    ("topology-negative-spacing", ["topology", "{in}/good.vasp", "--model", "{in}/tiny.safetensors", "--spacing", "-1"], "spacing must be positive"),
    ("topology-zero-workers", ["topology", "{in}/elf.npz", "{in}/elf.npz", "--workers", "0"], "--workers must be at least 1, got 0"),
    ("topology-csv-is-folder", ["topology", "{in}/elf.npz", "--csv", "{in}"], "is a folder; give a file name"),
    ("topology-csv-unwritable", ["topology", "{in}/elf.npz", "{in}/elf.npz", "--csv", "/proc/elfkit-topology.csv"], "cannot write in /proc"),
    ("topology-predicted-memory", ["topology", "{in}/good.vasp", "{in}/good.vasp", "--model", "{in}/tiny.safetensors"],
     "good.vasp: the topology on a 30x30x30 grid is too large for memory"),
    ("compare-density", ["compare", "{in}/elf.npz", "{in}/density01.npz"], "density01.npz: the file records a density"),
    ("compare-grids-differ", ["compare", "{in}/elf.npz", "{in}/elf_coarse.npz"], "elf_coarse.npz: grids differ"),
    ("compare-plots-into-file", ["compare", "{in}/elf.npz", "{in}/elf.npz", "--plots", "{in}/a_file"], "a_file: {in}/a_file is a file"),
    ("report-ref-missing", ["report", "{in}/elf.npz", "--ref", "{in}/missing.npz", "-o", "{out}/report"], "missing.npz: no such file"),
    ("report-ref-density", ["report", "{in}/elf.npz", "--ref", "{in}/density01.npz", "-o", "{out}/report"], "records a density"),
    ("report-ref-other-grid", ["report", "{in}/elf.npz", "--ref", "{in}/elf_coarse.npz", "-o", "{out}/report"], "grids differ"),
    ("report-output-is-file", ["report", "{in}/elf.npz", "-o", "{in}/a_file"], "a_file: {in}/a_file is a file"),
    ("report-output-unwritable", ["report", "{in}/elf.npz", "-o", "/proc/elfkit-report"], "cannot write in /proc"),
    ("report-density", ["report", "{in}/density01.npz", "-o", "{out}/report"], "density01.npz: the file records a density"),
    ("report-plane-not-miller", ["report", "{in}/elf.npz", "--plane", "12", "-o", "{out}/report"], "--plane '12': give three Miller indices"),
    ("report-plane-zero", ["report", "{in}/elf.npz", "--plane", "000", "-o", "{out}/report"], "--plane '000': (000) is not a plane"),
    ("report-plane-bad-with-ref-missing", ["report", "{in}/elf.npz", "--plane", "1.5,0,0", "--ref", "{in}/missing.npz", "-o", "{out}/report"], "--plane '1.5,0,0'"),
    ("report-through-atom-0", ["report", "{in}/elf.npz", "--through-atom", "0", "-o", "{out}/report"], "--through-atom 0: {in}/elf.npz has atoms 1 to 2"),
    ("report-through-atom-too-big", ["report", "{in}/elf.npz", "--through-atom", "3", "-o", "{out}/report"], "--through-atom 3: {in}/elf.npz has atoms 1 to 2"),
    ("report-ref-missing-with-plane", ["report", "{in}/elf.npz", "--plane", "110", "--ref", "{in}/missing.npz", "-o", "{out}/report"], "missing.npz: no such file"),
    ("screen-missing-elf", ["screen", "{in}/good.vasp", "--elf", "{in}/missing.npz", "-o", "{out}/screen"], "missing.npz: no such file"),
    ("screen-count-mismatch", ["screen", "{in}/good.vasp", "{in}/good.vasp", "--elf", "{in}/elf.npz", "-o", "{out}/s"], "one --elf file per structure"),
    ("screen-density", ["screen", "{in}/good.vasp", "--elf", "{in}/density01.npz", "-o", "{out}/s"], "records a density"),
    ("screen-bad-structure", ["screen", "{in}/degenerate.vasp", "--elf", "{in}/elf.npz", "-o", "{out}/s"], "degenerate.vasp: the cell"),
    ("screen-output-is-file", ["screen", "{in}/good.vasp", "--elf", "{in}/elf.npz", "-o", "{in}/a_file"], "a_file is a file"),
    # data generate: specs, names, workers, scheduler
    ("generate-missing-spec", ["data", "generate", "{in}/missing.yaml"], "missing.yaml: no such file"),
    ("generate-binary-spec", ["data", "generate", "{in}/binary.yaml"], "binary.yaml: not a text (YAML) file"),
    ("generate-invalid-yaml", ["data", "generate", "{in}/not_yaml.yaml"], "not_yaml.yaml: not valid YAML"),
    ("generate-unknown-key", ["data", "generate", "{in}/typo.yaml"], "typo.yaml: invalid spec at hydrogen-md.snapshotz"),
    ("generate-negative-count", ["data", "generate", "{in}/negative_natoms.yaml"], "negative_natoms.yaml: invalid spec at hydrogen-md.trajectories.0.natoms"),
    ("generate-zero-density", ["data", "generate", "{in}/zero_rs.yaml"], "zero_rs.yaml: invalid spec at hydrogen-md.trajectories.0.rs_bohr.0"),
    ("generate-negative-cutoff", ["data", "generate", "{in}/negative_cutoff.yaml"], "negative_cutoff.yaml: invalid spec at hydrogen-md.labels.cutoff_ev"),
    ("generate-nan-cutoff", ["data", "generate", "{in}/nan_cutoff.yaml"], "nan_cutoff.yaml: invalid spec at hydrogen-md.labels.cutoff_ev"),
    ("generate-negative-volume-fraction", ["data", "generate", "{in}/negative_fraction.yaml"], "invalid spec at prototypes.volume_fractions.0"),
    ("generate-unknown-element", ["data", "generate", "{in}/unknown_element.yaml"], "invalid spec at prototypes.elements.0: Value error, 'Xx'"),
    ("generate-name-escapes-root", ["data", "generate", "{in}/escaping_name.yaml"], "escaping_name.yaml: invalid spec at hydrogen-md.name"),
    ("generate-empty-name", ["data", "generate", "{in}/empty_name.yaml"], "empty_name.yaml: invalid spec at hydrogen-md.name"),
    ("generate-negative-workers", ["data", "generate", "{in}/good.yaml", "--workers", "-2"], "--workers must be at least 1, got -2"),
    ("generate-malformed-scheduler", ["data", "generate", "{in}/good.yaml", "--scheduler", "no address"], "--scheduler no address: not a Dask scheduler address"),
    ("generate-unreachable-scheduler", ["data", "generate", "{in}/good.yaml", "--scheduler", "tcp://127.0.0.1:9"], "--scheduler tcp://127.0.0.1:9: no scheduler answers"),
    ("generate-scratch-is-file", ["data", "generate", "{in}/good.yaml", "--scratch", "{in}/a_file"], "a_file is a file, not a folder"),
    # data list / validate / repack: names and manifests
    ("list-binary-manifest", ["data", "list"], "binary/manifest.json: corrupt manifest"),
    ("validate-escaping-name", ["data", "validate", "../.."], "'../..': not a dataset name"),
    ("validate-empty-name", ["data", "validate", ""], "'': not a dataset name"),
    ("validate-missing", ["data", "validate", "nothing-here"], "nothing-here: no dataset here (no manifest.json)"),
    ("validate-binary-manifest", ["data", "validate", "binary"], "binary/manifest.json: corrupt manifest"),
    ("validate-not-a-manifest", ["data", "validate", "not-a-manifest"], "not-a-manifest/manifest.json: corrupt manifest (no list of samples)"),
    ("repack-escaping-name", ["data", "repack", "../.."], "'../..': not a dataset name"),
    ("repack-binary-manifest", ["data", "repack", "binary"], "binary/manifest.json: corrupt manifest"),
    # predict: structures, models, grids, outputs
    ("predict-missing", ["predict", "{in}/missing.cif", "--model", "{in}/tiny.safetensors"], "missing.cif: no such file"),
    ("predict-nan-position", ["predict", "{in}/nan_position.vasp", "--model", "{in}/tiny.safetensors"], "nan_position.vasp: non-finite"),
    ("predict-unknown-model", ["predict", "{in}/good.vasp", "--model", "nomodel"], "nomodel: no such model file or shipped model"),
    ("predict-corrupt-model", ["predict", "{in}/good.vasp", "--model", "{in}/binary.cif"], "binary.cif: not an elfkit model file"),
    ("predict-zero-grid", ["predict", "{in}/good.vasp", "--grid", "0", "0", "0"], "three positive sizes"),
    ("predict-negative-spacing", ["predict", "{in}/good.vasp", "--spacing", "-1"], "spacing must be positive"),
    ("predict-missing-folder", ["predict", "{in}/good.vasp", "--model", "{in}/tiny.safetensors", "-o", "{out}/no/x.ELFCAR"], "the folder"),
    ("predict-unknown-format", ["predict", "{in}/good.vasp", "--model", "{in}/tiny.safetensors", "-o", "{out}/x.txt"], "x.txt: cannot tell the volumetric format"),
    ("predict-one-output-two-inputs", ["predict", "{in}/good.vasp", "{in}/good.vasp", "--model", "{in}/tiny.safetensors", "-o", "{out}/x.ELFCAR"], "x.ELFCAR: -o names one file but 2"),
    ("predict-same-output-twice", ["predict", "{in}/good.vasp", "{in}/good.vasp", "--model", "{in}/tiny.safetensors", "--out-dir", "{out}"], "good.ELFCAR: two predictions would be written"),
    ("predict-memory", ["predict", "{in}/good.vasp", "--model", "{in}/tiny.safetensors", "--grid", "500", "500", "500"], "good.vasp: the prediction on a 500x500x500 grid is too large for memory"),
    ("predict-out-dir-is-file", ["predict", "{in}/good.vasp", "--model", "{in}/tiny.safetensors", "--out-dir", "{in}/a_file"], "a_file is a file, not a folder"),
    # train: configs and run folders
    ("train-missing-config", ["train", "{in}/missing.yaml"], "missing.yaml: no such file"),
    ("train-binary-config", ["train", "{in}/binary.cif"], "binary.cif: not a text (YAML) file"),
    ("train-typo-config", ["train", "{in}/typo_config.yaml"], "typo_config.yaml: invalid config at learning_rat: Extra inputs are not permitted"),
    ("train-zero-steps", ["train", "{in}/zero_steps.yaml"], "zero_steps.yaml: invalid config at steps: Input should be greater than 0"),
    ("train-unknown-dataset", ["train", "{in}/config.yaml"], "nothing-here: no dataset here"),
    ("train-out-is-file", ["train", "{in}/config.yaml", "--out", "{in}/a_file"], "a_file is a file, not a folder"),
    # evaluate: models and datasets
    ("evaluate-unknown-dataset", ["evaluate", "{in}/tiny.safetensors", "nothing-here"], "nothing-here: no dataset here"),
    ("evaluate-escaping-name", ["evaluate", "{in}/tiny.safetensors", "../.."], "'../..': not a dataset name"),
    ("evaluate-unknown-model", ["evaluate", "nomodel", "tiny"], "nomodel: no such model file or shipped model"),
    ("evaluate-same-model-twice", ["evaluate", "{in}/tiny.safetensors", "{in}/tiny.safetensors", "tiny"], "need distinct names"),
    ("evaluate-output-folder", ["evaluate", "{in}/tiny.safetensors", "tiny", "-o", "{in}"], "is a folder"),
]

ENVIRONMENT = {
    "sad-memory": {"ELFKIT_MEMORY_GB": "1"},
    "topology-memory": {"ELFKIT_MEMORY_GB": "0.1"},
    "topology-predicted-memory": {"ELFKIT_MEMORY_GB": "0.1"},
    "predict-memory": {"ELFKIT_MEMORY_GB": "2"},
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    _make_inputs(folder)
    return folder


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    _make_data_root(root)
    return root


def _snapshot(*folders) -> dict:
    """Every path under `folders` with its size and modification time."""
    return {
        str(path): (path.stat().st_size, path.stat().st_mtime_ns)
        for folder in folders
        for path in sorted(folder.rglob("*"))
    }


def _fill(arguments, **places) -> list[str]:
    return [a.format(**places) if "{" in a else a for a in arguments]


@pytest.mark.parametrize("case, arguments, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line_and_leaves_nothing(case, arguments, expected, inputs, data_root, tmp_path, monkeypatch):
    import elfkit.data.runner

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("ELFKIT_DATA_DIR", str(data_root))
    monkeypatch.setattr(elfkit.data.runner, "SCHEDULER_TIMEOUT_S", 1)
    for key, value in ENVIRONMENT.get(case, {}).items():
        monkeypatch.setenv(key, value)
    places = {"in": inputs, "out": work, "root": data_root}
    before = _snapshot(inputs, data_root, work)
    result = runner.invoke(app, _fill(arguments, **places))
    assert result.exit_code == 2, (result.exception, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("elfkit: error: ") and expected.format(**places) in lines[0]
    assert "Traceback" not in result.output and result.stdout == ""
    assert _snapshot(inputs, data_root, work) == before


CRASHES = [
    (["info", "{in}/nan_position.vasp"], "non-finite numbers (nan or inf) in the positions"),
    (["sad", "{in}/inf_position.vasp", "-o", "{out}/rho.cube"], "non-finite numbers (nan or inf) in the positions"),
    (["convert", "{in}/truncated.cube.gz", "{out}/x.npz"], "cannot read the file as text"),
    (["info", "{in}/degenerate.vasp"], "the cell is degenerate"),
]


@pytest.mark.parametrize("arguments, expected", CRASHES, ids=["nan-info", "inf-sad", "truncated-gz", "degenerate-cell"])
def test_inputs_that_crashed_the_process_give_one_line_in_a_real_process(arguments, expected, inputs, tmp_path):
    """These segfaulted (spglib on nan), printed only 'Aborted.' (a truncated gzip stream),
    or grew past 3 GB (the neighbour search of a degenerate cell)."""
    result = subprocess.run(
        [sys.executable, "-m", "elfkit", *_fill(arguments, **{"in": inputs, "out": tmp_path})],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "ELFKIT_MEMORY_GB": "2"},
    )
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_a_crash_in_report_leaves_no_pictures(inputs, tmp_path, monkeypatch):
    from elfkit.analysis import report

    def broken(*args, **kwargs):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(report, "write_page", broken)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["report", str(inputs / "elf.npz"), "-o", str(tmp_path / "report")])
    assert isinstance(result.exception, RuntimeError)
    assert list(tmp_path.iterdir()) == []


def test_compare_of_two_constant_fields_prints_an_undefined_r2(tmp_path):
    atoms = bulk("Li", "bcc", a=3.4, cubic=True)
    save_field(tmp_path / "a.npz", Field(atoms, np.full((8, 8, 8), 0.45), "elf"))
    save_field(tmp_path / "b.npz", Field(atoms, np.full((8, 8, 8), 0.4), "elf"))
    result = runner.invoke(app, ["compare", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")])
    assert result.exit_code == 0, result.output
    assert re.match(r"R² +undefined \(constant reference\)\nmean absolute error +0\.0500\n", result.stdout)


def test_every_command_has_bad_input_cases():
    commands = {c[1][0] if c[1][0] != "data" else f"data {c[1][1]}" for c in CASES}
    assert commands == {"info", "sad", "convert", "dft", "compare", "topology", "report", "screen",
                        "predict", "train", "evaluate", "data generate", "data list", "data validate", "data repack"}
