//! `ipsecmon policy` end to end on the shipped examples: exit codes, line numbers, JSON,
//! hidden keys. `--local` pins `me`, so results do not depend on this host.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn example(name: &str) -> String {
    examples().join(name).display().to_string()
}

fn ipsecmon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ipsecmon"))
        .args(args)
        .output()
        .expect("run ipsecmon")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn check_passes_both_examples_and_builtins() {
    for file in [
        example("alice.toml"),
        example("bob.toml"),
        "builtin:secure-server".into(),
    ] {
        let o = ipsecmon(&["policy", "check", &file]);
        assert_eq!(o.status.code(), Some(0), "{file}: {}", stdout(&o));
        assert!(stdout(&o).contains("is valid"), "{file}");
    }
}

#[test]
fn check_exits_2_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(examples().join("alice.toml"))
        .unwrap()
        .replace(
            "filter_list = \"SIP to Eve's PC\"",
            "filter_list = \"SIP to Eve\"",
        );
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, text).unwrap();
    for psk in ["alice-bob.psk", "alice-eve.psk"] {
        std::fs::copy(examples().join(psk), dir.path().join(psk)).unwrap();
    }
    let o = ipsecmon(&["policy", "check", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    assert!(
        out.contains("broken.toml:50: error: the rule names an unknown filter list"),
        "{out}"
    );
}

#[test]
fn explain_names_rule_filter_mirror_and_action() {
    let alice = example("alice.toml");
    let o = ipsecmon(&[
        "policy",
        "explain",
        &alice,
        "tcp 192.0.2.2:6668 -> 192.0.2.1:40000",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for words in [
        "\"Abczz with Bob\"",
        "2 of \"Abczz to Bob's PC\"",
        "via its mirror",
        "\"Encrypt Abczz\"",
        "why:",
    ] {
        assert!(out.contains(words), "{words:?} missing in\n{out}");
    }
}

#[test]
fn explain_json_carries_schema_1() {
    let alice = example("alice.toml");
    let o = ipsecmon(&[
        "policy",
        "explain",
        &alice,
        "udp 192.0.2.1:5060 -> 192.0.2.3:5060",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["matched"], true);
    assert_eq!(v["result"]["rule"], "SIP with Eve");
    assert_eq!(v["result"]["mirrored"], false);
    assert_eq!(v["result"]["cleartext"], "violation");
    assert_eq!(
        v["result"]["authentication"][0],
        "preshared-key, key_file = alice-eve.psk"
    );
}

#[test]
fn explain_exits_1_when_no_rule_governs_the_flow() {
    let o = ipsecmon(&[
        "policy",
        "explain",
        &example("bob.toml"),
        "tcp 192.0.2.2:40000 -> 192.0.2.3:6667",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["matched"], false);
    assert!(v["result"].is_null());
}

#[test]
fn explain_with_local_overrides_me() {
    let alice = example("alice.toml");
    let flow = "tcp 10.9.9.9:40000 -> 192.0.2.2:6667";
    let o = ipsecmon(&["policy", "explain", &alice, flow]);
    assert_eq!(o.status.code(), Some(1));
    let o = ipsecmon(&["policy", "--local", "10.9.9.9", "explain", &alice, flow]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn show_draws_the_tree_with_mirrors_and_no_keys() {
    let o = ipsecmon(&["policy", "show", &example("alice.toml")]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for words in [
        "IP Security Policy \"Alice's IPSec\"",
        "Rule 2 \"SIP with Eve\"",
        "IP Filter List \"Abczz to Bob's PC\"",
        "mirror: 192.0.2.2 -> me, tcp, port 6667 -> any",
        "Filter Action \"Encrypt Abczz\": negotiate security",
        "key_file = alice-eve.psk",
    ] {
        assert!(out.contains(words), "{words:?} missing in\n{out}");
    }
    for psk in ["alice-bob.psk", "alice-eve.psk"] {
        let key = std::fs::read_to_string(examples().join(psk)).unwrap();
        assert!(!out.contains(key.trim()), "a key leaked into policy show");
    }
}

#[test]
fn diff_of_alice_and_bob_names_the_differences() {
    let o = ipsecmon(&[
        "policy",
        "diff",
        &example("alice.toml"),
        &example("bob.toml"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("- rule \"SIP with Eve\""), "{out}");
    assert!(
        out.contains("+ filter list \"Abczz with Alice's PC\""),
        "{out}"
    );
    let same = ipsecmon(&["policy", "diff", &example("bob.toml"), &example("bob.toml")]);
    assert_eq!(same.status.code(), Some(0));
    let named = ipsecmon(&["policy", "diff", &example("alice.toml")]);
    assert_eq!(
        named.status.code(),
        Some(1),
        "alice.toml names bob.toml in other_policies"
    );
}

#[test]
fn unknown_builtin_and_missing_file_exit_2() {
    for file in ["builtin:nope", "/nonexistent/policy.toml"] {
        let o = ipsecmon(&["policy", "check", file]);
        assert_eq!(o.status.code(), Some(2), "{file}");
    }
}

#[test]
fn check_json_lists_warnings_with_lines() {
    let o = ipsecmon(&["policy", "check", "builtin:server", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["valid"], true);
    assert_eq!(v["rules"], 2);
    assert!(v["warnings"].as_array().unwrap().len() >= 2);
    let o = ipsecmon(&["policy", "check", "/nonexistent/policy.toml", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert!(v["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("cannot read"));
}
