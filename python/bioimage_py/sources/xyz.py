"""Layers stored in XYZ order (cloud-volume, WebKnossos) presented in numpy's ``(z, y, x)``.

Both libraries return fresh Fortran-ordered ``(x, y, z)`` buffers, whose reversed view is
already C-contiguous ``(z, y, x)``: it is used as is, with no copy. Any other layout is copied
once by the Rust ``contiguous_transpose``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from bioimage_py.util import contiguous_transpose

__all__ = ["xyz_vector", "zyx_array"]


def xyz_vector(value: Any, name: str, where: str) -> tuple[int, int, int]:
    """``value`` as three Python ints (an XYZ vector), or a ``ValueError`` naming it and the
    data set ``where`` it was given for."""
    try:
        values = tuple(int(v) for v in value)
        exact = all(int(v) == v for v in value)
    except (TypeError, ValueError):
        values, exact = (), False
    if len(values) != 3 or not exact:
        raise ValueError(f"{name} must be three integers (x, y, z) for {where}, got {value!r}")
    return values  # type: ignore[return-value]


def zyx_array(xyz: np.ndarray) -> np.ndarray:
    """The C-contiguous ``(z, y, x)`` array of an ``(x, y, z)`` array: its reversed view when
    that is contiguous already, else a transposed copy."""
    zyx = xyz.T
    if zyx.flags.c_contiguous:
        return zyx
    return contiguous_transpose(xyz, (2, 1, 0))
