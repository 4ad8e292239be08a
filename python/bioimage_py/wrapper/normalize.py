"""``NormalizeSource``: min-max normalization of a source to ``[0, 1]`` with fixed bounds."""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from bioimage_py.blocking import Blocking
from bioimage_py.sources.base import Source
from bioimage_py.sources.dispatch import SourceLike
from bioimage_py.util import to_roi
from bioimage_py.wrapper.base import WrapperSource, register_wrapper

__all__ = ["NormalizeSource"]

# Elements per block when scanning a source for its bounds (~128 MiB of float64).
_SCAN_ELEMENTS = 1 << 24


@register_wrapper
class NormalizeSource(WrapperSource):
    """``(source - lower) / (upper - lower)`` as a floating-point source.

    The bounds are fixed when the wrapper is made, so every block of a block-wise computation is
    scaled alike (normalizing each block by its own min and max would not be). A bound left
    ``None`` is computed here, once, as the source's minimum or maximum in one block-wise pass
    over it (chunk-aligned blocks, so each chunk is read once; NaN ignored): the constructor of a
    huge source takes that long, while the spec, pickles and workers carry the computed numbers
    and never scan again. Read ``.lower`` / ``.upper`` to reuse them elsewhere, e.g. for another
    volume of the same acquisition.

    Values outside ``[lower, upper]`` map outside ``[0, 1]`` unless ``clip=True``. When
    ``upper == lower`` (a constant volume) every value maps to 0. The arithmetic runs in float64
    and is rounded to ``dtype`` once (so 32-bit integers and bounds closer together than float32
    resolves come out right).

    Args:
        source: the source to normalize (bool, integer or float values).
        lower: the value mapped to 0; ``None``: the source's minimum.
        upper: the value mapped to 1; ``None``: the source's maximum.
        dtype: the floating-point dtype of the result (``"float32"`` by default).
        clip: clip the result to ``[0, 1]``.

    Raises:
        TypeError: a bound that is not a real number; a source of non-numeric dtype.
        ValueError: ``dtype`` is not a floating-point type; ``lower > upper``; a NaN or infinite
            bound; bounds to compute over an empty (or all-NaN) source.
    """

    def __init__(
        self,
        source: SourceLike,
        lower: float | None = None,
        upper: float | None = None,
        dtype: Any = "float32",
        *,
        clip: bool = False,
    ) -> None:
        super().__init__(source)
        in_dtype = self._source.dtype
        if in_dtype.kind not in "biuf":
            raise TypeError(f"NormalizeSource needs bool, integer or float values, not {in_dtype}")
        try:
            out_dtype = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"dtype must be a floating-point dtype, got {dtype!r}") from None
        if out_dtype.kind != "f":
            raise ValueError(f"dtype must be a floating-point dtype, got {dtype!r}")
        lower, upper = _check_bound("lower", lower), _check_bound("upper", upper)
        if lower is None or upper is None:
            found_lower, found_upper = _min_max(self._source)
            lower = found_lower if lower is None else lower
            upper = found_upper if upper is None else upper
        if lower > upper:
            raise ValueError(f"lower ({lower}) must not be greater than upper ({upper})")
        self._lower, self._upper = lower, upper
        self._dtype = out_dtype
        self._clip = bool(clip)

    @property
    def lower(self) -> float:
        """The value mapped to 0 (given, or the source's minimum)."""
        return self._lower

    @property
    def upper(self) -> float:
        """The value mapped to 1 (given, or the source's maximum)."""
        return self._upper

    @property
    def clip(self) -> bool:
        """Whether results are clipped to ``[0, 1]``."""
        return self._clip

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def params(self) -> dict[str, Any]:
        return {
            "lower": self._lower,
            "upper": self._upper,
            "dtype": self._dtype.name,
            "clip": self._clip,
        }

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        data = self._read(roi).astype(np.float64)  # a copy: safe to modify in place
        data -= self._lower
        if self._upper > self._lower:
            data /= self._upper - self._lower
        else:  # a constant volume: nothing to stretch
            data[...] = 0
        if self._clip:
            np.clip(data, 0, 1, out=data)
        with np.errstate(over="ignore"):  # beyond float32's range is inf, as it should be
            return data.astype(self._dtype, copy=False)


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
