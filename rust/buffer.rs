//! Fallible buffers and checked sizes.
//!
//! Buffer sizes come from metadata (chunk shapes, shard indexes, block headers) and from
//! requests (region shapes), so they can exceed what the machine or the process's limits allow.
//! Rust's ordinary allocations abort the whole process when that happens; every buffer whose
//! size is not already backed by memory the caller holds is therefore allocated here, and a
//! failure is an [`Error::OutOfMemory`] (Python's `MemoryError`) naming what it was for.

use crate::error::{Error, Result};

/// A zero-filled buffer of `len` bytes; `purpose` (only formatted on failure) says what for.
pub fn zeroed(len: usize, purpose: impl FnOnce() -> String) -> Result<Vec<u8>> {
    let mut buffer = Vec::new();
    resize(&mut buffer, len, purpose)?;
    Ok(buffer)
}

/// Resizes `buffer` to `len` bytes (new bytes zero), failing instead of aborting when the
/// memory is not available.
pub fn resize(buffer: &mut Vec<u8>, len: usize, purpose: impl FnOnce() -> String) -> Result<()> {
    if len > buffer.len() {
        buffer
            .try_reserve_exact(len - buffer.len())
            .map_err(|_| Error::out_of_memory(len, purpose()))?;
    }
    buffer.resize(len, 0);
    Ok(())
}

/// An empty vector with room for `len` elements, failing instead of aborting.
pub fn with_capacity<T>(len: usize, purpose: impl FnOnce() -> String) -> Result<Vec<T>> {
    let mut vector = Vec::new();
    vector.try_reserve_exact(len).map_err(|_| {
        Error::out_of_memory(
            (len as u128 * size_of::<T>() as u128).min(u128::from(u64::MAX)) as u64,
            purpose(),
        )
    })?;
    Ok(vector)
}

/// The number of elements of a box of `shape`, `None` when it does not fit a `u64` (a box
/// with an empty axis has none, however long the others).
pub fn element_count(shape: &[u64]) -> Option<u64> {
    if shape.contains(&0) {
        return Some(0);
    }
    shape
        .iter()
        .try_fold(1u64, |count, &n| count.checked_mul(n))
}

/// Bytes of a box of `shape` with elements of `itemsize` bytes, `None` when the size does not
/// fit this machine's address space (`usize`).
pub fn byte_len(shape: &[u64], itemsize: usize) -> Option<usize> {
    if shape.contains(&0) {
        return Some(0);
    }
    shape.iter().try_fold(itemsize, |bytes, &n| {
        usize::try_from(n).ok().and_then(|n| bytes.checked_mul(n))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_buffers_are_errors_not_aborts() {
        let error = zeroed(usize::MAX, || "a test".to_owned()).unwrap_err();
        assert!(matches!(error, Error::OutOfMemory { .. }), "{error}");
        assert!(error.to_string().contains("a test"), "{error}");
        let error = with_capacity::<u64>(usize::MAX / 4, || "ids".to_owned()).unwrap_err();
        assert!(error.to_string().contains("ids"), "{error}");
        let mut buffer = vec![1u8; 4];
        resize(&mut buffer, 8, String::new).unwrap();
        assert_eq!(buffer, [1, 1, 1, 1, 0, 0, 0, 0]);
        resize(&mut buffer, 2, String::new).unwrap();
        assert_eq!(buffer, [1, 1]);
    }

    #[test]
    fn sizes_overflow_to_none() {
        assert_eq!(element_count(&[3, 4]), Some(12));
        assert_eq!(element_count(&[]), Some(1));
        assert_eq!(element_count(&[1 << 32, 1 << 32]), None);
        assert_eq!(byte_len(&[3, 4], 8), Some(96));
        assert_eq!(byte_len(&[1 << 62], 8), None);
        assert_eq!(byte_len(&[1 << 40, 1 << 40, 0], 1), Some(0));
        assert_eq!(element_count(&[u64::MAX, u64::MAX, 0]), Some(0));
    }
}
