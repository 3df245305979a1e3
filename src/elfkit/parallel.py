"""Map a function over items in this process or on a local Dask cluster of single-threaded
worker processes (one per core by default), as `elfkit screen` and `elfkit topology` do."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from elfkit.errors import ElfkitError

WORKER_ENVIRONMENT = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}
"""Environment of local Dask worker processes: one-threaded numerical libraries, as Dask's
default, but without its MALLOC_TRIM_THRESHOLD_=65536. A fixed trim threshold turns off glibc's
adaptive mmap threshold, so every array over 128 KiB is mapped and unmapped anew: with it one
sample of `elfkit evaluate` (three hydrogen models) took 24-28 s in a Dask worker against 10.7 s
in a plain one-threaded process (and 24 s there with the variable set)."""


def local_cluster(workers: int):
    """A Dask LocalCluster of `workers` one-threaded worker processes (WORKER_ENVIRONMENT).

    A Dask nanny writes its pre-spawn environment into this process's os.environ, so after any
    cluster started with Dask's defaults MALLOC_TRIM_THRESHOLD_ is set here; it is removed while
    the workers start, so they never inherit it, and restored afterwards."""
    import dask
    from dask.distributed import LocalCluster

    trim = os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENVIRONMENT}):
            return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    finally:
        if trim is not None:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = trim


def check_workers(workers: int | None) -> None:
    """ElfkitError unless `workers` is None (the default: one per core) or at least 1."""
    if workers is not None and workers < 1:
        raise ElfkitError(f"--workers must be at least 1, got {workers}")


def worker_count(workers: int | None, items: int) -> int:
    """Worker processes for `items` items: `workers` (default one per core), at most one per item."""
    check_workers(workers)
    return max(1, min(workers or os.cpu_count() or 1, items))


def parallel_map(
    function: Callable[[Any], Any],
    items: Sequence,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> list:
    """[function(item) for item in items], in the order of `items`.

    With more than one item and more than one worker (`worker_count`) the calls run on a local
    Dask cluster of that many single-threaded worker processes (`function` and the items must
    then pickle: a module-level function or a functools.partial of one), else in this process.
    on_progress(done, total) is called after every finished item; the first error raised by a
    call is raised here."""
    items = list(items)
    count = worker_count(workers, len(items))
    if count == 1:
        results = []
        for item in items:
            results.append(function(item))
            if on_progress:
                on_progress(len(results), len(items))
        return results
    from dask.distributed import Client, as_completed

    results = [None] * len(items)
    with local_cluster(count) as cluster, Client(cluster) as client:
        futures = [client.submit(_single_threaded, function, item, pure=False) for item in items]
        position = {future.key: number for number, future in enumerate(futures)}
        for done, future in enumerate(as_completed(futures), 1):
            results[position[future.key]] = future.result()
            if on_progress:
                on_progress(done, len(items))
    return results


def _single_threaded(function: Callable[[Any], Any], item):
    """function(item) in a Dask worker process, with torch on one thread (the nanny already
    sets OMP, MKL and OpenBLAS to one, WORKER_ENVIRONMENT)."""
    import torch

    torch.set_num_threads(1)
    return function(item)
