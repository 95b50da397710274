//! Diagnosis over hand-built reports: one test per cause, and the healthy case.

use crate::track::report::*;

use super::*;

fn exchange(name: &str, frame: u64, started: f64, response: Option<(u64, f64)>) -> ExchangeReport {
    ExchangeReport {
        exchange: name.to_string(),
        message_id: 0,
        request_frame: frame,
        response_frame: response.map(|r| r.0),
        started,
        rtt_s: response.map(|r| r.1),
        retransmissions: 0,
        notifies: Vec::new(),
        from_initiator: true,
        transmissions: vec![Transmission {
            frame,
            ts: started,
            bytes: 300,
        }],
        details: Vec::new(),
    }
}

fn sa(state: IkeState) -> IkeSaReport {
    IkeSaReport {
        version: 2,
        spi_i: "0123456789abcdef".into(),
        spi_r: "fedcba9876543210".into(),
        initiator: "192.0.2.1:500".into(),
        responder: "192.0.2.2:500".into(),
        state,
        first_frame: 1,
        started: 100.0,
        established_after_s: None,
        retransmissions: 0,
        failure: None,
        nat: NatReport::default(),
        child_sas: Vec::new(),
        exchanges: vec![exchange("IKE_SA_INIT", 1, 100.0, Some((2, 0.01)))],
        rekeyed_from: None,
        last_frame: 2,
        last_seen: 100.01,
        offered: Vec::new(),
        chosen: None,
        icmp: Vec::new(),
        rule: None,
        decryption: None,
        id_i: None,
        id_r: None,
    }
}

fn esp(spi: &str, src: &str, dst: &str, packets: u64, first: f64, last: f64) -> EspSaReport {
    EspSaReport {
        spi: spi.into(),
        src: src.into(),
        dst: dst.into(),
        encap: "none".into(),
        packets,
        bytes: packets * 100,
        first_seen: first,
        last_seen: last,
        first_frame: 10,
        last_frame: 20,
        lost: 0,
        replayed: 0,
        reordered: 0,
        ike_sa: Some("0123456789abcdef".into()),
        ike_sa_link: Some("inferred".into()),
        peer_spi: None,
        rule: None,
        decryption: None,
    }
}

fn report(sas: Vec<IkeSaReport>, esp_sas: Vec<EspSaReport>, last_ts: f64) -> Report {
    Report {
        ike_sas: sas,
        esp_sas,
        last_ts: Some(last_ts),
        ..Report::default()
    }
}

fn established() -> IkeSaReport {
    let mut s = sa(IkeState::Established);
    s.established_after_s = Some(0.05);
    s.exchanges
        .push(exchange("IKE_AUTH", 3, 100.02, Some((4, 0.03))));
    s
}

fn codes(findings: &[Finding]) -> Vec<(&'static str, Severity)> {
    findings
        .iter()
        .map(|f| (f.code.as_str(), f.severity))
        .collect()
}

#[test]
fn healthy_tunnel_has_no_findings() {
    let r = report(
        vec![established()],
        vec![
            esp("c0000001", "192.0.2.1", "192.0.2.2", 10, 100.1, 110.0),
            esp("c0000002", "192.0.2.2", "192.0.2.1", 10, 100.1, 110.0),
        ],
        110.0,
    );
    assert!(diagnose(&r, &Config::default()).is_empty());
}

#[test]
fn unanswered_init_is_peer_unreachable_with_every_retransmission() {
    let mut s = sa(IkeState::Failed);
    s.spi_r = "0000000000000000".into();
    s.exchanges = vec![exchange("IKE_SA_INIT", 1, 100.0, None)];
    s.exchanges[0].retransmissions = 3;
    for (i, t) in [(2, 101.0), (3, 103.0), (4, 107.0)] {
        s.exchanges[0].transmissions.push(Transmission {
            frame: i,
            ts: t,
            bytes: 300,
        });
    }
    s.failure = Some(Failure {
        code: "peer-unreachable".into(),
        notify_type: None,
        frame: 4,
    });
    let f = diagnose(&report(vec![s], vec![], 122.0), &Config::default());
    assert_eq!(codes(&f), vec![("peer-unreachable", Severity::Error)]);
    assert_eq!(
        f[0].summary,
        "IKE_SA_INIT sent 4 times over 7.0 s, no answer from 192.0.2.2:500"
    );
    assert_eq!(f[0].evidence.len(), 4);
    assert!(f[0].confidence < 1.0);
}

#[test]
fn icmp_port_unreachable_is_named() {
    let mut s = sa(IkeState::Failed);
    s.exchanges = vec![exchange("IKE_SA_INIT", 1, 100.0, None)];
    s.failure = Some(Failure {
        code: "peer-unreachable".into(),
        notify_type: None,
        frame: 1,
    });
    s.icmp.push(IcmpReport {
        frame: 2,
        ts: 100.001,
        from: "192.0.2.2".into(),
        icmp_type: 3,
        code: 3,
        mtu: None,
        what: "port unreachable".into(),
    });
    let f = diagnose(&report(vec![s], vec![], 101.0), &Config::default());
    assert!(
        f[0].summary
            .contains("ICMP port unreachable from 192.0.2.2"),
        "{}",
        f[0].summary
    );
    assert!(f[0].evidence.iter().any(|e| e.frame == 2));
}

#[test]
fn cleartext_notify_failures_are_certain() {
    for (code, notify) in [
        ("no-proposal-chosen", 14),
        ("auth-failed", 24),
        ("ts-unacceptable", 38),
        ("invalid-ke", 17),
    ] {
        let mut s = sa(IkeState::Failed);
        s.failure = Some(Failure {
            code: code.into(),
            notify_type: Some(notify),
            frame: 2,
        });
        let f = diagnose(&report(vec![s], vec![], 101.0), &Config::default());
        assert_eq!(codes(&f), vec![(code, Severity::Error)], "{code}");
        assert_eq!(f[0].confidence, 1.0);
        assert!(!f[0].remedy.is_empty());
    }
}

#[test]
fn no_proposal_lists_the_offers() {
    let mut s = sa(IkeState::Failed);
    s.offered = vec!["ike:aes256-sha384-ecp384".into()];
    s.failure = Some(Failure {
        code: "no-proposal-chosen".into(),
        notify_type: Some(14),
        frame: 2,
    });
    let f = diagnose(&report(vec![s], vec![], 101.0), &Config::default());
    assert!(
        f[0].summary.ends_with("(ike:aes256-sha384-ecp384)"),
        "{}",
        f[0].summary
    );
}

#[test]
fn recovered_invalid_ke_is_information() {
    let mut s = established();
    s.exchanges[0].notifies.push(17);
    s.exchanges[0]
        .details
        .push("responder wants DH group 19".into());
    let r = report(
        vec![s],
        vec![
            esp("c0000001", "192.0.2.1", "192.0.2.2", 3, 100.1, 101.0),
            esp("c0000002", "192.0.2.2", "192.0.2.1", 3, 100.1, 101.0),
        ],
        101.0,
    );
    let f = diagnose(&r, &Config::default());
    assert_eq!(codes(&f), vec![("invalid-ke", Severity::Info)]);
    assert!(f[0].summary.contains("group 19"));
}

#[test]
fn pending_negotiation_is_reported_during_the_hang() {
    let mut s = sa(IkeState::Negotiating);
    s.exchanges.push(exchange("IKE_AUTH", 3, 100.02, None));
    let quick = report(vec![s.clone()], vec![], 105.0);
    assert!(diagnose(&quick, &Config::default()).is_empty());
    let f = diagnose(&report(vec![s], vec![], 112.0), &Config::default());
    assert_eq!(codes(&f), vec![("peer-unreachable", Severity::Warning)]);
    assert!(f[0]
        .summary
        .starts_with("negotiating for 12 s: no answer from 192.0.2.2:500"));
}

#[test]
fn nat_without_traversal_breaks_ipsec() {
    let mut s = established();
    s.nat.verdict = NatVerdict::Initiator;
    s.nat.evidence.push(NatEvidence {
        kind: "natd-destination-mismatch".into(),
        detail: "responder's destination hash does not match 10.0.0.2:500".into(),
        frames: vec![2],
    });
    let plain = report(vec![s.clone()], vec![], 101.0);
    let f = diagnose(&plain, &Config::default());
    assert_eq!(codes(&f)[0], ("nat-breaks-ipsec", Severity::Error));

    s.nat.evidence.push(NatEvidence {
        kind: "udp-encapsulation".into(),
        detail: "ESP in UDP 4500".into(),
        frames: vec![5],
    });
    let traversed = report(vec![s], vec![], 101.0);
    assert!(diagnose(&traversed, &Config::default())
        .iter()
        .all(|f| f.code != Code::NatBreaksIpsec));
}

#[test]
fn ah_through_nat_is_always_broken() {
    let mut s = established();
    s.nat.evidence.push(NatEvidence {
        kind: "ah-through-nat".into(),
        detail: "AH between NATed peers".into(),
        frames: vec![7],
    });
    let f = diagnose(&report(vec![s], vec![], 101.0), &Config::default());
    assert_eq!(codes(&f)[0], ("nat-breaks-ipsec", Severity::Error));
    assert!(f[0].summary.contains("AH crosses a NAT"));
}

#[test]
fn one_way_esp() {
    let r = report(
        vec![established()],
        vec![esp("c0000001", "192.0.2.1", "192.0.2.2", 20, 100.1, 110.0)],
        110.0,
    );
    let f = diagnose(&r, &Config::default());
    assert_eq!(codes(&f), vec![("esp-one-way", Severity::Error)]);
    assert!(f[0].summary.contains("from 192.0.2.1 to 192.0.2.2 only"));
}

#[test]
fn no_esp_after_ike_is_blocked() {
    let r = report(vec![established()], vec![], 140.0);
    let f = diagnose(&r, &Config::default());
    assert_eq!(codes(&f), vec![("esp-blocked", Severity::Warning)]);
    let early = report(vec![established()], vec![], 110.0);
    assert!(diagnose(&early, &Config::default()).is_empty());
}

#[test]
fn worst_first() {
    let mut failed = sa(IkeState::Failed);
    failed.spi_i = "1111111111111111".into();
    failed.failure = Some(Failure {
        code: "auth-failed".into(),
        notify_type: Some(24),
        frame: 9,
    });
    let r = report(vec![established(), failed], vec![], 140.0);
    let f = diagnose(&r, &Config::default());
    assert_eq!(
        codes(&f),
        vec![
            ("auth-failed", Severity::Error),
            ("esp-blocked", Severity::Warning)
        ]
    );
    assert!(has_errors(&f));
}

#[test]
fn half_open_flood_and_bad_spis() {
    let mut sas = Vec::new();
    for i in 0..120u64 {
        let mut s = sa(IkeState::Negotiating);
        s.spi_i = format!("{i:016x}");
        s.spi_r = "0000000000000000".into();
        sas.push(s);
    }
    let mut r = report(sas, vec![], 101.0);
    r.stats.bad_spi_packets = 42;
    let config = Config {
        stall_after_s: 1000.0,
        ..Config::default()
    };
    let f = diagnose(&r, &config);
    assert_eq!(
        codes(&f),
        vec![
            ("half-open-flood", Severity::Warning),
            ("invalid-spi", Severity::Warning)
        ]
    );
    assert!(f[0]
        .summary
        .starts_with("120 negotiations from 1 source(s)"));
}

#[test]
fn rekey_collision_is_seen() {
    let mut s = established();
    let mut a = exchange("CREATE_CHILD_SA", 10, 200.0, Some((12, 0.05)));
    a.message_id = 2;
    let mut b = exchange("CREATE_CHILD_SA", 11, 200.01, Some((13, 0.05)));
    b.message_id = 0;
    b.from_initiator = false;
    s.exchanges.extend([a, b]);
    let r = report(
        vec![s],
        vec![
            esp("c0000001", "192.0.2.1", "192.0.2.2", 3, 100.1, 101.0),
            esp("c0000002", "192.0.2.2", "192.0.2.1", 3, 100.1, 101.0),
        ],
        201.0,
    );
    let f = diagnose(&r, &Config::default());
    assert_eq!(codes(&f), vec![("rekey-collision", Severity::Info)]);
}

#[test]
fn text_rendering() {
    let mut s = sa(IkeState::Failed);
    s.failure = Some(Failure {
        code: "auth-failed".into(),
        notify_type: Some(24),
        frame: 2,
    });
    let f = diagnose(&report(vec![s], vec![], 101.0), &Config::default());
    let text = text::render(&f, text::Style::Plain);
    assert!(text.starts_with(
        "ERROR   auth-failed  authentication between 192.0.2.1:500 and 192.0.2.2:500 failed\n"
    ));
    assert!(text.contains("Remedy: Make the authentication methods"));
    assert!(text.ends_with("1 finding(s), 1 error(s).\n"));
    let json = serde_json::to_value(text::Document::new(&f)).unwrap();
    assert_eq!(json["schema"], 1);
    assert_eq!(json["findings"][0]["code"], "auth-failed");
    assert_eq!(json["findings"][0]["severity"], "error");
    assert!(text::render(&[], text::Style::Plain).starts_with("No problems found"));
}
