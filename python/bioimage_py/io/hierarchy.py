"""Walking an opened container: which of its members are arrays, and where they are.

Duck-typed so that any reader fits: an *array* has ``shape`` and ``dtype`` and no ``keys``; a
*group* maps names to members. h5py and z5py groups are walked with ``visititems`` (h5py's visits
each object once, even through hard-link cycles), zarr groups with ``members(max_depth=None)``,
anything else through ``keys()``.
"""
from __future__ import annotations

from typing import Any

__all__ = ["describe_arrays", "is_array", "list_arrays"]


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
        found = _walk_keys(container, "")
    return sorted(found)


def _walk_keys(group: Any, prefix: str) -> list[str]:
    found = []
    for key in group.keys():
        obj = group[key]
        name = f"{prefix}{key}"
        if is_array(obj):
            found.append(name)
        elif hasattr(obj, "keys"):
            found.extend(_walk_keys(obj, name + "/"))
    return found


def describe_arrays(arrays: list[str], limit: int = 20) -> str:
    """``'a', 'b/c'`` for an error message; ``''`` is marked as the root, long lists cut short."""
    if not arrays:
        return "none"
    shown = [repr(a) + (" (the root)" if a == "" else "") for a in arrays[:limit]]
    if len(arrays) > limit:
        shown.append(f"... and {len(arrays) - limit} more")
    return ", ".join(shown)
