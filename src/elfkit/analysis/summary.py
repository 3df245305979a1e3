"""Words and rounded numbers for people: the lines `elfkit topology`, `compare` and `report`
print, and the labels and warnings the report page shows. Numbers keep the precision they
carry (ELF to 3 decimals, lengths to 0.01 Å); a missing value is said in words, never `None`."""

from __future__ import annotations

DIMENSIONS = {
    0: "0D (isolated domains)",
    1: "1D (chains)",
    2: "2D (layers)",
    3: "3D (percolating network)",
}
"""Dimensionality of an ELF domain (rank of its periodic winding vectors) in words."""
NO_DOMAIN = "no domain (ELF below the isovalue everywhere)"


def dimension_words(dimension: int | None) -> str:
    """Dimensionality of the largest domain in words; `None` means no grid point reaches the isovalue."""
    return NO_DOMAIN if dimension is None else DIMENSIONS[dimension]


def elf_value(value: float | None, missing: str = "undefined") -> str:
    """A dimensionless ELF value to 3 decimals, or `missing` in words."""
    return missing if value is None else f"{value:.3f}"


def persistence_words(value: float | None) -> str:
    """Persistence of a critical point's pair (ELF units); `None` is an essential class of the torus."""
    return "∞ (essential, never cancelled)" if value is None else f"{value:.3f}"


def networking_words(value: float | None) -> str:
    """The networking value φ, or why it is missing."""
    return elf_value(value, "none (no domain percolates in 3D above the field minimum)")


def error_value(value: float) -> str:
    """A dimensionless error: 4 decimals, or 2 significant digits below 0.001 (0 stays 0)."""
    if value == 0:
        return "0"
    return f"{value:.1e}" if abs(value) < 1e-3 else f"{value:.4f}"


def counts_words(counts: dict[str, int]) -> str:
    """Critical-point counts as '8 maxima, 24 saddles, 17 rings, 1 minimum'."""
    singular = {"maxima": "maximum", "saddles": "saddle", "rings": "ring", "minima": "minimum"}
    return ", ".join(f"{counts[k]} {singular[k] if counts[k] == 1 else k}" for k in singular)


def topology_warnings(result: dict) -> list[str]:
    """What a reader of a topology result must know before trusting it (empty when nothing)."""
    warnings = []
    if result["morse_sum"] != 0:
        warnings.append(
            f"Morse sum maxima - saddles + rings - minima = {result['morse_sum']}, not 0: the set of critical points is incomplete"
        )
    apart = sum(result["counts_low_density"].values())
    if apart:
        limit = result["low_density_limit"]
        warnings.append(
            f"{apart} critical points lie where the atoms' density is below {limit:g} electrons/Å³ (the ELF is "
            "ill-defined there); they are listed apart and left out of the counts"
        )
    if result["networking_value"] is None:
        warnings.append("no ELF domain percolates in 3D above the field minimum: the networking value φ is undefined")
    return warnings


def topology_lines(result: dict) -> list[str]:
    """The result of `elfkit.analysis.topology.topology` as lines for a terminal."""
    threshold = result["persistence_threshold"]
    lines = [
        f"critical points with persistence ≥ {threshold:g} (ELF units): {counts_words(result['counts'])}; "
        f"Morse sum {result['morse_sum']}",
        f"  before cancelling the pairs below {threshold:g}: {counts_words(result['counts_before_simplification'])}",
        f"networking value φ: {networking_words(result['networking_value'])}",
    ]
    if result["networking_value_hydrogen"] is not None:
        lines.append(f"networking value of hydrogen domains only: {elf_value(result['networking_value_hydrogen'])}")
    lines += [
        f"molecularity index: {elf_value(result['molecularity_index'], 'undefined (no domain holds two hydrogen nuclei)')}",
        f"hydrogen fraction: {result['hydrogen_fraction']:.3f} of the atoms",
        "largest ELF domain versus isovalue:",
        *dimensionality_lines(result["dimensionality_vs_isovalue"]),
    ]
    return lines + [f"warning: {w}" for w in topology_warnings(result)]


def dimensionality_lines(rows: list[dict]) -> list[str]:
    """Isovalue ranges over which the largest domain keeps one dimensionality, e.g. '0.05-0.45: 3D (...)'."""
    from elfkit.analysis.network import dimensionality_runs

    return [
        f"  ELF {low:.2f}{'' if low == high else f'-{high:.2f}'}: {dimension_words(dimension)}"
        for low, high, dimension in dimensionality_runs(rows)
    ]


def comparison_rows(result: dict) -> list[tuple[str, str]]:
    """(measure, value with unit) pairs of an `elfkit.analysis.metrics.compare` result."""
    length = result["autocorrelation"]["correlation_length_angstrom"]
    r2 = result["r2"]
    rows = [
        ("R²", "undefined (constant reference)" if r2 is None else f"{r2:.4f}"),
        ("mean absolute error", error_value(result["mae"])),
        ("root-mean-square error", error_value(result["rmse"])),
        ("largest absolute error", error_value(result["max_error"])),
        ("Wasserstein-1 distance of the ELF histograms", error_value(result["wasserstein_1"])),
        ("overlap of the ELF histograms", f"{100 * result['histogram_overlap']:.1f} %"),
    ]
    rows += [
        (f"MAE in the {name} region ({100 * r['fraction']:.1f} % of the cell)", error_value(r["mae"]))
        for name, r in result["regions"].items()
    ]
    if result["max_error"] == 0:
        return rows + [("residual", "zero everywhere: the two ELFs are identical")]
    return rows + [
        (
            f"residual power at wavelengths longer than d = {result['nearest_neighbour_hh_angstrom']:.2f} Å "
            "(shortest H-H distance, any atoms without H)",
            f"{100 * result['long_wavelength_power_fraction']:.1f} %",
        ),
        ("correlation length of the residual", "longer than the cell" if length is None else f"{length:.2f} Å"),
    ]


def comparison_lines(result: dict) -> list[str]:
    """A comparison result as aligned 'measure  value' lines for a terminal (ELF errors are dimensionless)."""
    rows = comparison_rows(result)
    width = max(len(name) for name, _ in rows)
    return [f"{name:<{width}}  {value}" for name, value in rows]
