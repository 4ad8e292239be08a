//! Bounded decompression: every decoder writes into a buffer the caller sized and stops there.
//!
//! A stored chunk is untrusted input. Decoders that grow their output as they go (zarrs' gzip,
//! zlib and zstd codecs read to the end of the stream into a fresh vector) let a 1 MiB chunk of
//! zeros expand to gigabytes before anything checks its size. These decode into the caller's
//! buffer, one chunk (or one codec stage) long, and report data that would go past its end as
//! an error, so memory is bounded by what the caller allocated. Each returns the number of bytes
//! written; callers that need an exact size check it.

use std::cell::RefCell;
use std::ffi::c_void;

thread_local! {
    // Decompression contexts are costly to create and need no lock when kept per thread.
    static INFLATER: RefCell<Option<libdeflater::Decompressor>> = const { RefCell::new(None) };
    static ZSTD_DCTX: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> = const { RefCell::new(None) };
}

/// The message for data that decodes to more than the `limit` bytes expected.
pub fn too_long(codec: &str, limit: usize) -> String {
    format!("{codec} data decodes to more than the {limit} bytes expected (stopped there)")
}

fn inflate(codec: &str, input: &[u8], out: &mut [u8], gzip: bool) -> Result<usize, String> {
    let result = INFLATER.with_borrow_mut(|slot| {
        let inflater = slot.get_or_insert_with(libdeflater::Decompressor::new);
        if gzip {
            inflater.gzip_decompress(input, out)
        } else {
            inflater.zlib_decompress(input, out)
        }
    });
    result.map_err(|e| match e {
        libdeflater::DecompressionError::InsufficientSpace => too_long(codec, out.len()),
        libdeflater::DecompressionError::BadData => {
            format!("{codec} data is invalid, truncated or fails its checksum")
        }
    })
}

/// Inflates one gzip member (bytes after it are ignored, as zlib's and flate2's single-member
/// readers do).
pub fn gzip_into(input: &[u8], out: &mut [u8]) -> Result<usize, String> {
    inflate("gzip", input, out, true)
}

/// Inflates zlib-wrapped deflate data.
pub fn zlib_into(input: &[u8], out: &mut [u8]) -> Result<usize, String> {
    inflate("zlib", input, out, false)
}

/// Decompresses one or more zstd frames.
pub fn zstd_into(input: &[u8], out: &mut [u8]) -> Result<usize, String> {
    // A frame that records a larger size than fits would fail as "destination buffer is too
    // small"; say what is wrong instead.
    if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(input) {
        if size > out.len() as u64 {
            return Err(too_long("zstd", out.len()));
        }
    }
    let written = ZSTD_DCTX.with_borrow_mut(|slot| {
        slot.get_or_insert_with(zstd::zstd_safe::DCtx::create)
            .decompress(out, input)
    });
    written.map_err(|code| {
        if zstd::zstd_safe::get_error_name(code).contains("too small") {
            too_long("zstd", out.len())
        } else {
            format!(
                "zstd data is invalid: {}",
                zstd::zstd_safe::get_error_name(code)
            )
        }
    })
}

/// Decompresses a blosc (1.x) buffer; its header records the decoded size, which must fit.
pub fn blosc_into(input: &[u8], out: &mut [u8]) -> Result<usize, String> {
    let mut nbytes = 0usize;
    // SAFETY: `input` is valid for reads of its length; `nbytes` is a valid output location.
    let valid = unsafe {
        blosc_src::blosc_cbuffer_validate(
            input.as_ptr().cast::<c_void>(),
            input.len(),
            &raw mut nbytes,
        )
    };
    if valid != 0 {
        return Err("blosc data is invalid or truncated".to_string());
    }
    if nbytes > out.len() {
        return Err(too_long("blosc", out.len()));
    }
    if nbytes == 0 {
        return Ok(0);
    }
    // SAFETY: the header was validated against `input` above, and blosc writes at most
    // `out.len()` bytes into `out`; the context API keeps no global state.
    let written = unsafe {
        blosc_src::blosc_decompress_ctx(
            input.as_ptr().cast::<c_void>(),
            out.as_mut_ptr().cast::<c_void>(),
            out.len(),
            1,
        )
    };
    match usize::try_from(written) {
        Ok(n) if n == nbytes => Ok(n),
        _ => Err(format!(
            "blosc data is invalid (decompression returned {written})"
        )),
    }
}

/// Fills `out` from a streaming decoder, reading at most one byte past it to tell whether the
/// stream is longer; returns the bytes written (fewer when the stream ends early).
pub fn read_into(
    mut reader: impl std::io::Read,
    out: &mut [u8],
    codec: &str,
) -> Result<usize, String> {
    let mut filled = 0;
    while filled < out.len() {
        match reader.read(&mut out[filled..]) {
            Ok(0) => return Ok(filled),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{codec} data is invalid: {e}")),
        }
    }
    let mut probe = [0u8; 1];
    loop {
        match reader.read(&mut probe) {
            Ok(0) => return Ok(filled),
            Ok(_) => return Err(too_long(codec, out.len())),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{codec} data is invalid: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut compressor = libdeflater::Compressor::new(libdeflater::CompressionLvl::best());
        let mut out = vec![0; compressor.gzip_compress_bound(data.len())];
        let n = compressor.gzip_compress(data, &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut compressor = libdeflater::Compressor::new(libdeflater::CompressionLvl::best());
        let mut out = vec![0; compressor.zlib_compress_bound(data.len())];
        let n = compressor.zlib_compress(data, &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn blosc(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; data.len() + 16];
        let cname = std::ffi::CString::new("zstd").unwrap();
        // SAFETY: both buffers are valid for the lengths passed.
        let n = unsafe {
            blosc_src::blosc_compress_ctx(
                9,
                1,
                4,
                data.len(),
                data.as_ptr().cast(),
                out.as_mut_ptr().cast(),
                out.len(),
                cname.as_ptr(),
                0,
                1,
            )
        };
        out.truncate(usize::try_from(n).unwrap());
        out
    }

    type Decoder = fn(&[u8], &mut [u8]) -> Result<usize, String>;
    type Encoder = fn(&[u8]) -> Vec<u8>;

    fn codecs() -> Vec<(&'static str, Decoder, Encoder)> {
        vec![
            ("gzip", gzip_into, gzip),
            ("zlib", zlib_into, zlib),
            ("zstd", zstd_into, |d| zstd::bulk::compress(d, 19).unwrap()),
            ("blosc", blosc_into, blosc),
        ]
    }

    #[test]
    fn bombs_stop_at_the_buffer() {
        // 64 MiB of zeros compress to kilobytes; decoding into 1 MiB stops there.
        let bomb = vec![0u8; 64 << 20];
        for (name, decode, encode) in codecs() {
            let encoded = encode(&bomb);
            assert!(encoded.len() < 1 << 20, "{name}: {}", encoded.len());
            let mut out = vec![0u8; 1 << 20];
            let error = decode(&encoded, &mut out).unwrap_err();
            assert!(
                error.contains("more than the 1048576 bytes"),
                "{name}: {error}"
            );
        }
    }

    #[test]
    fn exact_and_short_data_report_their_length() {
        let data: Vec<u8> = (0..4000u32).flat_map(|v| (v % 251).to_le_bytes()).collect();
        for (name, decode, encode) in codecs() {
            let encoded = encode(&data);
            let mut out = vec![0u8; data.len()];
            assert_eq!(decode(&encoded, &mut out), Ok(data.len()), "{name}");
            assert_eq!(out, data, "{name}");
            let mut larger = vec![0u8; data.len() + 100];
            assert_eq!(decode(&encoded, &mut larger), Ok(data.len()), "{name}");
            // Damaged data is an error or (zstd: no frame at all) decodes to fewer bytes.
            let truncated = &encoded[..encoded.len() / 2];
            assert!(decode(truncated, &mut out).is_err(), "{name}");
            assert!(
                decode(b"", &mut out).is_err() || decode(b"", &mut out) == Ok(0),
                "{name}"
            );
        }
    }

    #[test]
    fn streams_stop_one_byte_past_the_buffer() {
        let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
        encoder.write_all(&vec![7u8; 10 << 20]).unwrap();
        let encoded = encoder.finish().unwrap();
        let mut out = vec![0u8; 4096];
        let error = read_into(
            bzip2::bufread::BzDecoder::new(&encoded[..]),
            &mut out,
            "bzip2",
        )
        .unwrap_err();
        assert!(error.contains("more than the 4096 bytes"), "{error}");
        let mut exact = vec![0u8; 10 << 20];
        let n = read_into(
            bzip2::bufread::BzDecoder::new(&encoded[..]),
            &mut exact,
            "bzip2",
        );
        assert_eq!(n, Ok(10 << 20));
    }
}
