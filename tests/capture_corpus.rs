//! Reads every third-party capture of the shared corpus and compares the frame count with
//! the row count of its tshark dump. Skips (with a line saying so) when the corpus is absent.

use std::path::Path;

use ipsecmon::capture::{open_file, FrameSource};

#[path = "common/corpus.rs"]
mod corpus;

/// Each frame's time relative to the first, in nanoseconds.
fn relative_times(path: &Path) -> Result<Vec<i64>, String> {
    let mut src = open_file(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut first = None;
    while let Some(f) = src.next_frame().map_err(|e| e.to_string())? {
        assert_eq!(f.number, out.len() as u64 + 1, "{}", path.display());
        let first = *first.get_or_insert(f.ts.0);
        out.push(f.ts.0 - first);
    }
    Ok(out)
}

/// tshark's `frame.time_relative` column (the second), in nanoseconds.
fn tshark_times(tsv: &str) -> Vec<i64> {
    tsv.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let field = l.split('\t').nth(1).unwrap_or_default();
            (field.parse::<f64>().unwrap_or(f64::NAN) * 1e9).round() as i64
        })
        .collect()
}

#[test]
fn every_corpus_capture_has_tsharks_frame_count() {
    let Some(root) = corpus::corpus_or_skip() else {
        return;
    };
    let tsvs = corpus::dumps(&root);
    assert!(!tsvs.is_empty(), "no tshark dumps under {}", root.display());
    let mut checked = 0;
    for (rel, tsv) in tsvs {
        let capture = root.join(&rel);
        let want = tshark_times(&std::fs::read_to_string(&tsv).unwrap());
        let got = relative_times(&capture).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.len(), want.len(), "frame count of {}", rel.display());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1,
                "{} frame {}: {g} ns vs tshark {w} ns",
                rel.display(),
                i + 1
            );
        }
        checked += 1;
    }
    println!("{checked} corpus captures read with tshark's frame counts and times");
}
