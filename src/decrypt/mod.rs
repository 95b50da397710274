//! Decrypting IKEv2 SK payloads, IKEv1 encrypted messages and ESP with the keys of a
//! [`KeyTable`].
//!
//! The [`Decryptor`] sits beside the frame decoder: the engine hands it each IKE message
//! after the cleartext parse, and each ESP packet after the header decode. Decrypted IKE
//! payloads go through the same decoders as cleartext ones and are appended to the
//! message marked [`decrypted`](crate::wire::ike::Payload::decrypted); an ESP plaintext
//! is lent out of a scratch buffer that is reused from packet to packet.
//!
//! Nothing is guessed: a message or packet whose ICV fails, or (where there is no ICV)
//! whose plaintext does not parse, is reported as a [`DecryptError`] and contributes
//! nothing. State is bounded: IKEv1 IV chains exist only for cookies that have a key,
//! with a bounded number of message IDs each, and IKEv2 fragment reassembly holds at
//! most [`ikev2::MAX_PENDING`] messages of at most [`ikev2::MAX_FRAGMENTS`] fragments.

mod esp;
mod ikev1;
mod ikev2;
mod primitive;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::keys::KeyTable;
use crate::wire::ike::{self, IkeMessage, ParseContext, PayloadBody};
use crate::wire::{Addrs, EspPacket};

pub use ikev2::{MAX_FRAGMENTS, MAX_PENDING, MAX_REASSEMBLED};

/// Why a message or packet for which a key was given did not decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DecryptError {
    /// The ICV (HMAC or combined-mode tag) does not match: wrong key, or damaged.
    IcvMismatch,
    /// Shorter than IV and ICV, or not a whole number of cipher blocks.
    BadLength,
    /// The pad length or padding of the plaintext is impossible.
    BadPadding,
    /// The plaintext does not parse: a wrong key or IV where no ICV could tell, or a
    /// wrong encryption key beside a right integrity key.
    BadPlaintext,
    /// IKEv1: the IV cannot be derived (the chosen proposal or a KE payload of phase 1
    /// was not captured).
    NoIv,
    /// The negotiated or tabled algorithm is not one this build decrypts.
    UnsupportedAlgorithm,
    /// The key's length does not fit the algorithm.
    KeyLength,
}

impl DecryptError {
    /// Stable lower-case name for JSON and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DecryptError::IcvMismatch => "icv-mismatch",
            DecryptError::BadLength => "bad-length",
            DecryptError::BadPadding => "bad-padding",
            DecryptError::BadPlaintext => "bad-plaintext",
            DecryptError::NoIv => "no-iv",
            DecryptError::UnsupportedAlgorithm => "unsupported-algorithm",
            DecryptError::KeyLength => "key-length",
        }
    }

    /// `true` when the failure is an integrity failure ("not authenticated", in
    /// IPSecMon's words); every other failure is "not decrypted".
    pub fn is_authentication(self) -> bool {
        self == DecryptError::IcvMismatch
    }
}

impl fmt::Display for DecryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What decryption made of one IKE message that a key was given for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IkeDecrypt {
    /// The payloads inside were recovered and appended to the message. `verified` when
    /// an ICV proved the key (IKEv2 with an integrity algorithm or a combined-mode
    /// cipher); IKEv1 has no ICV, and there the payloads parsing cleanly is the proof.
    Decrypted {
        /// An ICV was checked.
        verified: bool,
    },
    /// One fragment (RFC 7383) decrypted and is held until its message is complete.
    FragmentStored {
        /// Its ICV was checked.
        verified: bool,
    },
    /// The message did not decrypt.
    Failed(DecryptError),
}

impl IkeDecrypt {
    /// The outcome as the tracker counts it.
    pub fn outcome(self) -> Outcome {
        match self {
            IkeDecrypt::Decrypted { verified } | IkeDecrypt::FragmentStored { verified } => {
                Outcome::Ok { verified }
            }
            IkeDecrypt::Failed(e) => Outcome::Failed(e),
        }
    }
}

/// Success or failure of one decryption, for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Decrypted; `verified` when an ICV was checked.
    Ok {
        /// An ICV was checked.
        verified: bool,
    },
    /// Not decrypted, and why.
    Failed(DecryptError),
}

/// A decrypted ESP packet: the trailer's next header and the inner packet, borrowed from
/// the decryptor's scratch buffer until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspPlain<'a> {
    /// 4 (IPv4) or 41 (IPv6) in tunnel mode, the transport protocol in transport mode.
    pub next_header: u8,
    /// The inner packet or transport segment.
    pub inner: &'a [u8],
    /// An ICV was checked.
    pub verified: bool,
}

impl EspPlain<'_> {
    /// `true` in transport mode with TCP or UDP inside: its checksum covers the outer
    /// addresses (the NAT evidence of RFC 3948 §3.1).
    pub fn is_transport_segment(&self) -> bool {
        matches!(self.next_header, 6 | 17)
    }

    /// A summary of the inner packet for the JSON output.
    pub fn summary(&self) -> InnerSummary {
        InnerSummary::of(self.next_header, self.inner)
    }
}

/// The headers of a decrypted ESP packet's content, as `decode --json` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InnerSummary {
    /// The trailer's next header.
    pub next_header: u8,
    /// Bytes of inner payload.
    pub length: usize,
    /// Tunnel mode: the inner IP addresses.
    pub addrs: Option<(IpAddr, IpAddr)>,
    /// The transport protocol (inner IP's protocol in tunnel mode).
    pub protocol: Option<u8>,
    /// TCP/UDP ports.
    pub ports: Option<(u16, u16)>,
}

impl InnerSummary {
    fn of(next_header: u8, inner: &[u8]) -> InnerSummary {
        use crate::wire::{ip, link::Network};
        let mut s = InnerSummary {
            next_header,
            length: inner.len(),
            addrs: None,
            protocol: Some(next_header),
            ports: None,
        };
        let mut segment = inner;
        if matches!(next_header, 4 | 41) {
            let Ok(hdr) = ip::parse_header(Network::AnyIp, inner, 0) else {
                s.protocol = None;
                return s;
            };
            s.addrs = Some((hdr.src, hdr.dst));
            s.protocol = Some(hdr.protocol);
            segment = hdr.payload;
        }
        s.ports = s
            .protocol
            .and_then(|p| ip::inner_transport(p, segment))
            .and_then(|t| t.ports);
        s
    }
}

/// The decryption state of one capture.
#[derive(Debug)]
pub struct Decryptor {
    keys: Arc<KeyTable>,
    v1: HashMap<u64, ikev1::V1Sa>,
    fragments: ikev2::Fragments,
    scratch: Vec<u8>,
}

impl Decryptor {
    /// A decryptor over `keys`.
    pub fn new(keys: Arc<KeyTable>) -> Self {
        Decryptor {
            keys,
            v1: HashMap::new(),
            fragments: ikev2::Fragments::default(),
            scratch: Vec::with_capacity(2048),
        }
    }

    /// The key table.
    pub fn keys(&self) -> &KeyTable {
        &self.keys
    }

    /// Looks at one IKE message (`msg`, parsed from `bytes`): learns what IKEv1 IVs
    /// need from cleartext messages, and decrypts encrypted ones for which a key was
    /// given, appending the payloads found inside. `None` when there was nothing to
    /// decrypt or no key for it.
    ///
    /// IKEv1 messages decrypt only when the capture holds the responder's chosen
    /// phase-1 transform and both KE payloads (Main Mode messages 2 to 4, Aggressive
    /// Mode 1 and 2); without them the IV cannot be derived ([`DecryptError::NoIv`]).
    pub fn ike(
        &mut self,
        addrs: &Addrs,
        bytes: &[u8],
        msg: &mut IkeMessage,
        ctx: ParseContext,
    ) -> Option<IkeDecrypt> {
        match msg.header.major {
            2 => self.ikev2(bytes, msg, ctx),
            1 => self.ikev1(addrs, bytes, msg, ctx),
            _ => None,
        }
    }

    fn ikev1(
        &mut self,
        addrs: &Addrs,
        bytes: &[u8],
        msg: &mut IkeMessage,
        ctx: ParseContext,
    ) -> Option<IkeDecrypt> {
        let icookie = msg.header.spi_i;
        if !self.keys.has_ikev1(icookie) {
            return None;
        }
        let sa = self.v1.entry(icookie).or_default();
        if !msg.header.is_encrypted_v1() {
            sa.observe(addrs, bytes, msg);
            return None;
        }
        let result = sa.decrypt(&self.keys, bytes, msg, ctx, &mut self.scratch);
        Some(match result {
            Ok(()) => IkeDecrypt::Decrypted { verified: false },
            Err(e) => IkeDecrypt::Failed(e),
        })
    }

    fn ikev2(
        &mut self,
        bytes: &[u8],
        msg: &mut IkeMessage,
        ctx: ParseContext,
    ) -> Option<IkeDecrypt> {
        let last = msg.payloads.last()?;
        if !matches!(last.payload_type, ikev2::SK | ikev2::SKF) {
            return None;
        }
        let h = msg.header;
        self.keys.ikev2(h.spi_i, h.spi_r).next()?;
        let bytes = bytes.get(..usize::try_from(h.length).ok()?)?;
        let sealed = ikev2::locate(bytes, h.next_payload)?;
        let mut failure = None;
        let table = Arc::clone(&self.keys);
        for keys in table.ikev2(h.spi_i, h.spi_r) {
            match ikev2::open(keys, bytes, &sealed, h.is_initiator(), &mut self.scratch) {
                None => continue,
                Some(Err(e)) => failure = Some(failure.unwrap_or(e)),
                Some(Ok(opened)) => match self.finish_v2(msg, &sealed, opened, ctx) {
                    Ok(done) => return Some(done),
                    Err(e) => failure = Some(failure.unwrap_or(e)),
                },
            }
        }
        failure.map(IkeDecrypt::Failed)
    }

    /// Parses the plaintext of an opened SK payload, or files an SKF fragment.
    fn finish_v2(
        &mut self,
        msg: &mut IkeMessage,
        sealed: &ikev2::Sealed,
        opened: ikev2::Opened,
        ctx: ParseContext,
    ) -> Result<IkeDecrypt, DecryptError> {
        let verified = opened.verified;
        let Some(fragment) = sealed.fragment else {
            let first = sealed.next;
            parse_inner(msg, first, &self.scratch, opened.base, ctx)?;
            return Ok(IkeDecrypt::Decrypted { verified });
        };
        let h = msg.header;
        let key = (h.spi_i, h.spi_r, h.message_id, h.flags & 0x28);
        let plain = std::mem::take(&mut self.scratch);
        let done = self
            .fragments
            .add(key, fragment, sealed.next, &plain, verified);
        self.scratch = plain;
        let Some(whole) = done else {
            return Ok(IkeDecrypt::FragmentStored { verified });
        };
        parse_inner(msg, whole.first_payload, &whole.data, opened.base, ctx)?;
        self.scratch.clear();
        self.scratch.extend_from_slice(&whole.data);
        Ok(IkeDecrypt::Decrypted {
            verified: whole.verified,
        })
    }

    /// Decrypts an ESP packet when the table has a key for it. `None` when it has none.
    ///
    /// Extended sequence numbers are not supported: their high half is never on the
    /// wire and the ICV covers it, so packets of such SAs fail the ICV check. A decrypted
    /// tunnel that carries ESP again is shown, not decrypted a second time.
    pub fn esp(&mut self, packet: &EspPacket<'_>) -> Option<Result<EspPlain<'_>, DecryptError>> {
        let (src, dst) = (packet.addrs.src, packet.addrs.dst);
        let mut failure = None;
        for keys in self.keys.esp(src, dst, packet.spi) {
            match esp::open(keys, packet, &mut self.scratch) {
                Ok(o) => {
                    return Some(Ok(EspPlain {
                        next_header: o.next_header,
                        inner: &self.scratch[..o.len],
                        verified: o.verified,
                    }))
                }
                Err(e) => failure = Some(failure.unwrap_or(e)),
            }
        }
        failure.map(Err)
    }

    /// The plaintext of the last IKE message that [`Decryptor::ike`] reported as
    /// decrypted (the inner payload chain, padding removed for IKEv2, with IKEv1's
    /// padding left on), until the next call. For inspection and tests; nothing in
    /// ipsecmon's outputs shows it.
    pub fn last_plaintext(&self) -> &[u8] {
        &self.scratch
    }

    /// `true` when the table has ESP keys (the engine skips the ESP hook otherwise).
    pub fn has_esp_keys(&self) -> bool {
        self.keys.has_esp()
    }
}

/// Walks an IKEv2 plaintext into `msg`. A chain that does not parse means a wrong
/// encryption key, even when the ICV verified (that vouches for the integrity key only):
/// the payloads are dropped again and the message counts as not decrypted.
fn parse_inner(
    msg: &mut IkeMessage,
    first: u8,
    plain: &[u8],
    base: usize,
    ctx: ParseContext,
) -> Result<(), DecryptError> {
    let before = msg.payloads.len();
    ike::parse_decrypted(msg, first, plain, base, ctx);
    if msg.error.is_some() {
        msg.payloads.truncate(before);
        msg.error = None;
        return Err(DecryptError::BadPlaintext);
    }
    Ok(())
}

/// The generic payload headers of a message from the IKE header's next-payload field:
/// each payload's type and body. Stops at the first header that does not fit.
pub(crate) fn payload_bodies(msg: &[u8], first: u8) -> impl Iterator<Item = (u8, &[u8])> {
    let mut next = first;
    let mut off = ike::HEADER_LEN;
    let mut count = 0;
    std::iter::from_fn(move || {
        if next == 0 || count == ike::MAX_PAYLOADS {
            return None;
        }
        let h = msg.get(off..off.checked_add(4)?)?;
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let end = off
            .checked_add(len)
            .filter(|&e| len >= 4 && e <= msg.len())?;
        let item = (next, &msg[off + 4..end]);
        next = h[0];
        off = end;
        count += 1;
        Some(item)
    })
}

/// `true` when `body` is an SK or SKF payload (the ones decryption opens).
pub fn is_sealed(body: &PayloadBody) -> bool {
    matches!(
        body,
        PayloadBody::Encrypted { .. } | PayloadBody::EncryptedFragment { .. }
    )
}

#[cfg(test)]
mod tests;
