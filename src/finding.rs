//! Findings: what `scan` reports, in one shape for every output format.

use serde::{Deserialize, Serialize};

use crate::analysis::metrics::Metrics;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Severity> {
        match text {
            "note" => Some(Severity::Note),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Smell,
    Duplicate,
}

/// A span of one file. Lines and columns are 1-based and inclusive; bytes are 0-based,
/// end exclusive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// Relative to the scanned root, with `/` separators.
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub start_column: u32,
    pub end_column: u32,
    pub start_byte: usize,
    pub end_byte: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finding {
    /// Stable across runs and edits elsewhere: a hash of the rule, the path, the enclosing
    /// function and the normalized code, never of line numbers.
    pub id: String,
    pub rule: String,
    pub kind: Kind,
    pub severity: Severity,
    pub message: String,
    pub locations: Vec<Location>,
    /// The metrics of the function the finding is about, if it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    /// The qualified name of the enclosing function, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// What a duplicate-code finding measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<CloneProperties>,
}

/// The properties of a duplicate-code finding (a clone class), in JSON and SARIF.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CloneProperties {
    /// 1: identical apart from layout and comments; 2: apart from names and literal
    /// values; 3: near-miss (statements added, removed or changed).
    pub clone_type: u8,
    /// How much of the normalized token streams the instances share (1.0 for Types 1-2).
    pub similarity: f64,
    /// Lines and tokens of the smallest instance.
    pub lines: u32,
    pub tokens: u32,
    pub instances: usize,
    /// `function` or `statements`.
    pub unit: String,
    /// The ranking score: lines that would go away if consolidated, weighted by type and
    /// by the number of files.
    pub value: f64,
    pub files: usize,
    /// Type 2 only: `consistent` when each name maps to one name in every other copy (a
    /// parameterized helper replaces them directly), else `inconsistent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renaming: Option<String>,
    /// Every instance is test code.
    pub in_tests: bool,
}

impl Finding {
    pub(crate) fn primary(&self) -> &Location {
        // Every finding is built with at least one location.
        &self.locations[0]
    }
}

/// The id of a finding: rule, path, function and code with all whitespace runs collapsed,
/// plus an occurrence number that tells identical snippets in one function apart.
pub(crate) fn stable_id(
    rule: &str,
    path: &str,
    function: Option<&str>,
    code: &str,
    occurrence: u32,
) -> String {
    let mut hasher = blake3::Hasher::new();
    for part in [rule, path, function.unwrap_or("")] {
        hasher.update(part.as_bytes());
        hasher.update(&[0]);
    }
    let mut first = true;
    for word in code.split_whitespace() {
        if !first {
            hasher.update(b" ");
        }
        hasher.update(word.as_bytes());
        first = false;
    }
    hasher.update(&[0]);
    hasher.update(&occurrence.to_le_bytes());
    hasher.finalize().to_hex()[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_ignore_layout_but_not_code() {
        let a = stable_id("r", "a.py", Some("f"), "x = 1\n  y", 0);
        let b = stable_id("r", "a.py", Some("f"), "x   =  1 y", 0);
        let c = stable_id("r", "a.py", Some("f"), "x = 2 y", 0);
        let d = stable_id("r", "a.py", Some("f"), "x = 1 y", 1);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_eq!(a.len(), 16);
    }
}
