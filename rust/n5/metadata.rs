//! N5 dataset metadata: the `dimensions`, `blockSize`, `dataType` and `compression` attributes
//! of a dataset's `attributes.json`. N5 lists axes in XYZ order; here they are reversed once, on
//! the way in and out, so everything else sees numpy's ZYX order.

use std::path::Path;

use serde_json::{Map, Value};

use crate::dtype::DataType;
use crate::error::{Error, Result};

use super::compression::N5Compression;

/// Largest block N5 allows: 2 GiB (the spec's limit, which tensorstore applies to the
/// decoded block).
const MAX_BLOCK_BYTES: u64 = 1 << 31;

/// The array part of a dataset's attributes, axes in ZYX order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct N5Metadata {
    pub shape: Vec<u64>,
    pub chunk_shape: Vec<u64>,
    pub dtype: DataType,
    pub compression: N5Compression,
}

/// The data types the N5 spec defines, for messages.
const N5_DATA_TYPES: &str = "uint8, uint16, uint32, uint64, int8, int16, int32, int64, float32, \
                             float64";

/// Whether an `attributes.json` object describes a dataset rather than a group.
pub(crate) fn is_dataset(attributes: &Map<String, Value>) -> bool {
    attributes.contains_key("dimensions")
}

/// The N5 `dataType` of `dtype`; the N5 spec has no bool, float16 or complex types.
pub(crate) fn n5_data_type(dtype: DataType) -> Option<&'static str> {
    match dtype {
        DataType::Bool | DataType::Float16 | DataType::Complex64 | DataType::Complex128 => None,
        _ => Some(dtype.name()),
    }
}

impl N5Metadata {
    /// Checks shapes, data type and block size limits; `Err` holds the reason.
    pub(crate) fn check(
        shape: &[u64],
        chunk_shape: &[u64],
        dtype: DataType,
    ) -> std::result::Result<(), String> {
        if shape.is_empty() {
            return Err("N5 datasets need at least one dimension".to_string());
        }
        if shape.len() != chunk_shape.len() {
            return Err(format!(
                "block shape {chunk_shape:?} and shape {shape:?} differ in length"
            ));
        }
        if shape.len() > usize::from(u16::MAX) {
            return Err(format!("{} dimensions are too many for N5", shape.len()));
        }
        crate::chunked::check_shape(shape)?;
        if chunk_shape
            .iter()
            .any(|&c| c == 0 || c > u64::from(u32::MAX))
        {
            return Err(format!(
                "block shape {chunk_shape:?} has a size outside 1..=2^32-1"
            ));
        }
        if dtype == DataType::Bool {
            return Err("N5 has no bool data type; use uint8 instead".to_string());
        }
        if n5_data_type(dtype).is_none() {
            return Err(format!(
                "the N5 spec defines no {} data type (only {}); store it in zarr or HDF5",
                dtype.name(),
                N5_DATA_TYPES
            ));
        }
        let bytes = chunk_shape
            .iter()
            .try_fold(dtype.size() as u64, |acc, &c| acc.checked_mul(c));
        if bytes.is_none_or(|b| b > MAX_BLOCK_BYTES) {
            return Err(format!(
                "blocks of shape {chunk_shape:?} and type {} exceed N5's 2 GiB limit",
                dtype.name()
            ));
        }
        Ok(())
    }

    /// Reads the dataset attributes of `attributes` (from the file `path`, for messages).
    pub fn from_attributes(attributes: &Map<String, Value>, path: &Path) -> Result<Self> {
        let error = |reason: String| Error::Metadata {
            path: path.display().to_string(),
            reason,
        };
        let axes = |key: &str| -> Result<Vec<u64>> {
            let value = attributes
                .get(key)
                .ok_or_else(|| error(format!("the N5 dataset has no \"{key}\"")))?;
            let list = value
                .as_array()
                .ok_or_else(|| error(format!("\"{key}\" = {value} is not a list")))?;
            let mut sizes = list
                .iter()
                .map(Value::as_u64)
                .collect::<Option<Vec<u64>>>()
                .ok_or_else(|| {
                    error(format!(
                        "\"{key}\" = {value} is not a list of non-negative integers"
                    ))
                })?;
            sizes.reverse();
            Ok(sizes)
        };
        let shape = axes("dimensions")?;
        let chunk_shape = axes("blockSize")?;
        let dtype = match attributes.get("dataType") {
            None => return Err(error("the N5 dataset has no \"dataType\"".to_string())),
            Some(Value::String(name)) => DataType::ALL
                .into_iter()
                .find(|&d| n5_data_type(d) == Some(name.as_str()))
                .ok_or_else(|| {
                    error(format!(
                        "unsupported \"dataType\" {name:?}; the N5 spec defines {N5_DATA_TYPES}"
                    ))
                })?,
            Some(other) => return Err(error(format!("\"dataType\" = {other} is not a string"))),
        };
        let compression = match (
            attributes.get("compression"),
            attributes.get("compressionType"),
        ) {
            (Some(value), _) => N5Compression::parse(value),
            // N5 before 1.0 named the compression only, with default parameters.
            (None, Some(value)) => N5Compression::parse(value),
            (None, None) => Err("the N5 dataset has no \"compression\"".to_string()),
        }
        .map_err(error)?;
        Self::check(&shape, &chunk_shape, dtype).map_err(error)?;
        Ok(Self {
            shape,
            chunk_shape,
            dtype,
            compression,
        })
    }

    /// Writes the dataset attributes into `attributes` (XYZ order), keeping other members.
    pub fn to_attributes(&self, attributes: &mut Map<String, Value>) {
        let xyz = |sizes: &[u64]| Value::from(sizes.iter().rev().copied().collect::<Vec<u64>>());
        attributes.insert("dimensions".to_string(), xyz(&self.shape));
        attributes.insert("blockSize".to_string(), xyz(&self.chunk_shape));
        attributes.insert(
            "dataType".to_string(),
            Value::from(n5_data_type(self.dtype).unwrap_or("uint8")),
        );
        attributes.insert("compression".to_string(), self.compression.to_json());
        attributes.remove("compressionType");
    }
}
