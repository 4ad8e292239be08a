//! numpy basic indexing, normalized: an index (ints, step-1 slices, one `...`) becomes one
//! in-bounds `start..stop` range per axis plus the axes that integer entries select (to squeeze
//! from reads and re-insert into written values). Semantics follow numpy exactly: negative
//! indices wrap, slice bounds clamp, reversed slices are empty, short indices pad with `:`.

use std::ops::Range;

use smallvec::SmallVec;

use crate::error::{Error, Int, Result};

/// Inline capacity of per-axis vectors: volumes rarely have more than 6 axes, and the hot path
/// (one call per block read) then allocates nothing.
pub const INLINE_AXES: usize = 6;

/// A per-axis vector stored inline for up to `INLINE_AXES` axes.
pub type AxisVec<T> = SmallVec<[T; INLINE_AXES]>;

/// One entry of a basic index, as the binding layer parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexItem {
    Int(i64),
    Slice {
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
    },
    Ellipsis,
}

/// The normalized form of an index for an array of a given shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedIndex {
    /// One in-bounds range per axis; empty ranges have `start == end`.
    pub roi: AxisVec<Range<u64>>,
    /// Axes selected by an integer, in increasing order.
    pub squeeze: AxisVec<usize>,
    /// numpy returns a scalar (not a 0-d array) when every axis is integer-indexed and the index
    /// holds no `...`; `a[1, ...]` on a 1-d array is a 0-d array.
    pub scalar: bool,
}

impl NormalizedIndex {
    /// The shape of the region, one entry per axis.
    pub fn roi_shape(&self) -> Vec<u64> {
        self.roi.iter().map(|r| r.end - r.start).collect()
    }
}

/// Normalizes `items` (the entries of an index tuple) for an array of `shape`.
pub fn normalize_index(items: &[IndexItem], shape: &[u64]) -> Result<NormalizedIndex> {
    let ndim = shape.len();
    let ellipses = items
        .iter()
        .filter(|item| matches!(item, IndexItem::Ellipsis))
        .count();
    if ellipses > 1 {
        return Err(Error::MultipleEllipsis);
    }
    let indexed = items.len() - ellipses;
    if indexed > ndim {
        return Err(Error::TooManyIndices {
            given: indexed,
            ndim,
        });
    }

    let mut roi = AxisVec::with_capacity(ndim);
    let mut squeeze = AxisVec::new();
    for item in items {
        let axis = roi.len();
        match *item {
            IndexItem::Int(index) => {
                let start = int_to_start_stop(index, shape[axis], axis)?.start;
                roi.push(start..start + 1);
                squeeze.push(axis);
            }
            IndexItem::Slice { start, stop, step } => {
                roi.push(slice_to_start_stop(start, stop, step, shape[axis], axis)?);
            }
            IndexItem::Ellipsis => {
                let fill = ndim - indexed;
                roi.extend(shape[axis..axis + fill].iter().map(|&size| 0..size));
            }
        }
    }
    let padded = roi.len();
    roi.extend(shape[padded..].iter().map(|&size| 0..size));

    let scalar = ellipses == 0 && squeeze.len() == ndim;
    Ok(NormalizedIndex {
        roi,
        squeeze,
        scalar,
    })
}

/// The one-element range an integer index selects on an axis of `size`.
pub fn int_to_start_stop(index: i64, size: u64, axis: usize) -> Result<Range<u64>> {
    let size_i = i128::from(size);
    let index_i = i128::from(index);
    if index_i < -size_i || index_i >= size_i {
        return Err(Error::OutOfRange {
            index: Int::Small(index),
            axis,
            size,
        });
    }
    let start = if index_i < 0 {
        index_i + size_i
    } else {
        index_i
    };
    // In bounds: 0 <= start < size, so the conversion is exact.
    let start = start as u64;
    Ok(start..start + 1)
}

/// The in-bounds range a step-1 slice selects on an axis of `size`, as Python's
/// `slice.indices` computes it; a reversed slice gives an empty range at its clamped start.
pub fn slice_to_start_stop(
    start: Option<i64>,
    stop: Option<i64>,
    step: Option<i64>,
    size: u64,
    axis: usize,
) -> Result<Range<u64>> {
    if let Some(step) = step {
        if step != 1 {
            return Err(Error::UnsupportedStep { step, axis });
        }
    }
    let start = start.map_or(0, |bound| clamp_bound(bound, size));
    let stop = stop.map_or(size, |bound| clamp_bound(bound, size));
    Ok(start..stop.max(start))
}

/// A slice bound mapped into `[0, size]`: negative bounds count from the end.
fn clamp_bound(bound: i64, size: u64) -> u64 {
    let size_i = i128::from(size);
    let bound = i128::from(bound);
    let bound = if bound < 0 { bound + size_i } else { bound };
    // Clamped into [0, size], so the conversion is exact.
    bound.clamp(0, size_i) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(start: Option<i64>, stop: Option<i64>) -> IndexItem {
        IndexItem::Slice {
            start,
            stop,
            step: None,
        }
    }

    #[test]
    fn full_tuple_pads_trailing_axes() {
        let n = normalize_index(&[IndexItem::Int(-1)], &[4, 5, 6]).unwrap();
        assert_eq!(n.roi.as_slice(), [3..4, 0..5, 0..6]);
        assert_eq!(n.squeeze.as_slice(), [0]);
        assert!(!n.scalar);
    }

    #[test]
    fn ellipsis_fills_the_middle() {
        let items = [
            IndexItem::Int(1),
            IndexItem::Ellipsis,
            slice(Some(-2), None),
        ];
        let n = normalize_index(&items, &[3, 4, 5, 6]).unwrap();
        assert_eq!(n.roi.as_slice(), [1..2, 0..4, 0..5, 4..6]);
        assert_eq!(n.roi_shape(), vec![1, 4, 5, 2]);
    }

    #[test]
    fn scalar_only_without_ellipsis() {
        assert!(normalize_index(&[IndexItem::Int(0)], &[3]).unwrap().scalar);
        let with_ellipsis = [IndexItem::Int(0), IndexItem::Ellipsis];
        assert!(!normalize_index(&with_ellipsis, &[3]).unwrap().scalar);
        assert!(normalize_index(&[], &[]).unwrap().scalar);
    }

    #[test]
    fn extreme_bounds_do_not_overflow() {
        let items = [slice(Some(i64::MIN), Some(i64::MAX))];
        let n = normalize_index(&items, &[u64::MAX >> 1]).unwrap();
        assert_eq!(n.roi.len(), 1);
        assert_eq!(n.roi[0], 0..u64::MAX >> 1);
        assert!(int_to_start_stop(i64::MIN, 10, 0).is_err());
    }
}

/// The cases in `tests/data/index_cases.json`, shared with pytest so the two layers agree.
/// Entries the core cannot represent (floats, lists, ints beyond i64: the binding layer rejects
/// those before the core sees them) are skipped here and tested by pytest.
#[cfg(test)]
mod table_tests {
    use serde_json::Value;

    use super::*;

    fn decode_bound(value: &Value) -> Option<Option<i64>> {
        match value {
            Value::Null => Some(None),
            Value::Number(n) => n.as_i64().map(Some),
            Value::Object(map) => {
                if let Some(numpy) = map.get("numpy") {
                    return numpy[1].as_i64().map(Some);
                }
                // Python clamps huge slice bounds; the binding saturates them to i64.
                let big = map.get("bigint")?.as_str()?;
                Some(Some(if big.starts_with('-') {
                    i64::MIN
                } else {
                    i64::MAX
                }))
            }
            _ => None,
        }
    }

    fn decode_item(value: &Value) -> Option<IndexItem> {
        match value {
            Value::Number(n) => n.as_i64().map(IndexItem::Int),
            Value::String(s) if s == "..." => Some(IndexItem::Ellipsis),
            Value::Object(map) => {
                if let Some(bounds) = map.get("slice") {
                    return Some(IndexItem::Slice {
                        start: decode_bound(&bounds[0])?,
                        stop: decode_bound(&bounds[1])?,
                        step: decode_bound(&bounds[2])?,
                    });
                }
                map.get("numpy")?[1].as_i64().map(IndexItem::Int)
            }
            _ => None,
        }
    }

    fn decode_index(value: &Value) -> Option<Vec<IndexItem>> {
        match value.get("tuple") {
            Some(Value::Array(items)) => items.iter().map(decode_item).collect(),
            _ => Some(vec![decode_item(value)?]),
        }
    }

    fn error_class(error: &Error) -> &'static str {
        match error {
            Error::OutOfRange { .. } => "IndexOutOfRangeError",
            Error::UnsupportedStep { .. } | Error::MultipleEllipsis => "ValueError",
            Error::InvalidIndexType(_) | Error::TooManyIndices { .. } => "TypeError",
            other => panic!("normalization does not raise {other}"),
        }
    }

    #[test]
    fn shared_index_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/index_cases.json");
        let text = std::fs::read_to_string(path).expect("read the shared index table");
        let cases: Vec<Value> = serde_json::from_str(&text).expect("parse the shared index table");
        let mut checked = 0;
        for case in &cases {
            let Some(items) = decode_index(&case["index"]) else {
                continue;
            };
            let shape: Vec<u64> = serde_json::from_value(case["shape"].clone()).unwrap();
            let result = normalize_index(&items, &shape);
            if let Some(want) = case.get("error") {
                let got = result.as_ref().map_err(error_class);
                assert_eq!(got.err(), want.as_str(), "case {case}");
            } else {
                let got = result.unwrap_or_else(|e| panic!("case {case}: {e}"));
                let roi: Vec<[u64; 2]> = serde_json::from_value(case["roi"].clone()).unwrap();
                let roi: Vec<Range<u64>> = roi.iter().map(|r| r[0]..r[1]).collect();
                let squeeze: Vec<usize> = serde_json::from_value(case["squeeze"].clone()).unwrap();
                assert_eq!(got.roi.as_slice(), roi, "case {case}");
                assert_eq!(got.squeeze.as_slice(), squeeze, "case {case}");
                assert_eq!(got.scalar, case["scalar"].as_bool().unwrap(), "case {case}");
            }
            checked += 1;
        }
        assert!(checked >= 50, "only {checked} representable cases");
    }
}
