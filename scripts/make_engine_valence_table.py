"""Make src/elfkit/atomdata/engine_valence_densities.npz: per DFT engine, the free-atom density of
exactly the electrons that engine treats explicitly (its pseudopotential's or PAW setup's valence).

Why: elfkit's reference ELF is the valence ELF of the labelling engine, and the engines' valence
shells differ (GPAW's default Mg and Na setups keep 2s2p, our QE ones do not; La, Ca, Sr, Y, Sc,
Zr, K, Ba keep their semicore s and p in both). A model that sees the SAD of the labelling
engine's valence electrons knows which shells the label contains.

Shells: the neutral all-electron atom of scripts/make_sad_table.py (GPAW aeatom, PBE). An
occupied shell (n, l) is valence when the engine lists a valence shell of the same l with
principal number <= n (QE: the UPF's "Valence configuration"; GPAW: the default setup's bound
states); the shells' electron count must equal the engine's valence (z_valence, setup Nv).
Smoothed inside r_c like the SAD table (own r_c per density, same criteria).

Run:  python scripts/make_engine_valence_table.py   (needs the dft extra; about three minutes)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
from ase.data import chemical_symbols
from gpaw.setup import create_setup
from make_sad_table import OUTPUT_GRID, Z_MAX, choose_rc, smoothed, solved_atom
from scipy.interpolate import CubicSpline

ROOT = Path(__file__).resolve().parents[1]
PSEUDO_DIR = ROOT / "src/elfkit/dft/pseudo"
OUT = ROOT / "src/elfkit/atomdata/engine_valence_densities.npz"
ENGINES = ("qe", "gpaw")
_UPF_SHELL = re.compile(r"^\s*(\d)([SPDF])\s+\d\s+(\d)\s+[0-9.]+", re.MULTILINE)


def qe_valence_shells(symbol: str) -> tuple[dict[int, int], float] | None:
    """Smallest principal number per l among the valence shells of elfkit's UPF for `symbol`,
    and its z_valence; None without a pseudopotential."""
    path = PSEUDO_DIR / f"{symbol}.pbe-tm.UPF"
    if not path.exists():
        return None
    text = path.read_text()
    block = text.split("Valence configuration:")[1].split("Generation configuration:")[0]
    lowest: dict[int, int] = {}
    for n, _, l in _UPF_SHELL.findall(block):
        lowest[int(l)] = min(int(n), lowest.get(int(l), 99))
    z_valence = float(re.search(r'z_valence="\s*([0-9.Ee+-]+)"', text).group(1))
    return lowest, z_valence


def gpaw_valence_shells(symbol: str) -> tuple[dict[int, int], float] | None:
    """The same for GPAW's default PBE PAW setup; None when gpaw-data has none."""
    try:
        setup = create_setup(symbol, "PBE")
    except (RuntimeError, FileNotFoundError):
        return None
    lowest: dict[int, int] = {}
    for n, l in zip(setup.n_j, setup.l_j):
        if n > 0:
            lowest[l] = min(n, lowest.get(l, 99))
    return lowest, float(setup.Nv)


def valence_density(atom, lowest: dict[int, int], expected: float, symbol: str) -> np.ndarray:
    """Density (e/bohr³) of the atom's occupied shells that the engine treats as valence."""
    density, count = np.zeros_like(atom.rgd.r_g), 0.0
    for channel in atom.channels:
        for index, occupation in enumerate(channel.f_n):
            n = index + channel.l + 1
            if occupation > 0 and channel.l in lowest and n >= lowest[channel.l]:
                density += occupation * channel.calculate_density(index)
                count += occupation
    if abs(count - expected) > 1e-6:
        raise RuntimeError(f"{symbol}: valence shells hold {count} electrons, the engine has {expected}")
    return density


def main() -> None:
    readers = {"qe": qe_valence_shells, "gpaw": gpaw_valence_shells}
    densities = {e: np.zeros((Z_MAX, len(OUTPUT_GRID)), dtype=np.float32) for e in ENGINES}
    counts = {e: np.zeros(Z_MAX) for e in ENGINES}
    radii = {e: np.zeros(Z_MAX) for e in ENGINES}
    for z in range(1, Z_MAX + 1):
        symbol = chemical_symbols[z]
        shells = {e: readers[e](symbol) for e in ENGINES}
        if not any(shells.values()):
            continue
        atom = solved_atom(z)[0]
        for engine, found in shells.items():
            if found is None:
                continue
            r = atom.rgd.r_g
            n = valence_density(atom, *found, symbol)
            mask = r <= OUTPUT_GRID[-1] + 1.0
            r, n = r[mask], np.clip(n[mask], 0.0, None)
            rc = choose_rc(r, [n])
            densities[engine][z - 1] = CubicSpline(r, smoothed(r, n, rc))(OUTPUT_GRID).clip(0.0)
            counts[engine][z - 1], radii[engine][z - 1] = found[1], rc
            print(f"{engine} {symbol:2s} valence={found[1]:g} rc={rc:.2f} bohr", file=sys.stderr)
    np.savez_compressed(
        OUT,
        z=np.arange(1, Z_MAX + 1),
        r_bohr=OUTPUT_GRID,
        **{f"{e}_e_per_bohr3": densities[e] for e in ENGINES},
        **{f"{e}_valence_electrons": counts[e] for e in ENGINES},
        **{f"{e}_smoothing_radius_bohr": radii[e] for e in ENGINES},
        source=np.array("GPAW aeatom, PBE; valence shells of elfkit's QE UPFs and GPAW's default PAW setups; "
                        "scripts/make_engine_valence_table.py"),
    )
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
