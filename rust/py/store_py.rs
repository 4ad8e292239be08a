//! Stores from Python: the `storage_options` argument of the native-array functions, and the
//! key-value calls the Python layer uses for group metadata (`store_get`, `store_put`,
//! `store_delete_prefix`, `store_list_dir`) on any root: a local folder, a zip file, a URL.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::error_py::run_core;
use crate::error::Error;
use crate::metadata_json::MAX_METADATA_BYTES;
use crate::storage::{open_store, Store, StoreOptions};

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(store_get, module)?)?;
    module.add_function(wrap_pyfunction!(store_put, module)?)?;
    module.add_function(wrap_pyfunction!(store_delete_prefix, module)?)?;
    module.add_function(wrap_pyfunction!(store_list_dir, module)?)?;
    Ok(())
}

/// The options of a `storage_options` dict: `endpoint_url`, `region` (str or None),
/// `anonymous` (bool or None). Anything else (credentials included) is a TypeError.
pub(crate) fn store_options(options: Option<&Bound<'_, PyDict>>) -> PyResult<StoreOptions> {
    let mut parsed = StoreOptions::default();
    let Some(options) = options else {
        return Ok(parsed);
    };
    for (name, value) in options.iter() {
        let name: String = name.extract()?;
        match name.as_str() {
            "endpoint_url" => parsed.endpoint_url = value.extract()?,
            "region" => parsed.region = value.extract()?,
            "anonymous" => parsed.anonymous = value.extract::<Option<bool>>()?.unwrap_or(false),
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "unknown storage option {name:?}: the options are endpoint_url, region and \
                     anonymous (credentials come from the environment)"
                )))
            }
        }
    }
    Ok(parsed)
}

/// The store at `root` with `options`.
pub(crate) fn store_at(
    py: Python<'_>,
    root: &std::path::Path,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Arc<dyn Store>> {
    let options = store_options(options)?;
    run_core(
        py,
        || format!("opening the store {}", root.display()),
        || open_store(root, &options),
    )
}

/// The value at `key` of the store at `root`, `None` when there is none (metadata-sized
/// values: at most 64 MiB).
#[pyfunction]
#[pyo3(signature = (root, key, *, storage_options = None))]
fn store_get<'py>(
    py: Python<'py>,
    root: PathBuf,
    key: &str,
    storage_options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let store = store_at(py, &root, storage_options)?;
    let value = run_core(
        py,
        || format!("reading {}", store.url(key)),
        || {
            let too_long = |len: u64| Error::Metadata {
                path: store.url(key),
                reason: format!("holds {len} bytes, more than {MAX_METADATA_BYTES}"),
            };
            store.get(key, MAX_METADATA_BYTES, &too_long)
        },
    )?;
    Ok(value.map(|bytes| PyBytes::new(py, &bytes)))
}

/// Stores `value` at `key` of the store at `root`, replacing any old value whole.
#[pyfunction]
#[pyo3(signature = (root, key, value, *, storage_options = None))]
fn store_put(
    py: Python<'_>,
    root: PathBuf,
    key: &str,
    value: Vec<u8>,
    storage_options: Option<&Bound<'_, PyDict>>,
) -> PyResult<()> {
    let store = store_at(py, &root, storage_options)?;
    run_core(
        py,
        || format!("writing {}", store.url(key)),
        || store.put(key, &value),
    )
}

/// Deletes every value below `prefix` (`""`: everything) of the store at `root`.
#[pyfunction]
#[pyo3(signature = (root, prefix, *, storage_options = None))]
fn store_delete_prefix(
    py: Python<'_>,
    root: PathBuf,
    prefix: &str,
    storage_options: Option<&Bound<'_, PyDict>>,
) -> PyResult<()> {
    let store = store_at(py, &root, storage_options)?;
    run_core(
        py,
        || format!("deleting {}", store.url(prefix)),
        || store.delete_prefix(prefix),
    )
}

/// The keys and the sub-prefixes directly below `prefix` of the store at `root`, names
/// relative to `prefix`, sorted.
#[pyfunction]
#[pyo3(signature = (root, prefix, *, storage_options = None))]
fn store_list_dir(
    py: Python<'_>,
    root: PathBuf,
    prefix: &str,
    storage_options: Option<&Bound<'_, PyDict>>,
) -> PyResult<(Vec<String>, Vec<String>)> {
    let store = store_at(py, &root, storage_options)?;
    let listing = run_core(
        py,
        || format!("listing {}", store.url(prefix)),
        || store.list_dir(prefix),
    )?;
    Ok((listing.keys, listing.prefixes))
}
