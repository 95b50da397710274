use std::net::IpAddr;
use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<KeyTable, KeyError> {
    KeyTable::parse(text, Path::new("keys.txt"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const IKEV2_LINE: &str = "0102030405060708,1112131415161718,\
    000102030405060708090a0b0c0d0e0f,101112131415161718191a1b1c1d1e1f,\"AES-CBC-128 [RFC3602]\",\
    2021222324252627282920212223242526272829,3031323334353637383930313233343536373839,\
    \"HMAC_SHA1_96 [RFC2404]\"";

#[test]
fn wireshark_ikev2_line() {
    let t = parse(IKEV2_LINE).unwrap();
    let k = t
        .ikev2(0x0102_0304_0506_0708, 0x1112_1314_1516_1718)
        .next()
        .unwrap();
    assert_eq!(k.cipher, Cipher::AesCbc { key_len: 16 });
    assert_eq!(
        k.integrity,
        Integrity {
            mac: Some(MacAlg::Sha1),
            icv_len: 12
        }
    );
    let i = k.direction(true).unwrap();
    assert_eq!(i.encryption.expose()[0], 0x00);
    assert_eq!(k.direction(false).unwrap().integrity.expose()[0], 0x30);
    assert_eq!(t.counts(), (0, 1, 0));
}

#[test]
fn wireshark_ikev2_aead_and_null_lines() {
    let gcm = "aaaaaaaaaaaaaaaa,bbbbbbbbbbbbbbbb,\
        000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223,\
        000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223,\
        \"AES-GCM-256 with 16 octet ICV [RFC5282]\",,,\"NONE [RFC4306]\"";
    let null = "1234567890123456,0987654321098765,,,\"NULL [RFC2410]\",,,\"NONE [RFC4306]\"";
    let t = parse(&format!("# comment\n\n{gcm}\n{null}\n")).unwrap();
    let k = t
        .ikev2(0xaaaa_aaaa_aaaa_aaaa, 0xbbbb_bbbb_bbbb_bbbb)
        .next()
        .unwrap();
    assert_eq!(k.cipher.aead_icv_len(), Some(16));
    let n = t
        .ikev2(0x1234_5678_9012_3456, 0x0987_6543_2109_8765)
        .next()
        .unwrap();
    assert_eq!((n.cipher, n.integrity), (Cipher::Null, Integrity::NONE));
}

#[test]
fn wireshark_ikev1_line() {
    let t = parse("fafaeb49382a763c,00112233445566778899aabbccddeeff0011223344556677").unwrap();
    assert!(t.has_ikev1(0xfafa_eb49_382a_763c));
    assert_eq!(t.ikev1(0xfafa_eb49_382a_763c).next().unwrap().key.len(), 24);
    assert_eq!(t.ikev1(1).count(), 0);
}

#[test]
fn wireshark_and_strongswan_esp_lines() {
    let text = "\"IPv4\",\"192.0.2.1\",\"192.0.2.2\",\"0x0000c001\",\"AES-CBC [RFC3602]\",\
        \"0x000102030405060708090a0b0c0d0e0f\",\"HMAC-SHA-1-96 [RFC2404]\",\
        \"0x0001020304050607080900010203040506070809\"\n\
        \"IPv4\",\"192.0.2.2\",\"192.0.2.1\",\"0xc0000002\",\"TripleDes-CBC [RFC2451]\",\
        \"0x000102030405060708090a0b0c0d0e0f1011121314151617\",\"NULL\",\"\"\n\
        \"IPv6\",\"*\",\"2001:db8::/32\",\"*\",\"AES-GCM [RFC4106]\",\
        \"0x000102030405060708090a0b0c0d0e0f10111213\",\"ANY 64 bit authentication [no checking]\",\"\"";
    let t = parse(text).unwrap();
    let a = t
        .esp(ip("192.0.2.1"), ip("192.0.2.2"), 0xc001)
        .next()
        .unwrap();
    assert_eq!(a.cipher, Cipher::AesCbc { key_len: 16 });
    assert_eq!(a.integrity.icv_len, 12);
    assert_eq!(t.esp(ip("192.0.2.9"), ip("192.0.2.2"), 0xc001).count(), 0);
    let b = t
        .esp(ip("192.0.2.2"), ip("192.0.2.1"), 0xc000_0002)
        .next()
        .unwrap();
    assert_eq!(
        (b.cipher, b.integrity),
        (Cipher::TripleDesCbc, Integrity::NONE)
    );
    let g = t
        .esp(ip("2001:db8::1"), ip("2001:db8::2"), 77)
        .next()
        .unwrap();
    assert_eq!(
        (g.cipher, g.integrity),
        (
            Cipher::AesGcm {
                key_len: 16,
                icv_len: 8
            },
            Integrity::NONE
        )
    );
    assert_eq!(t.esp(ip("192.0.2.1"), ip("192.0.2.2"), 77).count(), 0);
}

#[test]
fn tcpdump_esp_and_ikev2_secrets() {
    let text = "0x12345678@192.1.2.45 3des-cbc-hmac96:0x000102030405060708090a0b0c0d0e0f1011121314151617\n\
        0xd1234567@192.1.2.45 aes256-cbc-hmac96:0x000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\n\
        ikev2 I 0x0001020304050607 0xc02e7a3031a03188 sha1:0x0001020304050607080900010203040506070809 aes128:0x000102030405060708090a0b0c0d0e0f\n\
        ikev2 R 0x0001020304050607 0xc02e7a3031a03188 sha1:0x1001020304050607080900010203040506070809 aes128:0x100102030405060708090a0b0c0d0e0f\n";
    let t = parse(text).unwrap();
    assert_eq!(t.counts(), (0, 1, 2));
    let e = t
        .esp(ip("10.0.0.1"), ip("192.1.2.45"), 0x1234_5678)
        .next()
        .unwrap();
    assert_eq!(e.cipher, Cipher::TripleDesCbc);
    assert_eq!((e.integrity.mac, e.integrity.icv_len), (None, 12));
    let k = t
        .ikev2(0x0001_0203_0405_0607, 0xc02e_7a30_31a0_3188)
        .next()
        .unwrap();
    assert_eq!(k.direction(true).unwrap().encryption.expose()[0], 0x00);
    assert_eq!(k.direction(false).unwrap().encryption.expose()[0], 0x10);
    assert_eq!(k.integrity.icv_len, 12);
}

#[test]
fn several_tcpdump_secrets_on_one_line() {
    let text = "0x1@192.0.2.1 3des-cbc-hmac96:0x000102030405060708090a0b0c0d0e0f1011121314151617,\
        0x2@192.0.2.2 3des-cbc-hmac96:0x000102030405060708090a0b0c0d0e0f1011121314151617";
    let t = parse(text).unwrap();
    assert_eq!(t.esp(ip("192.0.2.9"), ip("192.0.2.2"), 2).count(), 1);
    assert_eq!(t.esp(ip("192.0.2.9"), ip("192.0.2.2"), 1).count(), 0);
}

#[test]
fn bad_lines_name_file_and_line_but_not_the_key() {
    let key = "00112233445566778899aabbccddeeff";
    let text = format!("# ok\n0102030405060708,{key}\n0102030405060708,{key}0\n");
    let e = parse(&text).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("keys.txt:3: "), "{msg}");
    assert!(!msg.contains(key), "{msg}");
    let e = parse("a,b,c").unwrap_err().to_string();
    assert!(e.contains("keys.txt:1: 3 fields"), "{e}");
    let wrong_len = IKEV2_LINE.replace("000102030405060708090a0b0c0d0e0f,", "0001,");
    let e = parse(&wrong_len).unwrap_err().to_string();
    assert!(
        e.contains("encryption key: 2 bytes, AES-CBC-128 needs 16"),
        "{e}"
    );
    let e = parse(&IKEV2_LINE.replace("HMAC_SHA1_96", "HMAC_WHAT")).unwrap_err();
    assert!(e.to_string().contains("field 8: unknown integrity"), "{e}");
}

#[test]
fn debug_of_a_table_shows_no_key_bytes() {
    let t = parse(IKEV2_LINE).unwrap();
    let dbg = format!("{t:?}");
    assert!(!dbg.contains("000102030405"), "{dbg}");
    assert!(dbg.contains("Secret(16 bytes)"), "{dbg}");
}

#[test]
fn address_patterns() {
    let p = AddrPattern::parse("10.1.*.*").unwrap();
    assert_eq!(p, AddrPattern::Prefix(ip("10.1.0.0"), 16));
    assert!(p.matches(ip("10.1.200.3")) && !p.matches(ip("10.2.0.1")));
    assert!(AddrPattern::parse("0.0.0.0/0")
        .unwrap()
        .matches(ip("8.8.8.8")));
    assert!(!AddrPattern::parse("10.0.0.0/8").unwrap().matches(ip("::1")));
    assert_eq!(AddrPattern::parse("10.*.1.*"), None);
    assert_eq!(AddrPattern::parse("10.0.0.0/33"), None);
}

#[test]
fn loading_a_directory_reads_every_file_and_warns_on_open_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ikev2_decryption_table"), IKEV2_LINE).unwrap();
    std::fs::write(
        dir.path().join("ikev1_decryption_table"),
        "0102030405060708,000102030405060708090a0b0c0d0e0f",
    )
    .unwrap();
    std::fs::write(dir.path().join(".hidden"), "garbage").unwrap();
    for f in ["ikev2_decryption_table", "ikev1_decryption_table"] {
        let p = dir.path().join(f);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let t = KeyTable::load(dir.path()).unwrap();
    assert_eq!(t.counts(), (1, 1, 0));
    let missing = KeyTable::load(&dir.path().join("nope")).unwrap_err();
    assert!(missing.to_string().contains("nope"), "{missing}");
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "x").unwrap();
    let e = KeyTable::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("bad:1:"), "{e}");
}
