"""VASP volumetric files: CHGCAR/CHG/PARCHG (density times cell volume) and ELFCAR (raw ELF).

Layout (VASP wiki, CHGCAR and ELFCAR pages): a POSCAR-format structure, a blank line, the
grid sizes NGX NGY NGZ, then NGX*NGY*NGZ values with x fastest and z slowest, read
format-free. CHGCAR may follow with augmentation occupancies. For ISPIN=2 a second block
follows, introduced by the same grid-size line: the magnetisation (up - down) density for
CHGCAR, the spin-down ELF for ELFCAR (whose first block is then the spin-up ELF).
Non-collinear CHGCAR files carry four blocks; elfkit keeps the total density only.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from pathlib import Path

import numpy as np

from elfkit.errors import FieldFormatError
from elfkit.field import Field
from elfkit.io._files import atomic_text_output, base_name, read_text, write_values

def vasp_quantity(path: str | Path) -> str:
    """'elf' for ELFCAR-named files, 'density' for CHGCAR/CHG/PARCHG-named files."""
    return "elf" if "ELFCAR" in base_name(path).upper() else "density"


def read_vasp_volumetric(path: str | Path) -> Field:
    """Read a VASP CHGCAR-like or ELFCAR file; densities are returned in electrons/Å³."""
    from ase.io.vasp import read_vasp_configuration

    text = read_text(path)
    handle = io.StringIO(text)
    try:
        atoms = read_vasp_configuration(handle)
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise FieldFormatError(f"{path}: malformed VASP structure header ({reason})") from None
    blocks = _read_blocks(text, handle.tell(), path)
    quantity = vasp_quantity(path)
    if quantity == "density":
        blocks = [block / atoms.get_volume() for block in blocks]
    spin = blocks[1] if len(blocks) == 2 else None
    return Field(atoms, blocks[0], quantity, spin_values=spin, metadata={"source_format": "vasp"})


def _read_blocks(text: str, start: int, path) -> list[np.ndarray]:
    header = re.compile(r"^[ \t]*(\d+)[ \t]+(\d+)[ \t]+(\d+)[ \t]*\r?$", re.MULTILINE)
    first = header.search(text, start)
    if first is None:
        raise FieldFormatError(f"{path}: no grid-size line (NGX NGY NGZ) after the structure")
    shape = tuple(int(n) for n in first.groups())
    if min(shape) < 1:
        raise FieldFormatError(f"{path}: invalid grid size {shape}")
    size_line = re.compile(r"^[ \t]*" + r"[ \t]+".join(str(n) for n in shape) + r"[ \t]*\r?$", re.MULTILINE)
    blocks, match = [], first
    while match is not None:
        blocks.append(_parse_block(text, match.end(), shape, path))
        match = size_line.search(text, match.end())
    return blocks


def _parse_block(text: str, start: int, shape, path) -> np.ndarray:
    count = math.prod(shape)
    data_start = text.find("\n", start) + 1
    first_line = text[data_start : text.find("\n", data_start)]
    per_line = max(1, len(first_line.split()))
    lines = text[data_start:].split("\n", math.ceil(count / per_line))[: math.ceil(count / per_line)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        flat = np.fromstring(" ".join(lines), dtype=float, sep=" ")
    if flat.size != count:
        raise FieldFormatError(
            f"{path}: the data block is truncated or malformed ({flat.size} values where {count} belong)"
        )
    return np.ascontiguousarray(flat.reshape(shape[::-1]).T)


def write_vasp_volumetric(path: str | Path, field: Field) -> None:
    """Write `field` as a VASP file: ELF raw (ELFCAR), densities as rho*V (CHGCAR)."""
    from ase.io.vasp import write_vasp

    scale = field.atoms.get_volume() if vasp_quantity(path) == "density" else 1.0
    blocks = [field.values] if field.spin_values is None else [field.values, field.spin_values]
    with atomic_text_output(path) as handle:
        write_vasp(handle, field.atoms, direct=True, vasp5=True, sort=False)
        for block in blocks:
            handle.write("\n" + " ".join(f"{n:5d}" for n in block.shape) + "\n")
            write_values(handle, np.asarray(block, dtype=float).T.ravel() * scale, 5, "%18.11E")
