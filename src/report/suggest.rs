//! `suggest` output: text (per finding, each attempt's verdict and the proven diff,
//! coloured), JSON (the whole session), and a `git apply`-able patch of proven proposals.
//! SARIF is in [`super::sarif::suggest`].

use std::fmt::Write;

use anstyle::{AnsiColor, Style};

use crate::suggest::session::{Session, Verdict};

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const GREEN: Style = AnsiColor::Green.on_default();
const RED: Style = AnsiColor::Red.on_default();
const CYAN: Style = AnsiColor::Cyan.on_default();
const YELLOW: Style = AnsiColor::Yellow.on_default();

fn verdict_style(verdict: Verdict) -> Style {
    match verdict {
        Verdict::Proven => GREEN.bold(),
        Verdict::Unvalidated => YELLOW.bold(),
        Verdict::Rejected => RED.bold(),
    }
}

/// A unified diff with added lines green, removed red, hunk headers cyan.
pub(crate) fn colored_diff(diff: &str) -> String {
    let mut out = String::new();
    for line in diff.lines() {
        let style =
            if line.starts_with("+++") || line.starts_with("---") || line.starts_with("diff ") {
                BOLD
            } else if line.starts_with('+') {
                GREEN
            } else if line.starts_with('-') {
                RED
            } else if line.starts_with("@@") {
                CYAN
            } else {
                Style::new()
            };
        let _ = writeln!(out, "{style}{line}{style:#}");
    }
    out
}

pub(crate) fn text(session: &Session) -> String {
    let mut out = String::new();
    for finding in &session.findings {
        let location = finding.primary();
        let _ = writeln!(
            out,
            "{BOLD}{}:{}{BOLD:#}  {DIM}{}{DIM:#}  {}  {DIM}[{}]{DIM:#}",
            location.path, location.start_line, finding.rule, finding.message, finding.id
        );
        let attempts: Vec<_> = session
            .proposals
            .iter()
            .filter(|proposal| proposal.finding == finding.id)
            .collect();
        if attempts.is_empty() {
            let _ = writeln!(out, "  not attempted");
        }
        for proposal in &attempts {
            let style = verdict_style(proposal.verdict);
            let reason = match proposal.failed_check() {
                Some(check) => format!(
                    " at {}: {}",
                    check.check.as_str(),
                    check.message.lines().next().unwrap_or("")
                ),
                None => proposal
                    .checks
                    .last()
                    .map(|check| format!(": {}", check.message))
                    .unwrap_or_default(),
            };
            let _ = writeln!(
                out,
                "  attempt {}: {style}{}{style:#}{reason}",
                proposal.attempt + 1,
                proposal.verdict.as_str()
            );
            if let Some(log) = proposal.failed_check().and_then(|check| check.log.as_ref()) {
                let _ = writeln!(out, "    {DIM}log: {}{DIM:#}", log.display());
            }
            if proposal.verdict == Verdict::Proven {
                for line in colored_diff(&proposal.diff).lines() {
                    let _ = writeln!(out, "    {line}");
                }
                let _ = writeln!(
                    out,
                    "  apply with: refactor-ai apply --id {}",
                    proposal.finding
                );
            }
        }
        out.push('\n');
    }
    let summary = &session.summary;
    let _ = writeln!(
        out,
        "{} finding(s) attempted: {} proven, {} parsed, {} applied cleanly, {} parse again, \
         {} improved{}; {:.1} s per finding",
        summary.attempted,
        summary.proven,
        summary.parsed,
        summary.applied,
        summary.parses,
        summary.improved,
        if summary.unvalidated > 0 {
            format!(", {} unvalidated", summary.unvalidated)
        } else {
            String::new()
        },
        summary.seconds_per_finding
    );
    if let Some(problem) = &session.validation_problem {
        let _ = writeln!(out, "{YELLOW}warning{YELLOW:#}: not validated: {problem}");
    }
    if session.interrupted {
        let _ = writeln!(
            out,
            "{YELLOW}interrupted{YELLOW:#}: {} of {} selected finding(s) were attempted",
            summary.attempted,
            session.findings.len()
        );
    }
    if summary.proven > 0 {
        let _ = writeln!(out, "apply them all with: refactor-ai apply --all");
    }
    out
}

pub(crate) fn json(session: &Session) -> String {
    let mut text = serde_json::to_string_pretty(session).unwrap_or_default();
    text.push('\n');
    text
}

/// Every proven proposal's diff, one after another.
pub(crate) fn diff(session: &Session) -> String {
    session
        .proven()
        .map(|proposal| proposal.diff.as_str())
        .collect::<Vec<_>>()
        .concat()
}
