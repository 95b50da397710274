//! The two ends' policies compared as peers: the shipped pair agrees; reversed ports,
//! different keys, PFS and methods are each named.

use std::fs;
use std::path::Path;

use ipsecmon::policy::{peers, Policy};

fn examples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
}

/// Loads alice.toml and a copy of bob.toml changed by `edits`, in a fresh directory.
fn pair(edits: &[(&str, &str)]) -> (Policy, Policy) {
    let dir = tempfile::tempdir().unwrap();
    for f in ["alice.toml", "alice-bob.psk", "alice-eve.psk"] {
        fs::copy(examples().join(f), dir.path().join(f)).unwrap();
    }
    fs::write(
        dir.path().join("other.psk"),
        "a-different-lab-only-key-2026\n",
    )
    .unwrap();
    let mut bob = fs::read_to_string(examples().join("bob.toml")).unwrap();
    for (from, to) in edits {
        assert!(bob.contains(from), "bob.toml has no {from:?}");
        bob = bob.replace(from, to);
    }
    fs::write(dir.path().join("bob.toml"), bob).unwrap();
    let load = |n: &str| Policy::load(dir.path().join(n).to_str().unwrap()).unwrap();
    (load("alice.toml"), load("bob.toml"))
}

#[test]
fn the_shipped_pair_agrees_on_both_ports() {
    let (alice, bob) = pair(&[]);
    assert!(peers::are_peers(&alice, &bob));
    let found = peers::compare(&alice, &bob);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|c| c.sign == '='), "{found:?}");
}

#[test]
fn each_disagreement_is_named() {
    let literal = r#"{ source = "me", destination = "192.0.2.1", protocol = "tcp", destination_port = 6668 }"#;
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{ source = "192.0.2.1", destination = "me", protocol = "tcp", destination_port = 6668 }"#,
            literal,
            "has no rule for it",
        ),
        ("alice-bob.psk", "other.psk", "the preshared keys differ"),
        (
            "session_key_pfs = true",
            "session_key_pfs = false",
            "session key PFS",
        ),
        ("[\"high\"]", "[\"medium\"]", "no security method in common"),
        (
            "action = \"negotiate\"",
            "action = \"permit\"",
            "would permit it",
        ),
        (
            r#"[{ method = "preshared-key", key_file = "alice-bob.psk" }]"#,
            r#"[{ method = "certificate", ca = "CN=Lab CA" }]"#,
            "no authentication method in common",
        ),
        (
            "connection_type = \"lan\"",
            "connection_type = \"lan\"\n[key_exchange]\nmethods = [{ encryption = \"3des\", \
             integrity = \"sha1\", dh_group = 14 }]",
            "no key exchange method in common (no proposal chosen for the IKE SA)",
        ),
    ];
    for (from, to, words) in cases {
        let (alice, bob) = pair(&[(from, to)]);
        let found = peers::compare(&alice, &bob);
        assert!(
            found
                .iter()
                .any(|c| c.sign == '!' && c.text.contains(words)),
            "{words}: {found:?}"
        );
    }
}

#[test]
fn a_policy_is_not_its_own_peer() {
    let (alice, _) = pair(&[]);
    assert!(!peers::are_peers(&alice, &alice));
}
