//! bioimage_py's Rust core. The modules at this level are pure Rust (no Python types), so
//! `cargo test` needs no interpreter; `py` holds the thin PyO3 bindings, built only with the
//! `python` feature (maturin turns it on).

pub mod blocking;
pub mod buffer;
pub mod chunk_cache;
pub mod chunked;
pub mod decompress;
pub mod dtype;
pub mod error;
pub mod fs;
pub mod hdf5;
pub mod index;
pub mod metadata_json;
pub mod n5;
pub mod per_process;
pub mod storage;
pub mod thread_pool;
pub mod transpose;
pub mod zarr;

#[cfg(feature = "python")]
mod py;
