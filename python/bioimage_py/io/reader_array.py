"""``ReaderArray``: the base of the read-only arrays of the reader formats (TIFF, image-slice
folders, KNOSSOS, MRC, NIfTI).

It holds what every one of them offers in the same way: ``shape``, ``dtype``, ``ndim``,
``size``, ``chunks`` and numpy conversion, and numpy basic indexing normalized once by the Rust
core. A subclass sets ``_shape`` and ``_dtype`` and reads a region: ``_read(roi)`` receives one
in-bounds, step-1 slice per axis and returns a new array of that region.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from bioimage_py._indexing import normalize_index, squeeze_singletons

__all__ = ["ReaderArray"]


class ReaderArray(ABC):
    """A read-only array whose reads return new numpy arrays (never views of a file's map)."""

    _shape: tuple[int, ...]
    _dtype: np.dtype
    #: The unit of storage reads; ``None`` when the data has no chunk structure.
    chunks: tuple[int, ...] | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def size(self) -> int:
        return math.prod(self._shape)

    def __getitem__(self, index: Any) -> Any:
        """numpy basic indexing; a new array (a numpy scalar for all-integer indices)."""
        roi, to_squeeze = normalize_index(index, self._shape)
        return squeeze_singletons(self._read(roi), to_squeeze)

    @abstractmethod
    def _read(self, roi: tuple[slice, ...]) -> np.ndarray:
        """The region ``roi`` (one in-bounds step-1 slice per axis) as a new array."""

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[...]
        return out if dtype is None else out.astype(dtype, copy=False)
