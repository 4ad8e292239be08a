"""TIFF files (``.tif``, ``.tiff``, format ``"tif"``): read-only, through ``tifffile``.

``open_tiff(path, mode, series=0)`` returns a ``TiffArray``, the image data of one series of the
file (the root array, ``internal_path=""``).

* When the series is stored uncompressed and contiguously, it is memory-mapped with
  ``tifffile.memmap`` and a region read copies just that region out of the map.
* Otherwise (compressed, tiled, scattered pages) it is read lazily page by page: a region read
  decodes only the pages (2D planes) the region touches, never the whole stack, on tifffile's
  thread pool.

Axis order: as ``tifffile`` gives the series, C order with x varying fastest: a single image is
``(y, x)``, a multi-page stack ``(z, y, x)`` (z is the page index: slice index first), an ImageJ or
shaped hyperstack e.g. ``(t, z, y, x)``; RGB samples, when present, are the last axis. Data of a
big-endian file is presented in native byte order. ``chunks`` is one page, ``(1, ..., y, x)``.
"""
from __future__ import annotations

import math
import os
import threading
from typing import Any

import numpy as np

from bioimage_py.io.optional import import_optional
from bioimage_py.io.reader_array import ReaderArray

__all__ = ["TiffArray", "open_tiff"]


def _tifffile() -> Any:
    return import_optional("tifffile", format="TIFF", install="pip install tifffile")


class TiffArray(ReaderArray):
    """One series of a TIFF file as a read-only, lazily read array.

    ``arr[index]`` takes numpy basic indexing and returns a new numpy array. ``memmapped`` tells whether the data is memory-mapped.
    """

    def __init__(self, path: str, series: int = 0) -> None:
        tifffile = _tifffile()
        self._path = path
        self._lock = threading.Lock()
        self._tif = tifffile.TiffFile(path)
        try:
            if not 0 <= series < len(self._tif.series):
                raise ValueError(
                    f"{path!r} holds {len(self._tif.series)} image series; series={series} "
                    "is out of range"
                )
            self._series = self._tif.series[series]
            self._series_index = series
            self._shape = tuple(int(s) for s in self._series.shape)
            self._dtype = np.dtype(self._series.dtype).newbyteorder("=")
            self._memmap = None
            if self._series.dataoffset is not None:  # uncompressed and contiguous
                try:
                    self._memmap = tifffile.memmap(path, series=series, mode="r")
                except (ValueError, OSError, TypeError):
                    self._memmap = None
            if self._memmap is not None and tuple(self._memmap.shape) != self._shape:
                self._memmap = None
            # Indexed lazily: loading every page header up front costs ~0.1 ms per page, and a
            # memory-mapped stack never needs them.
            self._pages = self._series.pages
            keyframe = self._series.keyframe
            self._page_shape = tuple(int(s) for s in keyframe.shape)
            n_lead = len(self._shape) - len(self._page_shape)
            self._lead = self._shape[:n_lead] if n_lead >= 0 else None
            if (
                self._lead is None
                or self._shape[n_lead:] != self._page_shape
                or math.prod(self._lead) != len(self._pages)
            ):
                self._lead = None  # pages do not map to leading axes: decode the series at once
            self._whole: np.ndarray | None = None
        except BaseException:
            self._tif.close()
            raise

    @property
    def path(self) -> str:
        return self._path

    @property
    def chunks(self) -> tuple[int, ...] | None:
        """One page: ``(1, ..., y, x)``; ``None`` for a file whose pages are not planes."""
        if self._lead is None:
            return None
        return (1,) * len(self._lead) + self._page_shape

    @property
    def memmapped(self) -> bool:
        """Whether the data is read from a memory map (uncompressed, contiguous)."""
        return self._memmap is not None

    def _read(self, roi: tuple[slice, ...]) -> np.ndarray:
        if self._memmap is not None:
            return np.array(self._memmap[roi], dtype=self._dtype)
        if self._lead is None:
            with self._lock:
                if self._whole is None:
                    self._whole = np.asarray(self._series.asarray(), dtype=self._dtype)
            return self._whole[roi].copy()
        n_lead = len(self._lead)
        lead_roi, page_roi = roi[:n_lead], roi[n_lead:]
        lead_shape = tuple(s.stop - s.start for s in lead_roi)
        out_shape = tuple(s.stop - s.start for s in roi)
        if math.prod(out_shape) == 0:
            return np.zeros(out_shape, dtype=self._dtype)
        flats = [
            int(np.ravel_multi_index(tuple(s.start + i for s, i in zip(lead_roi, lead)), self._lead))
            for lead in np.ndindex(*lead_shape)
        ] if n_lead else [0]
        with self._lock:  # tifffile's file handle is not safe to seek from several threads
            # Only the pages the region touches; tifffile decodes them on a thread pool.
            pages = self._tif.asarray(key=flats, series=self._series_index,
                                      maxworkers=os.cpu_count())
        pages = np.asarray(pages, dtype=self._dtype).reshape(lead_shape + self._page_shape)
        return np.ascontiguousarray(pages[(Ellipsis, *page_roi)])

    def close(self) -> None:
        self._memmap = None
        self._tif.close()

    def __enter__(self) -> TiffArray:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        how = "memmap" if self.memmapped else "lazy"
        return f"TiffArray({self._path!r}, shape={self._shape}, dtype={self._dtype}, {how})"


def open_tiff(path: str, mode: str = "r", *, series: int = 0) -> TiffArray:
    """The registry constructor of format ``"tif"``: series ``series`` of the TIFF at ``path``."""
    if mode != "r":
        raise ValueError(f"TIFF files are read-only; open them with mode='r', not {mode!r}")
    return TiffArray(path, series=int(series))
