"""``LocalRunner`` (job type ``"local"``): blocks on a pool of threads of this process.

Threads suffice locally because the native readers and writers release the GIL (and decode on
their own thread pool); a thread pool mainly overlaps one block's I/O with another's. The
sources are used as they are (nothing is pickled), so numpy arrays work too.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from bioimage_py.runner.base import Outcome, Runner
from bioimage_py.runner.job import BlockJob
from bioimage_py.runner.job_folder import JobFolder
from bioimage_py.runner.worker import release_caller, run_batch

__all__ = ["LocalRunner", "outcomes_of"]


class LocalRunner(Runner):
    """Runs blocks on ``num_workers`` threads of this process (inline for one)."""

    in_process = True
    job_type = "local"

    def _outcomes(
        self,
        job: BlockJob,
        batches: list[tuple[str, list[int]]],
        num_workers: int,
        stop: threading.Event,
        folder: JobFolder,
    ) -> Iterator[tuple[list[int], Outcome]]:
        if num_workers == 1:
            try:
                for _, batch in batches:
                    if stop.is_set():
                        return
                    yield batch, run_batch(job, batch)
            finally:
                release_caller()
            return
        with ThreadPoolExecutor(num_workers, thread_name_prefix="bioimage_py-run") as pool:
            futures = {pool.submit(run_batch, job, batch): batch for _, batch in batches}
            yield from outcomes_of(futures, stop)


def outcomes_of(
    futures: dict[Future, list[int]], stop: threading.Event
) -> Iterator[tuple[list[int], Outcome]]:
    """Yield ``(batch, outcome)`` for ``concurrent.futures`` as they finish; once ``stop`` is
    set, cancel those not started (they are not yielded) and finish the running ones."""
    try:
        for future in as_completed(futures):
            if future.cancelled():
                continue
            error = future.exception()
            yield futures[future], future.result() if error is None else error
            if stop.is_set():
                for pending in futures:
                    pending.cancel()
    finally:  # also when the consumer stops early (an interrupt): start nothing more
        for pending in futures:
            pending.cancel()
