"""``CloudVolumeSource`` / ``open_cloudvolume``: a neuroglancer-precomputed layer as a ``Source``.

cloud-volume indexes a layer ``(x, y, z, channel)`` in absolute voxel coordinates of one mip
level. A ``CloudVolumeSource`` is a writable view of a box of a single-channel layer presented as
numpy ``(z, y, x)`` with indices local to the box (``offset``, ``size`` in XYZ voxels of the
opened mip), so it indexes like every other ``bioimage_py`` source.

Memory order: cloud-volume returns cutouts as fresh Fortran-ordered ``(x, y, z, c)`` buffers, and
a Fortran-ordered ``(x, y, z)`` array is exactly a C-ordered ``(z, y, x)`` one with its axes
reversed. So a read returns cloud-volume's own buffer as a reversed view, without a copy (any
other layout is reordered by the Rust ``contiguous_transpose``), and a write hands cloud-volume
the reversed view of the C-ordered value: the Fortran ``(x, y, z, 1)`` array its upload wants.
"""
from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from bioimage_py.sources.base import Source, SourceSpec
from bioimage_py.sources.xyz import xyz_vector, zyx_array
from bioimage_py.util import contiguous_transpose

__all__ = ["CloudVolumeSource", "open_cloudvolume"]

_INSTALL_HINT = (
    "reading neuroglancer-precomputed layers needs cloud-volume: pip install cloud-volume"
)

# The CloudVolume arguments that carry credentials: used to open the live handle, never recorded
# (not in specs, pickles or reprs). A reopened handle gets its credentials where cloud-volume
# itself looks when none are passed: its secrets files (``~/.cloudvolume/secrets/``) and the
# environment.
_SECRET_PARAMS = frozenset({"secrets"})

# For a handle passed in directly, mip, fill_missing, bounded, cache and non_aligned_writes are
# always recorded (they decide what a reopened handle reads and writes); these further settings
# only when they differ from cloud-volume's defaults. Credentials (``secrets``) are never recorded.
_OPTIONAL_PARAMS = {
    # CloudVolume argument: how to read its value back from a handle
    "autocrop": lambda vol: vol.autocrop,
    "background_color": lambda vol: vol.background_color,
    "delete_black_uploads": lambda vol: vol.delete_black_uploads,
    "overwrite_partial_chunks": lambda vol: vol.overwrite_partial_chunks,
    "parallel": lambda vol: vol.parallel,
    "cdn_cache": lambda vol: vol.config.cdn_cache,
    "compress": lambda vol: vol.config.compress,
    "compress_level": lambda vol: vol.config.compress_level,
    "green_threads": lambda vol: vol.config.green,
    "codec_threads": lambda vol: vol.config.codec_threads,
    "cache_locking": lambda vol: vol.config.cache_locking,
}


def _import_cloudvolume() -> Any:
    try:
        import cloudvolume
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    return cloudvolume


class CloudVolumeSource(Source):
    """A writable ``(z, y, x)`` view of a single-channel layer opened with cloud-volume.

    Indices are local to the view: ``src[0, 0, 0]`` is the voxel at ``offset`` (XYZ, absolute
    coordinates of the handle's mip). Reads and writes go straight to the layer; a write that
    does not cover whole chunks needs a handle opened with ``non_aligned_writes=True`` (the
    default of ``open_cloudvolume``). A handle is not safe to share across threads; worker
    processes each reopen the source from ``to_spec()`` (pickling does that too). The handle's
    ``mip`` must not be changed while the source uses it.

    Credentials stay with the live handle: ``secrets`` is never recorded (not in ``to_spec()``,
    ``open_params``, pickles or ``repr``), so a copy reopened from the spec, in a worker or by
    unpickling, authenticates the way cloud-volume does by default (its secrets files under
    ``~/.cloudvolume/secrets/`` and the environment).

    Args:
        volume: a CloudVolume handle (``cloudvolume.CloudVolume(...)``); ``.volume`` returns it.
        offset: absolute XYZ origin of the view; default the layer's ``voxel_offset``.
        size: XYZ extent of the view; default the rest of the layer from ``offset`` (the layer's
            ``volume_size`` when ``offset`` is the default).
        open_params: the keyword arguments that reopen the handle with ``open_cloudvolume``
            (a ``secrets`` entry is dropped); default: recovered from the handle (mip,
            fill_missing, bounded, cache, non_aligned_writes, and the other settings it exposes
            that differ from the defaults).

    Raises:
        ValueError: a layer with more than one channel (only single-channel layers); ``offset``
            or ``size`` that are not three integers, a negative size, or (for a bounded handle)
            a view reaching outside the layer bounds.
    """

    def __init__(
        self,
        volume: Any,
        offset: Sequence[int] | None = None,
        size: Sequence[int] | None = None,
        open_params: dict[str, Any] | None = None,
    ) -> None:
        self._volume = volume
        self._cloudpath = str(volume.cloudpath)
        self._mip = int(volume.mip)
        where = f"layer {self._cloudpath!r} at mip {self._mip}"
        channels = int(volume.num_channels)
        if channels != 1:
            raise ValueError(
                f"CloudVolumeSource supports single-channel layers only; {where} has {channels} "
                "channels (open one channel per layer, or read the handle directly)"
            )
        self._layer_begin = xyz_vector(volume.voxel_offset, "voxel_offset", where)
        self._layer_size = xyz_vector(volume.volume_size, "volume_size", where)
        layer_end = tuple(b + n for b, n in zip(self._layer_begin, self._layer_size))
        self._offset = self._layer_begin if offset is None else xyz_vector(offset, "offset", where)
        if size is None:
            self._size = tuple(max(e - o, 0) for e, o in zip(layer_end, self._offset))
        else:
            self._size = xyz_vector(size, "size", where)
        if any(n < 0 for n in self._size):
            raise ValueError(f"size must not be negative, got {list(self._size)} for {where}")
        self._bounded = bool(volume.bounded)
        if self._bounded and not self._inside_layer(self._offset, self._size):
            raise ValueError(
                f"the view at offset {list(self._offset)} with size {list(self._size)} (XYZ) "
                f"reaches outside the bounds of {where}: voxel_offset {list(self._layer_begin)}, "
                f"volume_size {list(self._layer_size)} (open with bounded=False to read outside)"
            )
        self._dtype = np.dtype(volume.dtype)
        self._chunks = tuple(reversed(xyz_vector(volume.chunk_size, "chunk_size", where)))
        self._static_shape = tuple(reversed(self._size))
        self._open_params = (
            _without_secrets(open_params) if open_params is not None else _open_params(volume)
        )

    def _inside_layer(self, begin: Sequence[int], size: Sequence[int]) -> bool:
        """Whether the XYZ box ``[begin, begin + size)`` lies inside the layer bounds."""
        return all(
            lb <= b and b + n <= lb + ln
            for b, n, lb, ln in zip(begin, size, self._layer_begin, self._layer_size)
        )

    # --- metadata -------------------------------------------------------------------------------

    @property
    def volume(self) -> Any:
        """The CloudVolume handle."""
        return self._volume

    @property
    def offset(self) -> tuple[int, int, int]:
        """The absolute XYZ origin of the view (voxels of the handle's mip)."""
        return self._offset  # type: ignore[return-value]

    @property
    def view_size(self) -> tuple[int, int, int]:
        """The XYZ extent of the view (``shape`` reversed)."""
        return self._size  # type: ignore[return-value]

    @property
    def shape(self) -> tuple[int, ...]:
        """The view's extent in ``(z, y, x)`` order."""
        return self._static_shape  # type: ignore[return-value]

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def chunks(self) -> tuple[int, ...]:
        """The layer's chunk size at the opened mip, in ``(z, y, x)`` order."""
        return self._chunks

    # --- reading and writing --------------------------------------------------------------------

    def _slicesxyz_vector(self, roi: tuple[slice, ...]) -> tuple[slice, slice, slice]:
        """The absolute XYZ slices of cloud-volume for the local ZYX region ``roi``."""
        return tuple(  # type: ignore[return-value]
            slice(o + s.start, o + s.stop) for o, s in zip(self._offset, reversed(roi))
        )

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        shape = tuple(s.stop - s.start for s in roi)
        if 0 in shape:  # cloud-volume has no empty cutouts
            return np.empty(shape, dtype=self._dtype)
        from cloudvolume.exceptions import EmptyVolumeException

        slices = self._slicesxyz_vector(roi)
        try:
            cutout = self._volume[slices]
        except EmptyVolumeException as err:
            raise EmptyVolumeException(
                f"{self._cloudpath}: chunk {err} of the region {_show(slices)} (XYZ, mip "
                f"{self._mip}) is missing; open with fill_missing=True to read missing chunks "
                "as 0"
            ) from err
        xyz = np.asarray(cutout)[..., 0]
        if xyz.shape[::-1] != shape:  # e.g. an autocrop handle cropping a view outside the layer
            raise RuntimeError(
                f"cloud-volume returned {xyz.shape} voxels (XYZ) instead of "
                f"{tuple(reversed(shape))} reading {_show(slices)} (mip {self._mip}) of "
                f"{self._cloudpath}"
            )
        return zyx_array(xyz)

    def _setitem(self, roi: tuple[slice, ...], value: np.ndarray) -> None:
        if any(s.stop == s.start for s in roi):
            return
        slices = self._slicesxyz_vector(roi)
        begin = [s.start for s in slices]
        size = [s.stop - s.start for s in slices]
        if not self._inside_layer(begin, size):
            # An unbounded handle would create chunk files outside the layer: refuse.
            raise ValueError(
                f"cannot write the region {_show(slices)} (XYZ, mip {self._mip}) of "
                f"{self._cloudpath}: it reaches outside the layer bounds (voxel_offset "
                f"{list(self._layer_begin)}, volume_size {list(self._layer_size)})"
            )
        self._volume[slices] = _fortranxyz_vector(value)[..., np.newaxis]

    # --- reopening ------------------------------------------------------------------------------

    @property
    def open_params(self) -> dict[str, Any]:
        """The keyword arguments of ``open_cloudvolume`` that reopen the handle (a copy)."""
        return dict(self._open_params)

    def to_spec(self) -> SourceSpec:
        """Kind ``"cloudvolume"``: ``path`` the cloudpath, ``params`` the open parameters plus
        ``offset`` and ``size`` (XYZ lists)."""
        params = {**self._open_params, "offset": list(self._offset), "size": list(self._size)}
        return SourceSpec(kind="cloudvolume", path=self._cloudpath, params=params)

    @staticmethod
    def reopen(spec: SourceSpec) -> CloudVolumeSource:
        """Open a ``"cloudvolume"`` spec again with ``open_cloudvolume``.

        Raises:
            ValueError: a spec of another kind, or one without a path.
        """
        if spec.kind != "cloudvolume" or not spec.path:
            raise ValueError(
                f"CloudVolumeSource.reopen needs a 'cloudvolume' spec with a path, got {spec!r}"
            )
        return open_cloudvolume(spec.path, **spec.params)

    def _repr_fields(self) -> list[str]:
        fields = [f"cloudpath={self._cloudpath!r}", f"mip={self._mip}"]
        fields += [f"offset={list(self._offset)}", f"size={list(self._size)}"]
        return [*fields, *super()._repr_fields()]


def _fortranxyz_vector(value: np.ndarray) -> np.ndarray:
    """The ``(z, y, x)`` value as the Fortran-ordered ``(x, y, z)`` array cloud-volume uploads
    without copying (its raw fast path needs Fortran order), copying only when that helps.

    A C-ordered value is that array already, transposed. A broadcast value (a scalar or a
    smaller array; zero strides) stays a view: cloud-volume copies it chunk by chunk anyway, so
    materializing the whole region would only double the memory. Any other layout is copied once
    to C order (``contiguous_transpose`` with the identity permutation), in Rust.
    """
    if value.flags.c_contiguous or 0 in value.strides:
        return value.T
    return contiguous_transpose(value, (0, 1, 2)).T


def _show(slices: Sequence[slice]) -> str:
    """XYZ slices as ``[x0:x1, y0:y1, z0:z1]`` for messages."""
    return "[" + ", ".join(f"{s.start}:{s.stop}" for s in slices) + "]"


def _without_secrets(params: dict[str, Any]) -> dict[str, Any]:
    """A copy of the open parameters without the credentials (``_SECRET_PARAMS``)."""
    return {name: value for name, value in params.items() if name not in _SECRET_PARAMS}


def _open_params(volume: Any) -> dict[str, Any]:
    """The ``open_cloudvolume`` keyword arguments that reopen ``volume``, as far as it tells."""
    params: dict[str, Any] = {
        "mip": int(volume.mip),
        "fill_missing": bool(volume.fill_missing),
        "bounded": bool(volume.bounded),
        "cache": _cache_param(volume),
        "non_aligned_writes": bool(volume.non_aligned_writes),
    }
    defaults = _cloudvolume_defaults()
    for name, read in _OPTIONAL_PARAMS.items():
        try:
            value = read(volume)
        except AttributeError:  # another cloud-volume version or datasource
            continue
        if name in defaults and value != defaults[name]:
            params[name] = value.item() if isinstance(value, np.generic) else value
    return params


def _cache_param(volume: Any) -> bool | str:
    """The ``cache`` argument that opened ``volume``: ``False``, ``True`` or the cache root.

    cloud-volume keeps only the layer's folder inside the cache root
    (``<root>/<protocol>/<path>/<layer>``), so the root is that folder without this suffix.
    """
    cache = volume.cache
    if not cache.enabled:
        return False
    try:
        from cloudvolume.datasource import get_cache_path
    except ImportError:  # another cloud-volume layout: the default cache is the best guess
        return True
    folder = os.fspath(cache.path)
    cloudpath = str(volume.cloudpath)
    if folder == get_cache_path(True, cloudpath):
        return True
    suffix = os.sep + os.path.relpath(get_cache_path(os.sep, cloudpath), os.sep)
    return folder[: -len(suffix)] if folder.endswith(suffix) else True


def _cloudvolume_defaults() -> dict[str, Any]:
    """cloud-volume's default for each ``CloudVolume(...)`` keyword argument."""
    from cloudvolume import CloudVolume

    signature = inspect.signature(CloudVolume.__new__)
    return {
        name: p.default
        for name, p in signature.parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def _normalize_cloudpath(cloudpath: str | os.PathLike[str]) -> str:
    """A cloudpath that names the same layer from any working directory.

    A plain local path (or a relative ``file://`` one) becomes an absolute ``file://`` path, so
    that worker processes with another working directory reopen the same layer.
    """
    path = os.fspath(cloudpath)
    if "://" not in path:
        return "file://" + os.path.abspath(path)
    if path.startswith("file://") and not path.startswith("file:///"):
        return "file://" + os.path.abspath(path[len("file://"):])
    return path


def open_cloudvolume(
    cloudpath: str | os.PathLike[str],
    mip: int = 0,
    fill_missing: bool = False,
    bounded: bool = True,
    cache: bool | str = False,
    non_aligned_writes: bool = True,
    offset: Sequence[int] | None = None,
    size: Sequence[int] | None = None,
    **kwargs: Any,
) -> CloudVolumeSource:
    """Open a neuroglancer-precomputed layer as a writable ``(z, y, x)`` ``CloudVolumeSource``.

    Progress bars are off (``progress=False`` unless given). Every open parameter but the
    credentials is recorded, so ``to_spec()`` reopens the same view in another process.

    Credentials: ``secrets`` (a dict of keys or tokens, or its JSON text, as
    ``cloudvolume.CloudVolume`` takes it) authenticates this handle only. It is never recorded: not
    in ``to_spec()`` or its JSON, not in ``open_params``, pickles or ``repr``. Anything reopened
    from the spec (a worker process, or the copy made by ``pickle.loads``/``cloudpickle.loads``)
    opens the layer without it, with the credentials cloud-volume finds by itself: its secrets
    files (``~/.cloudvolume/secrets/`` or ``$CLOUD_VOLUME_DIR/secrets/``, and
    ``~/.cloudfiles/secrets/``: ``aws-secret.json``, ``google-secret.json``,
    ``cave-secret.json``, ...) and the environment (``AWS_ACCESS_KEY_ID`` /
    ``AWS_SECRET_ACCESS_KEY``, ``GOOGLE_APPLICATION_CREDENTIALS``). Put the credentials there
    for block-wise runs in other processes.

    Args:
        cloudpath: the layer, e.g. ``"gs://bucket/dataset/layer"`` or ``"file:///data/layer"``
            (a plain local path is taken as ``file://`` and made absolute).
        mip: the resolution level; ``offset`` and ``size`` are voxels of this level.
        fill_missing: read missing chunks as 0 instead of raising ``EmptyVolumeException``.
        bounded: refuse views and regions outside the layer bounds; with ``False`` a view may
            reach outside (reads give the background value there; writes there still raise).
        cache: cloud-volume's local chunk cache: ``False``, ``True`` or a folder.
        non_aligned_writes: allow writes that do not cover whole chunks.
        offset: absolute XYZ origin of the view; default the layer's ``voxel_offset``.
        size: XYZ extent of the view; default the rest of the layer from ``offset``.
        **kwargs: further ``cloudvolume.CloudVolume`` arguments (JSON-able values, so the spec
            survives JSON), recorded in the spec like the rest; ``secrets`` is passed to this
            handle only (see above).

    Raises:
        ImportError: cloud-volume is not installed.
        ValueError: a multi-channel layer; a bad ``offset``/``size`` (see ``CloudVolumeSource``).
    """
    cloudvolume = _import_cloudvolume()
    cloudpath = _normalize_cloudpath(cloudpath)
    kwargs.setdefault("progress", False)
    open_params = {
        "mip": mip,
        "fill_missing": fill_missing,
        "bounded": bounded,
        "cache": os.fspath(cache) if isinstance(cache, os.PathLike) else cache,
        "non_aligned_writes": non_aligned_writes,
        **kwargs,
    }
    volume = cloudvolume.CloudVolume(cloudpath, **open_params)
    # A resolution-vector mip is recorded as the level it selected; the credentials not at all.
    open_params = _without_secrets(open_params)
    open_params["mip"] = int(volume.mip)
    return CloudVolumeSource(volume, offset=offset, size=size, open_params=open_params)
