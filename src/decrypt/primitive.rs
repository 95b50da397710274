//! Thin wrappers over the RustCrypto ciphers and MACs, in the shapes IPsec needs: CBC
//! without padding, counter mode with an explicit counter block, AES-GCM and AES-CCM with
//! a detached (possibly truncated) ICV, truncated HMAC verification, and plain digests.
//!
//! No cipher is implemented here; every byte of cryptography comes from the `aes`, `des`,
//! `cbc`, `ctr`, `aes-gcm`, `ccm`, `hmac`, `md-5`, `sha1` and `sha2` crates.

use aes::{Aes128, Aes192, Aes256};
use aes_gcm::aead::consts::{U11, U12, U16, U8};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::AesGcm;
use ccm::Ccm;
use cipher::block_padding::NoPadding;
use cipher::{BlockDecryptMut, KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};

use super::DecryptError;
use crate::keys::{Cipher, MacAlg};

/// Runs `$body` with `$t` bound to the AES type of `$key_len` bytes.
macro_rules! with_aes {
    ($key_len:expr, $t:ident => $body:expr) => {
        match $key_len {
            16 => {
                type $t = Aes128;
                $body
            }
            24 => {
                type $t = Aes192;
                $body
            }
            32 => {
                type $t = Aes256;
                $body
            }
            _ => Err(DecryptError::KeyLength),
        }
    };
}

/// CBC decryption in place; `buf` must be a whole number of blocks.
pub(crate) fn cbc_decrypt(
    cipher: Cipher,
    key: &[u8],
    iv: &[u8],
    buf: &mut [u8],
) -> Result<(), DecryptError> {
    match cipher {
        Cipher::DesCbc => cbc::<des::Des>(key, iv, buf),
        Cipher::TripleDesCbc => cbc::<des::TdesEde3>(key, iv, buf),
        Cipher::AesCbc { key_len } => with_aes!(key_len, A => cbc::<A>(key, iv, buf)),
        _ => Err(DecryptError::UnsupportedAlgorithm),
    }
}

fn cbc<C>(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), DecryptError>
where
    C: cipher::BlockCipher + cipher::BlockDecryptMut + cipher::KeyInit,
{
    let dec = cbc::Decryptor::<C>::new_from_slices(key, iv).map_err(|_| DecryptError::KeyLength)?;
    dec.decrypt_padded_mut::<NoPadding>(buf)
        .map(|_| ())
        .map_err(|_| DecryptError::BadLength)
}

/// AES in counter mode from a full 16-byte counter block (RFC 3686 §4: nonce, IV and a
/// 32-bit big-endian block counter).
pub(crate) fn ctr_apply(key: &[u8], block: &[u8; 16], buf: &mut [u8]) -> Result<(), DecryptError> {
    with_aes!(key.len(), A => {
        let mut c = ctr::Ctr32BE::<A>::new_from_slices(key, block)
            .map_err(|_| DecryptError::KeyLength)?;
        c.apply_keystream(buf);
        Ok(())
    })
}

/// Constant-time equality of two byte strings of the same length.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// AES-GCM decryption in place with a detached ICV of 8, 12 or 16 bytes (RFC 4106 §3,
/// RFC 5282 §3: a 12-byte nonce of salt and explicit IV).
pub(crate) fn gcm_open(
    key: &[u8],
    nonce: &[u8; 12],
    aad: &[u8],
    buf: &mut [u8],
    icv: &[u8],
) -> Result<(), DecryptError> {
    let bad = |_| DecryptError::IcvMismatch;
    let n = aes_gcm::Nonce::<U12>::from_slice(nonce);
    with_aes!(key.len(), A => match icv.len() {
        16 => AesGcm::<A, U12, U16>::new_from_slice(key)
            .map_err(|_| DecryptError::KeyLength)?
            .decrypt_in_place_detached(n, aad, buf, icv.into())
            .map_err(bad),
        12 => AesGcm::<A, U12, U12>::new_from_slice(key)
            .map_err(|_| DecryptError::KeyLength)?
            .decrypt_in_place_detached(n, aad, buf, icv.into())
            .map_err(bad),
        8 => gcm8_open::<A>(key, nonce, aad, buf, icv),
        _ => Err(DecryptError::UnsupportedAlgorithm),
    })
}

/// AES-GCM with an 8-byte ICV, which the `aes-gcm` crate does not offer directly: the
/// payload is decrypted in counter mode (GCM's keystream starts at counter 2, SP 800-38D
/// §7.2), sealed again to obtain the full 16-byte tag, compared on its first 8 bytes,
/// and decrypted again.
fn gcm8_open<A>(
    key: &[u8],
    nonce: &[u8; 12],
    aad: &[u8],
    buf: &mut [u8],
    icv: &[u8],
) -> Result<(), DecryptError>
where
    A: cipher::BlockCipher<BlockSize = U16> + cipher::BlockEncrypt + cipher::KeyInit,
{
    let mut block = [0u8; 16];
    block[..12].copy_from_slice(nonce);
    block[15] = 2;
    ctr_apply(key, &block, buf)?;
    let aead = AesGcm::<A, U12, U16>::new_from_slice(key).map_err(|_| DecryptError::KeyLength)?;
    let n = aes_gcm::Nonce::<U12>::from_slice(nonce);
    let tag = aead
        .encrypt_in_place_detached(n, aad, buf)
        .map_err(|_| DecryptError::BadLength)?;
    if !same(&tag[..8], icv) {
        return Err(DecryptError::IcvMismatch);
    }
    ctr_apply(key, &block, buf)
}

/// AES-CCM decryption in place with an ICV of 8, 12 or 16 bytes and an 11-byte nonce
/// (RFC 4309 §4, RFC 5282 §4: 3-byte salt and 8-byte explicit IV).
pub(crate) fn ccm_open(
    key: &[u8],
    nonce: &[u8; 11],
    aad: &[u8],
    buf: &mut [u8],
    icv: &[u8],
) -> Result<(), DecryptError> {
    let n = ccm::Nonce::<U11>::from_slice(nonce);
    let bad = |_| DecryptError::IcvMismatch;
    with_aes!(key.len(), A => match icv.len() {
        8 => Ccm::<A, U8, U11>::new_from_slice(key)
            .map_err(|_| DecryptError::KeyLength)?
            .decrypt_in_place_detached(n, aad, buf, icv.into())
            .map_err(bad),
        12 => Ccm::<A, U12, U11>::new_from_slice(key)
            .map_err(|_| DecryptError::KeyLength)?
            .decrypt_in_place_detached(n, aad, buf, icv.into())
            .map_err(bad),
        16 => Ccm::<A, U16, U11>::new_from_slice(key)
            .map_err(|_| DecryptError::KeyLength)?
            .decrypt_in_place_detached(n, aad, buf, icv.into())
            .map_err(bad),
        _ => Err(DecryptError::UnsupportedAlgorithm),
    })
}

/// Checks a (truncated) HMAC over the concatenation of `parts` against `icv`.
pub(crate) fn hmac_ok(alg: MacAlg, key: &[u8], parts: &[&[u8]], icv: &[u8]) -> bool {
    fn check<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]], icv: &[u8]) -> bool {
        let Ok(mut mac) = <M as Mac>::new_from_slice(key) else {
            return false;
        };
        for p in parts {
            mac.update(p);
        }
        let out = mac.finalize().into_bytes();
        icv.len() <= out.len() && same(&out[..icv.len()], icv)
    }
    match alg {
        MacAlg::Md5 => check::<Hmac<md5::Md5>>(key, parts, icv),
        MacAlg::Sha1 => check::<Hmac<sha1::Sha1>>(key, parts, icv),
        MacAlg::Sha256 => check::<Hmac<sha2::Sha256>>(key, parts, icv),
        MacAlg::Sha384 => check::<Hmac<sha2::Sha384>>(key, parts, icv),
        MacAlg::Sha512 => check::<Hmac<sha2::Sha512>>(key, parts, icv),
    }
}

/// A digest of the concatenation of `parts`: the output buffer and its length.
pub(crate) fn digest(alg: MacAlg, parts: &[&[u8]]) -> ([u8; 64], usize) {
    use sha2::Digest;
    fn run<D: Digest>(parts: &[&[u8]]) -> ([u8; 64], usize) {
        let mut d = D::new();
        for p in parts {
            d.update(p);
        }
        let out = d.finalize();
        let mut buf = [0u8; 64];
        let n = out.len().min(64);
        buf[..n].copy_from_slice(&out[..n]);
        (buf, n)
    }
    match alg {
        MacAlg::Md5 => run::<md5::Md5>(parts),
        MacAlg::Sha1 => run::<sha1::Sha1>(parts),
        MacAlg::Sha256 => run::<sha2::Sha256>(parts),
        MacAlg::Sha384 => run::<sha2::Sha384>(parts),
        MacAlg::Sha512 => run::<sha2::Sha512>(parts),
    }
}

/// Decrypts `buf` in place with `cipher` (IKEv2 SK payloads and ESP alike: RFC 3602,
/// RFC 3686 / 5930, RFC 4106 / 5282 and RFC 4309 build their IVs and nonces the same way).
pub(crate) fn decipher(
    cipher: Cipher,
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    buf: &mut [u8],
    icv: &[u8],
) -> Result<(), DecryptError> {
    match cipher {
        Cipher::Null => Ok(()),
        Cipher::DesCbc | Cipher::TripleDesCbc | Cipher::AesCbc { .. } => {
            if buf.is_empty() || buf.len() % cipher.block_len() != 0 {
                return Err(DecryptError::BadLength);
            }
            cbc_decrypt(cipher, key, iv, buf)
        }
        Cipher::AesCtr { key_len } => {
            let (k, nonce) = key.split_at(usize::from(key_len));
            ctr_apply(k, &counter_block(nonce, iv), buf)
        }
        Cipher::AesGcm { key_len, .. } => {
            let (k, salt) = key.split_at(usize::from(key_len));
            gcm_open(k, &salt_iv::<12>(salt, iv), aad, buf, icv)
        }
        Cipher::AesCcm { key_len, .. } => {
            let (k, salt) = key.split_at(usize::from(key_len));
            ccm_open(k, &salt_iv::<11>(salt, iv), aad, buf, icv)
        }
    }
}

/// The counter block of RFC 3686 §4 / RFC 5930: nonce, IV, block counter 1.
pub(crate) fn counter_block(nonce: &[u8], iv: &[u8]) -> [u8; 16] {
    let mut block = [0u8; 16];
    block[..4].copy_from_slice(&nonce[..4.min(nonce.len())]);
    block[4..12].copy_from_slice(&iv[..8.min(iv.len())]);
    block[15] = 1;
    block
}

/// A nonce of `N` bytes: the salt followed by the explicit IV (RFC 4106 §4, RFC 4309 §4).
pub(crate) fn salt_iv<const N: usize>(salt: &[u8], iv: &[u8]) -> [u8; N] {
    let mut nonce = [0u8; N];
    let s = salt.len().min(N);
    nonce[..s].copy_from_slice(&salt[..s]);
    let i = iv.len().min(N - s);
    nonce[s..s + i].copy_from_slice(&iv[..i]);
    nonce
}
