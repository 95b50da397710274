//! What both IKE versions share: the IKE SA record, its exchanges (request/response pairs
//! matched by message ID, retransmissions recognised by a hash of the message bytes),
//! its child SAs, the one function through which every state change goes, and the
//! stall rules that turn a silent negotiation into a failure.

use std::net::IpAddr;
use std::sync::Arc;

use smallvec::SmallVec;
use tracing::debug;

use crate::wire::ike::{registry, IkeMessage, PayloadBody};
use crate::wire::{Addrs, Timestamp};

use super::content::{self, Selectors};
use super::decryption::Tally;
use super::esp::LinkKind;
use super::nat::NatObservations;
use super::proposal::Interner;
use super::report::{
    spi32, spi64, ChildSaReport, ExchangeReport, Failure, IcmpReport, IkeSaReport, IkeState,
    Transmission,
};

/// The identity of an IKE SA in the tracker: version and initiator SPI (IKEv1 initiator
/// cookie). The responder SPI is not part of it because the first message carries zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct IkeKey {
    /// 1 or 2.
    pub version: u8,
    /// Initiator SPI as first seen.
    pub spi_i: u64,
}

/// Most exchanges kept per IKE SA: the first ones (the negotiation) and the latest ones.
const MAX_EXCHANGES: usize = 64;
/// Exchanges at the start that are never dropped.
const KEEP_FIRST_EXCHANGES: usize = 8;
/// Most child SAs kept per IKE SA.
const MAX_CHILDREN: usize = 64;
/// Most distinct message hashes kept per exchange and direction.
const MAX_HASHES: usize = 8;
/// Most notify types kept per exchange.
const MAX_NOTIFIES: usize = 16;
/// Most transmissions of a request kept per exchange.
const MAX_TRANSMISSIONS: usize = 16;
/// Most detail sentences kept per exchange.
const MAX_DETAILS: usize = 8;
/// Most offered proposals kept per IKE SA.
const MAX_OFFERED: usize = 32;
/// Most ICMP errors kept per IKE SA.
const MAX_ICMP: usize = 8;
/// Most refused child negotiations kept per IKE SA.
const MAX_CHILD_FAILURES: usize = 8;

/// One decoded IKE message with what the tracker derives from its datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MsgCtx<'a> {
    /// Frame number.
    pub frame: u64,
    /// Capture time.
    pub ts: Timestamp,
    /// Hash of the message bytes (retransmissions are byte-identical).
    pub hash: u64,
    /// Bytes of the IKE message.
    pub len: usize,
    /// Outer addresses.
    pub addrs: Addrs,
    /// The decoded message.
    pub msg: &'a IkeMessage,
    /// Sent by the original initiator of the IKE SA.
    pub from_initiator: bool,
}

impl MsgCtx<'_> {
    /// Notify types carried in the clear or in decrypted payloads.
    pub(crate) fn notifies(&self) -> impl Iterator<Item = u16> + '_ {
        self.msg.notify_types()
    }

    /// `true` when the message holds decrypted payloads (its content is known).
    pub(crate) fn has_decrypted(&self) -> bool {
        self.msg.payloads.iter().any(|p| p.decrypted)
    }

    /// The SK payload's data length when the message is encrypted and not fragmented.
    pub(crate) fn sk_len(&self) -> Option<usize> {
        self.msg.payloads.iter().find_map(|p| match p.body {
            PayloadBody::Encrypted { data_len, .. } => Some(data_len),
            _ => None,
        })
    }

    /// The type of the first payload inside the SK payload (its header is in the clear,
    /// RFC 7296 §3.14), when the message is encrypted and not fragmented.
    pub(crate) fn sk_first(&self) -> Option<u8> {
        self.msg.payloads.iter().find_map(|p| match p.body {
            PayloadBody::Encrypted { first_payload, .. } => Some(first_payload),
            _ => None,
        })
    }

    /// The fragment number and total when this is an IKEv2 fragment (RFC 7383).
    pub(crate) fn fragment(&self) -> Option<(u16, u16)> {
        self.msg.payloads.iter().find_map(|p| match p.body {
            PayloadBody::EncryptedFragment { number, total, .. } => Some((number, total)),
            _ => None,
        })
    }
}

/// A small set of message hashes, inline up to the usual two.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hashes(SmallVec<[u64; 2]>);

impl Hashes {
    /// `true` when `h` was seen.
    pub(crate) fn contains(&self, h: u64) -> bool {
        self.0.contains(&h)
    }
    /// Adds `h` (dropping the oldest beyond the bound).
    pub(crate) fn add(&mut self, h: u64) {
        if self.0.len() >= MAX_HASHES {
            self.0.remove(0);
        }
        self.0.push(h);
    }
}

/// One exchange: a request and its response, or a one-way message (IKEv1 Informational).
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    /// Exchange type number.
    pub kind: u8,
    /// Message ID.
    pub message_id: u32,
    /// The requester is the IKE SA's original initiator.
    pub by_initiator: bool,
    /// Frame of the first request.
    pub request_frame: u64,
    /// Frame of the latest copy of the request.
    pub last_request_frame: u64,
    /// Capture time of the first request.
    pub started: Timestamp,
    /// Destination UDP port of the first request (500, 4500, or a NAT's port).
    pub dst_port: u16,
    /// IKE fragments (RFC 7383) the request was sent as; 0 when not fragmented.
    pub fragments: u16,
    /// Type of the first payload inside the request's SK payload (0 when none or not
    /// encrypted): its header is in the clear, so a Delete (42) shows without keys.
    pub sk_first: u8,
    /// Distinct requests and responses seen (fragments and IKEv1's third message count).
    pub req_hashes: Hashes,
    /// Distinct responses.
    pub resp_hashes: Hashes,
    /// Distinct request messages (IKEv1 Quick Mode: 2 means QM3 arrived).
    pub req_msgs: u8,
    /// Distinct response messages.
    pub resp_msgs: u8,
    /// Frame and time of the first response.
    pub response: Option<(u64, Timestamp)>,
    /// Retransmitted messages.
    pub retransmissions: u32,
    /// Notify types seen (cleartext or decrypted).
    pub notifies: SmallVec<[u16; 4]>,
    /// Largest request seen, in bytes.
    pub request_len: u32,
    /// `true` when no request was seen (the capture began after it).
    pub orphan: bool,
    /// Child SPI the request proposed: SPI, protocol, learned by decryption.
    pub req_offer: Option<(u32, u8, bool)>,
    /// Child SPI the response accepted.
    pub resp_offer: Option<(u32, u8, bool)>,
    /// New IKE SPIs proposed by request and response (IKEv2 IKE SA rekey), boxed: only
    /// IKE SA rekeys have them. Read through [`Exchange::ike_offer`].
    ike_spis: Option<Box<(Option<u64>, Option<u64>)>>,
    /// SPI named by a REKEY_SA notify (IKEv2 child rekey, RFC 7296 §1.3.3).
    pub rekey_spi: Option<u32>,
    /// Each transmission of the request: frame, time, bytes.
    pub transmissions: SmallVec<[(u64, Timestamp, u32); 1]>,
    /// Facts read from the exchange, in words: a boxed slice made when the first
    /// arrives, since few exchanges have any (16 bytes in the record instead of a
    /// `Vec`'s 24, twice in most IKE SAs).
    pub details: Option<Box<[String]>>,
    /// Traffic selectors, the requester's side first: the response's (narrowed) once
    /// seen, else the request's. Boxed, like every selector list: few messages show them.
    pub selectors: Option<Box<Selectors>>,
    /// The selectors the request proposed (decrypted or cleartext), to tell narrowing.
    pub req_selectors: Option<Box<Selectors>>,
    /// Some message of the exchange was decrypted: its content is known, not inferred.
    pub decrypted: bool,
}

impl Exchange {
    /// A new exchange from its first request.
    pub(crate) fn request(ctx: &MsgCtx<'_>, by_initiator: bool) -> Self {
        let mut ex = Exchange {
            kind: ctx.msg.header.exchange_type,
            message_id: ctx.msg.header.message_id,
            by_initiator,
            request_frame: ctx.frame,
            last_request_frame: ctx.frame,
            started: ctx.ts,
            dst_port: ctx.addrs.ports.map_or(0, |p| p.1),
            fragments: ctx.fragment().map_or(0, |(_, total)| total),
            sk_first: ctx.sk_first().unwrap_or(0),
            req_hashes: Hashes::default(),
            resp_hashes: Hashes::default(),
            req_msgs: 1,
            resp_msgs: 0,
            response: None,
            retransmissions: 0,
            notifies: SmallVec::new(),
            request_len: msg_len(ctx),
            orphan: false,
            req_offer: proposed_child_spi(ctx.msg),
            resp_offer: None,
            ike_spis: None,
            rekey_spi: rekey_notify_spi(ctx.msg),
            transmissions: smallvec::smallvec![(ctx.frame, ctx.ts, ctx.len as u32)],
            details: None,
            selectors: content::selectors(ctx.msg).map(Box::new),
            req_selectors: content::selectors(ctx.msg).map(Box::new),
            decrypted: ctx.has_decrypted(),
        };
        ex.set_ike_offer((proposed_ike_spi(ctx.msg), None));
        ex.req_hashes.add(ctx.hash);
        ex.note(ctx);
        ex
    }

    /// New IKE SPIs proposed by the request and the response (IKEv2 IKE SA rekey).
    pub(crate) fn ike_offer(&self) -> (Option<u64>, Option<u64>) {
        self.ike_spis.as_deref().copied().unwrap_or((None, None))
    }

    fn set_ike_offer(&mut self, offer: (Option<u64>, Option<u64>)) {
        self.ike_spis = (offer != (None, None)).then(|| Box::new(offer));
    }

    /// A new exchange known only from its response.
    pub(crate) fn orphan_response(ctx: &MsgCtx<'_>, by_initiator: bool) -> Self {
        let mut ex = Exchange::request(ctx, by_initiator);
        ex.req_hashes = Hashes::default();
        ex.resp_hashes.add(ctx.hash);
        ex.req_msgs = 0;
        ex.resp_msgs = 1;
        ex.request_len = 0;
        ex.transmissions.clear();
        ex.response = Some((ctx.frame, ctx.ts));
        ex.orphan = true;
        ex.resp_offer = ex.req_offer.take();
        let (requested, _) = ex.ike_offer();
        ex.set_ike_offer((None, requested));
        ex
    }

    /// Records the notify types of a message of this exchange; error types (below
    /// 16384 in IKEv2, 8192 in IKEv1) also become a detail sentence with their name.
    pub(crate) fn note(&mut self, ctx: &MsgCtx<'_>) {
        let version = ctx.msg.version();
        let error_below = if version == 1 { 8192 } else { 16384 };
        for n in ctx.notifies() {
            if self.notifies.len() >= MAX_NOTIFIES || self.notifies.contains(&n) {
                continue;
            }
            self.notifies.push(n);
            if n < error_below {
                let name = registry::notify_name(version, n).unwrap_or("error notify");
                self.detail(format!("{name} ({n})"));
            }
        }
    }

    /// Adds a fact in words (bounded, no duplicates).
    pub(crate) fn detail(&mut self, what: String) {
        let details = self.details.as_deref().unwrap_or_default();
        if details.len() < MAX_DETAILS && !details.contains(&what) {
            // Rebuilt on each addition: at most `MAX_DETAILS`, and rare.
            let mut list = self.details.take().map(Vec::from).unwrap_or_default();
            list.push(what);
            self.details = Some(list.into_boxed_slice());
        }
    }

    /// Records a response; returns `true` for the first one.
    pub(crate) fn respond(&mut self, ctx: &MsgCtx<'_>) -> bool {
        self.resp_hashes.add(ctx.hash);
        self.resp_msgs = self.resp_msgs.saturating_add(1);
        self.note(ctx);
        if self.response.is_some() {
            return false;
        }
        self.response = Some((ctx.frame, ctx.ts));
        self.decrypted |= ctx.has_decrypted();
        self.resp_offer = proposed_child_spi(ctx.msg);
        let (requested, _) = self.ike_offer();
        self.set_ike_offer((requested, proposed_ike_spi(ctx.msg)));
        if let Some(sel) = content::selectors(ctx.msg) {
            self.selectors = Some(Box::new(sel));
        }
        true
    }

    /// `true` when `hash` repeats a message of this exchange.
    pub(crate) fn is_repeat(&self, hash: u64) -> bool {
        self.req_hashes.contains(hash) || self.resp_hashes.contains(hash)
    }

    fn to_report(&self) -> ExchangeReport {
        let rtt = match (self.response, self.orphan) {
            (Some((_, ts)), false) => Some(ts.secs_since(self.started)),
            _ => None,
        };
        ExchangeReport {
            exchange: exchange_name(self.message_version(), self.kind).to_string(),
            message_id: self.message_id,
            request_frame: self.request_frame,
            response_frame: self.response.map(|(f, _)| f),
            started: self.started.as_secs_f64(),
            rtt_s: rtt,
            retransmissions: self.retransmissions,
            notifies: self.notifies.to_vec(),
            from_initiator: self.by_initiator,
            dst_port: self.dst_port,
            request_fragments: self.fragments,
            transmissions: self
                .transmissions
                .iter()
                .map(|&(frame, ts, bytes)| Transmission {
                    frame,
                    ts: ts.as_secs_f64(),
                    bytes,
                })
                .collect(),
            details: self.details.as_deref().unwrap_or_default().to_vec(),
        }
    }

    fn message_version(&self) -> u8 {
        if self.kind >= 34 && self.kind <= 45 {
            2
        } else {
            1
        }
    }
}

/// A child SA as negotiated (IKEv2 CHILD_SA, IKEv1 phase-2 SA).
#[derive(Debug, Clone)]
pub(crate) struct Child {
    /// SPI of the direction towards the initiator.
    pub spi_in: Option<u32>,
    /// SPI of the direction towards the responder.
    pub spi_out: Option<u32>,
    /// 3 ESP, 2 AH.
    pub protocol: u8,
    /// When it became usable.
    pub established_at: Timestamp,
    /// The inbound SPI of the child it replaced.
    pub rekeyed_from: Option<u32>,
    /// How the SPIs were learned.
    pub source: LinkKind,
    /// A Delete named it.
    pub deleted: bool,
    /// What its negotiation said about being a rekey: `Some(false)` a new child (IKE_AUTH,
    /// or a decrypted CREATE_CHILD_SA without REKEY_SA), `Some(true)` a rekey (REKEY_SA
    /// decrypted, or an encrypted CREATE_CHILD_SA starting with a Notify, RFC 7296
    /// §1.3.3), `None` when nothing tells (other CREATE_CHILD_SAs, IKEv1 Quick Mode).
    pub rekey_hint: Option<bool>,
    /// A possible rekey whose replaced child the wire has not singled out: the direction
    /// (`true`: towards the initiator) of its first SPI. ESP timing settles it when the
    /// report is built (see `build::settle_rekeys`).
    pub rekey_open: Option<bool>,
    /// An encrypted child Delete followed this open rekey: the child it replaced is gone.
    pub delete_pending: bool,
    /// Traffic selectors of the IKE initiator's side and the responder's.
    pub selectors: Option<Box<Selectors>>,
}

/// What filling an inferred SPI found out about a rekey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rekey {
    /// Not a rekey (or already known).
    No,
    /// A rekey of the one child that could be meant.
    Known,
    /// Possibly a rekey of one of several children; settled by ESP timing.
    Open,
}

impl Child {
    /// A child whose SPIs the wire has not shown yet.
    pub(crate) fn inferred(protocol: u8, at: Timestamp, rekey_hint: Option<bool>) -> Child {
        Child {
            spi_in: None,
            spi_out: None,
            protocol,
            established_at: at,
            rekeyed_from: None,
            source: LinkKind::Inferred,
            deleted: false,
            rekey_hint,
            rekey_open: None,
            delete_pending: false,
            selectors: None,
        }
    }

    fn to_report(&self) -> ChildSaReport {
        ChildSaReport {
            spi_in: self.spi_in.map(spi32),
            spi_out: self.spi_out.map(spi32),
            protocol: if self.protocol == 2 { "ah" } else { "esp" }.to_string(),
            established_at: Some(self.established_at.as_secs_f64()),
            rekeyed_from: self.rekeyed_from.map(spi32),
            source: self.source.as_str().to_string(),
            ts_i: self
                .selectors
                .as_ref()
                .map(|s| s.0.clone())
                .unwrap_or_default(),
            ts_r: self
                .selectors
                .as_ref()
                .map(|s| s.1.clone())
                .unwrap_or_default(),
            deleted: self.deleted,
        }
    }
}

/// IKEv1 phase-1 progress.
#[derive(Debug, Clone, Default)]
pub(crate) struct V1Progress {
    /// Distinct phase-1 messages from the initiator.
    pub init_msgs: u8,
    /// Distinct phase-1 messages from the responder.
    pub resp_msgs: u8,
    /// Aggressive Mode (3 messages) rather than Main Mode (6).
    pub aggressive: bool,
    /// Frame at which phase 1 completed.
    pub done: Option<u64>,
    /// The responder sent Informationals after MM5 instead of MM6 (it could not read
    /// MM5: the classic preshared-key mismatch).
    pub info_after_mm5: Option<u64>,
    /// A Quick Mode's responder sent an encrypted Informational instead of QM2 (it
    /// refused the proposal or the identities): the frame.
    pub qm_refused: Option<u64>,
}

/// An IKE SA and everything learned about it.
#[derive(Debug, Clone)]
pub(crate) struct IkeSa {
    /// Table key.
    pub key: IkeKey,
    /// Current initiator SPI (differs from the key after a retry with a new SPI).
    pub spi_i: u64,
    /// Responder SPI, zero until known.
    pub spi_r: u64,
    /// Initiator address and port as first seen.
    pub initiator: (IpAddr, u16),
    /// Responder address and port as first seen.
    pub responder: (IpAddr, u16),
    /// Latest ports of the initiator and responder (they float to 4500, NAT rewrites).
    pub ports_now: (u16, u16),
    /// Lifecycle state.
    pub state: IkeState,
    /// Frame of the first message.
    pub first_frame: u64,
    /// Capture time of the first message.
    pub started: Timestamp,
    /// Frame and time of the message that made the first child SA usable.
    pub established: Option<(u64, Timestamp)>,
    /// Why it failed. Failures are boxed: most SAs never have one.
    pub failure: Option<Box<Failure>>,
    /// A failure that a retry may still undo (INVALID_KE_PAYLOAD, an IKEv1 error notify).
    pub pending_failure: Option<Box<Failure>>,
    /// Retransmitted messages.
    pub retransmissions: u32,
    /// NAT evidence.
    pub nat: NatObservations,
    /// Child SAs, inline up to the usual one or two.
    pub children: SmallVec<[Child; 2]>,
    /// Exchanges, bounded; inline up to the two of a negotiation (IKE_SA_INIT and
    /// IKE_AUTH, Main and Quick Mode), so that most SAs are one record.
    pub exchanges: SmallVec<[Exchange; 2]>,
    /// The IKE SA this one replaced.
    pub rekeyed_from: Option<u64>,
    /// The IKE SA that replaced this one.
    pub replaced_by: Option<IkeKey>,
    /// Frame of the last message.
    pub last_frame: u64,
    /// Time of the last message.
    pub last_seen: Timestamp,
    /// What only some SAs show (ICMP errors, lost fragments, refused children, keys,
    /// identities), boxed when the first of it arrives: see [`IkeSa::rare`].
    pub rare: Option<Box<RareSa>>,
    /// An IKE_AUTH response too short to hold IDr and AUTH (RFC 7296 §1.2): the failure
    /// it means if nothing follows.
    pub auth_suspect: Option<Box<Failure>>,
    /// An IKE_AUTH response with room for IDr and AUTH but not for the child SA's SA and
    /// TS payloads: the failure it means unless ESP shows the child after all.
    pub child_suspect: Option<Box<Failure>>,
    /// A COOKIE or INVALID_KE_PAYLOAD answer asks for a new IKE_SA_INIT.
    pub awaiting_retry: bool,
    /// Retried IKE_SA_INIT requests.
    pub init_retries: u32,
    /// Child negotiations whose SPIs have not shown up on the wire, per direction
    /// (towards the initiator, towards the responder).
    pub open_slots: [u16; 2],
    /// ESP/AH SAs linked to it so far.
    pub esp_linked: u32,
    /// An exchange after IKE_AUTH happened (EAP rounds are over).
    pub post_auth: bool,
    /// Negotiation not seen (the capture began during its life).
    pub mid_life: bool,
    /// IKEv1 phase-1 progress.
    pub v1: V1Progress,
    /// `established_after_s` of the SA this one replaced by a rekey.
    pub inherited_after: Option<f64>,
    /// Proposals the initiator offered, shared with the other SAs that offered them.
    pub offered: Vec<Arc<str>>,
    /// Every proposal a response accepted, bounded; the first is the one the responder
    /// chose.
    pub accepted: Vec<Arc<str>>,
}

/// The parts of an [`IkeSa`] that most SAs never have. Kept out of the table's record,
/// which every message and every new SPI of the SA loads: about 200 bytes fewer for each.
#[derive(Debug, Clone, Default)]
pub(crate) struct RareSa {
    /// First ICMP error quoting one of its requests.
    pub icmp: Option<u64>,
    /// First fragment of an IKE datagram between its peers that never completed.
    pub fragments_lost: Option<u64>,
    /// Child SA negotiations refused after the IKE SA was up (CREATE_CHILD_SA, Quick
    /// Mode), bounded.
    pub child_failures: Vec<Failure>,
    /// An encrypted Delete of a child SA (request and response both begin with a Delete
    /// payload) whose rekeyed successor has not shown its SPIs yet: the frame.
    pub pending_child_delete: Option<u64>,
    /// An IKE SA rekey was inferred from the wire (its new SPIs not seen yet): the frame
    /// and time of the rekeying exchange's response. When the new SPIs appear, the
    /// successor starts there and the rekey is not undone or counted again.
    pub rekey_inferred: Option<(u64, Timestamp)>,
    /// ICMP errors quoting its packets.
    pub icmp_reports: Vec<IcmpReport>,
    /// Decryption outcomes of its encrypted messages, once a key was tried.
    pub decryption: Option<Tally>,
    /// The initiator's and the responder's identities, when seen.
    pub ids: [Option<String>; 2],
}

/// What [`IkeSa::rare`] reads before anything rare arrived.
static NOTHING_RARE: RareSa = RareSa {
    icmp: None,
    fragments_lost: None,
    child_failures: Vec::new(),
    pending_child_delete: None,
    rekey_inferred: None,
    icmp_reports: Vec::new(),
    decryption: None,
    ids: [None, None],
};

impl IkeSa {
    /// A new SA from its first message.
    pub(crate) fn new(key: IkeKey, ctx: &MsgCtx<'_>, initiator_is_src: bool) -> Self {
        let a = &ctx.addrs;
        let (sport, dport) = a.ports.unwrap_or((0, 0));
        let (initiator, responder) = if initiator_is_src {
            ((a.src, sport), (a.dst, dport))
        } else {
            ((a.dst, dport), (a.src, sport))
        };
        IkeSa {
            key,
            spi_i: ctx.msg.header.spi_i,
            spi_r: ctx.msg.header.spi_r,
            initiator,
            responder,
            ports_now: (initiator.1, responder.1),
            state: IkeState::Negotiating,
            first_frame: ctx.frame,
            started: ctx.ts,
            established: None,
            failure: None,
            pending_failure: None,
            retransmissions: 0,
            nat: NatObservations::default(),
            children: SmallVec::new(),
            exchanges: SmallVec::new(),
            rekeyed_from: None,
            replaced_by: None,
            last_frame: ctx.frame,
            last_seen: ctx.ts,
            rare: None,
            auth_suspect: None,
            child_suspect: None,
            awaiting_retry: false,
            init_retries: 0,
            open_slots: [0, 0],
            esp_linked: 0,
            post_auth: false,
            mid_life: false,
            v1: V1Progress::default(),
            inherited_after: None,
            offered: Vec::new(),
            accepted: Vec::new(),
        }
    }

    /// Records the proposals of an SA payload: offers from the initiator's requests,
    /// the choice from the first response that carries one (the first accepted).
    /// `scratch` is reused space for the proposals' text; new ones are kept as the copy
    /// `texts` shares among SAs, since most SAs offer the same few.
    pub(crate) fn note_proposals(
        &mut self,
        msg: &IkeMessage,
        is_response: bool,
        scratch: &mut String,
        texts: &mut Interner,
    ) {
        let list = if is_response {
            &mut self.accepted
        } else {
            &mut self.offered
        };
        super::proposal::each_proposal(msg, scratch, |p| {
            if list.len() < MAX_OFFERED && !list.iter().any(|o| **o == *p) {
                list.push(texts.get(p));
            }
            // A response carries the one proposal chosen.
            !is_response
        });
    }

    /// The parts most SAs never have (empty ones when none arrived).
    pub(crate) fn rare(&self) -> &RareSa {
        self.rare.as_deref().unwrap_or(&NOTHING_RARE)
    }

    /// The rare parts, boxed now if they were not yet.
    pub(crate) fn rare_mut(&mut self) -> &mut RareSa {
        self.rare.get_or_insert_with(Box::default)
    }

    /// Records an ICMP error that quoted one of its packets.
    pub(crate) fn note_icmp(&mut self, icmp: IcmpReport) {
        if self.rare().icmp_reports.len() < MAX_ICMP {
            self.rare_mut().icmp_reports.push(icmp);
        }
    }

    /// The SA that replaces this one after an IKE SA rekey (RFC 7296 §2.18): it takes
    /// over the child SAs (the deleted ones too, as history) and NAT evidence and is
    /// usable at once. `swap` when the rekey
    /// was requested by the old SA's responder, who becomes the new initiator.
    pub(crate) fn successor(
        &self,
        key: IkeKey,
        spi_i: u64,
        spi_r: u64,
        swap: bool,
        frame: u64,
        ts: Timestamp,
    ) -> IkeSa {
        let mut new = self.clone();
        new.key = key;
        new.spi_i = spi_i;
        new.spi_r = spi_r;
        if swap {
            std::mem::swap(&mut new.initiator, &mut new.responder);
            new.ports_now = (new.ports_now.1, new.ports_now.0);
            new.open_slots = [new.open_slots[1], new.open_slots[0]];
            for c in &mut new.children {
                std::mem::swap(&mut c.spi_in, &mut c.spi_out);
            }
        }
        // Deleted children stay in the history the successor carries on.
        new.first_frame = frame;
        new.started = ts;
        new.established = Some((frame, ts));
        new.inherited_after = self.established_after();
        new.failure = None;
        new.pending_failure = None;
        new.retransmissions = 0;
        new.exchanges.clear();
        new.rekeyed_from = Some(self.spi_i);
        new.replaced_by = None;
        new.last_frame = frame;
        new.last_seen = ts;
        // Of the rare parts only the identities carry over.
        new.rare = None;
        let ids = &self.rare().ids;
        if ids.iter().any(Option::is_some) {
            new.rare_mut().ids = ids.clone();
        }
        new.auth_suspect = None;
        new.child_suspect = None;
        new.awaiting_retry = false;
        new.init_retries = 0;
        new.esp_linked = 0;
        new.post_auth = true;
        new.mid_life = false;
        new.state = IkeState::Established;
        debug!(spi_i = %spi64(spi_i), rekeyed_from = %spi64(self.spi_i), frame, "IKE SA rekeyed");
        new
    }

    /// This SA was replaced by `by` (an IKE SA rekey): its children moved there.
    pub(crate) fn retire(&mut self, by: IkeKey, frame: u64) {
        self.replaced_by = Some(by);
        self.children.clear();
        self.open_slots = [0, 0];
        self.set_state(IkeState::Deleted, frame, "replaced by an IKE SA rekey");
    }

    /// Seconds from the first request to the first usable child SA.
    pub(crate) fn established_after(&self) -> Option<f64> {
        if self.rekeyed_from.is_some() {
            return self.inherited_after;
        }
        self.established
            .filter(|_| !self.mid_life)
            .map(|(_, ts)| ts.secs_since(self.started))
    }

    /// `true` when a new ESP/AH SPI towards `dst` may belong to this SA: a child
    /// negotiation left its SPI for that direction unknown, an IKE_AUTH answer whose
    /// outcome the wire left open waits for ESP to prove it, or the SA was seen mid-life,
    /// when its children were negotiated before the capture began.
    pub(crate) fn expects_spi(&self, dst: IpAddr) -> bool {
        let slot = usize::from(!self.towards_initiator(dst));
        let undecided = self.auth_suspect.is_some() || self.child_suspect.is_some();
        self.mid_life || self.open_slots[slot] > 0 || undecided
    }

    /// `true` when a packet to `dst` travels towards the initiator.
    pub(crate) fn towards_initiator(&self, dst: IpAddr) -> bool {
        dst == self.initiator.0 && dst != self.responder.0
    }

    /// Puts an ESP/AH SPI learned from the wire alone into the oldest child SA that
    /// still lacks one for that direction (or a new child when none does), and says
    /// whether the child replaces an older one: with a rekey hint and one candidate (an
    /// older live child of the same protocol with an SPI in that direction) it is
    /// [`Rekey::Known`]; with several candidates, or no hint, [`Rekey::Open`].
    pub(crate) fn fill_inferred(
        &mut self,
        spi: u32,
        ah: bool,
        towards_initiator: bool,
        ts: Timestamp,
    ) -> (usize, Rekey) {
        let protocol = if ah { 2 } else { 3 };
        let slot = usize::from(!towards_initiator);
        let dir = |c: &Child| {
            if towards_initiator {
                c.spi_in
            } else {
                c.spi_out
            }
        };
        let open = self.children.iter().position(|c| {
            !c.deleted
                && c.source == LinkKind::Inferred
                && c.protocol == protocol
                && dir(c).is_none()
        });
        let idx = match open {
            Some(i) => {
                self.open_slots[slot] = self.open_slots[slot].saturating_sub(1);
                i
            }
            None => {
                self.push_child(Child::inferred(protocol, ts, None));
                self.children.len() - 1
            }
        };
        let older: Vec<u32> = self.children[..idx]
            .iter()
            .filter(|c| !c.deleted && c.protocol == protocol && dir(c).is_some())
            .filter_map(|c| c.spi_in.or(c.spi_out))
            .collect();
        let child = &mut self.children[idx];
        if towards_initiator {
            child.spi_in = Some(spi);
        } else {
            child.spi_out = Some(spi);
        }
        let settled = child.rekeyed_from.is_some() || child.rekey_open.is_some();
        if settled || child.rekey_hint == Some(false) || older.is_empty() {
            return (idx, Rekey::No);
        }
        match (child.rekey_hint, older.as_slice()) {
            (Some(true), [only]) => {
                child.rekeyed_from = Some(*only);
                (idx, Rekey::Known)
            }
            _ => {
                child.rekey_open = Some(towards_initiator);
                (idx, Rekey::Open)
            }
        }
    }

    /// Marks deleted every live child that a newer child replaced by a rekey (its SPI
    /// is a newer child's `rekeyed_from`): what an encrypted Delete after a child rekey
    /// removes (RFC 7296 §2.8). Returns `false` when no child was replaced.
    pub(crate) fn delete_superseded(&mut self, fx: &mut Vec<Effect>) -> bool {
        let replaced: Vec<u32> = self
            .children
            .iter()
            .filter_map(|c| c.rekeyed_from)
            .collect();
        let mut found = false;
        for c in self.children.iter_mut().filter(|c| !c.deleted) {
            let named = |s: Option<u32>| s.is_some_and(|s| replaced.contains(&s));
            if named(c.spi_in) || named(c.spi_out) {
                c.deleted = true;
                found = true;
                fx.push(Effect::DeletedSpis {
                    ah: c.protocol == 2,
                    spis: c.spi_in.into_iter().chain(c.spi_out).collect(),
                });
            }
        }
        found
    }

    /// The one place a state changes; logs the change once.
    pub(crate) fn set_state(&mut self, state: IkeState, frame: u64, why: &str) {
        if self.state == state {
            return;
        }
        debug!(
            spi_i = %spi64(self.spi_i),
            from = self.state.as_str(),
            to = state.as_str(),
            frame,
            why,
            "IKE SA state change"
        );
        self.state = state;
    }

    /// Marks the SA failed.
    pub(crate) fn fail(&mut self, failure: Failure) {
        let frame = failure.frame;
        let why = failure.code.clone();
        self.failure = Some(Box::new(failure));
        self.pending_failure = None;
        self.set_state(IkeState::Failed, frame, &why);
    }

    /// New progress after an error: the error was not final after all.
    pub(crate) fn progress(&mut self, frame: u64) {
        self.pending_failure = None;
        if self.state == IkeState::Failed {
            self.failure = None;
            let next = if self.established.is_some() {
                IkeState::Established
            } else {
                IkeState::Negotiating
            };
            self.set_state(next, frame, "negotiation continued after an error");
        }
    }

    /// The first child SA became usable at `frame`.
    pub(crate) fn establish(&mut self, frame: u64, ts: Timestamp) {
        if self.established.is_none() {
            self.established = Some((frame, ts));
        }
        self.failure = None;
        self.pending_failure = None;
        self.auth_suspect = None;
        self.child_suspect = None;
        if matches!(self.state, IkeState::Negotiating | IkeState::Failed) {
            self.set_state(IkeState::Established, frame, "first child SA usable");
        }
    }

    /// Records that a message arrived, and the identities it names.
    pub(crate) fn touch(&mut self, ctx: &MsgCtx<'_>) {
        let [id_i, id_r] = content::identities(ctx.msg, ctx.from_initiator);
        if id_i.is_some() && self.rare().ids[0].is_none() {
            self.rare_mut().ids[0] = id_i;
        }
        // The IDr of an IKE_AUTH request is only the identity the initiator asks for.
        if id_r.is_some() && (self.rare().ids[1].is_none() || ctx.msg.header.is_response()) {
            self.rare_mut().ids[1] = id_r;
        }
        self.last_frame = self.last_frame.max(ctx.frame);
        self.last_seen = self.last_seen.max(ctx.ts);
        if let Some((s, d)) = ctx.addrs.ports {
            self.ports_now = if ctx.from_initiator { (s, d) } else { (d, s) };
        }
    }

    /// The latest exchange with this message ID and requester.
    pub(crate) fn find_exchange(
        &self,
        kind: Option<u8>,
        msgid: u32,
        by_init: bool,
    ) -> Option<usize> {
        self.exchanges.iter().rposition(|e| {
            e.message_id == msgid && e.by_initiator == by_init && kind.is_none_or(|k| e.kind == k)
        })
    }

    /// Appends an exchange, dropping one from the middle of the history when full.
    pub(crate) fn push_exchange(&mut self, ex: Exchange) -> usize {
        if self.exchanges.len() >= MAX_EXCHANGES {
            self.exchanges.remove(KEEP_FIRST_EXCHANGES);
        }
        self.exchanges.push(ex);
        self.exchanges.len() - 1
    }

    /// Counts a retransmission on exchange `i`.
    pub(crate) fn retransmitted(&mut self, i: usize, ctx: &MsgCtx<'_>, is_request: bool) {
        self.retransmissions = self.retransmissions.saturating_add(1);
        if let Some(ex) = self.exchanges.get_mut(i) {
            ex.retransmissions = ex.retransmissions.saturating_add(1);
            if is_request {
                ex.last_request_frame = ctx.frame;
                if ex.transmissions.len() < MAX_TRANSMISSIONS {
                    ex.transmissions.push((ctx.frame, ctx.ts, ctx.len as u32));
                }
            }
        }
    }

    /// Adds a child SA, keeping the list bounded (deleted ones go first).
    pub(crate) fn push_child(&mut self, child: Child) {
        if self.children.len() >= MAX_CHILDREN {
            let victim = self.children.iter().position(|c| c.deleted).unwrap_or(0);
            self.children.remove(victim);
        }
        self.children.push(child);
    }

    /// The request at the end of the history that got no answer, if any.
    pub(crate) fn unanswered(&self) -> Option<&Exchange> {
        let last = self.exchanges.last()?;
        (last.response.is_none() && !is_one_way(self.key.version, last.kind)).then_some(last)
    }

    /// `true` while the SA may still carry traffic.
    pub(crate) fn alive(&self) -> bool {
        matches!(self.state, IkeState::Negotiating | IkeState::Established)
    }

    /// Applies the stall rules at `now`: `at_end` when the input has ended.
    pub(crate) fn evaluate(&mut self, now: Timestamp, stall_ns: i64, at_end: bool) {
        if self.state != IkeState::Negotiating || self.mid_life {
            return;
        }
        let idle = now.0.saturating_sub(self.last_seen.0) >= stall_ns;
        if (idle || at_end) && self.settle_known() {
            return;
        }
        if let Some(last) = self.unanswered() {
            let heard = self.rare().icmp.is_some() || self.rare().fragments_lost.is_some();
            if heard || idle || (at_end && last.retransmissions > 0) {
                let f = self.silence_failure(last);
                self.fail(f);
            }
            return;
        }
        if idle {
            let stall = self.v1_aggressive_stall();
            let f = stall
                .or_else(|| self.v2_silent_after_init())
                .unwrap_or_else(|| {
                    let reason = format!(
                        "the last message (frame {}) was followed by silence longer than the \
                     stall threshold, with no error on the wire",
                        self.last_frame
                    );
                    Failure::inferred("negotiation-stalled", self.last_frame, 0.5, reason)
                });
            self.fail(f);
        }
    }

    /// A failure the wire already showed but that later progress could still undo
    /// (a short IKE_AUTH answer, INVALID_KE_PAYLOAD, an IKEv1 refusal) becomes final:
    /// silence followed, the input ended, or the SA is being deleted. `true` if one did.
    pub(crate) fn settle_known(&mut self) -> bool {
        if self.state != IkeState::Negotiating || self.mid_life {
            return false;
        }
        let known = [
            self.auth_suspect.as_deref().cloned(),
            self.pending_failure.as_deref().cloned(),
            self.child_suspect.as_deref().cloned(),
            self.v1.info_after_mm5.map(info_after_mm5),
            self.v1.qm_refused.map(qm_refused),
        ];
        match known.into_iter().flatten().next() {
            Some(f) => {
                self.fail(f);
                true
            }
            None => false,
        }
    }

    /// Records a child SA negotiation refused while the IKE SA is up.
    pub(crate) fn child_refused(&mut self, failure: Failure) {
        if self.rare().child_failures.len() < MAX_CHILD_FAILURES {
            debug!(spi_i = %spi64(self.spi_i), frame = failure.frame, code = %failure.code, "child SA refused");
            self.rare_mut().child_failures.push(failure);
        }
    }

    /// Why the request `last` got no answer, from what else the wire showed.
    fn silence_failure(&self, last: &Exchange) -> Failure {
        let frame = last.last_request_frame;
        let name = exchange_name(self.key.version, last.kind);
        let sends = sent(last.retransmissions);
        let rare = self.rare();
        let icmp = rare
            .icmp
            .and_then(|f| rare.icmp_reports.iter().find(|r| r.frame == f));
        if let Some(icmp) = icmp {
            let f = icmp.frame;
            let reason = format!(
                "{} from {} answered the {name} request",
                icmp.what, icmp.from
            );
            return Failure::inferred("peer-unreachable", f, 0.95, reason);
        }
        if let Some(first) = rare.fragments_lost {
            let reason = format!(
                "the IP fragments of the IKE datagram that starts at frame {first} never all \
                 arrived at the capture point"
            );
            return Failure::inferred("ike-fragments-lost", first, 0.9, reason);
        }
        if let Some(f) = self.mm5_unanswered(last) {
            return f;
        }
        let answered = self.exchanges.iter().filter(|e| e.response.is_some());
        let answered_on = answered.clone().map(|e| e.dst_port).next();
        const LARGEST_UNFRAGMENTED: usize = 1500 - 20 - 8 - 4;
        if answered_on.is_some() && last.request_len as usize > LARGEST_UNFRAGMENTED {
            let reason = format!(
                "the peer answered smaller messages but not this {}-byte {name} request (sent \
                 {sends}), which needs IP fragmentation on an Ethernet path",
                last.request_len
            );
            return Failure::inferred("ike-fragments-lost", frame, 0.7, reason);
        }
        let reason = match answered_on {
            Some(port) if port != last.dst_port => format!(
                "the peer answered on UDP {port} but nothing sent to UDP {} was answered \
                 ({name} sent {sends}): UDP {} is most likely filtered on the path",
                last.dst_port, last.dst_port
            ),
            _ => format!("{name} sent {sends}, and no answer came back"),
        };
        Failure::inferred("peer-unreachable", frame, 0.9, reason)
    }

    /// IKEv1 Main Mode that got MM2 and MM4 but no MM6: the responder could not decrypt
    /// MM5, the classic sign of preshared keys that differ (RFC 2409 §5: MM5 is the
    /// first message encrypted with keys derived from the preshared key). Silence on UDP
    /// 4500 after answers on 500 may also be a filter, so that case is less certain.
    fn mm5_unanswered(&self, last: &Exchange) -> Option<Failure> {
        let v = &self.v1;
        let mm5 = self.key.version == 1
            && !v.aggressive
            && v.init_msgs >= 3
            && v.resp_msgs == 2
            && last.kind == 2
            && last.message_id == 0;
        if !mm5 {
            return None;
        }
        let first_port = self.exchanges.first().map_or(last.dst_port, |e| e.dst_port);
        let sends = sent(last.retransmissions);
        let (confidence, tail) = if first_port != last.dst_port {
            let tail = format!(
                "; MM5 went to UDP {} while MM1-MM4 used UDP {first_port}, so a filter on \
                 UDP {} would look the same",
                last.dst_port, last.dst_port
            );
            (0.5, tail)
        } else {
            (0.7, String::new())
        };
        let reason = format!(
            "the responder answered MM1 and MM3 but not MM5 (sent {sends}): it could \
             not decrypt MM5, which happens when the preshared keys differ{tail}"
        );
        Some(Failure::inferred(
            "auth-failed",
            last.last_request_frame,
            confidence,
            reason,
        ))
    }

    /// IKEv1 Aggressive Mode whose initiator got AM2 and never sent AM3: it could not
    /// verify the responder's hash (RFC 2409 §5.4), most often because the preshared
    /// keys differ.
    fn v1_aggressive_stall(&self) -> Option<Failure> {
        let v = &self.v1;
        if self.key.version != 1 || !v.aggressive || v.init_msgs != 1 || v.resp_msgs == 0 {
            return None;
        }
        let frame = self.exchanges.first()?.response?.0;
        let reason = "the initiator received the responder's Aggressive Mode answer but never \
                      sent the third message: it could not verify the responder's hash, \
                      which happens when the preshared keys differ"
            .to_string();
        Some(Failure::inferred("auth-failed", frame, 0.6, reason))
    }

    /// IKEv2: IKE_SA_INIT was answered and nothing followed it here. When both peers sent
    /// NAT detection payloads, NAT traversal sends IKE_AUTH to UDP 4500 (RFC 7296 §2.23):
    /// this is how a path that drops port 4500 looks from the responder's side.
    fn v2_silent_after_init(&self) -> Option<Failure> {
        let [x] = self.exchanges.as_slice() else {
            return None;
        };
        if self.key.version != 2 || x.kind != 34 || !self.nat.saw_detection_payloads() {
            return None;
        }
        let frame = x.response?.0;
        let reason = format!(
            "IKE_SA_INIT was answered, but no IKE_AUTH from {} ever reached this capture \
             point, so UDP 4500 is probably filtered on the way: both peers sent NAT \
             detection payloads, and NAT traversal moves IKE to port 4500 after IKE_SA_INIT",
            self.initiator.0
        );
        Some(Failure::inferred("peer-unreachable", frame, 0.6, reason))
    }

    /// Direction of a packet between the peers: `true` when `src` is the initiator.
    pub(crate) fn sent_by_initiator(&self, src: IpAddr, sport: Option<u16>) -> bool {
        let (i, r) = (self.initiator.0, self.responder.0);
        if src == i && src != r {
            return true;
        }
        if src == r && src != i {
            return false;
        }
        sport.is_none_or(|p| p == self.ports_now.0)
    }

    /// The report form.
    pub(crate) fn to_report(&self) -> IkeSaReport {
        IkeSaReport {
            version: self.key.version,
            spi_i: spi64(self.spi_i),
            spi_r: spi64(self.spi_r),
            initiator: endpoint(self.initiator),
            responder: endpoint(self.responder),
            state: self.state,
            first_frame: self.first_frame,
            started: self.started.as_secs_f64(),
            established_after_s: self.established_after(),
            retransmissions: self.retransmissions,
            failure: self.failure.as_deref().cloned(),
            child_failures: self.rare().child_failures.clone(),
            nat: self.nat.verdict(),
            child_sas: self.children.iter().map(Child::to_report).collect(),
            exchanges: self.exchanges.iter().map(Exchange::to_report).collect(),
            rekeyed_from: self.rekeyed_from.map(spi64),
            last_frame: self.last_frame,
            offered: self.offered.iter().map(|p| p.to_string()).collect(),
            chosen: self.accepted.first().map(|p| p.to_string()),
            accepted: self.accepted.iter().map(|p| p.to_string()).collect(),
            icmp: self.rare().icmp_reports.clone(),
            last_seen: self.last_seen.as_secs_f64(),
            rule: None,
            decryption: self.rare().decryption.map(|t| t.to_report()),
            id_i: self.rare().ids[0].clone(),
            id_r: self.rare().ids[1].clone(),
        }
    }
}

/// `ip:port`, IPv6 in brackets.
pub(crate) fn endpoint((ip, port): (IpAddr, u16)) -> String {
    super::Endpoint(ip, Some(port)).to_string()
}

/// The failure an encrypted Informational in place of QM2 means. Without keys it cannot
/// say which of the two usual refusals it carries.
fn qm_refused(frame: u64) -> Failure {
    let reason = "the responder answered Quick Mode with an encrypted Informational instead \
                  of QM2: it refused the proposal (NO-PROPOSAL-CHOSEN, e.g. perfect forward \
                  secrecy on one side only) or the identities, i.e. filters that are not \
                  mirrored (INVALID-ID-INFORMATION); the session keys tell which"
        .to_string();
    Failure::inferred("negotiation-stalled", frame, 0.6, reason)
}

/// "once", "4 times": how often a request went out, from its retransmissions.
fn sent(retransmissions: u32) -> String {
    match retransmissions {
        0 => "once".to_string(),
        n => format!("{} times", u64::from(n) + 1),
    }
}

/// The failure an IKEv1 responder's Informational in place of MM6 means.
fn info_after_mm5(frame: u64) -> Failure {
    let reason = "the responder answered MM5 with an Informational instead of MM6: it could \
                  not decrypt MM5, which happens when the preshared keys differ"
        .to_string();
    Failure::inferred("auth-failed", frame, 0.8, reason)
}

/// Exchanges that get no answer by design (IKEv1 Informational, RFC 2408 §4.8).
fn is_one_way(version: u8, kind: u8) -> bool {
    version == 1 && kind == 5
}

/// The name of an exchange type.
pub(crate) fn exchange_name(version: u8, kind: u8) -> &'static str {
    match (version, kind) {
        (2, 34) => "IKE_SA_INIT",
        (2, 35) => "IKE_AUTH",
        (2, 36) => "CREATE_CHILD_SA",
        (2, 37) => "INFORMATIONAL",
        (2, 38) => "IKE_SESSION_RESUME",
        (2, 43) => "IKE_INTERMEDIATE",
        (1, 1) => "Base",
        (1, 2) => "Main Mode",
        (1, 3) => "Authentication Only",
        (1, 4) => "Aggressive Mode",
        (1, 5) => "Informational",
        (1, 6) => "Transaction",
        (1, 32) => "Quick Mode",
        (1, 33) => "New Group Mode",
        _ => "unknown",
    }
}

/// The diagnosis code for an IKEv2 error notify (RFC 7296 §3.10.1), `None` for types
/// that do not end a negotiation.
pub(crate) fn v2_failure_code(notify: u16) -> Option<&'static str> {
    Some(match notify {
        14 => "no-proposal-chosen",
        17 => "invalid-ke",
        24 => "auth-failed",
        11 => "invalid-spi",
        34 | 38 | 39 => "ts-unacceptable",
        1 | 4 | 5 | 7 | 9 | 36 | 37 => "negotiation-stalled",
        _ => return None,
    })
}

/// The diagnosis code for an IKEv1 error notify (RFC 2408 §3.14.1).
pub(crate) fn v1_failure_code(notify: u16) -> Option<&'static str> {
    Some(match notify {
        12..=15 => "no-proposal-chosen",
        18 => "ts-unacceptable",
        17 | 19..=25 => "auth-failed",
        11 => "invalid-spi",
        1..=10 | 16 | 29 | 30 => "negotiation-stalled",
        _ => return None,
    })
}

/// The ESP/AH SPIs a decrypted or cleartext SA payload proposes (the first proposal
/// with a 4-byte SPI), with its protocol and whether it came out of decryption.
pub(crate) fn proposed_child_spi(msg: &IkeMessage) -> Option<(u32, u8, bool)> {
    msg.payloads.iter().find_map(|p| match &p.body {
        PayloadBody::Sa { proposals, .. } => proposals
            .iter()
            .find(|pr| matches!(pr.protocol_id, 2 | 3) && pr.spi_size == 4)
            .map(|pr| (pr.spi as u32, pr.protocol_id, p.decrypted)),
        _ => None,
    })
}

/// The message's length as an exchange keeps it: IKE messages are far below 4 GiB (a
/// UDP datagram, or a length-prefixed TCP message of at most 64 KiB).
pub(crate) fn msg_len(ctx: &MsgCtx<'_>) -> u32 {
    u32::try_from(ctx.len).unwrap_or(u32::MAX)
}

/// The new IKE SPI an SA payload proposes (IKEv2 IKE SA rekey, protocol 1, 8-byte SPI).
pub(crate) fn proposed_ike_spi(msg: &IkeMessage) -> Option<u64> {
    msg.payloads.iter().find_map(|p| match &p.body {
        PayloadBody::Sa { proposals, .. } => proposals
            .iter()
            .find(|pr| pr.protocol_id == 1 && pr.spi_size == 8)
            .map(|pr| pr.spi),
        _ => None,
    })
}

/// The SPI a REKEY_SA notify (16393) names.
pub(crate) fn rekey_notify_spi(msg: &IkeMessage) -> Option<u32> {
    msg.payloads.iter().find_map(|p| match &p.body {
        PayloadBody::Notify(n) if n.notify_type == 16393 => n.spi.map(|s| s as u32),
        _ => None,
    })
}

/// Work a message causes outside its own IKE SA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// An ESP/AH SPI learned exactly: ESP SAs with it belong to this IKE SA.
    Announce {
        /// The SPI.
        spi: u32,
        /// AH rather than ESP.
        ah: bool,
        /// The direction towards the initiator (its inbound SPI).
        towards_initiator: bool,
        /// How it was learned.
        kind: LinkKind,
    },
    /// A Delete named these ESP/AH SPIs.
    DeletedSpis {
        /// AH rather than ESP.
        ah: bool,
        /// The SPIs.
        spis: Vec<u32>,
    },
    /// A Delete named the IKE SA itself.
    IkeDeleted,
    /// A decrypted CREATE_CHILD_SA replaced the IKE SA (RFC 7296 §2.18).
    RekeyIke {
        /// New initiator SPI (the requester's).
        spi_i: u64,
        /// New responder SPI.
        spi_r: u64,
        /// The request came from the old SA's initiator.
        by_initiator: bool,
    },
}

/// Cumulative counters of the statistics block that cannot be recomputed from the tables.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    /// Phase-1 negotiations started.
    pub main_modes: u64,
    /// Phase-2 negotiations started.
    pub quick_modes: u64,
    /// Child SAs added.
    pub key_additions: u64,
    /// Child SAs deleted.
    pub key_deletions: u64,
    /// Rekeys, child and IKE.
    pub rekeys: u64,
    /// Packets for SPIs no SA owns any more.
    pub bad_spi_packets: u64,
    /// Packets a key failed to decrypt.
    pub not_decrypted: u64,
    /// Packets whose ICV failed.
    pub not_authenticated: u64,
}

/// A child SA came up: records it on the SA and announces or awaits its SPIs.
pub(crate) fn add_child(
    sa: &mut IkeSa,
    ex: usize,
    ts: Timestamp,
    counters: &mut Counters,
    fx: &mut Vec<Effect>,
) {
    let Some(e) = sa.exchanges.get(ex) else {
        return;
    };
    let (requester, responder) = (e.req_offer, e.resp_offer);
    let rekeyed_from = e.rekey_spi;
    let rekey_hint = rekey_hint(e);
    let selectors = e
        .selectors
        .as_deref()
        .cloned()
        .map(|(req, resp)| match e.by_initiator {
            true => (req, resp),
            false => (resp, req),
        });
    // A new child with the selectors of a live one replaces it (IKEv1 Quick Mode rekeys
    // name nothing else; RFC 2409 §5.5 rekeys by a fresh Quick Mode).
    let rekeyed_from = rekeyed_from.or_else(|| same_selectors(sa, selectors.as_ref()));
    let rekey_hint = rekey_hint.or(rekeyed_from.map(|_| true));
    // Each side proposes its own inbound SPI (RFC 7296 §3.3.1, RFC 2408 §3.5).
    let (to_init, to_resp) = if e.by_initiator {
        (requester, responder)
    } else {
        (responder, requester)
    };
    let protocol = to_init.or(to_resp).map_or(3, |(_, p, _)| p);
    let source = match (to_init, to_resp) {
        (Some((_, _, true)), _) | (_, Some((_, _, true))) => LinkKind::Decrypted,
        (Some(_), _) | (_, Some(_)) => LinkKind::Proposal,
        _ => LinkKind::Inferred,
    };
    for (slot, offer, towards_initiator) in [(0, to_init, true), (1, to_resp, false)] {
        match offer {
            Some((spi, p, _)) => fx.push(Effect::Announce {
                spi,
                ah: p == 2,
                towards_initiator,
                kind: source,
            }),
            None => sa.open_slots[slot] = sa.open_slots[slot].saturating_add(1),
        }
    }
    counters.key_additions += 1;
    counters.rekeys += u64::from(rekeyed_from.is_some());
    debug!(spi_i = %spi64(sa.spi_i), source = source.as_str(), "child SA added");
    sa.push_child(Child {
        spi_in: to_init.map(|o| o.0),
        spi_out: to_resp.map(|o| o.0),
        rekeyed_from,
        source,
        selectors: selectors.map(Box::new),
        ..Child::inferred(protocol, ts, rekey_hint)
    });
    note_narrowing(sa, ex);
}

/// What a child negotiation says about being a rekey (see [`Child::rekey_hint`]): RFC
/// 7296 §1.3.3 puts REKEY_SA first in a rekey request; other first payloads say nothing
/// either way, so ESP timing decides (see [`Child::rekey_open`]).
fn rekey_hint(e: &Exchange) -> Option<bool> {
    match e.kind {
        35 => Some(false),
        36 if e.rekey_spi.is_some() => Some(true),
        36 if e.req_offer.is_some_and(|o| o.2) => Some(false),
        36 if e.sk_first == 41 => Some(true),
        _ => None,
    }
}

/// The inbound SPI of the latest live child whose traffic selectors are `selectors`.
fn same_selectors(sa: &IkeSa, selectors: Option<&Selectors>) -> Option<u32> {
    let selectors = selectors?;
    sa.children
        .iter()
        .rev()
        .find(|c| !c.deleted && c.selectors.as_deref() == Some(selectors))
        .and_then(|c| c.spi_in.or(c.spi_out))
}

/// A responder that answered with narrower traffic selectors than the request proposed
/// (RFC 7296 §2.9) made a child SA for part of the traffic only: what the seed calls
/// filters that are not mirrored. Recorded as a `ts-unacceptable` child failure with
/// both sides' selectors; traffic outside the narrowed ones finds no SA.
fn note_narrowing(sa: &mut IkeSa, ex: usize) {
    let Some(e) = sa.exchanges.get(ex) else {
        return;
    };
    let (Some(asked), Some(got), Some((frame, _))) = (
        e.req_selectors.as_deref().cloned(),
        e.selectors.as_deref().cloned(),
        e.response,
    ) else {
        return;
    };
    if asked == got {
        return;
    }
    let reason = format!(
        "the responder narrowed the traffic selectors (RFC 7296 §2.9): asked {} === {}, got \
         {} === {}; traffic the filters do not share finds no SA",
        asked.0.join(", "),
        asked.1.join(", "),
        got.0.join(", "),
        got.1.join(", ")
    );
    sa.child_refused(Failure {
        code: "ts-unacceptable".to_string(),
        notify_type: None,
        frame,
        confidence: 1.0,
        reason: Some(reason),
    });
}

/// Delete payloads of a message (cleartext or decrypted) of exchange `ex`: marks
/// children and reports what the tracker must update.
pub(crate) fn apply_deletes(
    sa: &mut IkeSa,
    ex: usize,
    msg: &IkeMessage,
    counters: &mut Counters,
    fx: &mut Vec<Effect>,
) {
    for p in &msg.payloads {
        let PayloadBody::Delete(d) = &p.body else {
            continue;
        };
        if d.protocol_id == 1 {
            detail(sa, ex, "Delete of the IKE SA".to_string());
            fx.push(Effect::IkeDeleted);
            continue;
        }
        let spis: Vec<u32> = d.spis.iter().map(|&s| s as u32).collect();
        let names: Vec<String> = spis.iter().map(|&s| spi32(s)).collect();
        let proto = if d.protocol_id == 2 { "AH" } else { "ESP" };
        detail(
            sa,
            ex,
            format!("Delete of {proto} SPI {}", names.join(", ")),
        );
        for c in sa.children.iter_mut().filter(|c| !c.deleted) {
            let named = |s: Option<u32>| s.is_some_and(|s| spis.contains(&s));
            if named(c.spi_in) || named(c.spi_out) {
                c.deleted = true;
                counters.key_deletions += 1;
            }
        }
        fx.push(Effect::DeletedSpis {
            ah: d.protocol_id == 2,
            spis,
        });
    }
}

/// Adds a fact in words to exchange `ex` of `sa`.
pub(crate) fn detail(sa: &mut IkeSa, ex: usize, what: String) {
    if let Some(e) = sa.exchanges.get_mut(ex) {
        e.detail(what);
    }
}
