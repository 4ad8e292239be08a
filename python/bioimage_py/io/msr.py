"""Imspector MSR / OBF files (``.msr``, ``.obf``): read-only, through ``msr-reader``.

An OBF file (the format of Abberior's Imspector ``.msr`` files) holds a list of *stacks*, each
an image or volume with a name (e.g. ``"Ch1 {2} STED"``) and its own dtype. ``open_msr(path,
mode)`` returns an ``MsrFile``, whose ``internal_path`` selects stacks as bioimage-py 0.2 did:

* ``"0"``, ``"1"``, ...: the stack of that index (``"-1"``: the last one, as Python indexes);
  a key that is an integer is always an index, even if a stack has that name;
* a stack's name: the first stack of that name;
* ``"data"``: every stack at once, stacked along a new first (channel) axis; all stacks must then
  have the same shape and dtype (0.2 failed on the first read otherwise). For a file of one
  stack it is that stack, without the channel axis, as in 0.2.

Without ``internal_path`` the first stack (``"0"``) opens, as in 0.2.

Axis order: as ``msr-reader`` gives a stack, the stored sizes reversed (C order, x fastest:
``(y, x)`` for an image, ``(z, y, x)`` for a volume), axes of size 1 dropped, and the samples of
an RGB stack last. Stacks are zlib-compressed or raw and cannot be read in parts: a stack is
decoded on the first read that touches it and kept by the array; ``chunks`` is ``None``.
"""
from __future__ import annotations

import struct
import threading
from typing import Any

import numpy as np

from bioimage_py.io.optional import import_optional
from bioimage_py.io.reader_array import ReaderArray

__all__ = ["ALL_STACKS", "DEFAULT_KEY", "MsrArray", "MsrFile", "open_msr"]

ALL_STACKS = "data"
"""The key selecting every stack, along a new first axis."""

DEFAULT_KEY = "0"
"""The stack opened without ``internal_path``: the first one, as in bioimage-py 0.2."""


def _obf_file(path: str) -> Any:
    """An open ``msr_reader.OBFFile`` (a context manager closing its file)."""
    msr_reader = import_optional("msr_reader", format="MSR", install="pip install msr-reader")
    return msr_reader.OBFFile(path)


class MsrArray(ReaderArray):
    """One stack of an OBF file, or several stacks of equal shape and dtype along a first axis.

    Args:
        path: the ``.msr`` file.
        indices: the stacks, by index; one index gives that stack's array, several a stack of
            them along a new first axis.
        names: the names of those stacks (for ``stack_names`` and messages).
        first: the decoded data of ``indices[0]`` (read by the opener to learn shape and dtype).
    """

    def __init__(self, path: str, indices: list[int], names: list[str], first: np.ndarray) -> None:
        self._path = path
        self._indices = list(indices)
        self._names = list(names)
        self._stacked = len(self._indices) > 1
        self._dtype = first.dtype.newbyteorder("=")
        self._stack_shape = tuple(int(s) for s in first.shape)
        self._shape = ((len(self._indices),) if self._stacked else ()) + self._stack_shape
        self._decoded: dict[int, np.ndarray] = {self._indices[0]: first}
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        return self._path

    @property
    def stack_indices(self) -> list[int]:
        """The indices of the stacks this array presents."""
        return list(self._indices)

    @property
    def stack_names(self) -> list[str]:
        """The names of the stacks this array presents."""
        return list(self._names)

    def _stack(self, index: int) -> np.ndarray:
        with self._lock:  # one decode per stack, also when threads read at once
            data = self._decoded.get(index)
            if data is None:
                with _obf_file(self._path) as obf:
                    data = np.asarray(obf.read_stack(index))
                if data.shape != self._stack_shape or data.dtype.newbyteorder("=") != self._dtype:
                    raise ValueError(
                        f"MSR stack {index} of {self._path!r} decoded to shape {data.shape} and "
                        f"dtype {data.dtype}, expected {self._stack_shape} and {self._dtype}"
                    )
                self._decoded[index] = data
        return data

    def _read(self, roi: tuple[slice, ...]) -> np.ndarray:
        if not self._stacked:
            return np.array(self._stack(self._indices[0])[roi], dtype=self._dtype)
        out = np.empty(tuple(s.stop - s.start for s in roi), dtype=self._dtype)
        if out.size:
            for i, index in enumerate(self._indices[roi[0]]):
                out[i] = self._stack(index)[roi[1:]]
        return out

    def close(self) -> None:
        """Drop the decoded stacks (the file is only open while a stack is decoded)."""
        with self._lock:
            self._decoded.clear()

    def __repr__(self) -> str:
        return (
            f"MsrArray({self._path!r}, stacks={self._names}, shape={self._shape}, "
            f"dtype={self._dtype})"
        )


class MsrFile:
    """An OBF / MSR file; ``file[key]`` is the ``MsrArray`` of the stacks ``key`` selects.

    ``keys()`` lists ``"0"``, ``"1"``, ... and ``"data"``; ``list_arrays()`` gives the default,
    ``["0"]``, so that ``open_source`` opens the first stack without ``internal_path``.
    """

    def __init__(self, path: str) -> None:
        try:
            obf = _obf_file(path)
        except (ValueError, struct.error) as err:  # msr-reader's errors for other files
            raise ValueError(f"{path!r} is not an OBF / MSR file: {err}") from None
        with obf:
            self._names = [str(name) for name in obf.stack_names]
            # (dtype flags, sizes): stacks with equal ones decode to equal dtypes and shapes.
            self._layouts = [(h.dtype, tuple(h.size)) for h in obf.stack_headers]
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    @property
    def stack_names(self) -> list[str]:
        """The names of the file's stacks, in file order."""
        return list(self._names)

    def keys(self) -> list[str]:
        return [str(i) for i in range(len(self._names))] + [ALL_STACKS]

    def list_arrays(self) -> list[str]:
        return [DEFAULT_KEY] if self._names else []

    def _describe(self) -> str:
        stacks = ", ".join(f"{i} ({name!r})" for i, name in enumerate(self._names)) or "none"
        return f"stacks: {stacks}; or {ALL_STACKS!r} for all of them"

    def _resolve(self, key: str) -> list[int]:
        """The stack indices ``key`` selects (0.2's rules: an integer first, then a name)."""
        n = len(self._names)
        if key == ALL_STACKS:
            if not n:
                raise ValueError(f"{self._path!r} holds no stacks")
            return list(range(n))
        try:
            index = int(key)
        except ValueError:
            if key in self._names:
                return [self._names.index(key)]
            raise ValueError(
                f"internal_path {key!r} is neither a stack index nor a stack name of "
                f"{self._path!r}; {self._describe()}"
            ) from None
        if not -n <= index < n:
            raise ValueError(
                f"internal_path {key!r}: stack index {index} is out of range for {self._path!r}, "
                f"which holds {n} stacks; {self._describe()}"
            )
        return [index % n]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        try:
            self._resolve(key.strip("/"))
        except ValueError:
            return False
        return True

    def __getitem__(self, key: str) -> MsrArray:
        if not isinstance(key, str):
            raise TypeError(f"an MSR key must be a str, got {key!r}")
        indices = self._resolve(key.strip("/"))
        different = [i for i in indices if self._layouts[i] != self._layouts[indices[0]]]
        if different:
            raise ValueError(
                f"internal_path {key!r} stacks every stack of {self._path!r}, but stack "
                f"{different[0]} ({self._names[different[0]]!r}) differs in shape or dtype from "
                f"stack {indices[0]} ({self._names[indices[0]]!r}); open the stacks one by one"
            )
        with _obf_file(self._path) as obf:
            first = np.asarray(obf.read_stack(indices[0]))
        return MsrArray(self._path, indices, [self._names[i] for i in indices], first)

    def close(self) -> None:
        """Nothing to release: the file is open only while headers or stacks are read."""

    def __enter__(self) -> MsrFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MsrFile({self._path!r}, stacks={self._names})"


def open_msr(path: str, mode: str = "r") -> MsrFile:
    """The registry constructor of format ``"msr"``: the OBF / MSR file at ``path``.

    Raises:
        ImportError: ``msr-reader`` is not installed (naming the package and the pip command).
        ValueError: ``mode`` is not ``"r"``, or the file is not an OBF file.
    """
    if mode != "r":
        raise ValueError(f"Format 'msr' is read-only; open it with mode='r', not {mode!r}")
    return MsrFile(path)
