"""The peer libraries on S3: zarr-python 3 through obstore's ``S3Store`` and tensorstore's ``s3``
kvstore, writing and reading arrays at ``s3://bucket/key`` URLs of a local S3 server.

Plain functions of an endpoint URL and an ``s3://`` URL, so tests (and worker processes) can use
them without fixtures. Credentials come from the environment (``AWS_ACCESS_KEY_ID``, ...), as for
our reader; addressing is path-style and plain HTTP is allowed, as a local server needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

REGION = "us-east-1"


def split_s3_url(url: str) -> tuple[str, str]:
    """``("bucket", "key/inside")`` of ``s3://bucket/key/inside``."""
    if not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, key = url[len("s3://"):].partition("/")
    return bucket, key.strip("/")


# ---------------------------------------------------------------- zarr-python + obstore


def obstore_s3(endpoint_url: str, url: str, region: str = REGION) -> Any:
    """An ``obstore.store.S3Store`` rooted at ``url`` on the server at ``endpoint_url``."""
    from obstore.store import S3Store

    bucket, prefix = split_s3_url(url)
    return S3Store(bucket, prefix=prefix or None, endpoint=endpoint_url, region=region,
                   allow_http=endpoint_url.startswith("http://"),
                   virtual_hosted_style_request=False)


def zarr_store(endpoint_url: str, url: str, *, read_only: bool = False) -> Any:
    """A zarr-python ``ObjectStore`` over ``obstore_s3``."""
    from zarr.storage import ObjectStore

    return ObjectStore(obstore_s3(endpoint_url, url), read_only=read_only)


def zarr_write(
    endpoint_url: str,
    url: str,
    data: np.ndarray | None,
    *,
    chunks: tuple[int, ...],
    zarr_format: int = 3,
    shards: tuple[int, ...] | None = None,
    compressors: Any = "auto",
    fill_value: Any = 0,
    shape: tuple[int, ...] | None = None,
    dtype: Any = None,
    region: tuple[slice, ...] | None = None,
    path: str | None = None,
    chunk_key_encoding: dict[str, Any] | None = None,
) -> Any:
    """Create an array at ``url`` (or at ``path`` inside the group ``url``) with zarr-python and
    write ``data`` into it (into ``region`` when given; nothing when ``data`` is None).

    Returns the zarr array.
    """
    import zarr

    store = zarr_store(endpoint_url, url)
    shape = tuple(shape if shape is not None else data.shape)  # type: ignore[union-attr]
    dtype = dtype if dtype is not None else data.dtype  # type: ignore[union-attr]
    if path is None:
        array = zarr.create_array(store, shape=shape, chunks=chunks, shards=shards, dtype=dtype,
                                  compressors=compressors, fill_value=fill_value,
                                  zarr_format=zarr_format, overwrite=True,
                                  chunk_key_encoding=chunk_key_encoding)
    else:
        group = zarr.open_group(store, mode="a", zarr_format=zarr_format)
        array = group.create_array(path, shape=shape, chunks=chunks, shards=shards, dtype=dtype,
                                   compressors=compressors, fill_value=fill_value, overwrite=True)
    if data is not None:
        array[region if region is not None else ...] = data
    return array


def zarr_read(endpoint_url: str, url: str, path: str | None = None) -> np.ndarray:
    """The whole array at ``url`` (or ``path`` inside it) read by zarr-python."""
    import zarr

    array = zarr.open_array(zarr_store(endpoint_url, url, read_only=True), path=path or "",
                            mode="r")
    return np.asarray(array[...])


# ---------------------------------------------------------------- tensorstore


def ts_kvstore(endpoint_url: str, url: str, region: str = REGION) -> dict[str, Any]:
    """tensorstore's ``s3`` kvstore spec of ``url`` on the server at ``endpoint_url``."""
    bucket, key = split_s3_url(url)
    return {"driver": "s3", "bucket": bucket, "path": key + "/" if key else "",
            "endpoint": endpoint_url, "aws_region": region,
            "aws_credentials": {"type": "environment"}}


def ts_metadata(
    driver: str, shape: tuple[int, ...], dtype: Any, chunks: tuple[int, ...],
    shards: tuple[int, ...] | None = None, fill_value: Any = 0, compression: str = "zstd",
) -> dict[str, Any]:
    """The ``metadata`` member of a tensorstore spec for ``driver`` ("zarr", "zarr3", "n5");
    N5 shapes are given in our (C) order and reversed here."""
    dtype = np.dtype(dtype)
    if driver == "zarr3":
        codecs: list[dict[str, Any]] = [
            {"name": "bytes", "configuration": {"endian": "little"}},
            {"name": "zstd", "configuration": {"level": 3}}]
        chunk_shape = list(chunks)
        if shards is not None:
            codecs = [{"name": "sharding_indexed", "configuration": {
                "chunk_shape": list(chunks), "codecs": codecs,
                "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                                 {"name": "crc32c"}]}}]
            chunk_shape = list(shards)
        return {"shape": list(shape), "data_type": dtype.name, "fill_value": _json(fill_value),
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunk_shape}},
                "chunk_key_encoding": {"name": "default"}, "codecs": codecs}
    if driver == "zarr":
        return {"shape": list(shape), "chunks": list(chunks), "dtype": dtype.newbyteorder("<").str
                if dtype.itemsize > 1 else dtype.str, "fill_value": _json(fill_value),
                "order": "C", "filters": None,
                "compressor": {"id": "zstd", "level": 3} if compression == "zstd" else
                {"id": "gzip", "level": 1}}
    if driver == "n5":
        return {"dimensions": list(shape)[::-1], "blockSize": list(chunks)[::-1],
                "dataType": dtype.name, "compression": {"type": "gzip", "level": 1}}
    raise ValueError(f"unknown tensorstore driver {driver!r}")


def _json(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def ts_open(endpoint_url: str, url: str, driver: str, **kwargs: Any) -> Any:
    """``tensorstore.open`` of the array at ``url``; N5 arrays transposed to our (C) order."""
    import tensorstore as ts

    spec: dict[str, Any] = {"driver": driver, "kvstore": ts_kvstore(endpoint_url, url)}
    metadata = kwargs.pop("metadata", None)
    if metadata is not None:
        spec["metadata"] = metadata
    store = ts.open(spec, **kwargs).result()
    return store.T if driver == "n5" else store


def ts_write(
    endpoint_url: str, url: str, data: np.ndarray | None, *, driver: str,
    chunks: tuple[int, ...], shards: tuple[int, ...] | None = None, fill_value: Any = 0,
    shape: tuple[int, ...] | None = None, dtype: Any = None,
    region: tuple[slice, ...] | None = None,
) -> None:
    """Create the array at ``url`` with tensorstore and write ``data`` (into ``region``)."""
    shape = tuple(shape if shape is not None else data.shape)  # type: ignore[union-attr]
    dtype = dtype if dtype is not None else data.dtype  # type: ignore[union-attr]
    metadata = ts_metadata(driver, shape, dtype, chunks, shards, fill_value)
    store = ts_open(endpoint_url, url, driver, metadata=metadata, create=True,
                    delete_existing=True)
    if data is not None:
        target = store[region] if region is not None else store
        target.write(data).result()


def ts_read(endpoint_url: str, url: str, driver: str) -> np.ndarray:
    """The whole array at ``url`` read by tensorstore (N5 in our C order)."""
    return np.asarray(ts_open(endpoint_url, url, driver, read=True).read().result())


# ---------------------------------------------------------------- worker processes


def read_from_spec_json(spec_json: str, index: Any = ...) -> np.ndarray:
    """Reopen a source from its spec's JSON (in a worker process) and read ``index``."""
    from bioimage_py.sources import SourceSpec, from_spec

    source = from_spec(SourceSpec.from_json(spec_json))
    return np.asarray(source[index])


# --- the data and reads every remote suite checks against numpy ----------------------------------

SHAPE = (37, 29, 23)  # no chunk or shard divides it: edge chunks and partial shards everywhere
CHUNKS = (8, 8, 8)
INDICES: list[Any] = [
    ...,
    (slice(3, 17), slice(None), slice(5, 6)),
    (5, slice(None), slice(None)),
    (slice(-10, None), slice(2, -3), 7),
    (slice(30, 100), slice(28, 29)),
    (36, 28, 22),
    (slice(9, 9),),
]
# A block-wise runner's reads: 16^3 blocks grown by a 3-voxel halo, clipped to the array.
HALO_BLOCK, HALO = 16, 3


def oracle(shape: tuple[int, ...] = SHAPE, dtype: Any = np.uint16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype == bool:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return (rng.standard_normal(shape) * 1e3).astype(dtype)


def halo_regions(shape: tuple[int, ...]) -> list[tuple[slice, ...]]:
    regions = []
    for z in range(0, shape[0], HALO_BLOCK):
        for y in range(0, shape[1], HALO_BLOCK):
            for x in range(0, shape[2], HALO_BLOCK):
                regions.append(tuple(slice(max(0, s - HALO), min(n, s + HALO_BLOCK + HALO))
                                     for s, n in zip((z, y, x), shape)))
    return regions


def assert_reads_like(src: Any, expected: np.ndarray) -> None:
    """Every index of INDICES and every halo block read from ``src`` equals numpy's."""
    assert src.shape == expected.shape and src.dtype == expected.dtype
    for index in INDICES:
        got = np.asarray(src[index])
        want = expected[index]
        assert got.dtype == want.dtype and got.shape == want.shape, index
        np.testing.assert_array_equal(got, want, err_msg=f"index {index}")
    for region in halo_regions(expected.shape):
        np.testing.assert_array_equal(src[region], expected[region], err_msg=f"region {region}")
