//! A zip file holding a zarr (as zarr-python's `ZipStore` writes, or a zipped folder) as a
//! read-only [`Store`]. The central directory is read once at open; values are read with
//! positioned reads of the file (any number of threads at once), stored or deflated.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::{ByteRange, Fetched, Listing, Store, Version};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy)]
struct Entry {
    data_start: u64,
    compressed_len: u64,
    len: u64,
    deflated: bool,
}

#[derive(Debug)]
pub struct ZipStore {
    path: PathBuf,
    file: File,
    entries: HashMap<String, Entry>,
}

/// Entries beyond this many are refused (a hostile central directory could claim billions).
const MAX_ENTRIES: usize = 50_000_000;

impl ZipStore {
    pub fn open(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::Metadata {
            path: path.display().to_string(),
            reason,
        };
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let reader = file.try_clone().map_err(|e| Error::io(path, e))?;
        // The zip crate parses untrusted input; a panic there is reported, not propagated.
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut archive = zip::ZipArchive::new(std::io::BufReader::new(reader))
                .map_err(|e| format!("is not a readable zip file ({e})"))?;
            if archive.len() > MAX_ENTRIES {
                return Err(format!("holds {} entries, too many", archive.len()));
            }
            let mut entries = HashMap::with_capacity(archive.len());
            for index in 0..archive.len() {
                let entry = archive
                    .by_index_raw(index)
                    .map_err(|e| format!("entry {index}: {e}"))?;
                if entry.is_dir() {
                    continue;
                }
                let name = entry
                    .name()
                    .map_err(|e| format!("entry {index}: {e}"))?
                    .trim_start_matches('/')
                    .to_owned();
                if entry.encrypted() {
                    return Err(format!("entry {name:?} is encrypted"));
                }
                // Method numbers of the zip format (the crate names Deflated only with its own
                // deflate backend, and deflated entries are inflated here by libdeflater).
                #[allow(deprecated)] // the number is what is wanted, not the crate's names
                let method = entry.compression().to_u16();
                let deflated = match method {
                    0 => false,
                    8 => true,
                    _ => {
                        let other = entry.compression();
                        return Err(format!(
                            "entry {name:?} is compressed with {other:?}; only stored and \
                             deflated entries are read"
                        ));
                    }
                };
                let data_start = entry
                    .data_start()
                    .ok_or_else(|| format!("entry {name:?}: no data offset"))?;
                entries.insert(
                    name,
                    Entry {
                        data_start,
                        compressed_len: entry.compressed_size(),
                        len: entry.size(),
                        deflated,
                    },
                );
            }
            Ok(entries)
        }));
        let entries = match parsed {
            Ok(Ok(entries)) => entries,
            Ok(Err(reason)) => return Err(bad(reason)),
            Err(_) => {
                return Err(bad(
                    "is a damaged zip file (its reader panicked)".to_string()
                ))
            }
        };
        Ok(ZipStore {
            path: path.to_path_buf(),
            file,
            entries,
        })
    }

    fn read_at(&self, key: &str, len: u64, offset: u64) -> Result<Vec<u8>> {
        let mut bytes =
            crate::buffer::zeroed(len as usize, || format!("reading {}", self.url(key)))?;
        #[cfg(unix)]
        std::os::unix::fs::FileExt::read_exact_at(&self.file, &mut bytes, offset)
            .map_err(|e| Error::io_at(self.url(key), e))?;
        #[cfg(not(unix))]
        {
            let _ = offset;
            return Err(Error::InvalidArgument("zip stores need unix".to_string()));
        }
        Ok(bytes)
    }

    /// The whole (decompressed) value of `entry`.
    fn value(&self, key: &str, entry: &Entry) -> Result<Vec<u8>> {
        let stored = self.read_at(key, entry.compressed_len, entry.data_start)?;
        if !entry.deflated {
            return Ok(stored);
        }
        let mut out = crate::buffer::zeroed(entry.len as usize, || {
            format!("decompressing {}", self.url(key))
        })?;
        let written = libdeflater::Decompressor::new()
            .deflate_decompress(&stored, &mut out)
            .map_err(|e| Error::Metadata {
                path: self.url(key),
                reason: format!("damaged deflated zip entry: {e}"),
            })?;
        if written != out.len() {
            return Err(Error::Metadata {
                path: self.url(key),
                reason: format!(
                    "deflated zip entry holds {written} bytes, its header says {}",
                    out.len()
                ),
            });
        }
        Ok(out)
    }
}

impl Store for ZipStore {
    fn url(&self, key: &str) -> String {
        format!("{}/{key}", self.path.display())
    }

    fn read_only_reason(&self) -> Option<String> {
        Some("zip files are read-only".to_string())
    }

    fn get(
        &self,
        key: &str,
        max_len: u64,
        too_long: &dyn Fn(u64) -> Error,
    ) -> Result<Option<Vec<u8>>> {
        let Some(entry) = self.entries.get(key) else {
            return Ok(None);
        };
        if entry.len > max_len || entry.compressed_len > max_len.saturating_mul(2) {
            return Err(too_long(entry.len.max(entry.compressed_len)));
        }
        self.value(key, entry).map(Some)
    }

    fn get_range(
        &self,
        key: &str,
        range: ByteRange,
        _expected: Option<&Version>,
    ) -> Result<Fetched> {
        let Some(entry) = self.entries.get(key) else {
            return Ok(Fetched::Missing);
        };
        let len = entry.len;
        let range = range.resolve(len, || self.url(key))?;
        let bytes = if entry.deflated {
            self.value(key, entry)?[range.start as usize..range.end as usize].to_vec()
        } else {
            self.read_at(key, range.end - range.start, entry.data_start + range.start)?
        };
        Ok(Fetched::Bytes {
            bytes,
            total_len: len,
            version: Version::Unversioned { len },
        })
    }

    fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.entries.contains_key(key))
    }

    fn put(&self, key: &str, _value: &[u8]) -> Result<()> {
        self.check_writable(key)
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.check_writable(key)
    }

    fn delete_prefix(&self, prefix: &str) -> Result<()> {
        self.check_writable(prefix)
    }

    fn list_dir(&self, prefix: &str) -> Result<Listing> {
        let start = if prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", prefix.trim_end_matches('/'))
        };
        let mut keys = std::collections::BTreeSet::new();
        let mut prefixes = std::collections::BTreeSet::new();
        for name in self.entries.keys() {
            if let Some(rest) = name.strip_prefix(&start) {
                match rest.split_once('/') {
                    Some((dir, _)) => prefixes.insert(dir.to_owned()),
                    None => keys.insert(rest.to_owned()),
                };
            }
        }
        Ok(Listing {
            keys: keys.into_iter().collect(),
            prefixes: prefixes.into_iter().collect(),
        })
    }
}
