"""Shared benchmark data: a synthetic microscopy-like volume, the regions the workloads read or
write, and writers that store the volume with the peer libraries.

Used by ``bench_zarr_n5.py``; the HDF5 and conversion benchmarks reuse the same volume so their
numbers are comparable.

The volume (``synthetic_volume``) is uint16 and looks like a stained tissue sample:
- a smooth background "tissue" intensity (a coarse random field interpolated with a Gaussian
  kernel, features of about 1/16 of the volume),
- bright round "nuclei" (Gaussian blobs, sigma 3-8% of the edge),
- mild noise (sigma ~8 grey values),
- a zero background outside an ellipsoidal sample, so the corner chunks are all zero
  (and, like in real data, may not be stored at all by writers that skip empty chunks).
It is deterministic for a given shape and seed and takes a few seconds for 512^3.
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

Region = tuple[slice, ...]

__all__ = [
    "Region",
    "block_regions",
    "chunk_regions",
    "create_n5_gzip",
    "create_zarr_v2_blosc_lz4",
    "create_zarr_v3_zstd",
    "halo_block_regions",
    "storage_stats",
    "synthetic_volume",
    "write_n5_gzip",
    "write_zarr_v2_blosc_lz4",
    "write_zarr_v3_zstd",
]


def _gaussian_interpolation_matrix(n: int, m: int) -> np.ndarray:
    """An (n, m) matrix that smoothly interpolates m coarse samples onto n points."""
    fine = (np.arange(n, dtype=np.float64) + 0.5) / n
    coarse = (np.arange(m, dtype=np.float64) + 0.5) / m
    sigma = 1.0 / m
    weights = np.exp(-0.5 * ((fine[:, None] - coarse[None, :]) / sigma) ** 2)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights.astype(np.float32)


def synthetic_volume(
    shape: int | tuple[int, int, int] = 512, *, seed: int = 0, dtype: Any = np.uint16
) -> np.ndarray:
    """A deterministic, compressible, microscopy-like 3D volume (see the module docstring).

    Args:
        shape: the volume's shape, or its edge for a cube.
        seed: the random seed; the same (shape, seed) always gives the same volume.
        dtype: an integer dtype wide enough for values up to ~4000 (uint16 by default).
    """
    shape = (shape,) * 3 if isinstance(shape, int) else tuple(int(n) for n in shape)
    if len(shape) != 3:
        raise ValueError(f"expected a 3D shape, got {shape}")
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    slab = max(1, (1 << 24) // max(1, ny * nx))  # ~16 Mi voxels per slab

    # smooth tissue: coarse random field, interpolated separably (two small contractions up front,
    # the large one slab by slab).
    m = max(4, max(shape) // 32)
    coarse = rng.standard_normal((m, m, m)).astype(np.float32)
    kz, ky, kx = (_gaussian_interpolation_matrix(n, m) for n in shape)
    zy = np.einsum("zi,yj,ijk->zyk", kz, ky, coarse, optimize=True).astype(np.float32)
    vol = np.empty(shape, dtype=np.float32)
    for z0 in range(0, nz, slab):
        np.matmul(zy[z0 : z0 + slab], kx.T, out=vol[z0 : z0 + slab])
    lo, hi = float(vol.min()), float(vol.max())
    vol -= lo
    vol *= 800.0 / max(hi - lo, 1e-6)
    vol += 300.0

    # nuclei: Gaussian blobs, each evaluated only inside its +-3 sigma box.
    edge = min(shape)
    n_blobs = 40
    centers = rng.uniform(0.15, 0.85, size=(n_blobs, 3)) * np.array(shape)
    sigmas = rng.uniform(0.03, 0.08, size=n_blobs) * edge
    amplitudes = rng.uniform(800.0, 2500.0, size=n_blobs)
    for center, sigma, amplitude in zip(centers, sigmas, amplitudes):
        box = []
        profiles = []
        for axis, c in enumerate(center):
            start = max(0, int(c - 3 * sigma))
            stop = min(shape[axis], int(c + 3 * sigma) + 1)
            coords = np.arange(start, stop, dtype=np.float32) + 0.5
            box.append(slice(start, stop))
            profiles.append(np.exp(-0.5 * ((coords - c) / sigma) ** 2).astype(np.float32))
        blob = (amplitude * profiles[0])[:, None, None] * profiles[1][None, :, None]
        vol[tuple(box)] += blob * profiles[2][None, None, :]

    # noise and the zero background outside an ellipsoidal sample, slab by slab.
    out = np.empty(shape, dtype=dtype)
    info = np.iinfo(out.dtype)
    semi_axes = np.array([0.55, 0.62, 0.62]) * np.array(shape)
    center = np.array(shape) / 2.0
    ry = ((np.arange(ny) + 0.5 - center[1]) / semi_axes[1]) ** 2
    rx = ((np.arange(nx) + 0.5 - center[2]) / semi_axes[2]) ** 2
    ryx = (ry[:, None] + rx[None, :]).astype(np.float32)
    for z0 in range(0, nz, slab):
        part = vol[z0 : z0 + slab]
        part += 8.0 * rng.standard_normal(part.shape, dtype=np.float32)
        rz = ((np.arange(z0, z0 + part.shape[0]) + 0.5 - center[0]) / semi_axes[0]) ** 2
        outside = (rz.astype(np.float32)[:, None, None] + ryx[None]) > 1.0
        part[outside] = 0.0
        np.clip(part, info.min, info.max, out=part)
        np.rint(part, out=part)
        out[z0 : z0 + slab] = part
    return out


def chunk_regions(shape: tuple[int, ...], chunks: tuple[int, ...]) -> list[Region]:
    """Every chunk of the grid as a region, in C order (edge chunks clipped to the shape)."""
    return block_regions(shape, chunks)


def block_regions(shape: tuple[int, ...], block: tuple[int, ...]) -> list[Region]:
    """Blocks of ``block`` tiling ``shape`` in C order, edge blocks clipped."""
    return halo_block_regions(shape, block, (0,) * len(shape))


def halo_block_regions(
    shape: tuple[int, ...], block: tuple[int, ...], halo: tuple[int, ...]
) -> list[Region]:
    """Blocks of ``block`` in C order, each grown by ``halo`` on every side and clipped to the
    array: the outer regions a block-wise runner reads."""
    grids = [range(0, n, b) for n, b in zip(shape, block)]
    regions = []
    for starts in itertools.product(*grids):
        regions.append(tuple(
            slice(max(0, s - h), min(n, s + b + h))
            for s, b, h, n in zip(starts, block, halo, shape)
        ))
    return regions


def _iter_files(path: str) -> Iterator[str]:
    for root, _, files in os.walk(path):
        for name in files:
            yield os.path.join(root, name)


def storage_stats(path: str) -> dict[str, int]:
    """Number of chunk files and bytes on disk under ``path`` (metadata files excluded)."""
    metadata = {"zarr.json", ".zarray", ".zattrs", ".zgroup", "attributes.json"}
    files = [f for f in _iter_files(path) if os.path.basename(f) not in metadata]
    return {"chunk_files": len(files), "bytes": sum(os.path.getsize(f) for f in files)}


def create_zarr_v3_zstd(
    container: str, key: str, shape: tuple[int, ...], dtype: Any, chunks: tuple[int, ...],
    level: int = 3,
) -> Any:
    """A new zarr v3 array ``key`` with zstd(level) in the zarr v3 group ``container``, created by
    zarr-python (with whatever codec pipeline ``zarr.config`` selects)."""
    import zarr
    from zarr.codecs import ZstdCodec

    group = zarr.open_group(container, mode="a", zarr_format=3)
    return group.create_array(
        key, shape=shape, chunks=chunks, dtype=dtype, compressors=ZstdCodec(level=level),
        fill_value=0, overwrite=True,
    )


def create_zarr_v2_blosc_lz4(
    container: str, key: str, shape: tuple[int, ...], dtype: Any, chunks: tuple[int, ...],
    clevel: int = 5,
) -> Any:
    """A new zarr v2 array ``key`` with blosc lz4(clevel) and byte shuffle in the zarr v2 group
    ``container``, created by zarr-python."""
    import zarr
    from numcodecs import Blosc

    group = zarr.open_group(container, mode="a", zarr_format=2)
    return group.create_array(
        key, shape=shape, chunks=chunks, dtype=dtype,
        compressors=Blosc(cname="lz4", clevel=clevel, shuffle=Blosc.SHUFFLE), fill_value=0,
        overwrite=True,
    )


def create_n5_gzip(
    container: str, key: str, shape: tuple[int, ...], dtype: Any, chunks: tuple[int, ...],
    level: int = 1,
) -> Any:
    """A new N5 dataset ``key`` with gzip(level) in the N5 container ``container``, created by
    z5py with one I/O thread per core."""
    import z5py

    f = z5py.File(container, "a", use_zarr_format=False)
    if key in f:
        del f[key]
    return f.create_dataset(key, shape=shape, chunks=chunks, dtype=dtype, compression="gzip",
                            level=level, n_threads=os.cpu_count() or 1)


def write_zarr_v3_zstd(container: str, key: str, data: np.ndarray, chunks: tuple[int, ...]) -> None:
    """Store ``data`` as ``container/key``, zarr v3 with zstd(3), written by zarr-python."""
    create_zarr_v3_zstd(container, key, data.shape, data.dtype, chunks)[...] = data


def write_zarr_v2_blosc_lz4(container: str, key: str, data: np.ndarray, chunks: tuple[int, ...]) -> None:
    """Store ``data`` as ``container/key``, zarr v2 with blosc lz4 + shuffle, by zarr-python."""
    create_zarr_v2_blosc_lz4(container, key, data.shape, data.dtype, chunks)[...] = data


def write_n5_gzip(container: str, key: str, data: np.ndarray, chunks: tuple[int, ...]) -> None:
    """Store ``data`` as ``container/key``, N5 with gzip(1), written by z5py."""
    create_n5_gzip(container, key, data.shape, data.dtype, chunks)[...] = data
