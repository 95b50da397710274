//! `ipsecmon policy`: check, show, explain and diff policy files.

use std::net::IpAddr;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{EXIT_FINDING, EXIT_OK, EXIT_USAGE};
use crate::policy::{
    diff, explain, peers, show, validate, Flow, LoadOptions, Policy, PolicyError, SystemResolver,
};

/// Arguments of `ipsecmon policy`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PolicyCommand,

    /// What `me` (My IP address) stands for, overriding the file's `local_addresses` and
    /// this host's addresses; repeat for several.
    #[arg(long, global = true)]
    pub local: Vec<IpAddr>,
}

/// The policy subcommands. FILE is a policy file or `builtin:client`, `builtin:server`,
/// `builtin:secure-server`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Load, resolve and validate: errors exit 2, warnings are printed and exit 0.
    Check {
        /// Policy file.
        file: String,
        /// One JSON document (`schema: 1`) with the errors and warnings and their lines.
        #[arg(long)]
        json: bool,
    },
    /// Print the policy as the MMC tree showed it, mirrored filters made explicit.
    Show {
        /// Policy file.
        file: String,
    },
    /// Which rule governs a flow, and why. Exit 1 when no rule does.
    Explain {
        /// Policy file.
        file: String,
        /// The flow, e.g. "tcp 192.0.2.1:40000 -> 192.0.2.2:6667" or "icmp 192.0.2.1 -> 192.0.2.2".
        flow: String,
        /// One JSON document (`schema: 1`) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// What differs between two policies; without B, against each policy A names in
    /// `other_policies`. When the two are the two ends of a conversation (their `me`
    /// addresses differ), also whether they agree about the traffic between them. Exit 1
    /// when they differ.
    Diff {
        /// First policy.
        a: String,
        /// Second policy.
        b: Option<String>,
    },
}

/// Runs the command; returns the exit code.
pub fn run(args: PolicyArgs) -> anyhow::Result<u8> {
    let me = (!args.local.is_empty()).then_some(args.local.as_slice());
    let opts = LoadOptions {
        resolver: &SystemResolver,
        me,
    };
    match args.command {
        PolicyCommand::Check { file, json } => check(&file, opts, json),
        PolicyCommand::Show { file } => with_policy(&file, opts, |p| {
            print!("{}", show::render(p));
            Ok(EXIT_OK)
        }),
        PolicyCommand::Explain { file, flow, json } => {
            let flow: Flow = flow.parse()?;
            with_policy(&file, opts, |p| explain_flow(p, &flow, json))
        }
        PolicyCommand::Diff { a, b } => with_policy(&a, opts, |pa| diff_policies(pa, b, opts)),
    }
}

/// Prints every error and warning; exit 2 on errors.
fn check(file: &str, opts: LoadOptions<'_>, json: bool) -> anyhow::Result<u8> {
    let result = Policy::load_with(file, opts);
    if json {
        let doc = validate::check_json(file, &result);
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(if result.is_ok() { EXIT_OK } else { EXIT_USAGE });
    }
    Ok(match result {
        Ok(p) => {
            for w in &p.warnings {
                println!("{w}");
            }
            println!(
                "{file}: policy {:?} is valid: {} rule(s), {} warning(s)",
                p.name,
                p.rules.len(),
                p.warnings.len()
            );
            EXIT_OK
        }
        Err(e) => {
            print_load_error(&e);
            EXIT_USAGE
        }
    })
}

fn print_load_error(e: &PolicyError) {
    if let PolicyError::Invalid { errors, warnings } = e {
        for d in errors.iter().chain(warnings) {
            println!("{d}");
        }
        println!("{} error(s); the policy cannot be used", errors.len());
    } else {
        println!("ipsecmon: {e}");
    }
}

/// Loads a policy (warnings to stderr) and runs `f`; a load error exits 2.
fn with_policy(
    file: &str,
    opts: LoadOptions<'_>,
    f: impl FnOnce(&Policy) -> anyhow::Result<u8>,
) -> anyhow::Result<u8> {
    match Policy::load_with(file, opts) {
        Ok(p) => {
            for w in &p.warnings {
                eprintln!("{w}");
            }
            f(&p)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(EXIT_USAGE)
        }
    }
}

fn explain_flow(p: &Policy, flow: &Flow, json: bool) -> anyhow::Result<u8> {
    let e = explain::explain(p, flow);
    if json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        print!("{}", explain::render_text(&e));
    }
    Ok(if e.matched { EXIT_OK } else { EXIT_FINDING })
}

fn diff_policies(a: &Policy, b: Option<String>, opts: LoadOptions<'_>) -> anyhow::Result<u8> {
    let others: Vec<String> = match b {
        Some(b) => vec![b],
        None => a
            .other_policies
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    };
    if others.is_empty() {
        anyhow::bail!(
            "{}: name a second policy, or list it in the file's other_policies",
            a.origin
        );
    }
    let mut code = EXIT_OK;
    for other in &others {
        let pb = Policy::load_with(other, opts).with_context(|| format!("loading {other}"))?;
        let changes = diff::diff(a, &pb);
        println!("--- {}\n+++ {}", a.origin, pb.origin);
        if changes.is_empty() {
            println!("  (no differences)");
        } else {
            code = EXIT_FINDING;
        }
        for c in changes {
            println!("{c}");
        }
        if peers::are_peers(a, &pb) {
            println!("as peers:");
            for c in peers::compare(a, &pb) {
                println!("{c}");
            }
        }
    }
    Ok(code)
}
