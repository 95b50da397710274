//! One charon per lab host: its own strongswan.conf, `/run` (so its pid file and VICI
//! socket never meet another charon's), log file, and kernel-libipsec as the ESP data
//! plane. Also the lab's tcpdump captures, started the same way.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::state::{CaptureState, Proc, State};
use super::sys::{start_time, wait_for};
use super::{io, LabError};

/// charon's binary in Debian's strongswan-charon.
pub const CHARON: &str = "/usr/lib/ipsec/charon";

/// Files of one host's charon, all under its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharonFiles {
    /// The host's directory.
    pub dir: PathBuf,
}

impl CharonFiles {
    /// The lab's strongswan.conf for this host.
    pub fn conf(&self) -> PathBuf {
        self.dir.join("strongswan.conf")
    }
    /// The directory bind-mounted over `/run` for charon.
    pub fn run(&self) -> PathBuf {
        self.dir.join("run")
    }
    /// charon's log: every key it derives is here (level 4), for the key tables.
    pub fn log(&self) -> PathBuf {
        self.dir.join("charon.log")
    }
    /// charon's standard output and error.
    pub fn out(&self) -> PathBuf {
        self.dir.join("charon.out")
    }
    /// The VICI socket's URI.
    pub fn vici(&self) -> String {
        format!("unix://{}", self.run().join("charon.vici").display())
    }
    /// Where the enforce module writes the rendered policy.
    pub fn enforce_dir(&self) -> PathBuf {
        self.dir.join("enforce")
    }
}

/// The lab's strongswan.conf for a host: plugins for kernel-libipsec, the short
/// retransmit schedule (sends at +0, +1, +3, +7 s, gives up at +15 s) so failure captures
/// stay short, NAT keepalives every 5 s instead of 20 (they show in short captures), a
/// file log with key derivations (ike and chd at level 4, every line naming
/// its IKE SA), the VICI socket in the host's own `/run`, and the settings the rendered
/// policy needs (`include`d from the enforce module's fragment).
pub fn strongswan_conf(files: &CharonFiles) -> String {
    let fragment = files.enforce_dir().join(crate::enforce::STRONGSWAN_CONF);
    format!(
        "# strongswan.conf of a lab host, written by ipsecmon lab.
charon {{
    load_modular = no
    load = random nonce aes des sha1 sha2 md5 hmac gmp openssl kdf pem pkcs1 pubkey x509 socket-default kernel-libipsec kernel-netlink vici
    retransmit_tries = 3
    retransmit_timeout = 1.0
    retransmit_base = 2.0
    keep_alive = 5s
    filelog {{
        lab {{
            path = {log}
            time_format = %b %e %T
            time_add_ms = yes
            ike_name = yes
            default = 1
            ike = 4
            chd = 4
            flush_line = yes
        }}
    }}
    plugins {{
        vici {{
            socket = {vici}
        }}
    }}
}}
swanctl {{
    load = pem pkcs1 x509 pubkey openssl random
}}
include {fragment}
",
        log = files.log().display(),
        vici = files.vici(),
        fragment = fragment.display(),
    )
}

/// Spawns a long-running program inside a namespace, detached from the caller's process
/// group (it outlives `lab up`), output to `out`; records it in the state at once.
pub(super) fn spawn_detached(
    state: &mut State,
    what: &str,
    netns: &str,
    argv: &[&str],
    out: &Path,
) -> Result<Proc, LabError> {
    let log = File::create(out).map_err(io(out))?;
    let err = log.try_clone().map_err(io(out))?;
    let child = Command::new("ip")
        .args(["netns", "exec", netns])
        .args(argv)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| LabError::Command {
            command: format!("ip netns exec {netns} {}", argv.join(" ")),
            output: e.to_string(),
        })?;
    let pid = child.id();
    let proc = Proc {
        what: what.into(),
        pid,
        start_time: start_time(pid).unwrap_or(0),
    };
    state.processes.push(proc.clone());
    state.save()?;
    Ok(proc)
}

/// Starts charon for a host in its namespace and waits for its VICI socket.
///
/// `ip netns exec` already runs the command in a private mount namespace, so the bind
/// mount of the host's run directory over `/run` is seen by this charon only (charon's
/// pid file path is fixed at `/var/run/charon.pid`).
pub fn start(
    state: &mut State,
    host: &str,
    netns: &str,
    files: &CharonFiles,
) -> Result<(), LabError> {
    std::fs::create_dir_all(files.run()).map_err(io(&files.run()))?;
    let conf = files.conf();
    std::fs::write(&conf, strongswan_conf(files)).map_err(io(&conf))?;
    let script = format!(
        "mount --bind {} /run && exec env STRONGSWAN_CONF={} {CHARON}",
        files.run().display(),
        conf.display()
    );
    let what = format!("charon {host}");
    let proc = spawn_detached(state, &what, netns, &["sh", "-c", &script], &files.out())?;
    let socket = files.run().join("charon.vici");
    let up = wait_for(Duration::from_secs(15), || {
        socket.exists() || !super::sys::alive(proc.pid, proc.start_time)
    });
    if up && socket.exists() {
        return Ok(());
    }
    let output = std::fs::read_to_string(files.out()).unwrap_or_default();
    Err(LabError::Charon {
        host: host.into(),
        reason: format!(
            "no VICI socket at {} after 15 s; its output: {}",
            socket.display(),
            output.trim()
        ),
    })
}

/// Starts tcpdump on a capture's interface (whole frames, written packet by packet, the
/// file owned by root) and waits until the file has its header. Immediate mode: without
/// it, packets after a long idle stayed in libpcap's ring buffer and were lost when
/// tcpdump was stopped.
pub fn start_capture(state: &mut State, c: &CaptureState) -> Result<(), LabError> {
    let file = c.file.to_string_lossy().into_owned();
    let out = c.file.with_extension("tcpdump.out");
    let argv = [
        "tcpdump",
        "-i",
        &c.iface,
        "-n",
        "--immediate-mode",
        "-U",
        "-s",
        "0",
        "-Z",
        "root",
        "-w",
        &file,
    ];
    let proc = spawn_detached(state, &format!("tcpdump {}", c.name), &c.netns, &argv, &out)?;
    let ready = wait_for(Duration::from_secs(10), || {
        std::fs::metadata(&c.file)
            .map(|m| m.len() >= 24)
            .unwrap_or(false)
            || !super::sys::alive(proc.pid, proc.start_time)
    });
    if ready && c.file.exists() {
        // tcpdump opens the file before the socket is fully attached; give it a moment.
        std::thread::sleep(Duration::from_millis(200));
        return Ok(());
    }
    Err(LabError::Command {
        command: format!("tcpdump -i {} in {}", c.iface, c.netns),
        output: std::fs::read_to_string(&out)
            .unwrap_or_default()
            .trim()
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_keeps_everything_in_the_host_directory() {
        let files = CharonFiles {
            dir: PathBuf::from("/var/lib/ipsecmon/lab/t/alice"),
        };
        let conf = strongswan_conf(&files);
        assert!(conf.contains("path = /var/lib/ipsecmon/lab/t/alice/charon.log\n"));
        assert!(conf.contains("socket = unix:///var/lib/ipsecmon/lab/t/alice/run/charon.vici\n"));
        assert!(conf.contains("include /var/lib/ipsecmon/lab/t/alice/enforce/strongswan.conf\n"));
        assert!(conf.contains("kernel-libipsec"));
        assert!(conf.contains("            ike = 4\n            chd = 4\n"));
        // strongswan.conf has no ';' separator: one setting per line (lab-notes gotcha 4).
        assert!(!conf.contains(';'));
    }
}
