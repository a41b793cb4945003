//! The result cache: what `scan` and `metrics` found in each file, keyed by the file's
//! content hash, so that a second run parses only what changed.
//!
//! It lives in the user's cache directory (never in the analysed tree): one JSON file per
//! analysed root and command under `<cache dir>/results/`. A file is valid only for the
//! binary, command and configuration that wrote it (its `fingerprint`); anything else, or
//! anything unreadable, is treated as empty. Writes go to a temporary file that is renamed
//! into place, so concurrent runs never see a torn file; the last writer wins.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::analysis::clones::CloneUnits;
use crate::analysis::metrics::Metrics;
use crate::analysis::{Diagnostic, FileReport, FunctionReport};
use crate::config::Config;
use crate::finding::{Finding, Location};

/// Bump when the stored shape or the meaning of any cached result changes.
const FORMAT: u32 = 7;

/// Cache files nobody wrote for this long are removed when another one is written.
const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The default cache directory: `REFACTOR_AI_CACHE_DIR` (or `REFACTOR_AI_CACHE`), else the
/// platform's user cache directory (`$XDG_CACHE_HOME` or `~/.cache` on Linux,
/// `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows) plus `refactor-ai`.
pub(crate) fn default_dir() -> Option<PathBuf> {
    for variable in ["REFACTOR_AI_CACHE_DIR", "REFACTOR_AI_CACHE"] {
        if let Some(dir) = std::env::var_os(variable).filter(|dir| !dir.is_empty()) {
            return Some(PathBuf::from(dir));
        }
    }
    let base = if cfg!(windows) {
        std::env::var_os("LOCALAPPDATA").map(PathBuf::from)
    } else if cfg!(target_os = "macos") {
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join("Library/Caches"))
    } else {
        std::env::var_os("XDG_CACHE_HOME")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
    };
    base.map(|base| base.join("refactor-ai"))
}

/// One file's results as stored.
#[derive(Serialize, Deserialize)]
struct Entry {
    /// blake3 of the file's bytes, hex.
    hash: String,
    /// `false` when the file did not parse at all (only diagnostics).
    reported: bool,
    functions: Vec<StoredFunction>,
    findings: Vec<Finding>,
    diagnostics: Vec<Diagnostic>,
    clones: CloneUnits,
}

#[derive(Serialize, Deserialize)]
struct StoredFunction {
    name: String,
    qualified_name: String,
    metrics: Metrics,
    location: Location,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    fingerprint: String,
    root: String,
    files: HashMap<String, Entry>,
}

/// The results of earlier runs for one root and command, and where to store this run's.
pub(crate) struct ResultCache {
    path: PathBuf,
    fingerprint: String,
    root: String,
    entries: HashMap<String, Entry>,
}

/// A file's cached results, ready to use.
pub(crate) struct Hit {
    pub(crate) report: Option<FileReport>,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl ResultCache {
    /// Opens the cache for `root` in `dir`. `command` tells `scan` and `metrics` apart.
    /// Never fails: a missing, unreadable or stale cache is an empty one.
    pub(crate) fn open(dir: &Path, root: &Path, command: &str, config: &Config) -> ResultCache {
        let root = std::fs::canonicalize(root)
            .unwrap_or_else(|_| root.to_path_buf())
            .to_string_lossy()
            .into_owned();
        let key = blake3::hash(format!("{command}\0{root}").as_bytes()).to_hex();
        let path = dir.join("results").join(format!("{}.json", &key[..24]));
        let fingerprint = fingerprint(command, config);
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Stored>(&bytes).ok())
            .filter(|stored| stored.fingerprint == fingerprint && stored.root == root)
            .map(|stored| stored.files)
            .unwrap_or_default();
        ResultCache {
            path,
            fingerprint,
            root,
            entries,
        }
    }

    /// Whether nothing usable was stored (a first run, or a changed configuration).
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The stored results for `relative` if its content still hashes to `hash`.
    pub(crate) fn get(
        &self,
        relative: &str,
        hash: &str,
        language: &'static str,
        is_test: bool,
    ) -> Option<Hit> {
        let entry = self
            .entries
            .get(relative)
            .filter(|entry| entry.hash == hash)?;
        let report = entry.reported.then(|| FileReport {
            path: relative.to_string(),
            language,
            functions: entry
                .functions
                .iter()
                .map(|function| FunctionReport {
                    name: function.name.clone(),
                    qualified_name: function.qualified_name.clone(),
                    start_line: function.location.start_line,
                    end_line: function.location.end_line,
                    metrics: function.metrics,
                    location: function.location.clone(),
                })
                .collect(),
            findings: entry.findings.clone(),
            clones: entry.clones.clone(),
            is_test,
        });
        Some(Hit {
            report,
            diagnostics: entry.diagnostics.clone(),
        })
    }

    /// Replaces the stored results with this run's (files no longer present are dropped)
    /// and writes them if anything changed. `results` holds, per file read as text, its
    /// relative path, content hash, report and diagnostics.
    pub(crate) fn store<'a>(
        self,
        results: impl Iterator<Item = (&'a str, &'a str, Option<&'a FileReport>, &'a [Diagnostic])>,
    ) -> Result<(), String> {
        let mut files = HashMap::new();
        let mut changed = false;
        for (relative, hash, report, diagnostics) in results {
            changed |= self
                .entries
                .get(relative)
                .is_none_or(|entry| entry.hash != hash);
            files.insert(
                relative.to_string(),
                Entry {
                    hash: hash.to_string(),
                    reported: report.is_some(),
                    functions: report
                        .map(|report| {
                            report
                                .functions
                                .iter()
                                .map(|function| StoredFunction {
                                    name: function.name.clone(),
                                    qualified_name: function.qualified_name.clone(),
                                    metrics: function.metrics,
                                    location: function.location.clone(),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    findings: report
                        .map(|report| report.findings.clone())
                        .unwrap_or_default(),
                    diagnostics: diagnostics.to_vec(),
                    clones: report
                        .map(|report| report.clones.clone())
                        .unwrap_or_default(),
                },
            );
        }
        changed |= files.len() != self.entries.len();
        if !changed {
            return Ok(());
        }
        let stored = Stored {
            fingerprint: self.fingerprint,
            root: self.root,
            files,
        };
        write_atomically(&self.path, &stored).map_err(|error| {
            format!(
                "cannot write the result cache {}: {error} (the next run will parse every file again; pass --cache-dir DIR or --no-cache)",
                self.path.display()
            )
        })
    }
}

/// The hash of a file's bytes as stored in the cache.
pub(crate) fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// What the results depend on besides the files: this binary (its version, size and
/// modification time, so that a rebuild counts as a new binary), the command and the
/// configuration.
fn fingerprint(command: &str, config: &Config) -> String {
    let binary = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|metadata| {
            let modified = metadata
                .modified()
                .ok()
                .and_then(|time| time.duration_since(SystemTime::UNIX_EPOCH).ok())
                .unwrap_or_default();
            format!("{}:{}", metadata.len(), modified.as_nanos())
        })
        .unwrap_or_default();
    let text = format!(
        "{FORMAT}\0{}\0{binary}\0{command}\0{config:?}",
        env!("CARGO_PKG_VERSION")
    );
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

fn write_atomically(path: &Path, stored: &Stored) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let bytes = serde_json::to_vec(stored).map_err(std::io::Error::other)?;
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&temporary, bytes)?;
    if let Err(error) = std::fs::rename(&temporary, path) {
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    remove_old(dir);
    Ok(())
}

/// Removes cache files that nobody has written for [`MAX_AGE`] (roots that were moved,
/// deleted or scanned once), so the directory does not grow without bound.
fn remove_old(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age > MAX_AGE);
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.ends_with(".json") || name.ends_with(".tmp"));
        if old && ours {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
