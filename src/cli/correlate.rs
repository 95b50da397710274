//! `ipsecmon correlate A B`: read both captures, match their IPsec packets, and print
//! the translations, losses, clock offset and delay between the two points.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::capture::{open_file, CaptureError, FrameSource};
use crate::track::correlate::{correlate, CorrelateReport, Sighting, MAX_SIGHTINGS};
use crate::wire::Decoder;

use super::EXIT_OK;

/// Arguments of `ipsecmon correlate`.
#[derive(Debug, Args)]
pub struct CorrelateArgs {
    /// The capture taken at point A (pcap, pcapng, or gzip of either).
    pub a: PathBuf,

    /// The capture taken at point B, of the same traffic.
    pub b: PathBuf,

    /// Print one JSON document (DESIGN.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command; returns the exit code.
pub fn run(args: CorrelateArgs) -> anyhow::Result<u8> {
    let a = read_sightings(&args.a)?;
    let b = read_sightings(&args.b)?;
    let report = correlate(&a, &b);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write_text(&mut out, &args, &report)?;
    }
    Ok(EXIT_OK)
}

/// Decodes every frame of a capture into sightings. A damaged record ends the file with
/// a warning: the frames before it still count.
fn read_sightings(path: &Path) -> anyhow::Result<Vec<Sighting>> {
    let mut source = open_file(path).with_context(|| {
        format!(
            "cannot read {}; give a pcap or pcapng capture",
            path.display()
        )
    })?;
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    loop {
        let frame = match source.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e @ CaptureError::Record { .. }) => {
                tracing::warn!("{e}; correlating the frames before it");
                break;
            }
            Err(e) => return Err(e.into()),
        };
        let Ok(packet) = decoder.decode(frame.link, frame.ts, frame.data) else {
            continue;
        };
        if let Some(s) = Sighting::from_packet(frame.number, frame.ts, &packet) {
            if out.len() < MAX_SIGHTINGS {
                out.push(s);
            }
        }
    }
    tracing::info!(file = %path.display(), packets = out.len(), "capture read");
    Ok(out)
}

fn write_text(
    out: &mut impl Write,
    args: &CorrelateArgs,
    r: &CorrelateReport,
) -> std::io::Result<()> {
    writeln!(
        out,
        "A: {} ({} IPsec packets)",
        args.a.display(),
        r.packets_a
    )?;
    writeln!(
        out,
        "B: {} ({} IPsec packets)",
        args.b.display(),
        r.packets_b
    )?;
    writeln!(out, "matched at both points: {}", r.matched)?;
    if r.translations.is_empty() {
        writeln!(out, "translations: none")?;
    }
    for t in &r.translations {
        writeln!(
            out,
            "translation: {} at A is {} at B ({} packets; frames A {:?}, B {:?})",
            t.a, t.b, t.packets, t.frames_a, t.frames_b
        )?;
    }
    writeln!(
        out,
        "lost A->B: {}, lost B->A: {}",
        r.lost_a_to_b, r.lost_b_to_a
    )?;
    match r.clock_offset_s {
        // Below the printed precision the sign means nothing ("-0.000000").
        Some(o) if o.abs() < 5e-7 => writeln!(out, "clock offset (B minus A): 0.000000 s")?,
        Some(o) => writeln!(out, "clock offset (B minus A): {o:+.6} s")?,
        None => writeln!(
            out,
            "clock offset: unknown (traffic seen in one direction only)"
        )?,
    }
    if let Some(d) = r.delay_s {
        writeln!(
            out,
            "one-way delay: min {:.6} s, median {:.6} s, max {:.6} s",
            d.min, d.median, d.max
        )?;
    }
    writeln!(out, "NAT: {}", verdict_name(r))?;
    for e in &r.nat.evidence {
        writeln!(out, "  {}: {}", e.kind, e.detail)?;
    }
    Ok(())
}

fn verdict_name(r: &CorrelateReport) -> String {
    serde_json::to_value(r.nat.verdict)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
