//! Policy-aware monitoring: `--policy` on diagnose and serve labels SAs with their rules,
//! reports cleartext that a rule requires to be protected, and gives every rule that should
//! have a tunnel a metric series before any packet.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ipsecmon");

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

#[test]
fn cleartext_that_the_policy_requires_protected_is_a_violation() {
    let out = Command::new(BIN)
        .args(["diagnose", "--json", "--local", "192.0.2.1", "--policy"])
        .arg(repo("examples/alice.toml"))
        .arg(repo("fixtures/policy/abczz.pcap"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings: Vec<&serde_json::Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "cleartext-violation")
        .collect();
    assert_eq!(findings.len(), 2, "one finding per rule: {doc:#}");
    let frames = |f: &serde_json::Value| -> Vec<u64> {
        f["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["frame"].as_u64().unwrap())
            .collect()
    };
    assert!(findings[0]["summary"]
        .as_str()
        .unwrap()
        .contains("\"Abczz with Bob\""));
    assert_eq!(frames(findings[0]), vec![1, 2, 3]);
    assert!(findings[1]["summary"]
        .as_str()
        .unwrap()
        .contains("\"SIP with Eve\""));
    assert_eq!(frames(findings[1]), vec![5, 6]);
}

#[test]
fn without_a_policy_cleartext_is_not_judged() {
    let out = Command::new(BIN)
        .args(["diagnose", "--json"])
        .arg(repo("fixtures/policy/abczz.pcap"))
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["code"] != "cleartext-violation"));
}

#[test]
fn a_bad_policy_is_a_usage_error_naming_the_flag() {
    let out = Command::new(BIN)
        .args(["diagnose", "--policy", "/nonexistent.toml"])
        .arg(repo("fixtures/policy/abczz.pcap"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--policy /nonexistent.toml"), "{err}");
}

#[test]
fn configured_tunnels_have_series_reading_down() {
    let policy = ipsecmon::policy::Policy::load_with(
        &repo("examples/alice.toml"),
        ipsecmon::policy::LoadOptions {
            me: Some(&["192.0.2.1".parse().unwrap()]),
            ..Default::default()
        },
    )
    .unwrap();
    let expected = ipsecmon::cli::expected_tunnels(&policy);
    assert!(expected.contains(&(
        "192.0.2.1<->192.0.2.2".to_string(),
        "Abczz with Bob".to_string()
    )));
    assert!(expected.contains(&(
        "192.0.2.1<->192.0.2.3".to_string(),
        "SIP with Eve".to_string()
    )));
    let metrics = ipsecmon::export::Metrics::new(ipsecmon::export::MetricsConfig {
        expected,
        ..Default::default()
    });
    let text = metrics.render();
    for line in [
        r#"ipsecmon_tunnel_state{rule="Abczz with Bob",state="down",tunnel="192.0.2.1<->192.0.2.2"} 1"#,
        r#"ipsecmon_tunnel_state{rule="SIP with Eve",state="down",tunnel="192.0.2.1<->192.0.2.3"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}");
    }
}
