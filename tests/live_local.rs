//! Live commands count from the side of the host they capture on: on an interface with an
//! address, the statistics block's "sent" and "received" and the SA rows' local and remote,
//! SPI in and SPI out are that address's (`--once`, `--json`, `serve`), and an
//! explicit `--local` wins. The demo capture, recorded on Alice's interface, is replayed
//! with tcpreplay onto a veth pair between two network namespaces this test creates (and
//! removes, even on failure); the capturing end holds Bob's address, so every direction
//! reads the other way round from the file's. Skips with a message when not root, or when
//! `ip netns`, tcpreplay or the demo capture is missing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/veth.rs"]
mod veth;
use veth::{in_ns, Pair};

const BIN: &str = env!("CARGO_BIN_EXE_ipsecmon");

/// Bob's address in the demo capture: the capturing end of the link gets it.
const BOB: &str = "192.0.2.2";

/// The demo's ESP payload bytes from Alice to Bob and back (`report --json` of the file:
/// `confidential_bytes_sent` and `_received` from Alice's side).
const ALICE_TO_BOB: u64 = 16192;
const BOB_TO_ALICE: u64 = 8896;

/// The demo capture, when this machine can run the test; prints why not.
fn can_run() -> Option<PathBuf> {
    veth::replay_or_skip("the live local-address test")
}

/// The veth pair of one test: the near (capturing) end holds [`BOB`].
fn pair(tag: &str) -> Pair {
    Pair::create("local", "ipl", tag, [Some(&format!("{BOB}/24")), None])
}

/// `ipsecmon ARGS -i NEAR` in the near namespace, its output piped.
fn ipsecmon(pair: &Pair, args: &[&str]) -> Command {
    let mut c = pair.ipsecmon(BIN, args);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// The value after `label` on the line of the `--once` text that holds it.
fn stat(text: &str, label: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no {label} in {text}"));
    let after = line.split(label).nth(1).unwrap().trim_start();
    after.split(' ').next().unwrap().parse().unwrap()
}

/// `ipsecmon --once` over the replayed demo with `extra` flags: its text.
fn once(pair: &Pair, file: &Path, extra: &[&str]) -> String {
    let mut args = vec!["--once", "--duration", "4"];
    args.extend_from_slice(extra);
    let child = ipsecmon(pair, &args).spawn().expect("start ipsecmon");
    // The capture opens within the first second; replay after it.
    std::thread::sleep(Duration::from_millis(1500));
    pair.replay(file);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("ipsecmon - 266 frames - "), "{text}");
    text
}

/// The SA row that holds `spi`.
fn row<'a>(text: &'a str, spi: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(spi) && l.contains("established"))
        .unwrap_or_else(|| panic!("no established row with {spi} in {text}"))
}

#[test]
fn once_counts_and_shows_from_the_interfaces_own_address() {
    let Some(file) = can_run() else { return };
    let pair = pair("o");
    let text = once(&pair, &file, &[]);
    assert_eq!(
        stat(&text, "Confidential bytes sent"),
        BOB_TO_ALICE,
        "{text}"
    );
    assert_eq!(stat(&text, "Confidential bytes received"), ALICE_TO_BOB);
    assert_eq!(stat(&text, "Authenticated bytes sent"), BOB_TO_ALICE);
    let bob = row(&text, "743367c9");
    assert!(
        bob.starts_with(
            "192.0.2.2:4500 192.0.2.1:4500 ESP/UDP aes128-sha256-modp2048 59f5981f 743367c9"
        ),
        "{bob}"
    );
    // Eve's attempts, which Bob is no party to, stay as Alice began them.
    assert!(
        text.lines().any(|l| l
            .split_whitespace()
            .take(2)
            .eq(["192.0.2.1:500", "192.0.2.3:500"])),
        "{text}"
    );
}

#[test]
fn an_explicit_local_address_wins_over_the_interfaces() {
    let Some(file) = can_run() else { return };
    let pair = pair("x");
    let text = once(&pair, &file, &["--local", "192.0.2.1"]);
    assert_eq!(
        stat(&text, "Confidential bytes sent"),
        ALICE_TO_BOB,
        "{text}"
    );
    assert_eq!(stat(&text, "Confidential bytes received"), BOB_TO_ALICE);
    let bob = row(&text, "743367c9");
    assert!(
        bob.starts_with(
            "192.0.2.1:4500 192.0.2.2:4500 ESP/UDP aes128-sha256-modp2048 743367c9 59f5981f"
        ),
        "{bob}"
    );
}

#[test]
fn json_lines_count_from_the_interfaces_own_address() {
    let Some(file) = can_run() else { return };
    let pair = pair("j");
    let mut child = ipsecmon(&pair, &["--json", "--refresh", "0.2", "--duration", "4"])
        .spawn()
        .expect("start ipsecmon");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The first line is the first publication: the capture is open.
    let first = lines.next().expect("a first JSON line").unwrap();
    assert!(first.starts_with("{\"schema\":1,"), "{first}");
    pair.replay(&file);
    let last = lines.map_while(Result::ok).last().expect("more lines");
    assert!(child.wait().unwrap().success());
    let last: serde_json::Value = serde_json::from_str(&last).unwrap();
    let stats = &last["report"]["stats"];
    assert_eq!(last["report"]["frames"], 266);
    assert_eq!(stats["confidential_bytes_sent"], BOB_TO_ALICE, "{stats}");
    assert_eq!(
        stats["confidential_bytes_received"], ALICE_TO_BOB,
        "{stats}"
    );
}

/// A minimal HTTP/1.0 GET of `path`: the body.
fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(
        text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
        "{text}"
    );
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// The stats of `serve`'s API in namespace `ns`, once all 266 frames are in.
fn served_stats(ns: &str, addr: SocketAddr) -> serde_json::Value {
    in_ns(ns, move || {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let v: serde_json::Value = serde_json::from_str(&get(addr, "/api/v1/stats")).unwrap();
            if v["frames"] == 266 || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

#[test]
fn serve_counts_from_the_interfaces_own_address() {
    let Some(file) = can_run() else { return };
    let pair = pair("s");
    let mut child = ipsecmon(
        &pair,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--refresh",
            "0.2",
            "--duration",
            "30",
        ],
    )
    .spawn()
    .expect("start ipsecmon serve");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr: SocketAddr = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "serve ended early"
        );
        if let Some(rest) = line.trim().split("serving http://").nth(1) {
            break rest.trim_end_matches("/metrics").parse().unwrap();
        }
    };
    pair.replay(&file);
    let v = served_stats(&pair.ns[0], addr);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(v["frames"], 266, "{v}");
    assert_eq!(v["stats"]["confidential_bytes_sent"], BOB_TO_ALICE, "{v}");
    assert_eq!(
        v["stats"]["confidential_bytes_received"], ALICE_TO_BOB,
        "{v}"
    );
}
