//! `ipsecmon serve` end to end: a real server replaying a capture, scraped over loopback,
//! checked by promtool, compared with `report --json`, and scraped by a real Prometheus
//! that evaluates every dashboard expression.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipsecmon::capture::writer::{PcapOptions, PcapWriter};
use ipsecmon::capture::{open_file, FrameSource};
use ipsecmon::wire::Timestamp;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_ipsecmon");

/// A capture with IKE and ESP to serve: the bundled lab capture, else a corpus one.
fn capture() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        root.join("fixtures/demo/demo.pcap"),
        root.join("fixtures/lab/ikev2-psk-ok.pcap"),
        root.join("../shared/corpus/external/tcpdump/tests/ikev2four.pcap"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

/// A running `ipsecmon serve`, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve -r file` on a free loopback port (or the `--listen` among `extra`).
fn start_server(file: &Path, extra: &[&str]) -> Server {
    let listen = if extra.contains(&"--listen") {
        &[][..]
    } else {
        &["--listen", "127.0.0.1:0"][..]
    };
    let mut child = Command::new(BIN)
        .args(["--log", "info", "serve", "--refresh", "0.2"])
        .args(listen)
        .arg("-r")
        .arg(file)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ipsecmon serve");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        if let Some(rest) = line.split("serving http://").nth(1) {
            break rest.trim_end_matches("/metrics").parse().unwrap();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    Server { child, addr }
}

/// A minimal HTTP/1.1 GET over loopback: (status, body).
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    try_get(addr, path, token).unwrap_or_else(|| panic!("GET http://{addr}{path} failed"))
}

/// [`get`], or `None` when the connection or the exchange fails.
fn try_get(addr: SocketAddr, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split(' ').nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Some((status, dechunk(body)))
}

/// Undoes chunked transfer encoding when the server used it.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return body.to_string();
        };
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_string();
        };
        if n == 0 {
            return out;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
}

/// Waits until the server has read the whole file (frames stop growing).
fn settle(addr: SocketAddr) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(300));
        let (_, body) = get(addr, "/api/v1/stats", None);
        if body == last {
            return body;
        }
        last = body;
    }
    last
}

fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no sample {prefix}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Writes a generated capture into `dir`: 12 tunnels (IKEv1 and IKEv2, one behind a NAT,
/// one refused with NO_PROPOSAL_CHOSEN), ESP both ways with loss, replays and rekeys, over
/// 15 s of capture time, after `lead_s` seconds of silence (one ARP frame) so that a server
/// replaying it at its recorded pace is scraped before the first negotiation.
fn generated(dir: &Path, lead_s: i64) -> PathBuf {
    let raw = dir.join("generated.pcap");
    let status = Command::new(env!("CARGO_BIN_EXE_ipsecmon-gen"))
        .args(["--packets", "3000", "--tunnels", "12", "--seed", "6"])
        .args(["--rate", "200", "--out"])
        .arg(&raw)
        .stdout(Stdio::null())
        .status()
        .expect("run ipsecmon-gen");
    assert!(status.success());
    let out = dir.join(format!("generated-lead{lead_s}.pcap"));
    let mut source = open_file(&raw).unwrap();
    let file = std::fs::File::create(&out).unwrap();
    let mut w = PcapWriter::new(std::io::BufWriter::new(file), PcapOptions::default()).unwrap();
    let mut first = true;
    while let Some(f) = source.next_frame().unwrap() {
        if first {
            let arp = arp_frame();
            let ts = Timestamp(f.ts.0 - lead_s * 1_000_000_000);
            w.write_packet(ts, &arp, arp.len() as u32).unwrap();
            first = false;
        }
        w.write_packet(f.ts, f.data, f.orig_len).unwrap();
    }
    w.into_inner().unwrap();
    out
}

/// An Ethernet ARP request: a frame ipsecmon reads and ignores.
fn arp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 192, 0, 2, 1]);
    f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 192, 0, 2, 2]);
    f
}

/// Every sample of an exposition: `name{labels}` to value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            Some((series.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// The sum of every sample of metric `name` (all label sets).
fn total(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    samples
        .iter()
        .filter(|(k, _)| k.split('{').next() == Some(name))
        .map(|(_, v)| v)
        .sum()
}

fn report_of(file: &Path) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["report", "--json"])
        .arg(file)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn metrics_match_the_report_and_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![generated(dir.path(), 0)];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = [
        "fixtures/demo/demo.pcap",
        "fixtures/lab/ok/link.pcap",
        "fixtures/lab/ikev1/link.pcap",
        "fixtures/lab/psk-mismatch/link.pcap",
        "fixtures/lab/nat-t/outside.pcap",
    ];
    files.extend(fixtures.iter().map(|f| root.join(f)).filter(|p| p.exists()));
    for file in files {
        println!("checking {}", file.display());
        check_against_report(&file);
    }
}

fn check_against_report(file: &Path) {
    let server = start_server(file, &[]);
    settle(server.addr);
    let (status, metrics) = get(server.addr, "/metrics", None);
    assert_eq!(status, 200);
    let report = report_of(file);
    assert_eq!(
        sample(&metrics, "ipsecmon_frames_total"),
        report["frames"].as_f64().unwrap()
    );
    let stats = &report["stats"];
    let exact = [
        (
            r#"ipsecmon_ipsec_associations{kind="active"}"#,
            "active_associations",
        ),
        (
            r#"ipsecmon_ipsec_associations{kind="pending_key_operations"}"#,
            "pending_key_operations",
        ),
        (
            r#"ipsecmon_ipsec_associations{kind="soft"}"#,
            "soft_associations",
        ),
        (
            r#"ipsecmon_protected_bytes_total{direction="sent",protection="confidential"}"#,
            "confidential_bytes_sent",
        ),
        (
            r#"ipsecmon_protected_bytes_total{direction="received",protection="confidential"}"#,
            "confidential_bytes_received",
        ),
        (
            r#"ipsecmon_protected_bytes_total{direction="sent",protection="authenticated"}"#,
            "authenticated_bytes_sent",
        ),
        (
            r#"ipsecmon_ipsec_events_total{event="main_modes"}"#,
            "main_modes",
        ),
        (
            r#"ipsecmon_ipsec_events_total{event="quick_modes"}"#,
            "quick_modes",
        ),
        (r#"ipsecmon_ipsec_events_total{event="rekeys"}"#, "rekeys"),
        (
            r#"ipsecmon_ipsec_events_total{event="key_additions"}"#,
            "key_additions",
        ),
        (
            r#"ipsecmon_ipsec_events_total{event="bad_spi_packets"}"#,
            "bad_spi_packets",
        ),
    ];
    for (series, field) in exact {
        assert_eq!(
            sample(&metrics, series),
            stats[field].as_f64().unwrap(),
            "{series} = stats.{field}"
        );
    }
    let ike_sas = report["ike_sas"].as_array().unwrap();
    let established = ike_sas
        .iter()
        .filter(|s| s["state"] == "established")
        .count();
    assert_eq!(
        sample(&metrics, r#"ipsecmon_ike_sas{state="established"}"#),
        established as f64
    );
    let all = samples(&metrics);
    let failed = ike_sas.iter().filter(|s| !s["failure"].is_null()).count();
    assert_eq!(
        total(&all, "ipsecmon_negotiation_failures_total"),
        failed as f64
    );
    assert_eq!(
        total(&all, "ipsecmon_tunnel_negotiation_failures_total"),
        failed as f64
    );
    let up = ike_sas
        .iter()
        .filter(|s| !s["established_after_s"].is_null() && s["rekeyed_from"].is_null())
        .count();
    assert_eq!(
        total(&all, "ipsecmon_ike_establishment_seconds_count"),
        up as f64
    );
    assert_eq!(
        total(&all, "ipsecmon_tunnel_establishment_seconds_count"),
        up as f64
    );
    let retx: u64 = ike_sas
        .iter()
        .map(|s| s["retransmissions"].as_u64().unwrap())
        .sum();
    assert_eq!(
        total(&all, "ipsecmon_tunnel_ike_retransmissions_total"),
        retx as f64
    );
    let ipsec: Vec<&serde_json::Value> = ["esp_sas", "ah_sas"]
        .iter()
        .flat_map(|k| report[*k].as_array().unwrap())
        .collect();
    for (metric, field) in [
        ("ipsecmon_tunnel_packets_total", "packets"),
        ("ipsecmon_tunnel_bytes_total", "bytes"),
        ("ipsecmon_tunnel_esp_lost_packets_total", "lost"),
        ("ipsecmon_tunnel_esp_replayed_packets_total", "replayed"),
    ] {
        let want: u64 = ipsec.iter().map(|s| s[field].as_u64().unwrap()).sum();
        assert_eq!(
            total(&all, metric),
            want as f64,
            "{metric} = sum of {field}"
        );
    }
    promtool_check(&metrics);

    let (_, sas) = get(server.addr, "/api/v1/sas", None);
    let sas: serde_json::Value = serde_json::from_str(&sas).unwrap();
    assert_eq!(sas["schema"], 1);
    assert_eq!(sas["ike_sas"], report["ike_sas"]);
    assert_eq!(sas["esp_sas"], report["esp_sas"]);
    let (_, api_stats) = get(server.addr, "/api/v1/stats", None);
    let api_stats: serde_json::Value = serde_json::from_str(&api_stats).unwrap();
    assert_eq!(api_stats["schema"], 1);
    assert_eq!(api_stats["stats"], report["stats"]);
    let (_, api_report) = get(server.addr, "/api/v1/report", None);
    let api_report: serde_json::Value = serde_json::from_str(&api_report).unwrap();
    assert_eq!(api_report["schema"], 1);
    assert_eq!(api_report["ike_sas"], report["ike_sas"]);
    let (_, findings) = get(server.addr, "/api/v1/findings", None);
    let findings: serde_json::Value = serde_json::from_str(&findings).unwrap();
    let diagnosed = Command::new(BIN)
        .args(["diagnose", "--json"])
        .arg(file)
        .output()
        .unwrap();
    let diagnosed: serde_json::Value = serde_json::from_slice(&diagnosed.stdout).unwrap();
    assert_eq!(findings["schema"], 1);
    assert_eq!(findings["findings"], diagnosed["findings"]);
    assert_eq!(get(server.addr, "/nothing", None).0, 404);
    let (status, health) = get(server.addr, "/healthz", None);
    assert_eq!(status, 200);
    assert!(health.contains(r#""status":"ok""#), "{health}");
}

/// `report --json --keys KEYS FILE`.
fn report_with_keys(file: &Path, keys: &Path) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["report", "--json", "--keys"])
        .arg(keys)
        .arg(file)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn decryption_failures_reach_the_metrics_as_the_report_counts_them() {
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/lab");
    if !lab.join("ok/keys").exists() || !lab.join("ikev1/keys").exists() {
        println!("skipped: fixtures/lab/ok and fixtures/lab/ikev1 are missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let v2 = ["ikev2_decryption_table", "esp_sa"];
    let wrong_ok = common::keys_with_wrong(&lab.join("ok/keys"), &v2, &dir.path().join("ok"));
    let v1 = ["ikev1_decryption_table"];
    let wrong_v1 = common::keys_with_wrong(&lab.join("ikev1/keys"), &v1, &dir.path().join("v1"));
    // (capture, keys, packets not decrypted, packets not authenticated): right keys; every
    // key wrong (14 IKE messages and 132 ESP packets fail their ICV); IKEv1's phase-1 key
    // wrong (no ICV: 15 messages decrypt to nonsense), its ESP keys right.
    let cases = [
        (lab.join("ok/link.pcap"), lab.join("ok/keys"), 0, 0),
        (lab.join("ok/link.pcap"), wrong_ok, 0, 146),
        (lab.join("ikev1/link.pcap"), wrong_v1, 15, 0),
    ];
    for (file, keys, not_decrypted, not_authenticated) in cases {
        let server = start_server(&file, &["--keys", keys.to_str().unwrap()]);
        settle(server.addr);
        let (_, metrics) = get(server.addr, "/metrics", None);
        let stats = &report_with_keys(&file, &keys)["stats"];
        let what = format!("{} with {}", file.display(), keys.display());
        for (event, want) in [
            ("packets_not_decrypted", not_decrypted),
            ("packets_not_authenticated", not_authenticated),
        ] {
            let series = format!("ipsecmon_ipsec_events_total{{event=\"{event}\"}}");
            assert_eq!(sample(&metrics, &series), want as f64, "{what}: {series}");
            assert_eq!(stats[event], want, "{what}: report stats.{event}");
        }
        promtool_check(&metrics);
    }
}

/// Counter and histogram series: they may only go up from one scrape to the next.
fn is_cumulative(series: &str) -> bool {
    let name = series.split('{').next().unwrap_or_default();
    name.ends_with("_total")
        || name.ends_with("_bucket")
        || name.ends_with("_count")
        || name.ends_with("_sum")
}

/// What a paced replay looked like from outside, scrape after scrape.
struct Watched {
    /// Tunnels seen `established` or `rekeying` at some scrape.
    up: BTreeSet<String>,
    /// The frame count of the first scrape at which each of them read `down` afterwards.
    down_after_up: BTreeMap<String, f64>,
    /// The last scrape.
    last: BTreeMap<String, f64>,
    scrapes: usize,
}

/// Scrapes `serve` replaying `file` at `speed` every 100 ms until it has read every frame,
/// asserting at each scrape that no counter or histogram series went down.
fn watch_replay(file: &Path, speed: &str) -> Watched {
    let server = start_server(file, &["--speed", speed]);
    let frames = report_of(file)["frames"].as_f64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut w = Watched {
        up: BTreeSet::new(),
        down_after_up: BTreeMap::new(),
        last: BTreeMap::new(),
        scrapes: 0,
    };
    loop {
        let (_, text) = get(server.addr, "/metrics", None);
        let now = samples(&text);
        let read = now.get("ipsecmon_frames_total").copied().unwrap_or(0.0);
        for (series, v) in &now {
            if let Some(before) = w.last.get(series).filter(|_| is_cumulative(series)) {
                assert!(
                    v >= before,
                    "scrape {}: {series} went from {before} to {v}",
                    w.scrapes
                );
            }
            let tunnel = series
                .split("tunnel=\"")
                .nth(1)
                .and_then(|t| t.split('"').next());
            let (true, Some(t), 1.0) = (series.starts_with("ipsecmon_tunnel_state{"), tunnel, *v)
            else {
                continue;
            };
            if ["established", "rekeying"]
                .iter()
                .any(|s| series.contains(&format!("state=\"{s}\"")))
            {
                w.up.insert(t.to_string());
            }
            if series.contains("state=\"down\"") && w.up.contains(t) {
                w.down_after_up.entry(t.to_string()).or_insert(read);
            }
        }
        w.last = now;
        w.scrapes += 1;
        if read == frames {
            return w;
        }
        assert!(Instant::now() < deadline, "replay never finished");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn rekeys_never_move_counters_back_nor_read_a_tunnel_down() {
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 0);
    let w = watch_replay(&file, "4");
    assert!(
        w.scrapes >= 10,
        "only {} scrapes during the replay",
        w.scrapes
    );
    assert!(
        w.down_after_up.is_empty(),
        "read down after being up: {:?}",
        w.down_after_up
    );
    let rekeys = w.last[r#"ipsecmon_ipsec_events_total{event="rekeys"}"#];
    assert!(
        rekeys >= 12.0,
        "the capture rekeys every tunnel: {rekeys} rekeys"
    );
    let report = report_of(&file);
    let came_up: BTreeSet<String> = report["ike_sas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["established_after_s"].is_null())
        .map(|s| {
            tunnel_key(
                s["initiator"].as_str().unwrap(),
                s["responder"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(w.up, came_up, "every tunnel that came up was seen up");
    assert!(w.up.len() >= 9, "{:?}", w.up);
}

/// The lab's `ok` capture (real strongSwan): two child SAs, a CHILD rekey, an IKE rekey,
/// then the final Delete of the IKE SA at frame 187.
#[test]
fn a_real_child_and_ike_rekey_keep_the_tunnel_up_until_its_delete() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/lab/ok/link.pcap");
    if !file.exists() {
        println!("skipped: fixtures/lab/ok/link.pcap is missing");
        return;
    }
    let w = watch_replay(&file, "2");
    let tunnel = "192.0.2.1<->192.0.2.2";
    assert!(w.scrapes >= 20, "only {} scrapes", w.scrapes);
    assert!(w.up.contains(tunnel), "{:?}", w.up);
    // Down only once the last IKE SA is deleted (frame 187), never across the rekeys.
    let down_at = w.down_after_up.get(tunnel).copied();
    assert!(
        down_at.is_none_or(|f| f >= 187.0),
        "down at frame {down_at:?}"
    );
    let state = |s: &str| {
        w.last[&format!("ipsecmon_tunnel_state{{rule=\"\",state=\"{s}\",tunnel=\"{tunnel}\"}}")]
    };
    assert_eq!(state("down"), 1.0, "deleted at the end");
    let report = report_of(&file);
    let rekeys = w.last[r#"ipsecmon_ipsec_events_total{event="rekeys"}"#];
    assert_eq!(rekeys, report["stats"]["rekeys"].as_f64().unwrap());
    assert!(rekeys >= 2.0, "a CHILD and an IKE rekey: {rekeys}");
    let bytes: u64 = report["esp_sas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(total(&w.last, "ipsecmon_tunnel_bytes_total"), bytes as f64);
    assert_eq!(
        w.last[&format!(
            "ipsecmon_tunnel_establishment_seconds_count{{rule=\"\",tunnel=\"{tunnel}\"}}"
        )],
        1.0
    );
}

/// The metrics' tunnel label of two endpoints: both addresses, sorted, joined by `<->`.
fn tunnel_key(x: &str, y: &str) -> String {
    let host = |e: &str| -> String {
        match e.parse::<SocketAddr>() {
            Ok(a) => a.ip().to_string(),
            Err(_) => e.to_string(),
        }
    };
    let (x, y) = (host(x), host(y));
    if x <= y {
        format!("{x}<->{y}")
    } else {
        format!("{y}<->{x}")
    }
}

fn promtool_check(metrics: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        println!("skipped promtool check: promtool not installed");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_policy_gives_its_tunnels_series_and_rule_labels() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let policy = root.join("examples/alice.toml");
    let policy = policy.to_str().unwrap();
    let args = ["--policy", policy, "--local", "192.0.2.1"];
    // Cleartext only: both of Alice's tunnels are configured and down, at zero.
    let quiet = root.join("fixtures/policy/abczz.pcap");
    let server = start_server(&quiet, &args);
    settle(server.addr);
    let (_, text) = get(server.addr, "/metrics", None);
    let all = samples(&text);
    for (rule, peer) in [
        ("Abczz with Bob", "192.0.2.2"),
        ("SIP with Eve", "192.0.2.3"),
    ] {
        let t = format!("rule=\"{rule}\",tunnel=\"192.0.2.1<->{peer}\"");
        let state = |s: &str| {
            all[&format!("ipsecmon_tunnel_state{{rule=\"{rule}\",state=\"{s}\",tunnel=\"192.0.2.1<->{peer}\"}}")]
        };
        assert_eq!(state("down"), 1.0, "{rule}");
        assert_eq!(state("established"), 0.0, "{rule}");
        let out = format!("ipsecmon_tunnel_bytes_total{{direction=\"192.0.2.1->{peer}\",{t}}}");
        assert_eq!(all[&out], 0.0, "{out}");
    }
    assert_eq!(
        all[r#"ipsecmon_findings{code="cleartext-violation",severity="error"}"#],
        2.0
    );
    drop(server);
    let Some(demo) = capture().filter(|p| p.ends_with("demo.pcap")) else {
        println!("skipped the demo half: fixtures/demo/demo.pcap is missing");
        return;
    };
    // The demo: Bob's tunnel up under its rule, Eve's down after two failures.
    let server = start_server(&demo, &args);
    settle(server.addr);
    let (_, text) = get(server.addr, "/metrics", None);
    let all = samples(&text);
    let bob = r#"rule="Abczz with Bob",state="established",tunnel="192.0.2.1<->192.0.2.2""#;
    let eve = r#"rule="SIP with Eve",state="down",tunnel="192.0.2.1<->192.0.2.3""#;
    assert_eq!(all[&format!("ipsecmon_tunnel_state{{{bob}}}")], 1.0);
    assert_eq!(all[&format!("ipsecmon_tunnel_state{{{eve}}}")], 1.0);
    let failed = r#"ipsecmon_tunnel_negotiation_failures_total{code="auth-failed",rule="SIP with Eve",tunnel="192.0.2.1<->192.0.2.3"}"#;
    assert_eq!(all[failed], 2.0);
    let sent = r#"ipsecmon_tunnel_bytes_total{direction="192.0.2.1->192.0.2.2",rule="Abczz with Bob",tunnel="192.0.2.1<->192.0.2.2"}"#;
    assert_eq!(all[sent], 16192.0);
}

#[test]
fn bearer_token_guards_everything_but_health() {
    let Some(file) = capture() else {
        println!("skipped: no capture available");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let server = start_server(&file, &["--token-file", token_file.to_str().unwrap()]);
    assert_eq!(get(server.addr, "/metrics", None).0, 401);
    assert_eq!(get(server.addr, "/metrics", Some("wrong")).0, 401);
    assert_eq!(get(server.addr, "/metrics", Some("s3cret-token")).0, 200);
    assert_eq!(get(server.addr, "/api/v1/sas", Some("s3cret-token")).0, 200);
    assert_eq!(get(server.addr, "/healthz", None).0, 200);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real Prometheus on loopback, killed on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(target: SocketAddr) -> Option<Prometheus> {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ipsecmon\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let prom = Prometheus {
        child,
        addr,
        _dir: dir,
    };
    // Ready, and past its first attempt at the target (Prometheus hands new targets to
    // its scrape loops only every few seconds).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let targets = try_get(addr, "/api/v1/targets", None).unwrap_or_default().1;
        let tried =
            targets.contains("\"lastScrape\":\"") && !targets.contains("\"lastScrape\":\"0001-");
        if tried {
            return Some(prom);
        }
        assert!(
            Instant::now() < deadline,
            "prometheus never tried its target"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn escape(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn query(prom: SocketAddr, expr: &str) -> serde_json::Value {
    let (status, body) = get(prom, &format!("/api/v1/query?query={}", escape(expr)), None);
    assert_eq!(status, 200, "{expr}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The values of an instant query's samples (NaN for "NaN").
fn values(result: &serde_json::Value) -> Vec<f64> {
    result["data"]["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|s| s["value"][1].as_str())
                .map(|v| v.parse().unwrap_or(f64::NAN))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until Prometheus has scraped ipsecmon and the replay has reached its last frame,
/// plus two more scrapes.
fn wait_for_replay(prom: SocketAddr, server: SocketAddr, frames: f64) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let scraped = values(&query(prom, "ipsecmon_frames_total"));
        let (_, health) = get(server, "/healthz", None);
        let read_all = health.contains(&format!("\"frames\":{frames}"));
        if read_all && scraped.first() == Some(&frames) {
            std::thread::sleep(Duration::from_secs(2));
            return;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus never saw the whole replay"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The PromQL of every panel target and of every query variable of a dashboard.
fn dashboard_queries(dash: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let title = panel["title"].as_str().unwrap_or_default().to_string();
            out.push((title, target["expr"].as_str().unwrap().to_string()));
        }
    }
    out
}

#[test]
fn every_dashboard_expression_returns_data_in_prometheus() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: prometheus not installed (Debian package prometheus)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 5);
    let frames = report_of(&file)["frames"].as_f64().unwrap();
    // Prometheus first, then the server at twice the recorded pace: its first scrape falls
    // in the silent lead-in, so every tunnel's series start at zero and the rates over the
    // run are those of the capture.
    let target: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let prom = start_prometheus(target).expect("start prometheus");
    let listen = target.to_string();
    let server = start_server(&file, &["--speed", "2", "--listen", &listen]);
    wait_for_replay(prom.addr, server.addr, frames);
    let tunnel = tunnel_with_everything(prom.addr);
    let dashboards = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut checked = 0;
    for name in ["ipsecmon-overview.json", "ipsecmon-tunnel.json"] {
        let dash: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dashboards.join(name)).unwrap()).unwrap();
        check_variables(prom.addr, &dash, &tunnel);
        for (title, raw) in dashboard_queries(&dash) {
            let expr = raw
                .replace("$__rate_interval", "1m")
                .replace("$tunnel", &tunnel);
            assert!(
                !expr.contains('$'),
                "{name} / {title}: unsubstituted {expr}"
            );
            let result = query(prom.addr, &expr);
            assert_eq!(result["status"], "success", "{name} / {title}: {expr}");
            let v = values(&result);
            assert!(
                v.iter().any(|x| !x.is_nan()),
                "{name} / {title}: no data for {expr}: {result}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} expressions");
}

/// A tunnel that came up after Prometheus's first scrape and carried ESP both ways.
fn tunnel_with_everything(prom: SocketAddr) -> String {
    let expr = "sum by (tunnel) (increase(ipsecmon_tunnel_establishment_seconds_count[1m])) > 0 \
                and on (tunnel) (sum by (tunnel) (increase(ipsecmon_tunnel_bytes_total[1m])) > 0)";
    let result = query(prom, expr);
    result["data"]["result"][0]["metric"]["tunnel"]
        .as_str()
        .unwrap_or_else(|| panic!("no tunnel came up with traffic: {result}"))
        .to_string()
}

/// The dashboard's query variables (the tunnel picker) list `tunnel` among their values.
fn check_variables(prom: SocketAddr, dash: &serde_json::Value, tunnel: &str) {
    for var in dash["templating"]["list"].as_array().unwrap() {
        assert_eq!(
            var["datasource"]["uid"].as_str().unwrap_or("${datasource}"),
            "${datasource}"
        );
        if var["type"] != "query" {
            continue;
        }
        let def = var["definition"].as_str().unwrap();
        let inner = def
            .strip_prefix("label_values(")
            .and_then(|d| d.strip_suffix(')'))
            .unwrap_or_else(|| panic!("unexpected variable query {def}"));
        let (metric, label) = inner.split_once(", ").unwrap();
        let path = format!("/api/v1/label/{label}/values?match[]={}", escape(metric));
        let (status, body) = get(prom, &path, None);
        assert_eq!(status, 200, "{def}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let names: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x.as_str())
            .collect();
        assert!(
            names.contains(&tunnel),
            "{def} lists {names:?}, not {tunnel}"
        );
    }
}
