//! `ipsecmon lab`.

use clap::Args;

/// Arguments of `ipsecmon lab`.
#[derive(Debug, Args)]
pub struct LabArgs {}

/// Runs the command; returns the exit code.
pub fn run(args: LabArgs) -> anyhow::Result<u8> {
    let _ = args;
    anyhow::bail!("ipsecmon lab is not available in this build")
}
