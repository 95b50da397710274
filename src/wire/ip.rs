//! IPv4 and IPv6 (with extension headers), UDP, and the split of UDP 500/4500 into IKE,
//! ESP-in-UDP and keepalives; ICMP errors that quote IPsec packets.
//!
//! The fixed IPv4, IPv6 and UDP headers are read through `pnet_packet`'s views, whose
//! constructors check the fixed length once so that every getter is in bounds. What pnet
//! does not model — the IPv6 extension-header walk, the fragment header, the NAT-T split
//! and the ICMP error layouts — is read with checked loads (`get`, [`be16`], [`be32`]).
//! Payload slices are always cut here, never through pnet's `payload()`, so that the rule
//! "trust the smaller of the stated and the captured length" is applied in one place.

use std::net::{IpAddr, Ipv6Addr};

use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::udp::UdpPacket;

use super::esp::{be16, be32, parse_ah, parse_esp};
use super::link::Network;
use super::{Addrs, DecodeError, Encap, IcmpError, IkeDatagram, Packet, Reason};

/// IP protocol numbers this module dispatches on (IANA "Assigned Internet Protocol
/// Numbers").
pub mod proto {
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload.
    pub const ESP: u8 = 50;
    /// Authentication Header.
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 destination options.
    pub const DEST_OPTS: u8 = 60;
}

/// UDP port of IKE (RFC 7296 §2).
pub const IKE_PORT: u16 = 500;
/// UDP port of NAT traversal: IKE behind the non-ESP marker, and ESP in UDP (RFC 3948).
pub const NATT_PORT: u16 = 4500;
/// Most IPv6 extension headers walked before the packet is rejected.
pub const MAX_EXTENSION_HEADERS: usize = 8;

const IPV4_MIN_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const UDP_HEADER: usize = 8;
const ICMP_ERROR_HEADER: usize = 8;
const NON_ESP_MARKER: [u8; 4] = [0; 4];
const KEEPALIVE: [u8; 1] = [0xff];

/// Where an IP packet is a fragment: its datagram's identity and its place in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentInfo {
    /// IPv4 identification (16 bits) or IPv6 fragment header identification.
    pub id: u32,
    /// Byte offset of this fragment's data in the datagram's fragmentable part.
    pub offset: usize,
    /// More fragments follow.
    pub more: bool,
}

/// A parsed IP header: addresses, the upper-layer protocol and its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpHeader<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol; for a fragment, the protocol of the fragmented part.
    pub protocol: u8,
    /// The upper-layer bytes (for a fragment: this fragment's data).
    pub payload: &'a [u8],
    /// Where `payload` starts in the frame.
    pub payload_offset: usize,
    /// `false` when the capture cut the packet short of the length its header states.
    pub complete: bool,
    /// Set when the packet is a fragment.
    pub fragment: Option<FragmentInfo>,
}

/// How strictly lengths are checked: packets quoted in ICMP errors are cut short by design.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Strict,
    Quoted,
}

/// Decodes an IP packet that has no link header: a reassembled datagram, a decrypted
/// tunnel-mode inner packet, or a packet quoted in an ICMP error. The version nibble
/// decides between IPv4 and IPv6. A fragment is reported as [`Packet::Fragment`] (this
/// function keeps no reassembly state).
pub fn decode_ip(bytes: &[u8]) -> Result<Packet<'_>, DecodeError> {
    let hdr = parse_header(Network::AnyIp, bytes, 0)?;
    match hdr.fragment {
        Some(_) => Ok(Packet::Fragment),
        None => classify(&hdr, Mode::Strict),
    }
}

/// Decodes the IP packet quoted in an ICMP error. The quote is usually cut after a few
/// dozen bytes, so lengths are read leniently: an IKE message is returned with whatever
/// bytes there are, an ESP header needs only its 8 bytes, an AH keeps a partial ICV, and a
/// quoted first fragment is decoded as if it were whole.
pub fn decode_quoted(bytes: &[u8]) -> Result<Packet<'_>, DecodeError> {
    let hdr = parse_header(Network::AnyIp, bytes, 0)?;
    match hdr.fragment {
        Some(f) if f.offset != 0 => Ok(Packet::Fragment),
        _ => classify(&hdr, Mode::Quoted),
    }
}

/// Parses the IP header(s) of `bytes`, which starts `base` bytes into the frame.
#[inline]
pub fn parse_header(
    network: Network,
    bytes: &[u8],
    base: usize,
) -> Result<IpHeader<'_>, DecodeError> {
    let version = bytes
        .first()
        .map(|b| b >> 4)
        .ok_or(DecodeError::new(Reason::Truncated, base))?;
    match (network, version) {
        (Network::Ipv4 | Network::AnyIp, 4) => parse_v4(bytes, base),
        (Network::Ipv6 | Network::AnyIp, 6) => parse_v6(bytes, base),
        _ => Err(DecodeError::new(Reason::BadIpVersion, base)),
    }
}

/// IPv4 (RFC 791 §3.1). A total length of zero is taken as "the rest of the capture",
/// as segmentation offload writes it; otherwise the smaller of stated and captured wins.
///
/// The fields are read straight from the fixed 20 bytes (every frame's first header, so no
/// accessor layer): version and IHL at 0, total length at 2, identification at 4, flags
/// and fragment offset at 6, protocol at 9, the addresses at 12 and 16.
#[inline]
fn parse_v4(bytes: &[u8], base: usize) -> Result<IpHeader<'_>, DecodeError> {
    let Some(h) = bytes.first_chunk::<IPV4_MIN_HEADER>() else {
        return Err(DecodeError::new(Reason::Truncated, base));
    };
    let header_len = usize::from(h[0] & 0x0f) * 4;
    if header_len < IPV4_MIN_HEADER {
        return Err(DecodeError::new(Reason::BadIpHeader, base));
    }
    if bytes.len() < header_len {
        return Err(DecodeError::new(Reason::Truncated, base + bytes.len()));
    }
    let stated = match usize::from(u16::from_be_bytes([h[2], h[3]])) {
        0 => bytes.len(),
        n if n < header_len => return Err(DecodeError::new(Reason::BadIpHeader, base + 2)),
        n => n,
    };
    let end = stated.min(bytes.len());
    let flags_offset = u16::from_be_bytes([h[6], h[7]]);
    let more = flags_offset & 0x2000 != 0;
    let offset = usize::from(flags_offset & 0x1fff) * 8;
    let addr = |at: usize| IpAddr::from([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    Ok(IpHeader {
        src: addr(12),
        dst: addr(16),
        protocol: h[9],
        payload: bytes.get(header_len..end).unwrap_or_default(),
        payload_offset: base + header_len,
        complete: stated <= bytes.len(),
        fragment: (more || offset != 0).then_some(FragmentInfo {
            id: u32::from(u16::from_be_bytes([h[4], h[5]])),
            offset,
            more,
        }),
    })
}

/// IPv6 (RFC 8200 §3) and its extension headers. A payload length of zero (jumbogram or
/// offload) is taken as the rest of the capture.
fn parse_v6(bytes: &[u8], base: usize) -> Result<IpHeader<'_>, DecodeError> {
    let ip = Ipv6Packet::new(bytes).ok_or(DecodeError::new(Reason::Truncated, base))?;
    let stated = match usize::from(ip.get_payload_length()) {
        0 => bytes.len(),
        n => IPV6_HEADER + n,
    };
    let end = stated.min(bytes.len());
    let body = bytes.get(IPV6_HEADER..end).unwrap_or_default();
    let complete = stated <= bytes.len();
    let walk = walk_extensions(ip.get_next_header().0, body, base + IPV6_HEADER, complete)?;
    Ok(IpHeader {
        src: IpAddr::V6(ip.get_source()),
        dst: IpAddr::V6(ip.get_destination()),
        protocol: walk.protocol,
        payload: walk.payload,
        payload_offset: walk.offset,
        complete,
        fragment: walk.fragment,
    })
}

/// Where an extension-header walk ended.
struct Walk<'a> {
    protocol: u8,
    payload: &'a [u8],
    offset: usize,
    fragment: Option<FragmentInfo>,
}

/// Walks IPv6 extension headers from `next` until an upper-layer protocol or a fragment
/// header with data behind it (RFC 8200 §4). Bounded by [`MAX_EXTENSION_HEADERS`].
/// An atomic fragment (offset 0, no more fragments; RFC 6946) is walked through.
fn walk_extensions(
    mut next: u8,
    mut rest: &[u8],
    mut offset: usize,
    complete: bool,
) -> Result<Walk<'_>, DecodeError> {
    for _ in 0..MAX_EXTENSION_HEADERS {
        let len = match next {
            proto::HOP_BY_HOP | proto::ROUTING | proto::DEST_OPTS => {
                rest.get(1).map(|l| (usize::from(*l) + 1) * 8)
            }
            proto::FRAGMENT => Some(8),
            _ => return Ok(upper(next, rest, offset, None)),
        };
        let Some((hdr, after)) = len.and_then(|l| rest.get(..l).zip(rest.get(l..))) else {
            let reason = match complete {
                true => Reason::BadExtensionHeader,
                false => Reason::Truncated,
            };
            return Err(DecodeError::new(reason, offset));
        };
        if next == proto::FRAGMENT {
            if let Some(frag) = fragment_header(hdr) {
                return Ok(upper(hdr[0], after, offset + 8, Some(frag)));
            }
        }
        next = hdr[0];
        rest = after;
        offset += hdr.len();
    }
    Err(DecodeError::new(Reason::BadExtensionHeader, offset))
}

fn upper(protocol: u8, payload: &[u8], offset: usize, frag: Option<FragmentInfo>) -> Walk<'_> {
    Walk {
        protocol,
        payload,
        offset,
        fragment: frag,
    }
}

/// The 8-byte IPv6 fragment header (RFC 8200 §4.5); `None` for an atomic fragment.
fn fragment_header(hdr: &[u8]) -> Option<FragmentInfo> {
    let off_flags = be16(hdr, 2)?;
    let frag = FragmentInfo {
        id: be32(hdr, 4)?,
        offset: usize::from(off_flags >> 3) * 8,
        more: off_flags & 1 != 0,
    };
    (frag.more || frag.offset != 0).then_some(frag)
}

/// Decodes the upper layer of a reassembled datagram. For IPv6, `protocol` is the fragment
/// header's next header: the reassembled part may begin with more extension headers.
pub fn classify_reassembled<'a>(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    payload: &'a [u8],
) -> Result<Packet<'a>, DecodeError> {
    let (protocol, payload, payload_offset) = match src {
        IpAddr::V6(_) => {
            let walk = walk_extensions(protocol, payload, 0, true)?;
            if walk.fragment.is_some() {
                return Err(DecodeError::new(Reason::BadFragment, walk.offset));
            }
            (walk.protocol, walk.payload, walk.offset)
        }
        IpAddr::V4(_) => (protocol, payload, 0),
    };
    let hdr = IpHeader {
        src,
        dst,
        protocol,
        payload,
        payload_offset,
        complete: true,
        fragment: None,
    };
    classify(&hdr, Mode::Strict)
}

/// Decodes the upper layer of a packet that is not a fragment.
#[inline]
pub fn classify_unfragmented<'a>(hdr: &IpHeader<'a>) -> Result<Packet<'a>, DecodeError> {
    classify(hdr, Mode::Strict)
}

#[inline]
fn classify<'a>(hdr: &IpHeader<'a>, mode: Mode) -> Result<Packet<'a>, DecodeError> {
    let addrs = Addrs {
        src: hdr.src,
        dst: hdr.dst,
        ports: None,
    };
    let (bytes, at) = (hdr.payload, hdr.payload_offset);
    match (hdr.protocol, hdr.src) {
        (proto::ESP, _) => parse_esp(bytes, addrs, Encap::None, at).map(Packet::Esp),
        (proto::AH, _) => {
            parse_ah(bytes, addrs, at, hdr.complete, mode == Mode::Quoted).map(Packet::Ah)
        }
        (proto::UDP, _) => decode_udp(hdr, mode),
        (proto::ICMP, IpAddr::V4(_)) if mode == Mode::Strict => icmp_error(addrs, bytes, false),
        (proto::ICMPV6, IpAddr::V6(_)) if mode == Mode::Strict => icmp_error(addrs, bytes, true),
        _ => Ok(Packet::Other),
    }
}

/// UDP (RFC 768). The length field must be at least 8 and, when the capture holds the
/// whole packet, no longer than the IP payload; a shorter length cuts off IP padding.
fn decode_udp<'a>(hdr: &IpHeader<'a>, mode: Mode) -> Result<Packet<'a>, DecodeError> {
    let at = hdr.payload_offset;
    let Some(udp) = UdpPacket::new(hdr.payload) else {
        let reason = match hdr.complete {
            true => Reason::BadUdpLength,
            false => Reason::Truncated,
        };
        return Err(DecodeError::new(reason, at));
    };
    let len = usize::from(udp.get_length());
    let too_long = len > hdr.payload.len() && hdr.complete && mode == Mode::Strict;
    if len < UDP_HEADER || too_long {
        return Err(DecodeError::new(Reason::BadUdpLength, at + 4));
    }
    let end = len.min(hdr.payload.len());
    let body = hdr.payload.get(UDP_HEADER..end).unwrap_or_default();
    let addrs = Addrs {
        src: hdr.src,
        dst: hdr.dst,
        ports: Some((udp.get_source(), udp.get_destination())),
    };
    classify_udp(addrs, body, at + UDP_HEADER, mode)
}

/// The port split: 500 is IKE without a marker; 4500 is a keepalive, IKE behind the
/// non-ESP marker, or ESP (RFC 3948 §2). IKE is never guessed on 4500 without the marker.
fn classify_udp(
    addrs: Addrs,
    body: &[u8],
    at: usize,
    mode: Mode,
) -> Result<Packet<'_>, DecodeError> {
    let (sport, dport) = addrs.ports.unwrap_or_default();
    let on = |port| sport == port || dport == port;
    if on(IKE_PORT) {
        return Ok(ike_packet(addrs, Encap::None, body));
    }
    if !on(NATT_PORT) {
        return Ok(Packet::Other);
    }
    if body == KEEPALIVE {
        return Ok(Packet::Keepalive(addrs));
    }
    if let Some(message) = body.strip_prefix(&NON_ESP_MARKER) {
        return Ok(ike_packet(addrs, Encap::Udp, message));
    }
    if mode == Mode::Quoted && body.len() < NON_ESP_MARKER.len() {
        return Err(DecodeError::new(Reason::Truncated, at + body.len()));
    }
    parse_esp(body, addrs, Encap::Udp, at).map(Packet::Esp)
}

fn ike_packet(addrs: Addrs, encap: Encap, message: &[u8]) -> Packet<'_> {
    Packet::Ike(IkeDatagram {
        addrs,
        encap,
        message,
    })
}

/// An ICMP (RFC 792) or ICMPv6 (RFC 4443) error, reported only when the packet it quotes
/// is IPsec-related. Informational messages (echo and the like) are [`Packet::Other`].
fn icmp_error<'a>(addrs: Addrs, bytes: &'a [u8], v6: bool) -> Result<Packet<'a>, DecodeError> {
    let (Some(&icmp_type), Some(&code)) = (bytes.first(), bytes.get(1)) else {
        return Ok(Packet::Other);
    };
    let mtu = match (v6, icmp_type, code) {
        (false, 3 | 11 | 12, _) if bytes.len() >= ICMP_ERROR_HEADER => {
            // RFC 1191 §4: the next-hop MTU sits in the low half of the unused word;
            // routers that predate it send zero there.
            let mtu = be16(bytes, 6).filter(|_| icmp_type == 3 && code == 4);
            mtu.filter(|m| *m != 0).map(u32::from)
        }
        (true, 1..=4, _) if bytes.len() >= ICMP_ERROR_HEADER => {
            be32(bytes, 4).filter(|_| icmp_type == 2)
        }
        _ => return Ok(Packet::Other),
    };
    let quoted = bytes.get(ICMP_ERROR_HEADER..).unwrap_or_default();
    if !quotes_ipsec(quoted) {
        return Ok(Packet::Other);
    }
    Ok(Packet::Icmp(IcmpError {
        addrs,
        v6,
        icmp_type,
        code,
        mtu,
        quoted,
    }))
}

/// Whether a quoted packet is IPsec-related: ESP or AH, or UDP from or to 500/4500. Only
/// the headers are needed, so a quote cut right after the UDP ports still counts.
fn quotes_ipsec(quoted: &[u8]) -> bool {
    let Ok(hdr) = parse_header(Network::AnyIp, quoted, 0) else {
        return false;
    };
    if hdr.fragment.is_some_and(|f| f.offset != 0) {
        return false;
    }
    match hdr.protocol {
        proto::ESP | proto::AH => true,
        proto::UDP => {
            let ports = [be16(hdr.payload, 0), be16(hdr.payload, 2)];
            ports
                .iter()
                .flatten()
                .any(|p| *p == IKE_PORT || *p == NATT_PORT)
        }
        _ => false,
    }
}

/// The transport header inside an AH-protected or decrypted ESP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InnerTransport {
    /// Protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
    pub protocol: u8,
    /// Source and destination ports (TCP and UDP only).
    pub ports: Option<(u16, u16)>,
    /// The checksum field as sent. TCP, UDP and ICMPv6 checksums cover the IP addresses
    /// (a NAT that rewrites them without fixing this field breaks it); ICMPv4's does not.
    pub checksum: u16,
}

/// Reads the transport header at the start of `payload`, the bytes an AH protects or an
/// ESP payload decrypts to in transport mode, given the next-header value. `None` for
/// other protocols or when the header is cut short.
pub fn inner_transport(next_header: u8, payload: &[u8]) -> Option<InnerTransport> {
    let ports = || Some((be16(payload, 0)?, be16(payload, 2)?));
    let (ports, checksum) = match next_header {
        proto::TCP => (Some(ports()?), be16(payload, 16)?),
        proto::UDP => (Some(ports()?), be16(payload, 6)?),
        proto::ICMP | proto::ICMPV6 => (None, be16(payload, 2)?),
        _ => return None,
    };
    Some(InnerTransport {
        protocol: next_header,
        ports,
        checksum,
    })
}

/// The Internet checksum (RFC 1071) of a transport segment with its pseudo-header: IPv4
/// (RFC 793 §3.1 / RFC 768) when both addresses are IPv4, else IPv6 (RFC 8200 §8.1, an
/// IPv4 address taken in its mapped form). Over a segment whose checksum field is zero it
/// gives the value to store; over a segment with a correct checksum it gives 0. The
/// pseudo-header length is `segment.len()`, so pass the whole segment.
pub fn transport_checksum(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) -> u16 {
    let len = segment.len() as u64;
    let mut sum = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            words(&s.octets()) + words(&d.octets()) + u64::from(proto) + (len & 0xffff)
        }
        _ => {
            let s = v6_octets(src);
            let d = v6_octets(dst);
            words(&s) + words(&d) + (len >> 16 & 0xffff) + (len & 0xffff) + u64::from(proto)
        }
    };
    sum += words(segment);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn v6_octets(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => Ipv6Addr::octets(&v6),
    }
}

/// Sum of big-endian 16-bit words, an odd last byte padded with zero (RFC 1071 §4.1).
fn words(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(2);
    let mut sum: u64 = chunks
        .by_ref()
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

#[cfg(test)]
mod tests;
