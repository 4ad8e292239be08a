"""Per-call cost of reading through a Source: `as_source(numpy_array)[index]`.

Compared, in the same run on the same array, with numpy's own slicing and with a Source whose
index normalization is a straightforward pure-Python implementation (what the Rust path
replaces). Reports the best of several repeats in microseconds per call, and ratios.

Run: python benches/bench_indexing.py  (build the extension with --release first)
"""
from __future__ import annotations

import argparse
import timeit
from typing import Any

import numpy as np

from bioimage_py import _core
from bioimage_py.sources import as_source


def python_normalize_index(index: Any, shape: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[int, ...]]:
    """A plain-Python normalization with the same semantics, for comparison only."""
    items = index if isinstance(index, tuple) else (index,)
    if sum(item is Ellipsis for item in items) > 1:
        raise ValueError("an index can only have a single ellipsis ('...')")
    n_indexed = sum(item is not Ellipsis for item in items)
    if n_indexed > len(shape):
        raise TypeError("too many indices")
    roi: list[slice] = []
    squeeze: list[int] = []
    for item in items:
        axis = len(roi)
        if item is Ellipsis:
            roi.extend(slice(0, size) for size in shape[axis : axis + len(shape) - n_indexed])
        elif isinstance(item, slice):
            if item.step not in (None, 1):
                raise ValueError("only steps of 1 are supported")
            start, stop, _ = item.indices(shape[axis])
            roi.append(slice(start, max(start, stop)))
        elif isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            size = shape[axis]
            if not -size <= item < size:
                raise IndexError(f"index {item} is out of range")
            start = int(item) % size
            roi.append(slice(start, start + 1))
            squeeze.append(axis)
        else:
            raise TypeError("only ints, slices, ... or tuples of them are valid indices")
    roi.extend(slice(0, size) for size in shape[len(roi) :])
    return tuple(roi), tuple(squeeze)


class PythonIndexedArray:
    """The read path of a Source with the pure-Python normalization above."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.shape = array.shape

    def __getitem__(self, index: Any) -> Any:
        roi, squeeze = python_normalize_index(index, self.shape)
        out = self.array[roi]
        return out.squeeze(axis=squeeze) if squeeze else out


def per_call_us(fn, number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    array = np.zeros((256, 256, 256), dtype=np.uint8)
    source = as_source(array)
    pure = PythonIndexedArray(array)
    shape = array.shape
    cases = {
        "3-tuple of slices": (slice(64, 128), slice(32, 160), slice(0, 256)),
        "int": 17,
        "(..., k)": (..., 5),
    }

    rows = []
    for name, index in cases.items():
        t_numpy = per_call_us(lambda: array[index], args.number, args.repeat)
        t_source = per_call_us(lambda: source[index], args.number, args.repeat)
        t_pure = per_call_us(lambda: pure[index], args.number, args.repeat)
        t_norm = per_call_us(lambda: _core.normalize_index(index, shape), args.number, args.repeat)
        rows.append((name, t_numpy, t_source, t_pure, t_norm))

    print(f"per call, best of {args.repeat} x {args.number} calls, microseconds")
    header = ("index", "numpy", "source", "pure-Python", "normalize", "source/numpy", "pure/source")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, t_numpy, t_source, t_pure, t_norm in rows:
        print(
            f"| {name} | {t_numpy:.3f} | {t_source:.3f} | {t_pure:.3f} | {t_norm:.3f} "
            f"| {t_source / t_numpy:.2f}x | {t_pure / t_source:.2f}x |"
        )


if __name__ == "__main__":
    main()
