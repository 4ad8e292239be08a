"""``DaskRunner`` (job type ``"dask"``): batches of blocks as tasks on a dask.distributed cluster.

The cluster is ``DaskConfig.client``, or the scheduler at ``DaskConfig.address``; with neither, a
``LocalCluster`` of ``num_workers`` single-threaded worker processes is started for the run and
closed after it. Tasks carry only the job folder's path and their block ids: workers load the
job from the folder (which must be on a file system they share) and record each completed block
there. dask reschedules the tasks of a worker that dies; a run left without any worker for
``worker_timeout`` seconds fails, resumable.
"""
from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from bioimage_py.runner.base import Outcome, Runner
from bioimage_py.runner.config import DaskConfig, RunnerConfig
from bioimage_py.runner.job import BlockJob
from bioimage_py.runner.job_folder import JobFolder
from bioimage_py.runner.worker import run_batch_from_folder

__all__ = ["DaskRunner", "import_distributed"]


def import_distributed() -> Any:
    try:
        import distributed
    except ImportError as err:
        raise ImportError(
            "job_type='dask' and 'slurm' require dask.distributed, which is not installed; "
            'install it with: pip install "bioimage_py[dask]"'
        ) from err
    return distributed


class DaskRunner(Runner):
    """Runs batches of blocks as dask.distributed tasks (see the module docstring)."""

    job_type = "dask"

    def _default_config(self) -> RunnerConfig:
        return DaskConfig()

    @contextlib.contextmanager
    def _client(self, num_workers: int) -> Iterator[Any]:
        """The client to run on, and whatever has to be closed after the run."""
        distributed = import_distributed()
        client = getattr(self.config, "client", None)
        address = getattr(self.config, "address", None)
        if client is not None:
            yield client
        elif address is not None:
            with distributed.Client(address) as owned:
                yield owned
        else:
            with distributed.LocalCluster(
                n_workers=num_workers, threads_per_worker=1, processes=True,
                dashboard_address=":0",  # any free port: never clash with a running cluster
            ) as cluster, distributed.Client(cluster) as owned:
                yield owned

    def _outcomes(
        self,
        job: BlockJob,
        batches: list[tuple[str, list[int]]],
        num_workers: int,
        stop: threading.Event,
        folder: JobFolder,
    ) -> Iterator[tuple[list[int], Outcome]]:
        with self._client(num_workers) as client:
            yield from run_on_client(
                client, folder, batches, stop, float(self.config.worker_timeout),
                min(1.0, float(self.config.poll_interval)), lambda: bool(client.nthreads()),
            )


def run_on_client(
    client: Any,
    folder: JobFolder,
    batches: list[tuple[str, list[int]]],
    stop: threading.Event,
    worker_timeout: float,
    poll: float,
    has_workers: Callable[[], bool],
) -> Iterator[tuple[list[int], Outcome]]:
    """Submit the batches to ``client``; yield each batch's outcome as it finishes. Once ``stop``
    is set, cancel what has not finished; when ``has_workers()`` stays false for
    ``worker_timeout`` s (no worker, nor any coming), give up on the rest."""
    distributed = import_distributed()
    prefix = f"bioimage_py-{uuid.uuid4().hex[:8]}"
    keys = [key for key, _ in batches]
    # One map call and results streamed back with their futures: a submit, or a result fetched
    # per future, costs an event-loop round trip each (milliseconds per task).
    submitted = client.map(
        run_batch_from_folder, [folder.path] * len(batches), keys, [b for _, b in batches],
        key=[f"{prefix}-{key}" for key in keys], pure=False,
    )
    futures = {future: batch for future, (_, batch) in zip(submitted, batches)}
    finished = distributed.as_completed(submitted, with_results=True, raise_errors=False)
    idle_since: float | None = None  # when the last batch finished, or waiting began
    without_workers_since: float | None = None
    try:
        while not finished.is_empty():
            ready = finished.next_batch(block=False)
            for future, outcome in ready:
                if future.status != "cancelled":
                    yield futures[future], outcome
            if stop.is_set():
                client.cancel([f for f in futures if not f.done()])
                return
            now = time.monotonic()
            if ready:
                idle_since, without_workers_since = now, None
                continue
            idle_since = idle_since or now
            time.sleep(0.005 if now - idle_since < poll else poll)
            if now - idle_since < poll or has_workers():
                without_workers_since = None
                continue
            without_workers_since = without_workers_since or now
            if now - without_workers_since > worker_timeout:
                lost = RuntimeError(
                    f"no dask worker was left for {worker_timeout:g} s (were the workers' "
                    "jobs cancelled or killed?)"
                )
                for future in futures:
                    if not future.done():
                        yield futures[future], lost
                return
    finally:
        client.cancel([f for f in futures if not f.done()])
