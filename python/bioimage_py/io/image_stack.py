"""Folders of 2D image slices, selected by a glob pattern: read-only and lazy.

``ImageStackFolder(folder)`` is the container the ``"folder"`` format returns for a folder that is
not a KNOSSOS dataset. Its keys are glob patterns relative to the folder, given as
``internal_path`` (e.g. ``"*.tif"``, ``"*.png"``, ``"slices/img_*.png"``); ``folder[pattern]`` is
an ``ImageStack`` of the matching files. Without ``internal_path``, the folder's default is the
one ``"*.<ext>"`` pattern of the image files it holds; a folder with several image extensions
needs ``internal_path`` (``list_arrays()`` lists the candidate patterns).

Files are sorted naturally by name (``img_2`` before ``img_10``). TIFF slices are read with
``tifffile``, anything else with ``imageio``; only headers are read when the stack is opened
(shape and dtype of every slice are checked then), and a region read decodes only the slices it
touches.

Damaged files: a slice whose header cannot be read (or, for TIFF, describes more data than the
file holds) raises ``ValueError`` naming it when the stack is opened; a slice that cannot be
read or decoded later (it shrank or was replaced) raises ``OSError`` naming it.

Axis order: ``(z, y, x)`` with z the slice index (slice index first), y the image rows and x the
columns; multi-channel slices (RGB) add the channel as the last axis. ``chunks`` is one slice,
``(1, y, x)``.
"""
from __future__ import annotations

import glob
import os
import re
import threading
from typing import Any

import numpy as np

from bioimage_py.io.optional import import_optional
from bioimage_py.io.reader_array import ReaderArray
from bioimage_py.io.tiff import check_series_in_file

__all__ = ["IMAGE_EXTENSIONS", "ImageFile", "ImageStack", "ImageStackFolder", "natural_key"]

_TIFF_EXTENSIONS = (".tif", ".tiff")
_IMAGE_EXTENSIONS = (*_TIFF_EXTENSIONS, ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
IMAGE_EXTENSIONS = _IMAGE_EXTENSIONS
"""The extensions of the image files a folder's slices (or a single image file) may have."""


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key putting ``img_2`` before ``img_10`` (digit runs compare as numbers)."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part.lower())
        for part in re.split(r"(\d+)", name)
        if part
    )


def _is_tiff(path: str) -> bool:
    return path.lower().endswith(_TIFF_EXTENSIONS)


def _tifffile() -> Any:
    return import_optional("tifffile", format="TIFF", install="pip install tifffile")


def _imageio() -> Any:
    return import_optional("imageio.v3", format="image slice", install="pip install imageio")


def slice_header(path: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the image at ``path``, from its header where the reader allows it.

    Raises:
        ValueError: The file is not a readable image, or (TIFF) its header describes more data
            than the file holds; naming the file.
    """
    try:
        if _is_tiff(path):
            with _tifffile().TiffFile(path) as tif:
                series = tif.series[0]
                check_series_in_file(tif, series, path)
                return tuple(int(s) for s in series.shape), np.dtype(series.dtype).newbyteorder("=")
        props = _imageio().improps(path)
        return tuple(int(s) for s in props.shape), np.dtype(props.dtype)
    except (MemoryError, ImportError, FileNotFoundError, PermissionError):
        raise
    except ValueError as err:
        if path in str(err):
            raise
        raise ValueError(f"{path!r} is not a readable image: {err}") from None
    except Exception as err:  # the image libraries' errors for damaged files differ per format
        raise ValueError(
            f"{path!r} is not a readable image ({type(err).__name__}: {err})"
        ) from None


def read_slice(path: str) -> np.ndarray:
    """The image at ``path`` as a numpy array (TIFF: ``tifffile``, else ``imageio``).

    Raises:
        OSError: The file cannot be read or decoded (it shrank or was damaged after the stack was
            opened), naming it.
    """
    try:
        if _is_tiff(path):
            return np.asarray(_tifffile().imread(path))
        return np.asarray(_imageio().imread(path))
    except (MemoryError, ImportError):
        raise
    except Exception as err:  # the image libraries' errors for damaged files differ per format
        if isinstance(err, OSError) and path in str(err):
            raise
        raise OSError(
            f"could not read the image {path!r} ({type(err).__name__}: {err}); the file may be "
            "truncated or corrupt"
        ) from err


class ImageFile(ReaderArray):
    """One (non-TIFF) image file, e.g. a PNG, as a read-only array of the image's shape.

    bioimage-py 0.2 opened such a file with format ``"folder"`` and ``internal_path=""``; this
    reopens those specs. The file is decoded on the first read and kept (image formats cannot be
    read in parts); shape and dtype come from its header.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._shape, self._dtype = slice_header(path)
        self._image: np.ndarray | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        return self._path

    def _read(self, roi: tuple[slice, ...]) -> np.ndarray:
        with self._lock:
            if self._image is None:
                image = read_slice(self._path)
                if image.shape != self._shape:
                    raise ValueError(
                        f"Image {self._path!r} decoded to shape {image.shape}, its header says "
                        f"{self._shape}"
                    )
                self._image = np.asarray(image, dtype=self._dtype)
        return self._image[roi].copy()

    def close(self) -> None:
        self._image = None

    def __repr__(self) -> str:
        return f"ImageFile({self._path!r}, shape={self._shape}, dtype={self._dtype})"


class ImageStack(ReaderArray):
    """A stack of 2D images (one file per slice) as a read-only ``(z, y, x)`` array.

    Args:
        files: The slice files, in stack order.
        description: Names the stack in error messages (e.g. the folder and pattern).

    Raises:
        ValueError: No files, or a file whose shape or dtype differs from the first one's (naming
            the file).
    """

    def __init__(self, files: list[str], description: str = "") -> None:
        if not files:
            raise ValueError(f"No image files in {description or 'the stack'}")
        self._files = list(files)
        self._description = description
        slice_shape, dtype = slice_header(self._files[0])
        for path in self._files[1:]:
            other_shape, other_dtype = slice_header(path)
            if other_shape != slice_shape or other_dtype != dtype:
                raise ValueError(
                    f"Image slice {path!r} has shape {other_shape} and dtype {other_dtype}, but "
                    f"{self._files[0]!r} (the first slice) has shape {slice_shape} and dtype "
                    f"{dtype}; all slices of a stack must match"
                )
        self._slice_shape = slice_shape
        self._shape = (len(self._files), *slice_shape)
        self._dtype = dtype

    @property
    def files(self) -> list[str]:
        """The slice files, in stack order (a copy)."""
        return list(self._files)

    @property
    def chunks(self) -> tuple[int, ...]:
        """One slice: ``(1, y, x)``."""
        return (1, *self._slice_shape)

    def _read(self, roi: tuple[slice, ...]) -> np.ndarray:
        out = np.empty(tuple(s.stop - s.start for s in roi), dtype=self._dtype)
        if out.size == 0:
            return out
        for i, z in enumerate(range(roi[0].start, roi[0].stop)):
            path = self._files[z]
            data = read_slice(path)
            if data.shape != self._slice_shape or data.dtype != self._dtype:
                raise ValueError(
                    f"Image slice {path!r} decoded to shape {data.shape} and dtype {data.dtype}, "
                    f"expected {self._slice_shape} and {self._dtype}"
                )
            out[i] = data[roi[1:]]
        return out

    def __repr__(self) -> str:
        return f"ImageStack({self._description}, shape={self.shape}, dtype={self._dtype})"


class ImageStackFolder:
    """A folder of image slices; ``folder[pattern]`` is the ``ImageStack`` of the matching files."""

    def __init__(self, path: str) -> None:
        if not os.path.isdir(path):
            raise ValueError(f"{path!r} is not a folder; a folder of image slices is expected")
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    def list_arrays(self) -> list[str]:
        """The ``"*.<ext>"`` patterns of the image files in the folder (the default candidates)."""
        exts = set()
        for entry in os.scandir(self._path):
            ext = os.path.splitext(entry.name)[1]
            if ext.lower() in _IMAGE_EXTENSIONS and entry.is_file():
                exts.add(ext)
        return sorted(f"*{ext}" for ext in exts)

    def keys(self) -> list[str]:
        return self.list_arrays()

    def __getitem__(self, pattern: str) -> ImageStack:
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(
                f"A folder of image slices needs a glob pattern as internal_path (e.g. '*.tif'), "
                f"got {pattern!r}; patterns found: {self.list_arrays() or 'none'}"
            )
        files = [
            f for f in glob.glob(os.path.join(glob.escape(self._path), pattern)) if os.path.isfile(f)
        ]
        if not files:
            raise ValueError(
                f"The glob pattern {pattern!r} (internal_path) matches no files in "
                f"{self._path!r}; image files found: {self.list_arrays() or 'none'}"
            )
        files.sort(key=lambda f: natural_key(os.path.relpath(f, self._path)))
        return ImageStack(files, description=f"{self._path!r} / {pattern!r}")

    def close(self) -> None:
        pass

    def __enter__(self) -> ImageStackFolder:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"ImageStackFolder({self._path!r})"
