"""bioimage_py.sources: Source, SourceSpec, ArraySource, FileSource, as_source, from_spec, pickling.

Real zarr / n5 / HDF5 files written and read by zarr-python, z5py and h5py under ``tmp_path``.
Read/write equality with numpy over random indices lives in ``test_sources_properties.py``.
"""
from __future__ import annotations

import json
import multiprocessing
import pickle
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import cloudpickle
import h5py
import numpy as np
import pytest
import z5py
import zarr

import bioimage_py.sources as sources
from bioimage_py.errors import IndexOutOfRangeError
from bioimage_py.sources import (
    ArraySource,
    FileSource,
    Source,
    SourceSpec,
    as_source,
    from_spec,
    open_source,
    register_source,
)
from bioimage_py.sources import dispatch

SPEC_EXPORTS = {
    "ArraySource", "Source", "SourceSpec", "SourceLike", "as_source", "from_spec",
    "register_source", "FileSource", "open_source", "CloudVolumeSource", "open_cloudvolume",
    "WebKnossosSource", "open_webknossos",
}
INDEX_TYPE_MESSAGE = r"only ints, slices .*\.\.\..* or tuples of them"


# --- helpers -----------------------------------------------------------------------------------


def data_3d() -> np.ndarray:
    return np.arange(4 * 5 * 6, dtype="uint16").reshape(4, 5, 6)


def zarr_array(root: Path, zarr_format: int = 3, mode: str = "w", **kwargs: Any) -> zarr.Array:
    """A zarr array at ``group/data`` inside ``root/data.zarr``, filled with ``data_3d()``."""
    store = root / f"v{zarr_format}.zarr"
    group = zarr.open_group(store, mode="w", zarr_format=zarr_format)
    array = group.create_array("group/data", shape=(4, 5, 6), chunks=(2, 3, 3), dtype="uint16",
                               **kwargs)
    array[...] = data_3d()
    if mode == "r":
        return zarr.open_array(store, path="group/data", mode="r")
    return array


def n5_dataset(root: Path, mode: str = "a") -> Any:
    with_data = z5py.File(str(root / "data.n5"), mode="a")
    if "group/data" not in with_data:
        with_data.create_dataset("group/data", data=data_3d(), chunks=(2, 3, 3))
    return z5py.File(str(root / "data.n5"), mode=mode)["group/data"]


def write_container(root: Path, kind: str) -> Path:
    """Write ``data_3d()`` at ``group/data`` in a container of ``kind``; return its path."""
    if kind == "zarr":
        zarr_array(root)
        return root / "v3.zarr"
    if kind == "n5":
        n5_dataset(root)
        return root / "data.n5"
    h5_dataset(root).file.close()
    return root / "data.h5"


def h5_dataset(root: Path, mode: str = "r") -> h5py.Dataset:
    path = root / "data.h5"
    if not path.exists():
        with h5py.File(path, "w") as f:
            f.create_dataset("group/data", data=data_3d(), chunks=(2, 3, 3))
    return h5py.File(path, mode)["group/data"]


class DuckArray:
    """A minimal duck-typed array (shape, dtype, __getitem__) that returns lists of lists."""

    def __init__(self, data: np.ndarray) -> None:
        self._data = data
        self.shape = data.shape
        self.dtype = data.dtype

    def __getitem__(self, index: Any) -> Any:
        return self._data[index].tolist()


class WritableDuckArray(DuckArray):
    def __setitem__(self, index: Any, value: Any) -> None:
        self._data[index] = value


class ListSource(Source):
    """The smallest Source subclass: shape, dtype, _getitem and to_spec only."""

    def __init__(self, data: np.ndarray) -> None:
        self._data = data

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        assert isinstance(roi, tuple) and len(roi) == self._data.ndim
        assert all(isinstance(s, slice) and s.step is None for s in roi)
        return self._data[roi].copy()

    def to_spec(self) -> SourceSpec:
        raise ValueError("in memory")


# --- package -----------------------------------------------------------------------------------


def test_exports_the_spec_names():
    lazy = {"CloudVolumeSource", "open_cloudvolume", "WebKnossosSource", "open_webknossos"}
    eager = SPEC_EXPORTS - lazy
    # The lazy names are exported once their modules exist (issue 5); `import *` must work now.
    assert eager <= set(sources.__all__) <= SPEC_EXPORTS | {"create_array"}
    namespace: dict = {}
    exec("from bioimage_py.sources import *", namespace)
    assert eager <= set(namespace)
    for name in eager:
        assert hasattr(sources, name), name


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        sources.no_such_name  # noqa: B018


def test_lazy_names_come_from_their_module(monkeypatch):
    fake = types.ModuleType("bioimage_py.sources.cloudvolume_source")
    fake.CloudVolumeSource = type("CloudVolumeSource", (), {})
    fake.open_cloudvolume = lambda *args, **kwargs: None
    monkeypatch.setitem(sys.modules, "bioimage_py.sources.cloudvolume_source", fake)
    cached = vars(sources).pop("CloudVolumeSource", None)
    try:
        assert sources.CloudVolumeSource is fake.CloudVolumeSource
    finally:  # neither keep the stand-in cached nor lose a real one
        vars(sources).pop("CloudVolumeSource", None)
        if cached is not None:
            vars(sources)["CloudVolumeSource"] = cached


def test_importing_sources_does_not_import_heavy_libraries():
    code = (
        "import sys, bioimage_py.sources; "
        "print(sorted(m for m in ('zarr', 'z5py', 'h5py', 'cloudvolume', 'webknossos') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- SourceSpec --------------------------------------------------------------------------------


def test_spec_defaults_and_fresh_params():
    a, b = SourceSpec("zarr"), SourceSpec("zarr")
    assert (a.path, a.internal_path, a.params, a.wrapped) == (None, None, {}, None)
    a.params["x"] = 1
    assert b.params == {}


def test_spec_path_objects_become_strings(tmp_path):
    assert SourceSpec("zarr", path=tmp_path).path == str(tmp_path)


def test_spec_repr_is_readable():
    text = repr(SourceSpec("zarr", path="/data/a.zarr", internal_path="raw"))
    assert "kind='zarr'" in text and "path='/data/a.zarr'" in text and "internal_path='raw'" in text


def nested_spec() -> SourceSpec:
    inner = SourceSpec("file", "/data/a.h5", "raw", {"format": "hdf5", "mode": "r"})
    middle = SourceSpec("wrapper", params={"class": "Threshold", "threshold": 0.5}, wrapped=inner)
    return SourceSpec("wrapper", params={"class": "Pad", "width": [[1, 2], [0, 0]]}, wrapped=middle)


def test_spec_dict_round_trip():
    spec = nested_spec()
    as_dict = spec.to_dict()
    assert as_dict["wrapped"]["wrapped"]["path"] == "/data/a.h5"
    assert SourceSpec.from_dict(as_dict) == spec


def test_spec_json_round_trip():
    spec = nested_spec()
    text = spec.to_json()
    assert json.loads(text)["wrapped"]["params"]["threshold"] == 0.5
    assert SourceSpec.from_json(text) == spec


def test_spec_to_json_rejects_non_json_params():
    with pytest.raises(TypeError):
        SourceSpec("zarr", params={"array": np.zeros(2)}).to_json()


def test_spec_from_dict_rejects_unknown_fields_and_missing_kind():
    with pytest.raises(ValueError, match="colour"):
        SourceSpec.from_dict({"kind": "zarr", "colour": "red"})
    with pytest.raises(ValueError, match="kind"):
        SourceSpec.from_dict({"path": "x"})


def test_spec_pickles():
    spec = nested_spec()
    assert pickle.loads(pickle.dumps(spec)) == spec


# --- Source base class -------------------------------------------------------------------------


def test_minimal_subclass_gets_numpy_indexing():
    data = data_3d()
    src = ListSource(data)
    np.testing.assert_array_equal(src[1:3, ..., -1], data[1:3, ..., -1])
    assert src[1, 2, 3] == data[1, 2, 3] and isinstance(src[1, 2, 3], np.uint16)
    assert (src.ndim, src.size, len(src)) == (3, data.size, 4)
    assert (src.chunks, src.shards, src.writable) == (None, None, True)


def test_iterates_over_the_first_axis_like_numpy():
    data = data_3d()
    planes = list(ListSource(data))
    assert len(planes) == 4
    for plane, expected in zip(planes, data, strict=True):
        np.testing.assert_array_equal(plane, expected)


def test_default_setitem_is_read_only():
    with pytest.raises(TypeError, match="read-only"):
        ListSource(data_3d())[0] = 1


def test_array_protocol_reads_everything():
    data = data_3d()
    src = ListSource(data)
    np.testing.assert_array_equal(np.asarray(src), data)
    as_float = np.asarray(src, dtype="float32")
    assert as_float.dtype == np.float32
    np.testing.assert_array_equal(as_float, data)
    assert np.array(src, copy=True) is not data


def test_len_of_0d_source_is_a_type_error():
    with pytest.raises(TypeError):
        len(as_source(np.array(1.0)))


def test_repr_names_class_shape_and_dtype():
    text = repr(as_source(np.zeros((2, 3), dtype="uint8")))
    assert text.startswith("ArraySource(") and "(2, 3)" in text and "uint8" in text


def test_cannot_instantiate_source():
    with pytest.raises(TypeError):
        Source()  # type: ignore[abstract]


# --- index errors (reads and writes; nothing written on error) ----------------------------------


@pytest.fixture(params=["numpy", "zarr", "n5"])
def any_source(request, tmp_path):
    """A writable source of ``data_3d()`` of each backend kind."""
    if request.param == "numpy":
        return as_source(data_3d())
    if request.param == "zarr":
        return as_source(zarr_array(tmp_path))
    return as_source(n5_dataset(tmp_path))


def assert_untouched(src: Source) -> None:
    np.testing.assert_array_equal(src[...], data_3d())


@pytest.mark.parametrize("index", [4, -5, (0, 5), (slice(None), slice(None), 6), (..., -7)])
def test_out_of_range_integer(any_source, index):
    for action in (lambda: any_source[index], lambda: any_source.__setitem__(index, 0)):
        with pytest.raises(ValueError, match="out of range") as info:
            action()
        assert isinstance(info.value, IndexError)
        assert isinstance(info.value, IndexOutOfRangeError)
    assert_untouched(any_source)


@pytest.mark.parametrize("index", [slice(None, None, 2), (0, slice(4, 0, -1)), slice(0, 3, 0)])
def test_step_other_than_one(any_source, index):
    with pytest.raises(ValueError, match="step"):
        any_source[index]
    with pytest.raises(ValueError, match="step"):
        any_source[index] = 0
    assert_untouched(any_source)


@pytest.mark.parametrize(
    "index",
    [[0, 1], np.array([0, 1]), np.ones((4, 5, 6), dtype=bool), None, (0, None), 1.0, "a", True,
     np.bool_(True)],
    ids=["list", "array", "mask", "None", "None-in-tuple", "float", "str", "bool", "np.bool_"],
)
def test_invalid_index_types(any_source, index):
    with pytest.raises(TypeError, match=INDEX_TYPE_MESSAGE):
        any_source[index]
    with pytest.raises(TypeError, match=INDEX_TYPE_MESSAGE):
        any_source[index] = 0
    assert_untouched(any_source)


def test_too_many_indices(any_source):
    with pytest.raises(TypeError):
        any_source[0, 0, 0, 0]
    with pytest.raises(TypeError):
        any_source[0, 0, 0, 0] = 1
    assert_untouched(any_source)


def test_two_ellipses(any_source):
    with pytest.raises(ValueError):
        any_source[..., 0, ...]
    with pytest.raises(ValueError):
        any_source[..., 0, ...] = 1
    assert_untouched(any_source)


def test_numpy_integer_indices(any_source):
    expected = data_3d()[np.int64(1), np.uint8(2)]
    np.testing.assert_array_equal(any_source[np.int64(1), np.uint8(2)], expected)
    value = any_source[np.int32(-1), np.int16(0), np.intp(5)]
    assert value == data_3d()[-1, 0, 5] and isinstance(value, np.uint16)


def test_unbroadcastable_value_names_both_shapes(any_source):
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 5\)"):
        any_source[1:3, :, 0] = np.zeros(3)
    with pytest.raises(ValueError, match=r"\(2,\).*\(\)"):
        any_source[0, 0, 0] = [1, 2]
    assert_untouched(any_source)


def test_values_are_cast_as_numpy_assignment_casts(any_source):
    with pytest.raises(OverflowError):  # numpy: a Python int out of range of uint16
        any_source[0, 0, 0] = 70000
    assert_untouched(any_source)
    any_source[0, 0, 0] = 2.9  # floats truncate
    any_source[0, 0, 1:2] = np.array([70000])  # arrays cast unsafely (wrap around)
    assert any_source[0, 0, 0] == 2 and any_source[0, 0, 1] == np.uint16(70000 % 65536)


def test_scalar_write_broadcasts_and_integer_axes_reinserted(any_source):
    expected = data_3d()
    any_source[1:3, 2] = 9
    expected[1:3, 2] = 9
    any_source[..., 4] = np.arange(20).reshape(4, 5)
    expected[..., 4] = np.arange(20).reshape(4, 5)
    any_source[0, :, 0] = np.ones((1, 5))  # numpy drops leading length-1 axes of the value
    expected[0, :, 0] = np.ones((1, 5))
    np.testing.assert_array_equal(any_source[...], expected)


# --- ArraySource -------------------------------------------------------------------------------


def test_numpy_source_properties_and_view():
    data = data_3d()
    src = ArraySource(data)
    assert src.array is data
    assert (src.shape, src.dtype, src.chunks, src.shards, src.writable) == (
        (4, 5, 6), np.dtype("uint16"), None, None, True)
    view = src[1:3]
    assert np.shares_memory(view, data)


def test_numpy_source_to_spec_explains_local_only():
    with pytest.raises(ValueError, match="numpy arrays.*local execution") as info:
        ArraySource(data_3d()).to_spec()
    assert "zarr or n5" in str(info.value)


def test_read_only_numpy_array():
    data = data_3d()
    data.flags.writeable = False
    src = as_source(data)
    assert not src.writable
    with pytest.raises(TypeError, match="read-only"):
        src[0] = 1


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_source_in_group(tmp_path, zarr_format):
    array = zarr_array(tmp_path, zarr_format)
    src = as_source(array)
    assert type(src) is ArraySource and src.array is array
    assert (src.shape, src.dtype, src.chunks, src.shards, src.writable) == (
        (4, 5, 6), np.dtype("uint16"), (2, 3, 3), None, True)
    spec = src.to_spec()
    assert spec == SourceSpec("zarr", str(tmp_path / f"v{zarr_format}.zarr"), "group/data")
    reopened = from_spec(spec)
    assert isinstance(reopened, ArraySource) and reopened.writable
    np.testing.assert_array_equal(reopened[...], data_3d())
    reopened[0, 0, 0] = 77
    assert array[0, 0, 0] == 77


def test_zarr_sharded_chunks_are_inner_chunks(tmp_path):
    array = zarr.create_array(tmp_path / "s.zarr", shape=(8, 8), chunks=(2, 4), shards=(4, 8),
                              dtype="f4")
    src = as_source(array)
    assert (src.chunks, src.shards) == ((2, 4), (4, 8))
    assert src.to_spec() == SourceSpec("zarr", str(tmp_path / "s.zarr"), "")


def test_zarr_store_path_pointing_at_the_array(tmp_path):
    zarr_array(tmp_path)
    array = zarr.open_array(tmp_path / "v3.zarr" / "group" / "data", mode="r+")
    spec = as_source(array).to_spec()
    assert spec.path == str(tmp_path / "v3.zarr" / "group" / "data") and spec.internal_path == ""
    np.testing.assert_array_equal(from_spec(spec)[...], data_3d())


def test_zarr_relative_path_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    array = zarr.create_array("rel.zarr", shape=(3,), dtype="i2")
    assert as_source(array).to_spec().path == str(tmp_path / "rel.zarr")


def test_read_only_zarr(tmp_path):
    src = as_source(zarr_array(tmp_path, mode="r"))
    assert not src.writable
    with pytest.raises(TypeError, match="read-only"):
        src[0] = 1
    assert from_spec(src.to_spec()).writable  # reopened read-write, as the SPEC says


def test_in_memory_zarr_has_no_spec():
    array = zarr.zeros((3, 3), dtype="i4")
    with pytest.raises(ValueError, match="MemoryStore"):
        as_source(array).to_spec()


@pytest.mark.parametrize("container", ["data.n5", "data.zarr"])
def test_z5py_source(tmp_path, container):
    f = z5py.File(str(tmp_path / container), mode="a")
    dataset = f.create_dataset("group/data", data=data_3d(), chunks=(2, 3, 3))
    src = as_source(dataset)
    assert type(src) is ArraySource and src.array is dataset
    assert (src.shape, src.dtype, src.chunks, src.shards, src.writable) == (
        (4, 5, 6), np.dtype("uint16"), (2, 3, 3), None, True)
    spec = src.to_spec()
    assert spec == SourceSpec("z5py", str(tmp_path / container), "group/data")
    reopened = ArraySource.reopen(spec)
    np.testing.assert_array_equal(reopened[...], data_3d())
    reopened[3, 4, 5] = 1
    assert dataset[3, 4, 5] == 1


def test_read_only_z5py(tmp_path):
    src = as_source(n5_dataset(tmp_path, mode="r"))
    assert not src.writable
    with pytest.raises(TypeError, match="read-only"):
        src[0] = 1


def test_duck_array_source():
    data = data_3d()
    src = as_source(DuckArray(data))
    assert type(src) is ArraySource and not src.writable
    got = src[1:3, 0]
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, data[1:3, 0])
    assert src[1, 2, 3] == data[1, 2, 3]
    with pytest.raises(TypeError, match="read-only"):
        src[0] = 1
    with pytest.raises(ValueError, match="zarr or n5"):
        src.to_spec()


def test_writable_duck_array_source():
    data = data_3d()
    src = as_source(WritableDuckArray(data))
    assert src.writable
    src[0, 0] = 5
    assert (data[0, 0] == 5).all()


def test_array_source_rejects_non_arrays(tmp_path):
    with pytest.raises(TypeError, match="shape, dtype and __getitem__"):
        ArraySource(object())
    with pytest.raises(TypeError, match="shape, dtype and __getitem__"):
        ArraySource(zarr.open_group(tmp_path / "g.zarr", mode="w"))


def test_array_source_reopen_rejects_other_kinds():
    with pytest.raises(ValueError, match="'file'"):
        ArraySource.reopen(SourceSpec("file", "/x.h5"))


# --- FileSource and open_source ----------------------------------------------------------------


def test_file_source_spec_records_open_arguments(tmp_path):
    array = zarr_array(tmp_path)
    src = FileSource(array, path=tmp_path / "v3.zarr", internal_path="group/data", format="zarr",
                     mode="a", open_kwargs={"cache": True})
    assert (src.format, src.mode, src.writable) == ("zarr", "a", False)
    assert src.to_spec() == SourceSpec(
        "file", str(tmp_path / "v3.zarr"), "group/data",
        {"format": "zarr", "mode": "a", "cache": True},
    )
    with pytest.raises(TypeError, match="read-only"):
        src[0] = 1
    assert_untouched(src)


@pytest.mark.parametrize("mode", ["r", "r+"])
@pytest.mark.parametrize("kind", ["zarr", "n5", "hdf5"])
def test_open_source_round_trip(tmp_path, kind, mode):
    path = write_container(tmp_path, kind)
    src = open_source(path, "group/data", mode=mode)
    assert isinstance(src, FileSource)
    assert (src.format, src.writable, src.internal_path) == (kind, mode != "r", "group/data")
    spec = src.to_spec()
    assert spec == SourceSpec("file", str(path), "group/data", {"format": kind, "mode": mode})
    del src  # h5py: one writer at a time
    reopened = from_spec(SourceSpec.from_json(spec.to_json()))
    assert isinstance(reopened, FileSource) and reopened.to_spec() == spec
    np.testing.assert_array_equal(reopened[...], data_3d())
    if mode == "r+":
        reopened[0, 0, 0] = 99
        assert reopened[0, 0, 0] == 99


def test_creating_mode_is_reopened_without_truncating(tmp_path):
    array = zarr_array(tmp_path)
    src = FileSource(array, path=tmp_path / "v3.zarr", internal_path="group/data", format="zarr",
                     mode="w", writable=True)
    assert src.to_spec().params["mode"] == "r+"
    reopened = from_spec(src.to_spec())
    np.testing.assert_array_equal(reopened[...], data_3d())


def test_open_source_unknown_format(tmp_path):
    with pytest.raises(ValueError):
        open_source(tmp_path / "x.unknown-ext")


# --- as_source ---------------------------------------------------------------------------------


def test_as_source_returns_sources_unchanged():
    src = as_source(data_3d())
    assert as_source(src) is src


@pytest.mark.parametrize("obj", ["data.zarr", b"data.zarr", Path("data.zarr")], ids=repr)
def test_as_source_rejects_paths(obj):
    with pytest.raises(TypeError, match="strings / file paths") as info:
        as_source(obj)
    assert "open" in str(info.value) and "handle" in str(info.value)


def test_as_source_rejects_non_arrays():
    with pytest.raises(TypeError, match="cannot make a Source"):
        as_source(object())
    with pytest.raises(TypeError):
        as_source([1, 2, 3])


@pytest.mark.parametrize("mode", ["r", "r+"])
def test_as_source_h5py_dataset(tmp_path, mode):
    dataset = h5_dataset(tmp_path, mode)
    src = as_source(dataset)
    assert type(src) is FileSource and src.array is dataset
    assert (src.format, src.mode, src.writable) == ("hdf5", mode, mode == "r+")
    assert src.chunks == (2, 3, 3)
    assert src.to_spec() == SourceSpec(
        "file", str(tmp_path / "data.h5"), "group/data", {"format": "hdf5", "mode": mode}
    )
    np.testing.assert_array_equal(src[1:3, 2], data_3d()[1:3, 2])
    if mode == "r":
        with pytest.raises(TypeError, match="read-only"):
            src[0] = 1
    else:
        src[0, 0] = 3
        assert (dataset[0, 0] == 3).all()
    dataset.file.close()


def test_as_source_dispatch_numpy_zarr_z5py(tmp_path):
    assert type(as_source(data_3d())) is ArraySource
    assert type(as_source(zarr_array(tmp_path))) is ArraySource
    assert type(as_source(n5_dataset(tmp_path))) is ArraySource


def test_as_source_cloudvolume_handle_is_detected_by_module(monkeypatch):
    """A CloudVolume handle goes to CloudVolumeSource, imported only then (stand-ins for both)."""
    built = []
    fake = types.ModuleType("bioimage_py.sources.cloudvolume_source")
    fake.CloudVolumeSource = lambda volume: built.append(volume) or ListSource(np.zeros(2))
    monkeypatch.setitem(sys.modules, "bioimage_py.sources.cloudvolume_source", fake)
    module = "cloudvolume.frontends.precomputed"
    handle_type = type("CloudVolumePrecomputed", (), {"__module__": module})
    handle = handle_type()
    assert isinstance(as_source(handle), ListSource)
    assert built == [handle]


@pytest.fixture
def no_converters(monkeypatch):
    monkeypatch.setattr(dispatch, "_CONVERTERS", [])


def test_registered_converters_run_in_order_before_builtins(no_converters):
    seen = []
    register_source(lambda obj: isinstance(obj, np.ndarray) and obj.ndim == 1,
                    lambda obj: seen.append("first") or ListSource(obj))
    register_source(lambda obj: isinstance(obj, np.ndarray),
                    lambda obj: seen.append("second") or ListSource(obj))
    assert isinstance(as_source(np.zeros(3)), ListSource)
    assert isinstance(as_source(np.zeros((3, 3))), ListSource)
    assert seen == ["first", "second"]


def test_registered_converter_for_a_new_type(no_converters):
    class Volume:
        pass

    register_source(lambda obj: isinstance(obj, Volume), lambda obj: ArraySource(np.ones(4)))
    assert as_source(Volume()).shape == (4,)


def test_converter_must_return_a_source(no_converters):
    register_source(lambda obj: isinstance(obj, list), lambda obj: obj)
    with pytest.raises(TypeError, match="not a Source"):
        as_source([1])


def test_source_like_alias():
    args = {getattr(a, "__forward_arg__", a) for a in sources.SourceLike.__args__}
    assert Source in args and np.ndarray in args
    assert "zarr.Array" in args and "z5py.Dataset" in args


# --- from_spec ---------------------------------------------------------------------------------


def test_from_spec_unknown_kind():
    with pytest.raises(ValueError, match="Unknown source kind 'tiff'"):
        from_spec(SourceSpec("tiff", "/x"))


def test_from_spec_accepts_dicts(tmp_path):
    zarr_array(tmp_path)
    spec = SourceSpec("zarr", str(tmp_path / "v3.zarr"), "group/data")
    np.testing.assert_array_equal(from_spec(spec.to_dict())[0], data_3d()[0])


@pytest.mark.parametrize(
    ("kind", "module", "attribute"),
    [
        ("cloudvolume", "bioimage_py.sources.cloudvolume_source", "CloudVolumeSource"),
        ("webknossos", "bioimage_py.sources.webknossos_source", "WebKnossosSource"),
    ],
)
def test_from_spec_reopens_remote_kinds_lazily(monkeypatch, kind, module, attribute):
    """The later modules are imported only when a spec of their kind arrives (stand-ins here)."""
    reopened = []
    fake = types.ModuleType(module)
    setattr(fake, attribute, types.SimpleNamespace(
        reopen=lambda spec: reopened.append(spec) or ListSource(np.zeros(1))))
    monkeypatch.setitem(sys.modules, module, fake)
    spec = SourceSpec(kind, "gs://bucket/layer", params={"mip": 0})
    assert isinstance(from_spec(spec), ListSource)
    assert reopened == [spec]


def test_from_spec_wrapper_goes_to_wrapper_module(monkeypatch):
    reopened = []
    fake = types.ModuleType("bioimage_py.wrapper.base")
    fake.wrapper_from_spec = lambda spec: reopened.append(spec) or ListSource(np.zeros(1))
    monkeypatch.setitem(sys.modules, "bioimage_py.wrapper.base", fake)
    spec = SourceSpec("wrapper", params={"class": "Threshold"}, wrapped=SourceSpec("zarr", "/x"))
    from_spec(spec)
    assert reopened == [spec]


# --- pickling ----------------------------------------------------------------------------------

PICKLERS = [pytest.param(pickle, id="pickle"), pytest.param(cloudpickle, id="cloudpickle")]


@pytest.mark.parametrize("pickler", PICKLERS)
@pytest.mark.parametrize("backend", ["zarr_v2", "zarr_v3", "n5", "hdf5"])
def test_reopenable_sources_pickle_as_their_spec(tmp_path, pickler, backend):
    src = {
        "zarr_v2": lambda: as_source(zarr_array(tmp_path, 2)),
        "zarr_v3": lambda: as_source(zarr_array(tmp_path, 3)),
        "n5": lambda: as_source(n5_dataset(tmp_path)),
        "hdf5": lambda: as_source(h5_dataset(tmp_path, "r")),
    }[backend]()
    assert src.__reduce_ex__(pickle.HIGHEST_PROTOCOL) == (from_spec, (src.to_spec(),))
    payload = pickler.dumps(src)
    assert len(payload) < 1000  # the spec, not the data
    loaded = pickle.loads(payload)
    assert type(loaded) is type(src) and loaded.array is not src.array
    assert loaded.to_spec() == src.to_spec()
    np.testing.assert_array_equal(loaded[...], data_3d())


@pytest.mark.parametrize("pickler", PICKLERS)
def test_numpy_sources_pickle_their_data(pickler):
    src = as_source(data_3d())
    loaded = pickle.loads(pickler.dumps(src))
    assert type(loaded) is ArraySource
    np.testing.assert_array_equal(loaded[...], data_3d())
    loaded[0] = 0  # a copy: the original is untouched
    assert_untouched(src)


@pytest.mark.parametrize("pickler", PICKLERS)
def test_source_subclass_without_spec_pickles_its_state(pickler):
    loaded = pickle.loads(pickler.dumps(ListSource(data_3d())))
    np.testing.assert_array_equal(loaded[...], data_3d())


# --- multiprocessing ---------------------------------------------------------------------------


def write_block(src: Source, block: int) -> int:
    """Worker: fill z-planes ``2 * block``, ``2 * block + 1`` (one chunk layer, so that no two
    workers write the same chunk) with ``block + 100``; return their sum read back."""
    src[2 * block : 2 * block + 2] = block + 100
    return int(src[2 * block : 2 * block + 2].sum())


def plane_sum(src: Source, block: int) -> int:
    return int(src[block].sum())


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_multiprocessing_writes_to_zarr(tmp_path, method):
    src = as_source(zarr_array(tmp_path))
    with multiprocessing.get_context(method).Pool(2) as pool:
        sums = pool.starmap(write_block, [(src, block) for block in range(2)])
    assert sums == [(block + 100) * 60 for block in range(2)]
    for block in range(2):
        assert (src[2 * block : 2 * block + 2] == block + 100).all()


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_multiprocessing_reads_numpy_and_n5(tmp_path, method):
    expected = [int(data_3d()[block].sum()) for block in range(4)]
    with multiprocessing.get_context(method).Pool(2) as pool:
        for src in (as_source(data_3d()), as_source(n5_dataset(tmp_path))):
            assert pool.starmap(plane_sum, [(src, block) for block in range(4)]) == expected


CHILD_WRITES_A_BLOCK = """
import sys
import cloudpickle
from bioimage_py.sources import from_spec

spec = cloudpickle.loads(sys.stdin.buffer.read())
src = from_spec(spec)
src[1:3, 0:2, 0:3] = 4321
print(type(src).__name__, src.to_spec().path)
"""


@pytest.mark.parametrize("what", ["spec", "source"])
def test_spec_sent_to_a_separate_process_writes_a_block(tmp_path, what):
    array = zarr_array(tmp_path)
    src = as_source(array)
    payload = cloudpickle.dumps(src.to_spec() if what == "spec" else src)
    script = CHILD_WRITES_A_BLOCK if what == "spec" else CHILD_WRITES_A_BLOCK.replace(
        "src = from_spec(spec)", "src = spec")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([sys.executable, "-c", script], input=payload, cwd=elsewhere,
                            capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split() == ["ArraySource", str(tmp_path / "v3.zarr")]
    expected = data_3d()
    expected[1:3, 0:2, 0:3] = 4321
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "v3.zarr", path="group/data")[...],
                                  expected)


def test_a_spec_with_a_creating_mode_reopens_without_truncating(tmp_path):
    # bioimage-py 0.2 recorded the mode as given: its specs may say "w".
    from bioimage_py import create_array

    create_array(tmp_path / "w.zarr", shape=(4, 4), dtype="uint8", chunks=(2, 2))[...] = 7
    spec = SourceSpec("file", str(tmp_path / "w.zarr"), "", {"format": "zarr", "mode": "w"})
    reopened = from_spec(spec)
    assert reopened.mode == "r+" and reopened.writable
    assert int(reopened[...].sum()) == 7 * 16
