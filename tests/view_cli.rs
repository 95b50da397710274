//! The view's non-interactive outputs from the real binary: the bundled demo capture by
//! default, `--once` text, `--json` lines at the recorded pace or as fast as possible, and
//! a reader that stops reading never holding up the capture.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::keys_with_wrong;

const BIN: &str = env!("CARGO_BIN_EXE_ipsecmon");

fn demo() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/demo.pcap");
    if !p.exists() {
        println!("skipped: fixtures/demo/demo.pcap is missing");
    }
    p.exists().then_some(p)
}

fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn without_a_source_the_view_shows_the_bundled_demo_capture() {
    let Some(file) = demo() else { return };
    let out = Command::new(BIN).arg("--once").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "ipsecmon - 266 frames - 2026-12-04 01:18:08.606 UTC - {}",
            file.display()
        )
    );
    assert_eq!(
        lines[2],
        "Security associations (3) + 1 ended (rekeyed, deleted, expired), shown with --all"
    );
    assert!(lines[4].starts_with(
        "192.0.2.1:4500 192.0.2.2:4500 ESP/UDP aes128-sha256-modp2048 743367c9 59f5981f established"
    ));
    assert_eq!(
        lines.last().copied(),
        Some("Capture: 266 received, 0 dropped, 0 by interface; decode errors 0")
    );
}

#[test]
fn json_at_the_recorded_pace_publishes_as_the_capture_unfolds() {
    let Some(file) = demo() else { return };
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["--json", "--refresh", "0.5", "--speed", "10", "-r"])
        .arg(&file)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(out.status.success());
    let lines = json_lines(&out.stdout);
    let frames: Vec<u64> = lines
        .iter()
        .map(|l| l["report"]["frames"].as_u64().unwrap())
        .collect();
    // 58 s of capture at ten times its pace: about 6 s, a line every half second.
    assert!(took >= Duration::from_secs(5), "took {took:?}");
    assert!(frames.len() >= 8, "{frames:?}");
    assert!(frames.windows(2).all(|w| w[0] <= w[1]), "{frames:?}");
    assert!(
        frames[0] < 266 && frames[frames.len() / 2] < 266,
        "{frames:?}"
    );
    assert_eq!(frames.last(), Some(&266));
    assert!(lines.iter().all(|l| l["schema"] == 1));

    let fast = Command::new(BIN)
        .args(["--json", "--speed", "0", "-r"])
        .arg(&file)
        .output()
        .unwrap();
    let fast = json_lines(&fast.stdout);
    let last = fast.last().unwrap();
    assert_eq!(last["report"]["frames"], 266);
    assert_eq!(last["report"], lines.last().unwrap()["report"]);
}

#[test]
fn a_reader_that_stops_reading_never_holds_up_the_capture() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.pcap");
    let gen = Command::new(env!("CARGO_BIN_EXE_ipsecmon-gen"))
        .args(["--packets", "200000", "--tunnels", "200", "--out"])
        .arg(&file)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(gen.success());
    // Publications every 50 ms, each a JSON line far larger than a pipe's buffer:
    // stdout is full at once, and nobody reads it until the capture has ended.
    let mut child = Command::new(BIN)
        .args(["--log", "info", "--json", "--refresh", "0.05", "-r"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut ended = false;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if line.contains("capture ended") {
            assert!(line.contains("Finished"), "{line}");
            ended = true;
            break;
        }
    }
    assert!(
        ended,
        "the capture thread said it ended while stdout was blocked"
    );
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    assert!(child.wait().unwrap().success());
    let first_line = out.split(|b| *b == b'\n').next().unwrap_or_default();
    assert!(
        first_line.len() > 1 << 16,
        "a line fills the pipe: {} bytes",
        first_line.len()
    );
    let lines = json_lines(&out);
    assert!(lines.len() >= 2, "{} lines", lines.len());
    assert_eq!(lines.last().unwrap()["report"]["frames"], 200_000);
}

#[test]
fn the_full_screen_view_needs_a_terminal() {
    let Some(file) = demo() else { return };
    let out = Command::new(BIN)
        .arg("-r")
        .arg(&file)
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ipsecmon: standard output is not a terminal: use --once for text or --json for JSON Lines\n"
    );
}

/// A lab fixture's directory, when the checkout has it.
fn lab(scenario: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/lab/{scenario}"));
    if !p.join("keys").exists() {
        println!("skipped: fixtures/lab/{scenario} is missing");
    }
    p.join("keys").exists().then_some(p)
}

/// `ipsecmon --once --all --keys KEYS -r CAPTURE`: (header, SA rows, whole text).
fn once_with_keys(capture: &Path, keys: Option<&Path>) -> (String, Vec<String>, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["--once", "--all"]);
    if let Some(k) = keys {
        cmd.arg("--keys").arg(k);
    }
    let out = cmd.arg("-r").arg(capture).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let rows = lines[4..]
        .iter()
        .take_while(|l| !l.is_empty())
        .cloned()
        .collect();
    (lines[3].clone(), rows, text)
}

/// The column of `header` that starts at `title`, cut out of `row`.
fn cell<'a>(header: &str, row: &'a str, title: &str) -> &'a str {
    let at = header
        .find(title)
        .unwrap_or_else(|| panic!("no {title} in {header}"));
    row[at..].split(' ').next().unwrap()
}

#[test]
fn once_text_says_per_sa_whether_it_decrypted() {
    let (Some(ok), Some(ikev1)) = (lab("ok"), lab("ikev1")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let capture = ok.join("link.pcap");

    let (header, rows, text) = once_with_keys(&capture, Some(&ok.join("keys")));
    let cells: Vec<&str> = rows
        .iter()
        .map(|r| cell(&header, r, "Decryption"))
        .collect();
    assert_eq!(cells, ["decrypted"; 4], "{text}");
    assert!(
        text.contains("Packets not authenticated               0"),
        "{text}"
    );

    let all = ["ikev2_decryption_table", "esp_sa"];
    let wrong = keys_with_wrong(&ok.join("keys"), &all, &dir.path().join("ok"));
    let (header, rows, text) = once_with_keys(&capture, Some(&wrong));
    let cells: Vec<&str> = rows
        .iter()
        .map(|r| cell(&header, r, "Decryption"))
        .collect();
    assert_eq!(cells, ["not-authenticated"; 4], "{text}");
    // 14 IKE messages and 132 ESP packets, every one with a key that fails its ICV.
    assert!(
        text.contains("Packets not authenticated             146"),
        "{text}"
    );
    assert!(
        text.contains("Packets not decrypted                   0"),
        "{text}"
    );

    // IKEv1 has no ICV: a wrong phase-1 key shows as plaintext that makes no sense.
    let only_ike = ["ikev1_decryption_table"];
    let wrong = keys_with_wrong(&ikev1.join("keys"), &only_ike, &dir.path().join("v1"));
    let (header, rows, text) = once_with_keys(&ikev1.join("link.pcap"), Some(&wrong));
    let cells: Vec<&str> = rows
        .iter()
        .map(|r| cell(&header, r, "Decryption"))
        .collect();
    assert_eq!(cells, ["not-decrypted"; 3], "{text}");
    assert!(
        text.contains("Packets not decrypted                  15"),
        "{text}"
    );

    let (header, _, _) = once_with_keys(&capture, None);
    assert!(!header.contains("Decryption"), "{header}");
}
