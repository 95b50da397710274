//! A small client of charon's VICI protocol (strongSwan's `vici` plugin) over its Unix
//! socket: enough to load and unload connections and shared secrets, load certificates and
//! keys, list what is loaded, and terminate SAs.
//!
//! The wire format is the one strongSwan documents for the plugin: each packet is a 32-bit
//! big-endian length and the packet; a packet is a type byte, a name (8-bit length) for
//! named types, and a message. A message is a sequence of elements — section start/end,
//! key/value (16-bit value length), list start/item/end. Messages are [`Section`] trees
//! here, the same type the renderer writes swanctl.conf from.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::conf::{Item, Section};
use super::EnforceError;

const CMD_REQUEST: u8 = 0;
const CMD_RESPONSE: u8 = 1;
const CMD_UNKNOWN: u8 = 2;
const EVENT_REGISTER: u8 = 3;
const EVENT_CONFIRM: u8 = 5;
const EVENT_UNKNOWN: u8 = 6;
const EVENT: u8 = 7;

const SECTION_START: u8 = 1;
const SECTION_END: u8 = 2;
const KEY_VALUE: u8 = 3;
const LIST_START: u8 = 4;
const LIST_ITEM: u8 = 5;
const LIST_END: u8 = 6;

/// The largest packet the plugin accepts (512 KiB).
const MAX_PACKET: usize = 512 * 1024;

/// charon's default socket.
pub const DEFAULT_URI: &str = "unix:///var/run/charon.vici";

/// Why a message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// A name longer than 255 bytes.
    #[error("name {0:?} is longer than 255 bytes")]
    NameTooLong(String),
    /// A value longer than 65535 bytes.
    #[error("the value of {0:?} is longer than 65535 bytes")]
    ValueTooLong(String),
    /// The bytes end inside an element.
    #[error("message truncated at byte {0}")]
    Truncated(usize),
    /// An element type this client does not know, or one out of place.
    #[error("unexpected element {element} at byte {offset}")]
    Unexpected {
        /// The element type byte.
        element: u8,
        /// Where it was found.
        offset: usize,
    },
}

fn put_name(out: &mut Vec<u8>, name: &str) -> Result<(), CodecError> {
    let len = u8::try_from(name.len()).map_err(|_| CodecError::NameTooLong(name.into()))?;
    out.push(len);
    out.extend_from_slice(name.as_bytes());
    Ok(())
}

fn put_value(out: &mut Vec<u8>, key: &str, value: &[u8]) -> Result<(), CodecError> {
    let len = u16::try_from(value.len()).map_err(|_| CodecError::ValueTooLong(key.into()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
    Ok(())
}

/// Encodes the items of `section` (not its own name: the root of a message is unnamed).
/// Comments are left out.
pub fn encode(section: &Section, out: &mut Vec<u8>) -> Result<(), CodecError> {
    for item in &section.items {
        match item {
            Item::Value { key, value, .. } => {
                out.push(KEY_VALUE);
                put_name(out, key)?;
                put_value(out, key, value.as_bytes())?;
            }
            Item::List { key, values } => {
                out.push(LIST_START);
                put_name(out, key)?;
                for v in values {
                    out.push(LIST_ITEM);
                    put_value(out, key, v.as_bytes())?;
                }
                out.push(LIST_END);
            }
            Item::Section(s) => {
                out.push(SECTION_START);
                put_name(out, &s.name)?;
                encode(s, out)?;
                out.push(SECTION_END);
            }
            Item::Comment(_) => {}
        }
    }
    Ok(())
}

/// A cursor over message bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(CodecError::Truncated(self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn name(&mut self) -> Result<String, CodecError> {
        let n = usize::from(self.byte()?);
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }

    fn value(&mut self) -> Result<String, CodecError> {
        let len = self.take(2)?;
        let n = usize::from(u16::from_be_bytes([len[0], len[1]]));
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
}

/// Decodes a message into an unnamed root section. Values are read as UTF-8 (lossily):
/// charon sends text only.
pub fn decode(bytes: &[u8]) -> Result<Section, CodecError> {
    let mut r = Reader { bytes, at: 0 };
    let mut stack = vec![Section::new("")];
    while r.at < bytes.len() {
        let offset = r.at;
        match r.byte()? {
            SECTION_START => stack.push(Section::new(r.name()?)),
            SECTION_END if stack.len() > 1 => {
                let done = stack.pop().unwrap_or_default();
                if let Some(parent) = stack.last_mut() {
                    parent.section(done);
                }
            }
            KEY_VALUE => {
                let key = r.name()?;
                let value = r.value()?;
                if let Some(top) = stack.last_mut() {
                    top.value(&key, value);
                }
            }
            LIST_START => {
                let key = r.name()?;
                let values = list_items(&mut r)?;
                if let Some(top) = stack.last_mut() {
                    top.list(&key, values);
                }
            }
            element => return Err(CodecError::Unexpected { element, offset }),
        }
    }
    if stack.len() != 1 {
        return Err(CodecError::Truncated(bytes.len()));
    }
    Ok(stack.pop().unwrap_or_default())
}

fn list_items(r: &mut Reader<'_>) -> Result<Vec<String>, CodecError> {
    let mut values = Vec::new();
    loop {
        let offset = r.at;
        match r.byte()? {
            LIST_ITEM => values.push(r.value()?),
            LIST_END => return Ok(values),
            element => return Err(CodecError::Unexpected { element, offset }),
        }
    }
}

/// A connection to charon's VICI socket; one request at a time.
pub struct Client {
    stream: UnixStream,
    uri: String,
}

/// The socket path of a `unix://PATH` URI (a bare path is taken as it is).
pub fn socket_path(uri: &str) -> &str {
    uri.strip_prefix("unix://").unwrap_or(uri)
}

impl Client {
    /// Connects to `unix://PATH` (or a bare path).
    pub fn connect(uri: &str) -> Result<Client, EnforceError> {
        let stream = UnixStream::connect(socket_path(uri)).map_err(|e| EnforceError::Vici {
            uri: uri.into(),
            reason: format!(
                "cannot connect ({e}); is charon running with the vici plugin? (Debian packages strongswan-charon, strongswan-swanctl)"
            ),
        })?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
        Ok(Client {
            stream,
            uri: uri.into(),
        })
    }

    fn fail(&self, reason: String) -> EnforceError {
        EnforceError::Vici {
            uri: self.uri.clone(),
            reason,
        }
    }

    /// Sends command `name` with `message` and returns charon's response.
    pub fn request(&mut self, name: &str, message: &Section) -> Result<Section, EnforceError> {
        let mut packet = vec![CMD_REQUEST];
        put_name(&mut packet, name).map_err(|e| self.fail(e.to_string()))?;
        encode(message, &mut packet).map_err(|e| self.fail(format!("{name}: {e}")))?;
        self.send(name, &packet)?;
        loop {
            let reply = self.read_packet(name)?;
            match reply.first() {
                Some(&CMD_RESPONSE) => {
                    return decode(&reply[1..]).map_err(|e| self.fail(format!("{name}: {e}")))
                }
                Some(&CMD_UNKNOWN) => {
                    return Err(self.fail(format!("charon does not know the command {name:?}")))
                }
                Some(&EVENT) => continue,
                _ => return Err(self.fail(format!("{name}: unexpected reply packet"))),
            }
        }
    }

    fn read_packet(&mut self, name: &str) -> Result<Vec<u8>, EnforceError> {
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .map_err(|e| self.fail(format!("{name}: reading the reply: {e}")))?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 || len > MAX_PACKET {
            return Err(self.fail(format!("{name}: reply of {len} bytes")));
        }
        let mut packet = vec![0u8; len];
        self.stream
            .read_exact(&mut packet)
            .map_err(|e| self.fail(format!("{name}: reading the reply: {e}")))?;
        Ok(packet)
    }

    /// Sends command `name` and returns the messages of `event` it streams before its
    /// response (`list-sas` streams `list-sa`). Registers for the event first; the
    /// registration ends with the connection.
    pub fn stream(
        &mut self,
        name: &str,
        event: &str,
        message: &Section,
    ) -> Result<Vec<Section>, EnforceError> {
        let mut register = vec![EVENT_REGISTER];
        put_name(&mut register, event).map_err(|e| self.fail(e.to_string()))?;
        self.send(name, &register)?;
        match self.read_packet(name)?.first() {
            Some(&EVENT_CONFIRM) => {}
            Some(&EVENT_UNKNOWN) => {
                return Err(self.fail(format!("charon does not know the event {event:?}")))
            }
            _ => return Err(self.fail(format!("{name}: no confirmation of {event:?}"))),
        }
        let mut packet = vec![CMD_REQUEST];
        put_name(&mut packet, name).map_err(|e| self.fail(e.to_string()))?;
        encode(message, &mut packet).map_err(|e| self.fail(format!("{name}: {e}")))?;
        self.send(name, &packet)?;
        let mut events = Vec::new();
        loop {
            let reply = self.read_packet(name)?;
            match reply.first() {
                Some(&CMD_RESPONSE) => return Ok(events),
                Some(&EVENT) => {
                    let len = usize::from(reply.get(1).copied().unwrap_or(0));
                    let body = reply
                        .get(2 + len..)
                        .ok_or_else(|| self.fail(format!("{name}: truncated event")))?;
                    let decoded = decode(body).map_err(|e| self.fail(format!("{name}: {e}")))?;
                    events.push(decoded);
                }
                _ => return Err(self.fail(format!("{name}: unexpected reply packet"))),
            }
        }
    }

    fn send(&mut self, name: &str, packet: &[u8]) -> Result<(), EnforceError> {
        if packet.len() > MAX_PACKET {
            return Err(self.fail(format!("{name}: the request is over 512 KiB")));
        }
        let mut framed = (packet.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(packet);
        self.stream
            .write_all(&framed)
            .map_err(|e| self.fail(format!("{name}: sending: {e}")))
    }

    /// Sends a command and requires `success = yes`; the error carries charon's `errmsg`.
    pub fn call(&mut self, name: &str, message: &Section) -> Result<Section, EnforceError> {
        let reply = self.request(name, message)?;
        if reply.get_value("success") == Some("yes") {
            return Ok(reply);
        }
        let errmsg = reply.get_value("errmsg").unwrap_or("no reason given");
        Err(self.fail(format!("{name} refused: {errmsg}")))
    }

    /// The names in list `key` of the reply to a command without arguments (`get-conns`
    /// → `conns`, `get-shared` → `keys`).
    pub fn names(&mut self, command: &str, key: &str) -> Result<Vec<String>, EnforceError> {
        let reply = self.request(command, &Section::new(""))?;
        Ok(reply
            .get_list(key)
            .map(<[String]>::to_vec)
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Section {
        let mut inner = Section::new("local");
        inner.value("auth", "psk");
        let mut conn = Section::new("lab");
        conn.list("local_addrs", vec!["192.0.2.1".into()])
            .comment("left out")
            .section(inner);
        let mut root = Section::new("");
        root.section(conn);
        root
    }

    #[test]
    fn encoding_follows_the_documented_layout() {
        let mut out = Vec::new();
        encode(&sample(), &mut out).unwrap();
        let mut want = vec![SECTION_START, 3];
        want.extend_from_slice(b"lab");
        want.extend_from_slice(&[LIST_START, 11]);
        want.extend_from_slice(b"local_addrs");
        want.extend_from_slice(&[LIST_ITEM, 0, 9]);
        want.extend_from_slice(b"192.0.2.1");
        want.extend_from_slice(&[LIST_END, SECTION_START, 5]);
        want.extend_from_slice(b"local");
        want.extend_from_slice(&[KEY_VALUE, 4]);
        want.extend_from_slice(b"auth");
        want.extend_from_slice(&[0, 3]);
        want.extend_from_slice(b"psk");
        want.extend_from_slice(&[SECTION_END, SECTION_END]);
        assert_eq!(out, want);
    }

    #[test]
    fn decoding_inverts_encoding_without_comments() {
        let mut out = Vec::new();
        encode(&sample(), &mut out).unwrap();
        let back = decode(&out).unwrap();
        let lab = back.get("lab").unwrap();
        assert_eq!(lab.get_list("local_addrs").unwrap(), ["192.0.2.1"]);
        assert_eq!(lab.get("local").unwrap().get_value("auth"), Some("psk"));
        assert_eq!(lab.items.len(), 2);
    }

    #[test]
    fn damaged_messages_are_errors_not_panics() {
        let mut out = Vec::new();
        encode(&sample(), &mut out).unwrap();
        for cut in 0..out.len() {
            let _ = decode(&out[..cut]);
        }
        assert_eq!(decode(&[KEY_VALUE, 5, b'a']), Err(CodecError::Truncated(2)));
        assert_eq!(
            decode(&[9]),
            Err(CodecError::Unexpected {
                element: 9,
                offset: 0
            })
        );
        assert_eq!(
            decode(&[SECTION_START, 1, b'x']),
            Err(CodecError::Truncated(3))
        );
    }

    #[test]
    fn oversized_names_and_values_are_refused() {
        let mut s = Section::new("");
        s.value(&"k".repeat(256), "v");
        assert!(matches!(
            encode(&s, &mut Vec::new()),
            Err(CodecError::NameTooLong(_))
        ));
        let mut s = Section::new("");
        s.value("k", "v".repeat(70_000));
        assert_eq!(
            encode(&s, &mut Vec::new()),
            Err(CodecError::ValueTooLong("k".into()))
        );
    }

    /// A one-connection charon stand-in: answers the registration with `confirm`, then
    /// the request with `events` event messages and an empty response.
    fn fake_charon(confirm: u8, events: Vec<Section>) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("charon.vici");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let read = |c: &mut UnixStream| {
                let mut len = [0u8; 4];
                c.read_exact(&mut len).unwrap();
                let mut p = vec![0u8; u32::from_be_bytes(len) as usize];
                c.read_exact(&mut p).unwrap();
                p
            };
            let write = |c: &mut UnixStream, p: &[u8]| {
                c.write_all(&(p.len() as u32).to_be_bytes()).unwrap();
                c.write_all(p).unwrap();
            };
            assert_eq!(
                read(&mut conn),
                [&[EVENT_REGISTER, 7][..], b"list-sa"].concat()
            );
            write(&mut conn, &[confirm]);
            if confirm != EVENT_CONFIRM {
                return;
            }
            assert_eq!(
                read(&mut conn)[..10],
                [&[CMD_REQUEST, 8][..], b"list-sas"].concat()
            );
            for e in &events {
                let mut p = vec![EVENT, 7];
                p.extend_from_slice(b"list-sa");
                encode(e, &mut p).unwrap();
                write(&mut conn, &p);
            }
            write(&mut conn, &[CMD_RESPONSE]);
        });
        (dir, format!("unix://{}", path.display()))
    }

    #[test]
    fn a_streaming_command_returns_its_events() {
        let mut one = Section::new("");
        one.section(sample());
        let (_dir, uri) = fake_charon(EVENT_CONFIRM, vec![one.clone(), Section::new("")]);
        let got = Client::connect(&uri)
            .unwrap()
            .stream("list-sas", "list-sa", &Section::new(""))
            .unwrap();
        assert_eq!(got.len(), 2);
        let lab = got[0].get("").and_then(|s| s.get("lab")).unwrap();
        assert_eq!(lab.get_list("local_addrs").unwrap(), ["192.0.2.1"]);
        let (_dir, uri) = fake_charon(EVENT_UNKNOWN, Vec::new());
        let err = Client::connect(&uri)
            .unwrap()
            .stream("list-sas", "list-sa", &Section::new(""))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("does not know the event \"list-sa\""),
            "{err}"
        );
    }
}
