"""Zipped zarrs (``vol.zarr.zip``, v2 and v3, sharded too) written by zarr-python's ``ZipStore``,
read natively (and read-only) by ``open_source``, voxel-exact against numpy."""
from __future__ import annotations

import multiprocessing
import pickle
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.storage import ZipStore

from bioimage_py import create_array, open_source
from bioimage_py.sources import from_spec

import remote_peers as peers

SHAPE = (37, 29, 23)
CHUNKS = (8, 8, 8)
SHARDS = (16, 16, 8)
FILL = 7
LAYOUTS = {
    "v2": {"zarr_format": 2},
    "v3": {"zarr_format": 3},
    "v3-sharded": {"zarr_format": 3, "shards": SHARDS},
}
INDICES: list[Any] = [
    ...,
    (slice(3, 17), slice(None), slice(5, 6)),
    (5, slice(None), slice(None)),
    (slice(-10, None), slice(2, -3), 7),
    (36, 28, 22),
    (slice(9, 9),),
]


def oracle(seed: int = 0, dtype: Any = np.uint16) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(info.min, info.max, size=SHAPE, dtype=dtype,
                                                endpoint=True)


def write_zip(path: Path, data: np.ndarray, *, region: tuple[slice, ...] | None = None,
              path_in_zip: str | None = None, fill_value: Any = 0, **layout: Any) -> None:
    """``data`` (into ``region``) as a zarr inside the zip file ``path``, by zarr-python."""
    store = ZipStore(path, mode="w")
    try:
        if path_in_zip is None:
            array = zarr.create_array(store, shape=SHAPE, chunks=CHUNKS, dtype=data.dtype,
                                      fill_value=fill_value, **layout)
        else:
            group = zarr.open_group(store, mode="w", zarr_format=layout.get("zarr_format", 3))
            array = group.create_array(path_in_zip, shape=SHAPE, chunks=CHUNKS, dtype=data.dtype,
                                       fill_value=fill_value,
                                       **{k: v for k, v in layout.items() if k != "zarr_format"})
        if region is None:
            array[...] = data
        else:
            array[region] = data[region]
    finally:
        store.close()


def assert_reads_like(src: Any, expected: np.ndarray) -> None:
    assert src.shape == expected.shape and src.dtype == expected.dtype
    for index in INDICES:
        np.testing.assert_array_equal(src[index], expected[index], err_msg=str(index))
    for z in range(0, SHAPE[0], 16):
        region = (slice(max(0, z - 3), z + 19), slice(5, 26), slice(None))
        np.testing.assert_array_equal(src[region], expected[region], err_msg=str(region))


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_read_zipped_zarr(tmp_path: Path, layout: str) -> None:
    data = oracle(seed=1)
    path = tmp_path / "vol.zarr.zip"
    write_zip(path, data, **LAYOUTS[layout])
    assert zipfile.is_zipfile(path)
    src = open_source(path)
    assert src.chunks == CHUNKS and not src.writable
    assert_reads_like(src, data)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_missing_chunks_in_zip(tmp_path: Path, layout: str) -> None:
    data = oracle(seed=2)
    written = (slice(0, 16), slice(8, 24), slice(0, 23))
    path = tmp_path / "vol.zarr.zip"
    write_zip(path, data, region=written, fill_value=FILL, **LAYOUTS[layout])
    expected = np.full(SHAPE, FILL, dtype=data.dtype)
    expected[written] = data[written]
    src = open_source(path)
    assert_reads_like(src, expected)
    assert src.chunk_exists((0, 1, 0)) and not src.chunk_exists((4, 3, 2))


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_array_in_a_zipped_group(tmp_path: Path, layout: str) -> None:
    data = oracle(seed=3, dtype=np.int32)
    path = tmp_path / "group.zarr.zip"
    write_zip(path, data, path_in_zip="raw/s0", **LAYOUTS[layout])
    src = open_source(path, "raw/s0")
    assert src.internal_path == "raw/s0"
    assert_reads_like(src, data)


def test_zip_is_read_only(tmp_path: Path) -> None:
    data = oracle(seed=4)
    path = tmp_path / "vol.zarr.zip"
    write_zip(path, data, zarr_format=3)
    before = path.read_bytes()
    for mode in ("r+", "a", "w"):
        with pytest.raises((PermissionError, ValueError)) as info:
            open_source(path, mode=mode)
        assert str(path) in str(info.value), mode
    with pytest.raises((PermissionError, ValueError)) as info:
        create_array(tmp_path / "new.zarr.zip", shape=(4, 4), chunks=(2, 2), dtype="uint8")
    assert "new.zarr.zip" in str(info.value)
    src = open_source(path)
    with pytest.raises(TypeError):
        src[0:2] = 0
    assert path.read_bytes() == before
    assert not (tmp_path / "new.zarr.zip").exists()


def test_missing_or_broken_zip(tmp_path: Path) -> None:
    with pytest.raises((FileNotFoundError, ValueError)) as info:
        open_source(tmp_path / "missing.zarr.zip")
    assert "missing.zarr.zip" in str(info.value)
    broken = tmp_path / "broken.zarr.zip"
    broken.write_bytes(b"PK\x03\x04 this is not a whole zip file")
    with pytest.raises((OSError, ValueError)) as info:
        open_source(broken)
    assert "broken.zarr.zip" in str(info.value)


def test_zip_spec_reopens_in_another_process(tmp_path: Path) -> None:
    data = oracle(seed=5)
    path = tmp_path / "vol.zarr.zip"
    write_zip(path, data, zarr_format=3, shards=SHARDS)
    src = open_source(path)
    spec = src.to_spec()
    assert spec.path == str(path)
    np.testing.assert_array_equal(from_spec(spec)[...], data)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(src))[1:4], data[1:4])
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        got = pool.submit(peers.read_from_spec_json, spec.to_json(), (slice(None), 3))
        np.testing.assert_array_equal(got.result(timeout=300), data[:, 3])
