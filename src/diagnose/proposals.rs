//! What each side of a `no-proposal-chosen` failure offered, and the closest mismatch.
//!
//! The tracker writes proposals in strongSwan's short notation (`ike:aes128-sha256-
//! modp2048`, `esp:aes256gcm16-ecp384`). A responder that refuses every proposal names
//! none of its own, so its side comes from elsewhere in the capture: proposals it offered
//! when it initiated a negotiation itself, and proposals it chose before between the same
//! peers. When neither exists, the finding says so instead of guessing.

use std::collections::BTreeSet;

use super::scope::Scope;
use crate::track::report::IkeSaReport;

/// The algorithm families a proposal is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Family {
    Encryption,
    Integrity,
    Prf,
    Group,
    Esn,
}

impl Family {
    fn of(token: &str) -> Family {
        const GROUPS: [&str; 5] = ["modp", "ecp", "curve", "dh#", "nodh"];
        const INTEGRITY: [&str; 9] = [
            "md5", "sha1", "sha256", "sha384", "sha512", "aesxcbc", "integ#", "auth#", "hash#",
        ];
        if GROUPS.iter().any(|g| token.starts_with(g)) {
            Family::Group
        } else if token == "esn" || token == "noesn" {
            Family::Esn
        } else if token.starts_with("prf") {
            Family::Prf
        } else if INTEGRITY
            .iter()
            .any(|i| token == *i || token.starts_with(i))
        {
            Family::Integrity
        } else {
            Family::Encryption
        }
    }

    fn name(self) -> &'static str {
        match self {
            Family::Encryption => "encryption",
            Family::Integrity => "integrity",
            Family::Prf => "PRF",
            Family::Group => "Diffie-Hellman group",
            Family::Esn => "extended sequence numbers",
        }
    }
}

/// One proposal split into its protocol and the algorithms of each family.
#[derive(Debug, Clone)]
struct Parsed<'a> {
    text: &'a str,
    protocol: &'a str,
    parts: Vec<(Family, &'a str)>,
}

impl<'a> Parsed<'a> {
    fn new(text: &'a str) -> Parsed<'a> {
        let (protocol, algs) = text.split_once(':').unwrap_or(("", text));
        let parts = algs
            .split('-')
            .filter(|t| !t.is_empty())
            .map(|t| (Family::of(t), t))
            .collect();
        Parsed {
            text,
            protocol,
            parts,
        }
    }

    fn family(&self, f: Family) -> BTreeSet<&'a str> {
        self.parts
            .iter()
            .filter(|(g, t)| *g == f && *t != "nodh")
            .map(|(_, t)| *t)
            .collect()
    }

    /// The families in which the two proposals share no algorithm, each with both
    /// sides' algorithms; a group on one side only is perfect forward secrecy (or a
    /// phase-1 group) configured at one end.
    fn differences(&self, other: &Parsed<'_>) -> Vec<String> {
        let families = [
            Family::Encryption,
            Family::Integrity,
            Family::Prf,
            Family::Group,
            Family::Esn,
        ];
        families
            .into_iter()
            .filter_map(|f| {
                let (a, b) = (self.family(f), other.family(f));
                let one_sided = f == Family::Group && (a.is_empty() != b.is_empty());
                let disjoint = !a.is_empty() && !b.is_empty() && a.is_disjoint(&b);
                if one_sided && self.protocol != "ike" {
                    Some(format!(
                        "perfect forward secrecy on one side only ({} against {})",
                        list(&a),
                        list(&b)
                    ))
                } else if one_sided || disjoint {
                    Some(format!("{} {} against {}", f.name(), list(&a), list(&b)))
                } else {
                    None
                }
            })
            .collect()
    }
}

fn list(set: &BTreeSet<&str>) -> String {
    if set.is_empty() {
        "none".to_string()
    } else {
        set.iter().copied().collect::<Vec<_>>().join("/")
    }
}

/// The protocol whose proposal was refused: `ike` when the failure came in the exchange
/// that sets up the IKE SA itself (IKE_SA_INIT, Main or Aggressive Mode), otherwise the
/// child SA's (`esp` or `ah`, whichever the offers show; `esp` when none is visible).
/// IKEv1 refuses in an Informational of its own, so the exchange it refused is the last
/// other one that started before it.
pub(super) fn refused_protocol(sa: &IkeSaReport) -> &'static str {
    let frame = sa.failure.as_ref().map_or(u64::MAX, |f| f.frame);
    let exchange = sa
        .exchanges
        .iter()
        .rev()
        .find(|x| x.request_frame <= frame && x.exchange != "Informational")
        .map(|x| x.exchange.as_str());
    match exchange {
        Some("IKE_SA_INIT" | "Main Mode" | "Aggressive Mode") | None => "ike",
        _ if sa.offered.iter().any(|p| p.starts_with("ah:")) => "ah",
        _ => "esp",
    }
}

/// The initiator's offers for `protocol`.
pub(super) fn offered<'a>(sa: &'a IkeSaReport, protocol: &str) -> Vec<&'a str> {
    sa.offered
        .iter()
        .map(String::as_str)
        .filter(|p| Parsed::new(p).protocol == protocol)
        .collect()
}

/// What the responder is known to accept or offer, from other negotiations in the report,
/// each with where it was seen.
fn responder_side<'a>(
    sa: &'a IkeSaReport,
    scope: &Scope<'a>,
    protocol: &str,
) -> Vec<(&'a str, String)> {
    let responder = super::rules::host(&sa.responder);
    let initiator = super::rules::host(&sa.initiator);
    let mut out: Vec<(&str, String)> = Vec::new();
    let mut add = |p: &'a str, whence: String| {
        if Parsed::new(p).protocol == protocol && !out.iter().any(|(q, _)| *q == p) {
            out.push((p, whence));
        }
    };
    for p in &sa.accepted {
        add(p, "accepted earlier in this IKE SA".to_string());
    }
    // Only SAs that the responder or the initiator started can hold either kind of line.
    for o in scope
        .initiated_by_either(responder, initiator)
        .filter(|o| o.spi_i != sa.spi_i)
    {
        let (oi, or) = (
            super::rules::host(&o.initiator),
            super::rules::host(&o.responder),
        );
        if oi == responder {
            for p in &o.offered {
                add(
                    p,
                    format!("offered by {responder} as initiator of IKE SA {}", o.spi_i),
                );
            }
        }
        let same_peers =
            (oi == initiator && or == responder) || (oi == responder && or == initiator);
        if let (true, Some(p)) = (same_peers, &o.chosen) {
            add(p, format!("chosen in IKE SA {}", o.spi_i));
        }
    }
    out
}

/// Evidence sentences for a `no-proposal-chosen` failure: each side's proposals and the
/// closest pair with what differs in it.
pub(super) fn comparison(sa: &IkeSaReport, scope: &Scope<'_>) -> Vec<String> {
    comparison_for(sa, scope, refused_protocol(sa))
}

/// [`comparison`] for the proposals of `protocol` (`ike`, `esp` or `ah`).
pub(super) fn comparison_for(sa: &IkeSaReport, scope: &Scope<'_>, protocol: &str) -> Vec<String> {
    let ours = offered(sa, protocol);
    let theirs = responder_side(sa, scope, protocol);
    let mut out = Vec::new();
    if ours.is_empty() {
        out.push(format!(
            "the refused {protocol} proposal travelled encrypted; give the session keys to see it"
        ));
    } else {
        out.push(format!("{} offered {}", sa.initiator, ours.join(", ")));
    }
    if theirs.is_empty() {
        out.push(format!(
            "{} names no {protocol} proposal of its own anywhere in the capture: compare its \
             {} with the offer above",
            sa.responder,
            if protocol == "ike" {
                "key exchange methods"
            } else {
                "filter action's security methods"
            }
        ));
        return out;
    }
    for (p, whence) in &theirs {
        out.push(format!("{} accepts {p} ({whence})", sa.responder));
    }
    if let Some((a, b, diffs)) = closest(&ours, &theirs) {
        out.push(format!(
            "closest mismatch: {a} against {b}: {}",
            diffs.join("; ")
        ));
    }
    out
}

/// The pair of proposals that differ in the fewest families.
fn closest<'a>(
    ours: &[&'a str],
    theirs: &[(&'a str, String)],
) -> Option<(&'a str, &'a str, Vec<String>)> {
    let mut best: Option<(&str, &str, Vec<String>)> = None;
    for a in ours {
        for (b, _) in theirs {
            let diffs = Parsed::new(a).differences(&Parsed::new(b));
            if diffs.is_empty() {
                continue;
            }
            if best.as_ref().is_none_or(|(_, _, d)| diffs.len() < d.len()) {
                best = Some((Parsed::new(a).text, b, diffs));
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_fall_into_families() {
        let p = Parsed::new("ike:aes128-sha256-prfsha384-modp2048");
        let fams: Vec<Family> = p.parts.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fams,
            vec![
                Family::Encryption,
                Family::Integrity,
                Family::Prf,
                Family::Group
            ]
        );
        assert_eq!(Family::of("aes256gcm16"), Family::Encryption);
        assert_eq!(Family::of("ecp384"), Family::Group);
        assert_eq!(Family::of("curve25519"), Family::Group);
        assert_eq!(Family::of("noesn"), Family::Esn);
        assert_eq!(Family::of("3des"), Family::Encryption);
    }

    #[test]
    fn differences_name_each_family_that_shares_nothing() {
        let a = Parsed::new("ike:aes128-sha256-modp2048");
        let b = Parsed::new("ike:aes256-sha384-ecp384");
        assert_eq!(
            a.differences(&b),
            vec![
                "encryption aes128 against aes256",
                "integrity sha256 against sha384",
                "Diffie-Hellman group modp2048 against ecp384"
            ]
        );
        let c = Parsed::new("ike:aes128-aes256-sha256-modp2048-ecp384");
        assert_eq!(c.differences(&b), vec!["integrity sha256 against sha384"]);
    }

    #[test]
    fn a_group_on_one_side_of_a_child_proposal_is_pfs() {
        let a = Parsed::new("esp:aes128-sha256-modp2048");
        let b = Parsed::new("esp:aes128-sha256");
        assert_eq!(
            a.differences(&b),
            vec!["perfect forward secrecy on one side only (modp2048 against none)"]
        );
        let nodh = Parsed::new("esp:aes128-sha256-nodh");
        assert!(b.differences(&nodh).is_empty());
    }

    #[test]
    fn the_closest_pair_differs_least() {
        let ours = ["ike:3des-md5-modp1024", "ike:aes128-sha256-modp2048"];
        let theirs = vec![("ike:aes128-sha256-ecp256", String::new())];
        let (a, b, d) = closest(&ours, &theirs).unwrap();
        assert_eq!(
            (a, b),
            ("ike:aes128-sha256-modp2048", "ike:aes128-sha256-ecp256")
        );
        assert_eq!(d, vec!["Diffie-Hellman group modp2048 against ecp256"]);
    }
}
