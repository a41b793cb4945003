//! Smell queries against the marked fixtures in tests/fixtures/smells/<language>/.
//!
//! A finding must start on exactly the lines that carry `# smell: <id>[, <id>...]`
//! (`// smell: ...` in Rust), and nowhere else: unmarked code is a negative example.

use std::collections::BTreeSet;

use crate::util::{fixtures, run_clean_json};

/// Markers are line comments (`# smell: a, b`, `// smell: a`) or, where a comment inside
/// the flagged code would change what it is, a block comment before it
/// (`/* smell: push-loop */ for x in xs {`).
fn markers(text: &str, comment: &str) -> BTreeSet<(usize, String)> {
    let tags = [format!("{comment} smell:"), "/* smell:".to_string()];
    let mut found = BTreeSet::new();
    for (index, line) in text.lines().enumerate() {
        for tag in &tags {
            if let Some(position) = line.find(tag.as_str()) {
                let rest = &line[position + tag.len()..];
                let rest = rest.split("*/").next().unwrap_or(rest);
                for id in rest.split(',') {
                    found.insert((index + 1, id.trim().to_string()));
                }
            }
        }
    }
    found
}

fn check_language(language: &str, comment: &str) {
    let dir = fixtures().join("smells").join(language);
    let report = run_clean_json("scan", &dir);
    let prefix = format!("{language}/");
    let mut actual: BTreeSet<(String, usize, String)> = BTreeSet::new();
    for finding in report["findings"].as_array().unwrap() {
        let Some(id) = finding["rule"].as_str().unwrap().strip_prefix(&prefix) else {
            continue;
        };
        let location = &finding["locations"][0];
        actual.insert((
            location["path"].as_str().unwrap().to_string(),
            location["start_line"].as_u64().unwrap() as usize,
            id.to_string(),
        ));
    }
    let mut expected = BTreeSet::new();
    let mut files = vec![dir.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .map(|entry| entry.unwrap().path()),
            );
            continue;
        }
        let relative = path
            .strip_prefix(&dir)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&path).unwrap();
        for (line, id) in markers(&text, comment) {
            expected.insert((relative.clone(), line, id));
        }
    }
    let missing: Vec<_> = expected.difference(&actual).collect();
    let unexpected: Vec<_> = actual.difference(&expected).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "{language}: missing findings {missing:#?}\nunexpected findings {unexpected:#?}"
    );
    let rules: BTreeSet<_> = expected.iter().map(|(_, _, id)| id.clone()).collect();
    assert!(
        rules.len() >= 8,
        "{language}: only {} rules have positive examples",
        rules.len()
    );
}

#[test]
fn python_smells_match_marked_fixtures() {
    check_language("python", "#");
}

#[test]
fn rust_smells_match_marked_fixtures() {
    check_language("rust", "//");
}
