//! `ipsecmon enforce`.

use clap::Args;

/// Arguments of `ipsecmon enforce`.
#[derive(Debug, Args)]
pub struct EnforceArgs {}

/// Runs the command; returns the exit code.
pub fn run(args: EnforceArgs) -> anyhow::Result<u8> {
    let _ = args;
    anyhow::bail!("ipsecmon enforce is not available in this build")
}
