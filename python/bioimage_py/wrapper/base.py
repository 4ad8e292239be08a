"""The wrapper base: ``WrapperSource`` (a read-only source computing its values from other sources
on read), the registry rebuilding wrappers from their specs, and the wrappers around user
callables (``SimpleTransformationSource``, ``SimpleTransformationWithHaloSource``,
``TransformationSource``, ``MultiTransformationSource``).

A wrapper's spec is kind ``"wrapper"``, laid out as bioimage_py 0.2 lays it out: ``params`` holds
the keyword arguments rebuilding the wrapper plus the class name under ``"cls"``; ``wrapped`` the
wrapped source's spec, or a list of specs for a wrapper of several sources. Specs name classes by
name alone, so ``wrapper_from_spec`` looks them up in the registry ``register_wrapper`` fills: a
worker must have imported the module defining a custom wrapper before opening its spec. Specs
written by our previous release (class name under ``"class"``) reopen too.

User callables travel inside the spec by pickling (use cloudpickle for lambdas and local
functions); ``SourceSpec.to_json`` raises a ``TypeError`` naming such a callable.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Self, TypeVar

import numpy as np

from bioimage_py._core import normalize_index
from bioimage_py.sources.base import Source, SourceSpec
from bioimage_py.sources.dispatch import SourceLike, as_source, from_spec
from bioimage_py.util import normalize_halo

__all__ = [
    "MultiTransformationSource",
    "SimpleTransformationSource",
    "SimpleTransformationWithHaloSource",
    "TransformationSource",
    "WrapperSource",
    "register_wrapper",
    "wrapper_from_spec",
]

_W = TypeVar("_W", bound="type[WrapperSource]")

# Wrapper classes by class name, as their specs record them.
_WRAPPERS: dict[str, type[WrapperSource]] = {}


class WrapperSource(Source):
    """A read-only ``Source`` computing its values on read from another source, ``.source``.

    Subclasses implement ``_getitem(roi)`` (``roi``: one in-bounds step-1 slice per axis; usually
    ``self._read(roi)`` transformed) and ``_params()`` (the keyword arguments besides the source
    that rebuild the wrapper, ``cls(source, **params)``), and override ``shape``, ``dtype``,
    ``chunks`` and ``shards`` when they change them: by default a wrapper has the wrapped
    source's. Wrappers of several sources override ``_wrapped_sources`` and the classmethod
    ``_from_wrapped(sources, params)``.

    ``to_spec()`` is kind ``"wrapper"`` (see the module docstring); it raises the wrapped source's
    ``ValueError`` when that one cannot be reopened elsewhere (numpy data), and the wrapper then
    pickles with its data, like the numpy source itself.

    Args:
        source: the source to wrap (anything ``as_source`` accepts).
    """

    def __init__(self, source: SourceLike) -> None:
        self._source = as_source(source)
        self._claim_static_shape(WrapperSource, self._source._static_shape)

    def _claim_static_shape(self, owner: type, shape: tuple[int, ...] | None) -> None:
        """Let indexing skip the ``shape`` property (``shape`` is ``owner``'s and never changes),
        unless a subclass of ``owner`` computes its shape otherwise."""
        self._static_shape = shape if type(self).shape is owner.shape else None

    # --- the wrapped source(s) ------------------------------------------------------------------

    @property
    def source(self) -> Source:
        """The wrapped source (the first one, for wrappers of several)."""
        return self._source

    @property
    def _wrapped_sources(self) -> tuple[Source, ...]:
        """Every wrapped source, in the order ``_from_wrapped`` takes them back."""
        return (self._source,)

    def _read(self, roi: tuple[slice, ...]) -> np.ndarray:
        """Read ``roi`` (normalized: one in-bounds step-1 slice per axis) from the wrapped source.

        The result may be a view of the wrapped data (numpy-backed sources): never modify it in
        place.
        """
        return np.asarray(self._source._getitem(roi))

    # --- geometry: the wrapped source's unless a subclass says otherwise ----------------------

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
        """``False``: wrappers compute their values; write to the wrapped source instead."""
        return False

    def __setitem__(self, index: Any, value: Any) -> None:
        """Always raises ``TypeError``: a wrapper is read-only."""
        raise TypeError(
            f"{type(self).__name__} is read-only: it computes its values from the wrapped "
            "source on read; write to the wrapped source (.source) instead"
        )

    # --- specs ----------------------------------------------------------------------------------

    def _params(self) -> dict[str, Any]:
        """The keyword arguments besides the source(s) rebuilding this wrapper (a fresh dict).

        JSON-able values keep the spec JSON-able; user callables are recorded as themselves and
        travel by pickling.
        """
        return {}

    @classmethod
    def _from_wrapped(cls, sources: Sequence[Source], params: dict[str, Any]) -> Self:
        """Rebuild the wrapper from its reopened wrapped source(s) and the spec's ``params``
        (without the class name): ``cls(sources[0], **params)``. Override it for several sources
        or for parameters whose recorded form differs from the constructor's."""
        return cls(sources[0], **params)

    def to_spec(self) -> SourceSpec:
        """Kind ``"wrapper"``: ``params = {**self._params(), "cls": <class name>}``, ``wrapped``
        the wrapped source's spec (a list of specs for several sources).

        Raises:
            ValueError: a wrapped source cannot be reopened elsewhere (e.g. numpy data).
        """
        specs = [source.to_spec() for source in self._wrapped_sources]
        return SourceSpec(
            kind="wrapper",
            params={**self._params(), "cls": type(self).__name__},
            wrapped=specs[0] if len(specs) == 1 else specs,
        )

    def _repr_fields(self) -> list[str]:
        own = [f"{name}={value!r}" for name, value in self._params().items()]
        sources = ", ".join(repr(source) for source in self._wrapped_sources)
        return [*super()._repr_fields(), *own, f"source={sources}"]


def register_wrapper(cls: _W) -> _W:
    """Register a ``WrapperSource`` subclass under its class name, so that ``wrapper_from_spec``
    rebuilds specs naming it; usable as a class decorator.

    Registering a name again replaces the class registered before, as in 0.2 (e.g. after a module
    reload, or a class redefined in a notebook); a class of the same name from another module
    replaces it too, with a warning, since specs naming that class now rebuild the new one.

    Raises:
        TypeError: ``cls`` is not a ``WrapperSource`` subclass.
    """
    if not (isinstance(cls, type) and issubclass(cls, WrapperSource)):
        raise TypeError(f"register_wrapper needs a WrapperSource subclass, got {cls!r}")
    name = cls.__name__
    existing = _WRAPPERS.get(name)
    if existing is not None and existing.__module__ != cls.__module__:
        warnings.warn(
            f"register_wrapper: {_qualified(cls)} replaces {_qualified(existing)}; wrapper specs "
            f"name classes by their name alone, so specs naming {name!r} now rebuild "
            f"{_qualified(cls)}",
            UserWarning,
            stacklevel=2,
        )
    _WRAPPERS[name] = cls
    return cls


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def wrapper_from_spec(spec: SourceSpec | dict[str, Any]) -> WrapperSource:
    """Rebuild a wrapper (and, through ``from_spec``, everything it wraps) from its spec.

    Args:
        spec: a kind ``"wrapper"`` ``SourceSpec`` (or its ``to_dict()`` form), e.g. written by
            0.2 (class name in ``params["cls"]``) or by our previous release (``"class"``).

    Raises:
        ValueError: another kind; no class name in ``params`` or an unregistered class (import
            the module defining it first); no ``wrapped`` spec.
        TypeError: ``params`` that the class's constructor does not take.
    """
    if isinstance(spec, dict):
        spec = SourceSpec.from_dict(spec)
    if spec.kind != "wrapper":
        raise ValueError(f"wrapper_from_spec needs a spec of kind 'wrapper', not {spec.kind!r}")
    params = dict(spec.params)
    name = params.pop("cls", None)
    legacy_name = params.pop("class", None)  # our previous release's key
    name = name if name is not None else legacy_name
    if name is None:
        raise ValueError(f"a wrapper spec needs the wrapper's class name in params['cls']: {spec}")
    cls = _WRAPPERS.get(name)
    if cls is None:
        raise ValueError(
            f"unknown wrapper class {name!r}; registered: {', '.join(sorted(_WRAPPERS))} "
            "(import the module that defines and registers it before opening the spec)"
        )
    if spec.wrapped is None:
        raise ValueError(f"the spec of a {name} needs the wrapped source's spec in 'wrapped'")
    specs = spec.wrapped if isinstance(spec.wrapped, (list, tuple)) else [spec.wrapped]
    return cls._from_wrapped([from_spec(wrapped) for wrapped in specs], params)


# --- wrappers around user callables -------------------------------------------------------------


def _check_callable(transformation: Any) -> Callable:
    if not callable(transformation):
        raise TypeError(f"the transformation must be callable, got {transformation!r}")
    return transformation


def _optional_dtype(dtype: Any) -> np.dtype | None:
    return None if dtype is None else np.dtype(dtype)


def _dtype_param(dtype: np.dtype | None) -> str | None:
    """``dtype`` as a JSON-able string that ``np.dtype`` reads back (its name when that is exact,
    e.g. ``"float32"``, else the typestring, e.g. ``">f4"``)."""
    if dtype is None:
        return None
    return dtype.name if np.dtype(dtype.name) == dtype else dtype.str


def _private(block: np.ndarray) -> np.ndarray:
    """``block``, or a copy when it may be a view of the wrapped data (numpy-backed sources read
    as views), so that a transformation working in place never changes the wrapped source."""
    if block.flags.owndata and block.flags.writeable:
        return block
    return block.copy()


@register_wrapper
class SimpleTransformationSource(WrapperSource):
    """``transformation(block)`` of every block read: a value-only transformation (one that does
    not depend on where the block lies; see ``TransformationSource`` for one that does).

    The callable is recorded in the spec as itself and travels by pickling (cloudpickle for
    lambdas and local functions). It gets a block it may modify in place.

    With ``with_channels=True`` the wrapped source's first axis is a channel axis hidden from this
    wrapper's shape (indices address the spatial axes), and every read passes all channels of the
    region to the transformation. If the transformation keeps the channel axis, reads return it in
    front of the region's axes (as 0.2 does); integer indices squeeze spatial axes only.

    ``dtype`` is the dtype this source reports (default: the wrapped source's); the transformation's
    results are returned as it computes them, not cast (as in 0.2).

    Args:
        source: the source to transform.
        transformation: ``transformation(block) -> block``.
        with_channels: the wrapped source has a leading channel axis (see above).
        dtype: the dtype of the results.

    Raises:
        TypeError: ``transformation`` is not callable.
        ValueError: ``with_channels`` for a 0-d source.
    """

    # Whether blocks that may be views of the wrapped data are copied before the transformation.
    # Built-in subclasses that never modify their input turn it off.
    _copy_views = True

    def __init__(
        self,
        source: SourceLike,
        transformation: Callable[[np.ndarray], np.ndarray],
        *,
        with_channels: bool = False,
        dtype: Any = None,
    ) -> None:
        super().__init__(source)
        self._transformation = _check_callable(transformation)
        self._with_channels = bool(with_channels)
        self._dtype = _optional_dtype(dtype)
        shape = self._source._static_shape
        if self._with_channels:
            if self._source.ndim == 0:
                raise ValueError("with_channels needs a source with a leading channel axis")
            shape = None if shape is None else shape[1:]
        self._claim_static_shape(SimpleTransformationSource, shape)

    @property
    def shape(self) -> tuple[int, ...]:
        shape = self._source.shape
        return shape[1:] if self._with_channels else shape

    @property
    def dtype(self) -> np.dtype:
        return self._source.dtype if self._dtype is None else self._dtype

    @property
    def chunks(self) -> tuple[int, ...] | None:
        chunks = self._source.chunks
        return chunks[1:] if self._with_channels and chunks is not None else chunks

    @property
    def shards(self) -> tuple[int, ...] | None:
        shards = self._source.shards
        return shards[1:] if self._with_channels and shards is not None else shards

    def _read_block(self, roi: tuple[slice, ...]) -> np.ndarray:
        """The wrapped data at ``roi`` (all channels in front with ``with_channels``), safe to
        modify in place."""
        if self._with_channels:
            roi = (slice(0, self._source.shape[0]), *roi)
        block = self._read(roi)
        return _private(block) if self._copy_views else block

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        return self._transformation(self._read_block(roi))

    def __getitem__(self, index: Any) -> Any:
        if not self._with_channels:
            return super().__getitem__(index)
        roi, squeeze, _ = normalize_index(index, self.shape)
        out = np.asarray(self._getitem(roi))
        if squeeze:
            # Axes the transformation kept in front of the region's (the channels) stay.
            leading = out.ndim - len(roi)
            out = out.squeeze(axis=tuple(axis + leading for axis in squeeze))
        return out[()] if out.ndim == 0 else out

    def _params(self) -> dict[str, Any]:
        return {
            "transformation": self._transformation,
            "with_channels": self._with_channels,
            "dtype": _dtype_param(self._dtype),
        }


@register_wrapper
class SimpleTransformationWithHaloSource(SimpleTransformationSource):
    """``transformation(block)`` of every block read, grown by ``halo`` first: for filters whose
    value near a block's border depends on the neighbours (a Gaussian, a median, ...).

    A read of ``roi`` reads ``roi`` grown by ``halo`` on every axis (clipped to the source),
    transforms it, and crops the result back to ``roi``; with a halo at least the filter's reach,
    any tiling of reads equals the transformation of the whole volume. Everything else as in
    ``SimpleTransformationSource``.

    Args:
        source: the source to transform.
        transformation: ``transformation(block) -> block`` of the same spatial shape.
        halo: the margin per spatial axis (non-negative ints; one int for every axis).
        with_channels: the wrapped source has a leading channel axis (hidden, see above).
        dtype: the dtype of the results.

    Raises:
        TypeError: ``transformation`` is not callable.
        ValueError: a negative halo, or one of another length than the (spatial) axes.
    """

    def __init__(
        self,
        source: SourceLike,
        transformation: Callable[[np.ndarray], np.ndarray],
        halo: int | Sequence[int],
        *,
        with_channels: bool = False,
        dtype: Any = None,
    ) -> None:
        super().__init__(source, transformation, with_channels=with_channels, dtype=dtype)
        self._halo = tuple(normalize_halo(halo, self.ndim))
        if any(h < 0 for h in self._halo):
            raise ValueError(f"the halo must be non-negative, got {list(self._halo)}")

    @property
    def halo(self) -> tuple[int, ...]:
        """The margin read around every region, per spatial axis."""
        return self._halo

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        shape = self.shape
        outer = tuple(
            slice(max(s.start - h, 0), min(s.stop + h, n))
            for s, h, n in zip(roi, self._halo, shape)
        )
        crop = tuple(slice(s.start - o.start, s.stop - o.start) for s, o in zip(roi, outer))
        # Crop the trailing (spatial) axes: channels the transformation keeps stay in front.
        return np.asarray(self._transformation(self._read_block(outer)))[(Ellipsis, *crop)]

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "halo": list(self._halo)}


@register_wrapper
class TransformationSource(WrapperSource):
    """``transformation(block, roi)`` of every block read: a transformation that also depends on
    where the block lies (``roi``: one ``slice(start, stop)`` per axis of this source).

    The callable travels in the spec by pickling, and gets a block it may modify in place;
    ``dtype`` is the reported dtype (default: the wrapped source's), results are not cast.

    Args:
        source: the source to transform.
        transformation: ``transformation(block, roi) -> block``.
        dtype: the dtype of the results.

    Raises:
        TypeError: ``transformation`` is not callable.
    """

    def __init__(
        self,
        source: SourceLike,
        transformation: Callable[[np.ndarray, tuple[slice, ...]], np.ndarray],
        *,
        dtype: Any = None,
    ) -> None:
        super().__init__(source)
        self._transformation = _check_callable(transformation)
        self._dtype = _optional_dtype(dtype)

    @property
    def dtype(self) -> np.dtype:
        return self._source.dtype if self._dtype is None else self._dtype

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        return self._transformation(_private(self._read(roi)), roi)

    def _params(self) -> dict[str, Any]:
        return {"transformation": self._transformation, "dtype": _dtype_param(self._dtype)}


@register_wrapper
class MultiTransformationSource(WrapperSource):
    """``transformation(*blocks)`` of the same region read from several equally shaped sources
    (``transformation(blocks)``, one list, with ``apply_to_list=True``).

    Shape, chunks and shards are the first source's; ``dtype`` is the reported dtype (default:
    the first source's), results are not cast. The spec's ``wrapped`` lists every source's spec.

    Args:
        transformation: the callable combining the blocks.
        *sources: the sources (at least one), all of one shape.
        apply_to_list: pass the blocks as one list instead of one argument each.
        dtype: the dtype of the results.

    Raises:
        TypeError: ``transformation`` is not callable.
        ValueError: no sources, or sources of different shapes.
    """

    def __init__(
        self,
        transformation: Callable[..., np.ndarray],
        *sources: SourceLike,
        apply_to_list: bool = False,
        dtype: Any = None,
    ) -> None:
        _check_callable(transformation)
        if not sources:
            raise ValueError("MultiTransformationSource needs at least one source")
        converted = tuple(as_source(source) for source in sources)
        shapes = [source.shape for source in converted]
        if any(shape != shapes[0] for shape in shapes):
            raise ValueError(f"MultiTransformationSource needs sources of one shape, got {shapes}")
        super().__init__(converted[0])
        self._sources = converted
        self._transformation = transformation
        self._apply_to_list = bool(apply_to_list)
        self._dtype = _optional_dtype(dtype)

    @property
    def _wrapped_sources(self) -> tuple[Source, ...]:
        return self._sources

    @property
    def dtype(self) -> np.dtype:
        return self._source.dtype if self._dtype is None else self._dtype

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        blocks = [_private(np.asarray(source._getitem(roi))) for source in self._sources]
        if self._apply_to_list:
            return self._transformation(blocks)
        return self._transformation(*blocks)

    def _params(self) -> dict[str, Any]:
        return {
            "transformation": self._transformation,
            "apply_to_list": self._apply_to_list,
            "dtype": _dtype_param(self._dtype),
        }

    @classmethod
    def _from_wrapped(
        cls, sources: Sequence[Source], params: dict[str, Any]
    ) -> MultiTransformationSource:
        """The transformation comes first, then every source."""
        params = dict(params)
        transformation = params.pop("transformation")
        return cls(transformation, *sources, **params)
