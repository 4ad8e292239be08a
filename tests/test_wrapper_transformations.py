"""The wrappers around user callables (0.2's API): ``SimpleTransformationSource``,
``SimpleTransformationWithHaloSource``, ``TransformationSource`` and ``MultiTransformationSource``.

Values against numpy; halo reads against the filter applied to the whole array (scipy.ndimage),
for whole tilings of reads; hidden channel axes; several sources; specs through pickle and
cloudpickle, the JSON ``TypeError`` naming the callable, and reopening in another process and in
the runner's worker processes.
"""
from __future__ import annotations

import functools
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
import scipy.ndimage as ndi
import zarr

from bioimage_py import create_array, open_source
from bioimage_py.blocking import Blocking
from bioimage_py.sources import Source, SourceSpec, from_spec
from bioimage_py.util import to_roi
from bioimage_py.wrapper import (
    MultiTransformationSource,
    SimpleTransformationSource,
    SimpleTransformationWithHaloSource,
    ThresholdSource,
    TransformationSource,
)

SHAPE = (12, 16, 10)
CHUNKS = (4, 8, 5)


def volume() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 1000, SHAPE).astype(np.float32)


def channels() -> np.ndarray:
    return np.random.default_rng(8).integers(0, 1000, (3, *SHAPE)).astype(np.uint16)


@pytest.fixture
def zarr_source(tmp_path: Path) -> Source:
    out = create_array(tmp_path / "v.zarr", "raw", shape=SHAPE, dtype="float32", chunks=CHUNKS)
    out[...] = volume()
    return open_source(tmp_path / "v.zarr", "raw")


@pytest.fixture
def channel_source(tmp_path: Path) -> Source:
    out = create_array(tmp_path / "c.zarr", "raw", shape=(3, *SHAPE), dtype="uint16",
                       chunks=(1, *CHUNKS))
    out[...] = channels()
    return open_source(tmp_path / "c.zarr", "raw")


def double(block: np.ndarray) -> np.ndarray:
    """A module-level transformation: pickles by reference."""
    return block * 2


def add_in_place(block: np.ndarray) -> np.ndarray:
    block += 1
    return block


INDICES = [np.s_[...], np.s_[2:7, 3:, :4], np.s_[-1], np.s_[5, 1:9, 3], np.s_[3, 4, 5],
           np.s_[..., 9], np.s_[4:4]]


def tiling(shape: tuple[int, ...], block_shape: tuple[int, ...]) -> list[tuple[slice, ...]]:
    blocking = Blocking(shape, block_shape)
    return [to_roi(blocking.get_block(i)) for i in range(blocking.number_of_blocks)]


def read_tiled(source: Source, block_shape: tuple[int, ...]) -> np.ndarray:
    """The whole source assembled from reads of a tiling."""
    out = np.empty(source.shape, source.dtype)
    for roi in tiling(source.shape, block_shape):
        out[roi] = source[roi]
    return out


# --- SimpleTransformationSource -----------------------------------------------------------------


def test_simple_transformation_reads_like_numpy(zarr_source):
    wrapper = SimpleTransformationSource(zarr_source, np.sqrt)
    assert (wrapper.shape, wrapper.dtype, wrapper.chunks) == (SHAPE, np.float32, CHUNKS)
    data = volume()
    for index in INDICES:
        got, want = wrapper[index], np.sqrt(data[index])
        assert type(got) is type(want)
        np.testing.assert_array_equal(got, want)
    assert wrapper.writable is False
    with pytest.raises(TypeError, match="read-only"):
        wrapper[0] = 1


def test_dtype_is_reported_and_results_are_not_cast(zarr_source):
    """As in 0.2: ``dtype`` declares the results' dtype; the transformation's values are kept."""
    wrapper = SimpleTransformationSource(zarr_source, lambda b: b.astype(np.int64), dtype="int64")
    assert wrapper.dtype == np.int64 and wrapper[0:2].dtype == np.int64
    undeclared = SimpleTransformationSource(zarr_source, lambda b: b.astype(np.int64))
    assert undeclared.dtype == np.float32 and undeclared[0:2].dtype == np.int64


def test_transformations_never_change_numpy_data():
    """numpy-backed sources read as views; in-place transformations get a copy."""
    data = np.arange(24, dtype=np.int64).reshape(4, 6)
    for wrapper in (
        SimpleTransformationSource(data, add_in_place),
        SimpleTransformationWithHaloSource(data, add_in_place, 1),
        TransformationSource(data, lambda b, roi: add_in_place(b)),
        MultiTransformationSource(add_in_place, data),
    ):
        np.testing.assert_array_equal(wrapper[1:3], data[1:3] + 1)
        np.testing.assert_array_equal(wrapper[1:3], data[1:3] + 1)
    np.testing.assert_array_equal(data, np.arange(24).reshape(4, 6))


def test_with_channels_hides_the_leading_axis(channel_source):
    data = channels()
    reduced = SimpleTransformationSource(channel_source, lambda b: b.max(axis=0),
                                         with_channels=True)
    assert (reduced.shape, reduced.ndim, reduced.chunks) == (SHAPE, 3, CHUNKS)
    for index in INDICES:
        np.testing.assert_array_equal(reduced[index], data.max(axis=0)[index])
    assert type(reduced[3, 4, 5]) is np.uint16
    kept = SimpleTransformationSource(channel_source, double, with_channels=True)
    assert kept[2:5, 1:3, :].shape == (3, 3, 2, 10)  # the channels, in front (as 0.2)
    np.testing.assert_array_equal(kept[2:5, 1:3], (data * 2)[:, 2:5, 1:3])
    np.testing.assert_array_equal(kept[2, 1:3, 4], (data * 2)[:, 2, 1:3, 4])  # spatial squeeze
    assert kept[2, 3, 4].shape == (3,)
    np.testing.assert_array_equal(np.asarray(kept), data * 2)
    with pytest.raises(ValueError, match="channel axis"):
        SimpleTransformationSource(np.float64(1.0), double, with_channels=True)


def test_with_channels_shards(tmp_path):
    array = zarr.create_array(tmp_path / "s.zarr", shape=(2, 8, 8), chunks=(1, 2, 2),
                              shards=(2, 4, 4), dtype="uint8")
    wrapper = SimpleTransformationSource(array, double, with_channels=True)
    assert (wrapper.shape, wrapper.chunks, wrapper.shards) == ((8, 8), (2, 2), (4, 4))
    assert SimpleTransformationSource(array, double).shards == (2, 4, 4)


# --- SimpleTransformationWithHaloSource ---------------------------------------------------------

FILTERS = {
    # name -> (transformation, the halo covering its reach)
    "gaussian": (functools.partial(ndi.gaussian_filter, sigma=1.5), (7, 7, 7)),
    "uniform": (functools.partial(ndi.uniform_filter, size=5), 2),
    "median": (functools.partial(ndi.median_filter, size=(3, 1, 5)), (1, 0, 2)),
    "sobel": (functools.partial(ndi.sobel, axis=1), (1, 1, 1)),
}


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("block_shape", [(5, 7, 4), (4, 8, 5), (12, 3, 10)])
def test_halo_reads_equal_the_filter_of_the_whole_array(zarr_source, name, block_shape):
    transformation, halo = FILTERS[name]
    wrapper = SimpleTransformationWithHaloSource(zarr_source, transformation, halo)
    whole = transformation(volume())
    np.testing.assert_array_equal(read_tiled(wrapper, block_shape), whole)
    np.testing.assert_array_equal(wrapper[3, 2:9, -1], whole[3, 2:9, -1])


def test_a_halo_short_of_the_reach_shows_seams(zarr_source):
    transformation, _ = FILTERS["uniform"]
    too_small = SimpleTransformationWithHaloSource(zarr_source, transformation, 1)
    assert not np.array_equal(read_tiled(too_small, (5, 7, 4)), transformation(volume()))


def test_halo_with_channels(channel_source):
    def smooth(block: np.ndarray) -> np.ndarray:
        return ndi.gaussian_filter(block.astype(np.float32), sigma=(0, 1, 1, 1))

    wrapper = SimpleTransformationWithHaloSource(channel_source, smooth, 5, with_channels=True,
                                                 dtype="float32")
    assert wrapper.shape == SHAPE and wrapper.halo == (5, 5, 5)
    whole = smooth(channels())
    for roi in tiling(SHAPE, (5, 6, 4)):
        np.testing.assert_array_equal(wrapper[roi], whole[(slice(None), *roi)])
    reduced = SimpleTransformationWithHaloSource(
        channel_source, lambda b: smooth(b).sum(axis=0), 5, with_channels=True
    )
    np.testing.assert_allclose(reduced[2:7, 3:9, 1:4], whole.sum(axis=0)[2:7, 3:9, 1:4],
                               rtol=1e-6)


def test_halo_reads_are_grown_and_clipped():
    reads: list[tuple[int, ...]] = []

    def record(block: np.ndarray) -> np.ndarray:
        reads.append(block.shape)
        return block

    wrapper = SimpleTransformationWithHaloSource(np.zeros((10, 10)), record, (2, 3))
    assert wrapper[4:6, 4:5].shape == (2, 1)
    assert wrapper[0:1, 8:10].shape == (1, 2)
    assert reads == [(6, 7), (3, 5)]


@pytest.mark.parametrize(
    ("halo", "match"),
    [((1, -1, 0), r"non-negative, got \[1, -1, 0\]"), ((1, 1), "does not match ndim 3"),
     (-2, "non-negative")],
)
def test_bad_halos(halo, match):
    with pytest.raises(ValueError, match=match):
        SimpleTransformationWithHaloSource(np.zeros(SHAPE), double, halo)


# --- TransformationSource -----------------------------------------------------------------------


def add_z(block: np.ndarray, roi: tuple[slice, ...]) -> np.ndarray:
    """A transformation depending on where the block lies: adds the z coordinate."""
    return block + np.arange(roi[0].start, roi[0].stop).reshape(-1, 1, 1)


def test_transformation_gets_the_normalized_region(zarr_source):
    rois: list[tuple[slice, ...]] = []
    wrapper = TransformationSource(zarr_source, lambda b, roi: rois.append(roi) or b)
    wrapper[2:5, -3:]
    wrapper[7, ..., 1]
    assert rois == [(slice(2, 5), slice(13, 16), slice(0, 10)),
                    (slice(7, 8), slice(0, 16), slice(1, 2))]


def test_transformation_values_and_tilings(zarr_source):
    wrapper = TransformationSource(zarr_source, add_z, dtype="float64")
    whole = volume() + np.arange(12).reshape(-1, 1, 1)
    assert wrapper.dtype == np.float64
    for index in INDICES:
        np.testing.assert_array_equal(wrapper[index], whole[index])
    np.testing.assert_array_equal(read_tiled(wrapper, (5, 7, 4)), whole)


# --- MultiTransformationSource ------------------------------------------------------------------


def test_multi_transformation_of_several_sources(zarr_source, channel_source):
    data, other = volume(), channels()[1]
    second = SimpleTransformationSource(channel_source, lambda b: b[1], with_channels=True)
    summed = MultiTransformationSource(np.add, zarr_source, second)
    assert (summed.shape, summed.dtype, summed.chunks) == (SHAPE, np.float32, CHUNKS)
    assert summed.source is zarr_source
    for index in INDICES:
        np.testing.assert_array_equal(summed[index], np.add(data[index], other[index]))
    stacked = MultiTransformationSource(
        lambda blocks: np.stack(blocks).max(axis=0), zarr_source, second, zarr_source,
        apply_to_list=True, dtype="float64",
    )
    assert stacked.dtype == np.float64
    np.testing.assert_array_equal(stacked[1:4, 5], np.maximum(data, other)[1:4, 5])
    spec = stacked.to_spec()
    assert spec.params["cls"] == "MultiTransformationSource"
    assert spec.params["apply_to_list"] is True and spec.params["dtype"] == "float64"
    assert isinstance(spec.wrapped, list) and len(spec.wrapped) == 3
    assert spec.wrapped[0] == spec.wrapped[2] == zarr_source.to_spec()
    rebuilt = from_spec(pickle.loads(cloudpickle.dumps(spec)))
    assert type(rebuilt) is MultiTransformationSource
    np.testing.assert_array_equal(rebuilt[...], stacked[...])


def test_multi_transformation_errors(zarr_source):
    with pytest.raises(ValueError, match=r"one shape, got \[\(12, 16, 10\), \(3, 4\)\]"):
        MultiTransformationSource(np.add, zarr_source, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="at least one source"):
        MultiTransformationSource(np.add)
    with pytest.raises(TypeError, match="callable, got 'add'"):
        MultiTransformationSource("add", zarr_source)
    with pytest.raises(TypeError, match="callable, got 3"):
        SimpleTransformationSource(zarr_source, 3)
    with pytest.raises(TypeError, match="callable"):
        TransformationSource(zarr_source, None)


# --- specs --------------------------------------------------------------------------------------


def test_spec_records_the_callable_and_pickles(zarr_source):
    wrapper = SimpleTransformationWithHaloSource(zarr_source, double, (1, 2, 3), dtype="float32")
    spec = wrapper.to_spec()
    assert spec.params == {"transformation": double, "with_channels": False, "dtype": "float32",
                           "halo": [1, 2, 3], "cls": "SimpleTransformationWithHaloSource"}
    assert spec.wrapped == zarr_source.to_spec()
    for dumps in (pickle.dumps, cloudpickle.dumps):  # a module-level function: plain pickle too
        clone = pickle.loads(dumps(wrapper))
        assert type(clone) is SimpleTransformationWithHaloSource and clone.halo == (1, 2, 3)
        np.testing.assert_array_equal(clone[2:6], wrapper[2:6])
    assert "transformation=<function double" in repr(wrapper)


@pytest.mark.parametrize(
    "make",
    [
        lambda s: SimpleTransformationSource(s, double),
        lambda s: SimpleTransformationWithHaloSource(s, double, 1, with_channels=False),
        lambda s: TransformationSource(s, add_z),
        lambda s: MultiTransformationSource(np.add, s, s),
        lambda s: ThresholdSource(s, 3, lambda a, t: a % 7 == t),
    ],
    ids=["simple", "halo", "transformation", "multi", "threshold"],
)
def test_json_raises_naming_the_callable(zarr_source, make):
    spec = make(zarr_source).to_spec()
    callable_ = next(v for v in spec.params.values() if callable(v))
    with pytest.raises(TypeError, match=f"{callable_.__name__}.*pickling"):
        spec.to_json()


def test_a_ufunc_transformation_travels_by_pickling(zarr_source):
    """numpy ufuncs are callables too: JSON names them, pickle carries them by reference."""
    spec = MultiTransformationSource(np.negative, zarr_source).to_spec()
    with pytest.raises(TypeError, match="negative"):
        spec.to_json()
    assert from_spec(pickle.loads(pickle.dumps(spec)))[1, 1, 1] == -volume()[1, 1, 1]


def test_chain_of_lambdas_reopens_in_another_process(zarr_source, tmp_path):
    """cloudpickle carries lambdas (and this module's functions, registered by value)."""
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    try:
        smoothed = SimpleTransformationWithHaloSource(
            zarr_source, lambda b: ndi.uniform_filter(b, size=3), 1
        )
        chain = MultiTransformationSource(
            lambda a, b: a - b, TransformationSource(smoothed, add_z), zarr_source
        )
        (tmp_path / "chain.pkl").write_bytes(cloudpickle.dumps(chain))
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    script = (
        "import pickle, sys, numpy as np\n"
        "chain = pickle.load(open(sys.argv[1], 'rb'))\n"
        "np.save(sys.argv[2], chain[2:9, 3:, 1:8])\n"
        "print(type(chain).__name__, type(chain.source.source).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "chain.pkl"), str(tmp_path / "out.npy")],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "MultiTransformationSource", "SimpleTransformationWithHaloSource"
    ]
    whole = ndi.uniform_filter(volume(), size=3) + np.arange(12).reshape(-1, 1, 1) - volume()
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), whole[2:9, 3:, 1:8])


def test_halo_source_as_input_of_a_copy_in_worker_processes(zarr_source, tmp_path):
    from bioimage_py.copy import copy

    transformation, halo = FILTERS["uniform"]
    wrapper = SimpleTransformationWithHaloSource(zarr_source, transformation, halo)
    out = create_array(tmp_path / "out.zarr", shape=SHAPE, dtype="float32", chunks=(4, 8, 5))
    copy(wrapper, out, job_type="subprocess", num_workers=2)  # workers rebuild it from the spec
    np.testing.assert_array_equal(out[...], transformation(volume()))


def test_specs_of_wrappers_over_numpy_are_local_only():
    wrapper = SimpleTransformationSource(np.ones(3), lambda b: b + 1)
    with pytest.raises(ValueError, match="numpy arrays"):
        wrapper.to_spec()
    clone = pickle.loads(cloudpickle.dumps(wrapper))  # carries its data and the lambda
    np.testing.assert_array_equal(clone[...], [2, 2, 2])


def test_spec_dict_form_reopens(zarr_source):
    spec = TransformationSource(zarr_source, add_z).to_spec()
    rebuilt: Any = from_spec(SourceSpec.from_dict(spec.to_dict()))
    np.testing.assert_array_equal(rebuilt[4:6], volume()[4:6] + np.array([4, 5]).reshape(-1, 1, 1))
