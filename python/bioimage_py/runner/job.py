"""What a run is: ``BlockJob``, the description every worker receives, and the checks and the
plan (block ids, batches) made from a ``Runner.run`` or ``Runner.map`` call before anything runs.

Checked before any block runs: inputs and mask share the domain shape; outputs match it in their
trailing axes (a leading channel axis is written whole by every block); written blocks align to
every output's chunk grid, so no chunk has two writers; blocks of sharded outputs are grouped so
one task writes each shard; ``roi``, ``halo`` and ``block_ids`` fit the domain.
"""
from __future__ import annotations

import math
import platform
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from bioimage_py._core import Blocking, blocks_align_with_chunks, group_blocks_by_shards
from bioimage_py.io.create import default_chunks
from bioimage_py.sources.base import Source, SourceSpec

__all__ = [
    "BlockJob",
    "CapturedOutput",
    "Stamp",
    "check_block_ids",
    "check_domain",
    "make_batches",
    "normalize_halo",
    "roi_bounds",
]

SourceOrSpec = Union[Source, SourceSpec]
# Formats one process at a time may write (an HDF5 file has one writer: two processes' copies of
# the library would overwrite each other's metadata). Worker processes hand their writes to such
# outputs back to the calling process, which writes them.
SINGLE_WRITER_FORMATS = frozenset({"hdf5"})
# Tasks of worker processes run batches of blocks (fewer round trips), at most this many blocks.
_MAX_BATCH_BLOCKS = 256
_MAX_THREAD_BATCH_BLOCKS = 16
_MIN_TASKS_PER_WORKER = 8


@dataclass(frozen=True)
class Stamp:
    """What a cloudpickled function needs of the interpreter that unpickles it: the same
    Python minor version (code objects change between them)."""

    python: str = field(default_factory=platform.python_version)

    def check(self) -> None:
        """Raise ``RuntimeError`` when this interpreter cannot run what ``self`` stamped."""
        here = platform.python_version()
        if here.split(".")[:2] != self.python.split(".")[:2]:
            raise RuntimeError(
                f"the job's function was pickled by Python {self.python} but this worker runs "
                f"Python {here}: start the workers with the same Python minor version "
                "(RunnerConfig.python_executable, SlurmConfig.shebang)"
            )


@dataclass(frozen=True)
class CapturedOutput:
    """What a worker knows of an output only the calling process writes (it never opens it)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: tuple[int, ...] | None
    shards: tuple[int, ...] | None

    @classmethod
    def of(cls, source: Source) -> CapturedOutput:
        return cls(repr(source), tuple(source.shape), np.dtype(source.dtype), source.chunks,
                   source.shards)


@dataclass
class BlockJob:
    """Everything a worker needs to run blocks (or map items) of one call.

    Attributes:
        function: ``function(block, inputs, outputs, mask)`` (mode ``"block"``) or
            ``function(index)`` (mode ``"map"``).
        mode: ``"block"`` or ``"map"``.
        inputs, outputs, mask: the sources (threads of this process) or their specs (worker
            processes, which reopen them once per job).
        shape, block_shape, roi_begin, roi_end: the ``Blocking`` block ids refer to.
        halo: per-axis halo (the function then gets a ``BlockWithHalo``), or ``None``.
        has_return_val: whether the function's return values are collected.
        retries: tries of a raising block before the run fails.
        captured_outputs: outputs only the calling process may write, by index: workers
            return those writes instead of making them.
        imports: modules a worker imports before reopening specs (custom formats).
        token: identifies the job (per-job caches of reopened sources).
        stamp: the interpreter the function was pickled by.
    """

    function: Callable[..., Any]
    mode: str = "block"
    inputs: list[SourceOrSpec] = field(default_factory=list)
    outputs: list[SourceOrSpec] = field(default_factory=list)
    mask: SourceOrSpec | None = None
    shape: tuple[int, ...] = ()
    block_shape: tuple[int, ...] = ()
    roi_begin: tuple[int, ...] | None = None
    roi_end: tuple[int, ...] | None = None
    halo: tuple[int, ...] | None = None
    has_return_val: bool = False
    retries: int = 0
    captured_outputs: dict[int, CapturedOutput] = field(default_factory=dict)
    imports: tuple[str, ...] = ()
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    stamp: Stamp = field(default_factory=Stamp)

    def blocking(self) -> Blocking:
        """The ``Blocking`` the job's block ids refer to."""
        return Blocking(self.shape, self.block_shape, self.roi_begin, self.roi_end)


def check_domain(
    inputs: Sequence[Source], outputs: Sequence[Source], mask: Source | None
) -> tuple[int, ...]:
    """The domain shape (the first input's, else the first output's), after checking that inputs
    and mask have it and outputs end in it.

    Raises:
        ValueError: no sources, or a shape that does not fit; the message names the source.
    """
    domain = inputs[0] if inputs else (outputs[0] if outputs else None)
    if domain is None:
        raise ValueError("run() needs at least one input or output source")
    shape = tuple(int(n) for n in domain.shape)
    named = [(f"input {i}", s) for i, s in enumerate(inputs)]
    if mask is not None:
        named.append(("the mask", mask))
    for name, source in named:
        if tuple(source.shape) != shape:
            raise ValueError(
                f"{name} has shape {tuple(source.shape)}, which does not match the domain shape "
                f"{shape} (the first input's): inputs and mask must have equal shapes"
            )
    for i, output in enumerate(outputs):
        out_shape = tuple(output.shape)
        if len(out_shape) < len(shape) or out_shape[len(out_shape) - len(shape):] != shape:
            raise ValueError(
                f"output {i} has shape {out_shape}, which does not end in the domain shape "
                f"{shape}: outputs must match the domain in their trailing axes (a leading "
                "channel axis is allowed)"
            )
        if not output.writable:
            raise TypeError(f"output {i} ({output!r}) is read-only: {_how_to_write(output)}")
    return shape


def _how_to_write(output: Source) -> str:
    """What to do about a read-only output: open it writable, unless it lives where nothing is
    written (an HTTP(S) URL, a zip file)."""
    from bioimage_py.io.location import is_read_only_location

    path = getattr(output, "path", None)
    if isinstance(path, str) and is_read_only_location(path):
        kind = "a zip file" if path.lower().endswith(".zip") else "an HTTP(S) URL"
        return (f"{path!r} is {kind}, which cannot be written; write to a local path, s3:// "
                "or gs://")
    return "open it writable (mode='r+')"


def default_block_shape(
    shape: tuple[int, ...], domain: Source | None, outputs: Sequence[Source]
) -> tuple[int, ...]:
    """Blocks when none are given: the outputs' shards, else their chunks (the write units),
    else the domain's chunks, else chunks of a sensible size."""
    ndim = len(shape)
    for attribute in ("shards", "chunks"):
        for output in outputs:
            grid = getattr(output, attribute)
            if grid is not None:
                return tuple(int(n) for n in grid[len(grid) - ndim:])
    if domain is not None and domain.chunks is not None:
        return tuple(int(n) for n in domain.chunks)
    return default_chunks(shape)


def check_block_shape(block_shape: Any, ndim: int) -> tuple[int, ...]:
    """``block_shape`` as ``ndim`` positive ints.

    Raises:
        ValueError: anything else; the message names the value.
    """
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


def normalize_halo(halo: Any, ndim: int) -> tuple[int, ...]:
    """A halo (an int for every axis, or one per axis) as ``ndim`` non-negative ints.

    Raises:
        ValueError: a wrong length or a negative entry.
    """
    values = [halo] * ndim if isinstance(halo, (int, np.integer)) else list(halo)
    if len(values) != ndim or any(int(h) != h or h < 0 for h in values):
        raise ValueError(f"halo must be {ndim} non-negative integers (or one), got {halo!r}")
    return tuple(int(h) for h in values)


def roi_bounds(roi: Any, shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``roi`` (a tuple of step-1 slices over the domain) as ``(begin, end)`` corners.

    Raises:
        ValueError: not one slice per axis, a step other than 1, or an empty region.
    """
    if isinstance(roi, slice):
        roi = (roi,)
    roi = tuple(roi)
    if len(roi) > len(shape) or not all(isinstance(s, slice) for s in roi):
        raise ValueError(f"roi must be a tuple of at most {len(shape)} slices, got {roi!r}")
    roi = roi + (slice(None),) * (len(shape) - len(roi))
    begin, end = [], []
    for axis, (item, n) in enumerate(zip(roi, shape)):
        start, stop, step = item.indices(n)
        if step != 1 or stop <= start:
            raise ValueError(
                f"roi {roi!r} must select a non-empty region with step 1 on every axis "
                f"(axis {axis} of length {n})"
            )
        begin.append(start)
        end.append(stop)
    return tuple(begin), tuple(end)


def check_write_safety(
    blocking: Blocking, outputs: Sequence[Source], ndim: int
) -> list[tuple[int, ...]]:
    """Check that no chunk of an unsharded output is written by two blocks; return the spatial
    shard shapes of the sharded outputs (their blocks are grouped per shard instead).

    Raises:
        ValueError: blocks that do not start on an output's chunk boundaries.
    """
    shards = []
    for i, output in enumerate(outputs):
        if output.shards is not None:
            shards.append(tuple(int(n) for n in output.shards[len(output.shards) - ndim:]))
            continue
        chunks = output.chunks
        if chunks is None:
            continue
        spatial = tuple(int(n) for n in chunks[len(chunks) - ndim:])
        if not blocks_align_with_chunks(blocking, spatial):
            raise ValueError(
                f"block_shape {tuple(blocking.block_shape)} does not align with the chunks "
                f"{spatial} of output {i}: every block must start on a chunk boundary (each "
                "entry a multiple of the chunk shape, and a roi starting on one), or two blocks "
                "would write one chunk and parallel writes could lose data; use e.g. "
                f"block_shape={spatial}"
            )
    return shards


def check_block_ids(block_ids: Iterable[int] | None, n_blocks: int, noun: str = "block") -> list[int]:
    """The ids to run: all when ``None``, else the given ones (order kept, repeats dropped).

    Raises:
        TypeError: an id that is not an integer.
        ValueError: an id out of range.
    """
    if block_ids is None:
        return list(range(n_blocks))
    if isinstance(block_ids, (str, bytes)):
        raise TypeError(f"{noun} ids must be integers, got {block_ids!r}")
    ids = []
    for block_id in block_ids:
        if isinstance(block_id, (bool, np.bool_)) or not isinstance(block_id, (int, np.integer)):
            raise TypeError(f"{noun} ids must be integers, got {block_id!r}")
        if not 0 <= block_id < n_blocks:
            raise ValueError(
                f"{noun} id {int(block_id)} is out of range: the run has {n_blocks} {noun}s"
            )
        ids.append(int(block_id))
    return list(dict.fromkeys(ids))


def make_batches(
    blocking: Blocking | None,
    ids: list[int],
    shard_shapes: list[tuple[int, ...]],
    num_workers: int,
    tasks_per_worker: int,
    in_process: bool,
) -> list[list[int]]:
    """The ids in batches, one task each. Blocks sharing a shard of an output are in one batch
    (a shard is rewritten whole, so two writers would lose each other's chunks); for worker
    processes batches hold several blocks, to amortize each task's round trip, while leaving
    ``max(tasks_per_worker, 8)`` tasks per worker to balance the load; threads of this process
    take batches too (a block then costs a few microseconds of bookkeeping, not a task), but
    smaller ones."""
    if shard_shapes and blocking is not None:
        wanted = set(ids)
        groups = [
            [i for i in group if i in wanted]
            for group in group_blocks_by_shards(blocking, [list(s) for s in shard_shapes])
        ]
        order = {block_id: position for position, block_id in enumerate(ids)}
        groups = sorted((g for g in groups if g), key=lambda g: order[g[0]])
    else:
        groups = [[i] for i in ids]
    tasks = num_workers * max(int(tasks_per_worker), _MIN_TASKS_PER_WORKER)
    most = _MAX_THREAD_BATCH_BLOCKS if in_process else _MAX_BATCH_BLOCKS
    target = max(1, min(most, math.ceil(len(ids) / tasks)))
    batches: list[list[int]] = []
    for group in groups:
        if batches and len(batches[-1]) + len(group) <= target:
            batches[-1].extend(group)
        else:
            batches.append(list(group))
    return batches
