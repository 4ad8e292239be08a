"""A test-only read-only format, ``"faulty"``: a zarr array whose read of one block fails.

Registered on import. Workers import this module themselves (``copy`` ships the modules of
custom formats' constructors), so a spec reopened in a worker process is faulty there too.
The fault fires once: it removes the ``marker`` file first, so a rerun reads normally.

    open_source(path, format="faulty", fail_at=[z, y, x], marker=str(path_to_marker),
                fault="kill" | "raise")
"""
from __future__ import annotations

import os
import signal
from typing import Any

from bioimage_py.io import register_format
from bioimage_py.io.native import open_native_zarr


class FaultyArray:
    """A read-only array over a native zarr array; reading a region that starts at ``fail_at``
    while ``marker`` exists kills this process (``fault="kill"``) or raises ``OSError``."""

    def __init__(self, array: Any, fail_at: list[int], marker: str, fault: str) -> None:
        self._array, self._fail_at, self._marker, self._fault = array, fail_at, marker, fault
        self.shape, self.dtype, self.chunks = array.shape, array.dtype, array.chunks

    def __getitem__(self, roi: Any) -> Any:
        starts = [s.start for s in roi] if isinstance(roi, tuple) else None
        if starts == list(self._fail_at) and os.path.exists(self._marker):
            os.remove(self._marker)
            if self._fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise OSError(f"injected read failure at {starts}")
        return self._array[roi]


def open_faulty(path: str, mode: str, *, fail_at: list[int], marker: str,
                fault: str = "kill") -> FaultyArray:
    return FaultyArray(open_native_zarr(path, "r"), fail_at, marker, fault)


register_format("faulty", [".faulty"], open_faulty)
