//! What one `suggest` run produced, saved under `.refactor-ai/` in the project so that
//! `apply` applies exactly what was proven, and nothing else.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::edit::{Edit, EditFormat};
use super::sandbox::TestRun;
use crate::finding::Finding;

/// The project directory refactor-ai keeps its sessions, logs and undo journal in.
pub(crate) const DIR: &str = ".refactor-ai";
const SESSION_FILE: &str = "session.json";
const FORMAT: u32 = 1;

/// Which check a verdict is about, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CheckKind {
    /// The model answered at all (generation errors end here).
    Generate,
    /// (a) the answer parses into edits of allowed files.
    Edits,
    /// (b) the edits apply to the files as they were read.
    Apply,
    /// (c) the changed files parse without new syntax errors.
    Syntax,
    /// (d) re-analysis shows the finding resolved or reduced.
    Improve,
    /// (e) the project's build and tests pass in a sandbox, against the baseline.
    Tests,
}

impl CheckKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CheckKind::Generate => "generate",
            CheckKind::Edits => "edits",
            CheckKind::Apply => "apply",
            CheckKind::Syntax => "syntax",
            CheckKind::Improve => "improve",
            CheckKind::Tests => "tests",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Check {
    pub(crate) check: CheckKind,
    pub(crate) passed: bool,
    pub(crate) message: String,
    pub(crate) seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) log: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Verdict {
    /// Every check passed, tests included: `apply` may write it.
    Proven,
    /// Checks (a)-(d) passed but the tests could not be run against a passing baseline;
    /// never applied.
    Unvalidated,
    /// A check failed; `checks` says which.
    Rejected,
}

impl Verdict {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verdict::Proven => "proven",
            Verdict::Unvalidated => "unvalidated",
            Verdict::Rejected => "rejected",
        }
    }
}

/// One file a proposal changes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FileChange {
    pub(crate) path: String,
    /// The hash of the content the proposal was made and validated against; None for a
    /// new file.
    pub(crate) before_hash: Option<String>,
    pub(crate) after: String,
}

/// How the model did on one request.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct GenerationStats {
    pub(crate) prompt_tokens: usize,
    /// Prompt tokens shared with the previous request, whose cached keys and values were
    /// reused instead of computed again.
    #[serde(default)]
    pub(crate) reused_tokens: usize,
    pub(crate) tokens: usize,
    /// The whole request, and its two phases.
    pub(crate) seconds: f64,
    #[serde(default)]
    pub(crate) prompt_seconds: f64,
    #[serde(default)]
    pub(crate) generation_seconds: f64,
    pub(crate) stop_reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Proposal {
    /// `<finding id>` for the first attempt, `<finding id>.<n>` for retries.
    pub(crate) id: String,
    pub(crate) finding: String,
    pub(crate) attempt: u32,
    pub(crate) model: String,
    pub(crate) edit_format: EditFormat,
    /// The conversation the model answered: system, task, and for a retry the earlier
    /// answer and the failure.
    pub(crate) messages: Vec<crate::llm::Message>,
    pub(crate) answer: String,
    pub(crate) edits: Vec<Edit>,
    pub(crate) files: Vec<FileChange>,
    /// A unified diff of `files`, `git apply`-able from the project root.
    pub(crate) diff: String,
    pub(crate) checks: Vec<Check>,
    pub(crate) verdict: Verdict,
    pub(crate) generation: GenerationStats,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) tests: Option<TestRun>,
}

impl Proposal {
    /// The check that failed, if one did.
    pub(crate) fn failed_check(&self) -> Option<&Check> {
        self.checks.iter().find(|check| !check.passed)
    }

    /// Whether the proposal got past `kind`.
    pub(crate) fn passed(&self, kind: CheckKind) -> bool {
        self.checks
            .iter()
            .any(|check| check.check == kind && check.passed)
    }
}

/// The figures the yield benchmark reads: per finding, how far its best attempt got.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Summary {
    pub(crate) attempted: usize,
    pub(crate) attempted_duplicates: usize,
    pub(crate) parsed: usize,
    pub(crate) applied: usize,
    pub(crate) parses: usize,
    pub(crate) improved: usize,
    pub(crate) proven: usize,
    pub(crate) proven_duplicates: usize,
    pub(crate) unvalidated: usize,
    pub(crate) proposals: usize,
    pub(crate) seconds: f64,
    pub(crate) seconds_per_finding: f64,
    pub(crate) generation_seconds: f64,
    pub(crate) generated_tokens: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Session {
    pub(crate) format: u32,
    pub(crate) id: String,
    /// UTC, RFC 3339.
    pub(crate) created: String,
    pub(crate) root: PathBuf,
    pub(crate) model: String,
    pub(crate) edit_format: EditFormat,
    pub(crate) test_command: Option<String>,
    pub(crate) isolation: String,
    /// Why proposals could not be validated, if they could not.
    pub(crate) validation_problem: Option<String>,
    pub(crate) baseline: Option<TestRun>,
    pub(crate) findings: Vec<Finding>,
    pub(crate) proposals: Vec<Proposal>,
    /// The hash of every file the session read, as it read it.
    pub(crate) files_read: BTreeMap<String, String>,
    pub(crate) summary: Summary,
    /// A signal stopped the run before every selected finding was attempted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) interrupted: bool,
    /// The contents behind `files_read`, for reports made in the same process.
    #[serde(skip)]
    pub(crate) sources: BTreeMap<String, String>,
}

impl Session {
    pub(crate) fn new_id() -> String {
        let now = crate::time::utc_now_rfc3339();
        now.replace([':', '-'], "")
            .replace('T', "-")
            .replace('Z', "")
    }

    /// The proposals `apply` may write.
    pub(crate) fn proven(&self) -> impl Iterator<Item = &Proposal> {
        self.proposals
            .iter()
            .filter(|proposal| proposal.verdict == Verdict::Proven)
    }

    pub(crate) fn summarize(&mut self, seconds: f64) {
        let mut summary = Summary {
            proposals: self.proposals.len(),
            seconds,
            ..Summary::default()
        };
        for finding in &self.findings {
            let attempts: Vec<&Proposal> = self
                .proposals
                .iter()
                .filter(|proposal| proposal.finding == finding.id)
                .collect();
            // Every attempted finding has a proposal, even one whose prompt failed.
            if attempts.is_empty() {
                continue;
            }
            summary.attempted += 1;
            let reached = |kind: CheckKind| attempts.iter().any(|p| p.passed(kind));
            let is_duplicate = finding.kind == crate::finding::Kind::Duplicate;
            summary.attempted_duplicates += usize::from(is_duplicate);
            summary.parsed += usize::from(reached(CheckKind::Edits));
            summary.applied += usize::from(reached(CheckKind::Apply));
            summary.parses += usize::from(reached(CheckKind::Syntax));
            summary.improved += usize::from(reached(CheckKind::Improve));
            let proven = attempts.iter().any(|p| p.verdict == Verdict::Proven);
            summary.proven += usize::from(proven);
            summary.proven_duplicates += usize::from(proven && is_duplicate);
            summary.unvalidated +=
                usize::from(!proven && attempts.iter().any(|p| p.verdict == Verdict::Unvalidated));
        }
        for proposal in &self.proposals {
            summary.generation_seconds += proposal.generation.generation_seconds;
            summary.generated_tokens += proposal.generation.tokens;
        }
        summary.seconds_per_finding = if summary.attempted == 0 {
            0.0
        } else {
            seconds / summary.attempted as f64
        };
        self.summary = summary;
    }

    pub(crate) fn path(root: &Path) -> PathBuf {
        root.join(DIR).join(SESSION_FILE)
    }

    /// Writes the session atomically (a half-written session would let `apply` read
    /// garbage).
    pub(crate) fn save(&self, root: &Path) -> Result<PathBuf> {
        let dir = ensure_dir(root)?;
        let path = dir.join(SESSION_FILE);
        let text = serde_json::to_string_pretty(self).context("cannot encode the session")?;
        write_atomic(&path, text.as_bytes(), None)?;
        Ok(path)
    }

    pub(crate) fn load(root: &Path) -> Result<Session> {
        let path = Session::path(root);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
                "no suggest session in {}: run `refactor-ai suggest` first",
                root.display()
            ),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        let session: Session = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a session this version can read; run `refactor-ai suggest` again",
                path.display()
            )
        })?;
        if session.format != FORMAT {
            bail!(
                "{} was written by another version of refactor-ai; run `refactor-ai suggest` again",
                path.display()
            );
        }
        Ok(session)
    }

    pub(crate) const FORMAT: u32 = FORMAT;
}

/// Creates `.refactor-ai/` (and, in a git work tree, lists it in `.git/info/exclude`).
pub(crate) fn ensure_dir(root: &Path) -> Result<PathBuf> {
    let dir = root.join(DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let info = root.join(".git").join("info");
    if root.join(".git").is_dir() {
        let exclude = info.join("exclude");
        let listed = std::fs::read_to_string(&exclude)
            .is_ok_and(|text| text.lines().any(|line| line.trim() == "/.refactor-ai/"));
        if !listed {
            std::fs::create_dir_all(&info)
                .with_context(|| format!("cannot create {}", info.display()))?;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&exclude)
                .with_context(|| format!("cannot write {}", exclude.display()))?;
            let text = std::fs::read_to_string(&exclude).unwrap_or_default();
            let separator = if text.is_empty() || text.ends_with('\n') {
                ""
            } else {
                "\n"
            };
            write!(
                file,
                "{separator}# refactor-ai sessions, logs and undo journal\n/.refactor-ai/\n"
            )?;
        }
    }
    Ok(dir)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename,
/// so readers see the old content or the new, never a mix. `mode` keeps a file's
/// permissions (Unix).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".refactor-ai-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the permissions of {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    temp.persist(path)
        .map_err(|error| error.error)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// The hash `files_read` and `before_hash` hold.
pub(crate) fn hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}
