"""The ``"local"`` runner: batches on a pool of threads of this process.

Threads suffice locally because the native readers and writers release the GIL (and decode on
their own thread pool); a thread pool mainly overlaps one block's I/O with another's.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from bioimage_py.jobs.tasks import BatchResult, CopyTask, run_batch

__all__ = ["Outcome", "run_local", "outcomes_of"]

#: What a runner yields per finished batch: its result, or the exception that lost the batch.
Outcome = BatchResult | BaseException


def run_local(
    task: CopyTask, batches: list[list[int]], num_workers: int, stop: threading.Event
) -> Iterator[tuple[list[int], Outcome]]:
    """Run ``batches`` on ``num_workers`` threads (inline for one); no new batch starts once
    ``stop`` is set."""
    if num_workers == 1:
        for batch in batches:
            if stop.is_set():
                return
            yield batch, run_batch(task, batch)
        return
    with ThreadPoolExecutor(num_workers, thread_name_prefix="bioimage_py-copy") as pool:
        futures = {pool.submit(run_batch, task, batch): batch for batch in batches}
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
