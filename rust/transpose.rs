//! Transposing copies: a C-contiguous copy of a strided array under an axis permutation, i.e.
//! `numpy.ascontiguousarray(a.transpose(axes))` without numpy's cache misses.
//!
//! The input is described as numpy describes it: a byte buffer, the offset of element
//! (0, ..., 0), a shape and byte strides of any sign (zero for broadcast axes). Elements are
//! moved as opaque items of 1, 2, 4, 8 or 16 bytes (other sizes byte by byte), so any dtype
//! without object references works, in any byte order.
//!
//! The copy first simplifies the layout (drops length-1 axes, merges neighbours that are
//! contiguous with each other in both input and output), then walks the output in units:
//! - a tile of the input's fastest axis by the output's fastest (last) axis: its input rows are
//!   read and its output rows written in one go each, through two scratch buffers, and the
//!   transposition between them runs in L1-sized blocks of SSE2 register blocks; or,
//! - when one axis is the fastest of both, a run along it (a memcpy when it is contiguous).
//!
//! Units write disjoint parts of the output, so large copies split them into tasks on the
//! per-process pool.

use std::cell::RefCell;
use std::mem::size_of;
use std::ptr;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::thread_pool::thread_pool;

/// Copies smaller than this run on the calling thread: waking the pool would cost more than
/// it saves.
pub const PARALLEL_MIN_BYTES: usize = 1 << 20;
/// Output bytes per parallel task: large enough to amortize scheduling, small enough to balance.
const TASK_BYTES: usize = 256 << 10;
/// Bytes of a tile of items of other sizes than 1, 2, 4, 8 and 16.
const TILE_BYTES: usize = 64 << 10;
/// Tiles whose input rows are shorter than this (a cache line) are copied without scratch.
const SHORT_ROW_BYTES: usize = 64;
/// Bound of the input lines such a tile touches, in bytes.
const SHORT_TILE_FOOTPRINT: usize = 256 << 10;
/// Output bytes of one run along an axis that is fastest in both input and output.
const RUN_BYTES: usize = 64 << 10;

/// A strided array over a byte buffer, as numpy describes one.
#[derive(Debug, Clone, Copy)]
pub struct StridedBytes<'a> {
    /// Memory holding every element.
    pub data: &'a [u8],
    /// Byte offset in `data` of element (0, ..., 0).
    pub offset: usize,
    pub shape: &'a [usize],
    /// Byte step per axis; negative for reversed axes, zero for broadcast ones.
    pub strides: &'a [isize],
    /// Bytes per element.
    pub item_size: usize,
}

/// Normalizes a numpy-style axis permutation for an array of `ndim` axes: negative axes count
/// from the end. Errors name the axes and say what is wrong.
pub fn normalize_axes(axes: &[i64], ndim: usize) -> Result<Vec<usize>> {
    if axes.len() != ndim {
        return Err(Error::InvalidArgument(format!(
            "axes {} don't match an array of dimension {ndim}: give a permutation of range({ndim})",
            tuple_text(axes)
        )));
    }
    let ndim_i = ndim as i64;
    let mut seen = vec![false; ndim];
    let mut normalized = Vec::with_capacity(ndim);
    for &axis in axes {
        if !(-ndim_i..ndim_i).contains(&axis) {
            return Err(Error::InvalidArgument(format!(
                "axis {axis} in axes {} is out of bounds for an array of dimension {ndim}",
                tuple_text(axes)
            )));
        }
        let axis = axis.rem_euclid(ndim_i) as usize;
        if std::mem::replace(&mut seen[axis], true) {
            return Err(Error::InvalidArgument(format!(
                "axis {axis} is repeated in axes {}: give a permutation of range({ndim})",
                tuple_text(axes)
            )));
        }
        normalized.push(axis);
    }
    Ok(normalized)
}

/// The bytes the elements of a strided layout span, relative to element (0, ..., 0):
/// `(before, len)`, where `before` bytes lie below element 0 (reversed axes) and `len` is the
/// whole span. `None` when the array is empty (it touches no memory).
pub fn byte_extent(
    shape: &[usize],
    strides: &[isize],
    item_size: usize,
) -> Result<Option<(usize, usize)>> {
    if shape.len() != strides.len() {
        return Err(Error::InvalidArgument(format!(
            "shape {shape:?} and strides {strides:?} have different numbers of axes"
        )));
    }
    if shape.contains(&0) || item_size == 0 {
        return Ok(None);
    }
    // In i128 each reach fits (below 2^64 * 2^63); only the sums need checking.
    let (mut low, mut high) = (Some(0i128), Some(0i128));
    for (&size, &stride) in shape.iter().zip(strides) {
        let reach = (size as i128 - 1) * stride as i128;
        if reach < 0 {
            low = low.and_then(|low| low.checked_add(reach));
        } else {
            high = high.and_then(|high| high.checked_add(reach));
        }
    }
    let span = low
        .zip(high)
        .map(|(low, high)| (low, high - low + item_size as i128));
    match span.map(|(low, len)| (usize::try_from(-low), usize::try_from(len))) {
        Some((Ok(before), Ok(len))) if len <= isize::MAX as usize => Ok(Some((before, len))),
        _ => Err(Error::InvalidArgument(format!(
            "an array of shape {shape:?} with strides {strides:?} spans more memory than exists"
        ))),
    }
}

/// Writes `src` transposed by `axes` (a permutation, as from `normalize_axes`) into `dst` in C
/// order: output axis `k` is input axis `axes[k]`. `dst` holds exactly the output's bytes.
pub fn transpose_into(src: &StridedBytes<'_>, axes: &[usize], dst: &mut [u8]) -> Result<()> {
    let ndim = src.shape.len();
    let axes_i64: Vec<i64> = axes.iter().map(|&axis| axis as i64).collect();
    let axes = normalize_axes(&axes_i64, ndim)?;
    let extent = byte_extent(src.shape, src.strides, src.item_size)?;
    let count = src
        .shape
        .iter()
        .try_fold(1usize, |n, &size| n.checked_mul(size));
    let bytes = count.and_then(|n| n.checked_mul(src.item_size));
    if bytes != Some(dst.len()) {
        return Err(Error::InvalidArgument(format!(
            "the output has {} bytes, but an array of shape {:?} with {}-byte items needs {}",
            dst.len(),
            src.shape,
            src.item_size,
            bytes.map_or_else(|| "more than exist".to_owned(), |b| b.to_string())
        )));
    }
    let Some((before, len)) = extent else {
        return Ok(()); // empty: nothing to copy
    };
    let inside = src.offset >= before
        && (src.offset - before)
            .checked_add(len)
            .is_some_and(|end| end <= src.data.len());
    if !inside {
        return Err(Error::InvalidArgument(format!(
            "an array of shape {:?} with strides {:?} at byte offset {} reaches outside its \
             buffer of {} bytes",
            src.shape,
            src.strides,
            src.offset,
            src.data.len()
        )));
    }
    let shape: Vec<usize> = axes.iter().map(|&axis| src.shape[axis]).collect();
    let strides: Vec<isize> = axes.iter().map(|&axis| src.strides[axis]).collect();
    let plan = Plan::new(&shape, &strides, src.item_size);
    // SAFETY: the extent check above proves every element of the strided layout lies inside
    // `src.data`, and `dst` holds exactly one item per element; `Plan` only visits elements of
    // the layout.
    let src_origin = unsafe { src.data.as_ptr().add(src.offset) };
    let dst_origin = dst.as_mut_ptr();
    match src.item_size {
        1 => plan.run(Fixed::<u8>::ITEM, src_origin, dst_origin),
        2 => plan.run(Fixed::<u16>::ITEM, src_origin, dst_origin),
        4 => plan.run(Fixed::<u32>::ITEM, src_origin, dst_origin),
        8 => plan.run(Fixed::<u64>::ITEM, src_origin, dst_origin),
        16 => plan.run(Fixed::<u128>::ITEM, src_origin, dst_origin),
        size => plan.run(Bytes(size), src_origin, dst_origin),
    }
}

/// How elements move. Pointers may be unaligned (numpy allows unaligned views).
trait Item: Copy + Send + Sync {
    fn size(self) -> usize;

    /// Copies one element.
    ///
    /// # Safety
    /// `src` must be readable and `dst` writable for `self.size()` bytes.
    unsafe fn copy(self, src: *const u8, dst: *mut u8);

    /// The side of the square blocks `transpose_micro` transposes in registers; 0 for none.
    fn micro_side(self) -> usize {
        0
    }

    /// Transposes one `micro_side()` square block: row `r` at `a + r * a_pitch` becomes
    /// column `r` at `b` (rows `b_pitch` bytes apart).
    ///
    /// # Safety
    /// Both blocks must lie in readable (`a`) and writable (`b`) memory and not overlap.
    unsafe fn transpose_micro(self, a: *const u8, a_pitch: usize, b: *mut u8, b_pitch: usize) {
        let side = self.micro_side();
        // SAFETY: forwarded from the caller.
        unsafe { transpose_scalar(self, a, a_pitch, b, b_pitch, 0..side, 0..side) }
    }
}

/// Transposes the `rows` x `cols` block at `a` (rows `a_pitch` bytes apart) into the `cols` x
/// `rows` block at `b` (rows `b_pitch` bytes apart), in L1-sized blocks of register-sized
/// micro blocks.
///
/// # Safety
/// `a` must be readable and `b` writable for their blocks; they must not overlap.
#[inline]
unsafe fn transpose_tile<I: Item>(
    item: I,
    a: *const u8,
    a_pitch: usize,
    b: *mut u8,
    b_pitch: usize,
    rows: usize,
    cols: usize,
) {
    let size = item.size();
    let micro = item.micro_side();
    // 64 x 64 bytes or 32 x 32 larger items: both blocks fit in L1 together.
    let block = if size <= 2 { 64 } else { 32 };
    for row_start in (0..rows).step_by(block) {
        let row_end = (row_start + block).min(rows);
        for col_start in (0..cols).step_by(block) {
            let col_end = (col_start + block).min(cols);
            if micro == 0 {
                // SAFETY: the ranges lie inside the blocks (caller's guarantee).
                unsafe {
                    let (row_range, col_range) = (row_start..row_end, col_start..col_end);
                    transpose_scalar(item, a, a_pitch, b, b_pitch, row_range, col_range);
                }
                continue;
            }
            let full_row_end = row_start + (row_end - row_start) / micro * micro;
            let full_col_end = col_start + (col_end - col_start) / micro * micro;
            for row in (row_start..full_row_end).step_by(micro) {
                for col in (col_start..full_col_end).step_by(micro) {
                    // SAFETY: the micro block at (row, col) lies inside both blocks.
                    unsafe {
                        let from = a.add(row * a_pitch + col * size);
                        let to = b.add(col * b_pitch + row * size);
                        item.transpose_micro(from, a_pitch, to, b_pitch);
                    }
                }
            }
            // SAFETY: the ragged edges lie inside both blocks.
            unsafe {
                let (rows_done, cols_left) = (row_start..full_row_end, full_col_end..col_end);
                transpose_scalar(item, a, a_pitch, b, b_pitch, rows_done, cols_left);
                let (rows_left, all_cols) = (full_row_end..row_end, col_start..col_end);
                transpose_scalar(item, a, a_pitch, b, b_pitch, rows_left, all_cols);
            }
        }
    }
}

/// The element-by-element transpose of the part `row_range` x `col_range` of the block at `a`
/// (rows `a_pitch` bytes apart) into the block at `b` (rows `b_pitch` bytes apart).
///
/// # Safety
/// As `transpose_tile`; the ranges lie inside the blocks.
#[inline(always)]
unsafe fn transpose_scalar<I: Item>(
    item: I,
    a: *const u8,
    a_pitch: usize,
    b: *mut u8,
    b_pitch: usize,
    row_range: std::ops::Range<usize>,
    col_range: std::ops::Range<usize>,
) {
    let size = item.size();
    for row in row_range {
        for col in col_range.clone() {
            // SAFETY: (row, col) lies inside both blocks (caller's guarantee).
            unsafe {
                item.copy(
                    a.add(row * a_pitch + col * size),
                    b.add(col * b_pitch + row * size),
                )
            };
        }
    }
}

/// Elements of a size a primitive has: one load and one store each, and SSE2 micro blocks
/// for 1- to 8-byte items on x86_64.
#[derive(Clone, Copy)]
struct Fixed<T>(std::marker::PhantomData<T>);

impl<T> Fixed<T> {
    const ITEM: Self = Self(std::marker::PhantomData);
}

impl<T: Copy + Send + Sync> Item for Fixed<T> {
    #[inline(always)]
    fn size(self) -> usize {
        size_of::<T>()
    }

    #[inline(always)]
    unsafe fn copy(self, src: *const u8, dst: *mut u8) {
        // SAFETY: the caller guarantees both ranges; unaligned accesses need no alignment.
        unsafe { ptr::write_unaligned(dst.cast::<T>(), ptr::read_unaligned(src.cast::<T>())) }
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn micro_side(self) -> usize {
        // 16 bytes (one SSE2 register) per row.
        match size_of::<T>() {
            size @ (1 | 2 | 4 | 8) => 16 / size,
            _ => 0,
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn transpose_micro(self, a: *const u8, a_pitch: usize, b: *mut u8, b_pitch: usize) {
        // The match is on a constant and disappears after monomorphization.
        // SAFETY: forwarded from the caller; SSE2 is part of x86_64.
        unsafe {
            match size_of::<T>() {
                1 => simd::transpose_16x16_u8(a, a_pitch, b, b_pitch),
                2 => simd::transpose_8x8_u16(a, a_pitch, b, b_pitch),
                4 => simd::transpose_4x4_u32(a, a_pitch, b, b_pitch),
                8 => simd::transpose_2x2_u64(a, a_pitch, b, b_pitch),
                _ => transpose_scalar(self, a, a_pitch, b, b_pitch, 0..1, 0..1),
            }
        }
    }
}

/// Elements of any other size (e.g. 3-byte strings, 12-byte long doubles): a memcpy each.
#[derive(Clone, Copy)]
struct Bytes(usize);

impl Item for Bytes {
    fn size(self) -> usize {
        self.0
    }

    unsafe fn copy(self, src: *const u8, dst: *mut u8) {
        // SAFETY: the caller guarantees both ranges; input and output never overlap.
        unsafe { ptr::copy_nonoverlapping(src, dst, self.0) }
    }
}

/// SSE2 (always present on x86_64) transposes of register-sized blocks by rounds of unpacks:
/// each round interleaves pairs of vectors at twice the previous width.
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::{
        __m128i, _mm_loadu_si128, _mm_storeu_si128, _mm_unpackhi_epi16, _mm_unpackhi_epi32,
        _mm_unpackhi_epi64, _mm_unpackhi_epi8, _mm_unpacklo_epi16, _mm_unpacklo_epi32,
        _mm_unpacklo_epi64, _mm_unpacklo_epi8,
    };

    /// Transposes a 16 x 16 block of bytes: row `r` of `src` (16 bytes at `src + r * src_row`)
    /// becomes column `r` of `dst` (rows `dst_row` bytes apart).
    ///
    /// # Safety
    /// 16 rows of 16 bytes must be readable at `src` and writable at `dst`.
    #[inline(always)]
    pub(super) unsafe fn transpose_16x16_u8(
        src: *const u8,
        src_row: usize,
        dst: *mut u8,
        dst_row: usize,
    ) {
        // SAFETY: the caller guarantees the 16 rows; SSE2 is part of x86_64; unaligned
        // loads and stores.
        unsafe {
            let r: [__m128i; 16] =
                std::array::from_fn(|i| _mm_loadu_si128(src.add(i * src_row).cast()));
            // Round 1: byte pairs of rows (2k, 2k+1): lo holds columns 0..8, hi 8..16.
            let lo1: [__m128i; 8] =
                std::array::from_fn(|k| _mm_unpacklo_epi8(r[2 * k], r[2 * k + 1]));
            let hi1: [__m128i; 8] =
                std::array::from_fn(|k| _mm_unpackhi_epi8(r[2 * k], r[2 * k + 1]));
            // Round 2: 4-row groups m; q2[m][q] holds columns 4q..4q+4.
            let q2: [[__m128i; 4]; 4] = std::array::from_fn(|m| {
                [
                    _mm_unpacklo_epi16(lo1[2 * m], lo1[2 * m + 1]),
                    _mm_unpackhi_epi16(lo1[2 * m], lo1[2 * m + 1]),
                    _mm_unpacklo_epi16(hi1[2 * m], hi1[2 * m + 1]),
                    _mm_unpackhi_epi16(hi1[2 * m], hi1[2 * m + 1]),
                ]
            });
            // Round 3: 8-row groups o; e3[o][p] holds columns 2p and 2p+1.
            let e3: [[__m128i; 8]; 2] = std::array::from_fn(|o| {
                std::array::from_fn(|p| {
                    let (a, b) = (q2[2 * o][p / 2], q2[2 * o + 1][p / 2]);
                    if p % 2 == 0 {
                        _mm_unpacklo_epi32(a, b)
                    } else {
                        _mm_unpackhi_epi32(a, b)
                    }
                })
            });
            // Round 4: whole columns.
            for (p, (&a, &b)) in e3[0].iter().zip(&e3[1]).enumerate() {
                _mm_storeu_si128(dst.add(2 * p * dst_row).cast(), _mm_unpacklo_epi64(a, b));
                _mm_storeu_si128(
                    dst.add((2 * p + 1) * dst_row).cast(),
                    _mm_unpackhi_epi64(a, b),
                );
            }
        }
    }

    /// Transposes a 4 x 4 block of 4-byte items; strides in bytes, as `transpose_16x16_u8`.
    ///
    /// # Safety
    /// 4 rows of 16 bytes must be readable at `src` and writable at `dst`.
    #[inline(always)]
    pub(super) unsafe fn transpose_4x4_u32(
        src: *const u8,
        src_row: usize,
        dst: *mut u8,
        dst_row: usize,
    ) {
        // SAFETY: as in `transpose_16x16_u8`.
        unsafe {
            let r: [__m128i; 4] =
                std::array::from_fn(|i| _mm_loadu_si128(src.add(i * src_row).cast()));
            let (lo01, hi01) = (
                _mm_unpacklo_epi32(r[0], r[1]),
                _mm_unpackhi_epi32(r[0], r[1]),
            );
            let (lo23, hi23) = (
                _mm_unpacklo_epi32(r[2], r[3]),
                _mm_unpackhi_epi32(r[2], r[3]),
            );
            _mm_storeu_si128(dst.cast(), _mm_unpacklo_epi64(lo01, lo23));
            _mm_storeu_si128(dst.add(dst_row).cast(), _mm_unpackhi_epi64(lo01, lo23));
            _mm_storeu_si128(dst.add(2 * dst_row).cast(), _mm_unpacklo_epi64(hi01, hi23));
            _mm_storeu_si128(dst.add(3 * dst_row).cast(), _mm_unpackhi_epi64(hi01, hi23));
        }
    }

    /// Transposes a 2 x 2 block of 8-byte items; strides in bytes, as `transpose_16x16_u8`.
    ///
    /// # Safety
    /// 2 rows of 16 bytes must be readable at `src` and writable at `dst`.
    #[inline(always)]
    pub(super) unsafe fn transpose_2x2_u64(
        src: *const u8,
        src_row: usize,
        dst: *mut u8,
        dst_row: usize,
    ) {
        // SAFETY: as in `transpose_16x16_u8`.
        unsafe {
            let (r0, r1) = (
                _mm_loadu_si128(src.cast()),
                _mm_loadu_si128(src.add(src_row).cast()),
            );
            _mm_storeu_si128(dst.cast(), _mm_unpacklo_epi64(r0, r1));
            _mm_storeu_si128(dst.add(dst_row).cast(), _mm_unpackhi_epi64(r0, r1));
        }
    }

    /// Transposes an 8 x 8 block of 2-byte items; strides in bytes, as `transpose_16x16_u8`.
    ///
    /// # Safety
    /// 8 rows of 16 bytes must be readable at `src` and writable at `dst`.
    #[inline(always)]
    pub(super) unsafe fn transpose_8x8_u16(
        src: *const u8,
        src_row: usize,
        dst: *mut u8,
        dst_row: usize,
    ) {
        // SAFETY: as in `transpose_16x16_u8`.
        unsafe {
            let r: [__m128i; 8] =
                std::array::from_fn(|i| _mm_loadu_si128(src.add(i * src_row).cast()));
            // Round 1: pairs of rows (2k, 2k+1): lo holds columns 0..4, hi 4..8.
            let lo1: [__m128i; 4] =
                std::array::from_fn(|k| _mm_unpacklo_epi16(r[2 * k], r[2 * k + 1]));
            let hi1: [__m128i; 4] =
                std::array::from_fn(|k| _mm_unpackhi_epi16(r[2 * k], r[2 * k + 1]));
            // Round 2: 4-row groups m; q2[m][p] holds columns 2p and 2p+1.
            let q2: [[__m128i; 4]; 2] = std::array::from_fn(|m| {
                [
                    _mm_unpacklo_epi32(lo1[2 * m], lo1[2 * m + 1]),
                    _mm_unpackhi_epi32(lo1[2 * m], lo1[2 * m + 1]),
                    _mm_unpacklo_epi32(hi1[2 * m], hi1[2 * m + 1]),
                    _mm_unpackhi_epi32(hi1[2 * m], hi1[2 * m + 1]),
                ]
            });
            // Round 3: whole columns.
            for (p, (&a, &b)) in q2[0].iter().zip(&q2[1]).enumerate() {
                _mm_storeu_si128(dst.add(2 * p * dst_row).cast(), _mm_unpacklo_epi64(a, b));
                _mm_storeu_si128(
                    dst.add((2 * p + 1) * dst_row).cast(),
                    _mm_unpackhi_epi64(a, b),
                );
            }
        }
    }
}

/// A raw pointer that tasks may share: each unit writes (or reads) only its own elements.
#[derive(Clone, Copy)]
struct Shared<P>(P);
// SAFETY: the pointers are only dereferenced for disjoint units of a copy whose buffers outlive
// the parallel loop (it joins before `Plan::run` returns).
unsafe impl<P> Send for Shared<P> {}
// SAFETY: as above.
unsafe impl<P> Sync for Shared<P> {}

impl<P: Copy> Shared<P> {
    /// By method, so closures capture the wrapper (Send) rather than the bare pointer field.
    fn get(self) -> P {
        self.0
    }
}

/// The walk over a simplified layout: a grid of units, C order over the output.
#[derive(Debug)]
struct Plan {
    shape: Vec<usize>,
    /// Input byte strides per output axis.
    src_strides: Vec<isize>,
    /// Output byte strides (C order).
    dst_strides: Vec<usize>,
    /// Units per axis: tiles on `fast` and the last axis, single indices elsewhere.
    grid: Vec<usize>,
    /// The input's fastest axis (smallest non-zero stride), tiled by `tile_fast`.
    fast: usize,
    tile_fast: usize,
    /// Tile (or run) length on the last axis.
    tile_last: usize,
    units: usize,
    item_size: usize,
}

impl Plan {
    /// Plans the copy of a non-empty layout (output axis order) into a C-order output.
    fn new(shape: &[usize], strides: &[isize], item_size: usize) -> Self {
        let (mut shape, mut src_strides) = simplify(shape, strides);
        if shape.is_empty() {
            // A single element: one run of length one.
            shape.push(1);
            src_strides.push(item_size as isize);
        }
        let ndim = shape.len();
        let last = ndim - 1;
        let mut dst_strides = vec![item_size; ndim];
        for axis in (0..last).rev() {
            dst_strides[axis] = dst_strides[axis + 1] * shape[axis + 1];
        }
        // Ties go to the last axis: a run is cheaper than a tile.
        let fast = (0..ndim)
            .rev()
            .filter(|&axis| src_strides[axis] != 0)
            .min_by_key(|&axis| src_strides[axis].unsigned_abs())
            .unwrap_or(last);
        let (tile_fast, tile_last) = if fast == last {
            (1, shape[last].min((RUN_BYTES / item_size).max(1)))
        } else {
            // Square tiles of 32 to 128 KiB (sides measured on 256^3 volumes): rows of 256
            // bytes or more are read and written as bursts of whole cache lines, and both
            // scratch copies of a tile fit in L2. A short fast axis gets a longer last axis, so
            // that a tile still moves as many bytes.
            let side = match item_size {
                1 => 256,
                2 | 4 | 8 => 128,
                16 => 64,
                _ => (TILE_BYTES / item_size).isqrt().clamp(1, 64),
            };
            let (mut tile_fast, mut tile_last) = (shape[fast].min(side), shape[last].min(side));
            // The rows a tile reads (along `fast`) or writes (along `last`) are shorter than a
            // cache line when that axis is short; such rows are re-visited once per element of
            // the other axis (see `copy_unit`), so the lines they touch must stay in L2.
            let short_lines =
                |axis_stride: usize| (SHORT_TILE_FOOTPRINT / axis_stride.clamp(1, 64)).max(side);
            if tile_fast < side {
                tile_last = shape[last].min(side * side / tile_fast);
                if tile_fast * item_size < SHORT_ROW_BYTES {
                    tile_last = tile_last.min(short_lines(src_strides[last].unsigned_abs()));
                }
            } else if tile_last < side {
                tile_fast = shape[fast].min(side * side / tile_last);
                if tile_last * item_size < SHORT_ROW_BYTES {
                    tile_fast = tile_fast.min(short_lines(dst_strides[fast]));
                }
            }
            (tile_fast, tile_last)
        };
        let grid: Vec<usize> = (0..ndim)
            .map(|axis| match axis {
                _ if axis == last => shape[axis].div_ceil(tile_last),
                _ if axis == fast => shape[axis].div_ceil(tile_fast),
                _ => shape[axis],
            })
            .collect();
        let units = grid.iter().product();
        Self {
            shape,
            src_strides,
            dst_strides,
            grid,
            fast,
            tile_fast,
            tile_last,
            units,
            item_size,
        }
    }

    /// Copies every unit, in parallel when the output is large.
    fn run<I: Item>(&self, item: I, src: *const u8, dst: *mut u8) -> Result<()> {
        let total_bytes = self.shape.iter().product::<usize>() * self.item_size;
        let unit_bytes = self.tile_fast * self.tile_last * self.item_size;
        let units_per_task = (TASK_BYTES / unit_bytes).max(1);
        let tasks = self.units.div_ceil(units_per_task);
        let pool = thread_pool()?;
        let copy_units = |units: std::ops::Range<usize>, src: *const u8, dst: *mut u8| {
            with_scratch(self.scratch_bytes(), |scratch| {
                for unit in units.clone() {
                    // SAFETY: `run`'s caller guarantees the layout (see `transpose_into`);
                    // units write disjoint output elements, so parallel tasks never write the
                    // same byte.
                    unsafe { self.copy_unit(item, unit, src, dst, scratch) };
                }
            });
        };
        if total_bytes < PARALLEL_MIN_BYTES || tasks < 2 || pool.current_num_threads() < 2 {
            copy_units(0..self.units, src, dst);
            return Ok(());
        }
        let (src, dst) = (Shared(src), Shared(dst));
        pool.install(|| {
            (0..tasks).into_par_iter().for_each(|task| {
                let end = ((task + 1) * units_per_task).min(self.units);
                copy_units(task * units_per_task..end, src.get(), dst.get());
            });
        });
        Ok(())
    }

    /// Bytes of the two scratch buffers of a tile, `tile_in` then `tile_out` (none for runs).
    fn scratch_bytes(&self) -> usize {
        if self.fast == self.shape.len() - 1 {
            return 0;
        }
        let (in_pitch, out_pitch) = self.pitches();
        self.tile_last * in_pitch + self.tile_fast * out_pitch
    }

    /// Copies unit number `unit` (C order over `grid`).
    ///
    /// # Safety
    /// Every element of the planned layout must be readable from `src` (element 0) and the
    /// whole C-order output writable at `dst`.
    #[inline]
    unsafe fn copy_unit<I: Item>(
        &self,
        item: I,
        unit: usize,
        src: *const u8,
        dst: *mut u8,
        scratch: &mut [u8],
    ) {
        let last = self.shape.len() - 1;
        let (mut rest, mut src_offset, mut dst_offset) = (unit, 0isize, 0usize);
        let (mut len_fast, mut len_last) = (1, 1);
        for axis in (0..=last).rev() {
            let coordinate = rest % self.grid[axis];
            rest /= self.grid[axis];
            let index = if axis == last {
                let start = coordinate * self.tile_last;
                len_last = self.tile_last.min(self.shape[axis] - start);
                start
            } else if axis == self.fast {
                let start = coordinate * self.tile_fast;
                len_fast = self.tile_fast.min(self.shape[axis] - start);
                start
            } else {
                coordinate
            };
            src_offset += index as isize * self.src_strides[axis];
            dst_offset += index * self.dst_strides[axis];
        }
        // SAFETY: the offsets are of an element of the layout (caller's guarantee).
        let (src, dst) = unsafe { (src.offset(src_offset), dst.add(dst_offset)) };
        let src_last = self.src_strides[last];
        let size = item.size();
        if self.fast == last {
            if src_last == size as isize {
                // SAFETY: a run of `len_last` contiguous elements in both buffers.
                unsafe { ptr::copy_nonoverlapping(src, dst, len_last * size) };
            } else {
                for j in 0..len_last {
                    // SAFETY: element j of the run, inside the layout.
                    unsafe { item.copy(src.offset(j as isize * src_last), dst.add(j * size)) };
                }
            }
            return;
        }
        let src_fast = self.src_strides[self.fast];
        let dst_fast = self.dst_strides[self.fast];
        if len_fast * size < SHORT_ROW_BYTES {
            // Input rows shorter than a cache line (de-interleaving channels, say): each output
            // row is written in order straight from the input, whose lines are re-read from
            // cache for the next output row.
            for i in 0..len_fast {
                // SAFETY: row i of the tile, in the layout and in the output.
                let (from, to) =
                    unsafe { (src.offset(i as isize * src_fast), dst.add(i * dst_fast)) };
                for j in 0..len_last {
                    // SAFETY: element (i, j) of the tile, in the layout and in the output.
                    unsafe { item.copy(from.offset(j as isize * src_last), to.add(j * size)) };
                }
            }
            return;
        }
        if len_last * size < SHORT_ROW_BYTES {
            // Output rows shorter than a cache line (interleaving channels): the mirror image,
            // each input row read in order, its elements scattered into the output lines.
            for j in 0..len_last {
                // SAFETY: column j of the tile, in the layout and in the output.
                let (from, to) = unsafe { (src.offset(j as isize * src_last), dst.add(j * size)) };
                for i in 0..len_fast {
                    // SAFETY: element (i, j) of the tile, in the layout and in the output.
                    unsafe { item.copy(from.offset(i as isize * src_fast), to.add(i * dst_fast)) };
                }
            }
            return;
        }
        // A tile goes through scratch buffers, so that each input and output row (at strides
        // that are often powers of two, which map to the same cache sets) is touched once, in
        // one go: the tile is gathered transposed into `tile_out` (len_fast x len_last) — by
        // copying contiguous input rows into `tile_in` (len_last x len_fast) and transposing
        // that in blocks where a SIMD kernel exists, else element by element — and the rows of
        // `tile_out` are then written out.
        let (in_pitch, out_pitch) = self.pitches();
        let (tile_in, tile_out) = scratch.split_at_mut(self.tile_last * in_pitch);
        let (tile_in, tile_out) = (tile_in.as_mut_ptr(), tile_out.as_mut_ptr());
        let (in_row, out_row) = (len_fast * size, len_last * size);
        if item.micro_side() > 0 && src_fast == size as isize {
            for j in 0..len_last {
                // SAFETY: input row j of the tile lies inside the layout and is contiguous;
                // `tile_in` holds `len_last` rows `in_pitch` apart (sized for a full tile).
                unsafe {
                    ptr::copy_nonoverlapping(
                        src.offset(j as isize * src_last),
                        tile_in.add(j * in_pitch),
                        in_row,
                    );
                }
            }
            // SAFETY: both scratch buffers hold the tile, in their orientations.
            unsafe {
                transpose_tile(
                    item, tile_in, in_pitch, tile_out, out_pitch, len_last, len_fast,
                )
            };
        } else {
            for j in 0..len_last {
                // SAFETY: input row j of the tile lies inside the layout; column j of
                // `tile_out` (len_fast rows `out_pitch` apart) lies inside the scratch.
                unsafe {
                    let (from, to) = (src.offset(j as isize * src_last), tile_out.add(j * size));
                    for i in 0..len_fast {
                        item.copy(from.offset(i as isize * src_fast), to.add(i * out_pitch));
                    }
                }
            }
        }
        for i in 0..len_fast {
            // SAFETY: output row i of the tile lies inside the output; `tile_out` holds it.
            unsafe {
                ptr::copy_nonoverlapping(
                    tile_out.add(i * out_pitch),
                    dst.add(i * dst_fast),
                    out_row,
                )
            };
        }
    }

    /// Row pitches in bytes of the two scratch buffers (`tile_in`, `tile_out`): a tile row,
    /// plus a cache line when rows are a multiple of 256 bytes, so that the rows of an L1 block
    /// spread over the cache sets instead of competing for a few.
    fn pitches(&self) -> (usize, usize) {
        let pitch = |row: usize| if row % 256 == 0 { row + 64 } else { row };
        (
            pitch(self.tile_fast * self.item_size),
            pitch(self.tile_last * self.item_size),
        )
    }
}

thread_local! {
    /// Tile scratch of this thread, kept from one copy to the next: allocating and zeroing it
    /// for every task cost about as much as the copy itself. At most a few hundred KiB.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `bytes` bytes of this thread's scratch.
fn with_scratch<R>(bytes: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => {
            if scratch.len() < bytes {
                scratch.resize(bytes, 0);
            }
            f(&mut scratch[..bytes])
        }
        // Already in use further up this thread's stack: a private buffer.
        Err(_) => f(&mut vec![0; bytes]),
    })
}

/// Drops length-1 axes and merges each axis into its predecessor when the predecessor's stride
/// is exactly one step over it (the pair then walks like one axis, in input and in C output).
fn simplify(shape: &[usize], strides: &[isize]) -> (Vec<usize>, Vec<isize>) {
    let mut out_shape: Vec<usize> = Vec::with_capacity(shape.len());
    let mut out_strides: Vec<isize> = Vec::with_capacity(shape.len());
    for (&size, &stride) in shape.iter().zip(strides) {
        if size == 1 {
            continue;
        }
        if let (Some(prev_size), Some(prev_stride)) = (out_shape.last_mut(), out_strides.last_mut())
        {
            if *prev_stride as i128 == stride as i128 * size as i128 {
                *prev_size *= size;
                *prev_stride = stride;
                continue;
            }
        }
        out_shape.push(size);
        out_strides.push(stride);
    }
    (out_shape, out_strides)
}

/// `values` as Python prints a tuple: `(1, 2)`, `(1,)`, `()`.
fn tuple_text(values: &[i64]) -> String {
    match values {
        [single] => format!("({single},)"),
        _ => {
            let items: Vec<String> = values.iter().map(i64::to_string).collect();
            format!("({})", items.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The oracle: element by element, in C order of the output.
    fn naive(src: &StridedBytes<'_>, axes: &[usize]) -> Vec<u8> {
        let shape: Vec<usize> = axes.iter().map(|&a| src.shape[a]).collect();
        let strides: Vec<isize> = axes.iter().map(|&a| src.strides[a]).collect();
        let count: usize = shape.iter().product();
        let mut out = Vec::with_capacity(count * src.item_size);
        for flat in 0..count {
            let (mut rest, mut offset) = (flat, src.offset as isize);
            for axis in (0..shape.len()).rev() {
                offset += (rest % shape[axis]) as isize * strides[axis];
                rest /= shape[axis];
            }
            let offset = offset as usize;
            out.extend_from_slice(&src.data[offset..offset + src.item_size]);
        }
        out
    }

    fn check(src: &StridedBytes<'_>, axes: &[usize]) {
        let expected = naive(src, axes);
        let mut got = vec![0u8; expected.len()];
        transpose_into(src, axes, &mut got).unwrap();
        assert!(
            got == expected,
            "shape {:?} strides {:?} axes {axes:?} item {}",
            src.shape,
            src.strides,
            src.item_size
        );
    }

    fn c_strides(shape: &[usize], item_size: usize) -> Vec<isize> {
        let mut strides = vec![item_size as isize; shape.len()];
        for axis in (0..shape.len().saturating_sub(1)).rev() {
            strides[axis] = strides[axis + 1] * shape[axis + 1] as isize;
        }
        strides
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for rest in permutations(n - 1) {
            for position in 0..=rest.len() {
                let mut p = rest.clone();
                p.insert(position, n - 1);
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn every_permutation_and_item_size_of_c_arrays() {
        // Below, at and beyond the SIMD micro blocks (16 bytes a side), the L1 blocks (32 or
        // 64 items) and the tiles (64 to 256 items), with ragged edges.
        let shapes: [&[usize]; 8] = [
            &[5, 70],
            &[16, 16],
            &[37, 83],
            &[48, 128],
            &[300, 270],
            &[3, 66, 9],
            &[2, 3, 4, 5],
            &[1, 65, 1, 7],
        ];
        for shape in shapes {
            for item_size in [1, 2, 3, 4, 8, 16] {
                let strides = c_strides(shape, item_size);
                let count: usize = shape.iter().product();
                let data = pattern(count * item_size);
                let src = StridedBytes {
                    data: &data,
                    offset: 0,
                    shape,
                    strides: &strides,
                    item_size,
                };
                for axes in permutations(shape.len()) {
                    check(&src, &axes);
                }
            }
        }
    }

    #[test]
    fn fortran_reversed_offset_and_broadcast_layouts() {
        let data = pattern(64 * 1024);
        // Fortran order, (20, 30, 40) u16.
        check(
            &StridedBytes {
                data: &data,
                offset: 0,
                shape: &[20, 30, 40],
                strides: &[2, 40, 1200],
                item_size: 2,
            },
            &[2, 1, 0],
        );
        // Reversed axes (negative strides) from an offset in the middle of the buffer.
        let shape = [17, 33, 5];
        let strides = [-(33 * 5 * 4), 5 * 4, -4];
        let offset = 16 * 33 * 5 * 4 + 4 * 4 + 100;
        for axes in permutations(3) {
            check(
                &StridedBytes {
                    data: &data,
                    offset,
                    shape: &shape,
                    strides: &strides,
                    item_size: 4,
                },
                &axes,
            );
        }
        // A broadcast axis (stride 0) and a strided, unaligned view.
        for axes in permutations(3) {
            check(
                &StridedBytes {
                    data: &data,
                    offset: 3,
                    shape: &[4, 70, 9],
                    strides: &[0, 24, 2],
                    item_size: 2,
                },
                &axes,
            );
        }
    }

    #[test]
    fn large_copies_run_in_parallel_and_match() {
        let shape = [64, 160, 130];
        for item_size in [1, 2, 8] {
            let strides = c_strides(&shape, item_size);
            let data = pattern(shape.iter().product::<usize>() * item_size);
            assert!(data.len() >= PARALLEL_MIN_BYTES);
            let src = StridedBytes {
                data: &data,
                offset: 0,
                shape: &shape,
                strides: &strides,
                item_size,
            };
            for axes in permutations(3) {
                check(&src, &axes);
            }
        }
        // Already contiguous after the permutation: one (parallel) memcpy.
        let data = pattern(3 << 20);
        check(
            &StridedBytes {
                data: &data,
                offset: 0,
                shape: &[3 << 20],
                strides: &[1],
                item_size: 1,
            },
            &[0],
        );
    }

    #[test]
    fn empty_scalar_and_length_one_axes() {
        let data = pattern(64);
        let mut out = Vec::new();
        let src = StridedBytes {
            data: &[],
            offset: 0,
            shape: &[3, 0, 2],
            strides: &[0, 8, 4],
            item_size: 4,
        };
        transpose_into(&src, &[2, 0, 1], &mut out).unwrap();
        check(
            &StridedBytes {
                data: &data,
                offset: 5,
                shape: &[],
                strides: &[],
                item_size: 8,
            },
            &[],
        );
        check(
            &StridedBytes {
                data: &data,
                offset: 1,
                shape: &[1, 1],
                strides: &[999, -999],
                item_size: 2,
            },
            &[1, 0],
        );
    }

    #[test]
    fn normalize_axes_accepts_negatives_and_names_bad_axes() {
        assert_eq!(normalize_axes(&[-1, 0, 1], 3).unwrap(), vec![2, 0, 1]);
        let message = |axes: &[i64], ndim| normalize_axes(axes, ndim).unwrap_err().to_string();
        assert!(message(&[0, 1], 3).contains("axes (0, 1) don't match an array of dimension 3"));
        assert!(message(&[0, 3, 1], 3).contains("axis 3 in axes (0, 3, 1) is out of bounds"));
        assert!(message(&[0, -4, 1], 3).contains("axis -4"));
        assert!(message(&[1, -1], 2).contains("axis 1 is repeated in axes (1, -1)"));
    }

    #[test]
    fn bad_layouts_are_errors_not_reads_outside_the_buffer() {
        let data = pattern(100);
        let src = StridedBytes {
            data: &data,
            offset: 0,
            shape: &[10, 11],
            strides: &[10, 1],
            item_size: 1,
        };
        let mut out = vec![0; 110];
        let err = transpose_into(&src, &[1, 0], &mut out)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("reaches outside its buffer of 100 bytes"),
            "{err}"
        );
        let src = StridedBytes {
            data: &data,
            offset: 0,
            shape: &[10, 10],
            strides: &[-10, 1],
            item_size: 1,
        };
        assert!(transpose_into(&src, &[1, 0], &mut [0; 100]).is_err());
        let src = StridedBytes {
            data: &data,
            offset: 0,
            shape: &[10, 10],
            strides: &[10, 1],
            item_size: 1,
        };
        let err = transpose_into(&src, &[1, 0], &mut [0; 99])
            .unwrap_err()
            .to_string();
        assert!(err.contains("the output has 99 bytes"), "{err}");
        assert!(transpose_into(&src, &[0, 0], &mut [0; 100]).is_err());
        // Strides that would overflow any address computation.
        let huge = [usize::MAX / 2; 64];
        let strides = [isize::MAX; 64];
        let err = byte_extent(&huge, &strides, 1).unwrap_err().to_string();
        assert!(err.contains("spans more memory than exists"), "{err}");
    }
}
