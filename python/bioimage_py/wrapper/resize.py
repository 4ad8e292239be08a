"""``ResizedSource``: a source resampled to another shape (nearest or linear), computed per region.

Convention: pixel centres, as ``scipy.ndimage.zoom(..., grid_mode=True, mode="nearest")`` and
``skimage.transform.resize`` use. Pixel ``i`` of an axis of ``n`` pixels covers ``[i, i + 1)``;
resizing an axis from ``n_in`` to ``n_out`` pixels stretches ``[0, n_in)`` onto ``[0, n_out)``,
so output pixel ``o`` samples the input at ``x = (o + 0.5) * n_in / n_out - 0.5`` (in pixel-index
units). A mask made at a lower resolution thus lands on the pixels it covers at full resolution
(upsampling by 2 maps input pixel ``i`` to output pixels ``2i`` and ``2i + 1``), with no
half-pixel shift. Positions beyond the outermost centres take the edge values.
"""
from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from bioimage_py.sources.dispatch import SourceLike
from bioimage_py.wrapper.base import WrapperSource, register_wrapper

__all__ = ["ResizedSource"]


@register_wrapper
class ResizedSource(WrapperSource):
    """A source resampled to ``shape`` with pixel-centre alignment (see the module docstring).

    Reading a region computes only that region and equals resizing the whole source and slicing;
    no resized volume is ever materialized. It reads the bounding box of the source pixels it
    needs (for linear interpolation, the neighbours of the outermost samples too), so a strong
    nearest-neighbour downsampling also reads the pixels skipped between samples.

    ``order=0`` (nearest): output pixel ``o`` takes input pixel ``floor((o + 0.5) * n_in /
    n_out)``, the one containing its centre (computed in integers, so exact; a centre on a pixel
    border takes the later pixel, as scipy does). The dtype is preserved: use it for label images
    and masks. ``order=1`` (linear): separable linear interpolation computed in float64; float
    sources keep their dtype, integer sources are rounded to the nearest integer (halves away
    from zero, as scipy does for integer output) and keep theirs, bool sources become ``True``
    where the interpolated value is at least 0.5. For float output from integer data, wrap a
    ``NormalizeSource`` first.

    Chunks and shards are the wrapped source's when ``shape`` equals its shape, else ``None``.

    Args:
        source: the source to resize.
        shape: the output shape, one non-negative size per axis of the source.
        order: 0 (nearest, default) or 1 (linear).

    Raises:
        TypeError: sizes or ``order`` that are not integers; ``order=1`` on non-numeric data.
        ValueError: ``shape`` with another number of axes than the source, negative sizes, a
            non-empty size for an empty axis; an ``order`` other than 0 or 1.
    """

    def __init__(self, source: SourceLike, shape: Sequence[int], order: int = 0) -> None:
        super().__init__(source)
        in_shape = self._source.shape
        self._static_shape = _check_shape(shape, in_shape)
        if isinstance(order, (bool, np.bool_)) or not isinstance(order, (int, np.integer)):
            raise TypeError(f"order must be the integer 0 (nearest) or 1 (linear), got {order!r}")
        if order not in (0, 1):
            raise ValueError(f"order must be 0 (nearest) or 1 (linear), got {order}")
        if order == 1 and self._source.dtype.kind not in "biuf":
            raise TypeError(f"linear resizing needs numeric data, not {self._source.dtype}")
        self._order = int(order)

    @property
    def order(self) -> int:
        """0 (nearest) or 1 (linear)."""
        return self._order

    @property
    def shape(self) -> tuple[int, ...]:
        return self._static_shape

    @property
    def chunks(self) -> tuple[int, ...] | None:
        return self._source.chunks if self._static_shape == self._source.shape else None

    @property
    def shards(self) -> tuple[int, ...] | None:
        return self._source.shards if self._static_shape == self._source.shape else None

    @property
    def params(self) -> dict[str, Any]:
        return {"shape": list(self._static_shape), "order": self._order}

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        region = tuple(s.stop - s.start for s in roi)
        if 0 in region:
            return np.empty(region, self.dtype)
        if not roi:  # a 0-d source: nothing to resample
            return self._read(roi)
        axes = zip(roi, self._source.shape, self._static_shape)
        if self._order == 0:
            indices = [_nearest(s.start, s.stop, n_in, n_out) for s, n_in, n_out in axes]
            box = tuple(slice(int(i[0]), int(i[-1]) + 1) for i in indices)  # indices ascend
            return self._read(box)[np.ix_(*(i - b.start for i, b in zip(indices, box)))]
        return self._linear(roi)

    def _linear(self, roi: tuple[slice, ...]) -> np.ndarray:
        """Separable linear interpolation of ``roi``, axis by axis in a fixed order (so every
        region rounds exactly as the whole volume would)."""
        weights = [
            _linear(s.start, s.stop, n_in, n_out)
            for s, n_in, n_out in zip(roi, self._source.shape, self._static_shape)
        ]
        unchanged = [n_in == n_out for n_in, n_out in zip(self._source.shape, self._static_shape)]
        box = tuple(
            s if same else slice(int(low[0]), int(high[-1]) + 1)
            for s, same, (low, high, _) in zip(roi, unchanged, weights)
        )
        data = self._read(box).astype(np.float64)
        for axis, (low, high, w) in enumerate(weights):
            if unchanged[axis]:  # the identity: the box already is the region on this axis
                continue
            start = box[axis].start
            w = w.reshape((-1,) + (1,) * (data.ndim - axis - 1))
            a = np.take(data, low - start, axis=axis)
            b = np.take(data, high - start, axis=axis)
            mixed = a * (1 - w) + b * w
            # On a sample point the value is the sample's alone: no NaN or inf from a neighbour.
            np.copyto(mixed, a, where=np.broadcast_to(w == 0, mixed.shape))
            data = mixed
        return _to_dtype(data, self.dtype)


def _check_shape(shape: Any, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` as a tuple of ints valid for resizing a source of ``in_shape``."""
    try:
        sizes = tuple(operator.index(n) for n in shape)
    except TypeError:
        raise TypeError(f"shape must be a sequence of ints, got {shape!r}") from None
    if len(sizes) != len(in_shape):
        raise ValueError(
            f"shape {sizes} has {len(sizes)} axes but the source has {len(in_shape)} "
            f"(shape {in_shape})"
        )
    for axis, (n_out, n_in) in enumerate(zip(sizes, in_shape)):
        if n_out < 0:
            raise ValueError(f"shape {sizes} has a negative size on axis {axis}")
        if n_in == 0 and n_out > 0:
            raise ValueError(
                f"cannot resize the empty axis {axis} of the source (shape {in_shape}) to {n_out}"
            )
    return sizes


def _nearest(start: int, stop: int, n_in: int, n_out: int) -> np.ndarray:
    """Input pixels for output pixels ``start:stop``: ``floor((o + 0.5) * n_in / n_out)``."""
    o = np.arange(start, stop, dtype=np.int64)
    return np.minimum((2 * o + 1) * n_in // (2 * n_out), n_in - 1)


def _linear(
    start: int, stop: int, n_in: int, n_out: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For output pixels ``start:stop``: the input pixels below and above each sample position
    and the weight of the one above (positions clamped to the outermost centres)."""
    x = (np.arange(start, stop, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    x = np.clip(x, 0, n_in - 1)
    low = np.floor(x).astype(np.int64)
    high = np.minimum(low + 1, n_in - 1)
    return low, high, x - low


def _to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Interpolated float64 ``values`` as ``dtype``: integers rounded, halves away from zero."""
    if dtype.kind == "f":
        return values.astype(dtype)
    rounded = np.where(values >= 0, np.floor(values + 0.5), np.ceil(values - 0.5))
    return rounded.astype(dtype)
