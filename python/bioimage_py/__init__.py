"""bioimage_py: fast, serializable, array-like access to large ND microscopy volumes."""
from __future__ import annotations

__version__ = "0.1.0"
