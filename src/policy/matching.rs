//! Which rule governs a flow.
//!
//! Every filter of every enabled rule is tried in both directions when it is mirrored (the
//! mirror swaps addresses and ports). Of the filters that match, the most specific wins,
//! compared in this order (each step only breaks the previous step's ties):
//!
//! 1. more endpoints given as exact addresses (`me`, an address, a DNS name);
//! 2. then more endpoints given as subnets (so exact before subnet before `any`);
//! 3. then longer subnet prefixes (their lengths added up);
//! 4. then a specific protocol before `any`;
//! 5. then more specific ports (destination and source) before `any` port;
//! 6. then the earlier rule in the file, the earlier filter in its list, and the filter as
//!    written before its mirror.
//!
//! A flow no filter matches is not governed by the policy: it passes in the clear. The
//! default response rule never matches a flow, since it only answers a peer's request.

use std::cmp::Reverse;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use super::model::*;

/// One direction of traffic: what a packet's headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// IP protocol number.
    pub protocol: u8,
    /// Source address.
    pub src: IpAddr,
    /// Source port (TCP and UDP).
    pub src_port: Option<u16>,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port (TCP and UDP).
    pub dst_port: Option<u16>,
}

impl Flow {
    /// The same conversation in the other direction.
    pub fn reversed(&self) -> Flow {
        Flow {
            protocol: self.protocol,
            src: self.dst,
            src_port: self.dst_port,
            dst: self.src,
            dst_port: self.src_port,
        }
    }
}

fn endpoint_text(ip: IpAddr, port: Option<u16>) -> String {
    match port {
        Some(p) => SocketAddr::new(ip, p).to_string(),
        None => ip.to_string(),
    }
}

impl fmt::Display for Flow {
    /// `tcp 192.0.2.1:40000 -> 192.0.2.2:6667`, the form [`Flow::from_str`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} -> {}",
            protocol_name(self.protocol),
            endpoint_text(self.src, self.src_port),
            endpoint_text(self.dst, self.dst_port)
        )
    }
}

/// Why a flow description could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the flow {text:?}: {reason}; write it as \"tcp 192.0.2.1:40000 -> 192.0.2.2:6667\" (protocol tcp, udp, icmp or a number; ports on tcp and udp only)")]
pub struct FlowParseError {
    /// The text given.
    pub text: String,
    /// What was wrong.
    pub reason: String,
}

impl FromStr for Flow {
    type Err = FlowParseError;

    /// Reads `PROTO SRC -> DST` where SRC and DST are `ip`, `ip:port` or `[ipv6]:port`.
    fn from_str(text: &str) -> Result<Flow, FlowParseError> {
        let fail = |reason: String| FlowParseError {
            text: text.to_string(),
            reason,
        };
        let (proto, rest) = text
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| fail("expected a protocol, then SRC -> DST".into()))?;
        let (src, dst) = rest
            .split_once("->")
            .ok_or_else(|| fail("expected \"->\" between source and destination".into()))?;
        let protocol =
            parse_protocol(proto).ok_or_else(|| fail(format!("unknown protocol {proto:?}")))?;
        let (src, src_port) = parse_endpoint(src.trim()).map_err(&fail)?;
        let (dst, dst_port) = parse_endpoint(dst.trim()).map_err(&fail)?;
        let has_ports = protocol == TCP || protocol == UDP;
        if has_ports != (src_port.is_some() && dst_port.is_some()) {
            return Err(fail(
                "give both ports for tcp and udp, and none otherwise".into(),
            ));
        }
        Ok(Flow {
            protocol,
            src,
            src_port,
            dst,
            dst_port,
        })
    }
}

fn parse_protocol(word: &str) -> Option<u8> {
    match word.to_ascii_lowercase().as_str() {
        "tcp" => Some(TCP),
        "udp" => Some(UDP),
        "icmp" => Some(ICMP),
        n => n.parse().ok(),
    }
}

fn parse_endpoint(word: &str) -> Result<(IpAddr, Option<u16>), String> {
    if let Ok(sa) = word.parse::<SocketAddr>() {
        return Ok((sa.ip(), Some(sa.port())));
    }
    word.parse::<IpAddr>()
        .map(|ip| (ip, None))
        .map_err(|_| format!("{word:?} is not an address or address:port"))
}

/// How specific a filter is; larger is more specific (see the module documentation for the
/// order of the fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Specificity {
    /// Endpoints given as exact addresses (0-2).
    pub exact_addresses: u8,
    /// Endpoints given as subnets (0-2).
    pub subnets: u8,
    /// Sum of the subnets' prefix lengths.
    pub prefix_bits: u16,
    /// 1 for a specific protocol, 0 for any.
    pub protocol: u8,
    /// Specific ports (0-2).
    pub ports: u8,
}

impl Specificity {
    /// The specificity of a filter.
    pub fn of(f: &Filter) -> Specificity {
        let (mut exact, mut subnets, mut bits) = (0, 0, 0u16);
        for a in [&f.source, &f.destination] {
            match a {
                Address::Me | Address::Ip(_) | Address::Dns { .. } => exact += 1,
                Address::Subnet(s) => {
                    subnets += 1;
                    bits += u16::from(s.prefix);
                }
                Address::Any => {}
            }
        }
        Specificity {
            exact_addresses: exact,
            subnets,
            prefix_bits: bits,
            protocol: u8::from(f.protocol != Protocol::Any),
            ports: u8::from(f.source_port.is_some()) + u8::from(f.destination_port.is_some()),
        }
    }
}

/// The rule that governs a flow, and how it was found.
#[derive(Debug, Clone, Copy)]
pub struct Match<'p> {
    /// Index into [`Policy::rules`].
    pub rule_index: usize,
    /// The rule.
    pub rule: &'p Rule,
    /// The rule's filter list.
    pub filter_list: &'p FilterList,
    /// Index of the filter within its list.
    pub filter_index: usize,
    /// The filter as written (not mirrored).
    pub filter: &'p Filter,
    /// Whether the flow matched the filter's mirror (the reverse direction).
    pub mirrored: bool,
    /// The rule's filter action.
    pub action: &'p FilterAction,
    /// The filter's specificity.
    pub specificity: Specificity,
}

/// What cleartext traffic on a matched flow means under its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleartext {
    /// The rule allows it (permit, or negotiate with a fallback to the clear, or the first
    /// inbound packet under "accept unsecured communication").
    Allowed,
    /// The rule requires protection: a `cleartext-violation`.
    Violation,
    /// The rule blocks the flow; seeing it at all means the policy is not enforced.
    Blocked,
}

impl Match<'_> {
    /// The filter in the direction that matched (the mirror when [`Match::mirrored`]).
    pub fn directed_filter(&self) -> Filter {
        if self.mirrored {
            self.filter.mirror()
        } else {
            self.filter.clone()
        }
    }

    /// What it means to see this flow in the clear. `inbound` tells whether the flow's
    /// destination is this host, which decides "accept unsecured communication".
    pub fn cleartext(&self, inbound: bool) -> Cleartext {
        let a = self.action;
        match a.action {
            Action::Permit => Cleartext::Allowed,
            Action::Block => Cleartext::Blocked,
            Action::Negotiate if a.allow_fallback_to_clear => Cleartext::Allowed,
            Action::Negotiate if a.accept_unsecured && inbound => Cleartext::Allowed,
            Action::Negotiate => Cleartext::Violation,
        }
    }
}

/// Whether an address of a filter covers `ip`.
pub fn address_matches(policy: &Policy, a: &Address, ip: IpAddr) -> bool {
    match a {
        Address::Me => policy.is_me(ip),
        Address::Any => true,
        Address::Ip(x) => *x == ip,
        Address::Subnet(s) => s.contains(ip),
        Address::Dns { addresses, .. } => addresses.contains(&ip),
    }
}

fn port_matches(filter_port: Option<u16>, port: Option<u16>) -> bool {
    filter_port.is_none() || filter_port == port
}

/// Whether a filter, in the direction written, matches a flow.
pub fn filter_matches(policy: &Policy, f: &Filter, flow: &Flow) -> bool {
    f.protocol.matches(flow.protocol)
        && address_matches(policy, &f.source, flow.src)
        && address_matches(policy, &f.destination, flow.dst)
        && port_matches(f.source_port, flow.src_port)
        && port_matches(f.destination_port, flow.dst_port)
}

/// Every filter that matches the flow, most specific first (the winner is first).
pub fn candidates<'p>(policy: &'p Policy, flow: &Flow) -> Vec<Match<'p>> {
    let mut out = Vec::new();
    for (rule_index, rule) in policy.rules.iter().enumerate() {
        if !rule.enabled {
            continue;
        }
        let list = policy.filter_list_of(rule);
        for (filter_index, filter) in list.filters.iter().enumerate() {
            let forward = filter_matches(policy, filter, flow);
            let mirrored =
                !forward && filter.mirrored && filter_matches(policy, filter, &flow.reversed());
            if forward || mirrored {
                out.push(Match {
                    rule_index,
                    rule,
                    filter_list: list,
                    filter_index,
                    filter,
                    mirrored,
                    action: policy.filter_action_of(rule),
                    specificity: Specificity::of(filter),
                });
            }
        }
    }
    out.sort_by_key(|m| {
        (
            Reverse(m.specificity),
            m.rule_index,
            m.filter_index,
            m.mirrored,
        )
    });
    out
}

/// The winning match (see the module documentation).
pub fn best<'p>(policy: &'p Policy, flow: &Flow) -> Option<Match<'p>> {
    candidates(policy, flow).into_iter().next()
}

/// See [`Policy::rules_between`].
pub fn rules_between(policy: &Policy, a: IpAddr, b: IpAddr) -> Vec<usize> {
    let covers = |f: &Filter, x: IpAddr, y: IpAddr| {
        address_matches(policy, &f.source, x) && address_matches(policy, &f.destination, y)
    };
    let mut found: Vec<(Reverse<Specificity>, usize)> = Vec::new();
    for (i, rule) in policy.rules.iter().enumerate() {
        if !rule.enabled || policy.filter_action_of(rule).action != Action::Negotiate {
            continue;
        }
        let tunnel = rule.tunnel_endpoint.is_some_and(|t| t == a || t == b);
        let best = policy
            .filter_list_of(rule)
            .filters
            .iter()
            .filter(|f| tunnel || covers(f, a, b) || (f.mirrored && covers(f, b, a)))
            .map(Specificity::of)
            .max();
        if let Some(s) = best {
            found.push((Reverse(s), i));
        }
    }
    found.sort();
    found.into_iter().map(|(_, i)| i).collect()
}

/// One sentence per field saying why the (directed) filter matches the flow.
pub fn reasons(m: &Match<'_>, flow: &Flow) -> Vec<String> {
    let f = m.directed_filter();
    let mut out = Vec::new();
    if m.mirrored {
        out.push(format!(
            "the filter is mirrored and the flow runs in its reverse direction ({})",
            f.summary()
        ));
    }
    out.push(address_reason("source", &f.source, flow.src));
    out.push(address_reason("destination", &f.destination, flow.dst));
    out.push(match f.protocol {
        Protocol::Any => format!(
            "protocol {} is covered by any protocol",
            protocol_name(flow.protocol)
        ),
        p => format!("protocol {} is the filter's protocol", p),
    });
    for (what, fp, port) in [
        ("source port", f.source_port, flow.src_port),
        ("destination port", f.destination_port, flow.dst_port),
    ] {
        if let (Some(p), _) | (None, Some(p)) = (fp, port) {
            let how = if fp.is_some() {
                "is the filter's port"
            } else {
                "is covered by any port"
            };
            out.push(format!("{what} {p} {how}"));
        }
    }
    out
}

fn address_reason(what: &str, a: &Address, ip: IpAddr) -> String {
    match a {
        Address::Me => format!("{what} {ip} is me (this host's address)"),
        Address::Any => format!("{what} {ip} is covered by any address"),
        Address::Ip(_) => format!("{what} {ip} is the filter's address"),
        Address::Subnet(s) => format!("{what} {ip} lies in the subnet {s}"),
        Address::Dns { name, .. } => format!("{what} {ip} is an address of {name}"),
    }
}

/// Whether two addresses can both cover some address.
pub fn addresses_overlap(policy: &Policy, a: &Address, b: &Address) -> bool {
    match (exact_set(policy, a), exact_set(policy, b)) {
        (Some(x), Some(y)) => x.iter().any(|ip| y.contains(ip)),
        (Some(x), None) => x.iter().any(|ip| address_matches(policy, b, *ip)),
        (None, Some(y)) => y.iter().any(|ip| address_matches(policy, a, *ip)),
        (None, None) => match (a, b) {
            (Address::Subnet(s), Address::Subnet(t)) => {
                s.contains(t.network) || t.contains(s.network)
            }
            _ => true,
        },
    }
}

/// The addresses an exact address stands for; `None` for a subnet or `any`.
fn exact_set(policy: &Policy, a: &Address) -> Option<Vec<IpAddr>> {
    match a {
        Address::Me => Some(policy.me.addresses.clone()),
        Address::Ip(ip) => Some(vec![*ip]),
        Address::Dns { addresses, .. } => Some(addresses.clone()),
        Address::Any | Address::Subnet(_) => None,
    }
}

/// Whether two directed filters can both match one packet.
pub fn filters_overlap(policy: &Policy, f: &Filter, g: &Filter) -> bool {
    let proto = match (f.protocol, g.protocol) {
        (Protocol::Number(a), Protocol::Number(b)) => a == b,
        _ => true,
    };
    let port = |a: Option<u16>, b: Option<u16>| a.is_none() || b.is_none() || a == b;
    proto
        && port(f.source_port, g.source_port)
        && port(f.destination_port, g.destination_port)
        && addresses_overlap(policy, &f.source, &g.source)
        && addresses_overlap(policy, &f.destination, &g.destination)
}
