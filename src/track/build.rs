//! Building a [`Report`] from the live tables: per snapshot, never per packet.
//!
//! Everything is sorted by first frame so that a capture file gives the same report on
//! every run, whatever order the hash tables hold their entries in.

use std::collections::HashMap;
use std::net::IpAddr;

use super::esp::{EspKey, EspSa};
use super::ike::{Child, IkeKey, IkeSa};
use super::report::{spi32, spi64, EspSaReport, IkeSaReport, IkeState, Report, Stats};
use super::Tracker;

/// The report of everything the tracker holds.
pub(crate) fn report(t: &Tracker) -> Report {
    let mut sas: Vec<&IkeSa> = t.ike.iter().map(|(_, sa)| sa).collect();
    sas.sort_by_key(|sa| (sa.first_frame, sa.spi_i));
    let mut esps: Vec<(&EspKey, &EspSa)> = t.esp.iter().collect();
    esps.sort_by_key(|(k, e)| (e.first_frame, k.spi, k.ah));
    let peers = pair_directions(t, &esps);
    let mut settled = Settled::default();
    let ike_sas = sas
        .iter()
        .map(|sa| {
            let mut r = sa.to_report();
            settle_rekeys(t, sa, &mut r, &mut settled);
            r
        })
        .collect::<Vec<_>>();
    let mut stats = stats(t, &sas, &esps, &peers);
    stats.rekeys += settled.rekeys;
    stats.active_associations = stats.active_associations.saturating_sub(settled.deleted);
    let mut report = Report {
        ike_sas,
        stats,
        frames: t.frames,
        decode_errors: t.decode_errors,
        evictions: t.evictions,
        last_ts: t.last_ts.map(|ts| ts.as_secs_f64()),
        ..Report::default()
    };
    for (i, (k, e)) in esps.iter().enumerate() {
        let row = esp_report(t, k, e, peers[i].map(|(j, how)| (esps[j].0.spi, how)));
        if k.ah {
            report.ah_sas.push(row);
        } else {
            report.esp_sas.push(row);
        }
    }
    report
}

/// What settling open rekeys changed, for the statistics block.
#[derive(Debug, Default)]
struct Settled {
    /// Open rekeys that ESP timing resolved.
    rekeys: u64,
    /// Children a Delete removed that the live tables still count (live SAs only).
    deleted: u64,
}

/// A replaced child's last packet may trail the new one's first by this much.
const HANDOVER_NS: i64 = 1_000_000_000;

/// Settles each open rekey of `sa` in its report (see [`Child::rekey_open`]): the child
/// it replaced is the candidate whose ESP in the same direction stopped by the new
/// child's first packet (give or take the handover), the latest such one when several
/// did. Candidates still sending after the handover are other filters' children. An
/// open rekey that nothing stopped for is not a rekey.
fn settle_rekeys(t: &Tracker, sa: &IkeSa, r: &mut IkeSaReport, out: &mut Settled) {
    let live = matches!(sa.state, IkeState::Established | IkeState::Negotiating);
    let mut taken: Vec<usize> = Vec::new();
    for (j, c) in sa.children.iter().enumerate() {
        let Some(towards_initiator) = c.rekey_open else {
            continue;
        };
        // A Delete followed, so one live-looking child is gone, found or not.
        out.deleted += u64::from(c.delete_pending && live);
        let Some(k) = replaced_child(t, sa, j, towards_initiator, &taken) else {
            continue;
        };
        taken.push(k);
        let old = &sa.children[k];
        r.child_sas[j].rekeyed_from = old.spi_in.or(old.spi_out).map(spi32);
        r.child_sas[k].deleted |= c.delete_pending;
        out.rekeys += 1;
    }
}

/// The index of the child that child `j` (an open rekey, first seen towards the
/// initiator when `towards_initiator`) replaced, by ESP timing: among older children of
/// the same protocol not `taken` by another rekey and active within the stall threshold
/// before it, the one whose last packet in that direction came latest but before the new
/// child's first packet (failing that, within the handover after it).
fn replaced_child(
    t: &Tracker,
    sa: &IkeSa,
    j: usize,
    towards_initiator: bool,
    taken: &[usize],
) -> Option<usize> {
    let c = &sa.children[j];
    let spi_of = |c: &Child| {
        if towards_initiator {
            c.spi_in
        } else {
            c.spi_out
        }
    };
    let dst = if towards_initiator {
        sa.initiator.0
    } else {
        sa.responder.0
    };
    let esp = |spi: u32| t.esp.get(&EspKey::unicast(dst, spi, c.protocol == 2));
    let start = esp(spi_of(c)?)?.first_seen;
    let since = start.saturating_sub(t.config.stall_after_ns);
    let lasts: Vec<(i64, usize)> = (0..j)
        .filter(|k| sa.children[*k].protocol == c.protocol && !taken.contains(k))
        .filter_map(|k| Some((esp(spi_of(&sa.children[k])?)?.last_seen, k)))
        .filter(|(last, _)| *last >= since)
        .collect();
    // Stopped before the new child's first packet, else within the handover after it.
    let latest_until = |until: i64| {
        lasts
            .iter()
            .filter(|(last, _)| *last <= until)
            .max()
            .map(|(_, k)| *k)
    };
    latest_until(start).or_else(|| latest_until(start.saturating_add(HANDOVER_NS)))
}

fn esp_report(t: &Tracker, k: &EspKey, e: &EspSa, peer: Option<(u32, Pairing)>) -> EspSaReport {
    let ike = e
        .ike()
        .and_then(|key| t.current(key))
        .and_then(|key| t.ike.get(&key));
    let (sport, dport) = e.ports.unzip();
    EspSaReport {
        spi: spi32(k.spi),
        src: address(e.src, sport),
        dst: address(k.dst, dport),
        encap: if e.ports.is_some() { "udp" } else { "none" }.to_string(),
        packets: e.packets,
        bytes: e.bytes,
        first_seen: e.first_seen as f64 / 1e9,
        last_seen: e.last_seen as f64 / 1e9,
        first_frame: e.first_frame,
        last_frame: e.last_frame,
        lost: e.lost,
        replayed: u64::from(e.replayed),
        reordered: u64::from(e.reordered),
        ike_sa: ike.map(|sa| spi64(sa.spi_i)),
        ike_sa_link: ike.and(e.link).map(|l| l.as_str().to_string()),
        peer_spi: peer.map(|(spi, _)| spi32(spi)),
        peer_link: peer.map(|(_, how)| how.as_str().to_string()),
        rule: None,
        decryption: t.esp_decrypt.get(k).map(|d| d.to_report()),
    }
}

/// `ip`, or `ip:port` for UDP-encapsulated packets (IPv6 in brackets).
fn address(ip: IpAddr, port: Option<u16>) -> String {
    match (ip, port) {
        (ip, None) => ip.to_string(),
        (IpAddr::V4(a), Some(p)) => format!("{a}:{p}"),
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
    }
}

/// How two directions of a child SA were paired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pairing {
    /// Both SPIs belong to one child SA of the IKE SA.
    ChildSa,
    /// Reversed endpoints, first packets closest in time.
    Timing,
}

impl Pairing {
    fn as_str(self) -> &'static str {
        match self {
            Pairing::ChildSa => "child-sa",
            Pairing::Timing => "timing",
        }
    }
}

/// A direction's partner: its index in the sorted list, and how it was found.
type Peer = Option<(usize, Pairing)>;

/// For each ESP/AH SA (by index in `esps`), the index of the opposite direction of the
/// same child SA: exactly from the IKE SA's child list when both SPIs are known there,
/// otherwise the SA with reversed addresses, same protocol and IKE SA, whose first packet
/// is closest in time (within the stall threshold).
fn pair_directions(t: &Tracker, esps: &[(&EspKey, &EspSa)]) -> Vec<Peer> {
    let mut peer = vec![None; esps.len()];
    let by_spi: HashMap<(u32, bool, IpAddr), usize> = esps
        .iter()
        .enumerate()
        .map(|(i, (k, _))| ((k.spi, k.ah, k.dst), i))
        .collect();
    for (i, (k, e)) in esps.iter().enumerate() {
        let Some(sa) = e
            .ike()
            .and_then(|key| t.current(key))
            .and_then(|key| t.ike.get(&key))
        else {
            continue;
        };
        let other = sa
            .children
            .iter()
            .find_map(|c| match (c.spi_in, c.spi_out) {
                (Some(a), Some(b)) if a == k.spi => Some(b),
                (Some(a), Some(b)) if b == k.spi => Some(a),
                _ => None,
            });
        peer[i] = other
            .and_then(|spi| by_spi.get(&(spi, k.ah, e.src)).copied())
            .map(|j| (j, Pairing::ChildSa));
    }
    pair_by_time(t, esps, &mut peer);
    peer
}

fn pair_by_time(t: &Tracker, esps: &[(&EspKey, &EspSa)], peer: &mut [Peer]) {
    let window = t.config.stall_after_ns;
    let mut by_dir: HashMap<(IpAddr, IpAddr, bool), Vec<usize>> = HashMap::new();
    for (i, (k, e)) in esps.iter().enumerate() {
        if peer[i].is_none() {
            by_dir.entry((e.src, k.dst, k.ah)).or_default().push(i);
        }
    }
    for i in 0..esps.len() {
        let (k, e) = esps[i];
        if peer[i].is_some() {
            continue;
        }
        let Some(candidates) = by_dir.get(&(k.dst, e.src, k.ah)) else {
            continue;
        };
        let best = candidates
            .iter()
            .copied()
            .filter(|&j| peer[j].is_none() && esps[j].1.ike() == e.ike())
            .map(|j| (esps[j].1.first_seen.abs_diff(e.first_seen), j))
            .filter(|(d, _)| *d <= window.unsigned_abs())
            .min();
        if let Some((_, j)) = best {
            peer[i] = Some((j, Pairing::Timing));
            peer[j] = Some((i, Pairing::Timing));
        }
    }
}

/// The IPSecMon statistics block.
fn stats(t: &Tracker, sas: &[&IkeSa], esps: &[(&EspKey, &EspSa)], peers: &[Peer]) -> Stats {
    let c = &t.counters;
    let mut s = Stats {
        bad_spi_packets: c.bad_spi_packets,
        packets_not_decrypted: c.not_decrypted,
        packets_not_authenticated: c.not_authenticated,
        key_additions: c.key_additions,
        key_deletions: c.key_deletions,
        rekeys: c.rekeys,
        main_modes: c.main_modes,
        quick_modes: c.quick_modes,
        ..Stats::default()
    };
    for sa in sas {
        let live = matches!(sa.state, IkeState::Established | IkeState::Negotiating);
        if live {
            s.active_associations += sa.children.iter().filter(|c| !c.deleted).count() as u64;
        }
        if sa.state == IkeState::Negotiating && !sa.mid_life {
            s.pending_key_operations += 1;
        }
        let auth = sa.failure.as_ref().is_some_and(|f| f.code == "auth-failed");
        s.authentication_failures += u64::from(auth);
    }
    for (i, (k, e)) in esps.iter().enumerate() {
        let soft = e.ike().and_then(|key| t.current(key)).is_none();
        if soft {
            s.soft_associations += 1;
            // A pair of soft directions is one association.
            let counted_by_peer = peers[i].is_some_and(|(j, _)| j < i);
            if !e.expired && !counted_by_peer && !e.bad {
                s.active_associations += 1;
            }
        }
        let sent = sent_by_us(t, k, e, esps, peers[i].map(|(j, _)| j));
        add_bytes(&mut s, k.ah, sent, e.bytes);
    }
    let r = &t.retired;
    s.confidential_bytes_sent += r.confidential_bytes_sent;
    s.confidential_bytes_received += r.confidential_bytes_received;
    s.authenticated_bytes_sent += r.authenticated_bytes_sent;
    s.authenticated_bytes_received += r.authenticated_bytes_received;
    s
}

/// Counts `bytes` of one ESP (`ah` false) or AH SA as sent or received.
pub(crate) fn add_bytes(s: &mut Stats, ah: bool, sent: bool, bytes: u64) {
    // ESP normally carries an ICV too, so its bytes are also authenticated bytes.
    match (ah, sent) {
        (false, true) => s.confidential_bytes_sent += bytes,
        (false, false) => s.confidential_bytes_received += bytes,
        _ => {}
    }
    if sent {
        s.authenticated_bytes_sent += bytes;
    } else {
        s.authenticated_bytes_received += bytes;
    }
}

/// [`sent_by_us`] for an SA leaving the table, whose opposite direction is not looked up:
/// without a local address or an IKE SA, it counts as sent.
pub(crate) fn sent_alone(t: &Tracker, k: &EspKey, e: &EspSa) -> bool {
    sent_by_us(t, k, e, &[], None)
}

/// "Sent" is from the local host when one is configured, else from the IKE SA's
/// initiator, else (no IKE SA) from whichever direction of the pair started first.
fn sent_by_us(
    t: &Tracker,
    k: &EspKey,
    e: &EspSa,
    esps: &[(&EspKey, &EspSa)],
    peer: Option<usize>,
) -> bool {
    if let Some(local) = t.config.local {
        return e.src == local;
    }
    let ike: Option<IkeKey> = e.ike().and_then(|key| t.current(key));
    if let Some(sa) = ike.and_then(|key| t.ike.get(&key)) {
        return !sa.towards_initiator(k.dst);
    }
    peer.is_none_or(|j| {
        let other = esps[j].1;
        (e.first_seen, e.first_frame) <= (other.first_seen, other.first_frame)
    })
}
