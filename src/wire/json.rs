//! One decoded frame as the JSON object of the `decode --json` contract (DESIGN.md,
//! "Machine-readable output"): `schema`, `frame`, `ts`, `src`, `dst`, `kind`, `encap`,
//! then the fields of its kind.
//!
//! Rendering is separate from decoding: [`Decoded`] holds what the decoders produced for
//! one frame and [`render`] turns it into a `serde_json::Value`. Registry numbers are
//! always written, with their names beside them when the registry knows them.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use super::ike::payload::hex;
use super::ike::registry::{self as reg, DhGroup};
use super::ike::{self, IkeMessage, ParseContext, Payload, PayloadBody};
use super::{Addrs, DecodeError, Encap, EspPacket, IkeDatagram, Packet, Timestamp};
use crate::decrypt::{DecryptError, IkeDecrypt, InnerSummary};

/// Version of the JSON shape, written as `schema` on every line.
pub const SCHEMA: u32 = 1;

/// What the decoders made of one frame.
#[derive(Debug)]
pub enum Decoded<'a> {
    /// An IKE datagram, the result of parsing its message, and the context it was parsed
    /// with (which decides the names of IKEv1 payloads 15 and 16).
    Ike {
        /// Addresses, encapsulation and message bytes.
        datagram: IkeDatagram<'a>,
        /// The parsed message (with any payloads decryption recovered), or why its
        /// header was unusable.
        message: Result<IkeMessage, DecodeError>,
        /// The parse context used.
        ctx: ParseContext,
        /// What decryption made of it, when a key was given for it.
        decrypt: Option<IkeDecrypt>,
    },
    /// An ESP packet for which a key was given, and what decrypting it gave.
    Esp {
        /// The packet.
        packet: EspPacket<'a>,
        /// The inner packet's headers and whether an ICV was checked, or why it did not
        /// decrypt.
        result: Result<(InnerSummary, bool), DecryptError>,
    },
    /// Any other packet the frame decoder returned.
    Packet(Packet<'a>),
    /// The frame could not be decoded.
    Error(DecodeError),
}

/// Renders one frame: `None` for frames that are not IPsec-related (and fragments still
/// waiting for the rest of their datagram).
pub fn render(frame: u64, ts: Timestamp, decoded: &Decoded<'_>) -> Option<Value> {
    let mut obj = Map::new();
    obj.insert("schema".into(), SCHEMA.into());
    obj.insert("frame".into(), frame.into());
    obj.insert("ts".into(), json!(ts.as_secs_f64()));
    match decoded {
        Decoded::Ike {
            datagram,
            message,
            ctx,
            decrypt,
        } => {
            ike_fields(&mut obj, datagram, message, *ctx);
            if let (Ok(msg), Some(d)) = (message, decrypt) {
                decrypt_fields(&mut obj, msg, *d);
            }
        }
        Decoded::Esp { packet, result } => {
            packet_fields(&mut obj, &Packet::Esp(*packet));
            esp_decrypt_fields(&mut obj, result);
        }
        Decoded::Packet(packet) => {
            if !packet_fields(&mut obj, packet) {
                return None;
            }
        }
        Decoded::Error(e) => {
            obj.insert("error".into(), error(e));
        }
    }
    Some(Value::Object(obj))
}

/// `{reason, offset}`.
fn error(e: &DecodeError) -> Value {
    json!({ "reason": e.reason.as_str(), "offset": e.offset })
}

/// `ip:port` (IPv6 in brackets) when a port is given, else the bare address.
pub fn endpoint(ip: IpAddr, port: Option<u16>) -> String {
    match (ip, port) {
        (IpAddr::V6(v6), Some(p)) => format!("[{v6}]:{p}"),
        (ip, Some(p)) => format!("{ip}:{p}"),
        (ip, None) => ip.to_string(),
    }
}

/// `src`, `dst`, `kind` and `encap`.
fn common(obj: &mut Map<String, Value>, addrs: &Addrs, kind: &str, encap: Encap) {
    let (sport, dport) = addrs.ports.unzip();
    obj.insert("src".into(), endpoint(addrs.src, sport).into());
    obj.insert("dst".into(), endpoint(addrs.dst, dport).into());
    obj.insert("kind".into(), kind.into());
    obj.insert("encap".into(), encap.as_str().into());
}

/// The fields of a non-IKE packet; `false` when it is not rendered at all.
fn packet_fields(obj: &mut Map<String, Value>, packet: &Packet<'_>) -> bool {
    match packet {
        Packet::Ike(d) => {
            let message = ike::parse_message(d.message, ParseContext::default());
            ike_fields(obj, d, &message, ParseContext::default());
        }
        Packet::Esp(esp) => {
            common(obj, &esp.addrs, "esp", esp.encap);
            obj.insert("spi".into(), format!("{:08x}", esp.spi).into());
            obj.insert("seq".into(), esp.seq.into());
            obj.insert("length".into(), esp.payload.len().into());
        }
        Packet::Ah(ah) => {
            common(obj, &ah.addrs, "ah", Encap::None);
            obj.insert("spi".into(), format!("{:08x}", ah.spi).into());
            obj.insert("seq".into(), ah.seq.into());
            obj.insert("length".into(), ah.payload.len().into());
            obj.insert("next_header".into(), ah.next_header.into());
        }
        Packet::Keepalive(addrs) => common(obj, addrs, "keepalive", Encap::Udp),
        Packet::Icmp(icmp) => {
            common(obj, &icmp.addrs, "icmp", Encap::None);
            obj.insert("type".into(), icmp.icmp_type.into());
            obj.insert("code".into(), icmp.code.into());
            if let Some(mtu) = icmp.mtu {
                obj.insert("mtu".into(), mtu.into());
            }
            obj.insert("quoted".into(), quoted(icmp.quoted));
        }
        Packet::Fragment | Packet::Other => return false,
    }
    true
}

/// The packet quoted in an ICMP error, as a nested object without frame and time. A
/// quoted IKE message is usually cut short, so its header is read without the length
/// check and its payloads only when the whole message is there.
fn quoted(bytes: &[u8]) -> Value {
    let mut obj = Map::new();
    match super::ip::decode_quoted(bytes) {
        Ok(Packet::Ike(d)) => match ike::parse_message(d.message, ParseContext::default()) {
            Ok(msg) => ike_fields(&mut obj, &d, &Ok(msg), ParseContext::default()),
            Err(e) => {
                common(&mut obj, &d.addrs, "ike", d.encap);
                if let Some(h) = ike::peek_header(d.message) {
                    header_fields(&mut obj, &h);
                }
                obj.insert("truncated".into(), true.into());
                obj.insert("error".into(), error(&e));
            }
        },
        Ok(p) => {
            if !packet_fields(&mut obj, &p) {
                obj.insert("kind".into(), "other".into());
            }
        }
        Err(e) => {
            obj.insert("error".into(), error(&e));
        }
    }
    Value::Object(obj)
}

/// The fields of an IKE datagram.
fn ike_fields(
    obj: &mut Map<String, Value>,
    d: &IkeDatagram<'_>,
    message: &Result<IkeMessage, DecodeError>,
    ctx: ParseContext,
) {
    common(obj, &d.addrs, "ike", d.encap);
    let msg = match message {
        Ok(msg) => msg,
        Err(e) => {
            obj.insert("error".into(), error(e));
            return;
        }
    };
    header_fields(obj, &msg.header);
    obj.insert("payloads".into(), Value::Array(payload_list(msg, ctx)));
    if let Some(e) = &msg.error {
        obj.insert("error".into(), error(e));
    }
}

/// The payloads in wire order. Payloads recovered from an IKEv2 SK or SKF payload are
/// listed inside it, as its `payloads`; an IKEv1 message's decrypted payloads stand at
/// the top level (its whole body was encrypted). Each carries `decrypted: true`.
fn payload_list(msg: &IkeMessage, ctx: ParseContext) -> Vec<Value> {
    let major = msg.header.major;
    let mut out: Vec<Value> = Vec::new();
    let mut sealed = None;
    for p in &msg.payloads {
        let v = payload(major, p, ctx);
        match sealed
            .and_then(|i: usize| out.get_mut(i))
            .filter(|_| p.decrypted)
        {
            Some(Value::Object(sk)) => {
                let inner = sk
                    .entry("payloads")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(list) = inner {
                    list.push(v);
                }
            }
            _ => {
                if crate::decrypt::is_sealed(&p.body) {
                    sealed = Some(out.len());
                }
                out.push(v);
            }
        }
    }
    out
}

/// How decryption went: on the SK/SKF payload for IKEv2, on the message for IKEv1.
/// `decrypted`, `integrity` (`verified` when an ICV was checked, `not-checked`
/// otherwise), and `decrypt_error` with the reason when it failed.
fn decrypt_fields(obj: &mut Map<String, Value>, msg: &IkeMessage, d: IkeDecrypt) {
    let target = match obj.get_mut("payloads") {
        Some(Value::Array(list)) if msg.header.major == 2 => list
            .iter_mut()
            .rev()
            .find(|p| p.get("first_payload").is_some())
            .and_then(Value::as_object_mut),
        _ => None,
    };
    let target = match target {
        Some(t) => t,
        None => obj,
    };
    match d {
        IkeDecrypt::Decrypted { verified } | IkeDecrypt::FragmentStored { verified } => {
            target.insert("decrypted".into(), true.into());
            let integrity = if verified { "verified" } else { "not-checked" };
            target.insert("integrity".into(), integrity.into());
            if matches!(d, IkeDecrypt::FragmentStored { .. }) {
                target.insert("reassembly".into(), "pending".into());
            } else if msg.header.major == 2 {
                target
                    .entry("payloads")
                    .or_insert_with(|| Value::Array(Vec::new()));
            }
        }
        IkeDecrypt::Failed(e) => {
            target.insert("decrypted".into(), false.into());
            target.insert("decrypt_error".into(), e.as_str().into());
        }
    }
}

/// The decryption of an ESP packet: `decrypted`, `integrity`, the trailer's
/// `next_header`, and `inner` (addresses in tunnel mode, protocol, ports, length); or
/// `decrypted: false` and `decrypt_error`.
fn esp_decrypt_fields(
    obj: &mut Map<String, Value>,
    result: &Result<(InnerSummary, bool), DecryptError>,
) {
    let (s, verified) = match result {
        Ok(r) => *r,
        Err(e) => {
            obj.insert("decrypted".into(), false.into());
            obj.insert("decrypt_error".into(), e.as_str().into());
            return;
        }
    };
    obj.insert("decrypted".into(), true.into());
    let integrity = if verified { "verified" } else { "not-checked" };
    obj.insert("integrity".into(), integrity.into());
    obj.insert("next_header".into(), s.next_header.into());
    let mut inner = Map::new();
    if let Some((src, dst)) = s.addrs {
        inner.insert("src".into(), src.to_string().into());
        inner.insert("dst".into(), dst.to_string().into());
    }
    if let Some(p) = s.protocol {
        inner.insert("protocol".into(), p.into());
    }
    if let Some((sp, dp)) = s.ports {
        inner.insert("sport".into(), sp.into());
        inner.insert("dport".into(), dp.into());
    }
    inner.insert("length".into(), s.length.into());
    obj.insert("inner".into(), Value::Object(inner));
}

/// Version, SPIs, exchange, message ID, flags and length.
fn header_fields(obj: &mut Map<String, Value>, h: &ike::IkeHeader) {
    obj.insert("version".into(), h.major.into());
    obj.insert("spi_i".into(), format!("{:016x}", h.spi_i).into());
    obj.insert("spi_r".into(), format!("{:016x}", h.spi_r).into());
    obj.insert("exchange_type".into(), h.exchange_type.into());
    let name = reg::exchange_name(h.major, h.exchange_type);
    obj.insert("exchange".into(), name.map_or(Value::Null, Value::from));
    obj.insert("message_id".into(), h.message_id.into());
    obj.insert("flags".into(), flags(h).into());
    obj.insert("length".into(), h.length.into());
}

/// Flag names: IKEv2 I and R (RFC 7296 §3.1), IKEv1 E, C and A (RFC 2408 §3.1).
pub fn flags(h: &ike::IkeHeader) -> Vec<&'static str> {
    let mut out = Vec::new();
    if h.major == 1 {
        for (bit, name) in [(0x01, "encrypted"), (0x02, "commit"), (0x04, "auth_only")] {
            if h.flags & bit != 0 {
                out.push(name);
            }
        }
    } else {
        if h.is_initiator() {
            out.push("initiator");
        }
        if h.is_response() {
            out.push("response");
        }
    }
    out
}

/// `"key": number` and `"key_name": name` when the name is known.
fn named(obj: &mut Map<String, Value>, key: &str, number: Value, name: Option<&str>) {
    obj.insert(key.into(), number);
    if let Some(name) = name {
        obj.insert(format!("{key}_name"), name.into());
    }
}

/// One payload: `type`, `name`, then its decoded fields.
fn payload(major: u8, p: &Payload, ctx: ParseContext) -> Value {
    let mut obj = Map::new();
    obj.insert("type".into(), p.payload_type.into());
    let name = reg::payload_name(major, p.payload_type, ctx.draft_natd);
    obj.insert("name".into(), name.map_or(Value::Null, Value::from));
    if p.critical {
        obj.insert("critical".into(), true.into());
    }
    if p.decrypted {
        obj.insert("decrypted".into(), true.into());
    }
    body_fields(&mut obj, major, &p.body);
    Value::Object(obj)
}

/// The fields of a payload body.
fn body_fields(obj: &mut Map<String, Value>, major: u8, body: &PayloadBody) {
    match body {
        PayloadBody::Sa {
            doi,
            situation,
            proposals,
        } => {
            if let Some(doi) = doi {
                obj.insert("doi".into(), (*doi).into());
            }
            if let Some(situation) = situation {
                obj.insert("situation".into(), (*situation).into());
            }
            let list = proposals.iter().map(|p| proposal(major, p)).collect();
            obj.insert("proposals".into(), Value::Array(list));
        }
        PayloadBody::KeyExchange { group, data_len } => {
            if let Some(g) = group {
                named(obj, "group", (*g).into(), DhGroup(*g).name());
            }
            obj.insert("data_len".into(), (*data_len).into());
        }
        PayloadBody::Identification(id) => identification(obj, major, id),
        PayloadBody::Certificate { encoding, data_len }
        | PayloadBody::CertificateRequest { encoding, data_len } => {
            let name = reg::CertEncoding(*encoding).name();
            named(obj, "encoding", (*encoding).into(), name);
            obj.insert("data_len".into(), (*data_len).into());
        }
        PayloadBody::Authentication { method, data_len } => {
            named(
                obj,
                "method",
                (*method).into(),
                reg::AuthMethod(*method).name(),
            );
            obj.insert("data_len".into(), (*data_len).into());
        }
        PayloadBody::Hash { data_len }
        | PayloadBody::Signature { data_len }
        | PayloadBody::Nonce { data_len }
        | PayloadBody::Opaque { data_len } => {
            obj.insert("data_len".into(), (*data_len).into());
        }
        PayloadBody::Notify(n) => notify(obj, major, n),
        PayloadBody::Delete(d) => {
            if let Some(doi) = d.doi {
                obj.insert("doi".into(), doi.into());
            }
            let protocol = reg::ProtocolId(d.protocol_id).name();
            named(obj, "protocol_id", d.protocol_id.into(), protocol);
            let width = if d.protocol_id == 1 { 16 } else { 8 };
            let spis: Vec<String> = d.spis.iter().map(|s| format!("{s:0width$x}")).collect();
            obj.insert("spis".into(), spis.into());
        }
        PayloadBody::VendorId { id, name } => {
            obj.insert("id".into(), hex(id).into());
            obj.insert("vendor".into(), name.map_or(Value::Null, Value::from));
        }
        PayloadBody::TrafficSelectors(list) => {
            let list: Vec<Value> = list.iter().map(selector).collect();
            obj.insert("selectors".into(), list.into());
        }
        other => encrypted_or_rest(obj, major, other),
    }
}

/// SK, SKF, NAT-D, NAT-OA, CP / ATTR and EAP.
fn encrypted_or_rest(obj: &mut Map<String, Value>, major: u8, body: &PayloadBody) {
    match body {
        PayloadBody::Encrypted {
            first_payload,
            data_len,
        } => {
            let name = reg::payload_name(major, *first_payload, false);
            named(obj, "first_payload", (*first_payload).into(), name);
            obj.insert("data_len".into(), (*data_len).into());
        }
        PayloadBody::EncryptedFragment {
            number,
            total,
            first_payload,
            data_len,
        } => {
            obj.insert("fragment".into(), (*number).into());
            obj.insert("total".into(), (*total).into());
            let name = reg::payload_name(major, *first_payload, false);
            named(obj, "first_payload", (*first_payload).into(), name);
            obj.insert("data_len".into(), (*data_len).into());
        }
        PayloadBody::NatDiscovery { hash } => {
            obj.insert("hash".into(), super::ike::payload::hex(hash).into());
        }
        PayloadBody::NatOriginalAddress { addr } => {
            let addr = addr.map_or(Value::Null, |a| a.to_string().into());
            obj.insert("addr".into(), addr);
        }
        PayloadBody::Configuration {
            cfg_type,
            attributes,
        } => {
            named(
                obj,
                "cfg_type",
                (*cfg_type).into(),
                reg::CfgType(*cfg_type).name(),
            );
            let list: Vec<Value> = attributes
                .iter()
                .map(|a| attribute(a, reg::CfgAttr(a.attr_type).name(), None))
                .collect();
            obj.insert("attributes".into(), list.into());
        }
        PayloadBody::Eap { code, eap_type } => {
            named(obj, "code", (*code).into(), reg::EapCode(*code).name());
            if let Some(t) = eap_type {
                obj.insert("eap_type".into(), (*t).into());
            }
        }
        _ => {}
    }
}

/// One proposal with its transforms.
fn proposal(major: u8, p: &ike::Proposal) -> Value {
    let mut obj = Map::new();
    obj.insert("number".into(), p.number.into());
    let protocol = reg::ProtocolId(p.protocol_id).name();
    named(&mut obj, "protocol_id", p.protocol_id.into(), protocol);
    if p.spi_size > 0 {
        let width = usize::from(p.spi_size.min(8)) * 2;
        obj.insert("spi".into(), format!("{:0width$x}", p.spi).into());
    }
    let list: Vec<Value> = p
        .transforms
        .iter()
        .map(|t| transform(major, p.protocol_id, t))
        .collect();
    obj.insert("transforms".into(), list.into());
    Value::Object(obj)
}

/// One transform: IKEv2 by type and ID, IKEv1 by number and ID within the protocol.
fn transform(major: u8, protocol_id: u8, t: &ike::Transform) -> Value {
    let mut obj = Map::new();
    let attributes: Vec<Value> = if major == 1 {
        obj.insert("number".into(), t.number.into());
        let name = reg::transform_id_name_v1(protocol_id, t.transform_id);
        named(&mut obj, "id", t.transform_id.into(), name);
        t.attributes
            .iter()
            .map(|a| {
                let name = reg::attribute_name_v1(protocol_id, a.attr_type);
                let value = a
                    .value
                    .and_then(|v| reg::attribute_value_name_v1(protocol_id, a.attr_type, v));
                attribute(a, name, value)
            })
            .collect()
    } else {
        let type_name = reg::TransformType(t.transform_type).name();
        named(&mut obj, "type", t.transform_type.into(), type_name);
        let name = reg::transform_id_name_v2(t.transform_type, t.transform_id);
        named(&mut obj, "id", t.transform_id.into(), name);
        t.attributes
            .iter()
            .map(|a| attribute(a, reg::attribute_name_v2(a.attr_type), None))
            .collect()
    };
    if !attributes.is_empty() {
        obj.insert("attributes".into(), attributes.into());
    }
    Value::Object(obj)
}

/// `{type, name, value, value_name}` or `{type, name, hex}` for long values.
fn attribute(a: &ike::Attribute, name: Option<&str>, value_name: Option<&str>) -> Value {
    let mut obj = Map::new();
    named(&mut obj, "type", a.attr_type.into(), name);
    if let Some(v) = a.value {
        named(&mut obj, "value", v.into(), value_name);
    }
    if !a.raw.is_empty() {
        obj.insert("hex".into(), hex(&a.raw).into());
    }
    Value::Object(obj)
}

/// ID type, the identity as text, and IKEv1's protocol and port.
fn identification(obj: &mut Map<String, Value>, major: u8, id: &ike::Identification) {
    named(
        obj,
        "id_type",
        id.id_type.into(),
        reg::IdType(id.id_type).name(),
    );
    obj.insert("value".into(), id.value.clone().into());
    if major == 1 {
        obj.insert("protocol".into(), id.protocol.into());
        obj.insert("port".into(), id.port.into());
    }
}

/// Notify: type and name, protocol, SPI, data, and the meaning of the data for the types
/// whose data a monitor reads (NAT detection hashes, the wanted DH group, cookies).
fn notify(obj: &mut Map<String, Value>, major: u8, n: &ike::Notify) {
    let name = reg::notify_name(major, n.notify_type);
    named(obj, "notify_type", n.notify_type.into(), name);
    if let Some(doi) = n.doi {
        obj.insert("doi".into(), doi.into());
    }
    named(
        obj,
        "protocol_id",
        n.protocol_id.into(),
        reg::ProtocolId(n.protocol_id).name(),
    );
    if let Some(spi) = n.spi {
        let width = if n.protocol_id == 1 { 16 } else { 8 };
        obj.insert("spi".into(), format!("{spi:0width$x}").into());
    }
    if !n.data.is_empty() {
        obj.insert("data".into(), hex(&n.data).into());
    }
    if major != 2 {
        return;
    }
    match n.notify_type {
        16388 | 16389 => {
            obj.insert("hash".into(), hex(&n.data).into());
        }
        17 => {
            if let Some(b) = n.data.get(..2) {
                let group = u16::from_be_bytes([b[0], b[1]]);
                named(obj, "wanted_group", group.into(), DhGroup(group).name());
            }
        }
        _ => {}
    }
}

/// One traffic selector.
fn selector(ts: &ike::TrafficSelector) -> Value {
    json!({
        "ts_type": ts.ts_type,
        "ip_protocol": ts.ip_protocol,
        "start_port": ts.start_port,
        "end_port": ts.end_port,
        "start_addr": ts.start_addr.to_string(),
        "end_addr": ts.end_addr.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::wire::{EspPacket, IcmpError};

    fn addrs(ports: Option<(u16, u16)>) -> Addrs {
        Addrs {
            src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
            ports,
        }
    }

    fn ts() -> Timestamp {
        Timestamp::from_parts(1, 500_000_000)
    }

    /// An IKEv2 IKE_SA_INIT response with an INVALID_KE_PAYLOAD notify wanting group 19.
    fn invalid_ke() -> Vec<u8> {
        let mut m = vec![0xaa; 8];
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&[41, 0x20, 34, 0x20, 0, 0, 0, 0, 0, 0, 0, 38]);
        m.extend_from_slice(&[0, 0, 0, 10, 0, 0, 0, 17, 0, 19]);
        m
    }

    #[test]
    fn ike_line_has_the_contract_fields_in_order() {
        let bytes = invalid_ke();
        let datagram = IkeDatagram {
            addrs: addrs(Some((500, 500))),
            encap: Encap::None,
            message: &bytes,
        };
        let message = ike::parse_message(&bytes, ParseContext::default());
        let decoded = Decoded::Ike {
            datagram,
            message,
            ctx: ParseContext::default(),
            decrypt: None,
        };
        let v = render(7, ts(), &decoded).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            &keys[..7],
            ["schema", "frame", "ts", "src", "dst", "kind", "encap"]
        );
        assert_eq!(v["ts"], 1.5);
        assert_eq!(v["src"], "192.0.2.1:500");
        assert_eq!(v["spi_i"], "aaaaaaaaaaaaaaaa");
        assert_eq!(v["spi_r"], "0000000000000000");
        assert_eq!(v["exchange"], "IKE_SA_INIT");
        assert_eq!(v["flags"], json!(["response"]));
        let n = &v["payloads"][0];
        assert_eq!(
            (n["type"].clone(), n["name"].clone()),
            (json!(41), json!("N"))
        );
        assert_eq!(n["notify_type_name"], "INVALID_KE_PAYLOAD");
        assert_eq!(n["wanted_group"], 19);
        assert_eq!(n["wanted_group_name"], "ECP_256");
        assert!(v.get("error").is_none());
    }

    #[test]
    fn a_damaged_ike_header_still_gets_a_line() {
        let bytes = [0u8; 10];
        let datagram = IkeDatagram {
            addrs: addrs(Some((500, 500))),
            encap: Encap::Udp,
            message: &bytes,
        };
        let message = ike::parse_message(&bytes, ParseContext::default());
        let ctx = ParseContext::default();
        let v = render(
            1,
            ts(),
            &Decoded::Ike {
                datagram,
                message,
                ctx,
                decrypt: None,
            },
        )
        .unwrap();
        assert_eq!(v["kind"], "ike");
        assert_eq!(v["encap"], "udp");
        assert_eq!(v["error"], json!({"reason": "truncated", "offset": 10}));
    }

    #[test]
    fn esp_uses_bare_addresses_and_8_hex_digits() {
        let esp = EspPacket {
            addrs: addrs(None),
            encap: Encap::None,
            spi: 0x7b,
            seq: 2,
            payload: &[0; 40],
        };
        let v = render(3, ts(), &Decoded::Packet(Packet::Esp(esp))).unwrap();
        assert_eq!(v["src"], "192.0.2.1");
        assert_eq!(v["kind"], "esp");
        assert_eq!(v["spi"], "0000007b");
        assert_eq!(
            (v["seq"].clone(), v["length"].clone()),
            (json!(2), json!(40))
        );
    }

    #[test]
    fn ipv6_endpoints_are_bracketed_with_a_port() {
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(endpoint(v6, Some(4500)), "[::1]:4500");
        assert_eq!(endpoint(v6, None), "::1");
    }

    #[test]
    fn icmp_quotes_a_nested_packet_and_other_frames_render_nothing() {
        // A quoted IPv4 header + ESP header (protocol 50).
        let mut quoted = vec![0x45, 0, 0, 48, 0, 0, 0, 0, 64, 50, 0, 0];
        quoted.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
        quoted.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 1]);
        let icmp = IcmpError {
            addrs: addrs(None),
            v6: false,
            icmp_type: 3,
            code: 4,
            mtu: Some(1400),
            quoted: &quoted,
        };
        let v = render(4, ts(), &Decoded::Packet(Packet::Icmp(icmp))).unwrap();
        assert_eq!(
            (v["kind"].clone(), v["mtu"].clone()),
            (json!("icmp"), json!(1400))
        );
        assert_eq!(v["quoted"]["kind"], "esp");
        assert_eq!(v["quoted"]["spi"], "00000009");
        assert!(render(5, ts(), &Decoded::Packet(Packet::Other)).is_none());
        assert!(render(5, ts(), &Decoded::Packet(Packet::Fragment)).is_none());
    }

    /// An IKE_AUTH response whose SK payload decryption opened: N(AUTHENTICATION_FAILED).
    fn decrypted_auth_response() -> (Vec<u8>, IkeMessage) {
        let mut m = vec![0xaa; 8];
        m.extend_from_slice(&[0xbb; 8]);
        m.extend_from_slice(&[46, 0x20, 35, 0x20, 0, 0, 0, 1, 0, 0, 0, 40]);
        m.extend_from_slice(&[41, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut msg = ike::parse_message(&m, ParseContext::default()).unwrap();
        let inner = [0, 0, 0, 8, 0, 0, 0, 24];
        ike::parse_decrypted(&mut msg, 41, &inner, 32, ParseContext::default());
        (m, msg)
    }

    fn render_ike(bytes: &[u8], msg: IkeMessage, decrypt: Option<IkeDecrypt>) -> Value {
        let datagram = IkeDatagram {
            addrs: addrs(Some((500, 500))),
            encap: Encap::None,
            message: bytes,
        };
        let ctx = ParseContext::default();
        let message = Ok(msg);
        render(
            2,
            ts(),
            &Decoded::Ike {
                datagram,
                message,
                ctx,
                decrypt,
            },
        )
        .unwrap()
    }

    #[test]
    fn decrypted_payloads_are_listed_inside_the_sk_payload() {
        let (bytes, msg) = decrypted_auth_response();
        let v = render_ike(&bytes, msg, Some(IkeDecrypt::Decrypted { verified: true }));
        let payloads = v["payloads"].as_array().unwrap();
        assert_eq!(payloads.len(), 1, "the inner payloads are not top-level");
        let sk = &payloads[0];
        assert_eq!(
            (sk["name"].clone(), sk["decrypted"].clone()),
            (json!("SK"), json!(true))
        );
        assert_eq!(sk["integrity"], "verified");
        let n = &sk["payloads"][0];
        assert_eq!(n["notify_type_name"], "AUTHENTICATION_FAILED");
        assert_eq!(n["decrypted"], true);
    }

    #[test]
    fn a_decryption_failure_is_a_reason_on_the_sk_payload() {
        let (bytes, _) = decrypted_auth_response();
        let msg = ike::parse_message(&bytes, ParseContext::default()).unwrap();
        let failed = Some(IkeDecrypt::Failed(DecryptError::IcvMismatch));
        let v = render_ike(&bytes, msg, failed);
        let sk = &v["payloads"][0];
        assert_eq!(
            (sk["decrypted"].clone(), sk["decrypt_error"].clone()),
            (json!(false), json!("icv-mismatch"))
        );
        assert!(sk.get("payloads").is_none());
        assert!(v.get("decrypt_error").is_none());
    }

    #[test]
    fn decrypted_esp_shows_the_inner_headers() {
        let esp = EspPacket {
            addrs: addrs(None),
            encap: Encap::None,
            spi: 0xc001,
            seq: 2,
            payload: &[0; 64],
        };
        let inner = InnerSummary {
            next_header: 4,
            length: 84,
            addrs: Some(("10.1.1.1".parse().unwrap(), "10.1.0.10".parse().unwrap())),
            protocol: Some(1),
            ports: None,
        };
        let ok = Decoded::Esp {
            packet: esp,
            result: Ok((inner, true)),
        };
        let v = render(3, ts(), &ok).unwrap();
        assert_eq!(
            (v["kind"].clone(), v["spi"].clone()),
            (json!("esp"), json!("0000c001"))
        );
        assert_eq!(
            (v["decrypted"].clone(), v["integrity"].clone()),
            (json!(true), json!("verified"))
        );
        assert_eq!(
            v["inner"],
            json!({"src": "10.1.1.1", "dst": "10.1.0.10", "protocol": 1, "length": 84})
        );
        let bad = Decoded::Esp {
            packet: esp,
            result: Err(DecryptError::BadPadding),
        };
        let v = render(3, ts(), &bad).unwrap();
        assert_eq!(
            (v["decrypted"].clone(), v["decrypt_error"].clone()),
            (json!(false), json!("bad-padding"))
        );
    }

    #[test]
    fn undecodable_frames_carry_reason_and_offset() {
        let e = DecodeError::new(crate::wire::Reason::BadIpHeader, 14);
        let v = render(9, ts(), &Decoded::Error(e)).unwrap();
        assert_eq!(v["error"], json!({"reason": "bad-ip-header", "offset": 14}));
        assert_eq!(v["frame"], 9);
    }
}
