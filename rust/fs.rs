//! File-system helpers shared by the native formats.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, then renamed
/// over `path`. A writer killed at any point leaves either the old file or the new one, never a
/// torn one; concurrent writers of the same file each rename a complete file.
///
/// There is deliberately no fsync: it protects only against power loss (the page cache survives
/// a killed process), costs milliseconds per chunk, and no peer library pays it per chunk.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    // Unique per process and call: a dot-prefixed name that readers never mistake for a chunk.
    let temporary = dir.join(format!(
        ".{name}.{}.{}.partial",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        drop(file);
        fs::rename(&temporary, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&temporary);
        Error::io(path, e)
    })
}

/// Reads a whole file, `None` when it does not exist. The buffer is allocated fallibly (an
/// [`Error::OutOfMemory`] for a file larger than the memory available).
pub fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    read_bounded(path, u64::MAX, |len| {
        Error::out_of_memory(len, format!("reading {}", path.display()))
    })
}

/// Reads a whole file of at most `max_len` bytes, `None` when it does not exist. A longer file
/// is not read: the error is `too_long(its length)`. Stored chunks are read with this, so a
/// damaged or hostile file cannot make the reader allocate more than its bound.
pub fn read_bounded(
    path: &Path,
    max_len: u64,
    too_long: impl FnOnce(u64) -> Error,
) -> Result<Option<Vec<u8>>> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    read_open_file(file, path, len, max_len, too_long).map(Some)
}

/// Reads the open `file` (`len` bytes when it was opened) as [`read_bounded`] does.
pub fn read_open_file(
    file: fs::File,
    path: &Path,
    len: u64,
    max_len: u64,
    too_long: impl FnOnce(u64) -> Error,
) -> Result<Vec<u8>> {
    use std::io::Read;
    if len > max_len {
        return Err(too_long(len));
    }
    let capacity = usize::try_from(len)
        .map_err(|_| Error::out_of_memory(len, format!("reading {}", path.display())))?;
    let mut bytes =
        crate::buffer::with_capacity::<u8>(capacity, || format!("reading {}", path.display()))?;
    // A file that grew since it was measured is read up to one byte past the bound only.
    file.take(max_len.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > max_len {
        return Err(too_long(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The folders a walk has visited, by identity (device and inode), so that a walk through
/// symlinked folders visits each folder once and ends on symlink cycles.
#[derive(Default)]
pub struct SeenDirs {
    seen: std::collections::HashSet<(u64, u64)>,
}

impl SeenDirs {
    /// Whether `dir` is visited for the first time (a folder that cannot be inspected counts
    /// as new: the walk then fails or skips it on its own).
    pub fn first_visit(&mut self, dir: &Path) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            match fs::metadata(dir) {
                Ok(metadata) => self.seen.insert((metadata.dev(), metadata.ino())),
                Err(_) => true,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = dir;
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporaries() {
        let dir = std::env::temp_dir().join(format!("bioimage_py_fs_{}", std::process::id()));
        let path = dir.join("a/b/chunk");
        atomic_write(&path, b"first").unwrap();
        atomic_write(&path, b"second").unwrap();
        assert_eq!(read_if_exists(&path).unwrap().unwrap(), b"second");
        assert!(read_if_exists(&dir.join("missing")).unwrap().is_none());
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bounded_reads_refuse_long_files_before_reading_them() {
        let dir = std::env::temp_dir().join(format!("bioimage_py_bounded_{}", std::process::id()));
        let path = dir.join("chunk");
        atomic_write(&path, &[1; 100]).unwrap();
        let too_long = |len| Error::InvalidArgument(format!("{len} bytes"));
        assert_eq!(
            read_bounded(&path, 100, too_long).unwrap().unwrap().len(),
            100
        );
        let error = read_bounded(&path, 99, too_long).unwrap_err();
        assert_eq!(error.to_string(), "100 bytes");
        assert!(read_bounded(&dir.join("missing"), 1, too_long)
            .unwrap()
            .is_none());
        fs::remove_dir_all(dir).unwrap();
    }
}
