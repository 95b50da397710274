//! IKEv2 payload bodies (RFC 7296 §3, RFC 7383 §2.5 for SKF).

use super::payload::{self, identity_text, Cursor, Flavor};
use super::{ikev1, Identification, PayloadBody, TrafficSelector};
use crate::wire::{DecodeError, Reason};

/// Most traffic selectors walked in one TS payload.
pub const MAX_SELECTORS: usize = 64;

/// Decodes the body of IKEv2 payload `ptype`. `next` is the generic header's next-payload
/// field, which SK and SKF use for the first payload of the encrypted chain.
pub fn body(ptype: u8, next: u8, cur: &mut Cursor<'_>) -> Result<PayloadBody, DecodeError> {
    let len = cur.remaining();
    Ok(match ptype {
        33 => PayloadBody::Sa {
            doi: None,
            situation: None,
            proposals: payload::proposals(cur, Flavor::V2)?,
        },
        34 => key_exchange(cur)?,
        35 | 36 => PayloadBody::Identification(identification(cur)?),
        37 => PayloadBody::Certificate {
            encoding: cur.u8()?,
            data_len: len - 1,
        },
        38 => PayloadBody::CertificateRequest {
            encoding: cur.u8()?,
            data_len: len - 1,
        },
        39 => authentication(cur)?,
        40 => PayloadBody::Nonce { data_len: len },
        41 => PayloadBody::Notify(payload::notify_tail(cur, None)?),
        42 => PayloadBody::Delete(payload::delete_tail(cur, None)?),
        43 => ikev1::vendor_id(cur.rest()),
        44 | 45 => PayloadBody::TrafficSelectors(selectors(cur)?),
        46 => PayloadBody::Encrypted {
            first_payload: next,
            data_len: len,
        },
        47 => configuration(cur)?,
        48 => eap(cur)?,
        53 => fragment(cur, next)?,
        _ => PayloadBody::Opaque { data_len: len },
    })
}

/// `true` for payloads after which the cleartext chain ends (SK, SKF).
pub fn ends_chain(ptype: u8) -> bool {
    matches!(ptype, 46 | 53)
}

/// KE (§3.4): group, reserved, data.
fn key_exchange(cur: &mut Cursor<'_>) -> Result<PayloadBody, DecodeError> {
    let group = cur.u16()?;
    cur.u16()?;
    Ok(PayloadBody::KeyExchange {
        group: Some(group),
        data_len: cur.rest().len(),
    })
}

/// IDi / IDr (§3.5): type, 3 reserved bytes, data.
fn identification(cur: &mut Cursor<'_>) -> Result<Identification, DecodeError> {
    let id_type = cur.u8()?;
    cur.take(3)?;
    Ok(Identification {
        id_type,
        protocol: 0,
        port: 0,
        value: identity_text(id_type, cur.rest()),
    })
}

/// AUTH (§3.8): method, 3 reserved bytes, data.
fn authentication(cur: &mut Cursor<'_>) -> Result<PayloadBody, DecodeError> {
    let method = cur.u8()?;
    cur.take(3)?;
    Ok(PayloadBody::Authentication {
        method,
        data_len: cur.rest().len(),
    })
}

/// TSi / TSr (§3.13): count, 3 reserved bytes, selectors. Selector types other than the
/// IPv4 and IPv6 ranges (FC, security labels) are skipped by their length.
fn selectors(cur: &mut Cursor<'_>) -> Result<Vec<TrafficSelector>, DecodeError> {
    let count = usize::from(cur.u8()?);
    cur.take(3)?;
    if count > MAX_SELECTORS {
        return Err(cur.error(Reason::TooManyItems));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let start = cur.offset();
        let ts_type = cur.u8()?;
        let ip_protocol = cur.u8()?;
        let len = usize::from(cur.u16()?);
        if len < 4 || len - 4 > cur.remaining() {
            return Err(DecodeError::new(Reason::BadPayloadLength, start + 2));
        }
        let mut sel = Cursor::new(cur.take(len - 4)?, start + 4);
        if let Some(ts) = selector(ts_type, ip_protocol, &mut sel)? {
            out.push(ts);
        }
    }
    Ok(out)
}

/// The address-range body of one selector (§3.13.1), `None` for other types.
fn selector(
    ts_type: u8,
    ip_protocol: u8,
    sel: &mut Cursor<'_>,
) -> Result<Option<TrafficSelector>, DecodeError> {
    let addr_len = match ts_type {
        7 => 4,
        8 => 16,
        _ => return Ok(None),
    };
    let start_port = sel.u16()?;
    let end_port = sel.u16()?;
    let start = payload::ip_from(sel.take(addr_len)?);
    let end = payload::ip_from(sel.take(addr_len)?);
    let (Some(start_addr), Some(end_addr)) = (start, end) else {
        return Err(sel.error(Reason::MalformedPayload));
    };
    Ok(Some(TrafficSelector {
        ts_type,
        ip_protocol,
        start_port,
        end_port,
        start_addr,
        end_addr,
    }))
}

/// CP (§3.15): type, 3 reserved bytes, attributes (R bit + 15-bit type, length, value).
fn configuration(cur: &mut Cursor<'_>) -> Result<PayloadBody, DecodeError> {
    let cfg_type = cur.u8()?;
    cur.take(3)?;
    let mut attributes = Vec::new();
    while cur.remaining() > 0 {
        if attributes.len() == payload::MAX_ATTRIBUTES {
            return Err(cur.error(Reason::TooManyItems));
        }
        let attr_type = cur.u16()? & 0x7fff;
        let len = usize::from(cur.u16()?);
        if len > cur.remaining() {
            return Err(cur.error(Reason::MalformedPayload));
        }
        attributes.push(payload::value_attribute(attr_type, cur.take(len)?));
    }
    Ok(PayloadBody::Configuration {
        cfg_type,
        attributes,
    })
}

/// EAP (§3.16, RFC 3748 §4): code, identifier, length, and a type for requests and
/// responses.
fn eap(cur: &mut Cursor<'_>) -> Result<PayloadBody, DecodeError> {
    let code = cur.u8()?;
    cur.u8()?;
    cur.u16()?;
    let eap_type = if matches!(code, 1 | 2) {
        Some(cur.u8()?)
    } else {
        None
    };
    Ok(PayloadBody::Eap { code, eap_type })
}

/// SKF (RFC 7383 §2.5): fragment number and total, then IV, ciphertext and ICV.
fn fragment(cur: &mut Cursor<'_>, next: u8) -> Result<PayloadBody, DecodeError> {
    let number = cur.u16()?;
    let total = cur.u16()?;
    Ok(PayloadBody::EncryptedFragment {
        number,
        total,
        first_payload: next,
        data_len: cur.rest().len(),
    })
}
