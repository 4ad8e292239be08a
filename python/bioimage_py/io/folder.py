"""The ``"folder"`` format: extension-less folders, read-only.

``open_folder(path, mode)`` returns a ``KnossosFile`` when the folder is a KNOSSOS dataset
(``magN`` subfolders holding cube folders; default ``internal_path`` ``"mag1"``), otherwise an
``ImageStackFolder`` whose arrays are selected by a glob pattern given as ``internal_path``
(e.g. ``"*.tif"``). Both present ``(z, y, x)`` arrays; see ``knossos`` and ``image_stack``.
"""
from __future__ import annotations

import os
from typing import Any

from bioimage_py.io.image_stack import ImageStackFolder
from bioimage_py.io.knossos import KnossosFile, is_knossos_dataset

__all__ = ["open_folder"]


def open_folder(path: str, mode: str = "r") -> Any:
    """The registry constructor of format ``"folder"``: a KNOSSOS dataset or an image-slice folder.

    Raises:
        ValueError: ``mode`` is not ``"r"``, or ``path`` is not a folder.
    """
    if mode != "r":
        raise ValueError(f"Folder formats are read-only; open them with mode='r', not {mode!r}")
    if not os.path.isdir(path):
        raise ValueError(
            f"{path!r} is not a folder: the 'folder' format opens a KNOSSOS dataset or a folder "
            "of image slices"
        )
    if is_knossos_dataset(path):
        return KnossosFile(path)
    return ImageStackFolder(path)
