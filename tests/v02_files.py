"""Small files of every format bioimage-py 0.2 read, written identically by 0.2's interpreter
(``tests/data/make_io_v02.py`` records what 0.2 reads from them) and by the tests here
(``tests/test_io_v02.py`` reopens 0.2's specs of them and compares).

Only numpy and the formats' own writers are used (mrcfile, nibabel, tifffile, imageio, h5py,
zarr-python and the OBF writer of ``obf_writer``), with fixed seeds, so both interpreters write
the same voxels.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from obf_writer import Stack, write_obf

KNOSSOS_EDGE = 128


def _volume(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return (rng.standard_normal(shape) * 100).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -30000), min(info.max, 60000), size=shape,
                        endpoint=True).astype(dtype)


def _smooth_uint8(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Low-entropy uint8 data (KNOSSOS cubes are PNGs: keep them small)."""
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    return ((sum((i + 1 + seed) * g for i, g in enumerate(grids)) // 7) % 251).astype("uint8")


def write_mrc(folder: str) -> dict[str, str]:
    import mrcfile

    files = {}
    for name, data, stack in [
        ("vol.mrc", _volume((6, 7, 8), "int16", 1), False),
        ("img.mrc", _volume((9, 11), "float32", 2), False),
        ("stack.rec", _volume((3, 5, 4), "int8", 3), True),
        ("vstack.mrc", _volume((2, 3, 4, 5), "uint16", 4), False),
    ]:
        path = os.path.join(folder, name)
        with mrcfile.new(path, overwrite=True) as mrc:
            mrc.set_data(data)
            if stack:
                mrc.set_image_stack()
        files[name] = path
    return files


def write_nifti(folder: str) -> dict[str, str]:
    import nibabel

    files = {}
    plain = nibabel.Nifti1Image(_volume((8, 7, 6), "float32", 5), np.eye(4))
    files["plain.nii"] = os.path.join(folder, "plain.nii")
    nibabel.save(plain, files["plain.nii"])
    scaled = nibabel.Nifti1Image(_volume((5, 6, 4, 2), "int16", 6), np.eye(4))
    scaled.header.set_slope_inter(2.0, 1.0)
    files["scaled.nii.gz"] = os.path.join(folder, "scaled.nii.gz")
    nibabel.save(scaled, files["scaled.nii.gz"])
    return files


def write_msr(folder: str) -> dict[str, str]:
    path = os.path.join(folder, "sted.msr")
    write_obf(path, [
        Stack("Ch1 {2} STED", _volume((30, 40), "uint16", 7), compressed=True),
        Stack("Ch2 {2} Confocal", _volume((30, 40), "uint16", 8)),
        Stack("Ch3 mean", _volume((30, 40), "uint16", 9), compressed=True),
    ])
    return {"sted.msr": path}


def write_tiff_and_images(folder: str) -> dict[str, str]:
    import imageio.v3 as iio
    import tifffile

    files = {}
    files["stack.tif"] = os.path.join(folder, "stack.tif")
    tifffile.imwrite(files["stack.tif"], _volume((5, 12, 13), "uint16", 10),
                     photometric="minisblack")
    files["zlib.tiff"] = os.path.join(folder, "zlib.tiff")
    tifffile.imwrite(files["zlib.tiff"], _volume((4, 10, 9), "float32", 11), compression="zlib",
                     photometric="minisblack")
    files["rgb.tif"] = os.path.join(folder, "rgb.tif")
    tifffile.imwrite(files["rgb.tif"], _volume((10, 12, 3), "uint8", 12), photometric="rgb")
    files["image.png"] = os.path.join(folder, "image.png")
    iio.imwrite(files["image.png"], _volume((14, 15), "uint8", 13))
    slices = os.path.join(folder, "slices")
    os.makedirs(slices, exist_ok=True)
    for i, image in enumerate(_volume((4, 9, 10), "uint8", 14)):
        iio.imwrite(os.path.join(slices, f"z_{i:03d}.png"), image)
    for i, image in enumerate(_volume((3, 8, 7), "uint16", 15)):
        tifffile.imwrite(os.path.join(slices, f"t_{i:03d}.tif"), image)
    files["slices"] = slices
    return files


def write_knossos(folder: str) -> dict[str, str]:
    """A KNOSSOS dataset ``exp`` with mag1 (1 x 1 x 2 cubes, XYZ) and mag2 (one cube)."""
    import imageio.v3 as iio

    root = os.path.join(folder, "exp")
    for mag, grid in [(1, (2, 1, 1)), (2, (1, 1, 1))]:  # (z, y, x) cube counts
        data = _smooth_uint8(tuple(g * KNOSSOS_EDGE for g in grid), mag)
        for cz in range(grid[0]):
            for cy in range(grid[1]):
                for cx in range(grid[2]):
                    cube = data[cz * KNOSSOS_EDGE:(cz + 1) * KNOSSOS_EDGE,
                                cy * KNOSSOS_EDGE:(cy + 1) * KNOSSOS_EDGE,
                                cx * KNOSSOS_EDGE:(cx + 1) * KNOSSOS_EDGE]
                    where = os.path.join(root, f"mag{mag}", f"x{cx:04d}", f"y{cy:04d}",
                                         f"z{cz:04d}")
                    os.makedirs(where, exist_ok=True)
                    name = f"exp_mag{mag}_x{cx:04d}_y{cy:04d}_z{cz:04d}.png"
                    iio.imwrite(os.path.join(where, name),
                                cube.reshape(KNOSSOS_EDGE * KNOSSOS_EDGE, KNOSSOS_EDGE))
    return {"exp": root}


def write_containers(folder: str) -> dict[str, str]:
    """HDF5 and zarr (v2 and v3) files with nested arrays, written by h5py and zarr-python."""
    import h5py
    import zarr

    files = {}
    files["c.h5"] = os.path.join(folder, "c.h5")
    with h5py.File(files["c.h5"], "w") as f:
        f.create_dataset("raw", data=_volume((6, 9, 10), "uint8", 16), chunks=(3, 4, 5))
        f.create_dataset("seg/labels", data=_volume((6, 9, 10), "uint32", 17),
                         compression="gzip")
    for fmt in (2, 3):
        name = f"c{fmt}.zarr"
        files[name] = os.path.join(folder, name)
        group = zarr.open_group(files[name], mode="w", zarr_format=fmt)
        raw = group.create_array("raw", shape=(6, 9, 10), chunks=(3, 4, 5), dtype="int16")
        raw[...] = _volume((6, 9, 10), "int16", 18 + fmt)
        sub = group.create_group("sub")
        labels = sub.create_array("labels", shape=(5, 7), chunks=(2, 3), dtype="uint64")
        labels[...] = _volume((5, 7), "uint32", 20 + fmt).astype("uint64")
    return files


def write_all(folder: str) -> dict[str, str]:
    """Write every file into ``folder``; ``{name: path}``."""
    files: dict[str, str] = {}
    for writer in (write_mrc, write_nifti, write_msr, write_tiff_and_images, write_knossos,
                   write_containers):
        files.update(writer(folder))
    return files


# What 0.2 is asked to open: (case name, file name, internal_path or None, open_source kwargs).
# Each case's spec, as 0.2 records it, is reopened here.
OPENED: list[tuple[str, str, Any, dict[str, Any]]] = [
    ("mrc_volume", "vol.mrc", None, {}),
    ("mrc_image", "img.mrc", None, {}),
    ("mrc_image_stack", "stack.rec", "data", {}),
    ("mrc_volume_stack", "vstack.mrc", None, {}),  # 4D: 0.2 flipped axis 0 (see test_io_v02)
    ("nifti_plain", "plain.nii", None, {}),
    ("nifti_scaled", "scaled.nii.gz", None, {}),
    ("msr_default", "sted.msr", None, {}),
    ("msr_index", "sted.msr", "2", {}),
    ("msr_negative_index", "sted.msr", "-1", {}),
    ("msr_name", "sted.msr", "Ch2 {2} Confocal", {}),
    ("msr_all", "sted.msr", "data", {}),
    ("tif_stack", "stack.tif", None, {}),
    ("tif_zlib", "zlib.tiff", None, {}),
    ("tif_rgb", "rgb.tif", None, {}),
    ("png_file", "image.png", None, {"format": "folder"}),
    ("slices_png", "slices", "*.png", {}),
    ("slices_tif", "slices", "t_*.tif", {}),
    ("knossos_default", "exp", None, {}),
    ("knossos_mag2", "exp", "mag2", {}),
    ("hdf5_raw", "c.h5", "raw", {}),
    ("hdf5_nested", "c.h5", "/seg/labels", {}),
    ("zarr2_raw", "c2.zarr", "raw", {}),
    ("zarr2_nested", "c2.zarr", "sub/labels", {"mode": "r+"}),
    ("zarr3_raw", "c3.zarr", "raw", {}),
    ("zarr3_nested", "c3.zarr", "sub/labels", {"mode": "a"}),
]
