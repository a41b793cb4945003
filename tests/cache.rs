//! The result cache: unchanged files are served from it, changed ones are analysed again,
//! and a cache that cannot be used never changes what a run reports.

use std::path::Path;

use serde_json::Value;

use crate::util::{run, run_json, tree};

const BARE_EXCEPT: &str =
    "def f(x):\n    try:\n        return x()\n    except:\n        return None\n";

fn scan(dir: &Path, cache: &Path) -> Value {
    run_json(&[
        "scan".as_ref(),
        dir.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        "--cache-dir".as_ref(),
        cache.as_os_str(),
    ])
}

fn cache_files(cache: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(cache.join("results"))
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default()
}

fn messages(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| finding["message"].as_str().unwrap().to_string())
        .collect()
}

/// Rewrites every stored copy of `from` in the cache file to `to`.
fn tamper(cache: &Path, from: &str, to: &str) {
    let files = cache_files(cache);
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains(from), "{text}");
    std::fs::write(&files[0], text.replace(from, to)).unwrap();
}

#[test]
fn unchanged_files_come_from_the_cache_and_changed_ones_are_analysed_again() {
    let dir = tree(&[("a.py", BARE_EXCEPT), ("b.py", BARE_EXCEPT)]);
    let cache = tempfile::tempdir().unwrap();
    let first = scan(dir.path(), cache.path());
    assert_eq!(
        first,
        scan(dir.path(), cache.path()),
        "a cached run reports the same"
    );
    assert_eq!(
        first,
        run_json(&["scan", dir.path().to_str().unwrap(), "--format", "json"])
    );

    // A stored result that no analysis would produce shows the cache was read ...
    let original = "bare `except:`";
    assert!(
        messages(&first)
            .iter()
            .all(|message| message.contains(original))
    );
    tamper(cache.path(), original, "served from the cache");
    let cached = scan(dir.path(), cache.path());
    assert!(
        messages(&cached)
            .iter()
            .all(|message| message.contains("served from the cache"))
    );

    // ... and only for files whose content is unchanged.
    std::fs::write(dir.path().join("b.py"), format!("# edited\n{BARE_EXCEPT}")).unwrap();
    let edited = scan(dir.path(), cache.path());
    let paths_and_messages: Vec<(String, bool)> = edited["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| {
            (
                finding["locations"][0]["path"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                finding["message"].as_str().unwrap().contains(original),
            )
        })
        .collect();
    assert_eq!(
        paths_and_messages,
        [("a.py".to_string(), false), ("b.py".to_string(), true)]
    );

    // A deleted file leaves the results.
    std::fs::remove_file(dir.path().join("a.py")).unwrap();
    let deleted = scan(dir.path(), cache.path());
    assert_eq!(deleted["summary"]["files"], 1);
}

#[test]
fn another_configuration_or_command_does_not_reuse_results() {
    let dir = tree(&[("a.py", BARE_EXCEPT)]);
    let cache = tempfile::tempdir().unwrap();
    scan(dir.path(), cache.path());
    tamper(cache.path(), "bare `except:`", "served from the cache");
    // The severity override changes the configuration, so nothing stored applies.
    std::fs::write(
        dir.path().join("refactor-ai.toml"),
        "[rules.severity]\n\"python/bare-except\" = \"note\"\n",
    )
    .unwrap();
    let report = scan(dir.path(), cache.path());
    assert!(messages(&report)[0].contains("bare `except:`"), "{report}");
    assert_eq!(report["findings"][0]["severity"], "note");
    // `metrics` keeps its own results next to scan's.
    run_json(&[
        "metrics".as_ref(),
        dir.path().as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        "--cache-dir".as_ref(),
        cache.path().as_os_str(),
    ]);
    assert_eq!(cache_files(cache.path()).len(), 2);
}

#[test]
fn a_corrupt_cache_is_ignored_and_replaced() {
    let dir = tree(&[("a.py", BARE_EXCEPT)]);
    let cache = tempfile::tempdir().unwrap();
    let first = scan(dir.path(), cache.path());
    let files = cache_files(cache.path());
    std::fs::write(&files[0], b"{\"fingerprint\": \x00 not json").unwrap();
    assert_eq!(scan(dir.path(), cache.path()), first);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("\"fingerprint\""), "rewritten: {text}");
}

#[test]
fn a_cache_that_cannot_be_written_is_a_warning_not_an_error() {
    let dir = tree(&[("a.py", BARE_EXCEPT)]);
    // A regular file where the cache directory should be.
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let output = run(&[
        "scan".as_ref(),
        dir.path().as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        "--cache-dir".as_ref(),
        blocker.path().as_os_str(),
    ]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(
        output
            .stderr
            .starts_with("warning: cannot write the result cache"),
        "{}",
        output.stderr
    );
    let report: Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(report["summary"]["findings"], 1);
}
