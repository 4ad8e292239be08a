"""zarr stores and N5 containers opened by the Rust core: the fast path behind ``open_source``.

``open_native_zarr`` / ``open_native_n5`` are the registry constructors of the ``"zarr"`` and
``"n5"`` formats. Like ``zarr.open`` they return the array itself when the container's root is
an array, and otherwise a ``NativeContainer`` whose items are the arrays inside it.

The container is a local folder, a zip file holding a zarr (read-only) or a URL (``s3://``,
``gs://``, ``http(s)://``, see ``bioimage_py.io.location``). Local folders are examined on the
file system; zip files and URLs through the core's store functions (``_core.store_get``,
``store_list_dir``, ...), with the storage options given as keyword arguments.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

from bioimage_py import _core
from bioimage_py.io.hierarchy import walk_native_arrays
from bioimage_py.io.location import (
    READ_ONLY_SCHEMES,
    STORAGE_OPTIONS,
    check_location,
    check_writable_location,
    describe_key,
    is_local,
    join_key,
    normalize_location,
    split_storage_options,
    store_kwargs,
    url_scheme,
)
from bioimage_py.io.metadata_json import node_kind, node_kind_at

__all__ = [
    "NativeContainer",
    "check_native_options",
    "is_native_array_dir",
    "open_native_n5",
    "open_native_zarr",
]

N5_VERSION = "4.0.0"
NATIVE_OPTIONS = ("chunk_cache_bytes", "missing_chunks", *STORAGE_OPTIONS)
"""The keyword arguments the zarr and N5 openers take."""


def is_native_array_dir(path: str | os.PathLike[str], format: str) -> bool:
    """Whether ``path`` holds array metadata of ``format`` (not a group, not nothing).

    Raises:
        ValueError: damaged metadata (bad bytes, bad JSON, an unknown ``node_type``), naming
            the file.
    """
    return node_kind(path, format) == "array"


def _is_container_root(path: Path, format: str) -> bool:
    names = ("zarr.json", ".zgroup", ".zarray") if format == "zarr" else ("attributes.json",)
    return any((path / name).is_file() for name in names)


def check_native_options(chunk_cache_bytes: int, missing_chunks: str) -> None:
    """Validates the open options every native array takes (zarr, N5, HDF5)."""
    if not isinstance(chunk_cache_bytes, int) or chunk_cache_bytes < 0:
        raise ValueError(f"chunk_cache_bytes must be a non-negative int, got {chunk_cache_bytes!r}")
    if missing_chunks not in ("fill", "error"):
        raise ValueError(f'missing_chunks must be "fill" or "error", got {missing_chunks!r}')


def _root_group_metadata(format: str) -> tuple[str, bytes]:
    """The key and bytes of an empty root group's metadata (zarr v3 or N5)."""
    if format == "zarr":
        return "zarr.json", json.dumps(
            {"zarr_format": 3, "node_type": "group", "attributes": {}}
        ).encode()
    return "attributes.json", json.dumps({"n5": N5_VERSION}).encode()


def _write_root_group(path: Path, format: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    name, data = _root_group_metadata(format)
    (path / name).write_bytes(data)


class NativeContainer:
    """A zarr store or N5 container; ``container[key]`` opens the array at ``key``.

    Args:
        path: the container's root: a local folder, a zip file holding a zarr, or a URL
            (``s3://``, ``gs://``, ``http(s)://``).
        format: ``"zarr"`` or ``"n5"``.
        mode: ``"r"`` opens arrays read-only; ``"r+"``, ``"a"``, ``"w"`` writable.
        chunk_cache_bytes: bound of each opened array's decoded-chunk cache (0 disables it).
        missing_chunks: ``"fill"`` (missing chunks read as the fill value) or ``"error"``.
        storage_options: for URLs, the core's ``storage_options`` (``endpoint_url``,
            ``region``, ``anonymous``).
        prefix: the key of this group in the store at ``path`` (groups of zip files and URLs;
            a local group is its own folder).
    """

    def __init__(
        self,
        path: str,
        format: str,
        mode: str,
        *,
        chunk_cache_bytes: int = _core.DEFAULT_CHUNK_CACHE_BYTES,
        missing_chunks: str = "fill",
        storage_options: Mapping[str, Any] | None = None,
        prefix: str = "",
    ) -> None:
        check_native_options(chunk_cache_bytes, missing_chunks)
        self.path = path
        self.format = format
        self.mode = mode
        self.prefix = prefix.strip("/")
        self.storage_options = dict(storage_options) if storage_options else None
        self.options = {"chunk_cache_bytes": chunk_cache_bytes, "missing_chunks": missing_chunks}
        self._local = is_local(path)
        self._store = store_kwargs(self.storage_options)
        self._open: Callable[..., Any] = _core.open_zarr if format == "zarr" else _core.open_n5
        self._list: Callable[..., list[str]] = (
            _core.list_zarr_arrays if format == "zarr" else _core.list_n5_arrays
        )

    @property
    def location(self) -> str:
        """Where this group is, for messages (the root, or the root and the group's key)."""
        return describe_key(self.path, self.prefix)

    def list_arrays(self) -> list[str]:
        """The keys of every array in the container (relative to this group), sorted.

        Local containers are walked by ``hierarchy.walk_native_arrays``, which ends on symlink
        cycles and is bounded (``ValueError`` beyond its limits); zip files and URLs are listed
        by the core.

        Raises:
            ValueError: an ``http(s)://`` container (HTTP cannot list keys: pass the array's
                ``internal_path``).
        """
        if self._local:
            return walk_native_arrays(self.path, self.format)
        if url_scheme(self.path) in READ_ONLY_SCHEMES:
            found = node_kind_at(self.path, self.prefix, self.format, self.storage_options)
            nothing = "" if found is not None else (
                f" (and there is no {self.format} metadata at it: check the URL)"
            )
            raise ValueError(
                f"cannot list the arrays of {self.location!r}: HTTP servers do not list "
                f"keys{nothing}; pass internal_path naming the array"
            )
        keys = self._list(self.path, **self._store)
        if not self.prefix:
            return sorted(keys)
        inside = f"{self.prefix}/"
        return sorted(key[len(inside):] for key in keys if key.startswith(inside))

    def _has_children(self, key: str) -> bool:
        """Whether anything is stored below ``key`` (an implicit group); HTTP cannot tell."""
        if url_scheme(self.path) in READ_ONLY_SCHEMES:
            return False
        names, folders = _core.store_list_dir(self.path, key, **self._store)
        return bool(names or folders)

    def __getitem__(self, key: str) -> Any:
        """The array at ``key``, or the group there as a ``NativeContainer``; ``KeyError`` if
        neither exists."""
        key = key.strip("/")
        if self._local:
            where = Path(self.path, key)
            if is_native_array_dir(where, self.format):
                return self._open(self.path, key, read_only=self.mode == "r", **self.options)
            # Groups: folders with group metadata, or bare folders (z5py's intermediate N5
            # groups, zarr v3 implicit groups).
            if key and where.is_dir():
                return NativeContainer(str(where), self.format, self.mode, **self.options)
            raise KeyError(key)
        full = join_key(self.prefix, key)
        kind = node_kind_at(self.path, full, self.format, self.storage_options)
        if kind == "array":
            return self._open(
                self.path, full, read_only=self.mode == "r", **self.options, **self._store
            )
        if key and (kind == "group" or self._has_children(full)):
            return NativeContainer(
                self.path, self.format, self.mode, **self.options,
                storage_options=self.storage_options, prefix=full,
            )
        raise KeyError(key)

    def __contains__(self, key: str) -> bool:
        key = key.strip("/")
        if self._local:
            return Path(self.path, key).is_dir()
        full = join_key(self.prefix, key)
        return (
            node_kind_at(self.path, full, self.format, self.storage_options) is not None
            or self._has_children(full)
        )

    def close(self) -> None:
        """Nothing to release: arrays hold no open files between calls."""

    def __enter__(self) -> NativeContainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        prefix = f", prefix={self.prefix!r}" if self.prefix else ""
        return (
            f"NativeContainer(path={self.path!r}{prefix}, format={self.format!r}, "
            f"mode={self.mode!r})"
        )


def _check_option_names(path: str, format: str, options: Mapping[str, Any]) -> None:
    """``TypeError`` for keyword arguments the openers do not take (credentials named as such)."""
    split_storage_options(path, {name: None for name in options})  # credentials: TypeError
    unknown = sorted(set(options) - set(NATIVE_OPTIONS))
    if unknown:
        raise TypeError(
            f"unexpected option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for the "
            f"{format} container {path!r}; {format} takes {', '.join(NATIVE_OPTIONS)}"
        )


def _open_native(path: str, mode: str, format: str, **options: Any) -> Any:
    # Every argument is checked before mode "w" may delete anything.
    _check_option_names(path, format, options)
    storage_options, options = split_storage_options(path, options)
    options = {"chunk_cache_bytes": _core.DEFAULT_CHUNK_CACHE_BYTES, "missing_chunks": "fill",
               **options}
    check_native_options(options["chunk_cache_bytes"], options["missing_chunks"])
    if not is_local(path):
        return _open_in_store(normalize_location(path), mode, format, options, storage_options)
    root = Path(path)
    if mode == "w":
        if root.exists():
            if not root.is_dir() or (any(root.iterdir()) and not _is_container_root(root, format)):
                raise ValueError(
                    f"refusing to overwrite {path!r} with mode 'w': it is not a {format} container"
                )
            shutil.rmtree(root)
        _write_root_group(root, format)
    elif mode == "a" and not root.exists():
        _write_root_group(root, format)
    container = NativeContainer(path, format, mode, **options)
    if is_native_array_dir(root, format):
        return container[""]
    return container


def _open_in_store(
    path: str,
    mode: str,
    format: str,
    options: dict[str, Any],
    storage_options: dict[str, Any] | None,
) -> Any:
    """``_open_native`` of a zip file or a URL: the same modes and the same safety rule as on
    disk (mode ``"w"`` deletes only a container's keys), through the core's store functions."""
    check_location(path)
    if mode != "r":
        check_writable_location(path, mode=mode)
    store = store_kwargs(storage_options)
    kind = node_kind_at(path, "", format, storage_options)
    listable = url_scheme(path) not in READ_ONLY_SCHEMES
    if mode == "w":
        if kind is not None:
            _core.store_delete_prefix(path, "", **store)
        elif _holds_keys(path, store):
            raise ValueError(
                f"refusing to overwrite {path!r} with mode 'w': it holds keys but no {format} "
                "container metadata at its root"
            )
        kind = None
    if kind is None and mode in ("w", "a") and (mode == "w" or not _holds_keys(path, store)):
        name, data = _root_group_metadata(format)
        _core.store_put(path, name, data, **store)
        kind = "group"
    if kind is None and listable and not _holds_keys(path, store):
        raise FileNotFoundError(
            errno.ENOENT, f"no {format} container there (no metadata, no keys)", path
        )
    container = NativeContainer(path, format, mode, **options, storage_options=storage_options)
    if kind == "array":
        # Known to be an array: opened without asking the store again (a request per open).
        return container._open(path, "", read_only=mode == "r", **options, **store)
    return container


def _holds_keys(path: str, store: dict[str, Any]) -> bool:
    names, folders = _core.store_list_dir(path, "", **store)
    return bool(names or folders)


def open_native_zarr(path: str, mode: str, **options: Any) -> Any:
    """Open a zarr (v2 or v3) store natively: its root array, or a ``NativeContainer``.

    ``path``: a local folder, a zip file holding a zarr (read-only) or a URL. ``options``:
    ``chunk_cache_bytes``, ``missing_chunks`` (see ``NativeContainer``); for URLs
    ``endpoint_url``, ``region``, ``anonymous`` (see ``bioimage_py.io.location``).
    """
    return _open_native(path, mode, "zarr", **options)


def open_native_n5(path: str, mode: str, **options: Any) -> Any:
    """Open an N5 container natively: its root dataset, or a ``NativeContainer``.

    ``path``: a local folder, a zip file (read-only) or a URL. ``options``:
    ``chunk_cache_bytes``, ``missing_chunks`` (see ``NativeContainer``); for URLs
    ``endpoint_url``, ``region``, ``anonymous``.
    """
    return _open_native(path, mode, "n5", **options)
