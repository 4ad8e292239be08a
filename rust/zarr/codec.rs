//! Encoding and decoding one stored zarr chunk (or one inner chunk of a shard) with its codec
//! chain.
//!
//! zarrs' codec chain does the work in general. The common chains — `bytes` in native byte
//! order, alone or followed by `zstd` or `blosc` — take a fast path that decodes straight into
//! the caller's buffer with a per-thread decompression context, instead of zarrs' fresh context
//! and intermediate vector per chunk.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::num::NonZeroU64;
use std::sync::Arc;

use serde_json::Value;
use zarrs::array::{
    ArrayBytes, ArrayToBytesCodecTraits, CodecChain, CodecMetadataOptions, CodecOptions,
    DataType as ZarrsDataType, FillValue,
};

/// Chains decoded without zarrs (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FastPath {
    /// `bytes` only: the stored chunk is the decoded chunk.
    Raw,
    /// `bytes`, `zstd`.
    Zstd { level: i32, checksum: bool },
    /// `bytes`, `blosc` (decoding reads everything it needs from the blosc header).
    Blosc,
}

/// The codecs of one kind of stored chunk, with the shape and type they encode.
pub(crate) struct ChunkCodec {
    chain: Arc<CodecChain>,
    /// The stored (full, unclipped) chunk shape.
    shape: Vec<NonZeroU64>,
    data_type: ZarrsDataType,
    fill_value: FillValue,
    options: CodecOptions,
    fast: Option<FastPath>,
    /// Bytes of one decoded chunk.
    nbytes: usize,
}

impl std::fmt::Debug for ChunkCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkCodec")
            .field("shape", &self.shape)
            .field("fast", &self.fast)
            .finish_non_exhaustive()
    }
}

/// The configuration of a codec's metadata, as JSON.
fn configuration(metadata: &zarrs::metadata::v3::MetadataV3) -> Value {
    serde_json::to_value(metadata)
        .ok()
        .and_then(|mut value| value.get_mut("configuration").map(Value::take))
        .unwrap_or(Value::Null)
}

/// The fast path for `chain`, if it is one of the common ones.
fn fast_path(chain: &CodecChain, itemsize: usize) -> Option<FastPath> {
    let metadatas = chain.create_metadatas(&CodecMetadataOptions::default());
    let (bytes, rest) = metadatas.split_first()?;
    if bytes.name() != "bytes" {
        return None;
    }
    let endian = configuration(bytes)
        .get("endian")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let native = if cfg!(target_endian = "little") {
        "little"
    } else {
        "big"
    };
    if itemsize > 1 && endian.as_deref() != Some(native) {
        return None;
    }
    match rest {
        [] => Some(FastPath::Raw),
        [codec] if codec.name() == "zstd" => {
            let config = configuration(codec);
            let level = config.get("level").and_then(Value::as_i64)?;
            let checksum = config
                .get("checksum")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            Some(FastPath::Zstd {
                level: i32::try_from(level).ok()?,
                checksum,
            })
        }
        [codec] if codec.name() == "blosc" => Some(FastPath::Blosc),
        _ => None,
    }
}

thread_local! {
    static ZSTD_DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
    static ZSTD_COMPRESSOR: RefCell<Option<(i32, bool, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
}

fn zstd_decompress_into(encoded: &[u8], out: &mut [u8]) -> Result<(), String> {
    ZSTD_DECOMPRESSOR.with_borrow_mut(|slot| {
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?);
        }
        let decompressor = slot.as_mut().expect("initialized above");
        let n = decompressor
            .decompress_to_buffer(encoded, out)
            .map_err(|e| format!("zstd: {e}"))?;
        if n == out.len() {
            Ok(())
        } else {
            Err(format!(
                "zstd: decompressed to {n} bytes, expected {}",
                out.len()
            ))
        }
    })
}

fn zstd_compress(decoded: &[u8], level: i32, checksum: bool) -> Result<Vec<u8>, String> {
    ZSTD_COMPRESSOR.with_borrow_mut(|slot| {
        let reuse = matches!(slot, Some((l, c, _)) if *l == level && *c == checksum);
        if !reuse {
            let mut compressor = zstd::bulk::Compressor::new(level).map_err(|e| e.to_string())?;
            compressor
                .set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(checksum))
                .map_err(|e| e.to_string())?;
            *slot = Some((level, checksum, compressor));
        }
        let (_, _, compressor) = slot.as_mut().expect("initialized above");
        let mut encoded = Vec::with_capacity(zstd::zstd_safe::compress_bound(decoded.len()));
        compressor
            .compress_to_buffer(decoded, &mut encoded)
            .map_err(|e| format!("zstd: {e}"))?;
        Ok(encoded)
    })
}

fn blosc_decompress_into(encoded: &[u8], out: &mut [u8]) -> Result<(), String> {
    let mut nbytes = 0usize;
    // SAFETY: `encoded` is valid for reads of its length; `nbytes` is a valid output location.
    let valid = unsafe {
        blosc_src::blosc_cbuffer_validate(
            encoded.as_ptr().cast::<c_void>(),
            encoded.len(),
            &raw mut nbytes,
        )
    };
    if valid != 0 {
        return Err("blosc: not a valid blosc buffer (truncated or corrupt)".to_string());
    }
    if nbytes != out.len() {
        return Err(format!(
            "blosc: holds {nbytes} bytes, expected {}",
            out.len()
        ));
    }
    // SAFETY: the buffer was validated above (its header fits in `encoded` and it decompresses
    // to `out.len()` bytes); `out` is valid for writes of `out.len()` bytes.
    let n = unsafe {
        blosc_src::blosc_decompress_ctx(
            encoded.as_ptr().cast::<c_void>(),
            out.as_mut_ptr().cast::<c_void>(),
            out.len(),
            1 as c_int,
        )
    };
    if usize::try_from(n).ok() == Some(out.len()) {
        Ok(())
    } else {
        Err(format!("blosc: decompression failed ({n})"))
    }
}

impl ChunkCodec {
    pub(crate) fn new(
        chain: Arc<CodecChain>,
        shape: &[u64],
        data_type: ZarrsDataType,
        fill_value: FillValue,
        itemsize: usize,
    ) -> Result<Self, String> {
        let shape = shape
            .iter()
            .map(|&n| NonZeroU64::new(n).ok_or_else(|| format!("chunk shape {shape:?} has a 0")))
            .collect::<Result<Vec<_>, _>>()?;
        let nbytes = shape
            .iter()
            .try_fold(itemsize, |acc, n| {
                usize::try_from(n.get())
                    .ok()
                    .and_then(|n| acc.checked_mul(n))
            })
            .ok_or_else(|| format!("chunk shape {shape:?} is too large"))?;
        // Chunks are decoded one per task of the parallel region loop, so codecs run
        // single-threaded (no oversubscription).
        let options = CodecOptions::default().with_concurrent_target(1);
        let fast = fast_path(&chain, itemsize);
        Ok(ChunkCodec {
            chain,
            shape,
            data_type,
            fill_value,
            options,
            fast,
            nbytes,
        })
    }

    /// Bytes of one decoded (full) chunk.
    pub(crate) fn nbytes(&self) -> usize {
        self.nbytes
    }

    /// The decoded chunk shape.
    pub(crate) fn shape(&self) -> Vec<u64> {
        self.shape.iter().map(|n| n.get()).collect()
    }

    /// The fast path taken, for tests.
    #[cfg(test)]
    pub(crate) fn fast_path_name(&self) -> &'static str {
        match self.fast {
            None => "zarrs",
            Some(FastPath::Raw) => "raw",
            Some(FastPath::Zstd { .. }) => "zstd",
            Some(FastPath::Blosc) => "blosc",
        }
    }

    /// Whether the stored chunk is the decoded chunk (no compression, native byte order).
    pub(crate) fn is_raw(&self) -> bool {
        self.fast == Some(FastPath::Raw)
    }

    /// Decodes a stored chunk into `out` (one full chunk). The error is the reason the chunk
    /// is corrupt.
    pub(crate) fn decode_into(&self, encoded: &[u8], out: &mut [u8]) -> Result<(), String> {
        debug_assert_eq!(out.len(), self.nbytes);
        match self.fast {
            Some(FastPath::Raw) => {
                if encoded.len() != out.len() {
                    return Err(format!(
                        "holds {} bytes, expected {} (uncompressed)",
                        encoded.len(),
                        out.len()
                    ));
                }
                out.copy_from_slice(encoded);
                Ok(())
            }
            Some(FastPath::Zstd { .. }) => zstd_decompress_into(encoded, out),
            Some(FastPath::Blosc) => blosc_decompress_into(encoded, out),
            None => self.decode_with_zarrs(encoded, out),
        }
    }

    fn decode_with_zarrs(&self, encoded: &[u8], out: &mut [u8]) -> Result<(), String> {
        // zarrs' codecs report bad data as errors; a panic on some malformed input would still
        // be a bug there, and must not take the process (or Python) down.
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.chain.decode(
                Cow::Borrowed(encoded),
                &self.shape,
                &self.data_type,
                &self.fill_value,
                &self.options,
            )
        }))
        .map_err(|_| "the decoder panicked".to_string())?
        .map_err(|e| e.to_string())?;
        let ArrayBytes::Fixed(bytes) = decoded else {
            return Err("decoded to variable-length data".to_string());
        };
        if bytes.len() != out.len() {
            return Err(format!(
                "decoded to {} bytes, expected {}",
                bytes.len(),
                out.len()
            ));
        }
        out.copy_from_slice(&bytes);
        Ok(())
    }

    /// Encodes one full chunk.
    pub(crate) fn encode<'a>(&self, decoded: &'a [u8]) -> Result<Cow<'a, [u8]>, String> {
        debug_assert_eq!(decoded.len(), self.nbytes);
        match self.fast {
            Some(FastPath::Raw) => Ok(Cow::Borrowed(decoded)),
            Some(FastPath::Zstd { level, checksum }) => {
                zstd_compress(decoded, level, checksum).map(Cow::Owned)
            }
            _ => self
                .chain
                .encode(
                    ArrayBytes::new_flen(Cow::Borrowed(decoded)),
                    &self.shape,
                    &self.data_type,
                    &self.fill_value,
                    &self.options,
                )
                .map_err(|e| e.to_string()),
        }
    }
}
