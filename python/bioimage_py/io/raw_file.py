"""An array stored uncompressed, C-ordered and contiguously in a file, read region by region with
``pread`` (uncompressed TIFF series, MRC data blocks).

Why not a memory map: a numpy memmap over a file that shrinks after it was mapped (another
program rewrites or truncates it; a transfer is restarted) kills the whole process with SIGBUS as
soon as a vanished page is touched, which no ``except`` can catch, and checking the size before
touching the map cannot close the window in which the file shrinks during the copy. ``pread`` of a
vanished range returns fewer bytes instead, which ``RawFileData`` reports as an ``OSError``
naming the file. The file descriptor stays open between reads (``pread`` needs no shared file
position, so reads from several threads, and from processes forked after opening, are safe).

How a region is read: the region is a set of equally long contiguous runs of the file (one per
row, or per plane when the trailing axes are read whole). Long runs are read straight into the
result, one ``pread`` each; when runs are short (a narrow column of a wide image), fewer, longer
reads cover several runs each and the region is gathered from a bounded buffer. The choice
minimizes an estimate of syscall count times per-call cost plus bytes copied, so that neither
many tiny reads nor one huge read of mostly unwanted bytes is made.
"""
from __future__ import annotations

import math
import os
import threading
from typing import Any

import numpy as np

__all__ = ["RawFileData"]

# Cost model (measured on Linux VMs, data in the page cache): one pread call from Python costs
# 3-5 us, about as much as copying this many bytes; a gathered byte costs about as much as a read
# one.
_CALL_COST_BYTES = 32 * 1024
# Up to this many reads, their offsets are computed in Python (numpy's setup costs more).
_FEW_READS = 256
# Largest buffer a gathered read uses (the result itself is not counted).
_MAX_BUFFER_BYTES = 32 * 1024 * 1024


class RawFileData:
    """The array of ``shape`` and ``dtype`` stored C-ordered at byte ``offset`` of ``path``.

    Args:
        path: The file (named in every error).
        offset: The byte offset of the first element.
        shape: The array's shape.
        dtype: The stored dtype (byte order included); reads return this dtype.

    Raises:
        ValueError: The file is shorter than ``offset`` plus the array's size (naming the file
            and both sizes).
        OSError: The file cannot be opened.
    """

    def __init__(self, path: str, offset: int, shape: tuple[int, ...], dtype: Any) -> None:
        self._path = path
        self._offset = int(offset)
        self._shape = tuple(int(s) for s in shape)
        self._dtype = np.dtype(dtype)
        self._itemsize = self._dtype.itemsize
        # Element strides of the C-ordered array.
        self._strides = tuple(
            math.prod(self._shape[axis + 1:]) for axis in range(len(self._shape))
        )
        self._end = self._offset + math.prod(self._shape) * self._itemsize
        self._fd: int | None = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self._lock = threading.Lock()  # only for platforms without pread (seek + read)
        try:
            size = self.file_size()
            if size < self._end:
                raise ValueError(
                    f"{path!r} is truncated: its header describes {self._end - self._offset} "
                    f"bytes of data at offset {self._offset} (shape {self._shape}, dtype "
                    f"{self._dtype}), ending at byte {self._end}, but the file holds {size} bytes"
                )
        except BaseException:
            self.close()
            raise

    @property
    def path(self) -> str:
        return self._path

    @property
    def offset(self) -> int:
        """The byte offset of the first element in the file."""
        return self._offset

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        """The stored dtype (possibly non-native byte order)."""
        return self._dtype

    @property
    def closed(self) -> bool:
        return self._fd is None

    def file_size(self) -> int:
        """The file's current size in bytes (``fstat`` of the open descriptor)."""
        return os.fstat(self._checked_fd()).st_size

    def _checked_fd(self) -> int:
        if self._fd is None:
            raise ValueError(f"I/O operation on closed file {self._path!r}")
        return self._fd

    def read(self, roi: tuple[slice, ...]) -> np.ndarray:
        """The region ``roi`` (one in-bounds step-1 slice per axis) as a new C-contiguous array
        of the stored dtype.

        Raises:
            OSError: The file ended before the region (it shrank after opening), naming it.
            ValueError: The file was closed.
        """
        fd = self._checked_fd()
        extent = tuple(s.stop - s.start for s in roi)
        out = np.empty(extent, dtype=self._dtype)
        if out.size == 0:
            return out
        ndim = len(extent)
        if ndim == 0:
            self._read_into(fd, memoryview(out.reshape(1)).cast("B"), self._offset)
            return out
        run_axis = _run_axis(extent, self._shape)
        level = self._cheapest_level(extent, run_axis)
        if level == run_axis:
            self._read_runs(fd, roi, out, run_axis)
        else:
            self._read_gathered(fd, roi, out, level)
        return out

    def _span(self, extent: tuple[int, ...], level: int) -> int:
        """Elements from the region's first to its last element within one index of the axes
        before ``level``."""
        return sum((extent[a] - 1) * self._strides[a] for a in range(level, len(extent))) + 1

    def _cheapest_level(self, extent: tuple[int, ...], run_axis: int) -> int:
        """The axis ``level`` such that one read per index of the axes before it costs least."""
        best_level, best_cost = run_axis, math.inf
        for level in range(run_axis + 1):
            reads = math.prod(extent[:level])
            span_bytes = self._span(extent, level) * self._itemsize
            if level < run_axis and span_bytes > _MAX_BUFFER_BYTES:
                continue
            cost = reads * (_CALL_COST_BYTES + span_bytes)
            if level < run_axis:  # the gather copies the result once more
                cost += math.prod(extent) * self._itemsize
            if cost < best_cost:
                best_level, best_cost = level, cost
        return best_level

    def _first_offsets(self, roi: tuple[slice, ...], level: int) -> list[int]:
        """Byte offsets of the region's first element within each index of the axes before
        ``level`` (C order)."""
        item = self._itemsize
        first = self._offset + item * sum(s.start * st for s, st in zip(roi, self._strides))
        extent = [s.stop - s.start for s in roi[:level]]
        if math.prod(extent) <= _FEW_READS:
            offsets = [first]
            for axis, n in enumerate(extent):
                step = self._strides[axis] * item
                offsets = [o + i * step for o in offsets for i in range(n)]
            return offsets
        grid = np.zeros((1,) * level, dtype=np.int64)
        for axis, n in enumerate(extent):
            shape = [1] * level
            shape[axis] = n
            grid = grid + (np.arange(n, dtype=np.int64) * self._strides[axis]).reshape(shape)
        return (first + grid.reshape(-1) * item).tolist()

    def _read_runs(self, fd: int, roi: tuple[slice, ...], out: np.ndarray, run_axis: int) -> None:
        """One pread per contiguous run, straight into ``out``."""
        runs = memoryview(out.reshape(-1)).cast("B")
        run_bytes = out.nbytes // math.prod(out.shape[:run_axis])
        for i, offset in enumerate(self._first_offsets(roi, run_axis)):
            self._read_into(fd, runs[i * run_bytes:(i + 1) * run_bytes], offset)

    def _read_gathered(self, fd: int, roi: tuple[slice, ...], out: np.ndarray, level: int) -> None:
        """One pread per index of the axes before ``level`` into a buffer, then the region's
        elements copied out of it."""
        extent = out.shape
        span = self._span(extent, level)
        buffer = bytearray(span * self._itemsize)
        # The region inside one read: the file's strides over the buffer (np.ndarray over a
        # buffer costs far less than as_strided).
        view = np.ndarray(extent[level:], dtype=self._dtype, buffer=buffer,
                          strides=tuple(s * self._itemsize for s in self._strides[level:]))
        lead = out.reshape((-1, *extent[level:]))
        raw = memoryview(buffer)
        for i, offset in enumerate(self._first_offsets(roi, level)):
            self._read_into(fd, raw, offset)
            lead[i] = view

    def _read_into(self, fd: int, target: memoryview, offset: int) -> None:
        """Fill ``target`` from byte ``offset``; ``OSError`` naming the file if it ends first."""
        done, wanted = 0, target.nbytes
        while done < wanted:
            got = _pread_into(fd, target[done:], offset + done, self._lock)
            if got == 0:
                raise OSError(
                    f"{self._path!r} ended at byte {self.file_size()} while reading bytes "
                    f"{offset}-{offset + wanted} of its data (which ends at byte {self._end}): "
                    "the file was truncated or replaced after it was opened"
                )
            done += got

    def close(self) -> None:
        """Close the file descriptor (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # at interpreter exit os may be gone already
            pass

    def __repr__(self) -> str:
        return (f"RawFileData({self._path!r}, offset={self._offset}, shape={self._shape}, "
                f"dtype={self._dtype})")


def _run_axis(extent: tuple[int, ...], shape: tuple[int, ...]) -> int:
    """The first axis after which the region covers every axis whole: a region is one
    contiguous run of the file per index of the axes before it."""
    axis = len(shape) - 1
    while axis > 0 and extent[axis] == shape[axis]:
        axis -= 1
    return axis


def _pread_into(fd: int, target: memoryview, offset: int, lock: threading.Lock) -> int:
    if hasattr(os, "preadv"):
        return os.preadv(fd, [target], offset)
    if hasattr(os, "pread"):
        data = os.pread(fd, target.nbytes, offset)
        target[:len(data)] = data
        return len(data)
    with lock:  # no positional reads (Windows): seek and read under a lock
        os.lseek(fd, offset, os.SEEK_SET)
        data = os.read(fd, target.nbytes)
    target[:len(data)] = data
    return len(data)
