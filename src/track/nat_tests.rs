//! Verdict tests for [`super::NatObservations`]: synthetic IKE messages whose NAT-D hashes
//! are computed for the addresses each peer believes it uses, seen at a capture point
//! inside or outside a NAT.

use std::net::{IpAddr, SocketAddr};

use super::*;
use crate::track::natd::natd_hash;
use crate::wire::ike::{Attribute, IkeHeader, Notify, Payload, Proposal, Transform};

const SPI_I: u64 = 0x1111_2222_3333_4444;
const SPI_R: u64 = 0x5555_6666_7777_8888;

fn ep(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addrs(src: &str, dst: &str) -> Addrs {
    let (s, d) = (ep(src), ep(dst));
    Addrs {
        src: s.ip(),
        dst: d.ip(),
        ports: Some((s.port(), d.port())),
    }
}

fn header(major: u8, exchange_type: u8, spi_r: u64, flags: u8) -> IkeHeader {
    IkeHeader {
        spi_i: SPI_I,
        spi_r,
        next_payload: 0,
        major,
        minor: 0,
        exchange_type,
        flags,
        message_id: 0,
        length: 0,
    }
}

fn payload(payload_type: u8, body: PayloadBody) -> Payload {
    Payload {
        payload_type,
        critical: false,
        body,
        decrypted: false,
    }
}

fn notify(notify_type: u16, data: Vec<u8>) -> Payload {
    payload(
        41,
        PayloadBody::Notify(Notify {
            doi: None,
            protocol_id: 0,
            spi: None,
            notify_type,
            data,
        }),
    )
}

/// An IKE_SA_INIT message whose hashes describe `own` (source) and `peer` (destination),
/// the addresses its sender believes in.
fn v2_init(from_initiator: bool, own: &str, peer: &str) -> IkeMessage {
    let spi_r = if from_initiator { 0 } else { SPI_R };
    let flags = if from_initiator { 0x08 } else { 0x20 };
    let h = |e: &str| {
        natd_hash(NatdHash::Sha1, SPI_I, spi_r, ep(e))
            .as_slice()
            .to_vec()
    };
    IkeMessage {
        header: header(2, 34, spi_r, flags),
        payloads: vec![notify(16388, h(own)), notify(16389, h(peer))],
        error: None,
    }
}

fn v2_plain(from_initiator: bool) -> IkeMessage {
    let flags = if from_initiator { 0x08 } else { 0x20 };
    IkeMessage {
        header: header(2, 35, SPI_R, flags),
        payloads: Vec::new(),
        error: None,
    }
}

/// Feeds an IKEv2 exchange: the INIT pair with the given beliefs and observed addresses,
/// then an IKE_AUTH pair on 4500 from `i4500` (as observed) to `r4500`.
struct V2Run<'a> {
    i_believes: (&'a str, &'a str),
    r_believes: (&'a str, &'a str),
    seen_i: &'a str,
    seen_r: &'a str,
    i4500: Option<(&'a str, &'a str)>,
}

fn run_v2(r: &V2Run) -> NatObservations {
    let mut nat = NatObservations::default();
    let init = v2_init(true, r.i_believes.0, r.i_believes.1);
    nat.on_message(1, &addrs(r.seen_i, r.seen_r), Encap::None, true, &init);
    let resp = v2_init(false, r.r_believes.0, r.r_believes.1);
    nat.on_message(2, &addrs(r.seen_r, r.seen_i), Encap::None, false, &resp);
    if let Some((i, rr)) = r.i4500 {
        nat.on_message(3, &addrs(i, rr), Encap::Udp, true, &v2_plain(true));
        nat.on_message(4, &addrs(rr, i), Encap::Udp, false, &v2_plain(false));
    }
    nat
}

fn kinds(report: &NatReport) -> Vec<&str> {
    report.evidence.iter().map(|e| e.kind.as_str()).collect()
}

#[test]
fn v2_no_nat_all_hashes_match() {
    let nat = run_v2(&V2Run {
        i_believes: ("192.0.2.1:500", "192.0.2.2:500"),
        r_believes: ("192.0.2.2:500", "192.0.2.1:500"),
        seen_i: "192.0.2.1:500",
        seen_r: "192.0.2.2:500",
        i4500: None,
    });
    let v = nat.verdict();
    assert_eq!(v.verdict, NatVerdict::None);
    assert_eq!(kinds(&v), ["natd-match"]);
    assert_eq!(v.evidence[0].frames, [1, 2]);
}

#[test]
fn v2_initiator_behind_nat_seen_outside_rests_on_port_rewrite() {
    let nat = run_v2(&V2Run {
        i_believes: ("10.0.0.2:500", "192.0.2.2:500"),
        r_believes: ("192.0.2.2:500", "192.0.2.254:40001"),
        seen_i: "192.0.2.254:40001",
        seen_r: "192.0.2.2:500",
        i4500: Some(("192.0.2.254:40002", "192.0.2.2:4500")),
    });
    let v = nat.verdict();
    assert_eq!(v.verdict, NatVerdict::Initiator);
    assert_eq!(kinds(&v)[0], "port-rewrite");
    let src = v
        .evidence
        .iter()
        .find(|e| e.kind == "natd-source-mismatch")
        .unwrap();
    assert!(src.detail.contains("corroborated"), "{}", src.detail);
}

#[test]
fn v2_initiator_behind_nat_seen_inside_rests_on_destination_hash() {
    let nat = run_v2(&V2Run {
        i_believes: ("10.0.0.2:500", "192.0.2.2:500"),
        r_believes: ("192.0.2.2:500", "192.0.2.254:40001"),
        seen_i: "10.0.0.2:500",
        seen_r: "192.0.2.2:500",
        i4500: Some(("10.0.0.2:4500", "192.0.2.2:4500")),
    });
    let v = nat.verdict();
    assert_eq!(v.verdict, NatVerdict::Initiator);
    assert_eq!(v.evidence[0].kind, "natd-destination-mismatch");
    assert_eq!(v.evidence[0].frames, [2]);
    assert!(v.evidence[0]
        .detail
        .contains("rests on this destination hash"));
    assert!(kinds(&v).contains(&"port-float"));
    assert!(!kinds(&v).contains(&"port-rewrite"));
}

#[test]
fn v2_responder_behind_port_forward_seen_inside() {
    let nat = run_v2(&V2Run {
        i_believes: ("192.0.2.1:500", "198.51.100.9:500"),
        r_believes: ("10.1.0.2:500", "192.0.2.1:500"),
        seen_i: "192.0.2.1:500",
        seen_r: "10.1.0.2:500",
        i4500: None,
    });
    let v = nat.verdict();
    assert_eq!(v.verdict, NatVerdict::Responder);
    assert_eq!(v.evidence[0].kind, "natd-destination-mismatch");
}

#[test]
fn v2_responder_behind_nat_seen_outside_with_keepalives() {
    let mut nat = run_v2(&V2Run {
        i_believes: ("192.0.2.1:500", "198.51.100.9:500"),
        r_believes: ("10.1.0.2:500", "192.0.2.1:500"),
        seen_i: "192.0.2.1:500",
        seen_r: "198.51.100.9:500",
        i4500: None,
    });
    assert_eq!(nat.verdict().verdict, NatVerdict::None);
    nat.on_keepalive(9, false);
    let v = nat.verdict();
    assert_eq!(v.verdict, NatVerdict::Responder);
    assert_eq!(v.evidence[0].kind, "keepalive");
}

#[test]
fn v2_both_behind_nat_seen_between_them() {
    let mut nat = run_v2(&V2Run {
        i_believes: ("10.0.0.2:500", "198.51.100.9:500"),
        r_believes: ("10.1.0.2:500", "192.0.2.254:40001"),
        seen_i: "192.0.2.254:40001",
        seen_r: "198.51.100.9:500",
        i4500: None,
    });
    nat.on_keepalive(7, true);
    nat.on_keepalive(8, false);
    assert_eq!(nat.verdict().verdict, NatVerdict::Both);
}

#[test]
fn v2_forced_encapsulation_without_nat_reports_none() {
    // kernel-libipsec: both peers hash a random source; destination hashes stay honest;
    // the float lands exactly on 4500.
    let nat = run_v2(&V2Run {
        i_believes: ("203.0.113.77:1234", "192.0.2.2:500"),
        r_believes: ("203.0.113.78:999", "192.0.2.1:500"),
        seen_i: "192.0.2.1:500",
        seen_r: "192.0.2.2:500",
        i4500: Some(("192.0.2.1:4500", "192.0.2.2:4500")),
    });
    let v = nat.verdict();
    assert_eq!(v.verdict, NatVerdict::None);
    let src: Vec<_> = v
        .evidence
        .iter()
        .filter(|e| e.kind == "natd-source-mismatch")
        .collect();
    assert_eq!(src.len(), 2);
    assert!(src.iter().all(|e| e.detail.contains("not taken as NAT")));
}

#[test]
fn v2_source_mismatch_alone_is_a_weak_initiator_verdict() {
    let mut nat = NatObservations::default();
    let init = v2_init(true, "10.5.2.60:500", "10.5.2.52:500");
    nat.on_message(
        1,
        &addrs("10.5.2.60:10952", "10.5.2.52:500"),
        Encap::None,
        true,
        &init,
    );
    nat.on_message(
        2,
        &addrs("10.5.2.52:500", "10.5.2.60:10952"),
        Encap::None,
        false,
        &v2_plain(false),
    );
    let v = nat.verdict();
    assert_eq!(v.verdict, NatVerdict::Initiator);
    assert_eq!(v.evidence[0].kind, "natd-source-mismatch");
    assert!(v.evidence[0]
        .detail
        .contains("and on the initiator's source port 10952 being neither 500 nor 4500"));
    // It names the port-500 variant of the observed address the hash does match.
    assert!(
        v.evidence[0].detail.contains("10.5.2.60:500"),
        "{}",
        v.evidence[0].detail
    );
}

#[test]
fn v2_source_mismatch_alone_from_port_500_is_undecidable_not_nat() {
    // kernel-libipsec's faked source hash with no answer to check it (a responder that
    // is down): nothing says NAT, and the initiator's address is not confirmed either.
    let mut nat = NatObservations::default();
    let init = v2_init(true, "198.51.100.99:500", "192.0.2.2:500");
    nat.on_message(
        1,
        &addrs("192.0.2.1:500", "192.0.2.2:500"),
        Encap::None,
        true,
        &init,
    );
    let v = nat.verdict();
    assert_eq!(v.verdict, NatVerdict::Undecidable);
    assert_eq!(
        kinds(&v),
        ["natd-undecidable", "natd-source-mismatch", "natd-match"]
    );
    assert_eq!(
        v.evidence[0].detail,
        "no hash confirms the initiator's address: its own hash mismatches, which a peer \
         forcing UDP encapsulation fakes, and no hash from the other peer was seen to check \
         it; nothing else locates a NAT"
    );
}

#[test]
fn v2_every_hash_mismatching_is_undecidable() {
    let nat = run_v2(&V2Run {
        i_believes: ("203.0.113.1:7", "203.0.113.2:7"),
        r_believes: ("203.0.113.3:7", "203.0.113.4:7"),
        seen_i: "192.168.1.2:500",
        seen_r: "192.168.1.1:500",
        i4500: None,
    });
    let v = nat.verdict();
    assert_eq!(v.verdict, NatVerdict::Undecidable);
    assert_eq!(v.evidence[0].kind, "natd-undecidable");
    assert!(v.evidence[0].detail.contains("every NAT-D hash"));
}

#[test]
fn v2_both_destination_hashes_mismatching_is_undecidable() {
    let nat = run_v2(&V2Run {
        i_believes: ("192.0.2.1:500", "198.51.100.9:500"),
        r_believes: ("192.0.2.2:500", "203.0.113.5:500"),
        seen_i: "192.0.2.1:500",
        seen_r: "192.0.2.2:500",
        i4500: None,
    });
    let v = nat.verdict();
    assert_eq!(v.verdict, NatVerdict::Undecidable);
    assert!(v.evidence[0].detail.contains("both peers"));
}

#[test]
fn no_natd_is_undecidable_and_ike_on_4500_says_so() {
    let mut nat = NatObservations::default();
    assert_eq!(nat.verdict().verdict, NatVerdict::Undecidable);
    let a = addrs("192.168.245.131:10954", "172.16.15.92:4500");
    nat.on_message(1, &a, Encap::Udp, true, &v2_plain(true));
    nat.on_child_packet(5, Encap::Udp, false);
    let v = nat.verdict();
    assert_eq!(v.verdict, NatVerdict::Undecidable);
    assert_eq!(v.evidence[0].kind, "natd-undecidable");
    assert!(v.evidence[0].detail.contains("UDP 4500"));
    assert!(kinds(&v).contains(&"ike-on-4500"));
    assert!(kinds(&v).contains(&"udp-encapsulation"));
}

fn v1_sa_reply(hash_alg: u64) -> IkeMessage {
    let attr = |t: u16, v: u64| Attribute {
        attr_type: t,
        value: Some(v),
        raw: Vec::new(),
    };
    let transform = Transform {
        transform_type: 0,
        transform_id: 1,
        number: 1,
        attributes: vec![attr(1, 7), attr(2, hash_alg), attr(3, 1)],
    };
    let proposal = Proposal {
        number: 1,
        protocol_id: 1,
        spi: 0,
        spi_size: 0,
        transforms: vec![transform],
    };
    let sa = PayloadBody::Sa {
        doi: Some(1),
        situation: Some(1),
        proposals: vec![proposal],
    };
    IkeMessage {
        header: header(1, 2, SPI_R, 0),
        payloads: vec![payload(1, sa)],
        error: None,
    }
}

/// An IKEv1 Main Mode message with NAT-D: the peer's address first, then the own one.
fn v1_natd(alg: NatdHash, peer: &str, own: &str) -> IkeMessage {
    let h = |e: &str| PayloadBody::NatDiscovery {
        hash: natd_hash(alg, SPI_I, SPI_R, ep(e)).as_slice().to_vec(),
    };
    IkeMessage {
        header: header(1, 2, SPI_R, 0),
        payloads: vec![payload(20, h(peer)), payload(20, h(own))],
        error: None,
    }
}

#[test]
fn v1_negotiated_md5_no_nat() {
    let mut nat = NatObservations::default();
    let (i, r) = ("192.1.2.254:500", "192.1.2.23:500");
    nat.on_message(2, &addrs(r, i), Encap::None, false, &v1_sa_reply(1));
    nat.on_message(
        3,
        &addrs(i, r),
        Encap::None,
        true,
        &v1_natd(NatdHash::Md5, r, i),
    );
    nat.on_message(
        4,
        &addrs(r, i),
        Encap::None,
        false,
        &v1_natd(NatdHash::Md5, i, r),
    );
    let v = nat.verdict();
    assert_eq!(v.verdict, NatVerdict::None);
    assert!(v.evidence[0].detail.contains("MD5"));
}

#[test]
fn v1_local_hash_mismatch_with_keepalive_is_initiator() {
    let mut nat = NatObservations::default();
    let (i, r) = ("192.1.2.254:500", "192.1.2.23:500");
    nat.on_message(2, &addrs(r, i), Encap::None, false, &v1_sa_reply(1));
    let mm3 = v1_natd(NatdHash::Md5, r, "10.9.9.9:500");
    nat.on_message(3, &addrs(i, r), Encap::None, true, &mm3);
    nat.on_message(
        4,
        &addrs(r, i),
        Encap::None,
        false,
        &v1_natd(NatdHash::Md5, i, r),
    );
    assert_eq!(nat.verdict().verdict, NatVerdict::None);
    nat.on_keepalive(18, true);
    let v = nat.verdict();
    assert_eq!(v.verdict, NatVerdict::Initiator);
    assert_eq!(v.evidence[0].kind, "keepalive");
}

#[test]
fn v1_hash_from_length_when_sa_reply_missing() {
    let mut nat = NatObservations::default();
    let (i, r) = ("192.168.0.100:500", "192.168.0.1:500");
    let mm3 = v1_natd(NatdHash::Sha256, "203.0.113.1:500", i);
    nat.on_message(3, &addrs(i, r), Encap::None, true, &mm3);
    let v = nat.verdict();
    assert_eq!(v.verdict, NatVerdict::Responder);
    assert!(v.evidence[0].detail.contains("SHA2-256"));
}

fn qm_with_nat_oa(oai: &str, oar: &str) -> IkeMessage {
    let oa = |a: &str| PayloadBody::NatOriginalAddress { addr: Some(ip(a)) };
    let mut h = header(1, 32, SPI_R, 0);
    h.message_id = 77;
    IkeMessage {
        header: h,
        payloads: vec![payload(21, oa(oai)), payload(21, oa(oar))],
        error: None,
    }
}

// A TCP segment whose checksum Python computed for 10.0.0.2 -> 192.0.2.2.
const TCP_SEGMENT: [u8; 23] = [
    0xc7, 0x38, 0x1a, 0x0b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xff, 0xff,
    0x3e, 0x34, 0x00, 0x00, 0x61, 0x62, 0x63,
];

#[test]
fn ah_through_nat_with_checksum_naming_the_original_source() {
    let mut nat = NatObservations::default();
    let (i, r) = ("192.0.2.254:40001", "192.0.2.2:500");
    nat.on_message(1, &addrs(i, r), Encap::None, true, &v1_sa_reply(2));
    nat.on_message(
        5,
        &addrs(i, r),
        Encap::None,
        true,
        &qm_with_nat_oa("10.0.0.2", "192.0.2.2"),
    );
    let ah = AhPacket {
        addrs: Addrs {
            src: ip("192.0.2.254"),
            dst: ip("192.0.2.2"),
            ports: None,
        },
        next_header: 6,
        spi: 0x1234,
        seq: 1,
        icv: &[0; 12],
        payload: &TCP_SEGMENT,
    };
    nat.on_ah(9, &ah);
    let v = nat.verdict();
    assert_eq!(v.verdict, NatVerdict::Initiator);
    assert_eq!(v.evidence[0].kind, "ah-through-nat");
    let ck = v
        .evidence
        .iter()
        .find(|e| e.kind == "checksum-mismatch")
        .unwrap();
    assert!(
        ck.detail.contains("verifies with source 10.0.0.2"),
        "{}",
        ck.detail
    );
    assert!(kinds(&v).contains(&"nat-oa"));
}

#[test]
fn valid_inner_checksum_adds_no_evidence() {
    let mut nat = NatObservations::default();
    let a = Addrs {
        src: ip("10.0.0.2"),
        dst: ip("192.0.2.2"),
        ports: None,
    };
    nat.on_inner_transport(3, &a, Encap::None, 6, &TCP_SEGMENT);
    nat.on_inner_transport(
        4,
        &addrs("1.2.3.4:4500", "5.6.7.8:4500"),
        Encap::Udp,
        6,
        &TCP_SEGMENT,
    );
    assert!(!kinds(&nat.verdict()).contains(&"checksum-mismatch"));
}

#[test]
fn endpoints_in_evidence_print_as_socket_addresses() {
    for s in ["198.51.100.7:4500", "0.0.0.0:0", "[2001:db8::2]:500"] {
        let a = ep(s);
        assert_eq!(Ep::new(a.ip(), a.port()).to_string(), s);
    }
}
