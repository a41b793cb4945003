//! Inputs that once broke (or could break) the analysis: deep nesting, huge files, and the
//! crashing inputs found by `cargo fuzz` (tests/fixtures/fuzz/, replayed through the same
//! entry point as the fuzz target).

use crate::util::{fixtures, run, run_clean_json, run_json, tree};

const DEPTH: usize = 5_000;

#[test]
fn five_thousand_nested_rust_blocks_do_not_overflow_the_stack() {
    let mut code = String::from("fn deep(x: bool) -> i32 {\n");
    for _ in 0..DEPTH {
        code.push_str("if x && !x || x { loop { ");
    }
    code.push_str("return 1;");
    for _ in 0..DEPTH {
        code.push_str(" } }");
    }
    code.push_str("\n}\n");
    let dir = tree(&[
        ("deep.rs", &code),
        ("copy.rs", &code),
        // The function is three lines long: let it be a clone.
        ("refactor-ai.toml", "[duplicates]\nmin_lines = 1\n"),
    ]);
    let scan = run_json(&["scan", dir.path().to_str().unwrap(), "--format", "json"]);
    assert!(
        scan["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|finding| finding["rule"] == "duplicate-code/type-1"),
        "the copy is a clone"
    );
    let report = run_json(&["metrics", dir.path().to_str().unwrap(), "--format", "json"]);
    let function = &report["files"][0]["functions"][0];
    assert_eq!(function["name"], "deep");
    assert_eq!(function["metrics"]["max_nesting"], (2 * DEPTH) as u64);
    // Each level: `if` at nesting 2k and `loop` at 2k + 1, plus two boolean sequences.
    let n = DEPTH as u64;
    let expected = (2 * n) + (2 * n) * (2 * n - 1) / 2 + 2 * n;
    assert_eq!(function["metrics"]["cognitive_complexity"], expected);
}

fn nested_python_ifs(depth: usize) -> String {
    let mut code = String::from("def deep(x):\n");
    for level in 0..depth {
        code.push_str(&" ".repeat(level + 1));
        code.push_str("if x:\n");
    }
    code.push_str(&" ".repeat(depth + 1));
    code.push_str("return 1\n");
    code
}

/// tree-sitter-python's indentation scanner keeps a bounded stack, so very deep blocks
/// parse as a syntax error: that must be a diagnostic, and shallower ones must be measured.
#[test]
fn deeply_nested_python_blocks_are_measured_or_diagnosed() {
    let dir = tree(&[
        ("ok.py", &nested_python_ifs(500)),
        ("deep.py", &nested_python_ifs(1_000)),
        ("refactor-ai.toml", "[walk]\nmax_file_size = 100_000_000\n"),
    ]);
    let output = run(&["metrics", dir.path().to_str().unwrap(), "--format", "json"]);
    assert!(output.code == 0, "{}", output.stderr);
    let report: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(report["diagnostics"][0]["path"], "deep.py");
    let ok = &report["files"][1];
    assert_eq!(ok["path"], "ok.py");
    assert_eq!(ok["functions"][0]["metrics"]["max_nesting"], 500);
}

#[test]
fn five_thousand_nested_expressions_do_not_overflow_the_stack() {
    let python = format!(
        "def f(a):\n    return {}a{}\n",
        "(not a and ".repeat(DEPTH),
        ")".repeat(DEPTH)
    );
    let rust = format!(
        "fn f(a: bool) -> bool {{\n    {}a{}\n}}\n",
        "(!a || ".repeat(DEPTH),
        ")".repeat(DEPTH)
    );
    let dir = tree(&[("f.py", &python), ("f.rs", &rust)]);
    run_clean_json("scan", dir.path());
    let report = run_clean_json("metrics", dir.path());
    for file in report["files"].as_array().unwrap() {
        // Every parenthesis starts a new one-operator sequence.
        assert_eq!(
            file["functions"][0]["metrics"]["cognitive_complexity"],
            DEPTH as u64
        );
    }
}

#[test]
fn a_hundred_thousand_line_file_is_analysed() {
    let mut code = String::new();
    for index in 0..25_000 {
        code.push_str(&format!(
            "def f{index}(x):\n    if x:\n        return {index}\n    return 0\n"
        ));
    }
    let dir = tree(&[
        ("big.py", &code),
        ("refactor-ai.toml", "[walk]\nmax_file_size = 100_000_000\n"),
    ]);
    let report = run_json(&["metrics", dir.path().to_str().unwrap(), "--format", "json"]);
    let functions = report["files"][0]["functions"].as_array().unwrap();
    assert_eq!(functions.len(), 25_000);
    assert_eq!(functions[24_999]["start_line"], 99_997);
}

/// Every input the fuzzer ever crashed on, replayed.
#[test]
fn fuzz_regressions_do_not_panic() {
    let dir = fixtures().join("fuzz");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        refactor_ai::fuzz_analyze(&data);
    }
}
