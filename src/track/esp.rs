//! ESP and AH SAs (one direction each), keyed by destination, SPI and protocol: SPIs are
//! chosen by the receiver (RFC 4301 §4.1), so the same SPI may name different SAs at
//! different destinations, and AH and ESP numberings are separate.
//!
//! The per-packet work is one table lookup and the update in [`EspSa::observe`]; nothing
//! allocates once an SA exists.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use super::ike::IkeKey;

/// The identity of an ESP or AH SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EspKey {
    /// Outer destination address.
    pub dst: IpAddr,
    /// Security Parameters Index.
    pub spi: u32,
    /// `true` for AH, `false` for ESP.
    pub ah: bool,
    /// The sender, folded to 32 bits, for a multicast destination; 0 for unicast.
    pub src_tag: u32,
}

impl EspKey {
    /// The key of a unicast SA, or of the sender's own SA towards a multicast group:
    /// several senders to one group share SPI and destination but each has its own SA
    /// and sequence counter (RFC 4301 §4.1, multicast SAD lookups by SPI, destination
    /// and source). Two senders whose addresses fold to the same 32 bits share a record.
    pub(crate) fn new(src: IpAddr, dst: IpAddr, spi: u32, ah: bool) -> EspKey {
        let src_tag = if dst.is_multicast() { fold(src) } else { 0 };
        EspKey {
            dst,
            spi,
            ah,
            src_tag,
        }
    }

    /// The key of a unicast SA (what IKE negotiates and Deletes name).
    pub(crate) fn unicast(dst: IpAddr, spi: u32, ah: bool) -> EspKey {
        EspKey {
            dst,
            spi,
            ah,
            src_tag: 0,
        }
    }
}

/// Fed to the hasher as whole words: one for an IPv4 destination, two for IPv6. The
/// derived hash would feed the address's variant, a length and its bytes one by one, and
/// every ESP packet hashes its key. Equal keys feed equal words, as `Eq` requires.
impl Hash for EspKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let tail = u64::from(self.spi) << 32 | u64::from(self.src_tag);
        let ah = u128::from(self.ah);
        match self.dst {
            IpAddr::V4(a) => {
                state.write_u128(u128::from(u32::from(a)) << 66 | ah << 64 | u128::from(tail))
            }
            IpAddr::V6(a) => {
                state.write_u128(u128::from(a));
                state.write_u128(2 << 64 | ah << 64 | u128::from(tail));
            }
        }
    }
}

/// An address folded to 32 bits (IPv6: the XOR of its four words).
fn fold(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => a
            .octets()
            .chunks_exact(4)
            .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
            .fold(0, |x, w| x ^ w),
    }
}

/// How an ESP/AH SA was tied to its IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkKind {
    /// A decrypted message named the SPI.
    Decrypted,
    /// A cleartext SA payload named the SPI.
    Proposal,
    /// The first new SPI between the IKE peers after a child negotiation.
    Inferred,
}

impl LinkKind {
    /// The JSON spelling (`ike_sa_link`, `source`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LinkKind::Decrypted => "decrypted",
            LinkKind::Proposal => "proposal",
            LinkKind::Inferred => "inferred",
        }
    }
}

/// What one sequence number meant for the anti-replay window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeqEvent {
    /// Ahead of every number seen; `skipped` numbers between were never seen (yet).
    Advance {
        /// Numbers jumped over.
        skipped: u64,
        /// The low 32 bits wrapped around (RFC 4303 §3.3.3 extended numbers).
        wrapped: bool,
    },
    /// Behind the highest number but inside the window and not seen before.
    Late,
    /// Already seen.
    Duplicate,
    /// Too far behind the window to tell; a receiver rejects it like a replay.
    TooOld,
}

/// A sliding anti-replay window (RFC 4303 §3.4.3, the bitmap form of RFC 6479's idea):
/// the highest sequence number seen, extended to 64 bits across wraps, and a bitmap of
/// the 64 numbers at and below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeqWindow {
    top: u64,
    bitmap: u64,
}

const WINDOW: u64 = 64;

impl SeqWindow {
    /// A window whose first packet carried `seq`.
    pub(crate) fn new(seq: u32) -> Self {
        SeqWindow {
            top: u64::from(seq),
            bitmap: 1,
        }
    }

    /// Records one sequence number (the low 32 bits from the wire).
    pub(crate) fn observe(&mut self, seq: u32) -> SeqEvent {
        // The distance from the low 32 bits of the top, read as signed: a step of up to
        // 2^31 forwards is an advance (possibly across a wrap), anything else is behind.
        let diff = i64::from(seq.wrapping_sub(self.top as u32) as i32);
        if diff > 0 {
            let step = diff as u64;
            let old_epoch = self.top >> 32;
            self.top += step;
            self.bitmap = if step >= WINDOW {
                1
            } else {
                (self.bitmap << step) | 1
            };
            return SeqEvent::Advance {
                skipped: step - 1,
                wrapped: self.top >> 32 != old_epoch,
            };
        }
        let age = diff.unsigned_abs();
        if age >= WINDOW || age > self.top {
            return SeqEvent::TooOld;
        }
        let bit = 1u64 << age;
        if self.bitmap & bit != 0 {
            return SeqEvent::Duplicate;
        }
        self.bitmap |= bit;
        SeqEvent::Late
    }

    /// The highest sequence number seen, extended to 64 bits.
    #[cfg(test)]
    pub(crate) fn top(&self) -> u64 {
        self.top
    }
}

/// One direction of an ESP or AH SA. Kept small: a million of them must fit.
#[derive(Debug, Clone)]
pub(crate) struct EspSa {
    /// Outer source address.
    pub src: IpAddr,
    /// UDP ports when UDP-encapsulated (RFC 3948).
    pub ports: Option<(u16, u16)>,
    /// Packets seen.
    pub packets: u64,
    /// Payload bytes seen.
    pub bytes: u64,
    /// Capture time (ns) of the first packet.
    pub first_seen: i64,
    /// Capture time (ns) of the last packet.
    pub last_seen: i64,
    /// Frame of the first packet.
    pub first_frame: u64,
    /// Frame of the last packet.
    pub last_frame: u64,
    /// Anti-replay window.
    pub window: SeqWindow,
    /// Sequence numbers skipped and not seen since.
    pub lost: u64,
    /// Duplicates and packets too old for the window.
    pub replayed: u32,
    /// Packets that arrived late but inside the window.
    pub reordered: u32,
    /// Wraps of the low 32 sequence bits.
    pub wraps: u32,
    /// Initiator SPI of the IKE SA it belongs to, when linked.
    pub ike_spi: u64,
    /// IKE version of that IKE SA; 0 when not linked.
    pub ike_version: u8,
    /// How it was linked.
    pub link: Option<LinkKind>,
    /// Its packets count as bad-SPI packets (deleted SPI, or its IKE SA is gone).
    pub bad: bool,
    /// No packet for longer than the idle expiry.
    pub expired: bool,
    /// Capture time (ns) of a Delete naming it, or `i64::MIN` when none was seen.
    pub deleted_at: i64,
}

impl EspSa {
    /// A new SA from its first packet.
    pub(crate) fn new(
        src: IpAddr,
        ports: Option<(u16, u16)>,
        seq: u32,
        ts: i64,
        frame: u64,
    ) -> Self {
        EspSa {
            src,
            ports,
            packets: 0,
            bytes: 0,
            first_seen: ts,
            last_seen: ts,
            first_frame: frame,
            last_frame: frame,
            window: SeqWindow::new(seq),
            lost: 0,
            replayed: 0,
            reordered: 0,
            wraps: 0,
            ike_spi: 0,
            ike_version: 0,
            link: None,
            bad: false,
            expired: false,
            deleted_at: i64::MIN,
        }
    }

    /// Counts one packet. `first` is `true` for the packet that created the SA (its
    /// sequence number already opened the window).
    pub(crate) fn observe(&mut self, seq: u32, len: usize, ts: i64, frame: u64, first: bool) {
        self.packets += 1;
        self.last_frame = self.last_frame.max(frame);
        self.bytes += len as u64;
        self.last_seen = self.last_seen.max(ts);
        self.expired = false;
        if first {
            return;
        }
        match self.window.observe(seq) {
            SeqEvent::Advance { skipped, wrapped } => {
                self.lost += skipped;
                self.wraps += u32::from(wrapped);
            }
            SeqEvent::Late => {
                self.reordered = self.reordered.saturating_add(1);
                self.lost = self.lost.saturating_sub(1);
            }
            SeqEvent::Duplicate | SeqEvent::TooOld => {
                self.replayed = self.replayed.saturating_add(1);
            }
        }
    }

    /// The IKE SA it is linked to.
    pub(crate) fn ike(&self) -> Option<IkeKey> {
        (self.ike_version != 0).then_some(IkeKey {
            version: self.ike_version,
            spi_i: self.ike_spi,
        })
    }

    /// Links it to an IKE SA.
    pub(crate) fn set_ike(&mut self, key: IkeKey, link: LinkKind) {
        self.ike_spi = key.spi_i;
        self.ike_version = key.version;
        self.link = Some(link);
    }

    /// Capture time of a Delete naming it.
    pub(crate) fn deleted_at(&self) -> Option<i64> {
        (self.deleted_at != i64::MIN).then_some(self.deleted_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa() -> EspSa {
        EspSa::new("192.0.2.1".parse().unwrap(), None, 1, 0, 1)
    }

    #[test]
    fn in_order_packets_count_nothing_unusual() {
        let mut s = sa();
        s.observe(1, 100, 0, 1, true);
        for seq in 2..=10 {
            s.observe(seq, 100, 1, 1, false);
        }
        assert_eq!(
            (s.packets, s.bytes, s.lost, s.replayed, s.reordered),
            (10, 1000, 0, 0, 0)
        );
    }

    #[test]
    fn a_gap_counts_lost_until_the_late_packet_arrives() {
        let mut s = sa();
        s.observe(1, 10, 0, 1, true);
        s.observe(4, 10, 1, 1, false);
        assert_eq!(s.lost, 2);
        s.observe(3, 10, 2, 1, false);
        assert_eq!((s.lost, s.reordered), (1, 1));
    }

    #[test]
    fn duplicates_and_too_old_packets_are_replays() {
        let mut s = sa();
        s.observe(1, 10, 0, 1, true);
        s.observe(2, 10, 0, 1, false);
        s.observe(2, 10, 0, 1, false);
        assert_eq!(s.replayed, 1);
        s.observe(200, 10, 0, 1, false);
        s.observe(3, 10, 0, 1, false);
        assert_eq!(s.replayed, 2);
        assert_eq!(s.reordered, 0);
    }

    #[test]
    fn window_tells_duplicate_from_too_old() {
        let mut w = SeqWindow::new(100);
        assert_eq!(w.observe(99), SeqEvent::Late);
        assert_eq!(w.observe(99), SeqEvent::Duplicate);
        assert_eq!(w.observe(100), SeqEvent::Duplicate);
        assert_eq!(w.observe(36), SeqEvent::TooOld);
        assert_eq!(w.observe(37), SeqEvent::Late);
    }

    #[test]
    fn sequence_wrap_extends_to_64_bits() {
        let mut s = EspSa::new("192.0.2.1".parse().unwrap(), None, u32::MAX - 1, 0, 1);
        s.observe(u32::MAX - 1, 10, 0, 1, true);
        s.observe(u32::MAX, 10, 0, 1, false);
        s.observe(0, 10, 0, 1, false);
        s.observe(1, 10, 0, 1, false);
        assert_eq!((s.lost, s.wraps), (0, 1));
        assert_eq!(s.window.top(), (1u64 << 32) + 1);
        // A late packet from before the wrap is still recognised.
        s.observe(u32::MAX, 10, 0, 1, false);
        assert_eq!(s.replayed, 1);
    }

    #[test]
    fn multicast_senders_have_their_own_sas_and_unicast_keys_ignore_the_source() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let (a, b) = (ip("fe80::1"), ip("fe80::2"));
        let group = ip("ff02::5");
        assert_ne!(
            EspKey::new(a, group, 0x100, true),
            EspKey::new(b, group, 0x100, true)
        );
        assert_eq!(
            EspKey::new(a, b, 0x100, true),
            EspKey::unicast(b, 0x100, true)
        );
        assert_eq!(EspKey::new(a, b, 7, false).src_tag, 0);
        assert_eq!(
            EspKey::new(ip("192.0.2.1"), ip("224.0.0.5"), 7, false).src_tag,
            0xc000_0201
        );
        assert!(
            std::mem::size_of::<EspKey>() <= 28,
            "{}",
            std::mem::size_of::<EspKey>()
        );
    }

    #[test]
    fn an_sa_record_stays_small() {
        // The table adds the key (about 24 bytes), a slab slot tag and a hash slot.
        assert!(
            std::mem::size_of::<EspSa>() <= 136,
            "{}",
            std::mem::size_of::<EspSa>()
        );
    }
}
