//! Feeds arbitrary bytes to `enforce::acquire::child_of_frame`, the reader of the packet
//! filter's acquire log (libpcap's NFLOG frames): attribute lengths are the kernel's word
//! here, so every one must be checked against the frame.

#![no_main]

use ipsecmon::enforce::acquire::child_of_frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(child)) = child_of_frame(data) {
        // A name is never empty and never carries the prefix's trailing space.
        assert!(!child.is_empty() && !child.ends_with(' '));
    }
});
