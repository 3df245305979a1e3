"""Make src/elfkit/atomdata/engine_pseudo_atoms.npz: per DFT engine, the neutral free atom as that
engine's ELF sees it: the density and kinetic energy density of its smooth valence wavefunctions.

Why: both engines' reference ELF is the ELF of their smooth (pseudo) valence wavefunctions
(`elfkit.dft`), and inside the pseudisation radius those are the engine's own construction: the
shells a DFT ELF shows near a V or La nucleus are the pseudo-atom's. The ELF of the superposed
pseudo-atoms (`elfkit.features`, channel ``pseudo_atoms_elf``) reproduces them exactly for an
isolated atom; on the metals-gpaw test split it correlates with the DFT ELF at 0.79 per cell
(mean Pearson r), where the gradient-expansion ELF of the valence SAD reaches 0.28
(scratch probe of session 28, noted in the commit).

- ``qe``: ld1.x (Debian's QE) tests elfkit's UPF on the neutral atom: the occupied shells of
  GPAW's ground-state configuration that the pseudopotential treats as valence (same rule as
  scripts/make_engine_valence_table.py), and writes the pseudo-wavefunctions chi = r R(r).
- ``gpaw``: the default PBE PAW setup's pseudo partial waves of its bound states with their
  occupations (the setup's own atom, whose pseudo-wavefunctions they are).

For a shell (l, occupation f), spherically averaged: rho = f R² / 4 pi and
tau = f (R'² + l (l + 1) R² / r²) / 8 pi (the tau of `elfkit.physics`, 1/2 sum |grad psi|²).
Stored on the radial grid of the SAD table (bohr): rho in e/bohr³, tau in hartree/bohr³.

Run:  python scripts/make_pseudo_atom_table.py   (needs the dft extra and ld1.x; about a minute)
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from ase.data import chemical_symbols
from gpaw.atom.configurations import configurations
from gpaw.setup import create_setup
from make_engine_valence_table import PSEUDO_DIR, qe_valence_shells
from make_sad_table import OUTPUT_GRID, Z_MAX
from scipy.interpolate import CubicSpline

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src/elfkit/atomdata/engine_pseudo_atoms.npz"
ENGINES = ("qe", "gpaw")
_L_LETTERS = "spdf"


def shell_densities(r: np.ndarray, radial: np.ndarray, l: int, occupation: float) -> tuple[np.ndarray, np.ndarray]:
    """rho (e/bohr³) and tau (hartree/bohr³) of a spherically averaged shell of radial function R(r)."""
    slope = np.gradient(radial, r)
    centrifugal = np.divide(l * (l + 1) * radial**2, r**2, out=np.zeros_like(r), where=r > 0)
    return occupation * radial**2 / (4 * np.pi), occupation * (slope**2 + centrifugal) / (8 * np.pi)


def neutral_valence(symbol: str, lowest: dict[int, int]) -> list[tuple[int, int, float]]:
    """(n, l, occupation) of the neutral atom's occupied shells that a pseudopotential with the
    valence channels `lowest` (smallest n per l) treats as valence."""
    return [(n, l, f) for n, l, f, _ in configurations[symbol][1] if f > 0 and l in lowest and n >= lowest[l]]


def qe_pseudo_atom(symbol: str) -> tuple[np.ndarray, np.ndarray, str] | None:
    """rho and tau of the neutral pseudo-atom of elfkit's UPF on OUTPUT_GRID, and its
    configuration; None without a pseudopotential."""
    found = qe_valence_shells(symbol)
    if found is None:
        return None
    lowest, z_valence = found
    shells = neutral_valence(symbol, lowest)
    if abs(sum(f for *_, f in shells) - z_valence) > 1e-6:
        raise RuntimeError(f"qe {symbol}: neutral valence shells {shells} do not hold {z_valence} electrons")
    configuration = " ".join(f"{n}{_L_LETTERS[l]}{f:g}" for n, l, f in shells)
    generation = (PSEUDO_DIR / f"{symbol}.ld1.in").read_text()
    relativistic = re.search(r"rel\s*=\s*(\d)", generation).group(1)
    full = " ".join(f"{n}{_L_LETTERS[l]}{f:g}" for n, l, f, _ in configurations[symbol][1] if f > 0)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "pseudo.UPF").write_text((PSEUDO_DIR / f"{symbol}.pbe-tm.UPF").read_text())
        script = (f" &input\n title='{symbol}', zed={configurations[symbol][0]}.0, rel={relativistic},\n"
                  f" config='{full}', iswitch=2, dft='PBE', prefix='atom'\n /\n"
                  f" &test\n file_pseudo='pseudo.UPF', nconf=1, configts(1)='{configuration}'\n /\n")
        subprocess.run(["ld1.x"], input=script, text=True, cwd=folder, check=True, capture_output=True)
        table = np.loadtxt(Path(folder) / "atomps.wfc")
    r = table[:, 0]
    rho, tau = np.zeros_like(r), np.zeros_like(r)
    for column, (_, l, f) in enumerate(shells, start=1):
        shell_rho, shell_tau = shell_densities(r, table[:, column] / r, l, f)
        rho, tau = rho + shell_rho, tau + shell_tau
    return *_on_output_grid(r, rho, tau), configuration


def gpaw_pseudo_atom(symbol: str) -> tuple[np.ndarray, np.ndarray, str] | None:
    """The same for GPAW's default PBE setup; None when gpaw-data has none."""
    try:
        data = create_setup(symbol, "PBE").data
    except (RuntimeError, FileNotFoundError):
        return None
    if abs(sum(data.f_j) - data.Nv) > 1e-6:
        raise RuntimeError(f"gpaw {symbol}: the setup's states hold {sum(data.f_j)} electrons, not its valence {data.Nv}")
    r = data.rgd.r_g
    rho, tau = np.zeros_like(r), np.zeros_like(r)
    for n, l, f, radial in zip(data.n_j, data.l_j, data.f_j, data.phit_jg):
        if n > 0 and f > 0:
            shell_rho, shell_tau = shell_densities(r, radial, l, f)
            rho, tau = rho + shell_rho, tau + shell_tau
    configuration = " ".join(f"{n}{_L_LETTERS[l]}{f:g}" for n, l, f in zip(data.n_j, data.l_j, data.f_j) if n > 0 and f > 0)
    return *_on_output_grid(r, rho, tau), configuration


def _on_output_grid(r: np.ndarray, rho: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inside = (r > 0) & (r <= OUTPUT_GRID[-1] + 1.0)
    r, rho, tau = np.concatenate([[0.0], r[inside]]), np.concatenate([[rho[inside][0]], rho[inside]]), np.concatenate([[tau[inside][0]], tau[inside]])
    return (CubicSpline(r, rho)(OUTPUT_GRID).clip(0.0).astype(np.float32),
            CubicSpline(r, tau)(OUTPUT_GRID).clip(0.0).astype(np.float32))


def main() -> None:
    makers = {"qe": qe_pseudo_atom, "gpaw": gpaw_pseudo_atom}
    arrays = {}
    for engine in ENGINES:
        rho, tau = np.zeros((Z_MAX, len(OUTPUT_GRID)), np.float32), np.zeros((Z_MAX, len(OUTPUT_GRID)), np.float32)
        configurations_used = np.full(Z_MAX, "", dtype=object)
        for z in range(1, Z_MAX + 1):
            made = makers[engine](chemical_symbols[z])
            if made is None:
                continue
            rho[z - 1], tau[z - 1], configurations_used[z - 1] = made
            electrons = np.trapezoid(4 * np.pi * OUTPUT_GRID**2 * rho[z - 1], OUTPUT_GRID)
            print(f"{engine} {chemical_symbols[z]:2s} {configurations_used[z - 1]:24s} smooth electrons {electrons:.3f}", file=sys.stderr)
        arrays |= {f"{engine}_density_e_per_bohr3": rho, f"{engine}_kinetic_hartree_per_bohr3": tau,
                   f"{engine}_configuration": configurations_used.astype(str)}
    np.savez_compressed(
        OUT,
        z=np.arange(1, Z_MAX + 1),
        r_bohr=OUTPUT_GRID,
        **arrays,
        source=np.array("neutral pseudo-atoms: ld1.x tests of elfkit's UPFs (qe), GPAW default PBE setups' pseudo partial "
                        "waves (gpaw); scripts/make_pseudo_atom_table.py"),
    )
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
