"""bioimage_py.copy: local threads and worker processes against numpy, write safety, failures.

Outputs are real zarr (v2, v3, sharded v3), N5 and HDF5 arrays; inputs also come from
zarr-python, z5py and h5py. The oracle is numpy: the input copied, where the mask allows, into
the blocks asked for. Dask runs are in ``test_dask.py``.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import z5py
import zarr

import copy_fault_format  # noqa: F401  (registers the test-only "faulty" format)
from bioimage_py import copy, create_array, open_source
from bioimage_py.blocking import Blocking
from bioimage_py.runner.job import make_batches
from bioimage_py.errors import RunnerError
from bioimage_py.util import to_roi

SHAPE = (45, 70, 52)  # no axis a multiple of the chunks: edge blocks are clipped
CHUNKS = (16, 16, 16)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 60000, SHAPE, dtype=np.uint16)


@pytest.fixture(scope="module")
def mask() -> np.ndarray:
    grid = np.indices(SHAPE)
    inside = ((grid - np.array(SHAPE)[:, None, None, None] / 2) ** 2).sum(axis=0) < 22**2
    inside[:16, :16, :] = False  # some blocks entirely outside
    return inside


@pytest.fixture(scope="module")
def zarr_input(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("input") / "input.zarr"
    array = create_array(path, shape=SHAPE, dtype=data.dtype, chunks=CHUNKS)
    array[...] = data
    return open_source(path)


OUTPUTS = {
    "zarr3": dict(path="out.zarr", chunks=CHUNKS),
    "zarr2": dict(path="out.zarr", chunks=CHUNKS, zarr_format=2),
    "sharded": dict(path="out.zarr", chunks=CHUNKS, shards=(32, 32, 32)),
    "n5": dict(path="out.n5", chunks=CHUNKS),
    "hdf5": dict(path="out.h5", internal_path="data", chunks=CHUNKS),
}


def make_output(tmp_path: Path, kind: str, dtype=np.uint16, fill_value: int = 0):
    options = dict(OUTPUTS[kind])
    path = tmp_path / options.pop("path")
    key = options.pop("internal_path", "")
    if kind != "hdf5":
        options["fill_value"] = fill_value
    return create_array(path, key, shape=SHAPE, dtype=dtype, **options)


def expected(data, initial, block_shape, mask=None, block_ids=None):
    """The numpy oracle: ``initial`` with the chosen blocks of ``data`` copied where ``mask``."""
    out = np.array(initial, copy=True)
    blocking = Blocking(SHAPE, block_shape)
    ids = range(blocking.number_of_blocks) if block_ids is None else block_ids
    for block_id in ids:
        roi = to_roi(blocking.get_block(block_id))
        where = np.ones(out[roi].shape, bool) if mask is None else mask[roi]
        np.copyto(out[roi], data[roi], where=where, casting="unsafe")
    return out


# --- parity with numpy -------------------------------------------------------------------------


@pytest.mark.parametrize("num_workers", [1, 3])
def test_copy_numpy_to_new_numpy_array(data, num_workers):
    result = copy(data, block_shape=(16, 32, 20), num_workers=num_workers)
    assert isinstance(result, np.ndarray) and result.dtype == data.dtype
    np.testing.assert_array_equal(result, data)


def test_copy_numpy_with_mask_and_block_ids(data, mask):
    ids = [0, 3, 7, 11, 20]
    result = copy(data, block_shape=(16, 16, 16), mask=mask, block_ids=ids, num_workers=2)
    np.testing.assert_array_equal(
        result, expected(data, np.zeros_like(data), (16, 16, 16), mask, ids)
    )


def test_copy_into_numpy_output_casts_like_numpy(data):
    floats = data.astype(np.float64) / 7.5 - 100
    out = np.zeros(SHAPE, dtype=np.int16)
    assert copy(floats, out, block_shape=(20, 20, 20)) is out
    reference = np.zeros(SHAPE, dtype=np.int16)
    reference[...] = floats
    np.testing.assert_array_equal(out, reference)


@pytest.mark.parametrize("kind", list(OUTPUTS))
@pytest.mark.parametrize("job_type", ["local", "subprocess"])
@pytest.mark.parametrize("case", ["all", "mask", "block_ids", "mask+block_ids"])
def test_copy_parity(tmp_path, zarr_input, data, mask, kind, job_type, case):
    output = make_output(tmp_path, kind, fill_value=7)
    initial = output[...]
    use_mask = open_mask(tmp_path, mask) if "mask" in case else None
    block_shape = (32, 32, 32) if kind == "sharded" else (16, 32, 16)
    ids = [0, 2, 5, 9, 10] if "block_ids" in case else None
    returned = copy(zarr_input, output, block_shape=block_shape, job_type=job_type,
                    num_workers=2, mask=use_mask, block_ids=ids)
    assert returned is output
    want = expected(data, initial, block_shape, None if use_mask is None else mask, ids)
    np.testing.assert_array_equal(output[...], want)
    np.testing.assert_array_equal(open_source(output.path, output.internal_path)[...], want)


def open_mask(tmp_path: Path, mask: np.ndarray):
    """The mask as a uint8 zarr array (nonzero = inside), reopenable by workers."""
    path = tmp_path / "mask.zarr"
    if not path.exists():
        array = create_array(path, shape=SHAPE, dtype=np.uint8, chunks=(32, 32, 32))
        array[...] = mask.astype(np.uint8) * 3
    return open_source(path)


@pytest.mark.parametrize("peer", ["zarr-python", "z5py", "h5py"])
def test_copy_from_peer_handles_in_worker_processes(tmp_path, data, peer):
    if peer == "zarr-python":
        handle = zarr.create_array(str(tmp_path / "in.zarr"), shape=SHAPE, chunks=CHUNKS,
                                   dtype=data.dtype)
    elif peer == "z5py":
        handle = z5py.File(str(tmp_path / "in.n5"), "w").create_dataset(
            "raw", shape=SHAPE, chunks=CHUNKS, dtype=data.dtype)
    else:
        handle = h5py.File(tmp_path / "in.h5", "w").create_dataset(
            "raw", shape=SHAPE, chunks=CHUNKS, dtype=data.dtype)
    handle[...] = data
    if peer == "h5py":  # workers open the file too: HDF5 allows readers only beside a writer
        handle.file.close()
        handle = h5py.File(tmp_path / "in.h5", "r")["raw"]
    output = make_output(tmp_path, "n5")
    copy(handle, output, job_type="subprocess", num_workers=2)
    np.testing.assert_array_equal(output[...], data)


def test_default_block_shape_is_the_output_shards(tmp_path, zarr_input, data):
    output = make_output(tmp_path, "sharded")
    copy(zarr_input, output, block_ids=[1])  # block 1 of the (32, 32, 32) shard grid
    want = np.zeros_like(data)
    want[0:32, 0:32, 32:52] = data[0:32, 0:32, 32:52]
    np.testing.assert_array_equal(output[...], want)


def test_copy_dtype_cast_to_float_output(tmp_path, zarr_input, data):
    output = create_array(tmp_path / "f.zarr", shape=SHAPE, dtype=np.float32, chunks=CHUNKS)
    copy(zarr_input, output, job_type="subprocess", num_workers=2)
    np.testing.assert_array_equal(output[...], data.astype(np.float32))


def test_empty_block_ids_writes_nothing(tmp_path, zarr_input):
    output = make_output(tmp_path, "zarr3")
    copy(zarr_input, output, block_ids=[], job_type="subprocess")
    assert sorted(os.listdir(output.path)) == ["zarr.json"]


# --- write safety and argument errors ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["zarr3", "n5", "hdf5"])
def test_misaligned_blocks_rejected_before_any_write(tmp_path, zarr_input, kind):
    output = make_output(tmp_path, kind)
    before = sorted(p.name for p in Path(output.path).rglob("*"))
    with pytest.raises(ValueError, match=r"does not align with the chunks.*of output 0.*chunk bound"):
        copy(zarr_input, output, block_shape=(16, 24, 16), job_type="subprocess", num_workers=2)
    assert sorted(p.name for p in Path(output.path).rglob("*")) == before
    assert not output[...].any()


def test_sharded_output_takes_blocks_misaligned_with_its_inner_chunks(tmp_path, zarr_input, data):
    # A shard is written by one worker, its blocks one after another: inner chunks shared by
    # two blocks are read, merged and rewritten in turn, so any block shape is safe.
    output = make_output(tmp_path, "sharded")
    copy(zarr_input, output, block_shape=(16, 24, 16), job_type="subprocess", num_workers=2)
    np.testing.assert_array_equal(output[...], data)


def test_errors_before_any_work(tmp_path, zarr_input, data):
    output = make_output(tmp_path, "zarr3")
    with pytest.raises(ValueError, match=r"\(45, 70, 52\).*\(45, 70, 51\)"):
        copy(data, np.zeros((45, 70, 51), np.uint16))
    with pytest.raises(ValueError, match=r"mask has shape \(1, 2, 3\)"):
        copy(data, mask=np.ones((1, 2, 3), bool))
    with pytest.raises(TypeError, match="read-only"):
        copy(data, open_source(output.path))
    with pytest.raises(TypeError, match="read-only"):
        readonly = np.zeros(SHAPE, np.uint16)
        readonly.flags.writeable = False
        copy(data, readonly)
    with pytest.raises(ValueError, match=r"block id 500 is out of range.*has 60 blocks"):
        copy(zarr_input, output, block_ids=[1, 500])
    with pytest.raises(ValueError, match=r"block id -1 is out of range"):
        copy(zarr_input, output, block_ids=[-1])
    with pytest.raises(ValueError, match=r"job_type 'threads'.*'local', 'subprocess', 'dask'"):
        copy(data, job_type="threads")
    with pytest.raises(ValueError, match="num_workers must be an integer >= 1, got 0"):
        copy(data, num_workers=0)
    with pytest.raises(ValueError, match="block_shape must be 3 positive integers"):
        copy(data, block_shape=(16, 16))
    with pytest.raises(ValueError, match="block_shape must be 3 positive integers"):
        copy(data, block_shape=(16, 0, 16))
    with pytest.raises(ValueError, match=r"unknown job_config keys \['workers'\]"):
        copy(zarr_input, output, job_type="subprocess", job_config={"workers": 2})
    with pytest.raises(TypeError, match="strings / file paths"):
        copy(str(output.path), output)
    assert sorted(os.listdir(output.path)) == ["zarr.json"]


@pytest.mark.parametrize("role", ["input", "output", "mask", "output=None"])
def test_worker_processes_reject_numpy(tmp_path, zarr_input, data, role):
    output = make_output(tmp_path, "zarr3")
    args = {"input": zarr_input, "output": output, "mask": None}
    if role == "output=None":
        args["output"] = None
    else:
        args[role] = np.ones(SHAPE, np.uint16) if role != "input" else data
    if role == "output":
        args["output"] = np.zeros(SHAPE, np.uint16)
    with pytest.raises(ValueError, match="numpy arrays can only be used for local execution"):
        copy(args["input"], args["output"], mask=args["mask"], job_type="subprocess")


# --- sharded outputs ---------------------------------------------------------------------------


def test_blocks_of_one_shard_go_to_one_batch():
    blocking = Blocking(SHAPE, (16, 16, 16))
    shards = (32, 32, 32)
    for in_process, workers in [(True, 4), (False, 2), (False, 16)]:
        batches = make_batches(blocking, list(range(blocking.number_of_blocks)), [shards],
                               workers, 1, in_process)
        owner = {}
        for index, batch in enumerate(batches):
            for block_id in batch:
                shard = tuple(b // s for b, s in zip(blocking.get_block(block_id).begin, shards))
                assert owner.setdefault(shard, index) == index, (in_process, shard)
        assert sorted(i for b in batches for i in b) == list(range(blocking.number_of_blocks))


def test_sharded_output_written_by_many_processes_is_exact(tmp_path, zarr_input, data):
    # Blocks of one chunk, four per shard along each axis: shards must not lose chunks.
    output = make_output(tmp_path, "sharded")
    copy(zarr_input, output, block_shape=CHUNKS, job_type="subprocess", num_workers=2)
    np.testing.assert_array_equal(output[...], data)


# --- failures and reruns -----------------------------------------------------------------------


def faulty_input(tmp_path, zarr_input, block_shape, block_id, fault):
    blocking = Blocking(SHAPE, block_shape)
    marker = tmp_path / f"{fault}.marker"
    marker.write_text("fail once")
    source = open_source(zarr_input.path, format="faulty", marker=str(marker), fault=fault,
                         fail_at=list(blocking.get_block(block_id).begin))
    return source, marker


@pytest.mark.parametrize("job_type", ["local", "subprocess"])
def test_failed_block_reported_and_rerun_completes(tmp_path, zarr_input, data, job_type):
    block_shape = (16, 32, 16)
    source, marker = faulty_input(tmp_path, zarr_input, block_shape, 13, "raise")
    output = make_output(tmp_path, "zarr3")
    with pytest.raises(RunnerError, match=r"did not complete .* in block 13: OSError") as info:
        copy(source, output, block_shape=block_shape, job_type=job_type, num_workers=2)
    err = info.value
    assert isinstance(err, RuntimeError) and not marker.exists()
    assert err.failed_block == 13 and 13 in err.block_ids
    assert isinstance(err.error, OSError) and err.__cause__ is err.error
    check_completed_blocks(output, data, block_shape, err.block_ids)
    copy(source, output, block_shape=block_shape, job_type=job_type, num_workers=2,
         block_ids=err.block_ids)
    np.testing.assert_array_equal(output[...], data)


def test_killed_worker_process_then_rerun_of_failed_blocks(tmp_path, zarr_input, data):
    block_shape = (16, 16, 16)
    n = Blocking(SHAPE, block_shape).number_of_blocks
    source, marker = faulty_input(tmp_path, zarr_input, block_shape, 40, "kill")
    output = make_output(tmp_path, "sharded")  # shards of 2x2x2 blocks, grouped per worker
    with pytest.raises(RunnerError, match=r"in a worker: BrokenProcessPool") as info:
        copy(source, output, block_shape=block_shape, job_type="subprocess", num_workers=2)
    err = info.value
    assert not marker.exists(), "the worker reading block 40 was killed"
    assert 40 in err.block_ids and len(err.block_ids) < n and err.failed_block is None
    check_completed_blocks(output, data, block_shape, err.block_ids)
    copy(source, output, block_shape=block_shape, job_type="subprocess", num_workers=2,
         block_ids=err.block_ids)
    np.testing.assert_array_equal(output[...], data)
    np.testing.assert_array_equal(open_source(output.path)[...], data)


def check_completed_blocks(output, data, block_shape, failed):
    """Every block not listed as failed holds its data (completed blocks stay written)."""
    blocking = Blocking(SHAPE, block_shape)
    current = open_source(output.path, output.internal_path)[...]
    for block_id in set(range(blocking.number_of_blocks)) - set(failed):
        roi = to_roi(blocking.get_block(block_id))
        np.testing.assert_array_equal(current[roi], data[roi], err_msg=f"block {block_id}")


# --- progress ----------------------------------------------------------------------------------


def test_progress_bar_on_request_only(data, capsys):
    copy(data, block_shape=(16, 16, 16))
    assert "block" not in capsys.readouterr().err
    copy(data, block_shape=(16, 16, 16), progress=True)
    err = capsys.readouterr().err
    assert "copy" in err and "60/60" in err


@pytest.mark.parametrize("peer", ["zarr-python sharded", "z5py", "h5py"])
def test_copy_into_peer_handles_with_worker_processes(tmp_path, zarr_input, data, peer):
    if peer == "zarr-python sharded":
        handle = zarr.create_array(str(tmp_path / "out.zarr"), shape=SHAPE, chunks=CHUNKS,
                                   shards=(32, 32, 32), dtype=data.dtype)
    elif peer == "z5py":
        handle = z5py.File(str(tmp_path / "out.n5"), "w").create_dataset(
            "out", shape=SHAPE, chunks=CHUNKS, dtype=data.dtype)
    else:
        handle = h5py.File(tmp_path / "out.h5", "w").create_dataset(
            "out", shape=SHAPE, chunks=CHUNKS, dtype=data.dtype)
    copy(zarr_input, handle, block_shape=CHUNKS, job_type="subprocess", num_workers=2)
    np.testing.assert_array_equal(handle[...], data)
