//! The real binary on a live interface in network namespaces this test creates (and
//! removes, even on failure): `serve` survives its interface being deleted and created
//! again while scrapers hammer it; SIGINT and SIGTERM flush the final output of
//! `diagnose -i`, the `--json` view and `serve`; and both ways of running without root
//! work: `--user` after opening the capture, and an unprivileged user holding only
//! CAP_NET_RAW (which can also reopen the interface). Skips with a message when not root
//! or without `ip netns`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "common/veth.rs"]
mod veth;
use veth::{in_ns, Pair};

const BIN: &str = env!("CARGO_BIN_EXE_ipsecmon");

fn skip() -> bool {
    !veth::netns_or_skip("the live resilience tests")
}

/// The two ends' addresses; each end gets its `/30` whenever the link is made.
const ADDRS: [&str; 2] = ["10.231.78.1", "10.231.78.2"];

/// The veth pair of one test, addressed with [`ADDRS`].
fn pair(tag: &str) -> Pair {
    let [a, b] = ADDRS.map(|addr| format!("{addr}/30"));
    Pair::create("rel", "r", tag, [Some(&a), Some(&b)])
}

/// `n` UDP datagrams from B to A on port 500 (what the default filter captures), after
/// one to port 9 that gets the neighbour resolved (the kernel keeps few datagrams while
/// it waits for ARP).
fn send(pair: &Pair, n: usize) {
    in_ns(&pair.ns[1], move || {
        let sock = UdpSocket::bind((ADDRS[1], 500)).unwrap();
        let warm = UdpSocket::bind((ADDRS[1], 0)).unwrap();
        warm.send_to(b"arp", (ADDRS[0], 9)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        for i in 0..n {
            sock.send_to(format!("datagram {i}").as_bytes(), (ADDRS[0], 500))
                .unwrap();
        }
    });
}

/// A minimal HTTP/1.0 GET: (status, body).
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    Ok((status, body.unwrap_or_default()))
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(-1.0)
}

/// A running ipsecmon inside namespace A, with its stderr collected.
struct Running {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    addr: Option<SocketAddr>,
}

impl Running {
    fn start(ns: &str, prefix: &[&str], args: &[&str]) -> Running {
        // At info level ipsecmon says when its capture is open, which `start` waits for.
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(prefix)
            .args(args)
            .env("IPSECMON_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(rest) = line.split("serving http://").nth(1) {
                    let _ = tx.send(rest.trim_end_matches("/metrics").parse().ok());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let serving = args.contains(&"serve");
        let addr = serving.then(|| rx.recv_timeout(Duration::from_secs(20)).unwrap().unwrap());
        let run = Running {
            child,
            stderr,
            addr,
        };
        run.wait_for_capture();
        run
    }

    /// Waits until the capture is open, so that the traffic a test sends next is seen
    /// however long a loaded machine takes to start the process.
    fn wait_for_capture(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.log().iter().any(|l| l.contains("live capture opened")) {
            assert!(
                Instant::now() < deadline,
                "no capture opened: {:?}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: a signal to our own child process.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// Waits for the exit (at most 20 s); returns the exit code and stdout.
    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "did not exit: {:?}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        (self.child.wait().unwrap().code(), out)
    }

    fn log(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    fn proc_status(&self, field: &str) -> String {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = text.lines().find(|l| l.starts_with(field)).unwrap();
        line[field.len()..]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls /metrics in namespace `ns` until `name` reaches `at_least` (at most 15 s).
fn wait_metric(ns: &str, addr: SocketAddr, name: &'static str, at_least: f64) -> f64 {
    in_ns(ns, move || {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let v = get(addr, "/metrics").map_or(-1.0, |(_, b)| metric(&b, name));
            if v >= at_least || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

/// Only the test's own datagrams: the kernel's IPv6 and ARP chatter on a fresh link would
/// make frame counts vary.
const FILTER: &str = "udp port 500";

fn serve_args(link: &str) -> Vec<String> {
    let args = [
        "--log",
        "info",
        "serve",
        "-i",
        link,
        "--filter",
        FILTER,
        "--listen",
        "127.0.0.1:0",
        "--refresh",
        "0.2",
    ];
    args.map(String::from).to_vec()
}

#[test]
fn serve_reopens_a_vanished_interface_while_scrapers_keep_getting_answers() {
    if skip() {
        return;
    }
    let pair = pair("flap");
    let args = serve_args(&pair.links[0]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let serve = Running::start(&pair.ns[0], &[BIN], &args);
    let addr = serve.addr.unwrap();
    send(&pair, 20);
    assert_eq!(
        wait_metric(&pair.ns[0], addr, "ipsecmon_frames_total", 20.0),
        20.0
    );

    // Four scrapers, two on /metrics and two on the report, for the whole flap.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let scrapers: Vec<_> = ["/metrics", "/api/v1/report", "/metrics", "/api/v1/sas"]
        .into_iter()
        .map(|path| {
            let (stop, ok, bad, ns) = (stop.clone(), ok.clone(), bad.clone(), pair.ns[0].clone());
            std::thread::spawn(move || {
                in_ns(&ns, move || {
                    while !stop.load(Ordering::Relaxed) {
                        match get(addr, path) {
                            Ok((200, body)) if !body.is_empty() => {
                                ok.fetch_add(1, Ordering::Relaxed)
                            }
                            _ => bad.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                })
            })
        })
        .collect();

    pair.link_down();
    std::thread::sleep(Duration::from_millis(1500));
    pair.link_up();
    assert_eq!(
        wait_metric(&pair.ns[0], addr, "ipsecmon_capture_reopens_total", 1.0),
        1.0
    );
    send(&pair, 20);
    assert_eq!(
        wait_metric(&pair.ns[0], addr, "ipsecmon_frames_total", 40.0),
        40.0
    );
    stop.store(true, Ordering::Relaxed);
    for s in scrapers {
        s.join().unwrap();
    }
    assert_eq!(bad.load(Ordering::Relaxed), 0, "failed scrapes");
    assert!(ok.load(Ordering::Relaxed) > 20, "scrapes answered: {ok:?}");

    serve.signal(libc::SIGTERM);
    let log = serve.log();
    let (code, _) = serve.finish();
    assert_eq!(code, Some(0));
    let said = |what: &str| log.iter().any(|l| l.contains(what));
    assert!(said("capture interface went away"), "{log:?}");
    assert!(said("capture interface reopened"), "{log:?}");
}

/// An IKEv2 IKE_SA_INIT request header (RFC 7296 §3.1) with no payloads.
fn sa_init() -> Vec<u8> {
    let mut m = 0x0102_0304_0506_0708u64.to_be_bytes().to_vec();
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&[0, 0x20, 34, 0x08, 0, 0, 0, 0, 0, 0, 0, 28]);
    m
}

#[test]
fn sigint_makes_live_diagnose_judge_and_print_what_it_saw() {
    if skip() {
        return;
    }
    let pair = pair("int");
    let link = pair.links[0].clone();
    let run = Running::start(
        &pair.ns[0],
        &[BIN],
        &["diagnose", "-i", &link, "--filter", FILTER, "--json"],
    );
    std::thread::sleep(Duration::from_millis(700));
    // The same request three times and no answer: a peer that cannot be reached.
    in_ns(&pair.ns[1], || {
        let sock = UdpSocket::bind((ADDRS[1], 500)).unwrap();
        let warm = UdpSocket::bind((ADDRS[1], 0)).unwrap();
        warm.send_to(b"arp", (ADDRS[0], 9)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        for _ in 0..3 {
            sock.send_to(&sa_init(), (ADDRS[0], 500)).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    std::thread::sleep(Duration::from_millis(700));
    run.signal(libc::SIGINT);
    let (code, out) = run.finish();
    let doc: serde_json::Value = serde_json::from_str(&out).expect("the findings document");
    assert_eq!(doc["schema"], 1);
    let codes: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["peer-unreachable"]);
    assert_eq!(code, Some(1), "an error finding");
}

#[test]
fn sigterm_makes_the_json_view_print_its_final_snapshot() {
    if skip() {
        return;
    }
    let pair = pair("term");
    let link = pair.links[0].clone();
    let run = Running::start(
        &pair.ns[0],
        &[BIN],
        &["--json", "--refresh", "60", "--filter", FILTER, "-i", &link],
    );
    std::thread::sleep(Duration::from_millis(700));
    send(&pair, 7);
    std::thread::sleep(Duration::from_millis(500));
    run.signal(libc::SIGTERM);
    let (code, out) = run.finish();
    assert_eq!(code, Some(0));
    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["schema"], 1);
    assert_eq!(last["report"]["frames"], 7);
}

#[test]
fn user_drops_root_after_opening_the_capture() {
    if skip() {
        return;
    }
    let pair = pair("user");
    let mut args = serve_args(&pair.links[0]);
    args.extend(["--user".to_string(), "nobody".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let serve = Running::start(&pair.ns[0], &[BIN], &args);
    let addr = serve.addr.unwrap();
    assert_eq!(serve.proc_status("Uid:"), "65534 65534 65534 65534");
    assert_eq!(serve.proc_status("Gid:"), "65534 65534 65534 65534");
    assert_eq!(serve.proc_status("CapEff:"), "0000000000000000");
    assert_eq!(serve.proc_status("CapPrm:"), "0000000000000000");
    send(&pair, 5);
    let got = wait_metric(&pair.ns[0], addr, "ipsecmon_frames_total", 5.0);
    assert_eq!(got, 5.0, "{:?}", serve.log());
    serve.signal(libc::SIGTERM);
    assert_eq!(serve.finish().0, Some(0));
}

#[test]
fn only_cap_net_raw_is_enough_to_capture_and_to_reopen() {
    if skip() {
        return;
    }
    if !veth::tool_or_skip("the CAP_NET_RAW test", "setcap", "libcap2-bin") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("ipsecmon");
    std::fs::copy(BIN, &bin).unwrap();
    let world = |p: &std::path::Path, mode| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    world(dir.path(), 0o755);
    world(&bin, 0o755);
    let bin_s = bin.to_str().unwrap();
    let set = Command::new("setcap")
        .args(["cap_net_raw=ep", bin_s])
        .output()
        .unwrap();
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );

    let pair = pair("cap");
    let args = serve_args(&pair.links[0]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let prefix = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        bin_s,
    ];
    let serve = Running::start(&pair.ns[0], &prefix, &args);
    let addr = serve.addr.unwrap();
    assert_eq!(serve.proc_status("Uid:"), "65534 65534 65534 65534");
    // Bit 13 is CAP_NET_RAW, and nothing else.
    assert_eq!(serve.proc_status("CapEff:"), "0000000000002000");
    send(&pair, 5);
    assert_eq!(
        wait_metric(&pair.ns[0], addr, "ipsecmon_frames_total", 5.0),
        5.0
    );
    pair.link_down();
    std::thread::sleep(Duration::from_millis(1200));
    pair.link_up();
    assert_eq!(
        wait_metric(&pair.ns[0], addr, "ipsecmon_capture_reopens_total", 1.0),
        1.0
    );
    send(&pair, 5);
    assert_eq!(
        wait_metric(&pair.ns[0], addr, "ipsecmon_frames_total", 10.0),
        10.0
    );
    serve.signal(libc::SIGINT);
    assert_eq!(serve.finish().0, Some(0));
}
