//! Pieces shared by the IKEv1 and IKEv2 payload decoders: a bounds-checked cursor, the
//! SA → proposal → transform → attribute walk, Notify, Delete, identities and addresses.
//!
//! Every error carries the offset from the start of the IKE message, so a damaged frame
//! can be located in a hex dump.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Attribute, Delete, Notify, Proposal, Transform};
use crate::wire::{DecodeError, Reason};

/// Most proposals walked in one SA payload.
pub const MAX_PROPOSALS: usize = 64;
/// Most transforms walked in one proposal.
pub const MAX_TRANSFORMS: usize = 64;
/// Most attributes walked in one transform or configuration payload.
pub const MAX_ATTRIBUTES: usize = 64;
/// Most SPIs kept from one Delete payload.
pub const MAX_DELETE_SPIS: usize = 1024;
/// Longest byte field copied out of a message (vendor IDs, notify data, long attributes).
pub const MAX_COPY: usize = 256;

/// A read position inside one payload body; `base` is the body's offset in the message.
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor over `buf`, which starts `base` bytes into the message.
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Cursor { buf, pos: 0, base }
    }

    /// Offset of the next byte from the start of the message.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// An error of `reason` at the current position.
    pub fn error(&self, reason: Reason) -> DecodeError {
        DecodeError::new(reason, self.offset())
    }

    /// The next `n` bytes; a body shorter than its fixed part is a bad payload length.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| self.error(Reason::BadPayloadLength))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// Everything not yet read.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// A big-endian u16.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A big-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Big-endian integer of up to 8 bytes; longer inputs keep their first 8 bytes.
pub fn be_u64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take(8)
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// A copy of at most [`MAX_COPY`] bytes.
pub fn capped(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len().min(MAX_COPY)].to_vec()
}

/// Which transform layout a proposal carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// IKEv1: transform number, one-byte transform ID (RFC 2408 §3.6).
    V1,
    /// IKEv2: transform type, two-byte transform ID (RFC 7296 §3.3.2).
    V2,
}

/// One substructure (proposal or transform): its header fields and body.
struct Sub<'a> {
    more: u8,
    body: Cursor<'a>,
}

/// Reads the 4-byte substructure header shared by proposals and transforms (next/last,
/// reserved, length) and returns the body; the length must cover at least `min` bytes.
fn substructure<'a>(cur: &mut Cursor<'a>, min: usize) -> Result<Sub<'a>, DecodeError> {
    let start = cur.offset();
    let more = cur.u8()?;
    cur.u8()?;
    let len = usize::from(cur.u16()?);
    if len < min || len - 4 > cur.remaining() {
        return Err(DecodeError::new(Reason::BadPayloadLength, start + 2));
    }
    let base = cur.offset();
    Ok(Sub {
        more,
        body: Cursor::new(cur.take(len - 4)?, base),
    })
}

/// Walks the proposals of an SA payload body (after IKEv1's DOI and situation).
pub fn proposals(cur: &mut Cursor<'_>, flavor: Flavor) -> Result<Vec<Proposal>, DecodeError> {
    let mut out = Vec::new();
    while cur.remaining() > 0 {
        if out.len() == MAX_PROPOSALS {
            return Err(cur.error(Reason::TooManyItems));
        }
        let sub = substructure(cur, 8)?;
        out.push(proposal(sub.body, flavor)?);
        if sub.more == 0 {
            break;
        }
    }
    Ok(out)
}

/// One proposal: number, protocol, SPI and its transforms (RFC 2408 §3.5, RFC 7296 §3.3.1).
fn proposal(mut cur: Cursor<'_>, flavor: Flavor) -> Result<Proposal, DecodeError> {
    let number = cur.u8()?;
    let protocol_id = cur.u8()?;
    let spi_size = cur.u8()?;
    let _announced = cur.u8()?;
    if usize::from(spi_size) > cur.remaining() {
        return Err(cur.error(Reason::MalformedPayload));
    }
    let spi = be_u64(cur.take(usize::from(spi_size))?);
    let mut transforms = Vec::new();
    while cur.remaining() > 0 {
        if transforms.len() == MAX_TRANSFORMS {
            return Err(cur.error(Reason::TooManyItems));
        }
        let sub = substructure(&mut cur, 8)?;
        transforms.push(transform(sub.body, flavor)?);
        if sub.more == 0 {
            break;
        }
    }
    Ok(Proposal {
        number,
        protocol_id,
        spi,
        spi_size,
        transforms,
    })
}

/// One transform and its attributes.
fn transform(mut cur: Cursor<'_>, flavor: Flavor) -> Result<Transform, DecodeError> {
    let (transform_type, transform_id, number) = match flavor {
        Flavor::V1 => {
            let number = cur.u8()?;
            let id = cur.u8()?;
            cur.u16()?;
            (0, u16::from(id), number)
        }
        Flavor::V2 => {
            let ttype = cur.u8()?;
            cur.u8()?;
            (ttype, cur.u16()?, 0)
        }
    };
    Ok(Transform {
        transform_type,
        transform_id,
        number,
        attributes: attributes(&mut cur)?,
    })
}

/// ISAKMP data attributes in TV or TLV form (RFC 2408 §3.3), up to the end of `cur`.
pub fn attributes(cur: &mut Cursor<'_>) -> Result<Vec<Attribute>, DecodeError> {
    // Every attribute takes at least 4 bytes: one allocation of the most there can be
    // (IKEv1 phase-1 transforms carry six or seven, past the four a vector starts with).
    let mut out = Vec::with_capacity((cur.remaining() / 4).min(MAX_ATTRIBUTES));
    while cur.remaining() > 0 {
        if out.len() == MAX_ATTRIBUTES {
            return Err(cur.error(Reason::TooManyItems));
        }
        let word = cur.u16()?;
        let attr_type = word & 0x7fff;
        let short = cur.u16()?;
        if word & 0x8000 != 0 {
            out.push(Attribute {
                attr_type,
                value: Some(u64::from(short)),
                raw: Vec::new(),
            });
            continue;
        }
        if usize::from(short) > cur.remaining() {
            return Err(cur.error(Reason::MalformedPayload));
        }
        out.push(value_attribute(attr_type, cur.take(usize::from(short))?));
    }
    Ok(out)
}

/// An attribute with a variable-length value: a number when it fits in 8 bytes, else the
/// (capped) bytes.
pub fn value_attribute(attr_type: u16, value: &[u8]) -> Attribute {
    match value.len() {
        0 => Attribute {
            attr_type,
            value: None,
            raw: Vec::new(),
        },
        1..=8 => Attribute {
            attr_type,
            value: Some(be_u64(value)),
            raw: Vec::new(),
        },
        _ => Attribute {
            attr_type,
            value: None,
            raw: capped(value),
        },
    }
}

/// The protocol / SPI size / type / SPI / data tail shared by both Notify layouts.
pub fn notify_tail(cur: &mut Cursor<'_>, doi: Option<u32>) -> Result<Notify, DecodeError> {
    let protocol_id = cur.u8()?;
    let spi_size = usize::from(cur.u8()?);
    let notify_type = cur.u16()?;
    if spi_size > cur.remaining() {
        return Err(cur.error(Reason::MalformedPayload));
    }
    let spi = cur.take(spi_size)?;
    Ok(Notify {
        doi,
        protocol_id,
        spi: (spi_size > 0).then(|| be_u64(spi)),
        notify_type,
        data: capped(cur.rest()),
    })
}

/// The protocol / SPI size / count / SPIs tail shared by both Delete layouts. A 16-byte
/// SPI (an IKEv1 ISAKMP SA's cookie pair) yields two entries, initiator cookie first.
pub fn delete_tail(cur: &mut Cursor<'_>, doi: Option<u32>) -> Result<Delete, DecodeError> {
    let protocol_id = cur.u8()?;
    let spi_size = usize::from(cur.u8()?);
    let count = usize::from(cur.u16()?);
    let total = spi_size.saturating_mul(count);
    if total > cur.remaining() {
        return Err(cur.error(Reason::MalformedPayload));
    }
    if count > MAX_DELETE_SPIS {
        return Err(cur.error(Reason::TooManyItems));
    }
    let mut spis = Vec::with_capacity(count.min(MAX_DELETE_SPIS));
    for _ in 0..count {
        let spi = cur.take(spi_size)?;
        if spi_size == 16 {
            spis.push(be_u64(&spi[..8]));
            spis.push(be_u64(&spi[8..]));
        } else if spi_size > 0 {
            spis.push(be_u64(spi));
        }
    }
    Ok(Delete {
        doi,
        protocol_id,
        spis,
    })
}

/// An IPv4 or IPv6 address from exactly 4 or 16 bytes.
pub fn ip_from(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(b) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::V4(Ipv4Addr::from(b)));
    }
    <[u8; 16]>::try_from(bytes)
        .ok()
        .map(|b| IpAddr::V6(Ipv6Addr::from(b)))
}

/// Lower-case hex of at most [`MAX_COPY`] bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len().min(MAX_COPY) * 2);
    for b in bytes.iter().take(MAX_COPY) {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Renders identification data by ID type (RFC 2407 §4.6.2.1, RFC 7296 §3.5): addresses,
/// subnets and ranges as text, names as (escaped) text, everything else as hex.
pub fn identity_text(id_type: u8, data: &[u8]) -> String {
    match (id_type, data.len()) {
        (1, 4) | (5, 16) => ip_from(data).map(|a| a.to_string()).unwrap_or_default(),
        (4, 8) => subnet(&data[..4], &data[4..]),
        (6, 32) => subnet(&data[..16], &data[16..]),
        (7, 8) => range(&data[..4], &data[4..]),
        (8, 32) => range(&data[..16], &data[16..]),
        (2 | 3, _) => printable(data),
        _ => hex(data),
    }
}

/// `addr/prefix` when the mask is contiguous, `addr/mask` otherwise.
fn subnet(addr: &[u8], mask: &[u8]) -> String {
    let (Some(a), Some(m)) = (ip_from(addr), ip_from(mask)) else {
        return hex(addr);
    };
    let ones: u32 = mask.iter().map(|b| b.count_ones()).sum();
    let bits = mask.len() * 8;
    let contiguous = mask
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| b >> i & 1))
        .take(bits)
        .skip(ones as usize)
        .all(|bit| bit == 0);
    if contiguous {
        format!("{a}/{ones}")
    } else {
        format!("{a}/{m}")
    }
}

/// `first-last`.
fn range(first: &[u8], last: &[u8]) -> String {
    match (ip_from(first), ip_from(last)) {
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => hex(first),
    }
}

/// Text with control and non-ASCII bytes escaped, capped at [`MAX_COPY`] bytes.
pub fn printable(data: &[u8]) -> String {
    data.iter()
        .take(MAX_COPY)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_reports_short_bodies_at_their_offset() {
        let mut c = Cursor::new(&[1, 2, 3], 40);
        assert_eq!(c.u16().unwrap(), 0x0102);
        let e = c.u16().unwrap_err();
        assert_eq!((e.reason, e.offset), (Reason::BadPayloadLength, 42));
        assert_eq!(c.u8().unwrap(), 3);
        assert_eq!(c.remaining(), 0);
    }

    #[test]
    fn attributes_tv_and_tlv() {
        // TV encryption = 7, TLV life duration 4 bytes = 86400, TLV 10 bytes.
        let bytes = [
            0x80, 0x01, 0x00, 0x07, //
            0x00, 0x0c, 0x00, 0x04, 0x00, 0x01, 0x51, 0x80, //
            0x00, 0x10, 0x00, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
        ];
        let attrs = attributes(&mut Cursor::new(&bytes, 0)).unwrap();
        assert_eq!(attrs.len(), 3);
        assert_eq!((attrs[0].attr_type, attrs[0].value), (1, Some(7)));
        assert_eq!((attrs[1].attr_type, attrs[1].value), (12, Some(86400)));
        assert_eq!((attrs[2].value, attrs[2].raw.len()), (None, 10));
    }

    #[test]
    fn attribute_length_beyond_the_transform_is_malformed() {
        let bytes = [0x00, 0x0c, 0x00, 0x09, 0, 0];
        let e = attributes(&mut Cursor::new(&bytes, 100)).unwrap_err();
        assert_eq!((e.reason, e.offset), (Reason::MalformedPayload, 104));
    }

    #[test]
    fn too_many_attributes_are_refused() {
        let bytes: Vec<u8> = [0x80, 0x01, 0x00, 0x01].repeat(MAX_ATTRIBUTES + 1);
        let e = attributes(&mut Cursor::new(&bytes, 0)).unwrap_err();
        assert_eq!(e.reason, Reason::TooManyItems);
    }

    #[test]
    fn identities_render_by_type() {
        assert_eq!(identity_text(1, &[192, 0, 2, 1]), "192.0.2.1");
        assert_eq!(
            identity_text(4, &[10, 0, 0, 0, 255, 255, 255, 0]),
            "10.0.0.0/24"
        );
        assert_eq!(
            identity_text(4, &[10, 0, 0, 0, 255, 0, 255, 0]),
            "10.0.0.0/255.0.255.0"
        );
        assert_eq!(
            identity_text(7, &[10, 0, 0, 1, 10, 0, 0, 9]),
            "10.0.0.1-10.0.0.9"
        );
        assert_eq!(identity_text(2, b"vpn.example"), "vpn.example");
        assert_eq!(identity_text(3, b"a@b\n"), "a@b\\n");
        assert_eq!(identity_text(9, &[0x30, 0x01]), "3001");
        assert_eq!(identity_text(1, &[1, 2, 3]), "010203");
    }

    #[test]
    fn delete_splits_cookie_pairs_and_checks_counts() {
        let mut body = vec![1, 16, 0, 1];
        body.extend_from_slice(&[0x11; 8]);
        body.extend_from_slice(&[0x22; 8]);
        let d = delete_tail(&mut Cursor::new(&body, 0), Some(1)).unwrap();
        assert_eq!(d.spis, vec![0x1111_1111_1111_1111, 0x2222_2222_2222_2222]);
        let short = [3, 4, 0, 2, 0, 0, 0, 1];
        let e = delete_tail(&mut Cursor::new(&short, 0), None).unwrap_err();
        assert_eq!(e.reason, Reason::MalformedPayload);
    }
}
