"""A file holding exactly one array, presented as a container with one key (``"data"``).

MRC and NIfTI files hold one volume each; SPEC makes ``"data"`` their default ``internal_path``,
so they open as this container, which ``open_array`` treats like any other.
"""
from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_KEY", "SingleArrayFile"]

DEFAULT_KEY = "data"


class SingleArrayFile:
    """A container whose only member is ``array``, under ``DEFAULT_KEY``.

    ``array`` needs a ``path`` attribute and a ``close()`` method.
    """

    def __init__(self, array: Any) -> None:
        self._array = array

    def keys(self) -> list[str]:
        return [DEFAULT_KEY]

    def list_arrays(self) -> list[str]:
        return [DEFAULT_KEY]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.strip("/") == DEFAULT_KEY

    def __getitem__(self, key: str) -> Any:
        if key not in self:
            raise KeyError(key)
        return self._array

    def close(self) -> None:
        self._array.close()

    def __enter__(self) -> SingleArrayFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self._array).__name__}, path={self._array.path!r})"
