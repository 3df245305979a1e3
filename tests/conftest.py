"""Shared structures for the tests (positions in Å)."""

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def lah10():
    import ase.io

    return ase.io.read(EXAMPLES / "LaH10_Fm-3m_170GPa.cif")


@pytest.fixture
def hcp_mg():
    return bulk("Mg", "hcp", a=3.2, c=5.2)


@pytest.fixture
def fluid_h64():
    """64 hydrogen atoms at random (but not overlapping) positions, rs = 1.4 bohr."""
    rng = np.random.default_rng(7)
    length = (64 * 4 / 3 * np.pi * (1.4 * 0.529177) ** 3) ** (1 / 3)
    positions = []
    while len(positions) < 64:
        trial = rng.random(3) * length
        delta = np.array(positions) - trial if positions else np.zeros((0, 3))
        delta -= length * np.round(delta / length)
        if not len(delta) or np.linalg.norm(delta, axis=1).min() > 0.7:
            positions.append(trial)
    return Atoms("H64", positions=positions, cell=[length] * 3, pbc=True)


@pytest.fixture
def triclinic_mix():
    """A low-symmetry two-element cell with a skewed lattice."""
    cell = [[4.1, 0.0, 0.0], [0.9, 3.8, 0.0], [0.6, 0.7, 4.4]]
    return Atoms("CaH2", scaled_positions=[[0.1, 0.2, 0.3], [0.55, 0.6, 0.5], [0.8, 0.15, 0.85]], cell=cell, pbc=True)
