"""What every DFT engine takes and returns, and the grid rules they share.

Units at this interface: cutoffs and energies in eV, k-point spacing in 1/Å (2π included,
as VASP's KSPACING), pressures and stresses in GPa, ELF dimensionless on the elfkit grid.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from elfkit.errors import ElfkitError
from elfkit.field import Field
from elfkit.units import BOHR_IN_ANGSTROM, HARTREE_IN_EV

ENGINES = ("qe", "gpaw")
EV_PER_ANGSTROM3_IN_GPA = 160.21766208


class DFTError(ElfkitError):
    """A DFT calculation could not be set up, failed, or did not converge."""


@dataclass(frozen=True)
class DFTSettings:
    """Settings of one reference calculation (PBE, plane waves).

    cutoff_ev: plane-wave kinetic-energy cutoff of the wave functions (eV); the density
        uses four times this (norm-conserving / PAW pseudo-density).
    kspacing: largest distance between k-points in 1/Å (2π included); None means Gamma only.
    smearing_ev: Marzari-Vanderbilt cold smearing width (eV); 0 means fixed occupations.
    scf_tolerance_ev: SCF energy convergence per cell (eV).
    pseudo_dir: QE only: a folder with one <Symbol>*.UPF per element; None uses elfkit's own.
    gpaw_setups: GPAW only: setup name per element, e.g. {"Na": "1"} for the one-electron
        setup (see elfkit.dft.gpaw_engine.setups_with_valence); None uses GPAW's defaults.
    """

    engine: str = "qe"
    cutoff_ev: float = 680.0
    kspacing: float | None = None
    smearing_ev: float = 0.1
    scf_tolerance_ev: float = 1e-6
    max_scf_iterations: int = 200
    pseudo_dir: str | None = None
    gpaw_setups: dict[str, str] | None = None

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise DFTError(f"unknown DFT engine {self.engine!r}; use one of {', '.join(ENGINES)}")
        if not self.cutoff_ev > 0 or self.smearing_ev < 0 or (self.kspacing is not None and not self.kspacing > 0):
            raise DFTError("cutoff and k-point spacing must be positive and smearing non-negative")

    def as_dict(self) -> dict:
        """Plain-JSON form."""
        return asdict(self)


@dataclass
class DFTResult:
    """ELF on the requested grid, total energy (eV), pressure and stress (GPa), metadata."""

    elf: Field
    energy_ev: float
    pressure_gpa: float
    stress_gpa: np.ndarray
    metadata: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Plain-JSON form of everything but the ELF values."""
        return {
            "energy_ev": self.energy_ev,
            "pressure_gpa": self.pressure_gpa,
            "stress_gpa": np.asarray(self.stress_gpa).tolist(),
            "grid": list(self.elf.values.shape),
            **self.metadata,
        }


def kpoint_mesh(cell: np.ndarray, kspacing: float | None) -> tuple[int, int, int]:
    """Monkhorst-Pack sizes n_i = ceil(|b_i| / kspacing) with |b_i| = 2π/d_i (1/Å)."""
    if kspacing is None:
        return (1, 1, 1)
    reciprocal = 2 * np.pi * np.linalg.inv(np.asarray(cell, dtype=float)).T
    return tuple(max(1, math.ceil(np.linalg.norm(b) / kspacing - 1e-9)) for b in reciprocal)


def refinement_factor(cell: np.ndarray, shape, cutoff_ev: float) -> int:
    """Smallest integer m such that a grid m*shape holds the density's plane-wave sphere
    (|G| <= 2 sqrt(2 E_cut), atomic units); the ELF is then taken at every m-th point."""
    needed = _points_for_density_sphere(cell, cutoff_ev)
    return max(1, max(math.ceil(n / s) for n, s in zip(needed, shape)))


def dft_grid_shape(cell: np.ndarray, spacing: float, cutoff_ev: float) -> tuple[int, int, int]:
    """FFT-friendly grid with spacing <= `spacing` (Å) that also holds the density's
    plane-wave sphere for `cutoff_ev`, so a DFT run needs no refinement (m = 1)."""
    from elfkit.grid import fft_friendly_size

    lengths = np.linalg.norm(np.asarray(cell, dtype=float), axis=1)
    needed = _points_for_density_sphere(cell, cutoff_ev)
    return tuple(fft_friendly_size(max(math.ceil(l / spacing - 1e-9), math.ceil(n))) for l, n in zip(lengths, needed))


def _points_for_density_sphere(cell: np.ndarray, cutoff_ev: float) -> np.ndarray:
    """Points per lattice vector needed to hold |G| <= 2 sqrt(2 E_cut) (atomic units)."""
    g_density = 2 * math.sqrt(2 * cutoff_ev / HARTREE_IN_EV) / BOHR_IN_ANGSTROM
    return g_density * np.linalg.norm(np.asarray(cell, dtype=float), axis=1) / math.pi + 1


def pressure_from_stress(stress_gpa: np.ndarray) -> float:
    """Pressure (GPa) = -trace(stress)/3 with the tension-positive stress convention."""
    return float(-np.trace(stress_gpa) / 3)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@contextmanager
def scratch_folder(scratch):
    """The given folder (created if needed), or a temporary one removed afterwards."""
    if scratch is not None:
        Path(scratch).mkdir(parents=True, exist_ok=True)
        yield Path(scratch).resolve()
        return
    with tempfile.TemporaryDirectory(prefix="elfkit-dft-") as tmp:
        yield Path(tmp)
