"""io where bioimage-py 0.2 differs: 0.2's specs reopen with 0.2's values, MSR/OBF files, the MRC
orientation and zarr v2 arrays written by z5py.

The oracle for "0.2's values" is 0.2 itself: ``tests/data/io_v02.npz`` holds what 0.2 read
from the files ``tests/v02_files.py`` writes (recorded by ``tests/data/make_io_v02.py`` with
0.2's interpreter), and the specs 0.2 recorded for them; the same files are written here and
those specs reopened. MSR files are written by the OBF writer of ``tests/obf_writer.py`` and
read back by ``msr-reader`` as the oracle.
"""
from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

import bioimage_py
from bioimage_py import copy, create_array, open_source
from bioimage_py.sources import FileSource, SourceSpec, from_spec

pytest.importorskip("mrcfile")
pytest.importorskip("nibabel")
pytest.importorskip("tifffile")
pytest.importorskip("imageio")
pytest.importorskip("h5py")
pytest.importorskip("zarr")
msr_reader = pytest.importorskip("msr_reader")

import v02_files  # noqa: E402  (after the importorskips: it imports the writers' libraries)
from obf_writer import DTYPE_FLAGS, Stack, write_obf  # noqa: E402

RECORDED = Path(__file__).parent / "data" / "io_v02.npz"


@pytest.fixture(scope="module")
def recorded() -> dict[str, np.ndarray]:
    with np.load(RECORDED) as npz:
        return {name: npz[name] for name in npz.files}


@pytest.fixture(scope="module")
def v02_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("v02")
    v02_files.write_all(str(folder))
    return folder


def _v02_spec(recorded, case: str, folder: Path) -> SourceSpec:
    spec = json.loads(str(recorded[f"{case}/spec"]))
    spec["path"] = str(folder / spec["path"])
    return SourceSpec(**spec)


def _roi(recorded, case: str) -> tuple[slice, ...]:
    return tuple(slice(int(a), None if b < 0 else int(b)) for a, b in recorded[f"{case}/roi"])


# Cases whose 0.2 values we reproduce; the 4D MRC stack is the one deliberate difference.
CASES = [case for case, *_ in v02_files.OPENED if case != "mrc_volume_stack"]


# --- 0.2's specs reopen with 0.2's values ------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_v02_spec_reopens_with_v02_values(recorded, v02_folder, case):
    spec = _v02_spec(recorded, case, v02_folder)
    src = from_spec(spec)
    assert isinstance(src, FileSource)
    assert src.internal_path.strip("/") == spec.internal_path.strip("/")
    expected = recorded[f"{case}/values"]
    values = src[_roi(recorded, case)]
    np.testing.assert_array_equal(values, expected)
    assert values.dtype == expected.dtype
    if case != "nifti_scaled":  # 0.2 said int16 (on disk) and read floats; ours says float
        assert src.dtype == np.dtype(str(recorded[f"{case}/dtype"]))
    # The reopened source records the same spec again: workers reopen it the same way.
    assert from_spec(src.to_spec()).shape == src.shape


@pytest.mark.parametrize("case", CASES)
def test_v02_calls_give_v02_values(recorded, v02_folder, case):
    """The same ``open_source`` call as 0.2's gives 0.2's values and internal path."""
    _, name, internal_path, kwargs = next(c for c in v02_files.OPENED if c[0] == case)
    src = open_source(v02_folder / name, internal_path, **kwargs)
    np.testing.assert_array_equal(src[_roi(recorded, case)], recorded[f"{case}/values"])
    v02_spec = _v02_spec(recorded, case, v02_folder)
    assert src.internal_path.strip("/") == v02_spec.internal_path.strip("/")
    assert src.to_spec().params["mode"] == v02_spec.params["mode"]


def test_v02_format_names(recorded):
    """What 0.2 recorded: TIFF and image files under "folder" (ours records "tif")."""
    formats = {case: json.loads(str(recorded[f"{case}/spec"]))["params"]["format"]
               for case, *_ in v02_files.OPENED}
    assert {formats[c] for c in ("tif_stack", "tif_zlib", "tif_rgb", "png_file")} == {"folder"}
    assert formats["msr_all"] == "msr" and formats["knossos_default"] == "folder"
    for name in set(formats.values()):
        assert name in bioimage_py.io.supported_formats()


def test_v02_n5_spec_reopens(tmp_path):
    """0.2 opened N5 through z5py and recorded ``{"format": "n5", "mode": ...}``."""
    z5py = pytest.importorskip("z5py")
    data = np.arange(6 * 7 * 8, dtype="int32").reshape(6, 7, 8)
    with z5py.File(str(tmp_path / "c.n5"), mode="a") as f:
        f.create_dataset("a/raw", data=data, chunks=(3, 3, 3))
    spec = SourceSpec(kind="file", path=str(tmp_path / "c.n5"), internal_path="a/raw",
                      params={"format": "n5", "mode": "r"})
    np.testing.assert_array_equal(from_spec(spec)[...], data)


def test_folder_format_opens_a_tiff_file_as_tif_does(v02_folder):
    for name in ("stack.tif", "zlib.tiff", "rgb.tif"):
        as_folder = open_source(v02_folder / name, format="folder")
        as_tif = open_source(v02_folder / name)
        assert (as_folder.format, as_tif.format) == ("folder", "tif")
        assert as_folder.shape == as_tif.shape and as_folder.chunks == as_tif.chunks
        np.testing.assert_array_equal(as_folder[...], as_tif[...])
        assert as_folder.to_spec().params == {"format": "folder", "mode": "r"}


def test_folder_format_still_refuses_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="not a folder"):
        open_source(tmp_path / "notes.txt", format="folder")


def test_v02_knossos_load_png_option_is_accepted(v02_folder, recorded):
    spec = _v02_spec(recorded, "knossos_default", v02_folder)
    spec.params["load_png"] = True
    np.testing.assert_array_equal(from_spec(spec)[_roi(recorded, "knossos_default")],
                                  recorded["knossos_default/values"])


# --- MRC orientation ---------------------------------------------------------------------------


def _mrcfile_data(path: Path) -> np.ndarray:
    import mrcfile

    with mrcfile.open(str(path), permissive=True) as mrc:
        return np.array(mrc.data)


@pytest.mark.parametrize("name", ["vol.mrc", "img.mrc", "stack.rec", "vstack.mrc"])
def test_mrc_default_is_y_flipped_and_flip_y_false_is_mrcfile(v02_folder, name):
    raw = _mrcfile_data(v02_folder / name)
    src = open_source(v02_folder / name)
    assert src.array.flip_y is True
    np.testing.assert_array_equal(src[...], np.flip(raw, axis=-2))
    np.testing.assert_array_equal(src[..., 1:3, :], np.flip(raw, axis=-2)[..., 1:3, :])
    plain = open_source(v02_folder / name, flip_y=False)
    assert plain.array.flip_y is False
    np.testing.assert_array_equal(plain[...], raw)
    spec = plain.to_spec()
    assert spec.params == {"format": "mrc", "mode": "r", "flip_y": False}
    again = from_spec(SourceSpec(**json.loads(json.dumps(spec.__dict__))))
    np.testing.assert_array_equal(again[...], raw)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(plain))[...], raw)


def test_mrc_4d_differs_from_v02_on_purpose(recorded, v02_folder):
    """0.2 flipped axis 0 of a stack of volumes (not y); we flip y for every ndim."""
    raw = _mrcfile_data(v02_folder / "vstack.mrc")
    np.testing.assert_array_equal(recorded["mrc_volume_stack/values"], np.flip(raw, axis=0))
    np.testing.assert_array_equal(open_source(v02_folder / "vstack.mrc")[...],
                                  np.flip(raw, axis=-2))


def test_mrc_flip_stays_memory_mapped_and_reads_are_copies(v02_folder):
    src = open_source(v02_folder / "vol.mrc")
    view = src.array._data
    assert isinstance(view, np.memmap) and view.strides[-2] < 0  # a view, nothing copied
    region = src[1:4]
    assert region.flags.c_contiguous and not np.shares_memory(region, view)


def test_mrc_flip_y_must_be_a_bool(v02_folder):
    with pytest.raises(TypeError, match="flip_y must be True or False"):
        open_source(v02_folder / "vol.mrc", flip_y="no")


# --- MSR / OBF ---------------------------------------------------------------------------------


def _stacks(seed: int = 0) -> list[Stack]:
    rng = np.random.default_rng(seed)
    stacks = []
    for i, dtype in enumerate(DTYPE_FLAGS):
        if dtype.kind == "b":
            data = rng.random((9, 11)) > 0.5
        elif dtype.kind == "f":
            data = rng.standard_normal((9, 11)).astype(dtype)
        else:
            info = np.iinfo(dtype)
            data = rng.integers(info.min, info.max, (9, 11), endpoint=True, dtype=dtype)
        stacks.append(Stack(f"{dtype.name} {{{i}}}", data, compressed=bool(i % 2)))
    stacks.append(Stack("volume", rng.integers(0, 255, (4, 6, 5), dtype="uint8"), compressed=True))
    return stacks


@pytest.fixture(scope="module")
def msr_file(tmp_path_factory) -> tuple[str, list[Stack]]:
    path = str(tmp_path_factory.mktemp("msr") / "many.msr")
    stacks = _stacks()
    write_obf(path, stacks)
    return path, stacks


def test_obf_writer_is_read_by_msr_reader(msr_file):
    path, stacks = msr_file
    with msr_reader.OBFFile(path) as obf:
        assert obf.stack_names == [s.name for s in stacks]
        for i, stack in enumerate(stacks):
            np.testing.assert_array_equal(obf.read_stack(i), stack.data)


def test_msr_every_stack_by_index_and_name(msr_file):
    path, stacks = msr_file
    assert bioimage_py.io.format_for_extension(".msr") == "msr"
    assert not bioimage_py.io.is_writable_format("msr")
    for i, stack in enumerate(stacks):
        for key in (str(i), stack.name, str(i - len(stacks))):
            src = open_source(path, key)
            assert (src.format, src.internal_path, src.writable) == ("msr", key, False)
            assert src.shape == stack.data.shape and src.dtype == stack.data.dtype
            assert src.chunks is None
            np.testing.assert_array_equal(src[...], stack.data)
            np.testing.assert_array_equal(src[1:4, -3:], stack.data[1:4, -3:])
            assert src[(2,) * src.ndim] == stack.data[(2,) * src.ndim]


def test_msr_default_is_the_first_stack(msr_file):
    path, stacks = msr_file
    src = open_source(path)
    assert src.internal_path == "0"
    np.testing.assert_array_equal(src[...], stacks[0].data)
    assert src.to_spec() == SourceSpec(kind="file", path=os.path.abspath(path),
                                       internal_path="0", params={"format": "msr", "mode": "r"})


def test_msr_data_stacks_all_channels(tmp_path):
    rng = np.random.default_rng(1)
    channels = [rng.integers(0, 4000, (12, 10), dtype="uint16") for _ in range(3)]
    path = str(tmp_path / "ch.msr")
    write_obf(path, [Stack(f"Ch{i}", c, compressed=i == 1) for i, c in enumerate(channels)])
    src = open_source(path, "data")
    expected = np.stack(channels)
    assert src.shape == (3, 12, 10)
    np.testing.assert_array_equal(src[...], expected)
    np.testing.assert_array_equal(src[1:, 2:5, 3], expected[1:, 2:5, 3])
    np.testing.assert_array_equal(src[2], expected[2])
    assert src[0:0].shape == (0, 12, 10)
    assert src.array.stack_names == ["Ch0", "Ch1", "Ch2"]
    # One stack: "data" is that stack, without a channel axis (as 0.2).
    write_obf(str(tmp_path / "one.msr"), [Stack("only", channels[0])])
    assert open_source(tmp_path / "one.msr", "data").shape == (12, 10)


def test_msr_spec_pickle_and_worker_processes(tmp_path, msr_file):
    path, stacks = msr_file
    src = open_source(path, "volume")
    again = from_spec(SourceSpec(**json.loads(json.dumps(src.to_spec().__dict__))))
    np.testing.assert_array_equal(again[...], stacks[-1].data)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(src))[...], stacks[-1].data)
    out = create_array(tmp_path / "out.zarr", shape=src.shape, dtype=src.dtype, chunks=(2, 3, 5))
    copy(src, out, block_shape=(2, 3, 5), job_type="subprocess", num_workers=2)
    np.testing.assert_array_equal(out[...], stacks[-1].data)


def test_msr_threads_decode_each_stack_once(msr_file):
    path, stacks = msr_file
    src = open_source(path, "3")
    result = copy(src, block_shape=(2, 4), num_workers=4)
    np.testing.assert_array_equal(result, stacks[3].data)


def test_msr_errors(tmp_path, msr_file):
    path, stacks = msr_file
    with pytest.raises(ValueError, match=r"'nope' is neither a stack index nor a stack name.*"
                                         r"0 \('uint8 \{0\}'\)"):
        open_source(path, "nope")
    with pytest.raises(ValueError, match=rf"stack index {len(stacks)} is out of range"):
        open_source(path, str(len(stacks)))
    with pytest.raises(ValueError, match="differs in shape or dtype"):
        open_source(path, "data")
    with pytest.raises(ValueError, match="read-only"):
        open_source(path, mode="r+")
    (tmp_path / "fake.msr").write_bytes(b"not an obf file at all, no magic here")
    with pytest.raises(ValueError, match="is not an OBF / MSR file"):
        open_source(tmp_path / "fake.msr")


def test_msr_reader_missing_fails_at_open_with_the_pip_command(monkeypatch, msr_file):
    path, _ = msr_file
    import bioimage_py.io.msr

    monkeypatch.setitem(sys.modules, "msr_reader", None)
    assert "msr" in bioimage_py.io.supported_formats()
    with pytest.raises(ImportError, match=r"pip install msr-reader"):
        open_source(path)


# --- zarr v2 arrays written by z5py ------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint32", "int64", "uint64"])
def test_z5py_zarr_v2_integer_arrays_open(tmp_path, dtype):
    z5py = pytest.importorskip("z5py")
    data = np.random.default_rng(3).integers(0, 100, (10, 13, 7)).astype(dtype)
    with z5py.File(str(tmp_path / "z5.zarr"), mode="a", use_zarr_format=True) as f:
        ds = f.create_dataset("raw", shape=data.shape, chunks=(4, 5, 3), dtype=dtype,
                              compression="gzip")
        ds[:8, :10, :] = data[:8, :10, :]  # some chunks never written: they read as 0
    metadata = json.loads((tmp_path / "z5.zarr" / "raw" / ".zarray").read_text())
    assert metadata["fill_value"] == 0.0 and isinstance(metadata["fill_value"], float)
    expected = np.zeros_like(data)
    expected[:8, :10, :] = data[:8, :10, :]
    src = open_source(tmp_path / "z5.zarr", "raw", mode="r+")
    assert src.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(src[...], expected)
    src[8:, :, :] = 7  # writes stay readable by z5py
    expected[8:] = 7
    with z5py.File(str(tmp_path / "z5.zarr"), mode="r") as f:
        np.testing.assert_array_equal(f["raw"][...], expected)


def test_zarr_v2_fractional_fill_for_integers_is_still_refused(tmp_path):
    folder = tmp_path / "bad.zarr"
    folder.mkdir()
    (folder / ".zarray").write_text(json.dumps({
        "zarr_format": 2, "shape": [4, 4], "chunks": [2, 2], "dtype": "<u2",
        "compressor": None, "fill_value": 0.5, "order": "C", "filters": None,
    }))
    with pytest.raises(ValueError, match="fill value"):
        open_source(folder)
