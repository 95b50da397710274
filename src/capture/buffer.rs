//! A refillable read buffer that hands out records as slices of itself, so that reading a
//! capture file allocates once (the buffer) and never per frame.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Size of the read buffer. Large reads are what made a pure-Rust reader about twice as
/// fast as libpcap on captures; 1 MiB holds every record this reader accepts.
pub(crate) const BUFFER_SIZE: usize = 1 << 20;

/// A `Read` that counts the bytes it has delivered, shared with the owner of the stream so
/// that progress can be reported in bytes of the file even below a gzip decoder.
pub(crate) struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Counting<R> {
    /// Wraps `inner`; `count` is incremented by every read.
    pub(crate) fn new(inner: R, count: Arc<AtomicU64>) -> Self {
        Counting { inner, count }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A window `buf[pos..end]` of not yet consumed bytes over a byte stream.
pub(crate) struct Buffered {
    src: Box<dyn Read + Send>,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
}

impl Buffered {
    /// A buffer of [`BUFFER_SIZE`] bytes over `src`.
    pub(crate) fn new(src: Box<dyn Read + Send>) -> Self {
        Buffered {
            src,
            buf: vec![0; BUFFER_SIZE],
            pos: 0,
            end: 0,
            eof: false,
        }
    }

    /// Makes `n` bytes available at the front of the window, reading as needed. Returns how
    /// many are available: `n`, or fewer only at the end of the stream. The caller bounds
    /// `n`; the buffer grows to it if it must.
    pub(crate) fn fill(&mut self, n: usize) -> io::Result<usize> {
        if self.end - self.pos >= n {
            return Ok(n);
        }
        if self.buf.len() - self.pos < n {
            self.compact(n);
        }
        while self.end - self.pos < n && !self.eof {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n.min(self.end - self.pos))
    }

    /// Moves the window to the start of the buffer, growing the buffer to hold `n` bytes.
    fn compact(&mut self, n: usize) {
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        if self.buf.len() < n {
            self.buf.resize(n, 0);
        }
    }

    /// The window's bytes (valid after a successful [`fill`](Self::fill)).
    pub(crate) fn window(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Absolute offset in the buffer of the window's first byte.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The buffer itself, for slicing a record found at an absolute offset.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Consumes `n` bytes of the window (at most what is available).
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos += n.min(self.end - self.pos);
    }

    /// Discards `n` bytes of the stream without holding them all; returns how many were
    /// discarded (fewer only at the end of the stream).
    pub(crate) fn skip(&mut self, n: u64) -> io::Result<u64> {
        let mut left = n;
        while left > 0 {
            let want = left.min(BUFFER_SIZE as u64) as usize;
            let got = self.fill(want)?;
            self.consume(got);
            left -= got as u64;
            if got < want {
                break;
            }
        }
        Ok(n - left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns at most `chunk` bytes per call, to exercise refills.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        chunk: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.chunk).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn trickle(len: usize, chunk: usize) -> Buffered {
        let data = (0..len).map(|i| i as u8).collect();
        Buffered::new(Box::new(Trickle { data, at: 0, chunk }))
    }

    #[test]
    fn fill_reads_across_short_reads() {
        let mut b = trickle(100, 7);
        assert_eq!(b.fill(50).unwrap(), 50);
        assert_eq!(b.window()[49], 49);
        b.consume(50);
        assert_eq!(b.fill(60).unwrap(), 50, "only 50 bytes remain");
        assert_eq!(b.window()[0], 50);
    }

    #[test]
    fn compaction_keeps_unconsumed_bytes() {
        let mut b = trickle(BUFFER_SIZE + 1000, 4096);
        b.fill(BUFFER_SIZE - 10).unwrap();
        b.consume(BUFFER_SIZE - 20);
        assert_eq!(b.fill(500).unwrap(), 500);
        assert_eq!(b.pos(), 0);
        assert_eq!(b.window()[0], ((BUFFER_SIZE - 20) % 256) as u8);
    }

    #[test]
    fn skip_crosses_buffers_and_stops_at_end() {
        let mut b = trickle(3 * BUFFER_SIZE, 1 << 16);
        assert_eq!(
            b.skip(2 * BUFFER_SIZE as u64 + 3).unwrap(),
            2 * BUFFER_SIZE as u64 + 3
        );
        b.fill(1).unwrap();
        assert_eq!(b.window()[0], 3);
        assert_eq!(b.skip(u64::MAX).unwrap(), BUFFER_SIZE as u64 - 3);
    }
}
