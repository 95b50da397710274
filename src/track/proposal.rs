//! Proposals in the short notation users know from strongSwan's configuration
//! (`ike:aes128-sha256-modp2048`, `esp:aes256gcm16-ecp384`), so that a "no proposal
//! chosen" finding can show the offers next to each other.
//!
//! Algorithms without a short name are written as `TYPE#ID`; nothing is dropped.

use crate::wire::ike::{Attribute, IkeMessage, PayloadBody, Proposal, Transform};

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

fn protocol(id: u8) -> String {
    match id {
        1 => "ike".to_string(),
        2 => "ah".to_string(),
        3 => "esp".to_string(),
        4 => "ipcomp".to_string(),
        n => format!("proto{n}"),
    }
}

fn key_length(attrs: &[Attribute], attr_type: u16) -> Option<u64> {
    attrs
        .iter()
        .find(|a| a.attr_type == attr_type)
        .and_then(|a| a.value)
}

/// IKEv2 (RFC 7296 §3.3.2): transforms grouped by type.
fn v2_proposal(p: &Proposal) -> String {
    let mut parts: Vec<String> = Vec::new();
    for ttype in [1u8, 3, 2, 4, 5] {
        for t in p.transforms.iter().filter(|t| t.transform_type == ttype) {
            if let Some(name) = v2_transform(t, &p.transforms) {
                parts.push(name);
            }
        }
    }
    format!("{}:{}", protocol(p.protocol_id), parts.join("-"))
}

fn v2_transform(t: &Transform, all: &[Transform]) -> Option<String> {
    let id = t.transform_id;
    let bits = key_length(&t.attributes, 14);
    Some(match t.transform_type {
        1 => v2_encr(id, bits),
        2 => {
            // Written only when it differs from the integrity algorithm's hash.
            let name = prf(id);
            let integ: Vec<String> = all
                .iter()
                .filter(|x| x.transform_type == 3)
                .map(|x| integ(x.transform_id))
                .collect();
            if integ.contains(&name) {
                return None;
            }
            format!("prf{name}")
        }
        3 if id == 0 => return None,
        3 => integ(id),
        4 => dh(id),
        5 => if id == 1 { "esn" } else { "noesn" }.to_string(),
        other => format!("type{other}#{id}"),
    })
}

fn v2_encr(id: u16, bits: Option<u64>) -> String {
    let b = bits.map(|b| b.to_string()).unwrap_or_default();
    match id {
        2 => "des".to_string(),
        3 => "3des".to_string(),
        11 => "null".to_string(),
        12 => format!("aes{b}"),
        13 => format!("aes{b}ctr"),
        14 => format!("aes{b}ccm8"),
        15 => format!("aes{b}ccm12"),
        16 => format!("aes{b}ccm16"),
        18 => format!("aes{b}gcm8"),
        19 => format!("aes{b}gcm12"),
        20 => format!("aes{b}gcm16"),
        28 => "chacha20poly1305".to_string(),
        n => format!("encr#{n}"),
    }
}

fn prf(id: u16) -> String {
    match id {
        1 => "md5",
        2 => "sha1",
        4 => "aesxcbc",
        5 => "sha256",
        6 => "sha384",
        7 => "sha512",
        _ => return format!("#{id}"),
    }
    .to_string()
}

fn integ(id: u16) -> String {
    match id {
        1 => "md5",
        2 => "sha1",
        5 => "aesxcbc",
        12 => "sha256",
        13 => "sha384",
        14 => "sha512",
        _ => return format!("integ#{id}"),
    }
    .to_string()
}

pub(crate) fn dh(id: u16) -> String {
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
        _ => return format!("dh#{id}"),
    }
    .to_string()
}

/// IKEv1: one string per transform; phase-1 algorithms live in Oakley attributes
/// (RFC 2409 Appendix A), phase-2 ones in the transform ID and IPsec attributes
/// (RFC 2407 §4.5).
fn v1_proposal(p: &Proposal) -> Vec<String> {
    let proto = protocol(p.protocol_id);
    p.transforms
        .iter()
        .map(|t| {
            let parts = if p.protocol_id == 1 {
                v1_ike(&t.attributes)
            } else {
                v1_ipsec(p.protocol_id, t)
            };
            format!("{proto}:{}", parts.join("-"))
        })
        .collect()
}

fn v1_ike(attrs: &[Attribute]) -> Vec<String> {
    let get = |t: u16| key_length(attrs, t);
    let bits = get(14).map(|b| b.to_string()).unwrap_or_default();
    let mut parts = Vec::new();
    if let Some(e) = get(1) {
        parts.push(match e {
            1 => "des".to_string(),
            5 => "3des".to_string(),
            7 => format!("aes{bits}"),
            n => format!("encr#{n}"),
        });
    }
    if let Some(h) = get(2) {
        parts.push(match h {
            1 => "md5".to_string(),
            2 => "sha1".to_string(),
            4 => "sha256".to_string(),
            5 => "sha384".to_string(),
            6 => "sha512".to_string(),
            n => format!("hash#{n}"),
        });
    }
    if let Some(g) = get(4) {
        parts.push(dh(g as u16));
    }
    parts
}

fn v1_ipsec(protocol_id: u8, t: &Transform) -> Vec<String> {
    let get = |ty: u16| key_length(&t.attributes, ty);
    let mut parts = Vec::new();
    if protocol_id == 3 {
        let bits = get(6);
        // ESP transform IDs (RFC 2407 §4.4.4) share IKEv2's ENCR numbering.
        parts.push(v2_encr(t.transform_id, bits));
    }
    if let Some(a) = get(5) {
        parts.push(match a {
            1 => "md5".to_string(),
            2 => "sha1".to_string(),
            5 => "sha256".to_string(),
            6 => "sha384".to_string(),
            7 => "sha512".to_string(),
            n => format!("auth#{n}"),
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
    fn unknown_algorithms_keep_their_numbers() {
        let m = message(2, 1, vec![tr(1, 1024, &[]), tr(4, 999, &[])]);
        assert_eq!(proposals(&m), vec!["ike:encr#1024-dh#999"]);
    }
}
