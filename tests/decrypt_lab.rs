//! The lab's real strongSwan captures (`fixtures/lab/<scenario>/`) with the session keys
//! beside them (`keys/`, Wireshark's formats, read from both charons' logs): every IKE
//! message decrypts, every ESP SPI is tied to its IKE SA exactly (from the decrypted SA
//! payloads, not by endpoints and timing), and the failure notify inside an encrypted
//! IKE_AUTH response is exposed, turning an inferred diagnosis into an exact one.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn lab() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/lab");
    dir.is_dir().then_some(dir)
}

fn ipsecmon(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_ipsecmon"))
        .args(args)
        .output()
        .expect("run ipsecmon");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn report(capture: &Path, keys: Option<&Path>) -> Value {
    let mut args = vec!["report", "--json"];
    if let Some(k) = keys {
        args.extend(["--keys", k.to_str().unwrap()]);
    }
    args.push(capture.to_str().unwrap());
    serde_json::from_slice(&ipsecmon(&args)).unwrap()
}

/// Every scenario with keys: (scenario directory, its captures).
fn scenarios(lab: &Path) -> Vec<(PathBuf, Vec<PathBuf>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(lab).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("keys").is_dir() {
            continue;
        }
        let mut pcaps: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
            .collect();
        pcaps.sort();
        out.push((dir, pcaps));
    }
    out.sort();
    out
}

#[test]
fn every_lab_capture_decrypts_and_ties_every_esp_spi_to_its_ike_sa_exactly() {
    let Some(lab) = lab() else {
        println!("skipped: fixtures/lab is absent");
        return;
    };
    let all = scenarios(&lab);
    assert!(all.len() >= 10, "{} scenarios with keys", all.len());
    let mut esp_sas = 0;
    for (dir, pcaps) in all {
        for pcap in pcaps {
            let name = pcap.display().to_string();
            let r = report(&pcap, Some(&dir.join("keys")));
            for sa in r["ike_sas"].as_array().unwrap() {
                let d = &sa["decryption"];
                // Refused in IKE_SA_INIT (dh-mismatch): nothing was ever encrypted.
                let exchanges = sa["exchanges"].as_array().unwrap();
                if exchanges.iter().all(|x| x["exchange"] == "IKE_SA_INIT") {
                    assert!(d.is_null(), "{name}: {d}");
                    continue;
                }
                assert_eq!(d["status"], "decrypted", "{name}: {d}");
                assert!(d["decrypted"].as_u64().unwrap() >= 1, "{name}: {d}");
                for c in sa["child_sas"].as_array().unwrap() {
                    assert_eq!(c["source"], "decrypted", "{name}: {c}");
                }
            }
            for e in r["esp_sas"].as_array().unwrap() {
                assert!(
                    e["ike_sa"].is_string(),
                    "{name}: ESP {} has no IKE SA",
                    e["spi"]
                );
                assert_eq!(e["ike_sa_link"], "decrypted", "{name}: ESP {}", e["spi"]);
                assert_eq!(
                    e["decryption"]["status"], "decrypted",
                    "{name}: {}",
                    e["spi"]
                );
                assert_eq!(e["decryption"]["decrypted"], e["packets"], "{name}");
                esp_sas += 1;
            }
            assert_eq!(r["stats"]["packets_not_decrypted"], 0, "{name}");
            assert_eq!(r["stats"]["packets_not_authenticated"], 0, "{name}");
        }
    }
    assert!(esp_sas >= 20, "only {esp_sas} ESP SAs in the lab captures");
}

#[test]
fn the_authentication_failed_inside_a_failed_ike_auth_is_exposed() {
    let Some(lab) = lab() else {
        println!("skipped: fixtures/lab is absent");
        return;
    };
    let dir = lab.join("psk-mismatch");
    let (pcap, keys) = (dir.join("link.pcap"), dir.join("keys"));
    let without = report(&pcap, None);
    let inferred = &without["ike_sas"][0]["failure"];
    assert_eq!(inferred["code"], "auth-failed");
    assert_eq!(inferred["notify_type"], Value::Null);
    assert!(inferred["confidence"].as_f64().unwrap() < 1.0, "{inferred}");
    let with = report(&pcap, Some(&keys));
    let exact = &with["ike_sas"][0]["failure"];
    assert_eq!(exact["code"], "auth-failed");
    assert_eq!(exact["notify_type"], 24);
    assert_eq!(exact["confidence"], 1.0);

    let args = [
        "decode",
        "--json",
        "--keys",
        keys.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ];
    let text = String::from_utf8(ipsecmon(&args)).unwrap();
    let response = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["exchange"] == "IKE_AUTH" && v["flags"][0] == "response")
        .expect("an IKE_AUTH response");
    let sk = &response["payloads"][0];
    assert_eq!(
        (sk["name"].clone(), sk["integrity"].clone()),
        ("SK".into(), "verified".into())
    );
    let inner = &sk["payloads"][0];
    assert_eq!(inner["notify_type_name"], "AUTHENTICATION_FAILED");
    assert_eq!(inner["decrypted"], true);
}

#[test]
fn decrypted_lab_sessions_name_identities_and_selectors() {
    let Some(lab) = lab() else {
        println!("skipped: fixtures/lab is absent");
        return;
    };
    let dir = lab.join("ikev1");
    let r = report(&dir.join("link.pcap"), Some(&dir.join("keys")));
    let sa = &r["ike_sas"][0];
    assert!(sa["id_i"].is_string() && sa["id_r"].is_string(), "{sa}");
    let children = sa["child_sas"].as_array().unwrap();
    assert_eq!(
        children.len(),
        3,
        "Quick Mode, a second Quick Mode and a rekey"
    );
    for c in children {
        let (ts_i, ts_r) = (c["ts_i"].as_array().unwrap(), c["ts_r"].as_array().unwrap());
        assert_eq!((ts_i.len(), ts_r.len()), (1, 1), "{c}");
    }
}
