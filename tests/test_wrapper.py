"""Wrappers over real zarr and N5 files: values, read-only behaviour, chunks, specs (JSON, pickle,
cloudpickle, another process), chains, parameter errors, the registry, what each wrapper reads
from the source it wraps, and the generic wrappers' options (0.2's semantics by default; global
normalization bounds, whole-array padding, writable regions of interest).

Index-by-index equality with numpy for random parameters lives in test_wrapper_properties.py,
values against 0.2 in test_wrapper_compat.py, the transformation wrappers in
test_wrapper_transformations.py.
"""
from __future__ import annotations

import json
import operator
import pickle
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
import zarr

import bioimage_py.wrapper.base as base_module
import bioimage_py.wrapper.generic as generic_module
from bioimage_py import create_array, open_source
from bioimage_py.sources import Source, SourceSpec, as_source, from_spec
from bioimage_py.wrapper import (
    ExpandDimsSource,
    NormalizeSource,
    PadSource,
    ResizedSource,
    RoiSource,
    ThresholdSource,
    WrapperSource,
    register_wrapper,
    wrapper_from_spec,
)

SHAPE = (12, 16, 10)
CHUNKS = (4, 8, 5)


def volume() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 5000, SHAPE, dtype=np.uint16)


@pytest.fixture
def zarr_source(tmp_path: Path) -> Source:
    """A read-only FileSource over a zarr v3 array written by create_array."""
    out = create_array(tmp_path / "volume.zarr", "raw", shape=SHAPE, dtype="uint16", chunks=CHUNKS)
    out[...] = volume()
    return open_source(tmp_path / "volume.zarr", "raw")


class RecordingSource(Source):
    """An in-memory source that records every region read from it."""

    def __init__(self, data: np.ndarray, chunks: tuple[int, ...] | None = None) -> None:
        self.data, self._chunks, self.reads = data, chunks, []

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def chunks(self) -> tuple[int, ...] | None:
        return self._chunks

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        self.reads.append(tuple((s.start, s.stop) for s in roi))
        return self.data[roi]

    def to_spec(self) -> SourceSpec:
        raise ValueError("in memory")


# name -> (make the wrapper around a source, the same transform in numpy)
WRAPPERS: dict[str, tuple[Callable[[Any], WrapperSource], Callable[[np.ndarray], np.ndarray]]] = {
    "threshold": (
        lambda s: ThresholdSource(s, 2500, np.greater_equal),
        lambda a: a >= 2500,
    ),
    "normalize": (
        lambda s: NormalizeSource(s, lower=100, upper=4100),
        lambda a: ((a.astype(np.float32) - 100) / 4000).astype(np.float32),
    ),
    "roi": (
        lambda s: RoiSource(s, np.s_[2:10, 3:, :7]),
        lambda a: a[2:10, 3:, :7],
    ),
    "pad": (
        lambda s: PadSource(s, ((1, 2), (0, 3), (12, 2)), mode="reflect"),  # numpy.pad-exact
        lambda a: np.pad(a, ((1, 2), (0, 3), (12, 2)), mode="reflect"),
    ),
    "expand_dims": (
        lambda s: ExpandDimsSource(s, (0, -1)),
        lambda a: np.expand_dims(a, (0, -1)),
    ),
    "resized": (
        lambda s: ResizedSource(s, (6, 20, 10), order=0, grid_mode=True),
        lambda a: a[1::2][:, (np.arange(20) * 2 + 1) * 16 // 40],
    ),
}
NAMES = list(WRAPPERS)


def make(name: str, source: Any) -> WrapperSource:
    return WRAPPERS[name][0](source)


def expected(name: str) -> np.ndarray:
    return WRAPPERS[name][1](volume())


# --- values and read-only behaviour -------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_wrapper_over_zarr_file_reads_like_numpy(zarr_source, name):
    wrapper = make(name, zarr_source)
    want = expected(name)
    assert wrapper.shape == want.shape and wrapper.dtype == want.dtype
    np.testing.assert_allclose(np.asarray(wrapper), want, rtol=1e-6)
    np.testing.assert_allclose(wrapper[1:4, ..., 2:], want[1:4, ..., 2:], rtol=1e-6)
    np.testing.assert_allclose(wrapper[-1], want[-1], rtol=1e-6)
    # The same wrapper over numpy computes the very same values (bit for bit).
    np.testing.assert_array_equal(np.asarray(wrapper), np.asarray(make(name, volume())))


@pytest.mark.parametrize("name", [name for name in NAMES if name != "roi"])  # roi: see below
def test_wrapper_is_read_only(zarr_source, name):
    writable = open_source(zarr_source.path, "raw", mode="r+")
    wrapper = make(name, writable)
    assert wrapper.writable is False
    assert wrapper.source is writable
    with pytest.raises(TypeError, match="read-only"):
        wrapper[...] = 0
    with pytest.raises(TypeError, match="read-only"):
        wrapper[0, 0, 0] = 1
    np.testing.assert_array_equal(writable[...], volume())


def test_wrapper_reads_see_writes_to_the_source(tmp_path):
    out = create_array(tmp_path / "v.zarr", shape=(4, 4), dtype="float32", chunks=(2, 2))
    mask = ThresholdSource(out, 0.5)
    assert not mask[...].any()
    out[1:3, 2] = 1.0
    np.testing.assert_array_equal(np.argwhere(mask[...]), [[1, 2], [2, 2]])


def test_scalar_reads(zarr_source):
    data = volume()
    assert ThresholdSource(zarr_source, 2500)[3, 4, 5] == (data[3, 4, 5] > 2500)
    assert type(ThresholdSource(zarr_source, 2500)[3, 4, 5]) is np.bool_
    assert PadSource(zarr_source, 2, mode="edge")[0, 0, 0] == data[0, 0, 0]
    assert type(NormalizeSource(zarr_source, lower=0, upper=1)[1, 1, 1]) is np.float32
    assert type(NormalizeSource(zarr_source)[1, 1, 1]) is np.float32
    assert ExpandDimsSource(zarr_source, 1)[2, 0, 3, 4] == data[2, 3, 4]


def test_repr_names_parameters_and_source(zarr_source):
    text = repr(PadSource(zarr_source, 1, mode="wrap"))
    assert text.startswith("PadSource(") and "mode='wrap'" in text and "read-only" in text
    assert "FileSource(" in text


# --- chunks and shards --------------------------------------------------------------------------


def test_chunks_pass_through_when_geometry_is_unchanged(zarr_source):
    assert ThresholdSource(zarr_source, 1).chunks == CHUNKS
    assert NormalizeSource(zarr_source, lower=0, upper=1).chunks == CHUNKS
    assert ResizedSource(zarr_source, SHAPE, order=1, grid_mode=True).chunks == CHUNKS
    assert ResizedSource(zarr_source, (6, 16, 10), grid_mode=True).chunks is None
    assert PadSource(zarr_source, 1).chunks is None
    assert PadSource(zarr_source, (0, 3, 2)).chunks == CHUNKS  # right padding keeps the grid
    assert PadSource(zarr_source, ((0, 1), (0, 0), (0, 4))).chunks == CHUNKS
    assert ExpandDimsSource(zarr_source, (0, 2)).chunks == (1, 4, 1, 8, 5)
    assert RoiSource(zarr_source, np.s_[4:, 8:12]).chunks == CHUNKS  # starts on the grid
    assert RoiSource(zarr_source, np.s_[1:]).chunks is None
    assert RoiSource(zarr_source, (4, slice(8, None)), squeeze=True).chunks == (8, 5)
    assert ExpandDimsSource(zarr_source).chunks == (1, *CHUNKS)


def test_shards_pass_through(tmp_path):
    array = zarr.create_array(
        tmp_path / "sharded.zarr", shape=(8, 8), chunks=(2, 2), shards=(4, 4), dtype="int8"
    )
    source = as_source(array)
    assert ThresholdSource(source, 0).shards == (4, 4)
    assert ThresholdSource(source, 0).chunks == (2, 2)
    assert RoiSource(source, np.s_[4:, :]).shards == (4, 4)
    assert RoiSource(source, np.s_[2:, :]).shards is None
    assert RoiSource(source, np.s_[2:, :]).chunks == (2, 2)
    assert ExpandDimsSource(source, -1).shards == (4, 4, 1)
    assert PadSource(source, 1).shards is None


# --- specs, JSON, pickling ----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_spec_nests_the_wrapped_spec(zarr_source, name):
    wrapper = make(name, zarr_source)
    spec = wrapper.to_spec()
    assert spec.kind == "wrapper"
    assert spec.params["cls"] == type(wrapper).__name__  # 0.2's key
    assert spec.wrapped == zarr_source.to_spec()
    assert {k: v for k, v in spec.params.items() if k != "cls"} == wrapper._params()
    assert SourceSpec.from_json(spec.to_json()) == spec
    assert json.loads(json.dumps(spec.params)) == spec.params  # plain JSON values only


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "rebuild",
    [
        from_spec,
        wrapper_from_spec,
        lambda spec: from_spec(json.loads(spec.to_json())),
        lambda spec: wrapper_from_spec(spec.to_dict()),
    ],
    ids=["from_spec", "wrapper_from_spec", "from_json_dict", "wrapper_from_dict"],
)
def test_spec_rebuilds_the_wrapper(zarr_source, name, rebuild):
    wrapper = make(name, zarr_source)
    rebuilt = rebuild(wrapper.to_spec())
    assert type(rebuilt) is type(wrapper)
    assert rebuilt._params() == wrapper._params()
    assert (rebuilt.shape, rebuilt.dtype, rebuilt.chunks) == (
        wrapper.shape, wrapper.dtype, wrapper.chunks
    )
    assert rebuilt.to_spec() == wrapper.to_spec()
    np.testing.assert_array_equal(np.asarray(rebuilt), np.asarray(wrapper))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_pickles_as_its_spec(zarr_source, name, dumps):
    wrapper = make(name, zarr_source)
    payload = dumps(wrapper)
    assert len(payload) < 2000  # the spec travels, not the data
    clone = pickle.loads(payload)
    assert type(clone) is type(wrapper) and clone._params() == wrapper._params()
    np.testing.assert_array_equal(clone[2:5], wrapper[2:5])


@pytest.mark.parametrize("name", NAMES)
def test_numpy_backed_wrapper_is_local_only(name):
    wrapper = make(name, volume())
    with pytest.raises(ValueError, match="numpy arrays .* local execution"):
        wrapper.to_spec()
    for dumps in (pickle.dumps, cloudpickle.dumps):  # carries its data instead
        clone = pickle.loads(dumps(wrapper))
        np.testing.assert_array_equal(np.asarray(clone), np.asarray(wrapper))


# --- chains -------------------------------------------------------------------------------------


def chain(source: Any) -> WrapperSource:
    """Five wrappers deep: crop, pad, resize, normalize, threshold, add a channel axis."""
    roi = RoiSource(source, np.s_[1:11, 2:, :9])
    padded = PadSource(roi, ((2, 2), (0, 0), (1, 1)), mode="symmetric")
    resized = ResizedSource(padded, (7, 20, 22), order=1, grid_mode=True)
    normalized = NormalizeSource(resized, global_bounds=True, clip=True)
    mask = ThresholdSource(normalized, 0.5, np.less)
    return ExpandDimsSource(mask, 0)


def chain_in_numpy(data: np.ndarray) -> np.ndarray:
    import scipy.ndimage as ndi

    padded = np.pad(data[1:11, 2:, :9], ((2, 2), (0, 0), (1, 1)), mode="symmetric")
    factors = [o / n for o, n in zip((7, 20, 22), padded.shape)]
    resized = ndi.zoom(padded.astype(np.float64), factors, order=1, mode="nearest", grid_mode=True)
    resized = np.where(resized >= 0, np.floor(resized + 0.5), 0).astype(np.uint16)
    normalized = (resized - resized.min()) / (resized.max() - resized.min())
    return (normalized < 0.5)[np.newaxis]


def test_chain_over_zarr(zarr_source):
    wrapped = chain(zarr_source)
    assert wrapped.shape == (1, 7, 20, 22) and wrapped.dtype == bool
    np.testing.assert_array_equal(np.asarray(wrapped), np.asarray(chain(volume())))
    # Against numpy/scipy all along: equal except where float noise flips a value at 0.5.
    assert (np.asarray(wrapped) != chain_in_numpy(volume())).mean() < 0.01
    spec = wrapped.to_spec()
    depth, inner = 0, spec
    while inner.kind == "wrapper":
        depth, inner = depth + 1, inner.wrapped
    assert depth == 6 and inner == zarr_source.to_spec()
    rebuilt = from_spec(SourceSpec.from_json(spec.to_json()))
    np.testing.assert_array_equal(rebuilt[0, 2:5, 3:], wrapped[0, 2:5, 3:])
    # The normalization bounds travel in the spec: nothing is scanned again.
    assert rebuilt.source.source.lower == wrapped.source.source.lower


def test_chain_over_n5(tmp_path):
    data = volume()
    out = create_array(tmp_path / "volume.n5", "setup0/raw", shape=SHAPE, dtype="uint16",
                       chunks=CHUNKS)
    out[...] = data
    source = open_source(tmp_path / "volume.n5", "setup0/raw")
    wrapped = ThresholdSource(RoiSource(ExpandDimsSource(source, -1), np.s_[3:9, :, 2:]), 1000)
    np.testing.assert_array_equal(wrapped[...], np.expand_dims(data, -1)[3:9, :, 2:] > 1000)
    clone = pickle.loads(cloudpickle.dumps(wrapped))
    assert clone.to_spec().wrapped.wrapped.wrapped == source.to_spec()
    np.testing.assert_array_equal(clone[1, 2:, :, 0], wrapped[1, 2:, :, 0])


def test_chain_over_zarr_python_array(tmp_path):
    array = zarr.create_array(tmp_path / "zp.zarr", shape=SHAPE, chunks=CHUNKS, dtype="uint16")
    array[...] = volume()
    wrapped = PadSource(ResizedSource(array, (24, 8, 10), grid_mode=True), 3, mode="wrap")
    assert wrapped.to_spec().wrapped.wrapped.kind == "zarr"
    expected_values = np.pad(
        np.asarray(ResizedSource(volume(), (24, 8, 10), grid_mode=True)), 3, mode="wrap"
    )
    np.testing.assert_array_equal(from_spec(wrapped.to_spec())[...], expected_values)


def test_chain_reopened_in_another_process(zarr_source, tmp_path):
    wrapped = chain(zarr_source)
    (tmp_path / "spec.json").write_text(wrapped.to_spec().to_json())
    script = (
        "import sys, numpy as np\n"
        "from bioimage_py.sources import SourceSpec, from_spec\n"
        "src = from_spec(SourceSpec.from_json(open(sys.argv[1]).read()))\n"
        "np.save(sys.argv[2], src[0, 1:6, ::1, 4:])\n"
        "print(type(src).__name__, src.source.source.lower, src.source.source.upper)\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "spec.json"), str(tmp_path / "out.npy")],
        cwd=elsewhere, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    normalized = wrapped.source.source
    assert result.stdout.split() == [
        "ExpandDimsSource", str(normalized.lower), str(normalized.upper)
    ]
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), wrapped[0, 1:6, :, 4:])


def test_chain_as_input_of_a_copy_in_worker_processes(zarr_source, tmp_path):
    from bioimage_py.copy import copy

    normalized = NormalizeSource(RoiSource(zarr_source, np.s_[:, 2:, :8]), global_bounds=True)
    wrapped = ThresholdSource(normalized, 0.5)
    out = create_array(tmp_path / "mask.zarr", shape=wrapped.shape, dtype="bool", chunks=(4, 7, 4))
    copy(wrapped, out, job_type="subprocess", num_workers=2)  # workers rebuild it from the spec
    np.testing.assert_array_equal(out[...], np.asarray(wrapped))
    assert out[...].any() and not out[...].all()


def test_chain_as_a_dask_array(zarr_source):
    from bioimage_py.dask_array import to_dask

    wrapped = ResizedSource(PadSource(zarr_source, 2, mode="edge"), (8, 10, 12), order=1,
                            grid_mode=True)
    array = to_dask(wrapped, chunks=(4, 5, 6))
    np.testing.assert_array_equal(array.compute(), np.asarray(wrapped))


# --- parameter errors ---------------------------------------------------------------------------

BAD_PARAMETERS = [
    (lambda s: ThresholdSource(s, "high"), TypeError, "'high'"),
    (lambda s: ThresholdSource(s, None), TypeError, "None"),
    (lambda s: ThresholdSource(s, True), TypeError, "True"),
    (lambda s: ThresholdSource(s, 1, "bigger"), ValueError, "'bigger'.*numpy.greater_equal"),
    (lambda s: ThresholdSource(s, 1, "os.system"), ValueError, "'os.system'"),
    (lambda s: ThresholdSource(s, 1, 3), TypeError, "got 3"),
    (lambda s: NormalizeSource(s, dtype="int32"), ValueError, "int32"),
    (lambda s: NormalizeSource(s, "no-such-type"), ValueError, "no-such-type"),
    (lambda s: NormalizeSource(s, lower=5, upper=2), ValueError, r"lower \(5.0\).*upper \(2.0\)"),
    (lambda s: NormalizeSource(s, lower="0"), TypeError, "'0'"),
    (lambda s: NormalizeSource(s, upper=float("inf")), ValueError, "upper must be finite"),
    (lambda s: RoiSource(s, (slice(0, 2), 1.5)), TypeError, "got 1.5"),
    (lambda s: RoiSource(s, [slice(0, 2), "a"]), TypeError, "'a'"),
    (lambda s: RoiSource(s, (0, 16)), IndexError, "out of range"),
    (lambda s: RoiSource(s, (0, -17)), ValueError, "out of range"),
    (lambda s: RoiSource(s, np.s_[::2]), ValueError, "step 2"),
    (lambda s: RoiSource(s, (slice(0.5, 2),)), TypeError, "0.5"),
    (lambda s: RoiSource(s, (slice(None),) * 4), ValueError, "more entries than .* 3 axes"),
    (lambda s: PadSource(s, -1), ValueError, r"non-negative, got \(-1, -1\)"),
    (lambda s: PadSource(s, (0, -1, 2)), ValueError, r"non-negative, got \(0, -1\) for axis 1"),
    (lambda s: PadSource(s, ((0, 1), (2, -3), (0, 0))), ValueError, r"\(2, -3\) for axis 1"),
    (lambda s: PadSource(s, 1.5), TypeError, "1.5"),
    (lambda s: PadSource(s, (1, 2, 3, 4)), ValueError, r"\(1, 2, 3, 4\).*3 axes"),
    (lambda s: PadSource(s, 1, mode="mean"), ValueError, "'mean'.*symmetric"),
    (lambda s: PadSource(s, (1, 1, 1), mode="blur"), ValueError, "'blur'.*median"),
    (lambda s: PadSource(s, 1, constant_values=-1), ValueError, "-1 cannot be represented"),
    (lambda s: PadSource(s, (0, 1, 0), constant_values=0.5), ValueError,
     "0.5 cannot be represented"),
    (lambda s: PadSource(s, 1, constant_values="x"), TypeError, "'x'"),
    (lambda s: ExpandDimsSource(s, 4), ValueError, "axis 4 is out of range for the 4 axes"),
    (lambda s: ExpandDimsSource(s, -5), ValueError, "axis -5"),
    (lambda s: ExpandDimsSource(s, (1, -4)), ValueError, r"repeated axis in \(1, -4\)"),
    (lambda s: ExpandDimsSource(s, 1.0), TypeError, "1.0"),
    (lambda s: ResizedSource(s, (4, 4), grid_mode=True), ValueError,
     r"\(4, 4\) has 2 axes .* \(12, 16, 10\)"),
    (lambda s: ResizedSource(s, (4, -1, 4), grid_mode=True), ValueError,
     "negative size on axis 1"),
    (lambda s: ResizedSource(s, (4.5, 4, 4), grid_mode=True), TypeError, "4.5"),
    (lambda s: ResizedSource(s, 4, grid_mode=True), TypeError, "got 4"),
    (lambda s: ResizedSource(s, SHAPE, order=3, grid_mode=True), ValueError, "got 3"),
    (lambda s: ResizedSource(s, SHAPE, order="linear", grid_mode=True), TypeError, "'linear'"),
]


@pytest.mark.parametrize(("build", "error", "match"), BAD_PARAMETERS)
def test_bad_parameters_raise_naming_the_value(zarr_source, build, error, match):
    with pytest.raises(error, match=match):
        build(zarr_source)


def test_bad_sources():
    with pytest.raises(TypeError, match="strings / file paths"):
        ThresholdSource("volume.zarr", 1)
    with pytest.raises(TypeError, match="bool, integer or float"):
        NormalizeSource(np.ones(3, dtype=complex))
    with pytest.raises(TypeError, match="numeric"):
        ResizedSource(np.array(["a", "b"]), (4,), order=1, grid_mode=True)
    with pytest.raises(ValueError, match="empty axis 0"):
        ResizedSource(np.zeros((0, 3)), (2, 3), grid_mode=True)
    with pytest.raises(ValueError, match="empty axis 1 with mode 'edge'"):
        PadSource(np.zeros((2, 0)), 1, mode="edge")
    with pytest.raises(ValueError, match="empty axis 1 with mode 'reflect'"):
        PadSource(np.zeros((2, 0)), (0, 1), mode="reflect")


# --- ThresholdSource ----------------------------------------------------------------------------


def test_threshold_defaults_to_greater_and_records_operators_by_name(zarr_source):
    data = volume()
    default = ThresholdSource(zarr_source, 2500)
    np.testing.assert_array_equal(default[...], data > 2500)
    assert default.threshold == 2500 and default.operator is np.greater
    assert default.to_spec().params == {
        "threshold": 2500, "operator": "numpy.greater", "cls": "ThresholdSource"
    }
    for given, recorded, reference in [
        (np.less_equal, "numpy.less_equal", data <= 2500),
        ("greater_equal", "numpy.greater_equal", data >= 2500),
        ("numpy.equal", "numpy.equal", data == 2500),
        (operator.lt, "operator.lt", data < 2500),
    ]:
        wrapper = ThresholdSource(zarr_source, 2500, given)
        np.testing.assert_array_equal(wrapper[...], reference)
        spec = wrapper.to_spec()
        assert spec.params["operator"] == recorded
        rebuilt = from_spec(SourceSpec.from_json(spec.to_json()))
        np.testing.assert_array_equal(rebuilt[...], reference)


def test_threshold_with_a_callable_travels_by_pickling(zarr_source):
    def near(block, threshold):
        return np.abs(block.astype(np.int32) - 2500) < threshold

    wrapper = ThresholdSource(zarr_source, 100, near)
    reference = np.abs(volume().astype(np.int32) - 2500) < 100
    np.testing.assert_array_equal(wrapper[...], reference)
    spec = wrapper.to_spec()
    assert spec.params["operator"] is near
    with pytest.raises(TypeError, match="near"):
        spec.to_json()
    np.testing.assert_array_equal(pickle.loads(cloudpickle.dumps(wrapper))[...], reference)


def test_threshold_float_and_int_thresholds_compare_as_numpy():
    data = np.array([2**53, 2**53 + 1], dtype=np.int64)
    # An int compares exactly (0.2's float(threshold) would call both values equal to 2**53).
    assert ThresholdSource(data, 2**53)[...].tolist() == [False, True]
    floats = np.array([0.1, 0.2, np.nan], dtype=np.float32)
    np.testing.assert_array_equal(ThresholdSource(floats, 0.1)[...], floats > 0.1)


def test_previous_release_threshold_spec_reopens(zarr_source):
    spec = SourceSpec(
        "wrapper", params={"class": "ThresholdSource", "threshold": 2500, "mode": "less"},
        wrapped=zarr_source.to_spec(),
    )
    np.testing.assert_array_equal(from_spec(spec)[...], volume() < 2500)


# --- NormalizeSource ----------------------------------------------------------------------------


def test_normalize_default_normalizes_every_read_by_its_own_range(zarr_source):
    """0.2's semantics: (block - min) / (max - min + eps), in float32, per read."""
    normalized = NormalizeSource(zarr_source)
    assert (normalized.lower, normalized.upper) == (None, None)
    assert normalized.to_spec().params == {
        "dtype": "float32", "with_channels": False, "cls": "NormalizeSource"
    }
    data = volume()
    for index in [np.s_[...], np.s_[2:5, 3:9], np.s_[7, 1:3]]:
        block = data[index].astype(np.float32)
        block -= block.min()
        expected = block / (block.max() + np.float32(1e-6))
        got = normalized[index]
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)
    assert normalized[1, 2, 3] == 0  # a single value is its own minimum
    assert normalized[0:0].shape == (0, 16, 10)  # empty reads: nothing to normalize


def test_normalize_with_channels_hides_and_returns_the_channel_axis():
    data = np.random.default_rng(3).integers(0, 100, (3, 5, 6)).astype(np.uint8)
    normalized = NormalizeSource(data, with_channels=True)
    assert normalized.shape == (5, 6) and normalized.ndim == 2
    block = normalized[1:4, 2:5]
    assert block.shape == (3, 3, 3)  # all channels, in front
    region = data[:, 1:4, 2:5].astype(np.float32)
    np.testing.assert_array_equal(block, (region - region.min()) / (region.max() - region.min()
                                                                     + np.float32(1e-6)))
    assert normalized[2, 1:4].shape == (3, 3)  # an integer index squeezes a spatial axis
    assert normalized[2, 3].shape == (3,)


def test_normalize_global_bounds_scale_every_block_alike(zarr_source):
    normalized = NormalizeSource(zarr_source, global_bounds=True)
    data = volume()
    assert (normalized.lower, normalized.upper) == (data.min(), data.max())
    whole = normalized[...]
    np.testing.assert_array_equal(normalized[3:7, 2:], whole[3:7, 2:])
    fixed_lower = NormalizeSource(zarr_source, lower=0)  # the other bound is computed
    assert (fixed_lower.lower, fixed_lower.upper) == (0, data.max())
    params = normalized.to_spec().params
    assert params == {"dtype": "float32", "with_channels": False, "lower": float(data.min()),
                      "upper": float(data.max()), "clip": False, "cls": "NormalizeSource"}


def test_previous_release_normalize_spec_reopens_with_fixed_bounds(zarr_source):
    spec = SourceSpec(
        "wrapper",
        params={"class": "NormalizeSource", "lower": 0.0, "upper": 5000.0, "dtype": "float64",
                "clip": False},
        wrapped=zarr_source.to_spec(),
    )
    rebuilt = from_spec(spec)
    assert (rebuilt.lower, rebuilt.upper, rebuilt.dtype) == (0.0, 5000.0, np.float64)
    np.testing.assert_array_equal(rebuilt[...], volume() / 5000.0)


def test_normalize_computes_bounds_block_wise_on_the_chunk_grid(monkeypatch):
    monkeypatch.setattr(generic_module, "_SCAN_ELEMENTS", 64)
    data = np.random.default_rng(1).normal(size=(9, 10, 7))
    source = RecordingSource(data, chunks=(2, 4, 3))
    normalized = NormalizeSource(source, global_bounds=True)
    assert (normalized.lower, normalized.upper) == (data.min(), data.max())
    covered = np.zeros(data.shape, dtype=int)
    for roi in source.reads:
        assert all(start % c == 0 for (start, _), c in zip(roi, (2, 4, 3)))  # chunk-aligned
        assert np.prod([stop - start for start, stop in roi]) <= 64
        covered[tuple(slice(*r) for r in roi)] += 1
    assert (covered == 1).all()  # every element read exactly once
    source.reads.clear()
    normalized[2:4]
    assert source.reads == [((2, 4), (0, 10), (0, 7))]  # reads compute nothing more
    source.reads.clear()
    NormalizeSource(source)  # per-read normalization: no scan
    assert source.reads == []


def test_normalize_bounds_ignore_nan_and_reject_infinities():
    data = np.array([[np.nan, 2.0], [4.0, 6.0]])
    normalized = NormalizeSource(data, global_bounds=True)
    assert (normalized.lower, normalized.upper) == (2.0, 6.0)
    np.testing.assert_array_equal(normalized[...], [[np.nan, 0.0], [0.5, 1.0]])
    with pytest.raises(ValueError, match="every value is NaN"):
        NormalizeSource(np.full(3, np.nan), global_bounds=True)
    with pytest.raises(ValueError, match="infinite"):
        NormalizeSource(np.array([1.0, np.inf]), global_bounds=True)
    with pytest.raises(ValueError, match="empty source"):
        NormalizeSource(np.zeros((0, 4)), upper=1)
    assert NormalizeSource(np.zeros((0, 4)), lower=0, upper=1).shape == (0, 4)  # given: fine
    assert NormalizeSource(np.zeros((0, 4))).shape == (0, 4)  # per read: nothing to scan


def test_normalize_clip_constant_volumes_and_dtypes():
    data = np.array([0, 50, 100, 200], dtype=np.uint8)
    np.testing.assert_allclose(NormalizeSource(data, lower=50, upper=150)[...], [-0.5, 0, 0.5, 1.5])
    np.testing.assert_allclose(
        NormalizeSource(data, lower=50, upper=150, clip=True)[...], [0, 0, 0.5, 1]
    )
    assert NormalizeSource(data, dtype=np.float64)[...].dtype == np.float64
    constant = NormalizeSource(np.full((2, 2), 7, dtype=np.int16), global_bounds=True)
    assert (constant.lower, constant.upper) == (7.0, 7.0)
    np.testing.assert_array_equal(constant[...], np.zeros((2, 2), np.float32))
    np.testing.assert_array_equal(NormalizeSource(np.full((2, 2), 7))[...], 0)  # per read too
    assert NormalizeSource(np.array([True, False]), global_bounds=True)[...].tolist() == [1.0, 0.0]
    big = np.array([2**31 - 1, -(2**31)], dtype=np.int32)  # computed in float64: exact
    np.testing.assert_array_equal(
        NormalizeSource(big, dtype="float64", global_bounds=True)[...], [1.0, 0.0]
    )


def test_normalize_reopened_from_spec_does_not_scan(zarr_source, monkeypatch):
    normalized = NormalizeSource(zarr_source, global_bounds=True)
    assert normalized._params()["lower"] == volume().min()
    assert normalized._params()["upper"] == volume().max()

    def no_scan(source):
        raise AssertionError("scanned again")

    monkeypatch.setattr(generic_module, "_min_max", no_scan)
    rebuilt = from_spec(normalized.to_spec())
    np.testing.assert_array_equal(rebuilt[...], normalized[...])


# --- RoiSource ----------------------------------------------------------------------------------


def test_roi_reads_only_its_region():
    source = RecordingSource(np.arange(100).reshape(10, 10))
    roi = RoiSource(source, np.s_[2:8, -5:])
    assert roi.roi == (slice(2, 8), slice(5, 10)) and roi.shape == (6, 5)
    np.testing.assert_array_equal(roi[1:3, 4], source.data[3:5, 9])
    assert source.reads == [((3, 5), (9, 10))]
    assert RoiSource(source, np.s_[..., 3:4]).roi == (slice(0, 10), slice(3, 4))
    assert RoiSource(source, slice(20, 30)).shape == (0, 10)  # clamped as numpy does


def test_roi_ints_keep_or_squeeze_their_axis():
    data = np.arange(60).reshape(3, 4, 5)
    kept = RoiSource(data, (1, slice(1, 3), -1))
    assert kept.shape == (1, 2, 1) and kept.squeeze is False
    np.testing.assert_array_equal(kept[...], data[1:2, 1:3, 4:5])
    squeezed = RoiSource(data, [1, slice(1, 3)], squeeze=True)  # 0.2 takes lists too
    assert squeezed.shape == (2, 5)
    np.testing.assert_array_equal(squeezed[...], data[1, 1:3])
    np.testing.assert_array_equal(squeezed[1, 2:], data[1, 2, 2:])
    assert squeezed[1, 2] == data[1, 2, 2]
    assert RoiSource(data, 2, squeeze=True).shape == (4, 5)
    for wrapper in (kept, squeezed):
        params = json.loads(json.dumps(wrapper._params()))  # the spec's JSON form
        assert params["roi"][0] == 1
        rebuilt = RoiSource._from_wrapped([as_source(data)], params)
        assert rebuilt.shape == wrapper.shape
        np.testing.assert_array_equal(rebuilt[...], wrapper[...])


def test_roi_writes_through_to_a_writable_source(tmp_path):
    out = create_array(tmp_path / "out.zarr", shape=(6, 8), dtype="int32", chunks=(2, 4))
    view = RoiSource(out, np.s_[2:6, 4:])
    assert view.writable and view.chunks == (2, 4)
    view[...] = 7
    view[0, 1:3] = [1, 2]
    expected = np.zeros((6, 8), np.int32)
    expected[2:6, 4:] = 7
    expected[2, 5:7] = [1, 2]
    np.testing.assert_array_equal(out[...], expected)
    row = RoiSource(out, (5, slice(0, 4)), squeeze=True)
    row[1:3] = -1
    expected[5, 1:3] = -1
    np.testing.assert_array_equal(out[...], expected)
    nested = RoiSource(view, np.s_[1:2])
    nested[...] = 9
    expected[3, 4:] = 9
    np.testing.assert_array_equal(out[...], expected)
    # Reopened from its spec it still writes through.
    clone = from_spec(SourceSpec.from_json(nested.to_spec().to_json()))
    clone[0, 0] = 5
    assert out[3, 4] == 5
    with pytest.raises(ValueError, match=r"shape \(3,\).*\(1, 4\)"):
        view[1:2] = [1, 2, 3]


def test_roi_of_a_read_only_source_is_read_only(zarr_source):
    view = RoiSource(zarr_source, np.s_[:2])
    assert view.writable is False
    with pytest.raises(TypeError, match="read-only"):
        view[...] = 0
    with pytest.raises(TypeError, match="read-only"):
        RoiSource(ThresholdSource(zarr_source, 1), np.s_[:2])[...] = True


def test_previous_release_roi_spec_reopens(zarr_source):
    spec = SourceSpec("wrapper", params={"class": "RoiSource", "roi": [[2, 10], [3, 16], [0, 7]]},
                      wrapped=zarr_source.to_spec())
    np.testing.assert_array_equal(from_spec(spec)[...], volume()[2:10, 3:, :7])


# --- PadSource ----------------------------------------------------------------------------------


def test_pad_reads_only_what_it_needs():
    source = RecordingSource(np.arange(100).reshape(10, 10))
    padded = PadSource(source, 3, constant_values=-1)
    np.testing.assert_array_equal(padded[0:2, :], -1)
    assert source.reads == []  # all padding: nothing read
    full = np.pad(source.data, 3, constant_values=-1)
    np.testing.assert_array_equal(padded[2:5, 4:6], full[2:5, 4:6])
    assert source.reads == [((0, 2), (1, 3))]
    source.reads.clear()
    mirrored = PadSource(source, 3, mode="reflect")
    full = np.pad(source.data, 3, mode="reflect")
    np.testing.assert_array_equal(mirrored[0:3, 5:8], full[0:3, 5:8])
    assert source.reads == [((1, 4), (2, 5))]


def test_pad_one_int_per_axis_is_v02_right_padding_of_every_read():
    data = np.arange(20).reshape(4, 5)
    right = PadSource(data, (2, 3), mode="reflect")
    assert right.right_padding and right.pad_width == ((0, 2), (0, 3))
    assert right.shape == (6, 8)
    np.testing.assert_array_equal(right[...], np.pad(data, ((0, 2), (0, 3)), mode="reflect"))
    # A read past the end mirrors the block read, not the whole array.
    block = np.pad(data[2:, 3:], ((0, 2), (0, 3)), "reflect")
    np.testing.assert_array_equal(right[2:6, 3:8], block)
    with pytest.raises(ValueError, match="starting inside the padding.*pairs"):
        right[4:6]
    exact = PadSource(data, ((0, 2), (0, 3)), mode="reflect")  # pairs: numpy.pad of the whole
    assert not exact.right_padding and exact.shape == (6, 8)
    whole = np.pad(data, ((0, 2), (0, 3)), "reflect")
    np.testing.assert_array_equal(exact[2:6, 3:8], whole[2:, 3:])
    np.testing.assert_array_equal(exact[4:6], whole[4:])


@pytest.mark.parametrize("mode", ["constant", "edge"])
def test_pad_right_padding_constant_and_edge_equal_numpy_for_every_read(mode):
    data = np.arange(20, dtype=np.int16).reshape(4, 5)
    kwargs = {"constant_values": 7} if mode == "constant" else {}
    padded = PadSource(data, (3, 2), mode, **kwargs)
    reference = np.pad(data, ((0, 3), (0, 2)), mode, **kwargs)
    for index in [np.s_[...], np.s_[4:, :], np.s_[5:7, 6:], np.s_[2:6, 1:], np.s_[6, 6]]:
        np.testing.assert_array_equal(padded[index], reference[index])


def test_pad_right_padding_spec_and_other_numpy_modes():
    data = np.arange(12, dtype=np.float64).reshape(3, 4)
    padded = PadSource(data, [1, 2], "mean")
    np.testing.assert_array_equal(padded[...], np.pad(data, ((0, 1), (0, 2)), "mean"))
    assert padded._params() == {"pad_width": [1, 2], "mode": "mean",
                                "constant_values": [[0, 0], [0, 0]]}
    exact = PadSource(data, ((0, 1), (0, 2)))
    assert exact._params()["pad_width"] == [[0, 1], [0, 2]]


def test_previous_release_pad_spec_reopens_numpy_exact(zarr_source):
    spec = SourceSpec(
        "wrapper",
        params={"class": "PadSource", "pad_width": [[1, 2], [0, 3], [12, 2]], "mode": "reflect",
                "constant_values": [[0, 0], [0, 0], [0, 0]]},
        wrapped=zarr_source.to_spec(),
    )
    rebuilt = from_spec(spec)
    assert not rebuilt.right_padding
    np.testing.assert_array_equal(
        rebuilt[...], np.pad(volume(), ((1, 2), (0, 3), (12, 2)), mode="reflect")
    )


# --- ExpandDimsSource ---------------------------------------------------------------------------


def test_expand_dims_defaults_to_a_leading_axis(zarr_source):
    expanded = ExpandDimsSource(zarr_source)
    assert expanded.axis == 0 and expanded.shape == (1, *SHAPE)
    np.testing.assert_array_equal(expanded[0, 2], volume()[2])
    several = ExpandDimsSource(zarr_source, [0, 2])
    assert several.axis == (0, 2) and several._params() == {"axis": [0, 2]}
    rebuilt = from_spec(SourceSpec.from_json(several.to_spec().to_json()))
    assert rebuilt.axis == (0, 2) and rebuilt.shape == (1, 12, 1, 16, 10)


# --- what the resampling wrappers read ----------------------------------------------------------


def test_resized_reads_the_needed_region_plus_a_margin():
    data = np.arange(40 * 40, dtype=np.float32).reshape(40, 40)
    source = RecordingSource(data)
    upsampled = ResizedSource(source, (80, 80), order=0, grid_mode=True)
    upsampled[20:30, 0:4]
    assert source.reads == [((10, 15), (0, 2))]
    source.reads.clear()
    linear = ResizedSource(source, (80, 40), order=1, grid_mode=True)
    linear[20:30, 5:9]
    assert source.reads == [((9, 16), (5, 9))]  # one row of margin each side; axis 1 untouched


def test_resized_maps_low_resolution_masks_onto_the_grid():
    mask = np.array([[0, 1, 0], [1, 1, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(
        ResizedSource(mask, (6, 9), grid_mode=True)[...], np.kron(mask, np.ones((3, 3)))
    )
    labels = np.arange(24, dtype=np.uint64).reshape(4, 6)
    down = ResizedSource(labels, (2, 3), grid_mode=True)
    assert down.dtype == np.uint64
    np.testing.assert_array_equal(down[...], labels[1::2, 1::2])
    assert ResizedSource(np.array([True, False]), (4,), order=1, grid_mode=True)[...].tolist() == [
        True, True, False, False
    ]


def test_resized_linear_keeps_nan_local():
    data = np.array([0.0, np.nan, 2.0, 3.0])
    same = ResizedSource(data, (4,), order=1, grid_mode=True)
    np.testing.assert_array_equal(same[...], data)
    up = ResizedSource(data, (8,), order=1, grid_mode=True)[...]
    assert np.isnan(up[1:5]).all() and not np.isnan(up[[0, 5, 6, 7]]).any()


# --- the registry -------------------------------------------------------------------------------


@register_wrapper
class NegateSource(WrapperSource):
    """A user-defined wrapper: ``-source``."""

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        return -self._read(roi)


@register_wrapper
class ScaleSource(WrapperSource):
    """A user-defined wrapper with a parameter, written as 0.2 code writes one."""

    def __init__(self, source: Any, factor: float = 2.0) -> None:
        super().__init__(source)
        self.factor = factor

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        return self._source[roi] * self.factor

    def _params(self) -> dict[str, Any]:
        return {"factor": self.factor}


def test_registered_user_wrappers_round_trip(zarr_source):
    negated = NegateSource(RoiSource(zarr_source, np.s_[:2]))
    spec = negated.to_spec()
    assert spec.params == {"cls": "NegateSource"}
    rebuilt = from_spec(SourceSpec.from_json(spec.to_json()))
    assert type(rebuilt) is NegateSource
    np.testing.assert_array_equal(rebuilt[...], -volume()[:2])
    scaled = from_spec(pickle.loads(pickle.dumps(ScaleSource(zarr_source, 0.5).to_spec())))
    assert scaled.factor == 0.5 and scaled.shape == SHAPE
    np.testing.assert_array_equal(scaled[1:3], volume()[1:3] * 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert register_wrapper(NegateSource) is NegateSource  # registering again is harmless


def test_register_wrapper_replaces_warning_across_modules(monkeypatch, zarr_source):
    monkeypatch.setattr(base_module, "_WRAPPERS", dict(base_module._WRAPPERS))

    class NegateSource(WrapperSource):  # same name, same module: replaces silently (0.2)
        def _getitem(self, roi):
            return self._read(roi) + 1

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        register_wrapper(NegateSource)
    spec = SourceSpec("wrapper", params={"cls": "NegateSource"}, wrapped=zarr_source.to_spec())
    assert type(from_spec(spec)) is NegateSource
    other = type("NegateSource", (WrapperSource,), {"__module__": "somewhere.else",
                                                     "_getitem": lambda self, roi: None})
    with pytest.warns(UserWarning, match="somewhere.else.NegateSource replaces .*test_wrapper"):
        register_wrapper(other)
    assert type(from_spec(spec)) is other
    with pytest.raises(TypeError, match="WrapperSource subclass"):
        register_wrapper(dict)


def test_wrapper_from_spec_errors(zarr_source):
    inner = zarr_source.to_spec()
    with pytest.raises(ValueError, match="unknown wrapper class 'Blur'.*ThresholdSource"):
        wrapper_from_spec(SourceSpec("wrapper", params={"cls": "Blur"}, wrapped=inner))
    with pytest.raises(ValueError, match="kind 'wrapper', not 'file'"):
        wrapper_from_spec(inner)
    with pytest.raises(ValueError, match="class name"):
        wrapper_from_spec(SourceSpec("wrapper", params={"threshold": 1}, wrapped=inner))
    with pytest.raises(ValueError, match="'wrapped'"):
        wrapper_from_spec(SourceSpec("wrapper", params={"cls": "ThresholdSource", "threshold": 1}))
    with pytest.raises(TypeError, match="sigma"):
        from_spec(SourceSpec("wrapper", params={"cls": "ThresholdSource", "threshold": 1,
                                                "sigma": 2}, wrapped=inner))
    legacy = SourceSpec("wrapper", params={"class": "ThresholdSource", "threshold": 1},
                        wrapped=inner)  # our previous release's key
    assert type(wrapper_from_spec(legacy)) is ThresholdSource
