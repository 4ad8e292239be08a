"""``write_ome_pyramid``: a source written as an OME-Zarr image pyramid (NGFF 0.5 on zarr v3,
0.4 on zarr v2).

Level ``s0`` is ``bioimage_py.copy`` of the source; every next level is the previous one
``bioimage_py.downsample``d, so every job type of the runner works; the group metadata are
written last. Reading OME-Zarr images is ``bioimage_py.io.ome``'s. The store may be a local
folder or an ``s3://`` / ``gs://`` URL: its metadata are then read and written through
``_core.store_get`` / ``store_put``.
"""
from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bioimage_py import _core
from bioimage_py.copy import copy
from bioimage_py.downsample import downsample
from bioimage_py.io.files import as_path_str, infer_extension
from bioimage_py.io.location import (
    check_location,
    check_writable_location,
    describe_key,
    is_local,
    normalize_location,
    split_storage_options,
    store_kwargs,
)
from bioimage_py.io.metadata_json import key_exists, read_json_in_store
from bioimage_py.io.ome import NGFF_VERSIONS, axis_dict, is_number
from bioimage_py.io.registry import format_for_extension
from bioimage_py.sources.base import Source
from bioimage_py.sources.dispatch import as_source
from bioimage_py.sources.file_source import FileSource, create_array, open_source
from bioimage_py.wrapper.generic import RoiSource
from bioimage_py.wrapper.resize import ResizedSource

__all__ = ["write_ome_pyramid"]

# Default axis names by dimensionality (NGFF allows 2 to 5 axes).
_DEFAULT_AXES = {2: "yx", 3: "zyx", 4: "czyx", 5: "tczyx"}
# A pyramid with ``levels=None`` stops once a level fits one chunk, and never goes beyond this.
_MAX_LEVELS = 32


# --- the pyramid ----------------------------------------------------------------------------------


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
    endpoint_url: str | None = None,
    region: str | None = None,
    anonymous: bool | None = None,
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
            without extension, or an ``s3://`` / ``gs://`` URL).
        levels: the number of levels, full resolution included; ``None``: downsample until a
            level fits one chunk along every downsampled axis.
        scale_factor: an int for every spatial axis, or one int per axis (or per spatial
            axis); channel, time and custom axes are never downsampled (factor 1).
        axes: the axis names (``"czyx"``, ``["c", "z", "y", "x"]``) or NGFF axis dicts
            (``name``, ``type``, ``unit``); default: the source's axes when it is a level of
            an OME-Zarr image (``source.ome``), else ``yx``, ``zyx``, ``czyx``, ``tczyx`` by
            dimensionality. Types come from the names: ``x``, ``y``, ``z`` space, ``c``
            channel, ``t`` time, others custom.
        voxel_size: the full-resolution spacing: one number for every spatial axis, or one
            per axis (or per spatial axis); default: the source's OME scale, else 1.
        unit: the unit of the spatial axes (an NGFF unit such as ``"micrometer"``), unless
            ``axes`` gives units (it replaces those of axes taken from the source).
        translation: the physical position of the first voxel, one number per axis (or per
            spatial axis); written as every level's translation. Default: the source's OME
            translation when it is not zero, else none written. (So an OME-Zarr level, e.g.
            one opened with ``open_source``, is rewritten in its own physical coordinates;
            a view of it such as a ``RoiSource`` has no ``ome`` and gets the plain defaults.)
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
        endpoint_url, region, anonymous: a URL's options, as for ``create_array`` (recorded in
            the specs of the levels).

    Returns:
        The full-resolution level, opened read-only (its ``ome`` describes the pyramid).

    Raises:
        ValueError: fewer than 2 or more than 5 axes, an empty axis, axes that break NGFF's
            rules, factors, voxel sizes or translations of the wrong length or value, a path
            of another format, ``levels < 1``, existing levels without ``overwrite``; URL
            options for a local path; an HTTP(S) URL or a zip file (``ReadOnlyLocationError``);
            the errors of ``create_array``, ``copy`` and ``downsample``.
        TypeError: a ``scale_factor`` or ``levels`` that is not an integer.
    """
    image = as_source(source)
    shape = tuple(int(n) for n in image.shape)
    ndim = len(shape)
    if ndim not in _DEFAULT_AXES:
        raise ValueError(f"an OME-Zarr image has 2 to 5 axes; the source has shape {shape}")
    if 0 in shape:
        raise ValueError(f"cannot write an empty image (shape {shape}) as an OME-Zarr pyramid")
    if zarr_format not in NGFF_VERSIONS:
        raise ValueError(f"zarr_format must be 3 (NGFF 0.5) or 2 (NGFF 0.4), got {zarr_format!r}")
    root = as_path_str(path)
    options = {
        name: value
        for name, value in (("endpoint_url", endpoint_url), ("region", region),
                            ("anonymous", anonymous))
        if value is not None
    }
    storage_options, _ = split_storage_options(root, options)
    if is_local(root):
        root = os.path.abspath(root)
    else:
        root = normalize_location(root)
        check_location(root)
        check_writable_location(root, "write an OME-Zarr image to")
    _check_zarr_path(root)
    _check_store_format(root, zarr_format, storage_options)
    axes, voxel_size, translation = _source_ome_defaults(
        image, axes, voxel_size, translation, unit
    )
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
            format="zarr", zarr_format=zarr_format, shards=level_shards,
            compression=compression, compression_level=compression_level,
            overwrite=overwrite, **options,
        )
        _set_array_metadata(
            root, key, zarr_format, [axis["name"] for axis in axis_dicts], storage_options
        )
        # Reopened: the array's metadata changed on disk (the v2 chunk key separator).
        level = open_source(root, key, format="zarr", mode="r+", **options)
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
    _write_multiscales(root, zarr_format, multiscale, storage_options)
    return open_source(root, "s0", format="zarr", **options)


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


def _check_store_format(
    root: str, zarr_format: int, storage_options: dict[str, Any] | None
) -> None:
    """Refuse, before anything is written, a store whose root is a zarr group of the other
    format: levels and group metadata of two formats side by side make neither a valid image
    (and ``overwrite`` replaces levels, not the store)."""
    v3_root = read_json_in_store(root, "zarr.json", ("zarr_format",), storage_options)
    found = 3 if v3_root is not None else (
        2 if key_exists(root, ".zgroup", storage_options) else None
    )
    if found is not None and found != zarr_format:
        raise ValueError(
            f"{root!r} is a zarr v{found} store: write NGFF {NGFF_VERSIONS[found]} there with "
            f"zarr_format={found}, or write NGFF {NGFF_VERSIONS[zarr_format]} to a new path"
        )


def _source_ome_defaults(
    image: Source, axes: Any, voxel_size: Any, translation: Any, unit: str | None
) -> tuple[Any, Any, Any]:
    """``axes``, ``voxel_size`` and ``translation``, each ``None`` one replaced by the
    source's own when the source is a level of an OME-Zarr image (axes without a type get the
    one of their name; a ``unit`` given replaces the units of the source's spatial axes; a
    zero translation stays unwritten)."""
    if axes is not None and voxel_size is not None and translation is not None:
        return axes, voxel_size, translation
    try:
        ome = image.ome
    except ValueError as err:  # the source's own metadata are malformed
        raise ValueError(
            f"{err} (the source's OME-Zarr metadata; pass axes, voxel_size and translation "
            "to write the pyramid without them)"
        ) from err
    if ome is None:
        return axes, voxel_size, translation
    if axes is None:
        axes = [{**axis_dict(axis["name"]), **axis} for axis in ome["axes"]]
        if unit is not None:
            axes = [{**axis, "unit": unit} if axis.get("type") == "space" else axis
                    for axis in axes]
    if voxel_size is None:
        voxel_size = list(ome["scale"])
    if translation is None and any(ome["translation"]):
        translation = list(ome["translation"])
    return axes, voxel_size, translation


def _check_zarr_path(root: str) -> None:
    fmt = format_for_extension(infer_extension(root))
    if fmt not in (None, "zarr", "folder"):
        raise ValueError(
            f"an OME-Zarr image is a zarr store; {root!r} has the extension of {fmt} files "
            "(use a .zarr path)"
        )


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
            result.append(axis_dict(axis, unit))
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
    if is_number(value):
        entries = [value if is_space else None for is_space in spatial]
    else:
        entries = _per_axis(value, spatial, what)
    result = []
    for entry in entries:
        if entry is None:
            result.append(default)
            continue
        if not is_number(entry) or not math.isfinite(entry) or (positive and entry <= 0):
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


def _read_metadata(
    root: str, key: str, storage_options: dict[str, Any] | None, required: bool = True
) -> dict[str, Any]:
    """The JSON object at ``key`` of the store at ``root`` (a local folder or a URL); ``{}``
    when missing and not ``required``."""
    value = read_json_in_store(root, key, None, storage_options)
    if value is None:
        if required:
            raise FileNotFoundError(f"{describe_key(root, key)!r} is missing")
        return {}
    return value


def _write_metadata(
    root: str, key: str, value: dict[str, Any], storage_options: dict[str, Any] | None
) -> None:
    """Write the JSON object ``value`` at ``key`` of the store at ``root``: an atomic file
    replacement on disk, one whole-object PUT at a URL (readers see the old or the new one)."""
    if is_local(root):
        _write_json(describe_key(root, key), value)
        return
    data = (json.dumps(value, indent=2) + "\n").encode("utf-8")
    _core.store_put(root, key, data, **store_kwargs(storage_options))


def _set_array_metadata(
    root: str, key: str, zarr_format: int, names: list[str],
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Make a new, still empty level array conform to its NGFF version: zarr v3 arrays name
    their dimensions as the axes (NGFF 0.5); zarr v2 chunk keys use ``/`` (NGFF 0.4)."""
    if zarr_format == 3:
        file = f"{key}/zarr.json"
        metadata = _read_metadata(root, file, storage_options)
        metadata["dimension_names"] = names
    else:
        file = f"{key}/.zarray"
        metadata = _read_metadata(root, file, storage_options)
        metadata["dimension_separator"] = "/"
    _write_metadata(root, file, metadata, storage_options)


def _write_multiscales(
    root: str, zarr_format: int, multiscale: dict[str, Any],
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Record ``multiscale`` in the root group's attributes, keeping the other attributes."""
    if zarr_format == 3:
        metadata = _read_metadata(root, "zarr.json", storage_options)
        attributes = dict(metadata.get("attributes") or {})
        ome = dict(attributes.get("ome") or {})
        ome.update({"version": NGFF_VERSIONS[3], "multiscales": [multiscale]})
        attributes["ome"] = ome
        metadata["attributes"] = attributes
        _write_metadata(root, "zarr.json", metadata, storage_options)
    else:
        attributes = _read_metadata(root, ".zattrs", storage_options, required=False)
        attributes["multiscales"] = [{**multiscale, "version": NGFF_VERSIONS[2]}]
        _write_metadata(root, ".zattrs", attributes, storage_options)
