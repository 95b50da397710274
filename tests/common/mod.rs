//! Helpers shared by the integration tests that include this module (`mod common;`).

use std::path::{Path, PathBuf};

/// A copy of the key tables in `keys` into `out`, every key of the tables named in
/// `wrong` changed (its first hex digit flipped): each line still names its SA, its key is
/// wrong. Owner-only, as key files should be.
pub fn keys_with_wrong(keys: &Path, wrong: &[&str], out: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(out).unwrap();
    for entry in std::fs::read_dir(keys).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = if wrong.contains(&name.as_str()) {
            text.lines().map(flip_keys).collect::<Vec<_>>().join("\n")
        } else {
            text
        };
        let dest = out.join(&name);
        std::fs::write(&dest, text).unwrap();
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    out.to_path_buf()
}

/// A key-table line with the first hex digit of every long hex field (the keys) flipped.
fn flip_keys(line: &str) -> String {
    if line.starts_with('#') {
        return line.to_string();
    }
    let flip = |f: &str| -> String {
        let quoted = f.strip_prefix("\"0x").map(|h| ("\"0x", h));
        let (prefix, hex) = quoted.unwrap_or(("", f));
        match hex.chars().next().and_then(|c| c.to_digit(16)) {
            Some(d) if hex.len() > 20 => {
                let c = std::char::from_digit(d ^ 0x8, 16).unwrap();
                format!("{prefix}{c}{}", &hex[1..])
            }
            _ => f.to_string(),
        }
    };
    line.split(',').map(flip).collect::<Vec<_>>().join(",")
}
