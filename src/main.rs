//! The `ipsecmon` binary: parse arguments, set up logging, dispatch. No logic here.

use std::process::ExitCode;

use clap::Parser;
use ipsecmon::cli::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
    let result = match cli.command {
        Some(Command::Decode(a)) => cli::decode::run(a),
        Some(Command::Report(a)) => cli::report::run(a),
        Some(Command::Diagnose(a)) => cli::diagnose::run(a),
        Some(Command::Serve(a)) => cli::serve::run(a),
        Some(Command::Correlate(a)) => cli::correlate::run(a),
        Some(Command::Policy(a)) => cli::policy::run(a),
        Some(Command::Enforce(a)) => cli::enforce::run(a),
        Some(Command::Lab(a)) => cli::lab::run(a),
        None => cli::view::run(cli.view),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::from(cli::EXIT_OK);
            }
            eprintln!("ipsecmon: {}", error_text(&e));
            ExitCode::from(cli::EXIT_USAGE)
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// A closed pipe (`ipsecmon decode f --json | head`) is a normal end, not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes on one line, leaving out a cause whose text the line already
/// holds (an I/O error wrapped with its file name would otherwise print twice).
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
