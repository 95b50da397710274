//! The shipped Grafana dashboards and Prometheus rules: valid, importable as they are, and
//! referring only to metrics that ipsecmon exposes.

use std::path::{Path, PathBuf};
use std::process::Command;

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

fn dashboards() -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dashboards_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let json =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((path.display().to_string(), json));
        }
    }
    assert!(out.len() >= 2, "an overview and a per-tunnel dashboard");
    out
}

/// Every PromQL expression of every panel target.
fn expressions(dash: &serde_json::Value) -> Vec<String> {
    dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn dashboards_use_a_datasource_variable() {
    for (name, d) in dashboards() {
        let vars = d["templating"]["list"].as_array().unwrap();
        assert!(
            vars.iter()
                .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
            "{name}: no datasource variable"
        );
        for p in d["panels"].as_array().unwrap() {
            assert_eq!(
                p["datasource"]["uid"], "${datasource}",
                "{name}: panel {}",
                p["title"]
            );
        }
        assert!(!d["uid"].as_str().unwrap().is_empty());
    }
}

#[test]
fn dashboards_only_name_exposed_metrics() {
    let exposed = exposed_metric_names();
    for (name, d) in dashboards() {
        for expr in expressions(&d) {
            for metric in metric_names(&expr) {
                assert!(
                    exposed.contains(&metric),
                    "{name}: `{metric}` in `{expr}` is not exposed"
                );
            }
        }
    }
}

#[test]
fn the_overview_shows_the_decryption_counters_the_exposition_carries() {
    let mut metrics = ipsecmon::export::Metrics::new(ipsecmon::export::MetricsConfig::default());
    metrics.update(&one_tunnel());
    let text = metrics.render();
    let overview = dashboards()
        .into_iter()
        .find(|(_, d)| d["uid"] == "ipsecmon-overview")
        .expect("the overview dashboard")
        .1;
    let exprs = expressions(&overview);
    for event in ["packets_not_decrypted", "packets_not_authenticated"] {
        let series = format!("ipsecmon_ipsec_events_total{{event=\"{event}\"}} 0");
        assert!(text.lines().any(|l| l == series), "{series} not exposed");
        let panels = exprs.iter().filter(|e| e.contains(event)).count();
        assert_eq!(panels, 2, "{event}: a rate panel and a since-start panel");
    }
}

/// Metric names a rendered exposition carries (including histogram series suffixes).
fn exposed_metric_names() -> Vec<String> {
    let mut metrics = ipsecmon::export::Metrics::new(ipsecmon::export::MetricsConfig::default());
    metrics.update(&one_tunnel());
    let text = metrics.render();
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .flat_map(|n| ["", "_bucket", "_sum", "_count"].map(|suffix| format!("{n}{suffix}")))
        .collect();
    names.sort();
    names
}

/// A snapshot with one established tunnel, its ESP SA and a finding, so that every
/// per-tunnel and per-finding series exists.
fn one_tunnel() -> ipsecmon::snapshot::Snapshot {
    let sa = serde_json::json!({
        "version": 2, "spi_i": "0123456789abcdef", "spi_r": "fedcba9876543210",
        "initiator": "192.0.2.1:500", "responder": "192.0.2.2:500", "state": "established",
        "first_frame": 1, "started": 1.0, "established_after_s": 0.05, "retransmissions": 0,
        "failure": null, "nat": {"verdict": "none", "evidence": []}, "child_sas": [],
        "exchanges": [], "rekeyed_from": null, "last_frame": 4, "last_seen": 1.05
    });
    let esp = serde_json::json!({
        "spi": "c0000001", "src": "192.0.2.1", "dst": "192.0.2.2", "encap": "none",
        "packets": 5, "bytes": 500, "first_seen": 1.1, "last_seen": 2.0, "lost": 0,
        "replayed": 0, "reordered": 0, "ike_sa": "0123456789abcdef", "ike_sa_link": "inferred",
        "peer_spi": null
    });
    let finding = serde_json::json!({
        "code": "esp-one-way", "severity": "error", "ike_sa": "0123456789abcdef",
        "summary": "s", "evidence": [], "remedy": "r", "confidence": 0.9
    });
    let report = serde_json::json!({
        "schema": 1, "ike_sas": [sa], "esp_sas": [esp], "ah_sas": [],
        "stats": ipsecmon::track::report::Stats::default(), "frames": 10, "decode_errors": 0,
        "evictions": {"ike_sas": 0, "esp_sas": 0, "fragments": 0}, "last_ts": 2.0
    });
    serde_json::from_value(serde_json::json!({
        "schema": 1, "source": "test", "report": report, "findings": [finding],
        "capture": {"received": 10, "dropped": 0, "if_dropped": 0}, "decode_errors": []
    }))
    .unwrap()
}

/// Identifiers in a PromQL expression that look like ipsecmon metric names.
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("ipsecmon_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn alert_rules_only_name_exposed_metrics() {
    let exposed = exposed_metric_names();
    let rules = std::fs::read_to_string(dashboards_dir().join("ipsecmon-alerts.yml")).unwrap();
    for line in rules.lines().filter(|l| !l.trim_start().starts_with('#')) {
        for metric in metric_names(line) {
            assert!(
                exposed.contains(&metric),
                "`{metric}` in alert rules is not exposed"
            );
        }
    }
}

#[test]
fn promtool_checks_and_tests_the_rules() {
    if Command::new("promtool").arg("--version").output().is_err() {
        println!("skipped: promtool not installed (Debian package prometheus)");
        return;
    }
    let dir = dashboards_dir();
    for args in [
        ["check", "rules", "ipsecmon-alerts.yml"],
        ["test", "rules", "ipsecmon-alerts.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_alert_has_a_promtool_test() {
    let rules = std::fs::read_to_string(dashboards_dir().join("ipsecmon-alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(dashboards_dir().join("ipsecmon-alerts.test.yml")).unwrap();
    for alert in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests.contains(&format!("alertname: {alert}")),
            "no promtool test for {alert}"
        );
    }
}

/// The runbook of every alert, by alert name.
fn runbooks() -> Vec<(String, String)> {
    let rules = std::fs::read_to_string(dashboards_dir().join("ipsecmon-alerts.yml")).unwrap();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut in_runbook = false;
    for line in rules.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("- alert: ") {
            out.push((name.to_string(), String::new()));
            in_runbook = false;
        } else if t.starts_with("runbook:") {
            in_runbook = true;
        } else if in_runbook && !t.is_empty() && !t.ends_with(':') {
            if let Some((_, text)) = out.last_mut() {
                text.push_str(t);
                text.push(' ');
            }
        } else {
            in_runbook = false;
        }
    }
    out
}

/// Words built like diagnosis codes (`no-proposal-chosen`), in order.
fn code_like(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_lowercase() || c == '-'))
        .filter(|w| w.len() > 3 && w.contains('-') && !w.starts_with('-') && !w.ends_with('-'))
        .map(str::to_string)
        .collect()
}

#[test]
fn runbooks_speak_in_diagnosis_codes() {
    // Hyphenated words of plain English that the runbooks use.
    const PROSE: [&str; 3] = ["half-way", "one-way", "on-demand"];
    let books = runbooks();
    assert!(books.len() >= 8, "{books:?}");
    for (alert, text) in &books {
        assert!(!text.is_empty(), "{alert} has no runbook");
        for word in code_like(text) {
            if PROSE.contains(&word.as_str()) {
                continue;
            }
            let code: Result<ipsecmon::diagnose::Code, _> =
                serde_json::from_value(serde_json::Value::String(word.clone()));
            assert!(code.is_ok(), "{alert}: `{word}` is not a diagnosis code");
        }
    }
    // Every code the failure counters carry is explained where those counters alert.
    let metrics = ipsecmon::export::Metrics::new(ipsecmon::export::MetricsConfig::default());
    let text = metrics.render();
    let failures = &books
        .iter()
        .find(|(a, _)| a == "IpsecNegotiationFailures")
        .expect("a failure-rate alert")
        .1;
    let codes: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ipsecmon_negotiation_failures_total{code=\""))
        .filter_map(|l| l.split('"').nth(1))
        .collect();
    assert!(codes.len() >= 8, "{codes:?}");
    for code in codes {
        assert!(
            code_like(failures).iter().any(|w| w == code),
            "the failure-rate runbook does not explain {code}"
        );
    }
    for (alert, want) in [
        ("IpsecTunnelDown", "auth-failed"),
        ("IpsecNegotiationStalled", "peer-unreachable"),
        ("IpsecNatAppeared", "nat-breaks-ipsec"),
        ("IpsecEspLoss", "esp-one-way"),
        ("IpsecBadSpi", "invalid-spi"),
    ] {
        let text = &books.iter().find(|(a, _)| a == alert).unwrap().1;
        assert!(code_like(text).iter().any(|w| w == want), "{alert}: {text}");
    }
}
