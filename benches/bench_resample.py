"""Resampling: ``ResizedSource`` / ``AffineSource`` whole reads vs bioimage-cpp and scipy.ndimage.

Same data, same run: a float32 image (smooth plus noise) and uint64 labels (blocks of ids), at
``--size`` (default 256) per axis, for interpolation orders 0, 1 and 3:

* ``down 2``: ``ResizedSource(vol, size // 2)`` (output voxel ``o`` samples input ``2 o``),
* ``up 2``: ``ResizedSource(vol[: size // 2] ** 3, size)`` (samples ``o / 2``),
* ``rotate``: ``AffineSource`` rotating the volume by (15, 10, 5) degrees about its centre,
* ``down 2 + aa`` (float32, order 1): with Gaussian anti-aliasing (sigma 0.5).

Against, on the whole array in one call: ``bioimage_cpp.transformation.affine_transform`` (or
``resample`` with anti-aliasing; what bioimage-py 0.2 runs, single-threaded) and
``scipy.ndimage.affine_transform`` with the same matrix (``mode="constant"``; for anti-aliasing
after ``gaussian_filter(sigma, truncate=3, mode="mirror")``). Not the same numbers for scipy:
its order 3 is a prefiltered cubic B-spline (the prefilter is a pass over the whole input),
bioimage-cpp's order 3 is Keys cubic convolution. Ours is checked equal to bioimage-cpp's.

Reports the best of N wall times and the ratios ``peer / ours`` (above 1: ours is faster).

Run: python benches/bench_resample.py  (a few minutes; scipy's order 3 dominates)
     python benches/bench_resample.py --size 128 --repeat 1  (quick look)
Threads: BIOIMAGE_PY_NUM_THREADS (default: all cores); bioimage-cpp and scipy use one.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import build_warning, environment, fmt_ratio, fmt_seconds, markdown_table  # noqa: E402

from bioimage_py.transformation import compute_affine_matrix  # noqa: E402
from bioimage_py.wrapper.affine import AffineSource  # noqa: E402
from bioimage_py.wrapper.resize import ResizedSource  # noqa: E402

ORDERS = [0, 1, 3]


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def image(size: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    axis = np.linspace(0, 6, size, dtype=np.float32)
    smooth = (np.sin(axis)[:, None, None] + np.cos(1.3 * axis)[None, :, None]
              + np.sin(0.7 * axis)[None, None, :])
    return (100 + 30 * smooth + 5 * rng.standard_normal((size,) * 3, dtype=np.float32)).astype(
        np.float32)


def labels(size: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    cells = rng.integers(1, 2**40, size=(size // 8 + 1,) * 3, dtype=np.uint64)
    index = np.arange(size) // 8
    return np.ascontiguousarray(cells[np.ix_(index, index, index)])


def rotation_about_centre(shape: tuple[int, ...]) -> np.ndarray:
    matrix = compute_affine_matrix(rotation=[15.0, 10.0, 5.0])
    centre = (np.asarray(shape, dtype=np.float64) - 1) / 2
    matrix[:3, 3] = centre - matrix[:3, :3] @ centre
    return matrix


def cases(volume: np.ndarray, size: int):
    """(name, order, ours, input, matrix, output shape, sigma) per benchmark row."""
    half = size // 2
    small = np.ascontiguousarray(volume[:half, :half, :half])
    rotation = rotation_about_centre(volume.shape)
    for order in ORDERS:
        yield ("down 2", order, ResizedSource(volume, (half,) * 3, order=order), volume,
               np.diag([size / half] * 3 + [1.0]), (half,) * 3, None)
        yield ("up 2", order, ResizedSource(small, (size,) * 3, order=order), small,
               np.diag([half / size] * 3 + [1.0]), (size,) * 3, None)
        yield ("rotate", order, AffineSource(volume, affine_matrix=rotation, order=order), volume,
               rotation, volume.shape, None)
    if volume.dtype == np.float32:
        yield ("down 2 + aa", 1, ResizedSource(volume, (half,) * 3, order=1, anti_aliasing=True),
               volume, np.diag([size / half] * 3 + [1.0]), (half,) * 3, np.full(3, 0.5))


def bioimage_cpp_call(data: np.ndarray, matrix: np.ndarray, out_shape: tuple[int, ...],
                      order: int, sigma: np.ndarray | None) -> np.ndarray:
    """What 0.2 runs for a whole-volume read: one bioimage-cpp call over the whole input."""
    import bioimage_cpp

    box = tuple(slice(0, n) for n in out_shape)
    if sigma is None:
        return bioimage_cpp.transformation.affine_transform(
            data, matrix, bounding_box=box, order=order)
    return bioimage_cpp.transformation.resample(
        data, matrix, bounding_box=box, order=order, anti_aliasing_sigma=sigma)


def scipy_call(data: np.ndarray, matrix: np.ndarray, out_shape: tuple[int, ...], order: int,
               sigma: np.ndarray | None) -> np.ndarray:
    """scipy.ndimage with the same mapping (after a Gaussian with the same sigma and radius)."""
    import scipy.ndimage as ndi

    values = data if sigma is None else ndi.gaussian_filter(data, sigma, truncate=3.0,
                                                             mode="mirror")
    return ndi.affine_transform(values, matrix, output_shape=out_shape, order=order,
                                mode="constant")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="edge of the cubic volume")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--no-scipy", action="store_true", help="skip scipy (the slow peer)")
    args = parser.parse_args()

    import bioimage_cpp
    import scipy

    warning = build_warning()
    if warning:
        print(f"WARNING: {warning}\n")
    env = environment()
    print(f"python {env['python']}, numpy {env['versions']['numpy']}, scipy {scipy.__version__}, "
          f"bioimage-cpp {getattr(bioimage_cpp, '__version__', '?')}, {env['cpu_count']} cores, "
          f"{env['platform']}\n")

    rows = []
    for volume in (image(args.size), labels(args.size)):
        for name, order, ours, data, matrix, out_shape, sigma in cases(volume, args.size):
            raw = partial(bioimage_cpp_call, data, matrix, out_shape, order, sigma)
            peer = partial(scipy_call, data, matrix, out_shape, order, sigma)
            result = np.asarray(ours[...])
            assert np.array_equal(result, raw()), f"{name} order {order}: not bioimage-cpp's"
            del result
            t_ours = best_of(partial(ours.__getitem__, Ellipsis), args.repeat)
            t_raw = best_of(raw, args.repeat)
            t_scipy = None if args.no_scipy else best_of(peer, args.repeat)
            mvox = np.prod(out_shape) / 1e6
            rows.append([
                str(volume.dtype), name, str(order), fmt_seconds(t_ours * 1e3),
                f"{mvox / t_ours:.0f}", fmt_seconds(t_raw * 1e3),
                "n/a" if t_scipy is None else fmt_seconds(t_scipy * 1e3),
                fmt_ratio(t_raw / t_ours),
                fmt_ratio(None if t_scipy is None else t_scipy / t_ours),
            ])
            print(" | ".join(rows[-1]), flush=True)
    print(f"\n{args.size}^3 input, best of {args.repeat}, milliseconds (whole-volume read)")
    print(markdown_table(
        ["dtype", "op", "order", "ours ms", "ours Mvox/s", "bioimage-cpp ms", "scipy ms",
         "bioimage-cpp/ours", "scipy/ours"], rows))


if __name__ == "__main__":
    main()
