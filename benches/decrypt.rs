//! ESP decryption throughput with `--keys` (packets and bytes per second), through
//! [`Decryptor::esp`] as the engine calls it: key lookup, ICV check, decryption into the
//! reused scratch buffer, trailer check.
//!
//! `cargo bench --bench decrypt`. Packets of 1400 bytes of payload, sealed here with the
//! same RustCrypto crates.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use cipher::{BlockEncryptMut, KeyIvInit};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hmac::{Hmac, Mac};
use ipsecmon::decrypt::Decryptor;
use ipsecmon::keys::KeyTable;
use ipsecmon::wire::{Addrs, Encap, EspPacket};

const INNER: usize = 1400;
const CBC_SPI: u32 = 0xc001;
const GCM_SPI: u32 = 0xc002;

fn table() -> KeyTable {
    let text = format!(
        "\"IPv4\",\"*\",\"*\",\"0x{CBC_SPI:08x}\",\"AES-CBC [RFC3602]\",\"0x{}\",\
         \"HMAC-SHA-1-96 [RFC2404]\",\"0x{}\"\n\
         \"IPv4\",\"*\",\"*\",\"0x{GCM_SPI:08x}\",\"AES-GCM with 16 octet ICV [RFC4106]\",\
         \"0x{}\",\"NULL\",\"\"\n",
        "11".repeat(16),
        "22".repeat(20),
        "33".repeat(20)
    );
    KeyTable::parse(&text, Path::new("bench-keys")).unwrap()
}

/// A tunnel-mode plaintext (IPv4 header claiming the whole length) with its trailer,
/// padded to `block`.
fn plaintext(block: usize) -> Vec<u8> {
    let mut p = vec![0u8; INNER];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(INNER as u16).to_be_bytes());
    let pad = (block - (INNER + 2) % block) % block;
    p.extend((1..=pad).map(|i| i as u8));
    p.extend_from_slice(&[pad as u8, 4]);
    p
}

fn cbc_sha1_payload() -> Vec<u8> {
    let iv = [7u8; 16];
    let mut p = plaintext(16);
    let mut enc = cbc::Encryptor::<aes::Aes128>::new_from_slices(&[0x11; 16], &iv).unwrap();
    for b in p.chunks_exact_mut(16) {
        enc.encrypt_block_mut(b.into());
    }
    let mut payload = [iv.to_vec(), p].concat();
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(&[0x22; 20]).unwrap();
    mac.update(&CBC_SPI.to_be_bytes());
    mac.update(&1u32.to_be_bytes());
    mac.update(&payload);
    payload.extend_from_slice(&mac.finalize().into_bytes()[..12]);
    payload
}

fn gcm_payload() -> Vec<u8> {
    let iv = [9u8; 8];
    let mut p = plaintext(4);
    let mut nonce = [0x33u8; 12];
    nonce[4..].copy_from_slice(&iv);
    let mut aad = GCM_SPI.to_be_bytes().to_vec();
    aad.extend_from_slice(&1u32.to_be_bytes());
    let tag = aes_gcm::AesGcm::<aes::Aes128, U12, U16>::new_from_slice(&[0x33; 16])
        .unwrap()
        .encrypt_in_place_detached(aes_gcm::Nonce::<U12>::from_slice(&nonce), &aad, &mut p)
        .unwrap();
    [iv.to_vec(), p, tag.to_vec()].concat()
}

fn packet(spi: u32, payload: &[u8]) -> EspPacket<'_> {
    EspPacket {
        addrs: Addrs {
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            ports: None,
        },
        encap: Encap::None,
        spi,
        seq: 1,
        payload,
    }
}

fn esp(c: &mut Criterion) {
    let mut d = Decryptor::new(Arc::new(table()));
    let mut g = c.benchmark_group("esp-decrypt");
    for (name, spi, payload) in [
        (
            "AES-128-CBC + HMAC-SHA1-96, 1400 B",
            CBC_SPI,
            cbc_sha1_payload(),
        ),
        ("AES-128-GCM-16, 1400 B", GCM_SPI, gcm_payload()),
    ] {
        let p = packet(spi, &payload);
        assert!(matches!(d.esp(&p), Some(Ok(_))), "{name} does not decrypt");
        g.throughput(Throughput::Bytes(payload.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| black_box(d.esp(black_box(&p)).map(|r| r.map(|x| x.inner.len()))))
        });
    }
    g.finish();
}

criterion_group!(benches, esp);
criterion_main!(benches);
