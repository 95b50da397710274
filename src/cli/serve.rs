//! `ipsecmon serve`.

use clap::Args;

/// Arguments of `ipsecmon serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {}

/// Runs the command; returns the exit code.
pub fn run(args: ServeArgs) -> anyhow::Result<u8> {
    let _ = args;
    anyhow::bail!("ipsecmon serve is not available in this build")
}
