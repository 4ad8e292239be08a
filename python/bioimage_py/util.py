"""Small helpers shared across bioimage_py."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class BlockLike(Protocol):
    """Anything with ``begin`` and ``end`` coordinate sequences, e.g. a ``Block``."""

    @property
    def begin(self) -> Sequence[int]: ...

    @property
    def end(self) -> Sequence[int]: ...


def to_roi(block: BlockLike) -> tuple[slice, ...]:
    """The region of ``block`` as a tuple of slices, one ``slice(begin, end)`` per axis.

    Use it to index an array or a source with a block descriptor, e.g. ``array[to_roi(block)]``
    or, with a halo, ``result[to_roi(block.inner_block_local)]``.

    Raises:
        ValueError: ``begin`` and ``end`` have different lengths.
    """
    begin, end = block.begin, block.end
    if len(begin) != len(end):
        raise ValueError(
            f"begin {list(begin)} and end {list(end)} have different numbers of axes"
        )
    return tuple(slice(int(b), int(e)) for b, e in zip(begin, end))
