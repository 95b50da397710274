//! Feeds arbitrary bytes to `wire::ike::parse_message` (IKEv1 and IKEv2 payload chains)
//! and renders what comes out as the `decode --json` object.
//!
//! The first input byte's low bit selects the draft NAT-D numbering; the rest is the IKE
//! message. Besides "no panic", it checks the bounds the parser promises: at most
//! `MAX_PAYLOADS` payloads and no copied byte field longer than `MAX_COPY`.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use ipsecmon::wire::ike::payload::MAX_COPY;
use ipsecmon::wire::ike::{self, ParseContext, PayloadBody, MAX_PAYLOADS};
use ipsecmon::wire::json::{render, Decoded};
use ipsecmon::wire::{Addrs, Encap, IkeDatagram, Timestamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    let ctx = ParseContext {
        draft_natd: selector & 1 != 0,
    };
    let parsed = ike::parse_message(message, ctx);
    if let Ok(msg) = &parsed {
        assert!(msg.payloads.len() <= MAX_PAYLOADS);
        for p in &msg.payloads {
            let copied = match &p.body {
                PayloadBody::VendorId { id, .. } => id.len(),
                PayloadBody::Notify(n) => n.data.len(),
                PayloadBody::NatDiscovery { hash } => hash.len(),
                _ => 0,
            };
            assert!(copied <= MAX_COPY);
        }
    }
    let datagram = IkeDatagram {
        addrs: Addrs {
            src: IpAddr::V4(Ipv4Addr::LOCALHOST),
            dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: Some((500, 500)),
        },
        encap: Encap::None,
        message,
    };
    let decoded = Decoded::Ike {
        datagram,
        message: parsed,
        ctx,
        decrypt: None,
    };
    let line = render(1, Timestamp(0), &decoded).expect("IKE always renders");
    assert_eq!(line["schema"], 1);
});
