//! Encoding and decoding one stored zarr chunk (or one inner chunk of a shard) with its codec
//! chain.
//!
//! zarrs' codec chain encodes. Decoding is ours, bounded: a stored chunk is untrusted, and
//! zarrs' gzip, zlib and zstd decoders read to the end of the stream into a growing vector (one
//! 1 MiB chunk of compressed zeros grows the process by gigabytes before anything checks its
//! size). The compressors (gzip, zlib, zstd, blosc) are decoded by [`crate::decompress`] into
//! buffers as long as the stage they undo can be (its size from zarrs' encoded
//! representations), so a chunk that decodes to more stops there as a corrupt chunk. The other
//! bytes-to-bytes codecs zarrs provides here (crc32c, shuffle) never grow their input; the
//! array-to-bytes and array-to-array codecs (`bytes`, `transpose`, ...) check their input's
//! size. A sharding codec nested in a longer chain (e.g. after `transpose`) is decoded here too,
//! inner chunk by inner chunk, with the same bounds. The common chains — `bytes` in native
//! byte order, alone or followed by one compressor — decode straight into the caller's buffer.

use std::borrow::Cow;
use std::cell::RefCell;
use std::num::NonZeroU64;
use std::sync::Arc;

use serde_json::Value;
use zarrs::array::codec::{
    BloscCodec, BytesCodec, Crc32cCodec, GzipCodec, ShardingCodec, ShuffleCodec, ZlibCodec,
    ZstdCodec,
};
use zarrs::array::{
    ArrayBytes, ArrayToBytesCodecTraits, BytesRepresentation, BytesToBytesCodecTraits, CodecChain,
    CodecMetadataOptions, CodecOptions, DataType as ZarrsDataType, FillValue,
};

use zarrs::metadata_ext::codec::sharding::ShardingCodecConfiguration;

use super::shard::ShardLayout;
use crate::decompress;

/// Why a chunk could not be decoded.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// The stored data is corrupt (the reason).
    Corrupt(String),
    /// A buffer of this many bytes could not be allocated.
    OutOfMemory(usize),
}

impl From<String> for DecodeError {
    fn from(reason: String) -> Self {
        DecodeError::Corrupt(reason)
    }
}

/// A compressor decoded here, into a bounded buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compressor {
    Gzip,
    Zlib,
    Zstd,
    Blosc,
}

impl Compressor {
    fn of(codec: &dyn BytesToBytesCodecTraits) -> Option<Self> {
        let any = codec.as_any();
        if any.is::<GzipCodec>() {
            Some(Compressor::Gzip)
        } else if any.is::<ZlibCodec>() {
            Some(Compressor::Zlib)
        } else if any.is::<ZstdCodec>() {
            Some(Compressor::Zstd)
        } else if any.is::<BloscCodec>() {
            Some(Compressor::Blosc)
        } else {
            None
        }
    }

    fn decode_into(self, encoded: &[u8], out: &mut [u8]) -> Result<usize, String> {
        match self {
            Compressor::Gzip => decompress::gzip_into(encoded, out),
            Compressor::Zlib => decompress::zlib_into(encoded, out),
            Compressor::Zstd => decompress::zstd_into(encoded, out),
            Compressor::Blosc => decompress::blosc_into(encoded, out),
        }
    }
}

/// One bytes-to-bytes codec and the size of what its decoding yields.
struct BytesStage {
    codec: Arc<dyn BytesToBytesCodecTraits>,
    compressor: Option<Compressor>,
    /// The decoded representation (the input the codec encoded).
    decoded: BytesRepresentation,
    /// The most bytes decoding may yield.
    limit: usize,
}

/// The codecs of one kind of stored chunk, with the shape and type they encode.
pub(crate) struct ChunkCodec {
    chain: Arc<CodecChain>,
    /// The chain without its bytes-to-bytes codecs (those are undone by `stages`).
    array_chain: CodecChain,
    /// A sharding codec as the array-to-bytes codec of a longer chain: shards are decoded by
    /// this layout into native order, then `native_array_chain` undoes the array-to-array
    /// codecs.
    nested_shard: Option<Box<ShardLayout>>,
    native_array_chain: CodecChain,
    /// The bytes-to-bytes codecs, in encoding order.
    stages: Vec<BytesStage>,
    /// The array-to-bytes codec is `bytes` in native byte order, without array-to-array codecs:
    /// the bytes-to-bytes stages yield the decoded chunk itself.
    native_bytes: bool,
    /// The stored (full, unclipped) chunk shape.
    shape: Vec<NonZeroU64>,
    data_type: ZarrsDataType,
    fill_value: FillValue,
    options: CodecOptions,
    /// Bytes of one decoded chunk.
    nbytes: usize,
    /// The longest stored chunk that can be valid (longer ones are corrupt and not read).
    max_encoded_len: u64,
    /// zstd settings of the `bytes`, `zstd` chain, which is also encoded here.
    zstd_encoder: Option<(i32, bool)>,
}

impl std::fmt::Debug for ChunkCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkCodec")
            .field("shape", &self.shape)
            .field("fast_path", &self.fast_path_name())
            .finish_non_exhaustive()
    }
}

/// The configuration of a codec's metadata, as JSON.
fn configuration(codec: &dyn zarrs::array::CodecTraits) -> Value {
    codec
        .configuration_v3(&CodecMetadataOptions::default())
        .and_then(|configuration| serde_json::to_value(configuration).ok())
        .unwrap_or(Value::Null)
}

/// Whether the array-to-bytes codec writes elements as they are in memory.
fn is_native_bytes(codec: &dyn ArrayToBytesCodecTraits, itemsize: usize) -> bool {
    if !codec.as_any().is::<BytesCodec>() {
        return false;
    }
    let native = if cfg!(target_endian = "little") {
        "little"
    } else {
        "big"
    };
    itemsize == 1 || configuration(codec).get("endian").and_then(Value::as_str) == Some(native)
}

/// A limit of `size` plus slack: the longest input that can be valid, whatever encoder wrote
/// it (zarrs' bounds are worst cases of the reference encoders; others may differ slightly).
fn with_slack(size: u64) -> u64 {
    size.saturating_add(size / 4).saturating_add(64 << 10)
}

thread_local! {
    static ZSTD_COMPRESSOR: RefCell<Option<(i32, bool, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
}

fn zstd_compress(decoded: &[u8], level: i32, checksum: bool) -> Result<Vec<u8>, String> {
    ZSTD_COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some((l, c, compressor)) if *l == level && *c == checksum => compressor,
            _ => {
                let mut compressor =
                    zstd::bulk::Compressor::new(level).map_err(|e| e.to_string())?;
                compressor
                    .set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(checksum))
                    .map_err(|e| e.to_string())?;
                &mut slot.insert((level, checksum, compressor)).2
            }
        };
        let mut encoded = Vec::with_capacity(zstd::zstd_safe::compress_bound(decoded.len()));
        compressor
            .compress_to_buffer(decoded, &mut encoded)
            .map_err(|e| format!("zstd: {e}"))?;
        Ok(encoded)
    })
}

/// The layout of a sharding codec that is the array-to-bytes codec of `chain`, for the
/// representation its array-to-array codecs give a chunk of `shape`.
fn nested_shard_layout(
    chain: &CodecChain,
    shape: &[NonZeroU64],
    data_type: &ZarrsDataType,
    fill_value: &FillValue,
    itemsize: usize,
) -> Result<ShardLayout, String> {
    let (mut shape, mut data_type, mut fill_value) =
        (shape.to_vec(), data_type.clone(), fill_value.clone());
    for codec in chain.array_to_array_codecs() {
        (shape, data_type, fill_value) = codec
            .encoded_representation(&shape, &data_type, &fill_value)
            .map_err(|e| format!("codecs: {e}"))?;
        if fill_value.as_ne_bytes().len() != itemsize {
            return Err(
                "sharding_indexed after a codec that changes the data type is not supported"
                    .to_string(),
            );
        }
    }
    let configuration = chain
        .array_to_bytes_codec()
        .configuration_v3(&CodecMetadataOptions::default())
        .unwrap_or_default()
        .to_typed::<ShardingCodecConfiguration>()
        .map_err(|e| format!("sharding_indexed configuration: {e}"))?;
    let ShardingCodecConfiguration::V1(configuration) = configuration else {
        return Err("unsupported sharding_indexed configuration version".to_string());
    };
    let shard_shape = shape.iter().map(|n| n.get()).collect();
    ShardLayout::new(&configuration, shard_shape, data_type, fill_value, itemsize)
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
        let dims: Vec<u64> = shape.iter().map(|n| n.get()).collect();
        let nbytes = crate::buffer::byte_len(&dims, itemsize).ok_or_else(|| {
            format!("chunk shape {dims:?} is too large: its chunks cannot be held in memory")
        })?;
        let array_to_bytes = chain.array_to_bytes_codec();
        let nested_shard = if array_to_bytes.as_any().is::<ShardingCodec>() {
            Some(Box::new(nested_shard_layout(
                &chain,
                &shape,
                &data_type,
                &fill_value,
                itemsize,
            )?))
        } else {
            None
        };
        let native_bytes = chain.array_to_array_codecs().is_empty()
            && is_native_bytes(&**array_to_bytes, itemsize);
        let native_array_chain = CodecChain::new(
            chain.array_to_array_codecs().to_vec(),
            Arc::new(BytesCodec::default()),
            Vec::new(),
        );
        // The size of each stage's output, from the array-to-bytes codec on.
        let array_chain = CodecChain::new(
            chain.array_to_array_codecs().to_vec(),
            Arc::clone(array_to_bytes),
            Vec::new(),
        );
        let mut representation = array_chain
            .encoded_representation(&shape, &data_type, &fill_value)
            .map_err(|e| format!("codecs: {e}"))?;
        let mut stages = Vec::new();
        for codec in chain.bytes_to_bytes_codecs() {
            let compressor = Compressor::of(&**codec);
            let known = compressor.is_some()
                || codec.as_any().is::<Crc32cCodec>()
                || codec.as_any().is::<ShuffleCodec>();
            if !known {
                return Err(format!(
                    "codec {:?} is not supported by native arrays",
                    codec.name_v3().unwrap_or_default()
                ));
            }
            let limit = match representation {
                BytesRepresentation::FixedSize(n) => n,
                BytesRepresentation::BoundedSize(n) => with_slack(n),
                BytesRepresentation::UnboundedSize => with_slack(nbytes as u64),
            };
            stages.push(BytesStage {
                codec: Arc::clone(codec),
                compressor,
                decoded: representation,
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            });
            representation = codec.encoded_representation(&representation);
        }
        let max_encoded_len = with_slack(representation.size().unwrap_or(nbytes as u64));
        let zstd_encoder = match stages.as_slice() {
            [stage] if native_bytes && stage.compressor == Some(Compressor::Zstd) => {
                let config = configuration(&*stage.codec);
                config
                    .get("level")
                    .and_then(Value::as_i64)
                    .and_then(|level| i32::try_from(level).ok())
                    .map(|level| {
                        let checksum = config.get("checksum").and_then(Value::as_bool);
                        (level, checksum.unwrap_or(false))
                    })
            }
            _ => None,
        };
        Ok(ChunkCodec {
            chain,
            array_chain,
            nested_shard,
            native_array_chain,
            stages,
            native_bytes,
            shape,
            data_type,
            fill_value,
            // Chunks are decoded one per task of the parallel region loop, so codecs run
            // single-threaded (no oversubscription).
            options: CodecOptions::default().with_concurrent_target(1),
            nbytes,
            max_encoded_len,
            zstd_encoder,
        })
    }

    /// Bytes of one decoded (full) chunk.
    pub(crate) fn nbytes(&self) -> usize {
        self.nbytes
    }

    /// The longest stored chunk that can be valid; longer ones are corrupt (and not read).
    pub(crate) fn max_encoded_len(&self) -> u64 {
        self.max_encoded_len
    }

    /// The decoded chunk shape.
    pub(crate) fn shape(&self) -> Vec<u64> {
        self.shape.iter().map(|n| n.get()).collect()
    }

    /// The path decoding takes, for tests and debugging.
    pub(crate) fn fast_path_name(&self) -> &'static str {
        match (self.native_bytes, self.stages.as_slice()) {
            (true, []) => "raw",
            (true, [stage]) => match stage.compressor {
                Some(Compressor::Zstd) => "zstd",
                Some(Compressor::Blosc) => "blosc",
                Some(Compressor::Gzip) => "gzip",
                Some(Compressor::Zlib) => "zlib",
                None => "staged",
            },
            _ => "staged",
        }
    }

    /// Whether the stored chunk is the decoded chunk (no compression, native byte order).
    pub(crate) fn is_raw(&self) -> bool {
        self.native_bytes && self.stages.is_empty()
    }

    /// Decodes a stored chunk into `out` (one full chunk), never holding more than about two
    /// chunks beside the input.
    pub(crate) fn decode_into(&self, encoded: &[u8], out: &mut [u8]) -> Result<(), DecodeError> {
        if out.len() != self.nbytes {
            return Err(DecodeError::Corrupt(format!(
                "a buffer of {} bytes for a chunk of {}",
                out.len(),
                self.nbytes
            )));
        }
        if encoded.len() as u64 > self.max_encoded_len {
            return Err(DecodeError::Corrupt(format!(
                "holds {} bytes, more than any encoding of a {}-byte chunk",
                encoded.len(),
                self.nbytes
            )));
        }
        // Decoded straight into `out`: no codecs, or one compressor.
        if self.native_bytes {
            match self.stages.as_slice() {
                [] => return exact_copy(encoded, out, "uncompressed"),
                [BytesStage {
                    compressor: Some(compressor),
                    ..
                }] => {
                    let n = compressor.decode_into(encoded, out)?;
                    return check_len(n, out.len());
                }
                _ => {}
            }
        }
        // The general chain: undo each bytes-to-bytes stage into a buffer as long as that
        // stage's output can be, then the array-to-bytes (and array-to-array) codecs.
        let mut current: Cow<'_, [u8]> = Cow::Borrowed(encoded);
        for stage in self.stages.iter().rev() {
            current = Cow::Owned(self.undo_stage(stage, &current)?);
        }
        if self.native_bytes {
            return exact_copy(&current, out, "decoded");
        }
        let (chain, current) = match &self.nested_shard {
            Some(layout) => {
                let mut array = Vec::new();
                array
                    .try_reserve_exact(self.nbytes)
                    .map_err(|_| DecodeError::OutOfMemory(self.nbytes))?;
                array.resize(self.nbytes, 0);
                layout.decode_shard(&current, &mut array)?;
                if self.chain.array_to_array_codecs().is_empty() {
                    return exact_copy(&array, out, "decoded");
                }
                (&self.native_array_chain, Cow::Owned(array))
            }
            None => (&self.array_chain, current),
        };
        let decoded = chain
            .decode(
                current,
                &self.shape,
                &self.data_type,
                &self.fill_value,
                &self.options,
            )
            .map_err(|e| e.to_string())?;
        let ArrayBytes::Fixed(bytes) = decoded else {
            return Err(DecodeError::Corrupt(
                "decoded to variable-length data".to_string(),
            ));
        };
        exact_copy(&bytes, out, "decoded")
    }

    /// Undoes one bytes-to-bytes codec, yielding at most `stage.limit` bytes.
    fn undo_stage(&self, stage: &BytesStage, input: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let decoded = match stage.compressor {
            Some(compressor) => {
                let mut buffer = Vec::new();
                buffer
                    .try_reserve_exact(stage.limit)
                    .map_err(|_| DecodeError::OutOfMemory(stage.limit))?;
                buffer.resize(stage.limit, 0);
                let n = compressor.decode_into(input, &mut buffer)?;
                buffer.truncate(n);
                buffer
            }
            // crc32c and shuffle yield at most their input.
            None => stage
                .codec
                .decode(Cow::Borrowed(input), &stage.decoded, &self.options)
                .map_err(|e| e.to_string())?
                .into_owned(),
        };
        match stage.decoded {
            BytesRepresentation::FixedSize(n) if decoded.len() as u64 != n => {
                Err(DecodeError::Corrupt(format!(
                    "{} decoded to {} bytes, expected {n}",
                    stage.codec.name_v3().unwrap_or_default(),
                    decoded.len()
                )))
            }
            _ if decoded.len() > stage.limit => Err(DecodeError::Corrupt(format!(
                "{} decoded to {} bytes, more than the {} its input can hold",
                stage.codec.name_v3().unwrap_or_default(),
                decoded.len(),
                stage.limit
            ))),
            _ => Ok(decoded),
        }
    }

    /// Encodes one full chunk.
    pub(crate) fn encode<'a>(&self, decoded: &'a [u8]) -> Result<Cow<'a, [u8]>, String> {
        debug_assert_eq!(decoded.len(), self.nbytes);
        if self.is_raw() {
            return Ok(Cow::Borrowed(decoded));
        }
        if let Some((level, checksum)) = self.zstd_encoder {
            return zstd_compress(decoded, level, checksum).map(Cow::Owned);
        }
        let encode = || {
            self.chain
                .encode(
                    ArrayBytes::new_flen(Cow::Borrowed(decoded)),
                    &self.shape,
                    &self.data_type,
                    &self.fill_value,
                    &self.options,
                )
                .map_err(|e| e.to_string())
        };
        if self.nested_shard.is_none() {
            return encode();
        }
        // zarrs drives a shard's inner chunks through a rayon parallel iterator (sequential at
        // our concurrency of 1, but it starts rayon's global pool, which a forked child does
        // not get back): run it on this process's pool, also when the caller is not on it (a
        // write of one chunk runs on the caller's thread).
        crate::thread_pool::install(encode).map_err(|e| e.to_string())?
    }
}

fn check_len(n: usize, expected: usize) -> Result<(), DecodeError> {
    if n == expected {
        Ok(())
    } else {
        Err(DecodeError::Corrupt(format!(
            "decodes to {n} bytes, expected {expected}"
        )))
    }
}

fn exact_copy(data: &[u8], out: &mut [u8], what: &str) -> Result<(), DecodeError> {
    if data.len() != out.len() {
        return Err(DecodeError::Corrupt(format!(
            "holds {} bytes, expected {} ({what})",
            data.len(),
            out.len()
        )));
    }
    out.copy_from_slice(data);
    Ok(())
}
