//! The ESP path allocates nothing per packet: once its SAs exist, tracking ESP (plain and
//! UDP-encapsulated) and AH packets of known SPIs makes no heap allocation at all. A
//! counting global allocator sees every allocation of this test binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ipsecmon::capture::Frame;
use ipsecmon::engine::{Engine, EngineConfig};
use ipsecmon::wire::{LinkType, Timestamp};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; the counters are
// atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// An IPv4 packet of protocol `proto` carrying `payload`.
fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// ESP (RFC 4303 §2): SPI, sequence number, 64 bytes of ciphertext.
fn esp_body(spi: u32, seq: u32) -> Vec<u8> {
    [&spi.to_be_bytes()[..], &seq.to_be_bytes(), &[0xab; 64]].concat()
}

/// The frames of one round: for each of `sas` SAs an ESP packet, an ESP packet in UDP
/// 4500 and an AH packet (RFC 4302 §2: next header, length, reserved, SPI, sequence,
/// a 12-byte ICV, then a TCP header).
fn round(sas: u32, seq: u32) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for i in 0..sas {
        let a = Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8);
        let b = Ipv4Addr::new(192, 0, 2, 1);
        frames.push(ipv4(a, b, 50, &esp_body(0x1000_0000 + i, seq)));
        let mut udp = vec![0x11, 0x94, 0x11, 0x94, 0, 80, 0, 0];
        udp.extend_from_slice(&esp_body(0x2000_0000 + i, seq));
        frames.push(ipv4(a, b, 17, &udp));
        let mut ah = vec![6, 4, 0, 0];
        ah.extend_from_slice(&(0x3000_0000 + i).to_be_bytes());
        ah.extend_from_slice(&seq.to_be_bytes());
        ah.extend_from_slice(&[0x5a; 12]);
        ah.extend_from_slice(&[0x30, 0x39, 0x1a, 0x0b, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10]);
        ah.extend_from_slice(&[0x20, 0, 0, 0, 0, 0]);
        frames.push(ipv4(a, b, 51, &ah));
    }
    frames
}

#[test]
fn tracking_esp_and_ah_of_known_sas_allocates_nothing() {
    let mut engine = Engine::new(EngineConfig::default());
    let mut number = 0u64;
    let mut feed = |engine: &mut Engine, frames: &[Vec<u8>]| {
        for data in frames {
            number += 1;
            engine.process(&Frame {
                number,
                ts: Timestamp(1_700_000_000_000_000_000 + number as i64 * 1_000_000),
                link: LinkType::Raw,
                data,
                orig_len: data.len() as u32,
            });
        }
    };
    // The SAs come into being (that allocates: table slots, records).
    for seq in 1..=3 {
        feed(&mut engine, &round(200, seq));
    }
    let rounds: Vec<Vec<Vec<u8>>> = (4..=20).map(|seq| round(200, seq)).collect();
    COUNTING.store(true, Ordering::Relaxed);
    for frames in &rounds {
        feed(&mut engine, frames);
    }
    COUNTING.store(false, Ordering::Relaxed);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let report = engine.report();
    assert_eq!(report.esp_sas.len() + report.ah_sas.len(), 600);
    assert_eq!(report.frames, 20 * 600);
    assert_eq!(
        allocations,
        0,
        "{allocations} allocations for {} packets of known SAs",
        17 * 600
    );
    // The counter does see allocations.
    COUNTING.store(true, Ordering::Relaxed);
    let probe = std::hint::black_box(vec![1u8; 100]);
    COUNTING.store(false, Ordering::Relaxed);
    drop(probe);
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 1);
}
