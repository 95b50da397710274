//! Reading session keys out of charon's own log.
//!
//! strongSwan's save-keys plugin is not in Debian's packages, but charon logs every key it
//! derives when the `ike` and `chd` groups of a file logger are at level 4 (the lab's
//! `strongswan.conf` sets that, with `ike_name = yes` so every line names its IKE SA). Each
//! key is a line `LABEL => N bytes @ 0xADDR` followed by hex-dump lines of the same thread.
//! This module turns such a log into key sets:
//!
//! - IKEv2: `Sk_ai`, `Sk_ar`, `Sk_ei`, `Sk_er` (RFC 7296 §2.14) with the selected IKE
//!   proposal; the SPIs come from the `natd_chunk` dump of the same IKE_SA_INIT (SPIi |
//!   SPIr | address | port, RFC 7296 §2.23).
//! - IKEv1: `encryption key Ka` (the phase 1 key, RFC 2409 Appendix B) with the cookies
//!   from the NAT-D chunk (RFC 3947 §3.2).
//! - Child SAs: `encryption/integrity initiator/responder key` with the selected ESP
//!   proposal and the two `SPI 0x…, src … dst …` lines that install them.
//!
//! Limitation: the keys of an IKE SA made by a CREATE_CHILD_SA rekey are logged under the
//! old SA's name and without SPIs; they come out with `spis: None`, and
//! [`super::keytable`] finds their SPIs in a capture by checking integrity.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

/// Key bytes from a log. `Debug` shows only the length, so keys stay out of debug output.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Key(pub Vec<u8>);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({} bytes)", self.0.len())
    }
}

impl Key {
    /// Lower-case hex, the form of Wireshark's key tables.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Where in which log a key set was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The log's label (usually its file name).
    pub log: String,
    /// 1-based line of the first key of the set.
    pub line: usize,
    /// The IKE SA the line names, as charon prints it (`conn|unique-id`).
    pub ike_sa: String,
}

/// The keys of one IKE SA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IkeKeys {
    /// IKEv2 SK_e and SK_a of both directions (SK_a empty with AEAD ciphers).
    V2 {
        /// Encryption key of messages from the original initiator.
        sk_ei: Key,
        /// Encryption key of messages from the original responder.
        sk_er: Key,
        /// Integrity key of messages from the original initiator.
        sk_ai: Key,
        /// Integrity key of messages from the original responder.
        sk_ar: Key,
    },
    /// IKEv1 phase 1 encryption key.
    V1 {
        /// The key (SKEYID_e, expanded to the cipher's key length when needed).
        enc: Key,
    },
}

/// An IKE SA's keys as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIke {
    /// Where they were found.
    pub origin: Origin,
    /// SPIi and SPIr (IKEv1: the cookies), when the log shows them.
    pub spis: Option<(u64, u64)>,
    /// The selected proposal in charon's notation (`IKE:AES_CBC_128/HMAC_SHA2_256_128/…`).
    pub proposal: Option<String>,
    /// The keys.
    pub keys: IkeKeys,
}

/// One installed direction of a child SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaEnd {
    /// SPI.
    pub spi: u32,
    /// Source of the traffic it protects.
    pub src: IpAddr,
    /// Destination (the host that chose the SPI).
    pub dst: IpAddr,
}

/// A child SA's keys as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedChild {
    /// Where they were found.
    pub origin: Origin,
    /// IKE version of the exchange (1 = Quick Mode, 2 = IKE_AUTH / CREATE_CHILD_SA).
    pub version: u8,
    /// The selected proposal (`ESP:AES_CBC_128/HMAC_SHA2_256_128/…`).
    pub proposal: Option<String>,
    /// Whether the logging host initiated the exchange that made the SA, when the log
    /// shows it.
    pub initiator: Option<bool>,
    /// Encryption key labelled "initiator" (with the salt for AEAD ciphers).
    pub enc_i: Key,
    /// Encryption key labelled "responder".
    pub enc_r: Key,
    /// Integrity key labelled "initiator" (empty for AEAD ciphers).
    pub int_i: Key,
    /// Integrity key labelled "responder".
    pub int_r: Key,
    /// The two directions, in the order charon installed them (inbound first).
    pub sas: Vec<SaEnd>,
}

/// Everything a log yielded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedLog {
    /// IKE SA key sets, in log order.
    pub ike: Vec<LoggedIke>,
    /// Child SA key sets, in log order.
    pub children: Vec<LoggedChild>,
}

/// One line of a charon file log, split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// Thread number.
    pub thread: u32,
    /// Log group (`IKE`, `CHD`, `CFG`, `ENC`, …).
    pub group: &'a str,
    /// The IKE SA named by `ike_name = yes` (`conn|id` or a bare id), or "".
    pub ike_sa: &'a str,
    /// The message.
    pub text: &'a str,
}

/// Splits a charon log line (`TIME THREAD[GRP] <conn|id> text`); `None` for lines of
/// another shape.
pub fn split_line(line: &str) -> Option<LogLine<'_>> {
    let bytes = line.as_bytes();
    let open = (0..bytes.len()).find(|&i| {
        bytes[i] == b'['
            && i > 0
            && bytes[i - 1].is_ascii_digit()
            && bytes.get(i + 4) == Some(&b']')
            && bytes[i + 1..i + 4].iter().all(u8::is_ascii_uppercase)
    })?;
    let digits = bytes[..open]
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let thread = line.get(open - digits..open)?.parse().ok()?;
    let group = line.get(open + 1..open + 4)?;
    let rest = line.get(open + 5..)?.strip_prefix(' ').unwrap_or("");
    let (ike_sa, text) = match rest.strip_prefix('<').and_then(|r| r.split_once("> ")) {
        Some((sa, text)) => (sa, text),
        None => ("", rest),
    };
    Some(LogLine {
        thread,
        group,
        ike_sa,
        text,
    })
}

/// A `LABEL => N bytes @ 0x…` header: the label and N.
fn dump_header(text: &str) -> Option<(&str, usize)> {
    let (label, rest) = text.split_once(" => ")?;
    let count = rest.split_once(" bytes")?.0.parse().ok()?;
    Some((label, count))
}

/// The bytes of a hex-dump line (`  16: C3 D1 3D B7   ..=.`), `None` for other lines.
fn dump_bytes(text: &str) -> Option<Vec<u8>> {
    let (offset, rest) = text.trim_start().split_once(": ")?;
    offset.parse::<usize>().ok()?;
    // 16 bytes take 47 columns; the ASCII column starts after at least two spaces.
    let hex = rest.get(..rest.len().min(48)).unwrap_or(rest);
    let hex = hex.split("  ").next().unwrap_or("");
    hex.split(' ')
        .filter(|t| !t.is_empty())
        .map(|t| u8::from_str_radix(t, 16).ok().filter(|_| t.len() == 2))
        .collect()
}

/// Longest dump collected; charon's longer ones (messages, DH values) are not keys.
const MAX_DUMP: usize = 4096;

/// A hex dump being collected on one thread.
#[derive(Debug)]
struct Pending {
    label: String,
    ike_sa: String,
    want: usize,
    bytes: Vec<u8>,
    line: usize,
}

/// A complete dump.
#[derive(Debug)]
struct Dump {
    thread: u32,
    label: String,
    ike_sa: String,
    bytes: Vec<u8>,
    line: usize,
}

/// What one IKE SA context has shown so far.
#[derive(Debug, Default)]
struct Context {
    ike_proposal: Option<String>,
    child_proposal: Option<String>,
    /// SPIs of the current IKE_SA_INIT / Main Mode, consumed by the next key set.
    spis: Option<(u64, u64)>,
    /// `Some(true)` after a parsed response (this host initiated), `Some(false)` after a
    /// parsed request.
    initiator: Option<bool>,
    v2: HashMap<&'static str, Key>,
    child: HashMap<&'static str, Key>,
    child_line: usize,
    key_line: usize,
    sas: Vec<SaEnd>,
    version: u8,
}

/// Reads a whole log. Lines that are not charon's are ignored; key sets cut short by the
/// end of the log are dropped.
pub fn parse(label: &str, text: &str) -> ParsedLog {
    let mut parser = Parser {
        label: label.to_string(),
        ..Parser::default()
    };
    for (i, line) in text.lines().enumerate() {
        parser.line(i + 1, line);
    }
    parser.out
}

#[derive(Debug, Default)]
struct Parser {
    label: String,
    pending: HashMap<u32, Pending>,
    contexts: HashMap<String, Context>,
    /// The last proposals each thread selected: charon derives a rekeyed IKE SA's keys
    /// under the new SA's name, in the job that selected its proposal under the old one.
    threads: HashMap<u32, (Option<String>, Option<String>)>,
    out: ParsedLog,
}

impl Parser {
    fn line(&mut self, number: usize, line: &str) {
        let Some(l) = split_line(line) else {
            return;
        };
        if self.continue_dump(&l) {
            return;
        }
        match dump_header(l.text) {
            Some((label, want)) if want > 0 && want <= MAX_DUMP => {
                let pending = Pending {
                    label: label.to_string(),
                    ike_sa: l.ike_sa.to_string(),
                    want,
                    bytes: Vec::with_capacity(want),
                    line: number,
                };
                self.pending.insert(l.thread, pending);
            }
            Some(_) => {}
            None => self.message(&l),
        }
    }

    /// Feeds a hex-dump line to its thread's pending dump; `false` when the line is not
    /// one (a pending dump cut short by another line is dropped).
    fn continue_dump(&mut self, l: &LogLine<'_>) -> bool {
        let Some(mut p) = self.pending.remove(&l.thread) else {
            return false;
        };
        let Some(bytes) = dump_bytes(l.text) else {
            return false;
        };
        p.bytes.extend_from_slice(&bytes);
        if p.bytes.len() < p.want {
            self.pending.insert(l.thread, p);
        } else {
            self.dump(Dump {
                thread: l.thread,
                label: p.label,
                ike_sa: p.ike_sa,
                bytes: p.bytes,
                line: p.line,
            });
        }
        true
    }

    /// The context of an IKE SA, by its unique id: a responder's SA is `<1>` until its
    /// configuration is known and `<conn|1>` afterwards.
    fn context(&mut self, ike_sa: &str) -> &mut Context {
        let id = ike_sa.rsplit('|').next().unwrap_or(ike_sa);
        self.contexts.entry(id.to_string()).or_default()
    }

    /// The IKE (`ike = true`) or child proposal of a context, else of the thread.
    fn proposal(&mut self, ike_sa: &str, thread: u32, ike: bool) -> Option<String> {
        let ctx = self.context(ike_sa);
        let own = if ike {
            ctx.ike_proposal.clone()
        } else {
            ctx.child_proposal.clone()
        };
        let by_thread = self.threads.get(&thread).cloned().unwrap_or_default();
        own.or(if ike { by_thread.0 } else { by_thread.1 })
    }

    /// Non-dump lines: proposals, roles and the SPI lines of installed SAs.
    fn message(&mut self, l: &LogLine<'_>) {
        if let Some(p) = l.text.strip_prefix("selected proposal: ") {
            let ike = p.starts_with("IKE:");
            let ctx = self.context(l.ike_sa);
            let slot = if ike {
                &mut ctx.ike_proposal
            } else {
                &mut ctx.child_proposal
            };
            *slot = Some(p.to_string());
            let t = self.threads.entry(l.thread).or_default();
            let slot = if ike { &mut t.0 } else { &mut t.1 };
            *slot = Some(p.to_string());
            return;
        }
        let ctx = self.context(l.ike_sa);
        if l.group == "ENC" {
            if let Some(exchange) = l.text.strip_prefix("parsed ") {
                note_exchange(ctx, exchange);
            }
        } else if let Some(end) = sa_end(l.text) {
            if !ctx.child.is_empty() && !ctx.sas.iter().any(|s| s.spi == end.spi) {
                ctx.sas.push(end);
            }
            if ctx.sas.len() == 2 {
                self.finish_child(l.ike_sa, l.thread);
            }
        }
    }

    fn dump(&mut self, d: Dump) {
        let label = self.label.clone();
        let ctx = self.context(&d.ike_sa);
        match d.label.as_str() {
            "natd_chunk" => {
                if let Some(spis) = natd_spis(&d.bytes) {
                    ctx.spis = Some(spis);
                }
            }
            "Sk_ai secret" | "Sk_ar secret" | "Sk_ei secret" | "Sk_er secret" => {
                if ctx.v2.is_empty() {
                    ctx.key_line = d.line;
                }
                ctx.v2.insert(v2_name(&d.label), Key(d.bytes));
            }
            // Sk_pi follows the four keys we need; with AEAD there are no Sk_a lines.
            "Sk_pi secret" => self.finish_v2(&d.ike_sa, d.thread, &label),
            "encryption key Ka" => self.finish_v1(&d, &label),
            "encryption initiator key"
            | "encryption responder key"
            | "integrity initiator key"
            | "integrity responder key" => {
                if ctx.child.is_empty() {
                    ctx.child_line = d.line;
                    ctx.sas.clear();
                }
                ctx.child.insert(child_name(&d.label), Key(d.bytes));
            }
            _ => {}
        }
    }

    fn finish_v2(&mut self, ike_sa: &str, thread: u32, label: &str) {
        let proposal = self.proposal(ike_sa, thread, true);
        let ctx = self.context(ike_sa);
        let mut keys = std::mem::take(&mut ctx.v2);
        if !keys.contains_key("ei") || !keys.contains_key("er") {
            return;
        }
        let mut take = |k: &str| keys.remove(k).unwrap_or_default();
        let logged = LoggedIke {
            origin: Origin {
                log: label.to_string(),
                line: ctx.key_line,
                ike_sa: ike_sa.to_string(),
            },
            spis: ctx.spis.take(),
            proposal,
            keys: IkeKeys::V2 {
                sk_ei: take("ei"),
                sk_er: take("er"),
                sk_ai: take("ai"),
                sk_ar: take("ar"),
            },
        };
        self.out.ike.push(logged);
    }

    fn finish_v1(&mut self, d: &Dump, label: &str) {
        let proposal = self.proposal(&d.ike_sa, d.thread, true);
        let ctx = self.context(&d.ike_sa);
        ctx.version = 1;
        let logged = LoggedIke {
            origin: Origin {
                log: label.to_string(),
                line: d.line,
                ike_sa: d.ike_sa.clone(),
            },
            spis: ctx.spis.take(),
            proposal,
            keys: IkeKeys::V1 {
                enc: Key(d.bytes.clone()),
            },
        };
        self.out.ike.push(logged);
    }

    fn finish_child(&mut self, ike_sa: &str, thread: u32) {
        let label = self.label.clone();
        let proposal = self.proposal(ike_sa, thread, false);
        let ctx = self.context(ike_sa);
        let mut keys = std::mem::take(&mut ctx.child);
        let mut take = |k: &str| keys.remove(k).unwrap_or_default();
        let logged = LoggedChild {
            origin: Origin {
                log: label,
                line: ctx.child_line,
                ike_sa: ike_sa.to_string(),
            },
            version: if ctx.version == 1 { 1 } else { 2 },
            proposal,
            initiator: ctx.initiator,
            enc_i: take("ei"),
            enc_r: take("er"),
            int_i: take("ii"),
            int_r: take("ir"),
            sas: std::mem::take(&mut ctx.sas),
        };
        self.out.children.push(logged);
    }
}

/// What a `parsed EXCHANGE request|response N [ … ]` line tells: the IKE version, and
/// that the logging host initiated the exchange (a response) or answers it (a request).
fn note_exchange(ctx: &mut Context, exchange: &str) {
    if exchange.contains(" response ") {
        ctx.initiator = Some(true);
    } else if exchange.contains(" request ") {
        ctx.initiator = Some(false);
    }
    let v1 = [
        "ID_PROT",
        "AGGRESSIVE",
        "QUICK_MODE",
        "INFORMATIONAL_V1",
        "TRANSACTION",
    ];
    let v2 = [
        "IKE_SA_INIT",
        "IKE_AUTH",
        "CREATE_CHILD_SA",
        "INFORMATIONAL ",
    ];
    if v1.iter().any(|x| exchange.starts_with(x)) {
        ctx.version = 1;
    } else if v2.iter().any(|x| exchange.starts_with(x)) {
        ctx.version = 2;
    }
}

fn v2_name(label: &str) -> &'static str {
    match label {
        "Sk_ai secret" => "ai",
        "Sk_ar secret" => "ar",
        "Sk_ei secret" => "ei",
        _ => "er",
    }
}

fn child_name(label: &str) -> &'static str {
    match label {
        "encryption initiator key" => "ei",
        "encryption responder key" => "er",
        "integrity initiator key" => "ii",
        _ => "ir",
    }
}

/// SPIi and SPIr from a NAT-D chunk (8 + 8 bytes, then the address and port), when the
/// responder's half is already known.
fn natd_spis(chunk: &[u8]) -> Option<(u64, u64)> {
    if chunk.len() != 22 && chunk.len() != 34 {
        return None;
    }
    let spi_i = u64::from_be_bytes(chunk.get(..8)?.try_into().ok()?);
    let spi_r = u64::from_be_bytes(chunk.get(8..16)?.try_into().ok()?);
    (spi_i != 0 && spi_r != 0).then_some((spi_i, spi_r))
}

/// `  SPI 0xc2d51612, src 192.0.2.2 dst 192.0.2.1`.
fn sa_end(text: &str) -> Option<SaEnd> {
    let rest = text.trim_start().strip_prefix("SPI 0x")?;
    let (spi, rest) = rest.split_once(", src ")?;
    let (src, dst) = rest.split_once(" dst ")?;
    Some(SaEnd {
        spi: u32::from_str_radix(spi, 16).ok()?,
        src: src.trim().parse().ok()?,
        dst: dst.trim().parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log line as charon's file logger writes it with the lab's settings.
    fn l(thread: u32, group: &str, sa: &str, text: &str) -> String {
        format!("Dec  4 01:11:09.558 {thread:02}[{group}] <{sa}> {text}\n")
    }

    /// A dump of `bytes` as charon prints it: a header line and 16 bytes per line.
    fn dump(thread: u32, sa: &str, label: &str, bytes: &[u8]) -> String {
        let mut s = l(
            thread,
            "IKE",
            sa,
            &format!("{label} => {} bytes @ 0x7f00", bytes.len()),
        );
        for (i, chunk) in bytes.chunks(16).enumerate() {
            let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02X}")).collect();
            let text = format!("{:>4}: {:<48} ....", i * 16, hex.join(" "));
            s.push_str(&l(thread, "IKE", sa, &text));
        }
        s
    }

    fn seq(start: u8, n: usize) -> Vec<u8> {
        (0..n).map(|i| start.wrapping_add(i as u8)).collect()
    }

    #[test]
    fn splits_lines_with_and_without_an_ike_sa() {
        let line = "Dec  4 01:11:09.558 08[IKE] <lab|1> Sk_d secret => 32 bytes @ 0x7f9c";
        let l = split_line(line).unwrap();
        assert_eq!((l.thread, l.group, l.ike_sa), (8, "IKE", "lab|1"));
        assert_eq!(l.text, "Sk_d secret => 32 bytes @ 0x7f9c");
        let bare = split_line("Dec  4 01:10:43.908 10[CFG] added vici connection: lab").unwrap();
        assert_eq!(
            (bare.thread, bare.ike_sa, bare.text),
            (10, "", "added vici connection: lab")
        );
        assert_eq!(split_line("not a charon line"), None);
    }

    #[test]
    fn reads_hex_dump_lines_without_the_ascii_column() {
        let text = "   16: C3 D1 3D B7                                      ..=.";
        assert_eq!(dump_bytes(text), Some(vec![0xc3, 0xd1, 0x3d, 0xb7]));
        let full = "    0: 6C 61 62 2D 73 65 63 72 65 74 2D 31 32 33 41 42  lab-secret-123AB";
        assert_eq!(dump_bytes(full).unwrap().len(), 16);
        assert_eq!(dump_bytes("IKE_SA lab[1] established"), None);
    }

    fn ikev2_log(sa: &str, natd: bool) -> String {
        let mut log = l(
            8,
            "CFG",
            sa,
            "selected proposal: IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
        );
        if natd {
            let mut chunk = vec![0xee, 0x82, 0xcc, 0xbf, 0x3f, 0x99, 0x92, 0xc4];
            chunk.extend_from_slice(&[0x41, 0xe5, 0x32, 0xca, 0x72, 0xb7, 0xaa, 0x3b]);
            chunk.extend_from_slice(&[192, 0, 2, 1, 1, 244]);
            log += &dump(8, sa, "natd_chunk", &chunk);
        }
        log += &dump(8, sa, "Sk_d secret", &seq(0, 32));
        log += &dump(8, sa, "Sk_ai secret", &seq(0x10, 32));
        log += &dump(8, sa, "Sk_ar secret", &seq(0x20, 32));
        log += &dump(8, sa, "Sk_ei secret", &seq(0x30, 16));
        log += &dump(8, sa, "Sk_er secret", &seq(0x40, 16));
        log += &dump(8, sa, "Sk_pi secret", &seq(0x50, 32));
        log
    }

    #[test]
    fn ikev2_keys_take_the_spis_of_their_nat_detection_chunk() {
        let parsed = parse("alice.log", &ikev2_log("lab|1", true));
        assert_eq!(parsed.ike.len(), 1);
        let ike = &parsed.ike[0];
        assert_eq!(
            ike.spis,
            Some((0xee82_ccbf_3f99_92c4, 0x41e5_32ca_72b7_aa3b))
        );
        assert_eq!(ike.origin.ike_sa, "lab|1");
        assert_eq!(
            ike.origin.line, 8,
            "the line of Sk_ai, the first key of the set"
        );
        assert_eq!(
            ike.proposal.as_deref(),
            Some("IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048")
        );
        let IkeKeys::V2 {
            sk_ei,
            sk_er,
            sk_ai,
            sk_ar,
        } = &ike.keys
        else {
            panic!("not IKEv2: {ike:?}");
        };
        assert_eq!(
            (sk_ai.0.clone(), sk_ar.0.clone()),
            (seq(0x10, 32), seq(0x20, 32))
        );
        assert_eq!(
            (sk_ei.hex(), sk_er.0.clone()),
            ("303132333435363738393a3b3c3d3e3f".into(), seq(0x40, 16))
        );
    }

    #[test]
    fn a_rekeyed_ike_sa_has_no_spis_and_a_first_request_chunk_gives_none() {
        // The first natd_chunk of an initiator has SPIr zero: no SPIs yet.
        let mut log = dump(
            3,
            "lab|1",
            "natd_chunk",
            &[
                1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 2, 1, 244,
            ],
        );
        log += &ikev2_log("lab|1", true);
        log += &ikev2_log("lab|1", false);
        let parsed = parse("a", &log);
        assert_eq!(parsed.ike.len(), 2);
        assert!(parsed.ike[0].spis.is_some());
        assert_eq!(parsed.ike[1].spis, None);
    }

    #[test]
    fn interleaved_threads_keep_their_dumps_apart() {
        let a = dump(8, "lab|1", "Sk_ei secret", &seq(1, 16));
        let b = dump(9, "other|2", "Sk_ei secret", &seq(0x80, 16));
        let mut lines: Vec<&str> = Vec::new();
        for (x, y) in a.lines().zip(b.lines()) {
            lines.push(x);
            lines.push(y);
        }
        let mut log = lines.join("\n") + "\n";
        log += &dump(8, "lab|1", "Sk_er secret", &seq(2, 16));
        log += &dump(8, "lab|1", "Sk_pi secret", &seq(3, 16));
        let parsed = parse("a", &log);
        assert_eq!(parsed.ike.len(), 1);
        let IkeKeys::V2 { sk_ei, sk_ai, .. } = &parsed.ike[0].keys else {
            panic!("not IKEv2");
        };
        assert_eq!(sk_ei.0, seq(1, 16));
        assert!(
            sk_ai.0.is_empty(),
            "an AEAD-style set has no integrity keys"
        );
    }

    #[test]
    fn child_keys_collect_both_installed_directions_and_the_role() {
        let sa = "lab|1";
        let mut log = l(
            14,
            "ENC",
            sa,
            "parsed IKE_AUTH response 1 [ IDr AUTH SA TSi TSr ]",
        );
        log += &l(
            14,
            "CFG",
            sa,
            "selected proposal: ESP:AES_CBC_128/HMAC_SHA2_256_128/NO_EXT_SEQ",
        );
        log += &dump(14, sa, "encryption initiator key", &seq(0xa0, 16));
        log += &dump(14, sa, "encryption responder key", &seq(0xb0, 16));
        log += &dump(14, sa, "integrity initiator key", &seq(0xc0, 32));
        log += &dump(14, sa, "integrity responder key", &seq(0xd0, 32));
        log += &l(14, "CHD", sa, "adding inbound ESP SA");
        log += &l(
            14,
            "CHD",
            sa,
            "  SPI 0xc2d51612, src 192.0.2.2 dst 192.0.2.1",
        );
        log += &l(14, "CHD", sa, "adding outbound ESP SA");
        log += &l(
            14,
            "CHD",
            sa,
            "  SPI 0x20b86235, src 192.0.2.1 dst 192.0.2.2",
        );
        log += &l(
            14,
            "CHD",
            sa,
            "  SPI 0x20b86235, src 192.0.2.1 dst 192.0.2.2",
        );
        let parsed = parse("alice", &log);
        assert_eq!(parsed.children.len(), 1);
        let c = &parsed.children[0];
        assert_eq!((c.version, c.initiator), (2, Some(true)));
        assert_eq!(
            c.proposal.as_deref(),
            Some("ESP:AES_CBC_128/HMAC_SHA2_256_128/NO_EXT_SEQ")
        );
        assert_eq!(c.enc_i.0, seq(0xa0, 16));
        assert_eq!(c.int_r.0, seq(0xd0, 32));
        let spis: Vec<u32> = c.sas.iter().map(|s| s.spi).collect();
        assert_eq!(spis, vec![0xc2d5_1612, 0x20b8_6235]);
        assert_eq!(c.sas[0].src, "192.0.2.2".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn ikev1_takes_the_phase_one_key_and_the_cookies() {
        let sa = "lab|1";
        let mut log = l(12, "ENC", sa, "parsed ID_PROT response 0 [ SA V V V V ]");
        let mut chunk = seq(1, 16);
        chunk.extend_from_slice(&[192, 0, 2, 2, 1, 244]);
        log += &dump(15, sa, "natd_chunk", &chunk);
        log += &dump(15, sa, "SKEYID_e", &seq(0x60, 32));
        log += &dump(15, sa, "encryption key Ka", &seq(0x70, 16));
        let parsed = parse("a", &log);
        assert_eq!(parsed.ike.len(), 1);
        assert_eq!(
            parsed.ike[0].spis,
            Some((0x0102_0304_0506_0708, 0x090a_0b0c_0d0e_0f10))
        );
        assert_eq!(
            parsed.ike[0].keys,
            IkeKeys::V1 {
                enc: Key(seq(0x70, 16))
            }
        );
    }

    #[test]
    fn debug_output_never_shows_key_bytes() {
        let k = Key(vec![0xab; 16]);
        assert_eq!(format!("{k:?}"), "Key(16 bytes)");
    }
}
