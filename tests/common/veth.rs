//! Two network namespaces joined by a veth pair, made by a test that replays a capture into
//! the far end and runs ipsecmon on the near one; removed when dropped, even on failure.
//! Included with `#[path = "common/veth.rs"] mod veth;` by the tests that need it.

use std::path::Path;
use std::process::Command;

/// The two namespaces and their ends of the link: index 0 is the near (capturing) end.
pub struct Pair {
    pub ns: [String; 2],
    pub links: [String; 2],
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

impl Pair {
    /// Namespaces `ipsm-{prefix}-{tag}a-PID` and `…b-PID` with links `{short}{tag}a PID`
    /// (interface names stay within 15 bytes), both ends up and loopback up, IPv6 off
    /// (its neighbour discovery would add frames), and `near_addr` (`ip/len`) on the near
    /// end when given. Panics when the system refuses.
    pub fn create(prefix: &str, short: &str, tag: &str, near_addr: Option<&str>) -> Pair {
        let id = std::process::id();
        let pair = Pair {
            ns: [
                format!("ipsm-{prefix}-{tag}a-{id}"),
                format!("ipsm-{prefix}-{tag}b-{id}"),
            ],
            links: [format!("{short}{tag}a{id}"), format!("{short}{tag}b{id}")],
        };
        pair.setup(near_addr)
            .unwrap_or_else(|e| panic!("setting up namespaces: {e}"));
        pair
    }

    fn setup(&self, near_addr: Option<&str>) -> Result<(), String> {
        for ns in &self.ns {
            run("ip", &["netns", "add", ns])?;
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
            for conf in ["all", "default"] {
                let key = format!("net.ipv6.conf.{conf}.disable_ipv6=1");
                run("ip", &["netns", "exec", ns, "sysctl", "-q", "-w", &key])?;
            }
        }
        let [a, b] = &self.links;
        run("ip", &["link", "add", a, "type", "veth", "peer", "name", b])?;
        for (ns, link) in self.ns.iter().zip(&self.links) {
            run("ip", &["link", "set", link, "netns", ns])?;
            run("ip", &["-n", ns, "link", "set", link, "up"])?;
        }
        if let Some(addr) = near_addr {
            run("ip", &["-n", &self.ns[0], "addr", "add", addr, "dev", a])?;
        }
        Ok(())
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
    }
}
