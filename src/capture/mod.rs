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
pub(crate) use live::wait_readable;
pub use live::{interface_addresses, open_live, LiveOptions, LiveSource, DEFAULT_BUFFER};
pub use paced::Paced;
pub use privilege::{drop_privileges, PrivilegeError};

/// Default BPF filter for live capture: IKE, NAT-T, ESP and AH over IPv4 and IPv6, plus
/// ICMP errors (which quote them), IPv4 fragments after the first (large IKE messages;
/// the first carries the UDP header), and IPv6 packets whose first header is an
/// extension header (fragment, hop-by-hop, routing, destination options): BPF's `udp
/// port` and `ip6 proto` only look at the fixed header's next header field, so
/// fragmented IKE over IPv6 would never reach the decoder.
pub const DEFAULT_FILTER: &str = "udp port 500 or udp port 4500 or ip proto 50 or ip proto 51 \
or ip6 proto 50 or ip6 proto 51 or icmp or icmp6 or (ip[6:2] & 0x1fff != 0) \
or (ip6 and (ip6[6] == 44 or ip6[6] == 0 or ip6[6] == 43 or ip6[6] == 60))";

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
    /// The file could not be opened or read. The I/O error is part of the message and
    /// not a separate cause, so that error chains print it once.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
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

#[cfg(test)]
mod tests {
    use super::DEFAULT_FILTER;

    /// An Ethernet frame carrying `ip` (an IPv4 or IPv6 packet).
    fn ether(ip: &[u8]) -> Vec<u8> {
        let ethertype: [u8; 2] = if ip[0] >> 4 == 6 {
            [0x86, 0xdd]
        } else {
            [0x08, 0x00]
        };
        [&[0u8; 12][..], &ethertype, ip].concat()
    }

    /// An IPv6 packet from 2001:db8::1 to 2001:db8::2 whose first header is `next`.
    fn ip6(next: u8, rest: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(rest.len() as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        for last in [1u8, 2] {
            p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            p.extend_from_slice(&[0; 11]);
            p.push(last);
        }
        p.extend_from_slice(rest);
        p
    }

    fn udp(src: u16, dst: u16) -> Vec<u8> {
        [
            &src.to_be_bytes()[..],
            &dst.to_be_bytes(),
            &[0, 12, 0, 0, 1, 2, 3, 4],
        ]
        .concat()
    }

    /// A fragment header (next header `next`, offset in 8-byte units, more fragments).
    fn frag(next: u8, offset: u16, more: bool) -> Vec<u8> {
        let off = (offset << 3) | u16::from(more);
        [&[next, 0][..], &off.to_be_bytes(), &[0, 0, 0, 7]].concat()
    }

    #[test]
    fn the_default_filter_takes_ipv6_ike_behind_extension_headers_and_leaves_other_udp() {
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        let bpf = dead.compile(DEFAULT_FILTER, true).unwrap();
        let ike = udp(500, 500);
        let dns = udp(5353, 53);
        let cases: [(&str, Vec<u8>, bool); 7] = [
            ("IKE over IPv6", ip6(17, &ike), true),
            ("ESP over IPv6", ip6(50, &[0xc0, 1, 0, 0, 0, 0, 0, 1]), true),
            (
                "first fragment of IKE over IPv6",
                ip6(44, &[frag(17, 0, true), ike.clone()].concat()),
                true,
            ),
            (
                "later fragment of IKE over IPv6",
                ip6(44, &[frag(17, 185, false), vec![0xab; 16]].concat()),
                true,
            ),
            (
                "IKE after a destination options header",
                ip6(60, &[vec![17, 0, 1, 4, 0, 0, 0, 0], ike.clone()].concat()),
                true,
            ),
            ("DNS over IPv6", ip6(17, &dns), false),
            ("TCP over IPv6", ip6(6, &[0; 20]), false),
        ];
        for (what, packet, want) in cases {
            assert_eq!(bpf.filter(&ether(&packet)), want, "{what}");
        }
    }
}
