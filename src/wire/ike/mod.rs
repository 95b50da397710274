//! IKEv1 (RFC 2408/2409) and IKEv2 (RFC 7296) messages: the header, and the payload
//! chain decoded into owned values.
//!
//! [`parse_message`] reads the fixed header, then walks the payload chain with a bound on
//! the number of payloads, proposals, transforms and attributes. The walk stops at the
//! first corruption and records it in [`IkeMessage::error`]; everything decoded before it
//! is kept, so a damaged frame is still reported.

use std::net::IpAddr;

pub mod ikev1;
pub mod ikev2;
pub mod payload;
pub mod registry;
pub mod vendor;

use super::{DecodeError, Reason};

/// The fixed 28-byte ISAKMP / IKEv2 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeHeader {
    /// Initiator SPI (IKEv1: initiator cookie).
    pub spi_i: u64,
    /// Responder SPI (IKEv1: responder cookie); zero in the first message.
    pub spi_r: u64,
    /// Type of the first payload.
    pub next_payload: u8,
    /// Major version: 1 or 2.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Exchange type number.
    pub exchange_type: u8,
    /// Raw flags byte.
    pub flags: u8,
    /// Message ID (in network byte order on the wire).
    pub message_id: u32,
    /// Length of the whole message as the header states it.
    pub length: u32,
}

impl IkeHeader {
    /// IKEv2 I flag: sent by the original initiator of the IKE SA.
    pub fn is_initiator(&self) -> bool {
        self.major == 2 && self.flags & 0x08 != 0
    }
    /// IKEv2 R flag: this message is a response.
    pub fn is_response(&self) -> bool {
        self.major == 2 && self.flags & 0x20 != 0
    }
    /// IKEv1 E flag: the payloads after the header are encrypted.
    pub fn is_encrypted_v1(&self) -> bool {
        self.major == 1 && self.flags & 0x01 != 0
    }
    /// IKEv1 C flag: commit.
    pub fn is_commit_v1(&self) -> bool {
        self.major == 1 && self.flags & 0x02 != 0
    }
}

/// One SA attribute (IKEv1 data attribute, IKEv2 transform attribute): TV or TLV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute type (without the AF bit).
    pub attr_type: u16,
    /// The value as an integer when it fits in 8 bytes (TV form, or short TLV).
    pub value: Option<u64>,
    /// Raw value bytes for TLV attributes longer than 8 bytes (capped copy).
    pub raw: Vec<u8>,
}

/// A transform inside a proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    /// IKEv2: transform type (1 ENCR, 2 PRF, 3 INTEG, 4 KE/DH, 5 ESN). IKEv1: 0.
    pub transform_type: u8,
    /// IKEv2: transform ID within its type. IKEv1: transform ID (KEY_IKE = 1, ESP_AES = 12, ...).
    pub transform_id: u16,
    /// IKEv1: transform number.
    pub number: u8,
    /// Attributes (IKEv2: key length; IKEv1: all Oakley / IPsec attributes).
    pub attributes: Vec<Attribute>,
}

/// A proposal inside an SA payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Proposal number.
    pub number: u8,
    /// Protocol ID: 1 ISAKMP/IKE, 2 AH, 3 ESP, 4 IPCOMP (IKEv1).
    pub protocol_id: u8,
    /// The SPI carried in the proposal (child SA SPI for ESP/AH), 0 when absent.
    pub spi: u64,
    /// Size of the SPI in bytes as sent (0, 4 or 8; other sizes are kept in `spi` truncated).
    pub spi_size: u8,
    /// Transforms in wire order.
    pub transforms: Vec<Transform>,
}

/// A Notify payload (IKEv1 RFC 2408 §3.14 with its DOI, or IKEv2 RFC 7296 §3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// IKEv1 only: the domain of interpretation (1 = IPsec).
    pub doi: Option<u32>,
    /// Protocol ID the notify concerns (0 when none).
    pub protocol_id: u8,
    /// SPI the notify concerns, when one is carried (up to 8 bytes, big-endian).
    pub spi: Option<u64>,
    /// Notify message type.
    pub notify_type: u16,
    /// Notification data (capped copy): NAT detection hashes, cookies, the wanted DH group...
    pub data: Vec<u8>,
}

/// A Delete payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    /// IKEv1 only: domain of interpretation.
    pub doi: Option<u32>,
    /// Protocol: 1 IKE, 2 AH, 3 ESP.
    pub protocol_id: u8,
    /// SPIs being deleted (IKE SA deletes carry none in IKEv2; IKEv1 carries the cookies).
    pub spis: Vec<u64>,
}

/// An identification payload (IKEv1 ID, IKEv2 IDi / IDr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identification {
    /// ID type: 1 IPV4_ADDR, 2 FQDN, 3 USER_FQDN / RFC822, 4 IPV4_ADDR_SUBNET, 5 IPV6_ADDR, ...
    pub id_type: u8,
    /// IKEv1 only: the protocol ID field (0 = any).
    pub protocol: u8,
    /// IKEv1 only: the port field (0 = any).
    pub port: u16,
    /// The identity rendered as text (address, subnet, name; hex for binary types).
    pub value: String,
}

/// One IKEv2 traffic selector (RFC 7296 §3.13.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficSelector {
    /// TS type: 7 IPv4 range, 8 IPv6 range.
    pub ts_type: u8,
    /// IP protocol, 0 for any.
    pub ip_protocol: u8,
    /// First port of the range.
    pub start_port: u16,
    /// Last port of the range.
    pub end_port: u16,
    /// First address of the range.
    pub start_addr: IpAddr,
    /// Last address of the range.
    pub end_addr: IpAddr,
}

/// What a payload carries, decoded as far as a monitor needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadBody {
    /// Security Association: proposals in wire order. IKEv1 also carries DOI and situation.
    Sa {
        /// IKEv1 domain of interpretation.
        doi: Option<u32>,
        /// IKEv1 situation bitmap.
        situation: Option<u32>,
        /// Proposals.
        proposals: Vec<Proposal>,
    },
    /// Key Exchange: the DH group (IKEv2 only) and the length of the public value.
    KeyExchange {
        /// IKEv2 DH group number.
        group: Option<u16>,
        /// Bytes of key exchange data.
        data_len: usize,
    },
    /// IKEv1 ID, IKEv2 IDi or IDr.
    Identification(Identification),
    /// Certificate: encoding and length.
    Certificate {
        /// Certificate encoding.
        encoding: u8,
        /// Bytes of certificate data.
        data_len: usize,
    },
    /// Certificate Request: encoding and length of the authority data.
    CertificateRequest {
        /// Certificate encoding.
        encoding: u8,
        /// Bytes of certification authority data.
        data_len: usize,
    },
    /// IKEv2 Authentication: method and length.
    Authentication {
        /// Auth method (1 RSA signature, 2 shared key MIC, 3 DSS, 14 digital signature...).
        method: u8,
        /// Bytes of authentication data.
        data_len: usize,
    },
    /// IKEv1 HASH or SIG: length only.
    Hash {
        /// Bytes of hash data.
        data_len: usize,
    },
    /// IKEv1 SIG.
    Signature {
        /// Bytes of signature data.
        data_len: usize,
    },
    /// Nonce: length only.
    Nonce {
        /// Bytes of nonce data.
        data_len: usize,
    },
    /// Notify.
    Notify(Notify),
    /// Delete.
    Delete(Delete),
    /// Vendor ID: the raw ID (capped copy) and its name when it is a known one.
    VendorId {
        /// Raw vendor ID bytes.
        id: Vec<u8>,
        /// Well-known name, e.g. `RFC 3947 NAT-T`.
        name: Option<&'static str>,
    },
    /// IKEv2 TSi / TSr.
    TrafficSelectors(Vec<TrafficSelector>),
    /// IKEv2 SK: encrypted and authenticated payloads; `first_payload` is the inner chain's type.
    Encrypted {
        /// Type of the first payload inside.
        first_payload: u8,
        /// Bytes of IV, ciphertext and ICV.
        data_len: usize,
    },
    /// IKEv2 SKF (RFC 7383): one fragment of an encrypted message.
    EncryptedFragment {
        /// Fragment number, from 1.
        number: u16,
        /// Total fragments.
        total: u16,
        /// Type of the first inner payload (only meaningful in fragment 1).
        first_payload: u8,
        /// Bytes of IV, ciphertext and ICV.
        data_len: usize,
    },
    /// NAT-D (IKEv1, RFC 3947 type 20, drafts 130 and 15): the hash.
    NatDiscovery {
        /// The hash bytes.
        hash: Vec<u8>,
    },
    /// NAT-OA (IKEv1, RFC 3947 type 21, drafts 131 and 16): an original address.
    NatOriginalAddress {
        /// The original address, when its ID type is an address.
        addr: Option<IpAddr>,
    },
    /// IKEv2 CP / IKEv1 ATTR (ModeCfg): configuration type and attribute types.
    Configuration {
        /// CFG_REQUEST, CFG_REPLY, ...
        cfg_type: u8,
        /// Attributes (type and value length).
        attributes: Vec<Attribute>,
    },
    /// IKEv2 EAP: code and type when present.
    Eap {
        /// EAP code.
        code: u8,
        /// EAP type (requests and responses).
        eap_type: Option<u8>,
    },
    /// A payload type this decoder does not look inside.
    Opaque {
        /// Bytes of payload body after the generic header.
        data_len: usize,
    },
}

/// One payload of the chain: its type number and its decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// Payload type number as on the wire (IKEv1 and IKEv2 numberings differ).
    pub payload_type: u8,
    /// IKEv2 critical bit.
    pub critical: bool,
    /// Decoded body.
    pub body: PayloadBody,
    /// `true` when this payload came out of a decrypted SK / E section.
    pub decrypted: bool,
}

/// A decoded IKE message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeMessage {
    /// The fixed header.
    pub header: IkeHeader,
    /// Payloads in wire order, as far as the chain could be walked.
    pub payloads: Vec<Payload>,
    /// The first corruption met while walking the chain, if any.
    pub error: Option<DecodeError>,
}

impl IkeMessage {
    /// IKE major version (1 or 2).
    pub fn version(&self) -> u8 {
        self.header.major
    }

    /// Notify types carried in this message, in order.
    pub fn notify_types(&self) -> impl Iterator<Item = u16> + '_ {
        self.payloads.iter().filter_map(|p| match &p.body {
            PayloadBody::Notify(n) => Some(n.notify_type),
            _ => None,
        })
    }
}

/// Context that changes how payload numbers are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseContext {
    /// A pre-RFC NAT-T vendor ID (drafts 04-08) was negotiated for this IKEv1 SA, so
    /// payload types 15 and 16 are NAT-D and NAT-OA rather than GDOI's SAK and SAT.
    pub draft_natd: bool,
}

/// Length of the fixed ISAKMP / IKEv2 header.
pub const HEADER_LEN: usize = 28;

/// Most payloads walked in one message.
pub const MAX_PAYLOADS: usize = 64;

/// Decodes an IKE message: `Err` when even the fixed header is unusable, otherwise the
/// message with as much of the payload chain as could be walked.
///
/// The header must announce a length of at least 28 bytes that fits in `bytes`, and a
/// major version of 1 or 2; bytes after the announced length are ignored. An IKEv1
/// message with the E flag yields its header and no payloads. In IKEv2 the chain ends at
/// an SK or SKF payload, whose contents are encrypted.
pub fn parse_message(bytes: &[u8], ctx: ParseContext) -> Result<IkeMessage, DecodeError> {
    let header = parse_header(bytes)?;
    let mut msg = IkeMessage {
        header,
        payloads: Vec::new(),
        error: None,
    };
    if !header.is_encrypted_v1() {
        let end = usize::try_from(header.length).unwrap_or(usize::MAX);
        walk_chain(&mut msg, &bytes[..end], ctx);
    }
    Ok(msg)
}

/// Reads and checks the fixed header (RFC 2408 §3.1, RFC 7296 §3.1).
pub fn parse_header(bytes: &[u8]) -> Result<IkeHeader, DecodeError> {
    let header = peek_header(bytes).ok_or(DecodeError::new(Reason::Truncated, bytes.len()))?;
    if !matches!(header.major, 1 | 2) {
        return Err(DecodeError::new(Reason::BadIkeVersion, 17));
    }
    let len = usize::try_from(header.length).unwrap_or(usize::MAX);
    if len < HEADER_LEN || len > bytes.len() {
        return Err(DecodeError::new(Reason::BadIkeLength, 24));
    }
    Ok(header)
}

/// Reads the 28 header bytes without checking them: for a header quoted (and cut short)
/// in an ICMP error, or to look up per-SA context before parsing. `None` when fewer than
/// 28 bytes are present.
pub fn peek_header(bytes: &[u8]) -> Option<IkeHeader> {
    let h = bytes.get(..HEADER_LEN)?;
    let be32 = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let be64 = |i: usize| (u64::from(be32(i)) << 32) | u64::from(be32(i + 4));
    Some(IkeHeader {
        spi_i: be64(0),
        spi_r: be64(8),
        next_payload: h[16],
        major: h[17] >> 4,
        minor: h[17] & 0x0f,
        exchange_type: h[18],
        flags: h[19],
        message_id: be32(20),
        length: be32(24),
    })
}

/// Walks the generic payload headers (RFC 2408 §3.2, RFC 7296 §3.2) from the header's
/// next-payload field, decoding each body; stops at the first corruption and records it.
fn walk_chain(msg: &mut IkeMessage, bytes: &[u8], ctx: ParseContext) {
    let first = msg.header.next_payload;
    let chain = Chain {
        bytes,
        start: HEADER_LEN,
        base: 0,
        decrypted: false,
    };
    // Room for a usual message's payloads (IKE_SA_INIT carries six to eight) at once,
    // instead of growing from four: one allocation per message, not two.
    msg.payloads.reserve(8);
    walk(msg, first, chain, ctx);
}

/// Decodes payloads recovered by decryption and appends them to `msg`, marked
/// [`decrypted`](Payload::decrypted): the chain inside an IKEv2 SK payload (or the
/// reassembled SKF fragments), or the body of an IKEv1 message with the E flag.
/// `first` is the type of the first payload, `plaintext` the decrypted bytes (padding
/// may follow the chain), and `base` the offset in the message where the plaintext's
/// ciphertext began, so that error offsets point near the damage. The first corruption
/// is recorded in [`IkeMessage::error`]. Returns how many bytes of `plaintext` the chain
/// covered.
pub fn parse_decrypted(
    msg: &mut IkeMessage,
    first: u8,
    plaintext: &[u8],
    base: usize,
    ctx: ParseContext,
) -> usize {
    let chain = Chain {
        bytes: plaintext,
        start: 0,
        base,
        decrypted: true,
    };
    walk(msg, first, chain, ctx)
}

/// A payload chain to walk: its bytes, where the first payload starts, the offset of
/// `bytes` in the message (for errors), and whether it came out of decryption.
#[derive(Clone, Copy)]
struct Chain<'a> {
    bytes: &'a [u8],
    start: usize,
    base: usize,
    decrypted: bool,
}

/// Walks one chain from payload type `first`; returns the offset just past the last
/// payload decoded.
fn walk(msg: &mut IkeMessage, first: u8, chain: Chain<'_>, ctx: ParseContext) -> usize {
    let (bytes, base) = (chain.bytes, chain.base);
    let major = msg.header.major;
    let mut next = first;
    let mut off = chain.start;
    while next != 0 {
        if msg.payloads.len() == MAX_PAYLOADS {
            msg.error = Some(DecodeError::new(Reason::TooManyItems, base + off));
            return off;
        }
        let Some(generic) = bytes.get(off..off + 4) else {
            msg.error = Some(DecodeError::new(Reason::Truncated, base + off));
            return off;
        };
        let len = usize::from(u16::from_be_bytes([generic[2], generic[3]]));
        if len < 4 || off + len > bytes.len() {
            msg.error = Some(DecodeError::new(Reason::BadPayloadLength, base + off + 2));
            return off;
        }
        let mut cur = payload::Cursor::new(&bytes[off + 4..off + len], base + off + 4);
        let decoded = match major {
            1 => ikev1::body(next, &mut cur, ctx),
            _ => ikev2::body(next, generic[0], &mut cur),
        };
        let body = decoded.unwrap_or_else(|e| {
            msg.error = Some(e);
            PayloadBody::Opaque { data_len: len - 4 }
        });
        msg.payloads.push(Payload {
            payload_type: next,
            critical: major == 2 && generic[1] & 0x80 != 0,
            body,
            decrypted: chain.decrypted,
        });
        off += len;
        if msg.error.is_some() || (major == 2 && ikev2::ends_chain(next)) {
            return off;
        }
        next = generic[0];
    }
    off
}

#[cfg(test)]
mod tests;
