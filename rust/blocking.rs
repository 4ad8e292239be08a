//! Block-wise processing math. A [`Blocking`] tiles an array (or a sub-region of it, the roi)
//! with blocks of a fixed shape, starting at the roi's first corner; edge blocks are clipped to
//! the roi. Blocks are numbered in C order of their grid position. With a halo, a block has an
//! outer region (read: grown by the halo, clipped to the array), an inner region (written: the
//! block itself, no overlap between blocks) and the inner region relative to the outer one (to
//! crop results). Two questions for parallel writers are answered exactly: whether every chunk
//! of an output is written by one block only ([`blocks_align_with_chunks`]), and which blocks
//! must be processed together so that every shard is written by one task only
//! ([`group_blocks_by_shards`]).

use std::ops::Range;

use crate::error::{Error, Result};

/// A box `begin..end` (half-open, per axis) of an array; `shape` is `end - begin`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Block {
    pub begin: Vec<u64>,
    pub end: Vec<u64>,
    pub shape: Vec<u64>,
}

impl Block {
    /// The box `begin..end`; fails if the lengths differ or `begin > end` on an axis.
    pub fn new(begin: Vec<u64>, end: Vec<u64>) -> Result<Self> {
        check_ndim("end", &end, "begin", &begin)?;
        if let Some(axis) = (0..begin.len()).find(|&axis| begin[axis] > end[axis]) {
            return Err(Error::InvalidArgument(format!(
                "begin {begin:?} exceeds end {end:?} on axis {axis}"
            )));
        }
        Ok(Self::from_bounds(begin, end))
    }

    /// `begin..end` where `begin <= end` on every axis is known.
    fn from_bounds(begin: Vec<u64>, end: Vec<u64>) -> Self {
        let shape = begin.iter().zip(&end).map(|(b, e)| e - b).collect();
        Self { begin, end, shape }
    }

    /// Number of axes.
    pub fn ndim(&self) -> usize {
        self.begin.len()
    }
}

/// A block with a halo: `outer_block` is read, `inner_block` is written, and
/// `inner_block_local` is `inner_block` in coordinates relative to `outer_block.begin`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlockWithHalo {
    pub outer_block: Block,
    pub inner_block: Block,
    pub inner_block_local: Block,
}

/// A tiling of `roi_begin..roi_end` (default: the whole array of `shape`) into blocks of
/// `block_shape`, starting at `roi_begin`; blocks at the upper edge are clipped to `roi_end`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Blocking {
    shape: Vec<u64>,
    block_shape: Vec<u64>,
    roi_begin: Vec<u64>,
    roi_end: Vec<u64>,
    blocks_per_axis: Vec<u64>,
    number_of_blocks: u64,
}

impl Blocking {
    /// Blocks of `block_shape` tiling the whole array of `shape`.
    pub fn new(shape: Vec<u64>, block_shape: Vec<u64>) -> Result<Self> {
        let roi_begin = vec![0; shape.len()];
        let roi_end = shape.clone();
        Self::with_roi(shape, block_shape, roi_begin, roi_end)
    }

    /// Blocks of `block_shape` tiling the sub-region `roi_begin..roi_end` of an array of `shape`.
    ///
    /// Fails if the lengths differ, a block shape entry is zero, `roi_begin > roi_end` or
    /// `roi_end > shape` on an axis, or the number of blocks does not fit in a `u64`.
    pub fn with_roi(
        shape: Vec<u64>,
        block_shape: Vec<u64>,
        roi_begin: Vec<u64>,
        roi_end: Vec<u64>,
    ) -> Result<Self> {
        check_ndim("block_shape", &block_shape, "shape", &shape)?;
        check_ndim("roi_begin", &roi_begin, "shape", &shape)?;
        check_ndim("roi_end", &roi_end, "shape", &shape)?;
        check_positive("block_shape", &block_shape)?;
        for axis in 0..shape.len() {
            if roi_end[axis] > shape[axis] {
                return Err(Error::InvalidArgument(format!(
                    "roi_end {roi_end:?} exceeds shape {shape:?} on axis {axis}"
                )));
            }
            if roi_begin[axis] > roi_end[axis] {
                return Err(Error::InvalidArgument(format!(
                    "roi_begin {roi_begin:?} exceeds roi_end {roi_end:?} on axis {axis}"
                )));
            }
        }
        let blocks_per_axis: Vec<u64> = (0..shape.len())
            .map(|axis| (roi_end[axis] - roi_begin[axis]).div_ceil(block_shape[axis]))
            .collect();
        let number_of_blocks = blocks_per_axis
            .iter()
            .try_fold(1u64, |total, &n| total.checked_mul(n))
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "block_shape {block_shape:?} splits the region {roi_begin:?}..{roi_end:?} \
                     into more than 2**64 blocks ({blocks_per_axis:?} per axis)"
                ))
            })?;
        Ok(Self {
            shape,
            block_shape,
            roi_begin,
            roi_end,
            blocks_per_axis,
            number_of_blocks,
        })
    }

    /// Shape of the whole array.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// Shape of a (non-edge) block.
    pub fn block_shape(&self) -> &[u64] {
        &self.block_shape
    }

    /// First corner of the tiled region.
    pub fn roi_begin(&self) -> &[u64] {
        &self.roi_begin
    }

    /// Exclusive upper corner of the tiled region.
    pub fn roi_end(&self) -> &[u64] {
        &self.roi_end
    }

    /// Number of blocks along each axis.
    pub fn blocks_per_axis(&self) -> &[u64] {
        &self.blocks_per_axis
    }

    /// Total number of blocks (zero when the region is empty; one for a 0-d array).
    pub fn number_of_blocks(&self) -> u64 {
        self.number_of_blocks
    }

    /// Number of axes.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Grid position (C order) of block `block_id`.
    pub fn block_grid_position(&self, block_id: u64) -> Result<Vec<u64>> {
        self.check_block_id(block_id)?;
        let mut position = vec![0; self.ndim()];
        let mut rest = block_id;
        for axis in (0..self.ndim()).rev() {
            position[axis] = rest % self.blocks_per_axis[axis];
            rest /= self.blocks_per_axis[axis];
        }
        Ok(position)
    }

    /// Id of the block at grid position `position`.
    pub fn block_id(&self, position: &[u64]) -> Result<u64> {
        check_ndim("grid position", position, "shape", &self.shape)?;
        if let Some(axis) = (0..self.ndim()).find(|&a| position[a] >= self.blocks_per_axis[a]) {
            return Err(Error::InvalidArgument(format!(
                "grid position {position:?} is outside the block grid {:?} on axis {axis}",
                self.blocks_per_axis
            )));
        }
        Ok(self.id_of(position))
    }

    /// The block `block_id`: `roi_begin + position * block_shape`, clipped to `roi_end`.
    pub fn block(&self, block_id: u64) -> Result<Block> {
        let position = self.block_grid_position(block_id)?;
        Ok(self.block_at(&position))
    }

    /// Block `block_id` with `halo` voxels of context on each side of each axis; the outer block
    /// is clipped to the array (not to the roi: context outside the roi is still data).
    pub fn block_with_halo(&self, block_id: u64, halo: &[u64]) -> Result<BlockWithHalo> {
        self.add_halo(&self.block(block_id)?, halo, halo)
    }

    /// `inner_block` (any block of the array) grown by `halo_begin` below and `halo_end` above
    /// on each axis, the outer block clipped to the array.
    pub fn add_halo(
        &self,
        inner_block: &Block,
        halo_begin: &[u64],
        halo_end: &[u64],
    ) -> Result<BlockWithHalo> {
        check_ndim("halo", halo_begin, "shape", &self.shape)?;
        check_ndim("halo_end", halo_end, "shape", &self.shape)?;
        check_ndim("block", &inner_block.begin, "shape", &self.shape)?;
        if (0..self.ndim()).any(|a| inner_block.end[a] > self.shape[a]) {
            return Err(Error::InvalidArgument(format!(
                "block {:?}..{:?} is not inside the array of shape {:?}",
                inner_block.begin, inner_block.end, self.shape
            )));
        }
        let outer_begin: Vec<u64> = (0..self.ndim())
            .map(|a| inner_block.begin[a].saturating_sub(halo_begin[a]))
            .collect();
        let outer_end: Vec<u64> = (0..self.ndim())
            .map(|a| {
                inner_block.end[a]
                    .saturating_add(halo_end[a])
                    .min(self.shape[a])
            })
            .collect();
        let local_begin = (0..self.ndim())
            .map(|a| inner_block.begin[a] - outer_begin[a])
            .collect();
        let local_end = (0..self.ndim())
            .map(|a| inner_block.end[a] - outer_begin[a])
            .collect();
        Ok(BlockWithHalo {
            outer_block: Block::from_bounds(outer_begin, outer_end),
            inner_block: inner_block.clone(),
            inner_block_local: Block::from_bounds(local_begin, local_end),
        })
    }

    /// Id of the block holding the voxel at `coordinates` (inside the roi).
    pub fn block_id_at(&self, coordinates: &[u64]) -> Result<u64> {
        check_ndim("coordinates", coordinates, "shape", &self.shape)?;
        let mut position = Vec::with_capacity(self.ndim());
        for axis in 0..self.ndim() {
            let c = coordinates[axis];
            if c < self.roi_begin[axis] || c >= self.roi_end[axis] {
                return Err(Error::InvalidArgument(format!(
                    "coordinates {coordinates:?} are outside the blocked region {:?}..{:?}",
                    self.roi_begin, self.roi_end
                )));
            }
            position.push((c - self.roi_begin[axis]) / self.block_shape[axis]);
        }
        Ok(self.id_of(&position))
    }

    /// Ids (ascending) of the blocks lying entirely inside `begin..end`.
    pub fn block_ids_inside_region(&self, begin: &[u64], end: &[u64]) -> Result<Vec<u64>> {
        let mut ids = self.block_ids_in_region(begin, end)?;
        ids.retain(|&id| {
            let position: Vec<u64> = self.block_grid_position(id).unwrap_or_default();
            let block = self.block_at(&position);
            (0..self.ndim()).all(|a| block.begin[a] >= begin[a] && block.end[a] <= end[a])
        });
        Ok(ids)
    }

    /// The id of the block next to `block_id` along `axis` (below it with `lower`), if any.
    pub fn neighbor_id(&self, block_id: u64, axis: usize, lower: bool) -> Result<Option<u64>> {
        let mut position = self.block_grid_position(block_id)?;
        if axis >= self.ndim() {
            return Err(Error::InvalidArgument(format!(
                "axis {axis} is out of range for a blocking of {} axes",
                self.ndim()
            )));
        }
        if lower {
            if position[axis] == 0 {
                return Ok(None);
            }
            position[axis] -= 1;
        } else {
            if position[axis] + 1 >= self.blocks_per_axis[axis] {
                return Ok(None);
            }
            position[axis] += 1;
        }
        Ok(Some(self.id_of(&position)))
    }

    /// Ids (ascending) of the blocks that intersect `begin..end`. The region may extend beyond
    /// the roi or the array; a region empty on any axis (`begin >= end`) intersects no block.
    pub fn block_ids_in_region(&self, begin: &[u64], end: &[u64]) -> Result<Vec<u64>> {
        check_ndim("region begin", begin, "shape", &self.shape)?;
        check_ndim("region end", end, "shape", &self.shape)?;
        let mut grid_ranges = Vec::with_capacity(self.ndim());
        for axis in 0..self.ndim() {
            let low = begin[axis].max(self.roi_begin[axis]);
            let high = end[axis].min(self.roi_end[axis]);
            if low >= high {
                return Ok(Vec::new());
            }
            let first = (low - self.roi_begin[axis]) / self.block_shape[axis];
            let last = (high - 1 - self.roi_begin[axis]) / self.block_shape[axis];
            grid_ranges.push(first..last + 1);
        }
        // At most `number_of_blocks`, which fits a u64; the list must fit memory (an error
        // rather than an abort for a region of 2**60 blocks).
        let count = grid_ranges.iter().map(|r| r.end - r.start).product::<u64>();
        let mut ids = id_list(count)?;
        for_each_position(&grid_ranges, |position| ids.push(self.id_of(position)));
        Ok(ids)
    }

    /// Id of an in-grid position (Horner's scheme in C order; cannot overflow because the
    /// total number of blocks fits in a `u64`).
    fn id_of(&self, position: &[u64]) -> u64 {
        position
            .iter()
            .zip(&self.blocks_per_axis)
            .fold(0, |id, (&p, &n)| id * n + p)
    }

    /// The block at an in-grid position.
    fn block_at(&self, position: &[u64]) -> Block {
        let begin: Vec<u64> = (0..self.ndim())
            .map(|a| self.roi_begin[a] + position[a] * self.block_shape[a])
            .collect();
        let end = (0..self.ndim())
            .map(|a| {
                begin[a]
                    .saturating_add(self.block_shape[a])
                    .min(self.roi_end[a])
            })
            .collect();
        Block::from_bounds(begin, end)
    }

    fn check_block_id(&self, block_id: u64) -> Result<()> {
        if block_id >= self.number_of_blocks {
            return Err(Error::InvalidArgument(format!(
                "block id {block_id} is out of range for a blocking of {} blocks",
                self.number_of_blocks
            )));
        }
        Ok(())
    }

    /// The interior block boundaries along `axis`: `roi_begin + k * block_shape` for
    /// `0 < k < blocks_per_axis`.
    fn internal_boundaries(&self, axis: usize) -> impl Iterator<Item = u64> + '_ {
        (1..self.blocks_per_axis[axis])
            .map(move |k| self.roi_begin[axis] + k * self.block_shape[axis])
    }
}

/// Whether every chunk (of shape `chunks`, gridded from the origin) of an output of the
/// blocking's shape is written by at most one block, i.e. whether blocks can write it in
/// parallel without two of them touching a chunk. Holds exactly when every internal block
/// boundary lies on a chunk boundary; edge blocks (clipped by the roi) and a roi that starts or
/// ends inside a chunk are fine, since such a chunk is still written by one block only.
pub fn blocks_align_with_chunks(blocking: &Blocking, chunks: &[u64]) -> Result<bool> {
    check_ndim("chunks", chunks, "shape", blocking.shape())?;
    check_positive("chunks", chunks)?;
    // Without blocks nothing is written (boundaries along the other axes are then moot).
    if blocking.number_of_blocks() == 0 {
        return Ok(true);
    }
    // The boundaries `roi_begin + k * block` (0 < k < n) all lie on chunk boundaries iff the
    // first does and, when there are more, the block shape is a multiple of the chunk shape:
    // constant time however many blocks there are.
    Ok((0..blocking.ndim()).all(|axis| {
        let n = blocking.blocks_per_axis()[axis];
        let (block, chunk) = (blocking.block_shape()[axis], chunks[axis]);
        // With two or more blocks the first boundary lies inside the roi: no overflow.
        n <= 1
            || ((blocking.roi_begin()[axis] + block) % chunk == 0 && (n == 2 || block % chunk == 0))
    }))
}

/// An empty list with room for `count` block ids: an error when that cannot be allocated.
fn id_list(count: u64) -> Result<Vec<u64>> {
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    crate::buffer::with_capacity(count, || format!("a list of {count} block ids"))
}

/// Groups of block ids such that every shard of each output (shard shapes `shard_shapes`, one
/// per output, gridded from the origin; outputs have the blocking's shape) is written by exactly
/// one group: blocks that touch a common shard of any output are in the same group
/// (transitively). Ids ascend within a group; groups are ordered by their first id. Every block
/// is in exactly one group.
///
/// Two blocks share a shard iff their shard ranges overlap on every axis, so the groups are the
/// products of per-axis runs of blocks: along an axis, neighbouring blocks are in one run when
/// their common boundary is not a shard boundary of some output.
pub fn group_blocks_by_shards(
    blocking: &Blocking,
    shard_shapes: &[Vec<u64>],
) -> Result<Vec<Vec<u64>>> {
    for shard_shape in shard_shapes {
        check_ndim("shard shape", shard_shape, "shape", blocking.shape())?;
        check_positive("shard shape", shard_shape)?;
    }
    if blocking.number_of_blocks() == 0 {
        return Ok(Vec::new());
    }
    // Every block id is listed once: refuse counts that cannot be held before working on them
    // (the probe is freed; the groups are built below).
    drop(id_list(blocking.number_of_blocks())?);
    // Per axis: the runs of grid positions whose blocks are connected through shards.
    let runs: Vec<Vec<Range<u64>>> = (0..blocking.ndim())
        .map(|axis| {
            let mut runs = Vec::new();
            let mut start = 0;
            for (k, boundary) in (1..).zip(blocking.internal_boundaries(axis)) {
                if shard_shapes.iter().all(|s| boundary % s[axis] == 0) {
                    runs.push(start..k);
                    start = k;
                }
            }
            runs.push(start..blocking.blocks_per_axis()[axis]);
            runs
        })
        .collect();
    // A group per combination of runs, in C order of the runs (= order of first ids).
    let run_counts: Vec<Range<u64>> = runs.iter().map(|r| 0..r.len() as u64).collect();
    let mut groups = Vec::new();
    for_each_position(&run_counts, |run_position| {
        let grid_ranges: Vec<Range<u64>> = (0..run_position.len())
            .map(|axis| runs[axis][run_position[axis] as usize].clone())
            .collect();
        let mut group = Vec::new();
        for_each_position(&grid_ranges, |position| {
            group.push(blocking.id_of(position))
        });
        groups.push(group);
    });
    Ok(groups)
}

/// Calls `visit` with every position of the product of `ranges`, in C order (last axis
/// fastest). Nothing is visited if a range is empty; the 0-d product has one (empty) position.
fn for_each_position(ranges: &[Range<u64>], mut visit: impl FnMut(&[u64])) {
    if ranges.iter().any(Range::is_empty) {
        return;
    }
    let mut position: Vec<u64> = ranges.iter().map(|r| r.start).collect();
    loop {
        visit(&position);
        let mut axis = ranges.len();
        loop {
            if axis == 0 {
                return;
            }
            axis -= 1;
            position[axis] += 1;
            if position[axis] < ranges[axis].end {
                break;
            }
            position[axis] = ranges[axis].start;
        }
    }
}

fn check_ndim(name: &str, values: &[u64], reference_name: &str, reference: &[u64]) -> Result<()> {
    if values.len() == reference.len() {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "{name} {values:?} has {} entries but {reference_name} {reference:?} has {}",
        values.len(),
        reference.len()
    )))
}

fn check_positive(name: &str, values: &[u64]) -> Result<()> {
    if values.contains(&0) {
        return Err(Error::InvalidArgument(format!(
            "{name} entries must be positive, got {values:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// A tiny deterministic generator (xorshift64*), so the tests need no extra crate.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, bound: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound
        }

        fn between(&mut self, low: u64, high: u64) -> u64 {
            low + self.below(high - low + 1)
        }
    }

    /// Random blockings: 1-d to 4-d, small non-divisible shapes, empty axes, sub-regions.
    fn blockings() -> Vec<Blocking> {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut blockings = Vec::new();
        for case in 0..400 {
            let ndim = 1 + case % 4;
            let max_size = [24, 14, 8, 6][ndim - 1];
            let shape: Vec<u64> = (0..ndim).map(|_| rng.between(0, max_size)).collect();
            let block_shape: Vec<u64> = (0..ndim).map(|_| rng.between(1, 6)).collect();
            if case % 3 == 0 {
                blockings.push(Blocking::new(shape, block_shape).unwrap());
                continue;
            }
            let roi_begin: Vec<u64> = shape.iter().map(|&s| rng.between(0, s)).collect();
            let roi_end: Vec<u64> = (0..ndim)
                .map(|a| rng.between(roi_begin[a], shape[a]))
                .collect();
            blockings.push(Blocking::with_roi(shape, block_shape, roi_begin, roi_end).unwrap());
        }
        blockings
    }

    /// Every point of `begin..end`, decoded from a flat index (independent of the code under
    /// test).
    fn points(begin: &[u64], end: &[u64]) -> Vec<Vec<u64>> {
        let extent: Vec<u64> = begin.iter().zip(end).map(|(b, e)| e - b).collect();
        let count: u64 = extent.iter().product();
        (0..count)
            .map(|flat| {
                let mut rest = flat;
                let mut point = vec![0; extent.len()];
                for axis in (0..extent.len()).rev() {
                    point[axis] = begin[axis] + rest % extent[axis];
                    rest /= extent[axis];
                }
                point
            })
            .collect()
    }

    fn contains(begin: &[u64], end: &[u64], point: &[u64]) -> bool {
        (0..point.len()).all(|a| begin[a] <= point[a] && point[a] < end[a])
    }

    fn intersects(block: &Block, begin: &[u64], end: &[u64]) -> bool {
        (0..block.ndim()).all(|a| block.begin[a].max(begin[a]) < block.end[a].min(end[a]))
    }

    fn all_blocks(blocking: &Blocking) -> Vec<Block> {
        (0..blocking.number_of_blocks())
            .map(|id| blocking.block(id).unwrap())
            .collect()
    }

    #[test]
    fn blocks_partition_the_roi() {
        for blocking in blockings() {
            let blocks = all_blocks(&blocking);
            let expected: u64 = blocking.blocks_per_axis().iter().product();
            assert_eq!(blocking.number_of_blocks(), expected);
            let mut cover = BTreeMap::new();
            for block in &blocks {
                assert!(
                    block.shape.iter().all(|&s| s > 0),
                    "{blocking:?}: {block:?}"
                );
                for axis in 0..block.ndim() {
                    assert_eq!(block.shape[axis], block.end[axis] - block.begin[axis]);
                    assert!(block.shape[axis] <= blocking.block_shape()[axis]);
                    assert!(blocking.roi_begin()[axis] <= block.begin[axis]);
                    assert!(block.end[axis] <= blocking.roi_end()[axis]);
                }
                for point in points(&block.begin, &block.end) {
                    *cover.entry(point).or_insert(0) += 1;
                }
            }
            let roi_points = points(blocking.roi_begin(), blocking.roi_end());
            assert_eq!(cover.len(), roi_points.len(), "{blocking:?}");
            for point in roi_points {
                assert_eq!(cover.get(&point), Some(&1), "{blocking:?} at {point:?}");
            }
        }
    }

    #[test]
    fn block_ids_round_trip_through_grid_positions() {
        for blocking in blockings() {
            let mut positions = Vec::new();
            for id in 0..blocking.number_of_blocks() {
                let position = blocking.block_grid_position(id).unwrap();
                assert_eq!(blocking.block_id(&position).unwrap(), id);
                let block = blocking.block(id).unwrap();
                for (axis, &p) in position.iter().enumerate() {
                    assert!(p < blocking.blocks_per_axis()[axis]);
                    let begin = blocking.roi_begin()[axis] + p * blocking.block_shape()[axis];
                    assert_eq!(block.begin[axis], begin);
                }
                positions.push(position);
            }
            // C order: ids ascend with the lexicographic order of grid positions.
            assert!(positions.windows(2).all(|pair| pair[0] < pair[1]));
        }
    }

    #[test]
    fn halo_blocks_are_clipped_to_the_array_and_locally_consistent() {
        let mut rng = Rng(7);
        for blocking in blockings() {
            for id in 0..blocking.number_of_blocks() {
                let halo: Vec<u64> = (0..blocking.ndim()).map(|_| rng.between(0, 4)).collect();
                let with_halo = blocking.block_with_halo(id, &halo).unwrap();
                let BlockWithHalo {
                    outer_block: outer,
                    inner_block: inner,
                    inner_block_local: local,
                } = &with_halo;
                assert_eq!(inner, &blocking.block(id).unwrap());
                for (a, &h) in halo.iter().enumerate() {
                    let begin = inner.begin[a] as i64 - h as i64;
                    let end = (inner.end[a] + h).min(blocking.shape()[a]);
                    assert_eq!(outer.begin[a], begin.max(0) as u64);
                    assert_eq!(outer.end[a], end);
                    assert_eq!(outer.shape[a], outer.end[a] - outer.begin[a]);
                    assert_eq!(local.begin[a] + outer.begin[a], inner.begin[a]);
                    assert_eq!(local.end[a] + outer.begin[a], inner.end[a]);
                    assert_eq!(local.shape, inner.shape);
                    assert!(local.end[a] <= outer.shape[a]);
                }
                // outer[local] == inner, voxel by voxel.
                let outer_points = points(&outer.begin, &outer.end);
                let cropped: Vec<&Vec<u64>> = points(&[0; 4][..blocking.ndim()], &outer.shape)
                    .iter()
                    .zip(&outer_points)
                    .filter(|(local_point, _)| contains(&local.begin, &local.end, local_point))
                    .map(|(_, point)| point)
                    .collect();
                let inner_points = points(&inner.begin, &inner.end);
                assert_eq!(cropped, inner_points.iter().collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn region_query_equals_brute_force() {
        let mut rng = Rng(11);
        for blocking in blockings() {
            let blocks = all_blocks(&blocking);
            for _ in 0..8 {
                // Regions may be empty, reversed, or reach beyond the array.
                let begin: Vec<u64> = blocking
                    .shape()
                    .iter()
                    .map(|&s| rng.between(0, s + 2))
                    .collect();
                let end: Vec<u64> = blocking
                    .shape()
                    .iter()
                    .map(|&s| rng.between(0, s + 3))
                    .collect();
                let expected: Vec<u64> = (0..blocking.number_of_blocks())
                    .filter(|&id| intersects(&blocks[id as usize], &begin, &end))
                    .collect();
                assert_eq!(
                    blocking.block_ids_in_region(&begin, &end).unwrap(),
                    expected,
                    "{blocking:?} {begin:?}..{end:?}"
                );
            }
            let whole = blocking.block_ids_in_region(&vec![0; blocking.ndim()], blocking.shape());
            let all: Vec<u64> = (0..blocking.number_of_blocks()).collect();
            assert_eq!(whole.unwrap(), all);
        }
    }

    /// For every chunk of the array, the number of blocks writing to it.
    fn writers_per_chunk(blocking: &Blocking, chunks: &[u64]) -> BTreeMap<Vec<u64>, u64> {
        let mut writers = BTreeMap::new();
        for block in all_blocks(blocking) {
            let first: Vec<u64> = (0..block.ndim())
                .map(|a| block.begin[a] / chunks[a])
                .collect();
            let last: Vec<u64> = (0..block.ndim())
                .map(|a| (block.end[a] - 1) / chunks[a] + 1)
                .collect();
            for chunk in points(&first, &last) {
                *writers.entry(chunk).or_insert(0) += 1;
            }
        }
        writers
    }

    #[test]
    fn chunk_alignment_equals_brute_force() {
        let mut rng = Rng(13);
        let mut outcomes = BTreeSet::new();
        for blocking in blockings() {
            for _ in 0..6 {
                let chunks: Vec<u64> = (0..blocking.ndim()).map(|_| rng.between(1, 7)).collect();
                let brute = writers_per_chunk(&blocking, &chunks)
                    .values()
                    .all(|&n| n == 1);
                let aligned = blocks_align_with_chunks(&blocking, &chunks).unwrap();
                assert_eq!(aligned, brute, "{blocking:?} chunks {chunks:?}");
                outcomes.insert(aligned);
            }
            // Chunks equal to the blocks, gridded like them, always align.
            let own = blocking.block_shape();
            if blocking
                .roi_begin()
                .iter()
                .zip(own)
                .all(|(b, s)| b % s == 0)
            {
                assert!(blocks_align_with_chunks(&blocking, own).unwrap());
            }
        }
        assert_eq!(outcomes.len(), 2, "both outcomes must be exercised");
    }

    /// Brute-force grouping: union-find over blocks that touch a common shard of any output.
    fn brute_force_groups(blocking: &Blocking, shard_shapes: &[Vec<u64>]) -> Vec<Vec<u64>> {
        let n = blocking.number_of_blocks() as usize;
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(parent: &mut [usize], mut x: usize) -> usize {
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
        for (output, shard_shape) in shard_shapes.iter().enumerate() {
            let mut first_writer: BTreeMap<(usize, Vec<u64>), usize> = BTreeMap::new();
            for (id, block) in all_blocks(blocking).iter().enumerate() {
                for point in points(&block.begin, &block.end) {
                    let shard: Vec<u64> = (0..point.len())
                        .map(|a| point[a] / shard_shape[a])
                        .collect();
                    let writer = *first_writer.entry((output, shard)).or_insert(id);
                    let (a, b) = (find(&mut parent, writer), find(&mut parent, id));
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
        let mut groups: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        for id in 0..n {
            let root = find(&mut parent, id);
            groups.entry(root).or_default().push(id as u64);
        }
        let mut groups: Vec<Vec<u64>> = groups.into_values().collect();
        groups.sort();
        groups
    }

    #[test]
    fn shard_groups_equal_brute_force_union_find() {
        let mut rng = Rng(17);
        let mut merged_some = false;
        for blocking in blockings() {
            if blocking.number_of_blocks() > 400 {
                continue;
            }
            let outputs = rng.between(0, 3) as usize;
            let shard_shapes: Vec<Vec<u64>> = (0..outputs)
                .map(|_| (0..blocking.ndim()).map(|_| rng.between(1, 9)).collect())
                .collect();
            let groups = group_blocks_by_shards(&blocking, &shard_shapes).unwrap();
            assert_eq!(groups, brute_force_groups(&blocking, &shard_shapes));

            // Disjoint and complete; sorted within and across groups.
            let flat: Vec<u64> = groups.iter().flatten().copied().collect();
            let unique: BTreeSet<u64> = flat.iter().copied().collect();
            assert_eq!(flat.len(), unique.len());
            assert_eq!(unique, (0..blocking.number_of_blocks()).collect());
            assert!(groups
                .iter()
                .all(|g| !g.is_empty() && g.windows(2).all(|p| p[0] < p[1])));
            assert!(groups.windows(2).all(|p| p[0][0] < p[1][0]));
            merged_some |= groups.len() < flat.len();

            // Every shard of every output is written by exactly one group.
            for shard_shape in &shard_shapes {
                let mut writer_groups: BTreeMap<Vec<u64>, BTreeSet<usize>> = BTreeMap::new();
                for (g, group) in groups.iter().enumerate() {
                    for &id in group {
                        let block = blocking.block(id).unwrap();
                        for point in points(&block.begin, &block.end) {
                            let shard = (0..point.len())
                                .map(|a| point[a] / shard_shape[a])
                                .collect();
                            writer_groups.entry(shard).or_default().insert(g);
                        }
                    }
                }
                assert!(writer_groups.values().all(|gs| gs.len() == 1));
            }
        }
        assert!(merged_some, "some case must merge blocks");
    }

    #[test]
    fn shard_groups_of_aligned_blocks_are_single_blocks() {
        let blocking = Blocking::new(vec![100, 60], vec![20, 30]).unwrap();
        let groups = group_blocks_by_shards(&blocking, &[vec![20, 30], vec![10, 10]]).unwrap();
        assert_eq!(groups, (0..10).map(|id| vec![id]).collect::<Vec<_>>());
        // A shard of two blocks along axis 0 merges pairs of rows.
        let groups = group_blocks_by_shards(&blocking, &[vec![40, 30]]).unwrap();
        assert_eq!(groups[0], vec![0, 2]);
        assert_eq!(groups.len(), 6);
        // A block straddling shards merges its neighbours along that axis.
        let blocking = Blocking::new(vec![12], vec![3]).unwrap();
        assert_eq!(
            group_blocks_by_shards(&blocking, &[vec![4]]).unwrap(),
            vec![vec![0, 1, 2, 3]]
        );
        assert_eq!(
            group_blocks_by_shards(&blocking, &[vec![6]]).unwrap(),
            vec![vec![0, 1], vec![2, 3]]
        );
    }

    #[test]
    fn known_blockings() {
        let blocking = Blocking::new(vec![10, 7], vec![4, 4]).unwrap();
        assert_eq!(blocking.blocks_per_axis(), &[3, 2]);
        assert_eq!(blocking.number_of_blocks(), 6);
        let block = blocking.block(5).unwrap();
        assert_eq!(
            (block.begin, block.end, block.shape),
            (vec![8, 4], vec![10, 7], vec![2, 3])
        );

        let blocking =
            Blocking::with_roi(vec![10, 10], vec![4, 4], vec![3, 2], vec![9, 10]).unwrap();
        assert_eq!(blocking.blocks_per_axis(), &[2, 2]);
        assert_eq!(blocking.block(3).unwrap().begin, vec![7, 6]);
        let halo = blocking.block_with_halo(0, &[5, 1]).unwrap();
        assert_eq!(halo.outer_block.begin, vec![0, 1]);
        assert_eq!(halo.outer_block.end, vec![10, 7]);
        assert_eq!(halo.inner_block_local.begin, vec![3, 1]);

        // 0-d: one block, the whole (single-element) array.
        let scalar = Blocking::new(vec![], vec![]).unwrap();
        assert_eq!(scalar.number_of_blocks(), 1);
        assert_eq!(
            scalar.block(0).unwrap(),
            Block::new(vec![], vec![]).unwrap()
        );
        assert_eq!(
            group_blocks_by_shards(&scalar, &[vec![]]).unwrap(),
            vec![vec![0]]
        );
        assert_eq!(scalar.block_ids_in_region(&[], &[]).unwrap(), vec![0]);

        // Empty arrays and regions have no blocks.
        let empty = Blocking::new(vec![4, 0], vec![2, 2]).unwrap();
        assert_eq!(empty.number_of_blocks(), 0);
        assert!(group_blocks_by_shards(&empty, &[]).unwrap().is_empty());
        assert!(empty
            .block_ids_in_region(&[0, 0], &[4, 4])
            .unwrap()
            .is_empty());

        // Huge shapes and halos neither overflow nor panic.
        let huge = Blocking::new(vec![u64::MAX], vec![u64::MAX - 1]).unwrap();
        assert_eq!(huge.number_of_blocks(), 2);
        assert_eq!(huge.block(1).unwrap().end, vec![u64::MAX]);
        let with_halo = huge.block_with_halo(0, &[u64::MAX]).unwrap();
        assert_eq!(with_halo.outer_block.end, vec![u64::MAX]);
    }

    fn message<T: std::fmt::Debug>(result: Result<T>) -> String {
        match result.unwrap_err() {
            Error::InvalidArgument(message) => message,
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn bad_arguments_are_reported_with_their_values() {
        let m = message(Blocking::new(vec![10, 10], vec![4, 0]));
        assert!(m.contains("block_shape") && m.contains("[4, 0]"), "{m}");
        let m = message(Blocking::new(vec![10, 10], vec![4]));
        assert!(m.contains("[4]") && m.contains("[10, 10]"), "{m}");
        let m = message(Blocking::with_roi(vec![10], vec![4], vec![0], vec![11]));
        assert!(m.contains("roi_end [11]"), "{m}");
        let m = message(Blocking::with_roi(vec![10], vec![4], vec![6], vec![5]));
        assert!(m.contains("roi_begin [6]"), "{m}");
        let m = message(Blocking::new(vec![u64::MAX, u64::MAX], vec![1, 1]));
        assert!(m.contains("2**64"), "{m}");

        let blocking = Blocking::new(vec![10, 10], vec![4, 4]).unwrap();
        let m = message(blocking.block(9));
        assert!(m.contains("block id 9") && m.contains("9 blocks"), "{m}");
        let m = message(blocking.block_grid_position(100));
        assert!(m.contains("100"), "{m}");
        let m = message(blocking.block_id(&[0, 3]));
        assert!(m.contains("[0, 3]") && m.contains("axis 1"), "{m}");
        let m = message(blocking.block_id(&[0]));
        assert!(m.contains("[0]"), "{m}");
        let m = message(blocking.block_with_halo(0, &[1]));
        assert!(m.contains("halo [1]"), "{m}");
        let m = message(blocking.block_ids_in_region(&[0], &[1, 1]));
        assert!(m.contains("[0]"), "{m}");
        let m = message(blocks_align_with_chunks(&blocking, &[0, 4]));
        assert!(m.contains("chunks") && m.contains("[0, 4]"), "{m}");
        let m = message(group_blocks_by_shards(
            &blocking,
            &[vec![4, 4], vec![4, 4, 4]],
        ));
        assert!(m.contains("[4, 4, 4]"), "{m}");
        let m = message(Block::new(vec![3], vec![2]));
        assert!(m.contains("[3]") && m.contains("[2]"), "{m}");
    }

    #[test]
    fn asymmetric_halos_coordinates_neighbors_and_blocks_inside_a_region() {
        // A 10x12 array in 4x4 blocks: a 3x3 grid, the last row and column clipped.
        let blocking = Blocking::new(vec![10, 12], vec![4, 4]).unwrap();
        let halo = blocking
            .add_halo(&blocking.block(4).unwrap(), &[1, 1], &[2, 2])
            .unwrap();
        assert_eq!(halo.outer_block.begin, vec![3, 3]);
        assert_eq!(halo.outer_block.end, vec![10, 10]);
        assert_eq!(halo.inner_block_local.begin, vec![1, 1]);
        assert_eq!(
            blocking.block_with_halo(4, &[1, 1]).unwrap(),
            blocking
                .add_halo(&blocking.block(4).unwrap(), &[1, 1], &[1, 1])
                .unwrap()
        );
        assert_eq!(blocking.block_id_at(&[5, 9]).unwrap(), 5);
        assert_eq!(blocking.block_id_at(&[9, 11]).unwrap(), 8);
        assert!(blocking.block_id_at(&[10, 0]).is_err());
        assert_eq!(blocking.neighbor_id(0, 0, false).unwrap(), Some(3));
        assert_eq!(blocking.neighbor_id(0, 0, true).unwrap(), None);
        assert_eq!(blocking.neighbor_id(8, 1, false).unwrap(), None);
        assert!(blocking.neighbor_id(0, 2, false).is_err());
        assert_eq!(
            blocking.block_ids_inside_region(&[0, 0], &[8, 8]).unwrap(),
            vec![0, 1, 3, 4]
        );
        assert_eq!(
            blocking.block_ids_inside_region(&[1, 1], &[9, 9]).unwrap(),
            vec![4]
        );
        // Clipped edge blocks count as inside a region reaching the array's end.
        assert_eq!(
            blocking
                .block_ids_inside_region(&[8, 8], &[10, 12])
                .unwrap(),
            vec![8]
        );
    }

    #[test]
    fn huge_blockings_answer_in_constant_time_or_fail_cleanly() {
        let blocking = Blocking::new(vec![1 << 62], vec![2]).unwrap(); // 2**61 blocks
        assert!(blocks_align_with_chunks(&blocking, &[2]).unwrap());
        assert!(blocks_align_with_chunks(&blocking, &[1]).unwrap());
        assert!(!blocks_align_with_chunks(&blocking, &[4]).unwrap());
        let shifted = Blocking::with_roi(vec![1 << 62], vec![4], vec![2], vec![1 << 62]).unwrap();
        assert!(!blocks_align_with_chunks(&shifted, &[4]).unwrap());
        assert!(blocks_align_with_chunks(&shifted, &[2]).unwrap());
        let error = blocking.block_ids_in_region(&[0], &[1 << 62]).unwrap_err();
        assert!(matches!(error, Error::OutOfMemory { .. }), "{error}");
        let error = group_blocks_by_shards(&blocking, &[vec![2]]).unwrap_err();
        assert!(matches!(error, Error::OutOfMemory { .. }), "{error}");
        assert_eq!(
            blocking.block_ids_in_region(&[4], &[7]).unwrap(),
            vec![2, 3]
        );
    }
}
