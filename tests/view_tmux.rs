//! The full-screen view driven for real: the `ipsecmon` binary runs inside tmux (on a
//! private tmux server of this test) over the bundled demo capture, keys go in with
//! `send-keys`, and the screen comes back with `capture-pane`; also the command `make demo`
//! runs, at the recorded pace, and a lab capture with its key tables (right and wrong).
//! Skips with a message when tmux or the captures are missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_ipsecmon");

/// The columns of the view in display order, as their headers read.
const COLUMNS: [&str; 17] = [
    "Rule",
    "Traffic",
    "Local",
    "Remote",
    "Sec",
    "Decryption",
    "SPI in",
    "SPI out",
    "State",
    "Age",
    "Bytes in",
    "Bytes out",
    "Pkts in",
    "Pkts out",
    "Rate",
    "Last",
    "Note",
];

fn demo() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/demo.pcap");
    p.exists().then_some(p)
}

fn have_tmux() -> bool {
    Command::new("tmux").arg("-V").output().is_ok()
}

/// One tmux server and session of this test, killed on drop.
struct Tmux {
    socket: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Tmux {
    /// Starts `command` in a detached session of `w` x `h` cells.
    fn start(w: u16, h: u16, command: &str) -> Tmux {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let t = Tmux {
            socket: format!("ipsecmon-view-test-{}-{n}", std::process::id()),
        };
        let (w, h) = (w.to_string(), h.to_string());
        let out = t.run(&[
            "new-session",
            "-d",
            "-s",
            "view",
            "-x",
            &w,
            "-y",
            &h,
            command,
        ]);
        assert!(out.status.success(), "tmux: {}", stderr(&out));
        // Keep the pane after the program exits, so its last screen and exit are visible.
        t.run(&["set-option", "-t", "view", "remain-on-exit", "on"]);
        t
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "view"];
        args.extend_from_slice(keys);
        let out = self.run(&args);
        assert!(out.status.success(), "send-keys: {}", stderr(&out));
    }

    /// The screen as text lines; with `escapes`, with its colour and style sequences.
    fn screen_with(&self, escapes: bool) -> Vec<String> {
        let mut args = vec!["capture-pane", "-p", "-t", "view"];
        if escapes {
            args.push("-e");
        }
        let out = self.run(&args);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn screen(&self) -> Vec<String> {
        self.screen_with(false)
    }

    /// Waits until some line satisfies `pred`; returns the screen then.
    fn wait_for(&self, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {what}; screen:\n{}",
                s.join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_text(&self, text: &str) -> Vec<String> {
        self.wait_for(text, |s| s.iter().any(|l| l.contains(text)))
    }

    fn resize(&self, w: u16, h: u16) {
        let (w, h) = (w.to_string(), h.to_string());
        let out = self.run(&["resize-window", "-t", "view", "-x", &w, "-y", &h]);
        assert!(out.status.success(), "resize: {}", stderr(&out));
    }

    /// Whether the program in the pane has exited.
    fn exited(&self) -> bool {
        let out = self.run(&["display-message", "-p", "-t", "view", "#{pane_dead}"]);
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The command line that runs the view on `file` in the pane.
fn view_command(file: &Path, env: &str, extra: &str) -> String {
    format!(
        "env {env} {BIN} --refresh 0.2 -r {} --speed 20 {extra}",
        file.display()
    )
}

/// The 1-based number of a column in a header line, as the digit keys count them. The
/// header holds the titles in [`COLUMNS`] order, padded, the sorted one marked `^` or `v`.
fn column_number(header: &str, title: &str) -> usize {
    let mut rest = header;
    let mut n = 0;
    for c in COLUMNS {
        let t = rest.trim_start();
        if let Some(after) = t.strip_prefix(c) {
            n += 1;
            if c == title {
                return n;
            }
            rest = after.strip_prefix(['^', 'v']).unwrap_or(after);
        }
    }
    panic!("{title} not in {header:?}")
}

fn stat_value(screen: &[String], label: &str) -> String {
    let line = screen
        .iter()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no {label} on screen"));
    let after = line.split(label).nth(1).unwrap().trim_start();
    after.split(' ').next().unwrap().to_string()
}

#[test]
fn the_view_shows_the_demo_capture_and_answers_its_keys() {
    let (Some(file), true) = (demo(), have_tmux()) else {
        println!("skipped: needs tmux and fixtures/demo/demo.pcap");
        return;
    };
    let t = Tmux::start(120, 40, &view_command(&file, "NO_COLOR=", ""));
    let s = t.wait_text("end of capture");

    // The SA table: the child SA with Bob, by its SPIs, and the two failures with Eve.
    assert!(s[0].starts_with("ipsecmon - end of capture - 266 frames - refresh 0.2s"));
    assert!(
        s[1].starts_with("Security associations (3) + 1 ended, hidden (a shows)"),
        "{}",
        s[1]
    );
    let header = &s[2];
    let bob = s
        .iter()
        .find(|l| l.contains("743367c9"))
        .expect("Bob's child SA");
    assert!(
        bob.contains("59f5981f") && bob.contains("established"),
        "{bob}"
    );
    // The endpoints of its ESP, on UDP 4500 after NAT traversal began.
    assert!(bob.starts_with("192.0.2.1:4500 192.0.2.2:4500"), "{bob}");
    assert!(bob.contains("5.5K") && bob.contains("10.2K"), "{bob}");
    let eve: Vec<&String> = s
        .iter()
        .filter(|l| {
            l.split_whitespace()
                .take(2)
                .eq(["192.0.2.1:500", "192.0.2.3:500"])
        })
        .collect();
    assert_eq!(eve.len(), 2);
    assert!(eve
        .iter()
        .all(|l| l.contains("failed") && l.ends_with("auth-failed")));

    // The statistics block and the findings.
    for (label, value) in [
        ("Active associations", "1"),
        ("Confidential bytes sent", "16192"),
        ("Confidential bytes received", "8896"),
        ("Bad SPI packets", "0"),
        ("Rekeys", "2"),
        ("Authentication failures", "2"),
    ] {
        assert_eq!(stat_value(&s, label), value, "{label}");
    }
    assert!(s.iter().any(|l| l.starts_with("Findings (2)")));
    assert!(s.iter().any(|l| l.starts_with(
        "error   auth-failed authentication between 192.0.2.1:500 and 192.0.2.3:500 failed"
    )));
    assert!(s.iter().any(
        |l| l.starts_with("Capture: 266 received, 0 dropped, 0 by interface; decode errors 0")
    ));

    // Sorting by State puts the failures first; r reverses.
    let n = column_number(header, "State");
    t.keys(&[&n.to_string()]);
    let s = t.wait_text("State^");
    assert!(
        s[3].contains("failed") && s[4].contains("failed"),
        "{}",
        s[3]
    );
    assert!(s[5].contains("743367c9") || s[6].contains("743367c9"));
    t.keys(&["r"]);
    let s = t.wait_text("Statev");
    assert!(s[3].contains("established"), "{}", s[3]);

    // The ended SA comes and goes with `a`.
    t.keys(&["a"]);
    let s = t.wait_text("Security associations (4)");
    assert!(s
        .iter()
        .any(|l| l.contains("c317218e") && l.contains("rekeyed")));
    t.keys(&["a"]);
    t.wait_text("+ 1 ended, hidden");

    // The detail pane of the first row (sorted by state, reversed: Bob's SA).
    t.keys(&["Home", "Enter"]);
    let s = t.wait_for("the detail pane", |s| {
        let all = s.join("\n");
        all.contains("Detail: SA") && all.contains("NAT: ")
    });
    let all = s.join("\n");
    assert!(all.contains("IKEv2 SA 2c1cbb4f3b7a4dcc/"), "{all}");
    assert!(all.contains("IKE history"), "{all}");
    assert!(
        all.contains("IKE_SA_INIT") && all.contains("IKE_AUTH"),
        "{all}"
    );
    assert!(all.contains("CREATE_CHILD_SA"), "{all}");
    assert!(all.contains("NAT: none on the path"), "{all}");
    // PgDn scrolls the pane: the header goes, the algorithms and ESP counters come.
    t.keys(&["PageDown"]);
    t.wait_for("the first line scrolled off", |s| {
        !s.join("\n").contains("IKEv2 SA 2c1cbb4f3b7a4dcc/")
    });
    let esp = "59f5981f 192.0.2.1:4500 -> 192.0.2.2:4500 encap udp: 100 packets";
    for _ in 0..20 {
        if t.screen().iter().any(|l| l.contains(esp)) {
            break;
        }
        t.keys(&["PageDown"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = t.wait_text(esp);
    let all = s.join("\n");
    assert!(
        all.contains("chosen ike:aes128-sha256-modp2048") || all.contains("ESP/AH"),
        "{all}"
    );
    t.keys(&["Escape"]);
    t.wait_for("the detail closed", |s| {
        !s.iter().any(|l| l.contains("Detail:"))
    });

    // Filter by address, pause, help.
    t.keys(&["/", "1", "9", "2", ".", "0", ".", "2", ".", "3", "Enter"]);
    let s = t.wait_text("filter: 192.0.2.3");
    assert!(s[1].starts_with("Security associations (2)"), "{}", s[1]);
    // Escape on its own: followed at once by another key it would read as Alt+key.
    t.keys(&["Escape"]);
    t.wait_text("Security associations (3)");
    t.keys(&["Space"]);
    t.wait_text("ipsecmon - PAUSED");
    t.keys(&["?"]);
    let s = t.wait_text("Help");
    assert!(s.iter().any(|l| l.contains("filter by address")));
    t.keys(&["x"]);
    t.wait_for("help closed", |s| !s.iter().any(|l| l.contains(" Help ")));

    // Over SSH on a small terminal: every section still there, nothing wider than 80.
    t.resize(80, 24);
    let s = t.wait_for("80x24", |s| s.len() == 24 && s[22].starts_with("Capture:"));
    let all = s.join("\n");
    assert!(s.iter().all(|l| l.chars().count() <= 80), "{all}");
    assert!(s[1].starts_with("Security associations (3)"), "{all}");
    assert!(s.iter().any(|l| l.contains("743367c9")));
    // The failed attempts with Eve still say why.
    assert!(s.iter().any(|l| l.contains("auth-failed")), "{all}");
    assert!(s.iter().any(|l| l.starts_with("Statistics")));
    assert!(s.iter().any(|l| l.starts_with("Findings (2)")));
    assert!(s[23].starts_with("q quit"));

    t.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !t.exited() {
        assert!(Instant::now() < deadline, "q did not quit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The command `make demo` runs (the Makefile's `demo` recipe), with this test's binary for
/// the release build it names and the Makefile's default capture.
fn make_demo_command() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let makefile = std::fs::read_to_string(format!("{root}/Makefile")).unwrap();
    let capture = makefile
        .lines()
        .find_map(|l| l.strip_prefix("DEMO_CAPTURE ?= "))
        .expect("DEMO_CAPTURE in the Makefile")
        .trim();
    let recipe = makefile
        .lines()
        .skip_while(|l| !l.starts_with("demo:"))
        .nth(1)
        .expect("the demo recipe")
        .trim();
    assert!(
        recipe.starts_with("./target/release/ipsecmon "),
        "make demo runs the release build: {recipe}"
    );
    recipe
        .replace("./target/release/ipsecmon", BIN)
        .replace("$(DEMO_CAPTURE)", &format!("{root}/{capture}"))
}

/// Seconds since midnight of the packet time in the view's title (`... 01:17:12.538 UTC`).
fn title_time_of_day(title: &str) -> f64 {
    let at = title
        .find(" UTC")
        .unwrap_or_else(|| panic!("no packet time: {title}"));
    let hms = &title[at - 12..at];
    let parts: Vec<f64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}

#[test]
fn make_demo_shows_the_sas_within_the_first_seconds_of_the_capture() {
    let (Some(file), true) = (demo(), have_tmux()) else {
        println!("skipped: needs tmux and fixtures/demo/demo.pcap");
        return;
    };
    use ipsecmon::capture::FrameSource;
    let first = ipsecmon::capture::open_file(&file)
        .unwrap()
        .next_frame()
        .unwrap()
        .expect("a first frame")
        .ts
        .as_secs_f64();
    let t = Tmux::start(100, 30, &format!("env NO_COLOR= {}", make_demo_command()));
    // At the recorded pace: the SA with Bob comes up 0.5 s into the capture.
    let s = t.wait_for("an established SA", |s| {
        s.iter().any(|l| {
            l.starts_with("192.0.2.1:") && l.contains(" 192.0.2.2:") && l.contains("established")
        })
    });
    let into = title_time_of_day(&s[0]) - first.rem_euclid(86_400.0);
    assert!(
        (0.0..5.0).contains(&into),
        "shown {into:.1} s into the capture:\n{}",
        s.join("\n")
    );
    assert!(s[0].contains("refresh 1s"), "{}", s[0]);
    assert!(!s[0].contains("end of capture"), "{}", s[0]);
    t.keys(&["q"]);
}

/// Pages the detail pane down until `text` shows (at most 20 pages); the screen then.
fn page_to(t: &Tmux, text: &str) -> Vec<String> {
    for _ in 0..20 {
        if t.screen().iter().any(|l| l.contains(text)) {
            break;
        }
        t.keys(&["PageDown"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    t.wait_text(text)
}

/// The `ok` lab capture with `keys`, every SA shown, the detail pane of its first child SA
/// open (the second row: the first is the IKE SA its rekey replaced).
fn detail_with_keys(capture: &Path, keys: &Path) -> Tmux {
    let extra = format!("--all --keys {}", keys.display());
    let t = Tmux::start(160, 50, &view_command(capture, "NO_COLOR=", &extra));
    let s = t.wait_text("end of capture");
    assert!(s[2].contains(" Decryption "), "{}", s.join("\n"));
    t.keys(&["Down", "Enter"]);
    t.wait_text("Detail: SA 88fd7df3");
    t
}

#[test]
fn the_detail_pane_says_how_each_sa_decrypted() {
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/lab/ok");
    if !lab.join("keys").exists() || !have_tmux() {
        println!("skipped: needs tmux and fixtures/lab/ok");
        return;
    }
    let capture = lab.join("link.pcap");
    let t = detail_with_keys(&capture, &lab.join("keys"));
    let rows: Vec<String> = t.screen()[3..7].to_vec();
    assert!(rows.iter().all(|r| r.contains(" decrypted ")), "{rows:?}");
    let s = page_to(&t, "906372dd out: ");
    let all = s.join("\n");
    assert!(all.contains("Decryption (--keys)"), "{all}");
    assert!(
        all.contains("IKE SA 3bf3fcb4e6166f68: decrypted 2 messages (2 verified)"),
        "{all}"
    );
    assert!(
        all.contains("88fd7df3 in: decrypted 8 packets (8 verified)"),
        "{all}"
    );
    assert!(
        all.contains("906372dd out: decrypted 14 packets (14 verified)"),
        "{all}"
    );
    t.keys(&["q"]);

    let dir = tempfile::tempdir().unwrap();
    let all_tables = ["ikev2_decryption_table", "esp_sa"];
    let wrong = common::keys_with_wrong(&lab.join("keys"), &all_tables, dir.path());
    let t = detail_with_keys(&capture, &wrong);
    let rows: Vec<String> = t.screen()[3..7].to_vec();
    assert!(
        rows.iter().all(|r| r.contains(" not-authenticated ")),
        "{rows:?}"
    );
    let s = page_to(&t, "906372dd out: ");
    let all = s.join("\n");
    assert!(
        all.contains(
            "IKE SA 3bf3fcb4e6166f68: not authenticated: 2 messages failed their integrity \
             check (first frame 187, icv-mismatch): a wrong key, or altered packets"
        ),
        "{all}"
    );
    assert!(
        all.contains(
            "88fd7df3 in: not authenticated: 8 packets failed their integrity check (first \
             frame 10, icv-mismatch)"
        ),
        "{all}"
    );
    t.keys(&["q"]);
}

/// The SGR parameters of every escape sequence in a line captured with escapes.
fn sgr_params(line: &str) -> Vec<u32> {
    line.split("\u{1b}[")
        .skip(1)
        .filter_map(|seq| seq.split_once('m').map(|(p, _)| p))
        .flat_map(|p| p.split(';').filter_map(|n| n.parse().ok()))
        .collect()
}

/// Foreground colour codes (SGR 30-38, 90-97) in a line captured with escapes.
fn has_colour(line: &str) -> bool {
    sgr_params(line)
        .iter()
        .any(|p| matches!(p, 30..=38 | 90..=97))
}

#[test]
fn monochrome_terminals_keep_the_styles_without_colour() {
    let (Some(file), true) = (demo(), have_tmux()) else {
        println!("skipped: needs tmux and fixtures/demo/demo.pcap");
        return;
    };
    for (env, colour) in [
        ("NO_COLOR=", true),
        ("NO_COLOR=1", false),
        ("TERM=dumb", false),
    ] {
        let t = Tmux::start(120, 40, &view_command(&file, env, ""));
        t.wait_text("end of capture");
        let s = t.screen_with(true);
        let failed = s
            .iter()
            .find(|l| l.contains("auth-failed") && l.contains("192.0.2.3:500"))
            .expect("a failed row");
        assert_eq!(has_colour(failed), colour, "{env}: {failed:?}");
        // Bold marks failed rows with or without colour.
        assert!(sgr_params(failed).contains(&1), "{env}: {failed:?}");
        t.keys(&["q"]);
    }
}
