"""MRC files (``.mrc``, ``.rec``): read-only and memory-mapped, through ``mrcfile``.

``open_mrc(path, mode)`` opens the file with ``mrcfile.mmap(path, mode="r")`` and returns an
``SingleArrayFile``: a container with one array, ``"data"`` (the default ``internal_path``). Nothing is
read up front but the header; every region read reads just that region from the file.

Reads use ``pread`` (``raw_file.RawFileData``), not the memory map mrcfile makes: touching a
memory map over a file that shrank after opening kills the process with SIGBUS, while a short
read raises ``OSError`` naming the file. (mrcfile's map describes the data block -- shape,
dtype, offset -- and is never read.) A header that describes more data than the file holds
raises ``ValueError`` naming the file at open.

Axis order: C order with x varying fastest on disk, as ``mrcfile`` (and numpy) gives it:

* a single 2D image: ``(y, x)``;
* a volume or an image stack: ``(z, y, x)`` (for a stack, z is the image index);
* a stack of volumes: ``(n, z, y, x)``.

Orientation: the y axis is presented *flipped* (row ``0`` is the file's last row), as
bioimage-py 0.2 and elf present MRC data, so that code written for them reads the same values.
(MRC viewers such as IMOD draw the file's first row at the bottom, numpy-based ones draw row 0
at the top: flipped, an image looks in napari or matplotlib as it does in IMOD.) Pass
``flip_y=False`` to ``open_source`` for the rows in file order, as ``mrcfile.open(...).data``
gives them; the choice is recorded in the spec. Opening copies nothing; a region read reads the
region's rows in file order and returns them flipped. (0.2 flipped the first axis of a 4D stack
of volumes instead of y; here y is flipped for every number of axes.)

So a volume is presented ``(z, y, x)`` as the rest of ``bioimage_py`` indexes, and a slab along
the first axis is one contiguous range of the file. Data in a big-endian file is presented in
native byte order. The header stays available as ``MrcArray.header`` and ``voxel_size``.
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from bioimage_py.io.optional import import_optional
from bioimage_py.io.raw_file import RawFileData
from bioimage_py.io.reader_array import ReaderArray
from bioimage_py.io.single_array import SingleArrayFile

__all__ = ["MrcArray", "open_mrc"]

# Regions larger than this are read and flipped in pieces of about this size.
_FLIP_PIECE_BYTES = 1 << 20



class MrcArray(ReaderArray):
    """The data of an open MRC file, read lazily region by region.

    ``arr[index]`` takes numpy basic indexing (``bioimage_py`` sources pass a tuple of step-1
    slices) and returns a new numpy array, never a view of the file's memory, so results stay valid
    after ``close()``. ``chunks`` is ``None``: the file is one contiguous C-ordered block.
    """

    def __init__(self, mrc: Any, path: str, flip_y: bool = True) -> None:
        data = mrc.data
        if data is None:  # permissive mode with an unreadable header or mode
            mrc.close()
            raise ValueError(f"{path!r} holds no data that mrcfile could read")
        self._mrc = mrc
        self._flip_y = bool(flip_y) and data.ndim >= 2
        # mrcfile's memory map, flipped as presented: it describes the data, it is never read.
        self._data = data[..., ::-1, :] if self._flip_y else data
        self._path = path
        self._shape = tuple(data.shape)
        self._dtype = data.dtype.newbyteorder("=")
        try:
            self._raw = RawFileData(path, data.offset, self._shape, data.dtype)
        except BaseException:
            mrc.close()
            raise

    @property
    def path(self) -> str:
        return self._path

    @property
    def flip_y(self) -> bool:
        """Whether the y axis is presented flipped (0.2's and elf's orientation; default)."""
        return self._flip_y

    @property
    def header(self) -> Any:
        """The file's header (a numpy record from ``mrcfile``)."""
        return self._mrc.header

    @property
    def voxel_size(self) -> tuple[float, ...]:
        """The voxel size in Angstrom, ``(z, y, x)`` to match the axis order (``(y, x)`` in 2D)."""
        vs = self._mrc.voxel_size
        zyx = (float(vs.z), float(vs.y), float(vs.x))
        return zyx[-2:] if self.ndim == 2 else zyx

    @property
    def closed(self) -> bool:
        return self._data is None

    def _read(self, roi: tuple[slice, ...]) -> np.ndarray:
        if self._data is None:
            raise ValueError(f"I/O operation on closed MRC file {self._path!r}")
        if not self._flip_y:
            return self._raw.read(roi).astype(self._dtype, copy=False)
        # The presented rows [start, stop) are the file's rows [ny - stop, ny - start), reversed.
        ny, rows = self._shape[-2], roi[-2]
        file_roi = (*roi[:-2], slice(ny - rows.stop, ny - rows.start), roi[-1])
        out = np.empty(tuple(s.stop - s.start for s in roi), dtype=self._dtype)
        if out.ndim < 3 or out.nbytes <= _FLIP_PIECE_BYTES:
            out[...] = self._raw.read(file_roi)[..., ::-1, :]
            return out
        # Large regions are read and flipped a few planes at a time, so that the flipping copy
        # finds them in the CPU cache (one read of the whole region, then a flipped copy of it,
        # takes about twice as long).
        first = roi[0].start
        step = max(1, _FLIP_PIECE_BYTES // (out.nbytes // out.shape[0]))
        for lo in range(0, out.shape[0], step):
            hi = min(lo + step, out.shape[0])
            piece = (slice(first + lo, first + hi), *file_roi[1:])
            out[lo:hi] = self._raw.read(piece)[..., ::-1, :]
        return out

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._data is not None:
            self._data = None
            self._raw.close()
            self._mrc.close()

    def __enter__(self) -> MrcArray:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._data is None else f"shape={self.shape}, dtype={self.dtype}"
        return f"MrcArray({self._path!r}, {state})"



def open_mrc(
    path: str, mode: str = "r", *, permissive: bool = False, flip_y: bool = True
) -> SingleArrayFile:
    """Open the MRC file at ``path`` read-only and memory-mapped.

    Args:
        path: the ``.mrc`` / ``.rec`` file.
        mode: only ``"r"`` (the format is read-only).
        permissive: passed to ``mrcfile.mmap``: read files with invalid headers, warning instead
            of raising.
        flip_y: present the y axis flipped, as bioimage-py 0.2 and elf do (default); ``False``
            gives the rows in file order, as ``mrcfile`` does. See the module docstring.

    Raises:
        ImportError: ``mrcfile`` is not installed (naming the package).
        ValueError: ``mode`` is not ``"r"``; the file's data cannot be read.
    """
    if mode != "r":
        raise ValueError(f"Format 'mrc' is read-only; open it with mode='r', not {mode!r}")
    mrcfile = import_optional("mrcfile", format="mrc", install="pip install mrcfile")
    if not isinstance(flip_y, (bool, np.bool_)):
        raise TypeError(f"flip_y must be True or False, got {flip_y!r}")
    _check_extended_header(path, mrcfile, bool(permissive))
    try:
        mrc = mrcfile.mmap(path, mode="r", permissive=bool(permissive))
    except (ValueError, OverflowError) as err:  # a bad header, a data block beyond the file
        reason = _truncation(path) or str(err)
        raise ValueError(f"{path!r} is not a readable MRC file: {reason}") from None
    if mrc.data is None:  # permissive mode: mrcfile warned instead of raising
        mrc.close()
        reason = _truncation(path) or "mrcfile could not read its data block"
        raise ValueError(f"{path!r} is not a readable MRC file: {reason}")
    return SingleArrayFile(MrcArray(mrc, path, flip_y=bool(flip_y)))


def _check_extended_header(path: str, mrcfile: Any, permissive: bool) -> None:
    """Refuse an extended header larger than the file before mrcfile allocates it (mrcfile
    allocates the size the header states, up to 2 GiB, and then finds the file too short).

    The byte order is decided as mrcfile decides it: from the machine stamp (little-endian when
    the stamp is invalid and ``permissive``), in permissive mode swapped when only the other
    order gives a valid mode. Anything else wrong with the header is left to mrcfile.

    Raises:
        ValueError: The extended header is negative or reaches past the end of the file,
            naming the file.
    """
    header_dtype = mrcfile.dtypes.HEADER_DTYPE
    with open(path, "rb") as file:
        raw = file.read(header_dtype.itemsize)
        size = os.fstat(file.fileno()).st_size
    if len(raw) < header_dtype.itemsize:
        return  # mrcfile says the header is too short
    header = np.frombuffer(raw, dtype=header_dtype).reshape(())
    try:
        order = mrcfile.utils.byte_order_from_machine_stamp(header["machst"])
    except ValueError:
        if not permissive:
            return  # mrcfile raises for the stamp before reading the extended header
        order = "<"
    header = header.view(header_dtype.newbyteorder(order))
    if permissive:
        try:
            mrcfile.utils.dtype_from_mode(header["mode"])
        except ValueError:
            swapped = header.view(header.dtype.newbyteorder())
            try:
                mrcfile.utils.dtype_from_mode(swapped["mode"])
                header = swapped
            except ValueError:
                pass
    extended = int(header["nsymbt"])
    if extended < 0 or header_dtype.itemsize + extended > size:
        raise ValueError(
            f"{path!r} is not a readable MRC file: it is truncated or damaged: its header "
            f"describes an extended header of {extended} bytes after {header_dtype.itemsize} "
            f"bytes, but the file holds {size} bytes"
        )


def _truncation(path: str) -> str | None:
    """Why the file is too short for the data its header describes, or ``None`` (numpy's memmap
    says only ``mmap length is greater than file size``)."""
    mrcfile = import_optional("mrcfile", format="mrc", install="pip install mrcfile")
    try:
        with mrcfile.open(path, mode="r", header_only=True, permissive=True) as mrc:
            header = mrc.header
            dtype = mrcfile.utils.data_dtype_from_header(header)
            shape = tuple(int(n) for n in mrcfile.utils.data_shape_from_header(header))
            offset = int(header.nbytes) + int(header.nsymbt)
    except Exception:  # the header itself is unreadable: mrcfile's own message says why
        return None
    needed = offset + math.prod(shape) * dtype.itemsize
    size = os.path.getsize(path)
    if needed <= size:
        return None
    return (f"it is truncated: its header describes {needed - offset} bytes of data (shape "
            f"{shape}, dtype {dtype}) after {offset} bytes of headers, {needed} bytes in all, but "
            f"the file holds {size} bytes")
