//! A glance at a frame that has not been decoded yet: which table entry it will look up.
//!
//! For prefetching only (see [`crate::engine::Engine::prefetch`]): the common layouts are
//! read at fixed offsets (Ethernet with at most one VLAN tag or a bare IP header, IPv4
//! without fragmentation, IPv6 without extension headers; ESP, AH, ESP in UDP 4500 and
//! IKE on UDP 500/4500). Anything else, and anything short, is `None`; a wrong answer
//! costs a wasted prefetch, never a wrong result, since [`super::Decoder`] decodes every
//! frame in full afterwards.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::LinkType;

/// What a frame will be looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Glance<'a> {
    /// An ESP or AH packet.
    Ipsec {
        /// Outer source address.
        src: IpAddr,
        /// Outer destination address.
        dst: IpAddr,
        /// Security Parameters Index.
        spi: u32,
        /// `true` for AH.
        ah: bool,
    },
    /// An IKE message, from its header on.
    Ike {
        /// Outer source address.
        src: IpAddr,
        /// Outer destination address.
        dst: IpAddr,
        /// The message bytes (possibly cut short by the capture).
        message: &'a [u8],
    },
}

/// Reads what `frame` (of link type `link`) will be looked up by, when it is one of the
/// common layouts.
pub fn glance(link: LinkType, frame: &[u8]) -> Option<Glance<'_>> {
    let ip = match link {
        LinkType::Ethernet => ethernet_payload(frame)?,
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => frame,
        _ => return None,
    };
    match ip.first()? >> 4 {
        4 => ipv4(ip),
        6 => ipv6(ip),
        _ => None,
    }
}

fn ethernet_payload(frame: &[u8]) -> Option<&[u8]> {
    let ethertype = be16(frame, 12)?;
    match ethertype {
        0x0800 | 0x86dd => frame.get(14..),
        0x8100 => frame.get(18..),
        _ => None,
    }
}

fn ipv4(ip: &[u8]) -> Option<Glance<'_>> {
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    // More fragments, or a fragment offset: reassembly decides what it is.
    if be16(ip, 6)? & 0x3fff != 0 || ihl < 20 {
        return None;
    }
    let addr = |at: usize| -> Option<IpAddr> {
        let b: [u8; 4] = ip.get(at..at + 4)?.try_into().ok()?;
        Some(IpAddr::V4(Ipv4Addr::from(b)))
    };
    upper(*ip.get(9)?, addr(12)?, addr(16)?, ip.get(ihl..)?)
}

fn ipv6(ip: &[u8]) -> Option<Glance<'_>> {
    let addr = |at: usize| -> Option<IpAddr> {
        let b: [u8; 16] = ip.get(at..at + 16)?.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(b)))
    };
    upper(*ip.get(6)?, addr(8)?, addr(24)?, ip.get(40..)?)
}

fn upper(protocol: u8, src: IpAddr, dst: IpAddr, payload: &[u8]) -> Option<Glance<'_>> {
    match protocol {
        50 => Some(Glance::Ipsec {
            src,
            dst,
            spi: be32(payload, 0)?,
            ah: false,
        }),
        51 => Some(Glance::Ipsec {
            src,
            dst,
            spi: be32(payload, 4)?,
            ah: true,
        }),
        17 => udp(src, dst, payload),
        _ => None,
    }
}

fn udp(src: IpAddr, dst: IpAddr, udp: &[u8]) -> Option<Glance<'_>> {
    let (sport, dport) = (be16(udp, 0)?, be16(udp, 2)?);
    let body = udp.get(8..)?;
    if sport == 4500 || dport == 4500 {
        // RFC 3948 §2.2: four zero bytes (the non-ESP marker) precede IKE; anything else
        // is an ESP header.
        return match be32(body, 0)? {
            0 => Some(Glance::Ike {
                src,
                dst,
                message: body.get(4..)?,
            }),
            spi => Some(Glance::Ipsec {
                src,
                dst,
                spi,
                ah: false,
            }),
        };
    }
    (sport == 500 || dport == 500).then_some(Glance::Ike {
        src,
        dst,
        message: body,
    })
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth_ipv4(protocol: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, protocol, 0, 0]);
        f.extend_from_slice(&[192, 0, 2, 1, 198, 51, 100, 2]);
        f.extend_from_slice(payload);
        f
    }

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn esp_and_ah_show_their_spi() {
        let f = eth_ipv4(50, &[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1]);
        assert_eq!(
            glance(LinkType::Ethernet, &f),
            Some(Glance::Ipsec {
                src: v4("192.0.2.1"),
                dst: v4("198.51.100.2"),
                spi: 0xdead_beef,
                ah: false
            })
        );
        let f = eth_ipv4(51, &[50, 4, 0, 0, 0, 0, 0x12, 0x34, 0, 0, 0, 1]);
        assert!(matches!(
            glance(LinkType::Ethernet, &f),
            Some(Glance::Ipsec {
                spi: 0x1234,
                ah: true,
                ..
            })
        ));
    }

    #[test]
    fn udp_4500_tells_ike_from_esp_by_the_marker() {
        let ike = eth_ipv4(17, &[0x11, 0x94, 0x11, 0x94, 0, 20, 0, 0, 0, 0, 0, 0, 7, 7]);
        assert!(matches!(
            glance(LinkType::Ethernet, &ike),
            Some(Glance::Ike {
                message: [7, 7],
                ..
            })
        ));
        let esp = eth_ipv4(17, &[0x11, 0x94, 0x11, 0x94, 0, 20, 0, 0, 0, 0, 0, 9, 0, 0]);
        assert!(matches!(
            glance(LinkType::Ethernet, &esp),
            Some(Glance::Ipsec {
                spi: 9,
                ah: false,
                ..
            })
        ));
        let ike500 = eth_ipv4(17, &[0x01, 0xf4, 0x01, 0xf4, 0, 10, 0, 0, 5, 5]);
        assert!(matches!(
            glance(LinkType::Ethernet, &ike500),
            Some(Glance::Ike {
                message: [5, 5],
                ..
            })
        ));
    }

    #[test]
    fn fragments_short_frames_and_other_traffic_are_not_guessed() {
        let mut frag = eth_ipv4(50, &[0, 0, 0, 1]);
        frag[14 + 6] = 0x20; // more fragments
        assert_eq!(glance(LinkType::Ethernet, &frag), None);
        assert_eq!(glance(LinkType::Ethernet, &[0u8; 20]), None);
        let tcp = eth_ipv4(6, &[0; 20]);
        assert_eq!(glance(LinkType::Ethernet, &tcp), None);
        assert_eq!(glance(LinkType::LinuxSll, &tcp), None);
        let short = eth_ipv4(50, &[1, 2]);
        assert_eq!(glance(LinkType::Ethernet, &short), None);
    }
}
