//! The zarrs store the native zarr arrays sit on: zarrs' file-system store for reads and
//! listings, with every write made atomic.
//!
//! zarrs' `FilesystemStore` writes values in place, so a writer killed mid-write leaves a torn
//! chunk. This wrapper replaces `set` by [`atomic_write`] (temporary file, then rename) and does
//! not advertise partial writes, so zarrs never patches a value in place: a partial shard update
//! falls back to reading, updating and `set`-ting the whole shard, which is one atomic replace.
//! (`ZarrArray` encodes and writes chunks itself with the same `atomic_write`; the wrapper makes
//! any write that does go through zarrs safe too.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zarrs::filesystem::FilesystemStore;
use zarrs::storage::byte_range::ByteRangeIterator;
use zarrs::storage::{
    store_set_partial_many, Bytes, ListableStorageTraits, MaybeBytesIterator, OffsetBytesIterator,
    ReadableStorageTraits, StorageError, StoreKey, StoreKeys, StoreKeysPrefixes, StorePrefix,
    WritableStorageTraits,
};

use crate::error::{Error, Result};
use crate::fs::atomic_write;

/// A file-system zarr store whose writes are atomic (temporary file, then rename).
#[derive(Debug)]
pub struct AtomicFilesystemStore {
    root: PathBuf,
    inner: FilesystemStore,
}

impl AtomicFilesystemStore {
    /// A store rooted at `root` (the directory holding the root group or array).
    pub fn new(root: &Path) -> Result<Self> {
        let inner = FilesystemStore::new(root).map_err(|e| Error::Metadata {
            path: root.display().to_string(),
            reason: format!("cannot open as a zarr store: {e}"),
        })?;
        Ok(AtomicFilesystemStore {
            root: root.to_path_buf(),
            inner,
        })
    }

    /// The file a key maps to.
    pub fn key_path(&self, key: &StoreKey) -> PathBuf {
        let key = key.as_str();
        self.root.join(key.strip_prefix('/').unwrap_or(key))
    }
}

fn storage_error(error: Error) -> StorageError {
    match error {
        Error::Io { path, source } => StorageError::IOError(Arc::new(std::io::Error::new(
            source.kind(),
            format!("{path}: {source}"),
        ))),
        other => StorageError::Other(other.to_string()),
    }
}

impl ReadableStorageTraits for AtomicFilesystemStore {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        self.inner.get_partial_many(key, byte_ranges)
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size_key(key)
    }

    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

impl ListableStorageTraits for AtomicFilesystemStore {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        self.inner.list()
    }

    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.inner.list_prefix(prefix)
    }

    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.inner.list_dir(prefix)
    }

    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.inner.size_prefix(prefix)
    }
}

impl WritableStorageTraits for AtomicFilesystemStore {
    fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        atomic_write(&self.key_path(key), &value).map_err(storage_error)
    }

    /// Reads the whole value, patches it and `set`s it: one atomic replace (zarrs only calls this
    /// if asked to, since `supports_set_partial` is false).
    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator,
    ) -> Result<(), StorageError> {
        store_set_partial_many(self, key, offset_values)
    }

    fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.inner.erase(key)
    }

    fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.inner.erase_prefix(prefix)
    }

    fn supports_set_partial(&self) -> bool {
        false
    }
}
