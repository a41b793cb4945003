//! `apply` and `undo`: the only code that writes to the user's files.
//!
//! `apply` writes proven proposals of the last session, and only those, after checking
//! that every file is still the content the proposal was validated against. It writes an
//! undo journal (every file's content before, and the hash of every state it will write)
//! before the first change, then each file atomically, a CHANGELOG.md entry, and with
//! `--commit` one git commit per proposal. `undo` restores the state before the last
//! apply byte for byte, and refuses when a file changed since.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::session::{self, Proposal, Session, Verdict};
use crate::finding::{Finding, Kind};

const JOURNAL_FORMAT: u32 = 1;
const CHANGELOG: &str = "CHANGELOG.md";

#[derive(Clone, Debug, Default)]
pub(crate) struct ApplyOptions {
    pub(crate) ids: Vec<String>,
    pub(crate) all: bool,
    pub(crate) commit: bool,
    pub(crate) allow_dirty: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum State {
    /// Written before the first change; files may be partly written.
    Applying,
    Applied,
    /// A signal stopped it between two proposals; the later ones were not written.
    Interrupted,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct JournalFile {
    path: String,
    /// The content before the apply; None if the file did not exist.
    before: Option<String>,
    #[serde(default)]
    mode: Option<u32>,
    /// Every content the apply writes to it, in order (hashes).
    after_hashes: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Journal {
    format: u32,
    created: String,
    session: String,
    state: State,
    proposals: Vec<String>,
    files: Vec<JournalFile>,
    /// The commits `--commit` made, in order.
    commits: Vec<String>,
}

fn journal_dir(root: &Path) -> PathBuf {
    root.join(session::DIR).join("journal")
}

/// The journal files, oldest first.
fn journals(root: &Path) -> Result<Vec<PathBuf>> {
    let dir = journal_dir(root);
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", dir.display()));
        }
    };
    paths.sort();
    Ok(paths)
}

fn save_journal(path: &Path, journal: &Journal) -> Result<()> {
    let text = serde_json::to_string_pretty(journal).context("cannot encode the journal")?;
    session::write_atomic(path, text.as_bytes(), None)
}

/// What one proposal does, in words, for the changelog and the commit.
fn describe(finding: Option<&Finding>, proposal: &Proposal) -> String {
    let files: Vec<&str> = proposal.files.iter().map(|f| f.path.as_str()).collect();
    let Some(finding) = finding else {
        return format!("Refactor {}", files.join(", "));
    };
    let function = finding
        .function
        .as_deref()
        .map(|name| format!("`{name}`"))
        .unwrap_or_else(|| finding.primary().path.clone());
    match (finding.kind, finding.rule.as_str()) {
        (Kind::Duplicate, _) => {
            let mut paths: Vec<&str> = finding
                .locations
                .iter()
                .map(|location| location.path.as_str())
                .collect();
            paths.dedup();
            format!("Consolidate duplicated code in {}", paths.join(", "))
        }
        (_, "cognitive-complexity" | "deep-nesting" | "long-function") => {
            format!("Reduce the complexity of {function}")
        }
        (_, "too-many-parameters") => format!("Shorten the parameter list of {function}"),
        (_, rule) => format!("Fix {rule} in {function}"),
    }
}

fn validation_summary(session: &Session, proposal: &Proposal) -> String {
    let command = session.test_command.as_deref().unwrap_or("the tests");
    match (&session.baseline, &proposal.tests) {
        (Some(before), Some(after)) if before.summary_found && after.summary_found => format!(
            "`{command}`: {} of {} tests passed before, {} of {} after",
            before.passed, before.total, after.passed, after.total
        ),
        _ => format!("`{command}` passed before and after"),
    }
}

/// The changelog entry (one Markdown list item) for a proposal.
fn changelog_entry(session: &Session, proposal: &Proposal, when: &str) -> String {
    let finding = session.findings.iter().find(|f| f.id == proposal.finding);
    let why = finding
        .map(|f| format!(" ({}: {})", f.rule, f.message))
        .unwrap_or_default();
    let files: Vec<String> = proposal
        .files
        .iter()
        .map(|f| format!("`{}`", f.path))
        .collect();
    format!(
        "- {}{why}. Files: {}. Validated with {}; proposed by {}. Applied {when} by refactor-ai (finding {}).\n",
        describe(finding, proposal),
        files.join(", "),
        validation_summary(session, proposal),
        proposal.model,
        proposal.finding,
    )
}

/// `text` with `entry` added under `## [Unreleased]` / `### Changed` (Keep a Changelog),
/// creating whichever is missing.
pub(crate) fn add_changelog_entry(text: Option<&str>, entry: &str) -> String {
    let Some(text) = text else {
        return format!(
            "# Changelog\n\nAll notable changes to this project are documented in this file.\n\n\
             The format is based on [Keep a Changelog](https://keepachangelog.com/en/1.1.0/).\n\n\
             ## [Unreleased]\n\n### Changed\n\n{entry}"
        );
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let offset = |index: usize| -> usize { lines[..index].iter().map(|l| l.len()).sum() };
    let is_h2 = |line: &str| line.starts_with("## ");
    let unreleased = lines
        .iter()
        .position(|line| is_h2(line) && line.to_ascii_lowercase().contains("unreleased"));
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    match unreleased {
        Some(start) => {
            let end = lines[start + 1..]
                .iter()
                .position(|line| is_h2(line))
                .map_or(lines.len(), |n| start + 1 + n);
            let changed = lines[start + 1..end]
                .iter()
                .position(|line| line.trim().eq_ignore_ascii_case("### changed"))
                .map(|n| start + 1 + n);
            match changed {
                Some(heading) => {
                    // After the heading and its blank line, before the first item.
                    let mut at = heading + 1;
                    while at < end && lines[at].trim().is_empty() {
                        at += 1;
                    }
                    let prefix = if at == heading + 1 { "\n" } else { "" };
                    out.insert_str(offset(at), &format!("{prefix}{entry}"));
                }
                None => {
                    let at = start + 1;
                    out.insert_str(offset(at), &format!("\n### Changed\n\n{entry}"));
                }
            }
        }
        None => {
            let first_h2 = lines.iter().position(|line| is_h2(line));
            let section = format!("## [Unreleased]\n\n### Changed\n\n{entry}\n");
            match first_h2 {
                Some(at) => out.insert_str(offset(at), &section),
                None => {
                    if !out.is_empty() && !out.ends_with("\n\n") {
                        out.push('\n');
                    }
                    out.push_str(&section);
                }
            }
        }
    }
    out
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn mode_of(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .ok()
            .map(|meta| meta.permissions().mode())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn git(root: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .context("cannot run git")?;
    if !output.status.success() {
        bail!(
            "`git {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// What `apply` did.
pub(crate) struct Applied {
    /// A signal stopped the apply between two proposals.
    pub(crate) interrupted: bool,
    /// The proposals written, in order.
    pub(crate) proposals: Vec<String>,
    pub(crate) files: Vec<String>,
    pub(crate) commits: Vec<String>,
}

/// Applies proven proposals of the last session.
pub(crate) fn apply(root: &Path, options: &ApplyOptions, out: &mut dyn Write) -> Result<Applied> {
    let session = Session::load(root)?;
    let proven: Vec<&Proposal> = session.proven().collect();
    let selected: Vec<&Proposal> = if options.all {
        proven.clone()
    } else if options.ids.is_empty() {
        bail!("say which proposals to apply: --id ID (repeatable) or --all");
    } else {
        let mut selected = Vec::new();
        for id in &options.ids {
            let found = session
                .proposals
                .iter()
                .filter(|p| &p.id == id || &p.finding == id)
                .collect::<Vec<_>>();
            if found.is_empty() {
                bail!("the last session has no proposal `{id}`");
            }
            match found.iter().find(|p| p.verdict == Verdict::Proven) {
                Some(proposal) => selected.push(*proposal),
                None => {
                    let verdict = found.last().map_or("rejected", |p| p.verdict.as_str());
                    bail!(
                        "proposal `{id}` was not proven ({verdict}); only proven proposals are applied. Proven: {}",
                        if proven.is_empty() {
                            "none".to_string()
                        } else {
                            proven
                                .iter()
                                .map(|p| p.id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    );
                }
            }
        }
        selected
    };
    if selected.is_empty() {
        bail!("the last session proved no proposal; nothing to apply");
    }
    // Every file must be what the proposal was validated against, and no two proposals
    // may change the same file (the second was not validated on top of the first).
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for proposal in &selected {
        for file in &proposal.files {
            if let Some(other) = seen.insert(&file.path, &proposal.id) {
                bail!(
                    "proposals {other} and {} both change {}; apply one, then run `refactor-ai suggest` again",
                    proposal.id,
                    file.path
                );
            }
            let current = read_optional(&root.join(&file.path))?;
            let current_hash = current
                .as_deref()
                .map(|text| session::hash(text.as_bytes()));
            if current_hash != file.before_hash {
                let what = match (&current_hash, &file.before_hash) {
                    (None, _) => "was deleted".to_string(),
                    (Some(_), None) => "now exists (the proposal creates it)".to_string(),
                    _ => "changed".to_string(),
                };
                bail!(
                    "{} {what} since `suggest` validated proposal {}; nothing was applied. Run `refactor-ai suggest` again",
                    file.path,
                    proposal.id
                );
            }
        }
    }
    if options.commit {
        git(root, &["rev-parse", "--is-inside-work-tree"])
            .context("--commit needs a git work tree")?;
        let staged = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(["diff", "--cached", "--quiet"])
            .status()
            .context("cannot run git")?;
        if !staged.success() && !options.allow_dirty {
            bail!(
                "the git index has staged changes; commit or unstage them first (or pass \
                 --allow-dirty: refactor-ai commits only the files it changes)"
            );
        }
    }
    // The plan: every state each file goes through.
    let when = crate::time::utc_now_rfc3339();
    let changelog_path = root.join(CHANGELOG);
    let mut changelog = read_optional(&changelog_path)?;
    let mut journal_files: BTreeMap<String, JournalFile> = BTreeMap::new();
    let mut steps: Vec<(&Proposal, Vec<(String, String)>)> = Vec::new();
    for proposal in &selected {
        let mut writes: Vec<(String, String)> = proposal
            .files
            .iter()
            .map(|file| (file.path.clone(), file.after.clone()))
            .collect();
        let entry = changelog_entry(&session, proposal, &when);
        let next = add_changelog_entry(changelog.as_deref(), &entry);
        writes.push((CHANGELOG.to_string(), next.clone()));
        changelog = Some(next);
        for (path, text) in &writes {
            let absolute = root.join(path);
            let record = match journal_files.entry(path.clone()) {
                std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::btree_map::Entry::Vacant(entry) => entry.insert(JournalFile {
                    path: path.clone(),
                    before: read_optional(&absolute)?,
                    mode: mode_of(&absolute),
                    after_hashes: Vec::new(),
                }),
            };
            record.after_hashes.push(session::hash(text.as_bytes()));
        }
        steps.push((proposal, writes));
    }
    let mut journal = Journal {
        format: JOURNAL_FORMAT,
        created: when.clone(),
        session: session.id.clone(),
        state: State::Applying,
        proposals: selected.iter().map(|p| p.id.clone()).collect(),
        files: journal_files.into_values().collect(),
        commits: Vec::new(),
    };
    let dir = journal_dir(root);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    session::ensure_dir(root)?;
    let number = journals(root)?
        .last()
        .and_then(|path| path.file_stem()?.to_str()?.parse::<u32>().ok())
        .map_or(1, |n| n + 1);
    let journal_path = dir.join(format!("{number:06}.json"));
    // The journal is on disk before the first change.
    save_journal(&journal_path, &journal)?;
    // A signal from here on lets the proposal being written finish, then stops; the
    // journal restores whatever was written.
    super::interrupt::install();
    let mut files = BTreeSet::new();
    let mut stopped = false;
    let mut applied = Vec::new();
    for (proposal, writes) in &steps {
        if super::interrupt::requested() {
            writeln!(
                out,
                "interrupted: {} and later proposals were not applied; `refactor-ai undo` \
                 reverts what was",
                proposal.id
            )?;
            stopped = true;
            break;
        }
        for (path, text) in writes {
            let absolute = root.join(path);
            if let Some(parent) = absolute.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            let mode = journal
                .files
                .iter()
                .find(|file| &file.path == path)
                .and_then(|file| file.mode);
            session::write_atomic(&absolute, text.as_bytes(), mode)?;
            files.insert(path.clone());
        }
        writeln!(
            out,
            "applied {} ({} file(s))",
            proposal.id,
            writes.len() - 1
        )?;
        if options.commit {
            let paths: Vec<&str> = writes.iter().map(|(path, _)| path.as_str()).collect();
            let mut add = vec!["add", "--"];
            add.extend(&paths);
            git(root, &add)?;
            let finding = session.findings.iter().find(|f| f.id == proposal.finding);
            let message = format!(
                "{}\n\n{}\n\nValidated with {}.\nProposed by {} and applied by refactor-ai (finding {}).\n",
                describe(finding, proposal),
                finding.map_or(String::new(), |f| format!("{}: {}", f.rule, f.message)),
                validation_summary(&session, proposal),
                proposal.model,
                proposal.finding
            );
            let mut commit = vec!["commit", "--quiet", "--no-verify", "-m", &message, "--"];
            commit.extend(&paths);
            git(root, &commit)?;
            let sha = git(root, &["rev-parse", "HEAD"])?;
            writeln!(out, "committed {}", &sha[..sha.len().min(12)])?;
            journal.commits.push(sha);
            save_journal(&journal_path, &journal)?;
        }
        applied.push(proposal.id.clone());
    }
    journal.state = if stopped {
        State::Interrupted
    } else {
        State::Applied
    };
    save_journal(&journal_path, &journal)?;
    Ok(Applied {
        interrupted: stopped,
        proposals: applied,
        files: files.into_iter().collect(),
        commits: journal.commits.clone(),
    })
}

/// Undoes the last `steps` applies, newest first.
pub(crate) fn undo(root: &Path, steps: usize, out: &mut dyn Write) -> Result<()> {
    // A signal waits until the restore is complete (a second one ends the process).
    super::interrupt::install();
    let paths = journals(root)?;
    if paths.is_empty() {
        bail!(
            "nothing to undo: no apply is recorded in {}",
            journal_dir(root).display()
        );
    }
    if steps > paths.len() {
        bail!(
            "only {} apply step(s) are recorded; nothing was undone",
            paths.len()
        );
    }
    for path in paths.iter().rev().take(steps) {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the journal {}", path.display()))?;
        let journal: Journal = serde_json::from_str(&text)
            .with_context(|| format!("the journal {} is damaged", path.display()))?;
        if journal.format != JOURNAL_FORMAT {
            bail!(
                "{} was written by another version of refactor-ai",
                path.display()
            );
        }
        // Every file must be as the apply left it (or not yet written).
        for file in &journal.files {
            let current = read_optional(&root.join(&file.path))?;
            let current_hash = current
                .as_deref()
                .map(|text| session::hash(text.as_bytes()));
            let untouched = current == file.before;
            let ours = current_hash
                .as_ref()
                .is_some_and(|hash| file.after_hashes.contains(hash));
            if !untouched && !ours {
                bail!(
                    "{} changed since refactor-ai applied {}; undo would lose those changes, so nothing was undone",
                    file.path,
                    journal.proposals.join(", ")
                );
            }
        }
        for file in &journal.files {
            let absolute = root.join(&file.path);
            match &file.before {
                Some(text) => session::write_atomic(&absolute, text.as_bytes(), file.mode)?,
                None => match std::fs::remove_file(&absolute) {
                    Ok(()) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => {
                        return Err(error)
                            .with_context(|| format!("cannot remove {}", absolute.display()));
                    }
                },
            }
        }
        if !journal.commits.is_empty() {
            let paths: Vec<&str> = journal.files.iter().map(|f| f.path.as_str()).collect();
            let mut add = vec!["add", "-A", "--"];
            add.extend(&paths);
            git(root, &add)?;
            let message = format!(
                "Revert refactor-ai apply of {}\n\nThis reverts commit(s) {}.\n",
                journal.proposals.join(", "),
                journal.commits.join(", ")
            );
            let mut commit = vec!["commit", "--quiet", "--no-verify", "-m", &message, "--"];
            commit.extend(&paths);
            git(root, &commit)?;
            writeln!(out, "committed the revert")?;
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the journal {}", path.display()))?;
        writeln!(
            out,
            "undid {} ({} file(s) restored)",
            journal.proposals.join(", "),
            journal.files.len()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changelog_entries_land_under_unreleased_changed() {
        let created = add_changelog_entry(None, "- one\n");
        assert!(created.starts_with("# Changelog\n"));
        assert!(created.ends_with("## [Unreleased]\n\n### Changed\n\n- one\n"));
        let again = add_changelog_entry(Some(&created), "- two\n");
        assert!(again.ends_with("### Changed\n\n- two\n- one\n"), "{again}");
        let released = "# Changelog\n\n## [1.0.0] - 2026-01-01\n\n- old\n";
        let added = add_changelog_entry(Some(released), "- new\n");
        assert_eq!(
            added,
            "# Changelog\n\n## [Unreleased]\n\n### Changed\n\n- new\n\n## [1.0.0] - 2026-01-01\n\n- old\n"
        );
        let unreleased_added = "# Changelog\n\n## [Unreleased]\n\n### Added\n\n- x\n\n## [1.0.0]\n";
        let added = add_changelog_entry(Some(unreleased_added), "- new\n");
        assert_eq!(
            added,
            "# Changelog\n\n## [Unreleased]\n\n### Changed\n\n- new\n\n### Added\n\n- x\n\n## [1.0.0]\n"
        );
    }
}
