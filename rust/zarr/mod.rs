//! Native zarr arrays (v2, v3 and sharded v3) in any [`Store`] (a local folder, a zip file, an
//! object store), on the `zarrs` crate.
//!
//! zarrs parses the metadata (zarr-python, tensorstore and zarrs output) and provides the codec
//! chains; the chunk I/O is ours, so that a chunk decodes straight into the caller's buffer,
//! a missing chunk is told apart from a stored one, errors name the chunk, and every write
//! replaces a whole value ([`Store::put`]: atomic on disk, one PUT on object stores). The read and write granularity ([`ChunkedArray`]'s
//! chunk) is the chunk of an unsharded array and the inner chunk of a sharded one; shard
//! indexes are cached per array and revalidated against the shard's version on every read.

mod codec;
mod create;
mod pipeline;
mod shard;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::sync::Arc;

use serde_json::{Map, Value};
use zarrs::array::{Array, ArrayMetadata};
use zarrs::metadata::v2::ArrayMetadataV2;
use zarrs::metadata_ext::codec::sharding::ShardingCodecConfiguration;
use zarrs::storage::store::MemoryStore;

use crate::buffer;
use crate::chunked::{
    check_region, copy_box, region_bytes, ChunkSelection, ChunkedArray, Prefetched, RegionChunks,
};
use crate::dtype::DataType;
use crate::error::{Error, Result};
use crate::metadata_json::{read_object_at, Members};
use crate::storage::{join_key, LocalStore, Store};

use codec::{ChunkCodec, DecodeError};
use pipeline::{produce_and_store, Stored};
use shard::ShardLayout;

pub use create::{
    list_zarr_arrays, list_zarr_arrays_in, BloscCompressor, BloscShuffle, FillScalar,
    ZarrCompression, ZarrCreate,
};

/// One zarr array (v2 or v3, optionally sharded) in a store.
pub struct ZarrArray {
    store: Arc<dyn Store>,
    key: String,
    describe: String,
    /// The parsed metadata and codecs; zarrs' own I/O is not used (its store holds nothing).
    array: Array<MemoryStore>,
    zarr_format: u8,
    shape: Vec<u64>,
    dtype: DataType,
    fill_value: Vec<u8>,
    /// The read/write granularity: the chunk, or the inner chunk of a sharded array.
    chunk_shape: Vec<u64>,
    layout: Layout,
    write_empty_chunks: bool,
}

enum Layout {
    /// One stored value per chunk.
    Chunked(Box<ChunkCodec>),
    /// One stored value per shard, holding inner chunks and an index.
    Sharded(Box<ShardLayout>),
}

impl std::fmt::Debug for ZarrArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrArray")
            .field("path", &self.describe)
            .field("zarr_format", &self.zarr_format)
            .field("shape", &self.shape)
            .field("dtype", &self.dtype)
            .field("chunk_shape", &self.chunk_shape)
            .field("shard_shape", &self.shard_shape())
            .finish_non_exhaustive()
    }
}

/// The components of a key such as `"a/b/c"`; `""` (or `"/"`) is the root.
pub(crate) fn key_components(key: &str) -> Result<Vec<&str>> {
    let components: Vec<&str> = key.split('/').filter(|c| !c.is_empty()).collect();
    if let Some(bad) = components.iter().find(|c| **c == "." || **c == "..") {
        return Err(Error::InvalidArgument(format!(
            "zarr key {key:?} contains {bad:?}; keys are paths below the store root"
        )));
    }
    Ok(components)
}

/// A zarr node's `zarr.json` with only `node_type` parsed (user attributes are not read),
/// `None` when it does not exist.
pub(crate) fn read_node_type(store: &dyn Store, node: &str) -> Result<Option<Option<String>>> {
    let metadata = read_object_at(
        store,
        &join_key(node, "zarr.json"),
        Members::Only(&["node_type"]),
    )?;
    Ok(metadata.map(|m| {
        m.get("node_type")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }))
}

/// The v2 `fill_value` in `metadata` replaced by the integer (or bool) it equals when it is an
/// integral float of an integer or bool array; anything else is left for zarrs to judge.
///
/// z5py writes every zarr v2 array with a float fill value (`"fill_value": 0.0` for `<u2`);
/// zarr-python and bioimage-py 0.2 read it as the integer, zarrs refuses it. A fractional or
/// out-of-range value is left for zarrs to refuse.
fn integral_v2_fill_value(metadata: &mut Map<String, Value>) {
    // The first floats past i64::MAX and u64::MAX.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    let fill = match metadata.get("fill_value") {
        Some(value) if value.is_f64() => value.as_f64().unwrap_or(f64::NAN),
        _ => return, // an integer, a string (NaN, Infinity), null: zarrs decides
    };
    if !fill.is_finite() || fill.fract() != 0.0 {
        return;
    }
    let kind = metadata
        .get("dtype")
        .and_then(Value::as_str)
        .and_then(|dtype| dtype.chars().nth(1));
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // range checked
    let replacement = match kind {
        Some('u') if (0.0..TWO_POW_64).contains(&fill) => Value::from(fill as u64),
        Some('i') if (-TWO_POW_63..TWO_POW_63).contains(&fill) => Value::from(fill as i64),
        Some('b') if fill == 0.0 || fill == 1.0 => Value::from(fill == 1.0),
        _ => return,
    };
    metadata.insert("fill_value".to_string(), replacement);
}

/// A v2 complex array's `"fill_value": null` (no fill value, which zarr-python reads as zeros,
/// as zarrs does for the other types) replaced by `[0.0, 0.0]`, the one form zarrs takes.
fn complex_v2_null_fill_value(metadata: &mut Map<String, Value>) {
    let complex = metadata
        .get("dtype")
        .and_then(Value::as_str)
        .is_some_and(|dtype| dtype.chars().nth(1) == Some('c'));
    if complex && metadata.get("fill_value").is_some_and(Value::is_null) {
        metadata.insert("fill_value".to_string(), serde_json::json!([0.0, 0.0]));
    }
}

/// The array metadata of the zarr node in `dir`: `zarr.json` (v3, which takes precedence, as
/// in zarrs and zarr-python) or `.zarray` (v2). User attributes are neither parsed nor needed,
/// so however they are nested, the array opens. Every problem is an error naming the file.
fn read_array_metadata(store: &dyn Store, node: &str) -> Result<ArrayMetadata> {
    let v3_path = join_key(node, "zarr.json");
    let invalid = |key: &str, reason: String| Error::Metadata {
        path: store.url(key),
        reason,
    };
    if let Some(mut members) = read_object_at(store, &v3_path, Members::AllBut(&["attributes"]))? {
        match members.get("node_type").and_then(Value::as_str) {
            Some("array") => {}
            Some("group") => {
                return Err(invalid(node, "is a zarr group, not an array".to_string()))
            }
            _ => {
                return Err(invalid(
                    &v3_path,
                    format!(
                        "node_type {} is not \"array\" or \"group\"",
                        members.get("node_type").unwrap_or(&Value::Null)
                    ),
                ))
            }
        }
        members.insert("attributes".to_string(), Value::Object(Map::new()));
        return serde_json::from_value(Value::Object(members))
            .map(ArrayMetadata::V3)
            .map_err(|e| invalid(&v3_path, format!("invalid zarr v3 array metadata: {e}")));
    }
    let v2_path = join_key(node, ".zarray");
    let Some(mut members) = read_object_at(store, &v2_path, Members::All)? else {
        return Err(invalid(
            node,
            "no zarr array here (neither zarr.json nor .zarray)".to_string(),
        ));
    };
    integral_v2_fill_value(&mut members);
    complex_v2_null_fill_value(&mut members);
    serde_json::from_value::<ArrayMetadataV2>(Value::Object(members))
        .map(ArrayMetadata::V2)
        .map_err(|e| invalid(&v2_path, format!("invalid zarr v2 array metadata: {e}")))
}

/// Our type for a zarrs data type, `None` for the ones native arrays do not support.
fn native_dtype(data_type: &zarrs::array::DataType) -> Option<DataType> {
    use zarrs::array::data_type::{
        BoolDataType, Complex128DataType, Complex64DataType, Float16DataType, Float32DataType,
        Float64DataType, Int16DataType, Int32DataType, Int64DataType, Int8DataType, UInt16DataType,
        UInt32DataType, UInt64DataType, UInt8DataType,
    };
    let table: [(bool, DataType); 14] = [
        (data_type.is::<BoolDataType>(), DataType::Bool),
        (data_type.is::<Int8DataType>(), DataType::Int8),
        (data_type.is::<Int16DataType>(), DataType::Int16),
        (data_type.is::<Int32DataType>(), DataType::Int32),
        (data_type.is::<Int64DataType>(), DataType::Int64),
        (data_type.is::<UInt8DataType>(), DataType::UInt8),
        (data_type.is::<UInt16DataType>(), DataType::UInt16),
        (data_type.is::<UInt32DataType>(), DataType::UInt32),
        (data_type.is::<UInt64DataType>(), DataType::UInt64),
        (data_type.is::<Float16DataType>(), DataType::Float16),
        (data_type.is::<Float32DataType>(), DataType::Float32),
        (data_type.is::<Float64DataType>(), DataType::Float64),
        (data_type.is::<Complex64DataType>(), DataType::Complex64),
        (data_type.is::<Complex128DataType>(), DataType::Complex128),
    ];
    table
        .into_iter()
        .find(|(is, _)| *is)
        .map(|(_, dtype)| dtype)
}

/// The chunk shape of a regular chunk grid.
fn regular_chunk_shape(array: &Array<MemoryStore>) -> std::result::Result<Vec<u64>, String> {
    let metadata = array.chunk_grid().metadata();
    if metadata.name() != "regular" {
        return Err(format!(
            "chunk grid {:?} is not supported (only \"regular\")",
            metadata.name()
        ));
    }
    let value = serde_json::to_value(&metadata).map_err(|e| e.to_string())?;
    value
        .pointer("/configuration/chunk_shape")
        .and_then(Value::as_array)
        .and_then(|shape| {
            shape
                .iter()
                .map(Value::as_u64)
                .collect::<Option<Vec<u64>>>()
        })
        .ok_or_else(|| format!("regular chunk grid without a chunk shape: {value}"))
}

impl ZarrArray {
    /// Opens the zarr array (v2 or v3) at `key` (`""` for a root array) of the store in the
    /// local folder `root`.
    pub fn open(root: &std::path::Path, key: &str) -> Result<Self> {
        Self::open_in(Arc::new(LocalStore::new(root)), key)
    }

    /// Opens the zarr array (v2 or v3) at `key` (`""` for a root array) of `store`.
    pub fn open_in(store: Arc<dyn Store>, key: &str) -> Result<Self> {
        let key = key_components(key)?.join("/");
        let describe = store.url(&key);
        let metadata = read_array_metadata(store.as_ref(), &key)?;
        let node = format!("/{key}");
        // zarrs validates the metadata; a panic on some absurd value would be a bug there, and
        // is reported as invalid metadata rather than taking the process down.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Array::new_with_metadata(Arc::new(MemoryStore::new()), &node, metadata)
        }))
        .map_err(|_| Error::Metadata {
            path: describe.clone(),
            reason: "the metadata cannot be interpreted (the zarrs crate panicked on it)"
                .to_string(),
        })?;
        let array = opened.map_err(|e| Error::Metadata {
            path: describe.clone(),
            reason: e.to_string(),
        })?;
        Self::from_array(store, key, describe, array)
    }

    fn from_array(
        store: Arc<dyn Store>,
        key: String,
        describe: String,
        array: Array<MemoryStore>,
    ) -> Result<Self> {
        let bad = |reason: String| Error::Metadata {
            path: describe.clone(),
            reason,
        };
        let dtype = native_dtype(array.data_type()).ok_or_else(|| {
            bad(format!(
                "unsupported data type {}; native zarr arrays support {}",
                array.data_type(),
                DataType::ALL.map(DataType::name).join(", ")
            ))
        })?;
        let itemsize = dtype.size();
        let fill_value = array.fill_value().as_ne_bytes().to_vec();
        if fill_value.len() != itemsize {
            return Err(bad(format!(
                "fill value of {} bytes for data type {}",
                fill_value.len(),
                dtype.name()
            )));
        }
        let shape = array.shape().to_vec();
        crate::chunked::check_shape(&shape).map_err(&bad)?;
        let grid_chunk_shape = regular_chunk_shape(&array).map_err(&bad)?;
        if grid_chunk_shape.len() != shape.len() || grid_chunk_shape.contains(&0) {
            return Err(bad(format!(
                "chunk shape {grid_chunk_shape:?} does not fit array shape {shape:?}"
            )));
        }
        let (zarr_format, sharding) = match array.metadata() {
            ArrayMetadata::V2(_) => (2, None),
            ArrayMetadata::V3(metadata) => {
                if !metadata.storage_transformers.is_empty() {
                    return Err(bad("storage transformers are not supported".to_string()));
                }
                let sharding = match metadata.codecs.as_slice() {
                    [codec] if codec.name() == "sharding_indexed" => Some(
                        codec
                            .to_configuration::<ShardingCodecConfiguration>()
                            .map_err(|e| bad(format!("sharding_indexed configuration: {e}")))?,
                    ),
                    _ => None,
                };
                (3, sharding)
            }
        };
        let (chunk_shape, layout) = match sharding {
            Some(ShardingCodecConfiguration::V1(config)) => {
                let layout = ShardLayout::new(
                    &config,
                    grid_chunk_shape,
                    array.data_type().clone(),
                    array.fill_value().clone(),
                    itemsize,
                )
                .map_err(&bad)?;
                (layout.inner.shape(), Layout::Sharded(Box::new(layout)))
            }
            Some(_) => {
                return Err(bad(
                    "unsupported sharding_indexed configuration version".to_string()
                ))
            }
            // Sharding inside other codecs (or none) reads and writes whole chunks.
            None => {
                let codec = ChunkCodec::new(
                    array.codecs(),
                    &grid_chunk_shape,
                    array.data_type().clone(),
                    array.fill_value().clone(),
                    itemsize,
                )
                .map_err(&bad)?;
                (grid_chunk_shape, Layout::Chunked(Box::new(codec)))
            }
        };
        Ok(ZarrArray {
            store,
            key,
            describe,
            array,
            zarr_format,
            shape,
            dtype,
            fill_value,
            chunk_shape,
            layout,
            write_empty_chunks: false,
        })
    }

    /// The store this array was opened from.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The array's key below the root (`""` for a root array).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// 2 or 3.
    pub fn zarr_format(&self) -> u8 {
        self.zarr_format
    }

    /// Whether a written chunk that holds only the fill value is stored, or (the default, as
    /// zarr-python, tensorstore and zarrs do) deleted: it reads the same, and a mostly empty
    /// volume writes and stores far fewer files. Arrays later read with missing chunks as
    /// errors should be written with empty chunks stored, so that every written chunk exists.
    pub fn write_empty_chunks(&self) -> bool {
        self.write_empty_chunks
    }

    pub fn set_write_empty_chunks(&mut self, write_empty_chunks: bool) {
        self.write_empty_chunks = write_empty_chunks;
    }

    /// Forgets the cached shard indexes (they are revalidated on every read anyway).
    pub fn clear_shard_index_cache(&self) {
        if let Layout::Sharded(layout) = &self.layout {
            layout.clear_cache();
        }
    }

    /// The file (or URL) of stored chunk (shard) `chunk`, for tests that damage it.
    #[cfg(test)]
    fn stored_chunk_file(&self, chunk: &[u64]) -> std::path::PathBuf {
        std::path::PathBuf::from(self.store.url(&self.stored_chunk_key(chunk)))
    }

    /// The store key of stored chunk (shard) `chunk` of the zarr chunk grid.
    fn stored_chunk_key(&self, chunk: &[u64]) -> String {
        let key = self.array.chunk_key(chunk);
        key.as_str().trim_start_matches('/').to_owned()
    }

    fn corrupt(&self, chunk: &[u64], reason: impl Into<String>) -> Error {
        Error::CorruptChunk {
            array: self.describe.clone(),
            chunk: chunk.to_vec(),
            reason: reason.into(),
        }
    }

    /// The region of chunk `chunk` clipped to the array, checking the coordinates.
    fn chunk_region(&self, chunk: &[u64]) -> Result<Vec<Range<u64>>> {
        crate::chunked::chunk_region(&self.shape, &self.chunk_shape, chunk, &|| {
            self.describe.clone()
        })
    }

    /// The error for a chunk that could not be decoded.
    fn decode_error(&self, chunk: &[u64], error: DecodeError) -> Error {
        match error {
            DecodeError::Corrupt(reason) => self.corrupt(chunk, reason),
            DecodeError::OutOfMemory(bytes) => Error::out_of_memory(
                bytes,
                format!("decoding chunk {chunk:?} of {}", self.describe),
            ),
        }
    }

    fn check_buffer(&self, chunk: &[u64], region: &[Range<u64>], len: usize) -> Result<()> {
        let expected = region_bytes(region, self.dtype.size());
        if len == expected {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "buffer of {len} bytes for chunk {chunk:?} of {}, which holds {expected} bytes",
                self.describe
            )))
        }
    }

    /// Decodes a stored (inner) chunk into `out`, its region clipped to the array.
    fn decode_clipped(
        &self,
        codec: &ChunkCodec,
        chunk: &[u64],
        encoded: &[u8],
        region: &[Range<u64>],
        out: &mut [u8],
    ) -> Result<()> {
        let full_shape = codec.shape();
        let clipped: Vec<u64> = region.iter().map(|r| r.end - r.start).collect();
        if clipped == full_shape {
            return codec
                .decode_into(encoded, out)
                .map_err(|e| self.decode_error(chunk, e));
        }
        let purpose = || format!("decoding chunk {chunk:?} of {}", self.describe);
        with_scratch(codec.nbytes(), purpose, |full| {
            codec
                .decode_into(encoded, full)
                .map_err(|e| self.decode_error(chunk, e))?;
            let selection: Vec<Range<u64>> = clipped.iter().map(|&n| 0..n).collect();
            // SAFETY: `full` holds a full chunk, `out` the clipped one (checked by the caller);
            // the selection is the clipped extent, inside both.
            unsafe {
                copy_box(
                    full.as_ptr(),
                    &full_shape,
                    &selection,
                    out.as_mut_ptr(),
                    &clipped,
                    &selection,
                    self.dtype.size(),
                );
            }
            Ok(())
        })
    }

    /// Fills `buffer` with the fill value.
    fn fill(&self, buffer: &mut [u8]) {
        if self.fill_value.iter().all(|&b| b == 0) {
            buffer.fill(0);
        } else {
            buffer
                .chunks_exact_mut(self.fill_value.len())
                .for_each(|element| element.copy_from_slice(&self.fill_value));
        }
    }

    /// Whether `data` holds only the fill value.
    fn is_fill(&self, data: &[u8]) -> bool {
        if self.fill_value.iter().all(|&b| b == 0) {
            // OR-folds vectorize; stop at the first block with a non-zero byte.
            return data
                .chunks(4096)
                .all(|block| block.iter().fold(0u8, |acc, &b| acc | b) == 0);
        }
        // Compare whole blocks of repeated fill values, not element by element.
        let block: Vec<u8> = self.fill_value.repeat(64);
        let mut blocks = data.chunks_exact(block.len());
        blocks.all(|b| b == block.as_slice())
            && blocks
                .remainder()
                .chunks_exact(self.fill_value.len())
                .all(|element| element == self.fill_value.as_slice())
    }

    fn read_stored_chunk(
        &self,
        codec: &ChunkCodec,
        chunk: &[u64],
        region: &[Range<u64>],
        out: &mut [u8],
    ) -> Result<bool> {
        let key = self.stored_chunk_key(chunk);
        let too_long = |len| self.too_long(codec, chunk, len);
        let Some(encoded) = self.store.get(&key, codec.max_encoded_len(), &too_long)? else {
            return Ok(false);
        };
        if codec.is_raw() && out.len() == codec.nbytes() {
            // Uncompressed: the value is the chunk.
            if encoded.len() != out.len() {
                return Err(self.corrupt(
                    chunk,
                    format!(
                        "holds {} bytes, expected {} (uncompressed)",
                        encoded.len(),
                        out.len()
                    ),
                ));
            }
            out.copy_from_slice(&encoded);
            return Ok(true);
        }
        self.decode_clipped(codec, chunk, &encoded, region, out)?;
        Ok(true)
    }

    /// The error for a stored chunk longer than any valid encoding (not read).
    fn too_long(&self, codec: &ChunkCodec, chunk: &[u64], len: u64) -> Error {
        self.corrupt(
            chunk,
            format!(
                "holds {len} bytes, more than any encoding of a {}-byte chunk",
                codec.nbytes()
            ),
        )
    }

    /// The new stored value of the chunk `selection` of a write of `data` into `region`:
    /// complete chunks are not read, partial ones are read, updated and re-encoded.
    fn produce_chunk(
        &self,
        codec: &ChunkCodec,
        selection: &ChunkSelection,
        region: &[Range<u64>],
        data: &[u8],
    ) -> Result<Stored> {
        let chunk = &selection.chunk_coords;
        let key = self.stored_chunk_key(chunk);
        let full_shape = codec.shape();
        let clipped = selection
            .chunk_region
            .iter()
            .zip(&full_shape)
            .any(|(r, &n)| r.end - r.start != n);
        let purpose = || format!("writing chunk {chunk:?} of {}", self.describe);
        with_scratch(codec.nbytes(), purpose, |full| {
            if !selection.is_complete_chunk() {
                let too_long = |len| self.too_long(codec, chunk, len);
                let stored = self.store.get(&key, codec.max_encoded_len(), &too_long)?;
                match stored {
                    Some(encoded) => codec
                        .decode_into(&encoded, full)
                        .map_err(|e| self.decode_error(chunk, e))?,
                    None => self.fill(full),
                }
            } else if clipped {
                self.fill(full);
            }
            let data_shape: Vec<u64> = region.iter().map(|r| r.end - r.start).collect();
            // SAFETY: `data` holds the region (checked by the caller), `full` a full chunk; the
            // out selection lies in the region, the chunk selection in the chunk's clipped
            // region, which starts at the chunk's origin; `full` is this thread's scratch.
            unsafe {
                copy_box(
                    data.as_ptr(),
                    &data_shape,
                    &selection.out_selection,
                    full.as_mut_ptr(),
                    &full_shape,
                    &selection.chunk_selection,
                    self.dtype.size(),
                );
            }
            let bytes = if !self.write_empty_chunks && self.is_fill(full) {
                None
            } else {
                Some(self.encode(codec, chunk, full)?.into_owned())
            };
            Ok(Stored { key, bytes })
        })
    }

    fn encode<'a>(
        &self,
        codec: &ChunkCodec,
        chunk: &[u64],
        decoded: &'a [u8],
    ) -> Result<std::borrow::Cow<'a, [u8]>> {
        codec.encode(decoded).map_err(|reason| Error::Metadata {
            path: self.describe.clone(),
            reason: format!("cannot encode chunk {chunk:?}: {reason}"),
        })
    }
}

thread_local! {
    /// One decoded chunk per thread, reused across chunks: fresh allocations of this size
    /// cost page faults on every chunk.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Scratch buffers larger than this are freed after use rather than kept by their thread.
const KEEP_SCRATCH_BYTES: usize = 64 << 20;

/// Runs `f` on this thread's scratch buffer of `len` bytes (contents unspecified); an
/// [`Error::OutOfMemory`] for `purpose` when it cannot be allocated.
fn with_scratch<T>(
    len: usize,
    purpose: impl FnOnce() -> String,
    f: impl FnOnce(&mut [u8]) -> Result<T>,
) -> Result<T> {
    let mut buffer = SCRATCH.take();
    buffer::resize(&mut buffer, len, purpose)?;
    let result = f(&mut buffer[..len]);
    if buffer.capacity() <= KEEP_SCRATCH_BYTES {
        SCRATCH.set(buffer);
    }
    result
}

impl ChunkedArray for ZarrArray {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn shape(&self) -> &[u64] {
        &self.shape
    }

    fn dtype(&self) -> DataType {
        self.dtype
    }

    fn chunk_shape(&self) -> &[u64] {
        &self.chunk_shape
    }

    fn shard_shape(&self) -> Option<&[u64]> {
        match &self.layout {
            Layout::Chunked(_) => None,
            Layout::Sharded(layout) => Some(&layout.shard_shape),
        }
    }

    fn fill_value(&self) -> &[u8] {
        &self.fill_value
    }

    fn read_chunk(&self, chunk: &[u64], out: &mut [u8]) -> Result<bool> {
        let region = self.chunk_region(chunk)?;
        self.check_buffer(chunk, &region, out.len())?;
        match &self.layout {
            Layout::Chunked(codec) => self.read_stored_chunk(codec, chunk, &region, out),
            Layout::Sharded(layout) => self.read_inner_chunk(layout, chunk, &region, out),
        }
    }

    fn write_chunk(&self, chunk: &[u64], data: &[u8]) -> Result<()> {
        let region = self.chunk_region(chunk)?;
        self.check_buffer(chunk, &region, data.len())?;
        match &self.layout {
            Layout::Chunked(codec) => {
                let selection = ChunkSelection {
                    chunk_coords: chunk.to_vec(),
                    chunk_selection: region.iter().map(|r| 0..r.end - r.start).collect(),
                    out_selection: region.iter().map(|r| 0..r.end - r.start).collect(),
                    chunk_region: region.clone(),
                };
                self.produce_chunk(codec, &selection, &region, data)?
                    .store(self.store.as_ref())
            }
            Layout::Sharded(layout) => self.write_region_sharded(layout, &region, data),
        }
    }

    fn chunk_exists(&self, chunk: &[u64]) -> Result<bool> {
        self.chunk_region(chunk)?;
        match &self.layout {
            Layout::Chunked(_) => self.store.exists(&self.stored_chunk_key(chunk)),
            Layout::Sharded(layout) => self.inner_chunk_exists(layout, chunk),
        }
    }

    fn is_remote(&self) -> bool {
        self.store.is_remote()
    }

    fn prefetch(&self, chunks: &[Vec<u64>]) -> Result<Option<Prefetched>> {
        match &self.layout {
            // One object per chunk: nothing to coalesce.
            Layout::Chunked(_) => Ok(None),
            Layout::Sharded(layout) => self.prefetch_inner_chunks(layout, chunks).map(Some),
        }
    }

    fn decode_prefetched(
        &self,
        chunk: &[u64],
        encoded: Option<&[u8]>,
        out: &mut [u8],
    ) -> Result<bool> {
        let region = self.chunk_region(chunk)?;
        self.check_buffer(chunk, &region, out.len())?;
        let Some(encoded) = encoded else {
            return Ok(false);
        };
        let codec = match &self.layout {
            Layout::Chunked(codec) => codec,
            Layout::Sharded(layout) => &layout.inner,
        };
        self.decode_clipped(codec, chunk, encoded, &region, out)?;
        Ok(true)
    }

    fn write_region(&self, region: &[Range<u64>], data: &[u8]) -> Result<()> {
        check_region(region, &self.shape, &|| self.describe.clone())?;
        if data.len() != region_bytes(region, self.dtype.size()) {
            return Err(Error::InvalidArgument(format!(
                "data of {} bytes does not fit region {region:?} of {}",
                data.len(),
                self.describe
            )));
        }
        match &self.layout {
            Layout::Chunked(codec) => {
                let chunks = RegionChunks::new(region, &self.shape, &self.chunk_shape)?;
                produce_and_store(self.store.as_ref(), chunks.len(), |index| {
                    self.produce_chunk(codec, &chunks.get(index), region, data)
                })
            }
            Layout::Sharded(layout) => self.write_region_sharded(layout, region, data),
        }
    }
}
