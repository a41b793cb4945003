//! SARIF 2.1.0, as read by GitHub code scanning and editor SARIF viewers.
//!
//! Each finding is a result whose first location is `locations[0]` and whose further
//! locations are `relatedLocations`; URIs are relative to the scanned root (`uriBaseId`
//! `SRCROOT`); `partialFingerprints` carries the finding's stable id.

use std::path::Path;

use serde_json::{Value, json};

use crate::analysis::Analysis;
use crate::analysis::clones;
use crate::analysis::smells::{METRIC_RULES, query_rules};
use crate::config::Config;
use crate::finding::{Finding, Location, Severity};
use crate::lang::LANGUAGES;
use crate::suggest::session::{Proposal, Session, Verdict};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const FINGERPRINT: &str = "refactorAiFindingId/v1";

struct RuleEntry {
    id: String,
    short: String,
    help: String,
    level: Severity,
}

fn rule_table(config: &Config) -> Vec<RuleEntry> {
    let mut rules: Vec<RuleEntry> = METRIC_RULES
        .iter()
        .map(|rule| RuleEntry {
            id: rule.id.to_string(),
            short: rule.summary.to_string(),
            help: rule.help.to_string(),
            level: config.severity(rule.id, rule.severity),
        })
        .collect();
    rules.extend(clones::RULES.iter().map(|rule| RuleEntry {
        id: rule.id.to_string(),
        short: rule.summary.to_string(),
        help: rule.help.to_string(),
        level: config.severity(rule.id, rule.severity),
    }));
    for language in LANGUAGES {
        if let Ok(query_rules) = query_rules(language) {
            rules.extend(query_rules.iter().map(|rule| RuleEntry {
                id: rule.id.clone(),
                short: strip_placeholders(&rule.message),
                help: rule.help.clone(),
                level: config.severity(&rule.id, rule.severity),
            }));
        }
    }
    rules.retain(|rule| config.rule_enabled(&rule.id));
    rules
}

/// `scan --format sarif`.
pub(crate) fn scan(analysis: &Analysis, root: &Path, config: &Config) -> String {
    let rules = rule_table(config);
    let results: Vec<Value> = analysis
        .findings()
        .map(|finding| {
            let rule_index = rules.iter().position(|rule| rule.id == finding.rule);
            let mut result = finding_result(finding);
            if let Some(index) = rule_index {
                result["ruleIndex"] = json!(index);
            }
            if let Some(metrics) = &finding.metrics {
                result["properties"] = json!({ "metrics": metrics });
            }
            if let Some(properties) = &finding.properties {
                result["properties"] = json!(properties);
            }
            result
        })
        .collect();
    let notifications: Vec<Value> = analysis
        .diagnostics
        .iter()
        .map(|diagnostic| {
            json!({
                "level": "warning",
                "message": { "text": diagnostic.message },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": encode_uri(&diagnostic.path), "uriBaseId": "SRCROOT" }
                    }
                }],
            })
        })
        .collect();
    let rules_json: Vec<Value> = rules.iter().map(rule_json).collect();
    document(
        rules_json,
        json!({
            "executionSuccessful": true,
            "toolExecutionNotifications": notifications,
        }),
        results,
        root,
    )
}

/// A finding as a SARIF result: rule, level, message, its first location, the others as
/// related locations, and its id as the fingerprint.
fn finding_result(finding: &Finding) -> Value {
    let mut result = json!({
        "ruleId": finding.rule,
        "level": finding.severity.as_str(),
        "message": { "text": finding.message },
        "locations": [physical_location(finding.primary(), None)],
        "partialFingerprints": { FINGERPRINT: finding.id },
    });
    let related: Vec<Value> = finding
        .locations
        .iter()
        .skip(1)
        .enumerate()
        .map(|(index, location)| physical_location(location, Some(index + 1)))
        .collect();
    if !related.is_empty() {
        result["relatedLocations"] = Value::Array(related);
    }
    result
}

fn rule_json(rule: &RuleEntry) -> Value {
    json!({
        "id": rule.id,
        "name": rule_name(&rule.id),
        "shortDescription": { "text": ensure_period(&rule.short) },
        "fullDescription": { "text": ensure_period(&rule.short) },
        "help": { "text": ensure_period(&rule.help) },
        "defaultConfiguration": { "level": rule.level.as_str() },
    })
}

/// The SARIF document of one run of refactor-ai.
fn document(rules: Vec<Value>, invocation: Value, results: Vec<Value>, root: &Path) -> String {
    let mut run = json!({
        "tool": {
            "driver": {
                "name": "refactor-ai",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }
        },
        "invocations": [invocation],
        "columnKind": "unicodeCodePoints",
        "results": results,
    });
    if let Some(uri) = root_uri(root) {
        run["originalUriBaseIds"] = json!({ "SRCROOT": { "uri": uri } });
    }
    let document = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [run],
    });
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

/// `suggest --format sarif`: each attempted finding as a result; a proven proposal is its
/// `fix` (line replacements against the files as `suggest` read them).
pub(crate) fn suggest(session: &Session, config: &Config) -> String {
    let rules = rule_table(config);
    let mut used: Vec<&str> = Vec::new();
    let mut results = Vec::new();
    for finding in &session.findings {
        if !used.contains(&finding.rule.as_str()) {
            used.push(&finding.rule);
        }
        let attempts: Vec<&Proposal> = session
            .proposals
            .iter()
            .filter(|proposal| proposal.finding == finding.id)
            .collect();
        let proven = attempts
            .iter()
            .find(|proposal| proposal.verdict == Verdict::Proven);
        let verdict = proven
            .map(|p| p.verdict)
            .or_else(|| attempts.last().map(|p| p.verdict))
            .map_or("not attempted", Verdict::as_str);
        let mut result = finding_result(finding);
        result["properties"] = json!({ "verdict": verdict, "attempts": attempts.len() });
        if let Some(proposal) = proven {
            result["fixes"] = json!([fix(session, proposal)]);
        }
        results.push(result);
    }
    let rules_json: Vec<Value> = used
        .iter()
        .map(|id| match rules.iter().find(|rule| rule.id == *id) {
            Some(rule) => rule_json(rule),
            None => json!({ "id": id, "name": rule_name(id) }),
        })
        .collect();
    document(
        rules_json,
        json!({ "executionSuccessful": true }),
        results,
        &session.root,
    )
}

/// A SARIF `fix`: per file, each changed run of lines as a replacement.
fn fix(session: &Session, proposal: &Proposal) -> Value {
    let changes: Vec<Value> = proposal
        .files
        .iter()
        .map(|file| {
            let before = session.sources.get(&file.path).map_or("", String::as_str);
            let diff = similar::TextDiff::from_lines(before, file.after.as_str());
            let new_lines: Vec<&str> = file.after.split_inclusive('\n').collect();
            let replacements: Vec<Value> = diff
                .grouped_ops(0)
                .iter()
                .flatten()
                .filter(|op| op.tag() != similar::DiffTag::Equal)
                .map(|op| {
                    let old = op.old_range();
                    let new = op.new_range();
                    let inserted: String = new_lines[new.start..new.end].concat();
                    // Deleting nothing: an empty region at the start of the line.
                    let region = if old.is_empty() {
                        json!({ "startLine": old.start + 1, "startColumn": 1, "endLine": old.start + 1, "endColumn": 1 })
                    } else {
                        json!({ "startLine": old.start + 1, "startColumn": 1, "endLine": old.end + 1, "endColumn": 1 })
                    };
                    json!({ "deletedRegion": region, "insertedContent": { "text": inserted } })
                })
                .collect();
            json!({
                "artifactLocation": { "uri": encode_uri(&file.path), "uriBaseId": "SRCROOT" },
                "replacements": replacements,
            })
        })
        .collect();
    json!({
        "description": { "text": format!("Proven refactor {} (model {}).", proposal.id, proposal.model) },
        "artifactChanges": changes,
    })
}

fn physical_location(location: &Location, id: Option<usize>) -> Value {
    let mut value = json!({
        "physicalLocation": {
            "artifactLocation": { "uri": encode_uri(&location.path), "uriBaseId": "SRCROOT" },
            "region": {
                "startLine": location.start_line,
                "startColumn": location.start_column,
                "endLine": location.end_line,
                "endColumn": location.end_column,
            }
        }
    });
    if let Some(id) = id {
        value["id"] = json!(id);
    }
    value
}

/// `cognitive-complexity` -> `CognitiveComplexity`; `python/bare-except` -> `PythonBareExcept`.
fn rule_name(id: &str) -> String {
    id.split(['-', '/'])
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

fn ensure_period(text: &str) -> String {
    let trimmed = text.trim_end();
    if trimmed.ends_with(['.', '!', '?']) {
        trimmed.to_string()
    } else {
        format!("{trimmed}.")
    }
}

/// Rule messages may hold `{capture}` placeholders; the rule table shows them as `...`.
fn strip_placeholders(message: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in message.chars() {
        match c {
            '{' => {
                inside = true;
                out.push_str("...");
            }
            '}' if inside => inside = false,
            _ if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

/// Percent-encodes a relative path for a URI reference (RFC 3986: unreserved and `/` kept).
fn encode_uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `file:///abs/root/` for the scanned root, so viewers can resolve relative URIs.
fn root_uri(root: &Path) -> Option<String> {
    let absolute = std::fs::canonicalize(root).ok()?;
    let directory = if absolute.is_dir() {
        absolute
    } else {
        absolute.parent()?.to_path_buf()
    };
    let text = directory.to_str()?.replace('\\', "/");
    let text = text.trim_end_matches('/');
    let leading = if text.starts_with('/') { "" } else { "/" };
    Some(format!("file://{leading}{}/", encode_uri(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uris() {
        assert_eq!(rule_name("python/bare-except"), "PythonBareExcept");
        assert_eq!(encode_uri("a b/ü.py"), "a%20b/%C3%BC.py");
        assert_eq!(strip_placeholders("`{name}` is bad"), "`...` is bad");
        assert_eq!(ensure_period("Done"), "Done.");
    }
}
