"""Pictures of ELF fields: parity and histogram plots, residual spectra, planar slices with
atoms, isosurfaces (PNG), and a self-contained interactive HTML page per structure."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from elfkit.field import Field

ISOVALUES = np.round(np.arange(0.1, 0.96, 0.05), 2)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def parity_plot(pred: Field, ref: Field, path: Path) -> Path:
    """Hexbin of predicted against reference ELF."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    hb = ax.hexbin(ref.values.ravel(), pred.values.ravel(), gridsize=60, bins="log", extent=(0, 1, 0, 1), cmap="viridis")
    ax.plot([0, 1], [0, 1], "w--", lw=0.8)
    ax.set(xlabel="reference ELF", ylabel="predicted ELF", xlim=(0, 1), ylim=(0, 1))
    fig.colorbar(hb, label="grid points (log)")
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
    """Radially averaged residual power versus |k|, with the 2π/d_HH line."""
    plt = _pyplot()
    spectrum = result["power_spectrum"]
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.semilogy(spectrum["k_per_angstrom"], np.maximum(spectrum["mean_power"], 1e-30), "o-", ms=3)
    ax.axvline(2 * np.pi / result["nearest_neighbour_hh_angstrom"], color="k", ls="--", lw=0.8, label="2π / d(H-H)")
    ax.set(xlabel="|k| (1/Å)", ylabel="residual power per mode")
    ax.legend()
    return _save(fig, path)


def slice_plot(field: Field, path: Path, axis: int = 2, fraction: float = 0.0, slab: float = 0.6) -> Path:
    """ELF on the lattice plane at `fraction` along `axis`, with atoms within `slab` Å of it."""
    plt = _pyplot()
    n = field.values.shape[axis]
    index = int(round(fraction * n)) % n
    plane = np.take(field.values, index, axis=axis)
    grid = field.grid
    coords = np.take(grid.cart_coords(), index, axis=axis)
    others = [a for a in range(3) if a != axis]
    u, v = _plane_axes(grid.cell, others)
    x, y = coords @ u, coords @ v
    fig, ax = plt.subplots(figsize=(5, 4.2))
    mesh = ax.pcolormesh(x, y, plane, shading="gouraud", cmap="magma", vmin=0, vmax=1)
    frac = field.atoms.get_scaled_positions(wrap=True)
    height = np.linalg.norm(grid.cell[axis]) * np.abs(((frac[:, axis] - index / n) + 0.5) % 1.0 - 0.5)
    near = height < slab
    cart = frac[near] @ grid.cell
    ax.scatter(cart @ u, cart @ v, c="cyan", s=30, edgecolors="k", label="atoms")
    ax.set(aspect="equal", xlabel="Å", ylabel="Å", title=f"ELF, plane {'abc'[axis]} = {index / n:.3f}")
    fig.colorbar(mesh, label="ELF")
    return _save(fig, path)


def _plane_axes(cell: np.ndarray, others: list[int]) -> tuple[np.ndarray, np.ndarray]:
    u = cell[others[0]] / np.linalg.norm(cell[others[0]])
    v = cell[others[1]] - (cell[others[1]] @ u) * u
    return u, v / np.linalg.norm(v)


def isosurface_mesh(field: Field, isovalue: float, step: int = 1):
    """Triangles (vertices in Å, faces) of the periodic ELF isosurface at `isovalue`."""
    from skimage.measure import marching_cubes

    values = np.pad(field.values, [(0, 1)] * 3, mode="wrap")
    if not values.min() < isovalue < values.max():
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=int)
    verts, faces, _, _ = marching_cubes(values, isovalue, step_size=step)
    return (verts / np.array(field.values.shape)) @ field.atoms.cell.array, faces


def isosurface_png(field: Field, isovalue: float, path: Path) -> Path:
    """A static 3D view of one ELF isosurface with the atoms."""
    plt = _pyplot()
    verts, faces = isosurface_mesh(field, isovalue, step=2)
    fig = plt.figure(figsize=(5, 5))
    ax = fig.add_subplot(projection="3d")
    if len(faces):
        ax.plot_trisurf(verts[:, 0], verts[:, 1], verts[:, 2], triangles=faces, color="gold", alpha=0.6, lw=0)
    pos = field.atoms.positions
    ax.scatter(pos[:, 0], pos[:, 1], pos[:, 2], c="royalblue", s=40, depthshade=False)
    ax.set(title=f"ELF = {isovalue:.2f}", xlabel="x (Å)", ylabel="y (Å)", zlabel="z (Å)")
    return _save(fig, path)


def screen_plot(rows: list[dict], path: Path) -> Path:
    """Template scores of a screen as a ranked bar chart."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(rows) + 1.2))
    labels = [f"{r['formula']} ({Path(r['structure']).name})" for r in rows]
    ax.barh(labels[::-1], [r["template_score"] for r in rows][::-1], color="teal")
    ax.set(xlabel="template score S")
    return _save(fig, path)


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
        fig.savefig(tmp, dpi=120, format="png")
    _pyplot().close(fig)
    return Path(path)


def interactive_html(field: Field, topology: dict, path: Path) -> Path:
    """A self-contained HTML page: isosurface with an isovalue slider, atoms, critical points,
    and the isosurface at the networking value (the percolating network)."""
    import plotly.graph_objects as go

    traces, steps = [], []
    for isovalue in ISOVALUES:
        verts, faces = isosurface_mesh(field, float(isovalue), step=2)
        traces.append(_mesh(go, verts, faces, f"ELF = {isovalue:.2f}", "gold", visible=bool(isovalue == 0.5)))
    phi = topology.get("networking_value")
    if phi is not None:
        verts, faces = isosurface_mesh(field, phi, step=2)
        traces.append(_mesh(go, verts, faces, f"network (φ = {phi:.3f})", "crimson", visible="legendonly"))
    pos = field.atoms.positions
    traces.append(go.Scatter3d(x=pos[:, 0], y=pos[:, 1], z=pos[:, 2], mode="markers", name="atoms",
                               text=field.atoms.get_chemical_symbols(), marker={"size": 6, "color": "royalblue"}))
    colours = {"maximum": "red", "saddle": "orange", "ring": "green", "minimum": "purple"}
    for kind, colour in colours.items():
        cps = np.array([p["cart"] for p in topology.get("critical_points", []) if p["type"] == kind]).reshape(-1, 3)
        traces.append(go.Scatter3d(x=cps[:, 0], y=cps[:, 1], z=cps[:, 2], mode="markers", name=f"{kind} points",
                                   marker={"size": 3, "color": colour}, visible="legendonly"))
    surfaces = list(range(len(ISOVALUES)))
    for i, isovalue in enumerate(ISOVALUES):
        steps.append({"method": "restyle", "label": f"{isovalue:.2f}", "args": [{"visible": [j == i for j in surfaces]}, surfaces]})
    fig = go.Figure(traces)
    fig.update_layout(
        title=f"{field.atoms.get_chemical_formula()}: ELF isosurface (slider), atoms, critical points, network",
        sliders=[{"active": int(np.argmin(np.abs(ISOVALUES - 0.5))), "currentvalue": {"prefix": "ELF isovalue: "}, "steps": steps}],
        scene={"aspectmode": "data"},
    )
    from elfkit.io._files import atomic_text_output

    with atomic_text_output(path) as handle:
        handle.write(fig.to_html(include_plotlyjs=True, full_html=True))
    return Path(path)


def _mesh(go, verts, faces, name, colour, visible):
    return go.Mesh3d(x=verts[:, 0], y=verts[:, 1], z=verts[:, 2], i=faces[:, 0], j=faces[:, 1], k=faces[:, 2],
                     color=colour, opacity=0.55, name=name, showlegend=True, visible=visible)
