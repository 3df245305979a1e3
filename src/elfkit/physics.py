"""The electron localization function (Becke & Edgecombe 1990; Savin et al. 1992).

All inputs in atomic units (bohr, hartree): densities in electrons/bohr³, gradients in
electrons/bohr⁴, kinetic-energy densities tau = 1/2 sum_i |grad psi_i|² in hartree/bohr³.

    D   = tau - |grad rho|² / (8 rho)               (Pauli kinetic energy density)
    D_h = (3/10) (3 pi²)^(2/3) rho^(5/3)           (uniform electron gas of density rho)
    ELF = 1 / (1 + (D / D_h)²)

Spin-polarised (Kohout & Savin 1996): D_s = tau_s - |grad rho_s|² / (8 rho_s) and
D_h,s = (3/5) (6 pi²)^(2/3) rho_s^(5/3) / 2 for each spin s, and
ELF = 1 / (1 + ((D_up + D_down) / (D_h,up + D_h,down))²).
"""

from __future__ import annotations

import numpy as np

RHO_MIN_AU = 1e-6
"""Below this density (electrons/bohr³) the ELF is undefined noise and is set to 0."""

_C_UNPOLARISED = 0.3 * (3 * np.pi**2) ** (2 / 3)
_C_PER_SPIN = 0.3 * (6 * np.pi**2) ** (2 / 3)


def elf_from_density(rho, grad_rho, tau, spin_polarized: bool = False, rho_min: float = RHO_MIN_AU):
    """ELF (dimensionless, in [0, 1]) from the density, its gradient and tau, in atomic units.

    Spin-unpolarised: rho and tau of shape S (any grid shape), grad_rho of shape (3, *S).
    Spin-polarised: a leading spin axis of length 2, i.e. rho and tau (2, *S) and grad_rho
    (2, 3, *S). Where the total density is below `rho_min` the ELF is 0. Numerical noise
    that makes D slightly negative is clipped, so the result always lies in [0, 1].
    """
    rho, grad_rho, tau = (np.asarray(a, dtype=float) for a in (rho, grad_rho, tau))
    if spin_polarized:
        _check_shapes(rho[0], grad_rho[0], tau[0], leading=2, arrays=(rho, grad_rho, tau))
        pauli = sum(_pauli(rho[s], grad_rho[s], tau[s]) for s in range(2))
        uniform = sum(_C_PER_SPIN * np.clip(rho[s], 0.0, None) ** (5 / 3) for s in range(2))
        total = rho.sum(axis=0)
    else:
        _check_shapes(rho, grad_rho, tau)
        pauli = _pauli(rho, grad_rho, tau)
        uniform = _C_UNPOLARISED * np.clip(rho, 0.0, None) ** (5 / 3)
        total = rho
    dense = total >= rho_min
    chi = np.divide(pauli, uniform, out=np.zeros_like(pauli), where=dense & (uniform > 0))
    return np.where(dense, 1.0 / (1.0 + chi**2), 0.0)


def _pauli(rho, grad_rho, tau):
    """Pauli kinetic energy density tau - |grad rho|²/(8 rho), clipped at 0."""
    weizsaecker = np.divide(
        (grad_rho**2).sum(axis=0), 8 * rho, out=np.zeros_like(rho), where=rho > 0
    )
    return np.clip(tau - weizsaecker, 0.0, None)


def _check_shapes(rho, grad_rho, tau, leading: int | None = None, arrays=()):
    if leading is not None and any(a.shape[0] != leading for a in arrays):
        raise ValueError("spin-polarised input needs a leading spin axis of length 2")
    if tau.shape != rho.shape or grad_rho.shape != (3, *rho.shape):
        raise ValueError(
            f"shapes do not fit: rho {rho.shape}, grad_rho {grad_rho.shape} (need (3, *rho)), tau {tau.shape}"
        )
