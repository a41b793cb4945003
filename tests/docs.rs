//! The documentation names what the code has: languages, rules, exit codes.

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// README's language table lists exactly the languages `metrics` reports.
#[test]
fn readme_lists_every_supported_language() {
    let readme = read("README.md");
    let dir = crate::util::tree(&[("a.py", "def f():\n    pass\n"), ("b.rs", "fn g() {}\n")]);
    let report =
        crate::util::run_json(&["metrics", dir.path().to_str().unwrap(), "--format", "json"]);
    let languages: Vec<_> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file["language"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(languages, ["python", "rust"]);
    for (language, extension) in [("python", ".py"), ("rust", ".rs")] {
        assert!(
            readme.contains(&format!("| {language} | `{extension}` |")),
            "README's language table lacks {language}"
        );
    }
}

/// Every rule `scan` can report is documented: metric rules in README, query rules in
/// grammars/README.md.
#[test]
fn every_rule_is_documented() {
    let readme = read("README.md");
    let grammars = read("grammars/README.md");
    let dir = crate::util::tree(&[("a.py", "pass\n")]);
    let sarif = crate::util::run_json(&["scan", dir.path().to_str().unwrap(), "--format", "sarif"]);
    let rules = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    assert!(rules.len() >= 4 + 8 + 8);
    for rule in rules {
        let id = rule["id"].as_str().unwrap();
        match id.split_once('/') {
            Some(("duplicate-code", _)) => assert!(
                readme.contains(&format!("`{id}`")),
                "README does not document {id}"
            ),
            Some((_, name)) => assert!(
                grammars.contains(&format!("`{name}`")),
                "grammars/README.md does not document {id}"
            ),
            None => assert!(
                readme.contains(&format!("`{id}`")),
                "README does not document {id}"
            ),
        }
    }
}
