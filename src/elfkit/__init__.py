"""elfkit: the electron localization function (ELF) of crystals from their geometry.

Conventions (stated once, tested): lengths in Å, energies in eV, densities in electrons/Å³,
ELF dimensionless; grid point (i, j, k) sits at fractional (i/N1, j/N2, k/N3)
(see `elfkit.grid`).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`elfkit.predict(atoms, grid_shape=None, model="hydrogen") -> Field` and
    `elfkit.predict_points(atoms, positions, model=...)`, imported on first use (they load
    PyTorch); `elfkit.predict` is also the module of that name, callable as its function."""
    if name in ("predict", "predict_points"):
        import elfkit.predict as module

        return module if name == "predict" else module.predict_points
    raise AttributeError(f"module 'elfkit' has no attribute {name!r}")
