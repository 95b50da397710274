//! The command line: argument definitions and the wiring of each command. No logic of its
//! own lives here; each command's file resolves its flags and calls the library.

pub mod correlate;
pub mod decode;
pub mod diagnose;
pub mod enforce;
pub mod lab;
pub mod policy;
pub mod report;
pub mod serve;
pub mod view;

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: a finding or failure the user asked about.
pub const EXIT_FINDING: u8 = 1;
/// Exit code: bad usage or unreadable input.
pub const EXIT_USAGE: u8 = 2;

/// Watch IPsec from the wire: decode IKE, ESP and AH, follow every security association,
/// find NAT on the path, and explain why a tunnel will not come up.
#[derive(Debug, Parser)]
#[command(name = "ipsecmon", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Log level for diagnostics on stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, env = "IPSECMON_LOG", default_value = "warn")]
    pub log: String,

    /// A subcommand; without one, the live view runs.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Options of the live view (when no subcommand is given).
    #[command(flatten)]
    pub view: view::ViewArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode every IPsec-related frame of a capture (JSON Lines with --json).
    Decode(decode::DecodeArgs),
    /// Read captures and report every SA and the statistics.
    Report(report::ReportArgs),
    /// Explain SAs that failed or hang.
    Diagnose(diagnose::DiagnoseArgs),
    /// Serve Prometheus metrics and the JSON API.
    Serve(serve::ServeArgs),
    /// Match the same traffic captured at two points: NAT, loss and delay.
    Correlate(correlate::CorrelateArgs),
    /// The policy engine: check, show, explain.
    Policy(policy::PolicyArgs),
    /// Render and apply a policy to a real IKE daemon and packet filter.
    Enforce(enforce::EnforceArgs),
    /// Build, inspect and remove the enforcing lab pair.
    Lab(lab::LabArgs),
}

/// Options shared by every command that runs the capture engine.
#[derive(Debug, Clone, Args, Default)]
pub struct EngineArgs {
    /// Key tables (a file or a directory) in Wireshark's formats, to decrypt IKE and ESP.
    #[arg(long, env = "IPSECMON_KEYS")]
    pub keys: Option<PathBuf>,

    /// Policy file (TOML) or `builtin:NAME`: label SAs with their rules.
    #[arg(long, env = "IPSECMON_POLICY")]
    pub policy: Option<String>,

    /// The local host's address: "sent" and "received" are counted from its side.
    #[arg(long)]
    pub local: Option<IpAddr>,

    /// Seconds of packet time after which a half-finished negotiation counts as stalled.
    #[arg(long, default_value_t = 10.0)]
    pub stall_after: f64,

    /// Most IKE SAs tracked at once.
    #[arg(long, default_value_t = 100_000)]
    pub max_ike_sas: usize,

    /// Most ESP/AH SAs tracked at once.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_esp_sas: usize,
}

/// Options of live capture.
#[derive(Debug, Clone, Args, Default)]
pub struct LiveArgs {
    /// BPF filter for live capture (default: IKE, NAT-T, ESP, AH, ICMP, fragments).
    #[arg(long)]
    pub filter: Option<String>,

    /// After opening the interface, drop privileges to this user.
    #[arg(long, env = "IPSECMON_USER")]
    pub user: Option<String>,
}
