//! `policy explain`: which rule governs a flow and why, as text or as JSON (`schema: 1`).

use std::fmt::Write;

use serde::Serialize;

use super::matching::{candidates, reasons, Cleartext, Flow, Match};
use super::model::*;

/// The answer for one flow; serializes as the `policy explain --json` document.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// Always 1.
    pub schema: u32,
    /// The policy's name.
    pub policy: String,
    /// The flow, as `tcp 192.0.2.1:40000 -> 192.0.2.2:6667`.
    pub flow: String,
    /// Whether any rule governs the flow.
    pub matched: bool,
    /// The winning rule, filter and action; `null` when nothing matched.
    pub result: Option<Winner>,
    /// Why the filter matches, one sentence per field; or why nothing did.
    pub why: Vec<String>,
    /// Other filters that match but are less specific, in order.
    pub also_matched: Vec<Loser>,
}

/// The rule that governs the flow.
#[derive(Debug, Clone, Serialize)]
pub struct Winner {
    /// 1-based rule number, as `policy show` numbers rules.
    pub rule_number: usize,
    /// The rule's name.
    pub rule: String,
    /// Line of the rule in the file (0 for built-in policies).
    pub rule_line: usize,
    /// The filter list's name.
    pub filter_list: String,
    /// 1-based filter number within the list.
    pub filter_number: usize,
    /// Line of the filter.
    pub filter_line: usize,
    /// The filter as written.
    pub filter: String,
    /// Whether the flow matched the filter's mirror.
    pub mirrored: bool,
    /// The filter action's name.
    pub filter_action: String,
    /// `permit`, `block` or `negotiate`.
    pub action: String,
    /// Security methods in order (negotiate only).
    pub security_methods: Vec<String>,
    /// Authentication methods in order; keys hidden.
    pub authentication: Vec<String>,
    /// What seeing this flow in the clear means: `allowed`, `violation` or `blocked`.
    pub cleartext: String,
}

/// A filter that also matches but loses on specificity or order.
#[derive(Debug, Clone, Serialize)]
pub struct Loser {
    /// The rule's name.
    pub rule: String,
    /// The filter as written.
    pub filter: String,
    /// Whether via its mirror.
    pub mirrored: bool,
}

/// Explains which rule of `p` governs `flow`.
pub fn explain(p: &Policy, flow: &Flow) -> Explanation {
    let all = candidates(p, flow);
    let mut out = Explanation {
        schema: 1,
        policy: p.name.clone(),
        flow: flow.to_string(),
        matched: !all.is_empty(),
        result: None,
        why: Vec::new(),
        also_matched: Vec::new(),
    };
    let Some(best) = all.first() else {
        out.why.push(no_match_reason(p));
        return out;
    };
    out.result = Some(winner(p, best, flow));
    out.why = reasons(best, flow);
    if all.len() > 1 {
        out.why.push(format!(
            "it is the most specific of the {} matching filters (exact addresses before \
             subnets before any; a protocol before any; ports before any; then rule order)",
            all.len()
        ));
    }
    out.also_matched = all.iter().skip(1).map(loser).collect();
    out
}

fn no_match_reason(p: &Policy) -> String {
    let mut s = "no filter of any enabled rule matches this flow in either direction, so the \
                 policy does not govern it and it passes in the clear"
        .to_string();
    if p.me.addresses.is_empty() {
        s.push_str("; note that no address is known for `me` (pass --local ADDR)");
    }
    s
}

fn winner(p: &Policy, m: &Match<'_>, flow: &Flow) -> Winner {
    let cleartext = match m.cleartext(p.is_me(flow.dst)) {
        Cleartext::Allowed => "allowed",
        Cleartext::Violation => "violation",
        Cleartext::Blocked => "blocked",
    };
    Winner {
        rule_number: m.rule_index + 1,
        rule: m.rule.name.clone(),
        rule_line: m.rule.line,
        filter_list: m.filter_list.name.clone(),
        filter_number: m.filter_index + 1,
        filter_line: m.filter.line,
        filter: m.filter.summary(),
        mirrored: m.mirrored,
        filter_action: m.action.name.clone(),
        action: m.action.action.as_str().to_string(),
        security_methods: m
            .action
            .security_methods
            .iter()
            .map(|s| s.summary())
            .collect(),
        authentication: m
            .rule
            .authentication
            .iter()
            .map(|a| a.to_string())
            .collect(),
        cleartext: cleartext.to_string(),
    }
}

fn loser(m: &Match<'_>) -> Loser {
    Loser {
        rule: m.rule.name.clone(),
        filter: m.filter.summary(),
        mirrored: m.mirrored,
    }
}

fn action_words(w: &Winner) -> String {
    let what = match w.action.as_str() {
        "negotiate" => format!("negotiate security ({})", w.security_methods.join("; ")),
        "block" => "block".to_string(),
        _ => "permit in the clear".to_string(),
    };
    let clear = match w.cleartext.as_str() {
        "violation" => "this flow must not travel in the clear (cleartext-violation)",
        "blocked" => "this flow must not travel at all",
        _ => "this flow may travel in the clear",
    };
    format!("{:?}: {what}; {clear}", w.filter_action)
}

/// The explanation as plain text lines.
pub fn render_text(e: &Explanation) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "flow:    {}", e.flow);
    let _ = writeln!(s, "policy:  {}", e.policy);
    if let Some(w) = &e.result {
        let via = if w.mirrored {
            "via its mirror"
        } else {
            "as written"
        };
        let _ = writeln!(
            s,
            "rule:    {} {:?} (line {})",
            w.rule_number, w.rule, w.rule_line
        );
        let _ = writeln!(
            s,
            "filter:  {} of {:?} (line {}), {via}: {}",
            w.filter_number, w.filter_list, w.filter_line, w.filter
        );
        let _ = writeln!(s, "action:  {}", action_words(w));
        let _ = writeln!(s, "auth:    {}", w.authentication.join("; "));
    } else {
        let _ = writeln!(s, "rule:    none");
    }
    for reason in &e.why {
        let _ = writeln!(s, "why:     {reason}");
    }
    for l in &e.also_matched {
        let via = if l.mirrored { ", via its mirror" } else { "" };
        let _ = writeln!(
            s,
            "also:    {:?}: {}{via} (less specific)",
            l.rule, l.filter
        );
    }
    s
}
