"""Record what bioimage-py 0.2 reads from the files of ``tests/v02_files.py``.

Run with the interpreter that has bioimage-py 0.2 installed (with mrcfile, nibabel, tifffile,
imageio, msr-reader, h5py and zarr-python), not this project's:

    /work/v02/bin/python tests/data/make_io_v02.py

For every case of ``v02_files.OPENED`` it opens the file with 0.2's ``open_source`` and stores
in ``tests/data/io_v02.npz``: ``<case>/spec`` (0.2's spec as JSON, its path relative to the
folder of the files), ``<case>/values`` (what 0.2 reads: the whole array, or for KNOSSOS the
region ``<case>/roi``) and ``<case>/dtype`` (0.2's ``dtype``).
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/: v02_files, obf_writer

import bioimage_py  # noqa: E402  (0.2's, after the path to tests/ is set)
import v02_files  # noqa: E402
from bioimage_py import open_source  # noqa: E402

assert bioimage_py.__version__.startswith("0.2"), bioimage_py.__version__

OUT = os.path.join(HERE, "io_v02.npz")
# KNOSSOS levels are 128^3 and more: record one region, not the whole array.
KNOSSOS_ROI = (slice(100, 160), slice(3, 40), slice(120, 128))


def main() -> None:
    arrays = {}
    with tempfile.TemporaryDirectory() as folder:
        files = v02_files.write_all(folder)
        for case, name, internal_path, kwargs in v02_files.OPENED:
            source = open_source(files[name], internal_path, **kwargs)
            spec = dataclasses.asdict(source.to_spec())
            spec["path"] = os.path.relpath(spec["path"], folder)
            roi = KNOSSOS_ROI if case.startswith("knossos") else (slice(None),) * source.ndim
            arrays[f"{case}/spec"] = np.array(json.dumps(spec))
            arrays[f"{case}/values"] = np.asarray(source[roi])
            arrays[f"{case}/dtype"] = np.array(str(np.dtype(source.dtype)))
            arrays[f"{case}/roi"] = np.array([[s.start or 0, -1 if s.stop is None else s.stop]
                                              for s in roi]).reshape(-1, 2)
            print(f"{case}: {spec} shape {source.shape} dtype {source.dtype}")
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT}: {len(arrays)} arrays, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
