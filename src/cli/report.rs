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
use crate::track::report::{DecryptionReport, Stats};
use crate::track::{ChildSaRow, EspSaRow, IkeSaRow, Rows};

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
    let stdout = io::stdout();
    // Buffered: stdout is line-buffered, and a pretty report has a line per field. Both
    // forms are written row by row as they are made, never held whole.
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    if args.json {
        engine
            .write_report_json(&mut out)
            .map_err(io::Error::from)?;
        out.write_all(b"\n")?;
    } else {
        render(&engine.rows(), &mut out)?;
    }
    out.flush()?;
    // The process ends next: freeing every SA one by one would take up to a second on
    // large captures, and the operating system reclaims it all at once.
    std::mem::forget(engine);
    match read {
        Ok(()) => Ok(EXIT_OK),
        Err(e) => {
            eprintln!("ipsecmon: {e:#}");
            Ok(EXIT_USAGE)
        }
    }
}

/// How many frames after the next one a frame's table lookup starts: its index line is
/// asked for then, and the entry that line points to [`ENTRY_LAG`] frames later. With
/// many tunnels both are cache misses of about the time a frame takes; measured
/// (BENCHMARKS.md), three and two frames hide more of them than one and one.
const INDEX_AHEAD: usize = 3;
/// See [`INDEX_AHEAD`].
const ENTRY_LAG: usize = 2;

/// Feeds every frame of every file to the engine, numbering frames on across files.
fn read_all(engine: &mut Engine, files: &[PathBuf]) -> anyhow::Result<()> {
    let mut offset = 0u64;
    for path in files {
        let mut source = capture::open_file(path)
            .with_context(|| "cannot report: give readable pcap or pcapng files")?;
        let mut last = 0;
        // Lookups started for the frames ahead, whose entries are loaded in their turn.
        let mut pending = [None; ENTRY_LAG];
        loop {
            // Matched here rather than through `with_context`, which would move every
            // frame through an `anyhow` result.
            let frame = match source.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    return Err(
                        anyhow::Error::new(e).context("the frames before this point are reported")
                    )
                }
            };
            last = frame.number;
            let numbered = Frame {
                number: frame.number + offset,
                ..frame
            };
            engine.process(&numbered);
            // The lookups of the frames ahead start now, to overlap this loop's work.
            if engine.prefetch_worthwhile() {
                let turn = &mut pending[frame.number as usize % ENTRY_LAG];
                if let Some(p) = turn.take() {
                    engine.prefetch_entry(p);
                }
                *turn = source
                    .peek(INDEX_AHEAD)
                    .and_then(|(link, data)| engine.prefetch_index(link, data));
            }
        }
        offset += last;
    }
    Ok(())
}

/// The report as readable tables, written row by row.
pub fn render(rows: &Rows<'_>, out: &mut impl Write) -> io::Result<()> {
    let t0 = rows.start_time();
    writeln!(out, "IKE SAs: {}", rows.ike_count())?;
    for sa in rows.ike_rows() {
        ike_row(out, &sa, t0)?;
    }
    let mut path = String::new();
    for (name, ah) in [("ESP SAs", false), ("AH SAs", true)] {
        let count = rows.esp_count(ah);
        if ah && count == 0 {
            continue;
        }
        writeln!(out, "\n{name}: {count}")?;
        if count > 0 {
            writeln!(
                out,
                "  {:<8}  {:<44} {:>5} {:>9} {:>11} {:>6} {:>6} {:>6}  IKE SA",
                "SPI", "SRC -> DST", "ENCAP", "PACKETS", "BYTES", "LOST", "REPLAY", "REORD"
            )?;
        }
        for e in rows.esp_rows(ah) {
            esp_row(out, &e, &mut path)?;
        }
    }
    writeln!(out, "\nStatistics")?;
    stats_rows(out, &rows.stats())?;
    let ev = rows.evictions();
    writeln!(
        out,
        "\n{} frames, {} undecodable; evicted: {} IKE SAs, {} ESP/AH SAs",
        rows.frames(),
        rows.decode_errors(),
        ev.ike_sas,
        ev.esp_sas
    )
}

fn ike_row(out: &mut impl Write, sa: &IkeSaRow<'_>, t0: f64) -> io::Result<()> {
    write!(
        out,
        "  v{} {:016x} {:<11} {} -> {}  started +{:.3} s  up after ",
        sa.version(),
        sa.spi_i(),
        sa.state().as_str(),
        sa.initiator(),
        sa.responder(),
        sa.started() - t0,
    )?;
    match sa.established_after_s() {
        Some(t) => write!(out, "{t:.3} s")?,
        None => write!(out, "-")?,
    }
    write!(out, "  retransmissions {}", sa.retransmissions())?;
    if let Some(f) = sa.failure() {
        write!(out, "  failure {} (frame {}", f.code, f.frame)?;
        if let Some(n) = f.notify_type {
            write!(out, " notify {n}")?;
        }
        write!(out, ")")?;
    }
    writeln!(out)?;
    if let Some(from) = sa.rekeyed_from() {
        writeln!(out, "      rekey of {from:016x}")?;
    }
    if let Some(d) = sa.decryption() {
        writeln!(out, "      decryption {}", decryption(&d, "messages"))?;
    }
    for c in sa.children() {
        child_row(out, &c)?;
    }
    Ok(())
}

fn child_row(out: &mut impl Write, c: &ChildSaRow) -> io::Result<()> {
    write!(out, "      child {} in ", c.protocol)?;
    spi_or_unknown(out, c.spi_in)?;
    write!(out, " out ")?;
    spi_or_unknown(out, c.spi_out)?;
    write!(out, " ({}", c.source)?;
    if let Some(r) = c.rekeyed_from {
        write!(out, ", rekey of {r:08x}")?;
    }
    if c.deleted {
        write!(out, ", deleted")?;
    }
    writeln!(out, ")")
}

fn spi_or_unknown(out: &mut impl Write, spi: Option<u32>) -> io::Result<()> {
    match spi {
        Some(s) => write!(out, "{s:08x}"),
        None => write!(out, "?"),
    }
}

/// One ESP/AH row; `path` is scratch space for the padded `SRC -> DST` column.
fn esp_row(out: &mut impl Write, e: &EspSaRow<'_>, path: &mut String) -> io::Result<()> {
    path.clear();
    let _ = write!(path, "{} -> {}", e.src(), e.dst());
    write!(
        out,
        "  {:08x}  {:<44} {:>5} {:>9} {:>11} {:>6} {:>6} {:>6}  ",
        e.spi(),
        path,
        e.encap(),
        e.packets(),
        e.bytes(),
        e.lost(),
        e.replayed(),
        e.reordered()
    )?;
    match e.ike_sa() {
        Some((spi, Some(link))) => writeln!(out, "{spi:016x} ({link})")?,
        _ => writeln!(out, "-")?,
    }
    if let Some(d) = e.decryption() {
        writeln!(out, "            decryption {}", decryption(d, "packets"))?;
    }
    Ok(())
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

fn stats_rows(out: &mut impl Write, st: &Stats) -> io::Result<()> {
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
        writeln!(out, "  {name:<30} {value}")?;
    }
    Ok(())
}
