//! Zero-copy views and decoders for everything between the link layer and IKE.
//!
//! The entry point is [`Decoder::decode`]: it takes one captured frame and classifies it
//! as IKE, ESP, AH, a NAT-T keepalive, an ICMP error quoting one of those, or something
//! else. It allocates nothing for ESP and AH. IKE payload chains are decoded separately by
//! [`ike::parse_message`], which builds an owned [`ike::IkeMessage`]: IKE is rare next to
//! ESP, so it may allocate.
//!
//! The only state kept between frames is IP fragment reassembly, held by its own bounded
//! [`reassembly::Reassembler`] inside the [`Decoder`].

pub mod esp;
pub mod ike;
pub mod ip;
pub mod json;
pub mod link;
pub mod peek;
pub mod reassembly;
pub mod summary;
#[cfg(test)]
mod testpkt;

use std::fmt;
use std::net::IpAddr;

/// A capture timestamp in nanoseconds since the Unix epoch.
///
/// Packet time drives every timer in the tracker, so it is kept exact (integer
/// nanoseconds) and converted to float seconds only at the output edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Builds a timestamp from whole seconds and nanoseconds.
    pub fn from_parts(secs: i64, nanos: u32) -> Self {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(i64::from(nanos)),
        )
    }

    /// Seconds since the epoch as a float, the unit of every JSON `ts` field.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// `self - earlier` in float seconds (negative if `earlier` is later).
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / 1e9
    }
}

/// The link-layer header type of a capture (libpcap's `LINKTYPE_*` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET (1), with 802.1Q / 802.1ad tags.
    Ethernet,
    /// LINKTYPE_NULL (0): BSD loopback, a 4-byte address family in host byte order.
    Null,
    /// LINKTYPE_LOOP (108): OpenBSD loopback, address family in network byte order.
    Loop,
    /// LINKTYPE_RAW (101) and DLT_RAW (12/14): the frame starts with the IP header.
    Raw,
    /// LINKTYPE_IPV4 (228).
    Ipv4,
    /// LINKTYPE_IPV6 (229).
    Ipv6,
    /// LINKTYPE_LINUX_SLL (113): `tcpdump -i any`, cooked v1.
    LinuxSll,
    /// LINKTYPE_LINUX_SLL2 (276): cooked v2.
    LinuxSll2,
    /// Any other link type; frames of it are reported as undecodable.
    Other(u32),
}

impl LinkType {
    /// Maps a libpcap `LINKTYPE_*` number to a link type.
    pub fn from_linktype(n: u32) -> LinkType {
        match n {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            other => LinkType::Other(other),
        }
    }
}

/// Why a frame (or part of one) could not be decoded. Small and `Copy` so that it can key
/// counters and findings without allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The frame ends before a header it announces.
    Truncated,
    /// A link type this decoder does not handle.
    UnsupportedLink,
    /// An IP version nibble other than 4 or 6.
    BadIpVersion,
    /// An IPv4 IHL below 5 or a total length shorter than the header.
    BadIpHeader,
    /// An IPv6 extension header chain that runs past the packet or is too long.
    BadExtensionHeader,
    /// A UDP length field that disagrees with the IP payload.
    BadUdpLength,
    /// An ISAKMP header with a length below 28 or beyond the datagram.
    BadIkeLength,
    /// An ISAKMP header whose major version is neither 1 nor 2.
    BadIkeVersion,
    /// A payload whose length is below its fixed part or beyond its parent.
    BadPayloadLength,
    /// More payloads, proposals, transforms or attributes than the walk allows.
    TooManyItems,
    /// A payload's content disagrees with its own layout (e.g. an SPI size beyond it).
    MalformedPayload,
    /// An ESP or AH header shorter than its fixed part.
    BadIpsecHeader,
    /// A fragment that could not be reassembled (overlap, too large, table full).
    BadFragment,
}

impl Reason {
    /// A stable lower-case name, used in JSON and as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Truncated => "truncated",
            Reason::UnsupportedLink => "unsupported-link",
            Reason::BadIpVersion => "bad-ip-version",
            Reason::BadIpHeader => "bad-ip-header",
            Reason::BadExtensionHeader => "bad-extension-header",
            Reason::BadUdpLength => "bad-udp-length",
            Reason::BadIkeLength => "bad-ike-length",
            Reason::BadIkeVersion => "bad-ike-version",
            Reason::BadPayloadLength => "bad-payload-length",
            Reason::TooManyItems => "too-many-items",
            Reason::MalformedPayload => "malformed-payload",
            Reason::BadIpsecHeader => "bad-ipsec-header",
            Reason::BadFragment => "bad-fragment",
        }
    }

    /// Every reason, in a fixed order (for metrics that must exist before the first error).
    pub const ALL: [Reason; 13] = [
        Reason::Truncated,
        Reason::UnsupportedLink,
        Reason::BadIpVersion,
        Reason::BadIpHeader,
        Reason::BadExtensionHeader,
        Reason::BadUdpLength,
        Reason::BadIkeLength,
        Reason::BadIkeVersion,
        Reason::BadPayloadLength,
        Reason::TooManyItems,
        Reason::MalformedPayload,
        Reason::BadIpsecHeader,
        Reason::BadFragment,
    ];
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decode failure: what went wrong and at which byte offset of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at offset {offset}")]
pub struct DecodeError {
    /// What went wrong.
    pub reason: Reason,
    /// Offset in bytes from the start of the frame (or of the IKE message for payloads).
    pub offset: usize,
}

impl DecodeError {
    /// Shorthand constructor.
    pub fn new(reason: Reason, offset: usize) -> Self {
        DecodeError { reason, offset }
    }
}

/// How an IKE message or ESP packet travels: directly, or inside UDP (RFC 3948).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Encap {
    /// ESP/AH directly over IP, or IKE on UDP 500 without the non-ESP marker.
    None,
    /// ESP inside UDP, or IKE behind the 4-byte non-ESP marker (normally port 4500).
    Udp,
}

impl Encap {
    /// `none` or `udp`, as in the JSON contract.
    pub fn as_str(self) -> &'static str {
        match self {
            Encap::None => "none",
            Encap::Udp => "udp",
        }
    }
}

/// The outer addresses of a decoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Addrs {
    /// Source address of the (outer) IP header.
    pub src: IpAddr,
    /// Destination address of the (outer) IP header.
    pub dst: IpAddr,
    /// UDP source and destination ports, when the packet travels over UDP.
    pub ports: Option<(u16, u16)>,
}

/// An IKE datagram: its addresses and the ISAKMP message bytes (non-ESP marker removed).
#[derive(Debug, Clone, Copy)]
pub struct IkeDatagram<'a> {
    /// Outer addresses and UDP ports.
    pub addrs: Addrs,
    /// `Udp` when the message followed a non-ESP marker.
    pub encap: Encap,
    /// The ISAKMP message, starting at its header.
    pub message: &'a [u8],
}

/// The fixed header of an ESP packet (RFC 4303 §2) and where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspPacket<'a> {
    /// Outer addresses (ports when UDP-encapsulated).
    pub addrs: Addrs,
    /// `Udp` for ESP in UDP (RFC 3948).
    pub encap: Encap,
    /// Security Parameters Index.
    pub spi: u32,
    /// Sequence number (low 32 bits; ESN high bits are never on the wire).
    pub seq: u32,
    /// Bytes after the 8-byte ESP header: IV, ciphertext, padding, trailer and ICV.
    pub payload: &'a [u8],
}

/// The header of an AH packet (RFC 4302 §2) and what it protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AhPacket<'a> {
    /// Outer addresses.
    pub addrs: Addrs,
    /// The protocol AH protects (6 = TCP, 17 = UDP, 4 = IPv4 in tunnel mode, ...).
    pub next_header: u8,
    /// Security Parameters Index.
    pub spi: u32,
    /// Sequence number.
    pub seq: u32,
    /// Integrity check value.
    pub icv: &'a [u8],
    /// The protected payload that follows the AH header (in the clear).
    pub payload: &'a [u8],
}

/// An ICMP or ICMPv6 error that quotes an IPsec-related packet.
#[derive(Debug, Clone, Copy)]
pub struct IcmpError<'a> {
    /// Addresses of the ICMP packet itself (who reported the error, to whom).
    pub addrs: Addrs,
    /// `true` for ICMPv6.
    pub v6: bool,
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code.
    pub code: u8,
    /// Next-hop MTU from "fragmentation needed" / "packet too big", when given.
    pub mtu: Option<u32>,
    /// The quoted IP packet (often truncated to its first bytes).
    pub quoted: &'a [u8],
}

/// What a frame turned out to be.
#[derive(Debug, Clone, Copy)]
pub enum Packet<'a> {
    /// An IKE message on UDP 500, or behind the non-ESP marker on 4500.
    Ike(IkeDatagram<'a>),
    /// ESP, directly over IP or inside UDP.
    Esp(EspPacket<'a>),
    /// AH.
    Ah(AhPacket<'a>),
    /// A NAT-T keepalive (one 0xff byte on UDP 4500, RFC 3948 §2.3).
    Keepalive(Addrs),
    /// An ICMP error quoting an IPsec-related packet (decode `quoted` with [`ip::decode_ip`]).
    Icmp(IcmpError<'a>),
    /// A non-first IP fragment, or a first fragment whose datagram is not complete yet.
    Fragment,
    /// Anything else: not IPsec-related.
    Other,
}

/// Limits of the stateful part of decoding.
#[derive(Debug, Clone, Copy)]
pub struct DecoderConfig {
    /// Most datagrams under reassembly at once.
    pub max_reassemblies: usize,
    /// Largest reassembled datagram, in bytes.
    pub max_datagram: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            max_reassemblies: 1024,
            max_datagram: 65_535,
        }
    }
}

/// Decodes frames; owns the bounded IP reassembly state.
///
/// Everything but fragments is decoded without allocating: the returned [`Packet`]
/// borrows from the frame.
#[derive(Debug)]
pub struct Decoder {
    config: DecoderConfig,
    reassembly: reassembly::Reassembler,
    frames: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DecoderConfig::default())
    }
}

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(config: DecoderConfig) -> Self {
        Decoder {
            config,
            reassembly: reassembly::Reassembler::new(config.max_reassemblies, config.max_datagram),
            frames: 0,
        }
    }

    /// The limits this decoder was built with.
    pub fn config(&self) -> DecoderConfig {
        self.config
    }

    /// Decodes one frame. The returned packet borrows from `frame`, or from the decoder's
    /// reassembly buffer when the frame completed a fragmented datagram.
    ///
    /// Frames are numbered by counting calls (1-based), which matches the capture's
    /// numbering when every frame is passed in; use [`Decoder::decode_numbered`] otherwise.
    pub fn decode<'a>(
        &'a mut self,
        link: LinkType,
        ts: Timestamp,
        frame: &'a [u8],
    ) -> Result<Packet<'a>, DecodeError> {
        let number = self.frames.saturating_add(1);
        self.decode_numbered(number, link, ts, frame)
    }

    /// [`Decoder::decode`] with the frame number given by the caller; the number is only
    /// kept for fragments, to name the first fragment of a datagram that never completes.
    #[inline]
    pub fn decode_numbered<'a>(
        &'a mut self,
        number: u64,
        link: LinkType,
        ts: Timestamp,
        frame: &'a [u8],
    ) -> Result<Packet<'a>, DecodeError> {
        self.frames = number;
        self.reassembly.expire(ts);
        if let Some(esp) = plain_esp(link, frame) {
            return Ok(Packet::Esp(esp));
        }
        self.decode_layers(number, link, ts, frame)
    }

    /// [`Decoder::decode_numbered`] layer by layer, for every frame [`plain_esp`] leaves.
    fn decode_layers<'a>(
        &'a mut self,
        number: u64,
        link: LinkType,
        ts: Timestamp,
        frame: &'a [u8],
    ) -> Result<Packet<'a>, DecodeError> {
        let Some(l3) = link::strip(link, frame)? else {
            return Ok(Packet::Other);
        };
        let hdr = ip::parse_header(l3.network, l3.bytes, l3.offset)?;
        let Some(info) = hdr.fragment else {
            return ip::classify_unfragmented(&hdr);
        };
        let frag = reassembly::Fragment {
            key: reassembly::FragmentKey {
                src: hdr.src,
                dst: hdr.dst,
                id: info.id,
                protocol: hdr.protocol,
            },
            offset: info.offset,
            more: info.more,
            data: hdr.payload,
            ts,
            frame: number,
        };
        match self.reassembly.push(&frag) {
            Ok(reassembly::Pushed::Stored) => Ok(Packet::Fragment),
            Ok(reassembly::Pushed::Complete(datagram)) => {
                ip::classify_reassembled(hdr.src, hdr.dst, hdr.protocol, datagram)
            }
            Err(reason) => Err(DecodeError::new(reason, hdr.payload_offset)),
        }
    }

    /// Advances packet time without a frame (a live capture's tick), expiring incomplete
    /// datagrams.
    pub fn tick(&mut self, ts: Timestamp) {
        self.reassembly.expire(ts);
    }

    /// Counters of IP fragment reassembly.
    pub fn reassembly_stats(&self) -> reassembly::ReassemblyStats {
        self.reassembly.stats()
    }

    /// IKE datagrams (UDP 500/4500) that expired or were evicted before all their
    /// fragments arrived, since the last call; the input of the `ike-fragments-lost`
    /// diagnosis.
    pub fn take_expired_ike_fragments(&mut self) -> Vec<reassembly::IncompleteIke> {
        self.reassembly.take_lost_ike()
    }

    /// IKE datagrams still waiting for fragments, for a report at the end of a capture.
    pub fn pending_ike_fragments(&self) -> Vec<reassembly::IncompleteIke> {
        self.reassembly.pending_ike().collect()
    }
}

/// The most common frame of a tunnel's traffic, decoded in one step: Ethernet II without
/// a VLAN tag, IPv4 without options and not a fragment, carrying ESP with a well-formed
/// header. Every other frame (and every malformed one) is `None` and goes through the
/// layers, which decode these frames to the same packet; `plain_esp_equals_the_layers`
/// holds the two to that over mutated frames.
#[inline]
fn plain_esp(link: LinkType, frame: &[u8]) -> Option<EspPacket<'_>> {
    const IP: usize = 14;
    let h = frame.first_chunk::<{ IP + 20 }>()?;
    let ethertype = u16::from_be_bytes([h[12], h[13]]);
    // Version 4 with a 20-byte header; neither MF nor a fragment offset (RFC 791 §3.1).
    let whole = h[IP] == 0x45 && u16::from_be_bytes([h[IP + 6], h[IP + 7]]) & 0x3fff == 0;
    if link != LinkType::Ethernet || ethertype != link::ETHERTYPE_IPV4 || !whole {
        return None;
    }
    if h[IP + 9] != ip::proto::ESP {
        return None;
    }
    let ip = &frame[IP..];
    let end = match usize::from(u16::from_be_bytes([h[IP + 2], h[IP + 3]])) {
        0 => ip.len(),
        n if n < 20 => return None,
        n => n.min(ip.len()),
    };
    let esp = ip.get(20..end)?;
    let (spi, seq) = (esp::be32(esp, 0)?, esp::be32(esp, 4)?);
    if spi == 0 {
        return None;
    }
    let addr = |at: usize| IpAddr::from([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    Some(EspPacket {
        addrs: Addrs {
            src: addr(IP + 12),
            dst: addr(IP + 16),
            ports: None,
        },
        encap: Encap::None,
        spi,
        seq,
        payload: &esp[8..],
    })
}

#[cfg(test)]
mod tests;
