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
use super::{Addrs, DecodeError, Encap, IkeDatagram, Packet, Timestamp};

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
        /// The parsed message, or why its header was unusable.
        message: Result<IkeMessage, DecodeError>,
        /// The parse context used.
        ctx: ParseContext,
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
        } => ike_fields(&mut obj, datagram, message, *ctx),
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
    let payloads = msg
        .payloads
        .iter()
        .map(|p| payload(msg.header.major, p, ctx))
        .collect();
    obj.insert("payloads".into(), Value::Array(payloads));
    if let Some(e) = &msg.error {
        obj.insert("error".into(), error(e));
    }
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
    if let Some(name) = name {
        obj.insert(format!("{key}_name"), name.into());
    }
    obj.insert(key.into(), number);
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
