//! `ipsecmon correlate`.

use clap::Args;

/// Arguments of `ipsecmon correlate`.
#[derive(Debug, Args)]
pub struct CorrelateArgs {}

/// Runs the command; returns the exit code.
pub fn run(args: CorrelateArgs) -> anyhow::Result<u8> {
    let _ = args;
    anyhow::bail!("ipsecmon correlate is not available in this build")
}
