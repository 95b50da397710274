//! Known-answer tests of the primitives (RFC test vectors), and round trips through the
//! [`Decryptor`] of messages and packets sealed here with the RustCrypto encryptors.

use std::net::IpAddr;
use std::path::Path;

use aes_gcm::aead::consts::{U11, U12, U16};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use cipher::{BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};

use super::primitive::*;
use super::*;
use crate::keys::{Cipher, MacAlg};
use crate::wire::ike::{parse_message, Payload};
use crate::wire::Encap;

fn h(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The SPI of the first ESP/AH proposal with a 4-byte SPI.
fn child_spi(msg: &IkeMessage) -> Option<u32> {
    msg.payloads.iter().find_map(|p| match &p.body {
        PayloadBody::Sa { proposals, .. } => proposals
            .iter()
            .find(|pr| pr.spi_size == 4)
            .map(|pr| pr.spi as u32),
        _ => None,
    })
}

// ---------------------------------------------------------------- primitives

#[test]
fn aes_cbc_rfc3602_case_1() {
    let key = h("06a9214036b8a15b512e03d534120006");
    let iv = h("3dafba429d9eb430b422da802c9fac41");
    let mut buf = h("e353779c1079aeb82708942dbe77181a");
    cbc_decrypt(Cipher::AesCbc { key_len: 16 }, &key, &iv, &mut buf).unwrap();
    assert_eq!(buf, b"Single block msg");
    let mut odd = vec![0u8; 15];
    let e = cbc_decrypt(Cipher::AesCbc { key_len: 16 }, &key, &iv, &mut odd);
    assert_eq!(e, Err(DecryptError::BadLength));
}

#[test]
fn aes_ctr_rfc3686_vector_1() {
    let key = h("ae6852f8121067cc4bf7a5765577f39e");
    let block = super::primitive::counter_block(&h("00000030"), &h("0000000000000000"));
    let mut buf = h("e4095d4fb7a7b3792d6175a3261311b8");
    ctr_apply(&key, &block, &mut buf).unwrap();
    assert_eq!(buf, b"Single block msg");
}

#[test]
fn aes_gcm_zero_vector_with_every_icv_length() {
    // GCM specification (McGrew & Viega) test case 2: zero key, IV and plaintext block.
    let key = [0u8; 16];
    let nonce = [0u8; 12];
    let tag = h("ab6e47d42cec13bdf53a67b21257bddf");
    for icv_len in [16, 12, 8] {
        let mut buf = h("0388dace60b6a392f328c2b971b2fe78");
        gcm_open(&key, &nonce, &[], &mut buf, &tag[..icv_len]).unwrap();
        assert_eq!(buf, [0u8; 16], "ICV {icv_len}");
        let mut bad = h("0388dace60b6a392f328c2b971b2fe79");
        let e = gcm_open(&key, &nonce, &[], &mut bad, &tag[..icv_len]);
        assert_eq!(e, Err(DecryptError::IcvMismatch), "ICV {icv_len}");
    }
}

#[test]
fn hmac_rfc2202_and_rfc4231_case_1() {
    let data: &[&[u8]] = &[b"Hi ", b"There"];
    let k20 = [0x0b; 20];
    let sha1 = h("b617318655057264e28bc0b6fb378c8ef146be00");
    assert!(hmac_ok(MacAlg::Sha1, &k20, data, &sha1[..12]));
    assert!(hmac_ok(MacAlg::Sha1, &k20, data, &sha1));
    assert!(!hmac_ok(MacAlg::Sha1, &[0x0c; 20], data, &sha1[..12]));
    let md5 = h("9294727a3638bb1c13f48ef8158bfc9d");
    assert!(hmac_ok(MacAlg::Md5, &[0x0b; 16], data, &md5[..12]));
    let sha256 = h("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    assert!(hmac_ok(MacAlg::Sha256, &k20, data, &sha256[..16]));
    let sha384 = h(
        "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c\
                    faea9ea9076ede7f4af152e8b2fa9cb6",
    );
    assert!(hmac_ok(MacAlg::Sha384, &k20, data, &sha384[..24]));
    let sha512 = h(
        "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde\
                    daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
    );
    assert!(hmac_ok(MacAlg::Sha512, &k20, data, &sha512[..32]));
    assert!(!hmac_ok(MacAlg::Sha1, &k20, data, &[0; 21]));
}

#[test]
fn aes_ccm_round_trip_with_each_icv_length() {
    let key = [7u8; 16];
    let nonce = [1u8; 11];
    let aad = b"header";
    for icv_len in [8usize, 12, 16] {
        let mut buf = b"inner payloads".to_vec();
        let tag = ccm_seal(&key, &nonce, aad, &mut buf, icv_len);
        let mut opened = buf.clone();
        ccm_open(&key, &nonce, aad, &mut opened, &tag).unwrap();
        assert_eq!(opened, b"inner payloads");
        let e = ccm_open(&key, &nonce, b"other", &mut buf, &tag);
        assert_eq!(e, Err(DecryptError::IcvMismatch));
    }
}

#[test]
fn digests_have_their_lengths() {
    assert_eq!(digest(MacAlg::Md5, &[b"x"]).1, 16);
    assert_eq!(digest(MacAlg::Sha1, &[b"x"]).1, 20);
    assert_eq!(digest(MacAlg::Sha512, &[b"x"]).1, 64);
    let sha1_abc = h("a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(&digest(MacAlg::Sha1, &[b"a", b"bc"]).0[..20], &sha1_abc[..]);
}

// ---------------------------------------------------------------- sealing helpers

fn ccm_seal(key: &[u8], nonce: &[u8; 11], aad: &[u8], buf: &mut [u8], icv: usize) -> Vec<u8> {
    let n = ccm::Nonce::<U11>::from_slice(nonce);
    match icv {
        8 => ccm::Ccm::<aes::Aes128, aes_gcm::aead::consts::U8, U11>::new_from_slice(key)
            .unwrap()
            .encrypt_in_place_detached(n, aad, buf)
            .unwrap()
            .to_vec(),
        12 => ccm::Ccm::<aes::Aes128, U12, U11>::new_from_slice(key)
            .unwrap()
            .encrypt_in_place_detached(n, aad, buf)
            .unwrap()
            .to_vec(),
        _ => ccm::Ccm::<aes::Aes128, U16, U11>::new_from_slice(key)
            .unwrap()
            .encrypt_in_place_detached(n, aad, buf)
            .unwrap()
            .to_vec(),
    }
}

fn gcm_seal(key: &[u8], nonce: &[u8; 12], aad: &[u8], buf: &mut [u8]) -> Vec<u8> {
    aes_gcm::AesGcm::<aes::Aes128, U12, U16>::new_from_slice(key)
        .unwrap()
        .encrypt_in_place_detached(aes_gcm::Nonce::<U12>::from_slice(nonce), aad, buf)
        .unwrap()
        .to_vec()
}

fn aes_cbc_seal(key: &[u8], iv: &[u8], buf: &mut [u8]) {
    let mut enc = cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv).unwrap();
    for block in buf.chunks_exact_mut(16) {
        enc.encrypt_block_mut(block.into());
    }
}

fn tdes_cbc_seal(key: &[u8], iv: &[u8], buf: &mut [u8]) {
    let mut enc = cbc::Encryptor::<des::TdesEde3>::new_from_slices(key, iv).unwrap();
    for block in buf.chunks_exact_mut(8) {
        enc.encrypt_block_mut(block.into());
    }
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// A generic payload: next payload, reserved, length, body.
fn generic(next: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![next, 0];
    p.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    p.extend_from_slice(body);
    p
}

/// An ISAKMP / IKEv2 header; the length is patched by [`finish`].
fn header(
    spi_i: u64,
    spi_r: u64,
    next: u8,
    version: u8,
    exch: u8,
    flags: u8,
    msgid: u32,
) -> Vec<u8> {
    let mut m = spi_i.to_be_bytes().to_vec();
    m.extend_from_slice(&spi_r.to_be_bytes());
    m.extend_from_slice(&[next, version << 4, exch, flags]);
    m.extend_from_slice(&msgid.to_be_bytes());
    m.extend_from_slice(&[0; 4]);
    m
}

fn finish(mut m: Vec<u8>) -> Vec<u8> {
    let len = (m.len() as u32).to_be_bytes();
    m[24..28].copy_from_slice(&len);
    m
}

fn addrs() -> crate::wire::Addrs {
    crate::wire::Addrs {
        src: "192.0.2.1".parse().unwrap(),
        dst: "192.0.2.2".parse().unwrap(),
        ports: Some((500, 500)),
    }
}

fn table(text: &str) -> Arc<KeyTable> {
    Arc::new(KeyTable::parse(text, Path::new("test-keys")).unwrap())
}

fn decrypted(msg: &IkeMessage) -> Vec<&Payload> {
    msg.payloads.iter().filter(|p| p.decrypted).collect()
}

fn notify_types(msg: &IkeMessage) -> Vec<u16> {
    msg.notify_types().collect()
}

// ---------------------------------------------------------------- IKEv2

const SPI_I: u64 = 0x1111_2222_3333_4444;
const SPI_R: u64 = 0x5555_6666_7777_8888;
const SK_EI: &str = "000102030405060708090a0b0c0d0e0f";
const SK_AI: &str = "2021222324252627282920212223242526272829";

fn cbc_sha1_keys() -> String {
    format!(
        "{SPI_I:016x},{SPI_R:016x},{SK_EI},{SK_EI},\"AES-CBC-128 [RFC3602]\",{SK_AI},{SK_AI},\
         \"HMAC_SHA1_96 [RFC2404]\""
    )
}

/// The inner chain of an IKE_AUTH response that failed: N(AUTHENTICATION_FAILED).
fn auth_failed_notify() -> Vec<u8> {
    generic(0, &[0, 0, 0, 24])
}

/// An IKEv2 message whose SK payload holds `inner` (first payload type `first`), sealed
/// with AES-CBC-128 and HMAC-SHA1-96 under `ek`/`ak`.
fn sk_cbc_message(first: u8, inner: &[u8], ek: &[u8], ak: &[u8], flags: u8) -> Vec<u8> {
    let mut plain = inner.to_vec();
    let pad = 15 - plain.len() % 16;
    plain.extend(std::iter::repeat_n(0u8, pad));
    plain.push(pad as u8);
    let iv = [0x42u8; 16];
    aes_cbc_seal(ek, &iv, &mut plain);
    let mut body = iv.to_vec();
    body.extend_from_slice(&plain);
    body.extend_from_slice(&[0; 12]);
    let mut m = header(SPI_I, SPI_R, 46, 2, 35, flags, 1);
    m.extend_from_slice(&generic(first, &body));
    let mut m = finish(m);
    let n = m.len();
    let icv = hmac_sha1(ak, &m[..n - 12]);
    m[n - 12..].copy_from_slice(&icv[..12]);
    m
}

fn open_v2(d: &mut Decryptor, bytes: &[u8]) -> (IkeMessage, Option<IkeDecrypt>) {
    let mut msg = parse_message(bytes, ParseContext::default()).unwrap();
    let r = d.ike(&addrs(), bytes, &mut msg, ParseContext::default());
    (msg, r)
}

#[test]
fn ikev2_cbc_sha1_decrypts_and_exposes_the_notify() {
    let mut d = Decryptor::new(table(&cbc_sha1_keys()));
    let bytes = sk_cbc_message(41, &auth_failed_notify(), &h(SK_EI), &h(SK_AI), 0x20);
    let (msg, r) = open_v2(&mut d, &bytes);
    assert_eq!(r, Some(IkeDecrypt::Decrypted { verified: true }));
    assert_eq!(notify_types(&msg), vec![24]);
    assert_eq!(decrypted(&msg).len(), 1);
    assert!(msg.error.is_none());
}

#[test]
fn ikev2_wrong_integrity_key_is_not_authenticated() {
    let mut d = Decryptor::new(table(&cbc_sha1_keys()));
    let bytes = sk_cbc_message(41, &auth_failed_notify(), &h(SK_EI), &[9; 20], 0x20);
    let (msg, r) = open_v2(&mut d, &bytes);
    assert_eq!(r, Some(IkeDecrypt::Failed(DecryptError::IcvMismatch)));
    assert!(decrypted(&msg).is_empty());
}

#[test]
fn ikev2_without_a_key_for_the_spis_is_left_alone() {
    let mut d = Decryptor::new(table(
        &cbc_sha1_keys().replace("5555666677778888", "5555666677778889"),
    ));
    let bytes = sk_cbc_message(41, &auth_failed_notify(), &h(SK_EI), &h(SK_AI), 0x20);
    assert_eq!(open_v2(&mut d, &bytes).1, None);
}

#[test]
fn ikev2_second_key_line_for_the_same_spis_is_tried() {
    let wrong = cbc_sha1_keys().replace(SK_AI, "3031323334353637383930313233343536373839");
    let mut d = Decryptor::new(table(&format!("{wrong}\n{}", cbc_sha1_keys())));
    let bytes = sk_cbc_message(41, &auth_failed_notify(), &h(SK_EI), &h(SK_AI), 0x20);
    assert_eq!(
        open_v2(&mut d, &bytes).1,
        Some(IkeDecrypt::Decrypted { verified: true })
    );
}

/// An IKEv2 message sealed with AES-GCM-128 (16-byte ICV) and the given salt.
fn sk_gcm_message(inner: &[u8], key: &[u8], salt: &[u8], icv_len: usize) -> Vec<u8> {
    let mut plain = inner.to_vec();
    plain.push(0);
    let iv = [0x17u8; 8];
    let mut m = header(SPI_I, SPI_R, 46, 2, 37, 0x08, 2);
    let sk_len = 4 + 8 + plain.len() + icv_len;
    m.extend_from_slice(&[41, 0]);
    m.extend_from_slice(&(sk_len as u16).to_be_bytes());
    let total = (28 + sk_len) as u32;
    m[24..28].copy_from_slice(&total.to_be_bytes());
    let nonce = super::primitive::salt_iv::<12>(salt, &iv);
    let tag = gcm_seal(key, &nonce, &m, &mut plain);
    m.extend_from_slice(&iv);
    m.extend_from_slice(&plain);
    m.extend_from_slice(&tag[..icv_len]);
    m
}

#[test]
fn ikev2_gcm_with_16_and_8_byte_icvs() {
    let key = [3u8; 16];
    let salt = [9u8, 8, 7, 6];
    for icv in [16usize, 8] {
        let name = format!("AES-GCM-128 with {icv} octet ICV [RFC5282]");
        let material = format!("{}{}", "03".repeat(16), "09080706");
        let line = format!(
            "{SPI_I:016x},{SPI_R:016x},{material},{material},\"{name}\",,,\"NONE [RFC4306]\""
        );
        let mut d = Decryptor::new(table(&line));
        let bytes = sk_gcm_message(&auth_failed_notify(), &key, &salt, icv);
        let (msg, r) = open_v2(&mut d, &bytes);
        assert_eq!(
            r,
            Some(IkeDecrypt::Decrypted { verified: true }),
            "ICV {icv}"
        );
        assert_eq!(notify_types(&msg), vec![24]);
        let mut damaged = bytes.clone();
        damaged[29] ^= 1; // the SK payload header is associated data
        let (_, r) = open_v2(&mut d, &damaged);
        assert_eq!(r, Some(IkeDecrypt::Failed(DecryptError::IcvMismatch)));
    }
}

#[test]
fn ikev2_unchecked_integrity_with_a_wrong_key_is_not_decrypted() {
    let line = format!(
        "{SPI_I:016x},{SPI_R:016x},{SK_EI},{SK_EI},\"AES-CBC-128 [RFC3602]\",,,\
         \"ANY 96-bits of Authentication [No Checking]\""
    );
    let mut d = Decryptor::new(table(&line));
    let good = sk_cbc_message(41, &auth_failed_notify(), &h(SK_EI), &h(SK_AI), 0x20);
    assert_eq!(
        open_v2(&mut d, &good).1,
        Some(IkeDecrypt::Decrypted { verified: false })
    );
    let inner = [auth_failed_notify(), generic(0, &[1, 2, 3, 4, 5, 6, 7, 8])].concat();
    let mut chain = inner.clone();
    chain[0] = 41;
    let wrong = sk_cbc_message(41, &chain, &[0xee; 16], &h(SK_AI), 0x20);
    let (msg, r) = open_v2(&mut d, &wrong);
    assert!(
        matches!(
            r,
            Some(IkeDecrypt::Failed(
                DecryptError::BadPlaintext | DecryptError::BadPadding
            ))
        ),
        "{r:?}"
    );
    assert!(decrypted(&msg).is_empty() && msg.error.is_none());
}

/// One SKF fragment (RFC 7383 §2.5) sealed with AES-CBC-128 / HMAC-SHA1-96.
fn skf_fragment(number: u16, total: u16, first: u8, part: &[u8]) -> Vec<u8> {
    let mut plain = part.to_vec();
    let pad = 15 - plain.len() % 16;
    plain.extend(std::iter::repeat_n(0u8, pad));
    plain.push(pad as u8);
    let iv = [number as u8; 16];
    aes_cbc_seal(&h(SK_EI), &iv, &mut plain);
    let mut body = number.to_be_bytes().to_vec();
    body.extend_from_slice(&total.to_be_bytes());
    body.extend_from_slice(&iv);
    body.extend_from_slice(&plain);
    body.extend_from_slice(&[0; 12]);
    let mut m = header(SPI_I, SPI_R, 53, 2, 35, 0x20, 1);
    m.extend_from_slice(&generic(if number == 1 { first } else { 0 }, &body));
    let mut m = finish(m);
    let n = m.len();
    let icv = hmac_sha1(&h(SK_AI), &m[..n - 12]);
    m[n - 12..].copy_from_slice(&icv[..12]);
    m
}

#[test]
fn ikev2_fragments_are_reassembled_in_order_of_number() {
    let mut d = Decryptor::new(table(&cbc_sha1_keys()));
    let idr = generic(41, &[2, 0, 0, 0, b'b', b'o', b'b']);
    let whole = [idr, auth_failed_notify()].concat();
    let (a, b) = whole.split_at(5);
    let second = skf_fragment(2, 2, 0, b);
    let first = skf_fragment(1, 2, 36, a);
    let (msg2, r2) = open_v2(&mut d, &second);
    assert_eq!(r2, Some(IkeDecrypt::FragmentStored { verified: true }));
    assert!(decrypted(&msg2).is_empty());
    assert_eq!(d.fragments.len(), 1);
    let (msg1, r1) = open_v2(&mut d, &first);
    assert_eq!(r1, Some(IkeDecrypt::Decrypted { verified: true }));
    let types: Vec<u8> = decrypted(&msg1).iter().map(|p| p.payload_type).collect();
    assert_eq!(types, vec![36, 41]);
    assert_eq!(notify_types(&msg1), vec![24]);
    assert_eq!(d.fragments.len(), 0);
}

#[test]
fn fragment_reassembly_is_bounded() {
    let mut f = super::ikev2::Fragments::default();
    for m in 0..(MAX_PENDING as u32 + 5) {
        assert!(f.add((1, 2, m, 0), (1, 2), 41, b"x", true).is_none());
    }
    assert_eq!(f.len(), MAX_PENDING);
    assert!(f
        .add((1, 2, 99, 0), (1, MAX_FRAGMENTS + 1), 41, b"x", true)
        .is_none());
    assert!(f.add((1, 2, 98, 0), (3, 2), 41, b"x", true).is_none());
    let big = vec![0u8; MAX_REASSEMBLED];
    assert!(f.add((1, 2, 97, 0), (1, 2), 41, &big, true).is_none());
    assert!(f.add((1, 2, 97, 0), (2, 2), 41, b"more", true).is_none());
    // A total that changes between fragments of one message is refused.
    assert!(f.add((1, 2, 97, 0), (2, 3), 41, b"x", true).is_none());
}

// ---------------------------------------------------------------- IKEv1

const CKY_I: u64 = 0xabcd_0000_0000_0001;
const CKY_R: u64 = 0xabcd_0000_0000_0002;
const V1_KEY: &str = "0f0e0d0c0b0a09080706050403020100";

/// The responder's MM2: SA with one ISAKMP proposal, AES-128-CBC and SHA-1.
fn mm2() -> Vec<u8> {
    let attrs = [
        0x80, 1, 0, 7, 0x80, 14, 0, 128, 0x80, 2, 0, 2, 0x80, 3, 0, 1,
    ];
    let mut transform = vec![0, 0, 0, (8 + attrs.len()) as u8, 1, 1, 0, 0];
    transform.extend_from_slice(&attrs);
    let mut proposal = vec![0, 0, 0, (8 + transform.len()) as u8, 1, 1, 0, 1];
    proposal.extend_from_slice(&transform);
    let mut sa = vec![0, 0, 0, 1, 0, 0, 0, 1];
    sa.extend_from_slice(&proposal);
    let mut m = header(CKY_I, CKY_R, 1, 1, 2, 0, 0);
    m.extend_from_slice(&generic(0, &sa));
    finish(m)
}

/// MM3 / MM4: a KE and a nonce.
fn mm_ke(spi_r: u64, public: &[u8]) -> Vec<u8> {
    let mut m = header(CKY_I, spi_r, 4, 1, 2, 0, 0);
    m.extend_from_slice(&generic(10, public));
    m.extend_from_slice(&generic(0, &[0x33; 16]));
    finish(m)
}

/// An encrypted IKEv1 message of `exch`/`msgid` holding `chain` (first payload `first`),
/// sealed with AES-128-CBC under `iv`; returns the message and its last ciphertext block.
fn v1_sealed(exch: u8, msgid: u32, first: u8, chain: &[u8], iv: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut plain = chain.to_vec();
    plain.resize(chain.len().div_ceil(16) * 16, 0);
    aes_cbc_seal(&h(V1_KEY), iv, &mut plain);
    let last = plain[plain.len() - 16..].to_vec();
    let mut m = header(CKY_I, CKY_R, first, 1, exch, 1, msgid);
    m.extend_from_slice(&plain);
    (finish(m), last)
}

fn sha1(parts: &[&[u8]]) -> Vec<u8> {
    digest(MacAlg::Sha1, parts).0[..20].to_vec()
}

/// A Quick Mode first message: HASH(20), SA with an ESP proposal and SPI, Nonce.
fn qm1_chain(spi: u32) -> Vec<u8> {
    let mut transform = vec![0, 0, 0, 12, 1, 12, 0, 0, 0x80, 4, 0, 1];
    transform[3] = transform.len() as u8;
    let mut proposal = vec![0, 0, 0, 0, 1, 3, 4, 1];
    proposal.extend_from_slice(&spi.to_be_bytes());
    proposal.extend_from_slice(&transform);
    proposal[3] = proposal.len() as u8;
    let mut sa = vec![0, 0, 0, 1, 0, 0, 0, 1];
    sa.extend_from_slice(&proposal);
    [
        generic(1, &[0x44; 20]),
        generic(10, &sa),
        generic(0, &[0x55; 16]),
    ]
    .concat()
}

fn feed_v1(d: &mut Decryptor, bytes: &[u8]) -> (IkeMessage, Option<IkeDecrypt>) {
    feed_from(d, bytes, true)
}

/// Feeds an IKEv1 message sent by the initiator (192.0.2.1) or the responder.
fn feed_from(d: &mut Decryptor, bytes: &[u8], initiator: bool) -> (IkeMessage, Option<IkeDecrypt>) {
    let mut msg = parse_message(bytes, ParseContext::default()).unwrap();
    let (src, dst) = if initiator {
        ("192.0.2.1", "192.0.2.2")
    } else {
        ("192.0.2.2", "192.0.2.1")
    };
    let a = crate::wire::Addrs {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        ports: Some((500, 500)),
    };
    let r = d.ike(&a, bytes, &mut msg, ParseContext::default());
    (msg, r)
}

/// MM1 to MM4 of a Main Mode whose public values are `gxi` and `gxr`.
fn phase1_cleartext(d: &mut Decryptor, gxi: &[u8], gxr: &[u8]) {
    let mm1 = finish(header(CKY_I, 0, 0, 1, 2, 0, 0));
    assert_eq!(feed_from(d, &mm1, true).1, None);
    feed_from(d, &mm2(), false);
    feed_from(d, &mm_ke(CKY_R, gxi), true);
    feed_from(d, &mm_ke(CKY_R, gxr), false);
}

#[test]
fn ikev1_ivs_follow_rfc2409_appendix_b_and_survive_retransmissions() {
    let mut d = Decryptor::new(table(&format!("{CKY_I:016x},{V1_KEY}")));
    let (gxi, gxr) = ([0x61u8; 128], [0x62u8; 128]);
    phase1_cleartext(&mut d, &gxi, &gxr);
    let iv1 = sha1(&[&gxi, &gxr])[..16].to_vec();
    let id = generic(8, &[1, 17, 1, 244, 192, 0, 2, 1]);
    let mm5_chain = [id, generic(0, &[0x77; 20])].concat();
    let (mm5, last5) = v1_sealed(2, 0, 5, &mm5_chain, &iv1);
    let (msg5, r5) = feed_v1(&mut d, &mm5);
    assert_eq!(r5, Some(IkeDecrypt::Decrypted { verified: false }));
    assert_eq!(
        decrypted(&msg5)
            .iter()
            .map(|p| p.payload_type)
            .collect::<Vec<_>>(),
        vec![5, 8]
    );
    let (mm6, last6) = v1_sealed(2, 0, 5, &mm5_chain, &last5);
    assert_eq!(
        feed_v1(&mut d, &mm6).1,
        Some(IkeDecrypt::Decrypted { verified: false })
    );

    let msgid: u32 = 0xf2cf_e203;
    let qm_iv = sha1(&[&last6, &msgid.to_be_bytes()])[..16].to_vec();
    let (qm1, last_qm1) = v1_sealed(32, msgid, 8, &qm1_chain(0xc001), &qm_iv);
    let (m1, r1) = feed_v1(&mut d, &qm1);
    assert_eq!(r1, Some(IkeDecrypt::Decrypted { verified: false }));
    assert_eq!(child_spi(&m1), Some(0xc001));
    // A byte-identical retransmission decrypts with the IV of its first copy...
    let (again, r) = feed_v1(&mut d, &qm1);
    assert_eq!(r, Some(IkeDecrypt::Decrypted { verified: false }));
    assert_eq!(decrypted(&again).len(), 3);
    // ...and the answer still chains from the first copy's last block.
    let (qm2, _) = v1_sealed(32, msgid, 8, &qm1_chain(0xd001), &last_qm1);
    let (m2, r2) = feed_v1(&mut d, &qm2);
    assert_eq!(r2, Some(IkeDecrypt::Decrypted { verified: false }));
    assert_eq!(child_spi(&m2), Some(0xd001));
}

#[test]
fn ikev1_wrong_key_or_missing_exchange_is_not_decrypted() {
    let mut d = Decryptor::new(table(&format!("{CKY_I:016x},{V1_KEY}")));
    let (qm1, _) = v1_sealed(32, 7, 8, &qm1_chain(1), &[0; 16]);
    // Nothing of phase 1 was seen: no cipher, no IV.
    assert_eq!(
        feed_v1(&mut d, &qm1).1,
        Some(IkeDecrypt::Failed(DecryptError::NoIv))
    );
    let mut d = Decryptor::new(table(&format!("{CKY_I:016x},{}", "ff".repeat(16))));
    phase1_cleartext(&mut d, &[1u8; 64], &[2u8; 64]);
    let iv1 = sha1(&[&[1u8; 64], &[2u8; 64]])[..16].to_vec();
    let chain = [
        generic(8, &[1, 17, 1, 244, 192, 0, 2, 1]),
        generic(0, &[0x77; 20]),
    ]
    .concat();
    let (mm5, _) = v1_sealed(2, 0, 5, &chain, &iv1);
    let (msg, r) = feed_v1(&mut d, &mm5);
    assert_eq!(r, Some(IkeDecrypt::Failed(DecryptError::BadPlaintext)));
    assert!(decrypted(&msg).is_empty() && msg.error.is_none());
}

// ---------------------------------------------------------------- ESP

fn esp_packet(spi: u32, seq: u32, payload: &[u8]) -> EspPacket<'_> {
    EspPacket {
        addrs: crate::wire::Addrs {
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            ports: None,
        },
        encap: Encap::None,
        spi,
        seq,
        payload,
    }
}

/// A UDP segment 1234 -> 53 with 4 bytes of data.
fn udp_segment() -> Vec<u8> {
    vec![0x04, 0xd2, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4]
}

/// An ESP payload: `inner` with default padding to `block`, sealed by `seal`, IV first.
fn esp_plain(inner: &[u8], next: u8, block: usize) -> Vec<u8> {
    let mut plain = inner.to_vec();
    let pad = (block - (plain.len() + 2) % block) % block;
    plain.extend((1..=pad).map(|i| i as u8));
    plain.extend_from_slice(&[pad as u8, next]);
    plain
}

const ESP_LINE: &str = "\"IPv4\",\"192.0.2.1\",\"192.0.2.2\",\"0x0000c001\",\"AES-CBC [RFC3602]\",\
    \"0x000102030405060708090a0b0c0d0e0f\",\"HMAC-SHA-1-96 [RFC2404]\",\
    \"0x2021222324252627282920212223242526272829\"";

fn esp_cbc_sha1(inner: &[u8], next: u8, ak: &[u8]) -> Vec<u8> {
    let iv = [0x24u8; 16];
    let mut plain = esp_plain(inner, next, 16);
    aes_cbc_seal(&h(SK_EI), &iv, &mut plain);
    let mut p = iv.to_vec();
    p.extend_from_slice(&plain);
    let mut covered = 0xc001u32.to_be_bytes().to_vec();
    covered.extend_from_slice(&5u32.to_be_bytes());
    covered.extend_from_slice(&p);
    p.extend_from_slice(&hmac_sha1(ak, &covered)[..12]);
    p
}

#[test]
fn esp_aes_cbc_sha1_transport_mode() {
    let mut d = Decryptor::new(table(ESP_LINE));
    let payload = esp_cbc_sha1(&udp_segment(), 17, &h(SK_AI));
    let plain = d.esp(&esp_packet(0xc001, 5, &payload)).unwrap().unwrap();
    assert_eq!((plain.next_header, plain.verified), (17, true));
    assert_eq!(plain.inner, &udp_segment()[..]);
    assert!(plain.is_transport_segment());
    let s = plain.summary();
    assert_eq!(
        (s.protocol, s.ports, s.addrs),
        (Some(17), Some((1234, 53)), None)
    );
    let bad = esp_cbc_sha1(&udp_segment(), 17, &[1; 20]);
    assert_eq!(
        d.esp(&esp_packet(0xc001, 5, &bad)),
        Some(Err(DecryptError::IcvMismatch))
    );
    assert_eq!(d.esp(&esp_packet(0xc002, 5, &payload)), None);
}

#[test]
fn esp_tunnel_mode_summary_names_the_inner_addresses() {
    let mut d = Decryptor::new(table(ESP_LINE));
    let mut ip = vec![
        0x45, 0, 0, 32, 0, 0, 0, 0, 64, 17, 0, 0, 10, 1, 1, 1, 10, 1, 0, 10,
    ];
    ip.extend_from_slice(&udp_segment());
    let payload = esp_cbc_sha1(&ip, 4, &h(SK_AI));
    let plain = d.esp(&esp_packet(0xc001, 5, &payload)).unwrap().unwrap();
    let s = plain.summary();
    let a: (IpAddr, IpAddr) = ("10.1.1.1".parse().unwrap(), "10.1.0.10".parse().unwrap());
    assert_eq!(
        (s.next_header, s.addrs, s.protocol, s.ports),
        (4, Some(a), Some(17), Some((1234, 53)))
    );
    assert!(!plain.is_transport_segment());
}

#[test]
fn esp_without_icv_checks_padding_and_inner_header() {
    let key = "000102030405060708090a0b0c0d0e0f1011121314151617";
    let line = format!("0x00000007@192.0.2.2 3des-cbc-hmac96:0x{key}");
    let mut d = Decryptor::new(table(&line));
    let mut ip = vec![
        0x45, 0, 0, 32, 0, 0, 0, 0, 64, 17, 0, 0, 10, 1, 1, 1, 10, 1, 0, 10,
    ];
    ip.extend_from_slice(&udp_segment());
    let seal = |k: &[u8]| {
        let iv = [5u8; 8];
        let mut plain = esp_plain(&ip, 4, 8);
        tdes_cbc_seal(k, &iv, &mut plain);
        [iv.to_vec(), plain, vec![0; 12]].concat()
    };
    let good = seal(&h(key));
    let plain = d.esp(&esp_packet(7, 1, &good)).unwrap().unwrap();
    assert_eq!(
        (plain.next_header, plain.verified, plain.inner.len()),
        (4, false, 32)
    );
    let wrong = seal(&[0x3c; 24]);
    let r = d.esp(&esp_packet(7, 1, &wrong)).unwrap();
    assert!(
        matches!(
            r,
            Err(DecryptError::BadPadding | DecryptError::BadPlaintext)
        ),
        "{r:?}"
    );
}

#[test]
fn esp_gcm_and_null_encryption() {
    let salt = "0a0b0c0d";
    let gcm_line = format!(
        "\"IPv4\",\"*\",\"*\",\"0x00000009\",\"AES-GCM with 16 octet ICV [RFC4106]\",\
         \"0x{}{salt}\",\"NULL\",\"\"",
        "11".repeat(16)
    );
    let null_line = "\"Any\",\"*\",\"192.0.2.2\",\"0x0000000a\",\"NULL\",\"\",\
        \"HMAC-SHA-1-96 [RFC2404]\",\"0x2021222324252627282920212223242526272829\"";
    let mut d = Decryptor::new(table(&format!("{gcm_line}\n{null_line}")));
    let iv = [0x66u8; 8];
    let mut plain = esp_plain(&udp_segment(), 17, 4);
    let mut aad = 9u32.to_be_bytes().to_vec();
    aad.extend_from_slice(&3u32.to_be_bytes());
    let nonce = super::primitive::salt_iv::<12>(&h(salt), &iv);
    let tag = gcm_seal(&[0x11; 16], &nonce, &aad, &mut plain);
    let payload = [iv.to_vec(), plain, tag].concat();
    let p = d.esp(&esp_packet(9, 3, &payload)).unwrap().unwrap();
    assert_eq!(
        (p.next_header, p.verified, p.inner),
        (17, true, &udp_segment()[..])
    );
    let wrong_seq = d.esp(&esp_packet(9, 4, &payload));
    assert_eq!(wrong_seq, Some(Err(DecryptError::IcvMismatch)));

    let plain = esp_plain(&udp_segment(), 17, 4);
    let mut covered = 10u32.to_be_bytes().to_vec();
    covered.extend_from_slice(&1u32.to_be_bytes());
    covered.extend_from_slice(&plain);
    let icv = hmac_sha1(&h(SK_AI), &covered);
    let payload = [plain, icv[..12].to_vec()].concat();
    let p = d.esp(&esp_packet(10, 1, &payload)).unwrap().unwrap();
    assert_eq!(
        (p.next_header, p.verified, p.inner),
        (17, true, &udp_segment()[..])
    );
}

#[test]
fn esp_too_short_for_iv_and_icv() {
    let mut d = Decryptor::new(table(ESP_LINE));
    let r = d.esp(&esp_packet(0xc001, 1, &[0; 20]));
    assert_eq!(r, Some(Err(DecryptError::BadLength)));
}

#[test]
fn ikev2_wrong_encryption_key_beside_the_right_integrity_key_is_not_decrypted() {
    let mut d = Decryptor::new(table(&cbc_sha1_keys()));
    for k in 1..=64u8 {
        // Sealed under another encryption key, authenticated under the table's: the ICV
        // verifies, the plaintext is noise.
        let bytes = sk_cbc_message(41, &auth_failed_notify(), &[k; 16], &h(SK_AI), 0x20);
        let (msg, r) = open_v2(&mut d, &bytes);
        assert!(
            matches!(
                r,
                Some(IkeDecrypt::Failed(
                    DecryptError::BadPlaintext | DecryptError::BadPadding
                ))
            ),
            "key {k}: {r:?}"
        );
        assert!(decrypted(&msg).is_empty(), "key {k}");
        assert!(msg.error.is_none(), "key {k}: {:?}", msg.error);
    }
}

#[test]
fn esp_wrong_encryption_key_beside_the_right_integrity_key_is_not_decrypted() {
    let mut d = Decryptor::new(table(ESP_LINE));
    let mut ip = vec![
        0x45, 0, 0, 32, 0, 0, 0, 0, 64, 17, 0, 0, 10, 1, 1, 1, 10, 1, 0, 10,
    ];
    ip.extend_from_slice(&udp_segment());
    for k in 1..=64u8 {
        let wrong_line = ESP_LINE.replace(
            "0x000102030405060708090a0b0c0d0e0f",
            &format!("0x{}", format!("{k:02x}").repeat(16)),
        );
        let mut wrong = Decryptor::new(table(&wrong_line));
        for (inner, next) in [(&udp_segment()[..], 17), (&ip[..], 4)] {
            let payload = esp_cbc_sha1(inner, next, &h(SK_AI));
            assert!(d.esp(&esp_packet(0xc001, 5, &payload)).unwrap().is_ok());
            let r = wrong.esp(&esp_packet(0xc001, 5, &payload)).unwrap();
            assert!(
                matches!(
                    r,
                    Err(DecryptError::BadPlaintext | DecryptError::BadPadding)
                ),
                "key {k}, next header {next}: {r:?}"
            );
        }
    }
}

/// HMAC of `data` under `key` with the hash `alg` names (`md5`, `sha256`, `sha384`).
fn hmac_of(alg: &str, key: &[u8], data: &[u8]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
    match alg {
        "md5" => run::<Hmac<md5::Md5>>(key, data),
        "sha256" => run::<Hmac<sha2::Sha256>>(key, data),
        "sha384" => run::<Hmac<sha2::Sha384>>(key, data),
        _ => unreachable!("{alg}"),
    }
}

#[test]
fn esp_des_aes_ctr_and_null_with_md5_sha256_and_sha384() {
    use cipher::StreamCipher;
    let ekey = h("0011223344556677");
    let ctr_material = h("00112233445566778899aabbccddeeff0a0b0c0d");
    let ikey = h("2021222324252627282920212223242526272829303132333435363738393a3b");
    type Seal = fn(&[u8], &[u8], &mut Vec<u8>);
    /// Cipher name, key, IV length, block, integrity name, hash, ICV length, sealer.
    type Case<'a> = (
        &'a str,
        &'a [u8],
        usize,
        usize,
        &'a str,
        &'a str,
        usize,
        Seal,
    );
    let des: Seal = |k, iv, buf| {
        let mut enc = cbc::Encryptor::<des::Des>::new_from_slices(k, iv).unwrap();
        for block in buf.chunks_exact_mut(8) {
            enc.encrypt_block_mut(block.into());
        }
    };
    let ctr: Seal = |material, iv, buf| {
        // RFC 3686: counter block = nonce (the key material's last 4 bytes) | IV | 1.
        let (key, nonce) = material.split_at(16);
        let block = [nonce, iv, &[0, 0, 0, 1]].concat();
        let mut c = ctr::Ctr32BE::<aes::Aes128>::new_from_slices(key, &block).unwrap();
        c.apply_keystream(buf);
    };
    let null: Seal = |_, _, _| {};
    let cases: [Case<'_>; 3] = [
        (
            "DES-CBC [RFC2405]",
            &ekey,
            8,
            8,
            "HMAC-MD5-96 [RFC2403]",
            "md5",
            12,
            des,
        ),
        (
            "AES-CTR [RFC3686]",
            &ctr_material,
            8,
            4,
            "HMAC-SHA-384-192 [RFC4868]",
            "sha384",
            24,
            ctr,
        ),
        (
            "NULL",
            &[],
            0,
            4,
            "HMAC-SHA-256-128 [RFC4868]",
            "sha256",
            16,
            null,
        ),
    ];
    for (cipher, key, iv_len, block, integ, alg, icv_len, seal) in cases {
        let ik = &ikey[..if alg == "md5" { 16 } else { 32 }];
        let line = format!(
            "\"IPv4\",\"192.0.2.1\",\"192.0.2.2\",\"0x0000c001\",\"{cipher}\",\"{}\",\"{integ}\",\"0x{}\"",
            if key.is_empty() {
                String::new()
            } else {
                format!("0x{}", key.iter().map(|b| format!("{b:02x}")).collect::<String>())
            },
            ik.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let mut d = Decryptor::new(table(&line));
        let iv: Vec<u8> = (0..iv_len as u8).map(|i| 0x60 + i).collect();
        let mut plain = esp_plain(&udp_segment(), 17, block);
        seal(key, &iv, &mut plain);
        let mut payload = [iv.clone(), plain].concat();
        let covered = [&0xc001u32.to_be_bytes()[..], &5u32.to_be_bytes(), &payload].concat();
        payload.extend_from_slice(&hmac_of(alg, ik, &covered)[..icv_len]);
        let got = d.esp(&esp_packet(0xc001, 5, &payload)).unwrap();
        let got = got.unwrap_or_else(|e| panic!("{cipher} / {integ}: {e:?}"));
        assert_eq!((got.next_header, got.verified), (17, true), "{cipher}");
        assert_eq!(got.inner, &udp_segment()[..], "{cipher}");
        // One flipped ciphertext bit fails the ICV.
        let at = iv_len + 1;
        payload[at] ^= 1;
        assert_eq!(
            d.esp(&esp_packet(0xc001, 5, &payload)),
            Some(Err(DecryptError::IcvMismatch)),
            "{cipher}"
        );
    }
}
