"""The work of one batch of blocks, as it runs inside a worker thread, process or Dask task.

A ``CopyTask`` carries the sources (local threads) or their ``SourceSpec`` (worker processes,
Dask); a worker reopens each spec once and keeps it for the rest of the job. ``run_batch`` copies
its blocks in order and stops at the first error, reporting what completed and which block
failed, so that the caller can tell exactly which blocks still need work.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from bioimage_py._core import Blocking
from bioimage_py.sources.base import Source, SourceSpec
from bioimage_py.sources.dispatch import from_spec_cached
from bioimage_py.util import to_roi

__all__ = ["BatchResult", "CopyTask", "load_block", "run_batch", "store_block"]

SourceOrSpec = Union[Source, SourceSpec]


@dataclass
class CopyTask:
    """What every worker needs to copy blocks of ``input`` to ``output``.

    Attributes:
        input, output, mask: the sources themselves (threads of this process) or their specs
            (other processes); ``mask`` may be ``None``.
        shape, block_shape: define the ``Blocking`` that block ids refer to.
        write_in_worker: whether workers write the output themselves; ``False`` for outputs only
            one process may write (HDF5): workers then return the data and the caller writes it.
        imports: modules to import before reopening specs (they register custom formats).
        token: identifies the job; cached reopened sources of another job are dropped.
    """

    input: SourceOrSpec
    output: SourceOrSpec | None
    mask: SourceOrSpec | None
    shape: tuple[int, ...]
    block_shape: tuple[int, ...]
    write_in_worker: bool = True
    imports: tuple[str, ...] = ()
    token: str = ""


@dataclass
class BatchResult:
    """What a batch achieved.

    Attributes:
        completed: ids of the blocks that are done (written, or skipped as entirely masked out).
        loaded: with ``write_in_worker=False``: ``(block_id, data, mask)`` for the caller to write.
        failed_block: the block that raised ``error``; blocks after it in the batch were not run.
        error: the exception, or ``None`` when every block succeeded.
    """

    completed: list[int] = field(default_factory=list)
    loaded: list[tuple[int, np.ndarray, np.ndarray | None]] = field(default_factory=list)
    failed_block: int | None = None
    error: BaseException | None = None


def _resolve(item: SourceOrSpec | None, token: str) -> Source | None:
    if isinstance(item, SourceSpec):
        return from_spec_cached(item, token)
    return item


def load_block(
    input: Source, mask: Source | None, roi: tuple[slice, ...]
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Read block ``roi`` of ``input`` and its mask: ``None`` when the mask excludes all of it
    (nothing is read then), else ``(data, mask)`` with ``mask`` ``None`` when it covers all."""
    inside = None
    if mask is not None:
        inside = np.asarray(mask[roi])
        if inside.dtype != np.bool_:
            inside = inside != 0
        if not inside.any():
            return None
        if inside.all():
            inside = None
    return np.asarray(input[roi]), inside


def store_block(
    output: Source, roi: tuple[slice, ...], data: np.ndarray, inside: np.ndarray | None
) -> None:
    """Write ``data`` to ``roi`` of ``output``; with a mask only its voxels, keeping the rest."""
    if inside is not None:
        merged = np.array(output[roi], copy=True)
        np.copyto(merged, data, where=inside, casting="unsafe")
        data = merged
    output[roi] = data


def run_batch(task: CopyTask, block_ids: list[int]) -> BatchResult:
    """Copy the blocks ``block_ids`` of ``task`` in order; stop at the first error.

    Never raises for a block's error: it is returned in the result, so the caller learns which
    blocks completed before it.
    """
    result = BatchResult()
    block_id = block_ids[0] if block_ids else None  # an error while reopening is the first's
    try:
        for module in task.imports:
            importlib.import_module(module)
        input = _resolve(task.input, task.token)
        mask = _resolve(task.mask, task.token)
        output = _resolve(task.output, task.token) if task.write_in_worker else None
        blocking = Blocking(task.shape, task.block_shape)
        for block_id in block_ids:
            roi = to_roi(blocking.get_block(block_id))
            loaded = load_block(input, mask, roi)
            if loaded is None:
                result.completed.append(block_id)
            elif output is not None:
                store_block(output, roi, *loaded)
                result.completed.append(block_id)
            else:
                result.loaded.append((block_id, *loaded))
    except Exception as err:  # noqa: BLE001  (reported to the caller with the block id)
        result.failed_block, result.error = block_id, err
    return result
