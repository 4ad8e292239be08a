"""Python-callable index normalization: thin wrappers over the Rust implementation.

Every ``Source`` read and write goes through ``_core.normalize_index`` once; these helpers exist
for code (and users) that need the pieces separately.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from bioimage_py import _core


def normalize_index(
    index: Any, shape: tuple[int, ...]
) -> tuple[tuple[slice, ...], tuple[int, ...]]:
    """Normalize a numpy basic index to ``(roi, to_squeeze)``.

    ``roi`` holds one in-bounds, step-1 ``slice(start, stop)`` per axis; ``to_squeeze`` the axes
    that integer entries selected. Errors are those of ``bioimage_py._core.normalize_index``.
    """
    roi, to_squeeze, _ = _core.normalize_index(index, tuple(shape))
    return roi, to_squeeze


def squeeze_singletons(item: np.ndarray, to_squeeze: tuple[int, ...]) -> Any:
    """Remove the integer-indexed axes ``to_squeeze`` from a region read with a normalized roi.

    When every axis is squeezed the result is a numpy scalar, as numpy returns for ``a[i, j]``.
    """
    if not to_squeeze:
        return item
    if len(to_squeeze) == np.ndim(item):
        return np.asarray(item)[(0,) * len(to_squeeze)]
    return np.squeeze(item, axis=to_squeeze)


def slice_to_start_stop(s: slice, size: int) -> tuple[int, int]:
    """``(start, stop)`` of a step-1 slice on an axis of ``size``, clamped as numpy does."""
    return _core.slice_to_start_stop(s, size)


def int_to_start_stop(i: int, size: int) -> tuple[int, int]:
    """``(start, start + 1)`` for integer index ``i`` on an axis of ``size``; negatives wrap."""
    return _core.int_to_start_stop(i, size)
