"""Affine transformations of sources: matrices from parameters, coordinate helpers and resampling
of an output region, as bioimage-py 0.2 has them.

Matrices are homogeneous, ``(ndim + 1, ndim + 1)``, in numpy axis order, and map *output*
coordinates to *input* coordinates (the convention of ``scipy.ndimage.affine_transform`` and
``bioimage_cpp.transformation``): output voxel ``o`` samples the input at
``matrix[:ndim, :ndim] @ o + matrix[:ndim, ndim]``. Interpolation orders 0-5 are
bioimage-cpp's: 0 nearest, 1 linear, 3 Keys cubic convolution (interpolating), 2, 4 and 5
B-spline kernels without prefilter (smoothing). Output voxels sampling outside the input take
``fill_value``.
"""
from __future__ import annotations

from collections.abc import Sequence
from numbers import Number
from typing import Any

import numpy as np

from bioimage_py._resample import (
    check_dtype,
    check_smoothing_dtype,
    check_fill_value,
    check_order,
    frame_for_region,
    resample,
    sample_coordinates,
    transform_coordinate,
    transform_roi_with_affine,
)
from bioimage_py.sources.dispatch import SourceLike, as_source
from bioimage_py.util import sigma_to_halo

__all__ = [
    "compute_affine_matrix",
    "transform_coordinate",
    "transform_roi_with_affine",
    "transform_subvolume_affine",
    "transform_subvolume_coordinates",
]

_ORDERS = range(6)


def compute_affine_matrix(
    scale: Sequence[float] | None = None,
    rotation: Sequence[float] | None = None,
    shear: Sequence[float] | None = None,
    translation: Sequence[float] | None = None,
) -> np.ndarray:
    """A 2D or 3D homogeneous affine matrix from scale, rotation, shear and translation.

    The matrix is ``R @ diag(scale)`` plus the translation column: the output axes are scaled,
    then rotated, then shifted. Unset parameters are the identity. The entries are 0.2's, to the
    last bit.

    Args:
        scale: one factor per axis (2 or 3).
        rotation: in degrees: ``[angle]`` in 2D; ``[phi, theta, psi]`` in 3D, about axes 0, 1
            and 2, ``R = R2(psi) R1(theta) R0(phi)``. As in 0.2, entry ``[2, 1]`` is
            ``sin(phi) sin(theta)`` where that product has ``sin(phi) cos(theta)``: with ``phi``
            and ``theta`` both non-zero the 3D matrix is not a rotation.
        shear: 2D only, ``[angle]`` in degrees, added to the rotation of output axis 1 (0.2's
            definition). A non-zero 3D shear raises (0.2 silently ignored it).
        translation: one offset per axis.

    Returns:
        The ``(ndim + 1, ndim + 1)`` float64 matrix.

    Raises:
        ValueError: no parameter given; lengths that disagree on the dimensionality (scale and
            translation have one entry per axis, rotation and shear 1 in 2D and 3 in 3D); a
            non-zero shear in 3D.
        TypeError: a parameter that is not a sequence.
    """
    given = {
        name: value
        for name, value in (
            ("scale", scale), ("rotation", rotation), ("shear", shear),
            ("translation", translation),
        )
        if value is not None
    }
    if not given:
        raise ValueError("compute_affine_matrix needs at least one of scale, rotation, shear, translation")
    dims = {}
    for name, value in given.items():
        try:
            length = len(value)
        except TypeError:
            raise TypeError(f"{name} must be a sequence, got {value!r}") from None
        if name in ("scale", "translation"):
            dims[name] = length
        elif length in (1, 3):
            dims[name] = 2 if length == 1 else 3
        else:
            raise ValueError(
                f"{name} must have 1 entry (2D) or 3 entries (3D), got {length}: {value!r}"
            )
    if len(set(dims.values())) != 1 or next(iter(dims.values())) not in (2, 3):
        found = ", ".join(f"{name} -> {ndim}D" for name, ndim in dims.items())
        raise ValueError(f"the parameters disagree on 2D or 3D (or are neither): {found}")
    if dims.popitem()[1] == 2:
        return _matrix_2d(scale, rotation, shear, translation)
    if shear is not None and any(float(angle) != 0.0 for angle in shear):
        raise ValueError(f"shear is not supported in 3D, got {list(shear)}")
    return _matrix_3d(scale, rotation, translation)


def _matrix_2d(
    scale: Sequence[float] | None,
    rotation: Sequence[float] | None,
    shear: Sequence[float] | None,
    translation: Sequence[float] | None,
) -> np.ndarray:
    """``[[sx cos a, -sy sin(a + s)], [sx sin a, sy cos(a + s)]]`` with rotation ``a`` and shear
    ``s`` (radians), evaluated as 0.2 evaluates it (numpy's sin and cos of the converted angles)."""
    sx, sy = (1.0, 1.0) if scale is None else scale
    angle = np.deg2rad(0.0 if rotation is None else rotation)
    tilted = angle + np.deg2rad(0.0 if shear is None else shear)

    def cos(x: Any) -> float:
        return np.cos(x).item()

    def sin(x: Any) -> float:
        return np.sin(x).item()

    matrix = np.eye(3)
    matrix[0, 0], matrix[0, 1] = sx * cos(angle), -sy * sin(tilted)
    matrix[1, 0], matrix[1, 1] = sx * sin(angle), sy * cos(tilted)
    matrix[:2, 2] = (0.0, 0.0) if translation is None else translation
    return matrix


def _matrix_3d(
    scale: Sequence[float] | None,
    rotation: Sequence[float] | None,
    translation: Sequence[float] | None,
) -> np.ndarray:
    """Column ``k`` of ``R2(psi) R1(theta) R0(phi)`` times ``scale[k]``, each entry evaluated as
    0.2 evaluates it (products left to right), 0.2's entry ``[2, 1]`` included (see
    ``compute_affine_matrix``)."""
    sx, sy, sz = (1.0, 1.0, 1.0) if scale is None else scale
    phi, theta, psi = np.deg2rad((0.0, 0.0, 0.0) if rotation is None else rotation)
    c_phi, s_phi = np.cos(phi), np.sin(phi)
    c_theta, s_theta = np.cos(theta), np.sin(theta)
    c_psi, s_psi = np.cos(psi), np.sin(psi)
    matrix = np.eye(4)
    matrix[:3, 0] = (sx * c_theta * c_psi, sx * c_theta * s_psi, -sx * s_theta)
    matrix[:3, 1] = (
        sy * (-c_phi * s_psi + s_phi * s_theta * c_psi),
        sy * (c_phi * c_psi + s_phi * s_theta * s_psi),
        sy * s_phi * s_theta,
    )
    matrix[:3, 2] = (
        sz * (s_phi * s_psi + c_phi * s_theta * c_psi),
        sz * (-s_phi * c_theta + c_phi * s_theta * s_psi),
        sz * c_phi * c_theta,
    )
    matrix[:3, 3] = (0.0, 0.0, 0.0) if translation is None else translation
    return matrix


def transform_subvolume_affine(
    source: SourceLike,
    matrix: np.ndarray,
    roi: tuple[slice, ...],
    order: int = 0,
    fill_value: Number = 0,
    sigma: Sequence[float] | None = None,
) -> np.ndarray:
    """The output region ``roi`` of the affine transformation of ``source``, read lazily.

    Reads the input region the box's corners map to (grown by the interpolation taps and, with
    ``sigma``, the smoothing kernel) and resamples it with bioimage-cpp, as 0.2 does: the values
    are 0.2's for the same call. bioimage-cpp's coordinates carry rounding from the box's first
    voxel, so two boxes may disagree in the last bits (or at a nearest-neighbour tie) where they
    overlap; for seam-free block-wise reads use ``bioimage_py.wrapper.AffineSource``, whose every
    read reproduces its whole-volume read. Order 0 copies values (64-bit labels stay exact).

    Args:
        source: the input (2D or 3D, any ``SourceLike``).
        matrix: ``(ndim + 1, ndim + 1)``, mapping output to input coordinates.
        roi: the output region, one slice per axis (``None`` bounds: 0 and the input's size).
        order: interpolation order 0-5.
        fill_value: the value of output voxels sampling outside the input.
        sigma: per-input-axis Gaussian sigma to pre-smooth with (anti-aliasing), or None.

    Returns:
        The region, of the source's dtype.

    Raises:
        ValueError: not 2D or 3D; a matrix, roi or sigma of the wrong shape; an order outside
            0-5; a fill value the dtype cannot hold.
        TypeError: a dtype bioimage-cpp does not resample (or smooth, with ``sigma``).
    """
    source = as_source(source)
    in_shape = source.shape
    ndim = _check_ndim(len(in_shape), "transform_subvolume_affine")
    order = check_order(order, _ORDERS)
    check_dtype(source.dtype, "transform_subvolume_affine")
    fill_value = check_fill_value(fill_value, source.dtype)
    matrix = _check_matrix(matrix, ndim)
    out_start, out_stop = _roi_bounds(roi, in_shape)
    smoothing = _check_sigma(sigma, ndim, source.dtype)
    halo = [order + 1] * ndim
    if smoothing is not None:
        halo = [h + sigma_to_halo(float(s), order) for h, s in zip(halo, smoothing)]
    frame = frame_for_region(matrix, out_start, out_stop, in_shape, halo)
    box = tuple(slice(a, b) for a, b in zip(out_start, out_stop))
    return resample(
        lambda region: source[region], source.dtype, frame, box, order=order,
        fill_value=fill_value, sigma=smoothing, halo=[order + 1] * ndim,
    )


def transform_subvolume_coordinates(
    source: SourceLike,
    coordinates: np.ndarray,
    order: int = 1,
    fill_value: Number = 0,
) -> np.ndarray:
    """``source`` sampled at explicit input coordinates, read lazily (a deformation field).

    Reads the bounding box of ``coordinates`` (grown by the interpolation taps) and samples it
    with bioimage-cpp's ``map_coordinates``; each voxel's value depends on its coordinate only,
    so any split of a field into parts gives the same values. Order 0 copies values (64-bit
    labels stay exact).

    Args:
        source: the input (2D or 3D, any ``SourceLike``).
        coordinates: ``(ndim, *output_shape)``: the input coordinate of every output voxel.
        order: interpolation order 0-5.
        fill_value: the value of output voxels sampling outside the input.

    Returns:
        An array of ``coordinates.shape[1:]`` and the source's dtype.

    Raises:
        ValueError: not 2D or 3D; coordinates of the wrong shape or not finite; an order outside
            0-5; a fill value the dtype cannot hold.
        TypeError: a dtype bioimage-cpp does not resample.
    """
    source = as_source(source)
    in_shape = source.shape
    ndim = _check_ndim(len(in_shape), "transform_subvolume_coordinates")
    order = check_order(order, _ORDERS)
    check_dtype(source.dtype, "transform_subvolume_coordinates")
    fill_value = check_fill_value(fill_value, source.dtype)
    field = np.asarray(coordinates, dtype=np.float64)
    if field.ndim != ndim + 1 or field.shape[0] != ndim:
        raise ValueError(
            f"coordinates must have shape (ndim, *output_shape) with ndim={ndim}, got {field.shape}"
        )
    out_shape = field.shape[1:]
    if field.size == 0:
        return np.empty(out_shape, source.dtype)
    if not np.all(np.isfinite(field)):
        raise ValueError("coordinates must be finite")
    halo = order + 1
    start = [max(0, int(np.floor(field[d].min())) - halo) for d in range(ndim)]
    stop = [min(n, int(np.ceil(field[d].max())) + halo) for d, n in enumerate(in_shape)]
    if any(b <= a for a, b in zip(start, stop)):  # every voxel samples outside: 0.2 fills
        return np.full(out_shape, fill_value, dtype=source.dtype)
    data = np.asarray(source[tuple(slice(a, b) for a, b in zip(start, stop))])
    # Shifting by an integer no larger than the coordinates is exact.
    local = field - np.asarray(start, dtype=np.float64).reshape((ndim,) + (1,) * ndim)
    return sample_coordinates(data, np.ascontiguousarray(local), order, fill_value)


def _check_ndim(ndim: int, owner: str) -> int:
    if ndim not in (2, 3):
        raise ValueError(f"{owner} supports 2D and 3D data, got {ndim}D")
    return ndim


def _check_matrix(matrix: Any, ndim: int) -> np.ndarray:
    """``matrix`` as a finite homogeneous ``(ndim + 1, ndim + 1)`` float64 array."""
    array = np.array(matrix, dtype=np.float64)
    if array.shape != (ndim + 1, ndim + 1):
        raise ValueError(
            f"the affine matrix must have shape {(ndim + 1, ndim + 1)} for {ndim}D data, "
            f"got {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"the affine matrix must be finite, got {array.tolist()}")
    last = np.zeros(ndim + 1)
    last[-1] = 1.0
    if not np.array_equal(array[-1], last):
        raise ValueError(f"the affine matrix's last row must be {last.tolist()}, got {array[-1].tolist()}")
    return array


def _roi_bounds(roi: Any, in_shape: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """Start and stop of ``roi`` (slices, ``None`` bounds: 0 and the input's size)."""
    entries = tuple(roi) if isinstance(roi, (tuple, list)) else (roi,)
    if len(entries) != len(in_shape) or not all(isinstance(s, slice) for s in entries):
        raise ValueError(f"roi must be {len(in_shape)} slices, got {roi!r}")
    start, stop = [], []
    for axis, (item, n) in enumerate(zip(entries, in_shape)):
        if item.step not in (None, 1):
            raise ValueError(f"roi slices must have step 1, got {item} on axis {axis}")
        a = 0 if item.start is None else int(item.start)
        b = n if item.stop is None else int(item.stop)
        if a < 0 or b < a:
            raise ValueError(f"roi needs 0 <= start <= stop, got {item} on axis {axis}")
        start.append(a)
        stop.append(b)
    return start, stop


def _check_sigma(sigma: Any, ndim: int, dtype: np.dtype) -> np.ndarray | None:
    """``sigma`` as a per-axis float64 array, or None when nothing is smoothed."""
    if sigma is None:
        return None
    values = np.asarray(sigma, dtype=np.float64)
    if values.ndim == 0:
        values = np.full(ndim, float(values))
    if values.shape != (ndim,) or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"sigma must be {ndim} finite non-negative values, got {sigma!r}")
    if not np.any(values > 0):
        return None
    check_smoothing_dtype(dtype, "anti-aliasing (Gaussian smoothing)")
    return values
