//! The seed's workload, run from inside the lab's namespaces only: Alice connects to Bob's
//! Abczz ports (TCP 6667 and 6668) and sends lines that Bob echoes, so protected data flows
//! both ways; and each host pings the other (in clear: no filter covers ICMP).
//!
//! The sockets are opened by threads that entered the hosts' network namespaces, so no
//! packet of the workload can reach any address outside them.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::state::State;
use super::sys::{enter_netns, output};
use super::LabError;

/// The seed's Abczz ports (RFC 1459's IRC ports, as the seed notes).
pub const ABCZZ_PORTS: [u16; 2] = [6667, 6668];

/// How much traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrafficOptions {
    /// Lines sent on each connection.
    pub lines: u32,
    /// Pause between lines.
    pub interval: Duration,
    /// Pings each way (0 for none).
    pub pings: u32,
    /// How long a connect or an echo may take.
    pub timeout: Duration,
}

impl Default for TrafficOptions {
    fn default() -> Self {
        TrafficOptions {
            lines: 5,
            interval: Duration::from_millis(200),
            pings: 3,
            timeout: Duration::from_secs(3),
        }
    }
}

/// One TCP connection of the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpResult {
    /// Where Alice connected.
    pub to: SocketAddr,
    /// Lines sent.
    pub sent: u32,
    /// Lines that came back.
    pub echoed: u32,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// One ping run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingResult {
    /// The pinging host.
    pub from: String,
    /// The address pinged.
    pub to: IpAddr,
    /// Echo requests sent.
    pub sent: u32,
    /// Replies received.
    pub received: u32,
}

/// What the workload achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficReport {
    /// The TCP connections.
    pub tcp: Vec<TcpResult>,
    /// The pings.
    pub pings: Vec<PingResult>,
}

impl TrafficReport {
    /// Whether every line came back on every connection.
    pub fn all_echoed(&self) -> bool {
        self.tcp
            .iter()
            .all(|t| t.error.is_none() && t.echoed == t.sent)
    }
}

/// Runs the workload between the lab's Alice and Bob.
pub fn run(state: &State, opts: &TrafficOptions) -> Result<TrafficReport, LabError> {
    let (Some(alice), Some(bob)) = (state.host("alice"), state.host("bob")) else {
        return Err(LabError::NotUp {
            dir: state.dir.clone(),
        });
    };
    let stop = AtomicBool::new(false);
    let mut report = TrafficReport::default();
    std::thread::scope(|s| -> Result<(), LabError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let server = s.spawn(|| echo_server(&bob.netns, &stop, ready_tx, opts.timeout));
        ready_rx
            .recv()
            .unwrap_or_else(|_| Err("the echo server stopped".into()))
            .map_err(|e| LabError::Command {
                command: format!("echo server in {}", bob.netns),
                output: e,
            })?;
        let clients: Vec<_> = ABCZZ_PORTS
            .iter()
            .map(|&port| {
                let to = SocketAddr::new(bob.reachable_at, port);
                s.spawn(move || chat(&alice.netns, to, opts))
            })
            .collect();
        for c in clients {
            report.tcp.push(c.join().unwrap_or_else(|_| TcpResult {
                to: SocketAddr::new(bob.reachable_at, 0),
                sent: 0,
                echoed: 0,
                error: Some("the client thread panicked".into()),
            }));
        }
        stop.store(true, Ordering::Relaxed);
        let _ = server.join();
        Ok(())
    })?;
    if opts.pings > 0 {
        report
            .pings
            .push(ping(&alice.netns, "alice", bob.reachable_at, opts.pings));
        report
            .pings
            .push(ping(&bob.netns, "bob", alice.reachable_at, opts.pings));
    }
    Ok(report)
}

/// Bob's side: echoes every line on 6667 and 6668 until `stop`.
fn echo_server(
    netns: &str,
    stop: &AtomicBool,
    ready: mpsc::Sender<Result<(), String>>,
    timeout: Duration,
) {
    let listeners = enter_netns(netns)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            ABCZZ_PORTS
                .iter()
                .map(|p| bind(*p).map_err(|e| format!("port {p}: {e}")))
                .collect::<Result<Vec<_>, _>>()
        });
    let listeners = match listeners {
        Ok(l) => {
            let _ = ready.send(Ok(()));
            l
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    std::thread::scope(|s| {
        while !stop.load(Ordering::Relaxed) {
            for l in &listeners {
                if let Ok((conn, _)) = l.accept() {
                    s.spawn(move || echo(conn, timeout, stop));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

fn bind(port: u16) -> std::io::Result<TcpListener> {
    let l = TcpListener::bind(("0.0.0.0", port))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

fn echo(conn: TcpStream, timeout: Duration, stop: &AtomicBool) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(timeout));
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut lines = BufReader::new(conn);
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        line.clear();
        match lines.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if out.write_all(line.as_bytes()).is_err() {
                    return;
                }
            }
        }
    }
}

/// Alice's side of one connection: `lines` lines, each waited for.
fn chat(netns: &str, to: SocketAddr, opts: &TrafficOptions) -> TcpResult {
    let mut result = TcpResult {
        to,
        sent: 0,
        echoed: 0,
        error: None,
    };
    if let Err(e) = enter_netns(netns) {
        result.error = Some(e.to_string());
        return result;
    }
    let conn = match TcpStream::connect_timeout(&to, opts.timeout) {
        Ok(c) => c,
        Err(e) => {
            result.error = Some(format!("connect: {e}"));
            return result;
        }
    };
    let _ = conn.set_read_timeout(Some(opts.timeout));
    let Ok(mut out) = conn.try_clone() else {
        result.error = Some("cannot clone the socket".into());
        return result;
    };
    let mut replies = BufReader::new(conn);
    for n in 0..opts.lines {
        let line = format!("PRIVMSG #abczz :hello {n}\r\n");
        if let Err(e) = out.write_all(line.as_bytes()) {
            result.error = Some(format!("send: {e}"));
            break;
        }
        result.sent += 1;
        let mut back = String::new();
        match replies.read_line(&mut back) {
            Ok(_) if back == line => result.echoed += 1,
            Ok(_) => {
                result.error = Some("the echo differs from the line sent".into());
                break;
            }
            Err(e) => {
                result.error = Some(format!("no echo: {e}"));
                break;
            }
        }
        std::thread::sleep(opts.interval);
    }
    result
}

/// `ping -c N` from a host; counts from ping's summary line.
fn ping(netns: &str, from: &str, to: IpAddr, count: u32) -> PingResult {
    let (n, to_s) = (count.to_string(), to.to_string());
    let args = [
        "netns", "exec", netns, "ping", "-n", "-q", "-c", &n, "-i", "0.2", "-W", "1", &to_s,
    ];
    // ping exits 1 when replies are missing; its summary is on stdout either way.
    let text = output("ip", &args).map(|(_, t)| t).unwrap_or_default();
    let (sent, received) = ping_counts(&text).unwrap_or((count, 0));
    PingResult {
        from: from.into(),
        to,
        sent,
        received,
    }
}

/// `3 packets transmitted, 2 received, …` → (3, 2).
fn ping_counts(text: &str) -> Option<(u32, u32)> {
    let line = text
        .lines()
        .find(|l| l.contains(" packets transmitted, "))?;
    let mut nums = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().ok());
    Some((nums.next()??, nums.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_summaries_are_counted() {
        let text = "--- 192.0.2.2 ping statistics ---\n3 packets transmitted, 2 received, 33.3333% packet loss, time 402ms\n";
        assert_eq!(ping_counts(text), Some((3, 2)));
        assert_eq!(ping_counts("ping: connect: Network is unreachable"), None);
    }

    #[test]
    fn a_report_is_good_only_when_every_line_came_back() {
        let ok = TcpResult {
            to: "192.0.2.2:6667".parse().unwrap(),
            sent: 5,
            echoed: 5,
            error: None,
        };
        let mut report = TrafficReport {
            tcp: vec![ok.clone()],
            pings: Vec::new(),
        };
        assert!(report.all_echoed());
        report.tcp.push(TcpResult {
            echoed: 0,
            error: Some("connect: timed out".into()),
            ..ok
        });
        assert!(!report.all_echoed());
    }
}
