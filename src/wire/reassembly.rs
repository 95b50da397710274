//! Bounded IPv4/IPv6 fragment reassembly.
//!
//! Datagrams are keyed by (source, destination, identification, protocol). The table holds
//! at most `max_reassemblies` datagrams of at most `max_datagram` bytes each; when it is
//! full the datagram started longest ago is evicted. A datagram still incomplete 30 s of
//! packet time after its first fragment expires (the reassembly timeout Linux uses,
//! `ipfrag_time`). Any overlap between fragments drops the datagram (RFC 5722 requires it
//! for IPv6, and for IPv4 overlaps are how fragment attacks hide data), except an exact
//! byte-for-byte duplicate, which a capture on several interfaces produces and which is
//! ignored.
//!
//! Incomplete datagrams whose first fragment showed UDP port 500 or 4500 are remembered
//! when they expire or are evicted, so that the tracker can report lost IKE fragments.
//! Such a datagram is only recognised when its first fragment was captured, and for IPv6
//! only when UDP follows the fragment header directly.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use super::esp::be16;
use super::ip::{proto, IKE_PORT, NATT_PORT};
use super::{Reason, Timestamp};

/// How long an incomplete datagram is kept, in nanoseconds of packet time.
pub const REASSEMBLY_TIMEOUT_NS: i64 = 30_000_000_000;
/// Most fragments accepted for one datagram (a 64 KiB datagram in 1280-byte IPv6
/// fragments needs 52; 576-byte IPv4 links need 119).
pub const MAX_FRAGMENTS: usize = 256;
/// Most incomplete IKE datagrams remembered until the tracker takes them.
pub const MAX_LOST_IKE: usize = 256;

/// What identifies one datagram's fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IPv4 identification or IPv6 fragment identification.
    pub id: u32,
    /// Protocol of the fragmented part.
    pub protocol: u8,
}

/// One fragment as handed to [`Reassembler::push`].
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    /// The datagram it belongs to.
    pub key: FragmentKey,
    /// Byte offset of `data` in the datagram.
    pub offset: usize,
    /// More fragments follow.
    pub more: bool,
    /// The fragment's data.
    pub data: &'a [u8],
    /// Capture time.
    pub ts: Timestamp,
    /// Frame number (1-based) in the capture.
    pub frame: u64,
}

/// Counters of the reassembly table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Datagrams reassembled completely.
    pub completed: u64,
    /// Datagrams dropped incomplete after the timeout.
    pub expired: u64,
    /// Datagrams dropped incomplete to make room in a full table.
    pub evicted: u64,
    /// Datagrams dropped for overlapping, oversized or inconsistent fragments.
    pub bad: u64,
}

/// An IKE datagram (UDP 500/4500) that never completed: fragments were lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncompleteIke {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// UDP ports from the first fragment.
    pub ports: (u16, u16),
    /// Frame number of the first fragment (offset 0).
    pub first_frame: u64,
    /// Capture time of the first fragment.
    pub first_ts: Timestamp,
    /// Bytes of the datagram that did arrive.
    pub bytes_seen: usize,
    /// Number of fragments that arrived.
    pub fragments: u32,
    /// The total length, when the last fragment arrived.
    pub total: Option<usize>,
    /// `true` when dropped to make room, `false` when it timed out.
    pub evicted: bool,
}

/// One datagram under reassembly.
#[derive(Debug)]
struct Entry {
    key: FragmentKey,
    started: Timestamp,
    buf: Vec<u8>,
    /// Received byte ranges `[start, end)`, sorted, never overlapping.
    ranges: Vec<(usize, usize)>,
    total: Option<usize>,
    received: usize,
    first: Option<FirstFragment>,
}

/// What the first fragment (offset 0) showed.
#[derive(Debug, Clone, Copy)]
struct FirstFragment {
    frame: u64,
    ts: Timestamp,
    /// UDP ports, when the datagram is UDP.
    ports: Option<(u16, u16)>,
}

/// The bounded reassembly table.
///
/// Each operation costs constant time whatever the table holds (a flood of fragments
/// must not cost work in proportion to the cap): datagrams are found through a hash
/// index (seeded, since senders choose the keys), and a queue in order of arrival of
/// first fragments says which datagram is oldest, for expiry and eviction. Packet time
/// that goes backwards makes that order approximate, never unbounded.
#[derive(Debug)]
pub struct Reassembler {
    max_entries: usize,
    max_datagram: usize,
    entries: Vec<Entry>,
    index: HashMap<FragmentKey, usize, ahash::RandomState>,
    /// (start, key) of datagrams in order of their start; entries that completed or were
    /// dropped stay until they reach the front or the queue is compacted.
    order: VecDeque<(Timestamp, FragmentKey)>,
    done: Vec<u8>,
    stats: ReassemblyStats,
    lost_ike: VecDeque<IncompleteIke>,
}

/// What [`Reassembler::push`] made of a fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed<'a> {
    /// Stored; the datagram is not complete yet.
    Stored,
    /// The datagram is complete: its fragmentable part.
    Complete(&'a [u8]),
}

impl Reassembler {
    /// An empty table with the given limits.
    pub fn new(max_entries: usize, max_datagram: usize) -> Self {
        Reassembler {
            max_entries,
            max_datagram,
            entries: Vec::new(),
            index: HashMap::with_hasher(ahash::RandomState::new()),
            order: VecDeque::new(),
            done: Vec::new(),
            stats: ReassemblyStats::default(),
            lost_ike: VecDeque::new(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// Datagrams under reassembly now.
    pub fn in_progress(&self) -> usize {
        self.entries.len()
    }

    /// Takes the incomplete IKE datagrams recorded since the last call, oldest first.
    #[inline]
    pub fn take_lost_ike(&mut self) -> Vec<IncompleteIke> {
        if self.lost_ike.is_empty() {
            return Vec::new();
        }
        self.lost_ike.drain(..).collect()
    }

    /// Incomplete IKE datagrams still waiting for fragments (for an end-of-capture view).
    pub fn pending_ike(&self) -> impl Iterator<Item = IncompleteIke> + '_ {
        self.entries.iter().filter_map(|e| e.incomplete_ike(false))
    }

    /// Drops datagrams older than the timeout at packet time `now`. Costs one comparison
    /// when nothing is due, so it runs on every frame.
    #[inline]
    pub fn expire(&mut self, now: Timestamp) {
        if self.order.is_empty() {
            return;
        }
        self.expire_due(now);
    }

    /// [`Reassembler::expire`] when datagrams are waiting.
    #[inline(never)]
    fn expire_due(&mut self, now: Timestamp) {
        let due = |t: Timestamp| now.0.saturating_sub(t.0) > REASSEMBLY_TIMEOUT_NS;
        while let Some(&(started, key)) = self.order.front() {
            if !due(started) {
                break;
            }
            self.order.pop_front();
            if let Some(e) = self.take(&key, started) {
                self.stats.expired += 1;
                self.remember_lost(&e, false);
            }
        }
    }

    /// Adds a fragment. Returns the datagram's bytes when this fragment completed it, or
    /// [`Reason::BadFragment`] when the fragment was inconsistent (the datagram is dropped).
    pub fn push(&mut self, frag: &Fragment<'_>) -> Result<Pushed<'_>, Reason> {
        self.expire(frag.ts);
        let idx = match self.index.get(&frag.key) {
            Some(&i) => i,
            None => self.insert(frag)?,
        };
        let entry = &mut self.entries[idx];
        let started = entry.started;
        match entry.add(frag, self.max_datagram) {
            Ok(true) => {}
            Ok(false) => return Ok(Pushed::Stored),
            Err(reason) => {
                self.take(&frag.key, started);
                self.stats.bad += 1;
                return Err(reason);
            }
        }
        let entry = self.take(&frag.key, started).ok_or(Reason::BadFragment)?;
        self.stats.completed += 1;
        let total = entry.total.unwrap_or_default();
        self.done = entry.buf;
        self.done.truncate(total);
        Ok(Pushed::Complete(&self.done))
    }

    /// Removes and returns the datagram `key` if it is the one that started at
    /// `started` (a later datagram may reuse a key whose queue entry is stale).
    fn take(&mut self, key: &FragmentKey, started: Timestamp) -> Option<Entry> {
        let i = *self.index.get(key)?;
        if self.entries[i].started != started {
            return None;
        }
        self.index.remove(key);
        let e = self.entries.swap_remove(i);
        if let Some(moved) = self.entries.get(i) {
            self.index.insert(moved.key, i);
        }
        Some(e)
    }

    /// Starts a new datagram, evicting the oldest one when the table is full.
    fn insert(&mut self, frag: &Fragment<'_>) -> Result<usize, Reason> {
        if self.max_entries == 0 {
            self.stats.bad += 1;
            return Err(Reason::BadFragment);
        }
        while self.entries.len() >= self.max_entries {
            let Some((started, key)) = self.order.pop_front() else {
                break;
            };
            if let Some(e) = self.take(&key, started) {
                self.stats.evicted += 1;
                self.remember_lost(&e, true);
            }
        }
        self.entries.push(Entry {
            key: frag.key,
            started: frag.ts,
            buf: Vec::new(),
            ranges: Vec::new(),
            total: None,
            received: 0,
            first: None,
        });
        let idx = self.entries.len() - 1;
        self.index.insert(frag.key, idx);
        self.order.push_back((frag.ts, frag.key));
        self.compact_order();
        Ok(idx)
    }

    /// Drops queue entries of datagrams already gone once they outnumber the live ones,
    /// so that a steady stream of datagrams that complete keeps the queue small
    /// (amortised constant time).
    fn compact_order(&mut self) {
        if self.order.len() <= 2 * self.entries.len() + 64 {
            return;
        }
        let (index, entries) = (&self.index, &self.entries);
        self.order
            .retain(|(t, k)| index.get(k).is_some_and(|&i| entries[i].started == *t));
    }

    fn remember_lost(&mut self, entry: &Entry, evicted: bool) {
        if let Some(lost) = entry.incomplete_ike(evicted) {
            if self.lost_ike.len() >= MAX_LOST_IKE {
                self.lost_ike.pop_front();
            }
            self.lost_ike.push_back(lost);
        }
    }
}

impl Entry {
    /// Stores a fragment; `Ok(true)` when the datagram is now complete.
    fn add(&mut self, frag: &Fragment<'_>, max_datagram: usize) -> Result<bool, Reason> {
        let (start, end) = (frag.offset, frag.offset.saturating_add(frag.data.len()));
        if let Some(dup) = self.duplicate_of(start, end) {
            return if dup && self.buf.get(start..end) == Some(frag.data) {
                Ok(false)
            } else {
                Err(Reason::BadFragment)
            };
        }
        let misaligned = frag.more && frag.data.len() % 8 != 0;
        let past_total = self
            .total
            .is_some_and(|t| end > t || (!frag.more && end != t));
        let short_last = !frag.more && self.ranges.last().is_some_and(|r| r.1 > end);
        if end > max_datagram || misaligned || past_total || short_last {
            return Err(Reason::BadFragment);
        }
        if self.ranges.len() >= MAX_FRAGMENTS {
            return Err(Reason::BadFragment);
        }
        self.store(frag, start, end);
        Ok(self.total == Some(self.received))
    }

    /// `Some(true)` when `[start, end)` equals a stored range, `Some(false)` when it
    /// overlaps one otherwise, `None` when it is new.
    fn duplicate_of(&self, start: usize, end: usize) -> Option<bool> {
        self.ranges
            .iter()
            .find(|(s, e)| *s < end && start < *e || (*s, *e) == (start, end))
            .map(|r| *r == (start, end))
    }

    fn store(&mut self, frag: &Fragment<'_>, start: usize, end: usize) {
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        if let Some(dst) = self.buf.get_mut(start..end) {
            dst.copy_from_slice(frag.data);
        }
        let at = self.ranges.partition_point(|r| r.0 < start);
        self.ranges.insert(at, (start, end));
        self.received += end - start;
        if !frag.more {
            self.total = Some(end);
        }
        if start == 0 {
            let ports = (frag.key.protocol == proto::UDP)
                .then(|| be16(frag.data, 0).zip(be16(frag.data, 2)))
                .flatten();
            self.first = Some(FirstFragment {
                frame: frag.frame,
                ts: frag.ts,
                ports,
            });
        }
    }

    fn incomplete_ike(&self, evicted: bool) -> Option<IncompleteIke> {
        let first = self.first?;
        let ports = first.ports?;
        let ike = [IKE_PORT, NATT_PORT];
        if !ike.contains(&ports.0) && !ike.contains(&ports.1) {
            return None;
        }
        Some(IncompleteIke {
            src: self.key.src,
            dst: self.key.dst,
            ports,
            first_frame: first.frame,
            first_ts: first.ts,
            bytes_seen: self.received,
            fragments: self.ranges.len() as u32,
            total: self.total,
            evicted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const SEC: i64 = 1_000_000_000;

    fn key(id: u32) -> FragmentKey {
        FragmentKey {
            src: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
            id,
            protocol: proto::UDP,
        }
    }

    fn frag(id: u32, offset: usize, more: bool, data: &[u8], t: i64) -> Fragment<'_> {
        Fragment {
            key: key(id),
            offset,
            more,
            data,
            ts: Timestamp(t * SEC),
            frame: offset as u64 / 8 + 1,
        }
    }

    /// A 40-byte UDP datagram 500 -> 500 cut in three.
    fn datagram() -> Vec<u8> {
        let mut d = vec![0x01, 0xf4, 0x01, 0xf4, 0, 40, 0, 0];
        d.extend((0..32).map(|i| i as u8));
        d
    }

    fn complete(p: Result<Pushed<'_>, Reason>) -> Vec<u8> {
        match p {
            Ok(Pushed::Complete(b)) => b.to_vec(),
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn in_order() {
        let d = datagram();
        let mut r = Reassembler::new(4, 1000);
        assert_eq!(r.push(&frag(1, 0, true, &d[..16], 0)), Ok(Pushed::Stored));
        assert_eq!(
            r.push(&frag(1, 16, true, &d[16..32], 0)),
            Ok(Pushed::Stored)
        );
        assert_eq!(complete(r.push(&frag(1, 32, false, &d[32..], 0))), d);
        assert_eq!(r.stats().completed, 1);
        assert_eq!(r.in_progress(), 0);
    }

    #[test]
    fn out_of_order_and_interleaved() {
        let d = datagram();
        let mut r = Reassembler::new(4, 1000);
        assert_eq!(r.push(&frag(1, 32, false, &d[32..], 0)), Ok(Pushed::Stored));
        assert_eq!(r.push(&frag(2, 0, true, &d[..16], 0)), Ok(Pushed::Stored));
        assert_eq!(r.push(&frag(1, 0, true, &d[..16], 0)), Ok(Pushed::Stored));
        assert_eq!(complete(r.push(&frag(1, 16, true, &d[16..32], 0))), d);
        assert_eq!(r.in_progress(), 1);
    }

    #[test]
    fn exact_duplicate_is_ignored() {
        let d = datagram();
        let mut r = Reassembler::new(4, 1000);
        r.push(&frag(1, 0, true, &d[..16], 0)).unwrap();
        assert_eq!(r.push(&frag(1, 0, true, &d[..16], 0)), Ok(Pushed::Stored));
        r.push(&frag(1, 16, true, &d[16..32], 0)).unwrap();
        assert_eq!(complete(r.push(&frag(1, 32, false, &d[32..], 0))), d);
        assert_eq!(r.stats().bad, 0);
    }

    #[test]
    fn overlap_drops_the_datagram() {
        let d = datagram();
        let mut r = Reassembler::new(4, 1000);
        r.push(&frag(1, 0, true, &d[..16], 0)).unwrap();
        assert_eq!(
            r.push(&frag(1, 8, true, &d[8..24], 0)),
            Err(Reason::BadFragment)
        );
        assert_eq!(r.in_progress(), 0);
        let mut r = Reassembler::new(4, 1000);
        r.push(&frag(1, 0, true, &d[..16], 0)).unwrap();
        let changed = [0xffu8; 16];
        assert_eq!(
            r.push(&frag(1, 0, true, &changed, 0)),
            Err(Reason::BadFragment)
        );
        assert_eq!(r.stats().bad, 1);
    }

    #[test]
    fn out_of_range_fragments_are_bad() {
        let d = datagram();
        type Case<'a> = (&'a [(usize, bool, usize)], usize);
        let cases: [Case; 4] = [
            (&[(0, true, 12)], 1000), // non-last fragment not a multiple of 8
            (&[(32, false, 8), (40, true, 8)], 1000), // data past the known total
            (&[(16, true, 16), (0, false, 8)], 1000), // last fragment ends before others
            (&[(0, true, 16), (16, false, 24)], 32), // beyond max_datagram
        ];
        for (frags, max) in cases {
            let mut r = Reassembler::new(4, max);
            let mut result = Ok(Pushed::Stored);
            for &(off, more, len) in frags {
                let data = d.get(off..off + len).unwrap_or(&d[..len]);
                result = r.push(&frag(1, off, more, data, 0)).map(|_| Pushed::Stored);
            }
            assert_eq!(result, Err(Reason::BadFragment), "{frags:?}");
            assert_eq!(r.stats().bad, 1);
        }
    }

    #[test]
    fn timeout_expires_and_reports_ike() {
        let d = datagram();
        let mut r = Reassembler::new(4, 1000);
        r.push(&frag(1, 0, true, &d[..16], 10)).unwrap();
        r.push(&frag(1, 16, true, &d[16..32], 11)).unwrap();
        r.expire(Timestamp(40 * SEC));
        assert_eq!(r.in_progress(), 1);
        assert_eq!(r.pending_ike().count(), 1);
        r.expire(Timestamp(41 * SEC));
        assert_eq!(r.in_progress(), 0);
        assert_eq!(r.stats().expired, 1);
        let lost = r.take_lost_ike();
        assert_eq!(lost.len(), 1);
        let l = lost[0];
        assert_eq!(
            (l.ports, l.first_frame, l.bytes_seen, l.fragments),
            ((500, 500), 1, 32, 2)
        );
        assert_eq!(
            (l.first_ts, l.total, l.evicted),
            (Timestamp(10 * SEC), None, false)
        );
        assert!(r.take_lost_ike().is_empty());
        // The late last fragment starts a new datagram rather than completing the old one.
        assert_eq!(
            r.push(&frag(1, 32, false, &d[32..], 42)),
            Ok(Pushed::Stored)
        );
    }

    #[test]
    fn non_ike_and_headless_datagrams_are_not_reported() {
        let mut d = datagram();
        d[1] = 53;
        d[3] = 53;
        let mut r = Reassembler::new(4, 1000);
        r.push(&frag(1, 0, true, &d[..16], 0)).unwrap();
        r.push(&frag(2, 16, true, &d[16..32], 0)).unwrap();
        r.expire(Timestamp(31 * SEC));
        assert_eq!(r.stats().expired, 2);
        assert!(r.take_lost_ike().is_empty());
    }

    #[test]
    fn cap_evicts_the_oldest() {
        let d = datagram();
        let mut r = Reassembler::new(2, 1000);
        r.push(&frag(1, 0, true, &d[..16], 1)).unwrap();
        r.push(&frag(2, 0, true, &d[..16], 2)).unwrap();
        r.push(&frag(3, 0, true, &d[..16], 3)).unwrap();
        assert_eq!(r.in_progress(), 2);
        assert_eq!(r.stats().evicted, 1);
        let lost = r.take_lost_ike();
        assert_eq!(lost.len(), 1);
        assert!(lost[0].evicted);
        assert_eq!(lost[0].first_ts, Timestamp(SEC));
        // Datagram 2 survived and still completes.
        r.push(&frag(2, 16, true, &d[16..32], 4)).unwrap();
        assert_eq!(complete(r.push(&frag(2, 32, false, &d[32..], 4))), d);
    }

    #[test]
    fn zero_capacity_refuses_fragments() {
        let d = datagram();
        let mut r = Reassembler::new(0, 1000);
        assert_eq!(
            r.push(&frag(1, 0, true, &d[..16], 0)),
            Err(Reason::BadFragment)
        );
    }

    #[test]
    fn fragment_count_is_bounded() {
        let data = [0u8; 8];
        let mut r = Reassembler::new(1, 1 << 20);
        let mut last = Ok(Pushed::Stored);
        for i in 0..=MAX_FRAGMENTS {
            last = r
                .push(&frag(1, i * 8, true, &data, 0))
                .map(|_| Pushed::Stored);
        }
        assert_eq!(last, Err(Reason::BadFragment));
    }

    #[test]
    fn lost_ike_list_is_bounded() {
        let d = datagram();
        let mut r = Reassembler::new(1, 1000);
        for id in 0..(MAX_LOST_IKE as u32 + 10) {
            r.push(&frag(id, 0, true, &d[..16], 0)).unwrap();
        }
        assert_eq!(r.take_lost_ike().len(), MAX_LOST_IKE);
    }
}
