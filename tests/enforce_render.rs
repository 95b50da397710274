//! The rendered strongSwan and nftables configuration of the seed's example (Alice and
//! Bob, `examples/`), compared byte for byte with the golden files in `fixtures/enforce/`.
//! After a deliberate change of the renderer, rewrite them with `UPDATE_GOLDEN=1 cargo test
//! --test enforce_render` and review the diff.

use std::path::{Path, PathBuf};

use ipsecmon::enforce::{self, DataPlane, RenderOptions};
use ipsecmon::policy::Policy;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// (golden directory, policy, data plane, initiate)
const CASES: &[(&str, &str, bool, bool)] = &[
    ("alice", "alice.toml", false, false),
    ("bob", "bob.toml", false, false),
    ("alice-libipsec", "alice.toml", true, true),
    ("bob-libipsec", "bob.toml", true, false),
];

fn render(policy: &str, libipsec: bool, initiate: bool) -> enforce::Rendered {
    let path = root().join("examples").join(policy);
    let p = Policy::load(path.to_str().unwrap()).expect("example loads");
    let options = RenderOptions {
        data_plane: if libipsec {
            DataPlane::libipsec()
        } else {
            DataPlane::Kernel
        },
        initiate,
        ..RenderOptions::default()
    };
    enforce::render(&p, &options).expect("example renders")
}

#[test]
fn seed_example_matches_the_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for &(dir, policy, libipsec, initiate) in CASES {
        let rendered = render(policy, libipsec, initiate);
        let golden = root().join("fixtures/enforce").join(dir);
        if update {
            rendered.write_to(&golden).unwrap();
            continue;
        }
        for f in rendered.files() {
            let path = golden.join(f.path);
            let want = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                f.contents,
                want,
                "{} differs from the rendering",
                path.display()
            );
        }
    }
}

#[test]
fn the_two_ends_select_the_same_traffic() {
    let alice = render("alice.toml", false, false);
    let bob = render("bob.toml", false, false);
    let conf_a = alice.swanctl_conf();
    let conf_b = bob.swanctl_conf();
    // Alice's local selector is Bob's remote one and the other way round, port by port.
    for port in [6667, 6668] {
        let a = format!("remote_ts = 192.0.2.2/32[tcp/{port}]\n");
        let b = format!("local_ts = 192.0.2.2/32[tcp/{port}]\n");
        assert!(conf_a.contains(&a), "{conf_a}");
        assert!(conf_b.contains(&b), "{conf_b}");
    }
    assert!(conf_a.contains("local_ts = 192.0.2.1/32[tcp]\n"));
    assert!(conf_b.contains("remote_ts = 192.0.2.1/32[tcp]\n"));
    assert_eq!(
        alice.children[0].1,
        ["abczz-with-bob-1", "abczz-with-bob-2"]
    );
    assert_eq!(
        bob.children[0].1,
        ["abczz-with-alice-1", "abczz-with-alice-2"]
    );
}
