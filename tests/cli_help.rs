//! The command line as the binary describes it (`--help` of every command and
//! subcommand) against the README's command table: the same commands, the same
//! subcommands, and every one of them with a description.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ipsecmon");

/// `ipsecmon ARGS --help`, which must succeed.
fn help(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "{args:?} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The `Commands:` section of a help text: (name, description), without `help`.
fn commands(help: &str) -> Vec<(String, String)> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| {
            let (name, about) = l.trim().split_once(' ')?;
            Some((name.to_string(), about.trim().to_string()))
        })
        .filter(|(name, _)| name != "help")
        .collect()
}

/// The first cell of each row of the README's command table, without its backquotes.
fn readme_commands() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    readme
        .lines()
        .skip_while(|l| *l != "## Commands")
        .skip_while(|l| !l.starts_with("| command"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cell = l.trim_start_matches("| `");
            cell[..cell.find('`').unwrap()].replace("\\|", "|")
        })
        .collect()
}

/// The README row of `ipsecmon NAME`: its words after `ipsecmon`.
fn row_of(rows: &[String], name: &str) -> Vec<String> {
    let prefix = format!("ipsecmon {name}");
    let row = rows
        .iter()
        .find(|r| *r == &prefix || r.starts_with(&format!("{prefix} ")))
        .unwrap_or_else(|| panic!("no README row for `{prefix}`: {rows:?}"));
    row.split(' ').skip(1).map(str::to_string).collect()
}

#[test]
fn readme_lists_every_command_and_subcommand_the_binary_has() {
    let rows = readme_commands();
    let top = commands(&help(&[]));
    assert_eq!(top.len(), 8, "{top:?}");
    assert_eq!(
        rows.len(),
        top.len() + 1,
        "the view and each command: {rows:?}"
    );
    assert!(rows[0].starts_with("ipsecmon [--refresh"), "{rows:?}");
    for (name, about) in &top {
        assert!(!about.is_empty(), "{name} has no description");
        let words = row_of(&rows, name);
        let subs = commands(&help(&[name]));
        if subs.is_empty() {
            continue;
        }
        // `ipsecmon lab up|status|...`: the same subcommands, in the same order.
        let listed: Vec<&str> = words[1].split('|').collect();
        let have: Vec<&str> = subs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(listed, have, "README row of {name}");
        for (sub, about) in &subs {
            assert!(!about.is_empty(), "{name} {sub} has no description");
            assert!(
                help(&[name, sub]).contains("Usage: ipsecmon "),
                "{name} {sub}"
            );
        }
    }
}

#[test]
fn every_engine_command_documents_the_shared_options() {
    for cmd in [&[][..], &["report"], &["diagnose"], &["serve"]] {
        let text = help(cmd);
        for flag in [
            "--keys",
            "--policy",
            "--local",
            "--stall-after",
            "--max-ike-sas",
        ] {
            assert!(text.contains(flag), "{cmd:?} --help lacks {flag}");
        }
    }
    for cmd in [&[][..], &["diagnose"], &["serve"]] {
        let text = help(cmd);
        for flag in ["--interface", "--filter", "--user"] {
            assert!(text.contains(flag), "{cmd:?} --help lacks {flag}");
        }
    }
}
