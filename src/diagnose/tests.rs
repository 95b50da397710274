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
        dst_port: 500,
        request_fragments: 0,
        transmissions: vec![Transmission {
            frame,
            ts: started,
            bytes: 300,
        }],
        details: Vec::new(),
    }
}

pub(super) fn sa(state: IkeState) -> IkeSaReport {
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
        child_failures: Vec::new(),
        nat: NatReport::default(),
        child_sas: Vec::new(),
        exchanges: vec![exchange("IKE_SA_INIT", 1, 100.0, Some((2, 0.01)))],
        rekeyed_from: None,
        last_frame: 2,
        last_seen: 100.01,
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

pub(super) fn esp(
    spi: &str,
    src: &str,
    dst: &str,
    packets: u64,
    first: f64,
    last: f64,
) -> EspSaReport {
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
        peer_link: None,
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
    s.child_sas.push(ChildSaReport {
        spi_in: None,
        spi_out: None,
        protocol: "esp".into(),
        established_at: Some(100.05),
        rekeyed_from: None,
        source: "inferred".into(),
        deleted: false,
        ts_i: Vec::new(),
        ts_r: Vec::new(),
    });
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
    s.failure = Some(Failure::inferred(
        "peer-unreachable",
        4,
        0.9,
        "no answer".into(),
    ));
    let f = diagnose(&report(vec![s], vec![], 122.0), &Config::default());
    assert_eq!(codes(&f), vec![("peer-unreachable", Severity::Error)]);
    assert_eq!(
        f[0].summary,
        "IKE_SA_INIT sent 4 times over 7.0 s to 192.0.2.2:500, no answer"
    );
    // Four transmissions, then the reason of the inference at the failure's frame.
    assert_eq!(f[0].evidence.len(), 5);
    assert_eq!(f[0].evidence[4].what, "no answer");
    assert_eq!(f[0].confidence, 0.9);
}

#[test]
fn icmp_port_unreachable_is_named() {
    let mut s = sa(IkeState::Failed);
    s.exchanges = vec![exchange("IKE_SA_INIT", 1, 100.0, None)];
    s.failure = Some(Failure::inferred(
        "peer-unreachable",
        1,
        0.9,
        "no answer".into(),
    ));
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
        s.failure = Some(Failure::notified(code, notify, 2));
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
    s.failure = Some(Failure::notified("no-proposal-chosen", 14, 2));
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
    assert_eq!(
        f[0].summary,
        "negotiating for 12 s: no answer from 192.0.2.2 (IKE_AUTH sent once to \
         192.0.2.2:500, the last 12 s ago)"
    );
    // A request sent a moment ago is pending, not unanswered.
    let mut fresh = sa(IkeState::Negotiating);
    fresh.exchanges.push(exchange("IKE_AUTH", 3, 111.8, None));
    fresh.last_seen = 111.8;
    let f = diagnose(&report(vec![fresh], vec![], 112.0), &Config::default());
    assert_eq!(codes(&f), vec![("negotiation-stalled", Severity::Warning)]);
    assert_eq!(
        f[0].summary,
        "negotiating for 12 s between 192.0.2.1:500 and 192.0.2.2:500, last message 0 s ago"
    );
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
fn nat_is_not_blamed_before_traversal_could_start_or_on_a_source_hash_alone() {
    let dest = NatEvidence {
        kind: "natd-destination-mismatch".into(),
        detail: "destination hash mismatch".into(),
        frames: vec![2],
    };
    // Stopped in IKE_SA_INIT: traversal would only begin with IKE_AUTH.
    let mut init_only = sa(IkeState::Failed);
    init_only.nat.verdict = NatVerdict::Initiator;
    init_only.nat.evidence.push(dest.clone());
    let f = diagnose(&report(vec![init_only], vec![], 101.0), &Config::default());
    assert!(f.iter().all(|f| f.code != Code::NatBreaksIpsec), "{f:?}");
    // Past IKE_SA_INIT on port 500, but the verdict rests on a (fakeable) source hash.
    let mut weak = established();
    weak.nat.verdict = NatVerdict::Initiator;
    weak.nat.evidence.push(NatEvidence {
        kind: "natd-source-mismatch".into(),
        detail: "source hash mismatch".into(),
        frames: vec![1],
    });
    let f = diagnose(&report(vec![weak], vec![], 101.0), &Config::default());
    assert!(f.iter().all(|f| f.code != Code::NatBreaksIpsec), "{f:?}");
    // The strong case names the evidence with the time of its frame.
    let mut strong = established();
    strong.nat.verdict = NatVerdict::Initiator;
    strong.nat.evidence.push(dest);
    let f = diagnose(&report(vec![strong], vec![], 101.0), &Config::default());
    assert_eq!(f[0].code, Code::NatBreaksIpsec);
    assert_eq!(f[0].confidence, 0.8);
    assert_eq!((f[0].evidence[0].frame, f[0].evidence[0].ts), (2, 100.01));
}

#[test]
fn no_proposal_compares_with_what_the_responder_offered_elsewhere() {
    let mut failed = sa(IkeState::Failed);
    failed.offered = vec![
        "ike:3des-md5-modp1024".into(),
        "ike:aes128-sha256-modp2048".into(),
    ];
    failed.failure = Some(Failure::notified("no-proposal-chosen", 14, 2));
    // The responder started a negotiation of its own towards the same peer.
    let mut reverse = sa(IkeState::Negotiating);
    reverse.spi_i = "2222222222222222".into();
    reverse.initiator = "192.0.2.2:500".into();
    reverse.responder = "192.0.2.1:500".into();
    reverse.first_frame = 5;
    reverse.offered = vec!["ike:aes256-sha256-ecp384".into()];
    let f = diagnose(
        &report(vec![failed, reverse], vec![], 101.0),
        &Config::default(),
    );
    let whats: Vec<&str> = f[0].evidence.iter().map(|e| e.what.as_str()).collect();
    assert_eq!(
        whats[2..],
        [
            "192.0.2.1:500 offered ike:3des-md5-modp1024, ike:aes128-sha256-modp2048",
            "192.0.2.2:500 accepts ike:aes256-sha256-ecp384 (offered by 192.0.2.2 as initiator \
             of IKE SA 2222222222222222)",
            "closest mismatch: ike:aes128-sha256-modp2048 against ike:aes256-sha256-ecp384: \
             encryption aes128 against aes256; Diffie-Hellman group modp2048 against ecp384",
        ]
    );
}

#[test]
fn an_inferred_failure_shows_its_reason_and_confidence() {
    let mut s = sa(IkeState::Failed);
    s.exchanges.push(exchange("Main Mode", 3, 100.02, None));
    s.version = 1;
    let reason = "the responder answered MM1 and MM3 but not MM5 (sent 3 times)";
    s.failure = Some(Failure::inferred("auth-failed", 3, 0.7, reason.into()));
    let f = diagnose(&report(vec![s], vec![], 120.0), &Config::default());
    assert_eq!(codes(&f), vec![("auth-failed", Severity::Error)]);
    assert_eq!(f[0].confidence, 0.7);
    let last = f[0].evidence.last().unwrap();
    assert_eq!(
        (last.frame, last.ts, last.what.as_str()),
        (3, 100.02, reason)
    );
    let text = text::render(&f, text::Style::Plain);
    assert!(
        text.contains("IKE SA 0123456789abcdef (inferred, confidence 70 %)"),
        "{text}"
    );
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
    assert!(f[0].remedy.contains("protocol 50"), "{}", f[0].remedy);
    // IKE_AUTH on UDP 4500 (NAT traversal): ESP would be in UDP too, so a firewall
    // dropping protocol 50 is not the explanation; the selectors are.
    let mut natt = established();
    natt.exchanges[1].dst_port = 4500;
    let f = diagnose(&report(vec![natt], vec![], 140.0), &Config::default());
    assert_eq!(codes(&f), vec![("esp-blocked", Severity::Warning)]);
    assert!(f[0].remedy.contains("traffic selectors"), "{}", f[0].remedy);
    assert!(!f[0].remedy.contains("protocol 50"), "{}", f[0].remedy);
}

#[test]
fn worst_first() {
    let mut failed = sa(IkeState::Failed);
    failed.spi_i = "1111111111111111".into();
    failed.failure = Some(Failure::notified("auth-failed", 24, 9));
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
    // Past the stall threshold each of them is also a stalled negotiation; the flood's
    // one finding stands for them all, and other SAs keep their own findings.
    let mut r = r.clone();
    let mut failed = sa(IkeState::Failed);
    failed.spi_r = "fedcba9876543210".into();
    failed.failure = Some(Failure::notified("auth-failed", 24, 9));
    r.ike_sas.push(failed);
    r.last_ts = Some(200.0);
    let each = rules::for_ike_sa(&r.ike_sas[0], &scope::Scope::new(&r), &Config::default());
    assert!(!each.is_empty(), "one half-open SA alone has a finding");
    let f = diagnose(&r, &Config::default());
    assert_eq!(
        codes(&f),
        vec![
            ("auth-failed", Severity::Error),
            ("half-open-flood", Severity::Warning),
            ("invalid-spi", Severity::Warning)
        ]
    );
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
    s.failure = Some(Failure::notified("auth-failed", 24, 2));
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

#[test]
fn an_ikev1_refusal_in_its_own_informational_names_the_phase_1_offer() {
    let mut s = sa(IkeState::Failed);
    s.version = 1;
    s.exchanges = vec![
        exchange("Main Mode", 1, 100.0, None),
        exchange("Informational", 2, 100.01, None),
    ];
    s.offered = vec!["ike:3des-sha1-modp1024".into()];
    s.failure = Some(Failure::notified("no-proposal-chosen", 14, 2));
    let f = diagnose(&report(vec![s], vec![], 101.0), &Config::default());
    assert_eq!(
        f[0].summary,
        "192.0.2.2:500 accepted none of the ike proposals 192.0.2.1:500 offered \
         (ike:3des-sha1-modp1024)"
    );
}

#[test]
fn a_deleted_sa_that_never_carried_esp_was_blocked_and_one_way_traffic_counts_too() {
    let mut s = established();
    s.state = IkeState::Deleted;
    s.last_seen = 140.0;
    let f = diagnose(&report(vec![s.clone()], vec![], 200.0), &Config::default());
    assert_eq!(codes(&f), vec![("esp-blocked", Severity::Warning)]);
    assert_eq!(
        f[0].summary,
        "IKE between 192.0.2.1:500 and 192.0.2.2:500 completed but no ESP or AH was seen in the 40 s after"
    );
    let esp_out = esp("c0000001", "192.0.2.1", "192.0.2.2", 6, 101.0, 107.0);
    let f = diagnose(
        &report(vec![s.clone()], vec![esp_out], 200.0),
        &Config::default(),
    );
    assert_eq!(codes(&f), vec![("esp-one-way", Severity::Error)]);
    // Replaced by an IKE SA rekey: its children live on in the successor.
    let mut next = established();
    next.spi_i = "2222222222222222".into();
    next.rekeyed_from = Some(s.spi_i.clone());
    let f = diagnose(&report(vec![s, next], vec![], 130.0), &Config::default());
    assert!(
        f.iter()
            .all(|f| f.ike_sa.as_deref() != Some("0123456789abcdef")),
        "{f:?}"
    );
}

#[test]
fn refused_child_sas_are_one_finding_per_cause() {
    let mut s = established();
    s.exchanges
        .push(exchange("CREATE_CHILD_SA", 5, 101.0, Some((6, 0.01))));
    s.exchanges
        .push(exchange("CREATE_CHILD_SA", 7, 102.0, Some((8, 0.01))));
    let guess = "the CREATE_CHILD_SA response holds an encrypted error notify alone: more";
    s.child_failures = vec![
        Failure::inferred("negotiation-stalled", 6, 0.6, guess.into()),
        Failure::inferred("negotiation-stalled", 8, 0.6, guess.into()),
    ];
    let f = diagnose(&report(vec![s.clone()], vec![], 103.0), &Config::default());
    assert_eq!(codes(&f), vec![("negotiation-stalled", Severity::Warning)]);
    assert_eq!(
        f[0].summary,
        "192.0.2.2:500 did not accept a child SA as 192.0.2.1:500 asked for it: the \
         CREATE_CHILD_SA response holds an encrypted error notify alone"
    );
    let frames: Vec<u64> = f[0].evidence.iter().map(|e| e.frame).collect();
    assert_eq!(frames, [5, 6, 6]);
    s.child_failures
        .push(Failure::notified("no-proposal-chosen", 14, 8));
    let f = diagnose(&report(vec![s], vec![], 103.0), &Config::default());
    assert_eq!(
        codes(&f),
        vec![
            ("no-proposal-chosen", Severity::Error),
            ("negotiation-stalled", Severity::Warning)
        ]
    );
    assert_eq!(
        f[0].summary,
        "192.0.2.2:500 did not accept a child SA as 192.0.2.1:500 asked for it: NO_PROPOSAL_CHOSEN \
         (14)"
    );
}

#[test]
fn an_authentication_failure_behind_a_nat_names_the_nat_in_evidence_and_remedy() {
    let mut s = sa(IkeState::Failed);
    s.exchanges
        .push(exchange("IKE_SA_INIT", 1, 100.0, Some((2, 0.01))));
    s.failure = Some(Failure::notified("auth-failed", 24, 4));
    let plain = diagnose(&report(vec![s.clone()], vec![], 120.0), &Config::default());
    assert!(!plain[0].remedy.contains("NAT"));
    s.nat.verdict = NatVerdict::Initiator;
    s.nat.evidence.push(NatEvidence {
        kind: "natd-destination-mismatch".into(),
        detail: "the responder's destination hash names another address".into(),
        frames: vec![2],
    });
    let f = diagnose(&report(vec![s], vec![], 120.0), &Config::default());
    assert_eq!(codes(&f), vec![("auth-failed", Severity::Error)]);
    let nat = f[0]
        .evidence
        .iter()
        .find(|e| e.what.starts_with("a NAT sits in front of the initiator"))
        .expect("NAT evidence");
    assert_eq!((nat.frame, nat.ts), (2, 100.01));
    assert!(f[0].remedy.starts_with(plain[0].remedy.as_str()));
    assert!(f[0]
        .remedy
        .ends_with("or authenticate with an identity that is not an address."));
}

#[test]
fn many_single_packet_spis_without_ike_are_a_random_spi_flood() {
    let orphans = |n: u32| -> Vec<EspSaReport> {
        (0..n)
            .map(|i| EspSaReport {
                ike_sa: None,
                ike_sa_link: None,
                ..esp(
                    &format!("{i:08x}"),
                    "10.0.0.1",
                    "192.0.2.1",
                    1,
                    100.0,
                    100.0,
                )
            })
            .collect()
    };
    let few = report(Vec::new(), orphans(99), 101.0);
    assert!(diagnose(&few, &Config::default()).is_empty());
    let flood = report(Vec::new(), orphans(100), 101.0);
    let f = diagnose(&flood, &Config::default());
    assert_eq!(codes(&f), vec![("invalid-spi", Severity::Warning)]);
    assert!(f[0]
        .summary
        .starts_with("100 SPIs carried one protected packet each"));
    // SAs with traffic of their own are tunnels whose negotiation the capture missed.
    let mut busy = orphans(150);
    for e in &mut busy {
        e.packets = 40;
    }
    assert!(diagnose(&report(Vec::new(), busy, 101.0), &Config::default()).is_empty());
}

#[test]
fn silence_after_an_answered_ike_sa_init_names_udp_4500_when_nat_detection_ran() {
    // Seen from the responder's side: IKE_SA_INIT answered, then nothing for 12 s.
    let mut s = sa(IkeState::Negotiating);
    let plain = diagnose(&report(vec![s.clone()], vec![], 112.0), &Config::default());
    assert_eq!(
        codes(&plain),
        vec![("negotiation-stalled", Severity::Warning)]
    );
    assert_eq!(
        plain[0].summary,
        "IKE_SA_INIT answered, then nothing from 192.0.2.1 for 12 s: no IKE_AUTH reached this \
         capture point"
    );
    assert_eq!(plain[0].confidence, 0.6);
    s.nat.evidence.push(NatEvidence {
        kind: "natd-match".into(),
        detail: "both destination hashes match".into(),
        frames: vec![1, 2],
    });
    let f = diagnose(&report(vec![s], vec![], 112.0), &Config::default());
    assert_eq!(codes(&f), vec![("peer-unreachable", Severity::Warning)]);
    assert!(
        f[0].summary.ends_with(
            "; both peers sent NAT detection payloads, so NAT traversal moved IKE to UDP \
             4500, which is probably filtered on the way"
        ),
        "{}",
        f[0].summary
    );
    // Once IKE_AUTH was seen, the silence is no longer this one.
    let mut later = sa(IkeState::Negotiating);
    later
        .exchanges
        .push(exchange("IKE_AUTH", 3, 100.02, Some((4, 0.01))));
    later.last_seen = 100.03;
    let f = diagnose(&report(vec![later], vec![], 112.0), &Config::default());
    assert_eq!(codes(&f), vec![("negotiation-stalled", Severity::Warning)]);
}
