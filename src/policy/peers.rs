//! Whether two policies, one for each end of a conversation, agree about the traffic
//! between those ends: the check the seed article asks for by hand ("review the filter lists
//! on each endpoint ... you can easily reverse the source and destination addresses or
//! reverse the ports").
//!
//! For every filter of every negotiating rule on one side that covers traffic between the
//! two hosts, one representative flow is built and matched against the other side. A filter
//! with protocol `any` is represented by TCP, and a port left open by the ephemeral port
//! 49152, so a rule on the other side that covers only some ports or protocols of an `any`
//! filter is judged by that one flow.

use std::net::IpAddr;

use super::diff::Change;
use super::matching::{address_matches, Flow};
use super::model::*;

/// The port that stands for "any port" in a representative flow.
const EPHEMERAL: u16 = 49152;

/// Agreements (`=`) and disagreements (`!`) between the policies of two peers, one per
/// conversation (a flow and its reverse count once); empty when neither covers traffic to
/// the other.
pub fn compare(a: &Policy, b: &Policy) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    let mut seen: Vec<Flow> = Vec::new();
    for (x, y) in [(a, b), (b, a)] {
        for (rule, flow) in representative_flows(x, y) {
            if seen.contains(&flow) || seen.contains(&flow.reversed()) {
                continue;
            }
            seen.push(flow);
            let (text, agree) = judge(x, rule, y, &flow);
            let sign = if agree { '=' } else { '!' };
            out.push(Change { sign, text });
        }
    }
    out
}

/// Whether the two policies can be compared as peers: each knows its own `me`, and they
/// do not share an address.
pub fn are_peers(a: &Policy, b: &Policy) -> bool {
    let (ma, mb) = (&a.me.addresses, &b.me.addresses);
    !ma.is_empty() && !mb.is_empty() && !ma.iter().any(|ip| mb.contains(ip))
}

fn representative_flows<'p>(x: &'p Policy, y: &Policy) -> Vec<(&'p Rule, Flow)> {
    let mut out = Vec::new();
    for rule in x.rules.iter().filter(|r| r.enabled) {
        if x.filter_action_of(rule).action != Action::Negotiate {
            continue;
        }
        for f in &x.filter_list_of(rule).filters {
            let mut dirs = vec![f.clone()];
            if f.mirrored {
                dirs.push(f.mirror());
            }
            out.extend(
                dirs.iter()
                    .filter_map(|d| flow_for(x, y, d))
                    .map(|fl| (rule, fl)),
            );
        }
    }
    out
}

/// A flow the directed filter `d` of `x` covers between `x` and `y`, if there is one.
fn flow_for(x: &Policy, y: &Policy, d: &Filter) -> Option<Flow> {
    let pick =
        |a: &Address, from: &[IpAddr]| from.iter().copied().find(|ip| address_matches(x, a, *ip));
    let (xs, ys) = (&x.me.addresses, &y.me.addresses);
    let (src, dst) = match (pick(&d.source, xs), pick(&d.destination, ys)) {
        (Some(s), Some(t)) => (s, t),
        _ => (pick(&d.source, ys)?, pick(&d.destination, xs)?),
    };
    let protocol = match d.protocol {
        Protocol::Any => TCP,
        Protocol::Number(n) => n,
    };
    let ports = protocol == TCP || protocol == UDP;
    let port = |p: Option<u16>| ports.then(|| p.unwrap_or(EPHEMERAL));
    Some(Flow {
        protocol,
        src,
        src_port: port(d.source_port),
        dst,
        dst_port: port(d.destination_port),
    })
}

/// One sentence about how `y` treats a flow that `x` protects under `rule`, and whether
/// they agree.
fn judge(x: &Policy, rule: &Rule, y: &Policy, flow: &Flow) -> (String, bool) {
    let head = format!("{flow}: {:?} rule {:?}", x.name, rule.name);
    let Some(m) = y.match_flow(flow) else {
        return (
            format!(
                "{head} negotiates, but {:?} has no rule for it: the filters do not match \
                 (reversed addresses or ports?) and the SA will not come up",
                y.name
            ),
            false,
        );
    };
    let theirs = format!("{:?} rule {:?}", y.name, m.rule.name);
    if m.action.action != Action::Negotiate {
        let what = m.action.action.as_str();
        return (
            format!("{head} negotiates, but {theirs} would {what} it"),
            false,
        );
    }
    let mut problems = Vec::new();
    if !x.key_exchange.iter().any(|k| y.key_exchange.contains(k)) {
        problems.push(
            "no key exchange method in common (no proposal chosen for the IKE SA)".to_string(),
        );
    }
    problems.extend(disagreements(
        x.filter_action_of(rule),
        rule,
        m.action,
        m.rule,
    ));
    if problems.is_empty() {
        (format!("{head} and {theirs} agree"), true)
    } else {
        (
            format!("{head} and {theirs}: {}", problems.join("; ")),
            false,
        )
    }
}

fn disagreements(xa: &FilterAction, xr: &Rule, ya: &FilterAction, yr: &Rule) -> Vec<String> {
    let mut out = Vec::new();
    let same = |m: &SecurityMethod, n: &SecurityMethod| m.ah == n.ah && m.esp == n.esp;
    let common = xa
        .security_methods
        .iter()
        .any(|m| ya.security_methods.iter().any(|n| same(m, n)));
    if !common {
        out.push("no security method in common (no proposal chosen)".to_string());
    }
    if xa.session_key_pfs != ya.session_key_pfs {
        out.push("one side requires session key PFS and the other does not".to_string());
    }
    let shared = xr
        .authentication
        .iter()
        .any(|m| yr.authentication.contains(m));
    if !shared {
        out.push(auth_problem(xr, yr));
    }
    out
}

fn auth_problem(xr: &Rule, yr: &Rule) -> String {
    let psk = |r: &Rule| {
        r.authentication
            .iter()
            .any(|m| matches!(m, AuthMethod::PresharedKey(_)))
    };
    if psk(xr) && psk(yr) {
        "the preshared keys differ (authentication will fail)".to_string()
    } else {
        "no authentication method in common".to_string()
    }
}
