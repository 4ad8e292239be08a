"""float16, complex64 and complex128 in native zarr, HDF5 and N5 arrays, against the peers.

zarr-python 3 (v2, v3 and sharded v3) and tensorstore (zarr v2, v3 and sharded v3: it handles
all three dtypes in both formats) write arrays we read, and read back arrays we write; h5py does
the same for HDF5, where float16 is HDF5's IEEE half type and complex numbers are h5py's
compound ``{r, i}``. Fill values include NaN, infinities and complex ``[re, im]`` pairs with
them. The N5 spec defines none of these types: creating or opening such a dataset is a
``ValueError`` naming the path and the dtype. Real files in ``tmp_path``, numpy as the oracle.

Pairs not tested, because the peer cannot do them: z5py and tensorstore's N5 driver (N5 has no
such types; tensorstore refuses ``"dataType": "float16"`` / ``"complex64"`` as the spec does);
HDF5 2.0's native complex class (``H5T_COMPLEX``) is read and written in native byte order
only (written by h5py's low-level API, as its high-level one writes the compound).
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import tensorstore as ts
import numcodecs
import zarr
from zarr.codecs import BloscCodec, BytesCodec, GzipCodec, TransposeCodec

import bioimage_py as bp
from bioimage_py import _core, create_array
from bioimage_py._core import NativeArray
from bioimage_py.sources import FileSource

DTYPES = ["float16", "complex64", "complex128"]
ZARR_KINDS = ["v2", "v3", "sharded"]
SHAPE = (7, 9, 5)
CHUNKS = (3, 4, 2)
SHARDS = (6, 8, 4)


# ---------------------------------------------------------------------------------------------
# the oracle


def oracle(shape: tuple[int, ...], dtype: Any, seed: int = 0) -> np.ndarray:
    """Random values of ``dtype`` with the special ones first: infinities, NaN, -0.0 (for
    complex numbers in either part)."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    scale = 1e3 if dtype == np.float16 else 1e6
    values = (rng.standard_normal(shape) * scale).astype(dtype)
    if dtype.kind == "c":
        values += (1j * rng.standard_normal(shape) * scale).astype(dtype)
        nan, inf = np.nan, np.inf
        special = [complex(inf, 1.0), complex(2.0, -inf), complex(nan, 0.5), complex(-0.5, nan),
                   complex(-0.0, -0.0), complex(0.0, -0.0), complex(nan, nan)]
    else:
        special = [np.inf, -np.inf, np.nan, -0.0, 65504.0, 6e-8]
    flat = values.reshape(-1)
    flat[: len(special)] = np.array(special, dtype=dtype)
    return values


def special_fill(dtype: Any) -> Any:
    """A fill value zarr metadata spells with strings: NaN / Infinity (in one complex part)."""
    return {"float16": np.nan, "complex64": complex(1.5, np.nan),
            "complex128": complex(-np.inf, 2.25)}[np.dtype(dtype).name]


def plain_fill(dtype: Any) -> Any:
    return -1.5 if np.dtype(dtype).kind == "f" else complex(0.5, -2.0)


FILLS = {"special-fill": special_fill, "plain-fill": plain_fill}


def lower_region(shape) -> tuple[slice, ...]:
    return tuple(slice(0, n // 2 + 1) for n in shape)


def upper_region(shape) -> tuple[slice, ...]:
    return tuple(slice(n // 3, n) for n in shape)


def partially_written(shape, dtype, fill, seed=0):
    """``(data, expected, region)``: ``expected`` is ``fill`` with ``data`` in ``region``."""
    data = oracle(shape, dtype, seed)
    region = lower_region(shape)
    expected = np.full(shape, fill, dtype=dtype)
    expected[region] = data[region]
    return data, expected, region


def parts(array: np.ndarray) -> np.ndarray:
    """A complex array as its float parts (a trailing axis of 2), else the array itself."""
    array = np.asarray(array)
    if array.dtype.kind != "c":
        return array
    return np.stack([array.real, array.imag], axis=-1)


def assert_equal(actual: Any, expected: np.ndarray) -> None:
    """Voxel-exact, dtype included. For complex numbers each part is compared on its own
    (``assert_array_equal`` alone takes ``1+nanj`` for ``2+nanj``); -0.0 must stay -0.0."""
    actual = np.asarray(actual)
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(parts(actual), parts(expected))
    np.testing.assert_array_equal(np.signbit(parts(actual)), np.signbit(parts(expected)))


def assert_scalar_equal(actual: Any, expected: Any, dtype: Any) -> None:
    assert_equal(np.asarray(actual, dtype=dtype), np.asarray(expected, dtype=dtype))


def chunk_grid(shape, chunks):
    return itertools.product(*(range(-(-n // c)) for n, c in zip(shape, chunks)))


def chunk_slices(coords, chunks, shape) -> tuple[slice, ...]:
    return tuple(slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(coords, chunks, shape))


def intersects(a, b) -> bool:
    return all(x.start < y.stop and y.start < x.stop for x, y in zip(a, b))


def assert_chunk_existence(src: FileSource, written, expected: np.ndarray, fill: Any) -> None:
    """Chunks outside the written region are not stored; written chunks whose bytes differ from
    the fill value's are (chunks that are all fill value may be skipped by the writer)."""
    fill_bytes = np.array(fill, dtype=expected.dtype).tobytes()
    for coords in chunk_grid(src.shape, src.chunks):
        where = chunk_slices(coords, src.chunks, src.shape)
        exists = src.chunk_exists(coords)
        if not intersects(where, written):
            assert not exists, coords
        elif expected[where].tobytes() != fill_bytes * expected[where].size:
            assert exists, coords


def open_native(path: Path, key: str | None = None, **kwargs) -> FileSource:
    src = bp.open_source(path, key, **kwargs)
    assert isinstance(src.array, NativeArray)
    return src


def kind_dtype_fill(kinds):
    for kind, dtype, fill in itertools.product(kinds, DTYPES, FILLS):
        yield pytest.param(kind, dtype, fill, id=f"{kind}-{dtype}-{fill}")


# ---------------------------------------------------------------------------------------------
# zarr-python both ways


def zarr_python_array(path: Path, kind: str, dtype, fill, **kwargs) -> Any:
    options = dict(shape=SHAPE, dtype=dtype, chunks=CHUNKS, fill_value=fill,
                   zarr_format=2 if kind == "v2" else 3, **kwargs)
    if kind == "sharded":
        options["shards"] = SHARDS
    return zarr.create_array(str(path), **options)


def native_zarr(path: Path, kind: str, dtype, fill) -> FileSource:
    return create_array(path, shape=SHAPE, dtype=dtype, chunks=CHUNKS,
                        zarr_format=2 if kind == "v2" else 3,
                        shards=SHARDS if kind == "sharded" else None, fill_value=fill)


@pytest.mark.parametrize(("kind", "dtype", "fill"), list(kind_dtype_fill(ZARR_KINDS)))
def test_zarr_python_writes_we_read(tmp_path, kind, dtype, fill):
    fill = FILLS[fill](dtype)
    path = tmp_path / "a.zarr"
    data, expected, region = partially_written(SHAPE, dtype, fill)
    z = zarr_python_array(path, kind, dtype, fill)
    z[region] = data[region]
    src = open_native(path)
    assert (src.shape, src.dtype, src.chunks) == (SHAPE, np.dtype(dtype), CHUNKS)
    assert src.shards == (SHARDS if kind == "sharded" else None)
    assert_equal(src[...], expected)
    assert_equal(src[region], data[region])
    assert_scalar_equal(src[6, 8, 4], fill, dtype)  # an unwritten chunk: the fill value
    assert_chunk_existence(src, region, expected, fill)


@pytest.mark.parametrize(("kind", "dtype"), list(itertools.product(ZARR_KINDS, DTYPES)))
def test_zarr_python_big_endian_we_read_and_write_back(tmp_path, kind, dtype):
    """v2 ``>f2`` / ``>c8`` / ``>c16`` and the v3 ``bytes`` codec with ``endian: big``: each part
    of a complex number is swapped on its own."""
    fill = special_fill(dtype)
    path = tmp_path / "a.zarr"
    data, expected, region = partially_written(SHAPE, dtype, fill)
    if kind == "v2":
        z = zarr_python_array(path, kind, np.dtype(dtype).newbyteorder(">"), fill)
    else:
        z = zarr_python_array(path, kind, dtype, fill, serializer=BytesCodec(endian="big"))
    z[region] = data[region]
    src = open_native(path, mode="r+")
    assert src.dtype == np.dtype(dtype)  # native byte order in memory
    assert_equal(src[...], expected)
    new = oracle(SHAPE, dtype, seed=6)
    where = upper_region(SHAPE)
    src[where] = new[where]
    expected[where] = new[where]
    assert_equal(src[...], expected)
    assert_equal(zarr.open_array(str(path), mode="r")[...].astype(dtype), expected)


ZARR_CODECS = {
    "v2-order-F-blosc-shuffle": (2, dict(order="F", compressors=numcodecs.Blosc(
        "lz4", 5, numcodecs.Blosc.SHUFFLE))),
    "v2-blosc-bitshuffle": (2, dict(compressors=numcodecs.Blosc(
        "zstd", 3, numcodecs.Blosc.BITSHUFFLE))),
    "v3-transpose-gzip": (3, dict(filters=[TransposeCodec(order=(2, 0, 1))],
                                  compressors=GzipCodec(level=5))),
    "v3-blosc-shuffle": (3, dict(compressors=BloscCodec(cname="zstd", shuffle="shuffle"))),
}


@pytest.mark.parametrize(("codecs", "dtype"), list(itertools.product(ZARR_CODECS, DTYPES)))
def test_zarr_python_codecs_we_read_and_write_back(tmp_path, codecs, dtype):
    """Element-sized codecs (blosc's shuffle, transposes) take a complex number as one element."""
    zarr_format, options = ZARR_CODECS[codecs]
    fill = special_fill(dtype)
    path = tmp_path / "a.zarr"
    data, expected, region = partially_written(SHAPE, dtype, fill)
    z = zarr_python_array(path, "v2" if zarr_format == 2 else "v3", dtype, fill, **options)
    z[region] = data[region]
    src = open_native(path, mode="r+")
    assert_equal(src[...], expected)
    new = oracle(SHAPE, dtype, seed=7)
    where = upper_region(SHAPE)
    src[where] = new[where]
    expected[where] = new[where]
    assert_equal(zarr.open_array(str(path), mode="r")[...], expected)


@pytest.mark.parametrize(("kind", "dtype", "fill"), list(kind_dtype_fill(ZARR_KINDS)))
def test_we_write_zarr_python_reads(tmp_path, kind, dtype, fill):
    fill = FILLS[fill](dtype)
    path = tmp_path / "a.zarr"
    data, expected, region = partially_written(SHAPE, dtype, fill)
    src = native_zarr(path, kind, dtype, fill)
    src[region] = data[region]
    assert_equal(src[...], expected)  # through the chunk cache
    new = oracle(SHAPE, dtype, seed=3)
    where = upper_region(SHAPE)
    src[where] = new[where]
    expected[where] = new[where]
    assert_equal(src[...], expected)

    z = zarr.open_array(str(path), mode="r")
    assert z.dtype == np.dtype(dtype)
    assert_scalar_equal(z.fill_value, fill, dtype)
    assert_equal(z[...], expected)
    assert_equal(open_native(path)[...], expected)  # reopened: no cache, same bytes


@pytest.mark.parametrize("dtype", ["<f2", "<c8", ">c16"])
@pytest.mark.parametrize("fill", [None, "NaN", [0.5, "-Infinity"], 0], ids=str)
def test_v2_fill_value_spellings_as_zarr_python_reads_them(tmp_path, dtype, fill):
    """``null`` (no fill value: zeros), strings, ``[re, im]`` pairs; what zarr-python refuses
    (a scalar for complex, a pair for float16) is a ValueError naming the file."""
    path = tmp_path / "a.zarr"
    path.mkdir()
    (path / ".zarray").write_text(json.dumps({
        "zarr_format": 2, "shape": [3], "chunks": [2], "dtype": dtype, "compressor": None,
        "fill_value": fill, "order": "C", "filters": None}))
    try:
        theirs = zarr.open_array(str(path), mode="r")[...]
    except (TypeError, ValueError):
        with pytest.raises(ValueError, match=rf"{path}.*fill value"):
            bp.open_source(path)
        return
    assert_equal(open_native(path)[...], theirs.astype(np.dtype(dtype).newbyteorder("=")))


@pytest.mark.parametrize("kind", ZARR_KINDS)
def test_fill_value_metadata_matches_zarr_python(tmp_path, kind):
    """Our ``fill_value`` JSON is zarr-python's, strings for NaN / Infinity and ``[re, im]``
    pairs for complex numbers, in v2 and v3."""
    name = ".zarray" if kind == "v2" else "zarr.json"
    fills = [np.nan, np.inf, -np.inf, 0.5, complex(np.nan, -np.inf), complex(1.5, -2.0),
             complex(np.inf, 0.0)]
    for dtype in DTYPES:
        for n, fill in enumerate(fills):
            if np.dtype(dtype).kind == "f" and isinstance(fill, complex):
                continue
            ours, theirs = tmp_path / f"ours_{dtype}_{n}.zarr", tmp_path / f"theirs_{dtype}_{n}"
            native_zarr(ours, kind, dtype, fill)
            zarr_python_array(theirs, kind, dtype, fill)
            ours_fill = json.loads((ours / name).read_text())["fill_value"]
            theirs_fill = json.loads((theirs / name).read_text())["fill_value"]
            assert ours_fill == theirs_fill, (dtype, fill)


def test_float16_fill_value_is_stored_rounded_and_overflow_is_refused(tmp_path):
    src = create_array(tmp_path / "a.zarr", shape=(4,), dtype="float16", chunks=(2,),
                       fill_value=0.1)
    assert src[0] == np.float16(0.1)
    assert zarr.open_array(str(tmp_path / "a.zarr")).fill_value == np.float16(0.1)
    with pytest.raises(ValueError, match="fill value 100000 is not a valid float16"):
        create_array(tmp_path / "b.zarr", shape=(4,), dtype="float16", chunks=(2,),
                     fill_value=1e5)


@pytest.mark.parametrize("fmt", ["zarr", "hdf5"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "int16"])
def test_complex_fill_value_for_a_real_dtype_is_refused(tmp_path, fmt, dtype):
    path = tmp_path / ("a.zarr" if fmt == "zarr" else "a.h5")
    with pytest.raises(ValueError, match=rf"fill value.*\(1\+2j\).*{dtype}"):
        create_array(path, "x", shape=(4,), dtype=dtype, chunks=(2,), fill_value=1 + 2j)
    # A zero imaginary part is a real number.
    src = create_array(path, "y", shape=(4,), dtype=dtype, chunks=(2,), fill_value=3 + 0j)
    assert src[0] == 3


@pytest.mark.parametrize("fmt", ["zarr", "hdf5"])
def test_numpy_complex_scalars_as_fill_values(tmp_path, fmt):
    path = tmp_path / ("a.zarr" if fmt == "zarr" else "a.h5")
    for n, fill in enumerate([np.complex64(1 - 2j), np.complex128(-3.5 + 0.25j), 2, 1.5]):
        src = create_array(path, f"a{n}", shape=(3,), dtype="complex64", chunks=(2,),
                           fill_value=fill)
        assert_equal(src[...], np.full(3, fill, dtype="complex64"))


@pytest.mark.parametrize(("kind", "dtype"), list(itertools.product(ZARR_KINDS, DTYPES)))
def test_write_empty_chunks_compares_fill_value_bytes(tmp_path, kind, dtype):
    """A chunk of nothing but the (NaN-holding) fill value is not stored; one whose bytes
    differ from the fill value's (-0.0 for 0.0, a NaN in another part) is."""
    fill = special_fill(dtype)
    src = native_zarr(tmp_path / "a.zarr", kind, dtype, fill)
    first = chunk_slices((0, 0, 0), CHUNKS, SHAPE)
    src[first] = np.full(CHUNKS, fill, dtype=dtype)
    assert not src.chunk_exists((0, 0, 0))
    assert_equal(src[first], np.full(CHUNKS, fill, dtype=dtype))

    near = {"float16": np.float16(-np.nan), "complex64": complex(np.nan, np.nan),
            "complex128": complex(-np.inf, -2.25)}[dtype]
    second = chunk_slices((1, 1, 1), CHUNKS, SHAPE)
    values = np.full(CHUNKS, fill, dtype=dtype)
    values.reshape(-1)[-1] = near
    src[second] = values
    assert src.chunk_exists((1, 1, 1))
    assert_equal(src[second], values)

    zero = create_array(tmp_path / "zero.zarr", shape=SHAPE, dtype=dtype, chunks=CHUNKS,
                        zarr_format=2 if kind == "v2" else 3,
                        shards=SHARDS if kind == "sharded" else None, fill_value=0)
    negative_zero = np.full(CHUNKS, -0.0, dtype=dtype)
    zero[first] = negative_zero
    assert zero.chunk_exists((0, 0, 0))
    assert_equal(zero[first], negative_zero)
    assert_equal(zarr.open_array(str(tmp_path / "zero.zarr"))[first], negative_zero)


@pytest.mark.parametrize("dtype", DTYPES)
def test_setitem_converts_and_broadcasts_like_numpy(tmp_path, dtype):
    src = create_array(tmp_path / "a.zarr", shape=(4, 6), dtype=dtype, chunks=(3, 4))
    expected = np.zeros((4, 6), dtype=dtype)
    for index, value in [((1, slice(None)), 2.5), ((slice(0, 2), 3), [1, 2]),
                         ((2, slice(1, 5)), np.arange(4, dtype=np.float64) * 1.25),
                         ((slice(None), 0), -7)]:
        src[index] = value
        expected[index] = value
    if np.dtype(dtype).kind == "c":
        src[3, 2:] = 1 - 1j
        expected[3, 2:] = 1 - 1j
    assert_equal(src[...], expected)
    assert_scalar_equal(src[2, 2], expected[2, 2], dtype)
    assert isinstance(src[2, 2], np.generic) and src[2, 2].dtype == np.dtype(dtype)


# ---------------------------------------------------------------------------------------------
# tensorstore both ways (zarr v2, v3, sharded v3; every dtype here)

TS_KINDS = ["zarr2", "zarr3", "zarr3-sharded"]


def ts_spec(kind: str, path: Path) -> dict:
    return {"driver": "zarr" if kind == "zarr2" else "zarr3",
            "kvstore": {"driver": "file", "path": str(path)}}


def fill_json(fill: Any, dtype: Any) -> Any:
    def number(x: float) -> Any:
        if np.isnan(x):
            return "NaN"
        return ("Infinity" if x > 0 else "-Infinity") if np.isinf(x) else float(x)
    if np.dtype(dtype).kind == "c":
        return [number(complex(fill).real), number(complex(fill).imag)]
    return number(fill)


def ts_create(kind: str, path: Path, dtype, fill):
    dtype = np.dtype(dtype)
    if kind == "zarr2":
        metadata = {"shape": list(SHAPE), "chunks": list(CHUNKS), "dtype": dtype.str,
                    "fill_value": fill_json(fill, dtype),
                    "compressor": {"id": "zstd", "level": 3}}
    else:
        inner = [{"name": "bytes", "configuration": {"endian": "little"}},
                 {"name": "zstd", "configuration": {"level": 3}}]
        codecs, grid = inner, list(CHUNKS)
        if kind == "zarr3-sharded":
            grid = list(SHARDS)
            codecs = [{"name": "sharding_indexed", "configuration": {
                "chunk_shape": list(CHUNKS), "codecs": inner,
                "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                                 {"name": "crc32c"}]}}]
        metadata = {"shape": list(SHAPE), "data_type": dtype.name,
                    "fill_value": fill_json(fill, dtype),
                    "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": grid}},
                    "codecs": codecs}
    return ts.open({**ts_spec(kind, path), "metadata": metadata}, create=True).result()


@pytest.mark.parametrize(("kind", "dtype", "fill"), list(kind_dtype_fill(TS_KINDS)))
def test_tensorstore_writes_we_read(tmp_path, kind, dtype, fill):
    fill = FILLS[fill](dtype)
    data, expected, region = partially_written(SHAPE, dtype, fill)
    path = tmp_path / "a.zarr" / "nested" / "arr"
    store = ts_create(kind, path, dtype, fill)
    store[region] = data[region]
    src = open_native(tmp_path / "a.zarr", "nested/arr")
    assert (src.shape, src.dtype, src.chunks) == (SHAPE, np.dtype(dtype), CHUNKS)
    assert_equal(src[...], expected)
    assert_chunk_existence(src, region, expected, fill)


@pytest.mark.parametrize(("kind", "dtype", "fill"), list(kind_dtype_fill(TS_KINDS)))
def test_we_write_tensorstore_reads(tmp_path, kind, dtype, fill):
    fill = FILLS[fill](dtype)
    data, expected, region = partially_written(SHAPE, dtype, fill)
    container = tmp_path / "a.zarr"
    src = create_array(container, "x/y", shape=SHAPE, dtype=dtype, chunks=CHUNKS,
                       zarr_format=2 if kind == "zarr2" else 3,
                       shards=SHARDS if kind == "zarr3-sharded" else None, fill_value=fill)
    src[region] = data[region]
    store = ts.open(ts_spec(kind, container / "x" / "y"), open=True).result()
    assert store.dtype.numpy_dtype == np.dtype(dtype)
    assert_scalar_equal(store.fill_value, fill, dtype)
    assert_equal(store.read().result(), expected)


# ---------------------------------------------------------------------------------------------
# h5py both ways

# How h5py stores a dataset: chunked or not, and the filters (our fast path decodes deflate,
# shuffle, LZF and Fletcher-32; other layouts go through the library).
H5_LAYOUTS = {
    "contiguous": {},
    "gzip": dict(chunks=CHUNKS, compression="gzip", compression_opts=4),
    "shuffle-gzip": dict(chunks=CHUNKS, compression="gzip", shuffle=True),
    "lzf": dict(chunks=CHUNKS, compression="lzf"),
    "fletcher32": dict(chunks=CHUNKS, fletcher32=True),
    "raw-chunks": dict(chunks=CHUNKS),
}


def h5_cases():
    for layout, dtype, order in itertools.product(H5_LAYOUTS, DTYPES, "<>"):
        yield pytest.param(layout, dtype, order, id=f"{layout}-{dtype}-{order}")


@pytest.mark.parametrize(("layout", "dtype", "order"), list(h5_cases()))
def test_h5py_writes_we_read(tmp_path, layout, dtype, order):
    """Little- and big-endian datasets (big-endian complex numbers swap each part)."""
    fill = special_fill(dtype)
    stored = np.dtype(dtype).newbyteorder(order)
    data, expected, region = partially_written(SHAPE, dtype, fill)
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        dset = f.create_dataset("g/data", shape=SHAPE, dtype=stored, fillvalue=fill,
                                **H5_LAYOUTS[layout])
        dset[region] = data[region]
        if layout == "contiguous":
            expected = dset[...].astype(dtype)  # a contiguous dataset is written whole
    src = open_native(path, "g/data")
    assert (src.shape, src.dtype) == (SHAPE, np.dtype(dtype))
    assert_equal(src[...], expected)
    assert_equal(src[region], data[region])
    assert_equal(src[1:5, 2:9, 3:4], expected[1:5, 2:9, 3:4])


H5_CREATE = {
    "gzip": dict(compression="gzip"),
    "lzf": dict(compression="lzf"),
    "raw": dict(compression="raw"),
}


@pytest.mark.parametrize(("compression", "dtype", "fill"),
                         list(kind_dtype_fill(H5_CREATE)))
def test_we_write_h5py_reads(tmp_path, compression, dtype, fill):
    fill = FILLS[fill](dtype)
    path = tmp_path / "a.h5"
    data, expected, region = partially_written(SHAPE, dtype, fill)
    src = create_array(path, "g/data", shape=SHAPE, dtype=dtype, chunks=CHUNKS,
                       fill_value=fill, **H5_CREATE[compression])
    src[region] = data[region]
    new = oracle(SHAPE, dtype, seed=4)
    where = upper_region(SHAPE)
    src[where] = new[where]
    expected[where] = new[where]
    assert_equal(src[...], expected)
    del src
    with h5py.File(path, "r") as f:
        dset = f["g/data"]
        assert dset.dtype == np.dtype(dtype)  # complex: h5py's {r, i} read back as complex
        assert_scalar_equal(dset.fillvalue, fill, dtype)
        assert_equal(dset[...], expected)
    assert_equal(open_native(path, "g/data")[...], expected)


# Shuffle needs chunks (a contiguous dataset with shuffle is refused, see test_hdf5.py).
CORE_LAYOUTS = {"chunked": (CHUNKS, False), "chunked-shuffle": (CHUNKS, True),
                "contiguous": (None, False)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", CORE_LAYOUTS)
def test_we_write_h5py_reads_core_options(tmp_path, dtype, layout):
    """Shuffled (byte-shuffled by the whole complex element, as HDF5 does) and contiguous."""
    chunks, shuffle = CORE_LAYOUTS[layout]
    path = tmp_path / "a.h5"
    data = oracle(SHAPE, dtype, seed=9)
    array = _core.create_hdf5(str(path), "d", shape=SHAPE, chunks=chunks, dtype=dtype,
                              compression="gzip" if chunks else "raw", shuffle=shuffle)
    array[...] = data
    assert_equal(array[...], data)
    with h5py.File(path, "r") as f:
        assert_equal(f["d"][...], data)
        assert f["d"].shuffle == shuffle
    del array
    assert_equal(_core.open_hdf5(str(path), "d")[...], data)


def test_h5py_float16_type_is_what_we_write(tmp_path):
    """Our float16 is HDF5's IEEE half exactly as h5py defines it."""
    path = tmp_path / "a.h5"
    create_array(path, "ours", shape=(3,), dtype="float16", chunks=(2,))
    with h5py.File(path, "a") as f:
        f["theirs"] = np.zeros(3, np.float16)
        ours, theirs = f["ours"].id.get_type(), f["theirs"].id.get_type()
        assert ours.get_fields() == theirs.get_fields() == (15, 10, 5, 0, 10)
        assert ours.get_ebias() == theirs.get_ebias() == 15
        assert ours.get_size() == 2 and ours.get_order() == theirs.get_order()


def test_h5py_complex_type_is_what_we_write(tmp_path):
    path = tmp_path / "a.h5"
    for dtype in ("complex64", "complex128"):
        create_array(path, dtype, shape=(3,), dtype=dtype, chunks=(2,))
    with h5py.File(path, "a") as f:
        for dtype, part in (("complex64", "<f4"), ("complex128", "<f8")):
            tid = f[dtype].id.get_type()
            assert tid.get_class() == h5py.h5t.COMPOUND
            assert [tid.get_member_name(i) for i in range(2)] == [b"r", b"i"]
            assert [tid.get_member_offset(i) for i in range(2)] == [0, np.dtype(part).itemsize]
            assert tid.get_size() == np.dtype(dtype).itemsize
            assert f[dtype].dtype == np.dtype(dtype)


@pytest.mark.parametrize(("layout", "dtype"),
                         list(itertools.product(["gzip", "shuffle-gzip", "contiguous"], DTYPES)))
def test_we_write_into_h5py_big_endian_datasets(tmp_path, layout, dtype):
    """Writes into a big-endian dataset go through the library, which swaps each part."""
    fill = special_fill(dtype)
    path = tmp_path / "a.h5"
    data, expected, region = partially_written(SHAPE, dtype, fill)
    with h5py.File(path, "w") as f:
        f.create_dataset("d", shape=SHAPE, dtype=np.dtype(dtype).newbyteorder(">"),
                         fillvalue=fill, **H5_LAYOUTS[layout])
    src = open_native(path, "d", mode="r+")
    src[region] = data[region]
    assert_equal(src[...], expected)
    del src
    with h5py.File(path, "r") as f:
        assert_equal(f["d"][...].astype(dtype), expected)


def test_mixed_byte_order_complex_is_read_through_the_library(tmp_path):
    """A compound {r: little-endian, i: big-endian}: neither native nor plainly swapped."""
    path = tmp_path / "a.h5"
    mixed = np.dtype([("r", "<f4"), ("i", ">f4")])
    data = oracle(SHAPE, "complex64", seed=2)
    stored = np.empty(SHAPE, mixed)
    stored["r"], stored["i"] = data.real, data.imag
    with h5py.File(path, "w") as f:
        f.create_dataset("chunked", data=stored, chunks=CHUNKS, compression="gzip")
        f.create_dataset("contiguous", data=stored)
    written = data.copy()
    written[1:3] = 1.5 - 2.5j
    for key in ("chunked", "contiguous"):
        src = open_native(path, key, mode="r+")
        assert src.dtype == np.complex64
        assert_equal(src[...], data)
        src[1:3] = 1.5 - 2.5j
        assert_equal(src[...], written)
    with h5py.File(path, "r") as f:
        for key in ("chunked", "contiguous"):
            back = f[key][...]
            complex_back = np.empty(SHAPE, np.complex64)
            complex_back.real, complex_back.imag = back["r"], back["i"]
            assert_equal(complex_back, written)


NATIVE_COMPLEX = {"complex64": "COMPLEX_IEEE_F32", "complex128": "COMPLEX_IEEE_F64"}


def native_complex_dataset(f: h5py.File, name: str, dtype: str, order: str, data, layout: str):
    """A dataset of HDF5 2.0's own complex class (``H5T_COMPLEX``), which h5py writes only
    through its low-level API."""
    tid = getattr(h5py.h5t, NATIVE_COMPLEX[dtype] + ("LE" if order == "<" else "BE"))
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    if layout != "contiguous":
        dcpl.set_chunk(CHUNKS)
        if layout == "shuffle-gzip":
            dcpl.set_shuffle()
        dcpl.set_deflate(4)
    space = h5py.h5s.create_simple(SHAPE)
    dset = h5py.h5d.create(f.id, name.encode(), tid, space, dcpl=dcpl)
    dset.write(h5py.h5s.ALL, h5py.h5s.ALL,
               np.ascontiguousarray(data, np.dtype(dtype).newbyteorder(order)), mtype=tid)


@pytest.mark.parametrize(("layout", "dtype"), list(itertools.product(
    ["contiguous", "gzip", "shuffle-gzip"], NATIVE_COMPLEX)))
def test_hdf5_native_complex_class_both_ways(tmp_path, layout, dtype):
    """HDF5 2.0's ``H5T_COMPLEX`` in native byte order reads as complex numbers and takes
    writes (the library converts them from h5py's compound); h5py reads the result."""
    path = tmp_path / "a.h5"
    data = oracle(SHAPE, dtype, seed=8)
    with h5py.File(path, "w") as f:
        native_complex_dataset(f, "d", dtype, "<", data, layout)
        assert f["d"].id.get_type().get_class() == h5py.h5t.COMPLEX
    src = open_native(path, "d", mode="r+")
    assert src.dtype == np.dtype(dtype)
    assert_equal(src[...], data)
    new = oracle(SHAPE, dtype, seed=9)
    where = upper_region(SHAPE)
    src[where] = new[where]
    data[where] = new[where]
    assert_equal(src[...], data)
    del src
    with h5py.File(path, "r") as f:
        assert f["d"].id.get_type().get_class() == h5py.h5t.COMPLEX
        assert_equal(f["d"][...].astype(dtype), data)


def test_hdf5_native_complex_class_in_the_other_byte_order_is_refused(tmp_path):
    """The library does not convert a big-endian ``H5T_COMPLEX`` to the compound: a clear
    ValueError at open rather than an error on some later read or write."""
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        native_complex_dataset(f, "be", "complex64", ">", oracle(SHAPE, "complex64"), "gzip")
    with pytest.raises(ValueError, match=r"a\.h5:be.*complex class in BigEndian byte order"):
        _core.open_hdf5(str(path), "be")


@pytest.mark.parametrize("fields", [
    [("re", "<f4"), ("im", "<f4")],            # other names
    [("i", "<f4"), ("r", "<f4")],              # imaginary part first
    [("r", "<f4"), ("i", "<f8")],              # parts of different types
    [("r", "<f2"), ("i", "<f2")],              # complex32: numpy has none
    [("r", "<i4"), ("i", "<i4")],              # integer parts
    [("r", "<f4"), ("i", "<f4"), ("x", "<f4")],  # a third field
], ids=["names", "order", "mixed-types", "half", "integers", "three-fields"])
def test_other_compound_types_are_refused(tmp_path, fields):
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("c", shape=(3,), dtype=np.dtype(fields))
    with pytest.raises(ValueError, match=r"a\.h5:c.*unsupported HDF5 datatype"):
        _core.open_hdf5(str(path), "c")


def test_a_non_ieee_half_float_is_refused(tmp_path):
    """A 2-byte float that is not IEEE half (bfloat16's layout) is not read as float16."""
    path = tmp_path / "a.h5"
    bf16 = h5py.h5t.IEEE_F32LE.copy()
    bf16.set_fields(15, 7, 8, 0, 7)
    bf16.set_size(2)
    bf16.set_ebias(127)
    with h5py.File(path, "w") as f:
        space = h5py.h5s.create_simple((3,))
        h5py.h5d.create(f.id, b"bf16", bf16, space)
    with pytest.raises(ValueError, match=r"bf16.*not IEEE half precision"):
        _core.open_hdf5(str(path), "bf16")


# ---------------------------------------------------------------------------------------------
# N5: no such types


@pytest.mark.parametrize("dtype", DTYPES)
def test_n5_refuses_to_create_them(tmp_path, dtype):
    path = tmp_path / "a.n5"
    with pytest.raises(ValueError, match=rf"{path}.*spec defines no {dtype} data type"):
        create_array(path, "x", shape=(4, 4), dtype=dtype, chunks=(2, 2))
    with pytest.raises(ValueError, match=rf"{path}.*spec defines no {dtype} data type"):
        _core.create_n5(str(path), "y", shape=(4, 4), chunks=(2, 2), dtype=dtype)
    assert not (path / "x").exists()


@pytest.mark.parametrize("name", ["float16", "complex64", "complex128", "complex32"])
def test_n5_metadata_with_them_is_refused_on_open(tmp_path, name):
    container = tmp_path / "a.n5"
    (container / "x").mkdir(parents=True)
    (container / "attributes.json").write_text(json.dumps({"n5": "4.0.0"}))
    (container / "x" / "attributes.json").write_text(json.dumps({
        "dimensions": [4, 4], "blockSize": [2, 2], "dataType": name,
        "compression": {"type": "raw"}}))
    match = rf"{container / 'x'}.*unsupported \"dataType\" \"{name}\""
    with pytest.raises(ValueError, match=match):
        _core.open_n5(str(container), "x")
    with pytest.raises(ValueError, match=match):
        bp.open_source(container, "x")
