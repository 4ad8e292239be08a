"""Running blocks where the work happens: a thread of this process, a worker process, a Dask or
SLURM worker. ``run_block`` is the single per-block code path of every backend, which is what
makes their results identical; ``run_batch`` runs a batch of blocks and reports exactly which
completed, so the caller knows what is left.
"""
from __future__ import annotations

import importlib
import os
import pickle
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bioimage_py._core import Block, Blocking, BlockWithHalo
from bioimage_py.runner.job import BlockJob, CapturedOutput, SourceOrSpec
from bioimage_py.runner.job_folder import JobFolder, ProgressRecorder
from bioimage_py.sources.base import Source, SourceSpec
from bioimage_py.sources.dispatch import from_spec_cached

__all__ = ["BatchResult", "release_caller", "run_batch", "run_batch_from_folder", "run_block"]

BlockFunction = Callable[[Any, Sequence[Source], Sequence[Source], Source | None], Any]


def run_block(
    function: BlockFunction,
    blocking: Blocking,
    block_id: int,
    inputs: Sequence[Source],
    outputs: Sequence[Source],
    mask: Source | None,
    halo: Sequence[int] | None,
) -> Any:
    """Run ``function(block, inputs, outputs, mask)`` for one block and return its value.

    ``block`` is ``blocking.get_block(block_id)``, or with a ``halo`` the
    ``blocking.get_block_with_halo(block_id, halo)``: read ``outer_block``, write
    ``inner_block``, crop results with ``inner_block_local``.
    """
    block: Block | BlockWithHalo
    if halo is None:
        block = blocking.get_block(int(block_id))
    else:
        block = blocking.get_block_with_halo(int(block_id), [int(h) for h in halo])
    return function(block, inputs, outputs, mask)


@dataclass
class BatchResult:
    """What a batch achieved.

    Attributes:
        completed: the ids completed, in order.
        results: ``(id, return value)`` of the completed ids (with ``has_return_val``).
        writes: ``(id, output index, roi, value, where)`` of writes to outputs only the calling
            process may write (``BlockJob.captured_outputs``), in order; ``where`` is ``None``
            or the mask of the voxels to write.
        recorded: whether the worker recorded ``completed`` in the job folder itself.
        failed_block: the id that raised ``error``; ids after it in the batch did not run.
        error: the exception, or ``None`` when every id completed.
    """

    completed: list[int] = field(default_factory=list)
    results: list[tuple[int, Any]] = field(default_factory=list)
    writes: list[tuple[int, int, tuple[slice, ...], np.ndarray, np.ndarray | None]] = field(
        default_factory=list
    )
    recorded: bool = False
    failed_block: int | None = None
    error: BaseException | None = None


class CapturedWrites(Source):
    """An output only the calling process may write (HDF5), as a worker process sees it: writes
    are kept and handed back to the calling process, which makes them. It cannot be read here
    (the file changes under the worker while the calling process writes); ``assign_where``
    writes only the voxels of a mask, merged with the output by the calling process."""

    def __init__(self, like: CapturedOutput) -> None:
        self._like = like
        self._static_shape = like.shape
        self.writes: list[tuple[tuple[slice, ...], np.ndarray, np.ndarray | None]] = []

    @property
    def shape(self) -> tuple[int, ...]:
        return self._static_shape

    @property
    def dtype(self) -> np.dtype:
        return self._like.dtype

    @property
    def chunks(self) -> tuple[int, ...] | None:
        return self._like.chunks

    @property
    def shards(self) -> tuple[int, ...] | None:
        return self._like.shards

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        raise TypeError(
            f"{self._like.name} is written by the calling process (its format has one writer): "
            "worker processes can write it but not read it"
        )

    def _setitem(self, roi: tuple[slice, ...], value: np.ndarray) -> None:
        self.writes.append((roi, np.array(value, copy=True), None))

    def assign_where(self, roi: tuple[slice, ...], value: np.ndarray, where: np.ndarray) -> None:
        """Write ``value`` to the voxels of ``roi`` where ``where`` is true, keeping the rest."""
        self.writes.append((roi, np.array(value, copy=True), np.array(where, dtype=bool)))

    def to_spec(self) -> SourceSpec:
        raise ValueError("an output captured in a worker process cannot be reopened elsewhere")


def _resolve(item: SourceOrSpec | None, token: str) -> Source | None:
    return from_spec_cached(item, token) if isinstance(item, SourceSpec) else item


def _picklable(error: BaseException) -> BaseException:
    """``error``, or a ``RuntimeError`` describing it when it cannot travel between processes."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001  (any failure to round-trip)
        return RuntimeError(f"{type(error).__name__}: {error}")


def run_batch(
    job: BlockJob, ids: Sequence[int], folder: str | None = None, key: str | None = None
) -> BatchResult:
    """Run the blocks (or map items) ``ids`` of ``job`` in order; stop at the first error.

    Never raises for a block's error: it is returned, with the ids completed before it. With a
    job ``folder`` reachable here, every completed id is recorded there as it completes (under
    ``key``); otherwise (or for captured writes, which only count once made) the caller records.
    """
    result = BatchResult()
    current = ids[0] if ids else None  # an error while setting up is the first id's
    recorder: ProgressRecorder | None = None
    try:
        for module in job.imports:
            importlib.import_module(module)
        call = _block_caller(job)
        if folder is not None and key is not None and not job.captured_outputs and \
                os.path.isdir(folder):
            recorder = JobFolder(folder).recorder(key, job.has_return_val)
            result.recorded = True
        for current in ids:
            value = _call_with_retries(call, current, job.retries)
            if job.captured_outputs:
                result.writes.extend(_take_writes(call, current))
            if recorder is not None:
                recorder.record(current, value if job.has_return_val else None)
            result.completed.append(current)
            if job.has_return_val:
                result.results.append((current, value))
    except Exception as err:  # noqa: BLE001  (reported to the caller with the block id)
        result.failed_block, result.error = current, _picklable(err)
    finally:
        if recorder is not None:
            recorder.close()
    return result


class _BlockCaller:
    """``call(id)`` for one job: the per-block (or per-item) function with the job's sources,
    reopened once per job and thread."""

    def __init__(self, job: BlockJob) -> None:
        self.job = job
        self.mode = job.mode
        if job.mode == "map":
            return
        self.inputs = [_resolve(s, job.token) for s in job.inputs]
        # Outputs the calling process writes are not even opened here: it writes them meanwhile.
        self.captured = {i: CapturedWrites(like) for i, like in job.captured_outputs.items()}
        self.outputs = [
            self.captured[i] if i in self.captured else _resolve(s, job.token)
            for i, s in enumerate(job.outputs)
        ]
        self.mask = _resolve(job.mask, job.token)
        self.blocking = job.blocking()

    def __call__(self, block_id: int) -> Any:
        job = self.job
        if self.mode == "map":
            return job.function(int(block_id))
        return run_block(
            job.function, self.blocking, block_id, self.inputs, self.outputs, self.mask, job.halo
        )


_callers = threading.local()


def _block_caller(job: BlockJob) -> _BlockCaller:
    """The caller of ``job`` for this thread, made once per job and thread (a run on threads
    runs one batch per block: its sources and blocking are resolved once, not per block)."""
    caller = getattr(_callers, "caller", None)
    if caller is None or caller.job is not job:
        caller = _callers.caller = _BlockCaller(job)
    return caller


def release_caller() -> None:
    """Drop this thread's caller (and the sources it holds) once its run is over."""
    _callers.caller = None


def _call_with_retries(call: _BlockCaller, block_id: int, retries: int) -> Any:
    for attempt in range(retries + 1):
        try:
            return call(block_id)
        except Exception:
            _take_writes(call, block_id)  # a failed attempt's writes are not made
            if attempt == retries:
                raise
    raise AssertionError("unreachable")


def _take_writes(
    call: _BlockCaller, block_id: int
) -> list[tuple[int, int, tuple[slice, ...], np.ndarray, np.ndarray | None]]:
    writes = []
    for index, captured in getattr(call, "captured", {}).items():
        writes.extend((block_id, index, *write) for write in captured.writes)
        captured.writes.clear()
    return writes


# --- worker processes: the job from the job folder, loaded once per process ------------------

_loaded_lock = threading.Lock()
_loaded: dict[str, BlockJob] = {}


def run_batch_from_folder(folder: str, key: str, ids: Sequence[int]) -> BatchResult:
    """``run_batch`` in a worker process, with the job loaded from the job folder's payload."""
    try:
        job = _job_of(folder)
    except Exception as err:  # noqa: BLE001
        return BatchResult(failed_block=ids[0] if ids else None, error=_picklable(err))
    return run_batch(job, ids, folder, key)


def _job_of(folder: str) -> BlockJob:
    with _loaded_lock:
        job = _loaded.get(folder)
        if job is None:
            if not os.path.isdir(folder):
                raise OSError(
                    f"the job folder {folder!r} is not visible on this worker: put "
                    "RunnerConfig.tmp_root on a file system every worker shares"
                )
            if len(_loaded) > 8:  # a long-lived worker serves many jobs: keep the recent ones
                _loaded.clear()
            job = JobFolder(folder).read_payload()["job"]
            job.stamp.check()  # before any block of the job runs in this process
            _loaded[folder] = job
        return job
