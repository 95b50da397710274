//! What decryption achieved per SA: how many messages or packets decrypted, how many
//! failed and why, so that a wrong key shows as a per-SA "not decrypted" or "not
//! authenticated" rather than as missing or garbled detail.

use tracing::debug;

use crate::decrypt::{DecryptError, Outcome};

use super::report::{DecryptFailure, DecryptionReport};

/// Counts of one SA's decryption outcomes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    decrypted: u64,
    verified: u64,
    not_decrypted: u64,
    not_authenticated: u64,
    first_failure: Option<(u64, DecryptError)>,
}

impl Tally {
    /// Records one outcome; returns `true` when the SA's status changed (for the one
    /// debug line per change).
    pub(crate) fn record(&mut self, frame: u64, outcome: Outcome) -> bool {
        let before = self.status();
        match outcome {
            Outcome::Ok { verified } => {
                self.decrypted += 1;
                self.verified += u64::from(verified);
            }
            Outcome::Failed(e) => {
                if e.is_authentication() {
                    self.not_authenticated += 1;
                } else {
                    self.not_decrypted += 1;
                }
                self.first_failure.get_or_insert((frame, e));
            }
        }
        before != self.status()
    }

    /// `decrypted`, `partial`, `not-authenticated` or `not-decrypted`.
    pub(crate) fn status(&self) -> &'static str {
        let failed = self.not_decrypted + self.not_authenticated;
        match (self.decrypted, failed) {
            (_, 0) => "decrypted",
            (0, _) if self.not_authenticated >= self.not_decrypted => "not-authenticated",
            (0, _) => "not-decrypted",
            _ => "partial",
        }
    }

    /// The report form.
    pub(crate) fn to_report(self) -> DecryptionReport {
        DecryptionReport {
            status: self.status().to_string(),
            decrypted: self.decrypted,
            verified: self.verified,
            not_decrypted: self.not_decrypted,
            not_authenticated: self.not_authenticated,
            first_failure: self.first_failure.map(|(frame, e)| DecryptFailure {
                frame,
                reason: e.as_str().to_string(),
            }),
        }
    }
}

/// Records an outcome on an SA's tally (created on first use) and logs a change of its
/// status once, naming the SA by `what` and its SPI (formatted only when logged).
pub(crate) fn note(tally: &mut Option<Tally>, frame: u64, outcome: Outcome, what: &str, spi: u64) {
    let t = tally.get_or_insert_with(Tally::default);
    if t.record(frame, outcome) || t.decrypted + t.not_decrypted + t.not_authenticated == 1 {
        let spi = format_args!("{spi:x}");
        debug!(sa = what, %spi, frame, status = t.status(), "decryption status");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_counts() {
        let mut t = Tally::default();
        assert_eq!(t.status(), "decrypted");
        assert!(!t.record(1, Outcome::Ok { verified: true }));
        assert!(t.record(2, Outcome::Failed(DecryptError::IcvMismatch)));
        assert_eq!(t.status(), "partial");
        let r = t.to_report();
        assert_eq!((r.decrypted, r.verified, r.not_authenticated), (1, 1, 1));
        let f = r.first_failure.unwrap();
        assert_eq!((f.frame, f.reason.as_str()), (2, "icv-mismatch"));

        let mut wrong = Tally::default();
        wrong.record(5, Outcome::Failed(DecryptError::BadPlaintext));
        assert_eq!(wrong.status(), "not-decrypted");
        wrong.record(6, Outcome::Failed(DecryptError::IcvMismatch));
        wrong.record(7, Outcome::Failed(DecryptError::IcvMismatch));
        assert_eq!(wrong.status(), "not-authenticated");
        assert_eq!(wrong.to_report().first_failure.unwrap().frame, 5);
    }
}
