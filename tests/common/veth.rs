//! Two network namespaces joined by a veth pair, made by a live test that sends traffic into
//! the far end and runs ipsecmon (or a capture) on the near one; removed when dropped, even
//! on failure. Also the checks such a test makes before it starts (root, `ip netns`, the
//! tools and the demo capture), each printing what is missing when it skips, and a way to
//! run code inside one of the namespaces. Included with
//! `#[path = "common/veth.rs"] mod veth;` by the tests that need it.

// Each test binary that includes this file uses only part of it.
#![allow(dead_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The two namespaces and their ends of the link: index 0 is the near (capturing) end.
pub struct Pair {
    pub ns: [String; 2],
    pub links: [String; 2],
    /// The address (`ip/len`) each end gets whenever the link is made.
    addrs: [Option<String>; 2],
}

/// Runs `cmd args`; the error names the command and what it printed.
pub fn run(cmd: &str, args: &[&str]) -> Result<std::process::Output, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        return Ok(out);
    }
    Err(format!(
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `what` (a test's name for itself) can make network namespaces here: root and a
/// working `ip netns`. Prints which of the two is missing when not.
pub fn netns_or_skip(what: &str) -> bool {
    if !is_root() {
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() };
        println!("skipped: {what}: needs root to make network namespaces (running as uid {uid})");
        return false;
    }
    if let Err(e) = run("ip", &["netns", "list"]) {
        println!("skipped: {what}: needs `ip netns` (Debian package iproute2): {e}");
        return false;
    }
    true
}

/// Whether the command `tool` can be started here; prints that it is missing, with the
/// Debian package that has it, when not.
pub fn tool_or_skip(what: &str, tool: &str, package: &str) -> bool {
    if let Err(e) = Command::new(tool).arg("--version").output() {
        println!("skipped: {what}: needs {tool} (Debian package {package}): {e}");
        return false;
    }
    true
}

/// The demo capture (`fixtures/demo/demo.pcap`); prints that it is missing when it is.
pub fn demo_or_skip(what: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/demo.pcap");
    if !p.exists() {
        println!("skipped: {what}: {} is missing", p.display());
        return None;
    }
    Some(p)
}

/// The demo capture, when `what` can replay it onto a veth pair here: root, `ip netns`,
/// tcpreplay and the file. Prints what is missing when not.
pub fn replay_or_skip(what: &str) -> Option<PathBuf> {
    if !netns_or_skip(what) || !tool_or_skip(what, "tcpreplay", "tcpreplay") {
        return None;
    }
    demo_or_skip(what)
}

/// Moves the calling thread (only) into network namespace `ns`.
pub fn enter(ns: &str) -> Result<(), String> {
    let f = File::open(format!("/run/netns/{ns}")).map_err(|e| format!("{ns}: {e}"))?;
    // SAFETY: setns with a valid namespace descriptor affects only this thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!("setns {ns}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Runs `f` on a thread that has entered network namespace `ns`; its result.
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter(&ns).unwrap_or_else(|e| panic!("{e}"));
        f()
    })
    .join()
    .unwrap()
}

impl Pair {
    /// Namespaces `ipsm-{prefix}-{tag}a-PID` and `…b-PID` with links `{short}{tag}a PID`
    /// (interface names stay within 15 bytes), both ends up and loopback up, IPv6 off
    /// (its neighbour discovery would add frames), and `addrs` (`ip/len`, near end first)
    /// on the ends given one. Panics when the system refuses.
    pub fn create(prefix: &str, short: &str, tag: &str, addrs: [Option<&str>; 2]) -> Pair {
        let id = std::process::id();
        let pair = Pair {
            ns: [
                format!("ipsm-{prefix}-{tag}a-{id}"),
                format!("ipsm-{prefix}-{tag}b-{id}"),
            ],
            links: [format!("{short}{tag}a{id}"), format!("{short}{tag}b{id}")],
            addrs: addrs.map(|a| a.map(String::from)),
        };
        pair.setup()
            .unwrap_or_else(|e| panic!("setting up namespaces: {e}"));
        pair
    }

    fn setup(&self) -> Result<(), String> {
        for ns in &self.ns {
            run("ip", &["netns", "add", ns])?;
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
            for conf in ["all", "default"] {
                let key = format!("net.ipv6.conf.{conf}.disable_ipv6=1");
                run("ip", &["netns", "exec", ns, "sysctl", "-q", "-w", &key])?;
            }
        }
        self.make_link()
    }

    fn make_link(&self) -> Result<(), String> {
        let [a, b] = &self.links;
        run("ip", &["link", "add", a, "type", "veth", "peer", "name", b])?;
        for ((ns, link), addr) in self.ns.iter().zip(&self.links).zip(&self.addrs) {
            run("ip", &["link", "set", link, "netns", ns])?;
            if let Some(addr) = addr {
                run("ip", &["-n", ns, "addr", "add", addr, "dev", link])?;
            }
            run("ip", &["-n", ns, "link", "set", link, "up"])?;
        }
        Ok(())
    }

    /// Makes the link again after [`Pair::link_down`], with the same names and addresses.
    pub fn link_up(&self) {
        self.make_link().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Deletes the link (both ends): the near end's interface vanishes under ipsecmon.
    pub fn link_down(&self) {
        run("ip", &["-n", &self.ns[0], "link", "del", &self.links[0]])
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Replays `file` into the far end as fast as tcpreplay can.
    pub fn replay(&self, file: &Path) {
        let f = file.to_str().unwrap();
        let (ns, link) = (&self.ns[1], &self.links[1]);
        let args = [
            "netns",
            "exec",
            ns,
            "tcpreplay",
            "-q",
            "--topspeed",
            "-i",
            link,
            f,
        ];
        run("ip", &args).unwrap_or_else(|e| panic!("{e}"));
    }

    /// `BIN ARGS -i NEAR` in the near namespace.
    pub fn ipsecmon(&self, bin: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns[0], bin])
            .args(args)
            .args(["-i", &self.links[0]]);
        c
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in &self.ns {
            let _ = run("ip", &["netns", "del", ns]);
        }
        // A setup that failed before moving the ends leaves the link in this namespace.
        let _ = run("ip", &["link", "del", &self.links[0]]);
    }
}
