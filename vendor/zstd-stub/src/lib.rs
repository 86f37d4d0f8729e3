//! Riffle's stand-in for the `zstd` crate.
//!
//! DataFusion turns on arrow-ipc's zstd codec, which compiles the zstd C
//! library into the wasm (about 90 KB of the gzip download) for a feature
//! Riffle never uses: compressed Arrow IPC. This crate keeps the few items
//! arrow-ipc calls and makes every compression or decompression an error,
//! so compressed IPC input is refused with a message instead of decoded.

use std::io;

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "zstd-compressed Arrow IPC is not supported by riffle: send uncompressed IPC",
    )
}

/// Compression levels (as `zstd_safe` names them).
pub mod zstd_safe {
    /// A zstd compression level.
    pub type CompressionLevel = i32;
}

/// The levels zstd accepts, so option checks behave as with the real crate.
pub fn compression_level_range() -> std::ops::RangeInclusive<zstd_safe::CompressionLevel> {
    1..=22
}

/// One-shot compression and decompression.
pub mod bulk {
    use std::io;
    use std::marker::PhantomData;

    /// A compressor whose every call fails.
    #[derive(Debug, Default)]
    pub struct Compressor<'a>(PhantomData<&'a ()>);

    impl Compressor<'_> {
        /// Always succeeds (arrow-ipc expects it to), so the error comes
        /// from [`Compressor::compress`].
        pub fn new(_level: i32) -> io::Result<Self> {
            Ok(Self(PhantomData))
        }

        /// Always an `Unsupported` error.
        pub fn compress(&mut self, _input: &[u8]) -> io::Result<Vec<u8>> {
            Err(super::unsupported())
        }
    }

    /// A decompressor whose every call fails.
    #[derive(Debug, Default)]
    pub struct Decompressor<'a>(PhantomData<&'a ()>);

    impl Decompressor<'_> {
        /// Always succeeds (arrow-ipc expects it to), so the error comes
        /// from [`Decompressor::decompress`].
        pub fn new() -> io::Result<Self> {
            Ok(Self(PhantomData))
        }

        /// Always an `Unsupported` error.
        pub fn decompress(&mut self, _input: &[u8], _capacity: usize) -> io::Result<Vec<u8>> {
            Err(super::unsupported())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_codec_call_is_an_error() {
        let mut compressor = super::bulk::Compressor::new(3).unwrap();
        assert!(compressor.compress(b"abc").is_err());
        let mut decompressor = super::bulk::Decompressor::new().unwrap();
        let error = decompressor.decompress(b"abc", 3).unwrap_err();
        assert!(error.to_string().contains("not supported"));
    }
}
