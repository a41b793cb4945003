//! Installed model files: `<cache dir>/models/<file>`, each with a `<file>.verified` record
//! of the size, modification time and sha256 it had when it was last hashed, so that a
//! second `pull` is instant and `verify` knows what to compare with.
//!
//! Files only ever appear by rename from a `.<file>.partial` in the same directory, after
//! their hash was checked: a crash or an interrupted download leaves no half file under
//! the real name, and the next pull removes the partial and starts again.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::catalog::ModelEntry;

/// Where installed models live.
pub(crate) struct Store {
    dir: PathBuf,
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Verified {
    size: u64,
    modified_nanos: u128,
    sha256: String,
}

/// What is on disk for one catalog model.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Installed {
    Missing,
    /// Present, and unchanged since its hash was checked.
    Verified(PathBuf),
    /// Present, but changed since (or never) checked: `verify` says whether it is good.
    Unverified(PathBuf),
}

impl Store {
    pub(crate) fn new(cache_dir: &Path) -> Store {
        Store {
            dir: cache_dir.join("models"),
        }
    }

    pub(crate) fn path(&self, model: &ModelEntry) -> PathBuf {
        self.dir.join(&model.file)
    }

    pub(crate) fn partial_path(&self, model: &ModelEntry) -> PathBuf {
        self.dir.join(format!(".{}.partial", model.file))
    }

    fn record_path(&self, model: &ModelEntry) -> PathBuf {
        self.dir.join(format!("{}.verified", model.file))
    }

    pub(crate) fn installed(&self, model: &ModelEntry) -> Installed {
        let path = self.path(model);
        let Ok(metadata) = std::fs::metadata(&path) else {
            return Installed::Missing;
        };
        let record = std::fs::read_to_string(self.record_path(model))
            .ok()
            .and_then(|text| serde_json::from_str::<Verified>(&text).ok());
        let unchanged = record.is_some_and(|record| {
            record.size == metadata.len()
                && record.modified_nanos == modified_nanos(&metadata)
                && model
                    .sha256
                    .as_deref()
                    .is_none_or(|expected| expected.eq_ignore_ascii_case(&record.sha256))
        });
        if unchanged {
            Installed::Verified(path)
        } else {
            Installed::Unverified(path)
        }
    }

    /// Moves a checked `partial` file into place and records its hash.
    pub(crate) fn install(
        &self,
        model: &ModelEntry,
        partial: &Path,
        sha256: &str,
    ) -> std::io::Result<PathBuf> {
        let path = self.path(model);
        std::fs::rename(partial, &path)?;
        self.record(model, sha256)?;
        Ok(path)
    }

    /// Records the hash of the installed file as it is now.
    pub(crate) fn record(&self, model: &ModelEntry, sha256: &str) -> std::io::Result<()> {
        let metadata = std::fs::metadata(self.path(model))?;
        let record = Verified {
            size: metadata.len(),
            modified_nanos: modified_nanos(&metadata),
            sha256: sha256.to_string(),
        };
        let text = serde_json::to_string(&record).map_err(std::io::Error::other)?;
        std::fs::write(self.record_path(model), text)
    }

    /// Removes the model's file, its record and any partial download. Returns whether
    /// anything was there.
    pub(crate) fn remove(&self, model: &ModelEntry) -> std::io::Result<bool> {
        let mut removed = false;
        for path in [
            self.path(model),
            self.record_path(model),
            self.partial_path(model),
        ] {
            match std::fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
        // Copies the loader converted to faster quantizations (`llm/convert.rs`).
        let stem = Path::new(&model.file)
            .file_stem()
            .map(|stem| format!("{}.", stem.to_string_lossy()))
            .unwrap_or_default();
        if let Ok(entries) = std::fs::read_dir(self.dir.join("converted")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&stem) && name.ends_with(".q8_0.gguf") {
                    std::fs::remove_file(entry.path())?;
                }
            }
        }
        Ok(removed)
    }

    pub(crate) fn ensure_dir(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)
    }
}

fn modified_nanos(metadata: &std::fs::Metadata) -> u128 {
    metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |duration| duration.as_nanos())
}

/// The sha256 of a file, hex, reporting progress in bytes.
pub(crate) fn sha256_file(path: &Path, mut progress: impl FnMut(u64)) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        progress(read as u64);
    }
    Ok(hex(&hasher.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// What `verify` found for one installed file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Check {
    Good,
    /// Shorter or longer than the catalog says (an interrupted copy, a truncated disk).
    WrongSize {
        expected: u64,
        actual: u64,
    },
    WrongHash {
        expected: String,
        actual: String,
    },
    /// The catalog has no hash for this model: only the size could be checked.
    NoHashToCompare,
}

/// Hashes the installed file of `model` again and compares it with the catalog.
pub(crate) fn check(
    model: &ModelEntry,
    path: &Path,
    progress: impl FnMut(u64),
) -> std::io::Result<Check> {
    let actual_size = std::fs::metadata(path)?.len();
    if !model.size_is_estimate && actual_size != model.size {
        return Ok(Check::WrongSize {
            expected: model.size,
            actual: actual_size,
        });
    }
    let actual = sha256_file(path, progress)?;
    Ok(match &model.sha256 {
        None => Check::NoHashToCompare,
        Some(expected) if expected.eq_ignore_ascii_case(&actual) => Check::Good,
        Some(expected) => Check::WrongHash {
            expected: expected.clone(),
            actual,
        },
    })
}
