"""Small helpers shared across bioimage_py.

- ``to_roi``: the slices of a block descriptor; ``full_roi``: the slices of a whole array.
- ``contiguous_transpose``: a fast C-contiguous transposed copy of a numpy array (the Rust
  kernel of ``bioimage_py._core``), e.g. to turn the (x, y, z) Fortran-ordered arrays of
  cloud-volume into (z, y, x) C-ordered ones.
- bioimage-py 0.2's block-wise helpers, with 0.2's signatures and results: ``normalize_halo``,
  ``sigma_to_halo``, ``downscale_shape``, ``derive_block_shape``, ``get_blocking`` (our Rust
  ``Blocking``) and ``group_blocks_by_shard``.
"""
from __future__ import annotations

import itertools
import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from bioimage_py import _core
from bioimage_py.blocking import Blocking, group_blocks_by_shards


class BlockLike(Protocol):
    """Anything with ``begin`` and ``end`` coordinate sequences, e.g. a ``Block``."""

    @property
    def begin(self) -> Sequence[int]: ...

    @property
    def end(self) -> Sequence[int]: ...


def to_roi(block: BlockLike) -> tuple[slice, ...]:
    """The region of ``block`` as a tuple of slices, one ``slice(begin, end)`` per axis.

    Use it to index an array or a source with a block descriptor, e.g. ``array[to_roi(block)]``
    or, with a halo, ``result[to_roi(block.inner_block_local)]``.

    Raises:
        ValueError: ``begin`` and ``end`` have different lengths.
    """
    begin, end = block.begin, block.end
    if len(begin) != len(end):
        raise ValueError(
            f"begin {list(begin)} and end {list(end)} have different numbers of axes"
        )
    return tuple(slice(int(b), int(e)) for b, e in zip(begin, end))


def contiguous_transpose(array: Any, axes: Sequence[int] | None) -> np.ndarray:
    """A new C-contiguous array equal to ``numpy.ascontiguousarray(array.transpose(axes))``.

    The copy runs in Rust with the GIL released: cache-blocked (tiles of the input's and the
    output's fastest axes), parallel for large arrays, a plain memcpy when the transposed view is
    already contiguous. Any layout works (Fortran order, strided and reversed views, offsets),
    any ndim and every dtype; items are copied as raw bytes, so the dtype, byte order included,
    is kept. Only dtypes whose items are references (``object``, ``StringDType``) go through
    numpy. Unlike ``numpy.ascontiguousarray``, the result never shares memory with ``array``.

    Args:
        array: a numpy array, or anything ``numpy.asarray`` accepts.
        axes: a permutation of ``range(array.ndim)`` (negative axes count from the end), as for
            ``numpy.transpose``; ``None`` reverses the axes.

    Returns:
        The transposed copy, shape ``tuple(array.shape[a] for a in axes)``, same dtype. A 0-d
        input gives shape ``(1,)``, as ``numpy.ascontiguousarray`` does.

    Raises:
        ValueError: ``axes`` is not a permutation of ``range(array.ndim)``; the message names it.
        TypeError: ``axes`` is not a sequence of integers.
    """
    array = np.asarray(array)
    if axes is None:
        axes = range(array.ndim - 1, -1, -1)
    try:
        entries = iter(axes)
    except TypeError:
        raise TypeError(f"axes must be a sequence of integers, got {axes!r}") from None
    axes = [_axis(axis) for axis in entries]
    if array.dtype.hasobject:
        # Items that are references (objects, StringDType's arena pointers) must be copied by
        # their dtype, not as raw bytes: numpy does that.
        normalized = _core.normalize_axes(axes, array.ndim)
        return np.array(array.transpose(normalized), order="C", ndmin=1, copy=True)
    if array.ndim == 0:
        _core.normalize_axes(axes, 0)  # only () is valid
        array, axes = array.reshape(1), [0]
    return _core.contiguous_transpose(array, axes)


def _axis(axis: Any) -> int:
    """One entry of ``axes`` as an int; like numpy, bools and floats are refused."""
    if isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"axes must be integers, got {axis!r}")
    try:
        return operator.index(axis)
    except TypeError:
        raise TypeError(f"axes must be integers, got {axis!r}") from None


def full_roi(ndim: int) -> tuple[slice, ...]:
    """The index selecting all of an ``ndim``-dimensional array: ``ndim`` times ``slice(None)``."""
    return (slice(None),) * int(ndim)


def normalize_halo(halo: int | Sequence[int], ndim: int) -> list[int]:
    """A halo as one int per axis: an int is repeated ``ndim`` times, a sequence kept (as ints).

    Raises:
        ValueError: a sequence whose length is not ``ndim``.
    """
    if isinstance(halo, numbers.Integral):
        return [int(halo)] * ndim
    per_axis = [int(h) for h in halo]
    if len(per_axis) != ndim:
        raise ValueError(f"Halo {per_axis} does not match ndim {ndim}.")
    return per_axis


def _filter_halo(sigma: float, order: int) -> int:
    # Twice the support VIGRA's multi_blockwise uses for a Gaussian derivative of this order.
    return 2 * math.ceil(3.0 * sigma + 0.5 * order + 0.5)


def sigma_to_halo(sigma: float | Sequence[float], order: int) -> int | list[int]:
    """The halo a Gaussian filter (``sigma``, derivative ``order``; 0 smooths) needs block-wise.

    ``2 * ceil(3 * sigma + order / 2 + 1/2)`` per axis, as elf (after VIGRA's
    ``multi_blockwise``) computes it.

    Returns:
        An int for a scalar ``sigma``, a list with one entry per axis for a sequence.
    """
    if isinstance(sigma, numbers.Number):
        return _filter_halo(float(sigma), order)
    return [_filter_halo(float(s), order) for s in sigma]


def downscale_shape(
    shape: Sequence[int], scale_factor: int | Sequence[int], ceil_mode: bool = True
) -> tuple[int, ...]:
    """The shape of ``shape`` downscaled by ``scale_factor`` (an int, or one int per axis).

    Each size is divided by its factor, rounded up with ``ceil_mode`` (no voxel is dropped),
    else down.

    Raises:
        ValueError: a per-axis ``scale_factor`` of another length than ``shape``, or a factor
            below 1 (naming it).
    """
    if isinstance(scale_factor, numbers.Integral):
        factors = [int(scale_factor)] * len(shape)
    else:
        factors = [int(f) for f in scale_factor]
        if len(factors) != len(shape):
            raise ValueError(
                f"scale_factor {scale_factor} does not match the dimensionality {len(shape)}."
            )
    if any(f < 1 for f in factors):
        raise ValueError(f"scale_factor must be >= 1 on every axis, got {scale_factor}")
    sizes = [int(s) for s in shape]
    if ceil_mode:
        return tuple(-(-size // f) for size, f in zip(sizes, factors))
    return tuple(size // f for size, f in zip(sizes, factors))


def derive_block_shape(source: Any, block_shape: Sequence[int] | None) -> tuple[int, ...]:
    """``block_shape`` as a tuple of ints, or, when it is ``None``, the chunks of ``source``.

    Raises:
        ValueError: ``block_shape`` is ``None`` and ``source`` has no chunks.
    """
    if block_shape is not None:
        return tuple(int(b) for b in block_shape)
    chunks = getattr(source, "chunks", None)
    if chunks is not None:
        return tuple(int(c) for c in chunks)
    raise ValueError(
        "block_shape is required for block-wise processing of an unchunked array "
        "(the source has no chunks to derive it from)."
    )


def get_blocking(
    shape: Sequence[int], block_shape: Sequence[int], roi: tuple[slice, ...] | None = None
) -> Blocking:
    """A ``Blocking`` of an array of ``shape`` into ``block_shape`` blocks, over ``roi`` if given.

    ``roi`` holds one slice per axis; a missing start is 0, a missing stop the size, and a stop
    past the array is clipped to it (numpy's slicing). Blocks tile ``roi`` from its start, so
    block ids, blocks and halo-free regions are those of bioimage-py 0.2. One difference: a block
    with a halo reads context outside ``roi`` (clipped to the array only), 0.2 clipped it to
    ``roi``.

    Raises:
        ValueError: ``block_shape`` or ``roi`` of another length than ``shape``, a block size
            below 1, a negative start or a start past the stop, a slice with a step.
    """
    sizes = [int(s) for s in shape]
    if roi is None:
        return Blocking(sizes, [int(b) for b in block_shape])
    roi = tuple(roi)
    if len(roi) != len(sizes):
        raise ValueError(f"roi {roi} has {len(roi)} entries, the shape {tuple(sizes)} {len(sizes)}")
    begin, end = [], []
    for axis, (region, size) in enumerate(zip(roi, sizes)):
        if not isinstance(region, slice) or region.step not in (None, 1):
            raise ValueError(f"roi entry {region!r} (axis {axis}) must be a slice without a step")
        start = 0 if region.start is None else int(region.start)
        stop = size if region.stop is None else min(int(region.stop), size)
        if start < 0 or start > stop:
            raise ValueError(
                f"roi entry {region!r} (axis {axis}) must satisfy 0 <= start <= stop for an "
                f"axis of size {size}"
            )
        begin.append(start)
        end.append(stop)
    return Blocking(sizes, [int(b) for b in block_shape], begin, end)


def group_blocks_by_shard(
    blocking: Blocking, outputs: Sequence[Any], block_ids: Sequence[int]
) -> list[list[int]] | None:
    """Group ``block_ids`` so that every shard of every sharded output is written by one group.

    Two blocks that touch a common shard of any output are in one group, transitively through
    the blocks of ``block_ids``. The shard grid starts at 0 and covers the trailing (spatial)
    axes of each output's ``shards``: a leading channel axis is written whole by every block.

    Returns:
        The groups, each an ascending list of ids, ordered by their smallest id; ``None`` when
        no output is sharded (every block may go its own way); ``[]`` for no ``block_ids``.
    """
    shard_shapes = [
        tuple(getattr(out, "shards", None) or ()) for out in outputs
    ]
    shard_shapes = [shape for shape in shard_shapes if shape]
    if not shard_shapes:
        return None
    ids = [int(b) for b in block_ids]
    if not ids:
        return []
    ndim = len(blocking.block_shape)
    spatial = [tuple(int(s) for s in shape[-ndim:]) for shape in shard_shapes]
    if sorted(ids) == list(range(blocking.number_of_blocks)):
        # Every block once: the Rust grouping of the whole blocking is the answer.
        return group_blocks_by_shards(blocking, spatial)
    return _group_subset_by_shard(blocking, spatial, ids)


def _group_subset_by_shard(
    blocking: Blocking, shard_shapes: list[tuple[int, ...]], ids: list[int]
) -> list[list[int]]:
    """Groups of a subset of the blocks: blocks connect only through blocks of the subset."""
    parent = list(range(len(ids)))  # union-find over positions in ids

    def find(pos: int) -> int:
        while parent[pos] != pos:
            parent[pos] = parent[parent[pos]]
            pos = parent[pos]
        return pos

    first_writer: dict[tuple[int, ...], int] = {}
    for pos, block_id in enumerate(ids):
        block = blocking.get_block(block_id)
        for output, shard in enumerate(shard_shapes):
            cells = [
                range(b // s, -(-e // s)) for b, e, s in zip(block.begin, block.end, shard)
            ]
            for cell in itertools.product(*cells):
                owner = first_writer.setdefault((output, *cell), pos)
                root, other = find(pos), find(owner)
                if root != other:
                    parent[max(root, other)] = min(root, other)
    groups: dict[int, list[int]] = {}
    for pos, block_id in enumerate(ids):
        groups.setdefault(find(pos), []).append(block_id)
    return sorted((sorted(group) for group in groups.values()), key=lambda group: group[0])
