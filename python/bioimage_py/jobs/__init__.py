"""Running block-wise work on threads, worker processes or a Dask cluster.

``tasks`` holds what runs inside a worker (reopen the sources from their specs, copy a batch of
blocks); ``local``, ``processes`` and ``distributed`` are the three runners ``bioimage_py.copy``
chooses between with ``job_type``. Every runner has the same shape: it takes a task and batches
of block ids and yields ``(batch, outcome)`` as batches finish, stopping new work once asked to.
"""
from __future__ import annotations

from bioimage_py.jobs.tasks import BatchResult, CopyTask, run_batch

__all__ = ["BatchResult", "CopyTask", "run_batch"]
