"""Chunked-array I/O against the peers: zarr v3, zarr v2 and N5, read and written block-wise.

BUILD FIRST, IN RELEASE MODE: timings of a debug build are meaningless.

    .venv/bin/maturin develop --release      (or: pip install .)
    pip install tensorstore zarr zarrs z5py  (the peers: the `bench` extra of pyproject.toml)
    python benches/bench_zarr_n5.py                       # the full run: 512^3, best of 3
    python benches/bench_zarr_n5.py --size 128 --repeat 1 # a quick smoke run
    python benches/bench_zarr_n5.py --json results.json   # also save the results

The script warns when ``bioimage_py._core`` looks like a debug build.

Data (``volumes.synthetic_volume``): a uint16 volume (512^3 by default, ``--size``) with smooth
structure, bright blobs, mild noise and a zero background outside an ellipsoidal sample, chunked
64^3, generated once per run and stored *by the peer libraries* as
- zarr v3, zstd(3)                  (zarr-python)
- zarr v2, blosc lz4(5) + shuffle   (zarr-python)
- N5, gzip(1)                       (z5py)
each as the array ``data`` inside a group/container, so every reader reads peer-written files.

Workloads (regions in C order; every reader opens a fresh handle per repetition, so caches start
cold; the open is part of the timed work):
- W1: every chunk, one read call each.
- W2: 128^3 blocks grown by an 8-voxel halo, clipped to the array: the block-wise runner.
- W3: one read of the whole volume (plus, in a fresh subprocess per reader, the peak RSS growth
  of that read as a multiple of the array's size: Rust and C allocations included).
- W4: create a fresh array of the same format and compression and write it with chunk-aligned
  128^3 blocks taken from memory.

Readers: ours (``bioimage_py.open_source`` / ``bioimage_py.create_array``), tensorstore
(default context: no chunk cache, as users open it), tensorstore+cache (W2 only: a cache pool
as large as our decoded-chunk cache, tensorstore's best for the halo pattern), zarr-python,
zarr-python with the zarrs codec pipeline (strict: no silent fallback), z5py (N5, zarr v2 and
v3; ``n_threads`` = all cores). Every result is compared with the numpy reference once (first
repetition; W4 by reading the written array back with zarr-python or z5py) before any time
counts. Times are the best of ``--repeat`` repetitions, repetitions interleaved across readers.
Ratios are peer time / our time: > 1 means we are faster. Files are read from the page cache
(written moments before), so the numbers measure decoding and copying, not the disk.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import volumes  # noqa: E402
from volumes import Region  # noqa: E402

WORKLOADS = ("W1", "W2", "W3", "W4")
KEY = "data"  # the array's key inside each container

# Targets of issue 3: ours against the best peer of each row (peer time / our time).
TARGETS: dict[str, dict[str, float | None]] = {
    "zarr3": {"W1": 1.5, "W2": 2.0, "W3": 1.5, "W4": 1.5},
    "zarr2": {"W1": 1.2, "W2": 2.0, "W3": 1.2, "W4": None},  # v2 W4 is optional
    "n5": {"W1": 1.5, "W2": 3.0, "W3": 2.0, "W4": 1.5},
}
MEMORY_TARGET = 1.2  # W3 peak RSS growth of our full read, as a multiple of the array's size


@dataclass(frozen=True)
class Format:
    """One stored copy of the volume: where it is and how every library names its encoding."""

    key: str
    title: str
    kind: str  # "zarr" or "n5"
    zarr_format: int | None
    dirname: str
    ts_driver: str
    ours_compression: str
    ours_level: int
    peer_writer: Callable[[str, str, np.ndarray, tuple[int, ...]], None]

    def container(self, root: str) -> str:
        return os.path.join(root, self.dirname)


FORMATS = {
    "zarr3": Format("zarr3", "zarr v3, zstd(3)", "zarr", 3, "vol_v3.zarr", "zarr3", "zstd", 3,
                    volumes.write_zarr_v3_zstd),
    "zarr2": Format("zarr2", "zarr v2, blosc lz4(5) + shuffle", "zarr", 2, "vol_v2.zarr", "zarr",
                    "blosc-lz4-shuffle", 5, volumes.write_zarr_v2_blosc_lz4),
    "n5": Format("n5", "N5, gzip(1)", "n5", None, "vol.n5", "n5", "gzip", 1,
                 volumes.write_n5_gzip),
}


def init_container(fmt: Format, container: str) -> None:
    """An empty root group for ``fmt`` at ``container`` (replacing whatever is there)."""
    shutil.rmtree(container, ignore_errors=True)
    if fmt.kind == "zarr":
        import zarr

        zarr.open_group(container, mode="w", zarr_format=fmt.zarr_format)
    else:
        import z5py

        z5py.File(container, "w", use_zarr_format=False)


# --------------------------------------------------------------------------------------------
# Readers (and writers): one small class per library.


class Reader:
    """How one library opens, reads, creates and writes an array of each format."""

    name = ""
    workloads: tuple[str, ...] = WORKLOADS

    def unsupported(self, fmt: Format, workload: str) -> str | None:
        """Why this library cannot run ``workload`` on ``fmt``, or None."""
        return None

    def context(self) -> contextlib.AbstractContextManager[Any]:
        """Entered around every repetition (library configuration)."""
        return contextlib.nullcontext()

    def open(self, fmt: Format, root: str) -> Any:
        raise NotImplementedError

    def read(self, handle: Any, region: Region) -> np.ndarray:
        return handle[region]

    def create(self, fmt: Format, container: str, shape: tuple[int, ...], dtype: Any,
               chunks: tuple[int, ...]) -> Any:
        raise NotImplementedError

    def write(self, handle: Any, region: Region, data: np.ndarray) -> None:
        handle[region] = data


class Ours(Reader):
    name = "ours"

    def open(self, fmt: Format, root: str) -> Any:
        import bioimage_py

        return bioimage_py.open_source(fmt.container(root), internal_path=KEY)

    def create(self, fmt: Format, container: str, shape: tuple[int, ...], dtype: Any,
               chunks: tuple[int, ...]) -> Any:
        from bioimage_py import create_array

        extra = {"zarr_format": fmt.zarr_format} if fmt.kind == "zarr" else {}
        return create_array(container, KEY, shape=shape, dtype=dtype, chunks=chunks,
                            format=fmt.kind, compression=fmt.ours_compression,
                            compression_level=fmt.ours_level, overwrite=True, **extra)


class TensorStore(Reader):
    """tensorstore with a default (fresh, unshared) context, or with a cache pool as large as
    our decoded-chunk cache (``cache_bytes``), which only the halo pattern W2 can profit from."""

    def __init__(self, cache_bytes: int = 0) -> None:
        self.cache_bytes = cache_bytes
        self.name = "tensorstore+cache" if cache_bytes else "tensorstore"
        self.workloads = ("W2",) if cache_bytes else WORKLOADS

    def _open(self, spec: dict[str, Any], fmt: Format, **kwargs: Any) -> Any:
        import tensorstore as ts

        if self.cache_bytes:
            kwargs["context"] = ts.Context({"cache_pool": {"total_bytes_limit": self.cache_bytes}})
        store = ts.open(spec, **kwargs).result()
        # tensorstore exposes N5 in the stored (x, y, z) order; a lazy transpose gives the
        # (z, y, x) view every other library (and the reference) uses.
        return store.T if fmt.kind == "n5" else store

    def open(self, fmt: Format, root: str) -> Any:
        path = os.path.join(fmt.container(root), KEY)
        spec = {"driver": fmt.ts_driver, "kvstore": {"driver": "file", "path": path}}
        return self._open(spec, fmt, read=True)

    def read(self, handle: Any, region: Region) -> np.ndarray:
        return handle[region].read().result()

    def create(self, fmt: Format, container: str, shape: tuple[int, ...], dtype: Any,
               chunks: tuple[int, ...]) -> Any:
        dtype = np.dtype(dtype)
        if fmt.key == "zarr3":
            metadata: dict[str, Any] = {
                "shape": list(shape), "data_type": dtype.name, "fill_value": 0,
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
                "chunk_key_encoding": {"name": "default"},
                "codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                           {"name": "zstd", "configuration": {"level": 3, "checksum": False}}],
            }
        elif fmt.key == "zarr2":
            metadata = {
                "shape": list(shape), "chunks": list(chunks), "dtype": dtype.newbyteorder("<").str,
                "fill_value": 0, "order": "C", "filters": None,
                "compressor": {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1,
                               "blocksize": 0},
            }
        else:
            metadata = {"dimensions": list(shape)[::-1], "blockSize": list(chunks)[::-1],
                        "dataType": dtype.name, "compression": {"type": "gzip", "level": 1}}
        spec = {"driver": fmt.ts_driver, "metadata": metadata,
                "kvstore": {"driver": "file", "path": os.path.join(container, KEY)}}
        return self._open(spec, fmt, create=True, delete_existing=True)

    def write(self, handle: Any, region: Region, data: np.ndarray) -> None:
        handle[region].write(data).result()


class ZarrPython(Reader):
    """zarr-python 3 with its default codec pipeline, or with zarrs' (``zarrs=True``), strict so
    an array zarrs cannot handle fails instead of silently falling back to the default one."""

    def __init__(self, zarrs: bool = False) -> None:
        self.zarrs = zarrs
        self.name = "zarrs" if zarrs else "zarr-python"

    def unsupported(self, fmt: Format, workload: str) -> str | None:
        if fmt.kind == "n5":
            return "zarr-python 3 has no N5 store"
        return None

    def context(self) -> contextlib.AbstractContextManager[Any]:
        if not self.zarrs:
            return contextlib.nullcontext()
        import zarr

        return zarr.config.set({"codec_pipeline.path": "zarrs.ZarrsCodecPipeline",
                                "codec_pipeline.strict": True})

    def _checked(self, array: Any) -> Any:
        pipeline = array._async_array.codec_pipeline
        name = type(pipeline).__name__
        if self.zarrs and (name != "ZarrsCodecPipeline" or getattr(pipeline, "impl", None) is None):
            raise RuntimeError(f"the zarrs codec pipeline is not active (got {name})")
        if not self.zarrs and name == "ZarrsCodecPipeline":
            raise RuntimeError("zarr-python is using the zarrs pipeline outside its context")
        return array

    def open(self, fmt: Format, root: str) -> Any:
        import zarr

        return self._checked(zarr.open_array(os.path.join(fmt.container(root), KEY), mode="r"))

    def create(self, fmt: Format, container: str, shape: tuple[int, ...], dtype: Any,
               chunks: tuple[int, ...]) -> Any:
        create = volumes.create_zarr_v3_zstd if fmt.key == "zarr3" else volumes.create_zarr_v2_blosc_lz4
        return self._checked(create(container, KEY, shape, dtype, chunks))


class Z5py(Reader):
    """z5py (N5, zarr v2 and, in z5py >= 3, zarr v3), with one I/O thread per core."""

    name = "z5py"

    def open(self, fmt: Format, root: str) -> Any:
        import z5py

        f = z5py.File(fmt.container(root), "r", use_zarr_format=fmt.kind == "zarr")
        dataset = f[KEY]
        dataset.n_threads = os.cpu_count() or 1
        return dataset

    def create(self, fmt: Format, container: str, shape: tuple[int, ...], dtype: Any,
               chunks: tuple[int, ...]) -> Any:
        if fmt.kind == "n5":
            return volumes.create_n5_gzip(container, KEY, shape, dtype, chunks)
        import z5py

        threads = os.cpu_count() or 1
        if fmt.zarr_format == 3:
            f = z5py.File(container, "a", use_zarr_format=True, zarr_format=3)
            return f.create_dataset(KEY, shape=shape, chunks=chunks, dtype=dtype,
                                    compression="zstd", level=3, n_threads=threads)
        f = z5py.File(container, "a", use_zarr_format=True)
        return f.create_dataset(KEY, shape=shape, chunks=chunks, dtype=dtype, compression="blosc",
                                codec="lz4", clevel=5, shuffle=1, n_threads=threads)


def all_readers() -> list[Reader]:
    from bioimage_py import _core

    return [Ours(), TensorStore(), TensorStore(cache_bytes=_core.DEFAULT_CHUNK_CACHE_BYTES),
            ZarrPython(), ZarrPython(zarrs=True), Z5py()]


# --------------------------------------------------------------------------------------------
# Running one workload.


class Mismatch(Exception):
    """A reader's result differs from the reference."""


def check_equal(result: Any, expected: np.ndarray, what: str) -> None:
    result = np.asarray(result)
    if result.shape != expected.shape or result.dtype != expected.dtype:
        raise Mismatch(f"{what}: got {result.dtype}{result.shape}, expected "
                       f"{expected.dtype}{expected.shape}")
    if not np.array_equal(result, expected):
        raise Mismatch(f"{what}: {int(np.count_nonzero(result != expected))} voxels differ")


def time_reads(reader: Reader, fmt: Format, root: str, regions: list[Region],
               reference: np.ndarray, check: bool) -> float:
    """Open a fresh handle and read every region; the summed time of the open and the reads
    (comparisons with the reference, on the checking repetition, are not timed)."""
    elapsed = 0.0
    with reader.context():
        start = time.perf_counter()
        handle = reader.open(fmt, root)
        elapsed += time.perf_counter() - start
        for region in regions:
            start = time.perf_counter()
            result = reader.read(handle, region)
            elapsed += time.perf_counter() - start
            if check:
                check_equal(result, reference[region], f"region {region}")
            del result
        del handle
    return elapsed


def time_writes(reader: Reader, fmt: Format, container: str, regions: list[Region],
                reference: np.ndarray, chunks: tuple[int, ...]) -> float:
    """Create a fresh array in an empty group and write every region from memory (each block
    copied to a contiguous array first, untimed, as a runner's output would be)."""
    init_container(fmt, container)
    elapsed = 0.0
    with reader.context():
        start = time.perf_counter()
        handle = reader.create(fmt, container, reference.shape, reference.dtype, chunks)
        elapsed += time.perf_counter() - start
        for region in regions:
            block = np.ascontiguousarray(reference[region])
            start = time.perf_counter()
            reader.write(handle, region, block)
            elapsed += time.perf_counter() - start
        del handle
    return elapsed


def read_back(fmt: Format, container: str) -> np.ndarray:
    """The array at ``container/data`` read by the reference peer (zarr-python or z5py)."""
    if fmt.kind == "zarr":
        import zarr

        return zarr.open_array(os.path.join(container, KEY), mode="r")[...]
    import z5py

    return z5py.File(container, "r", use_zarr_format=False)[KEY][...]


def measure_peak_memory(reader: Reader, fmt: Format, root: str, timeout: float) -> dict[str, Any]:
    """Peak RSS growth of one full read, in a fresh interpreter (so earlier work does not hide
    it and Rust/C++ allocations count), after a one-voxel warm-up read on another handle."""
    cmd = [sys.executable, os.path.abspath(__file__), "--peak-memory-child", reader.name,
           fmt.key, "--workdir", root]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip()
                           else f"exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peak_memory_child(reader_name: str, fmt_key: str, root: str) -> None:
    reader = next(r for r in all_readers() if r.name == reader_name)
    fmt = FORMATS[fmt_key]
    with reader.context():
        # warm up on a handle of its own (code pages, thread pools), so only the read counts
        warm = reader.open(fmt, root)
        reader.read(warm, (slice(0, 1),) * 3)
        del warm
        handle = reader.open(fmt, root)
        reset = harness.reset_peak_rss()
        before = harness.rss_bytes()
        result = reader.read(handle, (slice(None),) * 3)
        peak = harness.peak_rss_bytes()
    growth = peak - before
    print(json.dumps({"growth_bytes": growth, "array_bytes": int(result.nbytes),
                      "ratio": growth / result.nbytes, "exact": reset}))


# --------------------------------------------------------------------------------------------
# Reporting.

CellResult = dict[str, Any]  # {"seconds": best or None, "reps": [...], "note": str | None}


def best_peer(row: dict[str, CellResult]) -> tuple[str | None, float | None]:
    times = {name: cell["seconds"] for name, cell in row.items()
             if name != "ours" and cell.get("seconds") is not None}
    if not times:
        return None, None
    name = min(times, key=times.__getitem__)
    return name, times[name]


def format_table(fmt: Format, results: dict[str, Any], reader_names: list[str],
                 workload_labels: dict[str, str]) -> str:
    headers = ["workload", *[f"{n} (s)" for n in reader_names], "best peer (s)",
               "ours vs best peer", "target", "met"]
    rows = []
    notes: dict[tuple[str, str], list[str]] = {}  # (reader, note) -> the rows it applies to
    for workload in WORKLOADS:
        row = results["times"].get(workload)
        if row is None:
            continue
        cells = []
        for name in reader_names:
            cell = row.get(name)
            if cell is None:  # not one of this reader's workloads
                cells.append("-")
                continue
            cells.append(harness.fmt_seconds(cell.get("seconds")) if cell.get("seconds") is not None
                         else ("WRONG" if cell.get("wrong") else "n/a"))
            if cell.get("note"):
                notes.setdefault((name, cell["note"]), []).append(workload)
        peer, peer_time = best_peer(row)
        ours = row.get("ours", {}).get("seconds")
        ratio = peer_time / ours if ours and peer_time else None
        target = TARGETS[fmt.key].get(workload)
        met = "" if ratio is None or target is None else ("yes" if ratio >= target else "MISS")
        rows.append([workload_labels[workload], *cells,
                     f"{harness.fmt_seconds(peer_time)} ({peer})" if peer else "n/a",
                     harness.fmt_ratio(ratio), f">= {target}x" if target else "-", met])
    memory = results.get("memory", {})
    if memory:
        cells = []
        for name in reader_names:
            m = memory.get(name)
            if m is None:
                cells.append("-")
            elif m.get("ratio") is not None:
                cells.append(f"{m['ratio']:.2f}x" + ("" if m.get("exact", True) else "~"))
            else:
                cells.append("n/a")
                if m.get("note"):
                    notes.setdefault((name, m["note"]), []).append("W3 memory")
        ours = memory.get("ours", {}).get("ratio")
        met = "" if ours is None else ("yes" if ours <= MEMORY_TARGET else "MISS")
        rows.append(["W3 peak RSS growth / array size", *cells, "", "", f"<= {MEMORY_TARGET}x",
                     met])
    table = harness.markdown_table(headers, rows)
    if notes:
        table += "\n\n" + "\n".join(f"- {name} ({', '.join(rows_)}): {note}"
                                     for (name, note), rows_ in notes.items())
    return table


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=512, help="edge of the cubic volume (default 512)")
    p.add_argument("--chunks", type=int, default=64, help="chunk edge (default 64)")
    p.add_argument("--block", type=int, default=128, help="W2/W4 block edge (default 128)")
    p.add_argument("--halo", type=int, default=8, help="W2 halo (default 8)")
    p.add_argument("--repeat", type=int, default=3, help="repetitions, best counts (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset")
    p.add_argument("--readers", default=None,
                   help="comma-separated subset of: ours, tensorstore, tensorstore+cache, "
                        "zarr-python, zarrs, z5py (default: all)")
    p.add_argument("--memory", choices=("all", "ours", "none"), default="all",
                   help="W3 peak-memory subprocesses for every reader, ours only, or none")
    p.add_argument("--workdir", default=None,
                   help="where the data goes (default: a temporary directory, removed after)")
    p.add_argument("--json", default=None, help="save the results to this JSON file")
    p.add_argument("--peak-memory-child", nargs=2, metavar=("READER", "FORMAT"),
                   help=argparse.SUPPRESS)
    return p.parse_args(argv)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def workdir_for(args: argparse.Namespace) -> Iterator[str]:
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
        yield os.path.abspath(args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_zarr_n5_") as path:
            yield path


def run(args: argparse.Namespace, root: str) -> dict[str, Any]:
    size, chunks = args.size, (args.chunks,) * 3
    block, halo = (args.block,) * 3, (args.halo,) * 3
    formats = [FORMATS[k] for k in args.formats.split(",")]
    workloads = [w for w in WORKLOADS if w in args.workloads.split(",")]
    readers = all_readers()
    if args.readers:
        wanted = args.readers.split(",")
        unknown = set(wanted) - {r.name for r in readers}
        if unknown:
            raise SystemExit(f"unknown readers {sorted(unknown)}")
        readers = [r for r in readers if r.name in wanted]

    start = time.perf_counter()
    reference = volumes.synthetic_volume(size, seed=args.seed)
    generation = time.perf_counter() - start
    log(f"generated {reference.shape} {reference.dtype} in {generation:.1f} s "
        f"({reference.nbytes / 2**20:.0f} MiB, {np.mean(reference == 0):.0%} zero)")

    shape = reference.shape
    regions = {"W1": volumes.chunk_regions(shape, chunks),
               "W2": volumes.halo_block_regions(shape, block, halo),
               "W3": [(slice(0, size),) * 3],
               "W4": volumes.block_regions(shape, block)}
    labels = {"W1": f"W1 chunks ({len(regions['W1'])} reads)",
              "W2": f"W2 halo blocks ({len(regions['W2'])} reads)",
              "W3": "W3 full read",
              "W4": f"W4 block writes ({len(regions['W4'])} writes)"}

    report: dict[str, Any] = {
        "config": {"size": size, "chunks": chunks, "block": block, "halo": halo,
                   "repeat": args.repeat, "seed": args.seed, "generation_seconds": generation,
                   "zero_fraction": float(np.mean(reference == 0))},
        "environment": harness.environment(),
        "build_warning": harness.build_warning(),
        "formats": {},
    }

    for fmt in formats:
        container = fmt.container(root)
        init_container(fmt, container)
        start = time.perf_counter()
        fmt.peer_writer(container, KEY, reference, chunks)
        stats = volumes.storage_stats(container)
        log(f"{fmt.title}: written by the peer in {time.perf_counter() - start:.1f} s, "
            f"{stats['chunk_files']} chunk files, {stats['bytes'] / 2**20:.1f} MiB "
            f"(ratio {reference.nbytes / max(stats['bytes'], 1):.2f})")
        fmt_result: dict[str, Any] = {"title": fmt.title, "storage": stats, "times": {},
                                      "memory": {}}
        report["formats"][fmt.key] = fmt_result

        for workload in workloads:
            row: dict[str, CellResult] = {}
            fmt_result["times"][workload] = row
            active = []
            for reader in readers:
                if workload not in reader.workloads:
                    continue
                reason = reader.unsupported(fmt, workload)
                if reason:
                    row[reader.name] = {"seconds": None, "reps": [], "note": reason}
                else:
                    row[reader.name] = {"seconds": None, "reps": [], "note": None}
                    active.append(reader)
            for rep in range(args.repeat):
                for reader in active:
                    cell = row[reader.name]
                    if cell["note"]:  # failed earlier: do not retry
                        continue
                    try:
                        if workload == "W4":
                            out = os.path.join(root, "out", f"{fmt.key}-{reader.name}.{fmt.kind}")
                            seconds = time_writes(reader, fmt, out, regions["W4"], reference, chunks)
                            if rep == args.repeat - 1:  # the output must equal the reference
                                check_equal(read_back(fmt, out), reference, "written array")
                                shutil.rmtree(out, ignore_errors=True)
                        else:
                            seconds = time_reads(reader, fmt, root, regions[workload], reference,
                                                 check=rep == 0)
                    except Mismatch as exc:
                        cell.update(note=f"WRONG RESULT: {exc}", wrong=True, seconds=None)
                        log(f"  {fmt.key} {workload} {reader.name}: WRONG RESULT: {exc}")
                        continue
                    except Exception as exc:  # noqa: BLE001  (reported in the table, run goes on)
                        cell.update(note=f"error: {type(exc).__name__}: {exc}", seconds=None)
                        log(f"  {fmt.key} {workload} {reader.name}: "
                            f"{traceback.format_exc(limit=3)}")
                        continue
                    cell["reps"].append(seconds)
                    cell["seconds"] = min(cell["reps"])
                    log(f"  {fmt.key} {workload} {reader.name} rep {rep + 1}: {seconds:.3f} s")
            shutil.rmtree(os.path.join(root, "out"), ignore_errors=True)

        if "W3" in workloads and args.memory != "none":
            for reader in readers:
                if "W3" not in reader.workloads or (args.memory == "ours" and reader.name != "ours"):
                    continue
                reason = reader.unsupported(fmt, "W3")
                if reason:
                    fmt_result["memory"][reader.name] = {"ratio": None, "note": reason}
                    continue
                try:
                    m = measure_peak_memory(reader, fmt, root, timeout=600)
                except Exception as exc:  # noqa: BLE001
                    m = {"ratio": None, "note": f"error: {exc}"}
                fmt_result["memory"][reader.name] = m
                if m.get("ratio") is not None:
                    log(f"  {fmt.key} W3 memory {reader.name}: {m['ratio']:.2f}x the array")

        shutil.rmtree(container, ignore_errors=True)  # keep the disk footprint to one format
        names = [r.name for r in readers]
        fmt_result["table"] = format_table(fmt, fmt_result, names, labels)
    report["labels"] = labels
    return report


def print_report(report: dict[str, Any]) -> None:
    cfg, env = report["config"], report["environment"]
    print(f"\n## bench_zarr_n5: {cfg['size']}^3 uint16, chunks {cfg['chunks'][0]}^3, "
          f"blocks {cfg['block'][0]}^3 + halo {cfg['halo'][0]}, best of {cfg['repeat']}\n")
    print(f"{env['cpu_count']} cores, {env['platform']}, python {env['python']}; " + ", ".join(
        f"{k} {v}" for k, v in env["versions"].items() if v))
    print("Times in seconds (lower is better); ratio = best peer time / our time (> 1: we are "
          "faster). '~' on a memory ratio: the peak could not be reset, an upper bound.")
    for fmt in report["formats"].values():
        s = fmt["storage"]
        print(f"\n### {fmt['title']}  ({s['chunk_files']} chunk files, "
              f"{s['bytes'] / 2**20:.1f} MiB on disk)\n")
        print(fmt["table"])
    if report["build_warning"]:
        print(f"\nWARNING: {report['build_warning']}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.peak_memory_child:
        peak_memory_child(*args.peak_memory_child, args.workdir)
        return
    warning = harness.build_warning()
    if warning:
        log(f"WARNING: {warning}")
    with workdir_for(args) as root:
        report = run(args, root)
    print_report(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, default=str)
        log(f"results saved to {args.json}")


if __name__ == "__main__":
    main()
