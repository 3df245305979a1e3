"""elfkit's QE pseudopotentials: reproducible from their committed ld1.x inputs, and giving
the same valence ELF as GPAW on a metal."""

import importlib.util
import re
import shutil
import subprocess

import numpy as np
import pytest
from ase.build import bulk

from elfkit.dft import DFTSettings, compute
from elfkit.dft.qe import PACKAGE_PSEUDO_DIR

from conftest import REPO

INPUTS = sorted(PACKAGE_PSEUDO_DIR.glob("*.ld1.in"))


def _recipes():
    spec = importlib.util.spec_from_file_location("make_pseudopotentials", REPO / "scripts" / "make_pseudopotentials.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _numbers(upf_text: str) -> str:
    """The UPF after its human-readable section, without the generation date ld1.x stamps in."""
    return re.sub(r'date="[^"]*"', 'date=""', upf_text.split("END OF HUMAN READABLE SECTION", 1)[1])


def test_every_packaged_pseudopotential_has_its_input_and_ld1_log():
    for upf in PACKAGE_PSEUDO_DIR.glob("*.UPF"):
        symbol = upf.name.split(".")[0]
        assert (PACKAGE_PSEUDO_DIR / f"{symbol}.ld1.in").exists() and (PACKAGE_PSEUDO_DIR / f"{symbol}.ld1.out").exists()


@pytest.mark.parametrize("source", INPUTS, ids=[p.name.split(".")[0] for p in INPUTS])
def test_ld1_reproduces_the_packaged_pseudopotential(source, tmp_path):
    symbol = source.name.split(".")[0]
    recipes = _recipes()
    if symbol in recipes.RECIPES:
        assert recipes.ld1_input(symbol) == source.read_text()
    shutil.copy(source, tmp_path)
    with open(source) as stdin:
        subprocess.run(["ld1.x"], stdin=stdin, cwd=tmp_path, capture_output=True, check=True)
    made = next(tmp_path.glob("*.UPF"))
    assert _numbers(made.read_text()) == _numbers((PACKAGE_PSEUDO_DIR / made.name).read_text())


def test_qe_and_gpaw_give_the_same_valence_elf_for_compressed_lithium():
    atoms = bulk("Li", "bcc", a=2.9)
    shape = (16, 16, 16)
    qe = compute(atoms, shape, DFTSettings("qe", 350, 0.5, 0.2))
    gpaw = compute(atoms, shape, DFTSettings("gpaw", 350, 0.5, 0.2))
    assert np.abs(qe.elf.values - gpaw.elf.values).mean() < 0.01
    assert abs(qe.pressure_gpa - gpaw.pressure_gpa) < 0.1 * abs(gpaw.pressure_gpa)
