//! The command line: argument definitions and the wiring of each command. No logic of its
//! own lives here; each command's file resolves its flags and calls the library.

pub mod correlate;
pub mod decode;
pub mod diagnose;
pub mod enforce;
pub mod lab;
pub mod policy;
pub mod report;
pub mod serve;
pub mod view;

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: a finding or failure the user asked about.
pub const EXIT_FINDING: u8 = 1;
/// Exit code: bad usage or unreadable input.
pub const EXIT_USAGE: u8 = 2;

/// Watch IPsec from the wire: decode IKE, ESP and AH, follow every security association,
/// find NAT on the path, and explain why a tunnel will not come up.
#[derive(Debug, Parser)]
#[command(name = "ipsecmon", version)]
pub struct Cli {
    /// Log level for diagnostics on stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, env = "IPSECMON_LOG", default_value = "warn")]
    pub log: String,

    /// A subcommand; without one, the live view runs.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Options of the live view (when no subcommand is given).
    #[command(flatten)]
    pub view: view::ViewArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode every IPsec-related frame of a capture (JSON Lines with --json).
    Decode(decode::DecodeArgs),
    /// Read captures and report every SA and the statistics.
    Report(report::ReportArgs),
    /// Explain SAs that failed or hang.
    Diagnose(diagnose::DiagnoseArgs),
    /// Serve Prometheus metrics and the JSON API.
    Serve(serve::ServeArgs),
    /// Match the same traffic captured at two points: NAT, loss and delay.
    Correlate(correlate::CorrelateArgs),
    /// The policy engine: check, show, explain, diff.
    Policy(policy::PolicyArgs),
    /// Render and apply a policy to a real IKE daemon and packet filter.
    Enforce(enforce::EnforceArgs),
    /// The enforcing lab pair: up, status, traffic, down; its scenarios; key tables from
    /// charon's logs.
    Lab(lab::LabArgs),
}

/// Options shared by every command that runs the capture engine.
#[derive(Debug, Clone, Args, Default)]
pub struct EngineArgs {
    /// Key tables (a file or a directory) in Wireshark's or tcpdump's formats, to decrypt
    /// IKE and ESP.
    #[arg(long, env = "IPSECMON_KEYS")]
    pub keys: Option<PathBuf>,

    /// Policy file (TOML) or `builtin:NAME`: label SAs with their rules.
    #[arg(long, env = "IPSECMON_POLICY")]
    pub policy: Option<String>,

    /// The local host's address: "sent" and "received" are counted, and SAs shown, from
    /// its side. Default: on a live interface its own address (IPv4 first), else the
    /// initiator's side.
    #[arg(long)]
    pub local: Option<IpAddr>,

    /// Seconds of packet time after which a half-finished negotiation counts as stalled.
    #[arg(long, default_value_t = 10.0)]
    pub stall_after: f64,

    /// Most IKE SAs tracked at once.
    #[arg(long, default_value_t = 100_000)]
    pub max_ike_sas: usize,

    /// Most ESP/AH SAs tracked at once.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_esp_sas: usize,
}

/// Options of live capture.
#[derive(Debug, Clone, Args, Default)]
pub struct LiveArgs {
    /// BPF filter for live capture (default: IKE, NAT-T, ESP, AH, ICMP, fragments).
    #[arg(long)]
    pub filter: Option<String>,

    /// After opening the interface, drop privileges to this user.
    #[arg(long, env = "IPSECMON_USER")]
    pub user: Option<String>,

    /// Kernel capture buffer, in MiB: what absorbs the traffic while a snapshot of the
    /// SAs is built (the default holds half a second of 2 Gbit/s).
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_BUFFER_MIB,
          value_parser = clap::value_parser!(u32).range(1..=2047))]
    pub buffer_mib: u32,
}

/// Default of `--buffer-mib` ([`crate::capture::DEFAULT_BUFFER`]).
pub const DEFAULT_BUFFER_MIB: u32 = (crate::capture::DEFAULT_BUFFER >> 20) as u32;

impl LiveArgs {
    /// The libpcap settings these flags ask for.
    pub fn options(&self) -> crate::capture::LiveOptions {
        crate::capture::LiveOptions {
            buffer_size: Some((self.buffer_mib.min(2047) << 20) as i32),
            ..crate::capture::LiveOptions::default()
        }
    }
}

impl EngineArgs {
    /// The engine settings these flags ask for, with the policy (`--policy`, with
    /// `--local` standing for `me` when given) and the key table (`--keys`) loaded. Call
    /// it before dropping privileges: key files are usually readable by root only.
    /// Errors name the flag and what is wrong.
    pub fn engine_config(&self) -> anyhow::Result<crate::engine::EngineConfig> {
        anyhow::ensure!(
            self.stall_after.is_finite() && self.stall_after > 0.0,
            "--stall-after {}: give a positive number of seconds",
            self.stall_after
        );
        let mut config = crate::engine::EngineConfig::default();
        config.tracker.max_ike_sas = self.max_ike_sas;
        config.tracker.max_esp_sas = self.max_esp_sas;
        config.tracker.stall_after_ns = (self.stall_after * 1e9) as i64;
        config.tracker.local = self.local;
        config.diagnose.stall_after_s = self.stall_after;
        config.policy = self.load_policy()?.map(std::sync::Arc::new);
        config.keys = self.load_keys()?;
        Ok(config)
    }

    /// Loads `--keys`, when given. The error names the file and line, never a key.
    pub fn load_keys(&self) -> anyhow::Result<Option<std::sync::Arc<crate::keys::KeyTable>>> {
        let Some(path) = &self.keys else {
            return Ok(None);
        };
        let table =
            crate::keys::KeyTable::load(path).map_err(|e| anyhow::anyhow!("--keys: {e}"))?;
        let (ikev1, ikev2, esp) = table.counts();
        tracing::info!(path = %path.display(), ikev1, ikev2, esp, "key table loaded");
        Ok(Some(std::sync::Arc::new(table)))
    }

    /// [`EngineArgs::engine_config`] for a capture on `interface`: without `--local`, the
    /// interface's own address (IPv4 first) is the local host, so "sent" and "received"
    /// are counted from its side (DESIGN.md, statistics).
    pub fn engine_config_on(
        &self,
        interface: Option<&str>,
    ) -> anyhow::Result<crate::engine::EngineConfig> {
        let mut config = self.engine_config()?;
        if let (None, Some(iface)) = (config.tracker.local, interface) {
            config.tracker.local = crate::capture::interface_addresses(iface).first().copied();
            tracing::info!(interface = iface, local = ?config.tracker.local, "local host");
        }
        Ok(config)
    }

    /// Loads `--policy`, when given; its warnings go to the log.
    pub fn load_policy(&self) -> anyhow::Result<Option<crate::policy::Policy>> {
        let Some(spec) = &self.policy else {
            return Ok(None);
        };
        let resolver = crate::policy::SystemResolver;
        let me: Vec<IpAddr> = self.local.into_iter().collect();
        let opts = crate::policy::LoadOptions {
            resolver: &resolver,
            me: (!me.is_empty()).then_some(me.as_slice()),
        };
        let policy = crate::policy::Policy::load_with(spec, opts)
            .map_err(|e| anyhow::anyhow!("--policy {spec}: {e}"))?;
        for w in &policy.warnings {
            tracing::warn!(policy = %spec, "{w}");
        }
        tracing::info!(policy = %policy.name, rules = policy.rules.len(), "policy loaded");
        Ok(Some(policy))
    }
}

/// The tunnels a policy expects, as the metrics name them: (`a<->b`, rule name), from each
/// negotiate rule's peers and the policy's own addresses.
pub fn expected_tunnels(policy: &crate::policy::Policy) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in policy.tunnels_expected() {
        for peer in t.peers() {
            for me in &policy.me.addresses {
                let (key, _, _) = crate::export::tunnels::key_of(&me.to_string(), &peer);
                out.push((key, t.rule.name.clone()));
            }
        }
    }
    out
}

/// An opened source and what to call it.
pub struct OpenedSource {
    /// The frames.
    pub source: Box<dyn crate::capture::FrameSource + Send>,
    /// `file.pcap` or `interface eth0`.
    pub name: String,
    /// `true` for a live interface.
    pub live: bool,
}

/// Opens `-r FILE` (paced at `speed` times its recorded rate; 0 = as fast as possible) or
/// `-i IFACE` (then drops privileges to `--user`, in that order).
pub fn open_source(
    read: Option<&std::path::Path>,
    interface: Option<&str>,
    live: &LiveArgs,
    speed: f64,
) -> anyhow::Result<OpenedSource> {
    use crate::capture::{self, Paced};
    use anyhow::Context;
    if let Some(iface) = interface {
        let source = capture::open_live(iface, live.filter.as_deref(), &live.options())?;
        if let Some(user) = &live.user {
            capture::drop_privileges(user)
                .with_context(|| format!("dropping privileges to {user}"))?;
        }
        tracing::info!(interface = iface, "capturing live");
        return Ok(OpenedSource {
            source: Box::new(source),
            name: format!("interface {iface}"),
            live: true,
        });
    }
    let path = read.context("give a capture file with -r FILE or an interface with -i IFACE")?;
    let file = capture::open_file(path)?;
    let tick = std::time::Duration::from_millis(100);
    tracing::info!(file = %path.display(), speed, "reading capture file");
    Ok(OpenedSource {
        source: Box::new(Paced::new(file, speed, tick)),
        name: path.display().to_string(),
        live: false,
    })
}

/// Feeds every frame of `paths`, in order, to `engine`. Frame numbers continue from one
/// file to the next. A damaged record ends that file with a warning naming the file and
/// frame (what was read before it still counts); a file that cannot be opened is an error.
/// Shows a progress bar on stderr for large inputs when stderr is a terminal.
pub fn read_files(
    paths: &[std::path::PathBuf],
    engine: &mut crate::engine::Engine,
) -> anyhow::Result<ReadSummary> {
    use crate::capture::FrameSource;
    let mut summary = ReadSummary::default();
    for path in paths {
        let mut source = crate::capture::open_file(path)?;
        let bar = progress_bar(&source);
        let offset = summary.frames;
        loop {
            match source.next_frame() {
                Ok(Some(frame)) => {
                    let renumbered = crate::capture::Frame {
                        number: frame.number + offset,
                        ..frame
                    };
                    engine.process(&renumbered);
                    summary.frames = renumbered.number;
                    if let Some(bar) = &bar {
                        if renumbered.number % 65_536 == 0 {
                            bar.set_position(source.progress().map_or(0, |p| p.0));
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("ipsecmon: warning: {e}; reporting what was read before it");
                    summary.damaged.push(e.to_string());
                    break;
                }
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    }
    Ok(summary)
}

/// What [`read_files`] read.
#[derive(Debug, Default)]
pub struct ReadSummary {
    /// Frames read, all files together.
    pub frames: u64,
    /// One message per file that ended in a damaged record.
    pub damaged: Vec<String>,
}

/// A progress bar for files over 64 MiB, only when stderr is a terminal.
fn progress_bar(source: &crate::capture::FileSource) -> Option<indicatif::ProgressBar> {
    use crate::capture::FrameSource;
    use std::io::IsTerminal;
    let (_, total) = source.progress()?;
    if total < 64 << 20 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} {bytes}/{total_bytes} {bytes_per_sec} {wide_bar} {eta}",
    )
    .ok()?;
    bar.set_style(style);
    Some(bar)
}
