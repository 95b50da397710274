//! `ipsecmon lab`: the enforcing lab pair, its scenarios and its key tables.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{EXIT_FINDING, EXIT_OK};
use crate::enforce::IkeVersion;
use crate::lab::state::State;
use crate::lab::traffic::{TrafficOptions, TrafficReport};
use crate::lab::{self, keylog, keytable, scenario, LabError, UpOptions};

/// Arguments of `ipsecmon lab`.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: LabCommand,
}

/// Which lab: the namespace prefix and the directory holding its state.
#[derive(Debug, Clone, Args)]
pub struct Which {
    /// Namespace prefix: PREFIX-alice, PREFIX-bob, PREFIX-nat (none: alice, bob, nat).
    #[arg(long, default_value = "", env = "IPSECMON_LAB_PREFIX")]
    pub prefix: String,

    /// The lab's directory (state file, configuration, captures, logs); default
    /// /var/lib/ipsecmon/lab/PREFIX.
    #[arg(long, env = "IPSECMON_LAB_DIR")]
    pub dir: Option<PathBuf>,
}

impl Which {
    fn dir(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| lab::default_dir(&self.prefix))
    }
}

/// The subcommands of `ipsecmon lab`.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build Alice and Bob (network namespaces, one charon each, the policies applied, a
    /// capture on the link).
    Up(UpArgs),
    /// The SAs as ipsecmon sees them on the wire, next to what each charon reports.
    Status(Which),
    /// Run the seed's workload: TCP to 6667 and 6668 (echoed back), and pings both ways.
    Traffic(TrafficArgs),
    /// Remove every namespace, process and file the lab made (nothing to do is fine).
    Down(DownArgs),
    /// List the scenarios, each with what ipsecmon says of it with and without the key
    /// tables.
    Scenarios,
    /// Turn charon logs (ike/chd at level 4) into Wireshark key tables, checked against
    /// captures.
    Keys(KeysArgs),
}

/// Arguments of `ipsecmon lab up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Which lab.
    #[command(flatten)]
    pub which: Which,

    /// A preset (see `ipsecmon lab scenarios`); `ok` when no policy files are given.
    #[arg(long)]
    pub scenario: Option<String>,

    /// Put a NAT namespace (MASQUERADE) between Alice and Bob.
    #[arg(long)]
    pub nat: bool,

    /// Alice's policy file (with --bob).
    #[arg(long, requires = "bob")]
    pub alice: Option<PathBuf>,

    /// Bob's policy file (with --alice).
    #[arg(long, requires = "alice")]
    pub bob: Option<PathBuf>,

    /// IKE version for the policy files: 2, or 1 for Main Mode and Quick Mode
    /// (scenarios bring their own).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub ike_version: Option<u8>,

    /// Negotiate on demand: nothing starts when the policies are loaded; the first packet
    /// that needs protection does ("Negotiating IP security").
    #[arg(long)]
    pub on_demand: bool,
}

/// Arguments of `ipsecmon lab traffic`.
#[derive(Debug, Args)]
pub struct TrafficArgs {
    /// Which lab.
    #[command(flatten)]
    pub which: Which,

    /// Lines sent (and echoed) on each TCP connection.
    #[arg(long, default_value_t = 5)]
    pub lines: u32,

    /// Milliseconds between lines.
    #[arg(long, default_value_t = 200)]
    pub interval_ms: u64,

    /// Pings each way (0 for none).
    #[arg(long, default_value_t = 3)]
    pub pings: u32,
}

/// Arguments of `ipsecmon lab down`.
#[derive(Debug, Args)]
pub struct DownArgs {
    /// Which lab.
    #[command(flatten)]
    pub which: Which,

    /// Before removing, copy the captures, charon logs and rendered configuration here.
    #[arg(long)]
    pub save: Option<PathBuf>,
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
        LabCommand::Up(a) => up(a),
        LabCommand::Status(w) => status(&w),
        LabCommand::Traffic(a) => traffic(a),
        LabCommand::Down(a) => down(a),
        LabCommand::Scenarios => {
            print!("{}", scenario::listing());
            Ok(EXIT_OK)
        }
        LabCommand::Keys(k) => keys(k),
    }
}

fn up(a: UpArgs) -> anyhow::Result<u8> {
    let opts = UpOptions {
        prefix: a.which.prefix.clone(),
        dir: a.which.dir.clone(),
        scenario: a.scenario,
        nat: a.nat,
        on_demand: a.on_demand,
        alice: a.alice,
        bob: a.bob,
        ike: a.ike_version.map(|v| {
            if v == 1 {
                IkeVersion::V1
            } else {
                IkeVersion::V2
            }
        }),
    };
    let state = lab::up(&opts)?;
    println!(
        "lab up in {} ({})",
        state.dir.display(),
        state.scenario.as_deref().unwrap_or("custom policies")
    );
    for h in &state.hosts {
        let daemon = if h.vici.is_some() {
            "charon"
        } else {
            "no IKE daemon"
        };
        println!(
            "  {:<6} {:<10} {:<12} {daemon}",
            h.name,
            h.netns,
            h.address.to_string()
        );
    }
    for c in &state.captures {
        println!(
            "  capture {} on {} in {}: {}",
            c.name,
            c.iface,
            c.netns,
            c.file.display()
        );
    }
    println!(
        "next: ipsecmon lab traffic{0}; ipsecmon lab status{0}; ipsecmon lab down{0}",
        flags(&a.which)
    );
    Ok(EXIT_OK)
}

/// The flags that name this lab again, for the hints printed.
fn flags(w: &Which) -> String {
    let mut s = String::new();
    if !w.prefix.is_empty() {
        s.push_str(&format!(" --prefix {}", w.prefix));
    }
    if let Some(d) = &w.dir {
        s.push_str(&format!(" --dir {}", d.display()));
    }
    s
}

fn load(w: &Which) -> anyhow::Result<State> {
    let dir = w.dir();
    State::load(&dir)?.ok_or_else(|| LabError::NotUp { dir }.into())
}

fn status(w: &Which) -> anyhow::Result<u8> {
    let state = load(w)?;
    print!("{}", lab::status::render(&state)?);
    Ok(EXIT_OK)
}

fn traffic(a: TrafficArgs) -> anyhow::Result<u8> {
    let state = load(&a.which)?;
    let opts = TrafficOptions {
        lines: a.lines,
        interval: Duration::from_millis(a.interval_ms),
        pings: a.pings,
        ..TrafficOptions::default()
    };
    let report = lab::traffic::run(&state, &opts)?;
    print_traffic(&report);
    Ok(if report.all_echoed() {
        EXIT_OK
    } else {
        EXIT_FINDING
    })
}

fn print_traffic(r: &TrafficReport) {
    for t in &r.tcp {
        let how = t
            .error
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        println!(
            "tcp alice -> {}: {}/{} lines echoed{how}",
            t.to, t.echoed, t.sent
        );
    }
    for p in &r.pings {
        println!(
            "ping {} -> {}: {}/{} replies",
            p.from, p.to, p.received, p.sent
        );
    }
}

fn down(a: DownArgs) -> anyhow::Result<u8> {
    let report = lab::down(&a.which.dir(), a.save.as_deref())?;
    if !report.was_up {
        println!("no lab in {}; nothing to remove", report.dir.display());
        return Ok(EXIT_OK);
    }
    println!("stopped: {}", report.stopped.join(", "));
    println!("namespaces deleted: {}", report.namespaces.join(", "));
    if let Some(to) = &a.save {
        println!("saved {} files to {}", report.saved.len(), to.display());
    }
    println!("removed {}", report.dir.display());
    Ok(EXIT_OK)
}

fn keys(args: KeysArgs) -> anyhow::Result<u8> {
    let mut logs = Vec::new();
    for path in &args.logs {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the charon log", path.display()))?;
        logs.push(keylog::parse(&label(path), &text));
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

/// A log's label in the tables' comments: its parent directory and name
/// (`alice/charon.log`), which tells the hosts' logs apart.
fn label(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    match (parent, name) {
        (Some(p), Some(n)) => format!("{p}/{n}"),
        (None, Some(n)) => n,
        _ => path.display().to_string(),
    }
}
