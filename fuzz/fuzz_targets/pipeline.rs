//! The whole pipeline under arbitrary frames: capture frames in, decoder, tracker and
//! diagnosis updated, and every output rendered from the snapshot (report JSON and text,
//! findings text, Prometheus metrics, the terminal view's text).
//!
//! The input is a sequence of records, each `[selector][length: u16 BE][frame bytes]`; a
//! last record cut short takes what is left. The selector's low nibble picks the link
//! type; its high nibble advances packet time (0–14 s, or an hour for 15, so that stall
//! timers, idle expiry and fragment timeouts all fire). The tables are capped small, and
//! the target checks that they stay within their caps.

#![no_main]

use ipsecmon::capture::{CaptureStats, Frame};
use ipsecmon::diagnose::text::{render as findings_text, Style};
use ipsecmon::engine::{Engine, EngineConfig};
use ipsecmon::export::{Metrics, MetricsConfig};
use ipsecmon::view::model::RowOptions;
use ipsecmon::view::text;
use ipsecmon::wire::{DecoderConfig, LinkType, Timestamp};
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 9] = [
    LinkType::Ethernet,
    LinkType::Null,
    LinkType::Loop,
    LinkType::Raw,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Other(147),
];

const CAP: usize = 8;
const SECOND: i64 = 1_000_000_000;

fn engine() -> Engine {
    let mut config = EngineConfig::default();
    config.tracker.max_ike_sas = CAP;
    config.tracker.max_esp_sas = CAP;
    config.decoder = DecoderConfig {
        max_reassemblies: 4,
        max_datagram: 8192,
    };
    Engine::new(config)
}

/// Splits the input into (selector, frame) records.
fn records(mut data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (&sel, rest) = data.split_first()?;
        let len = match rest {
            [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
            _ => 0,
        };
        let body = rest.get(2..).unwrap_or_default();
        let (frame, tail) = body.split_at(len.min(body.len()));
        data = tail;
        Some((sel, frame))
    })
}

fuzz_target!(|data: &[u8]| {
    let mut engine = engine();
    let mut now = 1_700_000_000 * SECOND;
    let mut number = 0u64;
    for (sel, frame) in records(data) {
        now += match sel >> 4 {
            15 => 3600 * SECOND,
            n => i64::from(n) * SECOND,
        };
        number += 1;
        let link = LINKS[usize::from(sel & 0x0f) % LINKS.len()];
        engine.process(&Frame {
            number,
            ts: Timestamp(now),
            link,
            data: frame,
            orig_len: frame.len() as u32,
        });
        if sel & 0x0f == 0x0f {
            engine.tick(Timestamp(now + SECOND));
        }
    }
    let mut metrics = Metrics::new(MetricsConfig::default());
    let live = engine.snapshot("fuzz", CaptureStats::default());
    metrics.update(&live);
    engine.finish();
    let snap = engine.snapshot("fuzz", CaptureStats::default());
    let r = &snap.report;
    assert!(r.ike_sas.len() <= CAP, "IKE table over its cap");
    assert!(
        r.esp_sas.len() + r.ah_sas.len() <= CAP,
        "ESP table over its cap"
    );
    assert_eq!(r.frames, number);
    serde_json::to_string(&snap).expect("the snapshot serialises");
    let mut text = Vec::new();
    ipsecmon::cli::report::render(&engine.rows(), &mut text).expect("the report renders");
    let mut json = Vec::new();
    engine
        .write_report_json(&mut json)
        .expect("the report streams as JSON");
    let _ = findings_text(&snap.findings, Style::Plain);
    let _ = text::render(&snap, RowOptions::default());
    metrics.update(&snap);
    let _ = metrics.render();
});
