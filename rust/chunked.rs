//! Chunked arrays: the one interface the native formats (zarr, N5, later HDF5) implement at
//! chunk granularity, and the format-agnostic region read/write on top of it — parallel over
//! chunks, through a bounded decoded-chunk cache, with the GIL released by the caller.
//!
//! Vocabulary (zarr-python's): a region is one `start..stop` per axis; a chunk is addressed by
//! its grid coordinates; a chunk's region is clipped to the array, so edge chunks are smaller.
//! Chunk buffers hold the clipped region in C order, native byte order.

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use crate::buffer;
use crate::chunk_cache::ChunkCache;
use crate::dtype::DataType;
use crate::error::{Error, Result};
use crate::thread_pool;

/// A chunked array on some storage. Implementations must be safe to call from many threads.
pub trait ChunkedArray: Send + Sync {
    /// Where the array lives, for messages (path on disk plus key).
    fn describe(&self) -> String;
    fn shape(&self) -> &[u64];
    fn dtype(&self) -> DataType;
    /// The read/write granularity: a zarr (inner) chunk, an N5 block.
    fn chunk_shape(&self) -> &[u64];
    /// The shard shape of a sharded array (zarr v3 sharding), else `None`.
    fn shard_shape(&self) -> Option<&[u64]> {
        None
    }
    /// One element of the fill value, native byte order (`dtype().size()` bytes).
    fn fill_value(&self) -> &[u8];
    /// Decodes chunk `chunk` into `out` (its clipped region, C order). `Ok(false)`, with `out`
    /// untouched, when the chunk is not stored. Corrupt data is an error naming the chunk.
    fn read_chunk(&self, chunk: &[u64], out: &mut [u8]) -> Result<bool>;
    /// Stores chunk `chunk` from `data` (its clipped region, C order), atomically.
    fn write_chunk(&self, chunk: &[u64], data: &[u8]) -> Result<()>;
    /// Whether chunk `chunk` is stored.
    fn chunk_exists(&self, chunk: &[u64]) -> Result<bool>;

    /// Writes `data` (C order, native byte order) into `region`. Formats whose storage unit is
    /// one chunk implement it as `write_region_by_chunks(self, region, data)`; those with larger
    /// units (shards) write each unit once.
    fn write_region(&self, region: &[Range<u64>], data: &[u8]) -> Result<()>;

    /// Whether chunk I/O waits on a network (a remote store): chunks are then read and
    /// written on many more threads than cores.
    fn is_remote(&self) -> bool {
        false
    }

    /// The encoded bytes of `chunks` fetched ahead of decoding, in fewer requests than one per
    /// chunk (a remote sharded array coalesces the inner chunks of a shard); `None` when the
    /// array fetches chunk by chunk. Chunks not in the result are read by `read_chunk`.
    fn prefetch(&self, _chunks: &[Vec<u64>]) -> Result<Option<Prefetched>> {
        Ok(None)
    }

    /// Decodes chunk `chunk` from bytes [`ChunkedArray::prefetch`] fetched (`None`: not stored)
    /// into `out`, as `read_chunk` does.
    fn decode_prefetched(
        &self,
        chunk: &[u64],
        _encoded: Option<&[u8]>,
        out: &mut [u8],
    ) -> Result<bool> {
        self.read_chunk(chunk, out)
    }
}

/// Encoded chunks fetched ahead of decoding: `None` for a chunk that is not stored.
pub type Prefetched = std::collections::HashMap<Vec<u64>, Option<Vec<u8>>>;

/// How a missing chunk reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingChunks {
    /// As the fill value (zarr's and N5's convention).
    Fill,
    /// As an error naming the chunk.
    Error,
}

/// The part of one chunk a region touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkSelection {
    /// Grid coordinates of the chunk.
    pub chunk_coords: Vec<u64>,
    /// The chunk's region in the array, clipped to the array.
    pub chunk_region: Vec<Range<u64>>,
    /// The touched part, relative to the chunk's region.
    pub chunk_selection: Vec<Range<u64>>,
    /// The touched part, relative to the region being read or written.
    pub out_selection: Vec<Range<u64>>,
}

impl ChunkSelection {
    /// Whether the region covers the whole (clipped) chunk.
    pub fn is_complete_chunk(&self) -> bool {
        self.chunk_selection
            .iter()
            .zip(&self.chunk_region)
            .all(|(sel, region)| sel.start == 0 && sel.end == region.end - region.start)
    }
}

/// The longest axis an array may have: numpy indexes with `isize`, so a longer axis could not
/// be indexed exactly (slice bounds would saturate below its end).
pub const MAX_AXIS_LEN: u64 = i64::MAX as u64;

/// Checks an array shape from metadata (or a shape to create); `Err` is the reason it cannot
/// be used.
pub fn check_shape(shape: &[u64]) -> std::result::Result<(), String> {
    match shape.iter().position(|&n| n > MAX_AXIS_LEN) {
        Some(axis) => Err(format!(
            "axis {axis} of shape {shape:?} is longer than 2**63 - 1, the longest numpy can index"
        )),
        None => Ok(()),
    }
}

/// Checks that `region` lies inside `shape`.
pub fn check_region(region: &[Range<u64>], shape: &[u64], what: &dyn Fn() -> String) -> Result<()> {
    if region.len() != shape.len() {
        return Err(Error::InvalidArgument(format!(
            "region {region:?} has {} axes but {} has {}",
            region.len(),
            what(),
            shape.len()
        )));
    }
    if let Some((axis, r)) = region
        .iter()
        .enumerate()
        .find(|(axis, r)| r.start > r.end || r.end > shape[*axis])
    {
        return Err(Error::InvalidArgument(format!(
            "region {r:?} on axis {axis} is outside {} of shape {shape:?}",
            what()
        )));
    }
    Ok(())
}

/// The region of chunk `chunk` clipped to an array of `shape`; an error naming the array
/// (`describe`) when `chunk` is outside the chunk grid.
pub fn chunk_region(
    shape: &[u64],
    chunk_shape: &[u64],
    chunk: &[u64],
    describe: &dyn Fn() -> String,
) -> Result<Vec<Range<u64>>> {
    let outside = chunk.len() != shape.len()
        || chunk
            .iter()
            .zip(shape.iter().zip(chunk_shape))
            .any(|(&c, (&n, &size))| c >= n.div_ceil(size));
    if outside {
        let grid: Vec<u64> = shape
            .iter()
            .zip(chunk_shape)
            .map(|(&n, &c)| n.div_ceil(c))
            .collect();
        return Err(Error::InvalidArgument(format!(
            "chunk {chunk:?} is outside the chunk grid {grid:?} of {}",
            describe()
        )));
    }
    // `c * size < n` inside the grid; the chunk's end may pass `u64::MAX` before clipping.
    Ok(chunk
        .iter()
        .zip(chunk_shape)
        .zip(shape)
        .map(|((&c, &size), &n)| c * size..(c * size).saturating_add(size).min(n))
        .collect())
}

/// The chunks a region touches, in C order of their grid coordinates, computed one at a time:
/// a region of many small chunks needs no selection per chunk in memory at once.
#[derive(Clone, Debug)]
pub struct RegionChunks<'a> {
    region: &'a [Range<u64>],
    shape: &'a [u64],
    chunk_shape: &'a [u64],
    /// The grid coordinates touched, per axis.
    grid: Vec<Range<u64>>,
    len: usize,
}

impl<'a> RegionChunks<'a> {
    /// The chunks of an array of `shape` (chunks of `chunk_shape`) that `region` touches; the
    /// region must lie inside the array. An error when there are more than fit a `usize`.
    pub fn new(region: &'a [Range<u64>], shape: &'a [u64], chunk_shape: &'a [u64]) -> Result<Self> {
        let empty = region.iter().any(|r| r.start >= r.end);
        let grid: Vec<Range<u64>> = if empty {
            Vec::new()
        } else {
            region
                .iter()
                .zip(chunk_shape)
                .map(|(r, &c)| r.start / c..(r.end - 1) / c + 1)
                .collect()
        };
        let len = if empty {
            0
        } else {
            grid.iter()
                .try_fold(1usize, |n, r| {
                    usize::try_from(r.end - r.start)
                        .ok()
                        .and_then(|k| n.checked_mul(k))
                })
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "region {region:?} touches more chunks of shape {chunk_shape:?} than \
                         can be counted"
                    ))
                })?
        };
        Ok(RegionChunks {
            region,
            shape,
            chunk_shape,
            grid,
            len,
        })
    }

    /// Number of chunks touched.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the region covers every chunk it touches completely (so reading it shares no
    /// chunk with a neighbouring read of the same grid).
    pub fn all_complete(&self) -> bool {
        (0..self.region.len()).all(|axis| {
            let (r, c) = (&self.region[axis], self.chunk_shape[axis]);
            r.start % c == 0 && (r.end % c == 0 || r.end == self.shape[axis])
        })
    }

    /// The grid coordinates of the `index`-th chunk touched (C order, last axis fastest).
    pub fn coords(&self, index: usize) -> Vec<u64> {
        let mut rest = index as u64;
        let mut coords = vec![0; self.grid.len()];
        for axis in (0..self.grid.len()).rev() {
            let n = self.grid[axis].end - self.grid[axis].start;
            coords[axis] = self.grid[axis].start + rest % n;
            rest /= n;
        }
        coords
    }

    /// The `index`-th chunk touched.
    pub fn get(&self, index: usize) -> ChunkSelection {
        let chunk_coords = self.coords(index);
        let ndim = chunk_coords.len();
        let mut selection = ChunkSelection {
            chunk_region: Vec::with_capacity(ndim),
            chunk_selection: Vec::with_capacity(ndim),
            out_selection: Vec::with_capacity(ndim),
            chunk_coords,
        };
        for axis in 0..ndim {
            // Inside the grid: `begin < shape`, while `begin + chunk` may pass `u64::MAX`.
            let begin = selection.chunk_coords[axis] * self.chunk_shape[axis];
            let end = begin
                .saturating_add(self.chunk_shape[axis])
                .min(self.shape[axis]);
            let region = &self.region[axis];
            let touched = region.start.max(begin)..region.end.min(end);
            selection.chunk_region.push(begin..end);
            selection
                .chunk_selection
                .push(touched.start - begin..touched.end - begin);
            selection
                .out_selection
                .push(touched.start - region.start..touched.end - region.start);
        }
        selection
    }

    /// The chunks touched, in order.
    pub fn iter(&self) -> impl Iterator<Item = ChunkSelection> + '_ {
        (0..self.len).map(|index| self.get(index))
    }

    /// Runs `f` on every chunk touched, in parallel on the process's pool when there are
    /// several (on its I/O pool when `remote`: see [`ChunkedArray::is_remote`]); stops at the
    /// first error.
    pub fn try_for_each(
        &self,
        remote: bool,
        f: impl Fn(&ChunkSelection) -> Result<()> + Sync,
    ) -> Result<()> {
        let run = |pool: &rayon::ThreadPool| {
            pool.install(|| {
                (0..self.len)
                    .into_par_iter()
                    .try_for_each(|index| f(&self.get(index)))
            })
        };
        match self.len {
            0 => Ok(()),
            1 => f(&self.get(0)),
            _ if remote => run(thread_pool::io_thread_pool()?),
            _ => run(thread_pool::thread_pool()?),
        }
    }
}

/// The chunks a region touches, in C order of their grid coordinates (all at once: for small
/// regions; see [`RegionChunks`]). The region must lie inside the array.
pub fn chunk_selections(
    region: &[Range<u64>],
    shape: &[u64],
    chunk_shape: &[u64],
) -> Vec<ChunkSelection> {
    RegionChunks::new(region, shape, chunk_shape)
        .map(|chunks| chunks.iter().collect())
        .unwrap_or_default()
}

/// Number of elements of a region (`usize::MAX` when that does not fit: no buffer is that
/// long, so comparing a buffer's length with it fails as it should).
pub fn region_len(region: &[Range<u64>]) -> usize {
    region_bytes(region, 1)
}

/// Bytes of a region of elements of `itemsize` bytes (`usize::MAX` when that does not fit).
pub fn region_bytes(region: &[Range<u64>], itemsize: usize) -> usize {
    let shape: Vec<u64> = region.iter().map(|r| r.end - r.start).collect();
    buffer::byte_len(&shape, itemsize).unwrap_or(usize::MAX)
}

fn region_shape(region: &[Range<u64>]) -> Vec<u64> {
    region.iter().map(|r| r.end - r.start).collect()
}

/// Copies the box `src_sel` of a C-order array of `src_shape` into the box `dst_sel` (same
/// extent) of a C-order array of `dst_shape`, element size `itemsize`, by contiguous runs.
///
/// # Safety
/// `src` must be valid for reads of `product(src_shape) * itemsize` bytes, `dst` for writes of
/// `product(dst_shape) * itemsize` bytes, both selections inside their shapes, and no other
/// thread may access the destination box concurrently.
pub unsafe fn copy_box(
    src: *const u8,
    src_shape: &[u64],
    src_sel: &[Range<u64>],
    dst: *mut u8,
    dst_shape: &[u64],
    dst_sel: &[Range<u64>],
    itemsize: usize,
) {
    let ndim = src_shape.len();
    if ndim == 0 {
        std::ptr::copy_nonoverlapping(src, dst, itemsize);
        return;
    }
    if src_sel.iter().any(|r| r.start >= r.end) {
        return;
    }
    // Merge trailing axes that are copied whole in both arrays into one contiguous run.
    let mut run_axis = ndim - 1;
    let mut run = (src_sel[run_axis].end - src_sel[run_axis].start) as usize;
    while run_axis > 0
        && src_sel[run_axis].start == 0
        && src_sel[run_axis].end == src_shape[run_axis]
        && dst_sel[run_axis].start == 0
        && dst_sel[run_axis].end == dst_shape[run_axis]
    {
        run_axis -= 1;
        run *= (src_sel[run_axis].end - src_sel[run_axis].start) as usize;
    }
    let strides = |shape: &[u64]| {
        let mut strides = vec![itemsize; ndim];
        for axis in (0..ndim - 1).rev() {
            strides[axis] = strides[axis + 1] * shape[axis + 1] as usize;
        }
        strides
    };
    let (src_strides, dst_strides) = (strides(src_shape), strides(dst_shape));
    let run_bytes = run * itemsize;
    let outer = &src_sel[..run_axis];
    let mut counter = vec![0u64; run_axis];
    loop {
        let mut src_offset = src_sel[run_axis].start as usize * src_strides[run_axis];
        let mut dst_offset = dst_sel[run_axis].start as usize * dst_strides[run_axis];
        for axis in 0..run_axis {
            src_offset += (src_sel[axis].start + counter[axis]) as usize * src_strides[axis];
            dst_offset += (dst_sel[axis].start + counter[axis]) as usize * dst_strides[axis];
        }
        std::ptr::copy_nonoverlapping(src.add(src_offset), dst.add(dst_offset), run_bytes);
        if !next_position(&mut counter, outer) {
            return;
        }
    }
}

/// Fills the box `dst_sel` of a C-order array of `dst_shape` with copies of `element`, by
/// contiguous runs.
///
/// # Safety
/// `dst` must be valid for writes of `product(dst_shape) * element.len()` bytes, the selection
/// inside the shape, and no other thread may access the box concurrently.
pub unsafe fn fill_box(dst: *mut u8, dst_shape: &[u64], dst_sel: &[Range<u64>], element: &[u8]) {
    let itemsize = element.len();
    let ndim = dst_shape.len();
    if ndim == 0 {
        std::ptr::copy_nonoverlapping(element.as_ptr(), dst, itemsize);
        return;
    }
    if dst_sel.iter().any(|r| r.start >= r.end) {
        return;
    }
    let mut run_axis = ndim - 1;
    let mut run = (dst_sel[run_axis].end - dst_sel[run_axis].start) as usize;
    while run_axis > 0
        && dst_sel[run_axis].start == 0
        && dst_sel[run_axis].end == dst_shape[run_axis]
    {
        run_axis -= 1;
        run *= (dst_sel[run_axis].end - dst_sel[run_axis].start) as usize;
    }
    let mut strides = vec![itemsize; ndim];
    for axis in (0..ndim - 1).rev() {
        strides[axis] = strides[axis + 1] * dst_shape[axis + 1] as usize;
    }
    let mut counter = vec![0u64; run_axis];
    loop {
        let mut offset = dst_sel[run_axis].start as usize * strides[run_axis];
        for axis in 0..run_axis {
            offset += (dst_sel[axis].start + counter[axis]) as usize * strides[axis];
        }
        let run_bytes = std::slice::from_raw_parts_mut(dst.add(offset), run * itemsize);
        fill_with(run_bytes, element);
        if !next_position(&mut counter, dst_sel) {
            return;
        }
    }
}

/// Advances `counter` (offsets into the leading `counter.len()` ranges of `box_`) to the next
/// position in C order; `false` once every position was visited.
fn next_position(counter: &mut [u64], box_: &[Range<u64>]) -> bool {
    for axis in (0..counter.len()).rev() {
        counter[axis] += 1;
        if counter[axis] < box_[axis].end - box_[axis].start {
            return true;
        }
        counter[axis] = 0;
    }
    false
}

/// A raw output pointer shared by the parallel chunk loop.
#[derive(Clone, Copy)]
struct SharedOut(*mut u8);
// SAFETY: each parallel task writes only its chunk's `out_selection`, and the selections of
// distinct chunks are disjoint boxes of the output, so no two threads write the same byte.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// Fills a buffer with one repeated element.
pub fn fill_with(out: &mut [u8], element: &[u8]) {
    if element.iter().all(|&b| b == 0) {
        out.fill(0);
    } else {
        out.chunks_exact_mut(element.len())
            .for_each(|e| e.copy_from_slice(element));
    }
}

/// Decoded chunk data, borrowed from the cache or a scratch buffer.
enum Decoded<'a> {
    Cached(Arc<Vec<u8>>),
    Scratch(&'a [u8]),
    Missing,
}

impl Decoded<'_> {
    fn bytes(&self) -> Option<&[u8]> {
        match self {
            Decoded::Cached(data) => Some(data),
            Decoded::Scratch(data) => Some(data),
            Decoded::Missing => None,
        }
    }
}

/// Scratch buffers larger than this are freed after use rather than kept by their thread.
const KEEP_SCRATCH_BYTES: usize = 64 << 20;

thread_local! {
    /// Per-thread decode buffer for chunks that are not cached: reusing it avoids a fresh
    /// (page-faulting) allocation per chunk on large reads.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Bytes of the (clipped) chunk of `selection`; an error when that does not fit memory's
/// address space (chunk shapes come from metadata).
fn chunk_bytes(array: &dyn ChunkedArray, selection: &ChunkSelection) -> Result<usize> {
    let shape = region_shape(&selection.chunk_region);
    buffer::byte_len(&shape, array.dtype().size()).ok_or_else(|| {
        Error::out_of_memory(
            u64::MAX,
            format!("chunk {:?} of {}", selection.chunk_coords, array.describe()),
        )
    })
}

/// Runs `use_chunk` on one chunk's decoded data: from the cache, else decoded (into a new cached
/// buffer when `populate`, else into this thread's scratch buffer). A chunk the read covers
/// only in part is looked up first, so a missing one costs no chunk-sized buffer.
fn with_decoded_chunk<R>(
    array: &dyn ChunkedArray,
    cache: Option<&ChunkCache>,
    populate: bool,
    prefetched: Option<&Prefetched>,
    selection: &ChunkSelection,
    use_chunk: impl FnOnce(Decoded<'_>) -> Result<R>,
) -> Result<R> {
    if let Some(hit) = cache.and_then(|c| c.get(&selection.chunk_coords)) {
        return use_chunk(Decoded::Cached(hit));
    }
    let coords = &selection.chunk_coords;
    let prefetched = prefetched.and_then(|p| p.get(coords));
    let read = |buffer: &mut [u8]| match prefetched {
        Some(encoded) => array.decode_prefetched(coords, encoded.as_deref(), buffer),
        None => array.read_chunk(coords, buffer),
    };
    // Asking first costs a request on a remote store, more than the buffer it saves.
    let known_missing = match prefetched {
        Some(encoded) => encoded.is_none(),
        None => {
            !selection.is_complete_chunk() && !array.is_remote() && !array.chunk_exists(coords)?
        }
    };
    if known_missing {
        return use_chunk(Decoded::Missing);
    }
    let len = chunk_bytes(array, selection)?;
    let purpose = || {
        format!(
            "decoding chunk {:?} of {}",
            selection.chunk_coords,
            array.describe()
        )
    };
    if let Some(cache) = cache.filter(|_| populate) {
        let mut buffer = buffer::zeroed(len, purpose)?;
        if !read(&mut buffer)? {
            return use_chunk(Decoded::Missing);
        }
        let buffer = Arc::new(buffer);
        cache.insert(selection.chunk_coords.clone(), Arc::clone(&buffer));
        return use_chunk(Decoded::Cached(buffer));
    }
    SCRATCH.with_borrow_mut(|scratch| {
        buffer::resize(scratch, len, purpose)?;
        let result = if read(&mut scratch[..len])? {
            use_chunk(Decoded::Scratch(&scratch[..len]))
        } else {
            use_chunk(Decoded::Missing)
        };
        if scratch.capacity() > KEEP_SCRATCH_BYTES {
            *scratch = Vec::new();
        }
        result
    })
}

/// Reads `region` of `array` into `out` (C order, native byte order), decoding the touched
/// chunks in parallel. Missing chunks read as the fill value or fail, per `missing`.
pub fn read_region_into(
    array: &dyn ChunkedArray,
    cache: Option<&ChunkCache>,
    missing: MissingChunks,
    region: &[Range<u64>],
    out: &mut [u8],
) -> Result<()> {
    check_region(region, array.shape(), &|| array.describe())?;
    let itemsize = array.dtype().size();
    if out.len() != region_bytes(region, itemsize) {
        return Err(Error::InvalidArgument(format!(
            "output buffer of {} bytes does not fit region {region:?} of {}",
            out.len(),
            array.describe()
        )));
    }
    let chunks = RegionChunks::new(region, array.shape(), array.chunk_shape())?;
    let out_shape = region_shape(region);
    // Which reads add to the cache (all use its hits): neighbouring reads share chunks only when
    // they are not aligned to the chunk grid (halos), so a read covering only whole chunks
    // (chunk-wise scans, aligned blocks) adds nothing; nor does a read larger than a quarter of
    // the cache, which would evict most of it (a full-volume read would double its memory).
    let populate =
        cache.is_some_and(|c| out.len() <= c.capacity_bytes() / 4) && !chunks.all_complete();
    let prefetched = if array.is_remote() && chunks.len() > 1 {
        let wanted: Vec<Vec<u64>> = (0..chunks.len())
            .map(|index| chunks.coords(index))
            .filter(|coords| cache.is_none_or(|c| !c.contains(coords)))
            .collect();
        array.prefetch(&wanted)?
    } else {
        None
    };
    let shared = SharedOut(out.as_mut_ptr());
    let read_one = |selection: &ChunkSelection| -> Result<()> {
        let chunk_shape = region_shape(&selection.chunk_region);
        with_decoded_chunk(
            array,
            cache,
            populate,
            prefetched.as_ref(),
            selection,
            |decoded| {
                let out = shared;
                match (decoded.bytes(), missing) {
                    // SAFETY: `data` holds the chunk's clipped region; `out` holds `out_shape`
                    // elements (checked above); the selections are inside both; distinct chunks
                    // write disjoint boxes of `out` (see `SharedOut`).
                    (Some(data), _) => unsafe {
                        copy_box(
                            data.as_ptr(),
                            &chunk_shape,
                            &selection.chunk_selection,
                            out.0,
                            &out_shape,
                            &selection.out_selection,
                            itemsize,
                        );
                    },
                    // Only the selection is filled: a missing chunk needs no chunk-sized buffer.
                    // SAFETY: as above; `fill_value` is one element of `itemsize` bytes.
                    (None, MissingChunks::Fill) => unsafe {
                        fill_box(
                            out.0,
                            &out_shape,
                            &selection.out_selection,
                            array.fill_value(),
                        );
                    },
                    (None, MissingChunks::Error) => {
                        return Err(Error::MissingChunk {
                            array: array.describe(),
                            chunk: selection.chunk_coords.clone(),
                        })
                    }
                }
                Ok(())
            },
        )
    };
    chunks.try_for_each(array.is_remote(), read_one)
}

/// Writes `data` (C order, native byte order, the region's shape) into `region`, one whole
/// chunk at a time: complete chunks without reading them, partial ones read-modify-write.
pub fn write_region_by_chunks(
    array: &dyn ChunkedArray,
    region: &[Range<u64>],
    data: &[u8],
) -> Result<()> {
    check_region(region, array.shape(), &|| array.describe())?;
    let itemsize = array.dtype().size();
    if data.len() != region_bytes(region, itemsize) {
        return Err(Error::InvalidArgument(format!(
            "data of {} bytes does not fit region {region:?} of {}",
            data.len(),
            array.describe()
        )));
    }
    let chunks = RegionChunks::new(region, array.shape(), array.chunk_shape())?;
    let data_shape = region_shape(region);
    let write_one = |selection: &ChunkSelection| -> Result<()> {
        let chunk_shape = region_shape(&selection.chunk_region);
        let mut buffer = buffer::zeroed(chunk_bytes(array, selection)?, || {
            format!(
                "writing chunk {:?} of {}",
                selection.chunk_coords,
                array.describe()
            )
        })?;
        if !selection.is_complete_chunk()
            && !array.read_chunk(&selection.chunk_coords, &mut buffer)?
        {
            fill_with(&mut buffer, array.fill_value());
        }
        // SAFETY: `data` holds `data_shape` elements (checked above), `buffer` the chunk's
        // clipped region; both selections lie inside their arrays; `buffer` is local.
        unsafe {
            copy_box(
                data.as_ptr(),
                &data_shape,
                &selection.out_selection,
                buffer.as_mut_ptr(),
                &chunk_shape,
                &selection.chunk_selection,
                itemsize,
            );
        }
        array.write_chunk(&selection.chunk_coords, &buffer)
    };
    chunks.try_for_each(array.is_remote(), write_one)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// A 2-d u16 chunked array kept in memory, for testing the format-agnostic layer.
    struct MemoryArray {
        shape: Vec<u64>,
        chunk_shape: Vec<u64>,
        chunks: Mutex<HashMap<Vec<u64>, Vec<u8>>>,
        reads: Mutex<usize>,
    }

    impl MemoryArray {
        fn new(shape: &[u64], chunk_shape: &[u64]) -> Self {
            MemoryArray {
                shape: shape.to_vec(),
                chunk_shape: chunk_shape.to_vec(),
                chunks: Mutex::new(HashMap::new()),
                reads: Mutex::new(0),
            }
        }
    }

    impl ChunkedArray for MemoryArray {
        fn describe(&self) -> String {
            "memory".to_owned()
        }
        fn shape(&self) -> &[u64] {
            &self.shape
        }
        fn dtype(&self) -> DataType {
            DataType::UInt16
        }
        fn chunk_shape(&self) -> &[u64] {
            &self.chunk_shape
        }
        fn fill_value(&self) -> &[u8] {
            &[7, 0]
        }
        fn read_chunk(&self, chunk: &[u64], out: &mut [u8]) -> Result<bool> {
            *self.reads.lock().unwrap() += 1;
            let chunks = self.chunks.lock().unwrap();
            let Some(data) = chunks.get(chunk) else {
                return Ok(false);
            };
            out.copy_from_slice(data);
            Ok(true)
        }
        fn write_chunk(&self, chunk: &[u64], data: &[u8]) -> Result<()> {
            self.chunks
                .lock()
                .unwrap()
                .insert(chunk.to_vec(), data.to_vec());
            Ok(())
        }
        fn chunk_exists(&self, chunk: &[u64]) -> Result<bool> {
            Ok(self.chunks.lock().unwrap().contains_key(chunk))
        }
        fn write_region(&self, region: &[Range<u64>], data: &[u8]) -> Result<()> {
            write_region_by_chunks(self, region, data)
        }
    }

    fn as_bytes(values: &[u16]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_ne_bytes()).collect()
    }

    fn read(array: &MemoryArray, cache: Option<&ChunkCache>, region: &[Range<u64>]) -> Vec<u16> {
        let mut out = vec![0u8; region_len(region) * 2];
        read_region_into(array, cache, MissingChunks::Fill, region, &mut out).unwrap();
        out.chunks_exact(2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
            .collect()
    }

    #[test]
    fn region_writes_and_reads_match_a_reference() {
        let array = MemoryArray::new(&[10, 7], &[4, 3]);
        let mut reference = [7u16; 70];
        // Overlapping partial writes (read-modify-write) and one full write.
        for (region, seed) in [
            ([1..9, 2..6], 100u16),
            ([0..10, 0..7], 0),
            ([3..4, 0..7], 500),
        ] {
            let values: Vec<u16> = (0..region_len(&region) as u16).map(|v| v + seed).collect();
            array.write_region(&region, &as_bytes(&values)).unwrap();
            let mut i = 0;
            for y in region[0].clone() {
                for x in region[1].clone() {
                    reference[(y * 7 + x) as usize] = values[i];
                    i += 1;
                }
            }
            for r in [[0..10, 0..7], [2..9, 1..6], [9..10, 6..7], [5..5, 0..7]] {
                let expected: Vec<u16> = r[0]
                    .clone()
                    .flat_map(|y| r[1].clone().map(move |x| (y, x)))
                    .map(|(y, x)| reference[(y * 7 + x) as usize])
                    .collect();
                assert_eq!(read(&array, None, &r), expected, "region {r:?}");
            }
        }
    }

    #[test]
    fn missing_chunks_fill_or_fail() {
        let array = MemoryArray::new(&[5, 5], &[4, 4]);
        assert_eq!(read(&array, None, &[0..2, 3..5]), vec![7; 4]);
        let mut out = vec![0u8; 8];
        let error = read_region_into(&array, None, MissingChunks::Error, &[0..2, 3..5], &mut out)
            .unwrap_err();
        assert!(error.to_string().contains("[0, 0]"), "{error}");
        assert!(
            read_region_into(&array, None, MissingChunks::Fill, &[0..6, 0..1], &mut out).is_err()
        );
    }

    #[test]
    fn cache_serves_repeated_reads_but_not_large_ones() {
        let array = MemoryArray::new(&[8, 8], &[4, 4]);
        array
            .write_region(&[0..8, 0..8], &as_bytes(&[1; 64]))
            .unwrap();
        let cache = ChunkCache::new(4 * 64 * 2); // four times the whole array
        read(&array, Some(&cache), &[0..4, 0..4]); // one whole chunk: not cached
        assert_eq!(cache.size_bytes(), 0);
        read(&array, Some(&cache), &[0..3, 0..3]);
        read(&array, Some(&cache), &[1..2, 1..3]);
        read(&array, Some(&cache), &[0..4, 0..4]);
        assert_eq!(*array.reads.lock().unwrap(), 2);
        assert_eq!(cache.size_bytes(), 32);
        let small = ChunkCache::new(64); // smaller than four times a read of the whole array
        read(&array, Some(&small), &[0..8, 0..8]);
        assert_eq!(small.size_bytes(), 0);
    }

    #[test]
    fn selections_tile_the_region() {
        let selections = chunk_selections(&[3..10, 0..5], &[10, 5], &[4, 3]);
        let coords: Vec<_> = selections.iter().map(|s| s.chunk_coords.clone()).collect();
        assert_eq!(
            coords,
            vec![
                vec![0, 0],
                vec![0, 1],
                vec![1, 0],
                vec![1, 1],
                vec![2, 0],
                vec![2, 1]
            ]
        );
        let last = &selections[5];
        assert_eq!(last.chunk_region, vec![8..10, 3..5]);
        assert_eq!(last.chunk_selection, vec![0..2, 0..2]);
        assert_eq!(last.out_selection, vec![5..7, 3..5]);
        assert!(last.is_complete_chunk());
        assert!(!selections[0].is_complete_chunk());
        assert!(chunk_selections(&[3..3, 0..5], &[10, 5], &[4, 3]).is_empty());
    }

    #[test]
    fn region_chunks_are_computed_one_at_a_time() {
        // 2**40 chunks touched: counted and addressed without listing them.
        let shape = [1u64 << 20, 1 << 20];
        let region = [3..(1 << 20), 0..(1 << 20)];
        let chunks = RegionChunks::new(&region, &shape, &[1, 1]).unwrap();
        assert_eq!(chunks.len(), ((1usize << 20) - 3) << 20);
        let last = chunks.get(chunks.len() - 1);
        assert_eq!(last.chunk_coords, vec![(1 << 20) - 1, (1 << 20) - 1]);
        assert_eq!(
            last.out_selection,
            vec![(1 << 20) - 4..(1 << 20) - 3, (1 << 20) - 1..1 << 20]
        );
        assert!(chunks.all_complete());
        let partial = [1..5, 0..7];
        let chunks = RegionChunks::new(&partial, &[10, 7], &[4, 3]).unwrap();
        assert!(!chunks.all_complete());
        assert_eq!(
            chunks.iter().collect::<Vec<_>>(),
            chunk_selections(&partial, &[10, 7], &[4, 3])
        );
        // Chunks reaching past u64::MAX are clipped, not overflowed.
        #[allow(clippy::single_range_in_vec_init)] // one axis
        let huge = [u64::MAX - 5..u64::MAX];
        let chunks = RegionChunks::new(&huge, &[u64::MAX], &[1 << 63]).unwrap();
        assert_eq!(chunks.get(0).chunk_region, vec![1 << 63..u64::MAX]);
        assert_eq!(
            chunk_region(&[u64::MAX], &[1 << 63], &[1], &String::new).unwrap(),
            vec![1 << 63..u64::MAX]
        );
    }

    #[test]
    fn missing_chunks_fill_only_the_selection() {
        // A chunk of 2**62 elements (2**63 bytes, more than any allocation may be) is never
        // allocated to read three missing voxels.
        let array = MemoryArray::new(&[1 << 63, 1], &[1 << 62, 1]);
        assert_eq!(
            read(&array, None, &[(1 << 62) + 2..(1 << 62) + 5, 0..1]),
            vec![7; 3]
        );
        let cache = ChunkCache::new(1 << 20);
        assert_eq!(read(&array, Some(&cache), &[5..7, 0..1]), vec![7; 2]);
        // Reading a stored one needs it whole: an error, not an abort.
        array.chunks.lock().unwrap().insert(vec![0, 0], Vec::new());
        let mut out = vec![0u8; 4];
        let error = read_region_into(&array, None, MissingChunks::Fill, &[0..2, 0..1], &mut out)
            .unwrap_err();
        assert!(matches!(error, Error::OutOfMemory { .. }), "{error}");
        assert!(
            error.to_string().contains("chunk [0, 0] of memory"),
            "{error}"
        );
    }

    #[test]
    fn copy_box_matches_naive_indexing() {
        let src_shape = [4u64, 5, 6];
        let src: Vec<u16> = (0..120).collect();
        let dst_shape = [3u64, 4, 7];
        let mut dst = vec![0u16; 84];
        // The same 2 x 4 x 4 extent in both.
        let src_sel = [1..3, 0..4, 2..6];
        let dst_sel = [0..2, 0..4, 3..7];
        // SAFETY: both buffers match their shapes and the selections lie inside them.
        unsafe {
            copy_box(
                src.as_ptr().cast(),
                &src_shape,
                &src_sel,
                dst.as_mut_ptr().cast(),
                &dst_shape,
                &dst_sel,
                2,
            );
        }
        for z in 0..2 {
            for y in 0..4 {
                for x in 0..4 {
                    let s = src[((1 + z) * 5 + y) * 6 + 2 + x];
                    let d = dst[(z * 4 + y) * 7 + 3 + x];
                    assert_eq!(s, d);
                }
            }
        }
        assert_eq!(dst.iter().filter(|&&v| v != 0).count(), 32);
    }
}
