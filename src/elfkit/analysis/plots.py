"""Pictures of ELF fields: parity and histogram plots, residual spectra, planar slices with
atoms, isosurfaces (PNG). Atoms are coloured by element with the Jmol/CPK colours VESTA
uses by default; lengths are in Å with equal scaling on every axis."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from elfkit.analysis.slices import PlaneSlice
from elfkit.field import Field

MESH_SAMPLES = 32
"""Marching cubes runs on at most about this many grid points per axis (the field resampled)."""
_CELL_EDGES = [(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 3), (2, 6), (3, 7), (4, 5), (4, 6), (5, 7), (6, 7)]
_IMAGE_TOLERANCE = 1e-3


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def element_colour(symbol: str) -> str:
    """Jmol/CPK colour of an element as '#rrggbb'."""
    from ase.data import atomic_numbers
    from ase.data.colors import jmol_colors

    return "#" + "".join(f"{round(255 * c):02x}" for c in jmol_colors[atomic_numbers[symbol]])


def cell_edges(cell: np.ndarray) -> np.ndarray:
    """The 12 edges of the unit cell as (12, 2, 3) Cartesian end points (Å)."""
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]) @ cell
    return np.array([[corners[a], corners[b]] for a, b in _CELL_EDGES])


def atoms_with_images(atoms) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Symbols, Cartesian positions (Å), an is-image flag and the atom number (1 = the first
    atom, as VESTA numbers them) of the atoms wrapped into the cell plus their periodic images
    on the faces, edges and corners of the cell (an atom at fractional 0 along an axis is
    drawn at 1 too, as VESTA does)."""
    frac = atoms.get_scaled_positions(wrap=True)
    frac[np.abs(frac - 1) < _IMAGE_TOLERANCE] = 0.0
    symbols, points, image, number = [], [], [], []
    for n, (symbol, f) in enumerate(zip(atoms.get_chemical_symbols(), frac), start=1):
        choices = [(0, 1) if abs(x) < _IMAGE_TOLERANCE else (0,) for x in f]
        for shift in np.array(np.meshgrid(*choices, indexing="ij")).reshape(3, -1).T:
            symbols.append(symbol)
            points.append(f + shift)
            image.append(bool(shift.any()))
            number.append(n)
    return symbols, np.array(points) @ atoms.cell.array, np.array(image), np.array(number)


def parity_plot(pred: Field, ref: Field, path: Path) -> Path:
    """2D histogram of predicted against reference ELF on square bins (identical fields give
    one clean diagonal), log colour scale."""
    from matplotlib.colors import LogNorm

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    edges = np.linspace(0, 1, 101)
    counts, _, _ = np.histogram2d(ref.values.ravel(), pred.values.ravel(), [edges, edges])
    mesh = ax.pcolormesh(edges, edges, np.ma.masked_equal(counts.T, 0), norm=LogNorm(vmin=1), cmap="viridis")
    ax.plot([0, 1], [0, 1], "k--", lw=0.6)
    ax.set(xlabel="reference ELF", ylabel="predicted ELF", xlim=(0, 1), ylim=(0, 1), aspect="equal")
    if np.array_equal(pred.values, ref.values):
        ax.set_title("identical: every grid point on the diagonal", fontsize=9)
    fig.colorbar(mesh, label="grid points per bin")
    return _save(fig, path)


def histogram_plot(pred: Field, ref: Field, path: Path) -> Path:
    """The two ELF distributions overlaid."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    edges = np.linspace(0, 1, 101)
    ax.hist(ref.values.ravel(), edges, density=True, alpha=0.5, label="reference")
    ax.hist(pred.values.ravel(), edges, density=True, histtype="step", lw=1.5, label="predicted")
    ax.set(xlabel="ELF", ylabel="density of grid points")
    ax.legend()
    return _save(fig, path)


def spectrum_plot(result: dict, path: Path) -> Path:
    """Radially averaged residual power versus |k|, with the 2π/d_HH line; shells with no
    power (below 1e-12 of the largest: rounding, such as the k = 0 shell of a residual whose
    mean is removed) are left out, and a zero residual is said in words instead of drawn."""
    plt = _pyplot()
    spectrum = result["power_spectrum"]
    k, power = np.array(spectrum["k_per_angstrom"]), np.array(spectrum["mean_power"])
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    positive = power > 1e-12 * power.max(initial=0.0)
    if positive.any():
        ax.semilogy(k[positive], power[positive], "o-", ms=3)
    else:
        ax.text(0.5, 0.5, "residual is zero:\nno power at any |k|", ha="center", va="center", transform=ax.transAxes)
    ax.axvline(2 * np.pi / result["nearest_neighbour_hh_angstrom"], color="k", ls="--", lw=0.8, label="2π / d (shortest H-H,\nany atoms without H)")
    ax.set(xlabel="|k| (1/Å)", ylabel="residual power per mode", xlim=(0, k.max() * 1.02))
    ax.legend()
    return _save(fig, path)


def slice_plot(plane: PlaneSlice, path: Path, through: str) -> Path:
    """One slice (elfkit.analysis.slices.plane_slice): ELF map to the edges of the plane's
    period, its outline, the in-plane lattice directions, atoms coloured by element."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 4.8))
    mesh = ax.pcolormesh(plane.x, plane.y, plane.values, shading="gouraud", cmap="magma", vmin=0, vmax=1)
    ax.plot(plane.outline[:, 0], plane.outline[:, 1], color="0.5", lw=0.8)
    centre = plane.outline[2] / 2
    for end, uvw in ((plane.outline[1], plane.u), (plane.outline[3], plane.v)):
        ax.annotate("", xy=end, xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": "deepskyblue", "lw": 1.5})
        ax.text(*(0.5 * end + 0.25 * (centre - 0.5 * end)), direction_label(uvw), color="white", fontsize=9, ha="center",
                va="center", bbox={"boxstyle": "round", "fc": "black", "alpha": 0.5, "lw": 0})
    for symbol in sorted(set(plane.atom_symbols)):
        at = np.array([s == symbol for s in plane.atom_symbols])
        ax.scatter(plane.atom_xy[at, 0], plane.atom_xy[at, 1], s=60, c=element_colour(symbol), edgecolors="k",
                   linewidths=0.8, label=symbol, zorder=3, clip_on=False)
    if plane.atom_symbols:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=8, title="atoms within "
                  f"{plane.slab:g} Å of the plane, periodic images included", fontsize=8, title_fontsize=8)
    pad = 0.04 * np.ptp(plane.outline, axis=0).max()
    ax.set_xlim(plane.outline[:, 0].min() - pad, plane.outline[:, 0].max() + pad)
    ax.set_ylim(plane.outline[:, 1].min() - pad, plane.outline[:, 1].max() + pad)
    ax.set_facecolor("0.85")
    ax.set(aspect="equal", xlabel=f"along {direction_label(plane.u)} (Å)", ylabel=f"in plane, normal to {direction_label(plane.u)} (Å)",
           title=f"ELF on ({' '.join(str(i) for i in plane.hkl)}) through {through}")
    fig.colorbar(mesh, label="ELF", fraction=0.046)
    return _save(fig, path)


def direction_label(uvw) -> str:
    """Lattice direction as '[u v w]'."""
    return "[" + " ".join(str(int(i)) for i in uvw) + "]"


def isosurface_mesh(field: Field, isovalue: float, shape: tuple[int, int, int] | None = None):
    """Triangles of the periodic ELF isosurface at `isovalue`: vertices in Å (float32) and
    faces (vertex indices: uint16 when there are fewer than 65536 vertices, else int32), the
    surface closed across the cell faces. With `shape`, marching cubes runs on the field
    resampled to that grid (periodic trilinear interpolation), a coarser mesh."""
    from skimage.measure import marching_cubes

    values = field.values if shape is None or tuple(shape) == field.values.shape else _resample(field.values, shape)
    padded = np.pad(values, [(0, 1)] * 3, mode="wrap")
    if not padded.min() < isovalue < padded.max():
        return np.zeros((0, 3), dtype=np.float32), np.zeros((0, 3), dtype=np.uint16)
    verts, faces, _, _ = marching_cubes(padded, isovalue)
    cart = (verts / np.array(values.shape)) @ field.atoms.cell.array
    return cart.astype(np.float32), faces.astype(np.uint16 if len(verts) < 2**16 else np.int32)


def _resample(values: np.ndarray, shape) -> np.ndarray:
    """Periodic trilinear resampling of grid values onto another grid of the same cell."""
    from scipy.ndimage import map_coordinates

    axes = [np.arange(m) * n / m for n, m in zip(values.shape, shape)]
    index = np.stack(np.meshgrid(*axes, indexing="ij"))
    return map_coordinates(values, index, order=1, mode="grid-wrap")


def mesh_shape(field: Field, coarsening: float = 1.0) -> tuple[int, int, int]:
    """Grid for marching cubes: the field's, scaled down to at most about MESH_SAMPLES points
    per axis, then divided by `coarsening` (at least 4 points per axis)."""
    factor = max(1.0, max(field.values.shape) / MESH_SAMPLES) * coarsening
    return tuple(max(4, int(round(n / factor))) for n in field.values.shape)


def isosurface_png(field: Field, isovalue: float, path: Path, label: str) -> Path:
    """A static 3D view of one ELF isosurface (`label` says which value and why) with the unit
    cell, the atoms by element and their periodic images; axes in Å, equally scaled."""
    plt = _pyplot()
    fig = plt.figure(figsize=(5.5, 5))
    _draw_isosurface(fig.add_subplot(projection="3d"), field, isovalue, label)
    return _save(fig, path)


def isosurface_comparison_png(fields: dict[str, Field], isovalue: float, path: Path, title: str = "") -> Path:
    """The isosurfaces at `isovalue` of several ELFs of one structure side by side (e.g.
    predicted and DFT), each panel titled by its key, drawn as `isosurface_png` draws one."""
    plt = _pyplot()
    fig = plt.figure(figsize=(4.5 * len(fields), 4.5))
    for number, (label, field) in enumerate(fields.items(), start=1):
        _draw_isosurface(fig.add_subplot(1, len(fields), number, projection="3d"), field, isovalue, label)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _draw_isosurface(ax, field: Field, isovalue: float, label: str) -> None:
    verts, faces = isosurface_mesh(field, isovalue, mesh_shape(field))
    if len(faces):
        ax.plot_trisurf(verts[:, 0], verts[:, 1], verts[:, 2], triangles=faces, color="gold", alpha=0.5, lw=0)
    for start, end in cell_edges(field.atoms.cell.array):
        ax.plot(*np.stack([start, end]).T, color="k", lw=0.8)
    symbols, points, _, _ = atoms_with_images(field.atoms)
    for symbol in sorted(set(symbols)):
        at = np.array([s == symbol for s in symbols])
        ax.scatter(*points[at].T, s=50, c=element_colour(symbol), edgecolors="k", depthshade=False, label=symbol)
    corners = cell_edges(field.atoms.cell.array).reshape(-1, 3)
    ax.set_box_aspect(np.ptp(corners, axis=0))
    ax.legend(loc="upper left", fontsize=8)
    ax.set(title=label, xlabel="x (Å)", ylabel="y (Å)", zlabel="z (Å)")


def screen_plot(rows: list[dict], path: Path) -> Path:
    """Template scores of a screen as a ranked bar chart (with V/V0 for compressed candidates)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(rows) + 1.2))
    labels = [f"{r['formula']} ({Path(r['structure']).name}"
              + (f", V/V0 = {r['volume_fraction']:g})" if r.get("volume_fraction", 1.0) != 1.0 else ")") for r in rows]
    ax.barh(range(len(rows)), [r["template_score"] for r in rows][::-1], color="teal")
    ax.set_yticks(range(len(rows)), labels[::-1])
    ax.set(xlabel="template score S")
    return _save(fig, path)


def residual_study_plot(result: dict, path: Path) -> Path:
    """Every model of an `elfkit.evaluation.evaluate` result against pressure (GPa, mean per
    stratum): R², the residual's long-wavelength power fraction and correlation length (Å),
    the mean residual power spectrum at the lowest and highest pressure stratum, and how
    strongly each model's residual correlates with the first model's."""
    plt = _pyplot()
    models = list(dict.fromkeys(s["model"] for s in result["samples"]))
    fig, axes = plt.subplots(1, 5, figsize=(19, 3.6))
    keys = (("r2", "R²"), ("long_wavelength_power_fraction", "long-wavelength power fraction"), ("correlation_length_angstrom", "residual correlation length (Å)"))
    for model in models:
        strata = _strata_by_pressure(result["samples"], model)
        if not strata:
            continue
        pressure = [np.mean([s["pressure_gpa"] for s in members]) for members in strata.values()]
        for ax, (key, label) in zip(axes, keys):
            ax.plot(pressure, [np.mean([s[key] for s in members]) for members in strata.values()], "o-", ms=4, label=model)
            ax.set(xlabel="pressure (GPa)", ylabel=label)
        k = np.array(result["spectrum_k_per_angstrom"])
        ordered = list(strata.values())
        for members, style in ((ordered[0], ":"), (ordered[-1], "-")):
            power = np.mean([s["residual_power"] for s in members], axis=0)
            shown = power > 1e-12 * power.max(initial=0.0)
            axes[3].semilogy(k[shown], power[shown], style, color=axes[0].lines[-1].get_color())
        if model != models[0]:
            correlation = [np.mean([s["residual_correlation"][models[0]] for s in members]) for members in strata.values()]
            axes[4].plot(pressure, correlation, "o-", ms=4, color=axes[0].lines[-1].get_color(), label=model)
    axes[4].set(xlabel="pressure (GPa)", ylabel=f"residual correlation with {models[0]}")
    axes[0].legend(fontsize=8)
    axes[3].set(xlabel="|k| (1/Å)", ylabel="residual power per shell", title="dotted: lowest, solid: highest pressure")
    axes[3].title.set_fontsize(9)
    return _save(fig, path)


def maxima_parity_plot(result: dict, path: Path) -> Path:
    """Seed 004's parity of ELF maxima for every model of a metal-prototype `evaluate` result:
    predicted against DFT value of each matched maximum (left, with the parity R²; crosses: the
    interstitial maxima, `elfkit.evaluation.prototype_scores`), and
    predicted against DFT template score of each structure (right, with Spearman's rho)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.4))
    for model, summary in result["summary"].items():
        mine = [s for s in result["samples"] if s["model"] == model]
        for prefix, marker, what in (("", "o", "all"), ("interstitial_", "+", "interstitial")):
            pairs = np.array([pair for s in mine for pair in s.get(f"{prefix}maxima_pairs", [])], dtype=float).reshape(-1, 2)
            r2 = summary.get(f"{prefix}maxima_parity_r2")
            r2 = "-" if r2 is None else f"{r2:.3f}"
            axes[0].plot(pairs[:, 1], pairs[:, 0], marker, ms=3, alpha=0.6, label=f"{model}, {what} (R² {r2}, {len(pairs)} maxima)")
        rho = "-" if summary["template_spearman"] is None else f"{summary['template_spearman']:.3f}"
        scores = [(s["template_score_ref"], s["template_score"]) for s in mine]
        axes[1].plot(*zip(*scores), "o", ms=3, alpha=0.6, label=f"{model} (Spearman {rho})")
    for ax, what in zip(axes, ("ELF at a maximum", "template score")):
        low, high = ax.get_xlim()
        ax.plot([low, high], [low, high], "k:", lw=1)
        ax.set(xlabel=f"DFT {what}", ylabel=f"predicted {what}")
        ax.legend(fontsize=7)
    return _save(fig, path)


def evaluation_plot(result: dict, path: Path) -> Path:
    """The figure of an `evaluate` result: the maxima parity for metal prototypes, else the
    residual study against pressure."""
    return maxima_parity_plot(result, path) if "summary" in result else residual_study_plot(result, path)


def _strata_by_pressure(samples: list[dict], model: str) -> dict[str, list[dict]]:
    """A model's samples grouped by stratum, the strata ordered by mean pressure."""
    strata: dict[str, list[dict]] = {}
    for s in samples:
        if s["model"] == model and s.get("pressure_gpa") is not None:
            strata.setdefault(s["stratum"], []).append(s)
    return dict(sorted(strata.items(), key=lambda item: np.mean([s["pressure_gpa"] for s in item[1]])))


def comparison_plots(pred: Field, ref: Field, result: dict, folder: Path) -> list[Path]:
    """Parity, histograms and residual spectrum of a comparison, as PNG files in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        parity_plot(pred, ref, folder / "parity.png"),
        histogram_plot(pred, ref, folder / "histograms.png"),
        spectrum_plot(result, folder / "residual_spectrum.png"),
    ]


def _save(fig, path: Path) -> Path:
    from elfkit.io._files import atomic_output

    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png", bbox_inches="tight")
    _pyplot().close(fig)
    return Path(path)
