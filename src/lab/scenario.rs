//! The lab's one-word presets: each is a pair of policy files (shipped under
//! `examples/lab/NAME/` and built into the binary, so `lab up --scenario NAME` works from
//! anywhere) plus, where needed, a topology, an IKE version or a packet-filter tweak.
//! Each directory's README.md and the comments in its files say how the failure is made.

use crate::enforce::IkeVersion;

/// What ipsecmon's monitor should report for a scenario's capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The IKE SA and the child SAs come up; no error finding.
    Established,
    /// The worst finding has this code (DESIGN.md's table) and this confidence, in
    /// percent: 100 when the wire or a decrypted message says so, less when the diagnosis
    /// infers it from sizes, timing or absence.
    Finding {
        /// The finding's code.
        code: &'static str,
        /// Its confidence in percent.
        confidence: u8,
    },
}

impl Expect {
    /// In words: `established`, `auth-failed`, or `auth-failed (inferred, 80 %)`.
    pub fn describe(self) -> String {
        match self {
            Expect::Established => "established".to_string(),
            Expect::Finding {
                code,
                confidence: 100,
            } => code.to_string(),
            Expect::Finding { code, confidence } => {
                format!("{code} (inferred, {confidence} %)")
            }
        }
    }
}

/// Shorthand for the table below.
const fn finding(code: &'static str, confidence: u8) -> Expect {
    Expect::Finding { code, confidence }
}

/// A packet-filter ruleset loaded into some hosts' namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tweak {
    /// The namespaces (`alice`, `bob`, `nat`) it is loaded in.
    pub hosts: &'static [&'static str],
    /// The ruleset's file name among the scenario's files.
    pub file: &'static str,
}

/// One preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// Its name on the command line.
    pub name: &'static str,
    /// One sentence: what happens.
    pub summary: &'static str,
    /// A NAT namespace between the hosts.
    pub nat: bool,
    /// The IKE version both hosts render with.
    pub ike: IkeVersion,
    /// Whether Bob runs charon at all.
    pub bob_daemon: bool,
    /// Packet-filter tweaks.
    pub tweaks: &'static [Tweak],
    /// What the monitor should say with the run's key tables (`--keys`).
    pub expect: Expect,
    /// What it should say from the cleartext alone. It differs where the failure is told
    /// only inside encrypted IKE messages (a child SA refused in IKE_AUTH or
    /// CREATE_CHILD_SA): then the diagnosis sees a negotiation stop half-way and can
    /// only suspect why, and where an inferred cause is less certain than a decrypted
    /// notify.
    pub without_keys: Expect,
    /// What the capture outside the NAT (`outside.pcap`) should say, where it differs from
    /// the inside one: beyond a filter that drops packets, the far side sees only what
    /// crossed it.
    pub outside: Option<Expect>,
    /// Cleartext TCP 6667/6668 crosses the link: one side's policy permits what the
    /// other's requires protected. In every other scenario both policies forbid it.
    pub cleartext_abczz: bool,
    /// The files (name, contents): `alice.toml`, `bob.toml`, key files, tweaks.
    pub files: &'static [(&'static str, &'static str)],
}

macro_rules! files {
    ($dir:literal: $($name:literal),+ $(,)?) => {
        &[$(($name, include_str!(concat!("../../examples/lab/", $dir, "/", $name)))),+]
    };
}

/// Every scenario, in the order `lab scenarios` lists them.
///
/// Limitation: none shows a NAT between peers without NAT traversal. strongSwan always
/// negotiates traversal, kernel-libipsec carries ESP only in UDP, and this kernel has no
/// ESP for plain IP protocol 50; `nat-4500-blocked` shows traversal stopped by a firewall
/// instead.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "ok",
        summary: "the seed's example: Alice and Bob encrypt Abczz (TCP 6667/6668); everything comes up",
        nat: false,
        ike: IkeVersion::V2,
        bob_daemon: true,
        tweaks: &[],
        expect: Expect::Established,
        without_keys: Expect::Established,
        outside: None,
        cleartext_abczz: false,
        files: files!("ok": "alice.toml", "bob.toml", "alice-bob.psk", "README.md"),
    },
    Scenario {
        name: "psk-mismatch",
        summary: "Bob's preshared key has a typo: AUTHENTICATION_FAILED in the encrypted IKE_AUTH response",
        nat: false,
        ike: IkeVersion::V2,
        bob_daemon: true,
        tweaks: &[],
        expect: finding("auth-failed", 100),
        without_keys: finding("auth-failed", 80),
        outside: None,
        cleartext_abczz: false,
        files: files!("psk-mismatch": "alice.toml", "bob.toml", "alice-bob.psk", "alice-bob-typo.psk", "README.md"),
    },
    Scenario {
        name: "not-mirrored",
        summary: "Bob's filters are not mirrored: Alice's traffic arrives protected, Bob's replies leave in clear and are dropped",
        nat: false,
        ike: IkeVersion::V2,
        bob_daemon: true,
        tweaks: &[],
        expect: finding("esp-one-way", 90),
        without_keys: finding("esp-one-way", 90),
        outside: None,
        cleartext_abczz: true,
        files: files!("not-mirrored": "alice.toml", "bob.toml", "alice-bob.psk", "README.md"),
    },
    Scenario {
        name: "reversed-ports",
        summary: "Bob copied Alice's filters literally: the SAs are narrowed to port 6667 to 6667 and nothing is ever protected",
        nat: false,
        ike: IkeVersion::V2,
        bob_daemon: true,
        tweaks: &[],
        expect: finding("ts-unacceptable", 100),
        without_keys: finding("esp-blocked", 50),
        outside: None,
        cleartext_abczz: false,
        files: files!("reversed-ports": "alice.toml", "bob.toml", "alice-bob.psk", "README.md"),
    },
    Scenario {
        name: "ts-mismatch",
        summary: "Bob's filters name other ports (6697/6698): TS_UNACCEPTABLE for every child SA",
        nat: false,
        ike: IkeVersion::V2,
        bob_daemon: true,
        tweaks: &[],
        expect: finding("ts-unacceptable", 100),
        without_keys: finding("negotiation-stalled", 60),
        outside: None,
        cleartext_abczz: false,
        files: files!("ts-mismatch": "alice.toml", "bob.toml", "alice-bob.psk", "README.md"),
    },
    Scenario {
        name: "no-common-proposal",
        summary: "the two filter actions share no security method: NO_PROPOSAL_CHOSEN for the child SA",
        nat: false,
        ike: IkeVersion::V2,
        bob_daemon: true,
        tweaks: &[],
        expect: finding("no-proposal-chosen", 100),
        without_keys: finding("negotiation-stalled", 60),
        outside: None,
        cleartext_abczz: false,
        files: files!("no-common-proposal": "alice.toml", "bob.toml", "alice-bob.psk", "README.md"),
    },
    Scenario {
        name: "pfs-mismatch",
        summary: "session key PFS on Alice's side only: the second child SA and every rekey get NO_PROPOSAL_CHOSEN",
        nat: false,
        ike: IkeVersion::V2,
        bob_daemon: true,
        tweaks: &[],
        expect: finding("no-proposal-chosen", 100),
        without_keys: finding("negotiation-stalled", 60),
        outside: None,
        cleartext_abczz: false,
        files: files!("pfs-mismatch": "alice.toml", "bob.toml", "alice-bob.psk", "README.md"),
    },
    Scenario {
        name: "dh-mismatch",
        summary: "the key exchange methods share no Diffie-Hellman group (14 against 19): NO_PROPOSAL_CHOSEN for IKE_SA_INIT",
        nat: false,
        ike: IkeVersion::V2,
        bob_daemon: true,
        tweaks: &[],
        expect: finding("no-proposal-chosen", 100),
        without_keys: finding("no-proposal-chosen", 100),
        outside: None,
        cleartext_abczz: false,
        files: files!("dh-mismatch": "alice.toml", "bob.toml", "alice-bob.psk", "README.md"),
    },
    Scenario {
        name: "dh-retry",
        summary: "Bob refuses the Diffie-Hellman group Alice guessed (INVALID_KE_PAYLOAD, group 15); her retry comes up",
        nat: false,
        ike: IkeVersion::V2,
        bob_daemon: true,
        tweaks: &[],
        expect: finding("invalid-ke", 100),
        without_keys: finding("invalid-ke", 100),
        outside: None,
        cleartext_abczz: false,
        files: files!("dh-retry": "alice.toml", "bob.toml", "alice-bob.psk", "README.md"),
    },
    Scenario {
        name: "nat",
        summary: "a NAT between them and the seed's policies: Alice's identity carries her private address; AUTHENTICATION_FAILED",
        nat: true,
        ike: IkeVersion::V2,
        bob_daemon: true,
        tweaks: &[],
        expect: finding("auth-failed", 100),
        without_keys: finding("auth-failed", 80),
        outside: None,
        cleartext_abczz: false,
        files: files!("nat": "alice.toml", "bob.toml", "alice-bob.psk", "README.md"),
    },
    Scenario {
        name: "nat-t",
        summary: "the same NAT, Bob's policy written for NAT traversal: everything comes up over UDP 4500",
        nat: true,
        ike: IkeVersion::V2,
        bob_daemon: true,
        tweaks: &[],
        expect: Expect::Established,
        without_keys: Expect::Established,
        outside: None,
        cleartext_abczz: false,
        files: files!("nat-t": "alice.toml", "bob.toml", "alice-bob.psk", "README.md"),
    },
    Scenario {
        name: "nat-4500-blocked",
        summary: "the nat-t policies behind a NAT router that drops UDP 4500: NAT detected, then IKE_AUTH on port 4500 unanswered",
        nat: true,
        ike: IkeVersion::V2,
        bob_daemon: true,
        tweaks: &[Tweak {
            hosts: &["nat"],
            file: "block-4500.nft",
        }],
        expect: finding("peer-unreachable", 90),
        without_keys: finding("peer-unreachable", 90),
        outside: Some(finding("peer-unreachable", 60)),
        cleartext_abczz: false,
        files: files!("nat-4500-blocked": "alice.toml", "bob.toml", "alice-bob.psk", "block-4500.nft", "README.md"),
    },
    Scenario {
        name: "esp-blocked",
        summary: "a packet filter passes IKE and drops ESP (ESP in UDP 4500 told apart by the non-ESP marker)",
        nat: false,
        ike: IkeVersion::V2,
        bob_daemon: true,
        tweaks: &[Tweak {
            hosts: &["alice", "bob"],
            file: "block-esp.nft",
        }],
        expect: finding("esp-blocked", 50),
        without_keys: finding("esp-blocked", 50),
        outside: None,
        cleartext_abczz: false,
        files: files!("esp-blocked": "alice.toml", "bob.toml", "alice-bob.psk", "block-esp.nft", "README.md"),
    },
    Scenario {
        name: "esp-one-way",
        summary: "Bob's packet filter drops the ESP he sends: protected traffic flows from Alice to Bob only",
        nat: false,
        ike: IkeVersion::V2,
        bob_daemon: true,
        tweaks: &[Tweak {
            hosts: &["bob"],
            file: "block-esp-out.nft",
        }],
        expect: finding("esp-one-way", 90),
        without_keys: finding("esp-one-way", 90),
        outside: None,
        cleartext_abczz: false,
        files: files!("esp-one-way": "alice.toml", "bob.toml", "alice-bob.psk", "block-esp-out.nft", "README.md"),
    },
    Scenario {
        name: "responder-down",
        summary: "Bob's host is up but runs no IKE daemon: IKE_SA_INIT retransmitted, ICMP port unreachable",
        nat: false,
        ike: IkeVersion::V2,
        bob_daemon: false,
        tweaks: &[],
        expect: finding("peer-unreachable", 95),
        without_keys: finding("peer-unreachable", 95),
        outside: None,
        cleartext_abczz: false,
        files: files!("responder-down": "alice.toml", "bob.toml", "alice-bob.psk", "README.md"),
    },
    Scenario {
        name: "ikev1",
        summary: "the seed's example over IKEv1 Main Mode and Quick Mode, as Windows 2000 negotiated",
        nat: false,
        ike: IkeVersion::V1,
        bob_daemon: true,
        tweaks: &[],
        expect: Expect::Established,
        without_keys: Expect::Established,
        outside: None,
        cleartext_abczz: false,
        files: files!("ikev1": "alice.toml", "bob.toml", "alice-bob.psk", "README.md"),
    },
];

/// The scenario named `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// The names of all scenarios, comma-separated (for messages).
pub fn names() -> String {
    SCENARIOS
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `ipsecmon lab scenarios` prints: each scenario's name and summary, and under it
/// what ipsecmon says of its capture with the run's key tables and without them.
pub fn listing() -> String {
    let mut out = String::new();
    for s in SCENARIOS {
        out.push_str(&format!("{:<20} {}\n", s.name, s.summary));
        let (with, without) = (s.expect.describe(), s.without_keys.describe());
        let says = if with == without {
            format!("{with}, with or without the key tables")
        } else {
            format!("{with} with the key tables; {without} without")
        };
        out.push_str(&format!("{:<20} ipsecmon says: {says}\n", ""));
        if let Some(outside) = s.outside {
            out.push_str(&format!(
                "{:<20} outside the NAT: {}\n",
                "",
                outside.describe()
            ));
        }
    }
    out
}

impl Scenario {
    /// The contents of one of its files.
    pub fn file(&self, name: &str) -> Option<&'static str> {
        self.files.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{LoadOptions, Policy};

    #[test]
    fn every_scenario_ships_two_policies_that_load_and_its_tweaks() {
        for s in SCENARIOS {
            let dir = tempfile::tempdir().unwrap();
            for (name, contents) in s.files {
                std::fs::write(dir.path().join(name), contents).unwrap();
            }
            for host in ["alice", "bob"] {
                let path = dir.path().join(format!("{host}.toml"));
                let me = [if host == "alice" {
                    "192.0.2.1"
                } else {
                    "192.0.2.2"
                }
                .parse()
                .unwrap()];
                let opts = LoadOptions {
                    me: Some(&me),
                    ..LoadOptions::default()
                };
                let policy = Policy::load_with(&path.to_string_lossy(), opts);
                assert!(policy.is_ok(), "{} {host}: {:?}", s.name, policy.err());
            }
            for t in s.tweaks {
                assert!(
                    s.file(t.file).is_some(),
                    "{}: tweak {} not shipped",
                    s.name,
                    t.file
                );
            }
            assert!(s.file("README.md").is_some(), "{} has no README.md", s.name);
        }
    }

    #[test]
    fn the_listing_says_what_ipsecmon_reports() {
        let text = listing();
        let lines: Vec<&str> = text.lines().collect();
        let outside = SCENARIOS.iter().filter(|s| s.outside.is_some()).count();
        assert_eq!(lines.len(), 2 * SCENARIOS.len() + outside);
        assert!(lines[0].starts_with("ok                   the seed's example: "));
        assert_eq!(
            lines[1],
            "                     ipsecmon says: established, with or without the key tables"
        );
        let ts = lines
            .iter()
            .position(|l| l.starts_with("ts-mismatch "))
            .unwrap();
        assert_eq!(
            lines[ts + 1],
            "                     ipsecmon says: ts-unacceptable with the key tables; \
             negotiation-stalled (inferred, 60 %) without"
        );
        let nat = lines
            .iter()
            .position(|l| l.starts_with("nat-4500-blocked "))
            .unwrap();
        assert_eq!(
            lines[nat + 2],
            "                     outside the NAT: peer-unreachable (inferred, 60 %)"
        );
    }

    #[test]
    fn names_are_unique_and_found() {
        assert_eq!(find("nat-t").map(|s| s.nat), Some(true));
        assert_eq!(find("ikev1").map(|s| s.ike), Some(IkeVersion::V1));
        assert_eq!(find("nope"), None);
        let mut names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SCENARIOS.len());
        assert_eq!(names.len(), 16);
    }
}
