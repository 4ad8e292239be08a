"""Format conversion against the peers: zarr v3 -> N5 and N5 -> zarr v3 with 2 workers.

BUILD FIRST, IN RELEASE MODE: timings of a debug build are meaningless.

    .venv/bin/maturin develop --release                # (or: pip install .)
    python benches/bench_convert.py                    # 512^3 uint16, best of 3 (~2-4 min)
    python benches/bench_convert.py --quick            # 128^3, one repetition: a smoke run
    python benches/bench_convert.py --size 256 --workers 4 --repeat 5 --json out.json

Data: ``volumes.synthetic_volume`` (the volume of ``bench_zarr_n5.py``), chunks 64^3, stored by
the peer libraries as zarr v3 zstd(3) (zarr-python) and N5 gzip(1) (z5py). Each conversion writes
a fresh array of the other format with the same chunks and that format's compression of the
benchmark (N5 gzip(1), zarr v3 zstd(3)).

Converters, each with ``--workers`` workers (2 by default):
- ours (threads): ``bioimage_py.copy(open_source(src), create_array(dst), num_workers=W)``
  with the default block shape (the output chunks);
- ours (processes): the same with ``job_type="subprocess"`` (process start-up included);
- tensorstore: ``dst.write(src)`` between two TensorStores, data copy and file I/O concurrency
  limited to W;
- zarr-python/z5py: the peers' own libraries for each format, whole-array read then write
  (zarr-python reads zarr v3 and writes it; z5py, with ``n_threads=W``, reads and writes N5).
Every output is checked against the volume once (read back with the peer library) before times
count. Times are the best of ``--repeat`` repetitions, interleaved across converters, and
include opening the input and creating the output. Ratios are peer time / our best time: > 1
means we are faster (target: >= 1.5x the best peer). Files come from the page cache.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import volumes  # noqa: E402

KEY = "data"
CHUNKS = (64, 64, 64)
TARGET = 1.5
FORMATS = {"zarr3": "zarr v3, zstd(3)", "n5": "N5, gzip(1)"}
CONVERSIONS = [("zarr3", "n5"), ("n5", "zarr3")]

Converter = Callable[[str, str, str, int, tuple[int, ...], np.dtype], None]


def container(root: str, fmt: str, role: str) -> str:
    return os.path.join(root, f"{role}.{'zarr' if fmt == 'zarr3' else 'n5'}")


# --- converters: (src container, src format, dst container, workers, shape, dtype) -------------


def ours(job_type: str) -> Converter:
    def convert(src: str, fmt: str, dst: str, workers: int, shape: tuple[int, ...],
                dtype: np.dtype) -> None:
        from bioimage_py import copy, open_source
        from bioimage_py import create_array

        out_fmt = "n5" if fmt == "zarr3" else "zarr3"
        compression, level = ("gzip", 1) if out_fmt == "n5" else ("zstd", 3)
        output = create_array(dst, KEY, shape=shape, dtype=dtype, chunks=CHUNKS,
                              format="n5" if out_fmt == "n5" else "zarr",
                              compression=compression, compression_level=level, overwrite=True)
        copy(open_source(src, KEY), output, job_type=job_type, num_workers=workers,
             progress=False)

    return convert


def tensorstore(src: str, fmt: str, dst: str, workers: int, shape: tuple[int, ...],
                dtype: np.dtype) -> None:
    import tensorstore as ts

    context = ts.Context({"data_copy_concurrency": {"limit": workers},
                          "file_io_concurrency": {"limit": workers}})
    driver = "zarr3" if fmt == "zarr3" else "n5"
    source = ts.open({"driver": driver, "kvstore": {"driver": "file",
                                                    "path": os.path.join(src, KEY)}},
                     read=True, context=context).result()
    if fmt == "n5":
        # tensorstore presents N5 in the stored (x, y, z) order; transpose to (z, y, x).
        source = source.T
        metadata: dict[str, Any] = {
            "shape": list(shape), "data_type": dtype.name, "fill_value": 0,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(CHUNKS)}},
            "chunk_key_encoding": {"name": "default"},
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                       {"name": "zstd", "configuration": {"level": 3, "checksum": False}}],
        }
        out_driver = "zarr3"
    else:
        metadata = {"dimensions": list(shape)[::-1], "blockSize": list(CHUNKS)[::-1],
                    "dataType": dtype.name, "compression": {"type": "gzip", "level": 1}}
        out_driver = "n5"
        import z5py

        z5py.File(dst, "a")  # the container's root group, so that N5 readers find the dataset
    target = ts.open({"driver": out_driver, "metadata": metadata,
                      "kvstore": {"driver": "file", "path": os.path.join(dst, KEY)}},
                     create=True, delete_existing=True, context=context).result()
    if out_driver == "n5":
        target = target.T
    target.write(source).result()


def zarr_python_z5py(src: str, fmt: str, dst: str, workers: int, shape: tuple[int, ...],
                     dtype: np.dtype) -> None:
    import z5py
    import zarr

    if fmt == "zarr3":
        data = zarr.open_array(os.path.join(src, KEY), mode="r")[...]
        output = volumes.create_n5_gzip(dst, KEY, shape, dtype, CHUNKS)
        output.n_threads = workers
        output[...] = data
    else:
        dataset = z5py.File(src, "r")[KEY]
        dataset.n_threads = workers
        data = dataset[...]
        volumes.create_zarr_v3_zstd(dst, KEY, shape, dtype, CHUNKS)[...] = data


CONVERTERS: dict[str, Converter] = {
    "ours (threads)": ours("local"),
    "ours (processes)": ours("subprocess"),
    "tensorstore": tensorstore,
    "zarr-python/z5py": zarr_python_z5py,
}
OURS = ("ours (threads)", "ours (processes)")
# Their workers are children of the fork server, not of this process: os.times() misses them.
FORKSERVER_WORKERS = ("ours (processes)",)


def read_back(dst: str, out_fmt: str) -> np.ndarray:
    """The converted array as the peer library reads it."""
    if out_fmt == "n5":
        import z5py

        return z5py.File(dst, "r")[KEY][...]
    import zarr

    return zarr.open_array(os.path.join(dst, KEY), mode="r")[...]


# --- running -----------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace, root: str) -> dict[str, Any]:
    size = args.size
    log(f"generating the {size}^3 volume ...")
    volume = volumes.synthetic_volume(size)
    shape, dtype = volume.shape, volume.dtype
    volumes.write_zarr_v3_zstd(container(root, "zarr3", "input"), KEY, volume, CHUNKS)
    volumes.write_n5_gzip(container(root, "n5", "input"), KEY, volume, CHUNKS)
    names = [n for n in CONVERTERS if args.only is None or n in args.only.split(",")]
    times: dict[str, dict[str, float]] = {f"{a}->{b}": {} for a, b in CONVERSIONS}
    cpu: dict[str, dict[str, float]] = {f"{a}->{b}": {} for a, b in CONVERSIONS}
    load_before = os.getloadavg()[0]
    for repetition in range(args.repeat):
        for src_fmt, out_fmt in CONVERSIONS:
            row = times[f"{src_fmt}->{out_fmt}"]
            for name in names:
                src = container(root, src_fmt, "input")
                dst = container(root, out_fmt, f"out_{len(row)}")
                shutil.rmtree(dst, ignore_errors=True)
                before, started = os.times(), time.perf_counter()
                CONVERTERS[name](src, src_fmt, dst, args.workers, shape, dtype)
                seconds, after = time.perf_counter() - started, os.times()
                if name not in FORKSERVER_WORKERS:
                    cpu_row = cpu[f"{src_fmt}->{out_fmt}"]
                    cpu_row[name] = min(cpu_seconds(before, after),
                                        cpu_row.get(name, float("inf")))
                if repetition == 0 and not np.array_equal(read_back(dst, out_fmt), volume):
                    raise AssertionError(f"{name} converted {src_fmt} -> {out_fmt} wrongly")
                shutil.rmtree(dst, ignore_errors=True)
                row[name] = min(seconds, row.get(name, float("inf")))
                log(f"  rep {repetition + 1} {src_fmt} -> {out_fmt} {name}: {seconds:.3f} s "
                    f"(cpu {cpu_seconds(before, after):.3f} s)")
    return {"size": size, "workers": args.workers, "repeat": args.repeat,
            "mib": volume.nbytes / 2**20, "times": times, "cpu": cpu,
            "load": [load_before, os.getloadavg()[0]], "environment": harness.environment()}


def cpu_seconds(before: os.times_result, after: os.times_result) -> float:
    """CPU time between two ``os.times()``: this process's threads and its reaped children.

    Unlike wall time it hardly depends on what else the machine runs, so it tells the work apart
    from the waiting on a busy machine."""
    return sum(getattr(after, f) - getattr(before, f)
               for f in ("user", "system", "children_user", "children_system"))


def report(results: dict[str, Any]) -> str:
    names = list(CONVERTERS)
    headers = ["conversion", *names, "best peer / ours", f"target >= {TARGET}x"]
    rows = []
    for conversion, row in results["times"].items():
        a, b = conversion.split("->")
        ours_best = min((row[n] for n in OURS if n in row), default=None)
        peers = [row[n] for n in names if n not in OURS and n in row]
        ratio = None if ours_best is None or not peers else min(peers) / ours_best
        cells = [f"{FORMATS[a]} -> {FORMATS[b]}"]
        for name in names:
            seconds = row.get(name)
            cell = harness.fmt_seconds(seconds) + " s" if seconds is not None else "n/a"
            if name in results.get("cpu", {}).get(conversion, {}):
                cell += f" / cpu {harness.fmt_seconds(results['cpu'][conversion][name])} s"
            if seconds is not None and ours_best is not None and name not in OURS:
                cell += f" ({harness.fmt_ratio(seconds / ours_best)})"
            cells.append(cell)
        met = "n/a" if ratio is None else ("yes" if ratio >= TARGET else "no")
        rows.append([*cells, harness.fmt_ratio(ratio), met])
    title = (f"## bench_convert: {results['size']}^3 uint16 ({results['mib']:.0f} MiB), chunks "
             f"64^3, {results['workers']} workers, best of {results['repeat']}\n\n"
             "Wall seconds / CPU seconds (best of each); in brackets: that peer's wall time / "
             "our best wall time (> 1: we are faster). Load average before and after: "
             f"{results['load'][0]:.1f}, {results['load'][1]:.1f} on {os.cpu_count()} cores "
             "(provisional when above the number of cores).\n")
    return title + "\n" + harness.markdown_table(headers, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="edge of the cubic volume")
    parser.add_argument("--workers", type=int, default=2, help="workers of every converter")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (best counts)")
    parser.add_argument("--quick", action="store_true", help="--size 128 --repeat 1")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(CONVERTERS)}")
    parser.add_argument("--workdir", help="where to write the data (default: a temp dir)")
    parser.add_argument("--json", help="also save the results to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.repeat = 128, 1
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    harness.run_and_report(args, "bench_convert_", run, report)


if __name__ == "__main__":
    main()
