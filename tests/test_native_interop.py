"""Native zarr (v2, v3, sharded) and N5 arrays against the peer libraries, in both directions.

zarr-python 3, tensorstore and z5py write real files that ``open_source`` reads through the Rust
core; arrays written by ``create_array`` and ``open_source(mode="r+")`` are read back by those
same libraries. Every comparison is voxel-exact against a numpy oracle; nothing is mocked.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
import tensorstore as ts
import z5py
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from zarr.codecs import (
    BloscCodec,
    BytesCodec,
    Crc32cCodec,
    GzipCodec,
    ShardingCodec,
    TransposeCodec,
    ZstdCodec,
)

import bioimage_py as bp
from bioimage_py._core import NativeArray
from bioimage_py import create_array
from bioimage_py.sources import ArraySource, FileSource, as_source, from_spec


DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float32", "float64"]
N5_DTYPES = [d for d in DTYPES if d != "bool"]  # N5 has no boolean type
# Shapes that no chunk (nor shard) divides, so every array has edge chunks and partial shards.
SHAPES = {1: (37,), 2: (13, 11), 3: (7, 9, 5), 4: (5, 3, 7, 4)}
CHUNKS = {1: (8,), 2: (4, 3), 3: (3, 4, 2), 4: (2, 2, 3, 3)}
SHARDS = {n: tuple(2 * c for c in chunks) for n, chunks in CHUNKS.items()}
NDIMS = sorted(SHAPES)


# ---------------------------------------------------------------------------------------------
# the oracle


def oracle(shape: tuple[int, ...], dtype: Any, seed: int = 0) -> np.ndarray:
    """Random content covering the whole value range of ``dtype`` (and inf, nan, -0.0)."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    if dtype == bool:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    values = (rng.standard_normal(shape) * 1e4).astype(dtype)
    flat = values.reshape(-1)
    flat[: min(4, flat.size)] = [np.inf, -np.inf, np.nan, -0.0][: min(4, flat.size)]
    return values


def extreme_fill(dtype: Any) -> Any:
    """A fill value at the edge of ``dtype``'s range: what a sloppy encoder gets wrong."""
    dtype = np.dtype(dtype)
    if dtype == bool:
        return True
    if dtype.kind == "i":
        return int(np.iinfo(dtype).min)
    if dtype.kind == "u":
        return int(np.iinfo(dtype).max)
    return float("nan")


def plain_fill(dtype: Any) -> Any:
    """A fill value every writer can spell in JSON."""
    return True if np.dtype(dtype) == bool else (-1.5 if np.dtype(dtype).kind == "f" else 7)


def lower_region(shape: tuple[int, ...]) -> tuple[slice, ...]:
    """A region starting at the origin and ending inside chunks: the far chunks stay unwritten."""
    return tuple(slice(0, n // 2 + 1) for n in shape)


def upper_region(shape: tuple[int, ...]) -> tuple[slice, ...]:
    """A region overlapping ``lower_region``'s chunks partially, and reaching the far edge."""
    return tuple(slice(n // 3, n) for n in shape)


def partially_written(shape, dtype, fill, seed=0) -> tuple[np.ndarray, np.ndarray, tuple]:
    """``(data, expected, region)``: ``expected`` is ``fill`` with ``data`` in ``region``."""
    data = oracle(shape, dtype, seed)
    region = lower_region(shape)
    expected = np.full(shape, fill, dtype=dtype)
    expected[region] = data[region]
    return data, expected, region


def chunk_grid(shape, chunks):
    return itertools.product(*(range(-(-n // c)) for n, c in zip(shape, chunks)))


def chunk_slices(coords, chunks, shape) -> tuple[slice, ...]:
    return tuple(slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(coords, chunks, shape))


def intersects(a: tuple[slice, ...], b: tuple[slice, ...]) -> bool:
    return all(x.start < y.stop and y.start < x.stop for x, y in zip(a, b))


def assert_chunk_existence(src: FileSource, written: tuple[slice, ...], expected: np.ndarray,
                           fill: Any) -> None:
    """Chunks outside the written region are not stored; written chunks holding any value other
    than the fill value are (chunks that are all fill value may be skipped by the writer)."""
    for coords in chunk_grid(src.shape, src.chunks):
        where = chunk_slices(coords, src.chunks, src.shape)
        exists = src.chunk_exists(coords)
        if not intersects(where, written):
            assert not exists, coords
        elif not np.array_equal(expected[where], np.full_like(expected[where], fill),
                                equal_nan=expected.dtype.kind == "f"):
            assert exists, coords


def assert_equal(actual: np.ndarray, expected: np.ndarray) -> None:
    """Voxel-exact, dtype included (NaN equals NaN, -0.0 must stay -0.0)."""
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)
    if expected.dtype.kind == "f":
        np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected))


def open_native(path: Path, key: str | None = None, **kwargs) -> FileSource:
    src = bp.open_source(path, key, **kwargs)
    assert isinstance(src.array, NativeArray)
    return src


# ---------------------------------------------------------------------------------------------
# zarr-python writes, we read

ZARR_KINDS = ["v2", "v3", "sharded"]


def zarr_python_array(path: Path, key: str, kind: str, shape, dtype, fill, **kwargs) -> Any:
    """A zarr-python array of ``kind`` at ``key`` (``""``: the store root)."""
    ndim = len(shape)
    options = dict(shape=shape, dtype=dtype, chunks=CHUNKS[ndim], fill_value=fill,
                   zarr_format=2 if kind == "v2" else 3, **kwargs)
    if kind == "sharded":
        options["shards"] = SHARDS[ndim]
    if not key:
        return zarr.create_array(str(path), **options)
    group = zarr.open_group(str(path), mode="a", zarr_format=options.pop("zarr_format"))
    return group.create_array(key, **options)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ZARR_KINDS)
def test_zarr_python_writes_we_read_every_dtype_and_ndim(tmp_path, kind, dtype):
    for ndim in NDIMS:
        shape = SHAPES[ndim]
        key = "" if ndim % 2 else "group/sub group/arr"  # at the root and nested in groups
        path = tmp_path / f"{ndim}d.zarr"
        fill = extreme_fill(dtype)
        data, expected, region = partially_written(shape, dtype, fill, seed=ndim)
        z = zarr_python_array(path, key, kind, shape, dtype, fill)
        z[region] = data[region]

        src = open_native(path)  # the one array is the default, at the root or not
        assert src.internal_path == key
        assert (src.shape, src.dtype, src.ndim) == (shape, np.dtype(dtype), ndim)
        assert src.chunks == tuple(z.chunks)
        assert src.shards == (None if kind != "sharded" else tuple(z.shards))
        assert_equal(src[...], expected)
        assert_equal(np.asarray(src[region]), data[region])
        assert_chunk_existence(src, region, expected, fill)


V2_CODECS = {
    "blosc-lz4-shuffle": dict(compressors=numcodecs.Blosc("lz4", 5, numcodecs.Blosc.SHUFFLE)),
    "blosc-zstd-bitshuffle": dict(
        compressors=numcodecs.Blosc("zstd", 3, numcodecs.Blosc.BITSHUFFLE)),
    "blosc-blosclz-noshuffle": dict(
        compressors=numcodecs.Blosc("blosclz", 9, numcodecs.Blosc.NOSHUFFLE)),
    "blosc-zlib": dict(compressors=numcodecs.Blosc("zlib", 1, numcodecs.Blosc.SHUFFLE)),
    "zstd": dict(compressors=numcodecs.Zstd(level=3)),
    "zstd-checksum": dict(compressors=numcodecs.Zstd(level=1, checksum=True)),
    "gzip": dict(compressors=numcodecs.GZip(level=5)),
    "no-compressor": dict(compressors=None),
    "order-F": dict(compressors=numcodecs.Zstd(level=3), order="F"),
    "order-F-raw": dict(compressors=None, order="F"),
    "slash-separator": dict(compressors=numcodecs.GZip(1), chunk_key_encoding={
        "name": "v2", "separator": "/"}),
}
V3_CODECS = {
    "zstd": dict(compressors=ZstdCodec(level=3)),
    "zstd-checksum": dict(compressors=ZstdCodec(level=5, checksum=True)),
    "gzip": dict(compressors=GzipCodec(level=6)),
    "blosc-lz4-shuffle": dict(compressors=BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")),
    "blosc-zstd-bitshuffle": dict(
        compressors=BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")),
    "crc32c": dict(compressors=[ZstdCodec(level=1), Crc32cCodec()]),
    "crc32c-only": dict(compressors=[Crc32cCodec()]),
    "transpose": dict(filters=[TransposeCodec(order=(2, 0, 1))], compressors=GzipCodec()),
    "big-endian": dict(serializer=BytesCodec(endian="big"), compressors=ZstdCodec()),
    "no-compressor": dict(compressors=None),
    "dot-separator": dict(compressors=ZstdCodec(), chunk_key_encoding={
        "name": "default", "separator": "."}),
    "v2-chunk-keys": dict(compressors=ZstdCodec(), chunk_key_encoding={
        "name": "v2", "separator": "."}),
}
SHARD_CODECS = {
    "zstd": dict(compressors=ZstdCodec(level=3)),
    "gzip-crc32c": dict(compressors=[GzipCodec(level=1), Crc32cCodec()]),
    "blosc": dict(compressors=BloscCodec(cname="lz4", shuffle="shuffle")),
    "no-compressor": dict(compressors=None),
    "index-at-start": dict(compressors=None, serializer=ShardingCodec(
        chunk_shape=CHUNKS[3], codecs=[BytesCodec(), ZstdCodec()], index_location="start")),
    "transpose": dict(filters=[TransposeCodec(order=(1, 2, 0))], compressors=ZstdCodec()),
}
CODEC_CASES = (
    [pytest.param("v2", name, kw, id=f"v2-{name}") for name, kw in V2_CODECS.items()]
    + [pytest.param("v3", name, kw, id=f"v3-{name}") for name, kw in V3_CODECS.items()]
    + [pytest.param("sharded", name, kw, id=f"sharded-{name}") for name, kw in SHARD_CODECS.items()]
)


def codec_array(path: Path, kind: str, name: str, kwargs: dict, dtype: str, fill) -> Any:
    shape = SHAPES[3]
    if kind == "sharded" and name == "index-at-start":
        # the sharding codec given as the serializer: chunks are then the shard shape
        return zarr.create_array(str(path), shape=shape, chunks=SHARDS[3], dtype=dtype,
                                 fill_value=fill, **kwargs)
    return zarr_python_array(path, "in/a/group", kind, shape, dtype, fill, **kwargs)


@pytest.mark.parametrize(("kind", "name", "kwargs"), CODEC_CASES)
def test_zarr_python_codecs_both_ways(tmp_path, kind, name, kwargs):
    """zarr-python writes with each codec, we read; we write into the same array (partial
    chunks, partial shards), zarr-python reads; the array's metadata is left as it was."""
    dtype, fill = "uint16", 3
    path = tmp_path / "codecs.zarr"
    shape = SHAPES[3]
    data, expected, region = partially_written(shape, dtype, fill)
    z = codec_array(path, kind, name, kwargs, dtype, fill)
    z[region] = data[region]
    key = z.path
    metadata_file = path / key / (".zarray" if kind == "v2" else "zarr.json")
    metadata = metadata_file.read_text()

    src = open_native(path, key)
    assert src.chunks == tuple(z.chunks) and src.shards == (
        tuple(z.shards) if z.shards else None)
    assert_equal(src[...], expected)

    writer = open_native(path, key, mode="r+")
    new = oracle(shape, dtype, seed=9)
    where = upper_region(shape)
    writer[where] = new[where]
    expected[where] = new[where]
    writer[0, :, 1] = 65535  # a thin slab across many chunks
    expected[0, :, 1] = 65535
    assert_equal(np.asarray(zarr.open_array(str(path), path=key, mode="r")[...]), expected)
    assert_equal(writer[...], expected)
    assert metadata_file.read_text() == metadata


# ---------------------------------------------------------------------------------------------
# we write, zarr-python reads


def our_zarr(path: Path, key: str, kind: str, shape, dtype, fill, **kwargs) -> FileSource:
    ndim = len(shape)
    return create_array(
        path, key, shape=shape, dtype=dtype, chunks=CHUNKS[ndim], fill_value=fill,
        zarr_format=2 if kind == "v2" else 3, shards=SHARDS[ndim] if kind == "sharded" else None,
        **kwargs,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ZARR_KINDS)
def test_we_write_zarr_python_reads_every_dtype_and_ndim(tmp_path, kind, dtype):
    for ndim in NDIMS:
        shape = SHAPES[ndim]
        key = "" if ndim % 2 else "g/h/arr"
        path = tmp_path / f"{ndim}d.zarr"
        fill = extreme_fill(dtype)
        data, expected, region = partially_written(shape, dtype, fill, seed=ndim)
        src = our_zarr(path, key, kind, shape, dtype, fill)
        assert isinstance(src.array, NativeArray) and src.writable
        src[region] = data[region]  # partial chunks (and partial shards)
        # reopened as a worker would: write another region through a new handle
        again = open_native(path, key, mode="r+")
        new = oracle(shape, dtype, seed=100 + ndim)
        where = upper_region(shape)
        again[where] = new[where]
        expected[where] = new[where]

        z = zarr.open_array(str(path), path=key, mode="r")
        assert z.metadata.zarr_format == (2 if kind == "v2" else 3)
        assert (z.shape, z.dtype, tuple(z.chunks)) == (shape, np.dtype(dtype), CHUNKS[ndim])
        assert z.shards == (SHARDS[ndim] if kind == "sharded" else None)
        assert_equal(np.asarray(z.fill_value, dtype=dtype), np.asarray(fill, dtype=dtype))
        assert_equal(np.asarray(z[...]), expected)
        assert_equal(src[...], expected)  # the first handle sees the second one's write


@pytest.mark.parametrize("kind", ZARR_KINDS)
def test_we_write_extreme_fill_values_zarr_python_reads(tmp_path, kind):
    for dtype in DTYPES:
        fill = extreme_fill(dtype)
        path = tmp_path / f"{dtype}.zarr"
        src = our_zarr(path, "", kind, SHAPES[2], dtype, fill)
        src[1:3, 2] = oracle((2,), dtype)
        expected = np.full(SHAPES[2], fill, dtype)
        expected[1:3, 2] = oracle((2,), dtype)
        assert_equal(np.asarray(zarr.open_array(str(path), mode="r")[...]), expected)


@pytest.mark.parametrize(("dtype", "fill"), [("int64", -(2**62) - 1), ("uint64", 2**53 + 1)])
def test_create_array_keeps_64_bit_integer_fill_values_exactly(tmp_path, dtype, fill):
    src = create_array(tmp_path / "a.zarr", shape=(4,), dtype=dtype, chunks=(2,), fill_value=fill)
    assert int(zarr.open_array(str(tmp_path / "a.zarr"), mode="r").fill_value) == fill
    assert int(src[0]) == fill


ZARR_COMPRESSIONS = ["zstd", "gzip", "blosc", "blosc-lz4-shuffle", "blosc-zstd-bitshuffle",
                     "blosc-lz4hc-noshuffle", "blosc-zlib", "blosc-blosclz", "raw"]


@pytest.mark.parametrize("compression", ZARR_COMPRESSIONS)
@pytest.mark.parametrize("kind", ZARR_KINDS)
def test_we_write_each_compression_zarr_python_reads(tmp_path, kind, compression):
    shape, dtype = SHAPES[3], "int32"
    data = oracle(shape, dtype)
    src = our_zarr(tmp_path / "c.zarr", "x", kind, shape, dtype, 0, compression=compression)
    src[...] = data
    src[2:5, 1:8, 1:4] = -data[2:5, 1:8, 1:4]  # partial chunks, read-modify-write
    data[2:5, 1:8, 1:4] *= -1
    z = zarr.open_array(str(tmp_path / "c.zarr"), path="x", mode="r")
    assert_equal(np.asarray(z[...]), data)
    metadata = json.loads((tmp_path / "c.zarr" / "x" / (
        ".zarray" if kind == "v2" else "zarr.json")).read_text())
    codec = compression.split("-")[0]
    if codec != "raw":
        assert codec in json.dumps(metadata)


def test_zarr_compression_levels_reach_the_metadata(tmp_path):
    create_array(tmp_path / "a.zarr", shape=(4,), dtype="uint8", compression="zstd",
                 compression_level=7, zarr_format=2)
    compressor = json.loads((tmp_path / "a.zarr" / ".zarray").read_text())["compressor"]
    assert (compressor["id"], compressor["level"]) == ("zstd", 7)
    create_array(tmp_path / "b.zarr", shape=(4,), dtype="uint8", compression="gzip",
                 compression_level=2)
    codecs = json.loads((tmp_path / "b.zarr" / "zarr.json").read_text())["codecs"]
    assert {"name": "gzip", "configuration": {"level": 2}} in codecs
    with pytest.raises(ValueError):
        create_array(tmp_path / "c.zarr", shape=(4,), dtype="uint8", compression="nope")
    with pytest.raises(ValueError):
        create_array(tmp_path / "d.zarr", shape=(4,), dtype="uint8", compression="gzip",
                     compression_level=42)


def test_partial_shard_writes_keep_the_rest_of_the_shard(tmp_path):
    """One inner chunk of a shard written at a time: the other inner chunks survive each
    read-modify-write of the shard, and zarr-python sees every one of them."""
    shape, chunks, shards = (10, 12), (2, 3), (4, 6)
    src = create_array(tmp_path / "s.zarr", shape=shape, dtype="int16", chunks=chunks,
                       shards=shards, fill_value=-1)
    data = oracle(shape, "int16")
    expected = np.full(shape, -1, "int16")
    for coords in chunk_grid(shape, chunks):
        where = chunk_slices(coords, chunks, shape)
        src[where] = data[where]
        expected[where] = data[where]
        z = zarr.open_array(str(tmp_path / "s.zarr"), mode="r")
        assert_equal(np.asarray(z[...]), expected)
    # sub-chunk writes straddling shard boundaries
    src[3:5, 5:7] = 77
    expected[3:5, 5:7] = 77
    assert_equal(np.asarray(zarr.open_array(str(tmp_path / "s.zarr"), mode="r")[...]), expected)


# ---------------------------------------------------------------------------------------------
# tensorstore both ways

TS_KINDS = ["zarr2", "zarr3", "zarr3-sharded", "n5"]


def ts_spec(kind: str, path: Path) -> dict:
    return {"driver": {"zarr2": "zarr", "n5": "n5"}.get(kind, "zarr3"),
            "kvstore": {"driver": "file", "path": str(path)}}


def ts_create(kind: str, path: Path, shape, chunks, dtype, fill, codec: dict | None = None):
    """A tensorstore array; N5 dimensions are XYZ, so its tensorstore view is transposed."""
    dtype = np.dtype(dtype)
    if kind == "zarr2":
        metadata = {"shape": list(shape), "chunks": list(chunks), "dtype": dtype.str,
                    "fill_value": fill, "compressor": codec or {"id": "zstd", "level": 3}}
    elif kind == "n5":
        metadata = {"dimensions": list(shape[::-1]), "blockSize": list(chunks[::-1]),
                    "dataType": dtype.name, "compression": codec or {"type": "gzip"}}
    else:
        inner = [{"name": "bytes", "configuration": {"endian": "little"}},
                 codec or {"name": "zstd", "configuration": {"level": 3}}]
        if dtype.itemsize == 1:
            inner[0] = {"name": "bytes", "configuration": {}}
        codecs = inner
        grid = list(chunks)
        if kind == "zarr3-sharded":
            grid = [2 * c for c in chunks]
            codecs = [{"name": "sharding_indexed", "configuration": {
                "chunk_shape": list(chunks), "codecs": inner,
                "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                                 {"name": "crc32c"}]}}]
        metadata = {"shape": list(shape), "data_type": dtype.name, "fill_value": fill,
                    "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": grid}},
                    "codecs": codecs}
    return ts.open({**ts_spec(kind, path), "metadata": metadata}, create=True).result()


def ts_view(kind: str, array: np.ndarray) -> np.ndarray:
    return array.T if kind == "n5" else array


def ts_kind_dtypes():
    for kind in TS_KINDS:
        for dtype in N5_DTYPES if kind == "n5" else DTYPES:
            yield pytest.param(kind, dtype, id=f"{kind}-{dtype}")


@pytest.mark.parametrize(("kind", "dtype"), list(ts_kind_dtypes()))
def test_tensorstore_writes_we_read(tmp_path, kind, dtype):
    shape, chunks = SHAPES[3], CHUNKS[3]
    fill = 0 if kind == "n5" else plain_fill(dtype)
    data, expected, region = partially_written(shape, dtype, fill)
    path = tmp_path / ("a.n5" if kind == "n5" else "a.zarr") / "nested" / "arr"
    store = ts_create(kind, path, shape, chunks, dtype, fill)
    ts_region = region[::-1] if kind == "n5" else region
    store[ts_region] = ts_view(kind, data[region])
    container = path.parent.parent
    src = open_native(container, "nested/arr")
    assert (src.shape, src.dtype, src.chunks) == (shape, np.dtype(dtype), chunks)
    assert_equal(src[...], expected)
    assert_chunk_existence(src, region, expected, fill)


@pytest.mark.parametrize(("kind", "dtype"), list(ts_kind_dtypes()))
def test_we_write_tensorstore_reads(tmp_path, kind, dtype):
    shape, chunks = SHAPES[4], CHUNKS[4]
    fill = 0 if kind == "n5" else plain_fill(dtype)
    data, expected, region = partially_written(shape, dtype, fill)
    container = tmp_path / ("a.n5" if kind == "n5" else "a.zarr")
    src = create_array(container, "x/y", shape=shape, dtype=dtype, chunks=chunks,
                       zarr_format=2 if kind == "zarr2" else 3,
                       shards=SHARDS[4] if kind == "zarr3-sharded" else None,
                       **({} if kind == "n5" else {"fill_value": fill}))
    src[region] = data[region]
    new = oracle(shape, dtype, seed=5)
    where = upper_region(shape)
    src[where] = new[where]
    expected[where] = new[where]
    store = ts.open(ts_spec(kind, container / "x" / "y"), open=True).result()
    assert store.dtype.numpy_dtype == np.dtype(dtype)
    assert_equal(ts_view(kind, store.read().result()), expected)


TS_CODECS = [
    ("zarr2", {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1}),
    ("zarr2", {"id": "blosc", "cname": "zstd", "clevel": 3, "shuffle": 2}),
    ("zarr2", {"id": "zstd", "level": 1}),
    ("zarr2", {"id": "zlib", "level": 1}),
    ("zarr2", None),
    ("zarr3", {"name": "gzip", "configuration": {"level": 1}}),
    ("zarr3", {"name": "blosc", "configuration": {"cname": "lz4", "clevel": 5,
                                                  "shuffle": "shuffle", "typesize": 2}}),
    ("zarr3", {"name": "crc32c"}),
    ("zarr3-sharded", {"name": "gzip", "configuration": {"level": 5}}),
    ("n5", {"type": "raw"}),
    ("n5", {"type": "gzip", "level": 9}),
    ("n5", {"type": "gzip", "useZlib": True}),
    ("n5", {"type": "bzip2", "blockSize": 3}),
    ("n5", {"type": "xz", "preset": 1}),
    ("n5", {"type": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1}),
    ("n5", {"type": "blosc", "cname": "zstd", "clevel": 3, "shuffle": 2}),
    ("n5", {"type": "zstd", "level": 3}),
]


@pytest.mark.parametrize(
    ("kind", "codec"),
    [pytest.param(kind, codec, id=f"{kind}-{json.dumps(codec)}") for kind, codec in TS_CODECS],
)
def test_tensorstore_codecs_we_read_and_write_back(tmp_path, kind, codec):
    shape, chunks, dtype = SHAPES[3], CHUNKS[3], "uint16"
    data = oracle(shape, dtype)
    path = tmp_path / ("a.n5" if kind == "n5" else "a.zarr")
    if kind == "zarr2" and codec is None:
        store = ts.open({**ts_spec(kind, path), "metadata": {
            "shape": list(shape), "chunks": list(chunks), "dtype": "<u2", "compressor": None}},
            create=True).result()
    else:
        store = ts_create(kind, path, shape, chunks, dtype, 0, codec)
    store[...] = ts_view(kind, data)
    src = open_native(path, mode="r+")
    assert_equal(src[...], data)
    src[1:6, 2:7, 1:3] = 4242
    data[1:6, 2:7, 1:3] = 4242
    again = ts.open(ts_spec(kind, path), open=True).result()
    assert_equal(ts_view(kind, again.read().result()), data)


# ---------------------------------------------------------------------------------------------
# z5py (N5) both ways

Z5_COMPRESSIONS = ["raw", "gzip", "zstd", "blosc", "bzip2", "xz", "lz4"]


def z5_dataset(path: Path, key: str, shape, dtype, compression: str = "gzip", **options):
    with z5py.File(str(path), "a") as f:
        return f.create_dataset(key, shape=shape, chunks=CHUNKS[len(shape)], dtype=dtype,
                                compression=compression, **options)


@pytest.mark.parametrize("compression", Z5_COMPRESSIONS)
def test_z5py_writes_each_compression_we_read_and_write_back(tmp_path, compression):
    shape, dtype = SHAPES[3], "int32"
    path = tmp_path / "c.n5"
    data, expected, region = partially_written(shape, dtype, 0)
    ds = z5_dataset(path, "a/b", shape, dtype, compression)
    ds[region] = data[region]
    src = open_native(path, "a/b", mode="r+")
    assert_equal(src[...], expected)
    assert_chunk_existence(src, region, expected, 0)
    # our writes into z5py's dataset use its compression and framing: z5py reads them
    new = oracle(shape, dtype, seed=3)
    where = upper_region(shape)
    src[where] = new[where]
    expected[where] = new[where]
    with z5py.File(str(path), "r") as f:
        assert_equal(f["a/b"][...], expected)


@pytest.mark.parametrize("compression", [c for c in Z5_COMPRESSIONS if c != "lz4"])
def test_we_write_each_compression_z5py_reads(tmp_path, compression):
    shape, dtype = SHAPES[3], "float32"
    data, expected, region = partially_written(shape, dtype, 0)
    src = create_array(tmp_path / "c.n5", "g/x", shape=shape, dtype=dtype,
                       chunks=CHUNKS[3], compression=compression)
    src[region] = data[region]
    with z5py.File(str(tmp_path / "c.n5"), "r") as f:
        assert f["g/x"].compression == compression
        assert_equal(f["g/x"][...], expected)


def test_we_write_lz4_in_the_java_framing(tmp_path):
    """``create_array(compression="lz4")`` frames blocks like Java N5 (lz4-java
    ``LZ4BlockOutputStream``), which z5py cannot read; we read it back, and we read z5py's own
    framing (see the test above)."""
    shape, dtype = SHAPES[3], "uint16"
    data = oracle(shape, dtype)
    src = create_array(tmp_path / "c.n5", "x", shape=shape, dtype=dtype, chunks=CHUNKS[3],
                       compression="lz4")
    src[...] = data
    assert_equal(open_native(tmp_path / "c.n5", "x")[...], data)
    block = (tmp_path / "c.n5" / "x" / "0" / "0" / "0").read_bytes()
    assert b"LZ4Block" in block[:64]


@pytest.mark.parametrize("dtype", N5_DTYPES)
def test_z5py_writes_we_read_every_dtype_and_ndim(tmp_path, dtype):
    for ndim in NDIMS:
        shape = SHAPES[ndim]
        path = tmp_path / f"{ndim}d.n5"
        data, expected, region = partially_written(shape, dtype, 0, seed=ndim)
        ds = z5_dataset(path, "deep/er/arr", shape, dtype, "zstd")
        ds[region] = data[region]
        src = open_native(path)
        assert src.internal_path == "deep/er/arr"
        assert (src.shape, src.dtype, src.chunks) == (shape, np.dtype(dtype), CHUNKS[ndim])
        assert_equal(src[...], expected)


@pytest.mark.parametrize("dtype", N5_DTYPES)
def test_we_write_z5py_reads_every_dtype_and_ndim(tmp_path, dtype):
    for ndim in NDIMS:
        shape = SHAPES[ndim]
        path = tmp_path / f"{ndim}d.n5"
        data, expected, region = partially_written(shape, dtype, 0, seed=ndim)
        src = create_array(path, "deep/arr", shape=shape, dtype=dtype, chunks=CHUNKS[ndim])
        src[region] = data[region]
        again = open_native(path, "deep/arr", mode="a")
        new = oracle(shape, dtype, seed=50)
        where = upper_region(shape)
        again[where] = new[where]
        expected[where] = new[where]
        with z5py.File(str(path), "r") as f:
            ds = f["deep/arr"]
            assert (ds.shape, ds.dtype, ds.chunks) == (shape, np.dtype(dtype), CHUNKS[ndim])
            assert_equal(ds[...], expected)
        assert "n5" in json.loads((path / "attributes.json").read_text())  # the root version key


def test_z5py_reads_our_n5_groups(tmp_path):
    create_array(tmp_path / "c.n5", "a/b/c", shape=(3,), dtype="uint8", chunks=(2,))[...] = 5
    with z5py.File(str(tmp_path / "c.n5"), "r") as f:
        assert isinstance(f["a"], z5py.Group) and isinstance(f["a/b"], z5py.Group)
        assert list(f["a/b/c"][...]) == [5, 5, 5]


@pytest.mark.parametrize("compression", ["raw", "gzip"])
def test_z5py_writes_zarr_we_read(tmp_path, compression):
    data = oracle(SHAPES[2], "int16")
    with z5py.File(str(tmp_path / "c.zarr"), "w") as f:
        f.create_dataset("x", data=data, chunks=CHUNKS[2], compression=compression)
    assert_equal(open_native(tmp_path / "c.zarr", "x")[...], data)


# ---------------------------------------------------------------------------------------------
# missing chunks: fill or error; chunk_exists

MISSING_CASES = ["zarr-v2", "zarr-v3", "zarr-sharded", "z5py-n5", "tensorstore-n5"]


def peer_array_with_holes(case: str, root: Path) -> tuple[Path, np.ndarray, Any, list]:
    """A peer-written 2-D array where only chunks (0, 0) and (2, 1) are stored (and, when
    sharded, shard (0, 0) holds only inner chunk (0, 0)). Returns the container, the expected
    content, the fill value and the stored chunk coordinates."""
    shape, chunks = (10, 9), (4, 3)
    stored = [(0, 0), (2, 1)]
    data = oracle(shape, "int16")
    fill = 0 if "n5" in case else -7
    expected = np.full(shape, fill, "int16")
    if case.startswith("zarr"):
        path = root / "h.zarr"
        kind = case.split("-")[1]
        group = zarr.open_group(str(path), mode="w", zarr_format=2 if kind == "v2" else 3)
        z = group.create_array("a", shape=shape, chunks=chunks, dtype="int16", fill_value=fill,
                               shards=(8, 6) if kind == "sharded" else None)
        for coords in stored:
            z[chunk_slices(coords, chunks, shape)] = data[chunk_slices(coords, chunks, shape)]
    elif case == "z5py-n5":
        path = root / "h.n5"
        with z5py.File(str(path), "w") as f:
            ds = f.create_dataset("a", shape=shape, chunks=chunks, dtype="int16",
                                  compression="gzip")
            for coords in stored:
                where = chunk_slices(coords, chunks, shape)
                ds[where] = data[where]
    else:
        path = root / "h.n5"
        path.mkdir()
        (path / "attributes.json").write_text(json.dumps({"n5": "2.0.0"}))
        store = ts_create("n5", path / "a", shape, chunks, "int16", 0)
        for coords in stored:
            where = chunk_slices(coords, chunks, shape)
            store[where[::-1]] = data[where].T
    for coords in stored:
        where = chunk_slices(coords, chunks, shape)
        expected[where] = data[where]
    return path, expected, fill, stored


@pytest.mark.parametrize("case", MISSING_CASES)
def test_missing_chunks_read_as_fill_and_exist_only_when_stored(tmp_path, case):
    path, expected, fill, stored = peer_array_with_holes(case, tmp_path)
    src = open_native(path, "a")
    assert src.array.missing_chunks == "fill"
    assert_equal(src[...], expected)
    assert_equal(np.asarray(src[4:8, 3:6]), np.full((4, 3), fill, "int16"))
    for coords in chunk_grid(src.shape, src.chunks):
        assert src.chunk_exists(coords) == (coords in stored), coords
    with pytest.raises(ValueError, match="outside the chunk grid"):
        src.chunk_exists((3, 0))
    with pytest.raises(ValueError, match=r"chunk \(0, 0, 0\) has 3 coordinates.* has 2 axes"):
        src.chunk_exists((0, 0, 0))


@pytest.mark.parametrize("case", MISSING_CASES)
def test_missing_chunks_as_errors(tmp_path, case):
    path, expected, fill, stored = peer_array_with_holes(case, tmp_path)
    src = open_native(path, "a", missing_chunks="error")
    assert src.array.missing_chunks == "error"
    assert src.to_spec().params["missing_chunks"] == "error"
    # regions inside stored chunks read normally
    assert_equal(np.asarray(src[0:4, 0:3]), expected[0:4, 0:3])
    assert_equal(np.asarray(src[8:10, 3:6]), expected[8:10, 3:6])
    for region, chunk in [((slice(4, 8), slice(3, 6)), (1, 1)),
                          ((slice(0, 4), slice(3, 4)), (0, 1)),
                          ((slice(9, 10), slice(8, 9)), (2, 2))]:
        with pytest.raises(FileNotFoundError) as info:
            src[region]
        message = str(info.value)
        assert src.array.path in message and str(path) in message
        assert f"chunk {list(chunk)}" in message
    with pytest.raises(FileNotFoundError):
        src[...]
    # the policy is per handle: the same array reads with fill values elsewhere
    assert_equal(open_native(path, "a")[...], expected)


def test_chunk_exists_rejects_negative_coordinates_with_valueerror(tmp_path):
    src = create_array(tmp_path / "a.zarr", shape=(4, 4), dtype="uint8", chunks=(2, 2))
    with pytest.raises(ValueError, match="outside the chunk grid"):
        src.chunk_exists((-1, 0))


def test_chunk_exists_needs_a_native_array(tmp_path):
    import h5py

    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("x", data=np.zeros((4, 4)), chunks=(2, 2))
    with h5py.File(tmp_path / "a.h5", "r") as f:
        src = bp.as_source(f["x"])
        with pytest.raises(TypeError, match="cannot tell which chunks exist"):
            src.chunk_exists((0, 0))
    assert bp.open_source(tmp_path / "a.h5", "x").chunk_exists((0, 0))


# ---------------------------------------------------------------------------------------------
# random regions against the numpy oracle (hypothesis)

PROPERTY_SHAPE, PROPERTY_CHUNKS = (11, 9, 7), (4, 3, 3)
PROPERTY_KINDS = ["zarr-v2", "zarr-v3", "zarr-sharded", "n5"]


def axis_index(n: int) -> st.SearchStrategy:
    bound = st.integers(-n - 2, n + 2) | st.none()
    return st.integers(-n, n - 1) | st.builds(slice, bound, bound)


def without_steps(index: Any) -> Any:
    """``index`` with every slice step dropped (the sources support step 1 only)."""
    if isinstance(index, slice):
        return slice(index.start, index.stop)
    if isinstance(index, tuple):
        return tuple(without_steps(i) for i in index)
    return index


def basic_index(shape: tuple[int, ...]) -> st.SearchStrategy:
    """Ints and step-1 slices (some out of bounds, some reversed or empty), as full tuples,
    shorter tuples or with an ``Ellipsis``; and hypothesis' ``basic_indices`` without steps."""
    full = st.tuples(*(axis_index(n) for n in shape))
    short = st.integers(0, len(shape)).flatmap(
        lambda k: st.tuples(*(axis_index(n) for n in shape[:k])))
    with_ellipsis = st.tuples(axis_index(shape[0])).map(lambda t: (*t, Ellipsis))
    numpy_style = hnp.basic_indices(shape, allow_ellipsis=True).map(without_steps)
    return full | short | with_ellipsis | numpy_style


@pytest.fixture(scope="module")
def property_arrays(tmp_path_factory):
    """Per kind: ``(writable source, oracle, peer reader)``, shared by the property tests."""
    root = tmp_path_factory.mktemp("property")
    arrays = {}
    for kind in PROPERTY_KINDS:
        data = oracle(PROPERTY_SHAPE, "int32", seed=1)
        if kind == "n5":
            path = root / "p.n5"
            src = create_array(path, "a", shape=PROPERTY_SHAPE, dtype="int32",
                               chunks=PROPERTY_CHUNKS, chunk_cache_bytes=2000)

            def peer(path=path):
                with z5py.File(str(path), "r") as f:
                    return f["a"][...]
        else:
            zkind = kind.split("-")[1]
            path = root / f"{zkind}.zarr"
            src = create_array(path, "a", shape=PROPERTY_SHAPE, dtype="int32",
                               chunks=PROPERTY_CHUNKS, zarr_format=2 if zkind == "v2" else 3,
                               shards=(8, 6, 6) if zkind == "sharded" else None,
                               chunk_cache_bytes=2000)

            def peer(path=path):
                return np.asarray(zarr.open_array(str(path), path="a", mode="r")[...])
        src[...] = data
        arrays[kind] = (src, data, peer)
    return arrays


@pytest.mark.parametrize("kind", PROPERTY_KINDS)
@settings(max_examples=60, deadline=None)
@given(index=basic_index(PROPERTY_SHAPE))
def test_random_regions_read_like_numpy(property_arrays, kind, index):
    src, data, _ = property_arrays[kind]
    expected = data[index]
    actual = src[index]
    assert np.shape(actual) == np.shape(expected)
    np.testing.assert_array_equal(actual, expected)
    assert np.asarray(actual).dtype == data.dtype


@pytest.mark.parametrize("kind", PROPERTY_KINDS)
@settings(max_examples=30, deadline=None)
@given(index=basic_index(PROPERTY_SHAPE), seed=st.integers(0, 2**16), scalar=st.booleans())
def test_random_region_writes_like_numpy(property_arrays, kind, index, seed, scalar):
    src, data, peer = property_arrays[kind]
    region_shape = data[index].shape
    value = np.int32(seed) if scalar else oracle(region_shape, "int32", seed)
    src[index] = value
    data[index] = value
    np.testing.assert_array_equal(src[...], data)  # through the (invalidated) cache
    np.testing.assert_array_equal(peer(), data)  # what the peer library reads from disk


# ---------------------------------------------------------------------------------------------
# as_source(zarr.Array) stays on zarr-python; open_source(path) is native


def test_as_source_of_a_zarr_array_stays_on_zarr_python(tmp_path):
    """``as_source(zarr.Array)`` keeps the user's handle: that zarr-python array is the
    authority (it may live in memory, in a remote or custom store, or carry a codec pipeline the
    user chose), so reads and writes go through zarr-python and the spec stays kind ``"zarr"``,
    reopened by zarr-python. ``open_source(path)`` is the native fast path; both see the same
    bytes on disk."""
    path = tmp_path / "a.zarr"
    data = oracle(SHAPES[3], "uint16")
    z = zarr.create_array(str(path), name="g/a", shape=SHAPES[3], chunks=CHUNKS[3],
                          dtype="uint16")
    z[...] = data
    src = as_source(z)
    assert type(src) is ArraySource and src.array is z
    spec = src.to_spec()
    assert (spec.kind, spec.path, spec.internal_path) == ("zarr", str(path), "g/a")
    reopened = from_spec(spec)
    assert isinstance(reopened.array, zarr.Array)
    native = bp.open_source(path, "g/a", mode="r+")
    assert isinstance(native.array, NativeArray)
    assert native.to_spec().kind == "file"
    assert isinstance(from_spec(native.to_spec()).array, NativeArray)
    # one writer, the other reader, both ways
    native[0] = 1
    src[1] = 2
    data[0], data[1] = 1, 2
    assert_equal(np.asarray(src[...]), data)
    native.array.clear_cache()
    assert_equal(native[...], data)
    # an in-memory zarr array has no file: only the zarr-python path can serve it
    memory = zarr.create_array(zarr.storage.MemoryStore(), shape=(3,), dtype="int8")
    assert isinstance(as_source(memory).array, zarr.Array)
