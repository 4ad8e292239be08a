"""Opening files: the format from the path's extension, then the registered constructor.

Everything that can be checked without the disk (format, mode) is checked before it is touched.
"""
from __future__ import annotations

import errno
import os
from typing import Any

from bioimage_py.io.registry import (
    constructor_for_format,
    format_for_extension,
    is_writable_format,
    normalize_extension,
    resolve_format_name,
    supported_extensions,
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


def _is_local(path: str) -> bool:
    return "://" not in path


def resolve_format(path: PathLike, ext: str | None = None, format: str | None = None) -> str:
    """The registered name of ``format`` if given, else the format inferred from the path.

    Raises:
        ValueError: For an unknown format (``Unknown or unavailable format``) or an extension
            without a format (``Could not infer``), listing the supported ones.
    """
    if format is not None:
        return resolve_format_name(format)
    return infer_format(path, ext)


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

    Returns what the format's library returns: for zarr the root ``zarr.Group`` (or
    ``zarr.Array`` when the root is an array), for n5 a ``z5py.File``, for hdf5 an
    ``h5py.File``. All support ``f[key]``; z5py and h5py files are also context managers.

    Args:
        path: The file or container on disk (or, for zarr, a URL zarr understands).
        mode: One of ``VALID_MODES``; anything but ``"r"`` requires a writable format.
        ext: Use this extension instead of ``path``'s to infer the format.
        format: The format name; overrides the extension.
        **kwargs: Passed to the underlying open call.

    Raises:
        ValueError: Unknown or unavailable format, uninferable extension or invalid mode, before
            the disk is touched.
        FileNotFoundError: If ``path`` does not exist and ``mode`` is ``"r"`` or ``"r+"``.
        ImportError: If the library the format needs is not installed.
    """
    path = as_path_str(path)
    fmt = resolve_format(path, ext, format)
    check_mode(mode, fmt)
    if mode in ("r", "r+") and _is_local(path) and not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    return constructor_for_format(fmt)(path, mode, **kwargs)
