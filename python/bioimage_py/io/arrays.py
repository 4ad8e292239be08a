"""Opening one array of a file: ``open_array``, the layer ``open_source`` builds on."""
from __future__ import annotations

from typing import Any

from bioimage_py.io.files import PathLike, as_path_str, open_file, resolve_format
from bioimage_py.io.hierarchy import describe_arrays, is_array, list_arrays
from bioimage_py.io.location import is_local, normalize_location, split_storage_options
from bioimage_py.io.ome import select_full_resolution

__all__ = ["open_array"]


def open_array(
    path: PathLike,
    internal_path: str | None = None,
    format: str | None = None,
    mode: str = "r",
    **kwargs: Any,
) -> tuple[Any, str, str]:
    """Open the array at ``internal_path`` in the file or container at ``path``.

    Without ``internal_path`` the array is found as h5py and zarr users expect: the root when
    the container is itself an array (internal path ``""``), the full-resolution level of an
    OME-Zarr image (also when ``internal_path`` names the image's group), else the one array the
    container holds at any depth. A container holding several arrays, or none, needs
    ``internal_path``.
    Leading and trailing slashes of ``internal_path`` are ignored (``"/a/b"`` is ``"a/b"``).

    Args:
        path: The file or container on disk, a zip file holding a zarr, or a URL of a zarr or
            N5 container (``s3://``, ``gs://``, ``http(s)://``).
        internal_path: The array's path inside the container, e.g. ``"a/b/c"``; ``""`` is the root.
        format: The format name; inferred from ``path``'s extension when not given.
        mode: ``"r"`` (default), ``"r+"``, ``"a"`` or ``"w"``; see ``open_file``.
        **kwargs: Passed to the underlying open call (for URLs: ``endpoint_url``, ``region``,
            ``anonymous``).

    Returns:
        ``(array, internal_path, format)``: the opened array (``zarr.Array``, z5py ``Dataset``,
        ``h5py.Dataset``), its resolved internal path and the resolved format name.

    Raises:
        ValueError: Unknown format or mode (before the disk is touched); ``internal_path``
            missing where it is required, not found, or naming a group; each listing the arrays
            found.
        FileNotFoundError: If ``path`` does not exist and ``mode`` is ``"r"`` or ``"r+"``.
        TypeError: If ``internal_path`` is neither ``None`` nor a str.
    """
    if internal_path is not None and not isinstance(internal_path, str):
        raise TypeError(f"internal_path must be a str or None, got {internal_path!r}")
    path = as_path_str(path)
    if not is_local(path):
        path = normalize_location(path)
    storage_options, _ = split_storage_options(path, kwargs)
    fmt = resolve_format(path, format=format, storage_options=storage_options)
    container = open_file(path, mode=mode, format=fmt, **kwargs)
    try:
        key, array = _select_array(container, path, internal_path)
    except BaseException:
        _close(container)
        raise
    return array, key, fmt


def _select_array(container: Any, path: str, internal_path: str | None) -> tuple[str, Any]:
    key = None if internal_path is None else internal_path.strip("/")
    if is_array(container):
        if not key:
            return "", container
        raise ValueError(
            f"internal_path {key!r} does not exist in {path!r}, which is a single array; "
            f"use internal_path='' (arrays found: {describe_arrays([''])})"
        )
    if key is None:
        level = select_full_resolution(container, "")  # an OME-Zarr image: its first level
        if level is not None:
            return level
        arrays = list_arrays(container)
        if len(arrays) == 1:
            return arrays[0], container[arrays[0]]
        what = f"{len(arrays)} arrays" if arrays else "no arrays"
        raise ValueError(
            f"{path!r} holds {what}; pass internal_path to choose one. "
            f"Arrays found: {describe_arrays(arrays)}"
        )
    try:
        member = container[key] if key else container
    except KeyError:
        raise ValueError(
            f"internal_path {key!r} does not exist in {path!r}; "
            f"arrays found: {_arrays_found(container)}"
        ) from None
    if not is_array(member):
        level = select_full_resolution(container, key)
        if level is not None:
            return level
        raise ValueError(
            f"internal_path {key!r} in {path!r} is a group, not an array; "
            f"arrays found: {_arrays_found(container)}"
        )
    return key, member


def _arrays_found(container: Any) -> str:
    """The arrays of ``container`` for an error message; a container that cannot be listed
    (HTTP) says so instead of failing."""
    try:
        return describe_arrays(list_arrays(container))
    except ValueError as err:
        if "cannot list" not in str(err):
            raise
        return "unknown (HTTP servers do not list keys)"


def _close(container: Any) -> None:
    close = getattr(container, "close", None)
    if callable(close):
        close()
