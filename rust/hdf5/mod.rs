//! HDF5 datasets as [`ChunkedArray`]s, through the `hdf5-metno` crates (bundled HDF5 2.x).
//!
//! HDF5 built this way is not thread-safe: `hdf5-metno` serializes every library call behind
//! one global lock. So the read path avoids the library for chunk data: at open (and after each
//! write through this handle) the chunk index — each stored chunk's file address, size and
//! filter mask — is collected once with `H5Dchunk_iter`; `read_chunk` then reads the raw bytes
//! with a positional read and inflates / unshuffles them itself, so chunks decode in parallel
//! on the generic rayon path of `crate::chunked`. Chunks the fast path cannot decode (a filter
//! other than deflate and shuffle, a partially disabled pipeline, a non-native byte order) are
//! read through the library, under its lock: correct first.
//!
//! Contiguous datasets get a virtual chunk grid (slabs of about 1 MiB along axis 0), read with
//! one positional read per slab. Writes go through the library (`write_slice`), followed by a
//! flush; the chunk index is recollected before the next read.
//!
//! The fast path decodes deflate (gzip), shuffle and h5py's LZF filter, honouring each chunk's
//! filter mask (a filter that did not help is skipped for that chunk). Files are shared per
//! process and opened without HDF5's file locks: see [`file`].
//!
//! HDF5 edge chunks are stored full size (unlike N5): they are decoded whole and clipped.
//!
//! Element types: integers, bool (h5py's enum), floats (float16 as HDF5's IEEE half type, as
//! h5py writes it), and complex64 / complex128 as h5py's compound `{r, i}` of two floats, which
//! is what datasets are created with (HDF5 2.0's own complex class is read and written too, in
//! native byte order). Stored bytes in the other byte order are swapped per float, so each part
//! of a complex number on its own.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File as StdFile;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use hdf5_metno as h5;
use hdf5_metno::datatype::ByteOrder;
use hdf5_metno::filters::Filter;
use hdf5_metno::types::{CompoundType, FloatSize, IntSize, TypeDescriptor};
use hdf5_metno::{Hyperslab, Selection, SliceOrIndex};
use ndarray::{ArrayViewD, IxDyn};

use crate::buffer;
use crate::chunked::{
    check_region, chunk_region, copy_box, region_bytes, write_region_by_chunks, ChunkedArray,
};
use crate::dtype::{with_element_type, DataType};
use crate::error::{Error, Result};
use crate::zarr::FillScalar;

mod file;
mod lzf;

pub use file::{create_hdf5_file, hdf5_node_kind, list_hdf5_arrays, NodeKind};
use file::{metadata_error, SharedFile};

/// Compression of a dataset we create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hdf5Compression {
    None,
    /// Deflate (gzip), level 0..=9.
    Gzip {
        level: u8,
    },
    /// h5py's LZF filter: fast, light compression.
    Lzf,
}

/// How to create a dataset.
#[derive(Clone, Debug)]
pub struct Hdf5Create {
    pub shape: Vec<u64>,
    /// `None` makes a contiguous dataset, which takes no compression or shuffle.
    pub chunk_shape: Option<Vec<u64>>,
    pub dtype: DataType,
    pub compression: Hdf5Compression,
    /// Byte-shuffle before compressing (helps multi-byte types).
    pub shuffle: bool,
    /// `None`: zero (HDF5's default).
    pub fill_value: Option<FillScalar>,
    /// Replace an existing dataset at the key (else that is an error).
    pub overwrite: bool,
}

impl Hdf5Compression {
    /// `"raw"` / `"none"`, `"gzip"` (level 0..=9, default 4 as in h5py) or `"lzf"` (no level).
    pub fn from_name(name: &str, level: Option<i32>) -> Result<Self> {
        match (name, level) {
            ("raw" | "none", None) => Ok(Hdf5Compression::None),
            ("gzip" | "deflate", level) => match u8::try_from(level.unwrap_or(4)) {
                Ok(level) if level <= 9 => Ok(Hdf5Compression::Gzip { level }),
                _ => Err(Error::InvalidArgument(format!(
                    "gzip level {} is not in 0..=9",
                    level.unwrap_or_default()
                ))),
            },
            ("lzf", None) => Ok(Hdf5Compression::Lzf),
            ("raw" | "none" | "lzf", Some(level)) => Err(Error::InvalidArgument(format!(
                "compression {name:?} takes no level, got {level}"
            ))),
            _ => Err(Error::InvalidArgument(format!(
                "unknown HDF5 compression {name:?}; expected one of raw, gzip, lzf"
            ))),
        }
    }
}

/// Where one stored chunk lives in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ChunkEntry {
    addr: u64,
    size: u64,
    filter_mask: u32,
}

/// One decode step of the filter pipeline we implement ourselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Shuffle,
    /// Deflate at this level (the level matters only when writing).
    Deflate(u8),
    Lzf,
    /// A Fletcher-32 checksum appended to the data (verified and stripped on reading).
    Fletcher32,
}

enum Storage {
    Chunked {
        index: RwLock<HashMap<Vec<u64>, ChunkEntry>>,
        /// Filters in pipeline (write) order; `None` when one of them is not implemented here.
        pipeline: Option<Vec<Step>>,
    },
    Contiguous {
        /// File offset of the raw data; `None` while the dataset is not allocated.
        offset: RwLock<Option<u64>>,
    },
}

/// A dataset in an HDF5 file.
pub struct Hdf5Array {
    path: PathBuf,
    key: String,
    writable: bool,
    file: Arc<SharedFile>,
    raw: StdFile,
    /// The file's write generation the chunk index (or data offset) was collected at.
    index_generation: AtomicU64,
    shape: Vec<u64>,
    chunk_shape: Vec<u64>,
    dtype: DataType,
    fill: Vec<u8>,
    /// Whether the stored bytes are in native byte order (positional reads need no swap).
    native_order: bool,
    storage: Storage,
}

/// An element type we move between bytes and `hdf5-metno`'s typed API.
trait Element: h5::H5Type + Copy + Default {
    fn from_bytes(bytes: &[u8]) -> Vec<Self>;
    fn to_bytes(values: &[Self], out: &mut [u8]);
    /// The fill value as this type; `None` when it does not fit.
    fn from_fill(fill: FillScalar) -> Option<Self>;
}

macro_rules! numeric_element {
    ($convert:ident: $($t:ty),*) => {$(
        impl Element for $t {
            fn from_fill(fill: FillScalar) -> Option<Self> {
                $convert(fill)
            }
            fn from_bytes(bytes: &[u8]) -> Vec<Self> {
                bytes
                    .chunks_exact(size_of::<$t>())
                    .map(|b| <$t>::from_ne_bytes(b.try_into().unwrap()))
                    .collect()
            }
            fn to_bytes(values: &[Self], out: &mut [u8]) {
                for (o, v) in out.chunks_exact_mut(size_of::<$t>()).zip(values) {
                    o.copy_from_slice(&v.to_ne_bytes());
                }
            }
        }
    )*};
}
/// Integers must fit exactly; an integral float is accepted.
fn int_fill<T: TryFrom<i128>>(fill: FillScalar) -> Option<T> {
    match fill.real()? {
        FillScalar::Int(value) => T::try_from(value).ok(),
        FillScalar::Float(value) if value.fract() == 0.0 && value.abs() < 1e38 => {
            T::try_from(value as i128).ok()
        }
        FillScalar::Float(_) | FillScalar::Complex(..) => None,
    }
}

trait FromF64 {
    fn from_f64(value: f64) -> Self;
}
impl FromF64 for f32 {
    fn from_f64(value: f64) -> Self {
        value as f32
    }
}
impl FromF64 for f64 {
    fn from_f64(value: f64) -> Self {
        value
    }
}

/// A complex value fits only with a zero imaginary part.
fn float_fill<T: FromF64>(fill: FillScalar) -> Option<T> {
    Some(T::from_f64(fill.real()?.parts().0))
}

numeric_element!(int_fill: i8, i16, i32, i64, u8, u16, u32, u64);
numeric_element!(float_fill: f32, f64);

impl FromF64 for half::f16 {
    fn from_f64(value: f64) -> Self {
        half::f16::from_f64(value)
    }
}

impl Element for half::f16 {
    /// A finite value beyond float16's range does not fit.
    fn from_fill(fill: FillScalar) -> Option<Self> {
        let value: half::f16 = float_fill(fill)?;
        let wanted = fill.parts().0;
        (value.is_finite() || !wanted.is_finite()).then_some(value)
    }
    fn from_bytes(bytes: &[u8]) -> Vec<Self> {
        bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_ne_bytes([b[0], b[1]]))
            .collect()
    }
    fn to_bytes(values: &[Self], out: &mut [u8]) {
        for (o, v) in out.chunks_exact_mut(2).zip(values) {
            o.copy_from_slice(&v.to_ne_bytes());
        }
    }
}

/// complex64 / complex128: h5py's compound `{r, i}`, laid out as numpy's complex numbers.
macro_rules! complex_element {
    ($($t:ty),*) => {$(
        impl Element for num_complex::Complex<$t> {
            fn from_fill(fill: FillScalar) -> Option<Self> {
                let (re, im) = fill.parts();
                Some(Self::new(re as $t, im as $t))
            }
            fn from_bytes(bytes: &[u8]) -> Vec<Self> {
                const PART: usize = size_of::<$t>();
                bytes
                    .chunks_exact(2 * PART)
                    .map(|b| {
                        let re = <$t>::from_ne_bytes(b[..PART].try_into().unwrap());
                        let im = <$t>::from_ne_bytes(b[PART..].try_into().unwrap());
                        Self::new(re, im)
                    })
                    .collect()
            }
            fn to_bytes(values: &[Self], out: &mut [u8]) {
                const PART: usize = size_of::<$t>();
                for (o, v) in out.chunks_exact_mut(2 * PART).zip(values) {
                    o[..PART].copy_from_slice(&v.re.to_ne_bytes());
                    o[PART..].copy_from_slice(&v.im.to_ne_bytes());
                }
            }
        }
    )*};
}
complex_element!(f32, f64);

impl Element for bool {
    fn from_fill(fill: FillScalar) -> Option<Self> {
        match int_fill::<u8>(fill) {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        }
    }
    fn from_bytes(bytes: &[u8]) -> Vec<Self> {
        bytes.iter().map(|&b| b != 0).collect()
    }
    fn to_bytes(values: &[Self], out: &mut [u8]) {
        for (o, &v) in out.iter_mut().zip(values) {
            *o = u8::from(v);
        }
    }
}

fn selection(region: &[Range<u64>]) -> Selection {
    let slices: Vec<SliceOrIndex> = region
        .iter()
        .map(|r| SliceOrIndex::from(r.start as usize..r.end as usize))
        .collect();
    Selection::from(Hyperslab::from(slices))
}

fn to_usize(values: &[u64]) -> Vec<usize> {
    values.iter().map(|&v| v as usize).collect()
}

/// Our type for an HDF5 type (a compound type only in h5py's complex layout, see
/// [`complex_of`]).
fn dtype_of(descriptor: &TypeDescriptor) -> Option<DataType> {
    Some(match descriptor {
        TypeDescriptor::Boolean => DataType::Bool,
        TypeDescriptor::Integer(IntSize::U1) => DataType::Int8,
        TypeDescriptor::Integer(IntSize::U2) => DataType::Int16,
        TypeDescriptor::Integer(IntSize::U4) => DataType::Int32,
        TypeDescriptor::Integer(IntSize::U8) => DataType::Int64,
        TypeDescriptor::Unsigned(IntSize::U1) => DataType::UInt8,
        TypeDescriptor::Unsigned(IntSize::U2) => DataType::UInt16,
        TypeDescriptor::Unsigned(IntSize::U4) => DataType::UInt32,
        TypeDescriptor::Unsigned(IntSize::U8) => DataType::UInt64,
        TypeDescriptor::Float(FloatSize::U2) => DataType::Float16,
        TypeDescriptor::Float(FloatSize::U4) => DataType::Float32,
        TypeDescriptor::Float(FloatSize::U8) => DataType::Float64,
        TypeDescriptor::Compound(compound) => return complex_of(compound),
        _ => return None,
    })
}

/// complex64 / complex128 for h5py's complex layout: a compound of two floats of one size named
/// `r` and `i` (h5py's default `complex_names`), at offsets 0 and that size, and nothing else.
fn complex_of(compound: &CompoundType) -> Option<DataType> {
    let [re, im] = compound.fields.as_slice() else {
        return None;
    };
    let (re, im) = if re.offset <= im.offset {
        (re, im)
    } else {
        (im, re)
    };
    let (dtype, part) = match re.ty {
        TypeDescriptor::Float(FloatSize::U4) => (DataType::Complex64, 4),
        TypeDescriptor::Float(FloatSize::U8) => (DataType::Complex128, 8),
        _ => return None,
    };
    let layout = (re.name.as_str(), re.offset, im.name.as_str(), im.offset);
    (layout == ("r", 0, "i", part) && im.ty == re.ty && compound.size == 2 * part).then_some(dtype)
}

/// The bit layout of the float type `id`: size in bytes, sign bit, exponent position and size,
/// mantissa position and size, exponent bias; `None` when `id` is no float type.
fn float_layout(id: hdf5_metno_sys::h5i::hid_t) -> Option<[usize; 7]> {
    use hdf5_metno_sys::h5t::{
        H5T_class_t, H5Tget_class, H5Tget_ebias, H5Tget_fields, H5Tget_size,
    };
    let (mut spos, mut epos, mut esize, mut mpos, mut msize) = (0, 0, 0, 0, 0);
    // SAFETY: `id` is a live datatype id; the out-pointers are valid locals. The library lock
    // is held for the calls.
    h5::sync::sync(|| unsafe {
        if H5Tget_class(id) != H5T_class_t::H5T_FLOAT {
            return None;
        }
        let status = H5Tget_fields(id, &mut spos, &mut epos, &mut esize, &mut mpos, &mut msize);
        (status >= 0).then(|| {
            let (size, bias) = (H5Tget_size(id), H5Tget_ebias(id));
            [size, spos, epos, esize, mpos, msize, bias]
        })
    })
}

/// IEEE 754 half, single and double precision (h5py's float16 is the first).
const IEEE_HALF: [usize; 7] = [2, 15, 10, 5, 0, 10, 15];
const IEEE_SINGLE: [usize; 7] = [4, 31, 23, 8, 0, 23, 127];
const IEEE_DOUBLE: [usize; 7] = [8, 63, 52, 11, 0, 52, 1023];

/// Whether a 2-byte HDF5 float is IEEE half precision, not some other 16-bit float layout.
fn is_ieee_half(datatype: &h5::Datatype) -> bool {
    float_layout(datatype.id()) == Some(IEEE_HALF)
}

/// For HDF5 2.0's own complex class (`H5T_COMPLEX`, which `hdf5-metno` cannot describe):
/// complex64 / complex128 for parts of IEEE float32 / float64 (the layout of h5py's compound,
/// and the library converts between the two), `Err` for other parts; `None` for other classes.
fn native_complex_of(datatype: &h5::Datatype) -> Option<std::result::Result<DataType, String>> {
    use hdf5_metno_sys::h5t::{H5T_class_t, H5Tclose, H5Tget_class, H5Tget_super};
    // SAFETY: `datatype` is a live datatype id; the id `H5Tget_super` returns is closed here
    // and nowhere else. The library lock is held for the calls.
    let parts = h5::sync::sync(|| unsafe {
        if H5Tget_class(datatype.id()) != H5T_class_t::H5T_COMPLEX {
            return None;
        }
        let part = H5Tget_super(datatype.id());
        if part < 0 {
            return Some(None);
        }
        let layout = float_layout(part);
        H5Tclose(part);
        Some(layout)
    })?;
    Some(match parts {
        Some(IEEE_SINGLE) => Ok(DataType::Complex64),
        Some(IEEE_DOUBLE) => Ok(DataType::Complex128),
        Some([size, ..]) => Err(format!(
            "unsupported HDF5 datatype: complex numbers of {size}-byte floats (supported: parts \
             of IEEE float32 or float64)"
        )),
        None => Err("unsupported HDF5 datatype: a complex type without a float base".to_owned()),
    })
}

/// The decode steps of a filter pipeline, `None` when one filter is not implemented here.
fn pipeline_of(filters: &[Filter]) -> Option<Vec<Step>> {
    filters
        .iter()
        .map(|filter| match filter {
            Filter::Shuffle => Some(Step::Shuffle),
            Filter::Deflate(level) => Some(Step::Deflate(*level)),
            Filter::LZF => Some(Step::Lzf),
            Filter::Fletcher32 => Some(Step::Fletcher32),
            _ => None,
        })
        .collect()
}

/// Undoes HDF5's byte shuffle: the stream holds byte 0 of every element, then byte 1, ...
/// Trailing bytes that do not fill an element are stored unshuffled.
fn unshuffle(shuffled: &[u8], itemsize: usize, out: &mut [u8]) {
    let count = shuffled.len() / itemsize;
    for byte in 0..itemsize {
        let plane = &shuffled[byte * count..(byte + 1) * count];
        for (i, &b) in plane.iter().enumerate() {
            out[i * itemsize + byte] = b;
        }
    }
    let tail = count * itemsize;
    out[tail..].copy_from_slice(&shuffled[tail..]);
}

/// HDF5's Fletcher-32 checksum (`H5_checksum_fletcher32`): sums of big-endian 16-bit words,
/// an odd last byte as the high byte of a word.
fn fletcher32(data: &[u8]) -> u32 {
    let (mut sum1, mut sum2) = (0u32, 0u32);
    let even = data.len() & !1;
    // 360 words are the most that can be summed without overflowing before a reduction.
    for block in data[..even].chunks(2 * 360) {
        for word in block.chunks_exact(2) {
            sum1 += (u32::from(word[0]) << 8) | u32::from(word[1]);
            sum2 += sum1;
        }
        sum1 = (sum1 & 0xffff) + (sum1 >> 16);
        sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    }
    if let Some(&last) = data.get(even) {
        sum1 += u32::from(last) << 8;
        sum2 += sum1;
        sum1 = (sum1 & 0xffff) + (sum1 >> 16);
        sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    }
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    (sum2 << 16) | sum1
}

/// Checks the Fletcher-32 checksum stored (little-endian) in the last 4 bytes of `input`, as
/// the HDF5 library does (also accepting the byte-swapped value libraries before 1.6.3 wrote),
/// and returns the data before it.
fn strip_fletcher32(input: &[u8]) -> std::result::Result<&[u8], String> {
    let Some(split) = input.len().checked_sub(4) else {
        return Err("the chunk is too short for its Fletcher-32 checksum".to_owned());
    };
    let (data, stored) = input.split_at(split);
    let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
    let computed = fletcher32(data);
    let c = computed.to_ne_bytes();
    let reversed = u32::from_ne_bytes([c[1], c[0], c[3], c[2]]);
    if stored == computed || stored == reversed {
        Ok(data)
    } else {
        Err("the data fails its Fletcher-32 checksum".to_owned())
    }
}

/// Reverses the bytes of every scalar of `size` bytes (to or from the other byte order): of
/// every element, or of each part of a complex number (`DataType::component_size`).
fn swap_bytes(data: &mut [u8], size: usize) {
    if size > 1 {
        data.chunks_exact_mut(size).for_each(<[u8]>::reverse);
    }
}

/// HDF5's byte shuffle: byte 0 of every element, then byte 1, ...; trailing bytes that do not
/// fill an element are stored as they are.
fn shuffle(data: &[u8], itemsize: usize, out: &mut [u8]) {
    let count = data.len() / itemsize;
    for byte in 0..itemsize {
        let plane = &mut out[byte * count..(byte + 1) * count];
        for (i, b) in plane.iter_mut().enumerate() {
            *b = data[i * itemsize + byte];
        }
    }
    let tail = count * itemsize;
    out[tail..].copy_from_slice(&data[tail..]);
}

impl Hdf5Array {
    /// Opens dataset `key` ("a/b/c") of the HDF5 file at `path`.
    pub fn open(path: &Path, key: &str, writable: bool) -> Result<Self> {
        if !path.exists() {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such HDF5 file"),
            ));
        }
        let file = SharedFile::open(path, writable)?;
        Self::from_file(path, key, writable, file)
    }

    /// Creates dataset `key` (with its parent groups) in the file at `path` (created when
    /// missing), as `options` say.
    pub fn create(path: &Path, key: &str, options: &Hdf5Create) -> Result<Self> {
        let Hdf5Create {
            ref shape,
            ref chunk_shape,
            dtype,
            compression,
            shuffle,
            fill_value,
            overwrite,
        } = *options;
        let chunk_shape = chunk_shape.as_deref();
        let describe = format!("{}:{key}", path.display());
        let key = key.trim_matches('/');
        if key.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{describe}: an HDF5 array needs a dataset name (the root is a group)"
            )));
        }
        if let Some(chunks) = chunk_shape {
            if chunks.len() != shape.len() || chunks.contains(&0) {
                return Err(Error::InvalidArgument(format!(
                    "chunk shape {chunks:?} does not fit shape {shape:?} of {describe}"
                )));
            }
        } else if compression != Hdf5Compression::None || shuffle {
            return Err(Error::InvalidArgument(format!(
                "{describe}: compression and shuffle need a chunked dataset (give chunk_shape)"
            )));
        }
        if shape.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{describe}: scalar (0-d) datasets are not supported"
            )));
        }
        crate::chunked::check_shape(shape)
            .map_err(|reason| Error::InvalidArgument(format!("{describe}: {reason}")))?;
        if let Hdf5Compression::Gzip { level } = compression {
            if level > 9 {
                return Err(Error::InvalidArgument(format!(
                    "gzip level {level} of {describe} is not in 0..=9"
                )));
            }
        }
        let fill = match fill_value {
            None => None,
            Some(value) => Some(with_element_type!(dtype, T => {
                let mut bytes = vec![0u8; dtype.size()];
                let value = T::from_fill(value).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "fill value {value} does not fit dtype {} of {describe}",
                        dtype.name()
                    ))
                })?;
                T::to_bytes(&[value], &mut bytes);
                bytes
            })),
        };
        let file = SharedFile::create(path, false)?;
        let meta = |e: h5::Error| metadata_error(path, key, e);
        file.with_file(|h5file| {
            if h5file.link_exists(key) {
                if !overwrite {
                    return Err(Error::InvalidArgument(format!(
                        "{describe} exists (pass overwrite to replace it)"
                    )));
                }
                h5file.unlink(key).map_err(meta)?;
            }
            with_element_type!(dtype, T => {
                let mut builder = h5file.new_dataset::<T>().shape(to_usize(shape));
                if let Some(chunks) = chunk_shape {
                    builder = builder.chunk(to_usize(chunks));
                }
                if let Some(fill) = &fill {
                    builder = builder.fill_value(T::from_bytes(fill)[0]);
                }
                // Pipeline order: shuffle before the compressor, as h5py writes it.
                if shuffle {
                    builder = builder.shuffle();
                }
                builder = match compression {
                    Hdf5Compression::None => builder,
                    Hdf5Compression::Gzip { level } => builder.deflate(level),
                    Hdf5Compression::Lzf => builder.lzf(),
                };
                builder.create(key).map_err(meta)?;
            });
            h5file.flush().map_err(meta)
        })?;
        Self::from_file(path, key, true, file)
    }

    fn from_file(path: &Path, key: &str, writable: bool, file: Arc<SharedFile>) -> Result<Self> {
        let key = key.trim_matches('/');
        let describe = format!("{}:{key}", path.display());
        let meta = |reason: String| Error::Metadata {
            path: describe.clone(),
            reason,
        };
        let (dtype, native_order, library_only, shape, fill, chunks, filters) =
            file.with_dataset(key, |dataset| {
                let datatype = dataset.dtype().map_err(|e| meta(e.to_string()))?;
                let native_complex = native_complex_of(&datatype);
                let is_native_complex = native_complex.is_some();
                let dtype = match native_complex {
                    Some(complex) => complex.map_err(meta)?,
                    None => {
                        let descriptor =
                            datatype.to_descriptor().map_err(|e| meta(e.to_string()))?;
                        match dtype_of(&descriptor) {
                            Some(DataType::Float16) if !is_ieee_half(&datatype) => {
                                return Err(meta(
                                    "unsupported HDF5 datatype: a 2-byte float that is not IEEE \
                                     half precision (float16)"
                                        .to_owned(),
                                ))
                            }
                            Some(dtype) => dtype,
                            None => {
                                return Err(meta(format!(
                                    "unsupported HDF5 datatype {descriptor:?}; supported: {} \
                                     (complex as h5py writes it: a compound {{r, i}} of two \
                                     float32 or float64)",
                                    DataType::ALL.map(DataType::name).join(", ")
                                )))
                            }
                        }
                    }
                };
                let (native, swapped) = if cfg!(target_endian = "little") {
                    (ByteOrder::LittleEndian, ByteOrder::BigEndian)
                } else {
                    (ByteOrder::BigEndian, ByteOrder::LittleEndian)
                };
                let order = datatype.byte_order();
                let native_order = dtype.size() == 1 || order == native;
                // Neither native nor plainly swapped (a complex number with parts in different
                // byte orders): leave every conversion to the library.
                let library_only = !native_order && order != swapped;
                if is_native_complex && !native_order {
                    // The library converts `H5T_COMPLEX` to h5py's compound (our element type
                    // for its API) only in the same byte order.
                    return Err(meta(format!(
                        "unsupported HDF5 datatype: HDF5's complex class in {order:?} byte \
                         order (supported in native byte order, or as h5py's compound {{r, i}})"
                    )));
                }
                let shape: Vec<u64> = dataset.shape().iter().map(|&n| n as u64).collect();
                if shape.is_empty() {
                    return Err(meta("scalar (0-d) datasets are not supported".to_owned()));
                }
                crate::chunked::check_shape(&shape).map_err(meta)?;
                let dcpl = dataset.dcpl().map_err(|e| meta(e.to_string()))?;
                let fill = with_element_type!(dtype, T => {
                    let value: T = dcpl
                        .get_fill_value_as::<T>()
                        .map_err(|e| meta(e.to_string()))?
                        .unwrap_or_default();
                    let mut bytes = vec![0u8; dtype.size()];
                    T::to_bytes(&[value], &mut bytes);
                    bytes
                });
                let chunks = dataset.chunk();
                let filters = match chunks {
                    Some(_) => Some(dcpl.get_filters().map_err(|e| meta(e.to_string()))?),
                    None => None,
                };
                Ok((
                    dtype,
                    native_order,
                    library_only,
                    shape,
                    fill,
                    chunks,
                    filters,
                ))
            })?;
        let (chunk_shape, storage) = match (chunks, filters) {
            (Some(chunks), Some(filters)) => {
                let storage = Storage::Chunked {
                    index: RwLock::new(HashMap::new()),
                    pipeline: pipeline_of(&filters).filter(|_| !library_only),
                };
                (chunks.iter().map(|&c| c as u64).collect(), storage)
            }
            _ => {
                // A virtual chunk: slabs of about 1 MiB along axis 0 (contiguous in the file).
                let row_bytes = crate::buffer::element_count(&shape[1..])
                    .and_then(|n| n.checked_mul(dtype.size() as u64))
                    .unwrap_or(u64::MAX);
                let rows = ((1u64 << 20) / row_bytes.max(1)).clamp(1, shape[0].max(1));
                let mut chunk_shape = shape.clone();
                chunk_shape[0] = rows;
                for c in &mut chunk_shape {
                    *c = (*c).max(1);
                }
                let storage = Storage::Contiguous {
                    offset: RwLock::new(None),
                };
                (chunk_shape, storage)
            }
        };
        let raw = StdFile::open(file.path()).map_err(|e| Error::io(path, e))?;
        let array = Hdf5Array {
            path: path.to_path_buf(),
            key: key.to_owned(),
            writable,
            file,
            raw,
            index_generation: AtomicU64::new(u64::MAX),
            shape,
            chunk_shape,
            dtype,
            fill,
            native_order,
            storage,
        };
        array.refresh_index()?;
        Ok(array)
    }

    /// The HDF5 path of the dataset in its file.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether writes are allowed.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Recollects the chunk index (chunked) or the data offset (contiguous) when a write to the
    /// file (through any array) made it stale. Readers wait for the new index: old entries may
    /// point at freed file space.
    fn refresh_index(&self) -> Result<()> {
        let is_current = || self.index_generation.load(Ordering::Acquire) == self.file.generation();
        if is_current() {
            return Ok(());
        }
        match &self.storage {
            Storage::Chunked { index, .. } => {
                let mut guard = index.write().unwrap_or_else(|p| p.into_inner());
                if is_current() {
                    return Ok(());
                }
                let generation = self.file.generation();
                let mut map = HashMap::new();
                let chunk_shape = &self.chunk_shape;
                self.file.with_dataset(&self.key, |dataset| {
                    dataset
                        .chunks_visit(|info| {
                            let coords = info
                                .offset
                                .iter()
                                .zip(chunk_shape)
                                .map(|(&o, &c)| o / c)
                                .collect();
                            let entry = ChunkEntry {
                                addr: info.addr,
                                size: info.size,
                                filter_mask: info.filter_mask,
                            };
                            map.insert(coords, entry);
                            0
                        })
                        .map_err(|e| Error::Metadata {
                            path: self.describe(),
                            reason: format!("cannot list the stored chunks: {e}"),
                        })
                })?;
                *guard = map;
                self.index_generation.store(generation, Ordering::Release);
            }
            Storage::Contiguous { offset } => {
                let mut guard = offset.write().unwrap_or_else(|p| p.into_inner());
                if is_current() {
                    return Ok(());
                }
                let generation = self.file.generation();
                *guard = self
                    .file
                    .with_dataset(&self.key, |dataset| Ok(dataset.offset()))?;
                self.index_generation.store(generation, Ordering::Release);
            }
        }
        Ok(())
    }

    /// Reads `region` through the library (under its lock) into `out` (C order, native byte
    /// order): the slow path, and the reference the fast path is tested against.
    pub fn read_region_direct(&self, region: &[Range<u64>], out: &mut [u8]) -> Result<()> {
        check_region(region, &self.shape, &|| self.describe())?;
        if out.len() != region_bytes(region, self.dtype.size()) {
            return Err(Error::InvalidArgument(format!(
                "output buffer of {} bytes does not match region {region:?} of {}",
                out.len(),
                self.describe()
            )));
        }
        if region_bytes(region, 1) == 0 {
            return Ok(());
        }
        self.file.with_dataset(&self.key, |dataset| {
            with_element_type!(self.dtype, T => {
                let values: ndarray::ArrayD<T> = dataset
                    .read_slice::<T, _, IxDyn>(selection(region))
                    .map_err(|e| self.io_error(format!("cannot read region {region:?}: {e}")))?;
                match values.as_slice() {
                    Some(values) => T::to_bytes(values, out),
                    None => T::to_bytes(&values.iter().copied().collect::<Vec<_>>(), out),
                }
            });
            Ok(())
        })
    }

    /// The filters of a dataset whose chunks we encode and write ourselves: deflate and
    /// shuffle in native byte order (LZF, Fletcher-32 and other filters go through the
    /// library).
    fn direct_write_pipeline(&self) -> Option<&[Step]> {
        match &self.storage {
            Storage::Chunked {
                pipeline: Some(steps),
                ..
            } if self.native_order
                && steps
                    .iter()
                    .all(|step| matches!(step, Step::Shuffle | Step::Deflate(_))) =>
            {
                Some(steps)
            }
            _ => None,
        }
    }

    /// Applies the filter pipeline (in write order) to a full chunk.
    fn encode<'a>(&self, chunk: &[u64], steps: &[Step], full: &'a [u8]) -> Result<Cow<'a, [u8]>> {
        let mut data = Cow::Borrowed(full);
        for &step in steps {
            data = Cow::Owned(match step {
                Step::Shuffle => {
                    let mut out = vec![0u8; data.len()];
                    shuffle(&data, self.dtype.size(), &mut out);
                    out
                }
                Step::Deflate(level) => DEFLATERS.with_borrow_mut(|deflaters| {
                    let deflater = deflaters.entry(level).or_insert_with(|| {
                        let level =
                            libdeflater::CompressionLvl::new(i32::from(level)).unwrap_or_default();
                        libdeflater::Compressor::new(level)
                    });
                    let mut out = vec![0u8; deflater.zlib_compress_bound(data.len())];
                    let n = deflater.zlib_compress(&data, &mut out).map_err(|e| {
                        self.io_error(format!("cannot deflate chunk {chunk:?}: {e}"))
                    })?;
                    out.truncate(n);
                    Ok::<_, Error>(out)
                })?,
                Step::Lzf | Step::Fletcher32 => {
                    return Err(self.io_error(format!(
                        "chunk {chunk:?}: {step:?} is encoded by the library, not here"
                    )))
                }
            });
        }
        Ok(data)
    }

    /// Writes `region` through the library (`write_slice`), which encodes under its lock.
    fn write_through_library(&self, region: &[Range<u64>], data: &[u8]) -> Result<()> {
        let shape: Vec<usize> = region.iter().map(|r| (r.end - r.start) as usize).collect();
        self.file.with_dataset(&self.key, |dataset| {
            with_element_type!(self.dtype, T => {
                let values = T::from_bytes(data);
                let view = ArrayViewD::from_shape(IxDyn(&shape), &values)
                    .map_err(|e| Error::InvalidArgument(e.to_string()))?;
                dataset
                    .write_slice(view, selection(region))
                    .map_err(|e| self.io_error(format!("cannot write region {region:?}: {e}")))?;
            });
            Ok(())
        })?;
        self.flush()
    }

    /// Flushes the file, so positional reads see what was written.
    fn flush(&self) -> Result<()> {
        self.file.with_file(|file| {
            file.flush()
                .map_err(|e| self.io_error(format!("cannot flush: {e}")))
        })
    }

    fn io_error(&self, reason: String) -> Error {
        Error::Io {
            path: self.describe(),
            source: std::io::Error::other(reason),
        }
    }

    fn corrupt(&self, chunk: &[u64], reason: String) -> Error {
        Error::CorruptChunk {
            array: self.describe(),
            chunk: chunk.to_vec(),
            reason,
        }
    }

    /// Positional read of `len` bytes at `addr`; a short file is a corrupt chunk.
    fn read_at(&self, chunk: &[u64], addr: u64, buffer: &mut [u8]) -> Result<()> {
        self.raw.read_exact_at(buffer, addr).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                self.corrupt(
                    chunk,
                    format!(
                        "{} bytes at {addr} run past the end of the file",
                        buffer.len()
                    ),
                )
            } else {
                Error::io(&self.path, e)
            }
        })
    }

    /// Reads the stored chunk `entry` and decodes it through `steps` into `out` (a full
    /// chunk). Intermediate stages live in per-thread buffers and the last stage writes
    /// straight into `out`: no allocation (and no page faults) per chunk once warm.
    fn decode_into(
        &self,
        chunk: &[u64],
        entry: ChunkEntry,
        steps: &[Step],
        out: &mut [u8],
    ) -> Result<()> {
        // No filter here grows data by more than a little: a longer stored chunk is corrupt
        // (its index entry comes from the file) and is not read.
        let full = out.len() as u64;
        let max_stored = full.saturating_add(full / 4).saturating_add(64 << 10);
        if entry.size > max_stored {
            return Err(self.corrupt(
                chunk,
                format!(
                    "its index entry gives it {} bytes, more than any encoding of a {full}-byte \
                     chunk",
                    entry.size
                ),
            ));
        }
        let purpose = || format!("decoding chunk {chunk:?} of {}", self.describe());
        DECODE_BUFFERS.with_borrow_mut(|(current, next)| {
            buffer::resize(current, entry.size as usize, purpose)?;
            self.read_at(chunk, entry.addr, current)?;
            let mut len = current.len();
            for (i, &step) in steps.iter().rev().enumerate() {
                let target: &mut [u8] = if i + 1 == steps.len() {
                    out
                } else {
                    // An intermediate stage is at most a chunk, or its input when that is
                    // longer (a checksum stripped from compressed data).
                    buffer::resize(next, out.len().max(len), purpose)?;
                    next
                };
                len = self.decode_step(chunk, step, &current[..len], target)?;
                if i + 1 == steps.len() {
                    return self.check_decoded_len(chunk, len, out.len());
                }
                std::mem::swap(current, next);
            }
            self.check_decoded_len(chunk, len, out.len())?;
            out.copy_from_slice(&current[..len]);
            Ok(())
        })
    }

    /// Undoes one filter: `input` into the front of `target`, returning the bytes written.
    fn decode_step(
        &self,
        chunk: &[u64],
        step: Step,
        input: &[u8],
        target: &mut [u8],
    ) -> Result<usize> {
        match step {
            Step::Deflate(_) => crate::decompress::zlib_into(input, target)
                .map_err(|reason| self.corrupt(chunk, format!("cannot inflate: {reason}"))),
            Step::Lzf => lzf::decompress(input, target)
                .map_err(|reason| self.corrupt(chunk, format!("cannot unpack LZF: {reason}"))),
            Step::Fletcher32 => {
                let data = strip_fletcher32(input).map_err(|reason| self.corrupt(chunk, reason))?;
                let target = target.get_mut(..data.len()).ok_or_else(|| {
                    self.corrupt(
                        chunk,
                        "the checksummed data is larger than a chunk".to_owned(),
                    )
                })?;
                target.copy_from_slice(data);
                Ok(data.len())
            }
            Step::Shuffle => {
                let target = target.get_mut(..input.len()).ok_or_else(|| {
                    self.corrupt(chunk, "the shuffled data is larger than a chunk".to_owned())
                })?;
                unshuffle(input, self.dtype.size(), target);
                Ok(input.len())
            }
        }
    }

    fn check_decoded_len(&self, chunk: &[u64], len: usize, full: usize) -> Result<()> {
        if len == full {
            Ok(())
        } else {
            Err(self.corrupt(chunk, format!("decoded to {len} bytes, expected {full}")))
        }
    }
}

thread_local! {
    /// Per-thread stage buffers of `decode_into` (raw bytes, intermediate stage).
    static DECODE_BUFFERS: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    /// Per-thread full-chunk buffer for edge chunks, which are stored (and decoded) whole.
    static EDGE_CHUNK: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Per-thread compressors by deflate level.
    static DEFLATERS: RefCell<HashMap<u8, libdeflater::Compressor>> = RefCell::new(HashMap::new());
}

impl ChunkedArray for Hdf5Array {
    fn describe(&self) -> String {
        format!("{}:{}", self.path.display(), self.key)
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
    fn fill_value(&self) -> &[u8] {
        &self.fill
    }

    fn read_chunk(&self, chunk: &[u64], out: &mut [u8]) -> Result<bool> {
        let region = chunk_region(&self.shape, &self.chunk_shape, chunk, &|| self.describe())?;
        self.refresh_index()?;
        let itemsize = self.dtype.size();
        if out.len() != region_bytes(&region, itemsize) {
            return Err(Error::InvalidArgument(format!(
                "buffer of {} bytes does not match chunk {chunk:?} of {}",
                out.len(),
                self.describe()
            )));
        }
        match &self.storage {
            Storage::Contiguous { offset } => {
                let Some(offset) = *offset.read().unwrap_or_else(|p| p.into_inner()) else {
                    return Ok(false);
                };
                if !self.native_order {
                    self.read_region_direct(&region, out)?;
                    return Ok(true);
                }
                // A slab along axis 0 of a C-order array is one contiguous run (`out` holds
                // it, so its offset in the dataset fits; the file's offset may not).
                let row_bytes = out.len() as u64 / (region[0].end - region[0].start);
                let at = region[0]
                    .start
                    .checked_mul(row_bytes)
                    .and_then(|start| offset.checked_add(start))
                    .ok_or_else(|| {
                        self.corrupt(chunk, format!("its data at offset {offset} overflows"))
                    })?;
                self.read_at(chunk, at, out)?;
                Ok(true)
            }
            Storage::Chunked { index, pipeline } => {
                let entry = index
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(chunk)
                    .copied();
                let Some(entry) = entry else {
                    return Ok(false);
                };
                let steps: Vec<Step> = match pipeline {
                    // Bit i of the mask set: filter i was skipped for this chunk.
                    Some(steps)
                        if entry
                            .filter_mask
                            .checked_shr(steps.len() as u32)
                            .unwrap_or(0)
                            == 0 =>
                    {
                        let skipped = |i: usize| entry.filter_mask & (1 << i) != 0;
                        let active = steps.iter().enumerate().filter(|&(i, _)| !skipped(i));
                        active.map(|(_, &step)| step).collect()
                    }
                    _ => {
                        self.read_region_direct(&region, out)?;
                        return Ok(true);
                    }
                };
                let full = buffer::byte_len(&self.chunk_shape, itemsize).ok_or_else(|| {
                    Error::out_of_memory(
                        u64::MAX,
                        format!("chunk {chunk:?} of {}", self.describe()),
                    )
                })?;
                let region_shape: Vec<u64> = region.iter().map(|r| r.end - r.start).collect();
                if region_shape == self.chunk_shape {
                    self.decode_into(chunk, entry, &steps, out)?;
                    if !self.native_order {
                        swap_bytes(out, self.dtype.component_size());
                    }
                    return Ok(true);
                }
                EDGE_CHUNK.with_borrow_mut(|data| {
                    buffer::resize(data, full, || {
                        format!("decoding chunk {chunk:?} of {}", self.describe())
                    })?;
                    self.decode_into(chunk, entry, &steps, &mut data[..full])?;
                    let sel: Vec<Range<u64>> = region_shape.iter().map(|&n| 0..n).collect();
                    // SAFETY: `data` holds a full chunk of `chunk_shape` (its length is set
                    // above), `out` the clipped region of `region_shape` (checked above); `sel`
                    // lies in both, and `out` is exclusively borrowed.
                    unsafe {
                        copy_box(
                            data.as_ptr(),
                            &self.chunk_shape,
                            &sel,
                            out.as_mut_ptr(),
                            &region_shape,
                            &sel,
                            itemsize,
                        );
                    }
                    if !self.native_order {
                        swap_bytes(out, self.dtype.component_size());
                    }
                    Ok(true)
                })
            }
        }
    }

    /// One chunk of a `write_region` (which flushes the file and marks it written after all
    /// chunks): encoded here, in parallel with the other chunks, then stored with a direct
    /// chunk write under the library lock. Datasets whose filters we cannot encode go through
    /// the library instead.
    fn write_chunk(&self, chunk: &[u64], data: &[u8]) -> Result<()> {
        let region = chunk_region(&self.shape, &self.chunk_shape, chunk, &|| self.describe())?;
        let Some(steps) = self.direct_write_pipeline() else {
            return self.write_through_library(&region, data);
        };
        let itemsize = self.dtype.size();
        let region_shape: Vec<u64> = region.iter().map(|r| r.end - r.start).collect();
        let padded;
        // HDF5 stores edge chunks whole: pad the clipped region with the fill value.
        let full: &[u8] = if region_shape == self.chunk_shape {
            data
        } else {
            let len = buffer::byte_len(&self.chunk_shape, itemsize).unwrap_or(usize::MAX);
            let mut buffer = buffer::zeroed(len, || {
                format!("writing chunk {chunk:?} of {}", self.describe())
            })?;
            buffer
                .chunks_exact_mut(itemsize)
                .for_each(|e| e.copy_from_slice(&self.fill));
            let sel: Vec<Range<u64>> = region_shape.iter().map(|&n| 0..n).collect();
            // SAFETY: `data` holds the clipped region of `region_shape` (the caller's contract,
            // checked by `write_region_by_chunks`), `buffer` a full chunk; `sel` lies in both.
            unsafe {
                copy_box(
                    data.as_ptr(),
                    &region_shape,
                    &sel,
                    buffer.as_mut_ptr(),
                    &self.chunk_shape,
                    &sel,
                    itemsize,
                );
            }
            padded = buffer;
            &padded
        };
        let encoded = self.encode(chunk, steps, full)?;
        let offset: Vec<u64> = region.iter().map(|r| r.start).collect();
        self.file.with_dataset(&self.key, |dataset| {
            // SAFETY: `offset` holds one coordinate per axis of the dataset, `encoded` is a live
            // buffer of the length passed; the library lock is held for the call.
            let status = h5::sync::sync(|| unsafe {
                hdf5_metno_sys::h5d::H5Dwrite_chunk(
                    dataset.id(),
                    hdf5_metno_sys::h5p::H5P_DEFAULT,
                    0,
                    offset.as_ptr(),
                    encoded.len(),
                    encoded.as_ptr().cast(),
                )
            });
            if status < 0 {
                return Err(self.io_error(format!("cannot write chunk {chunk:?}")));
            }
            Ok(())
        })
    }

    fn chunk_exists(&self, chunk: &[u64]) -> Result<bool> {
        chunk_region(&self.shape, &self.chunk_shape, chunk, &|| self.describe())?;
        self.refresh_index()?;
        Ok(match &self.storage {
            Storage::Chunked { index, .. } => index
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(chunk),
            Storage::Contiguous { offset } => {
                offset.read().unwrap_or_else(|p| p.into_inner()).is_some()
            }
        })
    }

    fn write_region(&self, region: &[Range<u64>], data: &[u8]) -> Result<()> {
        if !self.writable {
            return Err(Error::InvalidArgument(format!(
                "{} is opened read-only",
                self.describe()
            )));
        }
        check_region(region, &self.shape, &|| self.describe())?;
        if data.len() != region_bytes(region, self.dtype.size()) {
            return Err(Error::InvalidArgument(format!(
                "{} bytes of data do not match region {region:?} of {}",
                data.len(),
                self.describe()
            )));
        }
        if region_bytes(region, 1) == 0 {
            return Ok(());
        }
        let written = if self.direct_write_pipeline().is_some() {
            write_region_by_chunks(self, region, data).and_then(|()| self.flush())
        } else {
            self.write_through_library(region, data)
        };
        // Even a failed write may have moved chunks.
        self.file.note_write();
        written
    }
}

#[cfg(test)]
mod tests;
