"""Accuracy of a model on a dataset split, per stratum and overall, beside the physics baseline.

`evaluate(model, dataset, split)` predicts every sample of the split on its own grid
(`elfkit.predict.predict`) and compares with the DFT ELF: R², MAE, RMSE, histogram W1, the
residual's long-wavelength power fraction and correlation length (`elfkit.analysis.metrics`),
and, for crystals (`critical=True`), the networking value error and the recall of maxima and
saddles matched within 0.2 Å (`elfkit.analysis.critical`). For metal prototypes (datasets of
kind "prototypes") the matched maxima's (predicted, DFT) values (seed 004's parity plot), the
maxima recall and the template score (`elfkit.analysis.templates`) of both, with rows per
element, prototype and volume fraction and a summary: parity R² and the Spearman rank
correlation of the template scores. The physics baseline is the gradient-expansion ELF of
the SAD (`elfkit.features`), with no learning at all.
Strata are densities rs (bohr) for the fluid, crystal formula-plus-group for crystals and
prototype-plus-elements for metals.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from elfkit.errors import ElfkitError
from elfkit.field import Field

BASELINE = "physics baseline"
PROTOTYPES = "prototypes"
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
    from elfkit.analysis.templates import template_score

    pairs = persistence_pairs(np.asarray(ref.values, dtype=float))
    points = critical_points(ref, pairs=pairs)
    maxima = [p for p in points if p.type == "maximum"]
    return {
        "phi": networking_value(ref),
        "points": points,
        "maxima_aliases": plateau_aliases(maxima, ref, pairs=pairs),
        "cell": ref.atoms.cell.array,
        "template_score": template_score(ref),
    }


def topology_scores(pred: Field, reference: dict) -> dict:
    """Networking value error, and the recall of maxima and saddles (within 0.2 Å), their counts
    (predicted, reference) and the mean |ELF difference| of the matched pairs, of `pred` against
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
        scores[f"value_error_{plural}"] = match["value_error"]
    return scores


def prototype_scores(pred: Field, reference: dict) -> dict:
    """Recall of the reference's maxima (within 0.2 Å), the (predicted, DFT) ELF values of the
    matched maxima, and the template score of `pred` and of the reference. The same again for
    the reference's interstitial maxima alone (`elfkit.analysis.templates.interstitial`, the
    maxima a template is made of), matched against all predicted maxima: the others sit in the
    cores, on shells of the engine's semicore states or on the nucleus, where the label depends
    on the engine's valence and core radii."""
    from elfkit.analysis.critical import critical_points, match_critical_points
    from elfkit.analysis.templates import interstitial, template_score

    maxima = [p for p in critical_points(pred) if p.type == "maximum"]
    reference_maxima = [p for p in reference["points"] if p.type == "maximum"]
    outside = interstitial(pred.atoms, [p.frac for p in reference_maxima])
    scores = {}
    for prefix, chosen in (("", np.ones(len(reference_maxima), dtype=bool)), ("interstitial_", outside)):
        match = match_critical_points(
            maxima,
            [p for p, keep in zip(reference_maxima, chosen) if keep],
            reference["cell"],
            tol=MATCH_TOLERANCE_ANGSTROM,
            reference_aliases=[a for a, keep in zip(reference["maxima_aliases"], chosen) if keep],
        )
        scores[f"recall_{prefix}maxima"] = match["recall"]
        scores[f"count_{prefix}maxima"] = [len(maxima), int(chosen.sum())]
        scores[f"{prefix}maxima_pairs"] = match["value_pairs"]
    return {
        **scores,
        "template_score": template_score(pred),
        "template_score_ref": reference["template_score"],
    }


def prototype_labels(sample) -> dict:
    """What a metal-prototype sample's scores are grouped by: its elements, prototype and
    volume fraction V/V0."""
    return {
        "elements": sorted(set(sample.atoms.get_chemical_symbols())),
        "prototype": sample.metadata.get("prototype"),
        "volume_fraction": sample.metadata.get("volume_fraction"),
    }


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
    workers: int | None = 1,
) -> dict:
    """Scores of one or more models and of the physics baseline on every sample of
    `dataset`/`split` (the same samples for every model), aggregated per stratum and overall
    (means over samples; worst R² too), with each sample's residual power spectrum. An
    ensemble listed after its members is averaged from their predictions. `workers`: samples
    fan out over that many single-threaded processes (`elfkit.parallel`; None: one per core),
    with the same numbers as one process (to float rounding)."""
    import elfkit.data
    from elfkit.parallel import parallel_map
    from elfkit.predict import get_model

    loaded = [get_model(m) for m in (models if isinstance(models, list) else [models])]
    names = [m.name for m in loaded] + [BASELINE]
    if len(set(names)) < len(names):
        raise ElfkitError(f"models to evaluate together need distinct names, got {', '.join(names[:-1])}")
    opened = elfkit.data.open(dataset, split=split)
    crystals = opened.manifest.get("kind") == "relaxed-crystals"
    critical = crystals if critical is None else critical
    prototypes = opened.manifest.get("kind") == PROTOTYPES
    score = partial(sample_rows, models=loaded, critical=critical, prototypes=prototypes, crystals=crystals)
    samples = [row for rows in parallel_map(score, list(opened), workers, on_progress) for row in rows]
    return {
        "model": loaded[0].name,
        "model_sha256": loaded[0].sha256,
        "models": [{"name": m.name, "sha256": m.sha256} for m in loaded],
        "dataset": dataset,
        "split": split,
        "spectrum_k_per_angstrom": SPECTRUM_K_PER_ANGSTROM.tolist(),
        "samples": samples,
        "table": aggregate(samples),
        **({"summary": prototype_summary(samples)} if prototypes else {}),
    }


def sample_rows(sample, models: list, critical: bool, prototypes: bool, crystals: bool = False) -> list[dict]:
    """One row of scores per model and for the physics baseline on one dataset sample: its
    prediction on the sample's grid against the DFT ELF (module docstring); `critical` adds the
    topology scores, `crystals` reports the sample in its phase-and-pressure stratum."""
    from elfkit.predict import predict

    ref = Field(sample.atoms, sample.elf, "elf")
    stratum = _stratum(sample, crystals, prototypes)
    reference = reference_topology(ref) if critical or prototypes else None
    predictions: dict[str, Field] = {}
    for m in models:
        predictions[m.name] = member_mean(m, predictions) or predict(sample.atoms, sample.elf.shape, m)
    predictions[BASELINE] = baseline_field(sample.atoms, sample.elf.shape)
    correlations = residual_correlations(predictions, ref)
    rows = []
    for name, pred in predictions.items():
        scores = field_scores(pred, ref)
        if critical:
            scores.update(topology_scores(pred, reference))
        if prototypes:
            scores.update(prototype_scores(pred, reference), **prototype_labels(sample))
        row = {"model": name, "key": sample.key, "stratum": stratum, "pressure_gpa": sample.pressure_gpa, **scores}
        rows.append({**row, "residual_correlation": correlations[name]})
    return rows


def _stratum(sample, crystals: bool, prototypes: bool) -> str:
    from elfkit.train.loader import stratum_of

    if crystals:
        return f"{sample.group.removeprefix('crystal-')} {sample.pressure_gpa:.0f} GPa"
    return sample.group if prototypes else stratum_of(sample)


def prototype_summary(samples: list[dict]) -> dict:
    """Per model: the parity R² of the matched maxima's ELF values (all samples pooled), their
    count, the mean maxima recall, and the Spearman rank correlation between predicted and DFT
    template scores over all samples and per volume fraction (None with fewer than 3 samples
    or constant scores)."""
    out = {}
    for model in dict.fromkeys(s["model"] for s in samples):
        mine = [s for s in samples if s["model"] == model]
        volumes = sorted({s["volume_fraction"] for s in mine if s["volume_fraction"] is not None}, reverse=True)
        out[model] = {
            **_maxima_summary(mine, ""),
            **_maxima_summary(mine, "interstitial_"),
            "template_spearman": _spearman(mine),
            "template_spearman_per_volume": {f"{v:g}": _spearman([s for s in mine if s["volume_fraction"] == v]) for v in volumes},
        }
    return out


def _maxima_summary(samples: list[dict], prefix: str) -> dict:
    """Parity R² of the pooled matched maxima of `samples`, their count and the mean recall,
    for all maxima (`prefix` "") or the interstitial ones ("interstitial_")."""
    pairs = np.array([pair for s in samples for pair in s.get(f"{prefix}maxima_pairs", [])], dtype=float).reshape(-1, 2)
    recalls = [s[f"recall_{prefix}maxima"] for s in samples if s.get(f"recall_{prefix}maxima") is not None]
    return {
        f"{prefix}maxima_parity_r2": _r2(pairs[:, 0], pairs[:, 1]),
        f"matched_{prefix}maxima": len(pairs),
        f"recall_{prefix}maxima": float(np.mean(recalls)) if recalls else None,
    }


def _r2(predicted: np.ndarray, reference: np.ndarray) -> float | None:
    spread = ((reference - reference.mean()) ** 2).sum() if len(reference) else 0.0
    return float(1 - ((predicted - reference) ** 2).sum() / spread) if spread > 0 else None


def _spearman(samples: list[dict]) -> float | None:
    from scipy.stats import spearmanr

    predicted = [s["template_score"] for s in samples]
    reference = [s["template_score_ref"] for s in samples]
    if len(samples) < 3 or len(set(predicted)) < 2 or len(set(reference)) < 2:
        return None
    return float(spearmanr(predicted, reference).statistic)


def aggregate(samples: list[dict]) -> list[dict]:
    """One row per (model, stratum) and per model overall: sample means of the scores."""
    rows = []
    for model in dict.fromkeys(s["model"] for s in samples):
        mine = [s for s in samples if s["model"] == model]
        strata = sorted(dict.fromkeys(g for s in mine for g in _groups(s)), key=_stratum_order)
        for stratum in strata + ["all"]:
            chosen = [s for s in mine if stratum == "all" or stratum in _groups(s)]
            rows.append({"model": model, "stratum": stratum, "samples": len(chosen), **_means(chosen)})
    return rows


def _groups(sample: dict) -> list[str]:
    """The table rows a sample counts in: its stratum, or for a metal prototype each of its
    elements, its prototype and its volume fraction."""
    if "elements" not in sample:
        return [sample["stratum"]]
    return [f"element {e}" for e in sample["elements"]] + [f"prototype {sample['prototype']}", f"V/V0 {sample['volume_fraction']:g}"]


_GROUP_ORDER = ("rs", "element", "prototype", "V/V0")


def _stratum_order(stratum: str):
    kind, _, name = stratum.partition(" ")
    if kind not in _GROUP_ORDER:
        return (len(_GROUP_ORDER), 0.0, stratum)
    return (_GROUP_ORDER.index(kind), float(name) if kind in ("rs", "V/V0") else 0.0, name)


def _means(chosen: list[dict]) -> dict:
    out = {}
    for key in _AVERAGED + ("networking_value_error", "recall_maxima", "recall_interstitial_maxima", "recall_saddles"):
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
        ("recall interstitial maxima", "recall_interstitial_maxima", "{:.2f}"), ("recall saddles", "recall_saddles", "{:.2f}"),
    ]
    present = [c for c in columns if any(c[1] in row for row in result["table"])]
    lines = [
        "| model | stratum | samples | " + " | ".join(c[0] for c in present) + " |",
        "|---|---|---|" + "---|" * len(present),
    ]
    for row in result["table"]:
        cells = [c[2].format(row[c[1]]) if c[1] in row else "-" for c in present]
        lines.append(f"| {row['model']} | {row['stratum']} | {row['samples']} | " + " | ".join(cells) + " |")
    if "summary" in result:
        lines += ["", *summary_table(result["summary"])]
    return "\n".join(lines)


def summary_table(summary: dict) -> list[str]:
    """Markdown lines of a metal-prototype summary: maxima parity (all and interstitial) and
    template-score ranking."""
    volumes = list(next(iter(summary.values()))["template_spearman_per_volume"])
    lines = [
        "| model | matched maxima | parity R² of maxima | recall maxima | matched interstitial maxima | parity R² interstitial | "
        "recall interstitial | template Spearman | " + " | ".join(f"Spearman V/V0 {v}" for v in volumes) + " |",
        "|---|---|---|---|---|---|---|---|" + "---|" * len(volumes),
    ]
    for model, row in summary.items():
        numbers = [
            row["matched_maxima"], row["maxima_parity_r2"], row["recall_maxima"], row["matched_interstitial_maxima"],
            row["interstitial_maxima_parity_r2"], row["recall_interstitial_maxima"], row["template_spearman"],
            *row["template_spearman_per_volume"].values(),
        ]
        cells = ["-" if x is None else str(x) if isinstance(x, int) else f"{x:.3f}" for x in numbers]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines
