//! `ipsecmon enforce apply|remove` against real charon daemons: two network namespaces made
//! here (Alice 192.0.2.1 and Bob 192.0.2.2 on a veth pair), one charon in each with
//! kernel-libipsec, the seed's policies applied, a TCP connection to 6667 that must travel
//! as ESP, cleartext that Bob's packet filter must drop, and `remove` (twice) that must
//! leave nothing of ipsecmon in charon or nftables. Needs root, strongSwan (charon,
//! swanctl, kernel-libipsec), nftables, iproute2, tcpdump and python3; prints why it
//! skipped when something is missing. Everything it makes is removed when it ends, also on
//! failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CHARON: &str = "/usr/lib/ipsec/charon";
const LIBIPSEC: &str = "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so";

fn examples(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// Why the test cannot run here, if it cannot.
fn missing() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    for f in [CHARON, LIBIPSEC] {
        if !Path::new(f).exists() {
            return Some(format!(
                "{f} is missing (strongswan-charon, libcharon-extra-plugins)"
            ));
        }
    }
    for p in ["swanctl", "nft", "ip", "tcpdump", "python3"] {
        if !on_path(p) {
            return Some(format!("{p} is not installed"));
        }
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    None
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let o = run(program, args);
    assert!(
        o.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// One lab host: a namespace, its address, its charon.
struct Host {
    ns: String,
    addr: &'static str,
    /// The host's end of the veth pair.
    dev: String,
    /// The policy file it applies.
    policy: String,
    /// Further render options (`--ike-version 1`).
    options: Vec<String>,
    dir: PathBuf,
    charon: Option<Child>,
}

impl Host {
    fn vici(&self) -> String {
        format!("unix://{}/run/charon.vici", self.dir.display())
    }

    fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", &self.ns];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    fn swanctl(&self, what: &str) -> String {
        let o = run("swanctl", &[what, "--uri", &self.vici()]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn nft_table(&self) -> Option<String> {
        let o = self.exec(&["nft", "list", "table", "inet", "ipsecmon"]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    fn ipsecmon(&self, args: &[&str]) -> Output {
        let vici = self.vici();
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&["--netns", &self.ns, "--vici", &vici]);
        Command::new(env!("CARGO_BIN_EXE_ipsecmon"))
            .args(&all)
            .output()
            .expect("run ipsecmon")
    }

    /// `--policy FILE --data-plane libipsec` and the host's options.
    fn render_args(&self) -> Vec<&str> {
        let mut args = vec!["--policy", &self.policy, "--data-plane", "libipsec"];
        args.extend(self.options.iter().map(String::as_str));
        args
    }

    fn apply(&self, initiate: bool) {
        let dir = self.dir.join("applied").display().to_string();
        // Both hosts share the lab CA beside their directories (certificate rules).
        let ca = self.dir.with_file_name("ca").display().to_string();
        let mut args = vec!["enforce", "apply", "--dir", &dir, "--ca-dir", &ca];
        args.extend(self.render_args());
        if initiate {
            args.push("--initiate");
        }
        let o = self.ipsecmon(&args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn remove(&self) -> String {
        let o = self.ipsecmon(&["enforce", "remove"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

/// The two hosts and the scratch directory; dropping it stops the charons it started and
/// deletes the namespaces and files.
struct Lab {
    hosts: [Host; 2],
    root: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            if let Some(mut c) = h.charon.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            let _ = run("ip", &["netns", "del", &h.ns]);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn strongswan_conf(h: &Host) -> String {
    format!(
        "charon {{\n    load_modular = no\n    load = random nonce aes sha1 sha2 md5 hmac gmp openssl kdf pem pkcs1 pubkey x509 socket-default kernel-libipsec kernel-netlink vici\n    retransmit_tries = 2\n    filelog {{\n        lab {{\n            path = {dir}/charon.log\n            default = 1\n            flush_line = yes\n        }}\n    }}\n    plugins {{\n        vici {{\n            socket = {vici}\n        }}\n    }}\n}}\ninclude {dir}/rendered/strongswan.conf\n",
        dir = h.dir.display(),
        vici = h.vici()
    )
}

/// Two hosts named after the process and `test` (one letter per test, so tests running
/// at once do not collide), applying `policies` (Alice's, Bob's) with `options`.
fn build(test: char, policies: [String; 2], options: &[String]) -> Lab {
    let id = std::process::id();
    let root = std::env::temp_dir().join(format!("ipm-enf-{id}-{test}"));
    let [pa, pb] = policies;
    let host = |tag: &str, addr, policy| Host {
        ns: format!("ipm-enf-{id}-{test}{tag}"),
        addr,
        dev: format!("ie{id}{test}{tag}"),
        policy,
        options: options.to_vec(),
        dir: root.join(tag),
        charon: None,
    };
    let lab = Lab {
        hosts: [host("a", "192.0.2.1", pa), host("b", "192.0.2.2", pb)],
        root,
    };
    let veth = [lab.hosts[0].dev.clone(), lab.hosts[1].dev.clone()];
    for h in &lab.hosts {
        ok("ip", &["netns", "add", &h.ns]);
    }
    ok(
        "ip",
        &[
            "link", "add", &veth[0], "type", "veth", "peer", "name", &veth[1],
        ],
    );
    for (h, dev) in lab.hosts.iter().zip(&veth) {
        ok("ip", &["link", "set", dev, "netns", &h.ns]);
        let cidr = format!("{}/24", h.addr);
        ok("ip", &["-n", &h.ns, "addr", "add", &cidr, "dev", dev]);
        ok("ip", &["-n", &h.ns, "link", "set", "lo", "up"]);
        ok("ip", &["-n", &h.ns, "link", "set", dev, "up"]);
        // Decrypted packets arrive on the TUN device from an address routed via the veth.
        h.exec(&["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"]);
    }
    lab
}

/// Renders the host's policy once so its charon can start with the settings fragment.
fn start_charon(h: &mut Host) {
    std::fs::create_dir_all(h.dir.join("run")).unwrap();
    let out = h.dir.join("rendered").display().to_string();
    let mut args = vec!["enforce", "render", "--out", &out];
    args.extend(h.render_args());
    let o = Command::new(env!("CARGO_BIN_EXE_ipsecmon"))
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let conf = h.dir.join("strongswan.conf");
    std::fs::write(&conf, strongswan_conf(h)).unwrap();
    // `ip netns exec` gives charon a private mount namespace: its own /run for the pid file.
    let script = format!(
        "mount --bind '{}/run' /run && exec env STRONGSWAN_CONF='{}' {CHARON}",
        h.dir.display(),
        conf.display()
    );
    let child = Command::new("ip")
        .args(["netns", "exec", &h.ns, "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start charon");
    h.charon = Some(child);
    let socket = h.dir.join("run/charon.vici");
    assert!(
        wait_for(Duration::from_secs(15), || socket.exists()),
        "charon in {} did not open its VICI socket",
        h.ns
    );
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Bob echoes one message on 6667; Alice sends "hello". Returns what Alice got back, or
/// the error python printed.
fn tcp_6667(alice: &Host, bob: &Host, timeout_s: u32) -> String {
    let server = format!(
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{}',6667))\ns.listen(1)\ns.settimeout({})\nc,a=s.accept()\nc.sendall(b'pong:'+c.recv(100))\nc.close()",
        bob.addr,
        timeout_s + 2
    );
    let mut listener = Command::new("ip")
        .args(["netns", "exec", &bob.ns, "python3", "-c", &server])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let client = format!(
        "import socket\ntry:\n  s=socket.create_connection(('{}',6667),timeout={timeout_s})\n  s.sendall(b'hello')\n  print(s.recv(100).decode())\nexcept Exception as e:\n  print('error', e)",
        bob.addr
    );
    let o = alice.exec(&["python3", "-c", &client]);
    let _ = listener.kill();
    let _ = listener.wait();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Runs `f` while tcpdump records Bob's end of the link (not the TUN device, where the
/// decrypted packets appear); returns (cleartext TCP 6667, ESP-in-UDP)
/// packet counts.
fn watch_link(bob: &Host, f: impl FnOnce()) -> (usize, usize) {
    let pcap = bob.dir.join("link.pcap").display().to_string();
    let mut dump = Command::new("ip")
        .args([
            "netns",
            "exec",
            &bob.ns,
            "tcpdump",
            "-i",
            &bob.dev,
            "-n",
            "-U",
            "-w",
            &pcap,
            "--immediate-mode",
        ])
        .args(["-Z", "root", "tcp port 6667 or udp port 4500"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // tcpdump says "listening on ..." once it captures; only then is the test fair.
    let mut stderr = std::io::BufReader::new(dump.stderr.take().unwrap());
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut stderr, &mut line).unwrap_or(0) > 0
        && !line.contains("listening on")
    {
        line.clear();
    }
    f();
    // Without immediate mode, packets wait in the capture ring until a timeout, and a
    // tcpdump stopped before it would lose them.
    std::thread::sleep(Duration::from_millis(1000));
    // SIGTERM lets tcpdump write out what it holds.
    // SAFETY: kill has no memory preconditions; the pid is our own child's.
    unsafe { libc::kill(dump.id() as libc::pid_t, libc::SIGTERM) };
    let _ = dump.wait();
    assert!(
        line.contains("listening on"),
        "tcpdump did not start: {line}"
    );
    let count = |filter: &str| ok("tcpdump", &["-n", "-r", &pcap, filter]).lines().count();
    (count("tcp port 6667"), count("udp port 4500"))
}

/// Starts both charons and returns the lab, or prints why it cannot run here.
fn lab_or_skip(test: char, policies: [String; 2], options: &[String]) -> Option<Lab> {
    if let Some(why) = missing() {
        println!("skipped: {why}");
        return None;
    }
    let mut lab = build(test, policies, options);
    for h in &mut lab.hosts {
        start_charon(h);
    }
    Some(lab)
}

fn seed_policies() -> [String; 2] {
    [examples("alice.toml"), examples("bob.toml")]
}

/// Applies both policies (Alice initiates), waits for the SA, and checks that TCP 6667
/// works and crosses the link as ESP only.
fn negotiate_and_talk(lab: &Lab) {
    let [alice, bob] = &lab.hosts;
    bob.apply(false);
    alice.apply(true);
    assert!(
        wait_for(Duration::from_secs(15), || {
            let sas = alice.swanctl("--list-sas");
            sas.contains("ESTABLISHED")
                && sas.contains("abczz-with-bob-1: #")
                && sas.contains("INSTALLED")
        }),
        "no SA: {}",
        alice.swanctl("--list-sas")
    );
    let mut answer = String::new();
    let (clear, esp) = watch_link(bob, || answer = tcp_6667(alice, bob, 5));
    assert_eq!(answer, "pong:hello");
    assert_eq!(clear, 0, "cleartext TCP 6667 crossed the link");
    let pcap = bob.dir.join("link.pcap").display().to_string();
    assert!(
        esp >= 6,
        "expected the TCP exchange as ESP-in-UDP, saw {esp} packets: {}",
        ok("tcpdump", &["-n", "-r", &pcap])
    );
}

/// `remove` takes away exactly what apply added, and twice is fine.
fn remove_twice(lab: &Lab) {
    for h in &lab.hosts {
        let first = h.remove();
        assert!(first.contains("unloaded ipsecmon-"), "{first}");
        let second = h.remove();
        assert!(!second.contains("unloaded"), "{second}");
        let conns = h.swanctl("--list-conns");
        assert!(!conns.contains("ipsecmon-"), "{conns}");
        assert!(h.nft_table().is_none(), "the nft table is still there");
        assert!(!h.swanctl("--list-sas").contains("ipsecmon-"));
    }
}

#[test]
fn seed_policies_negotiate_enforce_and_go_away() {
    let Some(lab) = lab_or_skip('s', seed_policies(), &[]) else {
        return;
    };
    let [alice, bob] = &lab.hosts;

    // Applying twice is the same as applying once.
    bob.apply(false);
    bob.apply(false);
    let conns = bob.swanctl("--list-conns");
    assert_eq!(
        conns.matches("ipsecmon-abczz-with-alice:").count(),
        1,
        "{conns}"
    );
    // swanctl names well-known ports (6667 may print as "ircd"); 6668 has no name.
    assert!(conns.contains("abczz-with-alice-1: TUNNEL"), "{conns}");
    assert!(conns.contains("local:  192.0.2.2/32[tcp/6668]"), "{conns}");
    let table = bob.nft_table().expect("bob's nft table");
    assert!(
        table.contains("ip saddr 192.0.2.1 tcp dport 6667 iifname \"ipsec0\" accept"),
        "{table}"
    );

    // Alice has no policy yet: her cleartext to Bob's 6667 is dropped by Bob, ping is not.
    let clear = tcp_6667(alice, bob, 2);
    assert!(clear.starts_with("error"), "cleartext got through: {clear}");
    let ping = alice.exec(&["ping", "-c", "1", "-W", "2", bob.addr]);
    assert!(ping.status.success(), "ping is not governed by the policy");

    negotiate_and_talk(&lab);
    assert!(alice.swanctl("--list-sas").contains("IKEv2"));

    // The kernel data plane cannot run here (no kernel ESP), but its rulesets must load.
    for golden in ["alice", "bob"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/enforce")
            .join(golden)
            .join("ipsecmon.nft");
        let o = alice.exec(&["nft", "-c", "-f", &path.display().to_string()]);
        assert!(
            o.status.success(),
            "{golden}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    remove_twice(&lab);
}

#[test]
fn ikev1_main_mode_like_windows_2000() {
    let options = ["--ike-version".to_string(), "1".to_string()];
    let Some(lab) = lab_or_skip('1', seed_policies(), &options) else {
        return;
    };
    negotiate_and_talk(&lab);
    let sas = lab.hosts[0].swanctl("--list-sas");
    assert!(sas.contains("IKEv1"), "{sas}");
    // Session key PFS: the quick mode SAs carry the Diffie-Hellman group.
    assert!(sas.contains("MODP_1024"), "{sas}");
    remove_twice(&lab);
}

#[test]
fn certificate_rules_use_the_lab_ca() {
    if !on_path("pki") {
        println!("skipped: pki is not installed (strongswan-pki)");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let mut policies = seed_policies();
    for (i, p) in policies.iter_mut().enumerate() {
        let text = std::fs::read_to_string(&*p).unwrap().replace(
            r#"{ method = "preshared-key", key_file = "alice-bob.psk" }"#,
            r#"{ method = "certificate", ca = "CN=ipsecmon lab CA" }"#,
        );
        let path = scratch.path().join(format!("cert-{i}.toml"));
        std::fs::write(&path, text).unwrap();
        *p = path.display().to_string();
    }
    std::fs::copy(
        examples("alice-eve.psk"),
        scratch.path().join("alice-eve.psk"),
    )
    .unwrap();
    let Some(lab) = lab_or_skip('c', policies, &[]) else {
        return;
    };
    negotiate_and_talk(&lab);
    let sas = lab.hosts[0].swanctl("--list-sas");
    assert!(sas.contains("remote '192.0.2.2'"), "{sas}");
    remove_twice(&lab);
}
