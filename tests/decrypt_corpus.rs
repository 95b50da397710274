//! Decryption of the shared corpus's captures that come with keys (SOURCES.md, "Key
//! material available"): the Wireshark decryption test captures with the key tables of
//! Wireshark's test suite, and the tcpdump captures with tcpdump's secrets files and the
//! inline keys of tcpdump's test driver.
//!
//! Each test checks that every encrypted message or packet of the capture decrypts, and
//! that the value Wireshark's own test expects (quoted in SOURCES.md) is inside the
//! plaintext: the AUTH payload data of IKE_AUTH, the HASH payload of an IKEv1 exchange,
//! the "OpenSwan" string of an IKEv1 certificate, the ICMP data of an ESP packet.
//!
//! Skips with a printed line when the corpus (`../shared/corpus/external`) is absent.

use std::path::Path;
use std::sync::Arc;

use ipsecmon::capture::{open_file, FrameSource};
use ipsecmon::decrypt::{Decryptor, IkeDecrypt};
use ipsecmon::keys::KeyTable;
use ipsecmon::wire::ike::{self, vendor::DraftNatdMemory};
use ipsecmon::wire::{Decoder, Packet};

#[path = "common/corpus.rs"]
mod corpus;

/// What decryption did with one capture.
#[derive(Debug, Default)]
struct Run {
    /// Frame numbers of IKE messages decrypted, with their plaintexts.
    ike: Vec<(u64, Vec<u8>)>,
    /// Frame numbers of IKE messages that did not decrypt, and why.
    ike_failed: Vec<(u64, String)>,
    /// Frames of IKE fragments stored.
    fragments: Vec<u64>,
    /// ESP frames decrypted, with next header, verification and inner bytes.
    esp: Vec<(u64, u8, bool, Vec<u8>)>,
    /// ESP frames that did not decrypt, and why.
    esp_failed: Vec<(u64, String)>,
    /// Names of decrypted IKE payload types per frame.
    payloads: Vec<(u64, Vec<u8>)>,
}

fn run(capture: &Path, keys: KeyTable) -> Run {
    let mut src = open_file(capture).unwrap();
    let mut decoder = Decoder::default();
    let mut natd = DraftNatdMemory::default();
    let mut d = Decryptor::new(Arc::new(keys));
    let mut out = Run::default();
    while let Some(f) = src.next_frame().unwrap() {
        match decoder.decode_numbered(f.number, f.link, f.ts, f.data) {
            Ok(Packet::Ike(dgram)) => {
                let ctx = natd.context(dgram.message);
                let Ok(mut msg) = ike::parse_message(dgram.message, ctx) else {
                    continue;
                };
                let r = d.ike(&dgram.addrs, dgram.message, &mut msg, ctx);
                natd.observe(&msg);
                match r {
                    Some(IkeDecrypt::Decrypted { .. }) => {
                        out.ike.push((f.number, d.last_plaintext().to_vec()));
                        let types = msg.payloads.iter().filter(|p| p.decrypted);
                        out.payloads
                            .push((f.number, types.map(|p| p.payload_type).collect()));
                    }
                    Some(IkeDecrypt::FragmentStored { .. }) => out.fragments.push(f.number),
                    Some(IkeDecrypt::Failed(e)) => out.ike_failed.push((f.number, e.to_string())),
                    None => {}
                }
            }
            Ok(Packet::Esp(esp)) => match d.esp(&esp) {
                Some(Ok(p)) => {
                    out.esp
                        .push((f.number, p.next_header, p.verified, p.inner.to_vec()))
                }
                Some(Err(e)) => out.esp_failed.push((f.number, e.to_string())),
                None => {}
            },
            _ => {}
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn table(path: &Path) -> KeyTable {
    KeyTable::load(path).unwrap()
}

fn frames(list: &[(u64, Vec<u8>)]) -> Vec<u64> {
    list.iter().map(|(f, _)| *f).collect()
}

/// The IKEv2 captures of Wireshark's decryption suite: frame of the IKE_AUTH message
/// whose AUTH data Wireshark's test greps for, and that data.
const IKEV2: &[(&str, u64, &str)] = &[
    (
        "ikev2-decrypt-3des-sha1_160.pcap",
        3,
        "02f7a0d5f1fdc8ea81039818c65bb9bd09af9b8917319b887ff9ba3046c344c7",
    ),
    (
        "ikev2-decrypt-aes128ccm12.pcap",
        4,
        "c2104394299e1ffe7908ea720ad5d13717a0d454e4fa0a2128ea689411f479c4",
    ),
    (
        "ikev2-decrypt-aes128ccm12-2.pcap",
        3,
        "aaa281c87b4a19046c57271d557488ca413b57228cb951f5fa9640992a0285b9",
    ),
    (
        "ikev2-decrypt-aes192ctr.pcap",
        3,
        "3ec23dcf9348485638407c754547aeb3085290082c49f583fdbae59263a20b4a",
    ),
    (
        "ikev2-decrypt-aes256cbc.pcapng",
        3,
        "e1a8d550064201a7ec024a85758d0673c61c5c510ac13bcd225d6327f50da3d3",
    ),
    (
        "ikev2-decrypt-aes256ccm16.pcapng",
        3,
        "fa2e74bdc01e30fb0b3ddc9723c9449095969da51f69e560209d2c2b7940210a",
    ),
    (
        "ikev2-decrypt-aes256gcm16.pcap",
        4,
        "9ab71f14ab553cad873a1aa70b99df155dee77cdcf3694b3b7527acbb9712ded",
    ),
    (
        "ikev2-decrypt-aes256gcm8.pcap",
        3,
        "4a66d822d0afbc22ad9a92a2cf4287c920ad8ac3b069a4a7e75fe0a5d499f914",
    ),
];

#[test]
fn wireshark_ikev2_captures_decrypt_to_the_auth_data_wiresharks_tests_expect() {
    let Some(root) = corpus::corpus_or_skip() else {
        return;
    };
    let ws = root.join("wireshark/test");
    for (name, frame, auth) in IKEV2 {
        let keys = table(&ws.join("config/ikev2_decryption_table.tmpl"));
        let r = run(&ws.join("captures").join(name), keys);
        assert!(r.ike_failed.is_empty(), "{name}: {:?}", r.ike_failed);
        let encrypted = if name.contains("aes256cbc") || name.contains("ccm16") {
            2
        } else {
            4
        };
        assert_eq!(r.ike.len(), encrypted, "{name}: {:?}", frames(&r.ike));
        let (_, plain) = r.ike.iter().find(|(f, _)| f == frame).unwrap();
        assert!(
            contains(plain, &hex(auth)),
            "{name}: AUTH data not in frame {frame}"
        );
        let auth_frames = r.payloads.iter().filter(|(_, t)| t.contains(&39)).count();
        assert_eq!(
            auth_frames, 2,
            "{name}: IKE_AUTH request and response carry AUTH"
        );
    }
}

/// The IKEv1 captures: every encrypted frame, and the frame whose plaintext holds the
/// value Wireshark's test expects.
const IKEV1: &[(&str, std::ops::RangeInclusive<u64>, u64, &[u8])] = &[
    // test_ikev1_simultaneous: isakmp.hash of frame 9 (a ModeCfg exchange).
    (
        "ikev1-bug-12610.pcapng.gz",
        5..=16,
        9,
        b"\xb5\x25\x21\xf7\x74\x96\x74\x02\xc9\xf6\xce\xe9\x5f\xd1\x7e\x5b",
    ),
    // test_ikev1_unencrypted: Aggressive Mode's third message is in the clear, so the
    // Informational of frame 4 derives its IV from the phase-1 IV itself.
    (
        "ikev1-bug-12620.pcapng.gz",
        4..=10,
        4,
        b"\x40\x04\x3b\x64\x0f\x43\x73\x25\x0d\x5a\xc3\xa1\xfb\x63\x15\x3c",
    ),
    // test_ikev1_certs: the peer's certificate in MM5 names OpenSwan. Frame 8 is a
    // byte-identical retransmission of QM1 (frame 7), which tshark 4.0.17 decrypts with
    // an advanced IV and calls malformed; it must decrypt like frame 7.
    ("ikev1-certs.pcap", 5..=10, 5, b"OpenSwan"),
];

#[test]
fn wireshark_ikev1_captures_decrypt_to_the_values_wiresharks_tests_expect() {
    let Some(root) = corpus::corpus_or_skip() else {
        return;
    };
    let ws = root.join("wireshark/test");
    for (name, encrypted, frame, needle) in IKEV1 {
        let keys = table(&ws.join("config/ikev1_decryption_table.tmpl"));
        let r = run(&ws.join("captures").join(name), keys);
        assert!(r.ike_failed.is_empty(), "{name}: {:?}", r.ike_failed);
        assert_eq!(
            frames(&r.ike),
            encrypted.clone().collect::<Vec<_>>(),
            "{name}"
        );
        let (_, plain) = r.ike.iter().find(|(f, _)| f == frame).unwrap();
        assert!(
            contains(plain, needle),
            "{name}: expected value not in frame {frame}"
        );
    }
}

#[test]
fn a_retransmitted_quick_mode_message_decrypts_like_its_first_copy() {
    let Some(root) = corpus::corpus_or_skip() else {
        return;
    };
    let ws = root.join("wireshark/test");
    let keys = table(&ws.join("config/ikev1_decryption_table.tmpl"));
    let r = run(&ws.join("captures/ikev1-certs.pcap"), keys);
    let plain = |n: u64| &r.ike.iter().find(|(f, _)| *f == n).unwrap().1;
    assert_eq!(plain(7), plain(8));
    // QM1, its copy and QM2: HASH, SA, Nonce, KE, IDci, IDcr; QM3: HASH alone.
    let qm: Vec<&Vec<u8>> = r
        .payloads
        .iter()
        .filter(|(f, _)| *f >= 7)
        .map(|(_, t)| t)
        .collect();
    assert_eq!(
        qm,
        vec![&vec![8, 1, 10, 4, 5, 5]; 3]
            .into_iter()
            .chain([&vec![8]])
            .collect::<Vec<_>>()
    );
}

#[test]
fn wireshark_esp_capture_decrypts_to_the_icmp_data_wiresharks_test_expects() {
    let Some(root) = corpus::corpus_or_skip() else {
        return;
    };
    let ws = root.join("wireshark/test");
    let keys = table(&ws.join("config/esp_sa.tmpl"));
    let r = run(&ws.join("captures/esp-bug-12671.pcapng.gz"), keys);
    assert!(r.esp_failed.is_empty(), "{:?}", r.esp_failed);
    assert_eq!(r.esp.len(), 6);
    let data = hex("08090a0b0c0d0e0f1011121314151617");
    for (frame, next_header, verified, inner) in &r.esp {
        assert_eq!((*next_header, *verified), (4, true), "frame {frame}");
        assert!(contains(inner, &data), "frame {frame}: ICMP data missing");
    }
}

/// tcpdump's test driver's key for tests esp1 and espudp1 (SOURCES.md).
const ESP1_KEY: &str =
    "0x12345678@192.1.2.45 3des-cbc-hmac96:0x4043434545464649494a4a4c4c4f4f515152525454575758";

#[test]
fn tcpdump_esp_captures_decrypt_with_tcpdumps_secrets() {
    let Some(root) = corpus::corpus_or_skip() else {
        return;
    };
    let td = root.join("tcpdump/tests");
    let secrets = || table(&td.join("esp-secrets.txt"));
    let inline = || KeyTable::parse(ESP1_KEY, Path::new("TESTrun esp1")).unwrap();
    let cases: [(&str, KeyTable); 4] = [
        ("02-sunrise-sunset-esp.pcap", inline()),
        ("espudp1.pcap", inline()),
        ("08-sunrise-sunset-esp2.pcap", secrets()),
        ("08-sunrise-sunset-aes.pcap", secrets()),
    ];
    for (name, keys) in cases {
        let r = run(&td.join(name), keys);
        assert!(r.esp_failed.is_empty(), "{name}: {:?}", r.esp_failed);
        assert_eq!(r.esp.len(), 8, "{name}");
        for (frame, next_header, verified, inner) in &r.esp {
            // tcpdump's "-hmac96" only skips the ICV: nothing is verified, and the
            // padding and inner IPv4 header had to pass instead.
            assert_eq!(
                (*next_header, *verified),
                (4, false),
                "{name} frame {frame}"
            );
            let proto = if name.contains("esp2") { 50 } else { 1 };
            assert_eq!(inner[9], proto, "{name} frame {frame}: inner protocol");
        }
    }
}

#[test]
fn tcpdump_ikev2_capture_has_an_icv_that_matches_neither_key() {
    let Some(root) = corpus::corpus_or_skip() else {
        return;
    };
    let td = root.join("tcpdump/tests");
    let capture = td.join("ikev2pI2.pcap");
    // tcpdump never checks the ICV; this synthetic capture's ICV is not an HMAC-SHA1-96
    // of the message under SK_ai (nor SK_ar), so with the ICV checked it is refused...
    let r = run(&capture, table(&td.join("ikev2pI2-secrets.txt")));
    assert_eq!(r.ike_failed, vec![(2, "icv-mismatch".to_string())]);
    // ...and with the ICV skipped it decrypts to what tcpdump prints: IDi "west", AUTH.
    let unchecked = "0001020304050607,c02e7a3031a03188,3f44bf47cafd8150591deb088199fcbf,\
        bedb67ec7dc3d00cccac42e70cd63bde,\"AES-CBC-128 [RFC3602]\",,,\
        \"ANY 96-bits of Authentication [No Checking]\"";
    let r = run(
        &capture,
        KeyTable::parse(unchecked, Path::new("unchecked")).unwrap(),
    );
    assert_eq!(r.payloads, vec![(2, vec![35, 39])]);
    assert!(contains(&r.ike[0].1, b"west"));
}
