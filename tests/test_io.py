"""bioimage_py.io: format registry, extension/format inference, open_file and open_array.

All files are written and read back by the peer libraries themselves (zarr-python v2 and v3,
z5py, h5py); nothing is mocked except a missing library. zarr and n5 are opened natively (the
Rust core): ``open_file`` returns a ``NativeContainer`` or, for a container whose root is an
array, a ``NativeArray``; hdf5 goes through h5py.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import z5py
import zarr

import bioimage_py
import bioimage_py.io as bio
from bioimage_py import _core as bio_core
from bioimage_py._core import NativeArray
from bioimage_py.io import files, formats, hdf5, native, registry
from bioimage_py.io.hdf5 import Hdf5File
from bioimage_py.io.native import NativeContainer

# ---------------------------------------------------------------------------------------------
# helpers: real files written by the peer libraries


def data(shape=(4, 6), offset=0):
    return (np.arange(int(np.prod(shape))) + offset).reshape(shape).astype("uint16")


def write_zarr(path: Path, arrays: dict[str, np.ndarray], zarr_format: int) -> Path:
    """Write ``arrays`` (key -> data) to a zarr group; key ``""`` writes a root array."""
    if "" in arrays:
        z = zarr.create_array(str(path), shape=arrays[""].shape, dtype=arrays[""].dtype,
                              zarr_format=zarr_format)
        z[...] = arrays[""]
        return path
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    for key, value in arrays.items():
        group.create_array(key, shape=value.shape, dtype=value.dtype)[...] = value
    return path


def write_n5(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with z5py.File(str(path), "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value, chunks=(2, 3))
    return path


def write_h5(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
    return path


def read_back(path: Path, fmt: str, key: str) -> np.ndarray:
    """Read ``key`` with the peer library, independently of bioimage_py."""
    if fmt == "zarr":
        root = zarr.open(str(path), mode="r")
        return np.asarray((root if key == "" else root[key])[...])
    if fmt == "n5":
        with z5py.File(str(path), "r") as f:
            return f[key][...]
    with h5py.File(path, "r") as f:
        return f[key][...]


def write(fmt: str, path: Path, arrays: dict[str, np.ndarray]) -> Path:
    if fmt == "zarr2":
        return write_zarr(path, arrays, 2)
    if fmt == "zarr3":
        return write_zarr(path, arrays, 3)
    if fmt == "n5":
        return write_n5(path, arrays)
    return write_h5(path, arrays)


# Each writer, the file name it writes and the format name bioimage_py should resolve.
WRITERS = [
    pytest.param("zarr2", "c.zarr", "zarr", id="zarr-v2"),
    pytest.param("zarr3", "c.zarr", "zarr", id="zarr-v3"),
    pytest.param("n5", "c.n5", "n5", id="n5"),
    pytest.param("h5", "c.h5", "hdf5", id="hdf5"),
]


@pytest.fixture
def isolated_registry(monkeypatch):
    """Let a test register formats without leaking them into other tests."""
    monkeypatch.setattr(registry, "_FORMATS", dict(registry._FORMATS))
    monkeypatch.setattr(registry, "_EXTENSIONS", dict(registry._EXTENSIONS))


# ---------------------------------------------------------------------------------------------
# infer_extension


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data.zarr", ".zarr"),
        ("data.zr", ".zr"),
        ("DATA.ZARR", ".zarr"),
        ("data.zarr/", ".zarr"),
        ("/abs/dir/data.n5//", ".n5"),
        ("rel/data.h5", ".h5"),
        ("data.hdf", ".hdf"),
        ("data.HDF5", ".hdf5"),
        ("vol.mrc", ".mrc"),
        ("vol.rec", ".rec"),
        ("brain.nii", ".nii"),
        ("brain.nii.gz", ".nii.gz"),
        ("BRAIN.NII.GZ", ".nii.gz"),
        ("archive.tar.gz", ".gz"),
        ("stack.tif", ".tif"),
        ("stack.TIFF", ".tiff"),
        ("my.data.v2.zarr", ".zarr"),
        ("folder", ""),
        ("folder/", ""),
        ("/a/dir.with.dots/folder", ""),
        (".hidden", ""),
        ("s3://bucket/prefix/data.zarr/", ".zarr"),
        (Path("some/where/data.n5"), ".n5"),
    ],
)
def test_infer_extension(path, expected):
    assert files.infer_extension(path) == expected


def test_infer_extension_ignores_the_disk(tmp_path):
    # a folder named like a container is still that container's extension
    (tmp_path / "data.zarr").mkdir()
    assert files.infer_extension(tmp_path / "data.zarr") == ".zarr"
    assert files.infer_extension(str(tmp_path) + "/") == ""


# ---------------------------------------------------------------------------------------------
# infer_format


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a.zarr", "zarr"),
        ("a.zr", "zarr"),
        ("a.ZARR/", "zarr"),
        ("a.n5", "n5"),
        ("a.h5", "hdf5"),
        ("a.hdf", "hdf5"),
        ("a.hdf5", "hdf5"),
    ],
)
def test_infer_format(path, expected):
    assert files.infer_format(path) == expected


def test_infer_format_explicit_extension_wins():
    assert files.infer_format("volume.bin", ext=".h5") == "hdf5"
    assert files.infer_format("volume.bin", ext="N5") == "n5"
    assert files.infer_format("volume.h5", ext=".zarr") == "zarr"


@pytest.mark.parametrize("path", ["a.xyz", "a.gz"])
def test_infer_format_unknown_extension(path):
    with pytest.raises(ValueError, match=r"^Could not infer") as info:
        files.infer_format(path)
    message = str(info.value)
    assert repr(path) in message
    for ext in (".zarr", ".zr", ".n5", ".h5", ".hdf", ".hdf5"):
        assert repr(ext) in message


def test_infer_format_unknown_explicit_extension():
    with pytest.raises(ValueError, match=r"^Could not infer.*'\.xyz'"):
        files.infer_format("a.h5", ext="xyz")


# ---------------------------------------------------------------------------------------------
# registry


def test_builtin_formats_are_registered():
    assert set(bio.supported_formats()) >= {"zarr", "n5", "hdf5"}
    assert set(bio.supported_extensions()) >= {".zarr", ".zr", ".n5", ".h5", ".hdf", ".hdf5"}
    for name in ("zarr", "n5", "hdf5"):
        assert bio.is_writable_format(name)


@pytest.mark.parametrize(
    ("ext", "expected"),
    [
        (".zarr", "zarr"),
        (".zr", "zarr"),
        (".ZR", "zarr"),
        ("zarr", "zarr"),
        (".n5", "n5"),
        (".h5", "hdf5"),
        ("h5", "hdf5"),
        (".hdf", "hdf5"),
        (".HDF5", "hdf5"),
        (".xyz", None),
        ("", "folder"),
    ],
)
def test_format_for_extension(ext, expected):
    assert bio.format_for_extension(ext) == expected


def test_constructor_for_format():
    assert bio.constructor_for_format("zarr") is native.open_native_zarr
    assert bio.constructor_for_format("n5") is native.open_native_n5
    assert bio.constructor_for_format("ZARR") is native.open_native_zarr
    assert bio.constructor_for_format("hdf5") is hdf5.open_native_hdf5
    assert bio.constructor_for_format("HDF5") is hdf5.open_native_hdf5


@pytest.mark.parametrize("call", [bio.constructor_for_format, bio.is_writable_format])
@pytest.mark.parametrize("name", ["tiff", "h5", "", "zarr3"])
def test_unknown_format_error(call, name):
    with pytest.raises(ValueError, match=r"^Unknown or unavailable format") as info:
        call(name)
    for fmt in ("'zarr'", "'n5'", "'hdf5'"):
        assert fmt in str(info.value)


def test_register_format_and_open_through_it(isolated_registry, tmp_path):
    calls = []

    def open_npy(path, mode, **kwargs):
        calls.append((path, mode, kwargs))
        return np.load(path, **kwargs)

    bio.register_format("NPY", ["NPY", ".npz"], open_npy)
    assert "npy" in bio.supported_formats()
    assert {".npy", ".npz"} <= set(bio.supported_extensions())
    assert bio.format_for_extension(".npy") == "npy"
    assert bio.constructor_for_format("npy") is open_npy
    assert not bio.is_writable_format("npy")

    np.save(tmp_path / "x.npy", data())
    loaded = bio.open_file(tmp_path / "x.npy", mmap_mode="r")
    np.testing.assert_array_equal(loaded, data())
    assert calls == [(str(tmp_path / "x.npy"), "r", {"mmap_mode": "r"})]

    array, key, fmt = bio.open_array(tmp_path / "x.npy")
    assert (key, fmt) == ("", "npy")
    np.testing.assert_array_equal(array, data())


def test_read_only_format_rejects_write_modes_up_front(isolated_registry, tmp_path):
    def must_not_be_called(path, mode, **kwargs):
        raise AssertionError("constructor called")

    bio.register_format("readonly", [".ro"], must_not_be_called)
    for mode in ("r+", "a", "w"):
        with pytest.raises(ValueError, match="read-only"):
            bio.open_file(tmp_path / "x.ro", mode=mode)


def test_register_format_replaces_a_format(isolated_registry):
    def first(path, mode):
        return "first"

    def second(path, mode):
        return "second"

    bio.register_format("custom", [".c1", ".c2"], first)
    bio.register_format("custom", ".c3", second, writable=True)
    assert bio.constructor_for_format("custom") is second
    assert bio.is_writable_format("custom")
    assert bio.format_for_extension(".c1") is None
    assert bio.format_for_extension(".c3") == "custom"
    assert bio.supported_formats().count("custom") == 1


def test_register_format_swaps_a_builtin_reader(isolated_registry, tmp_path):
    write_h5(tmp_path / "c.h5", {"data": data()})

    def my_hdf5(path, mode, **kwargs):  # h5py instead of the native reader
        return h5py.File(path, mode, **kwargs)

    bio.register_format("hdf5", [".h5", ".hdf", ".hdf5"], my_hdf5, writable=True)
    assert bio.constructor_for_format("hdf5") is my_hdf5
    array, key, fmt = bio.open_array(tmp_path / "c.h5")
    assert (key, fmt) == ("data", "hdf5")


def test_register_format_extension_conflict(isolated_registry):
    with pytest.raises(ValueError, match=r"'\.h5'.*'hdf5'"):
        bio.register_format("other", [".other", ".h5"], hdf5.open_native_hdf5)
    # nothing registered on failure
    assert "other" not in bio.supported_formats()
    assert bio.format_for_extension(".other") is None


def test_register_format_rejects_bad_arguments(isolated_registry):
    with pytest.raises(TypeError, match="callable"):
        bio.register_format("bad", [".bad"], "not a function")
    with pytest.raises(ValueError, match="non-empty"):
        bio.register_format("", [".bad"], native.open_native_zarr)
    with pytest.raises(TypeError, match="extension"):
        bio.register_format("bad", [5], native.open_native_zarr)


def test_hdf5_needs_no_h5py(tmp_path):
    """HDF5 is native: it reads and writes with h5py unimportable."""
    code = (
        "import sys; sys.modules['h5py'] = None\n"
        "import bioimage_py.io as io\n"
        "from bioimage_py import create_array\n"
        "create_array(sys.argv[1], 'g/x', shape=(4, 6), dtype='uint16')[1:3, 2:5] = 7\n"
        "f = io.open_file(sys.argv[1])\n"
        "print(type(f).__name__, f.list_arrays(), int(f['g/x'][...].sum()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "c.h5")],
        capture_output=True, text=True, check=True,
    ).stdout
    assert out.split() == ["Hdf5File", "['g/x']", "42"]


def test_missing_library_fails_at_open_time_naming_the_package(monkeypatch, tmp_path):
    path = tmp_path / "c.mrc"
    path.write_bytes(b"\0" * 1024)
    monkeypatch.setitem(sys.modules, "mrcfile", None)
    with pytest.raises(ImportError, match=r"mrc files requires.*'mrcfile'.*install mrcfile"):
        bio.open_file(path)


def test_zarr_and_n5_need_neither_zarr_python_nor_z5py(tmp_path):
    """The native formats read and write with zarr-python and z5py unimportable."""
    code = (
        "import sys; sys.modules['zarr'] = None; sys.modules['z5py'] = None\n"
        "import numpy as np\n"
        "import bioimage_py as bp\n"
        "from bioimage_py import create_array\n"
        "for name in ('c.zarr', 'c.n5'):\n"
        "    path = sys.argv[1] + '/' + name\n"
        "    create_array(path, 'g/x', shape=(4, 6), chunks=(2, 3), dtype='uint16')[...] = 7\n"
        "    src = bp.open_source(path, mode='r+')\n"
        "    src[1, :] = 3\n"
        "    print(name, src.internal_path, int(bp.open_source(path)[...].sum()))\n"
        "assert 'zarr' not in sys.modules or sys.modules['zarr'] is None\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout
    assert out.split("\n")[:2] == ["c.zarr g/x 144", "c.n5 g/x 144"]


# ---------------------------------------------------------------------------------------------
# open_file


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_open_file_zarr_group(tmp_path, zarr_format):
    path = write_zarr(tmp_path / "c.zarr", {"a/b": data()}, zarr_format)
    root = bio.open_file(path)
    assert isinstance(root, NativeContainer)
    assert (root.path, root.format, root.mode) == (str(path), "zarr", "r")
    assert root.list_arrays() == ["a/b"]
    assert "a" in root and "a/b" in root and "nope" not in root
    array = root["a/b"]
    assert isinstance(array, NativeArray)
    assert array.read_only
    np.testing.assert_array_equal(array[...], data())
    group = root["a"]
    assert isinstance(group, NativeContainer)
    np.testing.assert_array_equal(group["b"][...], data())
    with pytest.raises(KeyError):
        root["nope"]


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_open_file_zarr_root_array(tmp_path, zarr_format):
    path = write_zarr(tmp_path / "c.zr", {"": data()}, zarr_format)
    root = bio.open_file(path)
    assert isinstance(root, NativeArray)
    assert (root.format, root.path, root.read_only) == ("zarr", str(path), True)
    np.testing.assert_array_equal(root[...], data())


def test_open_file_n5(tmp_path):
    path = write_n5(tmp_path / "c.n5", {"a/b": data()})
    with bio.open_file(path) as f:
        assert isinstance(f, NativeContainer)
        assert f.format == "n5"
        assert f.list_arrays() == ["a/b"]
        assert isinstance(f["a/b"], NativeArray)
        assert f["a/b"].chunks == (2, 3)
        np.testing.assert_array_equal(f["a/b"][...], data())


def test_open_file_n5_root_dataset(tmp_path):
    path = tmp_path / "c.n5"
    with z5py.File(str(path), "w") as f:
        f.create_dataset("x", data=data(), chunks=(2, 3))
    # an N5 container whose root is a dataset: move the dataset's attributes up to the root
    (path / "attributes.json").write_text((path / "x" / "attributes.json").read_text())
    for block in (path / "x").iterdir():
        block.rename(path / block.name)
    root = bio.open_file(path)
    assert isinstance(root, NativeArray)
    np.testing.assert_array_equal(root[...], data())


@pytest.mark.parametrize("name", ["c.h5", "c.hdf", "c.HDF5"])
def test_open_file_hdf5(tmp_path, name):
    path = write_h5(tmp_path / name, {"a/b": data()})
    with bio.open_file(path) as f:
        assert isinstance(f, Hdf5File)
        assert f.mode == "r"
        assert f.list_arrays() == ["a/b"] and f["a"].list_arrays() == ["b"]
        assert "a/b" in f and "a/c" not in f
        np.testing.assert_array_equal(f["a/b"][...], data())
        np.testing.assert_array_equal(f["a"]["b"][...], data())
        assert f["a/b"].read_only
        with pytest.raises(KeyError):
            f["a/c"]


def test_open_file_ext_and_format_override_the_path(tmp_path):
    write_h5(tmp_path / "volume.bin", {"x": data()})
    with bio.open_file(tmp_path / "volume.bin", ext=".h5") as f:
        assert isinstance(f, Hdf5File)
    write_n5(tmp_path / "container", {"x": data()})
    with bio.open_file(tmp_path / "container", format="n5") as f:
        assert isinstance(f, NativeContainer) and f.format == "n5"
        np.testing.assert_array_equal(f["x"][...], data())
    write_zarr(tmp_path / "store", {"x": data()}, 3)
    f = bio.open_file(tmp_path / "store", ext="zr")
    assert isinstance(f, NativeContainer) and f.format == "zarr"
    # format beats ext
    with bio.open_file(tmp_path / "volume.bin", ext=".zarr", format="HDF5") as f:
        assert isinstance(f, Hdf5File)


def test_open_file_passes_kwargs(tmp_path):
    path = write_h5(tmp_path / "c.h5", {"x": data()})
    with bio.open_file(path, chunk_cache_bytes=0, missing_chunks="error") as f:
        assert f["x"].chunk_cache_bytes == 0 and f["x"].missing_chunks == "error"
    with pytest.raises(TypeError, match="driver"):
        bio.open_file(path, driver="core")


@pytest.mark.parametrize("mode", ["r", "r+", "a", "w"])
def test_open_file_unknown_format_fails_before_touching_the_disk(tmp_path, mode):
    with pytest.raises(ValueError, match=r"^Unknown or unavailable format 'tiff'.*'zarr'"):
        bio.open_file(tmp_path / "c.h5", mode=mode, format="tiff")
    with pytest.raises(ValueError, match=r"^Could not infer.*'\.xyz'.*'\.zarr'"):
        bio.open_file(tmp_path / "c.xyz", mode=mode)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("mode", ["rw", "w-", "x", "", "R"])
def test_open_file_invalid_mode(tmp_path, mode):
    with pytest.raises(ValueError, match=r"Invalid mode.*'r', 'r\+', 'a', 'w'$"):
        bio.open_file(tmp_path / "c.h5", mode=mode)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["c.zarr", "c.n5", "c.h5"])
@pytest.mark.parametrize("mode", ["r", "r+"])
def test_open_file_missing_file(tmp_path, name, mode):
    path = tmp_path / name
    with pytest.raises(FileNotFoundError, match=str(path)) as info:
        bio.open_file(path, mode=mode)
    assert info.value.filename == str(path)
    assert not path.exists()


def test_open_file_hdf5_creating_modes(tmp_path):
    for mode in ("a", "w"):
        path = tmp_path / f"{mode}.h5"
        assert bio.open_file(path, mode=mode).list_arrays() == []
        with h5py.File(path, "r") as f:  # a valid, empty HDF5 file
            assert list(f) == []
    path = write_h5(tmp_path / "data.h5", {"x": data()})
    assert bio.open_file(path, mode="a").list_arrays() == ["x"]
    assert bio.open_file(path, mode="w").list_arrays() == []


def is_peer_root_group(path: Path, fmt: str) -> bool:
    """Whether zarr-python / z5py open ``path`` as an (empty) root group."""
    if fmt == "zarr":
        return isinstance(zarr.open(str(path), mode="r"), zarr.Group)
    with z5py.File(str(path), "r") as f:
        return isinstance(f, z5py.File) and list(f.keys()) == []


@pytest.mark.parametrize(("name", "fmt"), [("c.zarr", "zarr"), ("c.n5", "n5")])
@pytest.mark.parametrize("mode", ["a", "w"])
def test_open_file_creating_modes_write_a_root_group(tmp_path, name, fmt, mode):
    path = tmp_path / name
    f = bio.open_file(path, mode=mode)
    assert isinstance(f, NativeContainer) and f.mode == mode
    assert f.list_arrays() == []
    assert is_peer_root_group(path, fmt)
    # the new container takes arrays, and the peer library sees them
    bioimage_py.create_array(path, "g/x", shape=(4, 6), chunks=(2, 3), dtype="uint16")[...] = data()
    np.testing.assert_array_equal(read_back(path, fmt, "g/x"), data())


@pytest.mark.parametrize(("writer", "name", "fmt"), WRITERS[:3])
def test_open_file_mode_a_keeps_what_exists(tmp_path, writer, name, fmt):
    path = write(writer, tmp_path / name, {"raw": data(), "seg/labels": data(offset=1)})
    f = bio.open_file(path, mode="a")
    assert f.list_arrays() == ["raw", "seg/labels"]
    assert not f["raw"].read_only
    np.testing.assert_array_equal(read_back(path, fmt, "seg/labels"), data(offset=1))


@pytest.mark.parametrize(("writer", "name", "fmt"), WRITERS[:3])
def test_open_file_mode_w_wipes_the_container(tmp_path, writer, name, fmt):
    path = write(writer, tmp_path / name, {"raw": data(), "seg/labels": data(offset=1)})
    f = bio.open_file(path, mode="w")
    assert isinstance(f, NativeContainer)
    assert f.list_arrays() == []
    assert is_peer_root_group(path, fmt)
    assert not (path / "raw").exists() and not (path / "seg").exists()


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_open_file_mode_w_wipes_a_root_array(tmp_path, zarr_format):
    path = write_zarr(tmp_path / "c.zarr", {"": data()}, zarr_format)
    f = bio.open_file(path, mode="w")
    assert isinstance(f, NativeContainer)
    assert is_peer_root_group(path, "zarr")


@pytest.mark.parametrize("name", ["c.zarr", "c.n5"])
def test_open_file_mode_w_refuses_what_is_not_a_container(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "precious.txt").write_text("not a container")
    with pytest.raises(ValueError, match="refusing to overwrite.*not a"):
        bio.open_file(folder, mode="w")
    assert (folder / "precious.txt").read_text() == "not a container"
    plain = tmp_path / ("file-" + name)
    plain.write_text("a file")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        bio.open_file(plain, mode="w")
    assert plain.read_text() == "a file"


@pytest.mark.parametrize("name", ["c.zarr", "c.n5"])
def test_open_file_mode_w_empty_folder_becomes_a_container(tmp_path, name):
    (tmp_path / name).mkdir()
    f = bio.open_file(tmp_path / name, mode="w")
    assert isinstance(f, NativeContainer)
    assert is_peer_root_group(tmp_path / name, "zarr" if name.endswith("zarr") else "n5")


@pytest.mark.parametrize("name", ["c.zarr", "c.n5"])
def test_open_file_mode_w_bad_option_leaves_the_container_alone(tmp_path, name):
    path = tmp_path / name
    bioimage_py.create_array(path, "x", shape=(4, 6), chunks=(2, 3), dtype="uint16")[...] = data()
    with pytest.raises(TypeError):
        bio.open_file(path, mode="w", shape=(3, 5), dtype="float32")
    np.testing.assert_array_equal(read_back(path, "zarr" if name.endswith("zarr") else "n5",
                                            "x"), data())


@pytest.mark.parametrize("name", ["c.zarr", "c.n5"])
def test_open_file_passes_native_options(tmp_path, name):
    path = tmp_path / name
    bioimage_py.create_array(path, "x", shape=(4, 6), chunks=(2, 3), dtype="uint16")[...] = data()
    f = bio.open_file(path, chunk_cache_bytes=1234, missing_chunks="error")
    assert f["x"].chunk_cache_bytes == 1234
    assert f["x"].missing_chunks == "error"
    default = bio.open_file(path)["x"]
    assert (default.chunk_cache_bytes, default.missing_chunks) == (
        bio_core.DEFAULT_CHUNK_CACHE_BYTES, "fill")
    with pytest.raises(ValueError, match="missing_chunks"):
        bio.open_file(path, missing_chunks="maybe")["x"]
    with pytest.raises(TypeError):
        bio.open_file(path, no_such_option=1)


def close(container) -> None:
    if hasattr(container, "close"):
        container.close()


# ---------------------------------------------------------------------------------------------
# open_array: default internal path


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_open_array_zarr_root_array(tmp_path, zarr_format):
    path = write_zarr(tmp_path / "c.zarr", {"": data()}, zarr_format)
    array, key, fmt = bio.open_array(path)
    assert isinstance(array, NativeArray)
    assert (key, fmt) == ("", "zarr")
    np.testing.assert_array_equal(array[...], data())
    for explicit in ("", "/"):
        assert bio.open_array(path, explicit)[1] == ""


@pytest.mark.parametrize(("writer", "name", "fmt"), WRITERS)
@pytest.mark.parametrize("key", ["data", "a/b/c"])
def test_open_array_single_array_anywhere_is_the_default(tmp_path, writer, name, fmt, key):
    path = write(writer, tmp_path / name, {key: data()})
    array, resolved, resolved_fmt = bio.open_array(path)
    assert (resolved, resolved_fmt) == (key, fmt)
    assert tuple(array.shape) == data().shape
    np.testing.assert_array_equal(array[...], data())


@pytest.mark.parametrize(("writer", "name", "fmt"), WRITERS)
def test_open_array_several_arrays_need_internal_path(tmp_path, writer, name, fmt):
    arrays = {"raw": data(), "seg/labels": data(offset=1), "seg/deep/er": data(offset=2)}
    path = write(writer, tmp_path / name, arrays)
    with pytest.raises(ValueError, match="internal_path") as info:
        bio.open_array(path)
    message = str(info.value)
    assert "3 arrays" in message
    for key in arrays:
        assert repr(key) in message
    assert "'seg'" not in message  # groups are not listed
    assert "'seg/deep'" not in message


@pytest.mark.parametrize(("writer", "name", "fmt"), WRITERS)
def test_open_array_container_without_arrays(tmp_path, writer, name, fmt):
    path = tmp_path / name
    if writer.startswith("zarr"):
        zarr.open_group(str(path), mode="w", zarr_format=int(writer[-1])).create_group("empty")
    elif writer == "n5":
        z5py.File(str(path), "w").create_group("empty")
    else:
        with h5py.File(path, "w") as f:
            f.create_group("empty")
    with pytest.raises(ValueError, match=r"no arrays; pass internal_path.*none"):
        bio.open_array(path)


# ---------------------------------------------------------------------------------------------
# open_array: explicit internal path


@pytest.mark.parametrize(("writer", "name", "fmt"), WRITERS)
def test_open_array_explicit_internal_path(tmp_path, writer, name, fmt):
    arrays = {"raw": data(), "seg/deep/labels": data(offset=7)}
    path = write(writer, tmp_path / name, arrays)
    for given, expected in [("raw", "raw"), ("/raw", "raw"), ("seg/deep/labels", "seg/deep/labels"),
                            ("/seg/deep/labels/", "seg/deep/labels")]:
        array, key, resolved_fmt = bio.open_array(path, given)
        assert (key, resolved_fmt) == (expected, fmt)
        np.testing.assert_array_equal(array[...], arrays[expected])


@pytest.mark.parametrize(("writer", "name", "fmt"), WRITERS)
@pytest.mark.parametrize("missing", ["nope", "seg/nope", "raw/below"])
def test_open_array_missing_internal_path(tmp_path, writer, name, fmt, missing):
    arrays = {"raw": data(), "seg/labels": data(offset=1)}
    path = write(writer, tmp_path / name, arrays)
    with pytest.raises(ValueError, match="does not exist") as info:
        bio.open_array(path, missing)
    message = str(info.value)
    assert repr(missing) in message and repr(str(path)) in message
    assert "'raw'" in message and "'seg/labels'" in message


@pytest.mark.parametrize(("writer", "name", "fmt"), WRITERS)
@pytest.mark.parametrize("group", ["seg", "", "/"])
def test_open_array_internal_path_naming_a_group(tmp_path, writer, name, fmt, group):
    # z5py makes intermediate N5 groups as bare folders: they are groups too.
    path = write(writer, tmp_path / name, {"seg/labels": data()})
    with pytest.raises(ValueError, match=r"is a group, not an array.*'seg/labels'"):
        bio.open_array(path, group)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_open_array_root_array_with_a_key(tmp_path, zarr_format):
    path = write_zarr(tmp_path / "c.zarr", {"": data()}, zarr_format)
    with pytest.raises(ValueError, match=r"'x' does not exist.*single array.*''"):
        bio.open_array(path, "x")


def test_open_array_rejects_non_string_internal_path(tmp_path):
    path = write_h5(tmp_path / "c.h5", {"data": data()})
    with pytest.raises(TypeError, match="internal_path"):
        bio.open_array(path, 0)


def test_open_array_many_arrays_listing_is_cut_short(tmp_path):
    path = write_h5(tmp_path / "c.h5", {f"a{i:03d}": data((2,)) for i in range(50)})
    with pytest.raises(ValueError, match=r"50 arrays.*'a000'.*and 30 more"):
        bio.open_array(path)


def test_open_array_closes_the_file_on_error(tmp_path):
    path = write_h5(tmp_path / "c.h5", {"a": data(), "b": data()})
    with pytest.raises(ValueError):
        bio.open_array(path)
    with pytest.raises(ValueError):
        bio.open_array(path, "nope")
    # a file still held open read-only by this process could not be truncated
    with h5py.File(path, "w"):
        pass


# ---------------------------------------------------------------------------------------------
# open_array: formats, files and modes


def test_open_array_format_overrides_the_extension(tmp_path):
    write_h5(tmp_path / "volume.bin", {"x": data()})
    array, key, fmt = bio.open_array(tmp_path / "volume.bin", format="HDF5")
    assert isinstance(array, NativeArray) and array.format == "hdf5"
    assert (key, fmt) == ("x", "hdf5")


def test_open_array_returns_native_arrays(tmp_path):
    for zarr_format in (2, 3):
        path = write_zarr(tmp_path / f"a{zarr_format}.zarr", {"x": data()}, zarr_format)
        array = bio.open_array(path)[0]
        assert isinstance(array, NativeArray) and array.format == "zarr"
    array = bio.open_array(write_n5(tmp_path / "a.n5", {"x": data()}))[0]
    assert isinstance(array, NativeArray) and array.format == "n5"
    array = bio.open_array(write_h5(tmp_path / "a.h5", {"x": data()}))[0]
    assert isinstance(array, NativeArray) and array.format == "hdf5"


@pytest.mark.parametrize("mode", ["a", "w", "r+"])
def test_open_array_unknown_format_fails_up_front(tmp_path, mode):
    with pytest.raises(ValueError, match=r"^Unknown or unavailable format 'xyz'.*'hdf5'"):
        bio.open_array(tmp_path / "c.h5", format="xyz", mode=mode)
    with pytest.raises(ValueError, match=r"^Could not infer"):
        bio.open_array(tmp_path / "c.xyz", mode=mode)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["c.zarr", "c.n5", "c.h5"])
@pytest.mark.parametrize("mode", ["r", "r+"])
def test_open_array_missing_file(tmp_path, name, mode):
    path = tmp_path / name
    with pytest.raises(FileNotFoundError, match=str(path)):
        bio.open_array(path, "data", mode=mode)
    assert not path.exists()


@pytest.mark.parametrize(("writer", "name", "fmt"), WRITERS)
def test_open_array_mode_r_is_read_only(tmp_path, writer, name, fmt):
    path = write(writer, tmp_path / name, {"data": data()})
    array, _, _ = bio.open_array(path)
    if fmt in ("zarr", "hdf5"):
        assert array.read_only
    with pytest.raises(Exception):
        array[0, 0] = 42
    np.testing.assert_array_equal(read_back(path, fmt, "data"), data())


@pytest.mark.parametrize(("writer", "name", "fmt"), WRITERS)
@pytest.mark.parametrize("mode", ["r+", "a"])
def test_open_array_writes_are_visible_to_the_peer_library(tmp_path, writer, name, fmt, mode):
    path = write(writer, tmp_path / name, {"raw": data(), "seg/labels": data(offset=3)})
    array, key, _ = bio.open_array(path, "seg/labels", mode=mode)
    array[1:3, 2:5] = 999
    expected = data(offset=3)
    expected[1:3, 2:5] = 999
    np.testing.assert_array_equal(read_back(path, fmt, key), expected)
    np.testing.assert_array_equal(read_back(path, fmt, "raw"), data())


@pytest.mark.parametrize(("writer", "name", "fmt"), WRITERS)
def test_open_array_mode_w_truncates(tmp_path, writer, name, fmt):
    """Mode "w" empties the container (as h5py, zarr-python and z5py do); arrays are then made
    with ``create_array``, which takes shape and dtype (``open_array`` does not)."""
    path = write(writer, tmp_path / name, {"data": data()})
    with pytest.raises(ValueError, match="no arrays"):
        bio.open_array(path, mode="w")
    with pytest.raises(ValueError, match="'data' does not exist"):
        bio.open_array(path, "data")
    if fmt == "hdf5":
        return
    bioimage_py.create_array(path, "new", shape=(3, 5), dtype="float32", chunks=(2, 2),
                     fill_value=1.5 if fmt == "zarr" else 0)
    array, key, resolved = bio.open_array(path, mode="r+")
    assert (key, resolved) == ("new", fmt)
    assert isinstance(array, NativeArray) and array.dtype == np.float32
    if fmt == "zarr":
        np.testing.assert_array_equal(array[...], np.full((3, 5), 1.5, "float32"))
    array[...] = 2.5
    np.testing.assert_array_equal(read_back(path, fmt, "new"), np.full((3, 5), 2.5, "float32"))


def test_open_array_mode_w_truncates_like_h5py(tmp_path):
    path = write_h5(tmp_path / "c.h5", {"data": data()})
    with pytest.raises(ValueError, match="no arrays"):
        bio.open_array(path, mode="w")
    with h5py.File(path, "r") as f:
        assert list(f.keys()) == []


def test_open_array_passes_kwargs_to_the_open_call(tmp_path):
    path = write_h5(tmp_path / "c.h5", {"data": data()})
    array, key, fmt = bio.open_array(path, chunk_cache_bytes=1024, missing_chunks="error")
    assert (array.chunk_cache_bytes, array.missing_chunks) == (1024, "error")
    np.testing.assert_array_equal(array[...], data())


def test_open_array_accepts_pathlike_and_string(tmp_path):
    path = write_n5(tmp_path / "c.n5", {"x": data()})
    for given in (path, str(path), str(path) + "/"):
        _, key, fmt = bio.open_array(given)
        assert (key, fmt) == ("x", "n5")
