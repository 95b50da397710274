//! Decodes every third-party capture of the shared corpus with `ipsecmon decode --json`
//! (the real binary: capture reader, frame decoder, IKE parser, JSON renderer) and compares
//! it frame by frame with the tshark 4.0.17 field dump beside it
//! (`tshark-ground-truth/<same path>.tsv`, described in the corpus's SOURCES.md).
//!
//! Compared per frame: IKE version, SPIs, exchange type, message ID, the payload types of
//! the cleartext chain, notify types, IKEv1 NAT-D hashes, the number of vendor IDs (and that
//! every ID tshark names has a name here too); ESP
//! SPI and sequence number; AH SPI and sequence number; NAT-T keepalives. tshark's
//! `isakmp.typepayload` also lists proposals (2) and transforms (3) inside SA payloads,
//! which are not payloads of the chain, so those are dropped from tshark's list first.
//!
//! The `wireshark/` captures were dumped with their keys, so tshark's payload and notify
//! lists continue into decrypted SK (IKEv2) and E-flag (IKEv1) contents. Without keys we
//! decode only the cleartext: for IKEv2 the comparison stops at the SK / SKF payload
//! (tshark lists the decrypted payloads right after it), and for IKEv1 messages with the
//! E flag only the header is compared.
//!
//! Where tshark is wrong, the test holds the right answer and says why ([`corrections`]).
//! The fuzzing regressions of tcpdump (and two malformed traces of spicy-ipsec) are only
//! required to decode without a panic and to write well-formed lines: their frames are
//! damaged on purpose and tshark's partial readings of them are no reference.
//!
//! Skips with a printed line when the corpus (`../shared/corpus/external`) is absent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

#[path = "common/corpus.rs"]
mod corpus;

/// Captures whose frames were damaged on purpose (decoder crash regressions): decoded
/// without a panic, not compared.
const REGRESSIONS: &[&str] = &[
    "tcpdump/tests/esp_truncated.pcap",
    "tcpdump/tests/ikev1_id_ipv6_addr_subnet-oobr.pcap",
    "tcpdump/tests/ikev2-id-short.pcap",
    "tcpdump/tests/ikev2pI2-segfault.pcapng",
    "tcpdump/tests/ipcomp-heapoverflow.pcap",
    "tcpdump/tests/isakmp-3948-oobr-2.pcap",
    "tcpdump/tests/isakmp-delete-segfault.pcap",
    "tcpdump/tests/isakmp-identification-segfault.pcap",
    "tcpdump/tests/isakmp-ikev1_n_print-oobr.pcap",
    "tcpdump/tests/isakmp-pointer-loop.pcap",
    "tcpdump/tests/isakmp-rfc3948-oobr.pcap",
    "tcpdump/tests/isakmp-various-oobr.pcap",
    "tcpdump/tests/isakmpv1-attr-oobr.pcap",
    "zeek-spicy-ipsec/tests/traces/ipsec-ikev1-payload-bad-length.pcap",
    "zeek-spicy-ipsec/tests/traces/ipsec-ikev1-zero-length.pcap",
];

/// A frame where tshark's reading is wrong: the values we expect instead, and why.
struct Correction {
    capture: &'static str,
    frame: u64,
    /// The payload types of the chain, in wire order.
    payloads: &'static [u64],
    why: &'static str,
}

/// The frames where tshark 4.0.17 is wrong.
fn corrections() -> Vec<Correction> {
    let draft_natd = "MM1 offers only NAT-T drafts 07/03/02 and MM2 answers with the \
        draft-07 vendor ID, and drafts 04-08 number NAT-D 15 (RFC 3947 moved it to 20 when \
        GDOI took 15). tshark reads 15 as GDOI's SAK, calls the frame malformed and stops \
        after the first of the two NAT-D payloads; both hashes match the peers' addresses \
        under SHA1 (SOURCES.md, NAT-D ground truth).";
    vec![
        Correction {
            capture: "tcpdump/tests/ISAKMP_sa_setup.pcap",
            frame: 3,
            payloads: &[4, 10, 13, 13, 13, 13, 15, 15],
            why: draft_natd,
        },
        Correction {
            capture: "tcpdump/tests/ISAKMP_sa_setup.pcap",
            frame: 4,
            payloads: &[4, 10, 13, 13, 13, 13, 15, 15],
            why: draft_natd,
        },
    ]
}

/// One row of a tshark dump, by column name.
type Row = BTreeMap<String, String>;

fn read_dump(path: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .map(|l| {
            let cells = l.split('\t').map(str::to_string);
            header.iter().map(|h| h.to_string()).zip(cells).collect()
        })
        .collect()
}

/// `ipsecmon decode --json FILE`: the lines by frame number. Panics if the binary fails.
fn decode(capture: &Path) -> BTreeMap<u64, Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_ipsecmon"))
        .args(["decode", "--json"])
        .arg(capture)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: exit {:?}, stderr {}",
        capture.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut frames = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["schema"], 1, "{line}");
        let n = v["frame"].as_u64().expect("frame number");
        assert!(v["ts"].is_f64(), "{line}");
        assert!(
            v.get("kind").is_some() || v.get("error").is_some(),
            "{line}"
        );
        frames.insert(n, v);
    }
    frames
}

/// The cells of a tshark column split on its aggregator, empty for an empty cell.
fn cells<'a>(row: &'a Row, col: &str) -> Vec<&'a str> {
    row.get(col)
        .map(|c| c.split(',').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}

fn hex_u64(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// Compares one capture; returns the mismatches as text.
fn compare(name: &str, capture: &Path, dump: &Path) -> Vec<String> {
    let ours = decode(capture);
    let fixes = corrections();
    let mut errors = Vec::new();
    for row in read_dump(dump) {
        let n: u64 = row["frame.number"].parse().unwrap();
        let fix = fixes.iter().find(|c| c.capture == name && c.frame == n);
        let line = ours.get(&n);
        let mut err = |what: String| errors.push(format!("{name} frame {n}: {what}"));
        if let Err(e) = compare_frame(&row, line, fix) {
            err(e);
        }
    }
    errors
}

/// Compares one frame with its tshark row.
fn compare_frame(row: &Row, ours: Option<&Value>, fix: Option<&Correction>) -> Result<(), String> {
    let ours = ours.map(|v| if v["kind"] == "icmp" { &v["quoted"] } else { v });
    let ispi = cells(row, "isakmp.ispi");
    let esp = cells(row, "esp.spi");
    let ah = cells(row, "ah.spi");
    if !ispi.is_empty() {
        let v = ours.ok_or("tshark decodes IKE, we wrote no line")?;
        return compare_ike(row, v, fix);
    }
    if !ah.is_empty() {
        let v = ours.ok_or("tshark decodes AH, we wrote no line")?;
        return compare_ipsec(v, "ah", ah[0], cells(row, "ah.sequence")[0]);
    }
    if !esp.is_empty() {
        let v = ours.ok_or("tshark decodes ESP, we wrote no line")?;
        return compare_ipsec(v, "esp", esp[0], cells(row, "esp.sequence")[0]);
    }
    let keepalive = row["frame.protocols"].ends_with("udpencap");
    match (ours, keepalive) {
        (Some(v), true) if v["kind"] == "keepalive" => Ok(()),
        (None, false) => Ok(()),
        (v, _) => Err(format!(
            "tshark: {} (keepalive {keepalive}); ours: {v:?}",
            row["frame.protocols"]
        )),
    }
}

/// ESP or AH: kind, SPI (8 hex digits) and sequence number.
fn compare_ipsec(v: &Value, kind: &str, spi: &str, seq: &str) -> Result<(), String> {
    let want_spi = format!("{:08x}", hex_u64(spi));
    let want_seq: u64 = seq.parse().unwrap();
    if v["kind"] != kind || v["spi"] != want_spi.as_str() || v["seq"] != want_seq {
        return Err(format!(
            "want {kind} spi {want_spi} seq {want_seq}, got {v}"
        ));
    }
    Ok(())
}

/// IKE: header fields, cleartext payload types, notify types, NAT-D hashes, VID count.
fn compare_ike(row: &Row, v: &Value, fix: Option<&Correction>) -> Result<(), String> {
    if v["kind"] != "ike" {
        return Err(format!("want ike, got {v}"));
    }
    let major = hex_u64(&row["isakmp.version"]) >> 4;
    let header = [
        ("version", Value::from(major)),
        ("spi_i", row["isakmp.ispi"].as_str().into()),
        ("spi_r", row["isakmp.rspi"].as_str().into()),
        (
            "exchange_type",
            row["isakmp.exchangetype"].parse::<u64>().unwrap().into(),
        ),
        ("message_id", hex_u64(&row["isakmp.messageid"]).into()),
    ];
    for (key, want) in header {
        if v[key] != want {
            return Err(format!("{key}: want {want}, got {}", v[key]));
        }
    }
    let encrypted_v1 = major == 1 && hex_u64(&row["isakmp.flags"]) & 1 != 0;
    let flagged = v["flags"]
        .as_array()
        .is_some_and(|f| f.contains(&"encrypted".into()));
    if encrypted_v1 != flagged {
        return Err(format!(
            "encrypted flag: tshark {encrypted_v1}, ours {flagged}"
        ));
    }
    if encrypted_v1 {
        // Only the header travels in the clear; tshark's payloads come from decryption.
        return Ok(());
    }
    compare_payloads(row, v, fix)
}

/// The payload chain, notifies, NAT-D hashes and vendor IDs in the clear.
fn compare_payloads(row: &Row, v: &Value, fix: Option<&Correction>) -> Result<(), String> {
    let payloads = v["payloads"].as_array().ok_or("no payload list")?;
    let ours: Vec<u64> = payloads
        .iter()
        .map(|p| p["type"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = match fix {
        Some(c) => {
            println!("correction: frame {}: {}", c.frame, c.why);
            c.payloads.to_vec()
        }
        None => cleartext_chain(&cells(row, "isakmp.typepayload")),
    };
    if ours != want {
        return Err(format!("payload types: tshark {want:?}, ours {ours:?}"));
    }
    let sk = ours.iter().any(|t| matches!(t, 46 | 53));
    let notifies: Vec<u64> = payloads
        .iter()
        .filter_map(|p| p["notify_type"].as_u64())
        .collect();
    let theirs: Vec<u64> = cells(row, "isakmp.notify.msgtype")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let cleartext_notifies = if sk {
        &theirs[..notifies.len().min(theirs.len())]
    } else {
        &theirs[..]
    };
    if notifies != cleartext_notifies {
        return Err(format!(
            "notify types: tshark {theirs:?}, ours {notifies:?}"
        ));
    }
    let hashes: Vec<&str> = payloads
        .iter()
        .filter(|p| p.get("hash").is_some() && p.get("notify_type").is_none())
        .filter_map(|p| p["hash"].as_str())
        .collect();
    let want_hashes = cells(row, "isakmp.ike.nat_hash");
    if fix.is_none() && hashes != want_hashes {
        return Err(format!(
            "NAT-D hashes: tshark {want_hashes:?}, ours {hashes:?}"
        ));
    }
    let vids = payloads
        .iter()
        .filter(|p| p.get("vendor").is_some())
        .count();
    let want_vids = vid_count(row);
    if !sk && vids != want_vids {
        return Err(format!("vendor IDs: tshark {want_vids}, ours {vids}"));
    }
    let named = payloads.iter().filter(|p| p["vendor"].is_string()).count();
    let tshark_named = cells(row, "isakmp.vid_string")
        .iter()
        .filter(|s| **s != "Unknown Vendor ID")
        .count();
    if !sk && named < tshark_named {
        return Err(format!(
            "named vendor IDs: tshark {tshark_named}, ours {named}"
        ));
    }
    Ok(())
}

/// tshark's payload list without proposals and transforms, cut after the first SK or SKF
/// (what follows was decrypted with the keys).
fn cleartext_chain(types: &[&str]) -> Vec<u64> {
    let mut out = Vec::new();
    for t in types.iter().map(|s| s.parse::<u64>().unwrap()) {
        if matches!(t, 2 | 3) {
            continue;
        }
        out.push(t);
        if matches!(t, 46 | 53) {
            break;
        }
    }
    out
}

/// Vendor ID payloads in tshark's row: the VID (13) / V (43) entries of the chain.
fn vid_count(row: &Row) -> usize {
    let major = hex_u64(&row["isakmp.version"]) >> 4;
    let vid = if major == 1 { 13 } else { 43 };
    cleartext_chain(&cells(row, "isakmp.typepayload"))
        .iter()
        .filter(|&&t| t == vid)
        .count()
}

/// Every capture: a file under the corpus with a dump in `tshark-ground-truth/`.
fn captures(root: &Path) -> Vec<(String, PathBuf, PathBuf)> {
    corpus::dumps(root)
        .into_iter()
        .map(|(rel, dump)| (rel.to_string_lossy().into_owned(), root.join(&rel), dump))
        .collect()
}

#[test]
fn corpus_matches_tshark_frame_by_frame() {
    let Some(root) = corpus::corpus_or_skip() else {
        return;
    };
    let all = captures(&root);
    assert_eq!(all.len(), 51, "the corpus lists 51 captures");
    let mut errors = Vec::new();
    let mut compared = 0;
    for (name, capture, dump) in &all {
        if REGRESSIONS.contains(&name.as_str()) {
            decode(capture);
            continue;
        }
        errors.extend(compare(name, capture, dump));
        compared += 1;
    }
    println!(
        "compared {compared} captures with tshark, decoded {} regressions",
        all.len() - compared
    );
    assert!(
        errors.is_empty(),
        "{} mismatches:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

#[test]
fn regression_captures_decode_without_panic() {
    let Some(root) = corpus::corpus_or_skip() else {
        return;
    };
    for name in REGRESSIONS {
        let lines = decode(&root.join(name));
        for v in lines.values() {
            let kind = v["kind"].as_str();
            assert!(
                kind.is_some() || v["error"]["reason"].is_string(),
                "{name}: {v}"
            );
        }
    }
}

#[test]
fn draft_natd_is_named_as_nat_d_in_isakmp_sa_setup() {
    let Some(root) = corpus::corpus_or_skip() else {
        return;
    };
    let lines = decode(&root.join("tcpdump/tests/ISAKMP_sa_setup.pcap"));
    let payloads = lines[&3]["payloads"].as_array().unwrap();
    let natd: Vec<&Value> = payloads.iter().filter(|p| p["type"] == 15).collect();
    assert_eq!(natd.len(), 2);
    assert_eq!(natd[0]["name"], "NAT-D (draft)");
    assert_eq!(natd[0]["hash"].as_str().unwrap().len(), 40);
}

#[test]
fn unreadable_input_exits_2_and_names_the_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_ipsecmon"))
        .args(["decode", "--json", "/nonexistent/capture.pcap"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/capture.pcap"), "{stderr}");
}

/// A tshark row with the given IKE cells.
fn ike_row(typepayload: &str, notifies: &str) -> Row {
    [
        ("frame.number", "1"),
        ("frame.protocols", "eth:ethertype:ip:udp:isakmp"),
        ("isakmp.version", "0x20"),
        ("isakmp.ispi", "0102030405060708"),
        ("isakmp.rspi", "0000000000000000"),
        ("isakmp.exchangetype", "35"),
        ("isakmp.flags", "0x08"),
        ("isakmp.messageid", "0x00000001"),
        ("isakmp.typepayload", typepayload),
        ("isakmp.notify.msgtype", notifies),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn the_comparison_catches_differences_and_ignores_decrypted_parts() {
    let ours = serde_json::json!({
        "kind": "ike", "version": 2, "spi_i": "0102030405060708",
        "spi_r": "0000000000000000", "exchange_type": 35, "message_id": 1,
        "flags": ["initiator"],
        "payloads": [{"type": 41, "notify_type": 16384}, {"type": 46}],
    });
    // tshark decrypted the SK payload: its inner IDi, N and AUTH are not compared.
    let row = ike_row("41,46,35,41,39", "16384,16404");
    assert_eq!(compare_frame(&row, Some(&ours), None), Ok(()));
    let other_spi = Row::from_iter(row.clone().into_iter().map(|(k, v)| {
        let v = if k == "isakmp.ispi" {
            "ffffffffffffffff".to_string()
        } else {
            v
        };
        (k, v)
    }));
    assert!(compare_frame(&other_spi, Some(&ours), None).is_err());
    assert!(compare_frame(&ike_row("41,40,46", "16384"), Some(&ours), None).is_err());
    assert!(compare_frame(&ike_row("41,46", "16390"), Some(&ours), None).is_err());
    assert!(compare_frame(&row, None, None).is_err());
    assert_eq!(
        cleartext_chain(&["33", "2", "3", "3", "34", "53", "35"]),
        vec![33, 34, 53]
    );
}

#[test]
fn text_summary_reads_like_an_info_column() {
    let Some(root) = corpus::corpus_or_skip() else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_ipsecmon"))
        .arg("decode")
        .arg(root.join("tcpdump/tests/ikev2four.pcap"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[1],
        "    2    0.003731  192.168.1.1:500 -> 192.168.1.2:500  IKEv2 IKE_SA_INIT response \
         msgid 0  N(COOKIE)"
    );
    assert!(
        lines[6].ends_with("IKEv2 CREATE_CHILD_SA request msgid 2  SK(SA...)"),
        "{}",
        lines[6]
    );
}
