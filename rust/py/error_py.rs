//! The one conversion of core errors into Python exceptions, by category: bounds ->
//! `IndexOutOfRangeError` (both `IndexError` and `ValueError`), bad arguments or metadata ->
//! `ValueError` or `TypeError`, I/O and corrupt chunks -> `OSError` (`FileNotFoundError` for
//! missing files and chunks), allocations that fail -> `MemoryError`, exhausted resources ->
//! `RuntimeError`.
//!
//! And the guard every binding runs core code in: a panic (a bug, never an answer to bad
//! input) must not cross into Python, where pyo3 would raise `PanicException`, a
//! `BaseException` that `except Exception` does not catch. [`run_core`] and [`guard`] catch it
//! (also from the pool's threads, whose panics rayon hands to the caller) and raise a
//! `RuntimeError` naming the operation.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::{
    PyConnectionError, PyFileNotFoundError, PyIndexError, PyMemoryError, PyOSError,
    PyPermissionError, PyRuntimeError, PyTimeoutError, PyTypeError, PyValueError,
};
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
    module.add("IndexOutOfRangeError", class.bind(py))?;
    module.add_function(wrap_pyfunction!(panic_for_tests, module)?)
}

/// Panics in core code, on the calling thread or in a task of the thread pool: for the tests
/// of the guard, which must raise `RuntimeError` (a bug that still panics must not reach
/// Python as `PanicException`).
#[pyfunction]
#[pyo3(name = "_panic_for_tests")]
fn panic_for_tests(py: Python<'_>, in_thread_pool: bool) -> PyResult<()> {
    use rayon::prelude::*;
    run_core(
        py,
        || "testing the panic guard".to_owned(),
        || {
            if in_thread_pool {
                crate::thread_pool::install(|| {
                    (0..8)
                        .into_par_iter()
                        .for_each(|task| assert!(task != 5, "a test panic in task {task}"));
                })
            } else {
                panic!("a test panic")
            }
        },
    )
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
        Error::Io { ref source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
            std::io::ErrorKind::ConnectionRefused => PyConnectionError::new_err(message),
            std::io::ErrorKind::TimedOut => PyTimeoutError::new_err(message),
            _ => PyOSError::new_err(message),
        },
        Error::MissingChunk { .. } => PyFileNotFoundError::new_err(message),
        Error::CorruptChunk { .. } => PyOSError::new_err(message),
        Error::OutOfMemory { .. } => PyMemoryError::new_err(message),
        Error::Resource(_) => PyRuntimeError::new_err(message),
    }
}

/// The `RuntimeError` for a panic caught while running `operation`.
pub(crate) fn panic_error(operation: &str, payload: &(dyn Any + Send)) -> PyErr {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "an unknown panic".to_owned());
    PyRuntimeError::new_err(format!(
        "internal error while {operation}: {message} (a bug in bioimage_py's Rust core; \
         please report it)"
    ))
}

/// Runs core code `f` with the GIL released; its error becomes the matching Python exception
/// and a panic a `RuntimeError` naming `operation` (e.g. "reading /data/a.zarr/raw").
pub(crate) fn run_core<T: Send>(
    py: Python<'_>,
    operation: impl FnOnce() -> String,
    f: impl FnOnce() -> crate::error::Result<T> + Send,
) -> PyResult<T> {
    match py.detach(|| catch_unwind(AssertUnwindSafe(f))) {
        Ok(result) => result.map_err(|e| to_py_err(py, e)),
        Err(payload) => Err(panic_error(&operation(), &*payload)),
    }
}

/// Runs quick core code `f` holding the GIL; its error becomes the matching Python exception
/// and a panic a `RuntimeError` naming `operation`.
pub(crate) fn call_core<T>(
    py: Python<'_>,
    operation: &str,
    f: impl FnOnce() -> crate::error::Result<T>,
) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(|e| to_py_err(py, e)),
        Err(payload) => Err(panic_error(operation, &*payload)),
    }
}

/// Runs binding code `f` (holding the GIL); a panic becomes a `RuntimeError` naming
/// `operation`.
pub(crate) fn guard<T>(
    operation: impl FnOnce() -> String,
    f: impl FnOnce() -> PyResult<T>,
) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(panic_error(&operation(), &*payload)))
}
