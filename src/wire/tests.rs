//! Decoder tests: each link type end to end, fragments through the decoder, and a
//! deterministic robustness sweep over random and mutated frames.

use super::ip::proto;
use super::testpkt::*;
use super::*;

const T0: Timestamp = Timestamp(1_700_000_000_000_000_000);

fn ike_on_500() -> Vec<u8> {
    ipv4(proto::UDP, &udp(500, 500, &ike_header()))
}

fn decode(link: LinkType, frame: &[u8]) -> Result<Packet<'_>, DecodeError> {
    // Each call gets a fresh decoder; the packet borrows only from `frame` here.
    let mut d = Decoder::default();
    match d.decode(link, T0, frame) {
        Ok(Packet::Ike(i)) => Ok(Packet::Ike(IkeDatagram {
            message: &frame[frame.len() - i.message.len()..],
            ..i
        })),
        Ok(Packet::Esp(e)) => Ok(Packet::Esp(EspPacket {
            payload: &frame[frame.len() - e.payload.len()..],
            ..e
        })),
        Ok(Packet::Keepalive(a)) => Ok(Packet::Keepalive(a)),
        Ok(Packet::Other) => Ok(Packet::Other),
        Ok(Packet::Fragment) => Ok(Packet::Fragment),
        Ok(other) => panic!("unexpected {other:?}"),
        Err(e) => Err(e),
    }
}

#[test]
fn every_link_type_reaches_ike() {
    let ip = ike_on_500();
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
    ];
    sll2.extend_from_slice(&ip);
    let frames = [
        (LinkType::Ethernet, ethernet(0x0800, &ip)),
        (LinkType::LinuxSll, sll),
        (LinkType::LinuxSll2, sll2),
        (LinkType::Null, [&2u32.to_le_bytes()[..], &ip].concat()),
        (LinkType::Null, [&2u32.to_be_bytes()[..], &ip].concat()),
        (LinkType::Loop, [&2u32.to_be_bytes()[..], &ip].concat()),
        (LinkType::Raw, ip.clone()),
        (LinkType::Ipv4, ip.clone()),
    ];
    for (link, f) in &frames {
        let p = decode(*link, f);
        assert!(
            matches!(p, Ok(Packet::Ike(i)) if i.message.len() == 28),
            "{link:?}: {p:?}"
        );
    }
}

#[test]
fn vlan_tagged_ipv6_esp() {
    let ip = ipv6(proto::ESP, &esp(0x5151, 7));
    let mut tagged = vec![0x81, 0x00, 0, 10, 0x86, 0xdd];
    tagged.extend_from_slice(&ip);
    let f = ethernet(0x88a8, &[&[0, 20][..], &tagged].concat());
    let p = decode(LinkType::Ethernet, &f);
    assert!(
        matches!(p, Ok(Packet::Esp(e)) if e.spi == 0x5151 && e.seq == 7),
        "{p:?}"
    );
}

#[test]
fn error_offsets_are_frame_offsets() {
    let f = ethernet(0x0800, &ipv4(proto::ESP, &[0; 4]));
    assert_eq!(
        decode(LinkType::Ethernet, &f).unwrap_err(),
        DecodeError::new(Reason::BadIpsecHeader, 34)
    );
    let f = ethernet(0x0800, &[0x45, 0, 0]);
    assert_eq!(
        decode(LinkType::Ethernet, &f).unwrap_err(),
        DecodeError::new(Reason::Truncated, 14)
    );
    assert_eq!(
        decode(LinkType::Other(147), &f).unwrap_err().reason,
        Reason::UnsupportedLink
    );
    let f = ethernet(0x0806, &[0; 28]);
    assert!(matches!(decode(LinkType::Ethernet, &f), Ok(Packet::Other)));
}

/// A 1500-byte IKE message in UDP 4500 (behind the marker), cut into IPv4 fragments.
fn big_ike_v4(id: u16, sizes: &[usize]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut marked = vec![0, 0, 0, 0];
    let mut msg = ike_header();
    msg.resize(1500, 0x5a);
    marked.extend_from_slice(&msg);
    let dgram = udp(4500, 4500, &marked);
    let mut frames = Vec::new();
    let mut off = 0;
    for (i, &n) in sizes.iter().enumerate() {
        let end = if i + 1 == sizes.len() {
            dgram.len()
        } else {
            off + n
        };
        let more = end < dgram.len();
        frames.push(ethernet(
            0x0800,
            &ipv4_frag(proto::UDP, id, off, more, &dgram[off..end]),
        ));
        off = end;
    }
    (msg, frames)
}

fn at(secs: i64) -> Timestamp {
    Timestamp(T0.0 + secs * 1_000_000_000)
}

#[test]
fn fragments_reassemble_in_and_out_of_order() {
    for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
        let (msg, frames) = big_ike_v4(9, &[600, 600, 0]);
        let mut d = Decoder::default();
        let mut result = None;
        for (n, i) in order.iter().enumerate() {
            match d.decode(LinkType::Ethernet, at(0), &frames[*i]) {
                Ok(Packet::Fragment) => assert!(n < 2),
                Ok(Packet::Ike(ike)) => result = Some((ike.encap, ike.message.to_vec())),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(result, Some((Encap::Udp, msg)), "{order:?}");
        assert_eq!(d.reassembly_stats().completed, 1);
    }
}

#[test]
fn ipv6_fragments_reassemble() {
    let mut msg = ike_header();
    msg.resize(2000, 1);
    let dgram = udp(500, 500, &msg);
    let mut d = Decoder::default();
    let cut = 1232;
    let first = [frag6(proto::UDP, 42, 0, true), dgram[..cut].to_vec()].concat();
    let last = [frag6(proto::UDP, 42, cut, false), dgram[cut..].to_vec()].concat();
    let (first, last) = (ipv6(proto::FRAGMENT, &first), ipv6(proto::FRAGMENT, &last));
    let p = d.decode(LinkType::Raw, at(0), &first);
    assert!(matches!(p, Ok(Packet::Fragment)));
    let p = d.decode(LinkType::Raw, at(0), &last);
    assert!(matches!(p, Ok(Packet::Ike(i)) if i.message == &msg[..] && i.encap == Encap::None));
}

#[test]
fn overlapping_fragment_is_an_error() {
    let (_, frames) = big_ike_v4(9, &[600, 600, 0]);
    let mut d = Decoder::default();
    assert!(matches!(
        d.decode(LinkType::Ethernet, at(0), &frames[0]),
        Ok(Packet::Fragment)
    ));
    let f = &frames[0];
    let overlap = ethernet(
        0x0800,
        &ipv4_frag(proto::UDP, 9, 8, true, &f[34 + 8..34 + 16]),
    );
    let e = d.decode(LinkType::Ethernet, at(0), &overlap).unwrap_err();
    assert_eq!(e, DecodeError::new(Reason::BadFragment, 34));
    assert_eq!(d.reassembly_stats().bad, 1);
}

#[test]
fn lost_ike_fragment_is_reported_after_timeout() {
    let (_, frames) = big_ike_v4(3, &[600, 600, 0]);
    let mut d = Decoder::default();
    d.decode_numbered(17, LinkType::Ethernet, at(5), &frames[0])
        .unwrap();
    d.decode_numbered(18, LinkType::Ethernet, at(5), &frames[1])
        .unwrap();
    assert_eq!(d.pending_ike_fragments().len(), 1);
    assert!(d.take_expired_ike_fragments().is_empty());
    let other = ethernet(0x0800, &ipv4(proto::ESP, &esp(1, 1)));
    d.decode(LinkType::Ethernet, at(36), &other).unwrap();
    let lost = d.take_expired_ike_fragments();
    assert_eq!(lost.len(), 1);
    assert_eq!(
        (lost[0].ports, lost[0].first_frame, lost[0].bytes_seen),
        ((4500, 4500), 17, 1200)
    );
    assert_eq!(lost[0].first_ts, at(5));
    assert_eq!(d.reassembly_stats().expired, 1);
}

#[test]
fn tick_expires_without_frames() {
    let (_, frames) = big_ike_v4(3, &[600, 600, 0]);
    let mut d = Decoder::default();
    d.decode(LinkType::Ethernet, at(0), &frames[0]).unwrap();
    d.tick(at(31));
    assert_eq!(d.take_expired_ike_fragments().len(), 1);
}

#[test]
fn table_cap_evicts() {
    let mut d = Decoder::new(DecoderConfig {
        max_reassemblies: 2,
        max_datagram: 65_535,
    });
    for id in 0..5u16 {
        let (_, frames) = big_ike_v4(id, &[600, 600, 0]);
        assert!(matches!(
            d.decode(LinkType::Ethernet, at(id.into()), &frames[0]),
            Ok(Packet::Fragment)
        ));
    }
    assert_eq!(d.reassembly_stats().evicted, 3);
    let lost = d.take_expired_ike_fragments();
    assert_eq!(lost.len(), 3);
    assert!(lost.iter().all(|l| l.evicted));
}

#[test]
fn oversized_datagram_is_refused() {
    let mut d = Decoder::new(DecoderConfig {
        max_reassemblies: 4,
        max_datagram: 1000,
    });
    let (_, frames) = big_ike_v4(1, &[600, 600, 0]);
    assert!(matches!(
        d.decode(LinkType::Ethernet, at(0), &frames[0]),
        Ok(Packet::Fragment)
    ));
    let e = d.decode(LinkType::Ethernet, at(0), &frames[1]).unwrap_err();
    assert_eq!(e.reason, Reason::BadFragment);
}

/// xorshift64*: a fixed pseudo-random sequence, so every run checks the same frames.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn seeds() -> Vec<(LinkType, Vec<u8>)> {
    let (_, frags) = big_ike_v4(1, &[600, 600, 0]);
    let mut v = vec![
        (LinkType::Ethernet, ethernet(0x0800, &ike_on_500())),
        (
            LinkType::Raw,
            ipv4(proto::UDP, &udp(4500, 4500, &esp(7, 1))),
        ),
        (
            LinkType::Raw,
            ipv6(
                proto::HOP_BY_HOP,
                &[
                    proto::AH,
                    0,
                    1,
                    4,
                    0,
                    0,
                    0,
                    0,
                    17,
                    1,
                    0,
                    0,
                    0,
                    0,
                    1,
                    0,
                    0,
                    0,
                    0,
                    1,
                ],
            ),
        ),
        (
            LinkType::LinuxSll2,
            [&[0x86, 0xdd][..], &[0; 18], &ipv6(proto::ESP, &esp(3, 3))].concat(),
        ),
        (
            LinkType::Raw,
            ipv4(
                proto::ICMP,
                &[&[3, 4, 0, 0, 0, 0, 5, 0][..], &ike_on_500()[..28]].concat(),
            ),
        ),
    ];
    v.extend(frags.into_iter().map(|f| (LinkType::Ethernet, f)));
    v
}

const LINKS: [LinkType; 9] = [
    LinkType::Ethernet,
    LinkType::Null,
    LinkType::Loop,
    LinkType::Raw,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Other(147),
];

/// Runs the decoder over random bytes and over seeds with random bytes flipped, cut or
/// inserted, under every link type. It checks only that nothing panics and that the
/// reassembly table stays within its cap; the fuzz target explores further.
#[test]
fn random_and_mutated_frames_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut d = Decoder::new(DecoderConfig {
        max_reassemblies: 8,
        max_datagram: 4096,
    });
    let seeds = seeds();
    for i in 0..6000 {
        let mut frame = if i % 3 == 0 {
            (0..rng.below(120)).map(|_| rng.next() as u8).collect()
        } else {
            seeds[rng.below(seeds.len())].1.clone()
        };
        for _ in 0..rng.below(4) {
            mutate(&mut rng, &mut frame);
        }
        let link = LINKS[rng.below(LINKS.len())];
        let ts = at(i / 100);
        if let Ok(Packet::Icmp(icmp)) = d.decode(link, ts, &frame) {
            let _ = ip::decode_quoted(icmp.quoted);
        }
        let _ = ip::decode_quoted(&frame);
        assert!(d.reassembly.in_progress() <= 8);
    }
}

/// The one-step ESP decoder gives what the layers give for every frame it accepts, and
/// accepts the plain frames: checked over ESP frames with every header byte and the
/// length varied, and over the mutated seeds.
#[test]
fn plain_esp_equals_the_layers() {
    let mut d = Decoder::new(DecoderConfig::default());
    let base = ethernet(0x0800, &ipv4(proto::ESP, &esp(0x1234, 9)));
    assert!(plain_esp(LinkType::Ethernet, &base).is_some());
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut frames = Vec::new();
    for at in 0..base.len().min(14 + 20 + 8) {
        for v in [0x00, 0x01, 0x05, 0x20, 0x3f, 0x40, 0x45, 0x46, 0x80, 0xff] {
            let mut f = base.clone();
            f[at] = v;
            frames.push(f);
        }
    }
    for len in 0..base.len() + 3 {
        let mut f = base.clone();
        f.resize(len, 0xaa);
        frames.push(f);
    }
    let seeds = seeds();
    for _ in 0..3000 {
        let mut f = seeds[rng.below(seeds.len())].1.clone();
        mutate(&mut rng, &mut f);
        frames.push(f);
    }
    let mut accepted = 0;
    for f in &frames {
        for link in LINKS {
            let Some(fast) = plain_esp(link, f) else {
                continue;
            };
            accepted += 1;
            match d.decode_layers(1, link, at(0), f) {
                Ok(Packet::Esp(layers)) => assert_eq!(layers, fast, "{f:02x?}"),
                other => panic!("{other:?} from the layers, {fast:?} in one step: {f:02x?}"),
            }
        }
    }
    assert!(accepted > 100, "{accepted}");
}

fn mutate(rng: &mut Rng, frame: &mut Vec<u8>) {
    if frame.is_empty() {
        frame.push(rng.next() as u8);
        return;
    }
    let at = rng.below(frame.len());
    match rng.below(4) {
        0 => frame[at] = rng.next() as u8,
        1 => frame.truncate(at),
        2 => frame.insert(at, rng.next() as u8),
        _ => frame[at] ^= 1 << rng.below(8),
    }
}
