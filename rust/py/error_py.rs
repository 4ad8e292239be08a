//! The one conversion of core errors into Python exceptions, by category: bounds ->
//! `IndexOutOfRangeError` (both `IndexError` and `ValueError`), bad arguments or metadata ->
//! `ValueError` or `TypeError`, I/O and corrupt chunks -> `OSError` (`FileNotFoundError` for
//! missing files and chunks).

use pyo3::exceptions::{PyFileNotFoundError, PyIndexError, PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::error::Error;

/// `IndexOutOfRangeError(IndexError, ValueError)`: pyo3's `create_exception!` takes one base,
/// so the class is made with `type(...)` once, at module initialization.
static INDEX_OUT_OF_RANGE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let class = INDEX_OUT_OF_RANGE.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let bases = PyTuple::new(
            py,
            [py.get_type::<PyIndexError>(), py.get_type::<PyValueError>()],
        )?;
        let namespace = PyDict::new(py);
        namespace.set_item("__module__", "bioimage_py.errors")?;
        namespace.set_item(
            "__doc__",
            "An integer index outside its axis. Both an IndexError (as in numpy) and a ValueError.",
        )?;
        let class = py
            .get_type::<PyType>()
            .call1(("IndexOutOfRangeError", bases, namespace))?;
        Ok(class.cast_into::<PyType>()?.unbind())
    })?;
    module.add("IndexOutOfRangeError", class.bind(py))
}

/// The Python exception for a core error.
pub(crate) fn to_py_err(py: Python<'_>, error: Error) -> PyErr {
    let message = error.to_string();
    match error {
        Error::OutOfRange { .. } => match INDEX_OUT_OF_RANGE.get(py) {
            Some(class) => PyErr::from_type(class.bind(py).clone(), message),
            None => PyIndexError::new_err(message),
        },
        Error::InvalidIndexType(_) | Error::TooManyIndices { .. } => PyTypeError::new_err(message),
        Error::UnsupportedStep { .. }
        | Error::MultipleEllipsis
        | Error::InvalidArgument(_)
        | Error::Metadata { .. } => PyValueError::new_err(message),
        Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(message)
        }
        Error::MissingChunk { .. } => PyFileNotFoundError::new_err(message),
        Error::Io { .. } | Error::CorruptChunk { .. } => PyOSError::new_err(message),
    }
}
