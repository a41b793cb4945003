//! Output: text for people, JSON for scripts and editors, SARIF 2.1.0 for code scanning.
//! Renderers write to a `String`; the CLI decides where it goes and whether colour stays.

pub(crate) mod hw;
pub(crate) mod sarif;
pub(crate) mod suggest;
pub(crate) mod text;

use serde::Serialize;

use crate::analysis::{Analysis, Diagnostic, FileReport};
use crate::finding::{Finding, Severity};

/// `metrics --format json`: `{"files": [...], "diagnostics": [...]}` (documented in README).
pub(crate) fn metrics_json(analysis: &Analysis) -> String {
    #[derive(Serialize)]
    struct Document<'a> {
        files: &'a [FileReport],
        diagnostics: &'a [Diagnostic],
    }
    to_json(&Document {
        files: &analysis.files,
        diagnostics: &analysis.diagnostics,
    })
}

/// `scan --format json`: `{"findings": [...], "diagnostics": [...], "summary": {...}}`.
pub(crate) fn scan_json(analysis: &Analysis) -> String {
    #[derive(Serialize)]
    struct Document<'a> {
        findings: Vec<&'a Finding>,
        diagnostics: &'a [Diagnostic],
        summary: Summary,
    }
    to_json(&Document {
        findings: analysis.findings().collect(),
        diagnostics: &analysis.diagnostics,
        summary: Summary::of(analysis),
    })
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct Summary {
    pub(crate) files: usize,
    pub(crate) functions: usize,
    pub(crate) findings: usize,
    pub(crate) errors: usize,
    pub(crate) warnings: usize,
    pub(crate) notes: usize,
}

impl Summary {
    pub(crate) fn of(analysis: &Analysis) -> Summary {
        let mut summary = Summary {
            files: analysis.files.len(),
            functions: analysis.files.iter().map(|file| file.functions.len()).sum(),
            ..Summary::default()
        };
        for finding in analysis.findings() {
            summary.findings += 1;
            match finding.severity {
                Severity::Error => summary.errors += 1,
                Severity::Warning => summary.warnings += 1,
                Severity::Note => summary.notes += 1,
            }
        }
        summary
    }
}

fn to_json(value: &impl Serialize) -> String {
    // Serializing plain data structs cannot fail.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}
