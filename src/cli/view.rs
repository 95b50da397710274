//! The live view: `ipsecmon [--refresh SECS] [-i IFACE | -r FILE] [--once] [--json]`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::Args;

use crate::capture::{self, FrameSource, SourceSpec};
use crate::engine::EngineConfig;
use crate::runner::{self, Runner, RunnerConfig, Status};
use crate::view::model::RowOptions;
use crate::view::style::Theme;
use crate::view::tui::ViewState;
use crate::view::{self, text};

use super::{EngineArgs, LiveArgs, EXIT_OK, EXIT_USAGE};

/// The capture shown when neither `-i` nor `-r` is given: recorded from the lab pair and
/// committed with the sources, found through the path of the source tree at build time.
pub const DEMO_CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/demo/demo.pcap");

/// Options of the live view.
#[derive(Debug, Clone, Args, Default)]
#[command(after_help = concat!(
    "Without -i or -r the view replays the bundled demo capture (",
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/demo/demo.pcap, recorded from the lab pair) at its recorded pace.\n\n",
    "Keys: q quit, ? help, space pause, s/S or 1-9 sort, r reverse, / filter, a ended SAs, \
     arrows and Enter for an SA's detail pane (PgUp/PgDn scroll it)."
))]
pub struct ViewArgs {
    /// Seconds between redraws (IPSecMon's refresh interval).
    #[arg(long, default_value_t = 1.0)]
    pub refresh: f64,

    /// Capture live from this interface.
    #[arg(short = 'i', long = "interface", conflicts_with = "read")]
    pub interface: Option<String>,

    /// Replay this capture file at its recorded pace.
    #[arg(short = 'r', long = "read")]
    pub read: Option<PathBuf>,

    /// Print the view once as plain text and exit: after reading the whole file, or after
    /// one refresh interval (or --duration) of live capture.
    #[arg(long)]
    pub once: bool,

    /// Print the snapshot at each refresh as JSON Lines (`schema: 1` on each line).
    #[arg(long, conflicts_with = "once")]
    pub json: bool,

    /// Replay speed for -r: 1 is the recorded pace, 10 ten times faster, 0 as fast as
    /// possible. Default: 1 in the full-screen view, 0 with --once and --json.
    #[arg(long)]
    pub speed: Option<f64>,

    /// Stop after this many seconds (live capture in scripts and tests).
    #[arg(long)]
    pub duration: Option<f64>,

    /// Show ended SAs too (replaced by a rekey, deleted, expired); the `a` key in the view.
    #[arg(long)]
    pub all: bool,

    /// Live capture options.
    #[command(flatten)]
    pub live: LiveArgs,

    /// Engine options.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Runs the view; returns the exit code.
pub fn run(args: ViewArgs) -> anyhow::Result<u8> {
    crate::runner::keep_freed_memory();
    check(&args)?;
    let interactive = !args.once && !args.json;
    if interactive && !std::io::stdout().is_terminal() {
        bail!("standard output is not a terminal: use --once for text or --json for JSON Lines");
    }
    let spec = source_spec(&args)?;
    let engine = args.engine.engine_config_on(args.interface.as_deref())?;
    let rows = row_options(&args, &engine);
    let (source, live) = open(&spec, &args)?;
    if let Some(user) = &args.live.user {
        capture::drop_privileges(user).with_context(|| format!("dropping privileges to {user}"))?;
    }
    runner::stop_on_signals();
    let config = runner_config(&args, &spec, live, engine);
    let runner = Runner::start(source, config);
    if args.once {
        return once(runner, rows);
    }
    if args.json {
        let shared = runner.shared();
        view::run_json(&shared, &mut std::io::stdout().lock())?;
        return finish(runner.join().status);
    }
    let state = ViewState::new(rows, Theme::from_env(), args.refresh);
    let result = view::run_terminal(&runner.shared(), state);
    runner.stop();
    result?;
    Ok(EXIT_OK)
}

fn check(args: &ViewArgs) -> anyhow::Result<()> {
    if !(args.refresh.is_finite() && args.refresh > 0.0) {
        bail!(
            "--refresh {}: give a number of seconds above 0",
            args.refresh
        );
    }
    if args.speed.is_some_and(|s| !(s.is_finite() && s >= 0.0)) {
        bail!("--speed: give 0 (as fast as possible) or a positive factor");
    }
    if args.duration.is_some_and(|d| !(d.is_finite() && d > 0.0)) {
        bail!("--duration: give a number of seconds above 0");
    }
    Ok(())
}

fn source_spec(args: &ViewArgs) -> anyhow::Result<SourceSpec> {
    if let Some(iface) = &args.interface {
        return Ok(SourceSpec::Live(iface.clone()));
    }
    if let Some(path) = &args.read {
        return Ok(SourceSpec::File(path.clone()));
    }
    let demo = PathBuf::from(DEMO_CAPTURE);
    if !demo.exists() {
        bail!(
            "the bundled demo capture {} is missing (the view shows it when neither -i nor -r \
             is given): pass -r FILE or -i IFACE",
            demo.display()
        );
    }
    Ok(SourceSpec::File(demo))
}

/// Opens the source; `true` when it is a live interface.
fn open(spec: &SourceSpec, args: &ViewArgs) -> anyhow::Result<(Box<dyn FrameSource + Send>, bool)> {
    let speed = args
        .speed
        .unwrap_or(if args.once || args.json { 0.0 } else { 1.0 });
    // The error names the file or interface, the cause and the fix; its chain would repeat
    // the cause.
    let opened = runner::open(
        spec,
        args.live.filter.as_deref(),
        &args.live.options(),
        speed,
    )
    .map_err(|e| anyhow!("{e}"))?;
    Ok((opened.source, opened.live))
}

fn runner_config(
    args: &ViewArgs,
    spec: &SourceSpec,
    live: bool,
    engine: EngineConfig,
) -> RunnerConfig {
    let refresh = Duration::from_secs_f64(args.refresh);
    let mut duration = args.duration.map(Duration::from_secs_f64);
    if live && args.once && duration.is_none() {
        duration = Some(refresh);
    }
    RunnerConfig {
        source_name: spec.to_string(),
        refresh,
        duration,
        wall_clock_ticks: live,
        engine,
    }
}

/// Rows are shown from the side of the engine's local host: `--local`, else the address
/// of the interface captured on.
fn row_options(args: &ViewArgs, engine: &EngineConfig) -> RowOptions {
    RowOptions {
        local: engine.tracker.local,
        all: args.all,
    }
}

fn once(runner: Runner, rows: RowOptions) -> anyhow::Result<u8> {
    let last = runner.join();
    print!("{}", text::render(&last.snapshot, rows));
    finish(last.status)
}

fn finish(status: Status) -> anyhow::Result<u8> {
    match status {
        Status::Failed(e) => {
            eprintln!("ipsecmon: {e}");
            Ok(EXIT_USAGE)
        }
        _ => Ok(EXIT_OK),
    }
}
