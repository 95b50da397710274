//! The algorithms a key table names, and the spellings Wireshark, strongSwan's save-keys
//! plugin and tcpdump use for them.
//!
//! Names are compared after normalisation (upper case, the bracketed RFC reference
//! dropped, separators removed), so `TripleDes-CBC` as strongSwan 5.9 writes it and
//! `TripleDES-CBC [RFC2451]` as Wireshark wants it both work.

/// An encryption transform with the lengths that decryption needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// No encryption (RFC 2410).
    Null,
    /// DES-CBC (RFC 2405), IKEv1 and ESP only.
    DesCbc,
    /// 3DES-EDE-CBC (RFC 2451).
    TripleDesCbc,
    /// AES-CBC (RFC 3602) with a key of `key_len` bytes.
    AesCbc {
        /// 16, 24 or 32.
        key_len: u8,
    },
    /// AES-CTR (RFC 3686, RFC 5930): the key material ends with a 4-byte nonce.
    AesCtr {
        /// 16, 24 or 32.
        key_len: u8,
    },
    /// AES-GCM (RFC 4106, RFC 5282): the key material ends with a 4-byte salt.
    AesGcm {
        /// 16, 24 or 32.
        key_len: u8,
        /// 8, 12 or 16.
        icv_len: u8,
    },
    /// AES-CCM (RFC 4309, RFC 5282): the key material ends with a 3-byte salt.
    AesCcm {
        /// 16, 24 or 32.
        key_len: u8,
        /// 8, 12 or 16.
        icv_len: u8,
    },
}

impl Cipher {
    /// Bytes of key material the table must give: the key and its salt or nonce.
    pub fn material_len(self) -> usize {
        match self {
            Cipher::Null => 0,
            Cipher::DesCbc => 8,
            Cipher::TripleDesCbc => 24,
            Cipher::AesCbc { key_len } => usize::from(key_len),
            Cipher::AesCtr { key_len } | Cipher::AesGcm { key_len, .. } => usize::from(key_len) + 4,
            Cipher::AesCcm { key_len, .. } => usize::from(key_len) + 3,
        }
    }

    /// Bytes of the explicit IV in front of the ciphertext.
    pub fn iv_len(self) -> usize {
        match self {
            Cipher::Null => 0,
            Cipher::DesCbc | Cipher::TripleDesCbc => 8,
            Cipher::AesCbc { .. } => 16,
            Cipher::AesCtr { .. } | Cipher::AesGcm { .. } | Cipher::AesCcm { .. } => 8,
        }
    }

    /// The cipher's block size for CBC (the ciphertext must be a multiple), 1 otherwise.
    pub fn block_len(self) -> usize {
        match self {
            Cipher::DesCbc | Cipher::TripleDesCbc => 8,
            Cipher::AesCbc { .. } => 16,
            _ => 1,
        }
    }

    /// The ICV of a combined-mode cipher; `None` for the others, whose ICV comes from
    /// the integrity algorithm.
    pub fn aead_icv_len(self) -> Option<usize> {
        match self {
            Cipher::AesGcm { icv_len, .. } | Cipher::AesCcm { icv_len, .. } => {
                Some(usize::from(icv_len))
            }
            _ => None,
        }
    }

    /// A short name for logs and reports, e.g. `AES-GCM-256/16`.
    pub fn name(self) -> String {
        match self {
            Cipher::Null => "NULL".into(),
            Cipher::DesCbc => "DES-CBC".into(),
            Cipher::TripleDesCbc => "3DES-CBC".into(),
            Cipher::AesCbc { key_len } => format!("AES-CBC-{}", u32::from(key_len) * 8),
            Cipher::AesCtr { key_len } => format!("AES-CTR-{}", u32::from(key_len) * 8),
            Cipher::AesGcm { key_len, icv_len } => {
                format!("AES-GCM-{}/{icv_len}", u32::from(key_len) * 8)
            }
            Cipher::AesCcm { key_len, icv_len } => {
                format!("AES-CCM-{}/{icv_len}", u32::from(key_len) * 8)
            }
        }
    }
}

/// A hash function under HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MacAlg {
    /// HMAC-MD5 (RFC 2403).
    Md5,
    /// HMAC-SHA-1 (RFC 2404).
    Sha1,
    /// HMAC-SHA-256 (RFC 4868).
    Sha256,
    /// HMAC-SHA-384 (RFC 4868).
    Sha384,
    /// HMAC-SHA-512 (RFC 4868).
    Sha512,
}

/// An integrity transform: the MAC and how many bytes of its output travel as the ICV.
///
/// `mac: None` with a non-zero `icv_len` is Wireshark's "ANY n bits, no checking": the
/// ICV is skipped but cannot be verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Integrity {
    /// The MAC, when the ICV can be checked.
    pub mac: Option<MacAlg>,
    /// Bytes of ICV on the wire (a truncated MAC, RFC 2404 / RFC 4868).
    pub icv_len: usize,
}

impl Integrity {
    /// No integrity transform (combined-mode ciphers, or none at all).
    pub const NONE: Integrity = Integrity {
        mac: None,
        icv_len: 0,
    };

    const fn hmac(mac: MacAlg, icv_len: usize) -> Integrity {
        Integrity {
            mac: Some(mac),
            icv_len,
        }
    }

    const fn unchecked(icv_len: usize) -> Integrity {
        Integrity { mac: None, icv_len }
    }
}

/// Upper case, without the bracketed reference and without separators.
fn normalise(name: &str) -> String {
    let head = name.split('[').next().unwrap_or_default();
    head.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The `n` of "ANY n bits of authentication", in bytes.
fn any_bits(norm: &str) -> Option<Integrity> {
    let digits: String = norm
        .strip_prefix("ANY")?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let bits: usize = digits.parse().ok()?;
    (bits % 8 == 0 && (32..=512).contains(&bits)).then_some(Integrity::unchecked(bits / 8))
}

/// An AES key length in bits as it appears in a name.
fn aes_bits(digits: &str) -> Option<u8> {
    match digits {
        "128" => Some(16),
        "192" => Some(24),
        "256" => Some(32),
        _ => None,
    }
}

/// An IKEv2 table's encryption name (`AES-CBC-256 [RFC3602]`, `AES-GCM-256 with 16
/// octet ICV [RFC5282]`, `3DES [RFC2451]`, `NULL [RFC2410]`).
pub fn ikev2_cipher(name: &str) -> Option<Cipher> {
    let n = normalise(name);
    match n.as_str() {
        "NULL" => return Some(Cipher::Null),
        "3DES" | "3DESCBC" => return Some(Cipher::TripleDesCbc),
        "DES" | "DESCBC" => return Some(Cipher::DesCbc),
        _ => {}
    }
    let (mode, rest) = n.strip_prefix("AES").and_then(|r| r.split_at_checked(3))?;
    let key_len = aes_bits(rest.get(..3)?)?;
    let icv = || -> Option<u8> {
        let tail = rest
            .get(3..)?
            .strip_prefix("WITH")?
            .strip_suffix("OCTETICV")?;
        tail.parse().ok().filter(|i| matches!(i, 8 | 12 | 16))
    };
    match (mode, rest.len()) {
        ("CBC", 3) => Some(Cipher::AesCbc { key_len }),
        ("CTR", 3) => Some(Cipher::AesCtr { key_len }),
        ("GCM", _) => Some(Cipher::AesGcm {
            key_len,
            icv_len: icv()?,
        }),
        ("CCM", _) => Some(Cipher::AesCcm {
            key_len,
            icv_len: icv()?,
        }),
        _ => None,
    }
}

/// An IKEv2 table's integrity name (`HMAC_SHA2_256_128 [RFC4868]`, `NONE [RFC4306]`,
/// `ANY 96-bits of Authentication [No Checking]`).
pub fn ikev2_integrity(name: &str) -> Option<Integrity> {
    let n = normalise(name);
    Some(match n.as_str() {
        "NONE" | "NULL" => Integrity::NONE,
        "HMACMD596" => Integrity::hmac(MacAlg::Md5, 12),
        "HMACMD5128" => Integrity::hmac(MacAlg::Md5, 16),
        "HMACSHA196" => Integrity::hmac(MacAlg::Sha1, 12),
        "HMACSHA1160" => Integrity::hmac(MacAlg::Sha1, 20),
        "HMACSHA225696" => Integrity::hmac(MacAlg::Sha256, 12),
        "HMACSHA2256128" => Integrity::hmac(MacAlg::Sha256, 16),
        "HMACSHA2384192" => Integrity::hmac(MacAlg::Sha384, 24),
        "HMACSHA2512256" => Integrity::hmac(MacAlg::Sha512, 32),
        _ => return any_bits(&n),
    })
}

/// What an ESP table's encryption name says before the key length is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EspCipherName {
    /// NULL.
    Null,
    /// DES-CBC.
    Des,
    /// 3DES-CBC.
    TripleDes,
    /// AES-CBC, key length from the key material.
    AesCbc,
    /// AES-CTR, key length from the key material (less the 4-byte nonce).
    AesCtr,
    /// AES-GCM with the ICV length in its name; `None` for Wireshark's deprecated
    /// `AES-GCM [RFC4106]`, whose ICV length comes from the "ANY n bit" entry beside it.
    AesGcm(Option<u8>),
}

impl EspCipherName {
    /// The cipher for key material of `material` bytes, with the ICV length a bare
    /// `AES-GCM` takes from the integrity column.
    pub(crate) fn resolve(self, material: usize, integrity_icv: usize) -> Option<Cipher> {
        let len = u8::try_from(material).ok()?;
        match self {
            EspCipherName::Null => Some(Cipher::Null),
            EspCipherName::Des => Some(Cipher::DesCbc),
            EspCipherName::TripleDes => Some(Cipher::TripleDesCbc),
            EspCipherName::AesCbc => aes_key(len).map(|key_len| Cipher::AesCbc { key_len }),
            EspCipherName::AesCtr => {
                aes_key(len.checked_sub(4)?).map(|key_len| Cipher::AesCtr { key_len })
            }
            EspCipherName::AesGcm(icv) => {
                let icv = icv.or_else(|| u8::try_from(integrity_icv).ok())?;
                matches!(icv, 8 | 12 | 16).then_some(())?;
                gcm(len, icv)
            }
        }
    }
}

/// An ESP table's encryption name (`AES-CBC [RFC3602]`, `TripleDES-CBC [RFC2451]`,
/// `AES-GCM with 16 octet ICV [RFC4106]`, `NULL`). Wireshark's table has no name for
/// AES-CCM (RFC 4309), so ESP SAs with it cannot be given keys.
pub(crate) fn esp_cipher(name: &str) -> Option<EspCipherName> {
    Some(match normalise(name).as_str() {
        "NULL" => EspCipherName::Null,
        "DESCBC" => EspCipherName::Des,
        "TRIPLEDESCBC" | "3DESCBC" => EspCipherName::TripleDes,
        "AESCBC" => EspCipherName::AesCbc,
        "AESCTR" => EspCipherName::AesCtr,
        "AESGCMWITH8OCTETICV" => EspCipherName::AesGcm(Some(8)),
        "AESGCMWITH12OCTETICV" => EspCipherName::AesGcm(Some(12)),
        "AESGCMWITH16OCTETICV" => EspCipherName::AesGcm(Some(16)),
        "AESGCM" => EspCipherName::AesGcm(None),
        _ => return None,
    })
}

/// An AES key length in bytes, when `len` is one.
fn aes_key(len: u8) -> Option<u8> {
    matches!(len, 16 | 24 | 32).then_some(len)
}

/// AES-GCM from its key material length (key and 4-byte salt).
fn gcm(material: u8, icv_len: u8) -> Option<Cipher> {
    let key_len = aes_key(material.checked_sub(4)?)?;
    Some(Cipher::AesGcm { key_len, icv_len })
}

/// An ESP table's authentication name (`HMAC-SHA-1-96 [RFC2404]`, `NULL`,
/// `ANY 96 bit authentication [no checking]`).
pub fn esp_integrity(name: &str) -> Option<Integrity> {
    let n = normalise(name);
    Some(match n.as_str() {
        "NULL" | "NONE" => Integrity::NONE,
        "HMACMD596" => Integrity::hmac(MacAlg::Md5, 12),
        "HMACSHA196" => Integrity::hmac(MacAlg::Sha1, 12),
        "HMACSHA25696" => Integrity::hmac(MacAlg::Sha256, 12),
        "HMACSHA256128" => Integrity::hmac(MacAlg::Sha256, 16),
        "HMACSHA384192" => Integrity::hmac(MacAlg::Sha384, 24),
        "HMACSHA512256" => Integrity::hmac(MacAlg::Sha512, 32),
        _ => return any_bits(&n),
    })
}

/// A tcpdump `-E` algorithm (`3des-cbc-hmac96`, `aes256-cbc`, `none`): the cipher for a
/// key of `key_len` bytes and the ICV (tcpdump never checks it).
pub fn tcpdump_esp(name: &str, key_len: usize) -> Option<(Cipher, Integrity)> {
    let lower = name.to_ascii_lowercase();
    let (base, integrity) = match lower.strip_suffix("-hmac96") {
        Some(base) => (base, Integrity::unchecked(12)),
        None => (lower.as_str(), Integrity::NONE),
    };
    let base = base.strip_suffix("-cbc").unwrap_or(base);
    let cipher = match base.replace('-', "").as_str() {
        "none" | "null" => Cipher::Null,
        "des" => Cipher::DesCbc,
        "3des" | "des3" | "desede3" => Cipher::TripleDesCbc,
        "aes128" | "aes192" | "aes256" => {
            let key_len = aes_bits(base.get(base.len() - 3..)?)?;
            Cipher::AesCbc { key_len }
        }
        "aes" => Cipher::AesCbc {
            key_len: aes_key(u8::try_from(key_len).ok()?)?,
        },
        _ => return None,
    };
    Some((cipher, integrity))
}

/// A tcpdump IKEv2 secret's integrity name (`sha1`, `md5`, `sha256`, ...).
pub fn tcpdump_integrity(name: &str) -> Option<Integrity> {
    let lower = name.to_ascii_lowercase();
    Some(match lower.strip_prefix("hmac-").unwrap_or(&lower) {
        "none" | "null" => Integrity::NONE,
        "md5" => Integrity::hmac(MacAlg::Md5, 12),
        "sha1" => Integrity::hmac(MacAlg::Sha1, 12),
        "sha256" | "sha2-256" => Integrity::hmac(MacAlg::Sha256, 16),
        "sha384" | "sha2-384" => Integrity::hmac(MacAlg::Sha384, 24),
        "sha512" | "sha2-512" => Integrity::hmac(MacAlg::Sha512, 32),
        _ => return None,
    })
}

/// A tcpdump IKEv2 secret's encryption name (`aes128`, `3des`, ...).
pub fn tcpdump_ike_cipher(name: &str) -> Option<Cipher> {
    let lower = name.to_ascii_lowercase();
    let base = lower.strip_suffix("-cbc").unwrap_or(&lower);
    Some(match base.replace('-', "").as_str() {
        "none" | "null" => Cipher::Null,
        "3des" | "des3" => Cipher::TripleDesCbc,
        "aes128" => Cipher::AesCbc { key_len: 16 },
        "aes192" => Cipher::AesCbc { key_len: 24 },
        "aes256" => Cipher::AesCbc { key_len: 32 },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ikev2_cipher_names_of_wireshark_and_strongswan() {
        assert_eq!(ikev2_cipher("3DES [RFC2451]"), Some(Cipher::TripleDesCbc));
        assert_eq!(ikev2_cipher("NULL [RFC2410]"), Some(Cipher::Null));
        assert_eq!(
            ikev2_cipher("AES-CBC-256 [RFC3602]"),
            Some(Cipher::AesCbc { key_len: 32 })
        );
        assert_eq!(
            ikev2_cipher("AES-CTR-192 [RFC5930]"),
            Some(Cipher::AesCtr { key_len: 24 })
        );
        assert_eq!(
            ikev2_cipher("AES-GCM-256 with 8 octet ICV [RFC5282]"),
            Some(Cipher::AesGcm {
                key_len: 32,
                icv_len: 8
            })
        );
        assert_eq!(
            ikev2_cipher("AES-CCM-128 with 12 octet ICV [RFC5282]"),
            Some(Cipher::AesCcm {
                key_len: 16,
                icv_len: 12
            })
        );
        assert_eq!(ikev2_cipher("AES-GCM-256 with 9 octet ICV"), None);
        assert_eq!(ikev2_cipher("AES-CBC-100"), None);
        assert_eq!(ikev2_cipher("CAMELLIA-CBC-128"), None);
    }

    #[test]
    fn ikev2_integrity_names_and_truncations() {
        let check = |name, mac, icv| {
            assert_eq!(ikev2_integrity(name), Some(Integrity { mac, icv_len: icv }))
        };
        check("HMAC_SHA1_96 [RFC2404]", Some(MacAlg::Sha1), 12);
        check("HMAC_SHA1_160 [RFC4595]", Some(MacAlg::Sha1), 20);
        check("HMAC_MD5_128 [RFC4595]", Some(MacAlg::Md5), 16);
        check("HMAC_SHA2_256_128 [RFC4868]", Some(MacAlg::Sha256), 16);
        check("HMAC_SHA2_384_192 [RFC4868]", Some(MacAlg::Sha384), 24);
        check("HMAC_SHA2_512_256 [RFC4868]", Some(MacAlg::Sha512), 32);
        check("NONE [RFC4306]", None, 0);
        check("ANY 96-bits of Authentication [No Checking]", None, 12);
        assert_eq!(ikev2_integrity("HMAC_SHA3_256"), None);
        assert_eq!(ikev2_integrity("ANY 7-bits"), None);
    }

    #[test]
    fn esp_names_tolerate_strongswan_spelling() {
        let resolve = |name, len, icv| esp_cipher(name).and_then(|c| c.resolve(len, icv));
        assert_eq!(
            resolve("TripleDes-CBC [RFC2451]", 24, 0),
            Some(Cipher::TripleDesCbc)
        );
        assert_eq!(
            resolve("AES-CBC [RFC3602]", 16, 12),
            Some(Cipher::AesCbc { key_len: 16 })
        );
        assert_eq!(resolve("AES-CBC [RFC3602]", 20, 12), None);
        assert_eq!(
            resolve("AES-CTR [RFC3686]", 36, 12),
            Some(Cipher::AesCtr { key_len: 32 })
        );
        let gcm8 = Cipher::AesGcm {
            key_len: 16,
            icv_len: 8,
        };
        assert_eq!(resolve("AES-GCM [RFC4106]", 20, 8), Some(gcm8));
        assert_eq!(
            resolve("AES-GCM with 8 octet ICV [RFC4106]", 20, 0),
            Some(gcm8)
        );
        assert_eq!(resolve("AES-GCM [RFC4106]", 20, 0), None);
        assert_eq!(
            esp_integrity("HMAC-SHA-1-96 [RFC2404]"),
            Some(Integrity::hmac(MacAlg::Sha1, 12))
        );
        assert_eq!(
            esp_integrity("ANY 128 bit authentication [no checking]"),
            Some(Integrity::unchecked(16))
        );
        assert_eq!(esp_integrity("MAC-RIPEMD-160-96 [RFC2857]"), None);
    }

    #[test]
    fn tcpdump_names() {
        assert_eq!(
            tcpdump_esp("3des-cbc-hmac96", 24),
            Some((Cipher::TripleDesCbc, Integrity::unchecked(12)))
        );
        assert_eq!(
            tcpdump_esp("aes256-cbc-hmac96", 32),
            Some((Cipher::AesCbc { key_len: 32 }, Integrity::unchecked(12)))
        );
        assert_eq!(
            tcpdump_esp("none", 0),
            Some((Cipher::Null, Integrity::NONE))
        );
        assert_eq!(tcpdump_esp("rc4", 16), None);
        assert_eq!(
            tcpdump_integrity("sha1"),
            Some(Integrity::hmac(MacAlg::Sha1, 12))
        );
        assert_eq!(
            tcpdump_ike_cipher("aes128"),
            Some(Cipher::AesCbc { key_len: 16 })
        );
    }

    #[test]
    fn lengths_per_cipher() {
        let gcm = Cipher::AesGcm {
            key_len: 32,
            icv_len: 16,
        };
        assert_eq!(
            (gcm.material_len(), gcm.iv_len(), gcm.block_len()),
            (36, 8, 1)
        );
        assert_eq!(gcm.aead_icv_len(), Some(16));
        let ccm = Cipher::AesCcm {
            key_len: 16,
            icv_len: 12,
        };
        assert_eq!(ccm.material_len(), 19);
        let cbc = Cipher::AesCbc { key_len: 24 };
        assert_eq!(
            (cbc.material_len(), cbc.iv_len(), cbc.block_len()),
            (24, 16, 16)
        );
        assert_eq!(Cipher::TripleDesCbc.iv_len(), 8);
        assert_eq!(gcm.name(), "AES-GCM-256/16");
    }
}
