//! The hot loop's state: one frame in, decoder and tracker updated. The engine knows
//! nothing of terminals, HTTP or files; callers feed it frames and ask for snapshots.

use std::net::IpAddr;
use std::sync::Arc;

use crate::capture::{CaptureStats, Frame};
use crate::cleartext::CleartextWatch;
use crate::decrypt::Decryptor;
use crate::diagnose;
use crate::keys::KeyTable;
use crate::policy::Policy;
use crate::snapshot::{RuleSummary, Snapshot};
use crate::track::report::{EspSaReport, IkeSaReport};
use crate::track::{self, Prefetch, RowLabel, Rows, Tracker};
use crate::wire::ike::{self, vendor::DraftNatdMemory};
use crate::wire::{Decoder, DecoderConfig, LinkType, Packet, Reason};

/// Settings of the whole engine.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Decoder limits.
    pub decoder: DecoderConfig,
    /// Tracker limits and thresholds.
    pub tracker: track::Config,
    /// Diagnosis thresholds.
    pub diagnose: diagnose::Config,
    /// The assigned policy, when one is loaded: SAs are labelled with their rules and
    /// cleartext that a rule requires to be protected is reported.
    pub policy: Option<Arc<Policy>>,
    /// Session keys (`--keys`): encrypted IKE messages and ESP packets they fit are
    /// decrypted, and what is inside feeds the tracker.
    pub keys: Option<Arc<KeyTable>>,
}

/// Decoder, tracker and error counters for one capture.
#[derive(Debug)]
pub struct Engine {
    decoder: Decoder,
    tracker: Tracker,
    diagnose: diagnose::Config,
    decode_errors: [u64; Reason::ALL.len()],
    natd: DraftNatdMemory,
    last_ts: Option<crate::wire::Timestamp>,
    policy: Option<Arc<Policy>>,
    cleartext: Option<CleartextWatch>,
    decrypt: Option<Decryptor>,
    rules: Vec<RuleSummary>,
}

impl Engine {
    /// A fresh engine.
    pub fn new(config: EngineConfig) -> Self {
        Engine {
            decoder: Decoder::new(config.decoder),
            tracker: Tracker::new(config.tracker),
            diagnose: config.diagnose,
            decode_errors: [0; Reason::ALL.len()],
            natd: DraftNatdMemory::default(),
            last_ts: None,
            cleartext: config.policy.clone().map(CleartextWatch::new),
            rules: config
                .policy
                .as_deref()
                .map(RuleSummary::of_policy)
                .unwrap_or_default(),
            policy: config.policy,
            decrypt: config.keys.map(Decryptor::new),
        }
    }

    /// `true` when [`Engine::prefetch_index`] pays: the tables outgrew the caches.
    pub fn prefetch_worthwhile(&self) -> bool {
        self.tracker.prefetch_worthwhile()
    }

    /// Starts loading the index line a frame not fed yet (two frames from now) will look
    /// up; pass the answer to [`Engine::prefetch_entry`] the frame before its turn. File
    /// readers call it for frames already in their buffer. A hint only: frames that are
    /// not plain ESP, AH or IKE give `None`.
    pub fn prefetch_index(&self, link: LinkType, data: &[u8]) -> Option<Prefetch> {
        self.tracker
            .prefetch_index(&crate::wire::peek::glance(link, data)?)
    }

    /// Starts loading the table entry of the next frame (see [`Engine::prefetch_index`]).
    pub fn prefetch_entry(&self, p: Prefetch) {
        self.tracker.prefetch_entry(p);
    }

    /// Feeds one frame.
    pub fn process(&mut self, frame: &Frame<'_>) {
        let (n, ts) = (frame.number, frame.ts);
        self.last_ts = Some(self.last_ts.map_or(ts, |t| t.max(ts)));
        match self.decoder.decode_numbered(n, frame.link, ts, frame.data) {
            Ok(Packet::Ike(dgram)) => {
                self.tracker.prefetch_ike(&dgram);
                // IKEv1 SAs that negotiated a NAT-T draft number NAT-D differently.
                let ctx = self.natd.context(dgram.message);
                match ike::parse_message(dgram.message, ctx) {
                    Ok(mut msg) => {
                        let decrypted = match &mut self.decrypt {
                            Some(d) => d.ike(&dgram.addrs, dgram.message, &mut msg, ctx),
                            None => None,
                        };
                        self.natd.observe(&msg);
                        self.tracker.on_ike(n, ts, &dgram, &msg);
                        if let Some(d) = decrypted {
                            self.tracker.on_ike_decrypt(n, &msg.header, d.outcome());
                        }
                    }
                    Err(e) => {
                        self.decode_errors[e.reason as usize] += 1;
                        self.tracker.on_decode_error(n, ts, &e);
                    }
                }
            }
            Ok(Packet::Esp(esp)) => {
                self.tracker.on_esp(n, ts, &esp);
                // The only cost of decryption when no key is given: this branch.
                if let Some(d) = &mut self.decrypt {
                    if let Some(result) = d.esp(&esp) {
                        self.tracker
                            .on_esp_decrypt(n, &esp, result.as_ref().map_err(|e| *e));
                    }
                }
            }
            Ok(Packet::Ah(ah)) => self.tracker.on_ah(n, ts, &ah),
            Ok(Packet::Keepalive(addrs)) => self.tracker.on_keepalive(n, ts, &addrs),
            Ok(Packet::Icmp(icmp)) => self.tracker.on_icmp(n, ts, &icmp),
            Ok(Packet::Fragment) => self.tracker.on_other(n, ts),
            Ok(Packet::Other) => {
                self.tracker.on_other(n, ts);
                if let Some(watch) = &mut self.cleartext {
                    watch.observe(n, ts, frame.link, frame.data);
                }
            }
            Err(e) => {
                self.decode_errors[e.reason as usize] += 1;
                self.tracker.on_decode_error(n, ts, &e);
            }
        }
        for lost in self.decoder.take_expired_ike_fragments() {
            self.tracker.on_lost_ike_fragments(&lost);
        }
    }

    /// The input has ended: IKE datagrams still missing fragments count as lost, and
    /// negotiations left waiting are judged (see [`Tracker::finish`]).
    pub fn finish(&mut self) {
        for lost in self.decoder.pending_ike_fragments() {
            self.tracker.on_lost_ike_fragments(&lost);
        }
        if let Some(ts) = self.last_ts {
            self.tracker.finish(ts);
        }
    }

    /// Advances packet time without a frame (live capture's tick).
    pub fn tick(&mut self, ts: crate::wire::Timestamp) {
        self.decoder.tick(ts);
        for lost in self.decoder.take_expired_ike_fragments() {
            self.tracker.on_lost_ike_fragments(&lost);
        }
        self.tracker.tick(ts);
    }

    /// The decoder (its reassembly counters and table).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The tracker.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// The tracker's report: its SAs labelled with their policy rules when a policy is
    /// loaded, and the fragment reassemblies the decoder abandoned (expired or evicted)
    /// counted in its evictions.
    pub fn report(&self) -> crate::track::report::Report {
        let mut report = self.rows().into_report();
        if let Some(policy) = &self.policy {
            label_with_rules(&mut report, policy);
        }
        report
    }

    /// The tracker's rows (for outputs that write one row at a time), with the fragment
    /// reassemblies the decoder abandoned counted in the evictions. Policy rules are not
    /// in them: [`Engine::write_report_json`] adds those.
    pub fn rows(&self) -> Rows<'_> {
        let mut rows = self.tracker.rows();
        let frags = self.decoder.reassembly_stats();
        rows.set_fragment_evictions(frags.expired + frags.evicted);
        rows
    }

    /// Writes [`Engine::report`] as one pretty-printed JSON document, byte for byte what
    /// serializing it gives, but making each row as it is written instead of holding the
    /// whole document (hundreds of MB with 100,000 IKE SAs).
    pub fn write_report_json<W: std::io::Write>(&self, out: W) -> serde_json::Result<()> {
        let rows = self.rows();
        let label = PolicyLabel(self.policy.as_deref());
        crate::export::pretty::to_writer_pretty(out, &rows.streamed(&label))
    }

    /// An immutable snapshot: report, diagnosis and counters.
    pub fn snapshot(&self, source: &str, capture: CaptureStats) -> Snapshot {
        let report = self.report();
        let cleartext = self
            .cleartext
            .as_ref()
            .map(|w| w.flows())
            .unwrap_or_default();
        let mut findings = diagnose::diagnose(&report, &self.diagnose);
        findings.extend(diagnose::cleartext_findings(&cleartext));
        diagnose::sort_worst_first(&mut findings);
        let decode_errors = Reason::ALL
            .iter()
            .map(|r| (r.as_str().to_string(), self.decode_errors[*r as usize]))
            .collect();
        Snapshot {
            schema: 1,
            source: source.to_string(),
            report,
            findings,
            capture,
            decode_errors,
            cleartext,
            rules: self.rules.clone(),
        }
    }
}

/// The host part of `ip`, `ip:port` or `[v6]:port`.
fn host_of(endpoint: &str) -> Option<IpAddr> {
    endpoint.parse().ok().or_else(|| {
        endpoint
            .parse::<std::net::SocketAddr>()
            .ok()
            .map(|s| s.ip())
    })
}

/// The first negotiate rule that covers traffic between two peers, by name.
fn rule_between(policy: &Policy, a: &str, b: &str) -> Option<String> {
    let (a, b) = (host_of(a)?, host_of(b)?);
    let index = *policy.rules_between(a, b).first()?;
    policy.rules.get(index).map(|r| r.name.clone())
}

/// Labels every IKE, ESP and AH SA with the rule it falls under.
fn label_with_rules(report: &mut crate::track::report::Report, policy: &Policy) {
    let label = PolicyLabel(Some(policy));
    for sa in &mut report.ike_sas {
        label.ike(sa);
    }
    for sa in report.esp_sas.iter_mut().chain(report.ah_sas.iter_mut()) {
        label.esp(sa);
    }
}

/// The rule each SA falls under, when a policy is loaded.
struct PolicyLabel<'a>(Option<&'a Policy>);

impl RowLabel for PolicyLabel<'_> {
    fn ike(&self, sa: &mut IkeSaReport) {
        if let Some(policy) = self.0 {
            sa.rule = rule_between(policy, &sa.initiator, &sa.responder);
        }
    }

    fn esp(&self, sa: &mut EspSaReport) {
        if let Some(policy) = self.0 {
            sa.rule = rule_between(policy, &sa.src, &sa.dst);
        }
    }
}
