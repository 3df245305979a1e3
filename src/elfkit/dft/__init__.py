"""First-principles reference ELF: Quantum ESPRESSO and GPAW behind one interface.

    result = compute(atoms, grid_shape, DFTSettings(engine="qe"))

Every engine returns the ELF on exactly `grid_shape` (run on a grid m times finer when the
cutoff needs it, then sampled at every m-th point), the total energy, the stress and
pressure from the stress tensor, and metadata naming the engine version, every setting
and the pseudopotential/setup hashes. An SCF that does not converge raises DFTError.
"""

from __future__ import annotations

from ase import Atoms

from elfkit.dft.base import ENGINES, DFTError, DFTResult, DFTSettings, kpoint_mesh
from elfkit.grid import check_grid_shape

__all__ = ["compute", "DFTSettings", "DFTResult", "DFTError", "ENGINES", "kpoint_mesh"]


def compute(atoms: Atoms, grid_shape, settings: DFTSettings, scratch=None) -> DFTResult:
    """Run one SCF with `settings.engine` and return the ELF on `grid_shape`.

    `scratch` is a folder for the engine's files (a temporary one, removed afterwards, if None).
    """
    shape = check_grid_shape(grid_shape)
    if settings.engine == "qe":
        from elfkit.dft.qe import run_qe

        return run_qe(atoms, shape, settings, scratch)
    from elfkit.dft.gpaw_engine import run_gpaw

    return run_gpaw(atoms, shape, settings, scratch)
