//! Native N5 (the saalfeldlab/n5 format), read and write, in any [`Store`] (a local folder,
//! an object store: the key layout is the file system's).
//!
//! A container is a directory tree: every directory is a group, `attributes.json` holds its
//! attributes, the root's carries the `"n5"` version, and a dataset is a group whose attributes
//! describe an array (see [`N5Metadata`]). Block `(z, y, x)` lives at `<dataset>/x/y/z`. Edge
//! blocks are written truncated to the array, as Java N5 and z5py do; blocks whose header
//! records a different size (tensorstore writes edge blocks full-size) read their overlap with
//! the block's region. Every block write replaces a whole value ([`Store::put`]).

mod block;
mod compression;
mod metadata;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::buffer;
use crate::chunked::{copy_box, write_region_by_chunks, ChunkedArray};
use crate::dtype::DataType;
use crate::error::{Error, Result};
use crate::metadata_json::{read_object_at, Members};
use crate::storage::{find_arrays, join_key, LocalStore, Store};

pub use compression::{Lz4Framing, N5Compression};
pub use metadata::N5Metadata;

/// The N5 version this crate writes into a new container's root, the one z5py writes.
pub const N5_VERSION: &str = "2.0.0";
/// The newest major N5 version this crate reads (Java N5 writes 4.0.0).
const MAX_MAJOR_VERSION: u64 = 4;
const ATTRIBUTES: &str = "attributes.json";
/// How deep `list_n5_arrays` descends (a guard against symlink cycles).
const MAX_DEPTH: usize = 64;

/// One N5 dataset in a store.
#[derive(Debug)]
pub struct N5Array {
    store: Arc<dyn Store>,
    key: String,
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

/// The attributes of the group or dataset at `node`, `None` without an `attributes.json`. All
/// of them (to rewrite the file keeping the others).
fn read_attributes(store: &dyn Store, node: &str) -> Result<Option<Map<String, Value>>> {
    read_object_at(store, &join_key(node, ATTRIBUTES), Members::All)
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

/// The array members of the attributes at `node` (see [`ARRAY_MEMBERS`]).
fn read_array_attributes(store: &dyn Store, node: &str) -> Result<Option<Map<String, Value>>> {
    read_object_at(
        store,
        &join_key(node, ATTRIBUTES),
        Members::Only(&ARRAY_MEMBERS),
    )
}

fn write_attributes(store: &dyn Store, node: &str, attributes: &Map<String, Value>) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(attributes).expect("a JSON map serializes");
    bytes.push(b'\n');
    store.put(&join_key(node, ATTRIBUTES), &bytes)
}

/// Fails for a container whose `"n5"` version this crate cannot read.
fn check_version(store: &dyn Store, attributes: &Map<String, Value>) -> Result<()> {
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
            path: store.url(ATTRIBUTES),
            reason: format!(
                "unsupported N5 version {version}; this reader supports up to {MAX_MAJOR_VERSION}.x"
            ),
        }),
    }
}

/// Makes the store an N5 container: the `"n5"` version in its root attributes.
fn ensure_root(store: &dyn Store) -> Result<()> {
    // A container that has its version needs no rewrite (nor its other attributes parsed).
    if let Some(attributes) = read_object_at(store, ATTRIBUTES, Members::Only(&["n5"]))? {
        if attributes.contains_key("n5") {
            return check_version(store, &attributes);
        }
    }
    let mut attributes = read_attributes(store, "")?.unwrap_or_default();
    attributes.insert("n5".to_string(), Value::from(N5_VERSION));
    write_attributes(store, "", &attributes)
}

/// Whether `node` has children other than hidden ones.
fn has_subdirectories(store: &dyn Store, node: &str) -> Result<bool> {
    let listing = store.list_dir(node)?;
    Ok(listing.prefixes.iter().any(|name| !name.starts_with('.')))
}

/// Deletes the blocks (all-digit names) of the dataset at `node`.
fn remove_blocks(store: &dyn Store, node: &str) -> Result<()> {
    let is_block = |name: &String| !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit());
    let listing = store.list_dir(node)?;
    for name in listing.prefixes.iter().filter(|n| is_block(n)) {
        store.delete_prefix(&join_key(node, name))?;
    }
    for name in listing.keys.iter().filter(|n| is_block(n)) {
        store.delete(&join_key(node, name))?;
    }
    Ok(())
}

impl N5Array {
    /// Opens the dataset at `key` (`"a/b/c"`, `""` for a root dataset) of the container in
    /// the local folder `root`.
    pub fn open(root: &Path, key: &str) -> Result<Self> {
        Self::open_in(Arc::new(LocalStore::new(root)), key)
    }

    /// Opens the dataset at `key` of the container `store`.
    pub fn open_in(store: Arc<dyn Store>, key: &str) -> Result<Self> {
        let node = key_components(key)?.join("/");
        let attributes_key = join_key(&node, ATTRIBUTES);
        let attributes =
            read_array_attributes(store.as_ref(), &node)?.ok_or_else(|| Error::Metadata {
                path: store.url(&attributes_key),
                reason: format!("no N5 dataset at key {key:?} (attributes.json not found)"),
            })?;
        if node.is_empty() {
            check_version(store.as_ref(), &attributes)?;
        } else if let Some(root_attributes) =
            read_object_at(store.as_ref(), ATTRIBUTES, Members::Only(&["n5"]))?
        {
            check_version(store.as_ref(), &root_attributes)?;
        }
        if !metadata::is_dataset(&attributes) {
            return Err(Error::Metadata {
                path: store.url(&attributes_key),
                reason: format!("key {key:?} is an N5 group, not a dataset (no \"dimensions\")"),
            });
        }
        let metadata =
            N5Metadata::from_attributes(&attributes, Path::new(&store.url(&attributes_key)))?;
        Ok(Self::new(store, node, metadata))
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
        let store = Arc::new(LocalStore::new(root));
        let options = (shape, chunk_shape, dtype, compression);
        Self::create_in(store, key, options, overwrite)
    }

    /// [`N5Array::create`] in any store: `(shape, chunk_shape, dtype, compression)`.
    pub fn create_in(
        store: Arc<dyn Store>,
        key: &str,
        (shape, chunk_shape, dtype, compression): (&[u64], &[u64], DataType, N5Compression),
        overwrite: bool,
    ) -> Result<Self> {
        let components = key_components(key)?;
        N5Metadata::check(shape, chunk_shape, dtype).map_err(|reason| {
            Error::InvalidArgument(format!("N5 dataset {key:?} in {}: {reason}", store.url("")))
        })?;
        compression.validate()?;
        let root = store.url("");
        store.check_writable("")?;
        ensure_root(store.as_ref())?;
        // Every ancestor must be a group: a dataset's subdirectories are its blocks.
        for depth in 0..components.len() {
            let group = components[..depth].join("/");
            let attributes = read_object_at(
                store.as_ref(),
                &join_key(&group, ATTRIBUTES),
                Members::Only(&["dimensions"]),
            )?;
            if attributes.as_ref().is_some_and(metadata::is_dataset) {
                return Err(Error::InvalidArgument(format!(
                    "cannot create N5 dataset {key:?} in {root}: {group:?} is a dataset, not a \
                     group"
                )));
            }
            if attributes.is_none() {
                write_attributes(store.as_ref(), &group, &Map::new())?;
            }
        }
        let node = components.join("/");
        let existing = read_attributes(store.as_ref(), &node)?;
        let mut attributes = match existing {
            Some(attributes) if metadata::is_dataset(&attributes) => {
                if !overwrite {
                    return Err(Error::InvalidArgument(format!(
                        "an N5 dataset already exists at key {key:?} of {root}; pass \
                         overwrite=True to replace it"
                    )));
                }
                remove_blocks(store.as_ref(), &node)?;
                // A fresh dataset: keep only the container's version if this is the root.
                let mut fresh = Map::new();
                if let Some(version) = attributes.get("n5") {
                    fresh.insert("n5".to_string(), version.clone());
                }
                fresh
            }
            existing => {
                if has_subdirectories(store.as_ref(), &node)? {
                    return Err(Error::InvalidArgument(format!(
                        "cannot create N5 dataset {key:?} in {root}: it is a group with children"
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
        write_attributes(store.as_ref(), &node, &attributes)?;
        Ok(Self::new(store, node, metadata))
    }

    fn new(store: Arc<dyn Store>, key: String, metadata: N5Metadata) -> Self {
        let describe = store.url(&key);
        let fill_value = vec![0u8; metadata.dtype.size()];
        Self {
            store,
            key,
            describe,
            metadata,
            fill_value,
        }
    }

    /// The container's store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The dataset's key in the container, `"a/b/c"` style (`""` for a root dataset).
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn metadata(&self) -> &N5Metadata {
        &self.metadata
    }

    pub fn compression(&self) -> &N5Compression {
        &self.metadata.compression
    }

    /// The key of block `chunk` (ZYX grid coordinates): `<dataset>/x/y/z`.
    pub fn block_key(&self, chunk: &[u64]) -> String {
        let mut key = self.key.clone();
        for coordinate in chunk.iter().rev() {
            key = join_key(&key, &coordinate.to_string());
        }
        key
    }

    /// The path (or URL) of block `chunk`.
    pub fn block_path(&self, chunk: &[u64]) -> PathBuf {
        PathBuf::from(self.store.url(&self.block_key(chunk)))
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
        let too_long = |len| {
            self.corrupt(
                chunk,
                format!(
                    "the block file holds {len} bytes, more than any valid block of this dataset"
                ),
            )
        };
        let bytes = self.store.get(&self.block_key(chunk), max_len, &too_long)?;
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
        let key = self.block_key(chunk);
        let bytes = self
            .encode_block(&region, data)
            .map_err(|reason| Error::io_at(self.store.url(&key), std::io::Error::other(reason)))?;
        self.store.put(&key, &bytes)
    }

    fn chunk_exists(&self, chunk: &[u64]) -> Result<bool> {
        self.chunk_region_shape(chunk)?;
        self.store.exists(&self.block_key(chunk))
    }

    fn is_remote(&self) -> bool {
        self.store.is_remote()
    }

    fn write_region(&self, region: &[Range<u64>], data: &[u8]) -> Result<()> {
        write_region_by_chunks(self, region, data)
    }
}

/// Whether `key` of the container in the local folder `root` is an N5 dataset.
pub fn is_n5_array(root: &Path, key: &str) -> bool {
    key_components(key)
        .ok()
        .and_then(|components| {
            read_array_attributes(&LocalStore::new(root), &components.join("/"))
                .ok()
                .flatten()
        })
        .is_some_and(|attributes| metadata::is_dataset(&attributes))
}

/// Whether `key` of the container `root` is an N5 group (a directory that is not a dataset).
pub fn is_n5_group(root: &Path, key: &str) -> bool {
    key_components(key)
        .is_ok_and(|components| root.join(components.join("/")).is_dir() && !is_n5_array(root, key))
}

/// Whether `root` looks like an N5 container: its `attributes.json` has the `"n5"` version or
/// describes a root dataset. (Containers written only by tensorstore may lack both.)
pub fn is_n5_container(root: &Path) -> bool {
    read_array_attributes(&LocalStore::new(root), "")
        .ok()
        .flatten()
        .is_some_and(|attributes| {
            attributes.contains_key("n5") || metadata::is_dataset(&attributes)
        })
}

/// The keys of all datasets in the container in the local folder `root` (see
/// [`list_n5_arrays_in`]).
pub fn list_n5_arrays(root: &Path) -> Result<Vec<String>> {
    if !root.is_dir() {
        return Err(Error::io(
            root,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not an N5 container directory",
            ),
        ));
    }
    list_n5_arrays_in(&LocalStore::new(root))
}

/// The keys of all datasets in the container `store`, sorted, `"a/b/c"` style (`""` for a
/// root dataset). Hidden directories and the inside of datasets are not searched.
pub fn list_n5_arrays_in(store: &dyn Store) -> Result<Vec<String>> {
    find_arrays(store, MAX_DEPTH, &|node| {
        let attributes = read_object_at(
            store,
            &join_key(node, ATTRIBUTES),
            Members::Only(&["dimensions"]),
        )?;
        Ok(attributes.is_some_and(|attributes| metadata::is_dataset(&attributes)))
    })
}

#[cfg(test)]
mod tests;
