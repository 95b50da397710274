//! Well-known Vendor ID payloads by name, and which of them announce NAT traversal.
//!
//! Most vendor IDs are the MD5 digest of a published string (RFC 3947 §3 defines the NAT-T
//! one as MD5("RFC 3947")), so the table is built once, at first use, by hashing those
//! strings; only IDs that are not such digests are written out in hex. Vendors append
//! version bytes to some IDs (Cisco Unity, DPD, the Microsoft ID), which match by prefix.
//!
//! The table names the IDs a monitor meets most (NAT-T RFC and drafts, DPD, XAUTH,
//! Microsoft Windows versions, Cisco, Juniper NetScreen, strongSwan, racoon); others stay
//! unnamed and are shown in hex.

use std::sync::OnceLock;

use md5::{Digest, Md5};

use super::{IkeMessage, ParseContext, PayloadBody};

/// Which NAT traversal specification a vendor ID announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NatT {
    /// draft-huttunen-ipsec-esp-in-udp, by draft number.
    HuttunenDraft(u8),
    /// draft-stenberg-ipsec-nat-traversal, by draft number.
    StenbergDraft(u8),
    /// draft-ietf-ipsec-nat-t-ike, by draft number.
    IetfDraft(u8),
    /// RFC 3947.
    Rfc3947,
}

impl NatT {
    /// `true` when this version numbers NAT-D and NAT-OA 15 and 16 (drafts 04 to 08,
    /// before RFC 3947 moved them to 20 and 21 and GDOI took 15 and 16).
    pub fn uses_draft_natd_numbering(self) -> bool {
        matches!(self, NatT::IetfDraft(4..=8))
    }
}

/// Where the bytes of a known ID come from.
#[derive(Clone, Copy)]
enum Source {
    /// The MD5 digest of this string.
    Md5(&'static str),
    /// These bytes, in hex.
    Hex(&'static str),
}

/// One row of the table as written.
struct Spec {
    source: Source,
    /// Bytes of the digest or hex kept before `suffix`.
    take: usize,
    suffix: &'static [u8],
    /// Match IDs that start with the pattern (vendors append versions).
    prefix: bool,
    name: &'static str,
    nat_t: Option<NatT>,
}

const fn md5(s: &'static str, name: &'static str) -> Spec {
    Spec {
        source: Source::Md5(s),
        take: 16,
        suffix: &[],
        prefix: false,
        name,
        nat_t: None,
    }
}

const fn natt(s: &'static str, nat_t: NatT) -> Spec {
    Spec {
        nat_t: Some(nat_t),
        ..md5(s, s)
    }
}

const fn windows(version: u8, name: &'static str) -> Spec {
    Spec {
        suffix: match version {
            2 => &[0, 0, 0, 2],
            3 => &[0, 0, 0, 3],
            4 => &[0, 0, 0, 4],
            5 => &[0, 0, 0, 5],
            6 => &[0, 0, 0, 6],
            7 => &[0, 0, 0, 7],
            8 => &[0, 0, 0, 8],
            _ => &[0, 0, 0, 9],
        },
        prefix: true,
        ..md5(MS_NT5, name)
    }
}

const MS_NT5: &str = "MS NT5 ISAKMPOAKLEY";

const SPECS: &[Spec] = &[
    natt("RFC 3947", NatT::Rfc3947),
    natt("draft-ietf-ipsec-nat-t-ike-00", NatT::IetfDraft(0)),
    natt("draft-ietf-ipsec-nat-t-ike-01", NatT::IetfDraft(1)),
    natt("draft-ietf-ipsec-nat-t-ike-02", NatT::IetfDraft(2)),
    Spec {
        name: "draft-ietf-ipsec-nat-t-ike-02 (trailing newline)",
        ..natt("draft-ietf-ipsec-nat-t-ike-02\n", NatT::IetfDraft(2))
    },
    natt("draft-ietf-ipsec-nat-t-ike-03", NatT::IetfDraft(3)),
    natt("draft-ietf-ipsec-nat-t-ike-04", NatT::IetfDraft(4)),
    natt("draft-ietf-ipsec-nat-t-ike-05", NatT::IetfDraft(5)),
    natt("draft-ietf-ipsec-nat-t-ike-06", NatT::IetfDraft(6)),
    natt("draft-ietf-ipsec-nat-t-ike-07", NatT::IetfDraft(7)),
    natt("draft-ietf-ipsec-nat-t-ike-08", NatT::IetfDraft(8)),
    natt("draft-ietf-ipsec-nat-t-ike-09", NatT::IetfDraft(9)),
    natt(
        "draft-stenberg-ipsec-nat-traversal-00",
        NatT::StenbergDraft(0),
    ),
    natt(
        "draft-stenberg-ipsec-nat-traversal-01",
        NatT::StenbergDraft(1),
    ),
    natt(
        "draft-stenberg-ipsec-nat-traversal-02",
        NatT::StenbergDraft(2),
    ),
    natt(
        "draft-huttunen-ipsec-esp-in-udp-00.txt",
        NatT::HuttunenDraft(0),
    ),
    natt(
        "draft-huttunen-ipsec-esp-in-udp-01.txt",
        NatT::HuttunenDraft(1),
    ),
    // RFC 3706 §7: 14 fixed bytes, then major and minor version.
    Spec {
        source: Source::Hex("afcad71368a1f1c96b8696fc7757"),
        take: 14,
        prefix: true,
        ..md5("", "RFC 3706 DPD")
    },
    // The first 8 bytes of the digest of the XAUTH draft's file name.
    Spec {
        take: 8,
        ..md5("draft-ietf-ipsra-isakmp-xauth-06.txt", "XAUTH")
    },
    // Cisco Unity: 14 bytes of the digest, then major and minor version.
    Spec {
        take: 14,
        prefix: true,
        ..md5("CISCO-UNITY", "Cisco Unity")
    },
    // Cisco IKEv1 fragmentation, sometimes followed by 4 capability bytes.
    Spec {
        prefix: true,
        ..md5("FRAGMENTATION", "Cisco Fragmentation")
    },
    windows(2, "Windows 2000"),
    windows(3, "Windows XP"),
    windows(4, "Windows Server 2003 / XP SP2"),
    windows(5, "Windows Vista"),
    windows(6, "Windows Server 2008"),
    windows(7, "Windows 7"),
    windows(8, "Windows Server 2008 R2"),
    windows(9, "Windows 8"),
    Spec {
        prefix: true,
        ..md5(MS_NT5, "MS NT5 ISAKMPOAKLEY")
    },
    // Juniper/NetScreen: 20 fixed bytes, then version words. The name is the one Wireshark
    // 4.0.17 gives this ID in the corpus's ikev1-certs.pcap (frame 2).
    Spec {
        source: Source::Hex("699369228741c6d4ca094c93e242c9de19e7b7c6"),
        take: 20,
        prefix: true,
        ..md5("", "Netscreen-6")
    },
    md5("Vid-Initial-Contact", "Microsoft Vid-Initial-Contact"),
    md5(
        "MS-Negotiation Discovery Capable",
        "MS-Negotiation Discovery Capable",
    ),
    md5("IKE CGA version 1", "IKE CGA version 1"),
    md5("strongSwan", "strongSwan"),
    md5("KAME/racoon", "KAME/racoon"),
];

/// A table row with its bytes computed.
struct Known {
    bytes: Vec<u8>,
    prefix: bool,
    name: &'static str,
    nat_t: Option<NatT>,
}

fn decode_hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn build(spec: &Spec) -> Known {
    let mut bytes = match spec.source {
        Source::Md5(s) => Md5::digest(s.as_bytes()).to_vec(),
        Source::Hex(h) => decode_hex(h),
    };
    bytes.truncate(spec.take);
    bytes.extend_from_slice(spec.suffix);
    Known {
        bytes,
        prefix: spec.prefix,
        name: spec.name,
        nat_t: spec.nat_t,
    }
}

/// The table: exact rows first, then prefixes from the longest, so the most specific
/// match wins.
fn table() -> &'static [Known] {
    static TABLE: OnceLock<Vec<Known>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut rows: Vec<Known> = SPECS.iter().map(build).collect();
        rows.sort_by_key(|k| (k.prefix, std::cmp::Reverse(k.bytes.len())));
        rows
    })
}

fn lookup(id: &[u8]) -> Option<&'static Known> {
    // The first byte rules out nearly every row before a comparison of the whole ID
    // (an IKEv1 message carries several, each checked against every row).
    let first = id.first();
    table().iter().find(|k| {
        if k.bytes.first().is_some_and(|b| Some(b) != first) {
            false
        } else if k.prefix {
            id.starts_with(&k.bytes)
        } else {
            id == k.bytes.as_slice()
        }
    })
}

/// The well-known name of a vendor ID, if it is one.
pub fn name(id: &[u8]) -> Option<&'static str> {
    lookup(id).map(|k| k.name)
}

/// The NAT traversal version a vendor ID announces, if any.
pub fn nat_t(id: &[u8]) -> Option<NatT> {
    lookup(id).and_then(|k| k.nat_t)
}

/// `true` when the vendor ID announces a NAT-T draft that numbers NAT-D / NAT-OA 15 / 16.
pub fn is_draft_natd(id: &[u8]) -> bool {
    nat_t(id).is_some_and(NatT::uses_draft_natd_numbering)
}

/// The NAT-T version a set of vendor IDs from one message amounts to: RFC 3947 over any
/// draft, a later draft over an earlier one. A responder sends the one it chose, so this
/// applied to the responder's message gives the negotiated version.
pub fn best_nat_t<'a>(ids: impl IntoIterator<Item = &'a [u8]>) -> Option<NatT> {
    ids.into_iter().filter_map(nat_t).max()
}

/// Most IKEv1 SAs whose NAT-T numbering is remembered by [`DraftNatdMemory`].
pub const MAX_REMEMBERED_SAS: usize = 4096;

/// Remembers, per IKEv1 initiator cookie, whether the NAT-T version in use numbers NAT-D
/// and NAT-OA 15 and 16, so that later messages of the SA are parsed with the right
/// [`ParseContext`].
///
/// The wire decoder keeps no state between packets; this is for its callers (the `decode`
/// command, the tracker). The responder's choice (a message with a non-zero responder
/// cookie) overrides what the initiator offered. When the table is full it is cleared, so
/// a flood of cookies costs a fixed amount of memory and only loses the draft numbering
/// of SAs that were already running.
#[derive(Debug, Default)]
pub struct DraftNatdMemory {
    sas: std::collections::HashMap<u64, bool>,
}

impl DraftNatdMemory {
    /// The context to parse `message` (an ISAKMP message starting at its header) with.
    pub fn context(&self, message: &[u8]) -> ParseContext {
        let draft_natd = super::peek_header(message)
            .filter(|h| h.major == 1)
            .and_then(|h| self.sas.get(&h.spi_i).copied())
            .unwrap_or(false);
        ParseContext { draft_natd }
    }

    /// Learns from the NAT-T vendor IDs of a parsed IKEv1 message.
    pub fn observe(&mut self, msg: &IkeMessage) {
        if msg.header.major != 1 {
            return;
        }
        let ids = msg.payloads.iter().filter_map(|p| match &p.body {
            PayloadBody::VendorId { id, .. } => Some(id.as_slice()),
            _ => None,
        });
        let Some(version) = best_nat_t(ids) else {
            return;
        };
        let spi_i = msg.header.spi_i;
        if msg.header.spi_r == 0 && self.sas.contains_key(&spi_i) {
            return;
        }
        if self.sas.len() >= MAX_REMEMBERED_SAS && !self.sas.contains_key(&spi_i) {
            self.sas.clear();
        }
        self.sas.insert(spi_i, version.uses_draft_natd_numbering());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        decode_hex(s)
    }

    #[test]
    fn digests_match_the_published_ids() {
        assert_eq!(
            nat_t(&h("4a131c81070358455c5728f20e95452f")),
            Some(NatT::Rfc3947)
        );
        assert_eq!(
            name(&h("90cb80913ebb696e086381b5ec427b1f")),
            Some("draft-ietf-ipsec-nat-t-ike-02 (trailing newline)")
        );
        assert_eq!(name(&h("09002689dfd6b712")), Some("XAUTH"));
        assert_eq!(
            name(&h("afcad71368a1f1c96b8696fc77570100")),
            Some("RFC 3706 DPD")
        );
        assert_eq!(
            name(&h("12f5f28c457168a9702d9fe274cc0100")),
            Some("Cisco Unity")
        );
        assert_eq!(
            name(&h("882fe56d6fd20dbc2251613b2ebe5beb")),
            Some("strongSwan")
        );
    }

    #[test]
    fn microsoft_versions_and_prefixes() {
        let base = "1e2b516905991c7d7c96fcbfb587e461";
        assert_eq!(name(&h(&format!("{base}00000002"))), Some("Windows 2000"));
        assert_eq!(name(&h(&format!("{base}00000009"))), Some("Windows 8"));
        assert_eq!(
            name(&h(&format!("{base}00000042"))),
            Some("MS NT5 ISAKMPOAKLEY")
        );
        assert_eq!(
            name(&h("4048b7d56ebce88525e7de7f00d6c2d380000000")),
            Some("Cisco Fragmentation")
        );
    }

    #[test]
    fn unknown_and_short_ids_have_no_name() {
        assert_eq!(name(&[0u8; 16]), None);
        assert_eq!(name(&[]), None);
        assert_eq!(name(&h("1e2b5169")), None);
        assert_eq!(name(&h("4a131c81070358455c5728f20e95452f00")), None);
    }

    #[test]
    fn draft_natd_numbering_is_drafts_4_to_8() {
        let d = |n: u8| Md5::digest(format!("draft-ietf-ipsec-nat-t-ike-0{n}")).to_vec();
        assert!(!is_draft_natd(&d(3)));
        assert!(is_draft_natd(&d(4)));
        assert!(is_draft_natd(&d(8)));
        assert!(!is_draft_natd(&d(9)));
        assert!(!is_draft_natd(&h("4a131c81070358455c5728f20e95452f")));
        let rfc = h("4a131c81070358455c5728f20e95452f");
        let d7 = d(7);
        assert_eq!(
            best_nat_t([d7.as_slice(), rfc.as_slice()]),
            Some(NatT::Rfc3947)
        );
        assert_eq!(
            best_nat_t([d(2).as_slice(), d7.as_slice()]),
            Some(NatT::IetfDraft(7))
        );
    }

    fn message(spi_i: u64, spi_r: u64, vids: &[Vec<u8>]) -> (IkeMessage, Vec<u8>) {
        let header = super::super::IkeHeader {
            spi_i,
            spi_r,
            next_payload: 13,
            major: 1,
            minor: 0,
            exchange_type: 2,
            flags: 0,
            message_id: 0,
            length: 28,
        };
        let payloads = vids
            .iter()
            .map(|id| super::super::Payload {
                payload_type: 13,
                critical: false,
                body: PayloadBody::VendorId {
                    id: id.clone(),
                    name: name(id),
                },
                decrypted: false,
            })
            .collect();
        let mut raw = spi_i.to_be_bytes().to_vec();
        raw.extend_from_slice(&spi_r.to_be_bytes());
        raw.extend_from_slice(&[0, 0x10, 2, 0, 0, 0, 0, 0, 0, 0, 0, 28]);
        let msg = IkeMessage {
            header,
            payloads,
            error: None,
        };
        (msg, raw)
    }

    #[test]
    fn memory_follows_the_responders_choice() {
        let d7 = Md5::digest("draft-ietf-ipsec-nat-t-ike-07").to_vec();
        let rfc = h("4a131c81070358455c5728f20e95452f");
        let mut mem = DraftNatdMemory::default();
        let (mm1, raw1) = message(1, 0, std::slice::from_ref(&d7));
        assert!(!mem.context(&raw1).draft_natd);
        mem.observe(&mm1);
        assert!(
            mem.context(&raw1).draft_natd,
            "the offer alone sets a tentative numbering"
        );
        let (mm2, raw2) = message(1, 2, std::slice::from_ref(&rfc));
        mem.observe(&mm2);
        assert!(
            !mem.context(&raw2).draft_natd,
            "the responder chose RFC 3947"
        );
        let (retransmitted_mm1, _) = message(1, 0, &[d7]);
        mem.observe(&retransmitted_mm1);
        assert!(
            !mem.context(&raw2).draft_natd,
            "an offer does not override the choice"
        );
        let (_, other_sa) = message(9, 0, &[]);
        assert!(!mem.context(&other_sa).draft_natd);
    }

    #[test]
    fn memory_is_bounded() {
        let d5 = Md5::digest("draft-ietf-ipsec-nat-t-ike-05").to_vec();
        let mut mem = DraftNatdMemory::default();
        for spi in 0..(MAX_REMEMBERED_SAS as u64 + 10) {
            mem.observe(&message(spi, 1, std::slice::from_ref(&d5)).0);
            assert!(mem.sas.len() <= MAX_REMEMBERED_SAS);
        }
    }
}
