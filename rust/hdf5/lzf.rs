//! Decompression of LZF (liblzf's format, as h5py's LZF filter writes it).
//!
//! The stream is a sequence of items: a control byte below 32 starts a literal run of
//! `control + 1` bytes; otherwise its top 3 bits are a match length (7 = read one more length
//! byte) and the low 5 bits with the next byte a back-reference distance into the output.

/// Decompresses `input` into `out`, returning the number of bytes written.
pub(super) fn decompress(input: &[u8], out: &mut [u8]) -> Result<usize, String> {
    let (mut ip, mut op) = (0usize, 0usize);
    let truncated = || "the stream ends inside an item".to_owned();
    while ip < input.len() {
        let control = usize::from(input[ip]);
        ip += 1;
        if control < 32 {
            let len = control + 1;
            let literal = input.get(ip..ip + len).ok_or_else(truncated)?;
            out.get_mut(op..op + len)
                .ok_or_else(|| "the data is longer than the chunk".to_owned())?
                .copy_from_slice(literal);
            ip += len;
            op += len;
            continue;
        }
        let mut len = control >> 5;
        if len == 7 {
            len += usize::from(*input.get(ip).ok_or_else(truncated)?);
            ip += 1;
        }
        len += 2;
        let low = usize::from(*input.get(ip).ok_or_else(truncated)?);
        ip += 1;
        let distance = ((control & 0x1f) << 8) + low + 1;
        if distance > op {
            return Err(format!(
                "a back-reference reaches {distance} bytes behind byte {op}"
            ));
        }
        if op + len > out.len() {
            return Err("the data is longer than the chunk".to_owned());
        }
        // Byte by byte: the source may overlap the bytes being written (run-length repeats).
        for i in op..op + len {
            out[i] = out[i - distance];
        }
        op += len;
    }
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::decompress;

    #[test]
    fn literals_and_overlapping_matches() {
        // "abc" literal, then a match of length 6 at distance 3: "abcabcabc".
        let stream = [2, b'a', b'b', b'c', (4 << 5), 2];
        let mut out = [0u8; 9];
        assert_eq!(decompress(&stream, &mut out), Ok(9));
        assert_eq!(&out, b"abcabcabc");
    }

    #[test]
    fn long_matches_use_an_extra_length_byte() {
        // "x", then a match of length 7 + 3 + 2 = 12 at distance 1.
        let stream = [0, b'x', (7 << 5), 3, 0];
        let mut out = [0u8; 13];
        assert_eq!(decompress(&stream, &mut out), Ok(13));
        assert!(out.iter().all(|&b| b == b'x'));
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let mut out = [0u8; 4];
        assert!(decompress(&[5, b'a'], &mut out).is_err()); // truncated literal
        assert!(decompress(&[(1 << 5), 9], &mut out).is_err()); // reference before the start
        assert!(decompress(&[7, 1, 2, 3, 4, 5, 6, 7, 8], &mut out).is_err()); // too long
        assert!(decompress(&[(7 << 5)], &mut out).is_err()); // missing length byte
    }
}
