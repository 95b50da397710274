//! Key bytes in a type that never prints them and forgets them when dropped.

use std::fmt;

/// Secret key bytes (an encryption or integrity key, with any salt or nonce that belongs
/// to it).
///
/// It implements neither `Display` nor `Serialize`, and its `Debug` shows only the
/// length, so a key cannot reach an output, a log line or an error by accident. The
/// bytes are overwritten with zeros when the value is dropped.
pub struct Secret(Box<[u8]>);

impl Secret {
    /// Wraps key bytes. `bytes` should have no spare capacity, so that no copy of the
    /// key is left behind in freed memory.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes.into_boxed_slice())
    }

    /// The key bytes, for the cipher or MAC that needs them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` for an empty key (NULL encryption, no integrity).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Overwrites `bytes` with zeros in a way the optimiser may not remove.
pub(crate) fn wipe(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // SAFETY: `b` is a valid, aligned, exclusive reference to one byte.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_only_the_length() {
        let s = Secret::new(vec![0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(format!("{s:?}"), "Secret(4 bytes)");
        assert_eq!((s.len(), s.is_empty()), (4, false));
        assert_eq!(s.expose(), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn wipe_zeroes_every_byte() {
        let mut b = [7u8; 9];
        wipe(&mut b);
        assert_eq!(b, [0; 9]);
    }
}
