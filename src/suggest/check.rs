//! The checks a proposal passes before its sandbox run, in order: its edits touch only
//! allowed files (a), apply to in-memory copies (b), parse without new syntax errors (c)
//! and really improve what the finding measured (d). Each returns a message for the
//! verdict; the first failure ends the proposal.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use tree_sitter::Parser;

use super::edit::{self, Edit, Workspace};
use crate::analysis;
use crate::config::Config;
use crate::finding::{Finding, Kind};
use crate::lang::Language;

/// What the edits may touch.
pub(crate) struct Allowed<'a> {
    pub(crate) finding: &'a Finding,
    /// The project root, to tell existing files from new ones.
    pub(crate) root: &'a Path,
    pub(crate) allow_test_edits: bool,
    pub(crate) new_file_allowed: bool,
}

/// (a): normalises every edit's path and checks it is one of the finding's files (or, if
/// allowed, a new module next to them) and not a test file.
pub(crate) fn paths(edits: &mut [Edit], allowed: &Allowed) -> Result<(), String> {
    let files: BTreeSet<&str> = allowed
        .finding
        .locations
        .iter()
        .map(|location| location.path.as_str())
        .collect();
    for edit in edits.iter_mut() {
        let raw = edit.path().to_string();
        let path = edit::normalize_path(&raw)
            .ok_or_else(|| format!("the edit names `{raw}`, a path outside the project"))?;
        let is_test = Language::for_path(Path::new(&path))
            .is_some_and(|language| language.syntax.is_test_path(Path::new(&path)));
        if is_test && !allowed.allow_test_edits {
            return Err(format!(
                "the edit changes the test file {path}; tests are not edited unless \
                 --allow-test-edits"
            ));
        }
        if !files.contains(path.as_str()) {
            let exists = allowed.root.join(&path).exists();
            let next_to_finding = files.iter().any(|file| {
                Path::new(file).parent() == Path::new(&path).parent()
                    && Path::new(file).extension() == Path::new(&path).extension()
            });
            if exists || !allowed.new_file_allowed || !next_to_finding {
                return Err(format!(
                    "the edit changes {path}, which is not one of the finding's files ({})",
                    files.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        match edit {
            Edit::Replace { path: p, .. } | Edit::Definitions { path: p, .. } => *p = path,
        }
    }
    Ok(())
}

/// (b): applies the edits to copies of `originals` (the contents the session read).
pub(crate) fn apply(
    edits: &[Edit],
    originals: &BTreeMap<String, String>,
    finding: &Finding,
) -> Result<Workspace, String> {
    let mut hints: BTreeMap<String, Vec<std::ops::Range<usize>>> = BTreeMap::new();
    for location in &finding.locations {
        hints
            .entry(location.path.clone())
            .or_default()
            .push(location.start_byte..location.end_byte);
    }
    let mut workspace = Workspace::new();
    for edit in edits {
        let path = edit.path();
        if !workspace.contains_key(path) {
            let original = originals.get(path).cloned();
            let current = original.clone().unwrap_or_default();
            workspace.insert(path.to_string(), (original, current));
        }
    }
    edit::apply(edits, &mut workspace, &hints)?;
    workspace.retain(|_, (before, after)| before.as_deref() != Some(after.as_str()));
    if workspace.is_empty() {
        return Err("the edits change nothing".to_string());
    }
    Ok(workspace)
}

/// The ERROR and MISSING nodes in a parse of `text`, and the line of the first.
fn syntax_errors(language: &Language, text: &str) -> (usize, Option<usize>) {
    let mut parser = Parser::new();
    if parser.set_language(&(language.grammar)()).is_err() {
        return (0, None);
    }
    let Some(tree) = parser.parse(text, None) else {
        return (1, Some(1));
    };
    let mut count = 0;
    let mut first = None;
    let mut cursor = tree.walk();
    let mut descend = true;
    loop {
        let node = cursor.node();
        if descend && (node.is_error() || node.is_missing()) {
            count += 1;
            first.get_or_insert(node.start_position().row + 1);
        }
        if descend && node.has_error() && cursor.goto_first_child() {
            continue;
        }
        if cursor.goto_next_sibling() {
            descend = true;
            continue;
        }
        if !cursor.goto_parent() {
            break;
        }
        descend = false;
    }
    (count, first)
}

/// (c): every changed file parses with no more ERROR or MISSING nodes than before.
pub(crate) fn syntax(workspace: &Workspace) -> Result<(), String> {
    for (path, (before, after)) in workspace {
        let Some(language) = Language::for_path(Path::new(path)) else {
            continue;
        };
        let (old, _) = before
            .as_deref()
            .map_or((0, None), |text| syntax_errors(language, text));
        let (new, line) = syntax_errors(language, after);
        if new > old {
            return Err(format!(
                "{path} no longer parses: {} new syntax error(s), the first on line {}",
                new - old,
                line.unwrap_or(1)
            ));
        }
    }
    Ok(())
}

/// Lines inside duplicate-code findings, over every instance.
fn duplicated_lines(analysis: &analysis::Analysis) -> u32 {
    analysis
        .duplicates
        .iter()
        .flat_map(|finding| &finding.locations)
        .map(|location| location.end_line + 1 - location.start_line)
        .sum()
}

/// (d): re-analyses the finding's files with the proposal applied: a duplicate's
/// duplicated lines must go down, a smell's finding must be gone, and no finding more
/// severe than the target may appear. Returns what it measured, for the verdict.
pub(crate) fn improvement(
    finding: &Finding,
    workspace: &Workspace,
    originals: &BTreeMap<String, String>,
    config: &Config,
) -> Result<String, String> {
    let mut paths: BTreeSet<&str> = finding
        .locations
        .iter()
        .map(|location| location.path.as_str())
        .collect();
    paths.extend(workspace.keys().map(String::as_str));
    let before: Vec<(&str, &str)> = paths
        .iter()
        .filter_map(|path| Some((*path, originals.get(*path)?.as_str())))
        .collect();
    let after: Vec<(&str, &str)> = paths
        .iter()
        .filter_map(|path| match workspace.get(*path) {
            Some((_, text)) => Some((*path, text.as_str())),
            None => Some((*path, originals.get(*path)?.as_str())),
        })
        .collect();
    let old = analysis::analyze_texts(&before, config);
    let new = analysis::analyze_texts(&after, config);
    let key = |f: &Finding| (f.rule.clone(), f.primary().path.clone(), f.function.clone());
    let old_keys: BTreeSet<_> = old.findings().map(key).collect();
    if let Some(worse) = new
        .findings()
        .find(|f| f.severity > finding.severity && !old_keys.contains(&key(f)))
    {
        return Err(format!(
            "the change adds a more severe finding: {} at {}:{} ({})",
            worse.rule,
            worse.primary().path,
            worse.primary().start_line,
            worse.message
        ));
    }
    match finding.kind {
        Kind::Duplicate => {
            let (was, is) = (duplicated_lines(&old), duplicated_lines(&new));
            if is >= was {
                // Say where the finding's copies still are, so that a retry knows what to
                // change (other duplicates in these files are not its business).
                let enclosing =
                    |analysis: &analysis::Analysis, location: &crate::finding::Location| {
                        analysis
                            .files
                            .iter()
                            .find(|file| file.path == location.path)
                            .and_then(|file| {
                                file.functions.iter().find(|f| {
                                    f.start_line <= location.start_line
                                        && location.end_line <= f.end_line
                                })
                            })
                            .map(|f| f.name.clone())
                    };
                let copies: BTreeSet<(String, String)> = finding
                    .locations
                    .iter()
                    .filter_map(|location| {
                        Some((location.path.clone(), enclosing(&old, location)?))
                    })
                    .collect();
                let mut remaining: Vec<String> = Vec::new();
                for location in new.duplicates.iter().flat_map(|d| &d.locations) {
                    let Some(function) = enclosing(&new, location) else {
                        continue;
                    };
                    let text = format!(
                        "`{function}` in {} (lines {}-{})",
                        location.path, location.start_line, location.end_line
                    );
                    if copies.contains(&(location.path.clone(), function))
                        && !remaining.contains(&text)
                    {
                        remaining.push(text);
                    }
                }
                if remaining.is_empty() {
                    remaining.push("the finding's functions".to_string());
                }
                return Err(format!(
                    "the duplication is not reduced ({is} duplicated lines after the change, \
                     {was} before): these still repeat the same code: {}; each copy must call \
                     the shared helper instead",
                    remaining.join(", ")
                ));
            }
            Ok(format!("duplicated lines {was} -> {is}"))
        }
        Kind::Smell => {
            let path = &finding.primary().path;
            let remains = new.findings().find(|f| {
                f.rule == finding.rule
                    && &f.primary().path == path
                    && f.function == finding.function
            });
            if let Some(remaining) = remains {
                return Err(format!(
                    "the finding is still there after the change: {}",
                    remaining.message
                ));
            }
            Ok(format!(
                "{} no longer reported for {}",
                finding.rule,
                finding.function.as_deref().unwrap_or(path)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_syntax_errors_are_caught_old_ones_tolerated() {
        let mut workspace = Workspace::new();
        workspace.insert(
            "a.py".into(),
            (
                Some("def f(:\n    pass\n".into()),
                "def f(:\n    return 1\n".into(),
            ),
        );
        assert!(syntax(&workspace).is_ok());
        workspace.insert(
            "b.py".into(),
            (
                Some("def g():\n    pass\n".into()),
                "def g(\n    pass\n".into(),
            ),
        );
        let error = syntax(&workspace).unwrap_err();
        assert!(error.contains("b.py no longer parses"), "{error}");
    }
}
