"""Local Dask workers: the environment they run in (elfkit.parallel.WORKER_ENVIRONMENT)."""

import os


def _environment(names: list[str]) -> dict:
    return {name: os.environ.get(name) for name in names}


def test_local_workers_run_one_threaded_without_a_fixed_malloc_trim_threshold(monkeypatch):
    from dask.distributed import Client

    from elfkit.parallel import local_cluster

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # as a Dask cluster with defaults leaves it
    names = ["MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"]
    with local_cluster(1) as cluster, Client(cluster) as client:
        seen = client.submit(_environment, names).result()
    assert seen == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"
