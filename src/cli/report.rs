//! `ipsecmon report`.

use clap::Args;

/// Arguments of `ipsecmon report`.
#[derive(Debug, Args)]
pub struct ReportArgs {}

/// Runs the command; returns the exit code.
pub fn run(args: ReportArgs) -> anyhow::Result<u8> {
    let _ = args;
    anyhow::bail!("ipsecmon report is not available in this build")
}
