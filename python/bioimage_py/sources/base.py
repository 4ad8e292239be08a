"""The ``Source`` abstract base class and ``SourceSpec``, the recipe to reopen a source elsewhere.

A ``Source`` is an array-like view of an ND volume. Indexing is numpy *basic* indexing; the
index is normalized once, in Rust (``bioimage_py._core.normalize_index``), to a full tuple of
in-bounds step-1 slices, and subclasses only implement ``_getitem(roi)`` / ``_setitem(roi, value)``
on that tuple. The base class squeezes integer-indexed axes from reads and re-inserts them into
written values, so every source behaves like numpy.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

import numpy as np

from bioimage_py._core import normalize_index as _normalize_index

__all__ = ["Source", "SourceSpec", "from_spec", "register_spec_kind"]

_SPEC_FIELDS = ("kind", "path", "internal_path", "params", "wrapped")

_ndarray = np.ndarray
# _ZEROS[n]: the index of the single element of an n-d array of shape (1, ..., 1).
_ZEROS = tuple((0,) * n for n in range(65))


@dataclass
class SourceSpec:
    """How to reopen a source in another process (a worker, a Dask task, a later run).

    Attributes:
        kind: ``"zarr"``, ``"z5py"``, ``"file"``, ``"cloudvolume"``, ``"webknossos"`` or
            ``"wrapper"``; selects the opener in ``bioimage_py.sources.from_spec``.
        path: where the data lives (a path on disk or a cloud path), if any.
        internal_path: the array's key inside the container, if any.
        params: further JSON-able open parameters (a fresh dict per instance).
        wrapped: for wrappers, the spec of the wrapped source (a list of specs for wrappers of
            several sources).
    """

    kind: str
    path: str | None = None
    internal_path: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    wrapped: SourceSpec | list[SourceSpec] | None = None

    def __post_init__(self) -> None:
        # Path objects are common arguments; store plain strings so the spec stays JSON-able.
        if self.path is not None and not isinstance(self.path, str):
            self.path = os.fspath(self.path)

    def to_dict(self) -> dict[str, Any]:
        """A plain nested ``dict`` (``wrapped`` as a dict too), e.g. for JSON or YAML."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceSpec:
        """Rebuild a spec from ``to_dict()`` output.

        Raises:
            ValueError: ``kind`` is missing or there are unknown keys.
        """
        unknown = set(data) - set(_SPEC_FIELDS)
        if unknown:
            raise ValueError(
                f"Unknown SourceSpec fields {sorted(unknown)}; expected {list(_SPEC_FIELDS)}"
            )
        if "kind" not in data:
            raise ValueError("A SourceSpec dict needs a 'kind'")
        wrapped = data.get("wrapped")
        return cls(
            kind=data["kind"],
            path=data.get("path"),
            internal_path=data.get("internal_path"),
            params=dict(data.get("params") or {}),
            wrapped=_wrapped_from_dict(cls, wrapped),
        )

    def to_json(self, **dumps_kwargs: Any) -> str:
        """The spec as a JSON string (``params`` must hold JSON-able values; tuples become lists).

        Specs of wrappers around user callables (``SimpleTransformationSource`` and friends)
        travel by pickling only.

        Raises:
            TypeError: a value in ``params`` is not JSON-serializable; the message names it (a
                callable by its qualified name).
        """
        return json.dumps(self.to_dict(), default=_not_json, **dumps_kwargs)

    @classmethod
    def from_json(cls, text: str | bytes) -> SourceSpec:
        """Rebuild a spec from ``to_json()`` output."""
        return cls.from_dict(json.loads(text))


def _wrapped_from_dict(cls: type[SourceSpec], wrapped: Any) -> Any:
    """``wrapped`` of a spec dict: one spec, a list of specs (multi-source wrappers) or None."""
    if wrapped is None or isinstance(wrapped, SourceSpec):
        return wrapped
    if isinstance(wrapped, (list, tuple)):
        return [_wrapped_from_dict(cls, item) for item in wrapped]
    return cls.from_dict(wrapped)


class Source(ABC):
    """An array-like ND volume read and written with numpy basic indexing.

    Subclasses implement ``shape``, ``dtype``, ``_getitem`` and ``to_spec`` (and ``_setitem`` when
    writable). ``_getitem(roi)`` receives one in-bounds ``slice(start, stop)`` per axis and returns
    a numpy array of exactly that region's shape; ``_setitem(roi, value)`` receives a value already
    broadcast to that shape. A subclass whose shape never changes may set ``self._static_shape``
    (the shape tuple) to skip the ``shape`` property on the hot indexing path.

    Pickling: a source whose ``to_spec()`` works pickles as its spec and is reopened on load, so
    it travels cheaply to worker processes; one whose ``to_spec()`` raises ``ValueError`` (in-memory
    data) pickles its state, carrying its data along.
    """

    #: The shape as a tuple when it never changes (set by subclasses), else ``None``.
    _static_shape: tuple[int, ...] | None = None

    # --- abstract interface ---------------------------------------------------------------------

    @property
    @abstractmethod
    def shape(self) -> tuple[int, ...]:
        """The shape of the volume."""

    @property
    @abstractmethod
    def dtype(self) -> np.dtype:
        """The numpy dtype of the volume."""

    @abstractmethod
    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        """Read the region ``roi`` (one in-bounds step-1 slice per axis) as a numpy array."""

    def _setitem(self, roi: tuple[slice, ...], value: np.ndarray) -> None:
        """Write ``value`` (already of the region's shape) to ``roi``. Default: read-only."""
        raise TypeError(f"{type(self).__name__} is read-only")

    @abstractmethod
    def to_spec(self) -> SourceSpec:
        """A ``SourceSpec`` that reopens this source in another process.

        Raises:
            ValueError: the source cannot be reopened elsewhere (e.g. in-memory data).
        """

    # --- properties with defaults ---------------------------------------------------------------

    @property
    def chunks(self) -> tuple[int, ...] | None:
        """The chunk shape (the inner chunk for sharded zarr arrays), or ``None``."""
        return None

    @property
    def shards(self) -> tuple[int, ...] | None:
        """The shard shape of a sharded array, or ``None``."""
        return None

    @property
    def writable(self) -> bool:
        """Whether ``src[index] = value`` is allowed. Distributed writers reject ``False``."""
        return True

    @property
    def ome(self) -> dict[str, Any] | None:
        """The OME-Zarr metadata of an image level (see ``FileSource.ome``); ``None`` here."""
        return None

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """The number of elements."""
        return math.prod(self.shape)

    # --- indexing -------------------------------------------------------------------------------

    def __getitem__(self, index: Any) -> Any:
        """Read with numpy basic indexing; returns what numpy would (a scalar for all-int indices).

        Raises:
            IndexOutOfRangeError: (a ``ValueError`` and ``IndexError``) an integer out of range.
            ValueError: a slice step other than 1; two ellipses.
            TypeError: anything but ints, slices, ``...`` or tuples of them; too many entries.
        """
        # Hot path: one Rust call, one read; no helper calls when there is nothing to squeeze.
        shape = self._static_shape
        if shape is None:
            shape = self.shape
        roi, squeeze, scalar = _normalize_index(index, shape)
        out = self._getitem(roi)
        if squeeze:
            if type(out) is not _ndarray:
                out = np.asarray(out)
            if scalar:  # every axis integer-indexed: numpy returns a scalar
                return out[_ZEROS[len(squeeze)]]
            return out.squeeze(axis=squeeze)
        if scalar or not roi:  # a 0-d source: src[()] is a scalar, src[...] a 0-d array
            out = np.asarray(out)
            return out[()] if scalar else out
        return out

    def __setitem__(self, index: Any, value: Any) -> None:
        """Write with numpy basic indexing; ``value`` broadcasts to the region as in numpy.

        Raises:
            TypeError: the source is read-only; or an invalid index (see ``__getitem__``).
            ValueError: ``value`` cannot be broadcast to the region (nothing is written).
        """
        if not self.writable:
            raise TypeError(
                f"{type(self).__name__} is read-only: open it writable to assign to it"
            )
        roi, squeeze, scalar = _normalize_index(index, self.shape)
        region_shape = tuple(s.stop - s.start for s in roi)
        target_shape = (
            tuple(n for axis, n in enumerate(region_shape) if axis not in squeeze)
            if squeeze
            else region_shape
        )
        value = _broadcast(value, self.dtype, target_shape, element=scalar)
        if squeeze:
            value = value.reshape(region_shape)
        self._setitem(roi, value)

    # --- numpy interop and conveniences ---------------------------------------------------------

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """Read the whole volume (``np.asarray(src)``)."""
        data = np.asarray(self._getitem(tuple(slice(0, n) for n in self.shape)))
        if dtype is not None and data.dtype != dtype:
            if copy is False:
                raise ValueError(f"Reading {self!r} as {np.dtype(dtype)} requires a copy")
            return data.astype(dtype)
        return data.copy() if copy else data

    def __len__(self) -> int:
        shape = self.shape
        if not shape:
            raise TypeError("len() of unsized object")
        return shape[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._repr_fields())})"

    def _repr_fields(self) -> list[str]:
        """The ``name=value`` entries of ``repr``; subclasses append their own."""
        fields = [f"shape={self.shape}", f"dtype={self.dtype}"]
        if self.chunks is not None:
            fields.append(f"chunks={self.chunks}")
        if self.shards is not None:
            fields.append(f"shards={self.shards}")
        if not self.writable:
            fields.append("read-only")
        return fields

    # --- pickling -------------------------------------------------------------------------------

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Pickle as the spec when reopenable, else the object's state (carrying its data)."""
        try:
            spec = self.to_spec()
        except ValueError:
            return super().__reduce_ex__(protocol)
        return from_spec, (spec,)


# --- reopening specs ---------------------------------------------------------------------------

# kind -> the function rebuilding a source of that kind from its spec. Filled by the modules that
# define the kinds (``sources.dispatch`` registers the built-in ones), so this base module never
# imports the higher layers it dispatches to.
_OPENERS: dict[str, Callable[[SourceSpec], Source]] = {}


def register_spec_kind(kind: str, opener: Callable[[SourceSpec], Source]) -> None:
    """Make ``from_spec`` rebuild specs of ``kind`` with ``opener(spec)``."""
    _OPENERS[kind] = opener


def from_spec(spec: SourceSpec | dict[str, Any]) -> Source:
    """Rebuild a source from its spec (``source.to_spec()``), e.g. in a worker process.

    Args:
        spec: a ``SourceSpec`` (or its ``to_dict()`` form).

    Raises:
        ValueError: an unknown ``kind``.
    """
    if isinstance(spec, dict):
        spec = SourceSpec.from_dict(spec)
    try:
        opener = _OPENERS[spec.kind]
    except KeyError:
        raise ValueError(
            f"Unknown source kind {spec.kind!r}: cannot reconstruct a source from it; "
            f"known kinds: {', '.join(_OPENERS)}"
        ) from None
    return opener(spec)


def _not_json(value: Any) -> Any:
    """``json.dumps``'s fallback: numpy scalars and dtypes as plain values; else a TypeError
    naming the value (user callables travel in specs by pickling only)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.dtype):
        return value.str if value.names is None else str(value)
    if callable(value):
        name = getattr(value, "__qualname__", None) or repr(value)
        module = getattr(value, "__module__", None)
        raise TypeError(
            f"the callable {module + '.' if module else ''}{name} in this spec is not "
            "JSON-serializable: specs holding user callables travel by pickling (cloudpickle)"
        )
    raise TypeError(f"{type(value).__name__} {value!r} in this spec is not JSON-serializable")


def _broadcast(
    value: Any, dtype: np.dtype, target_shape: tuple[int, ...], *, element: bool
) -> np.ndarray:
    """``value`` as ``dtype``, broadcast to ``target_shape`` as numpy assignment does.

    numpy's rules: values are cast as ``np.asarray(value, dtype)`` casts them (Python ints out of
    range raise ``OverflowError``, arrays cast unsafely); leading length-1 axes of an array value
    are dropped (``a[:] = ones((1, n))``); a nested sequence may not have more axes than the
    region; an ``element`` assignment (every axis integer-indexed, ``a[i, j] = v``) takes a single
    value only.

    Raises:
        ValueError: the value does not fit the region; the message names both shapes.
    """
    array = np.asarray(value, dtype=dtype)
    if array.shape == target_shape:
        return array
    trimmed = array
    extra = array.ndim - len(target_shape)
    if extra > 0 and not element and isinstance(value, np.ndarray):
        if all(n == 1 for n in array.shape[:extra]):
            trimmed = array.reshape(array.shape[extra:])
    try:
        if element and array.ndim:
            raise ValueError
        return np.broadcast_to(trimmed, target_shape)
    except ValueError:
        raise ValueError(
            f"could not broadcast a value of shape {array.shape} "
            f"to the indexed region of shape {target_shape}"
        ) from None
