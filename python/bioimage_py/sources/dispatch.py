"""Turning objects into sources (``as_source``, ``register_source``) and specs back into sources
(``from_spec``).

Heavy optional libraries (h5py, cloud-volume, webknossos) are never imported here unless the
object being converted comes from them (its type's module says so) or a spec asks for them.
"""
from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Union

import cloudpickle
import numpy as np

from bioimage_py.sources.array_source import ArraySource
from bioimage_py.sources.base import Source, SourceSpec, from_spec, register_spec_kind
from bioimage_py.sources.file_source import FileSource

if TYPE_CHECKING:
    import z5py
    import zarr

__all__ = ["SourceLike", "as_source", "from_spec", "from_spec_cached", "register_source"]

#: What ``as_source`` accepts besides objects handled by registered converters.
SourceLike = Union[Source, np.ndarray, "zarr.Array", "z5py.Dataset"]

# (predicate, converter) pairs in registration order.
_CONVERTERS: list[tuple[Callable[[Any], bool], Callable[[Any], Source]]] = []


def register_source(predicate: Callable[[Any], bool], converter: Callable[[Any], Source]) -> None:
    """Teach ``as_source`` a new type: for objects where ``predicate(obj)`` is true it returns
    ``converter(obj)``. Converters are tried in registration order, before the built-in ones."""
    _CONVERTERS.append((predicate, converter))


def as_source(obj: Any) -> Source:
    """Return ``obj`` as a ``Source``.

    A ``Source`` is returned unchanged; registered converters come next; an h5py dataset becomes a
    ``FileSource`` (format ``"hdf5"``, writable when its file is not read-only), a CloudVolume
    handle a ``CloudVolumeSource``; numpy arrays and any object with ``shape`` and ``dtype``
    (zarr arrays, z5py datasets, ...) an ``ArraySource``.

    Raises:
        TypeError: a string, bytes or path (open the array and pass the handle instead), or an
            object that is not array-like.
    """
    if isinstance(obj, Source):
        return obj
    if isinstance(obj, (str, bytes, os.PathLike)):
        raise TypeError(
            "as_source does not accept strings / file paths: open the array first "
            "(e.g. bioimage_py.open_source(path, internal_path) or zarr.open_array(path)) "
            f"and pass the array handle, got {obj!r}"
        )
    for predicate, converter in _CONVERTERS:
        if predicate(obj):
            source = converter(obj)
            if not isinstance(source, Source):
                raise TypeError(
                    f"the converter {converter!r} registered for {type(obj)!r} returned "
                    f"{type(source)!r}, not a Source"
                )
            return source
    obj_type = type(obj)
    package = obj_type.__module__.partition(".")[0]
    if package == "h5py" and obj_type.__name__ == "Dataset":
        return _h5py_source(obj)
    if package == "cloudvolume" and obj_type.__name__.startswith("CloudVolume"):
        from bioimage_py.sources.cloudvolume_source import CloudVolumeSource

        return CloudVolumeSource(obj)
    if isinstance(obj, np.ndarray) or (hasattr(obj, "shape") and hasattr(obj, "dtype")):
        return ArraySource(obj)
    raise TypeError(
        f"cannot make a Source from {obj_type.__module__}.{obj_type.__qualname__}: pass a "
        "Source, a numpy, zarr or z5py array, an h5py dataset, or an object with shape and dtype"
    )


def _h5py_source(dataset: Any) -> FileSource:
    """An h5py dataset as a ``FileSource`` that reopens the same file and dataset."""
    file = dataset.file
    mode = file.mode  # "r" or "r+"
    return FileSource(
        dataset,
        path=os.path.abspath(file.filename),
        internal_path=dataset.name.lstrip("/"),
        format="hdf5",
        mode=mode,
        writable=mode != "r",
    )


# --- from_spec ---------------------------------------------------------------------------------


def _reopen_lazily(module: str, qualname: str) -> Callable[[SourceSpec], Source]:
    """An opener that imports ``module`` only when a spec of its kind is opened."""

    def reopen(spec: SourceSpec) -> Source:
        obj: Any = importlib.import_module(module)
        for name in qualname.split("."):
            obj = getattr(obj, name)
        return obj(spec)

    reopen.__qualname__ = f"reopen[{module}.{qualname}]"
    return reopen


register_spec_kind("zarr", ArraySource.reopen)
register_spec_kind("z5py", ArraySource.reopen)
register_spec_kind("file", FileSource.reopen)
register_spec_kind(
    "cloudvolume",
    _reopen_lazily("bioimage_py.sources.cloudvolume_source", "CloudVolumeSource.reopen"),
)
register_spec_kind(
    "webknossos",
    _reopen_lazily("bioimage_py.sources.webknossos_source", "WebKnossosSource.reopen"),
)
register_spec_kind("wrapper", _reopen_lazily("bioimage_py.wrapper.base", "wrapper_from_spec"))

# Reopened sources, per thread (a handle such as a CloudVolume must not be shared by threads)
# and per job (a later job may see rewritten files; a cached handle could serve stale chunks).
_reopened = threading.local()


def from_spec_cached(spec: SourceSpec, token: str) -> Source:
    """``from_spec(spec)``, reopened once per thread of a worker for the job ``token``."""
    if getattr(_reopened, "token", None) != token:
        _reopened.token, _reopened.sources = token, {}
    try:
        key: str | bytes = spec.to_json(sort_keys=True)
    except TypeError:  # a wrapper around a user callable: specs of equal pickles are equal
        key = cloudpickle.dumps(spec)
    source = _reopened.sources.get(key)
    if source is None:
        source = _reopened.sources[key] = from_spec(spec)
    return source
