"""Make src/elfkit/atomdata/sad_densities.npz, the free-atom densities behind elfkit's SAD.

Solver: GPAW's all-electron atomic DFT code (gpaw.atom.aeatom.AllElectronAtom), PBE,
scalar-relativistic finite-difference refinement, spin-polarised (Hund's rule, summed over spins; spin-paired for the few atoms whose
polarised refinement does not converge, flagged in the table), spherical, with GPAW's
ground-state configurations. Core electrons ARE included in the 'total' density; the
'valence' density leaves out the preceding noble-gas core.

Inside a radius r_c each density is replaced by n(r) = c0 + c1 r^2 + c2 r^4 + c3 r^6 + c4 r^8,
matching n and its first three derivatives at r_c and the charge inside r_c. r_c is the
smallest radius (bohr) for which both smoothed densities stay positive and their Fourier
transforms fall below SMOOTH_TOLERANCE * N beyond the Nyquist wave number of a 0.12 Å grid.

Run:  python scripts/make_sad_table.py   (needs the dft extra: `pip install -e ".[dft]"`; about two minutes)
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from gpaw.atom.aeatom import AllElectronAtom
from gpaw.atom.configurations import configurations
from scipy.interpolate import CubicSpline

Z_MAX = 83
NOBLE_GASES = {2: "He", 10: "Ne", 18: "Ar", 36: "Kr", 54: "Xe"}
K_CHECK_PER_BOHR = np.pi / (0.12 / 0.52917721)
SMOOTH_TOLERANCE = 1e-4
RC_CANDIDATES = np.round(np.arange(0.0, 2.51, 0.05), 2)
OUTPUT_GRID = np.linspace(0.0, np.sqrt(24.0), 700) ** 2
OUT = Path(__file__).resolve().parents[1] / "src/elfkit/atomdata/sad_densities.npz"


def solve_atom(z: int):
    """All-electron PBE atom: radial grid (bohr), total and noble-gas-core densities
    (e/bohr³), core electron count, and whether the atom is spin-polarised."""
    atom, spin_polarised = solved_atom(z)
    core_states = _core_states(z)
    core = np.zeros_like(atom.rgd.r_g)
    for channel in atom.channels:
        for index, occupation in enumerate(channel.f_n):
            if (index + channel.l + 1, channel.l) in core_states:
                core += occupation * channel.calculate_density(index)
    core_count = sum(2 * (2 * l + 1) for _, l in core_states)
    return atom.rgd.r_g, atom.n_sg.sum(0), core, core_count, spin_polarised


def solved_atom(z: int) -> tuple[AllElectronAtom, bool]:
    """The spin-polarised all-electron atom of element `z`, spin-paired where that does not
    converge, and whether it is polarised."""
    try:
        return _converged_atom(z, spinpol=True), True
    except (AssertionError, RuntimeError):
        return _converged_atom(z, spinpol=False), False


def _converged_atom(z: int, spinpol: bool) -> AllElectronAtom:
    atom = AllElectronAtom(z, xc="PBE", spinpol=spinpol, log=io.StringIO())
    atom.run()
    atom.refine()
    return atom


def _core_states(z: int) -> set[tuple[int, int]]:
    below = [zn for zn in NOBLE_GASES if zn < z]
    if not below:
        return set()
    return {(n, l) for n, l, _, _ in configurations[NOBLE_GASES[max(below)]][1]}


def smoothed(r: np.ndarray, n: np.ndarray, rc: float) -> np.ndarray:
    """n(r) with the region r < rc replaced by the charge-conserving even polynomial."""
    if rc == 0.0:
        return n.copy()
    spline = CubicSpline(r, n)
    target = [spline(rc, nu) for nu in range(4)]
    fine = np.linspace(0.0, rc, 4001)
    charge = np.trapezoid(4 * np.pi * fine**2 * spline(fine), fine)
    powers = 2 * np.arange(5)
    rows = [[_derivative_of_power(p, nu, rc) for p in powers] for nu in range(4)]
    rows.append([4 * np.pi * rc ** (p + 3) / (p + 3) for p in powers])
    coefficients = np.linalg.solve(np.array(rows), np.array(target + [charge]))
    out = n.copy()
    inner = r < rc
    out[inner] = np.polynomial.polynomial.polyval(r[inner] ** 2, coefficients)
    return out


def _derivative_of_power(p: int, order: int, r: float) -> float:
    factor = 1.0
    for i in range(order):
        factor *= p - i
    return factor * r ** (p - order) if p >= order else 0.0


def transform(r: np.ndarray, n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """f(k) = 4 pi ∫ r² n(r) sin(kr)/(kr) dr on a fine uniform grid (bohr units)."""
    fine = np.arange(0.0, r[-1], 0.002)
    weight = 4 * np.pi * fine**2 * CubicSpline(r, n)(fine) * 0.002
    return np.sinc(np.outer(k, fine) / np.pi) @ weight


def choose_rc(r, densities) -> float:
    k = np.linspace(K_CHECK_PER_BOHR, 3 * K_CHECK_PER_BOHR, 200)
    for rc in RC_CANDIDATES:
        trial = [smoothed(r, n, rc) for n in densities]
        inner = r < max(rc, 1e-9) * 1.5
        if any(t[inner].min() <= 0.0 for t in trial):
            continue
        if all(np.abs(transform(r, t, k)).max() <= SMOOTH_TOLERANCE * np.trapezoid(4 * np.pi * r**2 * t, r)
               for t in trial):
            return float(rc)
    raise RuntimeError("no smoothing radius satisfies the criteria")


def main() -> None:
    rows = {"total": [], "valence": []}
    rc_values, valence_counts, polarised = [], [], []
    for z in range(1, Z_MAX + 1):
        r, total, core, core_count, spin_polarised = solve_atom(z)
        polarised.append(spin_polarised)
        valence = total - core
        mask = r <= OUTPUT_GRID[-1] + 1.0
        r, total, valence = r[mask], total[mask], np.clip(valence[mask], 0.0, None)
        rc = choose_rc(r, [total, valence])
        for kind, density in (("total", total), ("valence", valence)):
            rows[kind].append(CubicSpline(r, smoothed(r, density, rc))(OUTPUT_GRID).clip(0.0))
        rc_values.append(rc)
        valence_counts.append(z - core_count)
        print(f"Z={z:2d} rc={rc:.2f} bohr valence={z - core_count} spin-polarised={spin_polarised}", file=sys.stderr)
    np.savez_compressed(
        OUT,
        z=np.arange(1, Z_MAX + 1),
        r_bohr=OUTPUT_GRID,
        total_e_per_bohr3=np.array(rows["total"], dtype=np.float32),
        valence_e_per_bohr3=np.array(rows["valence"], dtype=np.float32),
        valence_electrons=np.array(valence_counts),
        smoothing_radius_bohr=np.array(rc_values),
        spin_polarised=np.array(polarised),
        source=np.array("GPAW aeatom, PBE, scalar-relativistic, spin-polarised spherical atoms; scripts/make_sad_table.py"),
    )
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
