//! Analysis: walk, parse, measure and find smells. Never fails on broken code: syntax
//! errors, unreadable or oversized files become [`Diagnostic`]s and the run goes on.

pub(crate) mod metrics;
pub(crate) mod smells;
pub(crate) mod walk;

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Serialize;
use tree_sitter::{Node, ParseOptions, Parser, Tree};

use crate::config::Config;
use crate::finding::{Finding, Kind, Location, stable_id};
use crate::lang::{FunctionShape, Language};
use metrics::{Identity, Metrics};

/// A file-level problem that did not stop the run: a syntax error, a skipped file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub path: String,
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            path: path.into(),
            message: message.into(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FunctionReport {
    pub name: String,
    pub qualified_name: String,
    pub start_line: u32,
    pub end_line: u32,
    pub metrics: Metrics,
    #[serde(skip)]
    pub(crate) location: Location,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileReport {
    pub path: String,
    pub language: &'static str,
    pub functions: Vec<FunctionReport>,
    #[serde(skip)]
    pub(crate) findings: Vec<Finding>,
}

/// Everything one run found below a root.
#[derive(Debug, Default)]
pub struct Analysis {
    pub files: Vec<FileReport>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Analysis {
    pub(crate) fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.files.iter().flat_map(|file| file.findings.iter())
    }
}

/// A parse taking longer than this is abandoned with a diagnostic (tree-sitter parses
/// megabytes per second, so only pathological input gets here).
const PARSE_TIME_LIMIT: Duration = Duration::from_secs(10);

/// Analyses every supported file below `root`, in parallel. `with_smells` runs the smell
/// queries too (`scan`); `metrics` does without them.
pub(crate) fn analyze(root: &Path, config: &Config, with_smells: bool) -> Analysis {
    let (candidates, mut diagnostics) = walk::candidates(root, config);
    // Compiling a language's queries takes a tenth of a second or more: it runs on its own
    // thread while the workers parse and measure. Files finished before it is done keep
    // their trees and get their smells in a second pass, so no worker waits for it.
    let mut present: Vec<&'static Language> = candidates.iter().map(|c| c.language).collect();
    present.sort_by_key(|language| language.index());
    present.dedup_by_key(|language| language.index());
    for language in present.into_iter().filter(|_| with_smells) {
        std::thread::spawn(move || {
            let _ = smells::queries(language);
        });
    }
    let smells = if with_smells {
        Smells::IfReady
    } else {
        Smells::Skip
    };
    let outcomes: Vec<Outcome> = candidates
        .par_iter()
        .map_init(Parsers::default, |parsers, candidate| {
            match walk::read(candidate, config) {
                walk::Read::Skipped(message) => Outcome::Done(
                    None,
                    vec![Diagnostic::new(candidate.relative.clone(), message)],
                ),
                walk::Read::Text(text) => {
                    let is_test = candidate
                        .language
                        .syntax
                        .is_test_path(Path::new(&candidate.relative));
                    let source = Source {
                        language: candidate.language,
                        relative: &candidate.relative,
                        text: &text,
                        is_test,
                    };
                    match measure_source(parsers, &source, smells) {
                        Ok(measured) if measured.smells_pending => {
                            Outcome::Pending(Box::new((text.clone(), measured)))
                        }
                        Ok(measured) => {
                            let (report, diagnostics) = finish(&source, config, measured);
                            Outcome::Done(Some(report), diagnostics)
                        }
                        Err(diagnostic) => Outcome::Done(None, vec![diagnostic]),
                    }
                }
            }
        })
        .collect();
    let results: Vec<(Option<FileReport>, Vec<Diagnostic>)> = outcomes
        .into_par_iter()
        .zip(candidates.par_iter())
        .map(|(outcome, candidate)| match outcome {
            Outcome::Done(report, diagnostics) => (report, diagnostics),
            Outcome::Pending(pending) => {
                let (text, mut measured) = *pending;
                let source = Source {
                    language: candidate.language,
                    relative: &candidate.relative,
                    text: &text,
                    is_test: candidate
                        .language
                        .syntax
                        .is_test_path(Path::new(&candidate.relative)),
                };
                late_smells(&source, &mut measured);
                let (report, diagnostics) = finish(&source, config, measured);
                (Some(report), diagnostics)
            }
        })
        .collect();
    let mut files = Vec::with_capacity(results.len());
    for (report, file_diagnostics) in results {
        files.extend(report);
        diagnostics.extend(file_diagnostics);
    }
    Analysis { files, diagnostics }
}

/// What becomes of a file in the parallel pass.
enum Outcome {
    Done(Option<FileReport>, Vec<Diagnostic>),
    /// Measured, with its trees kept until the smell queries are ready.
    Pending(Box<(String, Measured)>),
}

/// Whether and when a file's smell queries run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Smells {
    Skip,
    /// Run them, waiting for them to compile if need be.
    Wait,
    /// Run them if they are compiled; otherwise keep the trees for [`late_smells`].
    IfReady,
}

/// One file's text and what is known about it.
pub(crate) struct Source<'a> {
    pub(crate) language: &'static Language,
    pub(crate) relative: &'a str,
    pub(crate) text: &'a str,
    pub(crate) is_test: bool,
}

/// A parsed and measured file.
pub(crate) struct Measured {
    functions: Vec<FunctionReport>,
    diagnostics: Vec<Diagnostic>,
    matches: Vec<smells::SmellMatch>,
    /// The smell queries still have to run, over these trees.
    smells_pending: bool,
    trees: Vec<Tree>,
}

/// One parser per language, reused for every file a thread analyses.
#[derive(Default)]
pub(crate) struct Parsers {
    parsers: HashMap<usize, Parser>,
}

impl Parsers {
    fn parse(&mut self, language: &Language, text: &str) -> Result<Tree, String> {
        self.parse_ranges(language, text, &[])
    }

    /// Parses only `range` of `text` (positions stay those of the whole file).
    fn parse_range(
        &mut self,
        language: &Language,
        text: &str,
        range: tree_sitter::Range,
    ) -> Result<Tree, String> {
        self.parse_ranges(language, text, &[range])
    }

    fn parse_ranges(
        &mut self,
        language: &Language,
        text: &str,
        ranges: &[tree_sitter::Range],
    ) -> Result<Tree, String> {
        let parser = match self.parsers.entry(language.index()) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let mut parser = Parser::new();
                parser
                    .set_language(&(language.grammar)())
                    .map_err(|error| {
                        format!("cannot load the {} grammar: {error}", language.name)
                    })?;
                entry.insert(parser)
            }
        };
        // An empty list means the whole text.
        parser
            .set_included_ranges(ranges)
            .map_err(|_| "skipped: invalid range to parse".to_string())?;
        let started = Instant::now();
        let bytes = text.as_bytes();
        let mut give_up = |_: &tree_sitter::ParseState| {
            if started.elapsed() > PARSE_TIME_LIMIT {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let tree = parser.parse_with_options(
            &mut |offset, _| bytes.get(offset..).unwrap_or_default(),
            None,
            Some(ParseOptions::new().progress_callback(&mut give_up)),
        );
        // A cancelled parse leaves state behind; the next parse must start fresh.
        parser.reset();
        let _ = parser.set_included_ranges(&[]);
        tree.ok_or_else(|| {
            format!(
                "skipped: parsing took longer than {} s",
                PARSE_TIME_LIMIT.as_secs()
            )
        })
    }
}

/// Parses and analyses one file's text, smells included. Functions that contain syntax
/// errors are left out (their numbers would be wrong); the first error is reported as a
/// diagnostic.
pub(crate) fn analyze_source(
    parsers: &mut Parsers,
    source: &Source,
    config: &Config,
    smells: Smells,
) -> (Option<FileReport>, Vec<Diagnostic>) {
    match measure_source(parsers, source, smells) {
        Ok(mut measured) => {
            late_smells(source, &mut measured);
            let (report, diagnostics) = finish(source, config, measured);
            (Some(report), diagnostics)
        }
        Err(diagnostic) => (None, vec![diagnostic]),
    }
}

/// Parses the file and its item-level macro bodies, measures every function and, when the
/// queries are at hand, runs them at the nodes the same walks collected.
fn measure_source(
    parsers: &mut Parsers,
    source: &Source,
    smells: Smells,
) -> Result<Measured, Diagnostic> {
    let (language, relative, text) = (source.language, source.relative, source.text);
    let tree = parsers
        .parse(language, text)
        .map_err(|message| Diagnostic::new(relative, message))?;
    let bytes = text.as_bytes();
    let mut diagnostics = Vec::new();
    let root = tree.root_node();
    if root.has_error() {
        diagnostics.push(syntax_error_diagnostic(relative, root));
    }
    let (queries, smells_pending) = match smells {
        Smells::Skip => (None, false),
        Smells::Wait => (Some(smells::queries(language)), false),
        Smells::IfReady => match smells::queries_if_ready(language) {
            Some(queries) => (Some(queries), false),
            None => (None, true),
        },
    };
    let queries = match queries {
        Some(Ok(queries)) => Some(queries),
        Some(Err(error)) => {
            diagnostics.push(Diagnostic::new(relative, error.to_string()));
            None
        }
        None => None,
    };
    let roots: &'static [bool] = queries.map_or(&[], |queries| queries.roots.as_slice());
    // Functions and smells in the main tree, then in item-level macro bodies
    // (`cfg_rt! { ... }`), each parsed on its own.
    let mut discovery = Discovery::default();
    let mut matches = Vec::new();
    let mut trees = Vec::new();
    let mut collector = Collector::new(roots);
    discovery.visit(language, relative, root, None, bytes, &mut collector);
    if let Some(queries) = queries {
        matches.extend(smells::run_queries(
            language,
            queries,
            &tree,
            &collector.candidates,
            relative,
            bytes,
            source.is_test,
        ));
    }
    if smells_pending {
        trees.push(tree);
    }
    let mut next = 0;
    while next < discovery.macro_bodies.len().min(MAX_MACRO_BODIES) {
        let body = &discovery.macro_bodies[next];
        next += 1;
        let scope = body.scope;
        let Ok(subtree) = parsers.parse_range(language, text, body.range) else {
            continue;
        };
        let mut collector = Collector::new(roots);
        discovery.visit(
            language,
            relative,
            subtree.root_node(),
            scope,
            bytes,
            &mut collector,
        );
        if let Some(queries) = queries {
            matches.extend(smells::run_queries(
                language,
                queries,
                &subtree,
                &collector.candidates,
                relative,
                bytes,
                source.is_test,
            ));
        }
        if smells_pending {
            trees.push(subtree);
        }
    }
    let mut functions = discovery.functions;
    functions.sort_by_key(|report| (report.location.start_byte, report.location.end_byte));
    Ok(Measured {
        functions,
        diagnostics,
        matches,
        smells_pending,
        trees,
    })
}

/// Runs the smell queries over the trees a file kept, waiting for them to compile.
fn late_smells(source: &Source, measured: &mut Measured) {
    if !measured.smells_pending {
        return;
    }
    measured.smells_pending = false;
    let queries = match smells::queries(source.language) {
        Ok(queries) => queries,
        Err(error) => {
            measured
                .diagnostics
                .push(Diagnostic::new(source.relative, error.to_string()));
            return;
        }
    };
    for tree in std::mem::take(&mut measured.trees) {
        // A plain walk offers every node; the first pass collected them while measuring.
        let mut collector = Collector::new(queries.roots.as_slice());
        let mut cursor = tree.walk();
        'walk: loop {
            collector.offer(cursor.node());
            if cursor.goto_first_child() {
                continue;
            }
            while !cursor.goto_next_sibling() {
                if !cursor.goto_parent() {
                    break 'walk;
                }
            }
        }
        measured.matches.extend(smells::run_queries(
            source.language,
            queries,
            &tree,
            &collector.candidates,
            source.relative,
            source.text.as_bytes(),
            source.is_test,
        ));
    }
}

/// Turns a measured file into its report: metric findings, smell findings, ids.
fn finish(source: &Source, config: &Config, measured: Measured) -> (FileReport, Vec<Diagnostic>) {
    let (language, relative) = (source.language, source.relative);
    let Measured {
        functions,
        diagnostics,
        matches,
        ..
    } = measured;
    let mut findings = Vec::new();
    let thresholds = config.thresholds(language);
    let mut names: HashMap<&str, u32> = HashMap::new();
    for function in &functions {
        let occurrence = names.entry(&function.qualified_name).or_insert(0);
        smells::metric_findings(
            function,
            *occurrence,
            relative,
            &thresholds,
            config,
            &mut findings,
        );
        *occurrence += 1;
    }
    let mut occurrences: HashMap<(String, Option<String>, String), u32> = HashMap::new();
    for found in matches {
        if !config.rule_enabled(&found.rule.id) {
            continue;
        }
        let function = enclosing_function(&functions, &found.location);
        let key = (
            found.rule.id.clone(),
            function.clone(),
            normalize(&found.code),
        );
        let occurrence = occurrences.entry(key).or_insert(0);
        let id = stable_id(
            &found.rule.id,
            relative,
            function.as_deref(),
            &found.code,
            *occurrence,
        );
        *occurrence += 1;
        findings.push(Finding {
            id,
            rule: found.rule.id.clone(),
            kind: Kind::Smell,
            severity: config.severity(&found.rule.id, found.rule.severity),
            message: found.message,
            locations: vec![found.location],
            metrics: None,
            function,
        });
    }
    findings.sort_by(|a, b| {
        let (a_loc, b_loc) = (a.primary(), b.primary());
        (a_loc.start_line, a_loc.start_column, &a.rule).cmp(&(
            b_loc.start_line,
            b_loc.start_column,
            &b.rule,
        ))
    });
    let report = FileReport {
        path: relative.to_string(),
        language: language.name,
        functions,
        findings,
    };
    (report, diagnostics)
}

fn normalize(code: &str) -> String {
    code.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn enclosing_function(functions: &[FunctionReport], location: &Location) -> Option<String> {
    // The innermost function is the one with the latest start that still contains it.
    functions
        .iter()
        .filter(|function| {
            function.location.start_byte <= location.start_byte
                && location.end_byte <= function.location.end_byte
        })
        .max_by_key(|function| function.location.start_byte)
        .map(|function| function.qualified_name.clone())
}

pub(crate) fn location(path: &str, node: Node) -> Location {
    let start = node.start_position();
    let end = node.end_position();
    let to_u32 = |value: usize| u32::try_from(value).unwrap_or(u32::MAX);
    Location {
        path: path.to_string(),
        start_line: to_u32(start.row + 1),
        end_line: to_u32(end.row + 1),
        start_column: to_u32(start.column + 1),
        end_column: to_u32(end.column + 1),
        start_byte: node.start_byte(),
        end_byte: node.end_byte(),
    }
}

fn syntax_error_diagnostic(path: &str, root: Node) -> Diagnostic {
    // Find the first ERROR or MISSING node, iteratively.
    let mut cursor = root.walk();
    let mut found = None;
    'search: loop {
        let node = cursor.node();
        if node.is_error() || node.is_missing() {
            found = Some(node);
            break;
        }
        if node.has_error() && cursor.goto_first_child() {
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                break 'search;
            }
        }
    }
    let (line, what) = match found {
        Some(node) if node.is_missing() => (
            node.start_position().row + 1,
            format!("missing `{}`", node.kind()),
        ),
        Some(node) => (
            node.start_position().row + 1,
            "unexpected syntax".to_string(),
        ),
        None => (1, "syntax error".to_string()),
    };
    Diagnostic::new(
        path,
        format!("syntax error at line {line} ({what}); functions containing errors were skipped"),
    )
}

/// A function, class, `impl`, trait or module around the nodes being visited.
struct Scope {
    parent: Option<usize>,
    name: String,
    /// The type a function directly in this scope is a method of.
    owner: Option<String>,
}

/// What the walks collect besides metrics: definitions nested in a measured function's
/// body, and the nodes where a smell query can start (`roots`, by kind id).
pub(crate) struct Collector<'tree> {
    pub(crate) definitions: Vec<Node<'tree>>,
    pub(crate) candidates: Vec<Node<'tree>>,
    roots: &'static [bool],
}

impl<'tree> Collector<'tree> {
    fn new(roots: &'static [bool]) -> Collector<'tree> {
        Collector {
            definitions: Vec::new(),
            candidates: Vec::new(),
            roots,
        }
    }

    pub(crate) fn offer(&mut self, node: Node<'tree>) {
        if self
            .roots
            .get(usize::from(node.kind_id()))
            .is_some_and(|&is_root| is_root)
        {
            self.candidates.push(node);
        }
    }
}

/// The body of an item-level macro, waiting to be parsed as items of its own.
struct MacroBody {
    range: tree_sitter::Range,
    scope: Option<usize>,
}

/// At most this many macro bodies are parsed per file (nested ones included).
const MAX_MACRO_BODIES: usize = 10_000;

/// Finds every function definition, with its qualified name and metrics, across the
/// file's main tree and the trees of its item-level macro bodies.
#[derive(Default)]
struct Discovery {
    scopes: Vec<Scope>,
    functions: Vec<FunctionReport>,
    macro_bodies: Vec<MacroBody>,
}

impl Discovery {
    fn visit<'tree>(
        &mut self,
        language: &Language,
        path: &str,
        root: Node<'tree>,
        scope: Option<usize>,
        source: &[u8],
        collector: &mut Collector<'tree>,
    ) {
        let syntax = language.syntax;
        let mut stack: Vec<(Node, Option<usize>)> = vec![(root, scope)];
        let mut cursor = root.walk();
        while let Some((node, scope)) = stack.pop() {
            collector.offer(node);
            let mut child_scope = scope;
            let mut measured_body = None;
            if let Some(shape) = syntax.function(node, source) {
                if !node.has_error() {
                    if let Some(body) = shape.body {
                        self.measure(language, path, &shape, scope, source, collector);
                        measured_body = Some(body);
                    }
                }
                self.scopes.push(Scope {
                    parent: scope,
                    name: shape.name,
                    owner: None,
                });
                child_scope = Some(self.scopes.len() - 1);
                // Measuring walked the body and collected the definitions inside it.
                stack.extend(
                    collector
                        .definitions
                        .drain(..)
                        .map(|inner| (inner, child_scope)),
                );
            } else if let Some(container) = syntax.container(node, source) {
                self.scopes.push(Scope {
                    parent: scope,
                    owner: container.is_type.then(|| container.name.clone()),
                    name: container.name,
                });
                child_scope = Some(self.scopes.len() - 1);
            }
            cursor.reset(node);
            if cursor.goto_first_child() {
                loop {
                    let child = cursor.node();
                    if Some(child) != measured_body {
                        match syntax.item_macro_body(child, node, source) {
                            Some(range) => self.macro_bodies.push(MacroBody {
                                range,
                                scope: child_scope,
                            }),
                            None => stack.push((child, child_scope)),
                        }
                    }
                    if !cursor.goto_next_sibling() {
                        break;
                    }
                }
            }
        }
    }

    fn measure<'tree>(
        &mut self,
        language: &Language,
        path: &str,
        shape: &FunctionShape<'tree>,
        scope: Option<usize>,
        source: &[u8],
        collector: &mut Collector<'tree>,
    ) {
        let owner = scope.and_then(|index| self.scopes[index].owner.as_deref());
        let identity = Identity {
            name: &shape.name,
            owner,
        };
        let metrics = metrics::measure(language.syntax, shape, &identity, source, collector);
        let qualified_name = qualify(
            &self.scopes,
            scope,
            &shape.name,
            language.syntax.separator(),
        );
        let location = location(path, shape.node);
        self.functions.push(FunctionReport {
            name: shape.name.clone(),
            qualified_name,
            start_line: location.start_line,
            end_line: location.end_line,
            metrics,
            location,
        });
    }
}

fn qualify(scopes: &[Scope], scope: Option<usize>, name: &str, separator: &str) -> String {
    let mut parts = vec![name];
    let mut current = scope;
    while let Some(index) = current {
        parts.push(&scopes[index].name);
        current = scopes[index].parent;
    }
    parts.reverse();
    parts.join(separator)
}
