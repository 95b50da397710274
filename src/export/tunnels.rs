//! Tunnels: the stable identity under which per-tunnel metrics are kept.
//!
//! A tunnel is the pair of peer addresses (and the policy rule, when one is loaded), never
//! an SPI or a per-rekey identifier, so that its series survive every rekey and `rate()`
//! stays right across them.

use std::collections::BTreeMap;

use crate::track::report::{EspSaReport, IkeSaReport, IkeState, NatVerdict, Report};

/// The state of a tunnel, one gauge series each (DESIGN.md: explicit states, so alerts do
/// not flap during a rekey and an idle on-demand tunnel is not "down").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TunnelState {
    /// Nothing usable: every negotiation failed, was deleted or expired, or none started.
    Down,
    /// A negotiation is under way and nothing is established yet.
    Negotiating,
    /// Established but no protected packet for a while (on-demand tunnels go quiet).
    Idle,
    /// Established with recent protected traffic.
    Established,
    /// Established and a rekey is under way.
    Rekeying,
}

impl TunnelState {
    /// Every state, in label order.
    pub const ALL: [TunnelState; 5] = [
        TunnelState::Negotiating,
        TunnelState::Established,
        TunnelState::Rekeying,
        TunnelState::Idle,
        TunnelState::Down,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelState::Down => "down",
            TunnelState::Negotiating => "negotiating",
            TunnelState::Idle => "idle",
            TunnelState::Established => "established",
            TunnelState::Rekeying => "rekeying",
        }
    }
}

/// What one tunnel amounts to in one report.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelView {
    /// `a<->b`, the two peer addresses in sorted order.
    pub key: String,
    /// The lower-sorting peer address.
    pub a: String,
    /// The other peer address.
    pub b: String,
    /// Current state.
    pub state: TunnelState,
    /// Whether any IKE SA of the tunnel found a NAT on the path.
    pub nat: bool,
    /// Latest establishment latency, seconds.
    pub last_established_after_s: Option<f64>,
    /// The policy rule of the tunnel's SAs, when a policy is loaded.
    pub rule: Option<String>,
}

/// Host part of `ip:port` / `[v6]:port` / bare `ip`.
pub fn host(endpoint: &str) -> &str {
    if let Some(rest) = endpoint.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match endpoint.matches(':').count() {
        1 => endpoint.split(':').next().unwrap_or(endpoint),
        _ => endpoint,
    }
}

/// The tunnel key of two peers, order-independent.
pub fn key_of(x: &str, y: &str) -> (String, String, String) {
    let (a, b) = if x <= y { (x, y) } else { (y, x) };
    (format!("{a}<->{b}"), a.to_string(), b.to_string())
}

/// The tunnel an IKE SA belongs to.
pub fn ike_key(sa: &IkeSaReport) -> (String, String, String) {
    key_of(host(&sa.initiator), host(&sa.responder))
}

/// The tunnel an ESP/AH SA belongs to: its IKE SA's, or its own endpoints.
pub fn esp_key(
    esp: &EspSaReport,
    by_spi: &BTreeMap<&str, &IkeSaReport>,
) -> (String, String, String) {
    match esp.ike_sa.as_deref().and_then(|s| by_spi.get(s)) {
        Some(sa) => ike_key(sa),
        None => key_of(host(&esp.src), host(&esp.dst)),
    }
}

/// Every tunnel of a report with its state. `idle_after_s`: established tunnels with no
/// protected packet for this long are `idle`.
pub fn tunnels(report: &Report, idle_after_s: f64) -> Vec<TunnelView> {
    let by_spi: BTreeMap<&str, &IkeSaReport> = report
        .ike_sas
        .iter()
        .map(|s| (s.spi_i.as_str(), s))
        .collect();
    let mut last_packet: BTreeMap<String, f64> = BTreeMap::new();
    for esp in report.esp_sas.iter().chain(&report.ah_sas) {
        let (key, _, _) = esp_key(esp, &by_spi);
        let slot = last_packet.entry(key).or_insert(f64::MIN);
        *slot = slot.max(esp.last_seen);
    }
    let now = report.last_ts.unwrap_or(0.0);
    let mut out: BTreeMap<String, TunnelView> = BTreeMap::new();
    for sa in &report.ike_sas {
        let (key, a, b) = ike_key(sa);
        let recent = last_packet
            .get(&key)
            .is_some_and(|t| now - t < idle_after_s);
        let state = sa_state(sa, recent, now, idle_after_s);
        let view = out.entry(key.clone()).or_insert(TunnelView {
            key,
            a,
            b,
            state: TunnelState::Down,
            nat: false,
            last_established_after_s: None,
            rule: None,
        });
        view.state = view.state.max(state);
        if sa.rule.is_some() {
            view.rule.clone_from(&sa.rule);
        }
        view.nat |= matches!(
            sa.nat.verdict,
            NatVerdict::Initiator | NatVerdict::Responder | NatVerdict::Both
        );
        if sa.established_after_s.is_some() {
            view.last_established_after_s = sa.established_after_s;
        }
    }
    add_unnegotiated(&mut out, report, &by_spi, now, idle_after_s);
    out.into_values().collect()
}

/// ESP seen without any IKE SA (negotiated before the capture started) still makes a tunnel.
fn add_unnegotiated(
    out: &mut BTreeMap<String, TunnelView>,
    report: &Report,
    by_spi: &BTreeMap<&str, &IkeSaReport>,
    now: f64,
    idle_after_s: f64,
) {
    for esp in report.esp_sas.iter().chain(&report.ah_sas) {
        let (key, a, b) = esp_key(esp, by_spi);
        let state = if now - esp.last_seen < idle_after_s {
            TunnelState::Established
        } else {
            TunnelState::Idle
        };
        let view = out.entry(key.clone()).or_insert(TunnelView {
            key,
            a,
            b,
            state,
            nat: esp.encap == "udp",
            last_established_after_s: None,
            rule: esp.rule.clone(),
        });
        if esp.ike_sa.is_none() {
            view.state = view.state.max(state);
        }
    }
}

fn sa_state(sa: &IkeSaReport, recent_traffic: bool, now: f64, idle_after_s: f64) -> TunnelState {
    match sa.state {
        IkeState::Negotiating => TunnelState::Negotiating,
        IkeState::Failed | IkeState::Deleted | IkeState::Expired => TunnelState::Down,
        IkeState::Established => {
            let rekeying = sa.exchanges.iter().any(|x| {
                (x.exchange == "CREATE_CHILD_SA" || x.exchange == "Quick Mode")
                    && x.response_frame.is_none()
            });
            let just_up = now - sa.last_seen < idle_after_s;
            if rekeying {
                TunnelState::Rekeying
            } else if recent_traffic || just_up {
                TunnelState::Established
            } else {
                TunnelState::Idle
            }
        }
    }
}
