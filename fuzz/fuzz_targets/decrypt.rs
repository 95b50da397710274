//! The decryption path under arbitrary input, with a fixed key table: IKEv2 SK/SKF
//! payloads, IKEv1 encrypted messages and ESP packets.
//!
//! The input is a sequence of records `[selector][length: u16 BE][bytes]` (a last record
//! cut short takes what is left). The selector's high bit picks ESP (the bytes are the
//! payload after the ESP header) or IKE (the bytes are a whole message); its low bits
//! pick which table entry the record is stamped with (the SPIs or cookie are written
//! over the first 16 bytes of an IKE message, the SPI of an ESP packet is set). Most
//! entries cannot check an ICV ("no checking", IKEv1), so arbitrary ciphertext reaches
//! the padding, trailer and payload parsers behind the cipher. Every run starts with a
//! cleartext IKEv1 Main Mode prelude (chosen transform, both KE payloads), so IKEv1 IVs
//! can be derived.
//!
//! Checks: nothing panics; a failed decryption adds no payload; decrypted payloads stay
//! within the payload bound; an ESP plaintext is shorter than its packet.

#![no_main]

use std::path::Path;
use std::sync::Arc;

use ipsecmon::decrypt::{Decryptor, IkeDecrypt};
use ipsecmon::keys::KeyTable;
use ipsecmon::wire::ike::{self, ParseContext, MAX_PAYLOADS};
use ipsecmon::wire::{Addrs, Encap, EspPacket};
use libfuzzer_sys::fuzz_target;

/// IKEv2 SPI pairs (initiator SPI, responder SPI) and their table lines' algorithms.
const IKEV2: [(u64, &str, &str); 5] = [
    (
        1,
        "AES-CBC-128 [RFC3602]",
        "ANY 96-bits of Authentication [No Checking]",
    ),
    (
        2,
        "AES-CTR-128 [RFC5930]",
        "ANY 128-bits of Authentication [No Checking]",
    ),
    (3, "3DES [RFC2451]", "HMAC_SHA1_96 [RFC2404]"),
    (
        4,
        "AES-GCM-128 with 8 octet ICV [RFC5282]",
        "NONE [RFC4306]",
    ),
    (
        5,
        "AES-CCM-128 with 16 octet ICV [RFC5282]",
        "NONE [RFC4306]",
    ),
];

/// ESP SPIs and their table lines' algorithms.
const ESP: [(u32, &str, &str); 5] = [
    (
        0x101,
        "AES-CBC [RFC3602]",
        "ANY 96 bit authentication [no checking]",
    ),
    (0x102, "TripleDES-CBC [RFC2451]", "NULL"),
    (0x103, "AES-CTR [RFC3686]", "HMAC-SHA-256-128 [RFC4868]"),
    (0x104, "AES-GCM with 12 octet ICV [RFC4106]", "NULL"),
    (0x105, "NULL", "ANY 64 bit authentication [no checking]"),
];

/// The IKEv1 initiator cookie of the table's IKEv1 line.
const COOKIE: u64 = 0x00c0_ffee_0000_0001;

fn key_len(name: &str) -> usize {
    match name {
        n if n.starts_with("3DES") || n.starts_with("Triple") => 24,
        n if n.contains("CTR") || n.contains("GCM") => 20,
        n if n.contains("CCM") => 19,
        n if n.starts_with("NULL") => 0,
        _ => 16,
    }
}

fn table() -> KeyTable {
    let mut text = format!("{COOKIE:016x},{}\n", "5a".repeat(16));
    for (spi, encr, integ) in IKEV2 {
        let k = "11".repeat(key_len(encr));
        let a = if integ.starts_with("HMAC") {
            "22".repeat(20)
        } else {
            String::new()
        };
        text += &format!("{spi:016x},{spi:016x},{k},{k},\"{encr}\",{a},{a},\"{integ}\"\n");
    }
    for (spi, encr, integ) in ESP {
        let k = "33".repeat(key_len(encr));
        let a = if integ.starts_with("HMAC") {
            "44".repeat(32)
        } else {
            String::new()
        };
        text += &format!(
            "\"IPv4\",\"*\",\"*\",\"0x{spi:08x}\",\"{encr}\",\"0x{k}\",\"{integ}\",\"0x{a}\"\n"
        );
    }
    KeyTable::parse(&text, Path::new("fuzz-keys")).expect("the fuzz key table parses")
}

fn addrs() -> Addrs {
    Addrs {
        src: "192.0.2.1".parse().unwrap(),
        dst: "192.0.2.2".parse().unwrap(),
        ports: Some((500, 500)),
    }
}

fn generic(next: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![next, 0];
    p.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    p.extend_from_slice(body);
    p
}

/// An IKEv1 Main Mode message with the given cookies, first payload and body.
fn v1(spi_r: u64, next: u8, body: &[u8]) -> Vec<u8> {
    let mut m = COOKIE.to_be_bytes().to_vec();
    m.extend_from_slice(&spi_r.to_be_bytes());
    m.extend_from_slice(&[next, 0x10, 2, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&((28 + body.len()) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// MM1 to MM4 in the clear: AES-128-CBC with SHA-1 chosen, both public values.
fn prelude(d: &mut Decryptor) {
    let attrs = [0x80, 1, 0, 7, 0x80, 14, 0, 128, 0x80, 2, 0, 2];
    let mut t = vec![0, 0, 0, (8 + attrs.len()) as u8, 1, 1, 0, 0];
    t.extend_from_slice(&attrs);
    let mut p = vec![0, 0, 0, (8 + t.len()) as u8, 1, 1, 0, 1];
    p.extend_from_slice(&t);
    let mut sa = vec![0, 0, 0, 1, 0, 0, 0, 1];
    sa.extend_from_slice(&p);
    let ke = |v: u8| [generic(10, &[v; 96]), generic(0, &[v; 16])].concat();
    let msgs = [
        (v1(0, 1, &generic(0, &sa)), "192.0.2.1"),
        (v1(2, 1, &generic(0, &sa)), "192.0.2.2"),
        (v1(2, 4, &ke(1)), "192.0.2.1"),
        (v1(2, 4, &ke(2)), "192.0.2.2"),
    ];
    for (m, src) in msgs {
        let a = Addrs {
            src: src.parse().unwrap(),
            ..addrs()
        };
        let mut msg = ike::parse_message(&m, ParseContext::default()).expect("prelude parses");
        d.ike(&a, &m, &mut msg, ParseContext::default());
    }
}

fn records(mut data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (&sel, rest) = data.split_first()?;
        let len = match rest {
            [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
            _ => 0,
        };
        let body = rest.get(2..).unwrap_or_default();
        let (frame, tail) = body.split_at(len.min(body.len()));
        data = tail;
        Some((sel, frame))
    })
}

fn ike_record(d: &mut Decryptor, sel: u8, bytes: &[u8]) {
    let mut m = bytes.to_vec();
    if m.len() >= 16 {
        let (spi_i, spi_r) = match usize::from(sel & 0x07) {
            i if i < IKEV2.len() => (IKEV2[i].0, IKEV2[i].0),
            _ => (COOKIE, 2),
        };
        m[..8].copy_from_slice(&spi_i.to_be_bytes());
        m[8..16].copy_from_slice(&spi_r.to_be_bytes());
    }
    let ctx = ParseContext::default();
    let Ok(mut msg) = ike::parse_message(&m, ctx) else {
        return;
    };
    let before = msg.payloads.len();
    let r = d.ike(&addrs(), &m, &mut msg, ctx);
    assert!(msg.payloads.len() <= MAX_PAYLOADS, "payload bound");
    if matches!(
        r,
        None | Some(IkeDecrypt::Failed(_)) | Some(IkeDecrypt::FragmentStored { .. })
    ) {
        assert_eq!(
            msg.payloads.len(),
            before,
            "payloads added without decryption"
        );
    }
}

fn esp_record(d: &mut Decryptor, sel: u8, bytes: &[u8]) {
    let spi = ESP[usize::from(sel & 0x07) % ESP.len()].0;
    let packet = EspPacket {
        addrs: Addrs {
            ports: None,
            ..addrs()
        },
        encap: Encap::None,
        spi,
        seq: u32::from(sel),
        payload: bytes,
    };
    if let Some(Ok(plain)) = d.esp(&packet) {
        assert!(
            plain.inner.len() < bytes.len(),
            "plaintext longer than the packet"
        );
        let _ = plain.summary();
    }
}

fuzz_target!(|data: &[u8]| {
    let mut d = Decryptor::new(Arc::new(table()));
    prelude(&mut d);
    for (sel, bytes) in records(data) {
        if sel & 0x80 != 0 {
            esp_record(&mut d, sel, bytes);
        } else {
            ike_record(&mut d, sel, bytes);
        }
    }
});
