//! Turning tracker state into findings: a stable code, the evidence (frames and times),
//! and a remedy in the words of the policy model.
//!
//! The diagnosis reads only a [`Report`](crate::track::report::Report): it never sees
//! packets, so the same findings come out of a capture file, a live interface and the API.

mod proposals;
mod rules;
mod scope;
pub mod text;

use serde::{Deserialize, Serialize};

use crate::track::report::Report;

pub use rules::remedy;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something the user should know, not a failure.
    Info,
    /// Degraded or suspicious; traffic may still flow.
    Warning,
    /// An SA failed or traffic cannot flow.
    Error,
}

impl Severity {
    /// The JSON / label spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// The stable finding codes of DESIGN.md. Scripts and alerts match on these strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// Requests retransmitted, no answer ever seen.
    PeerUnreachable,
    /// The peers share no proposal.
    NoProposalChosen,
    /// Diffie-Hellman group refused.
    InvalidKe,
    /// Authentication failed.
    AuthFailed,
    /// Traffic selectors (filters) do not match.
    TsUnacceptable,
    /// NAT on the path without NAT traversal, or AH through NAT.
    NatBreaksIpsec,
    /// SA up but protected traffic flows one way only.
    EspOneWay,
    /// IKE completes but no ESP/AH is ever seen.
    EspBlocked,
    /// IP fragments of a large IKE message missing.
    IkeFragmentsLost,
    /// ESP for an SPI with no SA.
    InvalidSpi,
    /// Negotiating longer than the threshold with no single cause found.
    NegotiationStalled,
    /// Cleartext traffic that the assigned policy requires to be protected.
    CleartextViolation,
    /// Many half-open IKE SAs from few sources: a flood or a scan.
    HalfOpenFlood,
    /// Both peers started a rekey of the same SA at once.
    RekeyCollision,
    /// An SA reached its lifetime and no replacement appeared.
    ExpiredNotRenewed,
}

impl Code {
    /// The stable string, e.g. `no-proposal-chosen`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::PeerUnreachable => "peer-unreachable",
            Code::NoProposalChosen => "no-proposal-chosen",
            Code::InvalidKe => "invalid-ke",
            Code::AuthFailed => "auth-failed",
            Code::TsUnacceptable => "ts-unacceptable",
            Code::NatBreaksIpsec => "nat-breaks-ipsec",
            Code::EspOneWay => "esp-one-way",
            Code::EspBlocked => "esp-blocked",
            Code::IkeFragmentsLost => "ike-fragments-lost",
            Code::InvalidSpi => "invalid-spi",
            Code::NegotiationStalled => "negotiation-stalled",
            Code::CleartextViolation => "cleartext-violation",
            Code::HalfOpenFlood => "half-open-flood",
            Code::RekeyCollision => "rekey-collision",
            Code::ExpiredNotRenewed => "expired-not-renewed",
        }
    }
}

/// One piece of evidence: a frame, its time, and what it shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Frame number (1-based).
    pub frame: u64,
    /// Capture time, seconds.
    pub ts: f64,
    /// What the frame shows, in words.
    pub what: String,
}

/// A diagnosis finding (`diagnose --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable code.
    pub code: Code,
    /// Severity.
    pub severity: Severity,
    /// `spi_i` of the IKE SA concerned, when there is one.
    pub ike_sa: Option<String>,
    /// One sentence naming the peers.
    pub summary: String,
    /// Frames and times that show it.
    pub evidence: Vec<Evidence>,
    /// What to change, in the words of the policy model.
    pub remedy: String,
    /// 1.0 when the wire shows the cause directly (a cleartext or decrypted notify); lower
    /// when the cause is inferred from sizes, timing or silence.
    pub confidence: f64,
}

/// Thresholds of the diagnosis.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seconds of negotiation after which a pending SA is reported as stalled.
    pub stall_after_s: f64,
    /// Seconds of one-way protected traffic before it counts as `esp-one-way`.
    pub one_way_after_s: f64,
    /// Seconds after IKE completes within which ESP or AH is expected.
    pub esp_expected_within_s: f64,
    /// Half-open negotiations that make a flood.
    pub half_open_threshold: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            stall_after_s: 10.0,
            one_way_after_s: 5.0,
            esp_expected_within_s: 30.0,
            half_open_threshold: 100,
        }
    }
}

/// Findings for a report, worst first: errors before warnings before information, then
/// the more certain first, then by the first frame of their evidence.
pub fn diagnose(report: &Report, config: &Config) -> Vec<Finding> {
    let scope = scope::Scope::new(report);
    let mut out: Vec<Finding> = report
        .ike_sas
        .iter()
        .flat_map(|sa| rules::for_ike_sa(sa, &scope, config))
        .collect();
    out.extend(rules::invalid_spi(report, config));
    if let Some(flood) = rules::half_open_flood(report, config) {
        // The flood's finding stands for its negotiations: one line each would bury
        // every other finding under thousands of identical ones.
        let half_open: std::collections::HashSet<&str> = rules::half_open(report)
            .map(|sa| sa.spi_i.as_str())
            .collect();
        out.retain(|f| f.ike_sa.as_deref().is_none_or(|s| !half_open.contains(s)));
        out.push(flood);
    }
    sort_worst_first(&mut out);
    out
}

/// One `cleartext-violation` finding per rule whose protected traffic was seen in the
/// clear, naming the flows.
pub fn cleartext_findings(flows: &[crate::cleartext::CleartextFlow]) -> Vec<Finding> {
    let mut by_rule: std::collections::BTreeMap<&str, Vec<&crate::cleartext::CleartextFlow>> =
        std::collections::BTreeMap::new();
    for f in flows {
        by_rule.entry(f.rule.as_str()).or_default().push(f);
    }
    by_rule
        .into_iter()
        .map(|(rule, flows)| {
            let packets: u64 = flows.iter().map(|f| f.packets).sum();
            let evidence = flows
                .iter()
                .take(8)
                .map(|f| Evidence {
                    frame: f.first_frame,
                    ts: f.first_seen,
                    what: format!("{} in the clear ({} packets, {})", f.flow, f.packets, f.verdict),
                })
                .collect();
            Finding {
                code: Code::CleartextViolation,
                severity: Severity::Error,
                ike_sa: None,
                summary: format!(
                    "{packets} packets of {} flow(s) that rule \"{rule}\" requires to be protected crossed in the clear (first: {})",
                    flows.len(),
                    flows[0].flow
                ),
                evidence,
                remedy: remedy(Code::CleartextViolation).to_string(),
                confidence: 1.0,
            }
        })
        .collect()
}

/// Sorts findings worst first (see [`diagnose`]).
pub fn sort_worst_first(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.confidence.total_cmp(&a.confidence))
            .then(first_frame(a).cmp(&first_frame(b)))
    });
}

fn first_frame(f: &Finding) -> u64 {
    f.evidence.iter().map(|e| e.frame).min().unwrap_or(u64::MAX)
}

/// `true` when any finding is an error (the `diagnose` command then exits with 1).
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

#[cfg(test)]
mod tests;
