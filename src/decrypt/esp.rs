//! ESP payloads (RFC 4303 §2): IV, ciphertext, padding, pad length, next header, ICV.
//!
//! The ICV of a separate integrity algorithm is a truncated HMAC over the ESP header,
//! the IV and the ciphertext (§3.3.2); a combined-mode cipher's tag covers the plaintext
//! with the SPI and sequence number as associated data (RFC 4106 §5).
//!
//! When the ICV cannot be checked (NULL authentication, "ANY n bit" entries, tcpdump's
//! `-hmac96` secrets), a wrong key would go unnoticed; the trailer and the inner header
//! are then checked instead (the default padding 1, 2, 3, ... of §2.4, a known next
//! header, and an inner IP or transport header whose length fields fit), so that a wrong
//! key reads as "not decrypted" rather than as garbage.

use crate::keys::EspSaKeys;
use crate::wire::EspPacket;

use super::primitive::{decipher, hmac_ok};
use super::DecryptError;

/// What a decrypted ESP packet holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Opened {
    /// The next-header field of the trailer (4 IPv4 and 41 IPv6 in tunnel mode; the
    /// transport protocol in transport mode).
    pub next_header: u8,
    /// Bytes of inner payload (at the start of the scratch buffer).
    pub len: usize,
    /// An ICV was checked and matched.
    pub verified: bool,
}

/// Decrypts `esp` with `keys` into `out`.
pub(crate) fn open(
    keys: &EspSaKeys,
    esp: &EspPacket<'_>,
    out: &mut Vec<u8>,
) -> Result<Opened, DecryptError> {
    let cipher = keys.cipher;
    let icv_len = cipher.aead_icv_len().unwrap_or(keys.integrity.icv_len);
    let iv_len = cipher.iv_len();
    let p = esp.payload;
    if p.len() < iv_len + icv_len + 2 {
        return Err(DecryptError::BadLength);
    }
    let header = esp_header(esp);
    let (iv, rest) = p.split_at(iv_len);
    let (ct, icv) = rest.split_at(rest.len() - icv_len);
    if let Some(mac) = keys.integrity.mac {
        let covered = &p[..p.len() - icv_len];
        if !hmac_ok(mac, keys.auth_key.expose(), &[&header, covered], icv) {
            return Err(DecryptError::IcvMismatch);
        }
    }
    out.clear();
    out.extend_from_slice(ct);
    decipher(cipher, keys.enc_key.expose(), iv, &header, out, icv)?;
    let verified = keys.integrity.mac.is_some() || cipher.aead_icv_len().is_some();
    let (next_header, len, default_padding) = trailer(out, verified)?;
    // Without an ICV the inner packet must look right. With one it vouches for the
    // integrity key only: a wrong encryption key beside the right integrity key (keys
    // copied from the wrong line) verifies and yields noise, so the plaintext must still
    // end in RFC 4303's default padding or carry a recognisable inner packet.
    let plausible = inner_plausible(next_header, &out[..len]);
    let padded = default_padding && out.len() - len > 2;
    if !(plausible || verified && padded) {
        return Err(DecryptError::BadPlaintext);
    }
    Ok(Opened {
        next_header,
        len,
        verified,
    })
}

/// The 8 bytes of the ESP header.
fn esp_header(esp: &EspPacket<'_>) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&esp.spi.to_be_bytes());
    h[4..].copy_from_slice(&esp.seq.to_be_bytes());
    h
}

/// The next header and the length of the inner packet that end the plaintext, and
/// whether the padding is the default 1, 2, 3, ...; it must be when nothing else vouches
/// for the key.
fn trailer(buf: &[u8], verified: bool) -> Result<(u8, usize, bool), DecryptError> {
    let n = buf.len();
    let (pad, next) = (usize::from(buf[n - 2]), buf[n - 1]);
    if pad + 2 > n {
        return Err(DecryptError::BadPadding);
    }
    let padding = &buf[n - 2 - pad..n - 2];
    let default = padding
        .iter()
        .enumerate()
        .all(|(i, &b)| usize::from(b) == i + 1);
    if !verified && !default {
        return Err(DecryptError::BadPadding);
    }
    Ok((next, n - 2 - pad, default))
}

/// A next header and inner packet that a correct decryption would give.
fn inner_plausible(next_header: u8, inner: &[u8]) -> bool {
    let be16 = |at: usize| {
        inner
            .get(at..at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    };
    match next_header {
        4 => {
            inner.first().is_some_and(|b| b >> 4 == 4 && b & 0x0f >= 5)
                && be16(2) == Some(inner.len())
        }
        41 => {
            inner.first().is_some_and(|b| b >> 4 == 6)
                && be16(4).map(|l| l + 40) == Some(inner.len())
        }
        17 => be16(4) == Some(inner.len()),
        6 => inner.get(12).is_some_and(|b| usize::from(b >> 4) * 4 >= 20),
        // ICMP, ICMPv6, GRE, and "no next header" (a dummy packet, RFC 4303 §2.6).
        1 | 58 | 47 | 59 => true,
        _ => false,
    }
}
