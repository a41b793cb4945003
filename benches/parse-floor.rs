//! The floor under a cold `scan`: read and parse every file of one language below a tree,
//! on every core, and nothing else (no measuring, no queries, no clone units). With `walk`,
//! also one cursor walk over each tree, the least any analysis adds. Prints the best of
//! five runs, next to which `scan` and jscpd can be read (`benches/scan-bench.sh`).
//!
//! usage: cargo bench --bench parse-floor -- DIR py|rs [walk]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn files(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, extension, out);
        } else if path.extension().is_some_and(|found| found == extension) {
            out.push(path);
        }
    }
}

fn run(paths: &[PathBuf], language: &tree_sitter::Language, walk: bool) -> Duration {
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |count| count.get());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut parser = tree_sitter::Parser::new();
                parser.set_language(language).expect("grammar loads");
                let mut nodes = 0usize;
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(index) else { break };
                    let text = std::fs::read_to_string(path).unwrap_or_default();
                    let Some(tree) = parser.parse(&text, None) else {
                        continue;
                    };
                    if walk {
                        let mut cursor = tree.walk();
                        'walk: loop {
                            nodes += usize::from(cursor.node().kind_id());
                            if cursor.goto_first_child() {
                                continue;
                            }
                            while !cursor.goto_next_sibling() {
                                if !cursor.goto_parent() {
                                    break 'walk;
                                }
                            }
                        }
                    }
                }
                std::hint::black_box(nodes);
            });
        }
    });
    started.elapsed()
}

fn main() {
    // SAFETY: nothing has touched tree-sitter yet (the binary's allocator setup).
    unsafe { refactor_ai::tree_sitter_uses_mimalloc() };
    // `cargo bench` passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let (Some(dir), Some(extension)) = (args.first(), args.get(1)) else {
        eprintln!("usage: cargo bench --bench parse-floor -- DIR py|rs [walk]");
        std::process::exit(2);
    };
    let language: tree_sitter::Language = match extension.as_str() {
        "py" => tree_sitter_python::LANGUAGE.into(),
        "rs" => tree_sitter_rust::LANGUAGE.into(),
        _ => {
            eprintln!("the extension must be py or rs");
            std::process::exit(2);
        }
    };
    let walk = args.get(2).is_some_and(|arg| arg == "walk");
    let mut paths = Vec::new();
    files(Path::new(dir), extension, &mut paths);
    let best = (0..5)
        .map(|_| run(&paths, &language, walk))
        .min()
        .unwrap_or_default();
    println!(
        "{} .{extension} files: read and parse{} on every core, best of 5: {:.3} s",
        paths.len(),
        if walk { " and walk" } else { "" },
        best.as_secs_f64()
    );
}
