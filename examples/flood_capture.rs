//! Writes a hostile capture (classic pcap, raw IPv4) for measuring what a flood costs:
//!
//! `cargo run --example flood_capture -- KIND PACKETS OUT.pcap`, KIND one of
//! `ike-init` (IKE_SA_INIT requests with random initiator SPIs), `esp` (ESP with random
//! SPIs), `fragments` (first fragments of UDP/500 datagrams that never complete) and
//! `retransmit` (one IKE_SA_INIT request sent over and over). Sources cycle through 256
//! documentation addresses; the target is 192.0.2.2. Deterministic.

use std::fs::File;
use std::io::BufWriter;
use std::net::Ipv4Addr;

use ipsecmon::capture::writer::{PcapOptions, PcapWriter};
use ipsecmon::wire::Timestamp;

/// LINKTYPE_RAW: the frame starts with the IP header.
const LINKTYPE_RAW: u32 = 101;
const TARGET: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn ipv4(src: Ipv4Addr, proto: u8, id: u16, frag: u16, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&TARGET.octets());
    p.extend_from_slice(payload);
    p
}

fn udp500(body: &[u8]) -> Vec<u8> {
    let mut u = 500u16.to_be_bytes().to_vec();
    u.extend_from_slice(&500u16.to_be_bytes());
    u.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(body);
    u
}

/// An IKEv2 IKE_SA_INIT request header (RFC 7296 §3.1) with no payloads.
fn sa_init(spi_i: u64) -> Vec<u8> {
    let mut m = spi_i.to_be_bytes().to_vec();
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&[0, 0x20, 34, 0x08, 0, 0, 0, 0, 0, 0, 0, 28]);
    m
}

fn packet(kind: &str, i: u64, rng: &mut Rng) -> Vec<u8> {
    let src = Ipv4Addr::new(198, 51, 100, (i % 256) as u8);
    match kind {
        "ike-init" => ipv4(src, 17, 1, 0x4000, &udp500(&sa_init(rng.next()))),
        "esp" => {
            let mut esp = (rng.next() as u32).to_be_bytes().to_vec();
            esp.extend_from_slice(&1u32.to_be_bytes());
            esp.extend_from_slice(&[0xab; 64]);
            ipv4(src, 50, 1, 0x4000, &esp)
        }
        "fragments" => {
            let mut body = udp500(&[0u8; 1016]);
            body.truncate(1024);
            ipv4(src, 17, (i / 256) as u16, 0x2000, &body)
        }
        "retransmit" => ipv4(src, 17, 1, 0x4000, &udp500(&sa_init(0x1122_3344_5566_7788))),
        other => panic!("unknown kind {other}: ike-init, esp, fragments or retransmit"),
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, packets, out] = args.as_slice() else {
        panic!("usage: flood_capture KIND PACKETS OUT.pcap");
    };
    let packets: u64 = packets.parse().expect("PACKETS is a number");
    let opts = PcapOptions {
        linktype: LINKTYPE_RAW,
        ..PcapOptions::default()
    };
    let mut w = PcapWriter::new(BufWriter::new(File::create(out)?), opts)?;
    let mut rng = Rng(7);
    for i in 0..packets {
        let data = packet(kind, i, &mut rng);
        // 10,000 packets a second of capture time.
        let ts = Timestamp(1_700_000_000_000_000_000 + i as i64 * 100_000);
        w.write_packet(ts, &data, data.len() as u32)?;
    }
    w.into_inner()?;
    Ok(())
}
