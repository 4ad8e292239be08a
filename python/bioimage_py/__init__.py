"""bioimage_py: fast, serializable, array-like access to large ND microscopy volumes.

``open_source(path)`` opens an array in a file (zarr, N5, HDF5, ...) and ``as_source(obj)`` wraps
an array handle; both give a ``Source``: numpy basic indexing for reads and writes, and a small
``SourceSpec`` from which worker processes reopen the same data.
"""
from __future__ import annotations

from typing import Any

from bioimage_py.copy import copy
from bioimage_py.dask_array import to_dask
from bioimage_py.downsample import downsample
from bioimage_py.ome_pyramid import write_ome_pyramid
from bioimage_py.runner import SlurmConfig, config_file_path, get_runner, write_slurm_config
from bioimage_py.sources import as_source, create_array, open_source
from bioimage_py.util import to_roi

__version__ = "0.3.0"

# open_cloudvolume / open_webknossos are loaded on first access (below); their modules import
# cloud-volume / webknossos only when called, so `import *` works without those libraries.
__all__ = [
    "SlurmConfig", "__version__", "as_source", "config_file_path", "copy", "create_array",
    "downsample", "get_runner", "open_cloudvolume", "open_source", "open_webknossos", "to_dask",
    "to_roi", "write_ome_pyramid", "write_slurm_config",
]


def __getattr__(name: str) -> Any:
    # The cloud-volume and WebKnossos openers import heavy libraries: load them on first use.
    if name in ("open_cloudvolume", "open_webknossos"):
        from bioimage_py import sources

        return getattr(sources, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
