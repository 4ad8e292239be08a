"""Resampling: ``ResizedSource``, ``AffineSource`` and ``bioimage_py.transformation``.

Oracles:
* bioimage-py 0.2 itself: ``tests/data/resample_v02.npz`` holds 0.2's whole-volume reads (2D and
  3D, orders 0-5, with and without anti-aliasing, every dtype 0.2 resamples), its matrices,
  coordinate helpers and sub-volume results, recorded by
  ``tests/data/make_v02_resample_references.py`` with 0.2's interpreter. Values must be equal,
  not close.
* ``bioimage_cpp.transformation`` called once on the whole array (what 0.2's whole-volume read
  does), for random inputs (hypothesis).
* Any tiling of reads equals one read (hypothesis), where 0.2's own block reads differ from its
  whole read in the last bits and at nearest-neighbour ties.
* Labels: order 0 copies ids; 64-bit ids beyond 2**53 (which bioimage-cpp's float64 rounds)
  against the same resampling of small indices into the id table.
* scipy.ndimage where the kernels coincide (linear; B-splines without prefilter).
"""
from __future__ import annotations

import itertools
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import bioimage_cpp
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bioimage_py import create_array, open_source, transformation
from bioimage_py.sources import Source, SourceSpec, from_spec
from bioimage_py.util import sigma_to_halo
from bioimage_py.wrapper.affine import AffineSource
from bioimage_py.wrapper.base import wrapper_from_spec
from bioimage_py.wrapper.resize import ResizedSource

REFERENCE = Path(__file__).parent / "data" / "resample_v02.npz"
WRAPPERS = {"resized": ResizedSource, "affine": AffineSource}
ENGINE_DTYPES = ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
                 "float32", "float64", "bool"]
SMOOTHABLE = ["uint8", "uint16", "float32", "float64", "bool"]
HYPOTHESIS = settings(max_examples=60, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _load_reference() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    with np.load(REFERENCE) as npz:
        arrays = {name: npz[name] for name in npz.files}
    return arrays, json.loads(str(arrays.pop("meta")))


ARRAYS, META = _load_reference()


def _cases(prefix: str) -> list[str]:
    return sorted(name.split("/", 1)[1] for name in META if name.startswith(prefix + "/"))


def whole(source: Source) -> np.ndarray:
    return np.asarray(source[...])


def read_tiled(source: Source, cuts: list[list[int]]) -> np.ndarray:
    """``source`` read box by box over the grid with these cut points (one list per axis)."""
    result = np.empty(source.shape, source.dtype)
    bounds = [list(zip([0, *c], [*c, n])) for c, n in zip(cuts, source.shape)]
    for box in itertools.product(*bounds):
        roi = tuple(slice(a, b) for a, b in box)
        result[roi] = source[roi]
    return result


def regular_cuts(shape: tuple[int, ...], tile: int) -> list[list[int]]:
    return [list(range(tile, n, tile)) for n in shape]


# --- values against 0.2 -----------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(k for k in META if k.startswith(("resized/", "affine/"))))
def test_whole_and_tiled_reads_equal_v02(key):
    meta = META[key]
    source = WRAPPERS[key.split("/")[0]](ARRAYS[f"input/{meta['input']}"], **meta["kwargs"])
    expected = ARRAYS[key]
    result = whole(source)
    assert result.dtype == expected.dtype and result.shape == expected.shape
    np.testing.assert_array_equal(result, expected)
    for tile in (3, 5):  # 0.2's own block reads differ from its whole read here
        np.testing.assert_array_equal(read_tiled(source, regular_cuts(source.shape, tile)), expected)


@pytest.mark.parametrize("kind", ["resized", "affine"])
def test_v02_params_reopen(kind, tmp_path):
    """0.2's ``_params()`` rebuild the wrapper (``cls(source, **params)``) and 0.2's spec layout
    (class under ``"cls"``) reopens over a zarr array."""
    for case in _cases(kind)[::7]:
        meta = META[f"{kind}/{case}"]
        data = ARRAYS[f"input/{meta['input']}"]
        expected = ARRAYS[f"{kind}/{case}"]
        np.testing.assert_array_equal(whole(WRAPPERS[kind](data, **meta["params"])), expected)
        stored = _zarr_source(tmp_path / f"{kind}_{case}.zarr", data)
        spec = SourceSpec(kind="wrapper", params={"cls": WRAPPERS[kind].__name__,
                                                  **meta["params"]}, wrapped=stored.to_spec())
        np.testing.assert_array_equal(whole(wrapper_from_spec(spec)), expected)


# --- against bioimage-cpp on the whole array ----------------------------------------------------


def bioimage_cpp_resize(data: np.ndarray, shape: tuple[int, ...], order: int, anti_aliasing: bool,
                        fill_value: float) -> np.ndarray:
    """One bioimage-cpp call over the whole array, output ``o`` sampling ``o * n_in / n_out``."""
    matrix = np.diag([n_in / float(n_out) for n_in, n_out in zip(data.shape, shape)] + [1.0])
    box = tuple(slice(0, n) for n in shape)
    return _bioimage_cpp(data, matrix, box, order, anti_aliasing, fill_value)


def bioimage_cpp_affine(data: np.ndarray, matrix: np.ndarray, shape: tuple[int, ...], order: int,
                        anti_aliasing: bool, fill_value: float) -> np.ndarray:
    """One bioimage-cpp call over the input region the output's corners map to (grown by the
    taps and the smoothing halo), with the matrix shifted into that region."""
    ndim = data.ndim
    sigma = _sigma(matrix, anti_aliasing)
    halo = np.full(ndim, order + 1)
    if sigma is not None:
        halo += np.asarray(sigma_to_halo(list(sigma), order))
    corners = np.array(list(itertools.product(*[(0, n) for n in shape])), dtype=np.float64)
    mapped = corners @ matrix[:ndim, :ndim].T + matrix[:ndim, ndim]
    start = np.maximum(0, np.floor(mapped.min(axis=0)).astype(int) - halo)
    stop = np.minimum(data.shape, np.ceil(mapped.max(axis=0)).astype(int) + halo)
    if np.any(stop <= start):
        return np.full(shape, fill_value, dtype=data.dtype)
    local = matrix.copy()
    local[:ndim, ndim] = matrix[:ndim, ndim] - start
    region = data[tuple(slice(a, b) for a, b in zip(start, stop))]
    return _bioimage_cpp(region, local, tuple(slice(0, n) for n in shape), order, anti_aliasing,
                         fill_value, sigma)


def _sigma(matrix: np.ndarray, anti_aliasing: bool) -> np.ndarray | None:
    ndim = matrix.shape[0] - 1
    sigma = bioimage_cpp.transformation.compute_anti_aliasing_sigma(matrix, ndim)
    return sigma if anti_aliasing and np.any(sigma > 0) else None


def _bioimage_cpp(data, matrix, box, order, anti_aliasing, fill_value, sigma=None):
    sigma = _sigma(matrix, anti_aliasing) if sigma is None else sigma
    values = data.astype(np.uint8) if data.dtype == bool else data
    if sigma is None:
        result = bioimage_cpp.transformation.affine_transform(
            values, matrix, bounding_box=box, order=order, fill_value=fill_value)
    else:
        result = bioimage_cpp.transformation.resample(
            values, matrix, bounding_box=box, order=order, fill_value=fill_value,
            anti_aliasing_sigma=sigma)
    return result.astype(bool) if data.dtype == bool else result


@st.composite
def volumes(draw, dtypes=ENGINE_DTYPES, max_side=14):
    ndim = draw(st.sampled_from([2, 3]))
    shape = tuple(draw(st.lists(st.integers(1, max_side), min_size=ndim, max_size=ndim)))
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.random(shape) * 2.5 - 0.25
    if dtype == bool:
        data = values > 0.5
    elif dtype.kind == "f":
        data = (100 * values).astype(dtype)
    else:
        info = np.iinfo(dtype)
        data = np.clip(np.round(values * min(info.max, 5000)), info.min, info.max).astype(dtype)
    return data


@st.composite
def resize_cases(draw, dtypes=ENGINE_DTYPES):
    data = draw(volumes(dtypes))
    shape = tuple(draw(st.integers(1, 2 * n + 3)) for n in data.shape)
    order = draw(st.integers(0, 5))
    smoothable = str(data.dtype) in SMOOTHABLE
    anti_aliasing = draw(st.booleans()) if smoothable else False
    fill_value = draw(st.sampled_from([0, 1, 7]))
    return data, shape, order, anti_aliasing, fill_value


@st.composite
def affine_matrices(draw, ndim):
    angles = [draw(st.floats(-180, 180)) for _ in range(1 if ndim == 2 else 3)]
    scale = [draw(st.floats(0.3, 3.0)) for _ in range(ndim)]
    translation = [draw(st.floats(-8, 8)) for _ in range(ndim)]
    return transformation.compute_affine_matrix(scale=scale, rotation=angles,
                                                translation=translation)


@st.composite
def affine_cases(draw, dtypes=ENGINE_DTYPES):
    data = draw(volumes(dtypes))
    matrix = draw(affine_matrices(data.ndim))
    shape = tuple(draw(st.integers(1, 2 * n + 3)) for n in data.shape)
    order = draw(st.integers(0, 5))
    anti_aliasing = draw(st.booleans()) if str(data.dtype) in SMOOTHABLE else False
    fill_value = draw(st.sampled_from([0, 1, 7]))
    return data, matrix, shape, order, anti_aliasing, fill_value


@st.composite
def cuts(draw, shape):
    return [sorted(draw(st.sets(st.integers(1, n - 1), max_size=3))) if n > 1 else []
            for n in shape]


@HYPOTHESIS
@given(case=resize_cases(), data=st.data())
def test_resized_equals_one_bioimage_cpp_call_in_any_tiling(case, data):
    volume, shape, order, anti_aliasing, fill_value = case
    source = ResizedSource(volume, shape, order=order, anti_aliasing=anti_aliasing,
                           fill_value=fill_value)
    expected = bioimage_cpp_resize(volume, shape, order, anti_aliasing, fill_value)
    np.testing.assert_array_equal(whole(source), expected)
    np.testing.assert_array_equal(read_tiled(source, data.draw(cuts(shape))), expected)


@HYPOTHESIS
@given(case=affine_cases(), data=st.data())
def test_affine_equals_one_bioimage_cpp_call_in_any_tiling(case, data):
    volume, matrix, shape, order, anti_aliasing, fill_value = case
    source = AffineSource(volume, shape, affine_matrix=matrix, order=order,
                          anti_aliasing=anti_aliasing, fill_value=fill_value)
    expected = bioimage_cpp_affine(volume, matrix, shape, order, anti_aliasing, fill_value)
    np.testing.assert_array_equal(whole(source), expected)
    np.testing.assert_array_equal(read_tiled(source, data.draw(cuts(shape))), expected)


@pytest.mark.parametrize("order", range(6))
@pytest.mark.parametrize("ndim", [2, 3])
def test_large_reads_in_parallel_slabs_equal_small_reads(order, ndim):
    """Reads large enough to be computed in parallel slabs, with a non-dyadic scale (the
    replayed walk) and with anti-aliasing (aligned smoothing regions)."""
    shape = (700, 520) if ndim == 2 else (48, 70, 45)
    volume = np.random.default_rng(order).random(shape).astype(np.float32)
    out_shape = (900, 300) if ndim == 2 else (100, 23, 150)
    source = ResizedSource(volume, out_shape, order=order, anti_aliasing=True)
    expected = bioimage_cpp_resize(volume, out_shape, order, True, 0)
    np.testing.assert_array_equal(whole(source), expected)
    np.testing.assert_array_equal(read_tiled(source, regular_cuts(out_shape, 37)), expected)
    matrix = transformation.compute_affine_matrix(
        scale=[1.1, 0.7, 1.3][:ndim], rotation=[12.0] if ndim == 2 else [5.0, -7.0, 12.0],
        translation=[20.5, 30.0, 17.0][:ndim])
    rotated = AffineSource(volume, out_shape, affine_matrix=matrix, order=order)
    expected = bioimage_cpp_affine(volume, matrix, out_shape, order, False, 0)
    np.testing.assert_array_equal(whole(rotated), expected)
    np.testing.assert_array_equal(read_tiled(rotated, regular_cuts(out_shape, 41)), expected)


@pytest.mark.parametrize("shape,out_shape", [((60, 230), (5, 9)), ((20, 40, 100), (4, 5, 6))])
def test_strong_downsampling_with_wide_smoothing_kernels(shape, out_shape):
    """Sigmas whose kernel radius (ceil(3 sigma) > 12) leaves bioimage-cpp's vectorized path."""
    volume = (np.random.default_rng(0).random(shape) * 100).astype(np.float32)
    for order in (0, 1, 3):
        source = ResizedSource(volume, out_shape, order=order, anti_aliasing=True)
        expected = bioimage_cpp_resize(volume, out_shape, order, True, 0)
        np.testing.assert_array_equal(whole(source), expected)
        for tile in (2, 3):
            np.testing.assert_array_equal(read_tiled(source, regular_cuts(out_shape, tile)),
                                          expected)


def test_reads_index_like_numpy():
    volume = np.random.default_rng(3).random((9, 12, 10)).astype(np.float32)
    source = ResizedSource(volume, (14, 6, 17), order=3)
    full = whole(source)
    for index in [np.s_[3], np.s_[2:9, 4, -3:], np.s_[..., 5], np.s_[5:2], np.s_[-1, -1, -1]]:
        np.testing.assert_array_equal(source[index], full[index])


# --- labels -------------------------------------------------------------------------------------


def _large_labels(shape: tuple[int, ...], dtype: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from a table of ids beyond 2**53 (index 0: the id 0 used as fill), and the
    image of indices into that table."""
    rng = np.random.default_rng(seed)
    near = [int(v) for v in rng.choice(10**6, 12, replace=False)]
    if dtype == "uint64":
        ids = np.array([0, *(2**64 - 1 - v for v in near)], dtype=np.uint64)
    else:
        ids = np.array([0, *(2**63 - 1 - v for v in near[:6]), *(-(2**63) + v for v in near[6:])],
                       dtype=np.int64)
    indices = rng.integers(1, len(ids), shape).astype(np.uint16)
    return ids, indices


@pytest.mark.parametrize("dtype", ["uint64", "int64"])
@pytest.mark.parametrize("ndim", [2, 3])
def test_order_0_copies_64_bit_labels_exactly(dtype, ndim):
    """The oracle: the same resampling of the indices into the id table (bioimage-cpp is exact
    on small integers), mapped back through the table."""
    shape = (13, 17, 11)[-ndim:]
    ids, indices = _large_labels(shape, dtype, ndim)
    labels = ids[indices]
    matrix = transformation.compute_affine_matrix(
        rotation=[30.0] if ndim == 2 else [20.0, -10.0, 35.0], translation=[1.5] * ndim)
    for out_shape in ([2 * n for n in shape], [int(0.7 * n) + 1 for n in shape]):
        resized = ResizedSource(labels, out_shape, order=0)
        expected = ids[bioimage_cpp_resize(indices, tuple(out_shape), 0, False, 0)]
        np.testing.assert_array_equal(whole(resized), expected)
        np.testing.assert_array_equal(read_tiled(resized, regular_cuts(out_shape, 4)), expected)
        affine = AffineSource(labels, out_shape, affine_matrix=matrix, order=0)
        expected = ids[bioimage_cpp_affine(indices, matrix, tuple(out_shape), 0, False, 0)]
        np.testing.assert_array_equal(whole(affine), expected)
        np.testing.assert_array_equal(read_tiled(affine, regular_cuts(out_shape, 5)), expected)
    # What the test guards against: bioimage-cpp's float64 arithmetic rounds these ids.
    rounded = bioimage_cpp_resize(labels, tuple(2 * n for n in shape), 0, False, 0)
    assert not np.isin(rounded, ids).all()


@pytest.mark.parametrize("order", [0, 1, 3])
def test_transform_subvolume_coordinates_copies_labels_at_order_0(order):
    ids, indices = _large_labels((12, 15), "uint64", 5)
    field = np.random.default_rng(1).uniform(-2, 16, size=(2, 9, 7))
    result = transformation.transform_subvolume_coordinates(ids[indices], field, order=0)
    expected = ids[transformation.transform_subvolume_coordinates(indices, field, order=0)]
    np.testing.assert_array_equal(result, expected)
    # Higher orders interpolate (in float64, as 0.2): the oracle is bioimage-cpp itself.
    small = transformation.transform_subvolume_coordinates(indices, field, order=order)
    np.testing.assert_array_equal(
        small, bioimage_cpp.transformation.map_coordinates(indices, field, order=order))


@HYPOTHESIS
@given(volume=volumes(["uint64", "int64", "uint32", "int16"]), data=st.data())
def test_order_0_never_invents_label_ids(volume, data):
    offset = {"uint64": np.uint64(2**64 - 2**20), "int64": np.int64(2**62)}.get(str(volume.dtype))
    labels = volume if offset is None else volume + offset
    matrix = data.draw(affine_matrices(volume.ndim))
    shape = tuple(data.draw(st.integers(1, 2 * n + 3)) for n in volume.shape)
    for source in (AffineSource(labels, shape, affine_matrix=matrix, fill_value=0),
                   ResizedSource(labels, shape, fill_value=0)):
        values = whole(source)
        assert np.isin(values, np.append(labels.ravel(), labels.dtype.type(0))).all()


# --- specs --------------------------------------------------------------------------------------


def _zarr_source(path: Path, data: np.ndarray) -> Source:
    chunks = tuple(max(1, n // 2) for n in data.shape)
    out = create_array(path, "raw", shape=data.shape, dtype=data.dtype, chunks=chunks)
    out[...] = data
    return open_source(path, "raw")


SPEC_CASES = {
    "resized_aa": lambda s: ResizedSource(s, (7, 13, 9), order=3, anti_aliasing=True,
                                          fill_value=2.5),
    "resized_grid": lambda s: ResizedSource(s, (7, 13, 9), order=1, grid_mode=True),
    "affine_rotation": lambda s: AffineSource(s, (10, 12, 14), rotation=[10.0, 20.0, 30.0],
                                              scale=[1.2, 0.9, 1.5], order=1, anti_aliasing=True),
    "affine_matrix": lambda s: AffineSource(s, affine_matrix=np.diag([2.0, 0.5, 1.5, 1.0]),
                                            order=5, fill_value=-1.5),
}


@pytest.fixture
def stored(tmp_path: Path) -> Source:
    data = (np.random.default_rng(7).random((11, 17, 12)) * 300).astype(np.float32)
    return _zarr_source(tmp_path / "volume.zarr", data)


@pytest.mark.parametrize("name", SPEC_CASES)
def test_spec_round_trips(stored, name, tmp_path):
    source = SPEC_CASES[name](stored)
    expected = whole(source)
    spec = source.to_spec()
    assert spec.kind == "wrapper" and spec.params["cls"] == type(source).__name__
    json.dumps(spec.params)  # JSON-able: lists, not numpy arrays
    assert SourceSpec.from_json(spec.to_json()) == spec
    for clone in (from_spec(SourceSpec.from_json(spec.to_json())), pickle.loads(pickle.dumps(source))):
        assert type(clone) is type(source) and clone.shape == source.shape
        np.testing.assert_array_equal(whole(clone), expected)
    (tmp_path / "spec.json").write_text(spec.to_json())
    script = (
        "import sys, numpy as np\n"
        "from bioimage_py.sources import SourceSpec, from_spec\n"
        "src = from_spec(SourceSpec.from_json(open(sys.argv[1]).read()))\n"
        "np.save(sys.argv[2], src[1:6, 2:, ::1])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "spec.json"), str(tmp_path / "out.npy")],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected[1:6, 2:])


def test_properties():
    volume = np.zeros((10, 21, 8), np.uint16)
    resized = ResizedSource(volume, (5, 7, 16), order=2)
    assert resized.scale == (2.0, 3.0, 0.5) and resized.order == 2 and not resized.grid_mode
    assert resized.shape == (5, 7, 16) and resized.dtype == np.uint16 and resized.shards is None
    assert not resized.writable
    affine = AffineSource(volume, rotation=[0.0, 0.0, 90.0])
    assert affine.shape == volume.shape and affine.shards is None
    np.testing.assert_array_equal(affine.matrix, transformation.compute_affine_matrix(
        rotation=[0.0, 0.0, 90.0]))
    affine.matrix[0, 0] = 7  # a copy
    assert affine.matrix[0, 0] != 7


def test_chunks_are_scaled_as_0_2_reports_them(stored):
    assert stored.chunks == (5, 8, 6)
    assert ResizedSource(stored, (6, 4, 24)).chunks == (3, 2, 12)
    assert ResizedSource(stored, (6, 4, 24), grid_mode=True).chunks is None
    assert AffineSource(stored, rotation=[0.0, 0.0, 10.0]).chunks == stored.chunks


# --- grid mode ----------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("shape,out_shape", [((9, 14), (20, 5)), ((4, 5, 6, 7), (7, 3, 12, 7))])
def test_grid_mode_is_scipy_zoom_with_grid_mode(order, shape, out_shape):
    volume = np.random.default_rng(0).random(shape)
    source = ResizedSource(volume, out_shape, order=order, grid_mode=True)
    zoom = [o / i for o, i in zip(out_shape, shape)]
    expected = ndi.zoom(volume, zoom, order=order, mode="nearest", grid_mode=True)
    np.testing.assert_allclose(whole(source), expected, rtol=1e-12, atol=1e-12)


# --- scipy where the kernels coincide -------------------------------------------------------------


@pytest.mark.parametrize("order", [1, 2, 4, 5])
@pytest.mark.parametrize("ndim", [2, 3])
def test_agrees_with_scipy_where_the_kernels_coincide(order, ndim):
    """Linear interpolation, and the B-splines without prefilter (taps outside the input take the
    fill value: scipy's ``grid-constant``). Linear compares voxels sampling inside the input
    (bioimage-cpp fills the others)."""
    shape = (23, 19, 16)[-ndim:]
    volume = np.random.default_rng(order).random(shape)
    matrix = transformation.compute_affine_matrix(
        scale=[1.3, 0.8, 1.1][:ndim], rotation=[20.0] if ndim == 2 else [10.0, 5.0, -15.0],
        translation=[1.0] * ndim)
    ours = whole(AffineSource(volume, affine_matrix=matrix, order=order, fill_value=0.5))
    theirs = ndi.affine_transform(volume, matrix, order=order, mode="grid-constant", cval=0.5,
                                  prefilter=False)
    if order == 1:
        grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"))
        mapped = np.tensordot(matrix[:ndim, :ndim], grid, axes=1)
        mapped += matrix[:ndim, ndim].reshape((ndim,) + (1,) * ndim)
        inside = np.all([(c >= 0) & (c <= n - 1) for c, n in zip(mapped, shape)], axis=0)
        ours, theirs = ours[inside], theirs[inside]
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)


# --- transformation helpers against 0.2 -------------------------------------------------------------


@pytest.mark.parametrize("case", _cases("matrix"))
def test_matrix_and_coordinate_helpers_equal_v02(case):
    matrix = transformation.compute_affine_matrix(**META[f"matrix/{case}"]["kwargs"])
    np.testing.assert_array_equal(matrix, ARRAYS[f"matrix/{case}"])
    ndim = matrix.shape[0] - 1
    point = transformation.transform_coordinate([1.5, -2.0, 7.25][:ndim], matrix)
    assert isinstance(point, tuple)
    np.testing.assert_array_equal(point, ARRAYS[f"coordinate/{case}"])
    start, stop = transformation.transform_roi_with_affine([2, 3, 1][:ndim], [10, 7, 9][:ndim],
                                                           matrix)
    np.testing.assert_array_equal([start, stop], ARRAYS[f"roi/{case}"])


@pytest.mark.parametrize("case", _cases("subvolume"))
def test_transform_subvolume_affine_equals_v02(case):
    meta = META[f"subvolume/{case}"]
    roi = tuple(slice(a, b) for a, b in meta["roi"])
    result = transformation.transform_subvolume_affine(
        ARRAYS[f"input/{meta['input']}"], np.array(meta["matrix"]), roi, order=meta["order"],
        fill_value=meta["fill_value"], sigma=meta["sigma"])
    np.testing.assert_array_equal(result, ARRAYS[f"subvolume/{case}"])


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("order", range(6))
def test_transform_subvolume_coordinates_equals_v02(ndim, order):
    field = ARRAYS[f"coordinates/{ndim}d/field"]
    result = transformation.transform_subvolume_coordinates(
        ARRAYS[f"input/{ndim}d_uint16"], field, order=order, fill_value=7)
    np.testing.assert_array_equal(result, ARRAYS[f"coordinates/{ndim}d_o{order}"])
    # Any split of the field gives the same values.
    halves = [transformation.transform_subvolume_coordinates(
        ARRAYS[f"input/{ndim}d_uint16"], part, order=order, fill_value=7)
        for part in (field[:, :3], field[:, 3:])]
    np.testing.assert_array_equal(np.concatenate(halves), result)


# --- errors -----------------------------------------------------------------------------------------

VOLUME = np.zeros((6, 7, 8), np.float32)

ERRORS = [
    (lambda: ResizedSource(VOLUME, (3, 3)), ValueError, r"\(3, 3\) has 2 axes"),
    (lambda: ResizedSource(VOLUME, (3, -1, 3)), ValueError, "negative size"),
    (lambda: ResizedSource(VOLUME, (3, 0, 3)), ValueError, "empty axis"),
    (lambda: ResizedSource(VOLUME, (3, 2.5, 3)), TypeError, "2.5"),
    (lambda: ResizedSource(VOLUME, (3, 3, 3), order=6), ValueError, "got 6"),
    (lambda: ResizedSource(VOLUME, (3, 3, 3), order=1.0), TypeError, "1.0"),
    (lambda: ResizedSource(VOLUME, (3, 3, 3), order=True), TypeError, "True"),
    (lambda: ResizedSource(np.zeros(5), (3,)), ValueError, "2D and 3D"),
    (lambda: ResizedSource(np.zeros((2, 3, 4, 5)), (1, 1, 1, 1)), ValueError, "grid_mode=True"),
    (lambda: ResizedSource(VOLUME.astype(np.complex64), (3, 3, 3)), TypeError, "complex64"),
    (lambda: ResizedSource(VOLUME.astype(np.complex64), (3, 3, 3)), TypeError, "complex64"),
    (lambda: ResizedSource(VOLUME.astype(np.int32), (3, 3, 3), anti_aliasing=True), TypeError,
     "int32"),
    (lambda: ResizedSource(VOLUME.astype(np.uint8), (3, 3, 3), fill_value=-1), ValueError,
     "-1 cannot be represented in the data type uint8"),
    (lambda: ResizedSource(VOLUME, (3, 3, 3), fill_value="0"), TypeError, "fill_value"),
    (lambda: ResizedSource(VOLUME, (3, 3, 3), order=3, grid_mode=True), ValueError, "got 3"),
    (lambda: ResizedSource(VOLUME, (3, 3, 3), anti_aliasing=True, grid_mode=True), ValueError,
     "anti-alias"),
    (lambda: ResizedSource(VOLUME, (3, 3, 3), fill_value=1, grid_mode=True), ValueError,
     "fill_value"),
    (lambda: AffineSource(VOLUME), ValueError, "exactly one of"),
    (lambda: AffineSource(VOLUME, affine_matrix=np.eye(4), scale=[1, 1, 1]), ValueError,
     "exactly one of"),
    (lambda: AffineSource(VOLUME, affine_matrix=np.eye(3)), ValueError, r"\(4, 4\)"),
    (lambda: AffineSource(VOLUME, affine_matrix=np.ones((4, 4))), ValueError, "last row"),
    (lambda: AffineSource(VOLUME, affine_matrix=np.diag([np.nan, 1, 1, 1])), ValueError, "finite"),
    (lambda: AffineSource(VOLUME, scale=[1, 1]), ValueError, r"shape \(3, 3\)|3D"),
    (lambda: AffineSource(VOLUME, (4, 4), scale=[1, 1, 1]), ValueError, "has 2 axes"),
    (lambda: AffineSource(VOLUME, scale=[1, 1, 1], order=-1), ValueError, "got -1"),
    (lambda: AffineSource(np.zeros((2, 2, 2, 2)), scale=[1] * 4), ValueError, "2D and 3D"),
    (lambda: AffineSource(VOLUME.astype(np.complex64), scale=[1, 1, 1]), TypeError, "complex64"),
    (lambda: AffineSource(VOLUME.astype(np.uint64), scale=[3, 3, 3], anti_aliasing=True),
     TypeError, "uint64"),
    (lambda: transformation.compute_affine_matrix(), ValueError, "at least one"),
    (lambda: transformation.compute_affine_matrix(scale=[1, 1], rotation=[1, 2, 3]), ValueError,
     "disagree"),
    (lambda: transformation.compute_affine_matrix(rotation=[1, 2]), ValueError, "1 entry"),
    (lambda: transformation.compute_affine_matrix(scale=[1, 1, 1, 1]), ValueError, "neither"),
    (lambda: transformation.compute_affine_matrix(rotation=30), TypeError, "sequence"),
    (lambda: transformation.compute_affine_matrix(shear=[10, 0, 0]), ValueError, "3D"),
    (lambda: transformation.transform_subvolume_affine(VOLUME, np.eye(4), (slice(0, 2),) * 2),
     ValueError, "3 slices"),
    (lambda: transformation.transform_subvolume_affine(VOLUME, np.eye(4), np.s_[0:2, 0:2, 0:4:2]),
     ValueError, "step 1"),
    (lambda: transformation.transform_subvolume_affine(VOLUME, np.eye(4), np.s_[:, :, :],
                                                       sigma=[1, -1, 0]), ValueError, "sigma"),
    (lambda: transformation.transform_subvolume_coordinates(VOLUME, np.zeros((2, 4, 4))),
     ValueError, "coordinates must have shape"),
]


@pytest.mark.parametrize("make,error,match", ERRORS)
def test_errors_name_the_bad_value(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bool_goes_through_uint8_as_in_0_2():
    mask = np.random.default_rng(2).random((10, 12)) > 0.5
    for order in range(6):
        source = ResizedSource(mask, (7, 19), order=order)
        expected = bioimage_cpp_resize(mask.astype(np.uint8), (7, 19), order, False, 0)
        np.testing.assert_array_equal(whole(source), expected.astype(bool))
        assert source.dtype == bool


@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize("anti_aliasing", [False, True])
def test_float16_resamples_as_float32_rounded_back(order: int, anti_aliasing: bool) -> None:
    """float16 goes through float32 (which holds every float16 exactly): the result is the
    float32 resample of the same values, rounded to float16, with the dtype kept."""
    rng = np.random.default_rng(16)
    data = rng.normal(100, 30, (20, 24, 18)).astype(np.float16)
    kwargs = {"order": order, "anti_aliasing": anti_aliasing}
    half = ResizedSource(data, (10, 12, 9), **kwargs)
    single = ResizedSource(data.astype(np.float32), (10, 12, 9), **kwargs)
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half[:], single[:].astype(np.float16))
    np.testing.assert_array_equal(half[2:7, 3:9, 1:5], half[:][2:7, 3:9, 1:5])
