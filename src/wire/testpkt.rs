//! Byte builders for the wire tests: IPv4, IPv6, UDP and link headers around a body.
//! Fields are written at their RFC offsets so that each test states only what it varies.

/// 192.0.2.1 (TEST-NET-1).
pub const A4: [u8; 4] = [192, 0, 2, 1];
/// 198.51.100.2 (TEST-NET-2).
pub const B4: [u8; 4] = [198, 51, 100, 2];
/// 2001:db8::1.
pub const A6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// 2001:db8::2.
pub const B6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// An IPv4 header (no options, checksum left zero) followed by `body`.
pub fn ipv4(proto: u8, body: &[u8]) -> Vec<u8> {
    ipv4_frag(proto, 0x1234, 0, false, body)
}

/// An IPv4 fragment: `offset` in bytes (a multiple of 8), `more` the MF flag.
pub fn ipv4_frag(proto: u8, id: u16, offset: usize, more: bool, body: &[u8]) -> Vec<u8> {
    let total = (20 + body.len()) as u16;
    let flags_off = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&flags_off.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&A4);
    p.extend_from_slice(&B4);
    p.extend_from_slice(body);
    p
}

/// An IPv6 header whose next header is `next`, followed by `body` (which may start with
/// extension headers).
pub fn ipv6(next: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(body.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&A6);
    p.extend_from_slice(&B6);
    p.extend_from_slice(body);
    p
}

/// An IPv6 fragment header.
pub fn frag6(next: u8, id: u32, offset: usize, more: bool) -> Vec<u8> {
    let off = (offset as u16) | u16::from(more);
    let mut h = vec![next, 0];
    h.extend_from_slice(&off.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h
}

/// A UDP header (checksum zero) followed by `body`.
pub fn udp(sport: u16, dport: u16, body: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(body);
    u
}

/// An Ethernet II header with EtherType `ethertype` before `body`.
pub fn ethernet(ethertype: u16, body: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// A 28-byte IKEv2 IKE_SA_INIT request header with no payloads.
pub fn ike_header() -> Vec<u8> {
    let mut h = vec![1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0];
    h.extend_from_slice(&[0, 0x20, 34, 0x08, 0, 0, 0, 0, 0, 0, 0, 28]);
    h
}

/// An ESP header (SPI, sequence) and a few payload bytes.
pub fn esp(spi: u32, seq: u32) -> Vec<u8> {
    let mut e = spi.to_be_bytes().to_vec();
    e.extend_from_slice(&seq.to_be_bytes());
    e.extend_from_slice(&[0xaa; 16]);
    e
}
