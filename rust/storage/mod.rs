//! Where arrays are stored: a key-value view of a local folder, a zip file, or a bucket of an
//! object store (S3-compatible, GCS) or an HTTP server, behind one [`Store`] trait, so that
//! zarr and N5 read and write every one of them with the same code.
//!
//! Keys are `/`-separated paths below the store's root (`"a/b/zarr.json"`). Values are
//! written whole: atomically (a temporary file, then renamed) on disk, by one PUT on object
//! stores. Stores are opened by [`open_store`] from a path or URL and [`StoreOptions`], and
//! shared per process.

mod local;
mod remote;
mod zip;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::per_process::PerProcess;

pub use local::LocalStore;
pub use remote::RemoteStore;
pub use zip::ZipStore;

/// Which version of a value a read saw, to tell later whether the value changed since: a
/// file's identity (atomic replacement makes a new inode), an object's ETag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Version {
    File {
        len: u64,
        modified: Option<std::time::SystemTime>,
        inode: (u64, u64),
    },
    ETag(String),
    /// A value that never changes (inside a zip file) or a server that gives no versions.
    Unversioned {
        len: u64,
    },
}

/// Part of a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ByteRange {
    Bounded(Range<u64>),
    /// The last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The bytes this range covers of a `len`-byte value at `url`; an `UnexpectedEof` error
    /// naming `url` when they lie beyond its end.
    pub fn resolve(self, len: u64, url: impl FnOnce() -> String) -> Result<Range<u64>> {
        let range = match self {
            ByteRange::Bounded(range) => range,
            ByteRange::Suffix(n) => len.saturating_sub(n)..len,
        };
        if range.start > range.end || range.end > len {
            return Err(Error::io_at(
                url(),
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("bytes {range:?} lie beyond the {len}-byte value"),
                ),
            ));
        }
        Ok(range)
    }
}

/// The outcome of a ranged read.
#[derive(Debug)]
pub enum Fetched {
    /// No such key.
    Missing,
    /// The value is no longer the version asked for.
    Changed,
    Bytes {
        bytes: Vec<u8>,
        /// The length of the whole value.
        total_len: u64,
        version: Version,
    },
}

/// The keys and sub-"folders" directly below a prefix.
#[derive(Debug, Default)]
pub struct Listing {
    pub keys: Vec<String>,
    pub prefixes: Vec<String>,
}

/// A key-value store holding zarr or N5 data.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// The path or URL of `key`, for messages.
    fn url(&self, key: &str) -> String;

    /// Why values cannot be written here, `None` when they can.
    fn read_only_reason(&self) -> Option<String> {
        None
    }

    /// Whether reads wait on a network: chunk reads then run on many more threads than cores.
    fn is_remote(&self) -> bool {
        false
    }

    /// The whole value at `key`, `None` when it does not exist. A value longer than `max_len`
    /// is not read: the error is `too_long(its length)`.
    fn get(
        &self,
        key: &str,
        max_len: u64,
        too_long: &dyn Fn(u64) -> Error,
    ) -> Result<Option<Vec<u8>>>;

    /// Part of the value at `key`; when `expected` is given and the value is another version,
    /// [`Fetched::Changed`].
    fn get_range(&self, key: &str, range: ByteRange, expected: Option<&Version>)
        -> Result<Fetched>;

    /// Whether a value exists at `key`.
    fn exists(&self, key: &str) -> Result<bool>;

    /// Stores `value` at `key`, replacing any old value whole (never a torn mix).
    fn put(&self, key: &str, value: &[u8]) -> Result<()>;

    /// Deletes the value at `key`; a missing one is no error.
    fn delete(&self, key: &str) -> Result<()>;

    /// Deletes every value below `prefix` (`""`: the whole store).
    fn delete_prefix(&self, prefix: &str) -> Result<()>;

    /// The keys and prefixes directly below `prefix`, names relative to it, sorted.
    fn list_dir(&self, prefix: &str) -> Result<Listing>;

    /// The local folder of a [`LocalStore`] (whose walks and group creation use the file
    /// system directly).
    fn local_root(&self) -> Option<&std::path::Path> {
        None
    }

    /// Fails with the read-only reason, naming `key`.
    fn check_writable(&self, key: &str) -> Result<()> {
        match self.read_only_reason() {
            None => Ok(()),
            Some(reason) => Err(Error::io_at(
                self.url(key),
                std::io::Error::new(std::io::ErrorKind::PermissionDenied, reason),
            )),
        }
    }
}

/// `prefix/name`, or `name` below the root.
pub fn join_key(prefix: &str, name: &str) -> String {
    match (prefix.is_empty(), name.is_empty()) {
        (true, _) => name.to_owned(),
        (_, true) => prefix.to_owned(),
        _ => format!("{prefix}/{name}"),
    }
}

/// Non-secret options of remote stores (credentials come from the environment).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct StoreOptions {
    /// The server's URL (an S3-compatible server, a GCS emulator); `http://` allows plain HTTP.
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    /// Requests are not signed (public buckets).
    pub anonymous: bool,
}

/// The schemes [`open_store`] opens remotely.
const REMOTE_SCHEMES: [&str; 4] = ["s3://", "gs://", "http://", "https://"];

/// Whether `root` is a URL of a remote store.
pub fn is_remote_url(root: &str) -> bool {
    REMOTE_SCHEMES.iter().any(|scheme| root.starts_with(scheme))
}

/// Stores opened so far in this process, by root and options (a remote store holds a client
/// with its connection pool, worth reusing across the arrays of a bucket).
type OpenStores = Mutex<HashMap<(String, StoreOptions), Arc<dyn Store>>>;
static OPEN_STORES: PerProcess<OpenStores> = PerProcess::new();
/// Beyond this many, the remembered stores are forgotten (they live on in their arrays).
const MAX_OPEN_STORES: usize = 64;

/// The store at `root`: a URL `s3://bucket/prefix`, `gs://bucket/prefix`, `http(s)://...`
/// (read-only), a zip file (read-only), or a local folder (`file://` allowed). `options`
/// apply to remote stores only; given for a local root they are an error.
pub fn open_store(root: &std::path::Path, options: &StoreOptions) -> Result<Arc<dyn Store>> {
    let url = root.to_str().filter(|url| is_remote_url(url));
    let Some(url) = url else {
        if *options != StoreOptions::default() {
            return Err(Error::InvalidArgument(format!(
                "{} is not a URL: endpoint_url, region and anonymous apply to remote stores \
                 (s3://, gs://, http(s)://) only",
                root.display()
            )));
        }
        let path = match root.to_str().and_then(|r| r.strip_prefix("file://")) {
            Some(stripped) => std::path::Path::new(stripped),
            None => root,
        };
        if path.is_file() {
            return Ok(Arc::new(ZipStore::open(path)?));
        }
        return Ok(Arc::new(LocalStore::new(path)));
    };
    let stores = OPEN_STORES.get_or_try_init(|| Ok(Mutex::new(HashMap::new())))?;
    let cache_key = (url.trim_end_matches('/').to_owned(), options.clone());
    let mut open = stores.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(store) = open.get(&cache_key) {
        return Ok(Arc::clone(store));
    }
    let store: Arc<dyn Store> = Arc::new(RemoteStore::open(url, options)?);
    if open.len() >= MAX_OPEN_STORES {
        open.clear();
    }
    open.insert(cache_key, Arc::clone(&store));
    Ok(store)
}

/// The keys of the arrays in `store` (`""` for an array at the root), sorted: "folders" are
/// searched depth first, `is_array` decides, arrays are not descended into, hidden names
/// (`.`-prefixed) are skipped. Local folders reached twice (symlink cycles) are walked once.
pub fn find_arrays(
    store: &dyn Store,
    max_depth: usize,
    is_array: &dyn Fn(&str) -> Result<bool>,
) -> Result<Vec<String>> {
    struct Walk<'a> {
        store: &'a dyn Store,
        max_depth: usize,
        is_array: &'a dyn Fn(&str) -> Result<bool>,
        seen: crate::fs::SeenDirs,
        found: Vec<String>,
    }
    impl Walk<'_> {
        fn visit(&mut self, key: &str, depth: usize) -> Result<()> {
            if let Some(root) = self.store.local_root() {
                if !self.seen.first_visit(&root.join(key)) {
                    return Ok(());
                }
            }
            if (self.is_array)(key)? {
                self.found.push(key.to_owned());
                return Ok(());
            }
            if depth >= self.max_depth {
                return Ok(());
            }
            let listing = match self.store.list_dir(key) {
                Ok(listing) => listing,
                // An unreadable subfolder holds no array that could be opened anyway.
                Err(_) if depth > 0 => return Ok(()),
                Err(e) => return Err(e),
            };
            for name in listing.prefixes {
                if !name.starts_with('.') {
                    self.visit(&join_key(key, &name), depth + 1)?;
                }
            }
            Ok(())
        }
    }
    let mut walk = Walk {
        store,
        max_depth,
        is_array,
        seen: crate::fs::SeenDirs::default(),
        found: Vec::new(),
    };
    walk.visit("", 0)?;
    walk.found.sort();
    Ok(walk.found)
}

#[cfg(test)]
mod tests;
