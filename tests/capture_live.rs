//! Live capture on a veth pair between two network namespaces this test creates (and
//! removes afterwards, even on failure), and the privilege drop. Skips with a message when
//! not root or when `ip netns` is unavailable.

use std::net::UdpSocket;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ipsecmon::capture::{drop_privileges, open_live, FrameSource, LiveOptions};
use ipsecmon::wire::LinkType;

const DATAGRAMS: usize = 5;

#[path = "common/veth.rs"]
mod veth;
use veth::{enter, is_root, Pair};

/// The two ends' addresses, near (capturing) end first.
const ADDRS: [&str; 2] = ["10.231.77.1", "10.231.77.2"];

/// Captures in namespace A until every payload was seen or five seconds passed; returns
/// how many of the payloads were seen and libpcap's received count.
fn capture(ns: String, link: String, ready: mpsc::Sender<()>) -> Result<(usize, u64), String> {
    enter(&ns)?;
    let opts = LiveOptions {
        timeout_ms: 100,
        ..LiveOptions::default()
    };
    let mut src = open_live(&link, Some("udp port 500"), &opts).map_err(|e| e.to_string())?;
    ready.send(()).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = [false; DATAGRAMS];
    let mut last_number = 0;
    while Instant::now() < deadline && !seen.iter().all(|s| *s) {
        let Some(f) = src.next_frame().map_err(|e| e.to_string())? else {
            continue;
        };
        assert_eq!(f.link, LinkType::Ethernet);
        assert!(f.number > last_number && f.ts.0 > 0);
        last_number = f.number;
        for (i, s) in seen.iter_mut().enumerate() {
            *s |= f.data.ends_with(payload(i).as_bytes());
        }
    }
    src.refresh_stats();
    Ok((seen.iter().filter(|s| **s).count(), src.stats().received))
}

fn payload(i: usize) -> String {
    format!("ipsecmon capture test datagram {i}")
}

fn send(ns: &str, from: &str, to: &str) -> Result<(), String> {
    enter(ns)?;
    let sock = UdpSocket::bind((from, 500)).map_err(|e| e.to_string())?;
    for i in 0..DATAGRAMS {
        sock.send_to(payload(i).as_bytes(), (to, 500))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[test]
fn live_capture_sees_udp_500_on_a_veth_pair() {
    if !veth::netns_or_skip("the live capture test") {
        return;
    }
    let [a, b] = ADDRS.map(|addr| format!("{addr}/30"));
    let pair = Pair::create("cap", "ipcap", "", [Some(&a), Some(&b)]);
    let (tx, rx) = mpsc::channel();
    let (ns, link) = (pair.ns[0].clone(), pair.links[0].clone());
    let catcher = std::thread::spawn(move || capture(ns, link, tx));
    rx.recv_timeout(Duration::from_secs(5))
        .expect("capture opened");
    let (ns_b, from, to) = (pair.ns[1].clone(), ADDRS[1], ADDRS[0]);
    std::thread::spawn(move || send(&ns_b, from, to))
        .join()
        .unwrap()
        .unwrap();
    let (seen, received) = catcher.join().unwrap().unwrap();
    assert_eq!(seen, DATAGRAMS, "every datagram captured");
    assert!(received >= DATAGRAMS as u64, "libpcap counted {received}");
}

/// The child half of `dropping_privileges_forbids_capture`: runs only when that test
/// starts this binary with `IPSECMON_DROP_CHILD` set.
#[test]
#[ignore = "run by dropping_privileges_forbids_capture in a child process"]
fn drop_privileges_child() {
    if std::env::var_os("IPSECMON_DROP_CHILD").is_none() {
        println!("skipped: runs only as the child of dropping_privileges_forbids_capture");
        return;
    }
    drop_privileges("nobody").expect("drop to nobody");
    // SAFETY: get*id cannot fail.
    assert_ne!(unsafe { libc::geteuid() }, 0);
    let err = open_live("lo", None, &LiveOptions::default()).expect_err("capture after the drop");
    let text = err.to_string();
    assert!(
        text.starts_with("lo: ") && text.contains("setcap cap_net_raw,cap_net_admin=eip"),
        "{text}"
    );
}

#[test]
fn dropping_privileges_forbids_capture() {
    if !is_root() {
        println!("skipped: dropping privileges needs root");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--exact",
            "drop_privileges_child",
            "--ignored",
            "--nocapture",
        ])
        .env("IPSECMON_DROP_CHILD", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
