"""OME-Zarr images: their levels and coordinate transformations, and writing pyramids.

An OME-Zarr image (NGFF 0.4 on zarr v2, NGFF 0.5 on zarr v3) is a zarr group whose attributes
describe a multiscale pyramid: ``multiscales`` in ``.zattrs`` (0.4), ``ome.multiscales`` in
``zarr.json``'s ``attributes`` (0.5). Each multiscale lists its ``axes`` and its ``datasets``
(the levels, full resolution first, each an array at ``path`` relative to the group with its
``coordinateTransformations``), and may hold ``coordinateTransformations`` applied to every level.

Reading (used by ``open_array`` and ``FileSource.ome``): ``select_full_resolution`` picks the
first level of an image group; ``level_metadata`` describes an array that is a level of an image.
The Rust core reads and writes the arrays; the group metadata are JSON files read and written
here. Only local stores are read so far (``group_attributes`` is the one place that touches the
store).

Writing: ``write_ome_pyramid`` copies a source into level ``s0`` and downsamples each level into
the next one (``bioimage_py.copy`` / ``bioimage_py.downsample``, so every job type of the runner
works), then writes the group metadata.
"""
from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bioimage_py.io.files import as_path_str, infer_extension
from bioimage_py.io.hierarchy import is_array
from bioimage_py.io.metadata_json import read_json_object
from bioimage_py.io.native import NativeContainer
from bioimage_py.io.registry import format_for_extension

if TYPE_CHECKING:
    from bioimage_py.sources.base import Source
    from bioimage_py.sources.file_source import FileSource

__all__ = [
    "NGFF_VERSIONS",
    "group_attributes",
    "level_metadata",
    "select_full_resolution",
    "write_ome_pyramid",
]

NGFF_VERSIONS = {2: "0.4", 3: "0.5"}
"""The NGFF version written for each zarr format."""

# Axis names with a known NGFF axis type; other names are custom axes (no type).
_AXIS_TYPES = {"x": "space", "y": "space", "z": "space", "c": "channel", "t": "time"}
# Default axis names by dimensionality (NGFF allows 2 to 5 axes).
_DEFAULT_AXES = {2: "yx", 3: "zyx", 4: "czyx", 5: "tczyx"}
# A pyramid with ``levels=None`` stops once a level fits one chunk, and never goes beyond this.
_MAX_LEVELS = 32


# --- reading ----------------------------------------------------------------------------------


def group_attributes(root: str, key: str) -> tuple[dict[str, Any], str] | None:
    """The user attributes of the zarr group at ``key`` of the store at ``root``, and the file
    they come from; ``None`` when there is no group there (an array, nothing, a remote store).

    zarr v3: ``zarr.json``'s ``attributes``; v2: ``.zattrs``. Only local stores are read.

    Raises:
        ValueError: a metadata file that is not a UTF-8 JSON object, or attributes that are not
            an object; naming the file.
    """
    if "://" in root:
        return None
    folder = os.path.join(root, *[part for part in key.split("/") if part])
    v3_file = os.path.join(folder, "zarr.json")
    metadata = read_json_object(v3_file, members=("node_type", "attributes"))
    if metadata is not None:
        if metadata.get("node_type") != "group":
            return None
        attributes = metadata.get("attributes", {})
        if not isinstance(attributes, dict):
            raise ValueError(f"{v3_file!r}: 'attributes' is not a JSON object")
        return attributes, v3_file
    if os.path.isfile(os.path.join(folder, ".zarray")):
        return None
    v2_file = os.path.join(folder, ".zattrs")
    attributes = read_json_object(v2_file)
    if attributes is None:
        return None
    return attributes, v2_file


def _multiscales(root: str, key: str) -> tuple[list[dict[str, Any]], str | None, str] | None:
    """The checked ``multiscales`` of the group at ``key``, their NGFF version (``None`` when
    not recorded) and the metadata file; ``None`` when the group is not an OME-Zarr image."""
    found = group_attributes(root, key)
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
    found = _multiscales(container.path, key)
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


def level_metadata(root: str, key: str, ndim: int) -> dict[str, Any] | None:
    """What ``FileSource.ome`` reports for the array at ``key`` of the zarr store at ``root``:
    ``None`` unless the array is a level of an OME-Zarr image (a dataset of a multiscale of one
    of the groups above it, the nearest first).

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
        found = _multiscales(root, group)
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
        return [_axis(name) for name in "tczyx"[-ndim:]]
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
                or not all(_is_number(v) for v in vector)
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


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# --- writing ----------------------------------------------------------------------------------


def write_ome_pyramid(
    source: Any,
    path: str | os.PathLike[str],
    *,
    levels: int | None = None,
    scale_factor: int | Sequence[int] = 2,
    axes: str | Sequence[str | Mapping[str, Any]] | None = None,
    voxel_size: float | Sequence[float] | None = None,
    unit: str | None = None,
    translation: Sequence[float] | None = None,
    zarr_format: int = 3,
    chunks: Sequence[int] | None = None,
    shards: Sequence[int] | None = None,
    compression: str | None = None,
    compression_level: int | None = None,
    order: int = 0,
    anti_aliasing: bool = False,
    name: str | None = None,
    overwrite: bool = False,
    job_type: str = "local",
    job_config: Any = None,
    num_workers: int = 1,
) -> FileSource:
    """Write ``source`` as an OME-Zarr image pyramid (NGFF 0.5 on zarr v3, 0.4 on zarr v2).

    Level ``s0`` is a copy of ``source``; level ``s<k+1>`` is level ``s<k>`` downsampled by
    ``scale_factor`` along the spatial axes (``bioimage_py.downsample``: corner-aligned
    sampling, so every level starts at the same physical point and only its scale changes).
    Each level's scale is ``voxel_size * s0_size / level_size`` per axis, the exact spacing
    of its samples (``scale_factor ** k`` when the sizes divide). The group metadata are
    written last, so readers never see an image whose levels are incomplete.

    Args:
        source: the 2D to 5D image (any ``SourceLike``), axes in NGFF order (``t``, ``c`` or
            a custom axis first, the 2 or 3 spatial axes last).
        path: the zarr store to write (created when missing; a ``.zarr`` folder or a folder
            without extension).
        levels: the number of levels, full resolution included; ``None``: downsample until a
            level fits one chunk along every downsampled axis.
        scale_factor: an int for every spatial axis, or one int per axis (or per spatial
            axis); channel, time and custom axes are never downsampled (factor 1).
        axes: the axis names (``"czyx"``, ``["c", "z", "y", "x"]``) or NGFF axis dicts
            (``name``, ``type``, ``unit``); default ``yx``, ``zyx``, ``czyx``, ``tczyx`` by
            dimensionality. Types come from the names: ``x``, ``y``, ``z`` space, ``c``
            channel, ``t`` time, others custom.
        voxel_size: the full-resolution spacing: one number for every spatial axis, or one
            per axis (or per spatial axis); default 1.
        unit: the unit of the spatial axes (an NGFF unit such as ``"micrometer"``), unless
            ``axes`` gives units.
        translation: the physical position of the first voxel, one number per axis (or per
            spatial axis); written as every level's translation. Default: none written.
        zarr_format: 3 (NGFF 0.5, default) or 2 (NGFF 0.4).
        chunks: the chunk shape of ``s0`` (clamped to each level's shape); default 64 per
            spatial axis for volumes, 256 for images, 1 for the other axes.
        shards: the shard shape (zarr v3 only), clamped like ``chunks``.
        compression, compression_level: as for ``create_array``.
        order: the interpolation order of the downsampling, 0 (nearest, for labels) to 5.
        anti_aliasing: smooth before downsampling (for intensity images).
        name: the image's name in the metadata.
        overwrite: replace existing levels (other arrays of the store are left alone).
        job_type, job_config, num_workers: where the blocks run, as for ``copy``.

    Returns:
        The full-resolution level, opened read-only (its ``ome`` describes the pyramid).

    Raises:
        ValueError: fewer than 2 or more than 5 axes, an empty axis, axes that break NGFF's
            rules, factors, voxel sizes or translations of the wrong length or value, a path
            of another format, ``levels < 1``, existing levels without ``overwrite``; the
            errors of ``create_array``, ``copy`` and ``downsample``.
        TypeError: a ``scale_factor`` or ``levels`` that is not an integer.
    """
    # Above the io layer: imported here so that importing bioimage_py.io never needs them.
    from bioimage_py.copy import copy
    from bioimage_py.sources.dispatch import as_source
    from bioimage_py.sources.file_source import create_array, open_source

    image = as_source(source)
    shape = tuple(int(n) for n in image.shape)
    ndim = len(shape)
    if ndim not in _DEFAULT_AXES:
        raise ValueError(f"an OME-Zarr image has 2 to 5 axes; the source has shape {shape}")
    if 0 in shape:
        raise ValueError(f"cannot write an empty image (shape {shape}) as an OME-Zarr pyramid")
    if zarr_format not in NGFF_VERSIONS:
        raise ValueError(f"zarr_format must be 3 (NGFF 0.5) or 2 (NGFF 0.4), got {zarr_format!r}")
    root = os.path.abspath(as_path_str(path))
    _check_zarr_path(root)
    axis_dicts = _axis_dicts(axes, ndim, unit)
    spatial = [axis.get("type") == "space" for axis in axis_dicts]
    factors = _per_axis_ints(scale_factor, spatial, "scale_factor")
    spacing = _per_axis_floats(voxel_size, spatial, "voxel_size", default=1.0, positive=True)
    offset = (
        None
        if translation is None
        else _per_axis_floats(translation, spatial, "translation", default=0.0, positive=False)
    )
    chunk_shape = _default_chunks(shape, spatial) if chunks is None else _shape_arg(chunks, ndim)
    shard_shape = None if shards is None else _shape_arg(shards, ndim)
    if shard_shape is not None and zarr_format != 3:
        raise ValueError("shards are a zarr v3 feature; pass zarr_format=3 to shard the levels")
    shapes = _level_shapes(shape, factors, levels, chunk_shape)
    if len(shapes) > 1:
        _check_resampling(image, shapes[1], order, anti_aliasing)
    run = {"job_type": job_type, "job_config": job_config, "num_workers": num_workers}

    previous: Source | None = None
    for k, level_shape in enumerate(shapes):
        key = f"s{k}"
        level_chunks = tuple(min(c, n) for c, n in zip(chunk_shape, level_shape))
        level_shards = None
        if shard_shape is not None:  # clamped to the level, kept a multiple of its chunks
            level_shards = tuple(
                min(s, -(-n // c) * c) for s, n, c in zip(shard_shape, level_shape, level_chunks)
            )
        create_array(
            root, key, shape=level_shape, dtype=image.dtype, chunks=level_chunks,
            zarr_format=zarr_format, shards=level_shards, compression=compression,
            compression_level=compression_level, overwrite=overwrite,
        )
        _set_array_metadata(root, key, zarr_format, [axis["name"] for axis in axis_dicts])
        # Reopened: the array's metadata changed on disk (the v2 chunk key separator).
        level = open_source(root, key, mode="r+")
        if previous is None:
            copy(image, level, name="ome level s0", **run)
        else:
            _downsample_level(previous, level, factors, order, anti_aliasing, run)
        previous = level

    multiscale = _multiscale(axis_dicts, shapes, spacing, offset, name)
    multiscale["type"] = {0: "nearest", 1: "linear"}.get(order, f"spline order {order}")
    multiscale["metadata"] = {
        "method": "bioimage_py.downsample",
        "kwargs": {"scale_factor": list(factors), "order": order, "anti_aliasing": anti_aliasing},
    }
    _write_multiscales(root, zarr_format, multiscale)
    return open_source(root, "s0")


def _multiscale(
    axes: list[dict[str, Any]], shapes: list[tuple[int, ...]], spacing: list[float],
    offset: list[float] | None, name: str | None,
) -> dict[str, Any]:
    """The multiscale of levels ``s0``, ``s1``, ... of ``shapes``: each level's scale is the
    spacing of its samples, ``spacing * s0_size / level_size``; ``offset`` (if any) is every
    level's translation (corner-aligned sampling keeps the first voxel in place)."""
    datasets = []
    for k, level_shape in enumerate(shapes):
        scale = [v * n0 / n for v, n0, n in zip(spacing, shapes[0], level_shape)]
        transforms: list[dict[str, Any]] = [{"type": "scale", "scale": scale}]
        if offset is not None:
            transforms.append({"type": "translation", "translation": list(offset)})
        datasets.append({"path": f"s{k}", "coordinateTransformations": transforms})
    multiscale: dict[str, Any] = {"axes": axes, "datasets": datasets}
    if name is not None:
        multiscale["name"] = str(name)
    return multiscale


def _check_zarr_path(root: str) -> None:
    fmt = format_for_extension(infer_extension(root))
    if fmt not in (None, "zarr", "folder"):
        raise ValueError(
            f"an OME-Zarr image is a zarr store; {root!r} has the extension of {fmt} files "
            "(use a .zarr path)"
        )


def _axis(name: str, unit: str | None = None) -> dict[str, Any]:
    axis: dict[str, Any] = {"name": name}
    kind = _AXIS_TYPES.get(name)
    if kind is not None:
        axis["type"] = kind
    if unit is not None and kind == "space":
        axis["unit"] = unit
    return axis


def _axis_dicts(
    axes: str | Sequence[str | Mapping[str, Any]] | None, ndim: int, unit: str | None
) -> list[dict[str, Any]]:
    """NGFF axis dicts for ``axes`` (names or dicts), checked against NGFF's rules: unique
    names; 2 or 3 spatial axes, last; at most one time axis, first; at most one channel axis
    and one custom axis."""
    if axes is None:
        axes = _DEFAULT_AXES[ndim]
    if isinstance(axes, str):
        axes = list(axes)
    result = []
    for axis in axes:
        if isinstance(axis, str):
            result.append(_axis(axis, unit))
        elif isinstance(axis, Mapping) and isinstance(axis.get("name"), str):
            entry = dict(axis)
            if unit is not None and entry.get("type") == "space":
                entry.setdefault("unit", unit)
            result.append(entry)
        else:
            raise TypeError(f"axes must be names or NGFF axis dicts with a 'name', got {axis!r}")
    names = [axis["name"] for axis in result]
    if len(result) != ndim:
        raise ValueError(f"axes {names} name {len(result)} axes, but the source has {ndim}")
    if len(set(names)) != ndim:
        raise ValueError(f"axis names must be unique, got {names}")
    kinds = [axis.get("type") for axis in result]
    n_space = kinds.count("space")
    if n_space not in (2, 3) or any(kind != "space" for kind in kinds[ndim - n_space:]):
        raise ValueError(
            f"axes {names} (types {kinds}): an OME-Zarr image has 2 or 3 spatial axes, last"
        )
    others = kinds[: ndim - n_space]
    custom = [kind for kind in others if kind not in ("time", "channel")]
    if others.count("time") > 1 or others.count("channel") > 1 or len(custom) > 1:
        raise ValueError(
            f"axes {names} (types {kinds}): at most one time, one channel and one custom axis"
        )
    if "time" in others and others[0] != "time":
        raise ValueError(f"axes {names}: the time axis must come first")
    return result


def _per_axis(value: Any, spatial: list[bool], what: str) -> list[Any]:
    """``value`` per axis: one entry for every axis, or one for every spatial axis (the others
    ``None``)."""
    entries = list(value)
    if len(entries) == len(spatial):
        return entries
    if len(entries) == sum(spatial):
        it = iter(entries)
        return [next(it) if is_space else None for is_space in spatial]
    raise ValueError(
        f"{what} {value!r} needs one value per axis ({len(spatial)}) or per spatial axis "
        f"({sum(spatial)})"
    )


def _per_axis_ints(value: Any, spatial: list[bool], what: str) -> tuple[int, ...]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        entries: list[Any] = [int(value) if is_space else 1 for is_space in spatial]
    else:
        try:
            entries = _per_axis(value, spatial, what)
        except TypeError:
            raise TypeError(f"{what} must be an int or a sequence of ints, got {value!r}") from None
        entries = [1 if entry is None else entry for entry in entries]
    for entry, is_space in zip(entries, spatial):
        if isinstance(entry, bool) or not isinstance(entry, numbers.Integral):
            raise TypeError(f"{what} must be an int or a sequence of ints, got {value!r}")
        if entry < 1:
            raise ValueError(f"{what} {value!r}: factors must be >= 1")
        if entry != 1 and not is_space:
            raise ValueError(
                f"{what} {value!r}: only spatial axes are downsampled; channel, time and "
                "custom axes need the factor 1"
            )
    return tuple(int(entry) for entry in entries)


def _per_axis_floats(
    value: Any, spatial: list[bool], what: str, *, default: float, positive: bool
) -> list[float]:
    if value is None:
        return [default] * len(spatial)
    if _is_number(value):
        entries = [value if is_space else None for is_space in spatial]
    else:
        entries = _per_axis(value, spatial, what)
    result = []
    for entry in entries:
        if entry is None:
            result.append(default)
            continue
        if not _is_number(entry) or not math.isfinite(entry) or (positive and entry <= 0):
            kind = "positive numbers" if positive else "finite numbers"
            raise ValueError(f"{what} {value!r} must hold {kind}")
        result.append(float(entry))
    return result


def _shape_arg(value: Sequence[int], ndim: int) -> tuple[int, ...]:
    entries = tuple(int(v) for v in value)
    if len(entries) != ndim or any(v < 1 for v in entries):
        raise ValueError(f"{list(value)} must hold {ndim} positive sizes, one per axis")
    return entries


def _default_chunks(shape: tuple[int, ...], spatial: list[bool]) -> tuple[int, ...]:
    edge = 64 if sum(spatial) == 3 else 256
    return tuple(min(n, edge) if is_space else 1 for n, is_space in zip(shape, spatial))


def _level_shapes(
    shape: tuple[int, ...], factors: tuple[int, ...], levels: int | None,
    chunks: tuple[int, ...],
) -> list[tuple[int, ...]]:
    """The shape of every level: each the previous divided by ``factors``, rounded up (as
    ``downsample`` makes it)."""
    if levels is not None:
        if isinstance(levels, bool) or not isinstance(levels, numbers.Integral):
            raise TypeError(f"levels must be an int or None, got {levels!r}")
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
    shapes = [shape]
    while len(shapes) < (_MAX_LEVELS if levels is None else levels):
        last = shapes[-1]
        if levels is None and all(n <= c for n, c, f in zip(last, chunks, factors) if f > 1):
            break
        shapes.append(tuple(-(-n // f) for n, f in zip(last, factors)))
    return shapes


def _check_resampling(
    image: Source, target: tuple[int, ...], order: int, anti_aliasing: bool
) -> None:
    """Raise the errors of the downsampling (an order out of range, a dtype it cannot resample)
    before anything is written."""
    from bioimage_py.wrapper.generic import RoiSource
    from bioimage_py.wrapper.resize import ResizedSource

    leading = max(0, image.ndim - 3)
    first = RoiSource(image, (0,) * leading, squeeze=True) if leading else image
    ResizedSource(first, target[leading:], order=order, anti_aliasing=anti_aliasing)


def _downsample_level(
    previous: Source, output: Source, factors: tuple[int, ...], order: int,
    anti_aliasing: bool, run: dict[str, Any],
) -> None:
    """``previous`` downsampled into ``output``. ``downsample`` resamples 2D and 3D sources, so
    images of 4 or 5 axes are downsampled one leading (time, channel) index at a time; those
    axes have the factor 1."""
    from bioimage_py.downsample import downsample
    from bioimage_py.wrapper.generic import RoiSource

    options = {"order": order, "anti_aliasing": anti_aliasing, **run}
    leading = max(0, previous.ndim - 3)
    if leading == 0:
        downsample(previous, factors, output, **options)
        return
    for index in np.ndindex(*previous.shape[:leading]):
        downsample(
            RoiSource(previous, index, squeeze=True), factors[leading:],
            RoiSource(output, index, squeeze=True), **options,
        )


def _write_json(file: str, value: dict[str, Any]) -> None:
    """Write ``value`` to ``file`` atomically (a reader sees the old or the new file)."""
    temporary = f"{file}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2)
        handle.write("\n")
    os.replace(temporary, file)


def _read_json(file: str) -> dict[str, Any]:
    value = read_json_object(file)
    if value is None:
        raise FileNotFoundError(f"{file!r} is missing")
    return value


def _set_array_metadata(root: str, key: str, zarr_format: int, names: list[str]) -> None:
    """Make a new, still empty level array conform to its NGFF version: zarr v3 arrays name
    their dimensions as the axes (NGFF 0.5); zarr v2 chunk keys use ``/`` (NGFF 0.4)."""
    folder = os.path.join(root, key)
    if zarr_format == 3:
        file = os.path.join(folder, "zarr.json")
        metadata = _read_json(file)
        metadata["dimension_names"] = names
    else:
        file = os.path.join(folder, ".zarray")
        metadata = _read_json(file)
        metadata["dimension_separator"] = "/"
    _write_json(file, metadata)


def _write_multiscales(root: str, zarr_format: int, multiscale: dict[str, Any]) -> None:
    """Record ``multiscale`` in the root group's attributes, keeping the other attributes."""
    if zarr_format == 3:
        file = os.path.join(root, "zarr.json")
        metadata = _read_json(file)
        attributes = dict(metadata.get("attributes") or {})
        ome = dict(attributes.get("ome") or {})
        ome.update({"version": NGFF_VERSIONS[3], "multiscales": [multiscale]})
        attributes["ome"] = ome
        metadata["attributes"] = attributes
        _write_json(file, metadata)
    else:
        file = os.path.join(root, ".zattrs")
        attributes = read_json_object(file) or {}
        attributes["multiscales"] = [{**multiscale, "version": NGFF_VERSIONS[2]}]
        _write_json(file, attributes)
