"""elfkit: the electron localization function (ELF) of crystals from their geometry.

Conventions (stated once, tested): lengths in Å, energies in eV, densities in electrons/Å³,
ELF dimensionless; grid point (i, j, k) sits at fractional (i/N1, j/N2, k/N3)
(see `elfkit.grid`).
"""

__version__ = "0.1.0"
