//! `scan` and `metrics` end to end (walk, parse, measure, smells, JSON rendering), in-process.
//!
//! Always over the test fixtures; also over Django and tokio when `benches/fetch-corpora.sh`
//! has put them in `benches/data/`. For wall time and peak memory side by side with jscpd,
//! run `benches/scan-bench.sh` instead.

use std::ffi::OsString;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};

fn run(command: &str, path: &Path) {
    let args: Vec<OsString> = vec![
        "refactor-ai".into(),
        command.into(),
        path.into(),
        "--format".into(),
        "json".into(),
    ];
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let code = refactor_ai::run_with(args, &mut stdout, &mut stderr, Default::default());
    assert!(code <= 1, "{}", String::from_utf8_lossy(&stderr));
}

fn analysis(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut group = c.benchmark_group("analysis");
    group.sample_size(10);
    let mut targets = vec![("fixtures", root.join("tests/fixtures"))];
    for corpus in ["django", "tokio"] {
        let path = root.join("benches/data").join(corpus);
        if path.is_dir() {
            targets.push((corpus, path));
        }
    }
    for (name, path) in &targets {
        for command in ["scan", "metrics"] {
            group.bench_function(format!("{command}/{name}"), |b| {
                b.iter(|| run(command, path))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, analysis);
criterion_main!(benches);
