//! Replaying a capture at its recorded pace (times a speed factor), for the live view's
//! `-r FILE` mode. The wall clock is used only to decide when to hand a frame over; the
//! frame keeps its own capture timestamp, so the engine sees exactly what it would see
//! reading the file flat out.

use std::time::{Duration, Instant};

use super::{CaptureError, CaptureStats, Frame, FrameSource};
use crate::wire::{LinkType, Timestamp};

/// A frame read ahead and held until its time comes.
#[derive(Debug, Clone, Copy)]
struct Pending {
    number: u64,
    ts: Timestamp,
    link: LinkType,
    orig_len: u32,
}

/// Wraps a source and delays each frame to its recorded pace divided by `speed`.
///
/// It behaves like a live source: [`FrameSource::is_live`] is `true`, and `next_frame`
/// returns `Ok(None)` when the next frame is not yet due (after waiting at most one tick),
/// so the caller can refresh its outputs. The end of the underlying input is reported by
/// [`Paced::is_finished`]. With `speed` 0 frames pass through without delay (and the
/// wrapper reports the inner source's liveness).
///
/// A frame waiting for its time is copied into a buffer the wrapper reuses; pacing is not
/// the fast path, so one copy per frame costs nothing that matters.
#[derive(Debug)]
pub struct Paced<S> {
    inner: S,
    speed: f64,
    tick: Duration,
    origin: Option<(Instant, Timestamp)>,
    pending: Option<Pending>,
    data: Vec<u8>,
    finished: bool,
}

impl<S: FrameSource> Paced<S> {
    /// Paces `inner` at `speed` times the recorded rate (1.0 = real time, 0 = no pacing),
    /// waiting at most `tick` per call.
    pub fn new(inner: S, speed: f64, tick: Duration) -> Self {
        let speed = if speed.is_finite() && speed > 0.0 {
            speed
        } else {
            0.0
        };
        Paced {
            inner,
            speed,
            tick,
            origin: None,
            pending: None,
            data: Vec::new(),
            finished: false,
        }
    }

    /// `true` once the underlying source has ended and every frame has been handed over.
    pub fn is_finished(&self) -> bool {
        self.finished && self.pending.is_none()
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Reads the next frame of the inner source into the pending slot.
    fn read_ahead(&mut self) -> Result<(), CaptureError> {
        if self.pending.is_some() || self.finished {
            return Ok(());
        }
        let live = self.inner.is_live();
        match self.inner.next_frame()? {
            Some(f) => {
                self.data.clear();
                self.data.extend_from_slice(f.data);
                self.pending = Some(Pending {
                    number: f.number,
                    ts: f.ts,
                    link: f.link,
                    orig_len: f.orig_len,
                });
            }
            None if !live => self.finished = true,
            None => {}
        }
        Ok(())
    }

    /// How long until a frame stamped `ts` is due (zero when it is due now).
    fn wait_for(&mut self, ts: Timestamp) -> Duration {
        let (start, first) = *self.origin.get_or_insert((Instant::now(), ts));
        let recorded = ts.secs_since(first).max(0.0) / self.speed;
        let due = start + Duration::from_secs_f64(recorded.min(1e9));
        due.saturating_duration_since(Instant::now())
    }
}

impl<S: FrameSource> FrameSource for Paced<S> {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if self.speed == 0.0 {
            let live = self.inner.is_live();
            let frame = self.inner.next_frame()?;
            self.finished |= frame.is_none() && !live;
            return Ok(frame);
        }
        self.read_ahead()?;
        let Some(p) = self.pending else {
            return Ok(None);
        };
        let wait = self.wait_for(p.ts);
        if wait > self.tick {
            std::thread::sleep(self.tick);
            return Ok(None);
        }
        std::thread::sleep(wait);
        self.pending = None;
        Ok(Some(Frame {
            number: p.number,
            ts: p.ts,
            link: p.link,
            data: &self.data,
            orig_len: p.orig_len,
        }))
    }

    fn stats(&self) -> CaptureStats {
        self.inner.stats()
    }

    fn is_live(&self) -> bool {
        self.speed != 0.0 || self.inner.is_live()
    }

    fn progress(&self) -> Option<(u64, u64)> {
        self.inner.progress()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file-like source over fixed frames.
    struct Fixed {
        frames: Vec<(Timestamp, Vec<u8>)>,
        at: usize,
    }

    impl FrameSource for Fixed {
        fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
            let Some((ts, data)) = self.frames.get(self.at) else {
                return Ok(None);
            };
            self.at += 1;
            let (number, link, orig_len) = (self.at as u64, LinkType::Raw, data.len() as u32);
            Ok(Some(Frame {
                number,
                ts: *ts,
                link,
                data,
                orig_len,
            }))
        }

        fn stats(&self) -> CaptureStats {
            CaptureStats {
                received: self.at as u64,
                ..CaptureStats::default()
            }
        }

        fn is_live(&self) -> bool {
            false
        }
    }

    /// Three frames ten recorded seconds apart.
    fn fixed() -> Fixed {
        let frames = (0..3)
            .map(|i| (Timestamp::from_parts(1000 + 10 * i, 7), vec![i as u8; 3]))
            .collect();
        Fixed { frames, at: 0 }
    }

    /// Drains a paced source; returns the frames (number, ts, data) and how many calls
    /// returned no frame before the end.
    fn drain(p: &mut Paced<Fixed>) -> (Vec<(u64, Timestamp, Vec<u8>)>, usize) {
        let (mut got, mut idle) = (Vec::new(), 0);
        while !p.is_finished() {
            match p.next_frame().unwrap() {
                Some(f) => got.push((f.number, f.ts, f.data.to_vec())),
                None => idle += 1,
            }
        }
        (got, idle)
    }

    #[test]
    fn paced_frames_keep_their_own_timestamps_and_data() {
        // 10 s recorded at speed 100 = 100 ms between frames, in 10 ms ticks.
        let mut p = Paced::new(fixed(), 100.0, Duration::from_millis(10));
        assert!(p.is_live(), "a paced replay idles like a live source");
        let (got, idle) = drain(&mut p);
        let want: Vec<_> = fixed()
            .frames
            .into_iter()
            .enumerate()
            .map(|(i, (ts, d))| (i as u64 + 1, ts, d))
            .collect();
        assert_eq!(got, want);
        assert!(idle >= 2, "waiting frames yield ticks (got {idle})");
        assert_eq!(p.stats().received, 3);
    }

    #[test]
    fn speed_zero_passes_through() {
        let mut p = Paced::new(fixed(), 0.0, Duration::from_millis(10));
        assert!(!p.is_live());
        let mut n = 0;
        while let Some(f) = p.next_frame().unwrap() {
            n += 1;
            assert_eq!(f.number, n);
        }
        assert_eq!(n, 3);
        assert!(p.is_finished());
    }
}
