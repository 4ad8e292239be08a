"""bioimage_py.sources.webknossos_source: WebKnossosSource / open_webknossos.

Every dataset is a real local WebKnossos dataset folder under a temporary directory, written by
the webknossos library itself (``Dataset(...).add_layer(...).add_mag(...).write(...)``), with
mags 1, 2 and 2-2-1 written explicitly so that numpy holds the exact voxels of each. webknossos
indexes ``(c, x, y, z)`` in Mag-1 coordinates; the oracle is the numpy ``(z, y, x)`` array at the
opened mag, and what webknossos itself reads back.

Remote datasets cannot be reached from the test machine: the remote code paths are run up to
``webknossos.RemoteDataset.open`` (the library's network entry point), which is replaced by one
that records its arguments and opens a local dataset; and against a refused connection.
"""
from __future__ import annotations

import os

# Hermetic: no version check against PyPI on import, no reader-import warning.
os.environ.setdefault("WEBKNOSSOS_SKIP_VERSION_CHECK", "True")
os.environ.setdefault("WEBKNOSSOS_SHOWED_IMAGE_READER_IMPORT_WARNING", "True")

import json  # noqa: E402
import pickle  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import cloudpickle  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import webknossos as wk  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import bioimage_py  # noqa: E402
import bioimage_py.sources as sources  # noqa: E402
from bioimage_py.sources import (  # noqa: E402
    SourceSpec,
    WebKnossosSource,
    from_spec,
    open_webknossos,
)

# webknossos recommends 32^3 or 64^3 chunks; small anisotropic ones keep the files tiny and show
# the (x, y, z) -> (z, y, x) reversal of chunk shapes.
pytestmark = pytest.mark.filterwarnings("ignore:.*chunk_shape.*is recommended:UserWarning")

CHUNK = (32, 16, 8)  # XYZ
SHARD = (64, 32, 16)  # XYZ
OFFSET = (5, 6, 7)  # XYZ start of the data bounding box (odd: not aligned with mag 2)
SIZE = (40, 30, 20)  # XYZ size of the data bounding box
DTYPES = ["uint8", "uint16", "uint32", "int8", "int16", "int32", "float32"]


@dataclass
class Written:
    """What was written at one mag: the Mag-1 XYZ origin and the (z, y, x) voxels at the mag."""

    offset: tuple[int, int, int]
    data: np.ndarray


def random_data(shape_zyx: tuple[int, ...], dtype: Any, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.normal(0, 100, shape_zyx).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape_zyx, dtype=dtype, endpoint=True)


def add_layer(dataset: Any, name: str, dtype: str, *, category: str = wk.COLOR_CATEGORY,
              data_format: str = "zarr3", chunk: Any = CHUNK, shard: Any = SHARD, seed: int = 0,
              **kwargs: Any) -> dict[str, Written]:
    """A layer with mag 1 over the data bounding box, mag 2 and mag 2-2-1 over it grown to
    whole voxels of those mags; returns what was written per mag name."""
    layer = dataset.add_layer(name, category, dtype=dtype, data_format=data_format, **kwargs)
    written = {}
    boxes = {
        "1": (OFFSET, SIZE),
        "2": ((4, 6, 6), (42, 30, 22)),
        "2-2-1": ((4, 6, 7), (42, 30, 20)),
    }
    for i, (mag, (offset, size)) in enumerate(boxes.items()):
        factors = wk.Mag(mag).to_list()
        shape_xyz = tuple(n // f for n, f in zip(size, factors))
        data = random_data(shape_xyz[::-1], dtype, seed + i)
        view = layer.add_mag(mag, chunk_shape=chunk, shard_shape=shard)
        view.write(data.T, absolute_offset=offset, allow_resize=True, allow_unaligned=True)
        written[mag] = Written(offset, data)
    # The coarser mags grew the layer's box; the data bounding box is mag 1's.
    layer.bounding_box = wk.BoundingBox(OFFSET, SIZE)
    return written


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[str, dict[str, dict[str, Written]]]:
    """A dataset folder with several layers: (path, {layer: {mag: Written}})."""
    path = tmp_path_factory.mktemp("wk") / "dataset"
    ds = wk.Dataset(path, voxel_size=(11, 11, 28))
    layers = {"color": add_layer(ds, "color", "uint16")}
    layers["segmentation"] = add_layer(
        ds, "segmentation", "uint64", category=wk.SEGMENTATION_CATEGORY, largest_segment_id=9,
        seed=3,
    )
    layers["color_zarr2"] = add_layer(ds, "color_zarr2", "uint8", data_format="zarr", shard=CHUNK,
                                      seed=6)
    layers["color_wkw"] = add_layer(ds, "color_wkw", "uint8", data_format="wkw", chunk=(32, 32, 32),
                                    shard=(64, 64, 64), seed=9)
    for i, dtype in enumerate(DTYPES):
        layers[f"dtype_{dtype}"] = add_layer(ds, f"dtype_{dtype}", dtype, seed=10 + 3 * i)
    rgb = ds.add_layer("rgb", wk.COLOR_CATEGORY, dtype="uint8", num_channels=3)
    rgb.add_mag(1, chunk_shape=CHUNK, shard_shape=SHARD).write(
        np.ones((3, 8, 8, 8), "uint8"), absolute_offset=(0, 0, 0), allow_resize=True
    )
    return str(path), layers


@pytest.fixture(scope="module")
def single_layer_dataset(tmp_path_factory) -> tuple[str, dict[str, Written]]:
    path = tmp_path_factory.mktemp("wk_single") / "single"
    return str(path), add_layer(wk.Dataset(path, voxel_size=(4, 4, 4)), "raw", "uint8", seed=50)


def wk_read(path: str, layer: str, mag: str, offset: Any, size: Any) -> np.ndarray:
    """What webknossos itself reads (Mag-1 XYZ box), as (z, y, x)."""
    view = wk.Dataset.open(path, read_only=True).get_layer(layer).get_mag(mag)
    return view.read(absolute_offset=offset, size=size)[0].T


# --- package -----------------------------------------------------------------------------------


def test_openers_are_exported():
    assert "open_webknossos" in bioimage_py.__all__
    assert bioimage_py.open_webknossos is open_webknossos
    assert {"WebKnossosSource", "open_webknossos"} <= set(sources.__all__)


def test_missing_webknossos_names_the_package(monkeypatch, dataset):
    monkeypatch.setitem(sys.modules, "webknossos", None)
    with pytest.raises(ImportError, match="pip install webknossos"):
        open_webknossos(dataset[0], layer_name="color")


# --- reading -----------------------------------------------------------------------------------


def test_reads_mag1(dataset):
    path, layers = dataset
    src = open_webknossos(path, layer_name="color")
    data = layers["color"]["1"].data
    assert src.shape == SIZE[::-1] == data.shape
    assert src.dtype == np.dtype("uint16") and src.ndim == 3
    assert src.chunks == CHUNK[::-1] and src.shards == SHARD[::-1]
    assert src.offset == OFFSET and src.view_size == SIZE and src.mag == (1, 1, 1)
    assert src.writable is False
    out = src[...]
    assert out.flags.c_contiguous and out.dtype == data.dtype
    np.testing.assert_array_equal(out, data)
    np.testing.assert_array_equal(out, wk_read(path, "color", "1", OFFSET, SIZE))
    np.testing.assert_array_equal(src[3:9, 2:20, 5:33], data[3:9, 2:20, 5:33])
    assert src[4, 5, 6] == data[4, 5, 6] and isinstance(src[4, 5, 6], np.uint16)


@pytest.mark.parametrize("mag", ["2", "2-2-1"])
def test_reads_coarser_mags(dataset, mag):
    """shape = Mag-1 size // mag; the default view is the data box grown to whole mag voxels."""
    path, layers = dataset
    written = layers["color"][mag]
    src = open_webknossos(path, layer_name="color", mag=mag)
    assert src.mag == tuple(wk.Mag(mag).to_list())
    assert src.offset == written.offset
    assert src.shape == written.data.shape
    assert tuple(n * f for n, f in zip(src.shape[::-1], src.mag)) == src.view_size
    np.testing.assert_array_equal(src[...], written.data)
    np.testing.assert_array_equal(src[2:7, 1:11, 3:15], written.data[2:7, 1:11, 3:15])


@pytest.mark.parametrize("mag", [2, "2", [2, 2, 2], (2, 2, 2), "2-2-2"])
def test_mag_spellings(dataset, mag):
    path, layers = dataset
    src = open_webknossos(path, layer_name="color", mag=mag)
    assert src.mag == (2, 2, 2) and src.to_spec().params["mag"] == 2
    np.testing.assert_array_equal(src[0], layers["color"]["2"].data[0])


def test_anisotropic_mag_is_recorded_as_a_list(dataset):
    src = open_webknossos(dataset[0], layer_name="color", mag="2-2-1")
    assert src.to_spec().params["mag"] == [2, 2, 1]
    assert from_spec(src.to_spec()).mag == (2, 2, 1)


@pytest.mark.parametrize(
    "layer", ["segmentation", "color_zarr2", "color_wkw", *(f"dtype_{d}" for d in DTYPES)]
)
def test_dtypes_formats_and_categories(dataset, layer):
    path, layers = dataset
    for mag, written in layers[layer].items():
        src = open_webknossos(path, layer_name=layer, mag=mag)
        assert src.dtype == written.data.dtype
        np.testing.assert_array_equal(src[...], written.data)


def test_chunks_and_shards_of_other_formats(dataset):
    zarr2 = open_webknossos(dataset[0], layer_name="color_zarr2")
    assert zarr2.chunks == CHUNK[::-1] and zarr2.shards is None
    wkw = open_webknossos(dataset[0], layer_name="color_wkw")
    assert wkw.chunks == (32, 32, 32) and wkw.shards == (64, 64, 64)


def test_reads_are_fresh_arrays(dataset):
    path, layers = dataset
    src = open_webknossos(path, layer_name="color")
    first = src[1:5, 2:9, 3:12]
    assert first.flags.c_contiguous and first.flags.writeable
    assert not first.flags.owndata  # webknossos' Fortran (c, x, y, z) buffer reversed: no copy
    first[...] = 0
    np.testing.assert_array_equal(src[1:5, 2:9, 3:12], layers["color"]["1"].data[1:5, 2:9, 3:12])


def test_empty_reads(dataset):
    src = open_webknossos(dataset[0], layer_name="color", mag=2)
    assert src[3:3].shape == (0, 15, 21)
    assert src[:, :, 9:2].shape == (11, 15, 0)


# --- views (offset / size in Mag-1 coordinates) ------------------------------------------------


def test_view_at_mag1_has_local_indices(dataset):
    path, layers = dataset
    data = layers["color"]["1"].data
    src = open_webknossos(path, layer_name="color", offset=(9, 10, 11), size=(20, 12, 6))
    assert src.shape == (6, 12, 20)
    expected = data[4:10, 4:16, 4:24]  # offset - data offset = (4, 4, 4)
    np.testing.assert_array_equal(src[...], expected)
    np.testing.assert_array_equal(src[2:, 3:7, -5:], expected[2:, 3:7, -5:])
    assert src[0, 0, 0] == data[4, 4, 4]


def test_view_at_mag2_is_given_in_mag1_coordinates(dataset):
    path, layers = dataset
    written = layers["color"]["2"]  # mag-2 voxel i covers Mag-1 [4 + 2i, 6 + 2i) in x, ...
    src = open_webknossos(path, layer_name="color", mag=2, offset=(10, 8, 12), size=(16, 20, 8))
    assert src.shape == (4, 10, 8)  # (8, 20, 16) // 2
    expected = written.data[3:7, 1:11, 3:11]  # (offset - (4, 6, 6)) // 2 = (3, 1, 3) in XYZ
    np.testing.assert_array_equal(src[...], expected)
    np.testing.assert_array_equal(src[...], wk_read(path, "color", "2", (10, 8, 12), (16, 20, 8)))


def test_view_size_defaults_to_the_rest_of_the_data_box(dataset):
    path, layers = dataset
    src = open_webknossos(path, layer_name="color", mag=2, offset=(20, 10, 14))
    assert src.view_size == (26, 26, 14)  # up to the grown end (46, 36, 28)
    np.testing.assert_array_equal(src[...], layers["color"]["2"].data[4:, 2:, 8:])


def test_views_beyond_the_data_read_zeros(dataset):
    path, layers = dataset
    src = open_webknossos(path, layer_name="color", offset=(0, 6, 7), size=(10, 30, 20))
    expected = np.zeros((20, 30, 10), "uint16")
    expected[:, :, 5:] = layers["color"]["1"].data[:, :, :5]
    np.testing.assert_array_equal(src[...], expected)


@pytest.mark.parametrize(
    ("mag", "offset", "size", "match"),
    [
        (2, (5, 6, 6), None, r"offset \[5, 6, 6\] .*not divisible by the mag \[2, 2, 2\]"),
        (2, None, (4, 4, 3), r"size \[4, 4, 3\] .*not divisible"),
        ("2-2-1", (4, 6, 7), (4, 4, 3), None),  # z is not downsampled: any z works
        (1, (-1, 0, 0), None, r"offset must not be negative, got \[-1, 0, 0\]"),
        (1, None, (1, -2, 1), r"size must not be negative"),
        (1, (1, 2), None, r"offset must be three integers .*\(1, 2\)"),
        (1, None, (1.5, 2, 2), "size must be three integers"),
    ],
)
def test_bad_offset_or_size(dataset, mag, offset, size, match):
    path = dataset[0]
    if match is None:
        src = open_webknossos(path, layer_name="color", mag=mag, offset=offset, size=size)
        assert src.shape == (3, 2, 2)
        return
    with pytest.raises(ValueError, match=match) as info:
        open_webknossos(path, layer_name="color", mag=mag, offset=offset, size=size)
    assert path in str(info.value)


# --- numpy is the oracle -----------------------------------------------------------------------


def has_step(index: Any) -> bool:
    entries = index if isinstance(index, tuple) else (index,)
    return any(isinstance(e, slice) and e.step not in (None, 1) for e in entries)


@pytest.fixture(scope="module")
def view_sources(dataset):
    """Views at mag 1 and mag 2, with their numpy oracles."""
    path, layers = dataset
    mag1 = open_webknossos(path, layer_name="color", offset=(7, 6, 9), size=(30, 22, 14))
    mag2 = open_webknossos(path, layer_name="color", mag=2, offset=(6, 8, 8), size=(30, 22, 14))
    return {
        1: (mag1, layers["color"]["1"].data[2:16, 0:22, 2:32]),
        2: (mag2, layers["color"]["2"].data[1:8, 1:12, 1:16]),
    }


def check_read(src: WebKnossosSource, expected_all: np.ndarray, index: Any) -> None:
    if has_step(index):
        with pytest.raises(ValueError, match="step"):
            src[index]
        return
    got, expected = src[index], expected_all[index]
    if isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray) and got.shape == expected.shape
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    else:
        assert type(got) is type(expected) and got == expected


@settings(max_examples=40, deadline=None)
@given(index=hnp.basic_indices((14, 22, 30), min_dims=0, allow_ellipsis=True, allow_newaxis=False))
def test_read_equals_numpy_mag1(view_sources, index):
    src, expected = view_sources[1]
    assert src.shape == expected.shape
    check_read(src, expected, index)


@settings(max_examples=40, deadline=None)
@given(index=hnp.basic_indices((7, 11, 15), min_dims=0, allow_ellipsis=True, allow_newaxis=False))
def test_read_equals_numpy_mag2(view_sources, index):
    src, expected = view_sources[2]
    assert src.shape == expected.shape
    check_read(src, expected, index)


# --- errors ------------------------------------------------------------------------------------


def test_read_only(dataset):
    path, layers = dataset
    src = open_webknossos(path, layer_name="color")
    assert not src.writable
    for index, value in (((0, 0, 0), 1), (..., 0), ((slice(0, 2),), np.zeros((2, 30, 40)))):
        with pytest.raises(TypeError, match="read-only"):
            src[index] = value
    np.testing.assert_array_equal(src[...], layers["color"]["1"].data)
    assert "read-only" in repr(src)


def test_multi_channel_layers_are_rejected(dataset):
    with pytest.raises(ValueError, match="single-channel") as info:
        open_webknossos(dataset[0], layer_name="rgb")
    assert "'rgb'" in str(info.value) and "3 channels" in str(info.value)


def test_unknown_layer_lists_the_layers(dataset):
    path, layers = dataset
    with pytest.raises(ValueError, match="no layer 'colour'") as info:
        open_webknossos(path, layer_name="colour")
    for name in [*layers, "rgb"]:
        assert repr(name) in str(info.value)


def test_default_layer_name(dataset, single_layer_dataset):
    path, layers = dataset
    with pytest.raises(ValueError, match="pass layer_name") as info:
        open_webknossos(path)
    assert "'color'" in str(info.value) and "'segmentation'" in str(info.value)
    single_path, written = single_layer_dataset
    src = open_webknossos(single_path)
    assert src.layer_name == "raw" and src.to_spec().params["layer_name"] == "raw"
    np.testing.assert_array_equal(src[...], written["1"].data)


def test_unknown_mag_lists_the_mags(dataset):
    with pytest.raises(ValueError, match=r"no mag 4; its mags: 1, 2, 2-2-1"):
        open_webknossos(dataset[0], layer_name="color", mag=4)


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no WebKnossos dataset folder at .*nowhere"):
        open_webknossos(tmp_path / "nowhere")
    (tmp_path / "not_a_dataset").mkdir()
    with pytest.raises(FileNotFoundError, match="not_a_dataset"):
        open_webknossos(tmp_path / "not_a_dataset")


def test_read_of_the_wrong_extent_is_a_runtime_error(dataset, monkeypatch):
    """A MagView returning less than asked (a library fault) is caught, not returned."""
    src = open_webknossos(dataset[0], layer_name="color")
    real_read = src.mag_view.read
    monkeypatch.setattr(src.mag_view, "read", lambda **kw: real_read(**kw)[:, :-1])
    with pytest.raises(RuntimeError, match=r"shape \(1, 3, 3, 2\) instead of \(1, 4, 3, 2\)"):
        src[0:2, 0:3, 0:4]


# --- spec, reopening, pickling -----------------------------------------------------------------


def test_spec(dataset):
    path = dataset[0]
    src = open_webknossos(path, layer_name="color", mag=2, offset=(6, 8, 8), size=(30, 22, 14))
    spec = src.to_spec()
    assert spec.kind == "webknossos" and spec.path == path
    assert spec.params == {
        "dataset_name_or_url": path, "organization_id": None, "layer_name": "color", "mag": 2,
        "offset": [6, 8, 8], "size": [30, 22, 14],
    }
    again = SourceSpec.from_json(spec.to_json())
    assert again == spec
    reopened = from_spec(again)
    assert isinstance(reopened, WebKnossosSource) and reopened.to_spec() == spec
    np.testing.assert_array_equal(reopened[...], src[...])
    assert WebKnossosSource.reopen(spec).shape == src.shape
    with pytest.raises(ValueError, match="'webknossos' spec"):
        WebKnossosSource.reopen(SourceSpec("zarr", "/x.zarr"))


def test_local_paths_become_absolute(dataset, monkeypatch):
    path = dataset[0]
    monkeypatch.chdir(Path(path).parent)
    for location in ("dataset", Path("dataset"), "file://" + path, Path(path)):
        src = open_webknossos(location, layer_name="color")
        assert src.to_spec().params["dataset_name_or_url"] == path, location


@pytest.mark.parametrize("pickler", [pickle, cloudpickle], ids=["pickle", "cloudpickle"])
def test_pickles_as_its_spec(dataset, pickler):
    path, layers = dataset
    src = open_webknossos(path, layer_name="segmentation", mag=2, offset=(8, 8, 8), size=(8, 8, 8))
    blob = pickler.dumps(src)
    assert len(blob) < 2000
    again = pickle.loads(blob)
    assert again.to_spec() == src.to_spec()
    np.testing.assert_array_equal(again[...], layers["segmentation"]["2"].data[1:5, 1:5, 2:6])


def test_spec_reopened_in_another_process(dataset):
    path, layers = dataset
    src = open_webknossos(path, layer_name="color", mag="2-2-1", offset=(8, 8, 9), size=(20, 14, 6))
    code = textwrap.dedent(
        """
        import json, sys
        from bioimage_py.sources import SourceSpec, from_spec

        src = from_spec(SourceSpec.from_json(sys.argv[1]))
        block = src[...]
        print(json.dumps({"sum": int(block.sum()), "shape": list(block.shape),
                          "corner": int(block[0, 0, 0]), "writable": src.writable}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, src.to_spec().to_json()],
        capture_output=True, text=True, check=True, timeout=120,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    view = layers["color"]["2-2-1"].data[2:8, 1:8, 2:12]
    assert result == {"sum": int(view.sum(dtype=np.int64)), "shape": [6, 7, 10],
                      "corner": int(view[0, 0, 0]), "writable": False}


# --- remote datasets (up to the network) -------------------------------------------------------


@pytest.fixture
def fake_server(dataset, monkeypatch):
    """Replace webknossos' network entry point: record the call, serve the local dataset."""
    calls = []

    def open_remote(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return wk.Dataset.open(dataset[0], read_only=True)

    monkeypatch.setattr(wk.RemoteDataset, "open", open_remote)
    return calls


URL = "https://webknossos.example.org/datasets/lab-l4_sample-66f3c3c2d2a1a8b0/view"
ANNOTATION_URL = "https://webknossos.example.org/annotations/66f3c3c2d2a1a8b00000aaaa"


@pytest.mark.parametrize(
    ("args", "call"),
    [
        (("l4_sample", "scalable_minds"),
         (("l4_sample",), {"organization_id": "scalable_minds", "read_only": True})),
        ((URL,), ((URL,), {"organization_id": None, "read_only": True})),
        ((ANNOTATION_URL,), ((), {"annotation_id_or_url": ANNOTATION_URL, "read_only": True})),
    ],
    ids=["name", "url", "annotation"],
)
def test_remote_datasets_are_opened_through_webknossos(dataset, fake_server, args, call):
    path, layers = dataset
    src = open_webknossos(*args, layer_name="color", mag=2)
    assert fake_server == [call]
    np.testing.assert_array_equal(src[...], layers["color"]["2"].data)
    spec = src.to_spec()
    assert spec.params["dataset_name_or_url"] == args[0]
    assert spec.params["organization_id"] == (args[1] if len(args) > 1 else None)
    from_spec(SourceSpec.from_json(spec.to_json()))  # a worker goes through the server again
    assert fake_server == [call, call]


def test_organization_id_with_a_url_is_refused(fake_server):
    with pytest.raises(ValueError, match="organization_id='lab' cannot be combined with the URL"):
        open_webknossos(URL, organization_id="lab", layer_name="color")
    assert fake_server == []


@pytest.mark.parametrize(
    "args",
    [
        ("http://127.0.0.1:9/datasets/l4_sample-66f3c3c2d2a1a8b0/view",),
        ("http://127.0.0.1:9/annotations/66f3c3c2d2a1a8b00000aaaa",),
        ("l4_sample", "scalable_minds"),
    ],
    ids=["url", "annotation", "name"],
)
def test_unreachable_server_fails_fast_and_names_the_dataset(args):
    start = time.monotonic()
    with wk.webknossos_context(url="http://127.0.0.1:9"), pytest.raises(Exception) as info:
        open_webknossos(*args, layer_name="color")
    assert time.monotonic() - start < 20
    assert not isinstance(info.value, (AssertionError, TypeError))
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert repr(args[0]) in notes, notes


def test_repr(dataset):
    src = open_webknossos(dataset[0], layer_name="color", mag=2, offset=(6, 8, 8), size=(2, 4, 6))
    text = repr(src)
    for part in ("WebKnossosSource(", "layer='color'", "mag=2", "offset=[6, 8, 8]",
                 "size=[2, 4, 6]", "shape=(3, 2, 1)", "read-only"):
        assert part in text


def test_c_ordered_reads_are_transposed_in_rust(dataset, monkeypatch):
    """Should webknossos hand back a C-ordered buffer, the result is still a C-ordered copy."""
    path, layers = dataset
    src = open_webknossos(path, layer_name="color")
    real_read = src.mag_view.read
    monkeypatch.setattr(src.mag_view, "read", lambda **kw: np.ascontiguousarray(real_read(**kw)))
    out = src[1:5, 2:9, 3:12]
    assert out.flags.c_contiguous and out.flags.owndata
    np.testing.assert_array_equal(out, layers["color"]["1"].data[1:5, 2:9, 3:12])
