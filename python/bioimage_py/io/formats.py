"""The built-in writable container formats, opened for now through the peers' Python libraries.

Each ``open_*`` function is a registry constructor, ``(path, mode, **kwargs) -> container``. The
libraries are imported when a file is opened, so a missing one never breaks ``import
bioimage_py.io``; it fails then with an ``ImportError`` naming the package to install.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from bioimage_py.io.registry import register_format

__all__ = ["open_hdf5", "open_n5", "open_zarr"]


def import_optional(module: str, *, format: str, install: str) -> ModuleType:
    """Import ``module``, or explain which package to install to open ``format`` files.

    Raises:
        ImportError: Naming the package (``install``) when ``module`` cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"Opening {format} files requires the Python package {module!r}, which is not "
            f"installed; install it with: {install}"
        ) from err


def open_zarr(path: str, mode: str, **kwargs: Any) -> Any:
    """Open a zarr (v2 or v3) store with ``zarr.open``: the root ``Group``, or ``Array`` if the
    root is an array. ``kwargs`` go to ``zarr.open`` (e.g. ``zarr_format``, ``storage_options``).
    """
    zarr = import_optional("zarr", format="zarr", install="pip install zarr")
    return zarr.open(store=path, mode=mode, **kwargs)


def open_n5(path: str, mode: str, **kwargs: Any) -> Any:
    """Open an N5 container as a ``z5py.File``, whatever its extension.

    ``kwargs`` go to ``z5py.File``. z5py cannot open a dataset stored at the container root.
    """
    z5py = import_optional(
        "z5py", format="n5", install="pip install z5py (or conda install -c conda-forge z5py)"
    )
    return z5py.File(path, mode=mode, use_zarr_format=False, **kwargs)


def open_hdf5(path: str, mode: str, **kwargs: Any) -> Any:
    """Open an HDF5 file as an ``h5py.File``; ``kwargs`` go to it (e.g. ``driver``, ``locking``)."""
    h5py = import_optional("h5py", format="hdf5", install="pip install h5py")
    return h5py.File(path, mode=mode, **kwargs)


register_format("zarr", [".zarr", ".zr"], open_zarr, writable=True)
register_format("n5", [".n5"], open_n5, writable=True)
register_format("hdf5", [".h5", ".hdf", ".hdf5"], open_hdf5, writable=True)
