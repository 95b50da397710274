//! Building the report from the live tables: per snapshot, never per packet.
//!
//! [`Rows`] does the work that needs every SA at once (sorting, pairing the two
//! directions of each child SA, settling open rekeys, the statistics block) and then hands
//! out one row at a time. A [`Report`] collects the rows; an output that writes as it goes
//! (`report --json`, the text tables) takes them one by one instead, so that it never holds
//! the whole document, and the text tables read the raw rows ([`IkeSaRow`], [`EspSaRow`])
//! without making a string per field.
//!
//! Everything is sorted by first frame so that a capture file gives the same report on
//! every run, whatever order the hash tables hold their entries in.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::esp::{EspKey, EspSa};
use super::ike::{Child, IkeSa};
use super::report::{
    spi32, spi64, DecryptionReport, EspSaReport, Evictions, Failure, IkeSaReport, IkeState, Report,
    Stats,
};
use super::{table, Tracker};

/// The tables sorted for output, with everything worked out that needs all rows at once.
pub struct Rows<'t> {
    t: &'t Tracker,
    sas: Vec<&'t IkeSa>,
    /// Settled rekeys, for the SAs (by index in `sas`, ascending) that have any.
    settled: Vec<(usize, Vec<Settled>)>,
    esps: Vec<(&'t EspKey, &'t EspSa)>,
    /// The IKE SA that holds each ESP/AH SA's child now (rekeys followed).
    ike_of: Vec<Option<&'t IkeSa>>,
    peers: Vec<Peer>,
    stats: Stats,
    evictions: Evictions,
}

/// One open rekey that ESP timing settled: child `new` replaced child `old` of the same
/// IKE SA (indices in its child list).
#[derive(Debug, Clone, Copy)]
struct Settled {
    new: usize,
    old: usize,
}

/// How many rows ahead of the one being written the records of a row start loading.
const ROWS_AHEAD: usize = 8;

impl<'t> Rows<'t> {
    /// Sorts the tables and works out pairs, rekeys and statistics.
    pub(crate) fn new(t: &'t Tracker) -> Rows<'t> {
        let mut sas: Vec<&IkeSa> = t.ike.iter().map(|(_, sa)| sa).collect();
        sas.sort_by_key(|sa| (sa.first_frame, sa.spi_i));
        let mut esps: Vec<(&EspKey, &EspSa)> = t.esp.iter().collect();
        esps.sort_by_key(|(k, e)| (e.first_frame, k.spi, k.ah));
        let ike_of: Vec<Option<&IkeSa>> = esps
            .iter()
            .map(|(_, e)| {
                e.ike()
                    .and_then(|key| t.current(key))
                    .and_then(|key| t.ike.get(&key))
            })
            .collect();
        let peers = pair_directions(t, &esps, &ike_of);
        let mut settled = Vec::new();
        let (mut rekeys, mut deleted) = (0, 0);
        for (i, sa) in sas.iter().enumerate() {
            let (list, gone) = settle_rekeys(t, sa);
            deleted += gone;
            rekeys += list.len() as u64;
            if !list.is_empty() {
                settled.push((i, list));
            }
        }
        let mut stats = stats(t, &sas, &esps, &ike_of, &peers);
        stats.rekeys += rekeys;
        stats.active_associations = stats.active_associations.saturating_sub(deleted);
        Rows {
            t,
            sas,
            settled,
            esps,
            ike_of,
            peers,
            stats,
            evictions: t.evictions,
        }
    }

    /// Adds the fragment reassemblies the decoder abandoned to the evictions.
    pub fn set_fragment_evictions(&mut self, fragments: u64) {
        self.evictions.fragments = fragments;
    }

    /// IKE SAs held.
    pub fn ike_count(&self) -> usize {
        self.sas.len()
    }

    /// ESP SAs (`ah` false) or AH SAs held.
    pub fn esp_count(&self, ah: bool) -> usize {
        self.esps.iter().filter(|(k, _)| k.ah == ah).count()
    }

    /// The IKE SA rows, in order of first frame.
    pub fn ike_rows(&self) -> impl Iterator<Item = IkeSaRow<'_>> + '_ {
        self.sas.iter().enumerate().map(|(i, sa)| {
            // As for the ESP rows (see `prefetch_esp_row`): a row reads the whole record.
            if let Some(&ahead) = self.sas.get(i + ROWS_AHEAD) {
                table::prefetch(ahead);
            }
            IkeSaRow {
                sa,
                settled: self.settled_of(i),
            }
        })
    }

    /// The ESP SA rows (`ah` false) or the AH SA rows, in order of first packet.
    pub fn esp_rows(&self, ah: bool) -> impl Iterator<Item = EspSaRow<'_>> + '_ {
        (0..self.esps.len())
            .filter(move |&i| self.esps[i].0.ah == ah)
            .map(|i| self.esp_row(i))
    }

    /// The statistics block.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Frames read.
    pub fn frames(&self) -> u64 {
        self.t.frames
    }

    /// Frames that failed to decode.
    pub fn decode_errors(&self) -> u64 {
        self.t.decode_errors
    }

    /// Table evictions.
    pub fn evictions(&self) -> Evictions {
        self.evictions
    }

    /// Capture time of the last frame.
    pub fn last_ts(&self) -> Option<f64> {
        self.t.last_ts.map(|ts| ts.as_secs_f64())
    }

    /// The earliest capture time of any row (infinity when there is none).
    pub fn start_time(&self) -> f64 {
        let ike = self.sas.iter().map(|sa| sa.started.as_secs_f64());
        let esp = self.esps.iter().map(|(_, e)| e.first_seen as f64 / 1e9);
        ike.chain(esp).fold(f64::INFINITY, f64::min)
    }

    /// Every row collected into a report.
    pub fn into_report(self) -> Report {
        Report {
            ike_sas: self.ike_rows().map(|r| r.to_report()).collect(),
            esp_sas: self.esp_rows(false).map(|r| r.to_report()).collect(),
            ah_sas: self.esp_rows(true).map(|r| r.to_report()).collect(),
            stats: self.stats,
            frames: self.frames(),
            decode_errors: self.decode_errors(),
            evictions: self.evictions,
            last_ts: self.last_ts(),
            ..Report::default()
        }
    }

    /// Starts loading what row `i` will read: the SA, its pair's key and its IKE SA's
    /// SPI. The rows follow the order of first frames, not of memory: each record is a
    /// cache miss with many tunnels, which overlap when started some rows early.
    fn prefetch_esp_row(&self, i: usize) {
        if let Some(&(k, e)) = self.esps.get(i) {
            table::prefetch(k);
            table::prefetch(e);
        }
        if let Some(Some(sa)) = self.ike_of.get(i) {
            table::prefetch(&sa.spi_i);
        }
        if let Some(&Some((j, _))) = self.peers.get(i) {
            if let Some(&(k, _)) = self.esps.get(j) {
                table::prefetch(k);
            }
        }
    }

    fn settled_of(&self, i: usize) -> &[Settled] {
        match self.settled.binary_search_by_key(&i, |(j, _)| *j) {
            Ok(at) => &self.settled[at].1,
            Err(_) => &[],
        }
    }

    fn esp_row(&self, i: usize) -> EspSaRow<'_> {
        self.prefetch_esp_row(i + ROWS_AHEAD);
        let (k, e) = self.esps[i];
        EspSaRow {
            key: k,
            sa: e,
            ike: self.ike_of[i],
            peer: self.peers[i].map(|(j, how)| (self.esps[j].0.spi, how)),
            decryption: self.t.esp_decrypt.get(k).map(|d| d.to_report()),
        }
    }
}

/// One IKE SA as a row of the report, before any field is turned into text.
#[derive(Clone, Copy)]
pub struct IkeSaRow<'r> {
    sa: &'r IkeSa,
    settled: &'r [Settled],
}

impl<'r> IkeSaRow<'r> {
    /// 1 or 2.
    pub fn version(&self) -> u8 {
        self.sa.key.version
    }

    /// Initiator SPI / cookie.
    pub fn spi_i(&self) -> u64 {
        self.sa.spi_i
    }

    /// Lifecycle state.
    pub fn state(&self) -> IkeState {
        self.sa.state
    }

    /// Initiator address and port as first seen.
    pub fn initiator(&self) -> Endpoint {
        Endpoint(self.sa.initiator.0, Some(self.sa.initiator.1))
    }

    /// Responder address and port as first seen.
    pub fn responder(&self) -> Endpoint {
        Endpoint(self.sa.responder.0, Some(self.sa.responder.1))
    }

    /// Capture time of the first packet, seconds.
    pub fn started(&self) -> f64 {
        self.sa.started.as_secs_f64()
    }

    /// From the first request to the message that made the first child SA usable.
    pub fn established_after_s(&self) -> Option<f64> {
        self.sa.established_after()
    }

    /// Retransmitted messages.
    pub fn retransmissions(&self) -> u32 {
        self.sa.retransmissions
    }

    /// Why it failed, when it did.
    pub fn failure(&self) -> Option<&'r Failure> {
        self.sa.failure.as_deref()
    }

    /// Initiator SPI of the IKE SA this one replaced by a rekey.
    pub fn rekeyed_from(&self) -> Option<u64> {
        self.sa.rekeyed_from
    }

    /// Decryption of its messages, when a key was tried.
    pub fn decryption(&self) -> Option<DecryptionReport> {
        self.sa.rare().decryption.map(|t| t.to_report())
    }

    /// Its child SAs, with the rekeys that ESP timing settled.
    pub fn children(&self) -> impl Iterator<Item = ChildSaRow> + 'r {
        let (sa, settled) = (self.sa, self.settled);
        sa.children
            .iter()
            .enumerate()
            .map(move |(j, c)| child_row(sa, settled, j, c))
    }

    /// The full report row.
    pub fn to_report(&self) -> IkeSaReport {
        let mut r = self.sa.to_report();
        for (row, c) in r.child_sas.iter_mut().zip(self.children()) {
            row.rekeyed_from = c.rekeyed_from.map(spi32);
            row.deleted = c.deleted;
        }
        r
    }
}

/// A child SA as a row: what the text tables print of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildSaRow {
    /// `esp` or `ah`.
    pub protocol: &'static str,
    /// Inbound SPI (towards the initiator), when known.
    pub spi_in: Option<u32>,
    /// Outbound SPI (towards the responder), when known.
    pub spi_out: Option<u32>,
    /// `decrypted`, `proposal` or `inferred`.
    pub source: &'static str,
    /// The inbound SPI of the child SA this one replaced.
    pub rekeyed_from: Option<u32>,
    /// A Delete removed it.
    pub deleted: bool,
}

/// Child `j` of `sa` with what settling its open rekeys changed (see [`settle_rekeys`]).
fn child_row(sa: &IkeSa, settled: &[Settled], j: usize, c: &Child) -> ChildSaRow {
    let mut row = ChildSaRow {
        protocol: if c.protocol == 2 { "ah" } else { "esp" },
        spi_in: c.spi_in,
        spi_out: c.spi_out,
        source: c.source.as_str(),
        rekeyed_from: c.rekeyed_from,
        deleted: c.deleted,
    };
    for s in settled {
        if s.new == j {
            let old = &sa.children[s.old];
            row.rekeyed_from = old.spi_in.or(old.spi_out);
        }
        if s.old == j {
            row.deleted |= sa.children[s.new].delete_pending;
        }
    }
    row
}

/// One ESP or AH SA as a row of the report, before any field is turned into text.
pub struct EspSaRow<'r> {
    key: &'r EspKey,
    sa: &'r EspSa,
    ike: Option<&'r IkeSa>,
    peer: Option<(u32, Pairing)>,
    decryption: Option<DecryptionReport>,
}

impl EspSaRow<'_> {
    /// SPI.
    pub fn spi(&self) -> u32 {
        self.key.spi
    }

    /// Source (`ip`, or `ip:port` when UDP-encapsulated).
    pub fn src(&self) -> Endpoint {
        Endpoint(self.sa.src, self.sa.ports.map(|p| p.0))
    }

    /// Destination (`ip`, or `ip:port` when UDP-encapsulated).
    pub fn dst(&self) -> Endpoint {
        Endpoint(self.key.dst, self.sa.ports.map(|p| p.1))
    }

    /// `none` or `udp`.
    pub fn encap(&self) -> &'static str {
        if self.sa.ports.is_some() {
            "udp"
        } else {
            "none"
        }
    }

    /// Packets seen.
    pub fn packets(&self) -> u64 {
        self.sa.packets
    }

    /// Bytes of ESP/AH payload seen.
    pub fn bytes(&self) -> u64 {
        self.sa.bytes
    }

    /// Sequence numbers skipped.
    pub fn lost(&self) -> u64 {
        self.sa.lost
    }

    /// Sequence numbers seen twice.
    pub fn replayed(&self) -> u64 {
        u64::from(self.sa.replayed)
    }

    /// Packets that arrived out of order within the window.
    pub fn reordered(&self) -> u64 {
        u64::from(self.sa.reordered)
    }

    /// Initiator SPI of the IKE SA it belongs to, and how it was attached to it.
    pub fn ike_sa(&self) -> Option<(u64, Option<&'static str>)> {
        self.ike
            .map(|sa| (sa.spi_i, self.sa.link.map(|l| l.as_str())))
    }

    /// Decryption of its packets, when a key was given for it.
    pub fn decryption(&self) -> Option<&DecryptionReport> {
        self.decryption.as_ref()
    }

    /// The full report row.
    pub fn to_report(&self) -> EspSaReport {
        let (k, e) = (self.key, self.sa);
        EspSaReport {
            spi: spi32(k.spi),
            src: self.src().to_string(),
            dst: self.dst().to_string(),
            encap: self.encap().to_string(),
            packets: e.packets,
            bytes: e.bytes,
            first_seen: e.first_seen as f64 / 1e9,
            last_seen: e.last_seen as f64 / 1e9,
            first_frame: e.first_frame,
            last_frame: e.last_frame,
            lost: e.lost,
            replayed: u64::from(e.replayed),
            reordered: u64::from(e.reordered),
            ike_sa: self.ike.map(|sa| spi64(sa.spi_i)),
            ike_sa_link: self.ike.and(e.link).map(|l| l.as_str().to_string()),
            peer_spi: self.peer.map(|(spi, _)| spi32(spi)),
            peer_link: self.peer.map(|(_, how)| how.as_str().to_string()),
            rule: None,
            decryption: self.decryption.clone(),
        }
    }
}

/// An address with an optional port, printed as `ip`, `ip:port` or `[v6]:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint(pub IpAddr, pub Option<u16>);

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            // Written by hand: through the formatting machinery an IPv4 address and port
            // cost about 1,300 instructions, and a report prints one or two per row.
            (IpAddr::V4(a), port) => {
                let mut buf = [0u8; V4_TEXT_MAX];
                f.write_str(v4_text(&mut buf, a, port))
            }
            (ip, None) => write!(f, "{ip}"),
            (IpAddr::V6(a), Some(p)) => write!(f, "[{a}]:{p}"),
        }
    }
}

impl Endpoint {
    /// Appends the text [`fmt::Display`] prints to `out`, without going through a
    /// formatter (the text report prints two per row).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match (self.0, self.1) {
            (IpAddr::V4(a), port) => {
                let mut buf = [0u8; V4_TEXT_MAX];
                out.extend_from_slice(v4_text(&mut buf, a, port).as_bytes());
            }
            // Writing into a `Vec` cannot fail.
            _ => {
                let _ = std::io::Write::write_fmt(out, format_args!("{self}"));
            }
        }
    }
}

/// The longest `a.b.c.d:port`.
const V4_TEXT_MAX: usize = "255.255.255.255:65535".len();

/// `a.b.c.d` or `a.b.c.d:port` in `buf`, as `Ipv4Addr` and `u16` display them.
fn v4_text(buf: &mut [u8; V4_TEXT_MAX], a: Ipv4Addr, port: Option<u16>) -> &str {
    let mut text = Ascii { buf, len: 0 };
    for (i, octet) in a.octets().into_iter().enumerate() {
        if i > 0 {
            text.push(b'.');
        }
        text.decimal(u16::from(octet));
    }
    if let Some(p) = port {
        text.push(b':');
        text.decimal(p);
    }
    let len = text.len;
    // Only ASCII digits, dots and a colon were written.
    std::str::from_utf8(&buf[..len]).unwrap_or_default()
}

/// ASCII written into a fixed buffer (what does not fit is dropped; the callers' sizes
/// rule that out).
struct Ascii<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Ascii<'_> {
    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// `v` in decimal, without leading zeros.
    fn decimal(&mut self, v: u16) {
        let mut started = false;
        for div in [10_000, 1_000, 100, 10, 1] {
            let d = (v / div) % 10;
            if d != 0 || started || div == 1 {
                self.push(b'0' + d as u8);
                started = true;
            }
        }
    }
}

/// A replaced child's last packet may trail the new one's first by this much.
const HANDOVER_NS: i64 = 1_000_000_000;

/// Settles each open rekey of `sa` (see [`Child::rekey_open`]): the child it replaced is
/// the candidate whose ESP in the same direction stopped by the new child's first packet
/// (give or take the handover), the latest such one when several did. Candidates still
/// sending after the handover are other filters' children. An open rekey that nothing
/// stopped for is not a rekey. Also returns how many children a Delete removed that the
/// live tables still count (live SAs only).
fn settle_rekeys(t: &Tracker, sa: &IkeSa) -> (Vec<Settled>, u64) {
    let live = matches!(sa.state, IkeState::Established | IkeState::Negotiating);
    let mut settled: Vec<Settled> = Vec::new();
    let mut deleted = 0;
    for (j, c) in sa.children.iter().enumerate() {
        let Some(towards_initiator) = c.rekey_open else {
            continue;
        };
        // A Delete followed, so one live-looking child is gone, found or not.
        deleted += u64::from(c.delete_pending && live);
        if let Some(k) = replaced_child(t, sa, j, towards_initiator, &settled) {
            settled.push(Settled { new: j, old: k });
        }
    }
    (settled, deleted)
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
    taken: &[Settled],
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
        .filter(|k| sa.children[*k].protocol == c.protocol && !taken.iter().any(|s| s.old == *k))
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
fn pair_directions(
    t: &Tracker,
    esps: &[(&EspKey, &EspSa)],
    ike_of: &[Option<&IkeSa>],
) -> Vec<Peer> {
    let mut peer = vec![None; esps.len()];
    let mut by_spi: HashMap<(u32, bool, IpAddr), usize, ahash::RandomState> =
        HashMap::with_capacity_and_hasher(esps.len(), t.hasher.clone());
    for (i, (k, _)) in esps.iter().enumerate() {
        by_spi.insert((k.spi, k.ah, k.dst), i);
    }
    for (i, (k, e)) in esps.iter().enumerate() {
        let Some(sa) = ike_of[i] else {
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

/// Pairs the directions left over by reversed endpoints and timing. The unpaired SAs are
/// grouped by direction in one sorted list (source, destination, protocol, index), so
/// the candidates of a direction are one run of it, in index order.
fn pair_by_time(t: &Tracker, esps: &[(&EspKey, &EspSa)], peer: &mut [Peer]) {
    let window = t.config.stall_after_ns;
    let mut by_dir: Vec<(IpAddr, IpAddr, bool, usize)> = esps
        .iter()
        .enumerate()
        .filter(|(i, _)| peer[*i].is_none())
        .map(|(i, (k, e))| (e.src, k.dst, k.ah, i))
        .collect();
    by_dir.sort_unstable();
    for i in 0..esps.len() {
        let (k, e) = esps[i];
        if peer[i].is_some() {
            continue;
        }
        let dir = (k.dst, e.src, k.ah);
        let from = by_dir.partition_point(|c| (c.0, c.1, c.2) < dir);
        let best = by_dir[from..]
            .iter()
            .take_while(|c| (c.0, c.1, c.2) == dir)
            .map(|c| c.3)
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
fn stats(
    t: &Tracker,
    sas: &[&IkeSa],
    esps: &[(&EspKey, &EspSa)],
    ike_of: &[Option<&IkeSa>],
    peers: &[Peer],
) -> Stats {
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
        if ike_of[i].is_none() {
            s.soft_associations += 1;
            // A pair of soft directions is one association.
            let counted_by_peer = peers[i].is_some_and(|(j, _)| j < i);
            if !e.expired && !counted_by_peer && !e.bad {
                s.active_associations += 1;
            }
        }
        let sent = sent_by_us(t, k, e, ike_of[i], esps, peers[i].map(|(j, _)| j));
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
    let ike = e
        .ike()
        .and_then(|key| t.current(key))
        .and_then(|key| t.ike.get(&key));
    sent_by_us(t, k, e, ike, &[], None)
}

/// "Sent" is from the local host when one is configured, else from the IKE SA's
/// initiator (`ike`, the SA that holds its child now), else (no IKE SA) from whichever
/// direction of the pair started first.
fn sent_by_us(
    t: &Tracker,
    k: &EspKey,
    e: &EspSa,
    ike: Option<&IkeSa>,
    esps: &[(&EspKey, &EspSa)],
    peer: Option<usize>,
) -> bool {
    if let Some(local) = t.config.local {
        return e.src == local;
    }
    if let Some(sa) = ike {
        return !sa.towards_initiator(k.dst);
    }
    peer.is_none_or(|j| {
        let other = esps[j].1;
        (e.first_seen, e.first_frame) <= (other.first_seen, other.first_frame)
    })
}

/// The report of everything the tracker holds.
pub(crate) fn report(t: &Tracker) -> Report {
    Rows::new(t).into_report()
}

/// Fills in what a row of the report learns outside the tracker (the engine's policy
/// rules) before the row is written.
pub trait RowLabel {
    /// Completes an IKE SA row.
    fn ike(&self, row: &mut IkeSaReport);
    /// Completes an ESP or AH SA row.
    fn esp(&self, row: &mut EspSaReport);
}

/// Rows that need nothing added.
impl RowLabel for () {
    fn ike(&self, _: &mut IkeSaReport) {}
    fn esp(&self, _: &mut EspSaReport) {}
}

/// The report document made row by row while it is serialized: the same document as
/// [`Rows::into_report`] gives (the field order of [`Report`]), without holding it.
pub struct StreamedReport<'a, 't, L> {
    rows: &'a Rows<'t>,
    label: &'a L,
}

impl<'t> Rows<'t> {
    /// The report as a value that builds each row when it is serialized, passing it
    /// through `label` first.
    pub fn streamed<'a, L: RowLabel>(&'a self, label: &'a L) -> StreamedReport<'a, 't, L> {
        StreamedReport { rows: self, label }
    }
}

impl<L: RowLabel> Serialize for StreamedReport<'_, '_, L> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (rows, label) = (self.rows, self.label);
        let esp = |ah: bool| {
            Seq(move || {
                rows.esp_rows(ah).map(move |r| {
                    let mut row = r.to_report();
                    label.esp(&mut row);
                    row
                })
            })
        };
        let ike = Seq(|| {
            rows.ike_rows().map(|r| {
                let mut row = r.to_report();
                label.ike(&mut row);
                row
            })
        });
        let mut doc = s.serialize_struct("Report", 9)?;
        doc.serialize_field("schema", &Report::default().schema)?;
        doc.serialize_field("ike_sas", &ike)?;
        doc.serialize_field("esp_sas", &esp(false))?;
        doc.serialize_field("ah_sas", &esp(true))?;
        doc.serialize_field("stats", &rows.stats)?;
        doc.serialize_field("frames", &rows.frames())?;
        doc.serialize_field("decode_errors", &rows.decode_errors())?;
        doc.serialize_field("evictions", &rows.evictions)?;
        doc.serialize_field("last_ts", &rows.last_ts())?;
        doc.end()
    }
}

/// A sequence serialized from the iterator its function makes.
struct Seq<F>(F);

impl<F, I> Serialize for Seq<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((self.0)())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_endpoints_print_as_the_standard_library_prints_them() {
        let cases = [
            ("0.0.0.0", None),
            ("255.255.255.255", Some(65535)),
            ("10.0.0.1", Some(0)),
            ("1.22.133.4", Some(500)),
            ("100.1.120.81", Some(4500)),
            ("198.0.5.9", Some(10_000)),
            ("192.0.2.10", Some(99)),
        ];
        for (ip, port) in cases {
            let a: Ipv4Addr = ip.parse().unwrap();
            let expected = match port {
                Some(p) => format!("{a}:{p}"),
                None => format!("{a}"),
            };
            assert_eq!(Endpoint(IpAddr::V4(a), port).to_string(), expected);
        }
    }

    #[test]
    fn spis_print_as_fixed_width_lower_case_hex() {
        use crate::track::report::{spi32, spi64};
        assert_eq!(spi64(0xab), "00000000000000ab");
        assert_eq!(spi64(u64::MAX), "ffffffffffffffff");
        assert_eq!(spi64(0x5ac6_ccdc_2d21_1caf), "5ac6ccdc2d211caf");
        assert_eq!(spi32(0), "00000000");
        assert_eq!(spi32(0x8cfb_2931), "8cfb2931");
    }

    #[test]
    fn ipv6_endpoints_keep_their_brackets() {
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(Endpoint(ip, Some(4500)).to_string(), "[2001:db8::1]:4500");
        assert_eq!(Endpoint(ip, None).to_string(), "2001:db8::1");
    }
}
