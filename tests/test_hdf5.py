"""Native HDF5: files written by h5py read voxel-exact, our files read by h5py, and h5py holding
the same file open in the same process (no HDF5 file locks on our side)."""
from __future__ import annotations

import multiprocessing
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bioimage_py as bp
from bioimage_py._core import NativeArray
from bioimage_py import create_array
from bioimage_py.sources import FileSource, from_spec

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float32", "float64"]

# h5py's create_dataset filter options, each a layout the fast path or its fallback must read.
LAYOUTS = {
    "gzip": {"chunks": (4, 5, 3), "compression": "gzip", "compression_opts": 1},
    "gzip9-shuffle": {"chunks": (4, 5, 3), "compression": "gzip", "compression_opts": 9,
                      "shuffle": True},
    "lzf": {"chunks": (4, 5, 3), "compression": "lzf"},
    "lzf-shuffle": {"chunks": (4, 5, 3), "compression": "lzf", "shuffle": True},
    "raw-chunked": {"chunks": (4, 5, 3)},
    "fletcher32": {"chunks": (4, 5, 3), "compression": "gzip", "fletcher32": True},
    "contiguous": {},
}


def pattern(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    rng = np.random.default_rng(sum(shape) + len(dtype))
    if dtype == "bool":
        return rng.random(shape) < 0.3
    if np.dtype(dtype).kind == "f":
        return rng.normal(0, 1000, shape).astype(dtype)
    info = np.iinfo(dtype)
    # Mostly small values (so chunks compress, as real data does) with some extremes.
    values = rng.integers(0, 50, shape).astype(dtype)
    values.flat[::7] = info.max
    values.flat[::11] = info.min
    return values


def write_h5(path: Path, key: str, data: np.ndarray, **options) -> Path:
    with h5py.File(path, "a") as f:
        f.create_dataset(key, data=data, **options)
    return path


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_h5py_files_read_voxel_exact(tmp_path, dtype, layout):
    data = pattern((13, 11, 9), dtype)
    path = write_h5(tmp_path / "a.h5", "g/h/data", data, **LAYOUTS[layout])
    src = bp.open_source(path, "g/h/data")
    assert isinstance(src.array, NativeArray) and src.format == "hdf5"
    assert src.dtype == data.dtype and src.shape == data.shape
    assert src.chunks == (LAYOUTS[layout].get("chunks") and (4, 5, 3)) or layout == "contiguous"
    np.testing.assert_array_equal(src[...], data)
    np.testing.assert_array_equal(src[3:10, 2:11, 1:8], data[3:10, 2:11, 1:8])
    np.testing.assert_array_equal(src[12, :, -1], data[12, :, -1])
    assert src[1, 2, 3] == data[1, 2, 3]


@pytest.mark.parametrize("dtype", [">u2", ">i4", ">f8", "<f4"])
def test_h5py_files_in_either_byte_order(tmp_path, dtype):
    data = pattern((9, 7), np.dtype(dtype).newbyteorder("=").name).astype(dtype)
    path = write_h5(tmp_path / "a.h5", "x", data, chunks=(4, 4), compression="gzip")
    src = bp.open_source(path)
    assert src.dtype == data.dtype.newbyteorder("=")
    np.testing.assert_array_equal(src[...], data)


@pytest.mark.parametrize("ndim", [1, 2, 4])
def test_h5py_files_of_any_rank(tmp_path, ndim):
    shape = (7, 6, 5, 4)[:ndim]
    data = pattern(shape, "uint16")
    path = write_h5(tmp_path / "a.h5", "x", data, chunks=(3, 2, 2, 3)[:ndim],
                    compression="gzip", shuffle=True)
    np.testing.assert_array_equal(bp.open_source(path)[...], data)


def test_unwritten_chunks_read_as_the_fill_value(tmp_path):
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset("x", shape=(8, 8), dtype="int16", chunks=(4, 4), fillvalue=-5,
                             compression="gzip")
        d[0:4, 0:4] = 1
    src = bp.open_source(path)
    expected = np.full((8, 8), -5, "int16")
    expected[:4, :4] = 1
    np.testing.assert_array_equal(src[...], expected)
    assert src.chunk_exists((0, 0)) and not src.chunk_exists((1, 1))
    strict = bp.open_source(path, missing_chunks="error")
    with pytest.raises(FileNotFoundError, match=r"chunk \[0, 1\] of .*a\.h5:x is not stored"):
        strict[...]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_regions_against_h5py(tmp_path, data):
    path = tmp_path / "r.h5"
    if not path.exists():
        write_h5(path, "x", pattern((17, 13, 11), "float32"), chunks=(5, 4, 3),
                 compression="gzip", shuffle=True)
    with h5py.File(path, "r") as f:
        expected = f["x"][...]
    src = bp.open_source(path)
    index = tuple(
        slice(a, b) for a, b in (
            sorted(data.draw(st.lists(st.integers(0, n), min_size=2, max_size=2)))
            for n in expected.shape
        )
    )
    np.testing.assert_array_equal(src[index], expected[index])


# --- our files, read by h5py ------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["gzip", "lzf", "raw"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_our_files_read_by_h5py(tmp_path, dtype, compression):
    data = pattern((13, 11, 9), dtype)
    path = tmp_path / "ours.h5"
    out = create_array(path, "a/b", shape=data.shape, dtype=dtype, chunks=(4, 5, 3),
                       compression=compression)
    assert (out.format, out.writable) == ("hdf5", True)
    out[...] = data
    out[2:5, 3, :] = data[0, 0, 0]  # a partial overwrite across chunks
    data[2:5, 3, :] = data[0, 0, 0]
    np.testing.assert_array_equal(out[...], data)
    with h5py.File(path, "r") as f:
        d = f["a/b"]
        assert d.chunks == (4, 5, 3) and d.dtype == data.dtype
        assert d.compression == {"raw": None}.get(compression, compression)
        np.testing.assert_array_equal(d[...], data)


def test_our_fill_value_and_levels(tmp_path):
    path = tmp_path / "ours.h5"
    out = create_array(path, "x", shape=(10, 10), dtype="uint8", chunks=(5, 5),
                       compression="gzip", compression_level=9, fill_value=200)
    out[0:5, 0:5] = 1
    with h5py.File(path, "r") as f:
        assert f["x"].fillvalue == 200 and f["x"].compression_opts == 9
        assert (f["x"][5:, 5:] == 200).all() and (f["x"][:5, :5] == 1).all()
    with pytest.raises(ValueError, match="0..=9"):
        create_array(path, "y", shape=(4,), dtype="uint8", compression="gzip",
                     compression_level=12)
    with pytest.raises(ValueError, match="takes no level"):
        create_array(path, "y", shape=(4,), dtype="uint8", compression="lzf",
                     compression_level=1)
    with pytest.raises(ValueError, match="does not fit dtype"):
        create_array(path, "y", shape=(4,), dtype="uint8", fill_value=300)
    with pytest.raises(ValueError, match="exists"):
        create_array(path, "x", shape=(4,), dtype="uint8")
    create_array(path, "x", shape=(4,), dtype="uint8", overwrite=True)
    with h5py.File(path, "r") as f:
        assert f["x"].shape == (4,)


# --- sharing files: h5py and ourselves, one process ---------------------------------------------


def test_h5py_holding_the_file_open_does_not_break_us(tmp_path):
    data = pattern((8, 9), "uint16")
    path = write_h5(tmp_path / "a.h5", "raw", data, chunks=(4, 4), compression="gzip")
    with h5py.File(path, "r") as held:  # h5py keeps the file open (with its lock) throughout
        src = bp.open_source(path, "raw")
        np.testing.assert_array_equal(src[...], data)
        np.testing.assert_array_equal(held["raw"][...], data)
        out = create_array(path, "seg", shape=data.shape, dtype="uint32", chunks=(4, 4))
        out[...] = data * 2
        np.testing.assert_array_equal(src[...], data)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["seg"][...], data * 2)
    # And an h5py writer open while we read.
    with h5py.File(path, "a") as writer:
        writer["raw"][0, 0] = 7
        writer.flush()
        assert bp.open_source(path, "seg")[1, 1] == data[1, 1] * 2


def test_read_one_dataset_write_another_of_the_same_file(tmp_path):
    """A read-only source and a writer of one file in one process: the shared handle is
    reopened read-write and the reader keeps reading."""
    data = pattern((8, 9), "float32")
    path = write_h5(tmp_path / "a.h5", "raw", data, chunks=(4, 4), compression="gzip")
    raw = bp.open_source(path, "raw")
    np.testing.assert_array_equal(raw[...], data)
    seg = create_array(path, "seg", shape=data.shape, dtype="float32", chunks=(4, 4))
    seg[...] = raw[...] + 1
    np.testing.assert_array_equal(seg[...], data + 1)
    also = bp.open_source(path, "raw", mode="r+")
    also[0, :] = 0
    data[0, :] = 0
    raw.array.clear_cache()  # another handle wrote raw: drop what this one cached
    np.testing.assert_array_equal(raw[...], data)
    with pytest.raises(TypeError, match="read-only"):
        raw[0, 0] = 1
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["raw"][...], data)


def test_as_source_h5py_dataset_reopens_natively(tmp_path):
    data = pattern((6, 7), "int32")
    path = write_h5(tmp_path / "a.h5", "g/x", data, chunks=(3, 3), compression="lzf")
    with h5py.File(path, "r+") as f:
        src = bp.as_source(f["g/x"])
        assert type(src) is FileSource and src.format == "hdf5" and src.writable
        reopened = pickle.loads(pickle.dumps(src))
        assert isinstance(reopened.array, NativeArray)
        np.testing.assert_array_equal(reopened[...], data)
        assert from_spec(src.to_spec()).writable


def test_a_spec_reopened_in_another_process_writes_a_block(tmp_path):
    path = tmp_path / "a.h5"
    out = create_array(path, "x", shape=(8, 8), dtype="uint16", chunks=(4, 4))
    script = textwrap.dedent(
        """
        import sys, json
        from bioimage_py.sources import SourceSpec, from_spec
        src = from_spec(SourceSpec.from_json(sys.argv[1]))
        src[4:8, 0:4] = 9
        """
    )
    subprocess.run([sys.executable, "-c", script, out.to_spec().to_json()], check=True)
    with h5py.File(path, "r") as f:
        assert (f["x"][4:8, 0:4] == 9).all() and f["x"][...].sum() == 9 * 16


def _read_sum(spec_json: str) -> int:
    from bioimage_py.sources import SourceSpec

    return int(from_spec(SourceSpec.from_json(spec_json))[...].astype(np.int64).sum())


def test_forked_workers_read_after_the_parent(tmp_path):
    data = pattern((16, 16), "uint16")
    path = write_h5(tmp_path / "a.h5", "x", data, chunks=(4, 4), compression="gzip")
    src = bp.open_source(path)
    assert src[...].sum() == data.astype(np.int64).sum()  # the parent has the file open
    with multiprocessing.get_context("fork").Pool(2) as pool:
        sums = pool.map(_read_sum, [src.to_spec().to_json()] * 4)
    assert sums == [int(data.astype(np.int64).sum())] * 4


# --- bad input ----------------------------------------------------------------------------------


def test_errors_name_the_file_and_dataset(tmp_path):
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("compound", shape=(3,), dtype=[("a", "i4"), ("b", "f4")])
        f.create_dataset("strings", data=np.array([b"a", b"b"]))
        f.create_dataset("good", data=np.arange(4))
        f.create_dataset("scalar", data=5)
        f.create_group("empty")
    with pytest.raises(ValueError, match=r"a\.h5:compound.*unsupported HDF5 datatype"):
        bp.open_source(path, "compound")
    with pytest.raises(ValueError, match=r"a\.h5:scalar.*scalar"):
        bp.open_source(path, "scalar")
    with pytest.raises(ValueError, match=r"internal_path.*'good'"):
        bp.open_source(path)
    with pytest.raises(ValueError, match=r"'nope' does not exist"):
        bp.open_source(path, "nope")
    not_hdf5 = tmp_path / "b.h5"
    not_hdf5.write_bytes(b"not an hdf5 file" * 10)
    with pytest.raises(ValueError, match=r"b\.h5"):
        bp.open_source(not_hdf5, "x")
    with pytest.raises(FileNotFoundError, match=r"c\.h5"):
        bp.open_source(tmp_path / "c.h5", "x")


def test_a_corrupt_chunk_is_an_oserror_naming_it(tmp_path):
    data = pattern((8, 8), "uint32")
    path = write_h5(tmp_path / "a.h5", "x", data, chunks=(4, 4), compression="gzip")
    with h5py.File(path, "r") as f:
        info = f["x"].id.get_chunk_info_by_coord((4, 0))
    with open(path, "r+b") as raw:
        raw.seek(info.byte_offset)
        raw.write(b"\xab" * info.size)
    src = bp.open_source(path)
    with pytest.raises(OSError, match=r"chunk \[1, 0\] of .*a\.h5:x is corrupt"):
        src[...]
    np.testing.assert_array_equal(src[0:4, :], data[0:4, :])


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "uint64"])
def test_chunks_we_encode_ourselves_read_by_h5py(tmp_path, dtype, shuffle):
    """gzip (+ shuffle) chunks are compressed in parallel by us and stored with direct chunk
    writes: edge chunks padded, partial chunks merged with what is stored."""
    from bioimage_py import _core

    data = pattern((13, 11, 9), dtype)
    path = tmp_path / "direct.h5"
    array = _core.create_hdf5(str(path), "x", shape=data.shape, chunks=(4, 5, 3), dtype=dtype,
                              compression="gzip", compression_level=6, shuffle=shuffle,
                              fill_value=3)
    array[2:11, 1:10, 1:8] = data[2:11, 1:10, 1:8]  # partial and edge chunks
    expected = np.full(data.shape, 3, dtype)
    expected[2:11, 1:10, 1:8] = data[2:11, 1:10, 1:8]
    array[...] = array[...]  # rewrite every chunk, moving them in the file
    array[0, 0, :] = 9
    expected[0, 0, :] = 9
    np.testing.assert_array_equal(array[...], expected)
    with h5py.File(path, "r") as f:
        d = f["x"]
        assert (d.compression, d.compression_opts, d.shuffle) == ("gzip", 6, shuffle)
        np.testing.assert_array_equal(d[...], expected)
