//! Warnings about a policy that loads but may not do what its author meant.
//!
//! Errors (a policy that cannot be used) are found while the file is built, in
//! [`file`](super::file), because they stop the build; everything here runs on a complete
//! [`Policy`] and never stops it.

use super::matching::{filters_overlap, Specificity};
use super::model::*;
use super::{Diagnostic, Level};

/// Preshared keys shorter than this draw a warning.
pub const SHORT_KEY_CHARS: usize = 16;

/// IKE's UDP ports: 500, and 4500 for NAT traversal (RFC 3947, RFC 7296 section 2.23).
const IKE_PORTS: [u16; 2] = [500, 4500];

/// Every warning about a policy, in no particular order.
pub fn warnings(p: &Policy) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut warn = |line: usize, message: String| {
        out.push(Diagnostic {
            level: Level::Warning,
            origin: p.origin.clone(),
            line,
            message,
        })
    };
    unmirrored(p, &mut warn);
    empty_lists(p, &mut warn);
    for rule in p.rules.iter().filter(|r| r.enabled) {
        short_keys(rule, &mut warn);
        kerberos_only(p, rule, &mut warn);
        matches_ike(p, rule, &mut warn);
    }
    if let Some(dr) = &p.default_response {
        if dr.authentication == [AuthMethod::Kerberos] {
            warn(0, kerberos_text("the default response rule"));
        }
    }
    uses_ah(p, &mut warn);
    overlaps(p, &mut warn);
    out
}

fn unmirrored(p: &Policy, warn: &mut impl FnMut(usize, String)) {
    for list in &p.filter_lists {
        for f in list.filters.iter().filter(|f| !f.mirrored) {
            warn(
                f.line,
                format!(
                    "filter {} in {:?} is not mirrored: the answers are not covered, and IPsec \
                     is usually unsuccessful without mirrored filters; remove mirrored = false",
                    f.summary(),
                    list.name
                ),
            );
        }
    }
}

fn empty_lists(p: &Policy, warn: &mut impl FnMut(usize, String)) {
    for list in p.filter_lists.iter().filter(|l| l.filters.is_empty()) {
        warn(
            list.line,
            format!(
                "filter list {:?} has no filters, so its rules match nothing",
                list.name
            ),
        );
    }
}

fn short_keys(rule: &Rule, warn: &mut impl FnMut(usize, String)) {
    for a in &rule.authentication {
        if let AuthMethod::PresharedKey(k) = a {
            if k.secret.len() < SHORT_KEY_CHARS {
                warn(
                    rule.line,
                    format!(
                        "rule {:?}: the preshared key has {} characters; use at least {} \
                         (a long string you can type without mistakes)",
                        rule.name,
                        k.secret.len(),
                        SHORT_KEY_CHARS
                    ),
                );
            }
        }
    }
}

fn kerberos_text(who: &str) -> String {
    format!(
        "{who} authenticates with Kerberos only: that needs both hosts in one Windows domain, \
         and the lab cannot enforce it; add a certificate or preshared-key method"
    )
}

fn kerberos_only(p: &Policy, rule: &Rule, warn: &mut impl FnMut(usize, String)) {
    let negotiates = p.filter_action_of(rule).action == Action::Negotiate;
    if negotiates && rule.authentication == [AuthMethod::Kerberos] {
        warn(rule.line, kerberos_text(&format!("rule {:?}", rule.name)));
    }
}

/// Whether a filter (either direction) matches IKE between its hosts: UDP with ports that are
/// unset or IKE's own. Windows 2000 exempted IKE from its filters by default; the warning is
/// for IKE daemons and packet filters that have no such exemption.
fn covers_ike(f: &Filter) -> bool {
    let udp = f.protocol.matches(UDP);
    let ike_port = |p: Option<u16>| match p {
        None => true,
        Some(p) => IKE_PORTS.contains(&p),
    };
    udp && ike_port(f.source_port) && ike_port(f.destination_port)
}

fn matches_ike(p: &Policy, rule: &Rule, warn: &mut impl FnMut(usize, String)) {
    let action = p.filter_action_of(rule);
    if action.action == Action::Permit {
        return;
    }
    let list = p.filter_list_of(rule);
    if let Some(f) = list.filters.iter().find(|f| covers_ike(f)) {
        let effect = match action.action {
            Action::Block => "blocked",
            _ => "held until IPsec protects it, which needs IKE first (a loop)",
        };
        warn(
            f.line,
            format!(
                "filter {} of {:?} also matches IKE itself (UDP 500/4500), so under rule {:?} \
                 the negotiation would be {effect}; narrow the filter or add a more specific \
                 permit rule for UDP 500 and 4500",
                f.summary(),
                list.name,
                rule.name
            ),
        );
    }
}

fn uses_ah(p: &Policy, warn: &mut impl FnMut(usize, String)) {
    for a in p
        .filter_actions
        .iter()
        .filter(|a| a.action == Action::Negotiate)
    {
        if a.security_methods.iter().any(|m| m.ah.is_some()) {
            warn(
                a.line,
                format!(
                    "filter action {:?} offers AH, which protects the IP addresses and so cannot \
                     cross a NAT; prefer ESP (\"high\") where a NAT may sit on the path",
                    a.name
                ),
            );
        }
    }
}

/// Both directions of a filter: as written, and its mirror when mirrored.
fn directions(f: &Filter) -> Vec<Filter> {
    let mut v = vec![f.clone()];
    if f.mirrored {
        v.push(f.mirror());
    }
    v
}

fn overlaps(p: &Policy, warn: &mut impl FnMut(usize, String)) {
    let rules: Vec<(usize, &Rule)> = p
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.enabled)
        .collect();
    for (i, (ia, a)) in rules.iter().enumerate() {
        for (ib, b) in rules.iter().skip(i + 1) {
            if a.filter_action == b.filter_action {
                continue;
            }
            if let Some((fa, fb)) = overlapping_pair(p, a, b) {
                warn(b.line, overlap_text(p, (*ia, a, fa), (*ib, b, fb)));
            }
        }
    }
}

fn overlapping_pair<'p>(p: &'p Policy, a: &Rule, b: &Rule) -> Option<(&'p Filter, &'p Filter)> {
    let (la, lb) = (p.filter_list_of(a), p.filter_list_of(b));
    for fa in &la.filters {
        for fb in &lb.filters {
            let hit = directions(fa)
                .iter()
                .any(|x| directions(fb).iter().any(|y| filters_overlap(p, x, y)));
            if hit {
                return Some((fa, fb));
            }
        }
    }
    None
}

fn overlap_text(p: &Policy, a: (usize, &Rule, &Filter), b: (usize, &Rule, &Filter)) -> String {
    let (sa, sb) = (Specificity::of(a.2), Specificity::of(b.2));
    let winner = if sb > sa { &b } else { &a };
    format!(
        "rules {} {:?} and {} {:?} both match some traffic ({} / {}) with different actions \
         ({:?} and {:?}); where both match, the more specific filter wins, here rule {:?}; \
         make sure that is intended",
        a.0 + 1,
        a.1.name,
        b.0 + 1,
        b.1.name,
        a.2.summary(),
        b.2.summary(),
        p.filter_action_of(a.1).name,
        p.filter_action_of(b.1).name,
        winner.1.name
    )
}

fn diagnostic_json(d: &Diagnostic) -> serde_json::Value {
    serde_json::json!({ "line": d.line, "message": d.message })
}

/// The `policy check --json` document (`schema: 1`): `valid`, `policy` (its name, or null),
/// `rules`, `errors` and `warnings` (each `{line, message}`).
pub fn check_json(file: &str, result: &Result<Policy, super::PolicyError>) -> serde_json::Value {
    let (name, rules, errors, warnings) = match result {
        Ok(p) => (
            Some(p.name.as_str()),
            p.rules.len(),
            &[][..],
            &p.warnings[..],
        ),
        Err(super::PolicyError::Invalid { errors, warnings }) => {
            (None, 0, &errors[..], &warnings[..])
        }
        Err(other) => {
            return serde_json::json!({
                "schema": 1, "file": file, "valid": false, "policy": null, "rules": 0,
                "errors": [{ "line": 0, "message": other.to_string() }], "warnings": [],
            })
        }
    };
    serde_json::json!({
        "schema": 1,
        "file": file,
        "valid": result.is_ok(),
        "policy": name,
        "rules": rules,
        "errors": errors.iter().map(diagnostic_json).collect::<Vec<_>>(),
        "warnings": warnings.iter().map(diagnostic_json).collect::<Vec<_>>(),
    })
}
