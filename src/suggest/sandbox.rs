//! Validation in a sandbox: a copy of the project (never the user's tree) where the
//! project's own build and test command runs with a time limit, a scrubbed environment and,
//! where the OS allows, no network. The runner's summary is parsed into counts so that a
//! candidate can be compared with the baseline.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::config::Validate;

/// The test command for a project, and how to run it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TestCommand {
    /// What runs, for messages (`cargo test`, `.venv/bin/python -m unittest discover`).
    pub(crate) display: String,
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    pub(crate) runner: Runner,
    /// Python projects: the interpreter, for the import check.
    pub(crate) python: Option<PathBuf>,
    /// Python projects: directories (relative to the root) that hold the project's
    /// packages, put first on the import path in the sandbox.
    pub(crate) source_roots: Vec<String>,
}

/// Whose summary to parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Runner {
    Cargo,
    Pytest,
    Unittest,
    /// A configured command: only its exit status counts.
    Other,
}

/// Finds the project's test command: `[validate] command` in refactor-ai.toml, else
/// `cargo test` for a Cargo project, else the Python project's own interpreter with
/// pytest or unittest.
pub(crate) fn detect(root: &Path, config: &Validate) -> Result<TestCommand> {
    let source_roots = python_source_roots(root);
    let python = find_python(root);
    if let Some(command) = &config.command {
        return Ok(TestCommand {
            display: command.clone(),
            program: "sh".to_string(),
            args: vec!["-c".to_string(), command.clone()],
            runner: config
                .runner
                .as_deref()
                .map_or(Runner::Other, |runner| match runner {
                    "cargo" => Runner::Cargo,
                    "pytest" => Runner::Pytest,
                    "unittest" => Runner::Unittest,
                    _ => Runner::Other,
                }),
            python,
            source_roots,
        });
    }
    if root.join("Cargo.toml").is_file() {
        return Ok(TestCommand {
            display: "cargo test".to_string(),
            program: "cargo".to_string(),
            args: vec!["test".to_string(), "--color".into(), "never".into()],
            runner: Runner::Cargo,
            python: None,
            source_roots: Vec::new(),
        });
    }
    let is_python = ["pyproject.toml", "setup.py", "setup.cfg"]
        .iter()
        .any(|name| root.join(name).is_file())
        || has_python_tests(root);
    if !is_python {
        bail!(
            "cannot tell how to build and test {}: no Cargo.toml, pyproject.toml, setup.py or \
             tests; set `[validate] command = \"...\"` in refactor-ai.toml",
            root.display()
        );
    }
    let python = python.unwrap_or_else(|| PathBuf::from("python3"));
    let interpreter = python.display().to_string();
    let uses_pytest = project_mentions_pytest(root)
        && Command::new(&python)
            .args(["-c", "import pytest"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
    let (runner, args) = if uses_pytest {
        (
            Runner::Pytest,
            vec![
                "-m".to_string(),
                "pytest".into(),
                "-q".into(),
                "-p".into(),
                "no:cacheprovider".into(),
            ],
        )
    } else {
        let mut args = vec!["-m".to_string(), "unittest".into(), "discover".into()];
        for dir in ["tests", "test"] {
            if root.join(dir).is_dir() {
                args.extend(["-s".to_string(), dir.to_string()]);
                // A test package (with relative imports) is imported from the root.
                if root.join(dir).join("__init__.py").is_file() {
                    args.extend(["-t".to_string(), ".".to_string()]);
                }
                break;
            }
        }
        args.push("-v".into());
        (Runner::Unittest, args)
    };
    Ok(TestCommand {
        display: format!("{interpreter} {}", args.join(" ")),
        program: interpreter,
        args,
        runner,
        python: Some(python),
        source_roots,
    })
}

/// The project's interpreter: `$VIRTUAL_ENV`, then `.venv` or `venv` in the project.
fn find_python(root: &Path) -> Option<PathBuf> {
    let bin = if cfg!(windows) { "Scripts" } else { "bin" };
    let exe = if cfg!(windows) {
        "python.exe"
    } else {
        "python"
    };
    let mut candidates = Vec::new();
    if let Some(env) = std::env::var_os("VIRTUAL_ENV") {
        candidates.push(PathBuf::from(env));
    }
    candidates.push(root.join(".venv"));
    candidates.push(root.join("venv"));
    candidates
        .into_iter()
        .map(|venv| venv.join(bin).join(exe))
        .find(|python| python.is_file())
}

fn has_python_tests(root: &Path) -> bool {
    ["tests", "test"].iter().any(|dir| root.join(dir).is_dir())
}

fn project_mentions_pytest(root: &Path) -> bool {
    if root.join("pytest.ini").is_file() || root.join("conftest.py").is_file() {
        return true;
    }
    for name in ["pyproject.toml", "setup.cfg", "tox.ini"] {
        if std::fs::read_to_string(root.join(name)).is_ok_and(|text| text.contains("pytest")) {
            return true;
        }
    }
    // Test files that import pytest.
    ["tests", "test"].iter().any(|dir| {
        std::fs::read_dir(root.join(dir)).is_ok_and(|entries| {
            entries.flatten().any(|entry| {
                std::fs::read_to_string(entry.path())
                    .is_ok_and(|text| text.contains("import pytest") || text.contains("conftest"))
            })
        })
    })
}

/// `src` if the project uses the src layout, and the root.
pub(crate) fn python_source_roots(root: &Path) -> Vec<String> {
    let mut roots = Vec::new();
    if root.join("src").is_dir() {
        roots.push("src".to_string());
    }
    roots.push(".".to_string());
    roots
}

/// Copies the project to `to`: every file the project's .gitignore keeps, without `.git`,
/// `.refactor-ai` and virtual environments. Returns the number of files copied.
pub(crate) fn copy_project(root: &Path, to: &Path) -> Result<usize> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .require_git(false)
        .parents(false)
        .filter_entry(|entry| {
            let name = entry.file_name();
            let is_dir = entry.file_type().is_some_and(|kind| kind.is_dir());
            !(is_dir
                && (name == ".git"
                    || name == super::session::DIR
                    || entry.path().join("pyvenv.cfg").is_file()))
        })
        .build();
    let mut copied = 0;
    for entry in walker {
        let entry = entry.context("cannot list the project")?;
        let Ok(relative) = entry.path().strip_prefix(root) else {
            continue;
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let target = to.join(relative);
        let kind = entry.file_type();
        if kind.is_some_and(|kind| kind.is_dir()) {
            std::fs::create_dir_all(&target)
                .with_context(|| format!("cannot create {}", target.display()))?;
        } else if kind.is_some_and(|kind| kind.is_symlink()) {
            #[cfg(unix)]
            {
                let link = std::fs::read_link(entry.path())?;
                let _ = std::os::unix::fs::symlink(link, &target);
            }
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| {
                format!(
                    "cannot copy {} to the sandbox {}",
                    entry.path().display(),
                    target.display()
                )
            })?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// How the sandbox is cut off from the network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Isolation {
    /// `unshare -n` (or `unshare -rn` in a user namespace).
    Network(Vec<String>),
    /// Not available here; the reason.
    None(String),
}

impl Isolation {
    /// Probes once whether commands can run without network.
    pub(crate) fn detect() -> Isolation {
        if !cfg!(target_os = "linux") {
            return Isolation::None("network isolation is only implemented on Linux".into());
        }
        for prefix in [&["unshare", "-n"][..], &["unshare", "-rn"][..]] {
            let works = Command::new(prefix[0])
                .args(&prefix[1..])
                .arg("true")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if works {
                return Isolation::Network(prefix.iter().map(|s| s.to_string()).collect());
            }
        }
        Isolation::None(
            "`unshare -n` is not permitted here, so the tests ran with network access".into(),
        )
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Isolation::Network(prefix) => format!("no network ({})", prefix.join(" ")),
            Isolation::None(reason) => reason.clone(),
        }
    }
}

/// What one run of the test command did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct TestRun {
    /// None when killed (time limit) or ended by a signal.
    pub(crate) exit_code: Option<i32>,
    pub(crate) timed_out: bool,
    pub(crate) passed: u32,
    pub(crate) failed: u32,
    /// Every test the runner reported, whatever its outcome.
    pub(crate) total: u32,
    /// Whether the runner's summary was found.
    pub(crate) summary_found: bool,
    pub(crate) seconds: f64,
    pub(crate) log: PathBuf,
    /// Compiler errors, failing tests and assertion lines, for the verdict and the retry.
    pub(crate) failures: Vec<String>,
}

impl TestRun {
    pub(crate) fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }

    pub(crate) fn summary(&self) -> String {
        if self.timed_out {
            return format!("timed out after {:.0} s", self.seconds);
        }
        let status = match self.exit_code {
            Some(code) => format!("exit {code}"),
            None => "killed by a signal".to_string(),
        };
        if self.summary_found {
            format!(
                "{} passed, {} failed of {} tests ({status}, {:.1} s)",
                self.passed, self.failed, self.total, self.seconds
            )
        } else {
            format!("{status}, {:.1} s", self.seconds)
        }
    }
}

/// Everything a run needs that does not change between candidates.
#[derive(Clone, Debug)]
pub(crate) struct RunSpec {
    pub(crate) command: TestCommand,
    pub(crate) isolation: Isolation,
    pub(crate) timeout: Duration,
    /// Shared by every sandbox so that a Rust candidate compiles incrementally.
    pub(crate) cargo_target: PathBuf,
}

/// The environment every sandboxed command gets: only what a build needs.
fn scrubbed_env(spec: &RunSpec, sandbox: &Path) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for key in [
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "TMPDIR",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "RUSTFLAGS",
        "SYSTEMROOT",
    ] {
        if let Ok(value) = std::env::var(key) {
            env.insert(key.to_string(), value);
        }
    }
    env.insert("TERM".into(), "dumb".into());
    env.insert("NO_COLOR".into(), "1".into());
    env.insert("CARGO_TERM_COLOR".into(), "never".into());
    env.insert(
        "CARGO_TARGET_DIR".into(),
        spec.cargo_target.display().to_string(),
    );
    if matches!(spec.isolation, Isolation::Network(_)) {
        env.insert("CARGO_NET_OFFLINE".into(), "true".into());
    }
    env.insert("PYTHONDONTWRITEBYTECODE".into(), "1".into());
    env.insert("PYTHONNOUSERSITE".into(), "1".into());
    if !spec.command.source_roots.is_empty() {
        let separator = if cfg!(windows) { ";" } else { ":" };
        let paths: Vec<String> = spec
            .command
            .source_roots
            .iter()
            .map(|root| sandbox.join(root).display().to_string())
            .collect();
        env.insert("PYTHONPATH".into(), paths.join(separator));
    }
    if let Some(python) = &spec.command.python
        && let Some(venv) = python.parent().and_then(Path::parent)
        && venv.join("pyvenv.cfg").is_file()
    {
        env.insert("VIRTUAL_ENV".into(), venv.display().to_string());
    }
    env
}

/// Runs `program args` in `dir` with the sandbox's environment, output to `log`, killed
/// with its whole process group after `timeout`. Returns (exit code, timed out, seconds).
fn run_logged(
    spec: &RunSpec,
    dir: &Path,
    program: &str,
    args: &[String],
    log: &Path,
    timeout: Duration,
) -> Result<(Option<i32>, bool, f64)> {
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let file =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut command = match &spec.isolation {
        Isolation::Network(prefix) => {
            let mut command = Command::new(&prefix[0]);
            command.args(&prefix[1..]).arg(program).args(args);
            command
        }
        Isolation::None(_) => {
            let mut command = Command::new(program);
            command.args(args);
            command
        }
    };
    command
        .current_dir(dir)
        .env_clear()
        .envs(scrubbed_env(spec, dir))
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone()?))
        .stderr(Stdio::from(file));
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
        // Sandbox runs are the background work: the model generating the next proposal
        // keeps its cores (candle's spinning thread pool collapses when a build takes
        // one), and builds and tests use what it leaves idle.
        // SAFETY: the closure runs in the child between fork and exec and only calls
        // setpriority(2), which is async-signal-safe and touches no memory of ours.
        unsafe {
            command.pre_exec(|| {
                libc::setpriority(libc::PRIO_PROCESS, 0, 19);
                Ok(())
            });
        }
    }
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run `{program}` in the sandbox"))?;
    let pid = child.id();
    let (code, timed_out) = loop {
        match child.try_wait()? {
            Some(status) => break (status.code(), false),
            None if started.elapsed() > timeout => {
                kill_group(pid);
                let _ = child.wait();
                break (None, true);
            }
            // The group is not the terminal's, so Ctrl-C reaches it only this way.
            None if super::interrupt::requested() => {
                kill_group(pid);
                let _ = child.wait();
                bail!("interrupted: `{program}` was stopped");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    // Whatever the tests left running in the background goes too.
    kill_group(pid);
    Ok((code, timed_out, started.elapsed().as_secs_f64()))
}

fn kill_group(pid: u32) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals the process group the child leads;
        // it has no memory-safety preconditions.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// Runs the test command in `sandbox` and parses what it reported.
pub(crate) fn run_tests(spec: &RunSpec, sandbox: &Path, log: &Path) -> Result<TestRun> {
    let (exit_code, timed_out, seconds) = run_logged(
        spec,
        sandbox,
        &spec.command.program,
        &spec.command.args,
        log,
        spec.timeout,
    )?;
    let mut output = String::new();
    if let Ok(mut file) = std::fs::File::open(log) {
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        output = String::from_utf8_lossy(&bytes).into_owned();
    }
    let mut run = parse_summary(spec.command.runner, &output);
    run.exit_code = exit_code;
    run.timed_out = timed_out;
    run.seconds = seconds;
    run.log = log.to_path_buf();
    if run.failures.is_empty() && !run.succeeded() {
        run.failures = tail(&output, 30);
    }
    Ok(run)
}

/// Proves the sandbox's tests import `modules` from the sandbox, not from the user's tree
/// (an editable install points the interpreter at the user's files). Returns, per module,
/// where it was imported from; an error names the first module that is not in the copy.
pub(crate) fn check_imports(
    spec: &RunSpec,
    sandbox: &Path,
    modules: &[String],
    log: &Path,
) -> Result<Vec<(String, String)>> {
    let Some(python) = &spec.command.python else {
        return Ok(Vec::new());
    };
    if modules.is_empty() {
        return Ok(Vec::new());
    }
    let script = "import importlib, sys\nfor name in sys.argv[1:]:\n    module = importlib.import_module(name)\n    print('IMPORTED', name, getattr(module, '__file__', None))\n";
    let mut args = vec!["-c".to_string(), script.to_string()];
    args.extend(modules.iter().cloned());
    let (code, _, _) = run_logged(
        spec,
        sandbox,
        &python.display().to_string(),
        &args,
        log,
        Duration::from_secs(60),
    )?;
    let output = std::fs::read_to_string(log).unwrap_or_default();
    let sandbox_real = sandbox
        .canonicalize()
        .unwrap_or_else(|_| sandbox.to_path_buf());
    let mut found = Vec::new();
    for line in output.lines() {
        let mut parts = line.splitn(3, ' ');
        if parts.next() != Some("IMPORTED") {
            continue;
        }
        let (Some(name), Some(file)) = (parts.next(), parts.next()) else {
            continue;
        };
        let path = Path::new(file);
        let real = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if !real.starts_with(&sandbox_real) {
            bail!(
                "the tests would import `{name}` from {file}, not from the sandbox copy (an \
                 editable install of the project?), so they cannot test the proposal; \
                 nothing was validated"
            );
        }
        found.push((name.to_string(), file.to_string()));
    }
    if code != Some(0) || found.len() != modules.len() {
        bail!(
            "cannot show that the tests import {} from the sandbox: the project's \
             interpreter could not import it there (log: {})",
            modules.join(", "),
            log.display()
        );
    }
    Ok(found)
}

/// The Python module a file is, relative to one of the source roots.
pub(crate) fn python_module(path: &str, source_roots: &[String]) -> Option<String> {
    let stem = path.strip_suffix(".py")?;
    for root in source_roots {
        let relative = if root == "." {
            Some(stem)
        } else {
            stem.strip_prefix(root.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
        };
        if let Some(relative) = relative {
            let module = relative
                .strip_suffix("/__init__")
                .unwrap_or(relative)
                .replace('/', ".");
            if !module.is_empty()
                && module
                    .split('.')
                    .all(|part| !part.is_empty() && !part.contains('-'))
            {
                return Some(module);
            }
        }
    }
    None
}

fn tail(output: &str, lines: usize) -> Vec<String> {
    let all: Vec<&str> = output.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|line| line.to_string())
        .collect()
}

/// The counts in a runner's summary, and the lines that say what failed.
pub(crate) fn parse_summary(runner: Runner, output: &str) -> TestRun {
    let mut run = TestRun::default();
    match runner {
        Runner::Cargo => parse_cargo(output, &mut run),
        Runner::Pytest => parse_pytest(output, &mut run),
        Runner::Unittest => parse_unittest(output, &mut run),
        Runner::Other => {
            // Try each: a configured command is often one of them.
            parse_cargo(output, &mut run);
            if !run.summary_found {
                parse_pytest(output, &mut run);
            }
            if !run.summary_found {
                parse_unittest(output, &mut run);
            }
        }
    }
    run
}

/// The number before `word` in `text` (`3 passed`).
fn count_before(text: &str, word: &str) -> Option<u32> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '=')
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .find(|pair| pair[1].trim_end_matches(['.', ',']) == word)
        .and_then(|pair| pair[0].parse().ok())
}

/// The number after `key` in `text` (`failures=2`).
fn count_after(text: &str, key: &str) -> Option<u32> {
    let at = text.find(key)? + key.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn parse_cargo(output: &str, run: &mut TestRun) {
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("test result: ") {
            run.summary_found = true;
            let passed = count_before(rest, "passed").unwrap_or(0);
            let failed = count_before(rest, "failed").unwrap_or(0);
            let ignored = count_before(rest, "ignored").unwrap_or(0);
            run.passed += passed;
            run.failed += failed;
            run.total += passed + failed + ignored;
        } else {
            // Failing tests, compiler errors with their locations, panics and the two
            // sides of a failed assertion.
            let trimmed = line.trim_start();
            let telling = (line.starts_with("test ") && line.ends_with("... FAILED"))
                || line.starts_with("error")
                || line.starts_with("thread '")
                || trimmed.starts_with("-->")
                || trimmed.starts_with("left:")
                || trimmed.starts_with("right:");
            if telling && run.failures.len() < 40 {
                run.failures.push(line.to_string());
            }
        }
    }
    run.failures.truncate(40);
}

fn parse_pytest(output: &str, run: &mut TestRun) {
    for line in output.lines() {
        let trimmed = line.trim().trim_matches('=').trim();
        let is_summary = (trimmed.contains(" passed")
            || trimmed.contains(" failed")
            || trimmed.contains(" error"))
            && trimmed.contains(" in ")
            && trimmed.ends_with('s');
        if is_summary {
            run.summary_found = true;
            run.passed = count_before(trimmed, "passed").unwrap_or(0);
            run.failed = count_before(trimmed, "failed").unwrap_or(0)
                + count_before(trimmed, "error").unwrap_or(0)
                + count_before(trimmed, "errors").unwrap_or(0);
            run.total = run.passed
                + run.failed
                + count_before(trimmed, "skipped").unwrap_or(0)
                + count_before(trimmed, "xfailed").unwrap_or(0);
        } else if (line.starts_with("FAILED ")
            || line.starts_with("ERROR ")
            || line.starts_with("E "))
            && run.failures.len() < 40
        {
            run.failures.push(line.to_string());
        }
    }
}

fn parse_unittest(output: &str, run: &mut TestRun) {
    let mut ran = None;
    let mut failures = 0;
    let mut errors = 0;
    let mut skipped = 0;
    let mut verdict = false;
    let lines: Vec<&str> = output.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        if let Some(rest) = line.strip_prefix("Ran ") {
            ran = rest.split_whitespace().next().and_then(|n| n.parse().ok());
        } else if line.starts_with("OK") || line.starts_with("FAILED") {
            verdict = true;
            failures = count_after(line, "failures=").unwrap_or(0);
            errors = count_after(line, "errors=").unwrap_or(0);
            skipped = count_after(line, "skipped=").unwrap_or(0);
        } else if (line.starts_with("FAIL: ") || line.starts_with("ERROR: "))
            && run.failures.len() < 40
        {
            run.failures.push(line.to_string());
            // The exception line that ends the traceback.
            if let Some(exception) = lines[index..]
                .iter()
                .skip(2)
                .take_while(|l| !l.starts_with("=====") && !l.starts_with("-----"))
                .filter(|l| !l.starts_with(' ') && !l.trim().is_empty())
                .last()
            {
                run.failures.push(format!("  {exception}"));
            }
        }
    }
    if let (Some(ran), true) = (ran, verdict) {
        run.summary_found = true;
        run.total = ran;
        run.failed = failures + errors;
        run.passed = ran.saturating_sub(failures + errors + skipped);
    } else if let Some(ran) = ran {
        run.summary_found = true;
        run.total = ran;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_summaries_add_up_over_test_binaries() {
        let output = "running 2 tests\ntest a ... ok\ntest b ... FAILED\n\nthread 'b' panicked at src/lib.rs:3:5:\nassertion `left == right` failed\n  left: 1\n right: 2\ntest result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n\nrunning 3 tests\ntest result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s\n";
        let run = parse_summary(Runner::Cargo, output);
        assert!(run.summary_found);
        assert_eq!((run.passed, run.failed, run.total), (4, 1, 6));
        assert!(run.failures.iter().any(|line| line.contains("test b")));
        assert!(run.failures.iter().any(|line| line.contains("left: 1")));
    }

    #[test]
    fn unittest_and_pytest_summaries() {
        let unittest = "test_a (test_x.T.test_a) ... ok\n\n======================================================================\nFAIL: test_b (test_x.T.test_b)\n----------------------------------------------------------------------\nTraceback (most recent call last):\n  File \"t.py\", line 3, in test_b\n    self.assertEqual(1, 2)\nAssertionError: 1 != 2\n\n----------------------------------------------------------------------\nRan 5 tests in 0.001s\n\nFAILED (failures=1, skipped=1)\n";
        let run = parse_summary(Runner::Unittest, unittest);
        assert_eq!((run.passed, run.failed, run.total), (3, 1, 5));
        assert_eq!(run.failures[0], "FAIL: test_b (test_x.T.test_b)");
        assert_eq!(run.failures[1], "  AssertionError: 1 != 2");
        let ok = parse_summary(Runner::Unittest, "Ran 4 tests in 0.1s\n\nOK\n");
        assert_eq!((ok.passed, ok.failed, ok.total), (4, 0, 4));
        let pytest = "..F.\nFAILED tests/test_a.py::test_x - assert 1 == 2\n==== 1 failed, 3 passed, 2 skipped in 0.12s ====\n";
        let run = parse_summary(Runner::Pytest, pytest);
        assert_eq!((run.passed, run.failed, run.total), (3, 1, 6));
        assert_eq!(run.failures.len(), 1);
    }

    #[test]
    fn modules_from_paths() {
        let roots = vec!["src".to_string(), ".".to_string()];
        assert_eq!(
            python_module("src/shop/orders.py", &roots).as_deref(),
            Some("shop.orders")
        );
        assert_eq!(
            python_module("shop/__init__.py", &roots).as_deref(),
            Some("shop")
        );
        assert_eq!(python_module("lib.rs", &roots), None);
    }
}
