"""Memory a command will hold, estimated from its real per-point cost before it allocates.

Costs were measured with tracemalloc on grids of 64^3 to 128^3 points (peak bytes):

| work       | per grid point | fixed              | what dominates                                   |
|------------|----------------|--------------------|--------------------------------------------------|
| `sad`      | 56 B           | 2 structure-factor blocks + 16 B x atoms x (N1+N2+N3) | complex rho(G), S(G) and |G| on the real-FFT half grid, the float64 result |
| `topology` | 520 B          | 400 MiB            | critical-point search, domains at every isovalue |
| `compare`  | 170 B          | 64 MiB             | residual spectra and autocorrelation (complex FFTs) |

The budget is the memory the system reports available (MemAvailable), capped by the
environment variable ELFKIT_MEMORY_GB when it is set (e.g. on a machine shared with others).
"""

from __future__ import annotations

import math
import os

from elfkit.errors import GridError

MEMORY_ENV = "ELFKIT_MEMORY_GB"
_MIB = 2**20
BYTES_PER_POINT = {"sad": 56, "topology": 520, "compare": 170}
FIXED_BYTES = {"sad": 128 * _MIB, "topology": 400 * _MIB, "compare": 64 * _MIB}


def available_memory_bytes() -> int:
    """Bytes this process may use: MemAvailable (Linux), else physical memory, capped by
    $ELFKIT_MEMORY_GB (GiB) when set."""
    available = _meminfo_available()
    cap = os.environ.get(MEMORY_ENV)
    if cap:
        try:
            available = min(available, int(float(cap) * 2**30))
        except ValueError:
            raise GridError(f"{MEMORY_ENV}={cap!r} is not a number of GiB") from None
    return available


def _meminfo_available() -> int:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        return 2**62


def estimated_bytes(work: str, shape, natoms: int = 0) -> int:
    """Peak bytes of `work` ('sad', 'topology' or 'compare') on a grid of `shape` with `natoms` atoms."""
    points = math.prod(int(n) for n in shape)
    extra = 16 * natoms * sum(int(n) for n in shape) if work == "sad" else 0
    return BYTES_PER_POINT[work] * points + FIXED_BYTES[work] + extra


def check_memory(work: str, shape, source: str, natoms: int = 0, needed: int | None = None) -> None:
    """GridError naming `source` when `work` on a grid of `shape` would need more memory than
    `available_memory_bytes()` (`needed` bytes when given, else `estimated_bytes`); call it
    before allocating anything large."""
    needed = estimated_bytes(work, shape, natoms) if needed is None else needed
    available = available_memory_bytes()
    if needed > available:
        grid = "x".join(str(int(n)) for n in shape)
        raise GridError(
            f"{source}: the {work} on a {grid} grid is too large for memory: it needs about "
            f"{needed / 2**30:.1f} GiB, {available / 2**30:.1f} GiB are available "
            f"(use a coarser grid; {MEMORY_ENV} caps the budget)"
        )
