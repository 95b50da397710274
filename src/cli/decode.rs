//! `ipsecmon decode`.

use clap::Args;

/// Arguments of `ipsecmon decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {}

/// Runs the command; returns the exit code.
pub fn run(args: DecodeArgs) -> anyhow::Result<u8> {
    let _ = args;
    anyhow::bail!("ipsecmon decode is not available in this build")
}
