"""Type stubs and API docs of the Rust extension `bioimage_py._core`.

The extension is the hot path: index normalization, blocking math and native chunk I/O.
Everything here takes and returns plain Python / numpy objects.
"""

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

# --- errors -------------------------------------------------------------------------------------

class IndexOutOfRangeError(IndexError, ValueError):
    """An integer index outside its axis. Both an IndexError (as in numpy) and a ValueError."""

def _panic_for_tests(in_thread_pool: bool) -> None:
    """Panic inside core code (on the calling thread, or in a task of the thread pool): for
    tests of the guard every binding runs core code in.

    Raises:
        RuntimeError: always, naming the operation ("testing the panic guard"). A panic that
            still happens in the core (a bug: no input should cause one) is reported this way,
            never as pyo3's ``PanicException`` (a ``BaseException``).
    """

# --- index normalization ------------------------------------------------------------------------

def normalize_index(
    index: Any, shape: tuple[int, ...]
) -> tuple[tuple[slice, ...], tuple[int, ...], bool]:
    """Normalize a numpy basic index for an array of ``shape``.

    Returns ``(roi, squeeze, scalar)``: one in-bounds ``slice(start, stop)`` per axis (step
    ``None``; empty regions have ``start == stop``), the axes selected by integers (to squeeze
    from reads and re-insert into written values), and whether numpy returns a scalar for this
    index (every axis integer-indexed and no ``...``).

    Raises:
        IndexOutOfRangeError: an integer outside ``[-size, size)``; message contains ``out of range``.
        ValueError: a slice step other than 1 or ``None``; two ellipses.
        TypeError: an entry that is not an int, numpy integer, slice or ``...`` (bools, floats,
            lists, arrays, ``None``, strings); more entries than axes.
    """

def slice_to_start_stop(s: slice, size: int) -> tuple[int, int]:
    """``(start, stop)`` of a step-1 slice on an axis of ``size``, clamped as numpy does."""

def int_to_start_stop(i: int, size: int) -> tuple[int, int]:
    """``(start, start + 1)`` for an integer index on an axis of ``size``; negatives wrap."""

# --- blocking -----------------------------------------------------------------------------------
# Re-exported by `bioimage_py.blocking`. Coordinates are non-negative ints: a negative entry
# raises ValueError, an int beyond 64 bits OverflowError.


class Block:
    """A box ``begin:end`` of an array (half-open per axis), with ``shape = end - begin``.

    Coordinates are lists of ints, not slices: ``bioimage_py.util.to_roi(block)`` gives the
    slices. Immutable, hashable, comparable with ``==`` and picklable.
    """

    def __new__(cls, begin: Sequence[int], end: Sequence[int]) -> Block:
        """Raises ValueError if the lengths differ or ``begin > end`` on an axis."""
    @property
    def begin(self) -> list[int]:
        """First corner (inclusive)."""
    @property
    def end(self) -> list[int]:
        """Last corner (exclusive)."""
    @property
    def shape(self) -> list[int]:
        """Extent per axis, ``end - begin``."""
    @property
    def ndim(self) -> int:
        """Number of axes."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class BlockWithHalo:
    """A block with context: read ``outer_block``, compute, and write the crop
    ``result[to_roi(inner_block_local)]`` to ``inner_block``.

    Immutable, hashable, comparable with ``==`` and picklable.
    """

    def __new__(
        cls, outer_block: Block, inner_block: Block, inner_block_local: Block
    ) -> BlockWithHalo: ...
    @property
    def outer_block(self) -> Block:
        """The region to read: the block grown by the halo, clipped to the array (not the roi)."""
    @property
    def inner_block(self) -> Block:
        """The region to write: the block itself; inner blocks never overlap."""
    @property
    def inner_block_local(self) -> Block:
        """``inner_block`` in coordinates relative to ``outer_block.begin``."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class Blocking:
    """A tiling of an array of ``shape`` (or of its sub-region ``roi_begin:roi_end``) into blocks
    of ``block_shape``.

    Blocks start at ``roi_begin``; those at the upper edge are clipped to ``roi_end``. Block ids
    number the block grid in C order (last axis fastest). Iterating yields every ``Block`` in id
    order; ``len()`` is the number of blocks. Immutable, hashable, comparable with ``==`` and
    picklable (it pickles as its constructor arguments).

    Args:
        shape: shape of the whole array (entries may be 0: no blocks then).
        block_shape: shape of a block; entries must be positive.
        roi_begin: first corner of the region to tile; default the origin.
        roi_end: exclusive upper corner of the region to tile; default ``shape``.

    Raises:
        ValueError: lengths differ, a negative entry, a zero ``block_shape`` entry,
            ``roi_begin > roi_end`` or ``roi_end > shape`` on an axis.
    """

    def __new__(
        cls,
        shape: Sequence[int],
        block_shape: Sequence[int],
        roi_begin: Sequence[int] | None = None,
        roi_end: Sequence[int] | None = None,
    ) -> Blocking: ...
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the whole array."""
    @property
    def block_shape(self) -> tuple[int, ...]:
        """Shape of a (non-edge) block."""
    @property
    def roi_begin(self) -> tuple[int, ...]:
        """First corner of the tiled region."""
    @property
    def roi_end(self) -> tuple[int, ...]:
        """Exclusive upper corner of the tiled region."""
    @property
    def blocks_per_axis(self) -> tuple[int, ...]:
        """Number of blocks along each axis: ``ceil((roi_end - roi_begin) / block_shape)``."""
    @property
    def number_of_blocks(self) -> int:
        """Total number of blocks (0 for an empty region, 1 for a 0-d array)."""
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Block]: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
    def block_grid_position(self, block_id: int) -> tuple[int, ...]:
        """Grid position (C order) of block ``block_id``.

        Raises:
            ValueError: ``block_id`` is negative or ``>= number_of_blocks``.
        """
    def block_id(self, grid_position: Sequence[int]) -> int:
        """Id of the block at ``grid_position``.

        Raises:
            ValueError: wrong length, or a position outside ``blocks_per_axis``.
        """
    def get_block(self, block_id: int) -> Block:
        """The block ``block_id``: ``roi_begin + position * block_shape``, clipped to ``roi_end``.

        Raises:
            ValueError: ``block_id`` is negative or ``>= number_of_blocks``.
        """
    def get_block_with_halo(
        self, block_id: int, halo: Sequence[int], halo_end: Sequence[int] | None = None
    ) -> BlockWithHalo:
        """Block ``block_id`` with ``halo[axis]`` voxels of context on both sides of each axis
        (with ``halo_end``: ``halo`` below and ``halo_end`` above, as bioimage-cpp's).

        The outer block is clipped to the array (context outside the roi is still read); a halo
        larger than the array is fine.

        Raises:
            ValueError: ``block_id`` out of range, or ``halo`` of the wrong length or negative.
        """
    def add_halo(
        self, inner_block: Block, halo: Sequence[int], halo_end: Sequence[int] | None = None
    ) -> BlockWithHalo:
        """Any block of the array grown by a halo, as ``get_block_with_halo`` grows its blocks.

        Raises:
            ValueError: a block outside the array, or a halo of the wrong length or negative.
        """
    @property
    def ndim(self) -> int:
        """Number of axes."""
    def coordinates_to_block_id(self, coordinates: Sequence[int]) -> int:
        """Id of the block holding the voxel at ``coordinates``.

        Raises:
            ValueError: coordinates of the wrong length or outside the roi.
        """
    def get_block_ids_in_bounding_box(
        self, begin: Sequence[int], end: Sequence[int]
    ) -> list[int]:
        """Ids (ascending) of the blocks lying entirely inside the region ``begin:end``."""
    def get_block_ids_overlapping_bounding_box(
        self, begin: Sequence[int], end: Sequence[int]
    ) -> list[int]:
        """Ids (ascending) of the blocks that intersect ``begin:end`` (``get_block_ids_in_region``)."""
    def get_neighbor_id(self, block_id: int, axis: int, lower: bool) -> int:
        """Id of the block next to ``block_id`` along ``axis`` (below it with ``lower``), or -1."""
    def get_block_ids_in_region(self, begin: Sequence[int], end: Sequence[int]) -> list[int]:
        """Ids (ascending) of the blocks that intersect the region ``begin:end``.

        The region may reach beyond the roi or the array; a region empty on any axis
        (``begin >= end``) intersects no block.

        Raises:
            ValueError: ``begin``/``end`` of the wrong length or negative.
        """

def blocks_align_with_chunks(blocking: Blocking, chunks: Sequence[int]) -> bool:
    """Whether every chunk of an output of shape ``blocking.shape`` and chunk shape ``chunks``
    is written by at most one block, so blocks can be written in parallel without locking.

    Exact: true iff every internal block boundary (``roi_begin + k * block_shape``,
    ``0 < k < blocks_per_axis``) is a multiple of the chunk shape. Clipped edge blocks, and a roi
    that starts or ends inside a chunk, are fine.

    Raises:
        ValueError: ``chunks`` of the wrong length, or an entry that is not positive.
    """

def group_blocks_by_shards(
    blocking: Blocking, shard_shapes: Sequence[Sequence[int]]
) -> list[list[int]]:
    """Group block ids so that every shard of each output is written by exactly one group.

    ``shard_shapes`` holds one shard shape per output (outputs have ``blocking.shape``). Blocks
    touching a common shard of any output share a group, transitively, so a block straddling a
    shard boundary merges its neighbours. Every block is in exactly one group; ids ascend within
    a group, and groups are ordered by their first id. With no outputs, every block is its own
    group.

    Raises:
        ValueError: a shard shape of the wrong length, or an entry that is not positive.
    """

# --- native chunked arrays (zarr, N5) ---------------------------------------------------------
# Used through `bioimage_py.open_source` / `bioimage_py.create_array`; errors: ValueError for
# bad metadata or arguments (damaged metadata JSON names the file; axes longer than 2**63 - 1,
# chunks that cannot be held in memory and shards of more than 2**24 chunks are refused at open),
# OSError for I/O and corrupt chunks (messages name the array path and the chunk; a chunk that
# decodes to more or less than its size is corrupt, and decoding stops at the chunk's size),
# FileNotFoundError for missing files and, with missing_chunks="error", chunks, MemoryError when
# a buffer cannot be allocated, RuntimeError for a panic (a bug) or threads that cannot start.
#
# `root` (of every zarr / N5 / store function) is a local folder; a local `.zip` file holding a
# zarr (read-only); or a URL `s3://bucket[/prefix]` (AWS or any S3-compatible server),
# `gs://bucket[/prefix]`, `http(s)://host/path` (read-only: writes raise PermissionError naming
# the URL; listing raises ValueError, HTTP cannot list). `storage_options` (`dict | None`, used
# by URLs only) holds the non-secret options, all optional: `"endpoint_url": str` (an `http://`
# endpoint allows plain HTTP; S3 is then addressed path-style), `"region": str`,
# `"anonymous": bool` (unsigned requests). Credentials are never options: they come from the
# environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ENDPOINT_URL,
# AWS_REGION / AWS_DEFAULT_REGION, the AWS config files, GOOGLE_APPLICATION_CREDENTIALS, ...).
# Remote errors name the URL, after bounded retries and timeouts: a missing bucket or key ->
# FileNotFoundError (or ValueError "no zarr array here", as for a missing local folder), denied
# access -> PermissionError, an unreachable endpoint -> ConnectionError. Chunk writes to object
# stores are whole-object PUTs.

DEFAULT_CHUNK_CACHE_BYTES: int
"""Default bound of an open array's decoded-chunk cache (256 MiB)."""

class NativeArray:
    """An open zarr, N5 or HDF5 array: numpy basic indexing, reads and writes with the GIL released,
    chunks decoded in parallel through a decoded-chunk cache bounded in bytes."""

    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def ndim(self) -> int: ...
    @property
    def dtype(self) -> np.dtype:
        """bool, int8-64, uint8-64, float16, float32, float64, complex64 or complex128 (N5 has no
        bool, float16 or complex types; HDF5 complex is h5py's compound ``{r, i}``)."""
    @property
    def chunks(self) -> tuple[int, ...]:
        """The read/write chunk: the inner chunk of a sharded zarr array, an N5 block, an HDF5
        chunk (for a contiguous HDF5 dataset: slabs of about 1 MiB along axis 0)."""
    @property
    def shards(self) -> tuple[int, ...] | None:
        """The shard shape of a sharded zarr array, else None."""
    @property
    def format(self) -> str:
        """``"zarr"``, ``"n5"`` or ``"hdf5"``."""
    @property
    def path(self) -> str:
        """Container path and key, as used in messages (for a URL: the array's URL, root + "/"
        + key)."""
    @property
    def read_only(self) -> bool: ...
    @property
    def missing_chunks(self) -> str:
        """``"fill"`` (missing chunks read as the fill value) or ``"error"``."""
    @property
    def chunk_cache_bytes(self) -> int:
        """Bound of the decoded-chunk cache in bytes (0: no cache)."""
    @property
    def cache_size_bytes(self) -> int:
        """Bytes of decoded chunks currently cached."""
    def clear_cache(self) -> None:
        """Forget every cached chunk (e.g. after another process rewrote the array)."""
    def chunk_exists(self, chunk: Sequence[int]) -> bool:
        """Whether the chunk at grid position ``chunk`` (units of ``chunks``) is stored."""
    def __getitem__(self, index: Any) -> Any:
        """numpy basic indexing; a new array (a numpy scalar for all-integer indices)."""
    def __setitem__(self, index: Any, value: Any) -> None:
        """numpy basic indexing; ``value`` broadcasts to the region. Chunk writes are atomic."""
    def __len__(self) -> int: ...

def open_zarr(
    root: str, key: str, *, read_only: bool = True, chunk_cache_bytes: int = ...,
    missing_chunks: str = "fill", storage_options: dict[str, Any] | None = None,
) -> NativeArray:
    """Open the zarr (v2 or v3, optionally sharded) array at ``key`` of the store at ``root``
    (a folder, a zip file or a URL)."""

def create_zarr(
    root: str, key: str, *, shape: Sequence[int], chunks: Sequence[int], dtype: str,
    zarr_format: int = 3, shards: Sequence[int] | None = None, compression: str = "zstd",
    compression_level: int | None = None, fill_value: int | float | complex = 0,
    overwrite: bool = False, chunk_cache_bytes: int = ..., missing_chunks: str = "fill",
    storage_options: dict[str, Any] | None = None,
) -> NativeArray:
    """Create a zarr array (groups on the way are created) and open it writable (a folder or
    an ``s3://`` / ``gs://`` URL; zip files and ``http(s)://`` raise PermissionError).
    ``dtype``: a numpy name (bool, int8-64, uint8-64, float16/32/64, complex64/128);
    ``fill_value`` must be representable in it (a complex number only for complex dtypes)."""

def open_n5(
    root: str, key: str, *, read_only: bool = True, chunk_cache_bytes: int = ...,
    missing_chunks: str = "fill", storage_options: dict[str, Any] | None = None,
) -> NativeArray:
    """Open the N5 dataset at ``key`` of the container at ``root`` (a folder or a URL)."""

def create_n5(
    root: str, key: str, *, shape: Sequence[int], chunks: Sequence[int], dtype: str,
    compression: str = "gzip", compression_level: int | None = None, overwrite: bool = False,
    chunk_cache_bytes: int = ..., missing_chunks: str = "fill",
    storage_options: dict[str, Any] | None = None,
) -> NativeArray:
    """Create an N5 dataset (shape and chunks in numpy order) and open it writable. N5 defines
    no bool, float16 or complex data types: those raise ``ValueError``."""

def list_zarr_arrays(root: str, storage_options: dict[str, Any] | None = None) -> list[str]:
    """Keys of the zarr arrays below ``root``, sorted; ``""`` for an array at the root.

    Raises:
        ValueError: ``root`` is an ``http(s)://`` URL (HTTP cannot list).
    """

def list_n5_arrays(root: str, storage_options: dict[str, Any] | None = None) -> list[str]:
    """Keys of the N5 datasets below ``root``, sorted; ``""`` for a dataset at the root.

    Raises:
        ValueError: ``root`` is an ``http(s)://`` URL (HTTP cannot list).
    """

# --- stores: keys and values of a folder, a zip file or a URL --------------------------------
# Keys are "/"-separated, relative to `root`. Used by the Python side for metadata (group
# attributes, OME-Zarr multiscales, format probing, root groups of new containers).

def store_get(
    root: str, key: str, *, storage_options: dict[str, Any] | None = None
) -> bytes | None:
    """The value stored at ``key`` (metadata-sized: bounded at 64 MiB); ``None`` when there is
    no such key.

    Raises:
        OSError: the store cannot be read (PermissionError denied, ConnectionError unreachable,
            FileNotFoundError no such bucket), naming the URL.
        ValueError: a value larger than the bound.
    """

def store_put(
    root: str, key: str, value: bytes, *, storage_options: dict[str, Any] | None = None
) -> None:
    """Store ``value`` at ``key``: atomically on disk (temporary file and rename), one
    whole-object PUT at a URL.

    Raises:
        PermissionError: a zip file or an ``http(s)://`` URL (read-only), or denied access.
    """

def store_delete_prefix(
    root: str, prefix: str, *, storage_options: dict[str, Any] | None = None
) -> None:
    """Delete every key under ``prefix`` (``""``: everything under ``root``).

    Raises:
        PermissionError: a zip file or an ``http(s)://`` URL (read-only), or denied access.
    """

def store_list_dir(
    root: str, prefix: str, *, storage_options: dict[str, Any] | None = None
) -> tuple[list[str], list[str]]:
    """``(keys, directories)`` directly under ``prefix`` (``""``: the root): the names of the
    keys and of the child "directories", relative to ``prefix``, each sorted.

    Raises:
        ValueError: an ``http(s)://`` URL (HTTP cannot list).
    """

def open_hdf5(
    path: str, key: str, *, read_only: bool = True, chunk_cache_bytes: int = ...,
    missing_chunks: str = "fill",
) -> NativeArray:
    """Open dataset ``key`` of the HDF5 file at ``path`` (without HDF5 file locks; one handle
    per file and process, reopened read-write when a writer needs it)."""

def create_hdf5(
    path: str, key: str, *, shape: Sequence[int], chunks: Sequence[int] | None, dtype: str,
    compression: str = "gzip", compression_level: int | None = None, shuffle: bool = False,
    fill_value: int | float | complex | None = None, overwrite: bool = False,
    chunk_cache_bytes: int = ..., missing_chunks: str = "fill",
) -> NativeArray:
    """Create dataset ``key`` (and its groups) in the HDF5 file at ``path`` (created when
    missing) and open it writable. ``compression``: ``"gzip"`` (level 0-9, default 4),
    ``"lzf"`` or ``"raw"``; ``chunks=None`` makes a contiguous dataset (no compression).
    float16 is stored as HDF5's IEEE half type and complex64 / complex128 as h5py's compound
    ``{r, i}``, so h5py reads them back as numpy float16 / complex arrays."""

def list_hdf5_arrays(path: str, key: str = "") -> list[str]:
    """Paths of the datasets below group ``key`` of the HDF5 file at ``path``, sorted."""

def hdf5_node_kind(path: str, key: str) -> str | None:
    """``"group"``, ``"dataset"``, ``"other"`` or ``None``: what is at ``key`` in the file."""

# --- transposing copies -------------------------------------------------------------------------
# Public through `bioimage_py.util.contiguous_transpose`, which also takes non-arrays, 0-d arrays
# and object arrays.

def normalize_axes(axes: Sequence[int], ndim: int) -> list[int]:
    """``axes``, a permutation of ``range(ndim)`` as for ``numpy.transpose``, with negative axes
    resolved.

    Raises:
        ValueError: wrong length, an axis out of bounds or a repeated axis; the message names
            the axes.
    """

def contiguous_transpose(array: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """A new C-contiguous array equal to ``numpy.ascontiguousarray(array.transpose(axes))``.

    Works from ``array``'s byte strides (any layout: Fortran order, strided, reversed, offset
    views), copies items as raw bytes (every dtype and byte order is kept), cache-blocked and in
    parallel for large arrays, with the GIL released.

    Raises:
        ValueError: ``axes`` is not a permutation of ``range(array.ndim)``.
        TypeError: ``array``'s items are references (dtype ``object``, ``StringDType`` or
            fields of them), which raw copies would break.
    """

def create_hdf5_file(path: str, *, truncate: bool = False) -> None:
    """Create an empty HDF5 file at ``path``; an existing one is kept unless ``truncate``
    (refused while arrays of it are open in this process)."""
