//! The extension module `bioimage_py._core`: thin wrappers that convert Python objects to the
//! core's Rust types and back, and nothing else.

use pyo3::prelude::*;

mod array_py;
mod blocking_py;
mod error_py;
mod index_py;
mod store_py;
mod transpose_py;

#[pymodule]
fn _core(module: &Bound<'_, PyModule>) -> PyResult<()> {
    error_py::register(module)?;
    index_py::register(module)?;
    blocking_py::register(module)?;
    array_py::register(module)?;
    store_py::register(module)?;
    transpose_py::register(module)?;
    Ok(())
}
