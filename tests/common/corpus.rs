//! Where the shared third-party captures are (`../shared/corpus/external`, with `SOURCES.md`
//! and tshark's ground truth), for the tests that read them. Included with
//! `#[path = "common/corpus.rs"] mod corpus;`.

// Each test binary that includes this file uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `../shared/corpus/external` beside the repository (or beside the directory holding a
/// worktree of it).
pub fn corpus() -> Option<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    ["../shared", "../../shared"]
        .iter()
        .map(|up| repo.join(up).join("corpus/external"))
        .find(|dir| dir.is_dir())
}

/// [`corpus`], printing that the test skips when the corpus is absent.
pub fn corpus_or_skip() -> Option<PathBuf> {
    let root = corpus();
    if root.is_none() {
        println!(
            "skipped: the shared corpus (../shared/corpus/external, beside the repository \
             or beside the directory holding its worktree) is absent"
        );
    }
    root
}

/// Every tshark dump under `root/tshark-ground-truth/`, in path order, each with the path
/// (relative to `root`) of the capture it dissects: `tshark-ground-truth/X.pcap.tsv` is
/// the dump of `X.pcap`.
pub fn dumps(root: &Path) -> Vec<(PathBuf, PathBuf)> {
    let truth = root.join("tshark-ground-truth");
    let mut tsvs = Vec::new();
    collect_tsvs(&truth, &mut tsvs);
    tsvs.sort();
    tsvs.into_iter()
        .map(|tsv| (tsv.strip_prefix(&truth).unwrap().with_extension(""), tsv))
        .collect()
}

/// Every `.tsv` under `dir`, recursively.
fn collect_tsvs(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_tsvs(&path, out);
        } else if path.extension().is_some_and(|e| e == "tsv") {
            out.push(path);
        }
    }
}
