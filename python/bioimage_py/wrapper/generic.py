"""``ThresholdSource``: a boolean mask comparing every value of a source with a threshold."""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from bioimage_py.sources.dispatch import SourceLike
from bioimage_py.wrapper.base import WrapperSource, register_wrapper

__all__ = ["ThresholdSource"]

# mode -> the numpy comparison computing ``data <op> threshold``.
_MODES = {
    "greater": np.greater,
    "greater_equal": np.greater_equal,
    "less": np.less,
    "less_equal": np.less_equal,
    "equal": np.equal,
    "not_equal": np.not_equal,
}


@register_wrapper
class ThresholdSource(WrapperSource):
    """``source <op> threshold`` as a boolean source (e.g. a foreground mask).

    The comparison is numpy's (``np.greater(data, threshold)`` for ``mode="greater"``), so
    integer sources compare exactly with integer thresholds and NaN compares as numpy says
    (``False`` except for ``"not_equal"``). Chunks and shards are the wrapped source's.

    Args:
        source: the source to threshold.
        threshold: a real number (int or float).
        mode: ``"greater"`` (default), ``"greater_equal"``, ``"less"``, ``"less_equal"``,
            ``"equal"`` or ``"not_equal"``.

    Raises:
        TypeError: ``threshold`` is not a real number.
        ValueError: an unknown ``mode``.
    """

    def __init__(self, source: SourceLike, threshold: float, mode: str = "greater") -> None:
        super().__init__(source)
        if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, numbers.Real):
            raise TypeError(f"threshold must be a real number (int or float), got {threshold!r}")
        compare = _MODES.get(mode) if isinstance(mode, str) else None
        if compare is None:
            raise ValueError(f"unknown threshold mode {mode!r}; supported: {', '.join(_MODES)}")
        # A plain int or float: JSON-able, and compared by numpy without a dtype of its own.
        self._threshold = int(threshold) if isinstance(threshold, numbers.Integral) else float(
            threshold
        )
        self._mode = mode
        self._compare = compare

    @property
    def threshold(self) -> float:
        """The threshold."""
        return self._threshold

    @property
    def mode(self) -> str:
        """The comparison: ``source <mode> threshold``."""
        return self._mode

    @property
    def dtype(self) -> np.dtype:
        """Always ``bool``."""
        return np.dtype(bool)

    @property
    def params(self) -> dict[str, Any]:
        return {"threshold": self._threshold, "mode": self._mode}

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        return np.asarray(self._compare(self._read(roi), self._threshold))
