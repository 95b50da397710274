//! Feeds arbitrary text to the policy-file loader (TOML parse, resolution, validation) and
//! exercises what a loaded policy is used for: expected tunnels, matching a flow, the
//! `policy show` rendering.
//!
//! Names resolve through a fixed table, never DNS, and relative file references point
//! into a directory that does not exist, so the target touches neither network nor disk.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use ipsecmon::policy::matching::Flow;
use ipsecmon::policy::resolve::StaticResolver;
use ipsecmon::policy::{file, show, LoadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let resolver = StaticResolver {
        names: vec![(
            "bob.example".into(),
            vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))],
        )],
        local: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))],
    };
    let opts = LoadOptions {
        resolver: &resolver,
        me: None,
    };
    let dir = Path::new("/nonexistent-ipsecmon-fuzz");
    let Ok(policy) = file::parse(text, "fuzz.toml", dir, opts) else {
        return;
    };
    for t in policy.tunnels_expected() {
        let _ = t.peers();
    }
    let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    let _ = policy.rules_between(a, b);
    let flow = Flow {
        protocol: 6,
        src: a,
        src_port: Some(40_000),
        dst: b,
        dst_port: Some(6667),
    };
    let _ = policy.match_flow(&flow);
    let _ = show::render(&policy);
});
