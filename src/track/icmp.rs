//! The part of an ICMP error the tracker needs: which IKE SA's request it quotes.
//!
//! An ICMP error quotes the IP header and at least the first 8 bytes after it (RFC 792;
//! RFC 1812 §4.3.2.3 and Linux quote more, RFC 4443 §3.1 as much as fits). The UDP header
//! gives the endpoints; when enough follows, the IKE header gives the initiator SPI.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::IcmpError;

/// What an ICMP error quotes of an IKE message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuotedIke {
    /// Source of the quoted packet (the sender of the request).
    pub src: IpAddr,
    /// Destination of the quoted packet (the peer that could not be reached).
    pub dst: IpAddr,
    /// Initiator SPI, when the quote reaches it.
    pub spi_i: Option<u64>,
    /// IKE major version (2 when the quote ends before the version byte).
    pub version: u8,
}

/// Destination unreachable (ICMP type 3 except "fragmentation needed", ICMPv6 type 1).
pub(crate) fn is_unreachable(icmp: &IcmpError<'_>) -> bool {
    if icmp.v6 {
        icmp.icmp_type == 1
    } else {
        icmp.icmp_type == 3 && icmp.code != 4
    }
}

/// Reads the quoted IP and UDP headers and, when present, the IKE header.
pub(crate) fn quoted_ike(quoted: &[u8]) -> Option<QuotedIke> {
    let (src, dst, proto, rest) = ip_header(quoted)?;
    if proto != 17 {
        return None;
    }
    let udp = rest.get(..8)?;
    let sport = u16::from_be_bytes([udp[0], udp[1]]);
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    if sport != 500 && dport != 500 && sport != 4500 && dport != 4500 {
        return None;
    }
    let mut ike = rest.get(8..).unwrap_or(&[]);
    // On 4500 IKE follows a 4-byte non-ESP marker (RFC 3948 §2.2).
    if (sport == 4500 || dport == 4500) && ike.get(..4) == Some(&[0, 0, 0, 0][..]) {
        ike = &ike[4..];
    }
    let spi_i = ike
        .get(..8)
        .map(|b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])));
    let version = ike.get(17).map_or(2, |v| v >> 4);
    Some(QuotedIke {
        src,
        dst,
        spi_i,
        version,
    })
}

fn ip_header(b: &[u8]) -> Option<(IpAddr, IpAddr, u8, &[u8])> {
    match b.first()? >> 4 {
        4 => {
            let ihl = usize::from(b[0] & 0x0f) * 4;
            let h = b.get(..20)?;
            let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
            let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
            Some((src.into(), dst.into(), h[9], b.get(ihl.max(20)..)?))
        }
        6 => {
            let h = b.get(..40)?;
            let src: [u8; 16] = h[8..24].try_into().ok()?;
            let dst: [u8; 16] = h[24..40].try_into().ok()?;
            let (s, d) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            Some((s.into(), d.into(), h[6], &b[40..]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote(dport: u16, ike: &[u8]) -> Vec<u8> {
        let mut q = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
        ];
        q.extend_from_slice(&500u16.to_be_bytes());
        q.extend_from_slice(&dport.to_be_bytes());
        q.extend_from_slice(&[0, 0, 0, 0]);
        q.extend_from_slice(ike);
        q
    }

    #[test]
    fn reads_the_initiator_spi_of_a_quoted_request() {
        let mut ike = vec![1, 2, 3, 4, 5, 6, 7, 8];
        ike.extend_from_slice(&[0; 8]);
        ike.extend_from_slice(&[33, 0x20, 34]);
        let q = quoted_ike(&quote(500, &ike)).unwrap();
        assert_eq!(q.spi_i, Some(0x0102030405060708));
        assert_eq!(q.version, 2);
        assert_eq!(q.dst, "192.0.2.2".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_short_quote_still_names_the_endpoints() {
        let q = quoted_ike(&quote(500, &[])).unwrap();
        assert_eq!(q.spi_i, None);
        assert_eq!(q.src, "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn skips_the_non_esp_marker_on_4500() {
        let mut ike = vec![0, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9];
        ike.extend_from_slice(&[0; 10]);
        let q = quoted_ike(&quote(4500, &ike)).unwrap();
        assert_eq!(q.spi_i, Some(0x0909090909090909));
    }

    #[test]
    fn ignores_garbage() {
        assert_eq!(quoted_ike(&[]), None);
        assert_eq!(quoted_ike(&[0x45, 0, 0]), None);
        assert_eq!(quoted_ike(&[0x60; 30]), None);
    }
}
