//! Wireshark key tables from charon logs, checked against a capture.
//!
//! [`build`] takes the key sets [`super::keylog`] found in one or more charon logs and,
//! when captures are given, an index of their encrypted IKE messages and ESP packets
//! ([`scan`]). It writes three tables in the formats of Wireshark's UAT files (and of
//! strongSwan's save-keys plugin): `ikev2_decryption_table` (SPIi, SPIr, SK_ei, SK_er,
//! encryption, SK_ai, SK_ar, integrity), `ikev1_decryption_table` (initiator cookie,
//! phase 1 encryption key) and `esp_sa` (protocol, source, destination, SPI, encryption,
//! key, authentication, key).
//!
//! The capture settles what the log leaves open and proves the rest: an IKEv2 message's
//! integrity checksum (RFC 7296 §3.14) must verify with SK_ai or SK_ar, an ESP packet's
//! ICV (RFC 4303 §2.8) with the integrity key of its direction. So a rekeyed IKE SA, whose
//! SPIs charon does not log, is given the SPI pair whose messages verify with its keys;
//! each ESP direction is given the key pair that verifies; ESP addresses are the ones the
//! capture shows (the two sides of a NAT differ). Every line carries a comment naming the
//! log line it came from and what was verified.
//!
//! Limitation: only HMAC integrity is checked; sets with AEAD ciphers (AES-GCM, AES-CCM)
//! and IKEv1 phase 1 keys (IKEv1 has no integrity check value) are written unchecked,
//! their roles taken from the log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};

use super::keylog::{IkeKeys, Key, LoggedChild, LoggedIke, ParsedLog, SaEnd};
use crate::capture::{open_file, CaptureError, FrameSource};
use crate::wire::ike::{peek_header, IkeHeader};
use crate::wire::{Decoder, Packet};

/// Most encrypted IKE messages kept from one capture.
const MAX_IKE: usize = 10_000;
/// Most ESP packets kept per SPI for checking.
const MAX_ESP_SAMPLES: usize = 64;

/// An encrypted IKE message seen in a capture.
#[derive(Debug, Clone)]
pub struct IkeSample {
    /// Its fixed header.
    pub header: IkeHeader,
    /// The whole message (`header.length` bytes).
    pub bytes: Vec<u8>,
}

/// One ESP packet: its outer addresses and the bytes an ICV covers plus the ICV.
#[derive(Debug, Clone)]
pub struct EspSample {
    /// Outer source.
    pub src: IpAddr,
    /// Outer destination.
    pub dst: IpAddr,
    /// SPI, sequence number and payload (RFC 4303 §2), ICV included.
    pub bytes: Vec<u8>,
}

/// What [`scan`] kept of a capture.
#[derive(Debug, Clone, Default)]
pub struct CaptureIndex {
    /// Encrypted IKE messages in capture order (IKEv2 after IKE_SA_INIT, IKEv1 with E).
    pub ike: Vec<IkeSample>,
    /// ESP packets by SPI (at most [`MAX_ESP_SAMPLES`] each).
    pub esp: HashMap<u32, Vec<EspSample>>,
}

/// Reads a capture and keeps what key checks need. A record cut short at the end (a
/// capture tcpdump is still writing) ends the reading.
pub fn scan(path: &Path) -> Result<CaptureIndex, CaptureError> {
    let mut source = open_file(path)?;
    let mut decoder = Decoder::default();
    let mut index = CaptureIndex::default();
    loop {
        let frame = match source.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(CaptureError::Record { .. }) => break,
            Err(e) => return Err(e),
        };
        match decoder.decode_numbered(frame.number, frame.link, frame.ts, frame.data) {
            Ok(Packet::Ike(d)) => index.add_ike(d.message),
            Ok(Packet::Esp(e)) => {
                let mut bytes = Vec::with_capacity(8 + e.payload.len());
                bytes.extend_from_slice(&e.spi.to_be_bytes());
                bytes.extend_from_slice(&e.seq.to_be_bytes());
                bytes.extend_from_slice(e.payload);
                let samples = index.esp.entry(e.spi).or_default();
                if samples.len() < MAX_ESP_SAMPLES {
                    samples.push(EspSample {
                        src: e.addrs.src,
                        dst: e.addrs.dst,
                        bytes,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(index)
}

impl CaptureIndex {
    fn add_ike(&mut self, message: &[u8]) {
        let Some(header) = peek_header(message) else {
            return;
        };
        let encrypted = match header.major {
            2 => header.exchange_type != 34 && header.spi_r != 0,
            1 => header.is_encrypted_v1(),
            _ => false,
        };
        let len = usize::try_from(header.length).unwrap_or(usize::MAX);
        if encrypted && self.ike.len() < MAX_IKE && len <= message.len() {
            self.ike.push(IkeSample {
                header,
                bytes: message[..len].to_vec(),
            });
        }
    }
}

/// The HMAC of an integrity algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MacAlg {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// Cipher and integrity of a proposal, in charon's names and Wireshark's.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Algorithms {
    ike_encr: String,
    esp_encr: String,
    ike_integ: &'static str,
    esp_integ: &'static str,
    /// HMAC and ICV length, `None` for AEAD or unknown integrity.
    mac: Option<(MacAlg, usize)>,
}

/// Wireshark's names for a charon proposal (`IKE:AES_CBC_128/HMAC_SHA2_256_128/…`);
/// `None` when its cipher is not one Wireshark decrypts.
fn algorithms(proposal: &str) -> Option<Algorithms> {
    let body = proposal.split_once(':').map_or(proposal, |(_, b)| b);
    let tokens: Vec<&str> = body.split('/').collect();
    let (ike_encr, esp_encr) = tokens.iter().find_map(|t| cipher_names(t))?;
    let integ = tokens.iter().find_map(|t| integrity(t));
    let (ike_integ, esp_integ, mac) = match integ {
        Some((ike, esp, mac)) => (ike, esp, Some(mac)),
        None => ("NONE [RFC4306]", "NULL", None),
    };
    Some(Algorithms {
        ike_encr,
        esp_encr,
        ike_integ,
        esp_integ,
        mac,
    })
}

/// IKEv2-table and ESP-table names of a charon cipher token.
fn cipher_names(token: &str) -> Option<(String, String)> {
    if token == "3DES_CBC" {
        return Some(("3DES [RFC2451]".into(), "TripleDES-CBC [RFC2451]".into()));
    }
    if token == "NULL" {
        return Some(("NULL [RFC2410]".into(), "NULL".into()));
    }
    let parts: Vec<&str> = token.split('_').collect();
    match parts.as_slice() {
        ["AES", "CBC", bits] => Some((
            format!("AES-CBC-{bits} [RFC3602]"),
            "AES-CBC [RFC3602]".into(),
        )),
        ["AES", "CTR", bits] => Some((
            format!("AES-CTR-{bits} [RFC5930]"),
            "AES-CTR [RFC3686]".into(),
        )),
        ["AES", mode @ ("GCM" | "CCM"), icv, bits] => Some((
            format!("AES-{mode}-{bits} with {icv} octet ICV [RFC5282]"),
            format!("AES-{mode} with {icv} octet ICV [RFC4106]"),
        )),
        _ => None,
    }
}

/// IKEv2-table name, ESP-table name, HMAC and ICV length of a charon integrity token.
fn integrity(token: &str) -> Option<(&'static str, &'static str, (MacAlg, usize))> {
    Some(match token {
        "HMAC_MD5_96" => (
            "HMAC_MD5_96 [RFC2403]",
            "HMAC-MD5-96 [RFC2403]",
            (MacAlg::Md5, 12),
        ),
        "HMAC_SHA1_96" => (
            "HMAC_SHA1_96 [RFC2404]",
            "HMAC-SHA-1-96 [RFC2404]",
            (MacAlg::Sha1, 12),
        ),
        "HMAC_SHA2_256_128" => (
            "HMAC_SHA2_256_128 [RFC4868]",
            "HMAC-SHA-256-128 [RFC4868]",
            (MacAlg::Sha256, 16),
        ),
        "HMAC_SHA2_384_192" => (
            "HMAC_SHA2_384_192 [RFC4868]",
            "HMAC-SHA-384-192 [RFC4868]",
            (MacAlg::Sha384, 24),
        ),
        "HMAC_SHA2_512_256" => (
            "HMAC_SHA2_512_256 [RFC4868]",
            "HMAC-SHA-512-256 [RFC4868]",
            (MacAlg::Sha512, 32),
        ),
        _ => return None,
    })
}

/// HMAC of `data` under `key` (HMAC takes keys of any length).
fn mac_bytes<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let mut mac = <M as Mac>::new_from_slice(key).ok()?;
    mac.update(data);
    Some(mac.finalize().into_bytes().to_vec())
}

/// Whether the last `icv` bytes of `bytes` are the truncated HMAC of the rest.
fn icv_ok(mac: (MacAlg, usize), key: &[u8], bytes: &[u8]) -> bool {
    let (alg, icv) = mac;
    if key.is_empty() || bytes.len() <= icv {
        return false;
    }
    let (data, want) = bytes.split_at(bytes.len() - icv);
    let full = match alg {
        MacAlg::Md5 => mac_bytes::<Hmac<md5::Md5>>(key, data),
        MacAlg::Sha1 => mac_bytes::<Hmac<sha1::Sha1>>(key, data),
        MacAlg::Sha256 => mac_bytes::<Hmac<sha2::Sha256>>(key, data),
        MacAlg::Sha384 => mac_bytes::<Hmac<sha2::Sha384>>(key, data),
        MacAlg::Sha512 => mac_bytes::<Hmac<sha2::Sha512>>(key, data),
    };
    full.as_deref().and_then(|f| f.get(..icv)) == Some(want)
}

/// How a table line was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// This many messages or packets verified, none failed.
    Verified(usize),
    /// Some failed: (verified, failed).
    Failed(usize, usize),
    /// Nothing of it is in the captures.
    NotSeen,
    /// Not checkable (AEAD, IKEv1 phase 1) or no capture given.
    Unchecked(&'static str),
}

impl Check {
    fn describe(&self) -> String {
        match self {
            Check::Verified(n) => format!("{n} verified"),
            Check::Failed(ok, bad) => format!("{bad} FAILED, {ok} verified"),
            Check::NotSeen => "not in the capture".into(),
            Check::Unchecked(why) => format!("unchecked: {why}"),
        }
    }
}

/// A line of `ikev2_decryption_table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ikev2Line {
    /// Initiator SPI.
    pub spi_i: u64,
    /// Responder SPI.
    pub spi_r: u64,
    keys: [Key; 4],
    encr: String,
    integ: &'static str,
    /// Where it came from (`LOG:LINE IKE_SA`).
    pub origin: String,
    /// How it was checked.
    pub check: Check,
}

/// A line of `ikev1_decryption_table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ikev1Line {
    /// Initiator cookie.
    pub cookie_i: u64,
    key: Key,
    /// Where it came from.
    pub origin: String,
}

/// A line of `esp_sa`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspLine {
    /// Outer source.
    pub src: IpAddr,
    /// Outer destination.
    pub dst: IpAddr,
    /// SPI.
    pub spi: u32,
    encr: String,
    enc_key: Key,
    auth: &'static str,
    auth_key: Key,
    /// Where it came from.
    pub origin: String,
    /// How it was checked.
    pub check: Check,
}

/// The three tables and what could not be placed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tables {
    /// IKEv2 SAs.
    pub ikev2: Vec<Ikev2Line>,
    /// IKEv1 SAs.
    pub ikev1: Vec<Ikev1Line>,
    /// ESP SAs, one line per direction and address pair.
    pub esp: Vec<EspLine>,
    /// Key sets left out, with the reason (unknown SPIs, unknown cipher).
    pub skipped: Vec<String>,
}

fn origin_of(o: &super::keylog::Origin) -> String {
    format!("{}:{} {}", o.log, o.line, o.ike_sa)
}

/// Builds the tables from parsed logs, checked against the captures' contents.
pub fn build(logs: &[ParsedLog], captures: &[CaptureIndex]) -> Tables {
    let mut tables = Tables::default();
    let ike: Vec<&IkeSample> = captures.iter().flat_map(|c| c.ike.iter()).collect();
    let mut esp: HashMap<u32, Vec<&EspSample>> = HashMap::new();
    for c in captures {
        for (spi, samples) in &c.esp {
            esp.entry(*spi).or_default().extend(samples.iter());
        }
    }
    let checked = !captures.is_empty();
    for log in logs {
        for set in &log.ike {
            tables.add_ike(set, &ike, checked);
        }
    }
    for log in logs {
        for child in &log.children {
            tables.add_child(child, &esp, checked);
        }
    }
    tables
}

impl Tables {
    fn add_ike(&mut self, set: &LoggedIke, ike: &[&IkeSample], checked: bool) {
        let origin = origin_of(&set.origin);
        match &set.keys {
            IkeKeys::V1 { enc } => self.add_v1(set, enc, origin),
            IkeKeys::V2 {
                sk_ei,
                sk_er,
                sk_ai,
                sk_ar,
            } => {
                let keys = [sk_ei.clone(), sk_er.clone(), sk_ai.clone(), sk_ar.clone()];
                self.add_v2(set, keys, origin, ike, checked);
            }
        }
    }

    fn add_v1(&mut self, set: &LoggedIke, enc: &Key, origin: String) {
        let Some((cookie_i, _)) = set.spis else {
            self.skipped
                .push(format!("{origin}: IKEv1 key without cookies in the log"));
            return;
        };
        let line = Ikev1Line {
            cookie_i,
            key: enc.clone(),
            origin,
        };
        if !self
            .ikev1
            .iter()
            .any(|l| l.cookie_i == cookie_i && l.key == line.key)
        {
            self.ikev1.push(line);
        }
    }

    fn add_v2(
        &mut self,
        set: &LoggedIke,
        keys: [Key; 4],
        origin: String,
        ike: &[&IkeSample],
        checked: bool,
    ) {
        let Some(alg) = set.proposal.as_deref().and_then(algorithms) else {
            self.skipped
                .push(format!("{origin}: no IKE proposal Wireshark decrypts"));
            return;
        };
        if self.ikev2.iter().any(|l| l.keys == keys) {
            // The same SA from the other host's log.
            return;
        }
        let taken: HashSet<(u64, u64)> = self.ikev2.iter().map(|l| (l.spi_i, l.spi_r)).collect();
        let spis = set
            .spis
            .or_else(|| find_ike_spis(&keys, alg.mac, ike, &taken));
        let Some((spi_i, spi_r)) = spis else {
            self.skipped.push(format!(
                "{origin}: SPIs not in the log, and no message in the captures verifies with these keys (an IKE SA rekeyed and unused before the capture ended, or no capture given)"
            ));
            return;
        };
        if taken.contains(&(spi_i, spi_r)) {
            return;
        }
        let check = match alg.mac {
            _ if !checked => Check::Unchecked("no capture given"),
            None => Check::Unchecked("AEAD cipher"),
            Some(mac) => check_ike(&keys, mac, (spi_i, spi_r), ike),
        };
        self.ikev2.push(Ikev2Line {
            spi_i,
            spi_r,
            keys,
            encr: alg.ike_encr,
            integ: alg.ike_integ,
            origin,
            check,
        });
    }

    fn add_child(
        &mut self,
        child: &LoggedChild,
        esp: &HashMap<u32, Vec<&EspSample>>,
        checked: bool,
    ) {
        let origin = origin_of(&child.origin);
        let Some(alg) = child.proposal.as_deref().and_then(algorithms) else {
            self.skipped
                .push(format!("{origin}: no ESP proposal Wireshark decrypts"));
            return;
        };
        for (i, end) in child.sas.iter().enumerate() {
            let samples = esp.get(&end.spi).map(Vec::as_slice).unwrap_or_default();
            let by_log = initiator_keys_by_log(child, i == 0);
            let (use_i, check) = pick_direction(child, alg.mac, samples, by_log, checked);
            let (enc_key, auth_key) = if use_i {
                (child.enc_i.clone(), child.int_i.clone())
            } else {
                (child.enc_r.clone(), child.int_r.clone())
            };
            for (src, dst) in esp_addresses(end, samples) {
                if self
                    .esp
                    .iter()
                    .any(|l| (l.spi, l.src, l.dst) == (end.spi, src, dst))
                {
                    continue;
                }
                self.esp.push(EspLine {
                    src,
                    dst,
                    spi: end.spi,
                    encr: alg.esp_encr.clone(),
                    enc_key: enc_key.clone(),
                    auth: alg.esp_integ,
                    auth_key: auth_key.clone(),
                    origin: origin.clone(),
                    check: check.clone(),
                });
            }
        }
    }
}

/// Which key pair the log's roles give a direction: `inbound` is the first SA charon
/// installed (the one whose SPI the logging host chose).
///
/// IKEv2 (RFC 7296 §2.17): the "initiator" keys protect traffic from the exchange's
/// initiator. IKEv1 (RFC 2409 §5.5): each key is derived with the SPI of the SA it
/// protects, and charon's "initiator" keys are those of the SA whose SPI the initiator
/// chose, i.e. traffic towards the initiator.
fn initiator_keys_by_log(child: &LoggedChild, inbound: bool) -> Option<bool> {
    let initiator = child.initiator?;
    // IKEv2: traffic from the initiator is inbound at the responder.
    let from_initiator = inbound != initiator;
    Some(if child.version == 1 {
        !from_initiator
    } else {
        from_initiator
    })
}

/// Picks the key pair of one ESP direction: the one its packets verify with, else the
/// log's roles.
fn pick_direction(
    child: &LoggedChild,
    mac: Option<(MacAlg, usize)>,
    samples: &[&EspSample],
    by_log: Option<bool>,
    checked: bool,
) -> (bool, Check) {
    let fallback = by_log.unwrap_or(true);
    let Some(mac) = mac else {
        return (fallback, Check::Unchecked("AEAD cipher"));
    };
    if !checked {
        return (fallback, Check::Unchecked("no capture given"));
    }
    if samples.is_empty() {
        return (fallback, Check::NotSeen);
    }
    let count = |key: &Key| {
        samples
            .iter()
            .filter(|s| icv_ok(mac, &key.0, &s.bytes))
            .count()
    };
    let (with_i, with_r) = (count(&child.int_i), count(&child.int_r));
    let use_i = with_i >= with_r;
    let ok = with_i.max(with_r);
    let check = if ok == samples.len() {
        Check::Verified(ok)
    } else {
        Check::Failed(ok, samples.len() - ok)
    };
    (use_i, check)
}

/// The address pairs an ESP direction appears with in the captures, else the log's.
fn esp_addresses(end: &SaEnd, samples: &[&EspSample]) -> Vec<(IpAddr, IpAddr)> {
    let mut pairs: Vec<(IpAddr, IpAddr)> = Vec::new();
    for s in samples {
        if !pairs.contains(&(s.src, s.dst)) {
            pairs.push((s.src, s.dst));
        }
    }
    if pairs.is_empty() {
        pairs.push((end.src, end.dst));
    }
    pairs
}

/// The SPI pair (not yet taken) whose first encrypted message verifies with `keys`.
fn find_ike_spis(
    keys: &[Key; 4],
    mac: Option<(MacAlg, usize)>,
    ike: &[&IkeSample],
    taken: &HashSet<(u64, u64)>,
) -> Option<(u64, u64)> {
    let mac = mac?;
    let mut seen = HashSet::new();
    ike.iter().find_map(|m| {
        let pair = (m.header.spi_i, m.header.spi_r);
        if m.header.major != 2 || taken.contains(&pair) || !seen.insert(pair) {
            return None;
        }
        ike_icv_ok(keys, mac, m).then_some(pair)
    })
}

/// IKEv2: messages from the original initiator carry SK_ai's checksum, others SK_ar's.
fn ike_icv_ok(keys: &[Key; 4], mac: (MacAlg, usize), m: &IkeSample) -> bool {
    let key = if m.header.is_initiator() {
        &keys[2]
    } else {
        &keys[3]
    };
    icv_ok(mac, &key.0, &m.bytes)
}

fn check_ike(keys: &[Key; 4], mac: (MacAlg, usize), spis: (u64, u64), ike: &[&IkeSample]) -> Check {
    let mine: Vec<&&IkeSample> = ike
        .iter()
        .filter(|m| (m.header.spi_i, m.header.spi_r) == spis)
        .collect();
    if mine.is_empty() {
        return Check::NotSeen;
    }
    let ok = mine.iter().filter(|m| ike_icv_ok(keys, mac, m)).count();
    if ok == mine.len() {
        Check::Verified(ok)
    } else {
        Check::Failed(ok, mine.len() - ok)
    }
}

/// Names of the table files, as Wireshark's profile directory holds them.
pub const IKEV2_TABLE: &str = "ikev2_decryption_table";
/// See [`IKEV2_TABLE`].
pub const IKEV1_TABLE: &str = "ikev1_decryption_table";
/// See [`IKEV2_TABLE`].
pub const ESP_TABLE: &str = "esp_sa";

impl Tables {
    /// The `ikev2_decryption_table` text.
    pub fn ikev2_text(&self) -> String {
        let mut out = String::new();
        for l in &self.ikev2 {
            let [ei, er, ai, ar] = &l.keys;
            let _ = writeln!(out, "# {} ({})", l.origin, l.check.describe());
            let _ = writeln!(
                out,
                "{:016x},{:016x},{},{},\"{}\",{},{},\"{}\"",
                l.spi_i,
                l.spi_r,
                ei.hex(),
                er.hex(),
                l.encr,
                ai.hex(),
                ar.hex(),
                l.integ
            );
        }
        out
    }

    /// The `ikev1_decryption_table` text.
    pub fn ikev1_text(&self) -> String {
        let mut out = String::new();
        for l in &self.ikev1 {
            let _ = writeln!(out, "# {}", l.origin);
            let _ = writeln!(out, "{:016x},{}", l.cookie_i, l.key.hex());
        }
        out
    }

    /// The `esp_sa` text.
    pub fn esp_text(&self) -> String {
        let mut out = String::new();
        for l in &self.esp {
            let family = if l.src.is_ipv4() { "IPv4" } else { "IPv6" };
            let auth_key = if l.auth_key.0.is_empty() {
                String::new()
            } else {
                format!("0x{}", l.auth_key.hex())
            };
            let _ = writeln!(out, "# {} ({})", l.origin, l.check.describe());
            let _ = writeln!(
                out,
                "\"{family}\",\"{}\",\"{}\",\"0x{:08x}\",\"{}\",\"0x{}\",\"{}\",\"{auth_key}\"",
                l.src,
                l.dst,
                l.spi,
                l.encr,
                l.enc_key.hex(),
                l.auth
            );
        }
        out
    }

    /// Writes the non-empty tables into `dir`; returns the files written.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut written = Vec::new();
        for (name, text) in [
            (IKEV2_TABLE, self.ikev2_text()),
            (IKEV1_TABLE, self.ikev1_text()),
            (ESP_TABLE, self.esp_text()),
        ] {
            if text.is_empty() {
                continue;
            }
            let path = dir.join(name);
            std::fs::write(&path, text)?;
            written.push(path);
        }
        Ok(written)
    }

    /// Counts of lines by check result, for a one-line summary per table.
    pub fn summary(&self) -> BTreeMap<&'static str, (usize, usize, usize)> {
        let tally = |checks: Vec<&Check>| {
            let failed = checks
                .iter()
                .filter(|c| matches!(c, Check::Failed(..)))
                .count();
            let verified = checks
                .iter()
                .filter(|c| matches!(c, Check::Verified(_)))
                .count();
            (checks.len(), verified, failed)
        };
        let mut m = BTreeMap::new();
        m.insert(
            IKEV2_TABLE,
            tally(self.ikev2.iter().map(|l| &l.check).collect()),
        );
        m.insert(
            ESP_TABLE,
            tally(self.esp.iter().map(|l| &l.check).collect()),
        );
        m.insert(IKEV1_TABLE, (self.ikev1.len(), 0, 0));
        m
    }

    /// The tables as a key table ipsecmon decrypts with, without writing them anywhere;
    /// `None` when they hold no line.
    pub fn key_table(&self) -> Option<Result<crate::keys::KeyTable, crate::keys::KeyError>> {
        let text = [self.ikev2_text(), self.ikev1_text(), self.esp_text()].concat();
        if text.lines().all(|l| l.starts_with('#')) {
            return None;
        }
        Some(crate::keys::KeyTable::parse(
            &text,
            Path::new("the lab's key tables"),
        ))
    }

    /// Whether any line failed its check.
    pub fn any_failed(&self) -> bool {
        self.ikev2
            .iter()
            .any(|l| matches!(l.check, Check::Failed(..)))
            || self
                .esp
                .iter()
                .any(|l| matches!(l.check, Check::Failed(..)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::keylog::Origin;

    fn origin() -> Origin {
        Origin {
            log: "alice.log".into(),
            line: 7,
            ike_sa: "lab|1".into(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// An ESP packet whose ICV is the HMAC-SHA-256-128 of the rest under `key`.
    fn esp_packet(spi: u32, seq: u32, key: &[u8], src: &str, dst: &str) -> EspSample {
        let mut bytes = spi.to_be_bytes().to_vec();
        bytes.extend_from_slice(&seq.to_be_bytes());
        bytes.extend_from_slice(&[0x5a; 32]);
        let icv = mac_bytes::<Hmac<sha2::Sha256>>(key, &bytes).unwrap();
        bytes.extend_from_slice(&icv[..16]);
        EspSample {
            src: ip(src),
            dst: ip(dst),
            bytes,
        }
    }

    /// An IKEv2 message with the given header fields, an SK body and a valid ICV.
    fn ike_message(spis: (u64, u64), initiator: bool, key: &[u8]) -> IkeSample {
        let mut bytes = spis.0.to_be_bytes().to_vec();
        bytes.extend_from_slice(&spis.1.to_be_bytes());
        let flags = if initiator { 0x08 } else { 0x20 };
        bytes.extend_from_slice(&[46, 0x20, 37, flags, 0, 0, 0, 5, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(&[0x33; 32]);
        let len = (bytes.len() + 16) as u32;
        bytes[24..28].copy_from_slice(&len.to_be_bytes());
        let icv = mac_bytes::<Hmac<sha2::Sha256>>(key, &bytes).unwrap();
        bytes.extend_from_slice(&icv[..16]);
        IkeSample {
            header: peek_header(&bytes).unwrap(),
            bytes,
        }
    }

    fn child(initiator: Option<bool>) -> LoggedChild {
        LoggedChild {
            origin: origin(),
            version: 2,
            proposal: Some("ESP:AES_CBC_128/HMAC_SHA2_256_128/NO_EXT_SEQ".into()),
            initiator,
            enc_i: Key(vec![1; 16]),
            enc_r: Key(vec![2; 16]),
            int_i: Key(vec![3; 32]),
            int_r: Key(vec![4; 32]),
            sas: vec![
                SaEnd {
                    spi: 0xc000_0001,
                    src: ip("192.0.2.2"),
                    dst: ip("192.0.2.1"),
                },
                SaEnd {
                    spi: 0xc000_0002,
                    src: ip("192.0.2.1"),
                    dst: ip("192.0.2.2"),
                },
            ],
        }
    }

    fn logs_with(child: LoggedChild) -> Vec<ParsedLog> {
        vec![ParsedLog {
            ike: Vec::new(),
            children: vec![child],
        }]
    }

    #[test]
    fn charon_proposals_map_to_wireshark_names() {
        let a =
            algorithms("IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048").unwrap();
        assert_eq!(a.ike_encr, "AES-CBC-128 [RFC3602]");
        assert_eq!(
            (a.ike_integ, a.esp_integ),
            ("HMAC_SHA2_256_128 [RFC4868]", "HMAC-SHA-256-128 [RFC4868]")
        );
        assert_eq!(a.mac, Some((MacAlg::Sha256, 16)));
        let d = algorithms("ESP:3DES_CBC/HMAC_SHA1_96/MODP_1024/NO_EXT_SEQ").unwrap();
        assert_eq!(
            (d.esp_encr.as_str(), d.esp_integ),
            ("TripleDES-CBC [RFC2451]", "HMAC-SHA-1-96 [RFC2404]")
        );
        let g = algorithms("ESP:AES_GCM_16_256/NO_EXT_SEQ").unwrap();
        assert_eq!(g.esp_encr, "AES-GCM with 16 octet ICV [RFC4106]");
        assert_eq!(g.ike_encr, "AES-GCM-256 with 16 octet ICV [RFC5282]");
        assert_eq!((g.esp_integ, g.mac), ("NULL", None));
        assert_eq!(algorithms("ESP:CAMELLIA_CBC_128/HMAC_SHA1_96"), None);
    }

    #[test]
    fn each_esp_direction_gets_the_key_its_packets_verify_with() {
        // The log says "initiator", but the packets of the first SA verify with the
        // responder keys: the capture wins, and the check says how many verified.
        let mut index = CaptureIndex::default();
        index.esp.insert(
            0xc000_0001,
            vec![esp_packet(
                0xc000_0001,
                1,
                &[4; 32],
                "192.0.2.2",
                "192.0.2.1",
            )],
        );
        index.esp.insert(
            0xc000_0002,
            vec![
                esp_packet(0xc000_0002, 1, &[3; 32], "192.0.2.1", "192.0.2.2"),
                esp_packet(0xc000_0002, 2, &[3; 32], "192.0.2.1", "192.0.2.2"),
            ],
        );
        let tables = build(&logs_with(child(Some(true))), &[index]);
        assert_eq!(tables.esp.len(), 2);
        assert_eq!(tables.esp[0].auth_key, Key(vec![4; 32]));
        assert_eq!(tables.esp[0].check, Check::Verified(1));
        assert_eq!(tables.esp[1].enc_key, Key(vec![1; 16]));
        assert_eq!(tables.esp[1].check, Check::Verified(2));
        assert!(!tables.any_failed());
    }

    #[test]
    fn esp_lines_take_the_addresses_of_the_capture_on_each_side_of_a_nat() {
        let mut index = CaptureIndex::default();
        index.esp.insert(
            0xc000_0002,
            vec![
                esp_packet(0xc000_0002, 1, &[3; 32], "10.0.0.2", "192.0.2.2"),
                esp_packet(0xc000_0002, 2, &[3; 32], "192.0.2.254", "192.0.2.2"),
            ],
        );
        let tables = build(&logs_with(child(Some(true))), &[index]);
        let pairs: Vec<(u32, String)> = tables
            .esp
            .iter()
            .map(|l| (l.spi, l.src.to_string()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                (0xc000_0001, "192.0.2.2".into()),
                (0xc000_0002, "10.0.0.2".into()),
                (0xc000_0002, "192.0.2.254".into()),
            ]
        );
        assert_eq!(tables.esp[0].check, Check::NotSeen);
    }

    #[test]
    fn without_packets_the_roles_of_the_log_decide() {
        // IKEv2 responder: its inbound SA carries the initiator's traffic.
        let tables = build(&logs_with(child(Some(false))), &[]);
        assert_eq!(tables.esp[0].enc_key, Key(vec![1; 16]));
        assert_eq!(tables.esp[1].enc_key, Key(vec![2; 16]));
        assert_eq!(tables.esp[0].check, Check::Unchecked("no capture given"));
        // IKEv1 initiator: keys follow the SPI, so its inbound SA has the initiator keys.
        let mut v1 = child(Some(true));
        v1.version = 1;
        let tables = build(&logs_with(v1), &[]);
        assert_eq!(tables.esp[0].enc_key, Key(vec![1; 16]));
    }

    #[test]
    fn a_wrong_key_is_reported_as_failed() {
        let mut index = CaptureIndex::default();
        index.esp.insert(
            0xc000_0001,
            vec![esp_packet(
                0xc000_0001,
                1,
                &[9; 32],
                "192.0.2.2",
                "192.0.2.1",
            )],
        );
        let tables = build(&logs_with(child(Some(true))), &[index]);
        assert_eq!(tables.esp[0].check, Check::Failed(0, 1));
        assert!(tables.any_failed());
    }

    fn ike_set(spis: Option<(u64, u64)>) -> LoggedIke {
        LoggedIke {
            origin: origin(),
            spis,
            proposal: Some("IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048".into()),
            keys: IkeKeys::V2 {
                sk_ei: Key(vec![0x11; 16]),
                sk_er: Key(vec![0x22; 16]),
                sk_ai: Key(vec![0x33; 32]),
                sk_ar: Key(vec![0x44; 32]),
            },
        }
    }

    #[test]
    fn a_rekeyed_ike_sa_is_given_the_spis_whose_messages_verify() {
        let old = (0x1111, 0x2222);
        let new = (0x3333, 0x4444);
        let index = CaptureIndex {
            ike: vec![
                ike_message(old, true, &[0x55; 32]),
                ike_message(new, true, &[0x33; 32]),
                ike_message(new, false, &[0x44; 32]),
            ],
            esp: HashMap::new(),
        };
        let logs = vec![ParsedLog {
            ike: vec![ike_set(None)],
            children: Vec::new(),
        }];
        let tables = build(&logs, &[index]);
        assert_eq!(tables.ikev2.len(), 1);
        assert_eq!((tables.ikev2[0].spi_i, tables.ikev2[0].spi_r), new);
        assert_eq!(tables.ikev2[0].check, Check::Verified(2));
        let text = tables.ikev2_text();
        let line = text.lines().nth(1).unwrap();
        assert_eq!(
            line,
            format!(
                "0000000000003333,0000000000004444,{},{},\"AES-CBC-128 [RFC3602]\",{},{},\"HMAC_SHA2_256_128 [RFC4868]\"",
                "11".repeat(16),
                "22".repeat(16),
                "33".repeat(32),
                "44".repeat(32)
            )
        );
        assert_eq!(
            text.lines().next(),
            Some("# alice.log:7 lab|1 (2 verified)")
        );
    }

    #[test]
    fn the_same_sa_from_both_logs_is_written_once() {
        let logs = vec![
            ParsedLog {
                ike: vec![ike_set(Some((1, 2)))],
                children: vec![child(Some(true))],
            },
            ParsedLog {
                ike: vec![ike_set(Some((1, 2)))],
                children: vec![child(Some(false))],
            },
        ];
        let tables = build(&logs, &[]);
        assert_eq!((tables.ikev2.len(), tables.esp.len()), (1, 2));
        let esp = tables.esp_text();
        assert_eq!(
            esp.lines().nth(1),
            Some(
                format!(
                    "\"IPv4\",\"192.0.2.2\",\"192.0.2.1\",\"0xc0000001\",\"AES-CBC [RFC3602]\",\"0x{}\",\"HMAC-SHA-256-128 [RFC4868]\",\"0x{}\"",
                    "02".repeat(16),
                    "04".repeat(32)
                )
                .as_str()
            )
        );
    }
}
