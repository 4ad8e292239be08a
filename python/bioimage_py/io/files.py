"""Opening files: the format from the path's extension, then the registered constructor.

Everything that can be checked without the disk (format, mode) is checked before it is touched.
A URL (``s3://``, ``gs://``, ``http(s)://``) takes its format from its suffix (``.zarr``,
``.n5``) or, without one, from the metadata keys at its root (read through the core).
"""
from __future__ import annotations

import errno
import os
from typing import Any

from bioimage_py import _core
from bioimage_py.io.location import (
    check_location,
    check_writable_location,
    is_local,
    is_read_only_location,
    is_url,
    is_zip,
    normalize_location,
    split_storage_options,
    store_kwargs,
)
from bioimage_py.io.registry import (
    constructor_for_format,
    format_for_extension,
    is_writable_format,
    normalize_extension,
    resolve_format_name,
    supported_extensions,
    supports_urls,
)

__all__ = ["VALID_MODES", "infer_extension", "infer_format", "open_file"]

VALID_MODES = ("r", "r+", "a", "w")
"""``r`` read-only (default); ``r+`` read-write, must exist; ``a`` read-write, created if missing;
``w`` create, truncating what exists (as zarr-python, z5py and h5py do)."""

# Compound extensions recognized even when no format claims them (yet).
_COMPOUND_EXTENSIONS = (".nii.gz",)

PathLike = str | os.PathLike[str]


def as_path_str(path: PathLike) -> str:
    """``path`` as a ``str`` (``os.fspath``); bytes paths are rejected with ``TypeError``."""
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"A path must be a str or os.PathLike of str, got {path!r}")
    return path


def _strip_trailing_separators(path: str) -> str:
    stripped = path.rstrip("/" + os.sep)
    return stripped or path


def infer_extension(path: PathLike) -> str:
    """The lower-case extension of ``path``'s last component, with its leading dot.

    ``.nii.gz`` (and any registered extension with several dots) counts as one extension; a
    trailing slash is ignored (``"a.zarr/"`` -> ``".zarr"``); a folder or file without an
    extension gives ``""``. Only the name is looked at, never the disk.
    """
    path = _strip_trailing_separators(as_path_str(path))
    name = path.replace(os.sep, "/").rsplit("/", 1)[-1].lower()
    compound = [e for e in (*_COMPOUND_EXTENSIONS, *supported_extensions()) if e.count(".") > 1]
    for ext in sorted(compound, key=len, reverse=True):
        if name.endswith(ext) and len(name) > len(ext):
            return ext
    return os.path.splitext(name)[1]


def infer_format(path: PathLike, ext: str | None = None) -> str:
    """The registered format for ``path``'s extension (or for ``ext`` if given).

    Raises:
        ValueError: Starting ``Could not infer`` and listing the supported extensions.
    """
    ext = infer_extension(path) if ext is None else normalize_extension(ext)
    fmt = format_for_extension(ext)
    if fmt is None:
        supported = ", ".join(repr(e) for e in supported_extensions()) or "none"
        what = f"extension {ext!r}" if ext else "a path without extension"
        raise ValueError(
            f"Could not infer the file format of {as_path_str(path)!r} from {what}; supported "
            f"extensions: {supported}. Pass format=... to choose one explicitly."
        )
    return fmt


# The root metadata keys that tell a store's format, probed in this order at a URL.
_PROBED_KEYS = (("zarr.json", "zarr"), (".zgroup", "zarr"), (".zarray", "zarr"),
                ("attributes.json", "n5"))


def resolve_format(
    path: PathLike,
    ext: str | None = None,
    format: str | None = None,
    *,
    storage_options: dict[str, Any] | None = None,
) -> str:
    """The registered name of ``format`` if given, else the format inferred from the path.

    A URL's format comes from its suffix when a URL format claims it (``.zarr``, ``.n5``), else
    from the metadata keys at its root (``zarr.json``, ``.zgroup``, ``.zarray``: zarr;
    ``attributes.json``: N5), read with ``storage_options``. A zip file is a zarr store unless
    its root holds N5 metadata only.

    Raises:
        ValueError: For an unknown format (``Unknown or unavailable format``) or an extension
            without a format (``Could not infer``), listing the supported ones; a URL with the
            extension of a format that reads local files only, or without any metadata to
            probe (``Could not infer``).
        OSError: the URL cannot be read while probing (naming it).
    """
    if format is not None:
        return resolve_format_name(format)
    path = as_path_str(path)
    if ext is None and is_zip(path):
        return _infer_zip_format(path)
    if ext is not None or not is_url(path):
        return infer_format(path, ext)
    return _infer_url_format(normalize_location(path), storage_options)


def _infer_zip_format(path: str) -> str:
    """The format of a zip file: zarr (what ``.zip`` is registered for), or N5 when the
    archive's root holds N5 metadata and no zarr metadata."""
    fmt = infer_format(path)
    if fmt != "zarr" or not os.path.isfile(path):
        return fmt
    try:
        found = [name for key, name in _PROBED_KEYS if _core.store_get(path, key) is not None]
    except (OSError, ValueError):  # not a zip file: the opener reports it
        return fmt
    return found[0] if found else fmt


def _infer_url_format(url: str, storage_options: dict[str, Any] | None) -> str:
    check_location(url)
    ext = infer_extension(url.split("?", 1)[0].split("#", 1)[0])
    fmt = format_for_extension(ext) if ext else None
    if fmt is not None and supports_urls(fmt):
        return fmt
    if fmt is not None and fmt != "folder":
        raise ValueError(
            f"{url!r} has the extension of {fmt} files, which are read from local paths only; "
            f"URLs hold zarr or N5 ({_url_formats()})"
        )
    store = store_kwargs(storage_options)
    for key, found in _PROBED_KEYS:
        if _core.store_get(url, key, **store) is not None:
            return found
    raise ValueError(
        f"Could not infer the format of {url!r}: no .zarr or .n5 suffix and no zarr "
        "(zarr.json, .zgroup, .zarray) or N5 (attributes.json) metadata at its root. Pass "
        "format='zarr' or format='n5' to choose one explicitly."
    )


def _url_formats() -> str:
    from bioimage_py.io.registry import supported_formats

    return ", ".join(repr(f) for f in supported_formats() if supports_urls(f)) or "none"


def check_location_for_format(path: str, format: str, mode: str = "r") -> None:
    """Check that ``format`` can open ``path`` with ``mode``: URLs need a format that opens
    URLs; HTTP(S) URLs and zip files are opened read-only.

    Raises:
        ValueError: a URL with an unsupported scheme or no bucket, or a format that reads local
            files only.
        ReadOnlyLocationError: (a ``PermissionError`` and a ``ValueError``) a write mode on an
            HTTP(S) URL or a zip file.
    """
    check_location(path)
    if is_url(path) and not supports_urls(format):
        raise ValueError(
            f"format {format!r} reads local files only, not URLs such as {path!r}; URLs hold "
            f"{_url_formats()} (a custom format opening URLs registers with urls=True)"
        )
    if mode != "r" and is_read_only_location(path):
        check_writable_location(path, mode=mode)


def check_mode(mode: str, format: str) -> None:
    """Check that ``mode`` is valid and, if it writes, that ``format`` is writable.

    Raises:
        ValueError: For a mode outside ``VALID_MODES`` or a write mode on a read-only format.
    """
    if mode not in VALID_MODES:
        valid = ", ".join(repr(m) for m in VALID_MODES)
        raise ValueError(f"Invalid mode {mode!r}; expected one of {valid}")
    if mode != "r" and not is_writable_format(format):
        raise ValueError(f"Format {format!r} is read-only; open it with mode='r', not {mode!r}")


def open_file(
    path: PathLike,
    mode: str = "r",
    ext: str | None = None,
    format: str | None = None,
    **kwargs: Any,
) -> Any:
    """Open the file or container at ``path`` with its format's registered constructor.

    Returns what the format's constructor returns: for zarr and N5 the root array, or a
    ``NativeContainer`` of the arrays; for hdf5 a container of the file's datasets. All
    support ``f[key]`` and are context managers.

    Args:
        path: The file or container on disk, a zip file holding a zarr (read-only), or a URL
            (``s3://bucket/key``, ``gs://bucket/key``, ``http(s)://...`` read-only) of a zarr
            or N5 container.
        mode: One of ``VALID_MODES``; anything but ``"r"`` requires a writable format.
        ext: Use this extension instead of ``path``'s to infer the format.
        format: The format name; overrides the extension (and a URL's probing).
        **kwargs: Passed to the underlying open call; for URLs ``endpoint_url``, ``region``,
            ``anonymous`` (see ``bioimage_py.io.location``).

    Raises:
        ValueError: Unknown or unavailable format, uninferable extension or invalid mode, before
            the disk is touched; URL options for a local path; a URL of a local-only format.
        ReadOnlyLocationError: a write mode on an HTTP(S) URL or a zip file.
        TypeError: credentials given as arguments (they come from the environment).
        FileNotFoundError: If ``path`` does not exist and ``mode`` is ``"r"`` or ``"r+"``.
        ImportError: If the library the format needs is not installed.
    """
    path = as_path_str(path)
    if mode not in VALID_MODES:
        check_mode(mode, "")
    storage_options, _ = split_storage_options(path, kwargs)
    if not is_local(path):
        path = normalize_location(path)
        check_location(path)
        if mode != "r":
            check_writable_location(path, mode=mode)
    fmt = resolve_format(path, ext, format, storage_options=storage_options)
    check_mode(mode, fmt)
    check_location_for_format(path, fmt, mode)
    if mode in ("r", "r+") and not is_url(path) and not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    return constructor_for_format(fmt)(path, mode, **kwargs)
