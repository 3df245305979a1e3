"""Accuracy of a model on a dataset split, per stratum and overall, beside the physics baseline.

`evaluate(model, dataset, split)` predicts every sample of the split on its own grid
(`elfkit.predict.predict`) and compares with the DFT ELF: R², MAE, RMSE, histogram W1, the
residual's long-wavelength power fraction and correlation length (`elfkit.analysis.metrics`),
and, for crystals (`critical=True`), the networking value error and the recall of maxima and
saddles matched within 0.2 Å (`elfkit.analysis.critical`). The physics baseline is the
gradient-expansion ELF of the SAD (`elfkit.features`), with no learning at all.
Strata are densities rs (bohr) for the fluid and crystal formula-plus-group for crystals.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from elfkit.errors import ElfkitError
from elfkit.field import Field

BASELINE = "physics baseline"
MATCH_TOLERANCE_ANGSTROM = 0.2
SPECTRUM_EDGES_PER_ANGSTROM = np.linspace(0.0, 12.0, 25)
SPECTRUM_K_PER_ANGSTROM = (SPECTRUM_EDGES_PER_ANGSTROM[1:] + SPECTRUM_EDGES_PER_ANGSTROM[:-1]) / 2
_AVERAGED = ("r2", "mae", "rmse", "wasserstein_1", "long_wavelength_power_fraction", "correlation_length_angstrom")


def field_scores(pred: Field, ref: Field) -> dict:
    """Per-sample accuracy numbers of `pred` against `ref` (same grid)."""
    from elfkit.analysis.metrics import autocorrelation, distributions, long_wavelength_fraction, nearest_neighbour_distance, pointwise

    residual = Field(ref.atoms, pred.values.astype(np.float64) - ref.values, "scalar")
    d_nn = nearest_neighbour_distance(ref.atoms, None)
    return {
        **pointwise(pred.values, ref.values),
        **distributions(pred.values, ref.values),
        "long_wavelength_power_fraction": long_wavelength_fraction(residual, d_nn),
        "correlation_length_angstrom": autocorrelation(residual)["correlation_length_angstrom"],
        "residual_power": residual_spectrum(residual),
    }


def residual_spectrum(residual: Field) -> list[float]:
    """Residual power (mean square, ELF²) per |k| shell of SPECTRUM_EDGES_PER_ANGSTROM (1/Å, 2π
    included), the same shells for every grid so that samples average; beyond the last edge
    (wavelengths under 0.5 Å) power is left out."""
    from elfkit.analysis.metrics import residual_power

    k, power = residual_power(residual)
    which = np.digitize(k.ravel(), SPECTRUM_EDGES_PER_ANGSTROM) - 1
    inside = which < len(SPECTRUM_K_PER_ANGSTROM)
    return np.bincount(which[inside], power.ravel()[inside], minlength=len(SPECTRUM_K_PER_ANGSTROM)).tolist()


def member_mean(model, predictions: dict[str, Field]) -> Field | None:
    """An ensemble's prediction from its members' predictions when all of them are in
    `predictions` already (an ensemble named after its members costs nothing more), else None."""
    from elfkit.models.ensemble import mean_field
    from elfkit.predict import is_ensemble

    if not is_ensemble(model) or any(m.name not in predictions for m in model.members):
        return None
    return mean_field([predictions[m.name] for m in model.members])


def residual_correlations(predictions: dict[str, Field], ref: Field) -> dict[str, dict[str, float]]:
    """Pearson correlation of every prediction's residual (prediction minus `ref`, per grid
    point) with every other's: near 1 when two models miss the same thing."""
    residuals = {name: (pred.values.astype(np.float64) - ref.values).ravel() for name, pred in predictions.items()}
    return {a: {b: float(np.corrcoef(ra, rb)[0, 1]) for b, rb in residuals.items() if b != a} for a, ra in residuals.items()}


def reference_topology(ref: Field) -> dict:
    """Networking value and critical points of a reference ELF, computed once per sample."""
    from elfkit.analysis.critical import critical_points, persistence_pairs, plateau_aliases
    from elfkit.analysis.network import networking_value

    pairs = persistence_pairs(np.asarray(ref.values, dtype=float))
    points = critical_points(ref, pairs=pairs)
    maxima = [p for p in points if p.type == "maximum"]
    return {"phi": networking_value(ref), "points": points, "maxima_aliases": plateau_aliases(maxima, ref, pairs=pairs), "cell": ref.atoms.cell.array}


def topology_scores(pred: Field, reference: dict) -> dict:
    """Networking value error and recall of maxima and saddles (within 0.2 Å) of `pred` against
    a reference's `reference_topology`. A reference maximum also matches at the maxima its
    field cannot tell apart from it (`plateau_aliases`: the other nucleus of an H2 molecule);
    saddles match at their own position only."""
    from elfkit.analysis.critical import critical_points, match_critical_points
    from elfkit.analysis.network import networking_value

    phi_pred, phi_ref = networking_value(pred), reference["phi"]
    points_pred = critical_points(pred)
    scores = {
        "networking_value": phi_pred,
        "networking_value_ref": phi_ref,
        "networking_value_error": None if phi_pred is None or phi_ref is None else abs(phi_pred - phi_ref),
    }
    for kind, plural in (("maximum", "maxima"), ("saddle", "saddles")):
        p = [x for x in points_pred if x.type == kind]
        r = [x for x in reference["points"] if x.type == kind]
        aliases = reference["maxima_aliases"] if kind == "maximum" else None
        match = match_critical_points(p, r, reference["cell"], tol=MATCH_TOLERANCE_ANGSTROM, reference_aliases=aliases)
        scores[f"recall_{plural}"] = match["recall"]
        scores[f"count_{plural}"] = [len(p), len(r)]
    return scores


def baseline_field(atoms, shape) -> Field:
    """The physics baseline: the gradient-expansion ELF of the SAD on `shape`."""
    from elfkit.features import GE_ELF_CHANNEL, physics_channels

    return Field(atoms, physics_channels(atoms, shape)[GE_ELF_CHANNEL], "elf")


def evaluate(
    models: str | Path | list,
    dataset: str,
    split: str = "test",
    critical: bool | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Scores of one or more models and of the physics baseline on every sample of
    `dataset`/`split` (the same samples for every model), aggregated per stratum and overall
    (means over samples; worst R² too), with each sample's residual power spectrum. An
    ensemble listed after its members is averaged from their predictions."""
    import elfkit.data
    from elfkit.predict import get_model, predict
    from elfkit.train.loader import stratum_of

    loaded = [get_model(m) for m in (models if isinstance(models, list) else [models])]
    names = [m.name for m in loaded] + [BASELINE]
    if len(set(names)) < len(names):
        raise ElfkitError(f"models to evaluate together need distinct names, got {', '.join(names[:-1])}")
    opened = elfkit.data.open(dataset, split=split)
    critical = opened.manifest.get("kind") == "relaxed-crystals" if critical is None else critical
    samples = []
    for done, sample in enumerate(opened, 1):
        ref = Field(sample.atoms, sample.elf, "elf")
        stratum = stratum_of(sample) if not critical else f"{sample.group.removeprefix('crystal-')} {sample.pressure_gpa:.0f} GPa"
        reference = reference_topology(ref) if critical else None
        predictions: dict[str, Field] = {}
        for m in loaded:
            predictions[m.name] = member_mean(m, predictions) or predict(sample.atoms, sample.elf.shape, m)
        predictions[BASELINE] = baseline_field(sample.atoms, sample.elf.shape)
        correlations = residual_correlations(predictions, ref)
        for name, pred in predictions.items():
            scores = field_scores(pred, ref)
            if critical:
                scores.update(topology_scores(pred, reference))
            row = {"model": name, "key": sample.key, "stratum": stratum, "pressure_gpa": sample.pressure_gpa, **scores}
            samples.append({**row, "residual_correlation": correlations[name]})
        if on_progress:
            on_progress(done, len(opened))
    return {
        "model": loaded[0].name,
        "model_sha256": loaded[0].sha256,
        "models": [{"name": m.name, "sha256": m.sha256} for m in loaded],
        "dataset": dataset,
        "split": split,
        "spectrum_k_per_angstrom": SPECTRUM_K_PER_ANGSTROM.tolist(),
        "samples": samples,
        "table": aggregate(samples),
    }


def aggregate(samples: list[dict]) -> list[dict]:
    """One row per (model, stratum) and per model overall: sample means of the scores."""
    rows = []
    for model in dict.fromkeys(s["model"] for s in samples):
        mine = [s for s in samples if s["model"] == model]
        strata = sorted(dict.fromkeys(s["stratum"] for s in mine), key=_stratum_order)
        for stratum in strata + ["all"]:
            chosen = [s for s in mine if stratum == "all" or s["stratum"] == stratum]
            rows.append({"model": model, "stratum": stratum, "samples": len(chosen), **_means(chosen)})
    return rows


def _stratum_order(stratum: str):
    parts = stratum.split()
    return (0, float(parts[1]), "") if parts[0] == "rs" else (1, 0.0, stratum)


def _means(chosen: list[dict]) -> dict:
    out = {}
    for key in _AVERAGED + ("networking_value_error", "recall_maxima", "recall_saddles"):
        values = [s[key] for s in chosen if s.get(key) is not None]
        if values:
            out[key] = float(np.mean(values))
    spectra = [s["residual_power"] for s in chosen if "residual_power" in s]
    if spectra:
        out["residual_power"] = np.mean(spectra, axis=0).tolist()
    r2 = [s["r2"] for s in chosen if s.get("r2") is not None]
    if r2:
        out["r2_min"] = float(np.min(r2))
    return out


def markdown_table(result: dict) -> str:
    """The README's model table: one row per model and stratum."""
    columns = [
        ("R²", "r2", "{:.4f}"), ("worst R²", "r2_min", "{:.4f}"), ("MAE", "mae", "{:.4f}"), ("RMSE", "rmse", "{:.4f}"),
        ("W1", "wasserstein_1", "{:.4f}"), ("long-wavelength fraction", "long_wavelength_power_fraction", "{:.2f}"),
        ("correlation length (Å)", "correlation_length_angstrom", "{:.2f}"),
        ("|Δφ|", "networking_value_error", "{:.3f}"), ("recall maxima", "recall_maxima", "{:.2f}"),
        ("recall saddles", "recall_saddles", "{:.2f}"),
    ]
    present = [c for c in columns if any(c[1] in row for row in result["table"])]
    lines = [
        "| model | stratum | samples | " + " | ".join(c[0] for c in present) + " |",
        "|---|---|---|" + "---|" * len(present),
    ]
    for row in result["table"]:
        cells = [c[2].format(row[c[1]]) if c[1] in row else "-" for c in present]
        lines.append(f"| {row['model']} | {row['stratum']} | {row['samples']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
