//! Clone recall on a real corpus: `cargo bench --bench clone-recall -- LANG CORPUS [PER_TYPE] [SEED]`
//! (LANG is python or rust). Copies CORPUS to a temporary directory, injects PER_TYPE
//! (default 100) mutants of each clone type, runs `scan` and prints recall per type.
//! See benches/README.md; `benches/clone-recall.sh` runs it on Django and tokio.

mod recall;

use std::path::PathBuf;

use recall::{Lang, found, inject, score, scratch};

fn main() {
    // `cargo bench` passes `--bench`; everything else is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| arg != "--bench")
        .collect();
    if args.len() < 2 {
        eprintln!(
            "usage: cargo bench --bench clone-recall -- python|rust CORPUS [PER_TYPE] [SEED]"
        );
        std::process::exit(2);
    }
    let lang = match args[0].as_str() {
        "python" => Lang::Python,
        "rust" => Lang::Rust,
        other => {
            eprintln!("unknown language {other}: python or rust");
            std::process::exit(2);
        }
    };
    let corpus = PathBuf::from(&args[1]);
    let per_type: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(100);
    let seed: u64 = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(42);
    let out = scratch(&args[0]);
    let injections = inject(&corpus, &out, lang, per_type, seed);
    let scores = score(&out, &injections);
    println!("| corpus | language | type | injected | found | recall |");
    println!("|---|---|---|---|---|---|");
    for (index, (found, total)) in scores.iter().enumerate() {
        println!(
            "| {} | {} | {} | {total} | {found} | {:.2} |",
            corpus.display(),
            args[0],
            index + 1,
            *found as f64 / (*total).max(1) as f64
        );
    }
    if std::env::var_os("RECALL_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&out);
    } else {
        eprintln!("injected corpus kept at {}; missed:", out.display());
        for (injection, found) in injections.iter().zip(found(&out, &injections)) {
            if !found {
                eprintln!(
                    "type {} {:?} -> {:?} ({})",
                    injection.clone_type,
                    injection.original,
                    injection.mutant,
                    injection.operators.join(", ")
                );
            }
        }
    }
}
