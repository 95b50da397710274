//! On-demand negotiation where charon's data plane cannot ask for it: the packet filter's
//! acquire log, and `ipsecmon enforce acquire`, which turns each logged packet into a
//! negotiation of the child SA that would protect it.
//!
//! With a kernel data plane, a trap policy makes the kernel send charon an acquire for
//! the first packet without an SA. kernel-libipsec before strongSwan 5.9.11 has no such
//! path: the trap's route sends the packet into the TUN device, and libipsec drops it
//! ("could not find an outbound IPsec SA") without telling charon. For that data plane the
//! rendered nftables table logs the first packet of each connection that a Negotiate
//! filter sends into the TUN device to the netfilter log group [`GROUP`], with a prefix
//! naming the child SA (see [`prefix`]). This module reads that group through libpcap's
//! `nflog` device and, unless the child SA is already up, asks charon over VICI to
//! initiate it: the first packet starts the negotiation, as on Windows 2000 ("Negotiating
//! IP security"), and the application's retransmission goes through once the SA is up.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::conf::Section;
use super::vici::Client;
use super::EnforceError;

/// The netfilter log group of the acquire log (the data plane's fwmark, `IP` in ASCII).
pub const GROUP: u16 = 0x4950;

/// What every acquire log prefix starts with.
pub const PREFIX_HEAD: &str = "ipsecmon-acquire ";

/// How long after an initiation a packet for the same child starts no new one: the
/// retransmissions of a connection attempt while its SA is being negotiated.
pub const QUIET: Duration = Duration::from_secs(3);

/// The log prefix for packets that child `child` would protect. nftables allows 127 bytes;
/// child names are slugs of at most a few dozen.
pub fn prefix(child: &str) -> String {
    format!("{PREFIX_HEAD}{child} ")
}

/// Why an NFLOG frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NflogError {
    /// Shorter than its 4-byte header.
    #[error("NFLOG frame of {0} bytes is shorter than its header")]
    Short(usize),
    /// A TLV runs past the frame or is shorter than its own header.
    #[error("NFLOG attribute at offset {offset} has length {length}, outside the frame")]
    BadAttribute {
        /// Its offset in the frame.
        offset: usize,
        /// Its length field.
        length: usize,
    },
}

/// NFULA_PREFIX (linux/netfilter/nfnetlink_log.h): the log statement's prefix, with its
/// terminating NUL.
const NFULA_PREFIX: u16 = 10;

/// The child SA an NFLOG frame (libpcap's `DLT_NFLOG`) asks for: the name in an
/// acquire log prefix, or `None` for a frame another rule logged.
///
/// The frame is a 4-byte header (address family, version, group in network order)
/// followed by attributes of a 2-byte length (header included) and a 2-byte type, both in
/// host order, each padded to 4 bytes.
pub fn child_of_frame(frame: &[u8]) -> Result<Option<&str>, NflogError> {
    let mut rest = frame.get(4..).ok_or(NflogError::Short(frame.len()))?;
    let mut offset = 4;
    while rest.len() >= 4 {
        let length = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x7fff;
        let value = rest
            .get(4..length)
            .ok_or(NflogError::BadAttribute { offset, length })?;
        if kind == NFULA_PREFIX {
            let text = value.split(|b| *b == 0).next().unwrap_or_default();
            let text = std::str::from_utf8(text).unwrap_or_default();
            return Ok(text
                .strip_prefix(PREFIX_HEAD)
                .map(str::trim_end)
                .filter(|c| !c.is_empty()));
        }
        let padded = length.div_ceil(4) * 4;
        offset += padded;
        rest = rest.get(padded..).unwrap_or_default();
    }
    Ok(None)
}

/// What [`run`] listens to and talks to.
#[derive(Debug, Clone)]
pub struct AcquireOptions {
    /// charon's VICI socket.
    pub vici: String,
    /// The netfilter log group.
    pub group: u16,
}

/// Initiations per child, each at most once per [`QUIET`].
#[derive(Debug, Default)]
pub struct Debounce {
    last: HashMap<String, Instant>,
}

impl Debounce {
    /// Whether a packet for `child` at `now` should start a negotiation.
    pub fn admit(&mut self, child: &str, now: Instant) -> bool {
        if let Some(t) = self.last.get(child) {
            if now.duration_since(*t) < QUIET {
                return false;
            }
        }
        if self.last.len() >= 4096 {
            self.last.retain(|_, t| now.duration_since(*t) < QUIET);
        }
        self.last.insert(child.to_string(), now);
        true
    }
}

/// Reads the acquire log until SIGINT or SIGTERM and initiates the child SA each logged
/// packet names, without waiting for the negotiation to finish.
pub fn run(opts: &AcquireOptions) -> Result<(), EnforceError> {
    let device = format!("nflog:{}", opts.group);
    let fail = |e: pcap::Error| {
        EnforceError::Options(format!(
            "cannot read {device}: {e} (as root, in the network namespace the policy was \
             applied in; only one reader per log group)"
        ))
    };
    // An NFLOG handle ignores libpcap's read timeout, and a blocked read would not see
    // SIGTERM: read without blocking until nothing is left (libpcap takes several frames
    // from the socket at once), then poll.
    let mut cap = pcap::Capture::from_device(device.as_str())
        .map_err(fail)?
        .immediate_mode(true)
        .open()
        .map_err(fail)?
        .setnonblock()
        .map_err(fail)?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&cap);
    tracing::info!(group = opts.group, vici = %opts.vici, "acquire: reading the acquire log");
    let mut debounce = Debounce::default();
    while !crate::runner::signalled() {
        let frame = match cap.next_packet() {
            Ok(p) => p.data.to_vec(),
            Err(e) if drained(&e) => {
                crate::capture::wait_readable(fd, 200);
                continue;
            }
            Err(e) => return Err(fail(e)),
        };
        let child = match child_of_frame(&frame) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "acquire: unreadable log frame");
                continue;
            }
        };
        if debounce.admit(child, Instant::now()) && !installed(&opts.vici, child) {
            initiate(&opts.vici, child);
        }
    }
    Ok(())
}

/// Whether a non-blocking read found nothing to read. libpcap's NFLOG reader reports that
/// as an error carrying EAGAIN's message rather than as an empty read.
fn drained(e: &pcap::Error) -> bool {
    match e {
        pcap::Error::TimeoutExpired | pcap::Error::NoMorePackets => true,
        pcap::Error::PcapError(msg) => msg.contains("temporarily unavailable"),
        _ => false,
    }
}

/// Whether charon has child SA `child` up: a new connection that an installed SA
/// carries needs no negotiation. Unknown (charon not answering) counts as not up.
fn installed(vici: &str, child: &str) -> bool {
    let mut msg = Section::new("");
    msg.value("child", child);
    let sas = Client::connect(vici).and_then(|mut c| c.stream("list-sas", "list-sa", &msg));
    match sas {
        Ok(events) => events.iter().any(|e| child_installed(e, child)),
        Err(e) => {
            tracing::debug!(error = %e, "acquire: listing the SAs failed");
            false
        }
    }
}

/// In one `list-sa` event (`{IKE_SA = {child-sas = {NAME-ID = {name, state}}}}`): whether
/// a child SA of configuration `child` is installed.
fn child_installed(event: &Section, child: &str) -> bool {
    event.sections().any(|ike| {
        ike.get("child-sas").is_some_and(|children| {
            children.sections().any(|c| {
                c.get_value("name") == Some(child)
                    && matches!(
                        c.get_value("state"),
                        Some("INSTALLED" | "REKEYING" | "REKEYED")
                    )
            })
        })
    })
}

/// Asks charon to initiate `child` and returns at once (`timeout = -1`); a refusal is
/// logged, since the next packet after [`QUIET`] tries again.
fn initiate(vici: &str, child: &str) {
    let mut msg = Section::new("");
    msg.value("child", child).value("timeout", "-1");
    let result = Client::connect(vici).and_then(|mut c| c.call("initiate", &msg));
    match result {
        Ok(_) => tracing::info!(
            child,
            "acquire: a packet needs child SA {child}; negotiating"
        ),
        Err(e) => tracing::warn!(child, error = %e, "acquire: initiating {child} failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An NFLOG frame as the kernel writes it: header, then attributes in host order.
    fn frame(attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut out = vec![2, 0, 0x49, 0x50];
        for (kind, value) in attrs {
            let len = (4 + value.len()) as u16;
            out.extend_from_slice(&len.to_ne_bytes());
            out.extend_from_slice(&kind.to_ne_bytes());
            out.extend_from_slice(value);
            while out.len() % 4 != 0 {
                out.push(0);
            }
        }
        out
    }

    #[test]
    fn the_prefix_names_the_child() {
        let p = format!("{}\0", prefix("abczz-with-bob-1"));
        let f = frame(&[
            (1, &[8, 0, 1, 0]),
            (NFULA_PREFIX, p.as_bytes()),
            (9, &[0x45; 40]),
        ]);
        assert_eq!(child_of_frame(&f), Ok(Some("abczz-with-bob-1")));
        let other = frame(&[(NFULA_PREFIX, b"something else \0")]);
        assert_eq!(child_of_frame(&other), Ok(None));
        assert_eq!(child_of_frame(&frame(&[(9, &[1, 2, 3])])), Ok(None));
    }

    #[test]
    fn broken_frames_are_errors_never_panics() {
        assert_eq!(child_of_frame(&[2, 0]), Err(NflogError::Short(2)));
        let mut f = frame(&[(NFULA_PREFIX, b"ipsecmon-acquire x \0")]);
        f[4..6].copy_from_slice(&200u16.to_ne_bytes());
        assert_eq!(
            child_of_frame(&f),
            Err(NflogError::BadAttribute {
                offset: 4,
                length: 200
            })
        );
        let mut zero = frame(&[(1, &[0; 4])]);
        zero[4..6].copy_from_slice(&0u16.to_ne_bytes());
        assert!(child_of_frame(&zero).is_err());
        // Every truncation of a good frame parses or fails cleanly.
        let good = frame(&[
            (1, &[8, 0, 1, 0]),
            (NFULA_PREFIX, b"ipsecmon-acquire c-1 \0"),
        ]);
        for n in 0..good.len() {
            let _ = child_of_frame(&good[..n]);
        }
    }

    #[test]
    fn an_installed_child_of_that_name_counts_as_up() {
        // A list-sa event as charon streams it: {IKE_SA = {child-sas = {NAME-ID = {...}}}}.
        let event = |name: &str, state: &str| {
            let mut child = Section::new(format!("{name}-3"));
            child.value("name", name).value("state", state);
            let mut children = Section::new("child-sas");
            children.section(child);
            let mut ike = Section::new("lab-abczz-with-bob");
            ike.value("state", "ESTABLISHED").section(children);
            let mut root = Section::new("");
            root.section(ike);
            root
        };
        assert!(child_installed(&event("abczz-1", "INSTALLED"), "abczz-1"));
        assert!(child_installed(&event("abczz-1", "REKEYED"), "abczz-1"));
        assert!(!child_installed(&event("abczz-1", "INSTALLING"), "abczz-1"));
        assert!(!child_installed(&event("abczz-2", "INSTALLED"), "abczz-1"));
        assert!(!child_installed(&Section::new(""), "abczz-1"));
    }

    #[test]
    fn a_child_is_initiated_once_per_quiet_period() {
        let mut d = Debounce::default();
        let t = Instant::now();
        assert!(d.admit("a-1", t));
        assert!(!d.admit("a-1", t + Duration::from_secs(1)));
        assert!(d.admit("a-2", t + Duration::from_secs(1)));
        assert!(d.admit("a-1", t + QUIET));
    }
}
