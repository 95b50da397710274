//! Writes the fuzz targets' seed corpora (`fuzz/seeds/TARGET/`) from capture files and
//! policy files, in each target's input format (see the targets under `fuzz/fuzz_targets`).
//!
//! `cargo run --example fuzz_seeds -- OUT_DIR INPUT...`: every capture (`.pcap`,
//! `.pcapng`, `.cap`, `.gz`) and policy (`.toml`) found under the inputs, recursively.
//! Seeds are derived at run time and never committed, since some inputs are third-party
//! captures.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use ipsecmon::capture::{self, FrameSource};
use ipsecmon::wire::{Decoder, LinkType, Packet};

/// The link types in the order the frame targets index them by their selector.
const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::Null,
    LinkType::Loop,
    LinkType::Raw,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
];

/// Most seeds per target: enough variety, and a smoke run still gets past loading them.
const MAX_SEEDS: usize = 1500;
/// Largest whole-file and pipeline seed.
const MAX_FILE_SEED: usize = 16 * 1024;

/// One target's seed directory, deduplicated by content.
struct Seeds {
    dir: PathBuf,
    seen: HashSet<u64>,
}

impl Seeds {
    fn new(out: &Path, target: &str) -> std::io::Result<Seeds> {
        let dir = out.join(target);
        std::fs::create_dir_all(&dir)?;
        Ok(Seeds {
            dir,
            seen: HashSet::new(),
        })
    }

    fn add(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut h = DefaultHasher::new();
        bytes.hash(&mut h);
        let id = h.finish();
        if self.seen.len() >= MAX_SEEDS || !self.seen.insert(id) {
            return Ok(());
        }
        std::fs::write(self.dir.join(format!("seed-{id:016x}")), bytes)
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    if dir.is_file() {
        out.push(dir.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        walk(&p, out);
    }
}

fn has_ext(p: &Path, exts: &[&str]) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.contains(&e))
}

/// One record of the decrypt target: `[selector][length][bytes]`, the selector's high
/// bit set for ESP, its low bits spreading records over the target's table entries.
fn decrypt_record(out: &mut Vec<u8>, esp: bool, n: usize, bytes: &[u8]) {
    if out.len() + bytes.len() + 3 > MAX_FILE_SEED {
        return;
    }
    out.push(u8::from(esp) << 7 | (n % 8) as u8);
    out.extend_from_slice(&(bytes.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Seeds for the frame, IKE, pipeline and decrypt targets from one capture.
fn from_capture(path: &Path, s: &mut [Seeds; 5]) -> std::io::Result<()> {
    let Ok(mut src) = capture::open_file(path) else {
        return Ok(());
    };
    let mut decoder = Decoder::default();
    let mut pipeline = Vec::new();
    let mut decrypt = Vec::new();
    let mut last_secs = None;
    while let Ok(Some(f)) = src.next_frame() {
        let Some(link) = LINKS.iter().position(|l| *l == f.link) else {
            continue;
        };
        let mut frame = vec![link as u8];
        frame.extend_from_slice(f.data);
        s[0].add(&frame)?;
        match decoder.decode(f.link, f.ts, f.data) {
            Ok(Packet::Ike(d)) => {
                s[1].add(&[&[0u8][..], d.message].concat())?;
                decrypt_record(&mut decrypt, false, f.number as usize, d.message);
            }
            Ok(Packet::Esp(e)) => decrypt_record(&mut decrypt, true, f.number as usize, e.payload),
            _ => {}
        }
        let secs = f.ts.0 / 1_000_000_000;
        let step = last_secs.map_or(0, |l: i64| (secs - l).clamp(0, 14)) as u8;
        last_secs = Some(secs);
        if pipeline.len() + f.data.len() + 3 <= MAX_FILE_SEED {
            pipeline.push(step << 4 | link as u8);
            pipeline.extend_from_slice(&(f.data.len() as u16).to_be_bytes());
            pipeline.extend_from_slice(f.data);
        }
    }
    if !pipeline.is_empty() {
        s[3].add(&pipeline)?;
    }
    if !decrypt.is_empty() {
        s[4].add(&decrypt)?;
    }
    let bytes = std::fs::read(path)?;
    s[2].add(&bytes[..bytes.len().min(MAX_FILE_SEED)])
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let out = args.next().expect("usage: fuzz_seeds OUT_DIR INPUT...");
    let mut files = Vec::new();
    for input in args {
        walk(&input, &mut files);
    }
    let mut seeds = [
        Seeds::new(&out, "decode_frame")?,
        Seeds::new(&out, "parse_ike")?,
        Seeds::new(&out, "read_capture")?,
        Seeds::new(&out, "pipeline")?,
        Seeds::new(&out, "decrypt")?,
    ];
    let mut policies = Seeds::new(&out, "policy_file")?;
    for f in &files {
        if has_ext(f, &["pcap", "pcapng", "cap", "gz"]) {
            from_capture(f, &mut seeds)?;
        } else if has_ext(f, &["toml"]) {
            policies.add(&std::fs::read(f)?)?;
        }
    }
    for s in seeds.iter().chain([&policies]) {
        println!("{}: {} seeds", s.dir.display(), s.seen.len());
    }
    Ok(())
}
