//! Creating zarr arrays (and the groups above them) and listing the arrays of a store.
//!
//! The metadata written is what zarr-python 3 writes for the same array: v3 `zarr.json` with
//! the `bytes` codec first (little-endian), the compressor after it, and for sharded arrays one
//! `sharding_indexed` codec (inner codecs as above, index codecs `bytes` + `crc32c`, index at
//! the end); v2 `.zarray` (C order, `"."` dimension separator, numcodecs compressor) and
//! `.zattrs`. Groups missing above the array, the root included, are created in the array's
//! zarr format. Metadata files are written atomically.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{key_components, read_node_type, ZarrArray};
use crate::dtype::DataType;
use crate::error::{Error, Result};
use crate::storage::{find_arrays, join_key, LocalStore, Store};

/// How deep `list_zarr_arrays` descends (a guard against symlink cycles).
const MAX_DEPTH: usize = 64;

/// The compressors blosc can use inside its container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BloscCompressor {
    BloscLz,
    Lz4,
    Lz4Hc,
    Snappy,
    Zlib,
    Zstd,
}

impl BloscCompressor {
    const ALL: [BloscCompressor; 6] = [
        BloscCompressor::BloscLz,
        BloscCompressor::Lz4,
        BloscCompressor::Lz4Hc,
        BloscCompressor::Snappy,
        BloscCompressor::Zlib,
        BloscCompressor::Zstd,
    ];

    /// The name in zarr metadata (`cname`).
    pub fn name(self) -> &'static str {
        match self {
            BloscCompressor::BloscLz => "blosclz",
            BloscCompressor::Lz4 => "lz4",
            BloscCompressor::Lz4Hc => "lz4hc",
            BloscCompressor::Snappy => "snappy",
            BloscCompressor::Zlib => "zlib",
            BloscCompressor::Zstd => "zstd",
        }
    }
}

/// Blosc's shuffle filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BloscShuffle {
    NoShuffle,
    /// Byte shuffle (numcodecs' `SHUFFLE`, 1).
    Byte,
    /// Bit shuffle (numcodecs' `BITSHUFFLE`, 2).
    Bit,
}

/// The compression of a new array's chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZarrCompression {
    /// Chunks stored uncompressed.
    None,
    /// zstd, level -131072..=22 (0 is zstd's default, 3); `checksum` adds a frame checksum.
    Zstd { level: i32, checksum: bool },
    /// gzip, level 0..=9.
    Gzip { level: u32 },
    /// blosc, level 0..=9; `blocksize` 0 lets blosc choose.
    Blosc {
        cname: BloscCompressor,
        clevel: u8,
        shuffle: BloscShuffle,
        blocksize: usize,
    },
}

impl ZarrCompression {
    /// The compression named `name`, at `level` or the name's default level.
    ///
    /// Names: `"raw"` (or `"none"`); `"zstd"` (default level 3); `"gzip"` (default 5);
    /// `"blosc"` (lz4, byte shuffle, default level 5) and `"blosc-<cname>"` with `<cname>` one
    /// of blosclz, lz4, lz4hc, snappy, zlib, zstd, optionally followed by `-shuffle` (the
    /// default), `-bitshuffle` or `-noshuffle`, e.g. `"blosc-zstd-bitshuffle"`.
    pub fn from_name(name: &str, level: Option<i32>) -> Result<Self> {
        let lowered = name.to_ascii_lowercase();
        let check = |range: std::ops::RangeInclusive<i32>, default: i32| -> Result<i32> {
            let level = level.unwrap_or(default);
            if range.contains(&level) {
                Ok(level)
            } else {
                Err(Error::InvalidArgument(format!(
                    "compression level {level} is out of range {}..={} for {name:?}",
                    range.start(),
                    range.end()
                )))
            }
        };
        match lowered.as_str() {
            "raw" | "none" => match level {
                None => Ok(ZarrCompression::None),
                Some(level) => Err(Error::InvalidArgument(format!(
                    "compression {name:?} takes no level, got {level}"
                ))),
            },
            "zstd" => Ok(ZarrCompression::Zstd {
                level: check(-131_072..=22, 3)?,
                checksum: false,
            }),
            "gzip" => Ok(ZarrCompression::Gzip {
                level: check(0..=9, 5)? as u32,
            }),
            _ if lowered == "blosc" || lowered.starts_with("blosc-") => {
                let mut parts = lowered.split('-').skip(1);
                let cname = match parts.next() {
                    None => BloscCompressor::Lz4,
                    Some(cname) => BloscCompressor::ALL
                        .into_iter()
                        .find(|c| c.name() == cname)
                        .ok_or_else(|| unknown_compression(name))?,
                };
                let shuffle = match parts.next() {
                    None | Some("shuffle") => BloscShuffle::Byte,
                    Some("bitshuffle") => BloscShuffle::Bit,
                    Some("noshuffle") => BloscShuffle::NoShuffle,
                    Some(_) => return Err(unknown_compression(name)),
                };
                if parts.next().is_some() {
                    return Err(unknown_compression(name));
                }
                Ok(ZarrCompression::Blosc {
                    cname,
                    clevel: check(0..=9, 5)? as u8,
                    shuffle,
                    blocksize: 0,
                })
            }
            _ => Err(unknown_compression(name)),
        }
    }

    /// The v3 codec after `bytes`, if any.
    fn codec_v3(self, dtype: DataType) -> Option<Value> {
        match self {
            ZarrCompression::None => None,
            ZarrCompression::Zstd { level, checksum } => Some(json!({
                "name": "zstd",
                "configuration": {"level": level, "checksum": checksum}
            })),
            ZarrCompression::Gzip { level } => Some(json!({
                "name": "gzip",
                "configuration": {"level": level}
            })),
            ZarrCompression::Blosc {
                cname,
                clevel,
                shuffle,
                blocksize,
            } => Some(json!({
                "name": "blosc",
                "configuration": {
                    "typesize": dtype.size(),
                    "cname": cname.name(),
                    "clevel": clevel,
                    "shuffle": match shuffle {
                        BloscShuffle::NoShuffle => "noshuffle",
                        BloscShuffle::Byte => "shuffle",
                        BloscShuffle::Bit => "bitshuffle",
                    },
                    "blocksize": blocksize,
                }
            })),
        }
    }

    /// The v2 (numcodecs) compressor.
    fn compressor_v2(self) -> Value {
        match self {
            ZarrCompression::None => Value::Null,
            // `checksum` only when set: numcodecs defaults it to false, and tensorstore rejects
            // the member.
            ZarrCompression::Zstd {
                level,
                checksum: false,
            } => json!({"id": "zstd", "level": level}),
            ZarrCompression::Zstd {
                level,
                checksum: true,
            } => json!({"id": "zstd", "level": level, "checksum": true}),
            ZarrCompression::Gzip { level } => json!({"id": "gzip", "level": level}),
            ZarrCompression::Blosc {
                cname,
                clevel,
                shuffle,
                blocksize,
            } => json!({
                "id": "blosc",
                "cname": cname.name(),
                "clevel": clevel,
                "shuffle": match shuffle {
                    BloscShuffle::NoShuffle => 0,
                    BloscShuffle::Byte => 1,
                    BloscShuffle::Bit => 2,
                },
                "blocksize": blocksize,
            }),
        }
    }
}

fn unknown_compression(name: &str) -> Error {
    Error::InvalidArgument(format!(
        "unknown zarr compression {name:?}; expected raw, zstd, gzip, blosc or \
         blosc-<blosclz|lz4|lz4hc|snappy|zlib|zstd>[-shuffle|-bitshuffle|-noshuffle]"
    ))
}

/// A fill value as given: integers stay exact (64-bit values do not fit a float's mantissa).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FillScalar {
    Int(i128),
    Float(f64),
    /// Real and imaginary part.
    Complex(f64, f64),
}

impl FillScalar {
    /// The value as a real number: `None` for a complex number with a non-zero imaginary part
    /// (numpy would drop that part; a fill value silently losing it is a mistake).
    pub fn real(self) -> Option<FillScalar> {
        match self {
            FillScalar::Complex(re, im) => (im == 0.0).then_some(FillScalar::Float(re)),
            real => Some(real),
        }
    }

    /// Real and imaginary part.
    pub fn parts(self) -> (f64, f64) {
        match self {
            FillScalar::Int(v) => (v as f64, 0.0),
            FillScalar::Float(v) => (v, 0.0),
            FillScalar::Complex(re, im) => (re, im),
        }
    }
}

impl std::fmt::Display for FillScalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FillScalar::Int(v) => write!(f, "{v}"),
            FillScalar::Float(v) => write!(f, "{v}"),
            // Python's spelling, `(1+2j)`.
            FillScalar::Complex(re, im) if im.is_sign_negative() => {
                write!(f, "({re}-{}j)", -im)
            }
            FillScalar::Complex(re, im) => write!(f, "({re}+{im}j)"),
        }
    }
}

/// A float as zarr metadata writes it: the strings "NaN", "Infinity", "-Infinity" for the
/// values JSON has no number for.
fn float_json(value: f64) -> Value {
    if value.is_nan() {
        json!("NaN")
    } else if value.is_infinite() {
        json!(if value > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(value)
    }
}

/// `value` rounded to float16 (as f64), `None` when a finite value overflows float16.
fn to_f16(value: f64) -> Option<f64> {
    let half = half::f16::from_f64(value).to_f64();
    (half.is_finite() || !value.is_finite()).then_some(half)
}

impl From<f64> for FillScalar {
    fn from(value: f64) -> Self {
        FillScalar::Float(value)
    }
}

/// Everything a new zarr array is made of.
#[derive(Clone, Debug, PartialEq)]
pub struct ZarrCreate {
    /// 2 or 3.
    pub zarr_format: u8,
    pub shape: Vec<u64>,
    /// The chunk shape; for a sharded array the inner chunk shape.
    pub chunk_shape: Vec<u64>,
    /// The shard shape (zarr v3 only), a multiple of `chunk_shape`.
    pub shard_shape: Option<Vec<u64>>,
    pub dtype: DataType,
    pub compression: ZarrCompression,
    /// Converted to the dtype; must be representable (integral and in range for integers,
    /// 0 or 1 for bool).
    pub fill_value: FillScalar,
    /// Replace an existing array or group at the key (everything below it is deleted).
    pub overwrite: bool,
}

impl ZarrCreate {
    fn check(&self) -> Result<()> {
        let fail = |message: String| Err(Error::InvalidArgument(message));
        if self.zarr_format != 2 && self.zarr_format != 3 {
            return fail(format!(
                "zarr_format must be 2 or 3, got {}",
                self.zarr_format
            ));
        }
        if self.chunk_shape.len() != self.shape.len() {
            return fail(format!(
                "chunk shape {:?} does not have the {} axes of shape {:?}",
                self.chunk_shape,
                self.shape.len(),
                self.shape
            ));
        }
        if self.chunk_shape.contains(&0) {
            return fail(format!(
                "chunk shape {:?} must be positive",
                self.chunk_shape
            ));
        }
        crate::chunked::check_shape(&self.shape).or_else(fail)?;
        if crate::buffer::byte_len(&self.chunk_shape, self.dtype.size()).is_none() {
            return fail(format!(
                "chunks of shape {:?} and type {} would not fit in memory",
                self.chunk_shape,
                self.dtype.name()
            ));
        }
        if let Some(shards) = &self.shard_shape {
            if self.zarr_format != 3 {
                return fail("sharding needs zarr_format 3".to_string());
            }
            if shards.len() != self.shape.len()
                || shards
                    .iter()
                    .zip(&self.chunk_shape)
                    .any(|(&s, &c)| s == 0 || s % c != 0)
            {
                return fail(format!(
                    "shard shape {shards:?} must be a positive multiple of the chunk shape {:?} \
                     on every axis",
                    self.chunk_shape
                ));
            }
            let per_shard: Vec<u64> = shards
                .iter()
                .zip(&self.chunk_shape)
                .map(|(&s, &c)| s / c)
                .collect();
            if crate::buffer::element_count(&per_shard)
                .is_none_or(|n| n > super::shard::MAX_INNER_CHUNKS)
            {
                return fail(format!(
                    "shards of {shards:?} would hold more than {} chunks of {:?}",
                    super::shard::MAX_INNER_CHUNKS,
                    self.chunk_shape
                ));
            }
        }
        self.fill_value_json()?;
        Ok(())
    }

    /// The fill value as zarr metadata JSON (the same for v2 and v3).
    fn fill_value_json(&self) -> Result<Value> {
        let invalid = || {
            Error::InvalidArgument(format!(
                "fill value {} is not a valid {}",
                self.fill_value,
                self.dtype.name()
            ))
        };
        let fill_value = if self.dtype.is_complex() {
            self.fill_value
        } else {
            self.fill_value.real().ok_or_else(invalid)?
        };
        let as_integer = || -> Option<i128> {
            match fill_value {
                FillScalar::Int(v) => Some(v),
                FillScalar::Float(v)
                    if v.is_finite() && v.fract() == 0.0 && v.abs() < 2f64.powi(126) =>
                {
                    Some(v as i128)
                }
                FillScalar::Float(_) | FillScalar::Complex(..) => None,
            }
        };
        let integer = |min: i128, max: i128| -> Result<Value> {
            match as_integer() {
                Some(v) if (min..=max).contains(&v) => Ok(if v < 0 {
                    json!(v as i64)
                } else {
                    json!(v as u64)
                }),
                _ => Err(invalid()),
            }
        };
        let value = fill_value.parts().0;
        match self.dtype {
            DataType::Bool => match as_integer() {
                Some(0) => Ok(json!(false)),
                Some(1) => Ok(json!(true)),
                _ => Err(invalid()),
            },
            DataType::Int8 => integer(i8::MIN.into(), i8::MAX.into()),
            DataType::Int16 => integer(i16::MIN.into(), i16::MAX.into()),
            DataType::Int32 => integer(i32::MIN.into(), i32::MAX.into()),
            DataType::Int64 => integer(i64::MIN.into(), i64::MAX.into()),
            DataType::UInt8 => integer(0, u8::MAX.into()),
            DataType::UInt16 => integer(0, u16::MAX.into()),
            DataType::UInt32 => integer(0, u32::MAX.into()),
            DataType::UInt64 => integer(0, u64::MAX.into()),
            DataType::Float16 => to_f16(value).map(float_json).ok_or_else(invalid),
            DataType::Float32 | DataType::Float64 => Ok(float_json(value)),
            // `[re, im]` in v2 and v3 (as zarr-python writes them).
            DataType::Complex64 | DataType::Complex128 => {
                let (re, im) = fill_value.parts();
                Ok(json!([float_json(re), float_json(im)]))
            }
        }
    }

    /// The v2 dtype string (little-endian).
    fn dtype_v2(&self) -> &'static str {
        match self.dtype {
            DataType::Bool => "|b1",
            DataType::Int8 => "|i1",
            DataType::Int16 => "<i2",
            DataType::Int32 => "<i4",
            DataType::Int64 => "<i8",
            DataType::UInt8 => "|u1",
            DataType::UInt16 => "<u2",
            DataType::UInt32 => "<u4",
            DataType::UInt64 => "<u8",
            DataType::Float16 => "<f2",
            DataType::Float32 => "<f4",
            DataType::Float64 => "<f8",
            DataType::Complex64 => "<c8",
            DataType::Complex128 => "<c16",
        }
    }

    /// The codecs of one (inner) chunk: `bytes`, then the compressor.
    fn chunk_codecs_v3(&self) -> Vec<Value> {
        let bytes = if self.dtype.size() > 1 {
            json!({"name": "bytes", "configuration": {"endian": "little"}})
        } else {
            json!({"name": "bytes"})
        };
        std::iter::once(bytes)
            .chain(self.compression.codec_v3(self.dtype))
            .collect()
    }

    pub(super) fn metadata_v3(&self) -> Result<Value> {
        let (grid_chunks, codecs) = match &self.shard_shape {
            None => (self.chunk_shape.clone(), self.chunk_codecs_v3()),
            Some(shards) => (
                shards.clone(),
                vec![json!({
                    "name": "sharding_indexed",
                    "configuration": {
                        "chunk_shape": self.chunk_shape,
                        "codecs": self.chunk_codecs_v3(),
                        "index_codecs": [
                            {"name": "bytes", "configuration": {"endian": "little"}},
                            {"name": "crc32c"},
                        ],
                        "index_location": "end",
                    }
                })],
            ),
        };
        Ok(json!({
            "shape": self.shape,
            "data_type": self.dtype.name(),
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": grid_chunks}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": self.fill_value_json()?,
            "codecs": codecs,
            "attributes": {},
            "zarr_format": 3,
            "node_type": "array",
            "storage_transformers": [],
        }))
    }

    fn metadata_v2(&self) -> Result<Value> {
        Ok(json!({
            "shape": self.shape,
            "chunks": self.chunk_shape,
            "dtype": self.dtype_v2(),
            "fill_value": self.fill_value_json()?,
            "order": "C",
            "filters": null,
            "dimension_separator": ".",
            "compressor": self.compression.compressor_v2(),
            "zarr_format": 2,
        }))
    }
}

/// What is stored at a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    Array,
    Group,
    /// Neither metadata file (an implicit group, a plain directory, or nothing).
    Unknown,
}

fn node_at(store: &dyn Store, node: &str) -> Result<Node> {
    if let Some(node_type) = read_node_type(store, node)? {
        return Ok(match node_type.as_deref() {
            Some("group") => Node::Group,
            _ => Node::Array,
        });
    }
    if store.exists(&join_key(node, ".zarray"))? {
        Ok(Node::Array)
    } else if store.exists(&join_key(node, ".zgroup"))? {
        Ok(Node::Group)
    } else {
        Ok(Node::Unknown)
    }
}

fn to_json_bytes(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("JSON values serialize");
    bytes.push(b'\n');
    bytes
}

fn write_group(store: &dyn Store, node: &str, zarr_format: u8) -> Result<()> {
    if zarr_format == 3 {
        store.put(
            &join_key(node, "zarr.json"),
            &to_json_bytes(&json!({"attributes": {}, "zarr_format": 3, "node_type": "group"})),
        )
    } else {
        store.put(
            &join_key(node, ".zgroup"),
            &to_json_bytes(&json!({"zarr_format": 2})),
        )?;
        store.put(&join_key(node, ".zattrs"), &to_json_bytes(&json!({})))
    }
}

impl ZarrArray {
    /// Creates a zarr array at `key` (`""` for a root array) of the store in the local folder
    /// `root`, with the groups above it, and opens it.
    pub fn create(root: &std::path::Path, key: &str, options: &ZarrCreate) -> Result<Self> {
        Self::create_in(Arc::new(LocalStore::new(root)), key, options)
    }

    /// [`ZarrArray::create`] in any store.
    pub fn create_in(store: Arc<dyn Store>, key: &str, options: &ZarrCreate) -> Result<Self> {
        options.check()?;
        let metadata = if options.zarr_format == 3 {
            options.metadata_v3()?
        } else {
            options.metadata_v2()?
        };
        let components = key_components(key)?;
        let node = components.join("/");
        store.check_writable(&node)?;
        // The groups above the array, the root first.
        for depth in 0..components.len() {
            let group = components[..depth].join("/");
            match node_at(store.as_ref(), &group)? {
                Node::Group => {}
                Node::Array => {
                    return Err(Error::InvalidArgument(format!(
                        "cannot create a zarr array at {}: {} is an array, not a group",
                        store.url(&node),
                        store.url(&group)
                    )))
                }
                Node::Unknown => write_group(store.as_ref(), &group, options.zarr_format)?,
            }
        }
        let existing = node_at(store.as_ref(), &node)?;
        let listing = store.list_dir(&node)?;
        let empty =
            existing == Node::Unknown && listing.keys.is_empty() && listing.prefixes.is_empty();
        if !empty {
            if existing == Node::Unknown {
                return Err(Error::InvalidArgument(format!(
                    "cannot create a zarr array at {}: the directory exists, is not empty \
                     and holds no zarr metadata",
                    store.url(&node)
                )));
            }
            if !options.overwrite {
                return Err(Error::InvalidArgument(format!(
                    "a zarr {} already exists at {} (pass overwrite to replace it)",
                    if existing == Node::Array {
                        "array"
                    } else {
                        "group"
                    },
                    store.url(&node)
                )));
            }
            store.delete_prefix(&node)?;
        }
        if options.zarr_format == 3 {
            store.put(&join_key(&node, "zarr.json"), &to_json_bytes(&metadata))?;
        } else {
            store.put(&join_key(&node, ".zarray"), &to_json_bytes(&metadata))?;
            store.put(&join_key(&node, ".zattrs"), &to_json_bytes(&json!({})))?;
        }
        ZarrArray::open_in(store, &node)
    }
}

/// The keys of the zarr arrays in the store in the local folder `root` (see
/// [`list_zarr_arrays_in`]).
pub fn list_zarr_arrays(root: &std::path::Path) -> Result<Vec<String>> {
    list_zarr_arrays_in(&LocalStore::new(root))
}

/// The keys of the zarr arrays in `store`, sorted (`""` for a root array). Groups and
/// directories without metadata are searched; arrays are not descended into.
pub fn list_zarr_arrays_in(store: &dyn Store) -> Result<Vec<String>> {
    find_arrays(store, MAX_DEPTH, &|node| {
        Ok(node_at(store, node)? == Node::Array)
    })
}
