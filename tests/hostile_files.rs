//! Hostile files through the real binary: wrong magic, an empty file, a directory, a
//! missing file, truncated records, absurd capture lengths, a corrupt gzip, and a capture
//! that grows while it is read (a FIFO fed in two bursts). Each unreadable input gives
//! one line on stderr naming the file (and the frame, once reading started) and exit
//! code 2, and whatever was read before the fault is still reported.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flate2::write::GzEncoder;

const BIN: &str = env!("CARGO_BIN_EXE_ipsecmon");
const PCAP_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

/// A generated capture of 300 frames (IKE, ESP, AH, background) in `dir`.
fn capture(dir: &Path) -> PathBuf {
    let out = dir.join("good.pcap");
    let status = Command::new(env!("CARGO_BIN_EXE_ipsecmon-gen"))
        .args(["--packets", "300", "--tunnels", "6", "--seed", "5", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    out
}

/// Byte offset of each record of a little-endian classic pcap.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut off = PCAP_HEADER;
    while off + RECORD_HEADER <= bytes.len() {
        out.push(off);
        let caplen = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap());
        off += RECORD_HEADER + caplen as usize;
    }
    out
}

fn run(args: &[&str], file: &Path) -> Output {
    Command::new(BIN).args(args).arg(file).output().unwrap()
}

fn stderr_line(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        text.lines().count(),
        1,
        "exactly one line on stderr: {text:?}"
    );
    text.trim_end().to_string()
}

fn report_frames(out: &Output) -> u64 {
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    doc["frames"].as_u64().unwrap()
}

/// Every command that reads files fails the same way on a file nobody can read.
fn assert_unreadable(file: &Path, reason: &str) {
    for args in [
        &["report", "--json"][..],
        &["decode", "--json"],
        &["diagnose", "--json"],
        &["--once", "-r"],
    ] {
        let out = run(args, file);
        assert_eq!(out.status.code(), Some(2), "{args:?} {}", file.display());
        let line = stderr_line(&out);
        assert!(
            line.contains(&file.display().to_string()) && line.contains(reason),
            "{args:?}: {line}"
        );
    }
}

#[test]
fn files_that_are_not_captures_are_refused_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all, just words").unwrap();
    assert_unreadable(&junk, "unknown magic number 73696874");
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    assert_unreadable(&empty, "the file is empty");
    assert_unreadable(dir.path(), "it is a directory");
    assert_unreadable(
        &dir.path().join("missing.pcap"),
        "No such file or directory",
    );
    let short = dir.path().join("short.pcap");
    std::fs::write(&short, [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]).unwrap();
    assert_unreadable(&short, "pcap file header cut short after 8 bytes");
}

/// `report` on a damaged file: one line naming file and frame, exit 2, the frames before
/// the damage in the report.
fn assert_damaged(file: &Path, frame: u64, reason: &str) {
    let out = run(&["report", "--json"], file);
    assert_eq!(out.status.code(), Some(2));
    let line = stderr_line(&out);
    let at = format!("{}: frame {frame}: ", file.display());
    assert!(line.contains(&at) && line.contains(reason), "{line}");
    assert_eq!(report_frames(&out), frame - 1);
    let out = run(&["diagnose", "--json"], file);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_line(&out).contains(&at));
    let out = run(&["--once", "-r"], file);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_line(&out).contains(&at));
    let view = String::from_utf8_lossy(&out.stdout);
    assert!(view.contains(&format!("{} frames", frame - 1)), "{view}");
    let out = run(&["decode", "--json"], file);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_line(&out).contains(&at));
    let last: serde_json::Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap();
    assert!(last["frame"].as_u64().unwrap() < frame);
}

#[test]
fn a_truncated_record_reports_the_frames_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(capture(dir.path())).unwrap();
    let offsets = record_offsets(&good);
    assert_eq!(offsets.len(), 300);
    let cut = dir.path().join("cut.pcap");
    // Inside the data of frame 200, then inside the record header of frame 120.
    std::fs::write(&cut, &good[..offsets[199] + RECORD_HEADER + 10]).unwrap();
    assert_damaged(&cut, 200, "file ends inside a record");
    std::fs::write(&cut, &good[..offsets[119] + 7]).unwrap();
    assert_damaged(&cut, 120, "file ends inside a record header");
}

#[test]
fn an_absurd_capture_length_is_damage_not_an_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(capture(dir.path())).unwrap();
    let at = record_offsets(&bytes)[149] + 8;
    bytes[at..at + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let bad = dir.path().join("absurd.pcap");
    std::fs::write(&bad, &bytes).unwrap();
    assert_damaged(&bad, 150, "record claims 4294967280 captured bytes");
}

#[test]
fn a_corrupt_gzip_reports_what_decompressed_before_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(capture(dir.path())).unwrap();
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&good).unwrap();
    let mut bytes = gz.finish().unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 64].fill(0xff);
    let bad = dir.path().join("corrupt.pcap.gz");
    std::fs::write(&bad, &bytes).unwrap();
    let out = run(&["report", "--json"], &bad);
    assert_eq!(out.status.code(), Some(2));
    let line = stderr_line(&out);
    assert!(line.contains("corrupt.pcap.gz: frame "), "{line}");
    let frames = report_frames(&out);
    assert!(
        frames > 0 && frames < 300,
        "{frames} frames read before the damage"
    );
    assert!(line.contains(&format!("frame {}: ", frames + 1)), "{line}");
}

#[test]
fn a_capture_that_grows_while_it_is_read_is_read_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(capture(dir.path())).unwrap();
    let fifo = dir.path().join("growing.pcap");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let child = Command::new(BIN)
        .args(["report", "--json"])
        .arg(&fifo)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    // The writer stops in the middle of a record, waits, then writes the rest.
    let half = record_offsets(&good)[150] + 20;
    w.write_all(&good[..half]).unwrap();
    w.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    w.write_all(&good[half..]).unwrap();
    drop(w);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    assert_eq!(report_frames(&out), 300);
}
