//! Text output, grouped by file. Styles are ANSI escapes; the CLI strips them when stdout
//! is not a terminal, `NO_COLOR` is set or `--color never` is given.

use std::fmt::Write;

use anstyle::{AnsiColor, Style};

use crate::analysis::{Analysis, Diagnostic};
use crate::finding::Severity;
use crate::report::Summary;

const PATH: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const ERROR: Style = AnsiColor::Red.on_default().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();
const NOTE: Style = AnsiColor::Cyan.on_default();

fn severity_style(severity: Severity) -> Style {
    match severity {
        Severity::Error => ERROR,
        Severity::Warning => WARNING,
        Severity::Note => NOTE,
    }
}

/// `scan --format text`.
pub(crate) fn scan(analysis: &Analysis) -> String {
    let mut out = String::new();
    if !analysis.duplicates.is_empty() {
        let _ = writeln!(out, "{PATH}duplicate code{PATH:#} (most valuable first)");
        for finding in &analysis.duplicates {
            let style = severity_style(finding.severity);
            let _ = writeln!(
                out,
                "  {style}{:<7}{style:#}  {DIM}{}{DIM:#}  {}",
                finding.severity.as_str(),
                finding.rule,
                finding.message,
            );
            for location in &finding.locations {
                let _ = writeln!(
                    out,
                    "      {}:{}-{}",
                    location.path, location.start_line, location.end_line
                );
            }
        }
        out.push('\n');
    }
    for file in &analysis.files {
        if file.findings.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{PATH}{}{PATH:#}", file.path);
        let position_width = file
            .findings
            .iter()
            .map(|finding| position(finding.primary()).len())
            .max()
            .unwrap_or(0);
        let rule_width = file
            .findings
            .iter()
            .map(|finding| finding.rule.len())
            .max()
            .unwrap_or(0);
        for finding in &file.findings {
            let style = severity_style(finding.severity);
            let _ = writeln!(
                out,
                "  {:<position_width$}  {style}{:<7}{style:#}  {DIM}{:<rule_width$}{DIM:#}  {}",
                position(finding.primary()),
                finding.severity.as_str(),
                finding.rule,
                finding.message,
            );
        }
        out.push('\n');
    }
    let summary = Summary::of(analysis);
    if summary.findings == 0 {
        let _ = writeln!(
            out,
            "No findings in {} files ({} functions).",
            summary.files, summary.functions
        );
    } else {
        let _ = writeln!(
            out,
            "{} ({}) in {} files ({} functions analysed).",
            plural(summary.findings, "finding"),
            [
                (summary.errors, "error"),
                (summary.warnings, "warning"),
                (summary.notes, "note"),
            ]
            .iter()
            .filter(|(count, _)| *count > 0)
            .map(|(count, noun)| plural(*count, noun))
            .collect::<Vec<_>>()
            .join(", "),
            summary.files,
            summary.functions,
        );
    }
    out
}

/// `metrics --format text`: one line per function, grouped by file.
pub(crate) fn metrics(analysis: &Analysis) -> String {
    let mut out = String::new();
    for file in &analysis.files {
        if file.functions.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{PATH}{}{PATH:#}", file.path);
        let lines_width = file
            .functions
            .iter()
            .map(|function| format!("{}-{}", function.start_line, function.end_line).len())
            .max()
            .unwrap_or(0);
        let name_width = file
            .functions
            .iter()
            .map(|function| function.qualified_name.chars().count())
            .max()
            .unwrap_or(0)
            .min(48);
        for function in &file.functions {
            let m = &function.metrics;
            let _ = writeln!(
                out,
                "  {:<lines_width$}  {:<name_width$}  {DIM}lines{DIM:#} {:>3}  {DIM}params{DIM:#} {:>2}  {DIM}nesting{DIM:#} {:>2}  {DIM}cyclomatic{DIM:#} {:>3}  {DIM}cognitive{DIM:#} {:>3}  {DIM}returns{DIM:#} {:>2}",
                format!("{}-{}", function.start_line, function.end_line),
                function.qualified_name,
                m.lines,
                m.parameters,
                m.max_nesting,
                m.cyclomatic_complexity,
                m.cognitive_complexity,
                m.returns,
            );
        }
        out.push('\n');
    }
    let summary = Summary::of(analysis);
    let _ = writeln!(
        out,
        "{} in {}.",
        plural(summary.functions, "function"),
        plural(summary.files, "file")
    );
    out
}

/// Diagnostics for standard error, one per line, like `warning: path: message`.
pub(crate) fn diagnostics(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for diagnostic in diagnostics {
        let _ = writeln!(
            out,
            "{WARNING}warning{WARNING:#}: {}: {}",
            diagnostic.path, diagnostic.message
        );
    }
    out
}

fn position(location: &crate::finding::Location) -> String {
    format!("{}:{}", location.start_line, location.start_column)
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
