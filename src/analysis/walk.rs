//! The walk: which files below the root are analysed.
//!
//! `.gitignore`, `.ignore` and hidden files are honoured through the `ignore` crate;
//! generated and vendored paths are excluded by the config; only files whose extension is
//! in the language table are considered. Reading checks size, binary content and UTF-8, and
//! a file that fails becomes a diagnostic, never an abort.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use ignore::overrides::OverrideBuilder;
use ignore::{WalkBuilder, WalkState};

use crate::analysis::Diagnostic;
use crate::config::Config;
use crate::lang::Language;

/// A file the walk selected, before it is read.
pub(crate) struct Candidate {
    pub(crate) path: PathBuf,
    /// Relative to the root, `/`-separated; what every output shows.
    pub(crate) relative: String,
    pub(crate) language: &'static Language,
}

/// Lists the candidate files below `root` (or `root` itself, if it is a file), sorted by
/// relative path. `found_language` hears of each candidate's language as the walk finds it.
pub(crate) fn candidates(
    root: &Path,
    config: &Config,
    found_language: &(dyn Fn(&'static Language) + Sync),
) -> (Vec<Candidate>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    if root.is_file() {
        let relative = root
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let found = match Language::for_path(root) {
            Some(language) => vec![{
                found_language(language);
                Candidate {
                    path: root.to_path_buf(),
                    relative,
                    language,
                }
            }],
            None => {
                diagnostics.push(Diagnostic::new(
                    relative,
                    "not a Rust or Python file (by extension); nothing to analyse",
                ));
                Vec::new()
            }
        };
        return (found, diagnostics);
    }
    let mut overrides = OverrideBuilder::new(root);
    for pattern in &config.excludes {
        // Patterns were validated when the config was read.
        let _ = overrides.add(&format!("!{pattern}"));
    }
    let mut builder = WalkBuilder::new(root);
    builder.require_git(false);
    if let Ok(overrides) = overrides.build() {
        builder.overrides(overrides);
    }
    // Directories are read in parallel, as ripgrep does: a tree of many small folders
    // (translations, fixtures) costs a dozen system calls per folder.
    builder.threads(rayon::current_num_threads());
    let found = Mutex::new(Vec::new());
    let errors = Mutex::new(Vec::new());
    builder.build_parallel().run(|| {
        Box::new(|entry| {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    lock(&errors).push(Diagnostic::new(
                        error_path(&error, root),
                        format!("cannot walk: {error}"),
                    ));
                    return WalkState::Continue;
                }
            };
            if !entry.file_type().is_some_and(|kind| kind.is_file()) {
                return WalkState::Continue;
            }
            let path = entry.into_path();
            let Some(language) = Language::for_path(&path) else {
                return WalkState::Continue;
            };
            found_language(language);
            lock(&found).push(Candidate {
                relative: relative_path(root, &path),
                path,
                language,
            });
            WalkState::Continue
        })
    });
    let mut found = found.into_inner().unwrap_or_else(PoisonError::into_inner);
    let mut errors = errors.into_inner().unwrap_or_else(PoisonError::into_inner);
    errors.sort_by(|a, b| (&a.path, &a.message).cmp(&(&b.path, &b.message)));
    diagnostics.extend(errors);
    found.sort_by(|a, b| a.relative.cmp(&b.relative));
    (found, diagnostics)
}

/// A lock that a panicking walker thread cannot make unusable (what it pushed stays).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What reading a candidate produced.
pub(crate) enum Read {
    Text(String),
    Skipped(String),
}

/// Reads a candidate, refusing files that are too large, binary or not UTF-8.
pub(crate) fn read(candidate: &Candidate, config: &Config) -> Read {
    match std::fs::metadata(&candidate.path) {
        Ok(metadata) if metadata.len() > config.max_file_size => {
            return Read::Skipped(format!(
                "skipped: {} bytes is over the {}-byte limit (raise `walk.max_file_size` in refactor-ai.toml to analyse it)",
                metadata.len(),
                config.max_file_size
            ));
        }
        Ok(_) => {}
        Err(error) => return Read::Skipped(format!("cannot read: {error}")),
    }
    let bytes = match std::fs::read(&candidate.path) {
        Ok(bytes) => bytes,
        Err(error) => return Read::Skipped(format!("cannot read: {error}")),
    };
    if bytes.iter().take(8192).any(|&byte| byte == 0) {
        return Read::Skipped("skipped: binary file (contains NUL bytes)".to_string());
    }
    match String::from_utf8(bytes) {
        Ok(text) => Read::Text(text),
        Err(error) => Read::Skipped(format!(
            "skipped: not valid UTF-8 (first bad byte at offset {})",
            error.utf8_error().valid_up_to()
        )),
    }
}

pub(crate) fn relative_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<_> = relative
        .components()
        .map(|component| component.as_os_str().to_string_lossy())
        .collect();
    parts.join("/")
}

fn error_path(error: &ignore::Error, root: &Path) -> String {
    match error {
        ignore::Error::WithPath { path, .. } => relative_path(root, path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err, root)
        }
        _ => String::new(),
    }
}
