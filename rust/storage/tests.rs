use std::io::Write;
use std::path::PathBuf;

use super::*;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("bioimage_py_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn too_long(len: u64) -> Error {
    Error::InvalidArgument(format!("{len} bytes"))
}

fn bytes_of(fetched: Fetched) -> (Vec<u8>, u64, Version) {
    match fetched {
        Fetched::Bytes {
            bytes,
            total_len,
            version,
        } => (bytes, total_len, version),
        other => panic!("expected bytes, got {other:?}"),
    }
}

/// Every store answers the same for the same content: `a/zarr.json`, `a/c/0`, `b`.
fn check_store(store: &dyn Store) {
    assert_eq!(
        store.get("a/c/0", 100, &too_long).unwrap().unwrap(),
        b"0123456789"
    );
    assert!(store.get("a/c/1", 100, &too_long).unwrap().is_none());
    assert_eq!(
        store.get("a/c/0", 5, &too_long).unwrap_err().to_string(),
        "10 bytes"
    );
    let (bytes, len, version) = bytes_of(
        store
            .get_range("a/c/0", ByteRange::Bounded(2..5), None)
            .unwrap(),
    );
    assert_eq!((bytes.as_slice(), len), (&b"234"[..], 10));
    let (bytes, _, _) = bytes_of(
        store
            .get_range("a/c/0", ByteRange::Suffix(3), None)
            .unwrap(),
    );
    assert_eq!(bytes, b"789");
    let again = store
        .get_range("a/c/0", ByteRange::Bounded(0..1), Some(&version))
        .unwrap();
    assert_eq!(bytes_of(again).0, b"0");
    assert!(matches!(
        store.get_range("nope", ByteRange::Suffix(1), None).unwrap(),
        Fetched::Missing
    ));
    assert!(store.exists("b").unwrap() && !store.exists("a").unwrap());
    let listing = store.list_dir("").unwrap();
    assert_eq!(
        (listing.keys, listing.prefixes),
        (vec!["b".to_string()], vec!["a".to_string()])
    );
    let listing = store.list_dir("a").unwrap();
    assert_eq!(
        (listing.keys, listing.prefixes),
        (vec!["zarr.json".to_string()], vec!["c".to_string()])
    );
}

#[test]
fn local_store_reads_writes_lists_and_versions() {
    let dir = TempDir::new("local_store");
    let store = LocalStore::new(&dir.0);
    store.put("a/zarr.json", b"{}").unwrap();
    store.put("a/c/0", b"0123456789").unwrap();
    store.put("b", b"x").unwrap();
    check_store(&store);
    let (_, _, version) = bytes_of(store.get_range("b", ByteRange::Suffix(1), None).unwrap());
    store.put("b", b"yy").unwrap();
    assert!(matches!(
        store
            .get_range("b", ByteRange::Suffix(1), Some(&version))
            .unwrap(),
        Fetched::Changed
    ));
    store.delete("b").unwrap();
    store.delete("b").unwrap();
    store.delete_prefix("a").unwrap();
    let listing = store.list_dir("").unwrap();
    assert!(listing.keys.is_empty() && listing.prefixes.is_empty());
}

#[test]
fn zip_store_reads_stored_and_deflated_entries_and_refuses_writes() {
    let dir = TempDir::new("zip_store");
    let path = dir.0.join("vol.zarr.zip");
    let mut writer = ::zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let stored = ::zip::write::SimpleFileOptions::default()
        .compression_method(::zip::CompressionMethod::Stored);
    for (name, value) in [
        ("a/zarr.json", &b"{}"[..]),
        ("a/c/0", b"0123456789"),
        ("b", b"x"),
    ] {
        writer.start_file(name, stored).unwrap();
        writer.write_all(value).unwrap();
    }
    writer.finish().unwrap();
    let store = ZipStore::open(&path).unwrap();
    check_store(&store);
    let error = store.put("b", b"y").unwrap_err().to_string();
    assert!(
        error.contains("read-only") && error.contains("vol.zarr.zip"),
        "{error}"
    );

    std::fs::write(dir.0.join("bad.zip"), b"PK\x03\x04 not really").unwrap();
    let error = ZipStore::open(&dir.0.join("bad.zip"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("bad.zip"), "{error}");
}

#[test]
fn options_apply_to_urls_only() {
    let options = StoreOptions {
        region: Some("eu-west-1".to_string()),
        ..StoreOptions::default()
    };
    let error = open_store(std::path::Path::new("/tmp/x.zarr"), &options).unwrap_err();
    assert!(error.to_string().contains("not a URL"), "{error}");
    let error = open_store(std::path::Path::new("s3://"), &StoreOptions::default()).unwrap_err();
    assert!(error.to_string().contains("no bucket"), "{error}");
}
