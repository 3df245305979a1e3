"""Everything `elfkit topology` reports for one ELF field."""

from __future__ import annotations

from elfkit.analysis.critical import (
    DEFAULT_PERSISTENCE,
    LOW_DENSITY,
    counts,
    critical_points,
    morse_sum,
    persistence_pairs,
)
from elfkit.analysis.network import (
    dimensionality_vs_isovalue,
    hydrogen_fraction,
    molecularity_index,
    networking_value,
)
from elfkit.errors import FieldFormatError
from elfkit.field import Field


def check_elf(field: Field, source: str = "field") -> None:
    """FieldFormatError unless the values are an ELF: not recorded as a density by the file
    (its format or elfkit's quantity tag), finite and within [0, 1]."""
    if field.quantity == "density":
        how = "a CHGCAR-type file" if field.metadata.get("source_format") == "vasp" else "its quantity tag"
        raise FieldFormatError(f"{source}: the file records a density ({how}), not an ELF")
    values = field.values
    if not (values.min() >= -1e-6 and values.max() <= 1 + 1e-6):
        raise FieldFormatError(
            f"{source}: values span {values.min():.4g} to {values.max():.4g}; an ELF lies in [0, 1]"
        )


def topology(field: Field, persistence: float = DEFAULT_PERSISTENCE, low_density: float | None = LOW_DENSITY) -> dict:
    """Critical points, Morse sum, networking value (all domains and H-containing only),
    molecularity index, hydrogen fraction and dimensionality versus isovalue.

    Critical points are those of the discrete gradient left after cancelling the persistence
    pairs below `persistence` (ELF units); `counts_before_simplification` counts every pair of
    non-zero persistence. Points where the structure's SAD is below `low_density`
    (electrons/Å³; None: no check) are listed apart in `low_density_critical_points` and left
    out of `counts` and `critical_points`; `morse_sum` is over the whole simplified set,
    both lists together, and is 0 by construction.
    """
    pairs = persistence_pairs(field.values)
    points = critical_points(field, persistence, low_density=low_density, pairs=pairs)
    reliable = [p for p in points if not p.low_density]
    apart = [p for p in points if p.low_density]
    total = morse_sum(points)
    return {
        "networking_value": networking_value(field),
        "networking_value_hydrogen": networking_value(field, hydrogen_only=True)
        if "H" in field.atoms.get_chemical_symbols()
        else None,
        "molecularity_index": molecularity_index(field),
        "hydrogen_fraction": hydrogen_fraction(field),
        "dimensionality_vs_isovalue": dimensionality_vs_isovalue(field),
        "persistence_threshold": persistence,
        "low_density_limit": low_density,
        "counts_before_simplification": pairs.counts(0.0),
        "counts": counts(reliable),
        "counts_low_density": counts(apart),
        "morse_sum": total,
        "morse_sum_ok": total == 0,
        "critical_points": [p.as_dict() for p in reliable],
        "low_density_critical_points": [p.as_dict() for p in apart],
    }
