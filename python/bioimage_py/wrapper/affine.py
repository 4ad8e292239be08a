"""``AffineSource``: a source transformed by an affine map, computed per region read.

The affine is given as a matrix mapping output to input coordinates, or built from scale,
rotation, shear and translation (``bioimage_py.transformation.compute_affine_matrix``). Values
are bioimage-py 0.2's whole-volume read, bit for bit, for every region read (see
``bioimage_py._resample``): block-wise reads are seam-free.
"""
from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from bioimage_py import _resample
from bioimage_py.sources.dispatch import SourceLike
from bioimage_py.transformation import _check_matrix, compute_affine_matrix
from bioimage_py.util import sigma_to_halo
from bioimage_py.wrapper.base import WrapperSource, register_wrapper

__all__ = ["AffineSource"]

_ORDERS = range(6)


@register_wrapper
class AffineSource(WrapperSource):
    """The wrapped 2D or 3D source under an affine transformation, computed on read.

    Output voxel ``o`` samples the input at ``matrix[:ndim, :ndim] @ o + matrix[:ndim, ndim]``,
    interpolated with bioimage-cpp (orders 0-5: 0 nearest, for labels, copying values so 64-bit
    ids stay exact; 1 linear; 3 cubic convolution; 2, 4, 5 smoothing B-splines); voxels sampling
    outside the input take ``fill_value``. ``anti_aliasing`` pre-smooths input axes the affine
    shrinks (Gaussian sigma ``(stretch - 1) / 2`` with ``stretch`` the length of the axis's
    matrix row). The dtype is preserved (integers rounded and clamped). Chunks are the wrapped
    source's (0.2's), shards ``None``.

    Args:
        source: the source to transform (2D or 3D; bioimage-cpp's integer and float types, bool).
        shape: the output shape; default the source's.
        affine_matrix: ``(ndim + 1, ndim + 1)``, mapping output to input coordinates.
        scale, rotation, shear, translation: the affine's parameters instead of a matrix (see
            ``compute_affine_matrix``: rotation in degrees, ``[angle]`` in 2D, three angles in
            3D; shear 2D only).
        order: interpolation order 0-5.
        fill_value: the value where the output samples outside the input.
        anti_aliasing: pre-smooth shrunk axes (bool, uint8, uint16, float32, float64 data).

    Raises:
        ValueError: not 2D or 3D; both or neither of ``affine_matrix`` and the parameters; a
            matrix of the wrong shape, not finite or without the homogeneous last row; a shape
            of the wrong length or with negative sizes; an order out of range; a fill value the
            dtype cannot hold.
        TypeError: a dtype bioimage-cpp does not resample (or smooth, with anti-aliasing); a
            non-integer order or size.
    """

    def __init__(
        self,
        source: SourceLike,
        shape: Sequence[int] | None = None,
        *,
        affine_matrix: Any = None,
        scale: Sequence[float] | None = None,
        rotation: Sequence[float] | None = None,
        shear: Sequence[float] | None = None,
        translation: Sequence[float] | None = None,
        order: int = 0,
        fill_value: int | float = 0,
        anti_aliasing: bool = False,
    ) -> None:
        super().__init__(source)
        in_shape = self._source.shape
        ndim = len(in_shape)
        if ndim not in (2, 3):
            raise ValueError(f"AffineSource transforms 2D and 3D sources, got {ndim}D (shape {in_shape})")
        self._order = _resample.check_order(order, _ORDERS)
        parameters = (scale, rotation, shear, translation)
        has_parameters = any(p is not None for p in parameters)
        if (affine_matrix is not None) == has_parameters:
            raise ValueError(
                "AffineSource needs exactly one of affine_matrix or the scale / rotation / shear "
                "/ translation parameters"
            )
        if affine_matrix is None:
            affine_matrix = compute_affine_matrix(scale, rotation, shear, translation)
        self._matrix = _check_matrix(affine_matrix, ndim)
        self._shape = in_shape if shape is None else _check_shape(shape, ndim)
        self._static_shape = self._shape
        dtype = self._source.dtype
        _resample.check_dtype(dtype, "AffineSource")
        self._fill_value = _resample.check_fill_value(fill_value, dtype)
        self._anti_aliasing = bool(anti_aliasing)
        sigma = _resample.anti_aliasing_sigma(self._matrix[:ndim, :ndim])
        self._sigma = sigma if self._anti_aliasing and np.any(sigma > 0) else None
        # 0.2 reads the whole output from the input region its corners map to, grown by a halo
        # of the taps (and the smoothing): that read is the frame every region reproduces.
        frame_halo = [self._order + 1] * ndim
        if self._sigma is not None:
            _resample.check_smoothing_dtype(dtype, "AffineSource(anti_aliasing=True)")
            frame_halo = [h + sigma_to_halo(float(s), self._order)
                          for h, s in zip(frame_halo, self._sigma)]
        self._frame = _resample.frame_for_region(
            self._matrix, [0] * ndim, self._shape, in_shape, frame_halo
        )

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def matrix(self) -> np.ndarray:
        """The ``(ndim + 1, ndim + 1)`` matrix mapping output to input coordinates (a copy)."""
        return self._matrix.copy()

    @property
    def order(self) -> int:
        """The interpolation order."""
        return self._order

    @property
    def shards(self) -> tuple[int, ...] | None:
        """``None``: input shards do not map onto the output grid."""
        return None

    def _params(self) -> dict[str, Any]:
        return {
            "shape": list(self._shape),
            "affine_matrix": self._matrix.tolist(),
            "order": self._order,
            "fill_value": self._fill_value,
            "anti_aliasing": self._anti_aliasing,
        }

    def _getitem(self, roi: tuple[slice, ...]) -> np.ndarray:
        return _resample.resample(
            lambda region: self._source[region], self._source.dtype, self._frame, roi,
            order=self._order, fill_value=self._fill_value, sigma=self._sigma,
            halo=[self._order + 1] * len(roi),
        )


def _check_shape(shape: Any, ndim: int) -> tuple[int, ...]:
    """``shape`` as ``ndim`` non-negative ints."""
    try:
        sizes = tuple(operator.index(n) for n in shape)
    except TypeError:
        raise TypeError(f"shape must be a sequence of ints, got {shape!r}") from None
    if len(sizes) != ndim:
        raise ValueError(f"shape {sizes} has {len(sizes)} axes but the source has {ndim}")
    if any(n < 0 for n in sizes):
        raise ValueError(f"shape {sizes} has a negative size")
    return sizes
