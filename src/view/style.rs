//! Colours that survive a monochrome terminal: every colour is paired with a modifier
//! (bold, reversed, underlined, dim), so states stay apart without colour, and `NO_COLOR`
//! (https://no-color.org) turns the colours off.

use std::ffi::OsString;

use ratatui::style::{Color, Modifier, Style};

use crate::diagnose::Severity;

use super::model::RowState;

/// The view's styles.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    colour: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set to a non-empty value or `TERM` is `dumb`.
    pub fn from_env() -> Self {
        Theme::from_vars(std::env::var_os("NO_COLOR"), std::env::var_os("TERM"))
    }

    /// The theme for these values of `NO_COLOR` and `TERM`.
    pub fn from_vars(no_color: Option<OsString>, term: Option<OsString>) -> Self {
        let no_color = no_color.is_some_and(|v| !v.is_empty());
        let dumb = term.is_some_and(|t| t == "dumb");
        Theme {
            colour: !(no_color || dumb),
        }
    }

    /// Whether colours are used (modifiers always are).
    pub fn has_colour(self) -> bool {
        self.colour
    }

    /// Modifiers only.
    pub fn monochrome() -> Self {
        Theme { colour: false }
    }

    fn paint(self, base: Style, fg: Color) -> Style {
        if self.colour {
            base.fg(fg)
        } else {
            base
        }
    }

    /// The title bar.
    pub fn title(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }

    /// Table headers and block titles.
    pub fn header(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    /// The selected row.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// Labels and secondary text.
    pub fn dim(self) -> Style {
        self.paint(Style::new(), Color::Gray)
    }

    /// A row in a given state.
    pub fn state(self, s: RowState) -> Style {
        let base = Style::new();
        match s {
            RowState::Failed => self.paint(base.add_modifier(Modifier::BOLD), Color::Red),
            RowState::Negotiating => {
                self.paint(base.add_modifier(Modifier::UNDERLINED), Color::Yellow)
            }
            RowState::Rekeying => self.paint(base.add_modifier(Modifier::ITALIC), Color::Cyan),
            RowState::Established => self.paint(base, Color::Green),
            RowState::EspOnly => self.paint(base.add_modifier(Modifier::ITALIC), Color::Magenta),
            RowState::Idle | RowState::Rekeyed | RowState::Deleted | RowState::Expired => {
                self.paint(base.add_modifier(Modifier::DIM), Color::DarkGray)
            }
        }
    }

    /// A finding's severity.
    pub fn severity(self, s: Severity) -> Style {
        match s {
            Severity::Error => self.paint(Style::new().add_modifier(Modifier::BOLD), Color::Red),
            Severity::Warning => self.paint(Style::new(), Color::Yellow),
            Severity::Info => self.dim(),
        }
    }

    /// A counter that should be zero and is not (drops, errors, bad SPIs).
    pub fn alarm(self, nonzero: bool) -> Style {
        if nonzero {
            self.paint(Style::new().add_modifier(Modifier::BOLD), Color::Red)
        } else {
            Style::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monochrome_keeps_modifiers_and_drops_colours() {
        let t = Theme::monochrome();
        let failed = t.state(RowState::Failed);
        assert_eq!(failed.fg, None);
        assert!(failed.add_modifier.contains(Modifier::BOLD));
        let neg = t.state(RowState::Negotiating);
        assert!(neg.add_modifier.contains(Modifier::UNDERLINED));
        assert_ne!(failed, neg);
        assert_eq!(
            Theme { colour: true }.state(RowState::Failed).fg,
            Some(Color::Red)
        );
    }

    #[test]
    fn no_color_and_dumb_terminals_turn_colour_off() {
        let os = |s: &str| Some(OsString::from(s));
        assert!(Theme::from_vars(None, os("xterm-256color")).has_colour());
        assert!(Theme::from_vars(os(""), os("xterm")).has_colour());
        assert!(!Theme::from_vars(os("1"), os("xterm")).has_colour());
        assert!(!Theme::from_vars(None, os("dumb")).has_colour());
    }
}
