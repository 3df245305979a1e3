"""`elfkit report`: the topology of an ELF (and its comparison with a reference), its pictures
as PNG files and the self-contained page that embeds them (elfkit.analysis.page)."""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
from pathlib import Path

from elfkit.analysis import plots
from elfkit.analysis.page import Picture, page_name, write_page
from elfkit.analysis.slices import SLAB_ANGSTROM, plane_slice
from elfkit.field import Field


@dataclass
class Report:
    """What `make_report` wrote (paths in its folder) and the numbers behind it."""

    page: Path
    page_bytes: int
    pictures: list[Path]
    topology: dict
    comparison: dict | None = dataclass_field(default=None)


def make_report(
    folder: Path,
    field: Field,
    source: str,
    planes: list[tuple[int, int, int]],
    through_atom: int | None = None,
    reference: Field | None = None,
    reference_name: str | None = None,
) -> Report:
    """Analyse `field`, write its pictures and page into `folder`. `source` and
    `reference_name` are the file names the page shows; slices lie on `planes` (Miller
    indices) through the origin, or centred on atom number `through_atom` (1-based)."""
    from elfkit.analysis.topology import topology

    folder = Path(folder)
    result = topology(field)
    phi = result["networking_value"]
    level, why = (phi, f"φ = {phi:.3f}, the networking value") if phi is not None else (0.5, "0.50 (no networking value)")
    pictures = [Picture(plots.isosurface_png(field, level, folder / "isosurface.png", f"ELF isosurface at {why}"),
                        "Isosurface", f"ELF = {level:.3f} ({why}), unit cell and atoms with periodic images; axes in Å.")]
    pictures += [_slice_picture(field, hkl, through_atom, folder) for hkl in planes]
    comparison, comparison_pictures = None, []
    if reference is not None:
        from elfkit.analysis.metrics import compare

        comparison = compare(field, reference)
        made = plots.comparison_plots(field, reference, comparison, folder)
        captions = ["This ELF against the reference, grid point by grid point, counted in square bins.",
                    "Distributions of the two ELFs over the grid points.",
                    "Power of the residual (this ELF − reference) per Fourier mode versus |k|, radially averaged; "
                    "the dashed line is 2π over the shortest H-H distance (between any atoms without hydrogen)."]
        comparison_pictures = [Picture(p, heading, caption) for p, heading, caption
                               in zip(made, ("Parity", "Histograms", "Residual spectrum"), captions)]
    page = write_page(folder / page_name(source), field, result, source, pictures, comparison, comparison_pictures,
                      reference_name)
    return Report(page, page.stat().st_size, [p.path for p in pictures + comparison_pictures], result, comparison)


def _slice_picture(field: Field, hkl: tuple[int, int, int], through_atom: int | None, folder: Path) -> Picture:
    """The slice on plane (hkl) as a PNG and its caption."""
    plane_text = "(" + " ".join(str(i) for i in hkl) + ")"
    if through_atom is None:
        through, where, centred, suffix = (0.0, 0.0, 0.0), "the origin", False, ""
    else:
        symbol = field.atoms.get_chemical_symbols()[through_atom - 1]
        through = field.atoms.get_scaled_positions(wrap=True)[through_atom - 1]
        where, centred, suffix = f"atom {through_atom} ({symbol})", True, f"_atom{through_atom}"
    plane = plane_slice(field, hkl, through, centred=centred)
    name = f"slice_{plane.name}{suffix}.png"
    plots.slice_plot(plane, folder / name, where)
    caption = (f"ELF on the lattice plane {plane_text} through {where}"
               f"{', at the centre' if centred else ', at the lower left corner'}; one period of the plane, spanned by "
               f"the cell translations {plots.direction_label(plane.u)} (x axis) and {plots.direction_label(plane.v)}; the map wraps across the cell "
               f"boundaries. Atoms drawn: every periodic image within {SLAB_ANGSTROM:g} Å of the plane.")
    return Picture(folder / name, f"Slice {plane_text}", caption)

