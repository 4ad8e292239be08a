"""Block-wise affine resampling that reproduces bioimage-py 0.2's whole-volume values exactly.

0.2 resamples a region by calling ``bioimage_cpp.transformation`` on the input region it needs
(grown by a halo), with the affine shifted into that region's frame. Two things make 0.2's
results depend on *which* region is read, so 0.2's block-wise reads differ from its whole-volume
read at a few voxels (nearest-neighbour ties, the last bits of floats, the smoothed values):

* bioimage-cpp walks the output grid adding the matrix columns to a running input coordinate
  (``c += m[:, k]`` per step), so a voxel's coordinate carries the rounding of every step since
  the region's first voxel: another first voxel, another rounding.
* bioimage-cpp's Gaussian smoothing (anti-aliasing) computes the bulk of each row eight voxels
  at a time (AVX2, fused multiply-adds) and the remainder near the row's end one by one, with
  different rounding, so a smoothed voxel's last bits depend on where the region starts and ends.

Here every read uses the coordinates of one fixed *frame* (for a wrapper: 0.2's read of the whole
output) and recomputes them exactly as bioimage-cpp accumulates them there, then shifts them by
an integer into the region read (exact in floating point). Smoothing reads a region whose start
is congruent to the frame's modulo the vector width and that reaches far enough past the voxels
used, so each smoothed voxel takes the code path it takes in the frame. A region thus yields the
frame's values bit for bit: any tiling of reads equals one read. Nearest-neighbour (order 0)
samples are gathered by index instead of through bioimage-cpp, whose float64 arithmetic rounds
64-bit labels above 2**53 (order 0 never invents a label id here).

Interpolation (orders 1-5) and smoothing run in bioimage-cpp, which releases the GIL: large reads
are split into slabs of output planes computed on a thread pool (the same values by construction).
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np

__all__ = [
    "ENGINE_DTYPES",
    "SMOOTHING_DTYPES",
    "Frame",
    "anti_aliasing_sigma",
    "check_dtype",
    "check_fill_value",
    "check_order",
    "check_smoothing_dtype",
    "frame_for_region",
    "resample",
    "sample_coordinates",
    "transform_coordinate",
    "transform_roi_with_affine",
    "walk_coordinates",
    "walk_is_exact",
]

# Dtypes bioimage-cpp's samplers take (bool goes through uint8, as 0.2 does).
ENGINE_DTYPES = tuple(
    np.dtype(name)
    for name in (
        "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
        "float32", "float64",
    )
)
# Dtypes bioimage-cpp's Gaussian smoothing takes (bool goes through uint8).
SMOOTHING_DTYPES = tuple(np.dtype(name) for name in ("uint8", "uint16", "float32", "float64"))
# Dtypes the engine takes through another one: bool as uint8 (as 0.2 does); float16 as float32
# (which holds every float16 exactly), the result rounded back to float16.
_THROUGH = {np.dtype(bool): np.dtype(np.uint8), np.dtype(np.float16): np.dtype(np.float32)}

# bioimage-cpp smooths axes whose sigma is 0 with this tiny sigma (its filter rejects 0); 0.2
# passes sigmas through bioimage_cpp.transformation.resample, which does so.
_NO_SMOOTH_SIGMA = 1e-2
# Voxels bioimage-cpp's vectorized convolution computes together; see ``_smoothing_region``.
_VECTOR_WIDTH = 8
# Coordinates are exact (any summation order gives the same double) when every matrix entry is
# a multiple of 2**-_DYADIC_BITS and every partial sum stays below 2**(52 - _DYADIC_BITS).
_DYADIC_BITS = 30
# Reads with at least this many output voxels are split into slabs computed in parallel.
_PARALLEL_VOXELS = 1 << 17
# Rows from which the last-axis walk runs vectorized over them (see _last_axis_major_walk).
_VECTOR_WALK_MIN = 256
# Output voxels per slab: 6 MiB of float64 coordinates in 3D.
_SLAB_VOXELS = 1 << 18


def check_order(order: Any, allowed: range) -> int:
    """``order`` as an int in ``allowed``.

    Raises:
        TypeError: not an integer (bools included).
        ValueError: outside ``allowed``.
    """
    if isinstance(order, (bool, np.bool_)) or not isinstance(order, (int, np.integer)):
        raise TypeError(f"order must be an integer in {allowed.start}-{allowed.stop - 1}, got {order!r}")
    if order not in allowed:
        raise ValueError(f"order must be in {allowed.start}-{allowed.stop - 1}, got {order}")
    return int(order)


def check_dtype(dtype: np.dtype, owner: str) -> None:
    """Raise ``TypeError`` unless bioimage-cpp samples ``dtype`` (or it is bool or float16)."""
    if dtype not in _THROUGH and dtype not in ENGINE_DTYPES:
        supported = ", ".join(["bool", "float16", *(str(d) for d in ENGINE_DTYPES)])
        raise TypeError(f"{owner} resamples {supported} data, not {dtype}")


def check_smoothing_dtype(dtype: np.dtype, owner: str) -> None:
    """Raise ``TypeError`` unless bioimage-cpp smooths ``dtype`` (bool goes through uint8)."""
    if _engine_dtype(dtype) not in SMOOTHING_DTYPES:
        supported = ", ".join(["bool", "float16", *(str(d) for d in SMOOTHING_DTYPES)])
        raise TypeError(f"{owner} supports {supported} data, not {dtype}")


def check_fill_value(fill_value: Any, dtype: np.dtype) -> int | float:
    """``fill_value`` as a JSON-able Python number, checked to be representable in ``dtype``.

    Raises:
        TypeError: not a real number.
        ValueError: a value the data type cannot hold (bool data is filled through uint8).
    """
    if isinstance(fill_value, (bool, np.bool_)):
        fill_value = int(fill_value)
    if not isinstance(fill_value, (int, float, np.integer, np.floating)):
        raise TypeError(f"fill_value must be a real number, got {fill_value!r}")
    value = fill_value.item() if isinstance(fill_value, np.generic) else fill_value
    try:
        _typed_fill(value, dtype)
    except (OverflowError, ValueError):
        raise ValueError(
            f"fill_value {value!r} cannot be represented in the data type {dtype}"
        ) from None
    return value


def _engine_dtype(dtype: np.dtype) -> np.dtype:
    return _THROUGH.get(np.dtype(dtype), np.dtype(dtype))


def _typed_fill(fill_value: int | float, dtype: np.dtype) -> np.generic:
    """The fill value as bioimage-cpp receives it (``dtype.type(fill_value)``)."""
    return _engine_dtype(dtype).type(fill_value)


def anti_aliasing_sigma(linear: np.ndarray) -> np.ndarray:
    """The per-input-axis Gaussian sigma 0.2 pre-smooths with: ``max(0, (stretch - 1) / 2)`` where
    ``stretch`` is the length of the matrix row of that input axis (skimage's heuristic, as
    ``bioimage_cpp.transformation.compute_anti_aliasing_sigma``)."""
    stretch = np.sqrt((linear**2).sum(axis=1))
    return np.maximum(0.0, (stretch - 1.0) / 2.0)


def transform_coordinate(coord: Sequence[float], matrix: np.ndarray) -> tuple[float, ...]:
    """``matrix`` (homogeneous, ``(ndim + 1, ndim + 1)`` or ``(ndim, ndim + 1)``) applied to one
    point: ``sum_j coord[j] * matrix[i, j] + matrix[i, -1]`` per axis ``i``, summed left to
    right (0.2's rounding)."""
    ndim = len(coord)
    return tuple(
        sum(coord[j] * matrix[i, j] for j in range(ndim)) + matrix[i, -1] for i in range(ndim)
    )


def transform_roi_with_affine(
    roi_start: Sequence[float], roi_stop: Sequence[float], matrix: np.ndarray
) -> tuple[list[float], list[float]]:
    """The bounding box (per-axis minimum and maximum) of the ``2**ndim`` corners of the box
    ``[roi_start, roi_stop]`` mapped through ``matrix``."""
    ndim = len(roi_start)
    mapped = [transform_coordinate(corner, matrix) for corner in product(*zip(roi_start, roi_stop))]
    return (
        [min(point[axis] for point in mapped) for axis in range(ndim)],
        [max(point[axis] for point in mapped) for axis in range(ndim)],
    )


@dataclass(frozen=True)
class Frame:
    """The read whose values every region reproduces: 0.2's call of bioimage-cpp for it.

    Attributes:
        linear: the linear part of the affine (output -> input), ``(ndim, ndim)``.
        origin: the input coordinate of output voxel ``out_origin``, relative to
            ``region_start`` (the translation 0.2 hands bioimage-cpp).
        out_origin: the output voxel where bioimage-cpp's coordinate walk starts.
        region_start, region_stop: the input region 0.2 reads for it.
        exact: every coordinate of the walk is exact, so any summation order gives it.
    """

    linear: np.ndarray
    origin: np.ndarray
    out_origin: tuple[int, ...]
    region_start: tuple[int, ...]
    region_stop: tuple[int, ...]
    exact: bool

    @property
    def empty(self) -> bool:
        """0.2 read nothing for this frame (every output voxel maps outside the input)."""
        return any(b <= a for a, b in zip(self.region_start, self.region_stop))


def frame_for_region(
    matrix: np.ndarray,
    out_start: Sequence[int],
    out_stop: Sequence[int],
    in_shape: Sequence[int],
    halo: Sequence[int],
) -> Frame:
    """The frame of 0.2's ``transform_subvolume_affine`` for the output box ``[out_start,
    out_stop)``: the input region is the box's corners mapped through ``matrix``, grown by
    ``halo`` and clipped to the input; the translation is shifted into that region."""
    ndim = len(in_shape)
    matrix = np.ascontiguousarray(matrix, dtype=np.float64)
    low, high = transform_roi_with_affine(list(out_start), list(out_stop), matrix)
    start = tuple(max(0, int(np.floor(v)) - h) for v, h in zip(low, halo))
    stop = tuple(min(int(n), int(np.ceil(v)) + h) for v, h, n in zip(high, halo, in_shape))
    # The translation 0.2 hands bioimage-cpp, computed as 0.2 computes it (same rounding).
    origin = matrix[:ndim, :ndim] @ np.asarray(out_start, dtype=np.float64)
    origin = origin + matrix[:ndim, ndim] - np.asarray(start)
    linear = np.ascontiguousarray(matrix[:ndim, :ndim])
    extent = [b - a for a, b in zip(out_start, out_stop)]
    return Frame(
        linear=linear,
        origin=origin,
        out_origin=tuple(int(v) for v in out_start),
        region_start=start,
        region_stop=stop,
        exact=walk_is_exact(linear, origin, extent),
    )


def walk_is_exact(linear: np.ndarray, origin: np.ndarray, extent: Sequence[int]) -> bool:
    """Whether every coordinate of bioimage-cpp's walk over an output box of ``extent`` is exact:
    all entries are multiples of ``2**-30`` and every partial sum stays below ``2**22``, so each
    addition is exact and the walk equals ``origin + linear @ o`` in any order (integer scales
    such as 2 or 0.5 and integer shifts are)."""
    values = np.concatenate([linear.ravel(), origin])
    if not np.all(np.isfinite(values)):
        return False
    scaled = np.ldexp(values, _DYADIC_BITS)
    if not np.array_equal(scaled, np.round(scaled)):
        return False
    reach = np.abs(origin) + np.abs(linear) @ np.asarray(extent, dtype=np.float64)
    return bool(np.all(reach < 2.0 ** (52 - _DYADIC_BITS)))


def resample(
    read: Callable[[tuple[slice, ...]], np.ndarray],
    dtype: np.dtype,
    frame: Frame,
    roi: tuple[slice, ...],
    *,
    order: int,
    fill_value: int | float,
    sigma: np.ndarray | None,
    halo: Sequence[int],
) -> np.ndarray:
    """The output region ``roi`` (absolute, step-1 slices) of the frame's resampling.

    Args:
        read: reads an input region (a tuple of slices) as a numpy array of ``dtype``.
        dtype: the input (and output) data type.
        frame: the read whose values to reproduce.
        roi: the output region, inside the frame's output box.
        order: interpolation order 0-5.
        fill_value: the value of output voxels sampling outside the input.
        sigma: per-input-axis smoothing sigma (anti-aliasing), or None.
        halo: the input voxels read beyond the sampled coordinates on each side, per axis (at
            least the interpolation taps' reach plus one for rounding).
    """
    out_start = [s.start for s in roi]
    out_shape = tuple(s.stop - s.start for s in roi)
    if 0 in out_shape:
        return np.empty(out_shape, dtype)
    if frame.empty:  # 0.2 skips bioimage-cpp and fills
        return np.full(out_shape, fill_value, dtype=dtype)

    region = _region_for(frame, out_start, out_shape, halo)
    smoothing = sigma is not None
    if smoothing:
        radius = [math.ceil(3.0 * max(float(s), _NO_SMOOTH_SIGMA)) for s in sigma]
        region = _smoothing_region(frame, region, radius)
    data = np.asarray(read(tuple(slice(a, b) for a, b in region)))
    engine_dtype = _engine_dtype(dtype)
    data = np.ascontiguousarray(data, dtype=engine_dtype)
    if smoothing:
        data = _smooth(data, sigma, radius)
    shift = [a - w for (a, _), w in zip(region, frame.region_start)]
    fill = _typed_fill(fill_value, dtype)
    gather = order == 0 and _gathers(data, fill, frame)
    result = np.empty(out_shape, dtype=engine_dtype)

    def compute(start: int, stop: int) -> None:
        starts = [out_start[0] + start, *out_start[1:]]
        stops = [out_start[0] + stop, *(a + n for a, n in zip(out_start[1:], out_shape[1:]))]
        _sample(data, frame, starts, stops, shift, order, fill, gather, result[start:stop])

    # Slabs bound the coordinate fields held at once.
    _by_slabs(compute, out_shape, _SLAB_VOXELS)
    return result if result.dtype == dtype else result.astype(dtype)


def _gathers(data: np.ndarray, fill: np.generic, frame: Frame) -> bool:
    """Whether nearest-neighbour sampling must gather by index: for 64-bit integers, whose values
    beyond 2**53 bioimage-cpp's trip through float64 rounds. A diagonal matrix (a resize) always
    gathers them (its indices are one short vector per axis, cheaper than scanning the values);
    other matrices only when a value or the fill lies beyond 2**53."""
    if data.dtype not in (np.dtype(np.int64), np.dtype(np.uint64)):
        return False
    if np.count_nonzero(frame.linear - np.diag(np.diag(frame.linear))) == 0:
        return True
    limit = 2**53
    if abs(int(fill)) > limit:
        return True
    return data.size > 0 and (int(data.max()) > limit or int(data.min()) < -limit)


def _region_for(
    frame: Frame, out_start: Sequence[int], out_shape: Sequence[int], halo: Sequence[int]
) -> list[tuple[int, int]]:
    """The input region (absolute, inside the frame's region) holding every tap of the output
    box; a single voxel at the nearest edge when every tap falls outside (bioimage-cpp then
    samples only the fill value, whatever the data)."""
    ndim = len(out_shape)
    matrix = np.zeros((ndim + 1, ndim + 1))
    matrix[:ndim, :ndim] = frame.linear
    relative = [o - f for o, f in zip(out_start, frame.out_origin)]
    matrix[:ndim, ndim] = frame.origin + frame.linear @ np.asarray(relative, dtype=np.float64)
    low, high = transform_roi_with_affine([0] * ndim, [n - 1 for n in out_shape], matrix)
    region = []
    for lo, hi, h, w0, w1 in zip(low, high, halo, frame.region_start, frame.region_stop):
        start = max(w0, w0 + math.floor(lo) - h)
        stop = min(w1, w0 + math.ceil(hi) + h + 1)
        if stop <= start:  # all taps outside: keep one voxel so bioimage-cpp can run
            start = min(max(start, w0), w1 - 1)
            stop = start + 1
        region.append((start, stop))
    return region


def _smoothing_region(
    frame: Frame, region: list[tuple[int, int]], radius: Sequence[int]
) -> list[tuple[int, int]]:
    """Grow ``region`` so that smoothing it computes every voxel of ``region`` exactly as smoothing
    the frame's region does.

    bioimage-cpp convolves each axis in turn. Along the last axis it computes a row's voxels from
    the kernel radius on in groups of eight (vector instructions), the rest one by one; along the
    other axes it computes each row of the flattened trailing axes in groups of eight from its
    start, the last few one by one; voxels within the radius of a region border take a border
    path. The two paths round differently. So: start each axis at a multiple of eight from the
    frame region's start (the groups line up), reach past ``region`` by the radius plus a group
    (``region``'s voxels stay off the end paths unless the frame's region ends there too, where
    the paths agree because the groups line up), and reach below by the radius plus one.
    """
    grown = []
    for (start, stop), r, w0, w1 in zip(region, radius, frame.region_start, frame.region_stop):
        low = max(w0, start - r - 1)
        low = w0 + (low - w0) // _VECTOR_WIDTH * _VECTOR_WIDTH
        high = min(w1, stop + r + 1 + _VECTOR_WIDTH)
        grown.append((low, high))
    return grown


def _smooth(data: np.ndarray, sigma: np.ndarray, radius: Sequence[int]) -> np.ndarray:
    """0.2's anti-aliasing: bioimage-cpp's Gaussian (tiny sigma on unsmoothed axes), cast back to
    the data type as bioimage_cpp.transformation.resample casts it.

    Large regions are smoothed in slabs along axis 0, in parallel, each grown by the kernel
    radius plus one and cropped back: every pass but axis 0's works plane by plane and axis 0's
    row by row, so a kept voxel is computed exactly as in one call over the region.
    """
    import bioimage_cpp

    per_axis = tuple(float(s) for s in np.maximum(sigma, _NO_SMOOTH_SIGMA))
    result = np.empty(data.shape, dtype=data.dtype)
    reach = radius[0] + 1

    def smooth(start: int, stop: int) -> None:
        low, high = max(0, start - reach), min(data.shape[0], stop + reach)
        smoothed = bioimage_cpp.filters.gaussian_smoothing(data[low:high], per_axis)
        result[start:stop] = smoothed[start - low:stop - low]  # numpy's cast, as resample's

    _by_slabs(smooth, data.shape)
    return result


def walk_coordinates(
    frame: Frame, starts: Sequence[int], stops: Sequence[int], shift: Sequence[int]
) -> list[np.ndarray]:
    """The input coordinates bioimage-cpp samples for output voxels ``[starts, stops)`` when it
    computes the frame, relative to a region ``shift`` voxels past the frame's region.

    bioimage-cpp starts at ``origin`` and adds column ``k`` of the matrix for each step along
    output axis ``k``: first along axis 0 (planes), then, from each plane's value, along axis 1,
    and so on. The walk is replayed with sequential cumulative sums (``np.add.accumulate``
    rounds after every addition, as the C++ loop does). Zero columns add nothing and exact walks
    need no replay, so a diagonal matrix costs one short vector per axis. One array per input
    axis, broadcastable to the output box (size-1 axes where the coordinate is constant).
    """
    return [
        _walk(frame, axis, starts, stops) - shift[axis] if shift[axis] else
        _walk(frame, axis, starts, stops)
        for axis in range(len(starts))
    ]


def _walk(frame: Frame, axis: int, starts: Sequence[int], stops: Sequence[int]) -> np.ndarray:
    """Input coordinate ``axis`` of bioimage-cpp's walk (see ``walk_coordinates``), in the
    frame's region, for output voxels ``[starts, stops)``."""
    first = [a - f for a, f in zip(starts, frame.out_origin)]
    last = [b - f for b, f in zip(stops, frame.out_origin)]
    walk = np.asarray(frame.origin[axis], dtype=np.float64)
    for k in range(len(starts)):
        step = float(frame.linear[axis, k])
        if step == 0.0:
            walk = walk[..., np.newaxis]
        elif frame.exact:
            walk = walk[..., np.newaxis] + step * np.arange(first[k], last[k], dtype=np.float64)
        else:
            steps = np.empty(walk.shape + (last[k],), dtype=np.float64)
            steps[..., 0] = walk
            steps[..., 1:] = step
            np.add.accumulate(steps, axis=-1, out=steps)
            walk = steps[..., first[k]:]
    return walk


def _sample(
    data: np.ndarray,
    frame: Frame,
    starts: Sequence[int],
    stops: Sequence[int],
    shift: Sequence[int],
    order: int,
    fill: np.generic,
    gather: bool,
    out: np.ndarray,
) -> None:
    """Output voxels ``[starts, stops)`` sampled from ``data`` (the region ``shift`` voxels past
    the frame's region start), written into ``out`` (C-contiguous, of ``data``'s dtype).
    ``gather``: order 0 by index (values bioimage-cpp's float64 would round)."""
    import bioimage_cpp

    ndim = data.ndim
    if gather:
        _nearest(data, walk_coordinates(frame, starts, stops, shift), fill, out)
    elif frame.exact:
        # Exact walk: bioimage-cpp's own walk from this box's corner gives the frame's values.
        local = np.zeros((ndim, ndim + 1))
        local[:, :ndim] = frame.linear
        local[:, ndim] = frame.origin - np.asarray(shift, dtype=np.float64)
        box = tuple(slice(a - f, b - f) for a, b, f in zip(starts, stops, frame.out_origin))
        bioimage_cpp.transformation.affine_transform(
            data, local, bounding_box=box, order=order, fill_value=fill, out=out
        )
    elif math.prod(out.shape[:-1]) >= _VECTOR_WALK_MIN:
        # The walk along the last output axis, vectorized over the others: coordinates laid out
        # last-axis-first, sampled in that layout, the result transposed back.
        field = _last_axis_major_walk(frame, starts, stops, shift)
        samples = np.empty(field.shape[1:], dtype=data.dtype)
        bioimage_cpp.transformation.map_coordinates(
            data, field, order=order, fill_value=fill, out=samples
        )
        np.copyto(out, samples.transpose(*range(1, ndim), 0))
    else:
        field = np.empty((ndim, *out.shape), dtype=np.float64)
        for axis, walk in enumerate(walk_coordinates(frame, starts, stops, shift)):
            field[axis] = walk
        bioimage_cpp.transformation.map_coordinates(
            data, field, order=order, fill_value=fill, out=out
        )


def _last_axis_major_walk(
    frame: Frame, starts: Sequence[int], stops: Sequence[int], shift: Sequence[int]
) -> np.ndarray:
    """``walk_coordinates`` as one float64 array laid out ``(ndim, n_last, *other axes)``.

    The walk along the last output axis adds the same step to every row, so it runs as one
    vectorized addition per step over all rows at once (rounding each element as the C++ loop
    does), instead of a sequential cumulative sum per row.
    """
    ndim = len(starts)
    first = starts[-1] - frame.out_origin[-1]
    last = stops[-1] - frame.out_origin[-1]
    others = [b - a for a, b in zip(starts[:-1], stops[:-1])]
    field = np.empty((ndim, last - first, *others), dtype=np.float64)
    for axis in range(ndim):
        rows = np.broadcast_to(_walk(frame, axis, starts[:-1], stops[:-1]), others)
        step = float(frame.linear[axis, -1])
        walk = field[axis]
        if step == 0.0:
            walk[...] = rows
        elif frame.exact:
            offsets = step * np.arange(first, last, dtype=np.float64)
            np.add(rows, offsets.reshape((-1,) + (1,) * len(others)), out=walk)
        else:
            current = np.array(rows, dtype=np.float64)
            for _ in range(first):
                np.add(current, step, out=current)
            walk[0] = current
            for j in range(1, last - first):
                np.add(walk[j - 1], step, out=walk[j])
        if shift[axis]:
            np.subtract(walk, shift[axis], out=walk)  # exact, after the rounding of the walk
    return field


def sample_coordinates(
    data: np.ndarray, coordinates: np.ndarray, order: int, fill_value: int | float
) -> np.ndarray:
    """``data`` (of an engine dtype or bool) sampled at ``coordinates`` (``(ndim, *out_shape)``,
    in ``data``'s frame): bioimage-cpp's ``map_coordinates``, order 0 gathered by index."""
    import bioimage_cpp

    dtype = data.dtype
    data = np.ascontiguousarray(data, dtype=_engine_dtype(dtype))
    fill = _typed_fill(fill_value, dtype)
    out = np.empty(coordinates.shape[1:], dtype=data.dtype)
    if order == 0:
        _nearest(data, list(coordinates), fill, out)
    else:
        bioimage_cpp.transformation.map_coordinates(
            data, coordinates, order=order, fill_value=fill, out=out
        )
    return out if out.dtype == dtype else out.astype(dtype)


def _nearest(
    data: np.ndarray, coordinates: list[np.ndarray], fill: np.generic, out: np.ndarray
) -> None:
    """bioimage-cpp's nearest neighbour, gathered by index so values are copied, not converted
    through float64: ``floor(c + 0.5)`` where every coordinate lies in ``[0, n - 1]``, else fill."""
    flat = np.zeros((1,) * out.ndim, dtype=np.intp)
    outside = np.zeros((1,) * out.ndim, dtype=bool)
    for walk, n, stride in zip(coordinates, data.shape, _element_strides(data.shape)):
        outside = outside | (walk < 0.0) | (walk > n - 1)
        index = np.floor(walk + 0.5)
        np.clip(index, 0, n - 1, out=index)
        flat = flat + index.astype(np.intp) * stride
    np.take(data.reshape(-1), np.broadcast_to(flat, out.shape), out=out)
    if outside.any():
        np.copyto(out, fill, where=np.broadcast_to(outside, out.shape))


def _element_strides(shape: Sequence[int]) -> list[int]:
    strides = [1] * len(shape)
    for axis in range(len(shape) - 2, -1, -1):
        strides[axis] = strides[axis + 1] * shape[axis + 1]
    return strides


# The pool and the process that made it: a forked child rebuilds it (its threads stay behind).
_POOL: ThreadPoolExecutor | None = None
_POOL_PID: int | None = None


def _threads() -> int:
    configured = os.environ.get("BIOIMAGE_PY_NUM_THREADS")
    if configured:
        return max(1, int(configured))
    return os.cpu_count() or 1


def _pool() -> ThreadPoolExecutor:
    global _POOL, _POOL_PID
    if _POOL is None or _POOL_PID != os.getpid():
        _POOL = ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="bioimage-resample")
        _POOL_PID = os.getpid()
    return _POOL


def _by_slabs(
    compute: Callable[[int, int], None], shape: tuple[int, ...], max_voxels: int | None = None
) -> None:
    """``compute(0, n0)``, or for large shapes the same in slabs of planes (along axis 0)
    computed in parallel (a voxel's value does not depend on the slab computing it): two per
    thread, of at most ``max_voxels`` voxels (a plane at least) when given."""
    n0 = shape[0]
    plane = math.prod(shape[1:])
    workers = min(_threads(), n0)
    if workers < 2 or n0 * plane < _PARALLEL_VOXELS:
        compute(0, n0)
        return
    per_slab = -(-n0 // (2 * workers))
    if max_voxels is not None:
        per_slab = max(1, min(per_slab, max_voxels // max(plane, 1)))
    spans = [(a, min(a + per_slab, n0)) for a in range(0, n0, per_slab)]
    for done in [_pool().submit(compute, a, b) for a, b in spans]:
        done.result()
