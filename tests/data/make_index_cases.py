"""Regenerates index_cases.json: index-normalization cases read by `cargo test` and pytest.

Expected results come from Python's own slice arithmetic and are checked against numpy, so the
table is an oracle for both layers. Run: python tests/data/make_index_cases.py
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

E = Ellipsis
BIG = 10**30


def s(start=None, stop=None, step=None) -> slice:
    return slice(start, stop, step)


# (index, shape) for indices numpy accepts with the same meaning as ours.
VALID = [
    ((), ()),
    (E, ()),
    ((), (5,)),
    (0, (5,)),
    (4, (5,)),
    (-1, (5,)),
    (-5, (5,)),
    (np.int64(3), (5,)),
    (np.uint8(2), (5,)),
    (np.int32(-2), (5,)),
    (s(), (5,)),
    (s(1, 3), (5,)),
    (s(None, -1), (5,)),
    (s(-3, None), (5,)),
    (s(-10, 2), (5,)),
    (s(2, 10), (5,)),
    (s(-10, -7), (5,)),
    (s(7, 9), (5,)),
    (s(3, 1), (5,)),
    (s(-1, -3), (5,)),
    (s(0, 0), (5,)),
    (s(None, None, 1), (5,)),
    (s(-BIG, BIG), (5,)),
    (s(np.int64(1), np.int16(4)), (5,)),
    (s(0, 1), (0,)),
    (s(), (0,)),
    ((1, 2), (3, 4)),
    ((1, 2, 3), (3, 4, 5)),
    ((-3, -4, -5), (3, 4, 5)),
    ((1, 2, E), (3, 4)),
    ((E, 1), (3, 4)),
    ((1, E), (3, 4)),
    ((E, 1, 2), (3, 4)),
    ((E,), (3, 4, 5)),
    ((1,), (3, 4, 5)),
    ((s(1, 2),), (3, 4, 5)),
    ((s(1, 2), 0), (3, 4, 5)),
    ((0, s(1, 3), -1), (3, 4, 5)),
    ((s(None, 2), E, s(-2, None)), (3, 4, 5, 6)),
    ((E, s(-2, None)), (3, 4, 5, 6)),
    ((1, E, 2), (3, 4, 5, 6)),
    ((1, E, 2, 3), (3, 4, 5)),
    ((0, 0, 0, 0), (1, 1, 1, 1)),
    ((s(10, 20), s(5, 30), s(0, 64)), (64, 64, 64)),
    ((E, 7), (16, 16, 16)),
    ((s(None), s(None)), (2, 3)),
    ((), (2, 3)),
]

# (index, shape, error class): invalid for us. numpy may accept some (steps) or raise a different
# class (IndexError for too many indices); the spec fixes ours.
INVALID = [
    (5, (5,), "IndexOutOfRangeError"),
    (-6, (5,), "IndexOutOfRangeError"),
    (0, (0,), "IndexOutOfRangeError"),
    ((0, 4), (3, 4), "IndexOutOfRangeError"),
    ((E, -5), (3, 4), "IndexOutOfRangeError"),
    (BIG, (5,), "IndexOutOfRangeError"),
    (-BIG, (5,), "IndexOutOfRangeError"),
    (np.int64(9), (5,), "IndexOutOfRangeError"),
    (s(None, None, 2), (5,), "ValueError"),
    (s(None, None, -1), (5,), "ValueError"),
    (s(None, None, 0), (5,), "ValueError"),
    ((0, s(0, 4, 3)), (3, 4), "ValueError"),
    ((E, E), (3, 4), "ValueError"),
    ((0, E, E), (3, 4), "ValueError"),
    ((0, 0, 0), (3, 4), "TypeError"),
    ((0,), (), "TypeError"),
    (0, (), "TypeError"),
    ((s(), s(), s()), (3, 4), "TypeError"),
    (1.0, (5,), "TypeError"),
    ([0, 1], (5,), "TypeError"),
    (None, (5,), "TypeError"),
    ((None, 0), (5,), "TypeError"),
    (True, (5,), "TypeError"),
    (np.bool_(False), (5,), "TypeError"),
    ("a", (5,), "TypeError"),
    (np.array([1, 2]), (5,), "TypeError"),
    (s(1.5, 3), (5,), "TypeError"),
    (s("a", None), (5,), "TypeError"),
]


def encode(item):
    """JSON form of an index: ints, "...", {"slice": [...]}, {"tuple": [...]}, or tagged others."""
    if isinstance(item, tuple):
        return {"tuple": [encode(i) for i in item]}
    if item is Ellipsis:
        return "..."
    if isinstance(item, slice):
        return {"slice": [encode(item.start), encode(item.stop), encode(item.step)]}
    if item is None:
        return None
    if isinstance(item, (bool, np.bool_)):
        return {"bool": bool(item)}
    if isinstance(item, np.integer):
        return {"numpy": [type(item).__name__, int(item)]}
    if isinstance(item, int):
        return item if abs(item) < 2**63 else {"bigint": str(item)}
    if isinstance(item, float):
        return {"float": item}
    if isinstance(item, str):
        return {"str": item}
    if isinstance(item, list):
        return {"list": item}
    if isinstance(item, np.ndarray):
        return {"array": item.tolist()}
    raise TypeError(f"cannot encode {item!r}")


def expected(index, shape):
    """Our normalization of a valid index, from Python's slice arithmetic."""
    items = index if isinstance(index, tuple) else (index,)
    n_indexed = sum(item is not Ellipsis for item in items)
    roi, squeeze, axis = [], [], 0
    for item in items:
        if item is Ellipsis:
            for _ in range(len(shape) - n_indexed):
                roi.append([0, shape[axis]])
                axis += 1
        elif isinstance(item, slice):
            start, stop, _ = item.indices(shape[axis])
            roi.append([start, max(start, stop)])
            axis += 1
        else:
            i = int(item) % shape[axis]
            roi.append([i, i + 1])
            squeeze.append(axis)
            axis += 1
    roi += [[0, size] for size in shape[axis:]]
    scalar = Ellipsis not in items and len(squeeze) == len(shape)
    return {"roi": roi, "squeeze": squeeze, "scalar": scalar}


def check_with_numpy(index, shape, case) -> None:
    array = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    # The trailing `...` keeps a 0-d region an array (numpy returns a scalar for `a[()]`).
    region = array[(*(slice(a, b) for a, b in case["roi"]), ...)]
    if case["scalar"]:
        region = region[(0,) * len(shape)]
    elif case["squeeze"]:
        region = region.squeeze(axis=tuple(case["squeeze"]))
    want = array[index]
    assert type(want) is type(region) and np.array_equal(want, region), (index, shape)


def main() -> None:
    cases = []
    for index, shape in VALID:
        case = {"index": encode(index), "shape": list(shape), **expected(index, shape)}
        check_with_numpy(index, shape, case)
        cases.append(case)
    for index, shape, error in INVALID:
        cases.append({"index": encode(index), "shape": list(shape), "error": error})
    path = Path(__file__).with_name("index_cases.json")
    path.write_text(json.dumps(cases, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {path}")


if __name__ == "__main__":
    main()
