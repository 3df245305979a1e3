"""elfkit's QE pseudopotentials: reproducible from their committed ld1.x inputs, and giving
the same valence ELF as GPAW on a metal."""

import importlib.util
import shutil
import subprocess
import xml.etree.ElementTree as ET

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


RADIAL_FUNCTIONS = ("PP_BETA.", "PP_CHI.")
"""Projectors and pseudo-wave functions: an eigenvector solver may return either sign."""
UNSTAMPED = ("date", "generated")
"""Header attributes that name when and with which QE build a file was made, not what it holds."""
RTOL = 1e-5
"""Relative tolerance of every number: a different CPU, BLAS or compiler moves ld1.x's output
by about 1e-9; a changed recipe (radius, configuration, functional) by 1e-3 and more."""


def _upf_blocks(upf_text: str) -> dict[str, tuple[dict, np.ndarray]]:
    """{tag: (attributes, numbers)} of every UPF element outside the human-readable PP_INFO."""
    root = ET.fromstring(upf_text)
    info = set(root.find("PP_INFO").iter()) if root.find("PP_INFO") is not None else set()
    return {
        element.tag: (dict(element.attrib), np.array((element.text or "").split(), dtype=float))
        for element in root.iter()
        if element not in info and element is not root
    }


def _assert_same_number(made: str, packaged: str, where: str) -> None:
    try:
        a, b = float(made), float(packaged)
    except ValueError:
        assert made == packaged, where
        return
    assert a == pytest.approx(b, rel=RTOL, abs=1e-12), where


def _assert_same_pseudopotential(made_text: str, packaged_text: str) -> None:
    """Same blocks, attributes and numbers within RTOL; radial functions up to their sign;
    D_ij up to the signs of its projectors."""
    made, packaged = _upf_blocks(made_text), _upf_blocks(packaged_text)
    assert made.keys() == packaged.keys()
    for tag, (attributes, numbers) in packaged.items():
        made_attributes, made_numbers = made[tag]
        assert made_attributes.keys() == attributes.keys(), tag
        for key in attributes.keys() - set(UNSTAMPED):
            _assert_same_number(made_attributes[key], attributes[key], f"{tag} {key}")
        assert made_numbers.shape == numbers.shape, tag
        if tag.startswith(RADIAL_FUNCTIONS) and made_numbers @ numbers < 0:
            made_numbers = -made_numbers
        if tag == "PP_DIJ":
            made_numbers, numbers = np.abs(made_numbers), np.abs(numbers)
        scale = np.abs(numbers).max(initial=0.0)
        np.testing.assert_allclose(made_numbers, numbers, rtol=RTOL, atol=RTOL * scale, err_msg=tag)


def test_the_comparison_ignores_signs_and_rounding_but_not_a_changed_recipe():
    packaged = (PACKAGE_PSEUDO_DIR / "Al.pbe-tm.UPF").read_text()
    root = ET.fromstring(packaged)
    beta = root.find("PP_NONLOCAL/PP_BETA.1")
    beta.text = " ".join(repr(-float(v) * (1 + 1e-9)) for v in beta.text.split())
    _assert_same_pseudopotential(ET.tostring(root, encoding="unicode"), packaged)
    local = root.find("PP_LOCAL")
    local.text = " ".join(repr(float(v) * 1.001) for v in local.text.split())
    with pytest.raises(AssertionError):
        _assert_same_pseudopotential(ET.tostring(root, encoding="unicode"), packaged)
    header = ET.fromstring(packaged)
    header.find("PP_HEADER").set("z_valence", "2.0")
    with pytest.raises(AssertionError):
        _assert_same_pseudopotential(ET.tostring(header, encoding="unicode"), packaged)


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
    _assert_same_pseudopotential(made.read_text(), (PACKAGE_PSEUDO_DIR / made.name).read_text())


def test_qe_and_gpaw_give_the_same_valence_elf_for_compressed_lithium():
    atoms = bulk("Li", "bcc", a=2.9)
    shape = (16, 16, 16)
    qe = compute(atoms, shape, DFTSettings("qe", 350, 0.5, 0.2))
    gpaw = compute(atoms, shape, DFTSettings("gpaw", 350, 0.5, 0.2))
    assert np.abs(qe.elf.values - gpaw.elf.values).mean() < 0.01
    assert abs(qe.pressure_gpa - gpaw.pressure_gpa) < 0.1 * abs(gpaw.pressure_gpa)
