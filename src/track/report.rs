//! The report: what the tracker knows, as plain data in the shape of the JSON contract
//! (`ipsecmon report --json`, DESIGN.md). Every output (view, API, metrics, diagnosis)
//! renders from a [`Report`]; none of them reads the live tables.

use serde::{Deserialize, Serialize};

/// Formats an IKE SPI / cookie as 16 lower-case hex digits.
pub fn spi64(spi: u64) -> String {
    hex(spi, 16)
}

/// Formats an ESP/AH SPI as 8 lower-case hex digits.
pub fn spi32(spi: u32) -> String {
    hex(u64::from(spi), 8)
}

/// The low `digits` hex digits of `v` in lower case, leading zeros kept (what `{:016x}`
/// and `{:08x}` print for values that fit), without the formatting machinery: a report
/// writes several SPIs per SA.
fn hex(v: u64, digits: u32) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    (0..digits)
        .rev()
        .map(|i| char::from(DIGITS[((v >> (4 * i)) & 0xf) as usize]))
        .collect()
}

/// Lifecycle state of an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum IkeState {
    /// Exchanges under way, no usable child SA yet.
    Negotiating,
    /// The first child SA is usable.
    Established,
    /// Negotiation ended in an error or gave up.
    Failed,
    /// Deleted by an INFORMATIONAL / Informational Delete, or replaced by a rekey.
    Deleted,
    /// No traffic for longer than the idle expiry (packet time).
    Expired,
}

impl IkeState {
    /// The JSON / label spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            IkeState::Negotiating => "negotiating",
            IkeState::Established => "established",
            IkeState::Failed => "failed",
            IkeState::Deleted => "deleted",
            IkeState::Expired => "expired",
        }
    }
}

/// Why an IKE SA failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// A diagnosis code (`no-proposal-chosen`, `peer-unreachable`, ...).
    pub code: String,
    /// The notify type that carried the failure, when one did.
    pub notify_type: Option<u16>,
    /// The frame that showed it.
    pub frame: u64,
    /// 1.0 when a notify says it outright (cleartext or decrypted); lower when the
    /// failure is inferred from sizes, silence or timing.
    #[serde(default = "certain")]
    pub confidence: f64,
    /// For an inferred failure: what the inference rests on, in one sentence.
    #[serde(default)]
    pub reason: Option<String>,
}

impl Failure {
    /// A failure a notify states outright.
    pub fn notified(code: &str, notify_type: u16, frame: u64) -> Failure {
        Failure {
            code: code.to_string(),
            notify_type: Some(notify_type),
            frame,
            confidence: 1.0,
            reason: None,
        }
    }

    /// A failure inferred from what the wire shows, with how sure the inference is.
    pub fn inferred(code: &str, frame: u64, confidence: f64, reason: String) -> Failure {
        Failure {
            code: code.to_string(),
            notify_type: None,
            frame,
            confidence,
            reason: Some(reason),
        }
    }
}

fn certain() -> f64 {
    1.0
}

/// NAT verdict for an IKE SA (or a correlation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NatVerdict {
    /// Evidence shows no NAT between the peers.
    None,
    /// The initiator is behind a NAT.
    Initiator,
    /// The responder is behind a NAT.
    Responder,
    /// Both are.
    Both,
    /// The evidence cannot decide (no NAT-D, or hashes that match nothing plausible).
    #[default]
    Undecidable,
}

/// One piece of NAT evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatEvidence {
    /// What showed it; a stable string (the diagnosis matches on it):
    ///
    /// - `natd-destination-mismatch`: a destination NAT-D hash (IKEv2
    ///   NAT_DETECTION_DESTINATION_IP, IKEv1's first NAT-D) does not match the receiver's
    ///   address seen here. Strong: no peer fakes it.
    /// - `natd-source-mismatch`: a source hash (IKEv2 NAT_DETECTION_SOURCE_IP, IKEv1's
    ///   later NAT-D) does not match the sender's address. Weak: forced UDP encapsulation
    ///   fakes it; the detail says whether the verdict used it.
    /// - `natd-match`: hashes that match the addresses seen here.
    /// - `natd-undecidable`: why the hashes cannot decide (all mismatch, contradictory, or
    ///   none seen).
    /// - `port-float`: IKE moved from UDP 500 to 4500.
    /// - `port-rewrite`: a peer's source port or address changed in a way only a NAT
    ///   explains (a float that did not land on port 4500, a changed 4500 source).
    /// - `udp-encapsulation`: ESP inside UDP.
    /// - `ike-on-4500`: IKE started directly on UDP 4500.
    /// - `keepalive`: NAT-T keepalives; their sender believes it is behind NAT.
    /// - `nat-oa`: an IKEv1 NAT-OA original address, and whether it is the one seen here.
    /// - `checksum-mismatch`: an inner TCP/UDP checksum that fails with the outer
    ///   addresses (addresses rewritten after it was computed); names the original address
    ///   when a known one makes it verify.
    /// - `ah-through-nat`: AH between peers whose addresses are rewritten (always broken).
    pub kind: String,
    /// One sentence saying what was compared and what came out.
    pub detail: String,
    /// Frames that carry the evidence.
    pub frames: Vec<u64>,
}

/// The NAT block of an IKE SA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NatReport {
    /// The verdict.
    pub verdict: NatVerdict,
    /// What the verdict rests on, strongest first.
    pub evidence: Vec<NatEvidence>,
}

/// A child SA (IKEv2 CHILD_SA, IKEv1 phase-2 SA) as negotiated by an IKE SA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildSaReport {
    /// Inbound SPI (towards the initiator), 8 hex digits, when known.
    pub spi_in: Option<String>,
    /// Outbound SPI (towards the responder), 8 hex digits, when known.
    pub spi_out: Option<String>,
    /// `esp` or `ah`.
    pub protocol: String,
    /// Capture time at which it became usable.
    pub established_at: Option<f64>,
    /// The inbound SPI of the child SA this one replaced, when it is a rekey.
    pub rekeyed_from: Option<String>,
    /// How the SPIs were learned: `decrypted` (exact), `proposal` (cleartext SA payload),
    /// or `inferred` (endpoints and timing).
    pub source: String,
    /// Traffic selectors of the IKE initiator's side (IKEv2 TSi or TSr, IKEv1 Quick Mode
    /// IDci or IDcr), as `198.51.100.0/24 proto 6 port 6667`; empty when not seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ts_i: Vec<String>,
    /// Traffic selectors of the IKE responder's side.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ts_r: Vec<String>,
    /// A Delete removed it (decrypted, or read from an encrypted exchange's shape).
    #[serde(default)]
    pub deleted: bool,
}

/// One request/response round trip of an exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeReport {
    /// Exchange name (`IKE_SA_INIT`, `Main Mode`, `Quick Mode`, ...).
    pub exchange: String,
    /// Message ID.
    pub message_id: u32,
    /// Frame of the first request.
    pub request_frame: u64,
    /// Frame of the response, when seen.
    pub response_frame: Option<u64>,
    /// Capture time of the first request.
    pub started: f64,
    /// Response time minus first request time.
    pub rtt_s: Option<f64>,
    /// Retransmitted requests (same message ID, same bytes).
    pub retransmissions: u32,
    /// Notify types seen in the exchange (cleartext or decrypted).
    pub notifies: Vec<u16>,
    /// `true` when the original initiator of the IKE SA sent the request.
    #[serde(default)]
    pub from_initiator: bool,
    /// Destination UDP port of the request (500, 4500, or a port a NAT chose).
    #[serde(default)]
    pub dst_port: u16,
    /// IKE fragments (RFC 7383) the request was sent as; 0 when it was not fragmented.
    #[serde(default)]
    pub request_fragments: u16,
    /// Each transmission of the request (the first and every retransmission), capped.
    #[serde(default)]
    pub transmissions: Vec<Transmission>,
    /// Facts the tracker read from the exchange, in words (e.g. `responder wants DH group 19`).
    #[serde(default)]
    pub details: Vec<String>,
}

/// One transmission of a request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Transmission {
    /// Frame number.
    pub frame: u64,
    /// Capture time, seconds.
    pub ts: f64,
    /// Bytes of the IKE message.
    pub bytes: u32,
}

/// An ICMP error that quoted a packet of an IKE SA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IcmpReport {
    /// Frame number of the ICMP error.
    pub frame: u64,
    /// Capture time, seconds.
    pub ts: f64,
    /// Who sent the ICMP error.
    pub from: String,
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code.
    pub code: u8,
    /// Next-hop MTU, when given.
    pub mtu: Option<u32>,
    /// What it means, in words (`port unreachable`, `fragmentation needed (MTU 1400)`).
    pub what: String,
}

/// What decryption with `--keys` achieved for one SA. Present only for SAs that a key
/// was given for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecryptionReport {
    /// `decrypted` (everything with a key decrypted), `partial`, `not-authenticated`
    /// (ICV failures: the key is wrong or the packets were altered) or `not-decrypted`
    /// (the plaintext made no sense, or the IV could not be derived).
    pub status: String,
    /// Messages (IKE) or packets (ESP) decrypted.
    pub decrypted: u64,
    /// Of those, how many had their ICV checked (the others were believed because their
    /// plaintext parsed: IKEv1, or an integrity algorithm given as "no checking").
    pub verified: u64,
    /// Messages or packets that did not decrypt.
    pub not_decrypted: u64,
    /// Messages or packets whose ICV failed.
    pub not_authenticated: u64,
    /// The first failure.
    pub first_failure: Option<DecryptFailure>,
}

/// One decryption failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecryptFailure {
    /// The frame.
    pub frame: u64,
    /// `icv-mismatch`, `bad-padding`, `bad-plaintext`, `bad-length`, `no-iv`,
    /// `unsupported-algorithm` or `key-length`.
    pub reason: String,
}

/// An IKE SA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IkeSaReport {
    /// 1 or 2.
    pub version: u8,
    /// Initiator SPI / cookie, 16 hex digits.
    pub spi_i: String,
    /// Responder SPI / cookie, 16 hex digits (all zeros until the responder answers).
    pub spi_r: String,
    /// Initiator `ip:port` as first seen.
    pub initiator: String,
    /// Responder `ip:port` as first seen.
    pub responder: String,
    /// Lifecycle state.
    pub state: IkeState,
    /// Frame of the first packet of the negotiation.
    pub first_frame: u64,
    /// Capture time of the first packet.
    pub started: f64,
    /// From the first request to the message that made the first child SA usable.
    pub established_after_s: Option<f64>,
    /// Retransmitted messages, all exchanges together.
    pub retransmissions: u32,
    /// Why it failed, when it did.
    pub failure: Option<Failure>,
    /// Child SA negotiations refused while the IKE SA was up (CREATE_CHILD_SA, Quick
    /// Mode), each like `failure`.
    #[serde(default)]
    pub child_failures: Vec<Failure>,
    /// NAT verdict and evidence.
    pub nat: NatReport,
    /// Child SAs.
    pub child_sas: Vec<ChildSaReport>,
    /// Exchanges with their timings, in order.
    pub exchanges: Vec<ExchangeReport>,
    /// `spi_i` of the IKE SA this one replaced by an IKE SA rekey.
    pub rekeyed_from: Option<String>,
    /// Frame of the last packet seen.
    pub last_frame: u64,
    /// The proposals the initiator offered, as `esp:aes128-sha256-modp2048` style strings.
    #[serde(default)]
    pub offered: Vec<String>,
    /// The proposal the responder chose, in the same notation.
    #[serde(default)]
    pub chosen: Option<String>,
    /// Every proposal the responder's answers accepted (IKE and child SAs), bounded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<String>,
    /// ICMP errors that quoted this SA's packets.
    #[serde(default)]
    pub icmp: Vec<IcmpReport>,
    /// The policy rule the SA falls under, when a policy is loaded (`--policy`).
    #[serde(default)]
    pub rule: Option<String>,
    /// Capture time of the last packet.
    pub last_seen: f64,
    /// Decryption of its encrypted messages, when `--keys` has keys for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decryption: Option<DecryptionReport>,
    /// The initiator's identity (IKEv2 IDi, IKEv1 phase-1 ID), when seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_i: Option<String>,
    /// The responder's identity (IKEv2 IDr of the IKE_AUTH response), when seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_r: Option<String>,
}

/// An ESP or AH SA (one direction), keyed by destination and SPI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EspSaReport {
    /// SPI, 8 hex digits.
    pub spi: String,
    /// Source (`ip`, or `ip:port` when UDP-encapsulated).
    pub src: String,
    /// Destination (`ip`, or `ip:port` when UDP-encapsulated).
    pub dst: String,
    /// `none` or `udp`.
    pub encap: String,
    /// Packets seen.
    pub packets: u64,
    /// Bytes of ESP/AH payload seen.
    pub bytes: u64,
    /// Capture time of the first packet.
    pub first_seen: f64,
    /// Capture time of the last packet.
    pub last_seen: f64,
    /// Frame of the first packet.
    #[serde(default)]
    pub first_frame: u64,
    /// Frame of the last packet.
    #[serde(default)]
    pub last_frame: u64,
    /// Sequence numbers skipped (never seen).
    pub lost: u64,
    /// Sequence numbers seen twice.
    pub replayed: u64,
    /// Packets that arrived out of order within the window.
    pub reordered: u64,
    /// `spi_i` of the IKE SA it belongs to, or null.
    pub ike_sa: Option<String>,
    /// How it was attached to its IKE SA: `decrypted`, `proposal`, `inferred`, or null.
    pub ike_sa_link: Option<String>,
    /// The SPI of the opposite direction of the same child SA, when paired.
    pub peer_spi: Option<String>,
    /// How the two directions were paired: `child-sa` (both SPIs are in one child SA of
    /// the IKE SA) or `timing` (reversed endpoints, first packets closest in time).
    #[serde(default)]
    pub peer_link: Option<String>,
    /// The policy rule the SA falls under, when a policy is loaded (`--policy`).
    #[serde(default)]
    pub rule: Option<String>,
    /// Decryption of its packets, when `--keys` has keys for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decryption: Option<DecryptionReport>,
}

/// IPSecMon's statistics block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Stats {
    /// Established child SAs not deleted or expired.
    pub active_associations: u64,
    /// ESP payload bytes sent by the local (or initiator) side.
    pub confidential_bytes_sent: u64,
    /// ESP payload bytes received by the local (or initiator) side.
    pub confidential_bytes_received: u64,
    /// AH (and ESP) bytes sent with integrity protection.
    pub authenticated_bytes_sent: u64,
    /// AH (and ESP) bytes received with integrity protection.
    pub authenticated_bytes_received: u64,
    /// ESP/AH packets for an SPI no SA owns.
    pub bad_spi_packets: u64,
    /// ESP packets and IKE messages a given key failed to decrypt (the plaintext made no
    /// sense, or an IKEv1 IV could not be derived).
    pub packets_not_decrypted: u64,
    /// ESP packets and IKE messages whose ICV failed with a given key.
    pub packets_not_authenticated: u64,
    /// Child SAs added.
    pub key_additions: u64,
    /// Child SAs deleted.
    pub key_deletions: u64,
    /// Rekeys (child and IKE).
    pub rekeys: u64,
    /// Negotiations under way.
    pub pending_key_operations: u64,
    /// Phase-1 negotiations (IKEv1 Main / Aggressive Mode, IKEv2 IKE_SA_INIT).
    pub main_modes: u64,
    /// Phase-2 negotiations (IKEv1 Quick Mode, IKEv2 child SA creations).
    pub quick_modes: u64,
    /// ESP SAs seen on the wire without a matching negotiation.
    pub soft_associations: u64,
    /// Negotiations that failed authentication.
    pub authentication_failures: u64,
}

/// What the tracker had to leave out because a table was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Evictions {
    /// IKE SAs evicted or refused.
    pub ike_sas: u64,
    /// ESP/AH SAs evicted or refused.
    pub esp_sas: u64,
    /// Fragment reassemblies abandoned.
    pub fragments: u64,
}

/// The whole report (`report --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always 1.
    pub schema: u32,
    /// IKE SAs, in order of first frame.
    pub ike_sas: Vec<IkeSaReport>,
    /// ESP SAs, in order of first packet.
    pub esp_sas: Vec<EspSaReport>,
    /// AH SAs, in order of first packet.
    pub ah_sas: Vec<EspSaReport>,
    /// IPSecMon statistics.
    pub stats: Stats,
    /// Frames read.
    pub frames: u64,
    /// Frames that failed to decode.
    pub decode_errors: u64,
    /// Table evictions.
    pub evictions: Evictions,
    /// Capture time of the last frame.
    pub last_ts: Option<f64>,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            schema: 1,
            ike_sas: Vec::new(),
            esp_sas: Vec::new(),
            ah_sas: Vec::new(),
            stats: Stats::default(),
            frames: 0,
            decode_errors: 0,
            evictions: Evictions::default(),
            last_ts: None,
        }
    }
}
