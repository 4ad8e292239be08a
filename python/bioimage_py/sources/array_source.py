"""``ArraySource``: a ``Source`` over an array object (numpy, zarr-python, z5py or a duck array)."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from bioimage_py.sources.base import Source, SourceSpec

__all__ = ["ArraySource"]

# What an ArraySource wraps; decides spec, writability and chunk metadata.
_NUMPY, _ZARR, _Z5PY, _DUCK = "numpy", "zarr", "z5py", "duck"


def _array_kind(array: Any) -> str:
    """Classify ``array`` without importing zarr or z5py (the type's module says what it is)."""
    if isinstance(array, np.ndarray):
        return _NUMPY
    if not all(hasattr(array, attr) for attr in ("shape", "dtype", "__getitem__")):
        raise TypeError(
            f"ArraySource needs an array with shape, dtype and __getitem__, got {type(array)!r}"
        )
    package = type(array).__module__.partition(".")[0]
    if package == "zarr" and hasattr(array, "store_path"):
        return _ZARR
    if package == "z5py" and hasattr(array, "file"):
        return _Z5PY
    return _DUCK


def _int_tuple(value: Any) -> tuple[int, ...] | None:
    """``value`` as a tuple of ints if it is a flat sequence of ints (a chunk shape), else None."""
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value)
    except (TypeError, ValueError):  # e.g. dask's tuple-of-tuples chunks
        return None


class ArraySource(Source):
    """A ``Source`` over an array object.

    Wraps a numpy array, a zarr-python 3 ``zarr.Array`` (zarr format 2 or 3, any store path, also
    inside groups), a z5py dataset (n5 or zarr), or any duck-typed array with ``shape``, ``dtype``
    and ``__getitem__`` (and ``__setitem__`` to be writable). Reads return numpy arrays (for a numpy
    array, the view numpy itself returns).

    Args:
        array: the array to wrap; ``.array`` returns it.

    Raises:
        TypeError: ``array`` lacks ``shape``, ``dtype`` or ``__getitem__``.
    """

    def __init__(self, array: Any) -> None:
        self._kind = _array_kind(array)
        self._array = array
        self._dtype = np.dtype(array.dtype)
        if self._kind == _NUMPY:
            # A numpy array referenced here cannot be resized in place: its shape is static.
            self._static_shape = array.shape
        # Duck arrays may return other array types (h5py, dask, ...): convert their reads.
        self._read_to_numpy = self._kind == _DUCK

    # --- array metadata -------------------------------------------------------------------------

    @property
    def array(self) -> Any:
        """The wrapped array object."""
        return self._array

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._array.shape)

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def chunks(self) -> tuple[int, ...] | None:
        """The wrapped array's chunk shape (zarr: the inner chunk when sharded), or ``None``."""
        if self._kind == _NUMPY:
            return None
        chunks = _int_tuple(getattr(self._array, "chunks", None))
        if chunks is None and self._kind == _DUCK:
            chunks = _int_tuple(getattr(self._array, "chunksize", None))  # dask
        return chunks

    @property
    def shards(self) -> tuple[int, ...] | None:
        """The wrapped array's shard shape, or ``None`` when it is not sharded."""
        if self._kind == _NUMPY:
            return None
        return _int_tuple(getattr(self._array, "shards", None))

    @property
    def writable(self) -> bool:
        """numpy: ``flags.writeable``; zarr/z5py: not opened read-only; duck: ``__setitem__``."""
        array, kind = self._array, self._kind
        if kind == _NUMPY:
            return bool(array.flags.writeable)
        if kind == _ZARR:
            return not array.read_only
        if kind == _Z5PY:
            return _z5py_can_write(array)
        return hasattr(type(array), "__setitem__")

    # --- reading and writing --------------------------------------------------------------------

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        if self._read_to_numpy:
            return np.asarray(self._array[roi])
        return self._array[roi]

    def _setitem(self, roi: tuple[slice, ...], value: np.ndarray) -> None:
        self._array[roi] = value

    # --- reopening ------------------------------------------------------------------------------

    def to_spec(self) -> SourceSpec:
        """A spec reopening the array: kind ``"zarr"`` or ``"z5py"``.

        Raises:
            ValueError: numpy arrays, zarr arrays not in a folder on disk, duck arrays.
        """
        kind, array = self._kind, self._array
        if kind == _NUMPY:
            raise ValueError(
                "numpy arrays can only be used for local execution (their data lives in this "
                "process); to run elsewhere, pass a zarr or n5 array instead"
            )
        if kind == _ZARR:
            return _zarr_spec(array)
        if kind == _Z5PY:
            return _z5py_spec(array)
        raise ValueError(
            f"cannot reopen a {type(array).__module__}.{type(array).__qualname__} in another "
            "process: only zarr and z5py (n5) arrays have a spec; pass a zarr or n5 array instead"
        )

    @staticmethod
    def reopen(spec: SourceSpec) -> ArraySource:
        """Reopen a ``"zarr"`` or ``"z5py"`` spec read-write.

        Raises:
            ValueError: any other kind.
        """
        if spec.kind == _ZARR:
            import zarr

            return ArraySource(
                zarr.open_array(store=spec.path, path=spec.internal_path or "", mode="r+")
            )
        if spec.kind == _Z5PY:
            import z5py

            return ArraySource(z5py.File(spec.path, mode="r+")[spec.internal_path])
        raise ValueError(f"ArraySource.reopen handles kinds 'zarr' and 'z5py', not {spec.kind!r}")

    def _repr_fields(self) -> list[str]:
        array_type = type(self._array)
        package = array_type.__module__.partition(".")[0]
        return [*super()._repr_fields(), f"array={package}.{array_type.__name__}"]


def _zarr_spec(array: Any) -> SourceSpec:
    """The ``"zarr"`` spec of a zarr-python array stored in a folder on disk."""
    store = array.store
    root = getattr(store, "root", None)
    if type(store).__name__ != "LocalStore" or root is None:
        raise ValueError(
            f"cannot reopen a zarr array stored in a {type(store).__name__} in another process: "
            "only arrays in a LocalStore (a folder on disk) have a path to reopen; write the data "
            "to a zarr array on disk and pass that instead"
        )
    return SourceSpec(kind=_ZARR, path=os.path.abspath(os.fspath(root)), internal_path=array.path)


def _z5py_spec(dataset: Any) -> SourceSpec:
    """The ``"z5py"`` spec of a z5py dataset: its container root and key in it."""
    filename = getattr(dataset.file, "filename", None)
    if filename is None:
        raise ValueError(
            f"cannot reopen a z5py dataset in a {type(dataset.file).__name__} in another process: "
            "only containers on the local file system have a path to reopen"
        )
    return SourceSpec(
        kind=_Z5PY, path=os.path.abspath(filename), internal_path=dataset.name.strip("/")
    )


def _z5py_can_write(dataset: Any) -> bool:
    """Whether the z5py container of ``dataset`` was opened with write permission."""
    try:
        return bool(dataset.file._handle.mode().can_write())
    except AttributeError:  # z5py without the handle API: let z5py itself refuse writes
        return True
