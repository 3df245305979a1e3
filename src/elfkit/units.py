"""Physical constants and the unit conventions of elfkit, stated once.

At the API: lengths in Å, energies in eV, pressures in GPa, densities in electrons/Å³,
ELF dimensionless in [0, 1]. Atomic units (bohr, hartree) appear only inside physics
kernels and file formats that demand them (Gaussian cube), converted at the boundary.
"""

from ase.units import Bohr, Hartree

BOHR_IN_ANGSTROM: float = float(Bohr)
"""One bohr in Å (CODATA value used by ASE)."""

HARTREE_IN_EV: float = float(Hartree)
"""One hartree in eV."""

DENSITY_AU_TO_ANGSTROM3: float = 1.0 / BOHR_IN_ANGSTROM**3
"""Multiply a density in electrons/bohr³ by this to get electrons/Å³."""
