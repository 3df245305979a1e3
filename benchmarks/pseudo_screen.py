"""Screen candidate semicore pseudopotential recipes against GPAW before a full validation.

Each candidate is an ld1.x recipe (in the format of scripts/make_pseudopotentials.py's
RECIPES) made from the element's ion, so that the outer s electrons live in the local s
channel as in elfkit's K and Ba. The screen runs fcc at ambient and half volume with QE at
each listed cutoff against GPAW (500 eV, default setup, same valence), k-spacing 0.3 1/Å,
and reports the ELF MAE outside the pseudisation spheres (elfkit.dft.crosscheck) and in the
whole cell, and both pressures (GPa). A candidate that passes here still has to pass
benchmarks/pseudo_validation.py (bcc too) before it goes into RECIPES.

Run:  python benchmarks/pseudo_screen.py [CANDIDATE ...] [--out FILE] [--markdown FILE]
(the report is saved after every candidate; a rerun with the same --out skips those it holds)
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

from report import add_report_options, emit, saved_report

from elfkit.data.metals import build
from elfkit.dft import DFTSettings, compute
from elfkit.dft.base import DFTError, dft_grid_shape
from elfkit.dft.crosscheck import TOLERANCE, core_radii, elf_agreement
from elfkit.dft.gpaw_engine import setups_with_valence
from elfkit.dft.qe import valence_electrons

GPAW_CUTOFF_EV, KSPACING, SMEARING_EV = 500.0, 0.3, 0.2
STRUCTURES = (("fcc", 1.0), ("fcc", 0.5))
IONS = "[Ne] 3s2 3p6 3d0", "[Ar] 3d10 4s2 4p6 4d0", "[Kr] 4d10 5s2 5p6 5d0"
"""Closed-shell ions whose s and p shells are the semicore of K, Ca, Sc, Ti, V; Rb, Sr, Y, Zr,
Nb; Cs, Ba, La, Ce (La and Ce also with an empty 4f channel: La metal has empty 4f states a
few eV above the Fermi level, Ce one 4f electron); Hf and Ta keep 4f14 in the core."""


def _ionic(config: str, shell: int, radii: tuple[float, ...], rcore: float, local: int = 0, d: float = 0.0,
           f: float = 0.0):
    """A recipe with s, p and d channels of principal quantum number `shell` (and a
    (`shell`-1)f channel if `radii` has a fourth entry), at radii (s, p, d[, f]) bohr, `d` and
    `f` electrons in the d and f channels, partial-core radius `rcore` bohr."""
    channels = [(f"{shell}S", 0, 2.0, radii[0]), (f"{shell}P", 1, 6.0, radii[1]), (f"{shell}D", 2, d, radii[2])]
    channels += [(f"{shell - 1}F", 3, f, radius) for radius in radii[3:]]
    return config, channels, local, rcore


CANDIDATES = {
    "Ca r1.5": ("Ca", _ionic(IONS[0], 3, (1.5, 1.6, 1.6), 0.8), (450, 900)),
    "Ca r1.9": ("Ca", _ionic(IONS[0], 3, (1.9, 2.0, 2.0), 1.0), (450, 900)),
    "Ca+ 3d1 r1.5": ("Ca", _ionic("[Ne] 3s2 3p6 3d1", 3, (1.5, 1.6, 1.6), 0.8, d=1.0), (450,)),
    "Sr r1.9": ("Sr", _ionic(IONS[1], 4, (1.9, 2.0, 2.0), 1.0), (450,)),
    "Ba r1.8": ("Ba", _ionic(IONS[2], 5, (1.8, 1.9, 1.9), 0.9), (450,)),
    "Ba r1.9": ("Ba", _ionic(IONS[2], 5, (1.9, 2.0, 2.0), 1.0), (450,)),
    "Ba r2.0": ("Ba", _ionic(IONS[2], 5, (2.0, 2.1, 2.1), 1.0), (450,)),
    "Ba r2.1": ("Ba", _ionic(IONS[2], 5, (2.1, 2.2, 2.2), 1.1), (450, 680)),
    "Ba r2.3": ("Ba", _ionic(IONS[2], 5, (2.3, 2.4, 2.4), 1.3), (450,)),
    "Ba r2.1 d local": ("Ba", _ionic(IONS[2], 5, (2.1, 2.2, 2.2), 1.1, local=2), (450,)),
    "Rb r1.5": ("Rb", _ionic(IONS[1], 4, (1.5, 1.6, 1.6), 0.8), (450,)),
    "Rb r1.7": ("Rb", _ionic(IONS[1], 4, (1.7, 1.8, 1.8), 0.9), (450,)),
    "Rb r1.9": ("Rb", _ionic(IONS[1], 4, (1.9, 2.0, 2.0), 1.0), (450,)),
    "Rb r2.1": ("Rb", _ionic(IONS[1], 4, (2.1, 2.2, 2.2), 1.1), (450,)),
    "Rb r2.3": ("Rb", _ionic(IONS[1], 4, (2.3, 2.4, 2.4), 1.2), (450,)),
    "Cs r1.9": ("Cs", _ionic(IONS[2], 5, (1.9, 2.0, 2.0), 1.0), (450,)),
    "Cs r2.1": ("Cs", _ionic(IONS[2], 5, (2.1, 2.2, 2.2), 1.1), (450,)),
    "Cs r2.4": ("Cs", _ionic(IONS[2], 5, (2.4, 2.5, 2.5), 1.3), (450,)),
    "Y r1.7": ("Y", _ionic(IONS[1], 4, (1.7, 1.8, 1.8), 0.9), (450, 900)),
    "Y r2.0": ("Y", _ionic(IONS[1], 4, (2.0, 2.1, 2.1), 0.9), (450,)),
    "La r1.9": ("La", _ionic(IONS[2], 5, (1.9, 2.0, 2.0), 0.9), (450, 900)),
    "La r1.9 f2.0": ("La", _ionic(f"{IONS[2]} 4f0", 5, (1.9, 2.0, 2.0, 2.0), 0.9), (900,)),
    "La r1.9 f2.3": ("La", _ionic(f"{IONS[2]} 4f0", 5, (1.9, 2.0, 2.0, 2.3), 0.9), (900,)),
    "Ce r1.9 f2.3": ("Ce", _ionic(f"{IONS[2]} 4f0", 5, (1.9, 2.0, 2.0, 2.3), 0.9), (900,)),
    "Ce r1.9 f1.7": ("Ce", _ionic(f"{IONS[2]} 4f0", 5, (1.9, 2.0, 2.0, 1.7), 0.9), (900, 1200)),
    "Ce3+ 4f1 r1.9 f1.7": ("Ce", _ionic(f"{IONS[2]} 4f1", 5, (1.9, 2.0, 2.0, 1.7), 0.9, f=1.0), (900, 1200)),
    "Ce3+ 4f1 r1.9 f2.0": ("Ce", _ionic(f"{IONS[2]} 4f1", 5, (1.9, 2.0, 2.0, 2.0), 0.9, f=1.0), (900,)),
    "Sr r1.9 p local": ("Sr", _ionic(IONS[1], 4, (1.9, 2.0, 2.0), 1.0, local=1), (900,)),
    "Sc r1.5": ("Sc", _ionic(IONS[0], 3, (1.5, 1.6, 1.6), 0.8), (900,)),
    "Zr r1.7": ("Zr", _ionic(IONS[1], 4, (1.7, 1.8, 1.8), 0.9), (900,)),
    "Nb r1.7": ("Nb", _ionic(IONS[1], 4, (1.7, 1.8, 1.8), 0.9), (900,)),
    "Ti r1.5": ("Ti", _ionic(IONS[0], 3, (1.5, 1.6, 1.6), 0.8), (900,)),
    "V r1.5": ("V", _ionic(IONS[0], 3, (1.5, 1.6, 1.6), 0.8), (900,)),
    "Hf r1.9": ("Hf", _ionic("[Kr] 4d10 4f14 5s2 5p6 5d0", 5, (1.9, 2.0, 2.0), 1.0), (900,)),
    "Ta r1.9": ("Ta", _ionic("[Kr] 4d10 4f14 5s2 5p6 5d0", 5, (1.9, 2.0, 2.0), 1.0), (900,)),
}
"""name: (element, ld1.x recipe, QE cutoffs in eV)."""


@functools.cache
def _make_pseudopotentials():
    path = Path(__file__).resolve().parents[1] / "scripts" / "make_pseudopotentials.py"
    spec = importlib.util.spec_from_file_location("make_pseudopotentials", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def screen(symbol: str, recipe: tuple, cutoffs, references: dict) -> dict:
    """ELF MAE (outside cores, whole cell) and pressures of QE with `recipe` against GPAW,
    per cutoff and structure; `references` caches GPAW results per structure."""
    with tempfile.TemporaryDirectory() as folder:
        _make_pseudopotentials().generate(symbol, Path(folder), recipe)
        setups = setups_with_valence(valence_electrons([symbol], Path(folder)))
        radii = core_radii([symbol], Path(folder), setups)
        rows = {}
        for cutoff in cutoffs:
            for prototype, fraction in STRUCTURES:
                atoms = build(prototype, [symbol], fraction)
                shape = dft_grid_shape(atoms.cell.array, 0.12, max(cutoff, GPAW_CUTOFF_EV))
                key = (symbol, prototype, fraction, shape)
                if key not in references:
                    settings = DFTSettings("gpaw", GPAW_CUTOFF_EV, KSPACING, SMEARING_EV, gpaw_setups=setups)
                    references[key] = compute(atoms, shape, settings)
                gpaw = references[key]
                qe = compute(atoms, shape, DFTSettings("qe", cutoff, KSPACING, SMEARING_EV, pseudo_dir=folder))
                agreement = elf_agreement(qe.elf.values, gpaw.elf.values, atoms, radii)
                rows.setdefault(f"{cutoff:g}", {})[f"{prototype} V={fraction:g}"] = {
                    "elf_mae_outside_cores": agreement["elf_mae_outside_cores"],
                    "elf_mae_cell": agreement["elf_mae"],
                    "pressure_gpa_qe_gpaw": [round(qe.pressure_gpa, 2), round(gpaw.pressure_gpa, 2)],
                }
    return {"element": symbol, "recipe": recipe, "cutoffs": rows}


def _judged(row: dict) -> float:
    """The ELF MAE the criterion judges: outside the cores, or the whole cell (marked *) where
    the pseudisation spheres fill it."""
    return row["elf_mae_outside_cores"] if row["elf_mae_outside_cores"] is not None else row["elf_mae_cell"]


def markdown_table(report: dict) -> str:
    """One row per candidate and cutoff: interstitial ELF MAE at V0 and V0/2, pressures at V0/2."""
    lines = ["| candidate | QE cutoff (eV) | ELF MAE outside cores, V0 / V0/2 (* whole cell) | P at V0/2, QE / GPAW (GPa) | passes |",
             "|---|---|---|---|---|"]
    for name, result in report.items():
        if "error" in result:
            lines.append(f"| {name} | - | - | - | no: {result['error']} |")
        for cutoff, rows in result.get("cutoffs", {}).items():
            ambient, half = rows["fcc V=1"], rows["fcc V=0.5"]
            maes = " / ".join(f"{_judged(r):.4f}{'' if r['elf_mae_outside_cores'] is not None else '*'}" for r in (ambient, half))
            qe, gpaw = half["pressure_gpa_qe_gpaw"]
            passes = max(_judged(ambient), _judged(half)) < TOLERANCE
            lines.append(f"| {name} | {cutoff} | {maes} | {qe:g} / {gpaw:g} | {'yes' if passes else 'no'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("candidates", nargs="*", default=list(CANDIDATES))
    add_report_options(parser)
    args = parser.parse_args()
    if args.markdown:
        print(markdown_table(json.loads(args.markdown.read_text())))
        return
    result = saved_report(args.out)
    references = {}
    for name in args.candidates:
        if name in result:
            continue
        symbol, recipe, cutoffs = CANDIDATES[name]
        try:
            result[name] = screen(symbol, recipe, tuple(float(c) for c in cutoffs), references)
        except DFTError as error:
            result[name] = {"element": symbol, "recipe": recipe, "error": str(error)}
        print(name, json.dumps(result[name].get("cutoffs", result[name].get("error"))), file=sys.stderr, flush=True)
        if args.out:
            emit(result, args.out, quiet=True)
    emit(result, args.out)


if __name__ == "__main__":
    main()
