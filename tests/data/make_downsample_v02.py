"""Record bioimage-py 0.2's ``downsample`` results for ``tests/test_downsample.py``.

Run with the interpreter that has bioimage-py 0.2 installed (not this project's):

    /work/v02/bin/python tests/data/make_downsample_v02.py

It writes ``tests/data/downsample_v02.npz``: for every case ``<name>/input``, ``<name>/output``
(0.2's result with ``output=None``) and ``<name>/args`` (a JSON string of the keyword
arguments), plus ``masked/...`` and ``subset/...`` for a mask and a block selection. Each result
is checked block-wise against the one-read result before it is stored (0.2's wrapper is
seam-free, up to float32 rounding: compare floats with ``rtol=1e-6``).
"""
from __future__ import annotations

import json
import os

import numpy as np

import bioimage_py
from bioimage_py.downsample import downsample

assert bioimage_py.__version__.startswith("0.2"), bioimage_py.__version__

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "downsample_v02.npz")


def labels(shape, n, seed):
    """Piecewise-constant label blocks (distinct ids per cell of a coarse random grid)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, n, size=tuple(max(1, s // 3) for s in shape))
    index = np.ix_(*[np.minimum(np.arange(s) // 3, c - 1) for s, c in zip(shape, coarse.shape)])
    return coarse[index]


def image(shape, seed):
    """A smooth image plus noise, so that interpolation orders and anti-aliasing all matter."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 3, s) for s in shape], indexing="ij")
    smooth = sum(np.sin(g * (i + 1.3)) for i, g in enumerate(grids))
    return 100 + 40 * smooth + 10 * rng.standard_normal(shape)


CASES = {
    "labels3d_f2": (labels((19, 22, 17), 50, 1).astype("uint32"), 2, {}),
    "labels3d_f123": (labels((18, 21, 25), 9, 2).astype("int64"), (1, 2, 3), {}),
    "labels2d_f2": (labels((33, 27), 20, 3).astype("uint16"), 2, {}),
    "image3d_o1_aa": (image((20, 23, 18), 4).astype("float32"), 2, {"order": 1, "anti_aliasing": True}),
    "image3d_o1_uint8": (np.clip(image((17, 20, 22), 5), 0, 255).astype("uint8"), 3, {"order": 1}),
    "image3d_o3_f32": (image((16, 19, 21), 6).astype("float32"), (2, 2, 3), {"order": 3}),
    "image2d_o3_aa": (image((41, 37), 7).astype("float32"), (2, 3), {"order": 3, "anti_aliasing": True}),
    "image2d_o2_f64": (image((30, 34), 8), 2, {"order": 2}),
    "image2d_o5_f64": (image((29, 31), 9), (3, 2), {"order": 5}),
    "image2d_o4_aa_uint16": (np.clip(image((35, 26), 10) * 50, 0, 65535).astype("uint16"), 2,
                             {"order": 4, "anti_aliasing": True}),
    "bool3d_o0": (labels((15, 18, 14), 2, 11).astype(bool), 2, {}),
    "bool2d_o1": (labels((26, 23), 2, 12).astype(bool), 3, {"order": 1}),
    "image3d_aa_o0": (image((18, 18, 18), 13).astype("float32"), 3, {"anti_aliasing": True}),
}


def main() -> None:
    arrays = {}
    for name, (data, factor, kwargs) in CASES.items():
        result = downsample(data, factor, **kwargs)
        blockwise = downsample(data, factor, block_shape=(4,) * data.ndim, num_workers=2, **kwargs)
        # Float blocks may differ from the one-read result in the last bit (0.2 smooths in float32).
        np.testing.assert_allclose(result, blockwise, rtol=1e-6, atol=0, err_msg=name)
        arrays[f"{name}/input"] = data
        arrays[f"{name}/output"] = result
        arrays[f"{name}/args"] = np.array(json.dumps({"scale_factor": factor, **kwargs}))

    # A mask in the output space: only voxels where it is set are written (the rest stay 0).
    data, factor, kwargs = CASES["image3d_o1_aa"]
    full = downsample(data, factor, **kwargs)
    mask = labels(full.shape, 2, 14).astype(bool)
    arrays["masked/input"] = data
    arrays["masked/mask"] = mask
    arrays["masked/output"] = downsample(data, factor, mask=mask, block_shape=(4, 4, 4), **kwargs)
    arrays["masked/args"] = np.array(json.dumps({"scale_factor": factor, **kwargs}))

    # A subset of the blocks of block_shape (4, 4, 4) in the output space.
    data, factor, kwargs = CASES["labels3d_f2"]
    block_ids = [0, 3, 7, 12, 17]
    arrays["subset/input"] = data
    arrays["subset/block_ids"] = np.array(block_ids)
    arrays["subset/output"] = downsample(data, factor, block_shape=(4, 4, 4), block_ids=block_ids)
    arrays["subset/args"] = np.array(json.dumps({"scale_factor": factor, "block_shape": [4, 4, 4]}))

    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT}: {len(arrays)} arrays, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
