"""``ExpandDimsSource``: a source with length-1 axes inserted, like ``numpy.expand_dims``."""
from __future__ import annotations

import operator
from typing import Any

import numpy as np

from bioimage_py.sources.base import Source
from bioimage_py.sources.dispatch import SourceLike
from bioimage_py.wrapper.base import WrapperSource, register_wrapper

__all__ = ["ExpandDimsSource"]


@register_wrapper
class ExpandDimsSource(WrapperSource):
    """``np.expand_dims(source, axis)`` as a source, e.g. a channel axis for a network's input.

    ``axis`` counts positions in the result (negative ones from its end), as in numpy. Chunks and
    shards are the wrapped source's with 1 at the new axes.

    Args:
        source: the source to expand.
        axis: the position of the new axis, or a tuple of positions.

    Raises:
        TypeError: an axis that is not an integer.
        ValueError: an axis out of range for the result's number of axes, or a repeated axis.
    """

    def __init__(self, source: SourceLike, axis: int | tuple[int, ...]) -> None:
        super().__init__(source)
        entries = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
        try:
            entries = tuple(operator.index(a) for a in entries)
        except TypeError:
            raise TypeError(f"axis must be an int or a tuple of ints, got {axis!r}") from None
        ndim = self._source.ndim + len(entries)
        for a in entries:
            if not -ndim <= a < ndim:
                raise ValueError(
                    f"axis {a} is out of range for the {ndim} axes of the expanded source"
                )
        self._new_axes = tuple(sorted(a % ndim for a in entries))
        if len(set(self._new_axes)) != len(self._new_axes):
            raise ValueError(f"repeated axis in {axis!r}")
        self._axis = list(entries) if isinstance(axis, (tuple, list)) else entries[0]
        self._old_axes = tuple(a for a in range(ndim) if a not in self._new_axes)
        if self._static_shape is not None:
            self._static_shape = self._expand(self._static_shape)

    @property
    def axis(self) -> int | tuple[int, ...]:
        """The ``axis`` argument as given (a tuple when several)."""
        return tuple(self._axis) if isinstance(self._axis, list) else self._axis

    @property
    def shape(self) -> tuple[int, ...]:
        return self._expand(self._source.shape)

    @property
    def chunks(self) -> tuple[int, ...] | None:
        chunks = self._source.chunks
        return None if chunks is None else self._expand(chunks)

    @property
    def shards(self) -> tuple[int, ...] | None:
        shards = self._source.shards
        return None if shards is None else self._expand(shards)

    @property
    def params(self) -> dict[str, Any]:
        return {"axis": self._axis}

    @classmethod
    def from_params(cls, source: Source, params: dict[str, Any]) -> ExpandDimsSource:
        """``params["axis"]`` is an int or a list of ints."""
        params = dict(params)
        axis = params.pop("axis")
        return cls(source, tuple(axis) if isinstance(axis, list) else axis, **params)

    def _expand(self, sizes: tuple[int, ...]) -> tuple[int, ...]:
        """``sizes`` of the wrapped source's axes with 1 inserted at the new axes."""
        out = [1] * (len(sizes) + len(self._new_axes))
        for axis, size in zip(self._old_axes, sizes):
            out[axis] = size
        return tuple(out)

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        region = tuple(s.stop - s.start for s in roi)
        if any(region[a] == 0 for a in self._new_axes):  # e.g. src[1:] on a new axis: no read
            return np.empty(region, self.dtype)
        return np.expand_dims(self._read(tuple(roi[a] for a in self._old_axes)), self._new_axes)
