"""Faults and concurrency of the native zarr (v2, v3, sharded) and N5 arrays.

Corrupt chunks and metadata raise Python exceptions naming the array and the chunk; a writer
killed mid-run (SIGKILL) leaves only whole chunks; several processes write chunk-aligned blocks
at once; forked processes read and write without hanging; the decoded-chunk cache stays bounded
and never serves stale data after a write through the same handle; specs and pickles reopen the
native arrays with the same options. Every child process runs under a timeout, so a hang fails
the test instead of blocking the run.
"""
from __future__ import annotations

import bz2
import functools
import gzip
import itertools
import json
import lzma
import multiprocessing
import os
import pickle
import re
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path
from typing import Any

import crc32c
import numcodecs
import numpy as np
import pytest
import z5py
import zarr

import bioimage_py as bp
from bioimage_py._core import NativeArray
from bioimage_py import create_array
from bioimage_py.sources import FileSource, SourceSpec, from_spec


KINDS = ["zarr-v2", "zarr-v3", "zarr-sharded", "n5"]
TIMEOUT = 60  # seconds any child process may take before the test calls it a hang


def make_array(kind: str, root: Path, shape, chunks, dtype="int32", *, key: str = "g/a",
               shards=None, **kwargs) -> FileSource:
    """A native array of ``kind`` at ``key`` (sharded: ``shards`` default twice the chunks)."""
    if kind == "n5":
        return create_array(root / "c.n5", key, shape=shape, chunks=chunks, dtype=dtype, **kwargs)
    return create_array(
        root / "c.zarr", key, shape=shape, chunks=chunks, dtype=dtype,
        zarr_format=2 if kind == "zarr-v2" else 3,
        shards=(shards or tuple(2 * c for c in chunks)) if kind == "zarr-sharded" else None,
        **kwargs,
    )


def peer_read(src: FileSource) -> np.ndarray:
    """The whole array as zarr-python or z5py reads it from disk."""
    if src.format == "n5":
        with z5py.File(src.path, "r") as f:
            return f[src.internal_path][...]
    return np.asarray(zarr.open_array(src.path, path=src.internal_path, mode="r")[...])


def content(shape, seed: int, dtype="int32") -> np.ndarray:
    return np.random.default_rng(seed).integers(-(10**6), 10**6, size=shape).astype(dtype)


def grid(shape, chunks):
    return list(itertools.product(*(range(-(-n // c)) for n, c in zip(shape, chunks))))


def region_of(coords, chunks, shape) -> tuple[slice, ...]:
    return tuple(slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(coords, chunks, shape))


def storage_unit_files(src: FileSource) -> dict[tuple[int, ...], Path]:
    """The file of each stored chunk (each shard, when sharded), by its grid coordinates."""
    array_dir = Path(src.path, src.internal_path)
    unit = src.shards or src.chunks
    files = {}
    for coords in grid(src.shape, unit):
        if src.format == "n5":
            name = "/".join(str(c) for c in coords[::-1])
        elif (array_dir / ".zarray").exists():
            name = ".".join(str(c) for c in coords)
        else:
            name = "c/" + "/".join(str(c) for c in coords)
        if (array_dir / name).is_file():
            files[coords] = array_dir / name
    return files


def chunks_in_unit(src: FileSource, unit_coords) -> list[tuple[int, ...]]:
    """The chunk coordinates inside one storage unit (the chunk itself unless sharded)."""
    if not src.shards:
        return [tuple(unit_coords)]
    per = [s // c for s, c in zip(src.shards, src.chunks)]
    ranges = [range(u * p, min((u + 1) * p, -(-n // c)))
              for u, p, n, c in zip(unit_coords, per, src.shape, src.chunks)]
    return list(itertools.product(*ranges))


# ---------------------------------------------------------------------------------------------
# corrupt chunk files

CORRUPTIONS = {
    "truncated-half": lambda b: b[: len(b) // 2],
    "one-byte-short": lambda b: b[:-1],
    "empty": lambda b: b"",
    "garbage": lambda b: bytes((i * 37 + 11) % 256 for i in range(len(b))),
    "header-only": lambda b: b[:4],
}


@pytest.mark.parametrize("compression", ["default", "raw"])
@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
@pytest.mark.parametrize("kind", KINDS)
def test_corrupt_chunk_raises_oserror_naming_array_and_chunk(tmp_path, kind, corruption,
                                                             compression):
    if compression == "raw" and corruption == "garbage" and kind in ("zarr-v2", "zarr-v3"):
        pytest.skip("raw chunk bytes of the right length carry no check to fail")
    shape, chunks = (9, 10), (4, 4)
    kwargs = {} if compression == "default" else {"compression": "raw"}
    src = make_array(kind, tmp_path, shape, chunks, shards=(8, 8), **kwargs)
    data = content(shape, 1)
    src[...] = data
    files = storage_unit_files(src)
    bad_unit = max(files)  # the last stored unit: an edge chunk (or a partial shard)
    files[bad_unit].write_bytes(CORRUPTIONS[corruption](files[bad_unit].read_bytes()))
    bad_chunks = chunks_in_unit(src, bad_unit)

    for reader in (bp.open_source(src.path, src.internal_path),
                   bp.open_source(src.path, src.internal_path, chunk_cache_bytes=0)):
        with pytest.raises(OSError) as info:
            reader[...]
        message = str(info.value)
        assert reader.array.path in message
        assert any(f"chunk {list(c)}" in message for c in bad_chunks), message
        # chunks elsewhere still read
        good = region_of((0, 0), chunks, shape)
        np.testing.assert_array_equal(reader[good], data[good])

    # a partial write into the corrupt chunk must not silently replace what it cannot read
    writer = bp.open_source(src.path, src.internal_path, mode="r+")
    inside = region_of(bad_chunks[0], chunks, shape)
    corner = tuple(slice(s.start, s.start + 1) for s in inside)
    with pytest.raises(OSError):
        writer[corner] = 5
    # rewriting the whole storage unit repairs it (whole chunks are written without reading)
    whole = region_of(bad_unit, src.shards or chunks, shape)
    writer[whole] = data[whole]
    np.testing.assert_array_equal(writer[...], data)
    np.testing.assert_array_equal(peer_read(src), data)


def test_corrupt_chunk_errors_cross_into_python_without_a_crash(tmp_path):
    """The same reads in a child process: it exits normally, having caught an OSError for each
    corrupt chunk (a panic or abort would show as a signal or a non-zero exit code)."""
    shape, chunks = (8, 8), (4, 4)
    for kind in KINDS:
        root = tmp_path / kind
        src = make_array(kind, root, shape, chunks, shards=(8, 8))
        src[...] = 1
        for path in storage_unit_files(src).values():
            path.write_bytes(path.read_bytes()[:3])
    script = textwrap.dedent("""
        import sys
        import bioimage_py as bp
        caught = 0
        for kind in ("zarr-v2", "zarr-v3", "zarr-sharded", "n5"):
            name = "c.n5" if kind == "n5" else "c.zarr"
            src = bp.open_source(sys.argv[1] + "/" + kind + "/" + name, "g/a")
            for index in [(0, 0), (slice(None),), (slice(2, 6), slice(3, 7))]:
                try:
                    src[index]
                except OSError:
                    caught += 1
        print(caught)
    """)
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["12"]


# ---------------------------------------------------------------------------------------------
# corrupt metadata

METADATA_FILE = {"zarr-v2": ".zarray", "zarr-v3": "zarr.json", "zarr-sharded": "zarr.json",
                 "n5": "attributes.json"}


def corrupt_metadata(kind: str, text: str, how: str) -> str:
    metadata = json.loads(text)
    if how == "truncated":
        return text[: len(text) // 2]
    if how == "empty":
        return ""
    if how == "not-json":
        return "this is { not json"
    if how == "not-an-object":
        return "[1, 2]"
    if how == "missing-shape":
        metadata.pop("shape")
    elif how == "bad-dtype":
        field = {"zarr-v2": "dtype", "n5": "dataType"}.get(kind, "data_type")
        metadata[field] = "complex-thing"
    elif how == "bad-chunks":
        field = {"zarr-v2": "chunks", "n5": "blockSize"}.get(kind)
        if field:
            metadata[field] = [0] * len(metadata[field])
        else:
            metadata["chunk_grid"]["configuration"]["chunk_shape"] = "many"
    elif how == "unknown-codec":
        if kind == "zarr-v2":
            metadata["compressor"] = {"id": "no-such-codec"}
        elif kind == "n5":
            metadata["compression"] = {"type": "no-such-codec"}
        else:
            metadata["codecs"].append({"name": "no-such-codec", "configuration": {}})
    return json.dumps(metadata)


METADATA_CASES = [
    pytest.param(kind, how, key, id=f"{kind}-{how}-{'root' if not key else 'nested'}")
    for kind in KINDS
    for how in ["truncated", "empty", "not-json", "not-an-object", "missing-shape", "bad-dtype",
                "bad-chunks", "unknown-codec"]
    for key in ["g/a", ""]
    if not (kind == "n5" and how == "missing-shape")  # an N5 node without dimensions is a group
]


@pytest.mark.parametrize(("kind", "how", "key"), METADATA_CASES)
def test_corrupt_metadata_raises_valueerror_naming_the_path(tmp_path, kind, how, key):
    src = make_array(kind, tmp_path, (6, 7), (4, 4), key=key)
    src[...] = 3
    array_dir = Path(src.path, key)
    metadata = array_dir / METADATA_FILE[kind]
    metadata.write_text(corrupt_metadata(kind, metadata.read_text(), how))
    with pytest.raises(ValueError) as info:
        bp.open_source(src.path, key or None)
    assert str(array_dir).rstrip("/") in str(info.value)


# ---------------------------------------------------------------------------------------------
# a writer killed mid-run

WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    import bioimage_py as bp

    path, key, seed, how = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    src = bp.open_source(path, key, mode="r+")
    new = np.random.default_rng(seed).integers(-10**6, 10**6, size=src.shape).astype(src.dtype)
    print("start", flush=True)
    if how == "bulk":  # one call: chunks encoded and written in parallel
        src[...] = new
    else:  # one call per chunk, in a shuffled order
        grid = [-(-n // c) for n, c in zip(src.shape, src.chunks)]
        coords = np.array(list(np.ndindex(*grid)))
        np.random.default_rng(seed + 1).shuffle(coords)
        for chunk in coords:
            src[tuple(slice(k * c, (k + 1) * c) for k, c in zip(chunk, src.chunks))] = new[
                tuple(slice(k * c, (k + 1) * c) for k, c in zip(chunk, src.chunks))]
            print("chunk", flush=True)
    print("done", flush=True)
""")


def run_writer(src: FileSource, seed: int, how: str, kill: tuple[int, float] | None) -> None:
    """Run ``WRITER`` on ``src``; with ``kill = (lines, delay)``, SIGKILL it ``delay`` seconds
    after it printed ``lines`` lines (``start`` is the first)."""
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, src.path, src.internal_path, str(seed), how],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = 0
        for line in process.stdout:
            lines += 1
            if line.strip() == "done":
                break
            if kill is not None and lines >= kill[0]:
                time.sleep(kill[1])
                process.send_signal(signal.SIGKILL)
                break
        process.wait(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        stderr = process.stderr.read()
        process.stderr.close()
    expected_codes = (0,) if kill is None else (0, -signal.SIGKILL)
    assert process.returncode in expected_codes, stderr


KILLS = [("bulk", (1, 0.003)), ("bulk", (1, 0.008)), ("chunks", (4, 0.0005))]


@pytest.mark.parametrize("kind", KINDS)
def test_writer_killed_mid_run_leaves_only_whole_chunks(tmp_path, kind):
    """SIGKILL lands inside bulk writes (many chunks being encoded, written and renamed in
    parallel) and inside a loop of chunk writes. Chunks are raw (uncompressed), so a torn one
    would show as a wrong size or wrong content. Every chunk is then its old or its new content;
    leftover temporary files are dot-files that nothing takes for a chunk; a rerun completes."""
    shape, chunks = (16, 128, 256), (1, 128, 256)  # 256 KiB chunks: writes take a while
    src = make_array(kind, tmp_path, shape, chunks, dtype="float64", shards=(2, 128, 256),
                     compression="raw")
    old = content(shape, 10, "float64")
    src[...] = old
    new = np.random.default_rng(7).integers(-(10**6), 10**6, size=shape).astype("float64")
    array_dir = Path(src.path, src.internal_path)
    for how, kill in KILLS:
        run_writer(src, seed=7, how=how, kill=kill)
        after = bp.open_source(src.path, src.internal_path, chunk_cache_bytes=0)[...]
        np.testing.assert_array_equal(peer_read(src), after)  # the peers agree on every byte
        for coords in grid(shape, chunks):
            where = region_of(coords, chunks, shape)
            assert (np.array_equal(after[where], old[where])
                    or np.array_equal(after[where], new[where])), f"chunk {coords} is torn"
        temporaries = [p for p in array_dir.rglob("*") if p.is_file() and "partial" in p.name]
        assert all(p.name.startswith(".") and p.name.endswith(".partial") for p in temporaries)
        assert bp.io.open_file(src.path).list_arrays() == ["g/a"]
        old = after
    # rerun to completion: exactly the new array, whatever temporaries the kills left behind
    run_writer(src, seed=7, how="chunks", kill=None)
    np.testing.assert_array_equal(bp.open_source(src.path, src.internal_path)[...], new)
    np.testing.assert_array_equal(peer_read(src), new)
    reader = bp.open_source(src.path, src.internal_path)
    assert all(reader.chunk_exists(c) for c in grid(shape, chunks))


# ---------------------------------------------------------------------------------------------
# several processes writing at once


def write_blocks(spec: SourceSpec, blocks: list, block_shape: tuple[int, ...], seed: int) -> int:
    """Worker: write each block of ``blocks`` (grid coordinates in units of ``block_shape``)."""
    src = from_spec(spec)
    expected = content(src.shape, seed, src.dtype)
    for coords in blocks:
        where = region_of(coords, block_shape, src.shape)
        src[where] = expected[where]
    return len(blocks)


@pytest.mark.parametrize("kind", KINDS)
def test_chunk_aligned_writes_from_several_processes(tmp_path, kind):
    shape, chunks = (37, 29, 11), (8, 8, 6)
    src = make_array(kind, tmp_path, shape, chunks, dtype="uint32", shards=(16, 8, 12))
    # sharded arrays: a shard is one file, so blocks must be shard-aligned
    block_shape = src.shards or src.chunks
    blocks = grid(shape, block_shape)
    n_workers = 3
    assignments = [blocks[i::n_workers] for i in range(n_workers)]  # neighbours interleaved
    spec = src.to_spec()
    with multiprocessing.get_context("spawn").Pool(n_workers) as pool:
        result = pool.starmap_async(
            write_blocks, [(spec, part, block_shape, 3) for part in assignments])
        assert sum(result.get(timeout=TIMEOUT)) == len(blocks)
    expected = content(shape, 3, "uint32")
    np.testing.assert_array_equal(src[...], expected)
    np.testing.assert_array_equal(peer_read(src), expected)


def hammer_chunk(spec: SourceSpec, value: int, rounds: int) -> int:
    """Worker: rewrite chunk (0, 0) with ``value`` (and a per-round pattern) many times."""
    src = from_spec(spec)
    for i in range(rounds):
        src[0:16, 0:16] = value * 1000 + i % 3
    return rounds


@pytest.mark.parametrize("kind", KINDS)
def test_racing_whole_chunk_writes_never_tear_a_chunk(tmp_path, kind):
    """Two processes rewriting the same chunk (the same shard) race: the chunk read afterwards
    is entirely one writer's last content, never a mix."""
    src = make_array(kind, tmp_path, (32, 32), (16, 16), dtype="int32", shards=(16, 16))
    spec = src.to_spec()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        result = pool.starmap_async(hammer_chunk, [(spec, 1, 40), (spec, 2, 40)])
        assert result.get(timeout=TIMEOUT) == [40, 40]
    chunk = bp.open_source(src.path, src.internal_path)[0:16, 0:16]
    assert len(np.unique(chunk)) == 1
    assert int(chunk[0, 0]) in {1000, 1001, 1002, 2000, 2001, 2002}
    np.testing.assert_array_equal(peer_read(src)[0:16, 0:16], chunk)


# ---------------------------------------------------------------------------------------------
# fork after reads


def forked_child(src: FileSource, queue: Any) -> None:
    """Read through the inherited handle, write through it and through a new handle, report."""
    try:
        first = int(src[...].astype("int64").sum())
        src[0:8] = 5
        fresh = bp.open_source(src.path, src.internal_path, mode="r+")
        fresh[8:16] = 6
        src.array.clear_cache()
        queue.put(("ok", first, src[...].tolist()))
    except BaseException as err:  # report, never hang the parent
        queue.put(("error", repr(err), None))


def run_forked(target, args, timeout: float = TIMEOUT) -> None:
    process = multiprocessing.get_context("fork").Process(target=target, args=args)
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        pytest.fail(f"the forked process hung for {timeout} s")
    assert process.exitcode == 0


@pytest.mark.parametrize("kind", KINDS)
def test_forked_process_reads_and_writes_without_hanging(tmp_path, kind):
    shape, chunks = (32, 24), (8, 8)
    src = make_array(kind, tmp_path, shape, chunks, dtype="int16")
    src = bp.open_source(src.path, src.internal_path, mode="r+")
    data = content(shape, 4, "int16")
    src[...] = data
    # reads over many chunks: the thread pool and the cache exist before the fork
    np.testing.assert_array_equal(src[...], data)
    np.testing.assert_array_equal(src[3:29, 5:20], data[3:29, 5:20])
    assert src.array.cache_size_bytes > 0
    queue = multiprocessing.get_context("fork").Queue()
    run_forked(forked_child, (src, queue))
    status, first, after = queue.get(timeout=TIMEOUT)
    assert status == "ok", first
    assert first == int(data.astype("int64").sum())
    data[0:8], data[8:16] = 5, 6
    np.testing.assert_array_equal(np.array(after, "int16"), data)
    # the parent goes on working after its child did
    src.array.clear_cache()
    np.testing.assert_array_equal(src[...], data)
    src[16:24] = 7
    data[16:24] = 7
    np.testing.assert_array_equal(peer_read(src), data)


def block_sum(src: FileSource, index: int) -> int:
    src[index : index + 1] = index
    return int(src[index : index + 1].sum())


def test_fork_pool_after_reads(tmp_path):
    """A ``fork`` pool made after the parent read (the usual ``Pool().map`` over sources)."""
    src = make_array("zarr-v3", tmp_path, (12, 16), (1, 8), dtype="int32")
    src[...] = 1
    assert int(src[...].sum()) == 12 * 16
    with multiprocessing.get_context("fork").Pool(2) as pool:
        result = pool.starmap_async(block_sum, [(src, i) for i in range(12)])
        assert result.get(timeout=TIMEOUT) == [16 * i for i in range(12)]
    src.array.clear_cache()
    np.testing.assert_array_equal(src[...], np.repeat(np.arange(12), 16).reshape(12, 16))


# ---------------------------------------------------------------------------------------------
# the decoded-chunk cache


@pytest.mark.parametrize("kind", KINDS)
def test_cache_grows_on_reads_and_stays_bounded(tmp_path, kind):
    shape, chunks = (40, 36), (8, 8)  # edge chunks of 8 x 4
    chunk_bytes = 8 * 8 * 4
    src = make_array(kind, tmp_path, shape, chunks)
    data = content(shape, 2)
    src[...] = data
    bound = 20 * chunk_bytes
    reader = bp.open_source(src.path, src.internal_path, chunk_cache_bytes=bound)
    cache = reader.array
    assert (cache.chunk_cache_bytes, cache.cache_size_bytes) == (bound, 0)
    np.testing.assert_array_equal(reader[0:8, 0:8], data[0:8, 0:8])  # whole chunks only:
    assert cache.cache_size_bytes == 0  # aligned reads share no chunks, so they add nothing
    np.testing.assert_array_equal(reader[1:7, 1:7], data[1:7, 1:7])  # part of a chunk: cached
    assert cache.cache_size_bytes == chunk_bytes
    np.testing.assert_array_equal(reader[2:5, 3:12], data[2:5, 3:12])  # one chunk more
    assert cache.cache_size_bytes == 2 * chunk_bytes
    np.testing.assert_array_equal(reader[2:5, 3:12], data[2:5, 3:12])  # hits only
    assert cache.cache_size_bytes == 2 * chunk_bytes
    sizes = []
    for coords in grid(shape, chunks):  # small partial reads sweeping every chunk, twice
        for _ in range(2):
            where = tuple(slice(s.start, s.stop - 1) for s in region_of(coords, chunks, shape))
            np.testing.assert_array_equal(reader[where], data[where])
            sizes.append(cache.cache_size_bytes)
    assert max(sizes) <= bound
    assert sizes[-1] > bound - chunk_bytes  # full: least recently used chunks were evicted
    np.testing.assert_array_equal(reader[...], data)
    assert cache.cache_size_bytes <= bound
    cache.clear_cache()
    assert cache.cache_size_bytes == 0
    np.testing.assert_array_equal(reader[...], data)


@pytest.mark.parametrize("kind", KINDS)
def test_reads_larger_than_a_quarter_of_the_cache_do_not_fill_it(tmp_path, kind):
    """A full-volume read through a small cache neither evicts it nor doubles its memory."""
    shape, chunks = (40, 40), (8, 8)
    chunk_bytes = 8 * 8 * 4
    src = make_array(kind, tmp_path, shape, chunks)
    data = content(shape, 12)
    src[...] = data
    reader = bp.open_source(src.path, src.internal_path, chunk_cache_bytes=8 * chunk_bytes)
    np.testing.assert_array_equal(reader[...], data)
    assert reader.array.cache_size_bytes == 0
    np.testing.assert_array_equal(reader[8:16, 8:23], data[8:16, 8:23])  # under a quarter,
    assert reader.array.cache_size_bytes == 2 * chunk_bytes  # partial chunks: cached
    np.testing.assert_array_equal(reader[...], data)  # uses the hits, adds nothing
    assert reader.array.cache_size_bytes == 2 * chunk_bytes


@pytest.mark.parametrize("kind", KINDS)
def test_cache_holds_each_chunk_once_for_the_halo_pattern(tmp_path, kind):
    """Blocks of 16 with a halo of 4 re-read neighbouring chunks; each chunk is cached once."""
    shape, chunks = (32, 32), (8, 8)
    src = make_array(kind, tmp_path, shape, chunks, dtype="uint8")
    data = content(shape, 5, "uint8")
    src[...] = data
    reader = bp.open_source(src.path, src.internal_path)
    for i, j in itertools.product(range(0, 32, 16), repeat=2):
        outer = (slice(max(i - 4, 0), min(i + 20, 32)), slice(max(j - 4, 0), min(j + 20, 32)))
        np.testing.assert_array_equal(reader[outer], data[outer])
    assert reader.array.cache_size_bytes == 32 * 32  # every chunk, each once


@pytest.mark.parametrize("kind", KINDS)
def test_write_through_the_same_handle_invalidates_the_cache(tmp_path, kind):
    shape, chunks = (16, 16), (8, 8)
    src = make_array(kind, tmp_path, shape, chunks)
    handle = bp.open_source(src.path, src.internal_path, mode="r+", chunk_cache_bytes=1 << 20)
    data = content(shape, 6)
    handle[...] = data
    np.testing.assert_array_equal(handle[...], data)  # aligned: nothing cached
    assert handle.array.cache_size_bytes == 0
    np.testing.assert_array_equal(handle[1:15, 1:15], data[1:15, 1:15])  # every chunk cached
    assert handle.array.cache_size_bytes == 16 * 16 * 4
    handle[3:5, 6:10] = -1  # partial chunks (read-modify-write)
    data[3:5, 6:10] = -1
    np.testing.assert_array_equal(handle[...], data)
    handle[8:16, 8:16] = 9  # a whole chunk
    data[8:16, 8:16] = 9
    np.testing.assert_array_equal(handle[8:16, :], data[8:16, :])
    handle[0, 0] = 123  # one element
    data[0, 0] = 123
    assert handle[0, 0] == 123
    np.testing.assert_array_equal(handle[...], data)
    np.testing.assert_array_equal(peer_read(src), data)
    # another handle's write becomes visible after clear_cache
    other = bp.open_source(src.path, src.internal_path, mode="r+")
    other[...] = 0
    handle.array.clear_cache()
    np.testing.assert_array_equal(handle[...], np.zeros(shape, "int32"))


@pytest.mark.parametrize("kind", KINDS)
def test_zero_cache_bytes_disables_the_cache(tmp_path, kind):
    src = make_array(kind, tmp_path, (16, 16), (8, 8))
    data = content((16, 16), 8)
    src[...] = data
    reader = bp.open_source(src.path, src.internal_path, mode="r+", chunk_cache_bytes=0)
    assert reader.array.chunk_cache_bytes == 0
    for _ in range(2):
        np.testing.assert_array_equal(reader[...], data)
        assert reader.array.cache_size_bytes == 0
    reader[1:3, 1:3] = 4
    data[1:3, 1:3] = 4
    np.testing.assert_array_equal(reader[...], data)
    reader.array.clear_cache()  # harmless without a cache
    # a bound below one chunk caches nothing either
    tiny = bp.open_source(src.path, src.internal_path, chunk_cache_bytes=8 * 8 * 4 - 1)
    np.testing.assert_array_equal(tiny[...], data)
    assert tiny.array.cache_size_bytes == 0


def test_default_cache_bound():
    assert bp._core.DEFAULT_CHUNK_CACHE_BYTES == 256 * 2**20


# ---------------------------------------------------------------------------------------------
# specs and pickles reopen natively, with the same options


@pytest.mark.parametrize("kind", KINDS)
def test_spec_round_trip_keeps_cache_and_missing_chunk_options(tmp_path, kind):
    made = make_array(kind, tmp_path, (10, 12), (4, 4), chunk_cache_bytes=4096,
                      missing_chunks="error")
    assert made.to_spec().params == {"format": made.format, "mode": "r+",
                                     "chunk_cache_bytes": 4096, "missing_chunks": "error"}
    src = bp.open_source(made.path, "g/a", mode="a", chunk_cache_bytes=12345,
                         missing_chunks="error")
    spec = src.to_spec()
    assert spec.kind == "file"
    assert spec.params == {"format": src.format, "mode": "a", "chunk_cache_bytes": 12345,
                           "missing_chunks": "error"}
    for again in (spec, SourceSpec.from_json(spec.to_json()), pickle.loads(pickle.dumps(spec))):
        reopened = from_spec(again)
        assert isinstance(reopened, FileSource) and isinstance(reopened.array, NativeArray)
        assert reopened.array.chunk_cache_bytes == 12345
        assert reopened.array.missing_chunks == "error"
        assert reopened.writable and not reopened.array.read_only
        assert reopened.to_spec() == spec
    defaults = bp.open_source(made.path, "g/a").to_spec()
    assert defaults.params == {"format": made.format, "mode": "r"}


def open_from_pickle(payload: bytes) -> tuple:
    """Worker: unpickle a FileSource, report how it was reopened, write a row."""
    src = pickle.loads(payload)
    src[1] = 77
    return (type(src.array).__name__, src.array.chunk_cache_bytes, src.array.missing_chunks,
            src.array.read_only, int(src[0].sum()))


@pytest.mark.parametrize("kind", KINDS)
def test_pickled_file_source_reopens_natively_in_another_process(tmp_path, kind):
    made = make_array(kind, tmp_path, (4, 6), (2, 3), dtype="int64")
    made[...] = 3
    src = bp.open_source(made.path, "g/a", mode="r+", chunk_cache_bytes=999,
                         missing_chunks="error")
    payload = pickle.dumps(src)
    local = pickle.loads(payload)
    assert isinstance(local.array, NativeArray) and local.array is not src.array
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result = pool.apply_async(open_from_pickle, (payload,)).get(timeout=TIMEOUT)
    assert result == ("NativeArray", 999, "error", False, 18)
    np.testing.assert_array_equal(peer_read(made)[1], [77] * 6)


# =============================================================================================
# Hostile input (issue 12, the Rust core): decompression bombs, absurd sizes in metadata,
# panics, damaged metadata JSON, fork after any read or write. Every case that could crash or
# hang runs in a child process: a crash shows as its return code, a hang as a timeout.

MiB = 1 << 20
CHUNK = (1024, 1024)  # uint8: 1 MiB chunks
BOMB_SHAPE = (1024, 3 * 1024)  # three chunks along axis 1; the bomb replaces the last one
BOMB_CHUNK = (0, 2)
# Memory a child may add on top of what it holds after opening an array, when reading one bomb
# chunk: ample for decoding a 1 MiB chunk, far less than any bomb below expands to.
HEADROOM = 96 * MiB


def _zeros(nbytes: int) -> np.ndarray:
    # np.zeros maps zero pages lazily: compressing it reads them without committing memory.
    return np.zeros(nbytes, np.uint8)


@functools.lru_cache(maxsize=None)
def deflate_bomb(nbytes: int) -> bytes:
    """Raw deflate data of ``nbytes`` zeros (about 1000 times smaller)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = _zeros(16 * MiB)
    pieces = [compressor.compress(zeros) for _ in range(nbytes // (16 * MiB))]
    return b"".join(pieces) + compressor.flush()


def _checksums(nbytes: int) -> tuple[int, int]:
    crc, adler = 0, 1
    zeros = _zeros(16 * MiB)
    for _ in range(nbytes // (16 * MiB)):
        crc, adler = zlib.crc32(zeros, crc), zlib.adler32(zeros, adler)
    return crc, adler


@functools.lru_cache(maxsize=None)
def gzip_bomb(nbytes: int) -> bytes:
    crc, _ = _checksums(nbytes)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + deflate_bomb(nbytes) + struct.pack("<II", crc, nbytes & 0xFFFFFFFF)


@functools.lru_cache(maxsize=None)
def zlib_bomb(nbytes: int) -> bytes:
    _, adler = _checksums(nbytes)
    return b"\x78\xda" + deflate_bomb(nbytes) + struct.pack(">I", adler)


def zstd_bomb(nbytes: int) -> bytes:
    """One zstd frame of ``nbytes`` zeros as RLE blocks, its size not in its header (so a
    decoder cannot know it before decoding)."""
    block = 128 * 1024  # the largest zstd block
    frame = bytearray(struct.pack("<I", 0xFD2FB528) + bytes([0x00, 0x38]))  # window 128 KiB
    count = nbytes // block
    for i in range(count):
        last = int(i == count - 1)
        frame += (last | (1 << 1) | (block << 3)).to_bytes(3, "little") + b"\x00"
    return bytes(frame)


@functools.lru_cache(maxsize=None)
def streamed_bomb(codec: str, nbytes: int) -> bytes:
    compressor = (bz2.BZ2Compressor(9) if codec == "bzip2"
                  else lzma.LZMACompressor(format=lzma.FORMAT_XZ, preset=0))
    zeros = _zeros(16 * MiB)
    pieces = [compressor.compress(zeros) for _ in range(nbytes // (16 * MiB))]
    return b"".join(pieces) + compressor.flush()


@functools.lru_cache(maxsize=None)
def blosc_bomb(nbytes: int) -> bytes:
    return numcodecs.Blosc(cname="zstd", clevel=9, shuffle=0).encode(_zeros(nbytes))


@functools.lru_cache(maxsize=None)
def lz4_bomb(nbytes: int) -> bytes:
    return numcodecs.LZ4().encode(_zeros(nbytes))[4:]  # a bare LZ4 block (z5py's framing)


def lzf_bomb(nbytes: int) -> bytes:
    """An LZF stream (liblzf's format) of ``nbytes`` zeros: one literal, then back-references
    of the longest length (264) at distance 1."""
    count = (nbytes - 1) // 264
    return b"\x00\x00" + b"\xe0\xff\x00" * count


BOMBS = {
    "gzip": lambda: gzip_bomb(256 * MiB),
    "zlib": lambda: zlib_bomb(256 * MiB),
    "zstd": lambda: zstd_bomb(256 * MiB),
    "blosc": lambda: blosc_bomb(256 * MiB),
    "bzip2": lambda: streamed_bomb("bzip2", 128 * MiB),
    "xz": lambda: streamed_bomb("xz", 128 * MiB),
    "lz4": lambda: lz4_bomb(32 * MiB),
    "lzf": lambda: lzf_bomb(256 * MiB),
}


def test_bombs_are_what_they_claim():
    """Each bomb, decoded by the peer's decoder, expands to at least 32 times a chunk (checked
    on smaller instances where decoding all of it would take long)."""
    assert len(zlib.decompress(gzip_bomb(16 * MiB), 31)) == 16 * MiB
    assert len(zlib.decompress(zlib_bomb(16 * MiB))) == 16 * MiB
    assert numcodecs.Zstd().decode(zstd_bomb(4 * MiB)) == bytes(4 * MiB)
    assert len(numcodecs.Blosc().decode(blosc_bomb(32 * MiB))) == 32 * MiB
    assert len(bz2.decompress(streamed_bomb("bzip2", 32 * MiB))) == 32 * MiB
    assert len(lzma.decompress(streamed_bomb("xz", 32 * MiB))) == 32 * MiB
    assert len(numcodecs.LZ4().decode(struct.pack("<I", 32 * MiB) + lz4_bomb(32 * MiB))) \
        == 32 * MiB
    for name, bomb in BOMBS.items():
        assert len(bomb()) < 4 * MiB, name


def crc32c_index(entries: list[tuple[int, int]]) -> bytes:
    """A shard index (``bytes`` little-endian, then ``crc32c``) of (offset, nbytes) pairs."""
    raw = b"".join(struct.pack("<QQ", offset, nbytes) for offset, nbytes in entries)
    return raw + struct.pack("<I", crc32c.crc32c(raw))


ABSENT = 2**64 - 1


def zarr_with_bomb(root: Path, layout: str, codec: str, bomb: bytes) -> tuple[str, str]:
    """A zarr array of ``layout`` with ``codec`` whose chunk ``BOMB_CHUNK`` holds ``bomb``."""
    path = root / "bomb.zarr"
    if layout == "v2":
        compressor = {"gzip": numcodecs.GZip(1), "zlib": numcodecs.Zlib(1),
                      "zstd": numcodecs.Zstd(1), "blosc": numcodecs.Blosc()}[codec]
        z = zarr.create_array(str(path / "a"), shape=BOMB_SHAPE, chunks=CHUNK, dtype="uint8",
                              zarr_format=2, compressors=compressor)
        z[...] = 1
        (path / "a" / "0.2").write_bytes(bomb)
    elif layout in ("v3", "v3-crc32c", "v3-transpose"):
        from zarr.codecs import (BloscCodec, Crc32cCodec, GzipCodec, TransposeCodec,
                                 ZstdCodec)
        compressor = {"gzip": GzipCodec(level=1), "zstd": ZstdCodec(level=1),
                      "blosc": BloscCodec()}[codec]
        kwargs: dict[str, Any] = {"compressors": compressor}
        if layout == "v3-crc32c":
            kwargs["compressors"] = [compressor, Crc32cCodec()]
            bomb = bomb + struct.pack("<I", crc32c.crc32c(bomb))
        if layout == "v3-transpose":
            kwargs["filters"] = [TransposeCodec(order=(1, 0))]
        z = zarr.create_array(str(path / "a"), shape=BOMB_SHAPE, chunks=CHUNK, dtype="uint8",
                              zarr_format=3, **kwargs)
        z[...] = 1
        (path / "a" / "c" / "0" / "2").write_bytes(bomb)
    elif layout == "sharded":
        src = create_array(path, "a", shape=BOMB_SHAPE, chunks=CHUNK, shards=(1024, 2048),
                           dtype="uint8", compression="blosc" if codec == "blosc" else codec)
        src[...] = 1
        # Shard (0, 1) holds chunk (0, 2) and a chunk position past the array's end.
        shard = bomb + crc32c_index([(0, len(bomb)), (ABSENT, ABSENT)])
        (path / "a" / "c" / "0" / "1").write_bytes(shard)
    elif layout == "nested-sharding":
        # zarr chunks are shards of two inner chunks; the bomb is in the third shard
        nested_sharding_array(path, "a", (BOMB_SHAPE[0], 2 * BOMB_SHAPE[1]), CHUNK, codec)
        # the transposed shard (2048 x 1024) holds two inner chunks, both the bomb
        shard = bomb + crc32c_index([(0, len(bomb)), (0, len(bomb))])
        (path / "a" / "c" / "0" / "2").write_bytes(shard)
    return str(path), "a"


def nested_sharding_array(path: Path, key: str, shape, inner, codec: str) -> np.ndarray:
    """A zarr v3 array whose codecs are ``transpose`` then ``sharding_indexed`` (shards of two
    inner chunks along the last axis), so zarr chunks are whole shards, decoded and encoded as
    one chunk; written by the native writer, checked by zarr-python. Returns the data."""
    src = create_array(path, key, shape=shape, chunks=inner, dtype="uint8", zarr_format=3,
                       compression=codec)
    metadata_file = path / key / "zarr.json"
    metadata = json.loads(metadata_file.read_text())
    inner_codecs = metadata["codecs"]
    metadata["chunk_grid"]["configuration"]["chunk_shape"] = [inner[0], 2 * inner[1]]
    metadata["codecs"] = [
        {"name": "transpose", "configuration": {"order": [1, 0]}},
        {"name": "sharding_indexed", "configuration": {
            "chunk_shape": list(inner[::-1]), "codecs": inner_codecs, "index_location": "end",
            "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                             {"name": "crc32c"}]}},
    ]
    metadata_file.write_text(json.dumps(metadata))
    for stale in (path / key / "c").rglob("*"):
        if stale.is_file():
            stale.unlink()
    writer = bp.open_source(path, key, mode="r+")
    data = content(shape, 3, "uint8") | 1
    writer[...] = data
    # the layout is real: zarr-python reads what the native writer wrote
    np.testing.assert_array_equal(zarr.open_array(str(path / key), mode="r")[...], data)
    return data


def n5_with_bomb(root: Path, codec: str, bomb: bytes) -> tuple[str, str]:
    path = root / "bomb.n5"
    name = {"zlib": "zlib", "lz4": "lz4"}.get(codec, codec)
    src = create_array(path, "a", shape=BOMB_SHAPE, chunks=CHUNK, dtype="uint8",
                       compression=name)
    src[...] = 1
    if codec == "lz4":  # z5py's framing (one bare LZ4 block), as its blockSize < 64 says
        attributes = path / "a" / "attributes.json"
        meta = json.loads(attributes.read_text())
        meta["compression"] = {"type": "lz4", "blockSize": 9}
        attributes.write_text(json.dumps(meta))
    header = struct.pack(">HHII", 0, 2, CHUNK[1], CHUNK[0])
    (path / "a" / "2" / "0").write_bytes(header + bomb)
    return str(path), "a"


def hdf5_with_bomb(root: Path, layout: str, bomb: bytes) -> tuple[str, str]:
    import h5py

    path = root / "bomb.h5"
    options = {
        "gzip": dict(compression="gzip"),
        "gzip-shuffle": dict(compression="gzip", shuffle=True),
        "gzip-fletcher32": dict(compression="gzip", fletcher32=True),
        "gzip-big-endian": dict(compression="gzip", dtype=">u2"),
        "lzf": dict(compression="lzf"),
    }[layout]
    dtype = options.pop("dtype", "u1")
    chunk = CHUNK if np.dtype(dtype).itemsize == 1 else (512, 1024)
    with h5py.File(path, "w") as f:
        dataset = f.create_dataset("a", shape=BOMB_SHAPE, chunks=chunk, dtype=dtype, **options)
        dataset[...] = 1
        if layout == "gzip-fletcher32":
            bomb = bomb + struct.pack("<I", fletcher32(bomb))
        dataset.id.write_direct_chunk((0, 2048), bomb, 0)
    return str(path), "a"


def fletcher32(data: bytes) -> int:
    """HDF5's Fletcher-32 checksum (H5_checksum_fletcher32), for writing valid chunks."""
    sum1 = sum2 = 0
    words = np.frombuffer(data[: len(data) & ~1], ">u2").astype(np.uint64)
    for start in range(0, len(words), 360):
        for word in words[start:start + 360].tolist():
            sum1 += word
            sum2 += sum1
        sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
        sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    if len(data) % 2:
        sum1 += data[-1] << 8
        sum2 += sum1
        sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
        sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
    sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    return (sum2 << 16) | sum1


MEMORY_LIMITED_READ = textwrap.dedent("""
    import json, resource, sys
    import bioimage_py as bp

    def status(field):
        with open("/proc/self/status") as lines:
            for line in lines:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024

    def vm_bytes():
        return status("VmSize")

    def peak_rss():
        return status("VmHWM")

    path, key, headroom, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    src = bp.open_source(path, key, chunk_cache_bytes=0)
    chunk = [int(c) for c in chunk.split(",")]
    bomb = tuple(slice(c * n, (c + 1) * n) for c, n in zip(chunk, src.chunks))
    # One chunk is read (no thread pool is started): the process needs little beyond this.
    resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + headroom, resource.RLIM_INFINITY))
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # restart the peak (VmHWM) from the current resident size
    before = peak_rss()
    outcome = {}
    for name, region in [("read", bomb), ("small read", tuple(slice(s.start, s.start + 2)
                                                           for s in bomb))]:
        try:
            src[region]
            outcome[name] = ["no error", ""]
        except BaseException as error:
            outcome[name] = [type(error).__name__, str(error)]
    outcome["growth"] = peak_rss() - before
    good = tuple(slice(0, c) for c in src.chunks[:-1]) + (slice(0, 2 * src.chunks[-1]),)
    outcome["other chunks"] = int(src[good].min())  # two good chunks, read on the pool
    print(json.dumps(outcome))
""")


def read_bomb(path: str, key: str, chunk=BOMB_CHUNK) -> dict:
    """Reads the bomb chunk (whole, and two voxels of it) in a child process whose memory is
    limited to what it holds after opening the array plus ``HEADROOM``; reports the outcomes,
    the growth of its peak memory, and a read of other chunks afterwards."""
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_LIMITED_READ, path, key, str(HEADROOM),
         ",".join(map(str, chunk))],
        capture_output=True, text=True, timeout=TIMEOUT, env=env,
    )
    assert result.returncode == 0, f"child died ({result.returncode}): {result.stderr[-3000:]}"
    return json.loads(result.stdout)


def assert_bomb_refused(outcome: dict, array_path: str, chunk=BOMB_CHUNK) -> None:
    for name in ("read", "small read"):
        kind, message = outcome[name]
        assert kind == "OSError", f"{name}: {kind}: {message}"
        assert array_path in message and f"chunk {list(chunk)}" in message, message
    # About one chunk (the decode buffer, the result) and the stored bytes; never the bomb.
    assert outcome["growth"] < 8 * MiB, outcome["growth"]
    assert outcome["other chunks"] == 1


ZARR_BOMBS = [
    ("v2", "gzip"), ("v2", "zlib"), ("v2", "zstd"), ("v2", "blosc"),
    ("v3", "gzip"), ("v3", "zstd"), ("v3", "blosc"),
    ("v3-crc32c", "gzip"), ("v3-crc32c", "zstd"), ("v3-transpose", "gzip"),
    ("v3-transpose", "zstd"),
    ("sharded", "gzip"), ("sharded", "zstd"), ("sharded", "blosc"),
    ("nested-sharding", "gzip"), ("nested-sharding", "zstd"),
]


@pytest.mark.parametrize(("layout", "codec"), ZARR_BOMBS, ids=[f"{l}-{c}" for l, c in ZARR_BOMBS])
def test_zarr_decompression_bomb_stops_at_the_chunk(tmp_path, layout, codec):
    path, key = zarr_with_bomb(tmp_path, layout, codec, BOMBS[codec]())
    assert_bomb_refused(read_bomb(path, key), str(Path(path, key)))


N5_BOMBS = ["gzip", "zlib", "zstd", "blosc", "bzip2", "xz", "lz4"]


@pytest.mark.parametrize("codec", N5_BOMBS)
def test_n5_decompression_bomb_stops_at_the_block(tmp_path, codec):
    path, key = n5_with_bomb(tmp_path, codec, BOMBS[codec]())
    assert_bomb_refused(read_bomb(path, key), f"{path}/{key}")


HDF5_BOMBS = ["gzip", "gzip-shuffle", "gzip-fletcher32", "gzip-big-endian", "lzf"]


@pytest.mark.parametrize("layout", HDF5_BOMBS)
def test_hdf5_decompression_bomb_stops_at_the_chunk(tmp_path, layout):
    bomb = BOMBS["lzf" if layout == "lzf" else "zlib"]()  # HDF5's deflate is zlib-wrapped
    path, key = hdf5_with_bomb(tmp_path, layout, bomb)
    # the big-endian dataset has 2-byte elements in chunks of 512 x 1024: chunk (0, 2) still
    chunk = (0, 2)
    assert_bomb_refused(read_bomb(path, key, chunk), f"{path}:{key}", chunk)


SHORT_CASES = ["zarr-v2-zlib", "zarr-v3-gzip", "zarr-sharded-zstd", "n5-gzip", "n5-xz",
               "hdf5-gzip"]


@pytest.mark.parametrize("case", SHORT_CASES)
def test_chunk_that_decodes_to_less_is_corrupt(tmp_path, case):
    """Data that decodes to fewer bytes than a chunk is an OSError naming the chunk too."""
    if case == "zarr-v2-zlib":
        path, key = zarr_with_bomb(tmp_path, "v2", "zlib", zlib.compress(bytes(MiB // 2)))
    elif case == "zarr-v3-gzip":
        path, key = zarr_with_bomb(tmp_path, "v3", "gzip", gzip.compress(bytes(MiB // 2)))
    elif case == "zarr-sharded-zstd":
        path, key = zarr_with_bomb(tmp_path, "sharded", "zstd",
                                   numcodecs.Zstd().encode(bytes(MiB // 2)))
    elif case == "n5-gzip":
        path, key = n5_with_bomb(tmp_path, "gzip", gzip.compress(bytes(MiB // 2)))
    elif case == "n5-xz":
        path, key = n5_with_bomb(tmp_path, "xz", lzma.compress(bytes(MiB - 1)))
    else:
        path, key = hdf5_with_bomb(tmp_path, "gzip", zlib.compress(bytes(MiB // 2)))
    src = bp.open_source(path, key)
    with pytest.raises(OSError) as info:
        src[:, 2048:]
    assert f"chunk {list(BOMB_CHUNK)}" in str(info.value)
    assert int(src[:, :2048].min()) == 1  # the other chunks still read


@pytest.mark.parametrize("codec", ["lz4", "bz2", "lzma"])
def test_zarr_v2_codecs_without_a_native_decoder_are_refused_at_open(tmp_path, codec):
    compressor = {"lz4": numcodecs.LZ4(), "bz2": numcodecs.BZ2(), "lzma": numcodecs.LZMA()}
    z = zarr.create_array(str(tmp_path / "a.zarr"), shape=(8, 8), chunks=(4, 4), dtype="uint8",
                          zarr_format=2, compressors=compressor[codec])
    z[...] = 1
    with pytest.raises(ValueError) as info:
        bp._core.open_zarr(str(tmp_path / "a.zarr"), "")
    assert str(tmp_path / "a.zarr") in str(info.value)


# ---------------------------------------------------------------------------------------------
# sizes from metadata: absurd shapes, chunks, shards and products

SIZED_OPERATIONS = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    from bioimage_py import _core

    def vm_bytes():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024

    opener, path, key, operations = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    open_array = getattr(_core, opener)
    _core._panic_for_tests  # the guard exists
    resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + 512 * 2**20, resource.RLIM_INFINITY))
    results = []
    try:
        a = open_array(path, key, read_only=False)
        results.append(["open", "ok", repr(a.shape)])
    except BaseException as error:
        results.append(["open", type(error).__name__, str(error)])
        operations = []
    for operation in operations:
        try:
            value = eval(operation, {"a": a, "np": np})
            results.append([operation, "ok", np.asarray(value).tolist() if value is not None
                            and np.asarray(value).size < 10 else repr(value)])
        except BaseException as error:
            results.append([operation, type(error).__name__, str(error)])
    print(json.dumps(results))
""")


def run_sized(opener: str, path: Path, key: str, *operations: str) -> list:
    """Opens an array in a child process limited to 512 MiB more memory than it started with
    and runs ``operations`` on it; each result is ``[operation, "ok" or the exception class,
    value or message]``. A crash (abort, panic escaping as a signal) fails here."""
    result = subprocess.run(
        [sys.executable, "-c", SIZED_OPERATIONS, opener, str(path), key, *operations],
        capture_output=True, text=True, timeout=TIMEOUT,
        env={**os.environ, "MALLOC_ARENA_MAX": "2"},
    )
    assert result.returncode == 0, f"child died ({result.returncode}): {result.stderr[-3000:]}"
    return json.loads(result.stdout)


def zarr_v2_metadata(path: Path, shape, chunks, dtype="|u1", fill_value=7, **extra) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / ".zarray").write_text(json.dumps({
        "zarr_format": 2, "shape": shape, "chunks": chunks, "dtype": dtype,
        "fill_value": fill_value, "order": "C", "filters": None, "compressor": None, **extra}))
    return path


def zarr_v3_metadata(path: Path, shape, chunks, data_type="uint8", codecs=None, **extra) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "zarr.json").write_text(json.dumps({
        "zarr_format": 3, "node_type": "array", "shape": shape, "data_type": data_type,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 7, "codecs": codecs or [{"name": "bytes"}], "attributes": {}, **extra}))
    return path


def sharding(inner, codecs=None) -> list:
    return [{"name": "sharding_indexed", "configuration": {
        "chunk_shape": inner, "codecs": codecs or [{"name": "bytes"}],
        "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                         {"name": "crc32c"}]}}]


def n5_metadata(path: Path, shape_xyz, block_xyz, data_type="uint8") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "attributes.json").write_text(json.dumps({
        "n5": "2.0.0", "dimensions": shape_xyz, "blockSize": block_xyz, "dataType": data_type,
        "compression": {"type": "raw"}}))
    return path


def outcome(results: list, operation: str) -> tuple[str, Any]:
    for name, kind, value in results:
        if name == operation:
            return kind, value
    raise KeyError(operation)


BIG = 2**63 - 1  # the longest axis numpy can index


@pytest.mark.parametrize("kind", ["zarr-v2", "zarr-v3", "n5"])
@pytest.mark.parametrize("length", [2**64 - 1, 2**63])
def test_axes_longer_than_numpy_can_index_are_refused_at_open(tmp_path, kind, length):
    if kind == "zarr-v2":
        path = zarr_v2_metadata(tmp_path / "a.zarr", [length], [1000])
    elif kind == "zarr-v3":
        path = zarr_v3_metadata(tmp_path / "a.zarr", [length], [1000])
    else:
        path = n5_metadata(tmp_path / "a.n5", [length], [1000])
    opener = "open_n5" if kind == "n5" else "open_zarr"
    kind_, message = outcome(run_sized(opener, path, ""), "open")
    assert kind_ == "ValueError" and str(path) in message and "2**63 - 1" in message, message


@pytest.mark.parametrize("kind", ["zarr-v2", "zarr-v3", "zarr-sharded", "n5", "hdf5"])
def test_indexing_the_longest_axes_is_exact(tmp_path, kind):
    """An axis of 2**63 - 1 (chunks of 2**20): the last voxels read exactly (missing chunks:
    the fill value, 0 for N5 and HDF5); the whole array cannot be allocated: MemoryError or
    numpy's ValueError, never a crash."""
    fill = 7
    opener = {"n5": "open_n5", "hdf5": "open_hdf5"}.get(kind, "open_zarr")
    if kind == "zarr-v2":
        path = zarr_v2_metadata(tmp_path / "a.zarr", [BIG], [2**20])
    elif kind == "zarr-v3":
        path = zarr_v3_metadata(tmp_path / "a.zarr", [BIG], [2**20])
    elif kind == "zarr-sharded":
        path = zarr_v3_metadata(tmp_path / "a.zarr", [BIG], [2**30], codecs=sharding([2**20]))
    elif kind == "n5":
        path, fill = n5_metadata(tmp_path / "a.n5", [BIG], [2**20]), 0
    else:
        import h5py

        path, fill = tmp_path / "a.h5", 0
        with h5py.File(path, "w") as f:
            f.create_dataset("a", shape=(BIG,), chunks=(2**20,), dtype="u1")
    results = run_sized(opener, path, "a" if kind == "hdf5" else "", "a[-1]", f"a[{BIG - 1}]",
                        "a[-3:]", f"a[{BIG - 2}:{BIG}]", "a[...]", f"a[{BIG}]",
                        f"a.__setitem__(slice({BIG - 2}, None), 5)", "a[-3:]")
    assert outcome(results, "open")[0] == "ok", results
    assert outcome(results, "a[-1]") == ("ok", fill)
    assert outcome(results, f"a[{BIG - 1}]") == ("ok", fill)
    assert outcome(results, f"a[{BIG - 2}:{BIG}]") == ("ok", [fill, fill])
    assert outcome(results, "a[...]")[0] in ("MemoryError", "ValueError"), results
    assert outcome(results, f"a[{BIG}]")[0] == "IndexOutOfRangeError", results
    assert outcome(results, f"a.__setitem__(slice({BIG - 2}, None), 5)")[0] == "ok", results
    assert results[-1] == ["a[-3:]", "ok", [fill, 5, 5]]


@pytest.mark.parametrize("kind", ["zarr-v2", "zarr-v3", "zarr-sharded", "n5"])
def test_huge_chunks_fill_small_reads_without_allocating_the_chunk(tmp_path, kind):
    """Chunks of 2**40 elements (1 TiB, or 2 GiB blocks for N5) in a child limited to 512 MiB
    more than it started with: reading a few voxels of a missing chunk fills only them; what
    needs the whole chunk (a partial write, reading a stored chunk) is a MemoryError."""
    opener = "open_n5" if kind == "n5" else "open_zarr"
    chunk_file: Path
    if kind == "zarr-v2":
        path = zarr_v2_metadata(tmp_path / "a.zarr", [2**41], [2**40])
        chunk_file = path / "1"
    elif kind == "zarr-v3":
        path = zarr_v3_metadata(tmp_path / "a.zarr", [2**41], [2**40])
        chunk_file = path / "c" / "1"
    elif kind == "zarr-sharded":
        path = zarr_v3_metadata(tmp_path / "a.zarr", [2**41], [2**40],
                                codecs=sharding([2**40]))
        chunk_file = path / "c" / "1"
    else:
        path = n5_metadata(tmp_path / "a.n5", [2**33], [2**31 - 1])
        chunk_file = path / "1"
    fill = 0 if kind == "n5" else 7
    first = 2**40 if kind != "n5" else 2**31 - 1
    results = run_sized(opener, path, "", f"a[{first}:{first + 3}]", f"a[{first + 5}]",
                        f"a.__setitem__(slice({first}, {first + 2}), 1)")
    assert outcome(results, f"a[{first}:{first + 3}]") == ("ok", [fill] * 3), results
    assert outcome(results, f"a[{first + 5}]") == ("ok", fill), results
    kind_, message = outcome(results, f"a.__setitem__(slice({first}, {first + 2}), 1)")
    assert kind_ == "MemoryError" and str(path) in message and "chunk [1]" in message, message
    chunk_file.parent.mkdir(parents=True, exist_ok=True)
    if kind == "zarr-sharded":
        chunk_file.write_bytes(bytes(16) + crc32c_index([(0, 16)]))
    else:
        chunk_file.write_bytes(b"\x00\x00\x00\x01" + struct.pack(">I", 2**31 - 1) + bytes(16)
                               if kind == "n5" else bytes(16))
    results = run_sized(opener, path, "", f"a[{first}:{first + 3}]", "a[0:2]")
    kind_, message = outcome(results, f"a[{first}:{first + 3}]")
    assert kind_ == "MemoryError" and str(path) in message and "chunk [1]" in message, message
    assert outcome(results, "a[0:2]") == ("ok", [fill, fill])  # other chunks still read


@pytest.mark.parametrize(("kind", "metadata"), [
    ("zarr-v2", dict(shape=[2**40, 2**40], chunks=[2**40, 2**40])),  # a chunk of 2**80
    ("zarr-v2", dict(shape=[10, 10], chunks=[2**62, 2**62])),
    ("zarr-v2", dict(shape=[2**20], chunks=[2**62], dtype="<u8")),  # bytes overflow
    ("zarr-v3", dict(shape=[2**40, 2**40], chunks=[2**40, 2**40])),
    ("zarr-sharded", dict(shape=[2**62], chunks=[2**60], inner=[1])),  # 2**60 inner chunks
    ("zarr-sharded", dict(shape=[2**62], chunks=[2**62], inner=[2**20])),  # 2**42 of them
    ("zarr-sharded", dict(shape=[2**40, 2**40], chunks=[2**40, 2**40], inner=[2**40, 2**40])),
    ("n5", dict(shape=[2**40, 2**40], chunks=[2**32 - 1, 2**32 - 1])),
], ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}{v[k]}" for k in v))
def test_sizes_that_overflow_are_valueerrors_naming_the_array(tmp_path, kind, metadata):
    if kind == "zarr-v2":
        path = zarr_v2_metadata(tmp_path / "a.zarr", metadata["shape"], metadata["chunks"],
                                metadata.get("dtype", "|u1"))
    elif kind == "zarr-v3":
        path = zarr_v3_metadata(tmp_path / "a.zarr", metadata["shape"], metadata["chunks"])
    elif kind == "zarr-sharded":
        path = zarr_v3_metadata(tmp_path / "a.zarr", metadata["shape"], metadata["chunks"],
                                codecs=sharding(metadata["inner"]))
    else:
        path = n5_metadata(tmp_path / "a.n5", metadata["shape"], metadata["chunks"])
    kind_, message = outcome(run_sized("open_n5" if kind == "n5" else "open_zarr", path, ""),
                             "open")
    assert kind_ == "ValueError" and str(path) in message, message


def test_shapes_to_create_are_checked_too(tmp_path):
    for create in (
        lambda: bp._core.create_zarr(str(tmp_path / "a.zarr"), "a", shape=[2**63], chunks=[1],
                                     dtype="uint8"),
        lambda: bp._core.create_n5(str(tmp_path / "a.n5"), "a", shape=[2**63], chunks=[1],
                                   dtype="uint8"),
        lambda: bp._core.create_hdf5(str(tmp_path / "a.h5"), "a", shape=[2**63], chunks=[1],
                                     dtype="uint8"),
        lambda: bp._core.create_zarr(str(tmp_path / "b.zarr"), "a", shape=[4], chunks=[2**62],
                                     dtype="uint64"),
        lambda: bp._core.create_zarr(str(tmp_path / "c.zarr"), "a", shape=[2**62],
                                     chunks=[1], shards=[2**40], dtype="uint8"),
    ):
        with pytest.raises(ValueError):
            create()


# ---------------------------------------------------------------------------------------------
# no panic reaches Python


@pytest.mark.parametrize("in_thread_pool", [False, True], ids=["caller-thread", "pool-task"])
def test_a_panic_in_core_code_is_a_runtime_error(tmp_path, in_thread_pool):
    """A panic (a bug; no input should cause one) raises RuntimeError naming the operation, an
    ``Exception`` that ``except Exception`` catches, not pyo3's ``PanicException`` (a
    ``BaseException``); the extension and its thread pool keep working."""
    with pytest.raises(RuntimeError) as info:
        bp._core._panic_for_tests(in_thread_pool)
    message = str(info.value)
    assert "testing the panic guard" in message and "a test panic" in message, message
    assert type(info.value) is RuntimeError
    src = make_array("zarr-v3", tmp_path, (16, 16), (4, 4), dtype="int16")
    data = content((16, 16), 1, "int16")
    src[...] = data  # sixteen chunks, written and read on the pool
    np.testing.assert_array_equal(src[...], data)


# ---------------------------------------------------------------------------------------------
# damaged or hostile metadata JSON, read by the Rust core


def damaged_metadata(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """An array of ``kind`` (and its metadata file) to damage."""
    src = make_array(kind, tmp_path, (6, 7), (4, 4), key="a")
    src[...] = 3
    return Path(src.path), Path(src.path, "a", METADATA_FILE[kind])


def open_core(kind: str, root: Path):
    return (bp._core.open_n5 if kind == "n5" else bp._core.open_zarr)(str(root), "a")


DAMAGES = {
    "non-utf8": lambda text: text.replace('"', '"\udcff', 1).encode("utf-8", "surrogateescape"),
    "latin1-in-a-string": lambda text: text[:-1].encode() + b', "x\xe9": 1}',
    "nested-shape": lambda text: re.sub(r'("(shape|dimensions)"\s*:\s*)\[[^\]]*\]',
                                        lambda m: m.group(1) + "[" * 100_000 + "]" * 100_000,
                                        text, count=1).encode(),
    "shape-a-string": lambda text: re.sub(r'("(shape|dimensions)"\s*:\s*)\[[^\]]*\]',
                                          r'\1"abc"', text, count=1).encode(),
    "shape-floats": lambda text: re.sub(r'("(shape|dimensions)"\s*:\s*)\[[^\]]*\]',
                                        r'\1[6.5, 7.25]', text, count=1).encode(),
    "shape-negative": lambda text: re.sub(r'("(shape|dimensions)"\s*:\s*)\[[^\]]*\]',
                                          r'\1[-6, 7]', text, count=1).encode(),
    "chunks-an-object": lambda text: re.sub(
        r'("(chunks|blockSize|chunk_shape)"\s*:\s*)\[[^\]]*\]', r'\1{"a": 1}', text,
        count=1).encode(),
    "dtype-a-number": lambda text: re.sub(r'("(dtype|dataType|data_type)"\s*:\s*)"[^"]*"',
                                          r"\g<1>5", text, count=1).encode(),
    "fill-a-list": lambda text: re.sub(r'("fill_value"\s*:\s*)[^,}]+', r"\1[1]", text,
                                       count=1).encode(),
    "compression-a-number": lambda text: re.sub(
        r'("(compressor|compression|codecs)"\s*:\s*)', r"\g<1>17, \"ignored\": ", text,
        count=1).encode(),
    "nul-bytes": lambda text: b"\x00" * 64,
    "trailing-garbage": lambda text: text.encode() + b"}]x",
}


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("kind", ["zarr-v2", "zarr-v3", "n5"])
def test_damaged_metadata_is_a_valueerror_naming_the_file(tmp_path, kind, damage):
    if kind == "n5" and damage == "fill-a-list":
        pytest.skip("N5 has no fill value")
    root, metadata_file = damaged_metadata(tmp_path, kind)
    metadata_file.write_bytes(DAMAGES[damage](metadata_file.read_text()))
    for opener in (lambda: open_core(kind, root), lambda: bp.open_source(root, "a")):
        with pytest.raises(ValueError) as info:
            opener()
        message = str(info.value)
        assert str(metadata_file.parent) in message, message
        assert not isinstance(info.value, (UnicodeDecodeError, KeyError)), message


@pytest.mark.parametrize("node_type", ['"banana"', "5", "null", '["array"]', None])
def test_unknown_zarr_node_type_is_a_valueerror_naming_zarr_json(tmp_path, node_type):
    root, metadata_file = damaged_metadata(tmp_path, "zarr-v3")
    metadata = json.loads(metadata_file.read_text())
    metadata.pop("node_type")
    text = json.dumps(metadata)
    if node_type is not None:
        text = text[:-1] + f', "node_type": {node_type}}}'
    metadata_file.write_text(text)
    with pytest.raises(ValueError) as info:
        open_core("zarr-v3", root)
    assert str(metadata_file) in str(info.value) and "node_type" in str(info.value)
    with pytest.raises(ValueError) as info:
        bp.open_source(root, "a")
    assert "zarr.json" in str(info.value)


@pytest.mark.parametrize("kind", ["zarr-v2", "zarr-v3", "zarr-sharded", "n5"])
def test_deeply_nested_user_attributes_do_not_stop_an_array_from_opening(tmp_path, kind):
    """User attributes nested 100,000 levels deep (serde_json stops at 128, Python's json near
    1,000): the array opens and reads, natively and through open_source."""
    src = make_array(kind, tmp_path, (6, 7), (4, 4), key="a", shards=(4, 8))
    data = content((6, 7), 2)
    src[...] = data
    deep = "[" * 100_000 + '"x"' + "]" * 100_000
    folder = Path(src.path, "a")
    if kind == "zarr-v2":
        (folder / ".zattrs").write_text('{"deep": %s, "b": {"c": %s}}' % (deep, deep))
    else:
        name = "attributes.json" if kind == "n5" else "zarr.json"
        text = (folder / name).read_text().rstrip()
        if kind != "n5":  # replace the attributes member
            metadata = json.loads(text)
            metadata.pop("attributes")
            text = json.dumps(metadata)
        member = "attributes" if kind != "n5" else "deep"
        (folder / name).write_text(text[:-1] + ', "%s": {"a": %s}, "tail": 1}' % (member, deep))
    np.testing.assert_array_equal(open_core(kind, Path(src.path))[...], data)
    np.testing.assert_array_equal(bp.open_source(src.path, "a")[...], data)
    writer = bp.open_source(src.path, "a", mode="r+")
    writer[0, 0] = 5
    assert writer[0, 0] == 5


def test_metadata_files_too_large_to_be_metadata_are_refused_unread(tmp_path):
    root, metadata_file = damaged_metadata(tmp_path, "zarr-v3")
    with open(metadata_file, "r+b") as f:
        f.truncate(65 * MiB)  # sparse: nothing is written, the file only claims the size
    with pytest.raises(ValueError) as info:
        open_core("zarr-v3", root)
    assert str(metadata_file) in str(info.value) and "too many" in str(info.value)


# ---------------------------------------------------------------------------------------------
# fork after any read or write

FORK_AFTER_WORK = textwrap.dedent("""
    import os, sys, traceback
    import numpy as np
    import bioimage_py as bp
    from bioimage_py.util import contiguous_transpose

    path, key, what = sys.argv[1], sys.argv[2], sys.argv[3]
    src = bp.open_source(path, key, mode="r+")
    shape, unit = src.shape, src.shards or src.chunks

    def work(seed):
        one = tuple(slice(0, u) for u in unit)  # exactly one storage unit (one shard, one chunk)
        src[one] = seed
        src[...] = np.full(shape, seed + 1, src.dtype)  # every chunk, in parallel
        assert int(src[one].min()) == seed + 1
        assert int(src[tuple(slice(1, n - 1) for n in shape)].max()) == seed + 1
        src[one] = seed + 2  # one shard again: its inner chunks encoded in parallel
        assert int(src[...].max()) == seed + 2
        big = np.arange(2**21, dtype="uint32").reshape(1024, 2048)
        assert contiguous_transpose(big, (1, 0))[5, 7] == big[7, 5]  # a parallel transpose

    if what != "fork-first":
        work(1)  # the parent uses the thread pool before forking
    pid = os.fork()
    if pid == 0:
        try:
            work(10)
            os._exit(0)
        except BaseException:
            traceback.print_exc()
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    work(20)  # and goes on working after its child
    sys.exit(os.waitstatus_to_exitcode(status))
""")


def run_with_timeout(args: list[str], timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """Runs a child in its own session, killing the whole session (forked grandchildren
    included) when it hangs."""
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"hung for {timeout} s: {' '.join(args[3:])}")
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("what", ["after-work", "fork-first"])
@pytest.mark.parametrize("kind", KINDS + ["zarr-nested-sharding", "hdf5"])
def test_a_child_forked_after_any_read_or_write_never_hangs(tmp_path, kind, what):
    """Single-shard writes encode the shard's inner chunks in parallel (ours, and zarrs' for a
    sharding codec nested in a longer chain); they ran on rayon's global pool, whose threads a
    forked child does not have, so a child forked after one waited forever on its next one."""
    if kind == "hdf5":
        src = create_array(tmp_path / "a.h5", "a", shape=(64, 48), chunks=(16, 16),
                           dtype="uint16")
    elif kind == "zarr-nested-sharding":
        nested_sharding_array(tmp_path / "a.zarr", "a", (64, 96), (16, 16), "gzip")
        src = bp.open_source(tmp_path / "a.zarr", "a")
    else:
        src = make_array(kind, tmp_path, (64, 48), (16, 16), dtype="uint16", shards=(32, 48))
    result = run_with_timeout([sys.executable, "-c", FORK_AFTER_WORK, src.path,
                               src.internal_path, what])
    assert result.returncode == 0, result.stderr[-3000:]


COPY_AFTER_SHARD_WRITE = textwrap.dedent("""
    import sys
    import numpy as np
    import bioimage_py as bp

    root = sys.argv[1]
    src = bp.create_array(root + "/in.zarr", "a", shape=(64, 64), chunks=(8, 8),
                          shards=(64, 64), dtype="int32")
    data = np.arange(64 * 64, dtype="int32").reshape(64, 64)
    src[...] = data  # one shard of 64 inner chunks: encoded on the pool
    out = bp.create_array(root + "/out.zarr", "a", shape=(64, 64), chunks=(8, 8),
                          shards=(32, 32), dtype="int32")
    bp.copy(src, out, job_type="subprocess", num_workers=2,
            job_config={"start_method": "fork"}, progress=False)
    assert np.array_equal(bp.open_source(root + "/out.zarr", "a")[...], data)
""")


def test_copy_with_forked_workers_after_a_single_shard_write(tmp_path):
    result = run_with_timeout([sys.executable, "-c", COPY_AFTER_SHARD_WRITE, str(tmp_path)],
                              timeout=2 * TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]


def test_blockings_of_absurd_sizes_answer_quickly_or_raise_memoryerror():
    """Block counts come from users: 2**61 blocks check their chunk alignment in constant time,
    and listing them all is a MemoryError, not an abort."""
    from bioimage_py.blocking import Blocking, blocks_align_with_chunks, group_blocks_by_shards

    blocking = Blocking([2**62], [2])
    assert blocks_align_with_chunks(blocking, [2]) and not blocks_align_with_chunks(blocking, [4])
    with pytest.raises(MemoryError):
        blocking.get_block_ids_in_region([0], [2**62])
    with pytest.raises(MemoryError):
        group_blocks_by_shards(blocking, [[2]])
    assert blocking.get_block_ids_in_region([4], [7]) == [2, 3]
