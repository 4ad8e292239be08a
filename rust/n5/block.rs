//! The N5 block format: a big-endian header (mode, number of dimensions, the block's size in
//! XYZ order, for mode 1 the number of elements) followed by the compressed big-endian elements
//! in XYZ column-major order — which is C order of the block in ZYX order, so only the header
//! axes are reversed and the elements byte-swapped.

/// Block mode 0: the elements fill the block's size.
const MODE_DEFAULT: u16 = 0;
/// Block mode 1: the header also records a number of elements.
const MODE_VARLENGTH: u16 = 1;
/// Block mode 2: serialized objects, not array elements.
const MODE_OBJECT: u16 = 2;

/// A parsed block header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockHeader {
    /// The block's size in ZYX (numpy) order.
    pub shape: Vec<u64>,
    /// Number of elements the payload holds.
    pub num_elements: u64,
    /// Where the (compressed) payload starts.
    pub payload_offset: usize,
}

/// Parses the header of a block of an `ndim`-dimensional dataset.
pub(crate) fn parse_header(bytes: &[u8], ndim: usize) -> Result<BlockHeader, String> {
    let truncated = || {
        format!(
            "the block file has only {} bytes, too few for its header",
            bytes.len()
        )
    };
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(truncated)
    };
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(truncated)
    };
    let mode = u16_at(0)?;
    if mode == MODE_OBJECT {
        return Err("the block holds serialized objects (mode 2), not array elements".to_string());
    }
    if mode != MODE_DEFAULT && mode != MODE_VARLENGTH {
        return Err(format!("unknown block mode {mode}"));
    }
    let header_ndim = usize::from(u16_at(2)?);
    if header_ndim != ndim {
        return Err(format!(
            "the block header has {header_ndim} dimensions, the dataset {ndim}"
        ));
    }
    let mut shape = Vec::with_capacity(ndim);
    for axis in 0..ndim {
        shape.push(u64::from(u32_at(4 + 4 * axis)?));
    }
    shape.reverse();
    let mut offset = 4 + 4 * ndim;
    // Sizes come from the file: their product may not fit (the caller bounds it further).
    let product = crate::buffer::element_count(&shape)
        .ok_or_else(|| format!("the block header's size {shape:?} has too many elements"))?;
    let num_elements = if mode == MODE_VARLENGTH {
        let n = u64::from(u32_at(offset)?);
        offset += 4;
        n
    } else {
        product
    };
    Ok(BlockHeader {
        shape,
        num_elements,
        payload_offset: offset,
    })
}

/// Appends the mode-0 header of a block of `shape` (ZYX order) to `out`.
pub(crate) fn write_header(shape: &[u64], out: &mut Vec<u8>) {
    out.extend_from_slice(&MODE_DEFAULT.to_be_bytes());
    out.extend_from_slice(&(shape.len() as u16).to_be_bytes());
    for &size in shape.iter().rev() {
        // Block sizes fit in u32: dataset metadata is validated on open and create.
        out.extend_from_slice(&(size as u32).to_be_bytes());
    }
}

/// Length of the mode-0 header of an `ndim`-dimensional block.
pub(crate) fn header_len(ndim: usize) -> usize {
    4 + 4 * ndim
}

macro_rules! swap_loops {
    ($($n:literal => $int:ty),*) => {
        /// Converts big-endian elements of `itemsize` bytes to native order in place (a no-op on
        /// big-endian hosts). Written as plain loops over fixed-size chunks so they vectorize.
        pub(crate) fn swap_in_place(buffer: &mut [u8], itemsize: usize) {
            if cfg!(target_endian = "big") {
                return;
            }
            match itemsize {
                $($n => {
                    for element in buffer.chunks_exact_mut($n) {
                        let bytes: [u8; $n] = (&*element).try_into().unwrap();
                        element.copy_from_slice(&<$int>::from_be_bytes(bytes).to_ne_bytes());
                    }
                })*
                _ => {}
            }
        }

        /// Copies `src` to `dst` (same length), converting elements of `itemsize` bytes between
        /// big-endian and native order (the conversion is its own inverse).
        pub(crate) fn copy_swapped(src: &[u8], dst: &mut [u8], itemsize: usize) {
            if cfg!(target_endian = "big") {
                dst.copy_from_slice(src);
                return;
            }
            match itemsize {
                $($n => {
                    for (d, s) in dst.chunks_exact_mut($n).zip(src.chunks_exact($n)) {
                        let bytes: [u8; $n] = s.try_into().unwrap();
                        d.copy_from_slice(&<$int>::from_be_bytes(bytes).to_ne_bytes());
                    }
                })*
                _ => dst.copy_from_slice(src),
            }
        }
    };
}

swap_loops!(2 => u16, 4 => u32, 8 => u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_reverses_axes() {
        let mut bytes = Vec::new();
        write_header(&[3, 2, 1], &mut bytes);
        // The N5 README's example: a 1 x 2 x 3 (XYZ) block in default mode.
        assert_eq!(bytes, [0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]);
        assert_eq!(bytes.len(), header_len(3));
        let header = parse_header(&bytes, 3).unwrap();
        assert_eq!(header.shape, vec![3, 2, 1]);
        assert_eq!(header.num_elements, 6);
        assert_eq!(header.payload_offset, 16);
    }

    #[test]
    fn varlength_header_carries_the_element_count() {
        let bytes = [0, 1, 0, 2, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 20];
        let header = parse_header(&bytes, 2).unwrap();
        assert_eq!(header.shape, vec![5, 4]);
        assert_eq!(header.num_elements, 20);
        assert_eq!(header.payload_offset, 16);
    }

    #[test]
    fn bad_headers_are_errors() {
        assert!(parse_header(&[], 3).unwrap_err().contains("too few"));
        assert!(parse_header(&[0, 0, 0, 3, 0, 0], 3)
            .unwrap_err()
            .contains("too few"));
        assert!(parse_header(&[0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1], 3)
            .unwrap_err()
            .contains("2 dimensions"));
        assert!(parse_header(&[0, 2, 0, 1, 0, 0, 0, 1], 1)
            .unwrap_err()
            .contains("objects"));
        assert!(parse_header(&[0, 7, 0, 1, 0, 0, 0, 1], 1)
            .unwrap_err()
            .contains("mode 7"));
        assert!(parse_header(&[0, 1, 0, 1, 0, 0, 0, 1], 1)
            .unwrap_err()
            .contains("too few"));
    }

    #[test]
    fn absurd_header_sizes_are_errors() {
        let mut bytes = vec![0, 0, 0, 3];
        bytes.extend([0xff; 12]);
        let error = parse_header(&bytes, 3).unwrap_err();
        assert!(error.contains("too many elements"), "{error}");
    }

    #[test]
    fn swaps_every_width() {
        for itemsize in [1usize, 2, 4, 8] {
            let big: Vec<u8> = (0..64u8).collect();
            let mut native = vec![0u8; big.len()];
            copy_swapped(&big, &mut native, itemsize);
            let mut in_place = big.clone();
            swap_in_place(&mut in_place, itemsize);
            assert_eq!(native, in_place);
            for (element, original) in native.chunks(itemsize).zip(big.chunks(itemsize)) {
                let mut expected = original.to_vec();
                if cfg!(target_endian = "little") {
                    expected.reverse();
                }
                assert_eq!(element, &expected[..]);
            }
        }
    }
}
