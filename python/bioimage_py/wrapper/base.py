"""``WrapperSource``: the read-only base of sources that transform another source on read, and the
registry that rebuilds wrappers from their specs.

A wrapper's spec is kind ``"wrapper"``: ``wrapped`` holds the wrapped source's spec and ``params``
the wrapper's class name (``"class"``) and its JSON-able parameters. Specs name classes by name
alone, so ``wrapper_from_spec`` looks them up in a registry that ``register_wrapper`` fills; a
worker process must have imported the module defining a custom wrapper before opening its spec.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any, TypeVar

import numpy as np

from bioimage_py.sources.base import Source, SourceSpec
from bioimage_py.sources.dispatch import SourceLike, as_source, from_spec

__all__ = ["WrapperSource", "register_wrapper", "wrapper_from_spec"]

_WS = TypeVar("_WS", bound="WrapperSource")

# Wrapper classes by class name, as their specs record them.
_WRAPPERS: dict[str, type[WrapperSource]] = {}


class WrapperSource(Source):
    """A read-only ``Source`` computing its values on read from another source, ``.source``.

    Subclasses implement ``_getitem(roi)`` (usually reading ``self._read(...)`` and transforming
    the result) and ``params`` (the constructor arguments as JSON-able values), and override
    ``shape``, ``dtype``, ``chunks`` and ``shards`` when they change them. By default a wrapper
    has the wrapped source's shape, dtype, chunks and shards.

    ``to_spec()`` is kind ``"wrapper"`` with the wrapped source's spec in ``wrapped``; it raises
    the wrapped source's ``ValueError`` when that one cannot be reopened elsewhere (numpy data),
    and the wrapper then pickles with its data, like the numpy source itself.

    Args:
        source: the source to wrap (anything ``as_source`` accepts).
    """

    def __init__(self, source: SourceLike) -> None:
        self._source = as_source(source)
        # Same shape as a source whose shape never changes: skip the shape property when indexing.
        self._static_shape = self._source._static_shape

    # --- the wrapped source -------------------------------------------------------------------

    @property
    def source(self) -> Source:
        """The wrapped source."""
        return self._source

    def _read(self, roi: tuple[slice, ...]) -> np.ndarray:
        """Read ``roi`` (normalized: one in-bounds step-1 slice per axis) from the wrapped source.

        The result may be a view of the wrapped data (numpy-backed sources): never modify it in
        place.
        """
        return np.asarray(self._source._getitem(roi))

    # --- geometry: unchanged unless a subclass says otherwise ---------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self._source.shape

    @property
    def dtype(self) -> np.dtype:
        return self._source.dtype

    @property
    def chunks(self) -> tuple[int, ...] | None:
        """The wrapped source's chunks (a subclass changing the geometry overrides this)."""
        return self._source.chunks

    @property
    def shards(self) -> tuple[int, ...] | None:
        """The wrapped source's shards (a subclass changing the geometry overrides this)."""
        return self._source.shards

    # --- read-only ------------------------------------------------------------------------------

    @property
    def writable(self) -> bool:
        """Always ``False``: wrappers compute their values; write to the wrapped source instead."""
        return False

    def __setitem__(self, index: Any, value: Any) -> None:
        """Always raises ``TypeError``: a wrapper is read-only."""
        raise TypeError(
            f"{type(self).__name__} is read-only: it computes its values from the wrapped "
            "source on read; write to the wrapped source (.source) instead"
        )

    # --- specs ----------------------------------------------------------------------------------

    @property
    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The constructor arguments besides the source, as JSON-able values (a fresh dict)."""

    @classmethod
    def from_params(cls: type[_WS], source: Source, params: dict[str, Any]) -> _WS:
        """Rebuild a wrapper around ``source`` from ``params`` (the ``params`` of its spec,
        without ``"class"``). Subclasses override it when a parameter's JSON form differs from the
        constructor's argument."""
        return cls(source, **params)

    def to_spec(self) -> SourceSpec:
        """Kind ``"wrapper"``: ``params = {"class": <class name>, **self.params}``, ``wrapped`` the
        wrapped source's spec.

        Raises:
            ValueError: the wrapped source cannot be reopened elsewhere (e.g. numpy data).
        """
        wrapped = self._source.to_spec()
        return SourceSpec(
            kind="wrapper", params={"class": type(self).__name__, **self.params}, wrapped=wrapped
        )

    def _repr_fields(self) -> list[str]:
        own = [f"{name}={value!r}" for name, value in self.params.items()]
        return [*super()._repr_fields(), *own, f"source={self._source!r}"]



def register_wrapper(cls: type[_WS]) -> type[_WS]:
    """Register a ``WrapperSource`` subclass so that ``wrapper_from_spec`` can rebuild it; usable
    as a class decorator. Registering a class again (e.g. after a module reload) replaces it.

    Raises:
        TypeError: ``cls`` is not a ``WrapperSource`` subclass.
        ValueError: another class of the same name is registered (specs name classes by name).
    """
    if not (isinstance(cls, type) and issubclass(cls, WrapperSource)):
        raise TypeError(f"register_wrapper needs a WrapperSource subclass, got {cls!r}")
    name = cls.__name__
    existing = _WRAPPERS.get(name)
    if existing is not None and _qualified(existing) != _qualified(cls):
        raise ValueError(
            f"a wrapper class named {name!r} is already registered ({_qualified(existing)}); "
            f"wrapper specs name classes by their name alone, so rename {_qualified(cls)}"
        )
    _WRAPPERS[name] = cls
    return cls


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def wrapper_from_spec(spec: SourceSpec | dict[str, Any]) -> WrapperSource:
    """Rebuild a wrapper (and, through ``from_spec``, everything it wraps) from its spec.

    Args:
        spec: a kind ``"wrapper"`` ``SourceSpec`` (or its ``to_dict()`` form).

    Raises:
        ValueError: another kind; no ``"class"`` in ``params`` or an unregistered class (import
            the module defining it first); no ``wrapped`` spec.
        TypeError: ``params`` that the class's constructor does not take.
    """
    if isinstance(spec, dict):
        spec = SourceSpec.from_dict(spec)
    if spec.kind != "wrapper":
        raise ValueError(f"wrapper_from_spec needs a spec of kind 'wrapper', not {spec.kind!r}")
    params = dict(spec.params)
    name = params.pop("class", None)
    if name is None:
        raise ValueError(
            f"a wrapper spec needs the wrapper's class name in params['class']: {spec}"
        )
    cls = _WRAPPERS.get(name)
    if cls is None:
        raise ValueError(
            f"unknown wrapper class {name!r}; registered: {', '.join(sorted(_WRAPPERS))} "
            "(import the module that defines and registers it before opening the spec)"
        )
    if spec.wrapped is None:
        raise ValueError(f"the spec of a {name} needs the wrapped source's spec in 'wrapped'")
    return cls.from_params(from_spec(spec.wrapped), params)
