"""``PadSource``: a source padded as ``numpy.pad`` pads, computed only for the region read."""
from __future__ import annotations

import operator
from typing import Any

import numpy as np

from bioimage_py.sources.dispatch import SourceLike
from bioimage_py.wrapper.base import WrapperSource, register_wrapper

__all__ = ["PadSource"]

_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


@register_wrapper
class PadSource(WrapperSource):
    """``np.pad(source, pad_width, mode, constant_values=...)`` without materializing it: a read
    of any region equals the same region of the padded array, and reads only the part of the
    source it needs.

    ``pad_width`` and ``constant_values`` take numpy's forms: a number for every side of every
    axis, ``(before, after)`` for every axis, or one ``(before, after)`` pair per axis. With
    per-axis constants the corners get the constant of the last padded axis, as in numpy.
    Padding wider than an axis repeats the reflection (or wrap) as numpy does.

    Args:
        source: the source to pad.
        pad_width: the number of elements added before and after each axis (non-negative ints).
        mode: ``"constant"`` (default), ``"edge"``, ``"reflect"``, ``"symmetric"`` or ``"wrap"``.
        constant_values: the fill value(s) for ``"constant"`` (ignored by the other modes). For
            integer and bool sources they must be exactly representable in the dtype (numpy would
            silently wrap -1 to 255 in uint8 or truncate 1.5 to 1); float sources round them.

    Raises:
        TypeError: non-integer pad widths; non-numeric constant values.
        ValueError: negative pad widths; shapes that do not broadcast to one ``(before, after)``
            pair per axis; a constant that an integer dtype cannot hold; an unknown mode;
            padding an empty axis with a mode other than ``"constant"``.
    """

    def __init__(
        self,
        source: SourceLike,
        pad_width: int | tuple[int, int] | tuple[tuple[int, int], ...],
        mode: str = "constant",
        constant_values: float | tuple = 0,
    ) -> None:
        super().__init__(source)
        shape = self._source.shape
        if not isinstance(mode, str) or mode not in _MODES:
            raise ValueError(f"unknown pad mode {mode!r}; supported: {', '.join(_MODES)}")
        self._pad_width = _pairs("pad_width", pad_width, len(shape), integral=True)
        for axis, ((before, after), n) in enumerate(zip(self._pad_width, shape)):
            if before < 0 or after < 0:
                raise ValueError(
                    f"pad_width must be non-negative, got ({before}, {after}) for axis {axis}"
                )
            if n == 0 and (before or after) and mode != "constant":
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
        self._static_shape = tuple(
            n + before + after for n, (before, after) in zip(shape, self._pad_width)
        )

    @property
    def pad_width(self) -> tuple[tuple[int, int], ...]:
        """One ``(before, after)`` pair per axis."""
        return self._pad_width

    @property
    def mode(self) -> str:
        """The padding mode."""
        return self._mode

    @property
    def shape(self) -> tuple[int, ...]:
        return self._static_shape

    @property
    def chunks(self) -> tuple[int, ...] | None:
        """``None``: padding shifts the chunk grid."""
        return None

    @property
    def shards(self) -> tuple[int, ...] | None:
        return None

    @property
    def params(self) -> dict[str, Any]:
        return {
            "pad_width": [list(pair) for pair in self._pad_width],
            "mode": self._mode,
            "constant_values": [list(pair) for pair in self._constant_values],
        }

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        if self._mode == "constant":
            return self._getitem_constant(roi)
        in_shape = self._source.shape
        indices = [
            _source_indices(np.arange(s.start, s.stop) - before, n, self._mode)
            for s, (before, _), n in zip(roi, self._pad_width, in_shape)
        ]
        if any(len(i) == 0 for i in indices):
            return np.empty(tuple(s.stop - s.start for s in roi), self.dtype)
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
        return tuple((operator.index(b), operator.index(a)) for b, a in pairs.tolist())
    return tuple(tuple(pair) for pair in pairs.tolist())


def _fill_value(value: bool | int | float, dtype: np.dtype) -> np.generic:
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
