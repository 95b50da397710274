//! The collector over hand-built snapshots: values, monotonic totals across a rekey,
//! the label cap, configured-but-down series.

use crate::capture::CaptureStats;
use crate::snapshot::Snapshot;
use crate::track::report::*;

use super::metrics::{Metrics, MetricsConfig};

fn ike(spi: &str, state: IkeState) -> IkeSaReport {
    IkeSaReport {
        version: 2,
        spi_i: spi.into(),
        spi_r: "fedcba9876543210".into(),
        initiator: "192.0.2.1:500".into(),
        responder: "192.0.2.2:500".into(),
        state,
        first_frame: 1,
        started: 100.0,
        established_after_s: Some(0.04),
        retransmissions: 1,
        failure: None,
        child_failures: Vec::new(),
        nat: NatReport::default(),
        child_sas: Vec::new(),
        exchanges: Vec::new(),
        rekeyed_from: None,
        last_frame: 4,
        last_seen: 100.04,
        offered: Vec::new(),
        chosen: None,
        accepted: Vec::new(),
        icmp: Vec::new(),
        rule: None,
        decryption: None,
        id_i: None,
        id_r: None,
    }
}

fn esp(spi: &str, ike_sa: &str, src: &str, dst: &str, packets: u64) -> EspSaReport {
    EspSaReport {
        spi: spi.into(),
        src: src.into(),
        dst: dst.into(),
        encap: "none".into(),
        packets,
        bytes: packets * 100,
        first_seen: 100.1,
        last_seen: 150.0,
        first_frame: 5,
        last_frame: 50,
        lost: 0,
        replayed: 0,
        reordered: 0,
        ike_sa: Some(ike_sa.into()),
        ike_sa_link: Some("inferred".into()),
        peer_spi: None,
        peer_link: None,
        rule: None,
        decryption: None,
    }
}

fn snap(ike_sas: Vec<IkeSaReport>, esp_sas: Vec<EspSaReport>) -> Snapshot {
    Snapshot {
        schema: 1,
        source: "test".into(),
        report: Report {
            ike_sas,
            esp_sas,
            frames: 60,
            last_ts: Some(150.0),
            ..Report::default()
        },
        findings: Vec::new(),
        capture: CaptureStats::default(),
        decode_errors: Vec::new(),
        cleartext: Vec::new(),
        rules: Vec::new(),
    }
}

/// The value of the one sample whose line starts with `prefix`.
fn value(text: &str, prefix: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no sample {prefix} in\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

const FWD: &str = r#"ipsecmon_tunnel_packets_total{direction="192.0.2.1->192.0.2.2",rule="",tunnel="192.0.2.1<->192.0.2.2"}"#;

#[test]
fn totals_stay_monotonic_across_a_rekey() {
    let mut m = Metrics::new(MetricsConfig::default());
    m.update(&snap(
        vec![ike("1111111111111111", IkeState::Established)],
        vec![esp(
            "c0000001",
            "1111111111111111",
            "192.0.2.1",
            "192.0.2.2",
            10,
        )],
    ));
    assert_eq!(value(&m.render(), FWD), 10.0);
    // Rekey: the old SA is gone from the report, a new SPI carries on from zero.
    let mut new = ike("2222222222222222", IkeState::Established);
    new.rekeyed_from = Some("1111111111111111".into());
    m.update(&snap(
        vec![ike("1111111111111111", IkeState::Deleted), new],
        vec![esp(
            "c0000002",
            "2222222222222222",
            "192.0.2.1",
            "192.0.2.2",
            4,
        )],
    ));
    let text = m.render();
    assert_eq!(value(&text, FWD), 14.0);
    assert_eq!(
        value(&text, "ipsecmon_ike_establishment_seconds_count"),
        1.0,
        "the rekeyed IKE SA inherits its time, not a second establishment"
    );
    assert_eq!(
        value(
            &text,
            r#"ipsecmon_tunnel_state{rule="",state="established",tunnel="192.0.2.1<->192.0.2.2"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"ipsecmon_tunnel_state{rule="",state="down",tunnel="192.0.2.1<->192.0.2.2"}"#
        ),
        0.0
    );
}

#[test]
fn failures_and_latency_count_once() {
    let mut failed = ike("3333333333333333", IkeState::Failed);
    failed.established_after_s = None;
    failed.failure = Some(Failure::notified("auth-failed", 24, 3));
    let s = snap(
        vec![ike("1111111111111111", IkeState::Established), failed],
        vec![],
    );
    let mut m = Metrics::new(MetricsConfig::default());
    m.update(&s);
    m.update(&s);
    let text = m.render();
    assert_eq!(
        value(
            &text,
            r#"ipsecmon_negotiation_failures_total{code="auth-failed"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"ipsecmon_negotiation_failures_total{code="no-proposal-chosen"}"#
        ),
        0.0
    );
    assert_eq!(
        value(&text, "ipsecmon_ike_establishment_seconds_count"),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"ipsecmon_ike_establishment_seconds_bucket{le="0.05"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"ipsecmon_ike_establishment_seconds_bucket{le="0.025"}"#
        ),
        0.0
    );
    assert_eq!(value(&text, "ipsecmon_ike_retransmissions_total"), 2.0);
    assert_eq!(value(&text, "ipsecmon_frames_total"), 60.0);
}

#[test]
fn failures_latency_and_retransmissions_per_tunnel() {
    let mut failed = ike("3333333333333333", IkeState::Failed);
    failed.established_after_s = None;
    failed.retransmissions = 4;
    failed.responder = "192.0.2.3:500".into();
    failed.failure = Some(Failure::inferred(
        "peer-unreachable",
        9,
        0.9,
        "requests retransmitted, no answer".into(),
    ));
    let s = snap(
        vec![ike("1111111111111111", IkeState::Established), failed],
        vec![],
    );
    let mut m = Metrics::new(MetricsConfig::default());
    m.update(&s);
    m.update(&s);
    let text = m.render();
    let up = r#"rule="",tunnel="192.0.2.1<->192.0.2.2"}"#;
    let down = r#"rule="",tunnel="192.0.2.1<->192.0.2.3"}"#;
    assert_eq!(
        value(
            &text,
            r#"ipsecmon_tunnel_negotiation_failures_total{code="peer-unreachable",rule="",tunnel="192.0.2.1<->192.0.2.3"}"#
        ),
        1.0
    );
    let failures_of_up: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ipsecmon_tunnel_negotiation_failures_total{"))
        .filter(|l| l.contains("192.0.2.1<->192.0.2.2"))
        .collect();
    assert_eq!(failures_of_up.len(), 8, "every code at zero");
    assert!(failures_of_up.iter().all(|l| l.ends_with(" 0")));
    assert_eq!(
        value(
            &text,
            &format!("ipsecmon_tunnel_ike_retransmissions_total{{{down}")
        ),
        4.0
    );
    assert_eq!(
        value(
            &text,
            &format!("ipsecmon_tunnel_ike_retransmissions_total{{{up}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"ipsecmon_tunnel_establishment_seconds_bucket{rule="",tunnel="192.0.2.1<->192.0.2.2",le="0.05"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("ipsecmon_tunnel_establishment_seconds_count{{{up}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("ipsecmon_tunnel_establishment_seconds_count{{{down}")
        ),
        0.0
    );
}

#[test]
fn a_new_tunnel_has_zero_series_in_both_directions() {
    let mut m = Metrics::new(MetricsConfig::default());
    m.update(&snap(
        vec![ike("1111111111111111", IkeState::Established)],
        vec![esp(
            "c0000001",
            "1111111111111111",
            "192.0.2.1",
            "192.0.2.2",
            10,
        )],
    ));
    let text = m.render();
    let back = r#"{direction="192.0.2.2->192.0.2.1",rule="",tunnel="192.0.2.1<->192.0.2.2"}"#;
    for metric in [
        "ipsecmon_tunnel_packets_total",
        "ipsecmon_tunnel_bytes_total",
        "ipsecmon_tunnel_esp_lost_packets_total",
        "ipsecmon_tunnel_esp_replayed_packets_total",
    ] {
        assert_eq!(value(&text, &format!("{metric}{back}")), 0.0, "{metric}");
    }
    assert_eq!(value(&text, FWD), 10.0);
}

#[test]
fn a_tunnel_that_appears_later_starts_at_zero_then_counts() {
    let first = ike("1111111111111111", IkeState::Established);
    let mut m = Metrics::new(MetricsConfig::default());
    m.update(&snap(vec![first.clone()], vec![]));
    let mut late = ike("4444444444444444", IkeState::Failed);
    late.responder = "192.0.2.9:500".into();
    late.retransmissions = 2;
    late.failure = Some(Failure::notified("auth-failed", 24, 30));
    let later = snap(vec![first, late], vec![]);
    let failed = r#"ipsecmon_tunnel_negotiation_failures_total{code="auth-failed",rule="",tunnel="192.0.2.1<->192.0.2.9"}"#;
    let total = r#"ipsecmon_negotiation_failures_total{code="auth-failed"}"#;
    m.update(&later);
    let text = m.render();
    assert_eq!(value(&text, failed), 0.0, "born at zero");
    assert_eq!(value(&text, total), 0.0);
    m.update(&later);
    let text = m.render();
    assert_eq!(value(&text, failed), 1.0);
    assert_eq!(value(&text, total), 1.0);
    assert_eq!(
        value(
            &text,
            r#"ipsecmon_tunnel_ike_retransmissions_total{rule="",tunnel="192.0.2.1<->192.0.2.9"}"#
        ),
        2.0
    );
    m.update(&later);
    assert_eq!(value(&m.render(), failed), 1.0, "counted once");
}

#[test]
fn label_cap_aggregates_into_other() {
    let config = MetricsConfig {
        max_tunnels: 2,
        ..MetricsConfig::default()
    };
    let mut m = Metrics::new(config);
    let mut sas = Vec::new();
    for i in 0..5 {
        let mut sa = ike(&format!("{i:016x}"), IkeState::Established);
        sa.responder = format!("198.51.100.{}:500", i + 1);
        sas.push(sa);
    }
    m.update(&snap(sas, vec![]));
    let text = m.render();
    assert_eq!(value(&text, "ipsecmon_tunnels_aggregated"), 3.0);
    let labelled = text
        .lines()
        .filter(|l| l.starts_with("ipsecmon_tunnel_state{") && l.contains("state=\"established\""))
        .count();
    assert_eq!(labelled, 2);
}

#[test]
fn configured_tunnels_read_down_before_any_packet() {
    let config = MetricsConfig {
        expected: vec![("192.0.2.1<->192.0.2.2".into(), "Abczz to Bob's PC".into())],
        ..MetricsConfig::default()
    };
    let m = Metrics::new(config);
    let text = m.render();
    let labels = r#"rule="Abczz to Bob's PC",tunnel="192.0.2.1<->192.0.2.2""#;
    assert_eq!(
        value(
            &text,
            r#"ipsecmon_tunnel_state{rule="Abczz to Bob's PC",state="down",tunnel="192.0.2.1<->192.0.2.2"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"ipsecmon_tunnel_state{rule="Abczz to Bob's PC",state="established",tunnel="192.0.2.1<->192.0.2.2"}"#
        ),
        0.0
    );
    for direction in ["192.0.2.1->192.0.2.2", "192.0.2.2->192.0.2.1"] {
        assert_eq!(
            value(
                &text,
                &format!(r#"ipsecmon_tunnel_bytes_total{{direction="{direction}",{labels}}}"#)
            ),
            0.0
        );
    }
    assert_eq!(
        value(&text, &format!("ipsecmon_tunnel_nat_detected{{{labels}}}")),
        0.0
    );
    assert_eq!(
        value(
            &text,
            &format!("ipsecmon_tunnel_establishment_seconds_count{{{labels}}}")
        ),
        0.0
    );
}

#[test]
fn ipsecmon_statistics_block_is_exported() {
    let mut s = snap(vec![], vec![]);
    s.report.stats = Stats {
        active_associations: 2,
        confidential_bytes_sent: 1000,
        bad_spi_packets: 7,
        main_modes: 3,
        ..Stats::default()
    };
    let mut m = Metrics::new(MetricsConfig::default());
    m.update(&s);
    let text = m.render();
    assert_eq!(
        value(&text, r#"ipsecmon_ipsec_associations{kind="active"}"#),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"ipsecmon_protected_bytes_total{direction="sent",protection="confidential"}"#
        ),
        1000.0
    );
    assert_eq!(
        value(
            &text,
            r#"ipsecmon_ipsec_events_total{event="bad_spi_packets"}"#
        ),
        7.0
    );
    assert_eq!(
        value(&text, r#"ipsecmon_ipsec_events_total{event="main_modes"}"#),
        3.0
    );
}
