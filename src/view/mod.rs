//! The refreshing terminal view and its plain-text and JSON-lines renderings.
//!
//! Every rendering reads published [`Snapshot`]s only (see [`crate::runner`]): the view
//! never touches the capture loop, so a slow terminal never slows capture.
//!
//! - [`model`]: the SA table as rows, formatting of units.
//! - [`text`]: `--once` plain text and `--json` lines.
//! - [`tui`]: the full-screen ratatui view, its keys and panes.
//! - [`style`]: colours that survive monochrome and `NO_COLOR`.

pub mod model;
pub mod style;
pub mod text;
pub mod tui;

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{self, Event, KeyEventKind};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::ExecutableCommand;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use crate::runner::{Published, Shared, Status};
use crate::snapshot::Snapshot;

use tui::{Action, ViewState};

/// How often the view looks for keys and new snapshots.
const POLL: Duration = Duration::from_millis(100);

/// A line for the capture loop's status, `None` while it runs.
pub fn status_line(status: &Status) -> Option<String> {
    match status {
        Status::Running => None,
        Status::Finished => Some("end of capture".into()),
        Status::Stopped => Some("capture stopped".into()),
        Status::Failed(e) => Some(format!("capture failed: {e}")),
    }
}

/// Runs the full-screen view until the user quits; `stop` is called then, so the capture
/// loop can end. The terminal is restored on every exit path, panics included.
pub fn run_terminal(shared: &Shared, mut state: ViewState) -> io::Result<()> {
    let mut term = enter()?;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = leave();
        hook(info);
    }));
    let result = event_loop(&mut term, shared, &mut state);
    let _ = std::panic::take_hook();
    leave()?;
    result
}

type Term = Terminal<CrosstermBackend<io::Stdout>>;

fn enter() -> io::Result<Term> {
    terminal::enable_raw_mode()?;
    io::stdout().execute(EnterAlternateScreen)?;
    Terminal::new(CrosstermBackend::new(io::stdout()))
}

fn leave() -> io::Result<()> {
    terminal::disable_raw_mode()?;
    io::stdout().execute(LeaveAlternateScreen)?;
    io::stdout().execute(crossterm::cursor::Show)?;
    Ok(())
}

fn event_loop(term: &mut Term, shared: &Shared, state: &mut ViewState) -> io::Result<()> {
    let mut shown: Published = shared.latest();
    let mut dirty = true;
    loop {
        if !state.paused {
            let latest = shared.latest();
            if latest.seq != shown.seq {
                shown = latest;
                dirty = true;
            }
        }
        state.status = status_line(&shown.status);
        if dirty {
            let snap: Arc<Snapshot> = Arc::clone(&shown.snapshot);
            term.draw(|f| tui::draw(f, &snap, state))?;
            dirty = false;
        }
        if !event::poll(POLL)? {
            continue;
        }
        match event::read()? {
            Event::Key(k) if k.kind != KeyEventKind::Release => {
                let n = state.visible_rows(&shown.snapshot).len();
                if state.on_key(k, n) == Action::Quit {
                    return Ok(());
                }
                dirty = true;
            }
            Event::Resize(..) => dirty = true,
            _ => {}
        }
    }
}

/// Prints every publication as one JSON line until the capture loop ends; the final
/// snapshot is always printed.
pub fn run_json(shared: &Shared, out: &mut impl Write) -> io::Result<()> {
    let mut seq = 0;
    loop {
        let p = shared.wait_newer(seq, Duration::from_millis(200));
        if p.seq != seq {
            seq = p.seq;
            writeln!(out, "{}", text::json_line(&p.snapshot)?)?;
            out.flush()?;
        }
        if p.status.is_done() {
            return Ok(());
        }
    }
}
