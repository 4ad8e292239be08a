"""Uncompressed TIFF and MRC region reads: ours (``pread``, ``io/raw_file.py``) against reading
the same regions out of a numpy memory map (what tifffile and mrcfile give, and what our readers
did before issue 12), through the same ``Source`` layers, and out of the bare memory map.

    python benches/bench_raw_reads.py                  # 512^3 uint16, best of 5
    python benches/bench_raw_reads.py --size 128 --repeat 1   # a quick smoke run

Why the comparison: a memory map over a file that shrinks kills the process with SIGBUS, so we
read with ``pread`` instead; this measures what that costs per access pattern, the file in the
page cache (written moments before) and the map kept open between reads (its best case: pages
already mapped). Workloads: z-slabs (slab-wise processing), cubic blocks (block-wise
processing), whole planes along each axis (orthogonal views), a small region, the whole volume.
Ratio = ours / memmap source (> 1: ours is slower). Pure Python and numpy: no release build
needed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bioimage_py as bp  # noqa: E402
import harness  # noqa: E402
from bioimage_py.io.reader_array import ReaderArray  # noqa: E402
from bioimage_py.sources import ArraySource  # noqa: E402


class MappedArray(ReaderArray):
    """Regions copied out of a memory map: our TIFF and MRC readers before issue 12."""

    def __init__(self, mapped: np.ndarray) -> None:
        self._map = mapped
        self._shape = tuple(mapped.shape)
        self._dtype = mapped.dtype.newbyteorder("=")

    def _read(self, roi: tuple[slice, ...]) -> np.ndarray:
        return np.array(self._map[roi], dtype=self._dtype)


def workloads(n: int) -> dict[str, list[tuple[slice, ...]]]:
    """Each workload: the regions one repetition reads."""
    full = slice(None)
    half = n // 2
    block = max(n // 8, 1)
    return {
        "16-slice z-slabs (all)": [np.s_[z:z + 16, :, :] for z in range(0, n, 16)],
        f"{block}^3 blocks (64 of them)": [
            np.s_[z:z + block, y:y + block, x:x + block]
            for z in range(0, 4 * block, block) for y in range(0, 4 * block, block)
            for x in range(0, 4 * block, block)
        ],
        f"{2 * block}^3 blocks (8 of them)": [
            np.s_[z:z + 2 * block, y:y + 2 * block, x:x + 2 * block]
            for z in (0, 2 * block) for y in (0, 2 * block) for x in (0, 2 * block)
        ],
        "one z-plane (yx)": [np.s_[half, full, full]],
        "one y-plane (zx)": [np.s_[full, half, full]],
        "one x-plane (zy)": [np.s_[full, full, half]],
        "8^3 region (x100)": [np.s_[z:z + 8, 8:16, 8:16] for z in range(0, 100 % n + 1)][:100],
        "whole volume": [np.s_[...]],
    }


def best_of(repeat: int, run: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512, help="edge of the uint16 cube")
    parser.add_argument("--repeat", type=int, default=5, help="best of this many")
    args = parser.parse_args()
    import mrcfile
    import tifffile

    n = args.size
    data = np.random.default_rng(0).integers(0, 60000, (n, n, n), dtype=np.uint16)
    tmp = tempfile.mkdtemp(prefix="bench_raw_reads_")
    try:
        tif = os.path.join(tmp, "v.tif")
        tifffile.imwrite(tif, data, photometric="minisblack")
        mrc = os.path.join(tmp, "v.mrc")
        with mrcfile.new(mrc) as f:
            f.set_data(data.astype(np.int16))
        rows = []
        for label, path, mapped in (
            ("tif", tif, tifffile.memmap(tif, mode="r")),
            ("mrc", mrc, mrcfile.mmap(mrc, mode="r").data[..., ::-1, :]),
        ):
            ours = bp.open_source(path)
            before = ArraySource(MappedArray(mapped))
            for name, regions in workloads(n).items():
                for roi in regions[:2]:  # same values once before timing
                    np.testing.assert_array_equal(ours[roi], mapped[roi])
                t_ours = best_of(args.repeat, lambda: [ours[r] for r in regions])
                t_before = best_of(args.repeat, lambda: [before[r] for r in regions])
                t_map = best_of(args.repeat, lambda: [np.array(mapped[r]) for r in regions])
                rows.append([label, name, fmt_ms(t_ours),
                             fmt_ms(t_before), fmt_ms(t_map),
                             harness.fmt_ratio(t_ours / t_before)])
        print(f"{n}^3 uint16 (MRC int16, y flipped as presented), best of {args.repeat}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
        print(harness.markdown_table(
            ["file", "workload", "ours (pread) ms", "memmap source ms", "bare memmap ms",
             "ours / memmap source"], rows))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
