use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use super::*;
use crate::chunked::{chunk_selections, read_region_into, region_len, MissingChunks};

/// A scratch directory under the system temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "bioimage_py_zarr_{name}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One element of `dtype` for the integer `i` (native byte order).
fn element(dtype: DataType, i: u64) -> Vec<u8> {
    let v = (i * 7 + 3) % 101;
    match dtype {
        DataType::Bool => vec![u8::from(v % 3 == 0)],
        DataType::Int8 => (v as i8 - 50).to_ne_bytes().to_vec(),
        DataType::Int16 => (v as i16 * 300 - 15000).to_ne_bytes().to_vec(),
        DataType::Int32 => (v as i32 * -100_000).to_ne_bytes().to_vec(),
        DataType::Int64 => (v as i64 * -(1 << 40)).to_ne_bytes().to_vec(),
        DataType::UInt8 => (v as u8).to_ne_bytes().to_vec(),
        DataType::UInt16 => (v as u16 * 600).to_ne_bytes().to_vec(),
        DataType::UInt32 => (v as u32 * 40_000_000).to_ne_bytes().to_vec(),
        DataType::UInt64 => (v << 56).to_ne_bytes().to_vec(),
        DataType::Float32 => (v as f32 * 0.5 - 7.25).to_ne_bytes().to_vec(),
        DataType::Float64 => (v as f64 * -1.5e100).to_ne_bytes().to_vec(),
        DataType::Float16 => half::f16::from_f64(v as f64 * 0.25 - 9.5)
            .to_ne_bytes()
            .to_vec(),
        DataType::Complex64 => [v as f32 * 0.5, -(v as f32) * 1e30]
            .iter()
            .flat_map(|p| p.to_ne_bytes())
            .collect(),
        DataType::Complex128 => [v as f64 * -2.5e-200, v as f64 + 0.125]
            .iter()
            .flat_map(|p| p.to_ne_bytes())
            .collect(),
    }
}

/// `n` elements starting at `seed`.
fn data(dtype: DataType, n: usize, seed: u64) -> Vec<u8> {
    (0..n as u64)
        .flat_map(|i| element(dtype, i + seed))
        .collect()
}

/// An in-memory C-order array: the oracle.
struct Oracle {
    shape: Vec<u64>,
    itemsize: usize,
    bytes: Vec<u8>,
}

impl Oracle {
    fn filled(shape: &[u64], fill: &[u8]) -> Self {
        let n: u64 = shape.iter().product();
        Oracle {
            shape: shape.to_vec(),
            itemsize: fill.len(),
            bytes: fill
                .iter()
                .copied()
                .cycle()
                .take(n as usize * fill.len())
                .collect(),
        }
    }

    fn full(&self) -> Vec<Range<u64>> {
        self.shape.iter().map(|&n| 0..n).collect()
    }

    fn write(&mut self, region: &[Range<u64>], data: &[u8]) {
        let shape: Vec<u64> = region.iter().map(|r| r.end - r.start).collect();
        let all: Vec<Range<u64>> = shape.iter().map(|&n| 0..n).collect();
        // SAFETY: `data` holds the region, `bytes` the array; both selections fit.
        unsafe {
            copy_box(
                data.as_ptr(),
                &shape,
                &all,
                self.bytes.as_mut_ptr(),
                &self.shape,
                region,
                self.itemsize,
            );
        }
    }

    fn read(&self, region: &[Range<u64>]) -> Vec<u8> {
        let shape: Vec<u64> = region.iter().map(|r| r.end - r.start).collect();
        let all: Vec<Range<u64>> = shape.iter().map(|&n| 0..n).collect();
        let mut out = vec![0u8; region_len(region) * self.itemsize];
        // SAFETY: as in `write`.
        unsafe {
            copy_box(
                self.bytes.as_ptr(),
                &self.shape,
                region,
                out.as_mut_ptr(),
                &shape,
                &all,
                self.itemsize,
            );
        }
        out
    }
}

fn read_all(array: &ZarrArray, region: &[Range<u64>]) -> Vec<u8> {
    let mut out = vec![0xAB; region_len(region) * array.dtype().size()];
    read_region_into(array, None, MissingChunks::Fill, region, &mut out).unwrap();
    out
}

/// Files whose names show an interrupted or leaked temporary write.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(temporaries(&path));
        } else if path.to_string_lossy().ends_with(".partial") {
            found.push(path);
        }
    }
    found
}

/// A tiny deterministic generator for regions.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }

    fn region(&mut self, shape: &[u64]) -> Vec<Range<u64>> {
        shape
            .iter()
            .map(|&n| {
                let a = self.below(n + 1);
                let b = self.below(n + 1);
                a.min(b)..a.max(b).max(a.min(b) + 1).min(n)
            })
            .collect()
    }
}

#[derive(Clone, Copy, Debug)]
enum Layout3 {
    V2,
    V3,
    Sharded,
}

const SHAPE: [u64; 3] = [13, 11, 7];
const CHUNKS: [u64; 3] = [4, 5, 3];
const SHARDS: [u64; 3] = [8, 10, 6];

fn options(layout: Layout3, dtype: DataType, compression: ZarrCompression) -> ZarrCreate {
    ZarrCreate {
        zarr_format: if matches!(layout, Layout3::V2) { 2 } else { 3 },
        shape: SHAPE.to_vec(),
        chunk_shape: CHUNKS.to_vec(),
        shard_shape: matches!(layout, Layout3::Sharded).then(|| SHARDS.to_vec()),
        dtype,
        compression,
        fill_value: 0.0.into(),
        overwrite: false,
    }
}

fn compressions() -> Vec<ZarrCompression> {
    [
        "raw",
        "zstd",
        "gzip",
        "blosc",
        "blosc-zstd-bitshuffle",
        "blosc-zlib-noshuffle",
    ]
    .into_iter()
    .map(|name| ZarrCompression::from_name(name, None).unwrap())
    .collect()
}

#[test]
fn zarr_round_trips_every_dtype_layout_and_compression() {
    let dir = TempDir::new("round_trip");
    let mut n = 0;
    for layout in [Layout3::V2, Layout3::V3, Layout3::Sharded] {
        for dtype in DataType::ALL {
            for compression in compressions() {
                let key = format!("g/{layout:?}_{}_{n}", dtype.name());
                n += 1;
                let array =
                    ZarrArray::create(&dir.0, &key, &options(layout, dtype, compression)).unwrap();
                assert_eq!(array.chunk_shape(), CHUNKS);
                assert_eq!(
                    array.shard_shape(),
                    matches!(layout, Layout3::Sharded).then_some(&SHARDS[..])
                );
                let mut oracle = Oracle::filled(&SHAPE, array.fill_value());
                let full = oracle.full();
                let values = data(dtype, region_len(&full), 1);
                array.write_region(&full, &values).unwrap();
                oracle.write(&full, &values);
                // Reopen: nothing cached survives, metadata is read back.
                let array = ZarrArray::open(&dir.0, &key).unwrap();
                assert_eq!(array.dtype(), dtype);
                assert_eq!(
                    read_all(&array, &full),
                    oracle.bytes,
                    "{key} {compression:?}"
                );
                let mut rng = Rng(n);
                for _ in 0..3 {
                    let region = rng.region(&SHAPE);
                    assert_eq!(read_all(&array, &region), oracle.read(&region), "{key}");
                }
            }
        }
    }
    assert!(temporaries(&dir.0).is_empty());
}

#[test]
fn zarr_partial_writes_preserve_neighbours() {
    let dir = TempDir::new("partial");
    for layout in [Layout3::V2, Layout3::V3, Layout3::Sharded] {
        for compression in [
            ZarrCompression::None,
            ZarrCompression::from_name("zstd", None).unwrap(),
        ] {
            let key = format!("{layout:?}_{compression:?}").replace([' ', '{', '}', ':', ','], "");
            let mut create = options(layout, DataType::UInt16, compression);
            create.fill_value = FillScalar::from(7.0);
            let array = ZarrArray::create(&dir.0, &key, &create).unwrap();
            let mut oracle = Oracle::filled(&SHAPE, array.fill_value());
            let mut rng = Rng(42);
            for step in 0..25 {
                let region = rng.region(&SHAPE);
                let values = data(DataType::UInt16, region_len(&region), step * 1000);
                array.write_region(&region, &values).unwrap();
                oracle.write(&region, &values);
                assert_eq!(
                    read_all(&array, &oracle.full()),
                    oracle.bytes,
                    "{key} after writing {region:?}"
                );
            }
            // A fresh handle sees the same (no stale shard index).
            let reopened = ZarrArray::open(&dir.0, &key).unwrap();
            assert_eq!(read_all(&reopened, &oracle.full()), oracle.bytes);
        }
    }
    assert!(temporaries(&dir.0).is_empty());
}

#[test]
fn zarr_write_chunk_and_read_chunk_use_the_clipped_region() {
    let dir = TempDir::new("chunks");
    for layout in [Layout3::V2, Layout3::V3, Layout3::Sharded] {
        let key = format!("{layout:?}");
        let array = ZarrArray::create(
            &dir.0,
            &key,
            &options(layout, DataType::Int32, ZarrCompression::None),
        )
        .unwrap();
        // The last chunk is clipped to 1 x 1 x 1.
        let edge = [3, 2, 2];
        assert!(!array.chunk_exists(&edge).unwrap());
        let mut out = vec![0u8; 4];
        assert!(!array.read_chunk(&edge, &mut out).unwrap());
        array.write_chunk(&edge, &5i32.to_ne_bytes()).unwrap();
        assert!(array.chunk_exists(&edge).unwrap());
        assert!(array.read_chunk(&edge, &mut out).unwrap());
        assert_eq!(out, 5i32.to_ne_bytes());
        // Wrong sizes and coordinates are argument errors.
        assert!(matches!(
            array.read_chunk(&edge, &mut [0u8; 8]),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            array.write_chunk(&[4, 0, 0], &[0u8; 4]),
            Err(Error::InvalidArgument(_))
        ));
        // A full chunk next to it.
        let chunk = [0, 0, 0];
        let values = data(DataType::Int32, 60, 9);
        array.write_chunk(&chunk, &values).unwrap();
        let mut out = vec![0u8; 240];
        assert!(array.read_chunk(&chunk, &mut out).unwrap());
        assert_eq!(out, values);
        assert!(!array.chunk_exists(&[1, 0, 0]).unwrap());
    }
}

#[test]
fn zarr_missing_chunks_read_as_fill_or_error() {
    let dir = TempDir::new("missing");
    for layout in [Layout3::V2, Layout3::V3, Layout3::Sharded] {
        let mut create = options(layout, DataType::Float32, ZarrCompression::None);
        create.fill_value = FillScalar::from(f64::NAN);
        let key = format!("{layout:?}");
        let array = ZarrArray::create(&dir.0, &key, &create).unwrap();
        assert_eq!(array.fill_value(), f32::NAN.to_ne_bytes());
        let region = [0..4, 0..5, 0..3];
        let mut out = vec![0u8; region_len(&region) * 4];
        read_region_into(&array, None, MissingChunks::Fill, &region, &mut out).unwrap();
        assert!(out
            .chunks_exact(4)
            .all(|e| f32::from_ne_bytes(e.try_into().unwrap()).is_nan()));
        assert!(matches!(
            read_region_into(&array, None, MissingChunks::Error, &region, &mut out),
            Err(Error::MissingChunk { .. })
        ));
    }
}

#[test]
fn zarr_empty_chunks_are_deleted_unless_asked_to_store_them() {
    let dir = TempDir::new("empty");
    for layout in [Layout3::V2, Layout3::V3, Layout3::Sharded] {
        let key = format!("{layout:?}");
        let mut array = ZarrArray::create(
            &dir.0,
            &key,
            &options(layout, DataType::UInt8, ZarrCompression::None),
        )
        .unwrap();
        assert!(!array.write_empty_chunks());
        let zeros = vec![0u8; 60];
        array.set_write_empty_chunks(true);
        array.write_chunk(&[0, 0, 0], &zeros).unwrap();
        assert!(array.chunk_exists(&[0, 0, 0]).unwrap());
        array.set_write_empty_chunks(false);
        array.write_chunk(&[0, 0, 0], &zeros).unwrap();
        assert!(!array.chunk_exists(&[0, 0, 0]).unwrap());
        assert!(!array.stored_chunk_file(&[0, 0, 0]).exists(), "{key}");
    }
}

#[test]
fn zarr_corrupt_chunks_are_errors_naming_the_chunk() {
    let dir = TempDir::new("corrupt");
    let mut n = 0;
    for layout in [Layout3::V2, Layout3::V3, Layout3::Sharded] {
        for compression in compressions() {
            n += 1;
            let key = format!("a{n}");
            let array = ZarrArray::create(
                &dir.0,
                &key,
                &options(layout, DataType::UInt16, compression),
            )
            .unwrap();
            let values = data(DataType::UInt16, 60, 0);
            array.write_chunk(&[1, 1, 1], &values).unwrap();
            let stored = if matches!(layout, Layout3::Sharded) {
                array.stored_chunk_file(&[0, 0, 0])
            } else {
                array.stored_chunk_file(&[1, 1, 1])
            };
            let original = fs::read(&stored).unwrap();
            let damaged: Vec<Vec<u8>> = vec![
                original[..original.len() / 2].to_vec(),
                original[..3].to_vec(),
                Vec::new(),
                original.iter().map(|b| b ^ 0x5A).collect(),
            ];
            for bytes in damaged {
                fs::write(&stored, &bytes).unwrap();
                let mut out = vec![0u8; 120];
                match array.read_chunk(&[1, 1, 1], &mut out) {
                    Err(Error::CorruptChunk {
                        chunk, array: a, ..
                    }) => {
                        assert_eq!(chunk, vec![1, 1, 1]);
                        assert!(a.ends_with(&key));
                    }
                    // Byte-flipped raw data is indistinguishable from other data.
                    Ok(true)
                        if compression == ZarrCompression::None
                            && bytes.len() == original.len()
                            && !matches!(layout, Layout3::Sharded) => {}
                    other => panic!("{key} {layout:?} {compression:?}: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn zarr_common_codec_chains_take_the_fast_path() {
    let dir = TempDir::new("fast_path");
    let cases = [
        (Layout3::V2, DataType::UInt16, "blosc", "blosc"),
        (Layout3::V3, DataType::UInt16, "zstd", "zstd"),
        (Layout3::V2, DataType::Float64, "zstd", "zstd"),
        (Layout3::Sharded, DataType::UInt16, "zstd", "zstd"),
        (Layout3::V3, DataType::UInt8, "raw", "raw"),
        (Layout3::V2, DataType::Int16, "raw", "raw"),
        (Layout3::V3, DataType::UInt16, "gzip", "gzip"),
        (Layout3::Sharded, DataType::Int32, "blosc-zstd", "blosc"),
    ];
    for (n, (layout, dtype, compression, expected)) in cases.into_iter().enumerate() {
        let compression = ZarrCompression::from_name(compression, None).unwrap();
        let array = ZarrArray::create(&dir.0, &n.to_string(), &options(layout, dtype, compression))
            .unwrap();
        let codec = match &array.layout {
            super::Layout::Chunked(codec) => codec,
            super::Layout::Sharded(layout) => &layout.inner,
        };
        assert_eq!(
            codec.fast_path_name(),
            expected,
            "{layout:?} {dtype:?} {compression:?}"
        );
    }
}

#[test]
fn zarr_shard_index_follows_external_rewrites() {
    let dir = TempDir::new("shard_cache");
    let create = options(Layout3::Sharded, DataType::UInt8, ZarrCompression::None);
    let reader = ZarrArray::create(&dir.0, "s", &create).unwrap();
    let writer = ZarrArray::open(&dir.0, "s").unwrap();
    let mut out = vec![0u8; 60];
    writer.write_chunk(&[0, 0, 0], &[1u8; 60]).unwrap();
    assert!(reader.read_chunk(&[0, 0, 0], &mut out).unwrap());
    assert_eq!(out, [1u8; 60]);
    assert!(!reader.chunk_exists(&[0, 1, 0]).unwrap());
    writer.write_chunk(&[0, 1, 0], &[2u8; 60]).unwrap();
    writer.write_chunk(&[0, 0, 0], &[3u8; 60]).unwrap();
    assert!(reader.chunk_exists(&[0, 1, 0]).unwrap());
    assert!(reader.read_chunk(&[0, 0, 0], &mut out).unwrap());
    assert_eq!(out, [3u8; 60]);
}

#[test]
fn zarr_metadata_matches_zarr_python() {
    let dir = TempDir::new("metadata");
    let mut create = options(
        Layout3::Sharded,
        DataType::UInt16,
        ZarrCompression::from_name("blosc", Some(5)).unwrap(),
    );
    ZarrArray::create(&dir.0, "a/b/s", &create).unwrap();
    let read = |path: &str| -> Value {
        serde_json::from_slice(&fs::read(dir.0.join(path)).unwrap()).unwrap()
    };
    let group = json!({"attributes": {}, "zarr_format": 3, "node_type": "group"});
    assert_eq!(read("zarr.json"), group);
    assert_eq!(read("a/zarr.json"), group);
    assert_eq!(read("a/b/zarr.json"), group);
    let bytes = json!({"name": "bytes", "configuration": {"endian": "little"}});
    assert_eq!(
        read("a/b/s/zarr.json"),
        json!({
            "shape": [13, 11, 7],
            "data_type": "uint16",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [8, 10, 6]}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0,
            "codecs": [{
                "name": "sharding_indexed",
                "configuration": {
                    "chunk_shape": [4, 5, 3],
                    "codecs": [bytes, {"name": "blosc", "configuration": {
                        "typesize": 2, "cname": "lz4", "clevel": 5, "shuffle": "shuffle",
                        "blocksize": 0}}],
                    "index_codecs": [bytes, {"name": "crc32c"}],
                    "index_location": "end"
                }
            }],
            "attributes": {},
            "zarr_format": 3,
            "node_type": "array",
            "storage_transformers": []
        })
    );
    let v2 = TempDir::new("metadata_v2");
    create = options(
        Layout3::V2,
        DataType::Bool,
        ZarrCompression::from_name("zstd", Some(3)).unwrap(),
    );
    create.fill_value = FillScalar::from(1.0);
    ZarrArray::create(&v2.0, "x/y", &create).unwrap();
    assert_eq!(read_v2(&v2.0, ".zgroup"), json!({"zarr_format": 2}));
    assert_eq!(read_v2(&v2.0, "x/.zattrs"), json!({}));
    assert_eq!(
        read_v2(&v2.0, "x/y/.zarray"),
        json!({
            "shape": [13, 11, 7], "chunks": [4, 5, 3], "dtype": "|b1", "fill_value": true,
            "order": "C", "filters": null, "dimension_separator": ".",
            "compressor": {"id": "zstd", "level": 3}, "zarr_format": 2
        })
    );
}

fn read_v2(root: &Path, path: &str) -> Value {
    serde_json::from_slice(&fs::read(root.join(path)).unwrap()).unwrap()
}

#[test]
fn zarr_create_checks_its_arguments_and_overwrite() {
    let dir = TempDir::new("create_args");
    let good = options(Layout3::V3, DataType::UInt8, ZarrCompression::None);
    let mut bad = good.clone();
    bad.fill_value = FillScalar::from(256.0);
    assert!(matches!(
        ZarrArray::create(&dir.0, "a", &bad),
        Err(Error::InvalidArgument(_))
    ));
    bad = good.clone();
    bad.fill_value = FillScalar::from(0.5);
    assert!(ZarrArray::create(&dir.0, "a", &bad).is_err());
    bad = good.clone();
    bad.chunk_shape = vec![4, 0, 3];
    assert!(ZarrArray::create(&dir.0, "a", &bad).is_err());
    bad = options(Layout3::Sharded, DataType::UInt8, ZarrCompression::None);
    bad.zarr_format = 2;
    assert!(ZarrArray::create(&dir.0, "a", &bad).is_err());
    bad = options(Layout3::Sharded, DataType::UInt8, ZarrCompression::None);
    bad.shard_shape = Some(vec![8, 10, 5]);
    assert!(ZarrArray::create(&dir.0, "a", &bad).is_err());
    assert!(ZarrArray::create(&dir.0, "../a", &good).is_err());

    let array = ZarrArray::create(&dir.0, "g/a", &good).unwrap();
    array.write_chunk(&[0, 0, 0], &[9u8; 60]).unwrap();
    assert!(ZarrArray::create(&dir.0, "g/a", &good).is_err());
    assert!(ZarrArray::create(&dir.0, "g", &good).is_err());
    assert!(ZarrArray::create(&dir.0, "g/a/b", &good).is_err());
    let mut overwrite = good.clone();
    overwrite.overwrite = true;
    overwrite.zarr_format = 2;
    let array = ZarrArray::create(&dir.0, "g/a", &overwrite).unwrap();
    assert_eq!(array.zarr_format(), 2);
    assert!(!array.chunk_exists(&[0, 0, 0]).unwrap());
    // A non-empty directory without metadata is never deleted.
    fs::create_dir_all(dir.0.join("plain")).unwrap();
    fs::write(dir.0.join("plain/file"), b"keep").unwrap();
    assert!(ZarrArray::create(&dir.0, "plain", &overwrite).is_err());
    assert!(dir.0.join("plain/file").exists());
}

#[test]
fn zarr_compression_names() {
    assert_eq!(
        ZarrCompression::from_name("none", None).unwrap(),
        ZarrCompression::None
    );
    assert_eq!(
        ZarrCompression::from_name("zstd", Some(5)).unwrap(),
        ZarrCompression::Zstd {
            level: 5,
            checksum: false
        }
    );
    assert_eq!(
        ZarrCompression::from_name("blosc-lz4hc-bitshuffle", Some(9)).unwrap(),
        ZarrCompression::Blosc {
            cname: BloscCompressor::Lz4Hc,
            clevel: 9,
            shuffle: BloscShuffle::Bit,
            blocksize: 0
        }
    );
    assert_eq!(
        ZarrCompression::from_name("blosc", None).unwrap(),
        ZarrCompression::Blosc {
            cname: BloscCompressor::Lz4,
            clevel: 5,
            shuffle: BloscShuffle::Byte,
            blocksize: 0
        }
    );
    for bad in [
        "lzma",
        "blosc-foo",
        "blosc-lz4-xshuffle",
        "blosc-lz4-shuffle-x",
    ] {
        assert!(ZarrCompression::from_name(bad, None).is_err(), "{bad}");
    }
    assert!(ZarrCompression::from_name("gzip", Some(10)).is_err());
    assert!(ZarrCompression::from_name("raw", Some(1)).is_err());
}

#[test]
fn zarr_open_errors_and_listing() {
    let dir = TempDir::new("open");
    let create = options(Layout3::V3, DataType::UInt8, ZarrCompression::None);
    ZarrArray::create(&dir.0, "g/a", &create).unwrap();
    ZarrArray::create(&dir.0, "g/h/b", &create).unwrap();
    assert_eq!(list_zarr_arrays(&dir.0).unwrap(), vec!["g/a", "g/h/b"]);
    assert!(matches!(
        ZarrArray::open(&dir.0, "g"),
        Err(Error::Metadata { .. })
    ));
    assert!(matches!(
        ZarrArray::open(&dir.0, "nothing"),
        Err(Error::Metadata { .. })
    ));
    assert_eq!(ZarrArray::open(&dir.0, "/g/h/b/").unwrap().key(), "g/h/b");

    // A data type native arrays do not support is a metadata error naming it.
    let complex = dir.0.join("c");
    fs::create_dir_all(&complex).unwrap();
    let mut metadata = create.metadata_v3().unwrap();
    metadata["data_type"] = json!("complex64");
    fs::write(complex.join("zarr.json"), metadata.to_string()).unwrap();
    match ZarrArray::open(&dir.0, "c") {
        Err(Error::Metadata { reason, .. }) => assert!(reason.contains("complex64"), "{reason}"),
        other => panic!("{other:?}"),
    }

    // A root array.
    let root = TempDir::new("root_array");
    ZarrArray::create(&root.0, "", &create).unwrap();
    assert_eq!(list_zarr_arrays(&root.0).unwrap(), vec![""]);
    assert_eq!(ZarrArray::open(&root.0, "").unwrap().shape(), SHAPE);
}

#[test]
fn zarr_v2_order_f_and_null_fill_value_read_correctly() {
    let dir = TempDir::new("order_f");
    let array_dir = dir.0.join("f");
    fs::create_dir_all(&array_dir).unwrap();
    fs::write(
        array_dir.join(".zarray"),
        json!({
            "shape": [3, 5], "chunks": [2, 4], "dtype": "<u2", "fill_value": null,
            "order": "F", "filters": null, "dimension_separator": ".", "compressor": null,
            "zarr_format": 2
        })
        .to_string(),
    )
    .unwrap();
    // Chunk (0, 0) holds rows 0..2, columns 0..4, stored column-major.
    let value = |r: u16, c: u16| r * 10 + c;
    let mut chunk = Vec::new();
    for c in 0..4 {
        for r in 0..2 {
            chunk.extend(value(r, c).to_le_bytes());
        }
    }
    fs::write(array_dir.join("0.0"), &chunk).unwrap();
    let array = ZarrArray::open(&dir.0, "f").unwrap();
    assert_eq!(array.fill_value(), 0u16.to_ne_bytes());
    let out = read_all(&array, &[0..3, 0..5]);
    let expected: Vec<u8> = (0..3)
        .flat_map(|r| (0..5).map(move |c| (r, c)))
        .flat_map(|(r, c)| {
            let v = if r < 2 && c < 4 { value(r, c) } else { 0 };
            v.to_ne_bytes()
        })
        .collect();
    assert_eq!(out, expected);
    // Writing through the transpose codec round-trips too.
    array
        .write_region(&[1..3, 2..5], &data(DataType::UInt16, 6, 3))
        .unwrap();
    let mut oracle = Oracle::filled(&[3, 5], &[0, 0]);
    oracle.bytes = expected;
    oracle.write(&[1..3, 2..5], &data(DataType::UInt16, 6, 3));
    assert_eq!(read_all(&array, &[0..3, 0..5]), oracle.bytes);
}

#[test]
fn zarr_zero_dimensional_and_empty_arrays() {
    let dir = TempDir::new("zero_dim");
    for layout in [Layout3::V2, Layout3::V3] {
        let mut create = options(layout, DataType::Float64, ZarrCompression::None);
        create.shape = vec![];
        create.chunk_shape = vec![];
        let key = format!("{layout:?}");
        let array = ZarrArray::create(&dir.0, &key, &create).unwrap();
        array.write_region(&[], &2.5f64.to_ne_bytes()).unwrap();
        assert_eq!(read_all(&array, &[]), 2.5f64.to_ne_bytes());
    }
    let mut create = options(Layout3::V3, DataType::UInt8, ZarrCompression::None);
    create.shape = vec![0, 4];
    create.chunk_shape = vec![2, 2];
    let array = ZarrArray::create(&dir.0, "empty", &create).unwrap();
    assert!(read_all(&array, &[0..0, 0..4]).is_empty());
}

/// Reads arrays written by zarr-python (and tensorstore) into `$BIOIMAGE_PY_ZARR_INTEROP_READ`
/// by the throwaway script of the interop check: every array `k` holds
/// `(arange(size) * 7 + 3) % 101` reshaped and cast to its dtype.
#[test]
#[ignore = "needs arrays written by zarr-python; set BIOIMAGE_PY_ZARR_INTEROP_READ"]
fn zarr_reads_arrays_written_by_peers() {
    let Ok(root) = std::env::var("BIOIMAGE_PY_ZARR_INTEROP_READ") else {
        return;
    };
    let root = PathBuf::from(root);
    let keys = list_zarr_arrays(&root).unwrap();
    assert!(!keys.is_empty());
    for key in keys {
        let array = ZarrArray::open(&root, &key).unwrap();
        let full: Vec<Range<u64>> = array.shape().iter().map(|&n| 0..n).collect();
        let out = read_all(&array, &full);
        let expected: Vec<u8> = (0..region_len(&full) as u64)
            .flat_map(|i| {
                let v = (i * 7 + 3) % 101;
                match array.dtype() {
                    DataType::UInt8 => vec![v as u8],
                    DataType::UInt16 => (v as u16).to_ne_bytes().to_vec(),
                    DataType::Int32 => (v as i32).to_ne_bytes().to_vec(),
                    DataType::Float32 => (v as f32).to_ne_bytes().to_vec(),
                    DataType::Float64 => (v as f64).to_ne_bytes().to_vec(),
                    DataType::Bool => vec![u8::from(v != 0)],
                    other => panic!("unexpected dtype {other:?} in {key}"),
                }
            })
            .collect();
        assert_eq!(out, expected, "{key}: {array:?}");
        eprintln!("read {key}: {array:?}");
    }
}

/// Writes arrays for the interop script to check with zarr-python into
/// `$BIOIMAGE_PY_ZARR_INTEROP_WRITE`, with the same contents as above.
#[test]
#[ignore = "writes arrays for zarr-python to check; set BIOIMAGE_PY_ZARR_INTEROP_WRITE"]
fn zarr_writes_arrays_for_peers() {
    let Ok(root) = std::env::var("BIOIMAGE_PY_ZARR_INTEROP_WRITE") else {
        return;
    };
    let root = PathBuf::from(root);
    let mut n = 0;
    for layout in [Layout3::V2, Layout3::V3, Layout3::Sharded] {
        for compression in compressions() {
            for dtype in [DataType::UInt16, DataType::Float32, DataType::UInt8] {
                n += 1;
                let key = format!("{layout:?}/{n}");
                let mut create = options(layout, dtype, compression);
                create.overwrite = true;
                let array = ZarrArray::create(&root, &key, &create).unwrap();
                let full: Vec<Range<u64>> = SHAPE.iter().map(|&n| 0..n).collect();
                let values: Vec<u8> = (0..region_len(&full) as u64)
                    .flat_map(|i| {
                        let v = (i * 7 + 3) % 101;
                        match dtype {
                            DataType::UInt8 => vec![v as u8],
                            DataType::UInt16 => (v as u16).to_ne_bytes().to_vec(),
                            _ => (v as f32).to_ne_bytes().to_vec(),
                        }
                    })
                    .collect();
                // Two partial writes, so partial chunks and shards are exercised too.
                let split = [0..13, 0..6, 0..7];
                let rest = [0..13, 6..11, 0..7];
                let oracle = Oracle {
                    shape: SHAPE.to_vec(),
                    itemsize: dtype.size(),
                    bytes: values,
                };
                array.write_region(&split, &oracle.read(&split)).unwrap();
                array.write_region(&rest, &oracle.read(&rest)).unwrap();
                if n % 3 == 0 {
                    // Chunk (0, 0, 0) back to the fill value: it is deleted (or left out of
                    // its shard); the script expects zeros there for keys ending in "_sparse".
                    array
                        .write_region(&[0..4, 0..5, 0..3], &vec![0u8; 60 * dtype.size()])
                        .unwrap();
                    assert!(!array.chunk_exists(&[0, 0, 0]).unwrap());
                    fs::rename(root.join(&key), root.join(format!("{key}_sparse"))).unwrap();
                }
            }
        }
    }
}

#[test]
fn zarr_shards_with_the_index_at_the_start() {
    let dir = TempDir::new("index_start");
    let create = options(
        Layout3::Sharded,
        DataType::Int16,
        ZarrCompression::from_name("gzip", Some(1)).unwrap(),
    );
    ZarrArray::create(&dir.0, "s", &create).unwrap();
    let path = dir.0.join("s/zarr.json");
    let mut metadata: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    metadata["codecs"][0]["configuration"]["index_location"] = json!("start");
    fs::write(&path, metadata.to_string()).unwrap();
    let array = ZarrArray::open(&dir.0, "s").unwrap();
    let mut oracle = Oracle::filled(&SHAPE, array.fill_value());
    let mut rng = Rng(7);
    for step in 0..10 {
        let region = rng.region(&SHAPE);
        let values = data(DataType::Int16, region_len(&region), step * 31);
        array.write_region(&region, &values).unwrap();
        oracle.write(&region, &values);
    }
    let reopened = ZarrArray::open(&dir.0, "s").unwrap();
    assert_eq!(read_all(&reopened, &oracle.full()), oracle.bytes);
    // The index really is at the start: its first entry points just past it.
    let shard = fs::read(reopened.stored_chunk_file(&[0, 0, 0])).unwrap();
    let index_nbytes = 16 * 2 * 2 * 2 + 4;
    let first = u64::from_le_bytes(shard[..8].try_into().unwrap());
    assert!(first == index_nbytes || first == u64::MAX, "{first}");
}

#[test]
fn zarr_write_errors_are_reported_not_hung() {
    let dir = TempDir::new("write_error");
    for layout in [Layout3::V3, Layout3::Sharded] {
        let key = format!("{layout:?}");
        let array = ZarrArray::create(
            &dir.0,
            &key,
            &options(layout, DataType::UInt8, ZarrCompression::None),
        )
        .unwrap();
        // A file where the chunk directory should be.
        fs::write(dir.0.join(&key).join("c"), b"in the way").unwrap();
        let full: Vec<Range<u64>> = SHAPE.iter().map(|&n| 0..n).collect();
        let values = data(DataType::UInt8, region_len(&full), 1);
        assert!(matches!(
            array.write_region(&full, &values),
            Err(Error::Io { .. })
        ));
        assert!(matches!(
            array.write_chunk(&[0, 0, 0], &values[..60]),
            Err(Error::Io { .. })
        ));
    }
}

#[test]
fn zarr_concurrent_aligned_writers_give_the_expected_array() {
    let dir = TempDir::new("concurrent");
    for layout in [Layout3::V2, Layout3::Sharded] {
        let key = format!("{layout:?}");
        let create = options(
            layout,
            DataType::UInt32,
            ZarrCompression::from_name("zstd", Some(1)).unwrap(),
        );
        ZarrArray::create(&dir.0, &key, &create).unwrap();
        let unit = if matches!(layout, Layout3::Sharded) {
            SHARDS
        } else {
            CHUNKS
        };
        let blocks = chunk_selections(&[0..13, 0..11, 0..7], &SHAPE, &unit);
        let mut oracle = Oracle::filled(&SHAPE, &0u32.to_ne_bytes());
        for (n, block) in blocks.iter().enumerate() {
            oracle.write(
                &block.chunk_region,
                &data(
                    DataType::UInt32,
                    region_len(&block.chunk_region),
                    n as u64 * 100 + 1,
                ),
            );
        }
        // Four writers, each with its own handle, interleaving their blocks.
        std::thread::scope(|scope| {
            for writer in 0..4 {
                let (blocks, key, root) = (&blocks, &key, &dir.0);
                scope.spawn(move || {
                    let array = ZarrArray::open(root, key).unwrap();
                    for (n, block) in blocks.iter().enumerate().skip(writer).step_by(4) {
                        let values = data(
                            DataType::UInt32,
                            region_len(&block.chunk_region),
                            n as u64 * 100 + 1,
                        );
                        array.write_region(&block.chunk_region, &values).unwrap();
                    }
                });
            }
        });
        let array = ZarrArray::open(&dir.0, &key).unwrap();
        assert_eq!(read_all(&array, &oracle.full()), oracle.bytes, "{key}");
        assert!(temporaries(&dir.0).is_empty());
    }
}
