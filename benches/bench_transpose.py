"""Transposing copies: ``bioimage_py.util.contiguous_transpose`` vs numpy.

Both sides produce a new C-contiguous array from the same input in the same run:
``numpy.ascontiguousarray(a.transpose(axes))`` against ``contiguous_transpose(a, axes)``.
Reports the best of N wall times (allocation of the result included on both sides) and the
speed-up ``numpy / ours``. The targets of issue 5 are >= 10x for uint8 and uint16 and >= 5x for
uint64 under (2, 1, 0) on a 256^3 volume.

Run: python benches/bench_transpose.py  (build the extension with --release first)
     python benches/bench_transpose.py --size 128 --repeat 3 --dtypes uint8  (quick look)
Threads: BIOIMAGE_PY_NUM_THREADS (default: all cores); numpy's copy is single-threaded.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import build_warning, environment, fmt_ratio, fmt_seconds, markdown_table  # noqa: E402

from bioimage_py.util import contiguous_transpose  # noqa: E402

DTYPES = ["uint8", "uint16", "float32", "uint64"]
# (2, 1, 0): full reversal (the hard case, zyx <-> xyz); (1, 2, 0) and (0, 2, 1): one fast axis
# moves; "F (2, 1, 0)": a Fortran-ordered input (what cloud-volume returns) to C order, which is
# contiguous after the permutation, i.e. a plain copy.
CASES: list[tuple[str, tuple[int, ...], bool]] = [
    ("(2, 1, 0)", (2, 1, 0), False),
    ("(1, 2, 0)", (1, 2, 0), False),
    ("(0, 2, 1)", (0, 2, 1), False),
    ("F (2, 1, 0) copy", (2, 1, 0), True),
]


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="edge of the cubic volume")
    parser.add_argument("--repeat", type=int, default=7, help="best of this many runs")
    parser.add_argument("--dtypes", nargs="+", default=DTYPES)
    args = parser.parse_args()

    warning = build_warning()
    if warning:
        print(f"WARNING: {warning}\n")
    env = environment()
    print(f"python {env['python']}, numpy {env['versions']['numpy']}, {env['cpu_count']} cores, "
          f"{env['platform']}\n")

    rng = np.random.default_rng(0)
    shape = (args.size,) * 3
    base = rng.integers(0, 256, size=shape, dtype=np.uint8)
    rows = []
    for dtype in args.dtypes:
        c_array = base.astype(dtype)
        f_array = np.asfortranarray(c_array)
        for name, axes, fortran in CASES:
            array = f_array if fortran else c_array
            ours = contiguous_transpose(array, axes)
            assert np.array_equal(ours, np.ascontiguousarray(array.transpose(axes)))
            del ours
            if fortran:
                t_numpy = best_of(lambda: array.transpose(axes).copy(order="C"), args.repeat)
            else:
                t_numpy = best_of(lambda: np.ascontiguousarray(array.transpose(axes)), args.repeat)
            t_ours = best_of(lambda: contiguous_transpose(array, axes), args.repeat)
            mb = array.nbytes / 1e6
            rows.append([dtype, name, f"{mb:.0f}", fmt_seconds(t_numpy * 1e3),
                         fmt_seconds(t_ours * 1e3), f"{mb / 1e3 / t_ours:.1f}",
                         fmt_ratio(t_numpy / t_ours)])
    print(f"{args.size}^3 volume, best of {args.repeat}, milliseconds (result allocation included)")
    print(markdown_table(
        ["dtype", "axes", "MB", "numpy ms", "ours ms", "ours GB/s", "numpy/ours"], rows))


if __name__ == "__main__":
    main()
