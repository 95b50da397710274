//! Message-level tests: byte arrays built payload by payload, and the two raw IKEv2
//! messages of the external corpus when it is present.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use super::*;

/// Builds a message: header fields, then payloads as (type, body) chained in order.
fn message(major: u8, exchange: u8, flags: u8, payloads: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes());
    out.push(payloads.first().map_or(0, |p| p.0));
    out.push(major << 4);
    out.push(exchange);
    out.push(flags);
    out.extend_from_slice(&7u32.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    for (i, (_, body)) in payloads.iter().enumerate() {
        out.push(payloads.get(i + 1).map_or(0, |p| p.0));
        out.push(0);
        out.extend_from_slice(&(body.len() as u16 + 4).to_be_bytes());
        out.extend_from_slice(body);
    }
    let len = out.len() as u32;
    out[24..28].copy_from_slice(&len.to_be_bytes());
    out
}

fn parse(bytes: &[u8]) -> IkeMessage {
    parse_message(bytes, ParseContext::default()).expect("header decodes")
}

/// One IKEv2 transform substructure.
fn transform_v2(last: bool, ttype: u8, id: u16, attrs: &[u8]) -> Vec<u8> {
    let mut t = vec![if last { 0 } else { 3 }, 0];
    t.extend_from_slice(&(8 + attrs.len() as u16).to_be_bytes());
    t.extend_from_slice(&[ttype, 0]);
    t.extend_from_slice(&id.to_be_bytes());
    t.extend_from_slice(attrs);
    t
}

/// One proposal substructure around `transforms`.
fn proposal(last: bool, protocol: u8, spi: &[u8], ntrans: u8, transforms: &[u8]) -> Vec<u8> {
    let mut p = vec![if last { 0 } else { 2 }, 0];
    p.extend_from_slice(&(8 + spi.len() as u16 + transforms.len() as u16).to_be_bytes());
    p.extend_from_slice(&[1, protocol, spi.len() as u8, ntrans]);
    p.extend_from_slice(spi);
    p.extend_from_slice(transforms);
    p
}

#[test]
fn header_fields_and_flags() {
    let m = parse(&message(2, 34, 0x08, &[]));
    assert_eq!(m.header.spi_i, 0x1122_3344_5566_7788);
    assert_eq!((m.header.major, m.header.exchange_type), (2, 34));
    assert_eq!(m.header.message_id, 7);
    assert!(m.header.is_initiator() && !m.header.is_response());
    assert!(m.payloads.is_empty() && m.error.is_none());
}

#[test]
fn header_checks() {
    let short = [0u8; 27];
    assert_eq!(
        parse_message(&short, ParseContext::default())
            .unwrap_err()
            .reason,
        Reason::Truncated
    );
    let mut bad_version = message(2, 34, 0, &[]);
    bad_version[17] = 0x30;
    let e = parse_message(&bad_version, ParseContext::default()).unwrap_err();
    assert_eq!((e.reason, e.offset), (Reason::BadIkeVersion, 17));
    let mut too_long = message(2, 34, 0, &[]);
    too_long[27] = 29;
    let e = parse_message(&too_long, ParseContext::default()).unwrap_err();
    assert_eq!(e.reason, Reason::BadIkeLength);
    let mut too_short = message(2, 34, 0, &[]);
    too_short[27] = 20;
    assert_eq!(
        parse_message(&too_short, ParseContext::default())
            .unwrap_err()
            .reason,
        Reason::BadIkeLength
    );
}

#[test]
fn trailing_bytes_after_the_announced_length_are_ignored() {
    let mut bytes = message(2, 37, 0x20, &[(41, vec![0, 0, 0x40, 0x00])]);
    bytes.extend_from_slice(&[0xde, 0xad]);
    let m = parse(&bytes);
    assert_eq!(m.payloads.len(), 1);
    assert!(m.error.is_none());
}

#[test]
fn ikev2_sa_with_proposals_and_transforms() {
    let mut ts = transform_v2(false, 1, 12, &[0x80, 0x0e, 0x00, 0x80]);
    ts.extend(transform_v2(false, 3, 2, &[]));
    ts.extend(transform_v2(false, 2, 2, &[]));
    ts.extend(transform_v2(true, 4, 14, &[]));
    let mut sa = proposal(false, 1, &[], 4, &ts);
    sa.extend(proposal(
        true,
        3,
        &[0xc0, 0xff, 0xee, 0x01],
        1,
        &transform_v2(true, 1, 20, &[]),
    ));
    let m = parse(&message(2, 34, 0x08, &[(33, sa)]));
    assert!(m.error.is_none(), "{:?}", m.error);
    let PayloadBody::Sa { proposals, doi, .. } = &m.payloads[0].body else {
        panic!("not an SA: {:?}", m.payloads[0]);
    };
    assert_eq!(*doi, None);
    assert_eq!(proposals.len(), 2);
    assert_eq!(proposals[0].transforms.len(), 4);
    assert_eq!(proposals[0].transforms[0].attributes[0].value, Some(128));
    assert_eq!(proposals[0].transforms[3].transform_type, 4);
    assert_eq!(proposals[0].transforms[3].transform_id, 14);
    assert_eq!((proposals[1].spi, proposals[1].spi_size), (0xc0ff_ee01, 4));
}

#[test]
fn proposal_spi_beyond_its_length_is_malformed() {
    let mut bad = proposal(true, 3, &[], 0, &[]);
    bad[6] = 200; // SPI size
    let m = parse(&message(2, 34, 0, &[(33, bad)]));
    assert_eq!(m.error.unwrap().reason, Reason::MalformedPayload);
    assert!(matches!(m.payloads[0].body, PayloadBody::Opaque { .. }));
}

#[test]
fn transform_length_loop_is_refused() {
    let mut t = transform_v2(true, 1, 12, &[]);
    t[3] = 2; // length 2 < 8
    let m = parse(&message(2, 34, 0, &[(33, proposal(true, 1, &[], 1, &t))]));
    assert_eq!(m.error.unwrap().reason, Reason::BadPayloadLength);
}

#[test]
fn ke_nonce_and_the_chain_order() {
    let ke = [&[0u8, 19, 0, 0][..], &[0xaa; 64]].concat();
    let m = parse(&message(2, 34, 0x08, &[(40, vec![1; 32]), (34, ke)]));
    assert_eq!(m.payloads[0].body, PayloadBody::Nonce { data_len: 32 });
    assert_eq!(
        m.payloads[1].body,
        PayloadBody::KeyExchange {
            group: Some(19),
            data_len: 64
        }
    );
}

#[test]
fn ikev2_notify_with_spi_and_data() {
    let n = [
        &[3u8, 4, 0x40, 0x09][..],
        &[0xde, 0xad, 0xbe, 0xef],
        &[9, 9],
    ]
    .concat();
    let m = parse(&message(
        2,
        36,
        0x08,
        &[(41, n), (41, vec![0, 0, 0, 17, 0, 14])],
    ));
    let PayloadBody::Notify(rekey) = &m.payloads[0].body else {
        panic!()
    };
    assert_eq!(rekey.doi, None);
    assert_eq!(
        (rekey.protocol_id, rekey.spi, rekey.notify_type),
        (3, Some(0xdead_beef), 16393)
    );
    assert_eq!(rekey.data, vec![9, 9]);
    let PayloadBody::Notify(invalid_ke) = &m.payloads[1].body else {
        panic!()
    };
    assert_eq!(
        (invalid_ke.notify_type, invalid_ke.data.as_slice()),
        (17, &[0, 14][..])
    );
}

#[test]
fn ikev1_notify_carries_a_doi_first() {
    // DOI 1, protocol 1, SPI size 16 (cookies), type 24578 INITIAL-CONTACT.
    let body = [&[0u8, 0, 0, 1, 1, 16, 0x60, 0x02][..], &[0x11; 16]].concat();
    let m = parse(&message(1, 5, 0, &[(11, body.clone())]));
    let PayloadBody::Notify(n) = &m.payloads[0].body else {
        panic!()
    };
    assert_eq!(
        (n.doi, n.notify_type, n.spi),
        (Some(1), 24578, Some(0x1111_1111_1111_1111))
    );
    // The same bytes read as IKEv2 take the DOI for the protocol and type fields.
    let v2 = parse(&message(2, 37, 0, &[(41, body)]));
    let PayloadBody::Notify(wrong) = &v2.payloads[0].body else {
        panic!()
    };
    assert_eq!(wrong.notify_type, 1);
}

#[test]
fn notify_data_is_capped() {
    let body = [&[0u8, 0, 0x40, 0x06][..], &[7; 1000]].concat();
    let m = parse(&message(2, 34, 0, &[(41, body)]));
    let PayloadBody::Notify(n) = &m.payloads[0].body else {
        panic!()
    };
    assert_eq!(n.data.len(), payload::MAX_COPY);
}

#[test]
fn delete_v1_and_v2() {
    let v1 = [&[0u8, 0, 0, 1, 3, 4, 0, 2][..], &[0, 0, 0, 1, 0, 0, 0, 2]].concat();
    let m = parse(&message(1, 5, 0, &[(12, v1)]));
    let PayloadBody::Delete(d) = &m.payloads[0].body else {
        panic!()
    };
    assert_eq!(
        (d.doi, d.protocol_id, d.spis.clone()),
        (Some(1), 3, vec![1, 2])
    );
    let m = parse(&message(2, 37, 0, &[(42, vec![1, 0, 0, 0])]));
    let PayloadBody::Delete(d) = &m.payloads[0].body else {
        panic!()
    };
    assert_eq!((d.doi, d.protocol_id, d.spis.len()), (None, 1, 0));
}

#[test]
fn identities_v1_and_v2() {
    let v1 = vec![4, 17, 1, 244, 10, 0, 0, 0, 255, 255, 0, 0];
    let m = parse(&message(1, 32, 0, &[(5, v1)]));
    let PayloadBody::Identification(id) = &m.payloads[0].body else {
        panic!()
    };
    assert_eq!(
        (id.id_type, id.protocol, id.port, id.value.as_str()),
        (4, 17, 500, "10.0.0.0/16")
    );
    let v2 = [&[2u8, 0, 0, 0][..], b"gw.example.org"].concat();
    let m = parse(&message(2, 35, 0, &[(36, v2)]));
    let PayloadBody::Identification(id) = &m.payloads[0].body else {
        panic!()
    };
    assert_eq!((id.id_type, id.value.as_str()), (2, "gw.example.org"));
}

#[test]
fn traffic_selectors() {
    let mut ts = vec![2, 0, 0, 0];
    ts.extend_from_slice(&[7, 6, 0, 16, 0, 0, 255, 255, 10, 0, 0, 0, 10, 0, 0, 255]);
    ts.extend_from_slice(&[10, 0, 0, 8, 1, 2, 3, 4]); // security label: skipped
    let m = parse(&message(2, 35, 0, &[(44, ts)]));
    let PayloadBody::TrafficSelectors(v) = &m.payloads[0].body else {
        panic!()
    };
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].start_addr, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)));
    assert_eq!((v[0].ip_protocol, v[0].end_port), (6, 65535));
    let bad = vec![1, 0, 0, 0, 7, 0, 0, 40, 0, 0];
    assert_eq!(
        parse(&message(2, 35, 0, &[(44, bad)]))
            .error
            .unwrap()
            .reason,
        Reason::BadPayloadLength
    );
}

#[test]
fn sk_ends_the_chain_and_keeps_the_inner_type() {
    let mut bytes = message(2, 35, 0x08, &[(46, vec![0; 48])]);
    bytes[28] = 35; // SK's next payload: IDi, inside the ciphertext
    let m = parse(&bytes);
    assert_eq!(m.payloads.len(), 1);
    assert_eq!(
        m.payloads[0].body,
        PayloadBody::Encrypted {
            first_payload: 35,
            data_len: 48
        }
    );
    assert!(m.error.is_none());
}

#[test]
fn skf_fragment_numbers() {
    let body = [&[0u8, 2, 0, 3][..], &[0; 20]].concat();
    let m = parse(&message(2, 35, 0x08, &[(53, body)]));
    assert_eq!(
        m.payloads[0].body,
        PayloadBody::EncryptedFragment {
            number: 2,
            total: 3,
            first_payload: 0,
            data_len: 20
        }
    );
}

#[test]
fn cp_and_eap() {
    let cp = vec![1, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 4, 8, 8, 8, 8];
    let eap = vec![1, 7, 0, 5, 1];
    let m = parse(&message(2, 35, 0, &[(47, cp), (48, eap)]));
    let PayloadBody::Configuration {
        cfg_type,
        attributes,
    } = &m.payloads[0].body
    else {
        panic!()
    };
    assert_eq!((*cfg_type, attributes.len()), (1, 2));
    assert_eq!(
        (attributes[1].attr_type, attributes[1].value),
        (3, Some(0x0808_0808))
    );
    assert_eq!(
        m.payloads[1].body,
        PayloadBody::Eap {
            code: 1,
            eap_type: Some(1)
        }
    );
}

#[test]
fn ikev1_encrypted_message_has_no_payloads() {
    let m = parse(&message(1, 2, 0x01, &[(8, vec![0; 20])]));
    assert!(m.header.is_encrypted_v1());
    assert!(m.payloads.is_empty() && m.error.is_none());
}

/// An IKEv1 SA: DOI, situation, one ISAKMP proposal with one transform.
fn ikev1_sa(attrs: &[u8]) -> Vec<u8> {
    let mut t = vec![0, 0];
    t.extend_from_slice(&(8 + attrs.len() as u16).to_be_bytes());
    t.extend_from_slice(&[1, 1, 0, 0]);
    t.extend_from_slice(attrs);
    [
        &[0u8, 0, 0, 1, 0, 0, 0, 1][..],
        &proposal(true, 1, &[], 1, &t),
    ]
    .concat()
}

#[test]
fn ikev1_sa_with_oakley_attributes() {
    let attrs = [
        0x80, 0x01, 0x00, 0x07, 0x80, 0x0e, 0x00, 0x80, 0x80, 0x02, 0x00, 0x02, 0x80, 0x03, 0xfd,
        0xe9, 0x80, 0x04, 0x00, 0x02, 0x80, 0x0b, 0x00, 0x01, 0x00, 0x0c, 0x00, 0x04, 0x00, 0x01,
        0x51, 0x80,
    ];
    let m = parse(&message(
        1,
        2,
        0,
        &[
            (1, ikev1_sa(&attrs)),
            (13, vec![0x09, 0, 0x26, 0x89, 0xdf, 0xd6, 0xb7, 0x12]),
        ],
    ));
    assert!(m.error.is_none(), "{:?}", m.error);
    let PayloadBody::Sa {
        doi,
        situation,
        proposals,
    } = &m.payloads[0].body
    else {
        panic!()
    };
    assert_eq!((*doi, *situation), (Some(1), Some(1)));
    let t = &proposals[0].transforms[0];
    assert_eq!((t.number, t.transform_id, t.transform_type), (1, 1, 0));
    let values: Vec<_> = t
        .attributes
        .iter()
        .map(|a| (a.attr_type, a.value))
        .collect();
    assert_eq!(values[3], (3, Some(65001)));
    assert_eq!(values[6], (12, Some(86400)));
    assert_eq!(
        m.payloads[1].body,
        PayloadBody::VendorId {
            id: vec![0x09, 0, 0x26, 0x89, 0xdf, 0xd6, 0xb7, 0x12],
            name: Some("XAUTH")
        }
    );
}

#[test]
fn nat_d_numberings() {
    let hash = vec![0xab; 20];
    let m = parse(&message(
        1,
        2,
        0,
        &[(20, hash.clone()), (130, hash.clone()), (15, hash.clone())],
    ));
    assert_eq!(
        m.payloads[0].body,
        PayloadBody::NatDiscovery { hash: hash.clone() }
    );
    assert_eq!(
        m.payloads[1].body,
        PayloadBody::NatDiscovery { hash: hash.clone() }
    );
    assert_eq!(m.payloads[2].body, PayloadBody::Opaque { data_len: 20 });
    let bytes = message(
        1,
        2,
        0,
        &[(15, hash.clone()), (16, vec![1, 0, 0, 0, 192, 0, 2, 7])],
    );
    let draft = parse_message(&bytes, ParseContext { draft_natd: true }).unwrap();
    assert_eq!(draft.payloads[0].body, PayloadBody::NatDiscovery { hash });
    let addr = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    assert_eq!(
        draft.payloads[1].body,
        PayloadBody::NatOriginalAddress { addr }
    );
}

#[test]
fn modecfg_attr_payload() {
    let body = vec![1, 0, 0, 5, 0x40, 0x88, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];
    let m = parse(&message(1, 6, 0, &[(14, body)]));
    let PayloadBody::Configuration {
        cfg_type,
        attributes,
    } = &m.payloads[0].body
    else {
        panic!()
    };
    assert_eq!(
        (*cfg_type, attributes[0].attr_type, attributes[0].value),
        (1, 16520, None)
    );
    assert_eq!(attributes[1].attr_type, 1);
}

#[test]
fn zero_length_payload_stops_the_walk() {
    let mut bytes = message(2, 34, 0, &[(40, vec![1; 8]), (41, vec![0, 0, 0x40, 0])]);
    bytes[28 + 12 + 2..28 + 12 + 4].copy_from_slice(&[0, 0]);
    let m = parse(&bytes);
    assert_eq!(m.payloads.len(), 1);
    assert_eq!(
        m.error,
        Some(DecodeError::new(Reason::BadPayloadLength, 42))
    );
}

#[test]
fn payload_past_the_message_and_missing_headers() {
    let mut bytes = message(2, 34, 0, &[(40, vec![1; 8])]);
    bytes[31] = 200;
    assert_eq!(
        parse(&bytes).error.unwrap().reason,
        Reason::BadPayloadLength
    );
    let mut dangling = message(2, 34, 0, &[(40, vec![1; 8])]);
    dangling[28] = 41; // announces a payload that is not there
    assert_eq!(
        parse(&dangling).error,
        Some(DecodeError::new(Reason::Truncated, 40))
    );
}

#[test]
fn payload_count_is_bounded() {
    let many: Vec<(u8, Vec<u8>)> = (0..MAX_PAYLOADS + 5).map(|_| (43, vec![])).collect();
    let m = parse(&message(2, 34, 0, &many));
    assert_eq!(m.payloads.len(), MAX_PAYLOADS);
    assert_eq!(m.error.unwrap().reason, Reason::TooManyItems);
}

#[test]
fn unknown_payload_types_are_opaque_and_keep_walking() {
    let m = parse(&message(
        2,
        34,
        0,
        &[(200, vec![1, 2, 3]), (40, vec![0; 16])],
    ));
    assert_eq!(m.payloads[0].body, PayloadBody::Opaque { data_len: 3 });
    assert_eq!(m.payloads[1].payload_type, 40);
}

#[test]
fn every_truncation_of_a_full_message_is_safe() {
    let mut ts = transform_v2(false, 1, 12, &[0x80, 0x0e, 0x00, 0x80]);
    ts.extend(transform_v2(true, 4, 14, &[]));
    let bytes = message(
        2,
        34,
        0x08,
        &[
            (33, proposal(true, 1, &[], 2, &ts)),
            (34, vec![0, 14, 0, 0, 1, 2]),
            (41, vec![0, 0, 0x40, 4, 1]),
        ],
    );
    for cut in 0..bytes.len() {
        let mut b = bytes[..cut].to_vec();
        if b.len() >= 28 {
            b[24..28].copy_from_slice(&(cut as u32).to_be_bytes());
        }
        let _ = parse_message(&b, ParseContext::default());
    }
}

/// The external corpus directory, when present.
fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/external");
    dir.is_dir().then_some(dir)
}

#[test]
fn ipsec_parser_sa_init_request() {
    let Some(dir) = corpus() else {
        println!("skipped: ../shared/corpus/external is absent");
        return;
    };
    let bytes = std::fs::read(dir.join("ipsec-parser/assets/ike-sa-init-req.bin")).unwrap();
    let m = parse(&bytes);
    assert_eq!(m.header.spi_i, 0x54c1_8496_1bc3_fd77);
    assert_eq!(
        (m.header.spi_r, m.header.exchange_type, m.header.flags),
        (0, 34, 0x08)
    );
    assert_eq!((m.header.message_id, m.header.length), (0, 256));
    let types: Vec<u8> = m.payloads.iter().map(|p| p.payload_type).collect();
    assert_eq!(types, vec![33, 34, 40]);
    let PayloadBody::Sa { proposals, .. } = &m.payloads[0].body else {
        panic!()
    };
    let ids: Vec<(u8, u16)> = proposals
        .iter()
        .flat_map(|p| &p.transforms)
        .map(|t| (t.transform_type, t.transform_id))
        .collect();
    for want in [(1, 12), (1, 3), (3, 2), (2, 2), (4, 2)] {
        assert!(ids.contains(&want), "{want:?} missing from {ids:?}");
    }
    assert!(matches!(
        m.payloads[1].body,
        PayloadBody::KeyExchange { group: Some(2), .. }
    ));
}

#[test]
fn ipsec_parser_sa_init_response() {
    let Some(dir) = corpus() else {
        println!("skipped: ../shared/corpus/external is absent");
        return;
    };
    let bytes = std::fs::read(dir.join("ipsec-parser/assets/ike-sa-init-resp.bin")).unwrap();
    let m = parse(&bytes);
    assert_eq!(m.header.spi_r, 0x6386_aa22_73ed_3972);
    assert_eq!(m.header.length, 281);
    assert!(m.header.is_response());
    let types: Vec<u8> = m.payloads.iter().map(|p| p.payload_type).collect();
    assert_eq!(types, vec![33, 34, 40, 38, 41]);
    assert_eq!(m.notify_types().collect::<Vec<_>>(), vec![16392]);
    assert!(m.error.is_none());
}
