//! Following security associations: IKE SA state machines (IKEv1 Main, Aggressive, Quick,
//! Informational; IKEv2 IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL), child and
//! ESP/AH SA tables, counters, sequence gaps and replays, rekeys, NAT evidence and timing.
//!
//! Time is always the packet's capture timestamp, passed in; nothing here reads a clock.

pub mod correlate;
pub mod nat;
pub mod natd;
pub mod report;

use std::net::IpAddr;

use crate::wire::ike::IkeMessage;
use crate::wire::{Addrs, AhPacket, DecodeError, EspPacket, IcmpError, IkeDatagram, Timestamp};

use report::Report;

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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_ike_sas: 100_000,
            max_esp_sas: 1_000_000,
            stall_after_ns: 10_000_000_000,
            idle_expiry_ns: 3_600_000_000_000,
            local: None,
        }
    }
}

/// The tracker: every table, fed one decoded packet at a time.
#[derive(Debug)]
pub struct Tracker {
    config: Config,
    report: Report,
}

impl Tracker {
    /// An empty tracker.
    pub fn new(config: Config) -> Self {
        Tracker {
            config,
            report: Report::default(),
        }
    }

    /// The tracker's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// An IKE message (`msg` decoded from `dgram.message`).
    pub fn on_ike(&mut self, frame: u64, ts: Timestamp, dgram: &IkeDatagram<'_>, msg: &IkeMessage) {
        let _ = (dgram, msg);
        self.seen(frame, ts);
    }

    /// An ESP packet.
    pub fn on_esp(&mut self, frame: u64, ts: Timestamp, esp: &EspPacket<'_>) {
        let _ = esp;
        self.seen(frame, ts);
    }

    /// An AH packet.
    pub fn on_ah(&mut self, frame: u64, ts: Timestamp, ah: &AhPacket<'_>) {
        let _ = ah;
        self.seen(frame, ts);
    }

    /// A NAT-T keepalive.
    pub fn on_keepalive(&mut self, frame: u64, ts: Timestamp, addrs: &Addrs) {
        let _ = addrs;
        self.seen(frame, ts);
    }

    /// An ICMP error quoting an IPsec-related packet.
    pub fn on_icmp(&mut self, frame: u64, ts: Timestamp, icmp: &IcmpError<'_>) {
        let _ = icmp;
        self.seen(frame, ts);
    }

    /// A frame that failed to decode.
    pub fn on_decode_error(&mut self, frame: u64, ts: Timestamp, err: &DecodeError) {
        let _ = err;
        self.seen(frame, ts);
        self.report.decode_errors += 1;
    }

    /// A frame that is not IPsec-related.
    pub fn on_other(&mut self, frame: u64, ts: Timestamp) {
        self.seen(frame, ts);
    }

    /// Advances packet time without a packet (live capture's periodic tick).
    pub fn tick(&mut self, ts: Timestamp) {
        let _ = ts;
    }

    /// The current state as a report.
    pub fn report(&self) -> Report {
        self.report.clone()
    }

    fn seen(&mut self, frame: u64, ts: Timestamp) {
        self.report.frames = self.report.frames.max(frame);
        self.report.last_ts = Some(ts.as_secs_f64());
    }
}
