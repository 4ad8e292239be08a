"""``bioimage_py.downsample`` reproduces bioimage-py 0.2's results on every job type.

The oracle is 0.2 itself: ``tests/data/downsample_v02.npz`` holds 0.2's outputs for 2D and 3D
labels, images and masks (orders 0-5, with and without anti-aliasing), a masked run and a run
over a subset of the blocks, recorded by ``tests/data/make_downsample_v02.py`` with 0.2's
interpreter. Integer and bool results must be equal; float results equal up to float32 rounding
(0.2 itself differs from block to block in the last bit).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bioimage_py import create_array, downsample, open_source
from bioimage_py.sources import from_spec
from bioimage_py.util import downscale_shape

REFERENCE = Path(__file__).parent / "data" / "downsample_v02.npz"


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as npz:
        return {name: npz[name] for name in npz.files}


def _case(reference: dict[str, np.ndarray], name: str) -> tuple[np.ndarray, dict, np.ndarray]:
    args = json.loads(str(reference[f"{name}/args"]))
    return reference[f"{name}/input"], args, reference[f"{name}/output"]


def _cases() -> list[str]:
    with np.load(REFERENCE) as npz:
        names = sorted({name.split("/")[0] for name in npz.files})
    return [name for name in names if name not in ("masked", "subset")]


CASES = _cases()


def assert_matches_v02(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("name", CASES)
def test_numpy_in_numpy_out_equals_v02(reference, name):
    data, args, expected = _case(reference, name)
    result = downsample(data, **args)
    assert isinstance(result, np.ndarray)
    assert result.shape == downscale_shape(data.shape, args["scale_factor"])
    assert_matches_v02(result, expected)


@pytest.mark.parametrize("name", CASES)
def test_local_threads_in_blocks_equal_v02(reference, name):
    data, args, expected = _case(reference, name)
    output = np.zeros_like(expected)
    result = downsample(data, output=output, block_shape=(5,) * data.ndim, num_workers=2, **args)
    assert result is output
    assert_matches_v02(output, expected)


def _file_pair(tmp_path: Path, data: np.ndarray, out_shape: tuple[int, ...], chunks: int):
    """The input as a zarr array and an empty N5 output (zarr v2 for bool: N5 has no bool)."""
    source = create_array(tmp_path / "in.zarr", shape=data.shape, dtype=data.dtype,
                          chunks=(chunks,) * data.ndim)
    source[...] = data
    where = ("out.zarr", {"zarr_format": 2}) if data.dtype == bool else ("out.n5", {})
    output = create_array(tmp_path / where[0], "s1", shape=out_shape, dtype=data.dtype,
                          chunks=(4,) * data.ndim, **where[1])
    return open_source(tmp_path / "in.zarr"), output


def _written(output) -> np.ndarray:
    """What is on disk now: the output reopened from its spec."""
    return from_spec(output.to_spec())[...]


@pytest.mark.parametrize("name", ["labels3d_f123", "image3d_o1_aa", "image2d_o3_aa", "bool3d_o0"])
def test_worker_processes_with_zarr_and_n5_files_equal_v02(tmp_path, reference, name):
    data, args, expected = _case(reference, name)
    source, output = _file_pair(tmp_path, data, expected.shape, chunks=8)
    downsample(source, output=output, block_shape=(8,) * data.ndim, job_type="subprocess",
               num_workers=2, **args)
    assert_matches_v02(_written(output), expected)


def test_dask_equals_v02(tmp_path, reference):
    distributed = pytest.importorskip("distributed")
    data, args, expected = _case(reference, "image3d_o3_f32")
    source, output = _file_pair(tmp_path, data, expected.shape, chunks=8)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        downsample(source, output=output, block_shape=(4,) * data.ndim, job_type="dask",
                   job_config={"client": client}, **args)
    assert_matches_v02(_written(output), expected)


@pytest.mark.parametrize("job_type", ["local", "subprocess"])
def test_mask_writes_only_inside_as_v02(tmp_path, reference, job_type):
    data, args, expected = _case(reference, "masked")
    mask = reference["masked/mask"]
    if job_type == "local":
        output, mask_arg = None, mask
    else:
        source, output = _file_pair(tmp_path, data, expected.shape, chunks=8)
        data = source
        mask_arg = create_array(tmp_path / "mask.zarr", shape=mask.shape, dtype=bool,
                                chunks=(4,) * mask.ndim)
        mask_arg[...] = mask
    result = downsample(data, output=output, mask=mask_arg, block_shape=(4, 4, 4),
                        job_type=job_type, num_workers=2, **args)
    if job_type != "local":
        result = _written(output)
    assert_matches_v02(result, expected)
    assert not result[~mask].any()


def test_block_ids_write_only_those_blocks_as_v02(reference):
    data, args, expected = _case(reference, "subset")
    block_ids = reference["subset/block_ids"].tolist()
    result = downsample(data, block_ids=block_ids, **args)
    assert_matches_v02(result, expected)
    full = downsample(data, args["scale_factor"])
    assert (result != full).any()  # the other blocks stayed 0


def test_rerun_of_block_ids_finishes_the_output(tmp_path, reference):
    data, args, expected = _case(reference, "labels3d_f2")
    source, output = _file_pair(tmp_path, data, expected.shape, chunks=8)
    downsample(source, output=output, block_shape=(4, 4, 4), block_ids=[0, 1, 2],
               job_type="subprocess", num_workers=2, **args)
    first = _written(output)
    assert (first != expected).any()
    downsample(source, output=output, block_shape=(4, 4, 4), block_ids=range(3, 27), **args)
    assert_matches_v02(_written(output), expected)


def test_factor_one_keeps_the_axis_and_ints_or_lists_agree(reference):
    data, _, _ = _case(reference, "labels2d_f2")
    assert np.array_equal(downsample(data, 1), data)
    assert np.array_equal(downsample(data, 2), downsample(data, [2, 2]))
    assert np.array_equal(downsample(data, (2, 3)), downsample(data, np.array([2, 3])))
    assert np.array_equal(downsample(data, (2.0, 3.0)), downsample(data, (2, 3)))


@pytest.mark.parametrize(
    ("factor", "error", "match"),
    [
        ((2, 2, 2), ValueError,
         r"scale_factor \(2, 2, 2\) does not match the input dimensionality 2"),
        (0, ValueError, r"scale factors >= 1, got \(0, 0\)"),
        ((2, -1), ValueError, r"scale factors >= 1, got \(2, -1\)"),
        (2.5, TypeError, r"scale_factor must be an int or a sequence of ints, got 2.5"),
        ((2, 1.5), TypeError, r"scale_factor must be an int or a sequence of ints"),
        ("2", TypeError, r"scale_factor must be an int or a sequence of ints"),
    ],
)
def test_bad_scale_factor(factor, error, match):
    with pytest.raises(error, match=match):
        downsample(np.zeros((8, 8), dtype="uint8"), factor)


def test_errors_of_the_wrapper_and_of_copy(tmp_path):
    with pytest.raises(ValueError, match="(?i)2d"):
        downsample(np.zeros((4, 4, 4, 4), dtype="uint8"), 2)
    with pytest.raises(ValueError, match="order"):
        downsample(np.zeros((8, 8), dtype="uint8"), 2, order=6)
    with pytest.raises(ValueError, match="numpy arrays can only be used for local execution"):
        downsample(np.zeros((8, 8), dtype="uint8"), 2, job_type="subprocess")
    with pytest.raises(ValueError, match=r"shape"):
        downsample(np.zeros((8, 8), dtype="uint8"), 2, output=np.zeros((3, 4), dtype="uint8"))
    with pytest.raises(TypeError, match="strings / file paths"):
        downsample(str(tmp_path / "x.zarr"), 2)
