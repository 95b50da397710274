//! The Prometheus collector. It keeps the registry and the accumulated state that makes
//! per-tunnel totals monotonic across rekeys and evictions; [`Metrics::update`] applies a
//! snapshot as deltas, so a scrape only reads the latest snapshot and never the tracker.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::diagnose::Code;
use crate::snapshot::Snapshot;
use crate::track::report::{IkeSaReport, IkeState, Report};

use super::tunnels::{self, TunnelState};

/// Label value of the series that aggregates tunnels beyond the cap.
pub const OTHER: &str = "other";

/// Every failure code a negotiation can end with (initialised to 0).
const FAILURE_CODES: [Code; 8] = [
    Code::PeerUnreachable,
    Code::NoProposalChosen,
    Code::InvalidKe,
    Code::AuthFailed,
    Code::TsUnacceptable,
    Code::IkeFragmentsLost,
    Code::InvalidSpi,
    Code::NegotiationStalled,
];

/// The event counters of IPSecMon's statistics block (label values of
/// `ipsecmon_ipsec_events_total`).
const STAT_EVENTS: [&str; 9] = [
    "key_additions",
    "key_deletions",
    "rekeys",
    "main_modes",
    "quick_modes",
    "authentication_failures",
    "bad_spi_packets",
    "packets_not_decrypted",
    "packets_not_authenticated",
];

/// Establishment latency buckets, seconds: LAN negotiations take tens of milliseconds,
/// retried ones seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Settings of the collector.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Most tunnels with their own label values; the rest are summed into `tunnel="other"`.
    pub max_tunnels: usize,
    /// Seconds without protected packets after which an established tunnel reads `idle`.
    pub idle_after_s: f64,
    /// Tunnels that the loaded policy says should exist, as `(tunnel key, rule)`: they get
    /// series (reading `down`) before any packet.
    pub expected: Vec<(String, String)>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            max_tunnels: 500,
            idle_after_s: 60.0,
            expected: Vec::new(),
        }
    }
}

/// Last cumulative values seen for one ESP/AH SA, to turn them into deltas.
#[derive(Debug, Clone, Copy, Default)]
struct SaCounters {
    packets: u64,
    bytes: u64,
    lost: u64,
    replayed: u64,
}

/// Counters that only go up.
struct Counters {
    frames: IntCounter,
    decode_errors: IntCounterVec,
    capture_received: IntCounter,
    capture_dropped: IntCounterVec,
    capture_reopens: IntCounter,
    ipsecmon_stats: IntCounterVec,
    bytes: IntCounterVec,
    failures: IntCounterVec,
    retransmissions: IntCounter,
    tunnel_bytes: IntCounterVec,
    tunnel_packets: IntCounterVec,
    tunnel_lost: IntCounterVec,
    tunnel_replayed: IntCounterVec,
    tunnel_failures: IntCounterVec,
    tunnel_retransmissions: IntCounterVec,
    evictions: IntCounterVec,
    latency: Histogram,
    tunnel_latency: HistogramVec,
}

/// Gauges, set from each snapshot.
struct Gauges {
    ike_sas: IntGaugeVec,
    stats: IntGaugeVec,
    tunnel_state: IntGaugeVec,
    tunnels: IntGaugeVec,
    tunnel_nat: IntGaugeVec,
    tunnel_latency: GaugeVec,
    findings: IntGaugeVec,
    tunnels_aggregated: IntGauge,
    last_packet: prometheus::Gauge,
}

/// The collector and its accumulated state.
pub struct Metrics {
    registry: Registry,
    counters: Counters,
    gauges: Gauges,
    config: MetricsConfig,
    last_sa: HashMap<String, SaCounters>,
    last_retrans: HashMap<String, u32>,
    counted_failed: BTreeSet<String>,
    counted_established: BTreeSet<String>,
    last_capture: (u64, u64, u64),
    last_reopens: u64,
    last_frames: u64,
    last_errors: BTreeMap<String, u64>,
    last_stats: crate::track::report::Stats,
    last_evictions: crate::track::report::Evictions,
    labelled: BTreeMap<String, String>,
    /// Tunnels labelled during the current update after the first one: their events are
    /// counted from the next update on, so their series first appear at zero and
    /// `increase()` sees their first events (Prometheus cannot see a series born at 1).
    fresh: BTreeSet<String>,
    updates: u64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("tunnels", &self.labelled.len())
            .finish()
    }
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric name");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric name");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric name");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn float_gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric name");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

impl Counters {
    fn new(r: &Registry) -> Self {
        let latency = Histogram::with_opts(
            HistogramOpts::new(
                "ipsecmon_ike_establishment_seconds",
                "Time from the first IKE request to the first usable child SA.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid histogram");
        r.register(Box::new(latency.clone()))
            .expect("unique metric");
        let tunnel_latency = HistogramVec::new(
            HistogramOpts::new(
                "ipsecmon_tunnel_establishment_seconds",
                "Time from the first IKE request to the first usable child SA, per tunnel.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["tunnel", "rule"],
        )
        .expect("valid histogram");
        r.register(Box::new(tunnel_latency.clone()))
            .expect("unique metric");
        let t = &["tunnel", "rule", "direction"];
        Counters {
            frames: counter(r, "ipsecmon_frames_total", "Frames read from the capture."),
            decode_errors: counter_vec(
                r,
                "ipsecmon_decode_errors_total",
                "Frames that failed to decode, by reason.",
                &["reason"],
            ),
            capture_received: counter(
                r,
                "ipsecmon_capture_received_packets_total",
                "Packets the capture delivered.",
            ),
            capture_dropped: counter_vec(
                r,
                "ipsecmon_capture_dropped_packets_total",
                "Packets dropped before ipsecmon saw them (libpcap counters).",
                &["where"],
            ),
            capture_reopens: counter(
                r,
                "ipsecmon_capture_reopens_total",
                "Times the live interface went away and was opened again.",
            ),
            ipsecmon_stats: counter_vec(
                r,
                "ipsecmon_ipsec_events_total",
                "IPSecMon's statistics block: counts of events since start.",
                &["event"],
            ),
            bytes: counter_vec(
                r,
                "ipsecmon_protected_bytes_total",
                "Protected bytes (IPSecMon's confidential = ESP, authenticated = AH).",
                &["protection", "direction"],
            ),
            failures: counter_vec(
                r,
                "ipsecmon_negotiation_failures_total",
                "IKE negotiations that failed, by diagnosis code.",
                &["code"],
            ),
            retransmissions: counter(
                r,
                "ipsecmon_ike_retransmissions_total",
                "Retransmitted IKE messages.",
            ),
            tunnel_bytes: counter_vec(
                r,
                "ipsecmon_tunnel_bytes_total",
                "Protected bytes per tunnel and direction, monotonic across rekeys.",
                t,
            ),
            tunnel_packets: counter_vec(
                r,
                "ipsecmon_tunnel_packets_total",
                "Protected packets per tunnel and direction, monotonic across rekeys.",
                t,
            ),
            tunnel_lost: counter_vec(
                r,
                "ipsecmon_tunnel_esp_lost_packets_total",
                "ESP/AH sequence numbers never seen, per tunnel.",
                t,
            ),
            tunnel_replayed: counter_vec(
                r,
                "ipsecmon_tunnel_esp_replayed_packets_total",
                "ESP/AH sequence numbers seen twice, per tunnel.",
                t,
            ),
            tunnel_failures: counter_vec(
                r,
                "ipsecmon_tunnel_negotiation_failures_total",
                "IKE negotiations that failed, per tunnel and diagnosis code.",
                &["tunnel", "rule", "code"],
            ),
            tunnel_retransmissions: counter_vec(
                r,
                "ipsecmon_tunnel_ike_retransmissions_total",
                "Retransmitted IKE messages, per tunnel.",
                &["tunnel", "rule"],
            ),
            evictions: counter_vec(
                r,
                "ipsecmon_table_evictions_total",
                "Entries dropped because a bounded table was full (a flood, or caps set too low).",
                &["table"],
            ),
            latency,
            tunnel_latency,
        }
    }
}

impl Gauges {
    fn new(r: &Registry) -> Self {
        Gauges {
            ike_sas: gauge_vec(r, "ipsecmon_ike_sas", "IKE SAs currently tracked, by state.", &["state"]),
            stats: gauge_vec(r, "ipsecmon_ipsec_associations", "IPSecMon's gauges: active associations, pending key operations, soft associations.", &["kind"]),
            tunnel_state: gauge_vec(r, "ipsecmon_tunnel_state", "1 for the tunnel's current state, 0 for the others.", &["tunnel", "rule", "state"]),
            tunnels: gauge_vec(r, "ipsecmon_tunnels", "Tunnels by state.", &["state"]),
            tunnel_nat: gauge_vec(r, "ipsecmon_tunnel_nat_detected", "1 when a NAT was found between the tunnel's peers.", &["tunnel", "rule"]),
            tunnel_latency: float_gauge_vec(r, "ipsecmon_tunnel_last_establishment_seconds", "Establishment time of the tunnel's latest IKE SA.", &["tunnel", "rule"]),
            findings: gauge_vec(r, "ipsecmon_findings", "Current diagnosis findings, by code and severity.", &["code", "severity"]),
            tunnels_aggregated: {
                let g = IntGauge::new("ipsecmon_tunnels_aggregated", "Tunnels beyond the label cap, summed into tunnel=\"other\".").expect("valid");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            last_packet: {
                let g = prometheus::Gauge::new("ipsecmon_last_packet_timestamp_seconds", "Capture time of the latest frame.").expect("valid");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
        }
    }
}

impl Metrics {
    /// A collector with every label set that is known in advance initialised to zero.
    pub fn new(config: MetricsConfig) -> Self {
        let registry = Registry::new();
        let counters = Counters::new(&registry);
        let gauges = Gauges::new(&registry);
        let mut m = Metrics {
            registry,
            counters,
            gauges,
            config,
            last_sa: HashMap::new(),
            last_retrans: HashMap::new(),
            counted_failed: BTreeSet::new(),
            counted_established: BTreeSet::new(),
            last_capture: (0, 0, 0),
            last_reopens: 0,
            last_frames: 0,
            last_errors: BTreeMap::new(),
            last_stats: Default::default(),
            last_evictions: Default::default(),
            labelled: BTreeMap::new(),
            fresh: BTreeSet::new(),
            updates: 0,
        };
        m.initialise();
        m
    }

    fn initialise(&mut self) {
        for code in FAILURE_CODES {
            self.counters.failures.with_label_values(&[code.as_str()]);
        }
        for r in crate::wire::Reason::ALL {
            self.counters.decode_errors.with_label_values(&[r.as_str()]);
        }
        for w in ["kernel", "interface"] {
            self.counters.capture_dropped.with_label_values(&[w]);
        }
        for t in ["ike_sas", "esp_sas", "fragments"] {
            self.counters.evictions.with_label_values(&[t]);
        }
        for s in TunnelState::ALL {
            self.gauges.tunnels.with_label_values(&[s.as_str()]);
        }
        for e in STAT_EVENTS {
            self.counters.ipsecmon_stats.with_label_values(&[e]);
        }
        for p in ["confidential", "authenticated"] {
            for d in ["sent", "received"] {
                self.counters.bytes.with_label_values(&[p, d]);
            }
        }
        for k in ["active", "pending_key_operations", "soft"] {
            self.gauges.stats.with_label_values(&[k]);
        }
        for s in [
            IkeState::Negotiating,
            IkeState::Established,
            IkeState::Failed,
            IkeState::Deleted,
            IkeState::Expired,
        ] {
            self.gauges.ike_sas.with_label_values(&[s.as_str()]);
        }
        for (key, rule) in self.config.expected.clone() {
            self.label_for(&key, Some(&rule));
        }
    }

    /// Creates every series of a newly labelled tunnel at zero (state `down`), so that
    /// `rate()` and alerts read 0 for a quiet tunnel or direction instead of nothing.
    fn initialise_tunnel(&mut self, key: &str, rule: &str) {
        self.set_tunnel_state(key, rule, TunnelState::Down);
        let c = &self.counters;
        if let Some((a, b)) = key.split_once("<->") {
            for direction in [format!("{a}->{b}"), format!("{b}->{a}")] {
                let labels = [key, rule, direction.as_str()];
                c.tunnel_packets.with_label_values(&labels);
                c.tunnel_bytes.with_label_values(&labels);
                c.tunnel_lost.with_label_values(&labels);
                c.tunnel_replayed.with_label_values(&labels);
            }
        }
        for code in FAILURE_CODES {
            c.tunnel_failures
                .with_label_values(&[key, rule, code.as_str()]);
        }
        c.tunnel_retransmissions.with_label_values(&[key, rule]);
        c.tunnel_latency.with_label_values(&[key, rule]);
        self.gauges.tunnel_nat.with_label_values(&[key, rule]);
    }

    /// Applies a snapshot: counters advance by what changed since the previous one.
    pub fn update(&mut self, snap: &Snapshot) {
        self.fresh.clear();
        self.update_capture(snap);
        self.update_stats(&snap.report);
        self.update_evictions(&snap.report);
        self.update_ike(&snap.report);
        self.update_tunnels(&snap.report);
        self.update_findings(snap);
        if let Some(ts) = snap.report.last_ts {
            self.gauges.last_packet.set(ts);
        }
        self.updates += 1;
    }

    /// `true` when the last update labelled tunnels whose series it created at zero and
    /// whose events it left for the next update (see `fresh`).
    pub fn has_fresh_tunnels(&self) -> bool {
        !self.fresh.is_empty()
    }

    /// The exposition in Prometheus's text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if encoder.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    fn update_capture(&mut self, snap: &Snapshot) {
        let r = &snap.report;
        self.counters
            .frames
            .inc_by(r.frames.saturating_sub(self.last_frames));
        self.last_frames = self.last_frames.max(r.frames);
        for (reason, n) in &snap.decode_errors {
            let last = self.last_errors.entry(reason.clone()).or_insert(0);
            self.counters
                .decode_errors
                .with_label_values(&[reason])
                .inc_by(n.saturating_sub(*last));
            *last = (*last).max(*n);
        }
        let c = &snap.capture;
        let (rx, drop, ifdrop) = self.last_capture;
        self.counters
            .capture_received
            .inc_by(c.received.saturating_sub(rx));
        self.counters
            .capture_dropped
            .with_label_values(&["kernel"])
            .inc_by(c.dropped.saturating_sub(drop));
        self.counters
            .capture_dropped
            .with_label_values(&["interface"])
            .inc_by(c.if_dropped.saturating_sub(ifdrop));
        self.counters
            .capture_reopens
            .inc_by(c.reopens.saturating_sub(self.last_reopens));
        self.last_reopens = self.last_reopens.max(c.reopens);
        self.last_capture = (
            rx.max(c.received),
            drop.max(c.dropped),
            ifdrop.max(c.if_dropped),
        );
    }

    fn update_evictions(&mut self, r: &Report) {
        let (now, last) = (r.evictions, self.last_evictions);
        for (table, n, l) in [
            ("ike_sas", now.ike_sas, last.ike_sas),
            ("esp_sas", now.esp_sas, last.esp_sas),
            ("fragments", now.fragments, last.fragments),
        ] {
            self.counters
                .evictions
                .with_label_values(&[table])
                .inc_by(n.saturating_sub(l));
        }
        self.last_evictions = now;
    }

    fn update_stats(&mut self, r: &Report) {
        let (now, last) = (r.stats, self.last_stats);
        let events = [
            ("key_additions", now.key_additions, last.key_additions),
            ("key_deletions", now.key_deletions, last.key_deletions),
            ("rekeys", now.rekeys, last.rekeys),
            ("main_modes", now.main_modes, last.main_modes),
            ("quick_modes", now.quick_modes, last.quick_modes),
            (
                "authentication_failures",
                now.authentication_failures,
                last.authentication_failures,
            ),
            ("bad_spi_packets", now.bad_spi_packets, last.bad_spi_packets),
            (
                "packets_not_decrypted",
                now.packets_not_decrypted,
                last.packets_not_decrypted,
            ),
            (
                "packets_not_authenticated",
                now.packets_not_authenticated,
                last.packets_not_authenticated,
            ),
        ];
        for (name, n, l) in events {
            self.counters
                .ipsecmon_stats
                .with_label_values(&[name])
                .inc_by(n.saturating_sub(l));
        }
        let bytes = [
            (
                "confidential",
                "sent",
                now.confidential_bytes_sent,
                last.confidential_bytes_sent,
            ),
            (
                "confidential",
                "received",
                now.confidential_bytes_received,
                last.confidential_bytes_received,
            ),
            (
                "authenticated",
                "sent",
                now.authenticated_bytes_sent,
                last.authenticated_bytes_sent,
            ),
            (
                "authenticated",
                "received",
                now.authenticated_bytes_received,
                last.authenticated_bytes_received,
            ),
        ];
        for (p, d, n, l) in bytes {
            self.counters
                .bytes
                .with_label_values(&[p, d])
                .inc_by(n.saturating_sub(l));
        }
        for (kind, v) in [
            ("active", now.active_associations),
            ("pending_key_operations", now.pending_key_operations),
            ("soft", now.soft_associations),
        ] {
            self.gauges
                .stats
                .with_label_values(&[kind])
                .set(saturate(v));
        }
        self.last_stats = max_stats(last, now);
    }

    fn update_ike(&mut self, r: &Report) {
        let mut by_state: BTreeMap<&str, i64> = BTreeMap::new();
        let mut present = HashMap::new();
        for sa in &r.ike_sas {
            *by_state.entry(sa.state.as_str()).or_insert(0) += 1;
            let (key, _, _) = tunnels::ike_key(sa);
            let (tunnel, rule) = self.label_for(&key, sa.rule.as_deref());
            if self.fresh.contains(&tunnel) {
                continue;
            }
            self.count_once(sa, &tunnel, &rule);
            let last = self.last_retrans.get(&sa.spi_i).copied().unwrap_or(0);
            let new = u64::from(sa.retransmissions.saturating_sub(last));
            self.counters.retransmissions.inc_by(new);
            self.counters
                .tunnel_retransmissions
                .with_label_values(&[&tunnel, &rule])
                .inc_by(new);
            present.insert(sa.spi_i.clone(), sa.retransmissions.max(last));
        }
        self.last_retrans = present;
        let live: BTreeSet<&String> = r.ike_sas.iter().map(|s| &s.spi_i).collect();
        self.counted_failed.retain(|s| live.contains(s));
        self.counted_established.retain(|s| live.contains(s));
        for s in [
            IkeState::Negotiating,
            IkeState::Established,
            IkeState::Failed,
            IkeState::Deleted,
            IkeState::Expired,
        ] {
            let n = by_state.get(s.as_str()).copied().unwrap_or(0);
            self.gauges.ike_sas.with_label_values(&[s.as_str()]).set(n);
        }
    }

    /// Counts an SA's failure and its establishment latency once in its life, in total and
    /// for its tunnel.
    fn count_once(&mut self, sa: &IkeSaReport, tunnel: &str, rule: &str) {
        if let Some(f) = &sa.failure {
            if self.counted_failed.insert(sa.spi_i.clone()) {
                self.counters.failures.with_label_values(&[&f.code]).inc();
                self.counters
                    .tunnel_failures
                    .with_label_values(&[tunnel, rule, &f.code])
                    .inc();
            }
        }
        // An IKE SA made by a rekey carries its predecessor's establishment time: one
        // establishment, observed once, through the SA that negotiated it.
        let fresh_negotiation = sa.rekeyed_from.is_none();
        if let (Some(t), true) = (sa.established_after_s, fresh_negotiation) {
            if self.counted_established.insert(sa.spi_i.clone()) {
                self.counters.latency.observe(t);
                self.counters
                    .tunnel_latency
                    .with_label_values(&[tunnel, rule])
                    .observe(t);
            }
        }
    }

    /// The label a tunnel gets: its own while under the cap, `other` beyond. The rule label
    /// is fixed when the tunnel is first labelled, so its series never change identity.
    fn label_for(&mut self, key: &str, rule: Option<&str>) -> (String, String) {
        if let Some(known) = self.labelled.get(key) {
            return (key.to_string(), known.clone());
        }
        if self.labelled.len() < self.config.max_tunnels {
            let rule = rule.unwrap_or_default().to_string();
            self.labelled.insert(key.to_string(), rule.clone());
            self.initialise_tunnel(key, &rule);
            if self.updates > 0 {
                self.fresh.insert(key.to_string());
            }
            return (key.to_string(), rule);
        }
        (OTHER.to_string(), String::new())
    }

    fn update_tunnels(&mut self, r: &Report) {
        let views = tunnels::tunnels(r, self.config.idle_after_s);
        let mut counts: BTreeMap<TunnelState, i64> = BTreeMap::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut aggregated = 0;
        for v in &views {
            *counts.entry(v.state).or_insert(0) += 1;
            let (label, rule) = self.label_for(&v.key, v.rule.as_deref());
            if label == OTHER {
                aggregated += 1;
                continue;
            }
            seen.insert(label.clone());
            self.set_tunnel_state(&label, &rule, v.state);
            self.gauges
                .tunnel_nat
                .with_label_values(&[&label, &rule])
                .set(i64::from(v.nat));
            if let Some(t) = v.last_established_after_s {
                self.gauges
                    .tunnel_latency
                    .with_label_values(&[&label, &rule])
                    .set(t);
            }
        }
        self.mark_vanished_down(&seen);
        for s in TunnelState::ALL {
            self.gauges
                .tunnels
                .with_label_values(&[s.as_str()])
                .set(counts.get(&s).copied().unwrap_or(0));
        }
        self.gauges.tunnels_aggregated.set(aggregated);
        self.update_traffic(r);
    }

    /// Labelled tunnels (expected by policy, or seen before) absent now read `down`.
    fn mark_vanished_down(&mut self, seen: &BTreeSet<String>) {
        let absent: Vec<(String, String)> = self
            .labelled
            .iter()
            .filter(|(k, _)| !seen.contains(*k))
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        for (k, rule) in absent {
            self.set_tunnel_state(&k, &rule, TunnelState::Down);
        }
    }

    fn set_tunnel_state(&mut self, key: &str, rule: &str, state: TunnelState) {
        for s in TunnelState::ALL {
            let v = i64::from(s == state);
            self.gauges
                .tunnel_state
                .with_label_values(&[key, rule, s.as_str()])
                .set(v);
        }
    }

    fn update_traffic(&mut self, r: &Report) {
        let by_spi: BTreeMap<&str, &IkeSaReport> =
            r.ike_sas.iter().map(|s| (s.spi_i.as_str(), s)).collect();
        let mut present = HashMap::with_capacity(r.esp_sas.len() + r.ah_sas.len());
        for (proto, esp) in r
            .esp_sas
            .iter()
            .map(|e| ("esp", e))
            .chain(r.ah_sas.iter().map(|e| ("ah", e)))
        {
            let id = format!("{proto}/{}/{}", esp.dst, esp.spi);
            let (key, _, _) = tunnels::esp_key(esp, &by_spi);
            let (label, rule) = self.label_for(&key, esp.rule.as_deref());
            if self.fresh.contains(&label) {
                continue;
            }
            let direction = format!("{}->{}", tunnels::host(&esp.src), tunnels::host(&esp.dst));
            let direction = if label == OTHER {
                String::new()
            } else {
                direction
            };
            let last = self.last_sa.get(&id).copied().unwrap_or_default();
            let labels = [label.as_str(), rule.as_str(), direction.as_str()];
            self.counters
                .tunnel_packets
                .with_label_values(&labels)
                .inc_by(esp.packets.saturating_sub(last.packets));
            self.counters
                .tunnel_bytes
                .with_label_values(&labels)
                .inc_by(esp.bytes.saturating_sub(last.bytes));
            self.counters
                .tunnel_lost
                .with_label_values(&labels)
                .inc_by(esp.lost.saturating_sub(last.lost));
            self.counters
                .tunnel_replayed
                .with_label_values(&labels)
                .inc_by(esp.replayed.saturating_sub(last.replayed));
            let now = SaCounters {
                packets: esp.packets.max(last.packets),
                bytes: esp.bytes.max(last.bytes),
                lost: esp.lost.max(last.lost),
                replayed: esp.replayed.max(last.replayed),
            };
            present.insert(id, now);
        }
        self.last_sa = present;
    }

    fn update_findings(&mut self, snap: &Snapshot) {
        self.gauges.findings.reset();
        for f in &snap.findings {
            self.gauges
                .findings
                .with_label_values(&[f.code.as_str(), f.severity.as_str()])
                .inc();
        }
    }
}

fn saturate(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn max_stats(
    a: crate::track::report::Stats,
    b: crate::track::report::Stats,
) -> crate::track::report::Stats {
    crate::track::report::Stats {
        key_additions: a.key_additions.max(b.key_additions),
        key_deletions: a.key_deletions.max(b.key_deletions),
        rekeys: a.rekeys.max(b.rekeys),
        main_modes: a.main_modes.max(b.main_modes),
        quick_modes: a.quick_modes.max(b.quick_modes),
        authentication_failures: a.authentication_failures.max(b.authentication_failures),
        bad_spi_packets: a.bad_spi_packets.max(b.bad_spi_packets),
        packets_not_decrypted: a.packets_not_decrypted.max(b.packets_not_decrypted),
        packets_not_authenticated: a.packets_not_authenticated.max(b.packets_not_authenticated),
        confidential_bytes_sent: a.confidential_bytes_sent.max(b.confidential_bytes_sent),
        confidential_bytes_received: a
            .confidential_bytes_received
            .max(b.confidential_bytes_received),
        authenticated_bytes_sent: a.authenticated_bytes_sent.max(b.authenticated_bytes_sent),
        authenticated_bytes_received: a
            .authenticated_bytes_received
            .max(b.authenticated_bytes_received),
        ..b
    }
}
