"""The ``"folder"`` format: extension-less folders, read-only.

``open_folder(path, mode)`` returns a ``KnossosFile`` when the folder is a KNOSSOS dataset
(``magN`` subfolders holding cube folders; default ``internal_path`` ``"mag1"``), otherwise an
``ImageStackFolder`` whose arrays are selected by a glob pattern given as ``internal_path``
(e.g. ``"*.tif"``). Both present ``(z, y, x)`` arrays; see ``knossos`` and ``image_stack``.

bioimage-py 0.2 registered ``.tif``/``.tiff`` under this format too, so its specs of TIFF files
say ``format="folder"`` (``internal_path=""``): a TIFF file opens here as format ``"tif"`` would
open it, and another single image file (e.g. a PNG, which 0.2 opened the same way) as one
``ImageFile``.
"""
from __future__ import annotations

import os
from typing import Any

from bioimage_py.io.image_stack import IMAGE_EXTENSIONS, ImageFile, ImageStackFolder
from bioimage_py.io.knossos import KnossosFile, is_knossos_dataset
from bioimage_py.io.tiff import open_tiff

__all__ = ["open_folder"]


def open_folder(path: str, mode: str = "r", *, load_png: bool | None = None) -> Any:
    """The registry constructor of format ``"folder"``: a KNOSSOS dataset or an image-slice folder
    (or, for 0.2's specs, a TIFF or other image file).

    Args:
        path: the folder (or image file).
        mode: only ``"r"``.
        load_png: 0.2's KNOSSOS option (PNG or JPEG cubes); accepted so that 0.2's specs reopen,
            and not needed: the cube files are found by their extension.

    Raises:
        ValueError: ``mode`` is not ``"r"``, or ``path`` is neither a folder nor an image file.
    """
    if mode != "r":
        raise ValueError(f"Folder formats are read-only; open them with mode='r', not {mode!r}")
    if os.path.isfile(path):
        ext = os.path.splitext(path)[1].lower()
        if ext in (".tif", ".tiff"):
            return open_tiff(path, mode)
        if ext in IMAGE_EXTENSIONS:
            return ImageFile(path)
    if not os.path.isdir(path):
        raise ValueError(
            f"{path!r} is not a folder: the 'folder' format opens a KNOSSOS dataset or a folder "
            "of image slices"
        )
    if is_knossos_dataset(path):
        return KnossosFile(path)
    return ImageStackFolder(path)
