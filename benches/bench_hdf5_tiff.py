"""HDF5 reads against h5py, and TIFF-stack slab reads against tifffile.

BUILD FIRST, IN RELEASE MODE: timings of a debug build are meaningless.

    .venv/bin/maturin develop --release      (or: pip install .)
    python benches/bench_hdf5_tiff.py                        # the full run: 512^3, best of 3
    python benches/bench_hdf5_tiff.py --size 128 --repeat 1  # a quick smoke run

Data: the synthetic uint16 volume of ``bench_zarr_n5.py`` (``volumes.synthetic_volume``).
- HDF5: written by h5py as dataset ``data``, gzip(1), 64^3 chunks. Workloads as in
  ``bench_zarr_n5.py``: W1 every chunk with one read call each; W2 128^3 blocks grown by an
  8-voxel halo (the block-wise runner's reads); W3 the whole volume in one call; W4 a new
  dataset (gzip(1), 64^3 chunks) written with 128^3 blocks from memory. Ours (``open_source``:
  chunk index once, positional reads, inflate in parallel outside the HDF5 lock, decoded-chunk
  cache; writes deflated in parallel and stored with direct chunk writes) against h5py (its
  default chunk cache, which the halo reads overflow).
- TIFF: written by tifffile as one uncompressed multi-page file (one page per z-slice, so
  tifffile can memory-map it) and as a zlib-compressed one. Workload: consecutive 16-slice
  z-slabs covering the stack (slab-wise processing). Readers: ours (``open_source``) and
  tifffile (``tifffile.memmap`` for the plain file, ``imread(key=range)`` for the compressed one).

Every reader opens a fresh handle per repetition, and the open is timed. Results are checked
against the numpy volume once before timing. Ratio = peer time / ours (> 1: we are faster).
Files are read from the page cache (written moments before): decoding and copying are measured,
not the disk.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import volumes  # noqa: E402

import bioimage_py as bp  # noqa: E402
from bioimage_py import create_array  # noqa: E402

CHUNKS = (64, 64, 64)
TARGETS = {"W1": 1.5, "W2": 5.0, "W3": 2.0, "W4": None}  # issue 4, ours against h5py


def best_of(repeat: int, run: Callable[[], Any], check: Callable[[Any], None]) -> float:
    """Best wall time of ``repeat`` runs; the first run's result is checked."""
    best = float("inf")
    for i in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
        if i == 0:
            check(result)
    return best


def hdf5_rows(tmp: str, data: np.ndarray, repeat: int) -> list[list[str]]:
    import h5py

    path = os.path.join(tmp, "volume.h5")
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=data, chunks=CHUNKS, compression="gzip", compression_opts=1)
    shape = data.shape
    workloads = {
        "W1": volumes.chunk_regions(shape, CHUNKS),
        "W2": volumes.halo_block_regions(shape, (128,) * 3, (8,) * 3),
        "W3": [(slice(None),) * 3],
    }

    def ours(regions):
        def run():
            src = bp.open_source(path, "data")
            return [src[r] for r in regions]
        return run

    def peer(regions):
        def run():
            with h5py.File(path, "r") as f:
                d = f["data"]
                return [d[r] for r in regions]
        return run

    def check(regions):
        def verify(results):
            for region, result in zip(regions, results):
                np.testing.assert_array_equal(result, data[region])
        return verify

    blocks = volumes.block_regions(shape, (128,) * 3)

    def ours_write():
        out = create_array(os.path.join(tmp, "ours.h5"), "data", shape=shape, dtype=data.dtype,
                           chunks=CHUNKS, compression="gzip", compression_level=1,
                           overwrite=True)
        for block in blocks:
            out[block] = data[block]
        return os.path.join(tmp, "ours.h5")

    def peer_write():
        with h5py.File(os.path.join(tmp, "peer.h5"), "w") as f:
            d = f.create_dataset("data", shape=shape, dtype=data.dtype, chunks=CHUNKS,
                                 compression="gzip", compression_opts=1)
            for block in blocks:
                d[block] = data[block]
        return os.path.join(tmp, "peer.h5")

    def check_written(path):
        with h5py.File(path, "r") as f:
            np.testing.assert_array_equal(f["data"][...], data)

    rows = []
    for name, regions in workloads.items():
        ours_s = best_of(repeat, ours(regions), check(regions))
        h5py_s = best_of(repeat, peer(regions), check(regions))
        ratio = h5py_s / ours_s
        rows.append([
            f"HDF5 gzip(1) {name}", harness.fmt_seconds(ours_s), harness.fmt_seconds(h5py_s),
            harness.fmt_ratio(ratio),
            f"{TARGETS[name]:.1f}x {'met' if ratio >= TARGETS[name] else 'MISS'}",
        ])
    ours_s = best_of(repeat, ours_write, check_written)
    h5py_s = best_of(repeat, peer_write, check_written)
    rows.append(["HDF5 gzip(1) W4 block writes", harness.fmt_seconds(ours_s),
                 harness.fmt_seconds(h5py_s), harness.fmt_ratio(h5py_s / ours_s), "-"])
    return rows


def tiff_rows(tmp: str, data: np.ndarray, repeat: int) -> list[list[str]]:
    import tifffile

    slabs = [(slice(z, min(z + 16, data.shape[0])),) for z in range(0, data.shape[0], 16)]
    rows = []
    for label, compression in (("TIFF plain", None), ("TIFF zlib", "zlib")):
        path = os.path.join(tmp, f"stack-{label.split()[1]}.tif")
        tifffile.imwrite(path, data, compression=compression, photometric="minisblack")

        def ours():
            src = bp.open_source(path)
            return [src[s] for s in slabs]

        def peer():
            if compression is None:
                stack = tifffile.memmap(path, mode="r")
                return [np.array(stack[s]) for s in slabs]
            with tifffile.TiffFile(path) as tif:
                return [tif.asarray(key=range(s[0].start, s[0].stop)) for s in slabs]

        def check(results):
            for slab, result in zip(slabs, results):
                np.testing.assert_array_equal(result, data[slab])

        ours_s = best_of(repeat, ours, check)
        peer_s = best_of(repeat, peer, check)
        rows.append([f"{label} 16-slice slabs", harness.fmt_seconds(ours_s),
                     harness.fmt_seconds(peer_s), harness.fmt_ratio(peer_s / ours_s), "-"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="edge of the cubic volume")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    warning = harness.build_warning()
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)
    data = volumes.synthetic_volume(args.size)
    tmp = tempfile.mkdtemp(prefix="bench_hdf5_tiff_")
    try:
        rows = hdf5_rows(tmp, data, args.repeat) + tiff_rows(tmp, data, args.repeat)
    finally:
        shutil.rmtree(tmp)
    print(f"\n{args.size}^3 uint16, best of {args.repeat}, {os.cpu_count()} cores\n")
    print(harness.markdown_table(
        ["workload", "ours", "peer (h5py / tifffile)", "peer / ours", "target"], rows))


if __name__ == "__main__":
    main()
