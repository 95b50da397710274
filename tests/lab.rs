//! The lab end to end, with real strongSwan daemons in network namespaces (root,
//! iproute2, nftables, strongSwan with kernel-libipsec, tcpdump: `scripts/install-deps.sh`).
//! Each test prints a line and passes when those are missing.
//!
//! Every scenario is brought up under a prefix of its own, given the seed's workload,
//! taken down with its captures saved, and then checked: what ipsecmon's own monitor
//! reports (`diagnose --json`: no error finding, or the scenario's code), that no
//! cleartext TCP 6667/6668 crossed the link (both policies forbid it, except in
//! `not-mirrored`, where Bob's permits his replies in clear and they must show), and that
//! `down` left no namespace, process or file behind (and that a second `down` is fine).
//! The scenarios run one at a time (about three minutes in all). Each capture is
//! diagnosed twice: with the key tables `ipsecmon lab keys` makes from the charon logs
//! (the exact code, also of failures told only inside encrypted messages) and without
//! them (the code and confidence inferred from the cleartext), as each scenario says.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use ipsecmon::capture::{open_file, FrameSource};
use ipsecmon::lab::scenario::{self, Expect};
use ipsecmon::lab::state::State;
use ipsecmon::lab::sys;

/// One lab at a time: the machine is small and the captures are timed.
static SERIAL: Mutex<()> = Mutex::new(());

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ipsecmon")
}

fn skip() -> Option<String> {
    if let Err(e) = sys::check_root() {
        return Some(e.to_string());
    }
    sys::check_requirements().err().map(|e| e.to_string())
}

macro_rules! lab_test {
    () => {{
        if let Some(why) = skip() {
            println!("skipping lab test: {why}");
            return;
        }
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }};
}

/// A lab under a unique prefix, in a temporary directory.
struct Lab {
    prefix: String,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Lab {
    fn new(tag: u32) -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        Lab {
            prefix: format!("t{}{tag}", std::process::id() % 100_000),
            dir: tmp.path().join("lab"),
            _tmp: tmp,
        }
    }

    fn cmd(&self, args: &[&str]) -> Output {
        let dir = self.dir.to_string_lossy().into_owned();
        Command::new(bin())
            .arg("lab")
            .args(args)
            .args(["--prefix", &self.prefix, "--dir", &dir])
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "ipsecmon lab {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `lab traffic`; returns whether every line was echoed.
    fn traffic(&self, lines: u32) -> bool {
        let n = lines.to_string();
        let out = self.cmd(&["traffic", "--lines", &n, "--pings", "1"]);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "lab traffic: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.status.success()
    }

    fn namespaces(&self) -> Vec<String> {
        let mine = format!("{}-", self.prefix);
        sys::netns_list()
            .unwrap()
            .into_iter()
            .filter(|n| n.starts_with(&mine))
            .collect()
    }

    /// Takes the lab down, saving its files, and checks that nothing is left.
    fn down_and_check(&self, save: &Path) {
        let state = State::load(&self.dir)
            .unwrap()
            .expect("a state file while up");
        assert!(!state.processes.is_empty());
        let save_s = save.to_string_lossy().into_owned();
        self.ok(&["down", "--save", &save_s]);
        assert_eq!(self.namespaces(), Vec::<String>::new(), "namespaces left");
        for p in &state.processes {
            assert!(
                !sys::alive(p.pid, p.start_time),
                "{} (pid {}) still runs",
                p.what,
                p.pid
            );
        }
        assert!(!self.dir.exists(), "{} left behind", self.dir.display());
        let again = self.ok(&["down"]);
        assert!(again.contains("nothing to remove"), "{again}");
    }
}

/// Frames of a capture that are TCP to or from port 6667 or 6668 (Ethernet, IPv4).
fn cleartext_abczz(pcap: &Path) -> usize {
    let mut source = open_file(pcap).unwrap();
    let mut n = 0;
    while let Ok(Some(frame)) = source.next_frame() {
        let d = frame.data;
        if d.len() < 14 + 20 + 4 || d[12..14] != [0x08, 0x00] || d[14 + 9] != 6 {
            continue;
        }
        let ihl = usize::from(d[14] & 0x0f) * 4;
        let Some(ports) = d.get(14 + ihl..14 + ihl + 4) else {
            continue;
        };
        let sport = u16::from_be_bytes([ports[0], ports[1]]);
        let dport = u16::from_be_bytes([ports[2], ports[3]]);
        if [6667, 6668].contains(&sport) || [6667, 6668].contains(&dport) {
            n += 1;
        }
    }
    n
}

/// One finding of `ipsecmon diagnose --json`: code, severity, confidence in percent.
#[derive(Debug, PartialEq)]
struct Found {
    code: String,
    severity: String,
    confidence: u8,
}

/// `ipsecmon diagnose --json` findings, worst first, with `keys` when given.
fn findings(pcap: &Path, keys: Option<&Path>) -> Vec<Found> {
    let mut cmd = Command::new(bin());
    cmd.args(["diagnose", "--json"]);
    if let Some(k) = keys {
        cmd.arg("--keys").arg(k);
    }
    let out = cmd.arg(pcap).output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "diagnose {} (keys {keys:?}): {}",
        pcap.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "diagnose {}: {e}: {}",
            pcap.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let list = json["findings"].as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|f| Found {
            code: f["code"].as_str().unwrap_or_default().to_string(),
            severity: f["severity"].as_str().unwrap_or_default().to_string(),
            confidence: (f["confidence"].as_f64().unwrap_or(-1.0) * 100.0).round() as u8,
        })
        .collect()
}

/// Checks `found` against `expect`: no error finding for an established scenario; else
/// the worst finding has the expected code and confidence, and every error finding has
/// that code.
fn check_findings(what: &str, found: &[Found], expect: Expect) {
    let errors: Vec<&Found> = found.iter().filter(|f| f.severity == "error").collect();
    match expect {
        Expect::Established => assert!(errors.is_empty(), "{what}: errors {found:?}"),
        Expect::Finding { code, confidence } => {
            let worst = found
                .first()
                .unwrap_or_else(|| panic!("{what}: expected {code}, found nothing"));
            assert_eq!(
                (worst.code.as_str(), worst.confidence),
                (code, confidence),
                "{what}: the worst finding, of {found:?}"
            );
            assert!(
                errors.iter().all(|f| f.code == code),
                "{what}: other errors than {code}: {found:?}"
            );
        }
    }
}

/// Key tables of a saved run, as the fixtures script makes them.
fn key_tables(save: &Path, pcaps: &[PathBuf]) -> PathBuf {
    let out = save.join("keys");
    let mut cmd = Command::new(bin());
    cmd.args(["lab", "keys"]);
    for h in ["alice", "bob"] {
        let log = save.join(h).join("charon.log");
        if log.exists() {
            cmd.arg(log);
        }
    }
    for p in pcaps {
        cmd.arg("-c").arg(p);
    }
    let result = cmd.arg("-o").arg(&out).output().unwrap();
    assert!(
        result.status.success(),
        "lab keys: a key failed its check: {}",
        String::from_utf8_lossy(&result.stdout)
    );
    out
}

fn check_expectation(name: &str, save: &Path) {
    let s = scenario::find(name).unwrap();
    let pcaps: Vec<PathBuf> = std::fs::read_dir(save)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    assert!(!pcaps.is_empty(), "{name}: no capture saved");
    let keys = key_tables(save, &pcaps);
    for pcap in &pcaps {
        let clear = cleartext_abczz(pcap);
        if s.cleartext_abczz {
            assert!(
                clear > 0,
                "{name}: Bob's cleartext replies missing from {}",
                pcap.display()
            );
        } else {
            assert_eq!(clear, 0, "{name}: cleartext Abczz in {}", pcap.display());
        }
        let file = pcap.file_name().unwrap().to_string_lossy();
        let with_keys = findings(pcap, Some(&keys));
        let without = findings(pcap, None);
        println!("{name} {file}: with keys {with_keys:?}; without {without:?}");
        let (expect, without_keys) = match s.outside {
            Some(e) if file == "outside.pcap" => (e, e),
            _ => (s.expect, s.without_keys),
        };
        check_findings(&format!("{name} {file} with keys"), &with_keys, expect);
        check_findings(
            &format!("{name} {file} without keys"),
            &without,
            without_keys,
        );
    }
}

/// Brings a scenario up, runs `workload`, takes it down and checks everything.
fn scenario(name: &str, tag: u32, workload: impl FnOnce(&Lab)) {
    let lab = Lab::new(tag);
    lab.ok(&["up", "--scenario", name]);
    std::thread::sleep(Duration::from_millis(500));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| workload(&lab)));
    let save = lab._tmp.path().join("save");
    lab.down_and_check(&save);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    check_expectation(name, &save);
}

#[test]
fn ok_comes_up_carries_abczz_both_ways_and_rekeys() {
    let _serial = lab_test!();
    scenario("ok", 1, |lab| {
        assert!(lab.traffic(3), "Abczz must be echoed over the tunnel");
        let vici = format!("unix://{}/alice/run/charon.vici", lab.dir.display());
        let rekey = Command::new("swanctl")
            .args(["--rekey", "--child", "abczz-with-bob-1", "--uri", &vici])
            .output()
            .unwrap();
        assert!(
            rekey.status.success(),
            "{}",
            String::from_utf8_lossy(&rekey.stdout)
        );
        assert!(lab.traffic(2), "Abczz after the rekey");
        let status = lab.ok(&["status"]);
        assert!(status.contains("ESTABLISHED, IKEv2"), "{status}");
        assert!(status.contains("established"), "{status}");
        // The wire, decrypted with the keys the charons logged: every SA decrypts.
        assert!(
            status
                .contains("decrypting with the session keys the charons logged: 1 IKEv2, 0 IKEv1"),
            "{status}"
        );
        // The header: the Traffic column (the decrypted selectors) may come first.
        let table: Vec<&str> = status
            .lines()
            .skip_while(|l| !(l.contains("Local ") && l.contains(" Remote ")))
            .take_while(|l| !l.is_empty())
            .collect();
        assert!(!table.is_empty(), "no SA table: {status}");
        assert!(table[0].contains(" Decryption "), "{status}");
        assert!(table.len() > 2, "{status}");
        assert!(
            table[1..].iter().all(|l| l.contains(" decrypted ")),
            "{status}"
        );
    });
}

/// The IKE SAs of a capture, as `report --json` gives them.
fn ike_sas(pcap: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(bin())
        .args(["report", "--json"])
        .arg(pcap)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["ike_sas"].as_array().cloned().unwrap_or_default()
}

#[test]
fn on_demand_the_first_packet_starts_the_negotiation() {
    let _serial = lab_test!();
    let lab = Lab::new(19);
    lab.ok(&["up", "--scenario", "ok", "--on-demand"]);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        std::thread::sleep(Duration::from_millis(1500));
        let link = lab.dir.join("link.pcap");
        assert_eq!(
            ike_sas(&link),
            Vec::<serde_json::Value>::new(),
            "IKE before traffic"
        );
        // The first SYN of each connection is dropped while its SA is negotiated; TCP's
        // retransmission a second later goes through it.
        assert!(lab.traffic(2));
        // New connections over the SAs that are up start no negotiation of their own.
        assert!(lab.traffic(1));
    }));
    let save = lab._tmp.path().join("save");
    lab.down_and_check(&save);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    let sas = ike_sas(&save.join("link.pcap"));
    assert_eq!(sas.len(), 1, "{sas:?}");
    assert_eq!(sas[0]["state"], "established");
    assert_eq!(
        sas[0]["child_sas"].as_array().unwrap().len(),
        2,
        "{:?}",
        sas[0]
    );
    assert_eq!(cleartext_abczz(&save.join("link.pcap")), 0);
    let log = std::fs::read_to_string(save.join("alice").join("acquire.out")).unwrap();
    for child in ["abczz-with-bob-1", "abczz-with-bob-2"] {
        let line = format!("a packet needs child SA {child}; negotiating");
        assert_eq!(log.matches(&line).count(), 1, "{log}");
    }
    check_findings(
        "on demand",
        &findings(&save.join("link.pcap"), None),
        Expect::Established,
    );
}

#[test]
fn ikev1_main_mode_and_quick_mode_come_up() {
    let _serial = lab_test!();
    scenario("ikev1", 2, |lab| assert!(lab.traffic(2)));
}

#[test]
fn nat_t_comes_up_through_the_nat() {
    let _serial = lab_test!();
    scenario("nat-t", 3, |lab| assert!(lab.traffic(2)));
}

fn failing(name: &str, tag: u32) {
    scenario(name, tag, |lab| {
        assert!(!lab.traffic(1), "{name}: Abczz must not get through");
        std::thread::sleep(Duration::from_secs(1));
    });
}

#[test]
fn psk_mismatch_is_an_authentication_failure() {
    let _serial = lab_test!();
    failing("psk-mismatch", 4);
}

#[test]
fn not_mirrored_filters_send_the_replies_in_clear() {
    let _serial = lab_test!();
    // Two rounds 1 s apart: over 5 s of ESP from Alice, none back.
    scenario("not-mirrored", 5, |lab| {
        assert!(!lab.traffic(1));
        std::thread::sleep(Duration::from_secs(1));
        assert!(!lab.traffic(1));
    });
}

#[test]
fn ts_mismatch_is_refused_selectors() {
    let _serial = lab_test!();
    failing("ts-mismatch", 14);
}

#[test]
fn reversed_ports_narrow_the_sas_to_nothing() {
    let _serial = lab_test!();
    scenario("reversed-ports", 15, |lab| {
        assert!(!lab.traffic(1));
        std::thread::sleep(Duration::from_secs(28));
        assert!(!lab.traffic(1));
    });
}

#[test]
fn no_common_proposal_is_refused() {
    let _serial = lab_test!();
    failing("no-common-proposal", 6);
}

#[test]
fn pfs_mismatch_refuses_the_second_child() {
    let _serial = lab_test!();
    scenario("pfs-mismatch", 7, |lab| {
        // 6667 rides the IKE_AUTH child and works; 6668 needs CREATE_CHILD_SA and fails.
        assert!(!lab.traffic(1));
        std::thread::sleep(Duration::from_secs(1));
    });
}

#[test]
fn nat_breaks_the_seed_policies() {
    let _serial = lab_test!();
    failing("nat", 8);
}

#[test]
fn dh_mismatch_is_refused_in_the_clear() {
    let _serial = lab_test!();
    failing("dh-mismatch", 16);
}

#[test]
fn dh_retry_costs_one_round_trip_and_comes_up() {
    let _serial = lab_test!();
    scenario("dh-retry", 17, |lab| assert!(lab.traffic(2)));
}

#[test]
fn nat_router_dropping_udp_4500_stops_ike_auth() {
    let _serial = lab_test!();
    scenario("nat-4500-blocked", 18, |lab| {
        assert!(!lab.traffic(1));
        // The pings of a second round, past the 10 s stall threshold, let the capture
        // outside the NAT show the silence after IKE_SA_INIT as well.
        std::thread::sleep(Duration::from_secs(10));
        assert!(!lab.traffic(1));
    });
}

#[test]
fn esp_blocked_shows_ike_without_esp() {
    let _serial = lab_test!();
    scenario("esp-blocked", 9, |lab| {
        assert!(!lab.traffic(1));
        // ipsecmon expects ESP within 30 s of IKE completing; the second round's pings
        // put a frame after that time into the capture, which ends when `down` begins.
        std::thread::sleep(Duration::from_secs(28));
        assert!(!lab.traffic(1));
    });
}

#[test]
fn esp_one_way_shows_esp_from_alice_only() {
    let _serial = lab_test!();
    scenario("esp-one-way", 10, |lab| {
        assert!(!lab.traffic(1));
        assert!(!lab.traffic(1));
    });
}

#[test]
fn responder_down_is_unreachable() {
    let _serial = lab_test!();
    // Four IKE_SA_INIT on the lab's schedule, give-up at +15 s.
    scenario("responder-down", 11, |_| {
        std::thread::sleep(Duration::from_secs(16))
    });
}

#[test]
fn down_after_a_crashed_up_removes_what_was_made() {
    let _serial = lab_test!();
    let lab = Lab::new(12);
    let dir = lab.dir.to_string_lossy().into_owned();
    let mut up = Command::new(bin())
        .args(["lab", "up", "--prefix", &lab.prefix, "--dir", &dir])
        .spawn()
        .unwrap();
    // Kill `up` as soon as it has made something: the state file names it.
    let made = sys::wait_for(Duration::from_secs(20), || {
        State::load(&lab.dir)
            .ok()
            .flatten()
            .is_some_and(|s| !s.processes.is_empty())
    });
    let _ = up.kill();
    let _ = up.wait();
    assert!(made, "up made nothing");
    let state = State::load(&lab.dir).unwrap().unwrap();
    lab.ok(&["down"]);
    assert_eq!(lab.namespaces(), Vec::<String>::new());
    for p in &state.processes {
        assert!(!sys::alive(p.pid, p.start_time), "{} still runs", p.what);
    }
    assert!(!lab.dir.exists());
}

#[test]
fn up_refuses_a_namespace_it_did_not_make() {
    let _serial = lab_test!();
    let lab = Lab::new(13);
    let foreign = format!("{}-bob", lab.prefix);
    sys::ip(&["netns", "add", &foreign]).unwrap();
    let out = lab.cmd(&["up"]);
    let listed = lab.namespaces();
    let _ = sys::ip(&["netns", "del", &foreign]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "network namespace {foreign} exists and this lab did not create it"
        )),
        "{err}"
    );
    assert_eq!(
        listed,
        vec![foreign],
        "up must remove its own and keep the foreign one"
    );
    assert!(!lab.dir.exists());
}
