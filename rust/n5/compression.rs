//! N5 block compressions: the `compression` object of a dataset's `attributes.json` and the
//! codecs behind it. Decoders write straight into the caller's buffer and insist on exactly the
//! expected number of bytes; encoders append to a buffer that already holds the block header.

use std::cell::RefCell;
use std::ffi::CString;
use std::io::{Read, Write};

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// The compression of an N5 dataset, with the parameters N5 writers record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum N5Compression {
    Raw,
    /// Deflate (by libdeflate), in a gzip wrapper (N5's default) or, with `use_zlib`, a zlib
    /// one. `level` is -1 (zlib's default, 6) or 0..=9.
    Gzip {
        level: i32,
        use_zlib: bool,
    },
    /// Zstandard (the n5-zstandard plugin, z5py, tensorstore).
    Zstd {
        level: i32,
    },
    /// Blosc 1 (the n5-blosc plugin): `cname` one of blosclz, lz4, lz4hc, snappy, zlib, zstd;
    /// `shuffle` 0 none, 1 byte, 2 bit; `blocksize` 0 for automatic.
    Blosc {
        cname: String,
        clevel: u8,
        shuffle: u8,
        blocksize: usize,
    },
    /// bzip2 with `block_size` 1..=9 (x 100 kB).
    Bzip2 {
        block_size: u32,
    },
    /// xz (LZMA2) with `preset` 0..=9.
    Xz {
        preset: u32,
    },
    /// LZ4, framed like Java N5 (lz4-java's `LZ4BlockOutputStream` with blocks of `block_size`
    /// bytes) or, for datasets z5py created, like z5py (one bare LZ4 block); see [`Lz4Framing`].
    Lz4 {
        block_size: u32,
        framing: Lz4Framing,
    },
}

/// How LZ4 data is framed inside an N5 block. Both read either framing; the framing only
/// decides what is written, so that a dataset stays readable by the library that created it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lz4Framing {
    /// Java N5: `LZ4Block` frames with xxhash32 checksums, ended by an empty frame.
    Java,
    /// z5py: one bare LZ4 block. z5py records its compression level as `blockSize`, always
    /// below Java's minimum of 64, which is how its datasets are recognised.
    Z5,
}

/// Blosc compressors c-blosc 1 knows.
const BLOSC_CNAMES: [&str; 6] = ["blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd"];
/// lz4-java's limits on the frame size.
const LZ4_MIN_BLOCK_SIZE: u32 = 64;
const LZ4_MAX_BLOCK_SIZE: u32 = 1 << 25;
const LZ4_DEFAULT_BLOCK_SIZE: u32 = 1 << 16;
const LZ4_MAGIC: &[u8; 8] = b"LZ4Block";
const LZ4_FRAME_HEADER: usize = 8 + 1 + 4 + 4 + 4;
const LZ4_METHOD_RAW: u8 = 0x10;
const LZ4_METHOD_LZ4: u8 = 0x20;
const LZ4_SEED: u32 = 0x9747_b28c;

fn check_range(
    what: &str,
    value: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, String> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{what} {value} is outside {}..={}",
            range.start(),
            range.end()
        ))
    }
}

impl N5Compression {
    /// The compression called `name` at `level` (its level-like parameter), with the other
    /// parameters at z5py's defaults. Names: `raw`, `gzip`, `zlib` (gzip with a zlib wrapper),
    /// `zstd`, `blosc` (lz4 inside, byte shuffle) or `blosc-<cname>`, `bzip2` (level = block
    /// size 1..=9), `xz` (level = preset), `lz4` (no level).
    pub fn from_name(name: &str, level: Option<i32>) -> Result<Self> {
        let invalid =
            |reason: String| Error::InvalidArgument(format!("N5 compression {name:?}: {reason}"));
        let no_level = |compression: Self| match level {
            None => Ok(compression),
            Some(level) => Err(invalid(format!("takes no level, got {level}"))),
        };
        let level_in = |default: i32, range: std::ops::RangeInclusive<i64>| {
            check_range("level", i64::from(level.unwrap_or(default)), range)
                .map(|l| l as i32)
                .map_err(invalid)
        };
        let compression = match name {
            "raw" => no_level(Self::Raw)?,
            "gzip" | "zlib" => Self::Gzip {
                level: level_in(5, -1..=9)?,
                use_zlib: name == "zlib",
            },
            "zstd" => Self::Zstd {
                level: level_in(3, -131_072..=22)?,
            },
            "bzip2" => Self::Bzip2 {
                block_size: level_in(9, 1..=9)? as u32,
            },
            "xz" => Self::Xz {
                preset: level_in(6, 0..=9)? as u32,
            },
            "lz4" => no_level(Self::Lz4 {
                block_size: LZ4_DEFAULT_BLOCK_SIZE,
                framing: Lz4Framing::Java,
            })?,
            _ => {
                let cname = match name.strip_prefix("blosc") {
                    Some("") => "lz4",
                    Some(rest) => rest.strip_prefix(['-', ':']).unwrap_or(rest),
                    None => {
                        return Err(invalid(
                            "unknown; supported: raw, gzip, zlib, zstd, blosc, blosc-<cname> \
                             (blosclz, lz4, lz4hc, snappy, zlib, zstd), bzip2, xz, lz4"
                                .to_string(),
                        ))
                    }
                };
                if !BLOSC_CNAMES.contains(&cname) {
                    return Err(invalid(format!(
                        "unknown blosc compressor {cname:?}; supported: {}",
                        BLOSC_CNAMES.join(", ")
                    )));
                }
                Self::Blosc {
                    cname: cname.to_string(),
                    clevel: level_in(5, 0..=9)? as u8,
                    shuffle: 1,
                    blocksize: 0,
                }
            }
        };
        Ok(compression)
    }

    /// The compression an N5 `compression` object describes (also a bare type name, as the
    /// legacy `compressionType` attribute gives it). Unknown extra parameters are ignored.
    pub fn from_json(value: &Value) -> Result<Self> {
        Self::parse(value).map_err(Error::InvalidArgument)
    }

    pub(crate) fn parse(value: &Value) -> Result<Self, String> {
        let empty = Map::new();
        let (kind, params) = match value {
            Value::String(kind) => (kind.as_str(), &empty),
            Value::Object(params) => match params.get("type") {
                Some(Value::String(kind)) => (kind.as_str(), params),
                Some(other) => return Err(format!("compression \"type\" {other} is not a string")),
                None => return Err("compression has no \"type\"".to_string()),
            },
            other => {
                return Err(format!(
                    "compression {other} is neither an object nor a name"
                ))
            }
        };
        let int = |key: &str,
                   default: i64,
                   range: std::ops::RangeInclusive<i64>|
         -> Result<i64, String> {
            match params.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => {
                    let value = v.as_i64().ok_or_else(|| {
                        format!("{kind} compression parameter {key:?} = {v} is not an integer")
                    })?;
                    check_range(
                        &format!("{kind} compression parameter {key:?}"),
                        value,
                        range,
                    )
                }
            }
        };
        Ok(match kind {
            "raw" => Self::Raw,
            "gzip" => Self::Gzip {
                level: int("level", -1, -1..=9)? as i32,
                use_zlib: match params.get("useZlib") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(v) => return Err(format!("gzip compression parameter \"useZlib\" = {v} is not a boolean")),
                },
            },
            "zstd" => Self::Zstd {
                level: int("level", 3, -131_072..=22)? as i32,
            },
            "blosc" => {
                let cname = match params.get("cname") {
                    None | Some(Value::Null) => "lz4".to_string(),
                    Some(Value::String(c)) if BLOSC_CNAMES.contains(&c.as_str()) => c.clone(),
                    Some(v) => {
                        return Err(format!(
                            "blosc compression parameter \"cname\" = {v} is not one of {}",
                            BLOSC_CNAMES.join(", ")
                        ))
                    }
                };
                Self::Blosc {
                    cname,
                    clevel: int("clevel", 5, 0..=9)? as u8,
                    shuffle: int("shuffle", 1, 0..=2)? as u8,
                    blocksize: int("blocksize", 0, 0..=i64::from(i32::MAX))? as usize,
                }
            }
            "bzip2" => Self::Bzip2 {
                block_size: int("blockSize", 9, 1..=9)? as u32,
            },
            "xz" => Self::Xz {
                preset: int("preset", 6, 0..=9)? as u32,
            },
            "lz4" => {
                let block_size = int("blockSize", i64::from(LZ4_DEFAULT_BLOCK_SIZE), 0..=i64::from(LZ4_MAX_BLOCK_SIZE))? as u32;
                Self::Lz4 {
                    block_size,
                    framing: if block_size < LZ4_MIN_BLOCK_SIZE {
                        Lz4Framing::Z5
                    } else {
                        Lz4Framing::Java
                    },
                }
            }
            other => {
                return Err(format!(
                    "unsupported compression type {other:?}; supported: raw, gzip, zstd, blosc, bzip2, xz, lz4"
                ))
            }
        })
    }

    /// Checks parameters of a compression built directly (not parsed) before writing with it.
    pub(crate) fn validate(&self) -> Result<()> {
        let reason = match self {
            Self::Gzip { level, .. } if !(-1..=9).contains(level) => {
                format!("gzip level {level} is outside -1..=9")
            }
            Self::Zstd { level } if !(-131_072..=22).contains(level) => {
                format!("zstd level {level} is outside -131072..=22")
            }
            Self::Blosc { cname, .. } if !BLOSC_CNAMES.contains(&cname.as_str()) => {
                format!(
                    "unknown blosc compressor {cname:?}; supported: {}",
                    BLOSC_CNAMES.join(", ")
                )
            }
            Self::Blosc { clevel, .. } if *clevel > 9 => {
                format!("blosc clevel {clevel} is outside 0..=9")
            }
            Self::Blosc { shuffle, .. } if *shuffle > 2 => {
                format!("blosc shuffle {shuffle} is outside 0..=2")
            }
            Self::Bzip2 { block_size } if !(1..=9).contains(block_size) => {
                format!("bzip2 block size {block_size} is outside 1..=9")
            }
            Self::Xz { preset } if *preset > 9 => format!("xz preset {preset} is outside 0..=9"),
            Self::Lz4 {
                block_size,
                framing: Lz4Framing::Java,
            } if !(LZ4_MIN_BLOCK_SIZE..=LZ4_MAX_BLOCK_SIZE).contains(block_size) => {
                format!("lz4 block size {block_size} is outside {LZ4_MIN_BLOCK_SIZE}..={LZ4_MAX_BLOCK_SIZE}")
            }
            _ => return Ok(()),
        };
        Err(Error::InvalidArgument(format!("N5 compression: {reason}")))
    }

    /// The N5 `type`: raw, gzip, zstd, blosc, bzip2, xz or lz4.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Gzip { .. } => "gzip",
            Self::Zstd { .. } => "zstd",
            Self::Blosc { .. } => "blosc",
            Self::Bzip2 { .. } => "bzip2",
            Self::Xz { .. } => "xz",
            Self::Lz4 { .. } => "lz4",
        }
    }

    /// The level-like parameter `from_name` takes, if the compression has one.
    pub fn level(&self) -> Option<i32> {
        match self {
            Self::Raw | Self::Lz4 { .. } => None,
            Self::Gzip { level, .. } | Self::Zstd { level } => Some(*level),
            Self::Blosc { clevel, .. } => Some(i32::from(*clevel)),
            Self::Bzip2 { block_size } => Some(*block_size as i32),
            Self::Xz { preset } => Some(*preset as i32),
        }
    }

    /// The `compression` object of `attributes.json`, with the members Java N5, tensorstore and
    /// z5py read (tensorstore rejects members it does not know, so blosc has no `nthreads`).
    pub fn to_json(&self) -> Value {
        match self {
            Self::Raw => json!({"type": "raw"}),
            Self::Gzip { level, use_zlib } => {
                json!({"type": "gzip", "level": level, "useZlib": use_zlib})
            }
            Self::Zstd { level } => json!({"type": "zstd", "level": level}),
            Self::Blosc {
                cname,
                clevel,
                shuffle,
                blocksize,
            } => json!({
                "type": "blosc",
                "cname": cname,
                "clevel": clevel,
                "shuffle": shuffle,
                "blocksize": blocksize,
            }),
            Self::Bzip2 { block_size } => json!({"type": "bzip2", "blockSize": block_size}),
            Self::Xz { preset } => json!({"type": "xz", "preset": preset}),
            Self::Lz4 { block_size, .. } => json!({"type": "lz4", "blockSize": block_size}),
        }
    }

    /// Decompresses `data` into `out`, which it must fill exactly.
    pub(crate) fn decompress_into(&self, data: &[u8], out: &mut [u8]) -> Result<(), String> {
        match self {
            Self::Raw => {
                if data.len() != out.len() {
                    return Err(size_mismatch(data.len(), out.len()));
                }
                out.copy_from_slice(data);
                Ok(())
            }
            Self::Gzip { .. } => inflate(data, out),
            Self::Zstd { .. } => zstd_decompress(data, out),
            Self::Blosc { .. } => blosc_decompress(data, out),
            Self::Bzip2 { .. } => read_exactly(bzip2::bufread::BzDecoder::new(data), out, "bzip2"),
            Self::Xz { .. } => read_exactly(liblzma::bufread::XzDecoder::new(data), out, "xz"),
            Self::Lz4 { .. } => lz4_decompress(data, out),
        }
    }

    /// Compresses `data` (elements of `itemsize` bytes) and appends it to `out`.
    pub(crate) fn compress_append(
        &self,
        data: &[u8],
        itemsize: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        match self {
            Self::Raw => {
                out.extend_from_slice(data);
                Ok(())
            }
            Self::Gzip { level, use_zlib } => deflate_append(data, *level, *use_zlib, out),
            Self::Zstd { level } => zstd_compress_append(data, *level, out),
            Self::Blosc {
                cname,
                clevel,
                shuffle,
                blocksize,
            } => blosc_compress_append(data, itemsize, cname, *clevel, *shuffle, *blocksize, out),
            Self::Bzip2 { block_size } => {
                let mut encoder = bzip2::write::BzEncoder::new(
                    std::mem::take(out),
                    bzip2::Compression::new(*block_size),
                );
                encoder
                    .write_all(data)
                    .map_err(|e| format!("bzip2 compression failed: {e}"))?;
                *out = encoder
                    .finish()
                    .map_err(|e| format!("bzip2 compression failed: {e}"))?;
                Ok(())
            }
            Self::Xz { preset } => {
                let mut encoder = liblzma::write::XzEncoder::new(std::mem::take(out), *preset);
                encoder
                    .write_all(data)
                    .map_err(|e| format!("xz compression failed: {e}"))?;
                *out = encoder
                    .finish()
                    .map_err(|e| format!("xz compression failed: {e}"))?;
                Ok(())
            }
            Self::Lz4 {
                block_size,
                framing,
            } => match framing {
                Lz4Framing::Java => lz4_java_compress_append(data, *block_size, out),
                Lz4Framing::Z5 => {
                    let start = out.len();
                    out.resize(
                        start + lz4_flex::block::get_maximum_output_size(data.len()),
                        0,
                    );
                    let written = lz4_flex::block::compress_into(data, &mut out[start..])
                        .map_err(|e| format!("lz4 compression failed: {e}"))?;
                    out.truncate(start + written);
                    Ok(())
                }
            },
        }
    }
}

fn size_mismatch(got: usize, expected: usize) -> String {
    if got < expected {
        format!("data decodes to {got} bytes, fewer than the {expected} the block header promises")
    } else {
        format!("data decodes to {got} bytes, more than the {expected} the block header promises")
    }
}

/// Fills `out` from a decoding reader and checks that the stream ends there (which also makes
/// the gzip and xz readers verify their trailing checksums).
fn read_exactly(mut reader: impl Read, out: &mut [u8], codec: &str) -> Result<(), String> {
    let mut filled = 0;
    while filled < out.len() {
        match reader.read(&mut out[filled..]) {
            Ok(0) => return Err(size_mismatch(filled, out.len())),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{codec} decompression failed: {e}")),
        }
    }
    let mut probe = [0u8; 1];
    match reader.read(&mut probe) {
        Ok(0) => Ok(()),
        Ok(_) => Err(size_mismatch(out.len() + 1, out.len())),
        Err(e) => Err(format!("{codec} decompression failed: {e}")),
    }
}

thread_local! {
    // libdeflate's (de)compressors are allocated once per thread (a compressor per level).
    static INFLATER: RefCell<Option<libdeflater::Decompressor>> = const { RefCell::new(None) };
    static DEFLATER: RefCell<Option<(i32, libdeflater::Compressor)>> = const { RefCell::new(None) };
}

/// Inflates gzip- or zlib-wrapped deflate data (libdeflate: whole-buffer, and faster than
/// zlib's streaming inflate), checking the trailing CRC32 or Adler-32. The wrapper is detected
/// rather than taken from `useZlib`, on which writers disagree (old z5 wrote zlib for tiny
/// blocks of gzip datasets). Bytes after a complete gzip member are ignored.
fn inflate(data: &[u8], out: &mut [u8]) -> Result<(), String> {
    let is_gzip = data.starts_with(&[0x1f, 0x8b]);
    let result = INFLATER.with(|cell| {
        let mut cell = cell.borrow_mut();
        let inflater = cell.get_or_insert_with(libdeflater::Decompressor::new);
        if is_gzip {
            inflater.gzip_decompress(data, out)
        } else {
            inflater.zlib_decompress(data, out)
        }
    });
    let codec = if is_gzip { "gzip" } else { "zlib" };
    match result {
        Ok(n) if n == out.len() => Ok(()),
        Ok(n) => Err(size_mismatch(n, out.len())),
        Err(libdeflater::DecompressionError::InsufficientSpace) => Err(format!(
            "{codec} data decodes to more than the {} bytes the block header promises",
            out.len()
        )),
        Err(libdeflater::DecompressionError::BadData) => Err(format!(
            "{codec} data is invalid, truncated or fails its checksum"
        )),
    }
}

/// Deflate (libdeflate) with a gzip wrapper (no name, mtime 0) or a zlib one, straight into
/// `out`. Levels are zlib's (-1 = 6); libdeflate's level 1 is as fast as zlib's and smaller.
fn deflate_append(
    data: &[u8],
    level: i32,
    use_zlib: bool,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let level = if level < 0 { 6 } else { level };
    DEFLATER.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|(cached, _)| *cached != level) {
            let lvl = libdeflater::CompressionLvl::new(level)
                .map_err(|_| format!("gzip level {level} is outside -1..=9"))?;
            *cell = Some((level, libdeflater::Compressor::new(lvl)));
        }
        let (_, deflater) = cell.as_mut().expect("set above");
        let start = out.len();
        let bound = if use_zlib {
            deflater.zlib_compress_bound(data.len())
        } else {
            deflater.gzip_compress_bound(data.len())
        };
        out.resize(start + bound, 0);
        let written = if use_zlib {
            deflater.zlib_compress(data, &mut out[start..])
        } else {
            deflater.gzip_compress(data, &mut out[start..])
        }
        .map_err(|e| format!("deflate failed: {e}"))?;
        out.truncate(start + written);
        Ok(())
    })
}

thread_local! {
    // zstd contexts are costly to create and need no lock when kept per thread.
    static ZSTD_DCTX: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> = const { RefCell::new(None) };
    static ZSTD_CCTX: RefCell<Option<zstd::zstd_safe::CCtx<'static>>> = const { RefCell::new(None) };
}

fn zstd_decompress(data: &[u8], out: &mut [u8]) -> Result<(), String> {
    // A first frame that records a larger size than expected would fail as "destination too
    // small"; say what is wrong instead.
    if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(data) {
        if size > out.len() as u64 {
            return Err(size_mismatch(size as usize, out.len()));
        }
    }
    let written = ZSTD_DCTX.with(|cell| {
        let mut cell = cell.borrow_mut();
        let dctx = cell.get_or_insert_with(zstd::zstd_safe::DCtx::create);
        dctx.decompress(out, data)
    });
    match written {
        Ok(n) if n == out.len() => Ok(()),
        Ok(n) => Err(size_mismatch(n, out.len())),
        Err(code) => Err(format!(
            "zstd decompression failed: {}",
            zstd::zstd_safe::get_error_name(code)
        )),
    }
}

fn zstd_compress_append(data: &[u8], level: i32, out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    out.resize(start + zstd::zstd_safe::compress_bound(data.len()), 0);
    let written = ZSTD_CCTX.with(|cell| {
        let mut cell = cell.borrow_mut();
        let cctx = cell.get_or_insert_with(zstd::zstd_safe::CCtx::create);
        cctx.compress(&mut out[start..], data, level)
    });
    match written {
        Ok(n) => {
            out.truncate(start + n);
            Ok(())
        }
        Err(code) => Err(format!(
            "zstd compression failed: {}",
            zstd::zstd_safe::get_error_name(code)
        )),
    }
}

fn blosc_decompress(data: &[u8], out: &mut [u8]) -> Result<(), String> {
    let mut nbytes = 0usize;
    // SAFETY: `data` is valid for `data.len()` bytes; validation reads only inside them.
    let valid =
        unsafe { blosc_src::blosc_cbuffer_validate(data.as_ptr().cast(), data.len(), &mut nbytes) };
    if valid != 0 {
        return Err("blosc data is invalid or truncated".to_string());
    }
    if nbytes != out.len() {
        return Err(size_mismatch(nbytes, out.len()));
    }
    // SAFETY: `blosc_cbuffer_validate` checked that the compressed buffer fits in `data`;
    // blosc writes at most `out.len()` bytes into `out`; the context API keeps no global state.
    let written = unsafe {
        blosc_src::blosc_decompress_ctx(data.as_ptr().cast(), out.as_mut_ptr().cast(), out.len(), 1)
    };
    if written < 0 || written as usize != out.len() {
        return Err(format!("blosc decompression failed (code {written})"));
    }
    Ok(())
}

fn blosc_compress_append(
    data: &[u8],
    itemsize: usize,
    cname: &str,
    clevel: u8,
    shuffle: u8,
    blocksize: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let cname = CString::new(cname).map_err(|_| format!("invalid blosc compressor {cname:?}"))?;
    let start = out.len();
    let capacity = data.len() + blosc_src::BLOSC_MAX_OVERHEAD as usize;
    out.resize(start + capacity, 0);
    // SAFETY: `data` is valid for `data.len()` bytes and `out[start..]` for `capacity` bytes,
    // which blosc never exceeds; the context API keeps no global state.
    let written = unsafe {
        blosc_src::blosc_compress_ctx(
            i32::from(clevel),
            i32::from(shuffle),
            itemsize,
            data.len(),
            data.as_ptr().cast(),
            out[start..].as_mut_ptr().cast(),
            capacity,
            cname.as_ptr(),
            blocksize,
            1,
        )
    };
    if written <= 0 {
        return Err(format!("blosc compression failed (code {written})"));
    }
    out.truncate(start + written as usize);
    Ok(())
}

/// LZ4 data framed like Java N5 (`LZ4Block` frames) or like z5py (one bare block).
fn lz4_decompress(data: &[u8], out: &mut [u8]) -> Result<(), String> {
    if data.starts_with(LZ4_MAGIC) {
        return lz4_java_decompress(data, out);
    }
    match lz4_flex::block::decompress_into(data, out) {
        Ok(n) if n == out.len() => Ok(()),
        Ok(n) => Err(size_mismatch(n, out.len())),
        Err(e) => Err(format!("lz4 decompression failed: {e}")),
    }
}

fn lz4_checksum(data: &[u8]) -> u32 {
    // lz4-java's default checksum: xxhash32 with its seed, low 28 bits.
    twox_hash::XxHash32::oneshot(LZ4_SEED, data) & 0x0fff_ffff
}

fn lz4_java_decompress(data: &[u8], out: &mut [u8]) -> Result<(), String> {
    let le32 = |bytes: &[u8]| u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let (mut pos, mut filled) = (0usize, 0usize);
    loop {
        let header = data
            .get(pos..pos + LZ4_FRAME_HEADER)
            .ok_or_else(|| format!("lz4 frame header at byte {pos} is truncated"))?;
        if &header[..8] != LZ4_MAGIC {
            return Err(format!(
                "lz4 frame at byte {pos} does not start with \"LZ4Block\""
            ));
        }
        let token = header[8];
        let (method, level) = (token & 0xf0, 10 + u32::from(token & 0x0f));
        let (compressed, original, checksum) =
            (le32(&header[9..]), le32(&header[13..]), le32(&header[17..]));
        pos += LZ4_FRAME_HEADER;
        if original == 0 && compressed == 0 {
            break; // the end frame
        }
        if original > 1 << level || (method == LZ4_METHOD_RAW && compressed != original) {
            return Err(format!(
                "lz4 frame at byte {} has inconsistent sizes",
                pos - LZ4_FRAME_HEADER
            ));
        }
        let payload = data
            .get(pos..pos + compressed)
            .ok_or_else(|| format!("lz4 frame at byte {} is truncated", pos - LZ4_FRAME_HEADER))?;
        let out_len = out.len();
        let target = out
            .get_mut(filled..filled + original)
            .ok_or_else(|| size_mismatch(filled + original, out_len))?;
        match method {
            LZ4_METHOD_RAW => target.copy_from_slice(payload),
            LZ4_METHOD_LZ4 => match lz4_flex::block::decompress_into(payload, target) {
                Ok(n) if n == original => {}
                Ok(_) => return Err("lz4 frame decodes to fewer bytes than it records".to_string()),
                Err(e) => return Err(format!("lz4 decompression failed: {e}")),
            },
            _ => {
                return Err(format!(
                    "lz4 frame has unknown compression method {method:#x}"
                ))
            }
        }
        if lz4_checksum(target) as usize != checksum {
            return Err(format!(
                "lz4 frame at byte {} fails its checksum",
                pos - LZ4_FRAME_HEADER
            ));
        }
        pos += compressed;
        filled += original;
    }
    if filled != out.len() {
        return Err(size_mismatch(filled, out.len()));
    }
    if pos != data.len() {
        return Err(format!(
            "{} bytes follow the lz4 end frame",
            data.len() - pos
        ));
    }
    Ok(())
}

fn lz4_java_compress_append(data: &[u8], block_size: u32, out: &mut Vec<u8>) -> Result<(), String> {
    let block_size = block_size.clamp(LZ4_MIN_BLOCK_SIZE, LZ4_MAX_BLOCK_SIZE);
    // lz4-java's "compression level": log2 of the frame size, rounded up, minus 10.
    let level = (32 - (block_size - 1).leading_zeros()).saturating_sub(10) as u8;
    for frame in data.chunks(block_size as usize) {
        let start = out.len();
        let bound = lz4_flex::block::get_maximum_output_size(frame.len());
        out.resize(start + LZ4_FRAME_HEADER + bound, 0);
        let compressed =
            lz4_flex::block::compress_into(frame, &mut out[start + LZ4_FRAME_HEADER..])
                .map_err(|e| format!("lz4 compression failed: {e}"))?;
        let (method, length) = if compressed >= frame.len() {
            out[start + LZ4_FRAME_HEADER..start + LZ4_FRAME_HEADER + frame.len()]
                .copy_from_slice(frame);
            (LZ4_METHOD_RAW, frame.len())
        } else {
            (LZ4_METHOD_LZ4, compressed)
        };
        out.truncate(start + LZ4_FRAME_HEADER + length);
        let header = &mut out[start..start + LZ4_FRAME_HEADER];
        header[..8].copy_from_slice(LZ4_MAGIC);
        header[8] = method | level;
        header[9..13].copy_from_slice(&(length as u32).to_le_bytes());
        header[13..17].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        header[17..21].copy_from_slice(&lz4_checksum(frame).to_le_bytes());
    }
    out.extend_from_slice(LZ4_MAGIC);
    out.push(LZ4_METHOD_RAW | level);
    out.extend_from_slice(&[0; 12]);
    Ok(())
}
