"""The main job, end to end: ``python -m bioimage_py.demo [--shape N] [--workers N] [--keep DIR]``.

A synthetic microscopy-like volume (uint16, 256^3 by default) is written to zarr v3 by
zarr-python, then converted block-wise between formats the way the ``bioimage-py convert``
command does it:

    zarr v3 --copy (threads)--> N5 --copy (worker processes)--> HDF5 --CLI--> sharded zarr v3

(without HDF5 support installed, the N5 goes to the sharded zarr directly).

Every result is read back and compared with the original voxel for voxel (the zarr outputs also
with zarr-python); the report lists each step's time, throughput and size on disk, and the exit
status says whether every check passed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bioimage_py import cli, copy, open_source
from bioimage_py import create_array


def synthetic_volume(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Round bright "nuclei" on a smooth background with mild noise, as uint16.

    Built from separable pieces (outer products of 1D profiles), so a 256^3 volume takes well
    under a second and little memory beyond the result.
    """
    rng = np.random.default_rng(seed)
    axes = [np.linspace(0, 1, n, dtype=np.float32) for n in shape]
    waves = [200 + 100 * np.sin(2 * np.pi * (2 + i) * a + i) for i, a in enumerate(axes)]
    volume = waves[0][:, None, None] + waves[1][None, :, None] + waves[2][None, None, :]
    for _ in range(24):
        center = rng.uniform(0.1, 0.9, 3) * np.array(shape)
        sigma = rng.uniform(0.02, 0.07) * min(shape)
        box = [slice(max(0, int(c - 3 * sigma)), min(n, int(c + 3 * sigma) + 1))
               for c, n in zip(center, shape)]
        z, y, x = (np.exp(-0.5 * ((np.arange(b.start, b.stop) - c) / sigma) ** 2)
                   for b, c in zip(box, center))
        volume[tuple(box)] += rng.uniform(1000, 3000) * z[:, None, None] * y[None, :, None] \
            * x[None, None, :]
    volume += rng.normal(0, 8, size=shape).astype(np.float32)
    return np.clip(volume, 0, 65535).astype(np.uint16)


def write_with_zarr_python(path: Path, volume: np.ndarray, chunks: tuple[int, ...]) -> None:
    """The input is made by a peer library: bioimage_py converts what others write."""
    import zarr

    zarr.create_array(store=str(path), shape=volume.shape, chunks=chunks, dtype=volume.dtype,
                      zarr_format=3, overwrite=True)[...] = volume


def disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, default=256, help="edge of the cubic volume")
    parser.add_argument("--workers", type=int, default=2, help="threads / worker processes")
    parser.add_argument("--keep", type=Path, help="write the files here instead of a temp dir")
    args = parser.parse_args(argv)

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bioimage_py_demo_"))
    workdir.mkdir(parents=True, exist_ok=True)
    shape = (args.shape,) * 3
    chunks = tuple(min(64, n) for n in shape)  # HDF5 refuses chunks larger than the array
    started = time.perf_counter()
    volume = synthetic_volume(shape)
    mib = volume.nbytes / 2**20
    write_with_zarr_python(workdir / "raw.zarr", volume, chunks)
    print(f"a synthetic {shape} uint16 volume ({mib:.0f} MiB), written to zarr v3 by zarr-python: "
          f"{workdir / 'raw.zarr'}")

    rows: list[tuple[str, str, float, Path, bool]] = []

    def check(step: str, how: str, seconds: float, path: Path, key: str = "") -> None:
        ok = bool(np.array_equal(open_source(path, key)[...], volume))
        if path.suffix == ".zarr":  # and the peer library reads the same voxels
            import zarr

            ok = ok and bool(np.array_equal(zarr.open_array(str(path), mode="r")[...], volume))
        rows.append((step, how, seconds, path, ok))

    # 1. zarr v3 -> N5 on threads of this process.
    raw = open_source(workdir / "raw.zarr")
    n5 = create_array(workdir / "volume.n5", shape=shape, dtype=volume.dtype, chunks=chunks,
                      overwrite=True)
    t = time.perf_counter()
    copy(raw, n5, job_type="local", num_workers=args.workers)
    check("zarr v3 -> N5", f"copy, {args.workers} threads", time.perf_counter() - t,
          workdir / "volume.n5")

    # 2. N5 -> HDF5 with worker processes that reopen the N5 from its spec; HDF5 has a single
    # writer, so the workers read and this process writes.
    try:
        h5 = create_array(workdir / "volume.h5", "data", shape=shape, dtype=volume.dtype,
                          chunks=chunks, overwrite=True)
    except ImportError as err:  # HDF5 support is optional: the chain goes on from the N5
        print(f"skipping the HDF5 step: {err}")
        middle, middle_key, middle_name, steps = workdir / "volume.n5", "", "N5", 2
    else:
        t = time.perf_counter()
        copy(open_source(workdir / "volume.n5"), h5, job_type="subprocess",
             num_workers=args.workers)
        seconds = time.perf_counter() - t
        del h5  # release the writable handle before the file is read again
        check("N5 -> HDF5", f"copy, {args.workers} processes", seconds, workdir / "volume.h5",
              "data")
        middle, middle_key, middle_name, steps = workdir / "volume.h5", "data", "HDF5", 3

    # 3. -> sharded zarr v3 with the command line (in-process here; the same as running
    # `bioimage-py convert volume.h5 sharded.zarr --src-key data --shards 128 ...`).
    argv_cli = ["convert", str(middle), str(workdir / "sharded.zarr"), "--chunks", "32",
                "--shards", "128", "--compression", "zstd:5", "--workers", str(args.workers),
                "--overwrite", "--quiet"]
    if middle_key:
        argv_cli += ["--src-key", middle_key]
    step = f"{middle_name} -> sharded zarr v3"
    t = time.perf_counter()
    status = cli.main(argv_cli)
    seconds = time.perf_counter() - t
    if status != 0:
        rows.append((step, "bioimage-py convert", seconds, workdir / "sharded.zarr", False))
    else:
        check(step, "bioimage-py convert", seconds, workdir / "sharded.zarr")

    print()
    print(f"| {'step':<24} | {'how':<22} | {'time':>7} | {'MiB/s':>6} | {'on disk':>8} | "
          f"voxel-exact |")
    print(f"|{'-' * 26}|{'-' * 24}|{'-' * 9}|{'-' * 8}|{'-' * 10}|{'-' * 13}|")
    for step, how, seconds, path, ok in rows:
        size = disk_bytes(path) / 2**20 if path.exists() else 0.0
        print(f"| {step:<24} | {how:<22} | {seconds:>5.2f} s | {mib / seconds:>6.0f} | "
              f"{size:>4.1f} MiB | {ok!s:<11} |")
    all_ok = len(rows) == steps and all(row[-1] for row in rows)
    print()
    print(f"every conversion voxel-exact: {all_ok}  ({time.perf_counter() - started:.1f} s in "
          f"all; files in {workdir}; cores: {os.cpu_count()})")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
