//! The system calls and programs the lab drives: `ip`, `nft`, processes by pid, and
//! entering a network namespace from a thread.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::LabError;

/// Programs the lab needs and the Debian packages that provide them.
pub const REQUIREMENTS: &[(&str, &str)] = &[
    ("/usr/sbin/ip", "iproute2"),
    ("/usr/sbin/nft", "nftables"),
    ("/usr/lib/ipsec/charon", "strongswan-charon"),
    ("/usr/sbin/swanctl", "strongswan-swanctl"),
    (
        "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so",
        "libcharon-extra-plugins",
    ),
    (
        "/usr/lib/ipsec/plugins/libstrongswan-openssl.so",
        "libstrongswan-standard-plugins",
    ),
    ("/usr/bin/tcpdump", "tcpdump"),
    ("/usr/bin/ping", "iputils-ping"),
];

/// Whether `program` (an absolute path, or a name looked up on the `PATH`) exists.
fn present(program: &str) -> bool {
    let path = Path::new(program);
    if path.is_file() {
        return true;
    }
    let name = path.file_name().unwrap_or_default();
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// Refuses, naming the Debian packages to install, when a program is missing; the lab
/// installs nothing itself.
pub fn check_requirements() -> Result<(), LabError> {
    let mut packages: Vec<&str> = REQUIREMENTS
        .iter()
        .filter(|(program, _)| !present(program))
        .map(|(_, package)| *package)
        .collect();
    packages.dedup();
    if packages.is_empty() {
        Ok(())
    } else {
        Err(LabError::Missing {
            packages: packages.join(" "),
        })
    }
}

/// Refuses unless running as root (namespaces, mounts and nftables need it).
pub fn check_root() -> Result<(), LabError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        Ok(())
    } else {
        Err(LabError::NotRoot)
    }
}

/// Runs a program to completion; a non-zero exit is an error carrying its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, LabError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError::Command {
            command: command_line(program, args),
            output: e.to_string(),
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(LabError::Command {
        command: command_line(program, args),
        output: if err.is_empty() {
            out.status.to_string()
        } else {
            err
        },
    })
}

/// Runs a program to completion; returns whether it succeeded and its standard output
/// (for programs such as ping whose failure still prints what we want).
pub fn output(program: &str, args: &[&str]) -> Result<(bool, String), LabError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError::Command {
            command: command_line(program, args),
            output: e.to_string(),
        })?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ip ARGS…`.
pub fn ip(args: &[&str]) -> Result<String, LabError> {
    run("ip", args)
}

/// Runs a program inside a network namespace (`ip netns exec NS …`).
pub fn in_netns(netns: &str, program: &str, args: &[&str]) -> Result<String, LabError> {
    let mut all = vec!["netns", "exec", netns, program];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Loads an nftables ruleset into a namespace.
pub fn nft_load(netns: &str, ruleset_file: &Path) -> Result<(), LabError> {
    let file = ruleset_file.to_string_lossy();
    in_netns(netns, "nft", &["-f", &file]).map(|_| ())
}

/// The network namespaces `ip netns` knows.
pub fn netns_list() -> Result<Vec<String>, LabError> {
    let out = ip(&["netns", "list"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// A process's start time (field 22 of `/proc/PID/stat`, in clock ticks since boot): with
/// the pid it names one process, so a recycled pid is never mistaken for it. `None` when
/// the process is gone or a zombie.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether the process `pid` that started at `start` is still running.
pub fn alive(pid: u32, start: u64) -> bool {
    start_time(pid) == Some(start)
}

/// Reaps `pid` if it is a child of this process that has exited (lab tests run `up` and
/// `down` in one process); harmless otherwise.
fn reap(pid: u32) {
    let mut status = 0;
    // SAFETY: waitpid with WNOHANG only inspects the child table; a pid that is not our
    // child yields ECHILD.
    unsafe {
        libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG);
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory effects; the caller checked that pid is the process the
    // lab started (same start time).
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Stops a process the lab started: SIGTERM, then SIGKILL after `grace`. Does nothing when
/// the pid now names another process or none. Returns whether it had to be killed.
pub fn stop(pid: u32, start: u64, grace: Duration) -> bool {
    if !alive(pid, start) {
        reap(pid);
        return false;
    }
    signal(pid, libc::SIGTERM);
    let until = Instant::now() + grace;
    while Instant::now() < until {
        reap(pid);
        if !alive(pid, start) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(pid, libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(100));
    reap(pid);
    true
}

/// Moves the calling thread into a network namespace: sockets it opens afterwards live
/// there. Used by traffic threads, so the lab's workload never leaves the namespaces.
pub fn enter_netns(netns: &str) -> Result<(), LabError> {
    let path = format!("/run/netns/{netns}");
    let file = File::open(&path).map_err(|source| LabError::Io {
        path: path.clone().into(),
        source,
    })?;
    // SAFETY: setns with a valid namespace fd affects only the calling thread's network
    // namespace (CLONE_NEWNET is per thread).
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(LabError::Io {
            path: path.into(),
            source: std::io::Error::last_os_error(),
        })
    }
}

/// Waits until `ready` holds, polling every 50 ms, for at most `limit`.
pub fn wait_for(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_names_this_process_and_not_a_missing_one() {
        let me = std::process::id();
        let start = start_time(me).expect("this process has a start time");
        assert!(alive(me, start));
        assert!(
            !alive(me, start + 1),
            "another start time is another process"
        );
        assert_eq!(start_time(u32::MAX), None);
    }

    #[test]
    fn a_failing_program_reports_its_command_and_stderr() {
        let err = run("sh", &["-c", "echo nope >&2; exit 3"]).unwrap_err();
        assert_eq!(err.to_string(), "sh -c echo nope >&2; exit 3 failed: nope");
    }

    #[test]
    fn stop_leaves_a_process_with_another_start_time_alone() {
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid).unwrap();
        assert!(!stop(pid, start + 7, Duration::from_millis(100)));
        assert!(alive(pid, start), "a different start time means not ours");
        assert!(
            !stop(pid, start, Duration::from_secs(2)),
            "SIGTERM is enough for sleep"
        );
        let _ = child.wait();
        assert!(!alive(pid, start));
    }
}
