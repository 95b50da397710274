//! What the payloads of a negotiation say about who talks and what they protect: the
//! identities (IKEv2 IDi / IDr, IKEv1 phase-1 ID) and the traffic selectors (IKEv2 TSi /
//! TSr, IKEv1 Quick Mode IDci / IDcr). They are mostly inside encrypted payloads, so they
//! appear when keys are given, as text for the report.

use std::net::IpAddr;

use crate::wire::ike::{Identification, IkeMessage, PayloadBody, TrafficSelector};

/// IKEv2 IDi.
const IDI: u8 = 35;
/// IKEv2 IDr.
const IDR: u8 = 36;
/// IKEv2 TSi.
const TSI: u8 = 44;
/// IKEv1 ID.
const ID_V1: u8 = 5;
/// Most selectors kept per side.
const MAX_SELECTORS: usize = 8;

/// Selectors of the two sides of a child SA: (initiator's, responder's), as text.
pub(crate) type Selectors = (Vec<String>, Vec<String>);

/// The identities in a message: IKEv2 IDi and IDr, or an IKEv1 phase-1 message's ID
/// (whose owner is the message's sender, `from_initiator`).
pub(crate) fn identities(msg: &IkeMessage, from_initiator: bool) -> [Option<String>; 2] {
    let mut out = [None, None];
    let h = &msg.header;
    let phase1_v1 = h.major == 1 && matches!(h.exchange_type, 2 | 4) && h.message_id == 0;
    for p in &msg.payloads {
        let PayloadBody::Identification(id) = &p.body else {
            continue;
        };
        let slot = match (h.major, p.payload_type) {
            (2, IDI) => 0,
            (2, IDR) => 1,
            (1, ID_V1) if phase1_v1 => usize::from(!from_initiator),
            _ => continue,
        };
        out[slot].get_or_insert_with(|| id.value.clone());
    }
    out
}

/// The traffic selectors a message proposes or accepts: IKEv2 TSi and TSr, or the two
/// client IDs of an IKEv1 Quick Mode message (RFC 2409 §5.5). Sides are those of the
/// exchange: the requester's first.
pub(crate) fn selectors(msg: &IkeMessage) -> Option<Selectors> {
    match msg.header.major {
        2 => v2_selectors(msg),
        _ if msg.header.exchange_type == 32 => v1_selectors(msg),
        _ => None,
    }
}

fn v2_selectors(msg: &IkeMessage) -> Option<Selectors> {
    let mut out: [Option<Vec<String>>; 2] = [None, None];
    for p in &msg.payloads {
        if let PayloadBody::TrafficSelectors(list) = &p.body {
            let side = usize::from(p.payload_type != TSI);
            let text = list.iter().take(MAX_SELECTORS).map(ts_text).collect();
            out[side].get_or_insert(text);
        }
    }
    let [i, r] = out;
    Some((i?, r?))
}

fn v1_selectors(msg: &IkeMessage) -> Option<Selectors> {
    let ids: Vec<&Identification> = msg
        .payloads
        .iter()
        .filter_map(|p| match &p.body {
            PayloadBody::Identification(id) if p.payload_type == ID_V1 => Some(id),
            _ => None,
        })
        .collect();
    match ids[..] {
        [ci, cr, ..] => Some((vec![id_text(ci)], vec![id_text(cr)])),
        _ => None,
    }
}

/// `198.51.100.0/24`, `10.0.0.1-10.0.0.9`, with ` proto 6` and ` port 6667` or
/// ` ports 1-1023` when they are not "any".
fn ts_text(ts: &TrafficSelector) -> String {
    let mut out = range_text(ts.start_addr, ts.end_addr);
    out.push_str(&proto_ports(ts.ip_protocol, ts.start_port, ts.end_port));
    out
}

/// An IKEv1 client ID: its address text with protocol and port when given.
fn id_text(id: &Identification) -> String {
    let (lo, hi) = if id.port == 0 {
        (0, u16::MAX)
    } else {
        (id.port, id.port)
    };
    format!("{}{}", id.value, proto_ports(id.protocol, lo, hi))
}

fn proto_ports(protocol: u8, lo: u16, hi: u16) -> String {
    let mut out = String::new();
    if protocol != 0 {
        out.push_str(&format!(" proto {protocol}"));
    }
    match (lo, hi) {
        (0, u16::MAX) => {}
        (a, b) if a == b => out.push_str(&format!(" port {a}")),
        (a, b) => out.push_str(&format!(" ports {a}-{b}")),
    }
    out
}

/// A range as a prefix when it is one, else `first-last`.
fn range_text(start: IpAddr, end: IpAddr) -> String {
    let (s, e, width) = match (start, end) {
        (IpAddr::V4(s), IpAddr::V4(e)) => (u128::from(u32::from(s)), u128::from(u32::from(e)), 32),
        (IpAddr::V6(s), IpAddr::V6(e)) => (u128::from(s), u128::from(e), 128),
        _ => return format!("{start}-{end}"),
    };
    if s == e {
        return start.to_string();
    }
    let span = s ^ e;
    let host_bits = 128 - span.leading_zeros();
    let mask = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    if span == mask && s & mask == 0 && e & mask == mask && host_bits <= width {
        return format!("{start}/{}", width - host_bits);
    }
    format!("{start}-{end}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_print_as_prefixes_when_they_are() {
        assert_eq!(
            range_text(ip("198.51.100.0"), ip("198.51.100.255")),
            "198.51.100.0/24"
        );
        assert_eq!(
            range_text(ip("0.0.0.0"), ip("255.255.255.255")),
            "0.0.0.0/0"
        );
        assert_eq!(range_text(ip("10.0.0.1"), ip("10.0.0.1")), "10.0.0.1");
        assert_eq!(
            range_text(ip("10.0.0.1"), ip("10.0.0.9")),
            "10.0.0.1-10.0.0.9"
        );
        assert_eq!(
            range_text(ip("2001:db8::"), ip("2001:db8::ffff")),
            "2001:db8::/112"
        );
        assert_eq!(
            range_text(ip("::"), ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
            "::/0"
        );
    }

    #[test]
    fn selectors_name_protocol_and_ports_when_narrowed() {
        let ts = TrafficSelector {
            ts_type: 7,
            ip_protocol: 6,
            start_port: 6667,
            end_port: 6667,
            start_addr: ip("203.0.113.0"),
            end_addr: ip("203.0.113.255"),
        };
        assert_eq!(ts_text(&ts), "203.0.113.0/24 proto 6 port 6667");
        let id = Identification {
            id_type: 4,
            protocol: 17,
            port: 0,
            value: "10.0.0.0/24".into(),
        };
        assert_eq!(id_text(&id), "10.0.0.0/24 proto 17");
        assert_eq!(proto_ports(0, 1, 1023), " ports 1-1023");
    }
}
