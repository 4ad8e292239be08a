//! The one error type of the Rust core. The binding layer maps each variant to a Python
//! exception by category (see `py/error_py.rs`), so messages here are what users read.

use std::fmt;

/// Everything the Rust core can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An integer index outside `[-size, size)` of its axis.
    #[error("index {index} is out of range for axis {axis} with size {size}")]
    OutOfRange { index: Int, axis: usize, size: u64 },
    /// An index object that is not an int, a slice, `...` or a tuple of them.
    #[error(
        "only ints, slices (`:`), ellipsis (`...`) or tuples of them are valid indices, got {0}"
    )]
    InvalidIndexType(String),
    /// A slice step other than 1.
    #[error(
        "slice step {step} on axis {axis} is not supported: only steps of 1 (or None) are valid"
    )]
    UnsupportedStep { step: i64, axis: usize },
    /// More than one `...` in an index.
    #[error("an index can only have a single ellipsis ('...')")]
    MultipleEllipsis,
    /// More non-ellipsis entries than the array has axes.
    #[error("too many indices: the array has {ndim} dimension(s) but {given} were indexed")]
    TooManyIndices { given: usize, ndim: usize },
    /// A file-system operation failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Array metadata that cannot be parsed or is not supported.
    #[error("{path}: {reason}")]
    Metadata { path: String, reason: String },
    /// A stored chunk that cannot be decoded (truncated, corrupt, wrong size).
    #[error("chunk {chunk:?} of {array} is corrupt: {reason}")]
    CorruptChunk {
        array: String,
        chunk: Vec<u64>,
        reason: String,
    },
    /// A chunk that is not stored, read from an array opened with missing chunks as errors.
    #[error(
        "chunk {chunk:?} of {array} is not stored (this array treats missing chunks as errors)"
    )]
    MissingChunk { array: String, chunk: Vec<u64> },
    /// An argument with an invalid value (shapes, block shapes, halos, block ids, ...).
    #[error("{0}")]
    InvalidArgument(String),
    /// A buffer the operation needs could not be allocated (sizes come from metadata or from
    /// the request, so they can exceed what the machine or the process limits allow).
    #[error("cannot allocate {bytes} bytes for {purpose}")]
    OutOfMemory { bytes: u64, purpose: String },
    /// A resource other than memory is exhausted (threads cannot be started, ...).
    #[error("{0}")]
    Resource(String),
}

/// An integer as the user wrote it; Python ints can exceed `i64`, so the binding layer keeps the
/// text of such a value for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Int {
    Small(i64),
    Big(String),
}

impl fmt::Display for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Int::Small(value) => write!(f, "{value}"),
            Int::Big(text) => f.write_str(text),
        }
    }
}

impl Error {
    /// An allocation of `bytes` for `purpose` failed.
    pub fn out_of_memory(bytes: impl TryInto<u64>, purpose: impl Into<String>) -> Self {
        Error::OutOfMemory {
            bytes: bytes.try_into().unwrap_or(u64::MAX),
            purpose: purpose.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// An I/O error at a URL (or any location that is not a local path).
    pub fn io_at(location: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            path: location.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
