//! Classifies every frame of the external capture corpus with `wire::Decoder` and
//! compares the result with tshark's dissection of the same frame (the ground-truth TSV
//! files beside the corpus): IKE where tshark saw ISAKMP (same initiator SPI), ESP and AH
//! with the same SPI, ICMP where tshark saw an error quoting one of them.
//!
//! The corpus is third-party data kept outside the repository (`../shared/corpus`); when it
//! is absent the test says so and passes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use ipsecmon::wire::{Decoder, LinkType, Packet, Timestamp};

#[path = "common/corpus.rs"]
mod corpus;

/// Frames where the decoder deliberately disagrees with tshark: fuzzed regression captures
/// of tcpdump whose IPv4 header sets More Fragments on a first fragment whose length is not
/// a multiple of 8 (RFC 791 §3.2 requires it), or whose UDP length runs past a complete
/// IP packet. tshark dissects the UDP payload anyway; the decoder reports the damage
/// (`bad-fragment`, `bad-udp-length`). Two more frames on UDP 500 carry ISAKMP headers
/// with a zero length, which the field dump shows as plain UDP data; the decoder goes by
/// the port and leaves the bad length to the IKE parser.
const DIVERGENCES: [(&str, u64, &str); 9] = [
    ("esp_truncated.pcap", 1, "misaligned first fragment"),
    (
        "ikev1_id_ipv6_addr_subnet-oobr.pcap",
        1,
        "misaligned first fragment",
    ),
    (
        "isakmp-ikev1_n_print-oobr.pcap",
        1,
        "misaligned first fragment",
    ),
    (
        "isakmp-ikev1_n_print-oobr.pcap",
        3,
        "misaligned first fragment",
    ),
    ("isakmp-various-oobr.pcap", 1, "misaligned first fragment"),
    ("isakmpv1-attr-oobr.pcap", 1, "misaligned first fragment"),
    (
        "isakmp-delete-segfault.pcap",
        1,
        "UDP length beyond the IP packet",
    ),
    (
        "isakmp-pointer-loop.pcap",
        1,
        "ISAKMP length zero, dumped as UDP data",
    ),
    (
        "ipsec-ikev1-zero-length.pcap",
        1,
        "ISAKMP length zero, dumped as UDP data",
    ),
];

/// What tshark says a frame is, reduced to what the wire decoder decides.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Truth {
    Ike(u64),
    Esp(u32),
    Ah(u32),
    Icmp,
    Other,
}

fn truth_of(line: &str) -> Option<(u64, Truth)> {
    let f: Vec<&str> = line.split('\t').collect();
    let frame = f.first()?.parse().ok()?;
    let protocols = f.get(2)?;
    let first = |i: usize| f.get(i).and_then(|s| s.split(',').next()).unwrap_or("");
    let hex32 = |s: &str| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    let before = |a: &str, b: &str| {
        protocols
            .find(a)
            .is_some_and(|i| protocols.find(b).is_none_or(|j| i < j))
    };
    let truth = if before(":icmp", ":esp") && before(":icmp", ":ah") {
        Truth::Icmp
    } else if let Some(spi) = hex32(first(24)) {
        Truth::Ah(spi)
    } else if let Some(spi) = hex32(first(21)) {
        Truth::Esp(spi)
    } else if let Ok(spi) = u64::from_str_radix(first(10), 16) {
        Truth::Ike(spi)
    } else if protocols.contains("isakmp") {
        // tshark recognised ISAKMP but left its fields empty (a damaged header).
        return None;
    } else {
        Truth::Other
    };
    Some((frame, truth))
}

fn ours(p: &Packet<'_>) -> Truth {
    match p {
        Packet::Ike(i) => match i.message.get(..8) {
            Some(b) => Truth::Ike(u64::from_be_bytes(b.try_into().unwrap_or_default())),
            None => Truth::Other,
        },
        Packet::Esp(e) => Truth::Esp(e.spi),
        Packet::Ah(a) => Truth::Ah(a.spi),
        Packet::Icmp(_) => Truth::Icmp,
        _ => Truth::Other,
    }
}

/// Opens a capture through libpcap, gunzipping `.gz` files into a temporary file first.
fn open(path: &Path, tmp: &tempfile::TempDir) -> pcap::Capture<pcap::Offline> {
    let path = if path.extension().is_some_and(|e| e == "gz") {
        let mut raw = Vec::new();
        let file = std::fs::File::open(path).expect("open capture");
        flate2::read::GzDecoder::new(file)
            .read_to_end(&mut raw)
            .expect("gunzip");
        let out = tmp.path().join(path.file_stem().expect("name"));
        std::fs::write(&out, raw).expect("write temp");
        out
    } else {
        path.to_path_buf()
    };
    pcap::Capture::from_file(&path).expect("libpcap opens the capture")
}

/// Returns (frames compared, mismatches as text).
fn compare(capture: &Path, tsv: &str, tmp: &tempfile::TempDir) -> (usize, Vec<String>) {
    let truth: BTreeMap<u64, Truth> = tsv.lines().skip(1).filter_map(truth_of).collect();
    let mut cap = open(capture, tmp);
    let link = LinkType::from_linktype(cap.get_datalink().0 as u32);
    let mut decoder = Decoder::default();
    let (mut n, mut compared, mut bad) = (0u64, 0, Vec::new());
    while let Ok(pkt) = cap.next_packet() {
        n += 1;
        let ts = Timestamp::from_parts(pkt.header.ts.tv_sec, pkt.header.ts.tv_usec as u32 * 1000);
        let got = match decoder.decode_numbered(n, link, ts, pkt.data) {
            Ok(p) => ours(&p),
            Err(_) => Truth::Other,
        };
        let Some(want) = truth.get(&n) else { continue };
        compared += 1;
        let name = capture
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let known = DIVERGENCES.iter().any(|(c, f, _)| *c == name && *f == n);
        if got != *want && !known {
            bad.push(format!("frame {n}: tshark {want:?}, wire {got:?}"));
        }
    }
    (compared, bad)
}

#[test]
fn wire_classification_matches_tshark() {
    let Some(dir) = corpus::corpus_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let tsvs = corpus::dumps(&dir);
    let (mut total, mut failures) = (0, Vec::new());
    for (rel, tsv) in &tsvs {
        let capture = dir.join(rel);
        let text = std::fs::read_to_string(tsv).expect("read tsv");
        let (n, bad) = compare(&capture, &text, &tmp);
        total += n;
        failures.extend(bad.into_iter().map(|b| format!("{}: {b}", rel.display())));
    }
    eprintln!("compared {total} frames in {} captures", tsvs.len());
    assert!(total > 0);
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
