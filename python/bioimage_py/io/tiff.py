"""TIFF files (``.tif``, ``.tiff``, format ``"tif"``): read-only, through ``tifffile``.

``open_tiff(path, mode, series=0)`` returns a ``TiffArray``, the image data of one series of the
file (the root array, ``internal_path=""``).

* When the series is stored uncompressed and contiguously, a region read reads just that region
  from the file with ``pread`` (``raw_file.RawFileData``). It is not memory-mapped: a map over a
  file that shrinks after opening kills the process with SIGBUS on access, while a short read
  raises ``OSError`` naming the file.
* Otherwise (compressed, tiled, scattered pages) it is read lazily page by page: a region read
  decodes only the pages (2D planes) the region touches, never the whole stack, on tifffile's
  thread pool.

Damaged files: at open, a series whose data (the contiguous block, or the strips of its first and
last page) reach past the end of the file raises ``ValueError`` naming the file; a page that
cannot be read or decoded later (the file shrank, or a page is corrupt) raises ``OSError`` naming
the file and the pages.

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
from bioimage_py.io.raw_file import RawFileData
from bioimage_py.io.reader_array import ReaderArray

__all__ = ["TiffArray", "check_series_in_file", "open_tiff"]

# What tifffile and its decoders raise for a page it cannot read or decode (truncated strips,
# corrupt compressed data, a broken IFD chain) is not documented and differs between codecs
# (ValueError, struct.error, zlib.error, IndexError, ...): any Exception but running out of memory.
_PAGE_ERRORS = Exception


def _tifffile() -> Any:
    return import_optional("tifffile", format="TIFF", install="pip install tifffile")


def _page_end(page: Any) -> int:
    """The end (byte offset) of the last strip or tile of ``page``; 0 when it stores none."""
    return max(
        (int(o) + int(c) for o, c in zip(page.dataoffsets, page.databytecounts) if c),
        default=0,
    )


def _declared_values(tif: Any) -> int | None:
    """How many values the ImageJ or tifffile ("shaped") metadata of the file describe."""
    try:
        if tif.is_imagej and tif.imagej_metadata:
            images = int(tif.imagej_metadata.get("images", 1))
            return images * math.prod(int(n) for n in tif.pages[0].shape)
        if tif.is_shaped and tif.shaped_metadata:
            return math.prod(int(n) for n in tif.shaped_metadata[0]["shape"])
    except MemoryError:
        raise
    except Exception:  # metadata tifffile itself could not use: nothing to compare with
        return None
    return None


def check_series_in_file(tif: Any, series: Any, path: str) -> None:
    """Check that the data a series' header describes lie inside the file, at open.

    Checks that the first series holds as many values as the file's ImageJ or tifffile metadata
    describe (a truncated file breaks the chain of pages, and tifffile then presents the pages it
    finds), and the contiguous data block when the series has one, else the strips (or tiles) of
    its first and last page: truncated transfers cut the end of a file.

    Raises:
        ValueError: Naming the file, the byte range described and the file's size.
    """
    declared = _declared_values(tif) if series is tif.series[0] else None
    found = math.prod(int(n) for n in series.shape)
    if declared is not None and declared > found:
        # tifffile fell back to the pages it could find: the IFD chain ends early.
        raise ValueError(
            f"{path!r} is truncated or damaged: its ImageJ or tifffile metadata describe "
            f"{declared} values, but only {found} (shape {tuple(series.shape)}) could be found"
        )
    size = int(tif.filehandle.size)
    end = 0
    if series.dataoffset is not None:
        end = int(series.dataoffset) + int(series.nbytes)
    else:
        try:
            pages = series.pages
            checked = [pages[0]] if len(pages) < 2 else [pages[0], pages[len(pages) - 1]]
            for page in checked:
                if page is None:
                    raise IndexError("missing page")
                end = max(end, _page_end(page))
        except MemoryError:
            raise
        except _PAGE_ERRORS as err:
            raise ValueError(
                f"{path!r} is damaged: the pages of its image series cannot be read "
                f"({type(err).__name__}: {err}); the file may be truncated"
            ) from None
    if end > size:
        raise ValueError(
            f"{path!r} is truncated: its header describes image data up to byte {end}, but the "
            f"file holds {size} bytes"
        )


class TiffArray(ReaderArray):
    """One series of a TIFF file as a read-only, lazily read array.

    ``arr[index]`` takes numpy basic indexing and returns a new numpy array. ``contiguous``
    tells whether the series is read straight from the file (uncompressed, contiguous).
    """

    def __init__(self, path: str, series: int = 0) -> None:
        tifffile = _tifffile()
        self._path = path
        self._lock = threading.Lock()
        self._raw: RawFileData | None = None
        try:
            self._tif = tifffile.TiffFile(path)
        except (MemoryError, FileNotFoundError, PermissionError, IsADirectoryError):
            raise
        except Exception as err:  # tifffile's errors on damaged headers differ (see _PAGE_ERRORS)
            raise ValueError(
                f"{path!r} is not a readable TIFF file ({type(err).__name__}: {err})"
            ) from None
        try:
            self._inspect(series)
        except BaseException as err:
            self.close()
            if isinstance(err, MemoryError) or not isinstance(err, _PAGE_ERRORS) or (
                isinstance(err, (ValueError, OSError)) and path in str(err)
            ):
                raise
            raise ValueError(
                f"{path!r} has a damaged TIFF header ({type(err).__name__}: {err})"
            ) from None

    def _inspect(self, series: int) -> None:
        """Find the series, check it against the file, and plan how to read it."""
        path = self._path
        n_series = len(self._tif.series)
        if not 0 <= series < n_series:
            raise ValueError(
                f"{path!r} holds {n_series} image series; series={series} is out of range"
            )
        self._series = self._tif.series[series]
        self._series_index = series
        self._shape = tuple(int(s) for s in self._series.shape)
        self._dtype = np.dtype(self._series.dtype).newbyteorder("=")
        check_series_in_file(self._tif, self._series, path)
        if self._series.dataoffset is not None:  # uncompressed and contiguous
            stored = np.dtype(self._series.dtype).newbyteorder(self._tif.byteorder)
            self._raw = RawFileData(path, self._series.dataoffset, self._shape, stored)
        # Indexed lazily: loading every page header up front costs ~0.1 ms per page, and a
        # contiguous stack never needs them.
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
    def contiguous(self) -> bool:
        """Whether the series is stored uncompressed and contiguously, so that a region read
        reads just that region from the file."""
        return self._raw is not None

    @property
    def memmapped(self) -> bool:
        """The former name of ``contiguous`` (such series used to be memory-mapped)."""
        return self.contiguous

    def _read(self, roi: tuple[slice, ...]) -> np.ndarray:
        if self._raw is not None:
            return self._raw.read(roi).astype(self._dtype, copy=False)
        if self._tif.filehandle.closed:
            raise ValueError(f"I/O operation on closed TIFF file {self._path!r}")
        if self._lead is None:
            with self._lock:
                if self._whole is None:
                    whole = self._read_pages(lambda: self._series.asarray(), "all pages")
                    self._whole = np.asarray(whole, dtype=self._dtype)
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
            pages = self._read_pages(
                lambda: self._tif.asarray(key=flats, series=self._series_index,
                                          maxworkers=os.cpu_count()),
                _describe_pages(flats),
            )
        pages = np.asarray(pages, dtype=self._dtype).reshape(lead_shape + self._page_shape)
        return np.ascontiguousarray(pages[(Ellipsis, *page_roi)])

    def _read_pages(self, read: Any, which: str) -> Any:
        """``read()``, its failures as ``OSError`` naming the file and the pages."""
        try:
            return read()
        except MemoryError:
            raise
        except _PAGE_ERRORS as err:
            if isinstance(err, OSError) and self._path in str(err):
                raise
            raise OSError(
                f"could not read {which} of {self._path!r} ({type(err).__name__}: {err}); the "
                "file may be truncated or corrupt"
            ) from err

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
        self._tif.close()

    def __enter__(self) -> TiffArray:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        how = "contiguous" if self.contiguous else "lazy"
        return f"TiffArray({self._path!r}, shape={self._shape}, dtype={self._dtype}, {how})"


def _describe_pages(flats: list[int]) -> str:
    if len(flats) == 1:
        return f"page {flats[0]}"
    return f"pages {flats[0]}-{flats[-1]}" if flats == list(range(flats[0], flats[-1] + 1)) \
        else f"pages {flats[:5]}{'...' if len(flats) > 5 else ''}"


def open_tiff(path: str, mode: str = "r", *, series: int = 0) -> TiffArray:
    """The registry constructor of format ``"tif"``: series ``series`` of the TIFF at ``path``."""
    if mode != "r":
        raise ValueError(f"TIFF files are read-only; open them with mode='r', not {mode!r}")
    return TiffArray(path, series=int(series))
