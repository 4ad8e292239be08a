"""Dask: ``copy(job_type="dask")`` on a distributed cluster of worker processes, and ``to_dask``.

One LocalCluster (two single-threaded worker processes) serves the module; one test lets copy
start and close its own cluster.
"""
from __future__ import annotations

import pickle

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster

import copy_fault_format  # noqa: F401  (registers the test-only "faulty" format)
from bioimage_py import copy, create_array, open_source, to_dask
from bioimage_py.blocking import Blocking
from bioimage_py.errors import RunnerError
from bioimage_py.util import to_roi

SHAPE = (40, 50, 36)
CHUNKS = (16, 16, 16)


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(2).integers(0, 2**31, SHAPE, dtype=np.int32)


@pytest.fixture(scope="module")
def source(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("dask") / "input.n5"
    array = create_array(path, "raw", shape=SHAPE, dtype=data.dtype, chunks=CHUNKS)
    array[...] = data
    return open_source(path, "raw")


def make_output(tmp_path, kind):
    options = {
        "zarr3": ("out.zarr", "", {}),
        "zarr2": ("out.zarr", "", {"zarr_format": 2}),
        "sharded": ("out.zarr", "", {"shards": (32, 32, 32)}),
        "n5": ("out.n5", "", {}),
        "hdf5": ("out.h5", "data", {}),
    }[kind]
    return create_array(tmp_path / options[0], options[1], shape=SHAPE, dtype=np.int32,
                        chunks=CHUNKS, **options[2])


@pytest.mark.parametrize("kind", ["zarr3", "zarr2", "sharded", "n5", "hdf5"])
@pytest.mark.parametrize("with_mask", [False, True])
def test_dask_copy_equals_local_and_numpy(tmp_path, client, source, data, kind, with_mask):
    mask = None
    inside = np.ones(SHAPE, bool)
    if with_mask:
        inside = np.zeros(SHAPE, bool)
        inside[5:30, 10:45, :20] = True
        mask = create_array(tmp_path / "mask.zarr", shape=SHAPE, dtype=bool, chunks=CHUNKS)
        mask[...] = inside
    block_shape = (32, 32, 32) if kind == "sharded" else (16, 32, 16)
    ids = [0, 1, 4, 6, 7] if kind != "sharded" else None
    output = make_output(tmp_path, kind)
    copy(source, output, block_shape=block_shape, job_type="dask",
         job_config={"client": client}, mask=mask, block_ids=ids)
    local = copy(source, None, block_shape=block_shape, mask=inside, block_ids=ids)
    want = np.zeros(SHAPE, np.int32)
    blocking = Blocking(SHAPE, block_shape)
    for block_id in ids if ids is not None else range(blocking.number_of_blocks):
        roi = to_roi(blocking.get_block(block_id))
        np.copyto(want[roi], data[roi], where=inside[roi])
    np.testing.assert_array_equal(local, want)
    np.testing.assert_array_equal(output[...], want)


def test_dask_copy_by_scheduler_address(tmp_path, client, source, data):
    output = make_output(tmp_path, "zarr3")
    copy(source, output, job_type="dask", job_config={"address": client.scheduler.address})
    np.testing.assert_array_equal(output[...], data)


def test_dask_copy_starts_its_own_cluster(tmp_path, source, data):
    output = make_output(tmp_path, "n5")
    copy(source, output, job_type="dask", num_workers=2)
    np.testing.assert_array_equal(output[...], data)


def test_dask_copy_failure_then_rerun(tmp_path, client, source, data):
    block_shape = (16, 16, 16)
    fail_at = list(Blocking(SHAPE, block_shape).get_block(5).begin)
    marker = tmp_path / "marker"
    marker.write_text("once")
    # The faulty format reads zarr; give it a zarr copy of the input.
    zarr_in = create_array(tmp_path / "in.zarr", shape=SHAPE, dtype=data.dtype, chunks=CHUNKS)
    zarr_in[...] = data
    faulty = open_source(zarr_in.path, format="faulty", fail_at=fail_at, marker=str(marker),
                         fault="raise")
    output = make_output(tmp_path, "zarr3")
    with pytest.raises(RunnerError, match="in block 5: OSError: injected") as info:
        copy(faulty, output, block_shape=block_shape, job_type="dask",
             job_config={"client": client})
    assert 5 in info.value.block_ids and info.value.failed_block == 5
    copy(faulty, output, block_shape=block_shape, job_type="dask",
         job_config={"client": client}, block_ids=info.value.block_ids)
    np.testing.assert_array_equal(output[...], data)


def test_dask_rejects_numpy_and_unknown_config(source, data, tmp_path):
    with pytest.raises(ValueError, match="numpy arrays can only be used for local execution"):
        copy(data, make_output(tmp_path, "zarr3"), job_type="dask")
    with pytest.raises(ValueError, match=r"unknown job_config keys \['cluster'\]"):
        copy(source, make_output(tmp_path, "n5"), job_type="dask", job_config={"cluster": 1})


# --- to_dask -----------------------------------------------------------------------------------


def test_to_dask_chunks_and_values(client, source, data):
    array = to_dask(source)
    assert isinstance(array, da.Array)
    assert array.chunksize == CHUNKS and array.dtype == data.dtype and array.shape == SHAPE
    np.testing.assert_array_equal(array.compute(), data)  # on the cluster's worker processes
    np.testing.assert_array_equal(array[3:30, 7, ::2].compute(), data[3:30, 7, ::2])
    assert float((array.astype(np.float64) / 3).sum().compute()) == pytest.approx(
        float(data.astype(np.float64).sum() / 3)
    )


def test_to_dask_chunks_argument(source, data):
    array = to_dask(source, chunks=(40, 25, 36))
    assert array.chunks == ((40,), (25, 25), (36,))
    with dask.config.set(scheduler="threads"):
        np.testing.assert_array_equal(array.compute(), data)


def test_to_dask_sharded_uses_inner_chunks(tmp_path, data):
    sharded = create_array(tmp_path / "s.zarr", shape=SHAPE, dtype=data.dtype, chunks=(8, 8, 8),
                           shards=(16, 16, 16))
    sharded[...] = data
    array = to_dask(open_source(tmp_path / "s.zarr"))
    assert array.chunksize == (8, 8, 8)
    np.testing.assert_array_equal(array.compute(scheduler="sync"), data)


def test_to_dask_graph_holds_the_spec_not_data(source):
    graph = dict(to_dask(source).__dask_graph__())
    assert len(pickle.dumps(graph)) < 64 * 1024  # 36 tasks; the data is 288 KB


def test_to_dask_errors(source, data):
    with pytest.raises(ValueError, match="numpy arrays can only be used for local execution"):
        to_dask(data)
    with pytest.raises(ValueError, match="chunks must be 3 positive integers"):
        to_dask(source, chunks=(16, 16))
    with pytest.raises(ValueError, match="chunks must be 3 positive integers"):
        to_dask(source, chunks=(16, 0, 16))
