"""Print the README's hydrogen model tables (the U-Net, the point model, their ensemble and the
physics baseline side by side) from `elfkit evaluate` results, so they are never typed by hand.

    elfkit evaluate hydrogen hydrogen-point hydrogen+hydrogen-point hydrogen-fluid --split val -o val.json
    elfkit evaluate hydrogen hydrogen-point hydrogen+hydrogen-point hydrogen-fluid -o test.json
    elfkit evaluate hydrogen hydrogen-point hydrogen+hydrogen-point hydrogen-crystals -o crystals.json
    python scripts/readme_model_tables.py val.json test.json crystals.json

Prints, in order: R² per density on val (which model is the default), the held-out comparison
per density (pressure = mean DFT pressure of the stratum's snapshots), the residual study
(long-wavelength fraction, correlation length, residual correlation of the U-Net with the
point model) and the crystals table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

UNET, POINT, BASELINE = "hydrogen", "hydrogen-point", "physics baseline"
ENSEMBLE = f"{UNET}+{POINT}"
LEARNED = (UNET, POINT, ENSEMBLE)


def _rows(result: dict) -> dict[tuple[str, str], dict]:
    return {(row["model"], row["stratum"]): row for row in result["table"]}


def _strata(result: dict) -> list[str]:
    return list(dict.fromkeys(row["stratum"] for row in result["table"]))


def _table(header: list[str], lines: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(line) + " |" for line in lines])


def _joined(rows: dict, stratum: str, key: str, digits: int, models=LEARNED) -> str:
    return " / ".join(f"{rows[(m, stratum)][key]:.{digits}f}" for m in models)


def val_table(result: dict) -> str:
    """R² per density of the baseline and the three models."""
    rows = _rows(result)
    models = (BASELINE, *LEARNED)
    return _table(["stratum", *models], [[s] + [f"{rows[(m, s)]['r2']:.4f}" for m in models] for s in _strata(result)])


def _pressure(result: dict, stratum: str) -> str:
    pressures = [s["pressure_gpa"] for s in result["samples"] if s["model"] == UNET and s["stratum"] == stratum]
    return "-" if stratum == "all" else f"{np.mean(pressures):.0f}"


def held_out_table(result: dict) -> str:
    """R² per density of every model, the ensemble's worst snapshot and the MAEs."""
    rows = _rows(result)
    header = ["stratum", "pressure (GPa)", "R² physics baseline", "R² hydrogen", "R² hydrogen-point", "R² hydrogen+hydrogen-point", "worst R² ensemble", "MAE U-Net / point / ensemble"]
    lines = [
        [s, _pressure(result, s), *(f"{rows[(m, s)]['r2']:.4f}" for m in (BASELINE, *LEARNED)), f"{rows[(ENSEMBLE, s)]['r2_min']:.4f}", _joined(rows, s, "mae", 4)]
        for s in _strata(result)
    ]
    return _table(header, lines)


def _residual_correlation(result: dict, stratum: str) -> float:
    return float(np.mean([s["residual_correlation"][POINT] for s in result["samples"] if s["model"] == UNET and stratum in (s["stratum"], "all")]))


def residual_table(result: dict) -> str:
    """Long-wavelength fraction, correlation length and the U-Net's residual correlation with the point model."""
    rows = _rows(result)
    header = ["stratum", "long-wavelength fraction U-Net / point / ensemble / baseline", "correlation length (Å) U-Net / point / ensemble", "residual correlation U-Net with point"]
    lines = [
        [s, _joined(rows, s, "long_wavelength_power_fraction", 2, (*LEARNED, BASELINE)), _joined(rows, s, "correlation_length_angstrom", 2), f"{_residual_correlation(result, s):.2f}"]
        for s in _strata(result)
    ]
    return _table(header, lines)


def crystal_table(result: dict) -> str:
    """Per crystal: R², |Δφ| and the recall of maxima and saddles of the three models."""
    rows = _rows(result)
    header = ["crystal", "R² U-Net / point / ensemble", "|Δφ| U-Net / point / ensemble", "recall maxima", "recall saddles"]
    lines = [
        [s, _joined(rows, s, "r2", 4), _joined(rows, s, "networking_value_error", 3), _joined(rows, s, "recall_maxima", 2), _joined(rows, s, "recall_saddles", 2)]
        for s in _strata(result)
    ]
    return _table(header, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("val", type=Path, help="elfkit evaluate -o of the three models on hydrogen-fluid --split val")
    parser.add_argument("test", type=Path, help="the same on the test split")
    parser.add_argument("crystals", type=Path, help="the same on hydrogen-crystals")
    args = parser.parse_args()
    val, test, crystals = (json.loads(path.read_text()) for path in (args.val, args.test, args.crystals))
    for title, table in (("val", val_table(val)), ("held-out", held_out_table(test)), ("residual study", residual_table(test)), ("crystals", crystal_table(crystals))):
        print(f"<!-- {title} -->\n{table}\n")


if __name__ == "__main__":
    main()
