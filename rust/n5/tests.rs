use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::chunked::{read_region_into, region_len, MissingChunks};

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "bioimage_py_n5_{name}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Deterministic bytes that exercise every bit (and every byte of each element).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Smooth, compressible bytes (so compressors take their compressing paths).
fn smooth(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i / 64) % 7) as u8).collect()
}

fn every_compression() -> Vec<N5Compression> {
    let mut all = vec![
        N5Compression::Raw,
        N5Compression::Gzip {
            level: 1,
            use_zlib: false,
        },
        N5Compression::Gzip {
            level: -1,
            use_zlib: true,
        },
        N5Compression::Zstd { level: 3 },
        N5Compression::Bzip2 { block_size: 9 },
        N5Compression::Xz { preset: 6 },
        N5Compression::Lz4 {
            block_size: 65536,
            framing: Lz4Framing::Java,
        },
        N5Compression::Lz4 {
            block_size: 64,
            framing: Lz4Framing::Java,
        },
        N5Compression::Lz4 {
            block_size: 6,
            framing: Lz4Framing::Z5,
        },
    ];
    for cname in ["blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd"] {
        for shuffle in [0, 1, 2] {
            all.push(N5Compression::Blosc {
                cname: cname.to_string(),
                clevel: 5,
                shuffle,
                blocksize: 0,
            });
        }
    }
    all
}

fn full_region(shape: &[u64]) -> Vec<Range<u64>> {
    shape.iter().map(|&s| 0..s).collect()
}

fn read_all(array: &N5Array) -> Vec<u8> {
    let region = full_region(array.shape());
    let mut out = vec![0xAAu8; region_len(&region) * array.dtype().size()];
    read_region_into(array, None, MissingChunks::Fill, &region, &mut out).unwrap();
    out
}

/// The C-order strides (in elements) of `shape`.
fn strides(shape: &[u64]) -> Vec<usize> {
    let mut strides = vec![1usize; shape.len()];
    for axis in (0..shape.len().saturating_sub(1)).rev() {
        strides[axis] = strides[axis + 1] * shape[axis + 1] as usize;
    }
    strides
}

/// The oracle: `src[region]` of a C-order array, by naive indexing.
fn crop(src: &[u8], shape: &[u64], region: &[Range<u64>], itemsize: usize) -> Vec<u8> {
    let src_strides = strides(shape);
    let mut out = Vec::new();
    let mut index: Vec<u64> = region.iter().map(|r| r.start).collect();
    if region.iter().any(|r| r.start >= r.end) {
        return out;
    }
    loop {
        let offset: usize = index
            .iter()
            .zip(&src_strides)
            .map(|(&i, &s)| i as usize * s)
            .sum();
        out.extend_from_slice(&src[offset * itemsize..(offset + 1) * itemsize]);
        let mut axis = index.len();
        loop {
            if axis == 0 {
                return out;
            }
            axis -= 1;
            index[axis] += 1;
            if index[axis] < region[axis].end {
                break;
            }
            index[axis] = region[axis].start;
        }
    }
}

/// `dst[region] = values` for a C-order array, by naive indexing.
fn paste(dst: &mut [u8], shape: &[u64], region: &[Range<u64>], values: &[u8], itemsize: usize) {
    let dst_strides = strides(shape);
    let mut index: Vec<u64> = region.iter().map(|r| r.start).collect();
    for value in values.chunks(itemsize) {
        let offset: usize = index
            .iter()
            .zip(&dst_strides)
            .map(|(&i, &s)| i as usize * s)
            .sum();
        dst[offset * itemsize..(offset + 1) * itemsize].copy_from_slice(value);
        for axis in (0..index.len()).rev() {
            index[axis] += 1;
            if index[axis] < region[axis].end {
                break;
            }
            index[axis] = region[axis].start;
        }
    }
}

fn write_file(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn write_json(path: &Path, value: &Value) {
    write_file(path, &serde_json::to_vec(value).unwrap());
}

const NUMERIC: [DataType; 10] = [
    DataType::Int8,
    DataType::Int16,
    DataType::Int32,
    DataType::Int64,
    DataType::UInt8,
    DataType::UInt16,
    DataType::UInt32,
    DataType::UInt64,
    DataType::Float32,
    DataType::Float64,
];

#[test]
fn round_trip_every_dtype_and_compression() {
    let dir = TempDir::new("round_trip");
    let shape = [5u64, 7, 9];
    let chunks = [2u64, 4, 4];
    for (c, compression) in every_compression().into_iter().enumerate() {
        for (d, dtype) in NUMERIC.into_iter().enumerate() {
            let key = format!("c{c}/{}", dtype.name());
            let array = N5Array::create(
                &dir.0,
                &key,
                &shape,
                &chunks,
                dtype,
                compression.clone(),
                false,
            )
            .unwrap();
            let len = 5 * 7 * 9 * dtype.size();
            let data = if d % 2 == 0 {
                noise(len, (c * 100 + d) as u64)
            } else {
                smooth(len)
            };
            array.write_region(&full_region(&shape), &data).unwrap();
            assert_eq!(read_all(&array), data, "{compression:?} {}", dtype.name());
            // Reopened from disk: same metadata, same data.
            let reopened = N5Array::open(&dir.0, &key).unwrap();
            assert_eq!(reopened.metadata(), array.metadata());
            assert_eq!(read_all(&reopened), data);
            // The edge block (z 4..5, y 4..7, x 8..9) is stored truncated, XYZ in the header.
            let bytes = fs::read(dir.0.join(&key).join("2/1/2")).unwrap();
            assert_eq!(
                bytes[..16],
                [0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 1]
            );
            let header = block::parse_header(&bytes, 3).unwrap();
            assert_eq!(header.shape, vec![1, 3, 1]);
        }
    }
}

#[test]
fn region_reads_match_the_oracle() {
    let dir = TempDir::new("regions");
    let shape = [13u64, 11, 17];
    let array = N5Array::create(
        &dir.0,
        "a",
        &shape,
        &[4, 5, 6],
        DataType::UInt16,
        N5Compression::Gzip {
            level: 1,
            use_zlib: false,
        },
        false,
    )
    .unwrap();
    let data = noise(13 * 11 * 17 * 2, 7);
    array.write_region(&full_region(&shape), &data).unwrap();
    let regions = [
        vec![0..13, 0..11, 0..17],
        vec![3..9, 2..10, 5..16],
        vec![12..13, 10..11, 16..17],
        vec![0..1, 0..11, 6..12],
        vec![4..8, 5..10, 6..12],
        vec![7..7, 0..11, 0..17],
        vec![1..12, 4..6, 0..17],
    ];
    for region in regions {
        let mut out = vec![0u8; region_len(&region) * 2];
        read_region_into(&array, None, MissingChunks::Fill, &region, &mut out).unwrap();
        assert_eq!(out, crop(&data, &shape, &region, 2), "{region:?}");
    }
}

#[test]
fn partial_writes_preserve_neighbours() {
    let dir = TempDir::new("partial");
    let shape = [9u64, 10, 11];
    for compression in [
        N5Compression::Raw,
        N5Compression::Zstd { level: 1 },
        N5Compression::from_name("blosc", None).unwrap(),
    ] {
        let array = N5Array::create(
            &dir.0,
            compression.name(),
            &shape,
            &[4, 4, 4],
            DataType::Int32,
            compression.clone(),
            false,
        )
        .unwrap();
        let mut expected = noise(9 * 10 * 11 * 4, 1);
        array.write_region(&full_region(&shape), &expected).unwrap();
        for (seed, region) in [
            vec![1..6, 3..9, 2..11],
            vec![8..9, 0..10, 10..11],
            vec![0..4, 4..8, 4..8],
        ]
        .into_iter()
        .enumerate()
        {
            let values = noise(region_len(&region) * 4, 10 + seed as u64);
            array.write_region(&region, &values).unwrap();
            paste(&mut expected, &shape, &region, &values, 4);
            assert_eq!(read_all(&array), expected, "{compression:?} {region:?}");
        }
    }
}

#[test]
fn missing_blocks_read_as_fill() {
    let dir = TempDir::new("missing");
    let shape = [6u64, 6];
    let array = N5Array::create(
        &dir.0,
        "sparse",
        &shape,
        &[4, 4],
        DataType::Float64,
        N5Compression::Raw,
        false,
    )
    .unwrap();
    assert!(!array.chunk_exists(&[0, 1]).unwrap());
    let mut untouched = vec![7u8; 2 * 4 * 8];
    assert!(!array.read_chunk(&[0, 1], &mut untouched).unwrap());
    assert!(untouched.iter().all(|&b| b == 7));
    // A partial write into a missing block fills the rest of it with zeros.
    let values = noise(2 * 8, 3);
    array.write_region(&[4..5, 4..6], &values).unwrap();
    assert!(array.chunk_exists(&[1, 1]).unwrap());
    assert!(!array.chunk_exists(&[0, 0]).unwrap());
    let mut expected = vec![0u8; 36 * 8];
    paste(&mut expected, &shape, &[4..5, 4..6], &values, 8);
    assert_eq!(read_all(&array), expected);
    let mut out = vec![0u8; 36 * 8];
    let error = read_region_into(
        &array,
        None,
        MissingChunks::Error,
        &full_region(&shape),
        &mut out,
    )
    .unwrap_err();
    assert!(matches!(error, Error::MissingChunk { .. }), "{error}");
    assert!(array.chunk_exists(&[2, 0]).is_err());
    assert!(array.read_chunk(&[0], &mut out).is_err());
}

#[test]
fn blocks_of_another_size_read_their_overlap() {
    let dir = TempDir::new("header_sized");
    // Shape (5, 7) in blocks of (4, 4): the edge block (1, 1) covers (1, 3).
    for compression in [
        N5Compression::Raw,
        N5Compression::Gzip {
            level: 6,
            use_zlib: false,
        },
    ] {
        let array = N5Array::create(
            &dir.0,
            compression.name(),
            &[5, 7],
            &[4, 4],
            DataType::UInt16,
            compression.clone(),
            false,
        )
        .unwrap();
        let path = array.block_path(&[1, 1]);
        // Full-size (4 x 4), as tensorstore writes edge blocks: values 100..116, big-endian.
        let full: Vec<u8> = (100u16..116).flat_map(u16::to_be_bytes).collect();
        let mut bytes = Vec::new();
        block::write_header(&[4, 4], &mut bytes);
        compression.compress_append(&full, 2, &mut bytes).unwrap();
        write_file(&path, &bytes);
        let mut out = vec![0u8; 3 * 2];
        assert!(array.read_chunk(&[1, 1], &mut out).unwrap());
        let values: Vec<u16> = out
            .chunks(2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(values, [100, 101, 102]);
        // Smaller than the region (1 x 2 of 1 x 3): the rest reads as fill.
        let mut bytes = Vec::new();
        block::write_header(&[1, 2], &mut bytes);
        compression
            .compress_append(&[0, 9, 0, 8], 2, &mut bytes)
            .unwrap();
        write_file(&path, &bytes);
        assert!(array.read_chunk(&[1, 1], &mut out).unwrap());
        let values: Vec<u16> = out
            .chunks(2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(values, [9, 8, 0]);
        // Larger than the block shape: corrupt.
        let mut bytes = Vec::new();
        block::write_header(&[5, 4], &mut bytes);
        compression
            .compress_append(&[0; 40], 2, &mut bytes)
            .unwrap();
        write_file(&path, &bytes);
        let error = array.read_chunk(&[1, 1], &mut out).unwrap_err();
        assert!(
            error.to_string().contains("exceeds the block shape"),
            "{error}"
        );
    }
}

#[test]
fn varlength_blocks_are_read() {
    let dir = TempDir::new("varlength");
    let array = N5Array::create(
        &dir.0,
        "v",
        &[2, 3],
        &[2, 3],
        DataType::UInt8,
        N5Compression::Raw,
        false,
    )
    .unwrap();
    let path = array.block_path(&[0, 0]);
    write_file(
        &path,
        &[
            0, 1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 6, 1, 2, 3, 4, 5, 6,
        ],
    );
    let mut out = [0u8; 6];
    assert!(array.read_chunk(&[0, 0], &mut out).unwrap());
    assert_eq!(out, [1, 2, 3, 4, 5, 6]);
    write_file(
        &path,
        &[0, 1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 4, 1, 2, 3, 4],
    );
    let error = array.read_chunk(&[0, 0], &mut out).unwrap_err();
    assert!(error.to_string().contains("varlength"), "{error}");
}

#[test]
fn corrupt_blocks_are_errors_naming_the_array_and_chunk() {
    let dir = TempDir::new("corrupt");
    for (c, compression) in every_compression().into_iter().enumerate() {
        let key = format!("c{c}");
        let array = N5Array::create(
            &dir.0,
            &key,
            &[8, 8],
            &[8, 8],
            DataType::UInt16,
            compression.clone(),
            false,
        )
        .unwrap();
        let data = smooth(128);
        array.write_chunk(&[0, 0], &data).unwrap();
        let path = array.block_path(&[0, 0]);
        let good = fs::read(&path).unwrap();
        let mut damaged: Vec<Vec<u8>> = [0, 1, 3, 11, 12, 13, good.len() / 2, good.len() - 1]
            .into_iter()
            .filter(|&n| n < good.len())
            .map(|n| good[..n].to_vec())
            .collect();
        // Header damage: wrong number of dimensions, object mode.
        let mut wrong_ndim = good.clone();
        wrong_ndim[3] = 3;
        damaged.push(wrong_ndim);
        let mut object_mode = good.clone();
        object_mode[1] = 2;
        damaged.push(object_mode);
        // Payload replaced by garbage of the same length (raw data has no redundancy).
        if compression != N5Compression::Raw {
            let mut garbage = good[..12].to_vec();
            garbage.extend(noise(good.len() - 12, 5));
            damaged.push(garbage);
        }
        for bytes in damaged {
            write_file(&path, &bytes);
            let mut out = vec![0u8; 128];
            let error = array.read_chunk(&[0, 0], &mut out).unwrap_err();
            let message = error.to_string();
            assert!(
                matches!(error, Error::CorruptChunk { .. }),
                "{compression:?}: {message}"
            );
            assert!(message.contains("chunk [0, 0]"), "{message}");
            assert!(message.contains(&format!("/{key}")), "{message}");
            let error =
                read_region_into(&array, None, MissingChunks::Fill, &[0..8, 0..8], &mut out)
                    .unwrap_err();
            assert!(matches!(error, Error::CorruptChunk { .. }));
        }
        // Raw data that is too long is as corrupt as data that is too short.
        if compression == N5Compression::Raw {
            let mut long = good.clone();
            long.push(0);
            write_file(&path, &long);
            assert!(array.read_chunk(&[0, 0], &mut [0u8; 128]).is_err());
        }
    }
}

#[test]
fn gzip_checksums_are_verified() {
    let dir = TempDir::new("gzip_crc");
    let array = N5Array::create(
        &dir.0,
        "g",
        &[64],
        &[64],
        DataType::UInt8,
        N5Compression::from_name("gzip", None).unwrap(),
        false,
    )
    .unwrap();
    array.write_chunk(&[0], &smooth(64)).unwrap();
    let path = array.block_path(&[0]);
    let mut bytes = fs::read(&path).unwrap();
    let crc_at = bytes.len() - 8;
    bytes[crc_at] ^= 1;
    write_file(&path, &bytes);
    let error = array.read_chunk(&[0], &mut [0u8; 64]).unwrap_err();
    assert!(matches!(error, Error::CorruptChunk { .. }), "{error}");
}

fn open_error(dir: &Path, attributes: &Value) -> String {
    write_json(&dir.join("x/attributes.json"), attributes);
    let error = N5Array::open(dir, "x").unwrap_err();
    assert!(matches!(error, Error::Metadata { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("x/attributes.json"), "{message}");
    message
}

#[test]
fn metadata_errors_name_the_file_and_the_problem() {
    let dir = TempDir::new("metadata");
    let good = serde_json::json!({
        "dimensions": [9, 7], "blockSize": [4, 4], "dataType": "uint8",
        "compression": {"type": "raw"}
    });
    let with = |key: &str, value: Value| {
        let mut attributes = good.clone();
        attributes[key] = value;
        attributes
    };
    let without = |key: &str| {
        let mut attributes = good.clone();
        attributes.as_object_mut().unwrap().remove(key);
        attributes
    };
    let cases = [
        (without("blockSize"), "no \"blockSize\""),
        (without("dataType"), "no \"dataType\""),
        (without("compression"), "no \"compression\""),
        (
            with("dimensions", serde_json::json!([9, -7])),
            "non-negative integers",
        ),
        (with("dimensions", serde_json::json!("big")), "not a list"),
        (
            with("blockSize", serde_json::json!([4])),
            "differ in length",
        ),
        (with("blockSize", serde_json::json!([0, 4])), "outside 1..="),
        (
            with("dimensions", serde_json::json!([])),
            "at least one dimension",
        ),
        (
            with("dataType", serde_json::json!("object")),
            "unsupported \"dataType\"",
        ),
        (
            with("dataType", serde_json::json!("bool")),
            "unsupported \"dataType\"",
        ),
        (
            with("dataType", serde_json::json!("float16")),
            "unsupported \"dataType\" \"float16\"",
        ),
        (
            with("dataType", serde_json::json!("complex64")),
            "unsupported \"dataType\" \"complex64\"",
        ),
        (with("dataType", serde_json::json!(8)), "not a string"),
        (
            with("compression", serde_json::json!({"type": "snappy"})),
            "unsupported compression type",
        ),
        (
            with("compression", serde_json::json!({"level": 3})),
            "no \"type\"",
        ),
        (
            with(
                "compression",
                serde_json::json!({"type": "gzip", "level": 11}),
            ),
            "outside -1..=9",
        ),
        (
            with(
                "compression",
                serde_json::json!({"type": "gzip", "useZlib": 1}),
            ),
            "not a boolean",
        ),
        (
            with(
                "compression",
                serde_json::json!({"type": "blosc", "cname": "brotli"}),
            ),
            "\"cname\"",
        ),
        (
            with("blockSize", serde_json::json!([65536, 65536])),
            "2 GiB",
        ),
    ];
    for (attributes, expected) in cases {
        let message = open_error(&dir.0, &attributes);
        assert!(message.contains(expected), "{expected:?} not in {message}");
    }
    write_file(&dir.0.join("x/attributes.json"), b"{\"dimensions\": [");
    assert!(N5Array::open(&dir.0, "x")
        .unwrap_err()
        .to_string()
        .contains("not a valid JSON object"));
    write_file(&dir.0.join("x/attributes.json"), b"[1, 2]");
    assert!(N5Array::open(&dir.0, "x")
        .unwrap_err()
        .to_string()
        .contains("not a valid JSON object"));
    // A group, a missing key, a newer container version.
    write_json(
        &dir.0.join("x/attributes.json"),
        &serde_json::json!({"n": 1}),
    );
    assert!(N5Array::open(&dir.0, "x")
        .unwrap_err()
        .to_string()
        .contains("is an N5 group"));
    assert!(N5Array::open(&dir.0, "nothing/here")
        .unwrap_err()
        .to_string()
        .contains("attributes.json not found"));
    write_json(&dir.0.join("x/attributes.json"), &good);
    N5Array::open(&dir.0, "x").unwrap();
    write_json(
        &dir.0.join("attributes.json"),
        &serde_json::json!({"n5": "5.0.0"}),
    );
    assert!(N5Array::open(&dir.0, "x")
        .unwrap_err()
        .to_string()
        .contains("unsupported N5 version"));
    write_json(
        &dir.0.join("attributes.json"),
        &serde_json::json!({"n5": "4.0.0"}),
    );
    N5Array::open(&dir.0, "x").unwrap();
    assert!(N5Array::open(&dir.0, "../x").is_err());
}

#[test]
fn legacy_compression_type_is_read() {
    let dir = TempDir::new("legacy");
    let array = N5Array::create(
        &dir.0,
        "old",
        &[10, 10],
        &[4, 4],
        DataType::Int16,
        N5Compression::from_name("gzip", Some(9)).unwrap(),
        false,
    )
    .unwrap();
    let data = noise(200, 4);
    array.write_region(&[0..10, 0..10], &data).unwrap();
    write_json(
        &dir.0.join("old/attributes.json"),
        &serde_json::json!({
            "dimensions": [10, 10], "blockSize": [4, 4], "dataType": "int16",
            "compressionType": "gzip"
        }),
    );
    let old = N5Array::open(&dir.0, "old").unwrap();
    assert_eq!(
        *old.compression(),
        N5Compression::Gzip {
            level: -1,
            use_zlib: false
        }
    );
    assert_eq!(read_all(&old), data);
}

#[test]
fn create_writes_the_container_and_guards_existing_data() {
    let dir = TempDir::new("create");
    let root = dir.0.join("c.n5");
    let create = |key: &str, overwrite: bool| {
        N5Array::create(
            &root,
            key,
            &[4, 4],
            &[2, 2],
            DataType::UInt8,
            N5Compression::Raw,
            overwrite,
        )
    };
    let array = create("a/b/data", false).unwrap();
    let root_attributes = read_attributes(&LocalStore::new(&root), "")
        .unwrap()
        .unwrap();
    assert_eq!(root_attributes["n5"], N5_VERSION);
    assert_eq!(
        read_attributes(&LocalStore::new(&root), "a")
            .unwrap()
            .unwrap(),
        Map::new()
    );
    assert_eq!(
        read_attributes(&LocalStore::new(&root), "a/b")
            .unwrap()
            .unwrap(),
        Map::new()
    );
    let attributes = read_attributes(&LocalStore::new(&root), "a/b/data")
        .unwrap()
        .unwrap();
    assert_eq!(attributes["dimensions"], serde_json::json!([4, 4]));
    assert_eq!(
        attributes["compression"],
        serde_json::json!({"type": "raw"})
    );
    assert_eq!(array.describe(), format!("{}/a/b/data", root.display()));
    assert_eq!(array.key(), "a/b/data");
    array.write_region(&[0..4, 0..4], &[1; 16]).unwrap();
    // Existing dataset: an error unless overwriting, which drops the old blocks.
    let error = create("a/b/data", false).unwrap_err();
    assert!(error.to_string().contains("already exists"), "{error}");
    let fresh = create("/a/b/data/", true).unwrap();
    assert!(!fresh.chunk_exists(&[0, 0]).unwrap());
    assert_eq!(read_all(&fresh), vec![0; 16]);
    // Never inside a dataset, never over a group with children.
    assert!(create("a/b/data/inner", true)
        .unwrap_err()
        .to_string()
        .contains("is a dataset, not a group"));
    assert!(create("a", true)
        .unwrap_err()
        .to_string()
        .contains("group with children"));
    // Bad arguments.
    let bad = |shape: &[u64], chunks: &[u64], dtype: DataType| {
        N5Array::create(
            &root,
            "bad",
            shape,
            chunks,
            dtype,
            N5Compression::Raw,
            false,
        )
        .unwrap_err()
        .to_string()
    };
    assert!(bad(&[4], &[2], DataType::Bool).contains("no bool"));
    for dtype in [DataType::Float16, DataType::Complex64, DataType::Complex128] {
        let message = bad(&[4], &[2], dtype);
        let named = format!("spec defines no {} data type", dtype.name());
        assert!(message.contains(&named), "{message}");
        assert!(message.contains(&root.display().to_string()), "{message}");
    }
    assert!(bad(&[4, 4], &[2], DataType::UInt8).contains("differ in length"));
    assert!(bad(&[4], &[0], DataType::UInt8).contains("outside"));
    assert!(bad(&[], &[], DataType::UInt8).contains("at least one"));
    assert!(N5Array::create(
        &root,
        "bad",
        &[4],
        &[4],
        DataType::UInt8,
        N5Compression::Gzip {
            level: 12,
            use_zlib: false
        },
        false
    )
    .is_err());
    assert!(create("a/../b", false).is_err());
    // An existing container version is kept; a newer one refuses.
    write_json(
        &root.join("attributes.json"),
        &serde_json::json!({"n5": "4.0.0", "x": 1}),
    );
    create("other", false).unwrap();
    assert_eq!(
        read_attributes(&LocalStore::new(&root), "")
            .unwrap()
            .unwrap(),
        *serde_json::json!({"n5": "4.0.0", "x": 1})
            .as_object()
            .unwrap()
    );
    write_json(
        &root.join("attributes.json"),
        &serde_json::json!({"n5": "9.0.0"}),
    );
    assert!(create("another", false).is_err());
}

#[test]
fn root_datasets_keep_the_version() {
    let dir = TempDir::new("root_dataset");
    let array = N5Array::create(
        &dir.0,
        "",
        &[3],
        &[2],
        DataType::UInt8,
        N5Compression::Raw,
        false,
    )
    .unwrap();
    array.write_region(&full_region(&[3]), &[1, 2, 3]).unwrap();
    let attributes = read_attributes(&LocalStore::new(&dir.0), "")
        .unwrap()
        .unwrap();
    assert_eq!(attributes["n5"], N5_VERSION);
    assert_eq!(array.describe(), dir.0.display().to_string());
    assert_eq!(list_n5_arrays(&dir.0).unwrap(), vec![String::new()]);
    let again = N5Array::create(
        &dir.0,
        "/",
        &[3],
        &[3],
        DataType::UInt8,
        N5Compression::Raw,
        true,
    )
    .unwrap();
    assert_eq!(
        read_attributes(&LocalStore::new(&dir.0), "")
            .unwrap()
            .unwrap()["n5"],
        N5_VERSION
    );
    assert_eq!(read_all(&again), vec![0, 0, 0]);
    assert!(is_n5_container(&dir.0));
}

#[test]
fn lists_datasets_and_classifies_keys() {
    let dir = TempDir::new("list");
    for key in ["a/b/c", "a/d", "e", "z/deep/er/still"] {
        N5Array::create(
            &dir.0,
            key,
            &[2],
            &[1],
            DataType::UInt8,
            N5Compression::Raw,
            false,
        )
        .unwrap()
        .write_region(&full_region(&[2]), &[1, 2])
        .unwrap();
    }
    fs::create_dir_all(dir.0.join(".hidden")).unwrap();
    write_json(
        &dir.0.join(".hidden/attributes.json"),
        &serde_json::json!({"dimensions": [1]}),
    );
    fs::create_dir_all(dir.0.join("empty/group")).unwrap();
    assert_eq!(
        list_n5_arrays(&dir.0).unwrap(),
        vec!["a/b/c", "a/d", "e", "z/deep/er/still"]
    );
    assert!(is_n5_array(&dir.0, "a/d"));
    assert!(is_n5_array(&dir.0, "/a/b/c"));
    assert!(!is_n5_array(&dir.0, "a"));
    assert!(!is_n5_array(&dir.0, "nope"));
    assert!(is_n5_group(&dir.0, "a"));
    assert!(is_n5_group(&dir.0, ""));
    assert!(is_n5_group(&dir.0, "empty"));
    assert!(!is_n5_group(&dir.0, "a/d"));
    assert!(!is_n5_group(&dir.0, "nope"));
    assert!(is_n5_container(&dir.0));
    assert!(!is_n5_container(&dir.0.join("a")));
    assert!(list_n5_arrays(&dir.0.join("missing")).is_err());
}

/// The example blocks of the N5 specification (saalfeldlab/n5 README): a 1 x 2 x 3 (XYZ)
/// uint16 block holding 1..=6.
#[test]
fn reads_the_specification_examples() {
    let dir = TempDir::new("spec");
    let header: [u8; 16] = [0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
    let raw: &[u8] = &[0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6];
    let gzip: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x63, 0x60, 0x64, 0x60, 0x62,
        0x60, 0x66, 0x60, 0x61, 0x60, 0x65, 0x60, 0x03, 0x00, 0xaa, 0xea, 0x6d, 0xbf, 0x0c, 0x00,
        0x00, 0x00,
    ];
    let bzip2: &[u8] = &[
        0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0x02, 0x3e, 0x0d, 0xd2, 0x00,
        0x00, 0x00, 0x40, 0x00, 0x7f, 0x00, 0x20, 0x00, 0x31, 0x0c, 0x01, 0x0d, 0x31, 0xa8, 0x73,
        0x94, 0x33, 0x7c, 0x5d, 0xc9, 0x14, 0xe1, 0x42, 0x40, 0x08, 0xf8, 0x37, 0x48,
    ];
    let xz: &[u8] = &[
        0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x04, 0xe6, 0xd6, 0xb4, 0x46, 0x02, 0x00, 0x21,
        0x01, 0x16, 0x00, 0x00, 0x00, 0x74, 0x2f, 0xe5, 0xa3, 0x01, 0x00, 0x0b, 0x00, 0x01, 0x00,
        0x02, 0x00, 0x03, 0x00, 0x04, 0x00, 0x05, 0x00, 0x06, 0x00, 0x0d, 0x03, 0x09, 0xca, 0x34,
        0xec, 0x15, 0xa7, 0x00, 0x01, 0x24, 0x0c, 0xa6, 0x18, 0xd8, 0xd8, 0x1f, 0xb6, 0xf3, 0x7d,
        0x01, 0x00, 0x00, 0x00, 0x00, 0x04, 0x59, 0x5a,
    ];
    let expected: Vec<u8> = (1u16..=6).flat_map(u16::to_ne_bytes).collect();
    for (name, payload) in [("raw", raw), ("gzip", gzip), ("bzip2", bzip2), ("xz", xz)] {
        write_json(
            &dir.0.join(name).join("attributes.json"),
            &serde_json::json!({
                "dimensions": [1, 2, 3], "blockSize": [1, 2, 3], "dataType": "uint16",
                "compression": {"type": name}
            }),
        );
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(payload);
        write_file(&dir.0.join(name).join("0/0/0"), &bytes);
        let array = N5Array::open(&dir.0, name).unwrap();
        assert_eq!(array.shape(), [3, 2, 1]);
        assert_eq!(read_all(&array), expected, "{name}");
    }
    // Writing the raw example reproduces its bytes exactly.
    let array = N5Array::open(&dir.0, "raw").unwrap();
    array.write_chunk(&[0, 0, 0], &expected).unwrap();
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(raw);
    assert_eq!(fs::read(dir.0.join("raw/0/0/0")).unwrap(), bytes);
}

/// Block 2/1/2 of a (5, 7, 9) uint16 dataset in blocks of (2, 4, 4) holding `arange`, as
/// z5py 3.0.2 wrote it with each compression (the edge block holds 296, 305, 314).
#[test]
fn reads_blocks_z5py_wrote() {
    let dir = TempDir::new("z5py");
    let header: [u8; 16] = [0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 1];
    let cases: [(Value, &[u8]); 6] = [
        (
            serde_json::json!({"type": "gzip", "level": 5}),
            &[
                0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x01, 0x06, 0x00, 0xf9,
                0xff, 0x01, 0x28, 0x01, 0x31, 0x01, 0x3a, 0xf2, 0x16, 0x2d, 0xc9, 0x06, 0x00, 0x00,
                0x00,
            ],
        ),
        (
            serde_json::json!({"type": "zstd", "level": 3}),
            &[
                0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x06, 0x31, 0x00, 0x00, 0x01, 0x28, 0x01, 0x31, 0x01,
                0x3a,
            ],
        ),
        (
            serde_json::json!({"type": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1,
                               "blocksize": 0, "nthreads": 1}),
            &[
                0x02, 0x01, 0x33, 0x02, 0x06, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x16, 0x00,
                0x00, 0x00, 0x01, 0x28, 0x01, 0x31, 0x01, 0x3a,
            ],
        ),
        (
            serde_json::json!({"type": "lz4", "blockSize": 6}),
            &[0x60, 0x01, 0x28, 0x01, 0x31, 0x01, 0x3a],
        ),
        (
            serde_json::json!({"type": "bzip2", "blockSize": 5}),
            &[
                0x42, 0x5a, 0x68, 0x35, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0x4e, 0xaa, 0x5c, 0x66,
                0x00, 0x00, 0x00, 0x58, 0x00, 0x20, 0x00, 0x00, 0x40, 0x20, 0x10, 0x20, 0x00, 0x21,
                0x9a, 0x68, 0x33, 0x4d, 0x1c, 0xb7, 0x8b, 0xb9, 0x22, 0x9c, 0x28, 0x48, 0x27, 0x55,
                0x2e, 0x33, 0x00,
            ],
        ),
        (
            serde_json::json!({"type": "raw"}),
            &[0x01, 0x28, 0x01, 0x31, 0x01, 0x3a],
        ),
    ];
    let expected: Vec<u8> = [296u16, 305, 314]
        .into_iter()
        .flat_map(u16::to_ne_bytes)
        .collect();
    for (i, (compression, payload)) in cases.into_iter().enumerate() {
        let key = format!("d{i}");
        write_json(
            &dir.0.join(&key).join("attributes.json"),
            &serde_json::json!({
                "dimensions": [9, 7, 5], "blockSize": [4, 4, 2], "dataType": "uint16",
                "compression": compression
            }),
        );
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(payload);
        write_file(&dir.0.join(&key).join("2/1/2"), &bytes);
        let array = N5Array::open(&dir.0, &key).unwrap();
        let mut out = vec![0u8; 6];
        assert!(
            array.read_chunk(&[2, 1, 2], &mut out).unwrap(),
            "{compression}"
        );
        assert_eq!(out, expected, "{compression}");
        let mut region = vec![0u8; 6];
        read_region_into(
            &array,
            None,
            MissingChunks::Fill,
            &[4..5, 4..7, 8..9],
            &mut region,
        )
        .unwrap();
        assert_eq!(region, expected);
    }
}

#[test]
fn lz4_java_framing_follows_lz4_java() {
    let compression = N5Compression::Lz4 {
        block_size: 64,
        framing: Lz4Framing::Java,
    };
    let data: Vec<u8> = smooth(100).into_iter().chain(noise(100, 9)).collect();
    let mut bytes = Vec::new();
    compression.compress_append(&data, 1, &mut bytes).unwrap();
    // Frames of 64, 64, 64 and 8 bytes, then the empty end frame; level 0 for 64-byte frames.
    assert!(bytes.starts_with(b"LZ4Block"));
    let end = &bytes[bytes.len() - 21..];
    assert_eq!(&end[..8], b"LZ4Block");
    assert_eq!(end[8], 0x10);
    assert!(end[9..].iter().all(|&b| b == 0));
    // The first frame compresses (method 0x20); the noise frames are stored (0x10).
    assert_eq!(bytes[8], 0x20);
    assert_eq!(u32::from_le_bytes(bytes[13..17].try_into().unwrap()), 64);
    let checksum = u32::from_le_bytes(bytes[17..21].try_into().unwrap());
    assert_eq!(
        checksum,
        twox_hash::XxHash32::oneshot(0x9747_b28c, &data[..64]) & 0x0fff_ffff
    );
    let mut out = vec![0u8; data.len()];
    compression.decompress_into(&bytes, &mut out).unwrap();
    assert_eq!(out, data);
    // A flipped payload byte fails the checksum or the decoder.
    let mut damaged = bytes.clone();
    let last_frame = bytes.len() - 21 - 8 - 1;
    damaged[last_frame] ^= 0xff;
    assert!(compression.decompress_into(&damaged, &mut out).is_err());
    // 65536-byte frames are level 6.
    let mut bytes = Vec::new();
    N5Compression::from_name("lz4", None)
        .unwrap()
        .compress_append(&data, 1, &mut bytes)
        .unwrap();
    assert_eq!(bytes[8] & 0x0f, 6);
}

#[test]
fn compression_names_and_json_round_trip() {
    for compression in every_compression() {
        let parsed = N5Compression::from_json(&compression.to_json()).unwrap();
        assert_eq!(parsed, compression);
    }
    let cases = [
        ("raw", None, serde_json::json!({"type": "raw"})),
        (
            "gzip",
            None,
            serde_json::json!({"type": "gzip", "level": 5, "useZlib": false}),
        ),
        (
            "zlib",
            Some(1),
            serde_json::json!({"type": "gzip", "level": 1, "useZlib": true}),
        ),
        (
            "zstd",
            Some(7),
            serde_json::json!({"type": "zstd", "level": 7}),
        ),
        (
            "blosc",
            None,
            serde_json::json!({"type": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0}),
        ),
        (
            "blosc-zstd",
            Some(3),
            serde_json::json!({"type": "blosc", "cname": "zstd", "clevel": 3, "shuffle": 1, "blocksize": 0}),
        ),
        (
            "bzip2",
            None,
            serde_json::json!({"type": "bzip2", "blockSize": 9}),
        ),
        (
            "xz",
            Some(2),
            serde_json::json!({"type": "xz", "preset": 2}),
        ),
        (
            "lz4",
            None,
            serde_json::json!({"type": "lz4", "blockSize": 65536}),
        ),
    ];
    for (name, level, json) in cases {
        let compression = N5Compression::from_name(name, level).unwrap();
        assert_eq!(compression.to_json(), json, "{name}");
        assert_eq!(compression.name(), json["type"]);
        if let Some(level) = level {
            assert_eq!(compression.level(), Some(level));
        }
    }
    for (name, level) in [
        ("snappy", None),
        ("raw", Some(1)),
        ("lz4", Some(3)),
        ("gzip", Some(10)),
        ("bzip2", Some(0)),
        ("blosc-brotli", None),
        ("blosc", Some(10)),
    ] {
        let error = N5Compression::from_name(name, level).unwrap_err();
        assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
        assert!(error.to_string().contains(name), "{error}");
    }
    // z5py's lz4 datasets record the level as blockSize: read and written its way.
    assert_eq!(
        N5Compression::from_json(&serde_json::json!({"type": "lz4", "blockSize": 6})).unwrap(),
        N5Compression::Lz4 {
            block_size: 6,
            framing: Lz4Framing::Z5
        }
    );
    assert_eq!(
        N5Compression::from_json(&serde_json::json!("xz")).unwrap(),
        N5Compression::Xz { preset: 6 }
    );
}

/// The value at flat index `i` of the interop datasets, as element bytes of `dtype`.
fn interop_element(dtype: DataType, i: usize) -> Vec<u8> {
    let v = (i * 7 + 3) % 251;
    match dtype {
        DataType::Int8 => (v as i8).to_ne_bytes().to_vec(),
        DataType::UInt8 => (v as u8).to_ne_bytes().to_vec(),
        DataType::Int16 => (v as i16 - 100).to_ne_bytes().to_vec(),
        DataType::UInt16 => (v as u16 * 250).to_ne_bytes().to_vec(),
        DataType::Int32 => (v as i32 * -70_000).to_ne_bytes().to_vec(),
        DataType::UInt32 => (v as u32 * 16_000_000).to_ne_bytes().to_vec(),
        DataType::Int64 => (v as i64 * -(1 << 40)).to_ne_bytes().to_vec(),
        DataType::UInt64 => (v as u64 * (1 << 50)).to_ne_bytes().to_vec(),
        DataType::Float32 => (v as f32 * 0.5).to_ne_bytes().to_vec(),
        DataType::Float64 => (v as f64 * -0.25).to_ne_bytes().to_vec(),
        DataType::Bool => vec![u8::from(v % 2 == 1)],
        DataType::Float16 | DataType::Complex64 | DataType::Complex128 => {
            unreachable!("N5 has no {dtype:?}")
        }
    }
}

/// Interop check with other N5 writers, run by hand: reads every dataset of the container
/// `$BIOIMAGE_PY_N5_INTEROP_READ` and compares it with `interop_element`.
/// `BIOIMAGE_PY_N5_INTEROP_READ=/tmp/x.n5 cargo test interop -- --ignored --nocapture`
#[test]
#[ignore = "needs a container written by another N5 implementation"]
fn interop_read_from_env() {
    let root = PathBuf::from(std::env::var("BIOIMAGE_PY_N5_INTEROP_READ").unwrap());
    let keys = list_n5_arrays(&root).unwrap();
    assert!(!keys.is_empty());
    for key in keys {
        let array = N5Array::open(&root, &key).unwrap();
        let n = region_len(&full_region(array.shape()));
        let expected: Vec<u8> = (0..n)
            .flat_map(|i| interop_element(array.dtype(), i))
            .collect();
        assert_eq!(read_all(&array), expected, "{key}");
        println!(
            "read {key}: {:?} {}",
            array.compression(),
            array.dtype().name()
        );
    }
}

/// The other direction: writes a dataset per compression and type into
/// `$BIOIMAGE_PY_N5_INTEROP_WRITE` for another implementation to check.
#[test]
#[ignore = "writes a container for another N5 implementation to read"]
fn interop_write_to_env() {
    let root = PathBuf::from(std::env::var("BIOIMAGE_PY_N5_INTEROP_WRITE").unwrap());
    let shape = [5u64, 7, 9];
    for compression in every_compression() {
        for dtype in NUMERIC {
            let key = format!("{}/{}", compression.to_json(), dtype.name())
                .replace(['{', '}', '"', ' '], "")
                .replace([':', ','], "_");
            let array = N5Array::create(
                &root,
                &key,
                &shape,
                &[2, 4, 4],
                dtype,
                compression.clone(),
                true,
            )
            .unwrap();
            let data: Vec<u8> = (0..5 * 7 * 9)
                .flat_map(|i| interop_element(dtype, i))
                .collect();
            array.write_region(&full_region(&shape), &data).unwrap();
        }
    }
}
