//! IKEv1 payload bodies (RFC 2408 §3, RFC 2407 §4.6, RFC 3947 §3.2 and §5.2, ModeCfg).

use super::payload::{self, capped, identity_text, Cursor, Flavor};
use super::{vendor, Identification, ParseContext, PayloadBody};
use crate::wire::DecodeError;

/// Decodes the body of IKEv1 payload `ptype`; `cur` covers the body after the generic
/// header.
pub fn body(
    ptype: u8,
    cur: &mut Cursor<'_>,
    ctx: ParseContext,
) -> Result<PayloadBody, DecodeError> {
    let len = cur.remaining();
    Ok(match ptype {
        1 => sa(cur)?,
        4 => PayloadBody::KeyExchange {
            group: None,
            data_len: len,
        },
        5 => PayloadBody::Identification(identification(cur)?),
        6 => PayloadBody::Certificate {
            encoding: cur.u8()?,
            data_len: len - 1,
        },
        7 => PayloadBody::CertificateRequest {
            encoding: cur.u8()?,
            data_len: len - 1,
        },
        8 => PayloadBody::Hash { data_len: len },
        9 => PayloadBody::Signature { data_len: len },
        10 => PayloadBody::Nonce { data_len: len },
        11 => notify(cur)?,
        12 => delete(cur)?,
        13 => vendor_id(cur.rest()),
        14 => attr(cur)?,
        20 | 130 => nat_d(cur),
        21 | 131 => nat_oa(cur)?,
        15 if ctx.draft_natd => nat_d(cur),
        16 if ctx.draft_natd => nat_oa(cur)?,
        _ => PayloadBody::Opaque { data_len: len },
    })
}

/// SA (RFC 2408 §3.4): DOI, situation, proposals. The IPsec DOI's situation is 4 bytes;
/// the labelled-domain fields that follow SIT_SECRECY / SIT_INTEGRITY (RFC 2407 §4.6.1)
/// are not decoded, so an SA with those bits set stops the walk as malformed.
fn sa(cur: &mut Cursor<'_>) -> Result<PayloadBody, DecodeError> {
    let doi = cur.u32()?;
    let situation = cur.u32()?;
    Ok(PayloadBody::Sa {
        doi: Some(doi),
        situation: Some(situation),
        proposals: payload::proposals(cur, Flavor::V1)?,
    })
}

/// ID (RFC 2407 §4.6.2): type, protocol, port, data.
fn identification(cur: &mut Cursor<'_>) -> Result<Identification, DecodeError> {
    let id_type = cur.u8()?;
    let protocol = cur.u8()?;
    let port = cur.u16()?;
    Ok(Identification {
        id_type,
        protocol,
        port,
        value: identity_text(id_type, cur.rest()),
    })
}

/// Notification (RFC 2408 §3.14): unlike IKEv2 it starts with a 4-byte DOI.
fn notify(cur: &mut Cursor<'_>) -> Result<PayloadBody, DecodeError> {
    let doi = cur.u32()?;
    Ok(PayloadBody::Notify(payload::notify_tail(cur, Some(doi))?))
}

/// Delete (RFC 2408 §3.15): DOI, then the layout IKEv2 kept.
fn delete(cur: &mut Cursor<'_>) -> Result<PayloadBody, DecodeError> {
    let doi = cur.u32()?;
    Ok(PayloadBody::Delete(payload::delete_tail(cur, Some(doi))?))
}

/// Vendor ID, named when well known (shared with IKEv2).
pub fn vendor_id(id: &[u8]) -> PayloadBody {
    PayloadBody::VendorId {
        id: capped(id),
        name: vendor::name(id),
    }
}

/// ModeCfg ATTR (draft-dukes-ike-mode-cfg §3.2): type, reserved, identifier, then data
/// attributes in ISAKMP TV/TLV form.
fn attr(cur: &mut Cursor<'_>) -> Result<PayloadBody, DecodeError> {
    let cfg_type = cur.u8()?;
    cur.u8()?;
    cur.u16()?;
    Ok(PayloadBody::Configuration {
        cfg_type,
        attributes: payload::attributes(cur)?,
    })
}

/// NAT-D (RFC 3947 §3.2): the hash, nothing else.
fn nat_d(cur: &mut Cursor<'_>) -> PayloadBody {
    PayloadBody::NatDiscovery {
        hash: capped(cur.rest()),
    }
}

/// NAT-OA (RFC 3947 §5.2): ID type, 3 reserved bytes, an IPv4 or IPv6 address.
fn nat_oa(cur: &mut Cursor<'_>) -> Result<PayloadBody, DecodeError> {
    let id_type = cur.u8()?;
    cur.take(3)?;
    let rest = cur.rest();
    let addr = match id_type {
        1 | 5 => payload::ip_from(rest),
        _ => None,
    };
    Ok(PayloadBody::NatOriginalAddress { addr })
}
