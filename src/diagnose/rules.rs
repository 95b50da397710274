//! One function per cause. Each looks at one IKE SA (or at the report as a whole) and
//! returns the finding for that cause, or nothing.

use crate::track::report::{
    EspSaReport, ExchangeReport, Failure, IkeSaReport, IkeState, NatVerdict, Report,
};

use crate::wire::ike::registry;

use super::scope::Scope;
use super::{Code, Config, Evidence, Finding, Severity};

/// Evidence kinds of the NAT report that prove a NAT sits on the path. A source-hash
/// mismatch is not among them: peers that force UDP encapsulation fake it.
const NAT_PROOF: [&str; 4] = [
    "natd-destination-mismatch",
    "port-rewrite",
    "keepalive",
    "checksum-mismatch",
];

/// Evidence kinds that show NAT traversal (UDP encapsulation) is in use.
const NAT_TRAVERSAL: [&str; 3] = ["udp-encapsulation", "port-float", "ike-on-4500"];

/// The remedy of `no-proposal-chosen` when the IKE SA itself was refused, not a child SA.
const IKE_PROPOSAL_REMEDY: &str = "Give the two policies at least one key exchange method in common (General tab, Key Exchange Settings, Methods): the same encryption, integrity and Diffie-Hellman group on both computers.";

/// The remedy when a peer ended the negotiation with an error notify that maps to no
/// single policy setting.
const REFUSED_REMEDY: &str = "The peer ended the negotiation with the error notify named above, which points at no single setting. Compare the policies on both computers (filter lists, filter actions, authentication methods, IKE version) and look at the peer's IKE log for what it rejected.";

/// A check of one cause for one IKE SA.
type Check = fn(&IkeSaReport, &Scope<'_>, &Config) -> Option<Finding>;

/// Findings about one IKE SA, in no particular order.
pub(super) fn for_ike_sa(sa: &IkeSaReport, scope: &Scope<'_>, config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    let checks: [Check; 8] = [
        failure,
        stalled_while_pending,
        invalid_ke_recovered,
        nat_breaks_ipsec,
        esp_one_way,
        esp_blocked,
        rekey_collision,
        expired_not_renewed,
    ];
    for check in checks {
        out.extend(check(sa, scope, config));
    }
    out.extend(child_refusals(sa, scope));
    out
}

/// One finding per cause among the child SA negotiations refused while the IKE SA was
/// up (a cause the SA's own failure already reports is not repeated).
fn child_refusals(sa: &IkeSaReport, scope: &Scope<'_>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let known = sa.failure.as_ref().map(|f| f.code.as_str());
    for f in &sa.child_failures {
        let Some(code) = code_from_str(&f.code) else {
            continue;
        };
        if known != Some(f.code.as_str()) && out.iter().all(|o| o.code != code) {
            out.push(child_finding(sa, scope, f, code));
        }
    }
    out
}

/// The finding for one refused child SA negotiation.
fn child_finding(sa: &IkeSaReport, scope: &Scope<'_>, f: &Failure, code: Code) -> Finding {
    let what = match f.notify_type {
        Some(n) => {
            let name = registry::notify_name(sa.version, n).unwrap_or("error notify");
            format!("{name} ({n})")
        }
        None => reason_head(f.reason.as_deref()),
    };
    let summary = format!(
        "{} did not accept a child SA as {} asked for it: {what}",
        sa.responder, sa.initiator
    );
    // The IKE SA and its other children may be fine: an inferred refusal of one child
    // is a warning, a notify that says so outright an error.
    let severity = if f.notify_type.is_some() {
        Severity::Error
    } else {
        Severity::Warning
    };
    let mut x = finding(code, severity, sa, summary);
    if code == Code::NegotiationStalled && f.notify_type.is_some() {
        x.remedy = REFUSED_REMEDY.to_string();
    }
    x.evidence = refused_exchange_evidence(sa, f.frame);
    let ts = frame_ts(sa, f.frame);
    if let Some(reason) = &f.reason {
        x.evidence.push(ev(f.frame, ts, reason.clone()));
    }
    if code == Code::NoProposalChosen {
        let lines = super::proposals::comparison_for(sa, scope, "esp");
        x.evidence
            .extend(lines.into_iter().map(|what| ev(f.frame, ts, what)));
    }
    x.confidence = f.confidence;
    x
}

/// The first clause of an inference's reason (up to its first colon).
fn reason_head(reason: Option<&str>) -> String {
    let r = reason.unwrap_or("an error");
    r.split_once(": ").map_or(r, |(head, _)| head).to_string()
}

/// The request and response lines of the exchange whose response is `frame`.
fn refused_exchange_evidence(sa: &IkeSaReport, frame: u64) -> Vec<Evidence> {
    sa.exchanges
        .iter()
        .filter(|x| x.response_frame == Some(frame))
        .flat_map(|x| {
            let request = ev(
                x.request_frame,
                x.started,
                format!("{} request (message ID {})", x.exchange, x.message_id),
            );
            let response = ev(frame, x.started + x.rtt_s.unwrap_or(0.0), response_what(x));
            [request, response]
        })
        .collect()
}

/// A finding's skeleton for an IKE SA.
fn finding(code: Code, severity: Severity, sa: &IkeSaReport, summary: String) -> Finding {
    Finding {
        code,
        severity,
        ike_sa: Some(sa.spi_i.clone()),
        summary,
        evidence: Vec::new(),
        remedy: remedy(code).to_string(),
        confidence: 1.0,
    }
}

/// The remedy for a code, in the words of the policy model.
pub fn remedy(code: Code) -> &'static str {
    match code {
        Code::PeerUnreachable => "Check that the peer is switched on and has its IPsec policy assigned, and that every firewall and router on the path passes UDP 500 and UDP 4500 (and IP protocol 50 for ESP). An ICMP port unreachable means no IKE service listens on the peer.",
        Code::NoProposalChosen => "Give the filter actions on both computers at least one security method in common: the same encryption, integrity and Diffie-Hellman group. If session key perfect forward secrecy is on at one end only, turn it on (or off) at both.",
        Code::InvalidKe => "Put the Diffie-Hellman group the responder asks for first in the initiator's key exchange methods (General tab, Key Exchange Settings, Methods), or allow the initiator's group at the responder.",
        Code::AuthFailed => "Make the authentication methods of the two rules match: the same preshared key string on both computers (retype it; it is case-sensitive), certificates issued by an authority the other computer trusts, or Kerberos only when both computers are in the same domain.",
        Code::TsUnacceptable => "Make the filter lists mirror each other: the filter on one computer must be the exact opposite of the other's (source and destination addresses swapped, and the ports swapped with them). Check for reversed addresses or ports, and that both filters are marked mirrored.",
        Code::NatBreaksIpsec => "A NAT device rewrites addresses between the peers. Enable NAT traversal (UDP encapsulation on port 4500) on both computers, use ESP rather than AH (AH protects the addresses the NAT changes), or remove the NAT from the path.",
        Code::EspOneWay => "Protected traffic flows in one direction only: check the packet filters and routes for IP protocol 50 (or UDP 4500 with NAT traversal) in the silent direction, and that the receiving computer's filter action negotiates for that traffic.",
        Code::EspBlocked => "The key exchange completed but no protected packet followed: a firewall on the path probably passes UDP 500 but drops IP protocol 50 (ESP) or 51 (AH). Allow them, or enable NAT traversal so ESP travels in UDP 4500.",
        Code::IkeFragmentsLost => "A large IKE message (usually certificates) was split into IP fragments and not all arrived. Let IP fragments through every firewall and NAT on the path, enable IKE fragmentation (RFC 7383) on both peers, or authenticate with smaller certificates or preshared keys.",
        Code::InvalidSpi => "Protected packets arrive for a security association the receiver no longer has, typically after a reboot or a lost delete. Restarting the negotiation on the sending side (or enabling dead peer detection) clears it.",
        Code::NegotiationStalled => "The negotiation stopped half-way without an error that names the cause. Compare the policies on both computers (filter lists and whether they are mirrored, filter actions and their security methods, authentication methods) and look at the peer's IKE log for what it rejected; with the session keys (--keys) ipsecmon reads encrypted errors exactly.",
        Code::CleartextViolation => "Traffic that the assigned policy requires to be protected crossed the wire in the clear. Check that the policy is assigned on both computers and that 'Accept unsecured communication' and 'Allow unsecured communication with non IPSec-aware computer' are cleared in the filter action.",
        Code::HalfOpenFlood => "Many negotiations were started and never completed from few sources: a scan or a flood. Rate-limit IKE from those sources, or enable IKEv2 cookies on the responder.",
        Code::RekeyCollision => "Both peers started a rekey of the same security association at once. This resolves itself, but frequent collisions mean the lifetimes on both sides are equal: make the session key lifetimes differ slightly, or let one side rekey first.",
        Code::ExpiredNotRenewed => "The security association reached its end and no replacement was negotiated. Check that the session key lifetimes (in seconds and kilobytes) agree, and that the peer is still reachable.",
    }
}

fn ev(frame: u64, ts: f64, what: impl Into<String>) -> Evidence {
    Evidence {
        frame,
        ts,
        what: what.into(),
    }
}

/// A failure the tracker recorded on the SA, with the evidence of its exchanges and, for
/// an inferred failure, what the inference rests on.
fn failure(sa: &IkeSaReport, scope: &Scope<'_>, _config: &Config) -> Option<Finding> {
    let f = sa.failure.as_ref()?;
    let code = code_from_str(&f.code)?;
    let mut out = finding(code, Severity::Error, sa, failure_summary(sa, code));
    if code == Code::NegotiationStalled && f.notify_type.is_some() {
        out.remedy = REFUSED_REMEDY.to_string();
    }
    out.evidence = exchange_evidence(sa);
    // An inference that rests on the ICMP error names it in its reason already.
    if let Some(icmp) = sa
        .icmp
        .first()
        .filter(|i| f.reason.is_none() || i.frame != f.frame)
    {
        out.evidence.push(ev(
            icmp.frame,
            icmp.ts,
            format!("{} from {}", icmp.what, icmp.from),
        ));
    }
    if let Some(reason) = &f.reason {
        out.evidence
            .push(ev(f.frame, frame_ts(sa, f.frame), reason.clone()));
    }
    if code == Code::NoProposalChosen {
        if super::proposals::refused_protocol(sa) == "ike" {
            out.remedy = IKE_PROPOSAL_REMEDY.to_string();
        }
        let ts = frame_ts(sa, f.frame);
        let lines = super::proposals::comparison(sa, scope);
        out.evidence
            .extend(lines.into_iter().map(|what| ev(f.frame, ts, what)));
    }
    if matches!(code, Code::AuthFailed | Code::TsUnacceptable) {
        add_nat_hint(&mut out, sa);
    }
    out.confidence = f.confidence;
    out.evidence.sort_by_key(|e| e.frame);
    Some(out)
}

/// Who sits behind the NAT of `sa`, when its verdict names one.
fn behind_nat(sa: &IkeSaReport) -> Option<&'static str> {
    match sa.nat.verdict {
        NatVerdict::Initiator => Some("the initiator"),
        NatVerdict::Responder => Some("the responder"),
        NatVerdict::Both => Some("both peers"),
        NatVerdict::None | NatVerdict::Undecidable => None,
    }
}

/// A NAT on the path rewrites the outer addresses but not the ones IKE carries inside its
/// payloads (identities, traffic selectors): an authentication or selector failure between
/// peers with a NAT between them is most often that. Adds the NAT evidence and says so.
fn add_nat_hint(out: &mut Finding, sa: &IkeSaReport) {
    let Some(who) = behind_nat(sa) else {
        return;
    };
    if let Some(e) = sa.nat.evidence.first() {
        let frame = e.frames.first().copied().unwrap_or(sa.first_frame);
        let what = format!("a NAT sits in front of {who}: {}", e.detail);
        out.evidence.push(ev(frame, frame_ts(sa, frame), what));
    }
    out.remedy.push_str(&format!(
        " A NAT sits in front of {who}: the peer sees the NAT's address, not the one the \
         computer behind it uses for itself. Where a rule names that computer by address \
         (its filters, a tunnel endpoint, or an IP-address identity with a preshared key), \
         name the address the peer actually sees or authenticate with an identity that is \
         not an address."
    ));
}

/// The capture time of `frame` as far as the SA's record knows it (requests, their
/// retransmissions, responses, ICMP errors), else the nearest known time before it.
pub(super) fn frame_ts(sa: &IkeSaReport, frame: u64) -> f64 {
    let mut known: Vec<(u64, f64)> =
        vec![(sa.first_frame, sa.started), (sa.last_frame, sa.last_seen)];
    for x in &sa.exchanges {
        known.extend(x.transmissions.iter().map(|t| (t.frame, t.ts)));
        known.push((x.request_frame, x.started));
        if let (Some(f), Some(rtt)) = (x.response_frame, x.rtt_s) {
            known.push((f, x.started + rtt));
        }
    }
    known.extend(sa.icmp.iter().map(|i| (i.frame, i.ts)));
    known
        .iter()
        .filter(|(f, _)| *f <= frame)
        .max_by_key(|(f, _)| *f)
        .map_or(sa.started, |(_, ts)| *ts)
}

/// Parses a diagnosis code string back into a [`Code`].
pub(super) fn code_from_str(s: &str) -> Option<Code> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

fn failure_summary(sa: &IkeSaReport, code: Code) -> String {
    let (i, r) = (&sa.initiator, &sa.responder);
    match code {
        Code::PeerUnreachable => unanswered_summary(sa),
        Code::NoProposalChosen => {
            let protocol = super::proposals::refused_protocol(sa);
            let offered = super::proposals::offered(sa, protocol);
            let list = if offered.is_empty() {
                String::new()
            } else {
                format!(" ({})", offered.join(", "))
            };
            format!("{r} accepted none of the {protocol} proposals {i} offered{list}")
        }
        Code::InvalidKe => format!(
            "{r} refused the Diffie-Hellman group {i} offered{}",
            wanted_group(sa)
        ),
        Code::AuthFailed => format!("authentication between {i} and {r} failed"),
        Code::TsUnacceptable => format!("{r} refused the traffic selectors (filters) {i} proposed"),
        Code::IkeFragmentsLost => {
            format!("fragments of a large IKE message between {i} and {r} were lost")
        }
        Code::InvalidSpi => format!("{r} reported an unknown SPI to {i}"),
        _ => match sa.failure.as_ref().and_then(|f| f.notify_type) {
            Some(n) => {
                let name = registry::notify_name(sa.version, n).unwrap_or("error notify");
                format!("negotiation between {i} and {r} ended with error notify {name} ({n})")
            }
            None => match sa.failure.as_ref().and_then(|f| f.reason.as_deref()) {
                Some(reason) => format!(
                    "negotiation between {i} and {r} stopped: {}",
                    reason_head(Some(reason))
                ),
                None => format!("negotiation between {i} and {r} stopped half-way"),
            },
        },
    }
}

fn wanted_group(sa: &IkeSaReport) -> String {
    sa.exchanges
        .iter()
        .flat_map(|x| x.details.iter())
        .find(|d| d.contains("group"))
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

/// "IKE_SA_INIT sent 4 times over 7.0 s to 192.0.2.2:500, no answer", naming the port
/// that was answered before when the silent one differs (a filtered UDP 4500).
fn unanswered_summary(sa: &IkeSaReport) -> String {
    let Some(x) = sa
        .exchanges
        .iter()
        .rev()
        .find(|x| x.response_frame.is_none())
    else {
        return match sa.failure.as_ref().and_then(|f| f.reason.as_deref()) {
            Some(reason) => reason_head(Some(reason)),
            None => format!("no answer from {}", sa.responder),
        };
    };
    let span = x
        .transmissions
        .last()
        .map(|t| t.ts - x.started)
        .unwrap_or(0.0);
    let to = endpoint_on(&sa.responder, x.dst_port);
    let head = format!("{} {} over {span:.1} s to {to}", x.exchange, times(x));
    if let Some(icmp) = sa.icmp.first() {
        return format!(
            "{head}, answered only by ICMP {} from {}",
            icmp.what, icmp.from
        );
    }
    let answered = sa
        .exchanges
        .iter()
        .find(|e| e.response_frame.is_some() && e.dst_port != x.dst_port && x.dst_port != 0);
    match answered {
        Some(e) => format!(
            "{head}, no answer, though UDP {} was answered: UDP {} is probably filtered",
            e.dst_port, x.dst_port
        ),
        None => format!("{head}, no answer"),
    }
}

/// "sent once", "sent 4 times".
fn times(x: &ExchangeReport) -> String {
    match x.retransmissions + 1 {
        1 => "sent once".to_string(),
        n => format!("sent {n} times"),
    }
}

/// `endpoint` with its port replaced by `port` (0 keeps it).
fn endpoint_on(endpoint: &str, port: u16) -> String {
    if port == 0 {
        return endpoint.to_string();
    }
    format!("{}:{port}", host(endpoint))
}

/// Evidence lines for every exchange of the SA: requests, retransmissions, responses.
fn exchange_evidence(sa: &IkeSaReport) -> Vec<Evidence> {
    let mut out = Vec::new();
    for x in &sa.exchanges {
        let fragments = match x.request_fragments {
            0 => String::new(),
            n => format!(", sent as {n} IKE fragments (RFC 7383)"),
        };
        out.push(ev(
            x.request_frame,
            x.started,
            format!(
                "{} request (message ID {}){fragments}",
                x.exchange, x.message_id
            ),
        ));
        for t in x.transmissions.iter().skip(1) {
            out.push(ev(t.frame, t.ts, format!("{} retransmitted", x.exchange)));
        }
        if let (Some(frame), Some(rtt)) = (x.response_frame, x.rtt_s) {
            out.push(ev(frame, x.started + rtt, response_what(x)));
        }
    }
    out
}

fn response_what(x: &ExchangeReport) -> String {
    let mut what = format!(
        "{} response after {:.3} s",
        x.exchange,
        x.rtt_s.unwrap_or(0.0)
    );
    if !x.details.is_empty() {
        what.push_str(": ");
        what.push_str(&x.details.join("; "));
    }
    what
}

/// A negotiation still pending longer than the threshold, reported during the hang
/// ("negotiating for 12 s: no answer from 192.0.2.2"). A request counts as unanswered
/// once it was retransmitted or has waited a second; a fresh one is just pending.
fn stalled_while_pending(sa: &IkeSaReport, scope: &Scope<'_>, config: &Config) -> Option<Finding> {
    if sa.state != IkeState::Negotiating {
        return None;
    }
    let now = scope.report.last_ts?;
    let pending = now - sa.started;
    if pending < config.stall_after_s {
        return None;
    }
    let x = sa.exchanges.last()?;
    let last_sent = x.transmissions.last().map_or(x.started, |t| t.ts);
    let waiting = now - last_sent;
    let unanswered = x.response_frame.is_none() && (x.retransmissions > 0 || waiting >= 1.0);
    let (code, summary) = if unanswered {
        let to = endpoint_on(&sa.responder, x.dst_port);
        (
            Code::PeerUnreachable,
            format!(
                "negotiating for {pending:.0} s: no answer from {} ({} {} to {to}, the last \
                 {waiting:.0} s ago)",
                host(&sa.responder),
                x.exchange,
                times(x)
            ),
        )
    } else if let Some(found) = silent_after_init(sa, now) {
        found
    } else {
        (
            Code::NegotiationStalled,
            format!(
                "negotiating for {pending:.0} s between {} and {}, last message {:.0} s ago",
                sa.initiator,
                sa.responder,
                now - sa.last_seen
            ),
        )
    };
    let mut out = finding(code, Severity::Warning, sa, summary);
    out.evidence = exchange_evidence(sa);
    out.confidence = if unanswered { 0.7 } else { 0.6 };
    Some(out)
}

/// An IKEv2 negotiation seen answered in IKE_SA_INIT and then never again: the
/// initiator's IKE_AUTH did not reach this capture point. With NAT detection payloads on
/// both sides this is what the responder's side of a path that drops UDP 4500 sees, as NAT
/// traversal moves IKE_AUTH to that port (RFC 7296 §2.23); without them it is a stall.
fn silent_after_init(sa: &IkeSaReport, now: f64) -> Option<(Code, String)> {
    let [x] = sa.exchanges.as_slice() else {
        return None;
    };
    if sa.version != 2 || x.exchange != "IKE_SA_INIT" || x.response_frame.is_none() {
        return None;
    }
    let head = format!(
        "IKE_SA_INIT answered, then nothing from {} for {:.0} s: no IKE_AUTH reached this \
         capture point",
        host(&sa.initiator),
        now - sa.last_seen
    );
    let natd = sa.nat.evidence.iter().any(|e| e.kind.starts_with("natd-"));
    Some(if natd {
        (
            Code::PeerUnreachable,
            format!(
                "{head}; both peers sent NAT detection payloads, so NAT traversal moved IKE to \
                 UDP 4500, which is probably filtered on the way"
            ),
        )
    } else {
        (Code::NegotiationStalled, head)
    })
}

/// INVALID_KE_PAYLOAD answered by a retry that succeeded: an extra round trip, worth knowing.
fn invalid_ke_recovered(sa: &IkeSaReport, _scope: &Scope<'_>, _config: &Config) -> Option<Finding> {
    const INVALID_KE: u16 = 17;
    if sa.failure.is_some() || sa.version != 2 {
        return None;
    }
    let x = sa
        .exchanges
        .iter()
        .find(|x| x.notifies.contains(&INVALID_KE))?;
    let mut out = finding(
        Code::InvalidKe,
        Severity::Info,
        sa,
        format!(
            "{} refused the first Diffie-Hellman group of {}{}; the retry cost one round trip",
            sa.responder,
            sa.initiator,
            wanted_group(sa)
        ),
    );
    out.evidence = vec![ev(
        x.response_frame.unwrap_or(x.request_frame),
        x.started + x.rtt_s.unwrap_or(0.0),
        response_what(x),
    )];
    Some(out)
}

fn has_kind(sa: &IkeSaReport, kinds: &[&str]) -> bool {
    sa.nat
        .evidence
        .iter()
        .any(|e| kinds.contains(&e.kind.as_str()))
}

/// NAT on the path without traversal, or AH through NAT. "Without traversal" needs the
/// negotiation to have passed the point where NAT traversal would have moved it to UDP
/// 4500 (IKEv2 IKE_AUTH, IKEv1 MM5 or Quick Mode, RFC 7296 §2.23, RFC 3947 §4) while
/// staying on the original ports, or ESP outside UDP; and it needs evidence that no peer
/// fakes (a source hash alone is not enough, see the NAT report).
fn nat_breaks_ipsec(sa: &IkeSaReport, scope: &Scope<'_>, _config: &Config) -> Option<Finding> {
    let ah = has_kind(sa, &["ah-through-nat"]);
    let checksum = has_kind(sa, &["checksum-mismatch"]);
    let natted = !matches!(sa.nat.verdict, NatVerdict::None | NatVerdict::Undecidable)
        && has_kind(sa, &NAT_PROOF);
    let traversal = has_kind(sa, &NAT_TRAVERSAL) || child_sas_encapsulated(sa, scope);
    let untraversed = natted && !traversal && past_float_point(sa, scope);
    if !(ah || checksum || untraversed) {
        return None;
    }
    let what = if ah {
        "AH crosses a NAT, which rewrites the addresses AH protects"
    } else if checksum {
        "inner checksums no longer match the rewritten outer addresses"
    } else {
        "a NAT sits on the path and NAT traversal is not in use"
    };
    let mut out = finding(
        Code::NatBreaksIpsec,
        Severity::Error,
        sa,
        format!("between {} and {}: {what}", sa.initiator, sa.responder),
    );
    out.evidence = sa
        .nat
        .evidence
        .iter()
        .filter_map(|e| {
            e.frames
                .first()
                .map(|f| ev(*f, frame_ts(sa, *f), e.detail.clone()))
        })
        .collect();
    out.confidence = match (checksum, ah) {
        (true, _) => 1.0,
        (false, true) => 0.9,
        _ => 0.8,
    };
    Some(out)
}

/// The negotiation went on past IKE_SA_INIT (IKEv2) or MM4 (IKEv1) without leaving its
/// first ports, or ESP travelled outside UDP.
fn past_float_point(sa: &IkeSaReport, scope: &Scope<'_>) -> bool {
    let first_port = sa.exchanges.first().map_or(0, |x| x.dst_port);
    let later = match sa.version {
        2 => sa
            .exchanges
            .iter()
            .filter(|x| x.exchange != "IKE_SA_INIT")
            .collect::<Vec<_>>(),
        _ => sa
            .exchanges
            .iter()
            .filter(|x| x.exchange == "Quick Mode")
            .chain(
                sa.exchanges
                    .iter()
                    .filter(|x| x.exchange == "Main Mode")
                    .nth(2),
            )
            .collect(),
    };
    let stayed = later
        .iter()
        .any(|x| x.dst_port == first_port && first_port != 4500);
    stayed || scope.children(sa).iter().any(|e| e.encap == "none")
}

fn child_sas_encapsulated(sa: &IkeSaReport, scope: &Scope<'_>) -> bool {
    scope.children(sa).iter().any(|e| e.encap == "udp")
}

/// Established, protected traffic seen in one direction only.
fn esp_one_way(sa: &IkeSaReport, scope: &Scope<'_>, config: &Config) -> Option<Finding> {
    if !was_up(sa, scope) {
        return None;
    }
    let sas = scope.children(sa);
    let busy = sas
        .iter()
        .find(|e| e.packets >= 3 && e.last_seen - e.first_seen >= config.one_way_after_s)?;
    let reverse_seen = sas
        .iter()
        .any(|e| e.spi != busy.spi && e.src == busy.dst && e.packets > 0);
    if reverse_seen {
        return None;
    }
    let mut out = finding(
        Code::EspOneWay,
        Severity::Error,
        sa,
        format!(
            "protected traffic flows from {} to {} only ({} packets on SPI {} over {:.1} s, none back)",
            busy.src,
            busy.dst,
            busy.packets,
            busy.spi,
            busy.last_seen - busy.first_seen
        ),
    );
    out.evidence = vec![
        ev(
            busy.first_frame,
            busy.first_seen,
            format!("first packet on SPI {}", busy.spi),
        ),
        ev(
            busy.last_frame,
            busy.last_seen,
            format!("last packet on SPI {}, nothing in reply", busy.spi),
        ),
    ];
    out.confidence = 0.9;
    Some(out)
}

/// The SA had a usable child SA during its life (up now, or up until a Delete or idle
/// expiry), and no IKE SA rekey handed its children to a successor.
fn was_up(sa: &IkeSaReport, scope: &Scope<'_>) -> bool {
    let up = match sa.state {
        IkeState::Established => true,
        IkeState::Deleted | IkeState::Expired => sa.established_after_s.is_some(),
        _ => false,
    };
    let replaced = scope.was_replaced(sa);
    up && !replaced
}

/// IKE completed, but no ESP or AH followed within the threshold (while the SA lived).
fn esp_blocked(sa: &IkeSaReport, scope: &Scope<'_>, config: &Config) -> Option<Finding> {
    if !was_up(sa, scope) || sa.child_sas.is_empty() || !scope.children(sa).is_empty() {
        return None;
    }
    let up_at = sa.started + sa.established_after_s?;
    let until = match sa.state {
        IkeState::Established => scope.report.last_ts?,
        _ => sa.last_seen,
    };
    let quiet = until - up_at;
    if quiet < config.esp_expected_within_s {
        return None;
    }
    let mut out = finding(
        Code::EspBlocked,
        Severity::Warning,
        sa,
        format!(
            "IKE between {} and {} completed but no ESP or AH was seen in the {quiet:.0} s after",
            sa.initiator, sa.responder
        ),
    );
    out.evidence = exchange_evidence(sa);
    // With NAT traversal negotiated, ESP would have travelled in UDP 4500, which the IKE
    // messages on that port show passing: a firewall dropping protocol 50 explains
    // nothing, and the usual cause is traffic that the negotiated selectors do not cover.
    if has_kind(sa, &NAT_TRAVERSAL) || sa.exchanges.iter().any(|x| x.dst_port == 4500) {
        out.remedy = ESP_BLOCKED_ENCAPSULATED_REMEDY.to_string();
    }
    out.confidence = 0.5;
    Some(out)
}

/// The remedy of `esp-blocked` when the SA uses NAT traversal.
const ESP_BLOCKED_ENCAPSULATED_REMEDY: &str = "The key exchange completed but no protected packet followed, although ESP was to travel in UDP 4500, where the IKE messages passed. Either the traffic matches none of the negotiated traffic selectors (check that the filter lists mirror each other, addresses and ports swapped on the other computer, and that the traffic uses the ports they name; with the session keys, --keys, ipsecmon shows the selectors each side accepted), or a firewall tells ESP in UDP 4500 from IKE by its first four bytes and drops it: allow UDP 4500 whole.";

/// Both peers requested a rekey at the same time (overlapping CREATE_CHILD_SA / Quick Mode
/// requests in opposite directions).
fn rekey_collision(sa: &IkeSaReport, _scope: &Scope<'_>, _config: &Config) -> Option<Finding> {
    let rekeys: Vec<&ExchangeReport> = sa
        .exchanges
        .iter()
        .filter(|x| x.exchange == "CREATE_CHILD_SA" || x.exchange == "Quick Mode")
        .collect();
    let pair = rekeys.windows(2).find(|w| {
        let (a, b) = (w[0], w[1]);
        let a_end = a.started + a.rtt_s.unwrap_or(f64::INFINITY);
        a.from_initiator != b.from_initiator && b.started < a_end && b.message_id != a.message_id
    })?;
    let mut out = finding(
        Code::RekeyCollision,
        Severity::Info,
        sa,
        format!(
            "{} and {} started a rekey at the same time",
            sa.initiator, sa.responder
        ),
    );
    out.evidence = vec![
        ev(
            pair[0].request_frame,
            pair[0].started,
            format!("{} from one peer", pair[0].exchange),
        ),
        ev(
            pair[1].request_frame,
            pair[1].started,
            format!("{} from the other peer", pair[1].exchange),
        ),
    ];
    out.confidence = 0.8;
    Some(out)
}

/// Expired without a successor between the same peers.
fn expired_not_renewed(sa: &IkeSaReport, scope: &Scope<'_>, _config: &Config) -> Option<Finding> {
    if sa.state != IkeState::Expired {
        return None;
    }
    let renewed = scope.was_replaced(sa)
        || scope
            .initiated_by_either(host(&sa.initiator), host(&sa.responder))
            .any(|o| {
                o.started > sa.started && same_peers(o, sa) && o.state == IkeState::Established
            });
    if renewed {
        return None;
    }
    let mut out = finding(
        Code::ExpiredNotRenewed,
        Severity::Warning,
        sa,
        format!(
            "the SA between {} and {} went idle and was not renewed",
            sa.initiator, sa.responder
        ),
    );
    out.evidence = vec![ev(sa.last_frame, sa.last_seen, "last packet of the SA")];
    out.confidence = 0.7;
    Some(out)
}

/// The address part of `ip:port` (IPv6 keeps its brackets).
pub(super) fn host(endpoint: &str) -> &str {
    match endpoint.rsplit_once(':') {
        Some((h, _)) if !endpoint.starts_with('[') || h.ends_with(']') => h,
        _ => endpoint,
    }
}

fn same_peers(a: &IkeSaReport, b: &IkeSaReport) -> bool {
    let (ai, ar) = (host(&a.initiator), host(&a.responder));
    let (bi, br) = (host(&b.initiator), host(&b.responder));
    (ai == bi && ar == br) || (ai == br && ar == bi)
}

/// The negotiations never answered or completed: no responder SPI, not established.
pub(super) fn half_open(report: &Report) -> impl Iterator<Item = &IkeSaReport> {
    report
        .ike_sas
        .iter()
        .filter(|s| s.spi_r.bytes().all(|b| b == b'0') && s.state != IkeState::Established)
}

/// ESP for SPIs no SA owns (the report-wide counter).
///
/// Without a full table or a fully observed pair of peers the tracker cannot tell a
/// random SPI from an SA negotiated before the capture began; many SPIs that carried one
/// packet each and belong to no IKE SA (at least the half-open flood threshold) are
/// reported as such a flood too.
pub(super) fn invalid_spi(report: &Report, config: &Config) -> Option<Finding> {
    let orphans: Vec<&EspSaReport> = report
        .esp_sas
        .iter()
        .chain(&report.ah_sas)
        .filter(|e| e.ike_sa.is_none())
        .collect();
    let single = orphans.iter().filter(|e| e.packets <= 1).count();
    let flood = single >= config.half_open_threshold.max(1);
    if report.stats.bad_spi_packets == 0 && !flood {
        return None;
    }
    let summary = if report.stats.bad_spi_packets > 0 {
        format!(
            "{} protected packets arrived for SPIs no negotiated SA owns",
            report.stats.bad_spi_packets
        )
    } else {
        format!("{single} SPIs carried one protected packet each and belong to no IKE SA: a flood of random SPIs, or traffic for SAs the receiver does not have")
    };
    let evidence: Vec<Evidence> = orphans
        .iter()
        .take(5)
        .map(|e| {
            let what = format!(
                "SPI {} from {} to {}: {} packets",
                e.spi, e.src, e.dst, e.packets
            );
            ev(e.first_frame, e.first_seen, what)
        })
        .collect();
    Some(Finding {
        code: Code::InvalidSpi,
        severity: Severity::Warning,
        ike_sa: None,
        summary,
        evidence,
        remedy: remedy(Code::InvalidSpi).to_string(),
        confidence: 0.7,
    })
}

/// The part of a flood summary that says how many entries a full table let go.
fn evicted_note(evicted: u64) -> String {
    if evicted == 0 {
        return String::new();
    }
    format!("; {evicted} more IKE SAs were evicted from the full table (--max-ike-sas)")
}

/// Many negotiations left half-open (no responder SPI ever seen).
pub(super) fn half_open_flood(report: &Report, config: &Config) -> Option<Finding> {
    let half_open: Vec<&IkeSaReport> = half_open(report).collect();
    if half_open.len() < config.half_open_threshold {
        return None;
    }
    let mut sources: Vec<&str> = half_open.iter().map(|s| host(&s.initiator)).collect();
    sources.sort_unstable();
    sources.dedup();
    let evidence = half_open
        .iter()
        .take(5)
        .map(|s| {
            ev(
                s.first_frame,
                s.started,
                format!("half-open negotiation from {}", s.initiator),
            )
        })
        .collect();
    Some(Finding {
        code: Code::HalfOpenFlood,
        severity: Severity::Warning,
        ike_sa: None,
        summary: format!(
            "{} negotiations from {} source(s) were never answered or completed{}",
            half_open.len(),
            sources.len(),
            evicted_note(report.evictions.ike_sas)
        ),
        evidence,
        remedy: remedy(Code::HalfOpenFlood).to_string(),
        confidence: 0.8,
    })
}
