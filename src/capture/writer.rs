//! Writing capture files: classic pcap (either byte order, micro- or nanosecond
//! timestamps) and a minimal pcapng (one section, interface blocks, enhanced and simple
//! packet blocks). Used by the capture generator and by tests that build files byte by
//! byte; it is not a general-purpose pcapng writer (no options other than `if_tsresol`).

use std::io::{self, Write};

use crate::wire::Timestamp;

/// Layout choices of a classic pcap file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcapOptions {
    /// Write big-endian fields (the magic then reads `a1 b2 c3 d4` on disk).
    pub big_endian: bool,
    /// Nanosecond timestamps (magic `a1b23c4d`) instead of microseconds.
    pub nanos: bool,
    /// The `LINKTYPE_*` of every record.
    pub linktype: u32,
    /// Snapshot length written in the header.
    pub snaplen: u32,
}

impl Default for PcapOptions {
    fn default() -> Self {
        PcapOptions {
            big_endian: false,
            nanos: false,
            linktype: 1,
            snaplen: 262_144,
        }
    }
}

/// Puts integers in the chosen byte order.
#[derive(Debug, Clone, Copy)]
struct Order(bool);

impl Order {
    fn u16(self, v: u16) -> [u8; 2] {
        if self.0 {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u32(self, v: u32) -> [u8; 4] {
        if self.0 {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
}

/// A classic pcap writer over any `Write` (wrap files in a `BufWriter`).
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    order: Order,
    nanos: bool,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W, opts: PcapOptions) -> io::Result<Self> {
        let order = Order(opts.big_endian);
        let magic = if opts.nanos { 0xA1B2_3C4D } else { 0xA1B2_C3D4 };
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&order.u32(magic));
        h[4..6].copy_from_slice(&order.u16(2));
        h[6..8].copy_from_slice(&order.u16(4));
        h[16..20].copy_from_slice(&order.u32(opts.snaplen));
        h[20..24].copy_from_slice(&order.u32(opts.linktype));
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            order,
            nanos: opts.nanos,
        })
    }

    /// Writes one record; `orig_len` is the length on the wire (at least `data.len()`).
    pub fn write_packet(&mut self, ts: Timestamp, data: &[u8], orig_len: u32) -> io::Result<()> {
        let secs = ts.0.div_euclid(1_000_000_000) as u32;
        let ns = ts.0.rem_euclid(1_000_000_000) as u32;
        let frac = if self.nanos { ns } else { ns / 1000 };
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&self.order.u32(secs));
        h[4..8].copy_from_slice(&self.order.u32(frac));
        h[8..12].copy_from_slice(&self.order.u32(data.len() as u32));
        h[12..16].copy_from_slice(&self.order.u32(orig_len.max(data.len() as u32)));
        self.out.write_all(&h)?;
        self.out.write_all(data)
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A minimal pcapng writer: one section; interfaces and packets added in order.
#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    out: W,
    order: Order,
    /// Timestamp units per second of each interface added, for converting packet times.
    units: Vec<u64>,
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the section header block in the chosen byte order.
    pub fn new(out: W, big_endian: bool) -> io::Result<Self> {
        let mut w = PcapngWriter {
            out,
            order: Order(big_endian),
            units: Vec::new(),
        };
        let mut body = Vec::with_capacity(16);
        body.extend_from_slice(&w.order.u32(0x1A2B_3C4D));
        body.extend_from_slice(&w.order.u16(1));
        body.extend_from_slice(&w.order.u16(0));
        body.extend_from_slice(&[0xff; 8]);
        w.block(0x0A0D_0D0A, &body)?;
        Ok(w)
    }

    /// Adds an interface. `tsresol` is the raw `if_tsresol` option byte (none: microseconds;
    /// `9` for nanoseconds, `0x80 | k` for 2^-k seconds). Returns its interface id.
    pub fn add_interface(
        &mut self,
        linktype: u16,
        snaplen: u32,
        tsresol: Option<u8>,
    ) -> io::Result<u32> {
        let mut body = Vec::with_capacity(20);
        body.extend_from_slice(&self.order.u16(linktype));
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&self.order.u32(snaplen));
        if let Some(r) = tsresol {
            body.extend_from_slice(&self.order.u16(9));
            body.extend_from_slice(&self.order.u16(1));
            body.extend_from_slice(&[r, 0, 0, 0]);
            body.extend_from_slice(&[0; 4]);
        }
        self.block(1, &body)?;
        let per_sec = match tsresol {
            None => 1_000_000,
            Some(r) if r & 0x80 != 0 => 1u64 << (r & 0x3f),
            Some(r) => 10u64.pow(u32::from(r.min(19))),
        };
        self.units.push(per_sec);
        Ok(self.units.len() as u32 - 1)
    }

    /// Writes an enhanced packet block on interface `iface`.
    pub fn write_packet(
        &mut self,
        iface: u32,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let per_sec = self.units.get(iface as usize).copied().unwrap_or(1_000_000);
        let units = (i128::from(ts.0) * i128::from(per_sec) / 1_000_000_000) as u64;
        let mut body = Vec::with_capacity(20 + data.len() + 3);
        body.extend_from_slice(&self.order.u32(iface));
        body.extend_from_slice(&self.order.u32((units >> 32) as u32));
        body.extend_from_slice(&self.order.u32(units as u32));
        body.extend_from_slice(&self.order.u32(data.len() as u32));
        body.extend_from_slice(&self.order.u32(orig_len.max(data.len() as u32)));
        body.extend_from_slice(data);
        self.block(6, &body)
    }

    /// Writes a simple packet block (interface 0, no timestamp).
    pub fn write_simple(&mut self, data: &[u8]) -> io::Result<()> {
        let mut body = Vec::with_capacity(4 + data.len() + 3);
        body.extend_from_slice(&self.order.u32(data.len() as u32));
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    /// Writes an arbitrary block (padded to 4 bytes), e.g. one a reader must skip.
    pub fn block(&mut self, block_type: u32, body: &[u8]) -> io::Result<()> {
        let pad = (4 - body.len() % 4) % 4;
        let total = (12 + body.len() + pad) as u32;
        self.out.write_all(&self.order.u32(block_type))?;
        self.out.write_all(&self.order.u32(total))?;
        self.out.write_all(body)?;
        self.out.write_all(&[0; 3][..pad])?;
        self.out.write_all(&self.order.u32(total))
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
