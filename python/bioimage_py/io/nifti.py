"""NIfTI files (``.nii``, ``.nii.gz``): read-only, through ``nibabel``.

``open_nifti(path, mode)`` loads the image with ``nibabel.load`` (header only) and returns a
``SingleArrayFile``: a container with one array, ``"data"`` (the default ``internal_path``). Regions are
read through the image's ``dataobj`` (a nibabel ``ArrayProxy``): for an uncompressed ``.nii``
only the requested region is read from the file; a ``.nii.gz`` is decompressed from its start on
each read (nibabel uses ``indexed_gzip`` to seek, when installed).

Axis order: NIfTI stores voxels as ``(x, y, z[, t, ...])`` with x varying fastest (Fortran
order), which is nibabel's order. By default (``axis_order="zyx"``) the axes are presented
*reversed*, ``(z, y, x)`` for a volume and ``(t, z, y, x)`` for a time series, as every other
``bioimage_py`` source (zarr, N5, HDF5, MRC, TIFF, CloudVolume, WebKnossos) presents its data, so
that block-wise pipelines index all of them alike; this is also the order in which the file is
contiguous, so a slab along the first axis is one range of the file. ``src[z, y, x]`` is
nibabel's ``img.dataobj[x, y, z]``. Pass ``axis_order="xyz"`` to ``open_source`` to get nibabel's
order as stored instead (the choice is recorded in the spec).

Values and dtype follow nibabel's ``dataobj``: when the header sets a scaling
(``scl_slope``/``scl_inter``), reads return the scaled values in the floating-point dtype nibabel
picks for them (as ``np.asarray(img.dataobj)``; ``get_fdata`` would always give float64);
otherwise the stored values in the stored dtype (native byte order).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from bioimage_py.io.optional import import_optional
from bioimage_py.io.reader_array import ReaderArray
from bioimage_py.io.single_array import SingleArrayFile

__all__ = ["AXIS_ORDERS", "NiftiArray", "open_nifti"]


AXIS_ORDERS = ("zyx", "xyz")
"""``"zyx"``: axes reversed from storage (default); ``"xyz"``: as stored, nibabel's order."""


class NiftiArray(ReaderArray):
    """The voxel data of a NIfTI image, read lazily through nibabel's ``ArrayProxy``.

    ``arr[index]`` takes numpy basic indexing in the presented axis order and returns a new
    numpy array. ``chunks`` is ``None``.
    """

    def __init__(self, image: Any, path: str, axis_order: str) -> None:
        self._image = image
        self._proxy = image.dataobj
        self._path = path
        self._reverse = axis_order == "zyx"
        self._axis_order = axis_order
        stored = tuple(int(n) for n in self._proxy.shape)
        self._stored_shape = stored
        self._shape = stored[::-1] if self._reverse else stored
        # The dtype of reads: scaling may turn integers into floats. nibabel picks that dtype
        # from the stored dtype and the scale factors alone, so one voxel tells it.
        probe = self._proxy[tuple(slice(0, min(1, n)) for n in stored)]
        self._dtype = np.asarray(probe).dtype.newbyteorder("=")

    @property
    def path(self) -> str:
        return self._path

    @property
    def axis_order(self) -> str:
        """``"zyx"`` (axes reversed from storage) or ``"xyz"`` (as stored)."""
        return self._axis_order

    @property
    def image(self) -> Any:
        """The nibabel image (header, affine, ...)."""
        return self._image

    @property
    def header(self) -> Any:
        return self._image.header

    @property
    def affine(self) -> np.ndarray:
        """The voxel-to-world affine for nibabel's ``(x, y, z)`` voxel indices."""
        return self._image.affine

    def _read(self, roi: tuple[slice, ...]) -> np.ndarray:
        shape = tuple(s.stop - s.start for s in roi)
        if 0 in shape:  # nibabel's fileslice fails on some empty regions
            return np.empty(shape, dtype=self._dtype)
        if self._reverse:
            data = np.asarray(self._proxy[roi[::-1]]).transpose()
        else:
            data = np.asarray(self._proxy[roi])
        # A new C-ordered array in native byte order, never a view of a memory map.
        return np.array(data, dtype=self._dtype, order="C")

    def close(self) -> None:
        """Nothing to release: nibabel opens the file for each read (unless kept open)."""

    def __repr__(self) -> str:
        return (
            f"NiftiArray({self._path!r}, shape={self._shape}, dtype={self._dtype}, "
            f"axis_order={self._axis_order!r})"
        )



def open_nifti(path: str, mode: str = "r", *, axis_order: str = "zyx", **kwargs: Any) -> SingleArrayFile:
    """Open the NIfTI image at ``path`` read-only.

    Args:
        path: the ``.nii`` or ``.nii.gz`` file.
        mode: only ``"r"`` (the format is read-only).
        axis_order: ``"zyx"`` (default: axes reversed, ``(t, z, y, x)`` for 4D) or ``"xyz"``
            (nibabel's order as stored); see the module docstring.
        **kwargs: passed to ``nibabel.load`` (e.g. ``mmap``, ``keep_file_open``).

    Raises:
        ImportError: ``nibabel`` is not installed (naming the package).
        ValueError: ``mode`` is not ``"r"`` or ``axis_order`` is not one of ``AXIS_ORDERS``.
    """
    if mode != "r":
        raise ValueError(f"Format 'nifti' is read-only; open it with mode='r', not {mode!r}")
    if axis_order not in AXIS_ORDERS:
        raise ValueError(f"axis_order must be one of {AXIS_ORDERS}, got {axis_order!r}")
    nibabel = import_optional("nibabel", format="nifti", install="pip install nibabel")
    image = nibabel.load(path, **kwargs)
    return SingleArrayFile(NiftiArray(image, path, axis_order))
