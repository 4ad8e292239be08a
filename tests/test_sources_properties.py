"""Property tests: every source kind reads and writes exactly like numpy (numpy is the oracle).

Sources over numpy, zarr v2, zarr v3 (plain and sharded) and z5py (n5 and zarr) arrays are
indexed with hypothesis' ``basic_indices``; results, written contents and errors must equal
numpy's. Indices with a slice step other than 1 must raise ``ValueError``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import z5py
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bioimage_py.sources import ArraySource, as_source

BACKENDS = ["numpy", "zarr_v2", "zarr_v3", "zarr_v3_sharded", "z5py_n5", "z5py_zarr"]
SHAPES = [(), (9,), (6, 7), (5, 4, 6)]
# z5py cannot create 0-d datasets; zarr 3.1 creates 0-d sharded arrays but fails reading them.
CASES = [
    pytest.param(backend, shape, id=f"{backend}-{len(shape)}d")
    for backend in BACKENDS
    for shape in SHAPES
    if shape or backend in ("numpy", "zarr_v2", "zarr_v3")
]
DTYPE = np.dtype("int32")
SETTINGS = settings(max_examples=60, deadline=None)


def base_data(shape: tuple[int, ...]) -> np.ndarray:
    """Distinct values, so that a misplaced element shows."""
    return np.arange(int(np.prod(shape)), dtype=DTYPE).reshape(shape)


def create_array(backend: str, root: Path, shape: tuple[int, ...]) -> Any:
    """A real array of ``backend`` with ``shape`` under ``root`` (inside a group where possible)."""
    chunks = tuple(min(3, n) for n in shape)
    if backend == "numpy":
        return np.zeros(shape, dtype=DTYPE)
    if backend in ("zarr_v2", "zarr_v3"):
        group = zarr.open_group(root / f"{backend}.zarr", mode="w", zarr_format=int(backend[-1]))
        return group.create_array("nested/data", shape=shape, chunks=chunks, dtype=DTYPE)
    if backend == "zarr_v3_sharded":
        inner = tuple(min(2, n) for n in shape)  # () for a 0-d array
        return zarr.create_array(
            root / "sharded.zarr", shape=shape, chunks=inner, shards=tuple(2 * c for c in inner),
            dtype=DTYPE,
        )
    if backend in ("z5py_n5", "z5py_zarr"):
        name = "data.n5" if backend == "z5py_n5" else "data.zarr"
        return z5py.File(str(root / name), mode="a").create_dataset(
            "group/data", shape=shape, chunks=chunks, dtype=DTYPE, compression="raw"
        )
    raise AssertionError(backend)


def read_all(array: Any) -> np.ndarray:
    """The whole content of ``array`` through its own API (not through a Source)."""
    return np.asarray(array[(slice(None),) * len(array.shape)])


@pytest.fixture(scope="module")
def make_source(tmp_path_factory):
    """``make_source(backend, shape) -> (source, raw_array)``, created once per module."""
    cache: dict[tuple[str, tuple[int, ...]], tuple[ArraySource, Any]] = {}

    def make(backend: str, shape: tuple[int, ...]) -> tuple[ArraySource, Any]:
        key = (backend, shape)
        if key not in cache:
            root = tmp_path_factory.mktemp(f"{backend}_{len(shape)}d")
            raw = create_array(backend, root, shape)
            cache[key] = (as_source(raw), raw)
        source, raw = cache[key]
        raw[...] = base_data(shape)
        return source, raw

    return make


def has_step(index: Any) -> bool:
    """Whether ``index`` holds a slice with a step other than 1 (rejected by sources)."""
    entries = index if isinstance(index, tuple) else (index,)
    return any(isinstance(e, slice) and e.step not in (None, 1) for e in entries)


def indices(shape: tuple[int, ...]) -> st.SearchStrategy[Any]:
    return hnp.basic_indices(shape, min_dims=0, allow_ellipsis=True, allow_newaxis=False)


def assert_same(got: Any, expected: Any) -> None:
    """``got`` is what numpy returned: same type (array or scalar), shape, dtype and values."""
    if isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray), (type(got), expected)
        assert got.shape == expected.shape
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    else:
        assert isinstance(got, np.generic) and not isinstance(got, np.ndarray), type(got)
        assert type(got) is type(expected)
        assert got == expected


@pytest.mark.parametrize(("backend", "shape"), CASES)
@SETTINGS
@given(data=st.data())
def test_read_equals_numpy(make_source, backend, shape, data):
    source, raw = make_source(backend, shape)
    expected_all = base_data(shape)
    index = data.draw(indices(shape), label="index")
    if has_step(index):
        with pytest.raises(ValueError, match="step"):
            source[index]
        return
    got = source[index]
    expected = expected_all[index]
    assert_same(got, expected)
    if backend == "numpy" and isinstance(got, np.ndarray) and got.size and shape != ():
        assert np.shares_memory(got, raw), "a numpy-backed read returns numpy's view"


def values_for(target_shape: tuple[int, ...]) -> st.SearchStrategy[Any]:
    """Scalars, arrays broadcastable to ``target_shape``, and arrays of arbitrary shape."""
    elements = st.integers(-1000, 1000)
    broadcastable = hnp.broadcastable_shapes(
        target_shape, min_dims=0, max_dims=len(target_shape) + 1, min_side=0
    )
    arbitrary = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=5)
    arrays = st.one_of(
        hnp.arrays(DTYPE, broadcastable, elements=elements),
        hnp.arrays(DTYPE, arbitrary, elements=elements),
    )
    return st.one_of(
        elements,
        st.floats(-100, 100, allow_nan=False),
        elements.map(DTYPE.type),
        arrays,
        arrays.map(np.ndarray.tolist),  # nested lists: numpy is stricter with them than arrays
    )


@pytest.mark.parametrize(("backend", "shape"), CASES)
@SETTINGS
@given(data=st.data())
def test_write_equals_numpy(make_source, backend, shape, data):
    source, raw = make_source(backend, shape)
    expected = base_data(shape)
    index = data.draw(indices(shape), label="index")
    if has_step(index):
        with pytest.raises(ValueError, match="step"):
            source[index] = 1
        np.testing.assert_array_equal(read_all(raw), base_data(shape))
        return
    value = data.draw(values_for(np.shape(expected[index])), label="value")
    try:
        expected[index] = value
    except (ValueError, TypeError):  # numpy raises TypeError for a list assigned to an element
        with pytest.raises(ValueError, match=r"shape .* shape"):
            source[index] = value
        np.testing.assert_array_equal(read_all(raw), base_data(shape))  # nothing written
        return
    source[index] = value
    np.testing.assert_array_equal(read_all(raw), expected)


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(data=st.data())
def test_integer_axes_are_reinserted_on_write(make_source, backend, data):
    """``src[i, :, k] = v`` with ``v`` of the squeezed shape lands in the right plane."""
    shape = (5, 4, 6)
    source, raw = make_source(backend, shape)
    i = data.draw(st.integers(-5, 4), label="i")
    k = data.draw(st.integers(-6, 5), label="k")
    value = data.draw(hnp.arrays(DTYPE, (4,), elements=st.integers(-50, -1)), label="value")
    source[i, :, k] = value
    expected = base_data(shape)
    expected[i, :, k] = value
    np.testing.assert_array_equal(read_all(raw), expected)
    assert_same(source[i, :, k], value)
    assert_same(source[i, 1, k], value[1])
