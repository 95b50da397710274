//! The full-screen view in a real terminal (tmux): SIGTERM ends it with exit code 0 and
//! the terminal restored (the alternate screen left). Skips when tmux is missing or the
//! bundled demo capture is absent.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ipsecmon");

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Polls `f` every 100 ms for up to 10 s.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn sigterm_ends_the_full_screen_view_and_restores_the_terminal() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/demo.pcap");
    if Command::new("tmux").arg("-V").output().is_err() || !demo.exists() {
        println!("skipped: needs tmux and fixtures/demo/demo.pcap");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (pid_file, exit_file) = (dir.path().join("pid"), dir.path().join("exit"));
    let session = format!("ipsm-view-{}", std::process::id());
    // The shell records the view's pid and, after it ends, its exit code.
    let script = format!(
        "{BIN} -r {} & echo $! > {}; wait $!; echo $? > {}; sleep 30",
        demo.display(),
        pid_file.display(),
        exit_file.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "150",
        "-y",
        "40",
        &script,
    ]);
    let shown = eventually(|| {
        tmux(&["capture-pane", "-p", "-t", &session]).contains("Security associations")
    });
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: a signal to the view this test started.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) } == 0;
    let exited = eventually(|| {
        exit_file.exists() && !std::fs::read_to_string(&exit_file).unwrap().is_empty()
    });
    let screen = tmux(&["capture-pane", "-p", "-t", &session]);
    let code = std::fs::read_to_string(&exit_file).unwrap_or_default();
    tmux(&["kill-session", "-t", &session]);
    assert!(shown, "the view drew its table");
    assert!(sent && exited, "the view ended after SIGTERM");
    assert_eq!(code.trim(), "0");
    assert!(
        !screen.contains("Security associations"),
        "alternate screen left: {screen}"
    );
}
