//! ESP (RFC 4303) and AH (RFC 4302) fixed headers.
//!
//! Both are tiny fixed layouts, read with two checked 4-byte loads; `pnet_packet` has no
//! view for either.

use super::{Addrs, AhPacket, DecodeError, Encap, EspPacket, Reason};

/// Length of the ESP header: SPI and sequence number (RFC 4303 §2).
pub const ESP_HEADER_LEN: usize = 8;

/// Length of the fixed part of the AH header, before the ICV (RFC 4302 §2).
pub const AH_FIXED_LEN: usize = 12;

/// Reads a big-endian `u32` at `at`, or `None` past the end.
pub(crate) fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a big-endian `u16` at `at`, or `None` past the end.
pub(crate) fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Decodes an ESP header. `offset` is where `bytes` starts in the frame (for errors).
///
/// SPI 0 is reserved and never sent (RFC 4303 §2.1), so a packet carrying it is rejected
/// as [`Reason::BadIpsecHeader`]; on UDP 4500 a zero SPI is the non-ESP marker instead.
#[inline]
pub fn parse_esp(
    bytes: &[u8],
    addrs: Addrs,
    encap: Encap,
    offset: usize,
) -> Result<EspPacket<'_>, DecodeError> {
    let bad = DecodeError::new(Reason::BadIpsecHeader, offset);
    let (Some(spi), Some(seq)) = (be32(bytes, 0), be32(bytes, 4)) else {
        return Err(bad);
    };
    if spi == 0 {
        return Err(bad);
    }
    Ok(EspPacket {
        addrs,
        encap,
        spi,
        seq,
        payload: bytes.get(ESP_HEADER_LEN..).unwrap_or_default(),
    })
}

/// Decodes an AH header and splits off its ICV and the protected payload.
///
/// The header length is `(payload_len + 2) * 4` bytes (RFC 4302 §2.2); a value that makes
/// it shorter than the fixed part is [`Reason::BadIpsecHeader`]. When the header runs past
/// the bytes at hand, `complete` tells a cut capture ([`Reason::Truncated`]) from a
/// packet that lies about its length. `lenient` (for packets quoted in ICMP errors) keeps
/// whatever ICV bytes there are instead.
pub fn parse_ah(
    bytes: &[u8],
    addrs: Addrs,
    offset: usize,
    complete: bool,
    lenient: bool,
) -> Result<AhPacket<'_>, DecodeError> {
    let (Some(&next_header), Some(&len_words), Some(spi), Some(seq)) =
        (bytes.first(), bytes.get(1), be32(bytes, 4), be32(bytes, 8))
    else {
        return Err(DecodeError::new(Reason::BadIpsecHeader, offset));
    };
    let header_len = (usize::from(len_words) + 2) * 4;
    if header_len < AH_FIXED_LEN {
        return Err(DecodeError::new(Reason::BadIpsecHeader, offset + 1));
    }
    let header_len = match bytes.len() >= header_len {
        true => header_len,
        false if lenient => bytes.len(),
        false if complete => return Err(DecodeError::new(Reason::BadIpsecHeader, offset + 1)),
        false => return Err(DecodeError::new(Reason::Truncated, offset + bytes.len())),
    };
    Ok(AhPacket {
        addrs,
        next_header,
        spi,
        seq,
        icv: bytes.get(AH_FIXED_LEN..header_len).unwrap_or_default(),
        payload: bytes.get(header_len..).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn addrs() -> Addrs {
        Addrs {
            src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
            ports: None,
        }
    }

    #[test]
    fn esp_parses_spi_seq_payload() {
        let b = [0xc0, 0x01, 0x02, 0x03, 0, 0, 0, 7, 0xaa, 0xbb];
        let esp = parse_esp(&b, addrs(), Encap::None, 34).unwrap();
        assert_eq!(esp.spi, 0xc001_0203);
        assert_eq!(esp.seq, 7);
        assert_eq!(esp.payload, &[0xaa, 0xbb]);
        assert_eq!(esp.encap, Encap::None);
    }

    #[test]
    fn esp_header_only_has_empty_payload() {
        let b = [0, 0, 1, 0, 0, 0, 0, 1];
        let esp = parse_esp(&b, addrs(), Encap::Udp, 0).unwrap();
        assert_eq!((esp.spi, esp.seq, esp.payload.len()), (256, 1, 0));
    }

    #[test]
    fn esp_every_short_length_is_rejected() {
        let b = [1u8; 8];
        for n in 0..8 {
            let e = parse_esp(&b[..n], addrs(), Encap::None, 20).unwrap_err();
            assert_eq!(e, DecodeError::new(Reason::BadIpsecHeader, 20));
        }
    }

    #[test]
    fn esp_spi_zero_is_rejected() {
        let b = [0, 0, 0, 0, 0, 0, 0, 1, 9];
        assert!(parse_esp(&b, addrs(), Encap::None, 0).is_err());
    }

    /// AH with a 12-byte ICV (HMAC-SHA1-96): payload length field (12 + 12) / 4 - 2 = 4.
    const AH96: [u8; 26] = [
        6, 4, 0, 0, 0, 0, 0x10, 0x01, 0, 0, 0, 3, // next TCP, len 4, SPI 0x1001, seq 3
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, // ICV
        0xde, 0xad,
    ];

    #[test]
    fn ah_parses_fields_icv_and_payload() {
        let ah = parse_ah(&AH96, addrs(), 20, true, false).unwrap();
        assert_eq!((ah.next_header, ah.spi, ah.seq), (6, 0x1001, 3));
        assert_eq!(ah.icv, &AH96[12..24]);
        assert_eq!(ah.payload, &[0xde, 0xad]);
    }

    #[test]
    fn ah_length_below_fixed_part_is_bad() {
        let mut b = AH96;
        b[1] = 0;
        let e = parse_ah(&b, addrs(), 20, true, false).unwrap_err();
        assert_eq!(e, DecodeError::new(Reason::BadIpsecHeader, 21));
    }

    #[test]
    fn ah_minimal_header_has_empty_icv() {
        let b = [17, 1, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1];
        let ah = parse_ah(&b, addrs(), 0, true, false).unwrap();
        assert!(ah.icv.is_empty() && ah.payload.is_empty());
    }

    #[test]
    fn ah_header_past_the_end() {
        let b = &AH96[..20];
        let cut = parse_ah(b, addrs(), 0, false, false).unwrap_err();
        assert_eq!(cut.reason, Reason::Truncated);
        let lie = parse_ah(b, addrs(), 0, true, false).unwrap_err();
        assert_eq!(lie.reason, Reason::BadIpsecHeader);
        let quoted = parse_ah(b, addrs(), 0, false, true).unwrap();
        assert_eq!(quoted.icv, &AH96[12..20]);
    }

    #[test]
    fn ah_every_short_fixed_part_is_rejected() {
        for n in 0..AH_FIXED_LEN {
            let e = parse_ah(&AH96[..n], addrs(), 0, true, false).unwrap_err();
            assert_eq!(e.reason, Reason::BadIpsecHeader);
        }
    }

    #[test]
    fn be_readers_stop_at_the_end() {
        assert_eq!(be16(&[1, 2], 0), Some(0x0102));
        assert_eq!(be16(&[1, 2], 1), None);
        assert_eq!(be32(&[1, 2, 3], 0), None);
        assert_eq!(be32(&[0; 4], usize::MAX), None);
    }
}
