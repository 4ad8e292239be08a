"""The generic wrappers of bioimage_py 0.2: ``ThresholdSource`` (a comparison mask),
``NormalizeSource`` (min-max to ``[0, 1]``), ``RoiSource`` (a sub-region view), ``PadSource``
(``numpy.pad``) and ``ExpandDimsSource`` (``numpy.expand_dims``).

Their signatures, defaults and results are 0.2's; the options that behave otherwise are keyword-only
and documented on each class (global normalization bounds, whole-array padding). Their specs are
JSON-able unless a user callable is involved (a ``ThresholdSource`` operator that is neither a numpy
ufunc nor a comparison of the ``operator`` module); specs written by 0.2 reopen.
"""
from __future__ import annotations

import math
import numbers
import operator as operator_module
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bioimage_py._core import normalize_index
from bioimage_py.blocking import Blocking
from bioimage_py.sources.base import Source
from bioimage_py.sources.dispatch import SourceLike
from bioimage_py.util import to_roi
from bioimage_py.wrapper.base import SimpleTransformationSource, WrapperSource, register_wrapper

__all__ = ["ExpandDimsSource", "NormalizeSource", "PadSource", "RoiSource", "ThresholdSource"]


# --- ThresholdSource ----------------------------------------------------------------------------

# Functions of the ``operator`` module a spec may name (JSON-able, rebuilt by name).
_OPERATOR_FUNCTIONS = ("lt", "le", "eq", "ne", "ge", "gt", "and_", "or_", "xor")


@register_wrapper
class ThresholdSource(SimpleTransformationSource):
    """``operator(source, threshold)`` on read: by default ``source > threshold``, a boolean mask.

    The comparison is numpy's, so NaN compares as numpy says, and an int threshold compares
    exactly with integer data (0.2 converted every threshold to float, which differs only beyond
    2**53). ``operator`` is any callable ``operator(block, threshold)``, or the name of a numpy
    ufunc (``"greater_equal"``, ``"numpy.less"``). numpy ufuncs and the comparisons of the
    ``operator`` module are recorded in the spec by name (``"numpy.greater"``, JSON-able); other
    callables travel by pickling.

    Args:
        source: the source to threshold.
        threshold: a real number.
        operator: the comparison, ``numpy.greater`` by default.

    Raises:
        TypeError: ``threshold`` is not a real number; ``operator`` is neither callable nor a name.
        ValueError: a name that is not a numpy ufunc.
    """

    _copy_views = False  # the comparison never modifies its input

    def __init__(
        self,
        source: SourceLike,
        threshold: float,
        operator: Callable[[np.ndarray, Any], np.ndarray] | str = np.greater,
    ) -> None:
        if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, numbers.Real):
            raise TypeError(f"threshold must be a real number (int or float), got {threshold!r}")
        # A plain int or float: JSON-able, and compared by numpy without a dtype of its own.
        self._threshold = (
            int(threshold) if isinstance(threshold, numbers.Integral) else float(threshold)
        )
        self._operator = _operator_from_param(operator)
        super().__init__(source, self._compare, dtype=bool)

    @property
    def threshold(self) -> float:
        """The threshold."""
        return self._threshold

    @property
    def operator(self) -> Callable[[np.ndarray, Any], np.ndarray]:
        """The comparison, called as ``operator(block, threshold)``."""
        return self._operator

    def _compare(self, block: np.ndarray) -> np.ndarray:
        return np.asarray(self._operator(block, self._threshold))

    def _params(self) -> dict[str, Any]:
        return {"threshold": self._threshold, "operator": _operator_param(self._operator)}

    @classmethod
    def _from_wrapped(cls, sources: Sequence[Source], params: dict[str, Any]) -> ThresholdSource:
        """Also reopens our previous release's specs, which named the comparison ``mode``."""
        params = dict(params)
        if "mode" in params:
            params["operator"] = params.pop("mode")
        return cls(sources[0], **params)


def _operator_from_param(value: Any) -> Callable[[np.ndarray, Any], np.ndarray]:
    """A callable as itself; a recorded name (``"numpy.greater"``, ``"greater"``,
    ``"operator.gt"``) as the function it names."""
    if callable(value):
        return value
    if not isinstance(value, str):
        raise TypeError(f"operator must be callable or the name of a numpy ufunc, got {value!r}")
    module, _, name = value.rpartition(".")
    if module in ("", "numpy", "np"):
        function = getattr(np, name, None)
        if isinstance(function, np.ufunc):
            return function
    elif module == "operator" and name in _OPERATOR_FUNCTIONS:
        return getattr(operator_module, name)
    raise ValueError(
        f"unknown operator {value!r}: pass a callable, or name a numpy ufunc such as "
        "'numpy.greater', 'numpy.greater_equal', 'numpy.less', 'numpy.less_equal', 'numpy.equal'"
    )


def _operator_param(function: Callable) -> Callable | str:
    """``function``'s name when the spec can name it, else the callable itself (pickled)."""
    name = getattr(function, "__name__", None)
    if isinstance(function, np.ufunc) and getattr(np, name, None) is function:
        return f"numpy.{name}"
    if name in _OPERATOR_FUNCTIONS and getattr(operator_module, name) is function:
        return f"operator.{name}"
    return function


# --- NormalizeSource ----------------------------------------------------------------------------

# Elements per block when scanning a source for its bounds (~128 MiB of float64).
_SCAN_ELEMENTS = 1 << 24


@register_wrapper
class NormalizeSource(SimpleTransformationSource):
    """Min-max normalization to ``[0, 1]`` on read, as a floating-point source.

    By default (as in 0.2) every read is normalized by its own minimum and maximum:
    ``(block - block.min()) / (block.max() - block.min() + eps)`` computed in ``dtype``
    (``eps = 1e-6``), so values depend on the region read: blocks of a block-wise computation are
    scaled differently, and a region is not the same part of the whole volume read at once.

    Fixed bounds (keyword-only) scale every block alike, ``(source - lower) / (upper - lower)``
    computed in float64 and rounded to ``dtype`` once (no ``eps``; a constant volume maps to 0):
    give ``lower`` and/or ``upper``, or ``global_bounds=True``. A bound left ``None`` is then the
    source's minimum or maximum, computed here once in one block-wise pass over the source
    (chunk-aligned, NaN ignored); the spec, pickles and workers carry the numbers and never scan
    again. ``clip=True`` clips results to ``[0, 1]``.

    With ``with_channels=True`` the first axis is a channel axis hidden from the shape, as in
    ``SimpleTransformationSource``: a read normalizes all channels of the region together and
    returns them in front.

    Args:
        source: the source to normalize (bool, integer or float values).
        dtype: the floating-point dtype of the result (``"float32"`` by default).
        with_channels: the source has a leading channel axis.
        lower: the value mapped to 0 (fixed-bounds mode).
        upper: the value mapped to 1 (fixed-bounds mode).
        global_bounds: fixed bounds, computing the missing ones from the whole source.
        clip: clip the result to ``[0, 1]``.

    Raises:
        TypeError: a bound that is not a real number; a source of non-numeric dtype.
        ValueError: ``dtype`` is not a floating-point type; ``lower > upper``; a NaN or infinite
            bound; bounds to compute over an empty (or all-NaN) source.
    """

    #: Added to the per-read range (0.2's default normalization only).
    eps = 1.0e-6

    _copy_views = False  # both normalizations compute into a new array

    def __init__(
        self,
        source: SourceLike,
        dtype: Any = "float32",
        with_channels: bool = False,
        *,
        lower: float | None = None,
        upper: float | None = None,
        global_bounds: bool = False,
        clip: bool = False,
    ) -> None:
        try:
            out_dtype = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"dtype must be a floating-point dtype, got {dtype!r}") from None
        if out_dtype.kind != "f":
            raise ValueError(f"dtype must be a floating-point dtype, got {dtype!r}")
        super().__init__(source, self._normalize, with_channels=with_channels, dtype=out_dtype)
        in_dtype = self._source.dtype
        if in_dtype.kind not in "biuf":
            raise TypeError(f"NormalizeSource needs bool, integer or float values, not {in_dtype}")
        lower, upper = _check_bound("lower", lower), _check_bound("upper", upper)
        self._fixed = bool(global_bounds) or lower is not None or upper is not None
        if self._fixed and (lower is None or upper is None):
            found_lower, found_upper = _min_max(self._source)
            lower = found_lower if lower is None else lower
            upper = found_upper if upper is None else upper
        if self._fixed and lower > upper:  # type: ignore[operator]
            raise ValueError(f"lower ({lower}) must not be greater than upper ({upper})")
        self._lower, self._upper = lower, upper
        self._clip = bool(clip)

    @property
    def lower(self) -> float | None:
        """The value mapped to 0 (``None`` when every read is normalized by its own range)."""
        return self._lower

    @property
    def upper(self) -> float | None:
        """The value mapped to 1 (``None`` when every read is normalized by its own range)."""
        return self._upper

    @property
    def clip(self) -> bool:
        """Whether results are clipped to ``[0, 1]``."""
        return self._clip

    def _normalize(self, block: np.ndarray) -> np.ndarray:
        if self._fixed:
            return self._normalize_fixed(block)
        data = block.astype(self._dtype)  # a copy: safe to modify in place
        if data.size:  # 0.2's arithmetic, in the output dtype
            data -= data.min()
            data /= data.max() + self.eps
        if self._clip:
            np.clip(data, 0, 1, out=data)
        return data

    def _normalize_fixed(self, block: np.ndarray) -> np.ndarray:
        lower, upper = self._lower, self._upper
        data = block.astype(np.float64)  # a copy: safe to modify in place
        data -= lower
        if upper > lower:  # type: ignore[operator]
            data /= upper - lower  # type: ignore[operator]
        else:  # a constant volume: nothing to stretch
            data[...] = 0
        if self._clip:
            np.clip(data, 0, 1, out=data)
        with np.errstate(over="ignore"):  # beyond float32's range is inf, as it should be
            return data.astype(self._dtype, copy=False)

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "dtype": self.dtype.name,
            "with_channels": self._with_channels,
        }
        if self._fixed:
            params.update(lower=self._lower, upper=self._upper, clip=self._clip)
        elif self._clip:
            params["clip"] = True
        return params


def _check_bound(name: str, value: Any) -> float | None:
    """A given bound as a finite float (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number or None, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _min_max(source: Source) -> tuple[float, float]:
    """The minimum and maximum of ``source`` ignoring NaN, reading it block by block.

    Raises:
        ValueError: the source is empty, all NaN, or holds infinite values.
    """
    if source.size == 0:
        raise ValueError(
            f"cannot compute normalization bounds of an empty source {source!r}: "
            "pass lower and upper"
        )
    if source.ndim == 0:
        rois: Any = [()]
    else:
        blocking = Blocking(source.shape, _scan_block_shape(source))
        rois = (to_roi(blocking.get_block(i)) for i in range(blocking.number_of_blocks))
    lower = upper = math.nan
    for roi in rois:
        block = np.asarray(source._getitem(roi))
        # fmin/fmax skip NaN (and return NaN only for an all-NaN block), without warnings.
        lower = float(np.fmin(lower, np.fmin.reduce(block, axis=None)))
        upper = float(np.fmax(upper, np.fmax.reduce(block, axis=None)))
    if math.isnan(lower):
        raise ValueError(
            f"cannot compute normalization bounds of {source!r}: every value is NaN; "
            "pass lower and upper"
        )
    if not (math.isfinite(lower) and math.isfinite(upper)):
        raise ValueError(
            f"{source!r} holds infinite values (min {lower}, max {upper}): pass finite lower "
            "and upper bounds"
        )
    return lower, upper


def _scan_block_shape(source: Source) -> tuple[int, ...]:
    """Blocks of whole shards or chunks (when the source has them) of about ``_SCAN_ELEMENTS``.

    Starting from one shard (or chunk, or single element) and doubling axes from the last one
    keeps blocks aligned to the chunk grid, so no chunk is decoded twice.
    """
    shape = source.shape
    grid = source.shards or source.chunks or (1,) * len(shape)
    block = [max(1, min(g, n)) for g, n in zip(grid, shape)]
    grown = True
    while grown:
        grown = False
        for axis in reversed(range(len(block))):
            if block[axis] < shape[axis] and math.prod(block) * 2 <= _SCAN_ELEMENTS:
                block[axis] = min(2 * block[axis], shape[axis])
                grown = True
    return tuple(block)


# --- RoiSource ----------------------------------------------------------------------------------


@register_wrapper
class RoiSource(WrapperSource):
    """The region ``roi`` of a source as a source of its own, indexed from the region's origin:
    ``RoiSource(src, roi)[index]`` equals ``np.asarray(src)[roi][index]`` when ``squeeze=True``.

    ``roi`` holds one entry per leading axis (missing trailing axes are taken whole): slices
    without steps (negative bounds count from the end, bounds clamp to the shape as in numpy, so a
    region may be empty), ints, and at most one ``...``. An int selects one index along its axis;
    the axis stays, with length 1, unless ``squeeze=True`` drops it (as 0.2 does).

    Writing through the view writes the wrapped source, so a ``RoiSource`` is writable when the
    wrapped source is. For block-wise writes by several workers, let the region start on the
    wrapped source's chunk grid: chunks and shards are the wrapped source's when every kept axis
    starts on their grid, else ``None``.

    The spec records the region as JSON (``[start, stop]`` per sliced axis, the index per int
    axis); 0.2's spec form (the tuple of slices and ints itself) reopens too.

    Args:
        source: the source to view.
        roi: ints, slices and ``...`` (a tuple or list of them, or one of them), e.g.
            ``np.s_[10:20, :, 5]`` or ``bioimage_py.to_roi(block)``.
        squeeze: drop the axes selected by an int.

    Raises:
        TypeError: an entry that is not an int, slice or ``...``; non-integer slice bounds.
        ValueError: a slice step other than 1; more entries than axes; an int out of range
            (an ``IndexError`` too).
    """

    def __init__(
        self,
        source: SourceLike,
        roi: int | slice | Sequence[int | slice],
        squeeze: bool = False,
    ) -> None:
        super().__init__(source)
        shape = self._source.shape
        self._roi, int_axes = _normalize_roi(roi, shape)
        self._int_axes = int_axes
        self._squeeze = bool(squeeze)
        self._dropped = int_axes if self._squeeze else ()
        self._kept = tuple(axis for axis in range(len(shape)) if axis not in self._dropped)
        self._claim_static_shape(RoiSource, self._region_shape())

    def _region_shape(self) -> tuple[int, ...]:
        return tuple(self._roi[axis].stop - self._roi[axis].start for axis in self._kept)

    @property
    def roi(self) -> tuple[slice, ...]:
        """The region in the wrapped source: one ``slice(start, stop)`` per axis."""
        return self._roi

    @property
    def squeeze(self) -> bool:
        """Whether the axes selected by an int are dropped."""
        return self._squeeze

    @property
    def shape(self) -> tuple[int, ...]:
        return self._region_shape()

    @property
    def chunks(self) -> tuple[int, ...] | None:
        return self._grid_if_aligned(self._source.chunks)

    @property
    def shards(self) -> tuple[int, ...] | None:
        return self._grid_if_aligned(self._source.shards)

    def _grid_if_aligned(self, grid: tuple[int, ...] | None) -> tuple[int, ...] | None:
        """``grid`` (chunks or shards) over the kept axes when each of them starts on it."""
        if grid is None or any(self._roi[axis].start % grid[axis] for axis in self._kept):
            return None
        return tuple(grid[axis] for axis in self._kept)

    @property
    def writable(self) -> bool:
        """Whether the wrapped source is writable."""
        return self._source.writable

    __setitem__ = Source.__setitem__  # writable, unlike other wrappers

    def _to_source_roi(self, roi: tuple[slice, ...]) -> tuple[slice, ...]:
        """``roi`` (over this view's axes) as a region of the wrapped source."""
        full = list(self._roi)  # dropped axes keep their single index
        for axis, inner in zip(self._kept, roi):
            start = self._roi[axis].start
            full[axis] = slice(start + inner.start, start + inner.stop)
        return tuple(full)

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        data = self._read(self._to_source_roi(roi))
        return data.squeeze(axis=self._dropped) if self._dropped else data

    def _setitem(self, roi: tuple[slice, ...], value: np.ndarray) -> None:
        if self._dropped:
            value = np.expand_dims(value, self._dropped)
        self._source[self._to_source_roi(roi)] = value

    def _params(self) -> dict[str, Any]:
        roi: list[Any] = [
            s.start if axis in self._int_axes else [s.start, s.stop]
            for axis, s in enumerate(self._roi)
        ]
        return {"roi": roi, "squeeze": self._squeeze}

    @classmethod
    def _from_wrapped(cls, sources: Sequence[Source], params: dict[str, Any]) -> RoiSource:
        """``params["roi"]`` as recorded here (``[start, stop]`` pairs and ints; our previous
        release's pairs too) or by 0.2 (slices and ints)."""
        params = dict(params)
        roi = tuple(
            slice(*entry) if isinstance(entry, (list, tuple)) else entry
            for entry in params.pop("roi")
        )
        return cls(sources[0], roi, **params)


def _normalize_roi(roi: Any, shape: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[int, ...]]:
    """``roi`` as one in-bounds ``slice(start, stop)`` per axis of ``shape`` (clamped as numpy
    clamps), and the axes an int selected."""
    entries = tuple(roi) if isinstance(roi, (tuple, list)) else (roi,)
    for entry in entries:
        valid = isinstance(entry, (slice, numbers.Integral)) or entry is Ellipsis
        if not valid or isinstance(entry, (bool, np.bool_)):
            raise TypeError(
                f"a roi holds ints, slices and at most one ..., got {entry!r} in {roi!r}"
            )
    if sum(entry is not Ellipsis for entry in entries) > len(shape):
        raise ValueError(f"the roi {roi!r} has more entries than the source's {len(shape)} axes")
    try:
        normalized, int_axes, _ = normalize_index(entries, shape)
    except (TypeError, ValueError) as error:
        raise type(error)(f"invalid roi {roi!r} for shape {shape}: {error}") from None
    return tuple(normalized), tuple(int_axes)


# --- PadSource ----------------------------------------------------------------------------------

# The modes of numpy.pad; the whole-array padding reproduces the first five.
_EXACT_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")
_NUMPY_MODES = (*_EXACT_MODES, "linear_ramp", "maximum", "mean", "median", "minimum", "empty")


@register_wrapper
class PadSource(WrapperSource):
    """A padded source, computed for the region read. Two semantics, chosen by ``pad_width``'s
    form:

    - One int per axis (0.2's form, e.g. ``(0, 4, 4)``): right padding, as in 0.2. The source
      keeps its origin and the shape grows by ``pad_width``; a read past the source's end applies
      ``numpy.pad(block, mode)`` to the part of the source it covers. ``"constant"`` (and
      ``"edge"``) thus equal padding the whole array; the other modes depend on the region read
      (``"reflect"`` mirrors the block read, not the whole volume), and a read starting inside the
      padding has no block to mirror: a ``ValueError`` (0.2 refused such reads too).
      Chunks and shards are the source's. Every ``numpy.pad`` mode is accepted.
    - Any other form ``numpy.pad`` takes (one int for every side, ``(before, after)`` pairs per
      axis, e.g. ``((2, 2), (0, 0), (1, 3))``): exactly ``numpy.pad(source, pad_width, mode)``
      of the whole array, for any region read, reading only the part of the source it needs.
      Modes ``"constant"``, ``"edge"``, ``"reflect"``, ``"symmetric"``, ``"wrap"``. To pad one
      side only with these semantics, pass pairs such as ``((0, 4), (0, 4))``.

    ``constant_values`` (keyword-only) takes numpy's forms too; with per-axis constants the
    corners get the constant of the last padded axis, as in numpy. For integer and bool sources it
    must be exactly representable in the dtype (numpy would silently wrap -1 to 255 in uint8).

    Args:
        source: the source to pad.
        pad_width: the padding (see above; non-negative ints).
        mode: the ``numpy.pad`` mode, ``"constant"`` by default.
        constant_values: the fill value(s) of ``"constant"``.

    Raises:
        TypeError: non-integer pad widths; non-numeric constant values.
        ValueError: negative pad widths; shapes that are no ``numpy.pad`` form for the source's
            axes; a constant the dtype cannot hold; an unknown mode; padding an empty axis with a
            mode other than ``"constant"``.
    """

    def __init__(
        self,
        source: SourceLike,
        pad_width: int | Sequence[int] | Sequence[Sequence[int]],
        mode: str = "constant",
        *,
        constant_values: float | Sequence[Any] = 0,
    ) -> None:
        super().__init__(source)
        shape = self._source.shape
        self._right_padding = _is_one_int_per_axis(pad_width, len(shape))
        modes = _NUMPY_MODES if self._right_padding else _EXACT_MODES
        if not (isinstance(mode, str) and mode in modes):
            raise ValueError(f"unknown pad mode {mode!r}; supported: {', '.join(modes)}")
        if self._right_padding:
            widths: Sequence[int] = pad_width  # type: ignore[assignment]
            self._pad_width = tuple((0, int(width)) for width in widths)
        else:
            self._pad_width = _pairs("pad_width", pad_width, len(shape), integral=True)
        for axis, ((before, after), n) in enumerate(zip(self._pad_width, shape)):
            if before < 0 or after < 0:
                raise ValueError(
                    f"pad_width must be non-negative, got ({before}, {after}) for axis {axis}"
                )
            if n == 0 and (before or after) and mode not in ("constant", "empty"):
                raise ValueError(
                    f"cannot pad the empty axis {axis} with mode {mode!r}: only 'constant' "
                    "has values to put there"
                )
        self._constant_values = _pairs("constant_values", constant_values, len(shape))
        # The fill values as scalars of the dtype; other modes never use them.
        self._fill = tuple(
            tuple(_fill_value(v, self._source.dtype) for v in pair)
            for pair in self._constant_values
        ) if mode == "constant" else ()
        self._mode = mode
        self._claim_static_shape(
            PadSource,
            tuple(n + before + after for n, (before, after) in zip(shape, self._pad_width)),
        )

    @property
    def pad_width(self) -> tuple[tuple[int, int], ...]:
        """One ``(before, after)`` pair per axis (``before`` is 0 for right padding)."""
        return self._pad_width

    @property
    def mode(self) -> str:
        """The padding mode."""
        return self._mode

    @property
    def right_padding(self) -> bool:
        """``True``: 0.2's right padding of every read block; ``False``: ``numpy.pad`` of the
        whole array."""
        return self._right_padding

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(
            n + before + after for n, (before, after) in zip(self._source.shape, self._pad_width)
        )

    @property
    def chunks(self) -> tuple[int, ...] | None:
        """The source's chunks when nothing is padded in front (the grid keeps its origin)."""
        return self._source.chunks if self._keeps_origin() else None

    @property
    def shards(self) -> tuple[int, ...] | None:
        """The source's shards when nothing is padded in front (the grid keeps its origin)."""
        return self._source.shards if self._keeps_origin() else None

    def _keeps_origin(self) -> bool:
        return all(before == 0 for before, _ in self._pad_width)

    def _params(self) -> dict[str, Any]:
        if self._right_padding:
            pad_width: list[Any] = [after for _, after in self._pad_width]
        else:
            pad_width = [list(pair) for pair in self._pad_width]
        return {
            "pad_width": pad_width,
            "mode": self._mode,
            "constant_values": [list(pair) for pair in self._constant_values],
        }

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        region = tuple(s.stop - s.start for s in roi)
        if 0 in region:
            return np.empty(region, self.dtype)
        if self._right_padding:
            return self._getitem_right_padded(roi)
        if self._mode == "constant":
            return self._getitem_constant(roi)
        in_shape = self._source.shape
        indices = [
            _source_indices(np.arange(s.start, s.stop) - before, n, self._mode)
            for s, (before, _), n in zip(roi, self._pad_width, in_shape)
        ]
        box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in indices)
        data = self._read(box)
        return data[np.ix_(*(i - b.start for i, b in zip(indices, box)))]

    def _getitem_constant(self, roi: tuple[slice, ...]) -> np.ndarray:
        out = np.empty(tuple(s.stop - s.start for s in roi), self.dtype)
        inside_out, inside_in = [], []  # the part of roi covering the source, in both frames
        for axis, (s, (before, _), n) in enumerate(zip(roi, self._pad_width, self._source.shape)):
            # Fill axis by axis like numpy, so later axes' constants win in the corners.
            first = min(max(before, s.start), s.stop)  # the first position inside the source
            stop = max(min(before + n, s.stop), first)  # the end of the inside part
            low, high = self._fill[axis]
            out[(slice(None),) * axis + (slice(0, first - s.start),)] = low
            out[(slice(None),) * axis + (slice(stop - s.start, None),)] = high
            inside_out.append(slice(first - s.start, stop - s.start))
            inside_in.append(slice(first - before, stop - before))
        if all(s.stop > s.start for s in inside_out):
            out[tuple(inside_out)] = self._read(tuple(inside_in))
        return out

    def _getitem_right_padded(self, roi: tuple[slice, ...]) -> np.ndarray:
        """0.2's semantics: ``numpy.pad`` of the part of the source the region covers."""
        in_shape = self._source.shape
        read, pads, crop = [], [], []
        for axis, (s, n) in enumerate(zip(roi, in_shape)):
            if s.start < n:  # covers the source (up to its end)
                read.append(slice(s.start, min(s.stop, n)))
                pads.append((0, max(s.stop - n, 0)))
                crop.append(slice(None))
            elif self._mode in ("constant", "empty"):  # nothing to read along this axis
                read.append(slice(n, n))
                pads.append((0, s.stop - s.start))
                crop.append(slice(None))
            elif self._mode == "edge":  # the last element, repeated
                read.append(slice(n - 1, n))
                pads.append((0, s.stop - s.start))
                crop.append(slice(1, None))
            else:
                raise ValueError(
                    f"PadSource pads every read block with mode {self._mode!r} (right padding, "
                    f"0.2's semantics), so it cannot read a region starting inside the padding "
                    f"(axis {axis} starts at {s.start}, the source ends at {n}); pass pad_width "
                    "as (before, after) pairs for numpy.pad of the whole array"
                )
        data = self._read(tuple(read))
        if any(after for _, after in pads):
            kwargs: dict[str, Any] = {}
            if self._mode == "constant":
                kwargs["constant_values"] = [(low, high) for low, high in self._fill]
            data = np.pad(data, pads, mode=self._mode, **kwargs)
        return data[tuple(crop)]


def _is_one_int_per_axis(pad_width: Any, ndim: int) -> bool:
    """Whether ``pad_width`` is 0.2's form: a flat sequence of one int per axis."""
    if isinstance(pad_width, (str, bytes)) or not isinstance(pad_width, (Sequence, np.ndarray)):
        return False
    return len(pad_width) == ndim and all(
        isinstance(width, numbers.Integral) and not isinstance(width, (bool, np.bool_))
        for width in pad_width
    )


def _pairs(name: str, value: Any, ndim: int, *, integral: bool = False) -> tuple[tuple, ...]:
    """``value`` broadcast to one ``(before, after)`` pair per axis, as ``numpy.pad`` does."""
    array = np.asarray(value)
    if array.dtype.kind not in ("iu" if integral else "biuf"):
        kind = "integers" if integral else "numbers"
        raise TypeError(f"{name} must hold {kind}, got {value!r}")
    try:
        pairs = np.broadcast_to(array, (ndim, 2))
    except ValueError:
        raise ValueError(
            f"{name} {value!r} does not broadcast to one (before, after) pair for each of "
            f"{ndim} axes"
        ) from None
    if integral:
        index = operator_module.index
        return tuple((index(b), index(a)) for b, a in pairs.tolist())
    return tuple(tuple(pair) for pair in pairs.tolist())


def _fill_value(value: float, dtype: np.dtype) -> np.generic:
    """``value`` as a scalar of ``dtype``; integer and bool dtypes must hold it exactly."""
    with np.errstate(invalid="ignore", over="ignore"):
        cast = np.asarray(value).astype(dtype)[()]
    if dtype.kind in "biu" and cast != value:
        raise ValueError(f"constant_values {value!r} cannot be represented as {dtype}")
    return cast


def _source_indices(positions: np.ndarray, n: int, mode: str) -> np.ndarray:
    """The source index each position (relative to the source's start, possibly outside
    ``[0, n)``) takes its value from, for the non-constant modes; periodic like ``numpy.pad``'s
    repeated reflections."""
    if mode == "edge":
        return np.clip(positions, 0, n - 1)
    if mode == "wrap":
        return positions % n
    if mode == "symmetric":  # ... 1 0 | 0 1 2 ... n-1 | n-1 n-2 ...
        period = positions % (2 * n)
        return np.where(period < n, period, 2 * n - 1 - period)
    # reflect: ... 2 1 | 0 1 2 ... n-1 | n-2 ... (a single element repeats itself)
    if n == 1:
        return np.zeros_like(positions)
    period = positions % (2 * (n - 1))
    return np.where(period < n, period, 2 * (n - 1) - period)


# --- ExpandDimsSource ---------------------------------------------------------------------------


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

    def __init__(self, source: SourceLike, axis: int | Sequence[int] = 0) -> None:
        super().__init__(source)
        several = isinstance(axis, (tuple, list))
        entries = tuple(axis) if several else (axis,)  # type: ignore[arg-type]
        try:
            entries = tuple(operator_module.index(a) for a in entries)
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
        self._axis: int | tuple[int, ...] = entries if several else entries[0]
        self._old_axes = tuple(a for a in range(ndim) if a not in self._new_axes)
        static = self._source._static_shape
        self._claim_static_shape(ExpandDimsSource, None if static is None else self._expand(static))

    @property
    def axis(self) -> int | tuple[int, ...]:
        """The ``axis`` argument as given (a tuple when several)."""
        return self._axis

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

    def _params(self) -> dict[str, Any]:
        return {"axis": list(self._axis) if isinstance(self._axis, tuple) else self._axis}

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
