//! Duplicate code end to end: each clone type, syntactic boundaries, what is left out, and
//! snapshots of the outputs.

use serde_json::Value;

use crate::util::{copy_dir, fixtures, run, run_clean_json, tree};

fn duplicates(report: &Value) -> Vec<&Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|finding| finding["kind"] == "duplicate")
        .collect()
}

/// (rule, unit, renaming, "path:start-end" of each instance) per duplicate finding.
fn summary(report: &Value) -> Vec<(String, String, String, Vec<String>)> {
    duplicates(report)
        .iter()
        .map(|finding| {
            let properties = &finding["properties"];
            (
                finding["rule"].as_str().unwrap().to_string(),
                properties["unit"].as_str().unwrap().to_string(),
                properties["renaming"].as_str().unwrap_or("-").to_string(),
                finding["locations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|location| {
                        format!(
                            "{}:{}-{}",
                            location["path"].as_str().unwrap(),
                            location["start_line"],
                            location["end_line"]
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn every_clone_type_is_found_with_its_boundaries() {
    let report = run_clean_json("scan", &fixtures().join("repos/clones"));
    let found = summary(&report);
    let expect = |rule: &str, unit: &str, renaming: &str, instances: &[&str]| {
        let wanted = (
            rule.to_string(),
            unit.to_string(),
            renaming.to_string(),
            instances
                .iter()
                .map(|instance| instance.to_string())
                .collect(),
        );
        assert!(found.contains(&wanted), "{wanted:?} not in {found:#?}");
    };
    // Type 1: a comment and a blank line apart.
    expect(
        "duplicate-code/type-1",
        "function",
        "-",
        &["shop/invoices.py:15-24", "shop/orders.py:17-25"],
    );
    // Type 2, renamed consistently: one helper with parameters replaces both.
    expect(
        "duplicate-code/type-2",
        "function",
        "consistent",
        &["shop/invoices.py:4-12", "shop/orders.py:6-14"],
    );
    // Type 3: a statement added; in Rust, a bounds check added.
    expect(
        "duplicate-code/type-3",
        "function",
        "-",
        &["shop/invoices.py:27-34", "shop/orders.py:28-34"],
    );
    expect(
        "duplicate-code/type-3",
        "function",
        "-",
        &["engine/lib.rs:9-24", "engine/lib.rs:26-45"],
    );
    assert_eq!(found.len(), 6, "{found:#?}");
    // Ordered by value, highest first.
    let values: Vec<f64> = duplicates(&report)
        .iter()
        .map(|finding| finding["properties"]["value"].as_f64().unwrap())
        .collect();
    assert!(
        values.windows(2).all(|pair| pair[0] >= pair[1]),
        "{values:?}"
    );
    // Test-to-test clones are notes.
    let test_clone = duplicates(&report)
        .into_iter()
        .find(|finding| finding["properties"]["in_tests"] == true)
        .unwrap();
    assert_eq!(test_clone["severity"], "note");
}

#[test]
fn runs_of_statements_are_whole_statements_of_one_block() {
    let body = "    total = 0\n    for item in items:\n        if item.price > limit:\n            total += item.price * item.quantity\n            count += 1\n    average = total / max(count, 1)\n    print(\"total\", total, \"average\", average)\n    log.info(\"done %s\", total)\n";
    let dir = tree(&[
        (
            "a.py",
            &format!("def first(items, limit, log):\n    count = 0\n{body}    return 1\n"),
        ),
        (
            "b.py",
            &format!(
                "def second(things, limit, log, extra):\n    extra.start()\n    count = 0\n{body}    extra.stop()\n    for thing in things:\n        if thing.ready():\n            extra.push(thing, [thing.name, thing.size], {{\"mode\": limit}})\n        else:\n            extra.skip(thing.name, reason=\"not ready\")\n    with extra.lock() as guard:\n        guard.release(all=True, quiet=False)\n    return extra\n"
            ),
        ),
    ]);
    let report = run_clean_json("scan", dir.path());
    let found = summary(&report);
    assert_eq!(
        found,
        [(
            "duplicate-code/type-1".to_string(),
            "statements".to_string(),
            "-".to_string(),
            vec!["a.py:2-10".to_string(), "b.py:3-11".to_string()]
        )],
        "the run starts at the first shared statement and stops before the first that differs \
         (the functions themselves are too different to be near-miss copies)"
    );
}

#[test]
fn consecutive_copied_functions_are_function_clones_not_one_run() {
    let functions = "def one(a, b):\n    c = a + b\n    d = c * a\n    e = d - b\n    f = e / 2\n    return f + c + d + e\n\n\ndef two(a, b):\n    c = a - b\n    d = c + a\n    e = d * b\n    f = e % 3\n    return f - c - d - e\n";
    let dir = tree(&[("a.py", functions), ("b.py", functions)]);
    let report = run_clean_json("scan", dir.path());
    let units: Vec<String> = summary(&report).into_iter().map(|found| found.1).collect();
    assert_eq!(units, ["function", "function"]);
}

#[test]
fn data_small_functions_and_imports_are_left_out() {
    let table = "FORMAT_A = \"j F Y\"\nFORMAT_B = \"H:i\"\nFORMAT_C = \"j F Y H:i\"\nFORMAT_D = \"Y-m-d\"\nFORMAT_E = \"d.m.Y\"\nFORMAT_F = \"m/d/Y\"\nFORMAT_G = \",\"\nFORMAT_H = \".\"\nFORMAT_I = 3\n";
    let stub = "def area(self):\n    \"\"\"\n    The area.\n\n    Subclasses must say how it is computed.\n    \"\"\"\n    raise NotImplementedError(\"subclasses must implement area()\")\n";
    let imports = "import os\nimport sys\nimport json\nimport math\nfrom a import b, c, d, e\nfrom f import g, h, i, j\nfrom k import l, m, n, o\n";
    let dir = tree(&[
        ("en/formats.py", table),
        (
            "fr/formats.py",
            &table.replace("j F Y", "d/m/Y").replace("H:i", "H\\hi"),
        ),
        ("shapes/a.py", &format!("{imports}\n\n{stub}")),
        (
            "shapes/b.py",
            &format!("{imports}\n\n{}", stub.replace("area", "perimeter")),
        ),
    ]);
    let report = run_clean_json("scan", dir.path());
    assert_eq!(
        summary(&report),
        [],
        "locale tables, stubs and imports are not duplicates"
    );
}

#[test]
fn duplicates_can_be_configured_off_or_smaller() {
    let dir = tree(&[
        (
            "a.py",
            "def f(x):\n    y = x + 1\n    z = y * 2\n    return z\n",
        ),
        (
            "b.py",
            "def g(x):\n    y = x + 1\n    z = y * 2\n    return z\n",
        ),
    ]);
    assert_eq!(
        summary(&run_clean_json("scan", dir.path())),
        [],
        "under 6 lines by default"
    );
    std::fs::write(
        dir.path().join("refactor-ai.toml"),
        "[duplicates]\nmin_lines = 3\nmin_function_tokens = 10\n",
    )
    .unwrap();
    assert_eq!(summary(&run_clean_json("scan", dir.path())).len(), 1);
    std::fs::write(
        dir.path().join("refactor-ai.toml"),
        "[duplicates]\nenabled = false\nmin_lines = 3\nmin_function_tokens = 10\n",
    )
    .unwrap();
    assert_eq!(summary(&run_clean_json("scan", dir.path())), []);
    std::fs::write(
        dir.path().join("refactor-ai.toml"),
        "[duplicates]\nmin_similarity = 2\n",
    )
    .unwrap();
    let output = run(&["scan", dir.path().to_str().unwrap()]);
    assert_eq!(output.code, 2);
    assert!(
        output.stderr.contains("duplicates.min_similarity"),
        "{}",
        output.stderr
    );
}

#[test]
fn duplicate_snapshots() {
    let root = fixtures().join("repos/clones");
    let output = run(&["scan", root.to_str().unwrap()]);
    insta::assert_snapshot!("clones_text", output.stdout);
    let report = run_clean_json("scan", &root);
    insta::assert_json_snapshot!("clones_json", duplicates(&report));
    let sarif = crate::util::run_json(&["scan", root.to_str().unwrap(), "--format", "sarif"]);
    let results: Vec<&Value> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|result| {
            result["ruleId"]
                .as_str()
                .unwrap()
                .starts_with("duplicate-code")
        })
        .collect();
    insta::assert_json_snapshot!("clones_sarif_results", results);
}

/// With `[rules] select`, what no selected rule reports is not computed (no clone units,
/// no smell queries), and what is selected comes out as in a full scan.
#[test]
fn selected_rules_come_out_as_in_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("repos/clones"), dir.path());
    std::fs::write(
        dir.path().join("smelly.py"),
        "def call(x):\n    try:\n        return x()\n    except:\n        return None\n",
    )
    .unwrap();
    let config = dir.path().join("refactor-ai.toml");
    let scan = |select: &str| {
        std::fs::write(&config, format!("[rules]\nselect = [{select}]\n")).unwrap();
        run_clean_json("scan", dir.path())
    };
    let rules = |report: &Value| -> Vec<String> {
        let mut rules: Vec<String> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|finding| finding["rule"].as_str().unwrap().to_string())
            .collect();
        rules.sort();
        rules.dedup();
        rules
    };
    let all = "\"duplicate-code/type-1\", \"duplicate-code/type-2\", \"duplicate-code/type-3\", \
               \"python/bare-except\"";
    let full = scan(all);
    assert!(rules(&full).contains(&"python/bare-except".to_string()));
    assert!(!duplicates(&full).is_empty());

    let only_duplicates =
        scan("\"duplicate-code/type-1\", \"duplicate-code/type-2\", \"duplicate-code/type-3\"");
    assert_eq!(summary(&only_duplicates), summary(&full));
    assert!(!rules(&only_duplicates).contains(&"python/bare-except".to_string()));

    let only_smell = scan("\"python/bare-except\"");
    assert_eq!(rules(&only_smell), vec!["python/bare-except".to_string()]);
    assert_eq!(
        only_smell["findings"],
        serde_json::json!(
            full["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|finding| finding["rule"] == "python/bare-except")
                .collect::<Vec<_>>()
        )
    );
}
