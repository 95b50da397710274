//! Findings as text a person reads at a glance, and as the `diagnose --json` document.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Finding, Severity};

/// The `diagnose --json` document.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    /// Always 1.
    pub schema: u32,
    /// Findings, worst first.
    pub findings: &'a [Finding],
}

impl<'a> Document<'a> {
    /// Wraps findings.
    pub fn new(findings: &'a [Finding]) -> Self {
        Document {
            schema: 1,
            findings,
        }
    }
}

/// Whether to colour text: ANSI colour plus bold, so that severity still shows on a
/// monochrome terminal through the label itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Plain text (pipes, files, `NO_COLOR`).
    Plain,
    /// ANSI colour and bold.
    Ansi,
}

fn paint(style: Style, severity: Severity, text: &str) -> String {
    if style == Style::Plain {
        return text.to_string();
    }
    let colour = match severity {
        Severity::Error => "31",
        Severity::Warning => "33",
        Severity::Info => "36",
    };
    format!("\x1b[1;{colour}m{text}\x1b[0m")
}

/// Renders findings, worst first as given, as a block of text.
pub fn render(findings: &[Finding], style: Style) -> String {
    if findings.is_empty() {
        return "No problems found: no security association failed, and none has been negotiating \
                longer than the stall threshold.\n"
            .into();
    }
    let mut out = String::new();
    for f in findings {
        render_one(&mut out, f, style);
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let _ = writeln!(out, "{} finding(s), {errors} error(s).", findings.len());
    out
}

fn render_one(out: &mut String, f: &Finding, style: Style) {
    let label = format!("{:<7}", f.severity.as_str().to_uppercase());
    let _ = writeln!(
        out,
        "{} {}  {}",
        paint(style, f.severity, &label),
        f.code.as_str(),
        f.summary
    );
    if let Some(sa) = &f.ike_sa {
        let _ = write!(out, "        IKE SA {sa}");
        if f.confidence < 1.0 {
            let _ = write!(out, " (inferred, confidence {:.0} %)", f.confidence * 100.0);
        }
        out.push('\n');
    } else if f.confidence < 1.0 {
        let _ = writeln!(
            out,
            "        (inferred, confidence {:.0} %)",
            f.confidence * 100.0
        );
    }
    for e in f.evidence.iter().take(12) {
        let _ = writeln!(
            out,
            "        frame {:>6}  {:>12.6}  {}",
            e.frame, e.ts, e.what
        );
    }
    if f.evidence.len() > 12 {
        let _ = writeln!(out, "        ... {} more", f.evidence.len() - 12);
    }
    let _ = writeln!(out, "        Remedy: {}\n", f.remedy);
}
