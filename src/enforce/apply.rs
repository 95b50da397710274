//! Loading a [`Rendered`] policy into a running charon (over VICI) and nftables, and
//! taking it away again.
//!
//! Applying is assigning, as in the Windows snap-in: only one policy is assigned at a time,
//! so [`apply`] also unloads connections and secrets of an earlier apply under the same
//! name that the new rendering no longer has. What belongs to ipsecmon is recognised by
//! its names: connections `NAME-…`, secrets `ike-NAME-…`, the table `inet NAME`
//! ([`super::RenderOptions::name`]). [`remove`] therefore needs no saved state and takes
//! away exactly that, even after the policy file changed. Both are idempotent.
//!
//! Certificates and private keys loaded for certificate rules stay in charon after
//! `remove`: VICI can only flush all of them, which would touch credentials ipsecmon did
//! not load.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::conf::{Item, Section};
use super::vici::{self, Client};
use super::{DataPlane, EnforceError, Rendered, NFT_FILE, PKI_SCRIPT};

/// The Debian packages `apply` relies on, named in its messages.
pub const PACKAGES: &str =
    "strongswan-charon, strongswan-swanctl, libcharon-extra-plugins and nftables";

/// Where and how to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// charon's VICI socket, `unix:///PATH` ([`vici::DEFAULT_URI`] by default).
    pub vici: String,
    /// A network namespace (`ip netns`) to load the nft table in; the VICI socket is a file
    /// and is reached from here.
    pub netns: Option<String>,
    /// Where the rendered files are written before loading (and where `pki.sh` puts the
    /// certificates).
    pub dir: PathBuf,
    /// The lab CA's directory for `pki.sh` (made on first use, shared by the hosts).
    pub ca_dir: PathBuf,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Connections loaded.
    pub loaded_connections: Vec<String>,
    /// Secrets loaded.
    pub loaded_secrets: Vec<String>,
    /// Connections and secrets of an earlier apply that were unloaded.
    pub unloaded: Vec<String>,
    /// The nft table loaded.
    pub nft_table: String,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// What [`remove`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveReport {
    /// Connections and secrets unloaded (empty when there were none).
    pub unloaded: Vec<String>,
    /// IKE SAs terminated.
    pub terminated: u32,
    /// Whether charon was reachable at all (when not, there was nothing to unload).
    pub charon_reachable: bool,
    /// The nft table deleted (deleting a missing table is not an error).
    pub nft_table: String,
}

/// Whether a program is on the `PATH`.
fn have(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|d| d.join(program).is_file())
}

fn require(program: &str) -> Result<(), EnforceError> {
    if have(program) {
        return Ok(());
    }
    Err(EnforceError::Missing {
        program: program.into(),
        packages: PACKAGES,
    })
}

/// Runs a command (inside `netns` when given), feeding `stdin`; errors carry its stderr.
fn run(
    netns: Option<&str>,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, EnforceError> {
    use std::io::Write;
    use std::process::Stdio;
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, program]);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let line = format!("{cmd:?}").replace('"', "");
    let fail = |output: String| EnforceError::Command {
        command: line.clone(),
        output,
    };
    let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(fail(if err.is_empty() {
            out.status.to_string()
        } else {
            err
        }));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Refuses early, in one line naming the packages, when nftables or charon is missing.
fn preflight(opts: &ApplyOptions) -> Result<(), EnforceError> {
    require("nft")?;
    if opts.netns.is_some() {
        require("ip")?;
    }
    let socket = vici::socket_path(&opts.vici);
    if !Path::new(socket).exists() {
        let charon = Path::new("/usr/lib/ipsec/charon").exists();
        let what = if charon {
            "charon is installed but not listening there: start it (with the vici plugin)"
        } else {
            "charon is not installed"
        };
        return Err(EnforceError::Vici {
            uri: opts.vici.clone(),
            reason: format!("no VICI socket; {what}; the Debian packages are {PACKAGES}"),
        });
    }
    Ok(())
}

/// Writes the rendered files, loads the nft table, then the secrets and connections
/// (secrets first, so a connection that starts at once finds its key), and unloads what an
/// earlier apply under the same name loaded and this one does not. When charon refuses
/// something midway, what was loaded before stays; [`remove`] takes it away.
pub fn apply(rendered: &Rendered, opts: &ApplyOptions) -> Result<ApplyReport, EnforceError> {
    preflight(opts)?;
    let files = rendered.write_to(&opts.dir)?;
    check_routing_rule(rendered, opts)?;
    if rendered.pki_script.is_some() {
        make_certificates(opts)?;
    }
    let nft = opts.dir.join(NFT_FILE);
    run(
        opts.netns.as_deref(),
        "nft",
        &["-f", &nft.to_string_lossy()],
        None,
    )?;
    let mut client = Client::connect(&opts.vici)?;
    let mut report = ApplyReport {
        nft_table: rendered.nft_table.clone(),
        files,
        ..ApplyReport::default()
    };
    if rendered.pki_script.is_some() {
        load_credentials(&mut client, &opts.dir)?;
    }
    load_secrets(&mut client, rendered, &mut report)?;
    load_connections(&mut client, rendered, &opts.dir, &mut report)?;
    tracing::info!(
        vici = %opts.vici,
        netns = opts.netns.as_deref().unwrap_or("-"),
        connections = report.loaded_connections.len(),
        secrets = report.loaded_secrets.len(),
        table = %report.nft_table,
        "policy applied"
    );
    Ok(report)
}

/// With kernel-libipsec, charon must run with the rendered settings: without its fwmark
/// routing rule the marked packets would not reach the TUN device (the packet filter then
/// drops them, so the policy fails closed, but nothing would work).
fn check_routing_rule(rendered: &Rendered, opts: &ApplyOptions) -> Result<(), EnforceError> {
    let DataPlane::Libipsec { fwmark, .. } = &rendered.options.data_plane else {
        return Ok(());
    };
    let rules = run(opts.netns.as_deref(), "ip", &["rule", "show"], None)?;
    let mark = format!("fwmark {fwmark:#x} ");
    if rules.contains(&mark) {
        return Ok(());
    }
    let place = opts
        .netns
        .as_ref()
        .map_or(String::new(), |ns| format!(" in namespace {ns}"));
    Err(EnforceError::Vici {
        uri: opts.vici.clone(),
        reason: format!(
            "charon is not running with the rendered settings (no routing rule for {}{place}); include {} from its strongswan.conf and restart it",
            mark.trim(),
            opts.dir.join(super::STRONGSWAN_CONF).display()
        ),
    })
}

fn prefix_of(rendered: &Rendered) -> (String, String) {
    let name = &rendered.options.name;
    (format!("{name}-"), format!("ike-{name}-"))
}

fn load_secrets(
    c: &mut Client,
    r: &Rendered,
    report: &mut ApplyReport,
) -> Result<(), EnforceError> {
    let (_, secret_prefix) = prefix_of(r);
    let empty = Section::new("");
    let secrets = r.swanctl.get("secrets").unwrap_or(&empty);
    for s in secrets.sections() {
        c.call("load-shared", &shared_message(s))?;
        report.loaded_secrets.push(s.name.clone());
    }
    for id in c.names("get-shared", "keys")? {
        if id.starts_with(&secret_prefix) && !r.secrets.contains(&id) {
            let mut m = Section::new("");
            m.value("id", id.as_str());
            c.call("unload-shared", &m)?;
            report.unloaded.push(id);
        }
    }
    Ok(())
}

/// A `secrets` entry as swanctl sends it: `id`, `type`, `data` and the `id-*` owners.
fn shared_message(s: &Section) -> Section {
    let mut m = Section::new("");
    m.value("id", s.name.as_str()).value("type", "IKE");
    let mut owners = Vec::new();
    for item in &s.items {
        if let Item::Value { key, value, .. } = item {
            if key == "secret" {
                m.secret("data", value);
            } else if key.starts_with("id") {
                owners.push(value.clone());
            }
        }
    }
    m.list("owners", owners);
    m
}

fn load_connections(
    c: &mut Client,
    r: &Rendered,
    dir: &Path,
    report: &mut ApplyReport,
) -> Result<(), EnforceError> {
    let (conn_prefix, _) = prefix_of(r);
    for name in c.names("get-conns", "conns")? {
        if name.starts_with(&conn_prefix) && !r.connections.contains(&name) {
            unload_conn(c, &name)?;
            report.unloaded.push(name);
        }
    }
    let empty = Section::new("");
    let conns = r.swanctl.get("connections").unwrap_or(&empty);
    for conn in conns.sections() {
        let mut m = Section::new("");
        m.section(with_certificate_data(conn, dir)?);
        c.call("load-conn", &m)?;
        report.loaded_connections.push(conn.name.clone());
    }
    Ok(())
}

fn unload_conn(c: &mut Client, name: &str) -> Result<(), EnforceError> {
    let mut m = Section::new("");
    m.value("name", name);
    c.call("unload-conn", &m).map(|_| ())
}

/// swanctl names certificate files in `certs`/`cacerts`; VICI wants their contents. The
/// files are those `pki.sh` wrote under `x509/` and `x509ca/`.
fn with_certificate_data(s: &Section, dir: &Path) -> Result<Section, EnforceError> {
    let mut out = Section::new(s.name.clone());
    for item in &s.items {
        let item = match item {
            Item::List { key, values } if key == "certs" || key == "cacerts" => {
                let sub = if key == "certs" { "x509" } else { "x509ca" };
                let mut data = Vec::new();
                for v in values {
                    data.push(read(&dir.join(sub).join(v))?);
                }
                Item::List {
                    key: key.clone(),
                    values: data,
                }
            }
            Item::Section(inner) => Item::Section(with_certificate_data(inner, dir)?),
            other => other.clone(),
        };
        out.items.push(item);
    }
    Ok(out)
}

fn read(path: &Path) -> Result<String, EnforceError> {
    std::fs::read_to_string(path).map_err(|source| EnforceError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs the rendered `pki.sh` unless this host's certificate is already there.
fn make_certificates(opts: &ApplyOptions) -> Result<(), EnforceError> {
    if opts.dir.join("x509/host.crt").exists() {
        return Ok(());
    }
    require("pki").map_err(|_| EnforceError::Missing {
        program: "pki".into(),
        packages: "strongswan-pki",
    })?;
    let script = opts.dir.join(PKI_SCRIPT);
    run(
        None,
        "sh",
        &[&script.to_string_lossy(), &opts.ca_dir.to_string_lossy()],
        None,
    )
    .map(|_| ())
}

fn load_credentials(c: &mut Client, dir: &Path) -> Result<(), EnforceError> {
    let mut key = Section::new("");
    key.value("type", "any")
        .secret("data", &read(&dir.join("private/host.key"))?);
    c.call("load-key", &key)?;
    for (sub, flag) in [("x509ca/ca.crt", "CA"), ("x509/host.crt", "NONE")] {
        let mut cert = Section::new("");
        cert.value("type", "X509")
            .value("flag", flag)
            .value("data", read(&dir.join(sub))?);
        c.call("load-cert", &cert)?;
    }
    Ok(())
}

/// Takes away what [`apply`] loaded under `name`: terminates and unloads the connections
/// `NAME-…`, unloads the secrets `ike-NAME-…`, and deletes the table `inet NAME`. charon
/// not running is not an error (nothing of it is left to unload).
pub fn remove(name: &str, opts: &ApplyOptions) -> Result<RemoveReport, EnforceError> {
    require("nft")?;
    let mut report = RemoveReport {
        nft_table: format!("inet {name}"),
        ..RemoveReport::default()
    };
    if Path::new(vici::socket_path(&opts.vici)).exists() {
        let mut c = Client::connect(&opts.vici)?;
        report.charon_reachable = true;
        unload_all(&mut c, name, &mut report)?;
    }
    let script = format!("table inet {name} {{}}\ndelete table inet {name}\n");
    run(opts.netns.as_deref(), "nft", &["-f", "-"], Some(&script))?;
    Ok(report)
}

fn unload_all(c: &mut Client, name: &str, report: &mut RemoveReport) -> Result<(), EnforceError> {
    let conn_prefix = format!("{name}-");
    for conn in c.names("get-conns", "conns")? {
        if conn.starts_with(&conn_prefix) {
            unload_conn(c, &conn)?;
            report.terminated += terminate(c, &conn)?;
            report.unloaded.push(conn);
        }
    }
    let secret_prefix = format!("ike-{name}-");
    for id in c.names("get-shared", "keys")? {
        if id.starts_with(&secret_prefix) {
            let mut m = Section::new("");
            m.value("id", id.as_str());
            c.call("unload-shared", &m)?;
            report.unloaded.push(id);
        }
    }
    Ok(())
}

/// Terminates the IKE SAs of a connection without waiting for the peer (an unreachable
/// peer must not stall `remove`); returns how many.
fn terminate(c: &mut Client, conn: &str) -> Result<u32, EnforceError> {
    let mut m = Section::new("");
    m.value("ike", conn)
        .value("force", "yes")
        .value("timeout", "-1");
    let reply = c.request("terminate", &m)?;
    Ok(reply
        .get_value("terminated")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}
