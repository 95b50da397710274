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
use crate::track::{ChildSaRow, Endpoint, EspSaRow, IkeSaRow, Rows};

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
    let mut line = Line::default();
    for sa in rows.ike_rows() {
        ike_row(&mut line, &sa, t0);
        line.flush(out)?;
    }
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
            esp_row(&mut line, &e);
            line.flush(out)?;
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

/// The text of one row, made in one buffer. Integers, SPIs, endpoints and padding are
/// written by hand: through the formatting machinery they were a tenth of a report of
/// 100,000 tunnels (their text the same as `{:016x}`, `{:>9}` or `{:<44}` makes it).
#[derive(Default)]
struct Line {
    buf: Vec<u8>,
}

impl Line {
    fn text(&mut self, s: &str) -> &mut Line {
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    /// `s` followed by spaces up to `width` bytes (the text here is ASCII).
    fn left(&mut self, s: &str, width: usize) -> &mut Line {
        self.text(s);
        self.pad(s.len(), width)
    }

    /// `v` in lower-case hex, zero-padded to `digits`.
    fn hex(&mut self, v: u64, digits: u32) -> &mut Line {
        for i in (0..digits).rev() {
            let nibble = (v >> (4 * i)) & 0xf;
            self.buf.push(b"0123456789abcdef"[nibble as usize]);
        }
        self
    }

    /// Spaces up to `width` bytes, then `s`.
    fn right_text(&mut self, s: &str, width: usize) -> &mut Line {
        self.pad(s.len(), width).text(s)
    }

    /// `v` in decimal, after spaces up to `width` bytes.
    fn right(&mut self, v: u64, width: usize) -> &mut Line {
        let mut digits = [0u8; 20];
        let text = decimal(&mut digits, v);
        self.pad(text.len(), width);
        self.buf.extend_from_slice(text);
        self
    }

    fn dec(&mut self, v: u64) -> &mut Line {
        self.right(v, 0)
    }

    fn endpoint(&mut self, e: Endpoint) -> &mut Line {
        e.write_to(&mut self.buf);
        self
    }

    /// Spaces from `len` up to `width`.
    fn pad(&mut self, len: usize, width: usize) -> &mut Line {
        let n = width.saturating_sub(len);
        self.buf.resize(self.buf.len() + n, b' ');
        self
    }

    /// Anything else, through the formatting machinery (rare fields and floats).
    fn fmt(&mut self, args: std::fmt::Arguments<'_>) -> &mut Line {
        // Writing into a `Vec` cannot fail.
        let _ = self.buf.write_fmt(args);
        self
    }

    /// Writes the line out and empties it for the next.
    fn flush(&mut self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

/// `v` in decimal at the end of `buf`.
fn decimal(buf: &mut [u8; 20], mut v: u64) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[at..];
        }
    }
}

fn ike_row(line: &mut Line, sa: &IkeSaRow<'_>, t0: f64) {
    line.text("  v").dec(u64::from(sa.version())).text(" ");
    line.hex(sa.spi_i(), 16)
        .text(" ")
        .left(sa.state().as_str(), 11);
    line.text(" ").endpoint(sa.initiator()).text(" -> ");
    line.endpoint(sa.responder()).text("  started +");
    line.fmt(format_args!("{:.3}", sa.started() - t0));
    line.text(" s  up after ");
    match sa.established_after_s() {
        Some(t) => line.fmt(format_args!("{t:.3} s")),
        None => line.text("-"),
    };
    line.text("  retransmissions ")
        .dec(u64::from(sa.retransmissions()));
    if let Some(f) = sa.failure() {
        line.fmt(format_args!("  failure {} (frame {}", f.code, f.frame));
        if let Some(n) = f.notify_type {
            line.fmt(format_args!(" notify {n}"));
        }
        line.text(")");
    }
    line.text("\n");
    if let Some(from) = sa.rekeyed_from() {
        line.text("      rekey of ").hex(from, 16).text("\n");
    }
    if let Some(d) = sa.decryption() {
        let text = decryption(&d, "messages");
        line.text("      decryption ").text(&text).text("\n");
    }
    for c in sa.children() {
        child_row(line, &c);
    }
}

fn child_row(line: &mut Line, c: &ChildSaRow) {
    line.text("      child ").text(c.protocol).text(" in ");
    spi_or_unknown(line, c.spi_in);
    line.text(" out ");
    spi_or_unknown(line, c.spi_out);
    line.text(" (").text(c.source);
    if let Some(r) = c.rekeyed_from {
        line.text(", rekey of ").hex(u64::from(r), 8);
    }
    if c.deleted {
        line.text(", deleted");
    }
    line.text(")\n");
}

fn spi_or_unknown(line: &mut Line, spi: Option<u32>) {
    match spi {
        Some(s) => line.hex(u64::from(s), 8),
        None => line.text("?"),
    };
}

/// One ESP/AH row, the `SRC -> DST` column padded to 44.
fn esp_row(line: &mut Line, e: &EspSaRow<'_>) {
    line.text("  ").hex(u64::from(e.spi()), 8).text("  ");
    let from = line.buf.len();
    line.endpoint(e.src()).text(" -> ").endpoint(e.dst());
    let path = line.buf.len() - from;
    line.pad(path, 44).text(" ").right_text(e.encap(), 5);
    line.text(" ")
        .right(e.packets(), 9)
        .text(" ")
        .right(e.bytes(), 11);
    line.text(" ")
        .right(e.lost(), 6)
        .text(" ")
        .right(e.replayed(), 6);
    line.text(" ").right(e.reordered(), 6).text("  ");
    match e.ike_sa() {
        Some((spi, Some(link))) => line.hex(spi, 16).text(" (").text(link).text(")\n"),
        _ => line.text("-\n"),
    };
    if let Some(d) = e.decryption() {
        let text = decryption(d, "packets");
        line.text("            decryption ").text(&text).text("\n");
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
