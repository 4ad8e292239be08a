//! `NativeArray`: the Python handle of a native chunked array (zarr, N5, HDF5), with numpy basic
//! indexing, a decoded-chunk cache and a missing-chunk policy. Reads allocate the numpy result
//! (already squeezed: dropping length-1 axes does not move bytes) and fill it with the GIL
//! released; writes take a C-contiguous array of the array's dtype.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use numpy::npyffi::{npy_intp, PY_ARRAY_API};
use numpy::{
    dtype, Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyComplex, PyComplexMethods, PyDict, PyTuple};

use super::error_py::{guard, run_core, to_py_err};
use super::index_py::parse_index;
use crate::chunk_cache::ChunkCache;
use crate::chunked::{chunk_region, read_region_into, ChunkedArray, MissingChunks, RegionChunks};
use crate::dtype::{with_element_type, DataType};
use crate::error::Result;
use crate::hdf5::{
    create_hdf5_file, hdf5_node_kind, list_hdf5_arrays, Hdf5Array, Hdf5Compression, Hdf5Create,
    NodeKind,
};
use crate::n5::{list_n5_arrays_in, N5Array, N5Compression};
use crate::zarr::{list_zarr_arrays_in, FillScalar, ZarrArray, ZarrCompression, ZarrCreate};

use super::store_py::store_at;

/// Default bound of the decoded-chunk cache of one open array.
const DEFAULT_CACHE_BYTES: usize = 256 << 20;

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<NativeArray>()?;
    module.add("DEFAULT_CHUNK_CACHE_BYTES", DEFAULT_CACHE_BYTES)?;
    module.add_function(wrap_pyfunction!(open_zarr, module)?)?;
    module.add_function(wrap_pyfunction!(create_zarr, module)?)?;
    module.add_function(wrap_pyfunction!(open_n5, module)?)?;
    module.add_function(wrap_pyfunction!(create_n5, module)?)?;
    module.add_function(wrap_pyfunction!(py_list_zarr_arrays, module)?)?;
    module.add_function(wrap_pyfunction!(py_list_n5_arrays, module)?)?;
    module.add_function(wrap_pyfunction!(open_hdf5, module)?)?;
    module.add_function(wrap_pyfunction!(create_hdf5, module)?)?;
    module.add_function(wrap_pyfunction!(py_list_hdf5_arrays, module)?)?;
    module.add_function(wrap_pyfunction!(py_hdf5_node_kind, module)?)?;
    module.add_function(wrap_pyfunction!(py_create_hdf5_file, module)?)?;
    Ok(())
}

/// An open native array. Made by `open_zarr`, `create_zarr`, `open_n5`, `create_n5`,
/// `open_hdf5`, `create_hdf5`.
#[pyclass(module = "bioimage_py._core", frozen)]
pub struct NativeArray {
    array: Arc<dyn ChunkedArray>,
    format: &'static str,
    cache: Option<ChunkCache>,
    missing: MissingChunks,
    read_only: bool,
}

fn tuple_of<'py>(py: Python<'py>, values: &[u64]) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, values)
}

#[pymethods]
impl NativeArray {
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        tuple_of(py, self.array.shape())
    }

    #[getter]
    fn ndim(&self) -> usize {
        self.array.shape().len()
    }

    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        with_element_type!(self.array.dtype(), T => dtype::<T>(py).into_any())
    }

    /// The read/write chunk: the inner chunk of a sharded zarr array, an N5 block.
    #[getter]
    fn chunks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        tuple_of(py, self.array.chunk_shape())
    }

    /// The shard shape of a sharded zarr array, else `None`.
    #[getter]
    fn shards<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        self.array
            .shard_shape()
            .map(|shards| tuple_of(py, shards))
            .transpose()
    }

    #[getter]
    fn format(&self) -> &'static str {
        self.format
    }

    /// Where the array lives (container path and key), as used in messages.
    #[getter]
    fn path(&self) -> String {
        self.array.describe()
    }

    #[getter]
    fn read_only(&self) -> bool {
        self.read_only
    }

    /// `"fill"` (missing chunks read as the fill value) or `"error"`.
    #[getter]
    fn missing_chunks(&self) -> &'static str {
        match self.missing {
            MissingChunks::Fill => "fill",
            MissingChunks::Error => "error",
        }
    }

    /// The bound of the decoded-chunk cache in bytes (0: no cache).
    #[getter]
    fn chunk_cache_bytes(&self) -> usize {
        self.cache.as_ref().map_or(0, ChunkCache::capacity_bytes)
    }

    /// Bytes of decoded chunks currently cached.
    #[getter]
    fn cache_size_bytes(&self) -> usize {
        self.cache.as_ref().map_or(0, ChunkCache::size_bytes)
    }

    /// Forgets every cached chunk (e.g. after another process rewrote the array).
    fn clear_cache(&self) {
        if let Some(cache) = &self.cache {
            cache.clear();
        }
    }

    /// Whether the chunk at grid position `chunk` (in units of `chunks`) is stored.
    fn chunk_exists(&self, py: Python<'_>, chunk: Vec<u64>) -> PyResult<bool> {
        let array = Arc::clone(&self.array);
        let operation = || format!("checking chunk {chunk:?} of {}", self.array.describe());
        run_core(py, operation, || {
            self.check_chunk_coords(&chunk)?;
            array.chunk_exists(&chunk)
        })
    }

    /// Reads with numpy basic indexing; returns a new numpy array (a numpy scalar when every
    /// axis is integer-indexed).
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guard(
            || format!("reading {}", self.array.describe()),
            || self.getitem(py, index),
        )
    }

    /// Writes with numpy basic indexing; `value` broadcasts to the region as in numpy.
    fn __setitem__(
        &self,
        py: Python<'_>,
        index: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        guard(
            || format!("writing {}", self.array.describe()),
            || self.setitem(py, index, value),
        )
    }

    fn __len__(&self) -> PyResult<usize> {
        self.array
            .shape()
            .first()
            .map(|&n| n as usize)
            .ok_or_else(|| PyTypeError::new_err("len() of a 0-d array"))
    }

    fn __repr__(&self) -> String {
        format!(
            "NativeArray(format={:?}, path={:?}, shape={:?}, dtype={}, chunks={:?}{})",
            self.format,
            self.array.describe(),
            self.array.shape(),
            self.array.dtype().name(),
            self.array.chunk_shape(),
            self.array
                .shard_shape()
                .map_or_else(String::new, |s| format!(", shards={s:?}"))
        )
    }
}

/// A new zero-filled C-order numpy array of `shape`; numpy's `MemoryError` (or `ValueError`
/// for a shape too large to describe) when it cannot be made, never a panic.
fn zeros<'py, T: Element>(py: Python<'py>, shape: &[u64]) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let mut dims = shape
        .iter()
        .map(|&n| npy_intp::try_from(n))
        .collect::<Result<Vec<npy_intp>, _>>()
        .map_err(|_| {
            PyValueError::new_err(format!(
                "a result of shape {shape:?} is too large for numpy"
            ))
        })?;
    let ndim = std::ffi::c_int::try_from(dims.len())
        .map_err(|_| PyValueError::new_err(format!("a result of {} axes", dims.len())))?;
    // SAFETY: `dims` holds `ndim` extents; numpy steals the descriptor reference that
    // `into_dtype_ptr` adds; a null result (numpy's error set) becomes that error.
    unsafe {
        let array = PY_ARRAY_API.PyArray_Zeros(
            py,
            ndim,
            dims.as_mut_ptr(),
            T::get_dtype(py).into_dtype_ptr(),
            0,
        );
        Ok(Bound::from_owned_ptr_or_err(py, array)?.cast_into_unchecked())
    }
}

impl NativeArray {
    fn getitem<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let normalized = parse_index(index, self.array.shape())?;
        let region: Vec<Range<u64>> = normalized.roi.to_vec();
        let out_shape: Vec<u64> = region
            .iter()
            .enumerate()
            .filter(|(axis, _)| !normalized.squeeze.contains(axis))
            .map(|(_, r)| r.end - r.start)
            .collect();
        let out = with_element_type!(self.array.dtype(), T => {
            let out = zeros::<T>(py, &out_shape)?;
            // SAFETY: `out` is a new, C-contiguous, zero-initialized array that no other code
            // can reach yet; its byte length is that of the region (squeezing removes only
            // length-1 axes), which `read_region_into` checks again.
            let bytes = unsafe {
                let data = out.data();
                std::slice::from_raw_parts_mut(data.cast::<u8>(), out.len() * size_of::<T>())
            };
            self.read_into(py, &region, bytes)?;
            out.into_any()
        });
        if normalized.scalar {
            return out.get_item(PyTuple::empty(py));
        }
        Ok(out)
    }

    fn setitem(
        &self,
        py: Python<'_>,
        index: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        if self.read_only {
            return Err(PyTypeError::new_err(format!(
                "{} is read-only: open it with mode \"r+\", \"a\" or \"w\" to write",
                self.array.describe()
            )));
        }
        let normalized = parse_index(index, self.array.shape())?;
        let region: Vec<Range<u64>> = normalized.roi.to_vec();
        let value_shape: Vec<u64> = region
            .iter()
            .enumerate()
            .filter(|(axis, _)| !normalized.squeeze.contains(axis))
            .map(|(_, r)| r.end - r.start)
            .collect();
        let contiguous = as_contiguous(py, value, &value_shape, &self.dtype(py))?;
        with_element_type!(self.array.dtype(), T => {
            let readonly: PyReadonlyArrayDyn<'_, T> = contiguous.extract()?;
            let elements = readonly.as_slice()?;
            // SAFETY: `elements` is a C-contiguous slice of plain-old-data numbers borrowed for
            // this scope; viewing it as bytes is valid for its whole length.
            let bytes = unsafe {
                std::slice::from_raw_parts(elements.as_ptr().cast::<u8>(), size_of_val(elements))
            };
            self.write_from(py, &region, bytes)
        })
    }

    fn new(
        array: Arc<dyn ChunkedArray>,
        format: &'static str,
        read_only: bool,
        chunk_cache_bytes: usize,
        missing: &str,
    ) -> PyResult<Self> {
        let missing = match missing {
            "fill" => MissingChunks::Fill,
            "error" => MissingChunks::Error,
            other => {
                return Err(PyValueError::new_err(format!(
                    "missing_chunks must be \"fill\" or \"error\", got {other:?}"
                )))
            }
        };
        Ok(NativeArray {
            array,
            format,
            cache: (chunk_cache_bytes > 0).then(|| ChunkCache::new(chunk_cache_bytes)),
            missing,
            read_only,
        })
    }

    fn check_chunk_coords(&self, chunk: &[u64]) -> Result<()> {
        let array = &*self.array;
        chunk_region(array.shape(), array.chunk_shape(), chunk, &|| {
            array.describe()
        })
        .map(|_| ())
    }

    fn read_into(&self, py: Python<'_>, region: &[Range<u64>], out: &mut [u8]) -> PyResult<()> {
        let (array, cache, missing) = (&*self.array, self.cache.as_ref(), self.missing);
        let operation = || format!("reading {region:?} of {}", array.describe());
        run_core(py, operation, || {
            read_region_into(array, cache, missing, region, out)
        })
    }

    fn write_from(&self, py: Python<'_>, region: &[Range<u64>], data: &[u8]) -> PyResult<()> {
        let (array, cache) = (&*self.array, self.cache.as_ref());
        let operation = || format!("writing {region:?} of {}", array.describe());
        run_core(py, operation, || {
            let result = array.write_region(region, data);
            // Written chunks are stale in the cache whether or not the write completed.
            if let Some(cache) = cache {
                let chunks = RegionChunks::new(region, array.shape(), array.chunk_shape())?;
                for index in 0..chunks.len() {
                    cache.invalidate(&chunks.coords(index));
                }
            }
            result
        })
    }
}

/// `value` broadcast to `shape` as a C-contiguous array of `dtype` (numpy's assignment rules).
fn as_contiguous<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
    shape: &[u64],
    dtype: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    static NUMPY: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let numpy = NUMPY
        .get_or_try_init(py, || py.import("numpy").map(Bound::unbind))?
        .bind(py);
    let value = numpy.call_method1("asarray", (value, dtype))?;
    let broadcast = numpy
        .call_method1("broadcast_to", (value.clone(), PyTuple::new(py, shape)?))
        .map_err(|_| {
            PyValueError::new_err(format!(
                "could not broadcast a value of shape {} into a region of shape {shape:?}",
                value
                    .getattr("shape")
                    .and_then(|s| s.repr())
                    .map_or_else(|_| "?".to_owned(), |s| s.to_string())
            ))
        })?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", dtype)?;
    numpy.call_method("ascontiguousarray", (broadcast,), Some(&kwargs))
}

/// A Python int (kept exact), float or complex fill value (numpy scalars too).
fn fill_scalar(value: &Bound<'_, PyAny>) -> PyResult<FillScalar> {
    if let Ok(int) = value.extract::<i128>() {
        return Ok(FillScalar::Int(int));
    }
    // numpy's complex64 is no Python complex, and converting it to float would drop (with a
    // warning) its imaginary part.
    let numpy_complex = || -> PyResult<bool> {
        Ok(value.hasattr("dtype")?
            && value
                .getattr("dtype")?
                .getattr("kind")?
                .extract::<String>()?
                == "c")
    };
    if value.is_instance_of::<PyComplex>() || numpy_complex().unwrap_or(false) {
        let complex = value.call_method0("__complex__")?;
        let complex = complex.cast::<PyComplex>()?;
        return Ok(FillScalar::Complex(complex.real(), complex.imag()));
    }
    value
        .extract::<f64>()
        .map(FillScalar::Float)
        .map_err(|_| PyTypeError::new_err(format!("fill_value must be a number, got {value}")))
}

fn parse_dtype(name: &str) -> PyResult<DataType> {
    DataType::from_name(name).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Opens (or creates) an array with `open`, the GIL released, as a `NativeArray`.
fn wrap_native<A: ChunkedArray + 'static>(
    py: Python<'_>,
    format: &'static str,
    read_only: bool,
    chunk_cache_bytes: usize,
    missing_chunks: &str,
    describe: impl FnOnce() -> String,
    open: impl FnOnce() -> Result<A> + Send,
) -> PyResult<NativeArray> {
    let array = run_core(
        py,
        || format!("opening {format} array {}", describe()),
        open,
    )?;
    NativeArray::new(
        Arc::new(array),
        format,
        read_only,
        chunk_cache_bytes,
        missing_chunks,
    )
}

/// zarr deletes chunks that hold only the fill value; when missing chunks are errors, such a
/// chunk must stay stored or it would read as missing.
fn keep_fill_chunks_when_missing_is_an_error(array: &mut ZarrArray, missing_chunks: &str) {
    if missing_chunks == "error" {
        array.set_write_empty_chunks(true);
    }
}

/// Opens the zarr (v2 or v3) array at `key` of the store at `root` (a folder, a zip file or
/// a URL; `storage_options`: see `store_py::store_options`).
#[pyfunction]
#[pyo3(signature = (root, key, *, read_only = true, chunk_cache_bytes = DEFAULT_CACHE_BYTES,
    missing_chunks = "fill", storage_options = None))]
fn open_zarr(
    py: Python<'_>,
    root: PathBuf,
    key: &str,
    read_only: bool,
    chunk_cache_bytes: usize,
    missing_chunks: &str,
    storage_options: Option<&Bound<'_, PyDict>>,
) -> PyResult<NativeArray> {
    let store = store_at(py, &root, storage_options)?;
    wrap_native(
        py,
        "zarr",
        read_only,
        chunk_cache_bytes,
        missing_chunks,
        || format!("{}:{key}", root.display()),
        || {
            ZarrArray::open_in(store, key).map(|mut array| {
                keep_fill_chunks_when_missing_is_an_error(&mut array, missing_chunks);
                array
            })
        },
    )
}

/// Creates a zarr array at `key` of the store at `root` (groups on the way are created).
#[pyfunction]
#[pyo3(signature = (root, key, *, shape, chunks, dtype, zarr_format = 3, shards = None,
    compression = "zstd", compression_level = None, fill_value = None, overwrite = false,
    chunk_cache_bytes = DEFAULT_CACHE_BYTES, missing_chunks = "fill", storage_options = None))]
#[allow(clippy::too_many_arguments)]
fn create_zarr(
    py: Python<'_>,
    root: PathBuf,
    key: &str,
    shape: Vec<u64>,
    chunks: Vec<u64>,
    dtype: &str,
    zarr_format: u8,
    shards: Option<Vec<u64>>,
    compression: &str,
    compression_level: Option<i32>,
    fill_value: Option<&Bound<'_, PyAny>>,
    overwrite: bool,
    chunk_cache_bytes: usize,
    missing_chunks: &str,
    storage_options: Option<&Bound<'_, PyDict>>,
) -> PyResult<NativeArray> {
    let store = store_at(py, &root, storage_options)?;
    let options = ZarrCreate {
        zarr_format,
        shape,
        chunk_shape: chunks,
        shard_shape: shards,
        dtype: parse_dtype(dtype)?,
        compression: ZarrCompression::from_name(compression, compression_level)
            .map_err(|e| to_py_err(py, e))?,
        fill_value: fill_value.map_or(Ok(FillScalar::Int(0)), fill_scalar)?,
        overwrite,
    };
    let describe = || format!("{}:{key}", root.display());
    wrap_native(
        py,
        "zarr",
        false,
        chunk_cache_bytes,
        missing_chunks,
        describe,
        || {
            ZarrArray::create_in(store, key, &options).map(|mut array| {
                keep_fill_chunks_when_missing_is_an_error(&mut array, missing_chunks);
                array
            })
        },
    )
}

/// Opens the N5 dataset at `key` of the container at `root` (a folder or a URL).
#[pyfunction]
#[pyo3(signature = (root, key, *, read_only = true, chunk_cache_bytes = DEFAULT_CACHE_BYTES,
    missing_chunks = "fill", storage_options = None))]
fn open_n5(
    py: Python<'_>,
    root: PathBuf,
    key: &str,
    read_only: bool,
    chunk_cache_bytes: usize,
    missing_chunks: &str,
    storage_options: Option<&Bound<'_, PyDict>>,
) -> PyResult<NativeArray> {
    let store = store_at(py, &root, storage_options)?;
    wrap_native(
        py,
        "n5",
        read_only,
        chunk_cache_bytes,
        missing_chunks,
        || format!("{}:{key}", root.display()),
        || N5Array::open_in(store, key),
    )
}

/// Creates an N5 dataset at `key` of the container at `root` (shape and chunks in numpy order).
#[pyfunction]
#[pyo3(signature = (root, key, *, shape, chunks, dtype, compression = "gzip",
    compression_level = None, overwrite = false, chunk_cache_bytes = DEFAULT_CACHE_BYTES,
    missing_chunks = "fill", storage_options = None))]
#[allow(clippy::too_many_arguments)]
fn create_n5(
    py: Python<'_>,
    root: PathBuf,
    key: &str,
    shape: Vec<u64>,
    chunks: Vec<u64>,
    dtype: &str,
    compression: &str,
    compression_level: Option<i32>,
    overwrite: bool,
    chunk_cache_bytes: usize,
    missing_chunks: &str,
    storage_options: Option<&Bound<'_, PyDict>>,
) -> PyResult<NativeArray> {
    let store = store_at(py, &root, storage_options)?;
    let dtype = parse_dtype(dtype)?;
    let compression =
        N5Compression::from_name(compression, compression_level).map_err(|e| to_py_err(py, e))?;
    let describe = || format!("{}:{key}", root.display());
    wrap_native(
        py,
        "n5",
        false,
        chunk_cache_bytes,
        missing_chunks,
        describe,
        || {
            let options = (shape.as_slice(), chunks.as_slice(), dtype, compression);
            N5Array::create_in(store, key, options, overwrite)
        },
    )
}

/// The keys of the zarr arrays below `root`, sorted; `""` for an array at the root.
#[pyfunction]
#[pyo3(name = "list_zarr_arrays", signature = (root, storage_options = None))]
fn py_list_zarr_arrays(
    py: Python<'_>,
    root: PathBuf,
    storage_options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Vec<String>> {
    let store = store_at(py, &root, storage_options)?;
    let operation = || format!("listing the zarr arrays of {}", root.display());
    run_core(py, operation, || list_zarr_arrays_in(store.as_ref()))
}

/// The keys of the N5 datasets below `root`, sorted; `""` for a dataset at the root.
#[pyfunction]
#[pyo3(name = "list_n5_arrays", signature = (root, storage_options = None))]
fn py_list_n5_arrays(
    py: Python<'_>,
    root: PathBuf,
    storage_options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Vec<String>> {
    let store = store_at(py, &root, storage_options)?;
    let operation = || format!("listing the N5 datasets of {}", root.display());
    run_core(py, operation, || {
        if store.local_root().is_some_and(|dir| !dir.is_dir()) {
            return crate::n5::list_n5_arrays(&root);
        }
        list_n5_arrays_in(store.as_ref())
    })
}

/// Opens dataset `key` of the HDF5 file at `path`.
#[pyfunction]
#[pyo3(signature = (path, key, *, read_only = true, chunk_cache_bytes = DEFAULT_CACHE_BYTES, missing_chunks = "fill"))]
fn open_hdf5(
    py: Python<'_>,
    path: PathBuf,
    key: &str,
    read_only: bool,
    chunk_cache_bytes: usize,
    missing_chunks: &str,
) -> PyResult<NativeArray> {
    wrap_native(
        py,
        "hdf5",
        read_only,
        chunk_cache_bytes,
        missing_chunks,
        || format!("{}:{key}", path.display()),
        || Hdf5Array::open(&path, key, !read_only),
    )
}

/// Creates dataset `key` (and its groups) in the HDF5 file at `path`, which is created when
/// missing. `chunks=None` makes a contiguous dataset (no compression).
#[pyfunction]
#[pyo3(signature = (path, key, *, shape, chunks, dtype, compression = "gzip",
    compression_level = None, shuffle = false, fill_value = None, overwrite = false,
    chunk_cache_bytes = DEFAULT_CACHE_BYTES, missing_chunks = "fill"))]
#[allow(clippy::too_many_arguments)]
fn create_hdf5(
    py: Python<'_>,
    path: PathBuf,
    key: &str,
    shape: Vec<u64>,
    chunks: Option<Vec<u64>>,
    dtype: &str,
    compression: &str,
    compression_level: Option<i32>,
    shuffle: bool,
    fill_value: Option<&Bound<'_, PyAny>>,
    overwrite: bool,
    chunk_cache_bytes: usize,
    missing_chunks: &str,
) -> PyResult<NativeArray> {
    let options = Hdf5Create {
        shape,
        chunk_shape: chunks,
        dtype: parse_dtype(dtype)?,
        compression: Hdf5Compression::from_name(compression, compression_level)
            .map_err(|e| to_py_err(py, e))?,
        shuffle,
        fill_value: fill_value.map(fill_scalar).transpose()?,
        overwrite,
    };
    let describe = || format!("{}:{key}", path.display());
    wrap_native(
        py,
        "hdf5",
        false,
        chunk_cache_bytes,
        missing_chunks,
        describe,
        || Hdf5Array::create(&path, key, &options),
    )
}

/// The paths of the datasets below group `key` of the HDF5 file at `path`, sorted.
#[pyfunction]
#[pyo3(name = "list_hdf5_arrays", signature = (path, key = ""))]
fn py_list_hdf5_arrays(py: Python<'_>, path: PathBuf, key: &str) -> PyResult<Vec<String>> {
    let operation = || format!("listing the datasets of {}:{key}", path.display());
    run_core(py, operation, || list_hdf5_arrays(&path, key))
}

/// `"group"`, `"dataset"`, `"other"` or `None`: what is at `key` in the HDF5 file at `path`.
#[pyfunction]
#[pyo3(name = "hdf5_node_kind")]
fn py_hdf5_node_kind(py: Python<'_>, path: PathBuf, key: &str) -> PyResult<Option<&'static str>> {
    let operation = || format!("looking up {}:{key}", path.display());
    let kind = run_core(py, operation, || hdf5_node_kind(&path, key))?;
    Ok(kind.map(|kind| match kind {
        NodeKind::Group => "group",
        NodeKind::Dataset => "dataset",
        NodeKind::Other => "other",
    }))
}

/// Creates an empty HDF5 file at `path`, keeping an existing one unless `truncate`.
#[pyfunction]
#[pyo3(name = "create_hdf5_file", signature = (path, *, truncate = false))]
fn py_create_hdf5_file(py: Python<'_>, path: PathBuf, truncate: bool) -> PyResult<()> {
    let operation = || format!("creating {}", path.display());
    run_core(py, operation, || create_hdf5_file(&path, truncate))
}
