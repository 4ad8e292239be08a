"""Index normalization against the shared case table and against numpy."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bioimage_py import _core, _indexing
from bioimage_py.errors import IndexOutOfRangeError

CASES = json.loads((Path(__file__).parent / "data" / "index_cases.json").read_text())
ERRORS = {"IndexOutOfRangeError": IndexOutOfRangeError, "ValueError": ValueError, "TypeError": TypeError}


def decode(value):
    """The Python index a JSON case encodes (see tests/data/make_index_cases.py)."""
    if value == "...":
        return Ellipsis
    if not isinstance(value, dict):
        return value
    (tag, payload), = value.items()
    decoders = {
        "tuple": lambda p: tuple(decode(v) for v in p),
        "slice": lambda p: slice(*(decode(v) for v in p)),
        "numpy": lambda p: getattr(np, p[0])(p[1]),
        "bigint": int,
        "bool": bool,
        "float": float,
        "str": str,
        "list": list,
        "array": np.array,
    }
    return decoders[tag](payload)


def case_id(case) -> str:
    return f"{case['index']}-{case['shape']}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_shared_table(case):
    index, shape = decode(case["index"]), tuple(case["shape"])
    if "error" in case:
        with pytest.raises(ERRORS[case["error"]]):
            _core.normalize_index(index, shape)
        return
    roi, squeeze, scalar = _core.normalize_index(index, shape)
    assert roi == tuple(slice(a, b) for a, b in case["roi"])
    assert squeeze == tuple(case["squeeze"])
    assert scalar is case["scalar"]
    assert _indexing.normalize_index(index, shape) == (roi, squeeze)


def test_numpy_bool_scalar_is_rejected():
    # JSON cannot tell np.bool_ from bool; both are masks to numpy and TypeErrors to us.
    with pytest.raises(TypeError, match="only ints, slices"):
        _core.normalize_index(np.bool_(True), (5,))


def test_out_of_range_is_index_and_value_error():
    assert issubclass(IndexOutOfRangeError, IndexError)
    assert issubclass(IndexOutOfRangeError, ValueError)
    with pytest.raises(ValueError, match="out of range"):
        _core.normalize_index((0, 7), (3, 4))
    with pytest.raises(IndexError, match="index 7 is out of range for axis 1 with size 4"):
        _core.normalize_index((0, 7), (3, 4))


def test_error_messages_name_the_problem():
    with pytest.raises(ValueError, match="step"):
        _core.normalize_index(slice(None, None, 2), (5,))
    with pytest.raises(TypeError, match=r"only ints, slices .* or tuples of them are valid.*list"):
        _core.normalize_index([1, 2], (5,))
    with pytest.raises(TypeError, match="too many indices"):
        _core.normalize_index((0, 0, 0), (3, 4))
    with pytest.raises(ValueError, match="single ellipsis"):
        _core.normalize_index((..., ...), (3, 4))


def test_start_stop_helpers():
    assert _indexing.slice_to_start_stop(slice(-3, None), 10) == (7, 10)
    assert _indexing.slice_to_start_stop(slice(5, 2), 10) == (5, 5)
    assert _indexing.slice_to_start_stop(slice(None, 10**40), 10) == (0, 10)
    assert _indexing.int_to_start_stop(-1, 10) == (9, 10)
    assert _indexing.int_to_start_stop(np.int16(3), 10) == (3, 4)
    with pytest.raises(IndexOutOfRangeError):
        _indexing.int_to_start_stop(10, 10)
    with pytest.raises(TypeError):
        _indexing.int_to_start_stop(slice(1, 2), 10)


def test_squeeze_singletons():
    block = np.arange(6).reshape(1, 2, 1, 3)
    assert _indexing.squeeze_singletons(block, ()) is block
    assert _indexing.squeeze_singletons(block, (0, 2)).shape == (2, 3)
    scalar = _indexing.squeeze_singletons(np.full((1, 1), 7), (0, 1))
    assert isinstance(scalar, np.integer) and scalar == 7


@st.composite
def shapes_and_indices(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6))
    index = draw(hnp.basic_indices(shape, allow_newaxis=False, allow_ellipsis=True))
    return shape, index


def has_step(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, slice) and i.step not in (None, 1) for i in items)


@settings(max_examples=400, deadline=None)
@given(shapes_and_indices())
def test_normalized_region_equals_numpy(case):
    shape, index = case
    array = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    if has_step(index):
        with pytest.raises(ValueError, match="step"):
            _core.normalize_index(index, shape)
        return
    roi, squeeze, scalar = _core.normalize_index(index, shape)
    assert len(roi) == len(shape)
    assert all(0 <= s.start <= s.stop <= n and s.step is None for s, n in zip(roi, shape))
    region = array[(*roi, ...)]
    if scalar:
        region = region[(0,) * len(shape)]
    else:
        region = np.squeeze(region, axis=squeeze)
    expected = array[index]
    assert type(region) is type(expected)
    np.testing.assert_array_equal(region, expected)
