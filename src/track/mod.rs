//! Following security associations: IKE SA state machines (IKEv1 Main, Aggressive, Quick,
//! Informational; IKEv2 IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL), child and
//! ESP/AH SA tables, counters, sequence gaps and replays, rekeys, NAT evidence and timing.
//!
//! Time is always the packet's capture timestamp, passed in; nothing here reads a clock.
//! Timers (stalled negotiations, idle expiry) are checked by a sweep that runs every few
//! seconds of packet time, on [`Tracker::tick`], and finally on [`Tracker::finish`].
//!
//! IKE SAs are keyed by version and initiator SPI, never by addresses: IKE moves from
//! port 500 to 4500 and NAT rewrites ports mid-negotiation. ESP and AH SAs are keyed by
//! destination, SPI and protocol. Every table is bounded (see [`Config`]); when one is
//! full the least recently active entry is evicted and counted in
//! [`report::Evictions`].

mod build;
mod content;
pub mod correlate;
mod decryption;
mod esp;
mod icmp;
mod ike;
mod ikev1;
mod ikev2;
pub mod nat;
pub mod natd;
mod proposal;
pub mod report;
mod table;

pub use build::{ChildSaRow, Endpoint, EspSaRow, IkeSaRow, RowLabel, Rows, StreamedReport};

use std::net::IpAddr;

use tracing::debug;

use crate::decrypt::{DecryptError, EspPlain, Outcome};
use crate::wire::ike::{IkeHeader, IkeMessage};
use crate::wire::peek::Glance;
use crate::wire::reassembly::IncompleteIke;
use crate::wire::{Addrs, AhPacket, DecodeError, EspPacket, IcmpError, IkeDatagram, Timestamp};

use esp::{EspKey, EspSa, LinkKind};
use ike::{Counters, Effect, IkeKey, IkeSa, MsgCtx, Rekey};
use report::{Evictions, IkeState, Report, Stats};
use table::Table;

/// Limits and thresholds of the tracker.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most IKE SAs kept at once; the oldest idle one is evicted beyond it.
    pub max_ike_sas: usize,
    /// Most ESP/AH SAs kept at once.
    pub max_esp_sas: usize,
    /// A negotiation idle this long (packet time, nanoseconds) counts as stalled.
    pub stall_after_ns: i64,
    /// An SA with no packet for this long (packet time, nanoseconds) expires.
    pub idle_expiry_ns: i64,
    /// The local host, when known: "sent" and "received" are from its side.
    pub local: Option<IpAddr>,
    /// Live capture: SAs that ended (deleted, failed, expired) are dropped from the tables
    /// this long (packet time, nanoseconds) after their last packet, so that a monitor
    /// running for months holds only what is current. `None` (files) keeps every SA until
    /// a full table evicts it, so that a report lists them all.
    pub forget_after_ns: Option<i64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_ike_sas: 100_000,
            max_esp_sas: 1_000_000,
            stall_after_ns: 10_000_000_000,
            idle_expiry_ns: 3_600_000_000_000,
            local: None,
            forget_after_ns: None,
        }
    }
}

/// Shortest interval between two sweeps, in nanoseconds of packet time. A sweep walks
/// every table, so under a flood of negotiations (each with its own stall deadline) it
/// must not run on every packet; stalls are judged to within this interval.
const SWEEP_EVERY_NS: i64 = 1_000_000_000;

/// ESP arriving this long after a Delete named its SPI counts as a bad-SPI packet;
/// earlier ones were in flight when the Delete was sent.
const DELETE_GRACE_NS: i64 = 1_000_000_000;

/// The unordered pair of addresses of two IKE peers.
type PeerPair = (IpAddr, IpAddr);

fn peer_pair(a: IpAddr, b: IpAddr) -> PeerPair {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// A frame's lookup that [`Tracker::prefetch_index`] started: the table and the hash.
#[derive(Debug, Clone, Copy)]
pub struct Prefetch {
    ike: bool,
    bits: u32,
}

/// The tracker: every table, fed one decoded packet at a time.
#[derive(Debug)]
pub struct Tracker {
    config: Config,
    hasher: ahash::RandomState,
    ike: Table<IkeKey, IkeSa>,
    /// Initiator SPIs of retries that restarted with a new SPI, pointing at the SA.
    aliases: Table<IkeKey, IkeKey>,
    /// The IKE SA that most recently negotiated between two addresses.
    peers: Table<PeerPair, IkeKey>,
    esp: Table<EspKey, EspSa>,
    /// ESP/AH SPIs named by a cleartext or decrypted SA payload.
    announced: Table<(u32, bool), (IkeKey, LinkKind)>,
    /// ESP/AH SPIs named by a Delete, with its time.
    deleted_spis: Table<(u32, bool), i64>,
    /// Decryption outcomes of ESP SAs that a key was given for.
    esp_decrypt: Table<EspKey, decryption::Tally>,
    counters: Counters,
    evictions: Evictions,
    /// Bytes of ESP/AH SAs no longer in the table (evicted or forgotten), so that the
    /// statistics block never goes backwards.
    retired: Stats,
    frames: u64,
    decode_errors: u64,
    last_ts: Option<Timestamp>,
    next_sweep: i64,
    /// Reused space for writing proposals (see [`IkeSa::note_proposals`]).
    proposal_text: String,
    /// The proposal texts the IKE SAs share.
    proposals: proposal::Interner,
}

impl Tracker {
    /// An empty tracker.
    pub fn new(config: Config) -> Self {
        let ike_cap = config.max_ike_sas;
        let esp_cap = config.max_esp_sas;
        Tracker {
            config,
            hasher: ahash::RandomState::new(),
            ike: Table::new(ike_cap),
            aliases: Table::new(ike_cap),
            peers: Table::new(ike_cap),
            esp: Table::new(esp_cap),
            announced: Table::new(esp_cap),
            deleted_spis: Table::new(esp_cap.min(65_536)),
            esp_decrypt: Table::new(esp_cap.min(65_536)),
            counters: Counters::default(),
            evictions: Evictions::default(),
            retired: Stats::default(),
            frames: 0,
            decode_errors: 0,
            last_ts: None,
            next_sweep: i64::MIN,
            proposal_text: String::new(),
            proposals: proposal::Interner::default(),
        }
    }

    /// The tracker's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// An IKE message (`msg` decoded from `dgram.message`). Payloads that decryption
    /// recovered are marked [`decrypted`](crate::wire::ike::Payload::decrypted) and count
    /// like cleartext ones.
    pub fn on_ike(&mut self, frame: u64, ts: Timestamp, dgram: &IkeDatagram<'_>, msg: &IkeMessage) {
        self.seen(frame, ts);
        let version = msg.version();
        if version != 1 && version != 2 {
            return;
        }
        let hash = self.hasher.hash_one(dgram.message);
        let Some(key) = self.locate_ike(frame, ts, dgram, msg) else {
            return;
        };
        let Some(sa) = self.ike.get_mut(&key) else {
            return;
        };
        table::prefetch(&*sa);
        let (src, sport) = (dgram.addrs.src, dgram.addrs.ports.map(|p| p.0));
        let from_initiator = match version {
            2 => msg.header.is_initiator(),
            _ => sa.sent_by_initiator(src, sport),
        };
        let ctx = MsgCtx {
            frame,
            ts,
            hash,
            len: dgram.message.len(),
            addrs: dgram.addrs,
            msg,
            from_initiator,
        };
        sa.nat
            .on_message(frame, &dgram.addrs, dgram.encap, from_initiator, msg);
        let is_response = match version {
            2 => msg.header.is_response(),
            _ => !from_initiator,
        };
        sa.note_proposals(
            msg,
            is_response,
            &mut self.proposal_text,
            &mut self.proposals,
        );
        let children = sa.children.len();
        let mut fx = Vec::new();
        match version {
            2 => ikev2::on_message(sa, &ctx, &mut self.counters, &mut fx),
            _ => ikev1::on_message(sa, &ctx, &mut self.counters, &mut fx),
        }
        if sa.children.len() != children {
            let pair = peer_pair(sa.initiator.0, sa.responder.0);
            self.peers.insert(pair, key);
        }
        self.apply(key, frame, ts, fx);
        self.deadline(key);
        self.maybe_sweep(ts);
    }

    /// Starts loading the index lines that [`Tracker::on_ike`] will look the message up
    /// in (its IKE SA; for an opening message also the retry aliases and the peers), so
    /// that with many tunnels these cache misses arrive while the message is parsed
    /// instead of one after another afterwards. A hint only: nothing changes.
    pub fn prefetch_ike(&self, dgram: &IkeDatagram<'_>) {
        let Some(h) = crate::wire::ike::peek_header(dgram.message) else {
            return;
        };
        let key = IkeKey {
            version: h.major,
            spi_i: h.spi_i,
        };
        self.ike.prefetch_key(&key);
        if h.spi_r == 0 {
            self.aliases.prefetch_key(&key);
            self.peers
                .prefetch_key(&peer_pair(dgram.addrs.src, dgram.addrs.dst));
        }
    }

    /// `true` once the tables outgrow a core's own caches, when
    /// [`Tracker::prefetch_index`] pays: below that, the glance at the frames ahead and
    /// its hashing are all it adds.
    pub fn prefetch_worthwhile(&self) -> bool {
        // An ESP SA's entry is 160 bytes, an IKE SA's about 1.8 KB: about 1.3 MB, a
        // second-level cache. Measured (BENCHMARKS.md): with the lookups started three
        // frames ahead, 10,000 tunnels (25 MB of records, which a shared last-level
        // cache holds only while nothing else runs) gain, most when the machine is busy.
        self.esp.len() + 12 * self.ike.len() > 8_000
    }

    /// Starts loading the index line that a frame fed two frames from now will look up
    /// first; [`Tracker::prefetch_entry`] with the answer, a frame later, loads the entry
    /// it points to. With many tunnels both are cache misses, which then overlap the
    /// work on the frames before. A hint only.
    pub fn prefetch_index(&self, glance: &Glance<'_>) -> Option<Prefetch> {
        match *glance {
            Glance::Ipsec { src, dst, spi, ah } => Some(Prefetch {
                ike: false,
                bits: self.esp.prefetch_index(&EspKey::new(src, dst, spi, ah)),
            }),
            Glance::Ike { message, .. } => {
                let h = crate::wire::ike::peek_header(message)?;
                let key = IkeKey {
                    version: h.major,
                    spi_i: h.spi_i,
                };
                Some(Prefetch {
                    ike: true,
                    bits: self.ike.prefetch_index(&key),
                })
            }
        }
    }

    /// The second step of [`Tracker::prefetch_index`], for the next frame.
    pub fn prefetch_entry(&self, p: Prefetch) {
        match p.ike {
            true => self.ike.prefetch_slot(p.bits),
            false => self.esp.prefetch_slot(p.bits),
        }
    }

    /// An ESP packet: one table lookup and a counter update unless the SPI is new.
    pub fn on_esp(&mut self, frame: u64, ts: Timestamp, esp: &EspPacket<'_>) {
        self.seen(frame, ts);
        let key = EspKey::new(esp.addrs.src, esp.addrs.dst, esp.spi, false);
        self.on_ipsec(frame, ts, key, &esp.addrs, esp.seq, esp.payload.len());
    }

    /// An AH packet.
    pub fn on_ah(&mut self, frame: u64, ts: Timestamp, ah: &AhPacket<'_>) {
        self.seen(frame, ts);
        let key = EspKey::new(ah.addrs.src, ah.addrs.dst, ah.spi, true);
        let len = ah.payload.len() + ah.icv.len();
        self.on_ipsec(frame, ts, key, &ah.addrs, ah.seq, len);
        // AH leaves the transport header readable: its IKE SA's NAT evidence counts the
        // packet and checks the inner checksum against the outer addresses.
        let ike = self.esp.get(&key).and_then(|e| e.ike());
        if let Some(sa) = ike
            .and_then(|k| self.current(k))
            .and_then(|k| self.ike.get_mut(&k))
        {
            sa.nat.on_ah(frame, ah);
        }
    }

    /// A NAT-T keepalive: evidence for the NAT detection of the IKE SA between its peers.
    pub fn on_keepalive(&mut self, frame: u64, ts: Timestamp, addrs: &Addrs) {
        self.seen(frame, ts);
        let pair = peer_pair(addrs.src, addrs.dst);
        if let Some(key) = self.peers.get(&pair).copied() {
            if let Some(sa) = self.ike.get_mut(&key) {
                let from_initiator = sa.sent_by_initiator(addrs.src, addrs.ports.map(|p| p.0));
                sa.nat.on_keepalive(frame, from_initiator);
            }
        }
        self.maybe_sweep(ts);
    }

    /// An ICMP error quoting an IPsec-related packet. A destination-unreachable error
    /// quoting an IKE request is evidence that the peer cannot be reached.
    pub fn on_icmp(&mut self, frame: u64, ts: Timestamp, icmp: &IcmpError<'_>) {
        self.seen(frame, ts);
        if let Some(q) = icmp::quoted_ike(icmp.quoted) {
            self.icmp_evidence(frame, ts, icmp, &q);
        }
        self.maybe_sweep(ts);
    }

    /// An IKE datagram whose IP fragments never all arrived (the decoder gave up on it):
    /// evidence for `ike-fragments-lost` on the negotiation between its addresses.
    pub fn on_lost_ike_fragments(&mut self, lost: &IncompleteIke) {
        let pair = peer_pair(lost.src, lost.dst);
        let Some(key) = self.peers.get(&pair).copied() else {
            return;
        };
        if let Some(sa) = self.ike.get_mut(&key) {
            if sa.state == IkeState::Negotiating && sa.rare().fragments_lost.is_none() {
                debug!(spi_i = %report::spi64(sa.spi_i), frame = lost.first_frame, "IKE datagram lost IP fragments");
                sa.rare_mut().fragments_lost = Some(lost.first_frame);
            }
        }
    }

    /// A frame that failed to decode.
    pub fn on_decode_error(&mut self, frame: u64, ts: Timestamp, err: &DecodeError) {
        let _ = err;
        self.seen(frame, ts);
        self.decode_errors += 1;
        self.maybe_sweep(ts);
    }

    /// A frame that is not IPsec-related.
    pub fn on_other(&mut self, frame: u64, ts: Timestamp) {
        self.seen(frame, ts);
        self.maybe_sweep(ts);
    }

    /// The outcome of decrypting an IKE message that [`Tracker::on_ike`] has just seen
    /// (with the payloads decryption recovered): counted on its IKE SA, and failures in
    /// the statistics block.
    pub fn on_ike_decrypt(&mut self, frame: u64, header: &IkeHeader, outcome: Outcome) {
        self.count_failure(outcome);
        let key = IkeKey {
            version: header.major,
            spi_i: header.spi_i,
        };
        let key = match self.ike.contains(&key) {
            true => key,
            false => match self.aliases.get(&key) {
                Some(k) => *k,
                None => return,
            },
        };
        if let Some(sa) = self.ike.get_mut(&key) {
            let spi_i = sa.spi_i;
            decryption::note(&mut sa.rare_mut().decryption, frame, outcome, "IKE", spi_i);
        }
    }

    /// The outcome of decrypting an ESP packet that [`Tracker::on_esp`] has just seen.
    /// A transport-mode TCP or UDP segment inside is checked against the outer addresses
    /// for the NAT evidence of its IKE SA, as NULL-encrypted ESP and AH are.
    pub fn on_esp_decrypt(
        &mut self,
        frame: u64,
        esp: &EspPacket<'_>,
        result: Result<&EspPlain<'_>, DecryptError>,
    ) {
        let outcome = match result {
            Ok(p) => Outcome::Ok {
                verified: p.verified,
            },
            Err(e) => Outcome::Failed(e),
        };
        self.count_failure(outcome);
        let key = EspKey::new(esp.addrs.src, esp.addrs.dst, esp.spi, false);
        let mut tally = self.esp_decrypt.get(&key).copied();
        decryption::note(&mut tally, frame, outcome, "ESP", u64::from(esp.spi));
        if let Some(t) = tally {
            self.esp_decrypt.insert(key, t);
        }
        let Some(plain) = result.ok().filter(|p| p.is_transport_segment()) else {
            return;
        };
        let ike = self
            .esp
            .get(&key)
            .and_then(|e| e.ike())
            .and_then(|k| self.current(k));
        if let Some(sa) = ike.and_then(|k| self.ike.get_mut(&k)) {
            let (nh, seg) = (plain.next_header, plain.inner);
            sa.nat
                .on_inner_transport(frame, &esp.addrs, esp.encap, nh, seg);
        }
    }

    fn count_failure(&mut self, outcome: Outcome) {
        if let Outcome::Failed(e) = outcome {
            if e.is_authentication() {
                self.counters.not_authenticated += 1;
            } else {
                self.counters.not_decrypted += 1;
            }
        }
    }

    /// Advances packet time without a packet (live capture's periodic tick).
    pub fn tick(&mut self, ts: Timestamp) {
        self.maybe_sweep(ts);
    }

    /// The input ended at `ts`: negotiations left waiting are judged now (a request
    /// retransmitted and never answered fails even if the stall threshold has not
    /// passed), so a capture that stops mid-negotiation still reports its outcome.
    pub fn finish(&mut self, ts: Timestamp) {
        let end = self.last_ts.map_or(ts, |t| t.max(ts));
        self.sweep(end, true);
    }

    /// The current state as a report.
    pub fn report(&self) -> Report {
        build::report(self)
    }

    /// The current state as rows, for outputs that write one row at a time.
    pub fn rows(&self) -> Rows<'_> {
        Rows::new(self)
    }

    fn seen(&mut self, frame: u64, ts: Timestamp) {
        self.frames = self.frames.max(frame);
        if self.last_ts.is_none_or(|t| ts > t) {
            self.last_ts = Some(ts);
        }
    }

    /// Finds (or creates) the IKE SA a message belongs to.
    fn locate_ike(
        &mut self,
        frame: u64,
        ts: Timestamp,
        dgram: &IkeDatagram<'_>,
        msg: &IkeMessage,
    ) -> Option<IkeKey> {
        let h = &msg.header;
        let key = IkeKey {
            version: h.major,
            spi_i: h.spi_i,
        };
        if self.ike.contains(&key) {
            return Some(key);
        }
        if let Some(&k) = self.aliases.get(&key) {
            if self.ike.contains(&k) {
                return Some(k);
            }
        }
        let ctx = MsgCtx {
            frame,
            ts,
            hash: 0,
            len: dgram.message.len(),
            addrs: dgram.addrs,
            msg,
            from_initiator: true,
        };
        if h.major == 2 {
            self.new_v2(key, &ctx)
        } else {
            self.new_v1(key, &ctx)
        }
    }

    fn new_v2(&mut self, key: IkeKey, ctx: &MsgCtx<'_>) -> Option<IkeKey> {
        let h = &ctx.msg.header;
        let opening = h.exchange_type == 34 && !h.is_response() && h.spi_r == 0;
        if opening {
            if let Some(k) = self.retry_of(ctx) {
                self.aliases.insert(key, k);
                if let Some(sa) = self.ike.get_mut(&k) {
                    sa.spi_i = h.spi_i;
                }
                return Some(k);
            }
            self.counters.main_modes += 1;
            return self.insert_ike(IkeSa::new(key, ctx, true));
        }
        if h.spi_r != 0 && h.exchange_type != 34 {
            if let Some(old) = self.rekey_candidate(ctx) {
                return self.ike_rekeyed_unseen(old, key, ctx);
            }
            let mut sa = IkeSa::new(key, ctx, h.is_initiator());
            sa.mid_life = true;
            sa.set_state(IkeState::Established, ctx.frame, "negotiation not captured");
            return self.insert_ike(sa);
        }
        self.insert_ike(IkeSa::new(key, ctx, h.is_initiator()))
    }

    fn new_v1(&mut self, key: IkeKey, ctx: &MsgCtx<'_>) -> Option<IkeKey> {
        let h = &ctx.msg.header;
        let phase1 = matches!(h.exchange_type, 1..=4);
        let mut sa = IkeSa::new(key, ctx, true);
        if h.spi_r == 0 && phase1 {
            self.counters.main_modes += 1;
        } else if !phase1 {
            // The capture began after phase 1: the sender is taken as the initiator.
            sa.mid_life = true;
            sa.set_state(IkeState::Established, ctx.frame, "negotiation not captured");
        }
        self.insert_ike(sa)
    }

    /// An SA between the same peers that asked for a new IKE_SA_INIT (COOKIE or
    /// INVALID_KE_PAYLOAD) within the stall threshold: an implementation that restarts
    /// with a new initiator SPI continues the same negotiation (RFC 7296 §2.6, §1.3).
    fn retry_of(&self, ctx: &MsgCtx<'_>) -> Option<IkeKey> {
        let k = *self.peers.get(&peer_pair(ctx.addrs.src, ctx.addrs.dst))?;
        let sa = self.ike.get(&k)?;
        let recent = ctx.ts.0.saturating_sub(sa.last_seen.0) < self.config.stall_after_ns;
        (sa.key.version == 2 && sa.awaiting_retry && recent && sa.initiator.0 == ctx.addrs.src)
            .then_some(k)
    }

    /// A live IKEv2 SA between the same peers, which a new SPI pair seen without
    /// IKE_SA_INIT replaces (an IKE SA rekey inside an encrypted CREATE_CHILD_SA).
    fn rekey_candidate(&self, ctx: &MsgCtx<'_>) -> Option<IkeKey> {
        let k = *self.peers.get(&peer_pair(ctx.addrs.src, ctx.addrs.dst))?;
        let sa = self.ike.get(&k)?;
        (sa.key.version == 2 && sa.state == IkeState::Established).then_some(k)
    }

    fn insert_ike(&mut self, sa: IkeSa) -> Option<IkeKey> {
        let key = sa.key;
        let pair = peer_pair(sa.initiator.0, sa.responder.0);
        debug!(spi_i = %report::spi64(sa.spi_i), version = key.version, frame = sa.first_frame, "new IKE SA");
        if self.ike.insert(key, sa).is_some() {
            self.evictions.ike_sas += 1;
        }
        self.peers.insert(pair, key);
        Some(key)
    }

    /// The old SA was rekeyed by an exchange we could not read; `key` is the new one.
    fn ike_rekeyed_unseen(&mut self, old: IkeKey, key: IkeKey, ctx: &MsgCtx<'_>) -> Option<IkeKey> {
        let h = &ctx.msg.header;
        let old_sa = self.ike.get_mut(&old)?;
        // The last CREATE_CHILD_SA was this rekey, not a child: undo the child it added.
        let bogus = old_sa.children.last().is_some_and(|c| {
            c.source == LinkKind::Inferred && c.spi_in.is_none() && c.spi_out.is_none()
        });
        // An inferred rekey already undid the placeholder child when the old SA's Delete
        // showed the rekey.
        if bogus && old_sa.rare().rekey_inferred.is_none() {
            old_sa.children.pop();
            old_sa.open_slots = old_sa.open_slots.map(|s| s.saturating_sub(1));
            self.counters.key_additions = self.counters.key_additions.saturating_sub(1);
            self.counters.quick_modes = self.counters.quick_modes.saturating_sub(1);
        }
        let same_roles = h.is_initiator() == (ctx.addrs.src == old_sa.initiator.0);
        let inferred = old_sa.rare().rekey_inferred;
        // The successor began with the rekeying exchange when the wire showed it.
        let (frame, ts) = inferred.unwrap_or((ctx.frame, ctx.ts));
        let new = old_sa.successor(key, h.spi_i, h.spi_r, !same_roles, frame, ts);
        old_sa.retire(key, ctx.frame);
        self.counters.rekeys += u64::from(inferred.is_none());
        self.insert_ike(new)
    }

    /// Applies what a message did outside its own SA.
    fn apply(&mut self, key: IkeKey, frame: u64, ts: Timestamp, fx: Vec<Effect>) {
        for effect in fx {
            match effect {
                Effect::Announce {
                    spi,
                    ah,
                    towards_initiator,
                    kind,
                } => self.announce(key, spi, ah, towards_initiator, kind),
                Effect::DeletedSpis { ah, spis } => self.deleted(key, ah, &spis, ts),
                Effect::IkeDeleted => self.ike_deleted(key, frame, ts),
                Effect::RekeyIke {
                    spi_i,
                    spi_r,
                    by_initiator,
                } => self.ike_rekeyed(key, spi_i, spi_r, !by_initiator, frame, ts),
            }
        }
    }

    fn announce(
        &mut self,
        key: IkeKey,
        spi: u32,
        ah: bool,
        towards_initiator: bool,
        kind: LinkKind,
    ) {
        self.announced.insert((spi, ah), (key, kind));
        let Some(sa) = self.ike.get(&key) else {
            return;
        };
        let dst = if towards_initiator {
            sa.initiator.0
        } else {
            sa.responder.0
        };
        if let Some(e) = self.esp.get_mut(&EspKey::unicast(dst, spi, ah)) {
            e.set_ike(key, kind);
            e.bad = false;
        }
    }

    fn deleted(&mut self, key: IkeKey, ah: bool, spis: &[u32], ts: Timestamp) {
        let Some(sa) = self.ike.get(&key) else {
            return;
        };
        let dsts = [sa.initiator.0, sa.responder.0];
        for &spi in spis {
            self.deleted_spis.insert((spi, ah), ts.0);
            for dst in dsts {
                if let Some(e) = self.esp.get_mut(&EspKey::unicast(dst, spi, ah)) {
                    e.deleted_at = ts.0;
                }
            }
        }
    }

    fn ike_deleted(&mut self, key: IkeKey, frame: u64, ts: Timestamp) {
        let Some(sa) = self.ike.get_mut(&key) else {
            return;
        };
        // A refusal that was waiting for silence is what the Delete ends.
        sa.settle_known();
        sa.set_state(IkeState::Deleted, frame, "Delete of the IKE SA");
        let mut spis: Vec<(u32, bool)> = Vec::new();
        // Each open rekey with a Delete behind it stands for a live-looking child that
        // was deleted (and counted) already.
        let already = sa.children.iter().filter(|c| c.delete_pending).count() as u64;
        self.counters.key_deletions = self.counters.key_deletions.saturating_sub(already);
        for c in sa.children.iter_mut() {
            c.delete_pending = false;
        }
        for c in sa.children.iter_mut().filter(|c| !c.deleted) {
            c.deleted = true;
            self.counters.key_deletions += 1;
            spis.extend(
                c.spi_in
                    .into_iter()
                    .chain(c.spi_out)
                    .map(|s| (s, c.protocol == 2)),
            );
        }
        for (spi, ah) in spis {
            self.deleted(key, ah, &[spi], ts);
        }
    }

    fn ike_rekeyed(
        &mut self,
        old: IkeKey,
        spi_i: u64,
        spi_r: u64,
        swap: bool,
        frame: u64,
        ts: Timestamp,
    ) {
        let key = IkeKey { version: 2, spi_i };
        let Some(old_sa) = self.ike.get_mut(&old) else {
            return;
        };
        let new = old_sa.successor(key, spi_i, spi_r, swap, frame, ts);
        old_sa.retire(key, frame);
        self.insert_ike(new);
    }

    fn on_ipsec(
        &mut self,
        frame: u64,
        ts: Timestamp,
        key: EspKey,
        addrs: &Addrs,
        seq: u32,
        len: usize,
    ) {
        if let Some(sa) = self.esp.get_mut(&key) {
            sa.observe(seq, len, ts.0, frame, false);
            let after_delete = sa
                .deleted_at()
                .is_some_and(|d| ts.0 > d.saturating_add(DELETE_GRACE_NS));
            if sa.bad || after_delete {
                self.counters.bad_spi_packets += 1;
            }
        } else {
            self.new_ipsec(frame, ts, key, addrs, seq, len);
        }
        self.maybe_sweep(ts);
    }

    fn new_ipsec(
        &mut self,
        frame: u64,
        ts: Timestamp,
        key: EspKey,
        addrs: &Addrs,
        seq: u32,
        len: usize,
    ) {
        let mut sa = EspSa::new(addrs.src, addrs.ports, seq, ts.0, frame);
        sa.observe(seq, len, ts.0, frame, true);
        let (link, bad) = self.link_for(&key, addrs.src, ts);
        if let Some((ike, kind)) = link {
            sa.set_ike(ike, kind);
            self.linked(ike, &key, addrs, frame, ts, kind);
        }
        sa.bad = bad;
        if bad {
            self.counters.bad_spi_packets += 1;
        }
        if let Some((k, old)) = self.esp.insert(key, sa) {
            self.evictions.esp_sas += 1;
            // A full table losing SPIs that carried one packet and belong to no IKE SA is
            // what a flood of random SPIs looks like: those packets had no SA to go to
            // (unless they were counted as bad SPI packets when they came).
            if old.packets <= 1 && old.ike().is_none() && !old.bad {
                self.counters.bad_spi_packets += old.packets;
            }
            self.retire_bytes(&k, &old);
        }
    }

    /// Keeps the bytes of an ESP/AH SA leaving the table in the statistics block.
    fn retire_bytes(&mut self, key: &EspKey, sa: &EspSa) {
        let sent = build::sent_alone(self, key, sa);
        build::add_bytes(&mut self.retired, key.ah, sent, sa.bytes);
    }

    /// Entries in the IKE and ESP/AH tables (for tests of the bounds).
    pub fn table_sizes(&self) -> (usize, usize) {
        (self.ike.len(), self.esp.len())
    }

    /// The IKE SA a new ESP/AH SPI belongs to, and whether its packets are bad-SPI
    /// packets: a Deleted SPI, peers whose only IKE SA was deleted, or an SPI that no
    /// child negotiation of a fully observed IKE SA left room for (a flood of random
    /// SPIs between real peers costs a bounded table and shows as bad-SPI packets).
    fn link_for(
        &self,
        key: &EspKey,
        src: IpAddr,
        ts: Timestamp,
    ) -> (Option<(IkeKey, LinkKind)>, bool) {
        // Three independent lookups, each a cache miss with many tunnels: started
        // together, they overlap.
        self.announced.prefetch_key(&(key.spi, key.ah));
        self.deleted_spis.prefetch_key(&(key.spi, key.ah));
        self.peers.prefetch_key(&peer_pair(src, key.dst));
        if let Some(&(ike, kind)) = self.announced.get(&(key.spi, key.ah)) {
            if self.ike.contains(&ike) {
                return (Some((ike, kind)), false);
            }
        }
        if let Some(&t) = self.deleted_spis.get(&(key.spi, key.ah)) {
            if ts.0 > t.saturating_add(DELETE_GRACE_NS) {
                return (None, true);
            }
        }
        let Some(ike) = self.peers.get(&peer_pair(src, key.dst)).copied() else {
            return (None, false);
        };
        let Some(ike) = self.current(ike) else {
            return (None, false);
        };
        let Some(sa) = self.ike.get(&ike) else {
            return (None, false);
        };
        match sa.state {
            IkeState::Negotiating | IkeState::Established if sa.expects_spi(key.dst) => {
                (Some((ike, LinkKind::Inferred)), false)
            }
            // Fully observed peers that negotiated no child for it: never negotiated.
            IkeState::Established | IkeState::Deleted => (None, true),
            _ => (None, false),
        }
    }

    /// Follows IKE SA rekeys to the SA that holds `key`'s children now.
    fn current(&self, mut key: IkeKey) -> Option<IkeKey> {
        for _ in 0..16 {
            let sa = self.ike.get(&key)?;
            match sa.replaced_by {
                Some(next) if self.ike.contains(&next) => key = next,
                _ => return Some(key),
            }
        }
        Some(key)
    }

    /// A new ESP/AH SA was tied to IKE SA `ike`: its SPI fills a child negotiated there.
    fn linked(
        &mut self,
        ike: IkeKey,
        key: &EspKey,
        addrs: &Addrs,
        frame: u64,
        ts: Timestamp,
        kind: LinkKind,
    ) {
        let Some(sa) = self.ike.get_mut(&ike) else {
            return;
        };
        let encap = if addrs.ports.is_some() {
            crate::wire::Encap::Udp
        } else {
            crate::wire::Encap::None
        };
        if !key.ah {
            // AH packets reach the NAT evidence one by one through `on_ah`.
            sa.nat.on_child_packet(frame, encap, false);
        }
        sa.esp_linked += 1;
        let mut fx = Vec::new();
        if sa.key.version == 2 {
            ikev2::confirm_up(sa, &mut self.counters, &mut fx);
            ikev2::confirm_child(sa, &mut self.counters, &mut fx);
        }
        if kind == LinkKind::Inferred {
            let towards_initiator = sa.towards_initiator(key.dst);
            let (idx, rekey) = sa.fill_inferred(key.spi, key.ah, towards_initiator, ts);
            self.counters.rekeys += u64::from(rekey == Rekey::Known);
            let deleted = rekey != Rekey::No
                && sa
                    .rare
                    .as_mut()
                    .is_some_and(|r| r.pending_child_delete.take().is_some());
            match rekey {
                Rekey::Known if deleted => {
                    sa.delete_superseded(&mut fx);
                }
                Rekey::Open if deleted => sa.children[idx].delete_pending = true,
                _ => {}
            }
        }
        self.apply(ike, frame, ts, fx);
    }

    fn icmp_evidence(
        &mut self,
        frame: u64,
        ts: Timestamp,
        icmp: &IcmpError<'_>,
        q: &icmp::QuotedIke,
    ) {
        let key = q.spi_i.map(|spi_i| IkeKey {
            version: q.version,
            spi_i,
        });
        let key = key
            .filter(|k| self.ike.contains(k))
            .or_else(|| self.peers.get(&peer_pair(q.src, q.dst)).copied());
        let Some(sa) = key.and_then(|k| self.ike.get_mut(&k)) else {
            return;
        };
        sa.note_icmp(icmp::report(frame, ts, icmp));
        let first = sa.rare().icmp.is_none();
        if icmp::is_unreachable(icmp) && first && sa.state == IkeState::Negotiating {
            debug!(spi_i = %report::spi64(sa.spi_i), frame, "ICMP error quotes an IKE request");
            sa.rare_mut().icmp = Some(frame);
        }
    }

    fn maybe_sweep(&mut self, ts: Timestamp) {
        if ts.0 >= self.next_sweep {
            self.sweep(ts, false);
        }
    }

    /// A negotiation's stall deadline: the sweep must run by then.
    fn deadline(&mut self, key: IkeKey) {
        if let Some(sa) = self
            .ike
            .get(&key)
            .filter(|sa| sa.state == IkeState::Negotiating)
        {
            let at = sa.last_seen.0.saturating_add(self.config.stall_after_ns);
            self.next_sweep = self.next_sweep.min(at);
        }
    }

    /// Applies the timers at `now`: stalled negotiations fail, idle SAs expire. The next
    /// sweep is due at the earliest negotiation deadline, and at least every sixteenth
    /// of the idle expiry for the expiry of ESP SAs.
    fn sweep(&mut self, now: Timestamp, at_end: bool) {
        let stall = self.config.stall_after_ns;
        let idle = self.config.idle_expiry_ns;
        let mut next = now.0.saturating_add((idle / 16).max(1_000_000));
        let mut idle_ike = std::collections::HashSet::new();
        for (key, sa) in self.ike.iter_mut() {
            sa.evaluate(now, stall, at_end);
            if sa.alive() && now.0.saturating_sub(sa.last_seen.0) >= idle {
                idle_ike.insert(*key);
            }
            if sa.state == IkeState::Negotiating {
                next = next.min(sa.last_seen.0.saturating_add(stall));
            }
        }
        self.next_sweep = next.max(now.0.saturating_add(SWEEP_EVERY_NS));
        for (_, e) in self.esp.iter_mut() {
            if now.0.saturating_sub(e.last_seen) >= idle {
                e.expired = true;
            } else if let Some(k) = e.ike() {
                // Child traffic keeps an IKE SA alive even when IKE itself is quiet.
                idle_ike.remove(&k);
            }
        }
        for key in idle_ike {
            if let Some(sa) = self.ike.get_mut(&key) {
                let frame = sa.last_frame;
                sa.set_state(IkeState::Expired, frame, "idle past expiry");
            }
        }
        if let Some(after) = self.config.forget_after_ns {
            self.forget_ended(now.0.saturating_sub(after));
        }
    }

    /// Drops SAs that ended and saw no packet since `before` (see
    /// [`Config::forget_after_ns`]).
    fn forget_ended(&mut self, before: i64) {
        let ike: Vec<IkeKey> = self
            .ike
            .iter()
            .filter(|(_, sa)| !sa.alive() && sa.last_seen.0 < before)
            .map(|(k, _)| *k)
            .collect();
        for k in &ike {
            debug!(spi_i = %report::spi64(k.spi_i), "forgetting an ended IKE SA");
            self.ike.remove(k);
        }
        let esp: Vec<EspKey> = self
            .esp
            .iter()
            .filter(|(_, e)| (e.expired || e.deleted_at().is_some()) && e.last_seen < before)
            .map(|(k, _)| *k)
            .collect();
        for k in &esp {
            if let Some(old) = self.esp.remove(k) {
                self.retire_bytes(k, &old);
            }
        }
    }
}

#[cfg(test)]
mod tests;
