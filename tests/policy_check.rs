//! `policy check`: every error and warning of the policy engine, table-driven, each naming
//! its line. Names resolve through a fixed table, so no test touches the network.

use std::fs;
use std::path::Path;

use ipsecmon::policy::{Diagnostic, Level, LoadOptions, Policy, PolicyError, StaticResolver};

/// A valid policy; each case edits it. Line numbers below refer to this text.
const BASE: &str = r#"name = "T"
local_addresses = ["192.0.2.1"]

[[filter_lists]]
name = "L"
filters = [
  { source = "me", destination = "192.0.2.2", protocol = "tcp", destination_port = 6667 },
]

[[filter_actions]]
name = "A"
action = "negotiate"
security_methods = ["high"]

[[rules]]
filter_list = "L"
filter_action = "A"
authentication = [{ method = "preshared-key", key_file = "good.psk" }]
"#;

const SECOND_RULE: &str = r#"
[[filter_lists]]
name = "Everything"
filters = [{ source = "me", destination = "any" }]

[[filter_actions]]
name = "Let it be"
action = "permit"

[[rules]]
filter_list = "Everything"
filter_action = "Let it be"
"#;

const FILTER: &str =
    r#"{ source = "me", destination = "192.0.2.2", protocol = "tcp", destination_port = 6667 },"#;
const AUTH: &str = r#"authentication = [{ method = "preshared-key", key_file = "good.psk" }]"#;

/// (case, edits of the base text, line the error must name, words of the message)
type ErrorCase<'a> = (&'a str, &'a [(&'a str, &'a str)], usize, &'a str);

fn resolver() -> StaticResolver {
    StaticResolver {
        names: vec![("bobslap".into(), vec!["192.0.2.2".parse().unwrap()])],
        local: vec!["192.0.2.1".parse().unwrap()],
    }
}

/// Writes `text` and its key files to a fresh directory and loads it.
fn load(text: &str) -> Result<Policy, PolicyError> {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("good.psk"),
        "a-long-lab-only-key-for-tests\n",
    )
    .unwrap();
    fs::write(dir.path().join("empty.psk"), "\n").unwrap();
    let path = dir.path().join("policy.toml");
    fs::write(&path, text).unwrap();
    let r = resolver();
    let opts = LoadOptions {
        resolver: &r,
        me: None,
    };
    Policy::load_with(path.to_str().unwrap(), opts)
}

fn edit(edits: &[(&str, &str)]) -> String {
    let mut text = BASE.to_string();
    for (from, to) in edits {
        assert!(text.contains(from), "the base has no {from:?}");
        text = text.replacen(from, to, 1);
    }
    text
}

fn assert_names_line(d: &Diagnostic, case: &str) {
    let shown = d.to_string();
    assert!(
        Path::new(&d.origin).ends_with("policy.toml")
            && shown.contains(&format!("policy.toml:{}:", d.line)),
        "{case}: {shown}"
    );
}

#[test]
fn the_base_policy_is_valid_and_quiet() {
    let p = load(BASE).unwrap();
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(p.rules[0].name, "L / A");
}

#[test]
fn every_error_names_its_line() {
    let rule_block = "[[rules]]\nfilter_list = \"L\"\nfilter_action = \"A\"\n";
    let cases: &[ErrorCase] = &[
        (
            "no rule",
            &[(rule_block, ""), (AUTH, "")],
            1,
            "must contain at least one rule",
        ),
        (
            "unknown filter list",
            &[("filter_list = \"L\"", "filter_list = \"Nope\"")],
            16,
            "unknown filter list \"Nope\"",
        ),
        (
            "unknown filter action",
            &[("filter_action = \"A\"", "filter_action = \"B\"")],
            17,
            "unknown filter action \"B\"",
        ),
        (
            "negotiate without methods",
            &[("[\"high\"]", "[]")],
            10,
            "lists no security methods",
        ),
        (
            "preshared key missing",
            &[(", key_file = \"good.psk\"", "")],
            18,
            "preshared key is missing",
        ),
        (
            "preshared key empty",
            &[("key_file = \"good.psk\"", "key = \"\"")],
            18,
            "preshared key is empty",
        ),
        (
            "key file empty",
            &[("good.psk", "empty.psk")],
            18,
            "is empty",
        ),
        (
            "key file absent",
            &[("good.psk", "absent.psk")],
            18,
            "cannot read the key file",
        ),
        (
            "key and key file",
            &[(
                "key_file = \"good.psk\"",
                "key = \"x\", key_file = \"good.psk\"",
            )],
            18,
            "not both",
        ),
        (
            "ports on icmp",
            &[("\"tcp\"", "\"icmp\"")],
            7,
            "ports exist on tcp and udp only",
        ),
        (
            "ports on any protocol",
            &[("protocol = \"tcp\", ", "")],
            7,
            "ports exist on tcp and udp only",
        ),
        ("port zero", &[("6667", "0")], 7, "port 0"),
        (
            "unresolvable name",
            &[("\"192.0.2.2\"", "\"nosuchhost\"")],
            7,
            "does not resolve",
        ),
        (
            "bad subnet",
            &[("\"192.0.2.2\"", "\"192.0.2.0/33\"")],
            7,
            "prefix length",
        ),
        (
            "unknown protocol",
            &[("\"tcp\"", "\"sctp-ish\"")],
            7,
            "unknown protocol",
        ),
        (
            "unknown action",
            &[("\"negotiate\"", "\"allow\"")],
            12,
            "unknown variant `allow`",
        ),
        (
            "unknown method",
            &[("[\"high\"]", "[\"highest\"]")],
            13,
            "unknown security method",
        ),
        (
            "gcm with integrity",
            &[(
                "[\"high\"]",
                "[{ esp = { integrity = \"sha1\", encryption = \"aes128-gcm\" } }]",
            )],
            13,
            "GCM authenticates by itself",
        ),
        (
            "empty custom method",
            &[("[\"high\"]", "[{ lifetime_kb = 5 }]")],
            13,
            "needs ah, esp, or both",
        ),
        (
            "unknown integrity",
            &[("[\"high\"]", "[{ ah = \"crc32\" }]")],
            13,
            "unknown integrity",
        ),
        (
            "misspelt field",
            &[(FILTER, &FILTER.replace("protocol", "protocl"))],
            7,
            "unknown field `protocl`",
        ),
        (
            "syntax",
            &[("action = \"negotiate\"", "action = \"negotiate")],
            12,
            "see the policy file format",
        ),
        (
            "certificate without ca",
            &[(AUTH, "authentication = [{ method = \"certificate\" }]")],
            18,
            "needs ca",
        ),
        (
            "tunnel to a subnet",
            &[(AUTH, "tunnel_endpoint = \"192.0.2.0/24\"")],
            18,
            "must be one IP address",
        ),
        (
            "bad local address",
            &[("[\"192.0.2.1\"]", "[\"alicepc\"]")],
            2,
            "not an IP address",
        ),
    ];
    for (case, edits, line, words) in cases {
        let err = load(&edit(edits)).expect_err(case);
        let PolicyError::Invalid { errors, .. } = err else {
            panic!("{case}: {err}");
        };
        let hit = errors.iter().find(|d| d.message.contains(words));
        let d = hit.unwrap_or_else(|| panic!("{case}: no error with {words:?} in {errors:?}"));
        assert_eq!(d.level, Level::Error, "{case}");
        assert_eq!(d.line, *line, "{case}: {d}");
        assert_names_line(d, case);
    }
}

#[test]
fn duplicate_names_are_errors_on_the_second_definition() {
    let text = format!("{BASE}\n[[filter_lists]]\nname = \"L\"\nfilters = []\n");
    let Err(PolicyError::Invalid { errors, .. }) = load(&text) else {
        panic!("a duplicate filter list name must not load");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].line, 20);
    assert!(errors[0]
        .message
        .contains("second filter list is named \"L\""));
}

#[test]
fn all_errors_are_reported_at_once() {
    let text = edit(&[
        ("filter_list = \"L\"", "filter_list = \"Nope\""),
        ("[\"high\"]", "[]"),
        ("\"tcp\"", "\"icmp\""),
    ]);
    let Err(PolicyError::Invalid { errors, .. }) = load(&text) else {
        panic!("must not load");
    };
    let lines: Vec<usize> = errors.iter().map(|d| d.line).collect();
    assert_eq!(lines, [7, 10, 16]);
}

#[test]
fn every_warning_names_its_line() {
    let mut overlap = BASE.to_string();
    overlap.push_str(SECOND_RULE);
    let cases: &[(&str, String, usize, &str)] = &[
        (
            "not mirrored",
            edit(&[("6667 }", "6667, mirrored = false }")]),
            7,
            "is not mirrored",
        ),
        (
            "short key",
            edit(&[("key_file = \"good.psk\"", "key = \"short\"")]),
            15,
            "has 5 characters",
        ),
        (
            "matches IKE",
            edit(&[(
                "protocol = \"tcp\", destination_port = 6667",
                "protocol = \"udp\"",
            )]),
            7,
            "also matches IKE itself",
        ),
        (
            "matches IKE on 4500",
            edit(&[(
                "\"tcp\", destination_port = 6667",
                "\"udp\", destination_port = 4500",
            )]),
            7,
            "also matches IKE itself",
        ),
        (
            "any protocol matches IKE",
            edit(&[(
                "protocol = \"tcp\", destination_port = 6667",
                "protocol = \"any\"",
            )]),
            7,
            "also matches IKE itself",
        ),
        ("overlapping rules", overlap, 28, "with different actions"),
        (
            "kerberos only",
            edit(&[(AUTH, "authentication = [{ method = \"kerberos\" }]")]),
            15,
            "Kerberos only",
        ),
        (
            "kerberos by default",
            edit(&[(AUTH, "")]),
            15,
            "Kerberos only",
        ),
        (
            "AH chosen",
            edit(&[("[\"high\"]", "[\"medium\"]")]),
            10,
            "cannot cross a NAT",
        ),
        (
            "custom AH",
            edit(&[(
                "[\"high\"]",
                "[{ ah = \"sha2-256\", esp = { encryption = \"aes256-cbc\" } }]",
            )]),
            10,
            "cannot cross a NAT",
        ),
        (
            "host bits",
            edit(&[("\"192.0.2.2\"", "\"192.0.2.2/24\"")]),
            7,
            "host bits",
        ),
        ("empty list", edit(&[(FILTER, "")]), 4, "has no filters"),
    ];
    for (case, text, line, words) in cases {
        let p = load(text).unwrap_or_else(|e| panic!("{case}: {e}"));
        let hit = p.warnings.iter().find(|d| d.message.contains(words));
        let d =
            hit.unwrap_or_else(|| panic!("{case}: no warning with {words:?} in {:?}", p.warnings));
        assert_eq!(d.level, Level::Warning, "{case}");
        assert_eq!(d.line, *line, "{case}: {d}");
        assert_names_line(d, case);
    }
}

#[test]
fn kerberos_beside_another_method_is_quiet() {
    let text = edit(&[(
        AUTH,
        "authentication = [{ method = \"kerberos\" }, { method = \"certificate\", ca = \"CN=Lab CA\" }]",
    )]);
    let p = load(&text).unwrap();
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn the_shipped_examples_pass_check_without_warnings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for name in ["alice.toml", "bob.toml"] {
        let path = dir.join(name);
        let p = Policy::load(path.to_str().unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(p.warnings.is_empty(), "{name}: {:?}", p.warnings);
    }
}

#[test]
fn keys_never_reach_debug_or_display() {
    let p = load(&edit(&[(
        "key_file = \"good.psk\"",
        "key = \"a-long-inline-secret-123\"",
    )]))
    .unwrap();
    let shown = format!("{p:?}\n{}", ipsecmon::policy::show::render(&p));
    assert!(!shown.contains("a-long-inline-secret-123"));
    assert!(shown.contains("key = (hidden, 24 chars)"));
}

#[test]
fn key_exchange_methods_load_in_order_and_default_to_windows_2000() {
    use ipsecmon::policy::{DhGroup, Encryption, Integrity, KeyExchangeMethod};
    assert_eq!(
        load(BASE).unwrap().key_exchange,
        [KeyExchangeMethod::WINDOWS_DEFAULT]
    );
    let text = format!(
        "{BASE}\n[key_exchange]\nmethods = [\n  {{ encryption = \"aes128-cbc\", integrity = \
         \"sha2-256\", dh_group = 14 }},\n  {{ encryption = \"3des\", integrity = \"md5\", \
         dh_group = \"medium\" }},\n  {{ encryption = \"aes256-gcm\", integrity = \"sha2-384\", \
         dh_group = 20 }},\n]\n"
    );
    let p = load(&text).unwrap();
    let proposals: Vec<String> = p
        .key_exchange
        .iter()
        .map(|m| m.strongswan_proposal())
        .collect();
    assert_eq!(
        proposals,
        [
            "aes128-sha256-modp2048",
            "3des-md5-modp1024",
            "aes256gcm16-prfsha384-ecp384"
        ]
    );
    assert_eq!(
        p.key_exchange[0],
        KeyExchangeMethod {
            encryption: Encryption::Aes128Cbc,
            integrity: Integrity::Sha2_256,
            dh_group: DhGroup::Modp2048,
        }
    );
    assert_eq!(
        p.key_exchange[1].to_string(),
        "3des, md5, Diffie-Hellman group 2 (modp1024)"
    );
}

#[test]
fn bad_key_exchange_methods_name_their_line() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "[key_exchange]\nmethods = [\n  { encryption = \"3des\", integrity = \"sha1\", dh_group = 7 },\n]\n",
            22,
            "unknown Diffie-Hellman group 7; use one of 1, 2, 5, 14, 15, 16, 19, 20, 21, 31",
        ),
        (
            "[key_exchange]\nmethods = [\n  { encryption = \"3des\", integrity = \"sha1\", dh_group = 2 },\n  { encryption = \"rc4\", integrity = \"sha1\", dh_group = 2 },\n]\n",
            23,
            "key exchange method: unknown encryption \"rc4\"",
        ),
        (
            "[key_exchange]\nmethods = []\n",
            20,
            "key_exchange lists no methods",
        ),
    ];
    for (section, line, words) in cases {
        let text = format!("{BASE}\n{section}");
        let Err(PolicyError::Invalid { errors, .. }) = load(&text) else {
            panic!("{section}: must not load");
        };
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains(words), "{}", errors[0]);
        assert_eq!(errors[0].line, *line, "{}", errors[0]);
        assert_names_line(&errors[0], words);
    }
}
