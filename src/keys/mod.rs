//! Key tables: the session keys given with `--keys PATH` so that ipsecmon can look inside
//! encrypted IKE messages and ESP packets.
//!
//! `PATH` is a file or a directory of files (strongSwan's save-keys plugin writes
//! `ikev1_decryption_table`, `ikev2_decryption_table` and `esp_sa` into one directory).
//! Each line is recognised by its shape, so formats may be mixed:
//!
//! - Wireshark's IKEv1 table: `icookie,encryption key` (hex). The IV is not in the table;
//!   it is derived from the key exchange seen on the wire (RFC 2409 Appendix B).
//! - Wireshark's IKEv2 table: `SPIi,SPIr,SK_ei,SK_er,"encryption",SK_ai,SK_ar,"integrity"`.
//! - Wireshark's ESP SA table: `"IPv4","src","dst","0xSPI","encryption","0xkey",
//!   "authentication","0xkey"` (addresses may be `*`, or a prefix such as `10.0.0.0/8`).
//! - tcpdump's `-E` secrets: `0xSPI@dst alg:0xkey` and `ikev2 I|R 0xSPIi 0xSPIr
//!   integ:0xkey enc:0xkey`.
//!
//! Lines starting with `#` and empty lines are skipped. A line that cannot be read is an
//! error naming the file and the line, never the key. A key file that group or others
//! may read draws a warning naming the file.

mod algo;
mod parse;
mod secret;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub use algo::{Cipher, Integrity, MacAlg};
pub use secret::Secret;

/// Most key files read from one directory.
pub const MAX_FILES: usize = 256;
/// Largest key file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Why a key table could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A line is not in any of the formats.
    #[error("{}:{line}: {reason}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong, naming fields by position (never their content).
        reason: String,
    },
    /// Too many files, or a file too large to be a key table.
    #[error("{}: {reason}", path.display())]
    Limit {
        /// The file or directory.
        path: PathBuf,
        /// Which limit.
        reason: String,
    },
}

/// The encryption and integrity keys of one direction of an IKEv2 SA.
#[derive(Debug)]
pub struct DirectionKeys {
    /// SK_ei or SK_er (with the salt or nonce of combined-mode and counter ciphers).
    pub encryption: Secret,
    /// SK_ai or SK_ar (empty for combined-mode ciphers).
    pub integrity: Secret,
}

/// The keys of one IKEv2 SA.
#[derive(Debug)]
pub struct Ikev2Keys {
    /// Initiator SPI.
    pub spi_i: u64,
    /// Responder SPI.
    pub spi_r: u64,
    /// Encryption algorithm.
    pub cipher: Cipher,
    /// Integrity algorithm (NONE for combined-mode ciphers).
    pub integrity: Integrity,
    /// Keys of messages sent by the original initiator (I flag set).
    pub initiator: Option<DirectionKeys>,
    /// Keys of messages sent by the original responder.
    pub responder: Option<DirectionKeys>,
}

impl Ikev2Keys {
    /// The key lengths fit the algorithms.
    fn check(&self) -> Result<(), String> {
        let dirs = [&self.initiator, &self.responder];
        for d in dirs.into_iter().flatten() {
            if d.encryption.len() != self.cipher.material_len() {
                return Err(format!(
                    "encryption key: {} bytes, {} needs {}",
                    d.encryption.len(),
                    self.cipher.name(),
                    self.cipher.material_len()
                ));
            }
            if self.integrity.mac.is_some() && d.integrity.is_empty() {
                return Err("integrity key: missing for an HMAC algorithm".into());
            }
        }
        Ok(())
    }

    /// The keys of the direction a message travels: `from_initiator` is its I flag.
    pub fn direction(&self, from_initiator: bool) -> Option<&DirectionKeys> {
        if from_initiator {
            self.initiator.as_ref()
        } else {
            self.responder.as_ref()
        }
    }
}

/// The encryption key of one IKEv1 (ISAKMP) SA.
#[derive(Debug)]
pub struct Ikev1Key {
    /// Initiator cookie.
    pub icookie: u64,
    /// The encryption key (SKEYID_e, or its extension for long keys).
    pub key: Secret,
}

/// The address family an ESP SA line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
    /// Either.
    Any,
}

impl Family {
    fn parse(field: &str) -> Option<Family> {
        match field.trim().to_ascii_lowercase().as_str() {
            "ipv4" => Some(Family::V4),
            "ipv6" => Some(Family::V6),
            "any" | "*" => Some(Family::Any),
            _ => None,
        }
    }

    fn admits(self, ip: IpAddr) -> bool {
        match self {
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
            Family::Any => true,
        }
    }
}

/// The source or destination of an ESP SA line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrPattern {
    /// `*`.
    Any,
    /// One address.
    Exact(IpAddr),
    /// `addr/bits`, or an IPv4 address with trailing `*` octets (`10.1.*.*`).
    Prefix(IpAddr, u8),
}

impl AddrPattern {
    fn parse(field: &str) -> Option<AddrPattern> {
        let f = field.trim();
        if f == "*" || f.is_empty() {
            return Some(AddrPattern::Any);
        }
        if let Some((addr, bits)) = f.split_once('/') {
            let addr: IpAddr = addr.parse().ok()?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits: u8 = bits.parse().ok().filter(|b| *b <= max)?;
            return Some(AddrPattern::Prefix(addr, bits));
        }
        if let Ok(addr) = f.parse() {
            return Some(AddrPattern::Exact(addr));
        }
        Self::starred_v4(f)
    }

    /// `10.1.*.*` as the prefix `10.1.0.0/16`.
    fn starred_v4(f: &str) -> Option<AddrPattern> {
        let parts: Vec<&str> = f.split('.').collect();
        let fixed = parts.iter().take_while(|p| **p != "*").count();
        if parts.len() != 4 || parts[fixed..].iter().any(|p| *p != "*") {
            return None;
        }
        let mut octets = [0u8; 4];
        for (o, p) in octets.iter_mut().zip(&parts[..fixed]) {
            *o = p.parse().ok()?;
        }
        Some(AddrPattern::Prefix(IpAddr::from(octets), (fixed * 8) as u8))
    }

    /// `true` when `ip` matches.
    pub fn matches(self, ip: IpAddr) -> bool {
        match self {
            AddrPattern::Any => true,
            AddrPattern::Exact(a) => a == ip,
            AddrPattern::Prefix(net, bits) => in_prefix(net, bits, ip),
        }
    }
}

fn in_prefix(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    let (n, a, width) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => (u128::from(u32::from(n)), u128::from(u32::from(a)), 32),
        (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
        _ => return false,
    };
    let bits = u32::from(bits).min(width);
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (n >> shift) == (a >> shift)
}

/// The keys of one ESP SA (one direction).
#[derive(Debug)]
pub struct EspSaKeys {
    /// Address family the line is for.
    pub family: Family,
    /// Outer source address.
    pub src: AddrPattern,
    /// Outer destination address.
    pub dst: AddrPattern,
    /// SPI, or `None` for any.
    pub spi: Option<u32>,
    /// Encryption algorithm.
    pub cipher: Cipher,
    /// Authentication algorithm (NONE for combined-mode ciphers).
    pub integrity: Integrity,
    /// Encryption key material.
    pub enc_key: Secret,
    /// Authentication key.
    pub auth_key: Secret,
}

impl EspSaKeys {
    fn check(&self) -> Result<(), String> {
        if self.enc_key.len() != self.cipher.material_len() {
            return Err(format!(
                "encryption key: {} bytes, {} needs {}",
                self.enc_key.len(),
                self.cipher.name(),
                self.cipher.material_len()
            ));
        }
        if self.integrity.mac.is_some() && self.auth_key.is_empty() {
            return Err("authentication key: missing for an HMAC algorithm".into());
        }
        Ok(())
    }

    /// `true` when this line is for a packet from `src` to `dst`.
    pub fn matches(&self, src: IpAddr, dst: IpAddr) -> bool {
        self.family.admits(dst) && self.src.matches(src) && self.dst.matches(dst)
    }
}

/// Every key read from `--keys`, indexed for the lookups of decryption.
#[derive(Debug, Default)]
pub struct KeyTable {
    ikev1: Vec<Ikev1Key>,
    ikev2: Vec<Ikev2Keys>,
    esp: Vec<EspSaKeys>,
    ikev1_index: HashMap<u64, Vec<usize>>,
    ikev2_index: HashMap<(u64, u64), Vec<usize>>,
    esp_index: HashMap<u32, Vec<usize>>,
    esp_any_spi: Vec<usize>,
}

impl KeyTable {
    /// Reads a key file, or every regular file of a directory (in name order, skipping
    /// names that start with a dot). The files are read once: lines appended later (the
    /// save-keys plugin writing during a live capture) are not seen.
    pub fn load(path: &Path) -> Result<KeyTable, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut table = KeyTable::default();
        if path.is_dir() {
            for file in directory_files(path).map_err(io)? {
                table.read_file(&file)?;
            }
            if table.is_empty() {
                tracing::warn!(dir = %path.display(), "no keys found in the key directory");
            }
        } else {
            table.read_file(path)?;
        }
        table.reindex();
        Ok(table)
    }

    /// Parses key table text; `name` stands for the file in errors.
    pub fn parse(text: &str, name: &Path) -> Result<KeyTable, KeyError> {
        let mut table = KeyTable::default();
        table.add_text(text, name)?;
        table.reindex();
        Ok(table)
    }

    fn read_file(&mut self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(KeyError::Limit {
                path: path.to_path_buf(),
                reason: format!("larger than {MAX_FILE_BYTES} bytes: not a key table"),
            });
        }
        warn_if_readable(path, &meta);
        let mut text = std::fs::read_to_string(path).map_err(io)?;
        let result = self.add_text(&text, path);
        // The text holds the keys in hex: forget it as the keys themselves are forgotten.
        // SAFETY: only zero bytes are written, which keeps the string valid UTF-8.
        secret::wipe(unsafe { text.as_bytes_mut() });
        result
    }

    fn add_text(&mut self, text: &str, path: &Path) -> Result<(), KeyError> {
        let mut halves: HashMap<(u64, u64), usize> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let t = raw.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let bad = |reason| KeyError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                reason,
            };
            match parse::line(t).map_err(bad)? {
                parse::Line::Ikev1(k) => self.ikev1.push(k),
                parse::Line::Ikev2(k) => self.ikev2.push(k),
                parse::Line::Esp(list) => self.esp.extend(list),
                parse::Line::Ikev2Half { initiator, keys } => {
                    self.add_half(&mut halves, initiator, keys).map_err(bad)?
                }
            }
        }
        Ok(())
    }

    /// Joins tcpdump's `ikev2 I` and `ikev2 R` lines of the same SPIs into one entry.
    fn add_half(
        &mut self,
        halves: &mut HashMap<(u64, u64), usize>,
        initiator: bool,
        keys: Ikev2Keys,
    ) -> Result<(), String> {
        let spis = (keys.spi_i, keys.spi_r);
        let Some(&i) = halves.get(&spis) else {
            halves.insert(spis, self.ikev2.len());
            self.ikev2.push(keys);
            return Ok(());
        };
        let entry = &mut self.ikev2[i];
        if entry.cipher != keys.cipher || entry.integrity != keys.integrity {
            return Err("ikev2 secret: the I and R lines name different algorithms".into());
        }
        if initiator {
            entry.initiator = keys.initiator;
        } else {
            entry.responder = keys.responder;
        }
        Ok(())
    }

    fn reindex(&mut self) {
        self.ikev1_index.clear();
        self.ikev2_index.clear();
        self.esp_index.clear();
        self.esp_any_spi.clear();
        for (i, k) in self.ikev1.iter().enumerate() {
            self.ikev1_index.entry(k.icookie).or_default().push(i);
        }
        for (i, k) in self.ikev2.iter().enumerate() {
            self.ikev2_index
                .entry((k.spi_i, k.spi_r))
                .or_default()
                .push(i);
        }
        for (i, k) in self.esp.iter().enumerate() {
            match k.spi {
                Some(spi) => self.esp_index.entry(spi).or_default().push(i),
                None => self.esp_any_spi.push(i),
            }
        }
    }

    /// Entries of all kinds.
    pub fn len(&self) -> usize {
        self.ikev1.len() + self.ikev2.len() + self.esp.len()
    }

    /// `true` when the table holds no key at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries per kind: IKEv1, IKEv2, ESP (for the start-up log line).
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.ikev1.len(), self.ikev2.len(), self.esp.len())
    }

    /// The IKEv1 keys for an initiator cookie, in table order (a table may hold both
    /// peers' keys when they disagree, as after a preshared-key mismatch).
    pub fn ikev1(&self, icookie: u64) -> impl Iterator<Item = &Ikev1Key> {
        let idx = self
            .ikev1_index
            .get(&icookie)
            .map_or(&[][..], Vec::as_slice);
        idx.iter().map(|&i| &self.ikev1[i])
    }

    /// `true` when some IKEv1 key is given for this cookie.
    pub fn has_ikev1(&self, icookie: u64) -> bool {
        self.ikev1_index.contains_key(&icookie)
    }

    /// The IKEv2 keys for an SPI pair, in table order.
    pub fn ikev2(&self, spi_i: u64, spi_r: u64) -> impl Iterator<Item = &Ikev2Keys> {
        let idx = self.ikev2_index.get(&(spi_i, spi_r));
        idx.map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|&i| &self.ikev2[i])
    }

    /// The ESP SA keys that match a packet, exact SPIs first, then lines for any SPI.
    pub fn esp(&self, src: IpAddr, dst: IpAddr, spi: u32) -> impl Iterator<Item = &EspSaKeys> {
        let exact = self.esp_index.get(&spi).map_or(&[][..], Vec::as_slice);
        exact
            .iter()
            .chain(&self.esp_any_spi)
            .map(|&i| &self.esp[i])
            .filter(move |k| k.matches(src, dst))
    }

    /// `true` when the table has ESP keys at all.
    pub fn has_esp(&self) -> bool {
        !self.esp.is_empty()
    }
}

/// The regular files of a directory, by name, without hidden ones.
fn directory_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && entry.file_type()?.is_file() {
            files.push(entry.path());
        }
        if files.len() > MAX_FILES {
            return Err(std::io::Error::other(format!(
                "more than {MAX_FILES} files: not a key directory"
            )));
        }
    }
    files.sort();
    Ok(files)
}

/// Warns when group or others may read a key file.
fn warn_if_readable(path: &Path, meta: &std::fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o044 != 0 {
        tracing::warn!(
            file = %path.display(),
            "key file is readable by other users; restrict it (chmod 600)"
        );
    }
}

#[cfg(test)]
mod tests;
