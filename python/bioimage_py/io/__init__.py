"""File formats: the format registry, opening files and the arrays inside them.

The writable container formats are registered on import: zarr and n5 are read and written by
the Rust core; hdf5 through h5py, imported only when an HDF5 file is opened. zarr and n5 also
open URLs (``s3://``, ``gs://``, ``http(s)://`` read-only; see ``bioimage_py.io.location``), and
zarr opens zip files (``vol.zarr.zip``, read-only).
"""
from __future__ import annotations

from bioimage_py.io import formats as _formats  # noqa: F401  (registers the built-in formats)
from bioimage_py.io.arrays import open_array
from bioimage_py.io.files import infer_extension, infer_format, open_file
from bioimage_py.io.registry import (
    constructor_for_format,
    format_for_extension,
    is_writable_format,
    register_format,
    supported_extensions,
    supported_formats,
)

__all__ = [
    "constructor_for_format",
    "format_for_extension",
    "infer_extension",
    "infer_format",
    "is_writable_format",
    "open_array",
    "open_file",
    "register_format",
    "supported_extensions",
    "supported_formats",
]
