//! The CLI end to end: formats (snapshots), exit codes, config errors, the walk, and bad
//! input that must become diagnostics rather than failures.

use std::process::Command;

use crate::util::{fixtures, run, run_json, tree};

fn mixed() -> String {
    fixtures()
        .join("repos/mixed")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn scan_text_snapshot() {
    let output = run(&["scan", &mixed()]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert_eq!(output.stderr, "");
    insta::assert_snapshot!(output.stdout);
}

#[test]
fn scan_json_snapshot() {
    let report = run_json(&["scan", &mixed(), "--format", "json"]);
    insta::assert_json_snapshot!(report);
}

#[test]
fn scan_sarif_snapshot() {
    let mut report = run_json(&["scan", &mixed(), "--format", "sarif"]);
    let base = &mut report["runs"][0]["originalUriBaseIds"]["SRCROOT"]["uri"];
    assert!(base.as_str().unwrap().starts_with("file:///"));
    assert!(
        base.as_str()
            .unwrap()
            .ends_with("/tests/fixtures/repos/mixed/")
    );
    *base = "file:///[root]/".into();
    insta::assert_json_snapshot!(report);
}

#[test]
fn metrics_text_and_json_snapshots() {
    let output = run(&["metrics", &mixed()]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    insta::assert_snapshot!("metrics_text", output.stdout);
    let report = run_json(&["metrics", &mixed(), "--format", "json"]);
    insta::assert_json_snapshot!("metrics_json", report);
}

/// The SARIF output passes the official validator (SARIF Multitool's `validate`).
/// `.ci/validate-sarif` installs the validator from the npm registry on first use; in CI
/// (`CI` set) the check is mandatory, elsewhere it runs when `npm` is available.
#[test]
fn sarif_passes_the_official_validator() {
    let has_npm = Command::new("npm").arg("--version").output().is_ok();
    if std::env::var_os("CI").is_none() && !has_npm {
        eprintln!("npm not found: SARIF validation skipped (it is mandatory in CI)");
        return;
    }
    // Smells (the mixed repo) and duplicate code (related locations, property bags).
    let clones = fixtures().join("repos/clones");
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (name, root) in [
        ("smells", mixed()),
        ("clones", clones.to_string_lossy().into_owned()),
    ] {
        let output = run(&["scan", &root, "--format", "sarif"]);
        let path = dir.path().join(format!("{name}.sarif"));
        std::fs::write(&path, output.stdout).unwrap();
        paths.push(path);
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/validate-sarif");
    let validated = Command::new("bash")
        .arg(script)
        .args(&paths)
        .output()
        .expect("run .ci/validate-sarif");
    assert!(
        validated.status.success(),
        "SARIF validation failed:\n{}\n{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
}

#[test]
fn fail_on_sets_exit_code_one_only_at_or_above_the_severity() {
    let dir = tree(&[(
        "a.py",
        "def f(x):\n    try:\n        return x()\n    except:\n        return None\n",
    )]);
    let path = dir.path().to_str().unwrap();
    assert_eq!(run(&["scan", path]).code, 0);
    assert_eq!(run(&["scan", path, "--fail-on", "warning"]).code, 1);
    assert_eq!(run(&["scan", path, "--fail-on", "note"]).code, 1);
    assert_eq!(run(&["scan", path, "--fail-on", "error"]).code, 0);
    let clean = tree(&[("b.py", "def g():\n    return 1\n")]);
    let clean = clean.path().to_str().unwrap();
    assert_eq!(run(&["scan", clean, "--fail-on", "note"]).code, 0);
}

#[test]
fn usage_and_path_errors_exit_two_with_a_message() {
    let output = run(&["scan", "/no/such/dir/anywhere"]);
    assert_eq!(output.code, 2);
    assert!(
        output
            .stderr
            .contains("/no/such/dir/anywhere does not exist"),
        "{}",
        output.stderr
    );
    let output = run(&["scan", "--format", "xml"]);
    assert_eq!(output.code, 2);
    assert!(output.stderr.contains("xml"), "{}", output.stderr);
    let output = run(&["--version"]);
    assert_eq!(output.code, 0);
    assert!(output.stdout.starts_with("refactor-ai "));
}

#[test]
fn bad_config_names_file_key_and_allowed_values() {
    let dir = tree(&[
        ("refactor-ai.toml", "[thresholds]\nnesting = 3\n"),
        ("a.py", "def f():\n    pass\n"),
    ]);
    let output = run(&["scan", dir.path().to_str().unwrap()]);
    assert_eq!(output.code, 2);
    assert!(
        output.stderr.contains("refactor-ai.toml"),
        "{}",
        output.stderr
    );
    assert!(output.stderr.contains("nesting"), "{}", output.stderr);
    assert!(output.stderr.contains("max_nesting"), "{}", output.stderr);
}

#[test]
fn config_thresholds_rules_and_excludes_apply() {
    let body = "def f(a, b):\n    if a:\n        if b:\n            return 1\n    return 0\n";
    let files = [("src/a.py", body), ("docs/b.py", body)];
    let default = tree(&files);
    let report = run_json(&["scan", default.path().to_str().unwrap(), "--format", "json"]);
    assert_eq!(report["findings"], serde_json::json!([]));

    let configured = tree(&[
        files[0],
        files[1],
        (
            "refactor-ai.toml",
            "[walk]\nexclude = [\"docs/\"]\n[thresholds]\ncognitive_complexity = 2\nmax_nesting = 1\n[rules]\nignore = [\"deep-nesting\"]\n[rules.severity]\n\"cognitive-complexity\" = \"error\"\n",
        ),
    ]);
    let report = run_json(&[
        "scan",
        configured.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["rule"], "cognitive-complexity");
    assert_eq!(findings[0]["severity"], "error");
    assert_eq!(findings[0]["locations"][0]["path"], "src/a.py");
    assert_eq!(findings[0]["metrics"]["cognitive_complexity"], 3);
}

#[test]
fn walk_honours_gitignore_hidden_and_default_excludes() {
    let function = "def f():\n    return 1\n";
    let dir = tree(&[
        (".gitignore", "ignored/\n"),
        ("kept.py", function),
        ("ignored/a.py", function),
        (".hidden/b.py", function),
        ("target/c.rs", "fn c() {}\n"),
        ("pkg/migrations/0001_initial.py", function),
        ("pkg/migrations/versions/ab12_add.py", function),
        ("engine/migrations/autodetector.py", function),
        ("pkg/__pycache__/d.py", function),
        ("node_modules/e.py", function),
        ("vendor/f.rs", "fn f() {}\n"),
        ("notes.txt", "def g(): pass\n"),
    ]);
    let report = run_json(&["metrics", dir.path().to_str().unwrap(), "--format", "json"]);
    let paths: Vec<_> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paths, ["engine/migrations/autodetector.py", "kept.py"]);
}

#[test]
fn a_single_file_can_be_analysed() {
    let dir = tree(&[("one.rs", "fn one() -> i32 {\n    1\n}\n")]);
    let report = run_json(&[
        "metrics",
        dir.path().join("one.rs").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(report["files"][0]["path"], "one.rs");
    assert_eq!(report["files"][0]["functions"][0]["name"], "one");
}

#[test]
fn bad_files_become_diagnostics_and_the_run_goes_on() {
    let dir = tree(&[
        ("good.py", "def good():\n    return 1\n"),
        ("binary.py", "def x():\0\0\0 pass\n"),
        (
            "broken.py",
            "def fine(a):\n    return a\n\ndef broken(:\n    pass\n\ndef also_fine():\n    if True:\n        return 2\n",
        ),
    ]);
    std::fs::write(dir.path().join("latin1.py"), b"x = '\xe9'\n").unwrap();
    std::fs::write(dir.path().join("huge.py"), "x = 1\n".repeat(200_000)).unwrap();
    let report = run_json(&["metrics", dir.path().to_str().unwrap(), "--format", "json"]);
    let diagnostics: Vec<String> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{}: {}",
                d["path"].as_str().unwrap(),
                d["message"].as_str().unwrap()
            )
        })
        .collect();
    let has = |path: &str, text: &str| {
        diagnostics
            .iter()
            .any(|d| d.starts_with(&format!("{path}: ")) && d.contains(text))
    };
    assert!(has("binary.py", "binary"), "{diagnostics:#?}");
    assert!(has("latin1.py", "UTF-8"), "{diagnostics:#?}");
    assert!(has("huge.py", "max_file_size"), "{diagnostics:#?}");
    assert!(
        has("broken.py", "syntax error at line 4"),
        "{diagnostics:#?}"
    );
    let broken = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|file| file["path"] == "broken.py")
        .expect("broken.py is still reported");
    let names: Vec<_> = broken["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"fine") && names.contains(&"also_fine"),
        "{names:?}"
    );
    assert!(!names.contains(&"broken"), "{names:?}");
}

#[test]
fn colour_follows_the_terminal_no_color_and_the_flag() {
    let dir = tree(&[(
        "a.py",
        "def f(x):\n    try:\n        return x()\n    except:\n        return None\n",
    )]);
    let binary = env!("CARGO_BIN_EXE_refactor-ai");
    let scan = |envs: &[(&str, &str)], extra: &[&str]| {
        let mut command = Command::new(binary);
        command
            .arg("scan")
            .arg(dir.path())
            .arg("--no-cache")
            .args(extra);
        command.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
        for (key, value) in envs {
            command.env(key, value);
        }
        String::from_utf8(command.output().unwrap().stdout).unwrap()
    };
    assert!(!scan(&[], &[]).contains('\x1b'), "a pipe gets no colour");
    assert!(scan(&[("CLICOLOR_FORCE", "1")], &[]).contains('\x1b'));
    assert!(!scan(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")], &[]).contains('\x1b'));
    assert!(scan(&[("NO_COLOR", "1")], &["--color", "always"]).contains('\x1b'));
}

#[test]
fn finding_ids_survive_edits_that_move_lines() {
    let code = "def f(x):\n    try:\n        return x()\n    except:\n        return None\n";
    let before = tree(&[("a.py", code)]);
    let after = tree(&[("a.py", &format!("import os\n\n\n{code}"))]);
    let id = |dir: &tempfile::TempDir| {
        let report = run_json(&["scan", dir.path().to_str().unwrap(), "--format", "json"]);
        report["findings"][0]["id"].as_str().unwrap().to_string()
    };
    assert_eq!(id(&before), id(&after));
}

#[test]
fn functions_inside_item_macros_are_measured_with_their_impl_type() {
    let file = fixtures().join("metrics/rust/item_macros.rs");
    let report = run_json(&["metrics", file.to_str().unwrap(), "--format", "json"]);
    let names: Vec<_> = report["files"][0]["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|function| function["qualified_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["spawn", "Pool::size", "drain"]);
}

/// Alternative patterns of one rule may word their own message (for their own captures).
#[test]
fn each_pattern_of_a_rule_fills_its_own_message() {
    let dir = tree(&[(
        "lib.rs",
        "pub fn a(xs: &[String]) -> Vec<String> {\n    xs.iter().map(|x| x.clone()).collect()\n}\n\npub fn b(xs: &[String]) -> Vec<String> {\n    xs.iter().map(Clone::clone).collect()\n}\n",
    )]);
    let report = run_json(&["scan", dir.path().to_str().unwrap(), "--format", "json"]);
    let messages: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|finding| finding["rule"] == "rust/map-clone")
        .map(|finding| finding["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        messages,
        [
            "`.map(|x| x.clone())` spelled out by hand",
            "`.map(Clone::clone)` spelled out by hand"
        ]
    );
}

#[test]
fn hw_reports_the_profile_and_a_choice_with_reasons() {
    let report = run_json(&["hw", "--format", "json"]);
    let cpu = &report["profile"]["cpu"];
    assert!(cpu["logical_cores"].as_u64().unwrap() >= 1);
    assert!(cpu["physical_cores"].as_u64().unwrap() <= cpu["logical_cores"].as_u64().unwrap());
    assert!(report["profile"]["memory"]["total_bytes"].as_u64().unwrap() > 0);
    assert_eq!(report["profile_key"].as_str().unwrap().len(), 16);
    // Either a model with its reasons, or an error naming the smallest model's needs.
    match report["choice"].as_object() {
        Some(choice) => {
            assert!(choice["needs_bytes"].as_u64() <= choice["budget_bytes"].as_u64());
            assert!(choice["reasons"].is_array());
            assert!(report["error"].is_null());
        }
        None => assert!(report["error"].as_str().unwrap().contains("smollm2-135m")),
    }
    let text = run(&["hw"]);
    assert_eq!(text.code, 0);
    assert!(text.stdout.starts_with("CPU "), "{}", text.stdout);
    assert!(text.stdout.contains("\nModel "), "{}", text.stdout);
    // An impossible speed floor: the fastest model that fits is chosen, with a warning.
    let strict = run(&["hw", "--min-speed", "100000"]);
    assert!(
        strict.stdout.contains("Warning  nothing that fits reaches"),
        "{}",
        strict.stdout
    );
    let bad = run(&["hw", "--min-speed", "-1"]);
    assert_eq!(bad.code, 2);
}

mod models {
    //! `models`: pulling from local and unreachable sources, verifying, removing. Runs the
    //! binary with its own cache directory and a user catalog there; the only hosts
    //! contacted are on loopback.

    use std::io::Write;
    use std::path::Path;
    use std::process::{Command, Output};
    use std::time::{Duration, Instant};

    /// The sha256 of "a tiny stand-in for a model file\n" (17 times).
    fn fake_model(dir: &Path) -> (std::path::PathBuf, String, u64) {
        let content = "a tiny stand-in for a model file\n".repeat(17);
        let path = dir.join("source.gguf");
        std::fs::write(&path, &content).unwrap();
        let output = Command::new("sha256sum").arg(&path).output().unwrap();
        let sha = String::from_utf8(output.stdout).unwrap()[..64].to_string();
        (path, sha, content.len() as u64)
    }

    fn catalog(cache: &Path, sources: &str, sha: &str, size: u64) {
        let text = format!(
            "[[model]]\nid = \"tiny\"\nname = \"Tiny\"\narchitecture = \"llama\"\nparameters = 1\n\
             quantization = \"Q8_0\"\nfile = \"tiny.gguf\"\nsize = {size}\nsha256 = \"{sha}\"\n\
             context_length = 64\nlayers = 1\nkv_heads = 1\nhead_dim = 1\nvocab = 1\n\
             embedding = 1\nfast_kernels = true\nlicense = \"MIT\"\n{sources}"
        );
        std::fs::create_dir_all(cache).unwrap();
        std::fs::write(cache.join("catalog.toml"), text).unwrap();
    }

    /// A catalog source that copies the file at `path`.
    fn path_source(path: &Path) -> String {
        format!(
            "[[model.source]]\nkind = \"path\"\npath = \"{}\"\n",
            path.display()
        )
    }

    fn models(cache: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_refactor-ai"));
        command
            .arg("models")
            .args(args)
            .env("REFACTOR_AI_CACHE_DIR", cache);
        command
            .env("HF_HOME", cache.join("hf"))
            .env_remove("HF_HUB_OFFLINE");
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().unwrap()
    }

    fn text(output: &Output) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    #[test]
    fn pull_from_a_local_path_verifies_installs_and_is_instant_the_second_time() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let (source, sha, size) = fake_model(dir.path());
        catalog(&cache, &path_source(&source), &sha, size);
        // A partial file from an interrupted pull is cleaned up, not trusted.
        std::fs::create_dir_all(cache.join("models")).unwrap();
        std::fs::write(cache.join("models/.tiny.gguf.partial"), "half").unwrap();
        let first = models(&cache, &["pull", "tiny"], &[]);
        assert!(first.status.success(), "{}", text(&first));
        let installed = cache.join("models/tiny.gguf");
        assert_eq!(
            std::fs::read(&installed).unwrap(),
            std::fs::read(&source).unwrap()
        );
        assert!(!cache.join("models/.tiny.gguf.partial").exists());
        let second = models(&cache, &["pull", "tiny"], &[]);
        assert!(
            text(&second).contains("installed and verified"),
            "{}",
            text(&second)
        );
        let path = models(&cache, &["path", "tiny"], &[]);
        assert_eq!(
            String::from_utf8_lossy(&path.stdout).trim(),
            installed.display().to_string()
        );

        // A truncated file is found by `verify` (exit 1), and pulled again.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&installed)
            .unwrap();
        file.set_len(size / 2).unwrap();
        let verify = models(&cache, &["verify", "tiny"], &[]);
        assert_eq!(verify.status.code(), Some(1));
        assert!(
            text(&verify).contains("CORRUPT") && text(&verify).contains("truncated"),
            "{}",
            text(&verify)
        );
        // The same size but other bytes: a hash mismatch, with both hashes.
        let mut file = std::fs::File::create(&installed).unwrap();
        file.write_all(&vec![b'x'; size as usize]).unwrap();
        drop(file);
        let verify = models(&cache, &["verify"], &[]);
        assert!(
            text(&verify).contains(&format!("expected {sha}")),
            "{}",
            text(&verify)
        );
        let again = models(&cache, &["pull", "tiny"], &[]);
        assert!(again.status.success(), "{}", text(&again));
        assert_eq!(
            models(&cache, &["verify", "tiny"], &[]).status.code(),
            Some(0)
        );

        let removed = models(&cache, &["rm", "tiny"], &[]);
        assert!(text(&removed).contains("removed tiny"));
        assert!(!installed.exists());
        assert!(!models(&cache, &["path", "tiny"], &[]).status.success());
    }

    /// A pull killed in the middle of a download: the source is a named pipe that delivers
    /// part of the file and then stalls, so the process is certainly mid-copy when killed.
    #[test]
    fn a_pull_killed_mid_download_leaves_no_model_and_the_next_pull_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let (source, sha, size) = fake_model(dir.path());
        let pipe = dir.path().join("stalled.gguf");
        let made = Command::new("mkfifo").arg(&pipe).status().unwrap();
        assert!(made.success());
        catalog(&cache, &path_source(&pipe), &sha, size);
        let mut pull = Command::new(env!("CARGO_BIN_EXE_refactor-ai"))
            .args(["models", "pull", "tiny"])
            .env("REFACTOR_AI_CACHE_DIR", &cache)
            .env("HF_HUB_OFFLINE", "1")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let content = std::fs::read(&source).unwrap();
        let half = content.len() / 2;
        // Opening the pipe waits for the pull to open it; the writer then stalls.
        let writer = {
            let pipe = pipe.clone();
            let first_half = content[..half].to_vec();
            std::thread::spawn(move || {
                let mut writer = std::fs::OpenOptions::new().write(true).open(pipe).unwrap();
                writer.write_all(&first_half).unwrap();
                writer.flush().unwrap();
                writer
            })
        };
        let partial = cache.join("models/.tiny.gguf.partial");
        let started = Instant::now();
        while std::fs::metadata(&partial).map_or(0, |meta| meta.len()) < half as u64 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the pull never copied the first half"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        pull.kill().unwrap();
        pull.wait().unwrap();
        drop(writer.join().unwrap());

        // Nothing under the model's name, so nothing can load a half file.
        assert!(!cache.join("models/tiny.gguf").exists());
        assert!(!models(&cache, &["path", "tiny"], &[]).status.success());
        // The next pull starts again and installs the whole, verified file.
        catalog(&cache, &path_source(&source), &sha, size);
        let again = models(&cache, &["pull", "tiny"], &[]);
        assert!(again.status.success(), "{}", text(&again));
        assert!(!partial.exists());
        assert_eq!(
            std::fs::read(cache.join("models/tiny.gguf")).unwrap(),
            content
        );
    }

    #[test]
    fn a_source_with_the_wrong_hash_is_rejected_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let (source, _, size) = fake_model(dir.path());
        let wrong = "0".repeat(64);
        catalog(&cache, &path_source(&source), &wrong, size);
        let output = models(&cache, &["pull", "tiny"], &[]);
        assert_eq!(output.status.code(), Some(2));
        let message = text(&output);
        assert!(
            message.contains("hash mismatch") && message.contains(&wrong),
            "{message}"
        );
        assert!(message.contains("Place the file by hand"), "{message}");
        let left: Vec<_> = std::fs::read_dir(cache.join("models"))
            .unwrap()
            .flatten()
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn unknown_ids_are_named_with_the_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let output = models(dir.path(), &["pull", "gpt-5"], &[]);
        assert_eq!(output.status.code(), Some(2));
        assert!(
            text(&output).contains("unknown model `gpt-5`; the catalog has: smollm2-135m"),
            "{}",
            text(&output)
        );
    }

    #[test]
    fn unreachable_hubs_are_given_up_on_quickly() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let (source, sha, size) = fake_model(dir.path());
        catalog(
            &cache,
            &format!(
                "[[model.source]]\nkind = \"hub\"\nrepo = \"nobody/tiny\"\npath = \"tiny.gguf\"\n{}",
                path_source(&source)
            ),
            &sha,
            size,
        );
        // A loopback port with nothing listening: refused at once.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let endpoint = format!("http://127.0.0.1:{closed_port}");
        let started = Instant::now();
        let output = models(&cache, &["pull", "tiny"], &[("HF_ENDPOINT", &endpoint)]);
        assert!(output.status.success(), "{}", text(&output));
        assert!(text(&output).contains(&endpoint), "{}", text(&output));
        assert!(started.elapsed() < Duration::from_secs(20));
        models(&cache, &["rm", "tiny"], &[]);

        // A listener that accepts and never answers: the timeout moves on to the next source.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", silent.local_addr().unwrap());
        let holder = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in silent.incoming().take(4) {
                held.push(stream);
            }
        });
        let started = Instant::now();
        let output = models(
            &cache,
            &["pull", "tiny", "--hub-timeout", "2"],
            &[("HF_ENDPOINT", &endpoint)],
        );
        let elapsed = started.elapsed();
        assert!(output.status.success(), "{}", text(&output));
        assert!(
            text(&output).contains("did not answer within 2 s"),
            "{}",
            text(&output)
        );
        assert!(
            elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(20),
            "{elapsed:?}"
        );
        drop(holder);

        // Offline mode skips the Hub without trying it.
        models(&cache, &["rm", "tiny"], &[]);
        let output = models(&cache, &["pull", "tiny"], &[("HF_HUB_OFFLINE", "1")]);
        assert!(
            text(&output).contains("HF_HUB_OFFLINE"),
            "{}",
            text(&output)
        );
    }
}
