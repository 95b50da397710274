//! Link-layer headers: Ethernet (802.1Q / QinQ), Linux cooked v1/v2, BSD loopback, raw IP.
//!
//! [`strip`] removes the link header and says which IP version follows. Ethernet is read
//! through `pnet_packet`'s view; the other headers are a protocol field at a fixed offset,
//! read with a checked load.

use pnet_packet::ethernet::EthernetPacket;

use super::esp::{be16, be32};
use super::{DecodeError, LinkType, Reason};

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// VLAN tag EtherTypes: 802.1Q, 802.1ad (QinQ service tag), and the older 0x9100 QinQ.
pub const VLAN_TPIDS: [u16; 3] = [0x8100, 0x88a8, 0x9100];
/// `true` for one of [`VLAN_TPIDS`] (compared in line: every Ethernet frame asks).
#[inline]
const fn is_vlan_tpid(ethertype: u16) -> bool {
    ethertype == VLAN_TPIDS[0] || ethertype == VLAN_TPIDS[1] || ethertype == VLAN_TPIDS[2]
}

/// Most VLAN tags followed before giving up on a frame (real stacks use one or two).
pub const MAX_VLAN_TAGS: usize = 8;

const ETHERNET_HEADER_LEN: usize = 14;
const SLL_HEADER_LEN: usize = 16;
const SLL_PROTOCOL_AT: usize = 14;
const SLL2_HEADER_LEN: usize = 20;
const LOOPBACK_HEADER_LEN: usize = 4;
/// BSD address families: AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD/OpenBSD),
/// 28 (FreeBSD) or 30 (macOS).
const AF_INET: u32 = 2;
const AF_INET6: [u32; 3] = [24, 28, 30];

/// Which network-layer protocol the link header announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// IP of either version: the version nibble decides (raw IP links).
    AnyIp,
}

/// The network-layer part of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L3<'a> {
    /// What the link header said follows.
    pub network: Network,
    /// The bytes after the link header.
    pub bytes: &'a [u8],
    /// Where `bytes` starts in the frame.
    pub offset: usize,
}

/// Strips the link header of `frame`. `Ok(None)` means the frame carries something other
/// than IP (ARP, LLC, an unknown address family): not an error, just not ours.
#[inline]
pub fn strip(link: LinkType, frame: &[u8]) -> Result<Option<L3<'_>>, DecodeError> {
    match link {
        LinkType::Ethernet => ethernet(frame),
        LinkType::LinuxSll => by_ethertype(frame, SLL_HEADER_LEN, SLL_PROTOCOL_AT),
        LinkType::LinuxSll2 => by_ethertype(frame, SLL2_HEADER_LEN, 0),
        LinkType::Null => loopback(frame, host_order_af(frame)),
        LinkType::Loop => loopback(frame, be32(frame, 0)),
        LinkType::Raw => Ok(Some(at(Network::AnyIp, frame, 0))),
        LinkType::Ipv4 => Ok(Some(at(Network::Ipv4, frame, 0))),
        LinkType::Ipv6 => Ok(Some(at(Network::Ipv6, frame, 0))),
        LinkType::Other(_) => Err(DecodeError::new(Reason::UnsupportedLink, 0)),
    }
}

#[inline]
fn at(network: Network, frame: &[u8], offset: usize) -> L3<'_> {
    L3 {
        network,
        bytes: frame.get(offset..).unwrap_or_default(),
        offset,
    }
}

#[inline]
fn network_of(ethertype: u16) -> Option<Network> {
    match ethertype {
        ETHERTYPE_IPV4 => Some(Network::Ipv4),
        ETHERTYPE_IPV6 => Some(Network::Ipv6),
        _ => None,
    }
}

/// Ethernet II, following up to [`MAX_VLAN_TAGS`] 802.1Q/802.1ad tags. Each tag is 4
/// bytes: the TCI, then the EtherType of what follows (IEEE 802.1Q §9).
#[inline]
fn ethernet(frame: &[u8]) -> Result<Option<L3<'_>>, DecodeError> {
    let eth = EthernetPacket::new(frame).ok_or(DecodeError::new(Reason::Truncated, frame.len()))?;
    let mut ethertype = eth.get_ethertype().0;
    let mut offset = ETHERNET_HEADER_LEN;
    for _ in 0..MAX_VLAN_TAGS {
        if !is_vlan_tpid(ethertype) {
            return Ok(network_of(ethertype).map(|n| at(n, frame, offset)));
        }
        ethertype =
            be16(frame, offset + 2).ok_or(DecodeError::new(Reason::Truncated, frame.len()))?;
        offset += 4;
    }
    Ok(None)
}

/// Linux cooked captures: a fixed header with the EtherType at `protocol_at`.
fn by_ethertype(
    frame: &[u8],
    header_len: usize,
    protocol_at: usize,
) -> Result<Option<L3<'_>>, DecodeError> {
    if frame.len() < header_len {
        return Err(DecodeError::new(Reason::Truncated, frame.len()));
    }
    let ethertype = be16(frame, protocol_at).unwrap_or_default();
    Ok(network_of(ethertype).map(|n| at(n, frame, header_len)))
}

/// The NULL link type stores the family in the capturing host's byte order, which need not
/// be ours; the family values are small, so a value with high bits set is byte-swapped.
fn host_order_af(frame: &[u8]) -> Option<u32> {
    let b = frame.get(..LOOPBACK_HEADER_LEN)?;
    let le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    Some(if le > 0xffff { le.swap_bytes() } else { le })
}

fn loopback(frame: &[u8], af: Option<u32>) -> Result<Option<L3<'_>>, DecodeError> {
    let af = af.ok_or(DecodeError::new(Reason::Truncated, frame.len()))?;
    let network = match af {
        AF_INET => Network::Ipv4,
        x if AF_INET6.contains(&x) => Network::Ipv6,
        _ => return Ok(None),
    };
    Ok(Some(at(network, frame, LOOPBACK_HEADER_LEN)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MACS: [u8; 12] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];

    fn eth(tags: &[(u16, u16)], ethertype: u16, body: &[u8]) -> Vec<u8> {
        let mut f = MACS.to_vec();
        for (tpid, tci) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn ethernet_ipv4_and_ipv6() {
        let f = eth(&[], 0x0800, &[0x45, 0]);
        let l3 = strip(LinkType::Ethernet, &f).unwrap().unwrap();
        assert_eq!(
            (l3.network, l3.offset, l3.bytes),
            (Network::Ipv4, 14, &[0x45, 0][..])
        );
        let f = eth(&[], 0x86dd, &[0x60]);
        let l3 = strip(LinkType::Ethernet, &f).unwrap().unwrap();
        assert_eq!((l3.network, l3.offset), (Network::Ipv6, 14));
    }

    #[test]
    fn ethernet_non_ip_is_not_ours() {
        let arp = eth(&[], 0x0806, &[0; 28]);
        assert_eq!(strip(LinkType::Ethernet, &arp).unwrap(), None);
        let llc = eth(&[], 0x0026, &[0; 38]);
        assert_eq!(strip(LinkType::Ethernet, &llc).unwrap(), None);
    }

    #[test]
    fn ethernet_vlan_stacks() {
        for tags in [
            vec![(0x8100, 10)],
            vec![(0x88a8, 100), (0x8100, 10)],
            vec![(0x9100, 100), (0x8100, 10)],
            vec![(0x88a8, 1), (0x9100, 2), (0x8100, 3)],
        ] {
            let f = eth(&tags, 0x0800, &[0x45]);
            let l3 = strip(LinkType::Ethernet, &f).unwrap().unwrap();
            assert_eq!(l3.offset, 14 + 4 * tags.len());
            assert_eq!(l3.network, Network::Ipv4);
        }
    }

    #[test]
    fn ethernet_too_many_tags_is_not_ours() {
        let tags = vec![(0x8100, 1); MAX_VLAN_TAGS + 1];
        let f = eth(&tags, 0x0800, &[0x45]);
        assert_eq!(strip(LinkType::Ethernet, &f).unwrap(), None);
    }

    #[test]
    fn ethernet_truncated_header_and_tag() {
        let f = eth(&[(0x8100, 5)], 0x0800, &[]);
        for n in 0..f.len() {
            let e = strip(LinkType::Ethernet, &f[..n]).unwrap_err();
            assert_eq!(e.reason, Reason::Truncated, "length {n}");
        }
        assert!(strip(LinkType::Ethernet, &f).unwrap().is_some());
    }

    #[test]
    fn linux_cooked_v1_and_v2() {
        let mut sll = vec![0, 4, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
        sll.extend_from_slice(&[0x86, 0xdd, 0x60]);
        let l3 = strip(LinkType::LinuxSll, &sll).unwrap().unwrap();
        assert_eq!(
            (l3.network, l3.offset, l3.bytes),
            (Network::Ipv6, 16, &[0x60][..])
        );
        let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 4, 6];
        sll2.extend_from_slice(&[1, 2, 3, 4, 5, 6, 0, 0, 0x45]);
        let l3 = strip(LinkType::LinuxSll2, &sll2).unwrap().unwrap();
        assert_eq!(
            (l3.network, l3.offset, l3.bytes),
            (Network::Ipv4, 20, &[0x45][..])
        );
        for n in 0..16 {
            assert!(strip(LinkType::LinuxSll, &sll[..n]).is_err());
        }
        for n in 0..20 {
            assert!(strip(LinkType::LinuxSll2, &sll2[..n]).is_err());
        }
        sll[14] = 0x08;
        sll[15] = 0x06;
        assert_eq!(strip(LinkType::LinuxSll, &sll).unwrap(), None);
    }

    #[test]
    fn null_loopback_either_byte_order() {
        for af in [2u32, 24, 28, 30] {
            let want = if af == 2 {
                Network::Ipv4
            } else {
                Network::Ipv6
            };
            for hdr in [af.to_le_bytes(), af.to_be_bytes()] {
                let f = [&hdr[..], &[0x45]].concat();
                let l3 = strip(LinkType::Null, &f).unwrap().unwrap();
                assert_eq!((l3.network, l3.offset), (want, 4));
            }
        }
        assert_eq!(strip(LinkType::Null, &7u32.to_le_bytes()).unwrap(), None);
        assert!(strip(LinkType::Null, &[2, 0, 0]).is_err());
    }

    #[test]
    fn loop_is_network_order() {
        let f = [0, 0, 0, 24, 0x60];
        let l3 = strip(LinkType::Loop, &f).unwrap().unwrap();
        assert_eq!(l3.network, Network::Ipv6);
        assert_eq!(strip(LinkType::Loop, &[24, 0, 0, 0]).unwrap(), None);
        assert!(strip(LinkType::Loop, &[0, 0]).is_err());
    }

    #[test]
    fn raw_and_versioned_links_start_at_zero() {
        for (link, net) in [
            (LinkType::Raw, Network::AnyIp),
            (LinkType::Ipv4, Network::Ipv4),
            (LinkType::Ipv6, Network::Ipv6),
        ] {
            let l3 = strip(link, &[0x45]).unwrap().unwrap();
            assert_eq!((l3.network, l3.offset), (net, 0));
        }
        let e = strip(LinkType::Other(147), &[0; 40]).unwrap_err();
        assert_eq!(e.reason, Reason::UnsupportedLink);
    }
}
