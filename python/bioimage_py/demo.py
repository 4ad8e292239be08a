"""A short demonstration: ``python -m bioimage_py.demo [--shape N] [--keep DIR]``.

Writes a synthetic volume to a zarr array with zarr-python, then processes it block-wise with a
halo, the way pipelines do, through bioimage_py's native zarr reader and writer: each block's outer region is read through a ``Source``, smoothed, cropped to the
inner block and written to an output array. A worker process reopens the output from its
``SourceSpec`` and reads it back. Every step is checked against numpy; the exit status says
whether all checks passed.
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bioimage_py import open_source, to_roi
from bioimage_py.blocking import Blocking, blocks_align_with_chunks
from bioimage_py.io import create_array
from bioimage_py.sources import SourceSpec, from_spec


def synthetic_volume(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Smooth blobs on a zero background with mild noise, as uint16."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, dtype=np.float32)
    volume = np.zeros(shape, dtype=np.float32)
    for _ in range(8):
        center = rng.uniform(0, shape, size=len(shape)).reshape(-1, *([1] * len(shape)))
        radius = rng.uniform(4, max(shape) / 4)
        volume += 1000 * np.exp(-((grid - center) ** 2).sum(axis=0) / (2 * radius**2))
    volume += rng.normal(0, 5, size=shape)
    return np.clip(volume, 0, 65535).astype(np.uint16)


def box_smooth(block: np.ndarray) -> np.ndarray:
    """A 3-wide box filter along every axis (edges replicated), as float32."""
    out = block.astype(np.float32)
    for axis in range(out.ndim):
        padded = np.pad(out, [(1, 1) if a == axis else (0, 0) for a in range(out.ndim)], mode="edge")
        n = out.shape[axis]
        out = sum(np.take(padded, range(k, k + n), axis=axis) for k in range(3)) / 3
    return out


def read_in_worker(spec: SourceSpec, roi: tuple[slice, ...]) -> np.ndarray:
    """Runs in another process: reopen the source from its spec and read a region."""
    return from_spec(spec)[roi]


def create_with_zarr_python(path: Path, shape: tuple[int, ...], chunks: tuple[int, ...]) -> None:
    """The input is made by a peer library: bioimage_py reads what others write."""
    import zarr

    zarr.create_array(store=str(path), shape=shape, chunks=chunks, dtype="uint16", zarr_format=3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, default=96, help="edge length of the cubic volume")
    parser.add_argument("--keep", type=Path, help="write the arrays here instead of a temp dir")
    args = parser.parse_args(argv)

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bioimage_py_demo_"))
    workdir.mkdir(parents=True, exist_ok=True)
    shape, chunks, block_shape, halo = (args.shape,) * 3, (32,) * 3, (64,) * 3, (2,) * 3
    started = time.perf_counter()

    volume = synthetic_volume(shape)
    create_with_zarr_python(workdir / "raw.zarr", shape, chunks)
    raw = open_source(workdir / "raw.zarr", mode="r+")
    raw[...] = volume
    print(f"wrote a {shape} uint16 volume with {chunks} chunks to {workdir / 'raw.zarr'}")

    raw = open_source(workdir / "raw.zarr")  # read-only from here on
    out = create_array(workdir / "smoothed.zarr", shape=shape, dtype="float32", chunks=chunks,
                       shards=(64,) * 3)
    blocking = Blocking(shape, block_shape)
    assert blocks_align_with_chunks(blocking, out.chunks), "each chunk must have one writer"
    for block_id in range(blocking.number_of_blocks):
        block = blocking.get_block_with_halo(block_id, halo)
        smoothed = box_smooth(raw[to_roi(block.outer_block)])
        out[to_roi(block.inner_block)] = smoothed[to_roi(block.inner_block_local)]
    print(
        f"smoothed it block-wise: {blocking.number_of_blocks} blocks of {block_shape} "
        f"with a halo of {halo}, written to the sharded zarr {workdir / 'smoothed.zarr'} "
        f"(chunks {out.chunks}, shards {out.shards})"
    )

    expected = box_smooth(volume)
    ok = np.allclose(out[...], expected, rtol=1e-5)
    print(f"block-wise result equals the whole-volume filter: {ok}")

    spec = out.to_spec()
    print(f"the output's spec, as a worker receives it: {spec.to_json()}")
    roi = (slice(10, 50), 17, slice(None))
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        from_worker = pool.apply(read_in_worker, (spec, roi))
    worker_ok = np.array_equal(from_worker, out[roi])
    print(f"a worker process reopened it from the spec and read {from_worker.shape}: {worker_ok}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0 if ok and worker_ok else 1


if __name__ == "__main__":
    sys.exit(main())
