//! The policy as an nftables table that enforces what charon does not: Permit, Block, and
//! no cleartext where a Negotiate action requires protection.
//!
//! Only traffic to and from this host is filtered (the `input` and `output` hooks; with
//! kernel-libipsec `postrouting` instead of `output`, where a packet the route chain sent
//! into the TUN device shows that device); a tunnel gateway's forwarded traffic is left to
//! charon's policies. Every directed filter
//! (a filter, and its mirror when mirrored) lands in `output` when its source can be this
//! host and in `input` when its destination can be; `me` itself needs no match there.
//! Within a chain the filters come most specific first, so the first verdict is the one
//! `policy explain` gives.

use std::cmp::Reverse;
use std::fmt::Write;
use std::net::IpAddr;

use super::{DataPlane, RenderOptions};
use crate::policy::matching::Specificity;
use crate::policy::model::*;

/// Which hook a line belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hook {
    Input,
    Output,
}

/// A filter in one direction, with where it came from.
struct Directed<'p> {
    rule: &'p Rule,
    action: &'p FilterAction,
    filter_index: usize,
    mirrored: bool,
    filter: Filter,
    key: (Reverse<Specificity>, usize, usize, bool),
}

fn directed(policy: &Policy) -> Vec<Directed<'_>> {
    let mut out = Vec::new();
    for (ri, rule) in policy.rules.iter().enumerate().filter(|(_, r)| r.enabled) {
        let list = policy.filter_list_of(rule);
        for (fi, f) in list.filters.iter().enumerate() {
            let mut dirs = vec![(f.clone(), false)];
            if f.mirrored {
                dirs.push((f.mirror(), true));
            }
            for (filter, mirrored) in dirs {
                out.push(Directed {
                    rule,
                    action: policy.filter_action_of(rule),
                    filter_index: fi,
                    mirrored,
                    key: (Reverse(Specificity::of(f)), ri, fi, mirrored),
                    filter,
                });
            }
        }
    }
    out.sort_by_key(|d| d.key);
    out
}

/// Whether an address can be this host.
fn may_be_me(policy: &Policy, a: &Address) -> bool {
    match a {
        Address::Me | Address::Any => true,
        Address::Ip(ip) => policy.is_me(*ip),
        Address::Subnet(s) => policy.me.addresses.iter().any(|ip| s.contains(*ip)),
        Address::Dns { addresses, .. } => addresses.iter().any(|ip| policy.is_me(*ip)),
    }
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

/// `ip saddr 192.0.2.2 `, or nothing for `me` and `any`. Addresses of both families in one
/// DNS name are matched by the family of the first.
fn address_match(a: &Address, dir: &str) -> String {
    match a {
        Address::Me | Address::Any => String::new(),
        Address::Ip(ip) => format!("{} {dir} {ip} ", family(*ip)),
        Address::Subnet(s) => format!("{} {dir} {s} ", family(s.network)),
        Address::Dns { addresses, .. } => match addresses.as_slice() {
            [] => String::new(),
            [one] => format!("{} {dir} {one} ", family(*one)),
            many => {
                let list: Vec<String> = many.iter().map(|a| a.to_string()).collect();
                format!("{} {dir} {{ {} }} ", family(many[0]), list.join(", "))
            }
        },
    }
}

fn protocol_match(f: &Filter) -> String {
    let Protocol::Number(n) = f.protocol else {
        return String::new();
    };
    let name = protocol_name(n);
    let mut out = String::new();
    if f.protocol.has_ports() && (f.source_port.is_some() || f.destination_port.is_some()) {
        if let Some(p) = f.source_port {
            let _ = write!(out, "{name} sport {p} ");
        }
        if let Some(p) = f.destination_port {
            let _ = write!(out, "{name} dport {p} ");
        }
    } else {
        let _ = write!(out, "meta l4proto {name} ");
    }
    out
}

/// The match part of a line: addresses (leaving out this host's own end), then protocol.
fn matcher(f: &Filter, hook: Hook) -> String {
    let src = if hook == Hook::Output {
        String::new()
    } else {
        address_match(&f.source, "saddr")
    };
    let dst = if hook == Hook::Input {
        String::new()
    } else {
        address_match(&f.destination, "daddr")
    };
    format!("{src}{dst}{}", protocol_match(f))
}

/// The expression that says a packet is protected, per data plane and hook.
fn protected(plane: &DataPlane, hook: Hook) -> String {
    match (plane, hook) {
        (DataPlane::Kernel, Hook::Input) => "meta ipsec exists".into(),
        (DataPlane::Kernel, Hook::Output) => "rt ipsec exists".into(),
        (DataPlane::Libipsec { tun, .. }, Hook::Input) => format!("iifname \"{tun}\""),
        (DataPlane::Libipsec { tun, .. }, Hook::Output) => format!("oifname \"{tun}\""),
    }
}

fn describe(d: &Directed<'_>) -> String {
    let mirror = if d.mirrored { ", mirrored" } else { "" };
    format!(
        "# {:?}, filter {}{mirror}: {} ({})",
        d.rule.name,
        d.filter_index + 1,
        d.filter.summary(),
        d.action.action.as_str()
    )
}

/// The lines one directed filter adds to a hook's chain. With kernel-libipsec, the first
/// packet of each connection a Negotiate filter sends into the TUN device is also logged
/// for `ipsecmon enforce acquire`, naming the child SA: libipsec drops it when that SA is
/// not up yet and, before strongSwan 5.9.11, tells charon nothing (see
/// [`super::acquire`]).
fn verdict_lines(
    d: &Directed<'_>,
    hook: Hook,
    plane: &DataPlane,
    child: Option<&str>,
) -> Vec<String> {
    let m = matcher(&d.filter, hook);
    let a = d.action;
    let clear_ok = a.allow_fallback_to_clear || (hook == Hook::Input && a.accept_unsecured);
    match a.action {
        Action::Permit => vec![format!("{m}accept")],
        Action::Block => vec![format!("{m}drop")],
        Action::Negotiate if clear_ok => vec![format!("{m}accept")],
        Action::Negotiate => {
            let protected = protected(plane, hook);
            let mut lines = Vec::new();
            if let (DataPlane::Libipsec { .. }, Hook::Output, Some(c)) = (plane, hook, child) {
                lines.push(format!(
                    "{m}{protected} ct state new log prefix \"{}\" group {}",
                    super::acquire::prefix(c),
                    super::acquire::GROUP
                ));
            }
            lines.push(format!("{m}{protected} accept"));
            lines.push(format!("{m}drop"));
            lines
        }
    }
}

const IKE_PORTS: &str = "{ 500, 4500 }";

fn chain(
    out: &mut String,
    name: &str,
    hook: Hook,
    policy: &Policy,
    dirs: &[Directed<'_>],
    plane: &DataPlane,
    child_of: &[((usize, usize), String)],
) {
    let libipsec = matches!(plane, DataPlane::Libipsec { .. });
    let (hook_name, lo) = match hook {
        Hook::Input => ("input", "iif \"lo\""),
        Hook::Output if libipsec => ("postrouting", "oif \"lo\""),
        Hook::Output => ("output", "oif \"lo\""),
    };
    let _ = writeln!(out, "    chain {name} {{");
    let _ = writeln!(
        out,
        "        type filter hook {hook_name} priority filter; policy accept;"
    );
    if libipsec && hook == Hook::Output {
        // The output hook still names the device routed to before the route chain's mark
        // re-routed the packet; postrouting sees the device it really leaves by.
        let _ = writeln!(
            out,
            "        # only what this host sends; postrouting shows the real device"
        );
        let _ = writeln!(out, "        fib saddr type != local accept");
    }
    let _ = writeln!(out, "        {lo} accept");
    let _ = writeln!(
        out,
        "        # IKE and IPsec itself always pass: the policy never blocks its own negotiation"
    );
    let _ = writeln!(out, "        udp sport {IKE_PORTS} accept");
    let _ = writeln!(out, "        udp dport {IKE_PORTS} accept");
    let _ = writeln!(out, "        meta l4proto {{ esp, ah }} accept");
    for d in dirs {
        let end = match hook {
            Hook::Input => &d.filter.destination,
            Hook::Output => &d.filter.source,
        };
        if !may_be_me(policy, end) {
            continue;
        }
        let _ = writeln!(out, "        {}", describe(d));
        let child = child_of
            .iter()
            .find(|(k, _)| *k == (d.key.1, d.filter_index))
            .map(|(_, c)| c.as_str());
        for line in verdict_lines(d, hook, plane, child) {
            let _ = writeln!(out, "        {line}");
        }
    }
    let _ = writeln!(out, "    }}");
}

/// kernel-libipsec only: mark what a Negotiate filter covers, so charon's routing rule
/// sends it into the TUN device (see [`DataPlane::Libipsec`]).
fn route_chain(out: &mut String, policy: &Policy, dirs: &[Directed<'_>], fwmark: u32) {
    let _ = writeln!(out, "    chain route {{");
    let _ = writeln!(
        out,
        "        type route hook output priority mangle; policy accept;"
    );
    let _ = writeln!(out, "        udp sport {IKE_PORTS} return");
    let _ = writeln!(out, "        udp dport {IKE_PORTS} return");
    for d in dirs {
        if !may_be_me(policy, &d.filter.source) {
            continue;
        }
        let m = matcher(&d.filter, Hook::Output);
        let _ = writeln!(out, "        {}", describe(d));
        if d.action.action == Action::Negotiate {
            let _ = writeln!(out, "        {m}meta mark set {fwmark:#x} return");
        } else {
            let _ = writeln!(out, "        {m}return");
        }
    }
    let _ = writeln!(out, "    }}");
}

/// The whole ruleset file: it creates the table if needed, deletes it, and defines it
/// again, so loading it twice leaves one copy (nft applies a file as one transaction).
pub(super) fn ruleset(
    policy: &Policy,
    opts: &RenderOptions,
    child_of: &[((usize, usize), String)],
) -> String {
    let dirs = directed(policy);
    let table = format!("inet {}", opts.name);
    let mut out = String::new();
    let _ = writeln!(out, "#!/usr/sbin/nft -f");
    let _ = writeln!(
        out,
        "# Packet filter rendered by ipsecmon for the policy {:?} ({} data plane).",
        policy.name.replace('"', "'"),
        opts.data_plane.as_str()
    );
    let _ = writeln!(out, "table {table} {{}}");
    let _ = writeln!(out, "delete table {table}");
    let _ = writeln!(out, "table {table} {{");
    if let DataPlane::Libipsec { fwmark, .. } = &opts.data_plane {
        route_chain(&mut out, policy, &dirs, *fwmark);
    }
    chain(
        &mut out,
        "input",
        Hook::Input,
        policy,
        &dirs,
        &opts.data_plane,
        child_of,
    );
    chain(
        &mut out,
        "output",
        Hook::Output,
        policy,
        &dirs,
        &opts.data_plane,
        child_of,
    );
    let _ = writeln!(out, "}}");
    out
}
