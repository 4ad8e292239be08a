"""``copy``: block-wise copy of one array into another, on threads, worker processes or Dask.

The block plan is made, and every argument checked, before anything is written: shapes, a
writable output, a block shape that gives every output chunk a single writer, and for worker
processes sources that can be reopened from their spec. Blocks of a sharded output are grouped
so that one worker writes each shard. A failed run raises ``BlockFailure`` listing the blocks
not completed; completed blocks stay written, and a rerun with those ``block_ids`` finishes it.
"""
from __future__ import annotations

import math
import sys
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from bioimage_py._core import Blocking, blocks_align_with_chunks, group_blocks_by_shards
from bioimage_py.errors import BlockFailure
from bioimage_py.jobs.local import Outcome, run_local
from bioimage_py.jobs.tasks import BatchResult, CopyTask, store_block
from bioimage_py.sources import Source, SourceLike, SourceSpec, as_source
from bioimage_py.util import to_roi

__all__ = ["JOB_TYPES", "copy"]

JOB_TYPES = ("local", "subprocess", "dask")
_JOB_CONFIG_KEYS = {"local": (), "subprocess": ("start_method",), "dask": ("client", "address")}
# Formats one process at a time may write: workers read, this process writes (an HDF5 file has
# one writer: two processes' library copies would overwrite each other's metadata).
_SINGLE_WRITER_FORMATS = frozenset({"hdf5"})
# Auto progress: only for runs with more blocks than this, and only on a terminal.
_PROGRESS_MIN_BLOCKS = 8
# Worker processes get batches of blocks (fewer round trips), about this many per worker.
_BATCHES_PER_WORKER = 8
_MAX_BATCH_BLOCKS = 64


def copy(
    input: SourceLike,
    output: SourceLike | None = None,
    *,
    block_shape: Sequence[int] | None = None,
    job_type: str = "local",
    job_config: dict[str, Any] | None = None,
    num_workers: int = 1,
    mask: SourceLike | None = None,
    block_ids: Iterable[int] | None = None,
    progress: bool | None = None,
) -> Any:
    """Copy ``input`` into ``output`` block by block.

    Args:
        input: the array to read (any ``SourceLike``).
        output: the array to write, of the same shape (values are cast numpy-style); ``None``:
            a new numpy array (``job_type="local"`` only).
        block_shape: the blocks to copy; default the output's shards, else its chunks, else the
            input's chunks. Blocks must start on output chunk boundaries.
        job_type: ``"local"`` (threads of this process), ``"subprocess"`` (worker processes that
            reopen every source from its spec) or ``"dask"`` (dask.distributed).
        job_config: ``"subprocess"``: ``{"start_method": "forkserver" | "spawn" | "fork"}``;
            ``"dask"``: ``{"client": client}`` or ``{"address": "tcp://..."}``, else a
            ``LocalCluster`` of ``num_workers`` processes is started for the job.
        num_workers: threads or processes.
        mask: only voxels where it is nonzero (or ``True``) are written; same shape as the
            output. Blocks entirely outside it are neither read nor written.
        block_ids: copy only these blocks (ids of ``Blocking(shape, block_shape)``), e.g. the
            ``block_ids`` of a ``BlockFailure`` to finish a failed run.
        progress: show a tqdm progress bar; default only on a terminal and for more than a few
            blocks.

    Returns:
        The output: the new numpy array for ``output=None``, else the output as given.

    Raises:
        ValueError: mismatched shapes; a block shape that lets two blocks write one chunk;
            ``block_ids`` out of range; an unknown ``job_type`` or ``job_config`` key;
            ``num_workers < 1``; with worker processes, sources that cannot be reopened
            (numpy arrays).
        TypeError: a read-only output.
        BlockFailure: a block failed or a worker died. The run stops starting new blocks at
            the first failure; ``.block_ids`` lists every block not completed (failed, not
            started, or lost with a worker), and ``copy(..., block_ids=err.block_ids)`` with
            the same arguments finishes the output.
    """
    if job_type not in JOB_TYPES:
        raise ValueError(f"unknown job_type {job_type!r}; expected one of {list(JOB_TYPES)}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or \
            num_workers < 1:
        raise ValueError(f"num_workers must be an integer >= 1, got {num_workers!r}")
    job_config = _check_job_config(job_type, job_config)

    source = as_source(input)
    result = None
    if output is None:
        if job_type != "local":
            raise ValueError(
                "output=None returns a numpy array, and numpy arrays can only be used for local "
                f"execution, not job_type={job_type!r}; pass a zarr or n5 array as the output "
                "(e.g. made with bioimage_py.create_array)"
            )
        output = result = np.zeros(source.shape, dtype=source.dtype)
    target = as_source(output)
    mask_source = None if mask is None else as_source(mask)
    _check_shapes(source, target, mask_source)
    if not target.writable:
        raise TypeError(f"the output {target!r} is read-only: open it writable (mode='r+')")

    shape = tuple(source.shape)
    blocks = _block_shape(block_shape, source, target)
    blocking = Blocking(shape, blocks)
    if target.chunks is not None and not blocks_align_with_chunks(blocking, target.chunks):
        raise ValueError(
            f"block_shape {blocks} does not align with the output's chunks {target.chunks}: "
            "every block must start on a chunk boundary (each entry a multiple of the chunk "
            "shape), or two blocks would write one chunk and parallel writes could lose data; "
            f"use e.g. block_shape={tuple(target.shards or target.chunks)}"
        )
    ids = _block_ids(block_ids, blocking)
    batches = _batches(blocking, ids, target.shards, job_type, num_workers)

    write_in_worker = job_type == "local" or _format(target) not in _SINGLE_WRITER_FORMATS
    token = uuid.uuid4().hex
    if job_type == "local":
        task = CopyTask(source, target, mask_source, shape, blocks, True, (), token)
    else:
        task = CopyTask(
            _spec(source, "input", job_type),
            _spec(target, "output", job_type) if write_in_worker else None,
            None if mask_source is None else _spec(mask_source, "mask", job_type),
            shape, blocks, write_in_worker,
            _imports([source, target, mask_source]), token,
        )
    try:
        _run(task, batches, ids, target, job_type, job_config, num_workers, progress)
    finally:
        if job_type != "local":
            _forget_cached_chunks(target)
    return output if result is None else result


# --- argument checks ---------------------------------------------------------------------------


def _check_job_config(job_type: str, job_config: dict[str, Any] | None) -> dict[str, Any]:
    if job_config is None:
        return {}
    if not isinstance(job_config, dict):
        raise TypeError(f"job_config must be a dict or None, got {type(job_config).__name__}")
    valid = _JOB_CONFIG_KEYS[job_type]
    unknown = sorted(set(job_config) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown job_config keys {unknown} for job_type={job_type!r}; valid keys: "
            f"{list(valid) or 'none'}"
        )
    return dict(job_config)


def _check_shapes(source: Source, target: Source, mask: Source | None) -> None:
    if tuple(target.shape) != tuple(source.shape):
        raise ValueError(
            f"the input has shape {tuple(source.shape)} but the output {tuple(target.shape)}; "
            "copy needs equal shapes"
        )
    if mask is not None and tuple(mask.shape) != tuple(target.shape):
        raise ValueError(
            f"the mask has shape {tuple(mask.shape)} but the output {tuple(target.shape)}; "
            "the mask must have the output's shape"
        )


def _block_shape(
    block_shape: Sequence[int] | None, source: Source, target: Source
) -> tuple[int, ...]:
    ndim = len(source.shape)
    if block_shape is None:
        block_shape = target.shards or target.chunks or source.chunks
        if block_shape is None:  # nothing is chunked: blocks of a sensible size
            from bioimage_py.io.create import default_chunks

            block_shape = default_chunks(tuple(source.shape))
    try:
        blocks = tuple(int(b) for b in block_shape)
        valid = len(blocks) == ndim and all(b > 0 for b in blocks) and all(
            float(b) == float(given) for b, given in zip(blocks, block_shape)
        )
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            f"block_shape must be {ndim} positive integers (one per axis), got {block_shape!r}"
        )
    return blocks


def _block_ids(block_ids: Iterable[int] | None, blocking: Blocking) -> list[int]:
    n = blocking.number_of_blocks
    if block_ids is None:
        return list(range(n))
    if isinstance(block_ids, (str, bytes)):
        raise TypeError(f"block_ids must be integers, got {block_ids!r}")
    ids = []
    for block_id in block_ids:
        if isinstance(block_id, bool) or not isinstance(block_id, (int, np.integer)):
            raise TypeError(f"block_ids must be integers, got {block_id!r}")
        if not 0 <= block_id < n:
            raise ValueError(
                f"block id {int(block_id)} is out of range: the blocking of shape "
                f"{blocking.shape} into blocks of {blocking.block_shape} has {n} blocks"
            )
        ids.append(int(block_id))
    return sorted(set(ids))


def _spec(source: Source, role: str, job_type: str) -> SourceSpec:
    try:
        return source.to_spec()
    except ValueError as err:
        raise ValueError(
            f"job_type={job_type!r} reopens every source in worker processes, but the {role} "
            f"cannot be reopened: {err}"
        ) from None


def _format(source: Source) -> str | None:
    return getattr(source, "format", None)


def _imports(sources: list[Source | None]) -> tuple[str, ...]:
    """Modules that registered the formats of these sources, when not bioimage_py's own: a
    worker imports them first, so that custom formats reopen there too."""
    from bioimage_py.io import constructor_for_format

    modules = []
    for source in sources:
        fmt = None if source is None else _format(source)
        if fmt is None:
            continue
        module = getattr(constructor_for_format(fmt), "__module__", None) or ""
        if module and module != "__main__" and not module.startswith("bioimage_py."):
            modules.append(module)
    return tuple(dict.fromkeys(modules))


# --- planning ----------------------------------------------------------------------------------


def _batches(
    blocking: Blocking,
    ids: list[int],
    shards: Sequence[int] | None,
    job_type: str,
    num_workers: int,
) -> list[list[int]]:
    """The block ids in batches, one task each. Blocks sharing a shard of the output are in one
    batch (a shard is rewritten whole, so two writers would lose each other's chunks); worker
    processes get several blocks per batch to amortize each task's round trip."""
    if shards is not None:
        wanted = set(ids)
        groups = [
            [i for i in group if i in wanted]
            for group in group_blocks_by_shards(blocking, [tuple(shards)])
        ]
        groups = [group for group in groups if group]
    else:
        groups = [[i] for i in ids]
    if job_type == "local":
        return groups
    per_batch = math.ceil(len(ids) / (num_workers * _BATCHES_PER_WORKER))
    target = max(1, min(_MAX_BATCH_BLOCKS, per_batch))
    batches: list[list[int]] = []
    for group in groups:
        if batches and len(batches[-1]) + len(group) <= target:
            batches[-1].extend(group)
        else:
            batches.append(list(group))
    return batches


# --- running -----------------------------------------------------------------------------------


def _outcomes(
    task: CopyTask,
    batches: list[list[int]],
    job_type: str,
    job_config: dict[str, Any],
    num_workers: int,
    stop: threading.Event,
) -> Iterator[tuple[list[int], Outcome]]:
    if job_type == "local":
        return run_local(task, batches, num_workers, stop)
    if job_type == "subprocess":
        from bioimage_py.jobs.processes import run_processes

        return run_processes(task, batches, num_workers, stop, job_config.get("start_method"))
    from bioimage_py.jobs.distributed import run_dask

    return run_dask(task, batches, num_workers, stop, job_config)


def _run(
    task: CopyTask,
    batches: list[list[int]],
    ids: list[int],
    target: Source,
    job_type: str,
    job_config: dict[str, Any],
    num_workers: int,
    progress: bool | None,
) -> None:
    """Run the batches, write what workers return, and raise ``BlockFailure`` for the rest."""
    if not ids:
        return
    blocking = Blocking(task.shape, task.block_shape)
    completed: set[int] = set()
    failure: tuple[int | None, BaseException] | None = None
    stop = threading.Event()
    bar = _progress_bar(len(ids), progress)
    try:
        for batch, outcome in _outcomes(task, batches, job_type, job_config, num_workers, stop):
            done: list[int] = []
            if isinstance(outcome, BatchResult):
                done = outcome.completed
                try:  # data of outputs only this process writes
                    for block_id, data, inside in outcome.loaded:
                        store_block(target, to_roi(blocking.get_block(block_id)), data, inside)
                        done.append(block_id)
                except Exception as err:  # noqa: BLE001  (reported as the block's failure)
                    outcome.failed_block, outcome.error = block_id, err
                if outcome.error is not None and failure is None:
                    failure = (outcome.failed_block, outcome.error)
            elif failure is None:  # the whole batch was lost (a dead worker, a pickling error)
                failure = (None, outcome)
            completed.update(done)
            bar.update(len(done))
            if failure is not None:
                stop.set()
    finally:
        bar.close()
    missing = [i for i in ids if i not in completed]
    if missing:
        if failure is None:  # interrupted without an error: should not happen, but say so
            failure = (None, RuntimeError("the runner stopped before every block was done"))
        block, error = failure
        where = f"block {block}" if block is not None else "a worker"
        raise BlockFailure(
            f"copy did not complete {len(missing)} of {len(ids)} blocks "
            f"(block_ids {_short(missing)}); the first error, in {where}: "
            f"{type(error).__name__}: {str(error).rstrip('.')}. Completed blocks are written: "
            "rerun copy with block_ids=err.block_ids to finish.",
            missing,
            error,
            block,
        ) from error


def _short(ids: list[int], limit: int = 12) -> str:
    if len(ids) <= limit:
        return str(ids)
    return "[" + ", ".join(map(str, ids[:limit])) + f", ... {len(ids) - limit} more]"


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, progress: bool | None) -> Any:
    if progress is None:
        progress = total > _PROGRESS_MIN_BLOCKS and sys.stderr.isatty()
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="block", desc="copy", file=sys.stderr)


def _forget_cached_chunks(target: Source) -> None:
    """Worker processes rewrote chunks this process may hold decoded in its cache."""
    clear = getattr(getattr(target, "array", None), "clear_cache", None)
    if callable(clear):
        clear()
