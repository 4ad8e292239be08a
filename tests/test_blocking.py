"""Tests of ``bioimage_py.blocking`` and ``bioimage_py.util.to_roi``: numpy arrays and brute
force are the oracles for partitions, halos, region queries, chunk alignment and shard groups."""
from __future__ import annotations

import copy
import itertools
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioimage_py.blocking import (
    Block,
    Blocking,
    BlockWithHalo,
    blocks_align_with_chunks,
    group_blocks_by_shards,
)
from bioimage_py.util import to_roi


@st.composite
def blockings(draw: st.DrawFn, max_ndim: int = 3, max_size: int = 12) -> Blocking:
    """A blocking of a small array, optionally of a sub-region; sizes may be 0 or non-divisible."""
    ndim = draw(st.integers(1, max_ndim))
    shape = draw(st.lists(st.integers(0, max_size), min_size=ndim, max_size=ndim))
    block_shape = draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim))
    if not draw(st.booleans()):
        return Blocking(shape, block_shape)
    roi_begin = [draw(st.integers(0, s)) for s in shape]
    roi_end = [draw(st.integers(b, s)) for b, s in zip(roi_begin, shape)]
    return Blocking(shape, block_shape, roi_begin=roi_begin, roi_end=roi_end)


def roi_mask(blocking: Blocking) -> np.ndarray:
    mask = np.zeros(blocking.shape, dtype=bool)
    mask[tuple(slice(b, e) for b, e in zip(blocking.roi_begin, blocking.roi_end))] = True
    return mask


def intersects(block: Block, begin: list[int], end: list[int]) -> bool:
    return all(max(b, lo) < min(e, hi) for b, e, lo, hi in zip(block.begin, block.end, begin, end))


# --- the blocking itself ----------------------------------------------------------------------


def test_known_blocking() -> None:
    blocking = Blocking((10, 7), (4, 4))
    assert blocking.shape == (10, 7)
    assert blocking.block_shape == (4, 4)
    assert blocking.roi_begin == (0, 0)
    assert blocking.roi_end == (10, 7)
    assert blocking.blocks_per_axis == (3, 2)
    assert blocking.number_of_blocks == len(blocking) == 6
    block = blocking.get_block(5)
    assert (block.begin, block.end, block.shape) == ([8, 4], [10, 7], [2, 3])
    assert isinstance(block.begin, list)
    assert blocking.block_grid_position(5) == (2, 1)
    assert blocking.block_id([2, 1]) == 5
    assert repr(blocking) == (
        "Blocking(shape=(10, 7), block_shape=(4, 4), roi_begin=(0, 0), roi_end=(10, 7))"
    )
    assert repr(block) == "Block(begin=[8, 4], end=[10, 7])"


def test_sub_region() -> None:
    blocking = Blocking([10, 10], [4, 4], roi_begin=[3, 2], roi_end=[9, 10])
    assert blocking.blocks_per_axis == (2, 2)
    assert [b.begin for b in blocking] == [[3, 2], [3, 6], [7, 2], [7, 6]]
    assert [b.end for b in blocking] == [[7, 6], [7, 10], [9, 6], [9, 10]]
    # Only one corner given: the other defaults to the array's.
    assert Blocking([10], [4], roi_begin=[5]).roi_end == (10,)
    assert Blocking([10], [4], roi_end=[5]).roi_begin == (0,)


def test_accepts_tuples_numpy_integers_and_arrays() -> None:
    a = Blocking(np.array([10, 7]), (np.int64(4), np.uint8(4)), roi_begin=(np.int32(0), 0))
    assert a == Blocking([10, 7], [4, 4])
    assert a.get_block(np.int64(1)) == a.get_block(1)


def test_empty_and_zero_dimensional() -> None:
    empty = Blocking([5, 0], [2, 2])
    assert len(empty) == 0 and list(empty) == []
    assert empty.get_block_ids_in_region([0, 0], [5, 5]) == []
    assert group_blocks_by_shards(empty, [[2, 2]]) == []
    assert blocks_align_with_chunks(empty, [3, 3])
    scalar = Blocking([], [])
    assert len(scalar) == 1
    assert list(scalar) == [Block([], [])]
    assert to_roi(scalar.get_block(0)) == ()


@settings(max_examples=200, deadline=None)
@given(blockings(max_ndim=4, max_size=9))
def test_blocks_partition_the_roi(blocking: Blocking) -> None:
    count = np.zeros(blocking.shape, dtype=np.int64)
    blocks = list(blocking)
    assert len(blocks) == blocking.number_of_blocks == int(np.prod(blocking.blocks_per_axis))
    for block_id, block in enumerate(blocks):
        assert block == blocking.get_block(block_id)
        assert block.shape == [e - b for b, e in zip(block.begin, block.end)]
        assert all(0 < s <= bs for s, bs in zip(block.shape, blocking.block_shape))
        count[to_roi(block)] += 1
    np.testing.assert_array_equal(count, roi_mask(blocking).astype(np.int64))


@settings(max_examples=100, deadline=None)
@given(blockings())
def test_ids_round_trip_in_c_order(blocking: Blocking) -> None:
    positions = [blocking.block_grid_position(i) for i in range(len(blocking))]
    assert positions == list(itertools.product(*(range(n) for n in blocking.blocks_per_axis)))
    assert [blocking.block_id(p) for p in positions] == list(range(len(blocking)))


@settings(max_examples=100, deadline=None)
@given(blockings(), st.data())
def test_halo_blocks(blocking: Blocking, data: st.DataObject) -> None:
    ndim = len(blocking.shape)
    array = np.arange(int(np.prod(blocking.shape)), dtype=np.int64).reshape(blocking.shape)
    for block_id in range(len(blocking)):
        halo = data.draw(st.lists(st.integers(0, 15), min_size=ndim, max_size=ndim))
        with_halo = blocking.get_block_with_halo(block_id, halo)
        outer, inner = with_halo.outer_block, with_halo.inner_block
        local = with_halo.inner_block_local
        assert inner == blocking.get_block(block_id)
        assert outer.begin == [max(b - h, 0) for b, h in zip(inner.begin, halo)]
        assert outer.end == [min(e + h, s) for e, h, s in zip(inner.end, halo, blocking.shape)]
        assert local.shape == inner.shape
        # Cropping the outer region with the local block gives the inner region.
        np.testing.assert_array_equal(array[to_roi(outer)][to_roi(local)], array[to_roi(inner)])


def test_halo_example() -> None:
    blocking = Blocking([10, 10], [5, 5])
    with_halo = blocking.get_block_with_halo(3, [2, 20])
    assert with_halo == BlockWithHalo(
        Block([3, 0], [10, 10]), Block([5, 5], [10, 10]), Block([2, 5], [7, 10])
    )
    assert repr(with_halo) == (
        "BlockWithHalo(outer_block=Block(begin=[3, 0], end=[10, 10]), "
        "inner_block=Block(begin=[5, 5], end=[10, 10]), "
        "inner_block_local=Block(begin=[2, 5], end=[7, 10]))"
    )


@settings(max_examples=100, deadline=None)
@given(blockings(), st.data())
def test_region_query_equals_brute_force(blocking: Blocking, data: st.DataObject) -> None:
    ndim = len(blocking.shape)
    begin = data.draw(st.lists(st.integers(0, 14), min_size=ndim, max_size=ndim))
    end = data.draw(st.lists(st.integers(0, 15), min_size=ndim, max_size=ndim))
    expected = [i for i, block in enumerate(blocking) if intersects(block, begin, end)]
    assert blocking.get_block_ids_in_region(begin, end) == expected
    everything = blocking.get_block_ids_in_region([0] * ndim, list(blocking.shape))
    assert everything == list(range(len(blocking)))


# --- planning parallel writes -----------------------------------------------------------------


def grid_region(block: Block, grid: list[int]) -> tuple[slice, ...]:
    """The cells (chunks or shards) of shape ``grid`` that ``block`` touches, as slices."""
    return tuple(
        slice(b // g, (e - 1) // g + 1) for b, e, g in zip(block.begin, block.end, grid)
    )


def chunk_writers(blocking: Blocking, chunks: list[int]) -> np.ndarray:
    """How many blocks write to each chunk of an output of the blocking's shape."""
    grid = [-(-s // c) for s, c in zip(blocking.shape, chunks)]
    writers = np.zeros(grid, dtype=np.int64)
    for block in blocking:
        writers[grid_region(block, chunks)] += 1
    return writers


@settings(max_examples=300, deadline=None)
@given(blockings(), st.data())
def test_alignment_equals_brute_force(blocking: Blocking, data: st.DataObject) -> None:
    ndim = len(blocking.shape)
    chunks = data.draw(st.lists(st.integers(1, 6), min_size=ndim, max_size=ndim))
    expected = bool((chunk_writers(blocking, chunks) <= 1).all())
    assert blocks_align_with_chunks(blocking, chunks) is expected


def test_alignment_examples() -> None:
    assert blocks_align_with_chunks(Blocking([100, 100], [64, 64]), [32, 32])
    assert blocks_align_with_chunks(Blocking([100, 100], [64, 64]), [64, 64])
    assert not blocks_align_with_chunks(Blocking([100, 100], [64, 64]), [48, 64])
    # Edge blocks are fine, and so is a single block along an axis.
    assert blocks_align_with_chunks(Blocking([100], [30]), [10])
    assert blocks_align_with_chunks(Blocking([100], [100]), [7])
    # The roi shifts the internal boundaries.
    assert not blocks_align_with_chunks(Blocking([100], [20], roi_begin=[5]), [20])
    assert blocks_align_with_chunks(Blocking([100], [20], roi_begin=[20]), [10])


def brute_force_groups(blocking: Blocking, shard_shapes: list[list[int]]) -> list[list[int]]:
    """Union-find over blocks that touch a common shard of any output."""
    parent = list(range(len(blocking)))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for shard_shape in shard_shapes:
        first_writer: dict[tuple[int, ...], int] = {}
        for block_id, block in enumerate(blocking):
            cells = grid_region(block, shard_shape)
            for shard in itertools.product(*(range(c.start, c.stop) for c in cells)):
                a, b = find(first_writer.setdefault(shard, block_id)), find(block_id)
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for block_id in range(len(blocking)):
        groups.setdefault(find(block_id), []).append(block_id)
    return sorted(groups.values())


@settings(max_examples=200, deadline=None)
@given(blockings(), st.data())
def test_shard_groups_equal_brute_force(blocking: Blocking, data: st.DataObject) -> None:
    ndim = len(blocking.shape)
    shard_shapes = data.draw(
        st.lists(st.lists(st.integers(1, 8), min_size=ndim, max_size=ndim), max_size=3)
    )
    groups = group_blocks_by_shards(blocking, shard_shapes)
    assert groups == brute_force_groups(blocking, shard_shapes)
    assert sorted(itertools.chain.from_iterable(groups)) == list(range(len(blocking)))
    # Each shard of each output is written by exactly one group.
    for shard_shape in shard_shapes:
        owner = np.full([-(-s // c) for s, c in zip(blocking.shape, shard_shape)], -1)
        for g, group in enumerate(groups):
            for block_id in group:
                block = blocking.get_block(block_id)
                region = grid_region(block, shard_shape)
                assert set(np.unique(owner[region])) <= {-1, g}
                owner[region] = g


def test_shard_group_examples() -> None:
    blocking = Blocking([12], [3])
    assert group_blocks_by_shards(blocking, []) == [[0], [1], [2], [3]]
    assert group_blocks_by_shards(blocking, [[6]]) == [[0, 1], [2, 3]]
    assert group_blocks_by_shards(blocking, [[4]]) == [[0, 1, 2, 3]]
    # Two outputs: groups must satisfy both.
    two_outputs = group_blocks_by_shards(Blocking([24], [3]), [[6], [12]])
    assert two_outputs == [[0, 1, 2, 3], [4, 5, 6, 7]]
    blocking = Blocking([4, 4], [2, 2])
    assert group_blocks_by_shards(blocking, [[4, 2]]) == [[0, 2], [1, 3]]


# --- Python protocol: equality, hashing, pickling ---------------------------------------------


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip(protocol: int) -> None:
    blocking = Blocking([10, 20], [3, 7], roi_begin=[1, 2], roi_end=[9, 20])
    with_halo = blocking.get_block_with_halo(4, [2, 2])
    for obj in (blocking, blocking.get_block(3), with_halo):
        clone = pickle.loads(pickle.dumps(obj, protocol=protocol))
        assert clone == obj and type(clone) is type(obj)
        assert hash(clone) == hash(obj)
        assert copy.deepcopy(obj) == obj
    assert list(pickle.loads(pickle.dumps(blocking, protocol=protocol))) == list(blocking)


def test_module_names_and_equality() -> None:
    for cls in (Blocking, Block, BlockWithHalo):
        assert cls.__module__ == "bioimage_py.blocking"
    assert Blocking([10], [4]) == Blocking([10], [4], roi_begin=[0], roi_end=[10])
    assert Blocking([10], [4]) != Blocking([10], [5])
    assert Blocking([10], [4]) != Blocking([10], [4], roi_begin=[1])
    assert Block([0], [2]) != [0, 2]
    assert len({Block([0], [2]), Block([0], [2]), Block([0], [3])}) == 2
    blocking = Blocking([10], [4])
    iterator = iter(blocking)
    assert iterator.__length_hint__() == 3
    next(iterator)
    assert iterator.__length_hint__() == 2
    assert len(list(iterator)) == 2


def test_to_roi_crops_arrays() -> None:
    array = np.arange(10 * 7).reshape(10, 7)
    blocking = Blocking(array.shape, (4, 4))
    block = blocking.get_block(4)
    assert to_roi(block) == (slice(8, 10), slice(0, 4))
    np.testing.assert_array_equal(array[to_roi(block)], array[8:10, 0:4])
    out = np.zeros_like(array)
    for block in blocking:
        out[to_roi(block)] = array[to_roi(block)]
    np.testing.assert_array_equal(out, array)

    class Region:  # any object with begin/end works
        begin = (1, 2)
        end = (3, 5)

    assert to_roi(Region()) == (slice(1, 3), slice(2, 5))
    Region.end = (3,)
    with pytest.raises(ValueError, match="different numbers of axes"):
        to_roi(Region())


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (([10, 10], [4, 0]), {}, r"block_shape entries must be positive, got \[4, 0\]"),
        (([10, 10], [4, -1]), {}, r"block_shape entries must not be negative, got \[4, -1\]"),
        (([10, -3], [4, 4]), {}, r"shape entries must not be negative, got \[10, -3\]"),
        (([10, 10], [4]), {}, r"block_shape \[4\] has 1 entries but shape \[10, 10\] has 2"),
        (([10], [4]), {"roi_begin": [0, 0]}, r"roi_begin \[0, 0\]"),
        (([10], [4]), {"roi_end": [11]}, r"roi_end \[11\] exceeds shape \[10\]"),
        (([10], [4]), {"roi_begin": [6], "roi_end": [5]}, r"roi_begin \[6\] exceeds roi_end \[5\]"),
        (([2**40, 2**40], [1, 1]), {}, r"more than 2\*\*64 blocks"),
    ],
)
def test_constructor_errors(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Blocking(*args, **kwargs)


def test_method_errors() -> None:
    blocking = Blocking([10, 10], [4, 4])
    for bad_id in (9, -1):
        message = rf"block id {bad_id} is out of range for a blocking of 9 blocks"
        with pytest.raises(ValueError, match=message):
            blocking.get_block(bad_id)
        with pytest.raises(ValueError, match=rf"block id {bad_id}"):
            blocking.get_block_with_halo(bad_id, [1, 1])
        with pytest.raises(ValueError, match=rf"block id {bad_id}"):
            blocking.block_grid_position(bad_id)
    with pytest.raises(OverflowError):
        blocking.get_block(2**70)
    message = r"grid position \[0, 3\] is outside the block grid \[3, 3\] on axis 1"
    with pytest.raises(ValueError, match=message):
        blocking.block_id([0, 3])
    with pytest.raises(ValueError, match=r"grid position entries must not be negative"):
        blocking.block_id([0, -1])
    with pytest.raises(ValueError, match=r"halo \[1\] has 1 entries"):
        blocking.get_block_with_halo(0, [1])
    with pytest.raises(ValueError, match=r"halo entries must not be negative, got \[1, -2\]"):
        blocking.get_block_with_halo(0, [1, -2])
    with pytest.raises(ValueError, match=r"region end \[1\]"):
        blocking.get_block_ids_in_region([0, 0], [1])
    with pytest.raises(ValueError, match=r"chunks entries must be positive, got \[0, 4\]"):
        blocks_align_with_chunks(blocking, [0, 4])
    with pytest.raises(ValueError, match=r"shard shape \[4, 4, 4\]"):
        group_blocks_by_shards(blocking, [[4, 4], [4, 4, 4]])
    with pytest.raises(ValueError, match=r"begin \[3\] exceeds end \[2\]"):
        Block([3], [2])
    with pytest.raises(TypeError):
        Blocking("ab", [1])
    with pytest.raises(TypeError):
        blocks_align_with_chunks("not a blocking", [1])  # type: ignore[arg-type]


# --- what 0.2 users call on bioimage-cpp's Blocking (util.get_blocking returns ours) ------------


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 23), min_size=1, max_size=3),
    data=st.data(),
)
def test_the_methods_of_bioimage_cpps_blocking_give_its_results(shape, data):
    bic = pytest.importorskip("bioimage_cpp")
    ndim = len(shape)
    block_shape = data.draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim))
    ours = Blocking(shape, block_shape)
    theirs = bic.utils.Blocking([0] * ndim, shape, block_shape)
    assert ours.ndim == theirs.ndim == ours.get_block(0).ndim
    voxel = [data.draw(st.integers(0, n - 1)) for n in shape]
    assert ours.coordinates_to_block_id(voxel) == theirs.coordinates_to_block_id(voxel)
    begin = [data.draw(st.integers(0, n)) for n in shape]
    end = [data.draw(st.integers(b, n + 3)) for b, n in zip(begin, shape)]
    assert ours.get_block_ids_in_bounding_box(begin, end) == list(
        theirs.get_block_ids_in_bounding_box(begin, end))
    if all(b < e for b, e in zip(begin, end)):
        assert ours.get_block_ids_overlapping_bounding_box(begin, end) == list(
            theirs.get_block_ids_overlapping_bounding_box(begin, end))
    block_id = data.draw(st.integers(0, ours.number_of_blocks - 1))
    for axis in range(ndim):
        for lower in (False, True):
            assert ours.get_neighbor_id(block_id, axis, lower) == theirs.get_neighbor_id(
                block_id, axis, lower)
    halo_begin = data.draw(st.lists(st.integers(0, 5), min_size=ndim, max_size=ndim))
    halo_end = data.draw(st.lists(st.integers(0, 5), min_size=ndim, max_size=ndim))
    for a, b in [(ours.get_block_with_halo(block_id, halo_begin, halo_end),
                  theirs.get_block_with_halo(block_id, halo_begin, halo_end)),
                 (ours.add_halo(ours.get_block(block_id), halo_begin, halo_end),
                  theirs.add_halo(theirs.get_block(block_id), halo_begin, halo_end))]:
        for name in ("outer_block", "inner_block", "inner_block_local"):
            assert list(getattr(a, name).begin) == list(getattr(b, name).begin)
            assert list(getattr(a, name).end) == list(getattr(b, name).end)
