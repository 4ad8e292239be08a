"""The ``"dask"`` runner: batches as tasks on a dask.distributed cluster.

``job_config`` gives a ``Client`` (``{"client": client}``) or a scheduler address
(``{"address": "tcp://..."}``), e.g. of a dask-jobqueue cluster on SLURM; without either a
``LocalCluster`` of ``num_workers`` single-threaded worker processes is started for the job and
closed after it. Tasks carry specs; each worker reopens the sources once per job.
"""
from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from bioimage_py.jobs.local import Outcome
from bioimage_py.jobs.tasks import CopyTask, run_batch

__all__ = ["JOB_CONFIG_KEYS", "run_dask"]

JOB_CONFIG_KEYS = ("client", "address")


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as err:
        raise ImportError(
            "job_type='dask' requires dask.distributed, which is not installed; install it with: "
            'pip install "bioimage_py[dask]"'
        ) from err
    return distributed


@contextlib.contextmanager
def _client(job_config: dict[str, Any], num_workers: int) -> Iterator[Any]:
    distributed = _import_distributed()
    if job_config.get("client") is not None:
        yield job_config["client"]
    elif job_config.get("address") is not None:
        with distributed.Client(job_config["address"]) as client:
            yield client
    else:
        with distributed.LocalCluster(
            n_workers=num_workers, threads_per_worker=1, processes=True,
            dashboard_address=":0",  # any free port: never clash with a running cluster
        ) as cluster, distributed.Client(cluster) as client:
            yield client


def run_dask(
    task: CopyTask,
    batches: list[list[int]],
    num_workers: int,
    stop: threading.Event,
    job_config: dict[str, Any],
) -> Iterator[tuple[list[int], Outcome]]:
    """Run ``batches`` as Dask tasks; once ``stop`` is set, cancel those not finished."""
    distributed = _import_distributed()
    with _client(job_config, num_workers) as client:
        # Scatter the task once instead of embedding it in every batch's task.
        [task_future] = client.scatter([task], broadcast=True, hash=False)
        prefix = f"bioimage_py-copy-{uuid.uuid4().hex[:8]}"
        futures = {
            client.submit(run_batch, task_future, batch, key=f"{prefix}-{i}", pure=False): batch
            for i, batch in enumerate(batches)
        }
        try:
            for future in distributed.as_completed(futures):
                if future.status == "cancelled":
                    continue
                if future.status == "error":
                    yield futures[future], future.exception()
                else:
                    yield futures[future], future.result()
                if stop.is_set():
                    client.cancel([f for f in futures if not f.done()])
        finally:
            client.cancel([f for f in futures if not f.done()])
            client.cancel([task_future])
