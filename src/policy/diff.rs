//! `policy diff`: what differs between two policies, item by item, matched by name (filter
//! lists, filter actions and rules are named in the model). Keys are compared but never
//! shown.

use super::model::*;

/// One difference, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `-` only in the first policy, `+` only in the second, `~` in both but different.
    pub sign: char,
    /// What differs, in words.
    pub text: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.sign, self.text)
    }
}

/// Every difference from `a` to `b`; empty when they are the same policy.
pub fn diff(a: &Policy, b: &Policy) -> Vec<Change> {
    let mut out = Vec::new();
    field(&mut out, "policy name", &a.name, &b.name);
    field(
        &mut out,
        "default response rule",
        &a.default_response.is_some(),
        &b.default_response.is_some(),
    );
    key_exchange(&mut out, &a.key_exchange, &b.key_exchange);
    named(
        &mut out,
        "filter list",
        &a.filter_lists,
        &b.filter_lists,
        |l| &l.name,
        list_changes,
    );
    named(
        &mut out,
        "filter action",
        &a.filter_actions,
        &b.filter_actions,
        |x| &x.name,
        action_changes,
    );
    let rule_a: Vec<RuleView> = a.rules.iter().map(|r| RuleView::new(a, r)).collect();
    let rule_b: Vec<RuleView> = b.rules.iter().map(|r| RuleView::new(b, r)).collect();
    named(
        &mut out,
        "rule",
        &rule_a,
        &rule_b,
        |r| &r.rule.name,
        rule_changes,
    );
    out
}

/// The key exchange methods, and a warning when the two share none: then no IKE SA can
/// be made between them.
fn key_exchange(out: &mut Vec<Change>, a: &[KeyExchangeMethod], b: &[KeyExchangeMethod]) {
    if a == b {
        return;
    }
    let text = |m: &[KeyExchangeMethod]| {
        let all: Vec<String> = m.iter().map(|x| x.to_string()).collect();
        all.join("; ")
    };
    out.push(change(
        '~',
        format!("key exchange methods: {} -> {}", text(a), text(b)),
    ));
    if !a.iter().any(|x| b.contains(x)) {
        out.push(change(
            '~',
            "key exchange methods: none in common, so the two cannot make an IKE SA".into(),
        ));
    }
}

fn change(sign: char, text: String) -> Change {
    Change { sign, text }
}

fn field<T: PartialEq + std::fmt::Debug>(out: &mut Vec<Change>, what: &str, a: &T, b: &T) {
    if a != b {
        out.push(change('~', format!("{what}: {a:?} -> {b:?}")));
    }
}

/// Items matched by name: removed, added, and changed (described by `inner`).
fn named<T>(
    out: &mut Vec<Change>,
    kind: &str,
    a: &[T],
    b: &[T],
    name: impl Fn(&T) -> &String,
    inner: impl Fn(&T, &T) -> Vec<String>,
) {
    for x in a {
        match b.iter().find(|y| name(y) == name(x)) {
            None => out.push(change('-', format!("{kind} {:?}", name(x)))),
            Some(y) => out.extend(
                inner(x, y)
                    .into_iter()
                    .map(|t| change('~', format!("{kind} {:?}: {t}", name(x)))),
            ),
        }
    }
    for y in b.iter().filter(|y| !a.iter().any(|x| name(x) == name(y))) {
        out.push(change('+', format!("{kind} {:?}", name(y))));
    }
}

fn push_if<T: PartialEq + std::fmt::Display>(v: &mut Vec<String>, what: &str, a: T, b: T) {
    if a != b {
        v.push(format!("{what} {a} -> {b}"));
    }
}

fn list_changes(a: &FilterList, b: &FilterList) -> Vec<String> {
    let text = |f: &Filter| format!("{} (mirrored: {})", f.summary(), f.mirrored);
    let (fa, fb): (Vec<String>, Vec<String>) = (
        a.filters.iter().map(text).collect(),
        b.filters.iter().map(text).collect(),
    );
    let mut v: Vec<String> = fa
        .iter()
        .filter(|f| !fb.contains(f))
        .map(|f| format!("filter removed: {f}"))
        .collect();
    v.extend(
        fb.iter()
            .filter(|f| !fa.contains(f))
            .map(|f| format!("filter added: {f}")),
    );
    v
}

fn methods_text(m: &[SecurityMethod]) -> String {
    let v: Vec<String> = m.iter().map(|m| m.summary()).collect();
    format!("[{}]", v.join("; "))
}

fn action_changes(a: &FilterAction, b: &FilterAction) -> Vec<String> {
    let mut v = Vec::new();
    push_if(&mut v, "action", a.action.as_str(), b.action.as_str());
    push_if(
        &mut v,
        "security methods",
        methods_text(&a.security_methods),
        methods_text(&b.security_methods),
    );
    push_if(
        &mut v,
        "accept_unsecured",
        a.accept_unsecured,
        b.accept_unsecured,
    );
    push_if(
        &mut v,
        "allow_fallback_to_clear",
        a.allow_fallback_to_clear,
        b.allow_fallback_to_clear,
    );
    push_if(
        &mut v,
        "session_key_pfs",
        a.session_key_pfs,
        b.session_key_pfs,
    );
    v
}

/// A rule with the names of what it links, so rules of two files compare by name.
struct RuleView<'p> {
    rule: &'p Rule,
    list: &'p str,
    action: &'p str,
}

impl<'p> RuleView<'p> {
    fn new(p: &'p Policy, rule: &'p Rule) -> RuleView<'p> {
        RuleView {
            rule,
            list: &p.filter_list_of(rule).name,
            action: &p.filter_action_of(rule).name,
        }
    }
}

fn auth_text(a: &[AuthMethod]) -> String {
    let v: Vec<String> = a.iter().map(|m| m.to_string()).collect();
    format!("[{}]", v.join("; "))
}

fn rule_changes(a: &RuleView<'_>, b: &RuleView<'_>) -> Vec<String> {
    let (ra, rb) = (a.rule, b.rule);
    let mut v = Vec::new();
    push_if(&mut v, "filter list", a.list, b.list);
    push_if(&mut v, "filter action", a.action, b.action);
    let (ta, tb) = (auth_text(&ra.authentication), auth_text(&rb.authentication));
    if ta != tb {
        v.push(format!("authentication {ta} -> {tb}"));
    } else if ra.authentication != rb.authentication {
        v.push("a preshared key differs (keys are not shown)".into());
    }
    push_if(
        &mut v,
        "connection type",
        ra.connection_type.as_str(),
        rb.connection_type.as_str(),
    );
    let tunnel = |r: &Rule| r.tunnel_endpoint.map_or("none".into(), |t| t.to_string());
    push_if(&mut v, "tunnel endpoint", tunnel(ra), tunnel(rb));
    push_if(&mut v, "enabled", ra.enabled, rb.enabled);
    v
}

#[cfg(test)]
mod tests {
    use super::super::{builtin, LoadOptions, StaticResolver};
    use super::*;

    fn load(name: &str) -> Policy {
        let r = StaticResolver::default();
        let opts = LoadOptions {
            resolver: &r,
            me: None,
        };
        builtin::policy(name, opts).unwrap()
    }

    #[test]
    fn a_policy_equals_itself() {
        let p = load("server");
        assert!(diff(&p, &p).is_empty());
    }

    #[test]
    fn server_and_secure_server_differ_in_their_first_rule() {
        let got: Vec<String> = diff(&load("server"), &load("secure-server"))
            .iter()
            .map(|c| c.to_string())
            .collect();
        let want = [
            "~ policy name: \"Server (Request Security)\" -> \"Secure Server (Require Security)\"",
            "- rule \"All IP Traffic / Request Security\"",
            "+ rule \"All IP Traffic / Require Security\"",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn key_exchange_methods_are_compared_and_a_disjoint_pair_is_called_out() {
        let a = load("server");
        let mut b = a.clone();
        b.key_exchange[0].dh_group = DhGroup::Modp2048;
        let got: Vec<String> = diff(&a, &b).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            got,
            [
                "~ key exchange methods: 3des, sha1, Diffie-Hellman group 2 (modp1024) -> \
                 3des, sha1, Diffie-Hellman group 14 (modp2048)",
                "~ key exchange methods: none in common, so the two cannot make an IKE SA",
            ]
        );
        b.key_exchange.push(KeyExchangeMethod::WINDOWS_DEFAULT);
        assert_eq!(diff(&a, &b).len(), 1);
    }
}
