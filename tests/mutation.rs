//! Hostile input through the whole pipeline: every frame of every fixture and corpus
//! capture, mutated (bit flips, truncations, random and targeted length fields at their
//! extremes), goes through decoder, tracker, diagnosis and snapshot; and every capture
//! file, mutated as a whole (truncated, its record headers flipped or given absurd
//! lengths), goes through the file reader and the same `report` path. Nothing may panic,
//! and the tables stay within their caps.

use std::path::{Path, PathBuf};

use ipsecmon::capture::{self, Frame, FrameSource};
use ipsecmon::engine::{Engine, EngineConfig};
use ipsecmon::wire::{LinkType, Timestamp};

#[path = "common/corpus.rs"]
mod corpus;

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

/// The fixtures, and the third-party corpus when it sits beside the repository (or beside
/// the directory holding this worktree).
fn roots() -> Vec<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut roots = vec![repo.join("fixtures")];
    match corpus::corpus() {
        Some(dir) => roots.push(dir),
        None => println!("the ../shared corpus is absent: mutating the fixtures only"),
    }
    roots
}

fn all_captures() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for root in roots() {
        captures(&root, &mut files);
    }
    files
}

/// Where the IPv4 header starts for the link types whose header length is fixed.
fn ipv4_at(link: LinkType, data: &[u8]) -> Option<usize> {
    let at = match link {
        LinkType::Ethernet if data.get(12..14) == Some(&[0x08, 0x00]) => 14,
        LinkType::Raw | LinkType::Ipv4 => 0,
        LinkType::Null | LinkType::Loop => 4,
        LinkType::LinuxSll => 16,
        LinkType::LinuxSll2 => 20,
        _ => return None,
    };
    (data.get(at)? >> 4 == 4).then_some(at)
}

/// The same frame with each length field of IPv4, UDP, the IKE header and the first IKE
/// payload set to 0, 1 and its maximum (IKE's 32-bit length also to 28, a bare header).
fn length_extremes(link: LinkType, data: &[u8]) -> Vec<Vec<u8>> {
    let Some(ip) = ipv4_at(link, data) else {
        return Vec::new();
    };
    let ihl = usize::from(data[ip] & 0x0f) * 4;
    let udp = ip + ihl;
    let mut fields: Vec<(usize, usize)> = vec![(ip + 2, 2)];
    if data.get(ip + 9) == Some(&17) {
        fields.push((udp + 4, 2));
        let marker = data.get(udp + 8..udp + 12) == Some(&[0; 4]);
        let ike = udp + 8 + if marker { 4 } else { 0 };
        fields.extend([(ike + 24, 4), (ike + 30, 2)]);
    }
    let mut out = Vec::new();
    for (at, width) in fields {
        if at + width > data.len() {
            continue;
        }
        let values: &[u32] = if width == 2 {
            &[0, 1, 0xffff]
        } else {
            &[0, 28, u32::MAX]
        };
        for &v in values {
            let mut m = data.to_vec();
            let bytes = v.to_be_bytes();
            m[at..at + width].copy_from_slice(&bytes[4 - width..]);
            out.push(m);
        }
    }
    out
}

/// Whole-file mutations of a capture: cut at random points, bytes of the file and record
/// headers flipped, and record lengths set to 0 and to their maximum.
fn file_mutations(bytes: &[u8], rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..6 {
        out.push(bytes[..rng.below(bytes.len())].to_vec());
    }
    let head = bytes.len().min(4096);
    for _ in 0..12 {
        let mut m = bytes.to_vec();
        for _ in 0..4 {
            let i = rng.below(head);
            m[i] ^= 1 << rng.below(8);
        }
        out.push(m);
    }
    // In classic pcap the first record's captured and original lengths are at 32 and 36.
    for (at, v) in [
        (32, 0u32),
        (32, u32::MAX),
        (36, 0),
        (36, u32::MAX),
        (20, 0xffff),
    ] {
        if bytes.len() >= at + 4 {
            let mut m = bytes.to_vec();
            m[at..at + 4].copy_from_slice(&v.to_le_bytes());
            out.push(m);
        }
    }
    out
}

/// Reads a capture held in memory through the engine and renders every output, as
/// `report`, `diagnose` and `serve` would.
fn report_bytes(bytes: Vec<u8>, config: &EngineConfig) -> u64 {
    let Ok(mut src) = capture::read_bytes(Path::new("mutated.pcap"), bytes) else {
        return 0;
    };
    let mut engine = Engine::new(config.clone());
    while let Ok(Some(frame)) = src.next_frame() {
        engine.process(&frame);
    }
    engine.finish();
    let snap = engine.snapshot("mutated", Default::default());
    let whole = serde_json::to_vec_pretty(&snap.report).expect("the report serialises");
    let mut streamed = Vec::new();
    engine
        .write_report_json(&mut streamed)
        .expect("the report streams");
    assert!(
        whole == streamed,
        "the streamed report differs from the whole one"
    );
    let mut text = Vec::new();
    ipsecmon::cli::report::render(&engine.rows(), &mut text).expect("the tables render");
    let mut metrics = ipsecmon::export::Metrics::new(Default::default());
    metrics.update(&snap);
    let _ = metrics.render();
    snap.report.frames
}

/// Every capture to mutate; prints that the test skips when there is none.
fn captures_or_skip() -> Option<Vec<PathBuf>> {
    let files = all_captures();
    if files.is_empty() {
        println!("skipped: no fixtures and no ../shared corpus");
        return None;
    }
    Some(files)
}

/// The engine's configuration for mutated input: the IKE and ESP tables capped at 64 SAs
/// each, the bounds `mutated_frames_never_panic_and_state_stays_bounded` checks.
fn capped() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.tracker.max_ike_sas = 64;
    config.tracker.max_esp_sas = 64;
    config
}

#[test]
fn mutated_frames_never_panic_and_state_stays_bounded() {
    let Some(files) = captures_or_skip() else {
        return;
    };
    let config = capped();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut fed = 0u64;
    for file in &files {
        let mut engine = Engine::new(config.clone());
        let mut number = 0;
        for (ts, link, data) in frames(file) {
            let extremes = length_extremes(link, &data);
            let all = std::iter::once(data.clone())
                .chain(mutations(&data, &mut rng))
                .chain(extremes);
            for m in all {
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
fn mutated_files_never_panic_through_report() {
    let Some(files) = captures_or_skip() else {
        return;
    };
    let config = capped();
    let mut rng = Rng(0x5eed_f11e);
    let (mut variants, mut frames) = (0u64, 0u64);
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        if bytes.is_empty() {
            continue;
        }
        for m in file_mutations(&bytes, &mut rng) {
            frames += report_bytes(m, &config);
            variants += 1;
        }
    }
    assert!(
        variants >= 23 * files.len() as u64 / 2,
        "{variants} variants"
    );
    println!(
        "{variants} mutated files ({frames} frames read) from {} captures",
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
