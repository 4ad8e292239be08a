"""OME-Zarr images (NGFF 0.4 on zarr v2, 0.5 on zarr v3): reading what ome-zarr-py writes,
writing pyramids that ome-zarr-py reads and ome-zarr-models validates.

Oracles: ome-zarr-py (``ome_zarr.writer`` / ``ome_zarr.reader``), ome-zarr-models (the NGFF
validators), zarr-python (metadata edits, array reads), numpy (values and coordinate maths).
"""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

import bioimage_py
from bioimage_py import create_array, open_source
from bioimage_py import write_ome_pyramid
from bioimage_py.sources import as_source, from_spec
from bioimage_py.wrapper import RoiSource

ome_zarr_writer = pytest.importorskip("ome_zarr.writer")
ome_zarr_format = pytest.importorskip("ome_zarr.format")
ome_zarr_io = pytest.importorskip("ome_zarr.io")
ome_zarr_reader = pytest.importorskip("ome_zarr.reader")
models_v04 = pytest.importorskip("ome_zarr_models.v04.image")
models_v04_label = pytest.importorskip("ome_zarr_models.v04.image_label")
models_v05 = pytest.importorskip("ome_zarr_models.v05.image")
models_v05_multiscales = pytest.importorskip("ome_zarr_models.v05.multiscales")

# zarr format -> (ome-zarr-py format, ome-zarr-models image class, NGFF version)
FORMATS = {
    2: (ome_zarr_format.FormatV04, models_v04.Image, "0.4"),
    3: (ome_zarr_format.FormatV05, models_v05.Image, "0.5"),
}
ZARR_FORMATS = sorted(FORMATS)


# --- helpers ----------------------------------------------------------------------------------


def _peer_group(path, zarr_format):
    return zarr.open_group(str(path), mode="w", zarr_format=zarr_format)


def _peer_read(path, zarr_format):
    """The image node ome-zarr-py reads at ``path``: its levels as numpy arrays, its metadata."""
    fmt = FORMATS[zarr_format][0]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ome-zarr-py's notes on versions and dask
        nodes = list(ome_zarr_reader.Reader(ome_zarr_io.parse_url(str(path), fmt=fmt))())
    node = nodes[0]
    return [np.asarray(level) for level in node.data], node.metadata


def _validate(path, zarr_format):
    """ome-zarr-models' model of the image group at ``path`` (raises when it is invalid)."""
    group = zarr.open_group(str(path), mode="r", zarr_format=zarr_format)
    return FORMATS[zarr_format][1].from_zarr(group)


def _composed(transform_lists, ndim):
    """Scale and translation of coordinate transformations applied in order, as numpy maps
    index vectors: each transformation applied to the points one after the other."""
    points = np.array([[0.0] * ndim, [1.0] * ndim])
    for transforms in transform_lists:
        for transform in transforms or []:
            if transform["type"] == "scale":
                points = points * np.array(transform["scale"])
            elif transform["type"] == "translation":
                points = points + np.array(transform["translation"])
    return list(points[1] - points[0]), list(points[0])


def _group_attributes(path, zarr_format):
    return dict(zarr.open_group(str(path), mode="r", zarr_format=zarr_format).attrs)


def _multiscale(path, zarr_format, group=""):
    attrs = dict(zarr.open_group(str(path), mode="r", zarr_format=zarr_format)[group].attrs) \
        if group else _group_attributes(path, zarr_format)
    return (attrs["ome"] if zarr_format == 3 else attrs)["multiscales"][0]


def _update_multiscale(path, zarr_format, group, **members):
    """Add members to the first multiscale of the image group ``group`` with zarr-python."""
    node = zarr.open_group(str(path), mode="r+", zarr_format=zarr_format)
    if group:
        node = node[group]
    attrs = dict(node.attrs)
    holder = attrs["ome"] if zarr_format == 3 else attrs
    holder["multiscales"][0].update(members)
    node.attrs.update(attrs)


# --- reading images written by ome-zarr-py -----------------------------------------------------


@pytest.mark.parametrize("zarr_format", ZARR_FORMATS)
def test_write_image_of_ome_zarr_py_opens_at_full_resolution(tmp_path, zarr_format):
    fmt = FORMATS[zarr_format][0]()
    data = np.random.default_rng(1).integers(0, 60000, (2, 16, 64, 48), dtype=np.uint16)
    path = tmp_path / "image.ome.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ome_zarr_writer.write_image(data, _peer_group(path, zarr_format), axes="czyx", fmt=fmt)
    levels, metadata = _peer_read(path, zarr_format)
    paths = [d["path"] for d in _multiscale(path, zarr_format)["datasets"]]
    assert paths[0] == "s0" and len(paths) == len(levels) > 1  # recent ome-zarr-py: s0, s1, ...

    src = open_source(path)
    assert src.internal_path == "s0"
    np.testing.assert_array_equal(src[:], data)
    ome = src.ome
    assert ome["levels"] == paths and ome["level"] == "s0"
    assert ome["version"] == FORMATS[zarr_format][2]
    assert ome["axes"] == metadata["axes"]
    assert [axis["name"] for axis in ome["axes"]] == list("czyx")
    for k, (path_k, level) in enumerate(zip(paths, levels)):
        src_k = open_source(path, path_k)
        assert src_k.internal_path == path_k and src_k.shape == level.shape
        np.testing.assert_array_equal(src_k[:], level)
        scale, translation = _composed([metadata["coordinateTransformations"][k]], 4)
        assert src_k.ome["level"] == path_k and src_k.ome["levels"] == paths
        assert src_k.ome["scale"] == pytest.approx(scale)
        assert src_k.ome["translation"] == pytest.approx(translation)
    # the level's spec reopens that level, with the same metadata
    spec = open_source(path, "s2").to_spec()
    assert spec.internal_path == "s2"
    for reopened in (from_spec(spec), from_spec(json.loads(spec.to_json())),
                     pickle.loads(pickle.dumps(open_source(path, "s2")))):
        assert reopened.internal_path == "s2"
        assert reopened.ome == open_source(path, "s2").ome
        np.testing.assert_array_equal(reopened[:], levels[2])
    # the full-resolution level opened by default reopens as "s0"
    assert from_spec(src.to_spec()).ome == ome


@pytest.mark.parametrize("zarr_format", ZARR_FORMATS)
def test_write_multiscale_with_units_and_translations(tmp_path, zarr_format):
    fmt = FORMATS[zarr_format][0]()
    base = np.arange(8 * 12 * 10, dtype=np.float32).reshape(8, 12, 10)
    pyramid = [base, base[::2, ::2, ::2].copy(), base[::4, ::4, ::4].copy()]
    transforms = [
        [{"type": "scale", "scale": [2.0 * 2**k, 0.5 * 2**k, 0.5 * 2**k]},
         {"type": "translation", "translation": [1.0, -3.0, 0.25 * k]}]
        for k in range(3)
    ]
    axes = [
        {"name": "z", "type": "space", "unit": "micrometer"},
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"},
    ]
    path = tmp_path / "multiscale.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ome_zarr_writer.write_multiscale(
            pyramid, _peer_group(path, zarr_format), fmt=fmt, axes=axes,
            coordinate_transformations=transforms,
        )
    _validate(path, zarr_format)
    paths = [d["path"] for d in _multiscale(path, zarr_format)["datasets"]]
    src = open_source(path)
    assert src.internal_path == paths[0]
    assert src.ome["axes"] == axes
    for k, level in enumerate(pyramid):
        src_k = open_source(path, paths[k])
        np.testing.assert_array_equal(src_k[:], level)
        scale, translation = _composed([transforms[k]], 3)
        assert src_k.ome["scale"] == pytest.approx(scale)
        assert src_k.ome["translation"] == pytest.approx(translation)
        assert src_k.ome["level"] == paths[k]


@pytest.mark.parametrize("zarr_format", ZARR_FORMATS)
@pytest.mark.parametrize(
    ("axes", "shape", "scale_factors", "scale"),
    [
        # per-axis factors (dicts): z kept at level 1, uneven sizes
        ("tczyx", (2, 2, 9, 33, 26), [{"z": 1, "y": 2, "x": 2}, {"z": 2, "y": 4, "x": 4}],
         {"z": 2.0, "y": 0.3, "x": 0.3}),
        ("yx", (50, 37), (2, 4, 8), {"y": 0.5, "x": 0.25}),
        ("cyx", (3, 40, 36), (2,), None),
    ],
)
def test_every_level_of_ome_zarr_py_images_opens_with_its_transformations(
    tmp_path, zarr_format, axes, shape, scale_factors, scale
):
    """ome-zarr-py's own pyramid (its ``scale_factors``, physical ``scale`` and units): every
    level opens by its dataset path with the data and the scale and translation it reads."""
    fmt = FORMATS[zarr_format][0]()
    data = np.random.default_rng(11).integers(0, 250, shape, dtype=np.uint8)
    path = tmp_path / "peer.ome.zarr"
    units = {name: "micrometer" for name in scale} if scale else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ome_zarr_writer.write_image(
            data, _peer_group(path, zarr_format), axes=axes, fmt=fmt,
            scale_factors=scale_factors, scale=scale, axes_units=units,
        )
    _validate(path, zarr_format)
    levels, metadata = _peer_read(path, zarr_format)
    paths = [d["path"] for d in _multiscale(path, zarr_format)["datasets"]]
    assert len(paths) == len(levels) == len(scale_factors) + 1
    full = open_source(path)
    assert full.internal_path == paths[0]
    assert full.ome["axes"] == metadata["axes"] and full.ome["levels"] == paths
    for k, (path_k, level) in enumerate(zip(paths, levels)):
        src = open_source(path, path_k)
        assert src.internal_path == path_k and src.shape == level.shape
        np.testing.assert_array_equal(src[:], level)
        expected_scale, expected_translation = _composed(
            [metadata["coordinateTransformations"][k]], len(shape))
        assert src.ome["level"] == path_k
        assert src.ome["scale"] == pytest.approx(expected_scale)
        assert src.ome["translation"] == pytest.approx(expected_translation)
        # by hand: the spacing of the level's samples along each axis; ome-zarr-py centres
        # each level's voxels on the ones they summarize, (factor - 1) / 2 voxels of s0 in
        factors = [n0 / n for n0, n in zip(shape, level.shape)]
        spacing = [(scale or {}).get(name, 1.0) for name in axes]
        assert src.ome["scale"] == pytest.approx([s * f for s, f in zip(spacing, factors)])
        if scale is not None:
            assert src.ome["translation"] == pytest.approx(
                [s * (f - 1) / 2 for s, f in zip(spacing, factors)])
        # the level's spec (and a pickle) reopens that level with the same metadata
        reopened = pickle.loads(pickle.dumps(src))
        assert reopened.internal_path == path_k and reopened.ome == src.ome


@pytest.mark.parametrize("zarr_format", ZARR_FORMATS)
def test_chunked_and_sharded_images_of_ome_zarr_py(tmp_path, zarr_format):
    """ome-zarr-py's ``storage_options``: its chunks (and shards, NGFF 0.5) are the levels'."""
    fmt = FORMATS[zarr_format][0]()
    data = np.random.default_rng(16).integers(0, 60000, (24, 64, 64), dtype=np.uint16)
    path = tmp_path / "chunked.ome.zarr"
    options = {"chunks": (8, 16, 16)}
    if zarr_format == 3:
        options["shards"] = (16, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ome_zarr_writer.write_image(data, _peer_group(path, zarr_format), axes="zyx", fmt=fmt,
                                    scale_factors=(2, 4), storage_options=options)
    levels, _ = _peer_read(path, zarr_format)
    for k, level in enumerate(levels):
        src = open_source(path, f"s{k}")
        assert src.chunks == (8, 16, 16)
        assert src.shards == ((16, 32, 32) if zarr_format == 3 else None)
        np.testing.assert_array_equal(src[:], level)
        np.testing.assert_array_equal(src[5:19, 3:30, 7:], level[5:19, 3:30, 7:])


@pytest.mark.parametrize("zarr_format", ZARR_FORMATS)
def test_image_in_a_subgroup_opens_by_its_group_path(tmp_path, zarr_format):
    fmt = FORMATS[zarr_format][0]()
    data = np.random.default_rng(2).integers(0, 255, (32, 40), dtype=np.uint8)
    path = tmp_path / "store.zarr"
    root = _peer_group(path, zarr_format)
    root.create_array("other", shape=(3,), dtype="uint8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ome_zarr_writer.write_image(data, root.create_group("images/raw"), axes="yx", fmt=fmt)
    # the store root is no image: today's error, listing the arrays
    with pytest.raises(ValueError, match="internal_path") as info:
        open_source(path)
    assert "'other'" in str(info.value) and "'images/raw/s0'" in str(info.value)
    src = open_source(path, "images/raw")
    assert src.internal_path == "images/raw/s0"
    np.testing.assert_array_equal(src[:], data)
    assert src.ome["level"] == "s0"
    assert open_source(path, "/images/raw/s1/").ome["level"] == "s1"
    assert open_source(path, "images/raw/s1").ome["scale"] == [2.0, 2.0]
    assert from_spec(src.to_spec()).internal_path == "images/raw/s0"
    assert open_source(path, "other").ome is None


@pytest.mark.parametrize("zarr_format", ZARR_FORMATS)
def test_labels_with_transformations_at_both_levels(tmp_path, zarr_format):
    """A labels image whose datasets and multiscale both carry coordinate transformations:
    the opened level's scale and translation compose the two (dataset's first)."""
    fmt = FORMATS[zarr_format][0]()
    image = np.random.default_rng(3).random((2, 16, 24, 20)).astype(np.float32)
    labels = np.random.default_rng(4).integers(0, 7, (16, 24, 20)).astype(np.uint32)
    label_pyramid = [labels, labels[:, ::2, ::2].copy()]
    dataset_transforms = [
        [{"type": "scale", "scale": [0.5, 0.25 * 2**k, 0.25 * 2**k]},
         {"type": "translation", "translation": [0.0, 0.125 * k, 0.125 * k]}]
        for k in range(2)
    ]
    multiscale_transforms = [
        {"type": "scale", "scale": [2.0, 4.0, 4.0]},
        {"type": "translation", "translation": [10.0, -5.0, 3.0]},
    ]
    path = tmp_path / "with_labels.zarr"
    root = _peer_group(path, zarr_format)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ome_zarr_writer.write_image(image, root, axes="czyx", fmt=fmt)
        ome_zarr_writer.write_multiscale_labels(
            label_pyramid, root, name="cells", fmt=fmt, axes="zyx",
            coordinate_transformations=dataset_transforms,
        )
    _update_multiscale(path, zarr_format, "labels/cells",
                       coordinateTransformations=multiscale_transforms)
    labels_group = zarr.open_group(str(path), mode="r", zarr_format=zarr_format)["labels/cells"]
    if zarr_format == 2:
        models_v04_label.ImageLabel.from_zarr(labels_group)  # valid NGFF, both transforms
    else:  # ome-zarr-py writes no dimension_names for labels: check the multiscale only
        models_v05_multiscales.Multiscale.model_validate(
            dict(labels_group.attrs)["ome"]["multiscales"][0]
        )
    paths = [d["path"] for d in _multiscale(path, zarr_format, "labels/cells")["datasets"]]

    assert open_source(path).internal_path == "s0"  # the image, not its labels
    assert open_source(path).ome["axes"][0]["name"] == "c"
    src = open_source(path, "labels/cells")
    assert src.internal_path == f"labels/cells/{paths[0]}"
    np.testing.assert_array_equal(src[:], labels)
    for k in range(2):
        src_k = open_source(path, f"labels/cells/{paths[k]}")
        np.testing.assert_array_equal(src_k[:], label_pyramid[k])
        scale, translation = _composed([dataset_transforms[k], multiscale_transforms], 3)
        ome = src_k.ome
        assert ome["levels"] == paths and ome["level"] == paths[k]
        assert [axis["name"] for axis in ome["axes"]] == list("zyx")
        assert ome["scale"] == pytest.approx(scale)
        assert ome["translation"] == pytest.approx(translation)
    # by hand: scale 0.5*2, 0.5*4, 0.5*4 at level 1; translation 0*2+10, 0.125*4-5, 0.125*4+3
    level1 = open_source(path, f"labels/cells/{paths[1]}").ome
    assert level1["scale"] == pytest.approx([1.0, 2.0, 2.0])
    assert level1["translation"] == pytest.approx([10.0, -4.5, 3.5])


@settings(max_examples=25, deadline=None)
@given(
    zarr_format=st.sampled_from(ZARR_FORMATS),
    dataset=st.lists(
        st.tuples(st.sampled_from(["scale", "translation", "identity"]),
                  st.lists(st.floats(0.125, 8.0), min_size=3, max_size=3)),
        max_size=3,
    ),
    multiscale=st.lists(
        st.tuples(st.sampled_from(["scale", "translation"]),
                  st.lists(st.floats(-8.0, 8.0).filter(lambda v: abs(v) >= 1e-3), min_size=3,
                           max_size=3)),
        max_size=3,
    ),
)
def test_scale_and_translation_compose_as_the_transformations_map_points(
    tmp_path_factory, zarr_format, dataset, multiscale
):
    def transforms(entries):
        return [{"type": kind} if kind == "identity" else {"type": kind, kind: vector}
                for kind, vector in entries]

    path = tmp_path_factory.mktemp("compose") / "image.zarr"
    root = _peer_group(path, zarr_format)
    root.create_array("0", shape=(4, 5, 6), dtype="uint8")
    ms = {"axes": [{"name": n, "type": "space"} for n in "zyx"],
          "datasets": [{"path": "0", "coordinateTransformations": transforms(dataset)}],
          "coordinateTransformations": transforms(multiscale)}
    root.attrs.update({"ome": {"version": "0.5", "multiscales": [ms]}} if zarr_format == 3
                      else {"multiscales": [{**ms, "version": "0.4"}]})
    ome = open_source(path).ome
    scale, translation = _composed([transforms(dataset), transforms(multiscale)], 3)
    assert ome["scale"] == pytest.approx(scale)
    assert ome["translation"] == pytest.approx(translation)
    # the reported transformation maps index vectors as the chain does
    index = np.array([3.0, 1.0, 2.0])
    points = index
    for entry in transforms(dataset) + transforms(multiscale):
        if entry["type"] == "scale":
            points = points * np.array(entry["scale"])
        elif entry["type"] == "translation":
            points = points + np.array(entry["translation"])
    np.testing.assert_allclose(index * np.array(ome["scale"]) + ome["translation"], points)


# --- non-OME containers keep today's behaviour --------------------------------------------------


@pytest.mark.parametrize("zarr_format", ZARR_FORMATS)
def test_non_ome_groups_keep_their_errors(tmp_path, zarr_format):
    path = tmp_path / "plain.zarr"
    root = _peer_group(path, zarr_format)
    root.create_array("a", shape=(4, 4), dtype="uint8")
    root.create_array("g/b", shape=(4, 4), dtype="uint8")
    with pytest.raises(ValueError, match="holds 2 arrays; pass internal_path") as info:
        open_source(path)
    assert "'a'" in str(info.value) and "'g/b'" in str(info.value)
    with pytest.raises(ValueError, match="is a group, not an array"):
        open_source(path, "g")
    assert open_source(path, "a").ome is None
    # a group of one array still opens it, and it is no image level
    single = tmp_path / "single.zarr"
    _peer_group(single, zarr_format).create_array("only/x", shape=(3, 3), dtype="int16")
    assert open_source(single).internal_path == "only/x"
    assert open_source(single).ome is None
    # a group with other attributes is no image either
    root.attrs.update({"multiscale_like": 1, "ome": {"version": "0.5"}})
    with pytest.raises(ValueError, match="holds 2 arrays"):
        open_source(path)


def test_ome_is_none_for_other_sources(tmp_path):
    assert as_source(np.zeros((3, 3))).ome is None
    assert create_array(tmp_path / "a.zarr", shape=(4, 4), dtype="uint8").ome is None
    n5 = create_array(tmp_path / "a.n5", "x", shape=(4, 4), dtype="uint8")
    assert open_source(n5.path, "x").ome is None
    h5 = create_array(tmp_path / "a.h5", "x", shape=(4, 4), dtype="uint8")
    assert open_source(h5.path, "x").ome is None
    level = write_ome_pyramid(np.zeros((8, 8), np.uint8), tmp_path / "p.zarr", levels=2)
    assert level.ome is not None
    assert RoiSource(level, np.s_[:4]).ome is None  # a view is no longer the level


@pytest.mark.parametrize("zarr_format", ZARR_FORMATS)
def test_malformed_ome_metadata_raise_naming_the_file(tmp_path, zarr_format):
    path = tmp_path / "bad.zarr"
    root = _peer_group(path, zarr_format)
    root.create_array("0", shape=(4, 4), dtype="uint8")
    root.create_array("1", shape=(2, 2), dtype="uint8")
    axes = [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]

    def set_multiscales(multiscales):
        root.attrs.update({"ome": {"version": "0.5", "multiscales": multiscales}}
                          if zarr_format == 3 else {"multiscales": multiscales})

    set_multiscales([{"axes": axes, "datasets": [{"path": "missing"}]}])
    with pytest.raises(ValueError, match="'missing' as its full-resolution level"):
        open_source(path)
    set_multiscales([{"axes": axes, "datasets": []}])
    with pytest.raises(ValueError, match="non-empty list of 'datasets'"):
        open_source(path)
    set_multiscales("no list")
    with pytest.raises(ValueError, match="'multiscales' must be a non-empty list"):
        open_source(path)
    set_multiscales([{"axes": axes, "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "affine", "affine": []}]}]}])
    src = open_source(path)
    assert src.internal_path == "0"
    with pytest.raises(ValueError, match="unsupported coordinate transformation"):
        _ = src.ome
    set_multiscales([{"axes": axes, "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0]}]}]}])
    with pytest.raises(ValueError, match=r"must hold 2 numbers"):
        _ = open_source(path).ome
    set_multiscales([{"axes": axes, "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "path": "s.bin"}]}]}])
    with pytest.raises(ValueError, match="binary files are not supported"):
        _ = open_source(path).ome
    set_multiscales([{"axes": axes[:1], "datasets": [{"path": "0"}]}])
    with pytest.raises(ValueError, match="'axes' must list 2 axes"):
        _ = open_source(path).ome
    # no transformations at all: scale 1, translation 0
    set_multiscales([{"axes": axes, "datasets": [{"path": "0"}, {"path": "1"}]}])
    assert open_source(path, "1").ome["scale"] == [1.0, 1.0]
    assert open_source(path, "1").ome["translation"] == [0.0, 0.0]


# --- writing pyramids -----------------------------------------------------------------------


def _divisible_oracle(data, spatial, k, factor=2):
    """Level ``k`` of a nearest pyramid when every spatial size divides: every f**k-th voxel."""
    step = factor**k
    return data[tuple(slice(None, None, step) if s else slice(None) for s in spatial)]


@pytest.mark.parametrize("zarr_format", ZARR_FORMATS)
@pytest.mark.parametrize(
    ("axes", "shape"),
    [("yx", (64, 48)), ("zyx", (16, 32, 24)), ("czyx", (2, 8, 16, 32)), ("tcyx", (2, 3, 32, 16)),
     ("tczyx", (2, 2, 8, 16, 8))],
)
def test_pyramids_are_read_by_ome_zarr_py_and_valid(tmp_path, zarr_format, axes, shape):
    rng = np.random.default_rng(5)
    data = rng.integers(0, 2**31, shape, dtype=np.int32)
    spatial = [name in "zyx" for name in axes]
    path = tmp_path / "pyramid.ome.zarr"
    voxel = [0.5 + i for i in range(sum(spatial))]
    src = write_ome_pyramid(data, path, levels=3, zarr_format=zarr_format, axes=axes,
                            voxel_size=voxel, unit="micrometer", name="raw")
    model = _validate(path, zarr_format)
    assert len(model.ome_attributes.multiscales[0].datasets) == 3

    levels, metadata = _peer_read(path, zarr_format)
    assert len(levels) == 3
    for k, level in enumerate(levels):
        np.testing.assert_array_equal(level, _divisible_oracle(data, spatial, k))
        np.testing.assert_array_equal(open_source(path, f"s{k}")[:], level)
        full_voxel = iter(voxel)
        expected = [next(full_voxel) * 2**k if s else 1.0 for s in spatial]
        assert metadata["coordinateTransformations"][k] == [{"type": "scale", "scale": expected}]
        assert open_source(path, f"s{k}").ome["scale"] == pytest.approx(expected)
    assert [axis["name"] for axis in metadata["axes"]] == list(axes)
    assert all(axis.get("unit") == "micrometer" for axis in metadata["axes"]
               if axis["type"] == "space")
    # the returned source is the full-resolution level, read-only
    assert src.internal_path == "s0" and not src.writable
    assert src.ome["levels"] == ["s0", "s1", "s2"]
    assert src.ome["version"] == FORMATS[zarr_format][2]
    assert src.ome["translation"] == [0.0] * len(shape)
    # non-spatial axes are chunked one index at a time
    assert all(c == 1 for c, s in zip(src.chunks, spatial) if not s)


@pytest.mark.parametrize("zarr_format", ZARR_FORMATS)
def test_pyramid_arrays_follow_their_ngff_version(tmp_path, zarr_format):
    path = tmp_path / "p.zarr"
    write_ome_pyramid(np.ones((2, 16, 16), np.uint8), path, axes="cyx", levels=2,
                      zarr_format=zarr_format)
    for k in range(2):
        if zarr_format == 3:  # NGFF 0.5: arrays name their dimensions as the axes
            meta = json.loads((path / f"s{k}" / "zarr.json").read_text())
            assert meta["dimension_names"] == ["c", "y", "x"]
        else:  # NGFF 0.4: "/" separates the chunk key's indices
            meta = json.loads((path / f"s{k}" / ".zarray").read_text())
            assert meta["dimension_separator"] == "/"
            assert (path / f"s{k}" / "1" / "0" / "0").is_file()
        assert zarr.open_array(str(path / f"s{k}"), mode="r")[1, 0, 0] == 1
    attributes = _group_attributes(path, zarr_format)
    if zarr_format == 3:
        assert attributes["ome"]["version"] == "0.5"
    else:
        assert attributes["multiscales"][0]["version"] == "0.4"


@pytest.mark.parametrize("zarr_format", ZARR_FORMATS)
def test_uneven_sizes_scale_by_the_exact_sample_spacing(tmp_path, zarr_format):
    data = np.random.default_rng(6).integers(0, 100, (20, 33, 17), dtype=np.uint8)
    path = tmp_path / "uneven.zarr"
    write_ome_pyramid(data, path, levels=4, zarr_format=zarr_format, voxel_size=(1.0, 0.5, 0.25))
    _validate(path, zarr_format)
    levels, metadata = _peer_read(path, zarr_format)
    shapes = [level.shape for level in levels]
    assert shapes == [(20, 33, 17), (10, 17, 9), (5, 9, 5), (3, 5, 3)]
    for k, level_shape in enumerate(shapes):
        expected = [v * n0 / n for v, n0, n in zip((1.0, 0.5, 0.25), shapes[0], level_shape)]
        scale = metadata["coordinateTransformations"][k][0]["scale"]
        assert scale == pytest.approx(expected)
    # each level is the previous one downsampled (bioimage_py.downsample, 0.2's sampling)
    for k in range(1, 4):
        previous = open_source(path, f"s{k - 1}")
        np.testing.assert_array_equal(levels[k], bioimage_py.downsample(previous, 2))


def test_interpolated_pyramid_of_a_multichannel_volume(tmp_path):
    data = np.random.default_rng(7).random((2, 12, 20, 16)).astype(np.float32)
    path = tmp_path / "smooth.zarr"
    write_ome_pyramid(data, path, levels=3, order=1, anti_aliasing=True, chunks=(1, 8, 8, 8))
    _validate(path, 3)
    multiscale = _multiscale(path, 3)
    assert multiscale["type"] == "linear"
    assert multiscale["metadata"]["kwargs"] == {
        "scale_factor": [1, 2, 2, 2], "order": 1, "anti_aliasing": True,
    }
    for k in range(1, 3):
        previous = open_source(path, f"s{k - 1}")[:]
        expected = np.stack([
            bioimage_py.downsample(previous[c], 2, order=1, anti_aliasing=True)
            for c in range(2)
        ])
        np.testing.assert_array_equal(open_source(path, f"s{k}")[:], expected)
        assert open_source(path, f"s{k}").chunks == tuple(
            min(c, n) for c, n in zip((1, 8, 8, 8), expected.shape)
        )


def test_scale_factor_per_axis_and_translation(tmp_path):
    data = np.arange(8 * 32 * 32, dtype=np.uint16).reshape(8, 32, 32)
    path = tmp_path / "anisotropic.zarr"
    write_ome_pyramid(data, path, levels=3, scale_factor=(1, 2, 2), voxel_size=(4.0, 1.0, 1.0),
                      translation=(100.0, 10.0, -10.0), zarr_format=2)
    _validate(path, 2)
    levels, metadata = _peer_read(path, 2)
    assert [level.shape for level in levels] == [(8, 32, 32), (8, 16, 16), (8, 8, 8)]
    np.testing.assert_array_equal(levels[2], data[:, ::4, ::4])
    for k in range(3):
        assert metadata["coordinateTransformations"][k] == [
            {"type": "scale", "scale": [4.0, 2.0**k, 2.0**k]},
            {"type": "translation", "translation": [100.0, 10.0, -10.0]},
        ]
        assert open_source(path, f"s{k}").ome["translation"] == [100.0, 10.0, -10.0]


def test_levels_default_to_fitting_one_chunk(tmp_path):
    data = np.zeros((3, 300, 130), np.uint8)
    src = write_ome_pyramid(data, tmp_path / "auto.zarr", axes="cyx")
    # 2 spatial axes: chunks of 256; 300 -> 150 fits
    assert src.ome["levels"] == ["s0", "s1"]
    src = write_ome_pyramid(data, tmp_path / "auto2.zarr", axes="cyx", chunks=(1, 32, 32))
    assert src.ome["levels"] == ["s0", "s1", "s2", "s3", "s4"]  # 300, 150, 75, 38, 19
    assert open_source(tmp_path / "auto2.zarr", "s4").shape == (3, 19, 9)
    src = write_ome_pyramid(np.zeros((5, 5), np.uint8), tmp_path / "tiny.zarr")
    assert src.ome["levels"] == ["s0"]
    _validate(tmp_path / "tiny.zarr", 3)


def test_sharded_pyramid(tmp_path):
    data = np.random.default_rng(8).integers(0, 9, (40, 64, 64), dtype=np.uint64)
    path = tmp_path / "sharded.zarr"
    write_ome_pyramid(data, path, levels=3, chunks=(8, 16, 16), shards=(16, 32, 32),
                      compression="gzip")
    _validate(path, 3)
    levels, _ = _peer_read(path, 3)
    assert open_source(path, "s0").shards == (16, 32, 32)
    assert open_source(path, "s2").shape == (10, 16, 16)
    assert open_source(path, "s2").chunks == (8, 16, 16)
    assert open_source(path, "s2").shards == (16, 16, 16)
    for k, level in enumerate(levels):
        np.testing.assert_array_equal(level, data[::2**k, ::2**k, ::2**k])


def test_pyramid_of_a_file_source_in_worker_processes(tmp_path):
    data = np.random.default_rng(9).integers(0, 255, (2, 16, 32, 32), dtype=np.uint8)
    raw = create_array(tmp_path / "raw.n5", "raw", shape=data.shape, dtype=data.dtype,
                       chunks=(1, 8, 16, 16))
    raw[:] = data
    path = tmp_path / "from_workers.zarr"
    write_ome_pyramid(open_source(raw.path, "raw"), path, levels=3, chunks=(1, 8, 8, 8),
                      job_type="subprocess", num_workers=2)
    levels, _ = _peer_read(path, 3)
    for k, level in enumerate(levels):
        np.testing.assert_array_equal(level, data[:, ::2**k, ::2**k, ::2**k])


def test_existing_pyramids_need_overwrite(tmp_path):
    path = tmp_path / "again.zarr"
    write_ome_pyramid(np.zeros((16, 16), np.uint8), path, levels=2)
    with pytest.raises(ValueError):
        write_ome_pyramid(np.ones((16, 16), np.uint8), path, levels=2)
    src = write_ome_pyramid(np.ones((16, 16), np.uint8), path, levels=3, overwrite=True)
    assert src.ome["levels"] == ["s0", "s1", "s2"]
    assert open_source(path, "s2")[:].min() == 1
    _validate(path, 3)


@pytest.mark.parametrize("zarr_format", ZARR_FORMATS)
def test_a_store_of_the_other_zarr_format_is_refused_before_writing(tmp_path, zarr_format):
    """Levels of two zarr formats in one store would make neither a valid image: refused up
    front, even with ``overwrite``; the existing image is untouched."""
    path = tmp_path / "image.zarr"
    write_ome_pyramid(np.zeros((16, 16), np.uint8), path, levels=3, zarr_format=zarr_format)
    files = sorted(p.relative_to(path) for p in path.rglob("*"))
    other = 5 - zarr_format
    for overwrite in (False, True):
        with pytest.raises(ValueError, match=f"is a zarr v{zarr_format} store.*"
                                             f"zarr_format={zarr_format}"):
            write_ome_pyramid(np.ones((16, 16), np.uint8), path, levels=2, zarr_format=other,
                              overwrite=overwrite)
    assert sorted(p.relative_to(path) for p in path.rglob("*")) == files
    _validate(path, zarr_format)
    assert open_source(path, "s2")[:].max() == 0
    # a plain group of the other format (zarr-python's) is refused the same way
    _peer_group(tmp_path / "plain.zarr", other)
    with pytest.raises(ValueError, match=f"is a zarr v{other} store"):
        write_ome_pyramid(np.ones((16, 16), np.uint8), tmp_path / "plain.zarr",
                          zarr_format=zarr_format)
    write_ome_pyramid(np.ones((16, 16), np.uint8), tmp_path / "plain.zarr", levels=2,
                      zarr_format=other)
    _validate(tmp_path / "plain.zarr", other)


def test_other_group_attributes_are_kept(tmp_path):
    path = tmp_path / "kept.zarr"
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    root.attrs.update({"project": "cells", "ome": {"omero": {"name": "x"}}})
    write_ome_pyramid(np.zeros((8, 8), np.uint8), path, levels=2)
    attributes = _group_attributes(path, 3)
    assert attributes["project"] == "cells"
    assert attributes["ome"]["omero"] == {"name": "x"}
    assert attributes["ome"]["version"] == "0.5"


@pytest.mark.parametrize("zarr_format", ZARR_FORMATS)
def test_downsample_and_create_array_inside_an_image_keep_it_valid(tmp_path, zarr_format):
    """``create_array`` and ``downsample`` write bare arrays: rewriting a level in place or
    adding an array beside the levels leaves the image's metadata valid and unchanged (the
    pyramid with its metadata is ``write_ome_pyramid``'s)."""
    data = np.random.default_rng(15).random((16, 32, 32)).astype(np.float32)
    path = tmp_path / "image.ome.zarr"
    write_ome_pyramid(data, path, levels=2, zarr_format=zarr_format, voxel_size=(2.0, 1.0, 1.0))
    before = _group_attributes(path, zarr_format)
    level1 = open_source(path, "s1", mode="r+")
    bioimage_py.downsample(open_source(path, "s0"), 2, level1, order=1, anti_aliasing=True)
    extra = create_array(path, "extra", shape=(4, 8, 8), dtype="float32",
                         zarr_format=zarr_format)
    bioimage_py.downsample(open_source(path, "s1"), 2, extra)
    assert _group_attributes(path, zarr_format) == before
    _validate(path, zarr_format)
    levels, _ = _peer_read(path, zarr_format)
    np.testing.assert_array_equal(
        levels[1], bioimage_py.downsample(data, 2, order=1, anti_aliasing=True))
    assert open_source(path).ome["levels"] == ["s0", "s1"]
    assert open_source(path, "s1").ome["scale"] == [4.0, 2.0, 2.0]
    assert open_source(path, "extra").ome is None


def _peer_image(path, zarr_format, data, axes, scale):
    """An ome-zarr-py pyramid (levels s0, s1, s2 by 2 along x and y) with a physical scale
    in micrometers; returns its levels' ``ome``."""
    fmt = FORMATS[zarr_format][0]()
    units = {name: "micrometer" for name in scale if name in "zyx"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ome_zarr_writer.write_image(
            data, _peer_group(path, zarr_format), axes=axes, fmt=fmt,
            scale_factors=[{"y": 2, "x": 2}, {"y": 4, "x": 4}], scale=scale, axes_units=units,
        )
    return [open_source(path, f"s{k}").ome for k in range(3)]


@pytest.mark.parametrize(("src_format", "dst_format"), [(2, 3), (3, 2), (3, 3)])
def test_a_pyramid_of_an_ome_level_keeps_its_axes_scale_and_translation(
    tmp_path, src_format, dst_format
):
    """Rewriting an OME-Zarr level (here ome-zarr-py's s1, translated by its centring) keeps
    its physical coordinates: its axes and units, scale and translation become those of the
    new s0, and every next level has the same translation (corner-aligned sampling)."""
    data = np.random.default_rng(13).integers(0, 255, (2, 12, 64, 48), dtype=np.uint8)
    peer = tmp_path / "peer.ome.zarr"
    scale = {"c": 1.0, "z": 2.0, "y": 0.5, "x": 0.25}
    ome = _peer_image(peer, src_format, data, "czyx", scale)[1]
    assert ome["translation"] == pytest.approx([0.0, 0.0, 0.25, 0.125])
    level = open_source(peer, "s1")
    out = tmp_path / "again.ome.zarr"
    written = write_ome_pyramid(level, out, levels=3, zarr_format=dst_format)
    _validate(out, dst_format)
    levels, metadata = _peer_read(out, dst_format)
    assert metadata["axes"] == ome["axes"] == [
        {"name": "c", "type": "channel"},
        {"name": "z", "type": "space", "unit": "micrometer"},
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"},
    ]
    np.testing.assert_array_equal(levels[0], level[:])
    assert written.ome["scale"] == pytest.approx(ome["scale"])
    assert written.ome["translation"] == pytest.approx(ome["translation"])
    for k in range(3):
        level_k = open_source(out, f"s{k}")
        factors = [n0 / n for n0, n in zip(level.shape, level_k.shape)]
        assert level_k.ome["scale"] == pytest.approx(
            [s * f for s, f in zip(ome["scale"], factors)])
        assert level_k.ome["translation"] == pytest.approx(ome["translation"])
    # arguments given still win; a view of the level is no level and gets the plain defaults
    src = write_ome_pyramid(level, tmp_path / "given.zarr", levels=1, axes="qzyx",
                            voxel_size=(3.0, 1.0, 1.0), translation=(0.0, 0.0, 0.0))
    assert [axis["name"] for axis in src.ome["axes"]] == list("qzyx")
    assert src.ome["scale"] == [1.0, 3.0, 1.0, 1.0] and src.ome["translation"] == [0.0] * 4
    src = write_ome_pyramid(level, tmp_path / "unit.zarr", levels=1, unit="nanometer")
    assert [axis.get("unit") for axis in src.ome["axes"]] == [None] + ["nanometer"] * 3
    assert src.ome["scale"] == pytest.approx(ome["scale"])  # the numbers as they are
    src = write_ome_pyramid(RoiSource(level, np.s_[:, 1:]), tmp_path / "view.zarr", levels=1)
    assert src.ome["scale"] == [1.0] * 4 and src.ome["translation"] == [0.0] * 4
    assert src.ome["axes"][1] == {"name": "z", "type": "space"}


def test_a_pyramid_of_an_ome_level_with_axes_of_ngff_0_3(tmp_path):
    """Axes given as bare names (NGFF 0.3) get the types of their names."""
    path = tmp_path / "old.zarr"
    root = _peer_group(path, 2)
    root.create_array("0", shape=(4, 16, 16), dtype="uint8")[:] = 7
    root.attrs.update({"multiscales": [{"version": "0.3", "axes": ["c", "y", "x"],
                                        "datasets": [{"path": "0"}]}]})
    src = write_ome_pyramid(open_source(path), tmp_path / "new.zarr", levels=2)
    assert src.ome["axes"] == [{"name": "c", "type": "channel"}, {"name": "y", "type": "space"},
                               {"name": "x", "type": "space"}]
    _validate(tmp_path / "new.zarr", 3)


def test_malformed_ome_metadata_of_the_source_name_the_way_out(tmp_path):
    path = tmp_path / "affine.zarr"
    root = _peer_group(path, 3)
    root.create_array("0", shape=(8, 8), dtype="uint8")
    axes = [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    root.attrs.update({"ome": {"version": "0.5", "multiscales": [{"axes": axes, "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "affine", "affine": []}]}]}]}})
    with pytest.raises(ValueError, match="unsupported coordinate transformation.*pass axes"):
        write_ome_pyramid(open_source(path), tmp_path / "out.zarr", levels=1)
    assert not (tmp_path / "out.zarr").exists()
    src = write_ome_pyramid(open_source(path), tmp_path / "out.zarr", levels=1, axes="yx",
                            voxel_size=1.0, translation=(0.0, 0.0))
    assert src.ome["scale"] == [1.0, 1.0]


@pytest.mark.parametrize("zarr_format", ZARR_FORMATS)
def test_convert_ome_of_an_ome_zarr_image_keeps_its_coordinates(tmp_path, zarr_format):
    """``convert IMAGE DST --ome``: the image's full-resolution level, axes, units, scale."""
    data = np.random.default_rng(14).integers(0, 255, (2, 12, 64, 48), dtype=np.uint8)
    scale = {"c": 1.0, "z": 2.0, "y": 0.5, "x": 0.25}
    ome = _peer_image(tmp_path / "peer.ome.zarr", 5 - zarr_format, data, "czyx", scale)[0]
    done = subprocess.run(
        [sys.executable, "-m", "bioimage_py", "convert", "peer.ome.zarr", "out.ome.zarr",
         "--ome", "--levels", "2", "--zarr-format", str(zarr_format), "--workers", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out.ome.zarr"
    _validate(out, zarr_format)
    levels, metadata = _peer_read(out, zarr_format)
    np.testing.assert_array_equal(levels[0], data)
    assert metadata["axes"] == ome["axes"]
    assert open_source(out).ome["scale"] == pytest.approx([1.0, 2.0, 0.5, 0.25])
    assert open_source(out, "s1").ome["scale"] == pytest.approx([1.0, 4.0, 1.0, 0.5])


@pytest.mark.parametrize("zarr_format", ZARR_FORMATS)
def test_convert_ome_writes_a_pyramid_ome_zarr_py_reads_and_models_validate(
    tmp_path, zarr_format
):
    """``bioimage-py convert SRC DST --ome --levels N`` end to end (a subprocess)."""
    data = np.random.default_rng(12).integers(0, 4000, (20, 33, 40), dtype=np.uint16)
    create_array(tmp_path / "in.n5", "raw", shape=data.shape, dtype=data.dtype,
                 chunks=(8, 16, 16))[...] = data
    out = tmp_path / "out.ome.zarr"
    done = subprocess.run(
        [sys.executable, "-m", "bioimage_py", "convert", "in.n5", out.name, "--src-key", "raw",
         "--ome", "--levels", "3", "--zarr-format", str(zarr_format), "--chunks", "8,16,16",
         "--workers", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert f"OME-Zarr {FORMATS[zarr_format][2]}, levels s0, s1, s2" in done.stdout
    model = _validate(out, zarr_format)
    assert [d.path for d in model.ome_attributes.multiscales[0].datasets] == ["s0", "s1", "s2"]
    levels, metadata = _peer_read(out, zarr_format)
    assert [axis["name"] for axis in metadata["axes"]] == list("zyx")
    assert [level.shape for level in levels] == [(20, 33, 40), (10, 17, 20), (5, 9, 10)]
    np.testing.assert_array_equal(levels[0], data)
    for k, level in enumerate(levels):
        if k:  # each level the previous one downsampled (0.2's sampling of uneven sizes)
            np.testing.assert_array_equal(level, bioimage_py.downsample(levels[k - 1], 2))
        assert open_source(out, f"s{k}").ome["scale"] == pytest.approx(
            [n0 / n for n0, n in zip(data.shape, level.shape)])
    assert open_source(out, "s0").chunks == (8, 16, 16)


def test_info_describes_the_image_and_a_level(tmp_path, capsys):
    from bioimage_py import cli

    path = tmp_path / "image.ome.zarr"
    write_ome_pyramid(np.zeros((2, 16, 32, 32), np.uint8), path, levels=3, unit="micrometer",
                      voxel_size=(2.0, 0.5, 0.5), translation=(0.0, 4.0, -1.0, 0.5))
    assert cli.main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3 arrays" in out and "OME-Zarr image: level 's0' (full resolution)" in out
    assert cli.main(["info", str(path), "s1"]) == 0
    lines = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    lines = {label: value.strip() for label, value in lines.items()}
    assert lines["ome"] == "NGFF 0.5 image, level s1 of s0, s1, s2"
    assert lines["axes"] == "c z (micrometer) y (micrometer) x (micrometer)"
    assert lines["scale"] == "1, 4, 1, 1"
    assert lines["translation"] == "0, 4, -1, 0.5"
    # a damaged image is still listed, saying what is wrong
    attributes = json.loads((path / "zarr.json").read_text())
    attributes["attributes"]["ome"]["multiscales"][0]["datasets"][0]["path"] = "gone"
    (path / "zarr.json").write_text(json.dumps(attributes))
    assert cli.main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "damaged OME-Zarr image" in out and "'gone'" in out and "s2  shape" in out
    # other arrays have no OME lines
    create_array(tmp_path / "plain.zarr", shape=(4, 4), dtype="uint8")
    assert cli.main(["info", str(tmp_path / "plain.zarr")]) == 0
    assert "ome:" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"axes": "xyzc"}, ValueError, "2 or 3 spatial axes, last"),
        ({"axes": "tcqx"}, ValueError, "2 or 3 spatial axes, last"),
        ({"axes": "zyx"}, ValueError, "name 3 axes, but the source has 4"),
        ({"axes": "cyqx"}, ValueError, "2 or 3 spatial axes, last"),
        ({"axes": "qpyx"}, ValueError, "at most one time, one channel and one custom axis"),
        ({"axes": "ctyx"}, ValueError, "time axis must come first"),
        ({"axes": "ccyx"}, ValueError, "unique"),
        ({"axes": [{"type": "space"}] * 4}, TypeError, "axis dicts with a 'name'"),
        ({"scale_factor": (2, 2, 2, 2)}, ValueError, "only spatial axes are downsampled"),
        ({"scale_factor": (1, 2)}, ValueError, "one value per axis"),
        ({"scale_factor": 0}, ValueError, ">= 1"),
        ({"scale_factor": 1.5}, TypeError, "an int or a sequence of ints"),
        ({"voxel_size": (1.0, 0.0, 1.0)}, ValueError, "positive numbers"),
        ({"voxel_size": (1.0, 2.0)}, ValueError, "one value per axis"),
        ({"translation": (float("nan"), 0, 0)}, ValueError, "finite numbers"),
        ({"levels": 0}, ValueError, "levels must be >= 1"),
        ({"levels": 2.0}, TypeError, "levels must be an int"),
        ({"zarr_format": 4}, ValueError, "zarr_format must be 3"),
        ({"chunks": (1, 8)}, ValueError, "4 positive sizes"),
        ({"shards": (1, 8, 8, 8), "zarr_format": 2}, ValueError, "zarr v3 feature"),
    ],
)
def test_write_errors(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        write_ome_pyramid(np.zeros((2, 8, 8, 8), np.uint8), tmp_path / "e.zarr", **kwargs)
    assert not (tmp_path / "e.zarr").exists()  # checked before anything is written


@pytest.mark.parametrize(
    ("data", "path", "match"),
    [
        (np.zeros(8, np.uint8), "a.zarr", "2 to 5 axes"),
        (np.zeros((1,) * 6, np.uint8), "a.zarr", "2 to 5 axes"),
        (np.zeros((0, 4), np.uint8), "a.zarr", "empty"),
        (np.zeros((4, 4), np.uint8), "a.h5", "zarr store"),
    ],
)
def test_write_errors_on_the_source_and_path(tmp_path, data, path, match):
    with pytest.raises(ValueError, match=match):
        write_ome_pyramid(data, tmp_path / path)


@pytest.mark.parametrize(
    ("data", "kwargs", "error"),
    [
        (np.zeros((2, 8, 8, 8), np.uint8), {"order": 7}, ValueError),
        (np.zeros((8, 8), np.complex64), {}, TypeError),
    ],
)
def test_downsampling_errors_come_before_writing(tmp_path, data, kwargs, error):
    with pytest.raises(error):
        write_ome_pyramid(data, tmp_path / "e.zarr", levels=2, **kwargs)
    assert not (tmp_path / "e.zarr").exists()
