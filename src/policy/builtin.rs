//! The three policies Windows 2000 shipped, with their built-in filter lists (All IP
//! Traffic, All ICMP Traffic) and filter actions (Permit, Request Security (Optional),
//! Require Security), loadable as `builtin:client`, `builtin:server` and
//! `builtin:secure-server`.
//!
//! The security method lists are our reading of the Windows 2000 defaults (3DES and DES
//! with SHA1 and MD5; AH only where unencrypted traffic was acceptable); they authenticate
//! with Kerberos only, as the originals did, so they load with that warning.

use super::model::*;
use super::{validate, LoadOptions, PolicyError};

/// The names `builtin:NAME` accepts.
pub const NAMES: [&str; 3] = ["client", "server", "secure-server"];

/// A built-in policy by name (`client`, `server`, `secure-server`; the Windows names such as
/// "Secure Server (Require Security)" are accepted too, case-insensitively).
pub fn policy(name: &str, opts: LoadOptions<'_>) -> Result<Policy, PolicyError> {
    let key = name.trim().to_ascii_lowercase();
    let mut p = match key.as_str() {
        "client" | "client (respond only)" => client(),
        "server" | "server (request security)" => server(),
        "secure-server" | "secure server" | "secure server (require security)" => secure_server(),
        _ => {
            return Err(PolicyError::UnknownBuiltin {
                name: name.to_string(),
            })
        }
    };
    p.origin = format!("{}{key}", super::BUILTIN_PREFIX);
    p.me = match opts.me {
        Some(me) => LocalAddresses {
            addresses: me.to_vec(),
            from: "command line",
        },
        None => LocalAddresses {
            addresses: opts.resolver.local_addresses(),
            from: "this host",
        },
    };
    p.warnings = validate::warnings(&p);
    Ok(p)
}

/// The default response rule's settings.
pub fn default_response() -> DefaultResponse {
    DefaultResponse {
        authentication: vec![AuthMethod::Kerberos],
        security_methods: request_methods(),
    }
}

fn esp(encryption: Encryption, integrity: Integrity) -> SecurityMethod {
    SecurityMethod {
        label: "custom".into(),
        ah: None,
        esp: Some(EspMethod {
            integrity: Some(integrity),
            encryption: Some(encryption),
        }),
        lifetime_kb: DEFAULT_LIFETIME_KB,
        lifetime_seconds: DEFAULT_LIFETIME_SECONDS,
    }
}

fn ah(integrity: Integrity) -> SecurityMethod {
    SecurityMethod {
        label: "custom".into(),
        ah: Some(integrity),
        esp: None,
        lifetime_kb: DEFAULT_LIFETIME_KB,
        lifetime_seconds: DEFAULT_LIFETIME_SECONDS,
    }
}

fn require_methods() -> Vec<SecurityMethod> {
    vec![
        esp(Encryption::TripleDes, Integrity::Sha1),
        esp(Encryption::TripleDes, Integrity::Md5),
        esp(Encryption::Des, Integrity::Sha1),
        esp(Encryption::Des, Integrity::Md5),
    ]
}

fn request_methods() -> Vec<SecurityMethod> {
    let mut m = require_methods();
    m.push(ah(Integrity::Sha1));
    m.push(ah(Integrity::Md5));
    m
}

fn all_traffic(name: &str, protocol: Protocol, description: &str) -> FilterList {
    FilterList {
        name: name.into(),
        description: Some(description.into()),
        filters: vec![Filter {
            source: Address::Me,
            destination: Address::Any,
            protocol,
            source_port: None,
            destination_port: None,
            mirrored: true,
            description: None,
            line: 0,
        }],
        line: 0,
    }
}

fn builtin_lists() -> Vec<FilterList> {
    vec![
        all_traffic(
            "All IP Traffic",
            Protocol::Any,
            "every IP packet to or from this host",
        ),
        all_traffic(
            "All ICMP Traffic",
            Protocol::Number(ICMP),
            "every ICMP message to or from this host",
        ),
    ]
}

fn action(name: &str, action: Action, methods: Vec<SecurityMethod>) -> FilterAction {
    FilterAction {
        name: name.into(),
        description: None,
        action,
        security_methods: methods,
        accept_unsecured: action == Action::Negotiate,
        allow_fallback_to_clear: false,
        session_key_pfs: false,
        line: 0,
    }
}

fn builtin_actions() -> Vec<FilterAction> {
    let mut request = action(
        "Request Security (Optional)",
        Action::Negotiate,
        request_methods(),
    );
    request.allow_fallback_to_clear = true;
    vec![
        action("Permit", Action::Permit, Vec::new()),
        request,
        action("Require Security", Action::Negotiate, require_methods()),
    ]
}

fn rule(name: &str, filter_list: usize, filter_action: usize) -> Rule {
    Rule {
        name: name.into(),
        filter_list,
        filter_action,
        authentication: vec![AuthMethod::Kerberos],
        connection_type: ConnectionType::All,
        tunnel_endpoint: None,
        enabled: true,
        line: 0,
    }
}

fn base(name: &str, description: &str, rules: Vec<Rule>) -> Policy {
    Policy {
        name: name.into(),
        description: Some(description.into()),
        origin: String::new(),
        me: LocalAddresses {
            addresses: Vec::new(),
            from: "this host",
        },
        default_response: Some(default_response()),
        rules,
        filter_lists: builtin_lists(),
        filter_actions: builtin_actions(),
        key_exchange: vec![KeyExchangeMethod::WINDOWS_DEFAULT],
        other_policies: Vec::new(),
        warnings: Vec::new(),
    }
}

const ALL_IP: usize = 0;
const ALL_ICMP: usize = 1;
const PERMIT: usize = 0;
const REQUEST: usize = 1;
const REQUIRE: usize = 2;

fn client() -> Policy {
    base(
        "Client (Respond Only)",
        "Send in the clear; secure only what a server asks to secure, through the default \
         response rule.",
        Vec::new(),
    )
}

fn server() -> Policy {
    base(
        "Server (Request Security)",
        "Ask every peer for security with Kerberos; talk in the clear to peers that do not \
         answer.",
        vec![
            rule("All IP Traffic / Request Security", ALL_IP, REQUEST),
            rule("All ICMP Traffic / Permit", ALL_ICMP, PERMIT),
        ],
    )
}

fn secure_server() -> Policy {
    base(
        "Secure Server (Require Security)",
        "Require security with Kerberos from every peer; refuse peers that cannot secure \
         the traffic.",
        vec![
            rule("All IP Traffic / Require Security", ALL_IP, REQUIRE),
            rule("All ICMP Traffic / Permit", ALL_ICMP, PERMIT),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::super::StaticResolver;
    use super::*;

    #[test]
    fn every_builtin_loads_by_short_and_windows_name() {
        let r = StaticResolver::default();
        let opts = LoadOptions {
            resolver: &r,
            me: None,
        };
        let cases = [
            ("client", "Client (Respond Only)", 0),
            ("server", "Server (Request Security)", 2),
            ("secure-server", "Secure Server (Require Security)", 2),
            (
                "Secure Server (Require Security)",
                "Secure Server (Require Security)",
                2,
            ),
        ];
        for (key, name, rules) in cases {
            let p = policy(key, opts).unwrap();
            assert_eq!(p.name, name);
            assert_eq!(p.rules.len(), rules);
            assert!(p.default_response.is_some());
        }
        assert!(matches!(
            policy("nope", opts),
            Err(PolicyError::UnknownBuiltin { .. })
        ));
    }
}
