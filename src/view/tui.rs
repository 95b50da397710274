//! The full-screen view: IPSecMon's window for a terminal.
//!
//! [`draw`] renders one frame from a snapshot and the [`ViewState`] (sort, filter,
//! selection, panes); [`ViewState::on_key`] changes that state. Neither reads the capture:
//! the loop in [`super::run_terminal`] hands them the latest published snapshot.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use crate::runner::Status;
use crate::snapshot::Snapshot;
use crate::track::report::IkeSaReport;

use super::model::{self, Column, RowOptions, SaRow};
use super::style::Theme;
use super::text;

/// Lines one PgUp/PgDn moves the detail pane.
const DETAIL_PAGE: u16 = 5;

/// What the loop should do after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Redraw.
    Redraw,
    /// Leave the view.
    Quit,
}

/// The view's own state: everything the keys change.
#[derive(Debug, Clone)]
pub struct ViewState {
    /// Sort column; `None` keeps the report's order (by first frame).
    pub sort: Option<Column>,
    /// Sort descending.
    pub reverse: bool,
    /// Address filter (substring of endpoints, SPIs, rule or state).
    pub filter: String,
    /// The filter line is being edited.
    pub editing: bool,
    /// The shown snapshot is frozen.
    pub paused: bool,
    /// Selected row index (within the filtered, sorted rows).
    pub selected: usize,
    /// The detail pane of the selected row is open.
    pub detail: bool,
    /// The help overlay is open.
    pub help: bool,
    /// Which side is local.
    pub rows: RowOptions,
    /// Styles.
    pub theme: Theme,
    /// Refresh interval, seconds (shown in the title).
    pub refresh: f64,
    /// The capture loop's status (shown in the title; a failure also on the capture line).
    pub status: Status,
    /// The table's columns as last drawn: digits and `s`/`S` sort by these.
    pub shown: Vec<Column>,
    /// Ended SAs left out of the last drawn table.
    pub hidden: usize,
    /// Lines scrolled off the top of the detail pane.
    pub detail_scroll: u16,
}

impl ViewState {
    /// The initial state.
    pub fn new(rows: RowOptions, theme: Theme, refresh: f64) -> Self {
        ViewState {
            sort: None,
            reverse: false,
            filter: String::new(),
            editing: false,
            paused: false,
            selected: 0,
            detail: false,
            help: false,
            rows,
            theme,
            refresh,
            status: Status::Running,
            shown: Column::ALL.to_vec(),
            hidden: 0,
            detail_scroll: 0,
        }
    }

    /// The rows as shown: filtered, then sorted.
    pub fn visible_rows(&self, snap: &Snapshot) -> Vec<SaRow> {
        self.visible(snap).0
    }

    /// The rows as shown, and how many ended SAs are hidden.
    pub fn visible(&self, snap: &Snapshot) -> (Vec<SaRow>, usize) {
        let (mut rows, hidden) = model::shown_rows(snap, self.rows);
        if !self.filter.is_empty() {
            rows.retain(|r| r.matches(&self.filter));
        }
        if let Some(c) = self.sort {
            model::sort_rows(&mut rows, c, self.reverse);
        }
        (rows, hidden)
    }

    /// Applies one key; `rows` is the number of visible rows.
    pub fn on_key(&mut self, key: KeyEvent, rows: usize) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if self.editing {
            self.on_filter_key(key.code);
            return Action::Redraw;
        }
        if self.help {
            self.help = false;
            return Action::Redraw;
        }
        self.on_command_key(key.code, rows)
    }

    fn on_filter_key(&mut self, code: KeyCode) {
        match code {
            KeyCode::Enter => self.editing = false,
            KeyCode::Esc => {
                self.editing = false;
                self.filter.clear();
            }
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(c) if !c.is_control() && self.filter.len() < 64 => self.filter.push(c),
            _ => {}
        }
        self.selected = 0;
    }

    fn on_command_key(&mut self, code: KeyCode, rows: usize) -> Action {
        match code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Esc if self.detail => self.detail = false,
            KeyCode::Esc if !self.filter.is_empty() => self.filter.clear(),
            KeyCode::Esc => return Action::Quit,
            KeyCode::Char('?') | KeyCode::Char('h') => self.help = true,
            KeyCode::Char(' ') | KeyCode::Char('p') => self.paused = !self.paused,
            KeyCode::Char('/') => self.editing = true,
            KeyCode::Char('s') | KeyCode::Right => self.cycle_sort(true),
            KeyCode::Char('S') | KeyCode::Left => self.cycle_sort(false),
            KeyCode::Char('r') => self.reverse = !self.reverse,
            KeyCode::Char('a') => self.rows.all = !self.rows.all,
            KeyCode::Char(d @ '1'..='9') => self.sort_by_digit(d),
            KeyCode::PageDown if self.detail => {
                self.detail_scroll = self.detail_scroll.saturating_add(DETAIL_PAGE)
            }
            KeyCode::PageUp if self.detail => {
                self.detail_scroll = self.detail_scroll.saturating_sub(DETAIL_PAGE)
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(rows.saturating_sub(1));
                self.detail_scroll = 0;
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.selected = self.selected.saturating_sub(1);
                self.detail_scroll = 0;
            }
            KeyCode::PageDown => self.selected = (self.selected + 10).min(rows.saturating_sub(1)),
            KeyCode::PageUp => self.selected = self.selected.saturating_sub(10),
            KeyCode::Home => self.selected = 0,
            KeyCode::End => self.selected = rows.saturating_sub(1),
            KeyCode::Enter => {
                self.detail = !self.detail && rows > 0;
                self.detail_scroll = 0;
            }
            _ => {}
        }
        Action::Redraw
    }

    /// Moves the sort to the next (or previous) shown column; past the last, back to
    /// report order.
    fn cycle_sort(&mut self, forward: bool) {
        let all = &self.shown;
        if all.is_empty() {
            return;
        }
        let pos = self.sort.and_then(|c| all.iter().position(|x| *x == c));
        self.sort = match (pos, forward) {
            (None, true) => Some(all[0]),
            (None, false) => Some(all[all.len() - 1]),
            (Some(i), true) => all.get(i + 1).copied(),
            (Some(0), false) => None,
            (Some(i), false) => Some(all[i - 1]),
        };
    }

    /// Sorts by the shown column numbered `d` (1 is the leftmost).
    fn sort_by_digit(&mut self, d: char) {
        let n = d.to_digit(10).unwrap_or(1) as usize;
        let c = self.shown.get(n - 1).copied();
        if self.sort == c && c.is_some() {
            self.reverse = !self.reverse;
        } else {
            self.sort = c;
            self.reverse = c.is_some_and(Column::is_numeric);
        }
    }
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame<'_>, snap: &Snapshot, state: &mut ViewState) {
    let area = f.area();
    let (rows, hidden) = state.visible(snap);
    state.hidden = hidden;
    state.selected = state.selected.min(rows.len().saturating_sub(1));
    let [title, body, capture, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(4),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_title(f, title, snap, state);
    if state.detail && !rows.is_empty() {
        draw_with_detail(f, body, snap, state, &rows);
    } else {
        draw_overview(f, body, snap, state, &rows);
    }
    draw_capture(f, capture, snap, state);
    draw_keys(f, keys, state);
    if state.help {
        draw_help(f, area, state);
    }
}

fn draw_title(f: &mut Frame<'_>, area: Rect, snap: &Snapshot, state: &ViewState) {
    let mut s = "ipsecmon".to_string();
    if state.paused {
        s.push_str(" - PAUSED");
    }
    match &state.status {
        Status::Running => {}
        Status::Finished => s.push_str(" - end of capture"),
        Status::Stopped => s.push_str(" - capture stopped"),
        Status::Failed(_) => s.push_str(" - CAPTURE FAILED"),
    }
    // The rest of the plain title, after its leading "ipsecmon".
    let title = text::title(snap);
    s.push_str(title.strip_prefix("ipsecmon").unwrap_or(&title));
    s = s.replacen(
        " frames - ",
        &format!(" frames - refresh {}s - ", state.refresh),
        1,
    );
    if s.chars().count() > area.width as usize {
        s = shorten_source(&s, &snap.source);
    }
    f.render_widget(Paragraph::new(s).style(state.theme.title()), area);
}

/// The title with a file source cut to its file name (interfaces stay as they are).
fn shorten_source(title: &str, source: &str) -> String {
    let name = std::path::Path::new(source)
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|_| !source.starts_with("interface "));
    match (name, title.strip_suffix(source)) {
        (Some(name), Some(head)) => format!("{head}{name}"),
        _ => title.to_string(),
    }
}

fn stats_columns(width: u16) -> usize {
    match width {
        0..=119 => 2,
        120..=159 => 3,
        _ => 4,
    }
}

fn draw_overview(
    f: &mut Frame<'_>,
    area: Rect,
    snap: &Snapshot,
    st: &mut ViewState,
    rows: &[SaRow],
) {
    let cols = stats_columns(area.width);
    let stat_rows = 16_usize.div_ceil(cols) as u16;
    let nfind = snap.findings.len().max(1) as u16;
    let find_h = nfind.min(if area.height > 30 { 8 } else { 3 }) + 1;
    let [table, stats, findings] = Layout::vertical([
        Constraint::Min(4),
        Constraint::Length(stat_rows + 1),
        Constraint::Length(find_h),
    ])
    .areas(area);
    draw_table(f, table, snap, st, rows);
    draw_stats(f, stats, snap, st, cols);
    draw_findings(f, findings, snap, st);
}

fn section(title: String, theme: Theme) -> Block<'static> {
    Block::new()
        .borders(Borders::TOP)
        .title(Span::styled(title, theme.header()))
}

fn draw_table(f: &mut Frame<'_>, area: Rect, snap: &Snapshot, st: &mut ViewState, rows: &[SaRow]) {
    let now = snap.report.last_ts.unwrap_or(0.0);
    let mut title = format!("Security associations ({})", rows.len());
    if st.hidden > 0 {
        title.push_str(&format!(" + {} ended, hidden (a shows)", st.hidden));
    }
    // Judged on every row in force, not only those the filter leaves: without a filter
    // those are `rows` (sorting does not matter), with one they are made again.
    let down = if st.filter.is_empty() {
        model::rules_down(snap, rows)
    } else {
        model::rules_down(snap, &model::shown_rows(snap, st.rows).0)
    };
    if let Some(down) = down {
        title.push_str(&format!("; no SA up for {down}"));
    }
    if !st.filter.is_empty() || st.editing {
        title.push_str(&format!(" filter: {}", st.filter));
        if st.editing {
            title.push('_');
        }
    }
    let layout = text::layout(rows, now, Some(area.width.saturating_sub(1) as usize));
    st.shown = layout.iter().map(|(c, _)| *c).collect();
    let header =
        Row::new(layout.iter().map(|(c, w)| header_cell(*c, *w, st))).style(st.theme.header());
    let body = rows.iter().map(|r| {
        Row::new(
            layout
                .iter()
                .map(|(c, w)| text::fit(&c.cell(r, now), *w, c.is_numeric())),
        )
        .style(st.theme.state(r.state))
    });
    let widths: Vec<Constraint> = layout
        .iter()
        .map(|(c, w)| Constraint::Length(*w as u16 + u16::from(st.sort == Some(*c))))
        .collect();
    let table = Table::new(body, widths)
        .header(header)
        .block(section(title, st.theme))
        .column_spacing(1)
        .row_highlight_style(st.theme.selected());
    let mut ts = TableState::default().with_selected((!rows.is_empty()).then_some(st.selected));
    f.render_stateful_widget(table, area, &mut ts);
}

/// A header cell; the sort column's title carries `^` (ascending) or `v` right after it.
fn header_cell(c: Column, w: usize, st: &ViewState) -> String {
    if st.sort != Some(c) {
        return text::fit(c.title(), w, c.is_numeric());
    }
    let marker = if st.reverse { 'v' } else { '^' };
    text::fit(&format!("{}{marker}", c.title()), w + 1, c.is_numeric())
}

fn draw_stats(f: &mut Frame<'_>, area: Rect, snap: &Snapshot, st: &ViewState, cols: usize) {
    let lines = text::stat_lines(&snap.report.stats);
    let per_col = lines.len().div_ceil(cols);
    let col_w = (area.width as usize / cols).max(12);
    // Each column is label, a space, the value and two spaces of gutter; labels keep their
    // full width while values have at least 7 characters (larger ones are abbreviated).
    let label_w = text::STAT_LABEL_WIDTH.min(col_w.saturating_sub(3 + 7));
    let value_w = col_w.saturating_sub(label_w + 3).min(12);
    let out: Vec<Line> = (0..per_col)
        .map(|r| {
            let spans = (0..cols)
                .filter_map(|c| lines.get(c * per_col + r))
                .flat_map(|(label, v)| stat_spans(label, *v, label_w, value_w, st))
                .collect::<Vec<_>>();
            Line::from(spans)
        })
        .collect();
    f.render_widget(
        Paragraph::new(out).block(section("Statistics".into(), st.theme)),
        area,
    );
}

fn stat_spans(label: &str, v: u64, lw: usize, vw: usize, st: &ViewState) -> [Span<'static>; 3] {
    let mut value = v.to_string();
    if value.len() > vw {
        value = model::count(v);
    }
    let alarming = matches!(
        label,
        "Bad SPI packets"
            | "Packets not decrypted"
            | "Packets not authenticated"
            | "Authentication failures"
    );
    [
        Span::styled(text::fit(label, lw, false), st.theme.dim()),
        Span::styled(format!(" {value:>vw$}"), st.theme.alarm(alarming && v > 0)),
        Span::raw("  "),
    ]
}

fn draw_findings(f: &mut Frame<'_>, area: Rect, snap: &Snapshot, st: &ViewState) {
    let items = text::worst_first(snap);
    let lines: Vec<Line> = if items.is_empty() {
        vec![Line::styled("none", st.theme.dim())]
    } else {
        items
            .iter()
            .map(|fd| {
                Line::from(vec![
                    Span::styled(
                        format!("{:<7} ", fd.severity.as_str()),
                        st.theme.severity(fd.severity),
                    ),
                    Span::styled(format!("{} ", fd.code.as_str()), st.theme.header()),
                    Span::raw(fd.summary.clone()),
                ])
            })
            .collect()
    };
    let title = format!("Findings ({})", items.len());
    f.render_widget(Paragraph::new(lines).block(section(title, st.theme)), area);
}

fn draw_capture(f: &mut Frame<'_>, area: Rect, snap: &Snapshot, st: &ViewState) {
    let c = &snap.capture;
    let errors: u64 = snap.decode_errors.iter().map(|(_, n)| n).sum();
    let incomplete = c.dropped + c.if_dropped + errors > 0;
    let (s, alarm) = match &st.status {
        Status::Failed(e) => (format!("capture failed: {e}"), true),
        _ => (text::capture_line(snap), incomplete),
    };
    f.render_widget(Paragraph::new(s).style(st.theme.alarm(alarm)), area);
}

fn draw_keys(f: &mut Frame<'_>, area: Rect, st: &ViewState) {
    let s = if st.editing {
        "type an address or SPI - Enter keep - Esc clear"
    } else {
        "q quit  ? help  space pause  s/S sort  / filter  a all  arrows+Enter detail"
    };
    f.render_widget(Paragraph::new(s).style(st.theme.dim()), area);
}

fn draw_with_detail(
    f: &mut Frame<'_>,
    area: Rect,
    snap: &Snapshot,
    st: &mut ViewState,
    rows: &[SaRow],
) {
    let table_h = (area.height / 3).max(4);
    let [table, detail] =
        Layout::vertical([Constraint::Length(table_h), Constraint::Min(4)]).areas(area);
    draw_table(f, table, snap, st, rows);
    let row = &rows[st.selected.min(rows.len() - 1)];
    let lines = detail_lines(snap, row, st.theme);
    st.detail_scroll = st.detail_scroll.min(lines.len().saturating_sub(1) as u16);
    let title = match row.spi_in.as_deref().or(row.spi_out.as_deref()) {
        Some(spi) => format!("Detail: SA {spi} (Esc closes, PgUp/PgDn scroll)"),
        None => "Detail (Esc closes, PgUp/PgDn scroll)".to_string(),
    };
    f.render_widget(
        Paragraph::new(lines)
            .block(section(title, st.theme))
            .wrap(Wrap { trim: false })
            .scroll((st.detail_scroll, 0)),
        detail,
    );
}

/// The detail pane's lines for a row: its IKE SA, exchanges with timings, NAT evidence,
/// algorithms, ESP counters, decryption and findings.
pub fn detail_lines(snap: &Snapshot, row: &SaRow, theme: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    out.push(Line::raw(row_line(row, snap.report.last_ts.unwrap_or(0.0))));
    match row.ike.and_then(|i| snap.report.ike_sas.get(i)) {
        Some(ike) => {
            out.extend(child_line(ike, row));
            ike_detail(&mut out, snap, ike, theme)
        }
        None => out.push(Line::raw(
            "No IKE negotiation for these SPIs in the capture (it began before, or IKE \
             travels elsewhere).",
        )),
    }
    esp_detail(&mut out, snap, row, theme);
    decryption_detail(&mut out, snap, row, theme);
    out
}

/// The row itself: state, security, rule and traffic, age and last packet.
fn row_line(row: &SaRow, now: f64) -> String {
    let mut s = format!(
        "{}  {}  {} <-> {}  age {}",
        row.state.as_str(),
        row.security,
        row.local,
        row.remote,
        model::duration(now - row.since)
    );
    if let Some(last) = row.last_seen() {
        s.push_str(&format!(
            ", last packet {} ago",
            model::duration(now - last)
        ));
    }
    if let Some(rule) = &row.rule {
        s.push_str(&format!("  rule \"{rule}\""));
    }
    if let Some(t) = &row.traffic {
        s.push_str(&format!(" ({t})"));
    }
    s
}

/// The child SA of the row, as the IKE SA negotiated it: when it came up, what it replaced.
fn child_line(ike: &IkeSaReport, row: &SaRow) -> Option<Line<'static>> {
    let spis = [row.spi_in.as_deref(), row.spi_out.as_deref()];
    let child = ike.child_sas.iter().find(|c| {
        let mine = [c.spi_in.as_deref(), c.spi_out.as_deref()];
        mine.iter().flatten().any(|s| spis.contains(&Some(*s)))
    })?;
    let at = child
        .established_at
        .map(|t| format!("up at +{}", model::duration(t - ike.started)))
        .unwrap_or_else(|| "not yet up".into());
    let from = child
        .rekeyed_from
        .as_ref()
        .map(|r| format!(", rekey of {r}"))
        .unwrap_or_default();
    Some(Line::raw(format!(
        "child SA {} ({}): {at}{from}",
        child.protocol.to_ascii_uppercase(),
        child.source
    )))
}

fn heading(s: &str, theme: Theme) -> Line<'static> {
    Line::styled(s.to_string(), theme.header())
}

fn ike_detail(out: &mut Vec<Line<'static>>, snap: &Snapshot, ike: &IkeSaReport, theme: Theme) {
    let after = ike
        .established_after_s
        .map(|s| format!("established after {}", model::duration(s)))
        .unwrap_or_else(|| "not established".into());
    out.push(Line::raw(format!(
        "IKEv{} SA {}/{}  {} -> {}  {}  {}, {} retransmissions",
        ike.version,
        ike.spi_i,
        ike.spi_r,
        ike.initiator,
        ike.responder,
        ike.state.as_str(),
        after,
        ike.retransmissions
    )));
    out.push(Line::raw(format!(
        "started {} UTC (frame {}), last packet frame {}{}",
        model::utc(ike.started),
        ike.first_frame,
        ike.last_frame,
        ike.rekeyed_from
            .as_ref()
            .map(|r| format!(", rekey of {r}"))
            .unwrap_or_default()
    )));
    if let Some(fail) = &ike.failure {
        let notify = fail
            .notify_type
            .map(|n| format!(" (notify {n})"))
            .unwrap_or_default();
        out.push(Line::styled(
            format!("failure: {}{notify} at frame {}", fail.code, fail.frame),
            theme.severity(crate::diagnose::Severity::Error),
        ));
    }
    out.push(heading("IKE history", theme));
    for x in &ike.exchanges {
        out.push(Line::raw(exchange_line(x, ike.started, ike.version)));
        out.extend(x.details.iter().map(|d| Line::raw(format!("      {d}"))));
    }
    out.extend(ike.icmp.iter().map(|i| {
        Line::raw(format!(
            "  ICMP from {} at frame {}: {}",
            i.from, i.frame, i.what
        ))
    }));
    out.push(heading(&format!("NAT: {}", nat_word(ike)), theme));
    out.extend(ike.nat.evidence.iter().map(|e| {
        Line::raw(format!(
            "  {}: {} (frames {})",
            e.kind,
            e.detail,
            frames(&e.frames)
        ))
    }));
    out.push(heading("Algorithms", theme));
    out.push(Line::raw(algorithms_line(ike)));
    let mine: Vec<_> = model::findings_for(&snap.findings, &ike.spi_i).collect();
    if !mine.is_empty() {
        out.push(heading("Findings", theme));
    }
    for fd in mine {
        out.push(Line::styled(
            format!(
                "  {} {}: {}",
                fd.severity.as_str(),
                fd.code.as_str(),
                fd.summary
            ),
            theme.severity(fd.severity),
        ));
        out.push(Line::raw(format!("    remedy: {}", fd.remedy)));
    }
}

fn exchange_line(x: &crate::track::report::ExchangeReport, t0: f64, version: u8) -> String {
    let resp = x
        .response_frame
        .map(|r| r.to_string())
        .unwrap_or_else(|| "none".into());
    let mut s = format!(
        "  +{:<7} {:<15} msg {:<3} frames {}->{}",
        model::duration(x.started - t0),
        x.exchange,
        x.message_id,
        x.request_frame,
        resp
    );
    if let Some(r) = x.rtt_s {
        s.push_str(&format!("  rtt {:.1}ms", r * 1000.0));
    }
    if x.retransmissions > 0 {
        s.push_str(&format!("  retransmitted {}", x.retransmissions));
    }
    if !x.notifies.is_empty() {
        let names: Vec<String> = x
            .notifies
            .iter()
            .map(|n| {
                crate::wire::ike::registry::notify_name(version, *n)
                    .map_or_else(|| n.to_string(), str::to_string)
            })
            .collect();
        s.push_str(&format!("  notify {}", names.join(",")));
    }
    s
}

fn nat_word(ike: &IkeSaReport) -> &'static str {
    use crate::track::report::NatVerdict;
    match ike.nat.verdict {
        NatVerdict::None => "none on the path",
        NatVerdict::Initiator => "the initiator is behind a NAT",
        NatVerdict::Responder => "the responder is behind a NAT",
        NatVerdict::Both => "both peers are behind NATs",
        NatVerdict::Undecidable => "undecidable from the capture",
    }
}

/// The algorithms: the proposal the responder chose, else what the initiator offered.
fn algorithms_line(ike: &IkeSaReport) -> String {
    let protos: Vec<String> = ike
        .child_sas
        .iter()
        .map(|c| format!("{} ({})", c.protocol.to_ascii_uppercase(), c.source))
        .collect();
    let children = if protos.is_empty() {
        "no child SA known".to_string()
    } else {
        format!("child SAs {}", protos.join(", "))
    };
    match (&ike.chosen, ike.offered.is_empty()) {
        (Some(c), _) => format!("  chosen {c}; {children}"),
        (None, false) => format!(
            "  offered {} (none chosen yet); {children}",
            ike.offered.join(" ")
        ),
        (None, true) => format!("  not seen in cleartext; {children}"),
    }
}

fn frames(v: &[u64]) -> String {
    let s: Vec<String> = v.iter().take(8).map(u64::to_string).collect();
    s.join(",")
}

fn esp_detail(out: &mut Vec<Line<'static>>, snap: &Snapshot, row: &SaRow, theme: Theme) {
    let sas = snap.report.esp_sas.iter().chain(&snap.report.ah_sas);
    let mine: Vec<_> = sas
        .filter(|s| Some(&s.spi) == row.spi_in.as_ref() || Some(&s.spi) == row.spi_out.as_ref())
        .collect();
    if mine.is_empty() {
        return;
    }
    out.push(heading("ESP/AH", theme));
    for s in mine {
        out.push(Line::raw(format!(
            "  {} {} -> {} encap {}: {} packets, {} bytes, lost {}, replayed {}, reordered {}, \
             linked {}",
            s.spi,
            s.src,
            s.dst,
            s.encap,
            s.packets,
            s.bytes,
            s.lost,
            s.replayed,
            s.reordered,
            s.ike_sa_link.as_deref().unwrap_or("no")
        )));
    }
}

/// What decryption with `--keys` achieved for the row's IKE SA and each of its ESP/AH SAs;
/// nothing when no key was given for any of them.
fn decryption_detail(out: &mut Vec<Line<'static>>, snap: &Snapshot, row: &SaRow, theme: Theme) {
    if row.decryption.is_none() {
        return;
    }
    out.push(heading("Decryption (--keys)", theme));
    if let Some(ike) = row.ike.and_then(|i| snap.report.ike_sas.get(i)) {
        let what = ike.decryption.as_ref().map_or_else(
            || NO_KEY.to_string(),
            |d| model::decryption_text(d, "messages"),
        );
        out.push(decryption_line(
            format!("  IKE SA {}: {what}", ike.spi_i),
            ike.decryption.as_ref(),
            theme,
        ));
    }
    let sas = snap.report.esp_sas.iter().chain(&snap.report.ah_sas);
    for (spi, way) in [(&row.spi_in, "in"), (&row.spi_out, "out")] {
        let Some(sa) = spi
            .as_ref()
            .and_then(|spi| sas.clone().find(|s| &s.spi == spi))
        else {
            continue;
        };
        let what = sa.decryption.as_ref().map_or_else(
            || NO_KEY.to_string(),
            |d| model::decryption_text(d, "packets"),
        );
        out.push(decryption_line(
            format!("  {} {way}: {what}", sa.spi),
            sa.decryption.as_ref(),
            theme,
        ));
    }
}

/// An SA the key table holds nothing for.
const NO_KEY: &str = "no key in the key table";

/// A decryption line, in the error style when it failed.
fn decryption_line(
    text: String,
    d: Option<&crate::track::report::DecryptionReport>,
    theme: Theme,
) -> Line<'static> {
    match d.map(|d| d.status.as_str()) {
        Some("not-authenticated" | "not-decrypted") => {
            Line::styled(text, theme.severity(crate::diagnose::Severity::Error))
        }
        Some("partial") => Line::styled(text, theme.severity(crate::diagnose::Severity::Warning)),
        _ => Line::raw(text),
    }
}

const HELP: &[(&str, &str)] = &[
    (
        "q, Esc",
        "quit (Esc first closes the detail or clears the filter)",
    ),
    ("space, p", "pause the shown snapshot (capture goes on)"),
    ("s, S", "sort by the next / previous column"),
    ("1-9", "sort by column 1-9 (again: reverse)"),
    ("r", "reverse the sort"),
    ("a", "show or hide ended SAs (rekeyed, deleted, expired)"),
    ("/", "filter by address, SPI or state (Enter, Esc)"),
    ("Up, Down", "select an SA"),
    ("Enter", "open the selected SA's detail pane"),
    ("?", "this help (any key closes it)"),
];

fn draw_help(f: &mut Frame<'_>, area: Rect, st: &ViewState) {
    let w = area.width.min(78);
    let h = (HELP.len() as u16 + 4).min(area.height);
    let pane = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(format!("{k:<10}"), st.theme.header()),
                Span::raw(*v),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        "States: established negotiating rekeying idle failed esp-only",
    ));
    f.render_widget(Clear, pane);
    f.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(" Help "))
            .wrap(Wrap { trim: false }),
        pane,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::model::tests::sample;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn screen(w: u16, h: u16, state: &mut ViewState) -> Vec<String> {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        let snap = sample();
        term.draw(|f| draw(f, &snap, state)).unwrap();
        let buf = term.backend().buffer().clone();
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    fn state() -> ViewState {
        ViewState::new(RowOptions::default(), Theme::monochrome(), 1.0)
    }

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn small_terminal_shows_every_section() {
        let lines = screen(80, 24, &mut state());
        let all = lines.join("\n");
        assert!(lines[0].starts_with("ipsecmon - 42 frames - refresh 1s - 2023-11-14"));
        assert!(lines[1].contains("Security associations (3)"));
        assert!(lines[2].contains("Remote") && lines[2].contains("SPI in"));
        assert!(lines[3].contains("c0000001") && lines[3].contains("established"));
        assert!(all.contains("Statistics"));
        assert!(all.contains("Active associations"));
        assert!(all.contains("Confidential bytes sent") && all.contains("8400"));
        assert!(all.contains("error   peer-unreachable"));
        assert!(lines[22].starts_with("Capture: 42 received, 0 dropped"));
        assert!(lines[23].starts_with("q quit"));
        assert!(lines.iter().all(|l| l.chars().count() <= 80));
    }

    #[test]
    fn large_terminal_shows_every_column_and_stat() {
        let lines = screen(160, 48, &mut state());
        let all = lines.join("\n");
        for col in ["Local", "Sec", "Pkts out", "Rate", "Last", "Note"] {
            assert!(lines[2].contains(col), "{col} missing: {}", lines[2]);
        }
        assert!(all.contains("peer-unreachable?"));
        for (label, _) in text::stat_lines(&sample().report.stats) {
            assert!(all.contains(label), "{label}");
        }
    }

    #[test]
    fn every_statistic_shows_its_value_at_every_width() {
        let stats = sample().report.stats;
        for (w, h) in [(80, 24), (120, 30), (160, 48), (220, 50)] {
            let lines = screen(w, h, &mut state());
            for (label, v) in text::stat_lines(&stats) {
                let line = lines
                    .iter()
                    .find(|l| l.contains(label))
                    .unwrap_or_else(|| panic!("{w}x{h}: no {label}"));
                let after = line.split(label).nth(1).unwrap_or_default().trim_start();
                assert!(
                    after.starts_with(&v.to_string()),
                    "{w}x{h}: {label} shows {after:?}, not {v}"
                );
            }
        }
    }

    #[test]
    fn keys_sort_filter_pause_and_open_the_detail() {
        let mut st = state();
        screen(160, 48, &mut st);
        st.on_key(key(KeyCode::Char('9')), 3);
        assert_eq!(st.sort, Some(Column::BytesOut));
        assert!(st.reverse);
        let lines = screen(160, 48, &mut st);
        assert!(lines[2].contains("Bytes outv"), "{}", lines[2]);
        assert!(lines[3].contains("c0000002"), "largest first: {}", lines[3]);
        st.on_key(key(KeyCode::Char('s')), 3);
        assert_eq!(st.sort, Some(Column::PktsIn));
        st.on_key(key(KeyCode::Char(' ')), 3);
        assert!(st.paused);
        st.on_key(key(KeyCode::Char('/')), 3);
        for c in "10.0.5".chars() {
            st.on_key(key(KeyCode::Char(c)), 3);
        }
        st.on_key(key(KeyCode::Enter), 3);
        assert_eq!(st.filter, "10.0.5");
        assert_eq!(st.visible_rows(&sample()).len(), 1);
        st.on_key(key(KeyCode::Enter), 1);
        assert!(st.detail);
        let lines = screen(100, 30, &mut st);
        let all = lines.join("\n");
        assert!(all.contains("PAUSED"));
        assert!(all.contains("Detail: SA deadbeef"));
        assert!(all.contains("No IKE negotiation"));
        assert_eq!(st.on_key(key(KeyCode::Char('q')), 1), Action::Quit);
    }

    #[test]
    fn detail_shows_history_nat_and_findings() {
        let mut st = state();
        st.on_key(key(KeyCode::Down), 3);
        st.on_key(key(KeyCode::Enter), 3);
        let all = screen(120, 40, &mut st).join("\n");
        assert!(all.contains("IKEv2 SA aaaabbbbccccdddd/0000000000000000"));
        assert!(all.contains("IKE_SA_INIT"));
        assert!(all.contains("frames 1->none"));
        assert!(all.contains("retransmitted 3"));
        assert!(all.contains("NAT: undecidable"));
        assert!(all.contains("offered ike:aes128-sha256-modp2048 (none chosen yet)"));
        assert!(all.contains("responder chose aes128-sha256-modp2048"));
        assert!(all.contains("remedy: Check that 10.0.9.9 is up"));
    }

    fn screen_of(snap: &Snapshot, w: u16, h: u16, state: &mut ViewState) -> Vec<String> {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        term.draw(|f| draw(f, snap, state)).unwrap();
        let buf = term.backend().buffer().clone();
        (0..h)
            .map(|y| {
                let line: String = (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect();
                line.trim_end().to_string()
            })
            .collect()
    }

    #[test]
    fn detail_says_how_each_sa_decrypted() {
        let snap = crate::view::model::tests::decrypted_sample();
        let mut st = state();
        let lines = screen_of(&snap, 160, 48, &mut st);
        assert!(lines[2].contains(" Decryption "), "{}", lines[2]);
        assert!(lines[3].contains("not-authenticated"), "{}", lines[3]);
        st.on_key(key(KeyCode::Enter), 3);
        let row = &st.visible_rows(&snap)[0];
        let text: Vec<String> = detail_lines(&snap, row, Theme::monochrome())
            .iter()
            .map(|l| l.to_string())
            .skip_while(|l| l != "Decryption (--keys)")
            .collect();
        assert_eq!(
            text,
            [
                "Decryption (--keys)",
                "  IKE SA 1111222233334444: decrypted 4 messages (4 verified)",
                "  c0000001 in: not authenticated: 42 packets failed their integrity check \
                 (first frame 7, icv-mismatch): a wrong key, or altered packets",
                "  c0000002 out: decrypted 84 packets (84 verified)",
            ]
        );
        let all = screen_of(&snap, 160, 48, &mut st).join("\n");
        assert!(all.contains("Decryption (--keys)"), "{all}");
        // Without keys there is no such section, nor column.
        let plain = sample();
        let row = &st.visible_rows(&plain)[0];
        let text: Vec<String> = detail_lines(&plain, row, Theme::monochrome())
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert!(
            !text.iter().any(|l| l.starts_with("Decryption")),
            "{text:?}"
        );
        assert!(!screen_of(&plain, 160, 48, &mut state())[2].contains("Decryption"));
    }

    #[test]
    fn a_shows_and_hides_ended_sas() {
        let snap = crate::view::model::tests::rekeyed_sample();
        let mut st = state();
        let lines = screen_of(&snap, 120, 30, &mut st);
        assert!(
            lines[1].starts_with("Security associations (3) + 1 ended, hidden (a shows)"),
            "{}",
            lines[1]
        );
        assert!(!lines.join("\n").contains("rekeyed"));
        st.on_key(key(KeyCode::Char('a')), 3);
        let lines = screen_of(&snap, 120, 30, &mut st);
        assert!(
            lines[1].starts_with("Security associations (4)──"),
            "{}",
            lines[1]
        );
        assert!(lines[3].contains("c0000001") && lines[3].contains("rekeyed"));
    }

    #[test]
    fn detail_pane_scrolls_and_names_the_child_sa() {
        let snap = crate::view::model::tests::rekeyed_sample();
        let mut st = state();
        st.on_key(key(KeyCode::Enter), 3);
        let all = screen_of(&snap, 100, 24, &mut st).join("\n");
        assert!(all.contains("Detail: SA c0000003"), "{all}");
        assert!(all.contains("child SA ESP (proposal): up at +10s, rekey of c0000001"));
        assert!(all.contains("IKEv2 SA 1111222233334444/5555666677778888"));
        st.on_key(key(KeyCode::PageDown), 3);
        assert_eq!(st.detail_scroll, DETAIL_PAGE);
        let all = screen_of(&snap, 100, 24, &mut st).join("\n");
        assert!(
            !all.contains("child SA ESP (proposal)"),
            "scrolled off: {all}"
        );
        assert!(all.contains("NAT: undecidable"), "{all}");
        st.on_key(key(KeyCode::Down), 3);
        assert_eq!(st.detail_scroll, 0);
    }

    #[test]
    fn a_long_file_path_gives_way_to_its_name_in_a_narrow_title() {
        let mut snap = sample();
        snap.source = "/var/tmp/captures/of/a/long/path/sample.pcap".into();
        let lines = screen_of(&snap, 80, 24, &mut state());
        assert_eq!(
            lines[0],
            "ipsecmon - 42 frames - refresh 1s - 2023-11-14 22:13:32.000 UTC - sample.pcap"
        );
        let wide = screen_of(&snap, 160, 24, &mut state());
        assert!(wide[0].ends_with(" - /var/tmp/captures/of/a/long/path/sample.pcap"));
        assert_eq!(
            shorten_source("x - interface eth0", "interface eth0"),
            "x - interface eth0"
        );
    }

    #[test]
    fn help_overlay_lists_the_keys() {
        let mut st = state();
        st.on_key(key(KeyCode::Char('?')), 3);
        let all = screen(80, 24, &mut st).join("\n");
        assert!(all.contains("Help"));
        assert!(all.contains("filter by address"));
        st.on_key(key(KeyCode::Char('x')), 3);
        assert!(!st.help);
    }
}
