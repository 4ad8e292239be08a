"""Walking an opened container: which of its members are arrays, and where they are.

Duck-typed so that any reader fits: an *array* has ``shape`` and ``dtype`` and no ``keys``; a
*group* maps names to members. zarr stores and N5 containers on disk are walked folder by folder
(``walk_native_arrays``), zipped and remote ones are listed by the core; other containers that list themselves (HDF5, KNOSSOS, image folders)
do so; h5py and z5py groups are walked with ``visititems`` (h5py's visits each object once, even
through hard-link cycles), zarr groups with ``members(max_depth=None)``, anything else through
``keys()``.

Listing terminates and is bounded in time on any folder tree: a folder reached a second time
(a symlink cycle, or two links to one group) is not walked again, and a walk deeper than
``MAX_DEPTH`` groups or through more than ``MAX_ENTRIES`` folder entries stops with a
``ValueError`` naming the container (open the array by its ``internal_path`` instead).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from bioimage_py.io.metadata_json import node_kind

__all__ = [
    "MAX_DEPTH",
    "MAX_ENTRIES",
    "describe_arrays",
    "is_array",
    "list_arrays",
    "walk_native_arrays",
]

MAX_DEPTH = 64
"""Groups nested deeper than this are not listed (``ValueError``): no real hierarchy is."""
MAX_ENTRIES = 1_000_000
"""Listing examines at most this many folder entries (``ValueError`` beyond)."""


def is_array(obj: Any) -> bool:
    """Whether ``obj`` is an array (zarr Array, z5py Dataset, h5py Dataset, ...), not a group."""
    return hasattr(obj, "shape") and hasattr(obj, "dtype") and not hasattr(obj, "keys")


def list_arrays(container: Any) -> list[str]:
    """The sorted paths (``"a/b/c"``, no leading slash) of every array in ``container``.

    A container that is itself an array gives ``[""]``.
    """
    if is_array(container):
        return [""]
    if hasattr(container, "list_arrays"):  # native containers list themselves
        return sorted(container.list_arrays())
    found: list[str] = []
    if hasattr(container, "visititems"):

        def collect(name: str, obj: Any) -> None:
            if is_array(obj):
                found.append(name.strip("/"))

        container.visititems(collect)
    elif hasattr(container, "members"):
        found = [name for name, obj in container.members(max_depth=None) if is_array(obj)]
    else:
        found = _walk_keys(container, "", 0)
    return sorted(found)


def _walk_keys(group: Any, prefix: str, depth: int) -> list[str]:
    if depth > MAX_DEPTH:
        raise ValueError(
            f"groups nested more than {MAX_DEPTH} levels deep at {prefix.rstrip('/')!r} (a "
            "cycle of links?); open the array by its internal_path instead of listing"
        )
    found = []
    for key in group.keys():
        obj = group[key]
        name = f"{prefix}{key}"
        if is_array(obj):
            found.append(name)
        elif hasattr(obj, "keys"):
            found.extend(_walk_keys(obj, name + "/", depth + 1))
    return found


def walk_native_arrays(
    root: str,
    format: str,
    *,
    kind_of: Callable[[str, str], str | None] = node_kind,
) -> list[str]:
    """The sorted keys of the arrays in the zarr store or N5 container at ``root`` (``""`` for
    a root array).

    Folders starting with ``.`` are skipped, arrays are not descended into. A folder is walked
    once however many links lead to it, so symlink cycles end; an array reached by two names is
    listed under both. Unreadable folders below the root are skipped.

    Raises:
        ValueError: More than ``MAX_DEPTH`` nested groups, more than ``MAX_ENTRIES`` folder
            entries examined, or bad metadata (see ``metadata_json.node_kind``); naming the
            container or the file.
        OSError: The root folder cannot be read.
    """
    found: list[str] = []
    walked: set[tuple[int, int]] = set()
    entries = 0
    stack = [(root, "", 0)]  # depth-first, children in name order
    while stack:
        folder, key, depth = stack.pop()
        kind = kind_of(folder, format)
        if kind == "array":
            found.append(key)
            continue
        try:
            info = os.stat(folder)
        except OSError:
            if not key:
                raise
            continue
        if (info.st_dev, info.st_ino) in walked:
            continue  # reached again through a link: walked already
        walked.add((info.st_dev, info.st_ino))
        if depth >= MAX_DEPTH:
            raise ValueError(
                f"{root!r} nests groups more than {MAX_DEPTH} levels deep (at {key!r}); open "
                "the array by its internal_path instead of listing"
            )
        try:
            with os.scandir(folder) as listing:
                children = []
                for entry in listing:
                    entries += 1
                    if entries > MAX_ENTRIES:
                        raise ValueError(
                            f"listing the arrays of {root!r} stopped after {MAX_ENTRIES} folder "
                            "entries; open the array by its internal_path instead of listing"
                        )
                    if not entry.name.startswith(".") and _is_dir(entry):
                        children.append(entry.name)
        except OSError:
            if not key:
                raise
            continue  # an unreadable group holds nothing we could open anyway
        for name in sorted(children, reverse=True):
            stack.append((os.path.join(folder, name), f"{key}/{name}" if key else name, depth + 1))
    return sorted(found)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows symlinks; a broken link is not a folder
    except OSError:
        return False


def describe_arrays(arrays: list[str], limit: int = 20) -> str:
    """``'a', 'b/c'`` for an error message; ``''`` is marked as the root, long lists cut short."""
    if not arrays:
        return "none"
    shown = [repr(a) + (" (the root)" if a == "" else "") for a in arrays[:limit]]
    if len(arrays) > limit:
        shown.append(f"... and {len(arrays) - limit} more")
    return ", ".join(shown)
