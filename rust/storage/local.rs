//! A folder on the local file system as a [`Store`]: a key is a file path below the root.
//! Values are replaced atomically ([`crate::fs::atomic_write`]); reads are bounded.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{ByteRange, Fetched, Listing, Store, Version};
use crate::error::{Error, Result};

#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: &Path) -> Self {
        LocalStore {
            root: root.to_path_buf(),
        }
    }

    /// The file of `key`.
    pub fn path(&self, key: &str) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(key.split('/').filter(|c| !c.is_empty()));
        path
    }
}

fn version_of(metadata: &fs::Metadata) -> Version {
    #[cfg(unix)]
    use std::os::unix::fs::MetadataExt;
    Version::File {
        len: metadata.len(),
        modified: metadata.modified().ok(),
        #[cfg(unix)]
        inode: (metadata.dev(), metadata.ino()),
        #[cfg(not(unix))]
        inode: (0, 0),
    }
}

/// Reads `buf.len()` bytes at `offset`.
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(not(unix))]
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = file;
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(buf)
    }
}

impl Store for LocalStore {
    fn url(&self, key: &str) -> String {
        self.path(key).display().to_string()
    }

    fn get(
        &self,
        key: &str,
        max_len: u64,
        too_long: &dyn Fn(u64) -> Error,
    ) -> Result<Option<Vec<u8>>> {
        let path = self.path(key);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let metadata = file.metadata().map_err(|e| Error::io(&path, e))?;
        if metadata.is_dir() {
            return Err(Error::Metadata {
                path: path.display().to_string(),
                reason: "is a folder, not a file".to_string(),
            });
        }
        crate::fs::read_open_file(file, &path, metadata.len(), max_len, too_long).map(Some)
    }

    fn get_range(
        &self,
        key: &str,
        range: ByteRange,
        expected: Option<&Version>,
    ) -> Result<Fetched> {
        let path = self.path(key);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Fetched::Missing),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let version = version_of(&file.metadata().map_err(|e| Error::io(&path, e))?);
        if expected.is_some_and(|expected| *expected != version) {
            return Ok(Fetched::Changed);
        }
        let Version::File { len, .. } = version else {
            unreachable!("a file's version")
        };
        let range = range.resolve(len, || path.display().to_string())?;
        let mut bytes = crate::buffer::zeroed((range.end - range.start) as usize, || {
            format!("reading {}", path.display())
        })?;
        read_exact_at(&file, &mut bytes, range.start).map_err(|e| Error::io(&path, e))?;
        Ok(Fetched::Bytes {
            bytes,
            total_len: len,
            version,
        })
    }

    fn exists(&self, key: &str) -> Result<bool> {
        let path = self.path(key);
        match fs::metadata(&path) {
            Ok(metadata) => Ok(metadata.is_file()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        crate::fs::atomic_write(&self.path(key), value)
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let path = self.path(prefix);
        let result = match fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(&path),
            Ok(_) => fs::remove_file(&path),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn list_dir(&self, prefix: &str) -> Result<Listing> {
        let dir = self.path(prefix);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Listing::default()),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut listing = Listing::default();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Follows symlinks, as a walk of the folder does.
            match fs::metadata(entry.path()) {
                Ok(metadata) if metadata.is_dir() => listing.prefixes.push(name),
                Ok(_) => listing.keys.push(name),
                Err(_) => {}
            }
        }
        listing.keys.sort();
        listing.prefixes.sort();
        Ok(listing)
    }

    fn local_root(&self) -> Option<&Path> {
        Some(&self.root)
    }
}
