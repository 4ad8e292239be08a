"""``to_dask``: a source as a read-only dask array whose tasks reopen it from its spec.

The graph holds only the spec (a few hundred bytes), never a handle or data, so it travels to
any worker of a dask.distributed cluster; each worker thread reopens the source once and reads
its chunks through it.
"""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from bioimage_py.io.create import default_chunks
from bioimage_py.sources.base import SourceSpec
from bioimage_py.sources.dispatch import SourceLike, as_source, from_spec_cached

__all__ = ["to_dask"]


class _Reopening:
    """The array dask's ``from_array`` slices: a spec that reopens on first read in a worker.

    Pickles as ``(spec, shape, dtype, token)``; ``token`` identifies this dask array, so a worker
    reopens the source for every new ``to_dask`` call (the files may have changed) but only once
    per call.
    """

    def __init__(self, spec: SourceSpec, shape: tuple[int, ...], dtype: np.dtype, token: str):
        self.spec, self.shape, self.dtype, self.token = spec, shape, np.dtype(dtype), token
        self.ndim = len(shape)

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.asarray(from_spec_cached(self.spec, self.token)[index])

    def __reduce__(self) -> tuple:
        return (_Reopening, (self.spec, self.shape, self.dtype, self.token))


def to_dask(source: SourceLike, chunks: Sequence[int] | None = None) -> Any:
    """A read-only ``dask.array.Array`` of ``source``, chunked along its storage chunks.

    Args:
        source: any source that can be reopened from its spec (not a numpy array: use
            ``dask.array.from_array`` for in-memory data).
        chunks: the dask chunk shape; default the source's chunks (the inner chunks of a sharded
            zarr array), or ``bioimage_py.io.create.default_chunks`` for unchunked sources.

    Raises:
        ValueError: the source has no spec (numpy arrays), or invalid ``chunks``.
        ImportError: dask is not installed.
    """
    try:
        import dask.array as da
    except ImportError as err:
        raise ImportError(
            'to_dask requires dask, which is not installed; install it with: '
            'pip install "bioimage_py[dask]"'
        ) from err
    src = as_source(source)
    spec = src.to_spec()
    shape = tuple(int(n) for n in src.shape)
    if chunks is None:
        chunks = src.chunks or default_chunks(shape)
    chunks = tuple(chunks)
    if len(chunks) != len(shape) or not all(
        isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c > 0 for c in chunks
    ):
        raise ValueError(
            f"chunks must be {len(shape)} positive integers (one per axis), got {chunks!r}"
        )
    token = uuid.uuid4().hex
    array = _Reopening(spec, shape, src.dtype, token)
    return da.from_array(
        array, chunks=tuple(int(c) for c in chunks), name=f"bioimage_py-{token}", lock=False,
        asarray=True, fancy=False, meta=np.empty((0,) * len(shape), dtype=src.dtype),
    )
