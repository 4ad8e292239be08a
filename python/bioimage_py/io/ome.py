"""OME-Zarr images: their levels and coordinate transformations (``bioimage_py.ome_pyramid``
writes pyramids).

An OME-Zarr image (NGFF 0.4 on zarr v2, NGFF 0.5 on zarr v3) is a zarr group whose attributes
describe a multiscale pyramid: ``multiscales`` in ``.zattrs`` (0.4), ``ome.multiscales`` in
``zarr.json``'s ``attributes`` (0.5). Each multiscale lists its ``axes`` and its ``datasets``
(the levels, full resolution first, each an array at ``path`` relative to the group with its
``coordinateTransformations``), and may hold ``coordinateTransformations`` applied to every level.

Reading (used by ``open_array`` and ``FileSource.ome``): ``select_full_resolution`` picks the
first level of an image group; ``level_metadata`` describes an array that is a level of an image.
The Rust core reads and writes the arrays; the group metadata are JSON files read and written
here: ``group_attributes`` is the one place that reads them, from local folders as files and
from zip files and URLs through ``_core.store_get``.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from bioimage_py.io.hierarchy import is_array
from bioimage_py.io.location import describe_key, join_key
from bioimage_py.io.metadata_json import key_exists, read_json_in_store
from bioimage_py.io.native import NativeContainer


__all__ = [
    "AXIS_TYPES",
    "NGFF_VERSIONS",
    "axis_dict",
    "group_attributes",
    "level_metadata",
    "is_number",
    "select_full_resolution",
]

NGFF_VERSIONS = {2: "0.4", 3: "0.5"}
"""The NGFF version written for each zarr format."""

AXIS_TYPES = {"x": "space", "y": "space", "z": "space", "c": "channel", "t": "time"}
"""Axis names with a known NGFF axis type; other names are custom axes (no type)."""



# --- reading ----------------------------------------------------------------------------------


def group_attributes(
    root: str, key: str, storage_options: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], str] | None:
    """The user attributes of the zarr group at ``key`` of the store at ``root``, and the file
    (or URL) they come from; ``None`` when there is no group there (an array, or nothing).

    zarr v3: ``zarr.json``'s ``attributes``; v2: ``.zattrs``. ``root`` is a local folder, a zip
    file or a URL (read with ``storage_options``).

    Raises:
        ValueError: a metadata file that is not a UTF-8 JSON object, or attributes that are not
            an object; naming the file or URL.
        OSError: the store cannot be read (naming the URL).
    """
    prefix = join_key(key, "")
    prefix = f"{prefix}/" if prefix else ""
    v3_key = f"{prefix}zarr.json"
    metadata = read_json_in_store(root, v3_key, ("node_type", "attributes"), storage_options)
    if metadata is not None:
        if metadata.get("node_type") != "group":
            return None
        attributes = metadata.get("attributes", {})
        if not isinstance(attributes, dict):
            raise ValueError(f"{describe_key(root, v3_key)!r}: 'attributes' is not a JSON object")
        return attributes, describe_key(root, v3_key)
    if key_exists(root, f"{prefix}.zarray", storage_options):
        return None
    v2_key = f"{prefix}.zattrs"
    attributes = read_json_in_store(root, v2_key, None, storage_options)
    if attributes is None:
        return None
    return attributes, describe_key(root, v2_key)


def _multiscales(
    root: str, key: str, storage_options: Mapping[str, Any] | None = None
) -> tuple[list[dict[str, Any]], str | None, str] | None:
    """The checked ``multiscales`` of the group at ``key``, their NGFF version (``None`` when
    not recorded) and the metadata file; ``None`` when the group is not an OME-Zarr image."""
    found = group_attributes(root, key, storage_options)
    if found is None:
        return None
    attributes, file = found
    ome = attributes.get("ome")
    version = None
    if isinstance(ome, dict) and "multiscales" in ome:  # NGFF 0.5
        multiscales, version = ome["multiscales"], ome.get("version")
    elif "multiscales" in attributes:  # NGFF 0.4 and earlier
        multiscales = attributes["multiscales"]
    else:
        return None
    if not isinstance(multiscales, list) or not multiscales:
        raise ValueError(f"{file!r}: 'multiscales' must be a non-empty list, got {multiscales!r}")
    for i, multiscale in enumerate(multiscales):
        where = f"{file!r}: multiscales[{i}]"
        if not isinstance(multiscale, dict):
            raise ValueError(f"{where} is not a JSON object")
        datasets = multiscale.get("datasets")
        if not isinstance(datasets, list) or not datasets:
            raise ValueError(f"{where} needs a non-empty list of 'datasets', got {datasets!r}")
        for j, dataset in enumerate(datasets):
            if not isinstance(dataset, dict) or not isinstance(dataset.get("path"), str):
                raise ValueError(f"{where}.datasets[{j}] needs a 'path' string, got {dataset!r}")
    if version is None:
        version = multiscales[0].get("version")
    return multiscales, None if version is None else str(version), file


def _dataset_paths(multiscale: dict[str, Any]) -> list[str]:
    return [dataset["path"].strip("/") for dataset in multiscale["datasets"]]


def _join(group: str, path: str) -> str:
    return f"{group}/{path}" if group else path


def select_full_resolution(container: Any, key: str) -> tuple[str, Any] | None:
    """The full-resolution level of the OME-Zarr image at ``key`` of ``container``: its key
    in the container and the opened array; ``None`` when ``key`` is no image group (or the
    container is not a zarr store).

    The full-resolution level is the first dataset of the first multiscale.

    Raises:
        ValueError: the image's metadata are malformed, or its first dataset is missing or not
            an array; naming the metadata file.
    """
    if not isinstance(container, NativeContainer) or container.format != "zarr":
        return None
    found = _multiscales(
        container.path, join_key(container.prefix, key), container.storage_options
    )
    if found is None:
        return None
    multiscales, _, file = found
    level = _join(key, _dataset_paths(multiscales[0])[0])
    try:
        array = container[level]
    except KeyError:
        array = None
    if array is None or not is_array(array):
        raise ValueError(
            f"the OME-Zarr image {file!r} lists {level!r} as its full-resolution level, but "
            "there is no array there"
        )
    return level, array


def level_metadata(
    root: str, key: str, ndim: int, storage_options: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """What ``FileSource.ome`` reports for the array at ``key`` of the zarr store at ``root``:
    ``None`` unless the array is a level of an OME-Zarr image (a dataset of a multiscale of one
    of the groups above it, the nearest first). ``root`` may be a zip file or a URL (read with
    ``storage_options``).

    Returns:
        ``{"axes", "levels", "level", "scale", "translation", "version"}``: the NGFF axis dicts,
        the dataset paths (full resolution first), this level's path, this level's scale and
        translation (one float per axis: the dataset's coordinate transformations followed by
        the multiscale's; translation zeros when there is none) and the NGFF version.

    Raises:
        ValueError: malformed metadata (transformations of the wrong length or kind), naming
            the metadata file.
    """
    parts = [part for part in key.split("/") if part]
    for depth in range(len(parts) - 1, -1, -1):
        group, path = "/".join(parts[:depth]), "/".join(parts[depth:])
        found = _multiscales(root, group, storage_options)
        if found is None:
            continue
        multiscales, version, file = found
        for i, multiscale in enumerate(multiscales):
            paths = _dataset_paths(multiscale)
            if path in paths:
                where = f"{file!r}: multiscales[{i}]"
                dataset = multiscale["datasets"][paths.index(path)]
                scale, translation = _compose(
                    [
                        (dataset.get("coordinateTransformations"), f"{where} dataset {path!r}"),
                        (multiscale.get("coordinateTransformations"), where),
                    ],
                    ndim,
                )
                return {
                    "axes": _axes_of(multiscale.get("axes"), ndim, where),
                    "levels": paths,
                    "level": path,
                    "scale": scale,
                    "translation": translation,
                    "version": version,
                }
    return None


def _axes_of(axes: Any, ndim: int, where: str) -> list[dict[str, Any]]:
    """The NGFF axis dicts (copies); names only for NGFF 0.3's strings; ``tczyx``'s last
    ``ndim`` for the earlier versions, which had no axes."""
    if axes is None:
        return [axis_dict(name) for name in "tczyx"[-ndim:]]
    if not isinstance(axes, list) or len(axes) != ndim:
        raise ValueError(f"{where}: 'axes' must list {ndim} axes (the array's), got {axes!r}")
    return [{"name": axis} if isinstance(axis, str) else dict(axis) for axis in axes]


def _compose(
    transform_lists: list[tuple[Any, str]], ndim: int
) -> tuple[list[float], list[float]]:
    """Scale and translation of the coordinate transformations applied in order (a scale
    multiplies the translation so far, a translation adds to it)."""
    scale, translation = [1.0] * ndim, [0.0] * ndim
    for transforms, where in transform_lists:
        if transforms is None:
            continue
        if not isinstance(transforms, list):
            raise ValueError(f"{where}: 'coordinateTransformations' must be a list")
        for transform in transforms:
            kind = transform.get("type") if isinstance(transform, dict) else None
            if kind == "identity":
                continue
            if kind not in ("scale", "translation"):
                raise ValueError(
                    f"{where}: unsupported coordinate transformation {transform!r} (NGFF "
                    "images have 'scale', 'translation' and 'identity')"
                )
            if kind not in transform:
                raise ValueError(
                    f"{where}: the {kind} transformation {transform!r} has no {kind!r} vector "
                    "(vectors stored in binary files are not supported)"
                )
            vector = transform[kind]
            if (
                not isinstance(vector, list)
                or len(vector) != ndim
                or not all(is_number(v) for v in vector)
            ):
                raise ValueError(
                    f"{where}: the {kind} {vector!r} must hold {ndim} numbers (one per axis)"
                )
            if kind == "scale":
                scale = [s * float(v) for s, v in zip(scale, vector)]
                translation = [t * float(v) for t, v in zip(translation, vector)]
            else:
                translation = [t + float(v) for t, v in zip(translation, vector)]
    return scale, translation


def is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def axis_dict(name: str, unit: str | None = None) -> dict[str, Any]:
    """The NGFF axis dict of an axis called ``name`` (its type from the name; ``unit`` for
    spatial axes)."""
    axis: dict[str, Any] = {"name": name}
    kind = AXIS_TYPES.get(name)
    if kind is not None:
        axis["type"] = kind
    if unit is not None and kind == "space":
        axis["unit"] = unit
    return axis
