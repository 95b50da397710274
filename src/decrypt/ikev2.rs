//! IKEv2 Encrypted payloads: SK (RFC 7296 §3.14) and its fragments SKF (RFC 7383 §2.5).
//!
//! An SK payload body is IV, ciphertext and ICV. With a separate integrity algorithm the
//! ICV is a truncated HMAC over the whole message up to the ICV (§3.14), keyed with SK_ai
//! or SK_ar; with a combined-mode cipher (RFC 5282) the ICV is the cipher's tag and the
//! associated data is the IKE header and every payload header up to the end of the SK
//! payload's own header. The plaintext ends with padding and a pad-length byte. Each
//! SKF fragment is encrypted and authenticated on its own; the plaintexts are joined in
//! fragment order and the first fragment names the first inner payload.

use crate::keys::Ikev2Keys;

use super::primitive::{decipher, hmac_ok};
use super::DecryptError;

/// IKEv2 payload type SK.
pub(crate) const SK: u8 = 46;
/// IKEv2 payload type SKF.
pub(crate) const SKF: u8 = 53;
/// Most fragments one message may have.
pub const MAX_FRAGMENTS: u16 = 64;
/// Largest reassembled plaintext, in bytes.
pub const MAX_REASSEMBLED: usize = 64 * 1024;
/// Most fragmented messages under reassembly at once.
pub const MAX_PENDING: usize = 16;

/// Where the SK or SKF payload of a message sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sealed {
    /// Offset of the payload's generic header in the message.
    pub offset: usize,
    /// 4 for SK, 8 for SKF (fragment number and total follow the generic header).
    pub header_len: usize,
    /// Offset just past the payload.
    pub end: usize,
    /// The generic header's next-payload field: the first inner payload.
    pub next: u8,
    /// Fragment number and total for SKF.
    pub fragment: Option<(u16, u16)>,
}

/// Finds the SK or SKF payload by walking the generic payload headers from the IKE
/// header's next-payload field. `msg` is the message cut to its announced length.
pub(crate) fn locate(msg: &[u8], first: u8) -> Option<Sealed> {
    let mut next = first;
    let mut off = crate::wire::ike::HEADER_LEN;
    for _ in 0..crate::wire::ike::MAX_PAYLOADS {
        let h = msg.get(off..off.checked_add(4)?)?;
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let end = off
            .checked_add(len)
            .filter(|&e| len >= 4 && e <= msg.len())?;
        match next {
            SK => return Some(sealed(off, 4, end, h[0], None)),
            SKF => {
                let f = msg.get(off + 4..off + 8).filter(|_| len >= 8)?;
                let number = u16::from_be_bytes([f[0], f[1]]);
                let total = u16::from_be_bytes([f[2], f[3]]);
                return Some(sealed(off, 8, end, h[0], Some((number, total))));
            }
            0 => return None,
            _ => {}
        }
        next = h[0];
        off = end;
    }
    None
}

fn sealed(
    offset: usize,
    header_len: usize,
    end: usize,
    next: u8,
    fragment: Option<(u16, u16)>,
) -> Sealed {
    Sealed {
        offset,
        header_len,
        end,
        next,
        fragment,
    }
}

/// What opening an SK payload gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Opened {
    /// An ICV (HMAC or combined-mode tag) was checked and matched.
    pub verified: bool,
    /// Offset in the message of the first plaintext byte (for error offsets).
    pub base: usize,
}

/// Decrypts the SK/SKF payload of `msg` into `out` (the inner payloads, padding
/// removed). `None` when the table has no keys for the direction the message travels
/// (`from_initiator`: its I flag).
pub(crate) fn open(
    keys: &Ikev2Keys,
    msg: &[u8],
    s: &Sealed,
    from_initiator: bool,
    out: &mut Vec<u8>,
) -> Option<Result<Opened, DecryptError>> {
    let dir = keys.direction(from_initiator)?;
    let cipher = keys.cipher;
    let icv_len = cipher.aead_icv_len().unwrap_or(keys.integrity.icv_len);
    let body_at = s.offset + s.header_len;
    let iv_len = cipher.iv_len();
    let Some(body) = msg
        .get(body_at..s.end)
        .filter(|b| b.len() > iv_len + icv_len)
    else {
        return Some(Err(DecryptError::BadLength));
    };
    let (iv, rest) = body.split_at(iv_len);
    let (ct, icv) = rest.split_at(rest.len() - icv_len);
    if let Some(mac) = keys.integrity.mac {
        let covered = &msg[..s.end - icv_len];
        if !hmac_ok(mac, dir.integrity.expose(), &[covered], icv) {
            return Some(Err(DecryptError::IcvMismatch));
        }
    }
    out.clear();
    out.extend_from_slice(ct);
    let key = dir.encryption.expose();
    let aad = &msg[..body_at];
    let result = decipher(cipher, key, iv, aad, out, icv).and_then(|()| strip_padding(out));
    let verified = keys.integrity.mac.is_some() || cipher.aead_icv_len().is_some();
    Some(result.map(|()| Opened {
        verified,
        base: body_at + iv_len,
    }))
}

/// Removes the padding and the pad-length byte that end every SK plaintext (§3.14).
fn strip_padding(buf: &mut Vec<u8>) -> Result<(), DecryptError> {
    let pad = usize::from(*buf.last().ok_or(DecryptError::BadPadding)?);
    if pad + 1 > buf.len() {
        return Err(DecryptError::BadPadding);
    }
    buf.truncate(buf.len() - pad - 1);
    Ok(())
}

/// Identifies one fragmented message: SPIs, message ID and the flags byte (which side
/// sent it and whether it is a response).
pub(crate) type FragmentKey = (u64, u64, u32, u8);

/// A message whose fragments are arriving.
#[derive(Debug)]
struct Pending {
    key: FragmentKey,
    first_payload: u8,
    parts: Vec<Option<Vec<u8>>>,
    bytes: usize,
    verified: bool,
}

/// A complete reassembled plaintext.
#[derive(Debug)]
pub(crate) struct Reassembled {
    /// The first inner payload type (from fragment 1).
    pub first_payload: u8,
    /// The joined plaintext.
    pub data: Vec<u8>,
    /// Every fragment's ICV was checked.
    pub verified: bool,
}

/// The bounded table of messages under reassembly (RFC 7383 §2.6).
#[derive(Debug, Default)]
pub(crate) struct Fragments {
    pending: Vec<Pending>,
}

impl Fragments {
    /// Adds the decrypted plaintext of fragment `number` of `total`. Returns the whole
    /// plaintext when this fragment completed the message. Fragments beyond the limits
    /// (too many, too large, inconsistent totals) are dropped.
    pub(crate) fn add(
        &mut self,
        key: FragmentKey,
        (number, total): (u16, u16),
        next: u8,
        plaintext: &[u8],
        verified: bool,
    ) -> Option<Reassembled> {
        if number == 0 || number > total || total > MAX_FRAGMENTS {
            return None;
        }
        let i = self.slot(key, total)?;
        let p = &mut self.pending[i];
        let part = p.parts.get_mut(usize::from(number - 1))?;
        if part.is_some() || p.bytes + plaintext.len() > MAX_REASSEMBLED {
            return None;
        }
        *part = Some(plaintext.to_vec());
        p.bytes += plaintext.len();
        p.verified &= verified;
        if number == 1 {
            p.first_payload = next;
        }
        if p.parts.iter().any(Option::is_none) {
            return None;
        }
        let done = self.pending.remove(i);
        let data = done.parts.into_iter().flatten().flatten().collect();
        Some(Reassembled {
            first_payload: done.first_payload,
            data,
            verified: done.verified,
        })
    }

    /// The entry for `key`, created (evicting the oldest when full) if new; `None` when
    /// an existing entry disagrees about the total.
    fn slot(&mut self, key: FragmentKey, total: u16) -> Option<usize> {
        if let Some(i) = self.pending.iter().position(|p| p.key == key) {
            return (self.pending[i].parts.len() == usize::from(total)).then_some(i);
        }
        if self.pending.len() >= MAX_PENDING {
            self.pending.remove(0);
        }
        self.pending.push(Pending {
            key,
            first_payload: 0,
            parts: vec![None; usize::from(total)],
            bytes: 0,
            verified: true,
        });
        Some(self.pending.len() - 1)
    }

    /// Messages under reassembly.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }
}
