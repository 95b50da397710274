//! Shared set-up of the benchmarks: generated captures, loaded into memory once.

use std::path::PathBuf;
use std::process::Command;

use ipsecmon::capture::{open_file, Frame, FrameSource};
use ipsecmon::wire::{LinkType, Timestamp};

/// A capture held in memory: every frame's bytes in one buffer.
pub struct Capture {
    /// The file it was read from.
    // Each bench compiles this module on its own; only the decode bench reads the path.
    #[allow(dead_code)]
    pub path: PathBuf,
    data: Vec<u8>,
    frames: Vec<(usize, usize, Timestamp, LinkType, u32)>,
}

impl Capture {
    /// Generates (once per build directory) and loads a capture of `packets` packets over
    /// `tunnels` tunnels with `ipsecmon-gen`.
    pub fn generated(packets: u64, tunnels: u32) -> Capture {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("bench-{packets}-{tunnels}.pcap"));
        if !path.exists() {
            let status = Command::new(env!("CARGO_BIN_EXE_ipsecmon-gen"))
                .args([
                    "--packets",
                    &packets.to_string(),
                    "--tunnels",
                    &tunnels.to_string(),
                    "--out",
                ])
                .arg(&path)
                .status()
                .expect("running ipsecmon-gen");
            assert!(status.success(), "ipsecmon-gen failed");
        }
        Capture::load(path)
    }

    fn load(path: PathBuf) -> Capture {
        let mut src = open_file(&path).expect("opening the generated capture");
        let (mut data, mut frames) = (Vec::new(), Vec::new());
        while let Some(f) = src.next_frame().expect("reading the generated capture") {
            frames.push((data.len(), f.data.len(), f.ts, f.link, f.orig_len));
            data.extend_from_slice(f.data);
        }
        Capture { path, data, frames }
    }

    /// Number of frames.
    pub fn len(&self) -> u64 {
        self.frames.len() as u64
    }

    /// The frames, numbered from 1.
    pub fn frames(&self) -> impl Iterator<Item = Frame<'_>> {
        self.frames
            .iter()
            .enumerate()
            .map(|(i, &(at, len, ts, link, orig_len))| Frame {
                number: i as u64 + 1,
                ts,
                link,
                data: &self.data[at..at + len],
                orig_len,
            })
    }
}
