//! The live view: `ipsecmon [--refresh SECS] [-i IFACE | -r FILE]`.

use std::path::PathBuf;

use clap::Args;

/// Options of the live view.
#[derive(Debug, Clone, Args, Default)]
pub struct ViewArgs {
    /// Seconds between redraws (IPSecMon's refresh interval).
    #[arg(long, default_value_t = 1.0)]
    pub refresh: f64,

    /// Capture live from this interface.
    #[arg(short = 'i', long = "interface", conflicts_with = "read")]
    pub interface: Option<String>,

    /// Replay this capture file at its recorded pace.
    #[arg(short = 'r', long = "read")]
    pub read: Option<PathBuf>,
}

/// Runs the view; returns the exit code.
pub fn run(args: ViewArgs) -> anyhow::Result<u8> {
    let _ = args;
    anyhow::bail!("the live view is not available in this build")
}
