//! Native N5 (the saalfeldlab/n5 file-system format), read and write.
//!
//! A container is a directory tree: every directory is a group, `attributes.json` holds its
//! attributes, the root's carries the `"n5"` version, and a dataset is a group whose attributes
//! describe an array (see [`N5Metadata`]). Block `(z, y, x)` lives at `<dataset>/x/y/z`. Edge
//! blocks are written truncated to the array, as Java N5 and z5py do; blocks whose header
//! records a different size (tensorstore writes edge blocks full-size) read their overlap with
//! the block's region. Every block write is atomic ([`crate::fs::atomic_write`]).

mod block;
mod compression;
mod metadata;

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::buffer;
use crate::chunked::{copy_box, write_region_by_chunks, ChunkedArray};
use crate::dtype::DataType;
use crate::error::{Error, Result};
use crate::fs::{atomic_write, read_bounded};
use crate::metadata_json::{read_object, Members};

pub use compression::{Lz4Framing, N5Compression};
pub use metadata::N5Metadata;

/// The N5 version this crate writes into a new container's root, the one z5py writes.
pub const N5_VERSION: &str = "2.0.0";
/// The newest major N5 version this crate reads (Java N5 writes 4.0.0).
const MAX_MAJOR_VERSION: u64 = 4;
const ATTRIBUTES: &str = "attributes.json";
/// How deep `list_n5_arrays` descends (a guard against symlink cycles).
const MAX_DEPTH: usize = 64;

/// One N5 dataset on the local file system.
#[derive(Debug)]
pub struct N5Array {
    root: PathBuf,
    key: String,
    path: PathBuf,
    describe: String,
    metadata: N5Metadata,
    fill_value: Vec<u8>,
}

/// The components of a key such as `"a/b/c"`; `""` (or `"/"`) is the root.
fn key_components(key: &str) -> Result<Vec<&str>> {
    let components: Vec<&str> = key.split('/').filter(|c| !c.is_empty()).collect();
    if let Some(bad) = components.iter().find(|c| **c == "." || **c == "..") {
        return Err(Error::InvalidArgument(format!(
            "N5 key {key:?} contains {bad:?}; keys are paths below the container root"
        )));
    }
    Ok(components)
}

fn join_key(root: &Path, components: &[&str]) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(components);
    path
}

/// The attributes of the group or dataset in `dir`, `None` without an `attributes.json`. All
/// of them (to rewrite the file keeping the others).
fn read_attributes(dir: &Path) -> Result<Option<Map<String, Value>>> {
    read_object(&dir.join(ATTRIBUTES), Members::All)
}

/// The members of `attributes.json` that describe a dataset (and the container's version):
/// user attributes are not parsed, so however they are nested, the dataset opens.
const ARRAY_MEMBERS: [&str; 6] = [
    "n5",
    "dimensions",
    "blockSize",
    "dataType",
    "compression",
    "compressionType",
];

/// The array members of the attributes in `dir` (see [`ARRAY_MEMBERS`]).
fn read_array_attributes(dir: &Path) -> Result<Option<Map<String, Value>>> {
    read_object(&dir.join(ATTRIBUTES), Members::Only(&ARRAY_MEMBERS))
}

fn write_attributes(dir: &Path, attributes: &Map<String, Value>) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(attributes).expect("a JSON map serializes");
    bytes.push(b'\n');
    atomic_write(&dir.join(ATTRIBUTES), &bytes)
}

/// Fails for a container whose `"n5"` version this crate cannot read.
fn check_version(root: &Path, attributes: &Map<String, Value>) -> Result<()> {
    let Some(version) = attributes.get("n5") else {
        return Ok(());
    };
    let major = version
        .as_str()
        .and_then(|v| v.split('.').next())
        .and_then(|major| major.parse::<u64>().ok());
    match major {
        Some(major) if major <= MAX_MAJOR_VERSION => Ok(()),
        _ => Err(Error::Metadata {
            path: root.join(ATTRIBUTES).display().to_string(),
            reason: format!(
                "unsupported N5 version {version}; this reader supports up to {MAX_MAJOR_VERSION}.x"
            ),
        }),
    }
}

/// Makes `root` an N5 container: the directory, and the `"n5"` version in its attributes.
fn ensure_root(root: &Path) -> Result<()> {
    fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    // A container that has its version needs no rewrite (nor its other attributes parsed).
    if let Some(attributes) = read_object(&root.join(ATTRIBUTES), Members::Only(&["n5"]))? {
        if attributes.contains_key("n5") {
            return check_version(root, &attributes);
        }
    }
    match read_attributes(root)? {
        Some(attributes) if attributes.contains_key("n5") => check_version(root, &attributes),
        Some(mut attributes) => {
            attributes.insert("n5".to_string(), Value::from(N5_VERSION));
            write_attributes(root, &attributes)
        }
        None => {
            let mut attributes = Map::new();
            attributes.insert("n5".to_string(), Value::from(N5_VERSION));
            write_attributes(root, &attributes)
        }
    }
}

/// Whether `dir` has subdirectories other than hidden ones.
fn has_subdirectories(dir: &Path) -> Result<bool> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if !entry.file_name().to_string_lossy().starts_with('.') && entry.path().is_dir() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Deletes the block directories (all-digit names) of the dataset in `dir`.
fn remove_blocks(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let is_block_dir = name
            .to_str()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if is_block_dir {
            let path = entry.path();
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

impl N5Array {
    /// Opens the dataset at `key` (`"a/b/c"`, `""` for a root dataset) of the container `root`.
    pub fn open(root: &Path, key: &str) -> Result<Self> {
        let components = key_components(key)?;
        let path = join_key(root, &components);
        let attributes = read_array_attributes(&path)?.ok_or_else(|| Error::Metadata {
            path: path.join(ATTRIBUTES).display().to_string(),
            reason: format!("no N5 dataset at key {key:?} (attributes.json not found)"),
        })?;
        if components.is_empty() {
            check_version(root, &attributes)?;
        } else if let Some(root_attributes) =
            read_object(&root.join(ATTRIBUTES), Members::Only(&["n5"]))?
        {
            check_version(root, &root_attributes)?;
        }
        if !metadata::is_dataset(&attributes) {
            return Err(Error::Metadata {
                path: path.join(ATTRIBUTES).display().to_string(),
                reason: format!("key {key:?} is an N5 group, not a dataset (no \"dimensions\")"),
            });
        }
        let metadata = N5Metadata::from_attributes(&attributes, &path.join(ATTRIBUTES))?;
        Ok(Self::new(root, &components, path, metadata))
    }

    /// Creates a dataset at `key` of the container `root` (created if missing, with the `"n5"`
    /// version; missing groups on the way get an empty `attributes.json`). `shape` and
    /// `chunk_shape` are in numpy (ZYX) order. An existing dataset is an error unless
    /// `overwrite`, which deletes its blocks; a group with children is never replaced.
    pub fn create(
        root: &Path,
        key: &str,
        shape: &[u64],
        chunk_shape: &[u64],
        dtype: DataType,
        compression: N5Compression,
        overwrite: bool,
    ) -> Result<Self> {
        let components = key_components(key)?;
        N5Metadata::check(shape, chunk_shape, dtype)
            .map_err(|reason| Error::InvalidArgument(format!("N5 dataset {key:?}: {reason}")))?;
        compression.validate()?;
        ensure_root(root)?;
        // Every ancestor must be a group: a dataset's subdirectories are its blocks.
        let mut dir = root.to_path_buf();
        for depth in 0..components.len() {
            let attributes = read_object(&dir.join(ATTRIBUTES), Members::Only(&["dimensions"]))?;
            if attributes.as_ref().is_some_and(metadata::is_dataset) {
                return Err(Error::InvalidArgument(format!(
                    "cannot create N5 dataset {key:?} in {}: {:?} is a dataset, not a group",
                    root.display(),
                    components[..depth].join("/")
                )));
            }
            if attributes.is_none() {
                fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                write_attributes(&dir, &Map::new())?;
            }
            dir.push(components[depth]);
        }
        let path = dir;
        let existing = read_attributes(&path)?;
        let mut attributes = match existing {
            Some(attributes) if metadata::is_dataset(&attributes) => {
                if !overwrite {
                    return Err(Error::InvalidArgument(format!(
                        "an N5 dataset already exists at key {key:?} of {}; pass overwrite=True to replace it",
                        root.display()
                    )));
                }
                remove_blocks(&path)?;
                // A fresh dataset: keep only the container's version if this is the root.
                let mut fresh = Map::new();
                if let Some(version) = attributes.get("n5") {
                    fresh.insert("n5".to_string(), version.clone());
                }
                fresh
            }
            existing => {
                if has_subdirectories(&path)? {
                    return Err(Error::InvalidArgument(format!(
                        "cannot create N5 dataset {key:?} in {}: it is a group with children",
                        root.display()
                    )));
                }
                existing.unwrap_or_default()
            }
        };
        let metadata = N5Metadata {
            shape: shape.to_vec(),
            chunk_shape: chunk_shape.to_vec(),
            dtype,
            compression,
        };
        metadata.to_attributes(&mut attributes);
        write_attributes(&path, &attributes)?;
        Ok(Self::new(root, &components, path, metadata))
    }

    fn new(root: &Path, components: &[&str], path: PathBuf, metadata: N5Metadata) -> Self {
        let key = components.join("/");
        let describe = if key.is_empty() {
            root.display().to_string()
        } else {
            format!("{}/{key}", root.display())
        };
        let fill_value = vec![0u8; metadata.dtype.size()];
        Self {
            root: root.to_path_buf(),
            key,
            path,
            describe,
            metadata,
            fill_value,
        }
    }

    /// The container's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The dataset's key in the container, `"a/b/c"` style (`""` for a root dataset).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The dataset's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn metadata(&self) -> &N5Metadata {
        &self.metadata
    }

    pub fn compression(&self) -> &N5Compression {
        &self.metadata.compression
    }

    /// The file of block `chunk` (ZYX grid coordinates): `<dataset>/x/y/z`.
    pub fn block_path(&self, chunk: &[u64]) -> PathBuf {
        let mut path = self.path.clone();
        for coordinate in chunk.iter().rev() {
            path.push(coordinate.to_string());
        }
        path
    }

    /// The shape of chunk `chunk`'s region clipped to the array, checking the coordinates.
    fn chunk_region_shape(&self, chunk: &[u64]) -> Result<Vec<u64>> {
        let metadata = &self.metadata;
        let region =
            crate::chunked::chunk_region(&metadata.shape, &metadata.chunk_shape, chunk, &|| {
                self.describe.clone()
            })?;
        Ok(region.iter().map(|r| r.end - r.start).collect())
    }

    fn corrupt(&self, chunk: &[u64], reason: String) -> Error {
        Error::CorruptChunk {
            array: self.describe.clone(),
            chunk: chunk.to_vec(),
            reason,
        }
    }

    /// Decodes the block file `bytes` into `out`, the block's clipped region in native order.
    fn decode_block(&self, bytes: &[u8], region: &[u64], out: &mut [u8]) -> Result<(), String> {
        let itemsize = self.metadata.dtype.size();
        let header = block::parse_header(bytes, region.len())?;
        if let Some(axis) =
            (0..region.len()).find(|&a| header.shape[a] > self.metadata.chunk_shape[a])
        {
            return Err(format!(
                "the block header's size {:?} exceeds the block shape {:?} on axis {axis}",
                header.shape, self.metadata.chunk_shape
            ));
        }
        let elements: u64 = header.shape.iter().product();
        if header.num_elements != elements {
            return Err(format!(
                "the varlength block holds {} elements, its size {:?} needs {elements}",
                header.num_elements, header.shape
            ));
        }
        let payload = &bytes[header.payload_offset..];
        if header.shape == region {
            return self.decode_payload(payload, out);
        }
        // A block whose size is not the clipped region (tensorstore's full-size edge blocks, or
        // a block written before the array was resized): take the overlap, fill the rest.
        // `elements` is at most a block's (the header's size is checked above).
        let mut decoded =
            buffer::zeroed(elements as usize * itemsize, String::new).map_err(|e| e.to_string())?;
        self.decode_payload(payload, &mut decoded)?;
        out.fill(0);
        let overlap: Vec<Range<u64>> = header
            .shape
            .iter()
            .zip(region)
            .map(|(&h, &r)| 0..h.min(r))
            .collect();
        // SAFETY: `decoded` holds `header.shape` elements and `out` holds `region` elements
        // (checked by the caller); `overlap` lies inside both; `out` is exclusively borrowed.
        unsafe {
            copy_box(
                decoded.as_ptr(),
                &header.shape,
                &overlap,
                out.as_mut_ptr(),
                region,
                &overlap,
                itemsize,
            );
        }
        Ok(())
    }

    /// Decompresses a payload of exactly `out.len()` bytes into `out`, in native byte order.
    fn decode_payload(&self, payload: &[u8], out: &mut [u8]) -> Result<(), String> {
        let itemsize = self.metadata.dtype.size();
        if self.metadata.compression == N5Compression::Raw {
            if payload.len() != out.len() {
                return Err(format!(
                    "the raw block has {} bytes of data, its header promises {}",
                    payload.len(),
                    out.len()
                ));
            }
            block::copy_swapped(payload, out, itemsize);
            return Ok(());
        }
        self.metadata.compression.decompress_into(payload, out)?;
        block::swap_in_place(out, itemsize);
        Ok(())
    }

    /// Encodes a block of the clipped `region` from native-order `data`.
    fn encode_block(&self, region: &[u64], data: &[u8]) -> Result<Vec<u8>, String> {
        let itemsize = self.metadata.dtype.size();
        let header_len = block::header_len(region.len());
        let compression = &self.metadata.compression;
        let needs_swap = itemsize > 1 && cfg!(target_endian = "little");
        if *compression == N5Compression::Raw {
            let mut bytes = Vec::with_capacity(header_len + data.len());
            block::write_header(region, &mut bytes);
            bytes.resize(header_len + data.len(), 0);
            block::copy_swapped(data, &mut bytes[header_len..], itemsize);
            return Ok(bytes);
        }
        let swapped;
        let big_endian = if needs_swap {
            let mut buffer = vec![0u8; data.len()];
            block::copy_swapped(data, &mut buffer, itemsize);
            swapped = buffer;
            &swapped[..]
        } else {
            data
        };
        let mut bytes = Vec::with_capacity(header_len + data.len() / 2 + 64);
        block::write_header(region, &mut bytes);
        compression.compress_append(big_endian, itemsize, &mut bytes)?;
        Ok(bytes)
    }
}

impl ChunkedArray for N5Array {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn shape(&self) -> &[u64] {
        &self.metadata.shape
    }

    fn dtype(&self) -> DataType {
        self.metadata.dtype
    }

    fn chunk_shape(&self) -> &[u64] {
        &self.metadata.chunk_shape
    }

    fn fill_value(&self) -> &[u8] {
        &self.fill_value
    }

    fn read_chunk(&self, chunk: &[u64], out: &mut [u8]) -> Result<bool> {
        let region = self.chunk_region_shape(chunk)?;
        let expected = buffer::byte_len(&region, self.metadata.dtype.size()).unwrap_or(usize::MAX);
        if out.len() != expected {
            return Err(Error::InvalidArgument(format!(
                "buffer of {} bytes for chunk {chunk:?} of {}, which needs {expected}",
                out.len(),
                self.describe
            )));
        }
        // No valid block is longer than its header and its data stored at worst (compressors
        // add little to data they cannot shrink): a longer file is corrupt and is not read.
        let block_bytes = buffer::byte_len(&self.metadata.chunk_shape, self.metadata.dtype.size())
            .unwrap_or(usize::MAX) as u64;
        let max_len = block_bytes
            .saturating_add(block_bytes / 4)
            .saturating_add(64 << 10)
            .saturating_add(8 + 4 * region.len() as u64);
        let bytes = read_bounded(&self.block_path(chunk), max_len, |len| {
            self.corrupt(
                chunk,
                format!(
                    "the block file holds {len} bytes, more than any valid block of this dataset"
                ),
            )
        })?;
        let Some(bytes) = bytes else {
            return Ok(false);
        };
        self.decode_block(&bytes, &region, out)
            .map_err(|reason| self.corrupt(chunk, reason))?;
        Ok(true)
    }

    fn write_chunk(&self, chunk: &[u64], data: &[u8]) -> Result<()> {
        let region = self.chunk_region_shape(chunk)?;
        let expected = buffer::byte_len(&region, self.metadata.dtype.size()).unwrap_or(usize::MAX);
        if data.len() != expected {
            return Err(Error::InvalidArgument(format!(
                "data of {} bytes for chunk {chunk:?} of {}, which needs {expected}",
                data.len(),
                self.describe
            )));
        }
        let path = self.block_path(chunk);
        let bytes = self
            .encode_block(&region, data)
            .map_err(|reason| Error::io(&path, std::io::Error::other(reason)))?;
        atomic_write(&path, &bytes)
    }

    fn chunk_exists(&self, chunk: &[u64]) -> Result<bool> {
        self.chunk_region_shape(chunk)?;
        let path = self.block_path(chunk);
        match fs::metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn write_region(&self, region: &[Range<u64>], data: &[u8]) -> Result<()> {
        write_region_by_chunks(self, region, data)
    }
}

/// Whether `key` of the container `root` is an N5 dataset.
pub fn is_n5_array(root: &Path, key: &str) -> bool {
    key_components(key)
        .ok()
        .and_then(|components| {
            read_array_attributes(&join_key(root, &components))
                .ok()
                .flatten()
        })
        .is_some_and(|attributes| metadata::is_dataset(&attributes))
}

/// Whether `key` of the container `root` is an N5 group (a directory that is not a dataset).
pub fn is_n5_group(root: &Path, key: &str) -> bool {
    key_components(key).is_ok_and(|components| {
        let path = join_key(root, &components);
        path.is_dir() && !is_n5_array(root, key)
    })
}

/// Whether `root` looks like an N5 container: its `attributes.json` has the `"n5"` version or
/// describes a root dataset. (Containers written only by tensorstore may lack both.)
pub fn is_n5_container(root: &Path) -> bool {
    read_array_attributes(root)
        .ok()
        .flatten()
        .is_some_and(|attributes| {
            attributes.contains_key("n5") || metadata::is_dataset(&attributes)
        })
}

/// The keys of all datasets in the container `root`, sorted, `"a/b/c"` style (`""` for a root
/// dataset). Hidden directories and the inside of datasets are not searched.
pub fn list_n5_arrays(root: &Path) -> Result<Vec<String>> {
    fn visit(
        dir: &Path,
        key: &str,
        depth: usize,
        seen: &mut crate::fs::SeenDirs,
        found: &mut Vec<String>,
    ) -> Result<()> {
        // A folder reached twice (a symlink cycle, or two links to one folder) is walked once.
        if !seen.first_visit(dir) {
            return Ok(());
        }
        let attributes = read_object(&dir.join(ATTRIBUTES), Members::Only(&["dimensions"]))?;
        if attributes.is_some_and(|attributes| metadata::is_dataset(&attributes)) {
            found.push(key.to_string());
            return Ok(());
        }
        if depth >= MAX_DEPTH {
            return Ok(());
        }
        for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let path = entry.path();
            if name.starts_with('.') || !path.is_dir() {
                continue;
            }
            let child = if key.is_empty() {
                name
            } else {
                format!("{key}/{name}")
            };
            visit(&path, &child, depth + 1, seen, found)?;
        }
        Ok(())
    }
    if !root.is_dir() {
        return Err(Error::io(
            root,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not an N5 container directory",
            ),
        ));
    }
    let mut found = Vec::new();
    visit(root, "", 0, &mut crate::fs::SeenDirs::default(), &mut found)?;
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests;
