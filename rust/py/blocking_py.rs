//! Python entry points of the blocking math (`bioimage_py.blocking`): `Blocking`, the block
//! descriptors `Block` and `BlockWithHalo`, and the two planning functions. Every method only
//! converts arguments, calls `crate::blocking` (through `call_core`, so a panic is a
//! `RuntimeError`) and converts the result back.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyTuple, PyType};

use super::error_py::{call_core, to_py_err};
use crate::blocking::{self, Block, BlockWithHalo, Blocking};
use crate::error::Error;

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PyBlocking>()?;
    module.add_class::<PyBlock>()?;
    module.add_class::<PyBlockWithHalo>()?;
    module.add_class::<PyBlockIterator>()?;
    module.add_function(wrap_pyfunction!(blocks_align_with_chunks, module)?)?;
    module.add_function(wrap_pyfunction!(group_blocks_by_shards, module)?)?;
    Ok(())
}

/// A tiling of an array (or of its sub-region `roi_begin:roi_end`) into blocks of `block_shape`,
/// numbered in C order of their grid position; edge blocks are clipped to the region.
#[pyclass(name = "Blocking", module = "bioimage_py.blocking", frozen, eq, hash)]
#[derive(PartialEq, Eq, Hash)]
struct PyBlocking {
    inner: Blocking,
}

#[pymethods]
impl PyBlocking {
    #[new]
    #[pyo3(signature = (shape, block_shape, roi_begin=None, roi_end=None))]
    fn new(
        py: Python<'_>,
        shape: Vec<i64>,
        block_shape: Vec<i64>,
        roi_begin: Option<Vec<i64>>,
        roi_end: Option<Vec<i64>>,
    ) -> PyResult<Self> {
        let shape = coordinates("shape", &shape)?;
        let block_shape = coordinates("block_shape", &block_shape)?;
        let roi_begin = match roi_begin {
            Some(values) => coordinates("roi_begin", &values)?,
            None => vec![0; shape.len()],
        };
        let roi_end = match roi_end {
            Some(values) => coordinates("roi_end", &values)?,
            None => shape.clone(),
        };
        let inner = call_core(py, "making a Blocking", || {
            Blocking::with_roi(shape, block_shape, roi_begin, roi_end)
        })?;
        Ok(Self { inner })
    }

    /// Shape of the whole array.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.shape())
    }

    /// Shape of a (non-edge) block.
    #[getter]
    fn block_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.block_shape())
    }

    /// First corner of the tiled region.
    #[getter]
    fn roi_begin<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.roi_begin())
    }

    /// Exclusive upper corner of the tiled region.
    #[getter]
    fn roi_end<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.roi_end())
    }

    /// Number of blocks along each axis.
    #[getter]
    fn blocks_per_axis<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.blocks_per_axis())
    }

    /// Total number of blocks.
    #[getter]
    fn number_of_blocks(&self) -> u64 {
        self.inner.number_of_blocks()
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        usize::try_from(self.inner.number_of_blocks()).map_err(|_| {
            to_py_err(
                py,
                Error::InvalidArgument(format!(
                    "a blocking of {} blocks is too long for len(); use number_of_blocks",
                    self.inner.number_of_blocks()
                )),
            )
        })
    }

    fn __iter__(slf: Bound<'_, Self>) -> PyBlockIterator {
        PyBlockIterator {
            blocking: slf.unbind(),
            next_id: 0,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Blocking(shape={}, block_shape={}, roi_begin={}, roi_end={})",
            tuple_text(self.inner.shape()),
            tuple_text(self.inner.block_shape()),
            tuple_text(self.inner.roi_begin()),
            tuple_text(self.inner.roi_end()),
        )
    }

    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> (Bound<'py, PyType>, (Vec<u64>, Vec<u64>, Vec<u64>, Vec<u64>)) {
        let inner = &slf.get().inner;
        (
            slf.get_type(),
            (
                inner.shape().to_vec(),
                inner.block_shape().to_vec(),
                inner.roi_begin().to_vec(),
                inner.roi_end().to_vec(),
            ),
        )
    }

    /// Grid position (C order) of block `block_id`.
    fn block_grid_position<'py>(
        &self,
        py: Python<'py>,
        block_id: i64,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let id = self.checked_id(py, block_id)?;
        let position = call_core(py, "locating a block", || {
            self.inner.block_grid_position(id)
        })?;
        PyTuple::new(py, position)
    }

    /// Id of the block at grid position `grid_position`.
    fn block_id(&self, py: Python<'_>, grid_position: Vec<i64>) -> PyResult<u64> {
        let position = coordinates("grid position", &grid_position)?;
        call_core(py, "numbering a block", || self.inner.block_id(&position))
    }

    /// The block `block_id`.
    fn get_block(&self, py: Python<'_>, block_id: i64) -> PyResult<PyBlock> {
        let id = self.checked_id(py, block_id)?;
        let inner = call_core(py, "making a block", || self.inner.block(id))?;
        Ok(PyBlock { inner })
    }

    /// Block `block_id` grown by `halo` on each side (or by `halo` below and `halo_end` above)
    /// and clipped to the array.
    #[pyo3(signature = (block_id, halo, halo_end=None))]
    fn get_block_with_halo(
        &self,
        py: Python<'_>,
        block_id: i64,
        halo: Vec<i64>,
        halo_end: Option<Vec<i64>>,
    ) -> PyResult<PyBlockWithHalo> {
        let id = self.checked_id(py, block_id)?;
        let block = call_core(py, "making a block", || self.inner.block(id))?;
        self.halo_around(py, &block, &halo, halo_end.as_deref())
    }

    /// `inner_block` grown by `halo` on each side (or by `halo` below and `halo_end` above)
    /// and clipped to the array.
    #[pyo3(signature = (inner_block, halo, halo_end=None))]
    fn add_halo(
        &self,
        py: Python<'_>,
        inner_block: PyRef<'_, PyBlock>,
        halo: Vec<i64>,
        halo_end: Option<Vec<i64>>,
    ) -> PyResult<PyBlockWithHalo> {
        self.halo_around(py, &inner_block.inner, &halo, halo_end.as_deref())
    }

    /// Number of axes.
    #[getter]
    fn ndim(&self) -> usize {
        self.inner.ndim()
    }

    /// Id of the block holding the voxel at `coordinates`.
    fn coordinates_to_block_id(&self, py: Python<'_>, coordinates: Vec<i64>) -> PyResult<u64> {
        let coordinates = self::coordinates("coordinates", &coordinates)?;
        call_core(py, "finding a block", || {
            self.inner.block_id_at(&coordinates)
        })
    }

    /// Ids (ascending) of the blocks lying entirely inside the region `begin:end`.
    fn get_block_ids_in_bounding_box(
        &self,
        py: Python<'_>,
        begin: Vec<i64>,
        end: Vec<i64>,
    ) -> PyResult<Vec<u64>> {
        let begin = coordinates("region begin", &begin)?;
        let end = coordinates("region end", &end)?;
        call_core(py, "listing blocks", || {
            self.inner.block_ids_inside_region(&begin, &end)
        })
    }

    /// Ids (ascending) of the blocks that intersect the region `begin:end` (as
    /// `get_block_ids_in_region`).
    fn get_block_ids_overlapping_bounding_box(
        &self,
        py: Python<'_>,
        begin: Vec<i64>,
        end: Vec<i64>,
    ) -> PyResult<Vec<u64>> {
        self.get_block_ids_in_region(py, begin, end)
    }

    /// The id of the block next to `block_id` along `axis` (below it with `lower`), or -1.
    fn get_neighbor_id(
        &self,
        py: Python<'_>,
        block_id: i64,
        axis: usize,
        lower: bool,
    ) -> PyResult<i64> {
        let id = self.checked_id(py, block_id)?;
        let neighbor = call_core(py, "finding a neighbour block", || {
            self.inner.neighbor_id(id, axis, lower)
        })?;
        // Block ids fit an i64: their count is bounded by the product of Python-given sizes.
        Ok(neighbor.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)))
    }

    /// Ids (ascending) of the blocks that intersect the region `begin:end`.
    fn get_block_ids_in_region(
        &self,
        py: Python<'_>,
        begin: Vec<i64>,
        end: Vec<i64>,
    ) -> PyResult<Vec<u64>> {
        let begin = coordinates("region begin", &begin)?;
        let end = coordinates("region end", &end)?;
        call_core(py, "listing blocks", || {
            self.inner.block_ids_in_region(&begin, &end)
        })
    }
}

impl PyBlocking {
    /// `block` grown by `halo` below and `halo_end` (default `halo`) above, as a Python object.
    fn halo_around(
        &self,
        py: Python<'_>,
        block: &Block,
        halo: &[i64],
        halo_end: Option<&[i64]>,
    ) -> PyResult<PyBlockWithHalo> {
        let halo_begin = coordinates("halo", halo)?;
        let halo_end = match halo_end {
            Some(end) => coordinates("halo_end", end)?,
            None => halo_begin.clone(),
        };
        let inner = call_core(py, "adding a halo", || {
            self.inner.add_halo(block, &halo_begin, &halo_end)
        })?;
        Ok(PyBlockWithHalo { inner })
    }

    /// A Python block id as the core's `u64`; negative ids get the core's out-of-range message.
    fn checked_id(&self, py: Python<'_>, block_id: i64) -> PyResult<u64> {
        u64::try_from(block_id).map_err(|_| {
            to_py_err(
                py,
                Error::InvalidArgument(format!(
                    "block id {block_id} is out of range for a blocking of {} blocks",
                    self.inner.number_of_blocks()
                )),
            )
        })
    }
}

/// Iterator over the blocks of a `Blocking`, in id order.
#[pyclass(name = "BlockIterator", module = "bioimage_py.blocking")]
struct PyBlockIterator {
    blocking: Py<PyBlocking>,
    next_id: u64,
}

#[pymethods]
impl PyBlockIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(mut slf: PyRefMut<'_, Self>) -> PyResult<Option<PyBlock>> {
        let py = slf.py();
        let blocking = &slf.blocking.get().inner;
        if slf.next_id >= blocking.number_of_blocks() {
            return Ok(None);
        }
        let inner = call_core(py, "making a block", || blocking.block(slf.next_id))?;
        slf.next_id += 1;
        Ok(Some(PyBlock { inner }))
    }

    fn __length_hint__(&self) -> u64 {
        self.blocking.get().inner.number_of_blocks() - self.next_id
    }
}

/// A box `begin:end` of an array, with `shape = end - begin` (coordinate lists, no slices).
#[pyclass(name = "Block", module = "bioimage_py.blocking", frozen, eq, hash)]
#[derive(PartialEq, Eq, Hash)]
struct PyBlock {
    inner: Block,
}

#[pymethods]
impl PyBlock {
    #[new]
    fn new(py: Python<'_>, begin: Vec<i64>, end: Vec<i64>) -> PyResult<Self> {
        let begin = coordinates("begin", &begin)?;
        let end = coordinates("end", &end)?;
        let inner = call_core(py, "making a Block", || Block::new(begin, end))?;
        Ok(Self { inner })
    }

    /// First corner (inclusive).
    #[getter]
    fn begin(&self) -> Vec<u64> {
        self.inner.begin.clone()
    }

    /// Last corner (exclusive).
    #[getter]
    fn end(&self) -> Vec<u64> {
        self.inner.end.clone()
    }

    /// Extent per axis, `end - begin`.
    #[getter]
    fn shape(&self) -> Vec<u64> {
        self.inner.shape.clone()
    }

    /// Number of axes.
    #[getter]
    fn ndim(&self) -> usize {
        self.inner.ndim()
    }

    fn __repr__(&self) -> String {
        block_text(&self.inner)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> (Bound<'py, PyType>, (Vec<u64>, Vec<u64>)) {
        let inner = &slf.get().inner;
        (slf.get_type(), (inner.begin.clone(), inner.end.clone()))
    }
}

/// A block with a halo: `outer_block` (read; grown by the halo, clipped to the array),
/// `inner_block` (written) and `inner_block_local` (the inner block relative to the outer one).
#[pyclass(
    name = "BlockWithHalo",
    module = "bioimage_py.blocking",
    frozen,
    eq,
    hash
)]
#[derive(PartialEq, Eq, Hash)]
struct PyBlockWithHalo {
    inner: BlockWithHalo,
}

#[pymethods]
impl PyBlockWithHalo {
    #[new]
    fn new(
        outer_block: PyRef<'_, PyBlock>,
        inner_block: PyRef<'_, PyBlock>,
        inner_block_local: PyRef<'_, PyBlock>,
    ) -> Self {
        Self {
            inner: BlockWithHalo {
                outer_block: outer_block.inner.clone(),
                inner_block: inner_block.inner.clone(),
                inner_block_local: inner_block_local.inner.clone(),
            },
        }
    }

    /// The region to read: the block grown by the halo, clipped to the array.
    #[getter]
    fn outer_block(&self) -> PyBlock {
        PyBlock {
            inner: self.inner.outer_block.clone(),
        }
    }

    /// The region to write: the block itself.
    #[getter]
    fn inner_block(&self) -> PyBlock {
        PyBlock {
            inner: self.inner.inner_block.clone(),
        }
    }

    /// The inner block relative to `outer_block.begin`, to crop a result computed on the outer.
    #[getter]
    fn inner_block_local(&self) -> PyBlock {
        PyBlock {
            inner: self.inner.inner_block_local.clone(),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "BlockWithHalo(outer_block={}, inner_block={}, inner_block_local={})",
            block_text(&self.inner.outer_block),
            block_text(&self.inner.inner_block),
            block_text(&self.inner.inner_block_local),
        )
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> (Bound<'py, PyType>, (PyBlock, PyBlock, PyBlock)) {
        let this = slf.get();
        (
            slf.get_type(),
            (
                this.outer_block(),
                this.inner_block(),
                this.inner_block_local(),
            ),
        )
    }
}

/// Whether every chunk of an output of `blocking.shape` with chunk shape `chunks` is written by
/// at most one block.
#[pyfunction]
fn blocks_align_with_chunks(
    py: Python<'_>,
    blocking: PyRef<'_, PyBlocking>,
    chunks: Vec<i64>,
) -> PyResult<bool> {
    let chunks = coordinates("chunks", &chunks)?;
    call_core(py, "checking chunk alignment", || {
        blocking::blocks_align_with_chunks(&blocking.inner, &chunks)
    })
}

/// Groups of block ids such that every shard of each output is written by one group only.
#[pyfunction]
fn group_blocks_by_shards(
    py: Python<'_>,
    blocking: PyRef<'_, PyBlocking>,
    shard_shapes: Vec<Vec<i64>>,
) -> PyResult<Vec<Vec<u64>>> {
    let shard_shapes = shard_shapes
        .iter()
        .map(|shape| coordinates("shard shape", shape))
        .collect::<PyResult<Vec<_>>>()?;
    call_core(py, "grouping blocks by shards", || {
        blocking::group_blocks_by_shards(&blocking.inner, &shard_shapes)
    })
}

/// Non-negative coordinates (shapes, corners, halos) as the core's `u64`s; a negative entry is a
/// `ValueError` naming the argument and its value.
fn coordinates(name: &str, values: &[i64]) -> PyResult<Vec<u64>> {
    values
        .iter()
        .map(|&value| u64::try_from(value))
        .collect::<Result<_, _>>()
        .map_err(|_| {
            PyValueError::new_err(format!(
                "{name} entries must not be negative, got {values:?}"
            ))
        })
}

/// `values` as Python prints a tuple of ints: `(1, 2)`, `(1,)`, `()`.
fn tuple_text(values: &[u64]) -> String {
    match values {
        [single] => format!("({single},)"),
        _ => {
            let items: Vec<String> = values.iter().map(u64::to_string).collect();
            format!("({})", items.join(", "))
        }
    }
}

fn block_text(block: &Block) -> String {
    format!("Block(begin={:?}, end={:?})", block.begin, block.end)
}
