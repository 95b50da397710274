//! `ipsecmon lab`: the enforcing lab pair, its scenarios and its key tables.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{EXIT_FINDING, EXIT_OK};
use crate::lab::{keylog, keytable};

/// Arguments of `ipsecmon lab`.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: LabCommand,
}

/// The subcommands of `ipsecmon lab`.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Turn charon logs (ike/chd at level 4) into Wireshark key tables, checked against
    /// captures.
    Keys(KeysArgs),
}

/// Arguments of `ipsecmon lab keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// charon log files (a filelog with `ike = 4`, `chd = 4`, `ike_name = yes`).
    #[arg(required = true)]
    pub logs: Vec<PathBuf>,

    /// A capture of the same run: finds the SPIs of rekeyed IKE SAs, the direction of
    /// each ESP key, and checks every key against the integrity check values.
    #[arg(long = "capture", short = 'c')]
    pub captures: Vec<PathBuf>,

    /// Directory to write `ikev2_decryption_table`, `ikev1_decryption_table`, `esp_sa`.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
}

/// Runs the command; returns the exit code.
pub fn run(args: LabArgs) -> anyhow::Result<u8> {
    match args.command {
        LabCommand::Keys(k) => keys(k),
    }
}

fn keys(args: KeysArgs) -> anyhow::Result<u8> {
    let mut logs = Vec::new();
    for path in &args.logs {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the charon log", path.display()))?;
        let label = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        logs.push(keylog::parse(&label, &text));
    }
    let mut captures = Vec::new();
    for path in &args.captures {
        captures.push(keytable::scan(path)?);
    }
    let tables = keytable::build(&logs, &captures);
    let written = tables
        .write_to(&args.out)
        .with_context(|| format!("{}: cannot write the key tables", args.out.display()))?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    for (table, (lines, verified, failed)) in tables.summary() {
        println!("{table}: {lines} lines, {verified} verified, {failed} failed");
    }
    for skipped in &tables.skipped {
        println!("skipped {skipped}");
    }
    Ok(if tables.any_failed() {
        EXIT_FINDING
    } else {
        EXIT_OK
    })
}
