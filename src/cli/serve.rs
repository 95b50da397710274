//! `ipsecmon serve`: the capture engine headless, with Prometheus metrics and the JSON API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::export::{self, Metrics, MetricsConfig, ServerState};
use crate::runner::{Runner, RunnerConfig};

use super::{EngineArgs, LiveArgs};

/// Arguments of `ipsecmon serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Capture live from this interface.
    #[arg(short = 'i', long = "interface", conflicts_with = "read")]
    pub interface: Option<String>,

    /// Read this capture file (as fast as possible unless --speed is given), then keep
    /// serving its final state.
    #[arg(short = 'r', long = "read")]
    pub read: Option<PathBuf>,

    /// Address to listen on. The default is loopback only; `0.0.0.0:9795` is an explicit
    /// choice to expose the metrics.
    #[arg(long, env = "IPSECMON_LISTEN", default_value = export::DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// A file holding a bearer token that every request but /healthz must present.
    #[arg(long, env = "IPSECMON_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// Seconds between snapshots.
    #[arg(long, default_value_t = 1.0)]
    pub refresh: f64,

    /// Replay speed for -r (1 = recorded pace, 0 = as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    pub speed: f64,

    /// Most tunnels with their own metric labels; the rest are summed as tunnel="other".
    #[arg(long, default_value_t = 500)]
    pub max_tunnels: usize,

    /// Seconds without protected packets after which an established tunnel reads "idle".
    #[arg(long, default_value_t = 60.0)]
    pub idle_after: f64,

    /// Stop after this many seconds (scripts and tests); default: until SIGINT/SIGTERM.
    #[arg(long)]
    pub duration: Option<f64>,

    /// Engine options.
    #[command(flatten)]
    pub engine: EngineArgs,

    /// Live-capture options.
    #[command(flatten)]
    pub live: LiveArgs,
}

/// Reads the bearer token, warning when other users can read the file.
fn read_token(path: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(file = %path.display(), "token file is readable by other users: chmod 600 it");
    }
    let token = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let token = token.trim().to_string();
    anyhow::ensure!(
        !token.is_empty(),
        "{}: the token file is empty",
        path.display()
    );
    Ok(token)
}

/// Runs the command; returns the exit code.
pub fn run(args: ServeArgs) -> anyhow::Result<u8> {
    crate::runner::keep_freed_memory();
    let token = args.token_file.as_deref().map(read_token).transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(args.listen))
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let engine = args.engine.engine_config_on(args.interface.as_deref())?;
    let expected = engine
        .policy
        .as_deref()
        .map(super::expected_tunnels)
        .unwrap_or_default();
    let opened = super::open_source(
        args.read.as_deref(),
        args.interface.as_deref(),
        &args.live,
        args.speed,
    )?;
    let runner = Runner::start(
        opened.source,
        RunnerConfig {
            source_name: opened.name,
            refresh: Duration::from_secs_f64(args.refresh.max(0.05)),
            duration: None,
            wall_clock_ticks: opened.live,
            engine,
        },
    );
    let shared = runner.shared();
    let latest: export::Latest = Arc::new(move || shared.latest().snapshot);
    let metrics = Metrics::new(MetricsConfig {
        max_tunnels: args.max_tunnels,
        idle_after_s: args.idle_after,
        expected,
    });
    let state = ServerState::new(latest, metrics, token);
    let addr = listener.local_addr().unwrap_or(args.listen);
    tracing::info!(%addr, "serving /metrics and /api/v1");
    eprintln!("ipsecmon: serving http://{addr}/metrics");
    let duration = args.duration.map(Duration::from_secs_f64);
    runtime
        .block_on(export::serve(listener, state, shutdown(duration)))
        .context("HTTP server")?;
    runner.stop();
    let last = runner.join();
    if let crate::runner::Status::Failed(msg) = last.status {
        eprintln!("ipsecmon: {msg}");
        return Ok(super::EXIT_USAGE);
    }
    Ok(super::EXIT_OK)
}

/// Resolves on SIGINT, SIGTERM, or after `duration`.
async fn shutdown(duration: Option<Duration>) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let timer = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
        _ = timer => {}
    }
    tracing::info!("stopping");
}
