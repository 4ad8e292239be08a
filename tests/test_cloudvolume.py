"""bioimage_py.sources.cloudvolume_source: CloudVolumeSource / open_cloudvolume.

Every layer is a real neuroglancer-precomputed layer under ``tmp_path`` (``file://``), created
and written by cloud-volume itself (``CloudVolume.create_new_info`` + ``commit_info``); what the
source writes is read back through cloud-volume's own API. cloud-volume indexes ``(x, y, z, c)``;
the oracle here is the numpy ``(z, y, x)`` array, compared with cloud-volume's cutouts transposed.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
from cloudvolume import CloudVolume
from cloudvolume.exceptions import AlignmentError, EmptyVolumeException
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import bioimage_py
import bioimage_py.sources as sources
from bioimage_py.sources import (
    CloudVolumeSource,
    SourceSpec,
    as_source,
    from_spec,
    open_cloudvolume,
)

OFFSET = (3, 5, 7)  # XYZ voxel_offset of the test layers: views start off the origin
SIZE = (21, 14, 10)  # XYZ volume_size: not a multiple of the chunk size
CHUNK = (8, 8, 4)  # XYZ
SHAPE = SIZE[::-1]  # the source's (z, y, x) shape
RAW_DTYPES = [
    "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
    "float16", "float32", "float64", "bool", "complex64",
]


# --- helpers -----------------------------------------------------------------------------------


def create_layer(
    root: Path,
    name: str = "layer",
    dtype: str = "uint16",
    encoding: str = "raw",
    layer_type: str = "image",
    num_channels: int = 1,
    offset: Sequence[int] = OFFSET,
    size: Sequence[int] = SIZE,
    chunk: Sequence[int] = CHUNK,
    scales: Sequence[Sequence[int]] = (),
) -> str:
    """Create an empty precomputed layer with cloud-volume; return its ``file://`` cloudpath.

    ``scales``: downsampling factors of further mips (``vol.add_scale``), each relative to mip 0.
    """
    cloudpath = f"file://{root / name}"
    info = CloudVolume.create_new_info(
        num_channels=num_channels, layer_type=layer_type, data_type=dtype, encoding=encoding,
        resolution=[4, 4, 40], voxel_offset=list(offset), chunk_size=list(chunk),
        volume_size=list(size),
    )
    volume = CloudVolume(cloudpath, info=info, progress=False)
    for factor in scales:
        volume.add_scale(factor, chunk_size=list(chunk))
    volume.commit_info()
    return cloudpath


def cv(cloudpath: str, mip: int = 0, **kwargs: Any) -> CloudVolume:
    """A cloud-volume handle of the layer (non-aligned writes allowed)."""
    kwargs.setdefault("non_aligned_writes", True)
    return CloudVolume(cloudpath, mip=mip, progress=False, **kwargs)


def cv_write(cloudpath: str, data_zyx: np.ndarray, mip: int = 0, **kwargs: Any) -> None:
    """Write a whole mip of the layer with cloud-volume from a ``(z, y, x)`` array."""
    volume = cv(cloudpath, mip, **kwargs)
    begin, end = volume.bounds.minpt, volume.bounds.maxpt
    volume[begin[0]:end[0], begin[1]:end[1], begin[2]:end[2]] = data_zyx.T


def cv_read(cloudpath: str, mip: int = 0, **kwargs: Any) -> np.ndarray:
    """A whole mip of the layer read by cloud-volume, as a ``(z, y, x)`` array."""
    volume = cv(cloudpath, mip, **kwargs)
    begin, end = volume.bounds.minpt, volume.bounds.maxpt
    cutout = volume[begin[0]:end[0], begin[1]:end[1], begin[2]:end[2]]
    return np.asarray(cutout)[..., 0].T


def random_data(shape: Sequence[int], dtype: Any, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype == bool:
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.kind == "c":
        return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype)
    if dtype.kind == "f":
        return rng.normal(0, 100, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


def chunk_files(cloudpath: str, key: str = "4_4_40") -> list[str]:
    return sorted(os.listdir(cloudpath.removeprefix("file://") + "/" + key))


@pytest.fixture
def layer(tmp_path) -> tuple[str, np.ndarray]:
    """A uint16 layer filled with distinct values by cloud-volume: (cloudpath, zyx data)."""
    cloudpath = create_layer(tmp_path)
    data = np.arange(np.prod(SHAPE), dtype="uint16").reshape(SHAPE)
    cv_write(cloudpath, data)
    return cloudpath, data


# --- package -----------------------------------------------------------------------------------


def test_openers_are_exported():
    assert "open_cloudvolume" in bioimage_py.__all__
    assert bioimage_py.open_cloudvolume is open_cloudvolume
    assert {"CloudVolumeSource", "open_cloudvolume"} <= set(sources.__all__)
    namespace: dict = {}
    exec("from bioimage_py import *", namespace)
    assert namespace["open_cloudvolume"] is open_cloudvolume


def test_missing_cloudvolume_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "cloudvolume", None)
    with pytest.raises(ImportError, match="pip install cloud-volume"):
        open_cloudvolume(f"file://{tmp_path}/layer")


# --- reading -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", RAW_DTYPES)
def test_reads_every_raw_dtype_written_by_cloudvolume(tmp_path, dtype):
    cloudpath = create_layer(tmp_path, dtype=dtype)
    data = random_data(SHAPE, dtype)
    cv_write(cloudpath, data)
    src = open_cloudvolume(cloudpath)
    assert src.shape == SHAPE and src.ndim == 3
    assert src.dtype == np.dtype(dtype)
    assert src.chunks == CHUNK[::-1]
    assert src.writable
    out = src[...]
    assert out.flags.c_contiguous and out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, data)
    np.testing.assert_array_equal(src[2:7, 3:11, 4:17], data[2:7, 3:11, 4:17])


@pytest.mark.parametrize("dtype", RAW_DTYPES)
def test_writes_every_raw_dtype_read_back_by_cloudvolume(tmp_path, dtype):
    cloudpath = create_layer(tmp_path, dtype=dtype)
    data = random_data(SHAPE, dtype, seed=1)
    src = open_cloudvolume(cloudpath)
    src[...] = data
    np.testing.assert_array_equal(cv_read(cloudpath), data)


@pytest.mark.parametrize(
    ("encoding", "dtype", "layer_type"),
    [
        ("compressed_segmentation", "uint32", "segmentation"),
        ("compressed_segmentation", "uint64", "segmentation"),
        ("raw", "uint64", "segmentation"),
        # cloud-volume's png codec (pyspng) encodes single-channel 8-bit images only.
        ("png", "uint8", "image"),
    ],
)
def test_lossless_encodings_both_ways(tmp_path, encoding, dtype, layer_type):
    cloudpath = create_layer(tmp_path, dtype=dtype, encoding=encoding, layer_type=layer_type)
    # Segment-like data (a few labels, large ids) as compressed_segmentation is made for.
    labels = np.array([0, 1, 7, 2**31 + 5 if np.dtype(dtype).itemsize >= 4 else 200], dtype=dtype)
    data = labels[np.random.default_rng(2).integers(0, 4, SHAPE)]
    cv_write(cloudpath, data)
    src = open_cloudvolume(cloudpath)
    np.testing.assert_array_equal(src[...], data)
    # A non-aligned write through the source: cloud-volume re-encodes the touched chunks.
    src[1:6, 2:13, 5:18] = labels[1]
    data[1:6, 2:13, 5:18] = labels[1]
    np.testing.assert_array_equal(cv_read(cloudpath), data)
    np.testing.assert_array_equal(src[...], data)


def test_jpeg_layer_reads_what_cloudvolume_reads(tmp_path):
    """jpeg is lossy: the source returns exactly cloud-volume's decoded voxels."""
    cloudpath = create_layer(tmp_path, dtype="uint8", encoding="jpeg")
    z, y, x = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    data = (4 * x + 3 * y + 2 * z).astype("uint8")  # smooth, so jpeg keeps it close
    cv_write(cloudpath, data)
    src = open_cloudvolume(cloudpath)
    np.testing.assert_array_equal(src[...], cv_read(cloudpath))
    np.testing.assert_allclose(src[...].astype(float), data, atol=8)
    src[:, :8, :] = 100  # a constant survives jpeg exactly
    assert (cv_read(cloudpath)[:, :8, :] == 100).all()


@pytest.mark.parametrize(("compress", "suffix"), [("gzip", ".gz"), ("br", ".br"), (False, "")])
def test_compressed_chunk_files(tmp_path, compress, suffix):
    cloudpath = create_layer(tmp_path)
    data = random_data(SHAPE, "uint16", seed=3)
    src = open_cloudvolume(cloudpath, compress=compress)
    src[...] = data
    files = chunk_files(cloudpath)
    assert files and all(f.endswith(suffix) for f in files), files
    if not suffix:
        assert not any(f.endswith((".gz", ".br")) for f in files)
    np.testing.assert_array_equal(cv_read(cloudpath), data)
    np.testing.assert_array_equal(open_cloudvolume(cloudpath)[...], data)
    assert src.to_spec().params["compress"] == compress


def test_empty_and_single_voxel_reads(layer):
    cloudpath, data = layer
    src = open_cloudvolume(cloudpath)
    assert src[3:3].shape == (0, *SHAPE[1:])
    assert src[:, 5:2, :].shape == (SHAPE[0], 0, SHAPE[2])
    assert src[2, 3, 4] == data[2, 3, 4] and isinstance(src[2, 3, 4], np.uint16)
    np.testing.assert_array_equal(src[-1, :, -2], data[-1, :, -2])


def test_reads_are_fresh_c_contiguous_arrays(layer):
    cloudpath, data = layer
    src = open_cloudvolume(cloudpath)
    first = src[1:4, 2:9, 3:12]
    assert first.flags.c_contiguous and first.flags.writeable
    assert not first.flags.owndata  # cloud-volume's Fortran (x, y, z) buffer reversed: no copy
    first[...] = 0  # the caller owns the result: the next read is unaffected
    np.testing.assert_array_equal(src[1:4, 2:9, 3:12], data[1:4, 2:9, 3:12])


# --- fill_missing ------------------------------------------------------------------------------


def test_missing_chunks_raise_by_default(tmp_path):
    cloudpath = create_layer(tmp_path)
    src = open_cloudvolume(cloudpath)
    with pytest.raises(EmptyVolumeException, match="fill_missing") as info:
        src[0:2, 0:2, 0:2]
    assert cloudpath in str(info.value)


def test_missing_chunks_read_as_zero_with_fill_missing(tmp_path):
    cloudpath = create_layer(tmp_path)
    cv(cloudpath)[3:11, 5:13, 7:11] = np.full((8, 8, 4), 9, "uint16")  # one chunk written
    expected = np.zeros(SHAPE, "uint16")
    expected[0:4, 0:8, 0:8] = 9
    src = open_cloudvolume(cloudpath, fill_missing=True)
    np.testing.assert_array_equal(src[...], expected)
    with pytest.raises(EmptyVolumeException):
        open_cloudvolume(cloudpath)[...]
    np.testing.assert_array_equal(open_cloudvolume(cloudpath)[0:4, 0:8, 0:8], 9)


def test_non_aligned_write_into_missing_chunks(tmp_path):
    """With fill_missing, a partial write into absent chunks paints them on zeros."""
    cloudpath = create_layer(tmp_path)
    src = open_cloudvolume(cloudpath, fill_missing=True)
    src[1:3, 2:5, 3:6] = 5
    expected = np.zeros(SHAPE, "uint16")
    expected[1:3, 2:5, 3:6] = 5
    np.testing.assert_array_equal(cv_read(cloudpath, fill_missing=True), expected)


# --- mip levels --------------------------------------------------------------------------------


def test_mip_levels(tmp_path):
    cloudpath = create_layer(tmp_path, scales=[(2, 2, 1)])
    mip1 = cv(cloudpath, mip=1)
    offset1 = tuple(int(v) for v in mip1.voxel_offset)
    size1 = tuple(int(v) for v in mip1.volume_size)
    assert offset1 == (1, 2, 7) and size1 == (11, 7, 10)
    full = random_data(SHAPE, "uint16", seed=4)
    low = random_data(size1[::-1], "uint16", seed=5)
    cv_write(cloudpath, full)
    cv_write(cloudpath, low, mip=1)

    src = open_cloudvolume(cloudpath, mip=1)
    assert src.shape == size1[::-1]
    assert src.offset == offset1
    assert src.chunks == CHUNK[::-1]
    np.testing.assert_array_equal(src[...], low)
    src[2:5, 1:6, 3:9] = 1
    low[2:5, 1:6, 3:9] = 1
    np.testing.assert_array_equal(cv_read(cloudpath, mip=1), low)
    np.testing.assert_array_equal(cv_read(cloudpath, mip=0), full)  # mip 0 untouched
    spec = src.to_spec()
    assert spec.params["mip"] == 1
    np.testing.assert_array_equal(from_spec(spec)[...], low)
    # A view at mip 1 is in mip-1 voxels.
    view = open_cloudvolume(cloudpath, mip=1, offset=(2, 3, 8), size=(5, 4, 6))
    np.testing.assert_array_equal(view[...], low[1:7, 1:5, 1:6])


def test_mip_as_resolution_is_recorded_as_level(tmp_path):
    cloudpath = create_layer(tmp_path, scales=[(2, 2, 1)])
    src = open_cloudvolume(cloudpath, mip=[8, 8, 40], fill_missing=True)
    assert src.to_spec().params["mip"] == 1
    assert src.shape == (10, 7, 11)


# --- views (offset / size) ---------------------------------------------------------------------


def test_view_indices_are_local(layer):
    cloudpath, data = layer
    offset, size = (5, 8, 9), (12, 4, 6)  # absolute XYZ
    local = data[2:8, 3:7, 2:14]  # offset - voxel_offset = (2, 3, 2) in XYZ
    src = open_cloudvolume(cloudpath, offset=offset, size=size)
    assert src.shape == (6, 4, 12)
    assert src.offset == offset and src.view_size == size
    np.testing.assert_array_equal(src[...], local)
    np.testing.assert_array_equal(src[1:3, :, 5:], local[1:3, :, 5:])
    assert src[0, 0, 0] == data[2, 3, 2]
    assert src[-1, -1, -1] == data[7, 6, 13]
    src[1:5, 1:3, 2:9] = 60000
    data[3:7, 4:6, 4:11] = 60000
    np.testing.assert_array_equal(cv_read(cloudpath), data)


def test_view_size_defaults_to_the_rest_of_the_layer(layer):
    cloudpath, data = layer
    src = open_cloudvolume(cloudpath, offset=(10, 6, 12))
    assert src.view_size == (14, 13, 5)
    np.testing.assert_array_equal(src[...], data[5:, 1:, 7:])
    whole = open_cloudvolume(cloudpath)
    assert whole.offset == OFFSET and whole.view_size == SIZE


@pytest.mark.parametrize(
    ("offset", "size"),
    [
        ((2, 5, 7), None),
        ((3, 5, 7), (22, 14, 10)),
        ((20, 5, 7), (5, 1, 1)),
        ((3, 5, 16), (1, 1, 2)),
    ],
)
def test_views_outside_the_layer_are_refused(layer, offset, size):
    cloudpath, _ = layer
    with pytest.raises(ValueError, match=r"offset \[.*size \[.*bounds") as info:
        open_cloudvolume(cloudpath, offset=offset, size=size)
    assert cloudpath in str(info.value) and "voxel_offset [3, 5, 7]" in str(info.value)


@pytest.mark.parametrize(
    ("offset", "size", "match"),
    [
        ((3, 5), None, r"offset must be three integers .*\(3, 5\)"),
        ((3, 5, 7.5), None, "offset must be three integers"),
        ("abc", None, "offset must be three integers"),
        (None, (1, 2, 3, 4), "size must be three integers"),
        (None, (4, -1, 2), r"size must not be negative, got \[4, -1, 2\]"),
    ],
)
def test_bad_offset_or_size(layer, offset, size, match):
    cloudpath, _ = layer
    with pytest.raises(ValueError, match=match):
        open_cloudvolume(cloudpath, offset=offset, size=size)


def test_unbounded_view_reads_background_outside_and_refuses_writes_there(layer):
    cloudpath, data = layer
    src = open_cloudvolume(cloudpath, bounded=False, fill_missing=True, offset=(0, 5, 7),
                           size=(10, 14, 10))
    expected = np.zeros((10, 14, 10), "uint16")
    expected[:, :, 3:] = data[:, :, :7]
    np.testing.assert_array_equal(src[...], expected)
    before = chunk_files(cloudpath)
    with pytest.raises(ValueError, match=r"\[0:4, 5:6, 7:8\].*outside the layer bounds"):
        src[0, 0, 0:4] = 1
    assert chunk_files(cloudpath) == before  # no chunk files outside the layer
    src[0, 0, 3:6] = 1  # inside the layer: written
    data[0, 0, 0:3] = 1
    np.testing.assert_array_equal(cv_read(cloudpath), data)


# --- writing -----------------------------------------------------------------------------------


def test_non_aligned_writes_read_back_by_cloudvolume(layer):
    cloudpath, data = layer
    src = open_cloudvolume(cloudpath)
    regions = [
        (slice(0, 1), slice(0, 1), slice(0, 1)),
        (slice(1, 9), slice(3, 13), slice(2, 19)),  # crosses chunk borders everywhere
        (slice(0, 10), slice(0, 14), slice(5, 6)),
        (slice(4, 8), slice(0, 8), slice(0, 8)),  # exactly one chunk (aligned)
    ]
    rng = np.random.default_rng(6)
    for roi in regions:
        shape = tuple(s.stop - s.start for s in roi)
        value = rng.integers(0, 60000, shape, dtype="uint16")
        src[roi] = value
        data[roi] = value
        np.testing.assert_array_equal(cv_read(cloudpath), data)


def test_write_layouts_broadcasts_and_casts(layer):
    cloudpath, data = layer
    src = open_cloudvolume(cloudpath)
    fortran = np.asfortranarray(np.arange(5 * 6 * 7, dtype="uint16").reshape(5, 6, 7))
    src[1:6, 2:8, 3:10] = fortran
    data[1:6, 2:8, 3:10] = fortran
    strided = np.arange(4 * 5 * 12, dtype="uint16").reshape(4, 5, 12)[:, ::-1, ::2]
    src[0:4, 0:5, 0:6] = strided
    data[0:4, 0:5, 0:6] = strided
    src[5:9, 7, :] = np.arange(SHAPE[2], dtype="uint16")  # broadcast along z, integer y
    data[5:9, 7, :] = np.arange(SHAPE[2], dtype="uint16")
    src[9] = 7.9  # a float scalar cast as numpy casts it
    data[9] = 7.9
    np.testing.assert_array_equal(cv_read(cloudpath), data)
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(2, 2\)"):
        src[0, 0:2, 0:2] = np.ones(3)
    np.testing.assert_array_equal(cv_read(cloudpath), data)  # nothing written


def test_handle_without_non_aligned_writes_refuses_partial_chunks(layer):
    cloudpath, data = layer
    src = as_source(CloudVolume(cloudpath, progress=False))
    with pytest.raises(AlignmentError):
        src[0:1, 0:1, 0:1] = 1
    src[0:4, 0:8, 0:8] = 2  # one whole chunk
    data[0:4, 0:8, 0:8] = 2
    np.testing.assert_array_equal(cv_read(cloudpath), data)


# --- numpy is the oracle -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_layer(tmp_path_factory) -> str:
    return create_layer(tmp_path_factory.mktemp("cv_props"), dtype="int32")


def base_data() -> np.ndarray:
    return np.arange(np.prod(SHAPE), dtype="int32").reshape(SHAPE)


def has_step(index: Any) -> bool:
    entries = index if isinstance(index, tuple) else (index,)
    return any(isinstance(e, slice) and e.step not in (None, 1) for e in entries)


INDICES = hnp.basic_indices(SHAPE, min_dims=0, allow_ellipsis=True, allow_newaxis=False)


@settings(max_examples=50, deadline=None)
@given(index=INDICES)
def test_read_equals_numpy(shared_layer, index):
    cv_write(shared_layer, base_data())
    src = open_cloudvolume(shared_layer)
    if has_step(index):
        with pytest.raises(ValueError, match="step"):
            src[index]
        return
    got, expected = src[index], base_data()[index]
    if isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray) and got.shape == expected.shape
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    else:
        assert type(got) is type(expected) and got == expected


@settings(max_examples=30, deadline=None)
@given(index=INDICES, data=st.data())
def test_write_equals_numpy(shared_layer, index, data):
    cv_write(shared_layer, base_data())
    src = open_cloudvolume(shared_layer)
    expected = base_data()
    if has_step(index):
        with pytest.raises(ValueError, match="step"):
            src[index] = 1
        return
    target = np.shape(expected[index])
    value = data.draw(
        st.one_of(
            st.integers(-1000, 1000),
            hnp.arrays("int32", hnp.broadcastable_shapes(target, min_side=0, max_dims=len(target)),
                       elements=st.integers(-1000, 1000)),
        ),
        label="value",
    )
    expected[index] = value
    src[index] = value
    np.testing.assert_array_equal(cv_read(shared_layer), expected)


# --- spec, reopening, pickling -----------------------------------------------------------------


def test_spec_records_every_open_parameter(layer, tmp_path):
    cloudpath, _ = layer
    cache = str(tmp_path / "cache")
    src = open_cloudvolume(cloudpath, fill_missing=True, cache=cache, offset=(4, 6, 8),
                           size=(3, 2, 1), compress="br", background_color=0)
    spec = src.to_spec()
    assert spec.kind == "cloudvolume" and spec.path == cloudpath and spec.internal_path is None
    assert spec.params == {
        "mip": 0, "fill_missing": True, "bounded": True, "cache": cache,
        "non_aligned_writes": True, "progress": False, "compress": "br", "background_color": 0,
        "offset": [4, 6, 8], "size": [3, 2, 1],
    }
    assert src.volume.progress is False


def test_spec_survives_json_and_reopens_the_same_view(layer):
    cloudpath, data = layer
    src = open_cloudvolume(cloudpath, offset=(5, 8, 9), size=(12, 4, 6))
    spec = SourceSpec.from_json(src.to_spec().to_json())
    assert spec == src.to_spec()
    again = from_spec(spec)
    assert isinstance(again, CloudVolumeSource)
    assert (again.shape, again.offset, again.dtype) == (src.shape, src.offset, src.dtype)
    np.testing.assert_array_equal(again[...], src[...])
    again[0, 0, 0] = 12345  # reopened writable
    assert src[0, 0, 0] == 12345
    assert CloudVolumeSource.reopen(spec).to_spec() == spec


def test_reopen_rejects_other_kinds():
    with pytest.raises(ValueError, match="'cloudvolume' spec"):
        CloudVolumeSource.reopen(SourceSpec("zarr", "/x.zarr"))


def test_local_paths_become_absolute_file_urls(layer, tmp_path, monkeypatch):
    cloudpath, data = layer
    folder = cloudpath.removeprefix("file://")
    monkeypatch.chdir(tmp_path)
    for path in (folder, Path(folder), "layer", "file://layer"):
        src = open_cloudvolume(path)
        assert src.to_spec().path == cloudpath, path
        np.testing.assert_array_equal(src[0], data[0])


@pytest.mark.parametrize("pickler", [pickle, cloudpickle], ids=["pickle", "cloudpickle"])
def test_pickles_as_its_spec(layer, pickler):
    cloudpath, data = layer
    src = open_cloudvolume(cloudpath, fill_missing=True, offset=(4, 5, 7), size=(6, 5, 4))
    blob = pickler.dumps(src)
    assert len(blob) < 2000  # the spec, not the data
    again = pickle.loads(blob)
    assert isinstance(again, CloudVolumeSource) and again.to_spec() == src.to_spec()
    np.testing.assert_array_equal(again[...], data[:4, :5, 1:7])


def test_as_source_wraps_a_handle_and_recovers_its_parameters(tmp_path):
    cloudpath = create_layer(tmp_path, scales=[(2, 2, 1)])
    cache = str(tmp_path / "cache")
    handle = CloudVolume(cloudpath, mip=1, fill_missing=True, cache=cache, compress="br",
                         cdn_cache=False, delete_black_uploads=True, background_color=3,
                         progress=False)
    src = as_source(handle)
    assert isinstance(src, CloudVolumeSource) and src.volume is handle
    assert src.shape == (10, 7, 11)
    params = src.to_spec().params
    assert params == {
        "mip": 1, "fill_missing": True, "bounded": True, "cache": cache,
        "non_aligned_writes": False, "background_color": 3, "delete_black_uploads": True,
        "cdn_cache": False, "compress": "br", "offset": [1, 2, 7], "size": [11, 7, 10],
    }
    json.dumps(params)
    again = from_spec(src.to_spec())
    assert again.volume.mip == 1 and again.volume.fill_missing
    assert again.volume.background_color == 3
    whole = handle[1:12, 2:9, 7:17]  # missing chunks: what cloud-volume fills them with
    np.testing.assert_array_equal(again[...], np.asarray(whole)[..., 0].T)
    # A plain handle records the defaults it was opened with.
    plain = as_source(CloudVolume(cloudpath, progress=False)).to_spec().params
    assert plain == {"mip": 0, "fill_missing": False, "bounded": True, "cache": False,
                     "non_aligned_writes": False, "offset": list(OFFSET), "size": list(SIZE)}


def test_spec_reopened_in_another_process(layer):
    cloudpath, data = layer
    src = open_cloudvolume(cloudpath, offset=(5, 6, 8), size=(16, 12, 8))
    code = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        from bioimage_py.sources import SourceSpec, from_spec

        src = from_spec(SourceSpec.from_json(sys.argv[1]))
        block = src[...]
        src[2:5, 3:9, 4:12] = np.arange(3 * 6 * 8, dtype=src.dtype).reshape(3, 6, 8) + 50000
        print(json.dumps({"sum": int(block.sum()), "shape": list(block.shape),
                          "corner": int(block[0, 0, 0])}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, src.to_spec().to_json()],
        capture_output=True, text=True, check=True, timeout=120,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    view = data[1:9, 1:13, 2:18]
    assert result == {"sum": int(view.sum()), "shape": [8, 12, 16], "corner": int(view[0, 0, 0])}
    view[2:5, 3:9, 4:12] = np.arange(3 * 6 * 8, dtype="uint16").reshape(3, 6, 8) + 50000
    np.testing.assert_array_equal(cv_read(cloudpath), data)


# --- channels ----------------------------------------------------------------------------------


def test_multi_channel_layers_are_rejected(tmp_path):
    cloudpath = create_layer(tmp_path, dtype="uint8", num_channels=3)
    with pytest.raises(ValueError, match="single-channel") as info:
        open_cloudvolume(cloudpath)
    assert cloudpath in str(info.value) and "3 channels" in str(info.value)
    with pytest.raises(ValueError, match="single-channel"):
        as_source(CloudVolume(cloudpath, progress=False))
    with pytest.raises(ValueError, match="single-channel"):
        CloudVolumeSource(CloudVolume(cloudpath, progress=False))


def test_repr_names_the_layer_and_view(layer):
    cloudpath, _ = layer
    text = repr(open_cloudvolume(cloudpath, offset=(4, 5, 7), size=(2, 3, 4)))
    assert text.startswith("CloudVolumeSource(")
    for part in (cloudpath, "mip=0", "offset=[4, 5, 7]", "size=[2, 3, 4]", "shape=(4, 3, 2)",
                 "dtype=uint16", "chunks=(4, 8, 8)"):
        assert part in text


def test_a_cropped_cutout_is_a_runtime_error(layer):
    """An autocrop handle returns less than asked outside the layer: caught, not returned."""
    cloudpath, _ = layer
    handle = CloudVolume(cloudpath, bounded=False, autocrop=True, fill_missing=True,
                         progress=False)
    src = CloudVolumeSource(handle, offset=(0, 5, 7), size=(6, 2, 2))
    match = r"returned \(3, 2, 2\) voxels .* instead of \(6, 2, 2\)"
    with pytest.raises(RuntimeError, match=match):
        src[...]
    assert src.to_spec().params["autocrop"] is True


def test_c_ordered_cutouts_are_transposed_in_rust(layer, monkeypatch):
    """Should cloud-volume hand back a C-ordered cutout, the result is still a C-ordered copy."""
    cloudpath, data = layer
    src = open_cloudvolume(cloudpath)
    handle_type = type(src.volume)
    real_getitem = handle_type.__getitem__
    monkeypatch.setattr(
        handle_type, "__getitem__", lambda vol, key: np.ascontiguousarray(real_getitem(vol, key))
    )
    out = src[1:4, 2:9, 3:12]
    assert out.flags.c_contiguous and out.flags.owndata
    np.testing.assert_array_equal(out, data[1:4, 2:9, 3:12])


# --- credentials -------------------------------------------------------------------------------

SECRET = "SECRET-XYZ"


def _secret_free(text: str | bytes, what: str) -> None:
    needle = SECRET if isinstance(text, str) else SECRET.encode()
    assert needle not in text, f"the secret leaked into {what}"


@pytest.mark.parametrize(
    "secrets",
    [
        {"token": SECRET},
        {"AWS_ACCESS_KEY_ID": "AKIA-test", "AWS_SECRET_ACCESS_KEY": SECRET},
        json.dumps({"token": SECRET}),  # cloud-volume also takes the JSON text
    ],
    ids=["token", "aws", "json-text"],
)
def test_secrets_stay_out_of_specs_pickles_and_reprs(layer, secrets):
    cloudpath, data = layer
    src = open_cloudvolume(cloudpath, fill_missing=True, offset=(4, 5, 7), size=(6, 5, 4),
                           secrets=secrets)
    assert src.volume.config.secrets == secrets  # the live handle keeps them
    np.testing.assert_array_equal(src[...], data[:4, :5, 1:7])
    spec = src.to_spec()
    assert "secrets" not in spec.params and "secrets" not in src.open_params
    _secret_free(spec.to_json(), "the spec JSON")
    _secret_free(repr(spec), "the spec repr")
    _secret_free(repr(src), "repr")
    _secret_free(str(src), "str")
    _secret_free(json.dumps(src.open_params), "open_params")
    for pickler in (pickle, cloudpickle):
        blob = pickler.dumps(src)
        _secret_free(blob, f"{pickler.__name__} bytes")
        again = pickle.loads(blob)
        assert isinstance(again, CloudVolumeSource) and again.to_spec() == spec
        assert again.volume.config.secrets is None  # cloud-volume's own lookup
        np.testing.assert_array_equal(again[...], data[:4, :5, 1:7])
    # The spec still reopens the same view (writable) without the credentials.
    reopened = from_spec(SourceSpec.from_json(spec.to_json()))
    reopened[0, 0, 0] = 4321
    assert src[0, 0, 0] == 4321


def test_secrets_in_explicit_open_params_are_dropped(layer):
    """Passed to the constructor (or read from an old spec) they still never get recorded."""
    cloudpath, data = layer
    handle = CloudVolume(cloudpath, secrets={"token": SECRET}, progress=False)
    src = CloudVolumeSource(handle, open_params={"mip": 0, "secrets": {"token": SECRET}})
    assert src.to_spec().params == {"mip": 0, "offset": list(OFFSET), "size": list(SIZE)}
    _secret_free(cloudpickle.dumps(src), "cloudpickle bytes")
    # A handle wrapped by as_source records none either.
    _secret_free(as_source(handle).to_spec().to_json(), "the spec JSON of as_source(handle)")
    # A spec that carries secrets (e.g. written before they were dropped) opens with them, and
    # the reopened source's own spec drops them.
    old = SourceSpec("cloudvolume", cloudpath, params={"secrets": {"token": SECRET}})
    again = from_spec(old)
    assert again.volume.config.secrets == {"token": SECRET}
    _secret_free(again.to_spec().to_json(), "the reopened spec JSON")
    np.testing.assert_array_equal(again[...], data)


def test_open_cloudvolume_signature_matches_0_2():
    import inspect

    names = list(inspect.signature(open_cloudvolume).parameters)
    assert names == ["cloudpath", "mip", "fill_missing", "bounded", "cache",
                     "non_aligned_writes", "offset", "size", "kwargs"]
