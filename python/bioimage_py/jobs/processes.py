"""The ``"subprocess"`` runner: batches on a pool of worker processes of this machine.

Workers receive the task with specs, not handles, and reopen every source once per process.
They are started with ``forkserver`` where the platform has it, else ``spawn``, never plain
``fork``: the caller usually holds threads (the native decoder pool, tqdm's monitor, the user's
own), and a child forked while one of them holds a lock (malloc's, the GIL's helpers, a logging
handler's) can deadlock. The fork server is a fresh single-threaded interpreter that has already
imported bioimage_py, so its children start safe and fast.
"""
from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from bioimage_py.jobs.local import Outcome, outcomes_of
from bioimage_py.jobs.tasks import CopyTask, run_batch

__all__ = ["START_METHODS", "run_processes"]

START_METHODS = ("forkserver", "spawn", "fork")
# Imported once by the fork server, so each forked worker starts with numpy and the core loaded.
_PRELOAD = ["bioimage_py.jobs.tasks"]
_DIED = (
    "a worker process died (killed by a signal or out of memory, or it failed while starting: "
    "a script that uses job_type='subprocess' needs the `if __name__ == '__main__':` guard)"
)


def _context(start_method: str | None) -> Any:
    available = multiprocessing.get_all_start_methods()
    if start_method is None:
        start_method = "forkserver" if "forkserver" in available else "spawn"
    elif start_method not in available:
        raise ValueError(
            f"start_method {start_method!r} is not available here; choose one of {available}"
        )
    context = multiprocessing.get_context(start_method)
    if start_method == "forkserver":
        context.set_forkserver_preload(_PRELOAD)
    return context


def run_processes(
    task: CopyTask,
    batches: list[list[int]],
    num_workers: int,
    stop: threading.Event,
    start_method: str | None = None,
) -> Iterator[tuple[list[int], Outcome]]:
    """Run ``batches`` on ``num_workers`` processes. A worker that dies loses every batch not
    yet reported (each yields ``BrokenProcessPool``); no new batch starts once ``stop`` is set."""
    context = _context(start_method)
    with ProcessPoolExecutor(min(num_workers, len(batches)) or 1, mp_context=context) as pool:
        futures = {pool.submit(run_batch, task, batch): batch for batch in batches}
        for batch, outcome in outcomes_of(futures, stop):
            if isinstance(outcome, BrokenProcessPool):
                outcome = BrokenProcessPool(_DIED)
            yield batch, outcome
