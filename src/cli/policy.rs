//! `ipsecmon policy`.

use clap::Args;

/// Arguments of `ipsecmon policy`.
#[derive(Debug, Args)]
pub struct PolicyArgs {}

/// Runs the command; returns the exit code.
pub fn run(args: PolicyArgs) -> anyhow::Result<u8> {
    let _ = args;
    anyhow::bail!("ipsecmon policy is not available in this build")
}
