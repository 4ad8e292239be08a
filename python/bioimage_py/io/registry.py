"""The format registry: which file formats exist, their extensions and how to open them.

The registry knows nothing about any particular format. A format is a name, the file extensions
that select it, a *constructor* that opens a file of that format, and whether it can be written.
A constructor is called as ``constructor(path, mode, **kwargs)`` with ``path`` a ``str`` and
``mode`` one of ``"r"``, ``"r+"``, ``"a"``, ``"w"`` (only ``"r"`` for read-only formats),
and returns the opened container or array. Registering a name again replaces that format, so a
faster reader can be swapped in behind the same name. Only formats registered with ``urls=True``
(zarr and N5) are handed URLs (``s3://``, ``gs://``, ``http(s)://``); the others read local files.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FormatConstructor",
    "constructor_for_format",
    "format_for_extension",
    "is_writable_format",
    "normalize_extension",
    "register_format",
    "resolve_format_name",
    "supported_extensions",
    "supported_formats",
    "supports_urls",
]

FormatConstructor = Callable[..., Any]
"""``constructor(path: str, mode: str, **kwargs) -> container or array``."""


@dataclass(frozen=True)
class _Format:
    name: str
    extensions: tuple[str, ...]
    constructor: FormatConstructor
    writable: bool
    urls: bool = False


# Insertion-ordered: formats and extensions are listed in registration order.
_FORMATS: dict[str, _Format] = {}
_EXTENSIONS: dict[str, str] = {}


def normalize_extension(ext: str) -> str:
    """Lower-case ``ext`` and give it a leading dot (``"H5"`` -> ``".h5"``); ``""`` stays ``""``."""
    if not isinstance(ext, str):
        raise TypeError(f"An extension must be a str, got {type(ext).__name__}: {ext!r}")
    ext = ext.strip().lower()
    if ext and not ext.startswith("."):
        ext = "." + ext
    return ext


def _normalize_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"A format name must be a non-empty str, got {name!r}")
    return name.strip().lower()


def register_format(
    name: str,
    extensions: Iterable[str] | str,
    constructor: FormatConstructor,
    *,
    writable: bool = False,
    urls: bool = False,
) -> None:
    """Register (or replace) the file format ``name``.

    Args:
        name: The format's name, e.g. ``"zarr"``; matched case-insensitively.
        extensions: The extensions that select this format (``".zarr"`` or ``"zarr"``; a single
            str counts as one extension; ``""`` selects extension-less paths such as folders).
        constructor: ``constructor(path, mode, **kwargs)`` opening a file of this format. Import
            optional libraries inside it, so that a missing one only fails when a file is opened.
        writable: Whether files of this format can be opened with a mode other than ``"r"``.
        urls: Whether the constructor opens URLs (``s3://``, ``gs://``, ``http(s)://``) and
            takes their options (``endpoint_url``, ``region``, ``anonymous``); other formats
            refuse URLs with a ``ValueError``.

    Raises:
        ValueError: If ``name`` is empty or an extension already belongs to another format.
        TypeError: If ``constructor`` is not callable or an extension is not a str.
    """
    name = _normalize_name(name)
    if not callable(constructor):
        raise TypeError(f"The constructor of format {name!r} must be callable, got {constructor!r}")
    if isinstance(extensions, str):
        extensions = [extensions]
    normalized = tuple(dict.fromkeys(normalize_extension(ext) for ext in extensions))
    for ext in normalized:
        owner = _EXTENSIONS.get(ext)
        if owner is not None and owner != name:
            raise ValueError(
                f"Extension {ext!r} already belongs to format {owner!r}; "
                f"register {owner!r} again without it first"
            )
    previous = _FORMATS.pop(name, None)
    if previous is not None:
        for ext in previous.extensions:
            _EXTENSIONS.pop(ext, None)
    _FORMATS[name] = _Format(name, normalized, constructor, bool(writable), bool(urls))
    for ext in normalized:
        _EXTENSIONS[ext] = name


def supported_formats() -> tuple[str, ...]:
    """The registered format names, in registration order."""
    return tuple(_FORMATS)


def supported_extensions() -> tuple[str, ...]:
    """The registered extensions (lower-case, with a leading dot), in registration order."""
    return tuple(_EXTENSIONS)


def format_for_extension(ext: str) -> str | None:
    """The format registered for extension ``ext`` (any case, dot optional), or ``None``."""
    return _EXTENSIONS.get(normalize_extension(ext))


def _lookup(name: str) -> _Format:
    fmt = _FORMATS.get(name.strip().lower()) if isinstance(name, str) else None
    if fmt is None:
        supported = ", ".join(repr(f) for f in _FORMATS) or "none"
        raise ValueError(f"Unknown or unavailable format {name!r}; supported formats: {supported}")
    return fmt


def resolve_format_name(name: str) -> str:
    """The registered spelling of format ``name`` (``"HDF5"`` -> ``"hdf5"``).

    Raises:
        ValueError: Starting ``Unknown or unavailable format`` if ``name`` is not registered.
    """
    return _lookup(name).name


def constructor_for_format(name: str) -> FormatConstructor:
    """The constructor registered for format ``name``.

    Raises:
        ValueError: Starting ``Unknown or unavailable format`` and listing the supported formats.
    """
    return _lookup(name).constructor


def is_writable_format(name: str) -> bool:
    """Whether format ``name`` can be opened for writing.

    Raises:
        ValueError: Starting ``Unknown or unavailable format`` if ``name`` is not registered.
    """
    return _lookup(name).writable


def supports_urls(name: str) -> bool:
    """Whether format ``name`` opens URLs (it was registered with ``urls=True``).

    Raises:
        ValueError: Starting ``Unknown or unavailable format`` if ``name`` is not registered.
    """
    return _lookup(name).urls
