"""Block-wise processing: split an array (or a sub-region of it) into blocks.

A ``Blocking`` tiles ``roi_begin:roi_end`` (default: the whole array) with blocks of
``block_shape``, numbered in C order of their grid position; edge blocks are clipped to the
region. With a halo, each block has an outer region (read: grown by the halo, clipped to the
array), an inner region (written: no overlap between blocks) and the inner region relative to the
outer one (to crop results). Descriptors carry ``begin``/``end``/``shape`` coordinate lists; turn
one into slices with ``bioimage_py.util.to_roi``.

For parallel writers, ``blocks_align_with_chunks`` tells whether every chunk of an output is
written by one block only, and ``group_blocks_by_shards`` groups block ids so that every shard
is written by one group only. All of it is computed in Rust (``bioimage_py._core``).
"""
from __future__ import annotations

from bioimage_py._core import (
    Block,
    Blocking,
    BlockWithHalo,
    blocks_align_with_chunks,
    group_blocks_by_shards,
)

__all__ = [
    "Block",
    "BlockWithHalo",
    "Blocking",
    "blocks_align_with_chunks",
    "group_blocks_by_shards",
]
