//! Unit tests of the renderer, one feature each, over small policies written inline.

use std::path::Path;

use super::*;
use crate::policy::{file, LoadOptions, StaticResolver};

/// A policy for 192.0.2.1 with one rule to 192.0.2.2 on TCP 6667, whose filter, action
/// and authentication lines are given.
fn policy_with(filter: &str, action: &str, auth: &str) -> Policy {
    load(&policy_source(filter, action, auth))
}

fn policy_source(filter: &str, action: &str, auth: &str) -> String {
    format!(
        r#"
name = "Test"
local_addresses = ["192.0.2.1"]
[[filter_lists]]
name = "L"
filters = [ {filter} ]
[[filter_actions]]
name = "A"
{action}
[[rules]]
name = "R"
filter_list = "L"
filter_action = "A"
authentication = [ {auth} ]
"#
    )
}

fn load(text: &str) -> Policy {
    let resolver = StaticResolver::default();
    let opts = LoadOptions {
        resolver: &resolver,
        me: None,
    };
    file::parse(text, "test.toml", Path::new("."), opts).expect("test policy loads")
}

const PSK: &str = r#"{ method = "preshared-key", key = "a-long-enough-test-key-123" }"#;
const TO_BOB: &str =
    r#"{ source = "me", destination = "192.0.2.2", protocol = "tcp", destination_port = 6667 }"#;
const HIGH_PFS: &str = r#"action = "negotiate"
security_methods = ["high"]
session_key_pfs = true"#;

fn rendered(p: &Policy) -> Rendered {
    render(p, &RenderOptions::default()).expect("renders")
}

fn conn(r: &Rendered) -> &conf::Section {
    r.swanctl
        .get("connections")
        .and_then(|c| c.sections().next())
        .expect("one connection")
}

fn child(r: &Rendered) -> &conf::Section {
    conn(r)
        .get("children")
        .and_then(|c| c.sections().next())
        .expect("one child")
}

fn list(s: &conf::Section, key: &str) -> Vec<String> {
    s.get_list(key).map(<[String]>::to_vec).unwrap_or_default()
}

#[test]
fn pfs_appends_the_dh_group_to_esp_proposals() {
    let r = rendered(&policy_with(TO_BOB, HIGH_PFS, PSK));
    assert_eq!(list(child(&r), "esp_proposals"), ["3des-sha1-modp1024"]);
    let no_pfs = HIGH_PFS.replace("true", "false");
    let r = rendered(&policy_with(TO_BOB, &no_pfs, PSK));
    assert_eq!(list(child(&r), "esp_proposals"), ["3des-sha1"]);
    let o = RenderOptions {
        pfs_group: "ecp256".into(),
        ..RenderOptions::default()
    };
    let r = render(&policy_with(TO_BOB, HIGH_PFS, PSK), &o).unwrap();
    assert_eq!(list(child(&r), "esp_proposals"), ["3des-sha1-ecp256"]);
}

#[test]
fn medium_renders_ah_proposals_only() {
    let action = r#"action = "negotiate"
security_methods = ["medium", "high"]"#;
    let r = rendered(&policy_with(TO_BOB, action, PSK));
    let c = child(&r);
    assert_eq!(list(c, "ah_proposals"), ["sha1"]);
    assert_eq!(list(c, "esp_proposals"), ["3des-sha1"]);
    let keys: Vec<&str> = c
        .items
        .iter()
        .filter_map(|i| match i {
            conf::Item::List { key, .. } => Some(key.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        keys,
        ["local_ts", "remote_ts", "ah_proposals", "esp_proposals"]
    );
}

#[test]
fn custom_methods_keep_their_order_and_the_first_ones_lifetimes() {
    let action = r#"action = "negotiate"
security_methods = [
  { esp = { encryption = "aes256-gcm" }, lifetime_kb = 50000, lifetime_seconds = 3600 },
  { esp = { encryption = "aes128-cbc", integrity = "sha2-256" } },
  "high",
]"#;
    let r = rendered(&policy_with(TO_BOB, action, PSK));
    let c = child(&r);
    assert_eq!(
        list(c, "esp_proposals"),
        ["aes256gcm16", "aes128-sha256", "3des-sha1"]
    );
    assert_eq!(c.get_value("rekey_time"), Some("3240s"));
    assert_eq!(c.get_value("life_time"), Some("3600s"));
    assert_eq!(c.get_value("rekey_bytes"), Some("46080000"));
    assert_eq!(c.get_value("life_bytes"), Some("51200000"));
}

#[test]
fn ah_with_esp_in_one_method_is_refused() {
    let action = r#"action = "negotiate"
security_methods = [ { ah = "sha1", esp = { encryption = "3des", integrity = "sha1" } } ]"#;
    let err = render(&policy_with(TO_BOB, action, PSK), &RenderOptions::default()).unwrap_err();
    assert!(matches!(err, EnforceError::AhWithEsp { ref action } if action == "A"));
}

#[test]
fn selectors_carry_protocol_and_ports_with_me_local() {
    let r = rendered(&policy_with(TO_BOB, HIGH_PFS, PSK));
    let c = child(&r);
    assert_eq!(list(c, "local_ts"), ["192.0.2.1/32[tcp]"]);
    assert_eq!(list(c, "remote_ts"), ["192.0.2.2/32[tcp/6667]"]);
    assert_eq!(c.get_value("mode"), Some("transport"));
    assert_eq!(c.get_value("start_action"), Some("trap"));
    // Bob's filter names Alice as the source: the renderer turns it so "me" is local.
    let bobs = r#"{ source = "192.0.2.2", destination = "me", protocol = "udp", source_port = 9, destination_port = 5060 }"#;
    let r = rendered(&policy_with(bobs, HIGH_PFS, PSK));
    let c = child(&r);
    assert_eq!(list(c, "local_ts"), ["192.0.2.1/32[udp/5060]"]);
    assert_eq!(list(c, "remote_ts"), ["192.0.2.2/32[udp/9]"]);
    assert_eq!(list(conn(&r), "remote_addrs"), ["192.0.2.2"]);
}

#[test]
fn mirrored_filters_guard_both_directions_and_unmirrored_only_one() {
    let r = rendered(&policy_with(TO_BOB, HIGH_PFS, PSK));
    assert!(r
        .nft_ruleset
        .contains("ip daddr 192.0.2.2 tcp dport 6667 rt ipsec exists accept\n"));
    assert!(r
        .nft_ruleset
        .contains("ip saddr 192.0.2.2 tcp sport 6667 meta ipsec exists accept\n"));
    assert!(r
        .nft_ruleset
        .contains("ip saddr 192.0.2.2 tcp sport 6667 drop\n"));
    let one_way = TO_BOB.replace(" }", ", mirrored = false }");
    let r = rendered(&policy_with(&one_way, HIGH_PFS, PSK));
    assert!(r
        .nft_ruleset
        .contains("ip daddr 192.0.2.2 tcp dport 6667 drop\n"));
    assert!(!r.nft_ruleset.contains("sport 6667"), "{}", r.nft_ruleset);
    // The IKE selectors are a pair either way (RFC 7296 §2.9): same child.
    assert_eq!(list(child(&r), "remote_ts"), ["192.0.2.2/32[tcp/6667]"]);
}

#[test]
fn block_and_permit_become_drop_and_accept_most_specific_first() {
    let text = r#"
name = "Mixed"
local_addresses = ["192.0.2.1"]
[[filter_lists]]
name = "All to Bob"
filters = [ { source = "me", destination = "192.0.2.2" } ]
[[filter_lists]]
name = "Web to Bob"
filters = [ { source = "me", destination = "192.0.2.2", protocol = "tcp", destination_port = 80 } ]
[[filter_actions]]
name = "Block"
action = "block"
[[filter_actions]]
name = "Permit"
action = "permit"
[[rules]]
name = "Block Bob"
filter_list = "All to Bob"
filter_action = "Block"
[[rules]]
name = "Web ok"
filter_list = "Web to Bob"
filter_action = "Permit"
"#;
    let r = rendered(&load(text));
    let out = &r.nft_ruleset;
    let web = out.find("ip daddr 192.0.2.2 tcp dport 80 accept").unwrap();
    let block = out.find("ip daddr 192.0.2.2 drop").unwrap();
    assert!(web < block, "the more specific permit comes first:\n{out}");
    assert!(out.contains("ip saddr 192.0.2.2 tcp sport 80 accept"));
    assert!(out.contains("ip saddr 192.0.2.2 drop"));
    assert!(r.connections.is_empty(), "permit and block need no IKE");
    assert!(!out.contains("ipsec exists"));
}

#[test]
fn accept_unsecured_and_fallback_relax_the_filter() {
    let unsecured = format!("{HIGH_PFS}\naccept_unsecured = true");
    let r = rendered(&policy_with(TO_BOB, &unsecured, PSK));
    let out = &r.nft_ruleset;
    // Inbound cleartext is accepted; the answer must still leave protected.
    assert!(out.contains("ip saddr 192.0.2.2 tcp sport 6667 accept\n"));
    assert!(!out.contains("ip saddr 192.0.2.2 tcp sport 6667 drop"));
    assert!(out.contains("ip daddr 192.0.2.2 tcp dport 6667 drop\n"));
    let fallback = format!("{HIGH_PFS}\nallow_fallback_to_clear = true");
    let r = rendered(&policy_with(TO_BOB, &fallback, PSK));
    assert!(!r.nft_ruleset.contains(" drop\n"), "{}", r.nft_ruleset);
    assert!(r
        .nft_ruleset
        .contains("ip daddr 192.0.2.2 tcp dport 6667 accept\n"));
}

#[test]
fn ike_and_ipsec_always_pass_before_any_policy_line() {
    let r = rendered(&policy_with(
        r#"{ source = "me", destination = "any" }"#,
        HIGH_PFS,
        PSK,
    ));
    let out = &r.nft_ruleset;
    for chain in ["chain input {", "chain output {"] {
        let at = out.find(chain).unwrap();
        let body = &out[at..];
        let ike = body.find("udp dport { 500, 4500 } accept").unwrap();
        let esp = body.find("meta l4proto { esp, ah } accept").unwrap();
        let first_drop = body.find(" drop").unwrap();
        assert!(ike < first_drop && esp < first_drop, "{chain}\n{out}");
    }
}

#[test]
fn kerberos_alone_is_refused_and_skipped_when_another_method_follows() {
    let err = render(
        &policy_with(TO_BOB, HIGH_PFS, r#"{ method = "kerberos" }"#),
        &RenderOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, EnforceError::KerberosOnly { ref rule } if rule == "R"));
    assert!(err
        .to_string()
        .contains("add a preshared-key or certificate method"));
    let both = format!(r#"{{ method = "kerberos" }}, {PSK}"#);
    let r = rendered(&policy_with(TO_BOB, HIGH_PFS, &both));
    assert_eq!(r.secrets, ["ike-ipsecmon-r"]);
    assert_eq!(
        r.notes,
        ["rule \"R\": Kerberos skipped (strongSwan cannot use it)"]
    );
}

#[test]
fn rules_to_different_peers_get_their_own_keys() {
    let text = r#"
name = "Alice"
local_addresses = ["192.0.2.1"]
[[filter_lists]]
name = "Bob"
filters = [ { source = "me", destination = "192.0.2.2", protocol = "tcp", destination_port = 6667 } ]
[[filter_lists]]
name = "Eve"
filters = [ { source = "me", destination = "192.0.2.3", protocol = "udp", destination_port = 5060 } ]
[[filter_actions]]
name = "Enc"
action = "negotiate"
security_methods = ["high"]
[[rules]]
name = "With Bob"
filter_list = "Bob"
filter_action = "Enc"
authentication = [ { method = "preshared-key", key = "bob-key-long-enough-123" } ]
[[rules]]
name = "With Eve"
filter_list = "Eve"
filter_action = "Enc"
authentication = [ { method = "preshared-key", key = "eve-key-long-enough-456" } ]
"#;
    let r = rendered(&load(text));
    assert_eq!(r.connections, ["ipsecmon-with-bob", "ipsecmon-with-eve"]);
    assert_eq!(
        r.secrets,
        ["ike-ipsecmon-with-bob", "ike-ipsecmon-with-eve"]
    );
    let text_out = r.swanctl_conf();
    let bob = text_out.find("ike-ipsecmon-with-bob {").unwrap();
    let eve = text_out.find("ike-ipsecmon-with-eve {").unwrap();
    assert!(text_out[bob..eve].contains("id-2 = 192.0.2.2\n"));
    assert!(text_out[bob..eve].contains("secret = \"bob-key-long-enough-123\"\n"));
    assert!(text_out[eve..].contains("id-2 = 192.0.2.3\n"));
    assert!(text_out[eve..].contains("secret = \"eve-key-long-enough-456\"\n"));
    // Two rules to one peer with different keys cannot share one IKE SA.
    let clash = text.replace("192.0.2.3", "192.0.2.2");
    let err = render(&load(&clash), &RenderOptions::default()).unwrap_err();
    assert!(
        matches!(err, EnforceError::ConflictingAuth { ref second, .. } if second == "With Eve")
    );
}

#[test]
fn secrets_never_show_in_debug_output() {
    let r = rendered(&policy_with(TO_BOB, HIGH_PFS, PSK));
    let shown = format!("{r:?}");
    assert!(!shown.contains("a-long-enough-test-key-123"));
    assert!(r.swanctl_conf().contains("a-long-enough-test-key-123"));
}

#[test]
fn ike_version_one_and_aggressive_mode() {
    let p = policy_with(TO_BOB, HIGH_PFS, PSK);
    let mut o = RenderOptions {
        ike_version: IkeVersion::V1,
        ..RenderOptions::default()
    };
    let r = render(&p, &o).unwrap();
    assert_eq!(conn(&r).get_value("version"), Some("1"));
    assert_eq!(conn(&r).get_value("aggressive"), None);
    o.ike_version = IkeVersion::V1Aggressive;
    let r = render(&p, &o).unwrap();
    assert_eq!(conn(&r).get_value("aggressive"), Some("yes"));
    assert!(r
        .strongswan_conf
        .contains("i_dont_care_about_security_and_use_aggressive_mode_psk = yes\n"));
}

#[test]
fn libipsec_uses_tunnel_mode_marks_and_the_tun_device() {
    let o = RenderOptions {
        data_plane: DataPlane::libipsec(),
        initiate: true,
        ..RenderOptions::default()
    };
    let r = render(&policy_with(TO_BOB, HIGH_PFS, PSK), &o).unwrap();
    let c = child(&r);
    assert_eq!(c.get_value("mode"), Some("tunnel"));
    assert_eq!(c.get_value("start_action"), Some("trap|start"));
    assert_eq!(conn(&r).get_value("encap"), Some("yes"));
    let out = &r.nft_ruleset;
    assert!(out.contains("ip daddr 192.0.2.2 tcp dport 6667 meta mark set 0x4950 return\n"));
    assert!(out.contains("ip daddr 192.0.2.2 tcp dport 6667 oifname \"ipsec0\" accept\n"));
    assert!(out.contains("ip saddr 192.0.2.2 tcp sport 6667 iifname \"ipsec0\" accept\n"));
    let route = &out[out.find("chain route {").unwrap()..out.find("chain input {").unwrap()];
    assert!(
        route.find("udp sport { 500, 4500 } return").unwrap() < route.find("mark set").unwrap()
    );
    assert!(r.strongswan_conf.contains("allow_peer_ts = yes\n"));
    assert!(r.strongswan_conf.contains("fwmark = 0x4950\n"));
}

#[test]
fn tunnel_rules_use_the_endpoint_as_peer() {
    let text = r#"
name = "Gateway"
local_addresses = ["192.0.2.1"]
[[filter_lists]]
name = "Nets"
filters = [ { source = "198.51.100.0/24", destination = "203.0.113.0/24" } ]
[[filter_actions]]
name = "Enc"
action = "negotiate"
security_methods = ["high"]
[[rules]]
name = "Site"
filter_list = "Nets"
filter_action = "Enc"
tunnel_endpoint = "192.0.2.2"
authentication = [ { method = "preshared-key", key = "site-key-long-enough-789" } ]
"#;
    let r = rendered(&load(text));
    let c = child(&r);
    assert_eq!(c.get_value("mode"), Some("tunnel"));
    assert_eq!(list(c, "local_ts"), ["198.51.100.0/24"]);
    assert_eq!(list(c, "remote_ts"), ["203.0.113.0/24"]);
    assert_eq!(list(conn(&r), "remote_addrs"), ["192.0.2.2"]);
}

#[test]
fn certificates_render_pubkey_auth_and_a_pki_script() {
    let auth = r#"{ method = "certificate", ca = "CN=Lab Root" }"#;
    let r = rendered(&policy_with(TO_BOB, HIGH_PFS, auth));
    let c = conn(&r);
    let local = c.get("local").unwrap();
    assert_eq!(local.get_value("auth"), Some("pubkey"));
    assert_eq!(list(local, "certs"), ["host.crt"]);
    assert_eq!(list(c.get("remote").unwrap(), "cacerts"), ["ca.crt"]);
    assert!(r.secrets.is_empty());
    let script = r.pki_script.as_deref().unwrap();
    assert!(script.contains("--dn 'CN=Lab Root'"));
    assert!(script.contains("--san '192.0.2.1'"));
    assert!(r
        .files()
        .iter()
        .any(|f| f.path == "pki.sh" && f.mode == 0o755));
}

#[test]
fn names_and_options_are_checked() {
    let p = policy_with(TO_BOB, HIGH_PFS, PSK);
    let o = RenderOptions {
        name: "bad name".into(),
        ..RenderOptions::default()
    };
    assert!(matches!(render(&p, &o), Err(EnforceError::Options(_))));
    let o = RenderOptions {
        name: "lab-a".into(),
        ..RenderOptions::default()
    };
    let r = render(&p, &o).unwrap();
    assert_eq!(r.connections, ["lab-a-r"]);
    assert_eq!(r.nft_table, "inet lab-a");
    assert!(r.nft_ruleset.contains("delete table inet lab-a\n"));
}

#[test]
fn write_to_keeps_secrets_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let r = rendered(&policy_with(TO_BOB, HIGH_PFS, PSK));
    let files = r.write_to(dir.path()).unwrap();
    assert_eq!(files.len(), 3);
    let meta = std::fs::metadata(dir.path().join(SWANCTL_CONF)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(dir.path().join(NFT_FILE)).unwrap();
    assert_eq!(text, r.nft_ruleset);
}

#[test]
fn slugs_are_plain_names() {
    assert_eq!(swanctl::slug("Abczz with Bob"), "abczz-with-bob");
    assert_eq!(swanctl::slug("  SIP / Eve's PC!"), "sip-eve-s-pc");
    assert_eq!(swanctl::slug("???"), "rule");
}

#[test]
fn builtin_policies_and_the_default_response_rule_need_more_than_kerberos() {
    let resolver = StaticResolver::default();
    let me = ["192.0.2.1".parse().unwrap()];
    let opts = LoadOptions {
        resolver: &resolver,
        me: Some(&me),
    };
    let p = crate::policy::builtin::policy("secure-server", opts).unwrap();
    let err = render(&p, &RenderOptions::default()).unwrap_err();
    assert!(matches!(err, EnforceError::KerberosOnly { .. }), "{err}");
    // The default response rule answers with Kerberos only: left out, with a note.
    let text = format!(
        "default_response_rule = true\n{}",
        policy_source(TO_BOB, HIGH_PFS, PSK)
    );
    let r = rendered(&load(&text));
    assert_eq!(r.connections, ["ipsecmon-r"]);
    assert_eq!(
        r.notes.last().map(String::as_str),
        Some("the default response rule is not rendered: it has no method strongSwan can use (Kerberos only)")
    );
}

#[test]
fn the_policys_key_exchange_methods_become_the_ike_proposals_and_the_pfs_group() {
    let text = policy_source(TO_BOB, HIGH_PFS, PSK)
        + "[key_exchange]\nmethods = [\n  { encryption = \"aes128-cbc\", integrity = \"sha2-256\", dh_group = 14 },\n  { encryption = \"aes128-cbc\", integrity = \"sha2-256\", dh_group = 15 },\n]\n";
    let p = load(&text);
    let r = rendered(&p);
    assert_eq!(
        list(conn(&r), "proposals"),
        ["aes128-sha256-modp2048", "aes128-sha256-modp3072"]
    );
    assert_eq!(list(child(&r), "esp_proposals"), ["3des-sha1-modp2048"]);
    assert_eq!(r.options.ike_proposals.len(), 2);
    // Options given explicitly win over the policy.
    let o = RenderOptions {
        ike_proposals: vec!["aes256-sha384-ecp384".into()],
        pfs_group: "ecp384".into(),
        ..RenderOptions::default()
    };
    let r = render(&p, &o).unwrap();
    assert_eq!(list(conn(&r), "proposals"), ["aes256-sha384-ecp384"]);
    assert_eq!(list(child(&r), "esp_proposals"), ["3des-sha1-ecp384"]);
    // Without the table: Windows 2000's default, group 2 for PFS too.
    let r = rendered(&policy_with(TO_BOB, HIGH_PFS, PSK));
    assert_eq!(list(conn(&r), "proposals"), [DEFAULT_IKE_PROPOSAL]);
    assert_eq!(list(child(&r), "esp_proposals"), ["3des-sha1-modp1024"]);
    assert_eq!(
        crate::policy::KeyExchangeMethod::WINDOWS_DEFAULT.strongswan_proposal(),
        DEFAULT_IKE_PROPOSAL
    );
}
