//! Opening packet sources: capture files (pcap, pcapng, gzip of either) and live
//! interfaces through libpcap. Nothing here decodes above the link layer.

mod buffer;
mod file;
#[cfg(test)]
mod file_tests;
mod live;
mod paced;
mod pcapng;
mod privilege;
pub mod writer;

use std::fmt;
use std::path::PathBuf;

use crate::wire::{LinkType, Timestamp};

pub use file::{open_file, read_bytes, FileSource, MAX_RECORD};
pub use live::{interface_addresses, open_live, LiveOptions, LiveSource, DEFAULT_BUFFER};
pub use paced::Paced;
pub use privilege::{drop_privileges, PrivilegeError};

/// Default BPF filter for live capture: IKE, NAT-T, ESP and AH over IPv4 and IPv6, plus
/// ICMP errors (which quote them), and IPv4 fragments (large IKE messages).
pub const DEFAULT_FILTER: &str = "udp port 500 or udp port 4500 or ip proto 50 or ip proto 51 \
or ip6 proto 50 or ip6 proto 51 or icmp or icmp6 or (ip[6:2] & 0x1fff != 0)";

/// One captured frame as the source delivers it.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// 1-based frame number, as Wireshark numbers them.
    pub number: u64,
    /// Capture timestamp.
    pub ts: Timestamp,
    /// Link type of this frame (pcapng interfaces may differ).
    pub link: LinkType,
    /// Captured bytes.
    pub data: &'a [u8],
    /// Original length on the wire.
    pub orig_len: u32,
}

/// Capture-side counters (libpcap's own, for live capture).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CaptureStats {
    /// Frames delivered.
    pub received: u64,
    /// Frames dropped by the kernel / libpcap buffer.
    pub dropped: u64,
    /// Frames dropped by the interface.
    pub if_dropped: u64,
    /// Times a live interface that went away was reopened.
    #[serde(default)]
    pub reopens: u64,
}

/// Errors opening or reading a source. Each names the file (or interface) and, when
/// reading, the frame number at which the problem was found.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a capture this reader understands.
    #[error("{path}: not a pcap or pcapng file ({detail})")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// A record is damaged; frames before it were read.
    #[error("{path}: frame {frame}: {detail}")]
    Record {
        /// The file.
        path: PathBuf,
        /// The frame number at which reading stopped.
        frame: u64,
        /// What was wrong.
        detail: String,
    },
    /// libpcap refused (live capture).
    #[error("{iface}: {detail}")]
    Live {
        /// The interface.
        iface: String,
        /// libpcap's message and a fix.
        detail: String,
    },
}

/// Where packets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A capture file.
    File(PathBuf),
    /// A live interface.
    Live(String),
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::File(p) => write!(f, "{}", p.display()),
            SourceSpec::Live(i) => write!(f, "interface {i}"),
        }
    }
}

/// A source of frames.
pub trait FrameSource {
    /// The next frame, `Ok(None)` at the end of a file. Live sources return `Ok(None)` on
    /// a read timeout, so the caller can tick timers and refresh outputs.
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError>;
    /// Counters so far.
    fn stats(&self) -> CaptureStats;
    /// `true` for a live interface (no end of input).
    fn is_live(&self) -> bool;
    /// Bytes consumed and total bytes, for a progress bar (files only).
    fn progress(&self) -> Option<(u64, u64)> {
        None
    }
}

impl<S: FrameSource + ?Sized> FrameSource for Box<S> {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        (**self).next_frame()
    }

    fn stats(&self) -> CaptureStats {
        (**self).stats()
    }

    fn is_live(&self) -> bool {
        (**self).is_live()
    }

    fn progress(&self) -> Option<(u64, u64)> {
        (**self).progress()
    }
}

/// Opens a file or a live interface (with `filter`, or [`DEFAULT_FILTER`], and the default
/// [`LiveOptions`]). `filter` is ignored for files: every frame of a file is read.
pub fn open(
    spec: &SourceSpec,
    filter: Option<&str>,
) -> Result<Box<dyn FrameSource + Send>, CaptureError> {
    match spec {
        SourceSpec::File(path) => Ok(Box::new(open_file(path)?)),
        SourceSpec::Live(iface) => Ok(Box::new(open_live(iface, filter, &LiveOptions::default())?)),
    }
}
