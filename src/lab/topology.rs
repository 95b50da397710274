//! The lab's network: Alice and Bob as network namespaces joined by a veth pair, or with a
//! third namespace between them that does MASQUERADE.
//!
//! ```text
//! direct:  alice [eth0 192.0.2.1/24] ==== [eth0 192.0.2.2/24] bob
//! nat:     alice [eth0 10.0.0.2/24] == [in0 10.0.0.1] nat [out0 192.0.2.1] == [eth0 192.0.2.2] bob
//!          (Alice's default gateway is the NAT's inside, Bob's its outside)
//! ```
//!
//! Behind the NAT, Alice keeps her own address private and the NAT takes over the public
//! address 192.0.2.1 that Bob's policy knows her by: exactly the change that breaks a
//! policy written for a direct link. UDP is translated to source ports 40000-40999, so
//! the port translation shows on the wire as well. IPv6 is off and reverse-path filtering
//! is off in every namespace (kernel-libipsec's TUN device receives packets whose source
//! is routed elsewhere).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use super::state::{CaptureState, State};
use super::sys::{ip, netns_list, nft_load};
use super::LabError;

/// Alice's address on a direct link, and the NAT's public address in the NAT topology.
pub const ALICE_PUBLIC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// Bob's address.
pub const BOB_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
/// Alice's address behind the NAT.
pub const ALICE_PRIVATE: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
/// The NAT's inside address (Alice's default gateway).
pub const NAT_INSIDE: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

/// The interface every host has towards the other.
pub const HOST_IFACE: &str = "eth0";

/// Where each host is, for a topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    /// Alice's own address.
    pub alice: IpAddr,
    /// Bob's own address.
    pub bob: IpAddr,
    /// The address Bob sees Alice's packets come from.
    pub alice_seen_by_bob: IpAddr,
}

/// The addresses of the direct or the NAT topology.
pub fn addresses(nat: bool) -> Addresses {
    Addresses {
        alice: if nat { ALICE_PRIVATE } else { ALICE_PUBLIC },
        bob: BOB_ADDR,
        alice_seen_by_bob: ALICE_PUBLIC,
    }
}

/// The namespace name of a role (`alice`, `bob`, `nat`) under a prefix.
pub fn netns_name(prefix: &str, role: &str) -> String {
    if prefix.is_empty() {
        role.to_string()
    } else {
        format!("{prefix}-{role}")
    }
}

/// Creates the namespaces (each recorded in the state before it exists), the links, the
/// addresses and, for NAT, the translation; returns the captures to run.
pub fn build(state: &mut State, nat: bool) -> Result<Vec<CaptureState>, LabError> {
    let alice = netns_name(&state.prefix, "alice");
    let bob = netns_name(&state.prefix, "bob");
    let mid = netns_name(&state.prefix, "nat");
    let mut all = vec![alice.clone(), bob.clone()];
    if nat {
        all.push(mid.clone());
    }
    make_namespaces(state, &all)?;
    if nat {
        nat_links(state, &alice, &mid, &bob)?;
        Ok(vec![
            capture(state, "inside", &mid, "in0"),
            capture(state, "outside", &mid, "out0"),
        ])
    } else {
        link(&alice, HOST_IFACE, &bob, HOST_IFACE)?;
        address(&alice, HOST_IFACE, ALICE_PUBLIC)?;
        address(&bob, HOST_IFACE, BOB_ADDR)?;
        Ok(vec![capture(state, "link", &alice, HOST_IFACE)])
    }
}

/// Refuses when any of the names exists, then makes each, recorded first.
fn make_namespaces(state: &mut State, names: &[String]) -> Result<(), LabError> {
    let existing = netns_list()?;
    if let Some(taken) = names.iter().find(|n| existing.contains(n)) {
        return Err(LabError::NamespaceExists {
            name: taken.clone(),
        });
    }
    for ns in names {
        state.namespaces.push(ns.clone());
        state.save()?;
        ip(&["netns", "add", ns])?;
        prepare_netns(ns)?;
    }
    Ok(())
}

/// Alice behind the NAT namespace, Bob outside it, and the translation.
fn nat_links(state: &State, alice: &str, mid: &str, bob: &str) -> Result<(), LabError> {
    link(alice, HOST_IFACE, mid, "in0")?;
    link(mid, "out0", bob, HOST_IFACE)?;
    address(alice, HOST_IFACE, ALICE_PRIVATE)?;
    address(mid, "in0", NAT_INSIDE)?;
    address(mid, "out0", ALICE_PUBLIC)?;
    address(bob, HOST_IFACE, BOB_ADDR)?;
    ip(&[
        "-n",
        alice,
        "route",
        "add",
        "default",
        "via",
        &NAT_INSIDE.to_string(),
    ])?;
    // Bob's gateway is the NAT's outside (as an Internet router would be), so his
    // replies to Alice's private address have a route to be marked into the tunnel.
    ip(&[
        "-n",
        bob,
        "route",
        "add",
        "default",
        "via",
        &ALICE_PUBLIC.to_string(),
    ])?;
    masquerade(mid, &state.dir)
}

fn capture(state: &State, name: &str, netns: &str, iface: &str) -> CaptureState {
    CaptureState {
        name: name.into(),
        netns: netns.into(),
        iface: iface.into(),
        file: state.dir.join(format!("{name}.pcap")),
    }
}

/// Loopback up, IPv6 off (no router solicitations in the captures), no reverse-path
/// filtering, and forwarding on (used by the NAT namespace only).
fn prepare_netns(ns: &str) -> Result<(), LabError> {
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    let settings = [
        ("net/ipv6/conf/all/disable_ipv6", "1"),
        ("net/ipv6/conf/default/disable_ipv6", "1"),
        ("net/ipv4/conf/all/rp_filter", "0"),
        ("net/ipv4/conf/default/rp_filter", "0"),
        ("net/ipv4/ip_forward", "1"),
    ];
    sysctl_in(ns, &settings)
}

/// Writes `/proc/sys` settings of a namespace from a thread that entered it (the files
/// under `/proc/sys/net` belong to the opener's namespace).
fn sysctl_in(ns: &str, settings: &[(&str, &str)]) -> Result<(), LabError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            super::sys::enter_netns(ns)?;
            for (key, value) in settings {
                let path = Path::new("/proc/sys").join(key);
                std::fs::write(&path, value).map_err(super::io(&path))?;
            }
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| {
            Err(LabError::Command {
                command: format!("sysctl in {ns}"),
                output: "the thread panicked".into(),
            })
        })
    })
}

/// A veth pair with one end in each namespace, both up.
fn link(ns_a: &str, if_a: &str, ns_b: &str, if_b: &str) -> Result<(), LabError> {
    ip(&[
        "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b,
    ])?;
    ip(&["-n", ns_a, "link", "set", if_a, "up"])?;
    ip(&["-n", ns_b, "link", "set", if_b, "up"]).map(|_| ())
}

fn address(ns: &str, iface: &str, addr: IpAddr) -> Result<(), LabError> {
    ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", iface]).map(|_| ())
}

/// The NAT's ruleset: UDP gets new source ports (so the translation shows even where an
/// address alone would do), everything else the public address; and, as a NAT does,
/// nothing from outside reaches the inside unless it answers a connection from inside.
pub const MASQUERADE_NFT: &str = "\
table ip lab-nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname \"out0\" meta l4proto udp masquerade to :40000-40999
        oifname \"out0\" masquerade
    }
    chain forward {
        type filter hook forward priority filter; policy accept;
        iifname \"out0\" oifname \"in0\" ct state new drop
    }
}
";

fn masquerade(ns: &str, dir: &Path) -> Result<(), LabError> {
    let file = dir.join("nat.nft");
    std::fs::write(&file, MASQUERADE_NFT).map_err(super::io(&file))?;
    nft_load(ns, &file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses_of_both_topologies() {
        assert_eq!(netns_name("", "alice"), "alice");
        assert_eq!(netns_name("t7", "nat"), "t7-nat");
        let direct = addresses(false);
        assert_eq!(
            (direct.alice, direct.alice_seen_by_bob),
            (ALICE_PUBLIC, ALICE_PUBLIC)
        );
        let nat = addresses(true);
        assert_eq!(
            (nat.alice, nat.bob, nat.alice_seen_by_bob),
            (ALICE_PRIVATE, BOB_ADDR, ALICE_PUBLIC)
        );
    }
}
