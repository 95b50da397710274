//! Hostile input through the whole pipeline: every frame of every fixture and corpus
//! capture, mutated (bit flips, truncations, length fields at their extremes), goes
//! through decoder, tracker, diagnosis and snapshot. Nothing may panic, and the tables
//! stay within their caps.

use std::path::{Path, PathBuf};

use ipsecmon::capture::{self, Frame, FrameSource};
use ipsecmon::engine::{Engine, EngineConfig};
use ipsecmon::wire::{LinkType, Timestamp};

/// Every capture under `dir`, recursively.
fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            captures(&p, out);
        } else if ["pcap", "pcapng", "cap", "gz"]
            .iter()
            .any(|x| p.extension().is_some_and(|e| e == *x))
        {
            out.push(p);
        }
    }
}

/// All frames of a file, owned.
fn frames(path: &Path) -> Vec<(Timestamp, LinkType, Vec<u8>)> {
    let Ok(mut src) = capture::open_file(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while let Ok(Some(f)) = src.next_frame() {
        out.push((f.ts, f.link, f.data.to_vec()));
    }
    out
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Mutations of one frame: truncations, bit flips, and 16/32-bit fields at 0 and max.
fn mutations(data: &[u8], rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for cut in [0, 1, 14, 20, 28, 34, 42, 50, 70] {
        if cut < data.len() {
            out.push(data[..cut].to_vec());
        }
    }
    for _ in 0..12 {
        let mut m = data.to_vec();
        if !m.is_empty() {
            let i = rng.below(m.len());
            m[i] ^= 1 << rng.below(8);
        }
        out.push(m);
    }
    for _ in 0..8 {
        let mut m = data.to_vec();
        if m.len() >= 4 {
            let i = rng.below(m.len() - 3);
            let fill = if rng.next() & 1 == 0 { 0x00 } else { 0xff };
            let width = if rng.next() & 1 == 0 { 2 } else { 4 };
            m[i..i + width].fill(fill);
        }
        out.push(m);
    }
    out
}

fn roots() -> Vec<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    vec![
        repo.join("fixtures"),
        repo.join("../shared/corpus/external"),
    ]
}

#[test]
fn mutated_frames_never_panic_and_state_stays_bounded() {
    let mut files = Vec::new();
    for root in roots() {
        captures(&root, &mut files);
    }
    if files.is_empty() {
        println!("skipped: no fixtures and no ../shared corpus");
        return;
    }
    let mut config = EngineConfig::default();
    config.tracker.max_ike_sas = 64;
    config.tracker.max_esp_sas = 64;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut fed = 0u64;
    for file in &files {
        let mut engine = Engine::new(config.clone());
        let mut number = 0;
        for (ts, link, data) in frames(file) {
            for m in std::iter::once(data.clone()).chain(mutations(&data, &mut rng)) {
                number += 1;
                engine.process(&Frame {
                    number,
                    ts,
                    link,
                    data: &m,
                    orig_len: m.len() as u32,
                });
                fed += 1;
            }
        }
        let snap = engine.snapshot("mutated", Default::default());
        assert!(
            snap.report.ike_sas.len() <= 64,
            "{}: IKE table over its cap",
            file.display()
        );
        assert!(
            snap.report.esp_sas.len() + snap.report.ah_sas.len() <= 128,
            "{}",
            file.display()
        );
        serde_json::to_string(&snap).expect("snapshot serialises");
    }
    println!(
        "{fed} frames (originals and mutations) from {} captures",
        files.len()
    );
}

#[test]
fn random_frames_on_every_link_type_never_panic() {
    let mut rng = Rng(42);
    let mut engine = Engine::new(EngineConfig::default());
    let links = [
        LinkType::Ethernet,
        LinkType::Null,
        LinkType::Loop,
        LinkType::Raw,
        LinkType::Ipv4,
        LinkType::Ipv6,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::Other(999),
    ];
    for n in 0..20_000u64 {
        let len = rng.below(200);
        let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Make about half of them plausible IPv4/UDP so deeper layers are reached.
        if len > 28 && n % 2 == 0 {
            data[0] = 0x45;
            data[9] = if n % 4 == 0 { 17 } else { 50 };
            data[22..24].copy_from_slice(&[0x01, 0xf4]);
        }
        let link = links[rng.below(links.len())];
        let ts = Timestamp(n as i64 * 1_000_000);
        engine.process(&Frame {
            number: n + 1,
            ts,
            link,
            data: &data,
            orig_len: len as u32,
        });
    }
    let _ = engine.snapshot("random", Default::default());
}
