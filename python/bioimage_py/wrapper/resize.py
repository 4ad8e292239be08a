"""``ResizedSource``: a source resampled to another shape, computed per region read.

Two conventions:

* ``grid_mode=False`` (default, bioimage-py 0.2's): corner-aligned sampling through
  bioimage-cpp. Output voxel ``o`` samples the input at ``x = o * n_in / n_out`` per axis (an
  affine with a diagonal matrix), interpolated with order 0-5 (``bioimage_py.transformation``);
  positions beyond the last input voxel (``x > n_in - 1``, e.g. the last voxel when upsampling
  by 2 with orders 0, 1 and 3) take ``fill_value``. ``anti_aliasing`` pre-smooths the input with
  a Gaussian of sigma ``(n_in / n_out - 1) / 2`` per downsampled axis. 2D and 3D sources of the
  dtypes bioimage-cpp handles (bool goes through uint8). Values equal 0.2's whole-volume read
  bit for bit, for every region read (see ``bioimage_py._resample``), and order 0 copies values,
  so 64-bit labels stay exact.
* ``grid_mode=True``: pixel-centre aligned, as ``scipy.ndimage.zoom(..., grid_mode=True,
  mode="nearest")`` and ``skimage.transform.resize``. Pixel ``i`` of an axis of ``n`` pixels
  covers ``[i, i + 1)``; resizing an axis from ``n_in`` to ``n_out`` pixels stretches
  ``[0, n_in)`` onto ``[0, n_out)``, so output pixel ``o`` samples the input at
  ``x = (o + 0.5) * n_in / n_out - 0.5``. A mask made at a lower resolution thus lands on the
  pixels it covers at full resolution (upsampling by 2 maps input pixel ``i`` to output pixels
  ``2i`` and ``2i + 1``), with no half-pixel shift. Positions beyond the outermost centres take
  the edge values. Orders 0 and 1, any number of axes, computed in numpy.
"""
from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from bioimage_py import _resample
from bioimage_py.sources.dispatch import SourceLike
from bioimage_py.wrapper.base import WrapperSource, register_wrapper

__all__ = ["ResizedSource"]

_ORDERS = range(6)


@register_wrapper
class ResizedSource(WrapperSource):
    """A source resampled to ``shape`` (see the module docstring for the two conventions).

    Reading a region computes only that region; no resized volume is ever materialized, and any
    tiling of reads equals one read of the whole.

    ``grid_mode=False`` (default): bioimage-py 0.2's resize, orders 0-5 (0 nearest: use it for
    labels; 1 linear; 3 cubic convolution; 2, 4, 5 smoothing B-splines), optional Gaussian
    anti-aliasing (for intensity images when downsampling), ``fill_value`` where the output
    samples beyond the input. The dtype is preserved (integers rounded and clamped). Chunks are
    the wrapped source's scaled into the output (0.2's), shards ``None``.

    ``grid_mode=True``: pixel-centre aligned, orders 0 and 1 only, any number of axes, edge
    values beyond the outermost centres. ``order=0`` takes input pixel ``floor((o + 0.5) * n_in
    / n_out)`` (computed in integers, so exact; a centre on a pixel border takes the later pixel,
    as scipy does). ``order=1``: separable linear interpolation computed in float64; float
    sources keep their dtype, integer sources are rounded to the nearest integer (halves away
    from zero, as scipy does for integer output) and keep theirs, bool sources become ``True``
    where the interpolated value is at least 0.5. Chunks and shards are the wrapped source's when
    ``shape`` equals its shape, else ``None``.

    Args:
        source: the source to resize.
        shape: the output shape, one size per axis of the source.
        order: the interpolation order: 0-5 (``grid_mode=False``), 0 or 1 (``grid_mode=True``).
        anti_aliasing: pre-smooth downsampled axes (``grid_mode=False`` only).
        fill_value: the value where the output samples beyond the input (``grid_mode=False``
            only; grid mode extends the edges).
        grid_mode: pixel-centre alignment instead of 0.2's corner alignment.

    Raises:
        TypeError: sizes or ``order`` that are not integers; a dtype the mode cannot resample
            (``grid_mode=False``: bioimage-cpp's integer and float types and bool, and for
            anti-aliasing bool, uint8, uint16, float32, float64; ``grid_mode=True`` and
            ``order=1``: numeric data); a ``fill_value`` that is not a number.
        ValueError: ``shape`` with another number of axes than the source, negative sizes, a
            non-empty size for an empty axis; an ``order`` out of range; ``grid_mode=False``: a
            source that is not 2D or 3D, an empty size, a ``fill_value`` the dtype cannot hold;
            ``grid_mode=True`` with ``anti_aliasing`` or a non-zero ``fill_value``.
    """

    def __init__(
        self,
        source: SourceLike,
        shape: Sequence[int],
        *,
        order: int = 0,
        anti_aliasing: bool = False,
        fill_value: int | float = 0,
        grid_mode: bool = False,
    ) -> None:
        super().__init__(source)
        in_shape = self._source.shape
        self._shape = _check_shape(shape, in_shape)
        self._static_shape = self._shape
        self._grid_mode = bool(grid_mode)
        self._anti_aliasing = bool(anti_aliasing)
        dtype = self._source.dtype
        if self._grid_mode:
            self._order = _check_grid_order(order, dtype)
            if self._anti_aliasing:
                raise ValueError("grid_mode=True does not anti-alias; use grid_mode=False")
            if fill_value != 0:
                raise ValueError(
                    f"grid_mode=True extends the edge values and takes no fill_value, got "
                    f"{fill_value!r}; use grid_mode=False"
                )
            self._fill_value: int | float = 0
            return
        self._order = _resample.check_order(order, _ORDERS)
        if len(in_shape) not in (2, 3):
            raise ValueError(
                f"ResizedSource resamples 2D and 3D sources, got {len(in_shape)}D (shape "
                f"{in_shape}); grid_mode=True resizes any number of axes (orders 0 and 1)"
            )
        if 0 in self._shape:
            raise ValueError(
                f"shape {self._shape} has an empty axis; ResizedSource needs sizes >= 1 "
                "(grid_mode=True allows empty outputs)"
            )
        _resample.check_dtype(dtype, "ResizedSource")
        self._fill_value = _resample.check_fill_value(fill_value, dtype)
        # 0.2's scale and frame: the whole output read from the whole input, translation 0.
        self._scale = tuple(n_in / float(n_out) for n_in, n_out in zip(in_shape, self._shape))
        linear = np.diag(self._scale)
        sigma = _resample.anti_aliasing_sigma(linear)
        self._sigma = sigma if self._anti_aliasing and np.any(sigma > 0) else None
        if self._sigma is not None:
            _resample.check_smoothing_dtype(dtype, "ResizedSource(anti_aliasing=True)")
        self._frame = _resample.Frame(
            linear=linear,
            origin=np.zeros(len(in_shape)),
            out_origin=(0,) * len(in_shape),
            region_start=(0,) * len(in_shape),
            region_stop=in_shape,
            exact=_resample.walk_is_exact(linear, np.zeros(len(in_shape)), self._shape),
        )

    @property
    def order(self) -> int:
        """The interpolation order."""
        return self._order

    @property
    def grid_mode(self) -> bool:
        """Pixel-centre alignment (``True``) or 0.2's corner alignment (``False``)."""
        return self._grid_mode

    @property
    def scale(self) -> tuple[float, ...]:
        """Per axis, the input size over the output size (input voxels per output voxel)."""
        return tuple(n_in / float(n_out) if n_out else math.inf
                     for n_in, n_out in zip(self._source.shape, self._shape))

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def chunks(self) -> tuple[int, ...] | None:
        """Grid mode: the wrapped chunks when the shape is unchanged, else ``None``. Otherwise
        the wrapped chunks scaled into the output (at least 1), as 0.2 reports them."""
        chunks = self._source.chunks
        if self._grid_mode:
            return chunks if self._shape == self._source.shape else None
        if chunks is None:
            return None
        return tuple(
            max(1, math.ceil(c * n_out / float(n_in)))
            for c, n_in, n_out in zip(chunks, self._source.shape, self._shape)
        )

    @property
    def shards(self) -> tuple[int, ...] | None:
        """Grid mode: the wrapped shards when the shape is unchanged, else ``None``. Otherwise
        ``None`` (input shards do not map onto the output grid)."""
        if self._grid_mode and self._shape == self._source.shape:
            return self._source.shards
        return None

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "shape": list(self._shape),
            "order": self._order,
            "anti_aliasing": self._anti_aliasing,
            "fill_value": self._fill_value,
        }
        # Only when set, so default specs stay 0.2's (0.2 reopens them).
        if self._grid_mode:
            params["grid_mode"] = True
        return params

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        if self._grid_mode:
            return self._grid_getitem(roi)
        ndim = len(roi)
        return _resample.resample(
            lambda region: self._source[region], self._source.dtype, self._frame, roi,
            order=self._order, fill_value=self._fill_value, sigma=self._sigma,
            halo=[self._order + 1] * ndim,
        )

    # --- grid mode ----------------------------------------------------------------------------

    def _grid_getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        region = tuple(s.stop - s.start for s in roi)
        if 0 in region:
            return np.empty(region, self.dtype)
        if not roi:  # a 0-d source: nothing to resample
            return self._read(roi)
        axes = zip(roi, self._source.shape, self._shape)
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
            for s, n_in, n_out in zip(roi, self._source.shape, self._shape)
        ]
        unchanged = [n_in == n_out for n_in, n_out in zip(self._source.shape, self._shape)]
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


def _check_grid_order(order: Any, dtype: np.dtype) -> int:
    """Grid mode's order: the integer 0 or 1 (1 needs numeric data)."""
    if isinstance(order, (bool, np.bool_)) or not isinstance(order, (int, np.integer)):
        raise TypeError(f"order must be the integer 0 (nearest) or 1 (linear), got {order!r}")
    if order not in (0, 1):
        raise ValueError(f"order must be 0 (nearest) or 1 (linear), got {order}")
    if order == 1 and dtype.kind not in "biuf":
        raise TypeError(f"linear resizing needs numeric data, not {dtype}")
    return int(order)


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
