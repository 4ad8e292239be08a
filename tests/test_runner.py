"""bioimage_py.runner: one per-block function, identical results on every backend.

The same parity tests run on threads (``local``), worker processes (``subprocess``), a dask
``LocalCluster`` (``dask``) and a real single-node SLURM cluster (``slurm``, started by
``scripts/slurm_cluster.py`` through the ``slurm_cluster`` fixture): a gaussian filter with a halo
equals the whole-array filter, a max with ``has_return_val``, a mask, a ``roi``, a failing block
then ``resume_from``, a worker killed mid-run then resume, and on SLURM a ``scancel`` then resume.
"""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
from scipy import ndimage

import bioimage_py
from bioimage_py import create_array, to_roi
from bioimage_py.runner import (
    DaskConfig,
    LocalRunner,
    RunnerConfig,
    RunnerError,
    SlurmConfig,
    config_file_path,
    get_runner,
    run_block,
    write_slurm_config,
)
from bioimage_py.runner.job import Stamp

pytest_plugins = ["slurm_fixture"]

# Workers of other processes (SLURM jobs above all) cannot import this test module: ship its
# functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SHAPE = (40, 56, 48)
BLOCKS = (16, 16, 16)
SIGMA = 1.5
HALO = 6  # scipy's gaussian_filter reaches int(4 * sigma + 0.5) = 6 voxels


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(3).random(SHAPE, dtype=np.float32)


@pytest.fixture(scope="module")
def zarr_input(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("runner") / "input.zarr"
    source = create_array(path, shape=SHAPE, dtype=data.dtype, chunks=BLOCKS)
    source[...] = data
    return bioimage_py.open_source(path)


def new_output(tmp_path: Path, name: str = "out.zarr", dtype="float32", shape=SHAPE, **kwargs):
    return create_array(tmp_path / name, shape=shape, dtype=dtype, chunks=BLOCKS, **kwargs)


# --- the backends -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        yield client


@pytest.fixture(params=["local", "subprocess", "dask",
                        pytest.param("slurm", marks=pytest.mark.slurm)])
def backend(request, tmp_path):
    """``(job_type, config)`` of every backend; job folders in the test's tmp_path."""
    job_type = request.param
    tmp_root = str(tmp_path / "jobs")
    if job_type == "local":
        return job_type, RunnerConfig(tmp_root=tmp_root)
    if job_type == "subprocess":
        return job_type, RunnerConfig(tmp_root=tmp_root)
    if job_type == "dask":
        return job_type, DaskConfig(tmp_root=tmp_root,
                                    client=request.getfixturevalue("dask_client"))
    state = request.getfixturevalue("slurm_cluster")
    return job_type, SlurmConfig(partition=state.partition, time="00:10:00", tmp_root=tmp_root,
                                 worker_timeout=15.0, poll_interval=0.5)


# --- per-block functions ------------------------------------------------------------------------


def smooth_block(block, inputs, outputs, mask):
    """A gaussian filter with a halo: read the outer block, write the inner one."""
    data = inputs[0][to_roi(block.outer_block)]
    smoothed = ndimage.gaussian_filter(data, SIGMA)
    outputs[0][to_roi(block.inner_block)] = smoothed[to_roi(block.inner_block_local)]


def max_block(block, inputs, outputs, mask):
    return float(inputs[0][to_roi(block)].max())


def masked_double(block, inputs, outputs, mask):
    roi = to_roi(block)
    inside = mask[roi]
    if not inside.any():
        return 0
    values = np.where(inside, inputs[0][roi] * 2, 0).astype(np.float32)
    outputs[0][roi] = values
    return int(inside.sum())


def failing_once(marker: str, block_id_to_fail: int, kill: bool = False, cancel: bool = False):
    """A copy function that fails (raises, kills its process, or cancels its SLURM job) at one
    block the first time only, marked by the file ``marker``."""

    def function(block, inputs, outputs, mask):
        roi = to_roi(block)
        begin = tuple(block.begin)
        if begin == FAIL_AT.get(block_id_to_fail) and os.path.exists(marker):
            os.remove(marker)
            if cancel:
                subprocess.run(["scancel", os.environ["SLURM_JOB_ID"]], check=True)
                time.sleep(60)
            if kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise OSError(f"injected failure at {begin}")
        outputs[0][roi] = inputs[0][roi] + 1
        return int(np.prod(block.shape))

    return function


FAIL_AT = {
    i: tuple(int(b) for b in bioimage_py.blocking.Blocking(SHAPE, BLOCKS).get_block(i).begin)
    for i in range(bioimage_py.blocking.Blocking(SHAPE, BLOCKS).number_of_blocks)
}


# --- parity on every backend --------------------------------------------------------------------


def test_gaussian_with_halo_equals_the_whole_array_filter(backend, tmp_path, zarr_input, data):
    job_type, config = backend
    output = new_output(tmp_path)
    result = get_runner(job_type, config).run(
        smooth_block, [zarr_input], [output], halo=HALO, num_workers=2, block_shape=BLOCKS
    )
    assert result is None
    np.testing.assert_array_equal(output[...], ndimage.gaussian_filter(data, SIGMA))
    assert not os.listdir(config.tmp_root)  # the job folder is gone after a complete run


def test_max_with_return_values_in_block_id_order(backend, zarr_input, data):
    job_type, config = backend
    runner = get_runner(job_type, config)
    values = runner.run(max_block, [zarr_input], has_return_val=True, num_workers=2)
    blocking = bioimage_py.blocking.Blocking(SHAPE, BLOCKS)
    expected = [float(data[to_roi(blocking.get_block(i))].max())
                for i in range(blocking.number_of_blocks)]
    assert values == expected
    assert max(values) == float(data.max())
    picked = runner.run(max_block, zarr_input, has_return_val=True, block_ids=[7, 2, 5])
    assert picked == [expected[7], expected[2], expected[5]]


def test_mask_is_handed_to_the_function(backend, tmp_path, zarr_input, data):
    job_type, config = backend
    inside = np.zeros(SHAPE, dtype=bool)
    inside[5:30, 10:40, 20:] = True
    mask = new_output(tmp_path, "mask.zarr", dtype="bool")
    mask[...] = inside
    output = new_output(tmp_path)
    counts = get_runner(job_type, config).run(
        masked_double, [zarr_input], [output], mask=mask, has_return_val=True, num_workers=2
    )
    assert sum(counts) == int(inside.sum())
    np.testing.assert_array_equal(output[...], np.where(inside, data * 2, 0))


def test_roi_runs_only_the_blocks_of_the_region(backend, tmp_path, zarr_input, data):
    job_type, config = backend
    output = new_output(tmp_path)
    roi = np.s_[16:40, 0:32, 16:48]
    get_runner(job_type, config).run(failing_once("", -1), [zarr_input], [output], roi=roi,
                                     num_workers=2)
    expected = np.zeros(SHAPE, np.float32)
    expected[roi] = data[roi] + 1
    np.testing.assert_array_equal(output[...], expected)


def test_failing_block_then_resume_from(backend, tmp_path, zarr_input, data):
    job_type, config = backend
    marker = tmp_path / "fail.marker"
    marker.write_text("once")
    output = new_output(tmp_path)
    function = failing_once(str(marker), 5)
    runner = get_runner(job_type, config)
    with pytest.raises(RunnerError, match=r"in block 5: OSError: injected failure") as info:
        runner.run(function, [zarr_input], [output], has_return_val=True, num_workers=2)
    err = info.value
    assert 5 in err.failed_block_ids and err.tmp_folder and os.path.isdir(err.tmp_folder)
    assert isinstance(err, RuntimeError) and isinstance(err.error, OSError)
    done_before = bioimage_py.runner.job_folder.JobFolder(err.tmp_folder).done_ids()
    assert done_before and 5 not in done_before
    values = runner.run(function, [zarr_input], [output], has_return_val=True, num_workers=2,
                        resume_from=err.tmp_folder)
    np.testing.assert_array_equal(output[...], data + 1)
    assert sum(values) == data.size  # the merged per-block values of both attempts
    assert not os.path.exists(err.tmp_folder)


def test_worker_killed_mid_run_then_resume(backend, tmp_path, zarr_input, data):
    job_type, config = backend
    if job_type == "local":
        pytest.skip("threads of this process: killing the worker kills the test")
    marker = tmp_path / "kill.marker"
    marker.write_text("once")
    output = new_output(tmp_path)
    function = failing_once(str(marker), 9, kill=True)
    runner = get_runner(job_type, config)
    try:
        # dask's nanny restarts a killed worker and reruns its task: the run may just complete.
        runner.run(function, [zarr_input], [output], num_workers=2)
    except RunnerError as err:
        assert 9 in err.failed_block_ids
        runner.run(function, [zarr_input], [output], num_workers=2, resume_from=err.tmp_folder)
    assert not marker.exists()
    np.testing.assert_array_equal(output[...], data + 1)


def test_scancel_then_resume(slurm_cluster, tmp_path, zarr_input, data):
    config = SlurmConfig(partition=slurm_cluster.partition, time="00:10:00",
                         tmp_root=str(tmp_path / "jobs"), worker_timeout=5.0, poll_interval=0.5)
    marker = tmp_path / "cancel.marker"
    marker.write_text("once")
    output = new_output(tmp_path)
    function = failing_once(str(marker), 6, cancel=True)
    runner = get_runner("slurm", config)
    with pytest.raises(RunnerError, match="no dask worker was left") as info:
        runner.run(function, [zarr_input], [output], num_workers=1, block_shape=BLOCKS)
    assert 6 in info.value.failed_block_ids
    runner.run(function, [zarr_input], [output], num_workers=1,
               resume_from=info.value.tmp_folder)
    np.testing.assert_array_equal(output[...], data + 1)


@pytest.mark.parametrize("job_type", ["local", "subprocess"])
def test_block_ids_rerun_and_retries(job_type, tmp_path, zarr_input, data):
    marker = tmp_path / "retry.marker"
    marker.write_text("once")
    output = new_output(tmp_path)
    config = RunnerConfig(tmp_root=str(tmp_path / "jobs"), retries=1)
    # One retry absorbs the failure: the run completes.
    get_runner(job_type, config).run(failing_once(str(marker), 3), [zarr_input], [output])
    np.testing.assert_array_equal(output[...], data + 1)
    output[...] = 0
    get_runner(job_type).run(failing_once("", -1), [zarr_input], [output], block_ids=[0, 4])
    blocking = bioimage_py.blocking.Blocking(SHAPE, BLOCKS)
    written = np.zeros(SHAPE, bool)
    for i in (0, 4):
        written[to_roi(blocking.get_block(i))] = True
    np.testing.assert_array_equal(output[...], np.where(written, data + 1, 0))


# --- map ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("job_type", ["local", "subprocess", "dask"])
def test_map(job_type, tmp_path, dask_client):
    config = DaskConfig(client=dask_client) if job_type == "dask" else None
    runner = get_runner(job_type, config)
    assert runner.map(lambda i: i * i, 10, num_workers=2) == [i * i for i in range(10)]
    assert runner.map(lambda i: -i, item_ids=[4, 1]) == [-4, -1]
    assert runner.map(lambda i: i, 3, has_return_val=False) is None


def test_map_failure_then_resume(tmp_path):
    marker = tmp_path / "map.marker"
    marker.write_text("once")

    def item(i):
        if i == 3 and marker.exists():
            marker.unlink()
            raise ValueError("injected")
        return i + 100

    runner = get_runner("subprocess", RunnerConfig(tmp_root=str(tmp_path)))
    with pytest.raises(RunnerError, match="item 3: ValueError: injected") as info:
        runner.map(item, 8, num_workers=2)
    assert runner.map(item, resume_from=info.value.tmp_folder) == [i + 100 for i in range(8)]


# --- checks before anything runs ----------------------------------------------------------------


def test_outputs_with_a_leading_channel_axis(tmp_path, zarr_input, data):
    output = create_array(tmp_path / "channels.zarr", shape=(2, *SHAPE), dtype="float32",
                          chunks=(2, *BLOCKS))

    def two_channels(block, inputs, outputs, mask):
        roi = to_roi(block)
        values = inputs[0][roi]
        outputs[0][(slice(None), *roi)] = np.stack([values, -values])

    get_runner("subprocess").run(two_channels, [zarr_input], [output], num_workers=2)
    np.testing.assert_array_equal(output[...], np.stack([data, -data]))


def test_checks_before_any_block_runs(tmp_path, zarr_input):
    runner = get_runner("local")
    calls = []

    def record(block, inputs, outputs, mask):
        calls.append(block)

    with pytest.raises(ValueError, match=r"output 0 has shape \(3, 4\).*does not end in"):
        runner.run(record, [zarr_input], [np.zeros((3, 4))])
    with pytest.raises(ValueError, match=r"input 1 has shape"):
        runner.run(record, [zarr_input, np.zeros((2, 2, 2))])
    with pytest.raises(ValueError, match=r"does not align with the chunks \(16, 16, 16\)"):
        runner.run(record, [zarr_input], [new_output(tmp_path)], block_shape=(16, 24, 16))
    with pytest.raises(ValueError, match=r"does not align"):
        runner.run(record, [zarr_input], [new_output(tmp_path, "o2.zarr")],
                   roi=np.s_[8:, :, :])
    with pytest.raises(ValueError, match="mutually exclusive"):
        runner.run(record, [zarr_input], block_ids=[1], resume_from=str(tmp_path))
    with pytest.raises(ValueError, match="not a job folder"):
        runner.run(record, [zarr_input], resume_from=str(tmp_path))
    with pytest.raises(ValueError, match=r"block id 99 is out of range: the run has 36 blocks"):
        runner.run(record, [zarr_input], block_ids=[99])
    with pytest.raises(ValueError, match="halo must be 3"):
        runner.run(record, [zarr_input], halo=(1, 2))
    with pytest.raises(TypeError, match="read-only"):
        runner.run(record, [zarr_input], [zarr_input])
    with pytest.raises(ValueError, match="numpy arrays"):
        get_runner("subprocess").run(record, [np.zeros(SHAPE)])
    with pytest.raises(ValueError, match="unknown job_type 'threads'"):
        get_runner("threads")
    with pytest.raises(ValueError, match=r"unknown job_config keys \['workers'\]"):
        get_runner("local", {"workers": 2})
    assert calls == []


def test_function_pickled_by_another_python_fails_before_any_block(tmp_path, zarr_input):
    output = new_output(tmp_path)
    job_stamp = Stamp(python="2.7.18")
    with pytest.raises(RuntimeError, match=r"pickled by Python 2\.7\.18"):
        job_stamp.check()
    runner = get_runner("subprocess", RunnerConfig(tmp_root=str(tmp_path / "jobs")))
    original = Stamp.__init__

    def old_python(self, python="2.7.18"):
        original(self, python)

    Stamp.__init__ = old_python  # the job made here is stamped as if by Python 2.7
    try:
        with pytest.raises(RunnerError, match="pickled by Python 2.7.18") as info:
            runner.run(failing_once("", -1), [zarr_input], [output], num_workers=2)
    finally:
        Stamp.__init__ = original
    assert len(info.value.failed_block_ids) == 36
    assert not output[...].any()


def test_run_block_and_local_runner_directly(zarr_input, data):
    blocking = bioimage_py.blocking.Blocking(SHAPE, BLOCKS)
    value = run_block(max_block, blocking, 4, [zarr_input], [], None, None)
    assert value == float(data[to_roi(blocking.get_block(4))].max())
    assert isinstance(get_runner(), LocalRunner)


def test_runner_error_pickles_with_its_attributes():
    err = RunnerError("boom", [3, 1], "/tmp/x", error=ValueError("v"), failed_block=3)
    again = pickle.loads(pickle.dumps(err))
    assert (again.failed_block_ids, again.tmp_folder, again.failed_block) == ([1, 3], "/tmp/x", 3)
    assert str(again) == "boom" and isinstance(again.error, ValueError)


# --- configuration ------------------------------------------------------------------------------


def test_slurm_config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("BIOIMAGE_PY_CONFIG", raising=False)
    monkeypatch.delenv("BIOIMAGE_PY_NO_CONFIG", raising=False)
    path = config_file_path()
    assert path == tmp_path / "xdg" / "bioimage-py" / "config.toml"
    assert write_slurm_config(partition="gpu", account="lab") == str(path)
    write_slurm_config(mem="8G", account=None)  # merged; None skipped
    config = SlurmConfig.load(time="02:00:00")
    assert (config.partition, config.account, config.mem, config.time) == (
        "gpu", "lab", "8G", "02:00:00")
    assert SlurmConfig().partition is None  # a config built directly ignores the file
    write_slurm_config(replace=True, partition="cpu")
    assert SlurmConfig.load().account is None
    with pytest.raises(ValueError, match=r"Unknown SlurmConfig option\(s\) \['partitoin'\]"):
        write_slurm_config(partitoin="x")
    monkeypatch.setenv("BIOIMAGE_PY_NO_CONFIG", "1")
    assert SlurmConfig.load().partition is None
    assert get_runner("slurm").config.partition is None


def test_slurm_config_keeps_the_field_order_of_0_2():
    # 0.2 code may build configs positionally: the inherited RunnerConfig fields come first.
    config = SlurmConfig(5.0, "/shared/tmp", None, 2)
    assert (config.poll_interval, config.tmp_root, config.tasks_per_worker) == (
        5.0, "/shared/tmp", 2)


# --- the job folder -----------------------------------------------------------------------------


def test_job_folder_ignores_torn_records_and_progress_without_results(tmp_path):
    from bioimage_py.runner.job_folder import JobFolder

    folder = JobFolder.create(str(tmp_path), "torn")
    with folder.recorder("b0", with_results=True) as recorder:
        recorder.record(1, {"max": 1.0})
        recorder.record(2, [2])
    with open(os.path.join(folder.path, "progress", "b1.log"), "w") as log:
        log.write("3\n4")  # 4: a line torn by a crash
    with open(os.path.join(folder.path, "results", "b0.bin"), "ab") as results:
        results.write(b"\x05\x00\x00")  # a torn header
    assert folder.done_ids() == {1, 2, 3}
    assert folder.done_ids(with_results=True) == {1, 2}  # 3 has no recorded value: rerun it
    assert folder.results([1, 2, 3]) == {1: {"max": 1.0}, 2: [2]}
    folder.remove()
    assert not os.path.exists(folder.path)
