//! `ipsecmon report FILE... [--json]`: read captures through the engine and print every
//! SA and the statistics block, as one JSON document (DESIGN.md's `report --json`
//! contract) or as readable tables.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::capture::{self, Frame, FrameSource};
use crate::cli::{EngineArgs, EXIT_OK, EXIT_USAGE};
use crate::engine::Engine;
use crate::track::report::{DecryptionReport, EspSaReport, IkeSaReport, Report, Stats};

/// Arguments of `ipsecmon report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Capture files (pcap, pcapng, or a gzip of either), read in order as one capture;
    /// frames of later files are numbered on from the earlier ones.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,

    /// Print the report as one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,

    /// Engine options.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Runs the command; returns the exit code. A file that cannot be read ends the input
/// there: what was read before it is still reported, and the exit code is 2.
pub fn run(args: ReportArgs) -> anyhow::Result<u8> {
    let mut engine = Engine::new(args.engine.engine_config()?);
    let read = read_all(&mut engine, &args.files);
    engine.finish();
    let report = engine.report();
    let stdout = io::stdout();
    // Buffered: stdout is line-buffered, and a pretty report has a line per field.
    let mut out = io::BufWriter::new(stdout.lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report).map_err(io::Error::from)?;
        out.write_all(b"\n")?;
    } else {
        out.write_all(render(&report).as_bytes())?;
    }
    out.flush()?;
    // The process ends next: freeing every SA and report row one by one would take up to
    // a second on large captures, and the operating system reclaims it all at once.
    std::mem::forget(report);
    std::mem::forget(engine);
    match read {
        Ok(()) => Ok(EXIT_OK),
        Err(e) => {
            eprintln!("ipsecmon: {e:#}");
            Ok(EXIT_USAGE)
        }
    }
}

/// Feeds every frame of every file to the engine, numbering frames on across files.
fn read_all(engine: &mut Engine, files: &[PathBuf]) -> anyhow::Result<()> {
    let mut offset = 0u64;
    for path in files {
        let mut source = capture::open_file(path)
            .with_context(|| "cannot report: give readable pcap or pcapng files")?;
        let mut last = 0;
        while let Some(frame) = source
            .next_frame()
            .with_context(|| "the frames before this point are reported")?
        {
            last = frame.number;
            let numbered = Frame {
                number: frame.number + offset,
                ..frame
            };
            engine.process(&numbered);
        }
        offset += last;
    }
    Ok(())
}

/// The report as readable tables.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let t0 = start_time(r);
    let _ = writeln!(s, "IKE SAs: {}", r.ike_sas.len());
    for sa in &r.ike_sas {
        ike_row(&mut s, sa, t0);
    }
    for (name, rows) in [("ESP SAs", &r.esp_sas), ("AH SAs", &r.ah_sas)] {
        if name == "AH SAs" && rows.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\n{name}: {}", rows.len());
        if !rows.is_empty() {
            let _ = writeln!(
                s,
                "  {:<8}  {:<44} {:>5} {:>9} {:>11} {:>6} {:>6} {:>6}  IKE SA",
                "SPI", "SRC -> DST", "ENCAP", "PACKETS", "BYTES", "LOST", "REPLAY", "REORD"
            );
        }
        for e in rows.iter() {
            esp_row(&mut s, e);
        }
    }
    let _ = writeln!(s, "\nStatistics");
    stats_rows(&mut s, &r.stats);
    let _ = writeln!(
        s,
        "\n{} frames, {} undecodable; evicted: {} IKE SAs, {} ESP/AH SAs",
        r.frames, r.decode_errors, r.evictions.ike_sas, r.evictions.esp_sas
    );
    s
}

fn start_time(r: &Report) -> f64 {
    let ike = r.ike_sas.iter().map(|sa| sa.started);
    let esp = r.esp_sas.iter().chain(&r.ah_sas).map(|e| e.first_seen);
    ike.chain(esp).fold(f64::INFINITY, f64::min)
}

fn ike_row(s: &mut String, sa: &IkeSaReport, t0: f64) {
    let up = sa
        .established_after_s
        .map_or("-".to_string(), |t| format!("{t:.3} s"));
    let failure = sa.failure.as_ref().map_or(String::new(), |f| {
        let notify = f
            .notify_type
            .map(|n| format!(" notify {n}"))
            .unwrap_or_default();
        format!("  failure {} (frame {}{notify})", f.code, f.frame)
    });
    let _ = writeln!(
        s,
        "  v{} {} {:<11} {} -> {}  started +{:.3} s  up after {up}  retransmissions {}{failure}",
        sa.version,
        sa.spi_i,
        sa.state.as_str(),
        sa.initiator,
        sa.responder,
        sa.started - t0,
        sa.retransmissions
    );
    if let Some(from) = &sa.rekeyed_from {
        let _ = writeln!(s, "      rekey of {from}");
    }
    if let Some(d) = &sa.decryption {
        let _ = writeln!(s, "      decryption {}", decryption(d, "messages"));
    }
    for c in &sa.child_sas {
        let spi = |x: &Option<String>| x.clone().unwrap_or_else(|| "?".to_string());
        let rekey = c
            .rekeyed_from
            .as_ref()
            .map(|r| format!(", rekey of {r}"))
            .unwrap_or_default();
        let deleted = if c.deleted { ", deleted" } else { "" };
        let _ = writeln!(
            s,
            "      child {} in {} out {} ({}{rekey}{deleted})",
            c.protocol,
            spi(&c.spi_in),
            spi(&c.spi_out),
            c.source
        );
    }
}

fn esp_row(s: &mut String, e: &EspSaReport) {
    let path = format!("{} -> {}", e.src, e.dst);
    let ike = match (&e.ike_sa, &e.ike_sa_link) {
        (Some(sa), Some(link)) => format!("{sa} ({link})"),
        _ => "-".to_string(),
    };
    let _ = writeln!(
        s,
        "  {:<8}  {:<44} {:>5} {:>9} {:>11} {:>6} {:>6} {:>6}  {ike}",
        e.spi, path, e.encap, e.packets, e.bytes, e.lost, e.replayed, e.reordered
    );
    if let Some(d) = &e.decryption {
        let _ = writeln!(s, "            decryption {}", decryption(d, "packets"));
    }
}

/// `partial: 2 messages decrypted (2 verified), 0 not decrypted, 2 not authenticated;
/// first failure frame 3 (icv-mismatch)`.
fn decryption(d: &DecryptionReport, unit: &str) -> String {
    let mut out = format!(
        "{}: {} {unit} decrypted ({} verified), {} not decrypted, {} not authenticated",
        d.status, d.decrypted, d.verified, d.not_decrypted, d.not_authenticated
    );
    if let Some(f) = &d.first_failure {
        let _ = write!(out, "; first failure frame {} ({})", f.frame, f.reason);
    }
    out
}

fn stats_rows(s: &mut String, st: &Stats) {
    let rows = [
        ("Active Associations", st.active_associations),
        ("Confidential Bytes Sent", st.confidential_bytes_sent),
        (
            "Confidential Bytes Received",
            st.confidential_bytes_received,
        ),
        ("Authenticated Bytes Sent", st.authenticated_bytes_sent),
        (
            "Authenticated Bytes Received",
            st.authenticated_bytes_received,
        ),
        ("Bad SPI Packets", st.bad_spi_packets),
        ("Packets Not Decrypted", st.packets_not_decrypted),
        ("Packets Not Authenticated", st.packets_not_authenticated),
        ("Key Additions", st.key_additions),
        ("Key Deletions", st.key_deletions),
        ("Rekeys", st.rekeys),
        ("Pending Key Operations", st.pending_key_operations),
        ("Main Modes", st.main_modes),
        ("Quick Modes", st.quick_modes),
        ("Soft Associations", st.soft_associations),
        ("Authentication Failures", st.authentication_failures),
    ];
    for (name, value) in rows {
        let _ = writeln!(s, "  {name:<30} {value}");
    }
}
