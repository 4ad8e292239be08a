//! Python entry points of `crate::transpose`: `contiguous_transpose` (a C-contiguous transposed
//! copy of any numpy array without object references) and `normalize_axes`. They only convert:
//! the numpy array's buffer, shape and strides in; a new array of the same dtype out.

use numpy::npyffi::{self, npy_intp, NpyTypes, PY_ARRAY_API};
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use super::error_py::{run_core, to_py_err};
use crate::transpose::{self, StridedBytes};

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(contiguous_transpose, module)?)?;
    module.add_function(wrap_pyfunction!(normalize_axes, module)?)?;
    Ok(())
}

/// `axes` (a permutation of `range(ndim)`, negatives allowed) with negatives resolved.
#[pyfunction]
fn normalize_axes(py: Python<'_>, axes: Vec<i64>, ndim: usize) -> PyResult<Vec<usize>> {
    transpose::normalize_axes(&axes, ndim).map_err(|e| to_py_err(py, e))
}

/// A new C-contiguous array equal to `numpy.ascontiguousarray(array.transpose(axes))`, copied
/// with the GIL released.
#[pyfunction]
fn contiguous_transpose<'py>(
    py: Python<'py>,
    array: &Bound<'py, PyUntypedArray>,
    axes: Vec<i64>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let axes = transpose::normalize_axes(&axes, array.ndim()).map_err(|e| to_py_err(py, e))?;
    let dtype = array.dtype();
    if dtype.has_object() {
        // Copying references (object pointers, StringDType's arena pointers) as raw bytes
        // would break them.
        return Err(PyTypeError::new_err(format!(
            "contiguous_transpose copies raw items and cannot copy arrays of dtype {dtype}, \
             whose items are references"
        )));
    }
    let item_size = dtype.itemsize();
    let shape = array.shape().to_vec();
    let strides = array.strides().to_vec();
    let extent =
        transpose::byte_extent(&shape, &strides, item_size).map_err(|e| to_py_err(py, e))?;

    let mut out_shape: Vec<npy_intp> = axes.iter().map(|&axis| shape[axis] as npy_intp).collect();
    let ndim =
        i32::try_from(out_shape.len()).map_err(|_| PyValueError::new_err("too many dimensions"))?;
    // SAFETY: a fresh C-contiguous array of `out_shape` with the input's dtype; numpy steals the
    // descriptor reference `into_dtype_ptr` adds. A null result is turned into the Python error.
    let out = unsafe {
        let raw = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, NpyTypes::PyArray_Type),
            dtype.clone().into_dtype_ptr(),
            ndim,
            out_shape.as_mut_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        );
        Bound::from_owned_ptr_or_err(py, raw)?.cast_into_unchecked::<PyUntypedArray>()
    };

    let Some((before, len)) = extent else {
        return Ok(out); // empty: nothing to copy
    };
    let out_bytes = out.len() * item_size;
    // SAFETY: numpy guarantees every element of `array` lies in memory the array owns or
    // borrows; `byte_extent` spans exactly from its lowest to its highest element byte, so the
    // slice covers valid memory, which numpy keeps alive while `array` is borrowed here.
    let data = unsafe {
        let first = (*array.as_array_ptr())
            .fields
            .data
            .cast::<u8>()
            .cast_const();
        std::slice::from_raw_parts(first.sub(before), len)
    };
    // SAFETY: `out` is new, C-contiguous and not yet shared with any other code; it holds
    // exactly `out_bytes` bytes.
    let dst = unsafe {
        std::slice::from_raw_parts_mut((*out.as_array_ptr()).fields.data.cast::<u8>(), out_bytes)
    };
    let src = StridedBytes {
        data,
        offset: before,
        shape: &shape,
        strides: &strides,
        item_size,
    };
    run_core(
        py,
        || "transposing an array".to_owned(),
        || transpose::transpose_into(&src, &axes, dst),
    )?;
    Ok(out)
}
