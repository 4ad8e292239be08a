"""HDF5 files opened by the Rust core: the ``"hdf5"`` format behind ``open_source``.

Chunks are located once through the library and then read with positional reads and decoded
(deflate, shuffle, LZF) in parallel outside the library's global lock, with the GIL released.

HDF5 file locking: files are opened *without* HDF5's file locks. Those locks are ``flock``s,
which conflict between two opens of one file even within one process, and h5py (which carries
its own copy of the HDF5 library) may hold the same file open: with locks, whichever opened
second would fail. So h5py may keep a file open while bioimage_py reads or writes it, and the
other way round. What locking would have prevented remains the user's to avoid: do not write
one HDF5 file from two handles (h5py and bioimage_py, or two processes) at once, and close or
flush an h5py writer before reading its data here. For parallel writers use zarr or N5.

Within a process every array of a file shares one library handle; when a writer opens a file
that is open read-only, the handle is reopened read-write, so reading one dataset and writing
another of the same file works.
"""
from __future__ import annotations

import os
from typing import Any

from bioimage_py import _core
from bioimage_py.io.native import check_native_options

__all__ = ["Hdf5File", "open_native_hdf5"]


def _join(group: str, key: str) -> str:
    return "/".join(part for part in (group, key.strip("/")) if part)


class Hdf5File:
    """An HDF5 file (or one of its groups); ``file[key]`` opens the dataset at ``key``.

    Args:
        path: the HDF5 file.
        mode: ``"r"`` opens datasets read-only; ``"r+"``, ``"a"``, ``"w"`` writable.
        group: the group this object stands for (``""``: the root).
        chunk_cache_bytes: bound of each opened dataset's decoded-chunk cache (0 disables it).
        missing_chunks: ``"fill"`` (unwritten chunks read as the fill value) or ``"error"``.
    """

    def __init__(
        self,
        path: str,
        mode: str,
        group: str = "",
        *,
        chunk_cache_bytes: int = _core.DEFAULT_CHUNK_CACHE_BYTES,
        missing_chunks: str = "fill",
    ) -> None:
        self.path = path
        self.mode = mode
        self.group = group.strip("/")
        self.options = {"chunk_cache_bytes": chunk_cache_bytes, "missing_chunks": missing_chunks}

    def list_arrays(self) -> list[str]:
        """The paths of every dataset in this group, at any depth, sorted."""
        return _core.list_hdf5_arrays(self.path, self.group)

    def __getitem__(self, key: str) -> Any:
        """The dataset at ``key``, or the group there as an ``Hdf5File``; ``KeyError`` if
        neither exists."""
        full = _join(self.group, key)
        kind = _core.hdf5_node_kind(self.path, full)
        if kind == "dataset":
            return _core.open_hdf5(self.path, full, read_only=self.mode == "r", **self.options)
        if kind == "group":
            return Hdf5File(self.path, self.mode, full, **self.options)
        raise KeyError(key)

    def __contains__(self, key: str) -> bool:
        return _core.hdf5_node_kind(self.path, _join(self.group, key)) is not None

    def close(self) -> None:
        """Nothing to release: the file is held only by the datasets opened from it."""

    def __enter__(self) -> Hdf5File:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        group = f", group={self.group!r}" if self.group else ""
        return f"Hdf5File(path={self.path!r}, mode={self.mode!r}{group})"


def open_native_hdf5(
    path: str,
    mode: str,
    *,
    chunk_cache_bytes: int = _core.DEFAULT_CHUNK_CACHE_BYTES,
    missing_chunks: str = "fill",
) -> Hdf5File:
    """Open an HDF5 file natively as an ``Hdf5File``.

    ``mode``: ``"r"`` / ``"r+"`` need an existing file (``FileNotFoundError`` otherwise),
    ``"a"`` creates a missing one, ``"w"`` creates or empties it (as h5py does).

    Raises:
        ValueError: bad options, or the file is not HDF5 (naming the path).
        FileNotFoundError: ``mode`` ``"r"`` or ``"r+"`` and no file at ``path``.
    """
    check_native_options(chunk_cache_bytes, missing_chunks)
    if mode in ("a", "w"):
        _core.create_hdf5_file(path, truncate=mode == "w")
    elif not os.path.isfile(path):
        raise FileNotFoundError(f"No such HDF5 file: {path!r}")
    else:
        _core.hdf5_node_kind(path, "")  # fails here, naming the file, if it is not HDF5
    return Hdf5File(
        path, mode, chunk_cache_bytes=chunk_cache_bytes, missing_chunks=missing_chunks
    )
