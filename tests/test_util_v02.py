"""``bioimage_py.util``'s 0.2 helpers give bioimage-py 0.2's results.

The expected values were recorded by running 0.2's ``bioimage_py.util`` (``/work/v02``) on the
same arguments; ``group_blocks_by_shard`` is also checked, for random blockings, against a
pairwise definition of its groups.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioimage_py.blocking import Blocking
from bioimage_py.util import (
    derive_block_shape,
    downscale_shape,
    full_roi,
    get_blocking,
    group_blocks_by_shard,
    normalize_halo,
    sigma_to_halo,
)


def test_full_roi():
    assert full_roi(3) == (slice(None),) * 3
    assert full_roi(0) == ()
    data = np.arange(24).reshape(2, 3, 4)
    assert np.array_equal(data[full_roi(3)], data)


@pytest.mark.parametrize(
    ("halo", "ndim", "expected"),
    [(2, 3, [2, 2, 2]), ([1, 2], 2, [1, 2]), (np.int64(2), 2, [2, 2]), ((1.5, 2), 2, [1, 2]),
     (np.array([1, 2]), 2, [1, 2]), (True, 2, [1, 1])],
)
def test_normalize_halo_as_v02(halo, ndim, expected):
    result = normalize_halo(halo, ndim)
    assert result == expected and all(type(h) is int for h in result)


def test_normalize_halo_errors_as_v02():
    with pytest.raises(ValueError, match=r"Halo \[1, 2\] does not match ndim 3\."):
        normalize_halo([1, 2], 3)
    with pytest.raises(TypeError):
        normalize_halo(2.0, 2)


@pytest.mark.parametrize(
    ("sigma", "order", "expected"),
    [(1.0, 0, 8), (2, 1, 14), ([1.0, 2.5], 2, [10, 18]), (np.float32(1.5), 0, 10),
     (np.array([1.0, 2.0]), 0, [8, 14]), ((0.5,), 0, [4])],
)
def test_sigma_to_halo_as_v02(sigma, order, expected):
    assert sigma_to_halo(sigma, order) == expected


@pytest.mark.parametrize(
    ("shape", "factor", "ceil_mode", "expected"),
    [((10, 11), 2, True, (5, 6)), ((10, 11), (2, 3), True, (5, 4)),
     ((10, 11), (2, 3), False, (5, 3)), ((10, 11), np.int64(3), True, (4, 4)),
     ((10, 11), (1.5, 2), True, (10, 6)), ([np.int64(10)], [np.int32(3)], True, (4,))],
)
def test_downscale_shape_as_v02(shape, factor, ceil_mode, expected):
    result = downscale_shape(shape, factor, ceil_mode)
    assert result == expected and all(type(s) is int for s in result)


def test_downscale_shape_errors():
    with pytest.raises(ValueError, match=r"scale_factor \(2, 3, 4\) does not match the "
                                         r"dimensionality 2\."):
        downscale_shape((10, 11), (2, 3, 4))
    # 0.2 divided by zero (ZeroDivisionError) or returned negative sizes here.
    for factor in (0, -2, (2, 0)):
        with pytest.raises(ValueError, match=r"scale_factor must be >= 1 on every axis"):
            downscale_shape((10, 11), factor)


class _Chunked:
    def __init__(self, chunks):
        self.chunks = chunks
        self.shape = (10, 10)


def test_derive_block_shape_as_v02():
    assert derive_block_shape(_Chunked((2, 3)), None) == (2, 3)
    assert derive_block_shape(_Chunked((2, 3)), [4, 5]) == (4, 5)
    assert derive_block_shape(_Chunked(None), (np.int64(4), 5.7)) == (4, 5)
    with pytest.raises(ValueError, match="block_shape is required for block-wise processing of "
                                         "an unchunked array"):
        derive_block_shape(_Chunked(None), None)


def test_get_blocking_is_our_blocking_with_v02_blocks():
    blocking = get_blocking((10, 20), (4, 8))
    assert isinstance(blocking, Blocking)
    assert blocking == Blocking((10, 20), (4, 8))
    assert (blocking.number_of_blocks, list(blocking.roi_begin), list(blocking.roi_end)) == \
        (9, [0, 0], [10, 20])
    in_roi = get_blocking((10, 20), (4, 8), (slice(2, 9), slice(None)))
    assert (list(in_roi.roi_begin), list(in_roi.roi_end), in_roi.number_of_blocks) == \
        ([2, 0], [9, 20], 6)
    # As 0.2 (bioimage_cpp's Blocking): blocks tile the roi from its start.
    assert [(b.begin, b.end) for b in map(in_roi.get_block, range(6))] == [
        ([2, 0], [6, 8]), ([2, 8], [6, 16]), ([2, 16], [6, 20]),
        ([6, 0], [9, 8]), ([6, 8], [9, 16]), ([6, 16], [9, 20]),
    ]
    # A stop past the array is clipped to it (0.2 tiled the space beyond the array).
    clipped = get_blocking((10, 20), (4, 8), (slice(2, 30), slice(None, 5)))
    assert (list(clipped.roi_end), clipped.number_of_blocks) == ([10, 5], 2)
    assert get_blocking((0, 20), (4, 8)).number_of_blocks == 0


@pytest.mark.parametrize(
    ("args", "match"),
    [(((10, 20), (4, 8), (slice(2, 9),)), "roi"),
     (((10, 20), (4, 8, 2)), "block_shape"),
     (((10, 20), (0, 8)), "positive"),
     (((10, 20), (4, 8), (slice(-3, None), slice(None))), r"slice\(-3, None, None\)"),
     (((10, 20), (4, 8), (slice(5, 2), slice(None))), r"slice\(5, 2, None\)"),
     (((10, 20), (4, 8), (slice(0, 8, 2), slice(None))), "step")],
)
def test_get_blocking_errors(args, match):
    with pytest.raises(ValueError, match=match):
        get_blocking(*args)


class _Output:
    def __init__(self, shards):
        self.shards = shards


# (shape, block_shape, roi, shard shapes of the outputs, block_ids or None for all) -> 0.2's groups
V02_GROUPS = [
    (((10, 20), (4, 8), None, [(8, 16)], None), [[0, 1, 3, 4], [2, 5], [6, 7], [8]]),
    (((10, 20), (4, 8), None, [(8, 16)], [0, 2, 4, 8]), [[0, 4], [2], [8]]),
    (((10, 20), (4, 8), None, [(8, 16)], [4, 0, 1]), [[0, 1, 4]]),
    (((10, 20), (4, 8), None, [(5, 10)], None), [list(range(9))]),
    (((10, 20), (4, 8), None, [None, (3, 8, 16)], None), [[0, 1, 3, 4], [2, 5], [6, 7], [8]]),
    (((10, 20), (4, 8), None, [None], None), None),
    (((10, 20), (4, 8), None, [(8, 16)], []), []),
    (((30, 30, 30), (10, 10, 10), None, [(20, 15, 30), (10, 10, 25)], None),
     [list(range(18)), list(range(18, 27))]),
    (((30, 30, 30), (10, 10, 10), None, [(20, 15, 30)], [0, 2, 6, 8, 13, 26]),
     [[0, 2, 6, 8, 13], [26]]),
    (((20, 20), (6, 6), (slice(3, 17), slice(1, 20)), [(8, 8)], None), [list(range(12))]),
    (((10, 20), (4, 8), None, [(8, 16)], [1, 1, 3]), [[1, 1, 3]]),
]


@pytest.mark.parametrize(("args", "expected"), V02_GROUPS)
def test_group_blocks_by_shard_as_v02(args, expected):
    shape, block_shape, roi, shards, block_ids = args
    blocking = get_blocking(shape, block_shape, roi)
    if block_ids is None:
        block_ids = range(blocking.number_of_blocks)
    outputs = [_Output(s) for s in shards]
    assert group_blocks_by_shard(blocking, outputs, block_ids) == expected


def _pairwise_groups(blocking, shard_shapes, ids):
    """Connected components of "both blocks touch one shard", by comparing every pair."""
    def cells(block_id, shard):
        block = blocking.get_block(block_id)
        ranges = [range(b // s, -(-e // s)) for b, e, s in zip(block.begin, block.end, shard)]
        return set(itertools.product(*ranges))

    touching = {
        (a, b)
        for a, b in itertools.combinations(range(len(ids)), 2)
        for shard in shard_shapes
        if cells(ids[a], shard) & cells(ids[b], shard)
    }
    label = list(range(len(ids)))
    changed = True
    while changed:
        changed = False
        for a, b in touching:
            low = min(label[a], label[b])
            if label[a] != low or label[b] != low:
                label[a] = label[b] = low
                changed = True
    groups: dict[int, list[int]] = {}
    for pos, block_id in enumerate(ids):
        groups.setdefault(label[pos], []).append(block_id)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_group_blocks_by_shard_are_the_components_of_shared_shards(data):
    ndim = data.draw(st.integers(1, 3))
    shape = data.draw(st.tuples(*[st.integers(1, 24)] * ndim))
    block_shape = data.draw(st.tuples(*[st.integers(1, 9)] * ndim))
    shards = data.draw(st.lists(st.tuples(*[st.integers(1, 12)] * ndim), min_size=1, max_size=2))
    blocking = get_blocking(shape, block_shape)
    all_ids = list(range(blocking.number_of_blocks))
    ids = data.draw(st.one_of(st.just(all_ids),
                              st.lists(st.sampled_from(all_ids), unique=True, max_size=12)))
    groups = group_blocks_by_shard(blocking, [_Output(s) for s in shards], ids)
    assert groups == _pairwise_groups(blocking, shards, ids)
