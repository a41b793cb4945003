//! Recall of injected clones on the fixture corpora (the same harness as
//! `benches/clone-recall.rs`, on a small scale): real functions, mutated with Type-1, -2 and
//! -3 operators and appended to other files, must come back as duplicate-code findings.

#[path = "../benches/recall/mod.rs"]
mod recall;

use recall::{Lang, inject, score, scratch};

use crate::util::fixtures;

fn check(lang: Lang, corpus: &str, minimum: [f64; 3]) {
    let out = scratch(&format!("test-{corpus}"));
    let injections = inject(&fixtures().join(corpus), &out, lang, 12, 7);
    let scores = score(&out, &injections);
    let _ = std::fs::remove_dir_all(&out);
    for (index, ((found, total), minimum)) in scores.iter().zip(minimum).enumerate() {
        assert!(
            *total >= 10,
            "type {}: only {total} mutants could be made",
            index + 1
        );
        let recall = *found as f64 / *total as f64;
        assert!(
            recall >= minimum,
            "type {} recall {recall:.2} ({found}/{total}) is under {minimum}",
            index + 1
        );
    }
}

#[test]
fn injected_python_clones_are_found() {
    check(Lang::Python, "metrics/python", [0.9, 0.9, 0.7]);
}

#[test]
fn injected_rust_clones_are_found() {
    check(Lang::Rust, "metrics/rust", [0.9, 0.9, 0.7]);
}
