//! The immutable snapshot that every output renders from.

use serde::{Deserialize, Serialize};

use crate::capture::CaptureStats;
use crate::diagnose::Finding;
use crate::policy::{Filter, Policy};
use crate::track::report::Report;

/// Everything the outputs show, taken at one instant of packet time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Always 1.
    pub schema: u32,
    /// What is being read (`file.pcap` or `interface eth0`).
    pub source: String,
    /// The tracker's report.
    pub report: Report,
    /// The diagnosis of that report, worst first.
    pub findings: Vec<Finding>,
    /// Capture counters.
    pub capture: CaptureStats,
    /// Decode errors by reason (`Reason::as_str`), in a fixed order.
    pub decode_errors: Vec<(String, u64)>,
    /// Cleartext flows that the loaded policy requires to be protected (empty without one).
    #[serde(default)]
    pub cleartext: Vec<crate::cleartext::CleartextFlow>,
    /// The loaded policy's negotiate rules, as the view names them (empty without one).
    #[serde(default)]
    pub rules: Vec<RuleSummary>,
}

/// One rule of the loaded policy, for showing next to the SAs it labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSummary {
    /// The rule's name, as SAs carry it in their `rule` field.
    pub name: String,
    /// What its filters select: protocols and ports (`tcp/6667, tcp/6668`, `any`).
    pub traffic: String,
}

impl RuleSummary {
    /// Every rule that negotiates security, in policy order.
    pub fn of_policy(policy: &Policy) -> Vec<RuleSummary> {
        policy
            .tunnels_expected()
            .iter()
            .map(|t| RuleSummary {
                name: t.rule.name.clone(),
                traffic: traffic_of(&t.filter_list.filters),
            })
            .collect()
    }
}

/// Protocol and ports of each filter, once each: `tcp/6667`, `udp/5060->5060`, `any`.
fn traffic_of(filters: &[Filter]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for f in filters {
        let ports = match (f.source_port, f.destination_port) {
            (None, None) => String::new(),
            (None, Some(d)) => format!("/{d}"),
            (Some(s), None) => format!("/{s}->any"),
            (Some(s), Some(d)) => format!("/{s}->{d}"),
        };
        let part = format!("{}{ports}", f.protocol);
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    if parts.is_empty() {
        return "none".to_string();
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_of_the_seed_policy_name_protocols_and_ports() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/alice.toml");
        let policy = Policy::load(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let rules = RuleSummary::of_policy(&policy);
        let rules: Vec<_> = rules
            .iter()
            .map(|r| (r.name.as_str(), r.traffic.as_str()))
            .collect();
        assert_eq!(
            rules,
            [
                ("Abczz with Bob", "tcp/6667, tcp/6668"),
                ("SIP with Eve", "udp/5060")
            ]
        );
    }
}
