//! Running the capture engine on its own thread and publishing snapshots for the outputs.
//!
//! One thread owns the [`FrameSource`] and the [`Engine`]: it reads a frame, feeds it to
//! the engine, and at each refresh interval (wall clock) and at the end of input it swaps a
//! fresh `Arc<Snapshot>` into a [`Shared`] cell. Readers (the terminal view, the HTTP API)
//! take the latest snapshot with one short lock and an `Arc` clone, so a slow terminal or a
//! slow scrape never holds up the capture loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::capture::{
    self, CaptureError, CaptureStats, Frame, FrameSource, LiveOptions, Paced, SourceSpec,
};
use crate::engine::{Engine, EngineConfig};
use crate::snapshot::Snapshot;
use crate::track::report::Report;
use crate::wire::Timestamp;

/// Where the capture loop stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Still reading.
    Running,
    /// The file was read to its end.
    Finished,
    /// Stopped on request (a key, a signal, `--duration`).
    Stopped,
    /// Reading failed; the message names the file or interface and the frame.
    Failed(String),
}

impl Status {
    /// `true` once the capture loop has ended for any reason.
    pub fn is_done(&self) -> bool {
        !matches!(self, Status::Running)
    }
}

/// What readers see: the latest snapshot, its sequence number, and the loop's status.
#[derive(Debug, Clone)]
pub struct Published {
    /// Increases by one with every publication; 0 is the empty snapshot before any frame.
    pub seq: u64,
    /// The latest snapshot.
    pub snapshot: Arc<Snapshot>,
    /// The capture loop's status at publication.
    pub status: Status,
}

/// SAs in a snapshot from which the one it replaces is freed on a thread of its own.
const FREE_ELSEWHERE_FROM: usize = 10_000;

/// The cell the capture thread publishes into and readers poll.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<Published>,
    changed: Condvar,
}

impl Shared {
    /// A cell holding an empty snapshot of `source`.
    pub fn new(source: &str) -> Self {
        let empty = Snapshot {
            schema: 1,
            source: source.to_string(),
            report: Report::default(),
            findings: Vec::new(),
            capture: CaptureStats::default(),
            decode_errors: Vec::new(),
            cleartext: Vec::new(),
            rules: Vec::new(),
        };
        Shared {
            state: Mutex::new(Published {
                seq: 0,
                snapshot: Arc::new(empty),
                status: Status::Running,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Published> {
        // A panic elsewhere cannot leave a half-written `Published`: it is replaced whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest publication (never blocks on the capture loop's work).
    pub fn latest(&self) -> Published {
        self.lock().clone()
    }

    /// Waits until a publication newer than `seq` exists, or `timeout` passes, and returns
    /// the latest publication either way.
    pub fn wait_newer(&self, seq: u64, timeout: Duration) -> Published {
        let guard = self.lock();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |p| p.seq <= seq)
            .unwrap_or_else(|e| e.into_inner());
        guard.clone()
    }

    fn publish(&self, snapshot: Snapshot, status: Status) {
        let snapshot = Arc::new(snapshot);
        let mut guard = self.lock();
        guard.seq += 1;
        let old = std::mem::replace(&mut guard.snapshot, snapshot);
        guard.status = status;
        drop(guard);
        self.changed.notify_all();
        // Freeing a snapshot of many SAs takes a while: not on the capture thread.
        let r = &old.report;
        if r.ike_sas.len() + r.esp_sas.len() + r.ah_sas.len() >= FREE_ELSEWHERE_FROM {
            let freeing = std::thread::Builder::new().name("free-snapshot".into());
            // When no thread can be started, it is freed here after all.
            let _ = freeing.spawn(move || drop(old));
        }
    }
}

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The source's name as snapshots show it (`file.pcap`, `interface eth0`).
    pub source_name: String,
    /// Wall-clock time between publications; longer when building a snapshot takes more
    /// than a tenth of it, so that capture keeps nine tenths of the loop's time.
    pub refresh: Duration,
    /// Stop after this much wall-clock time (live runs in scripts and tests).
    pub duration: Option<Duration>,
    /// Tick the engine with the wall clock on read timeouts: right for a live interface
    /// (its timestamps are wall clock), wrong for a paced replay of an old capture. A live
    /// run also forgets ended SAs after [`LIVE_FORGET_AFTER`] unless the engine's tracker
    /// configuration already says when.
    pub wall_clock_ticks: bool,
    /// The engine's settings.
    pub engine: EngineConfig,
}

/// The capture thread and its cell.
#[derive(Debug)]
pub struct Runner {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Runner {
    /// Starts the capture loop over an opened source. Open the source (and drop
    /// privileges) before calling this.
    pub fn start(source: Box<dyn FrameSource + Send>, mut config: RunnerConfig) -> Runner {
        let tracker = &mut config.engine.tracker;
        if config.wall_clock_ticks && tracker.forget_after_ns.is_none() {
            tracker.forget_after_ns = Some(LIVE_FORGET_AFTER.as_nanos() as i64);
        }
        let shared = Arc::new(Shared::new(&config.source_name));
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            engine: Engine::new(config.engine.clone()),
            source,
            shared: Arc::clone(&shared),
            stop: Arc::clone(&stop),
            config,
        };
        let thread = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || worker.run())
            .ok();
        let runner = Runner {
            shared,
            stop,
            thread,
        };
        if runner.thread.is_none() {
            runner.shared.publish(
                runner.shared.latest().snapshot.as_ref().clone(),
                Status::Failed("could not start the capture thread".into()),
            );
        }
        runner
    }

    /// The cell readers poll.
    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// The latest publication.
    pub fn latest(&self) -> Published {
        self.shared.latest()
    }

    /// Asks the capture loop to stop; it publishes a final snapshot and closes the source.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Waits for the capture loop to end and returns the final publication.
    pub fn join(mut self) -> Published {
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                let last = self.shared.latest().snapshot;
                self.shared.publish(
                    last.as_ref().clone(),
                    Status::Failed("the capture thread panicked".into()),
                );
            }
        }
        self.shared.latest()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Worker {
    engine: Engine,
    source: Box<dyn FrameSource + Send>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    config: RunnerConfig,
}

impl Worker {
    fn run(mut self) {
        let started = Instant::now();
        let mut next = started + self.config.refresh;
        let status = loop {
            if let Some(end) = self.stop_reason(started) {
                break end;
            }
            if let Some(end) = self.step() {
                break end;
            }
            // One clock read per frame (a vDSO call): cheap next to decoding, and it keeps
            // publications on time even when frames come slowly.
            let now = Instant::now();
            if now >= next {
                self.publish(Status::Running);
                next = next_publication(now, Instant::now(), self.config.refresh);
            }
        };
        tracing::info!(source = %self.config.source_name, status = ?status, "capture ended");
        // The input is over (its end, a stop request, or a fault): negotiations left
        // waiting are judged as at the end of a file, so that the final snapshot says
        // what `report` and `diagnose` would.
        self.engine.finish();
        self.publish(status);
    }

    /// Reads one frame (or one timeout) into the engine; `Some` at the end of input.
    fn step(&mut self) -> Option<Status> {
        // Asked before reading: a paced replay turns into a finished file mid-call.
        let live = self.source.is_live();
        match self.source.next_frame() {
            Ok(Some(frame)) => self.engine.process(&frame),
            Ok(None) if live && self.config.wall_clock_ticks => self.engine.tick(wall_clock()),
            Ok(None) if live => {}
            Ok(None) => return Some(Status::Finished),
            Err(e) => return Some(Status::Failed(e.to_string())),
        }
        None
    }

    fn stop_reason(&self, started: Instant) -> Option<Status> {
        let timed_out = self.config.duration.is_some_and(|d| started.elapsed() >= d);
        let asked = self.stop.load(Ordering::Relaxed) || signalled();
        (timed_out || asked).then_some(Status::Stopped)
    }

    fn publish(&self, status: Status) {
        let started = Instant::now();
        let snap = self
            .engine
            .snapshot(&self.config.source_name, self.source.stats());
        let r = &snap.report;
        let (ike_sas, child_sas) = (r.ike_sas.len(), r.esp_sas.len() + r.ah_sas.len());
        self.shared.publish(snap, status);
        tracing::debug!(
            ike_sas,
            child_sas,
            build_ms = started.elapsed().as_millis() as u64,
            "snapshot published"
        );
    }
}

/// Keeps memory that a snapshot freed for the next one, for processes that publish
/// snapshots for as long as they run (`serve`, the view). A snapshot of 100,000 tunnels is
/// hundreds of MB of small and large allocations; by default the C library gives the
/// large ones and the top of the heap back to the system when the previous snapshot is
/// dropped, and the next snapshot faults every page in again, which on a virtual machine
/// made up 35 % of its build time. Resident memory then stays at its peak instead of
/// falling between snapshots. Does nothing outside glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // The largest mmap threshold glibc accepts on 64-bit systems.
        const MMAP_AT: libc::c_int = 32 << 20;
        // SAFETY: mallopt only changes allocator parameters; it is called before the
        // capture and HTTP threads start.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_AT);
            libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        }
    }
}

/// Publications take at most this share of the capture loop's time: building a
/// snapshot of tens of thousands of SAs takes long enough to overflow the kernel's
/// capture buffer if it came every refresh.
const MAX_PUBLISH_SHARE: u32 = 10;

/// When to publish next, after a publication that started at `started` and ended at
/// `ended`: one refresh later, or later still when the snapshot took long to build.
fn next_publication(started: Instant, ended: Instant, refresh: Duration) -> Instant {
    let spent = ended.saturating_duration_since(started);
    ended + refresh.max(spent * (MAX_PUBLISH_SHARE - 1))
}

/// The wall clock as a packet timestamp, for live ticks: live capture timestamps are wall
/// clock too, so timers advance consistently.
fn wall_clock() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_parts(d.as_secs() as i64, d.subsec_nanos())
}

/// How long a live run keeps an SA that ended (deleted, failed, expired) after its last
/// packet: long enough to see it in the view and the API, short enough that months of
/// rekeys do not fill the tables.
pub const LIVE_FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// Longest wait of a paced replay per read, so stop requests and refreshes stay prompt.
const REPLAY_TICK: Duration = Duration::from_millis(100);

/// An opened source, ready for [`Runner::start`].
pub struct Opened {
    /// The frames.
    pub source: Box<dyn FrameSource + Send>,
    /// `true` for a live interface: set [`RunnerConfig::wall_clock_ticks`] from it.
    pub live: bool,
}

/// Opens a live interface (with `filter`, or the default BPF filter, and the libpcap
/// settings `live`) or a capture file
/// replayed at `speed` times its recorded pace (0: as fast as possible). Drop privileges
/// after this and before [`Runner::start`].
pub fn open(
    spec: &SourceSpec,
    filter: Option<&str>,
    live: &LiveOptions,
    speed: f64,
) -> Result<Opened, CaptureError> {
    match spec {
        SourceSpec::Live(iface) => {
            let src = capture::open_live(iface, filter, live)?;
            Ok(Opened {
                source: Box::new(src),
                live: true,
            })
        }
        SourceSpec::File(path) => {
            let file = capture::open_file(path)?;
            let source: Box<dyn FrameSource + Send> = if speed > 0.0 {
                Box::new(Replay(Paced::new(file, speed, REPLAY_TICK)))
            } else {
                Box::new(file)
            };
            Ok(Opened {
                source,
                live: false,
            })
        }
    }
}

/// A paced file replay as the runner reads it: a frame not yet due is a pause (like a live
/// read timeout, but without wall-clock ticks), and the end of the file is the end.
#[derive(Debug)]
pub struct Replay<S>(pub Paced<S>);

impl<S: FrameSource> FrameSource for Replay<S> {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        self.0.next_frame()
    }

    fn stats(&self) -> CaptureStats {
        self.0.stats()
    }

    fn is_live(&self) -> bool {
        !self.0.is_finished()
    }

    fn progress(&self) -> Option<(u64, u64)> {
        self.0.progress()
    }
}

static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// `true` once SIGINT or SIGTERM arrived (after [`stop_on_signals`]).
pub fn signalled() -> bool {
    SIGNALLED.load(Ordering::Relaxed)
}

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: the one thing a signal handler may safely do here.
    SIGNALLED.store(true, Ordering::Relaxed);
}

/// Makes SIGINT and SIGTERM stop every runner gracefully (final snapshot published,
/// capture closed) instead of killing the process.
pub fn stop_on_signals() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `on_signal` is async-signal-safe (one atomic store) and lives for the whole
    // program; `signal` is called with valid signal numbers.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::LinkType;
    use std::path::PathBuf;

    /// Frames of junk bytes, then an optional error, then the end.
    struct Fake {
        left: u64,
        n: u64,
        fail_at_end: bool,
        live: bool,
        buf: [u8; 4],
    }

    impl FrameSource for Fake {
        fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
            if self.left == 0 {
                if self.fail_at_end {
                    return Err(CaptureError::Record {
                        path: PathBuf::from("bad.pcap"),
                        frame: self.n + 1,
                        detail: "record length beyond the file".into(),
                    });
                }
                if self.live {
                    std::thread::sleep(Duration::from_millis(1));
                }
                return Ok(None);
            }
            self.left -= 1;
            self.n += 1;
            Ok(Some(Frame {
                number: self.n,
                ts: Timestamp::from_parts(1_700_000_000 + self.n as i64, 0),
                link: LinkType::Ethernet,
                data: &self.buf,
                orig_len: 4,
            }))
        }

        fn stats(&self) -> CaptureStats {
            CaptureStats {
                received: self.n,
                dropped: 0,
                if_dropped: 0,
                ..CaptureStats::default()
            }
        }

        fn is_live(&self) -> bool {
            self.live
        }
    }

    fn fake(frames: u64, fail_at_end: bool, live: bool) -> Box<dyn FrameSource + Send> {
        Box::new(Fake {
            left: frames,
            n: 0,
            fail_at_end,
            live,
            buf: [0; 4],
        })
    }

    fn config() -> RunnerConfig {
        RunnerConfig {
            source_name: "test.pcap".into(),
            refresh: Duration::from_secs(3600),
            duration: None,
            wall_clock_ticks: true,
            engine: EngineConfig::default(),
        }
    }

    #[test]
    fn slow_snapshots_space_publications_out() {
        let t0 = Instant::now();
        let refresh = Duration::from_secs(1);
        let quick = next_publication(t0, t0 + Duration::from_millis(20), refresh);
        assert_eq!(quick, t0 + Duration::from_millis(1020));
        let slow = next_publication(t0, t0 + Duration::from_millis(300), refresh);
        assert_eq!(slow, t0 + Duration::from_millis(300 + 2700));
    }

    #[test]
    fn end_of_file_publishes_the_final_snapshot() {
        let runner = Runner::start(fake(5, false, false), config());
        let last = runner.join();
        assert_eq!(last.status, Status::Finished);
        assert_eq!(last.snapshot.report.frames, 5);
        assert_eq!(last.snapshot.capture.received, 5);
        assert_eq!(last.snapshot.source, "test.pcap");
        assert!(last.seq >= 1);
    }

    #[test]
    fn a_read_error_names_file_and_frame() {
        let last = Runner::start(fake(3, true, false), config()).join();
        assert_eq!(
            last.status,
            Status::Failed("bad.pcap: frame 4: record length beyond the file".into())
        );
        assert_eq!(last.snapshot.report.frames, 3);
    }

    #[test]
    fn stop_ends_a_live_capture_with_a_final_snapshot() {
        let runner = Runner::start(fake(2, false, true), config());
        let shared = runner.shared();
        let first = shared.wait_newer(0, Duration::from_millis(50));
        assert_eq!(first.status, Status::Running);
        runner.stop();
        let last = runner.join();
        assert_eq!(last.status, Status::Stopped);
        assert_eq!(last.snapshot.report.frames, 2);
    }

    #[test]
    fn a_paced_replay_ends_at_the_end_of_the_file() {
        let paced = Replay(Paced::new(
            fake(3, false, false),
            1000.0,
            Duration::from_millis(5),
        ));
        let mut cfg = config();
        cfg.wall_clock_ticks = false;
        let last = Runner::start(Box::new(paced), cfg).join();
        assert_eq!(last.status, Status::Finished);
        assert_eq!(last.snapshot.report.frames, 3);
    }

    #[test]
    fn duration_stops_a_live_capture() {
        let mut cfg = config();
        cfg.duration = Some(Duration::from_millis(20));
        cfg.refresh = Duration::from_millis(5);
        let last = Runner::start(fake(0, false, true), cfg).join();
        assert_eq!(last.status, Status::Stopped);
        assert!(last.seq >= 1);
    }
}
