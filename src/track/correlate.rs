//! Two vantage points: the same IPsec packets captured at points A and B, matched to show
//! address and port translation between the points, packets lost between them, and the
//! one-way delay (`ipsecmon correlate A B`, DESIGN.md).
//!
//! A NAT rewrites only the outer IP and UDP headers, so a packet is recognised at both
//! points by what follows them: the whole ISAKMP message for IKE (SPIs, message ID,
//! direction and size included), SPI, sequence number and payload for ESP and AH. Each
//! packet is reduced to a small [`Sighting`] keyed by a hash of those bytes.
//!
//! Clocks: packets from A's side towards B arrive at B `offset + delay` after A saw them,
//! packets the other way `delay - offset` before; the medians of both directions give the
//! offset and the delay (assuming the delay is the same both ways).
//!
//! Limitations: the whole of both captures is held as sightings (about 100 bytes per IPsec
//! packet, capped at [`MAX_SIGHTINGS`] each); identical packets (IKEv1 retransmissions)
//! are paired in order, so a lost retransmission is counted against the last copy; NAT-T
//! keepalives carry nothing unique and are not matched.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use serde::Serialize;

use crate::wire::{Addrs, Packet, Timestamp};

use super::report::{NatEvidence, NatReport, NatVerdict};

/// Most sightings kept per capture; beyond it packets are counted but not matched.
pub const MAX_SIGHTINGS: usize = 10_000_000;
/// Most frames listed per translation.
const MAX_FRAMES: usize = 32;

/// An address with its UDP port when the packet travelled over UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// The IP address.
    pub ip: IpAddr,
    /// The UDP port, for IKE and UDP-encapsulated ESP.
    pub port: Option<u16>,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ip, self.port) {
            (IpAddr::V6(ip), Some(p)) => write!(f, "[{ip}]:{p}"),
            (ip, Some(p)) => write!(f, "{ip}:{p}"),
            (ip, None) => write!(f, "{ip}"),
        }
    }
}

/// Which IKE peer sent a packet, when the packet says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// The IKE SA's initiator (IKEv2 I flag, or IKEv1's first message).
    Initiator,
    /// The responder (IKEv2 I flag clear).
    Responder,
    /// Not known from this packet alone (ESP, AH, later IKEv1 messages).
    Unknown,
}

/// One IPsec packet seen at one capture point.
#[derive(Debug, Clone, Copy)]
pub struct Sighting {
    /// Frame number in its capture.
    pub frame: u64,
    /// Capture time.
    pub ts: Timestamp,
    /// Outer source.
    pub src: Endpoint,
    /// Outer destination.
    pub dst: Endpoint,
    /// Hash of the bytes a NAT leaves alone; equal keys mean the same packet.
    pub key: u64,
    /// Which IKE peer sent it, when known.
    pub sender: Sender,
}

impl Sighting {
    /// The sighting of a decoded IKE, ESP or AH packet; `None` for anything else.
    pub fn from_packet(frame: u64, ts: Timestamp, packet: &Packet<'_>) -> Option<Sighting> {
        let mut h = DefaultHasher::new();
        let (addrs, sender) = match packet {
            Packet::Ike(d) => {
                (0u8, d.message).hash(&mut h);
                (d.addrs, ike_sender(d.message))
            }
            Packet::Esp(e) => {
                (1u8, e.spi, e.seq, e.payload).hash(&mut h);
                (e.addrs, Sender::Unknown)
            }
            Packet::Ah(a) => {
                (2u8, a.spi, a.seq, a.icv, a.payload).hash(&mut h);
                (a.addrs, Sender::Unknown)
            }
            _ => return None,
        };
        let (src, dst) = endpoints(&addrs);
        let key = h.finish();
        Some(Sighting {
            frame,
            ts,
            src,
            dst,
            key,
            sender,
        })
    }
}

fn endpoints(a: &Addrs) -> (Endpoint, Endpoint) {
    let (sp, dp) = match a.ports {
        Some((s, d)) => (Some(s), Some(d)),
        None => (None, None),
    };
    (
        Endpoint {
            ip: a.src,
            port: sp,
        },
        Endpoint {
            ip: a.dst,
            port: dp,
        },
    )
}

/// Who sent an IKE message, from its header alone: IKEv2's I flag (RFC 7296 §3.1), or an
/// IKEv1 message with a zero responder cookie (only the initiator sends one).
fn ike_sender(msg: &[u8]) -> Sender {
    let (Some(spi_r), Some(&version), Some(&flags)) = (msg.get(8..16), msg.get(17), msg.get(19))
    else {
        return Sender::Unknown;
    };
    match version >> 4 {
        2 if flags & 0x08 != 0 => Sender::Initiator,
        2 => Sender::Responder,
        1 if spi_r.iter().all(|b| *b == 0) => Sender::Initiator,
        _ => Sender::Unknown,
    }
}

/// One endpoint seen with different addresses at the two points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Translation {
    /// The endpoint as seen at point A (`ip:port`, or `ip` for ESP/AH).
    pub a: String,
    /// The same endpoint as seen at point B.
    pub b: String,
    /// Frames at A that show it (the first 32).
    pub frames_a: Vec<u64>,
    /// The matching frames at B (the first 32).
    pub frames_b: Vec<u64>,
    /// Matched packets that show it.
    pub packets: u64,
}

/// One-way delay between the points, after removing the clock offset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DelayStats {
    /// Smallest, seconds.
    pub min: f64,
    /// Median, seconds.
    pub median: f64,
    /// Largest, seconds.
    pub max: f64,
}

/// The result of `ipsecmon correlate A B` (DESIGN.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CorrelateReport {
    /// Always 1.
    pub schema: u32,
    /// IPsec packets (IKE, ESP, AH) read at A.
    pub packets_a: u64,
    /// IPsec packets read at B.
    pub packets_b: u64,
    /// Packets seen at both points.
    pub matched: u64,
    /// Endpoints whose address or port differs between A and B.
    pub translations: Vec<Translation>,
    /// Packets sent from A's side, seen at A while B was capturing, never seen at B.
    pub lost_a_to_b: u64,
    /// Packets sent from B's side, seen at B while A was capturing, never seen at A.
    pub lost_b_to_a: u64,
    /// B's clock minus A's clock, seconds; null without traffic in both directions.
    pub clock_offset_s: Option<f64>,
    /// One-way delay; null when nothing matched.
    pub delay_s: Option<DelayStats>,
    /// Where the translation sits, in the words of the NAT verdict.
    pub nat: NatReport,
}

/// Direction of a matched packet between the points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    AToB,
    BToA,
}

/// A matched packet: indices into A's and B's sightings and the raw time difference.
#[derive(Debug, Clone, Copy)]
struct Pair {
    a: usize,
    b: usize,
    /// tB - tA in nanoseconds.
    d: i64,
}

/// Matches two captures' sightings and measures what lies between the points.
pub fn correlate(a: &[Sighting], b: &[Sighting]) -> CorrelateReport {
    let pairs = match_pairs(a, b);
    let dirs = classify(a, &pairs);
    let offset = estimate_offset(a, &pairs, &dirs);
    let moved = translations(a, b, &pairs);
    let nat = locate(a, &pairs, &dirs, &moved);
    let (lost_a_to_b, lost_b_to_a) = losses(a, b, &pairs, &dirs, offset.unwrap_or(0));
    CorrelateReport {
        schema: 1,
        packets_a: a.len() as u64,
        packets_b: b.len() as u64,
        matched: pairs.len() as u64,
        translations: moved.into_iter().map(Moved::into_translation).collect(),
        lost_a_to_b,
        lost_b_to_a,
        clock_offset_s: offset.map(|o| o as f64 / 1e9),
        delay_s: delays(a, &pairs, &dirs, offset.unwrap_or(0)),
        nat,
    }
}

/// Pairs equal keys in order of appearance.
fn match_pairs(a: &[Sighting], b: &[Sighting]) -> Vec<Pair> {
    let mut at_b: HashMap<u64, VecDeque<usize>> = HashMap::new();
    for (i, s) in b.iter().enumerate() {
        at_b.entry(s.key).or_default().push_back(i);
    }
    let mut pairs = Vec::new();
    for (ia, s) in a.iter().enumerate() {
        if let Some(ib) = at_b.get_mut(&s.key).and_then(|q| q.pop_front()) {
            let d = b[ib].ts.0.saturating_sub(s.ts.0);
            pairs.push(Pair { a: ia, b: ib, d });
        }
    }
    pairs
}

/// Decides each sender's direction (senders as seen at A). Within a conversation seen
/// both ways, the direction whose packets reach B later (larger tB - tA) goes from A to
/// B, whatever the clock offset. A one-way sender is judged against the offset the
/// two-way conversations give, or, without any, by the sign of its median difference.
fn classify(a: &[Sighting], pairs: &[Pair]) -> HashMap<Endpoint, Dir> {
    let mut by_sender: HashMap<Endpoint, Vec<i64>> = HashMap::new();
    for p in pairs {
        by_sender.entry(a[p.a].src).or_default().push(p.d);
    }
    let medians: HashMap<Endpoint, i64> = by_sender
        .into_iter()
        .map(|(k, mut v)| (k, median(&mut v)))
        .collect();
    let mut dirs = HashMap::new();
    let mut midpoints = Vec::new();
    for (sender, &mine) in &medians {
        let peers = pairs.iter().map(|p| &a[p.a]).filter(|s| s.src == *sender);
        let Some((other, theirs)) = peers
            .filter_map(|s| medians.get(&s.dst).map(|m| (s.dst, *m)))
            .next()
        else {
            continue;
        };
        // Equal medians (one clock, no measurable delay): any consistent split will do.
        let later = mine > theirs || (mine == theirs && *sender < other);
        let dir = if later { Dir::AToB } else { Dir::BToA };
        dirs.insert(*sender, dir);
        midpoints.push(mine / 2 + theirs / 2);
    }
    let mid = if midpoints.is_empty() {
        0
    } else {
        median(&mut midpoints)
    };
    for (sender, m) in medians {
        let dir = if m >= mid { Dir::AToB } else { Dir::BToA };
        dirs.entry(sender).or_insert(dir);
    }
    dirs
}

fn median(v: &mut [i64]) -> i64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn dir_of(a: &[Sighting], p: &Pair, dirs: &HashMap<Endpoint, Dir>) -> Dir {
    dirs.get(&a[p.a].src).copied().unwrap_or(Dir::AToB)
}

/// `offset = (x - y) / 2` with x the median of tB - tA over A->B packets and y the median
/// of tA - tB over B->A packets; `None` unless both directions were seen.
fn estimate_offset(a: &[Sighting], pairs: &[Pair], dirs: &HashMap<Endpoint, Dir>) -> Option<i64> {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for p in pairs {
        match dir_of(a, p, dirs) {
            Dir::AToB => x.push(p.d),
            Dir::BToA => y.push(-p.d),
        }
    }
    if x.is_empty() || y.is_empty() {
        return None;
    }
    Some((median(&mut x) - median(&mut y)) / 2)
}

/// One-way delays with the offset removed (without an offset, the raw differences).
fn delays(
    a: &[Sighting],
    pairs: &[Pair],
    dirs: &HashMap<Endpoint, Dir>,
    offset: i64,
) -> Option<DelayStats> {
    let mut d: Vec<i64> = pairs
        .iter()
        .map(|p| match dir_of(a, p, dirs) {
            Dir::AToB => p.d - offset,
            Dir::BToA => offset - p.d,
        })
        .collect();
    let med = median(&mut d);
    let secs = |ns: i64| ns as f64 / 1e9;
    Some(DelayStats {
        min: secs(*d.first()?),
        median: secs(med),
        max: secs(*d.last()?),
    })
}

/// An endpoint that differs between the points, while it is being collected.
#[derive(Debug)]
struct Moved {
    at_a: Endpoint,
    at_b: Endpoint,
    frames_a: Vec<u64>,
    frames_b: Vec<u64>,
    packets: u64,
}

impl Moved {
    fn into_translation(self) -> Translation {
        Translation {
            a: self.at_a.to_string(),
            b: self.at_b.to_string(),
            frames_a: self.frames_a,
            frames_b: self.frames_b,
            packets: self.packets,
        }
    }
}

fn translations(a: &[Sighting], b: &[Sighting], pairs: &[Pair]) -> Vec<Moved> {
    let mut out: Vec<Moved> = Vec::new();
    let mut index: HashMap<(Endpoint, Endpoint), usize> = HashMap::new();
    for p in pairs {
        let (sa, sb) = (&a[p.a], &b[p.b]);
        for (ea, eb) in [(sa.src, sb.src), (sa.dst, sb.dst)] {
            if ea == eb {
                continue;
            }
            let i = *index.entry((ea, eb)).or_insert_with(|| {
                out.push(Moved {
                    at_a: ea,
                    at_b: eb,
                    frames_a: Vec::new(),
                    frames_b: Vec::new(),
                    packets: 0,
                });
                out.len() - 1
            });
            let m = &mut out[i];
            m.packets += 1;
            if m.frames_a.len() < MAX_FRAMES {
                m.frames_a.push(sa.frame);
                m.frames_b.push(sb.frame);
            }
        }
    }
    out
}

/// The IKE role of each IP at A, from matched IKE messages that name their sender.
fn roles(a: &[Sighting], pairs: &[Pair]) -> HashMap<IpAddr, Sender> {
    let mut roles = HashMap::new();
    for s in pairs.iter().map(|p| &a[p.a]) {
        let (sender_ip, receiver_ip) = (s.src.ip, s.dst.ip);
        let (mine, theirs) = match s.sender {
            Sender::Initiator => (Sender::Initiator, Sender::Responder),
            Sender::Responder => (Sender::Responder, Sender::Initiator),
            Sender::Unknown => continue,
        };
        roles.entry(sender_ip).or_insert(mine);
        roles.entry(receiver_ip).or_insert(theirs);
    }
    roles
}

/// Turns translations into a NAT verdict: whose endpoint a NAT between the points
/// rewrites, and on which point's side that peer is.
fn locate(
    a: &[Sighting],
    pairs: &[Pair],
    dirs: &HashMap<Endpoint, Dir>,
    moved: &[Moved],
) -> NatReport {
    if pairs.is_empty() {
        let detail = "no packet was seen at both points: the captures share no traffic";
        let e = nat_evidence("no-match", detail.to_string(), Vec::new());
        return NatReport {
            verdict: NatVerdict::Undecidable,
            evidence: vec![e],
        };
    }
    if moved.is_empty() {
        let detail = format!(
            "{} packets seen at both points with identical addresses and ports: nothing \
             between the points rewrites them",
            pairs.len()
        );
        let frames = pairs
            .iter()
            .take(MAX_FRAMES)
            .map(|p| a[p.a].frame)
            .collect();
        let e = nat_evidence("no-translation", detail, frames);
        return NatReport {
            verdict: NatVerdict::None,
            evidence: vec![e],
        };
    }
    let roles = roles(a, pairs);
    let (mut initiator, mut responder) = (false, false);
    let evidence = moved
        .iter()
        .map(|m| {
            let role = roles.get(&m.at_a.ip).copied().unwrap_or(Sender::Unknown);
            initiator |= role == Sender::Initiator;
            responder |= role == Sender::Responder;
            translation_evidence(m, role, dirs.get(&m.at_a).copied())
        })
        .collect();
    let verdict = match (initiator, responder) {
        (true, true) => NatVerdict::Both,
        (true, false) => NatVerdict::Initiator,
        (false, true) => NatVerdict::Responder,
        (false, false) => NatVerdict::Undecidable,
    };
    NatReport { verdict, evidence }
}

fn translation_evidence(m: &Moved, role: Sender, dir: Option<Dir>) -> NatEvidence {
    let who = match role {
        Sender::Initiator => "the IKE initiator's",
        Sender::Responder => "the IKE responder's",
        Sender::Unknown => "an",
    };
    let side = match dir {
        Some(Dir::AToB) => ", so that peer is on A's side of it",
        Some(Dir::BToA) => ", so that peer is on B's side of it",
        None => "",
    };
    let detail = format!(
        "{who} endpoint {} at A is {} at B in {} matched packet(s): a NAT between the two \
         points rewrites it{side}",
        m.at_a, m.at_b, m.packets
    );
    nat_evidence("translation", detail, m.frames_a.clone())
}

fn nat_evidence(kind: &str, detail: String, frames: Vec<u64>) -> NatEvidence {
    NatEvidence {
        kind: kind.to_string(),
        detail,
        frames,
    }
}

/// Unmatched packets: at A from A's side while B was capturing (lost A->B), at B from B's
/// side while A was capturing (lost B->A). Senders never matched at all are unrelated
/// traffic and not counted.
fn losses(
    a: &[Sighting],
    b: &[Sighting],
    pairs: &[Pair],
    dirs: &HashMap<Endpoint, Dir>,
    offset: i64,
) -> (u64, u64) {
    let (mut seen_a, mut seen_b) = (vec![false; a.len()], vec![false; b.len()]);
    let mut dirs_b: HashMap<Endpoint, Dir> = HashMap::new();
    for p in pairs {
        seen_a[p.a] = true;
        seen_b[p.b] = true;
        dirs_b.insert(b[p.b].src, dir_of(a, p, dirs));
    }
    let window = |s: &[Sighting]| (s.first().map(|x| x.ts.0), s.last().map(|x| x.ts.0));
    let inside = |w: (Option<i64>, Option<i64>), t: i64| matches!(w, (Some(lo), Some(hi)) if t >= lo && t <= hi);
    let (wa, wb) = (window(a), window(b));
    let lost_ab = a
        .iter()
        .zip(&seen_a)
        .filter(|(s, seen)| !**seen && dirs.get(&s.src) == Some(&Dir::AToB))
        .filter(|(s, _)| inside(wb, s.ts.0 + offset))
        .count();
    let lost_ba = b
        .iter()
        .zip(&seen_b)
        .filter(|(s, seen)| !**seen && dirs_b.get(&s.src) == Some(&Dir::BToA))
        .filter(|(s, _)| inside(wa, s.ts.0 - offset))
        .count();
    (lost_ab as u64, lost_ba as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Endpoint {
        let sa: std::net::SocketAddr = s.parse().unwrap();
        Endpoint {
            ip: sa.ip(),
            port: Some(sa.port()),
        }
    }

    fn at(frame: u64, ms: i64, src: &str, dst: &str, key: u64, sender: Sender) -> Sighting {
        Sighting {
            frame,
            ts: Timestamp(ms * 1_000_000),
            src: ep(src),
            dst: ep(dst),
            key,
            sender,
        }
    }

    const ALICE_IN: &str = "10.0.0.2:500";
    const ALICE_OUT: &str = "192.0.2.254:40001";
    const BOB: &str = "192.0.2.2:500";

    /// A inside the NAT, B outside; B's clock runs 5 s ahead; 1 ms between the points.
    fn inside_outside() -> (Vec<Sighting>, Vec<Sighting>) {
        let (i, r) = (Sender::Initiator, Sender::Responder);
        let a = vec![
            at(1, 1000, ALICE_IN, BOB, 11, i),
            at(2, 1020, BOB, ALICE_IN, 12, r),
            at(3, 1030, ALICE_IN, BOB, 13, i),
            at(4, 1050, BOB, ALICE_IN, 14, r),
            at(5, 1052, ALICE_IN, BOB, 15, i),
        ];
        let b = vec![
            at(1, 6001, ALICE_OUT, BOB, 11, i),
            at(2, 6019, BOB, ALICE_OUT, 12, r),
            at(3, 6031, ALICE_OUT, BOB, 13, i),
            at(4, 6040, BOB, ALICE_OUT, 99, r),
            at(5, 6049, BOB, ALICE_OUT, 14, r),
            at(6, 6055, ALICE_OUT, BOB, 98, i),
        ];
        (a, b)
    }

    #[test]
    fn inside_outside_finds_translation_offset_delay_and_loss() {
        let (a, b) = inside_outside();
        let r = correlate(&a, &b);
        assert_eq!(r.matched, 4);
        assert_eq!(r.translations.len(), 1);
        let t = &r.translations[0];
        assert_eq!((t.a.as_str(), t.b.as_str()), (ALICE_IN, ALICE_OUT));
        assert_eq!(
            (t.frames_a.clone(), t.frames_b.clone()),
            (vec![1, 2, 3, 4], vec![1, 2, 3, 5])
        );
        assert_eq!(r.clock_offset_s, Some(5.0));
        let d = r.delay_s.unwrap();
        assert!((d.median - 0.001).abs() < 1e-9, "{d:?}");
        // Frame 5 at A (alice -> bob) never reached B; frame 4 at B (bob -> alice) never
        // reached A. Frame 6 at B is from A's side, so it is not B->A loss.
        assert_eq!((r.lost_a_to_b, r.lost_b_to_a), (1, 1));
        assert_eq!(r.nat.verdict, NatVerdict::Initiator);
        assert!(
            r.nat.evidence[0].detail.contains("on A's side"),
            "{:?}",
            r.nat
        );
    }

    #[test]
    fn swapped_points_give_the_negative_offset() {
        let (a, b) = inside_outside();
        let r = correlate(&b, &a);
        assert_eq!(r.clock_offset_s, Some(-5.0));
        assert_eq!(r.nat.verdict, NatVerdict::Initiator);
        assert!(r.nat.evidence[0].detail.contains("on B's side"));
    }

    #[test]
    fn identical_addresses_mean_no_nat() {
        let (a, _) = inside_outside();
        let r = correlate(&a, &a);
        assert_eq!(r.matched, 5);
        assert!(r.translations.is_empty());
        assert_eq!(r.nat.verdict, NatVerdict::None);
        assert_eq!(r.clock_offset_s, Some(0.0));
    }

    #[test]
    fn disjoint_captures_are_undecidable() {
        let (a, _) = inside_outside();
        let r = correlate(&a, &[]);
        assert_eq!(r.matched, 0);
        assert_eq!(r.nat.verdict, NatVerdict::Undecidable);
        assert_eq!(r.delay_s, None);
        assert_eq!(r.clock_offset_s, None);
    }

    #[test]
    fn ike_sender_from_header() {
        let mut v2 = [0u8; 28];
        v2[17] = 0x20;
        v2[19] = 0x08;
        assert_eq!(ike_sender(&v2), Sender::Initiator);
        v2[19] = 0x20;
        assert_eq!(ike_sender(&v2), Sender::Responder);
        let mut v1 = [0u8; 28];
        v1[17] = 0x10;
        assert_eq!(ike_sender(&v1), Sender::Initiator);
        v1[8] = 1;
        assert_eq!(ike_sender(&v1), Sender::Unknown);
        assert_eq!(ike_sender(&[0; 10]), Sender::Unknown);
    }

    #[test]
    fn endpoints_print_like_the_contract() {
        assert_eq!(ep("[2001:db8::1]:4500").to_string(), "[2001:db8::1]:4500");
        let bare = Endpoint {
            ip: "192.0.2.1".parse().unwrap(),
            port: None,
        };
        assert_eq!(bare.to_string(), "192.0.2.1");
    }
}
