"""Creating arrays: ``create_native_array`` makes a zarr (v2, v3, sharded v3), N5 or HDF5 array.

``bioimage_py.create_array`` (in ``sources.file_source``) wraps the new array as a writable
``FileSource``; this module stays below the sources layer and returns the native array.
"""
from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from bioimage_py import _core
from bioimage_py.io.files import as_path_str, check_location_for_format, resolve_format
from bioimage_py.io.location import (
    check_location,
    check_writable_location,
    is_local,
    is_read_only_location,
    normalize_location,
    split_storage_options,
    store_kwargs,
)

__all__ = ["DEFAULT_COMPRESSION", "CreatedArray", "create_native_array", "default_chunks"]

# Per format: what a new array is compressed with unless told otherwise.
DEFAULT_COMPRESSION = {"zarr": ("zstd", 3), "n5": ("gzip", 1), "hdf5": ("gzip", 1)}


def default_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Chunks of about 256 KiB-2 MiB: 64 per axis for volumes, 256 for images, 64 Ki for lines."""
    edge = {1: 65536, 2: 256}.get(len(shape), 64)
    return tuple(max(1, min(size, edge)) for size in shape)


class CreatedArray(NamedTuple):
    """A new native array and where it lives."""

    array: Any
    path: str
    internal_path: str
    format: str


def create_native_array(
    path: str | os.PathLike[str],
    internal_path: str = "",
    *,
    shape: tuple[int, ...],
    dtype: Any,
    chunks: tuple[int, ...] | None = None,
    format: str | None = None,
    zarr_format: int = 3,
    shards: tuple[int, ...] | None = None,
    compression: str | None = None,
    compression_level: int | None = None,
    fill_value: int | float | complex = 0,
    overwrite: bool = False,
    **open_kwargs: Any,
) -> CreatedArray:
    """Create an array in a zarr store, an N5 container or an HDF5 file, and open it writable.

    The arguments are ``bioimage_py.create_array``'s (documented there), which wraps the result
    as a writable ``FileSource``; ``**open_kwargs`` go to the native opener, the storage
    options of a URL (``endpoint_url``, ``region``, ``anonymous``) to the core as its
    ``storage_options``.

    Returns:
        The new native array (writable), its absolute path (or URL), key and format.

    Raises:
        ValueError: unknown format, dtype or compression; chunks or shards that do not fit;
            an existing array without ``overwrite``; URL options for a local path; a format
            other than zarr or N5 at a URL.
        ReadOnlyLocationError: an HTTP(S) URL or a zip file (nothing is written).
        TypeError: credentials given as arguments.
    """
    path = as_path_str(path)
    storage_options, open_kwargs = split_storage_options(path, open_kwargs)
    if is_local(path):
        path = os.path.abspath(path)
    else:
        path = normalize_location(path)
        check_location(path)
        if is_read_only_location(path):
            check_writable_location(path, "create an array in")
    fmt = resolve_format(path, format=format, storage_options=storage_options)
    check_location_for_format(path, fmt, "a")
    store = store_kwargs(storage_options)
    dtype_name = np.dtype(dtype).name
    shape = tuple(int(n) for n in shape)
    chunks = default_chunks(shape) if chunks is None else tuple(int(c) for c in chunks)
    if shards is not None and fmt != "zarr":
        raise ValueError(f"shards are a zarr v3 feature; {fmt} arrays cannot be sharded")
    default_name, default_level = DEFAULT_COMPRESSION.get(fmt, ("raw", None))
    if compression is None:
        compression, compression_level = default_name, (
            default_level if compression_level is None else compression_level
        )
    key = internal_path.strip("/")
    if fmt == "zarr":
        array = _core.create_zarr(
            path, key, shape=shape, chunks=chunks, dtype=dtype_name, zarr_format=zarr_format,
            shards=None if shards is None else tuple(int(s) for s in shards),
            compression=compression, compression_level=compression_level,
            fill_value=_exact(fill_value), overwrite=overwrite, **open_kwargs, **store,
        )
    elif fmt == "n5":
        array = _core.create_n5(
            path, key, shape=shape, chunks=chunks, dtype=dtype_name, compression=compression,
            compression_level=compression_level, overwrite=overwrite, **open_kwargs, **store,
        )
    elif fmt == "hdf5":
        if not key:
            raise ValueError(f"an HDF5 array needs an internal_path (a dataset name) in {path!r}")
        array = _core.create_hdf5(
            path, key, shape=shape, chunks=chunks, dtype=dtype_name,
            compression="raw" if compression == "none" else compression,
            compression_level=compression_level, fill_value=_exact(fill_value),
            overwrite=overwrite, **open_kwargs,
        )
    else:
        raise ValueError(f"cannot create {fmt} arrays: only zarr, n5 and hdf5 are writable")
    return CreatedArray(array, path, key, fmt)


def _exact(value: Any) -> int | float | complex:
    """A fill value as a Python int when it is integral (exact for 64-bit values), a complex
    when it is complex (for complex64 / complex128 arrays), else a float."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (complex, np.complexfloating)):
        return complex(value)
    return float(value)
