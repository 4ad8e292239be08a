"""Exception classes of bioimage_py. Each also inherits the builtin users already catch."""
from __future__ import annotations

from bioimage_py._core import IndexOutOfRangeError

__all__ = ["IndexOutOfRangeError"]
