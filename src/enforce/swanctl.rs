//! The policy as strongSwan connections, children and secrets (swanctl.conf), and the
//! charon settings the data plane needs (a strongswan.conf fragment).

use std::net::IpAddr;

use super::conf::Section;
use super::{DataPlane, EnforceError, IkeVersion, RenderOptions};
use crate::policy::model::*;

/// What [`plan`] produced.
pub(super) struct Plan {
    pub tree: Section,
    pub connections: Vec<String>,
    pub children: Vec<(String, Vec<String>)>,
    pub secrets: Vec<String>,
    pub notes: Vec<String>,
    pub pki_script: Option<String>,
    /// The child SA of each (rule index, filter index) of the policy.
    pub child_of: Vec<((usize, usize), String)>,
}

/// How a connection authenticates, from a rule's first method strongSwan can use.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Auth {
    Psk(Secret),
    Cert { ca: String },
}

/// One IKE peer and the children of every rule that negotiates with it.
struct Conn {
    name: String,
    remote_addrs: Vec<String>,
    tunnel: bool,
    auth: Auth,
    first_rule: String,
    comments: Vec<String>,
    children: Vec<Section>,
    child_names: Vec<String>,
}

/// A filter turned so that its local end comes first.
struct Oriented {
    local: Address,
    remote: Address,
    local_port: Option<u16>,
    remote_port: Option<u16>,
    protocol: Protocol,
}

/// Builds the connections and secrets of a policy.
pub(super) fn plan(
    policy: &Policy,
    opts: &RenderOptions,
    local: IpAddr,
) -> Result<Plan, EnforceError> {
    let mut conns: Vec<Conn> = Vec::new();
    let mut notes = Vec::new();
    let mut child_of = Vec::new();
    for (index, rule) in policy.rules.iter().enumerate().filter(|(_, r)| r.enabled) {
        let action = policy.filter_action_of(rule);
        if action.action != Action::Negotiate {
            continue;
        }
        let auth = choose_auth(&rule.name, &rule.authentication, &mut notes)?.ok_or_else(|| {
            EnforceError::KerberosOnly {
                rule: rule.name.clone(),
            }
        })?;
        for (filter, child) in add_rule(policy, opts, local, rule, auth, &mut conns)? {
            child_of.push(((index, filter), child));
        }
    }
    if let Some(dr) = &policy.default_response {
        add_default_response(opts, dr, &mut conns, &mut notes)?;
    }
    let mut plan = assemble(policy, opts, local, conns, notes);
    plan.child_of = child_of;
    Ok(plan)
}

/// The first method strongSwan can use; Kerberos is skipped with a note. `None` when no
/// method is left.
fn choose_auth(
    rule: &str,
    methods: &[AuthMethod],
    notes: &mut Vec<String>,
) -> Result<Option<Auth>, EnforceError> {
    let mut chosen = None;
    for m in methods {
        let auth = match m {
            AuthMethod::Kerberos => {
                notes.push(format!(
                    "rule {rule:?}: Kerberos skipped (strongSwan cannot use it)"
                ));
                continue;
            }
            AuthMethod::PresharedKey(k) => Auth::Psk(k.secret.clone()),
            AuthMethod::Certificate { ca } => Auth::Cert { ca: ca.clone() },
        };
        if chosen.is_none() {
            chosen = Some(auth);
        } else {
            notes.push(format!(
                "rule {rule:?}: only the first usable authentication method is offered ({} left out)",
                m.method_name()
            ));
        }
    }
    Ok(chosen)
}

fn is_local(policy: &Policy, local: IpAddr, a: &Address) -> bool {
    match a {
        Address::Me => true,
        Address::Ip(ip) => *ip == local || policy.is_me(*ip),
        _ => false,
    }
}

fn orient(policy: &Policy, local: IpAddr, f: &Filter) -> Oriented {
    let swap = !is_local(policy, local, &f.source) && is_local(policy, local, &f.destination);
    let g = if swap { f.mirror() } else { f.clone() };
    Oriented {
        local: g.source,
        remote: g.destination,
        local_port: g.source_port,
        remote_port: g.destination_port,
        protocol: g.protocol,
    }
}

fn host_cidr(ip: IpAddr) -> String {
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    format!("{ip}/{bits}")
}

/// An address as strongSwan subnets; `me` is the local address.
fn cidrs(a: &Address, local: IpAddr) -> Vec<String> {
    match a {
        Address::Me => vec![host_cidr(local)],
        Address::Any if local.is_ipv4() => vec!["0.0.0.0/0".into()],
        Address::Any => vec!["::/0".into()],
        Address::Ip(ip) => vec![host_cidr(*ip)],
        Address::Subnet(s) => vec![s.to_string()],
        Address::Dns { addresses, .. } => addresses.iter().map(|ip| host_cidr(*ip)).collect(),
    }
}

/// `[tcp/6667]`, `[tcp]`, `[icmp]`, `[47]`, or nothing for any protocol.
fn ts_suffix(protocol: Protocol, port: Option<u16>) -> String {
    match (protocol, port) {
        (Protocol::Any, _) => String::new(),
        (Protocol::Number(n), Some(p)) => format!("[{}/{p}]", protocol_name(n)),
        (Protocol::Number(n), None) => format!("[{}]", protocol_name(n)),
    }
}

fn selectors(a: &Address, local: IpAddr, protocol: Protocol, port: Option<u16>) -> Vec<String> {
    let suffix = ts_suffix(protocol, port);
    cidrs(a, local)
        .into_iter()
        .map(|c| format!("{c}{suffix}"))
        .collect()
}

/// The remote IKE addresses a filter's traffic is negotiated with.
fn peer_of(rule: &Rule, o: &Oriented) -> Option<Vec<String>> {
    if let Some(ep) = rule.tunnel_endpoint {
        return Some(vec![ep.to_string()]);
    }
    Some(match &o.remote {
        Address::Me => return None,
        Address::Any => vec!["%any".into()],
        Address::Ip(ip) => vec![ip.to_string()],
        Address::Subnet(s) => vec![s.to_string()],
        Address::Dns { addresses, .. } => addresses.iter().map(|a| a.to_string()).collect(),
    })
}

/// Lower-case letters, digits and single dashes: a name swanctl and nft accept unquoted.
pub(super) fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("rule");
    }
    out
}

fn unique(name: String, taken: &[String]) -> String {
    if !taken.contains(&name) {
        return name;
    }
    (2..)
        .map(|n| format!("{name}-{n}"))
        .find(|n| !taken.contains(n))
        .unwrap_or(name)
}

fn add_rule(
    policy: &Policy,
    opts: &RenderOptions,
    local: IpAddr,
    rule: &Rule,
    auth: Auth,
    conns: &mut Vec<Conn>,
) -> Result<Vec<(usize, String)>, EnforceError> {
    let list = policy.filter_list_of(rule);
    let action = policy.filter_action_of(rule);
    let proposals = child_proposals(action, &opts.pfs_group)?;
    let mut named = Vec::new();
    for (i, f) in list.filters.iter().enumerate() {
        let o = orient(policy, local, f);
        let peer = peer_of(rule, &o).ok_or_else(|| EnforceError::NoPeer {
            rule: rule.name.clone(),
            filter: i + 1,
        })?;
        let tunnel = rule.tunnel_endpoint.is_some();
        let at = conn_for(conns, opts, rule, &peer, tunnel, &auth)?;
        let taken: Vec<String> = conns.iter().flat_map(|c| c.child_names.clone()).collect();
        let name = unique(format!("{}-{}", slug(&rule.name), i + 1), &taken);
        let child = child_section(&name, opts, local, f, &o, tunnel, &proposals);
        let conn = &mut conns[at];
        conn.child_names.push(name.clone());
        conn.children.push(child);
        named.push((i, name));
    }
    Ok(named)
}

/// The index of the connection to `peer`, made when there is none yet.
fn conn_for(
    conns: &mut Vec<Conn>,
    opts: &RenderOptions,
    rule: &Rule,
    peer: &[String],
    tunnel: bool,
    auth: &Auth,
) -> Result<usize, EnforceError> {
    let comment = format!("rule {:?}", rule.name);
    if let Some(at) = conns
        .iter()
        .position(|c| c.remote_addrs == peer && c.tunnel == tunnel)
    {
        let c = &mut conns[at];
        if c.auth != *auth {
            return Err(EnforceError::ConflictingAuth {
                peer: peer.join(", "),
                first: c.first_rule.clone(),
                second: rule.name.clone(),
            });
        }
        if !c.comments.contains(&comment) {
            c.comments.push(comment);
        }
        return Ok(at);
    }
    let taken: Vec<String> = conns.iter().map(|c| c.name.clone()).collect();
    conns.push(Conn {
        name: unique(format!("{}-{}", opts.name, slug(&rule.name)), &taken),
        remote_addrs: peer.to_vec(),
        tunnel,
        auth: auth.clone(),
        first_rule: rule.name.clone(),
        comments: vec![comment],
        children: Vec::new(),
        child_names: Vec::new(),
    });
    Ok(conns.len() - 1)
}

/// ESP and AH proposals of a filter action, in the order of its security methods.
struct Proposals {
    esp: Vec<String>,
    ah: Vec<String>,
    /// AH before ESP when the first method is AH.
    ah_first: bool,
    lifetime_kb: u64,
    lifetime_seconds: u64,
}

fn child_proposals(action: &FilterAction, pfs_group: &str) -> Result<Proposals, EnforceError> {
    let dh = |s: String| {
        if action.session_key_pfs {
            format!("{s}-{pfs_group}")
        } else {
            s
        }
    };
    let mut p = Proposals {
        esp: Vec::new(),
        ah: Vec::new(),
        ah_first: action
            .security_methods
            .first()
            .is_some_and(|m| m.ah.is_some()),
        lifetime_kb: action.security_methods.first().map_or(0, |m| m.lifetime_kb),
        lifetime_seconds: action
            .security_methods
            .first()
            .map_or(0, |m| m.lifetime_seconds),
    };
    for m in &action.security_methods {
        let (list, text) = match (m.ah, &m.esp) {
            (Some(_), Some(_)) => {
                return Err(EnforceError::AhWithEsp {
                    action: action.name.clone(),
                })
            }
            (Some(i), None) => (&mut p.ah, dh(i.strongswan_name().to_string())),
            (None, Some(e)) => (&mut p.esp, dh(esp_text(e))),
            (None, None) => continue,
        };
        if !list.contains(&text) {
            list.push(text);
        }
    }
    Ok(p)
}

fn esp_text(e: &EspMethod) -> String {
    let enc = e.encryption.map_or("null", |x| x.strongswan_name());
    match e.integrity {
        Some(i) if !e.encryption.is_some_and(|x| x.is_aead()) => {
            format!("{enc}-{}", i.strongswan_name())
        }
        _ => enc.to_string(),
    }
}

fn child_section(
    name: &str,
    opts: &RenderOptions,
    local: IpAddr,
    f: &Filter,
    o: &Oriented,
    tunnel: bool,
    p: &Proposals,
) -> Section {
    let mut s = Section::new(name);
    let mirrored = if f.mirrored {
        "mirrored"
    } else {
        "not mirrored"
    };
    s.comment(format!("filter: {} ({mirrored})", f.summary()));
    s.list(
        "local_ts",
        selectors(&o.local, local, o.protocol, o.local_port),
    );
    s.list(
        "remote_ts",
        selectors(&o.remote, local, o.protocol, o.remote_port),
    );
    let libipsec = matches!(opts.data_plane, DataPlane::Libipsec { .. });
    s.value(
        "mode",
        if tunnel || libipsec {
            "tunnel"
        } else {
            "transport"
        },
    );
    add_proposals(&mut s, p);
    add_lifetimes(&mut s, p);
    let start = if opts.initiate { "trap|start" } else { "trap" };
    s.value("start_action", start).value("close_action", "trap");
    s
}

fn add_proposals(s: &mut Section, p: &Proposals) {
    let ah = (!p.ah.is_empty()).then(|| ("ah_proposals", p.ah.clone()));
    let esp = (!p.esp.is_empty()).then(|| ("esp_proposals", p.esp.clone()));
    let ordered = if p.ah_first { [ah, esp] } else { [esp, ah] };
    for (key, list) in ordered.into_iter().flatten() {
        s.list(key, list);
    }
}

/// Rekeying starts at 90% of the security method's lifetime, so the new SA is ready
/// before the old one's hard limit, as Windows rekeyed ahead of expiry.
fn add_lifetimes(s: &mut Section, p: &Proposals) {
    if p.lifetime_seconds > 0 {
        s.value("rekey_time", format!("{}s", p.lifetime_seconds * 9 / 10));
        s.value("life_time", format!("{}s", p.lifetime_seconds));
    }
    if p.lifetime_kb > 0 {
        let bytes = p.lifetime_kb.saturating_mul(1024);
        s.value("rekey_bytes", (bytes / 10 * 9).to_string());
        s.value("life_bytes", bytes.to_string());
    }
}

fn add_default_response(
    opts: &RenderOptions,
    dr: &DefaultResponse,
    conns: &mut Vec<Conn>,
    notes: &mut Vec<String>,
) -> Result<(), EnforceError> {
    let rule = "default response";
    let Some(auth) = choose_auth(rule, &dr.authentication, notes)? else {
        notes.push("the default response rule is not rendered: it has no method strongSwan can use (Kerberos only)".into());
        return Ok(());
    };
    let action = FilterAction {
        name: rule.into(),
        description: None,
        action: Action::Negotiate,
        security_methods: dr.security_methods.clone(),
        accept_unsecured: false,
        allow_fallback_to_clear: false,
        session_key_pfs: false,
        line: 0,
    };
    let p = child_proposals(&action, &opts.pfs_group)?;
    let mut child = Section::new("default-response");
    child.comment("answers any peer that asks for security; never initiates");
    child
        .value("local_ts", "dynamic")
        .value("remote_ts", "dynamic");
    let libipsec = matches!(opts.data_plane, DataPlane::Libipsec { .. });
    child.value("mode", if libipsec { "tunnel" } else { "transport" });
    add_proposals(&mut child, &p);
    add_lifetimes(&mut child, &p);
    let taken: Vec<String> = conns.iter().map(|c| c.name.clone()).collect();
    conns.push(Conn {
        name: unique(format!("{}-default-response", opts.name), &taken),
        remote_addrs: vec!["%any".into()],
        tunnel: false,
        auth,
        first_rule: rule.into(),
        comments: vec!["the default response rule".into()],
        children: vec![child],
        child_names: vec!["default-response".into()],
    });
    Ok(())
}

fn ids(local: IpAddr, remote_addrs: &[String]) -> (String, Option<String>) {
    let remote = match remote_addrs {
        [one] if one.parse::<IpAddr>().is_ok() => Some(one.clone()),
        _ => None,
    };
    (local.to_string(), remote)
}

fn conn_section(opts: &RenderOptions, local: IpAddr, c: Conn) -> Section {
    let mut s = Section::new(&c.name);
    for comment in &c.comments {
        s.comment(comment.clone());
    }
    s.value("version", opts.ike_version.number().to_string());
    if opts.ike_version == IkeVersion::V1Aggressive {
        s.value("aggressive", "yes");
    }
    s.list("local_addrs", vec![local.to_string()]);
    s.list("remote_addrs", c.remote_addrs.clone());
    s.list("proposals", opts.ike_proposals.clone());
    if matches!(opts.data_plane, DataPlane::Libipsec { .. }) {
        s.value("encap", "yes");
    }
    let (local_id, remote_id) = ids(local, &c.remote_addrs);
    let (lauth, rauth) = auth_sections(&c.auth, &local_id, remote_id.as_deref());
    s.section(lauth).section(rauth);
    let mut children = Section::new("children");
    for child in c.children {
        children.section(child);
    }
    s.section(children);
    s
}

/// The certificate file names pki.sh writes.
const HOST_CERT: &str = "host.crt";
const CA_CERT: &str = "ca.crt";

fn auth_sections(auth: &Auth, local_id: &str, remote_id: Option<&str>) -> (Section, Section) {
    let (mut l, mut r) = (Section::new("local"), Section::new("remote"));
    match auth {
        Auth::Psk(_) => {
            l.value("auth", "psk");
            r.value("auth", "psk");
        }
        Auth::Cert { .. } => {
            l.value("auth", "pubkey");
            l.list("certs", vec![HOST_CERT.into()]);
            r.value("auth", "pubkey");
            r.list("cacerts", vec![CA_CERT.into()]);
        }
    }
    l.value("id", local_id);
    r.value("id", remote_id.unwrap_or("%any"));
    (l, r)
}

fn secret_section(name: &str, local_id: &str, remote_id: Option<&str>, key: &Secret) -> Section {
    let mut s = Section::new(format!("ike-{name}"));
    s.value("id-1", local_id);
    if let Some(r) = remote_id {
        s.value("id-2", r);
    }
    s.secret("secret", key.expose());
    s
}

fn assemble(
    policy: &Policy,
    opts: &RenderOptions,
    local: IpAddr,
    conns: Vec<Conn>,
    notes: Vec<String>,
) -> Plan {
    let mut connections = Section::new("connections");
    let mut secrets = Section::new("secrets");
    let mut plan = Plan {
        tree: Section::new(""),
        connections: Vec::new(),
        children: Vec::new(),
        secrets: Vec::new(),
        notes,
        pki_script: None,
        child_of: Vec::new(),
    };
    let file = std::path::Path::new(&policy.origin)
        .file_name()
        .map_or(policy.origin.clone(), |f| f.to_string_lossy().into_owned());
    connections.comment(format!("policy {:?} ({file})", policy.name));
    for c in conns {
        let (local_id, remote_id) = ids(local, &c.remote_addrs);
        match &c.auth {
            Auth::Psk(key) => {
                let s = secret_section(&c.name, &local_id, remote_id.as_deref(), key);
                plan.secrets.push(s.name.clone());
                secrets.section(s);
            }
            Auth::Cert { ca } => plan.pki_script = Some(pki_script(ca, local)),
        }
        plan.connections.push(c.name.clone());
        plan.children.push((c.name.clone(), c.child_names.clone()));
        connections.section(conn_section(opts, local, c));
    }
    plan.tree.section(connections).section(secrets);
    plan
}

/// A shell script that makes (or reuses) the lab CA in `$1` and issues this host's
/// certificate for its address, with strongSwan's `pki` (Debian package strongswan-pki).
fn pki_script(ca: &str, local: IpAddr) -> String {
    let dn = if ca.contains('=') {
        ca.to_string()
    } else {
        format!("CN={ca}")
    };
    let dn = dn.replace('\'', "");
    format!(
        r#"#!/bin/sh
# Makes the lab's certificates for ipsecmon's rendered swanctl.conf with strongSwan's pki
# (Debian package strongswan-pki). Usage: sh pki.sh CA_DIR
# CA_DIR holds the lab CA (ca.key, ca.crt), made on the first run and shared by both hosts.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ca_dir=${{1:?usage: sh pki.sh CA_DIR}}
command -v pki >/dev/null || {{ echo "pki is missing: install the Debian package strongswan-pki" >&2; exit 1; }}
mkdir -p "$ca_dir" "$here/x509ca" "$here/x509" "$here/private"
if [ ! -f "$ca_dir/ca.key" ]; then
  pki --gen --type ecdsa --size 256 --outform pem > "$ca_dir/ca.key"
  pki --self --ca --lifetime 3650 --in "$ca_dir/ca.key" --type ecdsa --dn '{dn}' --outform pem > "$ca_dir/ca.crt"
fi
cp "$ca_dir/ca.crt" "$here/x509ca/{CA_CERT}"
pki --gen --type ecdsa --size 256 --outform pem > "$here/private/host.key"
chmod 600 "$here/private/host.key"
pki --pub --in "$here/private/host.key" --type ecdsa |
  pki --issue --lifetime 365 --cacert "$ca_dir/ca.crt" --cakey "$ca_dir/ca.key" \
      --dn 'CN={local}' --san '{local}' --outform pem > "$here/x509/{HOST_CERT}"
"#
    )
}

/// The strongswan.conf fragment charon must run with for this rendering.
pub(super) fn charon_settings(policy: &Policy, opts: &RenderOptions) -> String {
    let mut charon = Section::new("charon");
    if opts.ike_version == IkeVersion::V1Aggressive {
        charon.comment("IKEv1 Aggressive Mode with a preshared key exposes a hash of the key");
        charon.value(
            "i_dont_care_about_security_and_use_aggressive_mode_psk",
            "yes",
        );
    }
    if let DataPlane::Libipsec { fwmark, .. } = &opts.data_plane {
        let mut libipsec = Section::new("kernel-libipsec");
        libipsec.comment("the selectors name the peer itself (host-to-host)");
        libipsec.value("allow_peer_ts", "yes");
        let mut netlink = Section::new("kernel-netlink");
        netlink.comment(
            "only packets the nft table marks use charon's routes into the TUN device, never IKE",
        );
        netlink.value("fwmark", format!("{fwmark:#x}"));
        let mut plugins = Section::new("plugins");
        plugins.section(libipsec).section(netlink);
        charon.section(plugins);
    }
    format!(
        "# charon settings for the ipsecmon rendering of {:?} ({} data plane).\n\
         # Include this file from the strongswan.conf charon starts with.\n{}",
        policy.name,
        opts.data_plane.as_str(),
        charon.to_conf()
    )
}
