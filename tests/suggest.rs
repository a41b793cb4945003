//! `suggest`, `apply` and `undo` over the fixture projects in `tests/fixtures/repos/suggest`
//! (a Cargo crate and a Python package, each with a duplicated function and a test suite
//! that pins both copies). The model's answers are replayed from
//! `tests/fixtures/suggest/*.txt` (`--model replay:FILE`); everything after generation is
//! real: the checks, the sandbox copy, the project's own `cargo test` or `unittest` run
//! against a baseline, the journal, git.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{copy_dir, fixtures, run};

/// A copy of a fixture project in a temporary directory, committed to a new git repo.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(fixture: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixtures().join("repos/suggest").join(fixture), dir.path());
        let project = Project { dir };
        project.git(&["init", "-q"]);
        project.git(&["add", "-A"]);
        project.git(&["commit", "-q", "-m", "fixture"]);
        project
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .arg("-C")
            .arg(self.path())
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
            .args(args)
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Every file of the project (but refactor-ai's own directory and .git), with its
    /// bytes.
    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        collect(self.path(), self.path(), &mut files);
        files
    }

    /// `suggest` with the answers in `answers` (file names under tests/fixtures/suggest),
    /// as JSON.
    fn suggest(&self, answers: &[&str], extra: &[&str]) -> Value {
        // Outside the project, so that the snapshot does not see it.
        let replay_file = write_replay(answers);
        let mut args: Vec<String> = vec![
            "suggest".into(),
            self.path().display().to_string(),
            "--no-cache".into(),
            "--format".into(),
            "json".into(),
            "--model".into(),
            format!("replay:{}", replay_file.path().display()),
        ];
        args.extend(extra.iter().map(|arg| arg.to_string()));
        let output = run(&args);
        assert_eq!(output.code, 0, "suggest failed: {}", output.stderr);
        serde_json::from_str(&output.stdout)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", output.stdout))
    }
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".git" || name == ".refactor-ai" {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            files.insert(
                path.strip_prefix(root).unwrap().to_path_buf(),
                target.display().to_string().into_bytes(),
            );
        } else if kind.is_dir() {
            collect(root, &path, files);
        } else {
            files.insert(
                path.strip_prefix(root).unwrap().to_path_buf(),
                std::fs::read(&path).unwrap(),
            );
        }
    }
}

/// The verdict of each proposal, with the check that failed: `["rejected at tests", ...]`.
fn verdicts(session: &Value) -> Vec<String> {
    session["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|proposal| {
            let failed = proposal["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|check| check["passed"] == false);
            match failed {
                Some(check) if proposal["verdict"] == "rejected" => {
                    format!("rejected at {}", check["check"].as_str().unwrap())
                }
                _ => proposal["verdict"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

fn failure_message(session: &Value, index: usize) -> String {
    session["proposals"][index]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["passed"] == false)
        .map(|check| check["message"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

const DUPLICATES: &[&str] = &["--rule", "duplicate-code", "--max", "1", "--retries", "0"];

#[test]
fn a_correct_python_refactor_is_proven_applied_and_undone_byte_for_byte() {
    let project = Project::new("python");
    let before = project.snapshot();
    let session = project.suggest(&["python-good.txt"], DUPLICATES);
    assert_eq!(verdicts(&session), ["proven"], "{session:#}");
    assert_eq!(session["baseline"]["passed"], 15);
    let proposal = &session["proposals"][0];
    assert_eq!(proposal["tests"]["passed"], 15);
    assert!(
        proposal["diff"]
            .as_str()
            .unwrap()
            .contains("+from shop.orders import net_after_percentage")
    );
    assert_eq!(session["summary"]["proven"], 1);
    // suggest wrote nothing but its session.
    assert_eq!(project.snapshot(), before);
    assert!(project.path().join(".refactor-ai/session.json").is_file());
    let exclude = std::fs::read_to_string(project.path().join(".git/info/exclude")).unwrap();
    assert!(exclude.contains("/.refactor-ai/"));

    let id = proposal["finding"].as_str().unwrap();
    let applied = run(&["apply", project.path().to_str().unwrap(), "--id", id]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let refunds = std::fs::read_to_string(project.path().join("src/shop/refunds.py")).unwrap();
    assert!(refunds.contains("return net_after_percentage(returned, restocking_pct)"));
    let changelog = std::fs::read_to_string(project.path().join("CHANGELOG.md")).unwrap();
    assert!(changelog.contains("## [Unreleased]\n\n### Changed\n\n- Consolidate duplicated code in src/shop/orders.py, src/shop/refunds.py"), "{changelog}");
    assert!(changelog.contains("15 of 15 tests passed before, 15 of 15 after"));
    assert!(changelog.contains("proposed by replay"));
    // The applied project still passes its own tests.
    let tests = Command::new("python3")
        .args(["-m", "unittest", "discover", "-s", "tests"])
        .current_dir(project.path())
        .env("PYTHONPATH", project.path().join("src"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(
        tests.status.success(),
        "{}",
        String::from_utf8_lossy(&tests.stderr)
    );
    // A second apply of the same proposal is refused: the files changed.
    let again = run(&["apply", project.path().to_str().unwrap(), "--id", id]);
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains("changed since `suggest` validated"),
        "{}",
        again.stderr
    );

    let undone = run(&["undo", project.path().to_str().unwrap()]);
    assert_eq!(undone.code, 0, "{}", undone.stderr);
    assert_eq!(project.snapshot(), before, "undo restores every byte");
    let nothing = run(&["undo", project.path().to_str().unwrap()]);
    assert_eq!(nothing.code, 2);
    assert!(nothing.stderr.contains("nothing to undo"));
}

#[test]
fn a_behaviour_change_is_rejected_by_the_tests_and_nothing_is_written() {
    let project = Project::new("python");
    let before = project.snapshot();
    let session = project.suggest(&["python-breaks-rounding.txt"], DUPLICATES);
    assert_eq!(verdicts(&session), ["rejected at tests"], "{session:#}");
    let message = failure_message(&session, 0);
    assert!(message.contains("test(s) fail"), "{message}");
    let failures = session["proposals"][0]["tests"]["failures"].to_string();
    assert!(failures.contains("FAIL: test_"), "{failures}");
    assert_eq!(project.snapshot(), before);
    let refused = run(&["apply", project.path().to_str().unwrap(), "--all"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("proved no proposal"),
        "{}",
        refused.stderr
    );
    assert_eq!(project.snapshot(), before);
}

/// With the package installed editable into the project's `.venv`, the interpreter would
/// import the user's files instead of the sandbox's; the run must test the copy anyway.
#[test]
fn an_editable_install_does_not_hide_a_behaviour_change() {
    let project = Project::new("python");
    let venv = project.path().join(".venv");
    let status = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(status.success());
    // What an editable install (`pip install -e .`, setuptools' path mode for a src
    // layout) leaves in site-packages: a .pth file that puts the project's `src` on
    // sys.path. (pip cannot build one offline here: the venv has no `wheel`.)
    let site = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("site-packages");
    std::fs::write(
        site.join("__editable__.shop-0.1.0.pth"),
        format!("{}\n", project.path().join("src").display()),
    )
    .unwrap();
    let imported = Command::new(venv.join("bin/python"))
        .args(["-c", "import shop; print(shop.__file__)"])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let location = String::from_utf8_lossy(&imported.stdout);
    assert!(
        location
            .trim()
            .starts_with(project.path().to_str().unwrap()),
        "the editable install resolves to the project: {location}"
    );
    let before = project.snapshot();
    let session = project.suggest(&["python-breaks-rounding.txt"], DUPLICATES);
    assert!(
        session["test_command"]
            .as_str()
            .unwrap()
            .contains(".venv/bin/python -m unittest"),
        "{}",
        session["test_command"]
    );
    assert_eq!(verdicts(&session), ["rejected at tests"], "{session:#}");
    assert_eq!(project.snapshot(), before);
    // And a correct proposal is still proven with the project's interpreter.
    let session = project.suggest(&["python-good.txt"], DUPLICATES);
    assert_eq!(verdicts(&session), ["proven"], "{session:#}");
}

#[test]
fn broken_outside_test_editing_and_garbage_answers_are_rejected_early() {
    let project = Project::new("python");
    let before = project.snapshot();
    let session = project.suggest(&["python-syntax-error.txt"], DUPLICATES);
    assert_eq!(verdicts(&session), ["rejected at syntax"]);
    assert!(failure_message(&session, 0).contains("no longer parses"));

    let session = project.suggest(&["python-outside-file.txt"], DUPLICATES);
    assert_eq!(verdicts(&session), ["rejected at edits"]);
    assert!(
        failure_message(&session, 0)
            .contains("src/shop/__init__.py, which is not one of the finding's files")
    );

    let mut search_replace = DUPLICATES.to_vec();
    search_replace.extend(["--edit-format", "search-replace"]);
    let session = project.suggest(&["python-deletes-test.txt"], &search_replace);
    assert_eq!(verdicts(&session), ["rejected at edits"]);
    assert!(failure_message(&session, 0).contains("test file tests/test_refunds.py"));

    let session = project.suggest(&["garbage.txt"], DUPLICATES);
    assert_eq!(verdicts(&session), ["rejected at edits"]);
    assert_eq!(project.snapshot(), before);
}

#[test]
fn a_rejected_proposal_is_retried_with_the_failure() {
    let project = Project::new("python");
    let mut args = DUPLICATES.to_vec();
    args.truncate(4);
    args.extend(["--retries", "1"]);
    let session = project.suggest(&["garbage.txt", "python-good.txt"], &args);
    assert_eq!(verdicts(&session), ["rejected at edits", "proven"]);
    assert_eq!(session["proposals"][1]["attempt"], 1);
    assert_eq!(session["summary"]["proven"], 1);
    assert_eq!(session["summary"]["attempted"], 1);
}

#[test]
fn a_rust_refactor_is_proven_committed_and_reverted() {
    let project = Project::new("rust");
    let before = project.snapshot();
    let head = project.git(&["rev-parse", "HEAD"]);
    let session = project.suggest(&["rust-good.txt"], DUPLICATES);
    assert_eq!(verdicts(&session), ["proven"], "{session:#}");
    assert_eq!(session["test_command"], "cargo test");
    assert_eq!(session["baseline"]["passed"], 15);
    assert_eq!(project.snapshot(), before);

    // The diff output is a patch git accepts.
    let replay = write_replay(&["rust-good.txt"]);
    let model = format!("replay:{}", replay.path().display());
    let diff = run(&[
        "suggest",
        project.path().to_str().unwrap(),
        "--no-cache",
        "--format",
        "diff",
        "--model",
        &model,
        "--rule",
        "duplicate-code",
        "--max",
        "1",
        "--retries",
        "0",
    ]);
    assert_eq!(diff.code, 0, "{}", diff.stderr);
    let patch = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(patch.path(), &diff.stdout).unwrap();
    project.git(&["apply", "--check", patch.path().to_str().unwrap()]);

    let applied = run(&[
        "apply",
        project.path().to_str().unwrap(),
        "--all",
        "--commit",
    ]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let log = project.git(&["log", "--format=%s", "-n", "1"]);
    assert_eq!(
        log.trim(),
        "Consolidate duplicated code in src/invoice.rs, src/refund.rs"
    );
    let committed = project.git(&["show", "--name-only", "--format=", "HEAD"]);
    let mut committed: Vec<&str> = committed.lines().collect();
    committed.sort();
    assert_eq!(
        committed,
        ["CHANGELOG.md", "src/invoice.rs", "src/refund.rs"]
    );
    assert_eq!(project.git(&["status", "--porcelain"]), "");

    let undone = run(&["undo", project.path().to_str().unwrap()]);
    assert_eq!(undone.code, 0, "{}", undone.stderr);
    assert_eq!(project.snapshot(), before);
    assert_eq!(project.git(&["status", "--porcelain"]), "");
    let subjects = project.git(&["log", "--format=%s"]);
    assert!(
        subjects.starts_with("Revert refactor-ai apply"),
        "{subjects}"
    );
    assert_eq!(project.git(&["rev-parse", "HEAD~2"]), head);
}

#[test]
fn a_proposal_that_drops_tests_is_rejected() {
    let project = Project::new("rust");
    let before = project.snapshot();
    let mut args = DUPLICATES.to_vec();
    args.extend(["--edit-format", "search-replace"]);
    let session = project.suggest(&["rust-drops-tests.txt"], &args);
    assert_eq!(verdicts(&session), ["rejected at tests"], "{session:#}");
    let message = failure_message(&session, 0);
    assert!(message.contains("tests were removed"), "{message}");
    assert_eq!(project.snapshot(), before);
}

#[test]
fn apply_and_undo_refuse_when_files_changed() {
    let project = Project::new("python");
    let session = project.suggest(&["python-good.txt"], DUPLICATES);
    assert_eq!(verdicts(&session), ["proven"]);
    let orders = project.path().join("src/shop/orders.py");
    let original = std::fs::read_to_string(&orders).unwrap();
    std::fs::write(&orders, format!("{original}\n# edited by hand\n")).unwrap();
    let refused = run(&["apply", project.path().to_str().unwrap(), "--all"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("src/shop/orders.py changed since"),
        "{}",
        refused.stderr
    );
    assert!(!project.path().join("CHANGELOG.md").exists());

    std::fs::write(&orders, &original).unwrap();
    let applied = run(&["apply", project.path().to_str().unwrap(), "--all"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let refunds = project.path().join("src/shop/refunds.py");
    let text = std::fs::read_to_string(&refunds).unwrap();
    std::fs::write(&refunds, format!("{text}# edited after apply\n")).unwrap();
    let refused = run(&["undo", project.path().to_str().unwrap()]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("src/shop/refunds.py changed since"),
        "{}",
        refused.stderr
    );
    assert!(
        std::fs::read_to_string(&refunds)
            .unwrap()
            .ends_with("# edited after apply\n")
    );
}

#[test]
fn sarif_carries_the_proven_fix() {
    let project = Project::new("python");
    let mut args = DUPLICATES.to_vec();
    args.extend(["--format", "sarif"]);
    let replay = write_replay(&["python-good.txt"]);
    let model = format!("replay:{}", replay.path().display());
    let path = project.path().display().to_string();
    let mut argv = vec!["suggest", &path, "--no-cache", "--model", &model];
    argv.extend(args);
    let output = run(&argv);
    assert_eq!(output.code, 0, "{}", output.stderr);
    let sarif: Value = serde_json::from_str(&output.stdout).unwrap();
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["properties"]["verdict"], "proven");
    let changes = result["fixes"][0]["artifactChanges"].as_array().unwrap();
    let uris: Vec<&str> = changes
        .iter()
        .map(|change| change["artifactLocation"]["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, ["src/shop/orders.py", "src/shop/refunds.py"]);
    assert!(!changes[1]["replacements"].as_array().unwrap().is_empty());
}

fn write_replay(answers: &[&str]) -> tempfile::NamedTempFile {
    let texts: Vec<String> = answers
        .iter()
        .map(|name| std::fs::read_to_string(fixtures().join("suggest").join(name)).unwrap())
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_string(&texts).unwrap()).unwrap();
    file
}

/// An apply killed after its first write leaves the journal (written before any change)
/// and files that are each either as they were or as the apply wrote them: `undo` puts
/// every byte back.
#[test]
fn an_apply_cut_short_is_undone_from_its_journal() {
    let project = Project::new("python");
    let before = project.snapshot();
    let session = project.suggest(&["python-good.txt"], DUPLICATES);
    assert_eq!(verdicts(&session), ["proven"]);
    let applied = run(&["apply", project.path().to_str().unwrap(), "--all"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    // Back to the moment after the first write: the later files not yet written, the
    // journal still saying "applying".
    let refunds = "src/shop/refunds.py";
    std::fs::write(project.path().join(refunds), &before[Path::new(refunds)]).unwrap();
    std::fs::remove_file(project.path().join("CHANGELOG.md")).unwrap();
    let journal_dir = project.path().join(".refactor-ai/journal");
    let journal = std::fs::read_dir(&journal_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(text.contains("\"state\": \"applied\""));
    std::fs::write(
        &journal,
        text.replace("\"state\": \"applied\"", "\"state\": \"applying\""),
    )
    .unwrap();
    assert_ne!(project.snapshot(), before);
    let undone = run(&["undo", project.path().to_str().unwrap()]);
    assert_eq!(undone.code, 0, "{}", undone.stderr);
    assert_eq!(project.snapshot(), before);
}

/// Ctrl-C while the tests run: the test command's process group (not the terminal's, so
/// the signal would not reach it) is killed, the session is saved as interrupted with
/// nothing proven, no file of the project changes, and the exit code says so.
#[test]
fn interrupting_suggest_stops_its_test_run_and_changes_no_file() {
    let project = Project::new("python");
    let marker = tempfile::tempdir().unwrap();
    let pid_file = marker.path().join("pid");
    // The test command records its pid, then takes far longer than the test waits.
    std::fs::write(
        project.path().join("refactor-ai.toml"),
        format!(
            "[validate]\ncommand = \"echo $$ > '{}'; exec sleep 300\"\n",
            pid_file.display()
        ),
    )
    .unwrap();
    project.git(&["add", "-A"]);
    project.git(&["commit", "-q", "-m", "slow tests"]);
    let before = project.snapshot();
    let replay = write_replay(&["python-good.txt"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_refactor-ai"))
        .arg("suggest")
        .arg(project.path())
        .args(["--no-cache", "--format", "json", "--rule", "duplicate-code"])
        .arg("--model")
        .arg(format!("replay:{}", replay.path().display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waited = std::time::Instant::now();
    let pid: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            break pid;
        }
        assert!(
            waited.elapsed().as_secs() < 120,
            "the test command never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let sigint = unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(sigint, 0);
    let stopped = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if stopped.elapsed().as_secs() > 60 {
            let _ = child.kill();
            panic!("suggest did not stop within 60 s of Ctrl-C");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the test command (pid {pid}) still runs"
    );
    let session: Value = serde_json::from_str(&String::from_utf8_lossy(&output.stdout)).unwrap();
    assert_eq!(session["interrupted"], true);
    assert!(!verdicts(&session).iter().any(|verdict| verdict == "proven"));
    assert_eq!(project.snapshot(), before);
    let applied = run(&["apply", project.path().to_str().unwrap(), "--all"]);
    assert_eq!(applied.code, 2, "{}", applied.stdout);
}
