"""``copy``: block-wise copy of one array into another, on the runner (threads, worker processes,
Dask or SLURM).

Every argument is checked, and the block plan made, before anything is written: shapes, a
writable output, a block shape that gives every output chunk a single writer, and for worker
processes sources that can be reopened from their spec. Blocks of a sharded output are grouped
so that one worker writes each shard. A failed run raises ``RunnerError`` listing the blocks not
completed; completed blocks stay written, and ``resume_from=err.tmp_folder`` (or
``block_ids=err.failed_block_ids``) finishes it.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from bioimage_py.runner import JOB_TYPES, RunnerConfig, get_runner
from bioimage_py.sources.base import Source
from bioimage_py.sources.dispatch import SourceLike, as_source
from bioimage_py.util import to_roi

__all__ = ["copy", "copy_block"]

# Auto progress: only for runs with more blocks than this, and only on a terminal.
_PROGRESS_MIN_BLOCKS = 8


def copy(
    input: SourceLike,
    output: SourceLike | None = None,
    *,
    block_shape: Sequence[int] | None = None,
    job_type: str = "local",
    job_config: RunnerConfig | dict[str, Any] | None = None,
    num_workers: int = 1,
    mask: SourceLike | None = None,
    block_ids: Iterable[int] | None = None,
    resume_from: str | None = None,
    progress: bool | None = None,
    name: str = "copy",
) -> Any:
    """Copy ``input`` into ``output`` block by block.

    Args:
        input: the array to read (any ``SourceLike``, e.g. a wrapper computing on read).
        output: the array to write, of the same shape (values are cast numpy-style); ``None``:
            a new numpy array (``job_type="local"`` only).
        block_shape: the blocks to copy; default the output's shards, else its chunks, else the
            input's chunks. Blocks must start on output chunk boundaries.
        job_type: ``"local"`` (threads of this process), ``"subprocess"`` (worker processes that
            reopen every source from its spec), ``"dask"`` (dask.distributed) or ``"slurm"``.
        job_config: the runner's settings (``RunnerConfig``, ``DaskConfig``, ``SlurmConfig``)
            or a dict of their fields, e.g. ``{"client": client}`` for dask or
            ``{"start_method": "spawn"}`` for subprocess.
        num_workers: threads, processes or workers.
        mask: only voxels where it is nonzero (or ``True``) are written; same shape as the
            output. Blocks entirely outside it are neither read nor written.
        block_ids: copy only these blocks (ids of ``Blocking(shape, block_shape)``).
        resume_from: the ``tmp_folder`` of a ``RunnerError`` of the same copy: copy only the
            blocks not done.
        progress: show a tqdm progress bar; default only on a terminal and for more than a few
            blocks.
        name: the run's name in progress bars, errors and its job folder.

    Returns:
        The output: the new numpy array for ``output=None``, else the output as given.

    Raises:
        ValueError: mismatched shapes; a block shape that lets two blocks write one chunk;
            ``block_ids`` out of range; an unknown ``job_type`` or ``job_config`` key;
            ``num_workers < 1``; with worker processes, sources that cannot be reopened
            (numpy arrays).
        TypeError: a read-only output.
        RunnerError: a block failed or a worker died. The run starts no new block after the
            first failure; ``.failed_block_ids`` lists every block not completed, and
            ``resume_from=err.tmp_folder`` with the same arguments finishes the output.
    """
    if str(job_type).lower() not in JOB_TYPES:
        raise ValueError(f"unknown job_type {job_type!r}; expected one of {list(JOB_TYPES)}")
    runner = get_runner(job_type, job_config)
    source = as_source(input)
    result = None
    if output is None:
        if not runner.in_process:
            raise ValueError(
                "output=None returns a numpy array, and numpy arrays can only be used for local "
                f"execution, not job_type={job_type!r}; pass a zarr or n5 array as the output "
                "(e.g. made with bioimage_py.create_array)"
            )
        output = result = np.zeros(source.shape, dtype=source.dtype)
    target = as_source(output)
    mask_source = None if mask is None else as_source(mask)
    _check_shapes(source, target, mask_source)
    if progress is None:
        progress = _auto_progress(block_shape, source, target)
    runner.run(
        copy_block, [source], [target], block_shape=block_shape, mask=mask_source,
        num_workers=num_workers, block_ids=block_ids, name=name, resume_from=resume_from,
        progress=progress,
    )
    return output if result is None else result


def copy_block(
    block: Any, inputs: Sequence[Source], outputs: Sequence[Source], mask: Source | None
) -> None:
    """The per-block function of ``copy``: ``outputs[0][block] = inputs[0][block]``, only where
    ``mask`` is nonzero (a block entirely outside it is neither read nor written)."""
    roi = to_roi(block)
    inside = None
    if mask is not None:
        inside = np.asarray(mask[roi])
        if inside.dtype != np.bool_:
            inside = inside != 0
        if not inside.any():
            return
        if inside.all():
            inside = None
    data = np.asarray(inputs[0][roi])
    assign_where = getattr(outputs[0], "assign_where", None)
    if inside is not None and assign_where is not None:  # an output the caller writes (HDF5)
        assign_where(roi, data, inside)
        return
    if inside is not None:
        merged = np.array(outputs[0][roi], copy=True)
        np.copyto(merged, data, where=inside, casting="unsafe")
        data = merged
    outputs[0][roi] = data


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


def _auto_progress(block_shape: Sequence[int] | None, source: Source, target: Source) -> bool:
    import math
    import sys

    if not sys.stderr.isatty():
        return False
    blocks = block_shape or target.shards or target.chunks or source.chunks
    if blocks is None:
        return False
    n = math.prod(-(-int(s) // int(b)) for s, b in zip(source.shape, blocks))
    return n > _PROGRESS_MIN_BLOCKS
