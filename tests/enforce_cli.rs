//! `ipsecmon enforce` on the command line, without root: rendering the shipped examples,
//! refusing what cannot be rendered (exit 2, naming the file), and refusing to apply when no
//! charon listens (exit 1, one line naming the packages).

use std::path::Path;
use std::process::{Command, Output};

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

fn ipsecmon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ipsecmon"))
        .args(args)
        .output()
        .expect("run ipsecmon")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn render_writes_the_golden_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let policy = example("bob.toml");
    let args = ["enforce", "render", "--policy", &policy, "--out", &out];
    let o = ipsecmon(&[&args[..], &["--data-plane", "kernel"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/enforce/bob");
    for f in ["swanctl.conf", "ipsecmon.nft", "strongswan.conf"] {
        let got = std::fs::read_to_string(dir.path().join(f)).unwrap();
        let want = std::fs::read_to_string(golden.join(f)).unwrap();
        assert_eq!(got, want, "{f}");
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
}

#[test]
fn kerberos_only_rules_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example("bob.toml"))
        .unwrap()
        .replace(
            r#"[{ method = "preshared-key", key_file = "alice-bob.psk" }]"#,
            r#"[{ method = "kerberos" }]"#,
        );
    let policy = dir.path().join("kerberos.toml");
    std::fs::write(&policy, text).unwrap();
    let policy = policy.display().to_string();
    let out = dir.path().join("out").display().to_string();
    let o = ipsecmon(&["enforce", "render", "--policy", &policy, "--out", &out]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "ipsecmon: {policy}: rule \"Abczz with Alice\" authenticates with Kerberos only"
        )),
        "{err}"
    );
    assert!(!dir.path().join("out").exists(), "nothing is written");
}

#[test]
fn bad_options_exit_2() {
    let policy = example("alice.toml");
    let o = ipsecmon(&[
        "enforce",
        "render",
        "--policy",
        &policy,
        "--out",
        "/nonexistent/x",
        "--aggressive",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--aggressive needs --ike-version 1"),
        "{}",
        stderr(&o)
    );
    let o = ipsecmon(&[
        "enforce",
        "render",
        "--policy",
        "/nonexistent.toml",
        "--out",
        "/tmp/x",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent.toml"), "{}", stderr(&o));
}

#[test]
fn apply_without_charon_says_what_to_install_or_start() {
    let dir = tempfile::tempdir().unwrap();
    let vici = format!("unix://{}/none.vici", dir.path().display());
    let applied = dir.path().join("applied").display().to_string();
    let policy = example("alice.toml");
    let o = ipsecmon(&[
        "enforce", "apply", "--policy", &policy, "--vici", &vici, "--dir", &applied,
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    // One line says what is wrong; notes about the rendering may precede it.
    let errors: Vec<&str> = err.lines().filter(|l| !l.contains(": note: ")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(err.contains(&vici), "{err}");
    assert!(err.contains("strongswan-charon"), "{err}");
    assert!(
        !dir.path().join("applied").exists(),
        "nothing is written before the checks"
    );
}
