//! Sharded zarr v3 arrays (`sharding_indexed`): inner chunks read through a cached shard index,
//! shards written whole.
//!
//! A shard is one stored value holding encoded inner chunks and an index of `(offset, nbytes)` per inner
//! chunk (`u64::MAX` twice for an absent one), encoded by its own codecs (usually `bytes` and
//! `crc32c`) at the start or the end of the value.
//!
//! Reads fetch the inner chunk's byte range on the condition that the shard is still the
//! version its cached index was read from (a file's size, modification time and inode; an
//! object's ETag), so a shard replaced by any writer is re-indexed: index and data always come
//! from the same version of the shard. A warm read is one ranged read.
//!
//! Writes group the region by shard; each touched shard is rebuilt once: untouched inner chunks
//! keep their encoded bytes, touched ones are encoded (partial ones read-modify-write), and the
//! new value replaces the old whole. Shards are written in parallel, and so are the inner
//! chunks of one shard.

use std::borrow::Cow;
use std::num::{NonZeroU64, NonZeroUsize};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;
use rayon::prelude::*;
use zarrs::array::{
    ArrayBytes, ArrayToBytesCodecTraits, BytesRepresentation, CodecChain, CodecOptions,
    DataType as ZarrsDataType, FillValue,
};
use zarrs::metadata_ext::codec::sharding::{ShardingCodecConfigurationV1, ShardingIndexLocation};

use super::codec::{ChunkCodec, DecodeError};
use super::pipeline::{produce_and_store, Stored};
use super::{with_scratch, ZarrArray};
use crate::buffer;
use crate::chunked::{copy_box, fill_box, ChunkSelection, Prefetched, RegionChunks};
use crate::error::{Error, Result};
use crate::storage::{ByteRange, Fetched, Version};
use crate::thread_pool;

/// How many bytes of decoded shard indexes an array keeps.
const INDEX_CACHE_BYTES: usize = 64 << 20;
const ABSENT: u64 = u64::MAX;
/// The most inner chunks a shard may hold: its index (16 bytes per inner chunk, 256 MiB here)
/// is read whole to find any one of them.
pub(super) const MAX_INNER_CHUNKS: u64 = 1 << 24;

/// A shard index as read: the shard's version, the entries, the shard's length.
type IndexRead = (Version, Arc<Vec<u64>>, u64);

struct CachedIndex {
    version: Version,
    /// The shard's length.
    total_len: u64,
    /// `offset, nbytes` per inner chunk, C order.
    entries: Arc<Vec<u64>>,
}

/// The sharding configuration of an array and its cache of shard indexes.
pub(super) struct ShardLayout {
    pub(super) shard_shape: Vec<u64>,
    /// Inner chunks per shard, per axis.
    chunks_per_shard: Vec<u64>,
    pub(super) inner: ChunkCodec,
    index_chain: Arc<CodecChain>,
    /// `chunks_per_shard` plus a trailing 2.
    index_shape: Vec<NonZeroU64>,
    /// Bytes of the encoded index.
    index_nbytes: u64,
    index_at_start: bool,
    index_options: CodecOptions,
    /// One element of the fill value, native byte order.
    fill_bytes: Vec<u8>,
    cache: Mutex<LruCache<Vec<u64>, CachedIndex>>,
}

impl ShardLayout {
    pub(super) fn new(
        config: &ShardingCodecConfigurationV1,
        shard_shape: Vec<u64>,
        data_type: ZarrsDataType,
        fill_value: FillValue,
        itemsize: usize,
    ) -> std::result::Result<Self, String> {
        let inner_shape: Vec<u64> = config.chunk_shape.iter().map(|n| n.get()).collect();
        if inner_shape.len() != shard_shape.len()
            || shard_shape
                .iter()
                .zip(&inner_shape)
                .any(|(&s, &c)| s % c != 0)
        {
            return Err(format!(
                "the shard shape {shard_shape:?} is not a multiple of the inner chunk shape \
                 {inner_shape:?}"
            ));
        }
        let chunks_per_shard: Vec<u64> = shard_shape
            .iter()
            .zip(&inner_shape)
            .map(|(&s, &c)| s / c)
            .collect();
        if buffer::element_count(&chunks_per_shard).is_none_or(|n| n > MAX_INNER_CHUNKS) {
            return Err(format!(
                "shards of {shard_shape:?} hold {chunks_per_shard:?} inner chunks of \
                 {inner_shape:?}, more than the {MAX_INNER_CHUNKS} a shard index may list here"
            ));
        }
        let fill_bytes = fill_value.as_ne_bytes().to_vec();
        let inner_chain = CodecChain::from_metadata(&config.codecs)
            .map_err(|e| format!("sharding_indexed inner codecs: {e}"))?;
        let inner = ChunkCodec::new(
            Arc::new(inner_chain),
            &inner_shape,
            data_type,
            fill_value,
            itemsize,
        )?;
        let index_chain = CodecChain::from_metadata(&config.index_codecs)
            .map_err(|e| format!("sharding_indexed index codecs: {e}"))?;
        let index_shape = chunks_per_shard
            .iter()
            .chain(&[2])
            .map(|&n| NonZeroU64::new(n))
            .collect::<Option<Vec<NonZeroU64>>>()
            .ok_or_else(|| format!("shard shape {shard_shape:?} has a 0"))?;
        let index_nbytes = match index_chain
            .encoded_representation(&index_shape, &index_data_type(), &index_fill_value())
            .map_err(|e| format!("sharding_indexed index codecs: {e}"))?
        {
            BytesRepresentation::FixedSize(n) => n,
            _ => return Err("the shard index codecs do not have a fixed size".to_string()),
        };
        let num_inner: u64 = chunks_per_shard.iter().product();
        let entries_per_shard = usize::try_from(num_inner.saturating_mul(16)).unwrap_or(usize::MAX);
        let capacity = (INDEX_CACHE_BYTES / entries_per_shard.max(1)).max(16);
        Ok(ShardLayout {
            shard_shape,
            chunks_per_shard,
            inner,
            index_chain: Arc::new(index_chain),
            index_shape,
            index_nbytes,
            index_at_start: config.index_location == ShardingIndexLocation::Start,
            index_options: CodecOptions::default().with_concurrent_target(1),
            fill_bytes,
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::MIN.saturating_add(capacity - 1),
            )),
        })
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<Vec<u64>, CachedIndex>> {
        // Every update is one call on the map, so a poisoned lock still guards a sound map.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn clear_cache(&self) {
        self.lock().clear();
    }

    fn num_inner(&self) -> usize {
        self.chunks_per_shard.iter().product::<u64>() as usize
    }

    /// The shard holding inner chunk `chunk`, and the inner chunk's position in the shard
    /// (C order).
    fn locate(&self, chunk: &[u64]) -> (Vec<u64>, usize) {
        let shard = chunk
            .iter()
            .zip(&self.chunks_per_shard)
            .map(|(c, n)| c / n)
            .collect();
        let position = chunk
            .iter()
            .zip(&self.chunks_per_shard)
            .fold(0u64, |acc, (c, n)| acc * n + c % n);
        (shard, position as usize)
    }

    /// The grid coordinates of the inner chunk at `position` of shard `shard`.
    fn inner_coords(&self, shard: &[u64], position: usize) -> Vec<u64> {
        let mut rest = position as u64;
        let mut coords = vec![0; shard.len()];
        for axis in (0..shard.len()).rev() {
            let n = self.chunks_per_shard[axis];
            coords[axis] = shard[axis] * n + rest % n;
            rest /= n;
        }
        coords
    }

    /// Decodes an encoded shard index.
    fn decode_index(&self, encoded: &[u8]) -> std::result::Result<Vec<u64>, String> {
        let decoded = self
            .index_chain
            .decode(
                Cow::Borrowed(encoded),
                &self.index_shape,
                &index_data_type(),
                &index_fill_value(),
                &self.index_options,
            )
            .map_err(|e| format!("shard index: {e}"))?;
        let ArrayBytes::Fixed(bytes) = decoded else {
            return Err("shard index: not fixed-length data".to_string());
        };
        if bytes.len() != self.num_inner() * 16 {
            return Err(format!("shard index: decoded to {} bytes", bytes.len()));
        }
        Ok(bytes
            .chunks_exact(8)
            .map(|b| {
                let mut entry = [0u8; 8];
                entry.copy_from_slice(b);
                u64::from_ne_bytes(entry)
            })
            .collect())
    }

    /// Decodes a whole shard (`encoded`, as stored) into `out`, the shard's full region in
    /// native byte order: for a sharding codec nested in a longer codec chain.
    pub(super) fn decode_shard(&self, encoded: &[u8], out: &mut [u8]) -> Result<(), DecodeError> {
        let len = encoded.len() as u64;
        let range = self.index_range(len)?;
        let entries = self.decode_index(&encoded[range.start as usize..range.end as usize])?;
        let inner_shape = self.inner.shape();
        let mut scratch = Vec::new();
        scratch
            .try_reserve_exact(self.inner.nbytes())
            .map_err(|_| DecodeError::OutOfMemory(self.inner.nbytes()))?;
        scratch.resize(self.inner.nbytes(), 0);
        let origin = vec![0; self.shard_shape.len()];
        for position in 0..self.num_inner() {
            let coords = self.inner_coords(&origin, position);
            let selection: Vec<Range<u64>> = coords
                .iter()
                .zip(&inner_shape)
                .map(|(&c, &n)| c * n..(c + 1) * n)
                .collect();
            match self.entry(&entries, position, len)? {
                // SAFETY: `out` holds the shard (`shard_shape`, checked by the caller); the
                // selection is one inner chunk of it (the shard shape is a multiple of the
                // inner shape); `out` is exclusively borrowed.
                None => unsafe {
                    fill_box(
                        out.as_mut_ptr(),
                        &self.shard_shape,
                        &selection,
                        &self.fill_bytes,
                    );
                },
                Some(chunk) => {
                    let bytes = &encoded[chunk.start as usize..chunk.end as usize];
                    self.inner
                        .decode_into(bytes, &mut scratch)
                        .map_err(|e| match e {
                            DecodeError::Corrupt(reason) => {
                                DecodeError::Corrupt(format!("inner chunk {coords:?}: {reason}"))
                            }
                            other => other,
                        })?;
                    let whole: Vec<Range<u64>> = inner_shape.iter().map(|&n| 0..n).collect();
                    // SAFETY: `scratch` holds one inner chunk, `out` the shard; the selections
                    // are that chunk and its place in the shard.
                    unsafe {
                        copy_box(
                            scratch.as_ptr(),
                            &inner_shape,
                            &whole,
                            out.as_mut_ptr(),
                            &self.shard_shape,
                            &selection,
                            self.fill_bytes.len(),
                        );
                    }
                }
            }
        }
        Ok(())
    }

    fn encode_index(&self, entries: &[u64]) -> std::result::Result<Vec<u8>, String> {
        let bytes: Vec<u8> = entries.iter().flat_map(|e| e.to_ne_bytes()).collect();
        let encoded = self
            .index_chain
            .encode(
                ArrayBytes::new_flen(Cow::Owned(bytes)),
                &self.index_shape,
                &index_data_type(),
                &index_fill_value(),
                &self.index_options,
            )
            .map_err(|e| format!("shard index: {e}"))?;
        if encoded.len() as u64 != self.index_nbytes {
            return Err(format!(
                "shard index encoded to {} bytes, expected {}",
                encoded.len(),
                self.index_nbytes
            ));
        }
        Ok(encoded.into_owned())
    }

    /// Where the index sits in a shard of `len` bytes; an error if the shard is too short.
    fn index_range(&self, len: u64) -> std::result::Result<Range<u64>, String> {
        if len < self.index_nbytes {
            return Err(format!(
                "shard of {len} bytes is shorter than its index ({} bytes)",
                self.index_nbytes
            ));
        }
        Ok(if self.index_at_start {
            0..self.index_nbytes
        } else {
            len - self.index_nbytes..len
        })
    }

    /// The byte range of inner chunk `position`, `None` when it is absent; an error when the
    /// entry does not fit a shard of `len` bytes.
    fn entry(
        &self,
        entries: &[u64],
        position: usize,
        len: u64,
    ) -> std::result::Result<Option<Range<u64>>, String> {
        let (offset, nbytes) = (entries[2 * position], entries[2 * position + 1]);
        if offset == ABSENT && nbytes == ABSENT {
            return Ok(None);
        }
        let index = self.index_range(len)?;
        let data = if self.index_at_start {
            index.end..len
        } else {
            0..index.start
        };
        match offset.checked_add(nbytes) {
            Some(end) if offset >= data.start && end <= data.end => Ok(Some(offset..end)),
            _ => Err(format!(
                "shard index entry (offset {offset}, {nbytes} bytes) lies outside the \
                 {len}-byte shard"
            )),
        }
    }

    /// The cached index of shard `shard`: its version, its entries and the shard's length.
    fn cached_index(&self, shard: &[u64]) -> Option<IndexRead> {
        self.lock().get(shard).map(|cached| {
            (
                cached.version.clone(),
                Arc::clone(&cached.entries),
                cached.total_len,
            )
        })
    }

    /// The index of the stored shard `key`, read from the store (and cached); `None` when the
    /// shard does not exist, `Err` with the reason when it is damaged.
    fn read_index(
        &self,
        store: &dyn crate::storage::Store,
        key: &str,
        shard: &[u64],
    ) -> Result<Option<std::result::Result<IndexRead, String>>> {
        let range = if self.index_at_start {
            ByteRange::Bounded(0..self.index_nbytes)
        } else {
            ByteRange::Suffix(self.index_nbytes)
        };
        let (encoded, total_len, version) = match store.get_range(key, range, None) {
            Ok(Fetched::Bytes {
                bytes,
                total_len,
                version,
            }) => (bytes, total_len, version),
            Ok(Fetched::Missing) => return Ok(None),
            Ok(Fetched::Changed) => unreachable!("no version was asked for"),
            // A shard too short for its index (a local read past the end).
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(Some(Err(format!(
                    "the shard is shorter than its index ({} bytes)",
                    self.index_nbytes
                ))))
            }
            Err(e) => return Err(e),
        };
        if let Err(reason) = self.index_range(total_len) {
            return Ok(Some(Err(reason)));
        }
        let entries = match self.decode_index(&encoded) {
            Ok(entries) => Arc::new(entries),
            Err(reason) => return Ok(Some(Err(reason))),
        };
        self.lock().put(
            shard.to_vec(),
            CachedIndex {
                version: version.clone(),
                total_len,
                entries: Arc::clone(&entries),
            },
        );
        Ok(Some(Ok((version, entries, total_len))))
    }
}

/// Byte ranges of one shard closer than this are fetched in one read (as `object_store`'s
/// `get_ranges` coalesces): a request costs more than a megabyte of bytes in between.
const COALESCE_GAP: u64 = 1 << 20;

/// The spans to read for `ranges` (`None`: nothing to read): sorted, overlapping or close ones
/// merged.
fn coalesce(ranges: &[Option<Range<u64>>]) -> Vec<Range<u64>> {
    let mut sorted: Vec<Range<u64>> = ranges.iter().flatten().cloned().collect();
    sorted.sort_by_key(|r| r.start);
    let mut spans: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for range in sorted {
        match spans.last_mut() {
            Some(last) if range.start <= last.end.saturating_add(COALESCE_GAP) => {
                last.end = last.end.max(range.end);
            }
            _ => spans.push(range),
        }
    }
    spans
}

/// Each range's bytes out of the fetched span holding it (`None` stays `None`).
fn cut_spans(
    ranges: &[Option<Range<u64>>],
    spans: &[Range<u64>],
    fetched: &[Vec<u8>],
) -> Vec<Option<Vec<u8>>> {
    ranges
        .iter()
        .map(|range| {
            let range = range.as_ref()?;
            let (span, bytes) = spans
                .iter()
                .zip(fetched)
                .find(|(span, _)| span.start <= range.start && range.end <= span.end)?;
            let start = (range.start - span.start) as usize;
            Some(bytes[start..start + (range.end - range.start) as usize].to_vec())
        })
        .collect()
}

fn index_data_type() -> ZarrsDataType {
    zarrs::array::data_type::uint64()
}

fn index_fill_value() -> FillValue {
    FillValue::from(ABSENT)
}

/// What the region write does with one inner chunk of a shard.
enum Slot<'a> {
    Absent,
    /// Kept from the old shard.
    Old(&'a [u8]),
    /// Newly encoded.
    New(Vec<u8>),
}

impl ZarrArray {
    /// The encoded bytes of the inner chunks `chunks` (all in shard `shard`), `None` for one
    /// that is not stored. Their byte ranges are coalesced (gaps up to [`COALESCE_GAP`]) into
    /// few ranged reads, each on the condition that the shard is the version its index was
    /// read from. With `fetch` false, only whether each is stored (`Some(empty)`).
    fn inner_chunks_bytes(
        &self,
        layout: &ShardLayout,
        shard: &[u64],
        chunks: &[Vec<u64>],
        fetch: bool,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let key = self.stored_chunk_key(shard);
        let in_shard = |chunk: &[u64], reason: String| {
            self.corrupt(chunk, format!("in shard {shard:?}: {reason}"))
        };
        let first = chunks.first().map_or(&[][..], Vec::as_slice);
        let remote = self.store.is_remote();
        if !fetch && remote {
            // No ranged read validates a cached index here: the index is read afresh.
            layout.lock().pop(shard);
        }
        // A shard replaced between reading its index and its chunks is re-indexed; one being
        // replaced over and over by writers is an error after a few attempts.
        let wants_most = fetch && 2 * chunks.len() >= layout.num_inner();
        'attempt: for _ in 0..4 {
            let cached = match layout.cached_index(shard) {
                Some(cached) => cached,
                // Most of a shard not indexed yet: one read of the whole shard, not one of its
                // index and then its chunks (a request costs more than a few unread bytes).
                None if wants_most && remote => {
                    return self.whole_shard_chunks(layout, shard, chunks)
                }
                None => match layout.read_index(self.store.as_ref(), &key, shard)? {
                    None => return Ok(vec![None; chunks.len()]),
                    Some(Err(reason)) => return Err(in_shard(first, reason)),
                    Some(Ok(read)) => read,
                },
            };
            let (version, entries, total_len) = cached;
            let ranges = self.chunk_ranges(layout, shard, chunks, &entries, total_len)?;
            if !fetch {
                if !remote {
                    // The cached index is checked against the file (an empty ranged read).
                    let check = ByteRange::Bounded(0..0);
                    match self.store.get_range(&key, check, Some(&version))? {
                        Fetched::Bytes { .. } => {}
                        Fetched::Missing => {
                            layout.lock().pop(shard);
                            return Ok(vec![None; chunks.len()]);
                        }
                        Fetched::Changed => {
                            layout.lock().pop(shard);
                            continue 'attempt;
                        }
                    }
                }
                return Ok(ranges
                    .iter()
                    .map(|r| r.as_ref().map(|_| Vec::new()))
                    .collect());
            }
            let spans = coalesce(&ranges);
            let mut fetched = Vec::with_capacity(spans.len());
            for span in &spans {
                let requested = ByteRange::Bounded(span.clone());
                match self.store.get_range(&key, requested, Some(&version))? {
                    Fetched::Bytes { bytes, .. } if bytes.len() as u64 == span.end - span.start => {
                        fetched.push(bytes)
                    }
                    Fetched::Bytes { bytes, .. } => {
                        return Err(in_shard(
                            first,
                            format!("bytes {span:?} of the shard read as {} bytes", bytes.len()),
                        ))
                    }
                    Fetched::Missing => {
                        layout.lock().pop(shard);
                        return Ok(vec![None; chunks.len()]);
                    }
                    Fetched::Changed => {
                        layout.lock().pop(shard);
                        continue 'attempt;
                    }
                }
            }
            return Ok(cut_spans(&ranges, &spans, &fetched));
        }
        Err(in_shard(
            first,
            "the shard kept changing while it was read (replaced by another writer)".to_string(),
        ))
    }

    /// The byte ranges of the inner chunks `chunks` of shard `shard` in its `entries` (the
    /// shard holding `total_len` bytes), checked; `None` for an absent chunk.
    fn chunk_ranges(
        &self,
        layout: &ShardLayout,
        shard: &[u64],
        chunks: &[Vec<u64>],
        entries: &[u64],
        total_len: u64,
    ) -> Result<Vec<Option<Range<u64>>>> {
        chunks
            .iter()
            .map(|chunk| {
                let (_, position) = layout.locate(chunk);
                let range = layout
                    .entry(entries, position, total_len)
                    .map_err(|reason| {
                        self.corrupt(chunk, format!("in shard {shard:?}: {reason}"))
                    })?;
                if let Some(range) = &range {
                    let len = range.end - range.start;
                    if len > layout.inner.max_encoded_len() {
                        return Err(self.corrupt(
                            chunk,
                            format!(
                                "its shard index gives it {len} bytes, more than any encoding \
                                 of a {}-byte chunk",
                                layout.inner.nbytes()
                            ),
                        ));
                    }
                }
                Ok(range)
            })
            .collect()
    }

    /// The inner chunks `chunks` out of one read of the whole shard `shard`.
    fn whole_shard_chunks(
        &self,
        layout: &ShardLayout,
        shard: &[u64],
        chunks: &[Vec<u64>],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let key = self.stored_chunk_key(shard);
        let first = chunks.first().map_or(&[][..], Vec::as_slice);
        let in_shard =
            |reason: String| self.corrupt(first, format!("in shard {shard:?}: {reason}"));
        let max_len = (layout.num_inner() as u64)
            .saturating_mul(layout.inner.max_encoded_len())
            .saturating_add(layout.index_nbytes);
        let too_long = |len| {
            in_shard(format!(
                "the shard holds {len} bytes, more than a valid shard can"
            ))
        };
        let Some(bytes) = self.store.get(&key, max_len, &too_long)? else {
            return Ok(vec![None; chunks.len()]);
        };
        let total_len = bytes.len() as u64;
        let index = layout.index_range(total_len).map_err(&in_shard)?;
        let entries = layout
            .decode_index(&bytes[index.start as usize..index.end as usize])
            .map_err(&in_shard)?;
        let ranges = self.chunk_ranges(layout, shard, chunks, &entries, total_len)?;
        let whole = 0..total_len;
        Ok(cut_spans(&ranges, std::slice::from_ref(&whole), &[bytes]))
    }

    /// The encoded bytes of inner chunk `chunk` (see [`ZarrArray::inner_chunks_bytes`]).
    fn inner_chunk_bytes(
        &self,
        layout: &ShardLayout,
        chunk: &[u64],
        fetch: bool,
    ) -> Result<Option<Vec<u8>>> {
        let (shard, _) = layout.locate(chunk);
        let mut bytes = self.inner_chunks_bytes(layout, &shard, &[chunk.to_vec()], fetch)?;
        Ok(bytes.pop().flatten())
    }

    /// The encoded inner chunks `chunks`, fetched shard by shard, the shards in parallel on
    /// the I/O pool.
    pub(super) fn prefetch_inner_chunks(
        &self,
        layout: &ShardLayout,
        chunks: &[Vec<u64>],
    ) -> Result<Prefetched> {
        let mut by_shard: std::collections::BTreeMap<Vec<u64>, Vec<Vec<u64>>> =
            std::collections::BTreeMap::new();
        for chunk in chunks {
            by_shard
                .entry(layout.locate(chunk).0)
                .or_default()
                .push(chunk.clone());
        }
        let shards: Vec<(Vec<u64>, Vec<Vec<u64>>)> = by_shard.into_iter().collect();
        let fetched = thread_pool::io_thread_pool()?.install(|| {
            shards
                .par_iter()
                .map(|(shard, chunks)| self.inner_chunks_bytes(layout, shard, chunks, true))
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(shards
            .into_iter()
            .zip(fetched)
            .flat_map(|((_, chunks), bytes)| chunks.into_iter().zip(bytes))
            .collect())
    }

    pub(super) fn read_inner_chunk(
        &self,
        layout: &ShardLayout,
        chunk: &[u64],
        region: &[Range<u64>],
        out: &mut [u8],
    ) -> Result<bool> {
        let Some(encoded) = self.inner_chunk_bytes(layout, chunk, true)? else {
            return Ok(false);
        };
        self.decode_clipped(&layout.inner, chunk, &encoded, region, out)?;
        Ok(true)
    }

    pub(super) fn inner_chunk_exists(&self, layout: &ShardLayout, chunk: &[u64]) -> Result<bool> {
        Ok(self.inner_chunk_bytes(layout, chunk, false)?.is_some())
    }

    /// Writes `data` into `region` (both checked by the caller), rewriting each touched shard
    /// once.
    pub(super) fn write_region_sharded(
        &self,
        layout: &ShardLayout,
        region: &[Range<u64>],
        data: &[u8],
    ) -> Result<()> {
        let shards = RegionChunks::new(region, &self.shape, &layout.shard_shape)?;
        produce_and_store(self.store.as_ref(), shards.len(), |index| {
            self.produce_shard(layout, &shards.get(index), region, data)
        })
    }

    /// The new content of the shard `shard` of a write of `data` into `region`.
    fn produce_shard(
        &self,
        layout: &ShardLayout,
        shard: &ChunkSelection,
        region: &[Range<u64>],
        data: &[u8],
    ) -> Result<Stored> {
        let itemsize = self.dtype.size();
        let shard_coords = &shard.chunk_coords;
        let key = self.stored_chunk_key(shard_coords);
        // The part of the shard the region covers, in array coordinates.
        let touched: Vec<Range<u64>> = shard
            .chunk_region
            .iter()
            .zip(&shard.chunk_selection)
            .map(|(r, s)| r.start + s.start..r.start + s.end)
            .collect();
        let inner = RegionChunks::new(&touched, &self.shape, &self.chunk_shape)?;
        // Inner chunks of this shard that overlap the array (the others are never stored).
        let in_array: usize = shard
            .chunk_region
            .iter()
            .zip(&self.chunk_shape)
            .map(|(r, &c)| (r.end - r.start).div_ceil(c) as usize)
            .product();
        let whole = inner.len() == in_array && inner.all_complete();
        let old = if whole {
            None
        } else {
            // No valid shard is longer than its index and every inner chunk at its longest.
            let max_len = (layout.num_inner() as u64)
                .saturating_mul(layout.inner.max_encoded_len())
                .saturating_add(layout.index_nbytes);
            let too_long = |len| {
                self.corrupt(
                    &inner.coords(0),
                    format!(
                        "shard {shard_coords:?}, which this write updates, holds {len} bytes, \
                         more than a valid shard can"
                    ),
                )
            };
            self.store.get(&key, max_len, &too_long)?
        };
        let old_entries = match &old {
            Some(bytes) => {
                let range = layout.index_range(bytes.len() as u64);
                let index = range.and_then(|range| {
                    layout.decode_index(&bytes[range.start as usize..range.end as usize])
                });
                Some(index.map_err(|reason| {
                    self.corrupt(
                        &inner.coords(0),
                        format!("in shard {shard_coords:?}, which this write updates: {reason}"),
                    )
                })?)
            }
            None => None,
        };
        // The old bytes of the inner chunk at `position`.
        let old_chunk = |position: usize| -> Result<Option<&[u8]>> {
            let (Some(bytes), Some(entries)) = (&old, &old_entries) else {
                return Ok(None);
            };
            let range = layout
                .entry(entries, position, bytes.len() as u64)
                .map_err(|reason| {
                    self.corrupt(
                        &layout.inner_coords(shard_coords, position),
                        format!("in shard {shard_coords:?}: {reason}"),
                    )
                })?;
            Ok(range.map(|r| &bytes[r.start as usize..r.end as usize]))
        };

        let mut slots: Vec<Slot> = buffer::with_capacity(layout.num_inner(), || {
            format!("rewriting shard {shard_coords:?} of {}", self.describe)
        })?;
        for position in 0..layout.num_inner() {
            slots.push(match old_chunk(position)? {
                Some(bytes) => Slot::Old(bytes),
                None => Slot::Absent,
            });
        }
        let data_shape: Vec<u64> = region.iter().map(|r| r.end - r.start).collect();
        let full_shape = layout.inner.shape();
        let encode_one = |selection: &ChunkSelection| -> Result<(usize, Slot)> {
            let (_, position) = layout.locate(&selection.chunk_coords);
            let chunk = &selection.chunk_coords;
            let purpose = || format!("writing chunk {chunk:?} of {}", self.describe);
            with_scratch(layout.inner.nbytes(), purpose, |buffer| {
                match old_chunk(position)? {
                    Some(encoded) if !selection.is_complete_chunk() => layout
                        .inner
                        .decode_into(encoded, buffer)
                        .map_err(|e| self.decode_error(chunk, e))?,
                    _ => self.fill(buffer),
                }
                // The selection relative to the whole region being written.
                let source: Vec<Range<u64>> = selection
                    .out_selection
                    .iter()
                    .zip(touched.iter().zip(region))
                    .map(|(s, (t, r))| s.start + t.start - r.start..s.end + t.start - r.start)
                    .collect();
                // SAFETY: `data` holds the region (checked by the caller), `buffer` a full
                // inner chunk; `source` lies in the region and `chunk_selection` in the chunk's
                // clipped region, which starts at the chunk's origin; `buffer` is this thread's
                // scratch.
                unsafe {
                    copy_box(
                        data.as_ptr(),
                        &data_shape,
                        &source,
                        buffer.as_mut_ptr(),
                        &full_shape,
                        &selection.chunk_selection,
                        itemsize,
                    );
                }
                if !self.write_empty_chunks && self.is_fill(buffer) {
                    return Ok((position, Slot::Absent));
                }
                let encoded = self.encode(&layout.inner, chunk, buffer)?.into_owned();
                Ok((position, Slot::New(encoded)))
            })
        };
        // On this process's pool (rayon's global pool is not rebuilt in a forked child), also
        // when this shard is the only one written and this is the caller's thread.
        let updated: Vec<(usize, Slot)> = if inner.len() == 1 {
            vec![encode_one(&inner.get(0))?]
        } else {
            thread_pool::install(|| {
                (0..inner.len())
                    .into_par_iter()
                    .map(|index| encode_one(&inner.get(index)))
                    .collect::<Result<Vec<_>>>()
            })??
        };
        for (position, slot) in updated {
            slots[position] = slot;
        }

        layout.lock().pop(shard_coords);
        if slots.iter().all(|slot| matches!(slot, Slot::Absent)) {
            return Ok(Stored { key, bytes: None });
        }
        let body_len: usize = slots
            .iter()
            .map(|slot| match slot {
                Slot::Absent => 0,
                Slot::Old(bytes) => bytes.len(),
                Slot::New(bytes) => bytes.len(),
            })
            .sum();
        let index_nbytes = layout.index_nbytes as usize;
        let purpose = || format!("rewriting shard {shard_coords:?} of {}", self.describe);
        let mut entries = buffer::with_capacity(2 * layout.num_inner(), purpose)?;
        entries.resize(2 * layout.num_inner(), ABSENT);
        let mut file = buffer::with_capacity(body_len.saturating_add(index_nbytes), purpose)?;
        if layout.index_at_start {
            // A placeholder, replaced by the index once the offsets are known.
            file.resize(index_nbytes, 0);
        }
        for (position, slot) in slots.iter().enumerate() {
            let bytes: &[u8] = match slot {
                Slot::Absent => continue,
                Slot::Old(bytes) => bytes,
                Slot::New(bytes) => bytes,
            };
            entries[2 * position] = file.len() as u64;
            entries[2 * position + 1] = bytes.len() as u64;
            file.extend_from_slice(bytes);
        }
        let index = layout
            .encode_index(&entries)
            .map_err(|reason| Error::Metadata {
                path: self.describe.clone(),
                reason: format!("cannot encode the index of shard {shard_coords:?}: {reason}"),
            })?;
        if layout.index_at_start {
            file[..index_nbytes].copy_from_slice(&index);
        } else {
            file.extend_from_slice(&index);
        }
        Ok(Stored {
            key,
            bytes: Some(file),
        })
    }
}
