"""Native zarr (v2, v3, sharded) and N5 on a real S3 server (moto, in a child process).

zarr-python (through obstore's ``S3Store``) and tensorstore (its ``s3`` kvstore) write arrays
that ``open_source("s3://...", endpoint_url=...)`` reads through the Rust core; arrays written by
``create_array`` are read back by those peers. Also: ``copy`` and ``bioimage-py convert`` to and
from S3, specs that record the URL and options but never a credential and reopen in other
processes, and the errors for a missing bucket or key, denied access and an unreachable endpoint.
numpy is the oracle; nothing is mocked.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloudpickle
import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import bioimage_py as bp
from bioimage_py import create_array, open_source
from bioimage_py.sources import FileSource, SourceSpec, from_spec

import remote_peers as peers
from remote_peers import CHUNKS, SHAPE, assert_reads_like, oracle
from remote_peers import REGION

if TYPE_CHECKING:  # the plugin module is loaded by pytest (pytest_plugins), not imported here
    from object_store_servers import S3AuthServer, S3Server

pytest_plugins = ["object_store_servers"]
# Dummy AWS credentials in the environment while this module runs (and only then).
pytestmark = pytest.mark.usefixtures("aws_test_env")

SHARDS = (16, 16, 8)
FILL = 7  # a fill value that is not 0, so a missing chunk read as zeros shows
# Regions every read test compares with numpy: whole, slabs, an integer index, negative and
# clamped slices, a single voxel, and an empty selection.
def closed_port() -> int:
    """A localhost port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn_pool() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))


@pytest.fixture
def s3(s3_server: S3Server) -> S3Server:
    return s3_server


@pytest.fixture
def secret(aws_test_env: dict[str, str]) -> str:
    """The secret access key in the environment: it must never be recorded anywhere."""
    return aws_test_env["AWS_SECRET_ACCESS_KEY"]


# ---------------------------------------------------------------------------------------------
# The peers themselves: the test servers and helpers work, whatever our reader does.


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_peers_read_each_other(s3: S3Server, s3_bucket: str, zarr_format: int) -> None:
    data = oracle()
    ep = s3.endpoint_url
    driver = "zarr3" if zarr_format == 3 else "zarr"
    url = f"s3://{s3_bucket}/zp.zarr"
    peers.zarr_write(ep, url, data, chunks=CHUNKS, zarr_format=zarr_format)
    np.testing.assert_array_equal(peers.ts_read(ep, url, driver), data)
    url = f"s3://{s3_bucket}/ts.zarr"
    peers.ts_write(ep, url, data, driver=driver, chunks=CHUNKS)
    np.testing.assert_array_equal(peers.zarr_read(ep, url), data)
    assert any(key.startswith("ts.zarr/") for key in s3.keys(s3_bucket))


# ---------------------------------------------------------------------------------------------
# Reading what the peers wrote.

# name -> (writer, suffix, driver/zarr_format, shards)
PEER_LAYOUTS = {
    "zarr-python-v2": ("zarr-python", ".zarr", 2, None),
    "zarr-python-v3": ("zarr-python", ".zarr", 3, None),
    "zarr-python-v3-sharded": ("zarr-python", ".zarr", 3, SHARDS),
    "tensorstore-zarr2": ("tensorstore", ".zarr", "zarr", None),
    "tensorstore-zarr3": ("tensorstore", ".zarr", "zarr3", None),
    "tensorstore-zarr3-sharded": ("tensorstore", ".zarr", "zarr3", SHARDS),
    "tensorstore-n5": ("tensorstore", ".n5", "n5", None),
}


def peer_write(ep: str, url: str, layout: str, data: np.ndarray | None, *,
               fill_value: Any = 0, region: tuple[slice, ...] | None = None,
               shape: tuple[int, ...] | None = None, dtype: Any = None) -> None:
    writer, _, kind, shards = PEER_LAYOUTS[layout]
    if writer == "zarr-python":
        peers.zarr_write(ep, url, data, chunks=CHUNKS, zarr_format=kind, shards=shards,
                         fill_value=fill_value, region=region, shape=shape, dtype=dtype)
    else:
        peers.ts_write(ep, url, data, driver=kind, chunks=CHUNKS, shards=shards,
                       fill_value=fill_value, region=region, shape=shape, dtype=dtype)


@pytest.mark.parametrize("layout", list(PEER_LAYOUTS))
def test_read_peer_written(s3: S3Server, s3_bucket: str, layout: str) -> None:
    data = oracle(seed=1)
    url = f"s3://{s3_bucket}/vol{PEER_LAYOUTS[layout][1]}"
    peer_write(s3.endpoint_url, url, layout, data)

    src = open_source(url, endpoint_url=s3.endpoint_url)
    assert isinstance(src, FileSource)
    assert src.path == url
    assert src.chunks == CHUNKS
    if PEER_LAYOUTS[layout][3] is not None:
        assert src.shards == SHARDS
    assert_reads_like(src, data)
    # a second handle with region given and no chunk cache reads the same
    src = open_source(url, endpoint_url=s3.endpoint_url, region=REGION, chunk_cache_bytes=0)
    assert_reads_like(src, data)


@pytest.mark.parametrize("layout", list(PEER_LAYOUTS))
def test_missing_chunks_read_as_fill_value(s3: S3Server, s3_bucket: str, layout: str) -> None:
    fill = 0 if layout.endswith("n5") else FILL  # N5 has no fill value: always 0
    written = (slice(0, 16), slice(8, 24), slice(0, 23))  # whole chunks (partial shards)
    data = oracle(seed=2)
    url = f"s3://{s3_bucket}/vol{PEER_LAYOUTS[layout][1]}"
    peer_write(s3.endpoint_url, url, layout, data[written], fill_value=fill, region=written,
               shape=SHAPE, dtype=data.dtype)
    expected = np.full(SHAPE, fill, dtype=data.dtype)
    expected[written] = data[written]

    src = open_source(url, endpoint_url=s3.endpoint_url)
    assert_reads_like(src, expected)
    assert src.chunk_exists((0, 1, 0))
    assert not src.chunk_exists((4, 3, 2))

    strict = open_source(url, endpoint_url=s3.endpoint_url, missing_chunks="error")
    np.testing.assert_array_equal(strict[written], data[written])
    with pytest.raises(FileNotFoundError) as info:
        strict[30:, 25:, 20:]
    assert s3_bucket in str(info.value)


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int16", "int32", "uint32", "int64",
                                   "uint64", "float32", "float64"])
def test_read_dtypes(s3: S3Server, s3_bucket: str, dtype: str) -> None:
    data = oracle((9, 10, 11), dtype, seed=3)
    url = f"s3://{s3_bucket}/vol.zarr"
    peers.zarr_write(s3.endpoint_url, url, data, chunks=(4, 4, 4), fill_value=data.flat[0])
    src = open_source(url, endpoint_url=s3.endpoint_url)
    assert src.dtype == data.dtype
    np.testing.assert_array_equal(src[...], data)


@pytest.mark.parametrize("zarr_format,encoding,first_chunk", [
    (2, {"name": "v2", "separator": "/"}, "0/0/0"),
    (3, {"name": "default", "separator": "."}, "c.0.0.0"),
    (3, {"name": "v2", "separator": "."}, "0.0.0")])
def test_read_chunk_key_encodings(s3: S3Server, s3_bucket: str, zarr_format: int,
                                  encoding: dict[str, Any], first_chunk: str) -> None:
    data = oracle(seed=21)
    url = f"s3://{s3_bucket}/vol.zarr"
    peers.zarr_write(s3.endpoint_url, url, data, chunks=CHUNKS, zarr_format=zarr_format,
                     chunk_key_encoding=encoding)
    assert f"vol.zarr/{first_chunk}" in s3.keys(s3_bucket)
    assert_reads_like(open_source(url, endpoint_url=s3.endpoint_url), data)


def test_arrays_in_a_group(s3: S3Server, s3_bucket: str) -> None:
    """Arrays at keys inside a group: each by its internal path; without one, the error lists
    them (listing keys on S3)."""
    ep = s3.endpoint_url
    url = f"s3://{s3_bucket}/group.zarr"
    raw, labels = oracle(seed=4), oracle(dtype=np.uint32, seed=5)
    peers.zarr_write(ep, url, raw, chunks=CHUNKS, path="raw/s0")
    peers.zarr_write(ep, url, labels, chunks=CHUNKS, shards=SHARDS, path="labels")

    np.testing.assert_array_equal(open_source(url, "raw/s0", endpoint_url=ep)[...], raw)
    src = open_source(url, "labels", endpoint_url=ep)
    assert src.internal_path == "labels" and src.path == url
    assert_reads_like(src, labels)
    with pytest.raises(ValueError) as info:
        open_source(url, endpoint_url=ep)
    assert "raw/s0" in str(info.value) and "labels" in str(info.value)


def test_array_at_the_root_of_a_bucket(s3: S3Server, s3_bucket: str) -> None:
    """``s3://bucket`` itself (no key prefix) holding an array: the format is probed."""
    ep = s3.endpoint_url
    data = oracle(seed=25)
    url = f"s3://{s3_bucket}"
    peers.zarr_write(ep, url, data, chunks=CHUNKS, shards=SHARDS)
    assert "zarr.json" in s3.keys(s3_bucket)
    src = open_source(url, endpoint_url=ep)
    assert src.format == "zarr"
    assert_reads_like(src, data)

    other = s3.new_bucket("root-write")
    dst = create_array(f"s3://{other}", shape=SHAPE, chunks=CHUNKS, dtype=data.dtype,
                       format="zarr", zarr_format=2, endpoint_url=ep)
    dst[...] = data
    assert ".zarray" in s3.keys(other)
    np.testing.assert_array_equal(peers.zarr_read(ep, f"s3://{other}"), data)
    np.testing.assert_array_equal(peers.ts_read(ep, f"s3://{other}", "zarr"), data)


def test_url_with_trailing_slash(s3: S3Server, s3_bucket: str) -> None:
    data = oracle(seed=6)
    url = f"s3://{s3_bucket}/vol.zarr"
    peers.zarr_write(s3.endpoint_url, url, data, chunks=CHUNKS)
    src = open_source(url + "/", endpoint_url=s3.endpoint_url)
    np.testing.assert_array_equal(src[...], data)


def test_anonymous_requests(s3: S3Server, s3_bucket: str) -> None:
    """Unsigned requests (``anonymous=True``): denied on a private bucket, reading a public one.
    (Not writes: moto without authentication takes anonymous writes even to private buckets, and
    with authentication answers an unsigned request for a missing key with a 500.)"""
    data = oracle(seed=7)
    url = f"s3://{s3_bucket}/vol.zarr"
    peers.zarr_write(s3.endpoint_url, url, data, chunks=CHUNKS)
    with pytest.raises(PermissionError) as info:
        open_source(url, endpoint_url=s3.endpoint_url, anonymous=True)
    assert s3_bucket in str(info.value)

    s3.make_public(s3_bucket)
    src = open_source(url, endpoint_url=s3.endpoint_url, anonymous=True)
    assert_reads_like(src, data)
    assert src.to_spec().params.get("anonymous") is True
    np.testing.assert_array_equal(from_spec(src.to_spec())[...], data)


# ---------------------------------------------------------------------------------------------
# Writing: ours writes, the peers read.

# name -> (create_array kwargs, suffix, tensorstore driver)
OUR_LAYOUTS = {
    "zarr-v2": ({"zarr_format": 2}, ".zarr", "zarr"),
    "zarr-v3": ({"zarr_format": 3}, ".zarr", "zarr3"),
    "zarr-v3-sharded": ({"zarr_format": 3, "shards": SHARDS}, ".zarr", "zarr3"),
    "n5": ({}, ".n5", "n5"),
}


@pytest.mark.parametrize("layout", list(OUR_LAYOUTS))
def test_write_read_by_peers(s3: S3Server, s3_bucket: str, layout: str) -> None:
    kwargs, suffix, driver = OUR_LAYOUTS[layout]
    ep = s3.endpoint_url
    data = oracle(seed=8)
    url = f"s3://{s3_bucket}/ours{suffix}"
    dst = create_array(url, shape=SHAPE, chunks=CHUNKS, dtype=data.dtype, endpoint_url=ep,
                       **kwargs)
    assert dst.writable and dst.path == url
    dst[...] = data
    keys = s3.keys(s3_bucket)
    assert keys and all(key.startswith("ours" + suffix + "/") for key in keys)

    np.testing.assert_array_equal(peers.ts_read(ep, url, driver), data)
    if driver != "n5":
        np.testing.assert_array_equal(peers.zarr_read(ep, url), data)
    assert_reads_like(open_source(url, endpoint_url=ep), data)


@pytest.mark.parametrize("layout", list(OUR_LAYOUTS))
def test_partial_writes(s3: S3Server, s3_bucket: str, layout: str) -> None:
    """Writes of unaligned regions into a fresh array and into one reopened with mode="r+":
    untouched chunks stay missing and read as the fill value."""
    kwargs, suffix, driver = OUR_LAYOUTS[layout]
    fill = 0 if layout == "n5" else FILL
    if layout != "n5":
        kwargs = {**kwargs, "fill_value": fill}
    ep = s3.endpoint_url
    data = oracle(seed=9)
    url = f"s3://{s3_bucket}/ours{suffix}"
    expected = np.full(SHAPE, fill, dtype=data.dtype)
    dst = create_array(url, shape=SHAPE, chunks=CHUNKS, dtype=data.dtype, endpoint_url=ep,
                       **kwargs)
    first = (slice(3, 13), slice(0, 5), slice(2, 20))
    dst[first] = data[first]
    expected[first] = data[first]

    again = open_source(url, mode="r+", endpoint_url=ep)
    second = (slice(10, 21), slice(4, 29), slice(9, 23))
    again[second] = data[second]
    expected[second] = data[second]
    again[36, 28, 22] = 1
    expected[36, 28, 22] = 1

    np.testing.assert_array_equal(peers.ts_read(ep, url, driver), expected)
    assert_reads_like(open_source(url, endpoint_url=ep), expected)
    assert not open_source(url, endpoint_url=ep).chunk_exists((4, 0, 0))


def test_write_into_a_group_and_overwrite(s3: S3Server, s3_bucket: str) -> None:
    ep = s3.endpoint_url
    url = f"s3://{s3_bucket}/group.zarr"
    data = oracle(seed=10)
    dst = create_array(url, "raw/s0", shape=SHAPE, chunks=CHUNKS, dtype=data.dtype,
                       endpoint_url=ep)
    dst[...] = data
    np.testing.assert_array_equal(peers.zarr_read(ep, url, "raw/s0"), data)
    assert zarr.open_group(peers.zarr_store(ep, url, read_only=True), mode="r")["raw/s0"].shape \
        == SHAPE

    with pytest.raises(ValueError):  # exists, no overwrite
        create_array(url, "raw/s0", shape=SHAPE, chunks=CHUNKS, dtype=data.dtype,
                     endpoint_url=ep)
    # overwrite: the old chunks are gone, the new array reads as its fill value
    create_array(url, "raw/s0", shape=(5, 6, 7), chunks=(4, 4, 4), dtype="float32",
                 fill_value=1.5, overwrite=True, endpoint_url=ep)
    np.testing.assert_array_equal(open_source(url, "raw/s0", endpoint_url=ep)[...],
                                  np.full((5, 6, 7), 1.5, dtype="float32"))
    assert s3.keys(s3_bucket, "group.zarr/raw/s0/") == ["group.zarr/raw/s0/zarr.json"]


def test_chunks_rewritten_with_the_fill_value(s3: S3Server, s3_bucket: str) -> None:
    """Stored chunks overwritten with nothing but the fill value read as the fill value (for
    every reader), whether the writer deletes them or stores them."""
    ep = s3.endpoint_url
    data = oracle(seed=22)
    url = f"s3://{s3_bucket}/vol.zarr"
    dst = create_array(url, shape=SHAPE, chunks=CHUNKS, dtype=data.dtype, fill_value=FILL,
                       endpoint_url=ep)
    dst[...] = data
    dst[0:16, 0:8, 0:8] = FILL
    expected = data.copy()
    expected[0:16, 0:8, 0:8] = FILL
    np.testing.assert_array_equal(peers.zarr_read(ep, url), expected)
    np.testing.assert_array_equal(open_source(url, endpoint_url=ep)[...], expected)


def test_overwrite_and_list_more_than_a_thousand_keys(s3: S3Server, s3_bucket: str) -> None:
    """S3 lists and deletes at most 1000 keys per request: an array of 1210 chunks is listed
    and replaced (``overwrite=True``) whole."""
    from bioimage_py import _core

    ep = s3.endpoint_url
    url = f"s3://{s3_bucket}/many.zarr"
    shape = (11, 11, 10)
    data = oracle(shape, seed=23)
    create_array(url, shape=shape, chunks=(1, 1, 1), dtype=data.dtype, compression="raw",
                 endpoint_url=ep)[...] = data
    np.testing.assert_array_equal(peers.zarr_read(ep, url), data)
    assert len(s3.keys(s3_bucket, "many.zarr/")) == 1210 + 1
    keys, dirs = _core.store_list_dir(url, "c/0/0", storage_options=s3.storage_options)
    assert keys == sorted(str(i) for i in range(10)) and dirs == []
    keys, dirs = _core.store_list_dir(url, "c", storage_options=s3.storage_options)
    assert dirs == sorted(str(i) for i in range(11))
    # 1210 keys directly under one prefix
    flat = f"s3://{s3_bucket}/flat"
    for i in range(1205):
        _core.store_put(flat, f"k{i:04d}", b"", storage_options=s3.storage_options)
    keys, dirs = _core.store_list_dir(flat, "", storage_options=s3.storage_options)
    assert keys == [f"k{i:04d}" for i in range(1205)] and dirs == []

    create_array(url, shape=shape, chunks=(1, 1, 1), dtype=data.dtype, fill_value=5,
                 overwrite=True, endpoint_url=ep)
    assert s3.keys(s3_bucket, "many.zarr/") == ["many.zarr/zarr.json"]
    np.testing.assert_array_equal(open_source(url, endpoint_url=ep)[...],
                                  np.full(shape, 5, dtype=data.dtype))
    _core.store_delete_prefix(flat, "", storage_options=s3.storage_options)
    assert s3.keys(s3_bucket, "flat/") == []


# ---------------------------------------------------------------------------------------------
# Properties: random basic indices read and write like numpy on S3.

PROPERTY_SHAPE = (13, 11, 9)
PROPERTY_KINDS = {"zarr-v2": ({"zarr_format": 2}, ".zarr", "zarr"),
                  "zarr-v3-sharded": ({"zarr_format": 3, "shards": (8, 6, 6)}, ".zarr", "zarr3"),
                  "n5": ({}, ".n5", "n5")}


def step_free_index(shape: tuple[int, ...]) -> st.SearchStrategy:
    """hypothesis' numpy basic indices (ints, slices, Ellipsis) without steps."""
    def drop_steps(index: Any) -> Any:
        if isinstance(index, slice):
            return slice(index.start, index.stop)
        if isinstance(index, tuple):
            return tuple(drop_steps(i) for i in index)
        return index

    return hnp.basic_indices(shape, min_dims=0, allow_ellipsis=True).map(drop_steps)


@pytest.fixture(scope="module")
def s3_property_arrays(s3_server: S3Server, aws_test_env: dict[str, str]
                       ) -> dict[str, tuple[Any, np.ndarray, Callable]]:
    """Per kind: (our writable source on S3, its oracle, a peer reading it whole)."""
    bucket = s3_server.new_bucket("properties")
    ep = s3_server.endpoint_url
    arrays = {}
    for kind, (kwargs, suffix, driver) in PROPERTY_KINDS.items():
        data = oracle(PROPERTY_SHAPE, np.int32, seed=27)
        url = f"s3://{bucket}/{kind}{suffix}"
        src = create_array(url, shape=PROPERTY_SHAPE, chunks=(4, 3, 3), dtype="int32",
                           chunk_cache_bytes=2000, endpoint_url=ep, **kwargs)
        src[...] = data

        def peer(url: str = url, driver: str = driver) -> np.ndarray:
            return peers.ts_read(ep, url, driver)

        arrays[kind] = (src, data, peer)
    return arrays


@pytest.mark.parametrize("kind", list(PROPERTY_KINDS))
@settings(max_examples=25, deadline=None)
@given(index=step_free_index(PROPERTY_SHAPE))
def test_random_regions_read_like_numpy(s3_property_arrays: Any, kind: str, index: Any) -> None:
    src, data, _ = s3_property_arrays[kind]
    expected = data[index]
    actual = src[index]
    assert np.shape(actual) == np.shape(expected)
    assert np.asarray(actual).dtype == data.dtype
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("kind", list(PROPERTY_KINDS))
@settings(max_examples=12, deadline=None)
@given(index=step_free_index(PROPERTY_SHAPE), seed=st.integers(0, 2**16))
def test_random_region_writes_like_numpy(s3_property_arrays: Any, kind: str, index: Any,
                                         seed: int) -> None:
    src, data, peer = s3_property_arrays[kind]
    value = oracle(data[index].shape, np.int32, seed) if data[index].ndim else np.int32(seed)
    src[index] = value
    data[index] = value
    np.testing.assert_array_equal(src[...], data)  # through the (invalidated) cache
    np.testing.assert_array_equal(peer(), data)  # what tensorstore reads from the server


# ---------------------------------------------------------------------------------------------
# copy and the command line, both directions.


@pytest.mark.parametrize("job_type", ["local", "subprocess"])
def test_copy_local_to_s3_and_back(s3: S3Server, s3_bucket: str, tmp_path: Path,
                                   job_type: str) -> None:
    ep = s3.endpoint_url
    data = oracle(seed=11)
    local = create_array(tmp_path / "in.zarr", shape=SHAPE, chunks=CHUNKS, dtype=data.dtype)
    local[...] = data
    config = {"start_method": "spawn"} if job_type == "subprocess" else None
    url = f"s3://{s3_bucket}/copy.zarr"
    remote = create_array(url, shape=SHAPE, chunks=CHUNKS, shards=SHARDS, dtype=data.dtype,
                          endpoint_url=ep)
    bp.copy(local, remote, job_type=job_type, job_config=config, num_workers=2)
    np.testing.assert_array_equal(peers.zarr_read(ep, url), data)

    back = create_array(tmp_path / "back.n5", shape=SHAPE, chunks=CHUNKS, dtype=data.dtype)
    bp.copy(open_source(url, endpoint_url=ep), back, job_type=job_type, job_config=config,
            num_workers=2)
    np.testing.assert_array_equal(open_source(tmp_path / "back.n5")[...], data)


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_forked_workers_after_remote_io(s3: S3Server, s3_bucket: str,
                                        start_method: str) -> None:
    """Workers forked after this process did remote I/O (its async runtime and connection pool
    running) read and write S3 themselves, without hanging."""
    ep = s3.endpoint_url
    data = oracle(seed=24)
    url = f"s3://{s3_bucket}/in.zarr"
    peers.zarr_write(ep, url, data, chunks=CHUNKS)
    src = open_source(url, endpoint_url=ep)
    np.testing.assert_array_equal(src[0:8], data[0:8])  # the parent's runtime is up
    context = multiprocessing.get_context(start_method)
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        got = pool.submit(peers.read_from_spec_json, src.to_spec().to_json(),
                          (slice(8, 30),)).result(timeout=120)
    np.testing.assert_array_equal(got, data[8:30])
    out = f"s3://{s3_bucket}/out.zarr"
    dst = create_array(out, shape=SHAPE, chunks=CHUNKS, dtype=data.dtype, endpoint_url=ep)
    bp.copy(src, dst, job_type="subprocess", job_config={"start_method": start_method},
            num_workers=2)
    np.testing.assert_array_equal(peers.zarr_read(ep, out), data)


def run_cli(*args: str, cwd: Path,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bioimage_py", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_cli_convert_to_and_from_s3(s3: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    ep = s3.endpoint_url
    data = oracle(seed=12)
    zarr.create_array(str(tmp_path / "in.zarr"), shape=SHAPE, chunks=CHUNKS,
                      dtype=data.dtype)[...] = data
    url = f"s3://{s3_bucket}/out.zarr"
    done = run_cli("convert", "in.zarr", url, "--endpoint-url", ep, "--shards", "16,16,8",
                   "--workers", "2", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(peers.zarr_read(ep, url), data)

    done = run_cli("convert", url, "back.n5", "--endpoint-url", ep, "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(open_source(tmp_path / "back.n5")[...], data)


def test_cli_convert_with_aws_endpoint_url(s3: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    """No endpoint option: the core takes the server from AWS_ENDPOINT_URL (an http:// one
    allows plain HTTP, as boto3 does)."""
    ep = s3.endpoint_url
    data = oracle(seed=13)
    url = f"s3://{s3_bucket}/in.zarr"
    peers.ts_write(ep, url, data, driver="zarr3", chunks=CHUNKS, shards=SHARDS)
    env = {"AWS_ENDPOINT_URL": ep}
    done = run_cli("convert", url, "local.zarr", "--quiet", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "local.zarr"))[...], data)

    out = f"s3://{s3_bucket}/out.n5"
    done = run_cli("convert", "local.zarr", out, "--quiet", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(peers.ts_read(ep, out, "n5"), data)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_pyramid_on_s3(s3: S3Server, s3_bucket: str, zarr_format: int) -> None:
    """An OME-Zarr pyramid written to S3 (``write_ome_pyramid``) opens at full resolution and at
    every level by name, with its scales; zarr-python reads the levels too."""
    from bioimage_py import write_ome_pyramid

    ep = s3.endpoint_url
    data = oracle((38, 30, 24), seed=26)  # even: every level exactly half the one above
    url = f"s3://{s3_bucket}/image.ome.zarr"
    write_ome_pyramid(data, url, levels=2, voxel_size=(2.0, 0.5, 0.5), unit="micrometer",
                      zarr_format=zarr_format, chunks=CHUNKS, endpoint_url=ep)
    full = open_source(url, endpoint_url=ep)
    assert full.ome is not None and full.ome["levels"] == ["s0", "s1"]
    assert full.ome["level"] == "s0" and full.ome["scale"] == [2.0, 0.5, 0.5]
    assert_reads_like(full, data)
    half = open_source(url, "s1", endpoint_url=ep)
    assert half.shape == (19, 15, 12) and half.ome["scale"] == [4.0, 1.0, 1.0]
    np.testing.assert_array_equal(half[...], data[::2, ::2, ::2])
    np.testing.assert_array_equal(peers.zarr_read(ep, url, "s1"), data[::2, ::2, ::2])


def test_aws_endpoint_url_environment(s3: S3Server, s3_bucket: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    data = oracle(seed=14)
    url = f"s3://{s3_bucket}/vol.zarr"
    peers.zarr_write(s3.endpoint_url, url, data, chunks=CHUNKS)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint_url)
    np.testing.assert_array_equal(open_source(url)[...], data)


# ---------------------------------------------------------------------------------------------
# Specs: URL and options recorded, credentials never; reopened elsewhere.


def assert_no_secret(secret: str, *things: Any) -> None:
    for thing in things:
        text = thing if isinstance(thing, (bytes, str)) else repr(thing)
        blob = text.encode() if isinstance(text, str) else text
        assert secret.encode() not in blob
        assert b"AWS_SECRET_ACCESS_KEY" not in blob


@pytest.mark.parametrize("suffix", [".zarr", ".n5"])
def test_spec_records_url_and_options_not_credentials(s3: S3Server, s3_bucket: str,
                                                       secret: str, suffix: str) -> None:
    ep = s3.endpoint_url
    data = oracle(seed=15)
    url = f"s3://{s3_bucket}/vol{suffix}"
    create_array(url, shape=SHAPE, chunks=CHUNKS, dtype=data.dtype, endpoint_url=ep,
                 region=REGION)[...] = data

    src = open_source(url, endpoint_url=ep, region=REGION)
    spec = src.to_spec()
    assert spec.path == url
    assert spec.params["endpoint_url"] == ep and spec.params["region"] == REGION
    text = spec.to_json()
    assert url in text and ep in text
    assert_no_secret(secret, text, repr(spec), repr(src), pickle.dumps(spec), pickle.dumps(src),
                     cloudpickle.dumps(src), json.dumps(spec.to_dict()))
    again = SourceSpec.from_json(text)
    assert again == spec
    np.testing.assert_array_equal(from_spec(again)[...], data)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(src))[...], data)

    with spawn_pool() as pool:  # a fresh interpreter: credentials from its environment only
        whole = pool.submit(peers.read_from_spec_json, text).result(timeout=300)
        part = pool.submit(peers.read_from_spec_json, text,
                           (slice(5, 30), 3, slice(None))).result(timeout=300)
    np.testing.assert_array_equal(whole, data)
    np.testing.assert_array_equal(part, data[5:30, 3, :])


def test_spec_of_created_array_reopens_writable(s3: S3Server, s3_bucket: str,
                                                secret: str) -> None:
    ep = s3.endpoint_url
    url = f"s3://{s3_bucket}/vol.zarr"
    dst = create_array(url, shape=SHAPE, chunks=CHUNKS, dtype="uint16", endpoint_url=ep)
    spec = dst.to_spec()
    assert spec.params["endpoint_url"] == ep and spec.params.get("mode") == "r+"
    assert_no_secret(secret, spec.to_json(), repr(dst), pickle.dumps(dst))
    reopened = from_spec(spec)
    reopened[0:8, 0:8, 0:8] = 3
    np.testing.assert_array_equal(peers.zarr_read(ep, url)[0:8, 0:8, 0:8], 3)


def test_credentials_are_refused_as_arguments(s3: S3Server, s3_bucket: str, secret: str) -> None:
    url = f"s3://{s3_bucket}/vol.zarr"
    with pytest.raises(TypeError) as info:
        open_source(url, endpoint_url=s3.endpoint_url, aws_secret_access_key=secret)
    assert secret not in str(info.value)


# ---------------------------------------------------------------------------------------------
# Errors name the URL, after bounded time.


def test_missing_bucket(s3: S3Server) -> None:
    url = "s3://no-such-bucket-anywhere/vol.zarr"
    with pytest.raises((FileNotFoundError, ValueError)) as info:
        open_source(url, endpoint_url=s3.endpoint_url)
    assert "no-such-bucket-anywhere" in str(info.value)


@pytest.mark.parametrize("suffix", [".zarr", ".n5"])
def test_missing_key(s3: S3Server, s3_bucket: str, suffix: str) -> None:
    url = f"s3://{s3_bucket}/missing{suffix}"
    with pytest.raises((FileNotFoundError, ValueError)) as info:
        open_source(url, endpoint_url=s3.endpoint_url)
    assert url in str(info.value)
    peers.zarr_write(s3.endpoint_url, f"s3://{s3_bucket}/vol.zarr", oracle(), chunks=CHUNKS)
    with pytest.raises((FileNotFoundError, ValueError, KeyError)) as info:
        open_source(f"s3://{s3_bucket}/vol.zarr", "no/such/array", endpoint_url=s3.endpoint_url)
    assert "no/such/array" in str(info.value)


def test_corrupt_chunk_names_the_url(s3: S3Server, s3_bucket: str) -> None:
    url = f"s3://{s3_bucket}/vol.zarr"
    peers.zarr_write(s3.endpoint_url, url, oracle(), chunks=CHUNKS)
    s3.put(s3_bucket, "vol.zarr/c/0/0/0", b"not zstd at all")
    src = open_source(url, endpoint_url=s3.endpoint_url)
    with pytest.raises(OSError) as info:
        src[0:8, 0:8, 0:8]
    assert s3_bucket in str(info.value)


def bounded(call: Callable[[], Any], seconds: float = 120.0) -> BaseException:
    """Run ``call``, which must raise within ``seconds``; the exception."""
    start = time.monotonic()
    try:
        call()
    except Exception as exc:  # noqa: BLE001  (the caller checks the type)
        elapsed = time.monotonic() - start
        assert elapsed < seconds, f"took {elapsed:.0f} s to fail: {exc!r}"
        return exc
    raise AssertionError("no error raised")


def test_unreachable_endpoint() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    url = "s3://some-bucket/vol.zarr"
    exc = bounded(lambda: open_source(url, endpoint_url=endpoint))
    assert isinstance(exc, ConnectionError), repr(exc)
    assert url in str(exc) or "some-bucket" in str(exc), str(exc)

    exc = bounded(lambda: create_array(url, shape=(4, 4), chunks=(2, 2), dtype="uint8",
                                       endpoint_url=endpoint))
    assert isinstance(exc, ConnectionError), repr(exc)
    assert "some-bucket" in str(exc), str(exc)


def test_server_gone_while_reading(object_store_servers_script: Any) -> None:
    """A handle whose server stops answering: a ConnectionError naming the URL, not a hang."""
    data = oracle(seed=16)
    with object_store_servers_script.s3_server() as private:
        ep = private.url
        bucket = "gone"
        import boto3

        boto3.client("s3", endpoint_url=ep, region_name=REGION).create_bucket(Bucket=bucket)
        url = f"s3://{bucket}/vol.zarr"
        peers.zarr_write(ep, url, data, chunks=CHUNKS)
        src = open_source(url, endpoint_url=ep, chunk_cache_bytes=0)
        np.testing.assert_array_equal(src[0:8], data[0:8])
    exc = bounded(lambda: src[...])
    assert isinstance(exc, ConnectionError), repr(exc)
    assert bucket in str(exc), str(exc)


def test_authenticating_server_denies_unknown_credentials(s3_auth_server: S3AuthServer) -> None:
    """The server of ``test_denied_access`` itself: boto3 with the session's credentials is
    denied, with the allowed user's it is not."""
    import botocore.exceptions

    server = s3_auth_server
    server.put(server.bucket, "probe", b"x")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        server.client(aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"]).get_object(
            Bucket=server.bucket, Key="probe")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert server.client().get_object(Bucket=server.bucket, Key="probe")["Body"].read() == b"x"


def test_denied_access(s3_auth_server: S3AuthServer, monkeypatch: pytest.MonkeyPatch,
                       secret: str) -> None:
    """Credentials the server does not know: PermissionError naming the URL, for reads, writes
    and anonymous requests."""
    server = s3_auth_server
    ep = server.endpoint_url
    url = f"s3://{server.bucket}/denied.zarr"
    data = oracle(seed=17)
    with monkeypatch.context() as allowed:
        for name, value in server.env.items():
            allowed.setenv(name, value)
        peers.zarr_write(ep, url, data, chunks=CHUNKS)

    for kwargs in ({}, {"anonymous": True}):
        with pytest.raises(PermissionError) as info:
            open_source(url, endpoint_url=ep, **kwargs)
        assert server.bucket in str(info.value), str(info.value)
        assert secret not in str(info.value)
    # (not anonymously: moto answers an unsigned request for a missing key with a 500)
    with pytest.raises(PermissionError) as info:
        create_array(f"s3://{server.bucket}/new.zarr", shape=(4, 4), chunks=(2, 2),
                     dtype="uint8", endpoint_url=ep)
    assert server.bucket in str(info.value)
    assert server.keys(server.bucket, "new.zarr") == []


def test_allowed_access_on_authenticating_server(s3_auth_server: S3AuthServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The positive control of ``test_denied_access``: the allowed user's credentials, from the
    environment, read and write."""
    server = s3_auth_server
    ep = server.endpoint_url
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    url = f"s3://{server.bucket}/allowed.zarr"
    data = oracle(seed=18)
    dst = create_array(url, shape=SHAPE, chunks=CHUNKS, dtype=data.dtype, endpoint_url=ep)
    dst[...] = data
    np.testing.assert_array_equal(peers.zarr_read(ep, url), data)
    src = open_source(url, endpoint_url=ep)
    np.testing.assert_array_equal(src[...], data)
    assert server.secret_key not in src.to_spec().to_json()
    assert server.secret_key.encode() not in pickle.dumps(src)


# ---------------------------------------------------------------------------------------------
# The core's store functions on S3 (what the Python side builds groups and metadata with).


def test_core_store_functions(s3: S3Server, s3_bucket: str) -> None:
    from bioimage_py import _core

    options = s3.storage_options
    root = f"s3://{s3_bucket}/store.zarr"
    assert _core.store_get(root, "zarr.json", storage_options=options) is None
    assert _core.store_list_dir(root, "", storage_options=options) == ([], [])
    _core.store_put(root, "zarr.json", b'{"zarr_format": 3}', storage_options=options)
    _core.store_put(root, "a/b/zarr.json", b"{}", storage_options=options)
    _core.store_put(root, "a/c/0", bytes(range(256)) * 1000, storage_options=options)
    _core.store_put(root, "a/x", b"", storage_options=options)
    assert _core.store_get(root, "zarr.json", storage_options=options) == b'{"zarr_format": 3}'
    assert _core.store_get(root, "a/c/0", storage_options=options) == bytes(range(256)) * 1000
    assert _core.store_get(root, "a/x", storage_options=options) == b""
    assert s3.keys(s3_bucket) == ["store.zarr/a/b/zarr.json", "store.zarr/a/c/0",
                                  "store.zarr/a/x", "store.zarr/zarr.json"]
    assert _core.store_list_dir(root, "", storage_options=options) == (["zarr.json"], ["a"])
    assert _core.store_list_dir(root, "a", storage_options=options) == (["x"], ["b", "c"])
    assert _core.store_list_dir(root, "a/", storage_options=options) == (["x"], ["b", "c"])
    assert _core.store_list_dir(root, "missing", storage_options=options) == ([], [])

    _core.store_delete_prefix(root, "a/c", storage_options=options)
    assert s3.keys(s3_bucket) == ["store.zarr/a/b/zarr.json", "store.zarr/a/x",
                                  "store.zarr/zarr.json"]
    # a prefix is a folder, not a string prefix: "a/b" does not delete "a/bc..."
    _core.store_put(root, "a/bc", b"keep", storage_options=options)
    _core.store_delete_prefix(root, "a/b", storage_options=options)
    assert _core.store_get(root, "a/bc", storage_options=options) == b"keep"
    _core.store_delete_prefix(root, "", storage_options=options)
    assert s3.keys(s3_bucket) == []


@pytest.mark.parametrize("name", ["with space", "plus+sign", "unicode-ü-é"])
def test_keys_that_need_encoding(s3: S3Server, s3_bucket: str, name: str) -> None:
    """Keys that need percent-encoding in requests are stored as given (what zarr-python,
    tensorstore and boto3 see): written by zarr-python and read by ours, and the other way."""
    ep = s3.endpoint_url
    data = oracle(seed=19)
    url = f"s3://{s3_bucket}/{name}/vol.zarr"
    peers.zarr_write(ep, url, data, chunks=CHUNKS, shards=SHARDS)
    np.testing.assert_array_equal(open_source(url, endpoint_url=ep)[...], data)
    out = f"s3://{s3_bucket}/out {name}.n5"
    create_array(out, "raw data", shape=SHAPE, chunks=CHUNKS, dtype=data.dtype,
                 endpoint_url=ep)[...] = data
    assert f"out {name}.n5/raw data/attributes.json" in s3.keys(s3_bucket)
    np.testing.assert_array_equal(peers.ts_read(ep, out + "/raw data", "n5"), data)


def test_cli_info_of_an_s3_url(s3: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    url = f"s3://{s3_bucket}/info.zarr"
    peers.zarr_write(s3.endpoint_url, url, oracle(seed=20), chunks=CHUNKS, shards=SHARDS)
    done = run_cli("info", url, "--endpoint-url", s3.endpoint_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "37" in done.stdout and "uint16" in done.stdout
