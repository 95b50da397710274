//! Live capture through libpcap (the `pcap` crate).

use std::os::fd::{AsRawFd, RawFd};

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
    /// Kernel buffer size in bytes (`None`: libpcap's default).
    pub buffer_size: Option<i32>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            promiscuous: false,
            snaplen: 65_535,
            timeout_ms: 200,
            buffer_size: None,
        }
    }
}

/// A live interface being captured. Created by [`open_live`].
pub struct LiveSource {
    iface: String,
    cap: Capture<Active>,
    link: LinkType,
    frames: u64,
    stats: CaptureStats,
    stats_due: bool,
    timeout_ms: i32,
}

impl std::fmt::Debug for LiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSource")
            .field("iface", &self.iface)
            .field("link", &self.link)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

/// Opens `iface` for capture and applies `filter` (or [`DEFAULT_FILTER`]).
///
/// Not in immediate mode: on Linux that gives every packet a ring slot of the full snapshot
/// length, so the default buffer holds only a few dozen packets and a burst is dropped.
/// Packets are instead delivered in blocks at least every [`LiveOptions::timeout_ms`].
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
    let err = |e: pcap::Error| live_error(iface, &e);
    let mut inactive = Capture::from_device(iface)
        .map_err(err)?
        .promisc(opts.promiscuous)
        .snaplen(opts.snaplen)
        .timeout(opts.timeout_ms);
    if let Some(size) = opts.buffer_size {
        inactive = inactive.buffer_size(size);
    }
    // Non-blocking, with our own poll for the timeout: libpcap's blocking read does not
    // return on an idle Linux interface (the kernel never hands over an empty block), which
    // would hold up every stop request and refresh.
    let mut cap = inactive.open().map_err(err)?.setnonblock().map_err(err)?;
    let filter = filter.unwrap_or(DEFAULT_FILTER);
    cap.filter(filter, true).map_err(|e| CaptureError::Live {
        iface: iface.to_string(),
        detail: format!("filter {filter:?} rejected: {e}"),
    })?;
    let link = LinkType::from_linktype(cap.get_datalink().0 as u32);
    tracing::info!(iface, ?link, filter, "live capture opened");
    Ok(LiveSource {
        iface: iface.to_string(),
        cap,
        link,
        frames: 0,
        stats: CaptureStats::default(),
        stats_due: false,
        timeout_ms: opts.timeout_ms.max(1),
    })
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

    /// Re-reads libpcap's counters (a system call; done at timeouts and every few thousand
    /// frames, and by callers that need exact figures, e.g. at shutdown).
    pub fn refresh_stats(&mut self) {
        self.stats_due = false;
        if let Ok(s) = self.cap.stats() {
            self.stats = CaptureStats {
                received: u64::from(s.received),
                dropped: u64::from(s.dropped),
                if_dropped: u64::from(s.if_dropped),
            };
        }
    }
}

/// Waits until `fd` has a packet to read or `timeout_ms` passes; `true` if readable.
/// An interrupted or failed poll counts as a timeout: the caller simply calls again.
fn wait_readable(fd: RawFd, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid, initialised pollfd that lives across the call.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    n > 0
}

impl FrameSource for LiveSource {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if self.stats_due || self.frames % STATS_EVERY == STATS_EVERY - 1 {
            self.refresh_stats();
        }
        let fd = self.cap.as_raw_fd();
        // Only fields other than `cap` may be touched below: the frame borrows `cap`.
        let packet = match self.cap.next_packet() {
            Ok(p) => p,
            Err(pcap::Error::TimeoutExpired) => {
                // Nothing queued: wait for a packet or the timeout. Either way the caller
                // gets a pause and calls again, reading the packet if one came.
                if !wait_readable(fd, self.timeout_ms) {
                    self.stats_due = true;
                }
                return Ok(None);
            }
            Err(e) => return Err(live_error(&self.iface, &e)),
        };
        self.frames += 1;
        let h = packet.header;
        let micros = u32::try_from(h.ts.tv_usec).unwrap_or(0);
        let ts = Timestamp::from_parts(h.ts.tv_sec, micros.saturating_mul(1000));
        Ok(Some(Frame {
            number: self.frames,
            ts,
            link: self.link,
            data: packet.data,
            orig_len: h.len,
        }))
    }

    fn stats(&self) -> CaptureStats {
        self.stats
    }

    fn is_live(&self) -> bool {
        true
    }
}
