"""``bioimage_py.util.contiguous_transpose`` against numpy, the oracle.

Every result must equal ``numpy.ascontiguousarray(a.transpose(axes))`` exactly (values, shape,
dtype including byte order), be C-contiguous, and never share memory with the input: for every
dtype, every permutation of 2/3/4-D arrays, C, Fortran, strided, reversed, offset, broadcast and
unaligned inputs, sizes below and above the tile and the parallel threshold, and empty arrays.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bioimage_py import _core
from bioimage_py.util import contiguous_transpose

DTYPES = [
    "bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
]
# Below, at and straddling the SIMD blocks (16 bytes a side), the L1 blocks (32 or 64 items) and
# the tiles (64 to 256 items a side), and above the 1 MiB parallel threshold (also for 4-D).
SHAPES = [(3, 5), (70, 130), (2, 3, 4), (9, 70, 67), (2, 3, 4, 5), (3, 65, 2, 66)]
LARGE_SHAPES = [(300, 900), (64, 160, 130), (8, 40, 33, 70)]


def distinct(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Values that differ between neighbours, so a misplaced element shows in every dtype."""
    values = np.arange(int(np.prod(shape)), dtype=np.uint64)
    values = (values * 2654435761) % 251 + values // 251
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return (values % 3 == 0).reshape(shape)
    if dtype.kind == "c":
        return (values + 1j * (values % 7)).astype(dtype).reshape(shape)
    return values.astype(dtype).reshape(shape)


def check(array: np.ndarray, axes: Any) -> np.ndarray:
    expected = np.ascontiguousarray(np.asarray(array).transpose(axes))
    result = contiguous_transpose(array, axes)
    assert type(result) is np.ndarray
    assert result.dtype == expected.dtype
    assert result.shape == expected.shape
    assert result.flags.c_contiguous
    np.testing.assert_array_equal(result, expected, strict=True)
    # Bit-exact, NaN payloads and signed zeros included.
    assert result.tobytes() == expected.tobytes()
    if isinstance(array, np.ndarray):
        assert not np.shares_memory(result, array)
    return result


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_every_dtype_and_permutation(shape: tuple[int, ...], dtype: str) -> None:
    array = distinct(shape, dtype)
    for axes in itertools.permutations(range(len(shape))):
        check(array, axes)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "uint64", "complex128"])
@pytest.mark.parametrize("shape", LARGE_SHAPES, ids=str)
def test_large_arrays_above_the_parallel_threshold(shape: tuple[int, ...], dtype: str) -> None:
    array = distinct(shape, dtype)
    for axes in itertools.permutations(range(len(shape))):
        check(array, axes)


@pytest.mark.parametrize("dtype", ["uint8", "float32", "complex128"])
@pytest.mark.parametrize(
    "shape", [(1000, 2), (400_000, 3), (3, 400_000), (70, 90, 3), (5000, 64, 2), (2, 3, 70_000)],
    ids=str,
)
def test_short_and_long_axes(shape: tuple[int, ...], dtype: str) -> None:
    """Interleaving and de-interleaving channels: one axis far shorter than a tile."""
    array = distinct(shape, dtype)
    for axes in itertools.permutations(range(len(shape))):
        check(array, axes)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint64"])
@pytest.mark.parametrize("shape", [(20, 30, 40), (64, 128, 96)], ids=str)
def test_fortran_ordered_inputs(shape: tuple[int, ...], dtype: str) -> None:
    """cloud-volume returns (x, y, z) arrays in Fortran order; (2, 1, 0) is then a memcpy."""
    array = np.asfortranarray(distinct(shape, dtype))
    for axes in itertools.permutations(range(3)):
        check(array, axes)
    # The 4-D (x, y, z, channel) case.
    array4 = np.asfortranarray(distinct((*shape[:2], 7, 3), dtype))
    for axes in [(3, 2, 1, 0), (2, 1, 0, 3), (0, 1, 2, 3)]:
        check(array4, axes)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "float64", "complex128"])
def test_views_strided_reversed_offset(dtype: str) -> None:
    base = distinct((40, 90, 75), dtype)
    views = [
        base[3:30, 5:80, 1:70],  # offset view
        base[::2, 1::3, ::4],  # strided
        base[::-1, :, ::-2],  # reversed axes (negative strides)
        base[5:35, ::-1][:, 10:80],
        base.transpose(1, 2, 0)[2:, ::-3],  # permuted and strided
        base[:, 7, :],  # 2-D slab with a large row stride
        np.broadcast_to(base[0, :, :1], (40, 90, 75)),  # zero strides
    ]
    for view in views:
        for axes in itertools.permutations(range(view.ndim)):
            check(view, axes)


def test_unaligned_input() -> None:
    """numpy allows items that are not aligned to their size; they must still be read right."""
    raw = np.frombuffer(distinct((4 * 30 * 66 + 1,), "uint8").tobytes(), dtype=np.uint8)
    array = raw[1:].view(np.float32).reshape(30, 66)
    assert not array.flags.aligned
    for axes in [(1, 0), (0, 1)]:
        check(array, axes)


@pytest.mark.parametrize(
    "shape", [(0,), (0, 5), (5, 0, 3), (0, 0, 0, 0), (1, 1), (1, 1, 1, 1), (7, 1, 1, 9), (1,)],
    ids=str,
)
def test_empty_and_length_one_axes(shape: tuple[int, ...]) -> None:
    array = distinct(shape, "uint16")
    for axes in itertools.permutations(range(len(shape))):
        check(array, axes)


def test_one_five_and_zero_dimensional_arrays() -> None:
    check(distinct((100,), "uint8"), (0,))
    check(distinct((5,), "float64")[::-2], (-1,))
    array5 = distinct((2, 3, 4, 5, 6), "int32")
    for axes in [(4, 3, 2, 1, 0), (1, 0, 4, 2, 3), (0, 1, 2, 3, 4)]:
        check(array5, axes)
    check(distinct((3, 1, 4, 1, 5, 2), "uint8")[:, :, ::-1], (5, 4, 3, 2, 1, 0))
    scalar = np.array(3.5)
    assert check(scalar, ()).shape == (1,)  # as numpy.ascontiguousarray


@pytest.mark.parametrize(
    "dtype",
    [">u2", ">f4", ">c16", "<i8", "S3", "U2", "V7", "M8[s]", "m8[ms]", "longdouble",
     "u1,>i4"],
)
def test_other_dtypes_are_copied_bytewise_and_keep_their_dtype(dtype: str) -> None:
    """Items are moved as raw bytes: byte order, strings, odd item sizes and records survive."""
    numbers = distinct((6, 70, 9), "uint16")
    dtype_ = np.dtype(dtype)
    if dtype_.kind in "SU":
        array = numbers.astype(dtype_)  # valid text: the decimal digits, truncated
    elif dtype_.kind in "Mm":
        array = numbers.astype(np.int64).astype(dtype_)
    else:  # reinterpret distinct bytes
        raw = np.repeat(numbers.astype(np.uint8).ravel(), dtype_.itemsize)
        array = np.frombuffer(raw.tobytes(), dtype=dtype_).reshape(numbers.shape)
    assert array.dtype == dtype_
    for axes in itertools.permutations(range(3)):
        check(array, axes)
    check(array[::-1, 3:, ::2], (2, 0, 1))


def test_object_arrays_go_through_numpy() -> None:
    array = np.array([[object(), "a"], [None, 3]], dtype=object)
    result = contiguous_transpose(array, (1, 0))
    assert result.flags.c_contiguous
    assert all(result[i, j] is array[j, i] for i in range(2) for j in range(2))
    with pytest.raises(ValueError, match=r"axis 0 is repeated"):
        contiguous_transpose(array, (0, 0))
    with pytest.raises(TypeError, match="whose items are references"):
        _core.contiguous_transpose(array, [1, 0])


def test_variable_width_strings_go_through_numpy() -> None:
    """StringDType items point into the array's own arena: copying raw bytes would dangle."""
    array = np.array([["a" * 40, "bb"], ["c", "d" * 50]], dtype=np.dtypes.StringDType())
    expected = np.ascontiguousarray(array.T).copy()
    result = contiguous_transpose(array, (1, 0))
    del array
    np.testing.assert_array_equal(result, expected)


def test_non_arrays_and_axes_forms() -> None:
    nested = [[1, 2, 3], [4, 5, 6]]
    np.testing.assert_array_equal(contiguous_transpose(nested, (1, 0)), np.array(nested).T)
    array = distinct((3, 4, 5), "uint8")
    check(array, (-1, 0, -2))
    check(array, np.array([2, 0, 1]))
    check(array, [np.int64(1), np.int8(2), 0])
    check(array, None)
    np.testing.assert_array_equal(contiguous_transpose(array, None), array.T)


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ((0, 1), r"axes \(0, 1\) don't match an array of dimension 3"),
        ((0, 1, 2, 3), r"axes \(0, 1, 2, 3\) don't match"),
        ((0, 3, 1), r"axis 3 in axes \(0, 3, 1\) is out of bounds for an array of dimension 3"),
        ((0, -4, 1), r"axis -4 in axes \(0, -4, 1\) is out of bounds"),
        ((0, 1, 1), r"axis 1 is repeated in axes \(0, 1, 1\)"),
        ((2, 0, -1), r"axis 2 is repeated in axes \(2, 0, -1\)"),
    ],
)
def test_bad_axes_raise_value_error_naming_them(axes: tuple[int, ...], message: str) -> None:
    array = distinct((2, 3, 4), "uint8")
    with pytest.raises(ValueError):
        array.transpose(axes)  # numpy refuses them too
    with pytest.raises(ValueError, match=message):
        contiguous_transpose(array, axes)
    with pytest.raises(ValueError, match=message):
        contiguous_transpose(array.astype(object), axes)


@pytest.mark.parametrize("axes", [(0.0, 1.0), (True, False), ("a", "b"), (0, None)])
def test_non_integer_axes_raise_type_error(axes: Any) -> None:
    with pytest.raises(TypeError, match="axes must be integers"):
        contiguous_transpose(np.zeros((2, 3)), axes)


@pytest.mark.parametrize("axes", [0, np.array(0), 1.5])
def test_axes_that_are_not_a_sequence_raise_type_error(axes: Any) -> None:
    with pytest.raises(TypeError, match="axes must be a sequence of integers"):
        contiguous_transpose(np.zeros(3), axes)


def test_zero_dimensional_axes_are_validated() -> None:
    with pytest.raises(ValueError, match="don't match an array of dimension 0"):
        contiguous_transpose(np.array(1), (0,))


def test_input_is_left_untouched() -> None:
    array = distinct((33, 70, 80), "uint16")
    before = array.copy()
    contiguous_transpose(array, (2, 0, 1))
    np.testing.assert_array_equal(array, before, strict=True)


@settings(max_examples=150, deadline=None)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.int16, np.float32, np.uint64, np.complex128]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=12),
    ),
    data=st.data(),
)
def test_matches_numpy_on_random_views(array: np.ndarray, data: st.DataObject) -> None:
    index = data.draw(hnp.basic_indices(array.shape, allow_newaxis=False, allow_ellipsis=True))
    view = array[index]
    if not isinstance(view, np.ndarray):
        view = np.asarray(view)
    axes = data.draw(st.permutations(range(view.ndim)))
    check(view, tuple(axes) if view.ndim else ())
