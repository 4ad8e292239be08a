//! Open HDF5 files, shared per process, and the walk over a file's datasets.
//!
//! The HDF5 library refuses to open a file read-write while it is open read-only in the same
//! process, and a pipeline commonly reads one dataset of a file and writes another into it. So
//! every array of one file shares one [`SharedFile`], which is reopened read-write (the old
//! handle closed first) when a writer arrives. Arrays therefore never keep library objects
//! open: they open their dataset per library call, which costs microseconds next to a write.
//!
//! Files are opened without HDF5's file locks. The locks are `flock`s, which conflict between
//! two opens of one file even inside one process, and h5py (its own copy of the library) may
//! hold the same file open: with locks, one of the two would fail to open it. HDF5 files are
//! not safe for concurrent writers anyway; parallel writers use zarr or N5.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use hdf5_metno as h5;
use hdf5_metno::LocationType;

use crate::error::{Error, Result};

/// One open HDF5 file shared by every array of this process that uses it.
pub(crate) struct SharedFile {
    path: PathBuf,
    /// The open handle and whether it is read-write; `None` only when reopening failed.
    state: RwLock<Option<(h5::File, bool)>>,
    /// Counts writes through any array of the file: chunk indexes collected before a write
    /// may point at space the write freed, whichever array made it.
    generation: AtomicU64,
}

/// Files open in this process, by canonical path.
static OPEN_FILES: Mutex<Option<HashMap<PathBuf, Weak<SharedFile>>>> = Mutex::new(None);

fn options() -> h5::FileBuilder {
    let mut builder = h5::File::with_options();
    builder.with_fapl(|fapl| fapl.file_locking(false));
    builder
}

pub(crate) fn metadata_error(path: &Path, key: &str, error: h5::Error) -> Error {
    Error::Metadata {
        path: format!("{}:{key}", path.display()),
        reason: error.to_string(),
    }
}

impl SharedFile {
    /// The process's handle of the existing file at `path`, read-write when `writable`
    /// (an open read-only handle is reopened read-write).
    pub(crate) fn open(path: &Path, writable: bool) -> Result<Arc<Self>> {
        let canonical = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
        let mut files = OPEN_FILES.lock().unwrap_or_else(|p| p.into_inner());
        let files = files.get_or_insert_with(HashMap::new);
        files.retain(|_, file| file.strong_count() > 0);
        if let Some(shared) = files.get(&canonical).and_then(Weak::upgrade) {
            if writable {
                shared.make_writable()?;
            }
            return Ok(shared);
        }
        let file = if writable {
            options().open_rw(&canonical)
        } else {
            options().open(&canonical)
        }
        .map_err(|e| metadata_error(path, "", e))?;
        let shared = Arc::new(SharedFile {
            path: canonical.clone(),
            state: RwLock::new(Some((file, writable))),
            generation: AtomicU64::new(0),
        });
        files.insert(canonical, Arc::downgrade(&shared));
        Ok(shared)
    }

    /// Opens the file at `path` for writing, creating it when missing (or emptying it when
    /// `truncate`).
    pub(crate) fn create(path: &Path, truncate: bool) -> Result<Arc<Self>> {
        if truncate || !path.exists() {
            // An open handle of a file being truncated must go first.
            if let Ok(canonical) = std::fs::canonicalize(path) {
                let files = OPEN_FILES.lock().unwrap_or_else(|p| p.into_inner());
                let in_use = files
                    .as_ref()
                    .and_then(|files| files.get(&canonical))
                    .is_some_and(|file| file.strong_count() > 0);
                if in_use {
                    return Err(Error::InvalidArgument(format!(
                        "cannot truncate {}: arrays of it are still open in this process",
                        path.display()
                    )));
                }
            }
            options()
                .create(path)
                .map_err(|e| metadata_error(path, "", e))?;
        }
        Self::open(path, true)
    }

    fn make_writable(&self) -> Result<()> {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if matches!(&*state, Some((_, true))) {
            return Ok(());
        }
        // The library cannot hold one file open in two modes: close it, then reopen it.
        *state = None;
        match options().open_rw(&self.path) {
            Ok(file) => {
                *state = Some((file, true));
                Ok(())
            }
            Err(error) => {
                // Leave the read-only handle in place for the arrays still reading.
                *state = options().open(&self.path).ok().map(|file| (file, false));
                Err(metadata_error(&self.path, "", error))
            }
        }
    }

    /// The number of writes made to the file through this process's handle so far.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records a write (made or attempted): every array's chunk index is now stale.
    pub(crate) fn note_write(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the open file (shared access to the handle: the library serializes calls).
    pub(crate) fn with_file<R>(&self, f: impl FnOnce(&h5::File) -> Result<R>) -> Result<R> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        match &*state {
            Some((file, _)) => f(file),
            None => Err(Error::Metadata {
                path: self.path.display().to_string(),
                reason: "the file could not be reopened after a failed switch to read-write"
                    .to_owned(),
            }),
        }
    }

    /// Runs `f` on dataset `key`, opened for this call.
    pub(crate) fn with_dataset<R>(
        &self,
        key: &str,
        f: impl FnOnce(&h5::Dataset) -> Result<R>,
    ) -> Result<R> {
        self.with_file(|file| {
            let dataset = file
                .dataset(key)
                .map_err(|e| metadata_error(&self.path, key, e))?;
            f(&dataset)
        })
    }
}

/// Creates an empty HDF5 file at `path`; an existing file is kept unless `truncate`, which
/// empties it (refused while arrays of it are open in this process).
pub fn create_hdf5_file(path: &Path, truncate: bool) -> Result<()> {
    SharedFile::create(path, truncate).map(drop)
}

/// What is at `key` in the file at `path`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Group,
    Dataset,
    /// A named datatype or something else that is not an array.
    Other,
}

/// The kind of the object at `key` (`""` is the root group), `None` when nothing is there.
pub fn hdf5_node_kind(path: &Path, key: &str) -> Result<Option<NodeKind>> {
    let file = SharedFile::open(path, false)?;
    let key = key.trim_matches('/');
    file.with_file(|file| {
        if key.is_empty() {
            return Ok(Some(NodeKind::Group));
        }
        // Every prefix must exist before the library is asked about the full path.
        let mut prefix = String::new();
        for part in key.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if !file.link_exists(&prefix) {
                return Ok(None);
            }
        }
        let kind = file
            .loc_type_by_name(key)
            .map_err(|e| metadata_error(path, key, e))?;
        Ok(Some(match kind {
            LocationType::Group => NodeKind::Group,
            LocationType::Dataset => NodeKind::Dataset,
            _ => NodeKind::Other,
        }))
    })
}

/// The paths ("a/b/c") of every dataset below group `key` of the file at `path`, relative to
/// that group and sorted. Objects reachable by several links are listed once.
pub fn list_hdf5_arrays(path: &Path, key: &str) -> Result<Vec<String>> {
    let file = SharedFile::open(path, false)?;
    let key = key.trim_matches('/');
    file.with_file(|file| {
        let root = if key.is_empty() {
            file.as_group()
        } else {
            file.group(key)
        }
        .map_err(|e| metadata_error(path, key, e))?;
        let mut found = walk(root).map_err(|e| metadata_error(path, key, e))?;
        found.sort();
        Ok(found)
    })
}

/// The datasets below `root`, with a work list rather than recursion (groups may be nested
/// deeper than a stack allows); an object reachable by several links is visited once.
fn walk(root: h5::Group) -> h5::Result<Vec<String>> {
    let mut found = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut pending = vec![(root, String::new())];
    while let Some((group, prefix)) = pending.pop() {
        for name in group.member_names()? {
            // Soft and external links may dangle; only hard links to existing objects count.
            let Ok(info) = group.loc_info_by_name(&name) else {
                continue;
            };
            // Tokens are not `Hash`; their debug text (the token's bytes) identifies them.
            if !seen.insert(format!("{:?}", info.token)) {
                continue;
            }
            let full = format!("{prefix}{name}");
            match info.loc_type {
                LocationType::Dataset => found.push(full),
                LocationType::Group => pending.push((group.group(&name)?, format!("{full}/"))),
                _ => {}
            }
        }
    }
    Ok(found)
}
