//! Live capture through libpcap (the `pcap` crate).

use std::time::{Duration, Instant};

use pcap::{Active, Capture};

use super::{CaptureError, CaptureStats, Frame, FrameSource, DEFAULT_FILTER};
use crate::wire::{LinkType, Timestamp};

/// What to tell a user whom the kernel refused a capture socket.
const PRIVILEGE_FIX: &str =
    "run as root, or grant CAP_NET_RAW: setcap cap_net_raw,cap_net_admin=eip $(which ipsecmon)";

/// Frames between two refreshes of libpcap's counters while traffic flows (they are also
/// refreshed on the call after each read timeout).
const STATS_EVERY: u64 = 4096;

/// Settings of a live capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveOptions {
    /// Put the interface in promiscuous mode (off: IPsec endpoints see their own traffic).
    pub promiscuous: bool,
    /// Bytes kept of each packet.
    pub snaplen: i32,
    /// Read timeout in milliseconds: `next_frame` returns `Ok(None)` this often when no
    /// traffic arrives, so the caller can tick timers and refresh its outputs.
    pub timeout_ms: i32,
    /// Kernel buffer size in bytes (`None`: libpcap's default of 2 MiB).
    pub buffer_size: Option<i32>,
}

/// Default kernel buffer (`--buffer-mib`): half a second of 2 Gbit/s. The capture thread
/// pauses while it publishes a snapshot (0.07–0.12 s with 10,000 tunnels); libpcap's 2 MiB
/// default fills in 8 ms at that rate, and 32 MiB still dropped up to 3.6 % of a
/// `tcpreplay --topspeed` on a veth pair (BENCHMARKS.md). The kernel holds the whole
/// buffer for as long as the capture runs.
///
/// Limitation: a snapshot of 100,000 tunnels takes seconds to build, longer than this
/// buffer lasts at gigabit rates, so such a capture drops packets at each publication.
pub const DEFAULT_BUFFER: i32 = 128 << 20;

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            promiscuous: false,
            snaplen: 65_535,
            timeout_ms: 200,
            buffer_size: Some(DEFAULT_BUFFER),
        }
    }
}

/// How often a vanished interface is looked for again.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// A live interface being captured. Created by [`open_live`].
///
/// When the interface goes away (deleted, or its driver reset), reading does not fail: the
/// source says so in the log, keeps returning `Ok(None)` like a read timeout, and reopens
/// the interface by name, with the same filter, once it exists again (checked every
/// second), counting [`CaptureStats::reopens`]. Reopening needs the right to capture: a
/// process that dropped root with `--user` keeps looking but cannot reopen, while one
/// running with CAP_NET_RAW can.
pub struct LiveSource {
    iface: String,
    filter: String,
    opts: LiveOptions,
    cap: Option<Capture<Active>>,
    link: LinkType,
    frames: u64,
    stats: CaptureStats,
    /// libpcap's counters restart with each reopened handle; these are the totals of the
    /// handles before the current one.
    base: CaptureStats,
    stats_due: bool,
    /// The latest packet, copied out of libpcap's buffer (reused: no allocation per
    /// packet once it has grown to the largest packet).
    packet: Vec<u8>,
    /// Set by a read error; the handle is closed on the next call.
    lost: Option<String>,
    next_attempt: Instant,
    failed_attempts: u64,
}

impl std::fmt::Debug for LiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSource")
            .field("iface", &self.iface)
            .field("link", &self.link)
            .field("frames", &self.frames)
            .field("open", &self.cap.is_some())
            .finish_non_exhaustive()
    }
}

/// Opens `iface` for capture and applies `filter` (or [`DEFAULT_FILTER`]). Packets are
/// delivered in batches (libpcap's default, not immediate mode): cheaper per packet under
/// load, and never later than the read timeout.
///
/// Timestamps have libpcap's default microsecond precision (nanosecond precision is not
/// requested because libpcap would silently ignore the request where unsupported).
///
/// Without the privilege to capture, the error carries the one-line fix.
pub fn open_live(
    iface: &str,
    filter: Option<&str>,
    opts: &LiveOptions,
) -> Result<LiveSource, CaptureError> {
    let filter = filter.unwrap_or(DEFAULT_FILTER);
    let (cap, link) = open_handle(iface, filter, opts)?;
    tracing::info!(iface, ?link, filter, "live capture opened");
    Ok(LiveSource {
        iface: iface.to_string(),
        filter: filter.to_string(),
        opts: *opts,
        cap: Some(cap),
        link,
        frames: 0,
        stats: CaptureStats::default(),
        base: CaptureStats::default(),
        stats_due: false,
        packet: Vec::with_capacity(2048),
        lost: None,
        next_attempt: Instant::now(),
        failed_attempts: 0,
    })
}

/// One libpcap handle on `iface` with `filter` applied, and its link type.
fn open_handle(
    iface: &str,
    filter: &str,
    opts: &LiveOptions,
) -> Result<(Capture<Active>, LinkType), CaptureError> {
    let err = |e: pcap::Error| live_error(iface, &e);
    let mut inactive = Capture::from_device(iface)
        .map_err(err)?
        .promisc(opts.promiscuous)
        .snaplen(opts.snaplen)
        .timeout(opts.timeout_ms);
    if let Some(size) = opts.buffer_size {
        inactive = inactive.buffer_size(size);
    }
    // Non-blocking, with the waiting done here (see `LiveSource::read`): libpcap's own read
    // timeout does not fire reliably in immediate mode, which would leave the caller
    // blocked with no chance to publish, tick its timers or notice a stop request.
    let mut cap = inactive.open().map_err(err)?.setnonblock().map_err(err)?;
    cap.filter(filter, true).map_err(|e| CaptureError::Live {
        iface: iface.to_string(),
        detail: format!("filter {filter:?} rejected: {e}"),
    })?;
    let link = LinkType::from_linktype(cap.get_datalink().0 as u32);
    Ok((cap, link))
}

/// Waits until `fd` is readable (or in error) or `timeout_ms` pass; `true` when it is.
pub(crate) fn wait_readable(fd: std::os::fd::RawFd, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call. A non-blocking reader may
    // ignore the result: its read says whether a packet, nothing, or an error is there.
    let ready = unsafe { libc::poll(&mut pfd, 1, timeout_ms.max(1)) };
    ready > 0
}

/// The addresses of `iface` as libpcap lists them, IPv4 first; empty when the interface
/// is unknown or has none.
pub fn interface_addresses(iface: &str) -> Vec<std::net::IpAddr> {
    let mut out: Vec<std::net::IpAddr> = pcap::Device::list()
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d.name == iface)
        .flat_map(|d| d.addresses.into_iter().map(|a| a.addr))
        .collect();
    out.sort_by_key(|a| !a.is_ipv4());
    out
}

/// Turns a libpcap error into one naming the interface, with the fix for missing privilege.
fn live_error(iface: &str, e: &pcap::Error) -> CaptureError {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let detail = if lower.contains("permitted") || lower.contains("permission") {
        format!("{text}; {PRIVILEGE_FIX}")
    } else {
        text
    };
    CaptureError::Live {
        iface: iface.to_string(),
        detail,
    }
}

impl LiveSource {
    /// The interface name.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// `true` while a handle on the interface is open (`false` after it went away, until
    /// it is reopened).
    pub fn is_open(&self) -> bool {
        self.cap.is_some()
    }

    /// Re-reads libpcap's counters (a system call; done at timeouts and every few thousand
    /// frames, and by callers that need exact figures, e.g. at shutdown).
    pub fn refresh_stats(&mut self) {
        self.stats_due = false;
        let Some(Ok(s)) = self.cap.as_mut().map(|c| c.stats()) else {
            return;
        };
        let b = self.base;
        self.stats = CaptureStats {
            received: b.received + u64::from(s.received),
            dropped: b.dropped + u64::from(s.dropped),
            if_dropped: b.if_dropped + u64::from(s.if_dropped),
            reopens: b.reopens,
        };
    }

    /// The next packet into `self.packet` (its time and original length), waiting up to
    /// the read timeout for one; `None` on a timeout or a read error (which is noted for
    /// the next call).
    fn read(&mut self) -> Option<(Timestamp, u32)> {
        for attempt in 0..2 {
            let cap = self.cap.as_mut()?;
            match cap.next_packet() {
                Ok(p) => {
                    self.packet.clear();
                    self.packet.extend_from_slice(p.data);
                    let micros = u32::try_from(p.header.ts.tv_usec).unwrap_or(0);
                    let ts = Timestamp::from_parts(p.header.ts.tv_sec, micros.saturating_mul(1000));
                    return Some((ts, p.header.len));
                }
                // Nothing buffered (the handle is non-blocking): wait once, then look again.
                Err(pcap::Error::TimeoutExpired) if attempt == 0 => {
                    let fd = std::os::fd::AsRawFd::as_raw_fd(cap);
                    wait_readable(fd, self.opts.timeout_ms);
                }
                Err(pcap::Error::TimeoutExpired) => self.stats_due = true,
                Err(e) => self.lost = Some(e.to_string()),
            }
        }
        None
    }

    /// Closes the handle after a read error and schedules the first reopening.
    fn close_lost(&mut self, why: String) {
        self.refresh_stats();
        self.base = self.stats;
        self.cap = None;
        self.failed_attempts = 0;
        self.next_attempt = Instant::now() + REOPEN_EVERY;
        tracing::warn!(iface = %self.iface, error = %why, "capture interface went away; reopening it when it returns");
    }

    /// One attempt to reopen, when one is due; otherwise waits as long as a read timeout.
    fn try_reopen(&mut self) {
        let now = Instant::now();
        if now < self.next_attempt {
            let wait = Duration::from_millis(self.opts.timeout_ms.max(1) as u64);
            std::thread::sleep(wait.min(self.next_attempt - now));
            return;
        }
        self.next_attempt = now + REOPEN_EVERY;
        match open_handle(&self.iface, &self.filter, &self.opts) {
            Ok((cap, link)) => {
                self.cap = Some(cap);
                self.link = link;
                self.base.reopens += 1;
                self.stats.reopens = self.base.reopens;
                tracing::warn!(iface = %self.iface, attempts = self.failed_attempts + 1, "capture interface reopened");
            }
            Err(e) => {
                self.failed_attempts += 1;
                // The first failure says why (a missing privilege shows up here); the
                // retries are quiet.
                if self.failed_attempts == 1 {
                    tracing::info!(error = %e, "capture interface not back yet");
                }
            }
        }
    }
}

impl FrameSource for LiveSource {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if let Some(why) = self.lost.take() {
            self.close_lost(why);
        }
        if self.cap.is_none() {
            self.try_reopen();
            return Ok(None);
        }
        if self.stats_due || self.frames % STATS_EVERY == STATS_EVERY - 1 {
            self.refresh_stats();
        }
        let Some((ts, orig_len)) = self.read() else {
            return Ok(None);
        };
        self.frames += 1;
        Ok(Some(Frame {
            number: self.frames,
            ts,
            link: self.link,
            data: &self.packet,
            orig_len,
        }))
    }

    fn stats(&self) -> CaptureStats {
        self.stats
    }

    fn is_live(&self) -> bool {
        true
    }
}
