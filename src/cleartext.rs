//! Policy-aware monitoring of cleartext: traffic that the assigned policy requires to be
//! protected but that crossed the wire in the clear (`cleartext-violation`).
//!
//! Only frames the decoder found not to be IPsec reach this watcher. Each is reduced to
//! its flow (protocol, addresses, ports), matched to its rule, and, when the rule's filter
//! action forbids cleartext, counted in a table bounded by [`MAX_FLOWS`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::policy::matching::Cleartext;
use crate::policy::{Flow, Policy};
use crate::wire::{ip, link, LinkType, Timestamp};

/// Most distinct violating flows remembered; further ones are only counted.
pub const MAX_FLOWS: usize = 4096;

/// A flow seen in the clear although its rule requires protection (or blocks it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CleartextFlow {
    /// The rule that governs the flow.
    pub rule: String,
    /// `tcp 192.0.2.1:40000 -> 192.0.2.2:6667`.
    pub flow: String,
    /// `violation` (the rule negotiates security) or `blocked` (the rule blocks the flow).
    pub verdict: String,
    /// Packets seen.
    pub packets: u64,
    /// IP bytes seen.
    pub bytes: u64,
    /// Frame of the first packet.
    pub first_frame: u64,
    /// Capture time of the first packet.
    pub first_seen: f64,
    /// Frame of the last packet.
    pub last_frame: u64,
    /// Capture time of the last packet.
    pub last_seen: f64,
}

#[derive(Debug, Clone)]
struct Entry {
    rule: usize,
    blocked: bool,
    packets: u64,
    bytes: u64,
    first: (u64, Timestamp),
    last: (u64, Timestamp),
}

/// The watcher: the policy and the table of violating flows.
#[derive(Debug)]
pub struct CleartextWatch {
    policy: Arc<Policy>,
    flows: HashMap<Flow, Entry, ahash::RandomState>,
    /// Violating packets of flows beyond the table's cap.
    pub overflow_packets: u64,
}

impl CleartextWatch {
    /// A watcher for `policy`.
    pub fn new(policy: Arc<Policy>) -> Self {
        CleartextWatch {
            policy,
            flows: HashMap::default(),
            overflow_packets: 0,
        }
    }

    /// A frame that is not IPsec: records it when its rule forbids cleartext.
    pub fn observe(&mut self, number: u64, ts: Timestamp, link: LinkType, frame: &[u8]) {
        let Some((flow, bytes)) = flow_of(link, frame) else {
            return;
        };
        let Some(m) = self.policy.match_flow(&flow) else {
            return;
        };
        let inbound = self.policy.is_me(flow.dst);
        let blocked = match m.cleartext(inbound) {
            Cleartext::Allowed => return,
            Cleartext::Violation => false,
            Cleartext::Blocked => true,
        };
        let rule = m.rule_index;
        if let Some(e) = self.flows.get_mut(&flow) {
            e.packets += 1;
            e.bytes += bytes;
            e.last = (number, ts);
        } else if self.flows.len() < MAX_FLOWS {
            let first = (number, ts);
            let entry = Entry {
                rule,
                blocked,
                packets: 1,
                bytes,
                first,
                last: first,
            };
            self.flows.insert(flow, entry);
        } else {
            self.overflow_packets += 1;
        }
    }

    /// The violating flows, in order of first appearance.
    pub fn flows(&self) -> Vec<CleartextFlow> {
        let mut out: Vec<CleartextFlow> = self
            .flows
            .iter()
            .map(|(flow, e)| CleartextFlow {
                rule: self
                    .policy
                    .rules
                    .get(e.rule)
                    .map(|r| r.name.clone())
                    .unwrap_or_default(),
                flow: flow_text(flow),
                verdict: if e.blocked { "blocked" } else { "violation" }.to_string(),
                packets: e.packets,
                bytes: e.bytes,
                first_frame: e.first.0,
                first_seen: e.first.1.as_secs_f64(),
                last_frame: e.last.0,
                last_seen: e.last.1.as_secs_f64(),
            })
            .collect();
        out.sort_by_key(|f| f.first_frame);
        out
    }
}

/// The flow of an IP frame and its IP length. Fragments after the first carry no ports and
/// are left out.
pub fn flow_of(link_type: LinkType, frame: &[u8]) -> Option<(Flow, u64)> {
    let l3 = link::strip(link_type, frame).ok()??;
    let hdr = ip::parse_header(l3.network, l3.bytes, l3.offset).ok()?;
    if hdr.fragment.is_some_and(|f| f.offset > 0) {
        return None;
    }
    let ports = match hdr.protocol {
        6 | 17 => hdr.payload.get(..4).map(|p| {
            (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            )
        }),
        _ => None,
    };
    let flow = Flow {
        protocol: hdr.protocol,
        src: hdr.src,
        src_port: ports.map(|p| p.0),
        dst: hdr.dst,
        dst_port: ports.map(|p| p.1),
    };
    Some((flow, l3.bytes.len() as u64))
}

fn endpoint(ip: IpAddr, port: Option<u16>) -> String {
    match (ip, port) {
        (IpAddr::V6(v6), Some(p)) => format!("[{v6}]:{p}"),
        (ip, Some(p)) => format!("{ip}:{p}"),
        (ip, None) => ip.to_string(),
    }
}

fn flow_text(f: &Flow) -> String {
    format!(
        "{} {} -> {}",
        crate::policy::protocol_name(f.protocol),
        endpoint(f.src, f.src_port),
        endpoint(f.dst, f.dst_port)
    )
}
