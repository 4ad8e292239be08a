"""Small helpers shared across bioimage_py.

- ``to_roi``: the slices of a block descriptor.
- ``contiguous_transpose``: a fast C-contiguous transposed copy of a numpy array (the Rust
  kernel of ``bioimage_py._core``), e.g. to turn the (x, y, z) Fortran-ordered arrays of
  cloud-volume into (z, y, x) C-ordered ones.
"""
from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from bioimage_py import _core


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
