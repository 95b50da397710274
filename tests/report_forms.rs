//! `report` writes its tables and its JSON document row by row, straight from the
//! tracker's tables. Both must say exactly what the whole [`Report`] says: the streamed
//! JSON is byte for byte the serialized report, and the tables are what formatting the
//! report's own fields gives (the oracle below formats them the simple way).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use ipsecmon::capture::{open_file, FrameSource};
use ipsecmon::engine::{Engine, EngineConfig};
use ipsecmon::keys::KeyTable;
use ipsecmon::track::report::{DecryptionReport, IkeSaReport, Report};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn engine_over(capture: &Path, keys: Option<&Path>) -> Engine {
    let mut config = EngineConfig::default();
    if let Some(k) = keys {
        config.keys = Some(Arc::new(KeyTable::load(k).expect("keys load")));
    }
    let mut engine = Engine::new(config);
    let mut src = open_file(capture).expect("capture opens");
    while let Some(frame) = src.next_frame().expect("capture reads") {
        engine.process(&frame);
    }
    engine.finish();
    engine
}

/// Checks both streamed forms of one capture against its whole report; returns the
/// number of IKE SAs, ESP SAs and settled child rekeys seen.
fn check(capture: &Path, keys: Option<&Path>) -> (usize, usize, usize) {
    let engine = engine_over(capture, keys);
    let report = engine.report();
    let mut streamed = Vec::new();
    engine.write_report_json(&mut streamed).unwrap();
    let whole = serde_json::to_vec_pretty(&report).unwrap();
    assert!(streamed == whole, "{}: JSON differs", capture.display());
    let mut text = Vec::new();
    ipsecmon::cli::report::render(&engine.rows(), &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    let want = oracle(&report);
    for (n, (got, want)) in text.lines().zip(want.lines()).enumerate() {
        assert_eq!(got, want, "{}: line {}", capture.display(), n + 1);
    }
    assert_eq!(text, want, "{}", capture.display());
    let rekeys = report
        .ike_sas
        .iter()
        .flat_map(|sa| &sa.child_sas)
        .filter(|c| c.rekeyed_from.is_some())
        .count();
    (report.ike_sas.len(), report.esp_sas.len(), rekeys)
}

#[test]
fn generated_capture_streams_what_the_report_holds() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g.pcap");
    let status = Command::new(env!("CARGO_BIN_EXE_ipsecmon-gen"))
        .args(["--packets", "30000", "--tunnels", "400", "--seed", "3"])
        .args(["--rekey-every", "20", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let (ike, esp, rekeys) = check(&out, None);
    assert!(ike >= 400, "{ike} IKE SAs");
    assert!(esp >= 800, "{esp} ESP SAs");
    assert!(rekeys > 100, "{rekeys} child rekeys");
}

#[test]
fn lab_fixtures_stream_what_the_report_holds() {
    let mut captures: Vec<PathBuf> = Vec::new();
    for dir in std::fs::read_dir(root().join("fixtures/lab")).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "pcap") {
                captures.push(f);
            }
        }
    }
    captures.sort();
    assert!(captures.len() >= 14, "{} lab captures", captures.len());
    for c in &captures {
        check(c, None);
        let keys = c.with_file_name("keys");
        if keys.is_file() {
            check(c, Some(&keys));
        }
    }
}

/// The tables formatted from the report's fields.
fn oracle(r: &Report) -> String {
    let mut s = String::new();
    let ike = r.ike_sas.iter().map(|sa| sa.started);
    let esp = r.esp_sas.iter().chain(&r.ah_sas).map(|e| e.first_seen);
    let t0 = ike.chain(esp).fold(f64::INFINITY, f64::min);
    let _ = writeln!(s, "IKE SAs: {}", r.ike_sas.len());
    for sa in &r.ike_sas {
        ike_lines(&mut s, sa, t0);
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
    }
    let _ = writeln!(s, "\nStatistics");
    let st = serde_json::to_value(r.stats).unwrap();
    for (key, value) in st.as_object().unwrap() {
        let _ = writeln!(s, "  {:<30} {value}", title(key));
    }
    let _ = writeln!(
        s,
        "\n{} frames, {} undecodable; evicted: {} IKE SAs, {} ESP/AH SAs",
        r.frames, r.decode_errors, r.evictions.ike_sas, r.evictions.esp_sas
    );
    s
}

/// `confidential_bytes_sent` → `Confidential Bytes Sent`.
fn title(key: &str) -> String {
    key.split('_')
        .map(|w| {
            if w == "spi" {
                return "SPI".to_string();
            }
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn ike_lines(s: &mut String, sa: &IkeSaReport, t0: f64) {
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
