use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::wire::testpkt::*;

fn a4() -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(A4))
}

fn reason(r: Result<Packet<'_>, DecodeError>) -> Reason {
    r.expect_err("expected an error").reason
}

#[test]
fn ipv4_header_fields() {
    let p = ipv4(proto::UDP, &udp(500, 500, &[1, 2]));
    let h = parse_header(Network::AnyIp, &p, 14).unwrap();
    assert_eq!(h.src, a4());
    assert_eq!(h.dst, IpAddr::V4(Ipv4Addr::from(B4)));
    assert_eq!(
        (h.protocol, h.payload_offset, h.payload.len()),
        (17, 34, 10)
    );
    assert!(h.complete && h.fragment.is_none());
}

#[test]
fn ipv4_options_are_skipped() {
    let mut p = ipv4(proto::ESP, &esp(9, 1));
    p[0] = 0x46;
    p.splice(20..20, [1, 1, 1, 0]);
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    let h = parse_header(Network::Ipv4, &p, 0).unwrap();
    assert_eq!(h.payload_offset, 24);
    assert_eq!(&h.payload[..4], &[0, 0, 0, 9]);
}

#[test]
fn ipv4_bad_lengths() {
    let good = ipv4(proto::ESP, &esp(9, 1));
    for n in 0..20 {
        let e = parse_header(Network::Ipv4, &good[..n], 0).unwrap_err();
        assert_eq!(e.reason, Reason::Truncated, "length {n}");
    }
    let mut ihl4 = good.clone();
    ihl4[0] = 0x44;
    assert_eq!(
        parse_header(Network::Ipv4, &ihl4, 0).unwrap_err().reason,
        Reason::BadIpHeader
    );
    let mut ihl15 = good.clone();
    ihl15[0] = 0x4f;
    let e = parse_header(Network::Ipv4, &ihl15[..40], 0).unwrap_err();
    assert_eq!(e, DecodeError::new(Reason::Truncated, 40));
    let mut short_total = good.clone();
    short_total[2..4].copy_from_slice(&19u16.to_be_bytes());
    let e = parse_header(Network::Ipv4, &short_total, 0).unwrap_err();
    assert_eq!(e, DecodeError::new(Reason::BadIpHeader, 2));
}

#[test]
fn ipv4_trusts_the_smaller_length() {
    let mut p = ipv4(proto::ESP, &esp(9, 1));
    let captured = p.len();
    // Ethernet padding after the packet is cut off.
    p.extend_from_slice(&[0; 6]);
    let h = parse_header(Network::Ipv4, &p, 0).unwrap();
    assert_eq!(h.payload.len(), captured - 20);
    assert!(h.complete);
    // A snaplen cut leaves what was captured and says so.
    let h = parse_header(Network::Ipv4, &p[..30], 0).unwrap();
    assert_eq!(h.payload.len(), 10);
    assert!(!h.complete);
    // Total length zero (segmentation offload) means "the rest".
    p[2..4].copy_from_slice(&[0, 0]);
    assert_eq!(
        parse_header(Network::Ipv4, &p, 0).unwrap().payload.len(),
        p.len() - 20
    );
}

#[test]
fn ip_version_must_match_the_link() {
    let v4 = ipv4(proto::ESP, &esp(9, 1));
    let v6 = ipv6(proto::ESP, &esp(9, 1));
    assert_eq!(
        parse_header(Network::Ipv6, &v4, 0).unwrap_err().reason,
        Reason::BadIpVersion
    );
    assert_eq!(
        parse_header(Network::Ipv4, &v6, 0).unwrap_err().reason,
        Reason::BadIpVersion
    );
    assert_eq!(reason(decode_ip(&[0x55; 40])), Reason::BadIpVersion);
    assert_eq!(reason(decode_ip(&[])), Reason::Truncated);
}

#[test]
fn ipv4_fragment_fields() {
    let p = ipv4_frag(proto::UDP, 77, 1480, true, &[0; 8]);
    let h = parse_header(Network::Ipv4, &p, 0).unwrap();
    let f = h.fragment.unwrap();
    assert_eq!((f.id, f.offset, f.more), (77, 1480, true));
    let last = ipv4_frag(proto::UDP, 77, 8, false, &[0; 8]);
    assert!(
        !parse_header(Network::Ipv4, &last, 0)
            .unwrap()
            .fragment
            .unwrap()
            .more
    );
    assert!(matches!(decode_ip(&p), Ok(Packet::Fragment)));
}

#[test]
fn ipv6_plain() {
    let p = ipv6(proto::ESP, &esp(0x42, 5));
    let Ok(Packet::Esp(e)) = decode_ip(&p) else {
        panic!("not ESP");
    };
    assert_eq!((e.spi, e.seq, e.encap), (0x42, 5, Encap::None));
    assert_eq!(e.addrs.src, IpAddr::V6(Ipv6Addr::from(A6)));
    for n in 0..40 {
        assert_eq!(reason(decode_ip(&p[..n])), Reason::Truncated);
    }
}

/// Hop-by-hop (8 bytes), routing (24 bytes), destination options (16 bytes), then UDP.
fn ext_chain(last_next: u8) -> Vec<u8> {
    let mut b = vec![proto::ROUTING, 0, 1, 4, 0, 0, 0, 0];
    b.extend_from_slice(&[proto::DEST_OPTS, 2, 0, 1, 0, 0, 0, 0]);
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(&[last_next, 1, 1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    b
}

#[test]
fn ipv6_extension_headers_are_walked() {
    let mut body = ext_chain(proto::UDP);
    body.extend_from_slice(&udp(4500, 4500, &[0xff]));
    let p = ipv6(proto::HOP_BY_HOP, &body);
    let h = parse_header(Network::Ipv6, &p, 0).unwrap();
    assert_eq!((h.protocol, h.payload_offset), (proto::UDP, 40 + 48));
    assert!(matches!(decode_ip(&p), Ok(Packet::Keepalive(_))));
}

#[test]
fn ipv6_extension_header_errors() {
    let mut body = ext_chain(proto::UDP);
    body.truncate(30);
    let lying = ipv6(proto::HOP_BY_HOP, &body);
    assert_eq!(reason(decode_ip(&lying)), Reason::BadExtensionHeader);
    let full = ipv6(proto::HOP_BY_HOP, &ext_chain(proto::UDP));
    let cut = &full[..40 + 30];
    assert_eq!(reason(decode_ip(cut)), Reason::Truncated);
    // A loop of destination options longer than the walk allows.
    let mut looped = Vec::new();
    for _ in 0..=MAX_EXTENSION_HEADERS {
        looped.extend_from_slice(&[proto::DEST_OPTS, 0, 1, 4, 0, 0, 0, 0]);
    }
    let p = ipv6(proto::DEST_OPTS, &looped);
    let e = decode_ip(&p).unwrap_err();
    assert_eq!(e.reason, Reason::BadExtensionHeader);
}

#[test]
fn ipv6_no_next_header_and_unknown_are_other() {
    assert!(matches!(decode_ip(&ipv6(59, &[])), Ok(Packet::Other)));
    assert!(matches!(decode_ip(&ipv6(6, &[0; 20])), Ok(Packet::Other)));
}

#[test]
fn ipv6_fragment_header() {
    let mut body = frag6(proto::UDP, 0xdead_beef, 1232, true);
    body.extend_from_slice(&[0; 16]);
    let p = ipv6(proto::FRAGMENT, &body);
    let h = parse_header(Network::Ipv6, &p, 0).unwrap();
    let f = h.fragment.unwrap();
    assert_eq!((f.id, f.offset, f.more), (0xdead_beef, 1232, true));
    assert_eq!(
        (h.protocol, h.payload.len(), h.payload_offset),
        (17, 16, 48)
    );
    // An atomic fragment (RFC 6946) is walked through.
    let mut atomic = frag6(proto::UDP, 1, 0, false);
    atomic.extend_from_slice(&udp(500, 500, &ike_header()));
    let p = ipv6(proto::FRAGMENT, &atomic);
    assert!(matches!(decode_ip(&p), Ok(Packet::Ike(_))));
}

#[test]
fn udp_500_is_ike_without_marker() {
    for (s, d) in [(500, 500), (500, 4500), (1234, 500), (500, 60000)] {
        let p = ipv4(proto::UDP, &udp(s, d, &ike_header()));
        let Ok(Packet::Ike(ike)) = decode_ip(&p) else {
            panic!("{s}->{d} not IKE");
        };
        assert_eq!(ike.encap, Encap::None);
        assert_eq!(ike.message, &ike_header()[..]);
        assert_eq!(ike.addrs.ports, Some((s, d)));
    }
}

#[test]
fn udp_4500_split() {
    let keep = ipv4(proto::UDP, &udp(4500, 4500, &[0xff]));
    assert!(matches!(decode_ip(&keep), Ok(Packet::Keepalive(a)) if a.ports == Some((4500, 4500))));

    let mut marked = vec![0, 0, 0, 0];
    marked.extend_from_slice(&ike_header());
    let p = ipv4(proto::UDP, &udp(61000, 4500, &marked));
    let Ok(Packet::Ike(ike)) = decode_ip(&p) else {
        panic!("not IKE");
    };
    assert_eq!((ike.encap, ike.message), (Encap::Udp, &ike_header()[..]));

    let p = ipv4(proto::UDP, &udp(4500, 61000, &esp(0xc0ffee, 9)));
    let Ok(Packet::Esp(e)) = decode_ip(&p) else {
        panic!("not ESP");
    };
    assert_eq!(
        (e.spi, e.seq, e.encap, e.payload.len()),
        (0xc0ffee, 9, Encap::Udp, 16)
    );
    assert_eq!(e.addrs.ports, Some((4500, 61000)));
}

#[test]
fn udp_4500_never_guesses_ike() {
    // An IKE header without the marker is read as ESP (its first 8 bytes as SPI and seq).
    let p = ipv4(proto::UDP, &udp(4500, 4500, &ike_header()));
    assert!(matches!(decode_ip(&p), Ok(Packet::Esp(e)) if e.spi == 0x01020304));
    // Too short for ESP, not a keepalive.
    for body in [
        &[][..],
        &[0xfe],
        &[1, 2, 3],
        &[1, 2, 3, 4, 5, 6, 7],
        &[0xff, 0xff],
    ] {
        let p = ipv4(proto::UDP, &udp(4500, 4500, body));
        assert_eq!(reason(decode_ip(&p)), Reason::BadIpsecHeader, "{body:?}");
    }
    // The marker with nothing behind it is an (empty) IKE message for the IKE parser.
    let p = ipv4(proto::UDP, &udp(4500, 4500, &[0; 4]));
    assert!(matches!(decode_ip(&p), Ok(Packet::Ike(i)) if i.message.is_empty()));
}

#[test]
fn other_udp_and_protocols() {
    let p = ipv4(proto::UDP, &udp(53, 53, &[0; 12]));
    assert!(matches!(decode_ip(&p), Ok(Packet::Other)));
    let p = ipv4(proto::TCP, &[0; 20]);
    assert!(matches!(decode_ip(&p), Ok(Packet::Other)));
}

#[test]
fn udp_bad_lengths() {
    let good = udp(500, 500, &ike_header());
    for n in 0..8 {
        let p = ipv4(proto::UDP, &good[..n]);
        assert_eq!(reason(decode_ip(&p)), Reason::BadUdpLength, "length {n}");
    }
    let mut short = good.clone();
    short[4..6].copy_from_slice(&7u16.to_be_bytes());
    assert_eq!(
        reason(decode_ip(&ipv4(proto::UDP, &short))),
        Reason::BadUdpLength
    );
    let mut long = good.clone();
    long[4..6].copy_from_slice(&100u16.to_be_bytes());
    assert_eq!(
        reason(decode_ip(&ipv4(proto::UDP, &long))),
        Reason::BadUdpLength
    );
    // UDP shorter than the IP payload: trailing bytes are not part of the message.
    let mut padded = good.clone();
    padded.extend_from_slice(&[0xee; 4]);
    let p = ipv4(proto::UDP, &padded);
    let Ok(Packet::Ike(ike)) = decode_ip(&p) else {
        panic!("not IKE");
    };
    assert_eq!(ike.message.len(), 28);
    // A snaplen cut inside the UDP header or body is reported as such, not as a bad length.
    let p = ipv4(proto::UDP, &good);
    assert_eq!(reason(decode_ip(&p[..24])), Reason::Truncated);
    assert!(matches!(decode_ip(&p[..40]), Ok(Packet::Ike(i)) if i.message.len() == 12));
}

#[test]
fn esp_and_ah_over_ip() {
    let p = ipv4(proto::ESP, &esp(0x1000, 1));
    assert!(
        matches!(decode_ip(&p), Ok(Packet::Esp(e)) if e.spi == 0x1000 && e.addrs.ports.is_none())
    );
    assert_eq!(
        reason(decode_ip(&ipv4(proto::ESP, &[0; 12]))),
        Reason::BadIpsecHeader
    );
    let mut ah = vec![proto::UDP, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2];
    ah.extend_from_slice(&[7; 12]);
    ah.extend_from_slice(&udp(500, 500, &ike_header()));
    let p = ipv6(proto::AH, &ah);
    let Ok(Packet::Ah(a)) = decode_ip(&p) else {
        panic!("not AH");
    };
    assert_eq!((a.next_header, a.spi, a.seq, a.icv.len()), (17, 256, 2, 12));
    let inner = inner_transport(a.next_header, a.payload).unwrap();
    assert_eq!(inner.ports, Some((500, 500)));
    assert_eq!(
        reason(decode_ip(&ipv6(proto::AH, &ah[..20]))),
        Reason::BadIpsecHeader
    );
    let full = ipv6(proto::AH, &ah);
    assert_eq!(reason(decode_ip(&full[..60])), Reason::Truncated);
}

/// An ICMPv4 error header: type, code, checksum, then the 4-byte rest-of-header.
fn icmp4(icmp_type: u8, code: u8, rest: [u8; 4], quoted: &[u8]) -> Vec<u8> {
    let mut m = vec![icmp_type, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(quoted);
    m
}

/// The first 28 bytes of an IKE packet on 500, as RFC 792 routers quote it.
fn quoted_ike() -> Vec<u8> {
    let q = ipv4(proto::UDP, &udp(500, 500, &ike_header()));
    q[..28].to_vec()
}

#[test]
fn icmp_frag_needed_quoting_ike() {
    let p = ipv4(proto::ICMP, &icmp4(3, 4, [0, 0, 0x05, 0x78], &quoted_ike()));
    let Ok(Packet::Icmp(i)) = decode_ip(&p) else {
        panic!("not ICMP");
    };
    assert_eq!(
        (i.v6, i.icmp_type, i.code, i.mtu),
        (false, 3, 4, Some(1400))
    );
    assert_eq!(i.quoted, &quoted_ike()[..]);
    // The quote decodes leniently to an IKE datagram with no message bytes.
    let Ok(Packet::Ike(ike)) = decode_quoted(i.quoted) else {
        panic!("quoted not IKE");
    };
    assert!(ike.message.is_empty());
    assert_eq!(ike.addrs.ports, Some((500, 500)));
}

#[test]
fn icmp_types_and_mtu() {
    for (t, c, want_mtu) in [
        (3, 1, None),
        (3, 4, Some(1400)),
        (11, 0, None),
        (12, 0, None),
    ] {
        let p = ipv4(proto::ICMP, &icmp4(t, c, [0, 0, 0x05, 0x78], &quoted_ike()));
        assert!(
            matches!(decode_ip(&p), Ok(Packet::Icmp(i)) if i.mtu == want_mtu),
            "{t}/{c}"
        );
    }
    // Frag needed from a pre-RFC 1191 router: no MTU.
    let p = ipv4(proto::ICMP, &icmp4(3, 4, [0; 4], &quoted_ike()));
    assert!(matches!(decode_ip(&p), Ok(Packet::Icmp(i)) if i.mtu.is_none()));
    // Echo, and errors cut before their quote, are not errors about IPsec.
    let p = ipv4(proto::ICMP, &icmp4(8, 0, [0; 4], &quoted_ike()));
    assert!(matches!(decode_ip(&p), Ok(Packet::Other)));
    let p = ipv4(proto::ICMP, &[3, 4, 0, 0, 0]);
    assert!(matches!(decode_ip(&p), Ok(Packet::Other)));
}

#[test]
fn icmp_quoting_esp_and_ah() {
    let q = ipv4(proto::ESP, &esp(0x77, 3));
    let p = ipv4(proto::ICMP, &icmp4(11, 0, [0; 4], &q[..28]));
    let Ok(Packet::Icmp(i)) = decode_ip(&p) else {
        panic!("not ICMP");
    };
    assert!(matches!(decode_quoted(i.quoted), Ok(Packet::Esp(e)) if e.spi == 0x77 && e.seq == 3));
    let q = ipv4(proto::AH, &[6, 4, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1, 9, 9]);
    let p = ipv4(proto::ICMP, &icmp4(3, 1, [0; 4], &q));
    let Ok(Packet::Icmp(i)) = decode_ip(&p) else {
        panic!("not ICMP");
    };
    let Ok(Packet::Ah(ah)) = decode_quoted(i.quoted) else {
        panic!("quoted not AH");
    };
    assert_eq!((ah.spi, ah.icv), (5, &[9, 9][..]));
}

#[test]
fn icmp_quoting_other_traffic_is_other() {
    let q = ipv4(proto::UDP, &udp(53, 53, &[0; 8]));
    let p = ipv4(proto::ICMP, &icmp4(3, 3, [0; 4], &q));
    assert!(matches!(decode_ip(&p), Ok(Packet::Other)));
    let p = ipv4(proto::ICMP, &icmp4(3, 3, [0; 4], &[0x45, 0, 0]));
    assert!(matches!(decode_ip(&p), Ok(Packet::Other)));
    // A quoted non-first fragment shows no transport header.
    let q = ipv4_frag(proto::UDP, 1, 1480, false, &udp(500, 500, &[]));
    let p = ipv4(proto::ICMP, &icmp4(11, 1, [0; 4], &q));
    assert!(matches!(decode_ip(&p), Ok(Packet::Other)));
    assert!(matches!(decode_quoted(&q), Ok(Packet::Fragment)));
}

#[test]
fn icmp_quote_on_4500() {
    let mut marked = vec![0, 0, 0, 0];
    marked.extend_from_slice(&ike_header());
    let q = ipv4(proto::UDP, &udp(4500, 4500, &marked));
    let p = ipv4(proto::ICMP, &icmp4(3, 4, [0, 0, 5, 0xdc], &q[..36]));
    let Ok(Packet::Icmp(i)) = decode_ip(&p) else {
        panic!("not ICMP");
    };
    assert!(matches!(decode_quoted(i.quoted), Ok(Packet::Ike(k)) if k.encap == Encap::Udp));
    // Cut right after the UDP header: still an error about IPsec, but the quote is too
    // short to tell IKE from ESP.
    let p = ipv4(proto::ICMP, &icmp4(3, 4, [0, 0, 5, 0xdc], &q[..28]));
    let Ok(Packet::Icmp(i)) = decode_ip(&p) else {
        panic!("not ICMP");
    };
    assert_eq!(
        decode_quoted(i.quoted).unwrap_err().reason,
        Reason::Truncated
    );
}

/// An ICMPv6 error: type, code, checksum, 4-byte field, quote.
fn icmp6(icmp_type: u8, code: u8, field: u32, quoted: &[u8]) -> Vec<u8> {
    let mut m = vec![icmp_type, code, 0, 0];
    m.extend_from_slice(&field.to_be_bytes());
    m.extend_from_slice(quoted);
    m
}

#[test]
fn icmpv6_errors() {
    let q = ipv6(proto::ESP, &esp(0xabc, 1));
    let p = ipv6(proto::ICMPV6, &icmp6(2, 0, 1280, &q));
    let Ok(Packet::Icmp(i)) = decode_ip(&p) else {
        panic!("not ICMPv6");
    };
    assert_eq!((i.v6, i.icmp_type, i.mtu), (true, 2, Some(1280)));
    assert!(matches!(decode_quoted(i.quoted), Ok(Packet::Esp(e)) if e.spi == 0xabc));
    for t in [1, 3, 4] {
        let p = ipv6(proto::ICMPV6, &icmp6(t, 0, 0, &q));
        assert!(
            matches!(decode_ip(&p), Ok(Packet::Icmp(i)) if i.mtu.is_none()),
            "type {t}"
        );
    }
    // Echo request (128) and an ICMPv4 type in ICMPv6 are not errors.
    assert!(matches!(
        decode_ip(&ipv6(proto::ICMPV6, &icmp6(128, 0, 0, &q))),
        Ok(Packet::Other)
    ));
    assert!(matches!(
        decode_ip(&ipv6(proto::ICMP, &icmp6(3, 0, 0, &q))),
        Ok(Packet::Other)
    ));
}

#[test]
fn inner_transport_headers() {
    let tcp = [
        0x1f, 0x90, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0, 0, 0xbe, 0xef,
    ];
    let t = inner_transport(proto::TCP, &tcp).unwrap();
    assert_eq!(
        (t.protocol, t.ports, t.checksum),
        (6, Some((8080, 80)), 0xbeef)
    );
    assert_eq!(inner_transport(proto::TCP, &tcp[..17]), None);
    let u = inner_transport(proto::UDP, &[0, 53, 0, 54, 0, 8, 0x12, 0x34]).unwrap();
    assert_eq!((u.ports, u.checksum), (Some((53, 54)), 0x1234));
    let i = inner_transport(proto::ICMPV6, &[128, 0, 0xab, 0xcd]).unwrap();
    assert_eq!((i.ports, i.checksum), (None, 0xabcd));
    assert_eq!(inner_transport(4, &[0x45; 40]), None);
}

/// Hand-computed: 192.0.2.1 -> 192.0.2.2, UDP 500 -> 500, length 12, data 01 02 03 04.
/// Word sum:
/// c000+0201+c000+0202+0011+000c (pseudo) + 01f4+01f4+000c+0000+0102+0304 = 0x18c1a,
/// folded 0x8c1b, complement 0x73e4.
#[test]
fn checksum_ipv4_vector() {
    let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let dst = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    let mut seg = udp(500, 500, &[1, 2, 3, 4]);
    assert_eq!(transport_checksum(src, dst, proto::UDP, &seg), 0x73e4);
    seg[6..8].copy_from_slice(&0x73e4u16.to_be_bytes());
    assert_eq!(transport_checksum(src, dst, proto::UDP, &seg), 0);
    // Odd length: data 01 02 03 pads to 0300; length 11 on both sides -> 0x73ea.
    let seg = udp(500, 500, &[1, 2, 3]);
    assert_eq!(transport_checksum(src, dst, proto::UDP, &seg), 0x73ea);
}

/// Hand-computed: 2001:db8::1 -> 2001:db8::2, same UDP segment. Word sum:
/// 2dba (src) + 2dbb (dst) + 000c (length) + 0011 + 01f4+01f4+000c+0102+0304 = 0x638c,
/// complement 0x9c73.
#[test]
fn checksum_ipv6_vector() {
    let src = IpAddr::V6(Ipv6Addr::from(A6));
    let dst = IpAddr::V6(Ipv6Addr::from(B6));
    let mut seg = udp(500, 500, &[1, 2, 3, 4]);
    assert_eq!(transport_checksum(src, dst, proto::UDP, &seg), 0x9c73);
    seg[6..8].copy_from_slice(&0x9c73u16.to_be_bytes());
    assert_eq!(transport_checksum(src, dst, proto::UDP, &seg), 0);
}
