"""Type stubs and API docs of the Rust extension `bioimage_py._core`.

The extension is the hot path: index normalization and blocking math (and, later, chunk I/O).
Everything here takes and returns plain Python / numpy objects.
"""

from typing import Any

# --- errors -------------------------------------------------------------------------------------

class IndexOutOfRangeError(IndexError, ValueError):
    """An integer index outside its axis. Both an IndexError (as in numpy) and a ValueError."""

# --- index normalization ------------------------------------------------------------------------

def normalize_index(
    index: Any, shape: tuple[int, ...]
) -> tuple[tuple[slice, ...], tuple[int, ...], bool]:
    """Normalize a numpy basic index for an array of ``shape``.

    Returns ``(roi, squeeze, scalar)``: one in-bounds ``slice(start, stop)`` per axis (step
    ``None``; empty regions have ``start == stop``), the axes selected by integers (to squeeze
    from reads and re-insert into written values), and whether numpy returns a scalar for this
    index (every axis integer-indexed and no ``...``).

    Raises:
        IndexOutOfRangeError: an integer outside ``[-size, size)``; message contains ``out of range``.
        ValueError: a slice step other than 1 or ``None``; two ellipses.
        TypeError: an entry that is not an int, numpy integer, slice or ``...`` (bools, floats,
            lists, arrays, ``None``, strings); more entries than axes.
    """

def slice_to_start_stop(s: slice, size: int) -> tuple[int, int]:
    """``(start, stop)`` of a step-1 slice on an axis of ``size``, clamped as numpy does."""

def int_to_start_stop(i: int, size: int) -> tuple[int, int]:
    """``(start, start + 1)`` for an integer index on an axis of ``size``; negatives wrap."""
