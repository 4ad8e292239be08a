"""Native zarr (v2, v3, sharded) and N5 read over plain HTTP, read-only.

zarr-python and z5py write arrays into a folder that a real HTTP server (Python's
``http.server`` in a child process, with the Range requests sharded reads need) serves;
``open_source("http://...")`` reads them through the Rust core, voxel-exact against numpy.
Writes to an HTTP URL are refused naming the URL; specs reopen in other processes.
"""
from __future__ import annotations

import multiprocessing
import pickle
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import z5py
import zarr

import bioimage_py as bp
from bioimage_py import create_array, open_source
from bioimage_py.sources import SourceSpec, from_spec

import remote_peers as peers
from remote_peers import CHUNKS, SHAPE, assert_reads_like, oracle

if TYPE_CHECKING:  # the plugin module is loaded by pytest (pytest_plugins), not imported here
    from object_store_servers import HttpServer

pytest_plugins = ["object_store_servers"]

SHARDS = (16, 16, 8)
FILL = 7
# ---------------------------------------------------------------------------------------------
# The test server itself.


def fetch(url: str, range_header: str | None = None,
          method: str = "GET") -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, method=method)
    if range_header is not None:
        request.add_header("Range", range_header)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), b""


def test_server_answers_byte_ranges(http_server: HttpServer) -> None:
    folder, url = http_server.new_folder("ranges")
    content = bytes(range(256)) * 4
    (folder / "blob").write_bytes(content)
    (folder / "sub").mkdir()
    size = len(content)

    status, headers, body = fetch(f"{url}/blob")
    assert status == 200 and body == content and headers["Accept-Ranges"] == "bytes"
    for header, start, stop in [("bytes=10-19", 10, 20), ("bytes=1000-", 1000, size),
                                ("bytes=-7", size - 7, size), ("bytes=-5000", 0, size),
                                ("bytes=1020-9999", 1020, size), ("bytes=0-0", 0, 1)]:
        status, headers, body = fetch(f"{url}/blob", header)
        assert status == 206, header
        assert headers["Content-Range"] == f"bytes {start}-{stop - 1}/{size}", header
        assert body == content[start:stop], header
    for header in ["bytes=1024-", "bytes=5000-6000", "bytes=-0"]:
        status, headers, _ = fetch(f"{url}/blob", header)
        assert status == 416 and headers["Content-Range"] == f"bytes */{size}", header
    status, headers, body = fetch(f"{url}/blob", method="HEAD")
    assert status == 200 and headers["Content-Length"] == str(size) and body == b""
    for missing in ["missing", "sub", "sub/"]:
        assert fetch(f"{url}/{missing}")[0] == 404, missing


# ---------------------------------------------------------------------------------------------
# Reading zarr and N5 written by the peers.

LAYOUTS = {
    "zarr-v2": {"zarr_format": 2},
    "zarr-v3": {"zarr_format": 3},
    "zarr-v3-sharded": {"zarr_format": 3, "shards": SHARDS},
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_read_zarr_over_http(http_server: HttpServer, layout: str) -> None:
    folder, base = http_server.new_folder(layout)
    data = oracle(seed=1)
    zarr.create_array(str(folder / "vol.zarr"), shape=SHAPE, chunks=CHUNKS, dtype=data.dtype,
                      **LAYOUTS[layout])[...] = data
    url = f"{base}/vol.zarr"
    src = open_source(url)
    assert src.path == url and not src.writable
    assert src.chunks == CHUNKS
    assert_reads_like(src, data)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_missing_chunks_over_http(http_server: HttpServer, layout: str) -> None:
    folder, base = http_server.new_folder(layout)
    data = oracle(seed=2)
    written = (slice(0, 16), slice(8, 24), slice(0, 23))
    array = zarr.create_array(str(folder / "vol.zarr"), shape=SHAPE, chunks=CHUNKS,
                              dtype=data.dtype, fill_value=FILL, **LAYOUTS[layout])
    array[written] = data[written]
    expected = np.full(SHAPE, FILL, dtype=data.dtype)
    expected[written] = data[written]
    src = open_source(f"{base}/vol.zarr")
    assert_reads_like(src, expected)
    assert src.chunk_exists((0, 1, 0)) and not src.chunk_exists((4, 3, 2))


def test_arrays_in_a_group_over_http(http_server: HttpServer) -> None:
    folder, base = http_server.new_folder("group")
    raw = oracle(seed=3)
    group = zarr.open_group(str(folder / "group.zarr"), mode="w")
    group.create_array("raw/s0", shape=SHAPE, chunks=CHUNKS, shards=SHARDS,
                       dtype=raw.dtype)[...] = raw
    group.create_array("labels", shape=(4, 4), chunks=(2, 2), dtype="uint8")
    src = open_source(f"{base}/group.zarr", "raw/s0")
    assert src.internal_path == "raw/s0"
    assert_reads_like(src, raw)
    # HTTP cannot list keys: without an internal path the error says to name the array
    with pytest.raises(ValueError) as info:
        open_source(f"{base}/group.zarr")
    assert f"{base}/group.zarr" in str(info.value)


def test_read_n5_over_http(http_server: HttpServer) -> None:
    folder, base = http_server.new_folder("n5")
    data = oracle(seed=4)
    f = z5py.File(str(folder / "vol.n5"), "w", use_zarr_format=False)
    f.create_dataset("raw", data=data, chunks=CHUNKS, compression="gzip")
    src = open_source(f"{base}/vol.n5", "raw")
    assert_reads_like(src, data)


def test_read_our_local_writes_over_http(http_server: HttpServer) -> None:
    folder, base = http_server.new_folder("ours")
    data = oracle(seed=5)
    create_array(folder / "vol.zarr", shape=SHAPE, chunks=CHUNKS, shards=SHARDS,
                 dtype=data.dtype)[...] = data
    assert_reads_like(open_source(f"{base}/vol.zarr"), data)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_server_without_range_requests(http_server_without_ranges: HttpServer,
                                       layout: str) -> None:
    """A server that answers every GET with the whole file (plain ``http.server``): unsharded
    arrays read whole chunks and need no ranges; a sharded read takes what it needs from the
    whole shard (slower, never wrong)."""
    folder, base = http_server_without_ranges.new_folder(layout)
    data = oracle(seed=9)
    zarr.create_array(str(folder / "vol.zarr"), shape=SHAPE, chunks=CHUNKS, dtype=data.dtype,
                      **LAYOUTS[layout])[...] = data
    status, headers, body = fetch(f"{base}/vol.zarr/zarr.json" if layout != "zarr-v2" else
                                  f"{base}/vol.zarr/.zarray", "bytes=0-3")
    assert status == 200 and len(body) > 4  # the server really ignores ranges
    assert_reads_like(open_source(f"{base}/vol.zarr"), data)


# ---------------------------------------------------------------------------------------------
# Read-only, errors, specs.


def test_writes_are_refused(http_server: HttpServer) -> None:
    folder, base = http_server.new_folder("readonly")
    data = oracle(seed=6)
    zarr.create_array(str(folder / "vol.zarr"), shape=SHAPE, chunks=CHUNKS,
                      dtype=data.dtype)[...] = data
    url = f"{base}/vol.zarr"
    with pytest.raises((PermissionError, ValueError)) as info:
        create_array(f"{base}/new.zarr", shape=(4, 4), chunks=(2, 2), dtype="uint8")
    assert f"{base}/new.zarr" in str(info.value)
    for mode in ("r+", "a", "w"):
        with pytest.raises((PermissionError, ValueError)) as info:
            open_source(url, mode=mode)
        assert url in str(info.value), mode
    src = open_source(url)
    with pytest.raises(TypeError):
        src[0:2] = 0
    np.testing.assert_array_equal(src[...], data)  # nothing was changed
    assert not (folder / "new.zarr").exists()


def test_missing_url(http_server: HttpServer) -> None:
    _, base = http_server.new_folder("missing")
    for url in (f"{base}/missing.zarr", f"{base}/missing.n5"):
        with pytest.raises((FileNotFoundError, ValueError)) as info:
            open_source(url)
        assert url in str(info.value)


def test_unreachable_http_server() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/vol.zarr"
    start = time.monotonic()
    with pytest.raises(ConnectionError) as info:
        open_source(url)
    assert time.monotonic() - start < 120
    assert url in str(info.value) or f"127.0.0.1:{port}" in str(info.value)


def test_storage_options_for_http(http_server: HttpServer) -> None:
    """``endpoint_url`` and ``region`` configure S3 and GCS, not HTTP: refused, not ignored."""
    _, base = http_server.new_folder("options")
    with pytest.raises(ValueError):
        open_source(f"{base}/vol.zarr", endpoint_url="http://127.0.0.1:1")


def test_spec_reopens_in_another_process(http_server: HttpServer) -> None:
    folder, base = http_server.new_folder("spec")
    data = oracle(seed=7)
    zarr.create_array(str(folder / "vol.zarr"), shape=SHAPE, chunks=CHUNKS, shards=SHARDS,
                      dtype=data.dtype, zarr_format=3)[...] = data
    url = f"{base}/vol.zarr"
    src = open_source(url)
    spec = src.to_spec()
    assert spec.path == url and spec.params.get("mode", "r") == "r"
    text = spec.to_json()
    assert SourceSpec.from_json(text) == spec
    np.testing.assert_array_equal(from_spec(spec)[...], data)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(src))[3:9], data[3:9])
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        got = pool.submit(peers.read_from_spec_json, text, (slice(2, 30), 4)).result(timeout=300)
    np.testing.assert_array_equal(got, data[2:30, 4])


def test_copy_http_to_local(http_server: HttpServer, tmp_path: Path) -> None:
    folder, base = http_server.new_folder("copy")
    data = oracle(seed=8)
    zarr.create_array(str(folder / "vol.zarr"), shape=SHAPE, chunks=CHUNKS, zarr_format=2,
                      dtype=data.dtype)[...] = data
    out = create_array(tmp_path / "out.zarr", shape=SHAPE, chunks=CHUNKS, dtype=data.dtype)
    bp.copy(open_source(f"{base}/vol.zarr"), out, job_type="subprocess",
            job_config={"start_method": "spawn"}, num_workers=2)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "out.zarr"))[...], data)


def test_core_store_functions_over_http(http_server: HttpServer) -> None:
    from bioimage_py import _core

    folder, base = http_server.new_folder("store")
    (folder / "a").mkdir()
    (folder / "a" / "key").write_bytes(b"value")
    (folder / "empty").write_bytes(b"")
    assert _core.store_get(base, "a/key") == b"value"
    assert _core.store_get(base, "empty") == b""
    assert _core.store_get(base, "a/missing") is None
    assert _core.store_get(base, "a") is None  # a folder is no key
    with pytest.raises(PermissionError) as info:
        _core.store_put(base, "a/new", b"x")
    assert base in str(info.value)
    with pytest.raises(PermissionError):
        _core.store_delete_prefix(base, "a")
    with pytest.raises(ValueError) as info:
        _core.store_list_dir(base, "")
    assert base in str(info.value)
    assert not (folder / "a" / "new").exists() and (folder / "a" / "key").exists()
