"""Optional reader libraries (tifffile, mrcfile, nibabel, imageio, ...): imported when a file of
their format is opened, failing with the package to install."""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["import_optional"]


def import_optional(module: str, *, format: str, install: str) -> ModuleType:
    """Import ``module``, or explain which package to install to open ``format`` files.

    Raises:
        ImportError: Naming the package (``install``) when ``module`` cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"Opening {format} files requires the Python package {module!r}, which is not "
            f"installed; install it with: {install}"
        ) from err
