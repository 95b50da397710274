//! Tracker state machines driven with constructed messages and a simulated clock.

use std::net::IpAddr;

use super::report::{IkeSaReport, IkeState, Report};
use super::{Config, Tracker};
use crate::wire::ike::{Delete, IkeHeader, IkeMessage, Notify, Payload, PayloadBody, Proposal};
use crate::wire::{Addrs, AhPacket, Encap, EspPacket, IcmpError, IkeDatagram, Timestamp};

const I: &str = "192.0.2.1";
const R: &str = "192.0.2.2";
const SPI_I: u64 = 0x1111_2222_3333_4444;
const SPI_R: u64 = 0x5555_6666_7777_8888;

/// IKEv2 flags: I (0x08) and R (0x20).
const FROM_I: u8 = 0x08;
const RESP: u8 = 0x20;

/// A simulated capture: frames numbered from 1, time in milliseconds from zero.
struct Sim {
    t: Tracker,
    frame: u64,
}

fn ts(ms: i64) -> Timestamp {
    Timestamp(1_700_000_000_000_000_000 + ms * 1_000_000)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addrs(src: &str, dst: &str, ports: Option<(u16, u16)>) -> Addrs {
    Addrs {
        src: ip(src),
        dst: ip(dst),
        ports,
    }
}

impl Sim {
    fn new() -> Self {
        Sim::with(Config::default())
    }

    fn with(config: Config) -> Self {
        Sim {
            t: Tracker::new(config),
            frame: 0,
        }
    }

    fn next(&mut self) -> u64 {
        self.frame += 1;
        self.frame
    }

    /// An IKE message; `bytes` stands for the datagram (equal bytes = retransmission).
    fn ike(&mut self, ms: i64, src: &str, dst: &str, msg: IkeMessage, bytes: &str) -> u64 {
        let f = self.next();
        let dgram = IkeDatagram {
            addrs: addrs(src, dst, Some((500, 500))),
            encap: Encap::None,
            message: bytes.as_bytes(),
        };
        self.t.on_ike(f, ts(ms), &dgram, &msg);
        f
    }

    /// An IKE message between explicit ports; 4500 on both ends means UDP encapsulation
    /// (RFC 3948 non-ESP marker).
    fn ike_ports(
        &mut self,
        ms: i64,
        (src, dst): (&str, &str),
        ports: (u16, u16),
        msg: IkeMessage,
        bytes: &str,
    ) -> u64 {
        let f = self.next();
        let encap = if ports.0 == 4500 || ports.1 == 4500 {
            Encap::Udp
        } else {
            Encap::None
        };
        let dgram = IkeDatagram {
            addrs: addrs(src, dst, Some(ports)),
            encap,
            message: bytes.as_bytes(),
        };
        self.t.on_ike(f, ts(ms), &dgram, &msg);
        f
    }

    fn esp(&mut self, ms: i64, src: &str, dst: &str, spi: u32, seq: u32) -> u64 {
        let f = self.next();
        let payload = [0u8; 100];
        let esp = EspPacket {
            addrs: addrs(src, dst, None),
            encap: Encap::None,
            spi,
            seq,
            payload: &payload,
        };
        self.t.on_esp(f, ts(ms), &esp);
        f
    }

    fn other(&mut self, ms: i64) {
        let f = self.next();
        self.t.on_other(f, ts(ms));
    }

    fn finish(&mut self, ms: i64) -> Report {
        self.t.finish(ts(ms));
        self.t.report()
    }
}

fn msg(
    version: u8,
    spi_i: u64,
    spi_r: u64,
    exch: u8,
    msgid: u32,
    flags: u8,
    payloads: Vec<Payload>,
) -> IkeMessage {
    IkeMessage {
        header: IkeHeader {
            spi_i,
            spi_r,
            next_payload: 0,
            major: version,
            minor: 0,
            exchange_type: exch,
            flags,
            message_id: msgid,
            length: 0,
        },
        payloads,
        error: None,
    }
}

fn v2(spi_r: u64, exch: u8, msgid: u32, flags: u8, payloads: Vec<Payload>) -> IkeMessage {
    msg(2, SPI_I, spi_r, exch, msgid, flags, payloads)
}

fn v1(spi_r: u64, exch: u8, msgid: u32, payloads: Vec<Payload>) -> IkeMessage {
    msg(1, SPI_I, spi_r, exch, msgid, 0, payloads)
}

fn payload(body: PayloadBody, decrypted: bool) -> Payload {
    Payload {
        payload_type: 0,
        critical: false,
        body,
        decrypted,
    }
}

fn notify(t: u16) -> Payload {
    notify_spi(t, None, false)
}

fn notify_spi(t: u16, spi: Option<u64>, decrypted: bool) -> Payload {
    payload(
        PayloadBody::Notify(Notify {
            doi: None,
            protocol_id: 0,
            spi,
            notify_type: t,
            data: Vec::new(),
        }),
        decrypted,
    )
}

fn sk(len: usize) -> Payload {
    payload(
        PayloadBody::Encrypted {
            first_payload: 0,
            data_len: len,
        },
        false,
    )
}

fn sa_spi(protocol_id: u8, spi: u64, spi_size: u8) -> Payload {
    payload(
        PayloadBody::Sa {
            doi: None,
            situation: None,
            proposals: vec![Proposal {
                number: 1,
                protocol_id,
                spi,
                spi_size,
                transforms: Vec::new(),
            }],
        },
        true,
    )
}

fn delete(protocol_id: u8, spis: Vec<u64>) -> Payload {
    payload(
        PayloadBody::Delete(Delete {
            doi: None,
            protocol_id,
            spis,
        }),
        true,
    )
}

fn only(r: &Report) -> &IkeSaReport {
    assert_eq!(r.ike_sas.len(), 1, "{:#?}", r.ike_sas);
    &r.ike_sas[0]
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-6)
}

/// IKE_SA_INIT and IKE_AUTH of a successful IKEv2 negotiation starting at `t0` ms.
fn v2_up(s: &mut Sim, t0: i64) {
    s.ike(t0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike(t0 + 10, R, I, v2(SPI_R, 34, 0, RESP, vec![]), "init-resp");
    s.ike(
        t0 + 20,
        I,
        R,
        v2(SPI_R, 35, 1, FROM_I, vec![sk(300)]),
        "auth-req",
    );
    s.ike(
        t0 + 40,
        R,
        I,
        v2(SPI_R, 35, 1, RESP, vec![sk(208)]),
        "auth-resp",
    );
}

#[test]
fn ikev2_happy_path_is_established_and_timed() {
    let mut s = Sim::new();
    v2_up(&mut s, 0);
    s.esp(50, I, R, 0xaaaa, 1);
    s.esp(51, R, I, 0xbbbb, 1);
    let r = s.finish(60);
    let sa = only(&r);
    assert_eq!(sa.state, IkeState::Established);
    assert!(close(sa.established_after_s, 0.040));
    assert_eq!(sa.spi_r, "5555666677778888");
    assert_eq!(sa.initiator, "192.0.2.1:500");
    assert_eq!(sa.exchanges.len(), 2);
    assert!(close(sa.exchanges[0].rtt_s, 0.010));
    assert!(close(sa.exchanges[1].rtt_s, 0.020));
    assert_eq!(sa.child_sas.len(), 1);
    let child = &sa.child_sas[0];
    assert_eq!(child.spi_out.as_deref(), Some("0000aaaa"));
    assert_eq!(child.spi_in.as_deref(), Some("0000bbbb"));
    assert_eq!(child.source, "inferred");
    assert_eq!(r.esp_sas.len(), 2);
    assert_eq!(r.esp_sas[0].ike_sa.as_deref(), Some("1111222233334444"));
    assert_eq!(r.esp_sas[0].ike_sa_link.as_deref(), Some("inferred"));
    assert_eq!(r.esp_sas[0].peer_spi.as_deref(), Some("0000bbbb"));
    let st = r.stats;
    assert_eq!((st.main_modes, st.quick_modes, st.key_additions), (1, 1, 1));
    assert_eq!((st.active_associations, st.soft_associations), (1, 0));
    assert_eq!(
        (st.confidential_bytes_sent, st.confidential_bytes_received),
        (100, 100)
    );
}

#[test]
fn cookie_retry_is_one_negotiation_and_counts_in_the_timing() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike(5, R, I, v2(0, 34, 0, RESP, vec![notify(16390)]), "cookie");
    s.ike(
        10,
        I,
        R,
        v2(0, 34, 0, FROM_I, vec![notify(16390)]),
        "init-req-cookie",
    );
    s.ike(20, R, I, v2(SPI_R, 34, 0, RESP, vec![]), "init-resp");
    s.ike(
        30,
        I,
        R,
        v2(SPI_R, 35, 1, FROM_I, vec![sk(300)]),
        "auth-req",
    );
    s.ike(50, R, I, v2(SPI_R, 35, 1, RESP, vec![sk(208)]), "auth-resp");
    let r = s.finish(60);
    let sa = only(&r);
    assert_eq!(sa.state, IkeState::Established);
    assert!(close(sa.established_after_s, 0.050));
    assert_eq!(sa.retransmissions, 0);
    assert_eq!(sa.exchanges.len(), 3);
    assert_eq!(sa.exchanges[0].notifies, vec![16390]);
    assert_eq!(r.stats.main_modes, 1);
}

#[test]
fn invalid_ke_retry_with_a_new_spi_is_linked() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike(5, R, I, v2(0, 34, 0, RESP, vec![notify(17)]), "invalid-ke");
    let retry = msg(2, 0x9999, 0, 34, 0, FROM_I, vec![]);
    s.ike(10, I, R, retry, "init-req-2");
    s.ike(
        20,
        R,
        I,
        msg(2, 0x9999, SPI_R, 34, 0, RESP, vec![]),
        "init-resp",
    );
    s.ike(
        30,
        I,
        R,
        msg(2, 0x9999, SPI_R, 35, 1, FROM_I, vec![sk(300)]),
        "auth-req",
    );
    s.ike(
        45,
        R,
        I,
        msg(2, 0x9999, SPI_R, 35, 1, RESP, vec![sk(208)]),
        "auth-resp",
    );
    let r = s.finish(60);
    let sa = only(&r);
    assert_eq!(sa.state, IkeState::Established);
    assert_eq!(sa.spi_i, "0000000000009999");
    assert!(close(sa.established_after_s, 0.045));
    assert_eq!(sa.failure, None);
}

#[test]
fn invalid_ke_without_retry_fails_with_invalid_ke() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    let f = s.ike(5, R, I, v2(0, 34, 0, RESP, vec![notify(17)]), "invalid-ke");
    assert_eq!(s.t.report().ike_sas[0].state, IkeState::Negotiating);
    let r = s.finish(100);
    let failure = only(&r).failure.clone().unwrap();
    assert_eq!(
        (failure.code.as_str(), failure.notify_type, failure.frame),
        ("invalid-ke", Some(17), f)
    );
}

#[test]
fn no_proposal_chosen_fails_at_once() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    let f = s.ike(3, R, I, v2(0, 34, 0, RESP, vec![notify(14)]), "npc");
    let r = s.t.report();
    let sa = only(&r);
    assert_eq!(sa.state, IkeState::Failed);
    let failure = sa.failure.clone().unwrap();
    assert_eq!(
        (failure.code.as_str(), failure.notify_type, failure.frame),
        ("no-proposal-chosen", Some(14), f)
    );
    assert_eq!(sa.established_after_s, None);
}

#[test]
fn retransmissions_are_counted_and_an_unanswered_request_fails_at_end() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike(1000, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    let last = s.ike(3000, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    let r = s.t.report();
    assert_eq!(only(&r).state, IkeState::Negotiating);
    assert_eq!(only(&r).retransmissions, 2);
    assert_eq!(only(&r).exchanges.len(), 1);
    let r = s.finish(3100);
    let sa = only(&r);
    assert_eq!(sa.state, IkeState::Failed);
    let failure = sa.failure.clone().unwrap();
    assert_eq!(
        (failure.code.as_str(), failure.frame),
        ("peer-unreachable", last)
    );
}

#[test]
fn retransmission_counters_saturate_instead_of_overflowing() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    let key = super::ike::IkeKey {
        version: 2,
        spi_i: SPI_I,
    };
    let sa = s.t.ike.get_mut(&key).unwrap();
    sa.retransmissions = u32::MAX - 1;
    sa.exchanges[0].retransmissions = u32::MAX - 1;
    for ms in [10, 20, 30] {
        s.ike(ms, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    }
    let r = s.t.report();
    assert_eq!(only(&r).retransmissions, u32::MAX);
    assert_eq!(only(&r).exchanges[0].retransmissions, u32::MAX);
}

#[test]
fn an_unanswered_request_fails_once_packet_time_passes_the_threshold() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.other(9_000);
    assert_eq!(s.t.report().ike_sas[0].state, IkeState::Negotiating);
    s.other(10_500);
    let r = s.t.report();
    assert_eq!(
        r.ike_sas[0].failure.as_ref().unwrap().code,
        "peer-unreachable"
    );
}

#[test]
fn a_half_finished_negotiation_stalls() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike(10, R, I, v2(SPI_R, 34, 0, RESP, vec![]), "init-resp");
    let r = s.finish(500);
    assert_eq!(only(&r).state, IkeState::Negotiating);
    s.other(20_000);
    let r = s.t.report();
    assert_eq!(
        only(&r).failure.as_ref().unwrap().code,
        "negotiation-stalled"
    );
}

#[test]
fn a_large_unanswered_request_after_answers_means_lost_fragments() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike(10, R, I, v2(SPI_R, 34, 0, RESP, vec![]), "init-resp");
    let big = "x".repeat(3468);
    s.ike(20, I, R, v2(SPI_R, 35, 1, FROM_I, vec![sk(3400)]), &big);
    s.ike(1020, I, R, v2(SPI_R, 35, 1, FROM_I, vec![sk(3400)]), &big);
    let r = s.finish(1100);
    assert_eq!(
        only(&r).failure.as_ref().unwrap().code,
        "ike-fragments-lost"
    );
}

#[test]
fn a_short_auth_response_followed_by_silence_is_an_auth_failure() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike(10, R, I, v2(SPI_R, 34, 0, RESP, vec![]), "init-resp");
    s.ike(
        20,
        I,
        R,
        v2(SPI_R, 35, 1, FROM_I, vec![sk(300)]),
        "auth-req",
    );
    let f = s.ike(30, R, I, v2(SPI_R, 35, 1, RESP, vec![sk(48)]), "auth-resp");
    let r = s.finish(40);
    let sa = only(&r);
    assert_eq!(sa.state, IkeState::Failed);
    let failure = sa.failure.clone().unwrap();
    assert_eq!(
        (failure.code.as_str(), failure.notify_type, failure.frame),
        ("auth-failed", None, f)
    );
    assert_eq!(r.stats.authentication_failures, 1);
}

#[test]
fn esp_after_a_short_auth_response_proves_success() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike(10, R, I, v2(SPI_R, 34, 0, RESP, vec![]), "init-resp");
    s.ike(
        20,
        I,
        R,
        v2(SPI_R, 35, 1, FROM_I, vec![sk(300)]),
        "auth-req",
    );
    s.ike(30, R, I, v2(SPI_R, 35, 1, RESP, vec![sk(48)]), "auth-resp");
    s.esp(35, I, R, 0xaaaa, 1);
    let r = s.finish(40);
    let sa = only(&r);
    assert_eq!(sa.state, IkeState::Established);
    assert!(close(sa.established_after_s, 0.030));
    assert_eq!(sa.child_sas[0].spi_out.as_deref(), Some("0000aaaa"));
}

#[test]
fn decrypted_authentication_failed_is_exact() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike(10, R, I, v2(SPI_R, 34, 0, RESP, vec![]), "init-resp");
    s.ike(
        20,
        I,
        R,
        v2(SPI_R, 35, 1, FROM_I, vec![sk(300)]),
        "auth-req",
    );
    let mut resp = v2(SPI_R, 35, 1, RESP, vec![sk(48)]);
    resp.payloads.push(notify_spi(24, None, true));
    s.ike(30, R, I, resp, "auth-resp");
    let r = s.t.report();
    let failure = only(&r).failure.clone().unwrap();
    assert_eq!(
        (failure.code.as_str(), failure.notify_type),
        ("auth-failed", Some(24))
    );
}

#[test]
fn decrypted_child_spis_link_esp_exactly_and_name_rekeys() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike(10, R, I, v2(SPI_R, 34, 0, RESP, vec![]), "init-resp");
    s.ike(
        20,
        I,
        R,
        v2(SPI_R, 35, 1, FROM_I, vec![sk(300), sa_spi(3, 0xc1, 4)]),
        "auth-req",
    );
    s.ike(
        30,
        R,
        I,
        v2(SPI_R, 35, 1, RESP, vec![sk(208), sa_spi(3, 0xd1, 4)]),
        "auth-resp",
    );
    s.esp(40, R, I, 0xc1, 1);
    s.esp(41, I, R, 0xd1, 1);
    let rekey_req = vec![
        sk(300),
        sa_spi(3, 0xc2, 4),
        notify_spi(16393, Some(0xc1), true),
    ];
    s.ike(50, I, R, v2(SPI_R, 36, 2, FROM_I, rekey_req), "ccsa-req");
    s.ike(
        60,
        R,
        I,
        v2(SPI_R, 36, 2, RESP, vec![sk(200), sa_spi(3, 0xd2, 4)]),
        "ccsa-resp",
    );
    s.ike(
        70,
        I,
        R,
        v2(SPI_R, 37, 3, FROM_I, vec![sk(40), delete(3, vec![0xc1])]),
        "del-req",
    );
    s.ike(
        80,
        R,
        I,
        v2(SPI_R, 37, 3, RESP, vec![sk(40), delete(3, vec![0xd1])]),
        "del-resp",
    );
    s.esp(3000, R, I, 0xc1, 2);
    let r = s.finish(3100);
    let sa = only(&r);
    assert_eq!(sa.child_sas.len(), 2);
    assert_eq!(sa.child_sas[0].spi_in.as_deref(), Some("000000c1"));
    assert_eq!(sa.child_sas[0].source, "decrypted");
    assert_eq!(sa.child_sas[1].rekeyed_from.as_deref(), Some("000000c1"));
    assert_eq!(r.esp_sas[0].ike_sa_link.as_deref(), Some("decrypted"));
    assert_eq!(r.esp_sas[0].peer_spi.as_deref(), Some("000000d1"));
    assert_eq!(
        (r.stats.rekeys, r.stats.key_additions, r.stats.key_deletions),
        (1, 2, 1)
    );
    assert_eq!(r.stats.bad_spi_packets, 1);
    assert_eq!(r.stats.active_associations, 1);
}

#[test]
fn an_ike_sa_rekey_seen_only_as_a_new_spi_pair_inherits_the_history() {
    let mut s = Sim::new();
    v2_up(&mut s, 0);
    s.ike(
        50,
        I,
        R,
        v2(SPI_R, 36, 2, FROM_I, vec![sk(400)]),
        "ccsa-req",
    );
    s.ike(60, R, I, v2(SPI_R, 36, 2, RESP, vec![sk(400)]), "ccsa-resp");
    let new = msg(2, 0xabc, 0xdef, 37, 0, FROM_I, vec![sk(40)]);
    s.ike(70, I, R, new, "info-new");
    let r = s.finish(80);
    assert_eq!(r.ike_sas.len(), 2);
    let (old, new) = (&r.ike_sas[0], &r.ike_sas[1]);
    assert_eq!(old.state, IkeState::Deleted);
    assert_eq!(new.state, IkeState::Established);
    assert_eq!(new.rekeyed_from.as_deref(), Some("1111222233334444"));
    assert!(close(new.established_after_s, 0.040));
    assert_eq!(
        new.child_sas.len(),
        1,
        "the CREATE_CHILD_SA was the rekey, not a child"
    );
    assert_eq!(r.stats.rekeys, 1);
}

#[test]
fn a_decrypted_delete_ends_the_ike_sa() {
    let mut s = Sim::new();
    v2_up(&mut s, 0);
    s.ike(
        100,
        I,
        R,
        v2(SPI_R, 37, 2, FROM_I, vec![sk(40), delete(1, vec![])]),
        "del",
    );
    s.ike(110, R, I, v2(SPI_R, 37, 2, RESP, vec![sk(40)]), "del-resp");
    let r = s.finish(200);
    assert_eq!(only(&r).state, IkeState::Deleted);
    assert_eq!(r.stats.key_deletions, 1);
    assert_eq!(r.stats.active_associations, 0);
}

#[test]
fn responder_initiated_requests_are_matched_by_their_own_message_ids() {
    let mut s = Sim::new();
    v2_up(&mut s, 0);
    // The responder's first request uses its own message ID 0.
    s.ike(100, R, I, v2(SPI_R, 37, 0, 0, vec![sk(40)]), "r-info");
    s.ike(
        105,
        I,
        R,
        v2(SPI_R, 37, 0, FROM_I | RESP, vec![sk(40)]),
        "r-info-resp",
    );
    let r = s.finish(200);
    let ex = &only(&r).exchanges[2];
    assert_eq!(ex.exchange, "INFORMATIONAL");
    assert!(close(ex.rtt_s, 0.005));
}

#[test]
fn icmp_unreachable_quoting_a_request_means_peer_unreachable() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    let mut quoted = vec![
        0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
    ];
    quoted.extend_from_slice(&[1, 0xf4, 1, 0xf4, 0, 0, 0, 0]);
    quoted.extend_from_slice(&SPI_I.to_be_bytes());
    let icmp = IcmpError {
        addrs: addrs(R, I, None),
        v6: false,
        icmp_type: 3,
        code: 3,
        mtu: None,
        quoted: &quoted,
    };
    s.t.on_icmp(2, ts(1), &icmp);
    let r = s.finish(100);
    let failure = only(&r).failure.clone().unwrap();
    assert_eq!(
        (failure.code.as_str(), failure.frame),
        ("peer-unreachable", 2)
    );
}

#[test]
fn a_negotiation_seen_mid_life_is_established_without_timing() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(SPI_R, 37, 7, FROM_I, vec![sk(40)]), "info");
    let r = s.finish(10);
    let sa = only(&r);
    assert_eq!(sa.state, IkeState::Established);
    assert_eq!(sa.established_after_s, None);
    assert_eq!(r.stats.main_modes, 0);
}

/// Main Mode (6 messages, MM2 resent once) then Quick Mode.
fn v1_main_and_quick(s: &mut Sim) {
    s.ike(0, I, R, v1(0, 2, 0, vec![]), "mm1");
    s.ike(10, R, I, v1(SPI_R, 2, 0, vec![]), "mm2");
    s.ike(1010, R, I, v1(SPI_R, 2, 0, vec![]), "mm2");
    s.ike(1020, I, R, v1(SPI_R, 2, 0, vec![]), "mm3");
    s.ike(1030, R, I, v1(SPI_R, 2, 0, vec![]), "mm4");
    s.ike(1040, I, R, v1(SPI_R, 2, 0, vec![]), "mm5");
    s.ike(1050, R, I, v1(SPI_R, 2, 0, vec![]), "mm6");
    s.ike(1060, I, R, v1(SPI_R, 32, 0x77, vec![]), "qm1");
    s.ike(1070, R, I, v1(SPI_R, 32, 0x77, vec![]), "qm2");
    s.ike(1080, I, R, v1(SPI_R, 32, 0x77, vec![]), "qm3");
}

#[test]
fn ikev1_main_and_quick_mode() {
    let mut s = Sim::new();
    v1_main_and_quick(&mut s);
    s.esp(1090, I, R, 0x1234, 1);
    let r = s.finish(1100);
    let sa = only(&r);
    assert_eq!(sa.version, 1);
    assert_eq!(sa.state, IkeState::Established);
    assert!(close(sa.established_after_s, 1.080));
    assert_eq!(sa.retransmissions, 1);
    assert_eq!(sa.exchanges.len(), 4);
    assert_eq!(sa.exchanges[0].retransmissions, 1);
    assert_eq!(sa.exchanges[3].exchange, "Quick Mode");
    assert!(close(sa.exchanges[3].rtt_s, 0.010));
    assert_eq!(sa.child_sas.len(), 1);
    assert_eq!(r.esp_sas[0].ike_sa.as_deref(), Some("1111222233334444"));
    assert_eq!((r.stats.main_modes, r.stats.quick_modes), (1, 1));
}

#[test]
fn ikev1_quick_mode_retransmission_is_not_a_new_exchange() {
    let mut s = Sim::new();
    v1_main_and_quick(&mut s);
    s.ike(1090, R, I, v1(SPI_R, 32, 0x77, vec![]), "qm2");
    let r = s.finish(1100);
    let sa = only(&r);
    assert_eq!(sa.exchanges.len(), 4);
    assert_eq!(sa.retransmissions, 2);
    assert_eq!(sa.child_sas.len(), 1);
}

#[test]
fn ikev1_aggressive_mode() {
    let mut s = Sim::new();
    s.ike(0, I, R, v1(0, 4, 0, vec![]), "am1");
    s.ike(100, R, I, v1(SPI_R, 4, 0, vec![]), "am2");
    s.ike(107, I, R, v1(SPI_R, 4, 0, vec![]), "am3");
    s.ike(110, I, R, v1(SPI_R, 32, 5, vec![]), "qm1");
    s.ike(115, R, I, v1(SPI_R, 32, 5, vec![]), "qm2");
    s.ike(119, I, R, v1(SPI_R, 32, 5, vec![]), "qm3");
    let r = s.finish(200);
    let sa = only(&r);
    assert_eq!(sa.state, IkeState::Established);
    assert!(close(sa.established_after_s, 0.119));
    assert_eq!(sa.exchanges.len(), 2);
}

#[test]
fn ikev1_error_notify_is_undone_by_later_progress() {
    let mut s = Sim::new();
    s.ike(0, I, R, v1(0, 2, 0, vec![]), "mm1");
    s.ike(10, R, I, v1(SPI_R, 2, 0, vec![]), "mm2");
    s.ike(20, I, R, v1(0, 5, 0, vec![notify(14)]), "info-npc");
    assert_eq!(s.t.report().ike_sas[0].state, IkeState::Failed);
    s.ike(30, I, R, v1(SPI_R, 2, 0, vec![]), "mm3");
    let r = s.t.report();
    assert_eq!(only(&r).state, IkeState::Negotiating);
    assert_eq!(only(&r).failure, None);
}

#[test]
fn ikev1_no_proposal_chosen_answering_mm1_fails() {
    let mut s = Sim::new();
    s.ike(0, I, R, v1(0, 2, 0, vec![]), "mm1");
    s.ike(10, R, I, v1(0, 5, 0, vec![notify(14)]), "npc");
    let r = s.finish(100);
    assert_eq!(
        only(&r).failure.as_ref().unwrap().code,
        "no-proposal-chosen"
    );
}

#[test]
fn ikev1_informational_after_mm5_means_the_keys_differ() {
    let mut s = Sim::new();
    for (t, from_i, tag) in [
        (0, true, "mm1"),
        (5, false, "mm2"),
        (10, true, "mm3"),
        (15, false, "mm4"),
        (20, true, "mm5"),
    ] {
        let (a, b) = if from_i { (I, R) } else { (R, I) };
        s.ike(
            t,
            a,
            b,
            v1(if t == 0 { 0 } else { SPI_R }, 2, 0, vec![]),
            tag,
        );
    }
    s.ike(25, R, I, v1(SPI_R, 5, 0x42, vec![]), "info-enc");
    let r = s.finish(5000);
    assert_eq!(only(&r).failure.as_ref().unwrap().code, "auth-failed");
}

#[test]
fn ikev1_dpd_is_an_exchange_with_a_round_trip() {
    let mut s = Sim::new();
    v1_main_and_quick(&mut s);
    s.ike(5000, I, R, v1(SPI_R, 5, 0x100, vec![notify(36136)]), "dpd");
    s.ike(
        5004,
        R,
        I,
        v1(SPI_R, 5, 0x200, vec![notify(36137)]),
        "dpd-ack",
    );
    let r = s.finish(5100);
    let ex = only(&r).exchanges.last().unwrap();
    assert_eq!(ex.exchange, "Informational");
    assert!(close(ex.rtt_s, 0.004));
}

#[test]
fn esp_without_negotiation_is_a_soft_association() {
    let mut s = Sim::new();
    for seq in [1, 2, 4, 3, 3] {
        s.esp(seq as i64, "10.0.0.1", "10.0.0.2", 0x48dac2e4, seq);
    }
    s.esp(10, "10.0.0.2", "10.0.0.1", 0xfb5128a6, 1);
    let r = s.finish(100);
    assert_eq!(r.esp_sas.len(), 2);
    let e = &r.esp_sas[0];
    assert_eq!((e.packets, e.lost, e.reordered, e.replayed), (5, 0, 1, 1));
    assert_eq!(e.ike_sa, None);
    assert_eq!(e.peer_spi.as_deref(), Some("fb5128a6"));
    assert_eq!(r.stats.soft_associations, 2);
    assert_eq!(r.stats.active_associations, 1);
    assert_eq!(r.stats.confidential_bytes_sent, 500);
}

#[test]
fn the_same_spi_towards_two_destinations_is_two_sas() {
    let mut s = Sim::new();
    s.esp(0, "10.0.0.1", "10.0.0.2", 123, 1);
    s.esp(1, "10.0.0.1", "10.0.0.3", 123, 1);
    let f = s.next();
    let ah = AhPacket {
        addrs: addrs("10.0.0.1", "10.0.0.2", None),
        next_header: 4,
        spi: 123,
        seq: 1,
        icv: &[0; 12],
        payload: &[0; 88],
    };
    s.t.on_ah(f, ts(2), &ah);
    let r = s.finish(10);
    assert_eq!((r.esp_sas.len(), r.ah_sas.len()), (2, 1));
    assert_eq!(r.ah_sas[0].bytes, 100);
    assert_eq!(r.stats.authenticated_bytes_sent, 300);
}

#[test]
fn esp_after_the_ike_sa_was_deleted_is_bad_spi() {
    let mut s = Sim::new();
    v2_up(&mut s, 0);
    s.ike(
        100,
        I,
        R,
        v2(SPI_R, 37, 2, FROM_I, vec![sk(40), delete(1, vec![])]),
        "del",
    );
    s.esp(5000, I, R, 0x7777, 1);
    s.esp(5001, I, R, 0x7777, 2);
    let r = s.finish(5100);
    assert_eq!(r.stats.bad_spi_packets, 2);
    assert_eq!(r.esp_sas[0].ike_sa, None);
}

#[test]
fn a_flood_of_random_spis_costs_fixed_memory() {
    let config = Config {
        max_esp_sas: 16,
        ..Config::default()
    };
    let mut s = Sim::with(config);
    for i in 0..1000u32 {
        s.esp(
            i64::from(i),
            "198.51.100.7",
            R,
            i.wrapping_mul(2_654_435_761),
            1,
        );
    }
    let r = s.finish(2000);
    assert_eq!(r.esp_sas.len(), 16);
    assert_eq!(r.evictions.esp_sas, 1000 - 16);
}

#[test]
fn the_ike_table_is_capped_too() {
    let config = Config {
        max_ike_sas: 4,
        ..Config::default()
    };
    let mut s = Sim::with(config);
    for i in 0..20u64 {
        let m = msg(2, i + 1, 0, 34, 0, FROM_I, vec![]);
        s.ike(i as i64, I, R, m, &format!("init-{i}"));
    }
    let r = s.t.report();
    assert_eq!(r.ike_sas.len(), 4);
    assert_eq!(r.evictions.ike_sas, 16);
}

#[test]
fn idle_sas_expire_by_packet_time() {
    let config = Config {
        idle_expiry_ns: 60_000_000_000,
        ..Config::default()
    };
    let mut s = Sim::with(config);
    v2_up(&mut s, 0);
    s.esp(50, I, R, 0xaaaa, 1);
    s.other(30_000);
    assert_eq!(s.t.report().ike_sas[0].state, IkeState::Established);
    s.other(61_000);
    let r = s.t.report();
    assert_eq!(only(&r).state, IkeState::Expired);
    assert_eq!(r.stats.active_associations, 0);
}

#[test]
fn child_traffic_keeps_a_quiet_ike_sa_alive() {
    let config = Config {
        idle_expiry_ns: 60_000_000_000,
        ..Config::default()
    };
    let mut s = Sim::with(config);
    v2_up(&mut s, 0);
    for i in 1..100 {
        s.esp(i * 1000, I, R, 0xaaaa, i as u32);
    }
    let r = s.finish(100_000);
    assert_eq!(only(&r).state, IkeState::Established);
}

#[test]
fn reports_are_repeatable() {
    let run = || {
        let mut s = Sim::new();
        v1_main_and_quick(&mut s);
        v2_up(&mut s, 2000);
        for i in 0..50u32 {
            s.esp(3000 + i64::from(i), "10.9.0.1", "10.9.0.2", 1000 + i, 1);
        }
        serde_json::to_string(&s.finish(4000)).unwrap()
    };
    assert_eq!(run(), run());
}

fn notify_data(t: u16, data: &[u8]) -> Payload {
    payload(
        PayloadBody::Notify(Notify {
            doi: None,
            protocol_id: 1,
            spi: None,
            notify_type: t,
            data: data.to_vec(),
        }),
        false,
    )
}

fn sk_first(first_payload: u8, len: usize) -> Payload {
    payload(
        PayloadBody::Encrypted {
            first_payload,
            data_len: len,
        },
        false,
    )
}

fn failure(r: &Report) -> super::report::Failure {
    only(r).failure.clone().expect("a failure")
}

#[test]
fn a_redirect_ends_the_sa_and_names_the_new_gateway() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    // RFC 5685 §9.1: GW Ident Type 1 (IPv4), length 4, 192.0.2.9, then the nonce data.
    let data = [1, 4, 192, 0, 2, 9, 0xaa, 0xbb];
    s.ike(
        9,
        R,
        I,
        v2(0, 34, 0, RESP, vec![notify_data(16407, &data)]),
        "redirect",
    );
    let r = s.finish(60_000);
    let sa = only(&r);
    assert_eq!((sa.state, sa.failure.clone()), (IkeState::Deleted, None));
    assert_eq!(
        sa.exchanges[0].details,
        vec!["responder redirected the initiator to 192.0.2.9 (RFC 5685)"]
    );
    assert_eq!(r.stats.pending_key_operations, 0);
}

#[test]
fn a_redirect_to_an_fqdn_is_named_and_unprintable_bytes_are_masked() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    let mut data = vec![3, 8];
    data.extend_from_slice(b"gw.ex\x01mp");
    s.ike(
        9,
        R,
        I,
        v2(0, 34, 0, RESP, vec![notify_data(16407, &data)]),
        "redirect",
    );
    let r = s.finish(100);
    assert_eq!(
        only(&r).exchanges[0].details,
        vec!["responder redirected the initiator to gw.ex?mp (RFC 5685)"]
    );
}

#[test]
fn a_notify_alone_in_a_short_auth_response_is_a_surer_auth_failure() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike(10, R, I, v2(SPI_R, 34, 0, RESP, vec![]), "init-resp");
    s.ike(
        20,
        I,
        R,
        v2(SPI_R, 35, 1, FROM_I, vec![sk(300)]),
        "auth-req",
    );
    let f = s.ike(
        30,
        R,
        I,
        v2(SPI_R, 35, 1, RESP, vec![sk_first(41, 48)]),
        "auth-resp",
    );
    let r = s.finish(40);
    let fail = failure(&r);
    assert_eq!(
        (fail.code.as_str(), fail.frame, fail.confidence),
        ("auth-failed", f, 0.8)
    );
    assert_eq!(
        only(&r).exchanges[1].details,
        vec!["response holds a Notify alone (48 bytes of SK data, too few for IDr and AUTH)"]
    );
}

#[test]
fn silence_on_4500_after_answers_on_500_names_the_filtered_port() {
    let mut s = Sim::new();
    let (i, r) = ((I, R), (R, I));
    s.ike_ports(0, i, (500, 500), v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike_ports(
        10,
        r,
        (500, 500),
        v2(SPI_R, 34, 0, RESP, vec![]),
        "init-resp",
    );
    let mut last = 0;
    for t in [20, 1020, 3020, 7020] {
        last = s.ike_ports(
            t,
            i,
            (4500, 4500),
            v2(SPI_R, 35, 1, FROM_I, vec![sk(300)]),
            "auth",
        );
    }
    let rep = s.finish(22_000);
    let fail = failure(&rep);
    assert_eq!(
        (fail.code.as_str(), fail.frame, fail.confidence),
        ("peer-unreachable", last, 0.9)
    );
    assert_eq!(
        fail.reason.as_deref(),
        Some(
            "the peer answered on UDP 500 but nothing sent to UDP 4500 was answered \
             (IKE_AUTH sent 4 times): UDP 4500 is most likely filtered on the path"
        )
    );
    assert_eq!(only(&rep).exchanges[1].dst_port, 4500);
}

/// MM1 to MM5 of IKEv1 Main Mode; MM5 sent `mm5_sends` times to `mm5_port`.
fn v1_up_to_mm5(s: &mut Sim, mm5_port: u16, mm5_sends: i64) -> u64 {
    let (i, r) = ((I, R), (R, I));
    s.ike_ports(0, i, (500, 500), v1(0, 2, 0, vec![]), "mm1");
    s.ike_ports(5, r, (500, 500), v1(SPI_R, 2, 0, vec![]), "mm2");
    s.ike_ports(10, i, (500, 500), v1(SPI_R, 2, 0, vec![]), "mm3");
    s.ike_ports(15, r, (500, 500), v1(SPI_R, 2, 0, vec![]), "mm4");
    let mut last = 0;
    for n in 0..mm5_sends {
        let ports = (mm5_port, mm5_port);
        last = s.ike_ports(20 + n * 1000, i, ports, v1(SPI_R, 2, 0, vec![]), "mm5");
    }
    last
}

#[test]
fn ikev1_mm5_met_with_silence_means_the_keys_differ() {
    let mut s = Sim::new();
    let last = v1_up_to_mm5(&mut s, 500, 3);
    let r = s.finish(2500);
    let fail = failure(&r);
    assert_eq!(
        (fail.code.as_str(), fail.frame, fail.confidence),
        ("auth-failed", last, 0.7)
    );
    assert_eq!(
        fail.reason.as_deref(),
        Some(
            "the responder answered MM1 and MM3 but not MM5 (sent 3 times): it could not \
             decrypt MM5, which happens when the preshared keys differ"
        )
    );
    assert_eq!(r.stats.authentication_failures, 1);
}

#[test]
fn ikev1_mm5_silence_on_4500_is_less_certain() {
    let mut s = Sim::new();
    v1_up_to_mm5(&mut s, 4500, 2);
    let r = s.finish(1500);
    let fail = failure(&r);
    assert_eq!((fail.code.as_str(), fail.confidence), ("auth-failed", 0.5));
    assert!(fail
        .reason
        .unwrap()
        .ends_with("MM5 went to UDP 4500 while MM1-MM4 used UDP 500, so a filter on UDP 4500 would look the same"));
}

#[test]
fn ikev1_aggressive_mode_without_am3_stalls_as_an_auth_failure() {
    let mut s = Sim::new();
    s.ike(0, I, R, v1(0, 4, 0, vec![]), "am1");
    let am2 = s.ike(100, R, I, v1(SPI_R, 4, 0, vec![]), "am2");
    s.other(11_000);
    let r = s.t.report();
    let fail = failure(&r);
    assert_eq!(
        (fail.code.as_str(), fail.frame, fail.confidence),
        ("auth-failed", am2, 0.6)
    );
}

#[test]
fn a_child_request_answered_by_a_notify_alone_adds_no_child() {
    let mut s = Sim::new();
    v2_up(&mut s, 0);
    s.ike(
        100,
        I,
        R,
        v2(SPI_R, 36, 2, FROM_I, vec![sk(220)]),
        "ccsa-req",
    );
    s.ike(
        110,
        R,
        I,
        v2(SPI_R, 36, 2, RESP, vec![sk_first(41, 44)]),
        "ccsa-resp",
    );
    let r = s.finish(200);
    let sa = only(&r);
    assert_eq!(sa.child_sas.len(), 1);
    assert_eq!(
        sa.exchanges[2].details,
        vec!["response holds a Notify alone (44 bytes of SK data): request refused"]
    );
    assert_eq!(r.stats.key_additions, 1);
}

#[test]
fn ah_transport_checksums_reach_the_nat_evidence() {
    // A TCP segment whose checksum was computed for 10.0.0.2 -> 192.0.2.2 (see natd.rs),
    // seen with the NAT's address 192.0.2.254 as source: addresses rewritten after AH.
    let seg: Vec<u8> = (0..23)
        .map(|i| {
            u8::from_str_radix(
                &"c7381a0b00000001000000005002ffff3e340000616263"[i * 2..i * 2 + 2],
                16,
            )
            .unwrap()
        })
        .collect();
    let (nat, bob) = ("192.0.2.254", "192.0.2.2");
    let mut s = Sim::new();
    s.ike(0, nat, bob, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike(10, bob, nat, v2(SPI_R, 34, 0, RESP, vec![]), "init-resp");
    s.ike(
        20,
        nat,
        bob,
        v2(SPI_R, 35, 1, FROM_I, vec![sk(300)]),
        "auth-req",
    );
    s.ike(
        30,
        bob,
        nat,
        v2(SPI_R, 35, 1, RESP, vec![sk(208)]),
        "auth-resp",
    );
    for seq in 1..=3u32 {
        let f = s.next();
        let ah = AhPacket {
            addrs: addrs(nat, bob, None),
            next_header: 6,
            spi: 0x0bad,
            seq,
            icv: &[0; 12],
            payload: &seg,
        };
        s.t.on_ah(f, ts(40 + i64::from(seq)), &ah);
    }
    let r = s.finish(100);
    let nat = &only(&r).nat;
    let kinds: Vec<&str> = nat.evidence.iter().map(|e| e.kind.as_str()).collect();
    assert!(kinds.contains(&"checksum-mismatch"), "{kinds:?}");
    assert!(kinds.contains(&"ah-through-nat"), "{kinds:?}");
    let ah = nat
        .evidence
        .iter()
        .find(|e| e.kind == "ah-through-nat")
        .unwrap();
    assert!(ah.detail.starts_with("3 AH packet(s)"), "{}", ah.detail);
}

/// An encrypted INFORMATIONAL: the request's and the response's first inner payloads.
fn informational(s: &mut Sim, ms: i64, msgid: u32, req_first: u8, resp_first: u8) -> u64 {
    let tag = format!("info-{msgid}");
    s.ike(
        ms,
        I,
        R,
        v2(SPI_R, 37, msgid, FROM_I, vec![sk_first(req_first, 48)]),
        &format!("{tag}-req"),
    );
    s.ike(
        ms + 5,
        R,
        I,
        v2(SPI_R, 37, msgid, RESP, vec![sk_first(resp_first, 48)]),
        &format!("{tag}-resp"),
    )
}

/// Up with ESP both ways on 0xa1 (to the responder) and 0xb1 (to the initiator).
fn v2_up_with_esp(s: &mut Sim) {
    v2_up(s, 0);
    s.esp(50, I, R, 0xa1, 1);
    s.esp(51, R, I, 0xb1, 1);
}

#[test]
fn an_encrypted_child_delete_after_a_rekey_removes_the_old_child() {
    let mut s = Sim::new();
    v2_up_with_esp(&mut s);
    s.ike(
        1000,
        I,
        R,
        v2(SPI_R, 36, 2, FROM_I, vec![sk_first(41, 464)]),
        "rekey-req",
    );
    s.ike(
        1005,
        R,
        I,
        v2(SPI_R, 36, 2, RESP, vec![sk_first(33, 464)]),
        "rekey-resp",
    );
    // The Delete of the old pair comes before the new SPIs are seen (as in strongSwan).
    informational(&mut s, 1010, 3, 42, 42);
    s.esp(1020, I, R, 0xa2, 1);
    s.esp(1021, R, I, 0xb2, 1);
    let r = s.finish(2000);
    let sa = only(&r);
    let children: Vec<(Option<&str>, bool)> = sa
        .child_sas
        .iter()
        .map(|c| (c.spi_in.as_deref(), c.deleted))
        .collect();
    assert_eq!(
        children,
        [(Some("000000b1"), true), (Some("000000b2"), false)]
    );
    assert_eq!(sa.child_sas[1].rekeyed_from.as_deref(), Some("000000b1"));
    assert_eq!(
        sa.exchanges[3].details,
        vec!["Delete of a child SA (encrypted; answered with Deletes)"]
    );
    let st = &r.stats;
    assert_eq!(
        (
            st.active_associations,
            st.key_additions,
            st.key_deletions,
            st.rekeys
        ),
        (1, 2, 1, 1)
    );
    // Old SPIs seen long after the Delete are bad-SPI packets.
    s.esp(5000, I, R, 0xa1, 2);
    assert_eq!(s.t.report().stats.bad_spi_packets, 1);
}

#[test]
fn an_ike_delete_right_after_a_childless_create_child_sa_is_an_ike_rekey() {
    let mut s = Sim::new();
    v2_up_with_esp(&mut s);
    s.ike(
        1000,
        I,
        R,
        v2(SPI_R, 36, 2, FROM_I, vec![sk_first(33, 400)]),
        "ike-rekey-req",
    );
    s.ike(
        1005,
        R,
        I,
        v2(SPI_R, 36, 2, RESP, vec![sk_first(33, 400)]),
        "ike-rekey-resp",
    );
    informational(&mut s, 1010, 3, 42, 0);
    s.esp(1100, I, R, 0xa1, 2);
    let r = s.finish(2000);
    let sa = only(&r);
    assert_eq!(sa.state, IkeState::Established);
    assert_eq!(sa.child_sas.len(), 1);
    assert!(!sa.child_sas[0].deleted);
    assert_eq!(
        sa.exchanges[2].details,
        vec![
            "IKE SA rekey (inferred: no new ESP SPI followed, and the old IKE SA was deleted \
             right after; the new SA's SPIs are not in the clear)"
        ]
    );
    let st = &r.stats;
    assert_eq!((st.key_additions, st.rekeys, st.quick_modes), (1, 1, 1));
    // The new SA shows itself later: it takes over without counting the rekey twice.
    const NEW_I: u64 = 0x9999_0000_0000_0001;
    let info = msg(2, NEW_I, 0x9999_0000_0000_0002, 37, 0, FROM_I, vec![sk(48)]);
    s.ike(3000, I, R, info, "new-sa-info");
    let r = s.finish(3100);
    assert_eq!(r.ike_sas.len(), 2);
    assert_eq!(
        r.ike_sas[1].rekeyed_from.as_deref(),
        Some("1111222233334444")
    );
    assert_eq!(r.ike_sas[1].child_sas.len(), 1);
    assert_eq!((r.stats.rekeys, r.stats.key_additions), (1, 1));
}

#[test]
fn an_encrypted_ike_delete_answered_by_an_empty_response_ends_the_sa() {
    let mut s = Sim::new();
    v2_up_with_esp(&mut s);
    let f = informational(&mut s, 9000, 2, 42, 0);
    let r = s.finish(9100);
    let sa = only(&r);
    assert_eq!((sa.state, sa.last_frame), (IkeState::Deleted, f));
    assert!(sa.child_sas.iter().all(|c| c.deleted));
    assert_eq!(
        sa.exchanges[2].details,
        vec!["Delete of the IKE SA (encrypted; answered with an empty INFORMATIONAL)"]
    );
    assert_eq!((r.stats.active_associations, r.stats.key_deletions), (0, 1));
    // A liveness check (empty request, empty response) deletes nothing.
    let mut s = Sim::new();
    v2_up_with_esp(&mut s);
    informational(&mut s, 9000, 2, 0, 0);
    assert_eq!(only(&s.finish(9100)).state, IkeState::Established);
}

#[test]
fn random_spis_between_fully_observed_peers_are_bad_spi_packets() {
    let config = Config {
        max_esp_sas: 64,
        ..Config::default()
    };
    let mut s = Sim::with(config);
    v2_up_with_esp(&mut s);
    for i in 0..500u32 {
        s.esp(
            100 + i64::from(i),
            I,
            R,
            0x1000_0000 | i.wrapping_mul(2_654_435_761),
            1,
        );
    }
    let r = s.finish(1000);
    let sa = only(&r);
    // The one negotiated child keeps its SPIs; nothing else was linked or counted.
    assert_eq!(sa.child_sas.len(), 1);
    let st = &r.stats;
    assert_eq!(
        (st.bad_spi_packets, st.rekeys, st.key_additions),
        (500, 0, 1)
    );
    assert_eq!(
        (r.esp_sas.len() as u64, r.evictions.esp_sas),
        (64, 500 + 2 - 64)
    );
    assert_eq!(st.active_associations, 1);
}

#[test]
fn ikev1_quick_mode_answered_by_an_encrypted_informational_is_a_refusal() {
    let mut s = Sim::new();
    for (t, from_i, tag) in [
        (0, true, "mm1"),
        (5, false, "mm2"),
        (10, true, "mm3"),
        (15, false, "mm4"),
        (20, true, "mm5"),
        (25, false, "mm6"),
    ] {
        let (a, b) = if from_i { (I, R) } else { (R, I) };
        s.ike(
            t,
            a,
            b,
            v1(if t == 0 { 0 } else { SPI_R }, 2, 0, vec![]),
            tag,
        );
    }
    let mut qm1 = v1(SPI_R, 32, 0x51, vec![]);
    qm1.header.flags = 1;
    s.ike(30, I, R, qm1.clone(), "qm1");
    let mut info = v1(SPI_R, 5, 0x77, vec![]);
    info.header.flags = 1;
    let refusal = s.ike(35, R, I, info, "info-npc");
    s.ike(1030, I, R, qm1, "qm1");
    let r = s.finish(2000);
    let sa = only(&r);
    let fail = sa.failure.clone().unwrap();
    assert_eq!(
        (fail.code.as_str(), fail.frame, fail.confidence),
        ("negotiation-stalled", refusal, 0.6)
    );
    assert_eq!(
        sa.exchanges[3].details,
        vec!["answered by an encrypted Informational instead of QM2 (a refusal)"]
    );
    assert_eq!(sa.exchanges[3].retransmissions, 1);
}

#[test]
fn an_auth_response_without_room_for_a_child_is_a_refused_child() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike(10, R, I, v2(SPI_R, 34, 0, RESP, vec![]), "init-resp");
    let req = "r".repeat(244);
    s.ike(
        20,
        I,
        R,
        v2(SPI_R, 35, 1, FROM_I, vec![sk_first(35, 212)]),
        &req,
    );
    let resp = s.ike(
        30,
        R,
        I,
        v2(SPI_R, 35, 1, RESP, vec![sk_first(36, 92)]),
        "auth-resp",
    );
    // The CREATE_CHILD_SA for the second filter is refused too, then the Delete.
    s.ike(
        40,
        I,
        R,
        v2(SPI_R, 36, 2, FROM_I, vec![sk_first(33, 292)]),
        "ccsa-req",
    );
    s.ike(
        45,
        R,
        I,
        v2(SPI_R, 36, 2, RESP, vec![sk_first(41, 36)]),
        "ccsa-resp",
    );
    informational(&mut s, 6000, 3, 42, 0);
    let r = s.finish(6100);
    let sa = only(&r);
    assert_eq!(sa.state, IkeState::Deleted);
    assert!(sa.child_sas.is_empty());
    let fail = sa.failure.clone().unwrap();
    assert_eq!(
        (fail.code.as_str(), fail.frame, fail.confidence),
        ("negotiation-stalled", resp, 0.6)
    );
    assert_eq!(
        sa.exchanges[1].details,
        vec![
            "response holds IDr and AUTH but no room for a child SA (92 bytes of SK data): the \
             child SA was refused"
        ]
    );
    let codes: Vec<&str> = sa.child_failures.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(codes, ["negotiation-stalled"]);
    assert_eq!(r.stats.key_additions, 0);
}

#[test]
fn esp_after_a_childless_looking_auth_response_proves_the_child() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike(10, R, I, v2(SPI_R, 34, 0, RESP, vec![]), "init-resp");
    let req = "r".repeat(244);
    s.ike(
        20,
        I,
        R,
        v2(SPI_R, 35, 1, FROM_I, vec![sk_first(35, 212)]),
        &req,
    );
    s.ike(
        30,
        R,
        I,
        v2(SPI_R, 35, 1, RESP, vec![sk_first(36, 100)]),
        "auth-resp",
    );
    s.esp(40, I, R, 0xc1, 1);
    let r = s.finish(100);
    let sa = only(&r);
    assert_eq!(
        (sa.state, sa.failure.clone()),
        (IkeState::Established, None)
    );
    assert!(close(sa.established_after_s, 0.030));
    assert_eq!(sa.child_sas[0].spi_out.as_deref(), Some("000000c1"));
}

#[test]
fn a_cleartext_or_decrypted_child_error_is_an_exact_child_failure() {
    let mut s = Sim::new();
    v2_up(&mut s, 0);
    s.ike(
        100,
        I,
        R,
        v2(SPI_R, 36, 2, FROM_I, vec![sk(220)]),
        "ccsa-req",
    );
    let f = s.ike(
        110,
        R,
        I,
        v2(SPI_R, 36, 2, RESP, vec![sk(44), notify_spi(14, None, true)]),
        "ccsa-resp",
    );
    let r = s.finish(200);
    let sa = only(&r);
    assert_eq!(sa.state, IkeState::Established);
    let got: Vec<(&str, Option<u16>, u64, f64)> = sa
        .child_failures
        .iter()
        .map(|c| (c.code.as_str(), c.notify_type, c.frame, c.confidence))
        .collect();
    assert_eq!(got, [("no-proposal-chosen", Some(14), f, 1.0)]);
}

#[test]
fn with_two_filters_a_rekey_is_matched_to_the_child_whose_traffic_it_takes_over() {
    let mut s = Sim::new();
    v2_up(&mut s, 0);
    // The second filter's child (SA first inside SK: a new child, not a rekey).
    s.ike(
        50,
        I,
        R,
        v2(SPI_R, 36, 2, FROM_I, vec![sk_first(33, 292)]),
        "ccsa-new-req",
    );
    s.ike(
        55,
        R,
        I,
        v2(SPI_R, 36, 2, RESP, vec![sk_first(33, 292)]),
        "ccsa-new-resp",
    );
    for (t, spi_to_r, spi_to_i) in [
        (100, 0xa1, 0xb1),
        (101, 0xa2, 0xb2),
        (2000, 0xa1, 0xb1),
        (2001, 0xa2, 0xb2),
    ] {
        let seq = if t < 1000 { 1 } else { 2 };
        s.esp(t, I, R, spi_to_r, seq);
        s.esp(t, R, I, spi_to_i, seq);
    }
    // Rekey of the first child (a Notify, REKEY_SA, first), its Delete, then its new
    // SPIs take over while the second child goes on.
    s.ike(
        3000,
        I,
        R,
        v2(SPI_R, 36, 3, FROM_I, vec![sk_first(41, 308)]),
        "rekey-req",
    );
    s.ike(
        3001,
        R,
        I,
        v2(SPI_R, 36, 3, RESP, vec![sk_first(33, 292)]),
        "rekey-resp",
    );
    informational(&mut s, 3002, 4, 42, 42);
    for t in [4000, 5000] {
        s.esp(t, I, R, 0xa3, (t / 1000) as u32);
        s.esp(t, R, I, 0xb3, (t / 1000) as u32);
        s.esp(t, I, R, 0xa2, (t / 1000) as u32);
    }
    let r = s.finish(6000);
    let sa = only(&r);
    let children: Vec<(Option<&str>, Option<&str>, bool)> = sa
        .child_sas
        .iter()
        .map(|c| (c.spi_in.as_deref(), c.rekeyed_from.as_deref(), c.deleted))
        .collect();
    assert_eq!(
        children,
        [
            (Some("000000b1"), None, true),
            (Some("000000b2"), None, false),
            (Some("000000b3"), Some("000000b1"), false),
        ]
    );
    let st = &r.stats;
    assert_eq!(
        (
            st.active_associations,
            st.key_additions,
            st.key_deletions,
            st.rekeys
        ),
        (2, 3, 1, 1)
    );
}

/// A TCP SYN whose checksum is right for 10.0.0.2 -> 192.0.2.2 (not for 192.0.2.1).
const TCP_SEGMENT: [u8; 23] = [
    0xc7, 0x38, 0x1a, 0x0b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xff, 0xff,
    0x3e, 0x34, 0x00, 0x00, 0x61, 0x62, 0x63,
];

/// An IKEv2 SA whose decrypted IKE_AUTH named child SPIs 0xc1 (to I) and 0xd1 (to R).
fn v2_with_decrypted_child(s: &mut Sim) {
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike(10, R, I, v2(SPI_R, 34, 0, RESP, vec![]), "init-resp");
    let req = v2(SPI_R, 35, 1, FROM_I, vec![sk(300), sa_spi(3, 0xc1, 4)]);
    s.ike(20, I, R, req, "auth-req");
    let resp = v2(SPI_R, 35, 1, RESP, vec![sk(208), sa_spi(3, 0xd1, 4)]);
    s.ike(30, R, I, resp, "auth-resp");
}

#[test]
fn decrypted_transport_esp_gives_inner_checksum_evidence() {
    use crate::decrypt::{DecryptError, EspPlain};
    let mut s = Sim::new();
    v2_with_decrypted_child(&mut s);
    let f = s.esp(40, I, R, 0xd1, 1);
    let esp = EspPacket {
        addrs: addrs(I, R, None),
        encap: Encap::None,
        spi: 0xd1,
        seq: 1,
        payload: &[0; 100],
    };
    let plain = EspPlain {
        next_header: 6,
        inner: &TCP_SEGMENT,
        verified: true,
    };
    s.t.on_esp_decrypt(f, &esp, Ok(&plain));
    let f2 = s.esp(41, I, R, 0xd1, 2);
    s.t.on_esp_decrypt(f2, &esp, Err(DecryptError::IcvMismatch));
    let r = s.finish(50);
    let kinds: Vec<&str> = only(&r)
        .nat
        .evidence
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert!(kinds.contains(&"checksum-mismatch"), "{kinds:?}");
    let d = r.esp_sas[0].decryption.clone().unwrap();
    assert_eq!(
        (
            d.status.as_str(),
            d.decrypted,
            d.verified,
            d.not_authenticated
        ),
        ("partial", 1, 1, 1)
    );
    assert_eq!(d.first_failure.unwrap().frame, f2);
    assert_eq!(r.esp_sas[0].ike_sa_link.as_deref(), Some("decrypted"));
    assert_eq!(
        (
            r.stats.packets_not_authenticated,
            r.stats.packets_not_decrypted
        ),
        (1, 0)
    );
}

#[test]
fn ike_decryption_outcomes_are_counted_per_sa() {
    use crate::decrypt::{DecryptError, Outcome};
    let mut s = Sim::new();
    v2_with_decrypted_child(&mut s);
    let header = v2(SPI_R, 35, 1, RESP, vec![]).header;
    s.t.on_ike_decrypt(3, &header, Outcome::Failed(DecryptError::IcvMismatch));
    s.t.on_ike_decrypt(4, &header, Outcome::Failed(DecryptError::BadPlaintext));
    let r = s.finish(50);
    let d = only(&r).decryption.clone().unwrap();
    assert_eq!(
        (d.status.as_str(), d.not_authenticated, d.not_decrypted),
        ("not-authenticated", 1, 1)
    );
    assert_eq!(
        (
            r.stats.packets_not_authenticated,
            r.stats.packets_not_decrypted
        ),
        (1, 1)
    );
    let unknown = msg(2, 0x99, 0x98, 37, 0, 0, vec![]).header;
    s.t.on_ike_decrypt(5, &unknown, Outcome::Ok { verified: true });
    assert_eq!(s.t.report().ike_sas.len(), 1);
}

#[test]
fn ikev1_decrypted_payload_malformed_after_mm5_is_an_authentication_failure() {
    let mut s = Sim::new();
    for (t, from_i, tag) in [
        (0, true, "mm1"),
        (5, false, "mm2"),
        (10, true, "mm3"),
        (15, false, "mm4"),
        (20, true, "mm5"),
    ] {
        let (a, b) = if from_i { (I, R) } else { (R, I) };
        let spi_r = if t == 0 { 0 } else { SPI_R };
        s.ike(t, a, b, v1(spi_r, 2, 0, vec![]), tag);
    }
    let mut n = notify_spi(16, None, true);
    n.payload_type = 11;
    s.ike(25, R, I, v1(SPI_R, 5, 0x42, vec![n]), "info-enc");
    let r = s.finish(5000);
    let f = only(&r).failure.clone().unwrap();
    assert_eq!(
        (f.code.as_str(), f.notify_type, f.frame),
        ("auth-failed", Some(16), 6)
    );
}

#[test]
fn ikev2_decrypted_authentication_failed_in_an_informational_fails_the_sa() {
    let mut s = Sim::new();
    v2_up(&mut s, 0);
    let info = v2(
        SPI_R,
        37,
        2,
        FROM_I,
        vec![sk(40), notify_spi(24, None, true)],
    );
    let f = s.ike(100, I, R, info, "info-auth-failed");
    let r = s.finish(200);
    let failure = only(&r).failure.clone().unwrap();
    assert_eq!(
        (failure.code.as_str(), failure.notify_type, failure.frame),
        ("auth-failed", Some(24), f)
    );
    assert_eq!(only(&r).state, IkeState::Failed);
    assert_eq!(r.stats.active_associations, 0);
}

fn ident(ptype: u8, value: &str) -> Payload {
    let mut p = payload(
        PayloadBody::Identification(crate::wire::ike::Identification {
            id_type: 2,
            protocol: 0,
            port: 0,
            value: value.to_string(),
        }),
        true,
    );
    p.payload_type = ptype;
    p
}

fn selector(ptype: u8, first: &str, last: &str) -> Payload {
    let mut p = payload(
        PayloadBody::TrafficSelectors(vec![crate::wire::ike::TrafficSelector {
            ts_type: 7,
            ip_protocol: 0,
            start_port: 0,
            end_port: 65535,
            start_addr: ip(first),
            end_addr: ip(last),
        }]),
        true,
    );
    p.payload_type = ptype;
    p
}

#[test]
fn decrypted_identities_and_selectors_are_reported() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike(10, R, I, v2(SPI_R, 34, 0, RESP, vec![]), "init-resp");
    let req = vec![
        sk(300),
        ident(35, "alice@example.org"),
        ident(36, "asked-for"),
        sa_spi(3, 0xc1, 4),
        selector(44, "198.51.100.0", "198.51.100.255"),
        selector(45, "0.0.0.0", "255.255.255.255"),
    ];
    s.ike(20, I, R, v2(SPI_R, 35, 1, FROM_I, req), "auth-req");
    let resp = vec![
        sk(208),
        ident(36, "bob@example.org"),
        sa_spi(3, 0xd1, 4),
        selector(44, "198.51.100.0", "198.51.100.255"),
        selector(45, "203.0.113.0", "203.0.113.255"),
    ];
    s.ike(30, R, I, v2(SPI_R, 35, 1, RESP, resp), "auth-resp");
    let r = s.finish(40);
    let sa = only(&r);
    assert_eq!(sa.id_i.as_deref(), Some("alice@example.org"));
    assert_eq!(sa.id_r.as_deref(), Some("bob@example.org"));
    let c = &sa.child_sas[0];
    assert_eq!(
        (c.ts_i.clone(), c.ts_r.clone()),
        (
            vec!["198.51.100.0/24".to_string()],
            vec!["203.0.113.0/24".to_string()]
        )
    );
}

#[test]
fn esp_during_a_negotiation_that_made_no_child_yet_is_not_linked() {
    let mut s = Sim::new();
    s.ike(0, I, R, v2(0, 34, 0, FROM_I, vec![]), "init-req");
    s.ike(10, R, I, v2(SPI_R, 34, 0, RESP, vec![]), "init-resp");
    for i in 0..20u32 {
        s.esp(20 + i64::from(i), I, R, 0x7000 + i, 1);
    }
    let r = s.t.report();
    let sa = only(&r);
    assert!(sa.child_sas.is_empty());
    assert!(r.esp_sas.iter().all(|e| e.ike_sa.is_none()));
    assert_eq!((r.stats.key_additions, r.stats.rekeys), (0, 0));
}
