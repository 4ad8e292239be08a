"""``RoiSource``: a view of a sub-region of a source, indexed from the region's origin."""
from __future__ import annotations

from typing import Any

import numpy as np

from bioimage_py._core import normalize_index
from bioimage_py.sources.base import Source
from bioimage_py.sources.dispatch import SourceLike
from bioimage_py.wrapper.base import WrapperSource, register_wrapper

__all__ = ["RoiSource"]


@register_wrapper
class RoiSource(WrapperSource):
    """The region ``roi`` of a source as a source of its own: ``RoiSource(src, roi)[index]``
    equals ``np.asarray(src)[roi][index]``.

    ``roi`` is numpy slicing without steps: slices (and at most one ``...``), one per leading
    axis, missing trailing axes taken whole; negative bounds count from the end and bounds clamp
    to the shape, as in numpy (so a region may be empty). Chunks and shards are the wrapped
    source's when the region starts on their grid, else ``None``.

    Args:
        source: the source to view.
        roi: a slice or a tuple of slices, e.g. ``np.s_[10:20, :, 5:]`` or
            ``bioimage_py.to_roi(block)``.

    Raises:
        TypeError: ``roi`` holds something other than slices and ``...`` (ints included: a view
            keeps every axis), or non-integer slice bounds.
        ValueError: a slice step other than 1; more entries than axes.
    """

    def __init__(self, source: SourceLike, roi: slice | tuple[slice, ...]) -> None:
        super().__init__(source)
        self._roi = _normalize_roi(roi, self._source.shape)
        self._static_shape = tuple(s.stop - s.start for s in self._roi)

    @property
    def roi(self) -> tuple[slice, ...]:
        """The region in the wrapped source: one ``slice(start, stop)`` per axis."""
        return self._roi

    @property
    def shape(self) -> tuple[int, ...]:
        return self._static_shape

    @property
    def chunks(self) -> tuple[int, ...] | None:
        return _grid_if_aligned(self._source.chunks, self._roi)

    @property
    def shards(self) -> tuple[int, ...] | None:
        return _grid_if_aligned(self._source.shards, self._roi)

    @property
    def params(self) -> dict[str, Any]:
        return {"roi": [[s.start, s.stop] for s in self._roi]}

    @classmethod
    def from_params(cls, source: Source, params: dict[str, Any]) -> RoiSource:
        """``params["roi"]`` is a list of ``[start, stop]`` pairs."""
        params = dict(params)
        roi = params.pop("roi")
        return cls(source, tuple(slice(start, stop) for start, stop in roi), **params)

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        return self._read(
            tuple(
                slice(outer.start + inner.start, outer.start + inner.stop)
                for outer, inner in zip(self._roi, roi)
            )
        )


def _normalize_roi(roi: Any, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """``roi`` as one in-bounds ``slice(start, stop)`` per axis of ``shape``, as numpy clamps."""
    entries = roi if isinstance(roi, tuple) else (roi,)
    for entry in entries:
        if not (isinstance(entry, slice) or entry is Ellipsis):
            raise TypeError(
                f"a roi holds slices (and at most one ...), got {entry!r} in {roi!r}"
            )
    if sum(entry is not Ellipsis for entry in entries) > len(shape):
        raise ValueError(f"the roi {roi!r} has more entries than the source's {len(shape)} axes")
    try:
        normalized, _, _ = normalize_index(entries, shape)
    except (TypeError, ValueError) as error:
        raise type(error)(f"invalid roi {roi!r} for shape {shape}: {error}") from None
    return tuple(normalized)


def _grid_if_aligned(
    grid: tuple[int, ...] | None, roi: tuple[slice, ...]
) -> tuple[int, ...] | None:
    """``grid`` (chunks or shards) when every axis of ``roi`` starts on it, else ``None``."""
    if grid is None or any(s.start % g for s, g in zip(roi, grid)):
        return None
    return grid
