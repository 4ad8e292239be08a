"""Record bioimage-py 0.2's resampling results for ``tests/test_resample.py``.

Run with the interpreter that has bioimage-py 0.2 installed (not this project's):

    /work/v02/bin/python tests/data/make_v02_resample_references.py

It writes ``tests/data/resample_v02.npz``:

* ``input/<name>``: the inputs (2D and 3D, every dtype 0.2 resamples).
* ``resized/<case>`` and ``affine/<case>``: 0.2's whole-volume read (``src[:]``) of a
  ``ResizedSource`` / ``AffineSource``.
* ``matrix/<case>``: ``compute_affine_matrix(**kwargs)``; ``coordinate/<case>`` and
  ``roi/<case>``: ``transform_coordinate`` and ``transform_roi_with_affine`` results.
* ``subvolume/<case>``: ``transform_subvolume_affine`` of one output region (0.2 computes each
  call in its own frame); ``coordinates/<case>``: ``transform_subvolume_coordinates`` of the
  field ``coordinates/<ndim>d/field``.
* ``meta``: one JSON string with, per case, the input's name, the keyword arguments and, for
  the wrappers, 0.2's ``_params()`` (to reopen 0.2's specs).
"""
from __future__ import annotations

import json
import os

import numpy as np

import bioimage_py
from bioimage_py import transformation as tf
from bioimage_py.wrapper.affine import AffineSource
from bioimage_py.wrapper.resize import ResizedSource

assert bioimage_py.__version__.startswith("0.2"), bioimage_py.__version__

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resample_v02.npz")
SHAPES = {2: (15, 12), 3: (7, 9, 6)}
DTYPES = ["float32", "float64", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32",
          "int64", "bool"]
SMOOTHABLE = ["float32", "float64", "uint8", "uint16", "bool"]


def make_input(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    """A smooth image plus noise (so orders and anti-aliasing matter) in the dtype's range."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 3, n) for n in shape], indexing="ij")
    smooth = sum(np.sin(g * (i + 1.3)) for i, g in enumerate(grids)) / len(shape)
    values = 0.5 + 0.35 * smooth + 0.1 * rng.standard_normal(shape)
    if dtype == "bool":
        return values > 0.5
    if np.dtype(dtype).kind == "f":
        return (100 * values).astype(dtype)
    info = np.iinfo(dtype)
    low, high = max(info.min, -1000), min(info.max, 1000)  # int64: within float64's exact range
    return np.clip(low + values * (high - low), low, high).astype(dtype)


def targets(shape: tuple[int, ...]) -> dict[str, list[int]]:
    return {
        "down": [(n + 1) // 2 for n in shape],  # scale about 2 (dyadic where n is even)
        "up": [2 * n for n in shape],  # scale 0.5: the last voxel samples beyond the input
        "odd": [int(0.7 * n) + 1 for n in shape],  # non-dyadic scales: rounding of the walk
    }


def affine_kwargs(ndim: int) -> dict:
    if ndim == 2:
        return {"rotation": [33.0], "scale": [1.3, 0.8], "shear": [5.0],
                "translation": [3.5, -2.25], "fill_value": 3}
    return {"rotation": [10.0, 25.0, 40.0], "scale": [1.3, 0.8, 1.6],
            "translation": [2.5, -3.0, 1.0], "fill_value": 3}


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, dict] = {}
    inputs: dict[str, np.ndarray] = {}
    for ndim, shape in SHAPES.items():
        for seed, dtype in enumerate(DTYPES):
            inputs[f"{ndim}d_{dtype}"] = make_input(shape, dtype, 10 * ndim + seed)
    # A 2D input whose upsampling scale is 0.3: nearest-neighbour ties at x.5 with a walk that
    # rounds (3 * 0.1 != 0.3 in floating point).
    inputs["2d_tie_uint16"] = make_input((6, 9), "uint16", 99)
    for name, data in inputs.items():
        arrays[f"input/{name}"] = data

    def record(kind: str, case: str, input_name: str, kwargs: dict) -> None:
        data = inputs[input_name]
        cls = ResizedSource if kind == "resized" else AffineSource
        src = cls(data, **kwargs)
        arrays[f"{kind}/{case}"] = src[tuple(slice(0, n) for n in src.shape)]
        params = {key: (list(v) if isinstance(v, tuple) else v) for key, v in src._params().items()}
        meta[f"{kind}/{case}"] = {"input": input_name, "kwargs": kwargs, "params": params}

    for ndim, shape in SHAPES.items():
        for order in range(6):
            for aa in (False, True):
                for target, out_shape in targets(shape).items():
                    record("resized", f"{ndim}d_float32_o{order}_aa{int(aa)}_{target}",
                           f"{ndim}d_float32", {"shape": out_shape, "order": order,
                                                "anti_aliasing": aa})
                record("affine", f"{ndim}d_float32_o{order}_aa{int(aa)}", f"{ndim}d_float32",
                       {"order": order, "anti_aliasing": aa, **affine_kwargs(ndim)})
        for dtype in DTYPES[1:]:
            for order in (0, 1, 3):
                for target in ("down", "odd"):
                    record("resized", f"{ndim}d_{dtype}_o{order}_aa0_{target}", f"{ndim}d_{dtype}",
                           {"shape": targets(shape)[target], "order": order})
                record("affine", f"{ndim}d_{dtype}_o{order}_aa0", f"{ndim}d_{dtype}",
                       {"order": order, **affine_kwargs(ndim)})
                if dtype in SMOOTHABLE:
                    record("resized", f"{ndim}d_{dtype}_o{order}_aa1_odd", f"{ndim}d_{dtype}",
                           {"shape": targets(shape)["odd"], "order": order, "anti_aliasing": True})
        # The output maps partly / wholly outside the input; a non-zero float fill.
        for order in range(6):
            matrix = np.eye(ndim + 1)
            matrix[0, ndim] = shape[0] - 4.5
            record("affine", f"{ndim}d_float32_o{order}_partly_outside", f"{ndim}d_float32",
                   {"affine_matrix": matrix.tolist(), "order": order, "fill_value": 0.1})
            matrix[0, ndim] = 3 * shape[0]
            record("affine", f"{ndim}d_float32_o{order}_outside", f"{ndim}d_float32",
                   {"affine_matrix": matrix.tolist(), "order": order, "fill_value": 0.1})
    for order in range(6):
        record("resized", f"2d_tie_o{order}", "2d_tie_uint16", {"shape": [20, 30], "order": order})

    # compute_affine_matrix and the coordinate helpers.
    matrix_cases = {
        "2d_rotation": {"rotation": [30.0]},
        "2d_all": {"scale": [1.5, 0.7], "rotation": [-20.0], "shear": [10.0],
                   "translation": [4.0, -1.5]},
        "2d_scale": {"scale": [2, 3]},
        "3d_rotation": {"rotation": [10.0, 20.0, 30.0]},
        "3d_all": {"scale": [1.1, 0.9, 2.0], "rotation": [-5.0, 45.0, 60.0],
                   "translation": [1.0, 2.0, -3.5]},
        "3d_translation": {"translation": [1.25, 2.0, 3.0]},
    }
    for case, kwargs in matrix_cases.items():
        matrix = tf.compute_affine_matrix(**kwargs)
        arrays[f"matrix/{case}"] = matrix
        meta[f"matrix/{case}"] = {"kwargs": kwargs}
        ndim = matrix.shape[0] - 1
        point = [1.5, -2.0, 7.25][:ndim]
        arrays[f"coordinate/{case}"] = np.array(tf.transform_coordinate(point, matrix))
        start, stop = tf.transform_roi_with_affine([2, 3, 1][:ndim], [10, 7, 9][:ndim], matrix)
        arrays[f"roi/{case}"] = np.array([start, stop])

    # transform_subvolume_affine: one region per call, each in its own frame.
    for ndim, shape in SHAPES.items():
        matrix = tf.compute_affine_matrix(**{k: v for k, v in affine_kwargs(ndim).items()
                                             if k != "fill_value"})
        roi = tuple(slice(2, n - 1) for n in shape)
        for order in range(6):
            for sigma in (None, [0.8] + [0.0] * (ndim - 1)):
                case = f"{ndim}d_o{order}_sigma{int(sigma is not None)}"
                arrays[f"subvolume/{case}"] = tf.transform_subvolume_affine(
                    inputs[f"{ndim}d_float32"], matrix, roi, order=order, fill_value=2.0,
                    sigma=sigma,
                )
                meta[f"subvolume/{case}"] = {
                    "input": f"{ndim}d_float32", "matrix": matrix.tolist(),
                    "roi": [[s.start, s.stop] for s in roi], "sigma": sigma,
                    "order": order, "fill_value": 2.0,
                }
        rng = np.random.default_rng(ndim)
        field = rng.uniform(-2, np.array(shape) + 1, size=(7,) * ndim + (ndim,))
        field = np.moveaxis(field, -1, 0)
        arrays[f"coordinates/{ndim}d/field"] = field
        for order in range(6):
            arrays[f"coordinates/{ndim}d_o{order}"] = tf.transform_subvolume_coordinates(
                inputs[f"{ndim}d_uint16"], field, order=order, fill_value=7,
            )

    arrays["meta"] = np.array(json.dumps(meta))
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT}: {len(arrays)} arrays, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
