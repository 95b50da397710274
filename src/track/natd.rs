//! Pure computations behind NAT detection: the NAT-D hashes of IKEv2 (RFC 7296 §2.23)
//! and IKEv1 (RFC 3947 §3.2), and the one's-complement transport checksum that tells
//! whether addresses were rewritten after a TCP or UDP checksum was computed (RFC 1071,
//! RFC 768, RFC 9293 §3.1, RFC 8200 §8.1).
//!
//! Nothing here keeps state or allocates; every function takes the bytes and addresses it
//! needs and returns a value.

use std::net::{IpAddr, SocketAddr};

use md5::Md5;
use sha1::{Digest as _, Sha1};
use sha2::{Sha256, Sha384, Sha512};

/// The hash functions a NAT-D payload can be computed with. IKEv2 always uses SHA-1;
/// IKEv1 uses the phase-1 hash negotiated in the Oakley HASH_ALGORITHM attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatdHash {
    /// MD5 (Oakley hash 1), 16 bytes.
    Md5,
    /// SHA-1 (Oakley hash 2, and always in IKEv2), 20 bytes.
    Sha1,
    /// SHA2-256 (Oakley hash 4), 32 bytes.
    Sha256,
    /// SHA2-384 (Oakley hash 5), 48 bytes.
    Sha384,
    /// SHA2-512 (Oakley hash 6), 64 bytes.
    Sha512,
}

impl NatdHash {
    /// Every supported hash, shortest first.
    pub const ALL: [NatdHash; 5] = [
        NatdHash::Md5,
        NatdHash::Sha1,
        NatdHash::Sha256,
        NatdHash::Sha384,
        NatdHash::Sha512,
    ];

    /// Maps the value of the Oakley HASH_ALGORITHM attribute (type 2, RFC 2409 App. A and
    /// RFC 4868) to a hash; `None` for Tiger (3) and unknown values.
    pub fn from_oakley(value: u64) -> Option<NatdHash> {
        match value {
            1 => Some(NatdHash::Md5),
            2 => Some(NatdHash::Sha1),
            4 => Some(NatdHash::Sha256),
            5 => Some(NatdHash::Sha384),
            6 => Some(NatdHash::Sha512),
            _ => None,
        }
    }

    /// The hash whose digest has this many bytes, when exactly one supported hash does.
    pub fn from_len(len: usize) -> Option<NatdHash> {
        NatdHash::ALL.into_iter().find(|h| h.digest_len() == len)
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            NatdHash::Md5 => 16,
            NatdHash::Sha1 => 20,
            NatdHash::Sha256 => 32,
            NatdHash::Sha384 => 48,
            NatdHash::Sha512 => 64,
        }
    }

    /// The name used in evidence text (`MD5`, `SHA-1`, `SHA2-256`, ...).
    pub fn name(self) -> &'static str {
        match self {
            NatdHash::Md5 => "MD5",
            NatdHash::Sha1 => "SHA-1",
            NatdHash::Sha256 => "SHA2-256",
            NatdHash::Sha384 => "SHA2-384",
            NatdHash::Sha512 => "SHA2-512",
        }
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> NatdDigest {
        match self {
            NatdHash::Md5 => NatdDigest::from_slice(&Md5::digest(data)),
            NatdHash::Sha1 => NatdDigest::from_slice(&Sha1::digest(data)),
            NatdHash::Sha256 => NatdDigest::from_slice(&Sha256::digest(data)),
            NatdHash::Sha384 => NatdDigest::from_slice(&Sha384::digest(data)),
            NatdHash::Sha512 => NatdDigest::from_slice(&Sha512::digest(data)),
        }
    }
}

/// A digest of up to 64 bytes, kept inline so that hashing allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NatdDigest {
    bytes: [u8; 64],
    len: usize,
}

impl NatdDigest {
    fn from_slice(s: &[u8]) -> NatdDigest {
        let mut bytes = [0u8; 64];
        let len = s.len().min(64);
        bytes[..len].copy_from_slice(&s[..len]);
        NatdDigest { bytes, len }
    }

    /// The digest bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::fmt::Debug for NatdDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.as_slice() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The hashed input of both NAT-D variants: SPIi | SPIr | IP | port, with the SPIs (IKEv1
/// cookies) as 8 big-endian bytes each, the address as 4 or 16 bytes and the port as 2.
/// Returns the buffer and the number of bytes used.
pub fn natd_input(spi_i: u64, spi_r: u64, endpoint: SocketAddr) -> ([u8; 34], usize) {
    let mut buf = [0u8; 34];
    buf[..8].copy_from_slice(&spi_i.to_be_bytes());
    buf[8..16].copy_from_slice(&spi_r.to_be_bytes());
    let end = match endpoint.ip() {
        IpAddr::V4(a) => {
            buf[16..20].copy_from_slice(&a.octets());
            20
        }
        IpAddr::V6(a) => {
            buf[16..32].copy_from_slice(&a.octets());
            32
        }
    };
    buf[end..end + 2].copy_from_slice(&endpoint.port().to_be_bytes());
    (buf, end + 2)
}

/// The NAT-D hash of `endpoint` with the SPIs of the message that carries it (IKEv2:
/// always SHA-1, RFC 7296 §2.23; IKEv1: the negotiated hash over the cookies, RFC 3947 §3.2).
pub fn natd_hash(alg: NatdHash, spi_i: u64, spi_r: u64, endpoint: SocketAddr) -> NatdDigest {
    let (buf, len) = natd_input(spi_i, spi_r, endpoint);
    alg.digest(&buf[..len])
}

/// Whether `hash` (as carried in a NAT-D payload or notify) describes `endpoint`.
pub fn natd_matches(
    alg: NatdHash,
    spi_i: u64,
    spi_r: u64,
    endpoint: SocketAddr,
    hash: &[u8],
) -> bool {
    hash.len() == alg.digest_len() && natd_hash(alg, spi_i, spi_r, endpoint).as_slice() == hash
}

/// Adds `data` to a running one's-complement sum as 16-bit big-endian words (RFC 1071),
/// padding an odd last byte with zero. The sum is kept unfolded in a `u64`, which cannot
/// overflow for any packet a capture can hold.
///
/// Added eight bytes at a time as two 32-bit big-endian words: since 2^16 is 1 modulo
/// 0xffff, a 32-bit word folds to the sum of its two 16-bit words, so the folded result
/// is the same as adding 16-bit words one by one, at a quarter of the additions. Each
/// addition is below 2^33, so the sum cannot overflow for any segment an IP packet holds.
fn ones_add(mut sum: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_be_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        sum += (w >> 32) + (w & 0xffff_ffff);
    }
    let mut pairs = words.remainder().chunks_exact(2);
    for pair in &mut pairs {
        sum += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = pairs.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// Folds a running sum to 16 bits with end-around carry.
fn ones_fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The one's-complement sum of an address's 16-bit words.
fn addr_sum(addr: IpAddr) -> u64 {
    match addr {
        IpAddr::V4(a) => ones_add(0, &a.octets()),
        IpAddr::V6(a) => ones_add(0, &a.octets()),
    }
}

/// The result of checking an inner TCP or UDP checksum against a pair of addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumCheck {
    /// The checksum verifies with these addresses.
    Valid,
    /// It does not; `delta` is the one's-complement difference between the address sum
    /// the checksum was computed with and the observed one.
    Invalid {
        /// Expected minus observed address sum, folded to 16 bits.
        delta: u16,
    },
    /// Nothing to verify: truncated segment, an unsupported protocol, or an IPv4 UDP
    /// checksum of zero (none sent, RFC 768).
    NotCheckable,
}

/// Verifies the checksum of a TCP (6) or UDP (17) segment as if it travelled between
/// `src` and `dst` (the pseudo-header of RFC 9293 §3.1 / RFC 768, and RFC 8200 §8.1 for
/// IPv6). `segment` must be the whole segment, header and data, as the sender built it.
pub fn check_transport(src: IpAddr, dst: IpAddr, protocol: u8, segment: &[u8]) -> ChecksumCheck {
    let checksum_at = match protocol {
        6 if segment.len() >= 20 => 16,
        17 if segment.len() >= 8 => 6,
        _ => return ChecksumCheck::NotCheckable,
    };
    let stored = u16::from_be_bytes([segment[checksum_at], segment[checksum_at + 1]]);
    if protocol == 17 && stored == 0 && src.is_ipv4() {
        return ChecksumCheck::NotCheckable;
    }
    let Ok(len) = u32::try_from(segment.len()) else {
        return ChecksumCheck::NotCheckable;
    };
    let pseudo = u64::from(protocol) + u64::from(len >> 16) + u64::from(len & 0xffff);
    let sum = ones_fold(ones_add(pseudo + addr_sum(src) + addr_sum(dst), segment));
    if sum == 0xffff {
        ChecksumCheck::Valid
    } else {
        // A valid segment sums to 0xffff; what is missing is the difference between the
        // address sum the sender used and the observed one (RFC 1624 arithmetic).
        ChecksumCheck::Invalid {
            delta: ones_fold(u64::from(!sum)),
        }
    }
}

/// Which substitution of the observed addresses makes a checksum valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovered {
    /// The sender computed the checksum with this source address.
    Source(IpAddr),
    /// The sender computed the checksum with this destination address.
    Destination(IpAddr),
    /// With both of these.
    Both(IpAddr, IpAddr),
}

/// Looks for the original addresses of a segment whose checksum fails with the observed
/// ones: tries every candidate (of the same family) as the source, as the destination,
/// and both together. Candidates are addresses the caller knows of (NAT-OA, addresses
/// seen before a port float, the other capture point); the first that verifies wins.
pub fn recover_addresses(
    observed: (IpAddr, IpAddr),
    protocol: u8,
    segment: &[u8],
    candidates: &[IpAddr],
) -> Option<Recovered> {
    let (src, dst) = observed;
    let same_family = |c: &&IpAddr| c.is_ipv4() == src.is_ipv4();
    let valid = |s, d| check_transport(s, d, protocol, segment) == ChecksumCheck::Valid;
    for &c in candidates.iter().filter(same_family) {
        if c != src && valid(c, dst) {
            return Some(Recovered::Source(c));
        }
        if c != dst && valid(src, c) {
            return Some(Recovered::Destination(c));
        }
    }
    for &s in candidates.iter().filter(same_family) {
        for &d in candidates.iter().filter(same_family) {
            if s != d && valid(s, d) {
                return Some(Recovered::Both(s, d));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn ep(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// RFC 1071's definition, one 16-bit word at a time.
    fn ones_add_by_words(data: &[u8]) -> u64 {
        data.chunks(2)
            .map(|w| u64::from(w[0]) << 8 | u64::from(*w.get(1).unwrap_or(&0)))
            .sum()
    }

    #[test]
    fn word_sums_fold_to_the_sum_of_16_bit_words() {
        // Every length from 0 to 70 (all remainders of 8 and 2), over bytes that make
        // the carries matter, including all-0xff runs.
        let data: Vec<u8> = (0..70u32).map(|i| (i * 151 % 256) as u8 | 0x80).collect();
        for len in 0..=data.len() {
            let d = &data[..len];
            assert_eq!(
                ones_fold(ones_add(7, d)),
                ones_fold(7 + ones_add_by_words(d)),
                "{len}"
            );
            let ff = vec![0xff; len];
            assert_eq!(
                ones_fold(ones_add(0, &ff)),
                ones_fold(ones_add_by_words(&ff)),
                "{len}"
            );
        }
        // RFC 1071 §3's worked example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let example = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(ones_fold(ones_add(0, &example)), 0xddf2);
    }

    #[test]
    fn natd_input_layout_v4_and_v6() {
        let (buf, len) = natd_input(0x0102030405060708, 0, ep("192.0.2.1:500"));
        assert_eq!(len, 22);
        assert_eq!(
            hex(concat!(
                "0102030405060708",
                "0000000000000000",
                "c0000201",
                "01f4"
            )),
            buf[..len]
        );
        let (_, len6) = natd_input(1, 2, ep("[2001:db8::1]:4500"));
        assert_eq!(len6, 34);
    }

    // Expected digests computed with Python's hashlib over the same 22-byte input:
    // hashlib.sha1(bytes.fromhex("0102030405060708" "1112131415161718" "c0000201" "01f4"))
    #[test]
    fn ikev2_sha1_matches_hashlib() {
        let d = natd_hash(
            NatdHash::Sha1,
            0x0102030405060708,
            0x1112131415161718,
            ep("192.0.2.1:500"),
        );
        assert_eq!(d.as_slice(), hex(EXPECTED_SHA1));
    }

    #[test]
    fn ikev1_hashes_match_hashlib() {
        let (i, r, e) = (0x0102030405060708, 0x1112131415161718, ep("192.0.2.1:500"));
        assert_eq!(
            natd_hash(NatdHash::Md5, i, r, e).as_slice(),
            hex(EXPECTED_MD5)
        );
        assert_eq!(
            natd_hash(NatdHash::Sha256, i, r, e).as_slice(),
            hex(EXPECTED_SHA256)
        );
        assert_eq!(
            natd_hash(NatdHash::Sha384, i, r, e).as_slice(),
            hex(EXPECTED_SHA384)
        );
        assert_eq!(
            natd_hash(NatdHash::Sha512, i, r, e).as_slice(),
            hex(EXPECTED_SHA512)
        );
    }

    // hashlib.sha1(bytes.fromhex("a1b2c3d4e5f60718" "0000000000000000"
    //   "20010db8000000000000000000000001" "1194"))
    #[test]
    fn ikev2_sha1_ipv6_request_with_zero_spi_r() {
        let d = natd_hash(
            NatdHash::Sha1,
            0xa1b2c3d4e5f60718,
            0,
            ep("[2001:db8::1]:4500"),
        );
        assert_eq!(d.as_slice(), hex(EXPECTED_SHA1_V6));
    }

    // NAT-D payloads carried by real captures (tshark's isakmp.ike.nat_hash), recomputed
    // by hand with hashlib over CKY-I | CKY-R | IP | port (RFC 3947 §3.2).
    #[test]
    fn ikev1_hashes_of_real_captures() {
        // tcpdump isakmp4500.pcap frame 5, first NAT-D: MD5 of the receiver 192.1.2.23:500.
        assert!(natd_matches(
            NatdHash::Md5,
            0x9e89f2388f90bc1e,
            0x0a74357ce3d1a4bf,
            ep("192.1.2.23:500"),
            &hex("6efe12f04af90dfbcfb15d71b841bb9e"),
        ));
        // suricata-verify ikev1-isakmp-main-mode.pcap frame 3: SHA-1 of 192.168.12.2:500.
        assert!(natd_matches(
            NatdHash::Sha1,
            0xe47a591fd057587f,
            0xa00b8ef0902bb8ec,
            ep("192.168.12.2:500"),
            &hex("1574d64c0165bad16a023f038d45a07498d8d051"),
        ));
    }

    #[test]
    fn matches_rejects_other_endpoint_and_wrong_length() {
        let (i, r, e) = (0x0102030405060708, 0x1112131415161718, ep("192.0.2.1:500"));
        let h = hex(EXPECTED_SHA1);
        assert!(natd_matches(NatdHash::Sha1, i, r, e, &h));
        assert!(!natd_matches(
            NatdHash::Sha1,
            i,
            r,
            ep("192.0.2.1:4500"),
            &h
        ));
        assert!(!natd_matches(NatdHash::Sha1, i, 0, e, &h));
        assert!(!natd_matches(NatdHash::Md5, i, r, e, &h));
        assert!(!natd_matches(NatdHash::Sha1, i, r, e, &h[..19]));
    }

    #[test]
    fn oakley_and_length_mapping() {
        assert_eq!(NatdHash::from_oakley(1), Some(NatdHash::Md5));
        assert_eq!(NatdHash::from_oakley(2), Some(NatdHash::Sha1));
        assert_eq!(NatdHash::from_oakley(3), None);
        assert_eq!(NatdHash::from_oakley(6), Some(NatdHash::Sha512));
        assert_eq!(NatdHash::from_len(16), Some(NatdHash::Md5));
        assert_eq!(NatdHash::from_len(48), Some(NatdHash::Sha384));
        assert_eq!(NatdHash::from_len(24), None);
    }

    const EXPECTED_SHA1: &str = "d798d986143f878f70765e0e869c80bbc375f701";
    const EXPECTED_MD5: &str = "cf5faa9384eb43f6272e122d4934e27f";
    const EXPECTED_SHA256: &str =
        "1f2143b5f4921e97f1d040b016b4443a97ba0383703aa02d511907f137b11a77";
    const EXPECTED_SHA384: &str = concat!(
        "36504044f5e49a1e581d4c54da7ad2b5fc4846129e0f71b4",
        "53caa2769a7877c467d85d6b0af020c07e50dea0b388371d"
    );
    const EXPECTED_SHA512: &str = concat!(
        "af5a96ed138a8e5693110fd38fb2881053d2c57ae97817bf7346852016040a3c",
        "1e7e3a854579618d1ebf82eda7d363ba4e83b3bbb3d0829a700f6d16e816569a"
    );
    const EXPECTED_SHA1_V6: &str = "1f051d7db0ab27fae4fb471ef957ded558fd504e";

    // Segments whose checksums Python computed for 10.0.0.2 -> 192.0.2.2 (RFC 1071 sum).
    const UDP_SEGMENT: &str = "9c401a0b0015d88a68656c6c6f2069707365632121";
    const TCP_SEGMENT: &str = "c7381a0b00000001000000005002ffff3e340000616263";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn checksum_valid_with_original_addresses() {
        let (s, d) = (ip("10.0.0.2"), ip("192.0.2.2"));
        assert_eq!(
            check_transport(s, d, 17, &hex(UDP_SEGMENT)),
            ChecksumCheck::Valid
        );
        assert_eq!(
            check_transport(s, d, 6, &hex(TCP_SEGMENT)),
            ChecksumCheck::Valid
        );
    }

    #[test]
    fn checksum_invalid_after_source_rewrite_and_delta_is_address_difference() {
        let (nat, d) = (ip("192.0.2.254"), ip("192.0.2.2"));
        let got = check_transport(nat, d, 6, &hex(TCP_SEGMENT));
        // 10.0.0.2 sums to 0x0a00 + 0x0002; 192.0.2.254 to 0xc000 + 0x02fe.
        let expected = ones_fold(0x0a02 + u64::from(!ones_fold(0xc000 + 0x02fe)));
        assert_eq!(got, ChecksumCheck::Invalid { delta: expected });
    }

    #[test]
    fn recovery_finds_the_original_source() {
        let seg = hex(UDP_SEGMENT);
        let observed = (ip("192.0.2.254"), ip("192.0.2.2"));
        let cands = [ip("192.0.2.2"), ip("198.51.100.7"), ip("10.0.0.2")];
        assert_eq!(
            recover_addresses(observed, 17, &seg, &cands),
            Some(Recovered::Source(ip("10.0.0.2")))
        );
        assert_eq!(recover_addresses(observed, 17, &seg, &cands[..2]), None);
    }

    #[test]
    fn recovery_finds_a_rewritten_destination_and_both() {
        let seg = hex(TCP_SEGMENT);
        let cands = [ip("10.0.0.2"), ip("192.0.2.2")];
        let dnat = (ip("10.0.0.2"), ip("203.0.113.9"));
        assert_eq!(
            recover_addresses(dnat, 6, &seg, &cands),
            Some(Recovered::Destination(ip("192.0.2.2")))
        );
        let both = (ip("203.0.113.1"), ip("203.0.113.9"));
        assert_eq!(
            recover_addresses(both, 6, &seg, &cands),
            Some(Recovered::Both(ip("10.0.0.2"), ip("192.0.2.2")))
        );
    }

    #[test]
    fn uncheckable_segments() {
        let (s, d) = (ip("10.0.0.2"), ip("192.0.2.2"));
        assert_eq!(
            check_transport(s, d, 6, &[0; 19]),
            ChecksumCheck::NotCheckable
        );
        assert_eq!(
            check_transport(s, d, 1, &[0; 40]),
            ChecksumCheck::NotCheckable
        );
        let mut udp = hex(UDP_SEGMENT);
        udp[6] = 0;
        udp[7] = 0;
        assert_eq!(check_transport(s, d, 17, &udp), ChecksumCheck::NotCheckable);
    }
}
