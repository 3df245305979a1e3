"""Resumable, distributed dataset generation with Dask.

Work items run on Dask workers (a local cluster with one single-threaded worker process
per core by default, or any existing cluster given by its scheduler address, e.g. one
started on SLURM with dask-jobqueue). Each finished item is written at once, atomically;
a rerun skips finished items, so a killed run loses at most the items in flight, and long
items (hydrogen trajectories) checkpoint into their scratch folder, so even those lose only
their last few minutes. A failed item is logged with its reason (its scratch folder is kept
for diagnosis) and the run goes on; a later run retries it. After every finished item the items
are compacted into shards and the manifest is rebuilt, so the dataset on disk is always
complete and consistent. Items are submitted so that a partial run already spans the whole
spec: the least covered densities (pressures) first, and prototypes in step by CPU time, in
hash-shuffled order among equals (`run_order`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from elfkit.data.spec import load_spec, work_items
from elfkit.data.store import DatasetError, DatasetStore, data_root


@dataclass
class GenerationReport:
    """What one `generate` call did."""

    total: int
    skipped: int
    done: int
    failed: int
    folder: Path


def _scratch_path(scratch_root: str | None, dataset: str, key: str) -> Path:
    return Path(scratch_root or tempfile.gettempdir()) / f"elfkit-{dataset}-{key}"


def item_scratch(scratch_root: str | None, dataset: str, key: str) -> Path:
    """The scratch folder of one work item: always the same, so that a rerun resumes from
    the checkpoints a killed run left there (temporary folder when no root is given)."""
    folder = _scratch_path(scratch_root, dataset, key)
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve()


def run_item(item: dict, spec_json: str, scratch_root: str | None):
    """Compute one work item on a worker; returns (key, samples or None, error or None)."""
    from elfkit.data.crystals import label_crystal
    from elfkit.data.hydrogen import label_trajectory
    from elfkit.data.metals import label_structure
    from elfkit.data.spec import SPEC_ADAPTER

    spec = SPEC_ADAPTER.validate_json(spec_json)
    label = {"hydrogen-md": label_trajectory, "prototypes": label_structure, "relaxed-crystals": label_crystal}[spec.kind]
    scratch = item_scratch(scratch_root, spec.name, item["key"])
    try:
        samples = label(item, spec, scratch)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        return item["key"], None, f"{reason} | scratch kept in {scratch} | " + traceback.format_exc(limit=3).replace("\n", " ")
    shutil.rmtree(scratch, ignore_errors=True)
    return item["key"], samples, None


def generate(
    spec_path: str | Path,
    scheduler: str | None = None,
    workers: int | None = None,
    root: Path | None = None,
    scratch: str | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> GenerationReport:
    """Generate (or continue) the dataset a spec describes; returns a GenerationReport.

    on_progress(done, total, failed) is called after every finished item. Everything the
    user gives (spec, workers, scheduler, scratch) is checked before the dataset folder is
    touched; DatasetError names the first problem.
    """
    spec = load_spec(spec_path)
    if workers is not None and workers < 1:
        raise DatasetError(f"--workers must be at least 1, got {workers}")
    if scratch is not None:
        from elfkit.io import check_output_folder

        check_output_folder(scratch)
    items = work_items(spec)
    client = connect_scheduler(scheduler) if scheduler else None
    try:
        folder = (root or data_root()) / spec.name
        store = DatasetStore(folder)
        (folder / "spec.yaml").write_text(Path(spec_path).read_text())
        finished = store.done_items()
        pending = run_order(items, finished, spec, scratch)
        report = GenerationReport(len(items), len(items) - len(pending), 0, 0, folder)
        if on_progress:
            on_progress(report.skipped, report.total, 0)
        if pending:
            _run(pending, spec, store, client, workers, scratch, report, on_progress)
        _publish(store, spec)
    finally:
        if client is not None:
            client.close()
    return report


SCHEDULER_TIMEOUT_S = 10
"""How long `connect_scheduler` tries to reach a Dask scheduler (seconds)."""


def connect_scheduler(address: str):
    """A Dask Client of the scheduler at `address` (e.g. tcp://host:8786); DatasetError naming
    the address when it is malformed or no scheduler answers within SCHEDULER_TIMEOUT_S."""
    import logging

    from dask.distributed import Client

    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        _check_port_answers(address)
        return Client(address, timeout=f"{SCHEDULER_TIMEOUT_S}s")
    except ValueError as exc:
        raise DatasetError(f"--scheduler {address}: not a Dask scheduler address ({exc})") from None
    except (OSError, TimeoutError) as exc:
        raise DatasetError(f"--scheduler {address}: no scheduler answers ({' '.join(str(exc).split())})") from None
    finally:
        quiet.setLevel(level)


def _check_port_answers(address: str) -> None:
    """OSError unless something accepts a TCP connection at a tcp:// or tls:// `address` within
    SCHEDULER_TIMEOUT_S; ValueError when the address is malformed. Checked before a Dask Client
    is made, since a Client that fails to connect can fail in its own cleanup (an AssertionError
    seen under load) instead of raising its timeout."""
    import socket

    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    scheme, location = parse_address(address)
    if scheme in ("tcp", "tls"):
        socket.create_connection(parse_host_port(location), timeout=SCHEDULER_TIMEOUT_S).close()


STRATUM = {"hydrogen-md": "rs_bohr", "prototypes": "volume_fraction", "relaxed-crystals": "pressure_gpa"}
"""The item field whose values a partial run should cover evenly: density, compression, pressure."""


def run_order(items: list[dict], finished: set[str], spec, scratch_root: str | None) -> list[dict]:
    """The pending items (not in `finished`) in the order to run them: first those with
    checkpoints in their scratch folder (cut off by an earlier run, so partial work is
    finished before new work starts). Then, for trajectories, smaller cells before larger
    ones (a 128-atom trajectory costs about four 64-atom ones for fewer snapshots, so a
    partial run gets the most samples per CPU hour), and among equal sizes those whose
    stratum (STRATUM: e.g. the density of a trajectory) has the fewest finished items, so
    that a partial dataset covers the whole range early; ties in key (hash) order. For
    prototypes, so that every prototype gets about the same CPU time (`_prototype_cpu`):
    a partial run holds many small cells and some of every large one; the items of the
    spec's `first` block (if any) before all others, in that same order among themselves."""
    field = STRATUM[spec.kind]
    done_per_stratum = Counter(item[field] for item in items if item["key"] in finished)

    def started(item: dict) -> bool:
        folder = _scratch_path(scratch_root, spec.name, item["key"])
        return folder.is_dir() and any(folder.iterdir())

    pending = [item for item in items if item["key"] not in finished]
    if spec.kind == "prototypes":
        cpu = _prototype_cpu(items, finished, pending)
        later = (lambda item: not spec.first.holds(item)) if spec.first else (lambda item: False)
        return sorted(pending, key=lambda item: (not started(item), later(item), cpu[item["key"]], item["key"]))
    return sorted(
        pending,
        key=lambda item: (not started(item), item.get("natoms", 0), done_per_stratum[item[field]], item["key"]),
    )


def _prototype_cpu(items: list[dict], finished: set[str], pending: list[dict]) -> dict[str, int]:
    """For each pending prototype item, the CPU time (in atom-items, cost ~ atoms per cell)
    its prototype will have had once this item is done, running each prototype's items in
    key (hash) order: sorting by it runs the prototypes in step by CPU time."""
    spent = Counter()
    for item in items:
        if item["key"] in finished:
            spent[item["prototype"]] += item["natoms"]
    cpu = {}
    for item in sorted(pending, key=lambda item: item["key"]):
        spent[item["prototype"]] += item["natoms"]
        cpu[item["key"]] = spent[item["prototype"]]
    return cpu


def _publish(store: DatasetStore, spec) -> None:
    store.compact()
    store.write_manifest(
        _manifest_header(spec), fixed_split=getattr(spec, "split", None), stratify=getattr(spec, "split_stratify", None)
    )


def _run(pending, spec, store, client, workers, scratch, report, on_progress) -> None:
    from dask.distributed import Client, as_completed

    from elfkit.parallel import local_cluster

    cluster = None
    if client is None:
        cluster = local_cluster(workers or os.cpu_count() or 1)
        client = Client(cluster)
    try:
        spec_json = spec.model_dump_json()
        futures = [client.submit(run_item, item, spec_json, scratch, pure=False) for item in pending]
        for future in as_completed(futures):
            key, samples, error = future.result()
            if error is None:
                store.write_item(key, samples)
                _publish(store, spec)
                report.done += 1
            else:
                store.log_failure(key, error)
                report.failed += 1
            if on_progress:
                on_progress(report.skipped + report.done, report.total, report.failed)
    finally:
        if cluster is not None:
            client.close()
            cluster.close()


def _manifest_header(spec) -> dict:
    common = {"name", "description", "kind", "labels", "grid_spacing_angstrom"}
    return {
        "name": spec.name,
        "description": spec.description,
        "kind": spec.kind,
        "labels": spec.labels.model_dump(),
        "grid_spacing_angstrom": spec.grid_spacing_angstrom,
        "generator": spec.model_dump(exclude=common),
        "split_rule": "by group (trajectory or parent structure); sha256(group) -> test < 0.1 <= val < 0.2 <= train",
    }
