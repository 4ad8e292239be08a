"""``SubprocessRunner`` (job type ``"subprocess"``): batches on a pool of worker processes.

Workers load the job (the cloudpickled function and the sources' specs) from the job folder once
per process, reopen every source once per job, and record each completed block in the job
folder as it completes. They are started with ``forkserver`` where the platform has it, else
``spawn``, never plain ``fork`` by default: the caller usually holds threads (the native decoder
pool, tqdm's monitor, the user's own), and a child forked while one of them holds a lock can
deadlock. The fork server is a fresh single-threaded interpreter that has already imported
bioimage_py, so its children start safe and fast.
"""
from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from bioimage_py.runner.base import Outcome, Runner
from bioimage_py.runner.job import BlockJob
from bioimage_py.runner.job_folder import JobFolder
from bioimage_py.runner.worker import run_batch_from_folder

__all__ = ["START_METHODS", "SubprocessRunner"]

START_METHODS = ("forkserver", "spawn", "fork")
# Imported once by the fork server, so each forked worker starts with numpy and the core loaded.
_PRELOAD = ["bioimage_py.runner.worker"]
_DIED = (
    "a worker process died (killed by a signal or out of memory, or it failed while starting: "
    "a script that uses job_type='subprocess' needs the `if __name__ == '__main__':` guard)"
)


class SubprocessRunner(Runner):
    """Runs batches of blocks on ``num_workers`` worker processes of this machine."""

    job_type = "subprocess"

    def _context(self) -> Any:
        available = multiprocessing.get_all_start_methods()
        start_method = self.config.start_method
        if self.config.python_executable is not None and start_method is None:
            start_method = "spawn"  # only spawned workers run another interpreter
        if start_method is None:
            start_method = "forkserver" if "forkserver" in available else "spawn"
        elif start_method not in available:
            raise ValueError(
                f"start_method {start_method!r} is not available here; choose one of {available}"
            )
        context = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            context.set_forkserver_preload(_PRELOAD)
        if self.config.python_executable is not None:
            context.set_executable(self.config.python_executable)
        return context

    def _outcomes(
        self,
        job: BlockJob,
        batches: list[tuple[str, list[int]]],
        num_workers: int,
        stop: threading.Event,
        folder: JobFolder,
    ) -> Iterator[tuple[list[int], Outcome]]:
        """Run the batches; a worker that dies loses every batch not yet reported (each yields
        ``BrokenProcessPool``), and so does a task over ``task_timeout`` (its pool is killed)."""
        context = self._context()
        timeout = self.config.task_timeout
        pool = ProcessPoolExecutor(min(num_workers, len(batches)) or 1, mp_context=context)
        futures = {
            pool.submit(run_batch_from_folder, folder.path, key, batch): batch
            for key, batch in batches
        }
        remaining = set(futures)
        try:
            while remaining:
                # No task finishing within task_timeout means every running one took longer.
                finished, _ = wait(remaining, timeout=timeout, return_when=FIRST_COMPLETED)
                if not finished:
                    _kill_workers(pool)
                    lost = TimeoutError(f"a task ran longer than task_timeout={timeout} s")
                    for future in remaining:
                        yield futures[future], lost
                    return
                for future in finished:
                    remaining.discard(future)
                    if future.cancelled():
                        continue
                    error = future.exception()
                    if isinstance(error, BrokenProcessPool):
                        error = BrokenProcessPool(_DIED)
                    yield futures[future], future.result() if error is None else error
                if stop.is_set():
                    for pending in remaining:
                        pending.cancel()
                    remaining = {f for f in remaining if not f.cancelled()}
        finally:
            for pending in remaining:
                pending.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    for process in list(getattr(pool, "_processes", {}).values()):
        process.kill()
