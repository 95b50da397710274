//! `policy show`: the policy as the IP Security Policies snap-in showed it, a tree of
//! policy → rules → filter list / filter action / authentication, with every mirrored
//! filter's reverse direction written out. Preshared keys never appear: a key file is shown
//! by its path, an inline key by its length.

use std::fmt::Write;

use super::model::*;

/// The text of a tree being written, one node per line.
struct Tree {
    out: String,
}

impl Tree {
    /// One line at `prefix` (the drawing of the ancestors) with its own connector.
    fn line(&mut self, prefix: &str, last: bool, text: &str) {
        let connector = if last { "└─ " } else { "├─ " };
        let _ = writeln!(self.out, "{prefix}{connector}{text}");
    }
}

fn child_prefix(prefix: &str, last: bool) -> String {
    format!("{prefix}{}", if last { "   " } else { "│  " })
}

/// Renders a policy as a tree of plain text lines.
pub fn render(p: &Policy) -> String {
    let mut t = Tree { out: String::new() };
    let _ = writeln!(t.out, "IP Security Policy {:?}  ({})", p.name, p.origin);
    if let Some(d) = &p.description {
        let _ = writeln!(t.out, "│  {d}");
    }
    let me: Vec<String> = p.me.addresses.iter().map(|a| a.to_string()).collect();
    let _ = writeln!(
        t.out,
        "│  me = {} (from {})",
        or_none(&me.join(", ")),
        p.me.from
    );
    let methods: Vec<String> = p
        .key_exchange
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{}) {m}", i + 1))
        .collect();
    let _ = writeln!(t.out, "│  key exchange: {}", methods.join("; "));
    let count = p.rules.len() + usize::from(p.default_response.is_some());
    for (i, rule) in p.rules.iter().enumerate() {
        rule_node(&mut t, p, i, rule, i + 1 == count);
    }
    if let Some(dr) = &p.default_response {
        default_response_node(&mut t, dr);
    }
    t.out
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "(none known)"
    } else {
        s
    }
}

fn rule_node(t: &mut Tree, p: &Policy, index: usize, rule: &Rule, last: bool) {
    let mode = match rule.tunnel_endpoint {
        Some(ep) => format!("tunnel to {ep}"),
        None => "no tunnel (transport)".to_string(),
    };
    let state = if rule.enabled { "" } else { "  [disabled]" };
    t.line(
        "",
        last,
        &format!(
            "Rule {} {:?}: {mode}, connection type {}{state}",
            index + 1,
            rule.name,
            rule.connection_type.as_str()
        ),
    );
    let prefix = child_prefix("", last);
    list_node(t, &prefix, p.filter_list_of(rule));
    action_node(t, &prefix, p.filter_action_of(rule));
    auth_node(t, &prefix, &rule.authentication);
}

fn list_node(t: &mut Tree, prefix: &str, list: &FilterList) {
    t.line(prefix, false, &format!("IP Filter List {:?}", list.name));
    let inner = child_prefix(prefix, false);
    let n = list.filters.len();
    if n == 0 {
        t.line(&inner, true, "(no filters)");
    }
    for (i, f) in list.filters.iter().enumerate() {
        let last = i + 1 == n;
        t.line(
            &inner,
            last,
            &format!("Filter {}: {}", i + 1, filter_text(f)),
        );
        if f.mirrored {
            let mirror = f.mirror();
            let p = child_prefix(&inner, last);
            t.line(&p, true, &format!("mirror: {}", mirror.summary()));
        }
    }
}

fn filter_text(f: &Filter) -> String {
    let mirrored = if f.mirrored {
        "mirrored"
    } else {
        "NOT mirrored"
    };
    format!("{}  [{mirrored}]", f.summary())
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn action_node(t: &mut Tree, prefix: &str, a: &FilterAction) {
    let what = match a.action {
        Action::Permit => "permit".to_string(),
        Action::Block => "block".to_string(),
        Action::Negotiate => format!(
            "negotiate security; accept unsecured communication: {}; allow fallback to \
             the clear: {}; session key PFS: {}",
            yes_no(a.accept_unsecured),
            yes_no(a.allow_fallback_to_clear),
            yes_no(a.session_key_pfs)
        ),
    };
    t.line(
        prefix,
        false,
        &format!("Filter Action {:?}: {what}", a.name),
    );
    methods_node(t, &child_prefix(prefix, false), &a.security_methods);
}

fn methods_node(t: &mut Tree, prefix: &str, methods: &[SecurityMethod]) {
    let n = methods.len();
    for (i, m) in methods.iter().enumerate() {
        let text = format!("Security Method {} ({}): {}", i + 1, m.label, m.summary());
        t.line(prefix, i + 1 == n, &text);
    }
}

fn auth_node(t: &mut Tree, prefix: &str, auth: &[AuthMethod]) {
    t.line(prefix, true, "Authentication Methods");
    let inner = child_prefix(prefix, true);
    let n = auth.len();
    for (i, a) in auth.iter().enumerate() {
        t.line(&inner, i + 1 == n, &format!("{}. {a}", i + 1));
    }
}

fn default_response_node(t: &mut Tree, dr: &DefaultResponse) {
    t.line(
        "",
        true,
        "Default Response Rule: answer peers that request security",
    );
    let prefix = child_prefix("", true);
    t.line(&prefix, false, "Security Methods");
    methods_node(t, &child_prefix(&prefix, false), &dr.security_methods);
    auth_node(t, &prefix, &dr.authentication);
}

#[cfg(test)]
mod tests {
    use super::super::{builtin, LoadOptions, StaticResolver};
    use super::*;

    #[test]
    fn the_client_policy_shows_its_default_response_rule() {
        let r = StaticResolver {
            names: Vec::new(),
            local: vec!["192.0.2.1".parse().unwrap()],
        };
        let opts = LoadOptions {
            resolver: &r,
            me: None,
        };
        let text = render(&builtin::policy("client", opts).unwrap());
        let want = [
            "IP Security Policy \"Client (Respond Only)\"  (builtin:client)",
            "│  me = 192.0.2.1 (from this host)",
            "└─ Default Response Rule: answer peers that request security",
            "   ├─ Security Methods",
            "   │  ├─ Security Method 1 (custom): ESP 3des/sha1, 100000 KB / 900 s",
            "   └─ Authentication Methods",
            "      └─ 1. kerberos",
        ];
        for line in want {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
    }
}
