//! Keys given with `--keys` never appear in any output: the binary runs with a directory
//! holding every key table of the corpus over every capture those keys decrypt, and
//! every channel is searched for every key, as hex (either case) and as raw bytes, in
//! whole and in any 8-byte window: stdout of `decode --json`, `decode`, `report
//! --json`, `report`, `diagnose --json` and `diagnose`, stderr of each with `--log
//! trace`, and the HTTP API and `/metrics` of `serve`.
//!
//! Skips with a printed line when the corpus (`../shared/corpus/external`) is absent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "common/corpus.rs"]
mod corpus;

const BIN: &str = env!("CARGO_BIN_EXE_ipsecmon");

/// tcpdump's test driver's inline key for esp1 and espudp1 (SOURCES.md).
const ESP1: &str =
    "0x12345678@192.1.2.45 3des-cbc-hmac96:0x4043434545464649494a4a4c4c4f4f515152525454575758";

/// Every key table of the corpus, copied into one private directory.
fn key_dir(root: &Path, dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let files = [
        "wireshark/test/config/ikev1_decryption_table.tmpl",
        "wireshark/test/config/ikev2_decryption_table.tmpl",
        "wireshark/test/config/esp_sa.tmpl",
        "tcpdump/tests/esp-secrets.txt",
        "tcpdump/tests/ikev2pI2-secrets.txt",
    ];
    for f in files {
        let src = root.join(f);
        let dst = dir.join(src.file_name().unwrap());
        std::fs::copy(&src, &dst).unwrap();
    }
    std::fs::write(dir.join("esp1-inline"), ESP1).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// Every key of the tables: each run of 32 or more hex digits (SPIs and cookies are 16
/// or fewer), without a `0x` prefix.
fn keys_in(dir: &Path) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let text = text.replace("0x", " ").replace("0X", " ");
        for token in text.split(|c: char| !c.is_ascii_hexdigit()) {
            if token.len() >= 32 && token.len() % 2 == 0 {
                let bytes = (0..token.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&token[i..i + 2], 16).unwrap())
                    .collect();
                keys.push(bytes);
            }
        }
    }
    keys
}

/// Fails when `output` holds any 8-byte window of any key, as raw bytes or as hex.
fn assert_no_key(what: &str, output: &[u8], keys: &[Vec<u8>]) {
    let lower = String::from_utf8_lossy(output).to_ascii_lowercase();
    for key in keys {
        for w in key.windows(8) {
            let hex: String = w.iter().map(|b| format!("{b:02x}")).collect();
            assert!(
                !lower.contains(&hex),
                "{what}: key bytes {hex}... in the output"
            );
            let raw = output.windows(8).any(|o| o == w);
            assert!(!raw, "{what}: raw key bytes in the output");
        }
    }
}

/// The captures the keys decrypt.
fn captures(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root.join("wireshark/test/captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for t in [
        "02-sunrise-sunset-esp.pcap",
        "08-sunrise-sunset-esp2.pcap",
        "08-sunrise-sunset-aes.pcap",
        "espudp1.pcap",
        "ikev2pI2.pcap",
    ] {
        out.push(root.join("tcpdump/tests").join(t));
    }
    out.sort();
    out
}

#[test]
fn no_output_channel_shows_a_key() {
    let Some(root) = corpus::corpus_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    key_dir(&root, dir.path());
    let keys = keys_in(dir.path());
    assert!(keys.len() >= 20, "{} keys", keys.len());
    let kd = dir.path().to_str().unwrap();
    let mut traced = false;
    for capture in captures(&root) {
        let c = capture.to_str().unwrap();
        for cmd in [
            &["decode", "--json"][..],
            &["decode"],
            &["report", "--json"],
            &["report"],
            &["diagnose", "--json"],
            &["diagnose"],
        ] {
            let out = Command::new(BIN)
                .args(["--log", "trace"])
                .args(cmd)
                .args(["--keys", kd, c])
                .output()
                .unwrap();
            let what = format!("{cmd:?} {c}");
            assert!(matches!(out.status.code(), Some(0 | 1)), "{what}");
            assert_no_key(&format!("stdout of {what}"), &out.stdout, &keys);
            assert_no_key(&format!("stderr of {what}"), &out.stderr, &keys);
            traced |= String::from_utf8_lossy(&out.stderr).contains("decryption status");
        }
    }
    assert!(traced, "the trace log never showed a decryption line");
}

/// A minimal HTTP GET over loopback: the body.
fn get(addr: SocketAddr, path: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    resp
}

#[test]
fn the_api_and_metrics_show_no_key() {
    let Some(root) = corpus::corpus_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    key_dir(&root, dir.path());
    let keys = keys_in(dir.path());
    let ws = root.join("wireshark/test/captures");
    for name in [
        "ikev2-decrypt-aes256gcm16.pcap",
        "ikev1-certs.pcap",
        "esp-bug-12671.pcapng.gz",
    ] {
        let mut child = Command::new(BIN)
            .args([
                "--log",
                "trace",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--speed",
                "0",
            ])
            .args([
                "--refresh",
                "0.1",
                "--keys",
                dir.path().to_str().unwrap(),
                "-r",
            ])
            .arg(ws.join(name))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut log = String::new();
        let addr: SocketAddr = loop {
            let line = lines.next().expect("serve printed its address").unwrap();
            log.push_str(&line);
            if let Some(rest) = line.split("serving http://").nth(1) {
                break rest.trim_end_matches("/metrics").parse().unwrap();
            }
        };
        let reader = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(800));
        for path in [
            "/metrics",
            "/api/v1/sas",
            "/api/v1/stats",
            "/api/v1/findings",
            "/api/v1/report",
        ] {
            let body = get(addr, path);
            assert!(body.starts_with(b"HTTP/1.1 200"), "{name} {path}");
            assert_no_key(&format!("{name} {path}"), &body, &keys);
        }
        let report = String::from_utf8_lossy(&get(addr, "/api/v1/report")).to_string();
        assert!(
            report.contains("\"decryption\""),
            "{name}: the API shows no decryption"
        );
        let _ = child.kill();
        let _ = child.wait();
        log.push_str(&reader.join().unwrap().join("\n"));
        assert_no_key(&format!("{name} serve log"), log.as_bytes(), &keys);
    }
}

#[test]
#[should_panic(expected = "key bytes")]
fn the_search_would_find_a_key_in_hex() {
    let key = vec![0x3f, 0x44, 0xbf, 0x47, 0xca, 0xfd, 0x81, 0x50, 0x59, 0x1d];
    assert_no_key("self-check", b"{\"x\": \"..0A3F44BF47CAFD8150\"}", &[key]);
}

#[test]
#[should_panic(expected = "raw key bytes")]
fn the_search_would_find_raw_key_bytes() {
    let key: Vec<u8> = (1..=12).collect();
    let mut out = b"prefix ".to_vec();
    out.extend_from_slice(&key[2..11]);
    assert_no_key("self-check", &out, &[key]);
}
