//! Cognitive complexity against the hand-checked fixtures in tests/fixtures/metrics.
//!
//! Every function in a fixture carries `# expect: cognitive=N` (`// expect: ...` in Rust)
//! on the nearest line above its `def`/`fn` line, skipping decorators, attributes and
//! comments; see tests/fixtures/metrics/README.md.

use std::collections::BTreeMap;

use crate::util::{fixtures, run_clean_json};

/// The expectations of the function whose `def`/`fn` is on `line` (1-based).
fn expectations(lines: &[&str], line: usize) -> Option<BTreeMap<String, u64>> {
    let mut index = line.checked_sub(1)?;
    while index > 0 {
        index -= 1;
        let text = lines[index].trim();
        let body = text
            .strip_prefix("//")
            .or_else(|| text.strip_prefix('#').filter(|rest| !rest.starts_with('[')));
        if let Some(comment) = body {
            if let Some(rest) = comment
                .trim_start_matches('/')
                .trim()
                .strip_prefix("expect:")
            {
                return Some(
                    rest.split_whitespace()
                        .filter_map(|pair| {
                            let (key, value) = pair.split_once('=')?;
                            Some((key.to_string(), value.parse().ok()?))
                        })
                        .collect(),
                );
            }
            continue;
        }
        let is_decoration =
            text.starts_with('@') || text.starts_with("#[") || text.starts_with(')');
        if !is_decoration {
            return None;
        }
    }
    None
}

fn check_language(language: &str, minimum: usize) {
    let dir = fixtures().join("metrics").join(language);
    let report = run_clean_json("metrics", &dir);
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in report["files"].as_array().unwrap() {
        let path = file["path"].as_str().unwrap();
        let text = std::fs::read_to_string(dir.join(path)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for function in file["functions"].as_array().unwrap() {
            let line = function["start_line"].as_u64().unwrap() as usize;
            let name = function["qualified_name"].as_str().unwrap();
            let Some(expected) = expectations(&lines, line) else {
                failures.push(format!("{path}:{line} {name}: no `expect:` annotation"));
                continue;
            };
            for (key, value) in &expected {
                let metric = match key.as_str() {
                    "cognitive" => "cognitive_complexity",
                    "cyclomatic" => "cyclomatic_complexity",
                    "nesting" => "max_nesting",
                    other => other,
                };
                let actual = &function["metrics"][metric];
                if actual.as_u64() != Some(*value) {
                    failures.push(format!(
                        "{path}:{line} {name}: {key} expected {value}, got {actual}"
                    ));
                }
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} {language} functions disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        checked >= minimum,
        "only {checked} {language} functions checked"
    );
}

#[test]
fn python_cognitive_complexity_matches_hand_checked_values() {
    check_language("python", 40);
}

#[test]
fn rust_cognitive_complexity_matches_hand_checked_values() {
    check_language("rust", 30);
}
