//! NAT detection for one IKE SA: recomputing NAT-D hashes (IKEv2 RFC 7296 §2.23, IKEv1
//! RFC 3947 and its drafts) against the addresses seen at the capture point, and weighing
//! them with port floats, UDP encapsulation, keepalives, NAT-OA and inner checksums.
//!
//! A hash "describes" one peer's address: a source hash (IKEv2 NAT_DETECTION_SOURCE_IP,
//! IKEv1's second and later NAT-D) describes the sender, a destination hash (IKEv2
//! NAT_DETECTION_DESTINATION_IP, IKEv1's first NAT-D) the receiver. A mismatch means that
//! peer's address or port was rewritten between the hashing peer and the capture point.
//!
//! Source hashes are weak evidence: strongSwan with `encap = yes`, and always with the
//! kernel-libipsec data plane, hashes a random address on purpose to force UDP
//! encapsulation. A source mismatch therefore decides the verdict only when nothing
//! contradicts it (no matching destination hash of the same peer) or when something else
//! (a rewritten port, keepalives, NAT-OA, a checksum) corroborates it. Destination hashes
//! are never faked and are strong evidence.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use smallvec::SmallVec;

use crate::wire::ike::{IkeMessage, PayloadBody};
use crate::wire::{Addrs, AhPacket, Encap};

use super::natd::{self, ChecksumCheck, NatdHash, Recovered};
use super::report::{NatEvidence, NatReport, NatVerdict};

/// IKEv2 notify NAT_DETECTION_SOURCE_IP (RFC 7296 §3.10.1).
const NAT_DETECTION_SOURCE_IP: u16 = 16388;
/// IKEv2 notify NAT_DETECTION_DESTINATION_IP.
const NAT_DETECTION_DESTINATION_IP: u16 = 16389;
/// The Oakley HASH_ALGORITHM attribute (RFC 2409 Appendix A).
const OAKLEY_HASH_ALGORITHM: u16 = 2;
/// The NAT-T port (RFC 3948).
const NAT_T_PORT: u16 = 4500;

/// Most NAT-D comparisons kept per SA; later ones add nothing a verdict needs.
const MAX_HASH_CHECKS: usize = 64;
/// Most frames listed per piece of evidence.
const MAX_FRAMES: usize = 32;
/// Most endpoints remembered per SA (candidates for hashes and checksums).
const MAX_KNOWN: usize = 16;
/// Most NAT-OA or checksum notes kept per SA.
const MAX_NOTES: usize = 32;
/// Most inner checksums verified per SA.
const MAX_CHECKSUMS: u64 = 256;

/// One of the two peers of the IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Initiator,
    Responder,
}

impl Peer {
    fn of(from_initiator: bool) -> Peer {
        if from_initiator {
            Peer::Initiator
        } else {
            Peer::Responder
        }
    }

    fn other(self) -> Peer {
        match self {
            Peer::Initiator => Peer::Responder,
            Peer::Responder => Peer::Initiator,
        }
    }

    fn idx(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Peer::Initiator => "initiator",
            Peer::Responder => "responder",
        }
    }
}

/// Whether a hash describes its message's sender (source) or receiver (destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Source,
    Destination,
}

/// One NAT-D comparison: a message's source or destination hashes against the endpoint
/// seen at the capture point.
#[derive(Debug, Clone)]
struct HashCheck {
    frame: u64,
    version: u8,
    sender: Peer,
    role: Role,
    alg: NatdHash,
    matched: bool,
    observed: Ep,
    /// Another endpoint known in this SA that the hash does match.
    plausible: Option<Ep>,
}

impl HashCheck {
    fn describes(&self) -> Peer {
        match self.role {
            Role::Source => self.sender,
            Role::Destination => self.sender.other(),
        }
    }

    fn label(&self) -> &'static str {
        match (self.version, self.role) {
            (2, Role::Source) => "NAT_DETECTION_SOURCE_IP",
            (2, Role::Destination) => "NAT_DETECTION_DESTINATION_IP",
            (_, Role::Source) => "NAT-D of its own address",
            (_, Role::Destination) => "NAT-D of the peer's address",
        }
    }
}

/// A bounded list of frames with a total count.
#[derive(Debug, Clone, Default)]
struct Frames {
    count: u64,
    list: Vec<u64>,
}

impl Frames {
    const EMPTY: Frames = Frames {
        count: 0,
        list: Vec::new(),
    };

    fn push(&mut self, frame: u64) {
        self.count += 1;
        if self.list.len() < MAX_FRAMES && !self.list.contains(&frame) {
            self.list.push(frame);
        }
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Where one peer's IKE traffic was seen: on port 500 (no non-ESP marker) and after the
/// float to 4500 (RFC 3947 §4, RFC 7296 §2.23).
#[derive(Debug, Clone, Default)]
struct PeerLegs {
    on_500: Option<(u64, Ep)>,
    on_4500: Option<(u64, Ep)>,
    /// A change of this peer's source that only a NAT explains: frame, before, after.
    /// Boxed: 48 bytes inline in every IKE SA's record for what only NATs make.
    rewrite: Option<Box<(u64, Ep, Ep)>>,
}

/// A NAT-OA payload (RFC 3947 §5.2): an original address as one peer knows it.
#[derive(Debug, Clone)]
struct NatOa {
    frame: u64,
    addr: IpAddr,
    describes: Peer,
    observed: Option<IpAddr>,
}

/// An inner TCP/UDP checksum that failed against the outer addresses.
#[derive(Debug, Clone)]
struct ChecksumNote {
    frame: u64,
    protocol: u8,
    ah: bool,
    observed: (IpAddr, IpAddr),
    sender: Option<Peer>,
    delta: u16,
    recovered: Option<Recovered>,
}

/// Everything one IKE SA has shown about NAT so far. The tracker feeds it every message
/// and keepalive of the SA; [`NatObservations::verdict`] weighs the evidence.
///
/// What every negotiation has (its NAT-D comparisons, endpoints and legs) is kept inline,
/// in the IKE SA's own record; what only some SAs show (keepalives, ESP in UDP, AH,
/// NAT-OA, inner checksums) in a box made when the first of it arrives.
#[derive(Debug, Clone, Default)]
pub struct NatObservations {
    messages: u32,
    hashes: SmallVec<[HashCheck; 4]>,
    ikev1_hash: Option<NatdHash>,
    legs: [PeerLegs; 2],
    known: SmallVec<[Ep; 4]>,
    first_on_4500: Option<u64>,
    rare: Option<Box<Rare>>,
}

/// The evidence of [`NatObservations`] that only some SAs show.
#[derive(Debug, Clone, Default)]
struct Rare {
    keepalives: [Frames; 2],
    udp_esp: Frames,
    ah: Frames,
    nat_oa: Vec<NatOa>,
    quick_mode_senders: Vec<(u32, Peer)>,
    checksums: Vec<ChecksumNote>,
    checksums_ok: u64,
}

/// What [`NatObservations::rare`] reads as before anything rare arrived.
static NOTHING_RARE: Rare = Rare {
    keepalives: [Frames::EMPTY, Frames::EMPTY],
    udp_esp: Frames::EMPTY,
    ah: Frames::EMPTY,
    nat_oa: Vec::new(),
    quick_mode_senders: Vec::new(),
    checksums: Vec::new(),
    checksums_ok: 0,
};

/// An address and UDP port in 20 bytes where a `SocketAddr` takes 32: the NAT evidence of
/// every IKE SA holds several. Printed as the `SocketAddr` it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ep {
    ip: IpAddr,
    port: u16,
}

impl Ep {
    fn new(ip: IpAddr, port: u16) -> Ep {
        Ep { ip, port }
    }

    fn ip(self) -> IpAddr {
        self.ip
    }

    fn port(self) -> u16 {
        self.port
    }

    fn sock(self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

impl fmt::Display for Ep {
    /// As the `SocketAddr` prints (without padding, which no caller asks for), by the
    /// report's quick writer: NAT evidence names endpoints in most IKE SAs' sentences.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        super::Endpoint(self.ip, Some(self.port)).fmt(f)
    }
}

impl NatObservations {
    /// Whether any NAT detection payload (IKEv2 notify or IKEv1 NAT-D) was seen.
    pub(crate) fn saw_detection_payloads(&self) -> bool {
        !self.hashes.is_empty() || self.ikev1_hash.is_some()
    }

    /// An IKE message of this SA. `from_initiator` says which peer sent it (IKEv2: the I
    /// flag; IKEv1: the tracker's knowledge of who sent the first message).
    pub fn on_message(
        &mut self,
        frame: u64,
        addrs: &Addrs,
        encap: Encap,
        from_initiator: bool,
        msg: &IkeMessage,
    ) {
        let Some((sport, dport)) = addrs.ports else {
            return;
        };
        let src = Ep::new(addrs.src, sport);
        let dst = Ep::new(addrs.dst, dport);
        let sender = Peer::of(from_initiator);
        if self.messages == 0 && encap == Encap::Udp {
            self.first_on_4500 = Some(frame);
        }
        self.messages = self.messages.saturating_add(1);
        self.remember(src);
        self.remember(dst);
        self.note_leg(frame, sender, src, encap);
        if msg.version() == 1 {
            self.learn_ikev1_hash(from_initiator, msg);
            self.check_ikev1(frame, sender, (src, dst), msg);
            self.note_nat_oa(frame, sender, addrs, msg);
        } else {
            self.check_ikev2(frame, sender, (src, dst), msg);
        }
    }

    /// A NAT-T keepalive between the SA's peers; `from_initiator` says who sent it.
    /// Only a host that has concluded it is behind a NAT sends them (RFC 3948 §4).
    pub fn on_keepalive(&mut self, frame: u64, from_initiator: bool) {
        self.rare_mut().keepalives[Peer::of(from_initiator).idx()].push(frame);
    }

    /// The first packet of an ESP or AH SA that belongs to one of this SA's child SAs
    /// (the tracker calls it once per ESP/AH SA, not per packet).
    pub fn on_child_packet(&mut self, frame: u64, encap: Encap, is_ah: bool) {
        if is_ah {
            self.rare_mut().ah.push(frame);
        } else if encap == Encap::Udp {
            self.rare_mut().udp_esp.push(frame);
        }
    }

    /// An AH packet of one of the SA's child SAs, with its protected payload: counts it
    /// like [`NatObservations::on_child_packet`] and, in transport mode, verifies the
    /// inner TCP/UDP checksum against the outer addresses (AH leaves it in the clear).
    /// Checks stop after [`MAX_CHECKSUMS`] segments: the first ones already say whether
    /// the addresses are rewritten, and later ones would only cost time.
    pub fn on_ah(&mut self, frame: u64, ah: &AhPacket<'_>) {
        self.on_child_packet(frame, Encap::None, true);
        let rare = self.rare();
        let checked = rare
            .checksums_ok
            .saturating_add(rare.checksums.len() as u64);
        if checked < MAX_CHECKSUMS {
            self.check_inner(frame, &ah.addrs, ah.next_header, ah.payload, true);
        }
    }

    /// The inner transport segment of a transport-mode ESP packet (ESP with NULL
    /// encryption, or decrypted): verifies its TCP/UDP checksum against the outer
    /// addresses. UDP-encapsulated ESP is skipped: under NAT-T the receiver repairs inner
    /// checksums from NAT-OA by design (RFC 3948 §3.1.2), so a mismatch there is expected.
    pub fn on_inner_transport(
        &mut self,
        frame: u64,
        addrs: &Addrs,
        encap: Encap,
        protocol: u8,
        segment: &[u8],
    ) {
        if encap == Encap::None {
            self.check_inner(frame, addrs, protocol, segment, false);
        }
    }

    /// The verdict and the evidence it rests on, strongest first.
    pub fn verdict(&self) -> NatReport {
        let facts = [self.facts(Peer::Initiator), self.facts(Peer::Responder)];
        let hashes_usable = self.hash_problem().is_none();
        let nat = [
            facts[0].behind_nat(hashes_usable),
            facts[1].behind_nat(hashes_usable),
        ];
        let confirmed = facts.iter().all(PeerFacts::confirmed);
        let verdict = match (nat[0], nat[1]) {
            (true, true) => NatVerdict::Both,
            (true, false) => NatVerdict::Initiator,
            (false, true) => NatVerdict::Responder,
            (false, false) if self.has_clean_evidence() && hashes_usable && confirmed => {
                NatVerdict::None
            }
            (false, false) => NatVerdict::Undecidable,
        };
        let mut items = Vec::new();
        self.hash_evidence(&facts, verdict, &mut items);
        self.other_evidence(verdict, &mut items);
        if verdict == NatVerdict::Undecidable && hashes_usable {
            items.push(self.undecidable_reason(&facts));
        }
        items.sort_by_key(|(rank, _)| *rank);
        NatReport {
            verdict,
            evidence: items.into_iter().map(|(_, e)| e).collect(),
        }
    }
}

/// What the evidence says about one peer's address.
#[derive(Debug, Default)]
struct PeerFacts {
    destination_mismatch: Frames,
    destination_match: Frames,
    source_mismatch: Frames,
    source_match: Frames,
    rewrite: bool,
    keepalive: bool,
    nat_oa_differs: bool,
    checksum_located: bool,
    /// The peer's first IKE message came from a port that is neither 500 nor 4500.
    odd_port: Option<(u64, Ep)>,
}

impl PeerFacts {
    /// Evidence other than NAT-D hashes that this peer's address is rewritten.
    fn corroborated(&self) -> bool {
        self.rewrite || self.keepalive || self.nat_oa_differs || self.checksum_located
    }

    /// A source mismatch that nothing contradicts: no hash of this peer matched.
    fn source_alone(&self) -> bool {
        !self.source_mismatch.is_empty()
            && self.destination_match.is_empty()
            && self.source_match.is_empty()
    }

    /// A source mismatch counts only with something beside it: a rewritten port, a
    /// keepalive (see [`PeerFacts::corroborated`]), or at least a source port that is
    /// neither 500 nor 4500, which a port-rewriting NAT produces.
    fn behind_nat(&self, hashes_usable: bool) -> bool {
        if self.corroborated() {
            return true;
        }
        let weak = self.source_alone() && self.odd_port.is_some();
        hashes_usable && (!self.destination_mismatch.is_empty() || weak)
    }

    /// Some hash matches this peer's address as seen here (so "no NAT" covers it).
    fn confirmed(&self) -> bool {
        !self.destination_match.is_empty() || !self.source_match.is_empty()
    }
}

/// Recording: endpoints, legs, hashes, NAT-OA and checksums.
impl NatObservations {
    fn rare(&self) -> &Rare {
        self.rare.as_deref().unwrap_or(&NOTHING_RARE)
    }

    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    fn remember(&mut self, ep: Ep) {
        if self.known.len() < MAX_KNOWN && !self.known.contains(&ep) {
            self.known.push(ep);
        }
    }

    /// Notes which leg (500 or 4500) a message of `sender` came on, and any change of its
    /// source that only a NAT explains: a float that did not land on source port 4500,
    /// or a source that changed within the 4500 leg.
    fn note_leg(&mut self, frame: u64, sender: Peer, src: Ep, encap: Encap) {
        let legs = &mut self.legs[sender.idx()];
        if encap == Encap::None {
            legs.on_500.get_or_insert((frame, src));
            return;
        }
        let Some((_, first)) = legs.on_4500 else {
            legs.on_4500 = Some((frame, src));
            if let Some((_, before)) = legs.on_500 {
                let moved = src.port() != NAT_T_PORT || src.ip() != before.ip();
                if moved && legs.rewrite.is_none() {
                    legs.rewrite = Some(Box::new((frame, before, src)));
                }
            }
            return;
        };
        if first != src && legs.rewrite.is_none() {
            legs.rewrite = Some(Box::new((frame, first, src)));
        }
    }

    /// IKEv1: the responder's chosen phase-1 transform names the hash NAT-D uses.
    fn learn_ikev1_hash(&mut self, from_initiator: bool, msg: &IkeMessage) {
        if from_initiator || self.ikev1_hash.is_some() {
            return;
        }
        let chosen = msg.payloads.iter().find_map(|p| match &p.body {
            PayloadBody::Sa { proposals, .. } => proposals
                .iter()
                .filter(|prop| prop.protocol_id == 1)
                .flat_map(|prop| prop.transforms.first())
                .flat_map(|t| &t.attributes)
                .find(|a| a.attr_type == OAKLEY_HASH_ALGORITHM)
                .and_then(|a| a.value),
            _ => None,
        });
        self.ikev1_hash = chosen.and_then(NatdHash::from_oakley);
    }

    /// IKEv1 NAT-D (RFC 3947 §3.2): the first payload hashes the receiver's address, the
    /// following ones the sender's own addresses.
    fn check_ikev1(&mut self, frame: u64, sender: Peer, eps: (Ep, Ep), msg: &IkeMessage) {
        let hashes: Vec<&[u8]> = msg
            .payloads
            .iter()
            .filter_map(|p| match &p.body {
                PayloadBody::NatDiscovery { hash } => Some(hash.as_slice()),
                _ => None,
            })
            .collect();
        let Some((first, own)) = hashes.split_first() else {
            return;
        };
        let alg = self
            .ikev1_hash
            .filter(|a| a.digest_len() == first.len())
            .or_else(|| NatdHash::from_len(first.len()));
        let Some(alg) = alg else {
            return;
        };
        let spis = (msg.header.spi_i, msg.header.spi_r);
        let ctx = CheckCtx {
            frame,
            version: 1,
            sender,
            alg,
            spis,
        };
        self.record(ctx, Role::Destination, eps.1, &[first]);
        self.record(ctx, Role::Source, eps.0, own);
    }

    /// IKEv2 NAT_DETECTION_*_IP notifies (RFC 7296 §2.23), SHA-1 over the SPIs of this
    /// message's header.
    fn check_ikev2(&mut self, frame: u64, sender: Peer, eps: (Ep, Ep), msg: &IkeMessage) {
        let notifies = |t: u16| -> Vec<&[u8]> {
            msg.payloads
                .iter()
                .filter_map(|p| match &p.body {
                    PayloadBody::Notify(n) if n.notify_type == t => Some(n.data.as_slice()),
                    _ => None,
                })
                .collect()
        };
        let spis = (msg.header.spi_i, msg.header.spi_r);
        let alg = NatdHash::Sha1;
        let ctx = CheckCtx {
            frame,
            version: 2,
            sender,
            alg,
            spis,
        };
        self.record(ctx, Role::Source, eps.0, &notifies(NAT_DETECTION_SOURCE_IP));
        self.record(
            ctx,
            Role::Destination,
            eps.1,
            &notifies(NAT_DETECTION_DESTINATION_IP),
        );
    }

    /// Records one comparison: `hashes` (one message's hashes of one role) against
    /// `observed`; any match counts, as a host may send one source hash per address.
    fn record(&mut self, ctx: CheckCtx, role: Role, observed: Ep, hashes: &[&[u8]]) {
        if hashes.is_empty() || self.hashes.len() >= MAX_HASH_CHECKS {
            return;
        }
        let (i, r) = ctx.spis;
        let hit = |ep: Ep| {
            hashes
                .iter()
                .any(|h| natd::natd_matches(ctx.alg, i, r, ep.sock(), h))
        };
        let matched = hit(observed);
        let plausible = if matched {
            None
        } else {
            self.candidates()
                .into_iter()
                .find(|c| *c != observed && hit(*c))
        };
        self.hashes.push(HashCheck {
            frame: ctx.frame,
            version: ctx.version,
            sender: ctx.sender,
            role,
            alg: ctx.alg,
            matched,
            observed,
            plausible,
        });
    }

    /// Endpoints a mismatching hash might describe instead: every endpoint seen in this
    /// SA, each known address on ports 500 and 4500, and NAT-OA addresses.
    fn candidates(&self) -> Vec<Ep> {
        let ips = self
            .known
            .iter()
            .map(|e| e.ip())
            .chain(self.rare().nat_oa.iter().map(|n| n.addr));
        let mut out = self.known.to_vec();
        for ip in ips {
            for port in [500, NAT_T_PORT] {
                let ep = Ep::new(ip, port);
                if !out.contains(&ep) {
                    out.push(ep);
                }
            }
        }
        out
    }

    /// IKEv1 NAT-OA payloads (RFC 3947 §5.2): the first is the quick-mode initiator's
    /// original address, the second the quick-mode responder's.
    fn note_nat_oa(&mut self, frame: u64, sender: Peer, addrs: &Addrs, msg: &IkeMessage) {
        let oas: Vec<IpAddr> = msg
            .payloads
            .iter()
            .filter_map(|p| match &p.body {
                PayloadBody::NatOriginalAddress { addr } => *addr,
                _ => None,
            })
            .collect();
        if oas.is_empty() {
            return;
        }
        let qm_initiator = self.quick_mode_initiator(msg.header.message_id, sender);
        for (i, addr) in oas.into_iter().take(2).enumerate() {
            let describes = if i == 0 {
                qm_initiator
            } else {
                qm_initiator.other()
            };
            let observed = if describes == sender {
                addrs.src
            } else {
                addrs.dst
            };
            let rare = self.rare_mut();
            if rare.nat_oa.len() < MAX_NOTES {
                let observed = Some(observed);
                rare.nat_oa.push(NatOa {
                    frame,
                    addr,
                    describes,
                    observed,
                });
            }
        }
    }

    /// The peer that sent the first message of a quick mode, by message ID.
    fn quick_mode_initiator(&mut self, message_id: u32, sender: Peer) -> Peer {
        if let Some((_, p)) = self
            .rare()
            .quick_mode_senders
            .iter()
            .find(|(m, _)| *m == message_id)
        {
            return *p;
        }
        let rare = self.rare_mut();
        if rare.quick_mode_senders.len() < MAX_NOTES {
            rare.quick_mode_senders.push((message_id, sender));
        }
        sender
    }

    /// Which peer sent a packet with this source address, judged by the IKE endpoints.
    fn sender_of(&self, src: IpAddr) -> Option<Peer> {
        [Peer::Initiator, Peer::Responder].into_iter().find(|p| {
            let legs = &self.legs[p.idx()];
            [legs.on_500, legs.on_4500]
                .iter()
                .flatten()
                .any(|(_, ep)| ep.ip() == src)
        })
    }

    fn check_inner(&mut self, frame: u64, addrs: &Addrs, protocol: u8, seg: &[u8], ah: bool) {
        let observed = (addrs.src, addrs.dst);
        let delta = match natd::check_transport(addrs.src, addrs.dst, protocol, seg) {
            ChecksumCheck::Valid => {
                self.rare_mut().checksums_ok += 1;
                return;
            }
            ChecksumCheck::NotCheckable => return,
            ChecksumCheck::Invalid { delta } => delta,
        };
        if self.rare().checksums.len() >= MAX_NOTES {
            return;
        }
        let mut cands: Vec<IpAddr> = self.rare().nat_oa.iter().map(|n| n.addr).collect();
        cands.extend(self.known.iter().map(|e| e.ip()));
        cands.dedup();
        let recovered = natd::recover_addresses(observed, protocol, seg, &cands);
        let sender = self.sender_of(addrs.src);
        self.rare_mut().checksums.push(ChecksumNote {
            frame,
            protocol,
            ah,
            observed,
            sender,
            delta,
            recovered,
        });
    }
}

/// The fixed parts of one message's NAT-D comparisons.
#[derive(Debug, Clone, Copy)]
struct CheckCtx {
    frame: u64,
    version: u8,
    sender: Peer,
    alg: NatdHash,
    spis: (u64, u64),
}

/// Weighing: facts per peer and the evidence list.
impl NatObservations {
    fn facts(&self, peer: Peer) -> PeerFacts {
        let mut f = PeerFacts::default();
        for h in self.hashes.iter().filter(|h| h.describes() == peer) {
            let set = match (h.role, h.matched) {
                (Role::Destination, false) => &mut f.destination_mismatch,
                (Role::Destination, true) => &mut f.destination_match,
                (Role::Source, false) => &mut f.source_mismatch,
                (Role::Source, true) => &mut f.source_match,
            };
            set.push(h.frame);
        }
        let legs = &self.legs[peer.idx()];
        f.rewrite = legs.rewrite.is_some();
        f.odd_port = legs
            .on_500
            .filter(|(_, ep)| ep.port() != 500 && ep.port() != NAT_T_PORT);
        let rare = self.rare();
        f.keepalive = !rare.keepalives[peer.idx()].is_empty();
        f.nat_oa_differs = rare
            .nat_oa
            .iter()
            .any(|n| n.describes == peer && n.observed != Some(n.addr));
        f.checksum_located = rare
            .checksums
            .iter()
            .any(|c| checksum_blames(c) == Some(peer));
        f
    }

    /// Why the NAT-D hashes cannot be read, when they cannot: either every one mismatches,
    /// or the destination hashes of both peers do (no single capture point behind
    /// ordinary NAT sees both peers' addresses rewritten in front of it).
    fn hash_problem(&self) -> Option<&'static str> {
        if self.hashes.is_empty() {
            return None;
        }
        if self.hashes.iter().all(|h| !h.matched) {
            return Some(
                "every NAT-D hash mismatches the addresses seen here and every other known \
                 endpoint: the capture point sits behind an unusual middlebox, or a peer \
                 computes NAT-D from addresses it does not use",
            );
        }
        let dest_mismatch = |p: Peer| {
            self.hashes
                .iter()
                .any(|h| h.role == Role::Destination && !h.matched && h.describes() == p)
        };
        if dest_mismatch(Peer::Initiator) && dest_mismatch(Peer::Responder) {
            return Some(
                "the destination hashes of both peers mismatch, which no single capture \
                 point behind ordinary NAT can see",
            );
        }
        None
    }

    /// `none` needs something positive: at least one NAT-D comparison.
    fn has_clean_evidence(&self) -> bool {
        !self.hashes.is_empty()
    }

    fn undecidable_reason(&self, facts: &[PeerFacts; 2]) -> (u8, NatEvidence) {
        let unconfirmed = [Peer::Initiator, Peer::Responder]
            .into_iter()
            .find(|p| !facts[p.idx()].confirmed() && !self.hashes.is_empty());
        if let Some(p) = unconfirmed {
            let detail = format!(
                "no hash confirms the {p}'s address: its own hash mismatches, which a peer \
                 forcing UDP encapsulation fakes, and no hash from the other peer was seen to \
                 check it; nothing else locates a NAT",
                p = p.name()
            );
            let frames = facts[p.idx()].source_mismatch.list.clone();
            return (0, evidence("natd-undecidable", detail, frames));
        }
        let (detail, frames) = match self.first_on_4500 {
            Some(f) if self.hashes.is_empty() => (
                "IKE started directly on UDP 4500 and carries no NAT-D: NAT traversal is in \
                 use, but nothing shows which side is behind a NAT"
                    .to_string(),
                vec![f],
            ),
            _ => (
                "no NAT-D payload was seen in the clear (NAT traversal not negotiated, or \
                 the exchange that carries it was not captured), and nothing else locates \
                 a NAT"
                    .to_string(),
                Vec::new(),
            ),
        };
        (0, evidence("natd-undecidable", detail, frames))
    }

    fn hash_evidence(
        &self,
        facts: &[PeerFacts; 2],
        verdict: NatVerdict,
        items: &mut Vec<(u8, NatEvidence)>,
    ) {
        let problem = self.hash_problem();
        let usable = problem.is_none();
        if let Some(reason) = problem {
            let mut frames = Frames::default();
            self.hashes.iter().for_each(|h| frames.push(h.frame));
            let rank = if verdict == NatVerdict::Undecidable {
                0
            } else {
                3
            };
            let e = evidence("natd-undecidable", reason.to_string(), frames.list);
            items.push((rank, e));
        }
        for peer in [Peer::Initiator, Peer::Responder] {
            let f = &facts[peer.idx()];
            if let Some(e) = self.destination_mismatch(peer, f, usable) {
                items.push(e);
            }
            if let Some(e) = self.source_mismatch(peer, f, usable) {
                items.push(e);
            }
        }
        if let Some(e) = self.matches() {
            // Matching hashes are what a "none" verdict rests on.
            let rank = if verdict == NatVerdict::None { 1 } else { 3 };
            items.push((rank, e));
        }
    }

    fn first_check(&self, peer: Peer, role: Role, matched: bool) -> Option<&HashCheck> {
        self.hashes
            .iter()
            .find(|h| h.describes() == peer && h.role == role && h.matched == matched)
    }

    fn destination_mismatch(
        &self,
        peer: Peer,
        f: &PeerFacts,
        usable: bool,
    ) -> Option<(u8, NatEvidence)> {
        let h = self.first_check(peer, Role::Destination, false)?;
        let conclusion = if usable {
            format!(
                "the {p}'s address was rewritten on the way: the {p} is behind NAT. The \
                 verdict rests on this destination hash (strong: no peer fakes it)",
                p = peer.name()
            )
        } else {
            "not used for the verdict (see natd-undecidable)".to_string()
        };
        let detail = format!("{}; {conclusion}", mismatch_sentence(h));
        let frames = f.destination_mismatch.list.clone();
        Some((1, evidence("natd-destination-mismatch", detail, frames)))
    }

    fn source_mismatch(
        &self,
        peer: Peer,
        f: &PeerFacts,
        usable: bool,
    ) -> Option<(u8, NatEvidence)> {
        let h = self.first_check(peer, Role::Source, false)?;
        let p = peer.name();
        let (rank, conclusion) = if !usable {
            (
                3,
                "not used for the verdict (see natd-undecidable)".to_string(),
            )
        } else if !f.destination_mismatch.is_empty() {
            (2, "consistent with the destination hash".to_string())
        } else if f.corroborated() {
            (
                2,
                format!(
                    "the {p} is behind NAT: weak alone (peers forcing UDP encapsulation \
                     fake it), corroborated here by {}",
                    corroboration(f)
                ),
            )
        } else if let (true, Some((_, ep))) = (f.source_alone(), f.odd_port) {
            (
                1,
                format!(
                    "the {p} is behind NAT. The verdict rests on this source hash, weak alone \
                     (a peer that forces UDP encapsulation, like strongSwan encap=yes or \
                     kernel-libipsec, fakes it on purpose), and on the {p}'s source port {} \
                     being neither 500 nor 4500, as a NAT that rewrites ports makes it",
                    ep.port()
                ),
            )
        } else if f.source_alone() {
            (
                3,
                format!(
                    "not taken as NAT: a peer that forces UDP encapsulation (strongSwan \
                     encap=yes, kernel-libipsec) fakes it on purpose, and nothing else shows a \
                     NAT in front of the {p}"
                ),
            )
        } else {
            (
                3,
                format!(
                    "not taken as NAT: the peer's hash of the {p}'s address matches and \
                     nothing else shows a NAT, so the {p} most likely forces UDP \
                     encapsulation (strongSwan encap=yes, kernel-libipsec)"
                ),
            )
        };
        let detail = format!("{}; {conclusion}", mismatch_sentence(h));
        let frames = f.source_mismatch.list.clone();
        Some((rank, evidence("natd-source-mismatch", detail, frames)))
    }

    fn matches(&self) -> Option<NatEvidence> {
        let mut frames = Frames::default();
        let mut what = Vec::new();
        for h in self.hashes.iter().filter(|h| h.matched) {
            frames.push(h.frame);
            let s = format!("{} of the {}", h.label(), h.describes().name());
            if !what.contains(&s) {
                what.push(s);
            }
        }
        let first = self.hashes.iter().find(|h| h.matched)?;
        let detail = format!(
            "{} ({}) match the addresses seen here, e.g. {} in frame {}",
            what.join(", "),
            first.alg.name(),
            first.observed,
            first.frame
        );
        Some(evidence("natd-match", detail, frames.list))
    }

    fn other_evidence(&self, verdict: NatVerdict, items: &mut Vec<(u8, NatEvidence)>) {
        for peer in [Peer::Initiator, Peer::Responder] {
            self.leg_evidence(peer, items);
            let k = &self.rare().keepalives[peer.idx()];
            if !k.is_empty() {
                let detail = format!(
                    "the {p} sent {n} NAT-T keepalive(s): only a host that found itself \
                     behind NAT sends them (RFC 3948 §4), so the {p} is behind NAT",
                    p = peer.name(),
                    n = k.count
                );
                items.push((1, evidence("keepalive", detail, k.list.clone())));
            }
        }
        self.nat_oa_evidence(items);
        self.checksum_evidence(items);
        self.encapsulation_evidence(items);
        self.ah_evidence(verdict, items);
    }

    fn leg_evidence(&self, peer: Peer, items: &mut Vec<(u8, NatEvidence)>) {
        let legs = &self.legs[peer.idx()];
        let p = peer.name();
        if let (Some((f500, a)), Some((f4500, b))) = (legs.on_500, legs.on_4500) {
            let detail = format!("the {p}'s IKE moved from {a} to {b} (UDP 4500, NAT traversal)");
            items.push((3, evidence("port-float", detail, vec![f500, f4500])));
        }
        if let Some(&(frame, before, after)) = legs.rewrite.as_deref() {
            let detail = format!(
                "the {p}'s source changed from {before} to {after}; a host floats to source \
                 port 4500 and keeps it, so a NAT rewrote it: the {p} is behind NAT"
            );
            items.push((1, evidence("port-rewrite", detail, vec![frame])));
        }
    }

    fn nat_oa_evidence(&self, items: &mut Vec<(u8, NatEvidence)>) {
        for n in &self.rare().nat_oa {
            let p = n.describes.name();
            let observed = n.observed.map_or("-".to_string(), |o| o.to_string());
            let (rank, detail) = if n.observed == Some(n.addr) {
                (
                    3,
                    format!(
                        "NAT-OA gives the {p}'s original address {}, the one seen here",
                        n.addr
                    ),
                )
            } else {
                let text = format!(
                    "NAT-OA gives the {p}'s original address {} but {observed} is seen here: \
                     the {p}'s address was rewritten",
                    n.addr
                );
                (1, text)
            };
            items.push((rank, evidence("nat-oa", detail, vec![n.frame])));
        }
    }

    fn checksum_evidence(&self, items: &mut Vec<(u8, NatEvidence)>) {
        for c in &self.rare().checksums {
            let rank = if checksum_blames(c).is_some() { 1 } else { 3 };
            let detail = checksum_sentence(c);
            items.push((rank, evidence("checksum-mismatch", detail, vec![c.frame])));
        }
    }

    fn encapsulation_evidence(&self, items: &mut Vec<(u8, NatEvidence)>) {
        let udp_esp = &self.rare().udp_esp;
        if !udp_esp.is_empty() {
            let detail = format!(
                "{} ESP SA(s) inside UDP (RFC 3948): NAT traversal is in use (forced or \
                 detected), which by itself does not say where a NAT is",
                udp_esp.count
            );
            items.push((
                3,
                evidence("udp-encapsulation", detail, udp_esp.list.clone()),
            ));
        }
        if let Some(f) = self.first_on_4500 {
            let detail = if self.hashes.is_empty() {
                "IKE started directly on UDP 4500, without NAT-D"
            } else {
                "IKE started directly on UDP 4500"
            };
            items.push((3, evidence("ike-on-4500", detail.to_string(), vec![f])));
        }
    }

    fn ah_evidence(&self, verdict: NatVerdict, items: &mut Vec<(u8, NatEvidence)>) {
        let rare = self.rare();
        if rare.ah.is_empty() {
            return;
        }
        let nat = matches!(
            verdict,
            NatVerdict::Initiator | NatVerdict::Responder | NatVerdict::Both
        );
        let rewritten = rare.checksums.iter().any(|c| c.ah);
        if !nat && !rewritten {
            return;
        }
        let detail = format!(
            "{} AH packet(s) between peers whose addresses are rewritten: AH's integrity \
             check covers the IP addresses (RFC 4302 §3.3.3.1), so every one fails at the \
             receiver; use ESP with NAT traversal instead",
            rare.ah.count
        );
        items.push((0, evidence("ah-through-nat", detail, rare.ah.list.clone())));
    }
}

/// The peer a checksum mismatch locates: the sender when its source was rewritten, the
/// receiver when the destination was.
fn checksum_blames(c: &ChecksumNote) -> Option<Peer> {
    let sender = c.sender?;
    match c.recovered? {
        Recovered::Source(_) => Some(sender),
        Recovered::Destination(_) => Some(sender.other()),
        Recovered::Both(..) => None,
    }
}

fn checksum_sentence(c: &ChecksumNote) -> String {
    let proto = if c.protocol == 6 { "TCP" } else { "UDP" };
    let carrier = if c.ah {
        "AH-protected"
    } else {
        "ESP-protected"
    };
    let head = format!(
        "the {carrier} {proto} checksum fails with the outer addresses {} -> {}, so they \
         were rewritten after it was computed",
        c.observed.0, c.observed.1
    );
    match c.recovered {
        Some(Recovered::Source(a)) => format!("{head}; it verifies with source {a}, the original"),
        Some(Recovered::Destination(a)) => {
            format!("{head}; it verifies with destination {a}, the original")
        }
        Some(Recovered::Both(s, d)) => format!("{head}; it verifies with {s} -> {d}"),
        None => format!(
            "{head} (the original addresses' one's-complement sum differs by {:#06x}; no known \
             address explains it, and a capture on the sending host with checksum offload \
             looks the same)",
            c.delta
        ),
    }
}

fn mismatch_sentence(h: &HashCheck) -> String {
    let also = h
        .plausible
        .map(|p| format!(" (it matches {p}, also seen in this SA)"))
        .unwrap_or_default();
    format!(
        "frame {}: the {}'s {} ({}) does not match {}, the {}'s address seen here{also}",
        h.frame,
        h.sender.name(),
        h.label(),
        h.alg.name(),
        h.observed,
        h.describes().name()
    )
}

fn corroboration(f: &PeerFacts) -> String {
    let mut what = Vec::new();
    if f.rewrite {
        what.push("a rewritten source port");
    }
    if f.keepalive {
        what.push("NAT-T keepalives");
    }
    if f.nat_oa_differs {
        what.push("NAT-OA");
    }
    if f.checksum_located {
        what.push("an inner checksum");
    }
    what.join(" and ")
}

fn evidence(kind: &str, detail: String, frames: Vec<u64>) -> NatEvidence {
    NatEvidence {
        kind: kind.to_string(),
        detail,
        frames,
    }
}

#[cfg(test)]
#[path = "nat_tests.rs"]
mod tests;
