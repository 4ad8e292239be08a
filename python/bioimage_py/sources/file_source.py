"""``FileSource``, ``open_source`` and ``create_array``: a source opened from (or created in) a file,
knowing how to reopen itself."""
from __future__ import annotations

import copy
import os
from typing import Any

import numpy as np

from bioimage_py import io
from bioimage_py.io.create import create_native_array
from bioimage_py.io.location import is_url, normalize_location, split_storage_options
from bioimage_py.io.ome import level_metadata
from bioimage_py.sources.array_source import ArraySource
from bioimage_py.sources.base import SourceSpec

__all__ = ["FileSource", "create_array", "open_source"]

# Modes that create or truncate: a worker reopening the file must not wipe what was written.
_CREATING_MODES = frozenset({"w", "w-", "x"})


class FileSource(ArraySource):
    """An ``ArraySource`` over an array opened from a file, recording how to reopen it.

    Usually made by ``open_source`` (or ``as_source`` for an h5py dataset).

    Args:
        array: the opened array object (zarr array, h5py or z5py dataset, reader object).
        path: the file or container on disk, or its URL.
        internal_path: the array's key inside the file.
        format: the format name of the ``bioimage_py.io`` registry (``"zarr"``, ``"hdf5"``, ...).
        mode: the mode the file was opened with.
        open_kwargs: further keyword arguments ``open_source`` passed to the opener.
        writable: whether assignments are allowed; writing otherwise raises ``TypeError``.
    """

    def __init__(
        self,
        array: Any,
        *,
        path: str | os.PathLike[str],
        internal_path: str | None,
        format: str,
        mode: str = "r",
        open_kwargs: dict[str, Any] | None = None,
        writable: bool = False,
    ) -> None:
        super().__init__(array)
        self._path = os.fspath(path)
        self._internal_path = internal_path
        self._format = format
        self._mode = mode
        self._open_kwargs = dict(open_kwargs or {})
        self._writable = bool(writable)
        self._ome: dict[str, Any] | None | bool = False  # False: not read yet

    def chunk_exists(self, chunk: tuple[int, ...]) -> bool:
        """Whether the chunk at grid position ``chunk`` (in units of ``chunks``) is stored.

        Args:
            chunk: One integer per axis (Python or numpy integers; not bools, floats or
                strings), as for indexing.

        Raises:
            TypeError: ``chunk`` is not a sequence of integers; or the underlying array cannot
                tell (only native zarr, N5 and HDF5 arrays can).
            ValueError: ``chunk`` has the wrong length or lies outside the chunk grid (naming
                the array).
        """
        chunk_exists = getattr(self._array, "chunk_exists", None)
        if chunk_exists is None:
            raise TypeError(f"{type(self._array).__name__} arrays cannot tell which chunks exist")
        coords = _chunk_coordinates(chunk)
        where = f"{self.path!r}" + (f" [{self.internal_path!r}]" if self.internal_path else "")
        if len(coords) != self.ndim:
            raise ValueError(
                f"chunk {coords} has {len(coords)} coordinates, but the array {where} has "
                f"{self.ndim} axes"
            )
        grid = tuple(-(-n // c) for n, c in zip(self.shape, self.chunks or self.shape))
        if any(not 0 <= c < g for c, g in zip(coords, grid)):
            raise ValueError(f"chunk {coords} is outside the chunk grid {grid} of {where}")
        return chunk_exists(coords)

    @property
    def ome(self) -> dict[str, Any] | None:
        """The OME-Zarr metadata when the array is a level of an OME-Zarr image, else ``None``.

        A new dict: ``"axes"`` (the NGFF axis dicts: ``name``, ``type``, ``unit``),
        ``"levels"`` (the dataset paths, full resolution first), ``"level"`` (this array's),
        ``"scale"`` and ``"translation"`` (one float per axis for this level: its coordinate
        transformations composed with the multiscale's; zeros when there is no translation),
        ``"version"`` (the NGFF version). Read from the store on first access.

        Raises:
            ValueError: malformed OME metadata, naming the file.
        """
        if self._ome is False:
            found = None
            if self._format == "zarr":
                storage_options, _ = split_storage_options(self._path, self._open_kwargs)
                found = level_metadata(
                    self._path, self._internal_path or "", self.ndim, storage_options
                )
            self._ome = found
        return copy.deepcopy(self._ome)

    @property
    def path(self) -> str:
        """The file or container the array was opened from (a local path or a URL)."""
        return self._path

    @property
    def internal_path(self) -> str | None:
        """The array's key inside the file."""
        return self._internal_path

    @property
    def format(self) -> str:
        """The format name (see ``bioimage_py.io.supported_formats()``)."""
        return self._format

    @property
    def mode(self) -> str:
        """The mode the file was opened with."""
        return self._mode

    @property
    def open_kwargs(self) -> dict[str, Any]:
        """Further keyword arguments of the opener (a copy)."""
        return dict(self._open_kwargs)

    @property
    def writable(self) -> bool:
        return self._writable

    def to_spec(self) -> SourceSpec:
        """Kind ``"file"``: ``params = {"format", "mode", **open_kwargs}``.

        ``open_kwargs`` hold a URL's options (``endpoint_url``, ``region``, ``anonymous``),
        never credentials, which the worker reopening the spec takes from its environment.

        A file opened with a creating mode (``"w"``, ``"w-"``, ``"x"``) is recorded as ``"r+"``,
        so that reopening it in a worker does not truncate it.
        """
        mode = "r+" if self._mode in _CREATING_MODES else self._mode
        return SourceSpec(
            kind="file",
            path=self._path,
            internal_path=self._internal_path,
            params={"format": self._format, "mode": mode, **self._open_kwargs},
        )

    @staticmethod
    def reopen(spec: SourceSpec) -> FileSource:
        """Open a ``"file"`` spec again with ``open_source`` and the recorded arguments.

        A creating mode (``"w"``, ``"w-"``, ``"x"``; bioimage-py 0.2 recorded modes as given)
        reopens as ``"r+"``: reopening in a worker must never truncate what was written.
        """
        params = dict(spec.params)
        format = params.pop("format", None)
        mode = params.pop("mode", "r")
        if mode in _CREATING_MODES:
            mode = "r+"
        return open_source(spec.path, spec.internal_path, format=format, mode=mode, **params)

    def _repr_fields(self) -> list[str]:
        fields = [f"path={self._path!r}", f"internal_path={self._internal_path!r}"]
        fields += [f"format={self._format!r}", f"mode={self._mode!r}"]
        return [*fields, *super()._repr_fields()]


def _chunk_coordinates(chunk: Any) -> tuple[int, ...]:
    """``chunk`` as a tuple of Python ints; ``TypeError`` for anything but a sequence of
    integers (bools, floats, strings and ``None`` included, as indexing rejects them)."""
    if isinstance(chunk, (str, bytes)) or not hasattr(chunk, "__len__"):
        raise TypeError(
            f"chunk must be a sequence of integers (one per axis), got {chunk!r}"
        )
    coords = []
    for value in chunk:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(
                f"chunk coordinates must be integers, got {value!r} "
                f"({type(value).__name__}) in {chunk!r}"
            )
        coords.append(int(value))
    return tuple(coords)


def open_source(
    path: str | os.PathLike[str],
    internal_path: str | None = None,
    format: str | None = None,
    mode: str = "r",
    **kwargs: Any,
) -> FileSource:
    """Open an array in a file as a ``FileSource``.

    Args:
        path: the file or container; its extension selects the format unless ``format`` is given.
            A URL of a zarr or N5 container: ``s3://bucket/key`` (AWS or any S3-compatible
            server), ``gs://bucket/key``, ``http(s)://host/path`` (read-only); its format
            comes from the suffix (``.zarr``, ``.n5``) or from the metadata at its root. A zip
            file holding a zarr (``vol.zarr.zip``) opens as a read-only zarr container.
        internal_path: the array inside the file; defaults to the format's natural key and is
            required for containers holding several arrays (and for groups served over HTTP,
            which cannot list their arrays).
        format: a format name of the ``bioimage_py.io`` registry, overriding the extension.
        mode: ``"r"`` (read-only, default), or ``"r+"``, ``"a"``, ``"w"`` for the writable
            formats (zarr, n5, hdf5); HTTP(S) URLs and zip files are read-only.
        **kwargs: passed on to the format's opener and recorded in the spec: for zarr and N5
            ``chunk_cache_bytes``, ``missing_chunks``, and for URLs ``endpoint_url`` (e.g.
            ``"http://localhost:9000"``; an ``http://`` endpoint allows plain HTTP), ``region``,
            ``anonymous`` (unsigned requests). Credentials are never arguments: they come
            from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, the AWS
            config files, ``AWS_ENDPOINT_URL``, ...).

    Raises:
        ValueError: an unknown or unavailable format (listing the supported ones); a missing
            ``internal_path`` for a container of several arrays (listing them); URL options
            for a local path; a write mode on an HTTP(S) URL or a zip file
            (``ReadOnlyLocationError``, also a ``PermissionError``).
        TypeError: an unknown option, or credentials given as arguments.
        FileNotFoundError: no such file, container, bucket or key (naming it).
        PermissionError: access to the URL denied. ConnectionError: the endpoint is
            unreachable (after bounded retries).
    """
    path = os.fspath(path)
    if not is_url(path):  # a local path: absolute, so workers with another cwd find it too
        path = os.path.abspath(path)
    else:
        path = normalize_location(path)
    array, internal_path, format = io.open_array(
        path, internal_path=internal_path, format=format, mode=mode, **kwargs
    )
    return FileSource(
        array,
        path=path,
        internal_path=internal_path,
        format=format,
        mode=mode,
        open_kwargs=kwargs,
        writable=io.is_writable_format(format) and mode != "r",
    )


def create_array(
    path: str | os.PathLike[str],
    internal_path: str = "",
    *,
    shape: tuple[int, ...],
    dtype: Any,
    chunks: tuple[int, ...] | None = None,
    format: str | None = None,
    zarr_format: int = 3,
    shards: tuple[int, ...] | None = None,
    compression: str | None = None,
    compression_level: int | None = None,
    fill_value: int | float | complex = 0,
    overwrite: bool = False,
    **open_kwargs: Any,
) -> FileSource:
    """Create an array in a zarr store, an N5 container or an HDF5 file; a writable source of it.

    The array is bare (no OME-Zarr metadata): an OME-Zarr image pyramid is written with
    ``bioimage_py.write_ome_pyramid`` (which creates each level with this function).

    Args:
        path: the store, container or file (created when missing); the format comes from its
            extension unless ``format`` is given. A URL ``s3://bucket/key`` or ``gs://bucket/key``
            makes a zarr or N5 array there (``http(s)://`` URLs and zip files are read-only).
        internal_path: the array's key inside it (``""``: the root, for zarr and N5).
        shape, dtype: of the array (bool, int8-64, uint8-64, float32/64; float16, complex64
            and complex128 in zarr and HDF5, not N5).
        chunks: the chunk shape (the inner chunk when sharded); default
            ``bioimage_py.io.create.default_chunks(shape)``.
        zarr_format: 2 or 3 (zarr only).
        shards: the shard shape, a multiple of ``chunks`` (zarr v3 only).
        compression: zarr ``"zstd"`` (default), ``"gzip"``, ``"blosc"`` (lz4 + shuffle),
            ``"blosc-<cname>[-shuffle|-bitshuffle|-noshuffle]"``, ``"raw"``; N5 ``"gzip"``
            (default), ``"zstd"``, ``"blosc"``, ``"bzip2"``, ``"xz"``, ``"lz4"``, ``"raw"``;
            HDF5 ``"gzip"`` (default), ``"lzf"``, ``"raw"``.
        compression_level: the codec's level; default per format (zstd 3, gzip 1).
        fill_value: what unwritten chunks read as (zarr and HDF5; N5 always uses 0); a complex
            number for complex arrays.
        overwrite: replace an existing array at ``internal_path``.
        **open_kwargs: recorded like ``open_source``'s (``chunk_cache_bytes``,
            ``missing_chunks``; for URLs ``endpoint_url``, ``region``, ``anonymous``), so
            workers reopen the array the same way. Never credentials (see ``open_source``).

    Returns:
        A writable ``FileSource`` over the new array.

    Raises:
        ValueError: unknown format, dtype or compression; chunks or shards that do not fit;
            an existing array without ``overwrite``; URL options for a local path; a format
            other than zarr or N5 at a URL.
        ReadOnlyLocationError: (a ``PermissionError`` and a ``ValueError``) an HTTP(S) URL or
            a zip file.
        TypeError: an unknown option, or credentials given as arguments.
    """
    created = create_native_array(
        path, internal_path, shape=shape, dtype=dtype, chunks=chunks, format=format,
        zarr_format=zarr_format, shards=shards, compression=compression,
        compression_level=compression_level, fill_value=fill_value, overwrite=overwrite,
        **open_kwargs,
    )
    return FileSource(
        created.array, path=created.path, internal_path=created.internal_path,
        format=created.format, mode="r+", open_kwargs=open_kwargs, writable=True,
    )
