"""MRC (mrcfile, memory-mapped) and NIfTI (nibabel) behind ``open_source``: read-only, voxel-exact.

Files are written by mrcfile and nibabel themselves. MRC data is presented as mrcfile gives it
(``(z, y, x)``) with the y axis flipped (0.2's and elf's orientation, ``flip_y=True``); NIfTI data
reversed from nibabel's ``(x, y, z[, t])`` by default, as stored with
``axis_order="xyz"``; NIfTI values follow nibabel's ``dataobj`` (scaled when the header says so).
"""
from __future__ import annotations

import json
import pickle
import sys
from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import bioimage_py
from bioimage_py import io as bio
from bioimage_py.io import files
from bioimage_py.io.arrays import open_array
from bioimage_py.sources import FileSource, SourceSpec, from_spec

mrcfile = pytest.importorskip("mrcfile")
nib = pytest.importorskip("nibabel")

SETTINGS = settings(max_examples=40, deadline=None)


def _data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def _write_mrc(path, data):
    with mrcfile.new(str(path), overwrite=True) as mrc:
        mrc.set_data(data)
    return str(path)


def _as_presented(data):
    """What open_source presents for MRC data written by mrcfile: y flipped (the default)."""
    return np.flip(data, axis=-2)


def _write_nifti(path, data, slope=None, inter=None):
    image = nib.Nifti1Image(data, np.eye(4))
    if slope is not None or inter is not None:
        image.header.set_slope_inter(slope, inter)
    nib.save(image, str(path))
    return str(path)


# ---------------------------------------------------------------------------------------------
# registry


def test_formats_are_registered():
    assert {"mrc", "nifti"} <= set(bio.supported_formats())
    for ext, fmt in [(".mrc", "mrc"), (".rec", "mrc"), (".nii", "nifti"), (".nii.gz", "nifti")]:
        assert bio.format_for_extension(ext) == fmt
    assert not bio.is_writable_format("mrc")
    assert not bio.is_writable_format("nifti")


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("a.mrc", "mrc"),
        ("A.MRC", "mrc"),
        ("tomo.rec", "mrc"),
        ("brain.nii", "nifti"),
        ("brain.nii.gz", "nifti"),
        ("BRAIN.NII.GZ", "nifti"),
        ("my.brain.v2.nii.gz", "nifti"),
    ],
)
def test_extension_inference(path, fmt):
    assert files.infer_format(path) == fmt


def test_nii_gz_is_one_extension():
    assert files.infer_extension("x/brain.nii.gz") == ".nii.gz"
    with pytest.raises(ValueError, match=r"^Could not infer"):
        files.infer_format("archive.gz")


@pytest.mark.parametrize("mode", ["r+", "a", "w"])
@pytest.mark.parametrize("name", ["v.mrc", "v.nii"])
def test_write_modes_are_rejected_up_front(tmp_path, name, mode):
    path = tmp_path / name
    with pytest.raises(ValueError, match="read-only"):
        bioimage_py.open_source(path, mode=mode)
    assert not path.exists()


@pytest.mark.parametrize(
    ("module", "name", "writer"),
    [("mrcfile", "v.mrc", _write_mrc), ("nibabel", "v.nii", _write_nifti)],
)
def test_missing_library_fails_at_open_naming_the_package(
    tmp_path, monkeypatch, module, name, writer
):
    path = writer(tmp_path / name, np.zeros((2, 3, 4), np.int16))
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    with pytest.raises(ImportError, match=module):
        bioimage_py.open_source(path)


# ---------------------------------------------------------------------------------------------
# MRC


@pytest.mark.parametrize("dtype", ["int8", "int16", "uint16", "float32"])
@pytest.mark.parametrize("shape", [(5, 7, 9), (7, 9)], ids=["volume", "image"])
def test_mrc_voxel_exact(tmp_path, dtype, shape):
    data = _data(shape, dtype)
    path = _write_mrc(tmp_path / "v.mrc", data)
    src = bioimage_py.open_source(path)
    assert isinstance(src, FileSource)
    assert (src.format, src.internal_path, src.writable) == ("mrc", "data", False)
    assert src.shape == shape
    assert src.dtype == np.dtype(dtype)
    assert src.chunks is None and src.ndim == len(shape)
    full = src[...]
    assert full.dtype == np.dtype(dtype)
    data = _as_presented(data)
    np.testing.assert_array_equal(full, data)
    np.testing.assert_array_equal(src[1:4, 2:], data[1:4, 2:])
    np.testing.assert_array_equal(src[-1], data[-1])
    assert src[(0,) * len(shape)] == data[(0,) * len(shape)]


def test_mrc_image_stack_and_rec_extension(tmp_path):
    data = _data((4, 6, 5), "float32")
    path = str(tmp_path / "stack.rec")
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
        mrc.set_image_stack()
    src = bioimage_py.open_source(path)
    assert src.format == "mrc"
    assert src.shape == (4, 6, 5)
    np.testing.assert_array_equal(src[2], _as_presented(data)[2])


def test_mrc_volume_stack(tmp_path):
    data = _data((2, 3, 4, 5), "int16")
    path = _write_mrc(tmp_path / "vs.mrc", data)
    src = bioimage_py.open_source(path)
    assert src.shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(src[1, :, 1:3], _as_presented(data)[1, :, 1:3])


def test_mrc_is_memory_mapped_and_reads_are_copies(tmp_path):
    data = _data((6, 5, 4), "int16")
    path = _write_mrc(tmp_path / "v.mrc", data)
    src = bioimage_py.open_source(path)
    array = src.array
    assert isinstance(array._data, np.memmap)
    region = src[1:3]
    assert not isinstance(region, np.memmap)
    assert region.base is None or not np.shares_memory(region, array._data)
    array.close()
    np.testing.assert_array_equal(region, _as_presented(data)[1:3])  # valid after closing
    with pytest.raises(ValueError, match="closed"):
        array[0:1]


def test_mrc_big_endian_is_presented_native(tmp_path):
    data = _data((3, 4, 5), "int16")
    path = str(tmp_path / "be.mrc")
    with mrcfile.new(path) as mrc:
        mrc.set_data(data.astype(">i2"))
    src = bioimage_py.open_source(path)
    assert src.dtype == np.dtype("int16") and src.dtype.isnative
    out = src[:]
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, _as_presented(data))


def test_mrc_permissive_is_recorded(tmp_path):
    data = _data((3, 4, 5), "float32")
    path = _write_mrc(tmp_path / "v.mrc", data)
    src = bioimage_py.open_source(path, permissive=True)
    spec = src.to_spec()
    assert spec.params == {"format": "mrc", "mode": "r", "permissive": True}
    np.testing.assert_array_equal(from_spec(spec)[:], _as_presented(data))


# ---------------------------------------------------------------------------------------------
# NIfTI


@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("shape", [(6, 5, 4), (6, 5, 4, 3)], ids=["3d", "4d"])
def test_nifti_voxel_exact_unscaled(tmp_path, ext, dtype, shape):
    data = _data(shape, dtype)  # nibabel order (x, y, z[, t])
    path = _write_nifti(tmp_path / f"v{ext}", data)
    src = bioimage_py.open_source(path)
    assert (src.format, src.internal_path, src.writable) == ("nifti", "data", False)
    assert src.shape == shape[::-1]
    assert src.dtype == np.dtype(dtype)
    assert src.chunks is None
    reversed_data = data.transpose()
    full = src[...]
    assert full.dtype == np.dtype(dtype) and full.flags.c_contiguous
    np.testing.assert_array_equal(full, reversed_data)
    np.testing.assert_array_equal(src[1:3, 2:], reversed_data[1:3, 2:])
    np.testing.assert_array_equal(src[..., 1], reversed_data[..., 1])

    stored = bioimage_py.open_source(path, axis_order="xyz")
    assert stored.shape == shape
    np.testing.assert_array_equal(stored[...], data)
    np.testing.assert_array_equal(stored[1:3, :, 2], data[1:3, :, 2])


@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
@pytest.mark.parametrize(("slope", "inter"), [(2.0, 0.0), (0.5, -3.0), (1.0, 10.0)])
def test_nifti_scaling_follows_dataobj(tmp_path, ext, slope, inter):
    data = _data((5, 4, 3), "int16")
    path = _write_nifti(tmp_path / f"s{ext}", data, slope, inter)
    expected = np.asarray(nib.load(path).dataobj)
    assert expected.dtype.kind == "f"
    np.testing.assert_allclose(expected, data * slope + inter, rtol=1e-6)
    src = bioimage_py.open_source(path)
    assert src.dtype == expected.dtype
    out = src[:]
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out, expected.transpose())
    np.testing.assert_array_equal(src[1, 1:3, 2:], expected.transpose()[1, 1:3, 2:])


def test_nifti_int_to_float_dtype_matches_nibabel_for_float32(tmp_path):
    data = _data((4, 3, 2), "float32")
    path = _write_nifti(tmp_path / "f.nii", data, 3.0, 1.0)
    expected = np.asarray(nib.load(path).dataobj)
    src = bioimage_py.open_source(path, axis_order="xyz")
    assert src.dtype == expected.dtype
    np.testing.assert_array_equal(src[:], expected)


def test_nifti_bad_axis_order(tmp_path):
    path = _write_nifti(tmp_path / "v.nii", np.zeros((2, 3, 4), np.int16))
    with pytest.raises(ValueError, match="axis_order"):
        bioimage_py.open_source(path, axis_order="yxz")


def test_nifti_axis_order_is_recorded_in_the_spec(tmp_path):
    data = _data((4, 3, 2), "int16")
    path = _write_nifti(tmp_path / "v.nii.gz", data)
    src = bioimage_py.open_source(path, axis_order="xyz")
    spec = src.to_spec()
    assert spec.params == {"format": "nifti", "mode": "r", "axis_order": "xyz"}
    again = from_spec(spec)
    assert again.shape == (4, 3, 2)
    np.testing.assert_array_equal(again[:], data)


# ---------------------------------------------------------------------------------------------
# shared: keys, read-only, specs, pickling, hypothesis regions


def _mrc_file(tmp_path):
    data = _data((6, 5, 7), "uint16", seed=3)
    return _write_mrc(tmp_path / "v.mrc", data), _as_presented(data), "mrc"


def _nifti_file(tmp_path):
    data = _data((7, 5, 6, 2), "float32", seed=4)
    return _write_nifti(tmp_path / "v.nii.gz", data), data.transpose(), "nifti"


FILES = pytest.mark.parametrize("make", [_mrc_file, _nifti_file], ids=["mrc", "nifti"])


@FILES
def test_default_key_is_data(tmp_path, make):
    path, expected, fmt = make(tmp_path)
    for internal_path in (None, "data", "/data"):
        src = bioimage_py.open_source(path, internal_path)
        assert src.internal_path == "data"
        np.testing.assert_array_equal(src[:], expected)
    _, key, got_fmt = open_array(path)
    assert (key, got_fmt) == ("data", fmt)


@FILES
@pytest.mark.parametrize("key", ["raw", "data/x", ""])
def test_wrong_key_lists_data(tmp_path, make, key):
    path, _, _ = make(tmp_path)
    with pytest.raises(ValueError, match="'data'"):
        bioimage_py.open_source(path, key)


@FILES
def test_read_only(tmp_path, make):
    path, expected, _ = make(tmp_path)
    src = bioimage_py.open_source(path)
    assert src.writable is False
    with pytest.raises(TypeError, match="read-only"):
        src[0] = 1
    with pytest.raises(TypeError, match="read-only"):
        src[...] = np.zeros(src.shape, src.dtype)
    np.testing.assert_array_equal(src[:], expected)


@FILES
def test_spec_round_trip_and_pickle(tmp_path, make):
    path, expected, fmt = make(tmp_path)
    src = bioimage_py.open_source(path)
    spec = src.to_spec()
    assert spec == SourceSpec(
        kind="file", path=path, internal_path="data", params={"format": fmt, "mode": "r"}
    )
    assert SourceSpec(**json.loads(json.dumps(asdict(spec)))) == spec
    for again in (from_spec(spec), FileSource.reopen(spec), pickle.loads(pickle.dumps(src))):
        assert isinstance(again, FileSource)
        assert (again.format, again.internal_path, again.shape) == (fmt, "data", src.shape)
        np.testing.assert_array_equal(again[:], expected)


def test_explicit_format_overrides_extension(tmp_path):
    path, expected, _ = _mrc_file(tmp_path)
    moved = tmp_path / "renamed.bin"
    (tmp_path / path).rename(moved)
    src = bioimage_py.open_source(moved, format="MRC")
    assert src.to_spec().params["format"] == "mrc"
    np.testing.assert_array_equal(src[:], expected)


@FILES
def test_missing_file(tmp_path, make):
    name = "absent.mrc" if make is _mrc_file else "absent.nii.gz"
    with pytest.raises(FileNotFoundError):
        bioimage_py.open_source(tmp_path / name)


@pytest.fixture(scope="module")
def opened(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("regions")
    out = {}
    for make in (_mrc_file, _nifti_file):
        path, expected, fmt = make(tmp)
        out[fmt] = (bioimage_py.open_source(path), expected)
    data = _data((5, 6, 4), "int16", seed=9)
    out["nifti-xyz"] = (
        bioimage_py.open_source(_write_nifti(tmp / "x.nii", data), axis_order="xyz"),
        data,
    )
    return out


@pytest.mark.parametrize("which", ["mrc", "nifti", "nifti-xyz"])
@SETTINGS
@given(data=st.data())
def test_regions_equal_numpy(opened, which, data):
    src, expected = opened[which]
    index = data.draw(hnp.basic_indices(expected.shape, allow_newaxis=False, allow_ellipsis=True))
    if isinstance(index, tuple):
        steps = [i.step for i in index if isinstance(i, slice)]
    else:
        steps = [index.step] if isinstance(index, slice) else []
    if any(s not in (None, 1) for s in steps):
        with pytest.raises(ValueError):
            src[index]
        return
    got = src[index]
    want = expected[index]
    assert np.shape(got) == np.shape(want)
    assert np.asarray(got).dtype == expected.dtype
    np.testing.assert_array_equal(got, want)
