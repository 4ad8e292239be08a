"""TIFF stacks, folders of image slices and KNOSSOS datasets behind ``open_source``.

Files are written by tifffile and imageio (KNOSSOS cubes in the real on-disk layout) and read
back voxel-exact.
"""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

import bioimage_py
import bioimage_py.io as bio
from bioimage_py.sources import FileSource, from_spec

tifffile = pytest.importorskip("tifffile")
iio = pytest.importorskip("imageio.v3")

REGIONS = [
    (slice(None), slice(None), slice(None)),
    (slice(2, 3), slice(5, 17), slice(0, 9)),
    (slice(1, 6), slice(0, 1), slice(3, 30)),
    (slice(4, 4), slice(0, 5), slice(0, 5)),
]


def volume(shape=(7, 20, 33), dtype="uint16", seed=0):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is None:
        return rng.random(shape).astype(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def check_regions(src, data):
    assert src.shape == data.shape and src.dtype == data.dtype
    for roi in REGIONS:
        np.testing.assert_array_equal(src[roi], data[roi])
    np.testing.assert_array_equal(src[3], data[3])
    np.testing.assert_array_equal(src[-1, 2:9, -5:], data[-1, 2:9, -5:])


def check_spec(src, data):
    spec = src.to_spec()
    assert spec.kind == "file" and spec.params["format"] == src.format
    spec = pickle.loads(pickle.dumps(spec))
    json.dumps(spec.params)
    again = from_spec(spec)
    assert isinstance(again, FileSource)
    assert (again.format, again.internal_path, again.path) == (src.format, src.internal_path, src.path)
    np.testing.assert_array_equal(again[:], data)


def check_read_only(src):
    assert src.writable is False
    with pytest.raises(TypeError, match="read-only"):
        src[0:1] = 0


# --- registry -----------------------------------------------------------------------------------


def test_formats_registered_read_only():
    assert bio.format_for_extension(".tif") == "tif"
    assert bio.format_for_extension("TIFF") == "tif"
    assert bio.format_for_extension("") == "folder"
    assert not bio.is_writable_format("tif") and not bio.is_writable_format("folder")
    assert bio.infer_format("a/b/slices/") == "folder"


@pytest.mark.parametrize("fmt, name", [("tif", "a.tif"), ("folder", "stack")])
def test_write_modes_rejected(tmp_path, fmt, name):
    with pytest.raises(ValueError, match="read-only"):
        bioimage_py.open_source(tmp_path / name, mode="r+")


# --- TIFF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "float32"])
def test_tiff_stack_memmapped(tmp_path, dtype):
    data = volume(dtype=dtype)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, data)
    src = bioimage_py.open_source(path)
    assert (src.format, src.internal_path) == ("tif", "")
    assert src.array.memmapped
    assert src.chunks == (1, 20, 33)
    check_regions(src, data)
    check_read_only(src)
    check_spec(src, data)


@pytest.mark.parametrize("ext", [".tif", ".tiff"])
def test_tiff_compressed_stack_lazy(tmp_path, ext):
    data = volume()
    path = tmp_path / f"stack{ext}"
    tifffile.imwrite(path, data, compression="zlib")
    src = bioimage_py.open_source(path)
    assert not src.array.memmapped
    check_regions(src, data)
    check_read_only(src)
    check_spec(src, data)


def test_tiff_lazy_reads_only_touched_pages(tmp_path, monkeypatch):
    data = volume(shape=(12, 16, 16))
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, data, compression="zlib")
    src = bioimage_py.open_source(path)
    decoded = []
    original = tifffile.TiffPage.asarray

    def counting(self, *args, **kwargs):
        decoded.append(self.index)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(tifffile.TiffPage, "asarray", counting)
    monkeypatch.setattr(tifffile.TiffFrame, "asarray", counting, raising=False)
    np.testing.assert_array_equal(src[5:7, 3:9, :4], data[5:7, 3:9, :4])
    assert len(decoded) == 2


def test_tiff_single_page_and_big_endian(tmp_path):
    image = volume(shape=(25, 31), dtype="uint16")
    tifffile.imwrite(tmp_path / "one.tif", image)
    src = bioimage_py.open_source(tmp_path / "one.tif")
    assert src.shape == (25, 31)
    np.testing.assert_array_equal(src[3:9, 4:], image[3:9, 4:])
    data = volume(dtype="float32")
    tifffile.imwrite(tmp_path / "be.tif", data, byteorder=">")
    src = bioimage_py.open_source(tmp_path / "be.tif")
    assert src.dtype == np.dtype("float32") and src.dtype.isnative
    check_regions(src, data)


def test_tiff_imagej_hyperstack(tmp_path):
    data = volume(shape=(3, 4, 10, 12), dtype="uint8")
    tifffile.imwrite(tmp_path / "h.tif", data, imagej=True, metadata={"axes": "TZYX"})
    src = bioimage_py.open_source(tmp_path / "h.tif")
    assert src.shape == data.shape
    np.testing.assert_array_equal(src[1:3, 2:4, 5:, :7], data[1:3, 2:4, 5:, :7])
    np.testing.assert_array_equal(src[:], data)


def test_tiff_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        bioimage_py.open_source(tmp_path / "nope.tif")


# --- folders of image slices --------------------------------------------------------------------


def write_slices(folder, data, ext, names=None):
    folder.mkdir(exist_ok=True)
    for z, image in enumerate(data):
        name = names[z] if names else f"slice_{z}{ext}"
        if ext in (".tif", ".tiff"):
            tifffile.imwrite(folder / name, image)
        else:
            iio.imwrite(folder / name, image)
    return folder


@pytest.mark.parametrize("ext, dtype", [(".tif", "uint16"), (".tif", "float32"),
                                        (".png", "uint8"), (".png", "uint16")])
def test_image_stack(tmp_path, ext, dtype):
    data = volume(shape=(12, 20, 33), dtype=dtype)  # 12 slices: natural sort matters (2 < 10)
    folder = write_slices(tmp_path / "slices", data, ext)
    src = bioimage_py.open_source(folder, f"*{ext}")
    assert (src.format, src.internal_path) == ("folder", f"*{ext}")
    assert src.chunks == (1, 20, 33)
    check_regions(src, data)
    check_read_only(src)
    check_spec(src, data)


def test_image_stack_default_pattern(tmp_path):
    data = volume(shape=(3, 8, 9), dtype="uint8")
    folder = write_slices(tmp_path / "slices", data, ".png")
    (folder / "notes.txt").write_text("not an image")
    src = bioimage_py.open_source(folder)
    assert src.internal_path == "*.png"
    np.testing.assert_array_equal(src[:], data)
    write_slices(folder, data, ".tif")
    with pytest.raises(ValueError, match="internal_path") as info:
        bioimage_py.open_source(folder)
    assert "'*.png'" in str(info.value) and "'*.tif'" in str(info.value)
    np.testing.assert_array_equal(bioimage_py.open_source(folder, "*.tif")[:], data)


def test_image_stack_natural_order_and_subset(tmp_path):
    data = volume(shape=(11, 6, 7), dtype="uint8")
    names = [f"img{z}.png" for z in range(11)]
    folder = write_slices(tmp_path / "s", data, ".png", names)
    iio.imwrite(folder / "other_0.png", np.zeros((6, 7), "uint8"))
    src = bioimage_py.open_source(folder, "img*.png")
    np.testing.assert_array_equal(src[:], data)
    assert bioimage_py.open_source(folder, "other_*.png").shape == (1, 6, 7)


def test_image_stack_glob_matches_nothing(tmp_path):
    folder = write_slices(tmp_path / "s", volume(shape=(2, 4, 4), dtype="uint8"), ".png")
    with pytest.raises(ValueError, match=r"'\*\.tif'.*matches no files"):
        bioimage_py.open_source(folder, "*.tif")


def test_image_stack_mismatched_shapes(tmp_path):
    folder = write_slices(tmp_path / "s", volume(shape=(3, 8, 8), dtype="uint8"), ".png")
    iio.imwrite(folder / "slice_3.png", np.zeros((8, 9), "uint8"))
    with pytest.raises(ValueError, match="slice_3.png"):
        bioimage_py.open_source(folder, "*.png")
    iio.imwrite(folder / "slice_3.png", np.zeros((8, 8), "uint16"))
    with pytest.raises(ValueError, match="slice_3.png"):
        bioimage_py.open_source(folder, "*.png")


def test_folder_path_that_is_a_file(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        bioimage_py.open_source(tmp_path / "plain")


# --- KNOSSOS ------------------------------------------------------------------------------------

EDGE = 128


def write_knossos(root, data, mag=1, name="exp", ext="png", skip=()):
    """Write ``data`` (ZYX) as KNOSSOS cubes of ``root/mag<mag>`` (padded with 0 at the border)."""
    grid = [-(-s // EDGE) for s in data.shape]
    for cz in range(grid[0]):
        for cy in range(grid[1]):
            for cx in range(grid[2]):
                if (cx, cy, cz) in skip:
                    continue
                cube = np.zeros((EDGE,) * 3, dtype=data.dtype)
                part = data[cz * EDGE:(cz + 1) * EDGE, cy * EDGE:(cy + 1) * EDGE,
                            cx * EDGE:(cx + 1) * EDGE]
                cube[tuple(slice(0, s) for s in part.shape)] = part
                folder = root / f"mag{mag}" / f"x{cx:04d}" / f"y{cy:04d}" / f"z{cz:04d}"
                folder.mkdir(parents=True)
                fname = f"{name}_mag{mag}_x{cx:04d}_y{cy:04d}_z{cz:04d}.{ext}"
                iio.imwrite(folder / fname, cube.reshape(EDGE * EDGE, EDGE))
    return root


def test_knossos_default_mag1(tmp_path):
    data = volume(shape=(128, 256, 256), dtype="uint8", seed=1)
    root = write_knossos(tmp_path / "knossos", data, skip={(1, 1, 0)})
    expected = data.copy()
    expected[:, 128:, 128:] = 0  # the missing cube reads as 0
    write_knossos(root, data[::2, ::2, ::2], mag=2)
    src = bioimage_py.open_source(root)
    assert (src.format, src.internal_path) == ("folder", "mag1")
    assert src.shape == (128, 256, 256) and src.dtype == np.dtype("uint8")
    assert src.chunks == (128, 128, 128)
    for roi in [np.s_[:, :, :], np.s_[5:70, 100:200, 120:140], np.s_[127:128, 0:256, 250:256]]:
        np.testing.assert_array_equal(src[roi], expected[roi])
    check_read_only(src)
    check_spec(src, expected)
    mag2 = bioimage_py.open_source(root, "mag2")
    assert mag2.shape == (128, 128, 128)
    np.testing.assert_array_equal(mag2[:64, 10:90, :], data[::2, ::2, ::2][:64, 10:90, :])
    with pytest.raises(ValueError, match=r"'mag1', 'mag2'"):
        bioimage_py.open_source(root, "mag4")


def test_knossos_conf_boundary(tmp_path):
    data = volume(shape=(100, 130, 140), dtype="uint8", seed=2)
    root = write_knossos(tmp_path / "k", data, name="k")
    (root / "knossos.conf").write_text(
        'experiment name "k";\nboundary x 140;\nboundary y 130;\nboundary z 100;\n'
        "scale x 10.0;\nscale y 10.0;\nscale z 25.0;\nmagnification 1;\n"
    )
    src = bioimage_py.open_source(root, "mag1")
    assert src.shape == (100, 130, 140)
    np.testing.assert_array_equal(src[:], data)
    np.testing.assert_array_equal(src[90:, 120:, 125:], data[90:, 120:, 125:])


def test_knossos_jpg_cubes(tmp_path):
    data = np.full((128, 128, 128), 77, dtype="uint8")  # constant: exact through jpeg
    root = write_knossos(tmp_path / "kj", data, ext="jpg")
    src = bioimage_py.open_source(root)
    np.testing.assert_array_equal(src[:, :10, :10], data[:, :10, :10])


def test_folder_dispatch(tmp_path):
    knossos = write_knossos(tmp_path / "k", np.ones((128, 128, 128), "uint8"))
    slices = write_slices(tmp_path / "s", volume(shape=(2, 5, 5), dtype="uint8"), ".png")
    assert type(bio.open_file(knossos)).__name__ == "KnossosFile"
    assert type(bio.open_file(slices)).__name__ == "ImageStackFolder"
    # a mag folder without cube folders does not make a KNOSSOS dataset
    (slices / "mag1").mkdir()
    assert type(bio.open_file(slices)).__name__ == "ImageStackFolder"


def test_missing_library_names_package(tmp_path, monkeypatch):
    import bioimage_py.io.optional as optional

    real = optional.importlib.import_module

    def fake(name, *args):
        if name.startswith("tifffile"):
            raise ImportError("no tifffile")
        return real(name, *args)

    monkeypatch.setattr(optional.importlib, "import_module", fake)
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((2, 3, 3), "uint8"))
    with pytest.raises(ImportError, match="tifffile"):
        bioimage_py.open_source(tmp_path / "a.tif")
