"""XCrySDen XSF files with a periodic 3D datagrid.

Following the XSF specification, a periodic grid is written as a "general grid" that
repeats the boundary point: N+1 points per axis spanning the full lattice vectors.
elfkit drops the repeated points on reading. Files written by ASE (N points, span vectors
a_i*(N_i+1)/N_i) are recognised too. Values are taken as they are (XSF has no unit
convention for data); lengths are in Å.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from ase import Atoms

from elfkit.errors import FieldFormatError
from elfkit.field import Field
from elfkit.io._files import atomic_text_output, read_text, tagged_quantity, write_values

_GRID_START = re.compile(r"^\s*(BEGIN_)?DATAGRID_3D\S*\s*$", re.MULTILINE)


def read_xsf_field(path: str | Path, quantity: str = "scalar") -> Field:
    """Read the first 3D datagrid of an XSF file with its crystal structure."""
    text = read_text(path)
    try:
        atoms = _parse_crystal(text)
        shape, origin, span, values = _parse_datagrid(text)
    except (ValueError, IndexError) as exc:
        raise FieldFormatError(f"{path}: malformed XSF file ({exc})") from None
    except KeyError as exc:
        raise FieldFormatError(f"{path}: malformed XSF file (unknown element {exc.args[0]!r})") from None
    data = _periodic_values(values, shape, span, atoms.cell.array, path)
    atoms.positions -= origin
    return Field(atoms, data, tagged_quantity(text, quantity), metadata={"source_format": "xsf"})


def _parse_crystal(text: str) -> Atoms:
    lines = [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    keys = [words[0].upper() for words in lines]
    if "PRIMVEC" not in keys or "PRIMCOORD" not in keys:
        raise ValueError("no PRIMVEC/PRIMCOORD crystal structure")
    at = keys.index("PRIMVEC")
    cell = np.array([[float(x) for x in lines[at + 1 + i][:3]] for i in range(3)])
    at = keys.index("PRIMCOORD")
    natoms = int(lines[at + 1][0])
    rows = lines[at + 2 : at + 2 + natoms]
    symbols = [int(r[0]) if r[0].isdigit() else r[0] for r in rows]
    positions = [[float(x) for x in r[1:4]] for r in rows]
    if len(rows) != natoms:
        raise ValueError(f"PRIMCOORD announces {natoms} atoms but lists {len(rows)}")
    if all(isinstance(s, int) for s in symbols):
        return Atoms(numbers=symbols, positions=positions, cell=cell, pbc=True)
    return Atoms(symbols=[str(s) for s in symbols], positions=positions, cell=cell, pbc=True)


def _parse_datagrid(text: str):
    start = _GRID_START.search(text)
    if start is None:
        raise ValueError("no DATAGRID_3D block")
    end = text.find("END_DATAGRID_3D", start.end())
    if end < 0:
        raise ValueError("the DATAGRID_3D block has no END_DATAGRID_3D")
    numbers = text[start.end() : end].split()
    shape = tuple(int(n) for n in numbers[:3])
    origin = np.array(numbers[3:6], dtype=float)
    span = np.array(numbers[6:15], dtype=float).reshape(3, 3)
    values = np.array(numbers[15:], dtype=float)
    if values.size != np.prod(shape):
        raise ValueError(f"grid {shape} needs {np.prod(shape)} values, found {values.size}")
    return shape, origin, span, values.reshape(shape[::-1]).T


def _periodic_values(values: np.ndarray, shape, span, cell, path) -> np.ndarray:
    if np.allclose(span, cell, atol=1e-4):
        return np.ascontiguousarray(values[:-1, :-1, :-1])
    n = np.array(shape, dtype=float)[:, None]
    if np.allclose(span, cell * (n + 1) / n, atol=1e-4):
        return np.ascontiguousarray(values)
    raise FieldFormatError(f"{path}: the XSF datagrid does not span the unit cell; cannot treat it as periodic")


def write_xsf_field(path: str | Path, field: Field) -> None:
    """Write `field` as XSF: crystal, then the datagrid with the periodic boundary repeated."""
    atoms = field.atoms
    padded = np.pad(field.values, [(0, 1)] * 3, mode="wrap")
    with atomic_text_output(path) as handle:
        handle.write(f"# elfkit quantity={field.quantity}\nCRYSTAL\nPRIMVEC\n")
        np.savetxt(handle, atoms.cell.array, fmt="%16.10f")
        handle.write(f"PRIMCOORD\n{len(atoms)} 1\n")
        for z, pos in zip(atoms.numbers, atoms.positions):
            handle.write(f"{z:3d} {pos[0]:16.10f} {pos[1]:16.10f} {pos[2]:16.10f}\n")
        handle.write(f"BEGIN_BLOCK_DATAGRID_3D\n {field.quantity}\n BEGIN_DATAGRID_3D_{field.quantity}\n")
        handle.write(" {} {} {}\n 0.0 0.0 0.0\n".format(*padded.shape))
        np.savetxt(handle, atoms.cell.array, fmt="%16.10f")
        write_values(handle, padded.T.ravel(), per_line=6, fmt="%16.9e")
        handle.write(" END_DATAGRID_3D\nEND_BLOCK_DATAGRID_3D\n")
