"""The report page: one self-contained HTML file per ELF, readable offline.

Sections: the structure (cell, grid, file names without the machine's folders); a 3D view
(plotly) with the unit cell, atoms coloured by element with their periodic images at faces,
edges and corners, critical points with their values on hover, and the ELF isosurface
under a slider that starts at the networking value φ; the slices; the topology tables and
their warnings; with a reference, the comparison metrics and pictures. Pictures are
embedded as base64 PNG; the 3D data is float32 (vertices) and uint16 or int32 (triangles) in
plotly's binary JSON encoding; plotly.js itself is embedded gzip-compressed and unpacked
by the browser (DecompressionStream: Chrome/Edge 80+, Firefox 113+, Safari 16.4+).
"""

from __future__ import annotations

import base64
import gzip
import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from elfkit.analysis import summary
from elfkit.analysis.plots import atoms_with_images, cell_edges, element_colour, isosurface_mesh, mesh_shape
from elfkit.field import Field

MESH_BYTES = 1_200_000
"""Bytes of all the slider's isosurfaces together at most (float32 vertices, uint16 or int32
triangles; about 1.6 MB of page once base64-encoded); a rough field (noise) is meshed on a
coarser grid until it fits."""
SHOWN_POINTS = 400
"""Critical points shown and listed on the page at most (the most persistent); `elfkit topology --json` has all."""
SLIDER_ISOVALUES = np.round(np.arange(0.1, 0.91, 0.1), 2)
"""ELF isovalues of the 3D view's slider, besides the networking value φ."""
POINT_COLOURS = {"maximum": "#e7298a", "saddle": "#ff7f0e", "ring": "#1b9e77", "minimum": "#7570b3"}


@dataclass
class Picture:
    """A PNG to embed, its heading and its caption (plain text)."""

    path: Path
    heading: str
    caption: str


def page_name(source: Path | str) -> str:
    """HTML file name for an input file: its name up to the first dot ('h.elf.npz' -> 'h.html')."""
    stem = Path(source).name.split(".")[0]
    return f"{stem or 'report'}.html"


def isovalues_with(phi: float | None) -> tuple[np.ndarray, int]:
    """The slider's isovalues (SLIDER_ISOVALUES and φ when defined) and the index it starts at: φ, else 0.50."""
    if phi is None:
        return SLIDER_ISOVALUES, int(np.argmin(np.abs(SLIDER_ISOVALUES - 0.5)))
    values = np.sort(np.append(SLIDER_ISOVALUES[np.abs(SLIDER_ISOVALUES - phi) > 0.005], round(phi, 3)))
    return values, int(np.argmin(np.abs(values - round(phi, 3))))


def figure_3d(field: Field, topology: dict):
    """The plotly figure of the 3D view (see the module docstring) and the grid its isosurfaces were meshed on."""
    import plotly.graph_objects as go

    phi = topology["networking_value"]
    isovalues, start = isovalues_with(phi)
    meshes, shape = slider_meshes(field, isovalues)
    traces = []
    for i, (t, (verts, faces)) in enumerate(zip(isovalues, meshes)):
        name = f"ELF = {t:.3f} (φ, networking value)" if phi is not None and i == start else f"ELF = {t:.2f}"
        traces.append(go.Mesh3d(x=verts[:, 0], y=verts[:, 1], z=verts[:, 2], i=faces[:, 0], j=faces[:, 1], k=faces[:, 2],
                                color="gold", opacity=0.5, name=f"isosurface {name}", showlegend=True,
                                visible=i == start, hoverinfo="name"))
    traces.append(_cell_trace(go, field.atoms.cell.array))
    traces += _atom_traces(go, field.atoms)
    traces += _critical_point_traces(go, topology["critical_points"])
    steps = [{"method": "restyle", "label": f"{t:.3f}" if phi is not None and i == start else f"{t:.2f}",
              "args": [{"visible": [j == i for j in range(len(isovalues))]}, list(range(len(isovalues)))]}
             for i, t in enumerate(isovalues)]
    axis = {"showbackground": False}
    fig = go.Figure(traces)
    fig.update_layout(
        template="none", height=640, margin={"l": 0, "r": 0, "t": 10, "b": 0},
        legend={"title": {"text": "click to show or hide"}, "itemsizing": "constant", "x": 1, "xanchor": "right", "y": 0.92},
        sliders=[{"active": start, "currentvalue": {"prefix": "ELF isovalue: "}, "steps": steps, "pad": {"t": 10}}],
        scene={"aspectmode": "data", "xaxis": {**axis, "title": {"text": "x (Å)"}}, "yaxis": {**axis, "title": {"text": "y (Å)"}},
               "zaxis": {**axis, "title": {"text": "z (Å)"}}},
    )
    return fig, shape


def slider_meshes(field: Field, isovalues) -> tuple[list, tuple[int, int, int]]:
    """Isosurface meshes (Å, float32) at `isovalues` and the grid they were meshed on: the
    first of `mesh_shape`, coarsened by 1.1 at a time, whose meshes take at most MESH_BYTES."""
    coarsening = 1.0
    while True:
        shape = mesh_shape(field, coarsening)
        meshes = [isosurface_mesh(field, float(t), shape) for t in isovalues]
        if sum(v.nbytes + f.nbytes for v, f in meshes) <= MESH_BYTES or min(shape) <= 4:
            return meshes, shape
        coarsening *= 1.1


def _cell_trace(go, cell: np.ndarray):
    """The unit cell's 12 edges as one line trace (segments separated by gaps)."""
    edges = cell_edges(cell)
    points = np.concatenate([np.vstack([e, [[np.nan] * 3]]) for e in edges]).astype(np.float32)
    return go.Scatter3d(x=points[:, 0], y=points[:, 1], z=points[:, 2], mode="lines", name="unit cell",
                        line={"color": "black", "width": 3}, hoverinfo="skip", connectgaps=False)


def _atom_traces(go, atoms) -> list:
    """One trace per element (one legend entry each), periodic images included; the hover text
    gives the atom number that `elfkit report --through-atom` takes."""
    symbols, points, image, number = atoms_with_images(atoms)
    frac = points @ np.linalg.inv(atoms.cell.array)
    traces = []
    for symbol in sorted(set(symbols)):
        at = np.array([s == symbol for s in symbols])
        text = [f"{symbol}, atom {n}{' (periodic image)' if im else ''}<br>fractional ({f[0]:.3f}, {f[1]:.3f}, {f[2]:.3f})"
                for f, im, n in zip(frac[at], image[at], number[at])]
        xyz = points[at].astype(np.float32)
        traces.append(go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="markers", name=symbol, text=text,
                                   hoverinfo="text", marker={"size": 7, "color": element_colour(symbol),
                                                              "line": {"color": "black", "width": 1}}))
    return traces


def most_persistent(points: list[dict]) -> list[dict]:
    """The SHOWN_POINTS critical points of largest persistence (the essential ones first)."""
    return sorted(points, key=lambda p: -np.inf if p["persistence"] is None else -p["persistence"])[:SHOWN_POINTS]


def _critical_point_traces(go, points: list[dict]) -> list:
    """One trace per critical-point type (the most persistent), values on hover; maxima shown, the others in the legend."""
    traces = []
    shown = most_persistent(points)
    for kind, colour in POINT_COLOURS.items():
        chosen = [p for p in shown if p["type"] == kind]
        xyz = np.array([p["cart"] for p in chosen], dtype=np.float32).reshape(-1, 3)
        text = [f"{kind}: ELF {p['value']:.3f}, persistence {summary.persistence_words(p['persistence'])}<br>"
                f"fractional ({p['frac'][0]:.3f}, {p['frac'][1]:.3f}, {p['frac'][2]:.3f})" for p in chosen]
        traces.append(go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="markers", name=f"{kind} points ({len(chosen)})",
                                   text=text, hoverinfo="text", marker={"size": 4, "color": colour, "symbol": "diamond"},
                                   visible=True if kind == "maximum" else "legendonly"))
    return traces


def write_page(path: Path, field: Field, topology: dict, source: str, pictures: list[Picture],
               comparison: dict | None = None, comparison_pictures: list[Picture] = (), reference: str | None = None) -> Path:
    """Write the report page to `path` (atomically). `source` and `reference` are the file
    names shown (pass names, not full paths); `pictures` (isosurface, slices) are embedded
    after the 3D view, `comparison_pictures` beside the metrics of `comparison`."""
    from elfkit.io._files import atomic_text_output

    formula = field.atoms.get_chemical_formula(mode="hill")
    title = f"ELF of {formula} ({source}): elfkit report"
    figure, mesh_grid = figure_3d(field, topology)
    body = [
        f"<h1>{_e(title)}</h1>",
        _structure_table(field, source, reference),
        _warnings(summary.topology_warnings(topology)),
        _view_section(topology, field.values.shape, mesh_grid),
        "<h2>Pictures</h2>",
        *[_picture(p) for p in pictures],
        _topology_section(topology),
    ]
    if comparison is not None:
        body.append(_comparison_section(comparison, list(comparison_pictures), reference))
    with atomic_text_output(path) as handle:
        handle.write(_document(title, "\n".join(body), figure.to_json()))
    return Path(path)


def _e(text) -> str:
    return html.escape(str(text))


def _table(headers: list[str] | None, rows: list[list], table_id: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers or [])
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    thead = f"<thead><tr>{head}</tr></thead>" if head else ""
    identity = f' id="{table_id}"' if table_id else ""
    return f"<table{identity}>{thead}<tbody>{body}</tbody></table>"


def _structure_table(field: Field, source: str, reference: str | None) -> str:
    a, b, c, alpha, beta, gamma = field.atoms.cell.cellpar()
    shape = field.values.shape
    spacing = np.linalg.norm(field.atoms.cell.array, axis=1) / np.array(shape)
    rows = [
        ["ELF file", source],
        *([["reference ELF", reference]] if reference else []),
        ["atoms", f"{len(field.atoms)} ({field.atoms.get_chemical_formula(mode='hill')})"],
        ["cell lengths a, b, c", f"{a:.4f}, {b:.4f}, {c:.4f} Å"],
        ["cell angles α, β, γ", f"{alpha:.2f}°, {beta:.2f}°, {gamma:.2f}°"],
        ["cell volume", f"{field.atoms.get_volume():.3f} Å³"],
        ["grid", f"{shape[0]} × {shape[1]} × {shape[2]} points, spacing {spacing[0]:.3f}, {spacing[1]:.3f}, {spacing[2]:.3f} Å"],
        ["ELF range", f"{field.values.min():.3f} to {field.values.max():.3f}"],
    ]
    return "<h2>Structure</h2>" + _table(None, rows, "structure")


def _warnings(warnings: list[str]) -> str:
    if not warnings:
        return ""
    items = "".join(f"<li>{_e(w)}</li>" for w in warnings)
    return f'<div class="warnings" id="warnings"><strong>Warnings</strong><ul>{items}</ul></div>'


def _view_section(topology: dict, shape, mesh_grid) -> str:
    phi = topology["networking_value"]
    start = (f"The isovalue slider starts at the networking value φ = {phi:.3f}, the highest ELF at which one "
             "domain percolates through the crystal in 3D; move it to see the domains split."
             if phi is not None else "No domain percolates in 3D above the field minimum (φ undefined); the slider starts at ELF 0.50.")
    return (
        "<h2>3D view</h2>"
        f"<p>{_e(start)} Unit cell in black; atoms coloured by element (Jmol/CPK colours, as in VESTA), with their "
        "periodic images on the cell's faces, edges and corners; ELF maxima as magenta diamonds (other critical points in the "
        f"legend). Axes in Å, equally scaled. Isosurfaces by marching cubes on {_grid_words(shape, mesh_grid)}. "
        "Drag to rotate, scroll to zoom, hover for values and atom numbers (for --through-atom).</p>"
        '<div id="view3d" class="view">Loading the 3D view…</div>'
    )


def _grid_words(shape, mesh_grid) -> str:
    own = " × ".join(str(n) for n in shape)
    if tuple(mesh_grid) == tuple(shape):
        return f"the ELF's own {own} grid"
    return f"the ELF resampled from {own} to {' × '.join(str(n) for n in mesh_grid)} points (to keep the page small)"


def _picture(picture: Picture) -> str:
    data = base64.b64encode(Path(picture.path).read_bytes()).decode("ascii")
    return (f'<figure><figcaption><strong>{_e(picture.heading)}</strong> {_e(picture.caption)}</figcaption>'
            f'<img alt="{_e(picture.heading)}" src="data:image/png;base64,{data}"></figure>')


def _topology_section(topology: dict) -> str:
    rows = [
        ["networking value φ", summary.networking_words(topology["networking_value"])],
        *([["networking value, hydrogen domains only", summary.elf_value(topology["networking_value_hydrogen"])]]
          if topology["networking_value_hydrogen"] is not None else []),
        ["molecularity index", summary.elf_value(topology["molecularity_index"], "undefined (no domain holds two hydrogen nuclei)")],
        ["hydrogen fraction", f"{topology['hydrogen_fraction']:.3f} of the atoms"],
        ["critical points kept", f"{summary.counts_words(topology['counts'])} (persistence ≥ {topology['persistence_threshold']:g})"],
        ["Morse sum (maxima − saddles + rings − minima)", str(topology["morse_sum"])],
    ]
    dimension_rows = [[f"{r['isovalue']:.2f}", summary.dimension_words(r["dimension"]), r["domains"],
                       f"{100 * r['largest_fraction']:.1f} %"] for r in topology["dimensionality_vs_isovalue"]]
    parts = [
        "<h2>Topology</h2>",
        _table(["measure", "value"], rows, "topology"),
        "<h3>Dimensionality of the largest ELF domain versus isovalue</h3>",
        "<p>A domain is a connected region where the ELF is at least the isovalue, followed across the periodic "
        "boundaries.</p>",
        _table(["ELF isovalue", "largest domain", "domains", "share of the cell"], dimension_rows, "dimensionality"),
        "<h3>Critical points</h3>",
        "<p>From discrete Morse theory; persistence is the ELF difference to the point's partner (pairs below the "
        "threshold are cancelled); refined: located below the grid spacing by spline interpolation.</p>",
        _points_table(topology["critical_points"], "critical-points"),
    ]
    if topology["low_density_critical_points"]:
        parts += [f"<h3>Critical points where the density is below {topology['low_density_limit']:g} electrons/Å³ "
                  "(listed apart)</h3>", _points_table(topology["low_density_critical_points"], "low-density-points")]
    return "\n".join(parts)


def _points_table(points: list[dict], table_id: str) -> str:
    order = {kind: i for i, kind in enumerate(POINT_COLOURS)}
    ranked = sorted(most_persistent(points), key=lambda p: (order[p["type"]], -p["value"]))
    note = (f"<p>The {SHOWN_POINTS} most persistent of {len(points)} points; <code>elfkit topology --json</code> lists all.</p>"
            if len(points) > SHOWN_POINTS else "")
    rows = [[p["type"], "(" + ", ".join(f"{x:.3f}" for x in p["frac"]) + ")", "(" + ", ".join(f"{x:.3f}" for x in p["cart"]) + ")",
             f"{p['value']:.3f}", summary.persistence_words(p["persistence"]), "yes" if p["refined"] else "no (grid point)"]
            for p in ranked]
    return (note + '<div class="scroll">' + _table(["type", "fractional position", "position (Å)", "ELF", "persistence", "refined"],
                                            rows, table_id) + "</div>")


def _comparison_section(comparison: dict, pictures: list[Picture], reference: str | None) -> str:
    images = "".join(_picture(p) for p in pictures)
    return (f"<h2>Comparison with the reference {_e(reference or '')}</h2>"
            "<p>ELF errors are dimensionless (ELF units); regions as in <code>elfkit compare</code>.</p>"
            + _table(["measure", "value"], [list(r) for r in summary.comparison_rows(comparison)], "metrics")
            + f'<div class="pictures">{images}</div>')


def _plotly_bundle() -> str:
    """plotly.min.js, gzip-compressed, base64."""
    from plotly.offline import get_plotlyjs

    return base64.b64encode(gzip.compress(get_plotlyjs().encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 1em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
th { background: #f3f3f3; }
.scroll { max-height: 24em; overflow-y: auto; display: inline-block; }
.warnings { background: #fff4e0; border: 1px solid #e0a040; padding: 0.5em 1em; margin: 1em 0; }
.view { height: 640px; border: 1px solid #ddd; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; }
figcaption { font-size: 0.85em; max-width: 40em; }
"""

_LOADER = """
(async () => {
  const view = document.getElementById("view3d");
  try {
    const bytes = Uint8Array.from(atob(document.getElementById("plotly-gz").textContent.trim()), c => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    (0, eval)(await new Response(stream).text());
    const figure = JSON.parse(document.getElementById("figure").textContent);
    view.textContent = "";
    await Plotly.newPlot(view, figure.data, figure.layout, {responsive: true, displaylogo: false});
    document.body.dataset.view3d = "ready";
    document.body.dataset.view3dMilliseconds = Math.round(performance.now());
  } catch (error) {
    view.textContent = "The 3D view needs a browser that unpacks gzip streams (Chrome or Edge 80+, Firefox 113+, Safari 16.4+): " + error;
  }
})();
"""


def _document(title: str, body: str, figure_json: str) -> str:
    safe_json = figure_json.replace("</", "<\\/")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style></head><body>\n{body}\n"
        "<p><small>Made by elfkit. Grid point (i, j, k) is at fractional (i/N1, j/N2, k/N3); lengths in Å; the ELF is "
        "dimensionless.</small></p>\n"
        f'<script type="application/json" id="figure">{safe_json}</script>\n'
        f'<script type="application/octet-stream" id="plotly-gz">{_plotly_bundle()}</script>\n'
        f"<script>{_LOADER}</script>\n</body></html>\n"
    )
