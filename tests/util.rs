//! The harness: run the CLI in-process, build temporary trees, find fixtures.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub struct Output {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `refactor-ai ARGS...` in-process with colour off. `scan` and `metrics` run without
/// the result cache unless ARGS name a `--cache-dir`, so that tests never write to the
/// user's cache directory.
pub fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let mut argv: Vec<OsString> = vec!["refactor-ai".into()];
    argv.extend(args.iter().map(|arg| arg.as_ref().to_os_string()));
    let analyses = argv
        .get(1)
        .is_some_and(|command| command == "scan" || command == "metrics");
    if analyses && !argv.iter().any(|arg| arg == "--cache-dir") {
        argv.push("--no-cache".into());
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let code = refactor_ai::run_with(argv, &mut stdout, &mut stderr, Default::default());
    Output {
        code,
        stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(stderr).expect("stderr is UTF-8"),
    }
}

/// Runs the CLI and parses its stdout as JSON.
pub fn run_json<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> serde_json::Value {
    let output = run(args);
    assert!(
        output.code <= 1,
        "exit {}: {}\n{}",
        output.code,
        output.stderr,
        output.stdout
    );
    serde_json::from_str(&output.stdout)
        .unwrap_or_else(|error| panic!("not JSON ({error}):\n{}", output.stdout))
}

/// Runs the CLI on `dir` and parses its JSON, which must carry no diagnostics (fixtures
/// and generated inputs are meant to parse cleanly).
pub fn run_clean_json(command: &str, dir: &Path) -> serde_json::Value {
    let report = run_json(&[
        command.as_ref(),
        dir.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    assert_eq!(
        report["diagnostics"],
        serde_json::json!([]),
        "{} must parse cleanly",
        dir.display()
    );
    report
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A temporary directory holding the given files.
pub fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// Copies the directory `from` to `to` (files and directories).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
