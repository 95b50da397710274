//! Live capture through libpcap (the `pcap` crate).

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

/// Default kernel buffer: a third of a second of a saturated gigabit link. The capture
/// thread pauses while it publishes a snapshot (tens to hundreds of milliseconds with
/// tens of thousands of SAs); libpcap's 2 MiB default fills in 17 ms at that rate.
pub const DEFAULT_BUFFER: i32 = 32 << 20;

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

/// A live interface being captured. Created by [`open_live`].
pub struct LiveSource {
    iface: String,
    cap: Capture<Active>,
    link: LinkType,
    frames: u64,
    stats: CaptureStats,
    stats_due: bool,
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
    let err = |e: pcap::Error| live_error(iface, &e);
    let mut inactive = Capture::from_device(iface)
        .map_err(err)?
        .promisc(opts.promiscuous)
        .snaplen(opts.snaplen)
        .timeout(opts.timeout_ms);
    if let Some(size) = opts.buffer_size {
        inactive = inactive.buffer_size(size);
    }
    let mut cap = inactive.open().map_err(err)?;
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

impl FrameSource for LiveSource {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if self.stats_due || self.frames % STATS_EVERY == STATS_EVERY - 1 {
            self.refresh_stats();
        }
        // Only fields other than `cap` may be touched below: the frame borrows `cap`.
        let packet = match self.cap.next_packet() {
            Ok(p) => p,
            Err(pcap::Error::TimeoutExpired) => {
                self.stats_due = true;
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
