//! Smells: metric thresholds and the tree-sitter query rules of `grammars/<lang>/smells.scm`.
//!
//! A query file is a list of patterns; each carries its rule as `#set!` properties
//! (`id`, `message`, `help`, optional `severity` and `skip-in-tests`) and captures the
//! reported node as `@smell`. Queries are compiled once per process.

use std::collections::HashMap;
use std::sync::OnceLock;

use tree_sitter::{Node, Query, QueryCursor, StreamingIterator, Tree};

use crate::analysis::FunctionReport;
use crate::config::{Config, Thresholds};
use crate::finding::{Finding, Kind, Severity, stable_id};
use crate::lang::{LANGUAGES, Language, node_text};

/// A rule as shown to users: in `--format sarif`'s rule table and in `explain`-like help.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub(crate) id: String,
    pub(crate) message: String,
    pub(crate) help: String,
    pub(crate) severity: Severity,
}

/// The metric rules, language-independent; thresholds come from the config.
pub(crate) struct MetricRule {
    pub(crate) id: &'static str,
    pub(crate) summary: &'static str,
    pub(crate) help: &'static str,
    pub(crate) severity: Severity,
}

pub(crate) const METRIC_RULES: &[MetricRule] = &[
    MetricRule {
        id: "cognitive-complexity",
        summary: "Function is hard to understand (cognitive complexity over the threshold)",
        help: "Extract the bodies of nested branches and loops into well-named functions, \
               replace nesting with early returns or guard clauses, and name complex \
               conditions with a helper or a variable.",
        severity: Severity::Warning,
    },
    MetricRule {
        id: "long-function",
        summary: "Function is long (lines over the threshold)",
        help: "Split the function into steps, each a function with a name that says what \
               it does; keep the original as a short sequence of calls.",
        severity: Severity::Warning,
    },
    MetricRule {
        id: "deep-nesting",
        summary: "Function nests control flow deeply (nesting over the threshold)",
        help: "Invert conditions and return early, `continue` in loops instead of wrapping \
               the body, and extract the innermost blocks into functions.",
        severity: Severity::Warning,
    },
    MetricRule {
        id: "too-many-parameters",
        summary: "Function takes many parameters (parameters over the threshold)",
        help: "Group parameters that travel together into a struct or dataclass, or give \
               the function a builder or options object.",
        severity: Severity::Warning,
    },
];

/// Findings for the metrics of `function` that are over their thresholds. `occurrence`
/// tells apart functions of the same qualified name in one file (their ids hash the name).
pub(crate) fn metric_findings(
    function: &FunctionReport,
    occurrence: u32,
    path: &str,
    thresholds: &Thresholds,
    config: &Config,
    out: &mut Vec<Finding>,
) {
    let metrics = &function.metrics;
    let name = &function.qualified_name;
    let checks = [
        (
            "cognitive-complexity",
            metrics.cognitive_complexity,
            thresholds.cognitive_complexity,
            "a cognitive complexity of",
        ),
        ("long-function", metrics.lines, thresholds.lines, "lines:"),
        (
            "deep-nesting",
            metrics.max_nesting,
            thresholds.max_nesting,
            "a nesting depth of",
        ),
        (
            "too-many-parameters",
            metrics.parameters,
            thresholds.parameters,
            "parameters:",
        ),
    ];
    for (id, value, threshold, what) in checks {
        if value <= threshold || !config.rule_enabled(id) {
            continue;
        }
        let Some(rule) = METRIC_RULES.iter().find(|rule| rule.id == id) else {
            continue;
        };
        let message = match what.strip_suffix(':') {
            Some(noun) => format!("`{name}` has {value} {noun} (threshold {threshold})"),
            None => format!("`{name}` has {what} {value} (threshold {threshold})"),
        };
        out.push(Finding {
            id: stable_id(id, path, Some(name), "", occurrence),
            rule: id.to_string(),
            kind: Kind::Smell,
            severity: config.severity(id, rule.severity),
            message,
            locations: vec![function.location.clone()],
            metrics: Some(function.metrics),
            function: Some(name.clone()),
            properties: None,
        });
    }
}

/// One language's compiled smell queries.
pub(crate) struct SmellQueries {
    pub(crate) query: Query,
    /// Per pattern index, the index into `rules`.
    pattern_rule: Vec<usize>,
    /// Per pattern index, its own message template, if it has one (else the rule's).
    pattern_message: Vec<Option<String>>,
    pub(crate) rules: Vec<Rule>,
    skip_in_tests: Vec<bool>,
    /// Per pattern, node kinds the `@smell` node's parent must have (`parent`), if any.
    parent: Vec<Vec<String>>,
    /// Per pattern, node kinds the `@smell` node's parent must not have (`not-parent`).
    not_parent: Vec<Vec<String>>,
    /// Per pattern, ancestors the `@smell` node must not have (`not-in`: `kind` or
    /// `kind.field`, the latter only when the ancestor has that field).
    not_in: Vec<Vec<(String, Option<String>)>>,
    smell_capture: u32,
    /// Indexed by node kind id: whether some pattern's outermost node has that kind. When
    /// every pattern has a named root, the queries run only at such nodes (see
    /// [`run_queries`]); otherwise `roots` is empty and they run over the whole tree.
    pub(crate) roots: Vec<bool>,
    /// Indexed by node kind id: text that a node of that kind must contain for any pattern
    /// rooted there to match (one of the strings), or `None` when some pattern rooted there
    /// needs none. Read from the patterns' `#eq?` / `#any-of?` predicates: a call whose
    /// text has no `getattr` in it cannot be a `getattr(x, "name")` call, and checking that
    /// is far cheaper than running the query.
    required_text: Vec<Option<Vec<String>>>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum QueryError {
    #[error("grammars/{language}/smells.scm: {message}")]
    Invalid {
        language: &'static str,
        message: String,
    },
}

/// The compiled queries of `language`, built on first use.
pub(crate) fn queries(
    language: &'static Language,
) -> Result<&'static SmellQueries, &'static QueryError> {
    cache()[language.index()]
        .get_or_init(|| compile(language))
        .as_ref()
}

/// The rule ids `language`'s query file declares (`(#set! id "...")`), prefixed, in order,
/// without compiling it. A test checks them against the compiled rules.
pub(crate) fn declared_rule_ids(language: &Language) -> Vec<String> {
    const MARK: &str = "#set! id \"";
    let mut ids = Vec::new();
    for line in language
        .smells
        .lines()
        .filter(|line| !line.trim_start().starts_with(';'))
    {
        let mut rest = line;
        while let Some(start) = rest.find(MARK) {
            rest = &rest[start + MARK.len()..];
            let Some(end) = rest.find('"') else { break };
            let id = format!("{}/{}", language.name, &rest[..end]);
            if !ids.contains(&id) {
                ids.push(id);
            }
            rest = &rest[end..];
        }
    }
    ids
}

/// The compiled queries of `language` if they are ready, without waiting for them.
pub(crate) fn queries_if_ready(
    language: &'static Language,
) -> Option<Result<&'static SmellQueries, &'static QueryError>> {
    cache()[language.index()].get().map(Result::as_ref)
}

fn cache() -> &'static [OnceLock<Result<SmellQueries, QueryError>>] {
    static CACHE: OnceLock<Vec<OnceLock<Result<SmellQueries, QueryError>>>> = OnceLock::new();
    CACHE.get_or_init(|| LANGUAGES.iter().map(|_| OnceLock::new()).collect())
}

pub(crate) fn query_rules(
    language: &'static Language,
) -> Result<&'static [Rule], &'static QueryError> {
    queries(language).map(|queries| queries.rules.as_slice())
}

fn compile(language: &'static Language) -> Result<SmellQueries, QueryError> {
    let invalid = |message: String| QueryError::Invalid {
        language: language.name,
        message,
    };
    let query = Query::new(&(language.grammar)(), language.smells)
        .map_err(|error| invalid(format!("line {}: {}", error.row + 1, error.message)))?;
    let smell_capture = query
        .capture_index_for_name("smell")
        .ok_or_else(|| invalid("no pattern captures `@smell`".to_string()))?;
    let mut rules: Vec<Rule> = Vec::new();
    let mut index_of: HashMap<String, usize> = HashMap::new();
    let mut pattern_rule = Vec::with_capacity(query.pattern_count());
    let mut skip_in_tests = Vec::with_capacity(query.pattern_count());
    let mut not_parent = Vec::with_capacity(query.pattern_count());
    let mut parent = Vec::with_capacity(query.pattern_count());
    let mut not_in = Vec::with_capacity(query.pattern_count());
    let mut pattern_message = Vec::with_capacity(query.pattern_count());
    for pattern in 0..query.pattern_count() {
        let line = language.smells[..query.start_byte_for_pattern(pattern)]
            .lines()
            .count()
            + 1;
        let property = |key: &str| {
            query
                .property_settings(pattern)
                .iter()
                .find(|property| &*property.key == key)
                .and_then(|property| property.value.as_deref())
        };
        let id = property("id")
            .ok_or_else(|| invalid(format!("pattern at line {line} has no `(#set! id ...)`")))?;
        let rule_id = format!("{}/{id}", language.name);
        // The first pattern of a rule carries its message, help and severity; later
        // alternatives may give a message of their own (for their own captures).
        let rule_index = match index_of.get(&rule_id) {
            Some(&index) => {
                if property("help").is_some() || property("severity").is_some() {
                    return Err(invalid(format!(
                        "pattern `{id}` at line {line}: help and severity belong to the rule's first pattern"
                    )));
                }
                index
            }
            None => {
                let required = |key: &str| {
                    property(key).ok_or_else(|| {
                        invalid(format!(
                            "pattern `{id}` at line {line} has no `(#set! {key} ...)`"
                        ))
                    })
                };
                let (message, help) = (required("message")?, required("help")?);
                let severity = match property("severity") {
                    None => Severity::Warning,
                    Some(text) => Severity::parse(text).ok_or_else(|| {
                        invalid(format!(
                            "pattern `{id}` at line {line}: severity `{text}` is not one of error, warning, note"
                        ))
                    })?,
                };
                rules.push(Rule {
                    id: rule_id.clone(),
                    message: message.to_string(),
                    help: help.to_string(),
                    severity,
                });
                index_of.insert(rule_id, rules.len() - 1);
                rules.len() - 1
            }
        };
        pattern_rule.push(rule_index);
        pattern_message.push(property("message").map(str::to_string));
        skip_in_tests.push(property("skip-in-tests") == Some("true"));
        not_in.push(
            property("not-in")
                .map(|entries| {
                    entries
                        .split(',')
                        .map(|entry| match entry.trim().split_once('.') {
                            Some((kind, field)) => (kind.to_string(), Some(field.to_string())),
                            None => (entry.trim().to_string(), None),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        );
        let kinds = |key: &str| -> Vec<String> {
            property(key)
                .map(|kinds| {
                    kinds
                        .split(',')
                        .map(|kind| kind.trim().to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        parent.push(kinds("parent"));
        not_parent.push(kinds("not-parent"));
    }
    let roots = root_kinds(language, &query);
    let required_text = required_text(language, &query, roots.len());
    Ok(SmellQueries {
        query,
        pattern_rule,
        pattern_message,
        rules,
        skip_in_tests,
        parent,
        not_parent,
        not_in,
        smell_capture,
        roots,
        required_text,
    })
}

/// Per node kind id, the text any pattern rooted at that kind needs (see
/// [`SmellQueries::required_text`]). A pattern needs the strings of its first positive
/// `#eq?` or `#any-of?` predicate on a capture that every alternative of the pattern has
/// (a predicate on a capture that is absent holds, so it proves nothing).
fn required_text(language: &Language, query: &Query, kinds: usize) -> Vec<Option<Vec<String>>> {
    let grammar = (language.grammar)();
    // Some(strings) while every pattern seen for the kind needs text; None once one does not.
    let mut required: Vec<Option<Option<Vec<String>>>> = vec![None; kinds];
    for pattern in 0..query.pattern_count() {
        let start = query.start_byte_for_pattern(pattern);
        let end = query.end_byte_for_pattern(pattern);
        let Some(text) = language.smells.get(start..end) else {
            return vec![None; kinds];
        };
        let Some(roots) = pattern_roots(text) else {
            return vec![None; kinds];
        };
        let needs = pattern_required_text(text, roots.len());
        for (id, slot) in required.iter_mut().enumerate() {
            let Ok(id16) = u16::try_from(id) else { break };
            let named = grammar.node_kind_is_named(id16);
            let is_root = grammar.node_kind_for_id(id16).is_some_and(|kind| {
                roots
                    .iter()
                    .any(|(name, is_named)| name == kind && *is_named == named)
            });
            if !is_root {
                continue;
            }
            *slot = Some(match (slot.take(), &needs) {
                (None, needs) => needs.clone(),
                (Some(Some(mut strings)), Some(more)) => {
                    strings.extend(more.iter().cloned());
                    Some(strings)
                }
                (Some(_), _) => None,
            });
        }
    }
    required.into_iter().map(Option::flatten).collect()
}

/// The strings of the first positive `#eq? @capture "text"` or `#any-of? @capture "a" "b"`
/// predicate of one pattern whose capture appears once per alternative at least.
fn pattern_required_text(text: &str, alternatives: usize) -> Option<Vec<String>> {
    for (at, _) in text.match_indices("(#") {
        let rest = &text[at + 2..];
        let Some(args) = rest
            .strip_prefix("eq? ")
            .or_else(|| rest.strip_prefix("any-of? "))
        else {
            continue;
        };
        let args = args.trim_start();
        let Some(capture) = args.strip_prefix('@') else {
            continue;
        };
        let name_end = capture
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
            .unwrap_or(capture.len());
        let name = &capture[..name_end];
        let mut strings = Vec::new();
        let mut rest = capture[name_end..].trim_start();
        while let Some(quoted) = rest.strip_prefix('"') {
            let Some(close) = quoted.find('"') else { break };
            let value = &quoted[..close];
            if value.contains('\\') {
                strings.clear();
                break;
            }
            strings.push(value.to_string());
            rest = quoted[close + 1..].trim_start();
        }
        let uses = text
            .match_indices(&format!("@{name}"))
            .filter(|(at, _)| {
                text[at + name.len() + 1..].chars().next().is_none_or(|c| {
                    !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
                })
            })
            .count()
            - 1;
        if !strings.is_empty() && rest.starts_with(')') && uses >= alternatives.max(1) {
            return Some(strings);
        }
    }
    None
}

/// The kinds of every pattern's outermost node, as a table by kind id; empty when some
/// pattern's root is a wildcard or cannot be read.
fn root_kinds(language: &Language, query: &Query) -> Vec<bool> {
    let grammar = (language.grammar)();
    let mut names = Vec::new();
    for pattern in 0..query.pattern_count() {
        let text = &language.smells[query.start_byte_for_pattern(pattern)..];
        match pattern_roots(text) {
            Some(found) => names.extend(found),
            None => return Vec::new(),
        }
    }
    let count = grammar.node_kind_count();
    let mut roots = vec![false; count];
    for (id, root) in roots.iter_mut().enumerate() {
        let Ok(id) = u16::try_from(id) else { break };
        let named = grammar.node_kind_is_named(id);
        *root = grammar.node_kind_for_id(id).is_some_and(|kind| {
            names
                .iter()
                .any(|(name, is_named)| name == kind && *is_named == named)
        });
    }
    roots
}

/// Reads the root node kinds of the pattern that `text` starts with: `(kind ...)`,
/// `((kind ...) @capture (#predicate))` and `[(a ...) (b ...)]` alternatives. `None` for a
/// wildcard or anything else it does not understand.
fn pattern_roots(text: &str) -> Option<Vec<(String, bool)>> {
    let bytes = text.as_bytes();
    let skip_space = |mut at: usize| {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        at
    };
    // (position, inside an alternation) still to read.
    let mut pending = vec![skip_space(0)];
    let mut roots = Vec::new();
    while let Some(at) = pending.pop() {
        match bytes.get(at)? {
            b'(' => {
                let inner = skip_space(at + 1);
                match bytes.get(inner)? {
                    b'(' | b'[' => pending.push(inner),
                    b'"' => {
                        let end = text[inner + 1..].find('"')? + inner + 1;
                        roots.push((text[inner + 1..end].to_string(), false));
                    }
                    _ => {
                        let end = text[inner..]
                            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?
                            + inner;
                        let name = &text[inner..end];
                        if name.is_empty() || name == "_" {
                            return None;
                        }
                        roots.push((name.to_string(), true));
                    }
                }
            }
            b'[' => {
                // Each alternative starts at depth 1 inside the brackets.
                let mut depth = 0usize;
                let mut in_string = false;
                let mut escaped = false;
                for (offset, &byte) in bytes[at..].iter().enumerate() {
                    if in_string {
                        match byte {
                            _ if escaped => escaped = false,
                            b'\\' => escaped = true,
                            b'"' => in_string = false,
                            _ => {}
                        }
                        continue;
                    }
                    match byte {
                        b'"' => {
                            if depth == 1 {
                                pending.push(at + offset);
                            }
                            in_string = true;
                        }
                        b'(' | b'[' => {
                            if depth == 1 {
                                pending.push(at + offset);
                            }
                            depth += 1;
                        }
                        b')' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            b'"' => {
                let end = text[at + 1..].find('"')? + at + 1;
                roots.push((text[at + 1..end].to_string(), false));
            }
            _ => return None,
        }
    }
    Some(roots)
}

/// A query match, before it becomes a finding.
pub(crate) struct SmellMatch {
    pub(crate) rule: &'static Rule,
    pub(crate) location: crate::finding::Location,
    /// The matched code, for the finding's stable id.
    pub(crate) code: String,
    pub(crate) message: String,
}

/// Runs `queries` over `tree`: at each of `candidates` (nodes whose kind is a pattern root,
/// collected by the caller's own walk), or over the whole tree when the queries are not all
/// rooted. A query cursor costs about three times a plain walk per node it visits, so
/// starting it only where a pattern can start saves most of the matching time. Drops
/// matches in test code for `skip-in-tests` rules, matches inside syntax errors and
/// matches whose parent is excluded by `not-parent`. One result per rule and node.
pub(crate) fn run_queries(
    language: &Language,
    queries: &'static SmellQueries,
    tree: &Tree,
    candidates: &[Node],
    path: &str,
    source: &[u8],
    is_test_file: bool,
) -> Vec<SmellMatch> {
    let mut cursor = QueryCursor::new();
    let mut found: Vec<SmellMatch> = Vec::new();
    let mut test_ranges: Option<Vec<std::ops::Range<usize>>> = None;
    let whole_tree = [tree.root_node()];
    let starts = if queries.roots.is_empty() {
        &whole_tree[..]
    } else {
        cursor.set_max_start_depth(Some(0));
        candidates
    };
    for start in starts {
        if let Some(Some(needed)) = queries.required_text.get(usize::from(start.kind_id()))
            && !needed.iter().any(|text| {
                memchr::memmem::find(&source[start.byte_range()], text.as_bytes()).is_some()
            })
        {
            continue;
        }
        let mut matches = cursor.matches(&queries.query, *start, source);
        while let Some(found_match) = matches.next() {
            let pattern = found_match.pattern_index;
            let Some(node) = found_match
                .captures()
                .iter()
                .find(|capture| capture.index == queries.smell_capture)
                .map(|capture| capture.node)
            else {
                continue;
            };
            if node.has_error() {
                continue;
            }
            let (parent, not_parent) = (&queries.parent[pattern], &queries.not_parent[pattern]);
            // `Node::parent` walks from the root, but only for the few matches that ask.
            if !parent.is_empty() || !not_parent.is_empty() {
                let kind = node.parent().map_or("", |parent| parent.kind());
                let allowed = parent.is_empty() || parent.iter().any(|wanted| wanted == kind);
                if !allowed || not_parent.iter().any(|unwanted| unwanted == kind) {
                    continue;
                }
            }
            if is_inside(node, &queries.not_in[pattern]) {
                continue;
            }
            if queries.skip_in_tests[pattern] {
                let ranges =
                    test_ranges.get_or_insert_with(|| test_item_ranges(language, tree, source));
                let in_test_item = ranges
                    .iter()
                    .any(|range| range.start <= node.start_byte() && node.end_byte() <= range.end);
                if is_test_file || in_test_item {
                    continue;
                }
            }
            let rule = &queries.rules[queries.pattern_rule[pattern]];
            let template = queries.pattern_message[pattern]
                .as_deref()
                .unwrap_or(&rule.message);
            let message = interpolate(template, |name| {
                let index = queries.query.capture_index_for_name(name)?;
                found_match
                    .captures()
                    .iter()
                    .find(|capture| capture.index == index)
                    .map(|capture| node_text(capture.node, source))
            });
            found.push(SmellMatch {
                rule,
                location: crate::analysis::location(path, node),
                code: node_text(node, source).to_string(),
                message,
            });
        }
    }
    found.sort_by_key(|found| (found.location.start_byte, found.location.end_byte));
    found.dedup_by(|a, b| {
        a.rule.id == b.rule.id
            && a.location.start_byte == b.location.start_byte
            && a.location.end_byte == b.location.end_byte
    });
    found
}

/// Whether an ancestor of `node` is one of `kinds` (with the field, where one is named).
/// `Node::parent` walks from the root, but this runs only for matches of rules that ask.
fn is_inside(node: Node, kinds: &[(String, Option<String>)]) -> bool {
    if kinds.is_empty() {
        return false;
    }
    let mut current = node.parent();
    while let Some(ancestor) = current {
        let found = kinds.iter().any(|(kind, field)| {
            ancestor.kind() == kind
                && field
                    .as_deref()
                    .is_none_or(|field| ancestor.child_by_field_name(field).is_some())
        });
        if found {
            return true;
        }
        current = ancestor.parent();
    }
    false
}

/// The byte ranges of test code in the file (outermost items only), in one iterative pass.
fn test_item_ranges(
    language: &Language,
    tree: &Tree,
    source: &[u8],
) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut stack = vec![tree.root_node()];
    let mut cursor = tree.walk();
    let mut children = Vec::new();
    while let Some(node) = stack.pop() {
        cursor.reset(node);
        children.clear();
        if cursor.goto_first_child() {
            loop {
                children.push(cursor.node());
                if !cursor.goto_next_sibling() {
                    break;
                }
            }
        }
        for (index, child) in children.iter().enumerate() {
            if language
                .syntax
                .is_test_item(*child, &children[..index], source)
            {
                ranges.push(child.byte_range());
            } else {
                stack.push(*child);
            }
        }
    }
    ranges
}

/// Replaces `{name}` in `template` with the (shortened, one-line) text of capture `name`.
fn interpolate<'a>(template: &str, capture: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match capture(name) {
                    Some(text) => out.push_str(&shorten(text)),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn shorten(text: &str) -> String {
    const LIMIT: usize = 60;
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= LIMIT {
        return one_line;
    }
    let cut: String = one_line.chars().take(LIMIT - 1).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_at_least_eight_valid_smell_rules() {
        for language in LANGUAGES {
            let rules = query_rules(language).unwrap_or_else(|error| panic!("{error}"));
            assert!(
                rules.len() >= 8,
                "{} has {} smell rules",
                language.name,
                rules.len()
            );
            for rule in rules {
                assert!(rule.id.starts_with(&format!("{}/", language.name)));
                assert!(
                    !rule.message.is_empty() && !rule.help.is_empty(),
                    "{}",
                    rule.id
                );
                assert!(
                    !rule.message.contains('\n'),
                    "{}: one-line message",
                    rule.id
                );
            }
        }
    }

    #[test]
    fn declared_rule_ids_are_the_compiled_rules() {
        for language in LANGUAGES {
            let compiled: Vec<String> = query_rules(language)
                .unwrap()
                .iter()
                .map(|rule| rule.id.clone())
                .collect();
            assert_eq!(declared_rule_ids(language), compiled);
        }
    }

    #[test]
    fn metric_rule_ids_do_not_collide_with_query_rules() {
        for language in LANGUAGES {
            for rule in query_rules(language).unwrap() {
                assert!(METRIC_RULES.iter().all(|metric| metric.id != rule.id));
            }
        }
    }

    #[test]
    fn required_text_comes_from_predicates_on_captures_every_alternative_has() {
        let check = |text: &str, alternatives: usize, expected: Option<&[&str]>| {
            let expected = expected.map(|strings| strings.iter().map(|s| s.to_string()).collect());
            assert_eq!(
                pattern_required_text(text, alternatives),
                expected,
                "{text}"
            );
        };
        check(
            "((call function: (identifier) @fn) @smell (#eq? @fn \"getattr\"))",
            1,
            Some(&["getattr"]),
        );
        check(
            "((call function: (identifier) @fn) (#any-of? @fn \"list\" \"dict\"))",
            1,
            Some(&["list", "dict"]),
        );
        // Capture against capture, and negated predicates, prove nothing.
        check("((a (b) @x (c) @y) (#eq? @x @y))", 1, None);
        check("((a (b) @x) (#not-eq? @x \"z\"))", 1, None);
        // A capture only one of two alternatives has may be absent: no requirement.
        check("([(a (b) @x) (c)] (#eq? @x \"z\"))", 2, None);
        check("([(a (b) @x) (c (d) @x)] (#eq? @x \"z\"))", 2, Some(&["z"]));
        // `@x` is not `@xy`.
        check("([(a (b) @x) (c (d) @xy)] (#eq? @x \"z\"))", 2, None);
    }

    #[test]
    fn pattern_roots_reads_outermost_kinds() {
        let check = |text: &str, expected: Option<&[(&str, bool)]>| {
            let found = pattern_roots(text);
            let expected: Option<Vec<(String, bool)>> = expected.map(|roots| {
                roots
                    .iter()
                    .map(|(name, named)| (name.to_string(), *named))
                    .collect()
            });
            assert_eq!(found, expected, "{text}");
        };
        check(
            "(call function: (identifier)) @smell",
            Some(&[("call", true)]),
        );
        check(
            "((except_clause !value) @smell (#set! id \"x\"))",
            Some(&[("except_clause", true)]),
        );
        check(
            "([(default_parameter) (typed_default_parameter (x))] @smell)",
            Some(&[
                ("typed_default_parameter", true),
                ("default_parameter", true),
            ]),
        );
        check("[\"==\" (a)] @x", Some(&[("a", true), ("==", false)]));
        check("((_ (call)) @parent)", None);
        check("(_) @x", None);
    }

    #[test]
    fn interpolation_replaces_known_captures_only() {
        let text = interpolate("`{name}` and {missing} {", |name| {
            (name == "name").then_some("a\n   b")
        });
        assert_eq!(text, "`a b` and {missing} {");
    }
}
