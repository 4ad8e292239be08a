use std::ops::Range;
use std::path::PathBuf;

use super::*;
use crate::chunked::{read_region_into, region_len, MissingChunks};

fn temp_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bioimage_py_hdf5_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Element `i` of a test array of `dtype`, as native bytes.
fn element(dtype: DataType, i: usize) -> Vec<u8> {
    match dtype {
        DataType::Bool => vec![u8::from(i % 3 == 0)],
        DataType::Int8 => (i as i8).to_ne_bytes().to_vec(),
        DataType::Int16 => (i as i16 - 300).to_ne_bytes().to_vec(),
        DataType::Int32 => (i as i32 * -7).to_ne_bytes().to_vec(),
        DataType::Int64 => (i as i64 * -1_000_003).to_ne_bytes().to_vec(),
        DataType::UInt8 => (i as u8).to_ne_bytes().to_vec(),
        DataType::UInt16 => (i as u16).to_ne_bytes().to_vec(),
        DataType::UInt32 => (i as u32 * 70_001).to_ne_bytes().to_vec(),
        DataType::UInt64 => ((i as u64) << 33).to_ne_bytes().to_vec(),
        DataType::Float32 => (i as f32 * 0.25 - 3.0).to_ne_bytes().to_vec(),
        DataType::Float64 => (i as f64 * -1.5e-3).to_ne_bytes().to_vec(),
        DataType::Float16 => half::f16::from_f64(i as f64 * 0.5 - 100.0)
            .to_ne_bytes()
            .to_vec(),
        DataType::Complex64 => [i as f32 * 0.25, -(i as f32) * 3.0]
            .iter()
            .flat_map(|p| p.to_ne_bytes())
            .collect(),
        DataType::Complex128 => [i as f64 * -1.5e-3, i as f64 * 1e200]
            .iter()
            .flat_map(|p| p.to_ne_bytes())
            .collect(),
    }
}

fn pattern(dtype: DataType, n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| element(dtype, i)).collect()
}

/// Options for a dataset without shuffle or fill value, not replacing one.
fn options(
    shape: &[u64],
    chunks: Option<&[u64]>,
    dtype: DataType,
    compression: Hdf5Compression,
) -> Hdf5Create {
    Hdf5Create {
        shape: shape.to_vec(),
        chunk_shape: chunks.map(<[u64]>::to_vec),
        dtype,
        compression,
        shuffle: false,
        fill_value: None,
        overwrite: false,
    }
}

fn read_fast(array: &Hdf5Array, region: &[Range<u64>]) -> Vec<u8> {
    let mut out = vec![0u8; region_len(region) * array.dtype().size()];
    read_region_into(array, None, MissingChunks::Fill, region, &mut out).unwrap();
    out
}

fn read_lib(array: &Hdf5Array, region: &[Range<u64>]) -> Vec<u8> {
    let mut out = vec![0u8; region_len(region) * array.dtype().size()];
    array.read_region_direct(region, &mut out).unwrap();
    out
}

const REGIONS: [[Range<u64>; 3]; 5] = [
    [0..13, 0..11, 0..9],
    [3..10, 2..11, 1..8],
    [12..13, 10..11, 8..9],
    [0..5, 0..5, 0..5],
    [4..4, 0..11, 0..9],
];

fn round_trip(
    name: &str,
    dtype: DataType,
    chunks: Option<&[u64]>,
    compression: Hdf5Compression,
    shuffle: bool,
) {
    let path = temp_file(name);
    let shape = [13u64, 11, 9];
    let data = pattern(dtype, 13 * 11 * 9);
    {
        let array = Hdf5Array::create(
            &path,
            "a/b/data",
            &Hdf5Create {
                shuffle,
                ..options(&shape, chunks, dtype, compression)
            },
        )
        .unwrap();
        array.write_region(&[0..13, 0..11, 0..9], &data).unwrap();
        assert_eq!(
            read_fast(&array, &REGIONS[0]),
            data,
            "{name} {dtype:?} (same handle)"
        );
    }
    let array = Hdf5Array::open(&path, "a/b/data", false).unwrap();
    assert_eq!(array.dtype(), dtype);
    assert_eq!(array.shape(), &shape);
    for region in &REGIONS {
        assert_eq!(
            read_fast(&array, region),
            read_lib(&array, region),
            "{name} {dtype:?} {region:?}"
        );
    }
    assert_eq!(read_fast(&array, &REGIONS[0]), data, "{name} {dtype:?}");
    drop(array);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn every_dtype_round_trips_in_every_layout() {
    let chunks: &[u64] = &[4, 5, 3];
    for dtype in DataType::ALL {
        round_trip(
            "gzip.h5",
            dtype,
            Some(chunks),
            Hdf5Compression::Gzip { level: 3 },
            false,
        );
        round_trip(
            "shuffle.h5",
            dtype,
            Some(chunks),
            Hdf5Compression::Gzip { level: 1 },
            true,
        );
        round_trip("lzf.h5", dtype, Some(chunks), Hdf5Compression::Lzf, false);
        round_trip(
            "lzf-shuffle.h5",
            dtype,
            Some(chunks),
            Hdf5Compression::Lzf,
            true,
        );
        round_trip("raw.h5", dtype, Some(chunks), Hdf5Compression::None, false);
        round_trip("contiguous.h5", dtype, None, Hdf5Compression::None, false);
    }
}

#[test]
fn pipeline_is_shuffle_then_deflate() {
    let path = temp_file("pipeline.h5");
    let array = Hdf5Array::create(
        &path,
        "x",
        &Hdf5Create {
            shuffle: true,
            ..options(
                &[8, 8],
                Some(&[4, 4]),
                DataType::UInt16,
                Hdf5Compression::Gzip { level: 4 },
            )
        },
    )
    .unwrap();
    match &array.storage {
        Storage::Chunked { pipeline, .. } => {
            assert_eq!(
                pipeline.as_deref(),
                Some(&[Step::Shuffle, Step::Deflate(4)][..])
            );
        }
        Storage::Contiguous { .. } => panic!("not chunked"),
    }
}

#[test]
fn partial_writes_missing_chunks_and_edge_chunks() {
    let path = temp_file("partial.h5");
    let array = Hdf5Array::create(
        &path,
        "x",
        &Hdf5Create {
            shuffle: true,
            ..options(
                &[10, 7],
                Some(&[4, 3]),
                DataType::UInt16,
                Hdf5Compression::Gzip { level: 1 },
            )
        },
    )
    .unwrap();
    assert!(!array.chunk_exists(&[0, 0]).unwrap());
    let mut buffer = vec![0u8; 4 * 3 * 2];
    assert!(!array.read_chunk(&[0, 0], &mut buffer).unwrap());
    // The edge chunk [2, 2] covers rows 8..10, columns 6..7.
    let values: Vec<u8> = [1u16, 2, 3, 4, 5, 6]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    array.write_region(&[7..10, 5..7], &values).unwrap();
    assert!(array.chunk_exists(&[2, 2]).unwrap());
    assert!(array.chunk_exists(&[1, 1]).unwrap());
    assert!(!array.chunk_exists(&[0, 0]).unwrap());
    let mut edge = vec![0u8; 2 * 2];
    assert!(array.read_chunk(&[2, 2], &mut edge).unwrap());
    assert_eq!(
        edge,
        [4u16, 6]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect::<Vec<_>>()
    );
    let whole = [0..10, 0..7];
    assert_eq!(read_fast(&array, &whole), read_lib(&array, &whole));
    let mut expected = [0u16; 70];
    for (i, (y, x)) in [(7, 5), (7, 6), (8, 5), (8, 6), (9, 5), (9, 6)]
        .into_iter()
        .enumerate()
    {
        expected[y * 7 + x] = i as u16 + 1;
    }
    let bytes: Vec<u8> = expected.iter().flat_map(|v| v.to_ne_bytes()).collect();
    assert_eq!(read_fast(&array, &whole), bytes);
    // Missing chunks as errors name the chunk.
    let mut out = vec![0u8; 70 * 2];
    let error = read_region_into(&array, None, MissingChunks::Error, &whole, &mut out).unwrap_err();
    assert!(error.to_string().contains("[0, 0]"), "{error}");
}

#[test]
fn corrupt_chunks_are_errors_naming_the_chunk() {
    let path = temp_file("corrupt.h5");
    let data = pattern(DataType::UInt32, 16 * 16);
    let entry = {
        let array = Hdf5Array::create(
            &path,
            "g/x",
            &options(
                &[16, 16],
                Some(&[8, 8]),
                DataType::UInt32,
                Hdf5Compression::Gzip { level: 1 },
            ),
        )
        .unwrap();
        array.write_region(&[0..16, 0..16], &data).unwrap();
        array.refresh_index().unwrap();
        match &array.storage {
            Storage::Chunked { index, .. } => index.read().unwrap()[&vec![1u64, 0]],
            Storage::Contiguous { .. } => panic!("not chunked"),
        }
    };
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&vec![0xAB; entry.size as usize], entry.addr)
        .unwrap();
    drop(file);
    let array = Hdf5Array::open(&path, "g/x", false).unwrap();
    let mut out = vec![0u8; 8 * 8 * 4];
    let error = array.read_chunk(&[1, 0], &mut out).unwrap_err();
    assert!(matches!(error, Error::CorruptChunk { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("[1, 0]") && message.contains("g/x"),
        "{message}"
    );
    // The other chunks still read.
    assert!(array.read_chunk(&[0, 1], &mut out).unwrap());
    let mut whole = vec![0u8; 16 * 16 * 4];
    assert!(read_region_into(
        &array,
        None,
        MissingChunks::Fill,
        &[0..16, 0..16],
        &mut whole
    )
    .is_err());
}

#[test]
fn bad_arguments_and_read_only() {
    let path = temp_file("args.h5");
    assert!(Hdf5Array::open(&path, "x", false).is_err());
    let array = Hdf5Array::create(
        &path,
        "x",
        &options(&[4], Some(&[2]), DataType::Int8, Hdf5Compression::None),
    )
    .unwrap();
    drop(array);
    let exists = Hdf5Array::create(
        &path,
        "x",
        &options(&[4], None, DataType::Int8, Hdf5Compression::None),
    );
    assert!(exists.is_err());
    assert!(Hdf5Array::create(
        &path,
        "x",
        &Hdf5Create {
            overwrite: true,
            ..options(&[4], None, DataType::Int8, Hdf5Compression::None)
        },
    )
    .is_ok());
    let gzip_contiguous = Hdf5Array::create(
        &path,
        "y",
        &options(
            &[4],
            None,
            DataType::Int8,
            Hdf5Compression::Gzip { level: 1 },
        ),
    );
    assert!(gzip_contiguous.is_err());
    let array = Hdf5Array::open(&path, "x", false).unwrap();
    let region = [Range { start: 0, end: 4 }];
    let error = array.write_region(&region, &[0; 4]).unwrap_err();
    assert!(error.to_string().contains("read-only"), "{error}");
    assert!(Hdf5Array::open(&path, "missing", false).is_err());
}

/// Reads a file written by h5py: `BIOIMAGE_H5PY_FILE=/tmp/x.h5 cargo test -- --ignored h5py`.
/// The file holds dataset "vol/data": `np.arange(37*41*23).reshape(37, 41, 23).astype(uint16)`.
#[test]
#[ignore]
fn reads_h5py_files() {
    let path = PathBuf::from(std::env::var("BIOIMAGE_H5PY_FILE").expect("BIOIMAGE_H5PY_FILE"));
    let array = Hdf5Array::open(&path, "vol/data", false).unwrap();
    assert_eq!(array.shape(), &[37, 41, 23]);
    let region = [0..37, 0..41, 0..23];
    let expected: Vec<u8> = (0..37 * 41 * 23)
        .flat_map(|i: usize| (i as u16).to_ne_bytes())
        .collect();
    assert_eq!(read_fast(&array, &region), expected);
    assert_eq!(read_lib(&array, &region), expected);
}

#[test]
fn contiguous_datasets_read_in_slabs() {
    let path = temp_file("slabs.h5");
    let shape = [300u64, 1024];
    let data = pattern(DataType::Float64, 300 * 1024);
    let array = Hdf5Array::create(
        &path,
        "s",
        &options(&shape, None, DataType::Float64, Hdf5Compression::None),
    )
    .unwrap();
    assert!(!array.chunk_exists(&[0, 0]).unwrap());
    assert_eq!(array.chunk_shape(), &[128, 1024]);
    array.write_region(&[0..300, 0..1024], &data).unwrap();
    assert!(array.chunk_exists(&[2, 0]).unwrap());
    for region in [
        [0..300, 0..1024],
        [100..260, 3..900],
        [299..300, 1023..1024],
    ] {
        assert_eq!(
            read_fast(&array, &region),
            read_lib(&array, &region),
            "{region:?}"
        );
    }
    assert_eq!(read_fast(&array, &[0..300, 0..1024]), data);
}

/// Writes a file for h5py to check: `BIOIMAGE_H5_OUT=/tmp/ours.h5 cargo test -- --ignored writes_for`.
/// Dataset "vol/data" is `np.arange(37*41*23).reshape(37, 41, 23).astype(uint16)`, gzip+shuffle.
#[test]
#[ignore]
fn writes_for_h5py() {
    let path = PathBuf::from(std::env::var("BIOIMAGE_H5_OUT").expect("BIOIMAGE_H5_OUT"));
    let _ = std::fs::remove_file(&path);
    let array = Hdf5Array::create(
        &path,
        "vol/data",
        &Hdf5Create {
            shuffle: true,
            ..options(
                &[37, 41, 23],
                Some(&[8, 16, 8]),
                DataType::UInt16,
                Hdf5Compression::Gzip { level: 4 },
            )
        },
    )
    .unwrap();
    let data: Vec<u8> = (0..37 * 41 * 23)
        .flat_map(|i: usize| (i as u16).to_ne_bytes())
        .collect();
    array.write_region(&[0..37, 0..41, 0..23], &data).unwrap();
}

fn create_u16(path: &std::path::Path, key: &str, fill_value: Option<FillScalar>) -> Hdf5Array {
    Hdf5Array::create(
        path,
        key,
        &Hdf5Create {
            fill_value,
            ..options(
                &[6, 5],
                Some(&[4, 4]),
                DataType::UInt16,
                Hdf5Compression::Lzf,
            )
        },
    )
    .unwrap()
}

#[test]
fn a_file_open_read_only_is_reopened_for_a_writer() {
    let path = temp_file("shared.h5");
    let data = pattern(DataType::UInt16, 30);
    create_u16(&path, "a", None)
        .write_region(&[0..6, 0..5], &data)
        .unwrap();
    let reader = Hdf5Array::open(&path, "a", false).unwrap();
    assert_eq!(read_fast(&reader, &[0..6, 0..5]), data);
    // A second dataset written into the same file while the reader is open.
    let writer = create_u16(&path, "g/b", Some(FillScalar::Int(7)));
    writer.write_region(&[0..2, 0..5], &data[..20]).unwrap();
    // Two rows of 5 written, the other 20 values are the fill value.
    let mut expected = data[..20].to_vec();
    for _ in 10..30 {
        expected.extend(7u16.to_ne_bytes());
    }
    assert_eq!(read_fast(&writer, &[0..6, 0..5]), expected);
    assert_eq!(read_lib(&writer, &[0..6, 0..5]), expected);
    // The reader still reads, through the reopened file.
    assert_eq!(read_fast(&reader, &[0..6, 0..5]), data);
    assert_eq!(read_lib(&reader, &[0..6, 0..5]), data);
    assert!(reader.write_region(&[0..1, 0..1], &[0, 0]).is_err());
}

#[test]
fn datasets_and_groups_are_listed() {
    let path = temp_file("listing.h5");
    for key in ["z", "g/a", "g/h/b"] {
        create_u16(&path, key, None);
    }
    assert_eq!(list_hdf5_arrays(&path, "").unwrap(), ["g/a", "g/h/b", "z"]);
    assert_eq!(list_hdf5_arrays(&path, "/g/").unwrap(), ["a", "h/b"]);
    assert_eq!(hdf5_node_kind(&path, "").unwrap(), Some(NodeKind::Group));
    assert_eq!(hdf5_node_kind(&path, "g/h").unwrap(), Some(NodeKind::Group));
    assert_eq!(
        hdf5_node_kind(&path, "g/h/b").unwrap(),
        Some(NodeKind::Dataset)
    );
    assert_eq!(hdf5_node_kind(&path, "g/nope/b").unwrap(), None);
    assert!(list_hdf5_arrays(&path, "nope").is_err());
}

#[test]
fn fill_values_must_fit_the_dtype() {
    let path = temp_file("fill.h5");
    let with_fill = |fill| Hdf5Create {
        fill_value: Some(fill),
        overwrite: true,
        ..options(&[3], Some(&[2]), DataType::UInt8, Hdf5Compression::None)
    };
    assert!(Hdf5Array::create(&path, "x", &with_fill(FillScalar::Int(256))).is_err());
    assert!(Hdf5Array::create(&path, "x", &with_fill(FillScalar::Float(0.5))).is_err());
    let array = Hdf5Array::create(&path, "x", &with_fill(FillScalar::Float(255.0))).unwrap();
    let whole = 0..3u64;
    assert_eq!(
        read_fast(&array, std::slice::from_ref(&whole)),
        [255, 255, 255]
    );
}

#[test]
fn half_and_complex_fill_values() {
    let path = temp_file("fill-half-complex.h5");
    let with_fill = |dtype, fill| Hdf5Create {
        fill_value: Some(fill),
        overwrite: true,
        ..options(&[3], Some(&[2]), dtype, Hdf5Compression::None)
    };
    let read = |dtype, fill| {
        let array = Hdf5Array::create(&path, "x", &with_fill(dtype, fill))?;
        let whole = 0..3u64;
        Ok::<_, Error>((array.fill_value().to_vec(), read_fast(&array, &[whole])))
    };
    // float16: rounded, infinities kept, a finite value beyond its range refused.
    let (fill, data) = read(DataType::Float16, FillScalar::Float(0.1)).unwrap();
    assert_eq!(fill, half::f16::from_f64(0.1).to_ne_bytes());
    assert_eq!(data, fill.repeat(3));
    let (fill, _) = read(DataType::Float16, FillScalar::Float(f64::NEG_INFINITY)).unwrap();
    assert_eq!(fill, half::f16::NEG_INFINITY.to_ne_bytes());
    assert!(read(DataType::Float16, FillScalar::Float(1e5)).is_err());
    // complex: both parts, NaN included; a real dtype takes no imaginary part.
    let (fill, data) = read(DataType::Complex64, FillScalar::Complex(1.5, f64::NAN)).unwrap();
    assert_eq!(fill[..4], 1.5f32.to_ne_bytes());
    assert!(f32::from_ne_bytes(fill[4..].try_into().unwrap()).is_nan());
    assert_eq!(data, fill.repeat(3));
    let (fill, _) = read(DataType::Complex128, FillScalar::Int(-3)).unwrap();
    assert_eq!(fill, [(-3f64).to_ne_bytes(), 0f64.to_ne_bytes()].concat());
    assert!(read(DataType::Float32, FillScalar::Complex(1.0, 2.0)).is_err());
    let (fill, _) = read(DataType::Int16, FillScalar::Complex(7.0, 0.0)).unwrap();
    assert_eq!(fill, 7i16.to_ne_bytes());
}

#[test]
fn complex_is_only_h5py_compound_layout() {
    use hdf5_metno::types::CompoundField;
    let f32_ty = TypeDescriptor::Float(FloatSize::U4);
    let f64_ty = TypeDescriptor::Float(FloatSize::U8);
    let field = |name: &str, ty: &TypeDescriptor, offset, index| CompoundField {
        name: name.to_owned(),
        ty: ty.clone(),
        offset,
        index,
    };
    let compound = |fields: Vec<CompoundField>, size| {
        dtype_of(&TypeDescriptor::Compound(CompoundType { fields, size }))
    };
    let r = |ty| field("r", ty, 0, 0);
    assert_eq!(
        compound(vec![r(&f32_ty), field("i", &f32_ty, 4, 1)], 8),
        Some(DataType::Complex64)
    );
    assert_eq!(
        compound(vec![field("i", &f64_ty, 8, 0), r(&f64_ty)], 16),
        Some(DataType::Complex128)
    );
    for (fields, size) in [
        (vec![r(&f32_ty), field("i", &f32_ty, 4, 1)], 12), // padding
        (vec![r(&f32_ty), field("i", &f32_ty, 8, 1)], 12), // a gap
        (vec![r(&f32_ty), field("im", &f32_ty, 4, 1)], 8), // other names
        (vec![r(&f32_ty), field("i", &f64_ty, 4, 1)], 12), // mixed part types
        (
            vec![field("i", &f32_ty, 0, 0), field("r", &f32_ty, 4, 1)],
            8,
        ), // swapped parts
        (vec![r(&f32_ty)], 4),                             // one field
    ] {
        assert_eq!(compound(fields.clone(), size), None, "{fields:?}");
    }
}

#[test]
fn compression_names() {
    assert_eq!(
        Hdf5Compression::from_name("gzip", None).unwrap(),
        Hdf5Compression::Gzip { level: 4 }
    );
    assert_eq!(
        Hdf5Compression::from_name("lzf", None).unwrap(),
        Hdf5Compression::Lzf
    );
    assert!(Hdf5Compression::from_name("gzip", Some(10)).is_err());
    assert!(Hdf5Compression::from_name("lzf", Some(1)).is_err());
    assert!(Hdf5Compression::from_name("zstd", None).is_err());
}
