//! Proposals in the short notation users know from strongSwan's configuration
//! (`ike:aes128-sha256-modp2048`, `esp:aes256gcm16-ecp384`), so that a "no proposal
//! chosen" finding can show the offers next to each other.
//!
//! Algorithms without a short name are written as `TYPE#ID`; nothing is dropped. Names
//! are static strings where the registry has one, so that a proposal costs one string.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::wire::ike::{Attribute, IkeMessage, PayloadBody, Proposal, Transform};

/// A name: static when the registry has one, made when it has not.
type Name = Cow<'static, str>;

/// Every proposal of the first SA payload in `msg`, one string per IKEv2 proposal or
/// IKEv1 transform (IKEv1 offers alternatives as transforms).
pub(crate) fn proposals(msg: &IkeMessage) -> Vec<String> {
    let v1 = msg.version() == 1;
    msg.payloads
        .iter()
        .find_map(|p| match &p.body {
            PayloadBody::Sa { proposals, .. } => Some(proposals),
            _ => None,
        })
        .map(|ps| {
            ps.iter()
                .flat_map(|p| {
                    if v1 {
                        v1_proposal(p)
                    } else {
                        vec![v2_proposal(p)]
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn protocol(id: u8) -> Name {
    match id {
        1 => "ike".into(),
        2 => "ah".into(),
        3 => "esp".into(),
        4 => "ipcomp".into(),
        n => format!("proto{n}").into(),
    }
}

fn key_length(attrs: &[Attribute], attr_type: u16) -> Option<u64> {
    attrs
        .iter()
        .find(|a| a.attr_type == attr_type)
        .and_then(|a| a.value)
}

/// `proto:part-part-...`.
fn joined(proto: &str, parts: impl IntoIterator<Item = Name>) -> String {
    let mut out = String::with_capacity(48);
    out.push_str(proto);
    out.push(':');
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        out.push_str(&part);
    }
    out
}

/// IKEv2 (RFC 7296 §3.3.2): transforms grouped by type.
fn v2_proposal(p: &Proposal) -> String {
    let parts = [1u8, 3, 2, 4, 5].into_iter().flat_map(|ttype| {
        p.transforms
            .iter()
            .filter(move |t| t.transform_type == ttype)
            .filter_map(|t| v2_transform(t, &p.transforms))
    });
    joined(&protocol(p.protocol_id), parts)
}

fn v2_transform(t: &Transform, all: &[Transform]) -> Option<Name> {
    let id = t.transform_id;
    let bits = key_length(&t.attributes, 14);
    Some(match t.transform_type {
        1 => v2_encr(id, bits),
        2 => {
            // Written only when it differs from the integrity algorithm's hash.
            let name = prf(id);
            let same = all
                .iter()
                .filter(|x| x.transform_type == 3)
                .any(|x| integ(x.transform_id) == name);
            if same {
                return None;
            }
            format!("prf{name}").into()
        }
        3 if id == 0 => return None,
        3 => integ(id),
        4 => dh(id),
        5 => if id == 1 { "esn" } else { "noesn" }.into(),
        other => format!("type{other}#{id}").into(),
    })
}

fn v2_encr(id: u16, bits: Option<u64>) -> Name {
    let fixed = match id {
        2 => "des",
        3 => "3des",
        11 => "null",
        28 => "chacha20poly1305",
        _ => "",
    };
    if !fixed.is_empty() {
        return fixed.into();
    }
    let mode = match id {
        12 => "",
        13 => "ctr",
        14 => "ccm8",
        15 => "ccm12",
        16 => "ccm16",
        18 => "gcm8",
        19 => "gcm12",
        20 => "gcm16",
        n => return format!("encr#{n}").into(),
    };
    let mut name = String::with_capacity(12);
    name.push_str("aes");
    if let Some(b) = bits {
        let _ = write!(name, "{b}");
    }
    name.push_str(mode);
    name.into()
}

fn prf(id: u16) -> Name {
    match id {
        1 => "md5",
        2 => "sha1",
        4 => "aesxcbc",
        5 => "sha256",
        6 => "sha384",
        7 => "sha512",
        _ => return format!("#{id}").into(),
    }
    .into()
}

fn integ(id: u16) -> Name {
    match id {
        1 => "md5",
        2 => "sha1",
        5 => "aesxcbc",
        12 => "sha256",
        13 => "sha384",
        14 => "sha512",
        _ => return format!("integ#{id}").into(),
    }
    .into()
}

/// The short name of a Diffie-Hellman group.
pub(crate) fn dh(id: u16) -> Name {
    match id {
        0 => "nodh",
        1 => "modp768",
        2 => "modp1024",
        5 => "modp1536",
        14 => "modp2048",
        15 => "modp3072",
        16 => "modp4096",
        17 => "modp6144",
        18 => "modp8192",
        19 => "ecp256",
        20 => "ecp384",
        21 => "ecp521",
        22 => "modp1024s160",
        23 => "modp2048s224",
        24 => "modp2048s256",
        25 => "ecp192",
        26 => "ecp224",
        31 => "curve25519",
        32 => "curve448",
        _ => return format!("dh#{id}").into(),
    }
    .into()
}

/// IKEv1: one string per transform; phase-1 algorithms live in Oakley attributes
/// (RFC 2409 Appendix A), phase-2 ones in the transform ID and IPsec attributes
/// (RFC 2407 §4.5).
fn v1_proposal(p: &Proposal) -> Vec<String> {
    let proto = protocol(p.protocol_id);
    p.transforms
        .iter()
        .map(|t| {
            if p.protocol_id == 1 {
                joined(&proto, v1_ike(&t.attributes))
            } else {
                joined(&proto, v1_ipsec(p.protocol_id, t))
            }
        })
        .collect()
}

fn v1_ike(attrs: &[Attribute]) -> Vec<Name> {
    let get = |t: u16| key_length(attrs, t);
    let mut parts = Vec::new();
    if let Some(e) = get(1) {
        parts.push(match e {
            1 => "des".into(),
            5 => "3des".into(),
            7 => {
                let bits = get(14).map(|b| b.to_string()).unwrap_or_default();
                format!("aes{bits}").into()
            }
            n => format!("encr#{n}").into(),
        });
    }
    if let Some(h) = get(2) {
        parts.push(match h {
            1 => "md5".into(),
            2 => "sha1".into(),
            4 => "sha256".into(),
            5 => "sha384".into(),
            6 => "sha512".into(),
            n => format!("hash#{n}").into(),
        });
    }
    if let Some(g) = get(4) {
        parts.push(dh(g as u16));
    }
    parts
}

fn v1_ipsec(protocol_id: u8, t: &Transform) -> Vec<Name> {
    let get = |ty: u16| key_length(&t.attributes, ty);
    let mut parts = Vec::new();
    if protocol_id == 3 {
        let bits = get(6);
        // ESP transform IDs (RFC 2407 §4.4.4) share IKEv2's ENCR numbering.
        parts.push(v2_encr(t.transform_id, bits));
    }
    if let Some(a) = get(5) {
        parts.push(match a {
            1 => "md5".into(),
            2 => "sha1".into(),
            5 => "sha256".into(),
            6 => "sha384".into(),
            7 => "sha512".into(),
            n => format!("auth#{n}").into(),
        });
    }
    if let Some(g) = get(3) {
        parts.push(dh(g as u16));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ike::{IkeHeader, Payload};

    fn tr(transform_type: u8, transform_id: u16, attrs: &[(u16, u64)]) -> Transform {
        Transform {
            transform_type,
            transform_id,
            number: 0,
            attributes: attrs
                .iter()
                .map(|&(attr_type, v)| Attribute {
                    attr_type,
                    value: Some(v),
                    raw: Vec::new(),
                })
                .collect(),
        }
    }

    fn message(major: u8, protocol_id: u8, transforms: Vec<Transform>) -> IkeMessage {
        IkeMessage {
            header: IkeHeader {
                spi_i: 1,
                spi_r: 0,
                next_payload: 33,
                major,
                minor: 0,
                exchange_type: 34,
                flags: 8,
                message_id: 0,
                length: 0,
            },
            payloads: vec![Payload {
                payload_type: 33,
                critical: false,
                decrypted: false,
                body: PayloadBody::Sa {
                    doi: None,
                    situation: None,
                    proposals: vec![Proposal {
                        number: 1,
                        protocol_id,
                        spi: 0,
                        spi_size: 0,
                        transforms,
                    }],
                },
            }],
            error: None,
        }
    }

    #[test]
    fn ikev2_proposals_read_like_strongswan_configuration() {
        let m = message(
            2,
            1,
            vec![
                tr(1, 12, &[(14, 128)]),
                tr(2, 5, &[]),
                tr(3, 12, &[]),
                tr(4, 14, &[]),
            ],
        );
        assert_eq!(proposals(&m), vec!["ike:aes128-sha256-modp2048"]);
        let m = message(
            2,
            3,
            vec![tr(1, 20, &[(14, 256)]), tr(4, 20, &[]), tr(5, 0, &[])],
        );
        assert_eq!(proposals(&m), vec!["esp:aes256gcm16-ecp384-noesn"]);
    }

    #[test]
    fn ikev1_transforms_are_separate_offers() {
        let m = message(
            1,
            1,
            vec![
                tr(0, 1, &[(1, 7), (14, 256), (2, 4), (4, 14)]),
                tr(0, 1, &[(1, 5), (2, 2), (4, 2)]),
            ],
        );
        assert_eq!(
            proposals(&m),
            vec!["ike:aes256-sha256-modp2048", "ike:3des-sha1-modp1024"]
        );
    }

    #[test]
    fn encryption_names_carry_key_length_and_mode() {
        assert_eq!(v2_encr(13, None), "aesctr");
        assert_eq!(v2_encr(20, Some(256)), "aes256gcm16");
        assert_eq!(v2_encr(12, Some(192)), "aes192");
        assert_eq!(v2_encr(3, Some(192)), "3des");
        assert_eq!(v2_encr(99, Some(128)), "encr#99");
    }

    #[test]
    fn unknown_algorithms_keep_their_numbers() {
        let m = message(2, 1, vec![tr(1, 1024, &[]), tr(4, 999, &[])]);
        assert_eq!(proposals(&m), vec!["ike:encr#1024-dh#999"]);
    }
}
