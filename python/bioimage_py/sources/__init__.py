"""Array-like sources: numpy basic indexing over numpy, zarr, z5py, HDF5 and other volumes.

``as_source(obj)`` wraps an array handle; ``open_source(path)`` opens a file; every source can
describe itself as a ``SourceSpec`` so worker processes reopen it (``from_spec``).
``CloudVolumeSource`` / ``open_cloudvolume`` and ``WebKnossosSource`` / ``open_webknossos`` live in
their own modules, imported on first use (they pull in heavy dependencies).
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from bioimage_py.sources.array_source import ArraySource
from bioimage_py.sources.base import Source, SourceSpec
from bioimage_py.sources.dispatch import SourceLike, as_source, from_spec, register_source
from bioimage_py.sources.file_source import FileSource, create_array, open_source

__all__ = [
    "ArraySource",
    "FileSource",
    "Source",
    "SourceLike",
    "SourceSpec",
    "as_source",
    "create_array",
    "from_spec",
    "open_source",
    "register_source",
]

# Names provided by modules with heavy optional dependencies, imported on first access.
_LAZY_NAMES = {
    "CloudVolumeSource": "bioimage_py.sources.cloudvolume_source",
    "open_cloudvolume": "bioimage_py.sources.cloudvolume_source",
    "WebKnossosSource": "bioimage_py.sources.webknossos_source",
    "open_webknossos": "bioimage_py.sources.webknossos_source",
}
# They join __all__ once their modules exist, so that `import *` never trips over a missing one.
__all__ += [name for name, module in _LAZY_NAMES.items() if importlib.util.find_spec(module)]


def __getattr__(name: str) -> Any:
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
