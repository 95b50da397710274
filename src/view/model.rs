//! The SA table as rows of display data, built from one [`Snapshot`].
//!
//! Everything here is a reading of the snapshot: rows pair the child SAs of the report with
//! the ESP/AH counters of their SPIs, and derive a display state from the report's times.
//! Nothing is counted or decoded here.

use std::cmp::Ordering;
use std::net::IpAddr;

use crate::diagnose::Finding;
use crate::snapshot::Snapshot;
use crate::track::report::{ChildSaReport, DecryptionReport, EspSaReport, IkeSaReport, IkeState};

/// Seconds without a packet after which an established SA is shown as idle.
pub const IDLE_AFTER_S: f64 = 60.0;

/// Display state of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RowState {
    /// The IKE SA failed.
    Failed,
    /// Exchanges under way, no usable child SA yet.
    Negotiating,
    /// Established, and a rekey exchange of its IKE SA is unanswered.
    Rekeying,
    /// Established and carrying traffic.
    Established,
    /// Established, no packet for [`IDLE_AFTER_S`].
    Idle,
    /// ESP/AH seen with no IKE negotiation in the capture.
    EspOnly,
    /// Replaced by a rekey.
    Rekeyed,
    /// Deleted by the peers.
    Deleted,
    /// Expired by inactivity.
    Expired,
}

impl RowState {
    /// The word shown in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Failed => "failed",
            RowState::Negotiating => "negotiating",
            RowState::Rekeying => "rekeying",
            RowState::Established => "established",
            RowState::Idle => "idle",
            RowState::EspOnly => "esp-only",
            RowState::Rekeyed => "rekeyed",
            RowState::Deleted => "deleted",
            RowState::Expired => "expired",
        }
    }

    /// Replaced, deleted or expired: history rather than a live SA. IPSecMon listed only
    /// active SAs, so the view hides these unless asked.
    pub fn is_ended(self) -> bool {
        matches!(
            self,
            RowState::Rekeyed | RowState::Deleted | RowState::Expired
        )
    }
}

/// Counters of one direction of a row, from the ESP/AH SA of that SPI.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Direction {
    /// Packets seen.
    pub packets: u64,
    /// Payload bytes seen.
    pub bytes: u64,
    /// Capture time of the first packet, when any.
    pub first_seen: Option<f64>,
    /// Capture time of the last packet, when any.
    pub last_seen: Option<f64>,
}

/// One row of the SA table: a child SA, an IKE SA without one, or ESP seen alone.
#[derive(Debug, Clone, PartialEq)]
pub struct SaRow {
    /// Index into `report.ike_sas`, when the row belongs to an IKE SA.
    pub ike: Option<usize>,
    /// Policy rule name, when a policy labelled the SA.
    pub rule: Option<String>,
    /// What the SA carries: the protocols and ports of its rule's filters, else the
    /// traffic selectors its child SA negotiated (decrypted with `--keys`; without keys
    /// and without a policy nothing says what it carries).
    pub traffic: Option<String>,
    /// Local endpoint (the initiator unless `--local` names the responder): where the
    /// row's ESP/AH was seen, that SA's own address (UDP 4500 after NAT traversal), else
    /// the IKE SA's.
    pub local: String,
    /// Remote endpoint.
    pub remote: String,
    /// `ESP`, `ESP/UDP`, `AH`, or `IKEv2` for a row without a child SA.
    pub security: String,
    /// Inbound SPI (towards the local side).
    pub spi_in: Option<String>,
    /// Outbound SPI.
    pub spi_out: Option<String>,
    /// Display state.
    pub state: RowState,
    /// Capture time the row's SA began (established, or first packet).
    pub since: f64,
    /// Inbound counters.
    pub inbound: Direction,
    /// Outbound counters.
    pub outbound: Direction,
    /// What a negotiating or failed row is waiting on: the failure or the worst finding.
    pub note: Option<String>,
    /// How decryption with `--keys` went for the row's SAs (its IKE SA and its ESP/AH SAs),
    /// the worst of them; `None` when no key was given for any.
    pub decryption: Option<&'static str>,
}

impl SaRow {
    /// Bytes in both directions.
    pub fn bytes(&self) -> u64 {
        self.inbound.bytes + self.outbound.bytes
    }

    /// Capture time of the last packet in either direction.
    pub fn last_seen(&self) -> Option<f64> {
        match (self.inbound.last_seen, self.outbound.last_seen) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Average bytes per second over the row's traffic (its first to last packet).
    pub fn rate(&self) -> Option<f64> {
        let first = [self.inbound.first_seen, self.outbound.first_seen]
            .into_iter()
            .flatten()
            .reduce(f64::min)?;
        let span = self.last_seen()? - first;
        (span > 0.0).then(|| self.bytes() as f64 / span)
    }

    /// Text a filter matches against: endpoints, SPIs, rule, state.
    pub fn matches(&self, needle: &str) -> bool {
        let needle = needle.to_ascii_lowercase();
        [
            Some(self.local.as_str()),
            Some(self.remote.as_str()),
            self.spi_in.as_deref(),
            self.spi_out.as_deref(),
            self.rule.as_deref(),
            Some(self.state.as_str()),
        ]
        .into_iter()
        .flatten()
        .any(|s| s.to_ascii_lowercase().contains(&needle))
    }
}

/// How rows are built: which side is local, and whether ended SAs are shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct RowOptions {
    /// The local host; rows whose responder has this address are shown from its side.
    pub local: Option<IpAddr>,
    /// Show rekeyed, deleted and expired SAs too (see [`RowState::is_ended`]).
    pub all: bool,
}

/// The rows to show and how many ended ones were left out (0 with [`RowOptions::all`]).
pub fn shown_rows(snap: &Snapshot, opts: RowOptions) -> (Vec<SaRow>, usize) {
    let mut rows = rows(snap, opts);
    if opts.all {
        return (rows, 0);
    }
    let before = rows.len();
    rows.retain(|r| !r.state.is_ended());
    let hidden = before - rows.len();
    (rows, hidden)
}

/// The rows of a snapshot, in report order (IKE SAs by first frame, then lone ESP/AH).
pub fn rows(snap: &Snapshot, opts: RowOptions) -> Vec<SaRow> {
    let report = &snap.report;
    let now = report.last_ts.unwrap_or(0.0);
    let mut used = vec![false; report.esp_sas.len() + report.ah_sas.len()];
    let mut out = Vec::new();
    for (i, ike) in report.ike_sas.iter().enumerate() {
        let before = out.len();
        let ctx = IkeCtx {
            index: i,
            ike,
            snap,
            now,
            flip: is_responder_local(ike, opts.local),
        };
        for child in &ike.child_sas {
            out.push(ctx.child_row(child, &mut used));
        }
        out.extend(ctx.inferred_rows(&mut used));
        if out.len() == before {
            out.push(ctx.bare_row());
        }
    }
    out.extend(lone_rows(snap, &mut used, now, opts.local));
    out
}

/// The two lists of ESP and AH SAs as one indexable sequence.
fn ipsec_sas(snap: &Snapshot) -> impl Iterator<Item = (usize, &EspSaReport, &'static str)> {
    let esp = snap.report.esp_sas.iter().map(|s| (s, "ESP"));
    let ah = snap.report.ah_sas.iter().map(|s| (s, "AH"));
    esp.chain(ah).enumerate().map(|(i, (s, p))| (i, s, p))
}

fn find_spi<'a>(
    snap: &'a Snapshot,
    spi: Option<&str>,
    used: &mut [bool],
) -> Option<&'a EspSaReport> {
    let spi = spi?;
    let (i, sa, _) = ipsec_sas(snap).find(|(_, sa, _)| sa.spi == spi)?;
    used[i] = true;
    Some(sa)
}

fn direction(sa: Option<&EspSaReport>) -> Direction {
    sa.map(|sa| Direction {
        packets: sa.packets,
        bytes: sa.bytes,
        first_seen: Some(sa.first_seen),
        last_seen: Some(sa.last_seen),
    })
    .unwrap_or_default()
}

fn is_responder_local(ike: &IkeSaReport, local: Option<IpAddr>) -> bool {
    local.is_some_and(|l| host_of(&ike.responder) == Some(l))
}

/// The address part of `ip`, `ip:port` or `[v6]:port`.
pub fn host_of(endpoint: &str) -> Option<IpAddr> {
    if let Ok(ip) = endpoint.parse() {
        return Some(ip);
    }
    endpoint
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| s.ip())
}

struct IkeCtx<'a> {
    index: usize,
    ike: &'a IkeSaReport,
    snap: &'a Snapshot,
    now: f64,
    flip: bool,
}

impl IkeCtx<'_> {
    fn base_row(&self, security: String) -> SaRow {
        let (local, remote) = if self.flip {
            (&self.ike.responder, &self.ike.initiator)
        } else {
            (&self.ike.initiator, &self.ike.responder)
        };
        SaRow {
            ike: Some(self.index),
            rule: self.ike.rule.clone(),
            traffic: traffic_of(self.snap, self.ike.rule.as_deref()),
            local: local.clone(),
            remote: remote.clone(),
            security,
            spi_in: None,
            spi_out: None,
            state: ike_row_state(self.ike),
            since: self.ike.started,
            inbound: Direction::default(),
            outbound: Direction::default(),
            note: note_for(self.ike, &self.snap.findings),
            decryption: worst_decryption([self.ike.decryption.as_ref()]),
        }
    }

    fn child_row(&self, child: &ChildSaReport, used: &mut [bool]) -> SaRow {
        let inbound = find_spi(self.snap, child.spi_in.as_deref(), used);
        let outbound = find_spi(self.snap, child.spi_out.as_deref(), used);
        let encap = inbound.or(outbound).map(|s| s.encap.as_str());
        let mut row = self.base_row(self.security(&child.protocol, encap));
        row.spi_in = child.spi_in.clone();
        row.spi_out = child.spi_out.clone();
        row.inbound = direction(inbound);
        row.outbound = direction(outbound);
        add_decryption(&mut row, [inbound, outbound]);
        if self.flip {
            std::mem::swap(&mut row.spi_in, &mut row.spi_out);
            std::mem::swap(&mut row.inbound, &mut row.outbound);
            set_endpoints(&mut row, outbound, inbound);
        } else {
            set_endpoints(&mut row, inbound, outbound);
        }
        if row.traffic.is_none() {
            row.traffic = if self.flip {
                selectors_traffic(&child.ts_r, &child.ts_i)
            } else {
                selectors_traffic(&child.ts_i, &child.ts_r)
            };
        }
        row.since = child.established_at.unwrap_or(self.ike.started);
        row.state = self.child_state(child, &row);
        if row.note.is_none() && is_up(row.state) && row.inbound.packets + row.outbound.packets == 0
        {
            row.note = Some("no ESP/AH seen".to_string());
        }
        row
    }

    /// ESP/AH SAs the tracker attached to this IKE SA but no child SA names (IKEv2 without
    /// keys hides the SPIs), paired by `peer_spi`.
    fn inferred_rows(&self, used: &mut [bool]) -> Vec<SaRow> {
        let local = host_of(if self.flip {
            &self.ike.responder
        } else {
            &self.ike.initiator
        });
        let mine: Vec<_> = ipsec_sas(self.snap)
            .filter(|(i, sa, _)| !used[*i] && sa.ike_sa.as_deref() == Some(&self.ike.spi_i))
            .collect();
        let mut rows = Vec::new();
        for (i, sa, proto) in mine {
            if used[i] {
                continue;
            }
            let pair = pair_of(self.snap, sa, used);
            used[i] = true;
            let (inb, outb) = orient(sa, pair, local);
            let mut row = self.base_row(self.security(proto, Some(&sa.encap)));
            fill_pair(&mut row, inb, outb);
            set_endpoints(&mut row, inb, outb);
            add_decryption(&mut row, [inb, outb]);
            row.since = sa.first_seen;
            row.state = self.child_state_plain(&row);
            rows.push(row);
        }
        rows
    }

    /// Protocol and encapsulation, then the chosen transforms when the report has them.
    fn security(&self, protocol: &str, encap: Option<&str>) -> String {
        let base = security_of(protocol, encap);
        match self.ike.chosen.as_deref() {
            Some(c) => format!("{base} {}", c.split_once(':').map_or(c, |(_, t)| t)),
            None => base,
        }
    }

    fn bare_row(&self) -> SaRow {
        self.base_row(format!("IKEv{}", self.ike.version))
    }

    fn child_state(&self, child: &ChildSaReport, row: &SaRow) -> RowState {
        let replaced = child.spi_in.is_some()
            && self.ike.child_sas.iter().any(|c| {
                c.rekeyed_from.is_some() && c.rekeyed_from.as_deref() == child.spi_in.as_deref()
            });
        if replaced && self.ike.state == IkeState::Established {
            return RowState::Rekeyed;
        }
        self.child_state_plain(row)
    }

    fn child_state_plain(&self, row: &SaRow) -> RowState {
        let state = ike_row_state(self.ike);
        if state != RowState::Established {
            return state;
        }
        if rekey_pending(self.ike) {
            return RowState::Rekeying;
        }
        let last = row.last_seen().unwrap_or(self.ike.last_seen);
        if self.now - last > IDLE_AFTER_S {
            return RowState::Idle;
        }
        RowState::Established
    }
}

/// The endpoints of the protected traffic itself, where an ESP/AH SA of the row was seen:
/// after NAT traversal they are UDP 4500 (or a NAT's ports), not the IKE SA's first
/// addresses. `inb` is the SA towards the local side.
fn set_endpoints(row: &mut SaRow, inb: Option<&EspSaReport>, outb: Option<&EspSaReport>) {
    if let Some(o) = outb {
        (row.local, row.remote) = (o.src.clone(), o.dst.clone());
    } else if let Some(i) = inb {
        (row.local, row.remote) = (i.dst.clone(), i.src.clone());
    }
}

fn fill_pair(row: &mut SaRow, inb: Option<&EspSaReport>, outb: Option<&EspSaReport>) {
    row.spi_in = inb.map(|s| s.spi.clone());
    row.spi_out = outb.map(|s| s.spi.clone());
    row.inbound = direction(inb);
    row.outbound = direction(outb);
}

/// The decryption statuses from best to worst: an ICV failure says the key is wrong (or
/// the packets were altered), the strongest statement.
const DECRYPTION_ORDER: [&str; 4] = ["decrypted", "partial", "not-decrypted", "not-authenticated"];

/// The worst status among `parts` that have one.
fn worst_decryption<'a>(
    parts: impl IntoIterator<Item = Option<&'a DecryptionReport>>,
) -> Option<&'static str> {
    parts
        .into_iter()
        .flatten()
        .filter_map(|d| DECRYPTION_ORDER.iter().position(|s| *s == d.status))
        .max()
        .map(|i| DECRYPTION_ORDER[i])
}

/// Folds the decryption of a row's ESP/AH SAs into the row's.
fn add_decryption(row: &mut SaRow, sas: [Option<&EspSaReport>; 2]) {
    let own = row
        .decryption
        .and_then(|s| DECRYPTION_ORDER.iter().position(|x| *x == s));
    let theirs = worst_decryption(sas.into_iter().flatten().map(|s| s.decryption.as_ref()))
        .and_then(|s| DECRYPTION_ORDER.iter().position(|x| *x == s));
    row.decryption = own.max(theirs).map(|i| DECRYPTION_ORDER[i]);
}

/// One SA's decryption in words, `unit` being `messages` or `packets`:
/// `decrypted 12 messages (12 verified)`, or `not authenticated: 8 packets failed their
/// integrity check (first frame 5, icv-mismatch): a wrong key, or altered packets`.
pub fn decryption_text(d: &DecryptionReport, unit: &str) -> String {
    let failed = d.not_decrypted + d.not_authenticated;
    let mut s = match d.status.as_str() {
        "decrypted" => format!("decrypted {} {unit} ({} verified)", d.decrypted, d.verified),
        "not-authenticated" => format!(
            "not authenticated: {} {unit} failed their integrity check",
            d.not_authenticated
        ),
        "not-decrypted" => format!("not decrypted: {failed} {unit} did not decrypt"),
        _ => format!(
            "partial: {} {unit} decrypted ({} verified), {} not decrypted, {} not authenticated",
            d.decrypted, d.verified, d.not_decrypted, d.not_authenticated
        ),
    };
    if let Some(f) = &d.first_failure {
        s.push_str(&format!(" (first frame {}, {})", f.frame, f.reason));
    }
    match d.status.as_str() {
        "not-authenticated" => s.push_str(": a wrong key, or altered packets"),
        "not-decrypted" => s.push_str(": a wrong key or algorithm (no integrity check tells)"),
        _ => {}
    }
    s
}

/// The other direction of `sa`, by `peer_spi`, when not yet shown.
fn pair_of<'a>(snap: &'a Snapshot, sa: &EspSaReport, used: &mut [bool]) -> Option<&'a EspSaReport> {
    let peer = sa.peer_spi.as_deref()?;
    let (i, found, _) = ipsec_sas(snap).find(|(i, s, _)| !used[*i] && s.spi == peer)?;
    used[i] = true;
    Some(found)
}

/// Which of a pair is inbound: the one whose destination is the local host.
fn orient<'a>(
    a: &'a EspSaReport,
    b: Option<&'a EspSaReport>,
    local: Option<IpAddr>,
) -> (Option<&'a EspSaReport>, Option<&'a EspSaReport>) {
    let a_inbound = local.is_some() && host_of(&a.dst) == local;
    if a_inbound {
        (Some(a), b)
    } else {
        (b, Some(a))
    }
}

/// Rows for ESP/AH SAs that no IKE SA claimed.
fn lone_rows(snap: &Snapshot, used: &mut [bool], now: f64, local: Option<IpAddr>) -> Vec<SaRow> {
    let lone: Vec<_> = ipsec_sas(snap).collect();
    let mut rows = Vec::new();
    for (i, sa, proto) in lone {
        if used[i] {
            continue;
        }
        used[i] = true;
        let pair = pair_of(snap, sa, used);
        let (inb, outb) = orient(sa, pair, local);
        let outer = outb.or(inb).unwrap_or(sa);
        let mut row = SaRow {
            ike: None,
            rule: sa.rule.clone(),
            traffic: traffic_of(snap, sa.rule.as_deref()),
            local: outer.src.clone(),
            remote: outer.dst.clone(),
            security: security_of(proto, Some(&sa.encap)),
            spi_in: None,
            spi_out: None,
            state: RowState::EspOnly,
            since: sa.first_seen,
            inbound: Direction::default(),
            outbound: Direction::default(),
            note: None,
            decryption: None,
        };
        fill_pair(&mut row, inb, outb);
        add_decryption(&mut row, [inb, outb]);
        if row.last_seen().is_some_and(|l| now - l > IDLE_AFTER_S) {
            row.state = RowState::Idle;
        }
        rows.push(row);
    }
    rows
}

/// Established in some form: the child SA should be carrying traffic.
fn is_up(state: RowState) -> bool {
    matches!(
        state,
        RowState::Established | RowState::Idle | RowState::Rekeying
    )
}

fn ike_row_state(ike: &IkeSaReport) -> RowState {
    match ike.state {
        IkeState::Negotiating => RowState::Negotiating,
        IkeState::Established => RowState::Established,
        IkeState::Failed => RowState::Failed,
        IkeState::Deleted => RowState::Deleted,
        IkeState::Expired => RowState::Expired,
    }
}

/// An unanswered child-creating exchange after the SA was established: a rekey under way.
fn rekey_pending(ike: &IkeSaReport) -> bool {
    ike.exchanges.iter().skip(1).any(|x| {
        x.response_frame.is_none()
            && matches!(x.exchange.as_str(), "CREATE_CHILD_SA" | "Quick Mode")
    })
}

fn security_of(protocol: &str, encap: Option<&str>) -> String {
    let proto = protocol.to_ascii_uppercase();
    match encap {
        Some("udp") => format!("{proto}/UDP"),
        _ => proto,
    }
}

/// The policy's rules that negotiate security and have no SA up among `rows` (the
/// metrics' "configured but down"), as `"Name" (traffic)`, joined; `None` when every rule
/// has one, or without a policy.
pub fn rules_down(snap: &Snapshot, rows: &[SaRow]) -> Option<String> {
    let down: Vec<String> = snap
        .rules
        .iter()
        .filter(|r| {
            !rows
                .iter()
                .any(|row| row.rule.as_deref() == Some(r.name.as_str()) && is_up(row.state))
        })
        .map(|r| format!("\"{}\" ({})", r.name, r.traffic))
        .collect();
    (!down.is_empty()).then(|| down.join(", "))
}

/// The traffic a child SA's negotiated selectors cover, local side first, as
/// `192.0.2.1 <-> 192.0.2.2 tcp/6667, 192.0.2.2 tcp/6668`; `None` when the capture did not
/// show them (they travel encrypted: `--keys` reads them).
fn selectors_traffic(local: &[String], remote: &[String]) -> Option<String> {
    if local.is_empty() && remote.is_empty() {
        return None;
    }
    let side = |ts: &[String]| {
        if ts.is_empty() {
            return "?".to_string();
        }
        let short: Vec<String> = ts.iter().map(|t| compact_selector(t)).collect();
        short.join(", ")
    };
    Some(format!("{} <-> {}", side(local), side(remote)))
}

/// `192.0.2.2 proto 6 port 6667` as `192.0.2.2 tcp/6667`.
fn compact_selector(ts: &str) -> String {
    let mut words = ts.split(' ');
    let mut out = words.next().unwrap_or_default().to_string();
    while let Some(w) = words.next() {
        match (w, words.next()) {
            ("proto", Some(p)) => {
                let name = match p {
                    "6" => "tcp",
                    "17" => "udp",
                    "1" => "icmp",
                    "58" => "icmp6",
                    other => other,
                };
                out.push(' ');
                out.push_str(name);
            }
            ("port", Some(port)) => {
                out.push('/');
                out.push_str(port);
            }
            (w, rest) => {
                out.push(' ');
                out.push_str(w);
                if let Some(r) = rest {
                    out.push(' ');
                    out.push_str(r);
                }
            }
        }
    }
    out
}

/// The traffic a rule selects, from the snapshot's rule summaries.
fn traffic_of(snap: &Snapshot, rule: Option<&str>) -> Option<String> {
    let rule = rule?;
    snap.rules
        .iter()
        .find(|r| r.name == rule)
        .map(|r| r.traffic.clone())
}

/// What a row that is not up waits on: its failure code, else its worst finding (the
/// current suspect, with a `?`), else the request still unanswered.
fn note_for(ike: &IkeSaReport, findings: &[Finding]) -> Option<String> {
    if let Some(f) = &ike.failure {
        return Some(f.code.clone());
    }
    if ike.state != IkeState::Negotiating {
        return None;
    }
    if let Some(f) = findings_for(findings, &ike.spi_i).next() {
        return Some(format!("{}?", f.code.as_str()));
    }
    let waiting = ike
        .exchanges
        .iter()
        .rev()
        .find(|x| x.response_frame.is_none())?;
    let retx = match waiting.retransmissions {
        0 => String::new(),
        n => format!(", {n} retransmissions"),
    };
    Some(format!("no reply to {}{retx}", waiting.exchange))
}

/// The findings about one IKE SA, worst first.
pub fn findings_for<'a>(
    findings: &'a [Finding],
    spi_i: &'a str,
) -> impl Iterator<Item = &'a Finding> {
    let mut mine: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.ike_sa.as_deref() == Some(spi_i))
        .collect();
    mine.sort_by_key(|f| std::cmp::Reverse(f.severity));
    mine.into_iter()
}

/// The columns of the SA table, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// Policy rule.
    Rule,
    /// Protocols and ports the SA carries.
    Traffic,
    /// Local endpoint.
    Local,
    /// Remote endpoint.
    Remote,
    /// ESP/AH and encapsulation.
    Security,
    /// How decryption with `--keys` went.
    Decryption,
    /// Inbound SPI.
    SpiIn,
    /// Outbound SPI.
    SpiOut,
    /// Display state.
    State,
    /// Time since the SA began.
    Age,
    /// Inbound bytes.
    BytesIn,
    /// Outbound bytes.
    BytesOut,
    /// Inbound packets.
    PktsIn,
    /// Outbound packets.
    PktsOut,
    /// Average rate.
    Rate,
    /// Time since the last packet.
    Last,
    /// Failure or suspect.
    Note,
}

impl Column {
    /// Every column, in display order.
    pub const ALL: [Column; 17] = [
        Column::Rule,
        Column::Traffic,
        Column::Local,
        Column::Remote,
        Column::Security,
        Column::Decryption,
        Column::SpiIn,
        Column::SpiOut,
        Column::State,
        Column::Age,
        Column::BytesIn,
        Column::BytesOut,
        Column::PktsIn,
        Column::PktsOut,
        Column::Rate,
        Column::Last,
        Column::Note,
    ];

    /// The header text.
    pub fn title(self) -> &'static str {
        match self {
            Column::Rule => "Rule",
            Column::Traffic => "Traffic",
            Column::Local => "Local",
            Column::Remote => "Remote",
            Column::Security => "Sec",
            Column::Decryption => "Decryption",
            Column::SpiIn => "SPI in",
            Column::SpiOut => "SPI out",
            Column::State => "State",
            Column::Age => "Age",
            Column::BytesIn => "Bytes in",
            Column::BytesOut => "Bytes out",
            Column::PktsIn => "Pkts in",
            Column::PktsOut => "Pkts out",
            Column::Rate => "Rate",
            Column::Last => "Last",
            Column::Note => "Note",
        }
    }

    /// Lower keeps the column longer when the terminal is narrow. The note (why a row is
    /// not up) outranks the byte counts: on a small terminal a failed negotiation still
    /// says what failed.
    pub fn priority(self) -> u8 {
        match self {
            Column::Remote => 0,
            Column::SpiIn => 1,
            Column::SpiOut => 2,
            Column::State => 3,
            Column::Local => 4,
            Column::Rule => 5,
            Column::Note => 6,
            Column::BytesIn => 7,
            Column::BytesOut => 8,
            Column::Decryption => 9,
            Column::Age => 10,
            Column::Security => 11,
            Column::Traffic => 12,
            Column::Last => 13,
            Column::Rate => 14,
            Column::PktsIn => 15,
            Column::PktsOut => 16,
        }
    }

    /// Numbers read better right-aligned.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            Column::Age
                | Column::BytesIn
                | Column::BytesOut
                | Column::PktsIn
                | Column::PktsOut
                | Column::Rate
                | Column::Last
        )
    }

    /// The cell of `row` in this column, `now` being the snapshot's packet time.
    pub fn cell(self, row: &SaRow, now: f64) -> String {
        let dash = || "-".to_string();
        match self {
            Column::Rule => row.rule.clone().unwrap_or_else(dash),
            Column::Traffic => row.traffic.clone().unwrap_or_else(dash),
            Column::Local => row.local.clone(),
            Column::Remote => row.remote.clone(),
            Column::Security => row.security.clone(),
            Column::Decryption => row.decryption.unwrap_or("-").to_string(),
            Column::SpiIn => row.spi_in.clone().unwrap_or_else(dash),
            Column::SpiOut => row.spi_out.clone().unwrap_or_else(dash),
            Column::State => row.state.as_str().to_string(),
            Column::Age => duration(now - row.since),
            Column::BytesIn => bytes(row.inbound.bytes),
            Column::BytesOut => bytes(row.outbound.bytes),
            Column::PktsIn => count(row.inbound.packets),
            Column::PktsOut => count(row.outbound.packets),
            Column::Rate => row.rate().map(rate).unwrap_or_else(dash),
            Column::Last => row
                .last_seen()
                .map(|l| duration(now - l))
                .unwrap_or_else(dash),
            Column::Note => row.note.clone().unwrap_or_default(),
        }
    }

    /// Compares two rows by this column.
    pub fn compare(self, a: &SaRow, b: &SaRow) -> Ordering {
        let f = |x: f64, y: f64| x.partial_cmp(&y).unwrap_or(Ordering::Equal);
        match self {
            Column::Age => f(b.since, a.since),
            Column::BytesIn => a.inbound.bytes.cmp(&b.inbound.bytes),
            Column::BytesOut => a.outbound.bytes.cmp(&b.outbound.bytes),
            Column::PktsIn => a.inbound.packets.cmp(&b.inbound.packets),
            Column::PktsOut => a.outbound.packets.cmp(&b.outbound.packets),
            Column::Rate => f(a.rate().unwrap_or(0.0), b.rate().unwrap_or(0.0)),
            Column::Last => f(b.last_seen().unwrap_or(0.0), a.last_seen().unwrap_or(0.0)),
            Column::State => a.state.cmp(&b.state),
            Column::Local | Column::Remote => {
                endpoint_key(&self.cell(a, 0.0)).cmp(&endpoint_key(&self.cell(b, 0.0)))
            }
            _ => self.cell(a, 0.0).cmp(&self.cell(b, 0.0)),
        }
    }
}

/// Sorts by address, then port, so 10.0.0.9 comes before 10.0.0.10.
fn endpoint_key(s: &str) -> (Option<IpAddr>, String) {
    (host_of(s), s.to_string())
}

/// Sorts `rows` by `column`, descending when `reverse`. The sort is stable.
pub fn sort_rows(rows: &mut [SaRow], column: Column, reverse: bool) {
    rows.sort_by(|a, b| {
        let o = column.compare(a, b);
        if reverse {
            o.reverse()
        } else {
            o
        }
    });
}

/// Bytes with a binary unit: `512`, `1.5K`, `20.0M`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if n < 1024 {
        return n.to_string();
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1}{}", UNITS[unit])
}

/// A count with a decimal unit above 99,999: `12345`, `123.5k`, `4.2M`.
pub fn count(n: u64) -> String {
    match n {
        0..=99_999 => n.to_string(),
        100_000..=9_999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// A rate in bytes per second: `830B/s`, `1.2K/s`.
pub fn rate(bps: f64) -> String {
    let b = bytes(bps.round().max(0.0) as u64);
    if b.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{b}B/s")
    } else {
        format!("{b}/s")
    }
}

/// A duration in the largest fitting units: `0.42s`, `12s`, `3m05s`, `2h10m`, `3d04h`.
pub fn duration(secs: f64) -> String {
    let secs = secs.max(0.0);
    if secs < 10.0 {
        return format!("{secs:.2}s");
    }
    let s = secs as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Capture time as UTC `YYYY-MM-DD HH:MM:SS.mmm`.
pub fn utc(ts: f64) -> String {
    let ms = (ts * 1000.0).round() as i64;
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{milli:03}")
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::capture::CaptureStats;
    use crate::diagnose::{Code, Evidence, Severity};
    use crate::track::report::{ExchangeReport, NatReport, Report};

    fn esp(spi: &str, src: &str, dst: &str, ike: Option<&str>, bytes: u64) -> EspSaReport {
        EspSaReport {
            spi: spi.into(),
            src: src.into(),
            dst: dst.into(),
            encap: "none".into(),
            packets: bytes / 100,
            bytes,
            first_seen: 1_700_000_001.0,
            last_seen: 1_700_000_011.0,
            first_frame: 3,
            last_frame: 40,
            lost: 0,
            replayed: 0,
            reordered: 0,
            ike_sa: ike.map(str::to_string),
            ike_sa_link: ike.map(|_| "proposal".to_string()),
            peer_spi: None,
            peer_link: None,
            rule: None,
            decryption: None,
        }
    }

    fn ike(spi_i: &str, state: IkeState, init: &str, resp: &str) -> IkeSaReport {
        IkeSaReport {
            version: 2,
            spi_i: spi_i.into(),
            spi_r: "0000000000000000".into(),
            initiator: init.into(),
            responder: resp.into(),
            state,
            first_frame: 1,
            started: 1_700_000_000.0,
            established_after_s: None,
            retransmissions: 0,
            failure: None,
            child_failures: Vec::new(),
            nat: NatReport::default(),
            child_sas: Vec::new(),
            exchanges: vec![ExchangeReport {
                exchange: "IKE_SA_INIT".into(),
                message_id: 0,
                request_frame: 1,
                response_frame: Some(2),
                started: 1_700_000_000.0,
                rtt_s: Some(0.0123),
                retransmissions: 0,
                notifies: vec![16388, 16389],
                from_initiator: true,
                dst_port: 500,
                request_fragments: 0,
                transmissions: Vec::new(),
                details: vec!["responder chose aes128-sha256-modp2048".into()],
            }],
            rekeyed_from: None,
            last_frame: 2,
            offered: vec!["ike:aes128-sha256-modp2048".into()],
            chosen: None,
            accepted: Vec::new(),
            icmp: Vec::new(),
            last_seen: 1_700_000_000.5,
            rule: None,
            decryption: None,
            id_i: None,
            id_r: None,
        }
    }

    /// A snapshot with one established SA with traffic, one negotiating SA with a
    /// finding, and one ESP SA with no IKE seen.
    pub(crate) fn sample() -> Snapshot {
        let mut up = ike(
            "1111222233334444",
            IkeState::Established,
            "10.0.0.1:500",
            "10.0.0.2:500",
        );
        up.spi_r = "5555666677778888".into();
        up.established_after_s = Some(0.052);
        up.chosen = Some("esp:aes128-sha256".into());
        up.child_sas.push(ChildSaReport {
            spi_in: Some("c0000001".into()),
            spi_out: Some("c0000002".into()),
            protocol: "esp".into(),
            established_at: Some(1_700_000_000.052),
            rekeyed_from: None,
            source: "proposal".into(),
            ts_i: Vec::new(),
            ts_r: Vec::new(),
            deleted: false,
        });
        let mut stuck = ike(
            "aaaabbbbccccdddd",
            IkeState::Negotiating,
            "10.0.0.1:500",
            "10.0.9.9:500",
        );
        stuck.exchanges[0].response_frame = None;
        stuck.exchanges[0].rtt_s = None;
        stuck.exchanges[0].retransmissions = 3;
        stuck.retransmissions = 3;
        stuck.started = 1_700_000_005.0;
        let mut report = Report {
            ike_sas: vec![up, stuck],
            esp_sas: vec![
                esp(
                    "c0000001",
                    "10.0.0.2",
                    "10.0.0.1",
                    Some("1111222233334444"),
                    4200,
                ),
                esp(
                    "c0000002",
                    "10.0.0.1",
                    "10.0.0.2",
                    Some("1111222233334444"),
                    8400,
                ),
                esp("deadbeef", "10.0.5.5", "10.0.0.1", None, 300),
            ],
            frames: 42,
            last_ts: Some(1_700_000_012.0),
            ..Report::default()
        };
        report.stats.active_associations = 1;
        report.stats.confidential_bytes_sent = 8400;
        report.stats.confidential_bytes_received = 4200;
        report.stats.key_additions = 1;
        report.stats.main_modes = 2;
        report.stats.quick_modes = 1;
        report.stats.pending_key_operations = 1;
        report.stats.soft_associations = 1;
        report.stats.bad_spi_packets = 3;
        Snapshot {
            schema: 1,
            source: "sample.pcap".into(),
            report,
            findings: vec![Finding {
                code: Code::PeerUnreachable,
                severity: Severity::Error,
                ike_sa: Some("aaaabbbbccccdddd".into()),
                summary: "10.0.0.1 asked 10.0.9.9 four times and never heard back".into(),
                evidence: vec![Evidence {
                    frame: 3,
                    ts: 1_700_000_005.0,
                    what: "IKE_SA_INIT request".into(),
                }],
                remedy: "Check that 10.0.9.9 is up and UDP 500 reaches it".into(),
                confidence: 0.9,
            }],
            capture: CaptureStats {
                received: 42,
                dropped: 0,
                if_dropped: 0,
                ..CaptureStats::default()
            },
            decode_errors: vec![("truncated".into(), 1), ("bad-ike-length".into(), 0)],
            cleartext: Vec::new(),
            rules: Vec::new(),
        }
    }

    #[test]
    fn rows_pair_children_with_their_counters() {
        let rows = rows(&sample(), RowOptions::default());
        assert_eq!(rows.len(), 3);
        let up = &rows[0];
        assert_eq!(up.spi_in.as_deref(), Some("c0000001"));
        assert_eq!(up.inbound.bytes, 4200);
        assert_eq!(up.outbound.bytes, 8400);
        assert_eq!(up.state, RowState::Established);
        assert_eq!(up.security, "ESP aes128-sha256");
        assert_eq!(rows[1].state, RowState::Negotiating);
        assert_eq!(rows[1].note.as_deref(), Some("peer-unreachable?"));
        assert_eq!(rows[2].state, RowState::EspOnly);
        assert_eq!(rows[2].spi_out.as_deref(), Some("deadbeef"));
        assert_eq!(rows[2].local, "10.0.5.5");
    }

    #[test]
    fn decrypted_selectors_are_the_traffic_of_a_row_without_a_rule() {
        let mut snap = sample();
        let child = &mut snap.report.ike_sas[0].child_sas[0];
        child.ts_i = vec!["192.0.2.1".into()];
        child.ts_r = vec![
            "192.0.2.2 proto 6 port 6667".into(),
            "2001:db8::2 proto 17".into(),
        ];
        let rows = rows(&snap, RowOptions::default());
        assert_eq!(
            rows[0].traffic.as_deref(),
            Some("192.0.2.1 <-> 192.0.2.2 tcp/6667, 2001:db8::2 udp")
        );
        // Seen from the responder's side, its own selectors come first.
        let local = host_of(&snap.report.ike_sas[0].responder);
        let flipped = super::rows(
            &snap,
            RowOptions {
                local,
                ..RowOptions::default()
            },
        );
        assert_eq!(
            flipped[0].traffic.as_deref(),
            Some("192.0.2.2 tcp/6667, 2001:db8::2 udp <-> 192.0.2.1")
        );
        // A rule's traffic is what the policy says, and it takes precedence.
        snap.report.ike_sas[0].rule = Some("Abczz with Bob".into());
        snap.rules = vec![crate::snapshot::RuleSummary {
            name: "Abczz with Bob".into(),
            traffic: "tcp/6667, tcp/6668".into(),
        }];
        let rows = super::rows(&snap, RowOptions::default());
        assert_eq!(rows[0].traffic.as_deref(), Some("tcp/6667, tcp/6668"));
    }

    #[test]
    fn rules_without_an_sa_up_are_named() {
        let mut snap = sample();
        assert_eq!(rules_down(&snap, &rows(&snap, RowOptions::default())), None);
        snap.report.ike_sas[0].rule = Some("Abczz with Bob".into());
        snap.report.ike_sas[1].rule = Some("SIP with Eve".into());
        snap.rules = ["Abczz with Bob", "SIP with Eve", "Backup"]
            .iter()
            .map(|n| crate::snapshot::RuleSummary {
                name: n.to_string(),
                traffic: "any".into(),
            })
            .collect();
        // The first SA is up, the second still negotiating, the third rule has none.
        let r = rows(&snap, RowOptions::default());
        assert_eq!(
            rules_down(&snap, &r).as_deref(),
            Some("\"SIP with Eve\" (any), \"Backup\" (any)")
        );
    }

    #[test]
    fn policy_rule_and_its_traffic_label_the_rows() {
        let mut snap = sample();
        snap.report.ike_sas[0].rule = Some("Abczz with Bob".into());
        snap.report.esp_sas[2].rule = Some("SIP with Eve".into());
        snap.rules = vec![crate::snapshot::RuleSummary {
            name: "Abczz with Bob".into(),
            traffic: "tcp/6667, tcp/6668".into(),
        }];
        let rows = rows(&snap, RowOptions::default());
        assert_eq!(rows[0].rule.as_deref(), Some("Abczz with Bob"));
        assert_eq!(rows[0].traffic.as_deref(), Some("tcp/6667, tcp/6668"));
        assert_eq!(rows[1].rule, None);
        assert_eq!(rows[2].rule.as_deref(), Some("SIP with Eve"));
        assert_eq!(rows[2].traffic, None);
        assert_eq!(Column::Traffic.cell(&rows[0], 0.0), "tcp/6667, tcp/6668");
        assert_eq!(Column::Traffic.cell(&rows[2], 0.0), "-");
    }

    /// The sample with its established child SA rekeyed into a new one.
    pub(crate) fn rekeyed_sample() -> Snapshot {
        let mut snap = sample();
        snap.report.ike_sas[0].child_sas.push(ChildSaReport {
            spi_in: Some("c0000003".into()),
            spi_out: Some("c0000004".into()),
            protocol: "esp".into(),
            established_at: Some(1_700_000_010.0),
            rekeyed_from: Some("c0000001".into()),
            source: "proposal".into(),
            deleted: false,
            ts_i: Vec::new(),
            ts_r: Vec::new(),
        });
        snap
    }

    #[test]
    fn ended_rows_are_hidden_unless_all_are_asked_for() {
        let snap = rekeyed_sample();
        let (rows, hidden) = shown_rows(&snap, RowOptions::default());
        assert_eq!(hidden, 1);
        let spis: Vec<_> = rows.iter().map(|r| r.spi_in.as_deref()).collect();
        assert_eq!(spis, [Some("c0000003"), None, None]);
        let all = RowOptions {
            all: true,
            ..RowOptions::default()
        };
        let (rows, hidden) = shown_rows(&snap, all);
        assert_eq!(hidden, 0);
        assert_eq!(rows[0].state, RowState::Rekeyed);
        assert_eq!(rows[1].state, RowState::Established);
        assert_eq!(rows.len(), 4);
    }

    #[test]
    fn an_established_child_without_any_esp_says_so() {
        let mut snap = sample();
        snap.report.esp_sas.truncate(0);
        let rows = rows(&snap, RowOptions::default());
        assert_eq!(rows[0].state, RowState::Established);
        assert_eq!(rows[0].note.as_deref(), Some("no ESP/AH seen"));
        assert_eq!(super::rows(&sample(), RowOptions::default())[0].note, None);
    }

    #[test]
    fn negotiating_row_without_a_finding_names_the_unanswered_request() {
        let mut snap = sample();
        snap.findings.clear();
        let rows = rows(&snap, RowOptions::default());
        assert_eq!(
            rows[1].note.as_deref(),
            Some("no reply to IKE_SA_INIT, 3 retransmissions")
        );
        assert_eq!(rows[0].note, None);
    }

    #[test]
    fn local_responder_flips_the_row() {
        let opts = RowOptions {
            local: Some("10.0.0.2".parse().unwrap()),
            all: false,
        };
        let rows = rows(&sample(), opts);
        // The ESP SAs' own (bare) addresses, seen from the responder.
        assert_eq!(
            (rows[0].local.as_str(), rows[0].remote.as_str()),
            ("10.0.0.2", "10.0.0.1")
        );
        assert_eq!(rows[0].spi_in.as_deref(), Some("c0000002"));
        assert_eq!(rows[0].inbound.bytes, 8400);
    }

    #[test]
    fn inferred_esp_pairs_become_one_row() {
        let mut snap = sample();
        snap.report.ike_sas[0].child_sas.clear();
        snap.report.esp_sas[0].peer_spi = Some("c0000002".into());
        snap.report.esp_sas[1].peer_spi = Some("c0000001".into());
        let rows = rows(&snap, RowOptions::default());
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].spi_in.as_deref(), Some("c0000001"));
        assert_eq!(rows[0].spi_out.as_deref(), Some("c0000002"));
    }

    #[test]
    fn quiet_established_sa_is_idle() {
        let mut snap = sample();
        snap.report.last_ts = Some(1_700_000_011.0 + IDLE_AFTER_S + 1.0);
        let rows = rows(&snap, RowOptions::default());
        assert_eq!(rows[0].state, RowState::Idle);
    }

    #[test]
    fn sorting_by_bytes_descending() {
        let mut rows = rows(&sample(), RowOptions::default());
        sort_rows(&mut rows, Column::BytesOut, true);
        let spis: Vec<_> = rows.iter().map(|r| r.spi_out.clone()).collect();
        assert_eq!(
            spis,
            [Some("c0000002".into()), Some("deadbeef".into()), None]
        );
    }

    /// A decryption outcome: `ok` messages or packets decrypted, `bad` failing their ICV.
    pub(crate) fn decryption(ok: u64, bad: u64) -> DecryptionReport {
        let status = match (ok, bad) {
            (_, 0) => "decrypted",
            (0, _) => "not-authenticated",
            _ => "partial",
        };
        DecryptionReport {
            status: status.into(),
            decrypted: ok,
            verified: ok,
            not_decrypted: 0,
            not_authenticated: bad,
            first_failure: (bad > 0).then(|| crate::track::report::DecryptFailure {
                frame: 7,
                reason: "icv-mismatch".into(),
            }),
        }
    }

    /// The sample with keys: its IKE SA and outbound ESP decrypted, its inbound ESP
    /// failing its integrity check.
    pub(crate) fn decrypted_sample() -> Snapshot {
        let mut snap = sample();
        snap.report.ike_sas[0].decryption = Some(decryption(4, 0));
        snap.report.esp_sas[0].decryption = Some(decryption(0, 42));
        snap.report.esp_sas[1].decryption = Some(decryption(84, 0));
        snap
    }

    #[test]
    fn a_row_shows_the_worst_decryption_of_its_sas() {
        let rows = rows(&decrypted_sample(), RowOptions::default());
        assert_eq!(rows[0].decryption, Some("not-authenticated"));
        assert_eq!(Column::Decryption.cell(&rows[0], 0.0), "not-authenticated");
        assert_eq!(rows[1].decryption, None);
        assert_eq!(Column::Decryption.cell(&rows[1], 0.0), "-");
        let mut snap = decrypted_sample();
        snap.report.esp_sas[0].decryption = Some(decryption(40, 2));
        assert_eq!(
            super::rows(&snap, RowOptions::default())[0].decryption,
            Some("partial")
        );
        snap.report.esp_sas[0].decryption = None;
        assert_eq!(
            super::rows(&snap, RowOptions::default())[0].decryption,
            Some("decrypted")
        );
        assert_eq!(
            super::rows(&sample(), RowOptions::default())[0].decryption,
            None
        );
    }

    #[test]
    fn decryption_in_words() {
        assert_eq!(
            decryption_text(&decryption(4, 0), "messages"),
            "decrypted 4 messages (4 verified)"
        );
        assert_eq!(
            decryption_text(&decryption(0, 42), "packets"),
            "not authenticated: 42 packets failed their integrity check (first frame 7, \
             icv-mismatch): a wrong key, or altered packets"
        );
        assert_eq!(
            decryption_text(&decryption(40, 2), "packets"),
            "partial: 40 packets decrypted (40 verified), 0 not decrypted, 2 not \
             authenticated (first frame 7, icv-mismatch)"
        );
        let mut garbled = decryption(0, 0);
        garbled.status = "not-decrypted".into();
        garbled.not_decrypted = 3;
        assert_eq!(
            decryption_text(&garbled, "messages"),
            "not decrypted: 3 messages did not decrypt: a wrong key or algorithm (no integrity \
             check tells)"
        );
    }

    #[test]
    fn units() {
        assert_eq!(bytes(512), "512");
        assert_eq!(bytes(1536), "1.5K");
        assert_eq!(bytes(20 * 1024 * 1024), "20.0M");
        assert_eq!(count(123_456), "123.5k");
        assert_eq!(rate(830.0), "830B/s");
        assert_eq!(rate(1228.8), "1.2K/s");
        assert_eq!(duration(0.4249), "0.42s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(7800.0), "2h10m");
        assert_eq!(utc(1_700_000_000.25), "2023-11-14 22:13:20.250");
        assert_eq!(utc(951_782_400.0), "2000-02-29 00:00:00.000");
    }
}
