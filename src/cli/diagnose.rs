//! `ipsecmon diagnose FILE... | -i IFACE [--json]`: why SAs failed or hang.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::diagnose::{self, text};
use crate::engine::Engine;
use crate::runner::{Runner, RunnerConfig};

use super::{EngineArgs, LiveArgs, EXIT_FINDING, EXIT_OK, EXIT_USAGE};

/// Arguments of `ipsecmon diagnose`.
#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// Capture files, read in order.
    #[arg(required_unless_present = "interface", conflicts_with = "interface")]
    pub files: Vec<PathBuf>,

    /// Diagnose live traffic on this interface (until Ctrl-C or --duration).
    #[arg(short = 'i', long = "interface")]
    pub interface: Option<String>,

    /// Print the findings as one JSON document.
    #[arg(long)]
    pub json: bool,

    /// Live: stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,

    /// Engine options.
    #[command(flatten)]
    pub engine: EngineArgs,

    /// Live-capture options.
    #[command(flatten)]
    pub live: LiveArgs,
}

/// Runs the command: exit 1 when there is an error finding, 0 when healthy, and 2 when a
/// file was damaged (the findings from the frames before the damage are still printed).
pub fn run(args: DiagnoseArgs) -> anyhow::Result<u8> {
    let mut damaged = false;
    let findings = match &args.interface {
        Some(_) => live(&args)?,
        None => {
            let mut engine = Engine::new(args.engine.engine_config()?);
            damaged = !super::read_files(&args.files, &mut engine)?
                .damaged
                .is_empty();
            engine.finish();
            let mut snap = engine.snapshot("files", Default::default());
            let findings = std::mem::take(&mut snap.findings);
            // The process ends soon: freeing every SA and report row one by one takes
            // longer than the diagnosis on large captures, and the system reclaims it all.
            std::mem::forget(snap);
            std::mem::forget(engine);
            findings
        }
    };
    print(&findings, args.json)?;
    Ok(if damaged {
        EXIT_USAGE
    } else if diagnose::has_errors(&findings) {
        EXIT_FINDING
    } else {
        EXIT_OK
    })
}

fn live(args: &DiagnoseArgs) -> anyhow::Result<Vec<diagnose::Finding>> {
    let engine = args.engine.engine_config_on(args.interface.as_deref())?;
    let opened = super::open_source(None, args.interface.as_deref(), &args.live, 0.0)?;
    crate::runner::stop_on_signals();
    let runner = Runner::start(
        opened.source,
        RunnerConfig {
            source_name: opened.name,
            refresh: Duration::from_secs(1),
            duration: args.duration.map(Duration::from_secs_f64),
            wall_clock_ticks: true,
            engine,
        },
    );
    let mut seen = 0;
    loop {
        let p = runner.shared().wait_newer(seen, Duration::from_secs(1));
        seen = p.seq;
        if p.status.is_done() || crate::runner::signalled() {
            runner.stop();
            break;
        }
    }
    let last = runner.join();
    if let crate::runner::Status::Failed(msg) = &last.status {
        anyhow::bail!("{msg}");
    }
    Ok(last.snapshot.findings.clone())
}

fn print(findings: &[diagnose::Finding], json: bool) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if json {
        serde_json::to_writer_pretty(&mut out, &text::Document::new(findings))?;
        writeln!(out)?;
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let style = if colour {
            text::Style::Ansi
        } else {
            text::Style::Plain
        };
        out.write_all(text::render(findings, style).as_bytes())?;
    }
    out.flush()?;
    Ok(())
}
