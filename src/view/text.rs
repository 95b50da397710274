//! The plain-text rendering (`ipsecmon --once`): the same content as the full-screen view,
//! as lines of text with no escape codes, for scripts and bug reports.

use std::fmt::Write;

use crate::snapshot::Snapshot;
use crate::track::report::Stats;

use super::model::{self, Column, RowOptions, SaRow};

/// One line of the statistics block: label and value.
pub type StatLine = (&'static str, u64);

/// The IPSecMon statistics block, in IPSecMon's order.
pub fn stat_lines(s: &Stats) -> [StatLine; 16] {
    [
        ("Active associations", s.active_associations),
        ("Confidential bytes sent", s.confidential_bytes_sent),
        ("Confidential bytes received", s.confidential_bytes_received),
        ("Authenticated bytes sent", s.authenticated_bytes_sent),
        (
            "Authenticated bytes received",
            s.authenticated_bytes_received,
        ),
        ("Bad SPI packets", s.bad_spi_packets),
        ("Packets not decrypted", s.packets_not_decrypted),
        ("Packets not authenticated", s.packets_not_authenticated),
        ("Key additions", s.key_additions),
        ("Key deletions", s.key_deletions),
        ("Rekeys", s.rekeys),
        ("Pending key operations", s.pending_key_operations),
        ("Main modes", s.main_modes),
        ("Quick modes", s.quick_modes),
        ("Soft associations", s.soft_associations),
        ("Authentication failures", s.authentication_failures),
    ]
}

/// Width of the longest statistics label.
pub const STAT_LABEL_WIDTH: usize = 28;

/// The columns that fit in `width` (all when `None`), each with its width, in display
/// order. Columns with no content anywhere (a rule column without a policy) are left out.
pub fn layout(rows: &[SaRow], now: f64, width: Option<usize>) -> Vec<(Column, usize)> {
    let mut cols: Vec<(Column, usize)> = Column::ALL
        .iter()
        .filter(|c| has_content(**c, rows))
        .map(|c| (*c, column_width(*c, rows, now)))
        .collect();
    if let Some(max) = width {
        let mut by_priority: Vec<_> = cols.clone();
        by_priority.sort_by_key(|(c, _)| c.priority());
        let mut used = 0;
        let mut keep = Vec::new();
        for (c, w) in by_priority {
            let need = if keep.is_empty() { w } else { w + 1 };
            if used + need <= max {
                used += need;
                keep.push(c);
            }
        }
        cols.retain(|(c, _)| keep.contains(c));
    }
    cols
}

fn has_content(c: Column, rows: &[SaRow]) -> bool {
    match c {
        Column::Rule => rows.iter().any(|r| r.rule.is_some()),
        Column::Traffic => rows.iter().any(|r| r.traffic.is_some()),
        Column::Note => rows.iter().any(|r| r.note.is_some()),
        Column::Decryption => rows.iter().any(|r| r.decryption.is_some()),
        _ => true,
    }
}

/// Widest cell of a column (header included), capped so one long value cannot take the
/// whole line.
fn column_width(c: Column, rows: &[SaRow], now: f64) -> usize {
    let cap = match c {
        Column::Note => 40,
        Column::Rule | Column::Traffic => 24,
        _ => 47,
    };
    rows.iter()
        .map(|r| c.cell(r, now).chars().count())
        .chain([c.title().len()])
        .max()
        .unwrap_or(0)
        .min(cap)
}

/// Pads or cuts `s` to exactly `w` characters, numbers to the right.
pub fn fit(s: &str, w: usize, right: bool) -> String {
    let n = s.chars().count();
    if n > w {
        let cut: String = s.chars().take(w.saturating_sub(1)).collect();
        return format!("{cut}~");
    }
    if right {
        format!("{s:>w$}")
    } else {
        format!("{s:<w$}")
    }
}

/// One table line from cells.
fn table_line(cols: &[(Column, usize)], cell: impl Fn(Column) -> String) -> String {
    let parts: Vec<String> = cols
        .iter()
        .map(|(c, w)| fit(&cell(*c), *w, c.is_numeric()))
        .collect();
    parts.join(" ").trim_end().to_string()
}

/// The header line of the view: source, frames, packet time.
pub fn title(snap: &Snapshot) -> String {
    let r = &snap.report;
    let time = r
        .last_ts
        .map(|t| format!("{} UTC", model::utc(t)))
        .unwrap_or_else(|| "no packets yet".into());
    format!("ipsecmon - {} frames - {time} - {}", r.frames, snap.source)
}

/// The capture line: libpcap's counters and the decoder's errors.
pub fn capture_line(snap: &Snapshot) -> String {
    let c = &snap.capture;
    let mut s = format!(
        "Capture: {} received, {} dropped, {} by interface",
        c.received, c.dropped, c.if_dropped
    );
    let errs: Vec<String> = snap
        .decode_errors
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    let total: u64 = snap.decode_errors.iter().map(|(_, n)| n).sum();
    let _ = write!(s, "; decode errors {total}");
    if !errs.is_empty() {
        let _ = write!(s, " ({})", errs.join(", "));
    }
    let ev = &snap.report.evictions;
    if ev.ike_sas + ev.esp_sas + ev.fragments > 0 {
        let _ = write!(
            s,
            "; evicted: {} IKE SAs, {} ESP/AH SAs, {} reassemblies",
            ev.ike_sas, ev.esp_sas, ev.fragments
        );
    }
    s
}

/// The whole `--once` text: title, SA table, statistics, findings, capture counters.
pub fn render(snap: &Snapshot, opts: RowOptions) -> String {
    let (rows, hidden) = model::shown_rows(snap, opts);
    let now = snap.report.last_ts.unwrap_or(0.0);
    let mut out = String::new();
    let _ = writeln!(out, "{}", title(snap));
    let _ = writeln!(out);
    let _ = write!(out, "Security associations ({})", rows.len());
    if hidden > 0 {
        let _ = write!(
            out,
            " + {hidden} ended (rekeyed, deleted, expired), shown with --all"
        );
    }
    let _ = writeln!(out);
    let cols = layout(&rows, now, None);
    let _ = writeln!(out, "{}", table_line(&cols, |c| c.title().to_string()));
    for row in &rows {
        let _ = writeln!(out, "{}", table_line(&cols, |c| c.cell(row, now)));
    }
    if rows.is_empty() {
        let none = if hidden > 0 {
            "(none in force)"
        } else {
            "(none seen yet)"
        };
        let _ = writeln!(out, "{none}");
    }
    if let Some(down) = model::rules_down(snap, &rows) {
        let _ = writeln!(out, "Rules with no SA up: {down}");
    }
    let _ = writeln!(out);
    render_stats(&mut out, &snap.report.stats);
    let _ = writeln!(out);
    render_findings(&mut out, snap);
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", capture_line(snap));
    out
}

fn render_stats(out: &mut String, stats: &Stats) {
    let _ = writeln!(out, "Statistics");
    let lines = stat_lines(stats);
    let (left, right) = lines.split_at(8);
    for (l, r) in left.iter().zip(right) {
        let _ = writeln!(
            out,
            "  {:<lw$} {:>12}    {:<lw$} {:>12}",
            l.0,
            l.1,
            r.0,
            r.1,
            lw = STAT_LABEL_WIDTH
        );
    }
}

fn render_findings(out: &mut String, snap: &Snapshot) {
    let _ = writeln!(out, "Findings ({})", snap.findings.len());
    for f in worst_first(snap) {
        let sa = f.ike_sa.as_deref().unwrap_or("-");
        let _ = writeln!(
            out,
            "  {:<7} {} [{sa}] {}",
            f.severity.as_str(),
            f.code.as_str(),
            f.summary
        );
        let _ = writeln!(out, "          remedy: {}", f.remedy);
    }
}

/// The findings, worst first (stable for equal severity).
pub fn worst_first(snap: &Snapshot) -> Vec<&crate::diagnose::Finding> {
    let mut v: Vec<_> = snap.findings.iter().collect();
    v.sort_by_key(|f| std::cmp::Reverse(f.severity));
    v
}

/// The snapshot as one JSON line (`--json`), `schema: 1` at its top level.
pub fn json_line(snap: &Snapshot) -> serde_json::Result<String> {
    serde_json::to_string(snap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::model::tests::sample;

    #[test]
    fn once_text_is_exact() {
        let text = render(&sample(), RowOptions::default());
        let expected = [
            "ipsecmon - 42 frames - 2023-11-14 22:13:32.000 UTC - sample.pcap",
            "",
            "Security associations (3)",
            concat!(
                "Local        Remote       Sec               SPI in   SPI out  State   ",
                "      Age Bytes in Bytes out Pkts in Pkts out   Rate  Last Note"
            ),
            concat!(
                "10.0.0.1     10.0.0.2     ESP aes128-sha256 c0000001 c0000002 establis",
                "hed   11s     4.1K      8.2K      42       84 1.2K/s 1.00s"
            ),
            concat!(
                "10.0.0.1:500 10.0.9.9:500 IKEv2             -        -        negotiat",
                "ing 7.00s        0         0       0        0      -     - peer-unreachable?"
            ),
            concat!(
                "10.0.5.5     10.0.0.1     ESP               -        deadbeef esp-only",
                "      11s        0       300       0        3  30B/s 1.00s"
            ),
            "",
        ];
        let lines: Vec<&str> = text.lines().take(expected.len()).collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn once_text_has_stats_findings_and_capture() {
        let text = render(&sample(), RowOptions::default());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[8], "Statistics");
        assert_eq!(
            lines[9],
            "  Active associations                     1    \
Key additions                           1"
        );
        assert_eq!(
            lines[10],
            "  Confidential bytes sent              8400    \
Key deletions                           0"
        );
        assert_eq!(lines[18], "Findings (1)");
        assert_eq!(
            lines[19],
            "  error   peer-unreachable [aaaabbbbccccdddd] \
10.0.0.1 asked 10.0.9.9 four times and never heard back"
        );
        assert_eq!(
            lines[20],
            "          remedy: Check that 10.0.9.9 is up and UDP 500 reaches it"
        );
        assert_eq!(
            lines[22],
            "Capture: 42 received, 0 dropped, 0 by interface; decode errors 1 (truncated 1)"
        );
    }

    #[test]
    fn once_text_counts_the_ended_sas_it_leaves_out() {
        let snap = crate::view::model::tests::rekeyed_sample();
        let text = render(&snap, RowOptions::default());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[2],
            "Security associations (3) + 1 ended (rekeyed, deleted, expired), shown with --all"
        );
        assert!(lines[4].starts_with("10.0.0.1:500 10.0.0.2:500 ESP aes128-sha256 c0000003"));
        let all = RowOptions {
            all: true,
            ..RowOptions::default()
        };
        let text = render(&snap, all);
        assert_eq!(text.lines().nth(2), Some("Security associations (4)"));
        assert!(text.contains("c0000001 c0000002 rekeyed"));
    }

    #[test]
    fn narrow_layout_keeps_the_important_columns() {
        let snap = sample();
        let rows = model::rows(&snap, RowOptions::default());
        let cols = layout(&rows, 1_700_000_012.0, Some(60));
        let names: Vec<_> = cols.iter().map(|(c, _)| c.title()).collect();
        assert_eq!(names, ["Local", "Remote", "SPI in", "SPI out", "State"]);
        let width: usize = cols.iter().map(|(_, w)| w + 1).sum::<usize>() - 1;
        assert!(width <= 60, "{width}");
    }

    #[test]
    fn json_line_carries_schema() {
        let line = json_line(&sample()).unwrap();
        assert!(line.starts_with("{\"schema\":1,"));
        assert!(!line.contains('\n'));
        let back: Snapshot = serde_json::from_str(&line).unwrap();
        assert_eq!(back, sample());
    }
}
