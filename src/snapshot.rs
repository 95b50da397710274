//! The immutable snapshot that every output renders from.

use serde::{Deserialize, Serialize};

use crate::capture::CaptureStats;
use crate::diagnose::Finding;
use crate::track::report::Report;

/// Everything the outputs show, taken at one instant of packet time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Always 1.
    pub schema: u32,
    /// What is being read (`file.pcap` or `interface eth0`).
    pub source: String,
    /// The tracker's report.
    pub report: Report,
    /// The diagnosis of that report, worst first.
    pub findings: Vec<Finding>,
    /// Capture counters.
    pub capture: CaptureStats,
    /// Decode errors by reason (`Reason::as_str`), in a fixed order.
    pub decode_errors: Vec<(String, u64)>,
    /// Cleartext flows that the loaded policy requires to be protected (empty without one).
    #[serde(default)]
    pub cleartext: Vec<crate::cleartext::CleartextFlow>,
}
