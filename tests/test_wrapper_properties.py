"""Property tests: every wrapper reads exactly like its numpy (or scipy) equivalent.

For random arrays, parameters and numpy basic indices (hypothesis), ``wrapper[index]`` must equal
``equivalent(array)[index]``: ``np.greater`` & co. for ``ThresholdSource``, the min-max formula
for ``NormalizeSource`` (0.2's per-read formula on the region read, or fixed bounds), slicing for
``RoiSource``, ``np.pad`` for ``PadSource`` (of the whole array for numpy's forms; of the whole
array for 0.2's right padding with ``"constant"`` and ``"edge"``), ``np.expand_dims`` for
``ExpandDimsSource`` and ``scipy.ndimage.zoom(grid_mode=True, mode="nearest")`` for
``ResizedSource(grid_mode=True)``. Parameters numpy rejects must be rejected too.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bioimage_py.wrapper import (
    ExpandDimsSource,
    NormalizeSource,
    PadSource,
    ResizedSource,
    RoiSource,
    ThresholdSource,
)

SETTINGS = settings(max_examples=80, deadline=None)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)


def int_arrays(dtype: Any = "int32", shapes: Any = SHAPES) -> st.SearchStrategy[np.ndarray]:
    info = np.iinfo(dtype)
    elements = st.integers(max(info.min, -100), min(info.max, 100))
    return hnp.arrays(np.dtype(dtype), shapes, elements=elements)


def float_arrays(dtype: Any = "float32", shapes: Any = SHAPES) -> st.SearchStrategy[np.ndarray]:
    elements = st.floats(-1e3, 1e3, allow_nan=False, width=np.dtype(dtype).itemsize * 8)
    return hnp.arrays(np.dtype(dtype), shapes, elements=elements)


def has_step(index: Any) -> bool:
    entries = index if isinstance(index, tuple) else (index,)
    return any(isinstance(e, slice) and e.step not in (None, 1) for e in entries)


def assert_same(got: Any, expected: Any) -> None:
    """``got`` is what numpy returned: same type (array or scalar), shape, dtype and values."""
    if isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray), (type(got), expected)
        assert got.shape == expected.shape
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    else:
        assert isinstance(got, np.generic), type(got)
        assert type(got) is type(expected)
        np.testing.assert_array_equal(got, expected)


def check_indexing(data: st.DataObject, source: Any, expected: np.ndarray) -> None:
    """A few random basic indices read from ``source`` equal the same indices of ``expected``."""
    assert source.shape == expected.shape
    assert source.dtype == expected.dtype
    assert_same(source[...], expected[...])
    for _ in range(3):
        index = data.draw(
            hnp.basic_indices(expected.shape, min_dims=0, allow_ellipsis=True,
                              allow_newaxis=False),
            label="index",
        )
        if has_step(index):
            with pytest.raises(ValueError, match="step"):
                source[index]
        else:
            assert_same(source[index], expected[index])


# --- ThresholdSource ----------------------------------------------------------------------------

MODES = ["greater", "greater_equal", "less", "less_equal", "equal", "not_equal"]


@SETTINGS
@given(data=st.data(), array=st.one_of(int_arrays("int16"), int_arrays("uint8"), float_arrays()))
def test_threshold_equals_numpy(data, array):
    mode = data.draw(st.sampled_from(MODES), label="mode")
    threshold = data.draw(
        st.one_of(st.integers(-120, 300), st.floats(-120, 120, allow_nan=False)), label="t"
    )
    operator = data.draw(st.sampled_from([mode, f"numpy.{mode}", getattr(np, mode)]), label="op")
    expected = getattr(np, mode)(array, threshold)
    check_indexing(data, ThresholdSource(array, threshold, operator), np.asarray(expected))


# --- NormalizeSource ----------------------------------------------------------------------------


@SETTINGS
@given(
    data=st.data(),
    array=st.one_of(int_arrays("int32"), int_arrays("uint8"), float_arrays(), float_arrays("f8")),
)
def test_normalize_per_read_equals_the_v02_formula_on_the_region(data, array):
    dtype = data.draw(st.sampled_from(["float32", "float64"]), label="dtype")
    source = NormalizeSource(array, dtype)
    assert source.shape == array.shape and source.dtype == np.dtype(dtype)
    for _ in range(3):
        index = data.draw(
            hnp.basic_indices(array.shape, min_dims=0, allow_ellipsis=True, allow_newaxis=False),
            label="index",
        )
        if has_step(index):
            continue
        region = np.asarray(array[index]).astype(dtype)
        if region.size:
            region -= region.min()
            region /= region.max() + np.asarray(1e-6, dtype)
        got = source[index]
        assert np.shape(got) == region.shape and got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, region)


@SETTINGS
@given(
    data=st.data(),
    array=st.one_of(int_arrays("int32"), int_arrays("uint8"), float_arrays(), float_arrays("f8")),
)
def test_normalize_fixed_bounds_equal_min_max_formula(data, array):
    bound = st.one_of(st.none(), st.floats(-200, 200, allow_nan=False))
    lower, upper = data.draw(bound, label="lower"), data.draw(bound, label="upper")
    dtype = data.draw(st.sampled_from(["float32", "float64"]), label="dtype")
    clip = data.draw(st.booleans(), label="clip")
    kwargs = {"lower": lower, "upper": upper, "global_bounds": True, "clip": clip}
    if (lower is None or upper is None) and array.size == 0:
        with pytest.raises(ValueError, match="empty"):
            NormalizeSource(array, dtype, **kwargs)
        return
    lo = float(array.min()) if lower is None else lower
    hi = float(array.max()) if upper is None else upper
    if lo > hi:
        with pytest.raises(ValueError, match="greater"):
            NormalizeSource(array, dtype, **kwargs)
        return
    source = NormalizeSource(array, dtype, **kwargs)
    assert (source.lower, source.upper) == (lo, hi)
    reference = (array.astype(np.float64) - lo) / (hi - lo) if hi > lo else np.zeros(array.shape)
    if clip:
        reference = np.clip(reference, 0, 1)
    with np.errstate(over="ignore"):  # tiny ranges: beyond float32 is inf
        reference = reference.astype(dtype)
    whole = np.asarray(source)
    assert whole.dtype == np.dtype(dtype)
    np.testing.assert_allclose(whole, reference, rtol=1e-6, atol=1e-6)
    check_indexing(data, source, whole)  # regions are computed exactly like the whole


# --- RoiSource ----------------------------------------------------------------------------------


def rois(shape: tuple[int, ...]) -> st.SearchStrategy[tuple[Any, ...]]:
    """Step-1 slices (bounds anywhere: also outside, negative, None) and in-range ints (also
    negative) for a prefix of the axes."""

    def axis_entry(n: int) -> st.SearchStrategy[Any]:
        bound = st.one_of(st.none(), st.integers(-n - 2, n + 2))
        sliced = st.builds(slice, bound, bound)
        return st.one_of(sliced, st.integers(-n, n - 1)) if n else sliced

    return st.integers(0, len(shape)).flatmap(
        lambda k: st.tuples(*(axis_entry(n) for n in shape[:k]))
    )


def kept(roi: tuple[Any, ...]) -> tuple[Any, ...]:
    """``roi`` with every int ``i`` as ``slice(i, i + 1)`` (an int keeps its axis), as numpy
    indexing needs it; -1 becomes ``slice(-1, None)``."""
    return tuple(
        slice(e, e + 1 if e != -1 else None) if isinstance(e, int) else e for e in roi
    )


@SETTINGS
@given(data=st.data(), array=int_arrays())
def test_roi_equals_slicing(data, array):
    roi = data.draw(rois(array.shape), label="roi")
    squeeze = data.draw(st.booleans(), label="squeeze")
    source = RoiSource(array, roi, squeeze=squeeze)
    expected = array[roi] if squeeze else array[kept(roi)]
    check_indexing(data, source, np.asarray(expected))
    # A ROI of a ROI is the composition.
    inner = data.draw(rois(source.shape), label="inner")
    check_indexing(data, RoiSource(source, inner, squeeze=True), np.asarray(expected[inner]))


# --- PadSource ----------------------------------------------------------------------------------


def pad_widths(ndim: int) -> st.SearchStrategy[Any]:
    """Every form numpy.pad takes: n, (n,), (before, after), one pair per axis, except one int
    per axis, 0.2's right padding."""
    width = st.integers(0, 8)  # wider than the axes too: repeated reflections
    forms = [width]
    if ndim:  # () for a 0-d array is one int per axis
        forms.append(st.tuples(*([st.tuples(width, width)] * ndim)))
    if ndim != 1:
        forms.append(st.tuples(width))
    if ndim != 2:
        forms.append(st.tuples(width, width))
    return st.one_of(*forms)


@SETTINGS
@given(data=st.data(), array=int_arrays())
def test_pad_right_padding_equals_numpy_pad(data, array):
    """0.2's one int per axis: numpy.pad after each axis; every read for "constant" and
    "edge", the whole array for the modes that pad each read block."""
    mode = data.draw(st.sampled_from(["constant", "edge", "reflect", "symmetric", "wrap",
                                      "maximum", "mean", "linear_ramp"]), label="mode")
    widths = data.draw(st.tuples(*([st.integers(0, 8)] * array.ndim)), label="pad_width")
    pairs = np.array([(0, w) for w in widths], dtype=int).reshape(array.ndim, 2)
    try:
        expected = np.pad(array, pairs, mode=mode) if array.ndim else array  # numpy: no 0-d
    except ValueError:  # an empty axis padded with values it lacks
        with pytest.raises(ValueError, match="empty axis"):
            PadSource(array, widths, mode)
        return
    source = PadSource(array, widths, mode)
    assert source.right_padding
    if mode in ("constant", "edge"):
        check_indexing(data, source, expected)
    else:
        assert source.shape == expected.shape and source.dtype == expected.dtype
        assert_same(source[...], expected)


@SETTINGS
@given(data=st.data(), array=int_arrays())
def test_pad_equals_numpy_pad(data, array):
    mode = data.draw(st.sampled_from(["constant", "edge", "reflect", "symmetric", "wrap"]))
    pad_width = data.draw(pad_widths(array.ndim), label="pad_width")
    kwargs: dict[str, Any] = {}
    if mode == "constant":
        value = st.integers(-9, 9)
        kwargs["constant_values"] = data.draw(
            st.one_of(value, st.tuples(value, value),
                      st.tuples(*([st.tuples(value, value)] * array.ndim))),
            label="constant_values",
        )
    try:
        expected = np.pad(array, pad_width, mode=mode, **kwargs)
    except (ValueError, TypeError) as error:  # e.g. an empty axis padded with values it lacks
        with pytest.raises(type(error)):
            PadSource(array, pad_width, mode, **kwargs)
        return
    source = PadSource(array, pad_width, mode, **kwargs)
    assert not source.right_padding
    check_indexing(data, source, expected)


# --- ExpandDimsSource ---------------------------------------------------------------------------


@SETTINGS
@given(data=st.data(), array=int_arrays())
def test_expand_dims_equals_numpy(data, array):
    axis_value = st.integers(-array.ndim - 3, array.ndim + 2)
    axis = data.draw(
        st.one_of(axis_value, st.lists(axis_value, min_size=1, max_size=3).map(tuple)), label="axis"
    )
    try:
        expected = np.expand_dims(array, axis)
    except ValueError:  # out of range (numpy's AxisError is a ValueError) or repeated
        with pytest.raises(ValueError, match="range|repeated"):
            ExpandDimsSource(array, axis)
        return
    check_indexing(data, ExpandDimsSource(array, axis), expected)


# --- ResizedSource ------------------------------------------------------------------------------

NONEMPTY = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=7)


def zoom_reference(array: np.ndarray, shape: tuple[int, ...], order: int) -> np.ndarray:
    """scipy's pixel-centre zoom to exactly ``shape`` (zoom factors out/in; scipy rounds)."""
    factors = [out / n for out, n in zip(shape, array.shape)]
    result = ndi.zoom(array, factors, order=order, mode="nearest", grid_mode=True)
    assert result.shape == shape
    return result


@SETTINGS
@given(data=st.data(), array=int_arrays("int32", NONEMPTY))
def test_resized_nearest_equals_scipy_zoom(data, array):
    shape = tuple(data.draw(st.integers(1, 15), label=f"size{i}") for i in range(array.ndim))
    source = ResizedSource(array, shape, order=0, grid_mode=True)
    expected = zoom_reference(array, shape, order=0)
    assert expected.dtype == array.dtype
    check_indexing(data, source, expected)


@SETTINGS
@given(data=st.data(), array=float_arrays("float64", NONEMPTY))
def test_resized_linear_equals_scipy_zoom(data, array):
    shape = tuple(data.draw(st.integers(1, 15), label=f"size{i}") for i in range(array.ndim))
    source = ResizedSource(array, shape, order=1, grid_mode=True)
    whole = np.asarray(source)
    np.testing.assert_allclose(whole, zoom_reference(array, shape, order=1), rtol=1e-9, atol=1e-9)
    check_indexing(data, source, whole)  # every region equals the same part of the whole


@SETTINGS
@given(data=st.data(), array=int_arrays("uint8", NONEMPTY))
def test_resized_linear_integers_are_rounded_interpolation(data, array):
    shape = tuple(data.draw(st.integers(1, 15), label=f"size{i}") for i in range(array.ndim))
    source = ResizedSource(array, shape, order=1, grid_mode=True)
    whole = np.asarray(source)
    assert whole.dtype == np.uint8
    # The float interpolation of the same values, rounded half away from zero ...
    exact = np.asarray(ResizedSource(array.astype(np.float64), shape, order=1, grid_mode=True))
    np.testing.assert_array_equal(whole, np.floor(exact + 0.5).astype(np.uint8))
    # ... which is scipy's integer output, up to float noise at exact halves.
    scipy_result = zoom_reference(array, shape, order=1).astype(np.int16)
    assert np.abs(whole.astype(np.int16) - scipy_result).max() <= 1
    check_indexing(data, source, whole)


@SETTINGS
@given(data=st.data(), array=int_arrays("int16"))
def test_resized_any_shape_reads_consistently(data, array):
    """Empty and 0-d sources and empty outputs too: regions equal the whole, resized."""
    shape = tuple(
        data.draw(st.integers(0, 0 if n == 0 else 9), label=f"size{i}")
        for i, n in enumerate(array.shape)
    )
    for order in (0, 1):
        source = ResizedSource(array, shape, order=order, grid_mode=True)
        whole = np.asarray(source)
        assert whole.shape == shape and whole.dtype == array.dtype
        check_indexing(data, source, whole)
