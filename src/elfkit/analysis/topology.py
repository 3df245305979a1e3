"""Everything `elfkit topology` reports for one ELF field."""

from __future__ import annotations

from elfkit.analysis.critical import counts, critical_points, morse_sum
from elfkit.analysis.network import (
    dimensionality_vs_isovalue,
    hydrogen_fraction,
    molecularity_index,
    networking_value,
)
from elfkit.errors import FieldFormatError
from elfkit.field import Field


def check_elf(field: Field, source: str = "field") -> None:
    """FieldFormatError unless the values are an ELF: finite and within [0, 1]."""
    values = field.values
    if not (values.min() >= -1e-6 and values.max() <= 1 + 1e-6):
        raise FieldFormatError(
            f"{source}: values span {values.min():.4g} to {values.max():.4g}; an ELF lies in [0, 1]"
        )


def topology(field: Field) -> dict:
    """Critical points, Morse sum, networking value (all domains and H-containing only),
    molecularity index, hydrogen fraction and dimensionality versus isovalue."""
    points = critical_points(field)
    total = morse_sum(points)
    return {
        "networking_value": networking_value(field),
        "networking_value_hydrogen": networking_value(field, hydrogen_only=True)
        if "H" in field.atoms.get_chemical_symbols()
        else None,
        "molecularity_index": molecularity_index(field),
        "hydrogen_fraction": hydrogen_fraction(field),
        "dimensionality_vs_isovalue": dimensionality_vs_isovalue(field),
        "counts": counts(points),
        "morse_sum": total,
        "morse_sum_ok": total == 0,
        "critical_points": [p.as_dict() for p in points],
    }
