"""The built-in formats: zarr, N5 and HDF5 natively (Rust, writable), and the read-only ones
(MRC, NIfTI, MSR/OBF, TIFF, folders). zarr and N5 also open URLs (``s3://``, ``gs://``,
``http(s)://``), and zarr zip files (``vol.zarr.zip``, read-only).

Each constructor is ``(path, mode, **kwargs) -> container``. Optional libraries are imported
when a file is opened, so a missing one never breaks ``import bioimage_py.io``; it fails then
with an ``ImportError`` naming the package to install.
"""
from __future__ import annotations

from bioimage_py.io.folder import open_folder
from bioimage_py.io.hdf5 import open_native_hdf5
from bioimage_py.io.mrc import open_mrc
from bioimage_py.io.msr import open_msr
from bioimage_py.io.native import open_native_n5, open_native_zarr
from bioimage_py.io.nifti import open_nifti
from bioimage_py.io.registry import register_format
from bioimage_py.io.tiff import open_tiff

register_format("zarr", [".zarr", ".zr", ".zip"], open_native_zarr, writable=True, urls=True)
register_format("n5", [".n5"], open_native_n5, writable=True, urls=True)
register_format("hdf5", [".h5", ".hdf", ".hdf5"], open_native_hdf5, writable=True)
register_format("mrc", [".mrc", ".rec"], open_mrc)
register_format("nifti", [".nii", ".nii.gz"], open_nifti)
register_format("msr", [".msr", ".obf"], open_msr)
register_format("tif", [".tif", ".tiff"], open_tiff)
register_format("folder", [""], open_folder)
