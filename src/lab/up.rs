//! `lab up` and `lab down`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::charon::{self, CharonFiles};
use super::scenario::{self, Scenario, Tweak};
use super::state::{HostState, State};
use super::sys::{check_requirements, check_root, ip, netns_list, nft_load, stop};
use super::topology::{self, addresses, netns_name};
use super::{io, LabError};
use crate::enforce::{self, ApplyOptions, DataPlane, IkeVersion, RenderOptions, Rendered};
use crate::policy::{LoadOptions, Policy};

/// The name the lab renders policies under: connections `lab-…`, nft table `inet lab`.
const RENDER_NAME: &str = "lab";

/// What `lab up` builds.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Namespace prefix (`PREFIX-alice`, …); empty for `alice`, `bob`, `nat`.
    pub prefix: String,
    /// The lab directory; [`default_dir`] when `None`.
    pub dir: Option<PathBuf>,
    /// A preset of [`scenario::SCENARIOS`]; `ok` when neither it nor policy files are given.
    pub scenario: Option<String>,
    /// Put a NAT namespace between the hosts (scenarios `nat` and `nat-t` always do).
    pub nat: bool,
    /// Alice's policy file (with `bob`), instead of a scenario.
    pub alice: Option<PathBuf>,
    /// Bob's policy file (with `alice`).
    pub bob: Option<PathBuf>,
    /// IKE version for policy files (scenarios bring their own); IKEv2 by default.
    pub ike: Option<IkeVersion>,
    /// Negotiate on demand: nobody starts when the policies are loaded, and the first
    /// packet a Negotiate filter covers starts the negotiation, through an
    /// `ipsecmon enforce acquire` beside each charon (see [`crate::enforce::acquire`]).
    pub on_demand: bool,
}

/// The lab directory of a prefix: `/var/lib/ipsecmon/lab/PREFIX` (`default` for none).
/// Not under `/run`: each charon gets its own directory bind-mounted over `/run`, which
/// would hide the lab's files from it.
pub fn default_dir(prefix: &str) -> PathBuf {
    let name = if prefix.is_empty() { "default" } else { prefix };
    Path::new("/var/lib/ipsecmon/lab").join(name)
}

/// What the options resolve to.
#[derive(Debug, Clone)]
struct Plan {
    scenario: Option<&'static Scenario>,
    alice: PathBuf,
    bob: PathBuf,
    nat: bool,
    ike: IkeVersion,
    bob_daemon: bool,
    tweaks: &'static [Tweak],
    on_demand: bool,
}

fn check_prefix(prefix: &str) -> Result<(), LabError> {
    let ok = prefix.len() <= 10
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(LabError::Usage(format!(
            "--prefix {prefix:?}: use up to 10 lower-case letters and digits"
        )))
    }
}

/// Paths are written into configuration files and shell commands: keep them plain.
fn check_dir(dir: &Path) -> Result<(), LabError> {
    let text = dir.to_string_lossy();
    let ok = dir.is_absolute()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c));
    if !ok {
        return Err(LabError::Usage(format!(
            "--dir {text}: give an absolute path of letters, digits, '/', '-', '_' and '.'"
        )));
    }
    if dir.starts_with("/run") || dir.starts_with("/var/run") {
        return Err(LabError::Usage(format!(
            "--dir {text}: not under /run, which each charon gets a private copy of"
        )));
    }
    Ok(())
}

fn plan(opts: &UpOptions, dir: &Path) -> Result<Plan, LabError> {
    let custom = opts.alice.is_some() || opts.bob.is_some();
    if custom && opts.scenario.is_some() {
        return Err(LabError::Usage(
            "give either --scenario or --alice and --bob, not both".into(),
        ));
    }
    if let (Some(alice), Some(bob)) = (&opts.alice, &opts.bob) {
        return Ok(Plan {
            scenario: None,
            alice: alice.clone(),
            bob: bob.clone(),
            nat: opts.nat,
            ike: opts.ike.unwrap_or_default(),
            bob_daemon: true,
            tweaks: &[],
            on_demand: opts.on_demand,
        });
    }
    if custom {
        return Err(LabError::Usage(
            "give both --alice FILE and --bob FILE".into(),
        ));
    }
    let name = opts.scenario.as_deref().unwrap_or("ok");
    let s = scenario::find(name).ok_or_else(|| {
        LabError::Usage(format!(
            "unknown scenario {name:?}; the scenarios are {}",
            scenario::names()
        ))
    })?;
    let policies = dir.join("policies");
    Ok(Plan {
        scenario: Some(s),
        alice: policies.join("alice.toml"),
        bob: policies.join("bob.toml"),
        nat: s.nat || opts.nat,
        ike: opts.ike.unwrap_or(s.ike),
        bob_daemon: s.bob_daemon,
        tweaks: s.tweaks,
        on_demand: opts.on_demand,
    })
}

/// Builds the lab. On failure everything made so far is removed again.
pub fn up(opts: &UpOptions) -> Result<State, LabError> {
    check_root()?;
    check_requirements()?;
    check_prefix(&opts.prefix)?;
    let dir = opts
        .dir
        .clone()
        .unwrap_or_else(|| default_dir(&opts.prefix));
    check_dir(&dir)?;
    if State::load(&dir)?.is_some() {
        let flags = down_flags(&opts.prefix, opts.dir.as_deref());
        return Err(LabError::AlreadyUp { dir, flags });
    }
    let plan = plan(opts, &dir)?;
    let occupied = std::fs::read_dir(&dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if occupied {
        return Err(LabError::Usage(format!(
            "{}: exists and is not empty; the lab keeps its files in a directory of its own",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut state = State::new(&opts.prefix, &dir);
    state.scenario = plan.scenario.map(|s| s.name.to_string());
    state.nat = plan.nat;
    state.save()?;
    match build(&mut state, &plan) {
        Ok(()) => {
            state.complete = true;
            state.save()?;
            Ok(state)
        }
        Err(e) => {
            let _ = teardown(&state, None);
            Err(e)
        }
    }
}

fn down_flags(prefix: &str, dir: Option<&Path>) -> String {
    let mut flags = String::new();
    if !prefix.is_empty() {
        flags.push_str(&format!(" --prefix {prefix}"));
    }
    if let Some(d) = dir {
        flags.push_str(&format!(" --dir {}", d.display()));
    }
    flags
}

fn build(state: &mut State, plan: &Plan) -> Result<(), LabError> {
    if let Some(s) = plan.scenario {
        let policies = state.dir.join("policies");
        std::fs::create_dir_all(&policies).map_err(io(&policies))?;
        for (name, contents) in s.files {
            let path = policies.join(name);
            std::fs::write(&path, contents).map_err(io(&path))?;
        }
    }
    let captures = topology::build(state, plan.nat)?;
    for c in captures {
        charon::start_capture(state, &c)?;
        state.captures.push(c);
        state.save()?;
    }
    let a = addresses(plan.nat);
    let alice = host(
        state,
        plan,
        "alice",
        &plan.alice,
        a.alice,
        a.alice_seen_by_bob,
    )?;
    let bob = host(state, plan, "bob", &plan.bob, a.bob, a.bob)?;
    for tweak in plan.tweaks {
        apply_tweak(state, plan, tweak)?;
    }
    // Bob first: his configuration is loaded before Alice starts negotiating.
    for (name, rendered) in [("bob", bob), ("alice", alice)] {
        if let Some(rendered) = rendered {
            apply(state, name, &rendered)?;
            if plan.on_demand {
                start_acquire(state, name)?;
            }
        }
    }
    Ok(())
}

/// Starts `ipsecmon enforce acquire` in a host's namespace, talking to its charon.
fn start_acquire(state: &mut State, name: &str) -> Result<(), LabError> {
    let host = state
        .host(name)
        .ok_or_else(|| LabError::Usage(format!("no host {name}")))?;
    let (netns, dir) = (host.netns.clone(), host.dir.clone());
    let Some(vici) = host.vici.clone() else {
        return Ok(());
    };
    let exe = std::env::current_exe().map_err(io(Path::new("/proc/self/exe")))?;
    let exe = exe.to_string_lossy().into_owned();
    let argv = [
        exe.as_str(),
        "--log",
        "info",
        "enforce",
        "acquire",
        "--vici",
        vici.as_str(),
    ];
    let out = dir.join("acquire.out");
    charon::spawn_detached(state, &format!("acquire {name}"), &netns, &argv, &out)?;
    // libpcap binds the log group within milliseconds; give it that before traffic.
    std::thread::sleep(Duration::from_millis(300));
    Ok(())
}

/// Renders a host's policy, starts its charon (unless the scenario runs none) and records
/// it; returns the rendering to apply, `None` for a host without a daemon.
fn host(
    state: &mut State,
    plan: &Plan,
    name: &str,
    policy_file: &Path,
    address: IpAddr,
    reachable_at: IpAddr,
) -> Result<Option<Rendered>, LabError> {
    let netns = netns_name(&state.prefix, name);
    let files = CharonFiles {
        dir: state.dir.join(name),
    };
    std::fs::create_dir_all(&files.dir).map_err(io(&files.dir))?;
    let initiate = name == "alice" && !plan.on_demand;
    let rendered = render(policy_file, plan.ike, address, initiate)?;
    rendered.write_to(&files.enforce_dir())?;
    let daemon = name == "alice" || plan.bob_daemon;
    if daemon {
        charon::start(state, name, &netns, &files)?;
    }
    state.hosts.push(HostState {
        name: name.into(),
        netns,
        address,
        reachable_at,
        dir: files.dir.clone(),
        vici: daemon.then(|| files.vici()),
        policy: policy_file.to_path_buf(),
    });
    state.save()?;
    Ok(daemon.then_some(rendered))
}

/// Loads a policy with `me` standing for the host's address and renders it for
/// kernel-libipsec; with `initiate` (Alice, unless on demand) the host starts negotiating
/// on load.
fn render(path: &Path, ike: IkeVersion, me: IpAddr, initiate: bool) -> Result<Rendered, LabError> {
    let me_list = [me];
    let load = LoadOptions {
        me: Some(&me_list),
        ..LoadOptions::default()
    };
    let policy = Policy::load_with(&path.to_string_lossy(), load)
        .map_err(|e| LabError::Policy(e.to_string()))?;
    let options = RenderOptions {
        ike_version: ike,
        local: Some(me),
        name: RENDER_NAME.into(),
        data_plane: DataPlane::libipsec(),
        initiate,
        ..RenderOptions::default()
    };
    Ok(enforce::render(&policy, &options)?)
}

fn apply(state: &State, name: &str, rendered: &Rendered) -> Result<(), LabError> {
    let host = state
        .host(name)
        .ok_or_else(|| LabError::Usage(format!("no host {name}")))?;
    let Some(vici) = &host.vici else {
        return Ok(());
    };
    let opts = ApplyOptions {
        vici: vici.clone(),
        netns: Some(host.netns.clone()),
        dir: host.dir.join("enforce"),
        ca_dir: state.dir.join("ca"),
    };
    enforce::apply(rendered, &opts)?;
    Ok(())
}

fn apply_tweak(state: &State, plan: &Plan, tweak: &Tweak) -> Result<(), LabError> {
    let Some(contents) = plan.scenario.and_then(|s| s.file(tweak.file)) else {
        return Err(LabError::Usage(format!(
            "tweak {} is not shipped",
            tweak.file
        )));
    };
    for name in tweak.hosts {
        let dir = state.dir.join(name);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(tweak.file);
        std::fs::write(&path, contents).map_err(io(&path))?;
        nft_load(&netns_name(&state.prefix, name), &path)?;
    }
    Ok(())
}

/// What `lab down` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownReport {
    /// Whether a lab was up at all.
    pub was_up: bool,
    /// Processes stopped (what they were).
    pub stopped: Vec<String>,
    /// Namespaces deleted.
    pub namespaces: Vec<String>,
    /// Files saved with `--save`.
    pub saved: Vec<PathBuf>,
    /// The directory removed.
    pub dir: PathBuf,
}

/// Removes the lab in `dir`: stops its processes (tcpdump first, so a capture ends with
/// the lab as it ran, then charon), saves captures, logs and configuration to `save` when
/// given, deletes its namespaces and its directory. Without a lab there is nothing to do.
///
/// Limitation: the DELETEs charon sends when it is stopped are not in the captures; end
/// an SA with `swanctl --terminate` before `down` to capture its deletion.
pub fn down(dir: &Path, save: Option<&Path>) -> Result<DownReport, LabError> {
    check_root()?;
    match State::load(dir)? {
        None => Ok(DownReport {
            dir: dir.to_path_buf(),
            ..DownReport::default()
        }),
        Some(state) => teardown(&state, save),
    }
}

fn teardown(state: &State, save: Option<&Path>) -> Result<DownReport, LabError> {
    let mut report = DownReport {
        was_up: true,
        dir: state.dir.clone(),
        ..DownReport::default()
    };
    // Captures first: they end with the lab as it ran, never with charon's shutdown
    // (whose DELETEs leave or not depending on how fast it exits).
    let (captures, daemons): (Vec<_>, Vec<_>) = state
        .processes
        .iter()
        .partition(|p| p.what.starts_with("tcpdump"));
    for p in captures.into_iter().chain(daemons) {
        stop(p.pid, p.start_time, Duration::from_secs(5));
        report.stopped.push(p.what.clone());
    }
    if let Some(to) = save {
        report.saved = save_files(state, to)?;
    }
    let existing = netns_list()?;
    for ns in state.namespaces.iter().rev() {
        if existing.contains(ns) {
            ip(&["netns", "del", ns])?;
            report.namespaces.push(ns.clone());
        }
    }
    if state.dir.join(super::state::STATE_FILE).exists() {
        std::fs::remove_dir_all(&state.dir).map_err(io(&state.dir))?;
    }
    remove_empty_default_parents(&state.dir);
    Ok(report)
}

/// `up` creates `/var/lib/ipsecmon/lab` for default directories; the last `down` takes it
/// (and `/var/lib/ipsecmon`) away again when nothing else is in them.
fn remove_empty_default_parents(dir: &Path) {
    let base = default_dir("");
    let Some(lab) = base.parent() else {
        return;
    };
    if dir.parent() == Some(lab) && std::fs::remove_dir(lab).is_ok() {
        if let Some(top) = lab.parent() {
            let _ = std::fs::remove_dir(top);
        }
    }
}

/// Copies the captures, each host's charon log, strongswan.conf, acquire log (on demand)
/// and rendered policy, and the scenario's files into `to`.
fn save_files(state: &State, to: &Path) -> Result<Vec<PathBuf>, LabError> {
    let mut saved = Vec::new();
    let mut copy = |from: &Path, rel: &Path| -> Result<(), LabError> {
        if !from.is_file() {
            return Ok(());
        }
        let dest = to.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::copy(from, &dest).map_err(io(from))?;
        saved.push(dest);
        Ok(())
    };
    for c in &state.captures {
        copy(&c.file, Path::new(&format!("{}.pcap", c.name)))?;
    }
    for h in &state.hosts {
        for f in ["charon.log", "strongswan.conf", "acquire.out"] {
            copy(&h.dir.join(f), &Path::new(&h.name).join(f))?;
        }
        for f in [
            enforce::SWANCTL_CONF,
            enforce::NFT_FILE,
            enforce::STRONGSWAN_CONF,
        ] {
            let rel = Path::new(&h.name).join("enforce").join(f);
            copy(&h.dir.join("enforce").join(f), &rel)?;
        }
    }
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> UpOptions {
        UpOptions::default()
    }

    #[test]
    fn without_arguments_the_lab_is_the_ok_scenario() {
        let p = plan(&opts(), Path::new("/var/lib/ipsecmon/lab/t")).unwrap();
        assert_eq!(p.scenario.map(|s| s.name), Some("ok"));
        assert_eq!(
            p.alice,
            Path::new("/var/lib/ipsecmon/lab/t/policies/alice.toml")
        );
        assert!(!p.nat && p.bob_daemon);
    }

    #[test]
    fn scenarios_bring_their_topology_and_version() {
        let mut o = opts();
        o.scenario = Some("nat-t".into());
        assert!(plan(&o, Path::new("/x")).unwrap().nat);
        o.scenario = Some("ikev1".into());
        assert_eq!(plan(&o, Path::new("/x")).unwrap().ike, IkeVersion::V1);
        o.scenario = Some("responder-down".into());
        assert!(!plan(&o, Path::new("/x")).unwrap().bob_daemon);
    }

    #[test]
    fn bad_combinations_are_refused_with_a_reason() {
        let mut o = opts();
        o.scenario = Some("nope".into());
        let e = plan(&o, Path::new("/x")).unwrap_err().to_string();
        assert!(
            e.starts_with("unknown scenario \"nope\"; the scenarios are ok, "),
            "{e}"
        );
        o.alice = Some("a.toml".into());
        assert_eq!(
            plan(&o, Path::new("/x")).unwrap_err().to_string(),
            "give either --scenario or --alice and --bob, not both"
        );
        o.scenario = None;
        assert_eq!(
            plan(&o, Path::new("/x")).unwrap_err().to_string(),
            "give both --alice FILE and --bob FILE"
        );
        assert!(check_prefix("t1").is_ok());
        assert!(check_prefix("T-1").is_err());
        assert!(check_dir(Path::new("/tmp/a b")).is_err());
        assert!(check_dir(Path::new("relative")).is_err());
    }

    #[test]
    fn the_default_directory_is_per_prefix() {
        assert_eq!(default_dir(""), Path::new("/var/lib/ipsecmon/lab/default"));
        assert_eq!(default_dir("t9"), Path::new("/var/lib/ipsecmon/lab/t9"));
        assert!(check_dir(Path::new("/run/x")).is_err());
    }
}
