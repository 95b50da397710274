//! The one-line-per-frame text of `ipsecmon decode` without `--json`, in the manner of
//! Wireshark's Info column: who talked to whom, and what the packet was.
//!
//! It is written from the JSON object of [`super::json::render`], so the text and the JSON
//! never disagree about a frame.

use std::fmt::Write;

use serde_json::Value;

/// The line for one rendered frame; `t0` is the capture time of the first frame, so times
/// are relative as in Wireshark.
pub fn line(v: &Value, t0: f64) -> String {
    let frame = v["frame"].as_u64().unwrap_or(0);
    let ts = v["ts"].as_f64().unwrap_or(t0) - t0;
    let mut out = format!("{frame:>5}  {ts:>10.6}  ");
    if let (Some(src), Some(dst)) = (v["src"].as_str(), v["dst"].as_str()) {
        let _ = write!(out, "{src} -> {dst}  ");
    }
    out.push_str(&info(v));
    out
}

/// What the packet is, without frame number, time and addresses.
pub fn info(v: &Value) -> String {
    let mut out = match v["kind"].as_str() {
        Some("ike") => ike(v),
        Some("esp") => ipsec("ESP", v),
        Some("ah") => ipsec("AH", v),
        Some("keepalive") => "NAT-keepalive".to_string(),
        Some("icmp") => icmp(v),
        Some(other) => other.to_string(),
        None => "undecodable frame".to_string(),
    };
    if v["encap"].as_str() == Some("udp") && v["kind"].as_str() != Some("keepalive") {
        out.push_str(" [udp-encap]");
    }
    if let Some(e) = v.get("error") {
        let reason = e["reason"].as_str().unwrap_or("?");
        let _ = write!(out, " [malformed: {reason} at offset {}]", e["offset"]);
    }
    if let Some(reason) = v["decrypt_error"].as_str() {
        let _ = write!(out, " [not decrypted: {reason}]");
    }
    out
}

/// `ESP spi 0x0000007b seq 1 len 84`, and what a decrypted ESP packet holds:
/// `{10.1.1.1 -> 10.1.0.10 proto 1}`.
fn ipsec(name: &str, v: &Value) -> String {
    let mut out = format!(
        "{name} spi 0x{} seq {} len {}",
        v["spi"].as_str().unwrap_or("?"),
        v["seq"],
        v["length"]
    );
    let inner = &v["inner"];
    if let (Some(src), Some(dst)) = (inner["src"].as_str(), inner["dst"].as_str()) {
        let _ = write!(out, " {{{src} -> {dst} proto {}}}", inner["protocol"]);
    } else if inner.is_object() {
        let _ = write!(out, " {{proto {}}}", inner["protocol"]);
    }
    out
}

/// `ICMP type 3 code 4 mtu 1400 quoting {ESP spi ...}`.
fn icmp(v: &Value) -> String {
    let mut out = format!("ICMP type {} code {}", v["type"], v["code"]);
    if let Some(mtu) = v.get("mtu") {
        let _ = write!(out, " mtu {mtu}");
    }
    if let Some(q) = v.get("quoted") {
        let _ = write!(out, " quoting {{{}}}", info(q));
    }
    out
}

/// `IKEv2 IKE_SA_INIT request msgid 0  SA KE Nonce N(NAT_DETECTION_SOURCE_IP)`.
fn ike(v: &Value) -> String {
    let Some(version) = v["version"].as_u64() else {
        return "IKE".to_string();
    };
    let exchange = match v["exchange"].as_str() {
        Some(name) => name.to_string(),
        None => format!("exchange {}", v["exchange_type"]),
    };
    let flags: Vec<&str> = v["flags"]
        .as_array()
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = format!("IKEv{version} {exchange}");
    let msgid = v["message_id"].as_u64().unwrap_or(0);
    if version == 2 {
        let role = if flags.contains(&"response") {
            "response"
        } else {
            "request"
        };
        let _ = write!(out, " {role} msgid {msgid}");
    } else {
        let _ = write!(out, " msgid 0x{msgid:08x}");
        if flags.contains(&"encrypted") {
            out.push_str(" [encrypted]");
        }
    }
    let payloads: Vec<String> = v["payloads"]
        .as_array()
        .map(|list| list.iter().map(payload).collect())
        .unwrap_or_default();
    if !payloads.is_empty() {
        let _ = write!(out, "  {}", payloads.join(" "));
    }
    out
}

/// A payload's short form: its name, with the notify type, vendor or inner payload.
fn payload(p: &Value) -> String {
    let name = match p["name"].as_str() {
        Some(n) => n.to_string(),
        None => format!("#{}", p["type"]),
    };
    if let Some(reason) = p["decrypt_error"].as_str() {
        return format!("{name}[not decrypted: {reason}]");
    }
    if let Some(inner) = p["payloads"].as_array() {
        let list: Vec<String> = inner.iter().map(payload).collect();
        return format!("{name}{{{}}}", list.join(" "));
    }
    let detail = if p.get("notify_type").is_some() {
        p["notify_type_name"]
            .as_str()
            .map_or_else(|| p["notify_type"].to_string(), str::to_string)
    } else if let Some(vendor) = p["vendor"].as_str() {
        vendor.to_string()
    } else if let Some(total) = p.get("total") {
        format!("{}/{total}", p["fragment"])
    } else if let Some(inner) = p["first_payload_name"].as_str() {
        format!("{inner}...")
    } else {
        return name;
    };
    format!("{name}({detail})")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ike_line_names_exchange_role_and_payloads() {
        let v = json!({
            "frame": 12, "ts": 100.016544, "src": "192.0.2.1:500", "dst": "192.0.2.2:500",
            "kind": "ike", "encap": "none", "version": 2, "exchange_type": 34,
            "exchange": "IKE_SA_INIT", "message_id": 0, "flags": ["initiator"],
            "payloads": [
                {"type": 33, "name": "SA"},
                {"type": 41, "name": "N", "notify_type": 16388,
                 "notify_type_name": "NAT_DETECTION_SOURCE_IP"},
                {"type": 41, "name": "N", "notify_type": 40000},
                {"type": 43, "name": "V", "vendor": "strongSwan"},
                {"type": 46, "name": "SK", "first_payload": 35, "first_payload_name": "IDi"},
            ]
        });
        assert_eq!(
            line(&v, 100.0),
            "   12    0.016544  192.0.2.1:500 -> 192.0.2.2:500  IKEv2 IKE_SA_INIT request \
             msgid 0  SA N(NAT_DETECTION_SOURCE_IP) N(40000) V(strongSwan) SK(IDi...)"
        );
    }

    #[test]
    fn decrypted_payloads_and_failures() {
        let v = json!({
            "frame": 4, "ts": 1.0, "kind": "ike", "encap": "none", "version": 2,
            "exchange_type": 35, "exchange": "IKE_AUTH", "message_id": 1, "flags": ["response"],
            "payloads": [{"type": 46, "name": "SK", "first_payload": 41, "first_payload_name": "N",
                "decrypted": true, "payloads": [{"type": 41, "name": "N", "notify_type": 24,
                "notify_type_name": "AUTHENTICATION_FAILED"}]}]
        });
        assert_eq!(
            info(&v),
            "IKEv2 IKE_AUTH response msgid 1  SK{N(AUTHENTICATION_FAILED)}"
        );
        let v = json!({"kind": "esp", "encap": "none", "spi": "0000c001", "seq": 1, "length": 40,
            "decrypted": false, "decrypt_error": "icv-mismatch"});
        assert_eq!(
            info(&v),
            "ESP spi 0x0000c001 seq 1 len 40 [not decrypted: icv-mismatch]"
        );
        let v = json!({"kind": "esp", "encap": "none", "spi": "0000c001", "seq": 1, "length": 40,
            "inner": {"src": "10.0.0.1", "dst": "10.0.0.2", "protocol": 6}});
        assert_eq!(
            info(&v),
            "ESP spi 0x0000c001 seq 1 len 40 {10.0.0.1 -> 10.0.0.2 proto 6}"
        );
    }

    #[test]
    fn esp_icmp_and_errors() {
        let esp = json!({"kind": "esp", "encap": "udp", "spi": "0000007b", "seq": 3, "length": 80});
        assert_eq!(info(&esp), "ESP spi 0x0000007b seq 3 len 80 [udp-encap]");
        let icmp = json!({"kind": "icmp", "encap": "none", "type": 3, "code": 4, "mtu": 1400,
            "quoted": {"kind": "esp", "encap": "none", "spi": "00000001", "seq": 1, "length": 8}});
        assert_eq!(
            info(&icmp),
            "ICMP type 3 code 4 mtu 1400 quoting {ESP spi 0x00000001 seq 1 len 8}"
        );
        let bad = json!({"error": {"reason": "truncated", "offset": 14}});
        assert_eq!(
            info(&bad),
            "undecodable frame [malformed: truncated at offset 14]"
        );
        let v1 = json!({"kind": "ike", "encap": "udp", "version": 1, "exchange": "Quick Mode",
            "exchange_type": 32, "message_id": 0x8b7e8947u32, "flags": ["encrypted"], "payloads": []});
        assert_eq!(
            info(&v1),
            "IKEv1 Quick Mode msgid 0x8b7e8947 [encrypted] [udp-encap]"
        );
    }
}
