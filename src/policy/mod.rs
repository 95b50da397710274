//! The Windows 2000 IPsec policy model: policies, rules, filter lists, filters, filter
//! actions, authentication and security methods; its TOML file, validation, and matching a
//! flow to its rule.
//!
//! [`Policy::load`] reads a file (or `builtin:NAME`), resolves DNS names and `me`, and
//! checks it: errors stop the load ([`PolicyError`]), warnings ride along in
//! [`Policy::warnings`]. [`Policy::match_flow`] answers which rule governs a flow (the order
//! is documented in [`matching`]); [`Policy::tunnels_expected`] lists the rules that should
//! have a security association up. The module reads files and asks the resolver; it never
//! changes the system.

pub mod builtin;
pub mod diff;
pub mod explain;
pub mod file;
pub mod matching;
pub mod model;
pub mod peers;
pub mod resolve;
pub mod show;
pub mod validate;

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

pub use matching::{Flow, Match};
pub use model::*;
pub use resolve::{Resolver, StaticResolver, SystemResolver};

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The policy loads; the user should look.
    Warning,
    /// The policy cannot be used.
    Error,
}

/// One error or warning about a policy file, naming its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub level: Level,
    /// The file (or `builtin:NAME`).
    pub origin: String,
    /// 1-based line; 0 when the problem has no single line (built-in policies).
    pub line: usize,
    /// What is wrong and what to do, in one or two sentences.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Warning => "warning",
            Level::Error => "error",
        };
        if self.line == 0 {
            write!(f, "{}: {level}: {}", self.origin, self.message)
        } else {
            write!(
                f,
                "{}:{}: {level}: {}",
                self.origin, self.line, self.message
            )
        }
    }
}

/// Why a policy did not load.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read the policy file {path}: {source}; check the path")]
    Unreadable {
        /// The path as given.
        path: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// `builtin:NAME` with an unknown NAME.
    #[error("there is no built-in policy {name:?}; the built-in policies are {}", builtin::NAMES.join(", "))]
    UnknownBuiltin {
        /// The name given.
        name: String,
    },
    /// The file has errors (each names its line); warnings found on the way ride along.
    #[error("{}", render_errors(.errors))]
    Invalid {
        /// The errors, in file order.
        errors: Vec<Diagnostic>,
        /// The warnings, in file order.
        warnings: Vec<Diagnostic>,
    },
}

fn render_errors(errors: &[Diagnostic]) -> String {
    let lines: Vec<String> = errors.iter().map(|d| d.to_string()).collect();
    lines.join("\n")
}

/// How to load a policy.
#[derive(Clone, Copy)]
pub struct LoadOptions<'a> {
    /// Resolves DNS names and lists the local host's addresses.
    pub resolver: &'a dyn Resolver,
    /// What `me` stands for, overriding the file and the host (e.g. `--local`).
    pub me: Option<&'a [IpAddr]>,
}

impl Default for LoadOptions<'_> {
    fn default() -> Self {
        LoadOptions {
            resolver: &SystemResolver,
            me: None,
        }
    }
}

/// Prefix that names a built-in policy instead of a file.
pub const BUILTIN_PREFIX: &str = "builtin:";

impl Policy {
    /// Loads a policy file, or a built-in policy as `builtin:NAME`, with the system resolver.
    pub fn load(path_or_builtin: &str) -> Result<Policy, PolicyError> {
        Policy::load_with(path_or_builtin, LoadOptions::default())
    }

    /// Loads a policy file or built-in policy with the given resolver and `me`.
    pub fn load_with(path_or_builtin: &str, opts: LoadOptions<'_>) -> Result<Policy, PolicyError> {
        if let Some(name) = path_or_builtin.strip_prefix(BUILTIN_PREFIX) {
            return builtin::policy(name, opts);
        }
        let text =
            std::fs::read_to_string(path_or_builtin).map_err(|source| PolicyError::Unreadable {
                path: path_or_builtin.to_string(),
                source,
            })?;
        let dir = Path::new(path_or_builtin)
            .parent()
            .unwrap_or(Path::new("."));
        file::parse(&text, path_or_builtin, dir, opts)
    }

    /// Which rule governs a flow, if any (see [`matching`] for the order).
    pub fn match_flow(&self, flow: &Flow) -> Option<Match<'_>> {
        matching::best(self, flow)
    }

    /// The enabled rules that negotiate security for some traffic between `a` and `b` (in
    /// either direction, any protocol or port), most specific first: the rules an IKE or
    /// ESP SA between these two addresses may belong to. A tunnel rule counts when either
    /// address is its tunnel endpoint.
    pub fn rules_between(&self, a: IpAddr, b: IpAddr) -> Vec<usize> {
        matching::rules_between(self, a, b)
    }

    /// Every enabled rule whose action negotiates security: each should have an SA up, so a
    /// monitor can show it as "configured but down" while it has none.
    pub fn tunnels_expected(&self) -> Vec<ExpectedTunnel<'_>> {
        self.rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.enabled)
            .filter(|(_, r)| self.filter_action_of(r).action == Action::Negotiate)
            .map(|(index, rule)| ExpectedTunnel {
                rule_index: index,
                rule,
                filter_list: self.filter_list_of(rule),
                filter_action: self.filter_action_of(rule),
            })
            .collect()
    }
}

/// A rule that should have a security association (see [`Policy::tunnels_expected`]).
#[derive(Debug, Clone, Copy)]
pub struct ExpectedTunnel<'p> {
    /// Index into [`Policy::rules`].
    pub rule_index: usize,
    /// The rule.
    pub rule: &'p Rule,
    /// Its filter list: which traffic the SA protects.
    pub filter_list: &'p FilterList,
    /// Its filter action: how.
    pub filter_action: &'p FilterAction,
}

impl ExpectedTunnel<'_> {
    /// The remote addresses the SA is expected with: the tunnel endpoint, else every filter
    /// address that is not `me` or `any` (a DNS name contributes its resolved addresses).
    pub fn peers(&self) -> Vec<String> {
        if let Some(ep) = self.rule.tunnel_endpoint {
            return vec![ep.to_string()];
        }
        let mut out: Vec<String> = Vec::new();
        for f in &self.filter_list.filters {
            for a in [&f.source, &f.destination] {
                let s = match a {
                    Address::Me | Address::Any => continue,
                    Address::Dns { addresses, .. } => addresses
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        out
    }
}
