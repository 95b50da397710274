//! IKEv1 (RFC 2409) encrypted messages: CBC with DES, 3DES or AES, and the IVs of
//! RFC 2409 Appendix B.
//!
//! Wireshark's IKEv1 table gives only the encryption key, so the IV is rebuilt from what
//! the wire shows: the cipher and hash from the responder's chosen phase-1 transform,
//! and the phase-1 IV as the hash of the initiator's and the responder's public
//! Diffie-Hellman values (the KE payloads), cut to the cipher's block size. Each further
//! message of phase 1 uses the last ciphertext block of the one before. Every other
//! exchange (Quick Mode, Informational, Transaction) starts from the hash of the last
//! phase-1 ciphertext block and its message ID, and chains within its message ID.
//!
//! A message only advances its chain once it decrypted to a payload chain that parses
//! cleanly (IKEv1 has no ICV on the encryption layer; a wrong IV or key almost never
//! yields well-formed payloads, and the HASH payload that opens every exchange after
//! phase 1 must have the negotiated hash's length). A byte-identical retransmission is
//! decrypted with the IV its first copy used and changes nothing, as RFC 2409 Appendix B
//! asks of implementations.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use crate::keys::{Cipher, KeyTable, MacAlg};
use crate::wire::ike::{self, IkeMessage, ParseContext, PayloadBody, Transform};
use crate::wire::Addrs;

use super::primitive::{cbc_decrypt, digest};
use super::{payload_bodies, DecryptError};

/// Most exchanges (message IDs) whose IV chains are kept per SA.
const MAX_EXCHANGES: usize = 32;
/// Most message digests remembered per chain (for retransmissions).
const MAX_SEEN: usize = 8;
/// Longest public DH value kept (8192-bit MODP groups are 1024 bytes).
const MAX_KE: usize = 1100;
/// Most padding accepted after the last payload (RFC 2409 §5.3 allows any; 255 is the
/// most an implementation that writes a pad-length byte can add).
const MAX_PADDING: usize = 255;
/// The Oakley Encryption Algorithm attribute (RFC 2409 Appendix A).
const ATTR_ENCRYPTION: u16 = 1;
/// The Oakley Hash Algorithm attribute.
const ATTR_HASH: u16 = 2;
/// The Oakley Key Length attribute (bits).
const ATTR_KEY_LENGTH: u16 = 14;
/// Payload type HASH.
const HASH: u8 = 8;
/// Payload type KE.
const KE: u8 = 4;

/// The phase-1 algorithms that decryption needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Suite {
    /// The CBC cipher with its key length.
    pub cipher: Cipher,
    /// The negotiated hash (for IVs, and the length of HASH payloads).
    pub hash: MacAlg,
}

/// One CBC block, the unit of IVs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Iv {
    bytes: [u8; 16],
    len: u8,
}

impl Iv {
    fn new(b: &[u8]) -> Iv {
        let mut bytes = [0u8; 16];
        let n = b.len().min(16);
        bytes[..n].copy_from_slice(&b[..n]);
        Iv {
            bytes,
            len: n as u8,
        }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The IV chain of one message ID.
#[derive(Debug, Clone, Default)]
struct Chain {
    /// The IV of the next new message.
    next: Option<Iv>,
    /// Messages decrypted so far and the IV each used.
    seen: Vec<(u64, Iv)>,
}

impl Chain {
    fn used_for(&self, digest: u64) -> Option<Iv> {
        self.seen
            .iter()
            .find(|(d, _)| *d == digest)
            .map(|(_, iv)| *iv)
    }

    fn advance(&mut self, digest: u64, used: Iv, last_block: Iv) {
        if self.used_for(digest).is_some() {
            return;
        }
        if self.seen.len() >= MAX_SEEN {
            self.seen.remove(0);
        }
        self.seen.push((digest, used));
        self.next = Some(last_block);
    }
}

/// What one ISAKMP SA has shown that IV derivation needs.
#[derive(Debug, Default)]
pub(crate) struct V1Sa {
    initiator: Option<(IpAddr, Option<u16>)>,
    chosen: Option<Result<Suite, DecryptError>>,
    offered: Option<Result<Suite, DecryptError>>,
    gxi: Option<Vec<u8>>,
    gxr: Option<Vec<u8>>,
    initial: Option<Iv>,
    phase1: Chain,
    last_p1_block: Option<Iv>,
    exchanges: Vec<(u32, Chain)>,
}

impl V1Sa {
    /// A cleartext message of the SA: learns the initiator, the chosen transform and the
    /// public DH values.
    pub(crate) fn observe(&mut self, addrs: &Addrs, bytes: &[u8], msg: &IkeMessage) {
        let h = &msg.header;
        if !matches!(h.exchange_type, 2 | 4) || h.message_id != 0 {
            return;
        }
        let sport = addrs.ports.map(|p| p.0);
        if h.spi_r == 0 && self.initiator.is_none() {
            self.initiator = Some((addrs.src, sport));
        }
        let from_initiator = self.sent_by_initiator(addrs, h.spi_r);
        if let Some(suite) = chosen_suite(msg) {
            let slot = if from_initiator {
                &mut self.offered
            } else {
                &mut self.chosen
            };
            slot.get_or_insert(suite);
        }
        let end = usize::try_from(h.length)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let ke = payload_bodies(&bytes[..end], h.next_payload).find(|(t, _)| *t == KE);
        if let Some((_, data)) = ke.filter(|(_, d)| d.len() <= MAX_KE) {
            let slot = if from_initiator {
                &mut self.gxi
            } else {
                &mut self.gxr
            };
            slot.get_or_insert_with(|| data.to_vec());
        }
    }

    /// Who sent a message: the initiator sent the first one (zero responder cookie).
    fn sent_by_initiator(&self, addrs: &Addrs, spi_r: u64) -> bool {
        let Some((ip, port)) = self.initiator else {
            return spi_r == 0;
        };
        let sport = addrs.ports.map(|p| p.0);
        addrs.src == ip && (addrs.src != addrs.dst || sport == port)
    }

    /// The phase-1 algorithms: the responder's choice, or the initiator's only offer.
    fn suite(&self) -> Result<Suite, DecryptError> {
        self.chosen
            .or(self.offered)
            .unwrap_or(Err(DecryptError::NoIv))
    }

    /// The phase-1 IV, once the suite and both public values are known.
    fn initial_iv(&mut self, suite: Suite) -> Option<Iv> {
        if self.initial.is_none() {
            let (gxi, gxr) = (self.gxi.as_deref()?, self.gxr.as_deref()?);
            let (d, n) = digest(suite.hash, &[gxi, gxr]);
            let bl = suite.cipher.block_len().min(n);
            self.initial = Some(Iv::new(&d[..bl]));
            self.phase1.next.get_or_insert(Iv::new(&d[..bl]));
        }
        self.initial
    }

    /// Decrypts an E-flag message and appends its payloads (marked decrypted) to `msg`.
    pub(crate) fn decrypt(
        &mut self,
        keys: &KeyTable,
        bytes: &[u8],
        msg: &mut IkeMessage,
        ctx: ParseContext,
        scratch: &mut Vec<u8>,
    ) -> Result<(), DecryptError> {
        let suite = self.suite()?;
        let h = msg.header;
        let end = usize::try_from(h.length).unwrap_or(usize::MAX);
        let ct = bytes
            .get(ike::HEADER_LEN..end)
            .ok_or(DecryptError::BadLength)?;
        let bl = suite.cipher.block_len();
        if ct.is_empty() || ct.len() % bl != 0 {
            return Err(DecryptError::BadLength);
        }
        let digest = digest_of(ct);
        let last = Iv::new(&ct[ct.len() - bl..]);
        let candidates = self.candidates(h.message_id, digest, suite);
        let mut err = DecryptError::NoIv;
        for iv in candidates {
            for key in keys.ikev1(h.spi_i) {
                match attempt(suite, key.key.expose(), iv, ct, msg, ctx, scratch) {
                    Ok(()) => {
                        self.commit(h.message_id, digest, iv, last);
                        return Ok(());
                    }
                    Err(e) => err = worse(err, e),
                }
            }
        }
        if h.message_id == 0 {
            self.last_p1_block = Some(last);
        }
        Err(err)
    }

    /// The IVs worth trying for a message, best first.
    fn candidates(&mut self, msgid: u32, digest: u64, suite: Suite) -> Vec<Iv> {
        let initial = self.initial_iv(suite);
        let chain = match msgid {
            0 => Some(&self.phase1),
            m => self
                .exchanges
                .iter()
                .find(|(id, _)| *id == m)
                .map(|(_, c)| c),
        };
        if let Some(iv) = chain.and_then(|c| c.used_for(digest)) {
            return vec![iv];
        }
        let mut out: Vec<Iv> = chain.and_then(|c| c.next).into_iter().collect();
        if msgid != 0 {
            // Appendix B: hash(last phase-1 CBC block | M-ID). The alternatives cover a
            // peer that sent this before phase 1 completed (after an MM5 it could not
            // read, its chain stands at the phase-1 IV or at the last block it received).
            for base in [self.phase1.next, initial, self.last_p1_block]
                .into_iter()
                .flatten()
            {
                out.push(derive(suite, base, msgid));
            }
        }
        out.dedup();
        out
    }

    fn commit(&mut self, msgid: u32, digest: u64, used: Iv, last: Iv) {
        if msgid == 0 {
            self.phase1.advance(digest, used, last);
            self.last_p1_block = Some(last);
            return;
        }
        if let Some((_, c)) = self.exchanges.iter_mut().find(|(id, _)| *id == msgid) {
            return c.advance(digest, used, last);
        }
        if self.exchanges.len() >= MAX_EXCHANGES {
            self.exchanges.remove(0);
        }
        let mut c = Chain::default();
        c.advance(digest, used, last);
        self.exchanges.push((msgid, c));
    }
}

/// The more telling of two errors: a plaintext that did not parse says more than a
/// missing IV.
fn worse(a: DecryptError, b: DecryptError) -> DecryptError {
    match (a, b) {
        (DecryptError::BadPlaintext, _) => a,
        _ => b,
    }
}

/// hash(base | M-ID) cut to the block size (RFC 2409 Appendix B).
fn derive(suite: Suite, base: Iv, msgid: u32) -> Iv {
    let (d, n) = digest(suite.hash, &[base.as_slice(), &msgid.to_be_bytes()]);
    Iv::new(&d[..suite.cipher.block_len().min(n)])
}

/// A digest of a message's ciphertext, to recognise retransmissions.
fn digest_of(ct: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    ct.hash(&mut h);
    h.finish()
}

/// One key and IV: decrypts into `scratch`, parses the payloads into `msg`, and keeps
/// them only when they are plausible.
fn attempt(
    suite: Suite,
    key: &[u8],
    iv: Iv,
    ct: &[u8],
    msg: &mut IkeMessage,
    ctx: ParseContext,
    scratch: &mut Vec<u8>,
) -> Result<(), DecryptError> {
    let need = suite.cipher.material_len();
    let key = key.get(..need).ok_or(DecryptError::KeyLength)?;
    scratch.clear();
    scratch.extend_from_slice(ct);
    cbc_decrypt(suite.cipher, key, iv.as_slice(), scratch)?;
    let before = msg.payloads.len();
    let h = msg.header;
    let consumed = ike::parse_decrypted(msg, h.next_payload, scratch, ike::HEADER_LEN, ctx);
    if plausible(msg, before, scratch.len() - consumed, suite, ctx) {
        return Ok(());
    }
    msg.payloads.truncate(before);
    msg.error = None;
    Err(DecryptError::BadPlaintext)
}

/// A decrypted chain is believed when it parsed without error, holds only IKEv1 payload
/// types, leaves little padding, and (after phase 1) opens with a HASH of the
/// negotiated hash's length (RFC 2409 §5.5, §5.7).
fn plausible(
    msg: &IkeMessage,
    from: usize,
    padding: usize,
    suite: Suite,
    ctx: ParseContext,
) -> bool {
    let added = &msg.payloads[from.min(msg.payloads.len())..];
    if msg.error.is_some() || added.is_empty() || padding > MAX_PADDING {
        return false;
    }
    let known = |t: u8| {
        matches!(t, 1 | 4..=14 | 20 | 21 | 130 | 131) || (ctx.draft_natd && matches!(t, 15 | 16))
    };
    if !added.iter().all(|p| known(p.payload_type)) {
        return false;
    }
    if msg.header.message_id == 0 {
        return true;
    }
    let hash_len = digest(suite.hash, &[]).1;
    matches!(
        added[0].body,
        PayloadBody::Hash { data_len } if added[0].payload_type == HASH && data_len == hash_len
    )
}

/// The suite of the first ISAKMP proposal's first transform in a message, if any.
fn chosen_suite(msg: &IkeMessage) -> Option<Result<Suite, DecryptError>> {
    msg.payloads.iter().find_map(|p| match &p.body {
        PayloadBody::Sa { proposals, .. } => {
            let prop = proposals.iter().find(|pr| pr.protocol_id == 1)?;
            let only = (prop.transforms.len() == 1).then(|| &prop.transforms[0]);
            // An offer of several transforms says nothing until the responder chooses.
            let t = if msg.header.spi_r != 0 {
                prop.transforms.first()
            } else {
                only
            };
            t.map(suite_of)
        }
        _ => None,
    })
}

/// The cipher and hash named by a phase-1 transform's attributes (RFC 2409 Appendix A,
/// RFC 3602 §5 for AES, whose key length attribute defaults to 128 bits).
fn suite_of(t: &Transform) -> Result<Suite, DecryptError> {
    let attr = |ty: u16| {
        t.attributes
            .iter()
            .find(|a| a.attr_type == ty)
            .and_then(|a| a.value)
    };
    let unsupported = DecryptError::UnsupportedAlgorithm;
    let cipher = match attr(ATTR_ENCRYPTION) {
        Some(1) => Cipher::DesCbc,
        Some(5) => Cipher::TripleDesCbc,
        Some(7) => match attr(ATTR_KEY_LENGTH).unwrap_or(128) {
            128 => Cipher::AesCbc { key_len: 16 },
            192 => Cipher::AesCbc { key_len: 24 },
            256 => Cipher::AesCbc { key_len: 32 },
            _ => return Err(unsupported),
        },
        _ => return Err(unsupported),
    };
    let hash = match attr(ATTR_HASH) {
        Some(1) => MacAlg::Md5,
        Some(2) => MacAlg::Sha1,
        Some(4) => MacAlg::Sha256,
        Some(5) => MacAlg::Sha384,
        Some(6) => MacAlg::Sha512,
        _ => return Err(unsupported),
    };
    Ok(Suite { cipher, hash })
}
