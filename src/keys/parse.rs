//! One line of a key table, in any of the formats [`super`] reads.
//!
//! Errors name the field by position and what was expected, never its content: a field
//! in the wrong column may well hold a key.

use std::net::IpAddr;

use super::algo::{self, Cipher, Integrity};
use super::{AddrPattern, DirectionKeys, EspSaKeys, Family, Ikev1Key, Ikev2Keys, Secret};

/// One parsed line.
#[derive(Debug)]
pub(crate) enum Line {
    /// Wireshark / strongSwan IKEv1 table.
    Ikev1(Ikev1Key),
    /// Wireshark / strongSwan IKEv2 table.
    Ikev2(Ikev2Keys),
    /// One direction of an IKE SA in tcpdump's `ikev2 I|R` form.
    Ikev2Half {
        /// `true` for `I` (the initiator's keys).
        initiator: bool,
        /// The keys, with only one direction filled in.
        keys: Ikev2Keys,
    },
    /// ESP SAs (tcpdump may give several on one line).
    Esp(Vec<EspSaKeys>),
}

/// Parses one line that is neither empty nor a comment.
pub(crate) fn line(text: &str) -> Result<Line, String> {
    let t = text.trim();
    if t.len() > 6 && t[..6].eq_ignore_ascii_case("ikev2 ") {
        return tcpdump_ikev2(&t[6..]);
    }
    let tcpdump_esp =
        !t.contains('"') && (t.contains('@') || (!t.contains(',') && t.contains(':')));
    if tcpdump_esp {
        return t
            .split(',')
            .map(tcpdump_sa)
            .collect::<Result<_, _>>()
            .map(Line::Esp);
    }
    let fields = csv(t);
    match fields.len() {
        2 => ikev1(&fields).map(Line::Ikev1),
        8 if Family::parse(&fields[0]).is_some() => esp(&fields).map(|sa| Line::Esp(vec![sa])),
        8 => ikev2(&fields).map(Line::Ikev2),
        n => Err(format!(
            "{n} fields: expected 2 (IKEv1 table), 8 (IKEv2 table or ESP SA table), or a \
             tcpdump secret (`spi@dst alg:key`, `ikev2 I|R ...`)"
        )),
    }
}

/// Splits on commas outside double quotes and removes the quotes and surrounding space.
fn csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

/// Hex bytes, with or without `0x`; an empty field is an empty key.
pub(crate) fn hex(field: &str) -> Option<Vec<u8>> {
    let f = field.trim();
    let f = f
        .strip_prefix("0x")
        .or_else(|| f.strip_prefix("0X"))
        .unwrap_or(f);
    if f.len() % 2 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(f.len() / 2);
    for pair in f.as_bytes().chunks_exact(2) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out.push((hi * 16 + lo) as u8);
    }
    Some(out)
}

/// A key field: hex bytes as a [`Secret`].
fn secret(field: &str, what: &str) -> Result<Secret, String> {
    hex(field)
        .map(Secret::new)
        .ok_or_else(|| format!("{what}: not an even number of hexadecimal digits"))
}

/// An IKE SPI or cookie: 16 hex digits, `0x` optional.
fn spi64(field: &str, what: &str) -> Result<u64, String> {
    let bytes = hex(field).filter(|b| b.len() == 8);
    let bytes = bytes.ok_or_else(|| format!("{what}: expected 16 hexadecimal digits"))?;
    Ok(bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b)))
}

/// `icookie,encryption key` (RFC 2409's SKEYID_e, cut or extended to the cipher's key).
fn ikev1(f: &[String]) -> Result<Ikev1Key, String> {
    Ok(Ikev1Key {
        icookie: spi64(&f[0], "field 1 (initiator cookie)")?,
        key: secret(&f[1], "field 2 (encryption key)")?,
    })
}

/// `SPIi,SPIr,SK_ei,SK_er,"encr",SK_ai,SK_ar,"integ"`.
fn ikev2(f: &[String]) -> Result<Ikev2Keys, String> {
    let cipher = algo::ikev2_cipher(&f[4])
        .ok_or("field 5: unknown encryption algorithm (expected e.g. \"AES-CBC-128 [RFC3602]\")")?;
    let integrity = algo::ikev2_integrity(&f[7]).ok_or(
        "field 8: unknown integrity algorithm (expected e.g. \"HMAC_SHA2_256_128 [RFC4868]\")",
    )?;
    let keys = Ikev2Keys {
        spi_i: spi64(&f[0], "field 1 (SPIi)")?,
        spi_r: spi64(&f[1], "field 2 (SPIr)")?,
        cipher,
        integrity,
        initiator: Some(DirectionKeys {
            encryption: secret(&f[2], "field 3 (SK_ei)")?,
            integrity: secret(&f[5], "field 6 (SK_ai)")?,
        }),
        responder: Some(DirectionKeys {
            encryption: secret(&f[3], "field 4 (SK_er)")?,
            integrity: secret(&f[6], "field 7 (SK_ar)")?,
        }),
    };
    keys.check()?;
    Ok(keys)
}

/// `"IPv4","src","dst","0xSPI","encr",enc_key,"auth",auth_key`.
fn esp(f: &[String]) -> Result<EspSaKeys, String> {
    let family = Family::parse(&f[0]).ok_or("field 1: expected IPv4, IPv6 or Any")?;
    let src = AddrPattern::parse(&f[1]).ok_or("field 2 (source): not an address or *")?;
    let dst = AddrPattern::parse(&f[2]).ok_or("field 3 (destination): not an address or *")?;
    let spi = parse_spi(&f[3]).ok_or("field 4 (SPI): expected 0x and 8 hex digits, or *")?;
    let enc_key = secret(&f[5], "field 6 (encryption key)")?;
    let integrity = algo::esp_integrity(&f[6]).ok_or(
        "field 7: unknown authentication algorithm (expected e.g. \"HMAC-SHA-1-96 [RFC2404]\")",
    )?;
    let cipher = esp_cipher(&f[4], enc_key.len(), integrity)?;
    let auth_key = secret(&f[7], "field 8 (authentication key)")?;
    let (cipher, integrity) = aead_integrity(cipher, integrity);
    let sa = EspSaKeys {
        family,
        src,
        dst,
        spi,
        cipher,
        integrity,
        enc_key,
        auth_key,
    };
    sa.check()?;
    Ok(sa)
}

/// The ESP cipher from its name and the key material's length.
fn esp_cipher(name: &str, key_len: usize, integrity: Integrity) -> Result<Cipher, String> {
    let named = algo::esp_cipher(name)
        .ok_or("field 5: unknown encryption algorithm (expected e.g. \"AES-CBC [RFC3602]\")")?;
    named.resolve(key_len, integrity.icv_len).ok_or_else(|| {
        "field 6 (encryption key): wrong length for the algorithm (a bare AES-GCM also \
         needs \"ANY 64/96/128 bit authentication\" for its ICV)"
            .to_string()
    })
}

/// A combined-mode cipher carries its own ICV: the integrity column only sized it.
fn aead_integrity(cipher: Cipher, integrity: Integrity) -> (Cipher, Integrity) {
    match cipher.aead_icv_len() {
        Some(_) => (cipher, Integrity::NONE),
        None => (cipher, integrity),
    }
}

/// An ESP SPI: `0x` and hex, decimal, or `*`.
fn parse_spi(field: &str) -> Option<Option<u32>> {
    let f = field.trim();
    if f == "*" {
        return Some(None);
    }
    let value = match f.strip_prefix("0x").or_else(|| f.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok()?,
        None => f.parse().ok()?,
    };
    Some(Some(value))
}

/// tcpdump's `[spi@dst] alg:key` (an unqualified secret applies to every ESP SA).
fn tcpdump_sa(part: &str) -> Result<EspSaKeys, String> {
    let mut tokens = part.split_whitespace();
    let first = tokens.next().ok_or("empty tcpdump secret")?;
    let (selector, secret_token) = match tokens.next() {
        Some(s) => (Some(first), s),
        None => (None, first),
    };
    if tokens.next().is_some() {
        return Err("tcpdump secret: expected `spi@dst alg:key`".into());
    }
    let (spi, dst) = match selector {
        Some(sel) => tcpdump_selector(sel)?,
        None => (None, AddrPattern::Any),
    };
    let (name, key) = secret_token
        .split_once(':')
        .ok_or("tcpdump secret: expected `alg:key`")?;
    let enc_key = tcpdump_key(key)?;
    let (cipher, integrity) = algo::tcpdump_esp(name, enc_key.len())
        .ok_or("tcpdump secret: unknown algorithm (expected e.g. 3des-cbc-hmac96)")?;
    let sa = EspSaKeys {
        family: Family::Any,
        src: AddrPattern::Any,
        dst,
        spi,
        cipher,
        integrity,
        enc_key,
        auth_key: Secret::new(Vec::new()),
    };
    sa.check()?;
    Ok(sa)
}

/// `spi@dst`.
fn tcpdump_selector(sel: &str) -> Result<(Option<u32>, AddrPattern), String> {
    let (spi, dst) = sel
        .split_once('@')
        .ok_or("tcpdump secret: expected spi@dst")?;
    let spi = parse_spi(spi)
        .flatten()
        .ok_or("tcpdump secret: the SPI is not a number")?;
    let dst: IpAddr = dst
        .parse()
        .map_err(|_| "tcpdump secret: the destination is not an address")?;
    Ok((Some(spi), AddrPattern::Exact(dst)))
}

/// A tcpdump key: `0x` and hex, or the bytes of the text itself.
fn tcpdump_key(key: &str) -> Result<Secret, String> {
    if key.starts_with("0x") || key.starts_with("0X") {
        return secret(key, "tcpdump secret key");
    }
    Ok(Secret::new(key.as_bytes().to_vec()))
}

/// tcpdump's `ikev2 I|R 0xSPIi 0xSPIr integ:key enc:key` (the two `alg:key` in either
/// order: the algorithm names tell them apart).
fn tcpdump_ikev2(rest: &str) -> Result<Line, String> {
    let t: Vec<&str> = rest.split_whitespace().collect();
    let [role, spi_i, spi_r, a, b] = t[..] else {
        return Err("ikev2 secret: expected `ikev2 I|R spi_i spi_r integ:key enc:key`".into());
    };
    let initiator = match role {
        "I" | "i" => true,
        "R" | "r" => false,
        _ => return Err("ikev2 secret: the role must be I or R".into()),
    };
    let (a, b) = (split_alg(a)?, split_alg(b)?);
    let (integ, enc) = match algo::tcpdump_integrity(a.0) {
        Some(_) => (a, b),
        None => (b, a),
    };
    let integrity =
        algo::tcpdump_integrity(integ.0).ok_or("ikev2 secret: unknown integrity algorithm")?;
    let cipher =
        algo::tcpdump_ike_cipher(enc.0).ok_or("ikev2 secret: unknown encryption algorithm")?;
    let dir = DirectionKeys {
        encryption: secret(enc.1, "ikev2 secret encryption key")?,
        integrity: secret(integ.1, "ikev2 secret integrity key")?,
    };
    let mut keys = Ikev2Keys {
        spi_i: spi64(spi_i, "ikev2 secret spi_i")?,
        spi_r: spi64(spi_r, "ikev2 secret spi_r")?,
        cipher,
        integrity,
        initiator: None,
        responder: None,
    };
    *(if initiator {
        &mut keys.initiator
    } else {
        &mut keys.responder
    }) = Some(dir);
    keys.check()?;
    Ok(Line::Ikev2Half { initiator, keys })
}

/// `alg:key`.
fn split_alg(token: &str) -> Result<(&str, &str), String> {
    token
        .split_once(':')
        .ok_or_else(|| "ikev2 secret: expected alg:key".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_keeps_quoted_commas_and_drops_quotes() {
        assert_eq!(csv(r#""a,b", c ,"d""#), vec!["a,b", "c", "d"]);
        assert_eq!(csv("x,,y"), vec!["x", "", "y"]);
    }

    #[test]
    fn hex_with_and_without_prefix() {
        assert_eq!(hex("0x0aFF"), Some(vec![0x0a, 0xff]));
        assert_eq!(hex("0aff"), Some(vec![0x0a, 0xff]));
        assert_eq!(hex(""), Some(vec![]));
        assert_eq!(hex("0x"), Some(vec![]));
        assert_eq!(hex("abc"), None);
        assert_eq!(hex("zz"), None);
    }

    #[test]
    fn spi_field_forms() {
        assert_eq!(parse_spi("0x070883c2"), Some(Some(0x0708_83c2)));
        assert_eq!(parse_spi("123"), Some(Some(123)));
        assert_eq!(parse_spi("*"), Some(None));
        assert_eq!(parse_spi("0xnope"), None);
    }

    #[test]
    fn errors_never_repeat_the_field() {
        let secretish = "00112233445566778899aabbccddeeff";
        let line_text = format!("{secretish},zz");
        let e = line(&line_text).unwrap_err();
        assert!(!e.contains(secretish) && !e.contains("zz"), "{e}");
        let e = line(&format!("{secretish}x,00")).unwrap_err();
        assert!(!e.contains(secretish), "{e}");
    }
}
