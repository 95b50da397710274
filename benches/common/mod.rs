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

/// Synthetic ESP frames (Ethernet, IPv4, ESP header, 64 payload bytes): one per SA per
/// round, `sas` SAs each with its own SPI towards one of 65,536 destinations of the
/// benchmarking range 198.18.0.0/15 (RFC 2544), in a fixed shuffled order so that table
/// lookups land all over the table, as they do on a busy link.
pub struct EspFrames {
    data: Vec<u8>,
    len: usize,
    count: usize,
}

/// Bytes of one synthetic frame: Ethernet 14, IPv4 20, ESP header 8, payload 64.
const ESP_FRAME: usize = 14 + 20 + 8 + 64;

impl EspFrames {
    /// `rounds` packets for each of `sas` SAs.
    pub fn new(sas: u32, rounds: u32) -> EspFrames {
        let mut order: Vec<u32> = (0..sas).collect();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in (1..order.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut data = Vec::with_capacity(ESP_FRAME * (sas * rounds) as usize);
        for round in 0..rounds {
            for &sa in &order {
                push_esp_frame(&mut data, sa, round + 1);
            }
        }
        EspFrames {
            len: ESP_FRAME,
            count: (sas * rounds) as usize,
            data,
        }
    }

    /// Number of frames.
    pub fn len(&self) -> u64 {
        self.count as u64
    }

    /// The frames, numbered from `first`.
    pub fn frames(&self, first: u64) -> impl Iterator<Item = Frame<'_>> {
        self.data
            .chunks_exact(self.len)
            .enumerate()
            .map(move |(i, data)| Frame {
                number: first + i as u64,
                ts: Timestamp::from_parts(1_700_000_000, i as u32 % 1_000_000_000),
                link: LinkType::Ethernet,
                data,
                orig_len: data.len() as u32,
            })
    }
}

fn push_esp_frame(out: &mut Vec<u8>, sa: u32, seq: u32) {
    out.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
    let total = (ESP_FRAME - 14) as u16;
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0x40, 0, 64, 50, 0, 0]);
    out.extend_from_slice(&[198, 19, 0, 1]);
    let host = (sa % 65_536) as u16;
    out.extend_from_slice(&[198, 18]);
    out.extend_from_slice(&host.to_be_bytes());
    out.extend_from_slice(&(sa + 1).to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&[0x5a; 64]);
}
