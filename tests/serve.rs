//! `ipsecmon serve` end to end: a real server replaying a capture, scraped over loopback,
//! checked by promtool, compared with `report --json`, and scraped by a real Prometheus
//! that evaluates every dashboard expression.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

fn start_server(file: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .args([
            "--log",
            "info",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--refresh",
            "0.2",
            "-r",
        ])
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
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split(' ').nth(1).unwrap().parse().unwrap();
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, dechunk(body))
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

#[test]
fn metrics_match_the_report_and_pass_promtool() {
    let Some(file) = capture() else {
        println!("skipped: no capture available (no fixtures and no ../shared)");
        return;
    };
    let server = start_server(&file, &[]);
    settle(server.addr);
    let (status, metrics) = get(server.addr, "/metrics", None);
    assert_eq!(status, 200);
    let report = Command::new(BIN)
        .args(["report", "--json"])
        .arg(&file)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(
        sample(&metrics, "ipsecmon_frames_total"),
        report["frames"].as_f64().unwrap()
    );
    let stats = &report["stats"];
    assert_eq!(
        sample(&metrics, r#"ipsecmon_ipsec_associations{kind="active"}"#),
        stats["active_associations"].as_f64().unwrap()
    );
    assert_eq!(
        sample(
            &metrics,
            r#"ipsecmon_protected_bytes_total{direction="sent",protection="confidential"}"#
        ),
        stats["confidential_bytes_sent"].as_f64().unwrap()
    );
    assert_eq!(
        sample(
            &metrics,
            r#"ipsecmon_ipsec_events_total{event="main_modes"}"#
        ),
        stats["main_modes"].as_f64().unwrap()
    );
    let established = report["ike_sas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "established")
        .count();
    assert_eq!(
        sample(&metrics, r#"ipsecmon_ike_sas{state="established"}"#),
        established as f64
    );
    promtool_check(&metrics);

    let (_, sas) = get(server.addr, "/api/v1/sas", None);
    let sas: serde_json::Value = serde_json::from_str(&sas).unwrap();
    assert_eq!(sas["schema"], 1);
    assert_eq!(sas["ike_sas"], report["ike_sas"]);
    let (_, findings) = get(server.addr, "/api/v1/findings", None);
    let findings: serde_json::Value = serde_json::from_str(&findings).unwrap();
    assert!(findings["findings"].is_array());
    assert_eq!(get(server.addr, "/nothing", None).0, 404);
    assert_eq!(get(server.addr, "/healthz", None).0, 200);
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
    Some(Prometheus {
        child,
        addr,
        _dir: dir,
    })
}

fn query(prom: SocketAddr, expr: &str) -> serde_json::Value {
    let q: String = expr
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (status, body) = get(prom, &format!("/api/v1/query?query={q}"), None);
    assert_eq!(status, 200, "{expr}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn every_dashboard_expression_returns_data_in_prometheus() {
    let Some(file) = capture() else {
        println!("skipped: no capture available");
        return;
    };
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: prometheus not installed (Debian package prometheus)");
        return;
    }
    let server = start_server(&file, &[]);
    settle(server.addr);
    let prom = start_prometheus(server.addr).expect("start prometheus");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = std::panic::catch_unwind(|| query(prom.addr, "up")).ok();
        let ready = up
            .as_ref()
            .and_then(|v| v["data"]["result"][0]["value"][1].as_str())
            == Some("1");
        let samples = ready && {
            let r = query(prom.addr, "count_over_time(ipsecmon_frames_total[1m])");
            r["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                >= Some(5.0)
        };
        if samples {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus never scraped ipsecmon"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The per-tunnel dashboard is checked on a tunnel that carried protected traffic, when
    // the capture has one.
    let with_traffic = query(prom.addr, "ipsecmon_tunnel_packets_total > 0");
    let traffic = with_traffic["data"]["result"]
        .as_array()
        .is_some_and(|r| !r.is_empty());
    let source = if traffic {
        with_traffic
    } else {
        query(prom.addr, "ipsecmon_tunnel_state")
    };
    let tunnel = source["data"]["result"][0]["metric"]["tunnel"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let (_, findings) = get(server.addr, "/api/v1/findings", None);
    let no_findings = findings.contains("\"findings\":[]");
    let dashboards = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    for name in ["ipsecmon-overview.json", "ipsecmon-tunnel.json"] {
        let dash: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dashboards.join(name)).unwrap()).unwrap();
        for panel in dash["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let raw = target["expr"].as_str().unwrap();
                let expr = raw
                    .replace("$__rate_interval", "30s")
                    .replace("$tunnel", &tunnel);
                if no_findings && expr.contains("ipsecmon_findings") {
                    println!("{name}: `{expr}` not checked: this capture has no findings");
                    continue;
                }
                if !traffic && raw.contains("ipsecmon_tunnel_") && raw.contains("$tunnel") {
                    println!("{name}: `{expr}` not checked: this capture has no ESP");
                    continue;
                }
                let result = query(prom.addr, &expr);
                assert_eq!(
                    result["status"], "success",
                    "{name} / {}: {expr}",
                    panel["title"]
                );
                let data = result["data"]["result"].as_array().unwrap();
                assert!(
                    !data.is_empty(),
                    "{name} / {}: no data for {expr}",
                    panel["title"]
                );
            }
        }
    }
}
