//! Proposals in the short notation users know from strongSwan's configuration
//! (`ike:aes128-sha256-modp2048`, `esp:aes256gcm16-ecp384`), so that a "no proposal
//! chosen" finding can show the offers next to each other.
//!
//! Algorithms without a short name are written as `TYPE#ID`; nothing is dropped. Each
//! proposal is written into one reused buffer and handed to the caller, who copies only
//! the ones it keeps: an SA's messages repeat the same few proposals.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::wire::ike::{Attribute, IkeMessage, PayloadBody, Proposal, Transform};

/// Most distinct proposal texts shared. Past it (only a peer making proposals up gets
/// there) each SA keeps a copy of its own, so that the set stays bounded.
const MAX_SHARED: usize = 1024;

/// One copy of each proposal text, shared by the IKE SAs that offered or accepted it.
/// The set is hashed with the standard library's keyed hasher: its keys come from the
/// wire.
#[derive(Debug, Default)]
pub(crate) struct Interner(HashSet<Arc<str>>);

impl Interner {
    /// The shared copy of `text`, made now if it is new.
    pub(crate) fn get(&mut self, text: &str) -> Arc<str> {
        if let Some(kept) = self.0.get(text) {
            return Arc::clone(kept);
        }
        let kept: Arc<str> = Arc::from(text);
        if self.0.len() < MAX_SHARED {
            self.0.insert(Arc::clone(&kept));
        }
        kept
    }
}

/// Calls `keep` with every proposal of the first SA payload in `msg`, one per IKEv2
/// proposal or IKEv1 transform (IKEv1 offers alternatives as transforms), in order,
/// until it returns `false`. `scratch` holds each proposal's text while `keep` runs.
pub(crate) fn each_proposal(
    msg: &IkeMessage,
    scratch: &mut String,
    mut keep: impl FnMut(&str) -> bool,
) {
    let v1 = msg.version() == 1;
    let Some(ps) = msg.payloads.iter().find_map(|p| match &p.body {
        PayloadBody::Sa { proposals, .. } => Some(proposals),
        _ => None,
    }) else {
        return;
    };
    for p in ps {
        if v1 {
            for t in &p.transforms {
                v1_transform(scratch, p.protocol_id, t);
                if !keep(scratch) {
                    return;
                }
            }
        } else {
            v2_proposal(scratch, p);
            if !keep(scratch) {
                return;
            }
        }
    }
}

/// `proto:part-part-...`, written part by part into a cleared buffer.
struct Joined<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> Joined<'a> {
    fn new(out: &'a mut String, protocol_id: u8) -> Self {
        out.clear();
        match protocol_id {
            1 => out.push_str("ike"),
            2 => out.push_str("ah"),
            3 => out.push_str("esp"),
            4 => out.push_str("ipcomp"),
            n => {
                let _ = write!(out, "proto{n}");
            }
        }
        out.push(':');
        Joined { out, empty: true }
    }

    /// The buffer, with a `-` written first unless this is the first part.
    fn part(&mut self) -> &mut String {
        if !self.empty {
            self.out.push('-');
        }
        self.empty = false;
        self.out
    }

    fn push(&mut self, name: &str) {
        self.part().push_str(name);
    }
}

fn key_length(attrs: &[Attribute], attr_type: u16) -> Option<u64> {
    attrs
        .iter()
        .find(|a| a.attr_type == attr_type)
        .and_then(|a| a.value)
}

/// IKEv2 (RFC 7296 §3.3.2): transforms grouped by type.
fn v2_proposal(out: &mut String, p: &Proposal) {
    let mut j = Joined::new(out, p.protocol_id);
    for ttype in [1u8, 3, 2, 4, 5] {
        for t in p.transforms.iter().filter(|t| t.transform_type == ttype) {
            v2_transform(&mut j, t, &p.transforms);
        }
    }
}

fn v2_transform(j: &mut Joined<'_>, t: &Transform, all: &[Transform]) {
    let id = t.transform_id;
    match t.transform_type {
        1 => v2_encr(j.part(), id, key_length(&t.attributes, 14)),
        2 => {
            // Written only when it differs from the integrity algorithm's hash (unknown
            // numbers never match: their written forms differ).
            let name = prf(id);
            let same = name.is_some()
                && all
                    .iter()
                    .filter(|x| x.transform_type == 3)
                    .any(|x| integ(x.transform_id) == name);
            if same {
                return;
            }
            let out = j.part();
            out.push_str("prf");
            match name {
                Some(n) => out.push_str(n),
                None => {
                    let _ = write!(out, "#{id}");
                }
            }
        }
        3 if id == 0 => {}
        3 => match integ(id) {
            Some(n) => j.push(n),
            None => {
                let _ = write!(j.part(), "integ#{id}");
            }
        },
        4 => write_dh(j.part(), id),
        5 => j.push(if id == 1 { "esn" } else { "noesn" }),
        other => {
            let _ = write!(j.part(), "type{other}#{id}");
        }
    }
}

fn v2_encr(out: &mut String, id: u16, bits: Option<u64>) {
    let fixed = match id {
        2 => "des",
        3 => "3des",
        11 => "null",
        28 => "chacha20poly1305",
        _ => "",
    };
    if !fixed.is_empty() {
        out.push_str(fixed);
        return;
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
        n => {
            let _ = write!(out, "encr#{n}");
            return;
        }
    };
    out.push_str("aes");
    if let Some(b) = bits {
        let _ = write!(out, "{b}");
    }
    out.push_str(mode);
}

fn prf(id: u16) -> Option<&'static str> {
    Some(match id {
        1 => "md5",
        2 => "sha1",
        4 => "aesxcbc",
        5 => "sha256",
        6 => "sha384",
        7 => "sha512",
        _ => return None,
    })
}

fn integ(id: u16) -> Option<&'static str> {
    Some(match id {
        1 => "md5",
        2 => "sha1",
        5 => "aesxcbc",
        12 => "sha256",
        13 => "sha384",
        14 => "sha512",
        _ => return None,
    })
}

/// The short name of a Diffie-Hellman group.
pub(crate) fn dh(id: u16) -> Cow<'static, str> {
    match dh_name(id) {
        Some(n) => n.into(),
        None => format!("dh#{id}").into(),
    }
}

fn write_dh(out: &mut String, id: u16) {
    match dh_name(id) {
        Some(n) => out.push_str(n),
        None => {
            let _ = write!(out, "dh#{id}");
        }
    }
}

fn dh_name(id: u16) -> Option<&'static str> {
    Some(match id {
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
        _ => return None,
    })
}

/// IKEv1: one proposal per transform; phase-1 algorithms live in Oakley attributes
/// (RFC 2409 Appendix A), phase-2 ones in the transform ID and IPsec attributes
/// (RFC 2407 §4.5).
fn v1_transform(out: &mut String, protocol_id: u8, t: &Transform) {
    let mut j = Joined::new(out, protocol_id);
    if protocol_id == 1 {
        v1_ike(&mut j, &t.attributes);
    } else {
        v1_ipsec(&mut j, protocol_id, t);
    }
}

fn v1_ike(j: &mut Joined<'_>, attrs: &[Attribute]) {
    let get = |t: u16| key_length(attrs, t);
    if let Some(e) = get(1) {
        let out = j.part();
        match e {
            1 => out.push_str("des"),
            5 => out.push_str("3des"),
            7 => {
                out.push_str("aes");
                if let Some(b) = get(14) {
                    let _ = write!(out, "{b}");
                }
            }
            n => {
                let _ = write!(out, "encr#{n}");
            }
        }
    }
    if let Some(h) = get(2) {
        match h {
            1 => j.push("md5"),
            2 => j.push("sha1"),
            4 => j.push("sha256"),
            5 => j.push("sha384"),
            6 => j.push("sha512"),
            n => {
                let _ = write!(j.part(), "hash#{n}");
            }
        }
    }
    if let Some(g) = get(4) {
        write_dh(j.part(), g as u16);
    }
}

fn v1_ipsec(j: &mut Joined<'_>, protocol_id: u8, t: &Transform) {
    let get = |ty: u16| key_length(&t.attributes, ty);
    if protocol_id == 3 {
        // ESP transform IDs (RFC 2407 §4.4.4) share IKEv2's ENCR numbering.
        v2_encr(j.part(), t.transform_id, get(6));
    }
    if let Some(a) = get(5) {
        match a {
            1 => j.push("md5"),
            2 => j.push("sha1"),
            5 => j.push("sha256"),
            6 => j.push("sha384"),
            7 => j.push("sha512"),
            n => {
                let _ = write!(j.part(), "auth#{n}");
            }
        }
    }
    if let Some(g) = get(3) {
        write_dh(j.part(), g as u16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ike::{IkeHeader, Payload};

    /// Every proposal of `msg`, each as its own string.
    fn proposals(msg: &IkeMessage) -> Vec<String> {
        let mut all = Vec::new();
        each_proposal(msg, &mut String::new(), |p| {
            all.push(p.to_string());
            true
        });
        all
    }

    fn encr(id: u16, bits: Option<u64>) -> String {
        let mut out = String::new();
        v2_encr(&mut out, id, bits);
        out
    }

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
    fn the_walk_stops_when_the_caller_has_what_it_wants() {
        let m = message(
            1,
            1,
            vec![
                tr(0, 1, &[(1, 5), (2, 2), (4, 2)]),
                tr(0, 1, &[(1, 7), (14, 128), (2, 2), (4, 14)]),
            ],
        );
        let mut seen = Vec::new();
        each_proposal(&m, &mut String::from("left over"), |p| {
            seen.push(p.to_string());
            false
        });
        assert_eq!(seen, vec!["ike:3des-sha1-modp1024"]);
    }

    #[test]
    fn encryption_names_carry_key_length_and_mode() {
        assert_eq!(encr(13, None), "aesctr");
        assert_eq!(encr(20, Some(256)), "aes256gcm16");
        assert_eq!(encr(12, Some(192)), "aes192");
        assert_eq!(encr(3, Some(192)), "3des");
        assert_eq!(encr(99, Some(128)), "encr#99");
    }

    #[test]
    fn unknown_algorithms_keep_their_numbers() {
        let m = message(2, 1, vec![tr(1, 1024, &[]), tr(4, 999, &[])]);
        assert_eq!(proposals(&m), vec!["ike:encr#1024-dh#999"]);
    }
}
