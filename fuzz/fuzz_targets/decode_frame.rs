//! Feeds arbitrary bytes to `wire::Decoder::decode` under every link type.
//!
//! The first input byte picks the link type and the packet time step; the rest is the
//! frame. One decoder lives for the whole fuzzing run (small reassembly limits), so that
//! fragments from earlier inputs meet later ones and the reassembly table's bounds are
//! exercised too. Quoted ICMP packets are decoded again the way a consumer would.

#![no_main]

use std::sync::Mutex;

use ipsecmon::wire::{ip, Decoder, DecoderConfig, LinkType, Packet, Timestamp};
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 9] = [
    LinkType::Ethernet,
    LinkType::Null,
    LinkType::Loop,
    LinkType::Raw,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Other(147),
];

struct State {
    decoder: Decoder,
    now: i64,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let state = guard.get_or_insert_with(|| State {
        decoder: Decoder::new(DecoderConfig {
            max_reassemblies: 16,
            max_datagram: 8192,
        }),
        now: 0,
    });
    // The high bits advance packet time by up to 15 s, so reassembly timeouts happen.
    state.now += i64::from(selector >> 4) * 1_000_000_000;
    let link = LINKS[usize::from(selector & 0x0f) % LINKS.len()];
    let ts = Timestamp(state.now);
    if let Ok(Packet::Icmp(icmp)) = state.decoder.decode(link, ts, frame) {
        let _ = ip::decode_quoted(icmp.quoted);
    }
    let _ = ip::decode_ip(frame);
    let _ = state.decoder.take_expired_ike_fragments();
    assert!(state.decoder.pending_ike_fragments().len() <= 16);
});
