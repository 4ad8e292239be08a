"""zarr stores and N5 containers opened by the Rust core: the fast path behind ``open_source``.

``open_native_zarr`` / ``open_native_n5`` are the registry constructors of the ``"zarr"`` and
``"n5"`` formats. Like ``zarr.open`` they return the array itself when the container's root is
an array, and otherwise a ``NativeContainer`` whose items are the arrays inside it.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from bioimage_py import _core
from bioimage_py.io.metadata_json import node_kind

__all__ = [
    "NativeContainer",
    "check_native_options",
    "is_native_array_dir",
    "open_native_n5",
    "open_native_zarr",
]

N5_VERSION = "4.0.0"


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


def _write_root_group(path: Path, format: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if format == "zarr":
        (path / "zarr.json").write_text(
            json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}})
        )
    else:
        (path / "attributes.json").write_text(json.dumps({"n5": N5_VERSION}))


class NativeContainer:
    """A zarr store or N5 container on disk; ``container[key]`` opens the array at ``key``.

    Args:
        path: the container's root folder.
        format: ``"zarr"`` or ``"n5"``.
        mode: ``"r"`` opens arrays read-only; ``"r+"``, ``"a"``, ``"w"`` writable.
        chunk_cache_bytes: bound of each opened array's decoded-chunk cache (0 disables it).
        missing_chunks: ``"fill"`` (missing chunks read as the fill value) or ``"error"``.
    """

    def __init__(
        self,
        path: str,
        format: str,
        mode: str,
        *,
        chunk_cache_bytes: int = _core.DEFAULT_CHUNK_CACHE_BYTES,
        missing_chunks: str = "fill",
    ) -> None:
        check_native_options(chunk_cache_bytes, missing_chunks)
        self.path = path
        self.format = format
        self.mode = mode
        self.options = {"chunk_cache_bytes": chunk_cache_bytes, "missing_chunks": missing_chunks}
        self._open: Callable[..., Any] = _core.open_zarr if format == "zarr" else _core.open_n5
        self._list: Callable[[str], list[str]] = (
            _core.list_zarr_arrays if format == "zarr" else _core.list_n5_arrays
        )

    def list_arrays(self) -> list[str]:
        """The keys of every array in the container, sorted.

        Local containers are walked by ``hierarchy.walk_native_arrays``, which ends on symlink
        cycles and is bounded (``ValueError`` beyond its limits).
        """
        if "://" in self.path:
            return self._list(self.path)
        from bioimage_py.io.hierarchy import walk_native_arrays  # hierarchy imports this module

        return walk_native_arrays(self.path, self.format)

    def __getitem__(self, key: str) -> Any:
        """The array at ``key``, or the group there as a ``NativeContainer``; ``KeyError`` if
        neither exists."""
        key = key.strip("/")
        where = Path(self.path, key)
        if is_native_array_dir(where, self.format):
            return self._open(self.path, key, read_only=self.mode == "r", **self.options)
        # Groups: folders with group metadata, or bare folders (z5py's intermediate N5 groups,
        # zarr v3 implicit groups).
        if key and where.is_dir():
            return NativeContainer(str(where), self.format, self.mode, **self.options)
        raise KeyError(key)

    def __contains__(self, key: str) -> bool:
        return Path(self.path, key.strip("/")).is_dir()

    def close(self) -> None:
        """Nothing to release: arrays hold no open files between calls."""

    def __enter__(self) -> NativeContainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"NativeContainer(path={self.path!r}, format={self.format!r}, mode={self.mode!r})"


def _open_native(
    path: str,
    mode: str,
    format: str,
    *,
    chunk_cache_bytes: int = _core.DEFAULT_CHUNK_CACHE_BYTES,
    missing_chunks: str = "fill",
) -> Any:
    # Every argument is checked before mode "w" may delete anything.
    check_native_options(chunk_cache_bytes, missing_chunks)
    options = {"chunk_cache_bytes": chunk_cache_bytes, "missing_chunks": missing_chunks}
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


def open_native_zarr(path: str, mode: str, **options: Any) -> Any:
    """Open a zarr (v2 or v3) store natively: its root array, or a ``NativeContainer``.

    ``options``: ``chunk_cache_bytes``, ``missing_chunks`` (see ``NativeContainer``).
    """
    return _open_native(path, mode, "zarr", **options)


def open_native_n5(path: str, mode: str, **options: Any) -> Any:
    """Open an N5 container natively: its root dataset, or a ``NativeContainer``.

    ``options``: ``chunk_cache_bytes``, ``missing_chunks`` (see ``NativeContainer``).
    """
    return _open_native(path, mode, "n5", **options)
