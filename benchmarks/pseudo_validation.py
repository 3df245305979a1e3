"""Validation of elfkit's QE pseudopotentials against GPAW: the ELF of the same structures on
the same grid, for each element in its bcc and fcc forms at ambient and half volume.

Both engines give the valence pseudo-ELF (elfkit strips GPAW's smooth core density, see
elfkit.dft.gpaw_engine.valence_elf), and GPAW uses the setup with the same valence as our
pseudopotential (the valence ELF depends on which shells are valence: GPAW's default Na
setup holds the 2s2p shells too). An element without such a setup cannot be validated.

The criterion is elfkit.dft.crosscheck's: inside the pseudisation spheres (the larger of our
r_c and GPAW's PAW r_cut) each engine's smooth wavefunctions are arbitrary by construction, so
the ELF mean absolute difference outside them (the interstitial, where hydrogen sits in a
hydride) must stay below 0.01 in every structure, or that of the whole cell where the spheres
fill (nearly) all of it. The whole-cell difference and both engines' pressures (GPa) are
reported too.

Run:  python benchmarks/pseudo_validation.py Li Na ... [--pseudo-dir DIR] [--out FILE]
(the report is saved after every element; a rerun with the same --out skips the elements it
already holds, so a killed run resumes)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from report import add_report_options, emit, saved_report

from elfkit.data.metals import build
from elfkit.dft import DFTSettings, compute
from elfkit.dft.base import DFTError, dft_grid_shape
from elfkit.dft.crosscheck import core_radii, elf_agreement
from elfkit.dft.gpaw_engine import setups_with_valence
from elfkit.dft.qe import PACKAGE_PSEUDO_DIR, find_pseudopotentials, valence_electrons

STRUCTURES = (("bcc", 1.0), ("fcc", 1.0), ("bcc", 0.5), ("fcc", 0.5))


def validate_element(symbol: str, pseudo_dir: str, cutoff_ev: float, gpaw_cutoff_ev: float, kspacing: float) -> dict:
    """ELF differences between QE (our pseudopotential) and GPAW for four structures of `symbol`."""
    upf = find_pseudopotentials([symbol], Path(pseudo_dir).resolve())[symbol]
    setups = setups_with_valence(valence_electrons([symbol], Path(pseudo_dir).resolve()))
    radii = core_radii([symbol], Path(pseudo_dir), setups)
    rows, agrees = {}, []
    for prototype, fraction in STRUCTURES:
        atoms = build(prototype, [symbol], fraction)
        shape = dft_grid_shape(atoms.cell.array, 0.12, max(cutoff_ev, gpaw_cutoff_ev))
        qe = compute(atoms, shape, DFTSettings("qe", cutoff_ev, kspacing, 0.2, pseudo_dir=pseudo_dir))
        gpaw = compute(atoms, shape, DFTSettings("gpaw", gpaw_cutoff_ev, kspacing, 0.2, gpaw_setups=setups))
        agreement = elf_agreement(qe.elf.values, gpaw.elf.values, atoms, radii)
        agrees.append(agreement["agrees"])
        rows[f"{prototype} V={fraction:g}"] = {
            "elf_mae_outside_cores": agreement["elf_mae_outside_cores"],
            "elf_mae_cell": agreement["elf_mae"],
            "fraction_outside_cores": agreement["fraction_outside_cores"],
            "pressure_gpa_qe_gpaw": [round(qe.pressure_gpa, 2), round(gpaw.pressure_gpa, 2)],
        }
    return {"passes": all(agrees), "qe_cutoff_ev": cutoff_ev, "core_radius_angstrom": round(radii[symbol], 3), "pseudopotential": upf.name,
            "gpaw_setup": setups[symbol], "structures": rows}


def cutoff_series(symbol: str, pseudo_dir: str, cutoffs: list[float], kspacing: float) -> dict:
    """QE ELF MAE and energy change (meV/atom) of fcc `symbol` at half volume, the hardest
    structure, at each cutoff (eV) against the highest one."""
    atoms = build("fcc", [symbol], 0.5)
    shape = dft_grid_shape(atoms.cell.array, 0.12, max(cutoffs))
    results = {c: compute(atoms, shape, DFTSettings("qe", c, kspacing, 0.2, pseudo_dir=pseudo_dir)) for c in cutoffs}
    best = results[max(cutoffs)]
    return {
        f"{c:g}": {
            "elf_mae": round(float(np.abs(r.elf.values - best.elf.values).mean()), 5),
            "energy_mev_per_atom": round(1000 * (r.energy_ev - best.energy_ev) / len(atoms), 2),
            "pressure_gpa": round(r.pressure_gpa, 2),
        }
        for c, r in results.items()
    }


def markdown_table(report: dict) -> str:
    """One row per element: setup compared, worst interstitial and whole-cell ELF MAE, pressures."""
    lines = [
        "| element | QE cutoff (eV) | GPAW setup | ELF MAE outside cores (worst) | ELF MAE whole cell (worst) | P at V/2, QE / GPAW (GPa) | passes |",
        "|---|---|---|---|---|---|---|",
    ]
    for symbol, result in report.items():
        if "error" in result:
            lines.append(f"| {symbol} | - | - | - | - | - | no: {result['error']} |")
            continue
        rows = result["structures"].values()
        pressures = ", ".join(f"{q:g} / {g:g}" for name, r in result["structures"].items() if "V=0.5" in name
                              for q, g in [r["pressure_gpa_qe_gpaw"]])
        outside = [r["elf_mae_outside_cores"] for r in rows if r["elf_mae_outside_cores"] is not None]
        lines.append(
            f"| {symbol} | {result['qe_cutoff_ev']:g} | {result['gpaw_setup']} | {max(outside):.4f} | "
            f"{max(r['elf_mae_cell'] for r in rows):.4f} | {pressures} | {'yes' if result['passes'] else 'no'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("elements", nargs="*")
    parser.add_argument("--pseudo-dir", default=str(PACKAGE_PSEUDO_DIR))
    parser.add_argument("--cutoff", type=float, default=680.0, help="QE cutoff (eV)")
    parser.add_argument("--gpaw-cutoff", type=float, default=500.0, help="GPAW plane-wave cutoff (eV)")
    parser.add_argument("--kspacing", type=float, default=0.3)
    parser.add_argument("--cutoffs", type=float, nargs="+", default=None,
                        help="instead of validating, run a QE cutoff series (eV) on fcc at half volume")
    add_report_options(parser)
    args = parser.parse_args()
    if args.markdown:
        print(markdown_table(json.loads(args.markdown.read_text())))
        return
    result = saved_report(args.out)
    for symbol in args.elements:
        if symbol in result and "error" not in result[symbol]:
            continue
        try:
            if args.cutoffs:
                result[symbol] = cutoff_series(symbol, args.pseudo_dir, args.cutoffs, args.kspacing)
            else:
                result[symbol] = validate_element(symbol, args.pseudo_dir, args.cutoff, args.gpaw_cutoff, args.kspacing)
        except DFTError as error:
            result[symbol] = {"passes": False, "error": str(error)}
        print(symbol, json.dumps(result[symbol]), file=sys.stderr, flush=True)
        if args.out:
            emit(result, args.out, quiet=True)
    emit(result, args.out)


if __name__ == "__main__":
    main()
