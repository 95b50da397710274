//! `ipsecmon diagnose`.

use clap::Args;

/// Arguments of `ipsecmon diagnose`.
#[derive(Debug, Args)]
pub struct DiagnoseArgs {}

/// Runs the command; returns the exit code.
pub fn run(args: DiagnoseArgs) -> anyhow::Result<u8> {
    let _ = args;
    anyhow::bail!("ipsecmon diagnose is not available in this build")
}
