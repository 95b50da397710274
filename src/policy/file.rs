//! The policy file (TOML): its raw shape, and building the [`Policy`] from it.
//!
//! Every table and value that an error can point at is read as a `toml::Spanned`, and its
//! byte offset is turned into a line number here, so each error names its line. Loading
//! collects every error it can before giving up, so one `policy check` shows them all.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::model::*;
use super::resolve::resolve_address;
use super::{validate, Diagnostic, Level, LoadOptions, PolicyError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: Spanned<String>,
    description: Option<String>,
    #[serde(default)]
    default_response_rule: bool,
    local_addresses: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    other_policies: Vec<String>,
    #[serde(default)]
    filter_lists: Vec<Spanned<RawFilterList>>,
    #[serde(default)]
    filter_actions: Vec<Spanned<RawFilterAction>>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
    key_exchange: Option<Spanned<RawKeyExchange>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyExchange {
    #[serde(default)]
    methods: Vec<Spanned<RawKeyExchangeMethod>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyExchangeMethod {
    encryption: String,
    integrity: String,
    dh_group: toml::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilterList {
    name: String,
    description: Option<String>,
    #[serde(default)]
    filters: Vec<Spanned<RawFilter>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilter {
    source: String,
    destination: String,
    #[serde(default)]
    protocol: ProtocolWord,
    source_port: Option<u16>,
    destination_port: Option<u16>,
    #[serde(default = "yes")]
    mirrored: bool,
    description: Option<String>,
}

fn yes() -> bool {
    true
}

/// A protocol as written: `any`, `tcp`, `udp`, `icmp`, or a number 0..=255.
struct ProtocolWord(Protocol);

impl Default for ProtocolWord {
    fn default() -> Self {
        ProtocolWord(Protocol::Any)
    }
}

const PROTOCOL_WORDS: &str = "any, tcp, udp, icmp, or a protocol number 0-255";

impl<'de> Deserialize<'de> for ProtocolWord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ProtocolVisitor)
    }
}

struct ProtocolVisitor;

impl Visitor<'_> for ProtocolVisitor {
    type Value = ProtocolWord;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(PROTOCOL_WORDS)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ProtocolWord, E> {
        u8::try_from(v)
            .map(|n| ProtocolWord(Protocol::Number(n)))
            .map_err(|_| E::custom(format!("protocol {v} is not a number 0-255")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ProtocolWord, E> {
        let p = match v.to_ascii_lowercase().as_str() {
            "any" => Protocol::Any,
            "tcp" => Protocol::Number(TCP),
            "udp" => Protocol::Number(UDP),
            "icmp" => Protocol::Number(ICMP),
            other => match other.parse::<u8>() {
                Ok(n) => Protocol::Number(n),
                Err(_) => {
                    return Err(E::custom(format!(
                        "unknown protocol {v:?}; use {PROTOCOL_WORDS}"
                    )))
                }
            },
        };
        Ok(ProtocolWord(p))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawAction {
    Permit,
    Block,
    Negotiate,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilterAction {
    name: String,
    description: Option<String>,
    action: RawAction,
    #[serde(default)]
    security_methods: Vec<Spanned<toml::Value>>,
    #[serde(default)]
    accept_unsecured: bool,
    #[serde(default)]
    allow_fallback_to_clear: bool,
    #[serde(default)]
    session_key_pfs: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCustomMethod {
    ah: Option<String>,
    esp: Option<RawEsp>,
    lifetime_kb: Option<u64>,
    lifetime_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEsp {
    integrity: Option<String>,
    encryption: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RawConnectionType {
    Lan,
    RemoteAccess,
    All,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<String>,
    filter_list: Spanned<String>,
    filter_action: Spanned<String>,
    authentication: Option<Vec<Spanned<RawAuth>>>,
    connection_type: Option<RawConnectionType>,
    tunnel_endpoint: Option<Spanned<String>>,
    #[serde(default = "yes")]
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RawAuthKind {
    Kerberos,
    Certificate,
    PresharedKey,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    method: RawAuthKind,
    ca: Option<String>,
    key: Option<String>,
    key_file: Option<String>,
}

/// Byte offsets to 1-based line numbers.
struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { starts }
    }

    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset).max(1)
    }
}

/// Everything the build step carries: where we are, and what we found.
struct Builder<'a> {
    origin: &'a str,
    dir: &'a Path,
    lines: Lines,
    opts: LoadOptions<'a>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Builder<'_> {
    fn line_of<T>(&self, s: &Spanned<T>) -> usize {
        self.lines.line(s.span().start)
    }

    fn error(&mut self, line: usize, message: String) {
        self.errors
            .push(diag(Level::Error, self.origin, line, message));
    }

    fn warn(&mut self, line: usize, message: String) {
        self.warnings
            .push(diag(Level::Warning, self.origin, line, message));
    }
}

fn diag(level: Level, origin: &str, line: usize, message: String) -> Diagnostic {
    Diagnostic {
        level,
        origin: origin.to_string(),
        line,
        message,
    }
}

/// Parses, resolves and checks a policy file's text. `origin` names it in messages; `dir`
/// is where relative key files and other policies are looked up.
pub fn parse(
    text: &str,
    origin: &str,
    dir: &Path,
    opts: LoadOptions<'_>,
) -> Result<Policy, PolicyError> {
    let mut b = Builder {
        origin,
        dir,
        lines: Lines::new(text),
        opts,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let raw: RawPolicy = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let line = e.span().map_or(0, |s| b.lines.line(s.start));
            b.error(line, syntax_message(&e));
            return Err(PolicyError::Invalid {
                errors: b.errors,
                warnings: b.warnings,
            });
        }
    };
    let policy = build_policy(&mut b, raw);
    finish(b, policy)
}

/// The toml message without its own multi-line excerpt (we name the line ourselves).
fn syntax_message(e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    format!("{msg}; see the policy file format in examples/alice.toml")
}

fn finish(mut b: Builder<'_>, policy: Policy) -> Result<Policy, PolicyError> {
    if b.errors.is_empty() {
        b.warnings.extend(validate::warnings(&policy));
    }
    b.errors.sort_by_key(|d| d.line);
    b.warnings.sort_by_key(|d| d.line);
    if !b.errors.is_empty() {
        return Err(PolicyError::Invalid {
            errors: b.errors,
            warnings: b.warnings,
        });
    }
    Ok(Policy {
        warnings: b.warnings,
        ..policy
    })
}

fn build_policy(b: &mut Builder<'_>, raw: RawPolicy) -> Policy {
    let name_line = b.line_of(&raw.name);
    let me = local_addresses(b, raw.local_addresses.as_deref());
    let filter_lists: Vec<FilterList> = raw
        .filter_lists
        .into_iter()
        .map(|l| build_list(b, l))
        .collect();
    let filter_actions: Vec<FilterAction> = raw
        .filter_actions
        .into_iter()
        .map(|a| build_action(b, a))
        .collect();
    check_unique(
        b,
        filter_lists.iter().map(|l| (&l.name, l.line)),
        "filter list",
    );
    check_unique(
        b,
        filter_actions.iter().map(|a| (&a.name, a.line)),
        "filter action",
    );
    let rules: Vec<Rule> = raw
        .rules
        .into_iter()
        .filter_map(|r| build_rule(b, r, &filter_lists, &filter_actions))
        .collect();
    let errors_before = b.errors.len();
    if rules.is_empty() && !raw.default_response_rule && errors_before == 0 {
        b.error(
            name_line,
            "an IPSec policy must contain at least one rule; add a [[rules]] table linking a \
             filter list to a filter action"
                .into(),
        );
    }
    Policy {
        name: raw.name.into_inner(),
        description: raw.description,
        origin: b.origin.to_string(),
        me,
        default_response: raw
            .default_response_rule
            .then(super::builtin::default_response),
        rules,
        filter_lists,
        filter_actions,
        key_exchange: key_exchange(b, raw.key_exchange),
        other_policies: raw.other_policies.iter().map(|p| b.dir.join(p)).collect(),
        warnings: Vec::new(),
    }
}

/// `me`: the command line wins, then the file's `local_addresses`, then the host's own.
fn local_addresses(b: &mut Builder<'_>, words: Option<&[Spanned<String>]>) -> LocalAddresses {
    if let Some(me) = b.opts.me {
        return LocalAddresses {
            addresses: me.to_vec(),
            from: "command line",
        };
    }
    let Some(words) = words else {
        return LocalAddresses {
            addresses: b.opts.resolver.local_addresses(),
            from: "this host",
        };
    };
    let mut addresses = Vec::new();
    for w in words {
        match w.get_ref().parse::<IpAddr>() {
            Ok(ip) => addresses.push(ip),
            Err(_) => {
                let line = b.line_of(w);
                b.error(
                    line,
                    format!("local_addresses: {:?} is not an IP address", w.get_ref()),
                );
            }
        }
    }
    LocalAddresses {
        addresses,
        from: "file",
    }
}

fn check_unique<'n>(
    b: &mut Builder<'_>,
    items: impl Iterator<Item = (&'n String, usize)>,
    what: &str,
) {
    let mut seen: Vec<&String> = Vec::new();
    for (name, line) in items {
        if seen.contains(&name) {
            b.error(
                line,
                format!(
                    "a second {what} is named {name:?}; rules name them, so names must be unique"
                ),
            );
        }
        seen.push(name);
    }
}

fn build_list(b: &mut Builder<'_>, raw: Spanned<RawFilterList>) -> FilterList {
    let line = b.line_of(&raw);
    let raw = raw.into_inner();
    let filters = raw
        .filters
        .into_iter()
        .filter_map(|f| build_filter(b, f))
        .collect();
    FilterList {
        name: raw.name,
        description: raw.description,
        filters,
        line,
    }
}

fn build_filter(b: &mut Builder<'_>, raw: Spanned<RawFilter>) -> Option<Filter> {
    let line = b.line_of(&raw);
    let raw = raw.into_inner();
    let source = address(b, &raw.source, line);
    let destination = address(b, &raw.destination, line);
    let protocol = raw.protocol.0;
    let has_ports = raw.source_port.is_some() || raw.destination_port.is_some();
    if has_ports && !protocol.has_ports() {
        b.error(
            line,
            format!(
                "a filter names a port but its protocol is {protocol}; ports exist on tcp and \
                 udp only: set protocol = \"tcp\" or \"udp\", or remove the port"
            ),
        );
    }
    if raw.source_port == Some(0) || raw.destination_port == Some(0) {
        b.error(line, "port 0: leave the port out to mean any port".into());
    }
    Some(Filter {
        source: source?,
        destination: destination?,
        protocol,
        source_port: raw.source_port,
        destination_port: raw.destination_port,
        mirrored: raw.mirrored,
        description: raw.description,
        line,
    })
}

fn address(b: &mut Builder<'_>, word: &str, line: usize) -> Option<Address> {
    match resolve_address(word, b.opts.resolver) {
        Ok(r) => {
            if let Some(note) = r.note {
                b.warn(line, note);
            }
            Some(r.address)
        }
        Err(msg) => {
            b.error(line, msg);
            None
        }
    }
}

fn build_action(b: &mut Builder<'_>, raw: Spanned<RawFilterAction>) -> FilterAction {
    let line = b.line_of(&raw);
    let raw = raw.into_inner();
    let action = match raw.action {
        RawAction::Permit => Action::Permit,
        RawAction::Block => Action::Block,
        RawAction::Negotiate => Action::Negotiate,
    };
    let security_methods: Vec<SecurityMethod> = raw
        .security_methods
        .iter()
        .filter_map(|m| security_method(b, m))
        .collect();
    if action == Action::Negotiate && raw.security_methods.is_empty() {
        b.error(
            line,
            format!(
                "filter action {:?} negotiates security but lists no security methods; add \
                 security_methods = [\"high\"] (ESP) or [\"medium\"] (AH)",
                raw.name
            ),
        );
    }
    FilterAction {
        name: raw.name,
        description: raw.description,
        action,
        security_methods,
        accept_unsecured: raw.accept_unsecured,
        allow_fallback_to_clear: raw.allow_fallback_to_clear,
        session_key_pfs: raw.session_key_pfs,
        line,
    }
}

fn security_method(b: &mut Builder<'_>, raw: &Spanned<toml::Value>) -> Option<SecurityMethod> {
    let line = b.line_of(raw);
    let result = match raw.get_ref() {
        toml::Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "high" => Ok(SecurityMethod::high()),
            "medium" => Ok(SecurityMethod::medium()),
            _ => Err(format!(
                "unknown security method {s:?}; use \"high\" (ESP), \"medium\" (AH) or a \
                 custom table {{ esp = {{ integrity = \"sha1\", encryption = \"aes128-cbc\" }} }}"
            )),
        },
        other => other
            .clone()
            .try_into::<RawCustomMethod>()
            .map_err(|e| format!("custom security method: {}", e.message().trim()))
            .and_then(custom_method),
    };
    result.map_err(|msg| b.error(line, msg)).ok()
}

fn custom_method(raw: RawCustomMethod) -> Result<SecurityMethod, String> {
    let ah = raw.ah.as_deref().map(integrity).transpose()?;
    let esp = raw.esp.map(esp_method).transpose()?;
    if ah.is_none() && esp.is_none() {
        return Err("a custom security method needs ah, esp, or both".into());
    }
    let lifetime_kb = raw.lifetime_kb.unwrap_or(DEFAULT_LIFETIME_KB);
    let lifetime_seconds = raw.lifetime_seconds.unwrap_or(DEFAULT_LIFETIME_SECONDS);
    if lifetime_kb == 0 || lifetime_seconds == 0 {
        return Err("session key lifetimes must be above zero".into());
    }
    Ok(SecurityMethod {
        label: "custom".into(),
        ah,
        esp,
        lifetime_kb,
        lifetime_seconds,
    })
}

fn esp_method(raw: RawEsp) -> Result<EspMethod, String> {
    let integrity = raw.integrity.as_deref().map(integrity).transpose()?;
    let encryption = match raw.encryption.as_deref() {
        None | Some("null") | Some("none") => None,
        Some(word) => Some(encryption(word)?),
    };
    if integrity.is_none() && encryption.is_none() {
        return Err("esp needs an integrity algorithm, an encryption algorithm, or both".into());
    }
    if integrity.is_some() && encryption.is_some_and(Encryption::is_aead) {
        return Err("GCM authenticates by itself: remove esp.integrity".into());
    }
    Ok(EspMethod {
        integrity,
        encryption,
    })
}

fn integrity(word: &str) -> Result<Integrity, String> {
    let names: Vec<&str> = Integrity::ALL.iter().map(|i| i.as_str()).collect();
    Integrity::ALL
        .into_iter()
        .find(|i| i.as_str().eq_ignore_ascii_case(word))
        .ok_or_else(|| format!("unknown integrity {word:?}; use {}", names.join(", ")))
}

fn encryption(word: &str) -> Result<Encryption, String> {
    let names: Vec<&str> = Encryption::ALL.iter().map(|e| e.as_str()).collect();
    Encryption::ALL
        .into_iter()
        .find(|e| e.as_str().eq_ignore_ascii_case(word))
        .ok_or_else(|| {
            format!(
                "unknown encryption {word:?}; use {}, null",
                names.join(", ")
            )
        })
}

/// The policy's key exchange methods; Windows 2000's default when the file has none.
fn key_exchange(
    b: &mut Builder<'_>,
    raw: Option<Spanned<RawKeyExchange>>,
) -> Vec<KeyExchangeMethod> {
    let Some(raw) = raw else {
        return vec![KeyExchangeMethod::WINDOWS_DEFAULT];
    };
    let line = b.line_of(&raw);
    let raw = raw.into_inner();
    if raw.methods.is_empty() {
        b.error(
            line,
            "key_exchange lists no methods; add methods = [{ encryption = \"3des\", \
             integrity = \"sha1\", dh_group = 2 }] or remove the table for that default"
                .into(),
        );
    }
    raw.methods
        .into_iter()
        .filter_map(|m| {
            let line = b.line_of(&m);
            key_exchange_method(m.into_inner())
                .map_err(|msg| b.error(line, format!("key exchange method: {msg}")))
                .ok()
        })
        .collect()
}

fn key_exchange_method(raw: RawKeyExchangeMethod) -> Result<KeyExchangeMethod, String> {
    Ok(KeyExchangeMethod {
        encryption: encryption(&raw.encryption)?,
        integrity: integrity(&raw.integrity)?,
        dh_group: dh_group(&raw.dh_group)?,
    })
}

/// A group by its IANA number, or by Windows 2000's names `low` (1) and `medium` (2).
fn dh_group(raw: &toml::Value) -> Result<DhGroup, String> {
    let number = match raw {
        toml::Value::Integer(n) => *n,
        toml::Value::String(s) if s.eq_ignore_ascii_case("low") => 1,
        toml::Value::String(s) if s.eq_ignore_ascii_case("medium") => 2,
        _ => -1,
    };
    DhGroup::ALL
        .into_iter()
        .find(|g| i64::from(g.number()) == number)
        .ok_or_else(|| {
            let numbers: Vec<String> = DhGroup::ALL
                .iter()
                .map(|g| g.number().to_string())
                .collect();
            format!(
                "unknown Diffie-Hellman group {raw}; use one of {}, \"low\" (1) or \"medium\" (2)",
                numbers.join(", ")
            )
        })
}

fn build_rule(
    b: &mut Builder<'_>,
    raw: Spanned<RawRule>,
    lists: &[FilterList],
    actions: &[FilterAction],
) -> Option<Rule> {
    let line = b.line_of(&raw);
    let raw = raw.into_inner();
    let filter_list = lookup(
        b,
        &raw.filter_list,
        lists.iter().map(|l| &l.name),
        "filter list",
    );
    let filter_action = lookup(
        b,
        &raw.filter_action,
        actions.iter().map(|a| &a.name),
        "filter action",
    );
    let authentication = match raw.authentication {
        None => vec![AuthMethod::Kerberos],
        Some(list) => list.iter().filter_map(|a| auth_method(b, a)).collect(),
    };
    let tunnel_endpoint = raw.tunnel_endpoint.and_then(|t| tunnel(b, &t));
    let (filter_list, filter_action) = (filter_list?, filter_action?);
    let name = raw.name.unwrap_or_else(|| {
        format!(
            "{} / {}",
            lists[filter_list].name, actions[filter_action].name
        )
    });
    Some(Rule {
        name,
        filter_list,
        filter_action,
        authentication,
        connection_type: match raw.connection_type {
            None | Some(RawConnectionType::All) => ConnectionType::All,
            Some(RawConnectionType::Lan) => ConnectionType::Lan,
            Some(RawConnectionType::RemoteAccess) => ConnectionType::RemoteAccess,
        },
        tunnel_endpoint,
        enabled: raw.enabled,
        line,
    })
}

fn lookup<'n>(
    b: &mut Builder<'_>,
    wanted: &Spanned<String>,
    names: impl Iterator<Item = &'n String>,
    what: &str,
) -> Option<usize> {
    let names: Vec<&String> = names.collect();
    if let Some(i) = names.iter().position(|n| *n == wanted.get_ref()) {
        return Some(i);
    }
    let known: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    let known = if known.is_empty() {
        "none is defined".to_string()
    } else {
        format!("defined: {}", known.join(", "))
    };
    let line = b.line_of(wanted);
    b.error(
        line,
        format!(
            "the rule names an unknown {what} {:?} ({known})",
            wanted.get_ref()
        ),
    );
    None
}

fn tunnel(b: &mut Builder<'_>, raw: &Spanned<String>) -> Option<IpAddr> {
    let line = b.line_of(raw);
    match resolve_address(raw.get_ref(), b.opts.resolver).map(|r| r.address) {
        Ok(Address::Ip(ip)) => Some(ip),
        Ok(Address::Dns { addresses, .. }) if addresses.len() == 1 => addresses.first().copied(),
        Ok(_) => {
            b.error(
                line,
                format!(
                    "tunnel_endpoint {:?} must be one IP address (or a name with one address)",
                    raw.get_ref()
                ),
            );
            None
        }
        Err(msg) => {
            b.error(line, format!("tunnel_endpoint: {msg}"));
            None
        }
    }
}

fn auth_method(b: &mut Builder<'_>, raw: &Spanned<RawAuth>) -> Option<AuthMethod> {
    let line = b.line_of(raw);
    let a = raw.get_ref();
    let result = match a.method {
        RawAuthKind::Kerberos => Ok(AuthMethod::Kerberos),
        RawAuthKind::Certificate => a
            .ca
            .clone()
            .filter(|ca| !ca.trim().is_empty())
            .map(|ca| AuthMethod::Certificate { ca })
            .ok_or_else(|| "certificate authentication needs ca = \"...\" (the trusted CA)".into()),
        RawAuthKind::PresharedKey => preshared_key(b.dir, a).map(AuthMethod::PresharedKey),
    };
    result.map_err(|msg| b.error(line, msg)).ok()
}

fn preshared_key(dir: &Path, a: &RawAuth) -> Result<PresharedKey, String> {
    match (&a.key, &a.key_file) {
        (Some(_), Some(_)) => Err("give either key or key_file, not both".into()),
        (None, None) => {
            Err("the preshared key is missing: add key_file = \"FILE\" (or key = \"...\")".into())
        }
        (Some(key), None) if key.is_empty() => {
            Err("the preshared key is empty; use a long string".into())
        }
        (Some(key), None) => Ok(PresharedKey {
            key_file: None,
            secret: Secret::new(key.clone()),
        }),
        (None, Some(file)) => read_key_file(dir, file),
    }
}

fn read_key_file(dir: &Path, file: &str) -> Result<PresharedKey, String> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
    let key = text.trim_end_matches(['\r', '\n']).to_string();
    if key.is_empty() {
        return Err(format!("the key file {} is empty", path.display()));
    }
    Ok(PresharedKey {
        key_file: Some(PathBuf::from(file)),
        secret: Secret::new(key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines() {
        let l = Lines::new("a\nbb\n\nc");
        let cases = [(0, 1), (1, 1), (2, 2), (4, 2), (5, 3), (6, 4), (99, 4)];
        for (offset, line) in cases {
            assert_eq!(l.line(offset), line, "offset {offset}");
        }
    }
}
