//! Feeds arbitrary bytes to the capture-file reader as a whole file (pcap in either byte
//! order and precision, pcapng, or a gzip of either) and reads every frame.
//!
//! Besides "no panic", it checks what the reader promises: frames are numbered 1, 2, 3…,
//! no frame is longer than `MAX_RECORD`, and a damaged record ends the file with an error
//! that names the frame at which reading stopped.

#![no_main]

use std::path::Path;

use ipsecmon::capture::{self, CaptureError, FrameSource, MAX_RECORD};
use libfuzzer_sys::fuzz_target;

/// Enough frames for any input libFuzzer sends (its default maximum length is 4 KiB, and
/// gzip cannot expand a few KiB past this many minimal records in the time allowed).
const MAX_FRAMES: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let name = Path::new("fuzz.pcap");
    let Ok(mut src) = capture::read_bytes(name, data.to_vec()) else {
        return;
    };
    let mut expected = 1u64;
    loop {
        match src.next_frame() {
            Ok(Some(frame)) => {
                assert_eq!(frame.number, expected);
                assert!(frame.data.len() <= MAX_RECORD);
                expected += 1;
                if expected > MAX_FRAMES {
                    return;
                }
            }
            Ok(None) => break,
            Err(CaptureError::Record { frame, path, .. }) => {
                assert_eq!(frame, expected);
                assert_eq!(path, name);
                break;
            }
            Err(e) => panic!("unexpected error kind while reading: {e}"),
        }
    }
    assert_eq!(src.stats().received, expected - 1);
});
