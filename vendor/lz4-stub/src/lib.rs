//! Riffle's stand-in for the `lz4_flex` crate.
//!
//! DataFusion turns on arrow-ipc's lz4 codec for a feature Riffle never
//! uses: compressed Arrow IPC. This crate keeps the frame types arrow-ipc
//! calls and makes every read or write an error, so lz4-compressed IPC
//! input is refused with a message instead of decoded.

/// LZ4 frames.
pub mod frame {
    use std::io;

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "lz4-compressed Arrow IPC is not supported by riffle: send uncompressed IPC",
        )
    }

    /// An encoder whose every write fails.
    #[derive(Debug)]
    pub struct FrameEncoder<W>(W);

    impl<W: io::Write> FrameEncoder<W> {
        /// An encoder writing (never) to `output`.
        pub fn new(output: W) -> Self {
            Self(output)
        }

        /// Always an `Unsupported` error.
        pub fn finish(self) -> Result<W, io::Error> {
            Err(unsupported())
        }
    }

    impl<W: io::Write> io::Write for FrameEncoder<W> {
        fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
            Err(unsupported())
        }

        fn flush(&mut self) -> io::Result<()> {
            Err(unsupported())
        }
    }

    /// A decoder whose every read fails.
    #[derive(Debug)]
    pub struct FrameDecoder<R>(R);

    impl<R: io::Read> FrameDecoder<R> {
        /// A decoder reading (never) from `input`.
        pub fn new(input: R) -> Self {
            Self(input)
        }
    }

    impl<R: io::Read> io::Read for FrameDecoder<R> {
        fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
            Err(unsupported())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    #[test]
    fn every_read_and_write_is_an_error() {
        let mut encoder = super::frame::FrameEncoder::new(Vec::new());
        assert!(encoder.write_all(b"abc").is_err());
        assert!(encoder.finish().is_err());
        let mut out = Vec::new();
        let error = super::frame::FrameDecoder::new(&b"abc"[..])
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(error.to_string().contains("not supported"));
    }
}
