"""``WebKnossosSource`` / ``open_webknossos``: one layer of a WebKnossos dataset as a ``Source``.

The webknossos library reads a layer ``(channel, x, y, z)`` in absolute Mag-1 coordinates, at one
magnification (mag) of an image pyramid. A ``WebKnossosSource`` is a read-only view of a box of a
single-channel layer at one mag, presented as numpy ``(z, y, x)`` with indices local to the box:
``offset`` and ``size`` are Mag-1 XYZ voxels (as everywhere in WebKnossos), ``shape`` is the box
at the opened mag (``size // mag``, reversed).

Where the dataset lives (``dataset_name_or_url``):

* a local dataset folder (a path, or a ``file://`` URL), or a folder in cloud storage
  (``s3://``, ``gs://``, ... as webknossos opens them);
* a dataset on a WebKnossos server: its URL (``https://webknossos.org/datasets/...``), or its
  name together with ``organization_id``;
* an annotation: its URL (``https://webknossos.org/annotations/...``).

A name without ``organization_id`` is taken as a local folder, never sent to a server.

Memory order: webknossos returns Fortran-ordered ``(c, x, y, z)`` buffers; channel 0 of one is a
Fortran-ordered ``(x, y, z)`` array, which is a C-ordered ``(z, y, x)`` array with its axes
reversed. Reads return that buffer as a reversed view, without a copy (any other layout is
reordered by the Rust ``contiguous_transpose``).
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from bioimage_py.sources.base import Source, SourceSpec
from bioimage_py.sources.xyz import xyz_vector, zyx_array

__all__ = ["WebKnossosSource", "open_webknossos"]

_INSTALL_HINT = "reading WebKnossos datasets needs the webknossos library: pip install webknossos"
_HTTP = re.compile(r"^https?://", re.IGNORECASE)
_ANNOTATION_URL = re.compile(r"^https?://.+/annotations/", re.IGNORECASE)

# Where a dataset lives; decides how it is opened.
_LOCAL, _REMOTE, _ANNOTATION = "local", "remote", "annotation"


def _import_webknossos() -> Any:
    try:
        import webknossos
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    return webknossos


def _locate(
    dataset_name_or_url: str | os.PathLike[str], organization_id: str | None
) -> tuple[str, str]:
    """``(where, location)``: how to open the dataset and its location as the spec records it.

    Local paths become absolute, so that worker processes with another working directory find
    the same folder.

    Raises:
        FileNotFoundError: a local dataset folder that does not exist.
        ValueError: ``organization_id`` together with a URL (the URL names the dataset).
    """
    location = os.fspath(dataset_name_or_url)
    if _HTTP.match(location):
        if organization_id is not None:
            raise ValueError(
                f"organization_id={organization_id!r} cannot be combined with the URL "
                f"{location!r}: a URL names the dataset on its own; pass either a URL, or a "
                "dataset name with organization_id"
            )
        return (_ANNOTATION if _ANNOTATION_URL.match(location) else _REMOTE), location
    if "://" in location and not location.startswith("file://"):
        return _LOCAL, location  # a folder in cloud storage (s3://, gs://, ...)
    if organization_id is not None:
        return _REMOTE, location  # a dataset name on the server
    path = os.path.abspath(location.removeprefix("file://"))
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"no WebKnossos dataset folder at {path!r}; for a dataset on a WebKnossos server "
            "pass its URL, or its name together with organization_id"
        )
    return _LOCAL, path


def _open_dataset(wk: Any, where: str, location: str, organization_id: str | None) -> Any:
    """Open the dataset read-only with the webknossos library.

    Errors of a remote open (connection, HTTP, authentication) keep their type and get a note
    naming what was being opened.
    """
    if where == _LOCAL:
        return wk.Dataset.open(location, read_only=True)
    try:
        return _open_remote(wk, where, location, organization_id)
    except Exception as err:
        what = "annotation" if where == _ANNOTATION else "dataset"
        org = "" if organization_id is None else f" of the organization {organization_id!r}"
        err.add_note(f"while opening the WebKnossos {what} {location!r}{org}")
        raise


def _open_remote(wk: Any, where: str, location: str, organization_id: str | None) -> Any:
    """Open a dataset or annotation on a WebKnossos server (the network entry point)."""
    remote = getattr(wk, "RemoteDataset", None)
    if where == _ANNOTATION:
        if remote is None:  # webknossos < 3
            return wk.Annotation.open_as_remote_dataset(location)
        return remote.open(annotation_id_or_url=location, read_only=True)
    if remote is None:  # webknossos < 3
        return wk.Dataset.open_remote(location, organization_id)
    return remote.open(location, organization_id=organization_id, read_only=True)


def _select_layer(dataset: Any, layer_name: str, where: str) -> Any:
    """The layer ``layer_name`` of ``dataset``; ``""`` selects the only layer.

    Raises:
        ValueError: an unknown layer name, or ``""`` for a dataset of several (or no) layers;
            the message lists the layers.
    """
    layers = dataset.layers
    names = ", ".join(repr(name) for name in layers) or "none"
    if not layer_name:
        if len(layers) == 1:
            return next(iter(layers.values()))
        raise ValueError(
            f"{where} has {len(layers)} layers, pass layer_name to pick one; layers: {names}"
        )
    if layer_name not in layers:
        raise ValueError(f"{where} has no layer {layer_name!r}; layers: {names}")
    return layers[layer_name]


class WebKnossosSource(Source):
    """A read-only ``(z, y, x)`` view of one single-channel layer of a WebKnossos dataset.

    Args:
        dataset_name_or_url: a local dataset folder, a dataset URL or name on a WebKnossos
            server, or an annotation URL (see the module docstring).
        organization_id: the organization of a dataset given by name on a server.
        layer_name: the layer; ``""`` picks the dataset's only layer.
        mag: the magnification to read (``1``, ``2``, ``"2-2-1"``, ``[2, 2, 1]``, ...).
        offset: Mag-1 XYZ origin of the view; default the start of the layer's data bounding box
            (rounded down to a multiple of ``mag``).
        size: Mag-1 XYZ extent of the view; default up to the end of the layer's data bounding
            box (rounded up to a multiple of ``mag``). Views may reach beyond the data bounding
            box; webknossos reads zeros there.

    Raises:
        ImportError: the webknossos library is not installed.
        FileNotFoundError: no dataset folder at a local path.
        ValueError: an unknown layer (the message lists the layers), a multi-channel layer (only
            single-channel layers), a layer with axes other than x, y, z, a mag the layer lacks
            (listing its mags), or an ``offset``/``size`` that is not three non-negative
            integers divisible by ``mag``.
    """

    def __init__(
        self,
        dataset_name_or_url: str | os.PathLike[str],
        organization_id: str | None = None,
        layer_name: str = "",
        mag: int | str | Sequence[int] = 1,
        offset: Sequence[int] | None = None,
        size: Sequence[int] | None = None,
    ) -> None:
        wk = _import_webknossos()
        where_kind, location = _locate(dataset_name_or_url, organization_id)
        self._location = location
        self._organization_id = organization_id
        dataset = _open_dataset(wk, where_kind, location, organization_id)
        layer = _select_layer(dataset, layer_name, f"the WebKnossos dataset {location!r}")
        self._layer_name = str(layer.name)
        where = f"layer {self._layer_name!r} of the WebKnossos dataset {location!r}"
        if int(layer.num_channels) != 1:
            raise ValueError(
                f"WebKnossosSource supports single-channel layers only; {where} has "
                f"{layer.num_channels} channels"
            )
        bbox = layer.bounding_box
        axes = [axis for axis in getattr(bbox, "axes", ("x", "y", "z")) if axis != "c"]
        if sorted(axes) != ["x", "y", "z"]:
            raise ValueError(
                f"WebKnossosSource reads 3D (x, y, z) layers only; {where} has axes {axes}"
            )

        self._mag = wk.Mag(mag)
        self._mag_xyz = tuple(int(m) for m in self._mag.to_list())
        mag_view = layer.mags.get(self._mag)
        if mag_view is None:
            available = ", ".join(m.to_layer_name() for m in sorted(layer.mags)) or "none"
            raise ValueError(
                f"{where} has no mag {self._mag.to_layer_name()}; its mags: {available}"
            )
        self._mag_view = mag_view
        where = f"{where} at mag {self._mag.to_layer_name()}"

        # The data bounding box in Mag 1, grown to whole voxels of the mag.
        data_begin = xyz_vector(bbox.topleft_xyz, "topleft", where)
        data_end = tuple(b + n for b, n in zip(data_begin, xyz_vector(bbox.size_xyz, "size", where)))
        mag_xyz = self._mag_xyz
        default_begin = tuple(b - b % m for b, m in zip(data_begin, mag_xyz))
        default_end = tuple(-(-e // m) * m for e, m in zip(data_end, mag_xyz))
        self._offset = default_begin if offset is None else xyz_vector(offset, "offset", where)
        if size is None:
            self._size = tuple(max(e - o, 0) for e, o in zip(default_end, self._offset))
        else:
            self._size = xyz_vector(size, "size", where)
        for name, value in (("offset", self._offset), ("size", self._size)):
            if any(v < 0 for v in value):
                raise ValueError(f"{name} must not be negative, got {list(value)} for {where}")
            if any(v % m for v, m in zip(value, mag_xyz)):
                raise ValueError(
                    f"{name} {list(value)} (Mag-1 XYZ) is not divisible by the mag "
                    f"{list(mag_xyz)} of {where}"
                )

        dtype = getattr(layer, "dtype", None)  # webknossos < 2: dtype_per_channel only
        self._dtype = np.dtype(layer.dtype_per_channel if dtype is None else dtype)
        info = mag_view.info
        self._chunks = tuple(int(c) for c in reversed(info.chunk_shape.to_list()))
        shard_shape = getattr(info, "shard_shape", None)  # absent in older webknossos versions
        shards = None
        if shard_shape is not None:
            shards = tuple(int(c) for c in reversed(shard_shape.to_list()))
        self._shards = shards if shards != self._chunks else None
        self._static_shape = tuple(n // m for n, m in zip(reversed(self._size), reversed(mag_xyz)))
        self._where = where

    # --- metadata -------------------------------------------------------------------------------

    @property
    def mag_view(self) -> Any:
        """The webknossos ``MagView`` the source reads from."""
        return self._mag_view

    @property
    def layer_name(self) -> str:
        """The name of the layer (also when it was picked as the only one)."""
        return self._layer_name

    @property
    def mag(self) -> tuple[int, int, int]:
        """The opened magnification as XYZ factors."""
        return self._mag_xyz  # type: ignore[return-value]

    @property
    def offset(self) -> tuple[int, int, int]:
        """The Mag-1 XYZ origin of the view."""
        return self._offset  # type: ignore[return-value]

    @property
    def view_size(self) -> tuple[int, int, int]:
        """The Mag-1 XYZ extent of the view."""
        return self._size  # type: ignore[return-value]

    @property
    def shape(self) -> tuple[int, ...]:
        """The view's extent at the opened mag, in ``(z, y, x)`` order."""
        return self._static_shape  # type: ignore[return-value]

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def chunks(self) -> tuple[int, ...]:
        """The chunk shape of the opened mag, in ``(z, y, x)`` order."""
        return self._chunks

    @property
    def shards(self) -> tuple[int, ...] | None:
        """The shard shape of the opened mag in ``(z, y, x)`` order, if it has bigger shards."""
        return self._shards

    @property
    def writable(self) -> bool:
        """Always ``False``: write WebKnossos layers with the webknossos library."""
        return False

    # --- reading --------------------------------------------------------------------------------

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        shape = tuple(s.stop - s.start for s in roi)
        if 0 in shape:  # webknossos refuses empty reads
            return np.empty(shape, dtype=self._dtype)
        # Local (z, y, x) voxels of the mag -> absolute Mag-1 XYZ box.
        begin = [o + s.start * m for o, s, m in zip(self._offset, reversed(roi), self._mag_xyz)]
        size = [(s.stop - s.start) * m for s, m in zip(reversed(roi), self._mag_xyz)]
        data = np.asarray(self._mag_view.read(absolute_offset=begin, size=size))
        expected = (1, *reversed(shape))
        if data.shape != expected:
            raise RuntimeError(
                f"webknossos returned an array of shape {data.shape} instead of {expected} "
                f"(c, x, y, z) reading offset {begin} size {size} (Mag-1 XYZ) of {self._where}"
            )
        return zyx_array(data[0])

    def __setitem__(self, index: Any, value: Any) -> None:
        """Always raises: the source is read-only."""
        raise TypeError(
            f"WebKnossosSource is read-only: cannot write to {self._where}; write WebKnossos "
            "layers with the webknossos library (MagView.write)"
        )

    # --- reopening ------------------------------------------------------------------------------

    def to_spec(self) -> SourceSpec:
        """Kind ``"webknossos"``: ``params`` holds every constructor argument (the layer by its
        name, ``mag`` as an int or an XYZ list, ``offset``/``size`` as Mag-1 XYZ lists);
        ``path`` repeats the dataset location for readability."""
        mag: int | list[int] = (
            self._mag_xyz[0] if len(set(self._mag_xyz)) == 1 else list(self._mag_xyz)
        )
        params = {
            "dataset_name_or_url": self._location,
            "organization_id": self._organization_id,
            "layer_name": self._layer_name,
            "mag": mag,
            "offset": list(self._offset),
            "size": list(self._size),
        }
        return SourceSpec(kind="webknossos", path=self._location, params=params)

    @staticmethod
    def reopen(spec: SourceSpec) -> WebKnossosSource:
        """Open a ``"webknossos"`` spec again.

        Raises:
            ValueError: a spec of another kind.
        """
        if spec.kind != "webknossos":
            raise ValueError(f"WebKnossosSource.reopen needs a 'webknossos' spec, got {spec!r}")
        params = dict(spec.params)
        params.setdefault("dataset_name_or_url", spec.path)
        return WebKnossosSource(**params)

    def _repr_fields(self) -> list[str]:
        fields = [f"dataset={self._location!r}", f"layer={self._layer_name!r}"]
        fields += [f"mag={self._mag.to_layer_name()}", f"offset={list(self._offset)}"]
        fields.append(f"size={list(self._size)}")
        return [*fields, *super()._repr_fields()]


def open_webknossos(
    dataset_name_or_url: str | os.PathLike[str],
    organization_id: str | None = None,
    layer_name: str = "",
    mag: int | str | Sequence[int] = 1,
    offset: Sequence[int] | None = None,
    size: Sequence[int] | None = None,
) -> WebKnossosSource:
    """Open one layer of a WebKnossos dataset as a read-only ``(z, y, x)`` source.

    Takes the same arguments as ``WebKnossosSource`` (see there); ``offset`` and ``size`` are
    Mag-1 XYZ voxels, ``shape`` is the view at ``mag``.
    """
    return WebKnossosSource(
        dataset_name_or_url, organization_id=organization_id, layer_name=layer_name, mag=mag,
        offset=offset, size=size,
    )
