//! The view capturing live: `ipsecmon --json -i` and `ipsecmon --once -i` on one end of a
//! veth pair between two network namespaces this test creates (and removes, even on
//! failure), while tcpreplay sends the demo capture into the other end. Also: an idle
//! interface ends on time, and a missing privilege is one line with the fix. Skips with a
//! message when not root, or when `ip netns`, tcpreplay or the demo capture is missing.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "common/veth.rs"]
mod veth;
use veth::Pair;

const BIN: &str = env!("CARGO_BIN_EXE_ipsecmon");

/// The demo capture, when this machine can run the namespace tests; prints why not.
fn can_run() -> Option<PathBuf> {
    veth::replay_or_skip("the live view test")
}

/// The veth pair of one test.
fn pair(tag: &str) -> Pair {
    Pair::create("view", "ipv", tag, [None, None])
}

/// What `report --json` says of the file: IKE SAs (SPI → state) and ESP SAs (SPI →
/// packets). A replay at top speed squeezes the capture's silences, so live, the two
/// attempts with Eve may still read `negotiating` where the file (58 s long) has them
/// failed: states are compared apart.
fn expected(file: &Path) -> (BTreeMap<String, String>, BTreeMap<String, u64>) {
    let out = Command::new(BIN)
        .args(["report", "--json"])
        .arg(file)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    sas_of(&report)
}

fn sas_of(report: &serde_json::Value) -> (BTreeMap<String, String>, BTreeMap<String, u64>) {
    let ike = report["ike_sas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let spi = s["spi_i"].as_str().unwrap().to_string();
            (spi, s["state"].as_str().unwrap().to_string())
        })
        .collect();
    let esp = report["esp_sas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["spi"].as_str().unwrap().to_string(),
                s["packets"].as_u64().unwrap(),
            )
        })
        .collect();
    (ike, esp)
}

#[test]
fn json_lines_show_the_sas_of_traffic_replayed_onto_the_link() {
    let Some(file) = can_run() else { return };
    let pair = pair("j");
    let mut child = pair
        .ipsecmon(BIN, &["--json", "--refresh", "0.2", "--duration", "6"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ipsecmon");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The first line is the first publication: the capture is open.
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a first JSON line");
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["schema"], 1);
    assert_eq!(first["source"], format!("interface {}", pair.links[0]));
    pair.replay(&file);
    let mut last = first;
    let mut lines = 1;
    for line in rx.iter() {
        last = serde_json::from_str(&line).unwrap();
        assert_eq!(last["schema"], 1);
        lines += 1;
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "ipsecmon --json exited with {status}");
    assert!(lines >= 5, "one line per refresh: {lines}");
    let report = &last["report"];
    assert_eq!(
        report["frames"], 266,
        "every frame of the demo crossed the link"
    );
    assert_eq!(last["capture"]["received"], 266);
    let (ike, esp) = sas_of(report);
    let (want_ike, want_esp) = expected(&file);
    assert_eq!(esp, want_esp, "every ESP SA with its packets");
    let spis: Vec<&String> = ike.keys().collect();
    assert_eq!(spis, want_ike.keys().collect::<Vec<_>>(), "every IKE SA");
    assert_eq!(ike["2c1cbb4f3b7a4dcc"], "established", "{ike:?}");
    for (spi, state) in &want_ike {
        if state == "failed" {
            assert!(
                ["failed", "negotiating"].contains(&ike[spi].as_str()),
                "{spi}: {ike:?}"
            );
        }
    }
}

#[test]
fn once_after_a_duration_shows_the_sas_with_privileges_dropped() {
    let Some(file) = can_run() else { return };
    let pair = pair("o");
    let child = pair
        .ipsecmon(BIN, &["--once", "--duration", "4", "--user", "nobody"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ipsecmon");
    // The capture opens within the first second; replay after it.
    std::thread::sleep(Duration::from_millis(1500));
    pair.replay(&file);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("ipsecmon - 266 frames - "), "{text}");
    assert!(lines[0].ends_with(&format!(" - interface {}", pair.links[0])));
    assert!(
        lines[2].starts_with("Security associations (3) + 1 ended"),
        "{text}"
    );
    assert!(lines[0].starts_with("ipsecmon - 266 frames - "), "{text}");
    let bob = lines
        .iter()
        .find(|l| l.contains("743367c9"))
        .expect("Bob's SA");
    assert!(
        bob.contains("59f5981f") && bob.contains("established"),
        "{bob}"
    );
    assert!(text.contains("Capture: 266 received, 0 dropped"), "{text}");
    assert!(text.contains("Statistics\n  Active associations"));
}

#[test]
fn an_idle_interface_and_a_signal_end_the_view_on_time() {
    if !veth::netns_or_skip("the idle-interface view test") {
        return;
    }
    let pair = pair("i");
    let started = Instant::now();
    let out = pair
        .ipsecmon(BIN, &["--once", "--duration", "1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    // The link coming up may send IPv6 neighbour discovery (ICMPv6), nothing more.
    assert!(text.starts_with("ipsecmon - "), "{text}");
    assert!(text.contains("Security associations (0)\n"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "--duration 1 took {:?}",
        started.elapsed()
    );

    let mut child = pair
        .ipsecmon(BIN, &["--json", "--refresh", "0.2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    // `ip netns exec` passes the signal's target on: signal ipsecmon itself.
    let pid = find_child_pid(child.id()).expect("ipsecmon under ip netns exec");
    // SAFETY: kill with a valid pid and signal number.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "SIGTERM: {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGTERM did not stop an idle capture"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The process that `ip netns exec` became or started: `ip` execs its command in place,
/// so it is normally the same pid.
fn find_child_pid(pid: u32) -> Option<i32> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    exe.ends_with("ipsecmon").then_some(pid as i32)
}

#[test]
fn a_missing_privilege_is_one_line_with_the_fix() {
    if !veth::is_root() {
        println!("skipped: needs root to become an unprivileged user");
        return;
    }
    let out = Command::new(BIN)
        .args(["--once", "-i", "lo"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("ipsecmon: lo: ") && err.contains("setcap cap_net_raw,cap_net_admin=eip"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}
