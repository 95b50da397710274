//! The pcapng block layout (draft-ietf-opsawg-pcapng): section headers, interface
//! descriptions and the three packet blocks. Parsing only; the record walk and the buffer
//! live in [`super::file`].

use crate::wire::{LinkType, Timestamp};

use super::file::{rd16, rd32, rd64, RecordMeta, MAX_RECORD};

/// Block type of the Section Header Block; the same in both byte orders.
pub(crate) const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const OBSOLETE_PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// Largest packet block accepted: the largest record plus room for its options.
pub(crate) const MAX_PACKET_BLOCK: usize = MAX_RECORD + 64 * 1024;
/// Largest other block held in memory (section headers and interface descriptions with
/// their options); larger unknown blocks are skipped without being held.
pub(crate) const MAX_META_BLOCK: usize = 1 << 20;
/// Most interfaces one section may describe, so that a hostile file cannot grow the table.
const MAX_INTERFACES: usize = 65_536;

const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

/// How a block is to be treated, known from its type alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Section header: starts a new section (and may switch the byte order).
    Section,
    /// Interface description.
    Interface,
    /// A packet block of one of the three kinds.
    Packet,
    /// Anything else: skipped.
    Other,
}

/// Classifies a block type.
pub(crate) fn kind(block_type: u32) -> Kind {
    match block_type {
        SHB => Kind::Section,
        IDB => Kind::Interface,
        EPB | SPB | OBSOLETE_PB => Kind::Packet,
        _ => Kind::Other,
    }
}

/// Reads the byte order of a section from the first 12 bytes of its header block.
pub(crate) fn section_byte_order(head: &[u8]) -> Result<bool, String> {
    match rd32(head, 8, false) {
        BYTE_ORDER_MAGIC => Ok(false),
        m if m.swap_bytes() == BYTE_ORDER_MAGIC => Ok(true),
        m => Err(format!("section header with byte-order magic {m:08x}")),
    }
}

/// Converts a count of timestamp units to nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TsRes {
    /// Units of 10^-k s with k <= 9: multiply.
    Mul(u64),
    /// Finer units (10^-k with k > 9, or 2^-k): nanoseconds = units * 10^9 / divisor.
    Div(u128),
}

impl TsRes {
    /// Parses the `if_tsresol` option byte: the most significant bit selects base 2.
    fn from_option(v: u8) -> Result<Self, String> {
        let exp = u32::from(v & 0x7f);
        let divisor = if v & 0x80 != 0 {
            1u128.checked_shl(exp)
        } else {
            10u128.checked_pow(exp)
        };
        match divisor {
            Some(d) if v & 0x80 == 0 && exp <= 9 => Ok(TsRes::Mul(1_000_000_000 / d as u64)),
            Some(d) => Ok(TsRes::Div(d)),
            None => Err(format!("timestamp resolution option {v:#04x} out of range")),
        }
    }

    fn to_ns(self, units: u64) -> i64 {
        let ns = match self {
            TsRes::Mul(m) => u128::from(units) * u128::from(m),
            TsRes::Div(d) => u128::from(units) * 1_000_000_000 / d,
        };
        i64::try_from(ns).unwrap_or(i64::MAX)
    }
}

/// One described interface: its link type and how its timestamps read.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    res: TsRes,
    offset_ns: i64,
}

/// The state of the current section: byte order and the interfaces described so far.
#[derive(Debug, Default)]
pub(crate) struct Section {
    /// `true` when the section is big-endian.
    pub(crate) be: bool,
    interfaces: Vec<Interface>,
    last_ts: Timestamp,
}

impl Section {
    /// Starts a section from its (complete) header block.
    pub(crate) fn start(&mut self, block: &[u8]) -> Result<(), String> {
        self.be = section_byte_order(block)?;
        let major = rd16(block, 12, self.be);
        if major != 1 {
            return Err(format!("pcapng section of major version {major}"));
        }
        self.interfaces.clear();
        Ok(())
    }

    /// Adds the interface described by a (complete) interface description block.
    pub(crate) fn add_interface(&mut self, block: &[u8]) -> Result<(), String> {
        if block.len() < 20 {
            return Err("interface description block shorter than 20 bytes".into());
        }
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(format!(
                "more than {MAX_INTERFACES} interfaces in one section"
            ));
        }
        let mut iface = Interface {
            link: LinkType::from_linktype(u32::from(rd16(block, 8, self.be))),
            snaplen: rd32(block, 12, self.be),
            res: TsRes::Mul(1000),
            offset_ns: 0,
        };
        self.read_interface_options(block, &mut iface)?;
        self.interfaces.push(iface);
        Ok(())
    }

    /// Walks the options of an interface description for `if_tsresol` and `if_tsoffset`.
    fn read_interface_options(&self, block: &[u8], iface: &mut Interface) -> Result<(), String> {
        let end = block.len() - 4;
        let mut at = 16;
        while at + 4 <= end {
            let code = rd16(block, at, self.be);
            let len = usize::from(rd16(block, at + 2, self.be));
            let value = block
                .get(at + 4..at + 4 + len)
                .filter(|_| at + 4 + len <= end);
            let Some(value) = value else {
                return Err(format!("interface option {code} runs past its block"));
            };
            match (code, len) {
                (OPT_END, _) => break,
                (OPT_IF_TSRESOL, 1) => iface.res = TsRes::from_option(value[0])?,
                (OPT_IF_TSOFFSET, 8) => {
                    let secs = rd64(value, 0, self.be) as i64;
                    iface.offset_ns = secs.saturating_mul(1_000_000_000);
                }
                _ => {}
            }
            at += 4 + len.div_ceil(4) * 4;
        }
        Ok(())
    }

    fn interface(&self, id: u32) -> Result<Interface, String> {
        self.interfaces
            .get(id as usize)
            .copied()
            .ok_or_else(|| format!("packet on interface {id}, which no interface block describes"))
    }

    /// Locates the packet in a (complete) packet block of the given type. Offsets in the
    /// result are relative to the block's start.
    pub(crate) fn packet(&mut self, block_type: u32, block: &[u8]) -> Result<RecordMeta, String> {
        let meta = match block_type {
            EPB => self.enhanced(block, rd32(block, 8, self.be), 12, 28)?,
            OBSOLETE_PB => self.enhanced(block, u32::from(rd16(block, 8, self.be)), 12, 28)?,
            _ => self.simple(block)?,
        };
        self.last_ts = meta.ts;
        Ok(meta)
    }

    /// Enhanced and obsolete packet blocks: interface, 64-bit timestamp, lengths, data at
    /// `data_at`; they differ only in the width of the interface field.
    fn enhanced(
        &self,
        block: &[u8],
        id: u32,
        ts_at: usize,
        data_at: usize,
    ) -> Result<RecordMeta, String> {
        let iface = self.interface(id)?;
        let units = u64::from(rd32(block, ts_at, self.be)) << 32
            | u64::from(rd32(block, ts_at + 4, self.be));
        let caplen = rd32(block, ts_at + 8, self.be) as usize;
        let orig_len = rd32(block, ts_at + 12, self.be);
        check_len(caplen)?;
        if data_at + caplen + 4 > block.len() {
            return Err(format!(
                "packet of {caplen} bytes runs past its {}-byte block",
                block.len()
            ));
        }
        Ok(RecordMeta {
            start: data_at,
            len: caplen,
            ts: Timestamp(iface.res.to_ns(units).saturating_add(iface.offset_ns)),
            link: iface.link,
            orig_len,
        })
    }

    /// Simple packet block: interface 0, no timestamp (the previous packet's time is kept
    /// so that packet-time timers do not jump back to the epoch).
    fn simple(&self, block: &[u8]) -> Result<RecordMeta, String> {
        let iface = self.interface(0)?;
        let orig_len = rd32(block, 8, self.be);
        let mut len = (orig_len as usize).min(block.len().saturating_sub(16));
        if iface.snaplen != 0 {
            len = len.min(iface.snaplen as usize);
        }
        check_len(len)?;
        Ok(RecordMeta {
            start: 12,
            len,
            ts: self.last_ts,
            link: iface.link,
            orig_len,
        })
    }
}

/// Rejects a captured length no capture can hold (libpcap's own ceiling).
fn check_len(caplen: usize) -> Result<(), String> {
    if caplen > MAX_RECORD {
        return Err(format!(
            "record claims {caplen} captured bytes, more than the {MAX_RECORD} any capture holds; the file is damaged"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions() {
        assert_eq!(TsRes::from_option(6).unwrap().to_ns(5), 5_000);
        assert_eq!(TsRes::from_option(9).unwrap().to_ns(5), 5);
        assert_eq!(TsRes::from_option(0).unwrap().to_ns(2), 2_000_000_000);
        assert_eq!(TsRes::from_option(12).unwrap().to_ns(5_000), 5);
        assert_eq!(
            TsRes::from_option(0x80 | 10).unwrap().to_ns(1024),
            1_000_000_000
        );
        assert!(TsRes::from_option(0x7f).is_err(), "10^-127 does not fit");
    }

    #[test]
    fn unknown_interface_is_an_error() {
        let s = Section::default();
        let err = s.interface(3).unwrap_err();
        assert!(err.contains("interface 3"), "{err}");
    }

    #[test]
    fn byte_order_magic() {
        let mut head = [0u8; 12];
        head[8..12].copy_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        assert_eq!(section_byte_order(&head), Ok(false));
        head[8..12].copy_from_slice(&BYTE_ORDER_MAGIC.to_be_bytes());
        assert_eq!(section_byte_order(&head), Ok(true));
        head[8] = 0;
        assert!(section_byte_order(&head).is_err());
    }
}
