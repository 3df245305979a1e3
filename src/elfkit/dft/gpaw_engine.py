"""GPAW engine (PAW, plane waves): the engine for elements without a validated QE
pseudopotential and the cross-check of QE. PAW setups come from the `gpaw-data` package.

The ELF is GPAW's pseudo-ELF (gpaw.elf.elf_from_dft_calculation) on the wave-function grid,
which is set to m times the requested grid so the ELF lands on the requested points.
"""

from __future__ import annotations

import math
import time

import numpy as np
from ase import Atoms

from elfkit.dft.base import (
    EV_PER_ANGSTROM3_IN_GPA,
    DFTError,
    DFTResult,
    DFTSettings,
    kpoint_mesh,
    pressure_from_stress,
    refinement_factor,
    scratch_folder,
    sha256_of,
)
from elfkit.field import Field
from elfkit.physics import RHO_MIN_AU


def run_gpaw(atoms: Atoms, shape, settings: DFTSettings, scratch=None) -> DFTResult:
    """SCF + ELF with GPAW; see `elfkit.dft.compute`."""
    try:
        import gpaw
        from gpaw import GPAW, PW, KohnShamConvergenceError
    except ImportError:
        raise DFTError("GPAW is not installed (make installs it; or pip install gpaw gpaw-data)") from None
    factor = refinement_factor(atoms.cell.array, shape, settings.cutoff_ev)
    dft_shape = tuple(factor * n for n in shape)
    mesh = kpoint_mesh(atoms.cell.array, settings.kspacing)
    started = time.perf_counter()
    with scratch_folder(scratch) as folder:
        calc = GPAW(
            mode=PW(settings.cutoff_ev),
            setups=settings.gpaw_setups or "paw",
            xc="PBE",
            kpts={"size": mesh, "gamma": True},
            nbands=band_count(atoms, settings.gpaw_setups),
            gpts=dft_shape,
            occupations=_occupations(settings.smearing_ev),
            convergence={"energy": settings.scf_tolerance_ev},
            maxiter=settings.max_scf_iterations,
            txt=str(folder / "gpaw.txt"),
        )
        work = atoms.copy()
        work.calc = calc
        try:
            energy = float(work.get_potential_energy())
            stress = work.get_stress(voigt=False) * EV_PER_ANGSTROM3_IN_GPA
        except KohnShamConvergenceError:
            raise DFTError(f"SCF did not converge (see {folder / 'gpaw.txt'})") from None
        elf = valence_elf(calc)
    if elf.shape != dft_shape:
        raise DFTError(f"GPAW returned the ELF on {elf.shape}, expected {dft_shape}")
    metadata = {
        "engine": "gpaw",
        "engine_version": gpaw.__version__,
        "settings": settings.as_dict(),
        "kpoints": list(mesh),
        "bands": calc.get_number_of_bands(),
        "dft_grid": list(dft_shape),
        "scf_iterations": _iterations(calc),
        "electrons": float(calc.get_number_of_electrons()),
        "setups": _setup_hashes(calc),
        "wall_seconds": round(time.perf_counter() - started, 2),
    }
    elf = elf[::factor, ::factor, ::factor]
    field = Field(atoms.copy(), np.clip(elf, 0.0, 1.0), "elf", metadata={"source_format": "gpaw"})
    return DFTResult(field, energy, pressure_from_stress(stress), stress, metadata)


def band_count(atoms: Atoms, setups: dict[str, str] | None = None) -> int:
    """Bands for GPAW as Quantum ESPRESSO counts them for metals, max(nint(1.2 N/2), nint(N/2) + 4)
    for N valence electrons of the chosen setups, and at least every orbital of a partly filled
    4f/5f shell plus 4: that narrow manifold sits at the Fermi level, and Ce's SCF (12
    electrons, 10 bands by the QE count) never converged with part of it cut off. GPAW's own
    default (the setups' bound orbitals) is not used: it leaves no empty band for e.g. Ca
    (3s3p4s: 10 electrons, 5 orbitals), so fcc Ca came out an insulator."""
    symbols = atoms.get_chemical_symbols()
    atomic = _setups(symbols, setups)
    electrons = {s: setup.Nv for s, setup in atomic.items()}
    f_electrons = {s: _partly_filled_f(setup) for s, setup in atomic.items()}
    total = sum(electrons[s] for s in symbols)
    with_f_manifold = _nint(sum(electrons[s] - f_electrons[s] for s in symbols) / 2)
    with_f_manifold += 7 * sum(f_electrons[s] > 0 for s in symbols) + 4
    return max(_nint(1.2 * total / 2), _nint(total / 2) + 4, with_f_manifold)


def _partly_filled_f(setup) -> float:
    """Electrons in the setup's bound, partly filled f shell (0 when there is none)."""
    return sum(f for n, l, f in zip(setup.n_j, setup.l_j, setup.f_j) if n > 0 and l == 3 and 0 < f < 14)


def setup_valence(symbols, setups: dict[str, str] | None = None) -> dict[str, int]:
    """Valence electrons per element of the GPAW PBE setups (`setups` names per element,
    GPAW's default "paw" for the others)."""
    return {s: int(setup.Nv) for s, setup in _setups(symbols, setups).items()}


def _setups(symbols, setups: dict[str, str] | None) -> dict:
    """GPAW PBE setup objects per element (`setups` names, GPAW's default "paw" for the others)."""
    from gpaw.setup import create_setup

    setups = setups or {}
    return {s: create_setup(s, "PBE", type=setups.get(s, "paw")) for s in sorted(set(symbols))}


def _nint(x: float) -> int:
    """Fortran's NINT for x >= 0 (halves round up), as QE counts bands."""
    return math.floor(x + 0.5)


def setups_with_valence(valence: dict[str, float]) -> dict[str, str]:
    """GPAW PBE setup names whose valence equals `valence` (electrons per element), e.g. to
    compare with a QE pseudopotential: GPAW's default Na setup has 7 electrons (2s2p
    semicore), its "1" setup one. DFTError naming the element when no setup matches."""
    from gpaw.setup import create_setup

    chosen = {}
    for symbol, electrons in sorted(valence.items()):
        for name in ("paw", str(round(electrons))):
            try:
                if create_setup(symbol, "PBE", type=name).Nv == round(electrons):
                    chosen[symbol] = name
                    break
            except (RuntimeError, OSError):
                continue
        else:
            raise DFTError(f"GPAW has no PBE setup for {symbol} with {electrons:g} valence electrons")
    return chosen


def valence_elf(calc) -> np.ndarray:
    """ELF of the valence electrons of a finished GPAW calculation, on its fine grid.

    gpaw.elf.elf_from_dft_calculation adds the PAW setups' smooth core density and core
    kinetic-energy density; Quantum ESPRESSO's pp.x uses the valence electrons only. elfkit
    takes the valence ELF from both engines, so that they agree outside the pseudisation
    spheres (for hydrogen, which has no core, the two definitions coincide).
    """
    from gpaw.elf import elf
    from gpaw.fd_operators import Gradient

    density = calc.dft.density
    density.update_ked(calc.dft.ibzwfs)
    valence_sR = density.nt_sR.new()
    valence_sR.data[:] = density.nt_sR.data - density.nct_R.data
    gradients = [Gradient(valence_sR.desc._gd, axis, n=2) for axis in range(3)]
    gradient2_sR = valence_sR.new(zeroed=True)
    for gradient2_R, valence_R in zip(gradient2_sR, valence_sR):
        for gradient in gradients:
            gradient2_R.data += gradient(valence_R).data ** 2
    kinetic_sR = density.taut_sR.data - density.tauct_R.data
    return np.asarray(elf(valence_sR.data, gradient2_sR.data, kinetic_sR, RHO_MIN_AU))


def _occupations(smearing_ev: float) -> dict:
    """Marzari-Vanderbilt smearing; GPAW treats width 0 as fixed (zero-width) occupations."""
    return {"name": "marzari-vanderbilt", "width": float(smearing_ev)}


def _setup_hashes(calc) -> dict:
    hashes = {}
    for setup in calc.dft.setups:
        path = getattr(setup, "filename", None)
        if path and setup.symbol not in hashes:
            hashes[setup.symbol] = {"file": str(path).rsplit("/", 1)[-1], "sha256": sha256_of(path)}
    return hashes


def _iterations(calc) -> int | None:
    scf = getattr(calc.dft, "scf_loop", None)
    return getattr(scf, "niter", None)
