"""Record bioimage-py 0.2's wrapper results and specs for ``tests/test_wrapper_compat.py``.

Run with the interpreter that has bioimage-py 0.2 installed (not this project's):

    /work/v02/bin/python tests/data/make_v02_wrapper_references.py

It writes ``tests/data/v02_wrappers/``:

- ``slices/z??.tif``: the input volume (uint16, shape (6, 8, 10)) as a folder of 2D TIFF slices,
  the one file-backed format 0.2 opens without optional packages; every wrapper wraps
  ``open_source(slices, "*.tif")``.
- ``references.npz``: ``volume`` (the input) and, per case and read, ``<case>/<i>``: what 0.2
  returned for the i-th read.
- ``cases.json``: per case, the reads (one entry per index item: an int, ``[start, stop]`` for a
  slice, ``"..."``), and 0.2's ``shape`` and ``dtype`` of the wrapper.
- ``specs.pkl``: a pickled dict, case -> the bytes of 0.2's ``wrapper.to_spec()``, pickled with
  ``pickle`` when the spec holds no user callable and with ``cloudpickle`` otherwise (lambdas
  travel by value). The innermost spec's ``path`` is this folder's absolute path at generation
  time; the test points it at the folder's current place.
"""
from __future__ import annotations

import functools
import json
import os
import pickle

import cloudpickle
import numpy as np
import scipy.ndimage as ndi
import tifffile

import bioimage_py
from bioimage_py.sources import open_source
from bioimage_py.wrapper import (
    ExpandDimsSource,
    MultiTransformationSource,
    NormalizeSource,
    PadSource,
    RoiSource,
    SimpleTransformationSource,
    SimpleTransformationWithHaloSource,
    ThresholdSource,
    TransformationSource,
)

assert bioimage_py.__version__.startswith("0.2"), bioimage_py.__version__

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "v02_wrappers")
SHAPE = (6, 8, 10)

# Reads of a (6, 8, 10) wrapper: the whole, inner blocks, blocks at the ends, integer indices.
READS_3D = [
    (Ellipsis,),
    (slice(1, 4), slice(2, 7), slice(3, 9)),
    (slice(3, 6), slice(5, 8), slice(0, 10)),
    (slice(0, 2), slice(0, 3), slice(8, 10)),
    (2, slice(1, 5), 7),
    (slice(4, 5), 0),
]
# Reads of a 2D (8, 10) spatial view (with_channels); 0.2 cannot squeeze integer indices there.
READS_2D = [(Ellipsis,), (slice(2, 6), slice(3, 9)), (slice(0, 3), slice(7, 10))]


def cases(source):
    """case -> (the 0.2 wrapper around ``source``, its reads, whether a user callable is in it)."""
    mask = ThresholdSource(source, 2500)
    return {
        "threshold_default": (ThresholdSource(source, 2500), READS_3D, False),
        "threshold_less_equal": (ThresholdSource(source, 1000.5, np.less_equal), READS_3D, False),
        "threshold_callable": (
            ThresholdSource(source, 300, lambda a, t: np.abs(a.astype(np.int32) - 2500) < t),
            READS_3D,
            True,
        ),
        "normalize_default": (NormalizeSource(source), READS_3D, False),
        "normalize_float64": (NormalizeSource(source, "float64"), READS_3D, False),
        "normalize_with_channels": (NormalizeSource(source, with_channels=True), READS_2D, False),
        "roi_slices": (
            RoiSource(source, np.s_[1:5, 2:, :7]),
            [(Ellipsis,), (slice(1, 4), slice(2, 6), slice(3, 7)), (2, slice(1, 5), 6)],
            False,
        ),
        "roi_ints": (
            RoiSource(source, (2, slice(1, 6), -3)),
            [(Ellipsis,), (slice(0, 1), slice(1, 4), slice(0, 1)), (0, slice(2, 5), 0)],
            False,
        ),
        "roi_squeeze": (
            RoiSource(source, (2, slice(1, 6)), squeeze=True),
            [(Ellipsis,), (slice(1, 4), slice(2, 9)), (3, slice(0, 10))],
            False,
        ),
        "pad_constant": (
            PadSource(source, (2, 3, 0)),
            [(Ellipsis,), (slice(4, 8), slice(6, 11), slice(0, 10)), (slice(0, 3), slice(0, 9))],
            False,
        ),
        "pad_reflect": (
            PadSource(source, (2, 3, 4), "reflect"),
            [(Ellipsis,), (slice(4, 8), slice(6, 11), slice(5, 14)),
             (slice(2, 8), slice(3, 9), slice(9, 12)), (slice(0, 3), slice(0, 4), slice(0, 4))],
            False,
        ),
        "pad_edge": (
            PadSource(source, (0, 2, 5), "edge"),
            [(Ellipsis,), (slice(1, 5), slice(7, 10), slice(6, 15)),
             (3, slice(4, 9), slice(8, 15))],
            False,
        ),
        "pad_symmetric_2d": (
            PadSource(RoiSource(source, (3,), squeeze=True), (4, 6), "symmetric"),
            [(Ellipsis,), (slice(5, 12), slice(8, 16)), (slice(2, 9), slice(0, 11))],
            False,
        ),
        "expand_default": (ExpandDimsSource(source), [(Ellipsis,), (0, slice(1, 3)), (0, 2, 3)],
                           False),
        "expand_axes": (
            ExpandDimsSource(source, (0, -1)),
            [(Ellipsis,), (0, slice(1, 4), slice(2, 6), slice(3, 7), 0)],
            False,
        ),
        "simple_ufunc": (
            SimpleTransformationSource(source, np.sqrt, dtype="float32"), READS_3D, False
        ),
        "simple_lambda": (
            SimpleTransformationSource(source, lambda b: (b // 7).astype("int32") - 100,
                                       dtype="int32"),
            READS_3D,
            True,
        ),
        "simple_with_channels": (
            SimpleTransformationSource(source, lambda b: b.max(axis=0), with_channels=True),
            READS_2D,
            True,
        ),
        "halo_uniform": (
            SimpleTransformationWithHaloSource(
                source, functools.partial(ndi.uniform_filter, size=3, mode="reflect"), (1, 2, 2)
            ),
            READS_3D,
            False,
        ),
        "halo_gaussian_channels": (
            SimpleTransformationWithHaloSource(
                source,
                lambda b: ndi.gaussian_filter(b.astype(np.float32), sigma=(0, 1, 1)),
                (4, 4),
                with_channels=True,
                dtype="float32",
            ),
            READS_2D,
            True,
        ),
        "transformation_roi": (
            TransformationSource(
                source,
                lambda b, roi: b.astype(np.int64) + 1000 * roi[0].start + roi[2].start,
                dtype="int64",
            ),
            READS_3D[:4],
            True,
        ),
        "multi_where": (
            MultiTransformationSource(lambda a, m: np.where(m, a, 0), source, mask),
            READS_3D,
            True,
        ),
        "multi_list": (
            MultiTransformationSource(
                lambda blocks: np.stack(blocks).sum(axis=0, dtype=np.int64), source, source, mask,
                apply_to_list=True, dtype="int64",
            ),
            READS_3D,
            True,
        ),
        "chain_threshold_normalize_roi": (
            ThresholdSource(NormalizeSource(RoiSource(source, np.s_[1:, :, 2:9])), 0.4),
            [(Ellipsis,), (slice(1, 4), slice(2, 6), slice(0, 5))],
            False,
        ),
        "chain_expand_pad_roi": (
            ExpandDimsSource(PadSource(RoiSource(source, (slice(0, 4), 3), squeeze=True), (1, 2)),
                             0),
            [(Ellipsis,), (0, slice(2, 5), slice(5, 12))],
            False,
        ),
    }


def encode_read(read):
    return ["..." if e is Ellipsis else [e.start, e.stop] if isinstance(e, slice) else e
            for e in read]


def main():
    os.makedirs(os.path.join(OUT, "slices"), exist_ok=True)
    volume = np.random.default_rng(2024).integers(0, 5000, SHAPE, dtype=np.uint16)
    for z, plane in enumerate(volume):
        tifffile.imwrite(os.path.join(OUT, "slices", f"z{z:02d}.tif"), plane)
    source = open_source(os.path.join(OUT, "slices"), "*.tif")
    assert (source[...] == volume).all()

    arrays = {"volume": volume}
    table, specs = {}, {}
    for name, (wrapper, reads, has_callable) in cases(source).items():
        for i, read in enumerate(reads):
            arrays[f"{name}/{i}"] = np.asarray(wrapper[read])
        table[name] = {
            "reads": [encode_read(read) for read in reads],
            "shape": list(wrapper.shape),
            "dtype": np.dtype(wrapper.dtype).str,
        }
        specs[name] = (cloudpickle if has_callable else pickle).dumps(wrapper.to_spec())
        if not has_callable:  # stdlib pickle must do for specs without user callables
            pickle.loads(specs[name])

    np.savez_compressed(os.path.join(OUT, "references.npz"), **arrays)
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(table, f, indent=1)
    with open(os.path.join(OUT, "specs.pkl"), "wb") as f:
        pickle.dump(specs, f)
    print(f"{len(table)} cases, {len(arrays) - 1} reads -> {OUT}")


if __name__ == "__main__":
    main()
