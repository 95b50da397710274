//! Matching a flow to its rule: specificity (exact before subnet before any; protocol and
//! ports likewise), mirroring, ports, protocols, subnets, me/any and rule order. Table-driven.

use std::fs;

use ipsecmon::policy::matching::Specificity;
use ipsecmon::policy::{Flow, LoadOptions, Policy, StaticResolver};

/// Rules are deliberately listed least specific first, so that order alone would pick the
/// wrong one: only specificity gives the expected answers.
const POLICY: &str = r#"name = "Matching"
local_addresses = ["192.0.2.1", "2001:db8::1"]

[[filter_lists]]
name = "Everything"
filters = [{ source = "me", destination = "any" }]

[[filter_lists]]
name = "Lab subnet"
filters = [{ source = "me", destination = "192.0.2.0/24" }]

[[filter_lists]]
name = "Wide subnet tcp"
filters = [{ source = "me", destination = "192.0.0.0/16", protocol = "tcp" }]

[[filter_lists]]
name = "Bob any tcp"
filters = [{ source = "me", destination = "192.0.2.2", protocol = "tcp" }]

[[filter_lists]]
name = "Abczz to Bob"
filters = [
  { source = "me", destination = "192.0.2.2", protocol = "tcp", destination_port = 6667 },
  { source = "me", destination = "192.0.2.2", protocol = "tcp", destination_port = 6668 },
]

[[filter_lists]]
name = "DNS to Bobslap"
filters = [{ source = "me", destination = "bobslap", protocol = "udp", destination_port = 53 }]

[[filter_lists]]
name = "Web one way"
filters = [{ source = "me", destination = "198.51.100.7", protocol = "tcp", destination_port = 80, mirrored = false }]

[[filter_lists]]
name = "ICMP anywhere"
filters = [{ source = "any", destination = "any", protocol = "icmp" }]

[[filter_lists]]
name = "GRE by number"
filters = [{ source = "me", destination = "203.0.113.0/24", protocol = 47 }]

[[filter_lists]]
name = "IPv6 lab"
filters = [{ source = "me", destination = "2001:db8::/64" }]

[[filter_lists]]
name = "Abczz to Bob again"
filters = [{ source = "me", destination = "192.0.2.2", protocol = "tcp", destination_port = 6667 }]

[[filter_actions]]
name = "Encrypt"
action = "negotiate"
security_methods = ["high"]

[[filter_actions]]
name = "Permit"
action = "permit"

[[filter_actions]]
name = "Block"
action = "block"

[[rules]]
name = "everything"
filter_list = "Everything"
filter_action = "Permit"

[[rules]]
name = "lab"
filter_list = "Lab subnet"
filter_action = "Encrypt"

[[rules]]
name = "wide tcp"
filter_list = "Wide subnet tcp"
filter_action = "Block"

[[rules]]
name = "bob tcp"
filter_list = "Bob any tcp"
filter_action = "Permit"

[[rules]]
name = "abczz"
filter_list = "Abczz to Bob"
filter_action = "Encrypt"

[[rules]]
name = "dns"
filter_list = "DNS to Bobslap"
filter_action = "Permit"

[[rules]]
name = "web"
filter_list = "Web one way"
filter_action = "Encrypt"

[[rules]]
name = "icmp"
filter_list = "ICMP anywhere"
filter_action = "Permit"

[[rules]]
name = "gre"
filter_list = "GRE by number"
filter_action = "Encrypt"

[[rules]]
name = "v6"
filter_list = "IPv6 lab"
filter_action = "Encrypt"

[[rules]]
name = "abczz again"
filter_list = "Abczz to Bob again"
filter_action = "Block"

[[rules]]
name = "switched off"
filter_list = "Abczz to Bob again"
filter_action = "Permit"
enabled = false
"#;

fn policy() -> Policy {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("matching.toml");
    fs::write(&path, POLICY).unwrap();
    let r = StaticResolver {
        names: vec![("bobslap".into(), vec!["192.0.2.2".parse().unwrap()])],
        local: Vec::new(),
    };
    let opts = LoadOptions {
        resolver: &r,
        me: None,
    };
    Policy::load_with(path.to_str().unwrap(), opts).unwrap()
}

#[test]
fn flows_find_the_most_specific_rule() {
    let p = policy();
    // (flow, expected rule or None, via the mirror, filter number within its list)
    let cases: &[(&str, Option<&str>, bool, usize)] = &[
        // Exact address + protocol + port beats everything else.
        (
            "tcp 192.0.2.1:40000 -> 192.0.2.2:6667",
            Some("abczz"),
            false,
            1,
        ),
        (
            "tcp 192.0.2.1:40001 -> 192.0.2.2:6668",
            Some("abczz"),
            false,
            2,
        ),
        // The mirror: Bob's answers from 6667.
        (
            "tcp 192.0.2.2:6667 -> 192.0.2.1:40000",
            Some("abczz"),
            true,
            1,
        ),
        // Reversed ports are not the mirror: Bob to Alice's 6667 falls to a less specific rule.
        (
            "tcp 192.0.2.2:40000 -> 192.0.2.1:6667",
            Some("bob tcp"),
            true,
            1,
        ),
        // Exact address and protocol, other port.
        (
            "tcp 192.0.2.1:40000 -> 192.0.2.2:22",
            Some("bob tcp"),
            false,
            1,
        ),
        // Exact address via a DNS name, UDP port.
        ("udp 192.0.2.1:5353 -> 192.0.2.2:53", Some("dns"), false, 1),
        ("udp 192.0.2.2:53 -> 192.0.2.1:5353", Some("dns"), true, 1),
        // Other UDP to Bob: subnet /24 (any protocol) beats nothing more specific.
        ("udp 192.0.2.1:5353 -> 192.0.2.2:54", Some("lab"), false, 1),
        // Subnet /24 beats subnet /16 although the /16 names a protocol.
        ("tcp 192.0.2.1:40000 -> 192.0.2.9:80", Some("lab"), false, 1),
        // Only the /16 and any cover it: the subnet wins.
        (
            "tcp 192.0.2.1:40000 -> 192.0.9.9:80",
            Some("wide tcp"),
            false,
            1,
        ),
        // The /16 is tcp only.
        (
            "udp 192.0.2.1:40000 -> 192.0.9.9:80",
            Some("everything"),
            false,
            1,
        ),
        // ICMP to Bob: the lab subnet (me + subnet) is more specific than any -> any icmp.
        ("icmp 192.0.2.1 -> 192.0.2.2", Some("lab"), false, 1),
        // ICMP between two strangers: only any -> any icmp.
        ("icmp 198.51.100.1 -> 198.51.100.2", Some("icmp"), false, 1),
        // Protocol by number.
        ("47 192.0.2.1 -> 203.0.113.5", Some("gre"), false, 1),
        ("47 203.0.113.5 -> 192.0.2.1", Some("gre"), true, 1),
        // A filter that is not mirrored covers one direction only.
        (
            "tcp 192.0.2.1:40000 -> 198.51.100.7:80",
            Some("web"),
            false,
            1,
        ),
        (
            "tcp 198.51.100.7:80 -> 192.0.2.1:40000",
            Some("everything"),
            true,
            1,
        ),
        // IPv6 me and subnet.
        (
            "tcp [2001:db8::1]:40000 -> [2001:db8::2]:443",
            Some("v6"),
            false,
            1,
        ),
        (
            "tcp [2001:db8::2]:443 -> [2001:db8::1]:40000",
            Some("v6"),
            true,
            1,
        ),
        (
            "tcp [2001:db8::1]:40000 -> [2001:db9::2]:443",
            Some("everything"),
            false,
            1,
        ),
        // Neither end is me: nothing but any -> any icmp could match, and this is tcp.
        ("tcp 198.51.100.1:1 -> 198.51.100.2:2", None, false, 0),
    ];
    for (text, rule, mirrored, filter) in cases {
        let flow: Flow = text.parse().unwrap();
        let got = p.match_flow(&flow);
        assert_eq!(got.map(|m| m.rule.name.as_str()), *rule, "{text}");
        if let Some(m) = got {
            assert_eq!(m.mirrored, *mirrored, "{text}: mirrored");
            assert_eq!(m.filter_index + 1, *filter, "{text}: filter");
            assert_eq!(&p.rules[m.rule_index].name, &m.rule.name);
        }
    }
}

#[test]
fn equal_filters_go_to_the_earlier_rule_and_disabled_rules_never_match() {
    let p = policy();
    let flow: Flow = "tcp 192.0.2.1:40000 -> 192.0.2.2:6667".parse().unwrap();
    let all = ipsecmon::policy::matching::candidates(&p, &flow);
    let names: Vec<&str> = all.iter().map(|m| m.rule.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "abczz",
            "abczz again",
            "bob tcp",
            "lab",
            "wide tcp",
            "everything"
        ]
    );
}

#[test]
fn specificity_orders_addresses_then_protocol_then_ports() {
    let p = policy();
    let spec = |list: &str| {
        let l = p.filter_lists.iter().find(|l| l.name == list).unwrap();
        Specificity::of(&l.filters[0])
    };
    let order = [
        "Abczz to Bob",
        "DNS to Bobslap",
        "Bob any tcp",
        "IPv6 lab",
        "GRE by number",
        "Lab subnet",
        "Wide subnet tcp",
        "Everything",
        "ICMP anywhere",
    ];
    for pair in order.windows(2) {
        assert!(
            spec(pair[0]) >= spec(pair[1]),
            "{} before {}",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn tunnels_expected_lists_every_enabled_negotiate_rule() {
    let p = policy();
    let names: Vec<&str> = p
        .tunnels_expected()
        .iter()
        .map(|t| t.rule.name.as_str())
        .collect();
    assert_eq!(names, ["lab", "abczz", "web", "gre", "v6"]);
    let abczz = &p.tunnels_expected()[1];
    assert_eq!(abczz.peers(), ["192.0.2.2"]);
}

#[test]
fn flows_parse_and_print_back() {
    let cases = [
        "tcp 192.0.2.1:40000 -> 192.0.2.2:6667",
        "udp [2001:db8::1]:500 -> [2001:db8::2]:500",
        "icmp 192.0.2.1 -> 192.0.2.2",
        "50 192.0.2.1 -> 192.0.2.2",
    ];
    for text in cases {
        let flow: Flow = text.parse().unwrap();
        assert_eq!(flow.to_string(), text);
    }
    for bad in [
        "tcp 192.0.2.1 -> 192.0.2.2",
        "icmp 192.0.2.1:1 -> 192.0.2.2:2",
        "tcp 192.0.2.1:1 192.0.2.2:2",
        "sctp 192.0.2.1 -> 192.0.2.2",
        "tcp",
    ] {
        assert!(bad.parse::<Flow>().is_err(), "{bad}");
    }
}

#[test]
fn rules_between_two_hosts_label_their_security_associations() {
    let p = policy();
    let names = |a: &str, b: &str| -> Vec<String> {
        p.rules_between(a.parse().unwrap(), b.parse().unwrap())
            .into_iter()
            .map(|i| p.rules[i].name.clone())
            .collect()
    };
    assert_eq!(names("192.0.2.1", "192.0.2.2"), ["abczz", "lab"]);
    assert_eq!(names("192.0.2.2", "192.0.2.1"), ["abczz", "lab"]);
    assert_eq!(names("192.0.2.1", "203.0.113.9"), ["gre"]);
    assert!(names("198.51.100.1", "198.51.100.2").is_empty());
}
