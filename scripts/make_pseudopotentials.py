"""Generate elfkit's norm-conserving PBE pseudopotentials with Quantum ESPRESSO's ld1.x.

Each element's recipe (reference configuration, pseudised channels with their radii in bohr,
the local channel, the partial-core radius) is in RECIPES. The script writes
<X>.ld1.in, runs `ld1.x` and keeps <X>.ld1.out (the all-electron and pseudo-atom checks
ld1.x prints) next to <X>.pbe-tm.UPF. Troullier-Martins, scalar-relativistic, nonlinear
core correction. Every pseudopotential is then validated against GPAW with
benchmarks/pseudo_validation.py before a dataset uses it.

Run:  python scripts/make_pseudopotentials.py [ELEMENT ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from ase.data import atomic_numbers

OUT = Path(__file__).resolve().parents[1] / "src" / "elfkit" / "dft" / "pseudo"

# symbol: (configuration, [(label, l, occupation, rc_bohr[, energy_ry])], local channel l,
# partial-core radius bohr). A channel without an energy is pseudised at its bound eigenvalue;
# unbound ones (empty d shells of Al and the alkalis) at the given reference energy (Ry).
# K, Ca, Sc, Sr, Y, Zr, Ba and La are semicore (their outer s and p shells in valence, as
# GPAW's default setups) and made from their closed-shell ions (K+ ... La3+): one projector
# per channel, and the outer s valence electrons live in the local s channel (Sr: p local,
# s local gives a ghost state). La needs an empty 4f channel (without it its pressure at half
# volume is 40 % high). All but K and Ba agree with GPAW only from 900 eV up
# (elfkit.dft.qe.MINIMUM_CUTOFF_EV).
RECIPES = {
    "Li": ("[He] 2s1 2p0", [("2S", 0, 1.0, 2.2), ("2P", 1, 0.0, 2.2)], 1, 1.2),
    "Be": ("[He] 2s2 2p0", [("2S", 0, 2.0, 1.6), ("2P", 1, 0.0, 1.6)], 1, 0.8),
    "Na": ("[Ne] 3s1 3p0", [("3S", 0, 1.0, 2.6), ("3P", 1, 0.0, 2.6)], 1, 1.2),
    "Mg": ("[Ne] 3s2 3p0 3d0", [("3S", 0, 2.0, 2.4), ("3P", 1, 0.0, 2.4), ("3D", 2, 0.0, 2.4, -0.10)], 2, 1.0),
    "Al": ("[Ne] 3s2 3p1 3d0", [("3S", 0, 2.0, 2.2), ("3P", 1, 1.0, 2.2), ("3D", 2, 0.0, 2.2, -0.10)], 2, 1.0),
    "K": ("[Ne] 3s2 3p6 3d0", [("3S", 0, 2.0, 1.5), ("3P", 1, 6.0, 1.6), ("3D", 2, 0.0, 1.6)], 0, 0.8),
    "Ca": ("[Ne] 3s2 3p6 3d0", [("3S", 0, 2.0, 1.5), ("3P", 1, 6.0, 1.6), ("3D", 2, 0.0, 1.6)], 0, 0.8),
    "Rb": ("[Kr] 5s1 5p0 4d0", [("5S", 0, 1.0, 3.2), ("5P", 1, 0.0, 3.2), ("4D", 2, 0.0, 3.2, -0.10)], 2, 1.7),
    "Sr": ("[Ar] 3d10 4s2 4p6 4d0", [("4S", 0, 2.0, 1.9), ("4P", 1, 6.0, 2.0), ("4D", 2, 0.0, 2.0)], 1, 1.0),
    "Cs": ("[Xe] 6s1 6p0 5d0", [("6S", 0, 1.0, 3.4), ("6P", 1, 0.0, 3.4), ("5D", 2, 0.0, 3.4, -0.10)], 2, 2.0),
    "Ba": ("[Kr] 4d10 5s2 5p6 5d0", [("5S", 0, 2.0, 2.0), ("5P", 1, 6.0, 2.1), ("5D", 2, 0.0, 2.1)], 0, 1.0),
    "Sc": ("[Ne] 3s2 3p6 3d0", [("3S", 0, 2.0, 1.5), ("3P", 1, 6.0, 1.6), ("3D", 2, 0.0, 1.6)], 0, 0.8),
    "Y": ("[Ar] 3d10 4s2 4p6 4d0", [("4S", 0, 2.0, 1.7), ("4P", 1, 6.0, 1.8), ("4D", 2, 0.0, 1.8)], 0, 0.9),
    "La": ("[Kr] 4d10 5s2 5p6 5d0 4f0", [("5S", 0, 2.0, 1.9), ("5P", 1, 6.0, 2.0), ("5D", 2, 0.0, 2.0), ("4F", 3, 0.0, 2.3)],
           0, 0.9),
    "Ti": ("[Ar] 3d2 4s2 4p0", [("4S", 0, 2.0, 2.5), ("4P", 1, 0.0, 2.7), ("3D", 2, 2.0, 2.1)], 1, 1.1),
    "Zr": ("[Ar] 3d10 4s2 4p6 4d0", [("4S", 0, 2.0, 1.7), ("4P", 1, 6.0, 1.8), ("4D", 2, 0.0, 1.8)], 0, 0.9),
    "Hf": ("[Xe] 4f14 5d2 6s2 6p0", [("6S", 0, 2.0, 2.7), ("6P", 1, 0.0, 2.9), ("5D", 2, 2.0, 2.3)], 1, 1.3),
    "V": ("[Ar] 3d3 4s2 4p0", [("4S", 0, 2.0, 2.4), ("4P", 1, 0.0, 2.6), ("3D", 2, 3.0, 1.8)], 1, 1.0),
    "Nb": ("[Kr] 4d4 5s1 5p0", [("5S", 0, 1.0, 2.6), ("5P", 1, 0.0, 2.8), ("4D", 2, 4.0, 2.1)], 0, 1.2),
    "Ta": ("[Xe] 4f14 5d3 6s2 6p0", [("6S", 0, 2.0, 2.6), ("6P", 1, 0.0, 2.8), ("5D", 2, 3.0, 2.2)], 0, 1.2),
}


def ld1_input(symbol: str, recipe: tuple | None = None) -> str:
    """The ld1.x input of `recipe` (default: the element's in RECIPES; ld1.x wants the local
    channel last)."""
    config, channels, lloc, rcore = recipe or RECIPES[symbol]
    lines = [
        " &input",
        f"    title='{symbol}'",
        f"    zed={atomic_numbers[symbol]}.0",
        "    rel=1",
        f"    config='{config}'",
        "    iswitch=3",
        "    dft='PBE'",
        " /",
        " &inputp",
        "    pseudotype=2",
        f"    file_pseudopw='{symbol}.pbe-tm.UPF'",
        "    author='elfkit'",
        f"    lloc={lloc}",
        "    nlcc=.true.",
        "    new_core_ps=.true.",
        f"    rcore={rcore}",
        "    tm=.true.",
        " /",
        str(len(channels)),
    ]
    for label, l, occupation, rc, *energy in sorted(channels, key=lambda channel: channel[1] == lloc):
        lines.append(f"{label}  {l + 1}  {l}  {occupation:.2f}  {energy[0] if energy else 0.0:.2f}  {rc:.2f}  {rc:.2f}  0.0")
    return "\n".join(lines) + "\n"


def generate(symbol: str, folder: Path, recipe: tuple | None = None) -> Path:
    """Run ld1.x on `recipe` (default: the element's in RECIPES) in a temporary folder and keep
    <X>.ld1.in, <X>.ld1.out and <X>.pbe-tm.UPF in `folder`; returns the UPF path.
    RuntimeError if ld1.x fails."""
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        source = work / f"{symbol}.ld1.in"
        source.write_text(ld1_input(symbol, recipe))
        with open(source) as stdin, open(work / f"{symbol}.ld1.out", "w") as stdout:
            completed = subprocess.run(["ld1.x"], stdin=stdin, stdout=stdout, stderr=subprocess.STDOUT, cwd=work)
        log = (work / f"{symbol}.ld1.out").read_text()
        made = [source, work / f"{symbol}.ld1.out", work / f"{symbol}.pbe-tm.UPF"]
        if completed.returncode != 0 or not made[2].exists() or "Error" in log:
            raise RuntimeError(f"ld1.x failed for {symbol}:\n{log[-2000:]}")
        for path in made:
            shutil.copy(path, folder / path.name)
    return folder / made[2].name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("elements", nargs="*", default=sorted(RECIPES))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for symbol in args.elements:
        print(generate(symbol, args.out))


if __name__ == "__main__":
    main()
