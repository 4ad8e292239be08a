//! Python entry points of index normalization: parse a Python index into `IndexItem`s, call the
//! core, and return plain Python slices.

use std::ops::Range;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyInt, PySlice, PyTuple, PyType};

use super::error_py::{guard, to_py_err};
use crate::error::{Error, Int};
use crate::index::{self, AxisVec, IndexItem, NormalizedIndex};

/// `numpy.integer`, looked up once: numpy integer scalars index like Python ints.
static NUMPY_INTEGER: PyOnceLock<Py<PyType>> = PyOnceLock::new();

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(normalize_index, module)?)?;
    module.add_function(wrap_pyfunction!(slice_to_start_stop, module)?)?;
    module.add_function(wrap_pyfunction!(int_to_start_stop, module)?)?;
    Ok(())
}

/// Normalizes a numpy basic index for an array of `shape`.
///
/// Returns `(roi, squeeze, scalar)`: one `slice(start, stop)` per axis, the integer-indexed axes,
/// and whether numpy would return a scalar for this index.
#[pyfunction]
fn normalize_index<'py>(
    py: Python<'py>,
    index: &Bound<'py, PyAny>,
    shape: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyTuple>, Bound<'py, PyTuple>, bool)> {
    guard(
        || "normalizing an index".to_owned(),
        || normalize(py, index, shape),
    )
}

#[allow(clippy::type_complexity)]
fn normalize<'py>(
    py: Python<'py>,
    index: &Bound<'py, PyAny>,
    shape: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyTuple>, Bound<'py, PyTuple>, bool)> {
    let shape = parse_shape(shape)?;
    let normalized = parse_index(index, &shape)?;
    let roi = normalized
        .roi
        .iter()
        .map(|range| py_slice(py, range))
        .collect::<PyResult<AxisVec<_>>>()?;
    Ok((
        PyTuple::new(py, roi)?,
        PyTuple::new(py, normalized.squeeze)?,
        normalized.scalar,
    ))
}

/// Parses and normalizes a Python index for an array of `shape`.
pub(crate) fn parse_index(index: &Bound<'_, PyAny>, shape: &[u64]) -> PyResult<NormalizedIndex> {
    let items = match index.cast::<PyTuple>() {
        Ok(tuple) => tuple
            .iter()
            .map(|item| parse_item(&item, shape))
            .collect::<PyResult<AxisVec<_>>>()?,
        Err(_) => std::iter::once(parse_item(index, shape)).collect::<PyResult<_>>()?,
    };
    index::normalize_index(&items, shape).map_err(|e| to_py_err(index.py(), e))
}

/// An array shape: a tuple (the fast path) or any sequence of non-negative ints.
fn parse_shape(shape: &Bound<'_, PyAny>) -> PyResult<AxisVec<u64>> {
    match shape.cast::<PyTuple>() {
        Ok(tuple) => tuple.iter().map(|size| size.extract::<u64>()).collect(),
        Err(_) => Ok(shape.extract::<Vec<u64>>()?.into_iter().collect()),
    }
}

/// `(start, stop)` of a step-1 slice on an axis of `size`, clamped as numpy does.
#[pyfunction]
fn slice_to_start_stop(
    py: Python<'_>,
    slice: &Bound<'_, PySlice>,
    size: u64,
) -> PyResult<(u64, u64)> {
    guard(
        || "normalizing a slice".to_owned(),
        || {
            let (start, stop, step) = unpack_slice(slice)?;
            let range = index::slice_to_start_stop(Some(start), Some(stop), Some(step), size, 0)
                .map_err(|e| to_py_err(py, e))?;
            Ok((range.start, range.end))
        },
    )
}

/// `(start, start + 1)` of an integer index on an axis of `size`; negative indices wrap.
#[pyfunction]
fn int_to_start_stop(py: Python<'_>, index: &Bound<'_, PyAny>, size: u64) -> PyResult<(u64, u64)> {
    guard(
        || "normalizing an integer index".to_owned(),
        || {
            let IndexItem::Int(index) = parse_item(index, &[size])? else {
                return Err(to_py_err(py, Error::InvalidIndexType(describe(index))));
            };
            let range = index::int_to_start_stop(index, size, 0).map_err(|e| to_py_err(py, e))?;
            Ok((range.start, range.end))
        },
    )
}

/// One entry of an index: an int (not a bool), a numpy integer, a slice or `...`.
fn parse_item(item: &Bound<'_, PyAny>, shape: &[u64]) -> PyResult<IndexItem> {
    let py = item.py();
    if let Ok(slice) = item.cast::<PySlice>() {
        let (start, stop, step) = unpack_slice(slice)?;
        return Ok(IndexItem::Slice {
            start: Some(start),
            stop: Some(stop),
            step: Some(step),
        });
    }
    if item.is(py.Ellipsis()) {
        return Ok(IndexItem::Ellipsis);
    }
    // bool is an int subclass, but numpy reads `a[True]` as a mask: reject it with the rest.
    let is_int = item.is_instance_of::<PyInt>() && !item.is_instance_of::<PyBool>();
    if is_int || item.is_instance(numpy_integer(py)?.as_any())? {
        return match item.extract::<i64>() {
            Ok(value) => Ok(IndexItem::Int(value)),
            // Beyond i64, so beyond every axis: report it as out of range with its text.
            Err(_) => Err(to_py_err(
                py,
                Error::OutOfRange {
                    index: Int::Big(item.str()?.to_string()),
                    axis: 0,
                    size: shape.first().copied().unwrap_or(0),
                },
            )),
        };
    }
    Err(to_py_err(py, Error::InvalidIndexType(describe(item))))
}

/// `(start, stop, step)` of a slice with Python's defaults for `None`.
fn unpack_slice(slice: &Bound<'_, PySlice>) -> PyResult<(i64, i64, i64)> {
    let py = slice.py();
    let (mut start, mut stop, mut step): (ffi::Py_ssize_t, ffi::Py_ssize_t, ffi::Py_ssize_t) =
        (0, 0, 0);
    // SAFETY: `slice` is a valid slice object and the three pointers are to live locals.
    // PySlice_Unpack fills them with Python's defaults for None and saturates huge bounds (which
    // clamps exactly as Python does, no axis being that long); it returns -1 with an exception
    // set for a bound without `__index__` or a zero step.
    let status = unsafe { ffi::PySlice_Unpack(slice.as_ptr(), &mut start, &mut stop, &mut step) };
    if status < 0 {
        let error = PyErr::fetch(py);
        return Err(if error.is_instance_of::<PyValueError>(py) {
            to_py_err(py, Error::UnsupportedStep { step: 0, axis: 0 })
        } else {
            PyTypeError::new_err(format!(
                "slice indices must be integers or None, got {}",
                describe(slice)
            ))
        });
    }
    Ok((start as i64, stop as i64, step as i64))
}

fn numpy_integer(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    NUMPY_INTEGER.import(py, "numpy", "integer")
}

/// A new `slice(start, stop)` (step `None`).
fn py_slice<'py>(py: Python<'py>, range: &Range<u64>) -> PyResult<Bound<'py, PyAny>> {
    let start = range.start.into_pyobject(py)?;
    let stop = range.end.into_pyobject(py)?;
    // SAFETY: PySlice_New borrows the valid `start` and `stop` objects (taking its own
    // references), reads a null step as None, and returns a new reference or null with an
    // exception set, which `from_owned_ptr_or_err` handles.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PySlice_New(start.as_ptr(), stop.as_ptr(), std::ptr::null_mut()),
        )
    }
}

/// `repr(obj)` and its type, for messages.
fn describe(obj: &Bound<'_, PyAny>) -> String {
    let repr = obj
        .repr()
        .map_or_else(|_| "<unprintable>".to_owned(), |r| r.to_string());
    let type_name = obj
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string());
    format!("{repr} of type {type_name}")
}
