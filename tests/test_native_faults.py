"""Faults and concurrency of the native zarr (v2, v3, sharded) and N5 arrays.

Corrupt chunks and metadata raise Python exceptions naming the array and the chunk; a writer
killed mid-run (SIGKILL) leaves only whole chunks; several processes write chunk-aligned blocks
at once; forked processes read and write without hanging; the decoded-chunk cache stays bounded
and never serves stale data after a write through the same handle; specs and pickles reopen the
native arrays with the same options. Every child process runs under a timeout, so a hang fails
the test instead of blocking the run.
"""
from __future__ import annotations

import itertools
import json
import multiprocessing
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

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
